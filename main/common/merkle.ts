/**
 * Merkle trees as RFC 6962 §2.1 defines them (restated in RFC 9162 §2.1): the tree head of n leaves, audit
 * (inclusion) paths and consistency proofs, how to make them and how to verify them. The device log
 * (runtime/receipts/device-log.ts) keeps one such tree of every receipt; offline bundles carry an inclusion
 * proof against a signed tree head, and the cloud asks for consistency proofs to learn a device only appended.
 *
 * **Hash: SHA-256, as RFC 6962 specifies.** Not BLAKE3 like our cids, on purpose: a log is only useful if
 * others can check it, and every existing log verifier (Certificate Transparency, Trillian, Sigstore Rekor,
 * transparency-dev/merkle) and the published test vectors assume SHA-256 with these domain-separation
 * prefixes. Our cids identify content; this tree proves history, and it speaks the language log auditors use.
 * `leaf = SHA-256(0x00 || data)`, `node = SHA-256(0x01 || left || right)`, empty tree = `SHA-256("")`.
 *
 * Generation works over any store of *perfect* subtrees ({@link PerfectSubtree}: the hash of the 2^level
 * leaves starting at `index · 2^level`): every range the RFC 6962 recursion visits splits into O(log n)
 * perfect subtrees, so a store that keeps them (the device log does, in SQLite) answers in O(log n) lookups.
 * {@link memoryTree} gives the same interface over an array of leaves.
 *
 * Sizes and indices are JavaScript numbers up to 2^53 − 1; bit operations are done arithmetically so nothing
 * wraps at 2^31. Pure module: shared by the runtime, the renderer and the sandbox.
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { sha256 } from './digest.js';

/** The hash function of every Tessera Merkle tree; recorded in signed tree heads and bundles. */
export const MERKLE_HASH = 'sha256';
/** Bytes in a tree hash. */
export const HASH_BYTES = 32;

/**
 * The hash of a perfect subtree: the 2^level leaves starting at leaf `index · 2^level`. Callers ask only for
 * subtrees that lie inside the tree they asked about.
 */
export type PerfectSubtree = (level: number, index: number) => Uint8Array;

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** RFC 6962 §2.1: the hash of one leaf, `SHA-256(0x00 || data)`. */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, data);
}

/** RFC 6962 §2.1: an interior node, `SHA-256(0x01 || left || right)`. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(NODE_PREFIX, left, right);
}

/** The head of the empty tree, `SHA-256("")`. */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** The largest power of two strictly smaller than `n` (n ≥ 2): the RFC's split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

function log2(powerOfTwo: number): number {
  let level = 0;
  for (let x = powerOfTwo; x > 1; x /= 2) level++;
  return level;
}

function checkSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative safe integer, not ${String(n)}`);
}

/**
 * MTH(D[start:end]) (RFC 6962 §2.1): `start` is always a multiple of the largest power of two not above the
 * range's size on every path the recursion takes, so the left side of each split is a perfect subtree.
 */
function rangeHash(start: number, end: number, perfect: PerfectSubtree): Uint8Array {
  const size = end - start;
  if (isPowerOfTwo(size)) return perfect(log2(size), start / size);
  const k = splitPoint(size);
  return nodeHash(perfect(log2(k), start / k), rangeHash(start + k, end, perfect));
}

/**
 * The tree head MTH(D[0:size]) (RFC 6962 §2.1).
 * @throws RangeError for a size that is not a non-negative safe integer.
 */
export function treeHead(size: number, perfect: PerfectSubtree): Uint8Array {
  checkSize('size', size);
  return size === 0 ? emptyRoot() : rangeHash(0, size, perfect);
}

/**
 * The audit path PATH(index, D[0:size]) (RFC 6962 §2.1.1), nearest sibling first.
 * @throws RangeError unless 0 ≤ index < size.
 */
export function inclusionProof(index: number, size: number, perfect: PerfectSubtree): Uint8Array[] {
  checkSize('size', size);
  checkSize('index', index);
  if (index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  const path: Uint8Array[] = [];
  const walk = (start: number, end: number): void => {
    if (end - start === 1) return;
    const k = splitPoint(end - start);
    if (index < start + k) {
      walk(start, start + k);
      path.push(rangeHash(start + k, end, perfect));
    } else {
      walk(start + k, end);
      path.push(rangeHash(start, start + k, perfect));
    }
  };
  walk(0, size);
  return path;
}

/**
 * The consistency proof PROOF(from, D[0:to]) (RFC 6962 §2.1.2): proves the tree of `to` leaves extends the tree
 * of `from` leaves. Empty when `from` is 0 or equals `to` (nothing to prove).
 * @throws RangeError unless 0 ≤ from ≤ to.
 */
export function consistencyProof(from: number, to: number, perfect: PerfectSubtree): Uint8Array[] {
  checkSize('from', from);
  checkSize('to', to);
  if (from > to) throw new RangeError(`a tree of ${from} leaves cannot be a prefix of one of ${to}`);
  if (from === 0 || from === to) return [];
  const proof: Uint8Array[] = [];
  // SUBPROOF(m, D[start:end], b) with m counted from 0: the old tree ends at `from` inside this range.
  const sub = (start: number, end: number, whole: boolean): void => {
    if (from === end) {
      if (!whole) proof.push(rangeHash(start, end, perfect));
      return;
    }
    const k = splitPoint(end - start);
    if (from <= start + k) {
      sub(start, start + k, whole);
      proof.push(rangeHash(start + k, end, perfect));
    } else {
      sub(start + k, end, false);
      proof.push(rangeHash(start, start + k, perfect));
    }
  };
  sub(0, to, true);
  return proof;
}

/**
 * The root an audit path leads to (RFC 9162 §2.1.3.2, steps 1–5), or undefined when the path cannot belong to
 * a tree of that size (wrong length, index out of range).
 */
export function rootFromInclusionProof(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Uint8Array | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== HASH_BYTES) return undefined;
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}

/** True when `proof` shows the leaf with hash `leaf` at `index` in the tree of `size` leaves whose head is `root`. */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  const computed = rootFromInclusionProof(leaf, index, size, proof);
  return computed !== undefined && equalBytes(computed, root);
}

/**
 * True when `proof` shows the tree of `to` leaves with head `toRoot` extends the tree of `from` leaves with head
 * `fromRoot` (RFC 9162 §2.1.4.2). `from` = `to` needs an empty proof and equal roots; `from` = 0 needs an empty
 * proof (every tree extends the empty one).
 */
export function verifyConsistency(from: number, to: number, proof: readonly Uint8Array[], fromRoot: Uint8Array, toRoot: Uint8Array): boolean {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from > to) return false;
  if (proof.some((p) => p.length !== HASH_BYTES)) return false;
  if (from === 0) return proof.length === 0;
  if (from === to) return proof.length === 0 && equalBytes(fromRoot, toRoot);
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(from) ? [fromRoot, ...proof] : [...proof];
  let fn = from - 1;
  let sn = to - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(fr, fromRoot) && equalBytes(sr, toRoot);
}

/**
 * A {@link PerfectSubtree} over leaf hashes held in memory, caching each perfect subtree it computes (at most
 * 2n hashes). For bundles, tests and small trees; the device log keeps its subtrees in SQLite instead.
 */
export function memoryTree(leafHashes: readonly Uint8Array[]): PerfectSubtree {
  const levels: Array<Map<number, Uint8Array>> = [];
  const get = (level: number, index: number): Uint8Array => {
    const width = 2 ** level;
    if ((index + 1) * width > leafHashes.length || index < 0) throw new RangeError(`subtree (${level}, ${index}) is outside a tree of ${leafHashes.length} leaves`);
    if (level === 0) return leafHashes[index]!;
    const cache = (levels[level] ??= new Map());
    let hash = cache.get(index);
    if (hash === undefined) {
      hash = nodeHash(get(level - 1, index * 2), get(level - 1, index * 2 + 1));
      cache.set(index, hash);
    }
    return hash;
  };
  return get;
}

/** Constant-time-enough equality of two byte strings (both are public hashes here). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Lowercase hex of a tree hash: how hashes travel in JSON (tree heads, proofs, bundles). */
export function hashToHex(hash: Uint8Array): string {
  return bytesToHex(hash);
}

/**
 * A tree hash from lowercase hex, or undefined when the text is not exactly 64 lowercase hex digits (so a
 * proof with a malformed element fails verification instead of throwing).
 */
export function hashFromHex(text: unknown): Uint8Array | undefined {
  if (typeof text !== 'string' || !/^[0-9a-f]{64}$/.test(text)) return undefined;
  return hexToBytes(text);
}

/**
 * The leaf data of a receipt in the device log: the UTF-8 bytes of its id (`b3:` + 64 hex digits). The id
 * names its own hash algorithm, so a leaf stays unambiguous if cids ever move to another hash.
 */
export function receiptLeaf(receiptId: string): Uint8Array {
  return new TextEncoder().encode(receiptId);
}

// ---------------------------------------------------------------------------------------------------------------
// Signed tree heads and proofs as they travel in JSON (device log routes, offline bundles).

/** DSSE payloadType of a signed tree head. */
export const TREE_HEAD_PAYLOAD_TYPE = 'application/vnd.tessera.tree-head+json';
/** Version tag of {@link TreeHead}. */
export const TREE_HEAD_VERSION = 'tessera.tree-head/1';

/**
 * What a device signs about its log (like a CT signed tree head / a transparency-log checkpoint): at `issued_at`
 * the log of device `log` held `size` receipts and its head was `root`. Carried as a DSSE envelope
 * ({@link TREE_HEAD_PAYLOAD_TYPE}) over these canonical bytes, signed by the key `log` names.
 */
export interface TreeHead {
  v: typeof TREE_HEAD_VERSION;
  /** keyid of the device key: whose log this is, and the only key that may sign its heads. */
  log: string;
  size: number;
  /** Lowercase hex of the tree head MTH(D[0:size]). */
  root: string;
  hash: typeof MERKLE_HASH;
  issued_at: string;
}

/** An inclusion proof as JSON: receipt `receipt` is leaf `index` of the tree of `size` leaves with head `root`. */
export interface InclusionProofJson {
  receipt: string;
  index: number;
  size: number;
  /** Lowercase hex of leafHash(receiptLeaf(receipt)). */
  leaf_hash: string;
  /** The audit path, nearest sibling first, lowercase hex. */
  path: string[];
  root: string;
}

/** A consistency proof as JSON: the tree of `to` leaves extends the tree of `from` leaves. */
export interface ConsistencyProofJson {
  from: number;
  to: number;
  from_root: string;
  to_root: string;
  proof: string[];
}

const TREE_HEAD_FIELDS = ['hash', 'issued_at', 'log', 'root', 'size', 'v'];

/**
 * The problem with a parsed tree head's shape, or null when it is a well-formed {@link TreeHead}. Does not
 * check any signature (the caller verifies the DSSE envelope with the key `log` names).
 */
export function treeHeadProblem(head: unknown): string | null {
  if (head === null || typeof head !== 'object' || Array.isArray(head)) return 'the tree head must be a JSON object';
  const h = head as Record<string, unknown>;
  const extra = Object.keys(h).filter((k) => !TREE_HEAD_FIELDS.includes(k));
  if (extra.length > 0) return `"${extra[0]}" is not a tree head field`;
  if (h['v'] !== TREE_HEAD_VERSION) return `v must be "${TREE_HEAD_VERSION}"`;
  if (typeof h['log'] !== 'string' || !/^b3:[0-9a-f]{64}$/.test(h['log'])) return 'log must be the keyid (b3: cid) of the device key';
  if (!Number.isSafeInteger(h['size']) || (h['size'] as number) < 0) return 'size must be a non-negative integer';
  if (hashFromHex(h['root']) === undefined) return 'root must be 64 lowercase hex digits';
  if (h['hash'] !== MERKLE_HASH) return `hash must be "${MERKLE_HASH}"`;
  if (typeof h['issued_at'] !== 'string' || Number.isNaN(Date.parse(h['issued_at']))) return 'issued_at must be an ISO-8601 time';
  return null;
}

/**
 * Checks a JSON inclusion proof against a tree head's size and root: the leaf hash is the receipt's, every
 * element is a hash, and the path leads to the root. Returns the problem, or null when it verifies.
 */
export function inclusionProofProblem(proof: unknown, head: { size: number; root: string }): string | null {
  if (proof === null || typeof proof !== 'object' || Array.isArray(proof)) return 'the proof must be a JSON object';
  const p = proof as Partial<Record<keyof InclusionProofJson, unknown>>;
  if (typeof p.receipt !== 'string') return 'receipt must be a receipt id';
  if (!Number.isSafeInteger(p.index) || !Number.isSafeInteger(p.size)) return 'index and size must be integers';
  if (p.size !== head.size) return `the proof is for a tree of ${String(p.size)} leaves, the signed head has ${head.size}`;
  if (p.root !== head.root) return 'the proof names another root than the signed head';
  const leaf = leafHash(receiptLeaf(p.receipt));
  if (p.leaf_hash !== hashToHex(leaf)) return 'leaf_hash is not the hash of the receipt id';
  if (!Array.isArray(p.path)) return 'path must be an array of hashes';
  const path = p.path.map(hashFromHex);
  if (path.some((x) => x === undefined)) return 'every path element must be 64 lowercase hex digits';
  const root = hashFromHex(head.root);
  if (root === undefined || !verifyInclusion(leaf, p.index as number, head.size, path as Uint8Array[], root)) {
    return `the audit path does not lead from leaf ${String(p.index)} to the signed root`;
  }
  return null;
}
