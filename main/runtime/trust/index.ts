/**
 * Trust roots (DESIGN.md "Formats", "Plugin"): the publisher public keys whose signatures Tessera accepts, and
 * the keys it no longer accepts.
 *
 * A trust folder holds one `<name>.pem` or `<name>.pub` (SPKI PEM, Ed25519: `tessera trust add` writes `.pem`,
 * `tessera keygen` writes the public half as `KEY.pub`, so either can be copied in) per trusted key and an optional
 * `revoked.json` (`{"revoked":[{"keyid","reason","revoked_at"}]}`); other files are ignored. The same key under
 * two names counts once (the first name, sorted). The folder is the source of
 * truth: every call re-reads it, so keys added or revoked by another process (or by hand) count at once.
 * A malformed `.pem` or `revoked.json` makes every call fail with KEY_FILE_INVALID naming the file: a trust
 * decision is never made from a folder that was only partly understood.
 *
 * Several folders (the built-ins in resources/trust, then the user's data folder) are searched in order with
 * {@link combineTrustStores}; a revocation in any of them wins over trust in any other.
 *
 * Writers: one process at a time per folder (the CLI or the runtime). Each file is replaced atomically, but two
 * concurrent `revoke` calls may each rewrite `revoked.json` from the same old version.
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isCid } from '../../common/cid.js';
import { fromBase64, pae, parseEnvelope } from '../../common/dsse.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError } from '../../common/errors.js';
import { readPublicKey, verifyEd25519, writeKeyFileAtomic } from '../keys/index.js';

export interface TrustedKey {
  keyid: string;
  /** The file name without `.pem` or `.pub`. */
  name: string;
  /** Absolute path of the key file. */
  file: string;
  /** `revoked` when this folder, or any folder combined with it, has revoked the key. */
  state: 'trusted' | 'revoked';
  revoked_reason?: string;
}

export interface Revocation {
  keyid: string;
  reason: string;
  /** ISO 8601 UTC. */
  revoked_at: string;
}

export type TrustLookup =
  | { state: 'trusted'; publicKeyRaw: Uint8Array; name: string }
  | { state: 'revoked'; reason: string }
  | { state: 'unknown' };

/** Read access to one or more trust folders. Every method re-reads the folders. */
export interface TrustView {
  /** Every key file, sorted by name; when combined, folder by folder in the order given. */
  list(): TrustedKey[];
  /** Every revocation, including of keys that have no `.pem` here. The first entry per keyid wins. */
  revocations(): Revocation[];
  /** Revoked beats trusted; a keyid is only ever looked up, never believed (keyid = cid of the key we hold). */
  lookup(keyid: string): TrustLookup;
}

/** One trust folder, writable. */
export interface TrustStore extends TrustView {
  /** Absolute path of the folder. */
  readonly dir: string;
  /**
   * Trusts an Ed25519 SPKI PEM public key by writing `<name>.pem`. Idempotent: adding a key already in the
   * folder (under any name) returns its existing entry. `name` is sanitized to `[A-Za-z0-9._-]`, at most 64
   * characters; it defaults to the first 16 hex digits of the keyid. Adding a revoked key writes the file but the
   * key stays revoked.
   * @throws TesseraError KEY_FILE_INVALID when the PEM is not an Ed25519 public key or the file cannot be written.
   * @throws TesseraError VALIDATION_FAILED when another key already has that name.
   */
  add(publicKeyPem: string, name?: string): TrustedKey;
  /**
   * Records a revocation in `revoked.json` (rewritten atomically). The key need not be in the folder: a key can
   * be revoked before it is ever seen. Revoking an already revoked key keeps the first reason and time.
   * @throws TesseraError VALIDATION_FAILED when `keyid` is not a cid or `reason` is empty.
   * @throws TesseraError KEY_FILE_INVALID when the existing `revoked.json` is malformed (it is not overwritten).
   */
  revoke(keyid: string, reason: string): void;
}

