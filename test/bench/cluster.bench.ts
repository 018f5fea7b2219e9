/**
 * Scenario runs over nodes on NATS JetStream (issue 18 "Benchmark"):
 * - runs finished per second with 1, 2 and 3 nodes against the in-process engine (no NATS), in the same run;
 * - dispatch latency: `scenario.run` on one node → the run's first step started on the node that took it, p50/p95,
 *   against the same on the in-process engine;
 * - redelivery time after a node is killed: SIGKILL of a `tessera start --nats` process holding a run mid-way → the
 *   run's first step started on another node, against the consumers' ack wait (its floor).
 *
 * What is a process and what is not: the runs/s and latency nodes are runtimes in this one process (each with its
 * own SQLite file and NATS connection) — separate processes would add their start-up and scheduling noise, not
 * protocol work, and on a 2-core box they share the cores either way; so the 2- and 3-node figures show what the
 * shared stream, run records and claims cost, not added CPU. The killed node is a real `tessera start` process
 * (the built CLI: `npm run build` first) and the survivor is in-process. A fresh throwaway `nats-server -js` (Debian
 * 2.9) per measurement, with its store in a temp folder.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createLogger } from '../../main/runtime/log/index.js';
import { scenario } from '../helpers/scenarios.js';
import type { AnyBenchmark, AsyncSide, FigureSide } from './harness.js';

const ACK_WAIT_MS = 2_000;
const RUNS_PER_ROUND = 300;
const BIN = fileURLToPath(new URL('../../bin/tessera.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../../out/main/cli.js', import.meta.url));

const twoSteps = scenario('bench_cluster', [
  { name: 'a', action: 'bus.publish', with: { topic: 'bench.fx', payload: { run_id: '${run.id}' } } },
  { name: 'b', action: 'log', with: { message: 'b' } },
]);

const cleanups = new Set<() => Promise<void> | void>();
const own = (fn: () => Promise<void> | void) => {
  cleanups.add(fn);
  return async () => {
    cleanups.delete(fn);
    await fn();
  };
};

/** A throwaway `nats-server -js` on a random loopback port (`-p -1`), its store in a temp folder. */
async function natsServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nats-'));
  const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', '-1', '-js', '-sd', join(dir, 'js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const port = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /Listening for client connections on [\d.]+:(\d+)/.exec(output);
      if (m && /Server is ready/.test(output)) resolve(m[1]!);
    };
    proc.stdout.on('data', check);
    proc.stderr.on('data', check);
    proc.once('exit', () => reject(new Error(`nats-server exited (is it installed? npm run setup): ${output}`)));
  });
  const stop = own(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: `nats://127.0.0.1:${port}`, stop };
}

/** An in-process runtime, on a cluster when `url` is given. */
async function runtime(name: string, url?: string): Promise<{ rt: Runtime; close(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), `bench-cluster-${name}-`));
  const rt = await createRuntime({ dataDir, shell: 'headless', logger: createLogger({ level: 'error' }), pluginDirs: [], voice: false, ...(url ? { cluster: { url, node: name, attributes: [], ackWaitMs: ACK_WAIT_MS, heartbeatMs: 500 } } : {}) });
  rt.scenarios.register(twoSteps);
  const close = own(async () => {
    await rt.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });
  if (url) await rt.cluster!.ready();
  return { rt, close };
}

/** `size` in-process nodes on a fresh server (or one runtime without NATS for size 0). */
async function group(size: number): Promise<{ nodes: Runtime[]; close(): Promise<void> }> {
  if (size === 0) {
    const one = await runtime('engine');
    return { nodes: [one.rt], close: one.close };
  }
  const nats = await natsServer();
  const members = await Promise.all(Array.from({ length: size }, (_, i) => runtime(`n${i + 1}`, nats.url)));
  const nodes = members.map((m) => m.rt);
  // Warm-up: every node pulls (its consumer loops start within 250 ms of the scenario's registration).
  await Promise.all(Array.from({ length: size * 4 }, (_, i) => nodes[i % size]!.scenarios.wait(nodes[i % size]!.scenarios.run('bench_cluster'), 30_000)));
  return {
    nodes,
    async close() {
      await Promise.all(members.map((m) => m.close()));
      await nats.stop();
    },
  };
}

/** Runs finished per second: RUNS_PER_ROUND submitted round-robin over the nodes at once, until all are final. */
const throughput = (size: number, name: string): FigureSide => ({
  name,
  async measure() {
    const g = await group(size);
    try {
      const start = process.hrtime.bigint();
      const ids = Array.from({ length: RUNS_PER_ROUND }, (_, i) => g.nodes[i % g.nodes.length]!.scenarios.run('bench_cluster'));
      const done = await Promise.all(ids.map((id, i) => g.nodes[i % g.nodes.length]!.scenarios.wait(id, 120_000)));
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (done.some((r) => r.state !== 'completed')) throw new Error(`runs did not complete: ${done.filter((r) => r.state !== 'completed').map((r) => r.state).join(', ')}`);
      return RUNS_PER_ROUND / seconds;
    } finally {
      await g.close();
    }
  },
});

