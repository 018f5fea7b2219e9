/**
 * The IntentRegistry of seed 002 §1: which handler or scenario serves which intent type. The runtime routes a
 * recognized intent through it (./router.ts); rule files name a default target per intent, registered with
 * {@link registerRuleSetIntents}, and code may register its own handlers at boot.
 *
 * Contract:
 * - One registration per intent type. Registering a taken type is a VALIDATION_FAILED error unless
 *   `{ replace: true }` is passed; then the new registration wins and the old one's disposable does nothing.
 * - Disposing the value `registerIntent` returns removes exactly that registration (STYLE.md §2: the
 *   registering module owns it), so a plugin can unregister its intents without knowing who replaced them.
 * Pure module: no Node APIs.
 */
import { TesseraError } from '../../common/errors.js';
import type { ExecutionContext } from '../contracts/execution.js';
import type { Disposable } from '../lifecycle/index.js';
import type { SlotValue } from './matcher.js';
import type { IntentTarget, RuleSet } from './rules.js';

/** What a handler receives when the router dispatches to it. */
export interface IntentInvocation {
  intent: string;
  slots: Record<string, SlotValue>;
  /** The utterance as given. */
  text: string;
  score: number;
  /** The caller's context (session, channel, …), passed through untouched. */
  ctx: Record<string, unknown>;
  /**
   * The validated, frozen execution this call runs under (seed 002 §2): its id, the intent with the slots as
   * parameters, tenant/session/solution, the state surface and the WAL. The runtime owns its lifecycle
   * (created → running → completed | failed): the handler's return value becomes its result, a throw fails it.
   */
  execution: ExecutionContext;
}

/** A named intent handler (a domain service in seed 002's terms). */
export type IntentHandler = (invocation: IntentInvocation) => unknown;

/** One entry of the registry. */
export interface IntentRegistration {
  /** The intent type it serves, e.g. `weather.now`. */
  intentType: string;
  /** The handler's name; for a scenario route, the scenario id. */
  handlerName: string;
  /** The function to call, when the route is a handler registered with one. */
  handler?: IntentHandler;
  /** Free-form facts about the registration (owner, description, …); never interpreted by the registry. */
  metadata: Record<string, unknown>;
  /** Where the intent routes: `{scenario: handlerName}` or `{handler: handlerName}`. */
  target: IntentTarget;
}

/** Options of {@link IntentRegistry.registerIntent}. */
export interface RegisterIntentOptions {
  /** Replace an existing registration of the same intent type instead of failing. */
  replace?: boolean;
  /**
   * Whether `handlerName` names a scenario or a handler. Default: `handler` when a handler function is given,
   * else `scenario` (a registration without a function routes to the scenario of that id).
   */
  kind?: 'scenario' | 'handler';
}

export interface IntentRegistry {
  /**
   * Register the handler or scenario serving `intentType` (seed 002: `register_intent(intent_type,
   * handler_name, handler_function=None, metadata=None)`). Throws VALIDATION_FAILED when the type is taken and
   * `options.replace` is not set, or when a name is empty. Returns a disposable that removes this registration.
   */
  registerIntent(intentType: string, handlerName: string, handler?: IntentHandler, metadata?: Record<string, unknown>, options?: RegisterIntentOptions): Disposable;
  /** The registration serving `intentType`, or undefined. */
  resolve(intentType: string): IntentRegistration | undefined;
  /** Every registration, sorted by intent type. */
  list(): IntentRegistration[];
  /** Remove the registration of `intentType`; returns whether there was one. */
  unregister(intentType: string): boolean;
}

/** Create an empty registry. */
export function createIntentRegistry(): IntentRegistry {
  const entries = new Map<string, IntentRegistration>();
  return {
    registerIntent(intentType, handlerName, handler, metadata, options = {}) {
      if (typeof intentType !== 'string' || intentType.trim() === '') throw new TesseraError('VALIDATION_FAILED', 'registerIntent: intentType must be a non-empty string.');
      if (typeof handlerName !== 'string' || handlerName.trim() === '') throw new TesseraError('VALIDATION_FAILED', `registerIntent(${intentType}): handlerName must be a non-empty string.`);
      if (handler !== undefined && typeof handler !== 'function') throw new TesseraError('VALIDATION_FAILED', `registerIntent(${intentType}): handler must be a function.`);
      const existing = entries.get(intentType);
      if (existing && !options.replace) {
        throw new TesseraError('VALIDATION_FAILED', `Intent "${intentType}" is already registered to ${describe(existing)}; pass { replace: true } to replace it.`, { details: { intent_type: intentType } });
      }
      const kind = options.kind ?? (handler ? 'handler' : 'scenario');
      if (kind === 'scenario' && handler) throw new TesseraError('VALIDATION_FAILED', `registerIntent(${intentType}): a scenario route takes no handler function.`);
      const registration: IntentRegistration = {
        intentType,
        handlerName,
        metadata: { ...(metadata ?? {}) },
        target: kind === 'scenario' ? { scenario: handlerName } : { handler: handlerName },
        ...(handler ? { handler } : {}),
      };
      entries.set(intentType, registration);
      return {
        dispose() {
          if (entries.get(intentType) === registration) entries.delete(intentType);
        },
      };
    },
    resolve(intentType) {
      return entries.get(intentType);
    },
    list() {
      return [...entries.values()].sort((a, b) => (a.intentType < b.intentType ? -1 : a.intentType > b.intentType ? 1 : 0));
    },
    unregister(intentType) {
      return entries.delete(intentType);
    },
  };
}

function describe(r: IntentRegistration): string {
  return 'scenario' in r.target ? `scenario "${r.target.scenario}"` : `handler "${r.target.handler}"`;
}

/**
 * Register the default route every intent of `ruleSets` names (`scenario:` or `handler:`), skipping intent
 * types already registered to the same target (the en and ru files share intents). A type registered
 * elsewhere to a different target is left alone, unless two rule sets disagree with each other, which is a
 * VALIDATION_FAILED error. Returns a disposable that removes what this call registered.
 */
export function registerRuleSetIntents(registry: IntentRegistry, ruleSets: RuleSet | readonly RuleSet[]): Disposable {
  const sets = Array.isArray(ruleSets) ? (ruleSets as readonly RuleSet[]) : [ruleSets as RuleSet];
  const fromRules = new Map<string, { target: IntentTarget; file: string }>();
  for (const set of sets) {
    for (const intent of set.intents) {
      const seen = fromRules.get(intent.name);
      if (seen && JSON.stringify(seen.target) !== JSON.stringify(intent.target)) {
        throw new TesseraError('VALIDATION_FAILED', `Intent "${intent.name}" routes to ${JSON.stringify(seen.target)} in ${seen.file} but to ${JSON.stringify(intent.target)} in ${set.file}.`);
      }
      if (!seen) fromRules.set(intent.name, { target: intent.target, file: set.file });
    }
  }
  const owned: Disposable[] = [];
  for (const [intentType, { target, file }] of fromRules) {
    if (registry.resolve(intentType)) continue;
    const [kind, name] = 'scenario' in target ? (['scenario', target.scenario] as const) : (['handler', target.handler] as const);
    owned.push(registry.registerIntent(intentType, name, undefined, { source: file }, { kind }));
  }
  return {
    dispose() {
      for (const d of owned.reverse()) void d.dispose();
    },
  };
}