export interface TrustStoreOptions {
  /** Create the folder if missing. Default false: a missing folder is an error. */
  create?: boolean;
  /** Clock for `revoked_at` (ms since epoch); defaults to the wall clock. */
  now?: () => number;
}

export interface TrustedPayload {
  payload: Uint8Array;
  /** Authenticated by the signature: check it before parsing `payload`. */
  payloadType: string;
  keyid: string;
  /** The trusted key's name. */
  name: string;
}

export const REVOKED_FILE = 'revoked.json';
/** Key files a trust folder reads: what `trust add` writes (.pem) and what `keygen` writes beside a key (.pub). */
const KEY_FILE_SUFFIXES = ['.pem', '.pub'] as const;
const MAX_NAME_LENGTH = 64;
const MAX_REVOKED_FILE_BYTES = 4 * 1024 * 1024;

interface LoadedKey {
  keyid: string;
  name: string;
  file: string;
  publicKeyRaw: Uint8Array;
}

/**
 * Opens the trust folder `dir`, reading it once so a malformed folder is reported now rather than at the first
 * verification.
 * @throws TesseraError KEY_FILE_INVALID when the folder is missing (without `create`), unreadable, or holds a
 *   malformed `.pem` or `revoked.json`.
 */
export function openTrustStore(dir: string, options: TrustStoreOptions = {}): TrustStore {
  const root = resolve(dir);
  const now = options.now ?? Date.now;
  if (options.create) {
    try {
      mkdirSync(root, { recursive: true });
    } catch (cause) {
      throw new TesseraError('KEY_FILE_INVALID', `Cannot create the trust folder ${root}: ${(cause as Error).message}`, { cause });
    }
  }
  const revokedFile = join(root, REVOKED_FILE);
  const loadKeys = (): LoadedKey[] => readKeys(root);
  const loadRevocations = (): Revocation[] => readRevocations(revokedFile);
  loadKeys();
  loadRevocations();

  return {
    dir: root,
    ...viewOf(loadKeys, loadRevocations),
    add(publicKeyPem, name) {
      if (typeof publicKeyPem !== 'string' || !publicKeyPem.trimStart().startsWith('-----BEGIN')) {
        throw new TesseraError('KEY_FILE_INVALID', 'The key to trust must be given as PEM text ("-----BEGIN PUBLIC KEY-----").');
      }
      const info = readPublicKey(publicKeyPem);
      const keys = loadKeys();
      const existing = keys.find((k) => k.keyid === info.keyid);
      const revocationOf = (keyid: string) => revocationMap(loadRevocations()).get(keyid);
      if (existing) return withRevocation(existing, revocationOf(existing.keyid));
      const fileName = sanitizeName(name) ?? info.keyid.slice('b3:'.length, 'b3:'.length + 16);
      const file = join(root, `${fileName}.pem`);
      const clash = keys.find((k) => k.name === fileName);
      if (clash) {
        throw new TesseraError('VALIDATION_FAILED', `Another key (${clash.keyid}) is already trusted as "${fileName}" (${clash.file}); choose another name.`);
      }
      writeKeyFileAtomic(file, info.publicKeyPem, { mode: 0o644, overwrite: false });
      return withRevocation({ keyid: info.keyid, name: fileName, file }, revocationOf(info.keyid));
    },
    revoke(keyid, reason) {
      if (!isCid(keyid)) throw new TesseraError('VALIDATION_FAILED', `"${String(keyid)}" is not a keyid (expected b3: and 64 lowercase hex digits).`);
      if (typeof reason !== 'string' || reason.trim() === '') throw new TesseraError('VALIDATION_FAILED', 'A revocation needs a reason.');
      const revoked = loadRevocations();
      if (revoked.some((r) => r.keyid === keyid)) return;
      revoked.push({ keyid, reason: reason.trim(), revoked_at: new Date(now()).toISOString() });
      writeKeyFileAtomic(revokedFile, `${JSON.stringify({ revoked }, null, 2)}\n`, { mode: 0o644, overwrite: true });
    },
  };
}

