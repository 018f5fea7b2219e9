/**
 * Golden scenario tests (seed 001 §13 `io.stub`, issue 4 §9) through the real `tessera scenario test` command,
 * run in-process: real scenario files, a real private SQLite engine per case, real golden files on disk.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../main/host/cli.js';
import type { CliIo } from '../../main/host/cli.js';
import { SCENARIO_COMMANDS } from '../../main/host/cli-scenarios.js';
import { APP_ROOT } from '../../main/host/paths.js';
import { caseSlug, diffLines, parseScenarioCases } from '../../main/runtime/scenarios/golden.js';
import { tempDir } from '../helpers/tmp.js';

const TESTS = join(APP_ROOT, 'resources', 'scenarios', 'tests');

async function scenarioTest(positionals: string[], values: Record<string, string | boolean | undefined> = {}) {
  const cmd = SCENARIO_COMMANDS.find((c) => c.name === 'scenario test')!;
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: {} };
  const code = await cmd.run(values, positionals, io);
  return { code, stdout, stderr };
}

/** A folder with the greet_on_boot cases and golden files copied in, to change freely. */
function copyOfGreetCases(): { dir: string; cases: string; golden: (name: string) => string } {
  const dir = tempDir('tessera-golden-');
  const cases = join(dir, 'greet.yaml');
  copyFileSync(join(TESTS, 'greet_on_boot.yaml'), cases);
  const golden = (name: string) => join(dir, '__golden__', 'greet_on_boot', `${caseSlug(name)}.json`);
  mkdirSync(join(dir, '__golden__', 'greet_on_boot'), { recursive: true });
  for (const name of ['asks a new user for their name and greets them with it', 'greets a remembered user without asking', 'greets a friend when the answer is empty']) {
    copyFileSync(join(TESTS, '__golden__', 'greet_on_boot', `${caseSlug(name)}.json`), golden(name));
  }
  return { dir, cases, golden };
}

