/**
 * Capability links (issue 14 §8; the module is main/runtime/links): the public routes a phone opens with no bearer
 * header — the token in the path IS the capability, scoped to one capsule and read-only — and the authenticated
 * routes that create, list and revoke links.
 *
 * - `GET /c/:token` — the capsule's card: HTML for browsers (phone layout, strict CSP), JSON for `Accept:
 *   application/json`. `GET /c/:token/bundle` — the offline bundle, whose QR image encodes the link, not the
 *   bearer-only `/v1/r/{cid}` URL.
 * - An unknown, revoked or expired token, and a capsule no longer on the device, all answer the same
 *   404 LINK_NOT_FOUND.
 * - Every answer carries `Referrer-Policy: no-referrer` (server.ts) and `Cache-Control: no-store`, so the token
 *   leaves the phone neither through a Referer header nor a shared cache.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BUNDLE_MEDIA_TYPE } from '../../common/bundle.js';
import { TesseraError } from '../../common/errors.js';
import { DEFAULT_LINK_TTL_MS, LINK_PATH_PREFIX, MAX_LINK_TTL_MS } from '../../runtime/links/index.js';
import type { LinkRecord } from '../../runtime/links/index.js';
import type { CapsuleLink, CapsuleLinkRequest } from '../../common/api.js';
import { linkRequestSchema } from '../schemas.js';
import { LINK_CARD_CSP, renderLinkCardHtml } from '../../runtime/links/card.js';
import { cardData } from '../../runtime/receipts/card.js';
import type { CardData } from '../../runtime/receipts/card.js';
import { bundleFileName, capsuleBundle } from '../../runtime/receipts/bundle.js';
import { localOrigin } from './request.js';
import { prefersHtml } from './v1.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const cidParam = { type: 'string', pattern: '^b3:[0-9a-f]{64}$' } as const;
/** No pattern on the token: a malformed token gets the same 404 as a well-formed unknown one. */
const tokenParams = { type: 'object', required: ['token'], properties: { token: { type: 'string' } } } as const;
const linkRecord = {
  type: 'object',
  required: ['id', 'capsule', 'label', 'created_at', 'expires_at', 'revoked_at', 'state'],
  properties: {
    id: { type: 'string' },
    capsule: { type: 'string' },
    label: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    expires_at: { type: 'string' },
    revoked_at: { type: ['string', 'null'] },
    state: { type: 'string', enum: ['active', 'expired', 'revoked'] },
  },
} as const;
const createdLink = {
  ...linkRecord,
  required: [...linkRecord.required, 'token', 'url_path', 'url'],
  properties: { ...linkRecord.properties, token: { type: 'string' }, url_path: { type: 'string' }, url: { type: 'string' } },
} as const;

/** Who asked, for the journal: `device` for the device token, else the roles of the credential. */
const principalName = (request: FastifyRequest): string => (request.principal === null ? 'api' : request.principal.kind === 'device' ? 'device' : request.principal.roles.join(','));

const notFound = (): TesseraError => new TesseraError('LINK_NOT_FOUND', 'No receipt at this link: it is unknown, revoked or expired.');

