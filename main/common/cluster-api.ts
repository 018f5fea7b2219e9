/**
 * The client side of the cluster routes (issue 18; main/host/http/cluster.ts), written once over a
 * {@link Requester} like main/common/sync-api.ts (HTTP sends it itself, Electron hands it to the main process).
 *
 * - `GET /api/cluster` (operator) → {@link ClusterSelf}
 * - `GET /api/cluster/nodes` (operator) → `{nodes: ClusterNodeView[]}`
 * - `GET /api/cluster/runs?state=&limit=` (operator) → `{runs: ClusterRunView[]}`
 *
 * A runtime started without `--nats` answers 404 CLUSTER_NOT_CONFIGURED on all three. Pure module: shared by the
 * renderer and the host.
 */
import type { Requester } from './products-api.js';

/** This node: its name and attributes, NATS connected now, outbox rows waiting, live nodes and runs running. */
export interface ClusterSelf {
  node: string;
  attributes: string[];
  connected: boolean;
  outbox: number;
  nodes: number;
  running: number;
}

/** A node as its latest heartbeat says. */
export interface ClusterNodeView {
  name: string;
  attributes: string[];
  running: number;
  /** ISO time. */
  last_seen: string;
  started_at: string;
}

export type ClusterRunState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A distributed run as the shared record says (this node's mirror). */
export interface ClusterRunView {
  run_id: string;
  scenario_id: string;
  state: ClusterRunState;
  origin: string;
  node: string | null;
  fence: number;
  delivery: number;
  cancel_requested: string | null;
  updated_at: string;
}

export interface ClusterClient {
  /** Rejects CLUSTER_NOT_CONFIGURED on a runtime without a cluster. */
  self(): Promise<ClusterSelf>;
  nodes(): Promise<ClusterNodeView[]>;
  /** Newest first. */
  runs(query?: { state?: ClusterRunState; limit?: number }): Promise<ClusterRunView[]>;
}

export function createClusterClient(request: Requester): ClusterClient {
  return {
    self: () => request<ClusterSelf>('GET', '/api/cluster'),
    nodes: () => request<{ nodes: ClusterNodeView[] }>('GET', '/api/cluster/nodes').then((a) => a.nodes),
    runs(query = {}) {
      const params = new URLSearchParams();
      if (query.state) params.set('state', query.state);
      if (query.limit !== undefined) params.set('limit', String(query.limit));
      const qs = params.toString();
      return request<{ runs: ClusterRunView[] }>('GET', `/api/cluster/runs${qs ? `?${qs}` : ''}`).then((a) => a.runs);
    },
  };
}
