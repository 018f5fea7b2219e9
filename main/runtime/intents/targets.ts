/**
 * Load-time check of where intents route (issue 13 point 16): every scenario target exists, and every sentence's
 * slots — each combination a match can give, with each value its lists can give — satisfy that scenario's
 * `ctx_schema` together with the context the caller adds (the I/O router adds `io`, `utterance`, `intent`,
 * `language`, `session_id`). So `entitlement.redeem` filling `code` where the scenario needs `entitlement_id`,
 * or `music.play` routing to a scenario that does not exist, is found when the rules load, not when a traveller
 * says it. Handler targets are registered by code and are not checked here.
 */
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import type { Matcher, SlotValue } from './matcher.js';
import type { RuleSet, SentenceRule } from './rules.js';

/** One thing wrong with an intent's route. */
export interface TargetProblem {
  intent: string;
  scenario: string;
  /** `file:line` of the sentence (or of the rule file, for a missing scenario). */
  source: string;
  /** The sentence template, when the problem is with its slots. */
  sentence?: string;
  message: string;
}

/** What the check needs to know of a scenario. */
export interface ScenarioShape {
  ctx_schema?: Record<string, unknown>;
}

/** Samples of the slots one reading can give: slot name → the values it may take. */
type SlotSamples = Map<string, SlotValue[]>;

/** Enumerating a template's readings stops at this many slot combinations (templates are small). */
const MAX_COMBINATIONS = 256;
const WILDCARD_SAMPLE = 'some words';
/** A dynamic list has no values at load time (the runtime sets them later): its slot is checked with this one. */
const DYNAMIC_SAMPLE = 'a_value';

function combinations(m: Matcher): SlotSamples[] {
  switch (m.k) {
    case 'lit':
      return [new Map()];
    case 'slot': {
      const l = m.list;
      const values: SlotValue[] =
        l.kind === 'values' ? (l.dynamic ? [DYNAMIC_SAMPLE] : [...new Set([...l.byFirstToken.values()].flat().map((e) => e.value))]) : l.kind === 'range' ? [...new Set([l.from, l.to])] : [WILDCARD_SAMPLE];
      return [new Map([[m.slot, values]])];
    }
    case 'alt': {
      const all = m.options.flatMap(combinations);
      return dedupe(m.optional ? [new Map(), ...all] : all);
    }
    case 'seq': {
      let acc: SlotSamples[] = [new Map()];
      for (const item of m.items) {
        const next: SlotSamples[] = [];
        for (const left of acc) for (const right of combinations(item)) if (next.length < MAX_COMBINATIONS) next.push(new Map([...left, ...right]));
        acc = dedupe(next);
      }
      return acc;
    }
  }
}

function dedupe(list: SlotSamples[]): SlotSamples[] {
  const seen = new Set<string>();
  return list.filter((s) => {
    const key = [...s.keys()].sort().join(',');
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/** Contexts a sentence can produce: one per sample value, each slot cycling through its samples. */
function contextsOf(rule: SentenceRule, extra: Record<string, unknown>): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const samples of combinations(rule.matcher)) {
    const widest = Math.max(1, ...[...samples.values()].map((v) => v.length));
    for (let i = 0; i < widest; i++) {
      const slots: Record<string, unknown> = {};
      for (const [name, values] of samples) slots[name] = values[i % values.length];
      out.push({ ...extra, ...rule.slots, ...slots });
    }
  }
  return out;
}

/**
 * Checks each intent of `ruleSets` that routes to a scenario against `scenarios` (id → shape). `extra` is the
 * context the caller adds to the slots when it dispatches. Returns the problems, in rule order; none is fine.
 */
export function checkIntentTargets(ruleSets: readonly RuleSet[], scenarios: (id: string) => ScenarioShape | undefined, extra: Record<string, unknown> = {}): TargetProblem[] {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validators = new Map<string, ValidateFunction | null>();
  const problems: TargetProblem[] = [];
  const missing = new Set<string>();
  for (const set of ruleSets) {
    for (const intent of set.intents) {
      if (!('scenario' in intent.target)) continue;
      const id = intent.target.scenario;
      const scenario = scenarios(id);
      if (!scenario) {
        const first = set.sentences.find((s) => s.intent === intent.name);
        const source = first ? `${first.source.file}:${first.source.line}` : set.file;
        if (!missing.has(`${set.file}\u0000${intent.name}`)) problems.push({ intent: intent.name, scenario: id, source, message: `intent "${intent.name}" routes to scenario "${id}", which does not exist` });
        missing.add(`${set.file}\u0000${intent.name}`);
        continue;
      }
      if (!validators.has(id)) validators.set(id, scenario.ctx_schema ? ajv.compile(scenario.ctx_schema) : null);
      const validate = validators.get(id);
      if (!validate) continue;
      for (const rule of set.sentences) {
        if (rule.intent !== intent.name) continue;
        for (const ctx of contextsOf(rule, extra)) {
          if (validate(ctx)) continue;
          const slots = Object.fromEntries(Object.entries(ctx).filter(([k]) => !(k in extra)));
          problems.push({
            intent: intent.name,
            scenario: id,
            source: `${rule.source.file}:${rule.source.line}`,
            sentence: rule.sentence,
            message: `"${rule.sentence}" gives ${JSON.stringify(slots)}, but scenario "${id}" needs ${ajv.errorsText(validate.errors, { dataVar: 'ctx' })}`,
          });
          break; // one problem per sentence is enough to fix it
        }
      }
    }
  }
  return problems;
}
