/**
 * DSSE envelopes (DESIGN.md "Formats"; secure-systems-lab/dsse envelope.md and protocol.md v1.0): how every
 * signed Tessera object travels. Signatures are Ed25519 over
 * `PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body`, so they verify with standard tools (OpenSSL)
 * given the public key and the PAE bytes.
 *
 * This module knows the format but no signature algorithm: {@link verifyEnvelopeWith} takes the verifier, so
 * the runtime verifies with node:crypto (runtime/keys) and the renderer with @noble/ed25519 (ed25519-verify.ts).
 *
 * Pure module: shared by the runtime, the renderer and the sandbox. Needs no `Buffer` and no `atob`; it encodes
 * base64 with Node's Buffer where there is one (node-buffer.ts), with the same output.
 */
import { nodeView } from './node-buffer.js';
import { TesseraError } from './errors.js';

/** A DSSE JSON envelope. `payload` and `sig` are base64 (we write standard, padded base64). */
export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: DsseSignature[];
}

export interface DsseSignature {
  /** Which key signed: for Tessera keys, the cid of the raw public key. An unauthenticated hint only (DSSE). */
  keyid: string;
  sig: string;
}

/** Finds the public key for a keyid; `undefined` when the key is not known (or not acceptable) to the caller. */
export type PublicKeyLookup = (keyid: string) => { publicKeyRaw: Uint8Array } | undefined;

/** Ed25519 verification of `sig` over `message` with a raw 32-byte public key. Must not throw for bad input. */
export type SignatureVerifier = (sig: Uint8Array, message: Uint8Array, publicKeyRaw: Uint8Array) => boolean;

export interface VerifiedEnvelope {
  /** The decoded payload bytes, exactly as signed. */
  payload: Uint8Array;
  /** Authenticated by the signature: callers must check it is the type they expect before parsing `payload`. */
  payloadType: string;
  /** The keyid of the first signature that verified. */
  keyid: string;
}

/** More signatures than this are refused at parse time, bounding the work one envelope can cause. */
export const MAX_SIGNATURES = 64;

const encoder = new TextEncoder();

