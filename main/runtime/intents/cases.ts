/**
 * Intent test cases, in the spirit of Home Assistant's intent tests: a YAML file of utterances with the
 * intent and slots each must yield, run against a rule set by `tessera intent test` (./../../host/cli-intents.ts).
 *
 * ```yaml
 * language: en            # optional: recognize in this language only
 * lists:                  # optional: values of the rule set's dynamic lists for these cases, as the runtime
 *   place:                #   sets them (the journeys' places); plain texts, not templates
 *     - {in: [opera, opera house], out: lviv.opera}
 *     - rynok square      # a plain text yields itself
 * cases:
 *   - text: weather in Berlin
 *     intent: weather.now
 *     slots: {city: berlin}   # exactly these slots (omitted: none)
 *   - text: tell me a joke
 *     intent: null            # must not be recognized
 * ```
 *
 * A case passes when the best reading has the expected intent and exactly the expected slots (strict
 * equality: a range slot is a number, so write `minutes: 5`, not `"5"`).
 */
import { readFileSync } from 'node:fs';
import { TesseraError } from '../../common/errors.js';
import type { SlotValue } from './matcher.js';
import type { Language } from './normalize.js';
import { LANGUAGES } from './normalize.js';
import type { Recognition, Recognizer } from './recognizer.js';
import type { DynamicListValue } from './rules.js';
import { parseYaml, setListValues } from './rules.js';

export interface IntentCase {
  text: string;
  /** The expected intent, or null when the text must not be recognized. */
  intent: string | null;
  slots: Record<string, SlotValue>;
  /** `file:line` of the case. */
  source: string;
}

export interface IntentCaseFile {
  file: string;
  language?: Language;
  /** Values of dynamic lists set before the cases run. */
  lists?: Record<string, DynamicListValue[]>;
  cases: IntentCase[];
}

export interface IntentCaseResult {
  case: IntentCase;
  ok: boolean;
  got: Recognition | null;
  /** Why it failed, in one line. */
  reason?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse a case file; errors are VALIDATION_FAILED with `file:line:col`. */
export function parseIntentCases(text: string, file = '<cases>'): IntentCaseFile {
  const { data, locator } = parseYaml(text, file);
  const fail = (path: Array<string | number>, reason: string): never => {
    const { line, column } = locator.at(path);
    throw new TesseraError('VALIDATION_FAILED', `${file}${line > 0 ? `:${line}:${column}` : ''}: ${reason}`, { details: { file, line, column } });
  };
  const line = (path: Array<string | number>) => locator.at(path).line;
  if (!isRecord(data)) return fail([], 'a case file must be a mapping with cases:');
  for (const key of Object.keys(data)) if (key !== 'language' && key !== 'cases' && key !== 'lists') fail([key], `unknown key "${key}"; expected language, lists, cases`);
  const language = data['language'];
  if (language !== undefined && !LANGUAGES.includes(language as Language)) fail(['language'], `language must be one of ${LANGUAGES.join(', ')}`);
  let lists: Record<string, DynamicListValue[]> | undefined;
  if (data['lists'] !== undefined) {
    if (!isRecord(data['lists'])) fail(['lists'], 'lists must map a dynamic list name to its values');
    lists = {};
    for (const [name, values] of Object.entries(data['lists'] as Record<string, unknown>)) {
      if (!Array.isArray(values) || values.length === 0) fail(['lists', name], `list "${name}" must be a non-empty list of values`);
      lists[name] = (values as unknown[]).map((v, i): DynamicListValue => {
        if (typeof v === 'string' && v.trim() !== '') return { in: [v], out: v };
        if (isRecord(v)) {
          const input = typeof v['in'] === 'string' ? [v['in']] : v['in'];
          const ok = Array.isArray(input) && input.length > 0 && input.every((t) => typeof t === 'string' && t.trim() !== '');
          const out = v['out'];
          if (ok && (typeof out === 'string' || typeof out === 'number' || typeof out === 'boolean')) return { in: input as string[], out };
        }
        return fail(['lists', name, i], 'a value is a text, or {in: text | [texts], out: value}');
      });
    }
  }
  const raw = data['cases'];
  if (!Array.isArray(raw) || raw.length === 0) return fail(['cases'], 'cases must be a non-empty list');
  const cases = raw.map((c, i): IntentCase => {
    if (!isRecord(c)) return fail(['cases', i], 'a case must be a mapping with text, intent and slots');
    for (const key of Object.keys(c)) if (!['text', 'intent', 'slots'].includes(key)) fail(['cases', i, key], `unknown key "${key}"; expected text, intent, slots`);
    if (typeof c['text'] !== 'string' || c['text'].trim() === '') fail(['cases', i, 'text'], 'text must be a non-empty string');
    if (!('intent' in c) || (c['intent'] !== null && typeof c['intent'] !== 'string')) fail(['cases', i, 'intent'], 'intent must be an intent name or null');
    const slots: Record<string, SlotValue> = {};
    if (c['slots'] !== undefined && c['slots'] !== null) {
      if (!isRecord(c['slots'])) fail(['cases', i, 'slots'], 'slots must be a mapping');
      for (const [k, v] of Object.entries(c['slots'] as Record<string, unknown>)) {
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') fail(['cases', i, 'slots', k], `slot "${k}" must be a string, number or boolean`);
        slots[k] = v as SlotValue;
      }
    }
    if (c['intent'] === null && Object.keys(slots).length > 0) fail(['cases', i, 'slots'], 'a case with intent: null has no slots');
    return { text: c['text'] as string, intent: c['intent'] as string | null, slots, source: `${file}:${line(['cases', i])}` };
  });
  return { file, cases, ...(language === undefined ? {} : { language: language as Language }), ...(lists ? { lists } : {}) };
}

/** Read and parse a case file. */
export function loadIntentCases(file: string): IntentCaseFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TesseraError('VALIDATION_FAILED', `${file}: cannot read the case file: ${(err as Error).message}`, { cause: err });
  }
  return parseIntentCases(text, file);
}

