/**
 * Content ids (DESIGN.md "Formats"): `b3:` + lowercase hex BLAKE3-256. The cid of a value is the cid of its
 * canonical bytes (RFC 8785 over NFC, see canonical.ts), so the same value has the same cid on every machine.
 *
 * Pure module: shared by the runtime, the renderer and the sandbox.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalBytes } from './canonical.js';
import { blake3 } from './digest.js';
import { nodeView } from './node-buffer.js';

const CID_SHAPE = /^b3:[0-9a-f]{64}$/;

/** The cid of exactly these bytes (no canonicalization): `b3:` + 64 lowercase hex digits. */
export function cidOfBytes(bytes: Uint8Array): string {
  const digest = blake3(bytes);
  return `b3:${nodeView(digest)?.toString('hex') ?? bytesToHex(digest)}`;
}

/**
 * The cid of `value`'s canonical bytes.
 * @throws TesseraError VALIDATION_FAILED when the value cannot be canonicalized (see `canonicalize`).
 */
export function cidOf(value: unknown): string {
  return cidOfBytes(canonicalBytes(value));
}

/** True for a well-formed cid. Uppercase hex, other prefixes and other lengths are not cids. */
export function isCid(x: unknown): x is string {
  return typeof x === 'string' && CID_SHAPE.test(x);
}