/**
 * One view over several trust folders, searched in the order given (put the built-ins first). A key revoked in
 * any folder is revoked everywhere; otherwise the first folder that trusts a key provides it.
 */
export function combineTrustStores(...stores: TrustView[]): TrustView {
  const revocations = () => revocationMap(stores.flatMap((s) => s.revocations()));
  return {
    list() {
      const revoked = revocations();
      return stores.flatMap((s) => s.list()).map((k) => withRevocation(k, revoked.get(k.keyid)));
    },
    revocations() {
      return [...revocations().values()];
    },
    lookup(keyid) {
      const answers = stores.map((s) => s.lookup(keyid));
      return answers.find((a) => a.state === 'revoked') ?? answers.find((a) => a.state === 'trusted') ?? { state: 'unknown' };
    },
  };
}

/**
 * Verifies a DSSE envelope against a trust view: the payload is returned when at least one signature verifies
 * under a key that is trusted and not revoked. Signatures by revoked keys are never checked, so a valid
 * signature by a revoked key does not count, and an envelope whose only known signers are revoked fails with
 * KEY_REVOKED whether or not their signatures verify. (An envelope also signed by a trusted key is accepted: the
 * trusted signature alone proves who approved the payload.)
 *
 * @throws TesseraError when no signature is accepted, the first that applies of:
 *   SIGNATURE_INVALID when the envelope is malformed or has no signatures;
 *   KEY_REVOKED naming the revoked keyid(s) and the reason(s);
 *   SIGNATURE_INVALID when a trusted key's signature does not verify (tampered payload, type or signature);
 *   KEY_UNKNOWN naming the keyid(s) no folder knows.
 */
export function verifyTrusted(envelope: DsseEnvelope, store: TrustView): TrustedPayload {
  const env = parseEnvelope(envelope);
  if (env.signatures.length === 0) throw new TesseraError('SIGNATURE_INVALID', 'Invalid DSSE envelope: the envelope has no signatures.');
  const payload = fromBase64(env.payload);
  const message = pae(env.payloadType, payload);
  const revoked: Array<{ keyid: string; reason: string }> = [];
  const failed: string[] = [];
  const unknown: string[] = [];
  for (const { keyid, sig } of env.signatures) {
    const entry = store.lookup(keyid);
    if (entry.state === 'revoked') revoked.push({ keyid, reason: entry.reason });
    else if (entry.state === 'unknown') unknown.push(keyid === '' ? '(no keyid)' : keyid);
    else if (verifyEd25519(fromBase64(sig), message, entry.publicKeyRaw)) return { payload, payloadType: env.payloadType, keyid, name: entry.name };
    else failed.push(keyid);
  }
  if (revoked.length > 0) {
    const named = revoked.map((r) => `${r.keyid} (revoked: ${r.reason})`).join(', ');
    throw new TesseraError('KEY_REVOKED', `Signed by a revoked key: ${named}.`, { details: { revoked } });
  }
  if (failed.length > 0) {
    throw new TesseraError(
      'SIGNATURE_INVALID',
      `The signature by trusted key ${failed.join(', ')} does not verify: the payload, its type or the signature was altered.`,
      { details: { keyids: failed } },
    );
  }
  throw new TesseraError('KEY_UNKNOWN', `Signed by a key that is not trusted: ${unknown.join(', ')}. Add its public key to a trust folder first.`, {
    details: { keyids: unknown },
  });
}

