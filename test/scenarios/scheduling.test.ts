/**
 * Enqueue-to-start under a burst (issue 4 §3, §12): new runs start their first step before older runs go on to
 * their next ones, FIFO, and a first step's `started` is committed and journaled while the burst is still being
 * enqueued rather than when the whole burst has been worked through. Real runtime, real SQLite file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

let runtime: Runtime;

beforeAll(async () => {
  runtime = await createRuntime({ dataDir: tempDir('tessera-burst-', 'file'), shell: 'headless', logger: createMemoryLogger(), pluginDirs: [], scenarioLimits: { global: 1000, pools: { cpu: 2, io: 1000 } } });
  runtime.scenarios.register(scenario('two_step', [{ name: 'a', action: 'log', with: {} }, { name: 'b', action: 'log', with: {} }]));
}, 60_000);

afterAll(async () => {
  await runtime?.close();
});

describe('a burst of runs', () => {
  it('starts every run, in enqueue order, before any run goes on to its second step; first steps are journaled during the burst', async () => {
    const N = 500;
    const ids: string[] = [];
    const started: Array<{ id: number; run: string; step: string }> = [];
    const sub = runtime.bus.subscribe('scenario.step.started', (e) => {
      const p = e.payload as { run_id: string; step: string };
      started.push({ id: e.id, run: p.run_id, step: p.step });
    });
    for (let i = 0; i < N; i++) ids.push(runtime.scenarios.run('two_step', { i }, { run_id: `burst-${i}` }));
    // Published right after the last enqueue, before the event loop turns.
    const marker = runtime.bus.publish('test.burst.enqueued', {});
    const done = await Promise.all(ids.map((id) => runtime.scenarios.wait(id, 30_000)));
    await sub.dispose();
    expect(done.every((r) => r.state === 'completed')).toBe(true);
    const firsts = started.filter((s) => s.step === 'a');
    const seconds = started.filter((s) => s.step === 'b');
    expect(firsts.map((s) => s.run)).toEqual(ids);
    expect(seconds).toHaveLength(N);
    expect(Math.max(...firsts.map((s) => s.id))).toBeLessThan(Math.min(...seconds.map((s) => s.id)));
    // The first run's first step did not wait for the burst to end: it was journaled before the marker.
    expect(firsts[0]!.id).toBeLessThan(marker.id);
    // Each run's records are in order: queued, started, then its steps.
    const first = runtime.journal.query({ topic: 'scenario', trace_id: done[0]!.trace_id, limit: 100 }).events.map((e) => e.topic);
    expect(first.slice(0, 3)).toEqual(['scenario.run.queued', 'scenario.run.started', 'scenario.step.started']);
    expect(first.at(-1)).toBe('scenario.run.completed');
  });

  it('queues runs beyond the limits and starts them FIFO as slots free, through the same path', async () => {
    runtime.scenarios.register(scenario('one_at_a_time', [{ name: 'a', action: 'wait', with: { duration: 5 } }], { max_concurrent: 1 }));
    const ids = Array.from({ length: 5 }, (_, i) => runtime.scenarios.run('one_at_a_time', {}, { run_id: `serial-${i}` }));
    expect(runtime.scenarios.stats.queued).toBe(4);
    const done = await Promise.all(ids.map((id) => runtime.scenarios.wait(id, 10_000)));
    const starts = done.map((r) => Date.parse(r.started_at!));
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    expect(done.every((r) => r.state === 'completed')).toBe(true);
  });
});
