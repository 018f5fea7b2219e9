/**
 * The append-only event journal: the write-ahead log of seed 002 and the source of truth every later module
 * writes through (DESIGN.md "Data"). Owns the `events` table. Rows are never updated or deleted here.
 *
 * Durability contract: when `append` returns, the event is committed. In WAL mode with synchronous=NORMAL a
 * committed event survives a crash or SIGKILL of the process (test/integration/journal-crash.test.ts).
 */
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import type { EventPage, TesseraEvent } from '../../common/api.js';
import { LIMITS, TRACE_ID_PATTERN } from '../../common/api.js';
import { TesseraError } from '../../common/errors.js';
import { compilePattern, isWildcardPattern, literalPrefix, patternProblem, topicProblem } from '../../common/topics.js';
import type { TopicMatcher } from '../../common/topics.js';
import type { Migration, Store } from '../store/index.js';

export interface AppendInput {
  topic: string;
  payload?: unknown;
  /** Joins the event to a trace; a new W3C-style id (32 hex digits) is generated when absent. */
  trace_id?: string;
}

export interface JournalQuery {
  /** Segment prefix (`nlp.intent` ⇒ `nlp.intent`, `nlp.intent.*…`) or a pattern with `*` / `**`. */
  topic?: string;
  /** Inclusive lower bound on `ts`, epoch ms or ISO-8601. */
  since?: number | string;
  /** Exclusive upper bound on `ts`, epoch ms or ISO-8601. */
  until?: number | string;
  trace_id?: string;
  /** Id cursor: events after this id in the query's order. */
  after?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface Journal {
  append(input: AppendInput): TesseraEvent;
  /** Appends all or nothing, in one transaction. */
  appendMany(inputs: readonly AppendInput[]): TesseraEvent[];
  query(query?: JournalQuery): EventPage;
  /** The highest id written so far (0 when empty). */
  lastId(): number;
}

export interface JournalOptions {
  store: Store;
  /** Wall clock in epoch ms; injected so tests and replays control time. */
  clock?: () => number;
}

export const JOURNAL_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events table',
    up(db) {
      db.exec(`
        CREATE TABLE events (
          id       INTEGER PRIMARY KEY AUTOINCREMENT,
          ts       INTEGER NOT NULL,
          topic    TEXT    NOT NULL,
          trace_id TEXT    NOT NULL,
          payload  TEXT    NOT NULL CHECK (json_valid(payload))
        ) STRICT;
        CREATE INDEX events_topic ON events (topic, id);
        CREATE INDEX events_trace ON events (trace_id, id);
        CREATE INDEX events_ts ON events (ts);
      `);
    },
  },
];

const TRACE_ID = new RegExp(TRACE_ID_PATTERN);

// randomBytes costs ~6 µs a call here, more than an insert; draw many ids' worth at a time.
const RANDOM_POOL_BYTES = 10 * 256;
let randomPool = Buffer.alloc(0);
let randomOffset = 0;

/**
 * A new trace id: 32 lowercase hex digits (the W3C trace-context trace-id shape), time-ordered like UUIDv7 —
 * 48 bits of milliseconds then 80 random bits. Time order keeps the journal's trace index append-mostly:
 * fully random ids made each insert touch a random index page and cost 3× more per batched event
 * (test/bench/journal.bench.ts).
 */
export function newTraceId(now: number = Date.now()): string {
  if (randomOffset >= randomPool.length) {
    randomPool = randomBytes(RANDOM_POOL_BYTES);
    randomOffset = 0;
  }
  randomOffset += 10;
  return Math.max(0, Math.trunc(now)).toString(16).padStart(12, '0').slice(-12) + randomPool.toString('hex', randomOffset - 10, randomOffset);
}

interface Row {
  id: number;
  ts: number;
  topic: string;
  trace_id: string;
  payload: string;
}

