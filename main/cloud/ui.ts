/**
 * Serves the cloud operator page (issue 16 §7; source renderer/cloud/, built by `npm run build` into out/cloud-ui):
 * `GET /` is its HTML, `GET /ui/:file` its script and stylesheet. The files are public — what a visitor may see is
 * decided by the admin routes the page calls with the tenant admin token it asks for. The HTML carries the device
 * UI's strict Content-Security-Policy (main/common/csp.ts: no inline script or style, no eval, same origin only) and
 * may not be framed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { CONTENT_SECURITY_POLICY } from '../common/csp.js';
import { TesseraError } from '../common/errors.js';
import { APP_ROOT } from '../host/paths.js';

/** Where `npm run build` puts the page (scripts/build-cloud-ui.mjs). */
export const CLOUD_UI_DIR = join(APP_ROOT, 'out', 'cloud-ui');

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.map': 'application/json' };

const errorRef = { $ref: 'Error#' } as const;

/** The page's routes over the build in `dir` (tests may point at another build). */
export function createCloudUiRoutes(dir: string = CLOUD_UI_DIR): (app: FastifyInstance) => Promise<void> {
  const read = async (path: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch {
      throw new TesseraError('NOT_FOUND', `${what} is not built (${path}); run \`npm run build\`.`);
    }
  };
  return async function cloudUiRoutes(app: FastifyInstance) {
    app.get('/', {
      schema: { hide: true, response: { '4xx': errorRef } },
      config: { cloudAccess: 'public' },
    }, async (_request, reply) => {
      const html = await read(join(dir, 'index.html'), 'The operator page');
      return reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .header('x-frame-options', 'DENY')
        .send(html);
    });
    app.get<{ Params: { file: string } }>('/ui/:file', {
      schema: {
        hide: true,
        params: { type: 'object', required: ['file'], properties: { file: { type: 'string', pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$' } } },
        response: { '4xx': errorRef },
      },
      config: { cloudAccess: 'public' },
    }, async (request, reply) => {
      const { file } = request.params;
      const type = TYPES[file.slice(file.lastIndexOf('.'))];
      if (!type || file.includes('..')) throw new TesseraError('NOT_FOUND', `No file ${file} in the operator page.`);
      const body = await read(join(dir, 'ui', file), `The operator page's ${file}`);
      return reply.header('content-type', type).send(body);
    });
  };
}

/** The route module createCloudServer registers: the page from the app's own build. */
export const cloudUiRoutes = createCloudUiRoutes();
