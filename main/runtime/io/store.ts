/**
 * The I/O router's tables (seed 001 §3): every outgoing message with its fate, which doubles as the persistent
 * `inbox.local`, the questions (`io.ask`) still waiting for an answer, and the dialogue sessions (issue 13 point 14:
 * one per traveller at a Journey Guide) that messages and questions belong to.
 *
 * Contract: a message row is written `pending` synchronously when the router accepts it — for an `io.say` event
 * that is inside the scenario engine's effect transaction, so the effect and its message commit together — and
 * moves exactly once to `delivered` (at least one channel took it) or `inboxed` (none could; it waits in
 * `inbox.local` until acknowledged). Rows still `pending` after a crash are delivered again at start. The
 * message key (an io.say step's idempotency key) is unique, so a message is never recorded twice.
 */
import type { Migration, Store } from '../store/index.js';

import { secret } from '../../common/expr.js';

export type MessageState = 'pending' | 'delivered' | 'inboxed';

/** A message's text as events and log lines may show it: wrapped as a secret (`***`) when it is sensitive. */
export function shownText(message: Pick<IoMessage, 'text' | 'sensitive'>): unknown {
  return message.sensitive ? secret(message.text) : message.text;
}

/** One outgoing message and what became of it. */
export interface IoMessage {
  id: number;
  /** Idempotency key: an io.say step's key, or `io:<uuid>` for a direct send. */
  key: string;
  run_id: string | null;
  /** The channel(s) asked for (null: the run's `ctx.io.out` or the router's defaults). */
  requested: string[] | null;
  /** The dialogue session it is for (its run's `ctx.session_id`, or the utterance's), or null: for everyone. */
  session: string | null;
  text: string;
  /**
   * The text holds a secret or personal value (issue 18 point 4): channels get `text`; events and log lines about
   * the message show it as `***` ({@link shownText}).
   */
  sensitive: boolean;
  state: MessageState;
  /** Channels that took it. */
  delivered_to: string[];
  /** Why each channel that did not take it could not (channel → reason). */
  reasons: Record<string, string>;
  trace_id: string | null;
  created_at: string;
  finished_at: string | null;
  /** When an operator acknowledged the inboxed message. */
  acked_at: string | null;
}

/** A question a run asked (`io.ask`) and whether it was answered. */
export interface IoQuestion {
  run_id: string;
  step: string;
  /** The dialogue session whose traveller it asks (its run's `ctx.session_id`); null: anyone's. */
  session: string | null;
  prompt: string;
  asked_at: string;
  trace_id: string | null;
  /** What answer it expects (`name`, `city`, `yes_no`, …; ./expects.ts), or null when it did not say. */
  expects: string | null;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'io messages and questions',
    up: (db) => {
      db.exec(`CREATE TABLE io_messages (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        run_id TEXT,
        requested TEXT,
        text TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'inboxed')),
        delivered_to TEXT NOT NULL DEFAULT '[]',
        reasons TEXT NOT NULL DEFAULT '{}',
        trace_id TEXT,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
        acked_at INTEGER) STRICT`);
      db.exec("CREATE INDEX io_messages_inbox ON io_messages (state, acked_at, id) WHERE state <> 'delivered'");
      db.exec(`CREATE TABLE io_questions (
        run_id TEXT NOT NULL,
        step TEXT NOT NULL,
        prompt TEXT NOT NULL,
        trace_id TEXT,
        asked_at INTEGER NOT NULL,
        closed_at INTEGER,
        PRIMARY KEY (run_id, step)) STRICT`);
    },
  },
  {
    version: 2,
    name: 'dialogue sessions',
    up: (db) => {
      db.exec(`CREATE TABLE io_sessions (
        id TEXT PRIMARY KEY,
        started_at INTEGER NOT NULL,
        last_input_at INTEGER,
        ended_at INTEGER,
        end_reason TEXT) STRICT`);
      // The idle reset reads the open sessions every second; ended ones pile up and are never read this way.
      db.exec('CREATE INDEX io_sessions_open ON io_sessions (started_at) WHERE ended_at IS NULL');
      db.exec('ALTER TABLE io_messages ADD COLUMN session TEXT');
      db.exec('ALTER TABLE io_questions ADD COLUMN session TEXT');
    },
  },
  {
    version: 3,
    name: 'what a question expects',
    // Issue 15: an open question re-opened after a restart still lets unrelated requests through by its expectation.
    up: (db) => db.exec('ALTER TABLE io_questions ADD COLUMN expects TEXT'),
  },
  {
    version: 4,
    name: 'sensitive messages',
    // Issue 18 point 4: a message that holds a secret or personal value is kept here (the channels need it, after a
    // restart too) but shown `***` in every event about it.
    up: (db) => db.exec('ALTER TABLE io_messages ADD COLUMN sensitive INTEGER NOT NULL DEFAULT 0'),
  },
];

