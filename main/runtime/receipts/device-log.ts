/**
 * The device log (issue 5 §7, DESIGN.md "Formats → Receipt"): one append-only Merkle tree (RFC 6962 hashing,
 * common/merkle.ts) of every receipt this device issues, so the cloud can later prove it holds a prefix of the
 * device's history (consistency proofs) and any receipt can be shown to be in it (inclusion proofs). Owns the
 * `log_*` tables.
 *
 * Storage: each leaf hash (`log_leaves`), and every perfect subtree hash as soon as it is complete
 * (`log_nodes`, level ≥ 1), written in the same transaction as the leaf — at most one extra row per append on
 * average. Receipt ids are looked up through `log_ids`, filled {@link ID_INDEX_BATCH} leaves at a time in id
 * order (an index entry per append would land on a random page of the index: one more page written to the WAL per
 * receipt); the leaves not indexed yet, at most a batch and the ones appended since, are found through an
 * in-memory map checked against the leaf rows, or by a scan of those rows. A tree head, audit path or consistency
 * proof at any size then needs O(log² n) point reads, never a pass over the leaves. Signed tree heads are kept
 * per size (`log_heads`), so a head once published for a size is the one the device keeps serving.
 *
 * The size is always read from SQLite, never cached: appends run inside the receipt store's transaction, and a
 * rolled-back receipt must take its leaf with it.
 */
import type { DsseEnvelope } from '../../common/dsse.js';
import { canonicalBytes } from '../../common/canonical.js';
import { TesseraError } from '../../common/errors.js';
import {
  MERKLE_HASH,
  TREE_HEAD_PAYLOAD_TYPE,
  TREE_HEAD_VERSION,
  consistencyProof,
  hashToHex,
  inclusionProof,
  leafHash,
  nodeHash,
  receiptLeaf,
  treeHead,
} from '../../common/merkle.js';
import type { ConsistencyProofJson, InclusionProofJson, PerfectSubtree, TreeHead } from '../../common/merkle.js';
import { signEnvelope } from '../keys/index.js';
import type { SigningKey } from '../keys/index.js';
import type { Migration, Store } from '../store/index.js';

export interface LogPosition {
  /** 0-based leaf index of the receipt. */
  index: number;
  /** Size of the log right after the receipt went in. */
  size: number;
}

export interface SignedTreeHead {
  head: TreeHead;
  envelope: DsseEnvelope;
}

export interface DeviceLog {
  /** Number of receipts in the log. */
  readonly size: number;
  /**
   * Appends a receipt id; idempotent: a receipt already in the log keeps its index (and `size` is the current
   * size). Runs in its own transaction, or inside the caller's (its rollback takes the leaf back).
   * @throws TesseraError VALIDATION_FAILED for something that is not a receipt id (`b3:` cid).
   */
  append(receiptId: string): LogPosition;
  /** {@link DeviceLog.append} for several receipts, in order (one read of the size). */
  appendMany(receiptIds: readonly string[]): LogPosition[];
  /**
   * Appends receipts the caller has just created, in order, without looking each id up first: the receipt store's
   * appends, whose receipts are new by construction (a receipt id is the cid of a payload naming its capsule and
   * the receipt before it, and the store appends only after the chain's current head, in the transaction that
   * moves it). Not idempotent: an id already in the log would get a second leaf. Same errors as `append`.
   */
  appendNew(receiptIds: readonly string[]): LogPosition[];
  /** The receipt ids of leaves `from` … `to − 1`, in log order (what a sync upload sends). @throws TesseraError LOG_RANGE_INVALID beyond the log. */
  receiptIds(from: number, to: number): string[];
  /** The leaf index of a receipt, or undefined when it is not in the log. */
  indexOf(receiptId: string): number | undefined;
  /** The tree head at `size` (default: now), lowercase hex. @throws TesseraError LOG_RANGE_INVALID beyond the log. */
  root(size?: number): { size: number; root: string };
  /** The head at `size` (default: now) signed by the device key; the same envelope every time for a size. */
  signedHead(size?: number): SignedTreeHead;
  /**
   * The audit path of a receipt in the tree of `size` leaves (default: now).
   * @throws TesseraError LOG_NOT_FOUND when the receipt is not in that tree; LOG_RANGE_INVALID beyond the log.
   */
  inclusion(receiptId: string, size?: number): InclusionProofJson;
  /** Proof that the tree of `to` leaves extends the one of `from`. @throws TesseraError LOG_RANGE_INVALID unless 0 ≤ from ≤ to ≤ size. */
  consistency(from: number, to: number): ConsistencyProofJson;
}

