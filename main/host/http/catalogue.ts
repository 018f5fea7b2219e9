/**
 * Catalogue routes (seed 000 §4.1 discovery; issue 14 point 1): what is on sale, one product by reference, the
 * venues that accept entitlements, and adding a signed ProductDef. Reading is for every role that meets a
 * traveller (the Journey Guide browses it, the Redeem app picks its venue from it); adding is the operator's.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { CatalogueStatusFilter, ResolvedProduct } from '../../runtime/catalogue/index.js';
import { envelopeSchema } from '../schemas.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const readers = ['traveller', 'staff', 'operator'] as const;

const textMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const venueSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'city'],
  properties: { id: { type: 'string' }, name: { type: 'string' }, city: { type: 'string' } },
} as const;

/** A resolved product as the API shows it (runtime/catalogue ResolvedProduct without the raw def's duplicates). */
export const catalogueProductSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['cid', 'ref', 'id', 'version', 'status', 'effective_from', 'effective_until', 'markets', 'cities', 'profiles', 'publisher', 'added_at'],
  properties: {
    cid: { type: 'string', description: 'b3: content id of the def (canonical bytes): what receipts and tokens name.' },
    ref: { type: 'string', description: '`id@version`' },
    id: { type: 'string' },
    version: { type: 'string' },
    status: { type: 'string', enum: ['draft', 'active', 'retired'] },
    effective_from: { type: 'string' },
    effective_until: { type: ['string', 'null'] },
    markets: { type: 'array', items: { type: 'string' } },
    cities: { type: 'array', items: { type: 'string' } },
    journey: { type: ['string', 'null'], description: 'The journey document that guides a buyer, `<journey id>@<semver range>` (resolved when a journey starts), or null.' },
    profiles: {
      type: 'object',
      additionalProperties: false,
      required: ['entitlement', 'pricing', 'quota', 'safety', 'ui'],
      properties: {
        entitlement: {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'validity_ms', 'venues'],
          properties: {
            kind: { type: 'string', enum: ['single_use', 'multi_use', 'time_pass', 'stored_value'] },
            uses: { type: 'integer' },
            uses_per_venue: { type: 'integer' },
            amount: { type: 'integer' },
            currency: { type: 'string' },
            duration_ms: { type: 'integer' },
            validity_ms: { type: 'integer' },
            venues: { type: 'array', items: venueSchema },
          },
        },
        pricing: { type: 'object', additionalProperties: false, required: ['price', 'currency'], properties: { price: { type: 'integer', description: 'Minor units.' }, currency: { type: 'string' } } },
        quota: { type: 'object', additionalProperties: false, properties: { per_user: { type: ['integer', 'null'] }, per_wallet: { type: ['integer', 'null'] }, global: { type: ['integer', 'null'] } } },
        safety: { type: 'object', additionalProperties: false, properties: { cities: { type: 'array', items: { type: 'string' } }, clusters: { type: 'array', items: { type: 'string' } }, min_safety_score: { type: ['number', 'null'] } } },
        ui: { type: 'object', additionalProperties: false, properties: { title: textMap, description: textMap, terms: textMap } },
      },
    },
    publisher: { type: 'object', additionalProperties: false, required: ['keyid', 'name'], properties: { keyid: { type: 'string' }, name: { type: 'string' } } },
    added_at: { type: 'string' },
    envelope: { ...envelopeSchema, description: 'The signed def (DSSE), with `?envelope=true`.' },
  },
} as const;

/** The API view of a resolved product. */
export function productView(p: ResolvedProduct): Record<string, unknown> {
  return {
    cid: p.cid,
    ref: p.ref,
    id: p.id,
    version: p.version,
    status: p.status,
    effective_from: p.def.effective_from,
    effective_until: p.def.effective_until ?? null,
    markets: p.markets,
    cities: p.cities,
    journey: p.journey,
    profiles: p.profiles,
    publisher: p.publisher,
    added_at: p.added_at,
  };
}

