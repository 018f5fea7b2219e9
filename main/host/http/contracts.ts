/**
 * Routes of the seed 002 runtime contracts (issue point 8): execution status, artifact resolve and list.
 * Registered by the host as a plugin; errors are thrown as TesseraError and shaped by the server's handler.
 */
import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../../common/errors.js';
import { ARTIFACT_STATES, CONTRACT_ID_PATTERN, EXECUTION_STATES } from '../../runtime/contracts/index.js';
import type { ArtifactProducer, ArtifactRegistry, ArtifactState, ExecutionRegistry } from '../../runtime/contracts/index.js';

/** What {@link createContractRoutes} serves from. */
export interface ContractRouteDeps {
  executions: ExecutionRegistry;
  artifacts: ArtifactRegistry;
  /** When given and false, every route answers NOT_READY (503), e.g. while the runtime stops. */
  ready?: () => boolean;
}

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const idSchema = { type: 'string', pattern: CONTRACT_ID_PATTERN } as const;
const jsonObject = { type: 'object', additionalProperties: true } as const;
const errorData = { type: ['object', 'null'], additionalProperties: true } as const;

const producerSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    intent: { type: 'string', minLength: 1, maxLength: 128 },
    execution_id: idSchema,
    run_id: { type: 'string', minLength: 1, maxLength: 200 },
    step: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

const artifactProperties = {
  artifact_id: { type: 'string' },
  kind: { type: 'string' },
  tenant_id: { type: ['string', 'null'] },
  uri: { type: ['string', 'null'] },
  content_cid: { type: ['string', 'null'] },
  produced_by: producerSchema,
  parent_artifacts: { type: 'array', items: { type: 'string' } },
  metadata: jsonObject,
  semantic_descriptor: { type: ['object', 'null'], additionalProperties: true },
  state: { type: 'string', enum: ARTIFACT_STATES },
  materializations: {
    type: 'array',
    items: { type: 'object', required: ['uri', 'media_type', 'bytes', 'cid'], properties: { uri: { type: 'string' }, media_type: { type: 'string' }, bytes: { type: 'integer' }, cid: { type: 'string' } } },
  },
  failure_reason: { type: ['string', 'null'] },
  trace_id: { type: 'string' },
  created_at: { type: 'string', format: 'date-time' },
  updated_at: { type: 'string', format: 'date-time' },
} as const;
const artifactRequired = ['artifact_id', 'kind', 'state', 'produced_by', 'parent_artifacts', 'materializations', 'created_at', 'updated_at'];
const artifactSchema = { type: 'object', required: artifactRequired, properties: artifactProperties } as const;
const lineageEntrySchema = { type: 'object', required: [...artifactRequired, 'depth'], properties: { ...artifactProperties, depth: { type: 'integer', minimum: 1 } } } as const;

const executionStatusSchema = {
  type: 'object',
  required: ['execution_id', 'intent_type', 'state', 'trace_id', 'artifacts', 'created_at'],
  properties: {
    execution_id: { type: 'string' },
    intent_type: { type: 'string' },
    intent: {
      type: 'object',
      properties: {
        intent_type: { type: 'string' },
        tenant_id: { type: 'string' },
        session_id: { type: 'string' },
        solution_id: { type: 'string' },
        parameters: jsonObject,
        metadata: jsonObject,
      },
    },
    tenant_id: { type: 'string' },
    session_id: { type: 'string' },
    solution_id: { type: 'string' },
    metadata: jsonObject,
    state: { type: 'string', enum: EXECUTION_STATES, description: 'created → running → completed | failed | cancelled.' },
    trace_id: { type: 'string', description: 'Its journal events: GET /api/events?trace_id=….' },
    run_id: { type: ['string', 'null'], description: 'The scenario run serving it, once bound.' },
    result: { description: 'What the handler returned (any JSON), null until completed.' },
    error: errorData,
    created_at: { type: 'string', format: 'date-time' },
    started_at: { type: ['string', 'null'], format: 'date-time' },
    finished_at: { type: ['string', 'null'], format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    artifacts: {
      type: 'array',
      items: { type: 'object', required: ['artifact_id', 'kind', 'state'], properties: { artifact_id: { type: 'string' }, kind: { type: 'string' }, state: { type: 'string', enum: ARTIFACT_STATES } } },
    },
  },
} as const;

/** The contract routes as a Fastify plugin over the given registries. */
export function createContractRoutes(deps: ContractRouteDeps): FastifyPluginAsync {
  const guard = () => {
    if (deps.ready && !deps.ready()) throw new TesseraError('NOT_READY', 'The runtime is not ready; try again shortly.');
  };

  return async (app) => {
    app.get<{ Params: { id: string } }>('/api/execution/:id/status', {
      config: { access: ['operator'] },
      schema: {
        summary: "An execution's lifecycle state, intent, result or error, trace id and the artifacts it produced (seed 002 §2).",
        tags: ['contracts'],
        security: secured,
        params: { type: 'object', required: ['id'], properties: { id: idSchema } },
        response: { 200: executionStatusSchema, 400: errorRef, 401: errorRef, 404: errorRef, 503: errorRef },
      },
    }, async (request) => {
      guard();
      return deps.executions.status(request.params.id);
    });

    app.post<{ Body: { id: string; max_depth?: number } }>('/api/artifact/resolve', {
      config: { access: ['operator'] },
      schema: {
        summary: 'An artifact with its lineage: ancestors breadth-first, nearest first (seed 002 §4).',
        tags: ['contracts'],
        security: secured,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['id'],
          properties: { id: idSchema, max_depth: { type: 'integer', minimum: 0, maximum: 1000, default: 32, description: 'Generations of ancestors to follow.' } },
        },
        response: {
          200: {
            type: 'object',
            required: ['artifact', 'lineage', 'missing', 'truncated'],
            properties: {
              artifact: artifactSchema,
              lineage: { type: 'array', items: lineageEntrySchema },
              missing: { type: 'array', items: { type: 'string' }, description: 'Parent ids not in the registry.' },
              truncated: { type: 'boolean', description: 'True when max_depth or the 1000-ancestor cap cut the lineage short.' },
            },
          },
          400: errorRef,
          401: errorRef,
          404: errorRef,
          503: errorRef,
        },
      },
    }, async (request) => {
      guard();
      return deps.artifacts.resolve(request.body.id, request.body.max_depth === undefined ? {} : { max_depth: request.body.max_depth });
    });

    app.post<{ Body: { kind?: string; state?: ArtifactState; tenant_id?: string; produced_by?: ArtifactProducer; limit?: number; after?: string } }>('/api/artifact/list', {
      config: { access: ['operator'] },
      schema: {
        summary: 'Artifacts, oldest first, filtered by kind, state, tenant and producer; DELETED ones only when asked for by state.',
        tags: ['contracts'],
        security: secured,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            kind: idSchema,
            state: { type: 'string', enum: ARTIFACT_STATES },
            tenant_id: idSchema,
            produced_by: producerSchema,
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            after: { ...idSchema, description: 'The `next` of the previous page.' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['artifacts', 'next'],
            properties: { artifacts: { type: 'array', items: artifactSchema }, next: { type: ['string', 'null'], description: 'Pass as `after` for the next page; null on the last page.' } },
          },
          400: errorRef,
          401: errorRef,
          503: errorRef,
        },
      },
    }, async (request) => {
      guard();
      return deps.artifacts.list(request.body);
    });
  };
}
