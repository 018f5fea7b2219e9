/**
 * Entitlement tokens: what a traveller holds as a QR code and staff verify offline (issue 14 §5; DESIGN.md
 * "Formats → Entitlement token"; the format is fixed in notes/ISSUE14-PLAN.md). Modelled on the EU Digital
 * COVID Certificate:
 *
 * ```
 * code = "TS1:" + base45(zlib(COSE_Sign1))                     // RFC 9285 base45: the QR's alphanumeric mode
 * COSE_Sign1 = tag 18 [bstr(CBOR {1: -8, 4: kid}), {}, bstr(CBOR claims), bstr(64)]   // RFC 9052 §4.2
 * signature = Ed25519 over CBOR ["Signature1", protected, h'', payload]                 // RFC 9052 §4.4
 * ```
 *
 * Pure module (no node: imports): shared by the runtime and the renderer. Signing and verification are passed
 * in (node:crypto on the host, @noble/ed25519 in the renderer), so both sides read the same bytes the same way.
 * {@link decodeToken} never throws: any input — random, truncated, a zip bomb, a CBOR bomb — is a DAMAGED_CODE
 * reason.
 */
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { unzlibSync, zlibSync } from 'fflate';

export const TOKEN_PREFIX = 'TS1:';
/** Longest code string read; a real one is ≤ 300 characters. */
export const MAX_CODE_LENGTH = 2048;
/** Largest decompressed COSE_Sign1 accepted (a zip bomb stops here). */
export const MAX_COSE_BYTES = 2048;
/** Deepest CBOR nesting accepted (the token's own is 3: tag → array → claims map → venues array). */
export const MAX_CBOR_DEPTH = 4;
/** Most venues a token may name; longest venue id or currency. */
export const MAX_VENUES = 32;
export const MAX_TEXT_LENGTH = 128;
/** Clock skew tolerated on `nbf` and `exp` (seconds). */
export const CLOCK_SKEW_S = 120;

export type EntitlementKind = 'single_use' | 'multi_use' | 'time_pass' | 'stored_value';
const KIND_CODES: Record<EntitlementKind, number> = { single_use: 1, multi_use: 2, time_pass: 3, stored_value: 4 };
const KINDS_BY_CODE: Record<number, EntitlementKind> = { 1: 'single_use', 2: 'multi_use', 3: 'time_pass', 4: 'stored_value' };

/** What a token says. Times in epoch seconds. */
export interface TokenClaims {
  /** 12 random bytes, as 24 lowercase hex digits. */
  serial: string;
  /** The ProductDef cid, `b3:<64 hex>`. */
  product_cid: string;
  kind: EntitlementKind;
  /** multi_use: uses; stored_value: minor units; time_pass: uses per venue (absent: unlimited); single_use: absent. */
  rights?: number;
  /** stored_value only (ISO 4217). */
  currency?: string;
  nbf: number;
  exp: number;
  /** Venue ids that accept it; empty: any. */
  venues: string[];
}

export interface DecodedToken {
  claims: TokenClaims;
  /** The issuer key id: the first 8 bytes of the issuer keyid's digest, as 16 hex digits. */
  kid: string;
  /** What the signature covers (the Sig_structure bytes) and the signature itself. */
  signed: Uint8Array;
  signature: Uint8Array;
}

export type DecodeResult = { ok: true; token: DecodedToken } | { ok: false; reason: 'DAMAGED_CODE'; problem: string };

/** An issuer key as the verifier's lookup knows it (by kid). */
export type IssuerLookup = (kid: string) =>
  | { state: 'trusted'; keyid: string; publicKeyRaw: Uint8Array; name?: string }
  | { state: 'revoked'; keyid: string; reason: string }
  | { state: 'unknown' };

export type VerifyResult =
  | { ok: true; token: DecodedToken; issuer: { keyid: string; name?: string } }
  | { ok: false; reason: 'DAMAGED_CODE' | 'UNKNOWN_ISSUER' | 'REVOKED'; problem: string; token?: DecodedToken };