/**
 * Run every case against `recognizer`; results are in case order. The file's `lists` are set first on the
 * recognizer's rule sets (of the file's language, when it names one) that declare them dynamic; a list that no
 * rule set declares dynamic is INTENT_LIST_NOT_DYNAMIC.
 */
export function runIntentCases(recognizer: Recognizer, file: IntentCaseFile): IntentCaseResult[] {
  for (const [name, values] of Object.entries(file.lists ?? {})) {
    const sets = recognizer.ruleSets.filter((s) => (file.language === undefined || s.language === file.language) && s.dynamicLists.includes(name));
    if (sets.length === 0) throw new TesseraError('INTENT_LIST_NOT_DYNAMIC', `${file.file}: lists.${name}: no rule set${file.language ? ` of language ${file.language}` : ''} declares a list "${name}" with dynamic: true.`);
    for (const set of sets) setListValues(set, name, values);
  }
  return file.cases.map((c) => {
    const got = recognizer.recognize(c.text, file.language === undefined ? {} : { language: file.language });
    const reason = mismatch(c, got);
    return reason === undefined ? { case: c, ok: true, got } : { case: c, ok: false, got, reason };
  });
}

function mismatch(c: IntentCase, got: Recognition | null): string | undefined {
  if (c.intent === null) return got === null ? undefined : `expected no intent, got ${got.intent}`;
  if (got === null) return `expected ${c.intent}, got no intent`;
  if (got.intent !== c.intent) return `expected ${c.intent}, got ${got.intent}`;
  const keys = new Set([...Object.keys(c.slots), ...Object.keys(got.slots)]);
  const wrong = [...keys].filter((k) => c.slots[k] !== got.slots[k]).sort();
  return wrong.length === 0 ? undefined : `slot${wrong.length > 1 ? 's' : ''} ${wrong.join(', ')} differ`;
}
