import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalize, MAX_CANONICAL_DEPTH } from '../../main/common/canonical.js';

/** The IEEE 754 double with these bits, as written in RFC 8785 Appendix B. */
function double(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

function validationError(path: string) {
  return expect.objectContaining({ name: 'TesseraError', code: 'VALIDATION_FAILED', message: expect.stringContaining(path) });
}

describe('canonicalize (RFC 8785 over NFC)', () => {
  it('serializes numbers as RFC 8785 Appendix B requires', () => {
    const vectors: Array<[string, string]> = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, expected] of vectors) expect(canonicalize(double(bits)), bits).toBe(expected);
    expect(canonicalize([1e21, 1e-7, -0, Number('333333333.33333329'), 1e20, 0.1, 100, -1.5])).toBe('[1e+21,1e-7,0,333333333.3333333,100000000000000000000,0.1,100,-1.5]');
  });

  it('rejects NaN and the infinities (RFC 8785 Appendix B)', () => {
    expect(() => canonicalize(double('7fffffffffffffff'))).toThrow(validationError('$'));
    expect(() => canonicalize({ a: Infinity })).toThrow(validationError('$.a'));
    expect(() => canonicalize([0, -Infinity])).toThrow(validationError('$[1]'));
  });

  it('reproduces the RFC 8785 §3.2.2 example: numbers, literals and string escaping', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
        ' "literals": [null, true, false]}',
    );
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units as in the RFC 8785 §3.2.3 example', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    expect(canonicalize(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face"}',
    );
  });

  it('normalizes U+FB33 to NFC before sorting, so it sorts where RFC 8785 alone would not', () => {
    // RFC 8785's example puts "\ufb33" last. U+FB33 is a composition exclusion: its NFC form is U+05D3 U+05BC,
    // which sorts before U+20AC. This is Tessera's one intended difference from plain RFC 8785.
    const input = { '\u20ac': 'Euro Sign', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '\u00f6': 'o' };
    expect(canonicalize(input)).toBe('{"\u00f6":"o","\u05d3\u05bc":"Hebrew Letter Dalet With Dagesh","\u20ac":"Euro Sign"}');
  });

  it('normalizes string values and keys to NFC so equal-looking text has equal bytes', () => {
    const decomposed = { 'e\u0301': 'Cafe\u0301', list: ['A\u030a'] };
    const composed = { '\u00e9': 'Caf\u00e9', list: ['\u00c5'] };
    expect(canonicalize(decomposed)).toBe(canonicalize(composed));
    expect(canonicalize(decomposed)).toBe('{"list":["\u00c5"],"\u00e9":"Caf\u00e9"}');
  });

  it('rejects two keys that are equal after NFC normalization, naming the object', () => {
    expect(() => canonicalize({ a: [{ '\u00e9': 1, 'e\u0301': 2 }] })).toThrow(validationError('$.a[0]'));
    expect(() => canonicalize({ '\u00e9': 1, 'e\u0301': 2 })).toThrow(/same after NFC normalization/);
  });

  it('writes nested structures without whitespace and keeps array order', () => {
    expect(canonicalize({ b: [3, { z: null, y: 'x' }, []], a: {}, c: true })).toBe('{"a":{},"b":[3,{"y":"x","z":null},[]],"c":true}');
    expect(canonicalize('plain')).toBe('"plain"');
    expect(canonicalize(null)).toBe('null');
  });

  it('accepts null-prototype objects and a sub-object shared by two parents', () => {
    const shared = { v: 1 };
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { k: shared, j: shared });
    expect(canonicalize(bare)).toBe('{"j":{"v":1},"k":{"v":1}}');
  });

  it('rejects values JSON cannot represent, naming their path', () => {
    const cyclic: Record<string, unknown> = { a: [] };
    (cyclic['a'] as unknown[]).push({ b: cyclic });
    expect(() => canonicalize({ a: [1, 2, { b: undefined }] })).toThrow(validationError('$.a[2].b'));
    expect(() => canonicalize({ f: () => 1 })).toThrow(validationError('$.f'));
    expect(() => canonicalize({ s: Symbol('x') })).toThrow(validationError('$.s'));
    expect(() => canonicalize({ n: 10n })).toThrow(validationError('$.n'));
    expect(() => canonicalize(cyclic)).toThrow(validationError('$.a[0].b'));
    expect(() => canonicalize({ d: new Date(0) })).toThrow(validationError('$.d'));
    expect(() => canonicalize({ m: new Map() })).toThrow(/Map is not JSON/);
    expect(() => canonicalize([new Set([1])])).toThrow(validationError('$[0]'));
    expect(() => canonicalize({ t: new Uint8Array(2) })).toThrow(/Uint8Array is not JSON/);
    expect(() => canonicalize({ 'odd key': new String('x') })).toThrow(validationError('$["odd key"]'));
    expect(() => canonicalize({ [Symbol('k')]: 1 })).toThrow(/symbols/);
    // eslint-disable-next-line no-sparse-arrays
    expect(() => canonicalize([1, , 3])).toThrow(validationError('$[1]'));
    expect(() => canonicalize(undefined)).toThrow(validationError('$'));
  });

  it('rejects lone surrogates in values and keys, since they are not Unicode', () => {
    expect(() => canonicalize({ s: 'a\ud800b' })).toThrow(validationError('$.s'));
    expect(() => canonicalize({ ['\udc00']: 1 })).toThrow(/lone UTF-16 surrogate/);
    expect(canonicalize('\ud83d\ude00')).toBe('"\ud83d\ude00"');
  });

  it('refuses nesting deeper than its limit with VALIDATION_FAILED instead of a stack overflow', () => {
    let deep: unknown = 0;
    for (let i = 0; i < MAX_CANONICAL_DEPTH; i++) deep = [deep];
    expect(canonicalize(deep)).toHaveLength(MAX_CANONICAL_DEPTH * 2 + 1);
    expect(() => canonicalize([deep])).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining('deeper') }));
  });

  it('encodes the canonical text as UTF-8', () => {
    expect(Array.from(canonicalBytes({ '\u20ac': 1 }))).toEqual([0x7b, 0x22, 0xe2, 0x82, 0xac, 0x22, 0x3a, 0x31, 0x7d]);
    expect(new TextDecoder().decode(canonicalBytes({ b: 1, a: '\ud83d\ude00' }))).toBe('{"a":"\ud83d\ude00","b":1}');
  });

  it('gives the text of a plain reference implementation (sort NFC keys by code units, JSON.stringify the rest) on random JSON', () => {
    // The reference: the definition above, written as plainly as possible. canonicalize takes shortcuts for
    // plain-ASCII strings and keys; this checks they change nothing, around quotes, backslashes and non-ASCII.
    const reference = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
      if (v !== null && typeof v === 'object') {
        const entries = Object.entries(v).map(([k, x]) => [k.normalize('NFC'), x] as const);
        entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${reference(x)}`).join(',')}}`;
      }
      return typeof v === 'string' ? JSON.stringify(v.normalize('NFC')) : JSON.stringify(v);
    };
    const text = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '~', ' ', '"', '\\', '/', '\n', '\u0007', '\u007f', 'é', 'e\u0301', '日', '😀') as fc.Arbitrary<string>, maxLength: 8 });
    const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        text,
        fc.constant(null),
        fc.boolean(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(text, tie('value'), { maxKeys: 4 }).filter((o) => new Set(Object.keys(o).map((k) => k.normalize('NFC'))).size === Object.keys(o).length),
      ),
    })).value;
    fc.assert(
      fc.property(json, (value) => {
        expect(canonicalize(value)).toBe(reference(value));
      }),
      { numRuns: 2000 },
    );
  });
});
