/**
 * Journey routes (seed 000 §4.4–4.5, §6.2, §6.4; issue 15 points 2, 4, 7): a traveller (or an operator for them)
 * starts the journey their product names, reads the itinerary and the next step, completes or skips nodes, asks for
 * a route to a place of the journey, and accepts or rejects the guide's proposals. Staff may read. Every change is
 * journaled as `journey.*` / `agent.recommendation.*` with the product runtime session id.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { JOURNEY_LANGUAGES, JOURNEY_PHASES, JOURNEY_STATES } from '../../common/journeys.js';
import type { JourneyLanguage, JourneyPhase, JourneyState, NodeCompletedBy } from '../../common/journeys.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const READERS = ['traveller', 'staff', 'operator'] as const;
const ACTORS = ['traveller', 'operator'] as const;
const ID = { type: 'string', minLength: 1, maxLength: 100 } as const;
const language = { type: 'string', enum: [...JOURNEY_LANGUAGES], description: 'Language of names and sentences (default: the journey\'s).' } as const;
const idParam = { type: 'object', required: ['id'], properties: { id: ID } } as const;
const languageQuery = { type: 'object', additionalProperties: false, properties: { language } } as const;

/** A journey as GET /api/journeys/:id answers it (main/common/journeys.ts JourneyView). */
export const journeySchema = {
  type: 'object',
  additionalProperties: true,
  required: ['journey_instance_id', 'product_runtime_session_id', 'doc', 'phase', 'state', 'language', 'nodes', 'current', 'version', 'routing', 'created_at', 'updated_at'],
  properties: {
    journey_instance_id: { type: 'string', description: '`jny_<uuid>`.' },
    product_runtime_session_id: { type: 'string' },
    state: { type: 'string', enum: [...JOURNEY_STATES] },
    phase: { type: 'string', enum: [...JOURNEY_PHASES] },
    current: { type: ['string', 'null'], description: 'The node the traveller is at or heading to.' },
    version: { type: 'integer', description: 'Send back as `expected_version` to detect another screen\'s change.' },
  },
} as const;

const loose = (description: string) => ({ type: 'object', additionalProperties: true, description }) as const;

export const startJourneyBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['session'],
  properties: {
    session: { ...ID, description: 'The product runtime session (active).' },
    journey: { type: 'string', minLength: 1, maxLength: 200, description: 'A journey document `id`, `id@range` or cid; default: the one the product names.' },
    phase: { type: 'string', enum: [...JOURNEY_PHASES] },
    language,
  },
} as const;

const nodeActionBody = { type: 'object', additionalProperties: false, properties: { expected_version: { type: 'integer', minimum: 1 }, by: { type: 'string', enum: ['touch', 'voice'] } } } as const;

/** Who asks, as the journey's events record it. */
const caller = (request: FastifyRequest): string => (request.principal === null ? 'unknown' : request.principal.kind === 'device' ? 'device' : request.principal.roles.join('+'));

