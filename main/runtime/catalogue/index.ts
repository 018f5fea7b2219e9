/**
 * The catalogue (seed 000 "ProductDef + Registry + Profiles", §4.1 discovery, §4.2 step 1 "resolve config";
 * issue 14 point 1): a local registry of signed ProductDefs.
 *
 * - A def enters only signed (DSSE, {@link PRODUCTDEF_PAYLOAD_TYPE}, over its canonical bytes) by a key the
 *   runtime's publisher trust holds (built-in resources/trust, then `<data>/trust`).
 * - Content-addressed: a def is its cid. Versions of one id are kept side by side; an `id@version` is never edited
 *   in place: the same content again is a no-op, other content is refused with PRODUCTDEF_CONFLICT.
 * - `resolve` takes `id`, `id@range` (the highest matching *active* version), an exact `id@version` or a cid (that
 *   version, whatever its status: a session that bought it must still read it once it is retired).
 * - Resolved profiles are derived from the def alone, so they are computed once and cached by cid.
 *
 * Owns the table `catalogue_defs` (store.migrate('catalogue')). At start it re-verifies what the table holds
 * against today's trust (a def whose publisher was revoked since is left out and journaled), then adds the signed
 * files of the catalogue folders (built-in resources/catalogue, then `<data>/catalogue`); a bad file is journaled
 * as `catalogue.load_failed` and skipped, never fatal. Each new def is journaled as `catalogue.added`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { isCid } from '../../common/cid.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError, toErrorData } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import type { Logger } from '../log/index.js';
import type { Migration, Store } from '../store/index.js';
import type { TrustView } from '../trust/index.js';
import { MAX_PRODUCTDEF_BYTES, resolveProfiles, verifyProductDef } from './productdef.js';
import type { ProductDef, ResolvedProduct } from './productdef.js';

export { PRODUCTDEF_PAYLOAD_TYPE, MAX_PRODUCTDEF_BYTES, durationMs, resolveProfiles, signProductDef, validateProductDef, verifyProductDef } from './productdef.js';
export type { EntitlementKind, EntitlementProfile, ProductDef, ResolvedProduct, ResolvedProfiles, TextMap, Venue, VerifiedProductDef } from './productdef.js';

export type CatalogueStatusFilter = ProductDef['status'] | 'all';

export interface CatalogueQuery {
  /** Only products sold in this city (one of the def's `cities`). */
  city?: string;
  /**
   * `active` (default): the highest active version of each id — what a traveller is offered. Another status: every
   * version in that status. `all`: every version.
   */
  status?: CatalogueStatusFilter;
}

/** A place that accepts entitlements, as the Redeem app picks it: the union of the defs' venues. */
export interface CatalogueVenue {
  id: string;
  name: string;
  city: string;
  /** Ids of the products (any version) it accepts. */
  products: string[];
}

export interface CatalogueLoadError {
  /** The file (or `store` for a stored def that no longer verifies). */
  source: string;
  code: string;
  message: string;
}

export interface AddResult {
  /** False when this exact def was already in the catalogue (nothing changed). */
  added: boolean;
  product: ResolvedProduct;
}

export interface Catalogue {
  /**
   * Verifies and adds a signed ProductDef (a parsed DSSE envelope). Idempotent by content.
   * @throws TesseraError SIGNATURE_INVALID, KEY_UNKNOWN, KEY_REVOKED, PRODUCTDEF_INVALID, or PRODUCTDEF_CONFLICT when
   *   the id@version is held with another cid.
   */
  add(envelope: unknown, options?: { source?: string }): AddResult;
  /**
   * One exact version. `id` / `id@range`: the highest active version matching; `id@x.y.z` or a cid: that version.
   * @throws TesseraError PRODUCTDEF_NOT_FOUND saying what is held.
   */
  resolve(ref: string): ResolvedProduct;
  list(query?: CatalogueQuery): ResolvedProduct[];
  venues(): CatalogueVenue[];
  /** The signed envelope of a def, by cid (what `GET /api/catalogue/:ref?envelope=true` and a sync would send). */
  envelope(cid: string): DsseEnvelope | undefined;
  /** Files and stored defs that did not load, with why. */
  errors(): CatalogueLoadError[];
}

