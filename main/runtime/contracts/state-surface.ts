/**
 * The State Surface of seed 002 §3: the one way intent handlers read and write platform state, scoped to a
 * session (`tenant_id` + `session_id`) or to an execution (`execution_id`).
 *
 * Contracts:
 * - Owns the `state_entries` table (store module `state_surface`); nothing else reads or writes it.
 * - Values are JSON, at most 64 KiB each (PAYLOAD_TOO_LARGE beyond). Keys match `^[A-Za-z0-9_.:-]{1,128}$`.
 * - Optimistic concurrency: every key has a `version` that starts at 1 and grows by one on each write or
 *   delete. `set`/`delete` with `expected_version` fail (`details.reason: 'STATE_VERSION_CONFLICT'`) unless the
 *   key is at that version; `expected_version: 0` means "the key has no value". A delete leaves a tombstone that
 *   keeps the version counting, so a writer holding a version from before the delete never overwrites a key
 *   someone re-created since.
 * - Every change is journaled as `state.changed` in the same transaction as the write, with the writer's trace
 *   id, so a run's state can be reconstructed from the journal.
 */
import type { Bus } from '../bus/index.js';
import type { Migration, Store } from '../store/index.js';
import { TRACE_ID_PATTERN } from '../../common/api.js';
import { TesseraError } from '../../common/errors.js';
import { checkId, checkInteger, contractError, frozenJson, toContractJson } from './validate.js';

/** Where a {@link StateScope} keeps its keys. */
export type StateScopeKind = 'session' | 'execution';

/** One key of a scope, as read. */
export interface StateEntry {
  /** The key within its scope. */
  readonly key: string;
  /** The stored JSON value (deeply frozen). */
  readonly value: unknown;
  /** 1 after the first write; grows by one on every write and delete. Pass as `expected_version` to update safely. */
  readonly version: number;
  /** ISO-8601 time of the last write. */
  readonly updated_at: string;
}

/** Options of {@link StateScope.set} and {@link StateScope.delete}. */
export interface StateWriteOptions {
  /**
   * Write only when the key is at this version (0: only when it has no value). On mismatch the call throws
   * with `details.reason: 'STATE_VERSION_CONFLICT'` and `details.actual_version`; re-read and retry.
   */
  expected_version?: number;
  /** Trace id for the `state.changed` event; defaults to the surface's own (see {@link StateSurface.withTrace}). */
  trace_id?: string;
}

/** Options of {@link StateScope.list}. */
export interface StateListOptions {
  /** Only keys starting with this text. */
  prefix?: string;
  /** At most this many entries (1–1000, default 1000), in key order. */
  limit?: number;
}

/** The keys of one session or one execution. Obtain one from {@link StateSurface}. */
export interface StateScope {
  /** Whether this is session or execution state. */
  readonly kind: StateScopeKind;
  /** The tenant of a session scope; null for an execution scope. */
  readonly tenant_id: string | null;
  /** The session of a session scope; null for an execution scope. */
  readonly session_id: string | null;
  /** The execution of an execution scope; null for a session scope. */
  readonly execution_id: string | null;
  /** The entry of `key`, or undefined when it has no value. */
  get(key: string): StateEntry | undefined;
  /** Store `value` (any JSON value, ≤ 64 KiB) under `key`; returns the new entry. Journaled as `state.changed`. */
  set(key: string, value: unknown, options?: StateWriteOptions): StateEntry;
  /** Remove `key`'s value; returns whether it had one. Journaled as `state.changed` when it had. */
  delete(key: string, options?: StateWriteOptions): boolean;
  /** The keys that have a value, in key order. */
  list(options?: StateListOptions): StateEntry[];
}

/** Session- and execution-scoped state (seed 002 §3). */
export interface StateSurface {
  /** Session state, keyed by tenant and session (seed 002: `session:{tenant_id}:{session_id}`). */
  session(tenant_id: string, session_id: string): StateScope;
  /** State of one execution. */
  execution(execution_id: string): StateScope;
  /** The same surface, whose writes carry `trace_id` unless a write names its own. */
  withTrace(trace_id: string): StateSurface;
}

/** Dependencies of {@link createStateSurface}. */
export interface StateSurfaceOptions {
  store: Store;
  bus: Bus;
  /** Epoch milliseconds; injected so tests and replays control time. */
  clock?: () => number;
}

/** The topic of every state change. */
export const STATE_CHANGED_TOPIC = 'state.changed';

