/** Journal append throughput against raw better-sqlite3 inserts into the same table shape, same pragmas. */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJournal, newTraceId } from '../../main/runtime/journal/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Benchmark, Side } from './harness.js';

const payload = { city: 'Berlin', step: 3, note: 'x'.repeat(120) };
const BATCH = 100;

function rawSide(batch: number): Side {
  return {
    name: batch === 1 ? 'raw INSERT, autocommit' : `raw INSERT ×${batch} in one transaction`,
    setup() {
      const dir = mkdtempSync(join(tmpdir(), 'bench-raw-'));
      const db = new Database(join(dir, 'raw.db'));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec('CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, topic TEXT NOT NULL, trace_id TEXT NOT NULL, payload TEXT NOT NULL) STRICT; CREATE INDEX events_topic ON events (topic, id); CREATE INDEX events_trace ON events (trace_id, id); CREATE INDEX events_ts ON events (ts);');
      const insert = db.prepare('INSERT INTO events (ts, topic, trace_id, payload) VALUES (?, ?, ?, ?)');
      const json = JSON.stringify(payload);
      // Same trace-id generator as the journal, so the ratio isolates the journal's own work (validation,
      // serialization, monotonic time, the returned event).
      const one = () => {
        const now = Date.now();
        insert.run(now, 'bench.event', newTraceId(now), json);
      };
      const many = db.transaction(() => {
        for (let i = 0; i < batch; i++) one();
      });
      return {
        run: batch === 1 ? one : many,
        teardown() {
          db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

function journalSide(batch: number): Side {
  return {
    name: batch === 1 ? 'journal.append' : `journal.appendMany(${batch})`,
    setup() {
      const dir = mkdtempSync(join(tmpdir(), 'bench-journal-'));
      const store = openStore({ path: join(dir, 'tessera.db') });
      const journal = createJournal({ store });
      const inputs = Array.from({ length: batch }, () => ({ topic: 'bench.event', payload }));
      return {
        run: batch === 1 ? () => journal.append({ topic: 'bench.event', payload }) : () => journal.appendMany(inputs),
        teardown() {
          store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

export const benchmarks: Benchmark[] = [
  { name: 'journal append, one event per commit', opsPerRun: 1, runsPerRound: 20_000, baseline: rawSide(1), candidate: journalSide(1) },
  { name: `journal append, batches of ${BATCH}`, opsPerRun: BATCH, runsPerRound: 1_000, baseline: rawSide(BATCH), candidate: journalSide(BATCH) },
];
