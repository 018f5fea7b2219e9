/**
 * Capability links to capsules (issue 14 §8): a receipt a person can open on their phone. A link is an
 * unguessable token scoped to one capsule, read-only and revocable: whoever holds `/c/<token>` may read that
 * capsule's card and download its offline bundle, nothing else (the host's public routes, main/host/http/links.ts).
 *
 * - The token is 32 bytes from `crypto.randomBytes` (256 bits), base64url: guessing one is pointless, so the
 *   public routes need no rate limit to stay safe (README "Capability links").
 * - Only SHA-256 of the token is stored (`links.token_sha256`): a copy of the database does not open any link.
 *   The token is shown once, by {@link Links.create}; it is never journaled.
 * - {@link Links.resolve} answers the same `undefined` for an unknown, revoked or expired token, after the same
 *   work (one indexed lookup by hash, one constant-time comparison), so a caller learns nothing by timing it.
 * - This module owns its table; it reads no other module's tables (the caller checks that the capsule exists).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TesseraError } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import type { Migration, Store } from '../store/index.js';

/** The path of a link on this device's HTTP server. */
export const LINK_PATH_PREFIX = '/c/';
/** Default lifetime of a link: 90 days (a purchase's receipt should outlive the trip). */
export const DEFAULT_LINK_TTL_MS = 90 * 24 * 3600 * 1000;
/** Longest lifetime a link may be given: 5 years. */
export const MAX_LINK_TTL_MS = 5 * 365 * 24 * 3600 * 1000;
/** Random bytes in a token (256 bits; base64url gives 43 characters). */
export const LINK_TOKEN_BYTES = 32;

export interface LinkRequest {
  /** cid of the capsule the link opens (`b3:<64 hex>`). */
  capsule: string;
  /** Lifetime in milliseconds (default {@link DEFAULT_LINK_TTL_MS}, at most {@link MAX_LINK_TTL_MS}). */
  ttl_ms?: number;
  /** A note for the operator's list (e.g. "purchase prs_…"); never shown on the public card. */
  label?: string;
  /** Who asked for it (a role or a module name), journaled. */
  by?: string;
}

/** A link as listed: everything but the token, which only {@link Links.create} returns. */
export interface LinkRecord {
  id: string;
  capsule: string;
  label: string | null;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  state: 'active' | 'expired' | 'revoked';
}

export interface CreatedLink extends LinkRecord {
  /** The capability itself (base64url, 43 characters). Shown once: the device keeps only its hash. */
  token: string;
  /** `/c/<token>`. */
  url_path: string;
  /** The full URL for a phone (`<public origin>/c/<token>`), or null while no public origin is set. */
  url: string | null;
}

export interface Links {
  /** A new link to `capsule`; journals `link.created` (id, capsule, expiry; not the token). */
  create(request: LinkRequest): CreatedLink;
  /** The capsule cid an active link opens; `undefined` for unknown, revoked and expired tokens alike. */
  resolve(token: string): string | undefined;
  /**
   * Revokes link `id`; journals `link.revoked`. Revoking a revoked link changes nothing.
   * @throws TesseraError LINK_NOT_FOUND for an unknown id.
   */
  revoke(id: string, options?: { by?: string }): LinkRecord;
  /** Links of one capsule (every link when `capsule` is omitted), newest first. */
  list(capsule?: string, options?: { limit?: number }): LinkRecord[];
  /** One link by id, or undefined. */
  get(id: string): LinkRecord | undefined;
  /**
   * The origin phones reach this device at (`http://192.168.1.20:7420`), set by the host once it listens
   * (README "Capability links": `--public-url`, else the `--host` address); null until then.
   */
  publicOrigin(): string | null;
  setPublicOrigin(origin: string | null): void;
  /** `<public origin>/c/<token>`, or null while no public origin is set. */
  urlFor(token: string): string | null;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'links',
    up: (db) =>
      db.exec(`CREATE TABLE links (
        id TEXT PRIMARY KEY,
        token_sha256 BLOB NOT NULL UNIQUE,
        capsule TEXT NOT NULL,
        label TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
      ) STRICT;
      CREATE INDEX links_capsule ON links (capsule, created_at);`),
  },
];

interface Row { id: string; token_sha256: Buffer; capsule: string; label: string | null; created_at: number; expires_at: number; revoked_at: number | null }

const CID = /^b3:[0-9a-f]{64}$/;
const LINK_ID = /^lnk_[0-9a-f]{24}$/;
const TOKEN_TEXT = /^[A-Za-z0-9_-]{1,100}$/;

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Normalizes a public origin (`http://host:port`, no path); throws CONFIG_INVALID for anything else. */
export function parsePublicOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TesseraError('CONFIG_INVALID', `The public URL "${value}" is not a URL; give one like http://192.168.1.20:7420.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TesseraError('CONFIG_INVALID', `The public URL "${value}" must start with http:// or https://.`);
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw new TesseraError('CONFIG_INVALID', `The public URL "${value}" must be an origin only (scheme, host, port), without a path, query or credentials.`);
  }
  return url.origin;
}

