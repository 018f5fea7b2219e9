/** Unauthenticated system routes: liveness, readiness and the runtime's manifest. */
import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../../common/errors.js';
import { runtimeInfoSchema } from '../schemas.js';
import { ANY_ROLE } from './access.js';
import { infoFor } from '../../common/roles.js';

const errorRef = { $ref: 'Error#' } as const;

export const systemRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  app.get('/healthz', {
    config: { access: 'public' },
    schema: {
      summary: 'Liveness: the process serves HTTP.',
      tags: ['system'],
      response: { 200: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } } },
    },
  }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    config: { access: 'public' },
    schema: {
      summary: 'Readiness: the store is open and can commit a write, and the runtime is not stopping. 503 NOT_READY says why not (details.store: STORE_FULL, STORE_BUSY, STORE_UNAVAILABLE).',
      tags: ['system'],
      response: {
        200: { type: 'object', required: ['status'], properties: { status: { const: 'ready' }, schema: { type: 'object', additionalProperties: { type: 'integer' } } } },
        503: errorRef,
      },
    },
  }, async () => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
    // Open is not enough: a full disk left every write failing while this said ready (issue 13 point 9).
    const store = runtime.store.writable();
    if (!store.ok) throw new TesseraError('NOT_READY', `The store cannot write: ${store.reason}.`, { details: { store: store.code, ...(store.free_bytes === undefined ? {} : { free_bytes: store.free_bytes }) } });
    return { status: 'ready' as const, schema: runtime.store.versions() };
  });

  app.get('/api/info', {
    config: { access: ANY_ROLE },
    schema: {
      summary: 'The runtime this token reaches: name, version, shell, data folder (operators only), start time.',
      tags: ['system'],
      security: [{ bearer: [] }],
      response: { 200: runtimeInfoSchema, 401: errorRef },
    },
  }, async (request) => infoFor(app.tessera.operations.info(), request.principal?.roles ?? []));

  app.get('/.well-known/product.json', {
    config: { access: 'public' },
    schema: {
      summary: "The runtime's manifest: name, version, routes and loaded products.",
      tags: ['system'],
      response: {
        200: {
          type: 'object',
          required: ['name', 'version', 'runtime', 'api', 'routes', 'products'],
          properties: {
            name: { type: 'string' },
            version: { type: 'string' },
            runtime: { type: 'object', required: ['name', 'version', 'shell', 'started_at'], properties: { name: { type: 'string' }, version: { type: 'string' }, shell: { type: 'string' }, started_at: { type: 'string' } } },
            api: { type: 'object', properties: { openapi: { type: 'string' }, auth: { type: 'string' }, websocket: { type: 'string' } } },
            routes: { type: 'array', items: { type: 'object', required: ['method', 'url', 'access'], properties: { method: { type: 'string' }, url: { type: 'string' }, access: { description: '"public", or the roles (and "tenant") that may reach the route.', anyOf: [{ const: 'public' }, { type: 'array', items: { type: 'string' } }] } } } },
            products: { type: 'array', items: { type: 'object', additionalProperties: true } },
          },
        },
      },
    },
  }, async () => ({
    name: runtime.info.name,
    version: runtime.info.version,
    // Served without a token: what the runtime is, not where it keeps its data (GET /api/info has that).
    runtime: { name: runtime.info.name, version: runtime.info.version, shell: runtime.info.shell, started_at: runtime.info.started_at },
    api: { openapi: '/openapi.json', auth: 'bearer', websocket: '/ws' },
    routes: app.tessera.routes,
    // Loaded product manifests with their cids and pinned plugins (runtime/products).
    products: runtime.products.describe(),
  }));
};
