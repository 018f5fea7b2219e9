import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { encode as cborEncode } from 'cborg';
import { zlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { verifyEd25519Noble } from '../../main/common/ed25519-verify.js';
import {
  CLOCK_SKEW_S, MAX_CBOR_DEPTH, TOKEN_PREFIX, base45Decode, sigStructure, base45Encode, decodeToken, encodeToken, kidOfKeyid, verifyToken, windowState,
} from '../../main/common/entitlement-token.js';
import type { EncodeInput, IssuerLookup } from '../../main/common/entitlement-token.js';
import { generateKeyPair, verifyEd25519 } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';

const issuer = generateKeyPair();
const stranger = generateKeyPair();
const lookupFor = (...keys: SigningKey[]): IssuerLookup => (kid) => {
  const key = keys.find((k) => kidOfKeyid(k.keyid) === kid);
  return key ? { state: 'trusted', keyid: key.keyid, publicKeyRaw: key.publicKeyRaw } : { state: 'unknown' };
};
const PRODUCT = `b3:${'ab'.repeat(32)}`;
const NOW = Math.floor(Date.parse('2026-12-07T10:00:00Z') / 1000);

/** The sample catalogue's three products (ISSUE14-PLAN "ProductDef"), with realistic venue ids. */
const SAMPLES: Record<string, Omit<EncodeInput, 'issuer_keyid' | 'serial'>> = {
  'time_pass, 3 venues': { product_cid: PRODUCT, kind: 'time_pass', rights: 1, nbf: NOW, exp: NOW + 48 * 3600, venues: ['lviv.history', 'lviv.museum-art', 'lviv.pharm-museum'] },
  'single_use, 1 venue': { product_cid: PRODUCT, kind: 'single_use', nbf: NOW, exp: NOW + 365 * 86400, venues: ['lviv.museum-art'] },
  stored_value: { product_cid: PRODUCT, kind: 'stored_value', rights: 20000, currency: 'UAH', nbf: NOW, exp: NOW + 90 * 86400, venues: [] },
};
const serial = () => randomBytes(12).toString('hex');
const code = (claims: Omit<EncodeInput, 'issuer_keyid' | 'serial'> = SAMPLES['single_use, 1 venue']!, key: SigningKey = issuer) =>
  encodeToken({ ...claims, serial: serial(), issuer_keyid: key.keyid }, (m) => key.sign(m));

describe('base45 (RFC 9285)', () => {
  it('matches the RFC examples', () => {
    const enc = (s: string) => base45Encode(new TextEncoder().encode(s));
    expect(enc('AB')).toBe('BB8');
    expect(enc('Hello!!')).toBe('%69 VD92EX0');
    expect(enc('base-45')).toBe('UJCLQE7W581');
    expect(new TextDecoder().decode(base45Decode('QED8WEX0'))).toBe('ietf!');
  });
  it('round-trips any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      expect(base45Decode(base45Encode(bytes))).toEqual(bytes);
    }));
  });
  it('refuses characters outside the alphabet, a dangling character and overflowing groups', () => {
    expect(base45Decode('bb8')).toBeUndefined(); // lowercase
    expect(base45Decode('BB8A')).toBeUndefined(); // length ≡ 1 (mod 3)
    expect(base45Decode('GGW')).toBeUndefined(); // 65536 + … > 0xffff
    expect(base45Decode(':::')).toBeUndefined();
    expect(base45Decode('::')).toBeUndefined(); // a last pair over 255
    expect(base45Decode('BB\u00e98')).toBeUndefined();
  });
});

