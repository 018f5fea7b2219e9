/**
 * Intent rule sets: the YAML format, its validation and its compilation (seed 001 §6 `intent_rules`,
 * after hassil's intent files).
 *
 * ```yaml
 * language: en                      # en | ru: the normalization and number words to use
 * lists:                            # slot lists, referenced from templates as {name} or {name:slot}
 *   city:
 *     values:
 *       - berlin                    # matches "berlin", yields "berlin"
 *       - in: [berlin, berlins]     # matches any of these templates (no slots inside) …
 *         out: berlin               # … and yields this value (string, number or boolean)
 *   minutes:
 *     range: {from: 1, to: 120}     # digits or number words; optional `step`
 *   album:
 *     wildcard: true                # free text: at least one token; optional `max_tokens`; with `speech: names`
 *                                   # the speech grammar hears it as place and landmark words (else: text only)
 *   place:
 *     dynamic: true                 # values set at run time (setListValues): the places of the active journeys
 * expansion_rules:                  # reusable template pieces, used as <name>
 *   in_room: "in [the] {room}"
 * intents:
 *   weather.now:                    # the intent name the recognizer returns
 *     scenario: weather_now         # where it routes: a scenario id … (or `handler: name`)
 *     description: Current weather  # optional
 *     data:
 *       - sentences:
 *           - "[what's the] weather in {city}"
 *         slots: {unit: metric}     # optional fixed slots added to every match of these sentences
 * ```
 *
 * Every error names the file, line and column it found (`file:line:col: reason`), with code
 * VALIDATION_FAILED. Loading reads the file; everything else is pure.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { LineCounter, isMap, isScalar, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import type { CompiledList, ListEntry, Matcher, MatcherBounds, SlotValue } from './matcher.js';
import { boundsOf } from './matcher.js';
import type { Language } from './normalize.js';
import { LANGUAGES, tokenize } from './normalize.js';
import type { SequenceNode, TemplateErrorDetails, TemplateNode } from './template.js';
import { parseTemplate, templateError } from './template.js';

/** Where an intent routes: a scenario id (run by the scenario engine) or a named handler. */
export type IntentTarget = { scenario: string } | { handler: string };

/** Where a rule was written. */
export interface SourceRef {
  file: string;
  /** 1-based; 0 when the rule set was not read from YAML. */
  line: number;
  /** 1-based; 0 when unknown. */
  column: number;
}

/** One intent of a rule set. */
export interface IntentRule {
  name: string;
  target: IntentTarget;
  description?: string;
}

/** One sentence template of a rule set, compiled. */
export interface SentenceRule {
  intent: string;
  /** The template as written. */
  sentence: string;
  source: SourceRef;
  /** Fixed slots of the sentence's data block. */
  slots: Record<string, SlotValue>;
  /** Position in the rule set: the last tie-breaker when ranking. */
  order: number;
  /** @internal The compiled template. */
  matcher: Matcher;
  /** @internal Cheap pre-checks. */
  bounds: MatcherBounds;
}

/** A validated, compiled rule set: what the recognizer runs. */
export interface RuleSet {
  language: Language;
  /** The file it came from (or the name given to {@link compileRuleSet}). */
  file: string;
  intents: IntentRule[];
  sentences: SentenceRule[];
  /** Names of the lists declared `dynamic: true`, whose values {@link setListValues} sets at run time. */
  dynamicLists: string[];
  /** @internal The compiled lists by name: the objects the sentences' matchers refer to. */
  lists: ReadonlyMap<string, CompiledList>;
}

/** One value of a dynamic list: the texts that say it (plain text, not templates) and the value a match yields. */
export interface DynamicListValue {
  in: readonly string[];
  out: SlotValue;
}

/**
 * Replace the values of the dynamic list `name` of `set`, in place: every sentence compiled from `set` (and every
 * recognizer built over it) matches the new values from the next call on; nothing is reloaded. Texts are
 * normalized like utterances (./normalize.ts); a text with no words is ignored; the first value of a repeated
 * text wins. Returns the number of distinct spoken forms. Throws INTENT_LIST_NOT_DYNAMIC when `set` has no
 * list `name` declared `dynamic: true` (static lists come from the file and stay as written).
 */
