/**
 * Runtimes of a distributed-runs test (issue 18) in this process, each with its own SQLite file, on one throwaway
 * nats-server the test file starts (test/helpers/nats.ts). {@link clusterNodes} registers the hooks that close the
 * runtimes after each test and print their last log lines when a test failed; scenarios' effects are `fx.<name>`
 * events carrying the run id, collected from every node.
 */
import { afterEach } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { ClusterOptions } from '../../main/runtime/cluster/model.js';
import type { Scenario } from '../../main/runtime/scenarios/model.js';
import type { RunningNats } from './nats.js';
import { scenario } from './scenarios.js';
import { tempDir } from './tmp.js';

/** Polls `fn` every 20 ms until it gives something other than undefined or false. */
export async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An effectful step: publishes `topic` with the run id. */
export const fx = (name: string, topic: string) => ({ name, action: 'bus.publish' as const, with: { topic, payload: { run_id: '${run.id}' } } });
/** An effect, a wait for `go.gate` naming the run (see `release`), another effect. */
export const gated = (id: string, extra: Partial<Scenario> = {}) =>
  scenario(id, [fx('one', 'fx.one'), { name: 'gate', action: 'wait', effect: false, with: { event: 'go.gate', filter: "$.payload.run_id == '${run.id}'" } }, fx('two', 'fx.two')], extra);
/** One effect. */
export const quick = (id: string, extra: Partial<Scenario> = {}) => scenario(id, [fx('one', 'fx.one')], extra);

/** The run's local status once this node knows it (a mirrored run appears when its record first arrives). */
export const statusOf = (rt: Runtime, runId: string) => {
  try {
    return rt.scenarios.status(runId);
  } catch {
    return undefined;
  }
};
/** Whether the run waits at its `gate` step on this node. */
export const atGate = (rt: Runtime, runId: string) => statusOf(rt, runId)?.steps.some((s) => s.step_key === 'gate' && s.state === 'started') === true;
/** The run's status once it is final on this node. */
export const final = (rt: Runtime, runId: string) => {
  const s = statusOf(rt, runId);
  return s && s.state !== 'queued' && s.state !== 'running' ? s : undefined;
};
/** Lets a `gated` run waiting on this node go on. */
export const release = (rt: Runtime, runId: string) => rt.bus.publish('go.gate', { run_id: runId });

export function clusterNodes(options: { nats: () => RunningNats; prefix: string; ackWaitMs: number }) {
  const open: Runtime[] = [];
  const loggers = new Map<string, ReturnType<typeof createMemoryLogger>>();
  const effects: Array<{ node: string; topic: string; run_id: string }> = [];
  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const [name, l] of loggers) console.log(name, JSON.stringify(l.lines.filter((x) => x['level'] !== 'debug').slice(-15), null, 1));
  });
  afterEach(async () => {
    while (open.length > 0) await open.pop()!.close().catch(() => undefined);
  });
  return {
    open,
    loggers,
    /** Effects seen on every node. */
    effects,
    count: (topic: string, runId: string) => effects.filter((e) => e.topic === topic && e.run_id === runId).length,
    /** A runtime joined to the cluster as `name`, with `scenarios` registered; resolves once it is connected and set up. */
    async node(name: string, attributes: string[], scenarios: Scenario[], dataDir = tempDir(`${options.prefix}-${name}-`), extra: Partial<ClusterOptions> = {}): Promise<Runtime> {
      const logger = createMemoryLogger();
      loggers.set(name, logger);
      const rt = await createRuntime({ dataDir, shell: 'headless', logger, voice: false, cluster: { url: options.nats().url, node: name, attributes, ackWaitMs: options.ackWaitMs, heartbeatMs: 250, nakBaseMs: 100, ...extra } });
      open.push(rt);
      for (const s of scenarios) rt.scenarios.register(s);
      rt.bus.subscribe('cluster.run.*', (e) => logger.info(e.topic, e.payload as Record<string, unknown>));
      rt.bus.subscribe('fx.*', (e) => void effects.push({ node: name, topic: e.topic, run_id: String((e.payload as { run_id?: unknown }).run_id) }));
      await rt.cluster!.ready();
      return rt;
    },
  };
}
