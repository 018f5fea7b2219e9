import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../main/host/cli.js';
import { INTENT_COMMANDS } from '../../main/host/cli-intents.js';
import { APP_ROOT } from '../../main/host/paths.js';
import { tempDir } from '../helpers/tmp.js';

const RULES = join(APP_ROOT, 'resources', 'intents');

/** Run an intent command in-process with a fake io that collects its output. */
async function run(name: 'test' | 'recognize', positionals: string[], values: Record<string, string | boolean | undefined> = {}) {
  const cmd = INTENT_COMMANDS.find((c) => c.name === `intent ${name}`);
  if (!cmd) throw new Error(`no command "intent ${name}"`);
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: {} };
  const code = await cmd.run(values, positionals, io);
  return { code, stdout, stderr };
}

describe('tessera intent test', () => {
  it.each(['en', 'ru', 'uk'])('passes every case of the shipped %s corpus', async (lang) => {
    const r = await run('test', [join(RULES, `${lang}.yaml`), join(RULES, 'tests', `${lang}.yaml`)]);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout).toMatch(/\n\d+ passed, 0 failed\n$/);
    expect(r.code).toBe(0);
  });

  it('ships at least 100 cases across the languages, with negative cases, as JSON', async () => {
    let total = 0;
    let negatives = 0;
    for (const lang of ['en', 'ru', 'uk']) {
      const r = await run('test', [join(RULES, `${lang}.yaml`), join(RULES, 'tests', `${lang}.yaml`)], { json: true });
      const json = JSON.parse(r.stdout) as { passed: number; failed: number; results: Array<{ ok: boolean; expected: { intent: string | null } }> };
      expect(json.failed).toBe(0);
      total += json.passed;
      negatives += json.results.filter((c) => c.expected.intent === null).length;
    }
    expect(total).toBeGreaterThanOrEqual(100);
    expect(negatives).toBeGreaterThanOrEqual(10);
  });

  it('prints each failure with the expected and the actual reading and exits 1', async () => {
    const dir = tempDir();
    const cases = join(dir, 'wrong.yaml');
    writeFileSync(
      cases,
      [
        'language: en',
        'cases:',
        '  - {text: hello, intent: greet}',
        '  - text: play the wall by pink floyd in the kitchen',
        '    intent: music.play',
        '    slots: {album: the wall, artist: pink floyd in the kitchen}',
        '  - {text: tell me a joke, intent: greet}',
        '',
      ].join('\n'),
    );
    const r = await run('test', [join(RULES, 'en.yaml'), cases]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`PASS  ${cases}:3  "hello" → greet {}`);
    expect(r.stdout).toContain(`FAIL  ${cases}:4  "play the wall by pink floyd in the kitchen"`);
    expect(r.stdout).toContain('expected: music.play {"album":"the wall","artist":"pink floyd in the kitchen"}');
    expect(r.stdout).toContain('got:      music.play {"album":"the wall","artist":"pink floyd","room":"kitchen"}');
    expect(r.stdout).toContain('slots artist, room differ');
    expect(r.stdout).toContain(`FAIL  ${cases}:7  "tell me a joke"`);
    expect(r.stdout).toContain('expected greet, got no intent');
    expect(r.stdout.endsWith('1 passed, 2 failed\n')).toBe(true);
  });

  it('points at the line of a malformed rule or case file', async () => {
    const dir = tempDir();
    const rules = join(dir, 'rules.yaml');
    writeFileSync(rules, 'language: en\nintents:\n  greet:\n    scenario: greet_on_boot\n    data:\n      - sentences:\n          - (hello|hi\n');
    const bad = await run('test', [rules, join(RULES, 'tests', 'en.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`error VALIDATION_FAILED: ${rules}:7:13: "(" is never closed; expected ")" in template "(hello|hi"\n`);

    const cases = join(dir, 'cases.yaml');
    writeFileSync(cases, 'cases:\n  - {text: hello, intent: greet}\n  - {text: hi, intnet: greet}\n');
    const badCases = await run('test', [join(RULES, 'en.yaml'), cases]);
    expect(badCases.code).toBe(1);
    expect(badCases.stderr).toMatch(new RegExp(`^error VALIDATION_FAILED: ${cases.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: unknown key "intnet"`));

    writeFileSync(cases, 'cases:\n  - {text: hello, intent: greet\n');
    const yamlError = await run('test', [join(RULES, 'en.yaml'), cases]);
    expect(yamlError.code).toBe(1);
    expect(yamlError.stderr).toContain(`error VALIDATION_FAILED: ${cases}:`);
    expect(yamlError.stderr).toContain('invalid YAML');
  });

  it('refuses a case file in another language than the rules', async () => {
    const r = await run('test', [join(RULES, 'en.yaml'), join(RULES, 'tests', 'ru.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the cases are language ru but');
  });

  it('answers a missing argument with exit 2 and the usage', async () => {
    const r = await run('test', [join(RULES, 'en.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error CONFIG_INVALID: RULES.yaml and CASES.yaml are required. Usage: tessera intent test RULES.yaml CASES.yaml [--json]');
  });
});

describe('tessera intent recognize', () => {
  it('prints the reading of the bundled rules as JSON', async () => {
    const r = await run('recognize', ['Play The Wall by Pink Floyd in the kitchen']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ intent: 'music.play', slots: { album: 'The Wall', artist: 'Pink Floyd', room: 'kitchen' }, language: 'en', target: { scenario: 'play_music' } });
    // Named relative to the rules folder, as in API answers (no path of this machine).
    expect((json['rule'] as { source: string }).source).toMatch(/^en\.yaml:\d+$/);
  });

  it('uses --rules and --language, and prints null when nothing matches', async () => {
    const ru = await run('recognize', ['погода в Москве'], { rules: join(RULES, 'ru.yaml'), language: 'ru' });
    expect(JSON.parse(ru.stdout)).toMatchObject({ intent: 'weather.now', slots: { city: 'moscow' } });
    const none = await run('recognize', ['погода в Москве'], { language: 'en' });
    expect(none.stdout).toBe('null\n');
    expect(none.code).toBe(0);
  });

  it('lists every reading with --all', async () => {
    const r = await run('recognize', ['play the wall by pink floyd in the kitchen'], { all: true });
    const all = JSON.parse(r.stdout) as Array<{ slots: Record<string, unknown>; score: number }>;
    expect(all.length).toBeGreaterThan(1);
    expect(all[0]!.slots).toEqual({ album: 'the wall', artist: 'pink floyd', room: 'kitchen' });
    expect(all[0]!.score).toBeGreaterThan(all[1]!.score);
  });

  it('rejects an unknown language with exit 2', async () => {
    const r = await run('recognize', ['hello'], { language: 'de' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error CONFIG_INVALID: --language must be one of en, ru');
  });
});