/**
 * DSSE v1 pre-authentication encoding: the exact bytes that are signed. Lengths are ASCII decimal byte counts
 * (of the UTF-8 payload type and of the body), so no choice of type or body can be mistaken for another.
 */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = encoder.encode(payloadType);
  const head = encoder.encode(`DSSEv1 ${type.length} `);
  const middle = encoder.encode(` ${payload.length} `);
  const out = new Uint8Array(head.length + type.length + middle.length + payload.length);
  let at = 0;
  for (const part of [head, type, middle, payload]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Validates the shape of a parsed JSON envelope and returns a fresh copy holding only the DSSE fields.
 *
 * Follows DSSE's parsing rules: unrecognized fields are ignored (and dropped), an absent `keyid` is the same as
 * an empty one. `payload` and every `sig` must be valid base64 (standard or URL-safe, see {@link fromBase64}).
 * An empty `signatures` array is a valid shape; it fails verification.
 *
 * @throws TesseraError SIGNATURE_INVALID saying which field is wrong and why.
 */
export function parseEnvelope(json: unknown): DsseEnvelope {
  if (!isRecord(json)) throw invalid('a DSSE envelope must be a JSON object');
  const { payloadType, payload, signatures } = json;
  if (typeof payloadType !== 'string' || payloadType === '') throw invalid('"payloadType" must be a non-empty string');
  if (typeof payload !== 'string') throw invalid('"payload" must be a base64 string');
  const payloadProblem = base64Problem(payload);
  if (payloadProblem !== null) throw invalid(`"payload" is not valid base64: ${payloadProblem}`);
  if (!Array.isArray(signatures)) throw invalid('"signatures" must be an array');
  if (signatures.length > MAX_SIGNATURES) throw invalid(`"signatures" has ${signatures.length} entries; at most ${MAX_SIGNATURES} are accepted`);
  const copied = signatures.map((entry: unknown, i): DsseSignature => {
    if (!isRecord(entry)) throw invalid(`signatures[${i}] must be an object`);
    const { keyid, sig } = entry;
    if (keyid !== undefined && typeof keyid !== 'string') throw invalid(`signatures[${i}].keyid must be a string`);
    if (typeof sig !== 'string' || sig === '') throw invalid(`signatures[${i}].sig must be a non-empty base64 string`);
    const sigProblem = base64Problem(sig);
    if (sigProblem !== null) throw invalid(`signatures[${i}].sig is not valid base64: ${sigProblem}`);
    return { keyid: keyid ?? '', sig };
  });
  return { payloadType, payload, signatures: copied };
}

/**
 * Verifies `envelope` (re-validated with {@link parseEnvelope}) and returns the payload of the first signature
 * whose keyid `lookup` knows and whose signature `verify` accepts over the PAE. Signatures with unknown keyids
 * are skipped: one good signature by a known key is enough (the envelope-level policy of DSSE is the caller's).
 *
 * @throws TesseraError SIGNATURE_INVALID when the envelope is malformed, has no signatures, or no signature by a
 *   known key verifies (the message names the keyids tried).
 * @throws TesseraError KEY_UNKNOWN when `lookup` knows none of the keyids (the message names them).
 */
export function verifyEnvelopeWith(envelope: DsseEnvelope, lookup: PublicKeyLookup, verify: SignatureVerifier): VerifiedEnvelope {
  const env = parseEnvelope(envelope);
  if (env.signatures.length === 0) throw invalid('the envelope has no signatures');
  const payload = fromBase64(env.payload);
  const message = pae(env.payloadType, payload);
  const tried: string[] = [];
  for (const { keyid, sig } of env.signatures) {
    const key = lookup(keyid);
    if (key === undefined) continue;
    tried.push(keyid);
    if (safeVerify(verify, fromBase64(sig), message, key.publicKeyRaw)) return { payload, payloadType: env.payloadType, keyid };
  }
  if (tried.length === 0) {
    const named = env.signatures.map((s) => (s.keyid === '' ? '(no keyid)' : s.keyid)).join(', ');
    throw new TesseraError('KEY_UNKNOWN', `The envelope is signed only by unknown keys: ${named}.`, { details: { keyids: env.signatures.map((s) => s.keyid) } });
  }
  throw invalid(`the signature by ${tried.join(', ')} does not verify: the payload, its type or the signature was altered, or another key signed`);
}

/** A verifier that throws (e.g. on a wrongly sized key or signature) has rejected the signature. */
function safeVerify(verify: SignatureVerifier, sig: Uint8Array, message: Uint8Array, publicKeyRaw: Uint8Array): boolean {
  try {
    return verify(sig, message, publicKeyRaw) === true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Base64 (RFC 4648) without Buffer or atob, identical in Node, browsers and the sandbox.

const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) DECODE[STANDARD.charCodeAt(i)] = i;
DECODE['-'.charCodeAt(0)] = 62;
DECODE['_'.charCodeAt(0)] = 63;

/**
 * Standard base64 (RFC 4648 §4) with `=` padding: what Tessera writes. Node's native encoder where there is one:
 * {@link toBase64Portable} builds the text a few characters at a time, which allocated ~150 KB per receipt run.
 */
export function toBase64(bytes: Uint8Array): string {
  return nodeView(bytes)?.toString('base64') ?? toBase64Portable(bytes);
}

/** {@link toBase64} without Buffer or btoa, for the renderer and the sandbox (the same text; tested against Node's). */
export function toBase64Portable(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += STANDARD[n >> 18]! + STANDARD[(n >> 12) & 63]! + STANDARD[(n >> 6) & 63]! + STANDARD[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += STANDARD[n >> 18]! + STANDARD[(n >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += STANDARD[n >> 18]! + STANDARD[(n >> 12) & 63]! + STANDARD[(n >> 6) & 63]! + '=';
  }
  return out;
}

/**
 * Decodes base64 as DSSE allows it: the standard (§4) or the URL-safe (§5) alphabet, padded or unpadded.
 * Rejects, rather than skipping, anything else: characters outside the alphabet (including whitespace), a mix
 * of both alphabets, impossible lengths, misplaced padding, and non-zero unused bits in the last character (so
 * each byte string has one encoding per alphabet).
 *
 * @throws TesseraError VALIDATION_FAILED saying what is wrong.
 */
export function fromBase64(text: string): Uint8Array {
  const problem = base64Problem(text);
  if (problem !== null) throw new TesseraError('VALIDATION_FAILED', `Not valid base64: ${problem}.`);
  const body = stripPadding(text);
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (let i = 0; i < body.length; i++) {
    acc = ((acc << 6) | DECODE[body.charCodeAt(i)]!) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** Null when `text` is base64 that {@link fromBase64} accepts, else the reason it is not. */
export function base64Problem(text: unknown): string | null {
  if (typeof text !== 'string') return 'it is not a string';
  const body = stripPadding(text);
  const padding = text.length - body.length;
  if (padding > 2) return 'too much "=" padding';
  if (padding > 0 && text.length % 4 !== 0) return 'padded base64 must be a multiple of 4 characters long';
  if (body.length % 4 === 1) return `a length of ${body.length} characters is impossible`;
  let standard = false;
  let urlSafe = false;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c >= 128 || DECODE[c] === -1) return `character ${JSON.stringify(body[i])} at offset ${i} is not in the base64 alphabet`;
    if (c === 0x2b || c === 0x2f) standard = true;
    if (c === 0x2d || c === 0x5f) urlSafe = true;
  }
  if (standard && urlSafe) return 'it mixes the standard ("+/") and URL-safe ("-_") alphabets';
  if (body.length > 0) {
    const last = DECODE[body.charCodeAt(body.length - 1)]!;
    const unused = body.length % 4 === 2 ? 0b1111 : body.length % 4 === 3 ? 0b11 : 0;
    if ((last & unused) !== 0) return 'the last character has non-zero unused bits (not a canonical encoding)';
  }
  return null;
}

function stripPadding(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  return text.slice(0, end);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(problem: string): TesseraError {
  return new TesseraError('SIGNATURE_INVALID', `Invalid DSSE envelope: ${problem}.`);
}