export const linkRoutes: FastifyPluginAsync = async (app) => {
  const { runtime, operations } = app.tessera;
  /** The origin link URLs carry: the configured public origin, else the address this client reached. */
  const originFor = (request: FastifyRequest): string => runtime.links.publicOrigin() ?? localOrigin(request);
  const linkUrl = (request: FastifyRequest, token: string): string => `${originFor(request)}${LINK_PATH_PREFIX}${token}`;

  /** The capsule a token opens, or the one 404. */
  const capsuleOf = (token: string): string => {
    const cid = runtime.links.resolve(token);
    if (cid === undefined || runtime.receipts.capsule(cid) === undefined) throw notFound();
    return cid;
  };
  const privateAnswer = (reply: FastifyReply): FastifyReply => reply.header('cache-control', 'no-store').header('x-robots-tag', 'noindex, nofollow');

  app.get<{ Params: { token: string } }>('/c/:token', {
    config: { access: 'public' },
    schema: {
      summary: "A capsule's card through a capability link (no bearer header): HTML for a phone, or JSON with Accept: application/json.",
      description: 'Read-only and scoped to the one capsule the link was made for. Unknown, revoked and expired links answer 404 LINK_NOT_FOUND.',
      tags: ['links'],
      params: tokenParams,
      produces: ['text/html', 'application/json'],
      response: { 200: { type: 'object', additionalProperties: true, required: ['cid', 'verdict', 'receipts', 'card_url', 'bundle_url'], properties: { cid: { type: 'string' }, verdict: { type: 'string' }, receipts: { type: 'array', items: { type: 'object', additionalProperties: true } }, card_url: { type: 'string' }, bundle_url: { type: 'string' } } }, 404: errorRef },
    },
  }, async (request, reply) => {
    const { token } = request.params;
    const cid = capsuleOf(token);
    const record = runtime.receipts.capsule(cid)!;
    const product = runtime.products.byCid(record.capsule.product);
    const url = linkUrl(request, token);
    const card: CardData | undefined = cardData(runtime.receipts, cid, { card_url: url, bundle_url: `${url}/bundle` }, { ghost: product?.enrich.includes('ghost') ?? true });
    if (!card) throw notFound();
    privateAnswer(reply).header('vary', 'Accept');
    if (prefersHtml(request.headers.accept)) {
      return reply.type('text/html; charset=utf-8').header('content-security-policy', LINK_CARD_CSP).send(renderLinkCardHtml(card, { act: record.capsule.act }));
    }
    return card;
  });

  app.get<{ Params: { token: string } }>('/c/:token/bundle', {
    config: { access: 'public' },
    schema: {
      summary: "A capsule's offline bundle through a capability link (no bearer header); its QR image encodes the link.",
      tags: ['links'],
      params: tokenParams,
      produces: [BUNDLE_MEDIA_TYPE],
      response: { 200: { type: 'string', format: 'binary', description: 'application/zip' }, 404: errorRef, 503: errorRef },
    },
  }, async (request, reply) => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
    const { token } = request.params;
    const cid = capsuleOf(token);
    const zip = capsuleBundle({ receipts: runtime.receipts, log: runtime.deviceLog, deviceKey: runtime.deviceKey, cosignature: (n) => runtime.sync.cosignature(n) }, cid, linkUrl(request, token));
    return privateAnswer(reply)
      .type(BUNDLE_MEDIA_TYPE)
      .header('content-disposition', `attachment; filename="${bundleFileName(cid)}"`)
      .send(Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength));
  });

  app.post<{ Body: CapsuleLinkRequest }>('/api/links', {
    config: { access: ['traveller', 'staff', 'operator'] },
    schema: {
      summary: 'Create a capability link to a capsule: a URL a phone opens with no bearer header. The token is shown once.',
      description: `ttl_ms defaults to ${DEFAULT_LINK_TTL_MS} (90 days), at most ${MAX_LINK_TTL_MS} (5 years). url uses the device's public origin (--public-url, else the --host address).`,
      tags: ['links'],
      security: secured,
      body: linkRequestSchema,
      response: { 200: createdLink, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request): Promise<CapsuleLink> => {
    const link = operations.createLink({ ...request.body, by: principalName(request) });
    return { ...link, url: link.url ?? linkUrl(request, link.token) };
  });

  app.get<{ Querystring: { capsule?: string; limit?: number } }>('/api/links', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Capability links (without their tokens), newest first; of one capsule with ?capsule=.',
      tags: ['links'],
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { capsule: cidParam, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
      response: { 200: { type: 'object', required: ['links'], properties: { links: { type: 'array', items: linkRecord } } }, 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request): Promise<{ links: LinkRecord[] }> => ({ links: runtime.links.list(request.query.capsule, request.query.limit ? { limit: request.query.limit } : {}) }));

  app.post<{ Params: { id: string } }>('/api/links/:id/revoke', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Revoke a capability link: from now on it answers 404 LINK_NOT_FOUND. Revoking twice changes nothing.',
      tags: ['links'],
      security: secured,
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
      response: { 200: linkRecord, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request): Promise<LinkRecord> => runtime.links.revoke(request.params.id, { by: principalName(request) }));
};
