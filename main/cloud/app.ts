/**
 * The cloud's HTTP server (issue 16): Fastify with the device API's conventions — every route declares who may
 * reach it (`config.access`), schemas on every route (they land in `/openapi.json`), the one error shape, one strict
 * JSON parser, size and rate limits.
 *
 * ## Who may call what (decided on the route the server matched, deny by default)
 * - `root`: the cloud's operator token (`<cloud data>/root-token`, printed by `tessera cloud start`). Creates tenants.
 * - `admin`: a tenant's admin token (`Authorization: Bearer …`). Sees and changes its own tenant's rows only.
 * - `device`: a request signed by an enrolled, unrevoked device key (common/cloud.ts {@link DEVICE_HEADERS}).
 * Every handler reads the tenant from `request.caller`, never from the URL or body: a tenant cannot name another.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import Ajv from 'ajv';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEVICE_HEADERS, REQUEST_SKEW_S, requestSigningBytes } from '../common/cloud.js';
import type { DeviceRole } from '../common/cloud.js';
import { fromBase64 } from '../common/dsse.js';
import type { DsseEnvelope } from '../common/dsse.js';
import type { ReceiptPayload } from '../common/receipt.js';
import { TesseraError } from '../common/errors.js';
import type { ErrorCode } from '../common/errors.js';
import { errorResponse } from '../host/http/error-response.js';
import { bearerToken, parseJsonBody } from '../host/http/request.js';
import { errorSchema } from '../host/schemas.js';
import { readPublicKey, verifyEd25519 } from '../runtime/keys/index.js';
import type { Logger } from '../runtime/log/index.js';
import type { Db, Sql } from './db.js';

/** Who may reach a cloud route. */
export type CloudAccess = 'public' | ReadonlyArray<'root' | 'admin' | 'device'>;

/** The authenticated caller of a request. */
export type Caller =
  | { kind: 'root' }
  | { kind: 'admin'; tenant: string }
  | { kind: 'device'; tenant: string; device: string; role: DeviceRole; venue: string | null; name: string };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may reach this cloud route; required on every route. */
    cloudAccess?: CloudAccess;
  }
  interface FastifyRequest {
    caller: Caller | null;
    /** The exact body bytes (device signatures cover them). */
    rawBody: Buffer | null;
  }
  interface FastifyInstance {
    cloud: CloudContext;
  }
}

/** What every cloud route module reads from `app.cloud`. */
export interface CloudContext {
  db: Db;
  logger: Logger;
  clock: () => number;
  /** The server's own origin as configured (`http://host:port`), for messages. */
  origin?: string;
  /**
   * Run by the receipt ingest (main/cloud/receipts.ts) inside the transaction that stores an upload, after every
   * receipt of it verified: other modules learn of ISSUANCE and REDEMPTION receipts here (a throw refuses the upload).
   */
  ingestHooks: IngestHook[];
  /** The limits in force (route modules set stricter per-route rate limits from them, e.g. enrollment). */
  limits: CloudLimits;
}

/** One receipt of an accepted upload: its leaf index in the device's log, its envelope and parsed payload. */
export interface AcceptedReceipt {
  id: string;
  index: number;
  envelope: DsseEnvelope;
  payload: ReceiptPayload;
}

export type IngestHook = (sql: Sql, at: { tenant: string; device: string }, receipts: readonly AcceptedReceipt[]) => Promise<void>;

export interface CloudLimits {
  /** Largest body, bytes (receipt uploads are the big ones). Default 8 MiB. */
  maxBodyBytes: number;
  /** Requests per minute per caller (device key, token or address). Default 600. */
  ratePerMinute: number;
  /** Requests per minute per address on the public enrollment routes. Default 30. */
  enrollPerMinute: number;
}

export const DEFAULT_CLOUD_LIMITS: CloudLimits = { maxBodyBytes: 8 * 1024 * 1024, ratePerMinute: 600, enrollPerMinute: 30 };

export interface CloudServerOptions {
  db: Db;
  logger: Logger;
  /** The cloud operator's token (compared in constant time). */
  rootToken: string;
  clock?: () => number;
  limits?: Partial<CloudLimits>;
  version: string;
  /** Route modules to register (each a Fastify plugin reading `app.cloud`). */
  routes: ReadonlyArray<(app: FastifyInstance) => Promise<void>>;
  ingestHooks?: IngestHook[];
}

