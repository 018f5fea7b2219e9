/**
 * Per-session event rooms (FR5.3, FR5.6): every event of a session gets the next `seq` (continuing from the
 * record's `event_seq` after a resume), is kept in a ring buffer for reconnecting clients and is delivered to the
 * room's subscribers and to the runtime-wide listeners. A listener that throws never disturbs the session.
 * A room lives only while its session is loaded or someone listens: once neither holds, it is dropped with its buffer.
 */
import { AGENT_EVENT_VERSION, type AgentEvent, type AgentEventType, type RoomSubscription } from './types.js';

type Listener = (event: AgentEvent) => void;

interface Room {
  /** The last seq given out; null while unknown (session never loaded in this process). */
  seq: number | null;
  /** Ring buffer, oldest first. */
  buffer: AgentEvent[];
  listeners: Set<Listener>;
}

export interface Rooms {
  /** Makes the room's numbering continue from `seq` (the record's `event_seq`) unless it already runs further. */
  open(session: string, seq: number): void;
  /** Emits the next event of a session's room; returns it (its seq is the room's new `event_seq`). */
  emit(session: string, type: AgentEventType, data: Record<string, unknown>, at: string, traceId?: string): AgentEvent;
  /** `knownSeq`: the persisted `event_seq` when the room was never opened here (to tell whether anything was missed). */
  subscribe(session: string, after: number, listener: Listener, knownSeq?: number): RoomSubscription;
  onEvent(listener: Listener): { dispose(): void };
  /** An event of no session (e.g. `fetchAll` failed): runtime-wide listeners only, `session: ''`, `seq: 0`. */
  broadcast(type: AgentEventType, data: Record<string, unknown>, at: string): void;
  /** Drops a room's buffer when nobody listens and its session is no longer loaded (unloaded, closed). */
  release(session: string): void;
  /** Rooms held in memory. */
  size(): number;
}

export interface RoomsOptions {
  /** Events kept per room. */
  buffer: number;
  /** Is the session loaded? A room of a session that is not is dropped as soon as nobody listens. */
  loaded: (session: string) => boolean;
  onListenerError?: (err: unknown) => void;
}

export function createRooms(options: RoomsOptions): Rooms {
  const rooms = new Map<string, Room>();
  const global = new Set<Listener>();
  const room = (session: string): Room => {
    let r = rooms.get(session);
    if (!r) rooms.set(session, (r = { seq: null, buffer: [], listeners: new Set() }));
    return r;
  };
  /** Drops the room unless its session is loaded or someone listens. */
  const drop = (session: string): void => {
    const r = rooms.get(session);
    if (r && r.listeners.size === 0 && !options.loaded(session)) rooms.delete(session);
  };
  const deliver = (listener: Listener, event: AgentEvent): void => {
    try {
      listener(event);
    } catch (err) {
      options.onListenerError?.(err);
    }
  };
  return {
    open(session, seq) {
      const r = room(session);
      if (r.seq === null || r.seq < seq) r.seq = seq;
    },
    emit(session, type, data, at, traceId) {
      const r = room(session);
      r.seq = (r.seq ?? 0) + 1;
      const event: AgentEvent = { v: AGENT_EVENT_VERSION, session, seq: r.seq, at, ...(traceId ? { trace_id: traceId } : {}), type, data };
      r.buffer.push(event);
      if (r.buffer.length > options.buffer) r.buffer.splice(0, r.buffer.length - options.buffer);
      for (const l of [...r.listeners]) deliver(l, event);
      for (const l of [...global]) deliver(l, event);
      drop(session);
      return event;
    },
    subscribe(session, after, listener, knownSeq) {
      const r = room(session);
      if (r.seq === null && knownSeq !== undefined) r.seq = knownSeq;
      const first = r.buffer[0];
      // Missed something when the room ran past `after` and the buffer no longer starts at after+1 (an unknown
      // room counts as having run past), or when the client saw more than the room knows of (it restarted lower
      // after a crash): either way the client reloads the transcript.
      const last = r.seq ?? Number.POSITIVE_INFINITY;
      const gap = after > last || (after < last && (first === undefined || first.seq > after + 1));
      for (const e of r.buffer) if (e.seq > after) deliver(listener, e);
      r.listeners.add(listener);
      return {
        gap,
        dispose: () => {
          r.listeners.delete(listener);
          if (rooms.get(session) === r) drop(session);
        },
      };
    },
    onEvent(listener) {
      global.add(listener);
      return { dispose: () => void global.delete(listener) };
    },
    broadcast(type, data, at) {
      const event: AgentEvent = { v: AGENT_EVENT_VERSION, session: '', seq: 0, at, type, data };
      for (const l of [...global]) deliver(l, event);
    },
    release: drop,
    size: () => rooms.size,
  };
}
