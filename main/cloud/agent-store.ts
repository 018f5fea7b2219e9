/**
 * The agent runtime's adapter set on the cloud's database (issue 17 §2, seed 003 FR2.1–FR2.2): a
 * {@link SessionPersistenceAdapter} and a {@link StorageBackend} on PostgreSQL or PGlite ({@link Db}, main/cloud/db.ts),
 * in the tables of cloud migration 4 (`agent_sessions`, `agent_transcript`, `agent_files`).
 *
 * Contracts beyond the interfaces':
 * - **Scope.** Every row carries the adapter set's `scope` (e.g. a tenant id; default `default`) as the first column
 *   of its key, and every query names it: two sets with different scopes on one database never see each other's
 *   sessions, transcripts or files.
 * - **Atomicity.** `save` is one upsert; `sync` writes all its records in one transaction (all or none); an append
 *   writes its whole batch or nothing; `storage.delete(session)` removes files and transcript in one transaction.
 * - **Idempotent appends.** A transcript row is keyed by (scope, session, seq): appending an entry whose seq is
 *   already stored with the same content is a no-op (a retry after a network blip does not duplicate it); a
 *   *different* entry at a stored seq is refused (AGENT_INPUT_INVALID) and the batch is not written — transcripts
 *   are append-only.
 * - **Text PostgreSQL cannot hold.** `jsonb` stores no U+0000 and no unpaired UTF-16 surrogate; rather than fail a
 *   session because a tool printed a NUL, such characters (in values and keys) are stored as U+FFFD. Everything
 *   else — any script, emoji, un-normalized (NFD) text — reads back exactly as written.
 * - **Errors.** Bad input (session id shape, a path with `..`, an absolute path, over-long or oversized values) is
 *   AgentError AGENT_INPUT_INVALID before the database is touched. A database failure is thrown as AgentError
 *   AGENT_ADAPTER_FAILED (retryable, `cause` = the driver's error, `details: {adapter: 'postgres', op}`): the
 *   runtime turns it into an error event and keeps the session.
 *
 * The cloud may import the generic agent core's types; the core never imports the cloud (lint rule in eslint.config.js).
 */
import { AgentError, isAgentError } from '../runtime/agents/types.js';
import type { SessionPersistenceAdapter, SessionRecord, StorageBackend, TranscriptEntry } from '../runtime/agents/types.js';
import type { Db } from './db.js';

export interface PgAgentAdapterOptions {
  /** Which rows this set reads and writes (`[A-Za-z0-9][A-Za-z0-9._-]{0,127}`); default `default`. */
  scope?: string;
  /** Largest file `upload` accepts, bytes (default {@link AGENT_MAX_FILE_BYTES}). */
  maxFileBytes?: number;
}

export interface PgAgentAdapters {
  persistence: SessionPersistenceAdapter;
  storage: StorageBackend;
}

