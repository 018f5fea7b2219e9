/**
 * `tessera cluster status`: what a running Tessera sees of the cluster its scenario runs are spread over (issue 18;
 * routes in http/cluster.ts) — this node, NATS connected or not, its outbox, the live nodes with their attributes
 * and the latest distributed runs with the node holding each and its fence. Over the HTTP API with an operator
 * token, like every command that talks to a running Tessera. A runtime without `--nats` answers
 * CLUSTER_NOT_CONFIGURED (exit code non-zero).
 */
import { TesseraError } from '../common/errors.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { Command } from './cli.js';

interface Self { node: string; attributes: string[]; connected: boolean; outbox: number; nodes: number; running: number }
interface NodeRow { name: string; attributes: string[]; running: number; last_seen: string }
interface RunRow { run_id: string; scenario_id: string; state: string; origin: string; node: string | null; fence: number; delivery: number }

const STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'];

/** Columns padded to their widest cell. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

const clusterStatus: Command = {
  name: 'cluster status',
  summary: 'This node, the live nodes (attributes, last heartbeat) and the latest distributed runs (state, node, fence) of a running Tessera (operator).',
  usage: 'tessera cluster status [--state S] [--limit N] [--json] [--url URL] [--token T] [--data DIR]',
  options: { ...connection, json: { type: 'boolean' }, state: { type: 'string' }, limit: { type: 'string' } },
  flags: [
    ['--state S', `Only runs in this state (${STATES.join(', ')}).`],
    ['--limit N', 'At most N runs, newest first (default 20, at most 1000).'],
    ['--json', 'Print {"cluster", "nodes", "runs"} as JSON.'],
    ...connectionFlags,
  ],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const state = typeof values['state'] === 'string' ? values['state'] : undefined;
      if (state !== undefined && !STATES.includes(state)) throw new TesseraError('CONFIG_INVALID', `--state must be one of ${STATES.join(', ')}, got ${JSON.stringify(state)}.`);
      const limit = typeof values['limit'] === 'string' ? Number(values['limit']) : 20;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new TesseraError('CONFIG_INVALID', `--limit must be a whole number from 1 to 1000, got ${JSON.stringify(values['limit'])}.`);
      const api = apiClient(values, io);
      const self = (await api('GET', '/api/cluster')) as unknown as Self;
      const [{ nodes }, { runs }] = (await Promise.all([api('GET', '/api/cluster/nodes'), api('GET', `/api/cluster/runs?limit=${limit}${state ? `&state=${state}` : ''}`)])) as unknown as [{ nodes: NodeRow[] }, { runs: RunRow[] }];
      if (values['json']) {
        io.stdout(`${JSON.stringify({ cluster: self, nodes, runs }, null, 2)}\n`);
        return 0;
      }
      io.stdout(`Node ${self.node} [${self.attributes.join(' ') || 'no attributes'}]: NATS ${self.connected ? 'connected' : 'NOT connected'}, ${self.outbox} in the outbox, ${self.running} running in the cluster.\n\n`);
      io.stdout(nodes.length === 0 ? 'No live nodes.\n' : table([['NODE', 'ATTRIBUTES', 'RUNNING', 'LAST HEARTBEAT'], ...nodes.map((n) => [n.name, n.attributes.join(' ') || '-', String(n.running), n.last_seen])]));
      io.stdout('\n');
      io.stdout(runs.length === 0 ? 'No distributed runs.\n' : table([['RUN', 'SCENARIO', 'STATE', 'NODE', 'FENCE', 'DELIVERY', 'ORIGIN'], ...runs.map((r) => [r.run_id, r.scenario_id, r.state, r.node ?? '-', String(r.fence), String(r.delivery), r.origin])]));
      return 0;
    });
  },
};

/** `cluster status`. */
export const CLUSTER_COMMANDS: Command[] = [clusterStatus];