export function createJournal(options: JournalOptions): Journal {
  const { store } = options;
  const clock = options.clock ?? Date.now;
  const db = store.db;
  store.migrate('journal', JOURNAL_MIGRATIONS);

  const matchers = new Map<string, TopicMatcher>();
  db.function('tessera_topic_match', { deterministic: true }, (pattern: unknown, topic: unknown) => {
    const p = String(pattern);
    let m = matchers.get(p);
    if (!m) {
      if (matchers.size > 256) matchers.clear();
      m = compilePattern(p);
      matchers.set(p, m);
    }
    return m(String(topic)) ? 1 : 0;
  });

  // The new id from lastInsertRowid: `RETURNING id` made SQLite buffer a result row, ~2 µs more per event.
  const insert = db.prepare<[number, string, string, string]>('INSERT INTO events (ts, topic, trace_id, payload) VALUES (?, ?, ?, ?)');
  const maxRow = db.prepare<[], { id: number | null; ts: number | null }>('SELECT MAX(id) AS id, MAX(ts) AS ts FROM events');
  const initial = maxRow.get();
  // Timestamps never go backwards in the journal, even if the wall clock does (NTP step, manual change).
  let lastTs = initial?.ts ?? 0;
  let lastId = initial?.id ?? 0;

  const prepare = (input: AppendInput) => {
    const problem = topicProblem(input.topic);
    if (problem) throw new TesseraError('TOPIC_INVALID', problem);
    const traceId = input.trace_id ?? newTraceId(clock());
    if (typeof traceId !== 'string' || !TRACE_ID.test(traceId)) {
      throw new TesseraError('TRACE_ID_INVALID', 'trace_id must be 1–128 characters of letters, digits, ".", "_", ":" or "-", starting with a letter or digit');
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(input.payload ?? null);
    } catch (cause) {
      throw new TesseraError('VALIDATION_FAILED', `payload is not serializable as JSON: ${(cause as Error).message}`);
    }
    if (json === undefined) throw new TesseraError('VALIDATION_FAILED', 'payload is not serializable as JSON');
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > LIMITS.maxPayloadBytes) {
      throw new TesseraError('PAYLOAD_TOO_LARGE', `payload is ${bytes} bytes; the limit is ${LIMITS.maxPayloadBytes}`);
    }
    return { topic: input.topic, traceId, json };
  };

  const write = (p: ReturnType<typeof prepare>): TesseraEvent => {
    const ts = Math.max(clock(), lastTs);
    const id = Number(insert.run(ts, p.topic, p.traceId, p.json).lastInsertRowid);
    lastTs = ts;
    lastId = id;
    return { id, ts: new Date(ts).toISOString(), topic: p.topic, trace_id: p.traceId, payload: JSON.parse(p.json) as unknown };
  };

  const writeMany = db.transaction((items: ReturnType<typeof prepare>[]) => items.map(write));

  const statements = new Map<string, Database.Statement<unknown[], Row>>();
  const statement = (sql: string) => {
    let s = statements.get(sql);
    if (!s) {
      s = db.prepare<unknown[], Row>(sql);
      statements.set(sql, s);
    }
    return s;
  };

  return {
    append(input) {
      const p = prepare(input);
      // A failed insert leaves lastTs/lastId untouched; SQLite rolls the statement back.
      return write(p);
    },
    appendMany(inputs) {
      const prepared = inputs.map(prepare); // validate everything before writing anything
      const before = { lastTs, lastId };
      try {
        return writeMany(prepared);
      } catch (err) {
        ({ lastTs, lastId } = before);
        throw err;
      }
    },
    query(query = {}) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (query.topic !== undefined) {
        const problem = patternProblem(query.topic);
        if (problem) throw new TesseraError('TOPIC_INVALID', problem);
        const prefix = isWildcardPattern(query.topic) ? literalPrefix(query.topic) : query.topic;
        if (prefix !== '') {
          // Segment-boundary prefix as an index range: "a.b" or anything in ["a.b.", "a.b/") ('/' follows '.').
          where.push('(topic = ? OR (topic >= ? AND topic < ?))');
          params.push(prefix, prefix + '.', prefix + '/');
        }
        if (isWildcardPattern(query.topic)) {
          where.push('tessera_topic_match(?, topic)');
          params.push(query.topic);
        }
      }
      if (query.since !== undefined) {
        where.push('ts >= ?');
        params.push(parseTime(query.since, 'since'));
      }
      if (query.until !== undefined) {
        where.push('ts < ?');
        params.push(parseTime(query.until, 'until'));
      }
      if (query.trace_id !== undefined) {
        where.push('trace_id = ?');
        params.push(query.trace_id);
      }
      const order = query.order ?? 'asc';
      if (query.after !== undefined) {
        if (!Number.isSafeInteger(query.after) || query.after < 0) throw new TesseraError('VALIDATION_FAILED', 'after must be a non-negative integer');
        where.push(order === 'asc' ? 'id > ?' : 'id < ?');
        params.push(query.after);
      }
      const limit = query.limit ?? LIMITS.defaultPageSize;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > LIMITS.maxPageSize) {
        throw new TesseraError('VALIDATION_FAILED', `limit must be an integer from 1 to ${LIMITS.maxPageSize}`);
      }
      const sql =
        'SELECT id, ts, topic, trace_id, payload FROM events' +
        (where.length > 0 ? ' WHERE ' + where.join(' AND ') : '') +
        ` ORDER BY id ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
      const rows = statement(sql).all(...params, limit + 1);
      const more = rows.length > limit;
      const page = more ? rows.slice(0, limit) : rows;
      return {
        events: page.map((r) => ({ id: r.id, ts: new Date(r.ts).toISOString(), topic: r.topic, trace_id: r.trace_id, payload: JSON.parse(r.payload) as unknown })),
        next: more ? page[page.length - 1]!.id : null,
      };
    },
    lastId: () => lastId,
  };
}

/** Epoch milliseconds or an ISO-8601 date-time. */
export function parseTime(value: number | string, name: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return Math.trunc(value);
  } else if (/^\d{1,15}$/.test(value)) {
    return Number(value);
  } else if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms;
  }
  throw new TesseraError('VALIDATION_FAILED', `${name} must be an ISO-8601 time or epoch milliseconds, got ${JSON.stringify(value)}`);
}