// ---------------------------------------------------------------- base45 (RFC 9285)

const B45 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
const B45_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < B45.length; i++) B45_VALUE[B45.charCodeAt(i)] = i;

/** RFC 9285 §4: two bytes → three characters, a last single byte → two. */
export function base45Encode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    let n = bytes[i]! * 256 + bytes[i + 1]!;
    const c = n % 45;
    n = (n - c) / 45;
    out += B45[c]! + B45[n % 45]! + B45[(n - (n % 45)) / 45]!;
  }
  if (bytes.length % 2 === 1) {
    const n = bytes[bytes.length - 1]!;
    out += B45[n % 45]! + B45[(n - (n % 45)) / 45]!;
  }
  return out;
}

/**
 * RFC 9285 §4.2 strict decoding: undefined for a character outside the alphabet, a length ≡ 1 (mod 3), or a
 * group whose value overflows (> 65535 for three characters, > 255 for a last pair).
 */
export function base45Decode(text: string): Uint8Array | undefined {
  const n = text.length;
  if (n % 3 === 1) return undefined;
  const out = new Uint8Array(Math.floor(n / 3) * 2 + (n % 3 === 2 ? 1 : 0));
  const value = (i: number): number => {
    const code = text.charCodeAt(i);
    return code < 128 ? B45_VALUE[code]! : -1;
  };
  let o = 0;
  let i = 0;
  for (; i + 3 <= n; i += 3) {
    const c = value(i);
    const d = value(i + 1);
    const e = value(i + 2);
    if ((c | d | e) < 0) return undefined;
    const v = c + d * 45 + e * 2025;
    if (v > 0xffff) return undefined;
    out[o++] = v >> 8;
    out[o++] = v & 0xff;
  }
  if (i < n) {
    const c = value(i);
    const d = value(i + 1);
    if ((c | d) < 0) return undefined;
    const v = c + d * 45;
    if (v > 0xff) return undefined;
    out[o] = v;
  }
  return out;
}

// ---------------------------------------------------------------- helpers

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += HEX[b]!;
  return s;
}

function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** The token kid of a keyid (`b3:<64 hex>`): its first 8 digest bytes, as hex. */
export function kidOfKeyid(keyid: string): string {
  const m = /^b3:([0-9a-f]{64})$/.exec(keyid);
  if (!m) throw new Error(`not a keyid: ${keyid}`);
  return m[1]!.slice(0, 16);
}

/** RFC 1950 §8 Adler-32. */
function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (const byte of bytes) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** CBOR head of a byte string of `length` (major type 2), shortest form. */
function bstrHead(length: number): number[] {
  if (length < 24) return [0x40 | length];
  if (length < 0x100) return [0x58, length];
  return [0x59, length >> 8, length & 0xff]; // tokens are bounded far below 64 KiB
}

const SIGNATURE1 = [0x84, 0x6a, ...Array.from('Signature1', (c) => c.charCodeAt(0))];

/**
 * RFC 9052 §4.4 `Sig_structure = ["Signature1", protected, external_aad = h'', payload]`, written directly (the
 * same bytes cborg writes; checked by a test) because it is built on every verification.
 */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  const head1 = bstrHead(protectedBytes.length);
  const head2 = bstrHead(payload.length);
  const out = new Uint8Array(SIGNATURE1.length + head1.length + protectedBytes.length + 1 + head2.length + payload.length);
  let o = 0;
  out.set(SIGNATURE1, o);
  o += SIGNATURE1.length;
  out.set(head1, o);
  o += head1.length;
  out.set(protectedBytes, o);
  o += protectedBytes.length;
  out[o++] = 0x40;
  out.set(head2, o);
  o += head2.length;
  out.set(payload, o);
  return out;
}

