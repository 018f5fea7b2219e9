/**
 * Secret routes (issue 17; main/runtime/secrets): how an operator sets the secrets the runtime hands to tools and to
 * the agents' model client (`agents.model.api_key`, README "Configuration") — `tessera secret set|list|delete`.
 *
 * A value goes in and never comes out: the list answers names only, a set or delete answers 204, and the journal's
 * `secrets.changed` carries `{name, action, by}`. Nothing here logs a body, and no error message quotes one: Ajv's
 * messages name the field, not its data, and the server's JSON parser never quotes a malformed body
 * (main/common/json-text.ts `jsonSyntaxError`).
 */
import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../../common/errors.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
/** The name is checked by the store (SECRET_NAME) so that its message is the one rule everywhere. */
const nameParam = { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } as const;
export const MAX_SECRET_VALUE_CHARS = 8192;

export const secretRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;


  app.get('/api/secrets', {
    config: { access: ['operator'] },
    schema: {
      summary: 'The names of the stored secrets, sorted; never their values.',
      tags: ['secrets'],
      security: secured,
      response: { 200: { type: 'object', additionalProperties: false, required: ['secrets'], properties: { secrets: { type: 'array', items: { type: 'string' } } } }, 401: errorRef, 403: errorRef },
    },
  }, async () => ({ secrets: runtime.secrets.list() }));

  app.put<{ Params: { name: string }; Body: { value: string } }>('/api/secrets/:name', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Store a secret under a name (replacing any value it had), encrypted at rest; journals secrets.changed without the value.',
      description: 'Names: lower-case letters, digits, "_", "." or "-", starting with a letter, at most 64 characters (e.g. agents.model.api_key).',
      tags: ['secrets'],
      security: secured,
      params: nameParam,
      body: { type: 'object', additionalProperties: false, required: ['value'], properties: { value: { type: 'string', minLength: 1, maxLength: MAX_SECRET_VALUE_CHARS } } },
      response: { 204: { type: 'null' }, 400: errorRef, 401: errorRef, 403: errorRef, 413: errorRef },
    },
  }, async (request, reply) => {
    runtime.secrets.set(request.params.name, request.body.value, { by: 'operator' });
    return reply.code(204).send();
  });

  app.delete<{ Params: { name: string } }>('/api/secrets/:name', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Delete a secret; 404 NOT_FOUND when there is none by that name.',
      tags: ['secrets'],
      security: secured,
      params: nameParam,
      response: { 204: { type: 'null' }, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request, reply) => {
    const { name } = request.params;
    if (!runtime.secrets.delete(name, { by: 'operator' })) throw new TesseraError('NOT_FOUND', `No secret named "${name}" (names: ${runtime.secrets.list().join(', ') || 'none'}).`);
    return reply.code(204).send();
  });
};
