/**
 * Who am I, and the operator unlock (issue 13 §1.2): a kiosk started for travellers holds the traveller's
 * token; the operator types the device's PIN on the kiosk itself and gets a short-lived token holding every
 * role, which ends on `lock` or when it expires. Credentials and the lockout live in main/host/credentials.ts.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { SessionView } from '../../common/roles.js';
import { ROLES } from '../../common/roles.js';
import { ANY_ROLE } from './access.js';
import { UNLOCK_TTL_MS } from '../credentials.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const roles = { type: 'array', items: { type: 'string', enum: [...ROLES] } } as const;

export const authRoutes: FastifyPluginAsync = async (app) => {
  const { credentials } = app.tessera;

  app.get('/api/auth/session', {
    config: { access: [...ANY_ROLE, 'tenant'] },
    schema: {
      summary: 'What the credential this request carries may do: its kind, its roles, when it expires, and whether an operator PIN is set.',
      tags: ['auth'],
      security: secured,
      response: {
        200: {
          type: 'object',
          required: ['kind', 'roles', 'pin_set'],
          properties: { kind: { type: 'string', enum: ['device', 'role', 'unlocked', 'tenant'] }, roles, expires_at: { type: 'string' }, pin_set: { type: 'boolean' } },
        },
        401: errorRef,
      },
    },
  }, async (request): Promise<SessionView> => {
    const principal = request.principal!;
    return {
      kind: principal.kind,
      roles: [...principal.roles],
      ...(principal.expiresAt !== undefined ? { expires_at: new Date(principal.expiresAt).toISOString() } : {}),
      pin_set: credentials.pinSet(),
    };
  });

  app.post<{ Body: { pin: string; ttl_seconds?: number } }>('/api/auth/unlock', {
    config: { access: ANY_ROLE },
    schema: {
      summary: 'Operator unlock: the PIN set with `tessera pin set` → a token holding every role for up to 15 minutes.',
      description: 'After 5 wrong PINs the unlock is locked for 30 s, doubling after each further 5 (up to 15 min): 429 PIN_LOCKED with details.retry_after_seconds.',
      tags: ['auth'],
      security: secured,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['pin'],
        properties: { pin: { type: 'string', minLength: 1, maxLength: 64 }, ttl_seconds: { type: 'integer', minimum: 10, maximum: UNLOCK_TTL_MS / 1000 } },
      },
      response: {
        200: { type: 'object', required: ['token', 'roles', 'expires_at'], properties: { token: { type: 'string' }, roles, expires_at: { type: 'string' } } },
        400: errorRef,
        401: errorRef,
        403: errorRef,
        409: errorRef,
        429: errorRef,
      },
    },
  }, async (request, reply) => {
    try {
      return await credentials.unlock(request.body.pin, request.body.ttl_seconds === undefined ? undefined : request.body.ttl_seconds * 1000);
    } catch (err) {
      const wait = (err as { details?: { retry_after_seconds?: number } }).details?.retry_after_seconds;
      if (wait !== undefined) void reply.header('retry-after', String(wait));
      throw err;
    }
  });

  app.post('/api/auth/lock', {
    config: { access: ANY_ROLE },
    schema: {
      summary: 'Ends the operator session this request was sent with (a no-op for other credentials).',
      tags: ['auth'],
      security: secured,
      response: { 200: { type: 'object', required: ['locked'], properties: { locked: { type: 'boolean' } } }, 401: errorRef },
    },
  }, async (request) => ({ locked: credentials.lock(request.principal!.token) }));
};
