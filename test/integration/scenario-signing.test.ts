/**
 * Signed scenarios and permissions (issue 18 points 2–3) with real parts: keys and signatures from the built CLI
 * (`tessera scenario sign|verify`), trust folders on disk, a real runtime on a real SQLite file.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { startHost } from '../../main/host/headless.js';
import { generateKeyPair, readPrivateKey, writePrivateKey } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { loadScenarioFile } from '../../main/runtime/scenarios/dsl.js';
import { signScenario, signatureFileOf } from '../../main/runtime/scenarios/signing.js';
import { APP_ROOT, BUILTIN_SCENARIOS_DIR, BUILTIN_TRUST_DIR } from '../../main/host/paths.js';
import { cleanEnv, requireBuild, runTesseraAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

let root: string;
let dataDir: string;
let scenarios: string;
let trustDir: string;
let alice: SigningKey;

const yaml = (id: string, permissions: string[] | null, steps: string) => `id: ${id}\n${permissions ? `permissions: [${permissions.join(', ')}]\n` : ''}steps:\n${steps}`;
const say = (text = 'hello') => `  - { name: speak, action: io.say, with: { text: '${text}' } }\n`;

function write(name: string, text: string): string {
  const file = join(scenarios, name);
  writeFileSync(file, text);
  return file;
}
function sign(file: string, key: SigningKey): void {
  writeFileSync(signatureFileOf(file), JSON.stringify(signScenario(loadScenarioFile(file), key)));
}
/** Edits one byte of a file (the first `from` becomes `to`, same length). */
function flipByte(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  expect(text).toContain(from);
  writeFileSync(file, text.replace(from, to));
}

