/**
 * The I/O router (seed 001 §3, issue 6 point 1): `send(channel, text)` and `await({prefer, timeout})` over the
 * channel matrix `ctx.io = {in: [voice, text], out: [console, voice, ui, …]}`.
 *
 * Contract:
 * - It serves the scenario engine through the bus: an `io.say` event becomes one message (keyed by the step's
 *   idempotency key, recorded in the same transaction as the effect); an `io.ask` event sends its prompt and
 *   waits for an answer from text (HTTP, the UI) or voice (listen → text), which it publishes as `io.answer`.
 * - Out channels: the event's `channel`, else the run's `ctx.io.out`, else the router's defaults. A message is
 *   `delivered` when at least one channel took it and `inboxed` into the persistent `inbox.local` when none
 *   could (or when `inbox.local` was asked for); each channel that could not take it is journaled as
 *   `io.degraded` with the reason, and the outcome as `io.delivered` or `io.inboxed`. Nothing is dropped: a
 *   message still pending after a crash is delivered again at start.
 * - In: an utterance with a run id and step answers that question; without, it answers the oldest waiting
 *   question of its dialogue session (or `await`, for input of no session); with none waiting, it goes to the
 *   intent router and starts the matching scenario, with `ctx.io` set so the answer comes back on the channel it
 *   came from; one no intent matches goes to the conversational agent when there is one (`converse`: the journey
 *   guide, issue 17 point 8), whose answer is the reply, else it is answered "not understood". An utterance that
 *   is not the answer a waiting question expects starts the intent it asks for, and the question stays open for
 *   its answer (issue 15): when the io.ask declared `expects` (./expects.ts), any utterance that does not fit it
 *   and that an intent understands; when it declared nothing, one that matches an intent well (score ≥
 *   {@link STRONG_INTENT_SCORE}, no free-text wildcard). Speech heard while listening for a question that declared
 *   `expects` is decided the same way (for one that did not, it is the answer).
 * - Sessions (issue 13 point 14): each Journey Guide's traveller is a dialogue session. A run started by an
 *   utterance carries its `ctx.session_id`; its messages and questions belong to that session: they reach only
 *   the UI showing it, and once the session has ended (the next traveller announced, or no input for the idle
 *   time) its questions expire (the io.ask gets `null`) and its messages go to `inbox.local`, never to the next
 *   traveller's screen or the speaker.
 * - Every understood request gets an answer: when a run started by an utterance fails or is cancelled, the
 *   traveller is told in plain words (./replies.ts) on the run's out channels; the reason stays in the run.
 * - Answers are in the language of the utterance: the run gets `ctx.language` (the recognized rule set's), and
 *   the router's own words come from the message catalogue (./messages.ts) in that language.
 * - Locks: speaking holds `tts`, listening holds `mic`, both as the run (re-entrant with the run's own step
 *   locks) — so two runs never speak at once nor listen at once.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { TesseraEvent } from '../../common/api.js';
import { TesseraError, toErrorData } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import { isStoreFailure } from '../store/failures.js';
import type { IntentRouter, Language, RuleSet } from '../intents/index.js';
import type { Disposable } from '../lifecycle/index.js';
import type { Logger } from '../log/index.js';
import type { LockManager, LockPriority, LockState } from '../scenarios/locks.js';
import type { Store } from '../store/index.js';
import type { ListenResult, Recorder, VoiceStatus } from '../voice/types.js';
import { consoleChannel, uiChannel, voiceChannel } from './channels.js';
import type { OutputChannel, UiClient, VoiceSetup } from './channels.js';
import { fitsExpectation } from './expects.js';
import { loadMessageCatalogue } from './messages.js';
import type { MessageCatalogue } from './messages.js';
import { failureText, guessLanguage } from './replies.js';
import type { RunEnd } from './replies.js';
import { createIoStore, shownText } from './store.js';
import { isSecret, reveal } from '../../common/expr.js';
import type { IoMessage, IoQuestion, IoSession, IoStore, SessionEndReason } from './store.js';

/** Output channels with an adapter. Any other name in `ctx.io.out` is reported unavailable. */
export const OUT_CHANNELS = ['console', 'ui', 'voice', 'inbox.local'] as const;
export const IN_CHANNELS = ['voice', 'text'] as const;
export type InChannel = (typeof IN_CHANNELS)[number];

/** Seed 001 §3: `ctx.io`. */
export interface IoMatrix {
  in: string[];
  out: string[];
}

/** What the router adds to an utterance's slots when it starts the scenario of its intent. */
export interface DialogueContext {
  /** The answer comes back the way the utterance came. */
  io: IoMatrix;
  utterance: string;
  intent: string;
  /** The language of the rule set that recognized it: the run's messages are rendered in it. */
  language: Language;
  /** The dialogue session the utterance came from: the run's messages and questions belong to it. */
  session_id?: string;
}

/** A dialogue context of the right shape, for checking at load that intents' scenarios accept it. */
export const DIALOGUE_CONTEXT_SAMPLE: DialogueContext = { io: { in: ['voice', 'text'], out: ['voice', 'ui'] }, utterance: 'hello', intent: 'greet', language: 'en', session_id: 'ses_sample' };

/** An utterance recognized at least this well starts its intent rather than answering a waiting question. */
export const STRONG_INTENT_SCORE = 0.9;
/** Default idle time after which a traveller's dialogue session is reset (`TESSERA_IDLE_RESET`). */
export const DEFAULT_IDLE_RESET_MS = 120_000;
/** A session id: what `startSession` makes, and what clients may name. */
export const SESSION_ID_PATTERN = /^ses_[A-Za-z0-9_-]{8,64}$/;

/**
 * The idle reset from the environment: `TESSERA_IDLE_RESET` as a duration (`90s`, `2m`, `1h`, or ms), `0` or
 * `off` to disable it. Throws CONFIG_INVALID for anything else; undefined when unset.
 */
export function idleResetFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env['TESSERA_IDLE_RESET']?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'off') return 0;
  const m = /^(\d+)(ms|s|m|h)?$/.exec(raw);
  if (!m) throw new TesseraError('CONFIG_INVALID', `TESSERA_IDLE_RESET must be a duration such as 90s, 2m or 1h (or 0/off), not "${raw}".`);
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
}

