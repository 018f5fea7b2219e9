import { describe, expect, it, vi } from 'vitest';
import { isTesseraError } from '../../main/common/errors.js';
import type { IntentInvocation } from '../../main/runtime/intents/index.js';
import { createIntentRegistry, createIntentRouter, createRecognizer, parseRuleSet, registerRuleSetIntents } from '../../main/runtime/intents/index.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { createExecutionRegistry } from '../../main/runtime/contracts/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';

const EN = parseRuleSet(
  `
language: en
lists:
  city: {values: [berlin, {in: [kyiv, kiev], out: kyiv}]}
  code: {wildcard: true}
intents:
  weather.now:
    scenario: weather_now
    data: [{sentences: ["weather in {city}"]}]
  entitlement.redeem:
    handler: entitlements
    data: [{sentences: ["redeem {code}"]}]
  greet:
    scenario: greet_on_boot
    data: [{sentences: [hello]}]
`,
  { file: 'en.yaml' },
);
const RU = parseRuleSet('language: ru\nlists:\n  city: {values: [{in: "берлин(|е)", out: berlin}]}\nintents:\n  weather.now:\n    scenario: weather_now\n    data: [{sentences: ["погода в {city}"]}]\n', { file: 'ru.yaml' });

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return isTesseraError(err) ? err.code : 'not a TesseraError';
  }
  return undefined;
};

describe('IntentRegistry', () => {
  it('routes an intent registered without a function to the scenario of that id', () => {
    const registry = createIntentRegistry();
    registry.registerIntent('weather.now', 'weather_now', undefined, { owner: 'core' });
    expect(registry.resolve('weather.now')).toEqual({ intentType: 'weather.now', handlerName: 'weather_now', metadata: { owner: 'core' }, target: { scenario: 'weather_now' } });
  });

  it('routes an intent registered with a function to that named handler', () => {
    const registry = createIntentRegistry();
    const handler = () => 'ok';
    registry.registerIntent('entitlement.redeem', 'entitlements', handler);
    expect(registry.resolve('entitlement.redeem')).toMatchObject({ handlerName: 'entitlements', handler, target: { handler: 'entitlements' }, metadata: {} });
  });

  it('lets the caller say a name is a handler even without a function', () => {
    const registry = createIntentRegistry();
    registry.registerIntent('ingest_file', 'content_service', undefined, undefined, { kind: 'handler' });
    expect(registry.resolve('ingest_file')?.target).toEqual({ handler: 'content_service' });
    expect(codeOf(() => registry.registerIntent('x', 'y', () => 1, undefined, { kind: 'scenario' }))).toBe('VALIDATION_FAILED');
  });

  it('refuses a duplicate registration unless asked to replace it', () => {
    const registry = createIntentRegistry();
    registry.registerIntent('greet', 'greet_on_boot');
    expect(codeOf(() => registry.registerIntent('greet', 'other'))).toBe('VALIDATION_FAILED');
    expect(registry.resolve('greet')?.handlerName).toBe('greet_on_boot');
    registry.registerIntent('greet', 'other', undefined, undefined, { replace: true });
    expect(registry.resolve('greet')?.handlerName).toBe('other');
  });

  it('refuses empty names and non-function handlers', () => {
    const registry = createIntentRegistry();
    expect(codeOf(() => registry.registerIntent('', 'x'))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => registry.registerIntent('x', ' '))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => registry.registerIntent('x', 'y', 'nope' as unknown as () => void))).toBe('VALIDATION_FAILED');
  });

  it('lists registrations sorted by intent type and unregisters them', () => {
    const registry = createIntentRegistry();
    registry.registerIntent('weather.now', 'weather_now');
    registry.registerIntent('greet', 'greet_on_boot');
    expect(registry.list().map((r) => r.intentType)).toEqual(['greet', 'weather.now']);
    expect(registry.unregister('greet')).toBe(true);
    expect(registry.unregister('greet')).toBe(false);
    expect(registry.list().map((r) => r.intentType)).toEqual(['weather.now']);
  });

  it('disposing a registration removes it, but not a registration that replaced it', () => {
    const registry = createIntentRegistry();
    const first = registry.registerIntent('greet', 'a');
    registry.registerIntent('greet', 'b', undefined, undefined, { replace: true });
    void first.dispose();
    expect(registry.resolve('greet')?.handlerName).toBe('b');
    const second = registry.registerIntent('timer.set', 'set_timer');
    void second.dispose();
    expect(registry.resolve('timer.set')).toBeUndefined();
  });

  it('registers the routes rule files name, once per intent shared by languages', () => {
    const registry = createIntentRegistry();
    registry.registerIntent('greet', 'custom_greeting', undefined, undefined);
    const owned = registerRuleSetIntents(registry, [EN, RU]);
    expect(registry.list().map((r) => [r.intentType, r.target])).toEqual([
      ['entitlement.redeem', { handler: 'entitlements' }],
      ['greet', { scenario: 'custom_greeting' }],
      ['weather.now', { scenario: 'weather_now' }],
    ]);
    expect(registry.resolve('weather.now')?.metadata).toEqual({ source: 'en.yaml' });
    void owned.dispose();
    expect(registry.list().map((r) => r.intentType)).toEqual(['greet']);
  });

  it('refuses rule files that route one intent to two targets', () => {
    const other = parseRuleSet('language: ru\nintents:\n  greet:\n    scenario: elsewhere\n    data: [{sentences: [привет]}]\n', { file: 'ru2.yaml' });
    expect(codeOf(() => registerRuleSetIntents(createIntentRegistry(), [EN, other]))).toBe('VALIDATION_FAILED');
  });
});

