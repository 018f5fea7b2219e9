/**
 * Memory (seed 001 §8): `memory.get/set("user.name")`, one value per dotted key, every change journaled as
 * `memory.changed` with the old and new value so a run can be debugged after the fact.
 */
import { TesseraError } from '../../common/errors.js';
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
}

/** What a sensitive change shows in the journal instead of the values. */
const REDACTED = '***';

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'memory',
    up: (db) => db.exec('CREATE TABLE memory (key TEXT PRIMARY KEY, value TEXT NOT NULL CHECK (json_valid(value)), updated_at INTEGER NOT NULL) STRICT, WITHOUT ROWID'),
  },
];

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
  const write = db.transaction((key: string, json: string, opts: { trace_id?: string; by?: string; sensitive?: boolean }) => {
    const old = read(key);
    put.run(key, json, clock());
    const shown = opts.sensitive ? { old: REDACTED, new: REDACTED, redacted: true } : { old, new: JSON.parse(json) as unknown };
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
  };
}
