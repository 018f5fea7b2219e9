/**
 * The verdict screen of the Redeem app: read from two metres in one glance. Each verdict has its own colour, its
 * own icon (inline SVG: no emoji font, no network) and its own words in a ≥ 48 px headline, so that no verdict
 * depends on colour alone.
 */
import { useEffect, useRef } from 'preact/hooks';
import type { ScanTiming } from '../scanner/scanner.js';
import type { RedeemAnswer, RedeemLease, RedeemVerdict } from './redeem-api.js';

type Tone = 'ok' | 'refused' | 'caution' | 'neutral';

interface VerdictLook {
  words: string;
  tone: Tone;
  icon: keyof typeof ICONS;
}

export const VERDICTS: Record<RedeemVerdict, VerdictLook> = {
  REDEEMED: { words: 'REDEEMED', tone: 'ok', icon: 'check' },
  VALID: { words: 'VALID', tone: 'ok', icon: 'check' },
  UNDONE: { words: 'UNDONE', tone: 'neutral', icon: 'undo' },
  ALREADY_USED: { words: 'ALREADY USED', tone: 'refused', icon: 'repeat' },
  EXPIRED: { words: 'EXPIRED', tone: 'refused', icon: 'clock' },
  NOT_YET_VALID: { words: 'NOT YET VALID', tone: 'caution', icon: 'hourglass' },
  NOT_VALID_HERE: { words: 'NOT VALID HERE', tone: 'refused', icon: 'pin' },
  UNKNOWN_ISSUER: { words: 'UNKNOWN ISSUER', tone: 'refused', icon: 'question' },
  REVOKED: { words: 'REVOKED', tone: 'refused', icon: 'ban' },
  DAMAGED_CODE: { words: 'DAMAGED CODE', tone: 'caution', icon: 'broken' },
  INSUFFICIENT_BALANCE: { words: 'INSUFFICIENT BALANCE', tone: 'refused', icon: 'wallet' },
  // The redeem guard's verdicts (issue 16): the pass may be fine, this device cannot take it now — amber, not red.
  NO_LEASE: { words: 'NO LEASE ON THIS DEVICE', tone: 'caution', icon: 'lease' },
  LEASE_EXHAUSTED: { words: 'LEASE USED UP', tone: 'caution', icon: 'lease' },
  DENY_LIST_STALE: { words: 'DENY LIST TOO OLD', tone: 'caution', icon: 'stale' },
};

/**
 * What staff should do after a guard verdict (the runtime's message says what happened): one sentence each, read at
 * the gate. `denyListAsOf` is when this device last had a complete deny list (SyncStatus.deny_list_as_of), if known.
 */
export function staffAdvice(verdict: RedeemVerdict, now: number, denyListAsOf?: string | null): string | null {
  switch (verdict) {
    case 'NO_LEASE':
      return 'Nothing was redeemed. This device holds no share of this pass\'s uses and could not get one from the cloud: connect it to the network and scan again, or send the traveller to a gate that is online.';
    case 'LEASE_EXHAUSTED':
      return 'Nothing was redeemed. This device has used every use its lease gives it for this pass (the pass itself may have more): connect it to the network and scan again to get more, or send the traveller to another gate.';
    case 'DENY_LIST_STALE':
      return `Nothing was redeemed. This device cannot tell whether the pass was cancelled: its list of cancelled passes${denyListAsOf ? ` is from ${formatWhen(denyListAsOf)} (${relativeAge(denyListAsOf, now)})` : ' was never fetched'}, older than this product allows. Connect to the network, press "Sync now" in the status bar, then scan again.`;
    default:
      return null;
  }
}

function relativeAge(iso: string, now: number): string {
  const minutes = Math.round((now - Date.parse(iso)) / 60_000);
  if (Number.isNaN(minutes)) return iso;
  // Never "0 min ago" beside "older than this product allows" (a bound under a minute, or the browser's clock behind the device's).
  if (minutes < 1) return 'under a minute ago';
  if (minutes < 90) return `${minutes} min ago`;
  if (minutes < 36 * 60) return `${Math.round(minutes / 60)} h ago`;
  return `${Math.round(minutes / 1440)} days ago`;
}

