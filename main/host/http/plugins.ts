/** Plugin routes: what is loaded, and a test run in the real sandbox (issue 3 §8). */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginTestRequest } from '../../common/api.js';
import { pluginInfoSchema, pluginRunResultSchema, pluginTestRequestSchema } from '../schemas.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];

export const pluginRoutes: FastifyPluginAsync = async (app) => {
  const { operations } = app.tessera;

  app.get('/api/plugins', {
    config: { access: ['author', 'operator'] },
    schema: {
      summary: 'Loaded plugins: name, version, kind, cid, publisher key id, trust state, capabilities, limits.',
      tags: ['plugins'],
      security: secured,
      response: { 200: { type: 'object', required: ['plugins'], properties: { plugins: { type: 'array', items: pluginInfoSchema } } }, 401: errorRef, 503: errorRef },
    },
  }, async () => ({ plugins: operations.listPlugins() }));

  app.post<{ Body: PluginTestRequest }>('/api/plugins/test', {
    config: { access: ['author'] },
    schema: {
      summary: 'Run a plugin once in the real sandbox with the production limits, like `tessera plugin test`.',
      description: 'Give `plugin` (a loaded plugin) or `dir` (a plugin folder on this device, verified and loaded first). Plugin failures answer 422 with PLUGIN_* codes; trust failures 400/403 with the code naming what is wrong.',
      tags: ['plugins'],
      security: secured,
      body: pluginTestRequestSchema,
      response: { 200: pluginRunResultSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 422: errorRef, 503: errorRef },
    },
  }, async (request) => operations.testPlugin(request.body));
};
