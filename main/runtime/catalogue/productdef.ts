/**
 * ProductDefs (seed 000 "ProductDef + Registry + Profiles"; issue 14 point 1): the published schema
 * (resources/schema/productdef.schema.json), the rules a schema cannot state, the signed form (a DSSE envelope
 * with {@link PRODUCTDEF_PAYLOAD_TYPE} over the canonical bytes, as plugin manifests are signed) and the resolved
 * profiles the sessions and entitlements modules read.
 */
import Ajv from 'ajv';
import semver from 'semver';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { canonicalBytes } from '../../common/canonical.js';
import { cidOf } from '../../common/cid.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError } from '../../common/errors.js';
import type { SigningKey } from '../keys/index.js';
import { signEnvelope } from '../keys/index.js';
import type { TrustView } from '../trust/index.js';
import { openSigned, requireCanonical } from './signed.js';
import type { SignedKind } from './signed.js';
import productDefSchema from '../../../resources/schema/productdef.schema.json' with { type: 'json' };
import { describeSchemaError, schemaPath } from '../schema-errors.js';

/** The DSSE payload type of a signed ProductDef. */
export const PRODUCTDEF_PAYLOAD_TYPE = 'application/vnd.tessera.productdef+json';
const PRODUCTDEF_KIND: SignedKind = { payloadType: PRODUCTDEF_PAYLOAD_TYPE, what: 'a ProductDef', invalid: 'PRODUCTDEF_INVALID', signCommand: 'tessera catalogue sign' };
/** A signed ProductDef file is at most this big (the schema bounds every field well below it). */
export const MAX_PRODUCTDEF_BYTES = 256 * 1024;

export type EntitlementKind = 'single_use' | 'multi_use' | 'time_pass' | 'stored_value';
/** Text per language (BCP 47 tag → text); `en` is always there. */
export type TextMap = { en: string } & Record<string, string>;

export interface Venue {
  id: string;
  name: string;
  city?: string;
}

interface EntitlementBase {
  venues: Venue[];
  /** ISO 8601 duration from activation (weeks, days, hours, minutes, seconds). */
  validity: string;
}
export type EntitlementProfile =
  | (EntitlementBase & { kind: 'single_use' })
  | (EntitlementBase & { kind: 'multi_use'; uses: number })
  | (EntitlementBase & { kind: 'time_pass'; duration: string; uses_per_venue?: number })
  | (EntitlementBase & { kind: 'stored_value'; amount: number; currency: string });

/** A ProductDef as written and signed (validated against the schema). */
export interface ProductDef {
  id: string;
  version: string;
  status: 'draft' | 'active' | 'retired';
  /** RFC 3339 UTC. */
  effective_from: string;
  effective_until?: string | null;
  markets: string[];
  cities: string[];
  /**
   * The journey document that guides a traveller who bought it (issue 15): `<journey id>@<semver range>`, resolved
   * by the catalogue (`resolveJourney`) when a journey starts.
   */
  journey?: string;
  /**
   * Who must approve what an agent proposes for a session of this product, by action (issue 17; seed 000 §8): raises
   * the action's default approval, never lowers it (runtime/orchestrator/proposals.ts).
   */
  agent_approvals?: Record<string, 'none' | 'traveller' | 'operator'>;
  profiles: {
    entitlement: EntitlementProfile;
    pricing: { price: number; currency: string };
    quota: { per_user?: number; per_wallet?: number; global?: number };
    safety: { cities: string[]; clusters?: string[]; min_safety_score?: number };
    ui: { title: TextMap; description: TextMap; terms: TextMap };
  };
}

/**
 * The profiles as the runtime uses them: durations in milliseconds, absent caps as null, every venue with its
 * city. Derived from the def alone, so the registry caches them by cid.
 */
