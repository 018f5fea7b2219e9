/**
 * The product API (seed 004 §2): `POST /v1/run`, the card `GET /v1/r/{cid}` (JSON or HTML by content
 * negotiation), and k-of-n consent (`GET /v1/consents`, `POST /v1/consents/{id}/approve|reject`).
 *
 * Auth: the server's hook admits the device API token (tenant `default`, sees every tenant's records) and the
 * tokens of `<data>/tenants.json` on `/v1`, and sets `request.tenant`; a tenant sees its own capsules only.
 */
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { TesseraError, toErrorData } from '../../common/errors.js';
import { CONSENT_PAYLOAD_TYPE, CONSENT_VERSION, bundlePath, cardPath } from '../../common/receipt.js';
import type { ConsentDecision } from '../../common/receipt.js';
import { DEFAULT_TENANT, VIEW_LIMITS, parseView } from '../../runtime/products/index.js';
import type { ParsedView, Tenant } from '../../runtime/products/index.js';
import { CARD_CSP, cardData, renderCardHtml } from '../../runtime/receipts/card.js';
import type { ConsentRecord } from '../../runtime/receipts/store.js';
import { envelopeSchema } from '../schemas.js';
import { canSee, parseJsonBody, localOrigin } from './request.js';
import { decodeUtf8 } from '../../common/json-text.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const cidParam = { type: 'string', pattern: '^b3:[0-9a-f]{64}$' } as const;
const verdict = { type: 'string', enum: ['ACK', 'NACK', 'ASK'] } as const;
const consentSchema = {
  type: 'object',
  required: ['id', 'capsule', 'k', 'n', 'state', 'approvers', 'votes', 'created_at', 'sign'],
  properties: {
    id: { type: 'string' },
    capsule: { type: 'string' },
    k: { type: 'integer' },
    n: { type: 'integer' },
    state: { type: 'string', enum: ['open', 'approved', 'rejected'] },
    approvers: { type: 'array', items: { type: 'object', properties: { keyid: { type: 'string' }, name: { type: 'string' } } } },
    votes: { type: 'array', items: { type: 'object', properties: { approver: { type: 'string' }, decision: { type: 'string' }, at: { type: 'string' } } } },
    created_at: { type: 'string' },
    decided_at: { type: ['string', 'null'] },
    card_url: { type: 'string' },
    sign: {
      type: 'object',
      description: 'What an approver signs: a DSSE envelope of payloadType over the canonical JSON of the decision, with decision "approve" or "reject" and approver = the signer\'s keyid.',
      properties: { payloadType: { type: 'string' }, decision: { type: 'object', additionalProperties: true } },
    },
  },
} as const;
const runResponse = {
  type: 'object',
  required: ['cid', 'verdict', 'state', 'card_url', 'bundle_url', 'product', 'repeated', 'consent'],
  properties: {
    cid: { type: 'string' },
    verdict,
    state: { type: 'string', enum: ['decided', 'pending', 'rejected'] },
    card_url: { type: 'string' },
    bundle_url: { type: 'string' },
    product: { type: 'string' },
    repeated: { type: 'boolean' },
    consent: { type: ['object', 'null'], properties: { id: { type: 'string' }, k: { type: 'integer' }, n: { type: 'integer' } } },
  },
} as const;
const runBody = {
  type: 'object',
  description: 'A JSON view (seed 004 §10) with hdr {src, nonce, exp?}. At most 64 KiB, 32 levels deep; strings NFC-normalized.',
  required: ['hdr'],
  additionalProperties: true,
  properties: {
    hdr: { type: 'object', required: ['src', 'nonce'], properties: { src: { type: 'string' }, nonce: { type: 'string' }, exp: { type: ['string', 'null'] } } },
  },
} as const;

/** Bodies of /v1/run are parsed by the view parser, not Fastify's: this marks the parsed result. */
const PARSED = Symbol('parsed view');
type ParsedBody = Record<string, unknown> & { [PARSED]?: ParsedView };

