/**
 * Intent handlers run under a validated ExecutionContext (seed 002 §1–§2): the router creates the execution
 * through the runtime's execution registry, which owns its lifecycle. Real runtime, real SQLite file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TesseraError } from '../../main/common/errors.js';
import type { ExecutionContext } from '../../main/runtime/contracts/index.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import type { IntentInvocation } from '../../main/runtime/intents/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { BUILTIN_INTENT_FILES } from '../../main/host/paths.js';
import { tempDir } from '../helpers/tmp.js';

let runtime: Runtime;

beforeAll(async () => {
  runtime = await createRuntime({ dataDir: tempDir('tessera-intent-exec-', 'file'), shell: 'headless', logger: createMemoryLogger(), intentRuleFiles: BUILTIN_INTENT_FILES });
}, 60_000);

afterAll(async () => {
  await runtime?.close();
});

const lifecycle = (traceId: string) => runtime.journal.query({ topic: 'execution', trace_id: traceId, limit: 100 }).events.map((e) => e.topic);
const created = () => runtime.journal.query({ topic: 'execution.created', limit: 1000 }).events.length;

describe('intent handlers under an execution', () => {
  it('hands the handler a frozen, validated context and records created → running → completed with its result', async () => {
    const seen: IntentInvocation[] = [];
    let stateWhileRunning: string | undefined;
    const owned = runtime.intents.registry.registerIntent('weather.now', 'weather-desk', (inv) => {
      seen.push(inv);
      stateWhileRunning = runtime.executions.get(inv.execution.execution_id)?.state;
      inv.execution.wal.append('weather_desk.looked_up', { city: inv.slots['city'] });
      return { forecast: `sunny in ${String(inv.slots['city'])}` };
    }, { solution_id: 'kiosk' }, { replace: true });
    try {
      const done = await runtime.intents.router.dispatch('weather in Berlin', { tenant_id: 'acme', session_id: 'sess-1', channel: 'voice' });
      expect(done).toMatchObject({ result: { forecast: 'sunny in berlin' }, execution_id: expect.stringMatching(/^exe_/) });
      const ctx: ExecutionContext = seen[0]!.execution;
      expect(ctx).toMatchObject({
        execution_id: done!.execution_id,
        tenant_id: 'acme',
        session_id: 'sess-1',
        solution_id: 'kiosk',
        intent: { intent_type: 'weather.now', tenant_id: 'acme', session_id: 'sess-1', solution_id: 'kiosk', parameters: { city: 'berlin' }, metadata: { text: 'weather in Berlin', language: 'en' } },
        metadata: { handler: 'weather-desk', ctx: { channel: 'voice' } },
      });
      expect(Object.isFrozen(ctx) && Object.isFrozen(ctx.intent)).toBe(true);
      expect(stateWhileRunning).toBe('running');
      const record = runtime.executions.status(done!.execution_id!);
      expect(record).toMatchObject({ state: 'completed', intent_type: 'weather.now', result: { forecast: 'sunny in berlin' } });
      expect(lifecycle(record.trace_id)).toEqual(['execution.created', 'execution.running', 'execution.completed']);
      expect(runtime.journal.query({ topic: 'weather_desk.looked_up', trace_id: record.trace_id }).events.map((e) => e.payload)).toEqual([{ city: 'berlin' }]);
    } finally {
      await owned.dispose();
    }
  });

  it('fails the execution with the error a handler throws, and passes the error on', async () => {
    let executionId = '';
    const owned = runtime.intents.registry.registerIntent('weather.now', 'weather-desk', (inv) => {
      executionId = inv.execution.execution_id;
      throw new TesseraError('FORBIDDEN', 'this kiosk may not look up the weather');
    }, undefined, { replace: true });
    try {
      await expect(runtime.intents.router.dispatch('weather in Berlin')).rejects.toMatchObject({ code: 'FORBIDDEN', message: 'this kiosk may not look up the weather' });
      const record = runtime.executions.status(executionId);
      expect(record).toMatchObject({ state: 'failed', error: { code: 'FORBIDDEN' }, tenant_id: 'local', session_id: 'default', solution_id: 'tessera' });
      expect(lifecycle(record.trace_id)).toEqual(['execution.created', 'execution.running', 'execution.failed']);
    } finally {
      await owned.dispose();
    }
  });

  it('refuses an invalid context before any execution exists or the handler runs', async () => {
    let calls = 0;
    const owned = runtime.intents.registry.registerIntent('weather.now', 'weather-desk', () => void calls++, undefined, { replace: true });
    try {
      const before = created();
      await expect(runtime.intents.router.dispatch('weather in Berlin', { tenant_id: 'not a valid id!' })).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        message: expect.stringMatching(/^Intent "weather.now" was not handed to "weather-desk": its execution context is invalid: tenant_id must be 1–128 characters/),
      });
      await expect(runtime.intents.router.dispatch('weather in Berlin', { session_id: 42 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('session_id must be a non-empty string') });
      await expect(runtime.intents.router.dispatch('weather in Berlin', { note: 'x'.repeat(70 * 1024) })).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      expect(calls).toBe(0);
      expect(created()).toBe(before);
    } finally {
      await owned.dispose();
    }
  });

  it('fails the execution when the handler returns something that is not JSON', async () => {
    const owned = runtime.intents.registry.registerIntent('weather.now', 'weather-desk', () => ({ later: () => 1 }), undefined, { replace: true });
    try {
      await expect(runtime.intents.router.dispatch('weather in Berlin')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    } finally {
      await owned.dispose();
    }
  });
});
