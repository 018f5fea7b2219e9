/** State Surface of seed 002 §3: scoping, optimistic versions, size limits and journaling, on a real SQLite file. */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createBus } from '../../main/runtime/bus/index.js';
import { createStateSurface } from '../../main/runtime/contracts/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function setup(path = join(tempDir(), 'tessera.db')) {
  const store = openStore({ path });
  stores.push(store);
  const journal = createJournal({ store });
  const bus = createBus({ journal, logger: createMemoryLogger() });
  return { path, store, journal, bus, state: createStateSurface({ store, bus, clock: () => Date.parse('2025-01-02T03:04:05.000Z') }) };
}

describe('state surface', () => {
  it('keeps session state per tenant and session, and execution state per execution, apart', () => {
    const { state } = setup();
    state.session('t1', 's1').set('cart', { items: 1 });
    state.session('t2', 's1').set('cart', { items: 2 });
    state.execution('s1').set('cart', { items: 3 });
    expect(state.session('t1', 's1').get('cart')?.value).toEqual({ items: 1 });
    expect(state.session('t2', 's1').get('cart')?.value).toEqual({ items: 2 });
    expect(state.execution('s1').get('cart')?.value).toEqual({ items: 3 });
    expect(state.session('t1', 's2').get('cart')).toBeUndefined();
    expect(state.session('t1', 's1')).toMatchObject({ kind: 'session', tenant_id: 't1', session_id: 's1', execution_id: null });
  });

  it('survives reopening the database file', () => {
    const first = setup();
    first.state.session('t', 's').set('k', [1, 'two', null]);
    first.store.close();
    const second = setup(first.path);
    expect(second.state.session('t', 's').get('k')).toEqual({ key: 'k', value: [1, 'two', null], version: 1, updated_at: '2025-01-02T03:04:05.000Z' });
  });

  it('counts versions per key and refuses a write whose expected_version is stale', () => {
    const { state } = setup();
    const scope = state.execution('e1');
    expect(scope.set('n', 1, { expected_version: 0 }).version).toBe(1);
    expect(scope.set('n', 2, { expected_version: 1 }).version).toBe(2);
    let caught: unknown;
    try {
      scope.set('n', 3, { expected_version: 1 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ name: 'TesseraError', code: 'STATE_VERSION_CONFLICT', details: { reason: 'STATE_VERSION_CONFLICT', key: 'n', expected_version: 1, actual_version: 2 } });
    expect((caught as Error).message).toContain('version 2, not 1');
    expect(() => scope.set('n', 3, { expected_version: 0 })).toThrow(/version 2, not 0/);
    expect(scope.get('n')?.value).toBe(2);
  });

  it('keeps counting across a delete, so a writer holding a pre-delete version cannot clobber a re-created key', () => {
    const { state } = setup();
    const scope = state.session('t', 's');
    scope.set('k', 'a');
    expect(scope.delete('k', { expected_version: 1 })).toBe(true);
    expect(scope.get('k')).toBeUndefined();
    expect(scope.delete('k')).toBe(false);
    expect(scope.set('k', 'b', { expected_version: 0 }).version).toBe(3);
    expect(() => scope.set('k', 'stale', { expected_version: 1 })).toThrow(/version 3, not 1/);
    expect(() => scope.delete('k', { expected_version: 2 })).toThrow(/version 3, not 2/);
  });

  it('lists the keys that have a value, by prefix and in key order', () => {
    const { state } = setup();
    const scope = state.session('t', 's');
    for (const key of ['b.2', 'a.1', 'b.1', 'c']) scope.set(key, key);
    scope.delete('c');
    expect(scope.list().map((e) => e.key)).toEqual(['a.1', 'b.1', 'b.2']);
    expect(scope.list({ prefix: 'b.' }).map((e) => e.key)).toEqual(['b.1', 'b.2']);
    expect(scope.list({ limit: 1 }).map((e) => e.key)).toEqual(['a.1']);
    expect(() => scope.list({ limit: 0 })).toThrow(/limit/);
  });

  it('refuses values over 64 KiB, values that are not JSON and malformed keys or scope ids, naming them', () => {
    const { state } = setup();
    const scope = state.execution('e');
    expect(() => scope.set('big', 'x'.repeat(64 * 1024))).toThrow(expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('state value of "big"') }));
    expect(scope.set('fits', 'x'.repeat(64 * 1024 - 2)).version).toBe(1);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => scope.set('c', cyclic)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => scope.set('u', undefined)).toThrow(/not a JSON value/);
    expect(() => scope.set('bad key!', 1)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining('state key') }));
    expect(() => state.session('', 's')).toThrow(/tenant_id/);
    expect(() => state.session('t', 'x'.repeat(129))).toThrow(/session_id/);
    expect(() => state.execution('a/b')).toThrow(/execution_id/);
  });

  it('journals every change as state.changed with the writer’s trace id, and nothing for a no-op delete', () => {
    const { state, journal } = setup();
    const traced = state.withTrace('trace-state-1');
    traced.session('t', 's').set('k', { v: 1 });
    traced.session('t', 's').delete('k');
    traced.session('t', 's').delete('k');
    state.execution('e').set('x', 1, { trace_id: 'trace-state-2' });
    const events = journal.query({ topic: 'state.changed' }).events;
    expect(events.map((e) => [e.trace_id, e.payload])).toEqual([
      ['trace-state-1', { scope: 'session', tenant_id: 't', session_id: 's', key: 'k', op: 'set', version: 1, value: { v: 1 } }],
      ['trace-state-1', { scope: 'session', tenant_id: 't', session_id: 's', key: 'k', op: 'delete', version: 2 }],
      ['trace-state-2', { scope: 'execution', execution_id: 'e', key: 'x', op: 'set', version: 1, value: 1 }],
    ]);
    expect(() => state.withTrace('not a trace')).toThrow(expect.objectContaining({ code: 'TRACE_ID_INVALID' }));
  });

  it('hands out frozen values, so a reader cannot change state behind the store’s back', () => {
    const { state } = setup();
    const entry = state.session('t', 's').set('k', { nested: { n: 1 } });
    expect(Object.isFrozen(entry.value)).toBe(true);
    expect(() => {
      (entry.value as { nested: { n: number } }).nested.n = 2;
    }).toThrow(TypeError);
  });
});
