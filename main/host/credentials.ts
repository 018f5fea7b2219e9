/**
 * The credentials a device accepts and the roles each holds (issue 13 §1.2; roles in main/common/roles.ts).
 *
 * - The device API token (`<data>/api-token` or `TESSERA_TOKEN`) holds every role: the owner, the CLI.
 * - A role token holds one role. It is derived from the device token (HMAC-SHA256 of the role's name), so
 *   it survives restarts without a file of its own and replacing the device token replaces them all.
 *   `tessera token --role R` prints one; `tessera start --kiosk` puts the traveller's in the UI's URL.
 * - An operator unlock: whoever holds any credential and knows the PIN (`tessera pin set`, kept as a salted
 *   scrypt hash in `<data>/operator-pin`) gets a session token that holds every role for a short time. Wrong
 *   PINs lock the unlock out for a time that doubles (30 s, 1 min, … up to 15 min) after every 5.
 * - Tenant tokens (`<data>/tenants.json`, runtime/products) reach the product API only.
 */
import { createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TesseraError } from '../common/errors.js';
import type { Role } from '../common/roles.js';
import { ALL_ROLES, ROLES } from '../common/roles.js';
import type { Tenant } from '../runtime/products/index.js';
import { newToken, writeSecretFile } from './config.js';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

export const PIN_FILE = 'operator-pin';
/** How long an operator unlock lasts unless the caller asks for less. */
export const UNLOCK_TTL_MS = 15 * 60_000;
const FAILURES_PER_LOCKOUT = 5;
const FIRST_LOCKOUT_MS = 30_000;
const MAX_LOCKOUT_MS = 15 * 60_000;
const PIN_SHAPE = /^[0-9]{4,12}$/;
const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** Who presented a credential. */
export interface Principal {
  kind: 'device' | 'role' | 'unlocked' | 'tenant';
  roles: readonly Role[];
  /** The tenant of a tenant token; null for every other kind. */
  tenant: Tenant | null;
  /** Epoch ms when an unlocked session ends. */
  expiresAt?: number;
  /** The credential itself, so that `lock` can end the session it was sent with. */
  token: string;
}

export interface Credentials {
  /** The principal a bearer token stands for, or undefined for an unknown, expired or malformed one. */
  resolve(token: string | undefined): Principal | undefined;
  /** The token of one role (derived from the device token; stable across restarts). */
  roleToken(role: Role): string;
  /** Whether an operator PIN is set. */
  pinSet(): boolean;
  /**
   * Checks the PIN and opens an operator session (every role) for `ttlMs` (capped at {@link UNLOCK_TTL_MS}).
   * Errors: PIN_NOT_SET, PIN_LOCKED (retryable, `details.retry_after_seconds`), PIN_INVALID (`details.attempts_left`).
   */
  unlock(pin: string, ttlMs?: number): Promise<{ token: string; roles: Role[]; expires_at: string }>;
  /** Ends an unlocked session; returns whether `token` was one. */
  lock(token: string): boolean;
}

export interface CredentialsOptions {
  dataDir: string;
  deviceToken: string;
  tenantForToken(token: string): Tenant | undefined;
  now?: () => number;
}

