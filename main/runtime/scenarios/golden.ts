/**
 * Golden scenario tests (seed 001 §13: `with io.stub("voice.stt", returns={"text":"Ада"}): run(...)`; issue 4 §9).
 * A case runs a scenario with stubs in a private, throwaway engine (its own SQLite file in a temporary folder,
 * its own journal and bus, no plugins, no sandbox): nothing it does reaches the device. The messages the run
 * sends — what it says (`io.say`), asks (`io.ask`, with the stubbed answer), publishes (`bus.publish`) and the
 * tools it calls — are its transcript, compared with a golden file by `tessera scenario test`
 * (main/host/cli-scenarios.ts).
 *
 * ```yaml
 * scenario: greet_on_boot        # optional: the cases belong to this scenario
 * cases:
 *   - name: asks for the name and greets with it
 *     ctx: {}
 *     stubs:
 *       voice.stt: {returns: {text: Ада}}              # answers every io.ask
 *       tool.tool-weather: {sequence: [{…}, {…}]}       # answers successive calls, in order
 *       event.door.opened: {returns: {payload: {…}}}   # a `wait: {event}` step gets this event
 *       tool.printer: {error: paper jam}                # the call fails with this message
 *     golden: golden/greets.json   # optional; default __golden__/<scenario>/<case>.json beside the cases
 * ```
 *
 * Stub keys: `voice.stt` (io.ask answers: an object with `text`, or a string), `tool.<plugin>`,
 * `event.<topic>`. A tool call, io.ask or event wait without a stub fails its step with a message that says
 * which stub is missing. Duration waits end at once. `memory.set`, `log` and sub-scenarios run for real inside
 * the private engine (sub-scenarios' messages are part of the transcript).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import { createBus } from '../bus/index.js';
import { createJournal } from '../journal/index.js';
import { createMemoryLogger } from '../log/index.js';
import { createMemory } from '../memory/index.js';
import { openStore } from '../store/index.js';
import { parseYaml } from '../intents/rules.js';
import { createScenarioEngine } from './engine.js';
import type { RunState, StubCall } from './engine.js';
import { scenarioExpressions } from './expressions.js';
import type { Scenario } from './model.js';
import { loadMessageCatalogue } from '../io/messages.js';
import type { MessageCatalogue } from '../io/messages.js';

let shipped: MessageCatalogue | undefined;
/** The app's message catalogue: a case's io.say / io.ask `message` is recorded in the words a traveller hears. */
const catalogue = () => (shipped ??= loadMessageCatalogue());

/** How a stub answers: the same value every time, successive values, or a failure. */
export type StubSpec = { returns: unknown } | { sequence: unknown[] } | { error: string };

export interface ScenarioCase {
  name: string;
  ctx: Record<string, unknown>;
  stubs: Record<string, StubSpec>;
  /** The golden file, absolute. */
  golden: string;
  /** `file:line` of the case. */
  source: string;
}

export interface ScenarioCaseFile {
  file: string;
  scenario?: string;
  cases: ScenarioCase[];
}

/** One message a run sent, in order. */
export type TranscriptMessage =
  | { say: string; channel?: unknown }
  | { ask: string; answer: unknown }
  | { publish: string; payload: unknown }
  | { tool: string; args: unknown };

/** What a case produced: compared with the golden file as pretty JSON. */
export interface Transcript {
  scenario: string;
  case: string;
  state: RunState;
  /** The run's error code when it did not complete (messages can carry run ids, so only the code). */
  error?: string;
  messages: TranscriptMessage[];
}

const STUB_KEY = /^(voice\.stt|tool\.[A-Za-z0-9][A-Za-z0-9_.-]{0,99}|event\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_*-]+)*)$/;
const CASE_NAME_MAX = 200;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A case name as a file name: lowercase words joined by dashes. */
export const caseSlug = (name: string) => name.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'case';

