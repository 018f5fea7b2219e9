/** Schedules and triggers (seed 001 §4, §5): persisted, surviving restarts, exactly one run per fire/event. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
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

function setup() {
  const dataDir = tempDir('tessera-auto-');
  const scenarioDir = join(dataDir, 'scenarios');
  mkdirSync(scenarioDir);
  writeFileSync(join(scenarioDir, 'note.yaml'), SCENARIO);
  return { dataDir, open: (clock?: () => number) => createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger(), scenarioDirs: [scenarioDir], ...(clock ? { clock } : {}) }) };
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
