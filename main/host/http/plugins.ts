/** Plugin routes: what is loaded and what failed to load, loading a folder without a restart, and trial runs (issue 3 §8, issue 13 points 2 and 18). */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginLoadRequest, PluginTestRequest } from '../../common/api.js';
import { pluginInfoSchema, pluginLoadFailureSchema, pluginLoadRequestSchema, pluginRunResultSchema, pluginTestRequestSchema } from '../schemas.js';

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

  app.get('/api/plugins/failures', {
    config: { access: ['author'] },
    schema: {
      summary: 'Plugin folders whose latest load failed (at start or through POST /api/plugins/load), most recent first, with the error code and message.',
      tags: ['plugins'],
      security: secured,
      response: { 200: { type: 'object', required: ['failures'], properties: { failures: { type: 'array', items: pluginLoadFailureSchema } } }, 401: errorRef, 503: errorRef },
    },
  }, async () => ({ failures: operations.pluginFailures() }));

  app.post<{ Body: PluginLoadRequest }>('/api/plugins/load', {
    config: { access: ['author'] },
    schema: {
      summary: 'Load a plugin folder into the running runtime, or load a loaded plugin again from its folder; no restart.',
      description: 'Give `dir` (a plugin folder on this device) or `plugin` (a loaded plugin: key, name@version or name). The folder is verified like at start; the same name and version with other code replaces the loaded one, another version is loaded beside it. A failure answers its code (PLUGIN_*, KEY_*, SIGNATURE_INVALID) and is listed by GET /api/plugins/failures; what was loaded before stays loaded.',
      tags: ['plugins'],
      security: secured,
      body: pluginLoadRequestSchema,
      response: { 200: pluginInfoSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 503: errorRef },
    },
  }, async (request) => operations.loadPlugin(request.body));

  app.post<{ Body: PluginTestRequest }>('/api/plugins/test', {
    config: { access: ['author'] },
    schema: {
      summary: 'Run a plugin once in the real sandbox with the production limits, in a throwaway runtime, like `tessera plugin test`.',
      description: 'Give `plugin` (a loaded plugin), `dir` (a plugin folder on this device) or `package` (its three files). The run has its own store, journal and sandbox host, disposed afterwards: nothing it writes reaches the live store. Effect capabilities get a permit for this input from a throwaway key. Plugin failures answer 422 with PLUGIN_* codes; trust failures 400/403 with the code naming what is wrong.',
      tags: ['plugins'],
      security: secured,
      body: pluginTestRequestSchema,
      response: { 200: pluginRunResultSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 422: errorRef, 503: errorRef },
    },
  }, async (request) => operations.testPlugin(request.body));
};
