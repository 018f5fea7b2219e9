/**
 * Entitlement routes (issue 14 §5–§6; notes/ISSUE14-PLAN.md "HTTP routes"): redeem and check a code, undo a
 * redemption within its window, redemption history, issued entitlements, per-serial revocation and the
 * issuing switch (seed 000 §7.2). A refused code is a verdict in a 200 answer, not an HTTP error: staff read
 * it (docs/errors.md "Redemption verdicts").
 */
import type { FastifyPluginAsync } from 'fastify';
import { REDEEM_VERDICTS } from '../../common/entitlements.js';
import type { RedeemRequest } from '../../common/entitlements.js';
import { entitlementsQuerySchema, redeemRequestSchema, redemptionsQuerySchema, setIssuingSchema } from '../schemas.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];

const entitlementView = {
  type: 'object',
  additionalProperties: false,
  required: ['serial', 'product_cid', 'kind', 'valid_from', 'valid_until', 'venues'],
  properties: {
    serial: { type: 'string' }, product_cid: { type: 'string' }, product_ref: { type: 'string' }, title: { type: 'string' },
    kind: { type: 'string', enum: ['single_use', 'multi_use', 'time_pass', 'stored_value'] },
    rights_total: { type: 'integer' }, rights_left: { type: 'integer' }, currency: { type: 'string' },
    valid_from: { type: 'string' }, valid_until: { type: 'string' }, venues: { type: 'array', items: { type: 'string' } },
  },
} as const;

const redeemAnswerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['verdict', 'ok', 'message'],
  properties: {
    verdict: { type: 'string', enum: [...REDEEM_VERDICTS] },
    ok: { type: 'boolean' },
    message: { type: 'string' },
    entitlement: entitlementView,
    redemption: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'at', 'venue', 'undo_until', 'receipt_id', 'capsule'],
      properties: {
        id: { type: 'string' }, at: { type: 'string' }, venue: { type: 'string' }, screen: { type: 'string' }, amount: { type: 'integer' },
        undo_until: { type: 'string' }, receipt_id: { type: 'string' }, capsule: { type: 'string' }, undone_at: { type: 'string' },
      },
    },
    previous: { type: 'object', additionalProperties: false, required: ['at', 'venue'], properties: { at: { type: 'string' }, venue: { type: 'string' }, screen: { type: 'string' } } },
    // Issue 16: the lease balance of a product the cloud protects (common/entitlements.ts RedeemLease).
    lease: {
      type: 'object',
      additionalProperties: false,
      required: ['lease', 'rights', 'used', 'left', 'exp', 'protection'],
      properties: {
        lease: { type: ['string', 'null'] }, rights: { type: 'integer' }, used: { type: 'integer' }, left: { type: 'integer' }, exp: { type: ['string', 'null'] },
        protection: { type: 'string', enum: ['prevent', 'bound', 'detect'] }, beyond: { type: 'integer' }, bound: { type: 'integer' },
      },
    },
  },
} as const;

const issuingSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['paused'],
  properties: { paused: { type: 'boolean' }, since: { type: 'string' }, reason: { type: 'string' } },
} as const;

const looseArray = (name: string) => ({ type: 'object', required: [name], properties: { [name]: { type: 'array', items: { type: 'object', additionalProperties: true } } } });

export const redeemRoutes: FastifyPluginAsync = async (app) => {
  const { runtime, operations } = app.tessera;

  app.post<{ Body: RedeemRequest }>('/api/redeem', {
    config: { access: ['staff', 'operator'] },
    schema: {
      summary: 'Redeem an entitlement code at a venue: checks offline, writes the ledger row and a signed REDEMPTION receipt in one transaction.',
      tags: ['entitlements'],
      security: secured,
      body: redeemRequestSchema,
      response: { 200: redeemAnswerSchema, 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request) => operations.redeem(request.body));

  app.post<{ Body: RedeemRequest }>('/api/redeem/check', {
    config: { access: ['staff', 'operator'] },
    schema: {
      summary: 'What /api/redeem would answer (VALID or a refusal); writes nothing.',
      tags: ['entitlements'],
      security: secured,
      body: redeemRequestSchema,
      response: { 200: redeemAnswerSchema, 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request) => operations.checkCode(request.body));

  app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>('/api/redemptions/:id/undo', {
    config: { access: ['staff', 'operator'] },
    schema: {
      summary: 'Undo a redemption within 2 minutes with a compensating REDEMPTION receipt.',
      tags: ['entitlements'],
      security: secured,
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } },
      body: { type: ['object', 'null'], additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } },
      response: { 200: redeemAnswerSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (request) => operations.undoRedemption({ id: request.params.id, ...(request.body?.reason ? { reason: request.body.reason } : {}) }));

  app.get<{ Querystring: { q?: string; venue?: string; limit?: number; before?: string } }>('/api/redemptions', {
    config: { access: ['staff', 'operator'] },
    schema: {
      summary: 'Redemption history on this device, newest first; `q` searches serial, venue, screen, id, product and title.',
      tags: ['entitlements'],
      security: secured,
      querystring: redemptionsQuerySchema,
      response: { 200: looseArray('redemptions'), 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request) => ({ redemptions: operations.redemptions(request.query) }));

  app.get<{ Querystring: { session?: string; user?: string; state?: string; limit?: number } }>('/api/entitlements', {
    config: { access: ['traveller', 'staff', 'operator'] },
    schema: {
      summary: 'Entitlements this device issued (with their codes and rights left), by session, user or state.',
      tags: ['entitlements'],
      security: secured,
      querystring: entitlementsQuerySchema,
      response: { 200: looseArray('entitlements'), 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request) => ({ entitlements: operations.entitlements(request.query) }));

  app.post<{ Params: { serial: string }; Body: { reason: string } }>('/api/entitlements/:serial/revoke', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Revoke one serial on this device (any issuer\'s): later redemptions answer REVOKED.',
      tags: ['entitlements'],
      security: secured,
      params: { type: 'object', required: ['serial'], properties: { serial: { type: 'string', pattern: '^[0-9a-f]{24}$' } } },
      body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } },
      response: { 200: { type: 'object', required: ['revoked'], properties: { revoked: { type: 'string' } } }, 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request) => {
    runtime.entitlements.revoke(request.params.serial, request.body.reason);
    return { revoked: request.params.serial };
  });

  app.get('/api/issuing', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Whether issuing is paused (degraded mode, seed 000 §7.2).',
      tags: ['entitlements'],
      security: secured,
      response: { 200: issuingSchema, 401: errorRef, 403: errorRef },
    },
  }, async () => operations.issuing());

  app.post<{ Body: { paused: boolean; reason?: string } }>('/api/issuing', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Pause or resume issuing; journals trutta.degraded / trutta.restored. Redemption goes on either way.',
      tags: ['entitlements'],
      security: secured,
      body: setIssuingSchema,
      response: { 200: issuingSchema, 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request) => operations.setIssuing(request.body));
};
