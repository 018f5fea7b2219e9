/**
 * Serves the built renderer (out/renderer) for headless use: a kiosk browser or a test points at it.
 * The same strict Content-Security-Policy as the Electron window applies (main/common/csp.ts).
 */
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { CONTENT_SECURITY_POLICY } from '../../common/csp.js';

export const rendererRoutes: FastifyPluginAsync<{ root: string }> = async (app, opts) => {
  // The UI's files are public: what a credential may do is decided by the API routes it calls.
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, access: 'public' };
  });
  await app.register(fastifyStatic, {
    root: opts.root,
    index: ['index.html'],
    wildcard: true,
    setHeaders(res, path) {
      if (path.endsWith('.html')) {
        res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
        res.setHeader('x-frame-options', 'DENY');
        res.setHeader('cache-control', 'no-cache');
      }
    },
  });
};