describe('entitlement tokens', () => {
  it('round-trips the claims and verifies with node:crypto and @noble alike', () => {
    for (const claims of Object.values(SAMPLES)) {
      const s = serial();
      const c = encodeToken({ ...claims, serial: s, issuer_keyid: issuer.keyid }, (m) => issuer.sign(m));
      for (const verify of [verifyEd25519, verifyEd25519Noble]) {
        const r = verifyToken(c, lookupFor(stranger, issuer), verify);
        expect(r.ok).toBe(true);
        if (r.ok) {
          expect(r.token.claims).toEqual({ ...claims, serial: s });
          expect(r.issuer.keyid).toBe(issuer.keyid);
        }
      }
    }
  });

  it('keeps the sample products\' codes at or under 300 characters (QR alphanumeric mode)', () => {
    const lengths = Object.fromEntries(Object.entries(SAMPLES).map(([name, claims]) => [name, code(claims).length]));
    // Figures quoted in the report: measured here.
    console.info('entitlement token lengths', lengths);
    for (const length of Object.values(lengths)) expect(length).toBeLessThanOrEqual(300);
    expect(code()).toMatch(/^TS1:[0-9A-Z $%*+\-./:]+$/);
  });

  it('answers UNKNOWN_ISSUER for a key not trusted, REVOKED for a revoked one', () => {
    const c = code(undefined, stranger);
    expect(verifyToken(c, lookupFor(issuer), verifyEd25519)).toMatchObject({ ok: false, reason: 'UNKNOWN_ISSUER' });
    expect(verifyToken(c, () => ({ state: 'revoked', keyid: stranger.keyid, reason: 'lost' }), verifyEd25519)).toMatchObject({ ok: false, reason: 'REVOKED' });
  });

  it('refuses a forged signature: claims signed by another key under the issuer\'s kid', () => {
    const forged = encodeToken({ ...SAMPLES['single_use, 1 venue']!, serial: serial(), issuer_keyid: issuer.keyid }, (m) => stranger.sign(m));
    expect(verifyToken(forged, lookupFor(issuer), verifyEd25519)).toMatchObject({ ok: false, reason: 'DAMAGED_CODE' });
  });

  it('refuses every single-character change of a code (tampered) and every truncation', () => {
    const c = code(SAMPLES['time_pass, 3 venues']);
    expect(verifyToken(c, lookupFor(issuer), verifyEd25519).ok).toBe(true);
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
    for (let i = TOKEN_PREFIX.length; i < c.length; i++) {
      const other = alphabet[(alphabet.indexOf(c[i]!) + 1 + (i % 44)) % 45]!;
      const tampered = c.slice(0, i) + other + c.slice(i + 1);
      expect(verifyToken(tampered, lookupFor(issuer), verifyEd25519).ok, `position ${i}`).toBe(false);
    }
    for (let n = 0; n < c.length; n++) expect(verifyToken(c.slice(0, n), lookupFor(issuer), verifyEd25519).ok, `length ${n}`).toBe(false);
  });

  it('never throws on random input and never accepts it', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string().map((s) => TOKEN_PREFIX + s), fc.uint8Array({ maxLength: 400 }).map((b) => TOKEN_PREFIX + base45Encode(b)), fc.uint8Array({ maxLength: 400 }).map((b) => TOKEN_PREFIX + base45Encode(zlibSync(b)))), (input) => {
      const r = verifyToken(input, lookupFor(issuer), verifyEd25519);
      expect(r.ok).toBe(false);
    }), { numRuns: 2000 });
    for (const junk of [undefined, null, 42, {}, [], 'TS1:', 'TS1:' + 'A'.repeat(5000)]) expect(decodeToken(junk)).toMatchObject({ ok: false, reason: 'DAMAGED_CODE' });
  });

  it('refuses a zip bomb and deeply nested CBOR without inflating or recursing', () => {
    const bomb = TOKEN_PREFIX + base45Encode(zlibSync(new Uint8Array(50 * 1024 * 1024), { level: 9 }).subarray(0, 1400));
    expect(decodeToken(bomb)).toMatchObject({ ok: false, reason: 'DAMAGED_CODE' });
    const deep = new Uint8Array(1000).fill(0x81);
    const r = decodeToken(TOKEN_PREFIX + base45Encode(zlibSync(Uint8Array.from([0xd2, ...deep, 0]))));
    expect(r).toMatchObject({ ok: false, problem: expect.stringContaining('nested too deeply') });
    expect(MAX_CBOR_DEPTH).toBeLessThan(10);
    const hugeArray = TOKEN_PREFIX + base45Encode(zlibSync(Uint8Array.from([0xd2, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])));
    expect(decodeToken(hugeArray)).toMatchObject({ ok: false, reason: 'DAMAGED_CODE' });
  });

  it('writes the Sig_structure exactly as a CBOR encoder does (RFC 9052 §4.4)', () => {
    for (const [a, b] of [[3, 100], [23, 24], [24, 255], [256, 700]] as const) {
      const p = randomBytes(a);
      const q = randomBytes(b);
      expect(sigStructure(p, q)).toEqual(cborEncode(['Signature1', p, new Uint8Array(0), q]));
    }
  });

  it('places now against the window with the stated skew tolerance', () => {
    const w = { nbf: NOW, exp: NOW + 3600 };
    expect(windowState(w, NOW - CLOCK_SKEW_S - 1)).toBe('not_yet_valid');
    expect(windowState(w, NOW - CLOCK_SKEW_S)).toBe('valid');
    expect(windowState(w, NOW + 3600 + CLOCK_SKEW_S - 1)).toBe('valid');
    expect(windowState(w, NOW + 3600 + CLOCK_SKEW_S)).toBe('expired');
  });
});