export function createCredentials(options: CredentialsOptions): Credentials {
  const { dataDir, deviceToken } = options;
  const now = options.now ?? Date.now;
  const device = Buffer.from(deviceToken, 'utf8');
  const roleTokens = new Map<Role, string>(ROLES.map((role) => [role, createHmac('sha256', device).update(`tessera.role-token.v1:${role}`).digest('base64url')]));
  // The known tokens as bytes once, not on every request: each request's candidate is compared against them all.
  const roleBytes = [...roleTokens].map(([role, t]) => [role, Buffer.from(t, 'utf8')] as const);
  const sessions = new Map<string, number>();
  let failures = 0;
  let lockouts = 0;
  let lockedUntil = 0;

  const same = (x: Buffer, y: Buffer) => x.length === y.length && timingSafeEqual(x, y);

  return {
    resolve(token) {
      if (token === undefined || token === '') return undefined;
      const given = Buffer.from(token, 'utf8');
      if (same(given, device)) return { kind: 'device', roles: ALL_ROLES, tenant: null, token };
      for (const [role, t] of roleBytes) if (same(given, t)) return { kind: 'role', roles: [role], tenant: null, token };
      const expiresAt = sessions.get(token);
      if (expiresAt !== undefined) {
        if (expiresAt > now()) return { kind: 'unlocked', roles: ALL_ROLES, tenant: null, expiresAt, token };
        sessions.delete(token);
      }
      const tenant = options.tenantForToken(token);
      return tenant ? { kind: 'tenant', roles: [], tenant, token } : undefined;
    },
    roleToken: (role) => roleTokens.get(role)!,
    pinSet: () => readPinRecord(dataDir) !== undefined,
    async unlock(pin, ttlMs = UNLOCK_TTL_MS) {
      const record = readPinRecord(dataDir);
      if (!record) throw new TesseraError('PIN_NOT_SET', 'No operator PIN is set on this device; set one with `tessera pin set`.');
      const wait = lockedUntil - now();
      if (wait > 0) {
        const seconds = Math.ceil(wait / 1000);
        throw new TesseraError('PIN_LOCKED', `Too many wrong PINs: operator unlock is locked for ${seconds} s.`, { retryable: true, details: { retry_after_seconds: seconds } });
      }
      // The hash is computed for any input, well-formed or not, so the answer's timing says nothing about the PIN.
      const hash = await scrypt(pin, record.salt, record.hash.length, SCRYPT);
      if (!PIN_SHAPE.test(pin) || !timingSafeEqual(hash, record.hash)) {
        failures += 1;
        let left = FAILURES_PER_LOCKOUT - failures;
        if (left === 0) {
          lockedUntil = now() + Math.min(MAX_LOCKOUT_MS, FIRST_LOCKOUT_MS * 2 ** lockouts);
          lockouts += 1;
          failures = 0;
          left = 0;
        }
        throw new TesseraError('PIN_INVALID', left > 0 ? `That PIN is not the operator PIN (${left} ${left === 1 ? 'try' : 'tries'} left).` : 'That PIN is not the operator PIN; operator unlock is now locked for a while.', {
          details: { attempts_left: left, ...(left === 0 ? { retry_after_seconds: Math.ceil((lockedUntil - now()) / 1000) } : {}) },
        });
      }
      failures = 0;
      lockouts = 0;
      for (const [t, until] of sessions) if (until <= now()) sessions.delete(t);
      const token = newToken();
      const expiresAt = now() + Math.max(1000, Math.min(ttlMs, UNLOCK_TTL_MS));
      sessions.set(token, expiresAt);
      return { token, roles: [...ALL_ROLES], expires_at: new Date(expiresAt).toISOString() };
    },
    lock: (token) => sessions.delete(token),
  };
}

interface PinRecord {
  salt: Buffer;
  hash: Buffer;
}

/** The stored PIN hash; undefined when none is set. A malformed file is an error: the operator must know. */
function readPinRecord(dataDir: string): PinRecord | undefined {
  const file = join(dataDir, PIN_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as { v?: unknown; kdf?: unknown; salt?: unknown; hash?: unknown };
    if (parsed.v !== 1 || parsed.kdf !== 'scrypt' || typeof parsed.salt !== 'string' || typeof parsed.hash !== 'string') throw new Error('unexpected fields');
    const record = { salt: Buffer.from(parsed.salt, 'base64'), hash: Buffer.from(parsed.hash, 'base64') };
    if (record.salt.length < 16 || record.hash.length < 32) throw new Error('salt or hash too short');
    return record;
  } catch (err) {
    throw new TesseraError('CONFIG_INVALID', `${file} is not an operator PIN file (${(err as Error).message}); set the PIN again with \`tessera pin set\`.`);
  }
}

/** Checks a new PIN's shape: 4–12 digits, not all one digit, not a run like 1234. */
export function pinProblem(pin: string): string | undefined {
  if (!PIN_SHAPE.test(pin)) return 'The PIN must be 4 to 12 digits.';
  if (/^(\d)\1+$/.test(pin)) return 'The PIN must not be one digit repeated.';
  const steps = [...pin].map((d, i) => (i === 0 ? 0 : Number(d) - Number(pin[i - 1])));
  if (steps.slice(1).every((s) => s === 1) || steps.slice(1).every((s) => s === -1)) return 'The PIN must not be a run of digits like 1234.';
  return undefined;
}

/** Writes the operator PIN's salted scrypt hash to `<data>/operator-pin` (mode 0600, atomically). */
export async function setOperatorPin(dataDir: string, pin: string): Promise<void> {
  const problem = pinProblem(pin);
  if (problem) throw new TesseraError('CONFIG_INVALID', problem);
  const salt = randomBytes(16);
  const hash = await scrypt(pin, salt, 32, SCRYPT);
  writeSecretFile(join(dataDir, PIN_FILE), JSON.stringify({ v: 1, kdf: 'scrypt', N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, salt: salt.toString('base64'), hash: hash.toString('base64') }) + '\n');
}
