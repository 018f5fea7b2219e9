/**
 * The JSON view parser of POST /v1/run (main/runtime/products/view.ts) and capsule cid determinism:
 * examples of each stable error code, property tests (fast-check) for canonicalization and cids, and a fuzz run
 * that throws arbitrary text, unicode, deep nesting and huge numbers at the parser.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../main/common/canonical.js';
import { cidOf } from '../../main/common/cid.js';
import { isTesseraError } from '../../main/common/errors.js';
import { CAPSULE_VERSION, capsuleId } from '../../main/common/receipt.js';
import type { JsonObject } from '../../main/common/receipt.js';
import { VIEW_LIMITS, parseView } from '../../main/runtime/products/view.js';

const hdr = { src: 'gw-1', nonce: 'nonce-0001' };
const codeOf = (text: string): string => {
  try {
    parseView(text);
    return 'ok';
  } catch (err) {
    return isTesseraError(err) ? err.code : `crash: ${String(err)}`;
  }
};
const capsuleOf = (view: JsonObject): string => capsuleId({ v: CAPSULE_VERSION, product: cidOf('p'), act: 'transact', tenant: 't', aud: 'a', src: 'gw-1', view });

/** Reorders keys of every object, recursively (a different but equal JSON document). */
function shuffleKeys(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v, i) => shuffleKeys(v, seed + i));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    const rotated = entries.length > 0 ? [...entries.slice(seed % entries.length), ...entries.slice(0, seed % entries.length)].reverse() : entries;
    return Object.fromEntries(rotated.map(([k, v]) => [k, shuffleKeys(v, seed + 1)]));
  }
  return value;
}

/** Rewrites every string and key in NFD (decomposed): a different byte sequence, the same text. */
function toNfd(value: unknown): unknown {
  if (typeof value === 'string') return value.normalize('NFD');
  if (Array.isArray(value)) return value.map(toNfd);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.normalize('NFD'), toNfd(v)]));
  return value;
}

// JSON values without lone surrogates, "__proto__"-like keys or unsafe integers: what a well-formed view holds.
const safeString = fc.string({ unit: fc.constantFrom('a', 'é', 'e\u0301', 'Å', 'A\u030a', 'ß', '日', '😀', ' ', '"', '\\', '\n', 'z') as fc.Arbitrary<string>, maxLength: 12 });
const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -1_000_000, max: 1_000_000 }),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 }).filter((d) => !Number.isInteger(d) || Number.isSafeInteger(d)),
    safeString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(safeString.filter((k) => !['__proto__', 'constructor', 'prototype', 'hdr'].includes(k.normalize('NFC'))), tie('value'), { maxKeys: 4 }).filter((o) => new Set(Object.keys(o).map((k) => k.normalize('NFC'))).size === Object.keys(o).length),
  ),
})).value;
const viewArb = fc.dictionary(fc.constantFrom('intent', 'ctx', 'meta', 'decision', 'café', 'cafe\u0301x'), jsonValue, { minKeys: 1, maxKeys: 5 });

