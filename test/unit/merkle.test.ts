import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  emptyRoot,
  hashFromHex,
  hashToHex,
  inclusionProof,
  leafHash,
  memoryTree,
  nodeHash,
  rootFromInclusionProof,
  treeHead,
  verifyConsistency,
  verifyInclusion,
} from '../../main/common/merkle.js';

const hex = (b: Uint8Array) => hashToHex(b);
const unhex = (h: string) => hashFromHex(h)!;
const bytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));

// The certificate-transparency test vectors (RFC 6962 reference leaves; certificate-transparency-go
// merkletree tests, transparency-dev/merkle testonly/constants.go).
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(bytes);
const CT_ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const CT_PATHS: Array<[number, number, string[]]> = [
  [0, 1, []],
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];
const CT_CONSISTENCY: Array<[number, number, string[]]> = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];

const ctTree = memoryTree(CT_LEAVES.map(leafHash));

/** The RFC 6962 §2.1 definition, written as literally as possible: the reference the optimized code must match. */
function referenceMth(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return emptyRoot();
  if (leaves.length === 1) return leafHash(leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(referenceMth(leaves.slice(0, k)), referenceMth(leaves.slice(k)));
}

function leavesOf(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => new TextEncoder().encode(`leaf ${i}`));
}

function flip(b: Uint8Array, at: number): Uint8Array {
  const c = b.slice();
  c[at % c.length] = c[at % c.length]! ^ 0x01;
  return c;
}

describe('RFC 6962 tree heads and proofs against the certificate-transparency test vectors', () => {
  it('gives the published head for every tree of 0 to 8 leaves', () => {
    for (let n = 0; n <= 8; n++) expect(hex(treeHead(n, ctTree)), `size ${n}`).toBe(CT_ROOTS[n]);
    expect(hex(emptyRoot())).toBe(CT_ROOTS[0]);
  });

  it('gives the published audit paths, and each verifies against the published head', () => {
    for (const [index, size, path] of CT_PATHS) {
      expect(inclusionProof(index, size, ctTree).map(hex), `${index} in ${size}`).toEqual(path);
      expect(verifyInclusion(leafHash(CT_LEAVES[index]!), index, size, path.map(unhex), unhex(CT_ROOTS[size]!))).toBe(true);
    }
  });

  it('gives the published consistency proofs, and each verifies between the published heads', () => {
    for (const [from, to, proof] of CT_CONSISTENCY) {
      expect(consistencyProof(from, to, ctTree).map(hex), `${from} → ${to}`).toEqual(proof);
      expect(verifyConsistency(from, to, proof.map(unhex), unhex(CT_ROOTS[from]!), unhex(CT_ROOTS[to]!))).toBe(true);
    }
  });

  it('verifies every inclusion and consistency proof of every tree up to 8 leaves', () => {
    for (let n = 1; n <= 8; n++) {
      for (let i = 0; i < n; i++) expect(verifyInclusion(leafHash(CT_LEAVES[i]!), i, n, inclusionProof(i, n, ctTree), unhex(CT_ROOTS[n]!))).toBe(true);
      for (let m = 0; m <= n; m++) expect(verifyConsistency(m, n, consistencyProof(m, n, ctTree), unhex(CT_ROOTS[m]!), unhex(CT_ROOTS[n]!)), `${m} → ${n}`).toBe(true);
    }
  });
});

