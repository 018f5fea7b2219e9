/**
 * The catalogue (seed 000 "ProductDef + Registry + Profiles", §4.1 discovery, §4.2 step 1 "resolve config";
 * issue 14 point 1): a local registry of signed ProductDefs, and of the journey documents (seed 000 "TJM"; issue 15
 * point 1) they name — held the same way: signed, content-addressed, versions side by side, never edited in place.
 *
 * - A def enters only signed (DSSE, {@link PRODUCTDEF_PAYLOAD_TYPE}, over its canonical bytes) by a key the
 *   runtime's publisher trust holds (built-in resources/trust, then `<data>/trust`).
 * - Content-addressed: a def is its cid. Versions of one id are kept side by side; an `id@version` is never edited
 *   in place: the same content again is a no-op, other content is refused with PRODUCTDEF_CONFLICT.
 * - `resolve` takes `id`, `id@range` (the highest matching *active* version), an exact `id@version` or a cid (that
 *   version, whatever its status: a session that bought it must still read it once it is retired).
 * - Resolved profiles are derived from the def alone, so they are computed once and cached by cid.
 *
 * Owns the tables `catalogue_defs` and `catalogue_journeys` (store.migrate('catalogue')). At start it re-verifies
 * what the tables hold against today's trust (a def whose publisher was revoked since is left out and journaled),
 * then adds the signed files of the catalogue folders (built-in resources/catalogue, then `<data>/catalogue`), then
 * the journeys (stored, then the journey folders: built-in resources/journeys, then `<data>/journeys`) — after the
 * defs, because a journey's `needs` are checked against the venues of the products the catalogue holds. A bad file
 * is journaled as `catalogue.load_failed` and skipped, never fatal. Each new def is journaled as `catalogue.added`,
 * each new journey document as `catalogue.journey.added`.
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
import type { JourneyDoc } from '../../common/journeys.js';
import type { ErrorCode } from '../../common/errors.js';
import { MAX_JOURNEY_DOC_BYTES, verifyJourneyDoc } from './journey-doc.js';
import type { JourneyDocContext } from './journey-doc.js';
import { MAX_PRODUCTDEF_BYTES, resolveProfiles, verifyProductDef } from './productdef.js';
import type { ProductDef, ResolvedProduct } from './productdef.js';

export { PRODUCTDEF_PAYLOAD_TYPE, MAX_PRODUCTDEF_BYTES, durationMs, resolveProfiles, signProductDef, validateProductDef, verifyProductDef } from './productdef.js';
export { JOURNEY_PAYLOAD_TYPE, MAX_JOURNEY_DOC_BYTES, assertJourneyDoc, signJourneyDoc, validateJourneyDoc, verifyJourneyDoc } from './journey-doc.js';
export type { JourneyDocContext, VerifiedJourneyDoc } from './journey-doc.js';
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

/** One exact, immutable version of a journey document, as `resolveJourney` returns it. */
export interface ResolvedJourney {
  /** `id@version`. */
  ref: string;
  id: string;
  version: string;
  /** cid of the document (canonical bytes). */
  cid: string;
  /** The document exactly as signed. */
  doc: JourneyDoc;
  /** Who signed it: the trusted key's keyid and name. */
  publisher: { keyid: string; name: string };
  /** When this device first added it (ISO 8601), and from where (a file path or `api`). */
  added_at: string;
  source: string;
}