export interface CatalogueOptions {
  store: Store;
  bus: Bus;
  logger: Logger;
  /** The runtime's publisher trust. */
  trust: TrustView;
  /** Folders of signed ProductDef files (`*.json`), built-in first. */
  dirs?: readonly string[];
  clock?: () => number;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'signed product definitions',
    up: (db) =>
      db.exec(`CREATE TABLE catalogue_defs (
        cid TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        envelope TEXT NOT NULL,
        source TEXT NOT NULL,
        added_at TEXT NOT NULL,
        UNIQUE (id, version)
      ) STRICT`),
  },
];

const REF = /^([a-z][a-z0-9-]{0,31}(?:\.[a-z0-9][a-z0-9-]{0,31}){1,3})(?:@(.{1,64}))?$/;

export function createCatalogue(options: CatalogueOptions): Catalogue {
  const { store, bus, logger, trust } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('catalogue', MIGRATIONS);
  const db = store.db;
  const insert = db.prepare('INSERT INTO catalogue_defs (cid, id, version, envelope, source, added_at) VALUES (?, ?, ?, ?, ?, ?)');
  const heldAt = db.prepare<[string, string], { cid: string }>('SELECT cid FROM catalogue_defs WHERE id = ? AND version = ?');

  /** Resolved defs by cid: the profile cache (immutable, so never invalidated). */
  const byCid = new Map<string, ResolvedProduct>();
  const envelopes = new Map<string, DsseEnvelope>();
  const errors: CatalogueLoadError[] = [];

  const remember = (verified: ReturnType<typeof verifyProductDef>, source: string, addedAt: string): ResolvedProduct => {
    const { def, cid } = verified;
    const product: ResolvedProduct = {
      cid,
      ref: `${def.id}@${def.version}`,
      id: def.id,
      version: def.version,
      status: def.status,
      effective: { from: Date.parse(def.effective_from), until: def.effective_until == null ? null : Date.parse(def.effective_until) },
      markets: [...def.markets],
      cities: [...def.cities],
      profiles: resolveProfiles(def),
      def,
      publisher: verified.publisher,
      added_at: addedAt,
      source,
    };
    byCid.set(cid, product);
    envelopes.set(cid, verified.envelope);
    return product;
  };

  const failed = (source: string, err: unknown): void => {
    const data = toErrorData(err);
    errors.push({ source, code: data.code, message: data.message });
    logger.warn('a product definition was not loaded', { source, error: err });
    bus.publish('catalogue.load_failed', { source, error: data });
  };

  // 1. What the table holds, re-verified against today's trust.
  for (const row of db.prepare<[], { cid: string; envelope: string; source: string; added_at: string }>('SELECT cid, envelope, source, added_at FROM catalogue_defs ORDER BY added_at, cid').all()) {
    try {
      const verified = verifyProductDef(JSON.parse(row.envelope), trust, `stored ${row.cid}`);
      if (verified.cid !== row.cid) throw new TesseraError('PRODUCTDEF_INVALID', `stored ${row.cid}: the envelope holds ${verified.cid}.`);
      remember(verified, row.source, row.added_at);
    } catch (err) {
      failed('store', err);
    }
  }

  const add = (json: unknown, source: string): AddResult => {
    const verified = verifyProductDef(json, trust, source);
    const known = byCid.get(verified.cid);
    if (known) return { added: false, product: known };
    const { def, cid } = verified;
    const held = heldAt.get(def.id, def.version);
    if (held && held.cid !== cid) {
      throw new TesseraError('PRODUCTDEF_CONFLICT', `${def.id}@${def.version} is already published with other content (${held.cid}; this one is ${cid}). A published version never changes: publish it as a new version.`, {
        details: { id: def.id, version: def.version, held: held.cid, offered: cid },
      });
    }
    const addedAt = new Date(clock()).toISOString();
    // A row left by a def that no longer verified at start is the same content: keep the row, load it again.
    if (!held) insert.run(cid, def.id, def.version, JSON.stringify(verified.envelope), source, addedAt);
    const product = remember(verified, source, addedAt);
    bus.publish('catalogue.added', { id: def.id, version: def.version, cid, status: def.status, publisher: verified.publisher.keyid, source });
    return { added: true, product };
  };

  // 2. The signed files of the catalogue folders.
  for (const dir of options.dirs ?? []) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
      const file = join(dir, name);
      try {
        if (!statSync(file).isFile()) continue;
        if (statSync(file).size > MAX_PRODUCTDEF_BYTES) throw new TesseraError('PRODUCTDEF_INVALID', `${file} is over ${MAX_PRODUCTDEF_BYTES} bytes.`);
        let json: unknown;
        try {
          json = JSON.parse(readFileSync(file, 'utf8'));
        } catch (err) {
          throw new TesseraError('PRODUCTDEF_INVALID', `${file} is not valid JSON: ${(err as Error).message}`);
        }
        add(json, file);
      } catch (err) {
        failed(file, err);
      }
    }
  }

  const versionsOf = (id: string): ResolvedProduct[] => [...byCid.values()].filter((p) => p.id === id).sort((a, b) => semver.rcompare(a.version, b.version));

  return {
    add: (envelope, opts = {}) => add(envelope, opts.source ?? 'api'),
    resolve(ref) {
      if (isCid(ref as unknown)) {
        const found = byCid.get(ref);
        if (!found) throw new TesseraError('PRODUCTDEF_NOT_FOUND', `No product definition has the cid ${ref}.`);
        return found;
      }
      const m = REF.exec(ref);
      if (!m) throw new TesseraError('PRODUCTDEF_NOT_FOUND', `"${ref.slice(0, 120)}" is not a product reference: give an id (city.museum-pass-48h), id@range (city.museum-pass-48h@^1) or a cid.`);
      const id = m[1]!;
      const range = m[2] ?? '*';
      const versions = versionsOf(id);
      if (versions.length === 0) throw new TesseraError('PRODUCTDEF_NOT_FOUND', `No product "${id}" is in the catalogue.`);
      const exact = semver.valid(range);
      if (exact !== null) {
        const found = versions.find((p) => semver.eq(p.version, exact));
        if (found) return found;
      } else if (semver.validRange(range) !== null) {
        const found = versions.find((p) => p.status === 'active' && semver.satisfies(p.version, range));
        if (found) return found;
      } else throw new TesseraError('PRODUCTDEF_NOT_FOUND', `"${range}" is not a version or semver range.`);
      const held = versions.map((p) => `${p.version} (${p.status})`).join(', ');
      throw new TesseraError('PRODUCTDEF_NOT_FOUND', `No ${exact !== null ? 'version' : 'active version'} of "${id}" matches ${range} (held: ${held}).`);
    },
    list(query = {}) {
      const status = query.status ?? 'active';
      let out = [...byCid.values()].filter((p) => status === 'all' || p.status === status);
      if (query.city !== undefined) out = out.filter((p) => p.cities.includes(query.city!));
      out.sort((a, b) => (a.id === b.id ? semver.rcompare(a.version, b.version) : a.id < b.id ? -1 : 1));
      // What a traveller is offered: one entry per product, its highest active version.
      if (status === 'active') out = out.filter((p, i) => i === 0 || out[i - 1]!.id !== p.id);
      return out;
    },
    venues() {
      const venues = new Map<string, CatalogueVenue>();
      // Every version's venues, newest first: a retired version's tokens are still redeemed where they were sold.
      const all = [...byCid.values()].sort((a, b) => (a.id === b.id ? semver.rcompare(a.version, b.version) : a.id < b.id ? -1 : 1));
      for (const p of all) {
        for (const v of p.profiles.entitlement.venues) {
          const known = venues.get(v.id) ?? { id: v.id, name: v.name, city: v.city, products: [] };
          if (!known.products.includes(p.id)) known.products.push(p.id);
          venues.set(v.id, known);
        }
      }
      return [...venues.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
    envelope: (cid) => envelopes.get(cid),
    errors: () => errors.map((e) => ({ ...e })),
  };
}
