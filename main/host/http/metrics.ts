/**
 * `GET /metrics` (issue 5 point 9, seed 004 §5): the runtime's metrics in the Prometheus text exposition format
 * 0.0.4, behind the same bearer token as `/api` and `/v1` (the operator role: access.ts). Scrape with
 * `authorization: { credentials_file: <data>/api-token }` in prometheus.yml.
 *
 * Also registers process basics (uptime, resident memory, database size, journal length, pending webhook
 * deliveries) computed at scrape time, and {@link installRequestMetrics}: the latency of every `/v1` request
 * by method, route pattern and status.
 */
import { statSync } from 'node:fs';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Runtime } from '../../runtime/index.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Observes `tessera_http_request_duration_seconds` for every `/v1` request (labels: method, route pattern, status). */
export function installRequestMetrics(app: FastifyInstance, runtime: Runtime): void {
  const histogram = runtime.metrics.httpDuration;
  // A callback hook, not an async one: no promise per request on the hot path.
  app.addHook('onResponse', (request, reply, done) => {
    if (request.url.startsWith('/v1/') || request.url === '/v1') {
      // The route pattern, not the URL: `/v1/r/:cid` is one series whatever the cid.
      const route = request.routeOptions.url ?? 'unmatched';
      histogram.observe(reply.elapsedTime / 1000, { method: request.method, route, status: reply.statusCode });
    }
    done();
  });
}

/** Gauges computed at scrape time from the runtime. Idempotent (the registry returns existing metrics). */
function registerRuntimeGauges(runtime: Runtime): void {
  const m = runtime.metrics;
  m.gauge('tessera_process_uptime_seconds', 'Seconds since the runtime started.', { collect: () => process.uptime() });
  m.gauge('tessera_process_resident_memory_bytes', 'Resident set size of the runtime process.', { collect: () => process.memoryUsage().rss });
  m.gauge('tessera_journal_events', 'Events in the journal (highest id).', { collect: () => (runtime.store.isOpen ? runtime.journal.lastId() : Number.NaN) });
  m.gauge('tessera_database_bytes', 'Size of the SQLite database file and its WAL.', {
    collect: () => {
      const size = (path: string) => {
        try {
          return statSync(path).size;
        } catch {
          return 0;
        }
      };
      return size(runtime.store.path) + size(`${runtime.store.path}-wal`);
    },
  });
  m.gauge('tessera_webhook_deliveries', 'Webhook deliveries in the outbox by state.', {
    labelNames: ['state'],
    collect: () => {
      const counts = runtime.webhooks.counts();
      return (['pending', 'delivered', 'failed'] as const).map((state) => ({ labels: { state }, value: counts[state] }));
    },
  });
}

export const metricsRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;
  registerRuntimeGauges(runtime);

  app.get('/metrics', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Prometheus metrics (text format 0.0.4): run and module latency with p50/p95/p99, verdict counters, replay blocks, permits, webhook delivery counters. Bearer auth.',
      tags: ['system'],
      security: [{ bearer: [] }],
      produces: ['text/plain'],
      response: { 200: { type: 'string', description: 'Prometheus text exposition format 0.0.4.' }, 401: { $ref: 'Error#' } },
    },
  }, async (_request, reply) => reply.header('content-type', PROMETHEUS_CONTENT_TYPE).send(runtime.metrics.render()));
};
