/**
 * The HTTP + WebSocket host (DESIGN.md "Processes"). Composes Fastify plugins; owns no business logic.
 *
 * - One error shape everywhere: `{"error":{"code","message"}}`, codes from main/common/errors.ts.
 * - Every route declares who may reach it (`config.access`); the access hook decides on the route the router
 *   matched (access.ts). Credentials: `Authorization: Bearer <token>` (browsers' WebSockets, which cannot set
 *   headers, offer the token as the subprotocol `tessera.bearer.<token>` instead).
 * - The OpenAPI document at `/openapi.json` is generated from the route schemas.
 */
import fastifySwagger from '@fastify/swagger';
import fastifyWebsocket from '@fastify/websocket';
import Ajv from 'ajv';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LIMITS } from '../../common/api.js';
import type { Runtime } from '../../runtime/index.js';
import type { Tenant } from '../../runtime/products/index.js';
import type { Logger } from '../../runtime/log/index.js';
import type { Operations } from '../operations.js';
import { createOperations } from '../operations.js';
import { errorSchema } from '../schemas.js';
import { eventRoutes } from './events.js';
import { pluginRoutes } from './plugins.js';
import { catalogueRoutes } from './catalogue.js';
import { cityRoutes } from './city.js';
import { scenarioRoutes } from './scenarios.js';
import { ioRoutes } from './io.js';
import { createContractRoutes } from './contracts.js';
import { systemRoutes } from './system.js';
import { authRoutes } from './auth.js';
import { deviceRoutes } from './device.js';
import { rendererRoutes } from './renderer.js';
import { webhookRoutes } from './webhooks.js';
import { redeemRoutes } from './redeem.js';
import { syncRoutes } from './sync.js';
import { v1Routes } from './v1.js';
import { logRoutes } from './log.js';
import { verifyRoutes } from './verify.js';
import { walletRoutes } from './wallets.js';
import { sessionRoutes } from './sessions.js';
import { journeyRoutes } from './journeys.js';
import { linkRoutes } from './links.js';
import { agentRoutes } from './agents.js';
import { secretRoutes } from './secrets.js';
import { clusterRoutes } from './cluster.js';
import { installRequestMetrics, metricsRoutes } from './metrics.js';
import { installAccessControl } from './access.js';
import { parseJsonBody } from './request.js';
import { errorResponse } from './error-response.js';
import type { Access } from './access.js';
import type { Credentials } from '../credentials.js';
import { createCredentials } from '../credentials.js';

export interface HttpServerOptions {
  runtime: Runtime;
  token: string;
  logger: Logger;
  /** Folder of the built renderer; when absent the UI is not served (API only). */
  rendererDir?: string;
  operations?: Operations;
  /** The credentials this server accepts; default: `token` as the device token, with the data folder's PIN. */
  credentials?: Credentials;
  /** Host names the server answers to besides `localhost` and its own IP address (the `--host` name). */
  allowedHosts?: readonly string[];
  /** Milliseconds a client has to send a whole request, body included (default 30 s): slow bodies are cut. */
  requestTimeoutMs?: number;
}

/** A route as `/.well-known/product.json` lists it: who may reach it is part of the contract. */
export interface RouteEntry {
  method: string;
  url: string;
  access: Access;
}

export const WS_PROTOCOL = 'tessera.v1';
/** find-my-way refuses a path parameter over 100 characters (its maxParamLength). */
const PARAM_TOO_LONG = 'A part of the path is longer than this route takes (100 characters).';

declare module 'fastify' {
  interface FastifyInstance {
    tessera: { runtime: Runtime; operations: Operations; credentials: Credentials; routes: RouteEntry[] };
  }
  interface FastifyRequest {
    /**
     * Who the bearer token is: `null` for the device API token (the device owner, who sees every tenant's
     * records), else the tenant of a `<data>/tenants.json` token, which reaches `/v1` and its own records only.
     */
    tenant: Tenant | null;
  }
}

