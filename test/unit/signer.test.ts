/**
 * The worker-thread signer (main/runtime/keys/index.ts createWorkerSigner): the same Ed25519 signatures and DSSE
 * envelopes as signing on the calling thread, for keys generated or read from a file, under concurrency, and
 * after the worker is gone.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyEnvelopeWith } from '../../main/common/dsse.js';
import { createWorkerSigner, generateKeyPair, readPrivateKey, signEnvelope, signEnvelopeWith, verifyEd25519, writePrivateKey } from '../../main/runtime/keys/index.js';
import { tempDir } from '../helpers/tmp.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('worker signer', () => {
  it('gives the envelopes signEnvelope gives, for a generated key and one read from its file', async () => {
    const generated = generateKeyPair();
    const file = join(tempDir(), 'device-key');
    writePrivateKey(file, generateKeyPair());
    for (const key of [generated, readPrivateKey(file)]) {
      const signer = createWorkerSigner(key);
      try {
        const payload = bytes('{"kind":"INTENT","n":1}');
        const envelope = await signEnvelopeWith('application/vnd.tessera.receipt+json', payload, key, signer);
        expect(envelope).toEqual(signEnvelope('application/vnd.tessera.receipt+json', payload, [key]));
        expect(verifyEnvelopeWith(envelope, (k) => (k === key.keyid ? { publicKeyRaw: key.publicKeyRaw } : undefined), verifyEd25519).keyid).toBe(key.keyid);
      } finally {
        signer.close();
      }
    }
  });

  it('signs 500 concurrent messages, each with its own signature, in order', async () => {
    const key = generateKeyPair();
    const signer = createWorkerSigner(key);
    try {
      const messages = Array.from({ length: 500 }, (_, i) => bytes(`message ${i}`));
      const signatures = await Promise.all(messages.map((m) => signer.sign(m)));
      expect(signer.threaded).toBe(true);
      signatures.forEach((sig, i) => expect(Buffer.from(sig).equals(Buffer.from(key.sign(messages[i]!)))).toBe(true));
    } finally {
      signer.close();
    }
  });

  it('keeps signing, on the calling thread, after it is closed, including calls made while closing', async () => {
    const key = generateKeyPair();
    const signer = createWorkerSigner(key);
    const pending = signer.sign(bytes('asked before close'));
    signer.close();
    expect(signer.threaded).toBe(false);
    expect(Buffer.from(await pending).equals(Buffer.from(key.sign(bytes('asked before close'))))).toBe(true);
    expect(Buffer.from(await signer.sign(bytes('after'))).equals(Buffer.from(key.sign(bytes('after'))))).toBe(true);
  });

  it('refuses an empty payload type like signEnvelope', async () => {
    const key = generateKeyPair();
    const signer = createWorkerSigner(key);
    try {
      await expect(signEnvelopeWith('', bytes('x'), key, signer)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    } finally {
      signer.close();
    }
  });
});