export interface DeviceLogOptions {
  store: Store;
  /** Signs tree heads; its keyid is the log's identity (`TreeHead.log`). */
  deviceKey: SigningKey;
  clock?: () => number;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'leaves, perfect subtrees, signed heads',
    up(db) {
      db.exec(`
        CREATE TABLE log_leaves (idx INTEGER PRIMARY KEY, receipt_id TEXT NOT NULL UNIQUE, hash BLOB NOT NULL) STRICT;
        CREATE TABLE log_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) STRICT, WITHOUT ROWID;
        CREATE TABLE log_heads (size INTEGER PRIMARY KEY, envelope TEXT NOT NULL) STRICT;
      `);
    },
  },
  {
    version: 2,
    name: 'receipt ids indexed in batches',
    up(db) {
      db.exec(`
        CREATE TABLE log_leaves_v2 (idx INTEGER PRIMARY KEY, receipt_id TEXT NOT NULL, hash BLOB NOT NULL) STRICT;
        INSERT INTO log_leaves_v2 (idx, receipt_id, hash) SELECT idx, receipt_id, hash FROM log_leaves ORDER BY idx;
        DROP TABLE log_leaves;
        ALTER TABLE log_leaves_v2 RENAME TO log_leaves;
        CREATE TABLE log_ids (receipt_id TEXT PRIMARY KEY, idx INTEGER NOT NULL) STRICT, WITHOUT ROWID;
        INSERT INTO log_ids (receipt_id, idx) SELECT receipt_id, idx FROM log_leaves ORDER BY receipt_id;
        CREATE TABLE log_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT, WITHOUT ROWID;
        INSERT INTO log_state (key, value) SELECT 'indexed', COALESCE(MAX(idx) + 1, 0) FROM log_leaves;
      `);
    },
  },
];

/** Leaves indexed together in `log_ids` (sorted, so each index page written takes many of them). */
export const ID_INDEX_BATCH = 1024;

const RECEIPT_ID = /^b3:[0-9a-f]{64}$/;