export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const { runtime, logger } = options;
  const operations = options.operations ?? createOperations(runtime);
  const app = Fastify({
    logger: false,
    bodyLimit: LIMITS.maxBodyBytes,
    // A client has this long to send a whole request, body included; headers within 10 s (issue 13 §1.4: slow
    // bodies held a thousand unauthenticated connections open for good). WebSockets are not cut: once upgraded
    // they are no longer requests.
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    http: { headersTimeout: Math.min(10_000, options.requestTimeoutMs ?? 30_000), connectionsCheckingInterval: Math.min(1_000, options.requestTimeoutMs ?? 30_000) },
    // Finish open requests on close but drop idle keep-alive sockets, so shutdown is prompt.
    forceCloseConnections: 'idle',
    // Requests that race shutdown are answered by our handlers (NOT_READY, in our error shape).
    return503OnClosing: false,
    // A URL the router cannot decode (`/v1/r/%ff`) or a parameter over its length: our error shape, not Fastify's.
    frameworkErrors: (err, _request, reply: FastifyReply) => {
      void reply.code(400).send({ error: { code: 'VALIDATION_FAILED', message: err.code === 'FST_ERR_BAD_URL' ? 'The URL is not valid: it has a malformed percent-encoding.' : PARAM_TOO_LONG } });
    },
  });

  // Query strings, path parameters and headers are text, coerced to the declared type ("5" → 5). A JSON body is
  // not: a number where a string is declared, or a string where an array is, is the client's mistake and refused.
  const textParts = new Ajv({ allErrors: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, allowUnionTypes: true });
  const jsonBodies = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: true, removeAdditional: false, allowUnionTypes: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? jsonBodies : textParts).compile(schema));

  // Bodies are JSON (or a route's own media type): text/plain gets 415 everywhere rather than a string that a
  // route's schema then calls "not an object".
  app.removeContentTypeParser('text/plain');
  // One JSON parser for every route (strict UTF-8, one depth rule, no duplicate keys: request.ts parseJsonBody).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => parseJsonBody(request, body as Buffer, done));

  const routes: RouteEntry[] = [];
  const credentials = options.credentials ?? createCredentials({ dataDir: runtime.info.data_dir, deviceToken: options.token, tenantForToken: (t) => runtime.products.tenantForToken(t) });
  app.decorate('tessera', { runtime, operations, credentials, routes });
  app.decorateRequest('tenant', null);
  app.addHook('onRoute', (route) => {
    const hidden = (route.schema as { hide?: boolean } | undefined)?.hide;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || hidden || route.url.includes('*')) continue;
      routes.push({ method, url: route.url, access: route.config?.access ?? [] });
    }
  });

  app.addSchema(errorSchema);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Tessera runtime API', version: runtime.info.version, description: 'Local API of a Tessera device. Errors: docs/errors.md. The live event stream is the WebSocket at /ws (not describable in OpenAPI; protocol in README.md).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });

  // Registered before the auth hook: its own onRequest hook marks upgrade requests, so that a refused upgrade
  // (401) gets its socket destroyed instead of lingering and holding up shutdown.
  await app.register(fastifyWebsocket, {
    options: {
      maxPayload: 64 * 1024,
      // Answer with our protocol when offered; a client that offers none gets none.
      handleProtocols: (protocols: Set<string>) => (protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
    },
    // On shutdown: tell every client we are going away, and cut the ones that do not answer within 1 s.
    preClose(done) {
      const clients = [...app.websocketServer.clients];
      for (const client of clients) client.close(1001, 'Tessera is stopping');
      const cut = setTimeout(() => clients.forEach((c) => c.terminate()), 1000);
      cut.unref();
      app.websocketServer.close(() => {
        clearTimeout(cut);
        done();
      });
      if (clients.length === 0) clearTimeout(cut);
    },
  });

  // After @fastify/websocket (whose onRequest hook marks upgrades, so that a refused one gets its socket
  // destroyed) and before any route.
  installAccessControl(app, { credentials, ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}) });

  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    // On what the router matched, like authorization: `/%61pi/info` is /api/info.
    const route = request.routeOptions.url ?? '';
    if (route.startsWith('/api/') || route.startsWith('/v1/')) void reply.header('cache-control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = errorResponse(err, request.routeOptions.bodyLimit, (request.routeOptions.schema as { consumes?: string[] } | undefined)?.consumes);
    if (status >= 500) logger.error('request failed', { method: request.method, url: request.url, error: err, stack: err.stack });
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    const shown = path.length > 120 ? `${path.slice(0, 120)}…` : path;
    const allowed = [...new Set(routes.filter((r) => routePattern(r.url).test(path)).map((r) => r.method))];
    // The route takes this method, so the router refused a parameter over its length (find-my-way's
    // maxParamLength, 100): say so rather than "takes GET, not GET".
    if (allowed.includes(request.method)) {
      void reply.code(400).send({ error: { code: 'VALIDATION_FAILED', message: PARAM_TOO_LONG } });
      return;
    }
    if (allowed.length > 0) {
      void reply.code(405).header('allow', allowed.join(', ')).send({ error: { code: 'METHOD_NOT_ALLOWED', message: `${shown} takes ${allowed.join(', ')}, not ${request.method}.` } });
      return;
    }
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `No route ${request.method} ${shown}.` } });
  });

  // Before any route is declared, so that every /v1 route gets the latency hook.
  installRequestMetrics(app, runtime);
  await app.register(systemRoutes);
  await app.register(authRoutes);
  await app.register(eventRoutes);
  await app.register(pluginRoutes);
  await app.register(scenarioRoutes);
  await app.register(ioRoutes);
  await app.register(createContractRoutes({ executions: runtime.executions, artifacts: runtime.artifacts, ready: () => runtime.ready }));
  await app.register(webhookRoutes);
  await app.register(redeemRoutes);
  await app.register(syncRoutes);
  await app.register(v1Routes);
  await app.register(logRoutes);
  await app.register(verifyRoutes);
  await app.register(linkRoutes);
  await app.register(metricsRoutes);
  await app.register(deviceRoutes);
  await app.register(walletRoutes);
  await app.register(sessionRoutes);
  await app.register(journeyRoutes);
  await app.register(catalogueRoutes);
  await app.register(cityRoutes);
  await app.register(agentRoutes);
  await app.register(secretRoutes);
  await app.register(clusterRoutes);
  if (options.rendererDir) await app.register(rendererRoutes, { root: options.rendererDir });

  app.get('/openapi.json', { schema: { hide: true }, config: { access: 'public' } }, async () => app.swagger());
  return app;
}

const patterns = new Map<string, RegExp>();
/** A route's URL (`/v1/r/:cid/bundle`) as a regular expression matching the paths it serves. */
function routePattern(url: string): RegExp {
  let pattern = patterns.get(url);
  if (!pattern) {
    const source = url.split('/').map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
    pattern = new RegExp(`^${source}/?$`);
    patterns.set(url, pattern);
  }
  return pattern;
}

export { errorResponse };
