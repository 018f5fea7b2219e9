/**
 * From an utterance to the scenario or handler that serves it (seed 001 §6:
 * `intent.recognize(text)` → `scenario.run(id, {…ctx, …slots})`; seed 002 §1: routing through the registry).
 *
 * Contract: the router picks the best-ranked reading whose intent type is registered; readings of
 * unregistered intents are skipped, so an intent is switched off by unregistering it. The router never runs
 * a scenario itself: `dispatch` calls the `runScenario` callback the scenario engine supplies, keeping this
 * module free of the engine. A handler runs only inside an execution (seed 002 §1–§2): the router creates it
 * through the runtime's execution registry, which validates its context (a bad one is refused before the
 * handler runs) and owns its lifecycle created → running → completed | failed. Pure module: no Node APIs.
 */
import { TesseraError, fromErrorData, isTesseraError } from '../../common/errors.js';
import type { CreateExecutionInput, ExecutionRegistry } from '../contracts/execution.js';
import type { SlotValue } from './matcher.js';
import type { Language } from './normalize.js';
import type { Recognition, Recognizer } from './recognizer.js';
import type { IntentRegistration, IntentRegistry } from './registry.js';
import type { IntentTarget } from './rules.js';

/** A recognized, routable intent. */
export interface IntentRoute {
  intent: string;
  slots: Record<string, SlotValue>;
  score: number;
  /** The registry's target (which may differ from the rule file's default). */
  target: IntentTarget;
  registration: IntentRegistration;
  recognition: Recognition;
}

/** The caller's context; `language` restricts recognition, everything else passes through to the target. */
export type RouteContext = Record<string, unknown> & { language?: Language };

/** Runs a scenario; supplied by the scenario engine. */
export type RunScenario = (scenarioId: string, ctx: Record<string, unknown>) => unknown;

/** The part of the runtime's execution registry the router uses to run handlers. */
export type HandlerExecutions = Pick<ExecutionRegistry, 'create' | 'invoke'>;

/**
 * Where a handler's execution context comes from when the caller's context does not say: `ctx.tenant_id`,
 * `ctx.session_id`, `ctx.solution_id` (and `ctx.trace_id`) win; a registration may name its `solution_id` in
 * its metadata.
 */
export const DEFAULT_EXECUTION_IDS = { tenant_id: 'local', session_id: 'default', solution_id: 'tessera' } as const;

/** Caller context keys that become the execution's ids rather than its metadata. */
const ID_KEYS = new Set(['tenant_id', 'session_id', 'solution_id', 'trace_id', 'language']);

export interface IntentRouter {
  /** The best registered reading of `text`, or null when nothing registered matches. */
  route(text: string, ctx?: RouteContext): IntentRoute | null;
  /**
   * Route `text` and call its target: `runScenario(target.scenario, {...ctx, ...slots})` or the registered
   * handler function, under a new execution. Resolves to null when nothing matched. Rejects with NOT_READY
   * when a scenario route has no `runScenario` or a handler route no `executions`, NOT_FOUND when a handler
   * route was registered without a function, VALIDATION_FAILED (naming the field) when the execution context
   * built from `ctx` is invalid — the handler then never runs — and with the handler's own error when it throws
   * (the execution is then `failed`).
   */
  dispatch(text: string, ctx?: RouteContext): Promise<{ route: IntentRoute; result: unknown; execution_id?: string } | null>;
}

export function createIntentRouter(options: { registry: IntentRegistry; recognizer: Recognizer; runScenario?: RunScenario; executions?: HandlerExecutions }): IntentRouter {
  const { registry, recognizer, runScenario, executions } = options;

  /** The execution a handler route runs under: ids from the caller, the slots as the intent's parameters. */
  const executionInput = (found: IntentRoute, text: string, ctx: RouteContext): CreateExecutionInput => {
    const given = (key: 'tenant_id' | 'session_id' | 'solution_id') => ctx[key] ?? (key === 'solution_id' ? found.registration.metadata['solution_id'] : undefined) ?? DEFAULT_EXECUTION_IDS[key];
    const rest = Object.fromEntries(Object.entries(ctx).filter(([k]) => !ID_KEYS.has(k)));
    return {
      intent: { intent_type: found.intent, parameters: found.slots, metadata: { text, score: found.score, rule: found.recognition.rule.source, language: found.recognition.language } },
      tenant_id: given('tenant_id') as string,
      session_id: given('session_id') as string,
      solution_id: given('solution_id') as string,
      metadata: { handler: found.registration.handlerName, ctx: rest },
      ...(ctx['trace_id'] === undefined ? {} : { trace_id: ctx['trace_id'] as string }),
    };
  };

  const route = (text: string, ctx: RouteContext = {}): IntentRoute | null => {
    const readings = recognizer.recognizeAll(text, ctx.language === undefined ? {} : { language: ctx.language });
    for (const recognition of readings) {
      const registration = registry.resolve(recognition.intent);
      if (!registration) continue;
      return { intent: recognition.intent, slots: recognition.slots, score: recognition.score, target: registration.target, registration, recognition };
    }
    return null;
  };

  return {
    route,
    async dispatch(text, ctx = {}) {
      const found = route(text, ctx);
      if (!found) return null;
      if ('scenario' in found.target) {
        if (!runScenario) throw new TesseraError('NOT_READY', `Intent "${found.intent}" routes to scenario "${found.target.scenario}" but no scenario runner is attached.`);
        return { route: found, result: await runScenario(found.target.scenario, { ...ctx, ...found.slots }) };
      }
      const handler = found.registration.handler;
      if (!handler) throw new TesseraError('NOT_FOUND', `Intent "${found.intent}" routes to handler "${found.target.handler}", which was registered without a function.`);
      if (!executions) throw new TesseraError('NOT_READY', `Intent "${found.intent}" routes to handler "${found.target.handler}" but no execution registry is attached; handlers run only under a validated ExecutionContext.`);
      let created;
      try {
        created = executions.create(executionInput(found, text, ctx));
      } catch (err) {
        if (!isTesseraError(err)) throw err;
        throw new TesseraError(err.code, `Intent "${found.intent}" was not handed to "${found.target.handler}": its execution context is invalid: ${err.message}`, { cause: err, details: err.details });
      }
      let result: unknown = null;
      const record = await executions.invoke(created.execution_id, async (execution) => {
        result = await handler({ intent: found.intent, slots: found.slots, text, score: found.score, ctx, execution });
        return { result: result ?? null };
      });
      if (record.state !== 'completed') throw fromErrorData(record.error ?? { code: 'INTERNAL', message: `The execution ${record.execution_id} ended ${record.state}.` });
      return { route: found, result, execution_id: record.execution_id };
    },
  };
}