export function setListValues(set: RuleSet, name: string, values: readonly DynamicListValue[]): number {
  const list = set.lists.get(name);
  if (!list || list.kind !== 'values' || !list.dynamic) {
    const declared = set.dynamicLists.length > 0 ? `its dynamic lists: ${set.dynamicLists.join(', ')}` : 'it declares no dynamic list';
    throw new TesseraError('INTENT_LIST_NOT_DYNAMIC', `The rule set ${set.file} has no list "${name}" declared dynamic: true (${declared}).`, { details: { file: set.file, list: name } });
  }
  const byFirstToken = new Map<string, ListEntry[]>();
  const seen = new Set<string>();
  let minTokens = Number.POSITIVE_INFINITY;
  let maxTokens = 0;
  for (const value of values) {
    if (!isSlotValue(value.out)) throw new TesseraError('VALIDATION_FAILED', `A value of the list "${name}" must yield a string, number or boolean.`);
    for (const text of value.in) {
      const tokens = tokenize(String(text), set.language).tokens.map((t) => t.text);
      const key = tokens.join(' ');
      if (tokens.length === 0 || seen.has(key)) continue;
      seen.add(key);
      minTokens = Math.min(minTokens, tokens.length);
      maxTokens = Math.max(maxTokens, tokens.length);
      const bucket = byFirstToken.get(tokens[0]!) ?? [];
      bucket.push({ tokens, value: value.out });
      byFirstToken.set(tokens[0]!, bucket);
    }
  }
  // Swapped in one go: a recognition running on another tick sees the old values or the new, never a mix.
  list.byFirstToken = byFirstToken;
  list.minTokens = minTokens;
  list.maxTokens = maxTokens;
  return seen.size;
}

type Path = Array<string | number>;

/** Maps a path in the parsed document to `file:line:col`. */
interface Locator {
  file: string;
  /** Position of the value at `path` (or of its key with `key`), plus `offset` characters into a one-line scalar. */
  at(path: Path, options?: { key?: boolean; offset?: number }): { line: number; column: number };
}

function plainLocator(file: string): Locator {
  return { file, at: () => ({ line: 0, column: 0 }) };
}

function yamlLocator(file: string, doc: Document, counter: LineCounter): Locator {
  return {
    file,
    at(path, options = {}) {
      // Walk up to the deepest node that exists, so a missing key points at its parent.
      for (let depth = path.length; depth >= 0; depth--) {
        const sub = path.slice(0, depth);
        let node: unknown;
        if (options.key && depth === path.length && depth > 0) {
          const parent = sub.length === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true);
          node = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(sub[sub.length - 1]))?.key : undefined;
        } else {
          node = sub.length === 0 ? doc.contents : doc.getIn(sub, true);
        }
        const range = (node as { range?: [number, number, number] } | undefined)?.range;
        if (!range) continue;
        let offset = range[0];
        if (depth === path.length && options.offset !== undefined && isScalar(node)) {
          const raw = String(node.source ?? node.value);
          const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
          if (!raw.includes('\n') && (node.type === 'PLAIN' || quoted)) offset += options.offset + (quoted ? 1 : 0);
        }
        const pos = counter.linePos(offset);
        return { line: pos.line, column: pos.col };
      }
      return { line: 0, column: 0 };
    },
  };
}

function where(loc: Locator, path: Path, options?: { key?: boolean; offset?: number }): string {
  const { line, column } = loc.at(path, options);
  return line > 0 ? `${loc.file}:${line}:${column}` : `${loc.file} at ${path.join('.') || '(root)'}`;
}

function fail(loc: Locator, path: Path, reason: string, options?: { key?: boolean; offset?: number }): never {
  const { line, column } = loc.at(path, options);
  throw new TesseraError('VALIDATION_FAILED', `${where(loc, path, options)}: ${reason}`, { details: { file: loc.file, line, column, path } });
}

/**
 * Parse YAML text into a document and a locator. Syntax errors become VALIDATION_FAILED with the line of the
 * first problem. Shared with the test-case loader (./cases.ts).
 */
