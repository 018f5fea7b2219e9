/**
 * The signed form the catalogue holds, shared by ProductDefs and journey documents: a DSSE envelope of one payload
 * type, by a key the publisher trust holds, whose payload is the RFC 8785 canonical bytes of a JSON value (so a
 * document has exactly one signed form, and its cid is the cid of those bytes).
 */
import { canonicalBytes } from '../../common/canonical.js';
import { parseEnvelope } from '../../common/dsse.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import type { ErrorCode } from '../../common/errors.js';
import type { TrustView } from '../trust/index.js';
import { verifyTrusted } from '../trust/index.js';

export interface SignedKind {
  payloadType: string;
  /** What it is, in a message: `a ProductDef`. */
  what: string;
  /** The code for a payload that is not a valid document. */
  invalid: ErrorCode;
  /** The command that signs one, named when the bytes are not canonical. */
  signCommand: string;
}

export interface OpenedEnvelope {
  /** The parsed payload, not yet validated. */
  value: unknown;
  payload: Uint8Array;
  publisher: { keyid: string; name: string };
  envelope: DsseEnvelope;
}

/**
 * Opens a signed document: parses the envelope, checks its payload type and a trusted signature, and parses the
 * payload as JSON. The caller validates `value`, then calls {@link requireCanonical}.
 * @throws TesseraError SIGNATURE_INVALID (malformed, other payload type, altered), KEY_UNKNOWN, KEY_REVOKED, or
 *   `kind.invalid` (the payload is not JSON), each naming `source`.
 */
export function openSigned(json: unknown, trust: TrustView, kind: SignedKind, source: string): OpenedEnvelope {
  let envelope: DsseEnvelope;
  try {
    envelope = parseEnvelope(json);
  } catch (err) {
    throw prefixed(err, source);
  }
  if (envelope.payloadType !== kind.payloadType) throw new TesseraError('SIGNATURE_INVALID', `${source}: the envelope signs a ${envelope.payloadType}, not ${kind.what} (${kind.payloadType}).`);
  let trusted;
  try {
    trusted = verifyTrusted(envelope, trust);
  } catch (err) {
    throw prefixed(err, source);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(trusted.payload));
  } catch {
    throw new TesseraError(kind.invalid, `${source}: the signed payload is not JSON.`);
  }
  return { value, payload: trusted.payload, publisher: { keyid: trusted.keyid, name: trusted.name }, envelope };
}

/**
 * @throws TesseraError `kind.invalid` when `payload` is not the canonical bytes of `value` (a document has one signed
 *   form: its cid).
 */
export function requireCanonical(value: unknown, payload: Uint8Array, kind: SignedKind, source: string): void {
  const canonical = canonicalBytes(value);
  if (canonical.length !== payload.length || !canonical.every((b, i) => b === payload[i])) {
    throw new TesseraError(kind.invalid, `${source}: the signed payload is not the canonical (RFC 8785) form of ${kind.what}; sign it with \`${kind.signCommand}\`.`);
  }
}

/** The same error with `source: ` before its message. */
export function prefixed(err: unknown, source: string): unknown {
  if (!isTesseraError(err)) return err;
  return new TesseraError(err.code, `${source}: ${err.message}`, err.details !== undefined ? { details: err.details } : {});
}
