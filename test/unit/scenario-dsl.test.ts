import Ajv from 'ajv';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isTesseraError } from '../../main/common/errors.js';
import { evaluateExpr, interpolate } from '../../main/common/expr.js';
import { DEFAULT_RETRIES, loadScenarioDir, loadScenarioFile, MAX_SCENARIO_FILE_BYTES, parseDuration, parseScenario } from '../../main/runtime/scenarios/dsl.js';
import type { Scenario } from '../../main/runtime/scenarios/model.js';
import scenarioSchema from '../../resources/schema/scenario.schema.json' with { type: 'json' };

/** The code every scenario-loading error carries. */
const SCENARIO_ERROR_CODE = 'SCENARIO_INVALID';
const SHIPPED = join(import.meta.dirname, '..', '..', 'resources', 'scenarios');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temporary folder with the given files (paths relative to it). */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-dsl-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** The lines of the error thrown by `f`, checked to be a scenario error. */
function problems(f: () => unknown): string[] {
  try {
    f();
  } catch (err) {
    expect(isTesseraError(err)).toBe(true);
    if (!isTesseraError(err)) throw err;
    expect(err.code).toBe(SCENARIO_ERROR_CODE);
    return err.message.split('\n');
  }
  throw new Error('expected the scenario to be refused');
}

const lines = (...ls: string[]): string => `${ls.join('\n')}\n`;