beforeAll(async () => {
  requireBuild();
  root = tempDir('tessera-scen-sign-', 'file');
  dataDir = join(root, 'data');
  scenarios = join(dataDir, 'scenarios');
  trustDir = join(dataDir, 'trust');
  mkdirSync(join(scenarios, 'fragments'), { recursive: true });
  mkdirSync(trustDir, { recursive: true });
  alice = generateKeyPair();
  const stranger = generateKeyPair();
  const gone = generateKeyPair();
  writePrivateKey(join(root, 'alice.key'), alice);
  writeFileSync(join(trustDir, 'alice.pem'), alice.publicKeyPem);
  writeFileSync(join(trustDir, 'gone.pem'), gone.publicKeyPem);
  writeFileSync(join(trustDir, 'revoked.json'), JSON.stringify({ revoked: [{ keyid: gone.keyid, reason: 'key leaked', revoked_at: '2026-01-01T00:00:00Z' }] }));
  writeFileSync(join(trustDir, 'grants.json'), JSON.stringify({ alice: ['tts', 'tool:*', 'bus.publish:app.**', 'bus.publish:*', 'secrets:*', 'scenario:*'], [gone.keyid]: ['*'] }));

  writeFileSync(join(scenarios, 'fragments', 'hello.yaml'), 'hello:\n  - { name: frag_log, action: log, with: { message: "from a fragment" } }\n');
  writeFileSync(join(scenarios, 'fragments', 'shared.yaml'), 'shared:\n  - { name: frag_log, action: log, with: { message: "shared words" } }\n');
  write('good.yaml', yaml('good', ['tts', 'bus.publish:app.*'], `  - include: ./fragments/hello.yaml#hello\n${say()}  - { name: tell, action: bus.publish, with: { topic: app.done } }\n`));
  sign(write('tampered_yaml.yaml', yaml('tampered_yaml', ['tts'], say('abc'))), alice);
  flipByte(join(scenarios, 'tampered_yaml.yaml'), 'abc', 'abd');
  sign(write('tampered_frag.yaml', yaml('tampered_frag', ['tts'], `  - include: ./fragments/shared.yaml#shared\n${say()}`)), alice);
  flipByte(join(scenarios, 'fragments', 'shared.yaml'), 'shared words', 'shared wordz');
  write('unsigned.yaml', yaml('unsigned', null, say()));
  sign(write('unknown.yaml', yaml('unknown', ['tts'], say())), stranger);
  sign(write('revoked.yaml', yaml('revoked', ['tts'], say())), gone);
  sign(write('over.yaml', yaml('over', ['stt', 'tts'], say())), alice);
  // Signed and within the grants, but their steps use what they did not declare.
  sign(write('no_tts.yaml', yaml('no_tts', ['bus.publish:app.*'], `  - { name: first, action: log, with: { message: before } }\n${say()}`)), alice);
  sign(write('wrong_topic.yaml', yaml('wrong_topic', ['bus.publish:app.*'], '  - { name: tell, action: bus.publish, with: { topic: "${ctx.topic}" } }\n')), alice);
  sign(write('no_tool.yaml', yaml('no_tool', ['tts'], '  - { name: weather, tool: tool-weather, with: { city: berlin }, retries: 3 }\n')), alice);
  sign(write('secret_read.yaml', yaml('secret_read', ['tts', 'secrets:open'], say('${secrets["pin"]}'))), alice);
  sign(write('undeclared.yaml', yaml('undeclared', null, say())), alice);
  // Signed with the public development key but dropped into the data folder (review 18 item 13a).
  sign(write('devkey.yaml', yaml('devkey', ['tts'], say())), readPrivateKey(join(APP_ROOT, 'plugins', 'dev-key')));
  // Sub-scenarios (review 18 item 9a): running one needs scenario:<id>, and the child may use only what its parent declares too.
  sign(write('announce.yaml', yaml('announce', ['tts'], '  - { name: speak, action: io.say, with: { text: "${ctx.text}" } }\n')), alice);
  sign(write('deputy_step.yaml', yaml('deputy_step', [], '  - { name: sub, scenario: announce, with: { text: deputy } }\n')), alice);
  sign(write('deputy_action.yaml', yaml('deputy_action', [], '  - { name: sub, action: scenario.run, with: { id: announce, ctx: { text: deputy } } }\n')), alice);
  sign(write('caller.yaml', yaml('caller', ['scenario:announce'], '  - { name: sub, scenario: announce, with: { text: deputy } }\n')), alice);
  sign(write('caller_ok.yaml', yaml('caller_ok', ['scenario:announce', 'tts'], '  - { name: sub, scenario: announce, with: { text: allowed } }\n')), alice);
  // A topic built from a personal value is checked as published, not as its sealed "***" (item 9b).
  sign(write('topic_probe.yaml', `pii: [probe.*]\n${yaml('topic_probe', ['bus.publish:*'], '  - { name: keep, action: memory.set, with: { key: probe.topic, value: "${ctx.topic}" } }\n  - { name: tell, action: bus.publish, with: { topic: "${memory[\'probe.topic\']}" } }\n')}`), alice);
  // A `when` that reads an undeclared secret refuses its own step (item 9c).
  sign(write('when_secret.yaml', yaml('when_secret', ['tts'], `  - { name: peek, action: log, when: 'secrets["pin"] == "x"', with: { message: m } }\n${say()}`)), alice);
  // The CLI signs the good one (the others above use the same function).
  const signed = await runTesseraAsync(['scenario', 'sign', join(scenarios, 'good.yaml'), '--key', join(root, 'alice.key')]);
  expect(signed.stderr).toBe('');
  expect(signed.code).toBe(0);
  expect(signed.stdout).toMatch(/Signed good \(version 1\)\n {2}cid: +b3:[0-9a-f]{64}/);
}, 60_000);

describe('tessera scenario sign|verify', () => {
  it('says who signed a scenario and what it may use, or the code and reason it is refused', async () => {
    const env = cleanEnv({ TESSERA_DATA: dataDir });
    const [good, frag, over, shipped, devkey] = await Promise.all([
      runTesseraAsync(['scenario', 'verify', join(scenarios, 'good.yaml'), '--json'], env),
      runTesseraAsync(['scenario', 'verify', join(scenarios, 'tampered_frag.yaml')], env),
      runTesseraAsync(['scenario', 'verify', join(scenarios, 'over.yaml'), '--trust', trustDir], env),
      runTesseraAsync(['scenario', 'verify', join(BUILTIN_SCENARIOS_DIR, 'weather_now.yaml')], cleanEnv({ TESSERA_DATA: join(root, 'empty') })),
      runTesseraAsync(['scenario', 'verify', join(scenarios, 'devkey.yaml')], env),
    ]);
    expect(devkey.code).toBe(1);
    expect(devkey.stderr).toMatch(/^invalid: SCENARIO_KEY_NOT_ALLOWED: .*devkey\.yaml: signed by the built-in key tessera-dev/);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ valid: true, id: 'good', publisher: { keyid: alice.keyid, name: 'alice' }, permissions: ['bus.publish:app.*', 'tts'] });
    expect(frag.code).toBe(1);
    expect(frag.stderr).toMatch(/^invalid: SCENARIO_SIGNATURE_INVALID: .*tampered_frag\.yaml: the scenario \(or a fragment it includes\) differs from what alice/);
    expect(over.code).toBe(1);
    expect(over.stderr).toMatch(/^invalid: SCENARIO_PERMISSION_NOT_GRANTED: .*declares stt, which its publisher alice/);
    expect(shipped.code).toBe(0);
    expect(shipped.stdout).toContain('signed by b3:b9cfa093aa893db0cda152cd48d55e19fd49e7290aea1eddacd87929b64dd022 (tessera-dev)');
  }, 60_000);
});

