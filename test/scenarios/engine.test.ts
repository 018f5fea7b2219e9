/**
 * The durable scenario engine against a real runtime: real SQLite file, real journal and bus, real sandbox
 * host with real tool plugins (issue 4 §2, §3).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { makePublisher } from '../helpers/plugins.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

let runtime: Runtime;
let publisher: ReturnType<typeof makePublisher>;

beforeAll(async () => {
  publisher = makePublisher();
  runtime = await createRuntime({ dataDir: tempDir('tessera-engine-', 'file'), shell: 'headless', logger: createMemoryLogger(), builtinTrustDir: publisher.trustDir, scenarioLimits: { global: 4, pools: { cpu: 1, io: 4 } } });
  // A tool that fails until it has been called `fail_times` times for a given label (counted in its kv).
  await runtime.plugins.load(publisher.write({
    name: 'flaky',
    kind: 'tool',
    capabilities: [{ name: 'kv' }],
    code: `export async function invoke(args, host) {
      const key = 'calls/' + args.label;
      const n = ((await host.call('kv.get', { key })) ?? 0) + 1;
      await host.call('kv.set', { key, value: n });
      if (n <= (args.fail_times ?? 0)) throw new Error('flaky failure ' + n);
      return { label: args.label, calls: n };
    }`,
  }));
  await runtime.plugins.load(publisher.write({ name: 'slow', kind: 'tool', code: 'export function invoke(args) { return new Promise(() => {}); }', limits: { deadline_ms: 20000 } }));
}, 60_000);

afterAll(async () => {
  await runtime?.close();
});

/** Until the run's step `name` has started (a condition, not a guess at how long that takes on a loaded machine). */
const stepStarted = async (runId: string, name: string) => {
  for (const end = Date.now() + 20_000; runtime.scenarios.status(runId).steps.find((s) => s.name === name)?.state !== 'started'; ) {
    if (Date.now() > end) throw new Error(`step ${name} of ${runId} did not start`);
    await new Promise((r) => setTimeout(r, 5));
  }
};
const events = (runId: string, prefix = 'scenario.step') => runtime.journal.query({ topic: prefix, limit: 1000 }).events.filter((e) => (e.payload as { run_id?: string }).run_id === runId);

