/**
 * Webhook routes (issue 5 point 8, seed 004 §2 `POST /webhook/test`): subscriptions, their delivery log, and
 * a checker that tells a receiver whether a callback it got is authentic and well-formed. Bearer auth like
 * every `/v1` route (server.ts); subscriptions and the delivery log need the device API token, because a
 * subscription receives every tenant's records: a tenant token (`<data>/tenants.json`) gets 403 there and may
 * only use `POST /v1/webhook/test`.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { DeliveryState, SubscribeInput } from '../../runtime/webhooks/index.js';
import { MAX_PATTERNS, WEBHOOK_PAYLOAD_TYPE } from '../../runtime/webhooks/index.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

const subscriptionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'url', 'events', 'description', 'created_at'],
  properties: {
    id: { type: 'string', description: '`whs_…`' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    description: { type: 'string' },
    created_at: { type: 'string' },
  },
} as const;

const signingKeySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['keyid', 'public_key_pem', 'payload_type'],
  properties: {
    keyid: { type: 'string' },
    public_key_pem: { type: 'string', description: 'SPKI PEM of the device key, for `openssl pkeyutl -verify -pubin`.' },
    payload_type: { type: 'string', description: 'The signed payload type is this, then `;t=<Tessera-Signature t>`.' },
  },
} as const;

const attemptSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['attempt', 'started_at', 'duration_ms', 'status', 'error', 'outcome'],
  properties: {
    attempt: { type: 'integer' },
    started_at: { type: 'string' },
    duration_ms: { type: ['number', 'null'] },
    status: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
    outcome: { type: 'string', enum: ['started', 'success', 'retry', 'failed'] },
  },
} as const;

const deliverySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'subscription_id', 'event', 'cid', 'key', 'state', 'attempts', 'next_attempt_at', 'created_at', 'updated_at', 'last_status', 'last_error', 'attempt_log'],
  properties: {
    id: { type: 'string' },
    subscription_id: { type: 'string' },
    event: { type: 'string' },
    cid: { type: 'string', description: "The subject record's cid." },
    key: { type: 'string', description: 'The Idempotency-Key: cid of {event, data}.' },
    state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    next_attempt_at: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
    last_status: { type: ['integer', 'null'] },
    last_error: { type: ['string', 'null'] },
    attempt_log: { type: 'array', items: attemptSchema },
  },
} as const;

const testResultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['valid'],
  properties: {
    valid: { type: 'boolean' },
    reason: { type: 'string', description: 'Why the callback is not valid (absent when it is).' },
    keyid: { type: 'string' },
    timestamp: { type: 'integer' },
    event: { type: 'string' },
    cid: { type: 'string' },
    key: { type: 'string' },
    delivery: { type: 'string' },
  },
} as const;

interface TestBody {
  headers: Record<string, string>;
  body: string;
  tolerance_seconds?: number;
}

export const webhookRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;
  const signingKey = () => ({ ...runtime.webhooks.signingKey, payload_type: WEBHOOK_PAYLOAD_TYPE });
  app.post<{ Body: SubscribeInput }>('/v1/webhooks', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Subscribe an http(s) URL to events; callbacks are signed by the device key (README "Webhook callbacks").',
      tags: ['webhooks'],
      security: secured,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          url: { type: 'string', minLength: 1, description: 'http(s) URL, at most 2,048 characters (longer: WEBHOOK_URL_INVALID).' },
          events: { type: 'array', minItems: 1, maxItems: MAX_PATTERNS, items: { type: 'string', minLength: 1, maxLength: 200 }, description: 'Topic patterns; default ["**"].' },
          description: { type: 'string', maxLength: 200 },
        },
      },
      response: { 201: { type: 'object', additionalProperties: false, required: ['webhook', 'signing_key'], properties: { webhook: subscriptionSchema, signing_key: signingKeySchema } }, 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request, reply) => reply.code(201).send({ webhook: runtime.webhooks.subscribe(request.body), signing_key: signingKey() }));

  app.get('/v1/webhooks', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Webhook subscriptions and the key that signs their callbacks.',
      tags: ['webhooks'],
      security: secured,
      response: { 200: { type: 'object', additionalProperties: false, required: ['webhooks', 'signing_key'], properties: { webhooks: { type: 'array', items: subscriptionSchema }, signing_key: signingKeySchema } }, 401: errorRef, 403: errorRef },
    },
  }, async () => ({ webhooks: runtime.webhooks.list(), signing_key: signingKey() }));

  app.get<{ Params: { id: string } }>('/v1/webhooks/:id', {
    config: { access: ['operator'] },
    schema: {
      summary: 'One webhook subscription.',
      tags: ['webhooks'],
      security: secured,
      params: idParam,
      response: { 200: subscriptionSchema, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request) => runtime.webhooks.get(request.params.id));

  app.delete<{ Params: { id: string } }>('/v1/webhooks/:id', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Remove a subscription with its pending deliveries and their log.',
      tags: ['webhooks'],
      security: secured,
      params: idParam,
      response: { 200: { type: 'object', additionalProperties: false, required: ['deleted'], properties: { deleted: { type: 'string' } } }, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request) => {
    runtime.webhooks.unsubscribe(request.params.id);
    return { deleted: request.params.id };
  });

  app.get<{ Params: { id: string }; Querystring: { state?: DeliveryState; limit?: number } }>('/v1/webhooks/:id/deliveries', {
    config: { access: ['operator'] },
    schema: {
      summary: "A subscription's deliveries, newest first, each with its attempts (status, error, duration).",
      tags: ['webhooks'],
      security: secured,
      params: idParam,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { state: { type: 'string', enum: ['pending', 'delivered', 'failed'] }, limit: { type: 'integer', minimum: 1, maximum: 500 } },
      },
      response: { 200: { type: 'object', additionalProperties: false, required: ['deliveries'], properties: { deliveries: { type: 'array', items: deliverySchema } } }, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request) => ({ deliveries: runtime.webhooks.deliveries(request.params.id, request.query) }));

  app.post<{ Body: TestBody }>('/v1/webhook/test', {
    config: { access: ['operator', 'tenant'] },
    schema: {
      summary: 'Check a callback as a receiver got it (headers and exact body text): valid, or the precise reason it is not.',
      tags: ['webhooks'],
      security: secured,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['headers', 'body'],
        properties: {
          headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 8192 }, maxProperties: 100 },
          body: { type: 'string', description: 'The body exactly as received (the signature covers its bytes).' },
          tolerance_seconds: { type: 'integer', minimum: 0, maximum: 31_536_000, description: 'Allowed distance between the signature time and now; default 300.' },
        },
      },
      response: { 200: testResultSchema, 400: errorRef, 401: errorRef },
    },
  }, async (request) => runtime.webhooks.check(request.body.headers, request.body.body, request.body.tolerance_seconds === undefined ? {} : { toleranceSeconds: request.body.tolerance_seconds }));
};
