/**
 * One suggestion card of the Journey Guide (issue 15 point 4, issue 17 point 8): the journeys module's own
 * proposals and the guide agent's share it — one card style, "Accept" and "Not now" as 64 px targets
 * (styles.css `.guide-proposal`). The parent runs the decision (and reads the journey again after it).
 */
import type { GuideTexts } from './guide-model.js';

export function ProposalCard(props: {
  id: string;
  text: string;
  /** `data-kind`: the journey proposal's kind, or the agent's action (`journey.skip`). */
  kind: string;
  /** Where it comes from: the journeys module's rules, or the guide agent (`data-source`). */
  source: 'journey' | 'agent';
  /** `data-testid` of the card and its buttons: `<testid>`, `<accept>`, `<reject>`. */
  testids: { card: string; accept: string; reject: string };
  texts: GuideTexts;
  /** The label of the action running now, if any: every button waits; this card's says so. */
  busy: string | null;
  onAccept: () => void;
  onReject: () => void;
}) {
  const { id, texts: t, busy, testids } = props;
  return (
    <article class="guide-proposal" data-testid={testids.card} data-proposal={id} data-kind={props.kind} data-source={props.source}>
      <p class="guide-proposal-text">{props.text}</p>
      <div class="guide-actions">
        <button type="button" data-testid={testids.accept} disabled={busy !== null} onClick={props.onAccept}>
          {busy === `accept:${id}` ? t.working : t.accept}
        </button>
        <button type="button" class="secondary" data-testid={testids.reject} disabled={busy !== null} onClick={props.onReject}>
          {busy === `reject:${id}` ? t.working : t.notNow}
        </button>
      </div>
    </article>
  );
}