export function parseYaml(text: string, file: string): { data: unknown; locator: Locator } {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const pos = counter.linePos(first.pos[0]);
    const reason = first.message.split('\n')[0] ?? first.message;
    throw new TesseraError('VALIDATION_FAILED', `${file}:${pos.line}:${pos.col}: invalid YAML: ${reason}`, { details: { file, line: pos.line, column: pos.col } });
  }
  return { data: doc.toJS({ maxAliasCount: 100 }) as unknown, locator: yamlLocator(file, doc, counter) };
}

/**
 * Read and compile a rule file. Errors name the file by the path given (for whoever is fixing it); the rule set
 * and each rule's `source` name it relative to its rules folder (`en.yaml`), since sources travel in API answers
 * and events, where the device's folder layout is nobody's business (issue 13 point 20).
 */
export function loadRuleSet(file: string): RuleSet {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TesseraError('VALIDATION_FAILED', `${file}: cannot read the rule file: ${(err as Error).message}`, { cause: err });
  }
  const set = parseRuleSet(text, { file });
  const name = basename(file);
  return { ...set, file: name, sentences: set.sentences.map((rule) => ({ ...rule, source: { ...rule.source, file: name } })) };
}

/** Parse and compile rule-set YAML text; `file` names it in errors and in each rule's source. */
export function parseRuleSet(text: string, options: { file?: string } = {}): RuleSet {
  const file = options.file ?? '<rules>';
  const { data, locator } = parseYaml(text, file);
  return compileWith(data, locator);
}

/** Compile a rule set given as plain data (the YAML format, already parsed). Errors carry paths, not lines. */
export function compileRuleSet(data: unknown, options: { file?: string } = {}): RuleSet {
  return compileWith(data, plainLocator(options.file ?? '<rules>'));
}

// ---------------------------------------------------------------------------------------------------------
// Validation

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSlotValue = (v: unknown): v is SlotValue => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

function checkKeys(loc: Locator, path: Path, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(loc, [...path, key], `unknown key "${key}"; expected one of: ${allowed.join(', ')}`, { key: true });
  }
}

function record(loc: Locator, path: Path, value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) fail(loc, path, `${what} must be a mapping`);
  return value;
}

function nonEmptyString(loc: Locator, path: Path, value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') fail(loc, path, `${what} must be a non-empty string`);
  return value;
}

function integer(loc: Locator, path: Path, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(loc, path, `${what} must be an integer`);
  return value;
}

const NAME_RE = /^[\p{L}\p{N}_.-]+$/u;

interface Env {
  loc: Locator;
  language: Language;
  lists: Map<string, CompiledList>;
  /** Expansion rules: parsed template and path, compiled lazily (and checked for cycles). */
  rules: Map<string, { template: string; node: SequenceNode; path: Path; compiled?: Matcher; expanding?: boolean }>;
}