/** One run at a time: `scenario.run` on the first node → its first step started on whichever node took it. */
const dispatch = (size: number, name: string): AsyncSide => ({
  name,
  async setup() {
    const g = await group(size);
    const started = new Map<string, () => void>();
    const early = new Set<string>();
    for (const n of g.nodes) {
      n.bus.subscribe('scenario.step.started', (e) => {
        const runId = String((e.payload as { run_id?: unknown }).run_id);
        const done = started.get(runId);
        if (done) done();
        else early.add(runId);
      });
    }
    return {
      run: () =>
        new Promise<void>((resolve) => {
          const runId = g.nodes[0]!.scenarios.run('bench_cluster');
          if (early.delete(runId)) return resolve();
          started.set(runId, () => {
            started.delete(runId);
            resolve();
          });
        }),
      teardown: () => g.close(),
    };
  },
});

const gatedYaml = [
  'id: bench_gated',
  'version: 1',
  'description: A step, then a long pause to be killed in (issue 18 bench).',
  'max_deliver: 10',
  'steps:',
  '  - name: one',
  '    action: log',
  '    with: { message: one }',
  '  - name: pause',
  '    action: wait',
  '    effect: false',
  '    with: { duration: 60000 }',
  '',
].join('\n');

/** SIGKILL a `tessera start --nats` process mid-run → the run's first step started on the in-process survivor. */
const redelivery: FigureSide = {
  name: 'kill -9 of a tessera start process → first step on the in-process survivor',
  async measure() {
    if (!existsSync(BUILT)) throw new Error('This benchmark starts the built CLI: run `npm run build` first.');
    const nats = await natsServer();
    const survivor = await runtime('survivor', nats.url);
    const dataDir = mkdtempSync(join(tmpdir(), 'bench-cluster-victim-'));
    mkdirSync(join(dataDir, 'scenarios'));
    writeFileSync(join(dataDir, 'scenarios', 'bench_gated.yaml'), gatedYaml);
    let child: ChildProcess | undefined;
    const killChild = own(async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child!.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      rmSync(dataDir, { recursive: true, force: true });
    });
    try {
      const { rt } = survivor;
      rt.scenarios.register(scenario('bench_gated', [{ name: 'one', action: 'log', with: { message: 'one' } }, { name: 'pause', action: 'wait', effect: false, with: { duration: 60_000 } }], { max_deliver: 10 }));
      rt.cluster!.pauseProgress(); // the victim takes the run
      const env: NodeJS.ProcessEnv = { ...process.env, TESSERA_NATS_ACK_WAIT_MS: String(ACK_WAIT_MS), TESSERA_DEVELOPER: '1' };
      delete env['TESSERA_TOKEN'];
      delete env['TESSERA_DATA'];
      const proc = spawn(process.execPath, [BIN, 'start', '--headless', '--port', '0', '--data', dataDir, '--nats', nats.url, '--node', 'victim'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      let out = '';
      proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
      proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
      await until('the victim to start', () => {
        if (proc.exitCode !== null) throw new Error(`the victim exited: ${out}`);
        return /Open:\s+http/.test(out);
      }, 60_000);
      const runId = rt.scenarios.run('bench_gated');
      await until('the victim to hold the run mid-way', () => {
        const rec = rt.cluster!.status(runId);
        return rec?.node === 'victim' && rec.steps['one']?.state === 'completed';
      }, 60_000).catch((err: Error) => Promise.reject(new Error(`${err.message}: record ${JSON.stringify(rt.cluster!.status(runId))}; victim said ${out.split('\n').filter((l) => /scenario|load|cluster/i.test(l)).join('\n').slice(-3000)}`)));
      const firstStep = new Promise<bigint>((resolve) => rt.bus.subscribe('scenario.step.started', (e) => {
        if ((e.payload as { run_id?: unknown }).run_id === runId) resolve(process.hrtime.bigint());
      }));
      rt.cluster!.resumeProgress();
      const killedAt = process.hrtime.bigint();
      proc.kill('SIGKILL');
      const at = await Promise.race([firstStep, until('the redelivery', () => false, 60_000).then(() => 0n)]);
      return Number(at - killedAt) / 1e6;
    } finally {
      await killChild();
      await survivor.close();
      await nats.stop();
    }
  },
};

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const benchmarks: AnyBenchmark[] = [
  {
    kind: 'figure',
    name: `cluster: runs finished per second (${RUNS_PER_ROUND} two-step runs at once; in-process nodes, one nats-server)`,
    unit: 'runs/s',
    candidate: throughput(3, 'cluster, 3 in-process nodes'),
    baselines: [throughput(0, 'in-process engine, no NATS'), throughput(1, 'cluster, 1 node'), throughput(2, 'cluster, 2 in-process nodes')],
  },
  {
    kind: 'latency',
    name: 'cluster: dispatch latency, scenario.run → first step started (in-process nodes)',
    samples: 150,
    warmup: 20,
    candidate: dispatch(2, 'cluster, 2 in-process nodes (outbox → JetStream → claim)'),
    baselines: [dispatch(0, 'in-process engine, no NATS')],
  },
  {
    kind: 'figure',
    name: `cluster: redelivery after kill -9 (ack wait ${ACK_WAIT_MS} ms)`,
    unit: 'ms',
    candidate: redelivery,
    baselines: [{ name: 'the consumers\' ack wait (TESSERA_NATS_ACK_WAIT_MS), the floor', measure: () => ACK_WAIT_MS }],
  },
];

/** Whatever a failed measurement left behind. */
export async function dispose(): Promise<void> {
  for (const fn of [...cleanups]) await Promise.resolve(fn()).catch(() => undefined);
}
