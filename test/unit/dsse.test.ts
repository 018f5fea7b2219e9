import * as ed from '@noble/ed25519';
import { createPrivateKey, randomBytes, sign as nodeSign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base64Problem, fromBase64, pae, parseEnvelope, toBase64, toBase64Portable, verifyEnvelopeWith } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { verifyEd25519Noble, verifyEnvelopeNoble } from '../../main/common/ed25519-verify.js';
import { generateKeyPair, keyidOf, signEnvelope, verifyEd25519, verifyEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';

const text = (s: string) => new TextEncoder().encode(s);
const hex = (h: string) => Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)));
const PKCS8_ED25519_PREFIX = hex('302e020100300506032b657004220420');

function lookupFor(...keys: SigningKey[]) {
  return (keyid: string) => keys.find((k) => k.keyid === keyid);
}

function withPayload(env: DsseEnvelope, payload: string): DsseEnvelope {
  return { ...env, payload: toBase64(text(payload)) };
}

function flipSigBit(env: DsseEnvelope, index = 0): DsseEnvelope {
  const sig = fromBase64(env.signatures[index]!.sig);
  sig[10] = sig[10]! ^ 1;
  return { ...env, signatures: env.signatures.map((s, i) => (i === index ? { ...s, sig: toBase64(sig) } : s)) };
}

describe('DSSE pre-authentication encoding', () => {
  it('matches the example in the DSSE protocol specification', () => {
    expect(new TextDecoder().decode(pae('http://example.com/HelloWorld', text('hello world')))).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('counts UTF-8 bytes, not characters, and handles empty and binary bodies', () => {
    expect(new TextDecoder().decode(pae('application/vnd.t\u00e9st', new Uint8Array(0)))).toBe('DSSEv1 21 application/vnd.t\u00e9st 0 ');
    const body = Uint8Array.from([0, 255, 32, 10]);
    expect(Array.from(pae('x', body))).toEqual([...text('DSSEv1 1 x 4 '), 0, 255, 32, 10]);
  });
});

describe('base64', () => {
  it('encodes the RFC 4648 §10 test vectors and decodes them back', () => {
    const vectors = [['', ''], ['f', 'Zg=='], ['fo', 'Zm8='], ['foo', 'Zm9v'], ['foob', 'Zm9vYg=='], ['fooba', 'Zm9vYmE='], ['foobar', 'Zm9vYmFy']] as const;
    for (const [plain, encoded] of vectors) {
      expect(toBase64(text(plain))).toBe(encoded);
      expect(toBase64Portable(text(plain))).toBe(encoded);
      expect(new TextDecoder().decode(fromBase64(encoded))).toBe(plain);
    }
  });

  it('agrees with Node for random bytes of every length remainder, and accepts the URL-safe and unpadded forms', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = new Uint8Array(randomBytes(n));
      const standard = toBase64(bytes);
      expect(standard).toBe(Buffer.from(bytes).toString('base64'));
      // The portable encoder (renderer, sandbox) writes the same text, also for a view into a larger buffer.
      expect(toBase64Portable(bytes)).toBe(standard);
      const view = new Uint8Array(randomBytes(n + 7)).subarray(3, 3 + n);
      expect(toBase64(view)).toBe(toBase64Portable(view));
      expect(fromBase64(standard)).toEqual(bytes);
      expect(fromBase64(Buffer.from(bytes).toString('base64url'))).toEqual(bytes);
      expect(fromBase64(standard.replace(/=+$/, ''))).toEqual(bytes);
    }
  });

  it('rejects malformed base64 instead of skipping characters', () => {
    const bad = ['Zg=', 'Zg===', 'Z', 'Zm9v\n', 'Zm 9v', 'Zm9v!', 'Zh==', 'Zm9=', 'a+b_', '=', 'Zg==Zg==', '\u00e9AAA'];
    for (const input of bad) {
      expect(base64Problem(input), input).not.toBeNull();
      expect(() => fromBase64(input), input).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    }
    expect(base64Problem(42)).toMatch(/not a string/);
  });
});

describe('parseEnvelope', () => {
  const good = { payloadType: 'application/vnd.tessera.test+json', payload: 'e30=', signatures: [{ keyid: 'k', sig: 'AAAA' }] };

  it('returns a copy with only the DSSE fields, treating an absent keyid as empty', () => {
    const parsed = parseEnvelope({ ...good, extra: 1, signatures: [{ sig: 'AAAA', note: 'x' }] });
    expect(parsed).toEqual({ payloadType: good.payloadType, payload: 'e30=', signatures: [{ keyid: '', sig: 'AAAA' }] });
    const original = structuredClone(good);
    parseEnvelope(original).signatures[0]!.keyid = 'changed';
    expect(original.signatures[0]!.keyid).toBe('k');
  });

  it('rejects malformed envelopes with SIGNATURE_INVALID saying which field is wrong', () => {
    const cases: Array<[unknown, RegExp]> = [
      [null, /JSON object/],
      [[good], /JSON object/],
      [{ ...good, payloadType: '' }, /payloadType/],
      [{ ...good, payloadType: 7 }, /payloadType/],
      [{ ...good, payload: undefined }, /"payload"/],
      [{ ...good, payload: 'e30' + '!' }, /"payload" is not valid base64/],
      [{ ...good, signatures: {} }, /"signatures" must be an array/],
      [{ ...good, signatures: ['AAAA'] }, /signatures\[0\] must be an object/],
      [{ ...good, signatures: [{ keyid: 1, sig: 'AAAA' }] }, /signatures\[0\]\.keyid/],
      [{ ...good, signatures: [{ keyid: 'k' }] }, /signatures\[0\]\.sig/],
      [{ ...good, signatures: [{ keyid: 'k', sig: 'AA AA' }] }, /signatures\[0\]\.sig is not valid base64/],
      [{ ...good, signatures: Array.from({ length: 65 }, () => ({ keyid: 'k', sig: 'AAAA' })) }, /at most 64/],
    ];
    for (const [input, message] of cases) {
      expect(() => parseEnvelope(input)).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID', message: expect.stringMatching(message) }));
    }
  });
});