export interface ResolvedProfiles {
  entitlement: {
    kind: EntitlementKind;
    /** multi_use only. */
    uses?: number;
    /** time_pass only; absent: unlimited uses per venue. */
    uses_per_venue?: number;
    /** stored_value only: minor units. */
    amount?: number;
    /** stored_value only. */
    currency?: string;
    /** time_pass only: the pass's duration, ms. */
    duration_ms?: number;
    /** How long an issued entitlement is valid from activation, ms. */
    validity_ms: number;
    venues: Array<{ id: string; name: string; city: string }>;
  };
  pricing: { price: number; currency: string };
  quota: { per_user: number | null; per_wallet: number | null; global: number | null };
  safety: { cities: string[]; clusters: string[]; min_safety_score: number | null };
  ui: { title: TextMap; description: TextMap; terms: TextMap };
}

/** What `catalogue.resolve` returns: one exact, immutable version (the sessions module's input). */
export interface ResolvedProduct {
  /** cid of the def (canonical bytes): what receipts and tokens name. */
  cid: string;
  /** `id@version`. */
  ref: string;
  id: string;
  version: string;
  status: ProductDef['status'];
  /** Sale window, ms since the epoch; `until` null: open-ended (exclusive end). */
  effective: { from: number; until: number | null };
  markets: string[];
  cities: string[];
  /** The def's `journey` (`lviv.old-town-day@^1`), or null when it names none. */
  journey: string | null;
  profiles: ResolvedProfiles;
  /** The def exactly as signed. */
  def: ProductDef;
  /** Who signed it: the trusted key's keyid and name. */
  publisher: { keyid: string; name: string };
  /** When this device first added it (ISO 8601), and from where (a file path or `api`). */
  added_at: string;
  source: string;
}

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true, discriminator: true });
ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
const validate: ValidateFunction = ajv.compile(productDefSchema);

const DURATION = /^P(?:(\d+)W|(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?)$/;

/** An ISO 8601 duration the schema accepts (no years or months) in milliseconds. */
export function durationMs(text: string): number {
  const m = DURATION.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) throw new TesseraError('PRODUCTDEF_INVALID', `"${text}" is not an ISO 8601 duration in weeks, days, hours, minutes or seconds.`);
  const [, w, d, h, min, s] = m.map((x) => (x === undefined ? 0 : Number(x)));
  return ((((w ?? 0) * 7 + (d ?? 0)) * 24 + (h ?? 0)) * 60 + (min ?? 0)) * 60_000 + (s ?? 0) * 1000;
}

/**
 * Checks a parsed value against the schema and the rules it cannot state: the sale window is not empty, durations
 * are not zero, venue ids are unique, a venue's city is one of the def's cities, the safety cities are among them.
 * @throws TesseraError PRODUCTDEF_INVALID naming `source` and each failing field.
 */
export function validateProductDef(value: unknown, source = 'ProductDef'): ProductDef {
  if (!validate(value)) {
    const problems = (validate.errors ?? []).filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf').map(describe);
    throw new TesseraError('PRODUCTDEF_INVALID', `${source}: ${[...new Set(problems)].slice(0, 8).join('; ')}.`, { details: { source, problems } });
  }
  const def = value as ProductDef;
  const problems: string[] = [];
  const from = Date.parse(def.effective_from);
  if (Number.isNaN(from)) problems.push('effective_from: is not a real date');
  if (def.effective_until != null) {
    const until = Date.parse(def.effective_until);
    if (Number.isNaN(until)) problems.push('effective_until: is not a real date');
    else if (!(until > from)) problems.push('effective_until: must be after effective_from');
  }
  const ent = def.profiles.entitlement;
  for (const [field, text] of [['validity', ent.validity], ...(ent.kind === 'time_pass' ? [['duration', ent.duration]] : [])] as Array<[string, string]>) {
    if (durationMs(text) === 0) problems.push(`profiles.entitlement.${field}: must be longer than zero`);
  }
  const seen = new Set<string>();
  ent.venues.forEach((v, i) => {
    if (seen.has(v.id)) problems.push(`profiles.entitlement.venues[${i}].id: "${v.id}" is listed twice`);
    seen.add(v.id);
    if (v.city !== undefined && !def.cities.includes(v.city)) problems.push(`profiles.entitlement.venues[${i}].city: "${v.city}" is not one of cities`);
  });
  if (def.journey !== undefined) {
    const range = def.journey.slice(def.journey.indexOf('@') + 1);
    if (semver.validRange(range) === null) problems.push(`journey: "${range}" is not a semver range or version`);
  }
  def.profiles.safety.cities.forEach((c, i) => {
    if (!def.cities.includes(c)) problems.push(`profiles.safety.cities[${i}]: "${c}" is not one of cities`);
  });
  if (problems.length > 0) throw new TesseraError('PRODUCTDEF_INVALID', `${source}: ${problems.join('; ')}.`, { details: { source, problems } });
  return def;
}

