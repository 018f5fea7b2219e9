/**
 * Every golden case file shipped in resources/scenarios/tests passes, through the real `tessera scenario test`
 * command: the bundled scenarios say, in English and in Russian, what their golden files record (issue 13 §16).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../main/host/cli.js';
import { SCENARIO_COMMANDS } from '../../main/host/cli-scenarios.js';
import { APP_ROOT } from '../../main/host/paths.js';

const TESTS = join(APP_ROOT, 'resources', 'scenarios', 'tests');
const files = readdirSync(TESTS).filter((f) => f.endsWith('.yaml')).sort();

describe('the shipped scenario cases', () => {
  it('cover every bundled scenario', () => {
    expect(new Set(files.map((f) => f.split('.')[0]))).toEqual(new Set(['greet_on_boot', 'journey_buy_pass', 'journey_done', 'journey_hours', 'journey_next_step', 'journey_route', 'journey_skip', 'journey_ticket', 'play_music', 'redeem_entitlement', 'set_timer', 'weather_day', 'weather_now']));
  });

  it.each(files)('%s passes against its golden files', async (file) => {
    const cmd = SCENARIO_COMMANDS.find((c) => c.name === 'scenario test')!;
    let stdout = '';
    let stderr = '';
    const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: {} };
    const code = await cmd.run({}, [file.split('.')[0]!, join(TESTS, file)], io);
    expect({ code, stderr, failed: stdout.split('\n').filter((l) => l.startsWith('FAIL')) }).toEqual({ code: 0, stderr: '', failed: [] });
    expect(stdout).toMatch(/\n\d+ passed, 0 failed\n$/);
  }, 30_000);
});
