import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TesseraEvent } from '../../main/common/api.js';
import { SUBSCRIBER_FAILED_TOPIC, createBus } from '../../main/runtime/bus/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function setup() {
  const store = openStore({ path: join(tempDir(), 'tessera.db') });
  stores.push(store);
  const journal = createJournal({ store });
  const logger = createMemoryLogger();
  return { store, journal, logger, bus: createBus({ journal, logger }) };
}

describe('bus', () => {
  it('delivers to wildcard subscribers only events whose topics match (seed 001 §5)', () => {
    const { bus } = setup();
    const got: string[] = [];
    bus.subscribe('nlp.intent.*', (e) => void got.push(e.topic));
    bus.publish('nlp.intent.weather', { city: 'Berlin' });
    bus.publish('nlp.intent', {});
    bus.publish('nlp.intent.weather.now', {});
    bus.publish('node.online', {});
    expect(got).toEqual(['nlp.intent.weather']);
  });

  it('journals every event with its trace id before delivering it', () => {
    const { bus, journal } = setup();
    let seenInJournal = false;
    bus.subscribe('a.*', (e) => {
      seenInJournal = journal.query({ trace_id: e.trace_id }).events.some((j) => j.id === e.id);
    });
    const event = bus.publish('a.b', { x: 1 }, { trace_id: 'trace-42' });
    expect(seenInJournal).toBe(true);
    expect(journal.query({ trace_id: 'trace-42' }).events).toEqual([event]);
  });

  it('isolates a throwing subscriber: others still run, the publisher succeeds, the failure is journaled', () => {
    const { bus, journal, logger } = setup();
    const got: string[] = [];
    bus.subscribe('x.*', () => {
      throw new Error('handler broke');
    }, { name: 'broken' });
    bus.subscribe('x.*', (e) => void got.push(e.topic));
    const event = bus.publish('x.y', null, { trace_id: 'trace-7' });
    expect(got).toEqual(['x.y']);
    const failures = journal.query({ topic: SUBSCRIBER_FAILED_TOPIC }).events;
    expect(failures).toHaveLength(1);
    expect(failures[0]!.trace_id).toBe('trace-7');
    expect(failures[0]!.payload).toMatchObject({ subscriber: 'broken', event_id: event.id, error: { message: 'handler broke' } });
    expect(logger.lines.some((l) => l['msg'] === 'event subscriber failed')).toBe(true);
  });

  it('isolates a rejecting async subscriber', async () => {
    const { bus, journal } = setup();
    bus.subscribe('y', async () => {
      throw new Error('async broke');
    });
    bus.publish('y');
    await new Promise((r) => setTimeout(r, 0));
    expect(journal.query({ topic: SUBSCRIBER_FAILED_TOPIC }).events).toHaveLength(1);
  });

  it('does not loop when a subscriber of failures fails too', () => {
    const { bus, journal } = setup();
    bus.subscribe('**', () => {
      throw new Error('always');
    });
    bus.publish('z');
    // one event, one failure report; the failure report's own failure is only logged
    expect(journal.query().events.map((e) => e.topic)).toEqual(['z', SUBSCRIBER_FAILED_TOPIC]);
  });

  it('stops delivering after unsubscribe and rejects bad patterns', async () => {
    const { bus } = setup();
    const got: TesseraEvent[] = [];
    const sub = bus.subscribe('**', (e) => void got.push(e));
    bus.publish('one');
    await sub.dispose();
    bus.publish('two');
    expect(got.map((e) => e.topic)).toEqual(['one']);
    expect(bus.subscriberCount).toBe(0);
    expect(() => bus.subscribe('a.b*', () => undefined)).toThrow(expect.objectContaining({ code: 'TOPIC_INVALID' }));
  });

  it('publishes a batch in one transaction and delivers it in order', () => {
    const { bus } = setup();
    const got: string[] = [];
    bus.subscribe('**', (e) => void got.push(e.topic));
    bus.publishMany([{ topic: 'b.1' }, { topic: 'b.2' }]);
    expect(got).toEqual(['b.1', 'b.2']);
  });

  it('stages a batch in the caller\'s transaction: journaled with it, delivered only when the caller says it committed', () => {
    const { store, journal, bus } = setup();
    const got: string[] = [];
    bus.subscribe('**', (e) => void got.push(e.topic));
    const staged = store.db.transaction(() => bus.stageMany([{ topic: 's.1' }, { topic: 's.2' }]))();
    expect(got).toEqual([]);
    expect(journal.query({ topic: 's.*' }).events.map((e) => e.topic)).toEqual(['s.1', 's.2']);
    staged.deliver();
    expect(got).toEqual(['s.1', 's.2']);
    // Rolled back with the caller's transaction: neither journaled nor (the caller never delivers) seen.
    expect(() =>
      store.db.transaction(() => {
        bus.stageMany([{ topic: 'r.1' }]);
        throw new Error('the caller fails after staging');
      })(),
    ).toThrow('the caller fails');
    expect(journal.query({ topic: 'r.*' }).events).toEqual([]);
    expect(got).toEqual(['s.1', 's.2']);
  });
});