describe('parseView', () => {
  it('splits hdr from the view and normalizes strings and keys to NFC', () => {
    const parsed = parseView(JSON.stringify({ hdr: { ...hdr, exp: '2026-06-01T12:00:00+02:00' }, intent: { name: 'Cafe\u0301' }, ['A\u030a']: 1 }));
    expect(parsed.hdr).toEqual({ src: 'gw-1', nonce: 'nonce-0001', exp: '2026-06-01T10:00:00.000Z' });
    // A leap day and a time without seconds in another zone are real times.
    expect(parseView(JSON.stringify({ hdr: { ...hdr, exp: '2096-02-29T23:59+02:00' } })).hdr.exp).toBe('2096-02-29T21:59:00.000Z');
    expect(parsed.view).toEqual({ intent: { name: 'Café' }, ['Å']: 1 });
  });

  it('answers each bad input with its stable code and the path', () => {
    const cases: Array<[string, string, string?]> = [
      ['{', 'VIEW_INVALID'],
      ['[1]', 'VIEW_INVALID'],
      ['{"intent":{}}', 'VIEW_INVALID', '$.hdr'],
      [JSON.stringify({ hdr: { src: 'gw', nonce: 'short' } }), 'VIEW_INVALID', '$.hdr.nonce'],
      [JSON.stringify({ hdr: { src: '', nonce: 'nonce-0001' } }), 'VIEW_INVALID', '$.hdr.src'],
      [JSON.stringify({ hdr: { ...hdr, exp: 'tomorrow' } }), 'VIEW_INVALID', '$.hdr.exp'],
      // Times Date.parse would roll over to another day: refused, not moved.
      [JSON.stringify({ hdr: { ...hdr, exp: '2099-02-30T00:00:00Z' } }), 'VIEW_INVALID', '$.hdr.exp'],
      [JSON.stringify({ hdr: { ...hdr, exp: '2099-04-31T00:00+02:00' } }), 'VIEW_INVALID', '$.hdr.exp'],
      [JSON.stringify({ hdr: { ...hdr, exp: '2099-01-01T24:00:00Z' } }), 'VIEW_INVALID', '$.hdr.exp'],
      [JSON.stringify({ hdr: { ...hdr, extra: 1 } }), 'VIEW_INVALID', '$.hdr.extra'],
      [`{"hdr":${JSON.stringify(hdr)},"n":1e400}`, 'VIEW_INVALID', '$.n:'],
      // A key given twice, also when spelled with an escape, at any depth: JSON.parse would keep the last silently.
      [`{"hdr":${JSON.stringify(hdr)},"x":1,"x":2}`, 'VIEW_INVALID', 'the key "x" appears twice'],
      [`{"hdr":${JSON.stringify(hdr)},"o":{"a":[{"k":1}],"\\u0061":2}}`, 'VIEW_INVALID', 'the key "a" appears twice'],
      [`{"hdr":${JSON.stringify(hdr)},"a b":{"c":[1,9007199254740993]}}`, 'VIEW_INVALID', '$["a b"].c[1]:'],
      [`{"hdr":${JSON.stringify(hdr)},"n":12345678901234567890}`, 'VIEW_INVALID', 'lost precision'],
      [`{"hdr":${JSON.stringify(hdr)},"s":"\\ud800"}`, 'VIEW_INVALID', 'surrogate'],
      [`{"hdr":${JSON.stringify(hdr)},"__proto__":{"x":1}}`, 'VIEW_INVALID', '__proto__'],
      [`{"hdr":${JSON.stringify(hdr)},"Cafe\u0301":1,"Café":2}`, 'VIEW_INVALID', 'NFC'],
      [`{"hdr":${JSON.stringify(hdr)},"d":${'['.repeat(40)}${']'.repeat(40)}}`, 'VIEW_TOO_DEEP'],
      [JSON.stringify({ hdr, big: 'x'.repeat(VIEW_LIMITS.maxBytes) }), 'VIEW_TOO_LARGE'],
      [JSON.stringify({ hdr, long: 'x'.repeat(VIEW_LIMITS.maxString + 1) }), 'VIEW_INVALID', 'at most'],
    ];
    for (const [text, code, fragment] of cases) {
      let thrown: unknown;
      try {
        parseView(text);
      } catch (err) {
        thrown = err;
      }
      expect(isTesseraError(thrown) ? thrown.code : thrown, text.slice(0, 60)).toBe(code);
      if (fragment) expect((thrown as Error).message).toContain(fragment);
    }
    // Brackets inside strings do not count as nesting.
    expect(codeOf(JSON.stringify({ hdr, s: '['.repeat(100) }))).toBe('ok');
    // The same key in different objects, or as a string value, is no duplicate.
    expect(codeOf(JSON.stringify({ hdr, l: [{ a: 1 }, { a: 2 }], m: { a: { a: 'a' } }, a: ['a', 'a'] }))).toBe('ok');
    // The deepest accepted nesting is exactly the limit.
    expect(codeOf(`{"hdr":${JSON.stringify(hdr)},"d":${'['.repeat(VIEW_LIMITS.maxDepth - 1)}${']'.repeat(VIEW_LIMITS.maxDepth - 1)}}`)).toBe('ok');
  });
});