describe('scenario DSL: the shipped scenarios', () => {
  it('loads every scenario in resources/scenarios without an error', () => {
    const { scenarios, errors } = loadScenarioDir(SHIPPED);
    expect(errors).toEqual([]);
    expect(scenarios.map((s) => s.id)).toEqual(['greet_on_boot', 'journey_buy_pass', 'journey_done', 'journey_hours', 'journey_next_step', 'journey_route', 'journey_skip', 'journey_ticket', 'play_music', 'redeem_entitlement', 'set_timer', 'weather_day', 'weather_now']);
  });

  const byId = (id: string): Scenario => loadScenarioFile(join(SHIPPED, `${id}.yaml`));

  it('inlines the ask_name fragment at the top of greet_on_boot, keeping its step names and sources', () => {
    const s = byId('greet_on_boot');
    expect(s.steps.map((x) => x.name)).toEqual(['ask_name', 'remember_name', 'greet', 'announce_online']);
    expect(s.steps[0]).toMatchObject({ target: { kind: 'action', action: 'io.ask' }, when: '!ctx.user_name', output: 'answer', locks: ['mic'], timeout: 30_000 });
    expect(s.steps[0]!.source).toMatch(/fragments[/\\]common\.yaml:\d+$/);
    expect(s.steps[1]).toMatchObject({ target: { kind: 'action', action: 'memory.set' }, effect: true });
    expect(s.steps[2]!.source).toMatch(/greet_on_boot\.yaml:\d+$/);
    expect(s).toMatchObject({ priority: 'NORM', pool: 'io', timeout: 120_000, max_concurrent: 1, version: 1 });
  });

  it('greets by the remembered name, or by the answer, when its expressions are evaluated', () => {
    const greet = byId('greet_on_boot').steps.find((x) => x.name === 'greet')!;
    expect(interpolate(greet.with, { ctx: { user_name: 'Ada' }, bag: {} })).toEqual({ message: 'greet.hello', params: { name: 'Ada' } });
    expect(interpolate(greet.with, { ctx: {}, bag: { answer: ' Grace ' } })).toEqual({ message: 'greet.hello', params: { name: 'Grace' } });
    expect(interpolate(greet.with, { ctx: {}, bag: { answer: '  ' } })).toEqual({ message: 'greet.hello_friend', params: { name: '' } });
    const ask = byId('greet_on_boot').steps[0]!;
    expect(evaluateExpr(ask.when!, { ctx: { user_name: 'Ada' }, bag: {} })).toBe(false);
  });

  it('calls tool-weather with ctx.city and the language, and retries with exponential backoff', () => {
    const s = byId('weather_now');
    const fetch = s.steps.find((x) => x.name === 'fetch_weather')!;
    expect(fetch.target).toEqual({ kind: 'tool', tool: 'tool-weather' });
    expect(fetch.retries).toEqual({ max: 2, backoff: 'exponential', initial: 1000, max_delay: 4000, jitter: 0.2 });
    expect(fetch.effect).toBe(true);
    expect(interpolate(fetch.with, { ctx: { city: ' Lviv ' }, bag: {} })).toEqual({ city: 'Lviv', language: 'en' });
    expect(interpolate(fetch.with, { ctx: { language: 'ru' }, bag: { asked_city: 'Lviv ' } })).toEqual({ city: 'Lviv', language: 'ru' });
    const say = interpolate(s.steps.find((x) => x.name === 'say_weather')!.with, { ctx: {}, bag: { weather: { city: 'Lviv', current: { summary: 'clear', temp_c: 21.6 } } } });
    expect(say).toEqual({ message: 'weather.now', params: { city: 'Lviv', summary: 'clear', temp: 22 } });
  });

  it('asks tool-weather for the day weather_day was given, today by default, and words an offline answer with its age', () => {
    const s = byId('weather_day');
    const fetch = s.steps.find((x) => x.name === 'fetch_forecast')!;
    expect(interpolate(fetch.with, { ctx: { city: 'paris', day: 'tomorrow', language: 'ru' }, bag: {} })).toEqual({ city: 'paris', day: 'tomorrow', language: 'ru' });
    expect(interpolate(fetch.with, { ctx: { city: 'paris' }, bag: {} })).toEqual({ city: 'paris', day: 'today', language: 'en' });
    const say = s.steps.find((x) => x.name === 'say_forecast')!.with;
    const forecast = { status: 'ok', city: 'paris', day: 'tomorrow', summary: 'rain', temp_min_c: 4.2, temp_max_c: 9.6, precipitation_probability_max: null, offline: true, age_minutes: 185, age_hours: 3, age_days: 0 };
    expect(interpolate(say, { ctx: {}, bag: { forecast } })).toEqual({ message: 'weather.day_offline', params: { city: 'paris', day: 'tomorrow', summary: 'rain', min: 4, max: 10, has_chance: 0, chance: 0, age_minutes: 185, age_hours: 3, age_days: 0 } });
    expect(interpolate(say, { ctx: {}, bag: { forecast: { ...forecast, offline: false, precipitation_probability_max: 85 } } })).toMatchObject({ message: 'weather.day', params: { has_chance: 1, chance: 85 } });
  });

  it('gives the redemption in redeem_entitlement a compensation', () => {
    const redeem = byId('redeem_entitlement').steps[0]!;
    expect(redeem.effect).toBe(true);
    expect(redeem.compensate).toMatchObject({ name: 'revert_redemption', target: { kind: 'tool', tool: 'tool-entitlements' }, retries: { ...DEFAULT_RETRIES, max: 5 } });
    expect(redeem.retries).toMatchObject({ max: 2, backoff: 'fixed', initial: 1000 });
  });

  it('waits in set_timer with an effect-free wait step', () => {
    const s = byId('set_timer');
    const wait = s.steps.find((x) => x.target.kind === 'action' && x.target.action === 'wait')!;
    expect(wait.effect).toBe(false);
    expect(interpolate(wait.with, { ctx: { duration: '5m' } })).toEqual({ duration: '5m' });
    expect(s.timeout).toBe(25 * 3_600_000);
  });

  it('advances journey_next_step with memory.set and bus.publish', () => {
    const s = byId('journey_next_step');
    const ctx = { journey: 'tour', steps: ['Lobby', 'Hall', 'Garden'], step: 1 };
    const present = s.steps.find((x) => x.name === 'present_step')!;
    expect(evaluateExpr(present.when!, { ctx })).toBe(true);
    expect(interpolate(present.with, { ctx })).toEqual({ message: 'journey.step', params: { n: 2, total: 3, text: 'Hall' } });
    expect(interpolate(s.steps.find((x) => x.name === 'remember_progress')!.with, { ctx })).toEqual({ key: 'journey.tour.step', value: 2 });
    expect(interpolate(s.steps.find((x) => x.name === 'publish_progress')!.with, { ctx })).toEqual({
      topic: 'journey.progress',
      payload: { journey: 'tour', completed: 2, total: 3, done: false },
    });
  });
});