export const catalogueRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  app.get<{ Querystring: { city?: string; status?: CatalogueStatusFilter } }>('/api/catalogue', {
    config: { access: readers },
    schema: {
      summary: 'Products on sale: the highest active version of each, with its resolved profiles (entitlement, price, quota, safety, ui).',
      description: '`?city=lviv` keeps the products sold in that city. `?status=draft|retired|all` lists every version in that status instead (all: every version).',
      tags: ['catalogue'],
      security: secured,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { city: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }, status: { type: 'string', enum: ['active', 'draft', 'retired', 'all'] } },
      },
      response: { 200: { type: 'object', required: ['products'], additionalProperties: false, properties: { products: { type: 'array', items: catalogueProductSchema } } }, 400: errorRef, 401: errorRef, 403: errorRef, 503: errorRef },
    },
  }, async (request) => {
    const q = request.query;
    return { products: runtime.catalogue.list({ ...(q.city ? { city: q.city } : {}), ...(q.status ? { status: q.status } : {}) }).map(productView) };
  });

  app.get('/api/catalogue/venues', {
    config: { access: readers },
    schema: {
      summary: 'Every venue that accepts an entitlement of a product in the catalogue (any version), with its city and the products it accepts.',
      tags: ['catalogue'],
      security: secured,
      response: {
        200: {
          type: 'object',
          required: ['venues'],
          additionalProperties: false,
          properties: { venues: { type: 'array', items: { ...venueSchema, required: [...venueSchema.required, 'products'], properties: { ...venueSchema.properties, products: { type: 'array', items: { type: 'string' } } } } } },
        },
        401: errorRef,
        403: errorRef,
        503: errorRef,
      },
    },
  }, async () => ({ venues: runtime.catalogue.venues() }));

  app.get<{ Params: { ref: string }; Querystring: { envelope?: boolean } }>('/api/catalogue/:ref', {
    config: { access: readers },
    schema: {
      summary: 'One product version: by id or id@range (the highest matching active version), by exact id@version or by cid (that version, whatever its status).',
      description: '`?envelope=true` adds the signed def (DSSE) so that another device can add it. PRODUCTDEF_NOT_FOUND (404) when nothing matches.',
      tags: ['catalogue'],
      security: secured,
      params: { type: 'object', required: ['ref'], properties: { ref: { type: 'string', minLength: 1, maxLength: 100 } } },
      querystring: { type: 'object', additionalProperties: false, properties: { envelope: { type: 'boolean' } } },
      response: { 200: catalogueProductSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 503: errorRef },
    },
  }, async (request) => {
    const product = runtime.catalogue.resolve(request.params.ref);
    return { ...productView(product), ...(request.query.envelope ? { envelope: runtime.catalogue.envelope(product.cid) } : {}) };
  });

  app.post<{ Body: unknown }>('/api/catalogue', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Add a signed ProductDef (a DSSE envelope of application/vnd.tessera.productdef+json by a trusted publisher key).',
      description: '201 with the product when it is new, 200 when this exact def was already there. A def is never changed in place: the same id@version with other content answers PRODUCTDEF_CONFLICT (409). Signature problems answer SIGNATURE_INVALID (400), KEY_UNKNOWN or KEY_REVOKED (403); a def that breaks the schema PRODUCTDEF_INVALID (400). Journals `catalogue.added`.',
      tags: ['catalogue'],
      security: secured,
      body: envelopeSchema,
      response: {
        200: { type: 'object', additionalProperties: false, required: ['added', 'product'], properties: { added: { type: 'boolean' }, product: catalogueProductSchema } },
        201: { type: 'object', additionalProperties: false, required: ['added', 'product'], properties: { added: { type: 'boolean' }, product: catalogueProductSchema } },
        400: errorRef,
        401: errorRef,
        403: errorRef,
        409: errorRef,
        503: errorRef,
      },
    },
  }, async (request, reply) => {
    const { added, product } = runtime.catalogue.add(request.body, { source: 'api' });
    return reply.code(added ? 201 : 200).send({ added, product: productView(product) });
  });
};
