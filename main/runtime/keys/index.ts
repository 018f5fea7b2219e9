/**
 * Ed25519 signing keys and their files (DESIGN.md "Formats"): node:crypto keys, PKCS#8 PEM private key files
 * (mode 0600) with an SPKI PEM `.pub` beside them, and DSSE envelopes signed and verified with them.
 *
 * A key's id is the cid of its raw 32-byte public key. Private key material never leaves this module except
 * through {@link writePrivateKey}: a {@link SigningKey} holds it in a closure, not in a property, so logging or
 * serializing a key cannot leak it.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cidOfBytes } from '../../common/cid.js';
import { pae, toBase64, verifyEnvelopeWith } from '../../common/dsse.js';
import type { DsseEnvelope, PublicKeyLookup, VerifiedEnvelope } from '../../common/dsse.js';
import { TesseraError } from '../../common/errors.js';

/** An Ed25519 key able to sign. Private key material is not reachable from this object. */
export interface SigningKey {
  /** cid of the raw public key (`b3:…`). */
  readonly keyid: string;
  /** The raw 32-byte public key; a fresh copy on every read. */
  readonly publicKeyRaw: Uint8Array;
  /** SPKI PEM (`-----BEGIN PUBLIC KEY-----`), what `openssl pkeyutl -verify -pubin` takes. */
  readonly publicKeyPem: string;
  /** The 64-byte Ed25519 signature of `message` (pure Ed25519, no prehash: deterministic). */
  sign(message: Uint8Array): Uint8Array;
}

export interface PublicKeyInfo {
  keyid: string;
  publicKeyRaw: Uint8Array;
  publicKeyPem: string;
}

export interface WriteKeyOptions {
  /** Replace an existing private key file. Default false: an existing file is an error, never clobbered. */
  overwrite?: boolean;
}

/** Key files are small; anything bigger is not a key and is not read into memory. */
const MAX_KEY_FILE_BYTES = 64 * 1024;
/** DER prefix of an Ed25519 SPKI: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (33 bytes) }. */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/** Private halves of the keys this module made, reachable only from here (for {@link writePrivateKey}). */
const privateKeys = new WeakMap<SigningKey, KeyObject>();

/** A new random Ed25519 key pair. */
export function generateKeyPair(): SigningKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  return signingKeyFrom(privateKey);
}

/**
 * The keyid of a raw Ed25519 public key: its cid (DESIGN.md "Formats").
 * @throws TesseraError VALIDATION_FAILED unless the key is exactly 32 bytes.
 */
export function keyidOf(publicKeyRaw: Uint8Array): string {
  if (publicKeyRaw.length !== 32) {
    throw new TesseraError('VALIDATION_FAILED', `An Ed25519 public key is 32 bytes, not ${publicKeyRaw.length}.`);
  }
  return cidOfBytes(publicKeyRaw);
}

/**
 * Writes `key` as an unencrypted PKCS#8 PEM file with mode 0600, and its SPKI PEM public key to `<path>.pub`
 * with mode 0644. Each file is written atomically (temporary file, fsync, then link or rename), so a crash
 * leaves either no file or a complete one. The parent folder is created (mode 0700) if missing.
 *
 * Neither file is replaced unless `options.overwrite`: an existing `<path>.pub` may be another key's public half.
 *
 * @throws TesseraError KEY_FILE_INVALID when `path` or `<path>.pub` exists (without `overwrite`), `path` is a
 *   folder, or a file cannot be written.
 * @throws TesseraError VALIDATION_FAILED when `key` was not made by this module.
 */
