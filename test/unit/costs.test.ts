import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createBus } from '../../main/runtime/bus/index.js';
import { QUOTA_EXCEEDED_TOPIC, createCostMeter } from '../../main/runtime/costs/index.js';
import type { Quota } from '../../main/runtime/costs/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function setup(options: { dir?: string; quotas?: Quota[]; node?: string } = {}) {
  const dir = options.dir ?? tempDir();
  const store = openStore({ path: join(dir, 'tessera.db') });
  stores.push(store);
  const journal = createJournal({ store });
  const bus = createBus({ journal, logger: createMemoryLogger() });
  const time = { now: Date.parse('2026-03-01T21:30:00.000Z') };
  const meter = createCostMeter({ store, bus, clock: () => time.now, ...(options.quotas ? { quotas: options.quotas } : {}), ...(options.node ? { node: options.node } : {}) });
  return { dir, journal, meter, time };
}

function caught(f: () => unknown): { code?: string; message: string; details?: unknown } {
  try {
    f();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a throw');
}

describe('costs', () => {
  it('adds up costs per kind, user, run and step for the UTC day of the clock', () => {
    const { meter } = setup();
    meter.record('http_calls', 1, { user: 'ada', run_id: 'r1', step: 'fetch' });
    meter.record('http_calls', 1, { user: 'ada', run_id: 'r1', step: 'fetch' });
    meter.record('tts_seconds', 2.5, { user: 'ada', run_id: 'r1', step: 'say' });
    meter.record('http_calls', 1, { user: 'bob', run_id: 'r2', step: 'fetch' });
    meter.record('http_calls', 0);
    expect(meter.totals()).toEqual({ http_calls: 3, tts_seconds: 2.5 });
    expect(meter.totals({ user: 'ada' })).toEqual({ http_calls: 2, tts_seconds: 2.5 });
    expect(meter.totals({ run_id: 'r1', step: 'say' })).toEqual({ tts_seconds: 2.5 });
    expect(meter.totals({ node: 'elsewhere' })).toEqual({});
  });

  it('starts a new day at 00:00 UTC and keeps the previous day queryable, also after reopening', () => {
    const { dir, meter, time } = setup({ quotas: [{ kind: 'http_calls', per: 'node', daily: 2 }] });
    meter.record('http_calls', 2);
    expect(() => meter.check('http_calls')).toThrow();
    time.now = Date.parse('2026-03-02T00:00:00.000Z');
    expect(meter.totals()).toEqual({});
    expect(() => meter.check('http_calls')).not.toThrow();
    meter.record('http_calls', 1);
    stores.splice(0).forEach((s) => s.close());
    const again = setup({ dir });
    again.time.now = Date.parse('2026-03-02T12:00:00.000Z');
    expect(again.meter.totals({ day: '2026-03-01' })).toEqual({ http_calls: 2 });
    expect(again.meter.totals()).toEqual({ http_calls: 1 });
    expect(again.meter.quotas()).toEqual([{ kind: 'http_calls', per: 'node', daily: 2 }]);
  });

  it('refuses per user once that user reached the quota, while other users go on', () => {
    const { meter } = setup({ quotas: [{ kind: 'tts_seconds', per: 'user', daily: 60 }] });
    meter.record('tts_seconds', 45, { user: 'ada' });
    expect(() => meter.check('tts_seconds', { user: 'ada' })).not.toThrow();
    expect(() => meter.check('tts_seconds', { user: 'ada', amount: 20 })).toThrow(/"tts_seconds" reached for user "ada": used 45 of 60/);
    meter.record('tts_seconds', 15, { user: 'ada' });
    const err = caught(() => meter.check('tts_seconds', { user: 'ada' }));
    expect(err.code).toBe('QUOTA_EXCEEDED');
    expect(err.message).toBe('Daily quota for "tts_seconds" reached for user "ada": used 60 of 60 today (2026-03-01 UTC); it resets at 2026-03-02T00:00:00.000Z (in 2h 30m).');
    expect(err.details).toEqual({ kind: 'tts_seconds', per: 'user', subject: 'ada', limit: 60, used: 60, day: '2026-03-01', resets_at: '2026-03-02T00:00:00.000Z' });
    expect(() => meter.check('tts_seconds', { user: 'bob' })).not.toThrow();
    expect(() => meter.check('tts_seconds')).not.toThrow();
  });

  it('refuses per node on the sum of all users of this node, and not for another node', () => {
    const { meter } = setup({ node: 'kitchen', quotas: [{ kind: 'http_calls', per: 'node', daily: 3 }] });
    meter.record('http_calls', 2, { user: 'ada' });
    meter.record('http_calls', 1, { user: 'bob' });
    meter.record('http_calls', 5, { node: 'garage' });
    const err = caught(() => meter.check('http_calls', { user: 'carol' }));
    expect(err.code).toBe('QUOTA_EXCEEDED');
    expect(err.message).toMatch(/^Daily quota for "http_calls" reached for node "kitchen": used 3 of 3 today/);
    expect(caught(() => meter.check('http_calls', { node: 'garage' })).message).toMatch(/node "garage": used 5 of 3/);
    meter.removeQuota('http_calls', 'node');
    expect(() => meter.check('http_calls')).not.toThrow();
  });

  it('journals quota.exceeded once per day and subject, not once per refusal, and never journals records', () => {
    const { meter, journal } = setup({ quotas: [{ kind: 'plugin_calls', per: 'user', daily: 0 }] });
    for (let i = 0; i < 5; i++) expect(() => meter.check('plugin_calls', { user: 'ada', trace_id: 't-1' })).toThrow();
    meter.record('plugin_calls', 1, { user: 'ada' });
    const events = journal.query({}).events;
    expect(events.map((e) => e.topic)).toEqual([QUOTA_EXCEEDED_TOPIC]);
    expect(events[0]!.trace_id).toBe('t-1');
    expect(events[0]!.payload).toMatchObject({ kind: 'plugin_calls', per: 'user', subject: 'ada', limit: 0, used: 0 });
  });

  it('validates kinds, amounts and quotas with clear messages', () => {
    const { meter } = setup();
    expect(caught(() => meter.record('HTTP calls', 1)).message).toMatch(/"HTTP calls" is not a cost kind/);
    expect(caught(() => meter.record('http_calls', -1)).code).toBe('VALIDATION_FAILED');
    expect(caught(() => meter.record('http_calls', Number.NaN)).code).toBe('VALIDATION_FAILED');
    expect(caught(() => meter.setQuota({ kind: 'http_calls', per: 'team' as 'user', daily: 1 })).message).toMatch(/per "node" or per "user"/);
    expect(caught(() => meter.setQuota({ kind: 'http_calls', per: 'user', daily: Infinity })).code).toBe('VALIDATION_FAILED');
    expect(caught(() => meter.totals({ day: 'yesterday' })).code).toBe('VALIDATION_FAILED');
    meter.setQuota({ kind: 'http_calls', per: 'user', daily: 10 });
    meter.setQuota({ kind: 'http_calls', per: 'user', daily: 20 });
    expect(meter.quotas()).toEqual([{ kind: 'http_calls', per: 'user', daily: 20 }]);
  });
});