describe('loading and running', () => {
  let runtime: Runtime;
  beforeAll(async () => {
    runtime = await createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger(), pluginDirs: [], voice: false, scenarioDirs: [scenarios], builtinTrustDir: BUILTIN_TRUST_DIR });
    runtime.secrets.set('pin', 'planted-pin-4321');
  });
  afterAll(() => runtime.close());

  it('refuses unsigned, tampered (the YAML or a fragment), unknown-key, revoked-key and over-permissioned scenarios with the reason', () => {
    const failed = runtime.journal.query({ topic: 'scenario.load_failed' }).events.map((e) => e.payload as { file: string; code: string; message: string });
    const byFile = Object.fromEntries(failed.map((f) => [f.file.slice(scenarios.length + 1), f.code]));
    expect(byFile).toEqual({
      'tampered_yaml.yaml': 'SCENARIO_SIGNATURE_INVALID',
      'tampered_frag.yaml': 'SCENARIO_SIGNATURE_INVALID',
      'unsigned.yaml': 'SCENARIO_UNSIGNED',
      'unknown.yaml': 'KEY_UNKNOWN',
      'revoked.yaml': 'KEY_REVOKED',
      'over.yaml': 'SCENARIO_PERMISSION_NOT_GRANTED',
      'devkey.yaml': 'SCENARIO_KEY_NOT_ALLOWED',
    });
    expect(failed.find((f) => f.code === 'KEY_REVOKED')!.message).toContain('key leaked');
    expect(runtime.scenarios.scenarios().map((s) => s.id).sort()).toEqual(['announce', 'caller', 'caller_ok', 'deputy_action', 'deputy_step', 'good', 'no_tool', 'no_tts', 'secret_read', 'topic_probe', 'undeclared', 'when_secret', 'wrong_topic']);
    expect(runtime.journal.query({ topic: 'scenario.load_warning' }).events).toEqual([]);
  });

  it('runs a signed scenario within its permissions', async () => {
    const done = await runtime.scenarios.wait(runtime.scenarios.run('good'), 10_000);
    expect(done.state).toBe('completed');
    expect(runtime.journal.query({ topic: 'app.done' }).events).toHaveLength(1);
  });

  it('refuses a step that uses what its scenario did not declare before any effect, journaled, without retry', async () => {
    const cases: Array<[string, Record<string, unknown>, string, string]> = [
      ['no_tts', {}, 'speak', 'tts'],
      ['wrong_topic', { topic: 'other.secret_channel' }, 'tell', 'bus.publish:other.secret_channel'],
      ['no_tool', {}, 'weather', 'tool:tool-weather'],
      ['secret_read', {}, 'speak', 'secrets:pin'],
      ['undeclared', {}, 'speak', 'tts'],
      ['deputy_step', {}, 'sub', 'scenario:announce'],
      ['deputy_action', {}, 'sub', 'scenario:announce'],
      ['topic_probe', { topic: 'app.leak.deep' }, 'tell', 'bus.publish:***'],
      ['when_secret', {}, 'peek', 'secrets:pin'],
    ];
    const runIds = new Set<string>();
    for (const [id, ctx, step, permission] of cases) {
      const done = await runtime.scenarios.wait(runtime.scenarios.run(id, ctx), 10_000);
      runIds.add(done.run_id);
      expect(done.state, id).toBe('failed');
      const status = runtime.scenarios.status(done.run_id);
      const refused = status.steps.find((s) => s.name === step)!;
      expect(refused, id).toMatchObject({ state: 'failed', attempt: 1, error: { code: 'PERMISSION_DENIED', details: { permission } } });
      const events = runtime.journal.query({ topic: 'scenario.step.refused' }).events.filter((e) => (e.payload as { run_id: string }).run_id === done.run_id);
      expect(events.map((e) => e.payload), id).toEqual([expect.objectContaining({ scenario_id: id, step, permission, error: expect.objectContaining({ code: 'PERMISSION_DENIED' }) })]);
      expect(runtime.journal.query({ topic: 'scenario.step.retrying' }).events.filter((e) => (e.payload as { run_id: string }).run_id === done.run_id)).toEqual([]);
    }
    // No effect of any of them: nothing said, nothing published on the undeclared topic, no tool call, the secret nowhere.
    expect(runtime.journal.query({ topic: 'io.say' }).events.filter((e) => runIds.has((e.payload as { run_id: string }).run_id))).toEqual([]);
    expect(runtime.journal.query({ topic: 'other.**' }).events).toEqual([]);
    expect(runtime.journal.query({ topic: 'app.leak.**' }).events).toEqual([]);
    expect(runtime.scenarios.runs({ scenario_id: 'announce' })).toEqual([]);
    // The refusal of a sensitive topic never prints it.
    expect(JSON.stringify(runtime.journal.query({ topic: 'scenario.step.*' }).events)).not.toContain('app.leak');
    expect(runtime.store.db.prepare("SELECT count(*) AS n FROM cost_usage WHERE kind = 'tool_calls'").get()).toEqual({ n: 0 });
    const all = runtime.journal.query({ limit: 1000 }).events;
    expect(JSON.stringify(all)).not.toContain('planted-pin-4321');
    // The one step before the refused one did run.
    expect(runtime.journal.query({ topic: 'scenario.step.completed' }).events.some((e) => (e.payload as { step: string }).step === 'first')).toBe(true);
  });

  it('runs a sub-scenario with the intersection of its own and its parent\'s permissions', async () => {
    const denied = await runtime.scenarios.wait(runtime.scenarios.run('caller'), 10_000);
    expect(denied.state).toBe('failed');
    const [child] = runtime.scenarios.runs({ scenario_id: 'announce' });
    expect(child!.parent_run_id).toBe(denied.run_id);
    const step = runtime.scenarios.status(child!.run_id).steps.find((s) => s.name === 'speak')!;
    expect(step.error).toMatchObject({ code: 'PERMISSION_DENIED', details: { permission: 'tts' } });
    expect(step.error!.message).toContain('started (directly or not) by scenario caller, which declares scenario:announce');
    const said = (runId: string) => runtime.journal.query({ topic: 'io.say' }).events.filter((e) => (e.payload as { run_id: string }).run_id.startsWith(runId)).map((e) => (e.payload as { text: string }).text);
    expect(said(denied.run_id)).toEqual([]);
    const allowed = await runtime.scenarios.wait(runtime.scenarios.run('caller_ok'), 10_000);
    expect(allowed.state).toBe('completed');
    expect(said(allowed.run_id)).toEqual(['allowed']);
  });
});

