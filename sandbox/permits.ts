/**
 * Permits (seed 004 §4; DESIGN.md "Formats → Permit"): a signed grant binding exactly one input cid, a scope
 * of capabilities, an expiry and a nonce. Effects refuse to run without one. The receipt pipeline (issue 5)
 * issues them for real decisions; `tessera plugin test` issues one from the device key for the input it runs.
 */
import { canonicalBytes } from '../main/common/canonical.js';
import { cidOfBytes, isCid } from '../main/common/cid.js';
import type { DsseEnvelope } from '../main/common/dsse.js';
import { TesseraError, isTesseraError } from '../main/common/errors.js';
import type { AsyncSigner, SigningKey } from '../main/runtime/keys/index.js';
import { signEnvelope, signEnvelopeWith } from '../main/runtime/keys/index.js';
import type { TrustView } from '../main/runtime/trust/index.js';
import { verifyTrusted } from '../main/runtime/trust/index.js';

export const PERMIT_PAYLOAD_TYPE = 'application/vnd.tessera.permit+json';

export interface Permit {
  /** cid of the exact input the permit allows effects for. */
  input_cid: string;
  /** Capabilities the permit covers, e.g. ["http.fetch"]. */
  scope: string[];
  /** ISO-8601; the permit is invalid at and after this time (logical time of the call). */
  expires_at: string;
  /** Single use: a nonce is accepted once per device. */
  nonce: string;
}

export function issuePermit(key: SigningKey, permit: Permit): DsseEnvelope {
  return signEnvelope(PERMIT_PAYLOAD_TYPE, canonicalBytes(permit), [key]);
}

/**
 * {@link issuePermit} with the signature made by `signer` (another thread): the same envelope, and the permit's id
 * (`cidOf(permit)`, from the canonical bytes already made for the signature).
 */
export async function issuePermitWith(key: SigningKey, signer: AsyncSigner, permit: Permit): Promise<{ envelope: DsseEnvelope; id: string }> {
  const bytes = canonicalBytes(permit);
  return { envelope: await signEnvelopeWith(PERMIT_PAYLOAD_TYPE, bytes, key, signer), id: cidOfBytes(bytes) };
}

/** Verify a permit for `inputCid` at logical time `now`; throws PERMIT_INVALID saying why. Nonce use is the caller's. */
export function verifyPermit(envelope: unknown, options: { trust: TrustView; inputCid: string; now: number }): Permit {
  let payload: Uint8Array;
  try {
    const verified = verifyTrusted(envelope as DsseEnvelope, options.trust);
    if (verified.payloadType !== PERMIT_PAYLOAD_TYPE) throw new TesseraError('PERMIT_INVALID', `The envelope carries a ${verified.payloadType}, not a permit.`);
    payload = verified.payload;
  } catch (err) {
    if (isTesseraError(err) && err.code === 'PERMIT_INVALID') throw err;
    throw new TesseraError('PERMIT_INVALID', `The permit's signature is not accepted: ${isTesseraError(err) ? `${err.code}: ${err.message}` : String(err)}`);
  }
  let permit: Permit;
  try {
    permit = JSON.parse(new TextDecoder().decode(payload)) as Permit;
  } catch {
    throw new TesseraError('PERMIT_INVALID', 'The permit payload is not JSON.');
  }
  if (!isCid(permit.input_cid) || !Array.isArray(permit.scope) || typeof permit.expires_at !== 'string' || typeof permit.nonce !== 'string' || permit.nonce.length < 8) {
    throw new TesseraError('PERMIT_INVALID', 'The permit is malformed: it needs input_cid, scope[], expires_at and a nonce of 8+ characters.');
  }
  if (permit.input_cid !== options.inputCid) throw new TesseraError('PERMIT_INVALID', `The permit is bound to input ${permit.input_cid}, not to this input (${options.inputCid}).`);
  const expires = Date.parse(permit.expires_at);
  if (!Number.isFinite(expires) || options.now >= expires) throw new TesseraError('PERMIT_INVALID', `The permit expired at ${permit.expires_at}.`);
  return permit;
}
