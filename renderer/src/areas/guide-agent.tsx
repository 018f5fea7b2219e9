/**
 * The Journey Guide talks through the guide agent (issue 17 point 8; seed 000 §5.1, §7.3, §8): a chat on the Guide
 * tab when this runtime offers an enabled `journey-guide` agent (`GET /api/agents`); nothing changes on the tab when
 * it does not.
 *
 * - One agent session per journey: found again by its metadata (`journey_id`) among the caller's sessions, else
 *   opened at the first question with `{journey_id, product_runtime_session_id, language}`.
 * - A question is a turn (`POST …/messages`); the answer streams in from the session's room (`/ws/agents/:id`,
 *   `message.delta` then `message.assistant`; the transport reconnects with `after` = the last seq seen, a gap reloads
 *   the transcript). The transcript is read again when the turn ends, so a transport without a room (Electron) shows
 *   the same chat.
 * - Proposals the turn made (and `GET /api/agents/proposals?session=`) are returned for the Guide's suggestion cards
 *   (./guide-proposal.tsx); the Guide runs the decision (`approve`/`reject`) and reads the journey again after it.
 * - Rule-based (no model, or the model down: the summary's or the session's `degraded`, a `session.degraded` event, an
 *   answer whose source is `fallback`): the panel says so in plain words.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AgentProposalView, AgentRoomEvent, AgentSessionView, AgentSummaryView, AgentTranscriptEntry } from '../../../main/common/agents-api.js';
import type { TesseraClient } from '../../../main/common/api.js';
import type { JourneyLanguage, JourneyView } from '../../../main/common/journeys.js';
import { GUIDE_AGENT, addEntry, awaiting, linesOf, mergeProposals, sessionForJourney } from './guide-agent-model.js';
import type { ChatLine } from './guide-agent-model.js';
import { agentProblemWords, codeOf, textsFor } from './guide-model.js';
import type { GuideTexts } from './guide-model.js';

export interface GuideAgent {
  /** A journey-guide agent is offered to this caller and enabled. */
  enabled: boolean;
  /** Answers come from rules: the agent's model is missing or down. */
  degraded: boolean;
  session: AgentSessionView | null;
  lines: ChatLine[];
  /** The question being answered, until the turn ends. */
  asking: string | null;
  /** The largest transcript seq before the question: lines after it belong to the turn in progress. */
  askedAfter: number;
  /** The answer streamed so far (`message.delta`). */
  streaming: string;
  /** The agent's proposals waiting for the traveller. */
  cards: AgentProposalView[];
  problem: string | null;
  note: string | null;
  ask(text: string): Promise<void>;
  /** Approve or reject a card; rejects with the route's error (the Guide shows it). */
  decide(proposal: AgentProposalView, decision: 'approve' | 'reject'): Promise<void>;
}