export function writePrivateKey(path: string, key: SigningKey, options: WriteKeyOptions = {}): void {
  const privateKey = privateKeys.get(key);
  if (privateKey === undefined) {
    throw new TesseraError('VALIDATION_FAILED', 'Only keys from generateKeyPair() or readPrivateKey() can be written.');
  }
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new TesseraError('KEY_FILE_INVALID', `Cannot create the folder for the key file ${path}: ${(cause as Error).message}`, { cause });
  }
  const overwrite = options.overwrite === true;
  if (isFolder(path)) throw keyFileError(path, 'is a folder; give the path of the key file to write');
  // The .pub of another key would be replaced by this one's: refused like the private key itself.
  if (!overwrite && existsSync(`${path}.pub`)) throw keyFileError(`${path}.pub`, `the file already exists; ${REFUSE_REPLACE}`);
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  writeKeyFileAtomic(path, pem, { mode: 0o600, overwrite });
  writeKeyFileAtomic(`${path}.pub`, key.publicKeyPem, { mode: 0o644, overwrite: true });
}

/**
 * The PKCS#8 PEM of a key this module made, for a store that keeps keys in a database row rather than a file (the
 * cloud's tenant keys). @throws TesseraError VALIDATION_FAILED when `key` was not made by this module.
 */
export function privateKeyPem(key: SigningKey): string {
  const privateKey = privateKeys.get(key);
  if (privateKey === undefined) throw new TesseraError('VALIDATION_FAILED', 'Only keys from generateKeyPair() or readPrivateKey() can be exported.');
  return privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** The signing key of PKCS#8 PEM text ({@link privateKeyPem}). @throws TesseraError KEY_FILE_INVALID for anything else. */
export function signingKeyFromPem(pem: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new TesseraError('KEY_FILE_INVALID', `The PEM text is not a valid private key (${(cause as Error).message}).`, { cause });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TesseraError('KEY_FILE_INVALID', `The PEM text holds ${describeKeyType(privateKey)} key; Tessera signs with Ed25519 only.`);
  return signingKeyFrom(privateKey);
}

/**
 * Reads an Ed25519 private key written by {@link writePrivateKey} (or `openssl genpkey -algorithm ed25519`).
 *
 * On POSIX, a file that group or others can access is refused, not repaired: someone may already have copied
 * it, and the owner should decide whether to rotate the key.
 *
 * @throws TesseraError KEY_FILE_INVALID naming the file and the problem: missing, unreadable, too permissive,
 *   not PEM, encrypted, a public key, or a key of another type (RSA, EC…).
 */
export function readPrivateKey(path: string): SigningKey {
  const text = readKeyFile(path, 'private key');
  // Checked before the file mode: a public key is normally world-readable, and the fix is another file, not chmod.
  if (pemLabel(text) === 'PUBLIC KEY') throw keyFileError(path, `this is a public key; give the private key file${path.endsWith('.pub') ? ` (${path.slice(0, -4)})` : ''} instead`);
  if (process.platform !== 'win32') {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw keyFileError(path, `the private key file is accessible by other users (mode ${mode.toString(8).padStart(4, '0')}); run "chmod 600 ${path}" and consider rotating the key`);
    }
  }
  const label = pemLabel(text);
  if (label === undefined) throw keyFileError(path, 'not a PEM file (expected "-----BEGIN PRIVATE KEY-----")');
  if (label === 'ENCRYPTED PRIVATE KEY') throw keyFileError(path, 'the private key is encrypted; Tessera needs an unencrypted PKCS#8 key in a 0600 file');
  if (label !== 'PRIVATE KEY') throw keyFileError(path, `a "${label}" PEM block is not an Ed25519 PKCS#8 private key`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: text, format: 'pem' });
  } catch (cause) {
    throw keyFileError(path, `the PEM content is not a valid private key (${(cause as Error).message})`, cause);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw keyFileError(path, `it holds ${describeKeyType(privateKey)} key; Tessera signs with Ed25519 only`);
  }
  return signingKeyFrom(privateKey);
}

/**
 * Reads an Ed25519 public key from SPKI PEM text (anything starting with `-----BEGIN`) or from a file path.
 * `publicKeyPem` in the result is re-encoded, so equal keys give equal strings whatever the input's line ends.
 *
 * @throws TesseraError KEY_FILE_INVALID naming the file (or "the PEM text") and the problem; a private key is
 *   refused rather than silently reduced to its public half.
 */
