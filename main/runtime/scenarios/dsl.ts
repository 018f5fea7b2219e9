/**
 * The scenario DSL (seed 001 §11): loads scenario YAML into the {@link Scenario} model.
 *
 * Order of work for one file, each stage only when the previous one passed:
 * 1. YAML syntax (yaml's `parseDocument`, with a `LineCounter` so every node has a line and column);
 * 2. the published JSON Schema, resources/schema/scenario.schema.json;
 * 3. `include:`s, resolved relative to the including file and inlined in place (cycles and missing anchors
 *    are errors naming the chain);
 * 4. what a schema cannot say: unique step names, `as` only with `foreach`, every `${…}` and every
 *    `when`/`foreach` compiles (main/common/expr.ts), durations parse, required arguments of built-in actions;
 * 5. defaults (priority NORM, pool io, locks [], retries {max 0, exponential, 200 ms, 30 s, jitter 0}, `effect`
 *    by target).
 * Every problem found is reported, one per line, as `file:line:col field: message`
 * (`greet.yaml:12:7 steps[2].retries.max: must be integer`).
 *
 * A fragment file (the target of `include: ./fragments/common.yaml#ask_name`) is a map of named step lists:
 * `ask_name: [ {name: …, action: …}, … ]`. Included steps keep their names and their own `source`.
 *
 * Errors are SCENARIO_INVALID, with
 * `details: {file, errors: [{file, line, column, field, message}]}`.
 */
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { TesseraError } from '../../common/errors.js';
import { compileExpr, isExprError, parseTemplate } from '../../common/expr.js';
import { topicProblem } from '../../common/topics.js';
import { ANSWER_KINDS } from '../io/expects.js';
import scenarioSchema from '../../../resources/schema/scenario.schema.json' with { type: 'json' };
import type { Priority, RetryPolicy, Scenario, Step, StepTarget } from './model.js';
import { permissionProblem } from './permissions.js';

/** The code of every scenario-loading error. */
const ERROR_CODE = 'SCENARIO_INVALID';
/** Larger scenario files are refused before parsing. */
export const MAX_SCENARIO_FILE_BYTES = 1024 * 1024;
/** YAML alias expansion limit (billion-laughs files). */
const MAX_ALIAS_COUNT = 100;

export type ActionName = Extract<StepTarget, { kind: 'action' }>['action'];

/**
 * Arguments of the built-in actions: `required` are checked at load time, the rest are documented here for the
 * engine. An action not listed takes anything.
 * - io.say `{text | message, params?, channel?}` — say or show `text`, or the message catalogue's words for the key
 *   `message` in the run's language (`params` fill its placeholders; resources/messages; seed 001 §3, issue 13 §16).
 * - io.ask `{prompt | message, params?, timeout?, channel?, expects?}` (timeout in ms) — ask and wait for the answer;
 *   the answer's text is the step's output. `expects` says what answer fits (`name`, `city`, `place`, `yes_no`,
 *   `number`, `free_text`; main/runtime/io/expects.ts): a request that does not fit it is not taken as the answer.
 * - memory.set `{key, value}` — `memory.set("user.name", …)` (seed 001 §8).
 * - bus.publish `{topic, payload?}` — a concrete topic (seed 001 §5).
 * - scenario.run `{id, ctx?, priority?}` — start another scenario without waiting (a `scenario:` step waits).
 * - wait `{duration}` — a duration like `5s` or a number of ms; or `{event, filter?, timeout?}` (timeout in ms) — wait for a bus event
 *   (`filter` is an expression over `$`, the event). One of `duration` or `event` is required.
 * - log `{message, level?}`.
 */
export const ACTION_ARGS: Readonly<Record<ActionName, { required: readonly string[]; optional: readonly string[]; effect: boolean }>> = {
  'io.say': { required: [], optional: ['text', 'message', 'params', 'channel'], effect: true },
  'io.ask': { required: [], optional: ['prompt', 'message', 'params', 'timeout', 'channel', 'expects'], effect: true },
  'memory.set': { required: ['key', 'value'], optional: [], effect: true },
  'bus.publish': { required: ['topic'], optional: ['payload'], effect: true },
  'scenario.run': { required: ['id'], optional: ['ctx', 'priority'], effect: true },
  wait: { required: [], optional: ['duration', 'event', 'filter', 'timeout'], effect: false },
  log: { required: ['message'], optional: ['level'], effect: false },
};

