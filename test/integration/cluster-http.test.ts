/**
 * The cluster's HTTP surface and CLI (issue 18; main/host/http/cluster.ts, main/host/cli-cluster.ts) over real HTTP
 * on 127.0.0.1: a host on a real throwaway nats-server and a host without a cluster. Operators read this node, the
 * live nodes and the distributed runs; other roles are refused; a runtime without `--nats` answers 404
 * CLUSTER_NOT_CONFIGURED; `tessera cluster status` (the built CLI) prints the same over the API, and the Ops
 * "Cluster" tab (the built renderer in Debian Chromium) shows it.
 */
import type { Browser } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { launchChromium } from '../helpers/browser.js';
import { cleanEnv, requireBuild, runTesseraAsync } from '../helpers/cli.js';
import { startNats } from '../helpers/nats.js';
import type { RunningNats } from '../helpers/nats.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

/** The built renderer (`npm run build`), served by both hosts for the Ops tab check. */
const RENDERER = fileURLToPath(new URL('../../out/renderer', import.meta.url));
let nats: RunningNats;
let clustered: RunningHost;
let plain: RunningHost;

beforeAll(async () => {
  nats = await startNats();
  const env = { TESSERA_NATS_URL: nats.url, TESSERA_NODE_NAME: 'kiosk-1', TESSERA_NODE_ATTRS: 'region:eu,has:mic' };
  [clustered, plain] = await Promise.all([
    startHost({ dataDir: tempDir('tessera-cluster-http-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env, pluginDirs: [], rendererDir: RENDERER }),
    startHost({ dataDir: tempDir('tessera-cluster-http-plain-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {}, pluginDirs: [], rendererDir: RENDERER }),
  ]);
  clustered.runtime.scenarios.register(scenario('mic_hello', [{ name: 'one', action: 'bus.publish', with: { topic: 'fx.one', payload: { run_id: '${run.id}' } } }], { constraints: ['has:mic'] }));
  await clustered.runtime.cluster!.ready();
}, 60_000);
afterAll(async () => {
  await Promise.all([clustered?.close(), plain?.close()]);
  await nats?.dispose();
});

async function get(host: RunningHost, path: string, token: string | null = host.token): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(host.origin + path, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const ROUTES = ['/api/cluster', '/api/cluster/nodes', '/api/cluster/runs'];

describe('cluster routes and tessera cluster status', () => {
  it('shows an operator this node, the live nodes and where each distributed run ran', async () => {
    const runId = clustered.runtime.scenarios.run('mic_hello');
    const done = await clustered.runtime.scenarios.wait(runId, 15_000);
    expect(done.state).toBe('completed');
    const self = await get(clustered, '/api/cluster');
    expect(self).toMatchObject({ status: 200, json: { node: 'kiosk-1', attributes: ['has:mic', 'region:eu'], connected: true } });
    expect(typeof self.json['outbox']).toBe('number');
    const nodes = await get(clustered, '/api/cluster/nodes');
    expect(nodes.json['nodes']).toEqual([expect.objectContaining({ name: 'kiosk-1', attributes: ['has:mic', 'region:eu'], running: expect.any(Number), last_seen: expect.any(String) })]);
    const runs = await get(clustered, '/api/cluster/runs?state=completed&limit=10');
    expect(runs.json['runs']).toEqual([expect.objectContaining({ run_id: runId, scenario_id: 'mic_hello', state: 'completed', origin: 'kiosk-1', node: 'kiosk-1', fence: 1, delivery: 1 })]);
    expect((await get(clustered, '/api/cluster/runs?state=running')).json['runs']).toEqual([]);
    expect((await get(clustered, '/api/cluster/runs?state=lost')).status).toBe(400);
  });

  it('refuses other roles and a missing token', async () => {
    for (const path of ROUTES) {
      for (const role of ['traveller', 'staff', 'author'] as const) {
        const answer = await get(clustered, path, clustered.credentials.roleToken(role));
        expect(answer.status, `${role} ${path}`).toBe(403);
        expect((answer.json['error'] as { code: string }).code).toBe('FORBIDDEN');
      }
      expect((await get(clustered, path, null)).status).toBe(401);
    }
  });

  it('answers 404 CLUSTER_NOT_CONFIGURED on a runtime without a cluster', async () => {
    for (const path of ROUTES) {
      const answer = await get(plain, path);
      expect(answer.status, path).toBe(404);
      expect(answer.json['error']).toMatchObject({ code: 'CLUSTER_NOT_CONFIGURED', message: expect.stringContaining('--nats') });
    }
  });

  it('tessera cluster status prints the nodes and runs, as text and as JSON; CLUSTER_NOT_CONFIGURED without a cluster', async () => {
    requireBuild();
    const env = cleanEnv();
    const [text, json, none] = await Promise.all([
      runTesseraAsync(['cluster', 'status', '--url', clustered.origin, '--token', clustered.token], env),
      runTesseraAsync(['cluster', 'status', '--json', '--url', clustered.origin, '--token', clustered.token], env),
      runTesseraAsync(['cluster', 'status', '--url', plain.origin, '--token', plain.token], env),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/Node kiosk-1 \[has:mic region:eu\]: NATS connected/);
    expect(text.stdout).toMatch(/kiosk-1\s+has:mic region:eu\s+\d+/);
    expect(text.stdout).toMatch(/mic_hello\s+completed\s+kiosk-1\s+1\s+1/);
    const parsed = JSON.parse(json.stdout) as { cluster: { node: string }; nodes: unknown[]; runs: Array<{ scenario_id: string }> };
    expect(parsed.cluster.node).toBe('kiosk-1');
    expect(parsed.nodes).toHaveLength(1);
    expect(parsed.runs.map((r) => r.scenario_id)).toContain('mic_hello');
    expect(none.code).toBe(1);
    expect(none.stderr + none.stdout).toContain('CLUSTER_NOT_CONFIGURED');
  });

  it('the Ops Cluster tab shows the nodes with their attributes and the runs with state, node and fence; a runtime without a cluster says so', async () => {
    requireBuild();
    const runId = clustered.runtime.scenarios.run('mic_hello');
    await clustered.runtime.scenarios.wait(runId, 15_000);
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const page = await browser.newPage();
      await page.goto(clustered.uiUrl);
      await page.locator('nav a[data-area="ops"]').click({ timeout: 8_000 });
      await page.getByTestId('ops-tab-cluster').click({ timeout: 8_000 });
      await expect.poll(() => page.getByTestId('cluster-self').textContent(), { timeout: 10_000 }).toMatch(/kiosk-1 \[has:mic region:eu\]: NATS connected/);
      const node = page.locator('[data-testid="cluster-nodes"] tr[data-node="kiosk-1"]');
      await expect.poll(() => node.textContent()).toMatch(/kiosk-1has:mic region:eu\d+(now|\d+ s ago)/);
      const run = page.locator(`[data-testid="cluster-runs"] tr[data-run="${runId}"]`);
      await expect.poll(() => run.locator('td').allTextContents(), { timeout: 10_000 }).toEqual([runId, 'mic_hello', 'completed', 'kiosk-1', '1', '1', 'kiosk-1', expect.stringMatching(/now|s ago/)]);
      await page.goto(plain.uiUrl);
      await page.locator('nav a[data-area="ops"]').click({ timeout: 8_000 });
      await page.getByTestId('ops-tab-cluster').click({ timeout: 8_000 });
      await expect.poll(() => page.getByTestId('cluster-absent').textContent(), { timeout: 10_000 }).toContain('without a cluster');
    } finally {
      await browser?.close();
    }
  }, 45_000);
});