function compileWith(data: unknown, loc: Locator): RuleSet {
  const root = record(loc, [], data, 'a rule file');
  checkKeys(loc, [], root, ['language', 'lists', 'expansion_rules', 'intents']);
  if (!LANGUAGES.includes(root['language'] as Language)) fail(loc, ['language'], `language must be one of ${LANGUAGES.join(', ')}`);
  const language = root['language'] as Language;
  const env: Env = { loc, language, lists: new Map(), rules: new Map() };

  if (root['lists'] !== undefined) {
    for (const [name, def] of Object.entries(record(loc, ['lists'], root['lists'], 'lists'))) {
      if (!NAME_RE.test(name)) fail(loc, ['lists', name], `invalid list name "${name}"`, { key: true });
      env.lists.set(name, compileList(env, name, def));
    }
  }
  if (root['expansion_rules'] !== undefined) {
    for (const [name, template] of Object.entries(record(loc, ['expansion_rules'], root['expansion_rules'], 'expansion_rules'))) {
      const path = ['expansion_rules', name];
      if (!NAME_RE.test(name)) fail(loc, path, `invalid expansion rule name "${name}"`, { key: true });
      const text = nonEmptyString(loc, path, template, `expansion rule "${name}"`);
      env.rules.set(name, { template: text, node: withTemplatePosition(loc, path, () => parseTemplate(text)), path });
    }
  }

  const intents: IntentRule[] = [];
  const sentences: SentenceRule[] = [];
  const intentMap = record(loc, ['intents'], root['intents'], 'intents');
  if (Object.keys(intentMap).length === 0) fail(loc, ['intents'], 'intents must name at least one intent');
  for (const [name, raw] of Object.entries(intentMap)) {
    const path: Path = ['intents', name];
    if (!NAME_RE.test(name)) fail(loc, path, `invalid intent name "${name}"`, { key: true });
    const intent = record(loc, path, raw, `intent "${name}"`);
    checkKeys(loc, path, intent, ['scenario', 'handler', 'description', 'data']);
    const hasScenario = intent['scenario'] !== undefined;
    if (hasScenario === (intent['handler'] !== undefined)) fail(loc, path, `intent "${name}" needs exactly one of scenario: or handler:`);
    const target: IntentTarget = hasScenario
      ? { scenario: nonEmptyString(loc, [...path, 'scenario'], intent['scenario'], 'scenario') }
      : { handler: nonEmptyString(loc, [...path, 'handler'], intent['handler'], 'handler') };
    const rule: IntentRule = { name, target };
    if (intent['description'] !== undefined) rule.description = nonEmptyString(loc, [...path, 'description'], intent['description'], 'description');
    intents.push(rule);

    const blocks = intent['data'];
    if (!Array.isArray(blocks) || blocks.length === 0) fail(loc, [...path, 'data'], `intent "${name}" needs a non-empty data: list`);
    blocks.forEach((rawBlock, b) => {
      const bpath = [...path, 'data', b];
      const block = record(loc, bpath, rawBlock, 'a data block');
      checkKeys(loc, bpath, block, ['sentences', 'slots']);
      const fixed: Record<string, SlotValue> = {};
      if (block['slots'] !== undefined) {
        for (const [slot, value] of Object.entries(record(loc, [...bpath, 'slots'], block['slots'], 'slots'))) {
          if (!isSlotValue(value)) fail(loc, [...bpath, 'slots', slot], `slot "${slot}" must be a string, number or boolean`);
          fixed[slot] = value;
        }
      }
      const list = block['sentences'];
      if (!Array.isArray(list) || list.length === 0) fail(loc, [...bpath, 'sentences'], 'sentences must be a non-empty list of templates');
      list.forEach((text, s) => {
        const spath = [...bpath, 'sentences', s];
        const sentence = nonEmptyString(loc, spath, text, 'a sentence template');
        const matcher = withTemplatePosition(loc, spath, () => compileNode(env, parseTemplate(sentence), sentence));
        const { line, column } = loc.at(spath);
        sentences.push({ intent: name, sentence, source: { file: loc.file, line, column }, slots: fixed, order: sentences.length, matcher, bounds: boundsOf(matcher) });
      });
    });
  }
  const dynamicLists = [...env.lists.values()].filter((l) => l.kind === 'values' && l.dynamic).map((l) => l.name);
  return { language, file: loc.file, intents, sentences, dynamicLists, lists: env.lists };
}

/** Run `fn`; rethrow a template error at its position in the file. */
function withTemplatePosition<T>(loc: Locator, path: Path, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const details = isTesseraError(err) ? (err.details as Partial<TemplateErrorDetails> | undefined) : undefined;
    if (details && typeof details.offset === 'number' && typeof details.reason === 'string') {
      fail(loc, path, `${details.reason} in template "${details.template}"`, { offset: details.offset });
    }
    throw err;
  }
}