/**
 * Walks CBOR headers iteratively (no recursion, no allocation) and refuses what the token never holds: nesting
 * deeper than {@link MAX_CBOR_DEPTH}, indefinite lengths, lengths past the end of the input, more items than
 * bytes. Run before cborg so a hostile payload cannot make it recurse deeply or allocate large arrays.
 */
function cborShapeProblem(bytes: Uint8Array): string | undefined {
  // Stack of items still expected at each open level.
  const pending: number[] = [1];
  let pos = 0;
  while (pending.length > 0) {
    if (pending[pending.length - 1] === 0) {
      pending.pop();
      continue;
    }
    pending[pending.length - 1]!--;
    if (pos >= bytes.length) return 'the CBOR ends early';
    const ib = bytes[pos++]!;
    const major = ib >> 5;
    const info = ib & 0x1f;
    let arg: number;
    if (info < 24) arg = info;
    else if (info <= 27) {
      const size = 1 << (info - 24);
      if (pos + size > bytes.length) return 'the CBOR ends early';
      arg = 0;
      for (let i = 0; i < size; i++) arg = arg * 256 + bytes[pos + i]!;
      pos += size;
    } else return 'the CBOR uses an indefinite length or a reserved value';
    if (major === 2 || major === 3) {
      if (arg > bytes.length - pos) return 'a CBOR string is longer than the input';
      pos += arg;
    } else if (major === 4 || major === 5) {
      const items = major === 5 ? arg * 2 : arg;
      if (items > bytes.length - pos) return 'a CBOR container claims more items than bytes';
      if (pending.length > MAX_CBOR_DEPTH) return 'the CBOR is nested too deeply';
      pending.push(items);
    } else if (major === 6) {
      if (pending.length > MAX_CBOR_DEPTH) return 'the CBOR is nested too deeply';
      pending.push(1);
    } else if (major === 7 && info >= 25) return 'the CBOR holds a float';
  }
  if (pos !== bytes.length) return 'bytes follow the CBOR item';
  return undefined;
}

function cbor(bytes: Uint8Array): unknown {
  const problem = cborShapeProblem(bytes);
  if (problem) throw new Error(problem);
  return cborDecode(bytes, { useMaps: true, strict: true, rejectDuplicateMapKeys: true, allowIndefinite: false, allowUndefined: false, allowBigInt: false, tags: Object.assign([], { 18: (decode: () => unknown) => ({ cose: decode() }) }) });
}

const isUint = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isText = (x: unknown, max = MAX_TEXT_LENGTH): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;

// ---------------------------------------------------------------- encode

export interface EncodeInput extends TokenClaims {
  /** The issuer key's keyid (`b3:<64 hex>`); the token carries its {@link kidOfKeyid}. */
  issuer_keyid: string;
}

/**
 * The code string for `claims`, signed with `sign` (message → 64-byte Ed25519 signature).
 * @throws Error when a claim is out of range (the issuer's bug, never a traveller's input).
 */
export function encodeToken(input: EncodeInput, sign: (message: Uint8Array) => Uint8Array): string {
  const serial = fromHex(input.serial);
  if (!serial || serial.length !== 12) throw new Error('serial must be 12 bytes of hex');
  const product = /^b3:([0-9a-f]{64})$/.exec(input.product_cid);
  if (!product) throw new Error('product_cid must be a b3 cid');
  const claims = new Map<number, unknown>([
    [1, serial],
    [2, fromHex(product[1]!)!],
    [3, KIND_CODES[input.kind]],
  ]);
  if (input.rights !== undefined) {
    if (!isUint(input.rights)) throw new Error('rights must be a non-negative integer');
    claims.set(4, input.rights);
  }
  if (input.currency !== undefined) claims.set(5, input.currency);
  if (!isUint(input.nbf) || !isUint(input.exp)) throw new Error('nbf and exp are epoch seconds');
  claims.set(6, input.nbf);
  claims.set(7, input.exp);
  if (input.venues.length > MAX_VENUES || !input.venues.every((v) => isText(v))) throw new Error('too many venues or a bad venue id');
  claims.set(8, input.venues);
  const payload = cborEncode(claims);
  const protectedBytes = cborEncode(new Map<number, unknown>([[1, -8], [4, fromHex(kidOfKeyid(input.issuer_keyid))!]]));
  const signature = sign(sigStructure(protectedBytes, payload));
  if (signature.length !== 64) throw new Error('an Ed25519 signature is 64 bytes');
  const array = cborEncode([protectedBytes, new Map(), payload, signature]);
  const cose = new Uint8Array(array.length + 1);
  cose[0] = 0xd2; // tag 18: COSE_Sign1
  cose.set(array, 1);
  return TOKEN_PREFIX + base45Encode(zlibSync(cose, { level: 9 }));
}