describe('tessera scenario test', () => {
  it('passes the shipped golden cases: io.ask answered by the voice.stt stub, the greeting and the publish recorded', async () => {
    const r = await scenarioTest(['greet_on_boot', join(TESTS, 'greet_on_boot.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe([
      'PASS   asks a new user for their name and greets them with it',
      'PASS   greets a remembered user without asking',
      'PASS   greets a friend when the answer is empty',
      '3 passed, 0 failed',
      '',
    ].join('\n'));
    expect(r.code).toBe(0);
    const golden = JSON.parse(readFileSync(join(TESTS, '__golden__', 'greet_on_boot', 'asks-a-new-user-for-their-name-and-greets-them-with-it.json'), 'utf8')) as unknown;
    expect(golden).toEqual({
      scenario: 'greet_on_boot',
      case: 'asks a new user for their name and greets them with it',
      state: 'completed',
      messages: [
        { ask: 'Hi! What should I call you?', answer: 'Ада' },
        { say: 'Hello, Ада! Tessera is ready.' },
        { publish: 'node.online', payload: { scenario: 'greet_on_boot', greeted: true } },
      ],
    });
  });

  it('stubs tool plugins: a returned value, and a failing tool retried until the run fails', async () => {
    const r = await scenarioTest(['weather_now', join(TESTS, 'weather_now.yaml')], { json: true });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { passed: number; results: Array<{ transcript: { state: string; error?: string; messages: unknown[] } }> };
    expect(out.passed).toBe(3);
    expect(out.results[0]!.transcript.messages).toEqual([{ tool: 'tool-weather', args: { city: 'Berlin', language: 'en' } }, { say: 'Berlin: clear, 21°C.' }]);
    expect(out.results[2]!.transcript).toMatchObject({ state: 'failed', error: 'STEP_FAILED' });
    expect(out.results[2]!.transcript.messages).toHaveLength(3); // the first call and its 2 retries
  }, 20_000);

  it('fails a case whose messages differ from its golden file with a line diff, and --update rewrites it', async () => {
    const { cases, golden } = copyOfGreetCases();
    const name = 'asks a new user for their name and greets them with it';
    writeFileSync(golden(name), readFileSync(golden(name), 'utf8').replace('Hello, Ада! Tessera is ready.', 'Hi, Ада.'));
    const r = await scenarioTest(['greet_on_boot', cases]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`FAIL   ${name}  (${cases}:4)`);
    expect(r.stdout).toContain('-       "say": "Hi, Ада."');
    expect(r.stdout).toContain('+       "say": "Hello, Ада! Tessera is ready."');
    expect(r.stdout).toContain('PASS   greets a remembered user without asking');
    expect(r.stdout).toMatch(/\n2 passed, 1 failed\n$/);

    const u = await scenarioTest(['greet_on_boot', cases], { update: true });
    expect(u.code).toBe(0);
    expect(u.stdout).toContain(`WROTE  ${name}  → ${golden(name)}`);
    expect(u.stdout).toMatch(/\n2 passed, 0 failed, 1 written\n$/);
    expect(readFileSync(golden(name), 'utf8')).toBe(readFileSync(join(TESTS, '__golden__', 'greet_on_boot', `${caseSlug(name)}.json`), 'utf8'));
    expect((await scenarioTest(['greet_on_boot', cases])).code).toBe(0);
  });

  it('fails a case that has no golden file yet, showing what it would record, and --update records it', async () => {
    const dir = tempDir('tessera-golden-');
    const cases = join(dir, 'cases.yaml');
    writeFileSync(cases, 'cases:\n  - name: remembered\n    ctx: {user_name: Bo}\n    golden: out/bo.json\n');
    const r = await scenarioTest(['greet_on_boot', cases]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`no golden file ${join(dir, 'out', 'bo.json')}; run with --update to record it:`);
    expect(r.stdout).toContain('"say": "Hello, Bo! Tessera is ready."');
    expect(existsSync(join(dir, 'out', 'bo.json'))).toBe(false);
    expect((await scenarioTest(['greet_on_boot', cases], { update: true })).code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'out', 'bo.json'), 'utf8'))).toMatchObject({ state: 'completed', messages: [{ say: 'Hello, Bo! Tessera is ready.' }, { publish: 'node.online' }] });
  });

  it('runs a scenario file with sub-scenarios, stub sequences and event stubs, and names a missing stub', async () => {
    const dir = tempDir('tessera-golden-');
    writeFileSync(join(dir, 'child.yaml'), 'id: child\nsteps:\n  - name: hello\n    action: io.say\n    with: {text: "child says ${ctx.n}"}\n');
    writeFileSync(join(dir, 'parent.yaml'), [
      'id: parent',
      'steps:',
      '  - {name: first, tool: counter, with: {}, output: a}',
      '  - {name: second, tool: counter, with: {}, output: b}',
      '  - {name: door, action: wait, with: {event: door.opened}, output: door}',
      '  - {name: sub, scenario: child, with: {n: "${bag.a.n + bag.b.n}"}}',
      '  - {name: done, action: bus.publish, with: {topic: parent.done, payload: {who: "${bag.door.payload.who}"}}}',
      '  - {name: nap, action: wait, with: {duration: 1h}}',
      '  - {name: printer, tool: printer, with: {}}',
      '',
    ].join('\n'));
    const cases = join(dir, 'cases.yaml');
    writeFileSync(cases, [
      'scenario: parent',
      'cases:',
      '  - name: all stubbed',
      '    stubs:',
      '      tool.counter: {sequence: [{n: 1}, {n: 2}]}',
      '      event.door.opened: {returns: {payload: {who: Ada}}}',
      '      tool.printer: {returns: ok}',
      '  - name: printer missing',
      '    stubs:',
      '      tool.counter: {returns: {n: 5}}',
      '      event.door.opened: {returns: {payload: {who: Bo}}}',
      '',
    ].join('\n'));
    const r = await scenarioTest([join(dir, 'parent.yaml'), cases], { update: true, json: true });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { written: number; results: Array<{ transcript: { state: string; error?: string; messages: unknown[] } }> };
    expect(out.written).toBe(2);
    expect(out.results[0]!.transcript).toEqual({
      scenario: 'parent',
      case: 'all stubbed',
      state: 'completed',
      messages: [
        { tool: 'counter', args: {} },
        { tool: 'counter', args: {} },
        { say: 'child says 3' },
        { publish: 'parent.done', payload: { who: 'Ada' } },
        { tool: 'printer', args: {} },
      ],
    });
    expect(out.results[1]!.transcript).toMatchObject({ state: 'failed', error: 'STEP_FAILED' });
    expect(out.results[1]!.transcript.messages.at(-1)).toEqual({ tool: 'printer', args: {} });
  });

  it('refuses bad case files with the file, line and field, and bad arguments with a usage error', async () => {
    const dir = tempDir('tessera-golden-');
    const file = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const bad: Array<[string, string]> = [
      ['cases:\n  - name: [unclosed\n', 'invalid YAML'],
      ['cases: []\n', 'cases must be a non-empty list'],
      ['scenario: greet_on_boot\ncases:\n  - name: a\n    stub: {}\n', ':4:11: cases[0]: unknown key "stub"'],
      ['cases:\n  - name: a\n    stubs:\n      voice.tts: {returns: x}\n', ':4:18: cases[0].stubs: "voice.tts" is not a stub name'],
      ['cases:\n  - name: a\n    stubs:\n      voice.stt: {returns: x, error: y}\n', 'must have exactly one of returns, sequence (a list) or error'],
      ['cases:\n  - name: a\n  - name: a\n', ':3:11: cases[1].name "a" is used twice'],
      ['cases:\n  - name: a\n    ctx: [1]\n', 'cases[0].ctx must be a mapping'],
      ['cases:\n  - name: a\n    golden: a.yaml\n', 'cases[0].golden must be a path ending in .json'],
      ['scenario: weather_now\ncases:\n  - name: a\n', 'the cases are for scenario weather_now, not greet_on_boot'],
    ];
    for (const [i, [text, message]] of bad.entries()) {
      const path = file(`bad${i}.yaml`, text);
      const r = await scenarioTest(['greet_on_boot', path]);
      expect(r.code, text).toBe(1);
      expect(r.stderr, text).toContain('error VALIDATION_FAILED: ');
      expect(r.stderr, text).toContain(message);
      expect(r.stdout).toBe('');
    }
    const missing = await scenarioTest(['greet_on_boot', join(dir, 'nope.yaml')]);
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining('cannot read the case file (ENOENT)') });
    const unknown = await scenarioTest(['no_such_scenario', file('ok.yaml', 'cases:\n  - name: a\n')]);
    expect(unknown).toMatchObject({ code: 1, stderr: expect.stringMatching(/^error SCENARIO_NOT_FOUND: No scenario "no_such_scenario" \(known: .*greet_on_boot/) });
    expect(await scenarioTest(['greet_on_boot'])).toMatchObject({ code: 2, stderr: expect.stringContaining('error CONFIG_INVALID: SCENARIO_OR_ID and CASES.yaml are required') });
    const noCity = await scenarioTest(['set_timer', file('nocity.yaml', 'cases:\n  - name: no minutes\n    ctx: {town: Oslo}\n')]);
    expect(noCity).toMatchObject({ code: 1, stderr: expect.stringMatching(/^error VALIDATION_FAILED: Case "no minutes" \(.*nocity\.yaml:2\): ctx does not match set_timer's ctx_schema/) });
  });

  it('prints its help through the CLI and lists itself under `tessera scenario`', async () => {
    let out = '';
    const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (out += t), env: {} };
    expect(await runCli(['scenario', 'test', '--help'], io)).toBe(0);
    expect(out).toContain('Usage: tessera scenario test SCENARIO_OR_ID CASES.yaml [--update] [--scenarios DIR] [--json]');
    expect(out).toContain('--update');
    out = '';
    expect(await runCli(['scenario', 'test', 'greet_on_boot', 'a.yaml', 'extra'], io)).toBe(2);
    expect(out).toContain('error CONFIG_INVALID: unexpected argument "extra"');
  });

  it('parses stubs and default golden paths, and diffs only around the changed lines', () => {
    const parsed = parseScenarioCases('cases:\n  - name: Ада — first run!\n    stubs: {voice.stt: {returns: {text: x}}}\n', '/x/cases.yaml', 'greet');
    expect(parsed.cases[0]).toMatchObject({ golden: '/x/__golden__/greet/ада-first-run.json', stubs: { 'voice.stt': { returns: { text: 'x' } } }, source: '/x/cases.yaml:2' });
    const a = ['1', '2', '3', '4', '5', '6', '7', '8'].join('\n');
    const b = ['1', '2', '3', '4', 'five', '6', '7', '8'].join('\n');
    expect(diffLines(a, b, 1)).toEqual(['  …', '  4', '- 5', '+ five', '  6', '  …']);
    expect(diffLines(a, a)).toEqual([]);
  });
});