describe('developer mode', () => {
  it('TESSERA_DEVELOPER=1 loads what enforce mode refuses, each journaled as a warning naming the file — but never a revoked key\'s', async () => {
    const devData = tempDir('tessera-scen-dev-');
    cpSync(trustDir, join(devData, 'trust'), { recursive: true });
    const host = await startHost({ dataDir: devData, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: { TESSERA_DEVELOPER: '1' }, pluginDirs: [], scenarioDirs: [scenarios, BUILTIN_SCENARIOS_DIR], builtinTrustDir: BUILTIN_TRUST_DIR });
    try {
      const { runtime } = host;
      const warnings = runtime.journal.query({ topic: 'scenario.load_warning' }).events.map((e) => e.payload as { file: string; scenario_id: string; code: string; message: string });
      expect(warnings.map((w) => w.scenario_id).sort()).toEqual(['devkey', 'over', 'tampered_frag', 'tampered_yaml', 'unknown', 'unsigned']);
      expect(warnings.find((w) => w.scenario_id === 'unsigned')!.message).toMatch(/developer mode: loaded .*unsigned\.yaml unverified \(SCENARIO_UNSIGNED: .*its steps may use anything/);
      // A withdrawn key is known bad: developer mode is for files being written, not for what someone revoked.
      expect(runtime.journal.query({ topic: 'scenario.load_failed' }).events.map((e) => (e.payload as { code: string }).code)).toEqual(['KEY_REVOKED']);
      expect(runtime.scenarios.scenario('revoked')).toBeUndefined();
      // An unsigned scenario without a list may use anything; the shipped ones load verified (no warning for them).
      expect((await runtime.scenarios.wait(runtime.scenarios.run('unsigned'), 10_000)).state).toBe('completed');
      expect(runtime.scenarios.scenario('weather_now')?.permissions).toEqual(['stt', 'tool:tool-weather', 'tts']);
      // A signed scenario is held to its list even here.
      expect((await runtime.scenarios.wait(runtime.scenarios.run('no_tts'), 10_000)).error?.message).toContain('PERMISSION_DENIED');
    } finally {
      await host.close();
    }
  }, 30_000);
});
