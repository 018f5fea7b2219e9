/**
 * Cluster routes (issue 18 point 1; `runtime.cluster`, main/runtime/cluster/index.ts): what this node sees of the
 * nodes its scenario runs are spread over — for `tessera cluster status` and the Ops "Cluster" tab.
 *
 * Every answer comes from this node's mirror of the shared KV buckets (synchronous, no NATS round trip), so it
 * answers while NATS is down too (`connected: false`, runs waiting in the outbox). A runtime started without
 * `--nats` answers 404 CLUSTER_NOT_CONFIGURED on every route: there is nothing to show, and a client can tell
 * "no cluster" from "cluster unreachable".
 */
import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../../common/errors.js';
import type { Cluster } from '../../runtime/cluster/index.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const RUN_STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;

const nodeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'attributes', 'running', 'last_seen', 'started_at'],
  properties: {
    name: { type: 'string' },
    attributes: { type: 'array', items: { type: 'string' } },
    running: { type: 'integer', description: 'Distributed runs executing on it now.' },
    last_seen: { type: 'string', description: 'ISO time of its last heartbeat.' },
    started_at: { type: 'string' },
  },
} as const;

const runSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['run_id', 'scenario_id', 'state', 'origin', 'node', 'fence', 'delivery', 'cancel_requested', 'updated_at'],
  properties: {
    run_id: { type: 'string' },
    scenario_id: { type: 'string' },
    state: { type: 'string', enum: RUN_STATES },
    origin: { type: 'string', description: 'The node that dispatched it.' },
    node: { type: ['string', 'null'], description: 'The node that holds (or last held) it; null while queued.' },
    fence: { type: 'integer', description: 'Grows with every claim; a node holds the run only while the record carries its fence.' },
    delivery: { type: 'integer', description: 'JetStream delivery count of the latest claim.' },
    cancel_requested: { type: ['string', 'null'] },
    updated_at: { type: 'string' },
  },
} as const;

/** `runtime.cluster`, or 404 CLUSTER_NOT_CONFIGURED. */
function clusterOf(cluster: Cluster | undefined): Cluster {
  if (!cluster) throw new TesseraError('CLUSTER_NOT_CONFIGURED', 'This Tessera runs without a cluster: start it with --nats URL --node NAME [--attr K:V…] (or TESSERA_NATS_URL) to spread scenario runs over nodes.');
  return cluster;
}

export const clusterRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  app.get('/api/cluster', {
    config: { access: ['operator'] },
    schema: {
      summary: "This node in the cluster: its name and attributes, whether NATS is connected now, and how many runs and cancels wait in its outbox.",
      tags: ['cluster'],
      security: secured,
      response: {
        200: {
          type: 'object',
          additionalProperties: false,
          required: ['node', 'attributes', 'connected', 'outbox', 'nodes', 'running'],
          properties: {
            node: { type: 'string' },
            attributes: { type: 'array', items: { type: 'string' } },
            connected: { type: 'boolean' },
            outbox: { type: 'integer', description: 'Outbox rows not yet published or not yet seen claimed.' },
            nodes: { type: 'integer', description: 'Nodes with a fresh heartbeat (this one included).' },
            running: { type: 'integer', description: 'Distributed runs this node sees running anywhere.' },
          },
        },
        401: errorRef,
        403: errorRef,
        404: errorRef,
      },
    },
  }, async () => {
    const c = clusterOf(runtime.cluster);
    return { node: c.node.name, attributes: c.node.attributes, connected: c.connected, outbox: c.outbox(), nodes: c.nodes().length, running: c.runs({ state: 'running', limit: 1000 }).length };
  });

  app.get('/api/cluster/nodes', {
    config: { access: ['operator'] },
    schema: {
      summary: 'The nodes whose heartbeat is fresh, by name: attributes, runs executing, last heartbeat.',
      tags: ['cluster'],
      security: secured,
      response: { 200: { type: 'object', additionalProperties: false, required: ['nodes'], properties: { nodes: { type: 'array', items: nodeSchema } } }, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async () => ({ nodes: clusterOf(runtime.cluster).nodes() }));

  app.get<{ Querystring: { state?: (typeof RUN_STATES)[number]; limit?: number } }>('/api/cluster/runs', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Distributed runs this node knows (newest first): state, origin, the node holding it, fence and delivery count.',
      tags: ['cluster'],
      security: secured,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { state: { type: 'string', enum: RUN_STATES }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      },
      response: { 200: { type: 'object', additionalProperties: false, required: ['runs'], properties: { runs: { type: 'array', items: runSchema } } }, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (request) => ({ runs: clusterOf(runtime.cluster).runs({ ...(request.query.state ? { state: request.query.state } : {}), limit: request.query.limit ?? 100 }) }));
};