/**
 * The lease line of the verdict card: "3 of 5 uses left on this device's lease, until 18:00" (money for stored value).
 */
export function leaseText(lease: RedeemLease, kind?: string, currency?: string): string {
  const amount = (n: number) => (kind === 'stored_value' ? formatMoney(n, currency) : String(n));
  const unit = kind === 'stored_value' ? '' : ` ${lease.rights === 1 ? 'use' : 'uses'}`;
  // A `bound` redemption with no lease at all: only the risk line says something.
  if (lease.lease === null || lease.exp === null) return 'No lease on this device for this pass';
  return `${amount(lease.left)} of ${amount(lease.rights)}${unit} left on this device's lease, until ${formatWhen(lease.exp)}`;
}

/** A `bound` product's risk: "2 of 3 offline redemptions beyond the lease used", or null when nothing is beyond. */
export function boundRiskText(lease: RedeemLease): string | null {
  if (lease.bound === undefined && lease.beyond === undefined) return null;
  const beyond = lease.beyond ?? 0;
  if (lease.bound === undefined) return beyond > 0 ? `${beyond} offline ${beyond === 1 ? 'redemption' : 'redemptions'} beyond the lease` : null;
  const left = Math.max(0, lease.bound - beyond);
  return `${beyond} of ${lease.bound} offline redemptions beyond the lease used${beyond > 0 ? ` — ${left} left before this device refuses; they are checked at the next sync` : ''}`;
}

/** 24×24 stroked paths (drawn for this app), scaled by CSS. */
const ICONS = {
  check: <path d="M4.5 12.5l5 5L19.5 7" />,
  undo: (
    <>
      <path d="M9 14L4 9l5-5" />
      <path d="M4 9h10.5a5.5 5.5 0 010 11H11" />
    </>
  ),
  repeat: (
    <>
      <circle cx="12" cy="12" r="9" />
      <path d="M8 8l8 8M16 8l-8 8" />
    </>
  ),
  clock: (
    <>
      <circle cx="12" cy="12" r="9" />
      <path d="M12 7v5l3.5 2" />
    </>
  ),
  hourglass: <path d="M7 3h10M7 21h10M8 3c0 5 8 5 8 9s-8 4-8 9M16 3c0 5-8 5-8 9s8 4 8 9" />,
  pin: (
    <>
      <path d="M12 21s-6-6.2-6-11a6 6 0 0112 0c0 4.8-6 11-6 11z" />
      <path d="M3 3l18 18" />
    </>
  ),
  question: (
    <>
      <path d="M12 3l8 3v6c0 4.5-3.4 8.1-8 9-4.6-.9-8-4.5-8-9V6z" />
      <path d="M9.6 9.5a2.5 2.5 0 114 2c-.9.6-1.6 1.1-1.6 2.2M12 16.8v.2" />
    </>
  ),
  ban: (
    <>
      <circle cx="12" cy="12" r="9" />
      <path d="M5.6 5.6l12.8 12.8" />
    </>
  ),
  broken: (
    <>
      <path d="M4 4h6v6H4zM14 4h6v6h-6zM4 14h6v6H4z" />
      <path d="M14 14l2 3-2 3M20 14l-2 3 2 3" />
    </>
  ),
  wallet: (
    <>
      <path d="M3 7h16a2 2 0 012 2v9a2 2 0 01-2 2H3z" />
      <path d="M3 7l12-4v4M16 13.5h2" />
    </>
  ),
  // A ticket stub crossed out: this device holds no (more) rights of the pass.
  lease: (
    <>
      <path d="M3 7h18v3a2 2 0 000 4v3H3v-3a2 2 0 000-4z" />
      <path d="M4 4l16 16" />
    </>
  ),
  // A list with a clock: the deny list is too old.
  stale: (
    <>
      <path d="M4 6h10M4 11h6M4 16h5" />
      <circle cx="16.5" cy="15.5" r="4.5" />
      <path d="M16.5 13.2v2.5l1.6 1" />
    </>
  ),
  offline: (
    <>
      <path d="M2 8.5a15 15 0 0120 0M5.5 12a10 10 0 0113 0M9 15.5a5 5 0 016 0M12 19h.01" />
      <path d="M3 3l18 18" />
    </>
  ),
} as const;