export const STATE_SURFACE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'state entries',
    up(db) {
      // tenant_id is '' for execution scope; value NULL is a tombstone (see the version contract above).
      db.exec(`
        CREATE TABLE state_entries (
          scope      TEXT    NOT NULL CHECK (scope IN ('session', 'execution')),
          tenant_id  TEXT    NOT NULL,
          owner_id   TEXT    NOT NULL,
          key        TEXT    NOT NULL,
          value      TEXT    CHECK (value IS NULL OR json_valid(value)),
          version    INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (scope, tenant_id, owner_id, key)
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
];

interface Row {
  key: string;
  value: string | null;
  version: number;
  updated_at: number;
}

const TRACE_ID = new RegExp(TRACE_ID_PATTERN);

type ScopeParams = [scope: StateScopeKind, tenant: string, owner: string];

/** Create the State Surface over the device store; applies its migrations. */
export function createStateSurface(options: StateSurfaceOptions): StateSurface {
  const { store, bus } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('state_surface', STATE_SURFACE_MIGRATIONS);
  const db = store.db;
  const q = {
    get: db.prepare<[...ScopeParams, string], Row>('SELECT key, value, version, updated_at FROM state_entries WHERE scope = ? AND tenant_id = ? AND owner_id = ? AND key = ?'),
    put: db.prepare(`INSERT INTO state_entries (scope, tenant_id, owner_id, key, value, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (scope, tenant_id, owner_id, key) DO UPDATE SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at`),
    list: db.prepare<[...ScopeParams, string, string, number], Row>(`SELECT key, value, version, updated_at FROM state_entries
      WHERE scope = ? AND tenant_id = ? AND owner_id = ? AND key >= ? AND key < ? AND value IS NOT NULL ORDER BY key LIMIT ?`),
  };

  const toEntry = (row: Row): StateEntry => Object.freeze({ key: row.key, value: frozenJson(row.value!), version: row.version, updated_at: new Date(row.updated_at).toISOString() });

  const checkExpected = (expected: number | undefined, key: string, row: Row | undefined, where: string) => {
    if (expected === undefined) return;
    checkInteger(expected, 'expected_version', 0, Number.MAX_SAFE_INTEGER, 0);
    const actual = row && row.value !== null ? row.version : 0;
    if (expected !== actual) {
      throw contractError('STATE_VERSION_CONFLICT', `State key "${key}" of ${where} is at version ${actual}, not ${expected}; read it again and retry.`, { key, expected_version: expected, actual_version: actual });
    }
  };

  const makeScope = (kind: StateScopeKind, tenant: string, owner: string, defaultTrace: string | undefined): StateScope => {
    const params: ScopeParams = [kind, tenant, owner];
    const where = kind === 'session' ? `session ${owner} of tenant ${tenant}` : `execution ${owner}`;
    const ids = kind === 'session' ? { tenant_id: tenant, session_id: owner } : { execution_id: owner };
    const publish = (payload: Record<string, unknown>, traceId: string | undefined) => {
      const trace = traceId ?? defaultTrace;
      bus.publish(STATE_CHANGED_TOPIC, { scope: kind, ...ids, ...payload }, trace === undefined ? {} : { trace_id: trace });
    };
    const write = db.transaction((key: string, json: string | null, opts: StateWriteOptions): Row | undefined => {
      const row = q.get.get(...params, key);
      checkExpected(opts.expected_version, key, row, where);
      if (json === null && (!row || row.value === null)) return undefined;
      const next: Row = { key, value: json, version: (row?.version ?? 0) + 1, updated_at: clock() };
      q.put.run(...params, key, json, next.version, next.updated_at);
      publish(json === null ? { key, op: 'delete', version: next.version } : { key, op: 'set', version: next.version, value: JSON.parse(json) as unknown }, opts.trace_id);
      return next;
    });
    return Object.freeze({
      kind,
      tenant_id: kind === 'session' ? tenant : null,
      session_id: kind === 'session' ? owner : null,
      execution_id: kind === 'execution' ? owner : null,
      get(key: string) {
        const row = q.get.get(...params, checkId(key, 'state key'));
        return row && row.value !== null ? toEntry(row) : undefined;
      },
      set(key: string, value: unknown, opts: StateWriteOptions = {}) {
        checkId(key, 'state key');
        const json = toContractJson(value, `state value of "${key}"`);
        return toEntry(write(key, json, opts)!);
      },
      delete(key: string, opts: StateWriteOptions = {}) {
        return write(checkId(key, 'state key'), null, opts) !== undefined;
      },
      list(opts: StateListOptions = {}) {
        const prefix = opts.prefix ?? '';
        if (typeof prefix !== 'string') throw new TesseraError('VALIDATION_FAILED', 'prefix must be a string.');
        const limit = checkInteger(opts.limit, 'limit', 1, 1000, 1000);
        return q.list.all(...params, prefix, prefix + '\uffff', limit).map(toEntry);
      },
    });
  };

  const surface = (defaultTrace: string | undefined): StateSurface => Object.freeze({
    session: (tenantId: string, sessionId: string) => makeScope('session', checkId(tenantId, 'tenant_id'), checkId(sessionId, 'session_id'), defaultTrace),
    execution: (executionId: string) => makeScope('execution', '', checkId(executionId, 'execution_id'), defaultTrace),
    withTrace: (traceId: string) => {
      if (typeof traceId !== 'string' || !TRACE_ID.test(traceId)) throw new TesseraError('TRACE_ID_INVALID', 'trace_id must be 1–128 characters of letters, digits, ".", "_", ":" or "-", starting with a letter or digit.');
      return surface(traceId);
    },
  });
  return surface(undefined);
}