describe('scenario DSL: the model it produces', () => {
  it('fills in the defaults: version 1, NORM, io, no locks, no retries, effect by target', () => {
    const s = parseScenario(
      lines(
        'id: minimal',
        'steps:',
        '  - {name: say, action: io.say, with: {text: hi}}',
        '  - {name: pause, action: wait, with: {duration: 250ms}}',
        '  - {name: note, action: log, with: {message: m}}',
        '  - {name: call, tool: tool-weather}',
        '  - {name: sub, scenario: weather_now}',
        '  - {name: pub, action: bus.publish, with: {topic: a.b}}',
        '  - {name: start, action: scenario.run, with: {id: set_timer}}',
        '  - {name: remember, action: memory.set, with: {key: k, value: 1}}',
        '  - {name: ask, action: io.ask, with: {prompt: p}}',
        '  - {name: quiet, tool: tool-weather, effect: false}',
      ),
      'minimal.yaml',
    );
    expect(s).toMatchObject({ id: 'minimal', version: 1, priority: 'NORM', pool: 'io', locks: [], source: 'minimal.yaml' });
    expect(s.timeout).toBeUndefined();
    expect(s.steps[0]).toEqual({
      name: 'say',
      target: { kind: 'action', action: 'io.say' },
      with: { text: 'hi' },
      retries: { max: 0, backoff: 'exponential', initial: 200, max_delay: 30_000, jitter: 0 },
      effect: true,
      locks: [],
      source: 'minimal.yaml:3',
    });
    expect(Object.fromEntries(s.steps.map((x) => [x.name, x.effect]))).toEqual({
      say: true,
      pause: false,
      note: false,
      call: true,
      sub: true,
      pub: true,
      start: true,
      remember: true,
      ask: true,
      quiet: false,
    });
    expect(s.steps[3]!.target).toEqual({ kind: 'tool', tool: 'tool-weather' });
    expect(s.steps[4]!.target).toEqual({ kind: 'scenario', scenario: 'weather_now' });
  });

  it('reads every scenario-level and step-level field', () => {
    const s = parseScenario(
      lines(
        'id: full',
        'version: 3',
        'description: All fields.',
        'priority: HIGH',
        'timeout: 1h30m',
        'max_concurrent: 2',
        'pool: cpu',
        'locks: [mic]',
        'ctx_schema: {type: object, properties: {items: {type: array}}}',
        'steps:',
        '  - name: each',
        '    tool: tool-x@^1.0.0',
        '    foreach: ${ctx.items}',
        '    as: it',
        '    when: "${len(ctx.items) > 0}"',
        '    with: {value: "${it}"}',
        '    retries: {max: 2, backoff: fixed, initial: 1s, max_delay: 2s, jitter: 0.5}',
        '    timeout: 5s',
        '    locks: [tts, mic]',
        '    output: results',
        '    compensate: {action: log, with: {message: "undo ${bag.results}"}}',
        '  - name: shorthand',
        '    action: log',
        '    with: {message: x}',
        '    retries: 4',
        '    when: true',
        '    foreach: "[1, 2]"',
      ),
      'full.yaml',
    );
    expect(s).toMatchObject({ version: 3, description: 'All fields.', priority: 'HIGH', timeout: 5_400_000, max_concurrent: 2, pool: 'cpu', locks: ['mic'] });
    expect(s.ctx_schema).toEqual({ type: 'object', properties: { items: { type: 'array' } } });
    expect(s.steps[0]).toMatchObject({
      foreach: 'ctx.items',
      as: 'it',
      when: 'len(ctx.items) > 0',
      retries: { max: 2, backoff: 'fixed', initial: 1000, max_delay: 2000, jitter: 0.5 },
      timeout: 5000,
      locks: ['tts', 'mic'],
      output: 'results',
      compensate: { target: { kind: 'action', action: 'log' }, with: { message: 'undo ${bag.results}' }, effect: false, source: 'full.yaml:21' },
    });
    expect(s.steps[1]).toMatchObject({ retries: { ...DEFAULT_RETRIES, max: 4 }, when: 'true', foreach: '[1, 2]', as: 'item' });
  });

  it('parses durations: 250ms, 5s, 2m, 1h, 1h30m, decimals and plain milliseconds', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1m30s500ms')).toBe(90_500);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration(750)).toBe(750);
    expect(parseDuration('750')).toBe(750);
    for (const bad of ['', 'ms', '5x', '5 s', '1s1h', '-5s', '5mm', '1h1h']) {
      expect(() => parseDuration(bad), bad).toThrow(/is not a duration/);
    }
    expect(() => parseDuration(-1)).toThrow(/is not a duration/);
    expect(() => parseDuration(Number.NaN)).toThrow(/is not a duration/);
  });
});