/** Parse a case file; errors are VALIDATION_FAILED naming `file:line:col` and the field. */
export function parseScenarioCases(text: string, file = '<cases>', defaultScenario?: string): ScenarioCaseFile {
  const { data, locator } = parseYaml(text, file);
  const fail = (path: Array<string | number>, reason: string): never => {
    const { line, column } = locator.at(path);
    throw new TesseraError('VALIDATION_FAILED', `${file}${line > 0 ? `:${line}:${column}` : ''}: ${reason}`, { details: { file, line, column } });
  };
  if (!isRecord(data)) return fail([], 'a case file must be a mapping with cases:');
  for (const key of Object.keys(data)) if (key !== 'scenario' && key !== 'cases') fail([key], `unknown key "${key}"; expected scenario, cases`);
  const scenario = data['scenario'];
  if (scenario !== undefined && (typeof scenario !== 'string' || scenario === '')) fail(['scenario'], 'scenario must be a scenario id');
  const list = data['cases'];
  if (!Array.isArray(list) || list.length === 0) return fail(['cases'], 'cases must be a non-empty list');
  const scenarioId = (scenario as string | undefined) ?? defaultScenario ?? 'scenario';
  const dir = dirname(resolve(file));
  const seen = new Set<string>();
  const cases = list.map((raw, i): ScenarioCase => {
    const at = (...rest: Array<string | number>) => ['cases', i, ...rest];
    if (!isRecord(raw)) return fail(at(), `cases[${i}] must be a mapping with name, ctx?, stubs?, golden?`);
    for (const key of Object.keys(raw)) if (!['name', 'ctx', 'stubs', 'golden'].includes(key)) fail(at(key), `cases[${i}]: unknown key "${key}"; expected name, ctx, stubs, golden`);
    const name = raw['name'];
    if (typeof name !== 'string' || name.trim() === '' || name.length > CASE_NAME_MAX) return fail(at('name'), `cases[${i}].name must be a text of 1–${CASE_NAME_MAX} characters`);
    if (seen.has(name)) fail(at('name'), `cases[${i}].name "${name}" is used twice; names pick the golden file, so they must differ`);
    seen.add(name);
    const ctx = raw['ctx'] ?? {};
    if (!isRecord(ctx)) fail(at('ctx'), `cases[${i}].ctx must be a mapping`);
    const stubsRaw = raw['stubs'] ?? {};
    if (!isRecord(stubsRaw)) fail(at('stubs'), `cases[${i}].stubs must be a mapping of stub name to {returns | sequence | error}`);
    const stubs: Record<string, StubSpec> = {};
    for (const [key, spec] of Object.entries(stubsRaw as Record<string, unknown>)) {
      if (!STUB_KEY.test(key)) fail(at('stubs', key), `cases[${i}].stubs: "${key}" is not a stub name; use voice.stt, tool.<plugin> or event.<topic>`);
      const kinds = isRecord(spec) ? Object.keys(spec) : [];
      if (!isRecord(spec) || kinds.length !== 1 || !['returns', 'sequence', 'error'].includes(kinds[0]!)) {
        fail(at('stubs', key), `cases[${i}].stubs.${key} must have exactly one of returns, sequence (a list) or error (a message)`);
      }
      const s = spec as Record<string, unknown>;
      if ('sequence' in s && (!Array.isArray(s['sequence']) || s['sequence'].length === 0)) fail(at('stubs', key, 'sequence'), `cases[${i}].stubs.${key}.sequence must be a non-empty list`);
      if ('error' in s && (typeof s['error'] !== 'string' || s['error'] === '')) fail(at('stubs', key, 'error'), `cases[${i}].stubs.${key}.error must be a message`);
      stubs[key] = s as StubSpec;
    }
    const golden = raw['golden'];
    if (golden !== undefined && (typeof golden !== 'string' || !/\.json$/.test(golden))) fail(at('golden'), `cases[${i}].golden must be a path ending in .json`);
    return {
      name,
      ctx: ctx as Record<string, unknown>,
      stubs,
      golden: golden === undefined ? join(dir, '__golden__', scenarioId, `${caseSlug(name)}.json`) : resolve(dir, golden as string),
      source: `${file}:${locator.at(at()).line}`,
    };
  });
  return { file, ...(typeof scenario === 'string' ? { scenario } : {}), cases };
}