describe('scenario runs', () => {
  it('runs steps in order, passes outputs through the bag, and journals each step before and after', async () => {
    runtime.scenarios.register(scenario('hello', [
      { name: 'remember', action: 'memory.set', with: { key: 'user.name', value: '${ctx.name}' }, output: 'name' },
      { name: 'greet', action: 'io.say', with: { text: 'Hello, ${bag.name}!' } },
      { name: 'note', action: 'bus.publish', with: { topic: 'test.greeted', payload: { who: '${ctx.name}' } } },
    ]));
    const runId = runtime.scenarios.run('hello', { name: 'Ada' });
    const done = await runtime.scenarios.wait(runId, 10_000);
    expect(done).toMatchObject({ state: 'completed', bag: { name: 'Ada' } });
    expect(runtime.memory.get('user.name')).toBe('Ada');
    const said = runtime.journal.query({ topic: 'io.say', trace_id: done.trace_id }).events;
    expect(said.map((e) => (e.payload as { text: string }).text)).toEqual(['Hello, Ada!']);
    expect(events(runId).map((e) => `${e.topic.slice(14)}:${(e.payload as { step: string }).step}`)).toEqual([
      'started:remember', 'completed:remember', 'started:greet', 'completed:greet', 'started:note', 'completed:note',
    ]);
    const status = runtime.scenarios.status(runId);
    expect(status.steps.map((s) => [s.name, s.state, s.attempt])).toEqual([['remember', 'completed', 1], ['greet', 'completed', 1], ['note', 'completed', 1]]);
    expect(status.steps.every((s) => typeof s.duration_ms === 'number')).toBe(true);
  });

  it('skips steps whose when is false and runs foreach once per element with its own key', async () => {
    runtime.scenarios.register(scenario('each', [
      { name: 'maybe', action: 'io.say', when: '${ctx.loud}', with: { text: 'LOUD' } },
      { name: 'cities', action: 'bus.publish', foreach: '${ctx.cities}', as: 'city', with: { topic: 'test.city', payload: '${city}' }, output: 'ids' },
    ]));
    const runId = runtime.scenarios.run('each', { loud: false, cities: ['Lviv', 'Berlin'] });
    const done = await runtime.scenarios.wait(runId, 10_000);
    expect(done.state).toBe('completed');
    const steps = runtime.scenarios.status(runId).steps;
    expect(steps.map((s) => [s.step_key, s.state])).toEqual([['maybe', 'skipped'], ['cities#0', 'completed'], ['cities#1', 'completed']]);
    expect(runtime.journal.query({ topic: 'test.city', trace_id: done.trace_id }).events.map((e) => e.payload)).toEqual(['Lviv', 'Berlin']);
  });

  it('retries a failing tool step with exponential backoff, then succeeds', async () => {
    runtime.scenarios.register(scenario('retrying', [
      { name: 'call', tool: 'flaky', with: { label: 'r1', fail_times: 2 }, retries: { max: 3, backoff: 'exponential', initial: 20, max_delay: 1000, jitter: 0 }, output: 'result' },
    ]));
    const runId = runtime.scenarios.run('retrying');
    const done = await runtime.scenarios.wait(runId, 20_000);
    expect(done).toMatchObject({ state: 'completed', bag: { result: { label: 'r1', calls: 3 } } });
    const retrying = events(runId).filter((e) => e.topic === 'scenario.step.retrying').map((e) => (e.payload as { delay_ms: number }).delay_ms);
    expect(retrying).toEqual([20, 40]);
  });

  it('runs the compensations of completed effectful steps in reverse order when a step fails for good (saga)', async () => {
    runtime.scenarios.register(scenario('saga', [
      { name: 'reserve', action: 'bus.publish', with: { topic: 'test.saga.reserve', payload: 1 }, compensate: { target: { kind: 'action', action: 'bus.publish' }, with: { topic: 'test.saga.unreserve', payload: 1 }, retries: { max: 0, backoff: 'fixed', initial: 1, max_delay: 1, jitter: 0 }, effect: true, locks: [] } },
      { name: 'charge', action: 'bus.publish', with: { topic: 'test.saga.charge', payload: 2 }, compensate: { target: { kind: 'action', action: 'bus.publish' }, with: { topic: 'test.saga.refund', payload: 2 }, retries: { max: 0, backoff: 'fixed', initial: 1, max_delay: 1, jitter: 0 }, effect: true, locks: [] } },
      { name: 'ship', tool: 'flaky', with: { label: 'never', fail_times: 99 }, retries: { max: 1, backoff: 'fixed', initial: 10, max_delay: 10, jitter: 0 } },
    ]));
    const runId = runtime.scenarios.run('saga');
    const done = await runtime.scenarios.wait(runId, 20_000);
    expect(done.state).toBe('failed');
    expect(done.error).toMatchObject({ code: 'STEP_FAILED', message: expect.stringContaining('ship failed after 2 attempts') });
    const sagaTopics = runtime.journal.query({ topic: 'test.saga', trace_id: done.trace_id }).events.map((e) => e.topic);
    expect(sagaTopics).toEqual(['test.saga.reserve', 'test.saga.charge', 'test.saga.refund', 'test.saga.unreserve']);
    expect(runtime.scenarios.status(runId).steps.filter((s) => s.state === 'compensated').map((s) => s.name)).toEqual(['reserve', 'charge']);
  });

  it('cancels a running run cooperatively, and a queued one at once', async () => {
    runtime.scenarios.register(scenario('waiting', [{ name: 'nap', action: 'wait', with: { duration: 60_000 } }]));
    const runId = runtime.scenarios.run('waiting');
    await stepStarted(runId, 'nap');
    expect(runtime.scenarios.cancel(runId, 'user pressed stop')).toBe(true);
    const done = await runtime.scenarios.wait(runId, 5000);
    expect(done).toMatchObject({ state: 'cancelled', error: { code: 'RUN_CANCELLED', message: 'user pressed stop' } });
    expect(runtime.scenarios.cancel(runId)).toBe(false);
    expect(() => runtime.scenarios.cancel('no-such-run')).toThrow(expect.objectContaining({ code: 'RUN_NOT_FOUND' }));
  });

  it('fails a step that passes its timeout, and a run that passes its own', async () => {
    runtime.scenarios.register(scenario('slow-step', [{ name: 'hang', tool: 'slow', timeout: 100 }]));
    const a = await runtime.scenarios.wait(runtime.scenarios.run('slow-step'), 10_000);
    expect(a).toMatchObject({ state: 'failed', error: { code: 'STEP_FAILED', message: expect.stringContaining('STEP_TIMEOUT') } });
    runtime.scenarios.register(scenario('slow-run', [{ name: 'nap', action: 'wait', with: { duration: 10_000 } }], { timeout: 100 }));
    const b = await runtime.scenarios.wait(runtime.scenarios.run('slow-run'), 10_000);
    expect(b).toMatchObject({ state: 'failed', error: { code: 'STEP_TIMEOUT' } });
  });

  it('keeps a 600 h wait waiting, and does not cut a short step or run with a 600 h timeout (longer than one setTimeout holds)', async () => {
    runtime.scenarios.register(scenario('long-wait', [
      { name: 'wait_out', action: 'wait', with: { duration: '600h' } },
      { name: 'ring', action: 'bus.publish', with: { topic: 'test.rang' } },
    ]));
    const runId = runtime.scenarios.run('long-wait');
    await expect.poll(() => runtime.scenarios.status(runId).steps.find((s) => s.name === 'wait_out')?.state, { timeout: 10_000 }).toBe('started');
    // An overflowed setTimeout runs after 1 ms; timers fire in order of expiry, so by the time this 100 ms one
    // fires, a wait that overflowed would have ended and the ring step run.
    await new Promise((r) => setTimeout(r, 100));
    expect(runtime.scenarios.status(runId)).toMatchObject({ state: 'running', steps: [expect.objectContaining({ name: 'wait_out', state: 'started' })] });
    runtime.scenarios.cancel(runId);
    expect(await runtime.scenarios.wait(runId, 10_000)).toMatchObject({ state: 'cancelled' });

    runtime.scenarios.register(scenario('long-timeouts', [{ name: 'nap', action: 'wait', with: { duration: 50 }, timeout: 600 * 3_600_000 }], { timeout: 600 * 3_600_000 }));
    expect(await runtime.scenarios.wait(runtime.scenarios.run('long-timeouts'), 10_000)).toMatchObject({ state: 'completed' });
  });

  it('waits for an event that matches a filter', async () => {
    runtime.scenarios.register(scenario('await-event', [
      { name: 'arrive', action: 'wait', with: { event: 'test.arrival', filter: '$.payload.city == "Berlin"', timeout: 5000 }, output: 'arrival' },
    ]));
    const runId = runtime.scenarios.run('await-event');
    // The wait sees events journaled from its step's start on: publish once it has started.
    await stepStarted(runId, 'arrive');
    runtime.bus.publish('test.arrival', { city: 'Paris' });
    runtime.bus.publish('test.arrival', { city: 'Berlin' });
    const done = await runtime.scenarios.wait(runId, 5000);
    expect(done).toMatchObject({ state: 'completed', bag: { arrival: { payload: { city: 'Berlin' } } } });
  });

  it('asks a question and takes only the answer addressed to this run and step', async () => {
    runtime.scenarios.register(scenario('asking', [{ name: 'ask_name', action: 'io.ask', with: { prompt: 'Your name?', timeout: 5000 }, output: 'name' }]));
    const runId = runtime.scenarios.run('asking');
    let asked: { id: number } | undefined;
    for (const end = Date.now() + 20_000; !asked && Date.now() < end; ) {
      asked = runtime.journal.query({ topic: 'io.ask', order: 'desc', limit: 5 }).events.find((e) => (e.payload as { run_id: string }).run_id === runId);
      if (!asked) await new Promise((r) => setTimeout(r, 10));
    }
    expect(asked).toBeDefined();
    runtime.bus.publish('io.answer', { run_id: 'someone-else', step: 'ask_name', text: 'Mallory' });
    runtime.bus.publish('io.answer', { run_id: runId, step: 'other_step', text: 'Eve' });
    runtime.bus.publish('io.answer', { run_id: runId, step: 'ask_name', text: 'Ada' });
    const done = await runtime.scenarios.wait(runId, 5000);
    expect(done).toMatchObject({ state: 'completed', bag: { name: 'Ada' } });
  });

  it('runs a sub-scenario and returns its bag, without deadlocking a full engine', async () => {
    runtime.scenarios.register(scenario('child', [{ name: 'mark', action: 'bus.publish', with: { topic: 'test.child', payload: '${ctx.n}' }, output: 'id' }]));
    runtime.scenarios.register(scenario('parent', [{ name: 'sub', scenario: 'child', with: { n: '${ctx.n}' }, output: 'child' }]));
    const ids = Array.from({ length: 8 }, (_, n) => runtime.scenarios.run('parent', { n }));
    const done = await Promise.all(ids.map((id) => runtime.scenarios.wait(id, 20_000)));
    expect(done.map((d) => d.state)).toEqual(Array(8).fill('completed'));
    expect(done[3]!.bag['child']).toMatchObject({ id: expect.any(Number) });
  });

  it('simulates effectful steps in a dry run', async () => {
    runtime.scenarios.register(scenario('dry', [{ name: 'announce', action: 'io.say', with: { text: 'would speak ${ctx.x}' } }]));
    const runId = runtime.scenarios.run('dry', { x: 1 }, { dry_run: true });
    const done = await runtime.scenarios.wait(runId, 5000);
    expect(done.state).toBe('completed');
    const [step] = runtime.scenarios.status(runId).steps;
    expect(step).toMatchObject({ simulated: true, output: { simulated: true, with: { text: 'would speak 1' } } });
    expect(runtime.journal.query({ topic: 'io.say', trace_id: done.trace_id }).events).toEqual([]);
  });

  it('refuses unknown scenarios and a full queue unless forced', () => {
    expect(() => runtime.scenarios.run('nope')).toThrow(expect.objectContaining({ code: 'SCENARIO_NOT_FOUND' }));
  });
});