describe('scenario DSL: errors point at the file, line, column and field', () => {
  it('reports a type error inside a step as file:line:col field: message', () => {
    const text = lines(
      'id: greet', // 1
      'steps:', // 2
      '  - name: one', // 3
      '    action: io.say', // 4
      '    with: {text: hi}', // 5
      '  - name: two', // 6
      '    action: log', // 7
      '    with: {message: m}', // 8
      '  - name: three', // 9
      '    action: io.say', // 10
      '    with: {text: x}', // 11
      '    retries: {max: 1.5}', // 12
    );
    expect(problems(() => parseScenario(text, 'greet.yaml'))).toEqual(['greet.yaml:12:20 steps[2].retries.max: must be integer']);
  });

  it('reports every schema problem, each at its node, in line order', () => {
    const text = lines(
      'id: Bad-Id', // 1
      'priority: URGENT', // 2
      'steps:', // 3
      '  - name: a', // 4
      '    action: io.shout', // 5
      '    retry: 1', // 6
      '  - name: b', // 7
      '    action: wait', // 8
      '    tool: tool-weather', // 9
      '  - action: log', // 10
      '  - include: ./f.yaml#x', // 11
      '    name: extra', // 12
      '  - name: d', // 13
      '    action: log', // 14
      '    timeout: 5 minutes', // 15
      '    locks: [tts, tts]', // 16
    );
    expect(problems(() => parseScenario(text, 's.yaml'))).toEqual([
      's.yaml:1:5 id: must be 2-64 lowercase letters, digits or "_", starting with a letter',
      's.yaml:2:11 priority: must be one of "LOW", "NORM", "HIGH"',
      's.yaml:5:13 steps[0].action: must be one of "io.say", "io.ask", "memory.set", "bus.publish", "scenario.run", "wait", "log"',
      's.yaml:6:5 steps[0].retry: is not a known field (known: name, action, tool, scenario, include, with, when, foreach, as, retries, timeout, effect, compensate, locks, output)',
      's.yaml:7:5 steps[1]: must have exactly one of action, tool, scenario, include (found action and tool)',
      's.yaml:10:5 steps[2].name: is required',
      's.yaml:11:5 steps[3]: an include step has no other fields: the included steps carry their own',
      's.yaml:15:14 steps[4].timeout: must be a duration: 250ms, 5s, 2m, 1h, 1h30m, or a number of milliseconds',
      's.yaml:16:12 steps[4].locks: must NOT have duplicate items (items ## 1 and 0 are identical)',
    ]);
  });

  it('reports a step with none of action, tool, scenario, include', () => {
    expect(problems(() => parseScenario(lines('id: x1', 'steps:', '  - name: a', '    with: {}'), 'x.yaml'))).toEqual([
      'x.yaml:3:5 steps[0]: must have exactly one of action, tool, scenario, include (found none)',
    ]);
  });

  it('reports missing top-level fields at the document', () => {
    expect(problems(() => parseScenario('description: nothing else\n', 'empty.yaml'))).toEqual(['empty.yaml:1:1 id: is required', 'empty.yaml:1:1 steps: is required']);
    expect(problems(() => parseScenario('- just a list\n', 'list.yaml'))).toEqual(['list.yaml:1:1: must be object']);
  });

  it('reports YAML syntax errors with their line and column', () => {
    const [first] = problems(() => parseScenario(lines('id: x1', 'steps:', '  - name: a', '    with: {text: "unterminated'), 'y.yaml'));
    expect(first).toBe('y.yaml:5:1: YAML: Missing closing "quote');
    expect(problems(() => parseScenario(lines('id: x1', 'id: x2', 'steps: []'), 'dup.yaml'))[0]).toMatch(/^dup\.yaml:2:1: YAML: Map keys must be unique/);
  });

  it('refuses YAML alias bombs', () => {
    const bomb = lines('a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'id: bomb', 'steps: [*c]');
    expect(problems(() => parseScenario(bomb, 'bomb.yaml'))[0]).toMatch(/^bomb\.yaml:1:1: YAML: .*alias/i);
  });

  it('reports duplicate step names at the second one, naming the first', () => {
    const text = lines('id: dup', 'steps:', '  - name: same', '    action: log', '    with: {message: a}', '  - name: same', '    action: log', '    with: {message: b}');
    expect(problems(() => parseScenario(text, 'dup.yaml'))).toEqual(['dup.yaml:6:11 steps[1].name: duplicate step name "same" (first at dup.yaml:3)']);
  });

  it('allows "as" only with "foreach"', () => {
    const text = lines('id: as_only', 'steps:', '  - name: a', '    action: log', '    as: it', '    with: {message: x}');
    expect(problems(() => parseScenario(text, 'as.yaml'))).toEqual(['as.yaml:5:5 steps[0].as: "as" names the element of a "foreach"; this step has no foreach']);
  });

  it('compiles every ${…} in with, and every when and foreach, reporting the expression column', () => {
    const text = lines(
      'id: exprs', // 1
      'steps:', // 2
      '  - name: a', // 3
      '    action: io.say', // 4
      '    with:', // 5
      '      text: "Hi ${ctx.name +}"', // 6
      '      nested: [ok, "${ctx.constructor}"]', // 7
      '    when: ctx.a ===', // 8
      '    foreach: "${ctx.list"', // 9
      '  - name: b', // 10
      '    action: log', // 11
      '    with: {message: "$${not an expression}"}', // 12
      '    when: "a ${b}"', // 13
    );
    expect(problems(() => parseScenario(text, 'e.yaml'))).toEqual([
      'e.yaml:6:13 steps[0].with.text: bad expression: unexpected end of expression at column 16 of the string',
      'e.yaml:7:20 steps[0].with.nested[1]: bad expression: "constructor" is not accessible at column 7 of the string',
      'e.yaml:8:11 steps[0].when: bad expression: "===" is not an operator; use "==" (it never coerces) at column 7',
      'e.yaml:9:14 steps[0].foreach: bad expression: unterminated "${": missing "}" at column 1',
      'e.yaml:13:11 steps[1].when: must be one expression (`bag.n > 3` or `${bag.n > 3}`), not text with ${…} inside',
    ]);
  });

  it('checks literal durations, retry delays, and the required arguments of built-in actions', () => {
    const text = lines(
      'id: args', // 1
      'timeout: 5 sec', // 2
      'steps:', // 3
      '  - name: a', // 4
      '    action: wait', // 5
      '    with: {duration: soon}', // 6
      '  - name: b', // 7
      '    action: io.say', // 8
      '    with: {txt: hi}', // 9
      '  - name: c', // 10
      '    action: bus.publish', // 11
      '    with: {topic: "bad topic"}', // 12
      '  - name: d', // 13
      '    tool: t', // 14
      '    retries: {initial: 10s, max_delay: 1s}', // 15
      '  - name: e', // 16
      '    action: wait', // 17
      '    with: {duration: "${ctx.d}"}', // 18
      '  - name: f', // 19
      '    action: wait', // 20
      '    with: {event: io.answer, filter: "$.payload ==", timeout: 5s}', // 21
      '  - name: g', // 22
      '    action: wait', // 23
      '    with: {event: io.answer, filter: "$.payload.run == \'${run.id}\'", timeout: 5000}', // 24
      '  - name: h', // 25
      '    action: wait', // 26
      '    with: {}', // 27
    );
    expect(problems(() => parseScenario(text, 'a.yaml'))).toEqual(['a.yaml:2:10 timeout: must be a duration: 250ms, 5s, 2m, 1h, 1h30m, or a number of milliseconds']);
    const fixed = text.replace('timeout: 5 sec', 'timeout: 5s');
    expect(problems(() => parseScenario(fixed, 'a.yaml'))).toEqual([
      'a.yaml:6:22 steps[0].with.duration: "soon" is not a duration: use 250ms, 5s, 2m, 1h, 1h30m, or a number of milliseconds',
      'a.yaml:9:11 steps[1].with: io.say needs with.text or with.message',
      'a.yaml:12:19 steps[2].with.topic: "bad topic" is not a topic: segments are letters, digits, "_" or "-", separated by single dots',
      'a.yaml:15:24 steps[3].retries.initial: initial delay (10000 ms) is longer than max_delay (1000 ms)',
      'a.yaml:21:38 steps[5].with.filter: bad expression: unexpected end of expression at column 13',
      'a.yaml:21:63 steps[5].with.timeout: must be a number of milliseconds',
      'a.yaml:27:11 steps[7].with: wait needs with.duration or with.event',
    ]);
  });

  it('checks what an io.ask expects (issue 15): a kind the I/O router knows, or an expression', () => {
    const text = lines('id: ask_q', 'steps:', '  - name: a', '    action: io.ask', '    with: {prompt: "Name?", expects: surname}', '  - name: b', '    action: io.ask', '    with: {prompt: "City?", expects: city}', '  - name: c', '    action: io.ask', '    with: {prompt: "X?", expects: "${ctx.kind}"}');
    expect(problems(() => parseScenario(text, 'q.yaml'))).toEqual(['q.yaml:5:38 steps[0].with.expects: must be one of name, city, place, yes_no, number, free_text']);
  });

  it('allows compensate only on effectful steps', () => {
    const text = lines('id: comp', 'steps:', '  - name: a', '    action: log', '    with: {message: m}', '    compensate: {action: log, with: {message: undo}}');
    expect(problems(() => parseScenario(text, 'c.yaml'))).toEqual(['c.yaml:6:5 steps[0].compensate: only an effectful step can be compensated (this one has effect: false)']);
  });

  it('checks that ctx_schema is a JSON Schema', () => {
    const text = lines('id: ctxs', 'ctx_schema: {type: thing}', 'steps: [{name: a, action: log, with: {message: m}}]');
    expect(problems(() => parseScenario(text, 'ctx.yaml'))[0]).toMatch(/^ctx\.yaml:2:13 ctx_schema: is not a valid JSON Schema: /);
  });
});

describe('scenario DSL: include', () => {
  const fragment = lines(
    'ask_name:', // 1
    '  - name: ask', // 2
    '    action: io.ask', // 3
    '    with: {prompt: "Name?"}', // 4
    '    output: answer', // 5
    '  - name: remember', // 6
    '    action: memory.set', // 7
    '    with: {key: user.name, value: "${bag.answer.text}"}', // 8
    'polite:', // 9
    '  - include: ./more.yaml#thanks', // 10
  );

  it('inlines a fragment in place, resolved relative to the including file, keeping names and sources', () => {
    const dir = folder({
      'sub/main.yaml': lines('id: main', 'steps:', '  - name: first', '    action: log', '    with: {message: m}', '  - include: ./fragments/common.yaml#ask_name', '  - include: fragments/common.yaml#polite', '  - name: last', '    action: io.say', '    with: {text: bye}'),
      'sub/fragments/common.yaml': fragment,
      'sub/fragments/more.yaml': lines('thanks:', '  - name: thank', '    action: io.say', '    with: {text: thanks}'),
    });
    const s = loadScenarioFile(join(dir, 'sub', 'main.yaml'));
    expect(s.steps.map((x) => x.name)).toEqual(['first', 'ask', 'remember', 'thank', 'last']);
    expect(s.steps[1]!.source).toBe(`${join(dir, 'sub', 'fragments', 'common.yaml')}:2`);
    expect(s.steps[3]!.source).toBe(`${join(dir, 'sub', 'fragments', 'more.yaml')}:2`);
    expect(s.steps[4]!.source).toBe(`${join(dir, 'sub', 'main.yaml')}:8`);
  });

  it('reports a missing anchor naming the chain and the anchors that exist', () => {
    const dir = folder({ 'm.yaml': lines('id: m1', 'steps:', '  - include: ./common.yaml#ask_nam'), 'common.yaml': fragment, 'more.yaml': 'thanks: [{name: t, action: log, with: {message: m}}]\n' });
    const file = join(dir, 'm.yaml');
    expect(problems(() => loadScenarioFile(file))).toEqual([
      `${file}:3:14 steps[0].include: ${join(dir, 'common.yaml')} has no "ask_nam" (it has ask_name, polite); include chain: ${file} → ${join(dir, 'common.yaml')}#ask_nam`,
    ]);
  });

  it('reports a missing fragment file', () => {
    const dir = folder({ 'm.yaml': lines('id: m1', 'steps:', '  - include: ./nowhere.yaml#x') });
    const file = join(dir, 'm.yaml');
    expect(problems(() => loadScenarioFile(file))).toEqual([`${file}:3:14 steps[0].include: cannot read ${join(dir, 'nowhere.yaml')} (ENOENT); include chain: ${file} → ${join(dir, 'nowhere.yaml')}#x`]);
  });

  it('reports an include cycle with the whole chain', () => {
    const dir = folder({
      'm.yaml': lines('id: m1', 'steps:', '  - include: ./a.yaml#one'),
      'a.yaml': lines('one:', '  - include: ./b.yaml#two'),
      'b.yaml': lines('two:', '  - name: ok', '    action: log', '    with: {message: m}', '  - include: ./a.yaml#one'),
    });
    const [m, a, b] = ['m.yaml', 'a.yaml', 'b.yaml'].map((f) => join(dir, f));
    expect(problems(() => loadScenarioFile(m!))).toEqual([`${b}:5:14 two[1].include: include cycle: ${m} → ${a}#one → ${b}#two → ${a}#one`]);
  });

  it('reports a fragment including itself', () => {
    const dir = folder({ 'm.yaml': lines('id: m1', 'steps:', '  - include: ./f.yaml#x'), 'f.yaml': lines('x:', '  - include: ./f.yaml#x') });
    const [m, f] = ['m.yaml', 'f.yaml'].map((x) => join(dir, x));
    expect(problems(() => loadScenarioFile(m!))).toEqual([`${f}:2:14 x[0].include: include cycle: ${m} → ${f}#x → ${f}#x`]);
  });

  it('reports bad steps inside a fragment at their place in the fragment file', () => {
    const dir = folder({
      'm.yaml': lines('id: m1', 'steps:', '  - include: ./f.yaml#bad', '  - include: ./f.yaml#dup'),
      'f.yaml': lines('bad:', '  - name: a', '    action: io.say', '    with: {text: "${1 +}"}', 'dup:', '  - name: a', '    action: log', '    with: {message: m}'),
    });
    const [m, f] = ['m.yaml', 'f.yaml'].map((x) => join(dir, x));
    expect(problems(() => loadScenarioFile(m!))).toEqual([`${f}:4:18 bad[0].with.text: bad expression: unexpected end of expression at column 6 of the string`, `${f}:6:11 dup[0].name: duplicate step name "a" (first at ${f}:2)`]);
    const bad = folder({ 'm.yaml': lines('id: m1', 'steps:', '  - include: ./f.yaml#x'), 'f.yaml': lines('x:', '  - name: a', '    action: nope') });
    expect(problems(() => loadScenarioFile(join(bad, 'm.yaml')))).toEqual([
      `${join(bad, 'f.yaml')}:3:13 x[0].action: must be one of "io.say", "io.ask", "memory.set", "bus.publish", "scenario.run", "wait", "log"`,
      `${join(bad, 'm.yaml')}:3:14 steps[0].include: ${join(bad, 'f.yaml')} is not a valid fragment file (see the errors in it); include chain: ${join(bad, 'm.yaml')} → ${join(bad, 'f.yaml')}#x`,
    ]);
  });

  it('refuses absolute include paths', () => {
    const text = lines('id: m1', 'steps:', '  - include: /etc/passwd#root');
    expect(problems(() => parseScenario(text, 'abs.yaml'))).toEqual(['abs.yaml:3:14 steps[0].include: must be a path relative to this file']);
  });
});

describe('scenario DSL: loading a folder', () => {
  it('loads the good files and reports the bad ones without stopping', () => {
    const dir = folder({
      'a_good.yaml': lines('id: good_one', 'steps: [{name: a, action: log, with: {message: m}}]'),
      'b_bad.yaml': lines('id: bad_one', 'steps: [{name: a, action: nope}]'),
      'c_dup.yml': lines('id: good_one', 'steps: [{name: a, action: log, with: {message: m}}]'),
      'd_good.yml': lines('id: good_two', 'steps: [{include: ./fragments/f.yaml#x}]'),
      'fragments/f.yaml': lines('x: [{name: a, action: log, with: {message: m}}]'),
      'notes.txt': 'not a scenario',
    });
    const { scenarios, errors } = loadScenarioDir(dir);
    expect(scenarios.map((s) => s.id)).toEqual(['good_one', 'good_two']);
    expect(errors).toEqual([
      { file: join(dir, 'b_bad.yaml'), message: `${join(dir, 'b_bad.yaml')}:2:27 steps[0].action: must be one of "io.say", "io.ask", "memory.set", "bus.publish", "scenario.run", "wait", "log"` },
      { file: join(dir, 'c_dup.yml'), message: `${join(dir, 'c_dup.yml')}: scenario id "good_one" is already defined by ${join(dir, 'a_good.yaml')}` },
    ]);
  });

  it('reports a folder it cannot read', () => {
    const { scenarios, errors } = loadScenarioDir(join(tmpdir(), 'tessera-no-such-folder-xyz'));
    expect(scenarios).toEqual([]);
    expect(errors[0]!.message).toMatch(/cannot read the scenario folder \(ENOENT\)/);
  });

  it('refuses files over the size limit and files it cannot read', () => {
    const dir = folder({ 'huge.yaml': `id: huge\n# ${'x'.repeat(MAX_SCENARIO_FILE_BYTES)}\n` });
    expect(problems(() => loadScenarioFile(join(dir, 'huge.yaml')))[0]).toMatch(/cannot read the scenario file \(larger than 1048576 bytes\)/);
    expect(problems(() => loadScenarioFile(join(dir, 'missing.yaml')))[0]).toMatch(/cannot read the scenario file \(ENOENT\)/);
  });
});

describe('scenario DSL: the published schema', () => {
  it('is a valid draft-07 JSON Schema that accepts every shipped scenario file as written', () => {
    const ajv = new Ajv({ strict: false });
    expect(ajv.validateSchema(scenarioSchema)).toBe(true);
    const validate = ajv.compile(scenarioSchema);
    for (const name of readdirSync(SHIPPED).filter((n) => n.endsWith('.yaml'))) {
      expect(validate(parse(readFileSync(join(SHIPPED, name), 'utf8'))), `${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
  });
});