export function createLinks(options: { store: Store; bus: Bus; clock?: () => number; publicOrigin?: string | null }): Links {
  const { store, bus } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('links', MIGRATIONS);
  const db = store.db;
  const insert = db.prepare('INSERT INTO links (id, token_sha256, capsule, label, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)');
  const byHash = db.prepare<[Buffer], Row>('SELECT * FROM links WHERE token_sha256 = ?');
  const byId = db.prepare<[string], Row>('SELECT * FROM links WHERE id = ?');
  const ofCapsule = db.prepare<[string, number], Row>('SELECT * FROM links WHERE capsule = ? ORDER BY created_at DESC, id LIMIT ?');
  const all = db.prepare<[number], Row>('SELECT * FROM links ORDER BY created_at DESC, id LIMIT ?');
  const markRevoked = db.prepare('UPDATE links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  let origin: string | null = options.publicOrigin ? parsePublicOrigin(options.publicOrigin) : null;
  // Compared against when no row matched, so an unknown token costs the same comparison as a known one.
  const decoy = sha256(randomBytes(LINK_TOKEN_BYTES).toString('base64url'));

  const view = (row: Row): LinkRecord => {
    const now = clock();
    return {
      id: row.id,
      capsule: row.capsule,
      label: row.label,
      created_at: new Date(row.created_at).toISOString(),
      expires_at: new Date(row.expires_at).toISOString(),
      revoked_at: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
      state: row.revoked_at !== null ? 'revoked' : row.expires_at <= now ? 'expired' : 'active',
    };
  };
  const urlFor = (token: string): string | null => (origin === null ? null : `${origin}${LINK_PATH_PREFIX}${token}`);

  const revoke = db.transaction((id: string, by: string | null): LinkRecord => {
    const row = byId.get(id);
    if (!row) throw new TesseraError('LINK_NOT_FOUND', `No link ${id} on this device.`);
    if (row.revoked_at === null) {
      const at = clock();
      markRevoked.run(at, id);
      bus.publish('link.revoked', { id, capsule: row.capsule, by });
      return view({ ...row, revoked_at: at });
    }
    return view(row);
  });

  return {
    create(request) {
      if (typeof request.capsule !== 'string' || !CID.test(request.capsule)) throw new TesseraError('VALIDATION_FAILED', 'capsule must be a capsule cid (b3: and 64 hex digits).');
      const ttl = request.ttl_ms ?? DEFAULT_LINK_TTL_MS;
      if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_LINK_TTL_MS) throw new TesseraError('VALIDATION_FAILED', `ttl_ms must be a whole number of milliseconds between 1 and ${MAX_LINK_TTL_MS} (5 years).`);
      const label = request.label === undefined ? null : String(request.label).slice(0, 200);
      const token = randomBytes(LINK_TOKEN_BYTES).toString('base64url');
      const id = `lnk_${randomBytes(12).toString('hex')}`;
      const now = clock();
      const expires = now + ttl;
      db.transaction(() => {
        insert.run(id, sha256(token), request.capsule, label, now, expires);
        bus.publish('link.created', { id, capsule: request.capsule, expires_at: new Date(expires).toISOString(), label, by: request.by ?? null });
      })();
      const record = view({ id, token_sha256: Buffer.alloc(0), capsule: request.capsule, label, created_at: now, expires_at: expires, revoked_at: null });
      return { ...record, token, url_path: `${LINK_PATH_PREFIX}${token}`, url: urlFor(token) };
    },
    resolve(token) {
      const text = typeof token === 'string' && TOKEN_TEXT.test(token) ? token : '';
      const hash = sha256(text);
      const row = byHash.get(hash);
      // Constant time over the stored hash; a miss compares against the decoy so both paths do the same work.
      const same = timingSafeEqual(row?.token_sha256 ?? decoy, hash);
      if (!row || !same || text === '') return undefined;
      if (row.revoked_at !== null || row.expires_at <= clock()) return undefined;
      return row.capsule;
    },
    revoke(id, opts = {}) {
      if (typeof id !== 'string' || !LINK_ID.test(id)) throw new TesseraError('LINK_NOT_FOUND', `No link ${String(id).slice(0, 40)} on this device.`);
      return revoke(id, opts.by ?? null);
    },
    list(capsule, opts = {}) {
      const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
      return (capsule === undefined ? all.all(limit) : ofCapsule.all(capsule, limit)).map(view);
    },
    get(id) {
      const row = byId.get(id);
      return row ? view(row) : undefined;
    },
    publicOrigin: () => origin,
    setPublicOrigin(value) {
      origin = value === null ? null : parsePublicOrigin(value);
    },
    urlFor,
  };
}