/** Opens (migrates) the device log tables. */
export function createDeviceLog(options: DeviceLogOptions): DeviceLog {
  const { store, deviceKey } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('log', MIGRATIONS);
  const db = store.db;
  const sizeStmt = db.prepare<[], { n: number }>('SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM log_leaves');
  const sizesStmt = db.prepare<[], { n: number; indexed: number }>(
    "SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves) AS n, (SELECT value FROM log_state WHERE key = 'indexed') AS indexed",
  );
  const indexedStmt = db.prepare<[], { value: number }>("SELECT value FROM log_state WHERE key = 'indexed'");
  const idStmt = db.prepare<[string], { idx: number }>('SELECT idx FROM log_ids WHERE receipt_id = ?');
  const leafIdStmt = db.prepare<[number], { receipt_id: string }>('SELECT receipt_id FROM log_leaves WHERE idx = ?');
  const tailStmt = db.prepare<[number, string], { idx: number }>('SELECT idx FROM log_leaves WHERE idx >= ? AND receipt_id = ? ORDER BY idx LIMIT 1');
  const tailRows = db.prepare<[number], { idx: number; receipt_id: string }>('SELECT idx, receipt_id FROM log_leaves WHERE idx >= ?');
  const indexTail = db.prepare('INSERT OR IGNORE INTO log_ids (receipt_id, idx) SELECT receipt_id, idx FROM log_leaves WHERE idx >= ? ORDER BY receipt_id');
  const setIndexed = db.prepare("UPDATE log_state SET value = ? WHERE key = 'indexed'");
  const rangeStmt = db.prepare<[number, number], { receipt_id: string }>('SELECT receipt_id FROM log_leaves WHERE idx >= ? AND idx < ? ORDER BY idx');
  const leafStmt = db.prepare<[number], { hash: Buffer }>('SELECT hash FROM log_leaves WHERE idx = ?');
  const nodeStmt = db.prepare<[number, number], { hash: Buffer }>('SELECT hash FROM log_nodes WHERE level = ? AND idx = ?');
  const insertLeaf = db.prepare('INSERT INTO log_leaves (idx, receipt_id, hash) VALUES (?, ?, ?)');
  const insertNode = db.prepare('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)');
  const headStmt = db.prepare<[number], { envelope: string }>('SELECT envelope FROM log_heads WHERE size = ?');
  const insertHead = db.prepare('INSERT INTO log_heads (size, envelope) VALUES (?, ?) ON CONFLICT DO NOTHING');

  const currentSize = () => sizeStmt.get()!.n;
  const indexedSize = () => indexedStmt.get()!.value;

  // Receipt id → leaf index of the leaves not in log_ids yet (and, until pruned, of some that are). An entry is a
  // hint: a rolled-back append leaves one behind, so each is checked against its leaf row before it is believed.
  const recent = new Map<string, number>(tailRows.all(indexedSize()).map((r) => [r.receipt_id, r.idx]));
  const pruneRecent = (): void => {
    if (!db.open || db.inTransaction) return;
    const indexed = indexedSize();
    for (const [id, idx] of recent) if (idx < indexed) recent.delete(id);
  };

  /**
   * The leaf index of a receipt: the recent map (checked), then log_ids, then — with `scanTail`, for lookups that
   * must not trust the map alone — the leaves not indexed yet. Appends use the map: every leaf this process did not
   * index was put there by this process or loaded at start.
   */
  const find = (receiptId: string, scanTail: boolean): number | undefined => {
    const hinted = recent.get(receiptId);
    if (hinted !== undefined) {
      if (leafIdStmt.get(hinted)?.receipt_id === receiptId) return hinted;
      recent.delete(receiptId);
    }
    const indexed = idStmt.get(receiptId)?.idx;
    if (indexed !== undefined || !scanTail) return indexed;
    return tailStmt.get(indexedSize(), receiptId)?.idx;
  };

  // Every subtree asked for lies inside a tree no larger than the log, so it has been stored.
  const perfect: PerfectSubtree = (level, index) => {
    const row = level === 0 ? leafStmt.get(index) : nodeStmt.get(level, index);
    if (!row) throw new TesseraError('INTERNAL', `The device log is missing subtree (${level}, ${index}); run an integrity check of the database.`);
    return new Uint8Array(row.hash.buffer, row.hash.byteOffset, row.hash.byteLength);
  };

  const checkSize = (size: number, what: string): number => {
    const n = currentSize();
    if (!Number.isSafeInteger(size) || size < 0 || size > n) {
      throw new TesseraError('LOG_RANGE_INVALID', `${what} ${String(size)} is outside the device log, which holds ${n} receipts; use a size from 0 to ${n}.`, { details: { log_size: n } });
    }
    return size;
  };

  /**
   * Appends at `index` (the current size); returns the position. `fresh`: see {@link DeviceLog.appendNew}.
   * `written`: the subtrees stored earlier in the same append (`level:index` → hash), read from there rather than
   * from SQLite when the new leaf completes a subtree with them.
   */
  const appendAt = (index: number, receiptId: string, fresh: boolean, written: Map<string, Uint8Array>): LogPosition => {
    // A receipt already in the log keeps its leaf: nothing is written.
    const existing = fresh ? undefined : find(receiptId, false);
    if (existing !== undefined) return { index: existing, size: index };
    let hash = leafHash(receiptLeaf(receiptId));
    insertLeaf.run(index, receiptId, hash);
    written.set(`0:${index}`, hash);
    recent.set(receiptId, index);
    // Each time the new leaf completes a perfect subtree (its index is odd at that level), store that subtree.
    for (let level = 0, i = index; i % 2 === 1; level++, i = (i - 1) / 2) {
      hash = nodeHash(written.get(`${level}:${i - 1}`) ?? perfect(level, i - 1), hash);
      insertNode.run(level + 1, (i - 1) / 2, hash);
      written.set(`${level + 1}:${(i - 1) / 2}`, hash);
    }
    return { index, size: index + 1 };
  };
  const appendNow = (receiptIds: readonly string[], fresh: boolean): LogPosition[] => {
    const sizes = sizesStmt.get()!;
    let size = sizes.n;
    const written = new Map<string, Uint8Array>();
    const positions = receiptIds.map((id) => {
      const at = appendAt(size, id, fresh, written);
      size = Math.max(size, at.size);
      return at;
    });
    // A full batch of leaves not indexed yet: index them in id order, in this same transaction.
    const indexed = sizes.indexed;
    if (size - indexed >= ID_INDEX_BATCH) {
      indexTail.run(indexed);
      setIndexed.run(size);
      // After the commit (or rollback), drop the map entries the committed index now covers.
      if (recent.size >= 2 * ID_INDEX_BATCH) setImmediate(pruneRecent);
    }
    return positions;
  };
  // Inside the receipt store's transaction the caller's commit or rollback covers the leaves; a savepoint per
  // append would cost more than the append itself.
  const appendInTransaction = db.transaction(appendNow);
  const append = (receiptIds: readonly string[], fresh: boolean): LogPosition[] => {
    for (const id of receiptIds) {
      if (typeof id !== 'string' || !RECEIPT_ID.test(id)) {
        throw new TesseraError('VALIDATION_FAILED', `The device log takes receipt ids (b3: + 64 lowercase hex digits), not ${JSON.stringify(id)}.`);
      }
    }
    return db.inTransaction ? appendNow(receiptIds, fresh) : appendInTransaction(receiptIds, fresh);
  };

  const root = (size?: number) => {
    const n = size === undefined ? currentSize() : checkSize(size, 'Size');
    return { size: n, root: hashToHex(treeHead(n, perfect)) };
  };

  return {
    get size() {
      return currentSize();
    },
    append: (receiptId) => append([receiptId], false)[0]!,
    appendMany: (receiptIds) => append(receiptIds, false),
    appendNew: (receiptIds) => append(receiptIds, true),
    indexOf: (receiptId) => find(receiptId, true),
    receiptIds(from, to) {
      checkSize(to, 'Size "to"');
      if (!Number.isSafeInteger(from) || from < 0 || from > to) throw new TesseraError('LOG_RANGE_INVALID', `"from" must be an integer from 0 to "to" (${to}), not ${String(from)}.`);
      return rangeStmt.all(from, to).map((r) => r.receipt_id);
    },
    root,
    signedHead(size) {
      const { size: n, root: hex } = root(size);
      const kept = headStmt.get(n);
      if (kept) {
        const envelope = JSON.parse(kept.envelope) as DsseEnvelope;
        return { head: JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as TreeHead, envelope };
      }
      const head: TreeHead = { v: TREE_HEAD_VERSION, log: deviceKey.keyid, size: n, root: hex, hash: MERKLE_HASH, issued_at: new Date(clock()).toISOString() };
      const envelope = signEnvelope(TREE_HEAD_PAYLOAD_TYPE, canonicalBytes(head), [deviceKey]);
      insertHead.run(n, JSON.stringify(envelope));
      // Another writer may have signed the same size first: serve the stored one so a size has one head.
      const stored = JSON.parse(headStmt.get(n)!.envelope) as DsseEnvelope;
      return { head: JSON.parse(Buffer.from(stored.payload, 'base64').toString('utf8')) as TreeHead, envelope: stored };
    },
    inclusion(receiptId, size) {
      const n = size === undefined ? currentSize() : checkSize(size, 'Size');
      const index = find(receiptId, true);
      if (index === undefined || index >= n) {
        throw new TesseraError('LOG_NOT_FOUND', index === undefined ? `Receipt ${receiptId} is not in this device's log.` : `Receipt ${receiptId} is leaf ${index}, outside the tree of ${n} receipts; ask for a size above ${index}.`);
      }
      return {
        receipt: receiptId,
        index,
        size: n,
        leaf_hash: hashToHex(leafHash(receiptLeaf(receiptId))),
        path: inclusionProof(index, n, perfect).map(hashToHex),
        root: hashToHex(treeHead(n, perfect)),
      };
    },
    consistency(from, to) {
      checkSize(to, 'Size "to"');
      if (!Number.isSafeInteger(from) || from < 0 || from > to) {
        throw new TesseraError('LOG_RANGE_INVALID', `"from" must be an integer from 0 to "to" (${to}), not ${String(from)}.`);
      }
      return {
        from,
        to,
        from_root: hashToHex(treeHead(from, perfect)),
        to_root: hashToHex(treeHead(to, perfect)),
        proof: consistencyProof(from, to, perfect).map(hashToHex),
      };
    },
  };
}