export const v1Routes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  // A consent decision may also be sent with its own media type (the envelope's payloadType names it).
  app.addContentTypeParser(CONSENT_PAYLOAD_TYPE, { parseAs: 'buffer' }, (request, body, done) => parseJsonBody(request, body as Buffer, done));
  const tenantOf = (request: FastifyRequest): Tenant => request.tenant ?? { id: DEFAULT_TENANT };
  const origin = localOrigin;
  const consentView = (c: ConsentRecord, request: FastifyRequest) => {
    const product = runtime.products.byCid(runtime.receipts.capsule(c.capsule)?.capsule.product ?? '');
    const names = new Map((product?.kofn?.approvers ?? []).map((a) => [a.keyid, a.name]));
    const template: Omit<ConsentDecision, 'decision' | 'approver'> = { v: CONSENT_VERSION, consent: c.id, capsule: c.capsule };
    return {
      ...c,
      n: c.approvers.length,
      approvers: c.approvers.map((keyid) => ({ keyid, name: names.get(keyid) ?? '' })),
      card_url: origin(request) + cardPath(c.capsule),
      sign: { payloadType: CONSENT_PAYLOAD_TYPE, decision: template },
    };
  };

  /** A tenant's consent requests: the newest 1,000 of all are read, the tenant's kept (a tenant's older ones need the device token). */
  const consentsVisibleTo = (request: FastifyRequest, query: { state?: ConsentRecord['state']; limit?: number }): ConsentRecord[] => {
    const all = runtime.receipts.consents(request.tenant === null ? query : { ...query, limit: 1000 });
    if (request.tenant === null) return all;
    return all.filter((c) => {
      const capsule = runtime.receipts.capsule(c.capsule)?.capsule;
      return capsule !== undefined && canSee(request, capsule);
    }).slice(0, query.limit ?? 100);
  };

  // The run route parses its body with the view parser (size, depth, NFC, numbers) instead of JSON.parse.
  await app.register(async (scope) => {
    // Only JSON: text/plain and the rest answer 415 UNSUPPORTED_MEDIA_TYPE.
    scope.removeAllContentTypeParsers();
    // A body over the parser's limit is a view over its own (smaller) limit: the same code either way.
    scope.setErrorHandler((err: FastifyError, _request, reply) => {
      if (err.code !== 'FST_ERR_CTP_BODY_TOO_LARGE') throw err;
      const tooLarge = new TesseraError('VIEW_TOO_LARGE', `The view is over ${VIEW_LIMITS.maxBytes} bytes of UTF-8; send a smaller view (large content goes by cid, e.g. ctx.body_cid).`);
      void reply.code(tooLarge.status).send({ error: toErrorData(tooLarge) });
    });
    // The text is kept as read and parsed in preValidation: an error thrown by a content-type parser makes Fastify
    // close the connection, and a keep-alive client should keep it after a refused view.
    // Bytes that are not UTF-8 are refused here, not turned into U+FFFD (main/common/json-text.ts).
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_request, body, done) => {
      const text = decodeUtf8(body as Buffer);
      done(null, typeof text === 'string' ? text : new TesseraError('VIEW_INVALID', `$: ${text.message}`, { details: { path: '$' } }));
    });

    scope.post<{ Body: ParsedBody; Querystring: { product?: string } }>('/v1/run', {
      config: { access: ['operator', 'tenant'] },
      preValidation: async (request) => {
        if (request.body instanceof TesseraError) throw request.body;
        const parsed = parseView(request.body as unknown as string);
        const value: ParsedBody = { hdr: parsed.hdr, ...parsed.view };
        Object.defineProperty(value, PARSED, { value: parsed, enumerable: false });
        request.body = value;
      },
      schema: {
        summary: 'Decide one JSON view: intake → policies → permit → receipts → verify → enrich.',
        description: 'The same view (without hdr.nonce/hdr.exp) to the same product by the same tenant gives the same capsule cid; a decided capsule is answered as it stands. A second (src, nonce) is refused with 409 REPLAY_BLOCKED.',
        tags: ['receipts'],
        security: secured,
        querystring: { type: 'object', additionalProperties: false, properties: { product: { type: 'string', pattern: '^[a-z][a-z0-9-]{1,63}$' } } },
        body: runBody,
        response: { 200: runResponse, 400: errorRef, 401: errorRef, 404: errorRef, 409: errorRef, 413: errorRef, 415: errorRef, 500: errorRef, 503: errorRef },
      },
    }, async (request) => {
      const parsed = request.body[PARSED];
      if (!parsed) throw new TesseraError('VIEW_INVALID', 'The body could not be read as a JSON view.');
      const outcome = await runtime.pipeline.run({ tenant: tenantOf(request), body: parsed, ...(request.query.product ? { product: request.query.product } : {}) });
      return { ...outcome, card_url: origin(request) + cardPath(outcome.cid), bundle_url: origin(request) + bundlePath(outcome.cid) };
    });
  });

  app.get<{ Params: { cid: string } }>('/v1/r/:cid', {
    config: { access: ['staff', 'operator', 'tenant'] },
    schema: {
      summary: "A capsule's card: decision, evidence, receipt chain, bundle link. JSON, or HTML when the client prefers text/html.",
      tags: ['receipts'],
      security: secured,
      params: { type: 'object', required: ['cid'], properties: { cid: cidParam } },
      produces: ['application/json', 'text/html'],
      response: {
        200: {
          type: 'object',
          additionalProperties: true,
          required: ['cid', 'verdict', 'state', 'receipts', 'card_url', 'bundle_url'],
          properties: {
            cid: { type: 'string' },
            verdict,
            state: { type: 'string' },
            decision: { type: ['string', 'null'] },
            evidence: { type: 'array', items: {} },
            receipts: { type: 'array', items: { type: 'object', additionalProperties: true } },
            card_url: { type: 'string' },
            bundle_url: { type: 'string' },
          },
        },
        400: errorRef,
        401: errorRef,
        404: errorRef,
      },
    },
  }, async (request, reply) => {
    const { cid } = request.params;
    const record = runtime.receipts.capsule(cid);
    if (!record || !canSee(request, record.capsule)) throw new TesseraError('CAPSULE_NOT_FOUND', `No capsule ${cid} on this device.`);
    const product = runtime.products.byCid(record.capsule.product);
    // Ghosted unless the deciding product is loaded and does not ask for it.
    const card = cardData(runtime.receipts, cid, { card_url: origin(request) + cardPath(cid), bundle_url: origin(request) + bundlePath(cid) }, { ghost: product?.enrich.includes('ghost') ?? true });
    if (!card) throw new TesseraError('CAPSULE_NOT_FOUND', `No capsule ${cid} on this device.`);
    void reply.header('vary', 'Accept');
    if (prefersHtml(request.headers.accept)) {
      return reply.type('text/html; charset=utf-8').header('content-security-policy', CARD_CSP).send(renderCardHtml(card));
    }
    return card;
  });

  app.get<{ Querystring: { state?: ConsentRecord['state']; limit?: number } }>('/v1/consents', {
    config: { access: ['operator', 'tenant'] },
    schema: {
      summary: 'Consent requests (k-of-n), newest first, with what an approver must sign.',
      tags: ['receipts'],
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: ['open', 'approved', 'rejected'] }, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
      response: { 200: { type: 'object', required: ['consents'], properties: { consents: { type: 'array', items: consentSchema } } }, 400: errorRef, 401: errorRef },
    },
  }, async (request) => {
    const query = { ...(request.query.state ? { state: request.query.state } : {}), ...(request.query.limit ? { limit: request.query.limit } : {}) };
    return { consents: consentsVisibleTo(request, query).map((c) => consentView(c, request)) };
  });

  for (const action of ['approve', 'reject'] as const) {
    app.post<{ Params: { id: string }; Body: unknown }>(`/v1/consents/:id/${action}`, {
      config: { access: ['operator', 'tenant'] },
      schema: {
        summary: `${action === 'approve' ? 'Approve' : 'Reject'} a consent request with a DSSE envelope signed by one of its approvers.`,
        tags: ['receipts'],
        security: secured,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^cns_[0-9a-f]{24}$' } } },
        body: envelopeSchema,
        response: {
          200: { type: 'object', required: ['consent', 'verdict'], properties: { consent: consentSchema, verdict } },
          400: errorRef,
          401: errorRef,
          403: errorRef,
          404: errorRef,
          409: errorRef,
        },
      },
    }, async (request) => {
      const consent = runtime.receipts.consent(request.params.id);
      const capsule = consent ? runtime.receipts.capsule(consent.capsule)?.capsule : undefined;
      if (consent && (!capsule || !canSee(request, capsule))) throw new TesseraError('CONSENT_NOT_FOUND', `No consent request ${request.params.id}.`);
      const outcome = runtime.pipeline.decide(request.params.id, action, request.body);
      return { consent: consentView(outcome.consent, request), verdict: outcome.verdict };
    });
  }
};

/** True when the Accept header ranks text/html above application/json (browsers send text/html first). */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = -1;
  let json = -1;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().split(';');
    const q = Number(params.map((p) => p.trim()).find((p) => p.startsWith('q='))?.slice(2) ?? '1');
    const t = type?.trim().toLowerCase();
    if (t === 'text/html') html = Math.max(html, q);
    else if (t === 'application/json') json = Math.max(json, q);
  }
  return html > 0 && html > json;
}
