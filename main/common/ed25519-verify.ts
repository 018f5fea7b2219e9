/**
 * Ed25519 envelope verification in pure JavaScript (@noble/ed25519), for the renderer and anywhere without
 * node:crypto. The runtime verifies with node:crypto instead (runtime/keys); both accept the same signatures.
 *
 * Pure module: shared by the runtime, the renderer and the sandbox.
 */
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { verifyEnvelopeWith } from './dsse.js';
import type { DsseEnvelope, PublicKeyLookup, VerifiedEnvelope } from './dsse.js';

// @noble/ed25519 v3 ships only async hashing; its synchronous API needs a SHA-512 implementation. Setting it is
// idempotent and any other module doing the same sets the same function.
ed.hashes.sha512 ??= sha512;

/**
 * Ed25519 verification with @noble/ed25519 in strict RFC 8032 mode (`zip215: false`): non-canonical encodings
 * and small-order public keys are refused, which is what OpenSSL (and so node:crypto) does too, so the renderer
 * and the runtime never disagree about a signature. Returns false, never throws, for malformed input.
 */
export function verifyEd25519Noble(sig: Uint8Array, message: Uint8Array, publicKeyRaw: Uint8Array): boolean {
  if (sig.length !== 64 || publicKeyRaw.length !== 32) return false;
  try {
    return ed.verify(sig, message, publicKeyRaw, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * {@link verifyEnvelopeWith} with {@link verifyEd25519Noble}: same contract, same errors.
 * @throws TesseraError SIGNATURE_INVALID or KEY_UNKNOWN.
 */
export function verifyEnvelopeNoble(envelope: DsseEnvelope, lookup: PublicKeyLookup): VerifiedEnvelope {
  return verifyEnvelopeWith(envelope, lookup, verifyEd25519Noble);
}
