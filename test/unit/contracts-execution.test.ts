/** Execution contract of seed 002 §2: context validation, the runtime-owned lifecycle, run binding. Real SQLite file. */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TesseraError } from '../../main/common/errors.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { EXECUTION_STATES, EXECUTION_TRANSITIONS, createArtifactRegistry, createExecutionContext, createExecutionRegistry, createStateSurface, followScenarioRuns } from '../../main/runtime/contracts/index.js';
import type { ExecutionContextInput, ExecutionState } from '../../main/runtime/contracts/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

const NOW = Date.parse('2025-03-04T05:06:07.000Z');
const intent = { intent_type: 'weather.now', tenant_id: 't1', session_id: 's1', solution_id: 'kiosk', parameters: { city: 'Berlin' } };

function setup(path = join(tempDir(), 'tessera.db')) {
  const store = openStore({ path });
  stores.push(store);
  const journal = createJournal({ store });
  const logger = createMemoryLogger();
  const bus = createBus({ journal, logger });
  const state = createStateSurface({ store, bus, clock: () => NOW });
  const artifacts = createArtifactRegistry({ store, bus, clock: () => NOW });
  let n = 0;
  const executions = createExecutionRegistry({ store, bus, state_surface: state, artifacts, clock: () => NOW, newId: () => `exe_${++n}` });
  return { path, store, journal, logger, bus, state, artifacts, executions };
}

describe('ExecutionContext', () => {
  it('is built from a valid input, frozen, and agrees with its intent', () => {
    const { bus, state } = setup();
    const ctx = createExecutionContext({ execution_id: 'exe_9', intent, metadata: { channel: 'voice' } }, { bus, state_surface: state, trace_id: 'trace-9', clock: () => NOW });
    expect(ctx).toMatchObject({ execution_id: 'exe_9', tenant_id: 't1', session_id: 's1', solution_id: 'kiosk', metadata: { channel: 'voice' }, created_at: '2025-03-04T05:06:07.000Z' });
    expect(ctx.intent).toEqual({ ...intent, metadata: {} });
    expect(Object.isFrozen(ctx) && Object.isFrozen(ctx.intent.parameters) && Object.isFrozen(ctx.metadata)).toBe(true);
  });

  it('takes tenant, session and solution from either the context or its intent', () => {
    const { bus, state } = setup();
    const ctx = createExecutionContext({ execution_id: 'e', intent: { intent_type: 'x' }, tenant_id: 't', session_id: 's', solution_id: 'sol' }, { bus, state_surface: state });
    expect(ctx.intent).toMatchObject({ tenant_id: 't', session_id: 's', solution_id: 'sol', parameters: {} });
  });

  it('is refused before any handler runs when a field is missing, malformed, inconsistent or too large, naming the field', () => {
    const { bus, state } = setup();
    const make = (input: Partial<ExecutionContextInput> & Record<string, unknown>) => () => createExecutionContext({ execution_id: 'e', intent, ...input } as ExecutionContextInput, { bus, state_surface: state });
    const refused = (field: string, code = 'VALIDATION_FAILED') => expect.objectContaining({ name: 'TesseraError', code, message: expect.stringContaining(field) });
    expect(make({ execution_id: '' })).toThrow(refused('execution_id'));
    expect(make({ execution_id: 'has space' })).toThrow(refused('execution_id'));
    expect(make({ execution_id: 'x'.repeat(129) })).toThrow(refused('execution_id'));
    expect(make({ intent: undefined as never })).toThrow(refused('intent'));
    expect(make({ intent: { ...intent, intent_type: 'weather..now' } })).toThrow(refused('intent.intent_type'));
    expect(make({ intent: { intent_type: 'x', session_id: 's', solution_id: 'k' } })).toThrow(refused('tenant_id is required'));
    expect(make({ session_id: 'other' })).toThrow(refused('intent.session_id is "s1"'));
    expect(make({ intent: { ...intent, tenant_id: 't/1' } })).toThrow(refused('intent.tenant_id'));
    expect(make({ intent: { ...intent, parameters: [] as never } })).toThrow(refused('intent.parameters'));
    expect(make({ metadata: { big: 'x'.repeat(64 * 1024) } })).toThrow(refused('metadata', 'PAYLOAD_TOO_LARGE'));
    expect(make({ metadata: new Map() as never })).toThrow(refused('metadata'));
    expect(make({ created_at: 'yesterday' })).toThrow(refused('created_at'));
    expect(() => createExecutionContext({ execution_id: 'e', intent }, { bus, state_surface: state, trace_id: 'bad trace' })).toThrow(expect.objectContaining({ code: 'TRACE_ID_INVALID' }));
  });

  it('journals wal appends and state writes with the execution’s trace id, and keeps runtime topics to the runtime', () => {
    const { bus, state, journal } = setup();
    const ctx = createExecutionContext({ execution_id: 'e', intent }, { bus, state_surface: state, trace_id: 'trace-ctx' });
    ctx.wal.append('weather.fetched', { city: 'Berlin' });
    ctx.state_surface.session(ctx.tenant_id, ctx.session_id).set('last_city', 'Berlin');
    ctx.state_surface.execution(ctx.execution_id).set('step', 1);
    expect(journal.query({ trace_id: 'trace-ctx' }).events.map((e) => e.topic)).toEqual(['weather.fetched', 'state.changed', 'state.changed']);
    expect(() => ctx.wal.append('execution.completed', {})).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(() => ctx.wal.append('artifact.ready')).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(() => ctx.wal.append('bad topic')).toThrow(expect.objectContaining({ code: 'TOPIC_INVALID' }));
  });
});