export const journeyRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;
  const journeys = () => runtime.journeys;

  app.post<{ Body: { session: string; journey?: string; phase?: JourneyPhase; language?: JourneyLanguage } }>('/api/journeys', {
    config: { access: [...ACTORS] },
    schema: {
      summary: 'Start a journey for an active product session (seed 000 §4.4): the document its product names, or the one given.',
      tags: ['journeys'],
      security: secured,
      body: startJourneyBodySchema,
      response: { 201: journeySchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (request, reply) => reply.code(201).send(journeys().start({ ...request.body, by: caller(request) })));

  app.get<{ Querystring: { session?: string; user?: string; state?: JourneyState; limit?: number } }>('/api/journeys', {
    config: { access: [...READERS] },
    schema: {
      summary: 'Journeys, newest first; filter by session, traveller or state.',
      tags: ['journeys'],
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { session: ID, user: ID, state: { type: 'string', enum: [...JOURNEY_STATES] }, limit: { type: 'integer', minimum: 1, maximum: 200 } } },
      response: { 200: { type: 'object', required: ['journeys'], properties: { journeys: { type: 'array', items: journeySchema } } }, 400: errorRef, 401: errorRef, 403: errorRef },
    },
  }, async (request) => ({ journeys: journeys().list(request.query) }));

  app.get<{ Params: { id: string }; Querystring: { language?: JourneyLanguage } }>('/api/journeys/:id', {
    config: { access: [...READERS] },
    schema: { summary: 'One journey: the itinerary with each node\'s state, the current node and the routing health.', tags: ['journeys'], security: secured, params: idParam, querystring: languageQuery, response: { 200: journeySchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef } },
  }, async (request) => journeys().get(request.params.id, request.query.language));

  for (const action of ['complete', 'skip'] as const) {
    app.post<{ Params: { id: string; node: string }; Body: { expected_version?: number; by?: NodeCompletedBy } | undefined }>(`/api/journeys/:id/nodes/:node/${action}`, {
      config: { access: [...ACTORS] },
      schema: {
        summary: action === 'complete' ? 'The traveller is done at a node (touch or voice). Completing a node already done answers the journey as it stands.' : 'Skip a node.',
        tags: ['journeys'],
        security: secured,
        params: { type: 'object', required: ['id', 'node'], properties: { id: ID, node: { type: 'string', minLength: 1, maxLength: 100 } } },
        body: nodeActionBody,
        response: { 200: journeySchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
      },
    }, async (request) => {
      const body = request.body ?? {};
      const options = { by: body.by ?? ('touch' as const), ...(body.expected_version !== undefined ? { expected_version: body.expected_version } : {}) };
      return action === 'complete' ? journeys().complete(request.params.id, request.params.node, options) : journeys().skip(request.params.id, request.params.node, options);
    });
  }

  app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>('/api/journeys/:id/abandon', {
    config: { access: [...ACTORS] },
    schema: {
      summary: 'End the journey before its last node (`journey.abandoned`).',
      tags: ['journeys'],
      security: secured,
      params: idParam,
      body: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } },
      response: { 200: journeySchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (request) => journeys().abandon(request.params.id, request.body?.reason));

  app.get<{ Params: { id: string }; Querystring: { language?: JourneyLanguage } }>('/api/journeys/:id/next', {
    config: { access: [...READERS] },
    schema: {
      summary: 'The next-step card: where to go, how (a route on the city package, or the journey\'s static route when routing is degraded), whether the traveller\'s pass covers it, when it opens.',
      tags: ['journeys'],
      security: secured,
      params: idParam,
      querystring: languageQuery,
      response: { 200: loose('NextStep (main/common/journeys.ts).'), 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request) => journeys().next(request.params.id, request.query.language ? { language: request.query.language } : {}));

  app.get<{ Params: { id: string }; Querystring: { to: string; language?: JourneyLanguage } }>('/api/journeys/:id/route', {
    config: { access: [...READERS] },
    schema: {
      summary: 'A route from where the traveller is to a place of the journey. No way on the city map: 404 ROUTE_NOT_FOUND with the static route in `details.static`.',
      tags: ['journeys'],
      security: secured,
      params: idParam,
      querystring: { type: 'object', additionalProperties: false, required: ['to'], properties: { to: { type: 'string', minLength: 1, maxLength: 100, description: 'A place id of the journey.' }, language } },
      response: { 200: loose('RoutePlan (main/common/journeys.ts).'), 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request) => journeys().routeTo(request.params.id, request.query.to, request.query.language ? { language: request.query.language } : {}));

  const proposalSchema = loose('Proposal (main/common/journeys.ts).');
  app.get<{ Params: { id: string }; Querystring: { language?: JourneyLanguage } }>('/api/journeys/:id/proposals', {
    config: { access: [...ACTORS] },
    schema: {
      summary: 'The Journey Guide agent\'s proposals (seed 000 §4.5): new ones are journaled as `agent.recommendation.shown`; none changes the journey until accepted.',
      tags: ['journeys'],
      security: secured,
      params: idParam,
      querystring: languageQuery,
      response: { 200: { type: 'object', required: ['proposals'], properties: { proposals: { type: 'array', items: proposalSchema } } }, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request) => ({ proposals: journeys().proposals(request.params.id, request.query.language ? { language: request.query.language } : {}) }));

  for (const decision of ['accept', 'reject'] as const) {
    app.post<{ Params: { id: string; pid: string } }>(`/api/journeys/:id/proposals/:pid/${decision}`, {
      config: { access: [...ACTORS] },
      schema: {
        summary: decision === 'accept' ? 'Accept a proposal: the journey changes as it says (`agent.recommendation.accepted`).' : 'Reject a proposal (`agent.recommendation.rejected`); it is not shown again.',
        tags: ['journeys'],
        security: secured,
        params: { type: 'object', required: ['id', 'pid'], properties: { id: ID, pid: ID } },
        response: { 200: { type: 'object', required: ['journey', 'proposal'], properties: { journey: journeySchema, proposal: proposalSchema } }, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
      },
    }, async (request) => journeys().decide(request.params.id, request.params.pid, decision));
  }
};