/** Why a dialogue session ended: the next traveller was announced, nobody spoke for the idle time, or the kiosk closed it. */
export type SessionEndReason = 'new_traveller' | 'idle' | 'closed';

/** A Journey Guide's dialogue with one traveller. */
export interface IoSession {
  id: string;
  started_at: string;
  /** The traveller's last utterance, if any. */
  last_input_at: string | null;
  ended_at: string | null;
  end_reason: SessionEndReason | null;
}

interface MessageRow {
  id: number;
  key: string;
  run_id: string | null;
  requested: string | null;
  session: string | null;
  text: string;
  sensitive: number;
  state: MessageState;
  delivered_to: string;
  reasons: string;
  trace_id: string | null;
  created_at: number;
  finished_at: number | null;
  acked_at: number | null;
}

interface QuestionRow {
  run_id: string;
  step: string;
  session: string | null;
  prompt: string;
  trace_id: string | null;
  asked_at: number;
  expects: string | null;
}

interface SessionRow {
  id: string;
  started_at: number;
  last_input_at: number | null;
  ended_at: number | null;
  end_reason: SessionEndReason | null;
}

export interface IoStore {
  /** Records a message `pending`; returns the existing row when the key was seen before. */
  accept(input: { key: string; run_id: string | null; requested: string[] | null; text: string; trace_id: string | null; session: string | null; sensitive?: boolean }): { message: IoMessage; created: boolean };
  /** Moves a pending message to its final state; false when it was not pending (already finished). */
  finish(id: number, state: 'delivered' | 'inboxed', delivered_to: string[], reasons: Record<string, string>): boolean;
  get(id: number): IoMessage | undefined;
  pending(): IoMessage[];
  /** `inbox.local`: inboxed messages, oldest first; acknowledged ones only with `include_acked`. */
  inbox(query?: { include_acked?: boolean; limit?: number; after?: number }): IoMessage[];
  /** How many inboxed messages are not acknowledged. */
  unread(): number;
  /** Acknowledges inboxed messages; returns the ids that were acknowledged now. */
  ack(ids: readonly number[]): number[];
  ask(q: { run_id: string; step: string; prompt: string; trace_id: string | null; session: string | null; expects?: string | null }): void;
  closeQuestion(run_id: string, step?: string): number;
  openQuestions(): IoQuestion[];
  startSession(id: string): IoSession;
  getSession(id: string): IoSession | undefined;
  /** Records an utterance of the session now. */
  touchSession(id: string): void;
  /** Ends an open session; false when it was not open. */
  endSession(id: string, reason: SessionEndReason): boolean;
  openSessions(): IoSession[];
}

