/**
 * The cluster's outbox (seed 001 §18, issue 18): a run dispatched to the cluster and a cancel of a distributed run
 * are rows here, written in the same SQLite transaction as what caused them; the relay (./index.ts) publishes them
 * when NATS is reachable. A `run` row stays until its run is seen claimed or finished in the run records — with
 * JetStream 2.9's 2-minute fsync a PubAck alone does not survive a power cut of the server — and is published again
 * only when it was not seen claimed for a while and the stream no longer holds it (lost with a server's store). A `cancel` row is
 * deleted once the cancel is written to the run record.
 */
import type { Migration, Store } from '../store/index.js';

export const CLUSTER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'cluster outbox',
    up(db) {
      db.exec(`
        CREATE TABLE cluster_outbox (
          id           INTEGER PRIMARY KEY,
          kind         TEXT NOT NULL,
          run_id       TEXT NOT NULL,
          payload      TEXT NOT NULL,
          created_at   INTEGER NOT NULL,
          published_at INTEGER
        ) STRICT;
        CREATE INDEX cluster_outbox_run ON cluster_outbox (run_id);
      `);
    },
  },
  {
    version: 2,
    name: 'stream sequence of a published run',
    up(db) {
      db.exec('ALTER TABLE cluster_outbox ADD COLUMN seq INTEGER;');
    },
  },
];

export interface OutboxRow {
  id: number;
  kind: 'run' | 'cancel';
  run_id: string;
  payload: string;
  created_at: number;
  published_at: number | null;
  /** Stream sequence of the last publication (a republish happens only when the stream no longer holds it). */
  seq: number | null;
}

export interface Outbox {
  /** Synchronous; inside the caller's transaction when there is one. */
  add(kind: OutboxRow['kind'], runId: string, payload: unknown, now: number): void;
  /** Rows to (re)publish: never published, or published before `republishBefore` and not yet seen claimed. */
  due(republishBefore: number, limit: number): OutboxRow[];
  published(id: number, now: number, seq?: number): void;
  remove(id: number): void;
  /** The run was seen claimed or finished: its `run` row is no longer needed. */
  seen(runId: string): void;
  count(): number;
}

export function createOutbox(store: Store): Outbox {
  store.migrate('cluster', CLUSTER_MIGRATIONS);
  const db = store.db;
  const q = {
    add: db.prepare('INSERT INTO cluster_outbox (kind, run_id, payload, created_at) VALUES (?, ?, ?, ?)'),
    due: db.prepare<[number, number], OutboxRow>('SELECT * FROM cluster_outbox WHERE published_at IS NULL OR published_at < ? ORDER BY id LIMIT ?'),
    published: db.prepare('UPDATE cluster_outbox SET published_at = ?, seq = COALESCE(?, seq) WHERE id = ?'),
    remove: db.prepare('DELETE FROM cluster_outbox WHERE id = ?'),
    seen: db.prepare("DELETE FROM cluster_outbox WHERE run_id = ? AND kind = 'run' AND published_at IS NOT NULL"),
    count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM cluster_outbox'),
  };
  return {
    add: (kind, runId, payload, now) => void q.add.run(kind, runId, JSON.stringify(payload), now),
    due: (before, limit) => q.due.all(before, limit),
    published: (id, now, seq) => void q.published.run(now, seq ?? null, id),
    remove: (id) => void q.remove.run(id),
    seen: (runId) => void q.seen.run(runId),
    count: () => q.count.get()!.n,
  };
}
