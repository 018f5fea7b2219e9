import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LIMITS } from '../../main/common/api.js';
import { createJournal, parseTime } from '../../main/runtime/journal/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function setup(clock?: () => number) {
  const store = openStore({ path: join(tempDir(), 'tessera.db') });
  stores.push(store);
  return { store, journal: createJournal({ store, ...(clock ? { clock } : {}) }) };
}

describe('journal', () => {
  it('assigns monotonic ids, keeps payloads as JSON and generates W3C-style trace ids', () => {
    const { journal } = setup();
    const a = journal.append({ topic: 'a.one', payload: { n: 1, s: 'ü' } });
    const b = journal.append({ topic: 'a.two' });
    expect(b.id).toBeGreaterThan(a.id);
    expect(a.payload).toEqual({ n: 1, s: 'ü' });
    expect(b.payload).toBeNull();
    expect(a.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(journal.lastId()).toBe(b.id);
    expect(journal.query().events.map((e) => e.id)).toEqual([a.id, b.id]);
  });

  it('never lets timestamps go backwards when the wall clock does', () => {
    let now = 2_000_000;
    const { journal } = setup(() => now);
    const first = journal.append({ topic: 't' });
    now = 1_000_000;
    const second = journal.append({ topic: 't' });
    expect(Date.parse(second.ts)).toBeGreaterThanOrEqual(Date.parse(first.ts));
  });

  it('queries by topic prefix on segment boundaries, by pattern, by trace id and by time range', () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const { journal } = setup(() => now);
    journal.append({ topic: 'nlp.intent', trace_id: 'trace-1' });
    now += 1000;
    journal.append({ topic: 'nlp.intent.weather', trace_id: 'trace-1' });
    now += 1000;
    journal.append({ topic: 'nlp.intentx' });
    journal.append({ topic: 'nlp.intent.weather.now' });
    const topics = (q: Parameters<typeof journal.query>[0]) => journal.query(q).events.map((e) => e.topic);

    expect(topics({ topic: 'nlp.intent' })).toEqual(['nlp.intent', 'nlp.intent.weather', 'nlp.intent.weather.now']);
    expect(topics({ topic: 'nlp.intent.*' })).toEqual(['nlp.intent.weather']);
    expect(topics({ topic: 'nlp.**' })).toHaveLength(4);
    expect(topics({ topic: '*.intentx' })).toEqual(['nlp.intentx']);
    expect(topics({ trace_id: 'trace-1' })).toEqual(['nlp.intent', 'nlp.intent.weather']);
    expect(topics({ since: '2026-01-01T00:00:01Z' })).toEqual(['nlp.intent.weather', 'nlp.intentx', 'nlp.intent.weather.now']);
    expect(topics({ until: String(Date.parse('2026-01-01T00:00:01Z')) })).toEqual(['nlp.intent']);
  });

  it('pages with a cursor in both orders', () => {
    const { journal } = setup();
    journal.appendMany(Array.from({ length: 5 }, (_, i) => ({ topic: 'p', payload: i })));
    const first = journal.query({ limit: 2 });
    expect(first.events.map((e) => e.payload)).toEqual([0, 1]);
    const second = journal.query({ limit: 2, after: first.next! });
    expect(second.events.map((e) => e.payload)).toEqual([2, 3]);
    const last = journal.query({ limit: 2, after: second.next! });
    expect(last.events.map((e) => e.payload)).toEqual([4]);
    expect(last.next).toBeNull();
    const newest = journal.query({ limit: 2, order: 'desc' });
    expect(newest.events.map((e) => e.payload)).toEqual([4, 3]);
    expect(journal.query({ limit: 2, order: 'desc', after: newest.next! }).events.map((e) => e.payload)).toEqual([2, 1]);
  });

  it('rejects bad input with stable codes and writes nothing', () => {
    const { journal } = setup();
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => journal.append({ topic: 'a..b' })).toThrow(expect.objectContaining({ code: 'TOPIC_INVALID' }));
    expect(() => journal.append({ topic: 'a', trace_id: 'bad trace' })).toThrow(expect.objectContaining({ code: 'TRACE_ID_INVALID' }));
    expect(() => journal.append({ topic: 'a', payload: cyclic })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => journal.append({ topic: 'a', payload: 'x'.repeat(LIMITS.maxPayloadBytes) })).toThrow(expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }));
    expect(() => journal.query({ limit: 0 })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => journal.query({ topic: 'a.b*' })).toThrow(expect.objectContaining({ code: 'TOPIC_INVALID' }));
    expect(journal.query().events).toEqual([]);
  });

  it('appends a batch all or nothing: one bad event rejects the whole batch', () => {
    const { journal } = setup();
    expect(() => journal.appendMany([{ topic: 'ok' }, { topic: 'not ok' }])).toThrow(expect.objectContaining({ code: 'TOPIC_INVALID' }));
    expect(journal.query().events).toEqual([]);
    expect(journal.appendMany([{ topic: 'a' }, { topic: 'b' }]).map((e) => e.topic)).toEqual(['a', 'b']);
  });

  it('keeps events across reopening the database file', () => {
    const dir = tempDir();
    const path = join(dir, 'tessera.db');
    let store = openStore({ path });
    createJournal({ store }).append({ topic: 'keep.me', payload: [1, 2] });
    store.close();
    store = openStore({ path });
    stores.push(store);
    const journal = createJournal({ store });
    expect(journal.query().events.map((e) => [e.topic, e.payload])).toEqual([['keep.me', [1, 2]]]);
    expect(journal.append({ topic: 'next' }).id).toBe(2);
  });

  it('parses times as epoch milliseconds or ISO-8601 and rejects anything else', () => {
    expect(parseTime('1700000000000', 'since')).toBe(1_700_000_000_000);
    expect(parseTime('2026-01-01T00:00:00Z', 'since')).toBe(Date.parse('2026-01-01T00:00:00Z'));
    expect(parseTime('2026-01-01', 'since')).toBe(Date.parse('2026-01-01'));
    for (const bad of ['yesterday', '2026-13-45T99:99', '', '1e9']) expect(() => parseTime(bad, 'since')).toThrow(/since/);
  });
});
