/**
 * The two hash functions Tessera's formats use — BLAKE3-256 for cids, SHA-256 for Merkle trees — behind one
 * switch. By default both are @noble/hashes (pure JavaScript: runs in the renderer, under the strict CSP, and
 * in any offline verifier). The runtime process installs faster implementations of the same functions at start
 * ({@link useDigests}: runtime/digests.ts — BLAKE3 compiled to WebAssembly, SHA-256 from node:crypto), which are
 * about 15× faster for the 0.1–2 KB inputs of the receipt pipeline. The outputs are identical; a property test
 * compares the two on random inputs.
 *
 * Pure module: shared by the runtime, the renderer and the sandbox.
 */
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

export interface Digests {
  /** Human-readable name, for logs and `tessera doctor`. */
  readonly name: string;
  /** BLAKE3 with a 32-byte output of the concatenation of `parts`. */
  blake3(...parts: Uint8Array[]): Uint8Array;
  /** SHA-256 of the concatenation of `parts`. */
  sha256(...parts: Uint8Array[]): Uint8Array;
}

/** The portable implementations (@noble/hashes). */
export const nobleDigests: Digests = {
  name: '@noble/hashes (JavaScript)',
  blake3(...parts) {
    if (parts.length === 1) return nobleBlake3(parts[0]!);
    const h = nobleBlake3.create();
    for (const p of parts) h.update(p);
    return h.digest();
  },
  sha256(...parts) {
    if (parts.length === 1) return nobleSha256(parts[0]!);
    const h = nobleSha256.create();
    for (const p of parts) h.update(p);
    return h.digest();
  },
};

let current: Digests = nobleDigests;

/** Installs `digests` for every later hash in this process (or realm); returns the ones it replaces. */
export function useDigests(digests: Digests): Digests {
  const previous = current;
  current = digests;
  return previous;
}

/** The implementations in use. */
export function digests(): Digests {
  return current;
}

/** BLAKE3-256 of the concatenation of `parts`, with the implementation in use. */
export function blake3(...parts: Uint8Array[]): Uint8Array {
  return current.blake3(...parts);
}

/** SHA-256 of the concatenation of `parts`, with the implementation in use. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  return current.sha256(...parts);
}