function compileList(env: Env, name: string, raw: unknown): CompiledList {
  const { loc } = env;
  const path = ['lists', name];
  const def = record(loc, path, raw, `list "${name}"`);
  checkKeys(loc, path, def, ['values', 'range', 'wildcard', 'dynamic', 'max_tokens', 'speech']);
  const kinds = ['values', 'range', 'wildcard', 'dynamic'].filter((k) => def[k] !== undefined);
  if (kinds.length !== 1) fail(loc, path, `list "${name}" needs exactly one of values:, range:, wildcard: true or dynamic: true`);
  if (def['max_tokens'] !== undefined && def['wildcard'] === undefined) fail(loc, [...path, 'max_tokens'], 'max_tokens applies to wildcard lists only', { key: true });
  if (def['speech'] !== undefined && def['wildcard'] === undefined) fail(loc, [...path, 'speech'], 'speech applies to wildcard lists only', { key: true });

  if (def['dynamic'] !== undefined) {
    if (def['dynamic'] !== true) fail(loc, [...path, 'dynamic'], 'dynamic must be true');
    // Empty until the runtime sets its values (setListValues): it matches nothing meanwhile.
    return { kind: 'values', name, byFirstToken: new Map(), minTokens: Number.POSITIVE_INFINITY, maxTokens: 0, dynamic: true };
  }

  if (def['wildcard'] !== undefined) {
    if (def['wildcard'] !== true) fail(loc, [...path, 'wildcard'], 'wildcard must be true');
    const max = def['max_tokens'] === undefined ? Number.POSITIVE_INFINITY : integer(loc, [...path, 'max_tokens'], def['max_tokens'], 'max_tokens');
    if (max < 1) fail(loc, [...path, 'max_tokens'], 'max_tokens must be at least 1');
    if (def['speech'] !== undefined && def['speech'] !== 'names') fail(loc, [...path, 'speech'], 'speech must be names (the speech grammar hears the free text as place and landmark words)');
    return { kind: 'wildcard', name, maxTokens: max, ...(def['speech'] === 'names' ? { speech: 'names' as const } : {}) };
  }

  if (def['range'] !== undefined) {
    const rpath = [...path, 'range'];
    const range = record(loc, rpath, def['range'], 'range');
    checkKeys(loc, rpath, range, ['from', 'to', 'step']);
    const from = integer(loc, [...rpath, 'from'], range['from'], 'range.from');
    const to = integer(loc, [...rpath, 'to'], range['to'], 'range.to');
    const step = range['step'] === undefined ? 1 : integer(loc, [...rpath, 'step'], range['step'], 'range.step');
    if (from < 0 || to < from) fail(loc, rpath, `range must have 0 <= from <= to, got ${from}..${to}`);
    if (step < 1) fail(loc, [...rpath, 'step'], 'range.step must be at least 1');
    return { kind: 'range', name, from, to, step };
  }

  const values = def['values'];
  if (!Array.isArray(values) || values.length === 0) fail(loc, [...path, 'values'], `list "${name}" values: must be a non-empty list`);
  const byFirstToken = new Map<string, ListEntry[]>();
  let minTokens = Number.POSITIVE_INFINITY;
  let maxTokens = 0;
  values.forEach((entry, i) => {
    const vpath = [...path, 'values', i];
    let templates: Array<{ text: string; path: Path }>;
    let out: SlotValue;
    if (isRecord(entry)) {
      checkKeys(loc, vpath, entry, ['in', 'out']);
      const input = entry['in'];
      if (typeof input === 'string') templates = [{ text: input, path: [...vpath, 'in'] }];
      else if (Array.isArray(input) && input.length > 0) templates = input.map((t, j) => ({ text: nonEmptyString(loc, [...vpath, 'in', j], t, 'in'), path: [...vpath, 'in', j] }));
      else fail(loc, [...vpath, 'in'], 'in must be a template or a non-empty list of templates');
      if (!isSlotValue(entry['out'])) fail(loc, [...vpath, 'out'], 'out must be a string, number or boolean');
      out = entry['out'];
    } else if (isSlotValue(entry)) {
      templates = [{ text: String(entry), path: vpath }];
      out = entry;
    } else {
      fail(loc, vpath, 'a list value must be a string, a number, or {in, out}');
    }
    for (const t of templates) {
      const strings = withTemplatePosition(loc, t.path, () => expandStrings(env, parseTemplate(t.text), t.text));
      for (const s of strings) {
        const tokens = tokenize(s, env.language).tokens.map((tok) => tok.text);
        if (tokens.length === 0) fail(loc, t.path, `list value "${s}" has no words after normalization`);
        minTokens = Math.min(minTokens, tokens.length);
        maxTokens = Math.max(maxTokens, tokens.length);
        const bucket = byFirstToken.get(tokens[0]!) ?? [];
        if (!bucket.some((e) => e.tokens.join(' ') === tokens.join(' '))) bucket.push({ tokens, value: out });
        byFirstToken.set(tokens[0]!, bucket);
      }
    }
  });
  return { kind: 'values', name, byFirstToken, minTokens, maxTokens };
}