export function readPublicKey(pemOrPath: string): PublicKeyInfo {
  const isPem = pemOrPath.trimStart().startsWith('-----BEGIN');
  const source = isPem ? undefined : pemOrPath;
  const text = isPem ? pemOrPath : readKeyFile(pemOrPath, 'public key');
  const label = pemLabel(text);
  if (label === undefined) throw keyFileError(source, 'not a PEM public key (expected "-----BEGIN PUBLIC KEY-----")');
  if (label.endsWith('PRIVATE KEY')) throw keyFileError(source, 'this is a private key; give the public key (the .pub file) instead');
  if (label !== 'PUBLIC KEY') throw keyFileError(source, `a "${label}" PEM block is not an SPKI public key`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: text, format: 'pem' });
  } catch (cause) {
    throw keyFileError(source, `the PEM content is not a valid public key (${(cause as Error).message})`, cause);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw keyFileError(source, `it holds ${describeKeyType(publicKey)} key; Tessera accepts Ed25519 keys only`);
  }
  const publicKeyRaw = rawPublicKey(publicKey);
  return { keyid: keyidOf(publicKeyRaw), publicKeyRaw, publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }) as string };
}

function requirePayloadType(payloadType: string): void {
  if (typeof payloadType !== 'string' || payloadType === '') throw new TesseraError('VALIDATION_FAILED', 'A DSSE payload type must be a non-empty string.');
}

/**
 * A DSSE envelope of `payload` signed by each of `keys`, in order (standard base64, keyid = cid of the key).
 * @throws TesseraError VALIDATION_FAILED for an empty payload type or no keys.
 */
export function signEnvelope(payloadType: string, payload: Uint8Array, keys: readonly SigningKey[]): DsseEnvelope {
  requirePayloadType(payloadType);
  if (keys.length === 0) throw new TesseraError('VALIDATION_FAILED', 'Signing an envelope needs at least one key.');
  const message = pae(payloadType, payload);
  return {
    payloadType,
    payload: toBase64(payload),
    signatures: keys.map((key) => ({ keyid: key.keyid, sig: toBase64(key.sign(message)) })),
  };
}

/**
 * Verifies with node:crypto (OpenSSL). Same contract and errors as `verifyEnvelopeWith` in common/dsse.ts.
 * @throws TesseraError SIGNATURE_INVALID or KEY_UNKNOWN.
 */
export function verifyEnvelope(envelope: DsseEnvelope, lookup: PublicKeyLookup): VerifiedEnvelope {
  return verifyEnvelopeWith(envelope, lookup, verifyEd25519);
}

/** Most imported public keys kept by {@link verifyEd25519}; the cache is emptied when it is full. */
const PUBLIC_KEY_CACHE_MAX = 256;
const publicKeys = new Map<string, KeyObject>();

/** The node:crypto KeyObject of a raw Ed25519 public key, cached by key (importing one costs more than a verify). */
function publicKeyObject(publicKeyRaw: Uint8Array): KeyObject {
  const id = Buffer.from(publicKeyRaw.buffer, publicKeyRaw.byteOffset, publicKeyRaw.byteLength).toString('hex');
  let key = publicKeys.get(id);
  if (!key) {
    const der = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
    der.set(ED25519_SPKI_PREFIX);
    der.set(publicKeyRaw, ED25519_SPKI_PREFIX.length);
    key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
    if (publicKeys.size >= PUBLIC_KEY_CACHE_MAX) publicKeys.clear();
    publicKeys.set(id, key);
  }
  return key;
}

/** Ed25519 verification with node:crypto. False, never an exception, for malformed keys or signatures. */
export function verifyEd25519(sig: Uint8Array, message: Uint8Array, publicKeyRaw: Uint8Array): boolean {
  if (sig.length !== 64 || publicKeyRaw.length !== 32) return false;
  try {
    return nodeVerify(null, message, publicKeyObject(publicKeyRaw), sig);
  } catch {
    return false;
  }
}

