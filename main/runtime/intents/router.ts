/**
 * From an utterance to the scenario or handler that serves it (seed 001 §6:
 * `intent.recognize(text)` → `scenario.run(id, {…ctx, …slots})`; seed 002 §1: routing through the registry).
 *
 * Contract: the router picks the best-ranked reading whose intent type is registered; readings of
 * unregistered intents are skipped, so an intent is switched off by unregistering it. The router never runs
 * a scenario itself: `dispatch` calls the `runScenario` callback the scenario engine supplies, keeping this
 * module free of the engine. Pure module: no Node APIs.
 */
import { TesseraError } from '../../common/errors.js';
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

export interface IntentRouter {
  /** The best registered reading of `text`, or null when nothing registered matches. */
  route(text: string, ctx?: RouteContext): IntentRoute | null;
  /**
   * Route `text` and call its target: `runScenario(target.scenario, {...ctx, ...slots})` or the registered
   * handler function. Resolves to null when nothing matched. Rejects with NOT_READY when a scenario route
   * has no `runScenario`, and NOT_FOUND when a handler route was registered without a function.
   */
  dispatch(text: string, ctx?: RouteContext): Promise<{ route: IntentRoute; result: unknown } | null>;
}

export function createIntentRouter(options: { registry: IntentRegistry; recognizer: Recognizer; runScenario?: RunScenario }): IntentRouter {
  const { registry, recognizer, runScenario } = options;

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
      return { route: found, result: await handler({ intent: found.intent, slots: found.slots, text, score: found.score, ctx }) };
    },
  };
}