export interface AddJourneyResult {
  /** False when this exact document was already in the catalogue (nothing changed). */
  added: boolean;
  journey: ResolvedJourney;
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
  /**
   * Verifies and adds a signed journey document (a parsed DSSE envelope). Idempotent by content. Its `needs` are
   * checked against the products the catalogue holds now.
   * @throws TesseraError SIGNATURE_INVALID, KEY_UNKNOWN, KEY_REVOKED, JOURNEY_DOC_INVALID (details.problems), or
   *   JOURNEY_DOC_CONFLICT when the id@version is held with another cid.
   */
  addJourney(envelope: unknown, options?: { source?: string }): AddJourneyResult;
  /**
   * One exact version: `id` / `id@range` the highest version matching, `id@x.y.z` or a cid that version.
   * @throws TesseraError JOURNEY_DOC_NOT_FOUND saying what is held.
   */
  resolveJourney(ref: string): ResolvedJourney;
  /** Every journey document held, by id, newest version first. */
  journeys(): ResolvedJourney[];
  /** The signed envelope of a def or journey document, by cid (what `GET /api/catalogue/:ref?envelope=true` and a sync would send). */
  envelope(cid: string): DsseEnvelope | undefined;
  /** Files and stored defs or journeys that did not load, with why. */
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
  /** Folders of signed journey document files (`*.json`), built-in first; loaded after the ProductDefs. */
  journeyDirs?: readonly string[];
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
  {
    version: 2,
    name: 'signed journey documents',
    up: (db) =>
      db.exec(`CREATE TABLE catalogue_journeys (
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

/**
 * The version `range` picks among `versions` (newest first): an exact version whatever its state, else the highest
 * `eligible` one the semver range satisfies. Null when `range` is neither a version nor a range.
 */
function pickVersion<T extends { version: string }>(versions: readonly T[], range: string, eligible: (t: T) => boolean): { exact: boolean; found: T | undefined } | null {
  const exact = semver.valid(range);
  if (exact !== null) return { exact: true, found: versions.find((t) => semver.eq(t.version, exact)) };
  if (semver.validRange(range) === null) return null;
  return { exact: false, found: versions.find((t) => eligible(t) && semver.satisfies(t.version, range)) };
}

export function createCatalogue(options: CatalogueOptions): Catalogue {
  const { store, bus, logger, trust } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('catalogue', MIGRATIONS);
  const db = store.db;

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
      journey: def.journey ?? null,
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

  const failed = (source: string, err: unknown, what = 'a product definition'): void => {
    const data = toErrorData(err);
    errors.push({ source, code: data.code, message: data.message });
    logger.warn(`${what} was not loaded`, { source, error: err });
    bus.publish('catalogue.load_failed', { source, error: data });
  };

  /** Adds each `*.json` of `dirs` in name order; a file that fails is journaled and skipped. */
  const loadFolders = (dirs: readonly string[], limit: number, invalid: ErrorCode, what: string, addFile: (json: unknown, file: string) => unknown): void => {
    for (const dir of dirs) {
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
        const file = join(dir, name);
        try {
          if (!statSync(file).isFile()) continue;
          if (statSync(file).size > limit) throw new TesseraError(invalid, `${file} is over ${limit} bytes.`);
          let json: unknown;
          try {
            json = JSON.parse(readFileSync(file, 'utf8'));
          } catch (err) {
            throw new TesseraError(invalid, `${file} is not valid JSON: ${(err as Error).message}`);
          }
          addFile(json, file);
        } catch (err) {
          failed(file, err, what);
        }
      }
    }
  };

  /**
   * One kind of signed document the catalogue holds (ProductDefs, journey documents), each in its own table: the
   * rows re-verified at start, and adding — idempotent by content, an `id@version` never edited in place.
   */
  interface SignedKind<V extends { cid: string; envelope: DsseEnvelope; publisher: { keyid: string } }, R> {
    table: 'catalogue_defs' | 'catalogue_journeys';
    what: string;
    invalid: ErrorCode;
    conflict: ErrorCode;
    /** Journaled for each new document, with `event`'s fields. */
    topic: string;
    verify(json: unknown, source: string): V;
    idOf(verified: V): { id: string; version: string };
    event(verified: V): Record<string, unknown>;
    remember(verified: V, source: string, addedAt: string): R;
    byCid: Map<string, R>;
  }

  const signedKind = <V extends { cid: string; envelope: DsseEnvelope; publisher: { keyid: string } }, R>(kind: SignedKind<V, R>) => {
    const insertRow = db.prepare(`INSERT INTO ${kind.table} (cid, id, version, envelope, source, added_at) VALUES (?, ?, ?, ?, ?, ?)`);
    const heldAt = db.prepare<[string, string], { cid: string }>(`SELECT cid FROM ${kind.table} WHERE id = ? AND version = ?`);
    return {
      /** What the table holds, re-verified against today's trust; a row that no longer verifies is left out and journaled. */
      reload(): void {
        for (const row of db.prepare<[], { cid: string; envelope: string; source: string; added_at: string }>(`SELECT cid, envelope, source, added_at FROM ${kind.table} ORDER BY added_at, cid`).all()) {
          try {
            const verified = kind.verify(JSON.parse(row.envelope), `stored ${row.cid}`);
            if (verified.cid !== row.cid) throw new TesseraError(kind.invalid, `stored ${row.cid}: the envelope holds ${verified.cid}.`);
            kind.remember(verified, row.source, row.added_at);
          } catch (err) {
            failed('store', err, kind.what);
          }
        }
      },
      add(json: unknown, source: string): { added: boolean; value: R } {
        const verified = kind.verify(json, source);
        const known = kind.byCid.get(verified.cid);
        if (known) return { added: false, value: known };
        const { id, version } = kind.idOf(verified);
        const { cid } = verified;
        const held = heldAt.get(id, version);
        if (held && held.cid !== cid) {
          throw new TesseraError(kind.conflict, `${id}@${version} is already published with other content (${held.cid}; this one is ${cid}). A published version never changes: publish it as a new version.`, {
            details: { id, version, held: held.cid, offered: cid },
          });
        }
        const addedAt = new Date(clock()).toISOString();
        // A row left by a document that no longer verified at start is the same content: keep the row, load it again.
        if (!held) insertRow.run(cid, id, version, JSON.stringify(verified.envelope), source, addedAt);
        const value = kind.remember(verified, source, addedAt);
        bus.publish(kind.topic, { id, version, cid, ...kind.event(verified), publisher: verified.publisher.keyid, source });
        return { added: true, value };
      },
    };
  };

  const products = signedKind({
    table: 'catalogue_defs',
    what: 'a product definition',
    invalid: 'PRODUCTDEF_INVALID',
    conflict: 'PRODUCTDEF_CONFLICT',
    topic: 'catalogue.added',
    verify: (json, source) => verifyProductDef(json, trust, source),
    idOf: (v) => v.def,
    event: (v) => ({ status: v.def.status }),
    remember,
    byCid,
  });

  // 1. What the table holds, re-verified against today's trust.
  products.reload();

  const add = (json: unknown, source: string): AddResult => {
    const { added, value } = products.add(json, source);
    return { added, product: value };
  };

  // 2. The signed files of the catalogue folders.
  loadFolders(options.dirs ?? [], MAX_PRODUCTDEF_BYTES, 'PRODUCTDEF_INVALID', 'a product definition', add);

  const versionsOf = (id: string): ResolvedProduct[] => [...byCid.values()].filter((p) => p.id === id).sort((a, b) => semver.rcompare(a.version, b.version));

  // ---- journey documents ----

  /** Journeys by cid (immutable). */
  const journeysByCid = new Map<string, ResolvedJourney>();
  /** A node's `needs` is checked against the venues of every version of its product held now. */
  const context: JourneyDocContext = {
    venues(productId) {
      const versions = versionsOf(productId);
      if (versions.length === 0) return undefined;
      return [...new Set(versions.flatMap((p) => p.profiles.entitlement.venues.map((v) => v.id)))];
    },
  };
  const rememberJourney = (verified: ReturnType<typeof verifyJourneyDoc>, source: string, addedAt: string): ResolvedJourney => {
    const { doc, cid } = verified;
    const journey: ResolvedJourney = { ref: `${doc.id}@${doc.version}`, id: doc.id, version: doc.version, cid, doc, publisher: verified.publisher, added_at: addedAt, source };
    journeysByCid.set(cid, journey);
    envelopes.set(cid, verified.envelope);
    return journey;
  };

  const journeyKind = signedKind({
    table: 'catalogue_journeys',
    what: 'a journey document',
    invalid: 'JOURNEY_DOC_INVALID',
    conflict: 'JOURNEY_DOC_CONFLICT',
    topic: 'catalogue.journey.added',
    verify: (json, source) => verifyJourneyDoc(json, trust, source, context),
    idOf: (v) => v.doc,
    event: () => ({}),
    remember: rememberJourney,
    byCid: journeysByCid,
  });

  // 3. The journey documents the table holds, re-verified against today's trust and products.
  journeyKind.reload();

  const addJourney = (json: unknown, source: string): AddJourneyResult => {
    const { added, value } = journeyKind.add(json, source);
    return { added, journey: value };
  };

  // 4. The signed files of the journey folders.
  loadFolders(options.journeyDirs ?? [], MAX_JOURNEY_DOC_BYTES, 'JOURNEY_DOC_INVALID', 'a journey document', addJourney);

  const journeyVersionsOf = (id: string): ResolvedJourney[] => [...journeysByCid.values()].filter((j) => j.id === id).sort((a, b) => semver.rcompare(a.version, b.version));

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
      const pick = pickVersion(versions, range, (p) => p.status === 'active');
      if (pick === null) throw new TesseraError('PRODUCTDEF_NOT_FOUND', `"${range}" is not a version or semver range.`);
      if (pick.found) return pick.found;
      const held = versions.map((p) => `${p.version} (${p.status})`).join(', ');
      throw new TesseraError('PRODUCTDEF_NOT_FOUND', `No ${pick.exact ? 'version' : 'active version'} of "${id}" matches ${range} (held: ${held}).`);
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
    addJourney: (envelope, opts = {}) => addJourney(envelope, opts.source ?? 'api'),
    resolveJourney(ref) {
      if (isCid(ref as unknown)) {
        const found = journeysByCid.get(ref);
        if (!found) throw new TesseraError('JOURNEY_DOC_NOT_FOUND', `No journey document has the cid ${ref}.`);
        return found;
      }
      const m = REF.exec(ref);
      if (!m) throw new TesseraError('JOURNEY_DOC_NOT_FOUND', `"${ref.slice(0, 120)}" is not a journey reference: give an id (lviv.old-town-day), id@range (lviv.old-town-day@^1), id@version or a cid.`);
      const id = m[1]!;
      const range = m[2] ?? '*';
      const versions = journeyVersionsOf(id);
      if (versions.length === 0) {
        const held = [...new Set([...journeysByCid.values()].map((j) => j.id))].sort();
        throw new TesseraError('JOURNEY_DOC_NOT_FOUND', `No journey document "${id}" is in the catalogue (held: ${held.length > 0 ? held.join(', ') : 'none'}).`);
      }
      const pick = pickVersion(versions, range, () => true);
      if (pick === null) throw new TesseraError('JOURNEY_DOC_NOT_FOUND', `"${range}" is not a version or semver range.`);
      if (pick.found) return pick.found;
      throw new TesseraError('JOURNEY_DOC_NOT_FOUND', `No version of journey "${id}" matches ${range} (held: ${versions.map((j) => j.version).join(', ')}).`);
    },
    journeys: () => [...journeysByCid.values()].sort((a, b) => (a.id === b.id ? semver.rcompare(a.version, b.version) : a.id < b.id ? -1 : 1)),
    envelope: (cid) => envelopes.get(cid),
    errors: () => errors.map((e) => ({ ...e })),
  };
}