/** Longest utterance or message text accepted, in characters. */
export const MAX_IO_TEXT = 2000;

export interface IoRouterOptions {
  store: Store;
  bus: Bus;
  logger: Logger;
  locks: LockManager;
  clock?: () => number;
  /**
   * The speech stack, or a promise of it (the runtime builds it while scenarios resume; deliveries wait for
   * it). Absent: voice is disabled.
   */
  voice?: VoiceSetup | Promise<VoiceSetup>;
  /** Utterances that answer nothing are routed here. */
  intents?: () => IntentRouter | undefined;
  /** The loaded intent rule sets: their `city` and `place` lists say what fits a question expecting one. */
  ruleSets?: () => readonly RuleSet[];
  /** A run's ctx, for its `ctx.io` matrix. */
  runContext?: (runId: string) => Record<string, unknown> | undefined;
  /** A run's priority: its speaking and listening wait for the locks in that order (default NORM). */
  runPriority?: (runId: string) => LockPriority | undefined;
  /** Default matrix: in [voice, text], out [voice, ui]. */
  defaults?: Partial<IoMatrix>;
  /** The console channel's writer (default: the logger). */
  console?: (text: string, message: IoMessage) => void;
  /** How long speaking or listening waits for its lock (default 60 s). */
  lockTimeoutMs?: number;
  /** How long one listen waits for speech (default 10 s). */
  listenTimeoutMs?: number;
  /** The words of the router's own answers, per language (default: the app's resources/messages). */
  messages?: MessageCatalogue;
  /**
   * A conversational agent for what no intent matches (issue 17 point 8: the Journey Guide talks through the guide
   * agent, typed and spoken): an utterance that answers no question and starts no intent is given to it; its answer
   * is the reply, delivered like the router's own (spoken and shown for speech, shown for text). It answers null when
   * it has nothing to add (no journey, no agent, no model): then the utterance is not understood, as without it.
   * A throw is logged and treated as null. Never asked for answers to open questions nor for utterances an intent
   * matches.
   */
  converse?: (text: string, ctx: { channel: InChannel; session: string | null; language: string }) => Promise<ConverseAnswer | null>;
  /**
   * A dialogue session with no input for this long is ended (its questions expire, the UI starts afresh for the
   * next traveller); 0 disables it. Default: `TESSERA_IDLE_RESET`, else {@link DEFAULT_IDLE_RESET_MS}.
   */
  idleResetMs?: number;
}

/** What the conversational agent ({@link IoRouterOptions.converse}) answered. */
export interface ConverseAnswer {
  text: string;
  /** The agent session that answered, and its turn (its transcript holds the utterance and the answer). */
  agent_session: string;
  turn: string;
  /** The turn's trace: the reply's delivery is journaled in it. */
  trace_id?: string;
}

/** An utterance the router received. */
export interface IoInput {
  text: string;
  channel: InChannel;
}

/** What became of an utterance. */
export type InputOutcome = (
  | { kind: 'answer'; text: string; channel: InChannel; run_id: string | null; step: string | null }
  | {
      kind: 'intent';
      text: string;
      channel: InChannel;
      intent: string;
      slots: Record<string, unknown>;
      run_id: string | null;
      error?: ReturnType<typeof toErrorData>;
      /** A question of the session was waiting, but the utterance was a clear request: the question stays open. */
      question_left_open?: { run_id: string; step: string };
    }
  | { kind: 'unrecognized'; text: string; channel: InChannel }
  /** No intent matched; the conversational agent answered (its answer was the reply). */
  | { kind: 'agent'; text: string; channel: InChannel; agent_session: string; turn: string }
) & {
  /** The dialogue session it came from, when it came from one. */
  session?: string;
};

export interface HearOutcome {
  listen: ListenResult;
  /** Absent when nothing was heard (`no_speech`) or nobody waits for it any more. */
  outcome?: InputOutcome;
}

export interface ChannelStatus {
  available: boolean;
  reason?: string;
}

export interface IoStatus {
  defaults: IoMatrix;
  out: Record<string, ChannelStatus>;
  in: Record<InChannel, ChannelStatus>;
  /** The speech stack's parts, or null when voice is disabled. */
  voice: VoiceStatus | null;
  voice_enabled: boolean;
  /** Why voice is off (the install command included), when it is. */
  voice_disabled_reason: string | null;
  ui_clients: number;
  inbox_unread: number;
  questions: IoQuestion[];
  locks: LockState;
  /** Open dialogue sessions, and after how long without input one is reset (0: never). */
  sessions: { open: number; idle_reset_ms: number };
}

export interface SendOptions {
  run_id?: string | null;
  /** Idempotency key; a second send with the same key returns the first message. */
  key?: string;
  trace_id?: string | null;
  /** The dialogue session it is for (null: everyone). */
  session?: string | null;
}

export interface AwaitOptions {
  /** Listen on the microphone first when `voice`. Default `text`. */
  prefer?: InChannel;
  /** Ms; resolves null when nothing came. Default 20 000. */
  timeout?: number;
  /** Input channels allowed (default: the router's `in`). */
  in?: string[];
  signal?: AbortSignal;
}

export interface InputOptions {
  run_id?: string;
  step?: string;
  channel?: InChannel;
  /** The dialogue session it comes from (must be open: IO_SESSION_ENDED otherwise). */
  session?: string;
  /**
   * With `run_id`/`step`: the utterance was heard while listening for that question, not addressed to it, so it is
   * decided like unaddressed input (an unrelated request starts its intent; the question stays open).
   */
  heard_for_question?: boolean;
}

/** What `startSession` did. */
export interface SessionStart {
  session: IoSession;
  /** The session it ended first (`end`), when that one was open. */
  ended: { id: string; reason: SessionEndReason } | null;
}

