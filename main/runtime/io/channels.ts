/**
 * Output channel adapters of the I/O router (seed 001 §3: `out: ["console", "voice", "ui", …]`). Each adapter
 * says whether it can take a message now and delivers it; the router decides what happens when none can.
 *
 * - `console`: a line to the logger (or the writer the host gives); always available.
 * - `ui`: the renderer, through the clients attached over `/ws/io` (and the `io.*` events every UI sees). A
 *   message of a dialogue session goes only to the clients showing that session (issue 13 point 14: one
 *   dialogue per traveller); a message of no session to every client. Available while such a client is attached.
 * - `voice`: text-to-speech through the speech module, holding the `tts` lock as the message's owner (a run
 *   id: re-entrant with the run's own `locks: [tts]`), one utterance at a time per owner; available when TTS
 *   and an audio output exist.
 */
import { TesseraError } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import type { Disposable } from '../lifecycle/index.js';
import type { LockManager, LockPriority } from '../scenarios/locks.js';
import type { AudioSink, Recorder, SayResult, Voice } from '../voice/types.js';
import type { IoMessage } from './store.js';
import { shownText } from './store.js';

/** What an output adapter is told to deliver. */
export interface Outgoing {
  message: IoMessage;
  /** Lock owner: the run id, or the message key for messages outside runs. */
  owner: string;
  /** The run's priority: its speech waits for `tts` in that order. */
  priority: LockPriority;
  signal: AbortSignal;
}

export interface OutputChannel {
  readonly name: string;
  /** Null when it can take messages now, else why not. */
  unavailable(): string | null;
  deliver(out: Outgoing): Promise<void>;
}

/** A renderer attached to the router (a `/ws/io` socket, or the Electron window). */
export interface UiClient {
  /** Sends one JSON message to the renderer. Must not throw. */
  send(message: UiMessage): void;
  /** The dialogue session it shows now (null or absent: none; it sees only messages for everyone). */
  session?(): string | null;
}

/** Messages the router sends to attached renderers. */
export type UiMessage =
  | { type: 'say'; message: { id: number; run_id: string | null; text: string; session?: string } }
  | { type: 'ask'; question: { run_id: string; step: string; prompt: string; session?: string } }
  | { type: 'session.ended'; session: string; reason: string };

export function consoleChannel(write: (text: string, message: IoMessage) => void): OutputChannel {
  return {
    name: 'console',
    unavailable: () => null,
    deliver: async ({ message }) => write(message.text, message),
  };
}

export interface UiChannel extends OutputChannel {
  attach(client: UiClient): Disposable;
  /** Sends to the clients showing `session`, or to every client when `session` is null. */
  broadcast(message: UiMessage, session?: string | null): void;
  /** Whether a client shows `session` now. */
  shows(session: string): boolean;
  /** Null when a client can take a message of `session`, else why not. */
  unavailableFor(session: string | null): string | null;
  readonly clients: number;
}

export function uiChannel(): UiChannel {
  const clients = new Set<UiClient>();
  const reached = (session: string | null | undefined) => [...clients].filter((c) => !session || c.session?.() === session);
  const broadcast = (m: UiMessage, session?: string | null) => reached(session).forEach((c) => c.send(m));
  const unavailableFor = (session: string | null) => (reached(session).length > 0 ? null : session ? "no UI shows the traveller's dialogue" : 'no UI is connected');
  return {
    name: 'ui',
    unavailable: () => (clients.size > 0 ? null : 'no UI is connected'),
    unavailableFor,
    shows: (session) => reached(session).length > 0,
    async deliver({ message }) {
      const why = unavailableFor(message.session);
      if (why !== null) throw new TesseraError('NOT_READY', why);
      broadcast({ type: 'say', message: { id: message.id, run_id: message.run_id, text: message.text, ...(message.session ? { session: message.session } : {}) } }, message.session);
    },
    attach(client) {
      clients.add(client);
      return { dispose: () => void clients.delete(client) };
    },
    broadcast,
    get clients() {
      return clients.size;
    },
  };
}

/** The speech stack as the runtime set it up: the voice, or why there is none. */
export interface VoiceSetup {
  voice?: Voice;
  /** Why voice is off (with the fix), when `voice` is absent. */
  reason?: string;
  /** Where speech is played (default: the voice's system player). */
  sink?: AudioSink;
  /** The microphone for questions answered by voice (default: the voice's own, when it has one). */
  microphone?: () => Recorder;
}

export interface VoiceChannelOptions {
  /** The current setup (it may still be starting). */
  setup: () => VoiceSetup;
  locks: LockManager;
  bus: Bus;
  lockTimeoutMs: number;
}

export function voiceChannel(options: VoiceChannelOptions): OutputChannel {
  const { locks, bus } = options;
  // One utterance at a time per owner: the lock is re-entrant for an owner, so its own messages are chained here.
  const chains = new Map<string, Promise<unknown>>();
  const speak = async ({ message, owner, priority, signal }: Outgoing): Promise<SayResult> => {
    const release = await locks.acquire(['tts'], { owner, priority, timeoutMs: options.lockTimeoutMs, signal });
    try {
      bus.publish('io.voice.speaking', { message_id: message.id, run_id: message.run_id, text: shownText(message) }, message.trace_id ? { trace_id: message.trace_id } : {});
      const { voice, sink } = options.setup();
      if (!voice) throw new TesseraError('VOICE_UNAVAILABLE', options.setup().reason ?? 'voice is disabled');
      const said = await voice.say(message.text, { ...(sink ? { sink } : {}), signal });
      bus.publish('io.voice.spoken', { message_id: message.id, run_id: message.run_id, engine: said.engine, sink: said.sink, first_audio_ms: said.first_audio_ms, synth_ms: said.synth_ms, duration_ms: said.duration_ms, started_at: said.playback.started_at, ended_at: said.playback.ended_at }, message.trace_id ? { trace_id: message.trace_id } : {});
      return said;
    } finally {
      release();
    }
  };
  return {
    name: 'voice',
    unavailable() {
      const { voice, sink, reason } = options.setup();
      if (!voice) return reason ?? 'voice is disabled';
      const s = voice.status();
      if (!s.tts.available) return `text-to-speech: ${s.tts.reason ?? 'unavailable'}`;
      if (!sink && !s.speaker.available) return `audio output: ${s.speaker.reason ?? 'unavailable'}`;
      return null;
    },
    async deliver(out) {
      const prior = chains.get(out.owner) ?? Promise.resolve();
      const mine = prior.then(() => speak(out), () => speak(out));
      const tail = mine.catch(() => undefined);
      chains.set(out.owner, tail);
      void tail.then(() => {
        if (chains.get(out.owner) === tail) chains.delete(out.owner);
      });
      await mine;
    },
  };
}