/** Session ids and scopes: one path segment of safe characters, so every adapter set (files too) can use them as names. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A file path inside a session: at most this many characters, segments at most {@link AGENT_MAX_SEGMENT}. */
export const AGENT_MAX_PATH = 1024;
export const AGENT_MAX_SEGMENT = 255;
export const AGENT_MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Largest serialized session record or transcript entry (a tool's output included). */
export const AGENT_MAX_JSON_BYTES = 4 * 1024 * 1024;

const STATES = new Set(['idle', 'running', 'paused', 'closed']);
/** Rows per statement in `sync` (all of them still in one transaction). */
const SYNC_CHUNK = 500;

/**
 * The PostgreSQL adapter set on an open cloud database (migrated by {@link openDb}: version 4 or later).
 * @throws AgentError AGENT_INPUT_INVALID when `scope` or `maxFileBytes` is invalid.
 */
export function createPgAgentAdapters(db: Db, options: PgAgentAdapterOptions = {}): PgAgentAdapters {
  const scope = options.scope ?? 'default';
  if (typeof scope !== 'string' || !AGENT_ID_PATTERN.test(scope)) invalid(`Scope must match ${AGENT_ID_PATTERN.source}.`, { scope });
  const maxFileBytes = options.maxFileBytes ?? AGENT_MAX_FILE_BYTES;
  if (!Number.isSafeInteger(maxFileBytes) || maxFileBytes < 0) invalid('maxFileBytes must be a non-negative integer.', { maxFileBytes });

  const persistence: SessionPersistenceAdapter = {
    fetchAll: () =>
      guarded('fetchAll', async () => (await db.query<{ record: SessionRecord }>('SELECT record FROM agent_sessions WHERE scope = $1 ORDER BY id', [scope])).map((r) => r.record)),

    async load(id) {
      checkId(id, 'session id');
      return guarded('load', async () => {
        const rows = await db.query<{ record: SessionRecord }>('SELECT record FROM agent_sessions WHERE scope = $1 AND id = $2', [scope, id]);
        return rows[0]?.record ?? null;
      });
    },

    async save(record) {
      const json = recordJson(record);
      await guarded('save', () =>
        db.query(
          `INSERT INTO agent_sessions (scope, id, agent_type, state, record, updated_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6::timestamptz)
           ON CONFLICT (scope, id) DO UPDATE SET agent_type = excluded.agent_type, state = excluded.state, record = excluded.record, updated_at = excluded.updated_at`,
          [scope, record.id, record.agent_type, record.state, json, record.updated_at],
        ),
      );
    },

    async sync(records) {
      if (!Array.isArray(records)) invalid('sync takes an array of session records.');
      // One INSERT … ON CONFLICT may not touch a row twice: the last record of an id wins, as with successive saves.
      const byId = new Map<string, string>();
      for (const record of records) byId.set(record.id, recordJson(record));
      if (byId.size === 0) return;
      const jsons = [...byId.values()];
      await guarded('sync', () =>
        db.tx(async (sql) => {
          for (let i = 0; i < jsons.length; i += SYNC_CHUNK) {
            await sql.query(
              `INSERT INTO agent_sessions (scope, id, agent_type, state, record, updated_at)
               SELECT $1, r->>'id', r->>'agent_type', r->>'state', r, (r->>'updated_at')::timestamptz FROM jsonb_array_elements($2::jsonb) AS r
               ON CONFLICT (scope, id) DO UPDATE SET agent_type = excluded.agent_type, state = excluded.state, record = excluded.record, updated_at = excluded.updated_at`,
              [scope, `[${jsons.slice(i, i + SYNC_CHUNK).join(',')}]`],
            );
          }
        }),
      );
    },

    async delete(id) {
      checkId(id, 'session id');
      await guarded('delete', () => db.query('DELETE FROM agent_sessions WHERE scope = $1 AND id = $2', [scope, id]));
    },
  };

  const storage: StorageBackend = {
    async appendTranscript(sessionId, entries) {
      checkId(sessionId, 'session id');
      const json = entriesJson(entries);
      if (entries.length === 0) return;
      await guarded('appendTranscript', () =>
        db.tx(async (sql) => {
          const inserted = await sql.query(
            `INSERT INTO agent_transcript (scope, session, seq, entry) SELECT $1, $2, (e->>'seq')::bigint, e FROM jsonb_array_elements($3::jsonb) AS e
             ON CONFLICT (scope, session, seq) DO NOTHING RETURNING seq`,
            [scope, sessionId, json],
          );
          if (inserted.length === entries.length) return;
          // Some seqs were stored already: a retry is fine when it carries the same entries (jsonb equality ignores key order).
          const differ = await sql.query<{ seq: number }>(
            `SELECT t.seq FROM agent_transcript t JOIN jsonb_array_elements($3::jsonb) AS e ON t.seq = (e->>'seq')::bigint
             WHERE t.scope = $1 AND t.session = $2 AND t.entry <> e ORDER BY t.seq`,
            [scope, sessionId, json],
          );
          if (differ.length > 0) {
            invalid(`Transcript of session ${sessionId} already holds a different entry at seq ${differ.map((r) => r.seq).join(', ')}; transcripts are append-only.`, {
              session: sessionId,
              seqs: differ.map((r) => Number(r.seq)),
            });
          }
        }),
      );
    },

    async readTranscript(sessionId, options = {}) {
      checkId(sessionId, 'session id');
      const after = options.after ?? 0;
      const limit = options.limit ?? null;
      if (!Number.isSafeInteger(after) || after < 0) invalid('after must be a non-negative integer.', { after });
      if (limit !== null && (!Number.isSafeInteger(limit) || limit < 0)) invalid('limit must be a non-negative integer.', { limit });
      return guarded('readTranscript', async () =>
        (
          await db.query<{ entry: TranscriptEntry }>('SELECT entry FROM agent_transcript WHERE scope = $1 AND session = $2 AND seq > $3 ORDER BY seq LIMIT $4', [
            scope,
            sessionId,
            after,
            limit,
          ])
        ).map((r) => r.entry),
      );
    },

    async upload(sessionId, path, data) {
      checkId(sessionId, 'session id');
      checkPath(path);
      if (!(data instanceof Uint8Array)) invalid('File data must be a Uint8Array.', { path });
      if (data.byteLength > maxFileBytes) invalid(`File ${path} is ${data.byteLength} bytes; the limit is ${maxFileBytes}.`, { path, size: data.byteLength, limit: maxFileBytes });
      await guarded('upload', () =>
        db.query(
          `INSERT INTO agent_files (scope, session, path, data, size, updated_at) VALUES ($1, $2, $3, $4::bytea, $5, now())
           ON CONFLICT (scope, session, path) DO UPDATE SET data = excluded.data, size = excluded.size, updated_at = excluded.updated_at`,
          [scope, sessionId, path, Buffer.from(data.buffer, data.byteOffset, data.byteLength), data.byteLength],
        ),
      );
    },

    async download(sessionId, path) {
      checkId(sessionId, 'session id');
      checkPath(path);
      return guarded('download', async () => {
        const rows = await db.query<{ data: Uint8Array }>('SELECT data FROM agent_files WHERE scope = $1 AND session = $2 AND path = $3', [scope, sessionId, path]);
        // A plain Uint8Array (node-postgres answers a Buffer): callers compare and slice it without Node's semantics.
        return rows[0] ? new Uint8Array(rows[0].data) : null;
      });
    },

    async list(sessionId) {
      checkId(sessionId, 'session id');
      return guarded('list', async () =>
        (
          await db.query<{ path: string; size: number; updated_at: Date | string }>(
            'SELECT path, size, updated_at FROM agent_files WHERE scope = $1 AND session = $2 ORDER BY path',
            [scope, sessionId],
          )
        ).map((r) => ({ path: r.path, size: Number(r.size), updated_at: new Date(r.updated_at).toISOString() })),
      );
    },

    async delete(sessionId, path) {
      checkId(sessionId, 'session id');
      if (path !== undefined) {
        checkPath(path);
        await guarded('delete', () => db.query('DELETE FROM agent_files WHERE scope = $1 AND session = $2 AND path = $3', [scope, sessionId, path]));
        return;
      }
      await guarded('delete', () =>
        db.tx(async (sql) => {
          await sql.query('DELETE FROM agent_files WHERE scope = $1 AND session = $2', [scope, sessionId]);
          await sql.query('DELETE FROM agent_transcript WHERE scope = $1 AND session = $2', [scope, sessionId]);
        }),
      );
    },
  };

  return { persistence, storage };
}

function invalid(message: string, details?: Record<string, unknown>): never {
  throw new AgentError('AGENT_INPUT_INVALID', message, details ? { details } : {});
}

/** Runs one database operation; anything but our own AgentError becomes AGENT_ADAPTER_FAILED with the driver's error as cause. */
async function guarded<T>(op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isAgentError(err)) throw err;
    throw new AgentError('AGENT_ADAPTER_FAILED', `PostgreSQL agent store: ${op} failed: ${(err as Error)?.message ?? String(err)}`, {
      retryable: true,
      cause: err,
      details: { adapter: 'postgres', op },
    });
  }
}

