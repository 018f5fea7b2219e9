import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyTreeHead } from '../../main/common/bundle.js';
import { cidOfBytes } from '../../main/common/cid.js';
import {
  TREE_HEAD_PAYLOAD_TYPE,
  hashFromHex,
  hashToHex,
  inclusionProofProblem,
  leafHash,
  memoryTree,
  receiptLeaf,
  treeHead,
  verifyConsistency,
} from '../../main/common/merkle.js';
import { generateKeyPair, verifyEd25519 } from '../../main/runtime/keys/index.js';
import { ID_INDEX_BATCH, createDeviceLog } from '../../main/runtime/receipts/device-log.js';
import type { DeviceLog } from '../../main/runtime/receipts/device-log.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => cidOfBytes(new TextEncoder().encode(`receipt ${from + i}`)));
const stores: Store[] = [];
afterEach(() => {
  while (stores.length > 0) stores.pop()!.close();
});

function openLog(clock?: () => number): { log: DeviceLog; store: Store; key: ReturnType<typeof generateKeyPair>; path: string } {
  const path = join(tempDir('tessera-log-'), 'tessera.db');
  const store = openStore({ path });
  stores.push(store);
  const key = generateKeyPair();
  return { log: createDeviceLog({ store, deviceKey: key, ...(clock ? { clock } : {}) }), store, key, path };
}