/** Read and parse a case file (see parseScenarioCases). */
export function loadScenarioCases(path: string, defaultScenario?: string): ScenarioCaseFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TesseraError('VALIDATION_FAILED', `${path}: cannot read the case file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseScenarioCases(text, path, defaultScenario);
}

/** Answers stubbed calls for one case and records the messages, in order. */
function stubsFor(c: ScenarioCase, messages: TranscriptMessage[]): (call: StubCall) => { value: unknown } | undefined {
  const used = new Map<string, number>();
  const answer = (key: string, what: string): unknown => {
    const spec = c.stubs[key];
    if (!spec) throw new TesseraError('VALIDATION_FAILED', `${what} has no stub in case "${c.name}"; add stubs: {${key}: {returns: …}}`);
    const n = used.get(key) ?? 0;
    used.set(key, n + 1);
    if ('error' in spec) throw new TesseraError('STEP_FAILED', spec.error);
    if ('returns' in spec) return spec.returns;
    if (n >= spec.sequence.length) throw new TesseraError('VALIDATION_FAILED', `${key} was called ${n + 1} times but its sequence has ${spec.sequence.length} answers (case "${c.name}")`);
    return spec.sequence[n];
  };
  return ({ target, input }) => {
    if (target.kind === 'tool') {
      messages.push({ tool: target.tool, args: input });
      return { value: answer(`tool.${target.tool}`, `tool ${target.tool}`) };
    }
    if (target.kind !== 'action') return undefined;
    switch (target.action) {
      case 'io.say':
        messages.push(input['channel'] === undefined ? { say: String(input['text'] ?? '') } : { say: String(input['text'] ?? ''), channel: input['channel'] });
        return { value: null };
      case 'io.ask': {
        const prompt = String(input['prompt'] ?? '');
        const reply = answer('voice.stt', `io.ask "${prompt}"`);
        const text = isRecord(reply) ? (reply['text'] ?? null) : reply;
        messages.push({ ask: prompt, answer: text });
        return { value: text };
      }
      case 'bus.publish':
        messages.push({ publish: String(input['topic'] ?? ''), payload: input['payload'] ?? null });
        return { value: null };
      case 'wait': {
        if (typeof input['event'] !== 'string') return { value: { waited_ms: 0 } };
        const event = answer(`event.${input['event']}`, `wait for ${input['event']}`);
        return { value: { topic: input['event'], ...(isRecord(event) ? event : { payload: event }) } };
      }
      default:
        return undefined;
    }
  };
}

/**
 * Run one case against `scenarios` (the scenario under test and any it calls) in a private engine, and return
 * its transcript. The private store lives in a temporary folder removed afterwards.
 */
export async function runScenarioCase(scenarios: readonly Scenario[], scenarioId: string, c: ScenarioCase, options: { timeoutMs?: number } = {}): Promise<Transcript> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-golden-'));
  const logger = createMemoryLogger();
  const store = openStore({ path: join(dir, 'golden.db'), logger });
  const messages: TranscriptMessage[] = [];
  try {
    const journal = createJournal({ store });
    const bus = createBus({ journal, logger });
    const memory = createMemory({ store, bus });
    const engine = createScenarioEngine({ store, bus, journal, logger, memory, expressions: scenarioExpressions, stub: stubsFor(c, messages), messages: catalogue() });
    try {
      for (const s of scenarios) engine.register(s);
      let runId: string;
      try {
        runId = engine.run(scenarioId, c.ctx, { force: true });
      } catch (err) {
        if (!isTesseraError(err)) throw err;
        throw new TesseraError(err.code, `Case "${c.name}" (${c.source}): ${err.message}`, { cause: err });
      }
      const done = await engine.wait(runId, options.timeoutMs ?? 30_000).catch((err: unknown) => {
        if (isTesseraError(err) && err.code === 'STEP_TIMEOUT') throw new TesseraError('STEP_TIMEOUT', `Case "${c.name}" did not finish within ${options.timeoutMs ?? 30_000} ms (a step waiting for something no stub answers?).`);
        throw err;
      });
      return { scenario: scenarioId, case: c.name, state: done.state, ...(done.error ? { error: done.error.code } : {}), messages };
    } finally {
      await engine.dispose();
    }
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The transcript as the golden file holds it: pretty JSON with a final newline. */
export const goldenText = (t: Transcript) => JSON.stringify(t, null, 2) + '\n';

/**
 * A line diff of `expected` and `actual` (longest common subsequence): unchanged lines start with two spaces,
 * removed ones with `- `, added ones with `+ `. Only changed lines and `context` lines around them are kept.
 */
export function diffLines(expected: string, actual: string, context = 2): string[] {
  const a = expected.replace(/\n$/, '').split('\n');
  const b = actual.replace(/\n$/, '').split('\n');
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: Array<{ mark: ' ' | '-' | '+'; line: string }> = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push({ mark: ' ', line: a[i++]! });
      j++;
    } else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push({ mark: '-', line: a[i++]! });
    else out.push({ mark: '+', line: b[j++]! });
  }
  if (out.every((o) => o.mark === ' ')) return [];
  const keep = out.map((_, k) => out.slice(Math.max(0, k - context), k + context + 1).some((x) => x.mark !== ' '));
  const lines: string[] = [];
  out.forEach((o, k) => {
    if (keep[k]) lines.push(`${o.mark} ${o.line}`);
    else if (k === 0 || keep[k - 1]) lines.push('  …');
  });
  return lines;
}