export function VerdictIcon(props: { icon: keyof typeof ICONS }) {
  return (
    <svg class="redeem-icon" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">
      {ICONS[props.icon]}
    </svg>
  );
}

const dateTime = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export function formatWhen(iso: string | undefined, withDate = true): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return withDate ? dateTime.format(t) : timeOnly.format(t);
}

/** Minor units in words: 1250 UAH → "12.50 UAH" (two decimals: every currency the sample catalogue uses). */
export function formatMoney(minor: number, currency = ''): string {
  return `${(minor / 100).toFixed(2)}${currency ? ` ${currency}` : ''}`;
}

/** "3 of 5 uses left", "12.50 UAH left", "Used", …: what is left on the entitlement, by kind. */
export function rightsText(e: NonNullable<RedeemAnswer['entitlement']>): string | null {
  const left = e.rights_left;
  if (e.kind === 'stored_value') return left === undefined ? null : `${formatMoney(left, e.currency)} left${e.rights_total !== undefined ? ` of ${formatMoney(e.rights_total, e.currency)}` : ''}`;
  if (e.kind === 'time_pass') return left === undefined ? 'Unlimited entries while valid' : `${left} ${left === 1 ? 'entry' : 'entries'} left here`;
  if (left === undefined) return null;
  if (left === 0) return e.kind === 'single_use' ? 'Used' : 'No uses left';
  return e.rights_total !== undefined ? `${left} of ${e.rights_total} ${e.rights_total === 1 ? 'use' : 'uses'} left` : `${left} ${left === 1 ? 'use' : 'uses'} left`;
}

export interface VerdictProps {
  answer: RedeemAnswer;
  /** The venue names known to this screen, to show "Museum of Art" rather than its id. */
  venueName: (id: string) => string;
  /** Undo is offered while the redemption's undo window is open and not yet used. */
  onUndo?: () => void;
  undoing?: boolean;
  undoProblem?: string | null;
  onNext: () => void;
  /** When the screen returns to scanning by itself (ms since epoch), to show the countdown. */
  autoNextAt?: number;
  now: number;
  /** When the answer came from the camera: its timing, published on the element (data-first-frame-at, data-shown-at). */
  timing?: ScanTiming;
  /** When this device's deny list was last complete (for DENY_LIST_STALE's advice), if known. */
  denyListAsOf?: string | null;
}