describe('envelope verification', () => {
  const type = 'application/vnd.tessera.test+json';

  it('returns the payload, its type and the keyid that verified, with node:crypto and with @noble/ed25519', () => {
    const key = generateKeyPair();
    const env = signEnvelope(type, text('{"a":1}'), [key]);
    for (const verify of [verifyEnvelope, verifyEnvelopeNoble]) {
      const result = verify(env, lookupFor(key));
      expect(new TextDecoder().decode(result.payload)).toBe('{"a":1}');
      expect(result).toMatchObject({ payloadType: type, keyid: key.keyid });
    }
  });

  it('rejects a tampered payload, payload type or signature with SIGNATURE_INVALID in both implementations', () => {
    const key = generateKeyPair();
    const env = signEnvelope(type, text('{"a":1}'), [key]);
    const tampered = [withPayload(env, '{"a":2}'), { ...env, payloadType: `${type}x` }, flipSigBit(env), { ...env, signatures: [{ keyid: key.keyid, sig: toBase64(new Uint8Array(63)) }] }];
    for (const verify of [verifyEnvelope, verifyEnvelopeNoble]) {
      for (const bad of tampered) {
        expect(() => verify(bad, lookupFor(key))).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID', message: expect.stringContaining(key.keyid) }));
      }
    }
  });

  it('rejects a signature whose keyid names another known key', () => {
    const signer = generateKeyPair();
    const other = generateKeyPair();
    const env = signEnvelope(type, text('x'), [signer]);
    const relabelled = { ...env, signatures: [{ keyid: other.keyid, sig: env.signatures[0]!.sig }] };
    expect(() => verifyEnvelope(relabelled, lookupFor(signer, other))).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
    expect(() => verifyEnvelopeNoble(relabelled, lookupFor(signer, other))).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
  });

  it('throws KEY_UNKNOWN naming the keyids when no signer is known, and skips unknown signers when one is', () => {
    const known = generateKeyPair();
    const stranger = generateKeyPair();
    const env = signEnvelope(type, text('x'), [stranger, known]);
    expect(() => verifyEnvelope(env, lookupFor())).toThrow(expect.objectContaining({ code: 'KEY_UNKNOWN', message: expect.stringContaining(stranger.keyid) }));
    expect(verifyEnvelopeNoble(env, lookupFor(known)).keyid).toBe(known.keyid);
  });

  it('fails an envelope with no signatures and treats a throwing verifier as a rejection', () => {
    const key = generateKeyPair();
    const env = signEnvelope(type, text('x'), [key]);
    expect(() => verifyEnvelope({ ...env, signatures: [] }, lookupFor(key))).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID', message: expect.stringContaining('no signatures') }));
    const throwing = () => {
      throw new Error('boom');
    };
    expect(() => verifyEnvelopeWith(env, lookupFor(key), throwing)).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
  });
});

describe('node:crypto and @noble/ed25519 agree', () => {
  it('produce the RFC 8032 §7.1 test 1 signature and both verify it', () => {
    const seed = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    const publicKey = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const expected = hex('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b');
    const nodeKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    expect(new Uint8Array(nodeSign(null, new Uint8Array(0), nodeKey))).toEqual(expected);
    expect(ed.sign(new Uint8Array(0), seed)).toEqual(expected);
    expect(ed.getPublicKey(seed)).toEqual(publicKey);
    expect(verifyEd25519(expected, new Uint8Array(0), publicKey)).toBe(true);
    expect(verifyEd25519Noble(expected, new Uint8Array(0), publicKey)).toBe(true);
  });

  it('make byte-identical signatures over a PAE for the same key, and each verifies the other', () => {
    for (let round = 0; round < 5; round++) {
      const seed = new Uint8Array(randomBytes(32));
      const nodeKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
      const publicKey = ed.getPublicKey(seed);
      const message = pae(type(round), new Uint8Array(randomBytes(100 + round)));
      const byNoble = ed.sign(message, seed);
      const byNode = new Uint8Array(nodeSign(null, message, nodeKey));
      expect(byNode).toEqual(byNoble);
      expect(verifyEd25519(byNoble, message, publicKey)).toBe(true);
      expect(verifyEd25519Noble(byNode, message, publicKey)).toBe(true);
      const env: DsseEnvelope = { payloadType: type(round), payload: toBase64(message.subarray(message.length - 100 - round)), signatures: [{ keyid: keyidOf(publicKey), sig: toBase64(byNoble) }] };
      const lookup = () => ({ publicKeyRaw: publicKey });
      expect(verifyEnvelope(env, lookup).keyid).toBe(keyidOf(publicKey));
      expect(verifyEnvelopeNoble(env, lookup).keyid).toBe(keyidOf(publicKey));
    }
    function type(n: number) {
      return `application/vnd.tessera.round${n}+json`;
    }
  });

  it('both return false, without throwing, for wrongly sized keys and signatures', () => {
    const message = text('m');
    for (const verify of [verifyEd25519, verifyEd25519Noble]) {
      expect(verify(new Uint8Array(64), message, new Uint8Array(31))).toBe(false);
      expect(verify(new Uint8Array(10), message, new Uint8Array(32))).toBe(false);
      expect(verify(new Uint8Array(64), message, new Uint8Array(32).fill(0xff))).toBe(false);
    }
  });
});