describe('scheduling', () => {
  it('starts HIGH before NORM before LOW, FIFO within a priority, and respects per-scenario limits', async () => {
    const order: string[] = [];
    runtime.scenarios.register(scenario('gate', [{ name: 'hold', action: 'wait', with: { event: 'test.gate.open', timeout: 10_000 } }], { max_concurrent: 1, pool: 'cpu' }));
    runtime.scenarios.register(scenario('job', [{ name: 'mark', action: 'bus.publish', with: { topic: 'test.job', payload: '${ctx.label}' } }], { pool: 'cpu' }));
    const sub = runtime.bus.subscribe('test.job', (e) => void order.push(String(e.payload)));
    const gate = runtime.scenarios.run('gate');
    await stepStarted(gate, 'hold');
    // The cpu pool has one slot, held by the gate: these queue up.
    const ids = [
      runtime.scenarios.run('job', { label: 'low-1' }, { priority: 'LOW' }),
      runtime.scenarios.run('job', { label: 'norm-1' }),
      runtime.scenarios.run('job', { label: 'high-1' }, { priority: 'HIGH' }),
      runtime.scenarios.run('job', { label: 'norm-2' }),
      runtime.scenarios.run('job', { label: 'high-2' }, { priority: 'HIGH' }),
    ];
    expect(runtime.scenarios.stats.queued).toBeGreaterThanOrEqual(5);
    runtime.bus.publish('test.gate.open', {});
    await runtime.scenarios.wait(gate, 5000);
    await Promise.all(ids.map((id) => runtime.scenarios.wait(id, 5000)));
    await sub.dispose();
    expect(order).toEqual(['high-1', 'high-2', 'norm-1', 'norm-2', 'low-1']);
  });
});