// ---------------------------------------------------------------- decode

const damaged = (problem: string): DecodeResult => ({ ok: false, reason: 'DAMAGED_CODE', problem });

/** Parses a code string. Never throws: anything that is not a well-formed token is DAMAGED_CODE with a reason. */
export function decodeToken(code: unknown): DecodeResult {
  try {
    if (typeof code !== 'string') return damaged('the code is not text');
    const text = code.trim();
    if (text.length > MAX_CODE_LENGTH) return damaged('the code is too long');
    if (!text.startsWith(TOKEN_PREFIX)) return damaged(`the code does not start with ${TOKEN_PREFIX}`);
    const compressed = base45Decode(text.slice(TOKEN_PREFIX.length));
    if (!compressed) return damaged('the code is not base45');
    let cose: Uint8Array;
    try {
      // A fixed buffer one byte larger than the limit: inflating stops growing there, so a full buffer means "too big".
      cose = unzlibSync(compressed, { out: new Uint8Array(MAX_COSE_BYTES + 1) });
    } catch {
      return damaged('the code does not decompress');
    }
    if (cose.length > MAX_COSE_BYTES) return damaged('the code decompresses to too much data');
    // fflate does not check the zlib trailer (RFC 1950 Adler-32): a changed trailer must not pass as the same code.
    if (compressed.length < 6 || adler32(cose) !== (((compressed[compressed.length - 4]! << 24) | (compressed[compressed.length - 3]! << 16) | (compressed[compressed.length - 2]! << 8) | compressed[compressed.length - 1]!) >>> 0)) {
      return damaged('the code fails its checksum');
    }
    let outer: unknown;
    try {
      outer = cbor(cose);
    } catch (err) {
      return damaged(`the code is not valid CBOR (${(err as Error).message})`);
    }
    if (cose[0] !== 0xd2 || typeof outer !== 'object' || outer === null || !('cose' in outer)) return damaged('the code is not a COSE_Sign1');
    const parts = (outer as { cose: unknown }).cose;
    if (!Array.isArray(parts) || parts.length !== 4) return damaged('the COSE_Sign1 does not have four parts');
    const [protectedBytes, unprotected, payload, signature] = parts as unknown[];
    if (!(protectedBytes instanceof Uint8Array) || !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array)) return damaged('a COSE_Sign1 part has the wrong type');
    if (!(unprotected instanceof Map)) return damaged('the unprotected header is not a map');
    if (signature.length !== 64) return damaged('the signature is not 64 bytes');
    let header: unknown;
    try {
      header = cbor(protectedBytes);
    } catch {
      return damaged('the protected header is not valid CBOR');
    }
    if (!(header instanceof Map) || header.get(1) !== -8) return damaged('the algorithm is not EdDSA');
    const kid = header.get(4);
    if (!(kid instanceof Uint8Array) || kid.length !== 8) return damaged('the issuer key id is not 8 bytes');
    let body: unknown;
    try {
      body = cbor(payload);
    } catch {
      return damaged('the claims are not valid CBOR');
    }
    const claims = readClaims(body);
    if (typeof claims === 'string') return damaged(claims);
    return { ok: true, token: { claims, kid: toHex(kid), signed: sigStructure(protectedBytes, payload), signature } };
  } catch (err) {
    // Belt and braces: the contract is "never throws".
    return damaged(`the code could not be read (${(err as Error).message})`);
  }
}

