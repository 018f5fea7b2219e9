/**
 * Memory (seed 001 §8): `memory.get/set("user.name")`, one value per dotted key, every change journaled as
 * `memory.changed` with the old and new value so a run can be debugged after the fact.
 *
 * Personal data (seed 001 §17, issue 18 point 4). A scenario's `pii: [traveller.*, user.name]` marks keys as
 * personal ({@link Memory.markPersonal}); a key once marked stays marked for the life of the runtime (a scenario
 * unloaded or replaced does not unmark it). Contract for a personal key:
 * - its value is kept in clear in the `memory` table only (the one place it must be readable again);
 * - `memory.changed` carries `***` for the old and new values plus a keyed digest of each ({@link Memory.digest}),
 *   so an operator can tell "the same value again" from "a different value" without seeing it;
 * - expressions read it through {@link Memory.scope} wrapped as a secret (main/common/expr.ts `secret`), so
 *   everything the engine records of it — step inputs and outputs, bag snapshots, journal payloads, log lines —
 *   shows `***`, while the one consumer that needs it (TTS through io.say, a tool's input) is handed the clear
 *   value by `reveal`.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { TesseraError } from '../../common/errors.js';
import { isSecret, secret } from '../../common/expr.js';
import { topicProblem } from '../../common/topics.js';
import type { Bus } from '../bus/index.js';
import type { Migration, Store } from '../store/index.js';

export interface Memory {
  get(key: string): unknown;
  /**
   * Sets `key`; returns the previous value (null when none). Journaled with `trace_id` when given; with
   * `sensitive` (the value came from a secret) the `memory.changed` event carries `***` instead of the values.
   */
  set(key: string, value: unknown, options?: { trace_id?: string; by?: string; sensitive?: boolean }): unknown;
  delete(key: string): boolean;
  list(prefix?: string): Array<{ key: string; value: unknown; updated_at: string }>;
  /**
   * Marks keys as personal data: each pattern is a key (`user.name`) or a prefix ending in `*` (`traveller.*`
   * matches `traveller.name`, `traveller.x.y`). Marks only accumulate.
   */
  markPersonal(patterns: readonly string[]): void;
  isPersonal(key: string): boolean;
  /**
   * A read-only live view for expressions, `${memory["user.name"]}`: reading a key reads the table at that
   * moment (null when unset); a personal key's value comes wrapped as a secret, and is told to `onPersonal`
   * (the engine guards the run's step outputs against echoes of it). Enumerable (`keys(memory)`).
   */
  scope(options?: { onPersonal?: (value: unknown) => void }): Record<string, unknown>;
  /**
   * What stands for a personal value wherever it is shown: `hmac:` + 16 hex digits of HMAC-SHA256 over its JSON,
   * under a random key kept in this device's database. Equal values give equal digests on this device; without
   * the key (a bundle's or the cloud's reader) a guessed name cannot be confirmed, unlike a plain hash.
   */
  digest(value: unknown): string;
}

/** What a sensitive change shows in the journal instead of the values (the secret machinery's `***`). */
const REDACTED = '***';

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'memory',
    up: (db) => db.exec('CREATE TABLE memory (key TEXT PRIMARY KEY, value TEXT NOT NULL CHECK (json_valid(value)), updated_at INTEGER NOT NULL) STRICT, WITHOUT ROWID'),
  },
  {
    version: 2,
    name: 'memory digest key',
    // The key of personal values' digests: random per device, never journaled nor exported.
    up: (db) => {
      db.exec('CREATE TABLE memory_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT, WITHOUT ROWID');
      db.prepare("INSERT INTO memory_meta (name, value) VALUES ('digest_key', ?)").run(randomBytes(32));
    },
  },
];

/** Whether `key` matches one of `patterns` (a key, or a prefix ending in `*`). */
export function matchesPersonal(patterns: Iterable<string>, key: string): boolean {
  for (const p of patterns) if (p.endsWith('*') ? key.startsWith(p.slice(0, -1)) : key === p) return true;
  return false;
}