export const sha256Hex = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

/** A new random secret (admin tokens, enrollment codes): `prefix_` + 32 url-safe characters. */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`;
}

export async function createCloudServer(options: CloudServerOptions): Promise<FastifyInstance> {
  const { db, logger } = options;
  const clock = options.clock ?? Date.now;
  const limits: CloudLimits = { ...DEFAULT_CLOUD_LIMITS, ...options.limits };
  const app = Fastify({
    logger: false,
    bodyLimit: limits.maxBodyBytes,
    requestTimeout: 60_000,
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    frameworkErrors: (err, _request, reply: FastifyReply) => {
      void reply.code(400).send({ error: { code: 'VALIDATION_FAILED', message: err.code === 'FST_ERR_BAD_URL' ? 'The URL is not valid: it has a malformed percent-encoding.' : 'A part of the path is longer than this route takes.' } });
    },
  });
  const textParts = new Ajv({ allErrors: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, allowUnionTypes: true });
  const jsonBodies = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: true, removeAdditional: false, allowUnionTypes: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? jsonBodies : textParts).compile(schema));
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    parseJsonBody(request, body as Buffer, done);
  });

  app.decorate('cloud', { db, logger, clock, ingestHooks: options.ingestHooks ?? [], limits } satisfies CloudContext);
  app.decorateRequest('caller', null);
  app.decorateRequest('rawBody', null);
  app.addSchema(errorSchema);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Tessera cloud API', version: options.version, description: 'Sync, enrollment, leases and fleet views of the Tessera cloud. Errors: docs/errors.md. Device requests are signed (main/common/cloud.ts).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, device: { type: 'apiKey', in: 'header', name: DEVICE_HEADERS.signature } } },
    },
  });

  // Every route must say who may reach it: a route that declares nothing stops the server from starting.
  const added: Array<{ method: string | string[]; url: string; config?: { cloudAccess?: CloudAccess } }> = [];
  app.addHook('onRoute', (route) => void added.push(route as (typeof added)[number]));
  app.addHook('onReady', async () => {
    const undeclared = added.filter((r) => r.config?.cloudAccess === undefined).map((r) => `${String(r.method)} ${r.url}`);
    if (undeclared.length > 0) throw new Error(`Cloud routes that declare no access (config.cloudAccess): ${undeclared.join('; ')}.`);
  });

  const rootDigest = Buffer.from(sha256Hex(options.rootToken), 'hex');
  const refuse = (code: ErrorCode, message: string): never => {
    throw new TesseraError(code, message);
  };

  // Authentication runs after the body is parsed (device signatures cover its bytes) and before it is validated:
  // a caller without credentials learns nothing about a route's schema (401, never 400).
  app.addHook('preValidation', async (request) => {
    if (request.is404) return;
    const access = request.routeOptions.config.cloudAccess;
    if (access === undefined) refuse('FORBIDDEN', 'This route declares no access.');
    if (access === 'public') return;
    const allowed = access as ReadonlyArray<'root' | 'admin' | 'device'>;
    const signed = request.headers[DEVICE_HEADERS.signature] !== undefined;
    if (signed) {
      if (!allowed.includes('device')) refuse('FORBIDDEN', 'Devices may not use this route; it takes an admin token.');
      request.caller = await authenticateDevice(request, db, clock);
      return;
    }
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) refuse('UNAUTHORIZED', allowed.includes('device') ? 'Sign the request with the device key (tessera-device, tessera-time, tessera-signature) or send an admin token.' : 'Send Authorization: Bearer <token>.');
    const digest = Buffer.from(sha256Hex(token!), 'hex');
    if (digest.length === rootDigest.length && timingSafeEqual(digest, rootDigest)) {
      if (!allowed.includes('root')) refuse('FORBIDDEN', 'The cloud operator token creates tenants; use the tenant\'s admin token here.');
      request.caller = { kind: 'root' };
      return;
    }
    const rows = await db.query<{ tenant: string }>('SELECT tenant FROM admin_tokens WHERE token_sha256 = $1', [digest.toString('hex')]);
    if (rows.length === 0) refuse('UNAUTHORIZED', 'The token is not valid for this cloud.');
    if (!allowed.includes('admin')) refuse('FORBIDDEN', 'This route is for devices (signed requests) only.');
    request.caller = { kind: 'admin', tenant: rows[0]!.tenant };
  });

  await app.register(fastifyRateLimit, {
    max: limits.ratePerMinute,
    timeWindow: 60_000,
    // Per device key or token when the request carries one, else per address.
    keyGenerator: (request) => String(request.headers[DEVICE_HEADERS.device] ?? request.headers.authorization ?? request.ip),
    errorResponseBuilder: (_request, context) => ({ statusCode: 429, error: { code: 'RATE_LIMITED', message: `Too many requests: at most ${context.max} a minute. Retry in ${Math.ceil(context.ttl / 1000)} s.`, retryable: true } }),
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    void reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('cache-control', 'no-store');
    return payload;
  });
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if ((err as { statusCode?: number }).statusCode === 429 && (err as { error?: unknown }).error) {
      void reply.code(429).send({ error: (err as unknown as { error: unknown }).error });
      return;
    }
    const { status, body } = errorResponse(err, request.routeOptions.bodyLimit);
    if (status >= 500) logger.error('cloud request failed', { method: request.method, url: request.url, error: err, stack: err.stack });
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `No route ${request.method} ${path.length > 120 ? `${path.slice(0, 120)}…` : path}.` } });
  });

  for (const routes of options.routes) await app.register(routes);
  app.get('/openapi.json', { schema: { hide: true }, config: { cloudAccess: 'public' } }, async () => app.swagger());
  return app;
}

/** Checks a device-signed request: known key of an enrolled, unrevoked device, fresh time, valid signature. */
async function authenticateDevice(request: FastifyRequest, db: Db, clock: () => number): Promise<Caller> {
  const device = String(request.headers[DEVICE_HEADERS.device] ?? '');
  const time = String(request.headers[DEVICE_HEADERS.time] ?? '');
  const signature = String(request.headers[DEVICE_HEADERS.signature] ?? '');
  const at = Date.parse(time);
  if (!/^b3:[0-9a-f]{64}$/.test(device) || Number.isNaN(at)) throw new TesseraError('UNAUTHORIZED', `A signed request needs ${DEVICE_HEADERS.device} (the device keyid) and ${DEVICE_HEADERS.time} (ISO-8601).`);
  if (Math.abs(clock() - at) > REQUEST_SKEW_S * 1000) {
    throw new TesseraError('CLOCK_SKEW', `The request was signed at ${time}, more than ${REQUEST_SKEW_S} s from the cloud's clock (${new Date(clock()).toISOString()}); set the device's clock.`);
  }
  const rows = await db.query<{ tenant: string; public_key_pem: string; role: DeviceRole; venue: string | null; name: string; revoked_at: Date | null }>(
    'SELECT tenant, public_key_pem, role, venue, name, revoked_at FROM devices WHERE device = $1',
    [device],
  );
  const row = rows[0];
  if (!row) throw new TesseraError('DEVICE_UNKNOWN', `Device ${device} is not enrolled with this cloud; enroll it with a code (tessera cloud enroll).`);
  if (row.revoked_at) throw new TesseraError('DEVICE_REVOKED', `Device ${device} was revoked on ${row.revoked_at.toISOString()}; an operator must enroll it again.`);
  const body = request.rawBody ?? Buffer.alloc(0);
  const message = requestSigningBytes(request.method, request.url, time, sha256Hex(body));
  let sig: Uint8Array;
  try {
    sig = fromBase64(signature);
  } catch {
    throw new TesseraError('UNAUTHORIZED', `${DEVICE_HEADERS.signature} is not base64.`);
  }
  if (!verifyEd25519(sig, message, readPublicKey(row.public_key_pem).publicKeyRaw)) {
    throw new TesseraError('UNAUTHORIZED', 'The request signature does not verify with the device key.');
  }
  void db.query('UPDATE devices SET last_seen_at = now() WHERE tenant = $1 AND device = $2', [row.tenant, device]).catch(() => undefined);
  return { kind: 'device', tenant: row.tenant, device, role: row.role, venue: row.venue, name: row.name };
}

/** The caller's tenant; for routes that admins and devices share. */
export function tenantOf(request: FastifyRequest): string {
  const caller = request.caller;
  if (!caller || caller.kind === 'root') throw new TesseraError('FORBIDDEN', 'This route needs a tenant admin token or a device signature.');
  return caller.tenant;
}
