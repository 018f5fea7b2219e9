import { describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../main/common/canonical.js';
import { cidOf, cidOfBytes, isCid } from '../../main/common/cid.js';

describe('cid', () => {
  it('matches the official BLAKE3 test vector for empty input', () => {
    expect(cidOfBytes(new Uint8Array(0))).toBe('b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
  });

  it('matches the official BLAKE3 test vectors for 1 and 1024 bytes of the repeating 0..250 pattern', () => {
    const input = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251);
    expect(cidOfBytes(input(1))).toBe('b3:2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213');
    expect(cidOfBytes(input(1024))).toBe('b3:42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7');
  });

  it('is the cid of the canonical bytes, so key order and Unicode composition do not change it', () => {
    const a = cidOf({ name: 'Caf\u00e9', n: 1 });
    expect(a).toBe(cidOfBytes(canonicalBytes({ n: 1, name: 'Caf\u00e9' })));
    expect(cidOf({ n: 1, name: 'Cafe\u0301' })).toBe(a);
    expect(cidOf({ n: 2, name: 'Caf\u00e9' })).not.toBe(a);
    expect(cidOf('')).toBe(cidOfBytes(new TextEncoder().encode('""')));
  });

  it('propagates canonicalization errors instead of hashing something else', () => {
    expect(() => cidOf({ x: NaN })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('recognizes exactly the b3: + 64 lowercase hex shape', () => {
    expect(isCid(cidOfBytes(new Uint8Array([1])))).toBe(true);
    expect(isCid(`b3:${'A'.repeat(64)}`)).toBe(false);
    expect(isCid(`b3:${'a'.repeat(63)}`)).toBe(false);
    expect(isCid(`b2:${'a'.repeat(64)}`)).toBe(false);
    expect(isCid(`b3:${'a'.repeat(64)}\n`)).toBe(false);
    expect(isCid(42)).toBe(false);
  });
});
