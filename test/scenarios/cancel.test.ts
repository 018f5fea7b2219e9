/**
 * Cancelling a run reaches into the tool plugin it is waiting for (issue 4 §3: "a cancel token that steps and
 * tool plugins observe"): real SQLite file, real sandbox host process, real isolates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANCEL_GRACE_MS } from '../../sandbox/protocol.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { makePublisher } from '../helpers/plugins.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

let runtime: Runtime;

beforeAll(async () => {
  const publisher = makePublisher();
  runtime = await createRuntime({ dataDir: tempDir('tessera-cancel-', 'file'), shell: 'headless', logger: createMemoryLogger(), builtinTrustDir: publisher.trustDir });
  // Loops on host.call until its run is cancelled, then notes what it saw in module state (which survives only
  // while its isolate does) and returns. `{report: true}` reads that state back.
  await runtime.plugins.load(publisher.write({
    name: 'polite',
    kind: 'tool',
    capabilities: [{ name: 'events.emit' }],
    limits: { deadline_ms: 20_000 },
    code: `let seen = null;
    export async function invoke(args, host) {
      if (args.report) return seen;
      let ticks = 0;
      while (!host.cancelled()) {
        // The call in flight when the cancel lands is refused too.
        try { await host.call('events.emit', { topic: 'tick', payload: { n: ++ticks } }); } catch (e) { if (e.code !== 'RUN_CANCELLED') throw e; }
      }
      let refused = null;
      try { await host.call('events.emit', { topic: 'after', payload: {} }); } catch (e) { refused = { name: e.name, code: e.code }; }
      seen = { cancelled: host.cancelled(), ticks, refused };
      return seen;
    }`,
  }));
  // Never looks at host.cancelled() and swallows every refusal: only terminating its isolate stops it.
  await runtime.plugins.load(publisher.write({
    name: 'stubborn',
    kind: 'tool',
    capabilities: [{ name: 'kv' }],
    limits: { deadline_ms: 20_000 },
    code: `let started = 0;
    export async function invoke(args, host) {
      if (args.report) return { started };
      started++;
      for (;;) { try { await host.call('kv.get', { key: 'x' }); } catch {} }
    }`,
  }));
  await runtime.plugins.load(publisher.write({ name: 'echo', kind: 'tool', code: 'export function invoke(args) { return { echo: args.n }; }' }));
}, 60_000);

afterAll(async () => {
  await runtime?.close();
});

const stepEvents = (runId: string) => runtime.journal.query({ topic: 'scenario.step', limit: 1000 }).events.filter((e) => (e.payload as { run_id?: string }).run_id === runId);
const until = async (what: () => boolean, timeoutMs = 5000) => {
  for (const end = Date.now() + timeoutMs; !what(); ) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('cancelling a run inside a tool plugin', () => {
  it('stops a plugin that watches host.cancelled(): its calls after the cancel are refused with RUN_CANCELLED and the step ends cancelled', async () => {
    runtime.scenarios.register(scenario('polite-run', [{ name: 'work', tool: 'polite', with: {} }]));
    const runId = runtime.scenarios.run('polite-run');
    const ticks = () => runtime.journal.query({ topic: 'plugin.polite.tick', limit: 1000 }).events.length;
    await until(() => ticks() >= 3);
    const cancelledAt = Date.now();
    expect(runtime.scenarios.cancel(runId, 'operator stop')).toBe(true);
    const done = await runtime.scenarios.wait(runId, 5000);
    // The runtime stops waiting at once, not at the plugin's 20 s deadline (10 s: a ceiling for a loaded machine).
    expect(Date.now() - cancelledAt).toBeLessThan(10_000);
    expect(done).toMatchObject({ state: 'cancelled', error: { code: 'RUN_CANCELLED', message: 'operator stop' } });
    const [step] = runtime.scenarios.status(runId).steps;
    expect(step).toMatchObject({ name: 'work', state: 'cancelled', error: { code: 'RUN_CANCELLED', message: 'operator stop' } });
    expect(step!.finished_at).not.toBeNull();
    expect(stepEvents(runId).map((e) => e.topic)).toEqual(['scenario.step.started', 'scenario.step.cancelled']);
    // The plugin saw the flag, its next capability call was refused inside the isolate, and it returned by itself:
    // its isolate (and the module state it left) is still there, and it emitted nothing after the cancel.
    await new Promise((r) => setTimeout(r, 100));
    const report = (await runtime.plugins.run('polite', { report: true })).output as { cancelled: boolean; ticks: number; refused: { name: string; code: string } };
    expect(report).toMatchObject({ cancelled: true, refused: { name: 'CapabilityError', code: 'RUN_CANCELLED' } });
    expect(report.ticks).toBeGreaterThanOrEqual(3);
    const emitted = ticks();
    await new Promise((r) => setTimeout(r, 100));
    expect(ticks()).toBe(emitted);
    expect(runtime.journal.query({ topic: 'plugin.polite.after' }).events).toEqual([]);
  });

  it('terminates a plugin that ignores the cancel after its grace period, without touching other plugins or the sandbox host', async () => {
    const pid = runtime.plugins.sandbox.pid;
    const restarts = runtime.plugins.sandbox.restarts;
    runtime.scenarios.register(scenario('stubborn-run', [{ name: 'spin', tool: 'stubborn', with: {} }]));
    const runId = runtime.scenarios.run('stubborn-run');
    await until(() => runtime.scenarios.status(runId).steps[0]?.state === 'started');
    await new Promise((r) => setTimeout(r, 100));
    expect((await runtime.plugins.run('echo', { n: 1 })).output).toEqual({ echo: 1 });
    const cancelledAt = Date.now();
    runtime.scenarios.cancel(runId);
    const done = await runtime.scenarios.wait(runId, 5000);
    expect(Date.now() - cancelledAt).toBeLessThan(10_000);
    expect(done.state).toBe('cancelled');
    expect(runtime.scenarios.status(runId).steps[0]).toMatchObject({ state: 'cancelled', error: { code: 'RUN_CANCELLED' } });
    // Past the grace period its isolate is terminated: a call then gets a fresh one (module state reset). The plugin
    // is called again only well past the grace period (no event marks the termination): a call parked in the same
    // isolate before it would keep that isolate alive, by design, so polling with calls would never see it go.
    await expect.poll(() => Date.now() - cancelledAt > CANCEL_GRACE_MS + 1500, { timeout: 10_000, interval: 100 }).toBe(true);
    expect((await runtime.plugins.run('stubborn', { report: true })).output).toEqual({ started: 0 });
    expect((await runtime.plugins.run('echo', { n: 2 })).output).toEqual({ echo: 2 });
    expect(runtime.plugins.sandbox.pid).toBe(pid);
    expect(runtime.plugins.sandbox.restarts).toBe(restarts);
  });

  it('refuses a plugin call whose cancel token is already aborted, and leaves a finished call alone', async () => {
    const controller = new AbortController();
    controller.abort(new Error('too late'));
    await expect(runtime.plugins.run('echo', { n: 3 }, { signal: controller.signal })).rejects.toMatchObject({ code: 'RUN_CANCELLED', message: expect.stringContaining('too late') });
    const late = new AbortController();
    const result = await runtime.plugins.run('echo', { n: 4 }, { signal: late.signal });
    late.abort(new Error('after the fact'));
    expect(result.output).toEqual({ echo: 4 });
    expect((await runtime.plugins.run('echo', { n: 5 })).output).toEqual({ echo: 5 });
  });

  it('records the step a cancel interrupted as cancelled, also while it waits to retry', async () => {
    runtime.scenarios.register(scenario('nap-run', [
      { name: 'first', action: 'log', with: { message: 'hi' } },
      { name: 'nap', action: 'wait', with: { duration: 60_000 } },
    ]));
    const napId = runtime.scenarios.run('nap-run');
    await until(() => runtime.scenarios.status(napId).steps[1]?.state === 'started');
    runtime.scenarios.cancel(napId, 'enough');
    await runtime.scenarios.wait(napId, 5000);
    expect(runtime.scenarios.status(napId).steps.map((s) => [s.name, s.state, s.error?.code ?? null])).toEqual([['first', 'completed', null], ['nap', 'cancelled', 'RUN_CANCELLED']]);

    runtime.scenarios.register(scenario('retry-run', [{ name: 'flop', action: 'wait', with: { duration: -1 }, retries: { max: 5, backoff: 'fixed', initial: 60_000, max_delay: 60_000 } }]));
    const retryId = runtime.scenarios.run('retry-run');
    await until(() => stepEvents(retryId).some((e) => e.topic === 'scenario.step.retrying'));
    runtime.scenarios.cancel(retryId);
    await runtime.scenarios.wait(retryId, 5000);
    expect(runtime.scenarios.status(retryId).steps[0]).toMatchObject({ state: 'cancelled', attempt: 1, error: { code: 'RUN_CANCELLED' } });
    expect(stepEvents(retryId).map((e) => e.topic).at(-1)).toBe('scenario.step.cancelled');
  });

  it("records the step a run's own timeout interrupted as failed with STEP_TIMEOUT", async () => {
    runtime.scenarios.register(scenario('late-run', [{ name: 'nap', action: 'wait', with: { duration: 60_000 } }], { timeout: 100 }));
    const done = await runtime.scenarios.wait(runtime.scenarios.run('late-run'), 5000);
    expect(done).toMatchObject({ state: 'failed', error: { code: 'STEP_TIMEOUT' } });
    expect(runtime.scenarios.status(done.run_id).steps[0]).toMatchObject({ state: 'failed', error: { code: 'STEP_TIMEOUT' } });
  });

  it('leaves the interrupted step started when the runtime stops (not a cancel), and runs it again on resume', async () => {
    const dataDir = tempDir('tessera-cancel-stop-', 'file');
    // Long enough that the runtime's close (HTTP, sandbox host, agents… before the engine) ends on a loaded machine
    // before the nap does; the second runtime waits only what is left of it (a wait counts from its first start).
    const napper = scenario('napper', [{ name: 'nap', action: 'wait', with: { duration: 2_000 } }, { name: 'after', action: 'log', with: {} }]);
    const first = await createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger(), pluginDirs: [] });
    first.scenarios.register(napper);
    const runId = first.scenarios.run('napper');
    await until(() => first.scenarios.status(runId).steps[0]?.state === 'started');
    await first.close();
    const second = await createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger(), pluginDirs: [] });
    try {
      second.scenarios.register(napper);
      expect(second.scenarios.status(runId)).toMatchObject({ state: 'running', steps: [{ name: 'nap', state: 'started' }] });
      expect(second.scenarios.resume()).toBe(1);
      expect((await second.scenarios.wait(runId, 5000)).state).toBe('completed');
      expect(second.scenarios.status(runId).steps.map((s) => s.state)).toEqual(['completed', 'completed']);
    } finally {
      await second.close();
    }
  });
});