/** Bound on the strings one glued word or list value may expand to: keeps a typo from exploding. */
const MAX_EXPANSIONS = 1000;

/** Every string a slot-free template part can produce (used for glued words and list values). */
function expandStrings(env: Env, node: TemplateNode, template: string): string[] {
  const product = (lists: string[][], sep: string): string[] => {
    let acc = [''];
    lists.forEach((list, i) => {
      const next: string[] = [];
      for (const a of acc) for (const b of list) next.push(i === 0 ? b : a + sep + b);
      if (next.length > MAX_EXPANSIONS) templateError(template, node.start, `expands to more than ${MAX_EXPANSIONS} forms`);
      acc = next;
    });
    return acc;
  };
  switch (node.type) {
    case 'word':
      return [node.text];
    case 'sequence': {
      const inner = product(node.items.map((item) => expandStrings(env, item, template)), ' ');
      return inner.map((s) => `${node.leadingSpace ? ' ' : ''}${s}${node.trailingSpace ? ' ' : ''}`);
    }
    case 'joined':
      return product(node.parts.map((part) => expandStrings(env, part, template)), '');
    case 'alternative':
      return [...node.options.flatMap((o) => expandStrings(env, o, template)), ...(node.optional ? [''] : [])];
    case 'slot':
      return templateError(template, node.start, `slot {${node.list}} cannot be part of a glued word or a list value`);
    case 'rule': {
      const rule = env.rules.get(node.name);
      if (!rule) return templateError(template, node.start, `unknown expansion rule <${node.name}>`);
      if (rule.expanding) return templateError(template, node.start, `expansion rule <${node.name}> refers to itself`);
      rule.expanding = true;
      try {
        return expandStrings(env, rule.node, rule.template);
      } finally {
        rule.expanding = false;
      }
    }
  }
}

/** Compile a parsed template for matching. */
function compileNode(env: Env, node: TemplateNode, template: string): Matcher {
  switch (node.type) {
    case 'sequence':
      return { k: 'seq', items: node.items.map((item) => compileNode(env, item, template)).filter((m) => !(m.k === 'seq' && m.items.length === 0)) };
    case 'word':
      return literal(env, [node.text]);
    case 'joined':
      return literal(env, expandStrings(env, node, template));
    case 'alternative': {
      const options = node.options.map((o) => compileNode(env, o, template));
      const empty = options.some((m) => m.k === 'seq' && m.items.length === 0);
      return { k: 'alt', options: options.filter((m) => !(m.k === 'seq' && m.items.length === 0)), optional: node.optional || empty };
    }
    case 'slot': {
      const list = env.lists.get(node.list);
      if (!list) return templateError(template, node.start, `unknown list {${node.list}}; define it under lists:`);
      return { k: 'slot', slot: node.name, list };
    }
    case 'rule': {
      const rule = env.rules.get(node.name);
      if (!rule) return templateError(template, node.start, `unknown expansion rule <${node.name}>; define it under expansion_rules:`);
      if (rule.compiled) return rule.compiled;
      if (rule.expanding) return templateError(template, node.start, `expansion rule <${node.name}> refers to itself`);
      rule.expanding = true;
      try {
        rule.compiled = withTemplatePosition(env.loc, rule.path, () => compileNode(env, rule.node, rule.template));
        return rule.compiled;
      } finally {
        rule.expanding = false;
      }
    }
  }
}

/** Literal text (one or more written forms) as token sequences; a form with no words matches nothing. */
function literal(env: Env, forms: string[]): Matcher {
  const seqs: string[][] = [];
  const seen = new Set<string>();
  for (const form of forms) {
    const tokens = tokenize(form, env.language).tokens.map((t) => t.text);
    const key = tokens.join(' ');
    if (seen.has(key)) continue;
    seen.add(key);
    seqs.push(tokens);
  }
  const nonEmpty = seqs.filter((s) => s.length > 0);
  if (nonEmpty.length === 0) return { k: 'seq', items: [] };
  if (nonEmpty.length < seqs.length) return { k: 'alt', options: [{ k: 'lit', seqs: nonEmpty }], optional: true };
  return { k: 'lit', seqs: nonEmpty };
}