export function VerdictScreen(props: VerdictProps) {
  const { answer, now } = props;
  const look = VERDICTS[answer.verdict] ?? { words: answer.verdict.replace(/_/g, ' '), tone: answer.ok ? 'ok' : 'refused', icon: answer.ok ? 'check' : 'ban' };
  const e = answer.entitlement;
  const r = answer.redemption;
  const undoLeft = r && !r.undone_at && answer.verdict === 'REDEEMED' ? Math.ceil((Date.parse(r.undo_until) - now) / 1000) : 0;
  const rights = e ? rightsText(e) : null;
  const advice = staffAdvice(answer.verdict, now, props.denyListAsOf);
  const risk = answer.lease ? boundRiskText(answer.lease) : null;
  // "Camera frame to verdict" (issue 14 benchmark): the frame after the one that first painted this verdict.
  const element = useRef<HTMLElement>(null);
  useEffect(() => {
    let frame = requestAnimationFrame(() => {
      frame = requestAnimationFrame(() => element.current?.setAttribute('data-shown-at', String(performance.now())));
    });
    return () => cancelAnimationFrame(frame);
  }, [answer]);
  const timingAttributes = props.timing ? { 'data-first-frame-at': String(props.timing.firstFrameAt), 'data-decoded-at': String(props.timing.decodedAt), 'data-frames': String(props.timing.frames) } : {};
  return (
    <section ref={element} {...timingAttributes} class={`redeem-verdict tone-${look.tone}`} data-testid="redeem-verdict" data-verdict={answer.verdict} aria-live="assertive" aria-labelledby="redeem-verdict-words">
      <div class="redeem-verdict-head">
        <VerdictIcon icon={look.icon} />
        <h3 id="redeem-verdict-words" class="redeem-verdict-words" data-testid="redeem-verdict-words">
          {look.words}
        </h3>
      </div>
      <p class="redeem-verdict-message" data-testid="redeem-verdict-message">
        {answer.message}
      </p>
      {advice ? (
        <p class="redeem-advice" data-testid="redeem-advice">
          {advice}
        </p>
      ) : null}
      {answer.previous ? (
        <p class="redeem-verdict-previous" data-testid="redeem-previous">
          {`First used ${formatWhen(answer.previous.at)} at ${props.venueName(answer.previous.venue)}${answer.previous.screen ? ` (${answer.previous.screen})` : ''}`}
        </p>
      ) : null}
      {e ? (
        <dl class="redeem-facts" data-testid="redeem-entitlement">
          <dt>Product</dt>
          <dd data-testid="redeem-title">{e.title ?? e.product_ref ?? e.product_cid}</dd>
          {rights ? (
            <>
              <dt>Left</dt>
              <dd data-testid="redeem-rights">{rights}</dd>
            </>
          ) : null}
          {answer.lease ? (
            <>
              <dt>Lease</dt>
              <dd data-testid="redeem-lease" data-left={answer.lease.left} data-rights={answer.lease.rights}>
                {leaseText(answer.lease, e.kind, e.currency)}
              </dd>
            </>
          ) : null}
          <dt>Valid</dt>
          <dd data-testid="redeem-validity">{`${formatWhen(e.valid_from)} – ${formatWhen(e.valid_until)}`}</dd>
          {r ? (
            <>
              <dt>Here</dt>
              <dd>{`${props.venueName(r.venue)}, ${formatWhen(r.at)}${r.amount !== undefined ? `, ${formatMoney(r.amount, e.currency)}` : ''}`}</dd>
            </>
          ) : null}
        </dl>
      ) : null}
      {answer.lease && !e ? (
        <p class="redeem-verdict-previous" data-testid="redeem-lease">
          {leaseText(answer.lease)}
        </p>
      ) : null}
      {risk ? (
        <p class="redeem-risk" role="note" data-testid="redeem-lease-risk" data-beyond={answer.lease?.beyond ?? 0} data-bound={answer.lease?.bound ?? ''}>
          {risk}
        </p>
      ) : null}
      {props.undoProblem ? (
        <p class="redeem-problem" role="alert" data-testid="redeem-undo-problem">
          {props.undoProblem}
        </p>
      ) : null}
      <div class="redeem-actions">
        <button type="button" class="redeem-next" data-testid="redeem-next" onClick={props.onNext}>
          {`Next scan${props.autoNextAt ? ` (${Math.max(0, Math.ceil((props.autoNextAt - now) / 1000))} s)` : ''}`}
        </button>
        {props.onUndo && undoLeft > 0 ? (
          <button type="button" class="redeem-undo" data-testid="redeem-undo" disabled={props.undoing} onClick={props.onUndo}>
            {`Undo (${undoLeft} s)`}
          </button>
        ) : null}
      </div>
    </section>
  );
}

/** The runtime itself cannot be reached: nothing was redeemed, and staff are told so plainly. */
export function UnreachableScreen(props: { onRetry: () => void; onNext: () => void }) {
  return (
    <section class="redeem-verdict tone-caution" data-testid="redeem-unreachable" role="alert">
      <div class="redeem-verdict-head">
        <VerdictIcon icon="offline" />
        <h3 class="redeem-verdict-words">NO CONNECTION TO THE RUNTIME</h3>
      </div>
      <p class="redeem-verdict-message">Tessera on this device is not answering, so nothing was redeemed. Check that it is running, then try again.</p>
      <div class="redeem-actions">
        <button type="button" class="redeem-next" onClick={props.onRetry}>
          Try again
        </button>
        <button type="button" class="redeem-undo" onClick={props.onNext}>
          Back to scanning
        </button>
      </div>
    </section>
  );
}