describe('intent router', () => {
  const setup = () => {
    const registry = createIntentRegistry();
    registerRuleSetIntents(registry, [EN, RU]);
    const runScenario = vi.fn((id: string, ctx: Record<string, unknown>) => ({ ran: id, ctx }));
    const router = createIntentRouter({ registry, recognizer: createRecognizer([EN, RU]), runScenario });
    return { registry, router, runScenario };
  };

  it('routes text to its scenario with the slots', () => {
    const { router } = setup();
    expect(router.route('Погода в Берлине')).toMatchObject({ intent: 'weather.now', slots: { city: 'berlin' }, target: { scenario: 'weather_now' } });
    expect(router.route('tell me a joke')).toBeNull();
  });

  it('dispatches a scenario route through the callback with the context and the slots', async () => {
    const { router, runScenario } = setup();
    const done = await router.dispatch('weather in Kiev', { session_id: 's1' });
    expect(runScenario).toHaveBeenCalledWith('weather_now', { session_id: 's1', city: 'kyiv' });
    expect(done?.result).toEqual({ ran: 'weather_now', ctx: { session_id: 's1', city: 'kyiv' } });
  });

  it('dispatches a handler route to the registered function, under a new execution', async () => {
    const { registry } = setup();
    const store = openStore({ path: ':memory:' });
    const executions = createExecutionRegistry({ store, bus: createBus({ journal: createJournal({ store }), logger: createMemoryLogger() }) });
    const router = createIntentRouter({ registry, recognizer: createRecognizer([EN, RU]), executions });
    const seen: IntentInvocation[] = [];
    registry.registerIntent('entitlement.redeem', 'entitlements', (inv) => {
      seen.push(inv);
      return 'redeemed';
    }, undefined, { replace: true });
    const done = await router.dispatch('redeem ABCD-1234', { session_id: 's1' });
    expect(done?.result).toBe('redeemed');
    expect(seen).toEqual([{ intent: 'entitlement.redeem', slots: { code: 'ABCD-1234' }, text: 'redeem ABCD-1234', score: done!.route.score, ctx: { session_id: 's1' }, execution: expect.objectContaining({ execution_id: done!.execution_id, session_id: 's1' }) }]);
    expect(executions.get(done!.execution_id!)).toMatchObject({ state: 'completed', result: 'redeemed' });
    store.close();
  });

  it('fails clearly when a handler route has no function or a scenario route has no runner', async () => {
    const { router } = setup();
    await expect(router.dispatch('redeem X1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const registry = createIntentRegistry();
    registerRuleSetIntents(registry, EN);
    const bare = createIntentRouter({ registry, recognizer: createRecognizer(EN) });
    await expect(bare.dispatch('hello')).rejects.toMatchObject({ code: 'NOT_READY' });
  });

  it('skips readings of unregistered intents and takes the registry’s target over the rule file’s', () => {
    const { registry, router } = setup();
    registry.unregister('greet');
    expect(router.route('hello')).toBeNull();
    registry.registerIntent('weather.now', 'weather_detailed', undefined, undefined, { replace: true });
    expect(router.route('weather in berlin')?.target).toEqual({ scenario: 'weather_detailed' });
  });

  it('honours the language in the context', () => {
    const { router } = setup();
    expect(router.route('погода в берлине', { language: 'en' })).toBeNull();
    expect(router.route('погода в берлине', { language: 'ru' })?.intent).toBe('weather.now');
  });
});