/**
 * Writes a small text file atomically: a temporary file in the same folder is written, given `mode` and
 * fsynced, then linked into place (refusing an existing file) or, with `overwrite`, renamed over it; the folder
 * is then fsynced where the platform allows. Shared with the trust store, which keeps key files too.
 *
 * @throws TesseraError KEY_FILE_INVALID naming the file: it exists (without `overwrite`) or cannot be written.
 */
export function writeKeyFileAtomic(path: string, text: string, options: { mode: number; overwrite: boolean }): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', options.mode);
    try {
      // The mode given to open() is reduced by the umask; key files need exactly this mode.
      if (process.platform !== 'win32') fchmodSync(fd, options.mode);
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.overwrite) renameSync(tmp, path);
    else placeWithoutClobbering(tmp, path);
  } catch (cause) {
    if (cause instanceof TesseraError) throw cause;
    throw keyFileError(path, `cannot write it: ${(cause as Error).message}`, cause);
  } finally {
    rmSync(tmp, { force: true });
  }
  syncFolder(dir);
}

const REFUSE_REPLACE = 'refusing to replace a key (choose another path, or replace it on purpose: tessera keygen --force)';

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function placeWithoutClobbering(tmp: string, path: string): void {
  try {
    // link() fails with EEXIST instead of replacing: no window in which another writer's file is lost.
    linkSync(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw keyFileError(path, `the file already exists; ${REFUSE_REPLACE}`);
    // Some filesystems (FAT, some network mounts) have no hard links: check, then rename.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    if (existsSync(path)) throw keyFileError(path, `the file already exists; ${REFUSE_REPLACE}`);
    renameSync(tmp, path);
  }
}

function syncFolder(dir: string): void {
  // Makes the new directory entry durable on POSIX; Windows cannot open folders this way and needs no help.
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* best effort */
  }
}

function signingKeyFrom(privateKey: KeyObject): SigningKey {
  const publicKey = createPublicKey(privateKey);
  const raw = rawPublicKey(publicKey);
  const key: SigningKey = Object.freeze({
    keyid: keyidOf(raw),
    get publicKeyRaw() {
      return raw.slice();
    },
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }) as string,
    sign(message: Uint8Array): Uint8Array {
      return new Uint8Array(nodeSign(null, message, privateKey));
    },
  });
  privateKeys.set(key, privateKey);
  return key;
}

function rawPublicKey(publicKey: KeyObject): Uint8Array {
  const { x } = publicKey.export({ format: 'jwk' });
  if (typeof x !== 'string') throw new TesseraError('KEY_FILE_INVALID', 'The key has no Ed25519 public point.');
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

function readKeyFile(path: string, what: string): string {
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw keyFileError(path, `not a file; a ${what} file is expected`);
    size = stat.size;
  } catch (cause) {
    if (cause instanceof TesseraError) throw cause;
    const code = (cause as NodeJS.ErrnoException).code;
    throw keyFileError(path, code === 'ENOENT' ? `no such file; a ${what} file is expected` : `cannot read it: ${(cause as Error).message}`, cause);
  }
  if (size > MAX_KEY_FILE_BYTES) throw keyFileError(path, `${size} bytes is too large for a ${what} file`);
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw keyFileError(path, `cannot read it: ${(cause as Error).message}`, cause);
  }
}

/** The label of the first PEM block (`PRIVATE KEY`, `PUBLIC KEY`, `RSA PRIVATE KEY`…), if the text has one. */
function pemLabel(text: string): string | undefined {
  return /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
}

function describeKeyType(key: KeyObject): string {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve ? `an EC (${curve})` : 'an EC';
  }
  return type === undefined ? 'an unknown' : /^[aeiou]/.test(type) ? `an ${type.toUpperCase()}` : `a ${type.toUpperCase()}`;
}