export function createIoStore(store: Store, clock: () => number): IoStore {
  store.migrate('io', MIGRATIONS);
  const db = store.db;
  const q = {
    insert: db.prepare('INSERT INTO io_messages (key, run_id, requested, text, state, trace_id, created_at, session, sensitive) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING'),
    byKey: db.prepare<[string], MessageRow>('SELECT * FROM io_messages WHERE key = ?'),
    byId: db.prepare<[number], MessageRow>('SELECT * FROM io_messages WHERE id = ?'),
    // A delivered sensitive message keeps no clear text (its channels had it); an inboxed one keeps it for the inbox.
    finish: db.prepare("UPDATE io_messages SET state = ?, delivered_to = ?, reasons = ?, finished_at = ?, text = CASE WHEN sensitive = 1 AND state = 'pending' AND ? = 'delivered' THEN '***' ELSE text END WHERE id = ? AND state = 'pending'"),
    pending: db.prepare<[], MessageRow>("SELECT * FROM io_messages WHERE state = 'pending' ORDER BY id"),
    inbox: db.prepare<[number, number, number], MessageRow>("SELECT * FROM io_messages WHERE state = 'inboxed' AND (? = 1 OR acked_at IS NULL) AND id > ? ORDER BY id LIMIT ?"),
    unread: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM io_messages WHERE state = 'inboxed' AND acked_at IS NULL"),
    ack: db.prepare("UPDATE io_messages SET acked_at = ? WHERE id = ? AND state = 'inboxed' AND acked_at IS NULL"),
    ask: db.prepare('INSERT INTO io_questions (run_id, step, prompt, trace_id, asked_at, session, expects) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step) DO NOTHING'),
    closeOne: db.prepare('UPDATE io_questions SET closed_at = ? WHERE run_id = ? AND step = ? AND closed_at IS NULL'),
    closeRun: db.prepare('UPDATE io_questions SET closed_at = ? WHERE run_id = ? AND closed_at IS NULL'),
    open: db.prepare<[], QuestionRow>('SELECT run_id, step, session, prompt, trace_id, asked_at, expects FROM io_questions WHERE closed_at IS NULL ORDER BY asked_at, rowid'),
    startSession: db.prepare('INSERT INTO io_sessions (id, started_at) VALUES (?, ?)'),
    session: db.prepare<[string], SessionRow>('SELECT * FROM io_sessions WHERE id = ?'),
    touchSession: db.prepare('UPDATE io_sessions SET last_input_at = ? WHERE id = ? AND ended_at IS NULL'),
    endSession: db.prepare('UPDATE io_sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL'),
    openSessions: db.prepare<[], SessionRow>('SELECT * FROM io_sessions WHERE ended_at IS NULL ORDER BY started_at, rowid'),
  };
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const toSession = (r: SessionRow): IoSession => ({ id: r.id, started_at: iso(r.started_at)!, last_input_at: iso(r.last_input_at), ended_at: iso(r.ended_at), end_reason: r.end_reason });
  const toMessage = (r: MessageRow): IoMessage => ({
    id: r.id,
    key: r.key,
    run_id: r.run_id,
    requested: r.requested === null ? null : (JSON.parse(r.requested) as string[]),
    session: r.session,
    text: r.text,
    sensitive: r.sensitive === 1,
    state: r.state,
    delivered_to: JSON.parse(r.delivered_to) as string[],
    reasons: JSON.parse(r.reasons) as Record<string, string>,
    trace_id: r.trace_id,
    created_at: iso(r.created_at)!,
    finished_at: iso(r.finished_at),
    acked_at: iso(r.acked_at),
  });

  return {
    accept(input) {
      const info = q.insert.run(input.key, input.run_id, input.requested === null ? null : JSON.stringify(input.requested), input.text, 'pending', input.trace_id, clock(), input.session, input.sensitive ? 1 : 0);
      return { message: toMessage(q.byKey.get(input.key)!), created: info.changes === 1 };
    },
    finish(id, state, deliveredTo, reasons) {
      return q.finish.run(state, JSON.stringify(deliveredTo), JSON.stringify(reasons), clock(), state, id).changes === 1;
    },
    get(id) {
      const r = q.byId.get(id);
      return r ? toMessage(r) : undefined;
    },
    pending: () => q.pending.all().map(toMessage),
    inbox: (query = {}) => q.inbox.all(query.include_acked ? 1 : 0, query.after ?? 0, Math.min(Math.max(query.limit ?? 100, 1), 1000)).map(toMessage),
    unread: () => q.unread.get()!.n,
    ack(ids) {
      const now = clock();
      return db.transaction(() => ids.filter((id) => q.ack.run(now, id).changes === 1))();
    },
    ask(x) {
      q.ask.run(x.run_id, x.step, x.prompt, x.trace_id, clock(), x.session, x.expects ?? null);
    },
    closeQuestion(runId, step) {
      return (step === undefined ? q.closeRun.run(clock(), runId) : q.closeOne.run(clock(), runId, step)).changes;
    },
    openQuestions: () => q.open.all().map((r) => ({ run_id: r.run_id, step: r.step, session: r.session, prompt: r.prompt, trace_id: r.trace_id, asked_at: iso(r.asked_at)!, expects: r.expects })),
    startSession(id) {
      q.startSession.run(id, clock());
      return toSession(q.session.get(id)!);
    },
    getSession(id) {
      const r = q.session.get(id);
      return r ? toSession(r) : undefined;
    },
    touchSession(id) {
      q.touchSession.run(clock(), id);
    },
    endSession: (id, reason) => q.endSession.run(clock(), reason, id).changes === 1,
    openSessions: () => q.openSessions.all().map(toSession),
  };
}
