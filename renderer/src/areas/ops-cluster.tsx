/**
 * Ops → Cluster (issue 18): the nodes this device's scenario runs are spread over (attributes, runs executing, last
 * heartbeat) and the distributed runs with their state, the node holding each and its fence — from
 * `GET /api/cluster*` (main/common/cluster-api.ts), refreshed every 2 seconds while the tab is open. A runtime
 * started without `--nats` says so instead (CLUSTER_NOT_CONFIGURED).
 */
import { useEffect, useState } from 'preact/hooks';
import type { TesseraClient } from '../../../main/common/api.js';
import type { ClusterNodeView, ClusterRunState, ClusterRunView, ClusterSelf } from '../../../main/common/cluster-api.js';
import { isTesseraError } from '../../../main/common/errors.js';

const REFRESH_MS = 2_000;
const message = (err: unknown) => (isTesseraError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err));
const ago = (iso: string, now: number) => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 1 ? 'now' : `${s} s ago`;
};

export function ClusterPanel(props: { client: TesseraClient }) {
  const cluster = props.client.cluster;
  const [self, setSelf] = useState<ClusterSelf | null>(null);
  const [nodes, setNodes] = useState<ClusterNodeView[]>([]);
  const [runs, setRuns] = useState<ClusterRunView[]>([]);
  const [state, setState] = useState<ClusterRunState | ''>('');
  const [absent, setAbsent] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    if (!cluster) {
      setAbsent('This client cannot reach the cluster routes.');
      return;
    }
    let live = true;
    const refresh = async () => {
      try {
        const [s, n, r] = await Promise.all([cluster.self(), cluster.nodes(), cluster.runs({ limit: 100, ...(state ? { state } : {}) })]);
        if (!live) return;
        setSelf(s);
        setNodes(n);
        setRuns(r);
        setProblem(null);
        setNow(Date.now());
      } catch (err) {
        if (!live) return;
        if (isTesseraError(err) && err.code === 'CLUSTER_NOT_CONFIGURED') setAbsent(err.message);
        else setProblem(message(err));
      }
    };
    void refresh();
    const timer = setInterval(() => void refresh(), REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [cluster, state]);

  if (absent) {
    return (
      <section class="ops-runs ops-cluster" data-testid="cluster-panel">
        <h2>Cluster</h2>
        <p class="hint" data-testid="cluster-absent">{absent}</p>
      </section>
    );
  }
  return (
    <section class="ops-runs ops-cluster" data-testid="cluster-panel">
      <h2>Cluster</h2>
      {problem ? <p class="error" role="alert">{problem}</p> : null}
      {self ? (
        <p data-testid="cluster-self">
          This node <strong>{self.node}</strong> [{self.attributes.join(' ') || 'no attributes'}]: NATS {self.connected ? 'connected' : <strong>not connected</strong>}, {self.outbox} waiting in the outbox, {self.running} running in the cluster.
        </p>
      ) : (
        <p class="hint">Loading…</p>
      )}
      <h3>Nodes</h3>
      <table class="events" data-testid="cluster-nodes">
        <thead>
          <tr><th>Node</th><th>Attributes</th><th>Running</th><th>Last heartbeat</th></tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr key={n.name} data-node={n.name}>
              <td>{n.name}</td>
              <td>{n.attributes.join(' ') || '–'}</td>
              <td>{n.running}</td>
              <td title={n.last_seen}>{ago(n.last_seen, now)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>
        Runs{' '}
        <select aria-label="Run state" value={state} onChange={(e) => setState((e.currentTarget as HTMLSelectElement).value as ClusterRunState | '')}>
          <option value="">all states</option>
          {(['queued', 'running', 'completed', 'failed', 'cancelled'] as const).map((s) => <option key={s} value={s}>{s}</option>)}
        </select>
      </h3>
      <table class="events" data-testid="cluster-runs">
        <thead>
          <tr><th>Run</th><th>Scenario</th><th>State</th><th>Node</th><th>Fence</th><th>Delivery</th><th>Origin</th><th>Updated</th></tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={r.run_id} data-run={r.run_id}>
              <td><code>{r.run_id}</code></td>
              <td>{r.scenario_id}</td>
              <td>{r.state}{r.cancel_requested ? ' (cancel requested)' : ''}</td>
              <td>{r.node ?? '–'}</td>
              <td>{r.fence}</td>
              <td>{r.delivery}</td>
              <td>{r.origin}</td>
              <td title={r.updated_at}>{ago(r.updated_at, now)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {runs.length === 0 ? <p class="hint">No distributed runs{state ? ` in state ${state}` : ''}.</p> : null}
    </section>
  );
}
