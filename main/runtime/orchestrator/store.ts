/**
 * The device's default agent adapters (issue 17 point 2; seed 003 FR2.1, FR2.2, FR2.4): session records and
 * transcripts in the device's SQLite (tables `agent_sessions`, `agent_transcript`, owned here), session files under
 * `<data>/agents/<session>/files`, and each session's sandbox (scratch folder `<data>/agents/<session>/work`).
 *
 * - A record is one row holding the whole {@link SessionRecord} as JSON: a save replaces it in one statement, so a
 *   crash leaves the old or the new record, never a torn one. `sync` saves many in one transaction.
 * - Transcript entries are rows keyed by (session, seq), appended in one transaction before `appendTranscript`
 *   returns (WAL, synchronous=NORMAL: committed entries survive a kill -9). Entries are never rewritten: the same
 *   entry appended again at its seq (a retried append after a crash) changes nothing; a *different* entry at a
 *   stored seq is refused with AGENT_INPUT_INVALID naming the seqs, and nothing of that batch is written (as the
 *   PostgreSQL set does: main/cloud/agent-store.ts). Entries are compared as JSON values (key order aside).
 * - Files are written to a temporary file, fsynced, then renamed over the target (atomic on POSIX); paths are
 *   relative, `/`-separated, with no `.`/`..` segments, so a session cannot reach outside its folder.
 * - Failures throw AgentError AGENT_ADAPTER_FAILED (retryable) naming the adapter and the session; the agent
 *   runtime turns them into `error` events and keeps running (NFR2.4).
 * - The sandbox gives stdio MCP servers no environment of the runtime's by default; a profile may ask for API keys
 *   by secret name (`meta.sandbox_env: {ENV_NAME: "secret.name"}`), resolved through the secret store at session
 *   start and never written anywhere. They go to every stdio server of the profile (the SandboxConfig's `env` is
 *   one for the session): a profile that holds secrets should list only servers trusted with all of them. Stdio
 *   servers are operator-installed programs run as the device's user, not sandboxed (README "Agents").
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentError } from '../agents/types.js';
import type { AgentProfile, SandboxConfig, SandboxConfigProvider, SessionInfo, SessionPersistenceAdapter, SessionRecord, StorageBackend, TranscriptEntry } from '../agents/types.js';
import type { Migration, Store } from '../store/index.js';

export const AGENT_STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'agent sessions and transcripts',
    up(db) {
      db.exec(`
        CREATE TABLE agent_sessions (
          id         TEXT PRIMARY KEY,
          agent_type TEXT NOT NULL,
          owner      TEXT NOT NULL,
          state      TEXT NOT NULL,
          updated_at TEXT NOT NULL,
          record     TEXT NOT NULL CHECK (json_valid(record))
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX agent_sessions_type ON agent_sessions (agent_type, state);
        CREATE TABLE agent_transcript (
          session TEXT    NOT NULL,
          seq     INTEGER NOT NULL,
          entry   TEXT    NOT NULL CHECK (json_valid(entry)),
          PRIMARY KEY (session, seq)
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
];

/** Session ids are the runtime's (UUIDs); anything else is refused before it reaches a path. */
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface AgentStoreOptions {
  store: Store;
  /** The runtime's data folder: files go to `<dataDir>/agents/<session>/`. */
  dataDir: string;
  /** Resolves a secret's value by name (the secret store); used only for a profile's `meta.sandbox_env`. */
  secret?: (name: string) => string | undefined;
}

export interface AgentStore {
  persistence: SessionPersistenceAdapter;
  storage: StorageBackend;
  sandbox: SandboxConfigProvider;
  /** `<dataDir>/agents/<session>`. @throws AgentError AGENT_INPUT_INVALID for an id that is not a session id. */
  sessionDir(id: string): string;
}

function failed(adapter: string, what: string, cause: unknown): AgentError {
  if (cause instanceof AgentError) return cause;
  return new AgentError('AGENT_ADAPTER_FAILED', `${adapter}: ${what}: ${(cause as Error)?.message ?? String(cause)}`, { retryable: true, cause, details: { adapter } });
}