export interface IoRouter extends Disposable {
  /** Subscribe to the engine's `io.say`/`io.ask`, deliver messages left pending by a crash, re-open questions. */
  start(): void;
  /** Deliver `text` on `channel` (or the defaults); resolves with the message in its final state. */
  send(channel: string | readonly string[] | null | undefined, text: string, options?: SendOptions): Promise<IoMessage>;
  /** The next utterance from an allowed input channel, or null after `timeout`. */
  await(options?: AwaitOptions): Promise<IoInput | null>;
  /** An utterance typed or transcribed: answers a question or starts a scenario through the intents. */
  input(text: string, options?: InputOptions): Promise<InputOutcome>;
  /** Listen to `recorder` (holding `mic`) and treat the transcript as input. */
  hear(recorder: Recorder, options?: InputOptions & { owner?: string; signal?: AbortSignal }): Promise<HearOutcome>;
  /**
   * Listen on this device's microphone (push-to-talk in the Electron window, where capture happens in the
   * main process). Throws VOICE_UNAVAILABLE when there is none; aborting `signal` (the release of the button)
   * ends the capture, and what was said so far is transcribed.
   */
  listen(options?: { signal?: AbortSignal; session?: string }): Promise<HearOutcome>;
  /** A renderer joins the `ui` channel until disposed. */
  attachUi(client: UiClient): Disposable;
  /**
   * Recompile the speech grammar from the intent rules as they are now (a dynamic list such as `{place}` changed,
   * issue 15); the next utterance is heard with it. Resolves to its cid, or null without a grammar-based STT.
   */
  refreshGrammar(): Promise<string | null>;
  /** Starts a traveller's dialogue session; with `end`, ends that one first (the next traveller: `new_traveller`). */
  startSession(options?: { end?: string }): SessionStart;
  /** Ends an open session: its questions expire, its later messages go to inbox.local. False when it was not open. */
  endSession(id: string, reason: SessionEndReason): boolean;
  session(id: string): IoSession | undefined;
  inbox(query?: { include_acked?: boolean; limit?: number; after?: number }): IoMessage[];
  ack(ids: readonly number[]): number[];
  message(id: number): IoMessage | undefined;
  status(): IoStatus;
  /** Resolves when no delivery or listen is in flight. */
  idle(): Promise<void>;
}

interface Waiter {
  run_id: string | null;
  step: string | null;
  /** The dialogue session the question belongs to (null: no session's). */
  session: string | null;
  /** What answer the question expects (./expects.ts); null: it did not say. */
  expects: string | null;
  channels: string[];
  resolve: (input: IoInput) => void;
  /** Stops a listen started for this waiter. */
  controller: AbortController;
}

const asList = (v: unknown): string[] | null => {
  if (typeof v === 'string' && v !== '') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string') && v.length > 0) return [...new Set(v as string[])];
  return null;
};