describe('developer experience', () => {
  it('pauses at a breakpoint, steps over, continues, and keeps a redacted bag snapshot per step', async () => {
    runtime.scenarios.register(scenario('debuggable', [
      { name: 'a', action: 'memory.set', with: { key: 'dbg.a', value: 1 }, output: 'a' },
      { name: 'b', action: 'memory.set', with: { key: 'dbg.b', value: 2 }, output: 'b' },
      { name: 'c', action: 'memory.set', with: { key: 'dbg.c', value: 3 }, output: 'c' },
    ]));
    const runId = runtime.scenarios.run('debuggable', {}, { breakpoints: ['b'] });
    const waitPaused = async (at: string) => {
      for (const end = Date.now() + 20_000; runtime.scenarios.status(runId).paused_at !== at && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
      expect(runtime.scenarios.status(runId).paused_at).toBe(at);
    };
    await waitPaused('b');
    expect(runtime.scenarios.status(runId).steps.map((s) => s.name)).toEqual(['a']);
    expect(runtime.scenarios.debug(runId, 'step')).toMatchObject({ breakpoints: ['b'] });
    await waitPaused('c');
    expect(runtime.scenarios.status(runId).steps.map((s) => s.name)).toEqual(['a', 'b']);
    runtime.scenarios.debug(runId, 'continue');
    const done = await runtime.scenarios.wait(runId, 5000);
    expect(done.state).toBe('completed');
    expect(runtime.scenarios.status(runId).steps.map((s) => s.bag_after)).toEqual([{ a: 1 }, { a: 1, b: 2 }, { a: 1, b: 2, c: 3 }]);
    expect(runtime.journal.query({ topic: 'scenario.run.paused', trace_id: done.trace_id }).events.map((e) => (e.payload as { before: string }).before)).toEqual(['b', 'c']);
  });

  it('replays a run with recorded effect outputs and shows where the replay differs', async () => {
    runtime.scenarios.register(scenario('replayable', [
      { name: 'remember', action: 'memory.set', with: { key: 'replay.x', value: '${ctx.x}' }, output: 'x' },
      { name: 'announce', action: 'bus.publish', with: { topic: 'test.replayed', payload: '${bag.x}' } },
    ]));
    const original = await runtime.scenarios.wait(runtime.scenarios.run('replayable', { x: 7 }), 5000);
    const before = runtime.journal.query({ topic: 'test.replayed' }).events.length;
    const replayId = runtime.scenarios.replay(original.run_id);
    const replay = await runtime.scenarios.wait(replayId, 5000);
    expect(replay).toMatchObject({ state: 'completed', replay_of: original.run_id });
    // effects were not repeated: the recorded outputs stood in for them
    expect(runtime.journal.query({ topic: 'test.replayed' }).events.length).toBe(before);
    expect(runtime.scenarios.status(replayId).steps.every((s) => s.simulated)).toBe(true);
    expect(runtime.scenarios.diff(replayId)).toEqual([]);
    // Change the scenario: the replay now evaluates a different input for `announce`.
    runtime.scenarios.register(scenario('replayable', [
      { name: 'remember', action: 'memory.set', with: { key: 'replay.x', value: '${ctx.x}' }, output: 'x' },
      { name: 'announce', action: 'bus.publish', with: { topic: 'test.replayed', payload: '${bag.x + 1}' } },
    ]));
    const second = runtime.scenarios.replay(original.run_id);
    await runtime.scenarios.wait(second, 5000);
    expect(runtime.scenarios.diff(second)).toEqual([{ step_key: 'announce', field: 'input', original: { topic: 'test.replayed', payload: 7 }, replayed: { topic: 'test.replayed', payload: 8 } }]);
    expect(() => runtime.scenarios.diff(original.run_id)).toThrow(/not a replay/);
  });
});

describe('secrets and quotas', () => {
  it('hands secrets to the tool that needs them and never to the journal, the step record or the bag', async () => {
    runtime.secrets.set('weather.api_key', 'sk-very-secret-123');
    await runtime.plugins.load(publisher.write({
      name: 'secret-check',
      kind: 'tool',
      code: 'export function invoke(args) { return { authorized: args.header === "Bearer sk-very-secret-123", length: args.header.length }; }',
    }));
    runtime.scenarios.register(scenario('uses-secret', [
      { name: 'call', tool: 'secret-check', with: { header: 'Bearer ${secrets["weather.api_key"]}' }, output: 'result' },
    ]));
    const done = await runtime.scenarios.wait(runtime.scenarios.run('uses-secret'), 10_000);
    // the tool received the real value…
    expect(done).toMatchObject({ state: 'completed', bag: { result: { authorized: true, length: 25 } } });
    // …while the step's recorded input and every journaled event show it redacted
    const [step] = runtime.scenarios.status(done.run_id).steps;
    expect(step!.input).toEqual({ header: 'Bearer ***' });
    const everything = runtime.journal.query({ trace_id: done.trace_id, limit: 1000 }).events;
    expect(everything.length).toBeGreaterThan(3);
    expect(JSON.stringify(everything)).not.toContain('sk-very-secret');
    expect(JSON.stringify(runtime.journal.query({ topic: 'secrets', limit: 1000 }).events)).not.toContain('sk-very-secret');
  });

  it('keeps a secret that a step echoes out of its recorded output, the bag snapshots and the journal, while later steps still get it', async () => {
    runtime.secrets.set('weather.api_key', 'sk-very-secret-123');
    // A built-in that returns what it was given: memory.set hands back its value.
    runtime.scenarios.register(scenario('echoes-secret', [
      { name: 'keep', action: 'memory.set', with: { key: 'echo.key', value: '${secrets["weather.api_key"]}' }, output: 'echoed' },
      { name: 'reuse', tool: 'secret-check', with: { header: 'Bearer ${bag.echoed}' }, output: 'again' },
    ]));
    const done = await runtime.scenarios.wait(runtime.scenarios.run('echoes-secret'), 10_000);
    expect(done).toMatchObject({ state: 'completed', bag: { echoed: '***', again: { authorized: true } } });
    const steps = runtime.scenarios.status(done.run_id).steps;
    expect(steps.map((st) => [st.name, st.output === '***' ? '***' : 'other', st.bag_after?.['echoed']])).toEqual([['keep', '***', '***'], ['reuse', 'other', '***']]);
    const events = runtime.journal.query({ trace_id: done.trace_id, topic: 'scenario', limit: 1000 }).events;
    expect(JSON.stringify(events)).not.toContain('sk-very-secret');
    // The memory it stored keeps the value (a later run may need it); its change event shows neither value.
    expect(runtime.memory.get('echo.key')).toBe('sk-very-secret-123');
    const changed = runtime.journal.query({ topic: 'memory.changed', trace_id: done.trace_id, limit: 10 }).events;
    expect(changed.map((e) => e.payload)).toEqual([{ key: 'echo.key', old: '***', new: '***', redacted: true, by: expect.stringContaining('/keep') }]);
    expect(JSON.stringify(runtime.journal.query({ trace_id: done.trace_id, limit: 1000 }).events)).not.toContain('sk-very-secret');
  });

  it('meters tool calls and spoken characters per step, and refuses past a daily quota without retrying', async () => {
    runtime.costs.setQuota({ kind: 'tts_chars', per: 'user', daily: 10 });
    runtime.scenarios.register(scenario('talky', [{ name: 'say', action: 'io.say', with: { text: '${ctx.text}' }, retries: { max: 3, initial: 5 } }]));
    const ok = await runtime.scenarios.wait(runtime.scenarios.run('talky', { user: 'ada', text: 'hello' }), 5000);
    expect(ok.state).toBe('completed');
    expect(runtime.costs.totals({ user: 'ada' })).toMatchObject({ tts_chars: 5 });
    const refused = await runtime.scenarios.wait(runtime.scenarios.run('talky', { user: 'ada', text: 'a longer sentence' }), 5000);
    expect(refused).toMatchObject({ state: 'failed', error: { code: 'STEP_FAILED', message: expect.stringContaining('QUOTA_EXCEEDED') } });
    expect(runtime.scenarios.status(refused.run_id).steps[0]).toMatchObject({ attempt: 1, state: 'failed' });
    // another user is not affected
    const other = await runtime.scenarios.wait(runtime.scenarios.run('talky', { user: 'bob', text: 'hi' }), 5000);
    expect(other.state).toBe('completed');
    expect(runtime.costs.totals({}).tool_calls ?? 0).toBeGreaterThan(0);
  });
});