function checkId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || !AGENT_ID_PATTERN.test(id)) invalid(`Invalid ${what} ${JSON.stringify(id)?.slice(0, 140)}: it must match ${AGENT_ID_PATTERN.source}.`);
}

/** A relative path of `/`-separated segments: no empty, `.` or `..` segment, no leading `/`, no backslash, drive or control character. */
function checkPath(path: unknown): asserts path is string {
  const bad = (why: string) => invalid(`Invalid file path ${JSON.stringify(path)?.slice(0, 140)}: ${why}.`);
  if (typeof path !== 'string' || path.length === 0) bad('it must be a non-empty string');
  const p = path as string;
  if (p.length > AGENT_MAX_PATH) bad(`longer than ${AGENT_MAX_PATH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) bad('control characters are not allowed');
  if (p.includes('\\')) bad('use / to separate segments');
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) bad('it must be relative to the session');
  for (const segment of p.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') bad('empty, "." and ".." segments are not allowed');
    if (segment.length > AGENT_MAX_SEGMENT) bad(`a segment is longer than ${AGENT_MAX_SEGMENT} characters`);
  }
}

function recordJson(record: SessionRecord): string {
  if (typeof record !== 'object' || record === null) invalid('A session record must be an object.');
  checkId(record.id, 'session id');
  if (record.v !== 1) invalid(`Session ${record.id}: unknown record version ${String(record.v)}.`);
  if (typeof record.agent_type !== 'string' || record.agent_type.length === 0 || record.agent_type.length > 128) invalid(`Session ${record.id}: agent_type must be a string of 1–128 characters.`);
  if (!STATES.has(record.state)) invalid(`Session ${record.id}: unknown state ${String(record.state)}.`);
  if (typeof record.updated_at !== 'string' || Number.isNaN(Date.parse(record.updated_at))) invalid(`Session ${record.id}: updated_at must be an ISO date.`);
  return jsonbText(record, `session ${record.id}`);
}

function entriesJson(entries: readonly TranscriptEntry[]): string {
  if (!Array.isArray(entries)) invalid('appendTranscript takes an array of entries.');
  let last = 0;
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null || !Number.isSafeInteger(entry.seq) || entry.seq < 1) invalid('Every transcript entry needs an integer seq ≥ 1.');
    if (entry.seq <= last) invalid(`Transcript entries must come in increasing seq order (${entry.seq} after ${last}).`);
    if (typeof entry.type !== 'string') invalid(`Transcript entry ${entry.seq} has no type.`);
    last = entry.seq;
  }
  const parts = entries.map((e) => jsonbText(e, `transcript entry ${e.seq}`));
  return `[${parts.join(',')}]`;
}

/** U+0000 and unpaired surrogates: text PostgreSQL's jsonb refuses. */
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const storable = (s: string) => s.replace(UNSTORABLE, '\ufffd');

/** JSON text for a jsonb parameter, within {@link AGENT_MAX_JSON_BYTES}, with unstorable characters replaced. */
function jsonbText(value: unknown, what: string): string {
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string') return storable(v);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.some((k) => storable(k) !== k)) return Object.fromEntries(keys.map((k) => [storable(k), (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
  if (Buffer.byteLength(text) > AGENT_MAX_JSON_BYTES) invalid(`${what} is larger than ${AGENT_MAX_JSON_BYTES} bytes as JSON.`);
  return text;
}