describe('execution lifecycle', () => {
  it('creates an execution, runs it to completion and journals each transition as execution.<state>', () => {
    const { executions, journal } = setup();
    const created = executions.create({ intent, trace_id: 'trace-life' });
    expect(created).toMatchObject({ execution_id: 'exe_1', state: 'created', intent_type: 'weather.now', run_id: null, result: null, error: null, started_at: null, finished_at: null });
    expect(executions.start('exe_1')).toMatchObject({ state: 'running', started_at: '2025-03-04T05:06:07.000Z' });
    expect(executions.complete('exe_1', { result: { temp_c: 21 } })).toMatchObject({ state: 'completed', result: { temp_c: 21 }, finished_at: '2025-03-04T05:06:07.000Z' });
    const events = journal.query({ trace_id: 'trace-life' }).events;
    expect(events.map((e) => e.topic)).toEqual(['execution.created', 'execution.running', 'execution.completed']);
    expect(events[2]!.payload).toMatchObject({ execution_id: 'exe_1', from: 'running' });
  });

  it('refuses every illegal transition with a clear message and leaves the state unchanged', () => {
    const { executions } = setup();
    const reach: Record<ExecutionState, (id: string) => void> = {
      created: () => undefined,
      running: (id) => executions.start(id),
      completed: (id) => (executions.start(id), executions.complete(id)),
      failed: (id) => (executions.start(id), executions.fail(id, new TesseraError('STEP_FAILED', 'boom'))),
      cancelled: (id) => executions.cancel(id),
    };
    const apply: Record<Exclude<ExecutionState, 'created'>, (id: string) => unknown> = {
      running: (id) => executions.start(id),
      completed: (id) => executions.complete(id),
      failed: (id) => executions.fail(id, new Error('x')),
      cancelled: (id) => executions.cancel(id),
    };
    let checked = 0;
    for (const from of EXECUTION_STATES) {
      for (const to of ['running', 'completed', 'failed', 'cancelled'] as const) {
        if (EXECUTION_TRANSITIONS[from].includes(to)) continue;
        const { execution_id: id } = executions.create({ intent });
        reach[from](id);
        expect(() => apply[to](id), `${from} → ${to}`).toThrow(expect.objectContaining({ code: 'EXECUTION_STATE_INVALID', details: expect.objectContaining({ reason: 'EXECUTION_STATE_INVALID', from, to }), message: expect.stringContaining(`is ${from}; it cannot become ${to}`) }));
        expect(executions.get(id)?.state).toBe(from);
        checked++;
      }
    }
    expect(checked).toBe(15);
  });

  it('records failures and cancellations as error data', () => {
    const { executions } = setup();
    const a = executions.create({ intent });
    executions.start(a.execution_id);
    expect(executions.fail(a.execution_id, new TesseraError('PLUGIN_TIMEOUT', 'weather tool too slow')).error).toEqual({ code: 'PLUGIN_TIMEOUT', message: 'weather tool too slow' });
    const b = executions.create({ intent });
    expect(executions.cancel(b.execution_id, 'user said stop')).toMatchObject({ state: 'cancelled', error: { code: 'RUN_CANCELLED', message: 'user said stop' } });
    const c = executions.create({ intent });
    executions.start(c.execution_id);
    expect(executions.fail(c.execution_id, new Error('secret detail')).error).toEqual({ code: 'INTERNAL', message: 'Internal error; see the runtime log.' });
  });

  it('is idempotent for a repeated create of the same id and intent, and refuses the same id with another intent', () => {
    const { executions } = setup();
    const first = executions.create({ execution_id: 'exe_fixed', intent });
    expect(executions.create({ execution_id: 'exe_fixed', intent })).toEqual(first);
    expect(() => executions.create({ execution_id: 'exe_fixed', intent: { ...intent, intent_type: 'other' } })).toThrow(/already exists/);
  });

  it('answers status with the artifacts the execution produced, and a not-found error for unknown ids', () => {
    const { executions, artifacts } = setup();
    const e = executions.create({ intent });
    const a = artifacts.register({ kind: 'forecast', produced_by: { execution_id: e.execution_id } });
    const gone = artifacts.register({ kind: 'draft', produced_by: { execution_id: e.execution_id } });
    artifacts.delete(gone.artifact_id);
    artifacts.register({ kind: 'other', produced_by: { execution_id: 'exe_other' } });
    expect(executions.status(e.execution_id).artifacts).toEqual([
      { artifact_id: a.artifact_id, kind: 'forecast', state: 'PENDING' },
      { artifact_id: gone.artifact_id, kind: 'draft', state: 'DELETED' },
    ]);
    expect(() => executions.status('exe_ghost')).toThrow(expect.objectContaining({ code: 'EXECUTION_NOT_FOUND', details: { reason: 'EXECUTION_NOT_FOUND', execution_id: 'exe_ghost' } }));
    expect(executions.get('exe_ghost')).toBeUndefined();
  });

  it('keeps executions across a reopen of the database file', () => {
    const first = setup();
    first.executions.create({ execution_id: 'exe_keep', intent });
    first.executions.start('exe_keep');
    first.store.close();
    expect(setup(first.path).executions.get('exe_keep')).toMatchObject({ state: 'running', intent: { parameters: { city: 'Berlin' } } });
  });

  it('invokes a handler with the validated context and records its result or its error', async () => {
    const { executions, journal } = setup();
    const ok = executions.create({ intent });
    const done = await executions.invoke(ok.execution_id, async (ctx) => {
      expect(executions.get(ctx.execution_id)?.state).toBe('running');
      ctx.wal.append('weather.fetched', { city: ctx.intent.parameters['city'] });
      return { result: { temp_c: 19 } };
    });
    expect(done).toMatchObject({ state: 'completed', result: { temp_c: 19 } });
    expect(journal.query({ trace_id: ok.trace_id }).events.map((e) => e.topic)).toEqual(['execution.created', 'execution.running', 'weather.fetched', 'execution.completed']);

    const bad = executions.create({ intent });
    expect(await executions.invoke(bad.execution_id, () => {
      throw new TesseraError('PLUGIN_FAILED', 'no network');
    })).toMatchObject({ state: 'failed', error: { code: 'PLUGIN_FAILED', message: 'no network' } });

    const huge = executions.create({ intent });
    expect(await executions.invoke(huge.execution_id, () => ({ result: 'x'.repeat(70_000) }))).toMatchObject({ state: 'failed', error: { code: 'PAYLOAD_TOO_LARGE' } });

    const finished = executions.create({ intent });
    executions.cancel(finished.execution_id);
    await expect(executions.invoke(finished.execution_id, () => undefined)).rejects.toMatchObject({ details: { reason: 'EXECUTION_STATE_INVALID' } });
  });

  it('drops the outcome of a handler whose execution was cancelled while it ran', async () => {
    const { executions } = setup();
    const e = executions.create({ intent });
    const final = await executions.invoke(e.execution_id, async (ctx) => {
      executions.cancel(ctx.execution_id, 'operator');
      return { result: 'too late' };
    });
    expect(final).toMatchObject({ state: 'cancelled', result: null, error: { code: 'RUN_CANCELLED', message: 'operator' } });
  });

  it('binds an execution to the scenario run that serves it, once', () => {
    const { executions, journal } = setup();
    const e = executions.create({ intent });
    expect(executions.bindRun(e.execution_id, 'run-1')).toMatchObject({ run_id: 'run-1' });
    expect(executions.bindRun(e.execution_id, 'run-1')).toMatchObject({ run_id: 'run-1' });
    expect(() => executions.bindRun(e.execution_id, 'run-2')).toThrow(/already served by run run-1/);
    expect(executions.byRun('run-1')?.execution_id).toBe(e.execution_id);
    expect(executions.byRun('run-2')).toBeUndefined();
    expect(journal.query({ topic: 'execution.run_bound' }).events).toHaveLength(1);
    const done = executions.create({ intent });
    executions.cancel(done.execution_id);
    expect(() => executions.bindRun(done.execution_id, 'run-3')).toThrow(expect.objectContaining({ details: expect.objectContaining({ reason: 'EXECUTION_STATE_INVALID' }) }));
  });

  it('follows the scenario run it is bound to: started, completed, failed and cancelled runs move the execution', async () => {
    const { executions, bus } = setup();
    const follower = followScenarioRuns({ bus, executions });
    const [a, b, c] = [executions.create({ intent }), executions.create({ intent }), executions.create({ intent })];
    executions.bindRun(a.execution_id, 'run-a');
    executions.bindRun(b.execution_id, 'run-b');
    executions.bindRun(c.execution_id, 'run-c');
    bus.publish('scenario.run.started', { run_id: 'run-a' });
    expect(executions.get(a.execution_id)?.state).toBe('running');
    bus.publish('scenario.run.completed', { run_id: 'run-a' });
    bus.publish('scenario.run.failed', { run_id: 'run-b', error: { code: 'STEP_FAILED', message: 'step ring failed' } });
    bus.publish('scenario.run.cancelled', { run_id: 'run-c' });
    bus.publish('scenario.run.completed', { run_id: 'run-unbound' });
    expect(executions.get(a.execution_id)).toMatchObject({ state: 'completed', result: { run_id: 'run-a' } });
    expect(executions.get(b.execution_id)).toMatchObject({ state: 'failed', error: { code: 'STEP_FAILED', message: 'step ring failed' } });
    expect(executions.get(c.execution_id)?.state).toBe('cancelled');
    await follower.dispose();
    const d = executions.create({ intent });
    executions.bindRun(d.execution_id, 'run-d');
    bus.publish('scenario.run.started', { run_id: 'run-d' });
    expect(executions.get(d.execution_id)?.state).toBe('created');
  });
});
