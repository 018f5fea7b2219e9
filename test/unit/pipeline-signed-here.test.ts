/**
 * The receipt pipeline's in-request signature shortcut (main/runtime/receipts/pipeline.ts `signedHere`): a
 * signature the request itself made with the device key, over the same bytes, is not verified again; anything
 * else — another message, another key, another signer, a signature it did not make — is verified for real.
 */
import { describe, expect, it } from 'vitest';
import { fromBase64, pae, toBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { generateKeyPair, signEnvelope, verifyEd25519 } from '../../main/runtime/keys/index.js';
import { signedHere } from '../../main/runtime/receipts/pipeline.js';

const TYPE = 'application/vnd.tessera.test+json';
const device = generateKeyPair();
const other = generateKeyPair();

/** The arguments verifyChain gives the verifier for an envelope's first signature. */
function parts(envelope: DsseEnvelope): [Uint8Array, Uint8Array] {
  return [fromBase64(envelope.signatures[0]!.sig), pae(envelope.payloadType, fromBase64(envelope.payload))];
}

/** A verifier that counts its calls and answers like node:crypto. */
function counting() {
  const calls = { n: 0 };
  return { calls, verify: (sig: Uint8Array, message: Uint8Array, key: Uint8Array) => (calls.n++, verifyEd25519(sig, message, key)) };
}

describe('signedHere', () => {
  it('accepts a signature recorded in this request without verifying it again', () => {
    const { calls, verify } = counting();
    const signed = signedHere(device, verify);
    const envelope = signed.add(signEnvelope(TYPE, new TextEncoder().encode('{"a":1}'), [device]));
    const [sig, message] = parts(envelope);
    expect(signed.verify(sig, message, device.publicKeyRaw)).toBe(true);
    expect(calls.n).toBe(0);
  });

  it('verifies for real when the message differs by one byte, and refuses it', () => {
    const { calls, verify } = counting();
    const signed = signedHere(device, verify);
    const envelope = signed.add(signEnvelope(TYPE, new TextEncoder().encode('{"a":1}'), [device]));
    const [sig, message] = parts(envelope);
    const altered = Uint8Array.from(message);
    altered[altered.length - 2] = altered[altered.length - 2]! ^ 1;
    expect(signed.verify(sig, altered, device.publicKeyRaw)).toBe(false);
    expect(calls.n).toBe(1);
  });

  it('verifies for real with another public key, and refuses it', () => {
    const { calls, verify } = counting();
    const signed = signedHere(device, verify);
    const [sig, message] = parts(signed.add(signEnvelope(TYPE, new TextEncoder().encode('{"b":2}'), [device])));
    expect(signed.verify(sig, message, other.publicKeyRaw)).toBe(false);
    expect(calls.n).toBe(1);
  });

  it('does not record signatures by other keys, nor trust signatures it did not record', () => {
    const { calls, verify } = counting();
    const signed = signedHere(device, verify);
    const foreign = signed.add(signEnvelope(TYPE, new TextEncoder().encode('{"c":3}'), [other]));
    const [sig, message] = parts(foreign);
    expect(signed.verify(sig, message, other.publicKeyRaw)).toBe(true);
    expect(calls.n).toBe(1);
    const unrecorded = signEnvelope(TYPE, new TextEncoder().encode('{"d":4}'), [device]);
    const [sig2, message2] = parts(unrecorded);
    expect(signed.verify(sig2, message2, device.publicKeyRaw)).toBe(true);
    expect(calls.n).toBe(2);
    // A forged signature (right length, never made) over a recorded message is refused.
    const recorded = parts(signed.add(signEnvelope(TYPE, new TextEncoder().encode('{"e":5}'), [device])));
    const forged = fromBase64(toBase64(new Uint8Array(64).fill(7)));
    expect(signed.verify(forged, recorded[1], device.publicKeyRaw)).toBe(false);
    expect(calls.n).toBe(3);
  });
});