function readClaims(body: unknown): TokenClaims | string {
  if (!(body instanceof Map)) return 'the claims are not a map';
  for (const key of body.keys()) if (!isUint(key) || key < 1 || key > 8) return 'the claims hold an unknown key';
  const serial = body.get(1);
  const product = body.get(2);
  const kind = KINDS_BY_CODE[body.get(3) as number];
  const rights = body.get(4);
  const currency = body.get(5);
  const nbf = body.get(6);
  const exp = body.get(7);
  const venues = body.get(8);
  if (!(serial instanceof Uint8Array) || serial.length !== 12) return 'the serial is not 12 bytes';
  if (!(product instanceof Uint8Array) || product.length !== 32) return 'the product is not a 32-byte digest';
  if (!kind) return 'the kind is unknown';
  if (rights !== undefined && !isUint(rights)) return 'the rights are not a count';
  if (kind === 'multi_use' || kind === 'stored_value') {
    if (rights === undefined) return `a ${kind} token must carry its rights`;
  } else if (kind === 'single_use' && rights !== undefined) return 'a single_use token carries no rights';
  if (kind === 'stored_value' ? !(isText(currency, 3) && /^[A-Z]{3}$/.test(currency)) : currency !== undefined) return 'the currency is missing or not allowed';
  if (!isUint(nbf) || !isUint(exp) || exp < nbf) return 'the validity window is malformed';
  if (!Array.isArray(venues) || venues.length > MAX_VENUES || !venues.every((v) => isText(v))) return 'the venues are malformed';
  return {
    serial: toHex(serial),
    product_cid: `b3:${toHex(product)}`,
    kind,
    ...(rights !== undefined ? { rights: rights as number } : {}),
    ...(currency !== undefined ? { currency: currency as string } : {}),
    nbf,
    exp,
    venues: venues as string[],
  };
}

// ---------------------------------------------------------------- verify

/**
 * Decodes `code`, finds its issuer by kid and checks the signature. Checks of time, venue and rights are the
 * caller's (they depend on the device clock and its redemption ledger). Never throws.
 */
export function verifyToken(code: unknown, lookup: IssuerLookup, verify: (sig: Uint8Array, message: Uint8Array, publicKeyRaw: Uint8Array) => boolean): VerifyResult {
  const decoded = decodeToken(code);
  if (!decoded.ok) return decoded;
  const { token } = decoded;
  const issuer = lookup(token.kid);
  if (issuer.state === 'unknown') return { ok: false, reason: 'UNKNOWN_ISSUER', problem: `no trusted issuer has key id ${token.kid}`, token };
  if (issuer.state === 'revoked') return { ok: false, reason: 'REVOKED', problem: `the issuer key ${issuer.keyid} is revoked: ${issuer.reason}`, token };
  let valid = false;
  try {
    valid = verify(token.signature, token.signed, issuer.publicKeyRaw);
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, reason: 'DAMAGED_CODE', problem: 'the signature does not verify: the code was altered or forged', token };
  return { ok: true, token, issuer: { keyid: issuer.keyid, ...(issuer.name !== undefined ? { name: issuer.name } : {}) } };
}

/** Where `nowS` stands against the token's window, with {@link CLOCK_SKEW_S} tolerance either side. */
export function windowState(claims: Pick<TokenClaims, 'nbf' | 'exp'>, nowS: number): 'valid' | 'not_yet_valid' | 'expired' {
  if (nowS + CLOCK_SKEW_S < claims.nbf) return 'not_yet_valid';
  if (nowS - CLOCK_SKEW_S >= claims.exp) return 'expired';
  return 'valid';
}