describe('Merkle properties (fast-check)', () => {
  it('the head over perfect subtrees equals the literal RFC definition for every size up to 300', () => {
    const leaves = leavesOf(300);
    const tree = memoryTree(leaves.map(leafHash));
    for (let n = 0; n <= 300; n++) expect(hex(treeHead(n, tree)), `size ${n}`).toBe(hex(referenceMth(leaves.slice(0, n))));
  });

  it("every leaf's inclusion proof verifies, for random tree sizes", () => {
    const leaves = leavesOf(2000);
    const tree = memoryTree(leaves.map(leafHash));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.nat(), (size, pick) => {
        const index = pick % size;
        const root = treeHead(size, tree);
        const proof = inclusionProof(index, size, tree);
        expect(verifyInclusion(leafHash(leaves[index]!), index, size, proof, root)).toBe(true);
      }),
      { numRuns: 500 },
    );
    for (const size of [1, 2, 3, 7, 8, 9, 100, 127, 128, 129]) {
      const root = treeHead(size, tree);
      for (let i = 0; i < size; i++) expect(verifyInclusion(leafHash(leaves[i]!), i, size, inclusionProof(i, size, tree), root), `${i} in ${size}`).toBe(true);
    }
  });

  it('every consistency proof between sizes m ≤ n verifies', () => {
    const tree = memoryTree(leavesOf(2000).map(leafHash));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 2000 }), (a, b) => {
        const [m, n] = a <= b ? [a, b] : [b, a];
        expect(verifyConsistency(m, n, consistencyProof(m, n, tree), treeHead(m, tree), treeHead(n, tree))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a flipped byte anywhere in an inclusion proof, the leaf or the root fails, as does a wrong index or a path of the wrong length', () => {
    const leaves = leavesOf(600);
    const tree = memoryTree(leaves.map(leafHash));
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 600 }), fc.nat(), fc.nat(), fc.nat(), (size, pick, which, at) => {
        const index = pick % size;
        const root = treeHead(size, tree);
        const leaf = leafHash(leaves[index]!);
        const proof = inclusionProof(index, size, tree);
        const j = which % proof.length;
        const bad = proof.map((p, k) => (k === j ? flip(p, at) : p));
        expect(verifyInclusion(leaf, index, size, bad, root)).toBe(false);
        expect(verifyInclusion(flip(leaf, at), index, size, proof, root)).toBe(false);
        expect(verifyInclusion(leaf, index, size, proof, flip(root, at))).toBe(false);
        expect(verifyInclusion(leaf, (index + 1) % size, size, proof, root)).toBe(false);
        expect(verifyInclusion(leaf, index, size, proof.slice(1), root)).toBe(false);
        expect(verifyInclusion(leaf, index, size, [...proof, proof[0]!], root)).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it('a flipped byte in a consistency proof or either root fails, as does a shortened or empty proof', () => {
    const tree = memoryTree(leavesOf(600).map(leafHash));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 599 }), fc.integer({ min: 1, max: 600 }), fc.nat(), fc.nat(), (a, b, which, at) => {
        fc.pre(a < b);
        const proof = consistencyProof(a, b, tree);
        const r1 = treeHead(a, tree);
        const r2 = treeHead(b, tree);
        const j = which % proof.length;
        expect(verifyConsistency(a, b, proof.map((p, k) => (k === j ? flip(p, at) : p)), r1, r2)).toBe(false);
        expect(verifyConsistency(a, b, proof, flip(r1, at), r2)).toBe(false);
        expect(verifyConsistency(a, b, proof, r1, flip(r2, at))).toBe(false);
        expect(verifyConsistency(a, b, proof.slice(0, -1), r1, r2)).toBe(false);
        expect(verifyConsistency(a, b, [], r1, r2)).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it('refuses impossible arguments without throwing in verification and with RangeError in generation', () => {
    const tree = memoryTree(leavesOf(4).map(leafHash));
    expect(() => inclusionProof(4, 4, tree)).toThrow(RangeError);
    expect(() => inclusionProof(-1, 4, tree)).toThrow(RangeError);
    expect(() => consistencyProof(3, 2, tree)).toThrow(RangeError);
    expect(() => treeHead(1.5, tree)).toThrow(RangeError);
    expect(() => treeHead(5, tree)).toThrow(RangeError);
    expect(rootFromInclusionProof(leafHash(new Uint8Array()), 4, 4, [])).toBeUndefined();
    expect(verifyInclusion(leafHash(new Uint8Array()), 0, 2, [new Uint8Array(31)], emptyRoot())).toBe(false);
    expect(verifyConsistency(3, 2, [], emptyRoot(), emptyRoot())).toBe(false);
    expect(verifyConsistency(2, 2, [], treeHead(2, tree), treeHead(2, tree))).toBe(true);
    expect(verifyConsistency(2, 2, [], treeHead(2, tree), treeHead(3, tree))).toBe(false);
    expect(hashFromHex('AB'.repeat(32))).toBeUndefined();
  });
});