export function createMemory(options: { store: Store; bus: Bus; clock?: () => number }): Memory {
  const { store, bus } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('memory', MIGRATIONS);
  const db = store.db;
  const get = db.prepare<[string], { value: string }>('SELECT value FROM memory WHERE key = ?');
  const put = db.prepare('INSERT INTO memory (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at');
  const del = db.prepare('DELETE FROM memory WHERE key = ?');
  const list = db.prepare<[string, string], { key: string; value: string; updated_at: number }>('SELECT key, value, updated_at FROM memory WHERE key >= ? AND key < ? ORDER BY key');
  const check = (key: string) => {
    const problem = topicProblem(key);
    if (problem) throw new TesseraError('VALIDATION_FAILED', `memory key: ${problem.replace('topic', 'key')}`);
  };
  const read = (key: string): unknown => {
    const row = get.get(key);
    return row ? (JSON.parse(row.value) as unknown) : null;
  };
  const digestKey = db.prepare<[], { value: Buffer }>("SELECT value FROM memory_meta WHERE name = 'digest_key'").get()!.value;
  const personal = new Set<string>();
  const isPersonal = (key: string) => matchesPersonal(personal, key);
  const digest = (value: unknown) => 'hmac:' + createHmac('sha256', digestKey).update(JSON.stringify(value ?? null)).digest('hex').slice(0, 16);
  const write = db.transaction((key: string, json: string, opts: { trace_id?: string; by?: string; sensitive?: boolean }) => {
    const old = read(key);
    put.run(key, json, clock());
    const value = JSON.parse(json) as unknown;
    const shown = isPersonal(key)
      ? { old: REDACTED, new: REDACTED, redacted: true, personal: true, digest: { old: old === null ? null : digest(old), new: digest(value) } }
      : opts.sensitive
        ? { old: REDACTED, new: REDACTED, redacted: true }
        : { old, new: value };
    bus.publish('memory.changed', { key, ...shown, by: opts.by ?? null }, opts.trace_id === undefined ? {} : { trace_id: opts.trace_id });
    return old;
  });
  return {
    get(key) {
      check(key);
      return read(key);
    },
    set(key, value, opts = {}) {
      check(key);
      if (isSecret(value)) throw new TesseraError('VALIDATION_FAILED', `memory value for ${key} is still wrapped as a secret: reveal it first`);
      const json = JSON.stringify(value ?? null);
      if (json.length > 64 * 1024) throw new TesseraError('PAYLOAD_TOO_LARGE', `memory value for ${key} is over 64 KiB`);
      return write(key, json, opts);
    },
    delete(key) {
      check(key);
      return del.run(key).changes > 0;
    },
    list(prefix = '') {
      return list.all(prefix, prefix + '\uffff').map((r) => ({ key: r.key, value: JSON.parse(r.value) as unknown, updated_at: new Date(r.updated_at).toISOString() }));
    },
    markPersonal(patterns) {
      for (const p of patterns) personal.add(p);
    },
    isPersonal,
    digest,
    scope(opts = {}) {
      // A Proxy so that a run reads memory as it is at each step, not a copy taken at the run's start. The
      // evaluator reads own data properties only (expr.ts `lookup`): each key is reported as one, configurable.
      const shown = (key: string): unknown => {
        if (topicProblem(key)) return undefined;
        const v = read(key);
        if (!isPersonal(key) || v === null) return v;
        opts.onPersonal?.(v);
        return secret(v);
      };
      return new Proxy(Object.create(null) as Record<string, unknown>, {
        getOwnPropertyDescriptor: (_t, key) => (typeof key === 'string' && !topicProblem(key) && get.get(key) ? { value: shown(key), writable: false, enumerable: true, configurable: true } : undefined),
        has: (_t, key) => typeof key === 'string' && !topicProblem(key) && get.get(key) !== undefined,
        get: (_t, key) => (typeof key === 'string' ? shown(key) : undefined),
        ownKeys: () => list.all('', '\uffff').map((r) => r.key),
        set: () => false,
        defineProperty: () => false,
        deleteProperty: () => false,
      });
    },
  };
}
