/**
 * Secrets (seed 001 §8 "`secrets.get("weather.api_key")`", issue point 10): named values encrypted at rest and
 * handed out only as {@link Secret}s, so they can reach the tool that needs them but never a log, a journal entry,
 * an error message or a `bag` snapshot (`redact` turns them into `***`).
 *
 * At rest: each value is sealed with AES-256-GCM under one random 32-byte data key, with the secret's name as
 * additional authenticated data, so a ciphertext edited, truncated or moved to another name fails to open.
 * The data key lives in `<dataDir>/secrets.key` (mode 0600, written atomically on first use). A key file that
 * group or others can access is refused, not repaired: the owner should decide whether to rotate.
 *
 * `protector` is the hook for the Electron shell (main/runtime never imports electron, STYLE.md §1): pass
 * `{ encrypt: (b) => safeStorage.encryptString(b.toString('base64')), decrypt: (b) => Buffer.from(safeStorage.decryptString(b), 'base64') }`
 * and the key file holds the data key wrapped by the OS keychain instead of the raw key. An existing raw key file
 * is re-wrapped the first time a protector is given; a wrapped key file without a protector is an error (the
 * headless runtime cannot unwrap it).
 *
 * Journal: every change publishes `secrets.changed` with `{ name, action, by }` — the name only, never a value.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { secret, isSecret, reveal } from '../../common/expr.js';
import type { Secret } from '../../common/expr.js';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import { writeKeyFileAtomic } from '../keys/index.js';
import type { Migration, Store } from '../store/index.js';

/** Wraps and unwraps the data key, e.g. with Electron `safeStorage`. Both directions must round-trip exactly. */
export interface KeyProtector {
  encrypt(plain: Buffer): Buffer;
  decrypt(wrapped: Buffer): Buffer;
}

export interface SecretStore {
  /** Stores `value` (a string, or a Secret wrapping one) under `name`, replacing any previous value. */
  set(name: string, value: string | Secret, options?: { trace_id?: string; by?: string }): void;
  /** @throws TesseraError NOT_FOUND when no secret has that name; SECRET_UNREADABLE when its ciphertext was altered. */
  get(name: string): Secret;
  has(name: string): boolean;
  /** Returns false when there was nothing to delete (not journaled then). */
  delete(name: string, options?: { trace_id?: string; by?: string }): boolean;
  /** Names only, sorted. */
  list(): string[];
  /** Every secret by name, for an expression scope (`secrets["weather.api_key"]`); values stay wrapped. */
  scope(): Record<string, Secret>;
}

export interface SecretStoreOptions {
  store: Store;
  /** Folder of `secrets.key`; normally the runtime's data folder. */
  dataDir: string;
  bus: Bus;
  protector?: KeyProtector;
  clock?: () => number;
}

export const SECRETS_CHANGED_TOPIC = 'secrets.changed';
export const SECRET_KEY_FILE = 'secrets.key';
/** `weather.api_key`: lower case, starts with a letter, at most 64 characters. */
export const SECRET_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;
/** API keys and tokens are small; anything bigger is likely a mistake (and would bloat every scope). */
export const MAX_SECRET_BYTES = 16 * 1024;

const KEY_FILE_FORMAT = 'tessera-secrets-key/1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'secrets',
    // box = iv (12) || tag (16) || ciphertext; AAD = the name.
    up: (db) => db.exec('CREATE TABLE secrets (name TEXT PRIMARY KEY, box BLOB NOT NULL, updated_at INTEGER NOT NULL) STRICT, WITHOUT ROWID'),
  },
];

interface KeyFile {
  format: typeof KEY_FILE_FORMAT;
  protected: boolean;
  key: string;
}