describe('device log', () => {
  it('appends receipts in order, idempotently per receipt id, and survives reopening', () => {
    const { log, store, key, path } = openLog();
    const list = ids(5);
    expect(list.map((id) => log.append(id))).toEqual([0, 1, 2, 3, 4].map((index) => ({ index, size: index + 1 })));
    expect(log.append(list[2]!)).toEqual({ index: 2, size: 5 });
    expect(log.size).toBe(5);
    const root = log.root().root;
    store.close();
    stores.pop();
    const again = openStore({ path });
    stores.push(again);
    const reopened = createDeviceLog({ store: again, deviceKey: key });
    expect(reopened.size).toBe(5);
    expect(reopened.root().root).toBe(root);
    expect(() => reopened.append('not-a-cid')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('gives the same heads as the in-memory RFC 6962 tree at every size, and proofs that verify', () => {
    const { log } = openLog();
    const list = ids(70);
    list.forEach((id) => log.append(id));
    const memory = memoryTree(list.map((id) => leafHash(receiptLeaf(id))));
    for (let n = 0; n <= 70; n++) expect(log.root(n).root, `size ${n}`).toBe(hashToHex(treeHead(n, memory)));
    for (const size of [1, 2, 3, 33, 64, 70]) {
      const head = log.root(size);
      for (let i = 0; i < size; i++) expect(inclusionProofProblem(log.inclusion(list[i]!, size), head), `${i} in ${size}`).toBeNull();
    }
    for (const [from, to] of [[0, 70], [1, 70], [7, 8], [13, 64], [64, 70], [70, 70]] as const) {
      const c = log.consistency(from, to);
      expect(verifyConsistency(from, to, c.proof.map((h) => hashFromHex(h)!), hashFromHex(c.from_root)!, hashFromHex(c.to_root)!), `${from} → ${to}`).toBe(true);
    }
  });

  it('takes a leaf back when the transaction that appended it rolls back', () => {
    const { log, store } = openLog();
    log.append(ids(1)[0]!);
    expect(() =>
      store.db.transaction(() => {
        log.append(ids(1, 1)[0]!);
        throw new Error('the receipt write failed');
      })(),
    ).toThrow('the receipt write failed');
    expect(log.size).toBe(1);
    expect(log.indexOf(ids(1, 1)[0]!)).toBeUndefined();
    expect(log.append(ids(1, 1)[0]!)).toEqual({ index: 1, size: 2 });
  });

  it('signs tree heads with the device key, one envelope per size', () => {
    let now = Date.parse('2026-01-02T03:04:05Z');
    const { log, key } = openLog(() => now);
    ids(3).forEach((id) => log.append(id));
    const signed = log.signedHead();
    expect(signed.envelope.payloadType).toBe(TREE_HEAD_PAYLOAD_TYPE);
    expect(signed.head).toMatchObject({ log: key.keyid, size: 3, root: log.root().root, hash: 'sha256', issued_at: '2026-01-02T03:04:05.000Z' });
    expect(verifyTreeHead(signed.envelope, key.keyid, key.publicKeyRaw, verifyEd25519)).toEqual(signed.head);
    now += 60_000;
    expect(log.signedHead(3)).toEqual(signed);
    expect(log.signedHead(2).head.issued_at).toBe('2026-01-02T03:05:05.000Z');
    const other = generateKeyPair();
    expect(verifyTreeHead(signed.envelope, other.keyid, other.publicKeyRaw, verifyEd25519)).toMatch(/no valid signature/);
  });

  it('refuses sizes outside the log and receipts not in it with LOG_* codes', () => {
    const { log } = openLog();
    const list = ids(4);
    list.forEach((id) => log.append(id));
    expect(() => log.root(5)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
    expect(() => log.root(-1)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
    expect(() => log.consistency(3, 2)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
    expect(() => log.consistency(0, 9)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
    expect(() => log.inclusion(ids(1, 99)[0]!)).toThrow(expect.objectContaining({ code: 'LOG_NOT_FOUND' }));
    expect(() => log.inclusion(list[3]!, 3)).toThrow(expect.objectContaining({ code: 'LOG_NOT_FOUND', message: expect.stringContaining('leaf 3') }));
  });

  it('handles 100k receipts: appends, then proofs and heads in milliseconds from stored subtrees', () => {
    const { log, store } = openLog();
    const list = ids(100_000);
    const t0 = performance.now();
    store.db.transaction(() => list.forEach((id) => log.append(id)))();
    const appendMs = performance.now() - t0;
    const t1 = performance.now();
    const head = log.root();
    const proofs = [0, 1, 4_097, 65_535, 99_999].map((i) => log.inclusion(list[i]!));
    const consistency = log.consistency(77_777, 100_000);
    const queryMs = performance.now() - t1;
    for (const p of proofs) expect(inclusionProofProblem(p, head)).toBeNull();
    expect(verifyConsistency(77_777, 100_000, consistency.proof.map((h) => hashFromHex(h)!), hashFromHex(consistency.from_root)!, hashFromHex(head.root)!)).toBe(true);
    const rows = store.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM log_nodes').get()!.n;
    expect(rows).toBeLessThan(100_000);
    console.log(`device log: 100k appends ${appendMs.toFixed(0)} ms; head + 5 inclusion + 1 consistency proofs ${queryMs.toFixed(1)} ms; ${rows} subtree rows`);
    expect(queryMs).toBeLessThan(500);
  }, 120_000);

  it('appendNew builds the same tree as appendMany, in batches of every size, and rolls back with its transaction', () => {
    const { log: fresh, store } = openLog();
    const { log: checked } = openLog();
    const list = ids(45);
    const memory = memoryTree(list.map((id) => leafHash(receiptLeaf(id))));
    // Batches of 1..9 leaves: subtrees completed inside one append read their left halves from that append.
    let at = 0;
    for (let batch = 1; at < list.length; batch = (batch % 9) + 1) {
      const slice = list.slice(at, at + batch);
      expect(fresh.appendNew(slice)).toEqual(slice.map((_, i) => ({ index: at + i, size: at + i + 1 })));
      checked.appendMany(slice);
      at += slice.length;
      expect(fresh.root().root, `size ${at}`).toBe(hashToHex(treeHead(at, memory)));
    }
    expect(fresh.root().root).toBe(checked.root().root);
    for (const i of [0, 17, 44]) expect(fresh.indexOf(list[i]!)).toBe(i);
    const extra = ids(3, 45);
    expect(() =>
      store.db.transaction(() => {
        fresh.appendNew(extra);
        throw new Error('rolled back');
      })(),
    ).toThrow('rolled back');
    expect(fresh.size).toBe(45);
    expect(fresh.appendNew(extra).map((p) => p.index)).toEqual([45, 46, 47]);
    expect(() => fresh.appendNew(['b3:short'])).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('finds every receipt by id across the batch-indexed part and the tail, after rollbacks and a reopen', () => {
    const { log, store, key, path } = openLog();
    const n = 2 * ID_INDEX_BATCH + 37;
    const list = ids(n);
    // Appended in runs of 8 inside transactions, as the receipt pipeline does; one run rolls back across a batch edge.
    for (let i = 0; i < n; i += 8) store.db.transaction(() => log.appendMany(list.slice(i, i + 8)))();
    const lost = ids(16, n);
    expect(() =>
      store.db.transaction(() => {
        log.appendMany(lost);
        throw new Error('rolled back');
      })(),
    ).toThrow('rolled back');
    expect(log.size).toBe(n);
    const indexed = (store.db.prepare("SELECT value FROM log_state WHERE key = 'indexed'").get() as { value: number }).value;
    expect(indexed).toBeGreaterThanOrEqual(2 * ID_INDEX_BATCH);
    expect(indexed).toBeLessThan(n);
    const check = (l: DeviceLog) => {
      for (const i of [0, 1, ID_INDEX_BATCH - 1, ID_INDEX_BATCH, indexed - 1, indexed, n - 1]) expect(l.indexOf(list[i]!), `leaf ${i}`).toBe(i);
      for (const id of lost) expect(l.indexOf(id)).toBeUndefined();
      // Idempotent on both sides of the watermark: nothing is written again.
      expect(l.append(list[3]!)).toEqual({ index: 3, size: n });
      expect(l.append(list[n - 2]!)).toEqual({ index: n - 2, size: n });
      expect(l.inclusion(list[n - 1]!).index).toBe(n - 1);
    };
    check(log);
    const again = openStore({ path });
    stores.push(again);
    check(createDeviceLog({ store: again, deviceKey: key }));
    // The rolled-back ids append as new leaves, right after the surviving ones.
    expect(log.append(lost[0]!)).toEqual({ index: n, size: n + 1 });
  });

  it('upgrades a log written with one index entry per receipt, keeping every leaf, id and root', () => {
    const path = join(tempDir('tessera-log-'), 'tessera.db');
    const old = openStore({ path });
    // The version 1 layout, written as that release wrote it.
    old.db.exec(`
      CREATE TABLE log_leaves (idx INTEGER PRIMARY KEY, receipt_id TEXT NOT NULL UNIQUE, hash BLOB NOT NULL) STRICT;
      CREATE TABLE log_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) STRICT, WITHOUT ROWID;
      CREATE TABLE log_heads (size INTEGER PRIMARY KEY, envelope TEXT NOT NULL) STRICT;
    `);
    old.db.prepare("INSERT INTO _migrations (module, version, name, applied_at) VALUES ('log', 1, 'leaves, perfect subtrees, signed heads', ?)").run(new Date().toISOString());
    const list = ids(5);
    const insert = old.db.prepare('INSERT INTO log_leaves (idx, receipt_id, hash) VALUES (?, ?, ?)');
    list.forEach((id, i) => insert.run(i, id, leafHash(receiptLeaf(id))));
    const tree = memoryTree(list.map((id) => leafHash(receiptLeaf(id))));
    const node = old.db.prepare('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)');
    for (const [level, index] of [[1, 0], [1, 1], [2, 0]] as const) node.run(level, index, tree(level, index));
    old.close();
    const store = openStore({ path });
    stores.push(store);
    const log = createDeviceLog({ store, deviceKey: generateKeyPair() });
    expect(store.versions()['log']).toBe(2);
    expect(list.map((id) => log.indexOf(id))).toEqual([0, 1, 2, 3, 4]);
    expect(log.root().root).toBe(hashToHex(treeHead(5, tree)));
    expect(log.append(list[1]!)).toEqual({ index: 1, size: 5 });
    expect(log.append(ids(1, 5)[0]!)).toEqual({ index: 5, size: 6 });
  });
});