/** Runs `fn`, turning any failure into AGENT_ADAPTER_FAILED naming the adapter and what it did. */
function guard<T>(adapter: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw failed(adapter, what, err);
  }
}

function checkPath(path: string): string {
  if (typeof path !== 'string' || path === '' || path.length > 512 || path.startsWith('/') || /^[A-Za-z]:/.test(path) || path.includes('\\') || path.includes('\0')) {
    throw new AgentError('AGENT_INPUT_INVALID', `"${String(path)}" is not a file path of a session: relative, "/"-separated, at most 512 characters`);
  }
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new AgentError('AGENT_INPUT_INVALID', `"${path}" is not a file path of a session: no empty, "." or ".." segments`);
  }
  return path;
}

/** JSON text with object keys sorted (arrays keep their order): equal for equal JSON values. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Writes `data` to `file` atomically: a temporary file beside it, fsynced, renamed over it. */
function writeAtomic(file: string, data: Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomUUID()}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    let off = 0;
    while (off < data.byteLength) off += writeSync(fd, data, off, data.byteLength - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function walk(root: string, prefix = ''): Array<{ path: string; size: number; updated_at: string }> {
  let entries;
  try {
    entries = readdirSync(join(root, prefix), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Array<{ path: string; size: number; updated_at: string }> = [];
  for (const e of entries) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(root, rel));
    else if (e.isFile() && !e.name.endsWith('.tmp')) {
      const s = statSync(join(root, rel));
      out.push({ path: rel, size: s.size, updated_at: s.mtime.toISOString() });
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function createAgentStore(options: AgentStoreOptions): AgentStore {
  const { store, dataDir } = options;
  store.migrate('agents', AGENT_STORE_MIGRATIONS);
  const db = store.db;
  const root = join(dataDir, 'agents');

  const sessionDir = (id: string): string => {
    if (typeof id !== 'string' || !SESSION_ID.test(id)) throw new AgentError('AGENT_INPUT_INVALID', `"${String(id)}" is not an agent session id`);
    return join(root, id);
  };
  const filesDir = (id: string) => join(sessionDir(id), 'files');
  /** The id, once it is known to be a session id (before anything is read or written). @throws AGENT_INPUT_INVALID */
  const idOf = (id: string): string => {
    sessionDir(id);
    return id;
  };
  const checked = (record: SessionRecord): SessionRecord => {
    idOf(record?.id);
    return record;
  };

  const upsert = db.prepare<[string, string, string, string, string, string]>(
    `INSERT INTO agent_sessions (id, agent_type, owner, state, updated_at, record) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET agent_type = excluded.agent_type, owner = excluded.owner, state = excluded.state, updated_at = excluded.updated_at, record = excluded.record`,
  );
  const selectAll = db.prepare<[], { record: string }>('SELECT record FROM agent_sessions ORDER BY id');
  const selectOne = db.prepare<[string], { record: string }>('SELECT record FROM agent_sessions WHERE id = ?');
  const deleteOne = db.prepare<[string]>('DELETE FROM agent_sessions WHERE id = ?');
  const insertEntry = db.prepare<[string, number, string]>('INSERT INTO agent_transcript (session, seq, entry) VALUES (?, ?, ?) ON CONFLICT (session, seq) DO NOTHING');
  const selectEntry = db.prepare<[string, number], { entry: string }>('SELECT entry FROM agent_transcript WHERE session = ? AND seq = ?');
  const selectEntries = db.prepare<[string, number, number], { entry: string }>('SELECT entry FROM agent_transcript WHERE session = ? AND seq > ? ORDER BY seq LIMIT ?');
  const deleteEntries = db.prepare<[string]>('DELETE FROM agent_transcript WHERE session = ?');

  const saveRow = (r: SessionRecord) => {
    sessionDir(r.id);
    upsert.run(r.id, r.agent_type, r.owner, r.state, r.updated_at, JSON.stringify(r));
  };
  const saveMany = db.transaction((records: readonly SessionRecord[]) => records.forEach(saveRow));
  /** Throwing inside the transaction rolls the whole batch back. */
  const append = db.transaction((id: string, entries: readonly TranscriptEntry[]) => {
    const differ: number[] = [];
    for (const e of entries) {
      const json = JSON.stringify(e);
      if (insertEntry.run(id, e.seq, json).changes > 0) continue;
      const stored = selectEntry.get(id, e.seq);
      if (stored && canonical(JSON.parse(stored.entry)) !== canonical(JSON.parse(json))) differ.push(e.seq);
    }
    if (differ.length > 0) {
      throw new AgentError('AGENT_INPUT_INVALID', `Transcript of session ${id} already holds a different entry at seq ${differ.join(', ')}; transcripts are append-only.`, { details: { session: id, seqs: differ } });
    }
  });

  const persistence: SessionPersistenceAdapter = {
    async fetchAll() {
      return guard('agent_sessions', 'reading every session', () => selectAll.all().map((row) => JSON.parse(row.record) as SessionRecord));
    },
    async load(id) {
      return guard('agent_sessions', `reading session ${id}`, () => {
        const row = selectOne.get(idOf(id));
        return row ? (JSON.parse(row.record) as SessionRecord) : null;
      });
    },
    async save(record) {
      guard('agent_sessions', `saving session ${record.id}`, () => saveRow(checked(record)));
    },
    async sync(records) {
      if (records.length === 0) return;
      guard('agent_sessions', `saving ${records.length} sessions`, () => saveMany(records.map(checked)));
    },
    async delete(id) {
      guard('agent_sessions', `deleting session ${id}`, () => deleteOne.run(idOf(id)));
    },
  };

  const storage: StorageBackend = {
    async appendTranscript(id, entries) {
      if (entries.length === 0) return;
      guard('agent_transcript', `appending to the transcript of ${id}`, () => {
        sessionDir(id);
        append(id, entries);
      });
    },
    async readTranscript(id, opts = {}) {
      const after = opts.after ?? 0;
      const limit = opts.limit ?? -1; // SQLite: a negative LIMIT is no limit
      return guard('agent_transcript', `reading the transcript of ${id}`, () => selectEntries.all(idOf(id), after, limit).map((row) => JSON.parse(row.entry) as TranscriptEntry));
    },
    async upload(id, path, data) {
      const file = join(filesDir(id), ...checkPath(path).split('/'));
      guard('agent files', `writing ${path} of ${id}`, () => writeAtomic(file, data));
    },
    async download(id, path) {
      const file = join(filesDir(id), ...checkPath(path).split('/'));
      return guard('agent files', `reading ${path} of ${id}`, () => {
        try {
          return new Uint8Array(readFileSync(file));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') return null;
          throw err;
        }
      });
    },
    async list(id) {
      const dir = filesDir(id);
      return guard('agent files', `listing the files of ${id}`, () => walk(dir));
    },
    async delete(id, path) {
      if (path !== undefined) {
        const file = join(filesDir(id), ...checkPath(path).split('/'));
        guard('agent files', `deleting ${path} of ${id}`, () => rmSync(file, { force: true }));
        return;
      }
      const dir = sessionDir(id);
      guard('agent_transcript', `deleting everything of ${id}`, () => {
        deleteEntries.run(id);
        // Only ever below <data>/agents/: sessionDir refused anything that is not a plain id.
        if (dir.startsWith(root + sep)) rmSync(dir, { recursive: true, force: true });
      });
    },
  };

  const sandbox: SandboxConfigProvider = {
    async configure(session: SessionInfo, profile: AgentProfile): Promise<SandboxConfig> {
      const workdir = join(sessionDir(session.id), 'work');
      guard('agent sandbox', `creating the work folder of ${session.id}`, () => mkdirSync(workdir, { recursive: true, mode: 0o700 }));
      const env: Record<string, string> = {};
      const wanted = profile.meta?.['sandbox_env'];
      if (wanted && typeof wanted === 'object') {
        for (const [name, secretName] of Object.entries(wanted as Record<string, unknown>)) {
          if (typeof secretName !== 'string') continue;
          const value = options.secret?.(secretName);
          // A missing secret is left out (the server reports what it lacks); never a placeholder value.
          if (value !== undefined) env[name] = value;
        }
      }
      return { env, mcp_servers: [], workdir };
    },
  };

  return { persistence, storage, sandbox, sessionDir };
}