describe('capsule cid determinism (property)', () => {
  it('key order is irrelevant: the same view in any key order has the same canonical bytes and capsule cid', () => {
    fc.assert(
      fc.property(viewArb, fc.nat(7), (view, seed) => {
        const a = parseView(JSON.stringify({ hdr, ...view })).view;
        const b = parseView(JSON.stringify(shuffleKeys({ ...view, hdr }, seed))).view;
        expect(canonicalize(b)).toBe(canonicalize(a));
        expect(capsuleOf(b)).toBe(capsuleOf(a));
      }),
      { numRuns: 300 },
    );
  });

  it('NFC-equivalent inputs (composed or decomposed text) give the same capsule cid', () => {
    fc.assert(
      fc.property(viewArb, (view) => {
        const composed = parseView(JSON.stringify({ hdr, ...(toNfd(view) as object) })).view;
        const decomposed = parseView(JSON.stringify({ hdr, ...view })).view;
        expect(capsuleOf(composed)).toBe(capsuleOf(decomposed));
      }),
      { numRuns: 300 },
    );
  });

  it('the nonce and expiry stay out of the capsule cid; any change to the view changes it', () => {
    fc.assert(
      fc.property(viewArb, fc.stringMatching(/^[a-z0-9]{8,20}$/), (view, nonce) => {
        const a = parseView(JSON.stringify({ hdr, ...view }));
        const b = parseView(JSON.stringify({ hdr: { src: hdr.src, nonce, exp: '2030-01-01T00:00:00Z' }, ...view }));
        expect(capsuleOf(b.view)).toBe(capsuleOf(a.view));
        expect(capsuleOf({ ...a.view, extra: nonce })).not.toBe(capsuleOf(a.view));
      }),
      { numRuns: 200 },
    );
  });
});

describe('fuzz: the view parser never crashes', () => {
  const OK_OR_CODE = /^(ok|VIEW_INVALID|VIEW_TOO_DEEP|VIEW_TOO_LARGE)$/;

  it('arbitrary text and unicode: a parsed view or a stable code', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.json({ maxDepth: 6 }), fc.string({ unit: 'grapheme', maxLength: 100 }).map((s) => `{"hdr":${JSON.stringify(hdr)},"s":"${s}"}`)), (text) => {
        expect(codeOf(text)).toMatch(OK_OR_CODE);
      }),
      { numRuns: 2000 },
    );
  });

  it('deep nesting, huge numbers, lone surrogates and odd keys: a parsed view or a stable code', () => {
    const number = fc.oneof(fc.constantFrom('1e400', '-1e400', '9007199254740993', '1e21', '-0', '0.1e-400', '123456789012345678901234567890', '1.5'), fc.bigInt().map(String));
    const piece = fc.oneof(
      number,
      fc.nat(200).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
      fc.nat(200).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
      fc.constantFrom('"\\ud800"', '"\\udfff\\ud800"', '"e\\u0301"', '"\\u0000"', '{"__proto__":1}', '{"constructor":{}}', '{"a":1,"a":2}', 'null', 'true'),
    );
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 4 }), fc.boolean(), (pieces, withHdr) => {
        const body = `{${withHdr ? `"hdr":${JSON.stringify(hdr)},` : ''}${pieces.map((p, i) => `"k${i}":${p}`).join(',')}}`;
        expect(codeOf(body)).toMatch(OK_OR_CODE);
      }),
      { numRuns: 2000 },
    );
  });
});
