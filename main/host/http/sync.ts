/**
 * Sync routes (issue 16 §6): this device's view of the cloud — status for the status bar and `tessera sync status`,
 * a round now, and enrollment with a one-time code. The cloud's own routes are in main/cloud.
 */
import type { FastifyPluginAsync } from 'fastify';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];

const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });

/** common/cloud.ts SyncStatus. */
export const syncStatusSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['cloud', 'state', 'last_sync', 'last_error', 'pending_uploads', 'accepted_size', 'next_attempt', 'deny_list_as_of', 'leases'],
  properties: {
    cloud: nullable({
      type: 'object', additionalProperties: false, required: ['url', 'tenant', 'role', 'device'],
      properties: { url: { type: 'string' }, tenant: { type: 'string' }, role: { type: 'string' }, device: { type: 'string' } },
    }),
    state: { type: 'string', enum: ['not_enrolled', 'online', 'offline', 'syncing', 'refused'] },
    last_sync: { type: ['string', 'null'] },
    last_error: nullable({ type: 'object', additionalProperties: false, required: ['code', 'message', 'at'], properties: { code: { type: 'string' }, message: { type: 'string' }, at: { type: 'string' } } }),
    pending_uploads: { type: 'integer' },
    accepted_size: { type: 'integer' },
    next_attempt: { type: ['string', 'null'] },
    deny_list_as_of: { type: ['string', 'null'] },
    leases: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['lease', 'serial', 'product_cid', 'rights', 'used', 'left', 'exp', 'state'],
        properties: {
          lease: { type: 'string' }, serial: { type: 'string' }, product_cid: { type: 'string' }, title: { type: 'string' }, rights: { type: 'integer' },
          used: { type: 'integer' }, left: { type: 'integer' }, exp: { type: 'string' }, state: { type: 'string', enum: ['active', 'expired', 'returned', 'recalled'] },
        },
      },
    },
  },
} as const;

export const syncRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  app.get('/api/sync', {
    config: { access: ['staff', 'operator'] },
    schema: {
      summary: 'Sync status: cloud, online/offline/syncing/refused, last sync, pending uploads, deny-list age, lease balances.',
      tags: ['sync'],
      security: secured,
      response: { 200: syncStatusSchema, 401: errorRef, 403: errorRef },
    },
  }, async () => runtime.sync.status());

  app.post('/api/sync/now', {
    config: { access: ['staff', 'operator'] },
    schema: {
      summary: 'Run a sync round now (upload, pull, lease returns) and answer the status after it; a failed round is in last_error.',
      tags: ['sync'],
      security: secured,
      response: { 200: syncStatusSchema, 401: errorRef, 403: errorRef, 409: errorRef },
    },
  }, async () => runtime.sync.now());

  app.post<{ Body: { cloud: string; code: string; name?: string } }>('/api/sync/enroll', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Enroll this device with a cloud using a one-time code (the device key signs the cloud\'s challenge).',
      tags: ['sync'],
      security: secured,
      body: {
        type: 'object', additionalProperties: false, required: ['cloud', 'code'],
        properties: { cloud: { type: 'string', minLength: 8, maxLength: 500 }, code: { type: 'string', minLength: 1, maxLength: 200 }, name: { type: 'string', minLength: 1, maxLength: 100 } },
      },
      response: { 200: syncStatusSchema, 400: errorRef, 401: errorRef, 403: errorRef, 409: errorRef, 503: errorRef },
    },
  }, async (request) => runtime.sync.enroll(request.body));
};