export const DEFAULT_RETRIES: Readonly<RetryPolicy> = Object.freeze({ max: 0, backoff: 'exponential', initial: 200, max_delay: 30_000, jitter: 0 });

export interface ScenarioProblem {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** `steps[2].retries.max`; "" for the whole document. */
  field: string;
  message: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Durations

const DURATION = /^(?=\d)(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/;

/**
 * Milliseconds in a duration: `250ms`, `5s`, `2m`, `1h`, `1h30m`, `1.5s` (units in that order, each at most once),
 * a digit string or a number (ms). Rounded to whole ms.
 * @throws TesseraError VALIDATION_FAILED
 */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  } else if (/^\d+$/.test(value)) {
    return Number(value);
  } else {
    const m = DURATION.exec(value);
    if (m) {
      const [, h, min, s, ms] = m;
      return Math.round(Number(h ?? 0) * 3_600_000 + Number(min ?? 0) * 60_000 + Number(s ?? 0) * 1000 + Number(ms ?? 0));
    }
  }
  throw new TesseraError(ERROR_CODE, `${JSON.stringify(value)} is not a duration: use 250ms, 5s, 2m, 1h, 1h30m, or a number of milliseconds`);
}

// ---------------------------------------------------------------------------------------------------------------
// Schema

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
ajv.addSchema(scenarioSchema);
const SCHEMA_ID = scenarioSchema.$id;
const validateScenario = ajv.getSchema(SCHEMA_ID) as ValidateFunction;
const validateFragment = ajv.compile({
  type: 'object',
  minProperties: 1,
  propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
  additionalProperties: { type: 'array', minItems: 1, items: { $ref: `${SCHEMA_ID}#/definitions/step` } },
});

// ---------------------------------------------------------------------------------------------------------------
// Documents and positions

type PathSegment = string | number;

interface LoadedDoc {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
  value: unknown;
}

/** Collects problems; `at` finds the YAML node of a path (or its nearest ancestor) for the line and column. */
class Problems {
  readonly list: ScenarioProblem[] = [];

  at(src: LoadedDoc, path: readonly PathSegment[], message: string, options: { key?: boolean } = {}): void {
    const node = locate(src.doc, path, options.key === true);
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = src.lines.linePos(offset);
    this.list.push({ file: src.file, line, column: col, field: fieldName(path), message });
  }

  raw(file: string, line: number, column: number, message: string): void {
    this.list.push({ file, line, column, field: '', message });
  }

  get size(): number {
    return this.list.length;
  }
}

function locate(doc: Document.Parsed, path: readonly PathSegment[], key: boolean): YamlNode | undefined {
  let node: unknown = doc.contents;
  let found = node as YamlNode | undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (isSeq(node)) {
      node = node.items[Number(seg)];
    } else if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) return found;
      node = last && key ? pair.key : pair.value;
    } else {
      return found;
    }
    if (node === null || node === undefined) return found;
    found = node as YamlNode;
  }
  return found;
}

function fieldName(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

function format(p: ScenarioProblem): string {
  return `${p.file}:${p.line}:${p.column}${p.field === '' ? '' : ` ${p.field}`}: ${p.message}`;
}

function fail(file: string, problems: Problems): never {
  const list = [...problems.list].sort((a, b) => (a.file === b.file ? a.line - b.line || a.column - b.column : 0));
  throw new TesseraError(ERROR_CODE, list.map(format).join('\n'), { details: { file, errors: list } });
}

function readDoc(file: string, text: string, problems: Problems): LoadedDoc | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const { line, col } = lines.linePos(err.pos[0]);
      problems.raw(file, line, col, `YAML: ${err.message.split('\n')[0]!}`);
    }
    return undefined;
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    problems.raw(file, 1, 1, `YAML: ${(err as Error).message}`);
    return undefined;
  }
  return { file, doc, lines, value };
}

function readText(file: string): string {
  const size = statSync(file).size;
  if (size > MAX_SCENARIO_FILE_BYTES) throw new Error(`larger than ${MAX_SCENARIO_FILE_BYTES} bytes`);
  return readFileSync(file, 'utf8');
}

