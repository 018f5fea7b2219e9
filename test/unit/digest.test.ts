import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { cidOfBytes } from '../../main/common/cid.js';
import { digests, nobleDigests, useDigests } from '../../main/common/digest.js';
import { leafHash, nodeHash } from '../../main/common/merkle.js';
import { createFastDigests } from '../../main/runtime/digests.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251);

describe('digests: the runtime implementations give the portable ones\' outputs', () => {
  let restore = digests();
  afterEach(() => void useDigests(restore));

  it('agrees with @noble/hashes on random inputs of 0–5000 bytes, whole or in parts (BLAKE3 and SHA-256)', async () => {
    const fast = await createFastDigests();
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 1700 }), { maxLength: 3 }), (parts) => {
        expect(hex(fast.blake3(...parts))).toBe(hex(nobleDigests.blake3(...parts)));
        expect(hex(fast.sha256(...parts))).toBe(hex(nobleDigests.sha256(...parts)));
      }),
      { numRuns: 300 },
    );
  });

  it('installed, cids and Merkle hashes keep the official test vectors (BLAKE3 0/1/1024/2049 bytes; RFC 6962 empty leaf)', async () => {
    restore = useDigests(await createFastDigests());
    expect(digests().name).toMatch(/WebAssembly/);
    expect(cidOfBytes(new Uint8Array(0))).toBe('b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    expect(cidOfBytes(pattern(1))).toBe('b3:2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213');
    expect(cidOfBytes(pattern(1024))).toBe('b3:42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7');
    // 2049 bytes spans three chunks: the tree mode of BLAKE3, not only the single-chunk path.
    expect(cidOfBytes(pattern(2049))).toBe('b3:5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030');
    // RFC 6962: the hash of an empty leaf is SHA-256(0x00).
    expect(hex(leafHash(new Uint8Array(0)))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(hex(nodeHash(leafHash(pattern(3)), leafHash(pattern(5))))).toBe(hex(nobleDigests.sha256(Uint8Array.of(1), nobleDigests.sha256(Uint8Array.of(0), pattern(3)), nobleDigests.sha256(Uint8Array.of(0), pattern(5)))));
  });
});