/** The profiles with durations in ms, absent caps as null and each venue's city (the def's first city by default). */
export function resolveProfiles(def: ProductDef): ResolvedProfiles {
  const e = def.profiles.entitlement;
  const { quota, safety, pricing, ui } = def.profiles;
  return {
    entitlement: {
      kind: e.kind,
      ...(e.kind === 'multi_use' ? { uses: e.uses } : {}),
      ...(e.kind === 'time_pass' ? { duration_ms: durationMs(e.duration), ...(e.uses_per_venue !== undefined ? { uses_per_venue: e.uses_per_venue } : {}) } : {}),
      ...(e.kind === 'stored_value' ? { amount: e.amount, currency: e.currency } : {}),
      validity_ms: durationMs(e.validity),
      venues: e.venues.map((v) => ({ id: v.id, name: v.name, city: v.city ?? def.cities[0]! })),
    },
    pricing: { price: pricing.price, currency: pricing.currency },
    quota: { per_user: quota.per_user ?? null, per_wallet: quota.per_wallet ?? null, global: quota.global ?? null },
    safety: { cities: [...safety.cities], clusters: [...(safety.clusters ?? [])], min_safety_score: safety.min_safety_score ?? null },
    ui: structuredClone(ui),
  };
}

/** Signs a def (validated first) as a DSSE envelope over its canonical bytes; Ed25519 signatures are deterministic. */
export function signProductDef(value: unknown, key: SigningKey, source?: string): { envelope: DsseEnvelope; def: ProductDef; cid: string } {
  const def = validateProductDef(value, source);
  return { envelope: signEnvelope(PRODUCTDEF_PAYLOAD_TYPE, canonicalBytes(def), [key]), def, cid: cidOf(def) };
}

export interface VerifiedProductDef {
  def: ProductDef;
  cid: string;
  publisher: { keyid: string; name: string };
  envelope: DsseEnvelope;
}

/**
 * Verifies a signed ProductDef: a DSSE envelope of {@link PRODUCTDEF_PAYLOAD_TYPE} by a key `trust` trusts, whose
 * payload is the canonical bytes of a valid def (non-canonical bytes are refused, so a def has one signed form).
 * @throws TesseraError SIGNATURE_INVALID (malformed, other payload type, altered), KEY_UNKNOWN, KEY_REVOKED, or
 *   PRODUCTDEF_INVALID (the payload is not a valid def), naming `source`.
 */
export function verifyProductDef(json: unknown, trust: TrustView, source = 'ProductDef'): VerifiedProductDef {
  const opened = openSigned(json, trust, PRODUCTDEF_KIND, source);
  const def = validateProductDef(opened.value, source);
  requireCanonical(def, opened.payload, PRODUCTDEF_KIND, source);
  return { def, cid: cidOf(def), publisher: opened.publisher, envelope: opened.envelope };
}

function describe(e: ErrorObject): string {
  if (e.keyword === 'discriminator') return `${schemaPath(e)}.kind: must be one of single_use, multi_use, time_pass, stored_value`;
  return describeSchemaError(e);
}