/** Reports Ajv errors at their YAML nodes, without the noise of `oneOf` branches and `if`. */
function reportSchemaErrors(src: LoadedDoc, base: readonly PathSegment[], errors: readonly ErrorObject[], problems: Problems): void {
  const groups = errors.filter((e) => e.keyword === 'oneOf');
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'if') continue;
    if (groups.some((g) => g !== e && e.instancePath === g.instancePath && e.schemaPath.startsWith(`${g.schemaPath}/`))) continue;
    const path = [...base, ...pointer(e.instancePath)];
    const custom = (e.parentSchema as { 'x-message'?: string } | undefined)?.['x-message'];
    let message: string;
    let at = path;
    let key = false;
    switch (e.keyword) {
      case 'required': {
        at = [...path, (e.params as { missingProperty: string }).missingProperty];
        message = 'is required';
        break;
      }
      case 'additionalProperties': {
        at = [...path, (e.params as { additionalProperty: string }).additionalProperty];
        key = true;
        const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
        message = `is not a known field${allowed.length > 0 ? ` (known: ${allowed.join(', ')})` : ''}`;
        break;
      }
      case 'oneOf': {
        const names = ((e.schema as Array<{ required: string[] }>) ?? []).map((s) => s.required[0]!);
        const present = names.filter((n) => typeof e.data === 'object' && e.data !== null && n in e.data);
        message = `must have exactly one of ${names.join(', ')} (${present.length === 0 ? 'found none' : `found ${present.join(' and ')}`})`;
        break;
      }
      case 'enum':
        message = custom ?? `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      default:
        message = custom ?? e.message ?? 'is invalid';
    }
    const dedupe = `${fieldName(at)}\0${message}`;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    problems.at(src, at, message, { key });
  }
}

function pointer(instancePath: string): PathSegment[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

// ---------------------------------------------------------------------------------------------------------------
// Includes

type RawStep = Record<string, unknown>;

interface PlacedStep {
  raw: RawStep;
  src: LoadedDoc;
  /** Path of the step in its own document. */
  path: PathSegment[];
}

interface Loader {
  problems: Problems;
  /** Fragment files by normalized path; undefined when unreadable or invalid (already reported once). */
  fragments: Map<string, LoadedDoc | undefined>;
}

function loadFragment(file: string, loader: Loader): LoadedDoc | undefined | Error {
  if (loader.fragments.has(file)) return loader.fragments.get(file);
  let text: string;
  try {
    text = readText(file);
  } catch (err) {
    return err as Error;
  }
  const src = readDoc(file, text, loader.problems);
  if (src !== undefined && !validateFragment(src.value)) {
    reportSchemaErrors(src, [], validateFragment.errors ?? [], loader.problems);
    loader.fragments.set(file, undefined);
    return undefined;
  }
  loader.fragments.set(file, src);
  return src;
}

/** Inline `include:` steps, depth first; `chain` holds the `file#anchor`s being expanded, for cycle detection. */
function expand(steps: readonly unknown[], src: LoadedDoc, base: PathSegment[], chain: string[], loader: Loader, out: PlacedStep[]): void {
  steps.forEach((raw, i) => {
    const step = raw as RawStep;
    const path = [...base, i];
    if (typeof step.include !== 'string') {
      out.push({ raw: step, src, path });
      return;
    }
    const [ref = '', anchor = ''] = step.include.split('#');
    if (isAbsolute(ref)) {
      loader.problems.at(src, [...path, 'include'], 'must be a path relative to this file');
      return;
    }
    const file = normalize(join(dirname(src.file), ref));
    const link = `${file}#${anchor}`;
    const via = [...chain, link].join(' → ');
    if (chain.includes(link)) {
      loader.problems.at(src, [...path, 'include'], `include cycle: ${via}`);
      return;
    }
    const fragment = loadFragment(file, loader);
    if (fragment instanceof Error) {
      loader.problems.at(src, [...path, 'include'], `cannot read ${file} (${(fragment as NodeJS.ErrnoException).code ?? fragment.message}); include chain: ${via}`);
      return;
    }
    if (fragment === undefined) {
      loader.problems.at(src, [...path, 'include'], `${file} is not a valid fragment file (see the errors in it); include chain: ${via}`);
      return;
    }
    const lists = fragment.value as Record<string, unknown[]>;
    if (!Object.prototype.hasOwnProperty.call(lists, anchor)) {
      loader.problems.at(src, [...path, 'include'], `${file} has no "${anchor}" (it has ${Object.keys(lists).join(', ')}); include chain: ${via}`);
      return;
    }
    expand(lists[anchor]!, fragment, [anchor], [...chain, link], loader, out);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Semantic checks and defaults

/** Compiles every `${…}` in the strings of `value`, reporting each bad one at its node. */
function checkTemplates(value: unknown, src: LoadedDoc, path: PathSegment[], problems: Problems): void {
  if (typeof value === 'string') {
    try {
      parseTemplate(value);
    } catch (err) {
      if (!isExprError(err)) throw err;
      problems.at(src, path, `bad expression: ${err.details.reason} at column ${err.details.column} of the string`);
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkTemplates(v, src, [...path, i], problems));
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) checkTemplates(v, src, [...path, k], problems);
  }
}

/**
 * A `when`/`foreach` value as a bare expression: `${expr}` is unwrapped, booleans become `true`/`false`.
 * Returns undefined (after reporting) when it does not compile.
 */
function expression(value: unknown, src: LoadedDoc, path: PathSegment[], problems: Problems): string | undefined {
  if (typeof value === 'boolean') return String(value);
  let text = String(value);
  if (text.includes('${')) {
    let parts;
    try {
      parts = parseTemplate(text.trim());
    } catch (err) {
      if (!isExprError(err)) throw err;
      problems.at(src, path, `bad expression: ${err.details.reason} at column ${err.details.column}`);
      return undefined;
    }
    const only = parts[0];
    if (parts.length !== 1 || only?.kind !== 'expr') {
      problems.at(src, path, 'must be one expression (`bag.n > 3` or `${bag.n > 3}`), not text with ${…} inside');
      return undefined;
    }
    text = only.expr.source;
  }
  try {
    compileExpr(text);
    return text.trim();
  } catch (err) {
    if (!isExprError(err)) throw err;
    problems.at(src, path, `bad expression: ${err.details.reason} at column ${err.details.column}`);
    return undefined;
  }
}

function duration(value: unknown, src: LoadedDoc, path: PathSegment[], problems: Problems): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(value as string | number);
  } catch (err) {
    problems.at(src, path, (err as Error).message);
    return undefined;
  }
}

function retries(value: unknown, src: LoadedDoc, path: PathSegment[], problems: Problems): RetryPolicy {
  if (value === undefined) return { ...DEFAULT_RETRIES };
  if (typeof value === 'number') return { ...DEFAULT_RETRIES, max: value };
  const r = value as Record<string, unknown>;
  const policy: RetryPolicy = {
    max: (r.max as number | undefined) ?? DEFAULT_RETRIES.max,
    backoff: (r.backoff as RetryPolicy['backoff'] | undefined) ?? DEFAULT_RETRIES.backoff,
    initial: duration(r.initial, src, [...path, 'initial'], problems) ?? DEFAULT_RETRIES.initial,
    max_delay: duration(r.max_delay, src, [...path, 'max_delay'], problems) ?? DEFAULT_RETRIES.max_delay,
    jitter: (r.jitter as number | undefined) ?? DEFAULT_RETRIES.jitter,
  };
  if (policy.initial > policy.max_delay) problems.at(src, [...path, r.initial === undefined ? 'max_delay' : 'initial'], `initial delay (${policy.initial} ms) is longer than max_delay (${policy.max_delay} ms)`);
  return policy;
}

function targetOf(raw: RawStep): StepTarget {
  if (typeof raw.tool === 'string') return { kind: 'tool', tool: raw.tool };
  if (typeof raw.scenario === 'string') return { kind: 'scenario', scenario: raw.scenario };
  return { kind: 'action', action: raw.action as ActionName };
}

function defaultEffect(target: StepTarget): boolean {
  return target.kind === 'action' ? ACTION_ARGS[target.action].effect : true;
}

/** Checks the arguments of a built-in action whose values are literal (a `${…}` is checked when the step runs). */
function checkActionArgs(target: StepTarget, args: Record<string, unknown>, src: LoadedDoc, path: PathSegment[], problems: Problems): void {
  if (target.kind !== 'action') return;
  const spec = ACTION_ARGS[target.action];
  for (const name of spec.required) {
    if (!(name in args)) problems.at(src, [...path, 'with'], `${target.action} needs with.${name}`);
  }
  if (target.action === 'io.say' && !('text' in args) && !('message' in args)) problems.at(src, [...path, 'with'], 'io.say needs with.text or with.message');
  if (target.action === 'io.ask' && !('prompt' in args) && !('message' in args)) problems.at(src, [...path, 'with'], 'io.ask needs with.prompt or with.message');
  const literal = (v: unknown): v is string | number => (typeof v === 'string' && !v.includes('${')) || typeof v === 'number';
  if (target.action === 'io.ask' && args.expects !== undefined && !(typeof args.expects === 'string' && (args.expects.includes('${') || (ANSWER_KINDS as readonly string[]).includes(args.expects)))) {
    problems.at(src, [...path, 'with', 'expects'], `must be one of ${ANSWER_KINDS.join(', ')}`);
  }
  // The engine reads these timeouts as milliseconds only.
  if ((target.action === 'io.ask' || target.action === 'wait') && typeof args.timeout === 'string' && !args.timeout.includes('${')) {
    problems.at(src, [...path, 'with', 'timeout'], 'must be a number of milliseconds');
  }
  if (target.action === 'wait' && !('duration' in args) && !('event' in args)) problems.at(src, [...path, 'with'], 'wait needs with.duration or with.event');
  if (target.action === 'wait' && literal(args.duration)) duration(args.duration, src, [...path, 'with', 'duration'], problems);
  // `with` is interpolated before the step runs, so only a filter without ${…} is known now.
  if (target.action === 'wait' && typeof args.filter === 'string' && !args.filter.includes('${')) {
    try {
      compileExpr(args.filter);
    } catch (err) {
      if (!isExprError(err)) throw err;
      problems.at(src, [...path, 'with', 'filter'], `bad expression: ${err.details.reason} at column ${err.details.column}`);
    }
  }
  if (target.action === 'bus.publish' && typeof args.topic === 'string' && !args.topic.includes('${')) {
    const problem = topicProblem(args.topic);
    if (problem !== null) problems.at(src, [...path, 'with', 'topic'], problem);
  }
  if (target.action === 'scenario.run' && typeof args.id === 'string' && !args.id.includes('${') && !/^[a-z][a-z0-9_]{1,63}$/.test(args.id)) {
    problems.at(src, [...path, 'with', 'id'], `"${args.id}" is not a scenario id`);
  }
}

/** The fields shared by steps and compensations. */
function buildCommon(raw: RawStep, src: LoadedDoc, path: PathSegment[], problems: Problems): Omit<Step, 'name' | 'compensate' | 'foreach' | 'as'> {
  const target = targetOf(raw);
  const args = (raw.with as Record<string, unknown> | undefined) ?? {};
  checkTemplates(args, src, [...path, 'with'], problems);
  checkActionArgs(target, args, src, path, problems);
  const common: Omit<Step, 'name' | 'compensate' | 'foreach' | 'as'> = {
    target,
    with: args,
    retries: retries(raw.retries, src, [...path, 'retries'], problems),
    effect: typeof raw.effect === 'boolean' ? raw.effect : defaultEffect(target),
    locks: (raw.locks as string[] | undefined) ?? [],
    source: `${src.file}:${src.lines.linePos(locate(src.doc, path, false)?.range?.[0] ?? 0).line}`,
  };
  if (raw.when !== undefined) {
    const when = expression(raw.when, src, [...path, 'when'], problems);
    if (when !== undefined) common.when = when;
  }
  const timeout = duration(raw.timeout, src, [...path, 'timeout'], problems);
  if (timeout !== undefined) common.timeout = timeout;
  if (typeof raw.output === 'string') common.output = raw.output;
  return common;
}

function buildStep(placed: PlacedStep, problems: Problems): Step {
  const { raw, src, path } = placed;
  const step: Step = { name: raw.name as string, ...buildCommon(raw, src, path, problems) };
  if (raw.foreach !== undefined) {
    const foreach = expression(raw.foreach, src, [...path, 'foreach'], problems);
    if (foreach !== undefined) step.foreach = foreach;
    step.as = (raw.as as string | undefined) ?? 'item';
  } else if (raw.as !== undefined) {
    problems.at(src, [...path, 'as'], '"as" names the element of a "foreach"; this step has no foreach', { key: true });
  }
  if (raw.compensate !== undefined) {
    const cpath = [...path, 'compensate'];
    if (!step.effect) problems.at(src, cpath, 'only an effectful step can be compensated (this one has effect: false)', { key: true });
    const c = raw.compensate as RawStep;
    const compensation: NonNullable<Step['compensate']> = buildCommon(c, src, cpath, problems);
    if (typeof c.name === 'string') compensation.name = c.name;
    step.compensate = compensation;
  }
  return step;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points

/**
 * Parse, validate and resolve one scenario. `source` is the file's path: it names the file in messages and
 * `include:`s are read relative to it.
 * @throws TesseraError VALIDATION_FAILED listing every problem as `file:line:col field: message`.
 */
export function parseScenario(text: string, source: string): Scenario {
  const problems = new Problems();
  const src = readDoc(source, text, problems);
  if (src === undefined) fail(source, problems);
  if (!validateScenario(src.value)) {
    reportSchemaErrors(src, [], validateScenario.errors ?? [], problems);
    fail(source, problems);
  }
  const raw = src.value as Record<string, unknown>;

  const loader: Loader = { problems, fragments: new Map() };
  const placed: PlacedStep[] = [];
  expand(raw.steps as unknown[], src, ['steps'], [source], loader, placed);
  if (problems.size > 0) fail(source, problems);

  const firstByName = new Map<string, PlacedStep>();
  for (const p of placed) {
    const name = p.raw.name as string;
    const first = firstByName.get(name);
    if (first) {
      const line = first.src.lines.linePos(locate(first.src.doc, [...first.path, 'name'], false)?.range?.[0] ?? 0).line;
      problems.at(p.src, [...p.path, 'name'], `duplicate step name "${name}" (first at ${first.src.file}:${line})`);
    } else {
      firstByName.set(name, p);
    }
  }
  const steps = placed.map((p) => buildStep(p, problems));

  const scenario: Scenario = {
    id: raw.id as string,
    version: (raw.version as number | undefined) ?? 1,
    priority: (raw.priority as Priority | undefined) ?? 'NORM',
    pool: (raw.pool as 'cpu' | 'io' | undefined) ?? 'io',
    locks: (raw.locks as string[] | undefined) ?? [],
    steps,
    source,
  };
  if (typeof raw.description === 'string') scenario.description = raw.description;
  const timeout = duration(raw.timeout, src, ['timeout'], problems);
  if (timeout !== undefined) scenario.timeout = timeout;
  if (typeof raw.max_concurrent === 'number') scenario.max_concurrent = raw.max_concurrent;
  if (Array.isArray(raw.constraints) && raw.constraints.length > 0) scenario.constraints = [...(raw.constraints as string[])].sort();
  if (typeof raw.max_deliver === 'number') scenario.max_deliver = raw.max_deliver;
  if (Array.isArray(raw.permissions)) {
    scenario.permissions = [...(raw.permissions as string[])].sort();
    (raw.permissions as string[]).forEach((p, i) => {
      const problem = permissionProblem(p);
      if (problem !== null) problems.at(src, ['permissions', i], problem);
    });
  }
  if (Array.isArray(raw.pii)) scenario.pii = raw.pii as string[];
  if (raw.ctx_schema !== undefined) {
    if (!ajv.validateSchema(raw.ctx_schema as object)) {
      problems.at(src, ['ctx_schema'], `is not a valid JSON Schema: ${ajv.errorsText(ajv.errors, { dataVar: 'ctx_schema' })}`);
    }
    scenario.ctx_schema = raw.ctx_schema as Record<string, unknown>;
  }
  if (problems.size > 0) fail(source, problems);
  return scenario;
}

/** Read and parse one scenario file. @throws TesseraError VALIDATION_FAILED */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readText(path);
  } catch (err) {
    throw new TesseraError(ERROR_CODE, `${path}: cannot read the scenario file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      details: { file: path, errors: [] },
    });
  }
  return parseScenario(text, path);
}

/**
 * Load every `*.yaml`/`*.yml` directly in `dir` (not its subfolders, where fragments live), in name order.
 * A bad file, or a second file with an id already loaded, becomes an entry in `errors` and does not stop the others.
 */
export function loadScenarioDir(dir: string): { scenarios: Scenario[]; errors: Array<{ file: string; message: string }> } {
  const scenarios: Scenario[] = [];
  const errors: Array<{ file: string; message: string }> = [];
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    return { scenarios, errors: [{ file: dir, message: `cannot read the scenario folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` }] };
  }
  const byId = new Map<string, string>();
  for (const name of names) {
    const file = join(dir, name);
    try {
      const scenario = loadScenarioFile(file);
      const other = byId.get(scenario.id);
      if (other !== undefined) {
        errors.push({ file, message: `${file}: scenario id "${scenario.id}" is already defined by ${other}` });
        continue;
      }
      byId.set(scenario.id, file);
      scenarios.push(scenario);
    } catch (err) {
      errors.push({ file, message: err instanceof Error ? err.message : String(err) });
    }
  }
  return { scenarios, errors };
}