/** `file` undefined means the key came as PEM text rather than from a file. */
function keyFileError(file: string | undefined, problem: string, cause?: unknown): TesseraError {
  const subject = file === undefined ? 'The public key PEM text' : `Key file ${file}`;
  return new TesseraError('KEY_FILE_INVALID', `${subject}: ${problem}.`, { details: { file }, ...(cause === undefined ? {} : { cause }) });
}

/** Signs on another thread: same signatures as {@link SigningKey.sign}, without using the caller's thread for them. */
export interface AsyncSigner {
  /** The key's 64-byte Ed25519 signature of `message`. */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** Ends the worker; later calls sign on the caller's thread. */
  close(): void;
  /** True while a worker thread does the signing (false once it failed or was closed, or if none could start). */
  readonly threaded: boolean;
}

const SIGNER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { sign } = require('node:crypto');
const key = workerData.key;
parentPort.on('message', ({ id, messages }) => {
  const signatures = messages.map((m) => sign(null, m, key));
  parentPort.postMessage({ id, signatures });
});
`;

/**
 * An {@link AsyncSigner} for `key` on a worker thread (the key's KeyObject is cloned to it; it never leaves the
 * process). The messages asked for in one turn of the event loop go to the worker as one batch: the receipt
 * pipeline signs five envelopes per request, ~30 µs each here, which no longer run on the thread serving HTTP.
 * Falls back to signing on the caller's thread when no worker can start, or after one failed (the calls in flight
 * then are signed there too); `close` ends the worker.
 */
export function createWorkerSigner(key: SigningKey): AsyncSigner {
  const privateKey = privateKeys.get(key);
  let worker: Worker | undefined;
  if (privateKey !== undefined) {
    try {
      // execArgv []: plain CommonJS whatever flags started this process (--input-type=module would make it ESM).
      worker = new Worker(SIGNER_SOURCE, { eval: true, execArgv: [], workerData: { key: privateKey } });
      worker.unref();
    } catch {
      worker = undefined;
    }
  }
  let batch: Array<{ message: Uint8Array; resolve: (sig: Uint8Array) => void; reject: (e: unknown) => void }> = [];
  const inFlight = new Map<number, typeof batch>();
  let nextId = 0;
  // Signing here is always right (deterministic Ed25519: the same bytes as the worker's).
  const signHere = (items: typeof batch): void => {
    for (const item of items) {
      try {
        item.resolve(key.sign(item.message));
      } catch (err) {
        item.reject(err);
      }
    }
  };
  const retire = (): void => {
    const w = worker;
    worker = undefined;
    if (w) void w.terminate();
    for (const items of inFlight.values()) signHere(items);
    inFlight.clear();
  };
  if (worker) {
    worker.on('message', ({ id, signatures }: { id: number; signatures: Uint8Array[] }) => {
      const items = inFlight.get(id);
      if (!items) return;
      inFlight.delete(id);
      items.forEach((item, i) => item.resolve(new Uint8Array(signatures[i]!)));
    });
    worker.on('error', retire);
    worker.on('exit', retire);
  }
  const flush = (): void => {
    const items = batch;
    batch = [];
    if (!worker) return signHere(items);
    const id = nextId++;
    inFlight.set(id, items);
    worker.postMessage({ id, messages: items.map((i) => i.message) });
  };
  return {
    sign(message) {
      return new Promise((resolve, reject) => {
        if (batch.push({ message, resolve, reject }) === 1) queueMicrotask(flush);
      });
    },
    close: retire,
    get threaded() {
      return worker !== undefined;
    },
  };
}

/** {@link signEnvelope} for one key, signed by `signer` (the same envelope, byte for byte). */
export async function signEnvelopeWith(payloadType: string, payload: Uint8Array, key: SigningKey, signer: AsyncSigner): Promise<DsseEnvelope> {
  requirePayloadType(payloadType);
  const signature = await signer.sign(pae(payloadType, payload));
  return { payloadType, payload: toBase64(payload), signatures: [{ keyid: key.keyid, sig: toBase64(signature) }] };
}
