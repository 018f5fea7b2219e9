/**
 * The plugin author's toolkit end to end, through the built `tessera` command: keygen → plugin init → build →
 * sign → verify → test, the scaffold's own test, and every way verification can fail (issue 3 §5, §6).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, requireBuild, runTessera } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

beforeAll(requireBuild);

function setupAuthor() {
  const home = tempDir('tessera-author-');
  const data = join(home, 'data');
  const key = join(home, 'author-key');
  const dir = join(home, 'my-policy');
  expect(runTessera(['keygen', '--out', key]).code).toBe(0);
  expect(runTessera(['plugin', 'init', dir, '--kind', 'policy']).code).toBe(0);
  expect(runTessera(['plugin', 'build', dir]).code).toBe(0);
  expect(runTessera(['plugin', 'sign', dir, '--key', key]).code).toBe(0);
  expect(runTessera(['trust', 'add', `${key}.pub`, '--name', 'author', '--data', data]).code).toBe(0);
  return { home, data, key, dir };
}

const editJson = (file: string, edit: (j: Record<string, unknown>) => void) => {
  const j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(j);
  writeFileSync(file, JSON.stringify(j, null, 2));
};

describe('tessera keygen', () => {
  it('writes a 0600 private key and its public half, prints the key id, and never overwrites silently', () => {
    const key = join(tempDir(), 'k');
    const r = runTessera(['keygen', '--out', key]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/key id: b3:[0-9a-f]{64}/);
    expect(r.stdout).toContain('-----BEGIN PUBLIC KEY-----');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${key}.pub`, 'utf8')).toContain('PUBLIC KEY');
    const again = runTessera(['keygen', '--out', key]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/error KEY_FILE_INVALID: .*exists; refusing to replace a key .*tessera keygen --force/);
    expect(runTessera(['keygen', '--out', key, '--force']).code).toBe(0);
    // A KEY.pub left without its KEY may be another key's public half: refused too, and kept as it was.
    const orphan = join(tempDir(), 'orphan');
    writeFileSync(`${orphan}.pub`, 'someone else');
    const pub = runTessera(['keygen', '--out', orphan]);
    expect(pub.code).toBe(1);
    expect(pub.stderr).toContain(`error KEY_FILE_INVALID: Key file ${orphan}.pub`);
    expect(readFileSync(`${orphan}.pub`, 'utf8')).toBe('someone else');
    expect(existsSync(orphan)).toBe(false);
    const folder = runTessera(['keygen', '--out', tempDir()]);
    expect(folder.code).toBe(1);
    expect(folder.stderr).toMatch(/is a folder; give the path of the key file/);
    // The public half given where the private key goes: named as such, not blamed on its (normal) 0644 mode.
    const wrongHalf = runTessera(['plugin', 'sign', tempDir(), '--key', `${key}.pub`]);
    expect(wrongHalf.code).toBe(1);
    expect(wrongHalf.stderr).toContain(`this is a public key; give the private key file (${key}) instead`);
  });
});

describe('tessera plugin', () => {
  it('takes an author from init to a verified, tested plugin, and the scaffold passes its own test', () => {
    const { data, key, dir } = setupAuthor();
    const verify = runTessera(['plugin', 'verify', dir, '--data', data]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^valid: my-policy@0\.1\.0 \(policy\) b3:/);

    const test = runTessera(['plugin', 'test', dir, '--input', join(dir, 'example-input.json'), '--data', data, '--now', '2026-05-01T08:00:00Z']);
    expect(test.code).toBe(0);
    const result = JSON.parse(test.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ ok: true, verdict: 'ACK', reason: 'alice may open-gate', evidence: { at: '2026-05-01T08:00:00.000Z' }, now: '2026-05-01T08:00:00.000Z', capability_calls: [] });
    expect(result['duration_ms']).toEqual(expect.any(Number));
    expect(result['memory_used_bytes']).toBeGreaterThan(0);

    // Developer mode: no trust folder needed, and it says so on every run.
    const dev = runTessera(['plugin', 'test', dir, '--input', join(dir, 'example-input.json'), '--trust', tempDir(), '--dev-key', key]);
    expect(dev.code).toBe(0);
    expect(dev.stderr).toMatch(/developer mode: trusting b3:[0-9a-f]{64}/);
    expect(JSON.parse(dev.stdout)).toMatchObject({ ok: true, plugin: { trust: 'developer' } });

    // The scaffold's own test runs the plugin through the real command.
    const out = execFileSync(process.execPath, ['--test', join(dir, 'test')], { env: { ...cleanEnv(), TESSERA_BIN: BIN, TESSERA_DEV_KEY: key }, encoding: 'utf8' });
    expect(out).toMatch(/# pass 1/);
  });

  it('scaffolds a tool plugin whose test run shows its capability calls', () => {
    const home = tempDir();
    const key = join(home, 'k');
    const dir = join(home, 'greeter');
    runTessera(['keygen', '--out', key]);
    expect(runTessera(['plugin', 'init', dir, '--kind', 'tool']).code).toBe(0);
    runTessera(['plugin', 'build', dir]);
    runTessera(['plugin', 'sign', dir, '--key', key]);
    const r = runTessera(['plugin', 'test', dir, '--input', join(dir, 'example-input.json'), '--trust', tempDir(), '--dev-key', key]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { output: unknown; capability_calls: Array<{ capability: string; ok: boolean }> };
    expect(result.output).toEqual({ greeting: 'hello, traveller', count: 1 });
    expect(result.capability_calls.map((c) => [c.capability, c.ok])).toEqual([['kv.get', true], ['kv.set', true]]);
  });

  it('refuses to load, naming what is wrong: unsigned, tampered code, tampered manifest, unknown key, revoked key, invalid manifest, ungrantable capability', () => {
    const { data, key, dir } = setupAuthor();
    const verify = (d = dir, extra: string[] = []) => {
      const r = runTessera(['plugin', 'verify', d, '--data', data, ...extra]);
      return { code: r.code, out: r.stderr };
    };

    const code = join(dir, 'plugin.js');
    const original = readFileSync(code);
    appendFileSync(code, '\n// evil');
    expect(verify()).toMatchObject({ code: 1, out: expect.stringMatching(/invalid: PLUGIN_TAMPERED: .*plugin\.js no longer matches its cid/) });
    writeFileSync(code, original);
    expect(verify().code).toBe(0);

    const manifest = join(dir, 'plugin.json');
    const manifestText = readFileSync(manifest, 'utf8');
    editJson(manifest, (j) => (j['limits'] = { memory_mb: 128, timeout_ms: 1000 }));
    expect(verify()).toMatchObject({ code: 1, out: expect.stringMatching(/invalid: PLUGIN_TAMPERED: .*plugin\.json was changed after it was signed/) });
    writeFileSync(manifest, manifestText);

    expect(verify(dir, ['--trust', tempDir()])).toMatchObject({ code: 1, out: expect.stringMatching(/invalid: KEY_UNKNOWN: .*b3:[0-9a-f]{64}/) });

    const sig = join(dir, 'plugin.sig');
    const sigText = readFileSync(sig, 'utf8');
    rmSync(sig);
    expect(verify()).toMatchObject({ code: 1, out: expect.stringMatching(/invalid: PLUGIN_UNSIGNED: .*plugin\.sig is missing/) });
    writeFileSync(sig, sigText.replace(/"sig": "[A-Za-z0-9+/]{10}/, '"sig": "AAAAAAAAAA'));
    expect(verify()).toMatchObject({ code: 1, out: expect.stringMatching(/invalid: SIGNATURE_INVALID/) });
    writeFileSync(sig, sigText);

    editJson(manifest, (j) => (j['kind'] = 'virus'));
    expect(runTessera(['plugin', 'sign', dir, '--key', key])).toMatchObject({ code: 1, stderr: expect.stringMatching(/error PLUGIN_MANIFEST_INVALID: .*\/kind/) });
    writeFileSync(manifest, manifestText);

    editJson(manifest, (j) => (j['capabilities'] = [{ name: 'shell.exec' }]));
    expect(runTessera(['plugin', 'sign', dir, '--key', key]).code).toBe(0);
    expect(verify()).toMatchObject({ code: 1, out: expect.stringMatching(/invalid: CAPABILITY_NOT_GRANTABLE: .*shell\.exec/) });
    writeFileSync(manifest, manifestText);
    expect(runTessera(['plugin', 'sign', dir, '--key', key]).code).toBe(0);
    expect(verify().code).toBe(0);

    const listed = runTessera(['trust', 'list', '--data', data, '--json']);
    const author = (JSON.parse(listed.stdout) as { keys: Array<{ keyid: string; name: string }> }).keys.find((k) => k.name === 'author')!;
    expect(author.keyid).toMatch(/^b3:[0-9a-f]{64}$/);
    expect(runTessera(['trust', 'revoke', author.keyid, '--reason', 'laptop stolen', '--data', data]).code).toBe(0);
    expect(verify()).toMatchObject({ code: 1, out: expect.stringMatching(/invalid: KEY_REVOKED: .*laptop stolen/) });
    expect(runTessera(['trust', 'list', '--data', data]).stdout).toMatch(/revoked\s+b3:[0-9a-f]{64}\s+author\s+\(revoked: laptop stolen\)/);
  });

  it('answers usage mistakes clearly', () => {
    expect(runTessera(['plugin', 'init', tempDir(), '--kind', 'daemon'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--kind must be policy or tool') });
    expect(runTessera(['plugin', 'sign', tempDir()])).toMatchObject({ code: 2, stderr: expect.stringContaining('--key KEY is required') });
    expect(runTessera(['plugin', 'verify', join(tempDir(), 'nope')])).toMatchObject({ code: 1, stderr: expect.stringContaining('PLUGIN_NOT_FOUND') });
    expect(runTessera(['plugin', 'frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "plugin frobnicate"') });
    const help = runTessera(['plugin', '--help']);
    expect(help.code).toBe(0);
    for (const sub of ['init', 'build', 'sign', 'verify', 'test']) expect(help.stdout).toContain(`tessera plugin ${sub}`);
    const badInput = join(tempDir(), 'in.json');
    writeFileSync(badInput, '{nope');
    expect(runTessera(['plugin', 'test', tempDir(), '--input', badInput])).toMatchObject({ code: 1, stderr: expect.stringContaining('VALIDATION_FAILED') });
    expect(existsSync(BIN)).toBe(true);
  });
});