/** The guide agent of `journey` (a started journey), for the Guide tab. */
export function useGuideAgent(client: TesseraClient, journey: JourneyView | null, lang: JourneyLanguage): GuideAgent {
  const agents = client.agents;
  const t = textsFor(lang).agent;
  const [summary, setSummary] = useState<AgentSummaryView | null>(null);
  const [session, setSession] = useState<AgentSessionView | null>(null);
  const [degraded, setDegraded] = useState<boolean | null>(null);
  const [lines, setLines] = useState<ChatLine[]>([]);
  const [asking, setAsking] = useState<string | null>(null);
  const [askedAfter, setAskedAfter] = useState(0);
  const [streaming, setStreaming] = useState<{ turn: string; text: string } | null>(null);
  const [proposals, setProposals] = useState<AgentProposalView[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const journeyId = journey?.journey_instance_id ?? null;
  // Answers for a journey that is no longer shown are dropped.
  const shown = useRef(journeyId);
  shown.current = journeyId;
  const opening = useRef<Promise<AgentSessionView> | null>(null);

  // Asked once a journey is under way (a traveller without one has nothing to ask the guide about).
  const hasJourney = journeyId !== null;
  useEffect(() => {
    if (!hasJourney) return;
    let alive = true;
    agents.agents().then(
      (list) => alive && setSummary(list.find((a) => a.type === GUIDE_AGENT && a.enabled) ?? null),
      () => alive && setSummary(null),
    );
    return () => {
      alive = false;
    };
  }, [client, hasJourney]);

  const reload = async (id: string, forJourney: string) => {
    const [entries, listed] = await Promise.all([agents.transcript(id, { limit: 1000 }), agents.proposals({ session: id })]);
    if (shown.current !== forJourney) return;
    setLines(linesOf(entries));
    setProposals((old) => mergeProposals(old, listed));
  };

  // The journey's session, if one was opened before (another visit to the tab, a reload of the page).
  useEffect(() => {
    setSession(null);
    setDegraded(null);
    setLines([]);
    setAsking(null);
    setStreaming(null);
    setProposals([]);
    setProblem(null);
    setNote(null);
    opening.current = null;
    if (!summary || !journeyId) return;
    let alive = true;
    agents.sessions({ agent_type: GUIDE_AGENT, limit: 200 }).then(
      async (list) => {
        const found = sessionForJourney(list, journeyId);
        if (!alive || !found || shown.current !== journeyId) return;
        setSession(found);
        setDegraded(found.degraded);
        await reload(found.id, journeyId);
      },
      () => undefined,
    );
    return () => {
      alive = false;
    };
  }, [client, summary, journeyId]);

  // Spoken words no intent understood go to the same guide (the I/O router asks the journey's guide agent): a session
  // speech opened is taken up here too, and its turns then show in the chat.
  const current = useRef<string | null>(null);
  current.current = session?.id ?? null;
  useEffect(() => {
    if (!summary || !journeyId) return;
    const forJourney = journeyId;
    return client.subscribe(['io.input'], (event) => {
      const p = event.payload as { kind?: unknown; agent_session?: unknown } | null;
      if (p?.kind !== 'agent' || typeof p.agent_session !== 'string' || p.agent_session === current.current) return;
      agents.session(p.agent_session).then(
        async (s) => {
          if (shown.current !== forJourney || s.metadata['journey_id'] !== forJourney) return;
          setSession(s);
          setDegraded(s.degraded);
          await reload(s.id, forJourney);
        },
        () => undefined,
      );
    });
  }, [client, summary, journeyId]);

  // The session's room: the answer as it is written, and the session's state.
  const sessionId = session?.id ?? null;
  useEffect(() => {
    if (!sessionId || !journeyId || !agents.room) return;
    const forJourney = journeyId;
    const onEvent = (e: AgentRoomEvent) => {
      if (shown.current !== forJourney) return;
      const d = e.data;
      switch (e.type) {
        case 'message.user':
        case 'message.assistant': {
          const entry = d['entry'] as AgentTranscriptEntry | undefined;
          if (!entry) return;
          setLines((old) => addEntry(old, entry));
          if (entry.type === 'assistant' && entry.text.trim() !== '') setStreaming((s) => (s?.turn === entry.turn ? null : s));
          return;
        }
        case 'message.delta': {
          const turn = String(d['turn'] ?? '');
          const piece = String(d['text'] ?? '');
          setStreaming((s) => (s?.turn === turn ? { turn, text: s.text + piece } : { turn, text: piece }));
          return;
        }
        case 'tool.call':
          // The model asked for a tool: what it wrote before is not the answer (the answer comes after the tool).
          setStreaming(null);
          return;
        case 'turn.completed':
        case 'turn.failed':
          setStreaming(null);
          return;
        case 'session.degraded':
          setDegraded(d['degraded'] === true);
          return;
        case 'session.state':
          setSession((s) => (s ? { ...s, state: d['state'] as AgentSessionView['state'] } : s));
          return;
        default:
          return;
      }
    };
    const room = agents.room(sessionId, 0, {
      onEvent,
      // Events were lost while away: the transcript says what they were.
      onHello: (gap) => void (gap && reload(sessionId, forJourney).catch(() => undefined)),
    });
    return () => room.close();
  }, [client, sessionId, journeyId]);

  /** The journey's session: the one found or opened, or opened now (once, whoever asks first). */
  const ensure = (j: JourneyView): Promise<AgentSessionView> => {
    if (session && session.state !== 'closed') return Promise.resolve(session);
    opening.current ??= agents
      .open({ agent_type: GUIDE_AGENT, metadata: { journey_id: j.journey_instance_id, product_runtime_session_id: j.product_runtime_session_id, language: lang } })
      .then((s) => {
        if (shown.current === j.journey_instance_id) {
          setSession(s);
          setDegraded(s.degraded);
        }
        return s;
      })
      .finally(() => {
        opening.current = null;
      });
    return opening.current;
  };

  const ask = async (text: string) => {
    const value = text.trim();
    if (!journey || !value || asking !== null) return;
    const forJourney = journey.journey_instance_id;
    setProblem(null);
    setNote(null);
    setAskedAfter(lines.reduce((m, l) => Math.max(m, l.seq), 0));
    setAsking(value);
    setStreaming(null);
    try {
      const s = await ensure(journey);
      const result = await agents.say(s.id, value);
      if (shown.current !== forJourney) return;
      setDegraded(result.source === 'fallback');
      setProposals((old) => mergeProposals(old, result.proposals));
      if (result.outcome === 'failed') setProblem(t.turnFailed);
      else if (result.outcome === 'paused') setProblem(t.paused);
      else if (awaiting(result.proposals).length > 0) setNote(t.suggested);
      await reload(s.id, forJourney);
    } catch (err) {
      if (shown.current !== forJourney) return;
      // A session closed meanwhile (by an operator, or it ended): the next question opens a new one.
      if (codeOf(err) === 'AGENT_SESSION_CLOSED') setSession(null);
      if (codeOf(err) === 'AGENT_DISABLED') setDegraded(true);
      setProblem(agentProblemWords(err, lang));
    } finally {
      if (shown.current === forJourney) {
        setAsking(null);
        setStreaming(null);
      }
    }
  };

  const decide = async (proposal: AgentProposalView, decision: 'approve' | 'reject') => {
    setNote(null);
    let view: AgentProposalView;
    try {
      view = await agents.decide(proposal.id, decision);
    } catch (err) {
      // Decided elsewhere (another screen, an operator): show it as it stands now.
      if (codeOf(err) === 'AGENT_PROPOSAL_DECIDED' && session) await agents.proposals({ session: session.id }).then((list) => setProposals((old) => mergeProposals(old, list)), () => undefined);
      throw new Error(agentProblemWords(err, lang));
    }
    setProposals((old) => mergeProposals(old, [view]));
    if (view.state === 'executed') setNote(t.accepted);
    else if (view.state === 'rejected') setNote(t.rejected);
    else if (view.state === 'failed') setNote(t.failed(view.error?.message ?? view.state));
  };

  return {
    enabled: summary !== null && journeyId !== null,
    degraded: degraded ?? summary?.degraded ?? false,
    session,
    lines,
    asking,
    askedAfter,
    streaming: streaming?.text ?? '',
    cards: awaiting(proposals),
    problem,
    note,
    ask,
    decide,
  };
}

/** The chat panel: what was said, the answer as it streams, and a large input for the next question. */
export function GuideAgentPanel(props: { agent: GuideAgent; texts: GuideTexts }) {
  const { agent, texts } = props;
  const t = texts.agent;
  const [text, setText] = useState('');
  const list = useRef<HTMLOListElement | null>(null);
  const heard = agent.lines.some((l) => l.who === 'you' && l.seq > agent.askedAfter);
  const answered = agent.lines.some((l) => l.who === 'guide' && l.seq > agent.askedAfter);
  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [agent.lines.length, agent.streaming, agent.asking]);

  const submit = (e: Event) => {
    e.preventDefault();
    const value = text.trim();
    if (!value || agent.asking !== null) return;
    setText('');
    void agent.ask(value);
  };

  return (
    <section class="guide-agent" aria-labelledby="guide-agent-title" data-testid="guide-agent" data-session={agent.session?.id ?? ''} data-degraded={String(agent.degraded)} data-asking={String(agent.asking !== null)}>
      <h3 id="guide-agent-title">{t.heading}</h3>
      {agent.degraded && (
        <p class="guide-banner" role="status" data-testid="guide-agent-degraded">
          {t.ruleBased}
        </p>
      )}
      <ol class="guide-agent-log" ref={list} data-testid="guide-agent-log" aria-live="polite">
        {agent.lines.length === 0 && agent.asking === null && <li class="guide-agent-line hint">{t.hint}</li>}
        {agent.lines.map((l) => (
          <li key={l.key} class={`guide-agent-line ${l.who}`} data-testid="guide-agent-line" data-who={l.who} data-source={l.who === 'guide' ? (l.fallback ? 'fallback' : 'model') : undefined}>
            {l.text}
          </li>
        ))}
        {agent.asking !== null && !heard && (
          <li class="guide-agent-line you pending" data-who="you">
            {agent.asking}
          </li>
        )}
        {agent.asking !== null && !answered && (
          <li class="guide-agent-line guide pending" data-testid="guide-agent-streaming" data-who="guide">
            {agent.streaming || t.thinking}
          </li>
        )}
      </ol>
      {agent.note && (
        <p class="guide-notice" role="status" data-testid="guide-agent-note">
          {agent.note}
        </p>
      )}
      {agent.problem && (
        <p class="guide-problem" role="alert" data-testid="guide-agent-problem">
          {agent.problem}
        </p>
      )}
      <form class="guide-agent-form" onSubmit={submit}>
        <input class="guide-agent-input" data-testid="guide-agent-input" aria-label={t.label} placeholder={t.placeholder} value={text} maxLength={4000} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        <button type="submit" data-testid="guide-agent-send" disabled={agent.asking !== null || text.trim() === ''}>
          {agent.asking !== null ? t.thinking : t.send}
        </button>
      </form>
    </section>
  );
}
