/**
 * Product runtime session routes (seed 000 §3, §4.2–4.6; issue 14 point 2): a traveller (or an operator for them)
 * creates a session for a product, sees its preflight in words, pays from a wallet, holds the entitlements, cancels.
 * Every move is journaled as `product.runtime.*` and receipted in the session's capsule (`/v1/r/<capsule>`).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { SESSION_STATES } from '../../runtime/sessions/index.js';
import type { CreateSessionRequest, SessionState } from '../../runtime/sessions/index.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const ROLES = ['traveller', 'staff', 'operator'] as const;
const BUYERS = ['traveller', 'operator'] as const;
const NAME = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\w.:@-]+$' } as const;
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

const money = { type: 'object', required: ['amount', 'currency'], properties: { amount: { type: 'integer' }, currency: { type: 'string' } } } as const;
const reason = { type: ['object', 'null'], required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } as const;

/** `POST /api/sessions` (also the Electron IPC `createProductSession` argument). */
export const createSessionBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['product'],
  properties: {
    product: { type: 'string', minLength: 1, maxLength: 200, description: '`id`, `id@range` or a ProductDef cid.' },
    user_id: NAME,
    wallet_id: NAME,
    market: { type: 'string', minLength: 1, maxLength: 64 },
    city: { type: 'string', minLength: 1, maxLength: 64 },
    idempotency_key: { type: 'string', minLength: 1, maxLength: 128, description: 'The same key from the same user answers the first session (no second one).' },
    preflight: { type: 'boolean', description: 'Run the preflight now (default true).' },
  },
} as const;

/** `GET /api/sessions` (also the IPC `listProductSessions` argument). */
export const sessionsQuerySchema = { type: 'object', additionalProperties: false, properties: { user: NAME, state: { type: 'string', enum: [...SESSION_STATES] }, limit: { type: 'integer', minimum: 1, maximum: 500 } } } as const;

/** The body of `POST /api/sessions/:id/<action>`. */
export const sessionActionBodySchema = { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } } as const;

export const sessionSchema = {
  type: 'object',
  required: ['product_runtime_session_id', 'state', 'product', 'user_id', 'wallet_id', 'price', 'capsule', 'entitlements', 'created_at', 'updated_at'],
  properties: {
    product_runtime_session_id: { type: 'string', description: '`prs_<uuid>`; carried by every event and receipt of the session.' },
    state: { type: 'string', enum: [...SESSION_STATES] },
    product: {
      type: 'object',
      required: ['ref', 'id', 'version', 'cid'],
      properties: { ref: { type: 'string' }, id: { type: 'string' }, version: { type: 'string' }, cid: { type: 'string', description: 'cid of the ProductDef (product_version_id).' }, title: { type: ['string', 'null'] }, journey: { type: ['string', 'null'], description: 'The journey document the product names (`POST /api/journeys` starts it), or null.' } },
    },
    user_id: { type: 'string' },
    wallet_id: { type: 'string' },
    market: { type: ['string', 'null'] },
    city: { type: ['string', 'null'] },
    price: money,
    preflight: {
      type: ['object', 'null'],
      properties: {
        verdict: { type: 'string', enum: ['ACK', 'NACK'] },
        reasons: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, plugin: { type: 'string' } } } },
      },
    },
    payment: {
      type: ['object', 'null'],
      properties: { payment_id: { type: 'string' }, captured_at: { type: 'string' }, amount: { type: 'integer' }, currency: { type: 'string' }, refund_id: { type: 'string' }, refunded_at: { type: 'string' } },
    },
    entitlements: { type: 'array', items: { type: 'object', additionalProperties: true } },
    capsule: { type: 'string', description: 'The session\'s receipts: `GET /v1/r/<capsule>`.' },
    reason,
    journey_instance_id: { type: ['string', 'null'] },
    trace_id: { type: 'string' },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
    ended_at: { type: ['string', 'null'] },
  },
} as const;

/** Who asks, as the session's events and receipts record it: the device owner, or the caller's roles. */
const caller = (request: FastifyRequest): string => (request.principal === null ? 'unknown' : request.principal.kind === 'device' ? 'device' : request.principal.roles.join('+'));

export const sessionRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;
  const sessions = () => runtime.sessions;

  app.post<{ Body: CreateSessionRequest }>('/api/sessions', {
    config: { access: [...BUYERS] },
    schema: {
      summary: 'Start a product runtime session and run its preflight (seed 000 §4.2); the answer says preflight_ok or preflight_failed with reasons a traveller can read.',
      tags: ['products'],
      security: secured,
      body: createSessionBodySchema,
      response: { 201: sessionSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef },
    },
  }, async (request, reply) => reply.code(201).send(await sessions().create({ ...request.body, by: caller(request) })));

  app.get<{ Querystring: { user?: string; state?: SessionState; limit?: number } }>('/api/sessions', {
    config: { access: [...ROLES] },
    schema: {
      summary: 'Product sessions, newest first.',
      tags: ['products'],
      security: secured,
      querystring: sessionsQuerySchema,
      response: { 200: { type: 'object', required: ['sessions'], properties: { sessions: { type: 'array', items: sessionSchema } } }, 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request) => ({ sessions: sessions().list(request.query) }));

  app.get<{ Params: { id: string } }>('/api/sessions/:id', {
    config: { access: [...ROLES] },
    schema: { summary: 'One product session with its entitlements.', tags: ['products'], security: secured, params: idParam, response: { 200: sessionSchema, 401: errorRef, 403: errorRef, 404: errorRef } },
  }, async (request) => sessions().get(request.params.id));

  const action = (path: string, summary: string, run: (id: string, body: { reason?: string }, by: string) => Promise<unknown>, access: readonly string[] = BUYERS) =>
    app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(`/api/sessions/:id/${path}`, {
      config: { access: [...access] as never },
      schema: {
        summary,
        tags: ['products'],
        security: secured,
        params: idParam,
        body: sessionActionBodySchema,
        response: { 200: sessionSchema, 400: errorRef, 401: errorRef, 402: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef },
      },
    }, async (request) => run(request.params.id, request.body ?? {}, caller(request)));

  action('preflight', 'Run the preflight of a session created with `preflight: false` (or whose preflight could not run).', (id, _body, by) => sessions().preflight(id, by));
  action('pay', 'Pay from the session\'s wallet and issue its entitlements (seed 000 §4.3); a session already active is answered as it is (one charge).', (id, _body, by) => sessions().pay(id, by));
  action('cancel', 'Cancel: refunds what was paid and revokes the entitlements, if none of them was used.', (id, body, by) => sessions().cancel(id, body.reason, by));
  action('complete', 'Complete an active session now, with its settlement receipt (seed 000 §4.6).', (id, body, by) => sessions().complete(id, body.reason, by), ['operator']);
};