function viewOf(loadKeys: () => LoadedKey[], loadRevocations: () => Revocation[]): TrustView {
  return {
    list() {
      const revoked = revocationMap(loadRevocations());
      return loadKeys().map((k) => withRevocation(k, revoked.get(k.keyid)));
    },
    revocations() {
      return [...revocationMap(loadRevocations()).values()];
    },
    lookup(keyid) {
      const revocation = revocationMap(loadRevocations()).get(keyid);
      if (revocation) return { state: 'revoked', reason: revocation.reason };
      const key = loadKeys().find((k) => k.keyid === keyid);
      if (key) return { state: 'trusted', publicKeyRaw: key.publicKeyRaw.slice(), name: key.name };
      return { state: 'unknown' };
    },
  };
}

function readKeys(root: string): LoadedKey[] {
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => KEY_FILE_SUFFIXES.some((suffix) => n.endsWith(suffix)) && !n.startsWith('.'));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a folder' : `cannot be read: ${(cause as Error).message}`;
    throw new TesseraError('KEY_FILE_INVALID', `The trust folder ${root} ${problem}.`, { cause });
  }
  names.sort();
  // readPublicKey throws KEY_FILE_INVALID naming the file for anything that is not an Ed25519 SPKI PEM.
  const keys: LoadedKey[] = [];
  for (const fileName of names) {
    const file = join(root, fileName);
    const info = readPublicKey(file);
    if (keys.some((k) => k.keyid === info.keyid)) continue;
    keys.push({ keyid: info.keyid, name: fileName.replace(/\.(pem|pub)$/, ''), file, publicKeyRaw: info.publicKeyRaw });
  }
  return keys;
}

function readRevocations(file: string): Revocation[] {
  let text: string;
  try {
    if (statSync(file).size > MAX_REVOKED_FILE_BYTES) throw revokedFileError(file, `it is larger than ${MAX_REVOKED_FILE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    if (cause instanceof TesseraError) throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw revokedFileError(file, `cannot be read: ${(cause as Error).message}`, cause);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw revokedFileError(file, `it is not JSON (${(cause as Error).message})`, cause);
  }
  const list = typeof parsed === 'object' && parsed !== null ? (parsed as { revoked?: unknown }).revoked : undefined;
  if (!Array.isArray(list)) throw revokedFileError(file, 'expected {"revoked":[{"keyid","reason","revoked_at"}, …]}');
  return list.map((entry: unknown, i): Revocation => {
    const { keyid, reason, revoked_at } = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (!isCid(keyid)) throw revokedFileError(file, `revoked[${i}].keyid must be a keyid (b3: and 64 lowercase hex digits)`);
    if (typeof reason !== 'string') throw revokedFileError(file, `revoked[${i}].reason must be a string`);
    if (typeof revoked_at !== 'string' || Number.isNaN(Date.parse(revoked_at))) {
      throw revokedFileError(file, `revoked[${i}].revoked_at must be an ISO 8601 time`);
    }
    return { keyid, reason, revoked_at };
  });
}

function revocationMap(revocations: Revocation[]): Map<string, Revocation> {
  const map = new Map<string, Revocation>();
  for (const r of revocations) if (!map.has(r.keyid)) map.set(r.keyid, r);
  return map;
}

function withRevocation(key: { keyid: string; name: string; file: string }, revocation: Revocation | undefined): TrustedKey {
  const entry: TrustedKey = { keyid: key.keyid, name: key.name, file: key.file, state: revocation ? 'revoked' : 'trusted' };
  if (revocation) entry.revoked_reason = revocation.reason;
  return entry;
}

/** A safe file stem, or undefined when nothing usable is left (the caller then uses the keyid). */
function sanitizeName(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const stem = name
    .normalize('NFC')
    .replace(/\.pem$/i, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+|[.-]+$/g, '')
    .slice(0, MAX_NAME_LENGTH)
    .replace(/[.-]+$/g, '');
  return stem === '' ? undefined : stem;
}

function revokedFileError(file: string, problem: string, cause?: unknown): TesseraError {
  return new TesseraError('KEY_FILE_INVALID', `Revocation list ${file}: ${problem}.`, { details: { file }, ...(cause === undefined ? {} : { cause }) });
}