export function createIoRouter(options: IoRouterOptions): IoRouter {
  const { bus, logger, locks } = options;
  const clock = options.clock ?? Date.now;
  const db: IoStore = createIoStore(options.store, clock);
  const defaults: IoMatrix = { in: options.defaults?.in ?? ['voice', 'text'], out: options.defaults?.out ?? ['voice', 'ui'] };
  let setup: VoiceSetup = { reason: 'voice is starting' };
  const voiceReady: Promise<void> = Promise.resolve(options.voice ?? { reason: 'voice is disabled' })
    .then(
      (s) => void (setup = s),
      (err: unknown) => void (setup = { reason: `voice could not start: ${toErrorData(err).message}` }),
    )
    .then(() => {
      // Built while the runtime was closing: nobody will use it, and it holds engines.
      if (disposed) return void setup.voice?.dispose();
      // Journaled once per start: whether this device speaks and listens, and if not, why and how to fix it.
      const parts = setup.voice?.status() ?? null;
      if (!setup.voice) logger.warn('voice is disabled', { reason: setup.reason });
      publish('io.voice.status', { enabled: setup.voice !== undefined, reason: setup.voice ? null : (setup.reason ?? 'voice is disabled'), parts });
    });
  const microphone = () => setup.microphone ?? (setup.voice && setup.voice.status().mic.available ? () => setup.voice!.microphone() : undefined);
  const messages = options.messages ?? loadMessageCatalogue();
  const lockTimeoutMs = options.lockTimeoutMs ?? 60_000;
  const listenTimeoutMs = options.listenTimeoutMs ?? 10_000;
  const idleResetMs = options.idleResetMs ?? idleResetFromEnv() ?? DEFAULT_IDLE_RESET_MS;
  const ui = uiChannel();
  const adapters = new Map<string, OutputChannel>([
    ['console', consoleChannel(options.console ?? ((text, m) => logger.info('io.console', { text: shownText({ text, sensitive: m.sensitive }), message_id: m.id, run_id: m.run_id })))],
    ['ui', ui],
    ['voice', voiceChannel({ setup: () => setup, locks, bus, lockTimeoutMs })],
  ]);

  const inFlight = new Set<Promise<unknown>>();
  const delivering = new Set<number>();
  // Cancelling or failing a run stops what the router does for it.
  const runControllers = new Map<string, AbortController>();
  // The last failed step's error of each unfinished run: why a run failed, in the step's own terms.
  const stepErrors = new Map<string, { code: string; message: string }>();
  const waiters: Waiter[] = [];
  const subscriptions: Disposable[] = [];
  let idleTimer: ReturnType<typeof setInterval> | undefined;
  let disposed = false;
  let hearCount = 0;

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => undefined);
    return p;
  };
  const trace = (id: string | null | undefined) => (id ? { trace_id: id } : {});
  const publish = (topic: string, payload: unknown, traceId?: string | null) => {
    try {
      bus.publish(topic, payload, trace(traceId));
    } catch (err) {
      // The store may be closing; the message row is the record that matters.
      logger.warn('could not journal an io event', { topic, error: err });
    }
  };
  const runSignal = (runId: string | null): AbortController => {
    if (!runId) return new AbortController();
    let c = runControllers.get(runId);
    if (!c) runControllers.set(runId, (c = new AbortController()));
    return c;
  };
  const priorityOf = (runId: string | null | undefined): LockPriority => {
    if (!runId || !options.runPriority) return 'NORM';
    try {
      return options.runPriority(runId) ?? 'NORM';
    } catch {
      return 'NORM'; // not a run (a UI stream's owner) or already gone
    }
  };
  /** The dialogue session a run belongs to: the `ctx.session_id` the utterance that started it gave. */
  const sessionOf = (runId: string | null): string | null => {
    if (!runId || !options.runContext) return null;
    try {
      const id = options.runContext(runId)?.['session_id'];
      return typeof id === 'string' ? id : null;
    } catch {
      return null;
    }
  };
  /** Null while `id` is open, else why its messages must not reach a traveller. */
  const sessionClosed = (id: string): string | null => {
    const found = db.getSession(id);
    if (!found) return `no dialogue session ${id} on this device`;
    return found.ended_at ? `the traveller's dialogue ended (${found.end_reason ?? 'closed'})` : null;
  };
  const matrixOf = (runId: string | null): Partial<IoMatrix> => {
    if (!runId || !options.runContext) return {};
    try {
      const io = options.runContext(runId)?.['io'] as { in?: unknown; out?: unknown } | undefined;
      const out = asList(io?.out);
      const inn = asList(io?.in);
      return { ...(out ? { out } : {}), ...(inn ? { in: inn } : {}) };
    } catch {
      return {};
    }
  };

  // ── out ─────────────────────────────────────────────────────────────────────────────────────────────
  async function deliver(message: IoMessage): Promise<IoMessage> {
    const channels = message.requested ?? matrixOf(message.run_id).out ?? defaults.out;
    const owner = message.run_id ?? message.key;
    // The answer about a run's end is said after the run: the run's own signal (aborted as it ended) must not cut it.
    const signal = message.key.startsWith('run-end:') ? new AbortController().signal : runSignal(message.run_id).signal;
    const delivered: string[] = [];
    const reasons: Record<string, string> = {};
    // A message of a traveller whose dialogue has ended is for nobody at the kiosk now: not shown, not spoken.
    const closed = message.session ? sessionClosed(message.session) : null;
    await Promise.all(
      channels.map(async (name) => {
        if (name === 'inbox.local') return;
        const adapter = adapters.get(name);
        const travellerFacing = name === 'ui' || name === 'voice';
        const why = closed !== null && travellerFacing ? closed : !adapter ? `no adapter for the channel "${name}" (known: ${OUT_CHANNELS.join(', ')})` : name === 'ui' ? ui.unavailableFor(message.session) : adapter.unavailable();
        if (why !== null || !adapter) {
          reasons[name] = why ?? 'unavailable';
          return;
        }
        try {
          await adapter.deliver({ message, owner, priority: priorityOf(message.run_id), signal });
          delivered.push(name);
        } catch (err) {
          reasons[name] = toErrorData(err).message;
        }
      }),
    );
    // Stopping: leave it pending, so the next start delivers it.
    if (disposed && delivered.length === 0) return message;
    const state = delivered.length > 0 && !channels.includes('inbox.local') ? 'delivered' : 'inboxed';
    delivered.sort();
    if (!db.finish(message.id, state, delivered, reasons)) return db.get(message.id) ?? message;
    for (const [channel, reason] of Object.entries(reasons)) publish('io.degraded', { message_id: message.id, run_id: message.run_id, channel, reason }, message.trace_id);
    const of = message.session ? { session: message.session } : {};
    if (state === 'delivered') publish('io.delivered', { message_id: message.id, run_id: message.run_id, text: shownText(message), channels: delivered, ...of }, message.trace_id);
    else publish('io.inboxed', { message_id: message.id, run_id: message.run_id, text: shownText(message), reasons, ...(delivered.length ? { channels: delivered } : {}), ...of }, message.trace_id);
    return db.get(message.id)!;
  }

  const startDelivery = (message: IoMessage): Promise<IoMessage> => {
    if (delivering.has(message.id)) return waitFinished(message.id);
    delivering.add(message.id);
    // After the current transaction: the row must be committed before anything is played.
    const p = voiceReady
      .then(() => deliver(message))
      .finally(() => delivering.delete(message.id));
    return track(p);
  };
  const waitFinished = async (id: number): Promise<IoMessage> => {
    while (delivering.has(id)) await Promise.race([...inFlight]);
    return db.get(id)!;
  };

  const accept = (text: string, requested: string[] | null, opts: SendOptions): { message: IoMessage; created: boolean } => {
    if (typeof text !== 'string' || text.trim() === '') throw new TesseraError('VALIDATION_FAILED', 'The text to send is empty.');
    if (text.length > MAX_IO_TEXT) throw new TesseraError('VALIDATION_FAILED', `The text is ${text.length} characters; at most ${MAX_IO_TEXT}.`);
    return db.accept({ key: opts.key ?? `io:${randomUUID()}`, run_id: opts.run_id ?? null, requested, text, trace_id: opts.trace_id ?? null, session: opts.session ?? null });
  };

  // ── in ──────────────────────────────────────────────────────────────────────────────────────────────
  /**
   * The waiter an utterance would answer: the question named by run and step (of no other session than the
   * utterance's), else the oldest waiting one of the utterance's session on its channel; input of no session
   * also answers `await`.
   */
  const findWaiter = (runId: string | undefined, step: string | undefined, channel: InChannel, session: string | null): Waiter | undefined =>
    runId !== undefined && step !== undefined
      ? waiters.find((w) => w.run_id === runId && w.step === step && (session === null || w.session === null || w.session === session))
      : waiters.find((w) => w.session === session && w.channels.includes(channel));
  const takeWaiter = (w: Waiter): Waiter => {
    waiters.splice(waiters.indexOf(w), 1);
    w.controller.abort(new TesseraError('RUN_CANCELLED', 'answered'));
    return w;
  };

  const answerQuestion = (runId: string, step: string, text: string, channel: InChannel, traceId: string | null) => {
    db.closeQuestion(runId, step);
    publish('io.answer', { run_id: runId, step, text, channel }, traceId);
  };

  /**
   * Opens the question `runId/step`: sends its prompt (unless `resumed`: it was sent before a restart) on
   * `requested` or the run's out channels, then waits for text, or listens once the prompt is out.
   */
  const ask = (q: { runId: string; step: string; prompt: string; requested: string[] | null; traceId: string | null; session: string | null; expects: string | null }, inChannels: string[], resumed: boolean) => {
    if (waiters.some((w) => w.run_id === q.runId && w.step === q.step)) return;
    // Asked for a traveller who has gone: it expires at once, as it would have had they left a moment later.
    if (q.session && sessionClosed(q.session) !== null) return expire({ run_id: q.runId, step: q.step, session: q.session }, q.traceId);
    const waiter: Waiter = {
      run_id: q.runId,
      step: q.step,
      session: q.session,
      expects: q.expects,
      channels: inChannels,
      controller: new AbortController(),
      resolve: (answer) => answerQuestion(q.runId, q.step, answer.text, answer.channel, q.traceId),
    };
    waiters.push(waiter);
    ui.broadcast({ type: 'ask', question: { run_id: q.runId, step: q.step, prompt: q.prompt, ...(q.session ? { session: q.session } : {}) } }, q.session);
    if (resumed) return;
    const sent = accept(q.prompt, q.requested, { key: `ask:${q.runId}/${q.step}`, run_id: q.runId, trace_id: q.traceId, session: q.session });
    const asked = sent.message.state === 'pending' ? startDelivery(sent.message) : Promise.resolve(sent.message);
    // Listen once the question was asked (the prompt must not be heard as the answer).
    if (inChannels.includes('voice')) {
      void track(asked.then(() => (waiters.includes(waiter) && microphone() ? hearFor(waiter) : undefined))).catch((err: unknown) => logger.warn('listening for an answer failed', { run_id: q.runId, step: q.step, error: err }));
    }
  };

  /** A question whose traveller has gone: closed, and its io.ask step gets `null` (no answer), so the run goes on. */
  const expire = (q: { run_id: string; step: string; session: string | null }, traceId: string | null) => {
    db.closeQuestion(q.run_id, q.step);
    publish('io.answer', { run_id: q.run_id, step: q.step, text: null, channel: null, expired: true, ...(q.session ? { session: q.session } : {}) }, traceId);
  };

  const hearFor = async (waiter: Waiter) => {
    const signal = AbortSignal.any([waiter.controller.signal, runSignal(waiter.run_id).signal]);
    return hear(microphone()!(), { ...(waiter.run_id ? { run_id: waiter.run_id, heard_for_question: true } : {}), ...(waiter.step ? { step: waiter.step } : {}), ...(waiter.session ? { session: waiter.session } : {}), signal });
  };

  /** Throws IO_SESSION_ENDED unless `id` is an open session. */
  const openSession = (id: string) => {
    const why = sessionClosed(id);
    if (why !== null) throw new TesseraError('IO_SESSION_ENDED', `The dialogue session ${id} is not open (${why}); start a new one with POST /api/io/session.`);
  };

  async function input(text: string, opts: InputOptions = {}): Promise<InputOutcome> {
    const channel = opts.channel ?? 'text';
    const clean = typeof text === 'string' ? text.trim() : '';
    if (clean === '') throw new TesseraError('VALIDATION_FAILED', 'The utterance is empty.');
    if (clean.length > MAX_IO_TEXT) throw new TesseraError('VALIDATION_FAILED', `The utterance is ${clean.length} characters; at most ${MAX_IO_TEXT}.`);
    if ((opts.run_id === undefined) !== (opts.step === undefined)) throw new TesseraError('VALIDATION_FAILED', 'Give both run_id and step to answer a question, or neither.');
    const session = opts.session ?? null;
    if (session !== null) {
      openSession(session);
      db.touchSession(session);
    }
    const of = session ? { session } : {};
    let outcome: InputOutcome;
    const named = opts.run_id !== undefined && opts.step !== undefined;
    const waiter = findWaiter(opts.run_id, opts.step, channel, session);
    if (named && !waiter) {
      throw new TesseraError('IO_ASK_NOT_FOUND', `No question of run ${opts.run_id} at step ${opts.step} is waiting for an answer${session ? ' in this dialogue' : ''}; see GET /api/io/status for the open ones.`);
    }
    // A request is not swallowed by a question that waits for something else ("what's next?" is not a name).
    // Speech heard while listening for a question is decided only when the question said what it expects: the
    // listen was opened for its answer.
    const decide = !named || (opts.heard_for_question === true && waiter?.expects !== null);
    const request = waiter && decide && waiter.run_id !== null ? unrelatedRequest(clean, waiter.expects) : undefined;
    if (waiter && !request) {
      takeWaiter(waiter).resolve({ text: clean, channel });
      outcome = { kind: 'answer', text: clean, channel, run_id: waiter.run_id, step: waiter.step, ...of };
    } else {
      outcome = { ...(await dispatch(clean, channel, session)), ...of };
      if (request && waiter && outcome.kind === 'intent') outcome.question_left_open = { run_id: waiter.run_id!, step: waiter.step! };
    }
    publish('io.input', outcome);
    return outcome;
  }

  /**
   * The intent `text` asks for instead of answering a question that expects `expects` (see the module comment),
   * if any: one that does not fit what was declared, else one recognized strongly.
   */
  const unrelatedRequest = (text: string, expects: string | null): string | undefined => {
    const route = options.intents?.()?.route(text) ?? null;
    if (!route) return undefined;
    if (expects !== null) return fitsExpectation(expects, text, route, options.ruleSets?.() ?? []) ? undefined : route.intent;
    return route.score >= STRONG_INTENT_SCORE && route.recognition.counts.wildcard === 0 ? route.intent : undefined;
  };

  /** The conversational agent's answer to what no intent matched, or null (none, nothing to add, or it failed). */
  const converse = async (text: string, channel: InChannel, session: string | null, language: string): Promise<ConverseAnswer | null> => {
    if (!options.converse) return null;
    try {
      const answer = await options.converse(text, { channel, session, language });
      if (!answer) return null;
      if (typeof answer.text !== 'string' || answer.text.trim() === '') return null;
      // A reply is at most MAX_IO_TEXT long: a longer answer is cut (the agent's transcript keeps it whole).
      return { ...answer, text: answer.text.length > MAX_IO_TEXT ? `${answer.text.slice(0, MAX_IO_TEXT - 1)}…` : answer.text };
    } catch (err) {
      logger.warn('the conversational agent could not answer; the utterance is not understood', { session, error: err });
      return null;
    }
  };

  async function dispatch(text: string, channel: InChannel, session: string | null): Promise<InputOutcome> {
    const intents = options.intents?.();
    const route = intents?.route(text);
    // The answer comes back the way the utterance came: spoken (and shown) for speech, shown for text. Its
    // follow-up questions may be answered either way.
    const io: IoMatrix = { in: defaults.in, out: channel === 'voice' ? ['voice', 'ui'] : ['ui'] };
    if (!route || !intents) {
      const language = guessLanguage(text, messages);
      const answer = await converse(text, channel, session, language);
      if (answer) {
        // Through the router like any reply: recorded, delivered once, spoken under the `tts` lock.
        void track(startDelivery(accept(answer.text, io.out, { session, ...(answer.trace_id ? { trace_id: answer.trace_id } : {}) }).message)).catch(() => undefined);
        return { kind: 'agent', text, channel, agent_session: answer.agent_session, turn: answer.turn };
      }
      const reply = messages.render('io.not_understood', { text }, language);
      void track(startDelivery(accept(reply, io.out, { session }).message)).catch(() => undefined);
      return { kind: 'unrecognized', text, channel };
    }
    // The run answers in the language it was asked in (its io.say / io.ask messages render in ctx.language),
    // to the session it was asked in (its messages and questions belong to it).
    const language = route.recognition.language;
    let done: Awaited<ReturnType<IntentRouter['dispatch']>>;
    try {
      const dialogue: DialogueContext = { io, utterance: text, intent: route.intent, language, ...(session ? { session_id: session } : {}) };
      done = await intents.dispatch(text, { ...dialogue });
    } catch (err) {
      // A store that cannot write (disk full, locked) is not "cannot do it yet": the caller hears 507/503, nothing written.
      if (!(err instanceof TesseraError) || isStoreFailure(err)) throw err;
      // Understood, but its scenario cannot start (what it needs is not there yet): the speaker gets a plain
      // answer the way they asked, the reason goes with the io.input event (Ops), not into the dialogue.
      const reply = messages.render('io.cannot_start', { text }, language);
      void track(startDelivery(accept(reply, io.out, { session }).message)).catch(() => undefined);
      logger.warn('an understood utterance could not start its scenario', { intent: route.intent, error: err });
      return { kind: 'intent', text, channel, intent: route.intent, slots: route.slots as Record<string, unknown>, run_id: null, error: toErrorData(err) };
    }
    const runId = typeof done?.result === 'string' ? done.result : null;
    return { kind: 'intent', text, channel, intent: route.intent, slots: route.slots as Record<string, unknown>, run_id: runId };
  }

  async function hear(recorder: Recorder, opts: InputOptions & { owner?: string; signal?: AbortSignal } = {}): Promise<HearOutcome> {
    await voiceReady;
    const voice = setup.voice;
    if (!voice) {
      recorder.stop();
      throw new TesseraError('VOICE_UNAVAILABLE', `Voice is disabled: ${setup.reason ?? 'no speech engines'}.`);
    }
    const s = voice.status();
    if (!s.stt.available || !s.vad.available) {
      recorder.stop();
      const part = !s.stt.available ? s.stt : s.vad;
      throw new TesseraError('VOICE_UNAVAILABLE', `Speech recognition is unavailable: ${part.reason ?? 'unknown reason'}${part.fix ? ` (fix: ${part.fix})` : ''}.`);
    }
    // What this utterance will answer: the question named, else the oldest open one. Listening happens as that
    // run, so a step holding `mic` (io.ask with locks: [mic]) does not lock out its own answer.
    const named = opts.run_id !== undefined && opts.step !== undefined ? { run_id: opts.run_id, step: opts.step } : undefined;
    const session = opts.session ?? null;
    if (session !== null) openSession(session);
    const of = session ? { session } : {};
    const open = waiters.find((w) => w.run_id !== null && w.step !== null && w.session === session && w.channels.includes('voice'));
    const target = named ?? (open ? { run_id: open.run_id!, step: open.step! } : undefined);
    const owner = target?.run_id ?? opts.owner ?? `io:hear:${++hearCount}`;
    let release: (() => void) | undefined;
    try {
      release = await locks.acquire(['mic'], { owner, priority: priorityOf(target?.run_id), timeoutMs: lockTimeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (err) {
      recorder.stop();
      throw err;
    }
    let listen: ListenResult;
    try {
      publish('io.voice.listening', { run_id: target?.run_id ?? null, step: target?.step ?? null, source: recorder.source, ...of });
      listen = await voice.listen(recorder, { timeoutMs: listenTimeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
    } finally {
      recorder.stop();
      release();
    }
    publish('io.voice.heard', { run_id: target?.run_id ?? null, step: target?.step ?? null, outcome: listen.outcome, text: listen.text, engine: listen.engine, timings: listen.timings, ...of });
    if (listen.outcome !== 'speech' || listen.text.trim() === '') return { listen };
    // The question may have been answered (typed) or closed while we listened: then the speech answers nothing.
    if (named && !waiters.some((w) => w.run_id === named.run_id && w.step === named.step)) return { listen };
    return { listen, outcome: await input(listen.text, { ...(named ? named : {}), ...(named && opts.heard_for_question ? { heard_for_question: true } : {}), ...(session ? { session } : {}), channel: 'voice' }) };
  }

  // ── engine events ───────────────────────────────────────────────────────────────────────────────────
  const onSay = (e: TesseraEvent) => {
    const p = e.payload as { text?: unknown; channel?: unknown; run_id?: unknown; idempotency_key?: unknown } | null;
    const runId = typeof p?.run_id === 'string' ? p.run_id : null;
    // A sensitive text arrives wrapped (bus contract): the channels get it revealed, events about it show `***`.
    const sensitive = isSecret(p?.text);
    const given = sensitive ? reveal(p?.text) : p?.text;
    const text = typeof given === 'string' ? given : '';
    const key = typeof p?.idempotency_key === 'string' ? p.idempotency_key : `event:${e.id}`;
    // Nothing is dropped: text the channels cannot take (empty, too long) is still recorded, in the inbox.
    const safe = text.trim() === '' ? '(empty message)' : text.slice(0, MAX_IO_TEXT);
    const { message, created } = db.accept({ key, run_id: runId, requested: asList(p?.channel), text: safe, trace_id: e.trace_id, session: sessionOf(runId), sensitive });
    if (created || message.state === 'pending') void startDelivery(message).catch((err: unknown) => logger.error('io delivery failed', { message_id: message.id, error: err }));
  };
  const onAsk = (e: TesseraEvent) => {
    const p = e.payload as { prompt?: unknown; channel?: unknown; run_id?: unknown; step?: unknown; expects?: unknown } | null;
    if (typeof p?.run_id !== 'string' || typeof p.step !== 'string') return;
    // A prompt holding a personal value arrives wrapped (bus contract): asked in clear, kept in io_questions (local).
    const given = reveal(p.prompt);
    const prompt = typeof given === 'string' && given.trim() !== '' ? given.slice(0, MAX_IO_TEXT) : '(question)';
    const session = sessionOf(p.run_id);
    const expects = typeof p.expects === 'string' && p.expects !== '' ? p.expects : null;
    db.ask({ run_id: p.run_id, step: p.step, prompt, trace_id: e.trace_id, session, expects });
    ask({ runId: p.run_id, step: p.step, prompt, requested: asList(p.channel), traceId: e.trace_id, session, expects }, matrixOf(p.run_id).in ?? defaults.in, false);
  };
  const onStepFailed = (e: TesseraEvent) => {
    const p = e.payload as { run_id?: unknown; error?: { code?: unknown; message?: unknown } } | null;
    if (typeof p?.run_id === 'string' && typeof p.error?.code === 'string') stepErrors.set(p.run_id, { code: p.error.code, message: String(p.error.message ?? '') });
  };
  const onRunEnd = (e: TesseraEvent) => {
    const payload = e.payload as { run_id?: unknown; scenario_id?: unknown; error?: { code?: unknown; message?: unknown } } | null;
    const runId = payload?.run_id;
    if (typeof runId !== 'string') return;
    const waitingForAnswer = waiters.some((w) => w.run_id === runId);
    const stepError = stepErrors.get(runId);
    stepErrors.delete(runId);
    if (!e.topic.endsWith('.completed')) {
      // The step's own error says what went wrong (the run's is STEP_FAILED wrapping it).
      const error = stepError ?? (payload?.error && typeof payload.error.code === 'string' ? { code: payload.error.code, message: String(payload.error.message ?? '') } : null);
      tellRunEnd(runId, { scenario_id: typeof payload?.scenario_id === 'string' ? payload.scenario_id : null, state: e.topic.endsWith('.cancelled') ? 'cancelled' : 'failed', error, waiting_for_answer: waitingForAnswer }, e.trace_id);
    }
    db.closeQuestion(runId);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.run_id !== runId) continue;
      waiters[i]!.controller.abort(new TesseraError('RUN_CANCELLED', `run ${runId} ended`));
      waiters.splice(i, 1);
    }
    // A completed run's last words are still being spoken: only a cancelled or failed run is cut short.
    if (!e.topic.endsWith('.completed')) runControllers.get(runId)?.abort(new TesseraError('RUN_CANCELLED', `run ${runId} ${e.topic.split('.').pop()}`));
    runControllers.delete(runId);
  };

  /**
   * Issue 13 point 15: a run a traveller asked for (started by an utterance: its ctx has `utterance`) that fails or
   * is cancelled gets an answer in plain words, on the run's own out channels. Accepted here, inside the
   * transaction that records the run's end, so the answer is recorded exactly when the end is (key
   * `run-end:<run id>`: once per run, also across a restart); the reason stays in the run and the journal.
   */
  const tellRunEnd = (runId: string, end: RunEnd, traceId: string | null) => {
    let ctx: Record<string, unknown> | undefined;
    try {
      ctx = options.runContext?.(runId);
    } catch {
      return; // not a run of this engine
    }
    if (typeof ctx?.['utterance'] !== 'string') return;
    try {
      const language = typeof ctx['language'] === 'string' ? ctx['language'] : null;
      const session = typeof ctx['session_id'] === 'string' ? ctx['session_id'] : null;
      const { message, created } = accept(failureText(end, messages, language), null, { key: `run-end:${runId}`, run_id: runId, trace_id: traceId, session });
      if (created) void startDelivery(message).catch((err: unknown) => logger.error('io delivery failed', { message_id: message.id, error: err }));
    } catch (err) {
      logger.warn('could not tell the traveller that their run ended', { run_id: runId, error: err });
    }
  };

  // ── sessions ────────────────────────────────────────────────────────────────────────────────────────
  /** Ends `id` if open: its questions expire, the UIs showing it are told, the journal records why. */
  const endSession = (id: string, reason: SessionEndReason): boolean => {
    if (!db.endSession(id, reason)) return false;
    let expired = 0;
    for (const w of waiters.filter((x) => x.session === id && x.run_id !== null && x.step !== null)) {
      takeWaiter(w);
      expire({ run_id: w.run_id!, step: w.step!, session: id }, null);
      expired++;
    }
    // Questions asked before a restart and not re-opened since (their run is gone) are closed as well.
    for (const q of db.openQuestions().filter((x) => x.session === id)) {
      expire({ run_id: q.run_id, step: q.step, session: id }, q.trace_id);
      expired++;
    }
    publish('io.session.ended', { session: id, reason, expired_questions: expired });
    ui.broadcast({ type: 'session.ended', session: id, reason }, id);
    return true;
  };

  /**
   * The idle reset: a session whose traveller said nothing for `idleResetMs` ends (`idle`); so does one that never
   * heard a word and that no UI shows (a page that was closed). A session a UI shows and nobody spoke to yet waits.
   */
  const sweep = () => {
    if (disposed || idleResetMs <= 0) return;
    const now = clock();
    try {
      for (const found of db.openSessions()) {
        const last = Date.parse(found.last_input_at ?? found.started_at);
        if (now - last < idleResetMs) continue;
        if (found.last_input_at === null && ui.shows(found.id)) continue;
        endSession(found.id, 'idle');
      }
    } catch (err) {
      // The store may be busy or closing: the next tick tries again.
      logger.warn('the idle reset of dialogue sessions failed', { error: err });
    }
  };

  return {
    start() {
      subscriptions.push(bus.subscribe('io.say', onSay, { name: 'io.router:say' }));
      subscriptions.push(bus.subscribe('io.ask', onAsk, { name: 'io.router:ask' }));
      subscriptions.push(bus.subscribe('scenario.step.failed', onStepFailed, { name: 'io.router:step-failed' }));
      for (const topic of ['scenario.run.completed', 'scenario.run.failed', 'scenario.run.cancelled']) subscriptions.push(bus.subscribe(topic, onRunEnd, { name: 'io.router:run-end' }));
      subscriptions.push(locks.onChange((change) => queueMicrotask(() => !disposed && publish('io.lock.changed', change))));
      // Crash recovery: what was accepted but not finished is delivered now; open questions wait again.
      for (const m of db.pending()) void startDelivery(m).catch(() => undefined);
      for (const q of db.openQuestions()) ask({ runId: q.run_id, step: q.step, prompt: q.prompt, requested: null, traceId: q.trace_id, session: q.session, expects: q.expects }, matrixOf(q.run_id).in ?? defaults.in, true);
      if (idleResetMs > 0) {
        idleTimer = setInterval(sweep, Math.min(1000, Math.max(25, Math.floor(idleResetMs / 4))));
        idleTimer.unref();
      }
    },
    send(channel, text, opts = {}) {
      const requested = channel === null || channel === undefined ? null : typeof channel === 'string' ? [channel] : [...new Set(channel)];
      if (requested && requested.length === 0) throw new TesseraError('VALIDATION_FAILED', 'Name at least one channel, or none for the defaults.');
      const { message } = accept(text, requested, opts);
      if (message.state !== 'pending') return Promise.resolve(message);
      // The message is stored: a delivery whose outcome the store cannot record (disk full) leaves it pending, to be
      // delivered again at start, and it is answered as it stands, not as if nothing were written (issue 13 point 8).
      return startDelivery(message).catch((err: unknown) => {
        if (!isStoreFailure(err)) throw err;
        logger.warn('a delivery outcome could not be recorded; the message stays pending', { message_id: message.id, error: err });
        return db.get(message.id) ?? message;
      });
    },
    await(opts = {}) {
      const channels = opts.in ?? defaults.in;
      const timeout = opts.timeout ?? 20_000;
      return new Promise<IoInput | null>((resolve) => {
        const controller = new AbortController();
        const finish = (v: IoInput | null) => {
          clearTimeout(timer);
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          controller.abort(new TesseraError('RUN_CANCELLED', 'await ended'));
          resolve(v);
        };
        const waiter: Waiter = { run_id: null, step: null, session: null, expects: null, channels, controller, resolve: (v) => finish(v) };
        const timer = setTimeout(() => finish(null), timeout);
        opts.signal?.addEventListener('abort', () => finish(null), { once: true });
        waiters.push(waiter);
        const mic = microphone();
        if (opts.prefer === 'voice' && channels.includes('voice') && mic) {
          void track(hear(mic(), { signal: controller.signal, owner: `io:await:${++hearCount}` })).catch(() => undefined);
        }
      });
    },
    input,
    hear,
    async listen(opts = {}) {
      await voiceReady;
      const mic = microphone();
      if (!mic) throw new TesseraError('VOICE_UNAVAILABLE', `No microphone here: ${setup.voice ? (setup.voice.status().mic.reason ?? 'capture is unavailable') : (setup.reason ?? 'voice is disabled')}.`);
      // Releasing the button ends the capture (what was said is still transcribed); it does not cancel.
      const recorder = mic();
      opts.signal?.addEventListener('abort', () => recorder.stop(), { once: true });
      return hear(recorder, { owner: `io:listen:${++hearCount}`, ...(opts.session ? { session: opts.session } : {}) });
    },
    attachUi: (client) => ui.attach(client),
    async refreshGrammar() {
      await voiceReady;
      if (disposed || !setup.voice?.refreshGrammar) return null;
      return setup.voice.refreshGrammar();
    },
    startSession(opts = {}) {
      let ended: SessionStart['ended'] = null;
      if (opts.end !== undefined && endSession(opts.end, 'new_traveller')) ended = { id: opts.end, reason: 'new_traveller' };
      const session = db.startSession(`ses_${randomBytes(12).toString('base64url')}`);
      publish('io.session.started', { session: session.id, ...(ended ? { after: ended.id } : {}) });
      return { session, ended };
    },
    endSession,
    session: (id) => db.getSession(id),
    inbox: (query) => db.inbox(query),
    ack: (ids) => db.ack(ids),
    message: (id) => db.get(id),
    status() {
      const out: Record<string, ChannelStatus> = {};
      for (const name of new Set([...OUT_CHANNELS, ...defaults.out])) {
        const adapter = adapters.get(name);
        const why = name === 'inbox.local' ? null : adapter ? adapter.unavailable() : `no adapter for the channel "${name}"`;
        out[name] = why === null ? { available: true } : { available: false, reason: why };
      }
      const vs = setup.voice ? setup.voice.status() : null;
      const voiceIn: ChannelStatus = !vs
        ? { available: false, reason: setup.reason ?? 'voice is disabled' }
        : !vs.stt.available
          ? { available: false, reason: `speech-to-text: ${vs.stt.reason ?? 'unavailable'}` }
          : !vs.vad.available
            ? { available: false, reason: `voice activity detection: ${vs.vad.reason ?? 'unavailable'}` }
            : { available: true, ...(microphone() ? {} : { reason: 'no microphone here: audio comes from the browser (push-to-talk) only' }) };
      return {
        defaults,
        out,
        in: { text: { available: true }, voice: voiceIn },
        voice: vs,
        voice_enabled: setup.voice !== undefined,
        voice_disabled_reason: setup.voice ? null : (setup.reason ?? 'voice is disabled'),
        ui_clients: ui.clients,
        inbox_unread: db.unread(),
        questions: db.openQuestions(),
        locks: locks.state(),
        sessions: { open: db.openSessions().length, idle_reset_ms: idleResetMs },
      };
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      clearInterval(idleTimer);
      for (const s of subscriptions.splice(0)) await s.dispose();
      for (const w of waiters.splice(0)) w.controller.abort(new TesseraError('NOT_READY', 'stopping'));
      for (const c of runControllers.values()) c.abort(new TesseraError('NOT_READY', 'stopping'));
      // Deliveries in flight finish or are left pending for the next start; wait briefly for them.
      await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, 2000).unref())]);
      // The router owns the speech stack it was given (its engines hold processes and models).
      await setup.voice?.dispose();
    },
  };
}