export function createSecretStore(options: SecretStoreOptions): SecretStore {
  const { store, bus, protector } = options;
  const clock = options.clock ?? Date.now;
  const keyPath = join(options.dataDir, SECRET_KEY_FILE);
  store.migrate('secrets', MIGRATIONS);
  const db = store.db;
  const getBox = db.prepare<[string], { box: Buffer }>('SELECT box FROM secrets WHERE name = ?');
  const put = db.prepare('INSERT INTO secrets (name, box, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET box = excluded.box, updated_at = excluded.updated_at');
  const del = db.prepare('DELETE FROM secrets WHERE name = ?');
  const names = db.prepare<[], { name: string }>('SELECT name FROM secrets ORDER BY name');
  const all = db.prepare<[], { name: string; box: Buffer }>('SELECT name, box FROM secrets ORDER BY name');
  const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM secrets');

  // Loaded on first use so that a runtime without secrets never creates a key file.
  let dataKey: Buffer | undefined;
  const key = (): Buffer => (dataKey ??= loadOrCreateKey(keyPath, protector, () => count.get()!.n));

  const open = (name: string, box: Buffer): string => {
    try {
      if (box.length < IV_BYTES + TAG_BYTES) throw new Error('too short');
      const decipher = createDecipheriv('aes-256-gcm', key(), box.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(name, 'utf8'));
      decipher.setAuthTag(box.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(box.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (cause) {
      if (isTesseraError(cause)) throw cause;
      // No cause attached: the crypto error says nothing useful and the message must not carry data.
      throw new TesseraError('SECRET_UNREADABLE', `The stored secret "${name}" cannot be decrypted: its ciphertext was altered or ${keyPath} is not the key it was written with. Set the secret again.`, { details: { name } });
    }
  };
  const seal = (name: string, plain: string): Buffer => {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key(), iv);
    cipher.setAAD(Buffer.from(name, 'utf8'));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ct]);
  };
  const journal = (name: string, action: 'set' | 'delete', opts: { trace_id?: string; by?: string }) => {
    bus.publish(SECRETS_CHANGED_TOPIC, { name, action, by: opts.by ?? null }, opts.trace_id === undefined ? {} : { trace_id: opts.trace_id });
  };
  const write = db.transaction((name: string, box: Buffer, opts: { trace_id?: string; by?: string }) => {
    put.run(name, box, clock());
    journal(name, 'set', opts);
  });
  const remove = db.transaction((name: string, opts: { trace_id?: string; by?: string }) => {
    if (del.run(name).changes === 0) return false;
    journal(name, 'delete', opts);
    return true;
  });

  return {
    set(name, value, opts = {}) {
      checkName(name);
      const plain = isSecret(value) ? reveal(value) : value;
      if (typeof plain !== 'string') throw new TesseraError('VALIDATION_FAILED', `The value of secret "${name}" must be a string.`);
      if (Buffer.byteLength(plain, 'utf8') > MAX_SECRET_BYTES) {
        throw new TesseraError('PAYLOAD_TOO_LARGE', `The value of secret "${name}" is over ${MAX_SECRET_BYTES / 1024} KiB.`);
      }
      write(name, seal(name, plain), opts);
    },
    get(name) {
      checkName(name);
      const row = getBox.get(name);
      if (!row) throw new TesseraError('NOT_FOUND', `No secret named "${name}"; set it first (names: ${names.all().map((r) => r.name).join(', ') || 'none'}).`);
      return secret(open(name, row.box));
    },
    has(name) {
      checkName(name);
      return getBox.get(name) !== undefined;
    },
    delete(name, opts = {}) {
      checkName(name);
      return remove(name, opts);
    },
    list() {
      return names.all().map((r) => r.name);
    },
    scope() {
      const out: Record<string, Secret> = {};
      for (const row of all.all()) Object.defineProperty(out, row.name, { value: secret(open(row.name, row.box)), enumerable: true, writable: false, configurable: false });
      return out;
    },
  };
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !SECRET_NAME.test(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.length > 80 ? `${name.slice(0, 77)}...` : name) : typeof name;
    throw new TesseraError('VALIDATION_FAILED', `${shown} is not a secret name: use lower-case letters, digits, "_", "." or "-", starting with a letter, at most 64 characters (e.g. "weather.api_key").`);
  }
}

function keyFileError(path: string, problem: string): TesseraError {
  return new TesseraError('KEY_FILE_INVALID', `The secrets key file ${path}: ${problem}.`);
}

/**
 * Reads the data key, or creates it when there is no key file. Creating a key while secrets are stored would
 * silently orphan them, so that case is an error pointing at the missing file.
 */
function loadOrCreateKey(path: string, protector: KeyProtector | undefined, storedSecrets: () => number): Buffer {
  if (!existsSync(path)) {
    const n = storedSecrets();
    if (n > 0) throw keyFileError(path, `is missing but ${n} secret(s) are stored with it; restore the file from a backup, or delete the secrets and set them again`);
    const fresh = randomBytes(32);
    try {
      writeKeyFileAtomic(path, encodeKeyFile(fresh, protector), { mode: 0o600, overwrite: false });
      return fresh;
    } catch (err) {
      // Another process created it first: use theirs.
      if (!existsSync(path)) throw err;
    }
  }
  if (process.platform !== 'win32') {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw keyFileError(path, `is accessible by other users (mode ${mode.toString(8).padStart(4, '0')}); run "chmod 600 ${path}" and consider rotating every secret`);
    }
  }
  let parsed: Partial<KeyFile>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<KeyFile>;
  } catch {
    throw keyFileError(path, 'cannot be read or is not JSON');
  }
  if (parsed.format !== KEY_FILE_FORMAT || typeof parsed.key !== 'string' || typeof parsed.protected !== 'boolean') {
    throw keyFileError(path, `is not a "${KEY_FILE_FORMAT}" key file`);
  }
  let raw: Buffer = Buffer.from(parsed.key, 'base64');
  if (parsed.protected) {
    if (!protector) throw keyFileError(path, 'holds a key protected by the desktop keychain (safeStorage); start Tessera from the desktop app, which can unwrap it');
    try {
      raw = protector.decrypt(raw);
    } catch {
      throw keyFileError(path, 'the protected key cannot be unwrapped by the keychain (was it made for another user or machine?)');
    }
  }
  if (raw.length !== 32) throw keyFileError(path, 'does not hold a 32-byte key');
  if (!parsed.protected && protector) {
    // Upgrade: wrap a key written before the desktop shell supplied a protector.
    writeKeyFileAtomic(path, encodeKeyFile(raw, protector), { mode: 0o600, overwrite: true });
  }
  return raw;
}

function encodeKeyFile(rawKey: Buffer, protector: KeyProtector | undefined): string {
  const file: KeyFile = {
    format: KEY_FILE_FORMAT,
    protected: protector !== undefined,
    key: (protector ? protector.encrypt(rawKey) : rawKey).toString('base64'),
  };
  return `${JSON.stringify(file)}\n`;
}
