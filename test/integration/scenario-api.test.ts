/** Scenario, schedule and trigger routes over real HTTP on 127.0.0.1 (issue 4 §8). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;
beforeAll(async () => {
  host = await startHost({ dataDir: tempDir('tessera-scn-api-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {}, pluginDirs: [] });
}, 60_000);
afterAll(async () => host?.close());

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${host.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('scenario API', () => {
  it('lists the shipped scenarios', async () => {
    const { body } = await api('GET', '/api/scenarios');
    expect((body['scenarios'] as Array<{ id: string }>).map((s) => s.id)).toEqual(expect.arrayContaining(['greet_on_boot', 'set_timer', 'weather_now', 'journey_next_step', 'redeem_entitlement']));
  });

  it('runs a scenario, reports its status with the step journal, and lists runs', async () => {
    const started = await api('POST', '/api/scenario/run', { id: 'set_timer', ctx: { duration: '10ms', label: 'Tea' }, priority: 'HIGH' });
    expect(started.status).toBe(202);
    const runId = started.body['run_id'] as string;
    let status = await api('GET', `/api/scenario/status?run_id=${runId}`);
    // Until it completes (a 10 ms timer: seconds on a loaded machine); the ceiling is not a duration.
    await expect.poll(async () => (status = await api('GET', `/api/scenario/status?run_id=${runId}`)).body['state'], { timeout: 20_000, interval: 20 }).toBe('completed');
    expect(status.body).toMatchObject({ state: 'completed', priority: 'HIGH', ctx: { label: 'Tea' } });
    const steps = status.body['steps'] as Array<{ name: string; state: string; duration_ms: number }>;
    expect(steps.map((s) => s.name)).toEqual(['confirm_timer', 'wait_out', 'ring']);
    expect(steps.every((s) => s.state === 'completed' && typeof s.duration_ms === 'number')).toBe(true);
    const runs = await api('GET', '/api/scenario/runs?scenario_id=set_timer');
    expect((runs.body['runs'] as Array<{ run_id: string }>)[0]!.run_id).toBe(runId);
  });

  it('cancels a run and answers bad requests with stable codes', async () => {
    const { body } = await api('POST', '/api/scenario/run', { id: 'set_timer', ctx: { duration: '1h' } });
    const runId = body['run_id'] as string;
    expect(await api('POST', '/api/scenario/cancel', { run_id: runId })).toMatchObject({ status: 200, body: { cancelled: true } });
    expect(await api('POST', '/api/scenario/run', { id: 'nope' })).toMatchObject({ status: 404, body: { error: { code: 'SCENARIO_NOT_FOUND' } } });
    expect(await api('POST', '/api/scenario/run', { id: 'set_timer', ctx: {} })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('duration') } } });
    expect(await api('POST', '/api/scenario/run', { id: 'set_timer', priority: 'URGENT' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('GET', '/api/scenario/status?run_id=ghost')).toMatchObject({ status: 404, body: { error: { code: 'RUN_NOT_FOUND' } } });
    expect(await api('POST', '/api/scenario/cancel', { run_id: 'ghost' })).toMatchObject({ status: 404, body: { error: { code: 'RUN_NOT_FOUND' } } });
  });

  it('creates, lists and deletes schedules and triggers', async () => {
    const sched = await api('POST', '/api/schedules', { scenario_id: 'greet_on_boot', cron: '0 8 * * mon-fri', tz: 'Europe/Kyiv' });
    expect(sched).toMatchObject({ status: 201, body: { scenario_id: 'greet_on_boot', tz: 'Europe/Kyiv', next_fire_at: expect.any(String) } });
    expect(await api('POST', '/api/schedules', { scenario_id: 'greet_on_boot', cron: 'every morning' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(((await api('GET', '/api/schedules')).body['schedules'] as unknown[]).length).toBe(1);
    expect(await api('DELETE', `/api/schedules/${sched.body['job_id'] as string}`)).toMatchObject({ status: 200, body: { deleted: true } });
    expect(await api('DELETE', `/api/schedules/${sched.body['job_id'] as string}`)).toMatchObject({ status: 404 });

    const trig = await api('POST', '/api/triggers', { pattern: 'nlp.intent.*', filter: '$.payload.city == "Berlin"', scenario_id: 'greet_on_boot' });
    expect(trig).toMatchObject({ status: 201, body: { pattern: 'nlp.intent.*', fired: 0 } });
    expect(((await api('GET', '/api/triggers')).body['triggers'] as unknown[]).length).toBe(1);
    expect(await api('DELETE', `/api/triggers/${trig.body['trigger_id'] as string}`)).toMatchObject({ status: 200 });
    const limited = await api('POST', '/api/triggers', { pattern: 'test.*', scenario_id: 'greet_on_boot', rate: { per_second: 2, burst: 5 } });
    expect(limited).toMatchObject({ status: 201, body: { rate: { per_second: 2, burst: 5 }, throttled: 0 } });
    expect(await api('POST', '/api/triggers', { pattern: 'test.*', scenario_id: 'greet_on_boot', rate: { per_second: 2 } })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/triggers', { pattern: 'scenario.run.failed', scenario_id: 'greet_on_boot' })).toMatchObject({ status: 400, body: { error: { code: 'TRIGGER_PATTERN_REFUSED' } } });
    expect(await api('DELETE', `/api/triggers/${limited.body['trigger_id'] as string}`)).toMatchObject({ status: 200 });
  });

  it('recognizes intents in English and Russian, publishes nlp.intent.*, and can start the routed scenario', async () => {
    const en = await api('POST', '/api/intent/recognize', { text: "What's the weather like in Berlin?" });
    expect(en).toMatchObject({ status: 200, body: { intent: 'weather.now', slots: { city: 'berlin' }, target: { scenario: 'weather_now' }, language: 'en' } });
    expect((en.body['rule'] as { source: string }).source).toMatch(/en\.yaml:\d+/);
    const ru = await api('POST', '/api/intent/recognize', { text: 'Поставь таймер на 5 минут', run: true });
    expect(ru).toMatchObject({ status: 200, body: { intent: 'timer.set', slots: { minutes: 5 }, language: 'ru', run_id: expect.any(String) } });
    const events = host.runtime.journal.query({ topic: 'nlp.intent.**' }).events.map((e) => e.topic);
    expect(events).toEqual(['nlp.intent.weather.now', 'nlp.intent.timer.set']);
    const status = await api('GET', `/api/scenario/status?run_id=${ru.body['run_id'] as string}`);
    expect(status.body).toMatchObject({ scenario_id: 'set_timer', ctx: { minutes: 5 } });
    await api('POST', '/api/scenario/cancel', { run_id: ru.body['run_id'] });
    expect(await api('POST', '/api/intent/recognize', { text: 'the quick brown fox' })).toMatchObject({ status: 200, body: { intent: null } });
    expect(await api('POST', '/api/intent/recognize', { text: '' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
  });
});
