/** Schedules and triggers (seed 001 §4, §5): persisted, surviving restarts, exactly one run per fire/event. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { MAX_TRIGGER_CHAIN, triggerLineage, triggerTrace } from '../../main/runtime/scenarios/automation.js';
import { parseAt, parseCron } from '../../main/runtime/scenarios/cron.js';
import { openStore } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const SCENARIO = `id: note
version: 1
steps:
  - name: mark
    action: bus.publish
    with:
      topic: test.noted
      payload: "\${ctx}"
`;

/** A scenario that waits a moment (so a loop of runs is not one synchronous burst), then publishes `topic`. */
const publisher = (id: string, topic: string) => `id: ${id}
version: 1
steps:
  - name: pause
    action: wait
    with:
      duration: 5
  - name: tell
    action: bus.publish
    with:
      topic: ${topic}
      payload: { from: ${id} }
`;

function setup(extra: Record<string, string> = {}) {
  const dataDir = tempDir('tessera-auto-');
  const scenarioDir = join(dataDir, 'scenarios');
  mkdirSync(scenarioDir);
  writeFileSync(join(scenarioDir, 'note.yaml'), SCENARIO);
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(scenarioDir, `${name}.yaml`), text);
  return { dataDir, open: (clock?: () => number) => createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger(), scenarioDirs: [scenarioDir], scenarioTrust: 'developer', ...(clock ? { clock } : {}) }) };
}

