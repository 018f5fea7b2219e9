import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { interpolate } from '../../main/common/expr.js';
import { isTesseraError } from '../../main/common/errors.js';
import { loadScenarioFile, parseScenario } from '../../main/runtime/scenarios/dsl.js';
import { grantCovers, readGrants, scopeSecrets, stepRefusal, ungranted } from '../../main/runtime/scenarios/permissions.js';
import { canonicalScenario, scenarioCid } from '../../main/runtime/scenarios/signing.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

function folder(files: Record<string, string>): string {
  const dir = tempDir('tessera-perm-');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('grants', () => {
  it('covers a declared permission by exact name, "*", a secrets:/tool: prefix, or a topic pattern that matches every topic it could', () => {
    expect(grantCovers('*', 'secrets:db')).toBe(true);
    expect(grantCovers('tts', 'tts')).toBe(true);
    expect(grantCovers('tts', 'stt')).toBe(false);
    expect(grantCovers('tool:*', 'tool:tool-weather')).toBe(true);
    expect(grantCovers('tool:tool-*', 'tool:tool-weather')).toBe(true);
    expect(grantCovers('tool:tool-*', 'secrets:tool-x')).toBe(false);
    expect(grantCovers('secrets:weather.*', 'secrets:weather.api_key')).toBe(true);
    expect(grantCovers('secrets:weather.*', 'secrets:bank.pin')).toBe(false);
    expect(grantCovers('bus.publish:app.**', 'bus.publish:app.a.b')).toBe(true);
    expect(grantCovers('bus.publish:app.**', 'bus.publish:app.*')).toBe(true);
    expect(grantCovers('bus.publish:app.*', 'bus.publish:app.x')).toBe(true);
    expect(grantCovers('bus.publish:app.*', 'bus.publish:app.*')).toBe(true);
    expect(grantCovers('bus.publish:app.*', 'bus.publish:app.**')).toBe(false);
    expect(grantCovers('bus.publish:app.*', 'bus.publish:app.x.y')).toBe(false);
    expect(grantCovers('bus.publish:app.x', 'bus.publish:app.*')).toBe(false);
    expect(ungranted(['tts', 'stt', 'tool:tool-weather', 'bus.publish:media.play'], ['tts', 'tool:*', 'bus.publish:media.*'])).toEqual(['stt']);
    expect(grantCovers('scenario:*', 'scenario:announce')).toBe(true);
    expect(grantCovers('scenario:journey_*', 'scenario:announce')).toBe(false);
  });

  it('reads grants.json of several trust folders, by keyid or key name, and names the file of a bad one', () => {
    const a = folder({ 'grants.json': JSON.stringify({ 'b3:aa': ['tts'], alice: ['tool:*'] }) });
    const b = folder({ 'grants.json': JSON.stringify({ alice: ['stt'] }) });
    const none = folder({});
    const grants = readGrants([a, b, none]);
    expect(grants({ keyid: 'b3:aa', name: 'alice' }).sort()).toEqual(['stt', 'tool:*', 'tts']);
    expect(grants({ keyid: 'b3:bb', name: 'bob' })).toEqual([]);
    for (const [text, reason] of [['{', 'not JSON'], ['[]', 'expected'], ['{"x": "tts"}', '"x" must be a list'], ['{"x": ["speak"]}', '"speak" is not a permission'], ['{"x": ["bus.publish:a..b"]}', 'not a topic pattern']] as const) {
      const bad = folder({ 'grants.json': text });
      let caught: unknown;
      try {
        readGrants([bad]);
      } catch (err) {
        caught = err;
      }
      expect(isTesseraError(caught) && caught.code).toBe('GRANTS_INVALID');
      expect((caught as Error).message).toContain(join(bad, 'grants.json'));
      expect((caught as Error).message).toContain(reason);
    }
  });
});

describe('run-time refusals', () => {
  const s = scenario('greet', [{ name: 'a', action: 'io.say' }], { permissions: ['bus.publish:app.*', 'secrets:ok', 'tool:tool-weather', 'tts'] });
  const refusal = (target: Parameters<typeof stepRefusal>[2], input: Record<string, unknown> = {}, box?: unknown) => stepRefusal(s, 'step1', target, input, box)?.permission ?? null;

  it('asks io.say for tts, io.ask for tts and stt, a tool for tool:<name>, bus.publish for a pattern matching the topic', () => {
    expect(refusal({ kind: 'action', action: 'io.say' })).toBeNull();
    expect(refusal({ kind: 'action', action: 'io.ask' })).toBe('stt');
    expect(refusal({ kind: 'tool', tool: 'tool-weather' })).toBeNull();
    expect(refusal({ kind: 'tool', tool: 'tool-journeys' })).toBe('tool:tool-journeys');
    expect(refusal({ kind: 'action', action: 'bus.publish' }, { topic: 'app.ring' })).toBeNull();
    expect(refusal({ kind: 'action', action: 'bus.publish' }, { topic: 'app.ring.twice' })).toBe('bus.publish:app.ring.twice');
    expect(refusal({ kind: 'action', action: 'memory.set' })).toBeNull();
    const msg = stepRefusal(s, 'step1', { kind: 'tool', tool: 'tool-journeys' }, {}, undefined)!.message;
    expect(msg).toContain('Step step1 of scenario greet');
    expect(msg).toContain('tool:tool-journeys');
  });

  it('lets a scenario with no permissions list use anything, and holds one with an empty list to nothing', () => {
    const open = scenario('open', [{ name: 'a', action: 'io.say' }]);
    expect(stepRefusal(open, 'a', { kind: 'action', action: 'io.ask' }, {}, undefined)).toBeNull();
    const closed = scenario('closed', [{ name: 'a', action: 'io.say' }], { permissions: [] });
    expect(stepRefusal(closed, 'a', { kind: 'action', action: 'io.say' }, {}, undefined)?.permission).toBe('tts');
  });

  it('holds a sub-scenario to what it and every run that started it declare', () => {
    const child = scenario('child', [{ name: 'a', action: 'io.say' }], { permissions: ['secrets:ok', 'secrets:db', 'tts'] });
    const parent = scenario('parent', [{ name: 'a', action: 'io.say' }], { permissions: ['scenario:child', 'secrets:ok'] });
    const open = scenario('open', [{ name: 'a', action: 'io.say' }]);
    const say = { kind: 'action', action: 'io.say' } as const;
    expect(stepRefusal(child, 'a', say, {}, undefined)).toBeNull();
    expect(stepRefusal(child, 'a', say, {}, undefined, [parent])?.message).toContain('started (directly or not) by scenario parent, which declares scenario:child, secrets:ok');
    expect(stepRefusal(child, 'a', say, {}, undefined, [open])).toBeNull();
    expect(stepRefusal(open, 'a', say, {}, undefined, [parent])?.permission).toBe('tts');
    expect(stepRefusal(parent, 'a', { kind: 'scenario', scenario: 'other' }, {}, undefined)?.permission).toBe('scenario:other');
    expect(stepRefusal(parent, 'a', { kind: 'action', action: 'scenario.run' }, { id: 'child' }, undefined)).toBeNull();
    expect(Object.keys(scopeSecrets(child, { ok: 1, db: 2 }, [parent]))).toEqual(['ok']);
  });

  it('gives a run only its declared secrets and refuses the step that read another', () => {
    const box = scopeSecrets(s, { ok: 'value-ok', db: 'value-db' });
    const scope = { secrets: box };
    expect(interpolate('${secrets["ok"]}', scope, { revealSecrets: true })).toBe('value-ok');
    expect(stepRefusal(s, 'a', { kind: 'action', action: 'memory.set' }, {}, box)).toBeNull();
    expect(interpolate('${secrets["db"]}', scope, { revealSecrets: true })).toBeUndefined();
    expect(stepRefusal(s, 'b', { kind: 'action', action: 'memory.set' }, {}, box)?.permission).toBe('secrets:db');
    // Taken once: the next step is judged on its own reads.
    expect(stepRefusal(s, 'c', { kind: 'action', action: 'memory.set' }, {}, box)).toBeNull();
    expect(Object.keys(box)).toEqual(['ok']);
  });
});

describe('canonical form', () => {
  const text = (extra = '') => `id: canon\nsteps:\n  - name: hello\n    action: io.say\n    with: { text: hi, source: "user data" }\n${extra}  - include: ./fragments/f.yaml#more\n`;
  const fragment = 'more:\n  - name: bye\n    action: io.say\n    with: { text: bye }\n';

  it('drops where the scenario was loaded from (source), keeps a with.source, and is the same wherever the files live', () => {
    const one = folder({ 's.yaml': text(), 'fragments/f.yaml': fragment });
    const two = folder({ 'nested/s.yaml': `# a comment\n${text()}`, 'nested/fragments/f.yaml': `\n${fragment}` });
    const a = loadScenarioFile(join(one, 's.yaml'));
    const b = loadScenarioFile(join(two, 'nested', 's.yaml'));
    expect(a.steps[1]!.source).toContain(one);
    const json = new TextDecoder().decode(canonicalScenario(a));
    expect(json).not.toContain(one);
    expect(json).toContain('"source":"user data"');
    expect(json).toContain('"name":"bye"');
    expect(scenarioCid(a)).toBe(scenarioCid(b));
    expect(scenarioCid(a)).toMatch(/^b3:[0-9a-f]{64}$/);
  });

  it('changes with one byte of an included fragment', () => {
    const one = folder({ 's.yaml': text(), 'fragments/f.yaml': fragment });
    const two = folder({ 's.yaml': text(), 'fragments/f.yaml': fragment.replace('bye }', 'bye! }') });
    expect(scenarioCid(loadScenarioFile(join(one, 's.yaml')))).not.toBe(scenarioCid(loadScenarioFile(join(two, 's.yaml'))));
  });

  it('reports a bus.publish permission that is not a topic pattern at its line', () => {
    let caught: unknown;
    try {
      parseScenario('id: bad_perm\npermissions: [tts, "bus.publish:a..b"]\nsteps:\n  - { name: a, action: io.say, with: { text: x } }\n', 'bad.yaml');
    } catch (err) {
      caught = err;
    }
    expect((caught as Error).message).toMatch(/^bad\.yaml:2:\d+ permissions\[1\]: "bus\.publish:a\.\.b"/);
  });
});