/** Until no run is queued or running; 20 s is a ceiling for a loaded machine, not a duration. */
const settle = async (rt: Runtime) => {
  for (const end = Date.now() + 20_000; (rt.scenarios.stats.queued > 0 || rt.scenarios.stats.running > 0) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
};

describe('cron', () => {
  it('computes next fire times with steps, ranges, lists, names and time zones', () => {
    const t = Date.parse('2026-03-02T10:07:30Z'); // a Monday
    expect(new Date(parseCron('*/15 * * * *').next(t)!).toISOString()).toBe('2026-03-02T10:15:00.000Z');
    expect(new Date(parseCron('0 8 * * *').next(t)!).toISOString()).toBe('2026-03-03T08:00:00.000Z');
    expect(new Date(parseCron('0 8 * * *').next(t, '+02:00')!).toISOString()).toBe('2026-03-03T06:00:00.000Z');
    expect(new Date(parseCron('30 9 * * mon-fri').next(Date.parse('2026-03-06T10:00:00Z'))!).toISOString()).toBe('2026-03-09T09:30:00.000Z');
    expect(new Date(parseCron('0 0 1 jan,jul *').next(t)!).toISOString()).toBe('2026-07-01T00:00:00.000Z');
    // Kyiv is UTC+2 in winter, UTC+3 after the last Sunday of March
    expect(new Date(parseCron('0 7 * * *').next(Date.parse('2026-03-27T12:00:00Z'), 'Europe/Kyiv')!).toISOString()).toBe('2026-03-28T05:00:00.000Z');
    expect(new Date(parseCron('0 7 * * *').next(Date.parse('2026-03-29T12:00:00Z'), 'Europe/Kyiv')!).toISOString()).toBe('2026-03-30T04:00:00.000Z');
  });

  it('rejects malformed expressions and times with clear messages', () => {
    for (const bad of ['* * * *', '61 * * * *', '*/0 * * * *', '5-1 * * * *', '* * * foo *']) expect(() => parseCron(bad)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => parseAt('2026-09-21T07:00:00')).toThrow(/timezone offset/);
    expect(parseAt('2025-09-21T07:00:00+02:00')).toBe(Date.parse('2025-09-21T05:00:00Z'));
  });
});

describe('schedules', () => {
  it('fires a one-shot `at` schedule once and lists schedules with their next fire time', async () => {
    const { open } = setup();
    const rt = await open();
    try {
      const at = new Date(Date.now() + 300).toISOString().replace('Z', '+00:00');
      const job = rt.automation.createSchedule({ scenario_id: 'note', at, ctx: { kind: 'once' } });
      expect(job.next_fire_at).toBe(new Date(Date.parse(at)).toISOString());
      const cron = rt.automation.createSchedule({ scenario_id: 'note', cron: '0 8 * * *', tz: 'Europe/Kyiv' });
      expect(rt.automation.schedules().map((s) => s.job_id)).toEqual([job.job_id, cron.job_id]);
      for (const end = Date.now() + 20_000; rt.journal.query({ topic: 'test.noted' }).events.length === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      await settle(rt);
      const noted = rt.journal.query({ topic: 'test.noted' }).events;
      expect(noted).toHaveLength(1);
      expect(noted[0]!.payload).toMatchObject({ kind: 'once', schedule: { job_id: job.job_id, reason: 'due' } });
      expect(rt.automation.schedules().find((s) => s.job_id === job.job_id)).toMatchObject({ enabled: false, next_fire_at: null });
      expect(rt.automation.deleteSchedule(cron.job_id)).toBe(true);
      expect(() => rt.automation.createSchedule({ scenario_id: 'note', cron: '0 8 * * *', tz: 'Mars/Olympus' })).toThrow(/not a time zone/);
      expect(() => rt.automation.createSchedule({ scenario_id: 'ghost', cron: '* * * * *' })).toThrow(expect.objectContaining({ code: 'SCENARIO_NOT_FOUND' }));
    } finally {
      await rt.close();
    }
  });

  it('applies the missed-fire policy after the device was off: run once, or skip', async () => {
    const { open } = setup();
    const t0 = Date.now();
    let rt = await open(() => t0);
    const once = rt.automation.createSchedule({ scenario_id: 'note', cron: '*/5 * * * *', ctx: { policy: 'run_once' } });
    const skip = rt.automation.createSchedule({ scenario_id: 'note', cron: '*/5 * * * *', ctx: { policy: 'skip' }, missed: 'skip' });
    await rt.close();
    // Two hours later: 24 fires were missed by each schedule.
    rt = await open(() => t0 + 2 * 3600_000);
    try {
      await settle(rt);
      const noted = rt.journal.query({ topic: 'test.noted' }).events.map((e) => e.payload as { policy: string; schedule: { reason: string } });
      expect(noted).toEqual([expect.objectContaining({ policy: 'run_once', schedule: expect.objectContaining({ reason: 'missed' }) })]);
      expect(rt.journal.query({ topic: 'schedule.missed' }).events.map((e) => (e.payload as { job_id: string }).job_id)).toEqual([skip.job_id]);
      for (const s of rt.automation.schedules()) expect(Date.parse(s.next_fire_at!)).toBeGreaterThan(t0 + 2 * 3600_000);
      expect(rt.automation.schedules().map((s) => s.job_id)).toEqual([once.job_id, skip.job_id]);
    } finally {
      await rt.close();
    }
  });
});

describe('triggers', () => {
  it('starts a run for each matching event, once, and never for a non-matching one', async () => {
    const { open } = setup();
    const rt = await open();
    try {
      const trigger = rt.automation.createTrigger({ pattern: 'test.order.*', filter: '$.payload.city == "Berlin"', scenario_id: 'note', ctx: { via: 'trigger' } });
      rt.bus.publish('test.order.created', { city: 'Berlin', n: 1 });
      rt.bus.publish('test.order.created', { city: 'Paris', n: 2 });
      rt.bus.publish('test.other', { city: 'Berlin', n: 3 });
      await settle(rt);
      const noted = rt.journal.query({ topic: 'test.noted' }).events.map((e) => e.payload as { via: string; event: { payload: { n: number } } });
      expect(noted.map((p) => [p.via, p.event.payload.n])).toEqual([['trigger', 1]]);
      expect(rt.automation.triggers()).toEqual([expect.objectContaining({ trigger_id: trigger.trigger_id, fired: 1 })]);
      expect(() => rt.automation.createTrigger({ pattern: 'a..b', scenario_id: 'note' })).toThrow(expect.objectContaining({ code: 'TOPIC_INVALID' }));
      expect(() => rt.automation.createTrigger({ pattern: 'a.*', filter: '$.payload.city ==', scenario_id: 'note' })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    } finally {
      await rt.close();
    }
  });

  it('persists across restarts and catches up on events journaled while it was not running', async () => {
    const { dataDir, open } = setup();
    let rt = await open();
    rt.automation.createTrigger({ pattern: 'test.order.*', scenario_id: 'note' });
    await rt.close();
    // An event journaled while the runtime was down (as if it crashed right after journaling).
    const store = openStore({ path: join(dataDir, 'tessera.db') });
    createJournal({ store }).append({ topic: 'test.order.created', payload: { n: 42 } });
    store.close();
    rt = await open();
    try {
      await settle(rt);
      expect(rt.automation.triggers()).toHaveLength(1);
      const noted = rt.journal.query({ topic: 'test.noted' }).events.map((e) => (e.payload as { event: { payload: { n: number } } }).event.payload.n);
      expect(noted).toEqual([42]);
    } finally {
      await rt.close();
    }
    // And a second restart does not start it again.
    rt = await open();
    try {
      await settle(rt);
      expect(rt.journal.query({ topic: 'test.noted' }).events).toHaveLength(1);
    } finally {
      await rt.close();
    }
  });
});

describe('trigger loops and rates', () => {
  const idle = (rt: Runtime) => rt.scenarios.stats.queued === 0 && rt.scenarios.stats.running === 0;
  const journaled = (rt: Runtime, topic: string) => rt.journal.query({ topic, limit: 1000 }).events;

  it('a trigger on ** starts one run for an outside event and none for what its own runs cause, then stops', async () => {
    const { open } = setup({ echo: publisher('echo', 'test.echoed') });
    const rt = await open();
    try {
      const trigger = rt.automation.createTrigger({ pattern: '**', scenario_id: 'echo' });
      const outside = rt.bus.publish('test.poke', { n: 1 });
      // The run's own test.echoed would start it again: blocked, and said so once for its trace.
      await expect.poll(() => journaled(rt, 'trigger.loop_blocked').length, { timeout: 15_000 }).toBeGreaterThan(0);
      await expect.poll(() => idle(rt), { timeout: 15_000 }).toBe(true);
      const runs = rt.scenarios.runs({ scenario_id: 'echo', limit: 1000 });
      // Every run was started by an event from outside any trigger's runs (test.poke, or the runtime's own
      // io.voice.status at start), never by an echo of a run.
      expect(runs.map((r) => (r.ctx as { event: { topic: string } }).event.topic)).not.toContain('test.echoed');
      expect(runs.length).toBeLessThanOrEqual(3);
      const poked = runs.find((r) => (r.ctx as { event: { id: number } }).event.id === outside.id)!;
      expect(poked.trace_id).toBe(`${outside.trace_id}:${trigger.trigger_id}`);
      const echoes = journaled(rt, 'test.echoed');
      expect(echoes).toHaveLength(runs.length);
      const blocked = journaled(rt, 'trigger.loop_blocked').map((e) => e.payload as { trigger_id: string; reason: string; topic: string });
      expect(blocked.every((b) => b.trigger_id === trigger.trigger_id && b.reason === 'loop' && b.topic === 'test.echoed')).toBe(true);
      // Nothing more happens: a new outside event is needed for a new run. (The runtime's own start-up events, such
      // as io.voice.status, may still arrive late on a loaded machine and start runs of their own: they are outside
      // events too, so the test counts what started each run rather than a fixed number.)
      const all = () => rt.scenarios.runs({ scenario_id: 'echo', limit: 1000 });
      const startedBy = (r: { ctx: unknown }) => (r.ctx as { event: { id: number; topic: string } }).event;
      const second = rt.bus.publish('test.poke', { n: 2 });
      await expect
        .poll(() => idle(rt) && all().some((r) => startedBy(r).id === second.id) && journaled(rt, 'test.echoed').length === all().length, { timeout: 15_000 })
        .toBe(true);
      expect(all().filter((r) => startedBy(r).id === second.id)).toHaveLength(1);
      expect(all().map((r) => startedBy(r).topic)).not.toContain('test.echoed');
      expect(all().filter((r) => startedBy(r).topic === 'test.poke')).toHaveLength(2);
    } finally {
      await rt.close();
    }
  });

  it('a chain A → B → A through two triggers stops at the second A', async () => {
    const { open } = setup({ pong: publisher('pong', 'test.pong'), ping: publisher('ping', 'test.ping') });
    const rt = await open();
    try {
      const a = rt.automation.createTrigger({ pattern: 'test.ping', scenario_id: 'pong' });
      const b = rt.automation.createTrigger({ pattern: 'test.pong', scenario_id: 'ping' });
      const first = rt.bus.publish('test.ping', { from: 'outside' });
      await expect.poll(() => journaled(rt, 'trigger.loop_blocked').length, { timeout: 15_000 }).toBe(1);
      await expect.poll(() => idle(rt), { timeout: 15_000 }).toBe(true);
      expect(rt.scenarios.runs({ limit: 1000 }).map((r) => [r.scenario_id, r.trace_id])).toEqual([
        ['ping', `${first.trace_id}:${a.trigger_id}:${b.trigger_id}`],
        ['pong', `${first.trace_id}:${a.trigger_id}`],
      ]);
      expect(journaled(rt, 'test.ping')).toHaveLength(2);
      expect(journaled(rt, 'test.pong')).toHaveLength(1);
      expect(journaled(rt, 'trigger.loop_blocked')[0]!.payload).toMatchObject({ trigger_id: a.trigger_id, reason: 'loop', chain: [a.trigger_id, b.trigger_id] });
      expect(rt.automation.triggers().map((t) => [t.trigger_id, t.fired])).toEqual([[a.trigger_id, 1], [b.trigger_id, 1]]);
    } finally {
      await rt.close();
    }
  });

  it('holds a trigger to its rate: over it, events start nothing, are counted, and each burst is journaled once', async () => {
    const { open } = setup();
    let now = Date.now();
    const rt = await open(() => now);
    try {
      const trigger = rt.automation.createTrigger({ pattern: 'test.tick', scenario_id: 'note', rate: { per_second: 1, burst: 3 } });
      expect(trigger.rate).toEqual({ per_second: 1, burst: 3 });
      for (let i = 0; i < 10; i++) rt.bus.publish('test.tick', { i });
      await settle(rt);
      expect(rt.scenarios.runs({ scenario_id: 'note', limit: 1000 })).toHaveLength(3);
      expect(journaled(rt, 'trigger.throttled').map((e) => e.payload)).toEqual([expect.objectContaining({ trigger_id: trigger.trigger_id, per_second: 1, burst: 3 })]);
      // Two seconds refill two starts; the third event is the first of a new burst, journaled again.
      now += 2000;
      for (let i = 10; i < 13; i++) rt.bus.publish('test.tick', { i });
      await settle(rt);
      const started = rt.scenarios.runs({ scenario_id: 'note', limit: 1000 }).map((r) => (r.ctx as { event: { payload: { i: number } } }).event.payload.i);
      expect(started.sort((x, y) => x - y)).toEqual([0, 1, 2, 10, 11]);
      expect(journaled(rt, 'trigger.throttled')).toHaveLength(2);
      expect(rt.automation.triggers()[0]).toMatchObject({ fired: 5, throttled: 8 });
      // A trigger without its own rate has the runtime's default.
      expect(rt.automation.createTrigger({ pattern: 'test.other', scenario_id: 'note' }).rate).toEqual({ per_second: 10, burst: 30 });
      expect(() => rt.automation.createTrigger({ pattern: 'test.x', scenario_id: 'note', rate: { per_second: 0, burst: 3 } })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
      expect(() => rt.automation.createTrigger({ pattern: 'test.x', scenario_id: 'note', rate: { per_second: 1, burst: 0.5 } })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    } finally {
      await rt.close();
    }
  });

  it('refuses a pattern that can only match the runtime’s own scenario.* or trigger.* events', async () => {
    const { open } = setup();
    const rt = await open();
    try {
      for (const pattern of ['scenario.run.failed', 'scenario.**', 'trigger.*', 'trigger']) {
        expect(() => rt.automation.createTrigger({ pattern, scenario_id: 'note' }), pattern).toThrow(expect.objectContaining({ code: 'TRIGGER_PATTERN_REFUSED', message: expect.stringContaining('never start a trigger') }));
      }
      for (const pattern of ['**', '*.run.failed', 'schedule.failed']) expect(rt.automation.createTrigger({ pattern, scenario_id: 'note' }).pattern).toBe(pattern);
      expect(rt.automation.triggers()).toHaveLength(3);
    } finally {
      await rt.close();
    }
  });

  it('names the triggers of a chain in the trace id, within the trace id length, up to the longest chain', () => {
    const root = '0123456789abcdef0123456789abcdef';
    expect(triggerTrace(root, 'trg_0000000a')).toBe(`${root}:trg_0000000a`);
    expect(triggerLineage(`${root}:trg_0000000a:trg_0000000b`)).toEqual(['trg_0000000a', 'trg_0000000b']);
    expect(triggerLineage('client:trace')).toEqual([]);
    // A long trace of a client keeps its chain; its root is replaced by a stable hash to stay within 128.
    const long = 'x'.repeat(128);
    const traced = triggerTrace(long, 'trg_0000000a')!;
    expect(traced.length).toBeLessThanOrEqual(128);
    expect(traced).toMatch(/^[0-9a-f]{32}:trg_0000000a$/);
    expect(triggerTrace(long, 'trg_0000000a')).toBe(traced);
    let trace: string | null = long;
    const ids = Array.from({ length: MAX_TRIGGER_CHAIN }, (_, i) => `trg_${i.toString(16).padStart(8, '0')}`);
    for (const id of ids) {
      trace = triggerTrace(trace!, id);
      expect(trace!.length).toBeLessThanOrEqual(128);
    }
    expect(triggerLineage(trace!)).toEqual(ids);
    expect(triggerTrace(trace!, 'trg_ffffffff')).toBeNull();
  });
});
