/**
 * The plugin author's toolkit end to end, through the built `tessera` command: keygen → plugin init → build →
 * sign → verify → test, the scaffold's own test, and every way verification can fail (issue 3 §5, §6).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, requireBuild, runTessera } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

beforeAll(requireBuild);

/**
 * Each test drives the real command a dozen times or more, each a new Node process (~0.5 s idle, 3 s or more on a
 * loaded 2-core machine): a ceiling that holds under load, not an expected duration.
 */
const CLI_TEST = { timeout: 240_000 };

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

describe('tessera keygen', CLI_TEST, () => {
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

describe('tessera plugin', CLI_TEST, () => {
  it('takes an author from init to a verified, tested plugin, and the scaffold passes its own test', () => {
    const { data, key, dir } = setupAuthor();
    const verify = runTessera(['plugin', 'verify', dir, '--data', data]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^valid: my-policy@0\.1\.0 \(policy\) b3:/);

    // No --input: the manifest's example_input, the one place the example lives.
    expect(existsSync(join(dir, 'example-input.json'))).toBe(false);
    const test = runTessera(['plugin', 'test', dir, '--data', data, '--now', '2026-05-01T08:00:00Z']);
    expect(test.code).toBe(0);
    const result = JSON.parse(test.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ ok: true, verdict: 'ACK', reason: 'alice may open-gate', evidence: { at: '2026-05-01T08:00:00.000Z' }, now: '2026-05-01T08:00:00.000Z', capability_calls: [] });
    expect(result['duration_ms']).toEqual(expect.any(Number));
    expect(result['memory_used_bytes']).toBeGreaterThan(0);

    // Developer mode: no trust folder needed, and it says so on every run.
    const dev = runTessera(['plugin', 'test', dir, '--trust', tempDir(), '--dev-key', key]);
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
    const input = join(home, 'input.json');
    writeFileSync(input, JSON.stringify({ name: 'Ada' }));
    const r = runTessera(['plugin', 'test', dir, '--input', input, '--trust', tempDir(), '--dev-key', key]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { output: unknown; capability_calls: Array<{ capability: string; ok: boolean }> };
    expect(result.output).toEqual({ greeting: 'hello, Ada', count: 1 });
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

  it('runs, as printed by plugin init, from keygen to the scaffold passing its own test, from any folder and with no TESSERA_* settings', () => {
    const home = tempDir('tessera-printed-');
    // `tessera` on PATH is this build, as after an install; nothing else tells the scaffold where anything is.
    const binDir = join(home, 'bin');
    mkdirSync(binDir);
    writeFileSync(join(binDir, 'tessera'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(binDir, 'tessera'), 0o755);
    const env = cleanEnv({ PATH: `${binDir}${delimiter}${dirname(process.execPath)}${delimiter}/usr/bin:/bin` });
    delete env['TESSERA_BIN'];
    delete env['TESSERA_DEV_KEY'];
    const dir = join(home, 'gate policy');
    const init = spawnSync('tessera', ['plugin', 'init', dir, '--kind', 'policy'], { env, encoding: 'utf8' });
    expect(init.status).toBe(0);
    const printed = init.stdout.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.replace(/\s{2,}\(.*\)$/, '').trim());
    expect(printed.map((c) => c.split(' ').slice(0, 3).join(' '))).toEqual(['tessera keygen --out', "tessera plugin build", "tessera plugin sign", "tessera plugin test", `node --test '${join(dir, 'test')}'`.split(' ').slice(0, 3).join(' ')]);
    const elsewhere = tempDir();
    for (const command of printed) {
      const r = spawnSync('/bin/sh', ['-c', command], { cwd: elsewhere, env, encoding: 'utf8' });
      expect(r.status, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
    }
    const last = spawnSync('/bin/sh', ['-c', printed.at(-1)!], { cwd: elsewhere, env, encoding: 'utf8' });
    expect(last.stdout).toMatch(/# pass 1/);
  });

  it('refuses a plugin name that sign would reject, in words, before writing anything; sign says the name rule in words too', () => {
    const home = tempDir();
    const short = runTessera(['plugin', 'init', join(home, 'x'), '--kind', 'policy']);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('error CONFIG_INVALID: The folder name x gives the plugin name "x", which cannot be used: a plugin name is 2–64 characters');
    expect(short.stderr).toContain('--name');
    expect(existsSync(join(home, 'x'))).toBe(false);
    expect(runTessera(['plugin', 'init', join(home, 'y'), '--kind', 'policy', '--name', 'Gate_Policy'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--name "Gate_Policy" cannot be a plugin name') });
    // A folder name that needs cleaning gives a name sign accepts.
    const key = join(home, 'k');
    runTessera(['keygen', '--out', key]);
    const dir = join(home, '2 Gate Policy!');
    expect(runTessera(['plugin', 'init', dir, '--kind', 'policy'])).toMatchObject({ code: 0, stdout: expect.stringContaining('Created policy plugin "gate-policy"') });
    expect(runTessera(['plugin', 'build', dir]).code).toBe(0);
    expect(runTessera(['plugin', 'sign', dir, '--key', key]).code).toBe(0);
    // A name edited by hand: the rule in words, not the regular expression.
    editJson(join(dir, 'plugin.json'), (j) => (j['name'] = 'x'));
    const sign = runTessera(['plugin', 'sign', dir, '--key', key]);
    expect(sign.code).toBe(1);
    expect(sign.stderr).toContain('/name "x" is not valid: a plugin name is 2–64 characters: a lowercase letter first, then lowercase letters, digits or "-"');
    expect(sign.stderr).not.toMatch(/pattern|\^\[a-z\]/);
  });

  it('trusts a key from a --trust folder holding the KEY.pub that keygen wrote, and KEY_UNKNOWN says how to trust one', () => {
    const { key, dir } = setupAuthor();
    const trust = tempDir();
    const unknown = runTessera(['plugin', 'verify', dir, '--trust', trust]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/invalid: KEY_UNKNOWN: my-policy is signed by a key that is not trusted here: b3:[0-9a-f]{64}\. Trust the publisher's public key with `tessera trust add KEY\.pub`/);
    copyFileSync(`${key}.pub`, join(trust, 'author-key.pub'));
    const ok = runTessera(['plugin', 'verify', dir, '--trust', trust]);
    expect(ok).toMatchObject({ code: 0, stdout: expect.stringContaining('(author-key)') });
    // keygen's own folder works as a trust folder: the private key beside KEY.pub is not a key file it reads.
    expect(runTessera(['plugin', 'verify', dir, '--trust', dirname(key)]).code).toBe(0);
  });

  it('warns when the build is stale: sources changed after build, an entry edited after build, a signature of an older build', () => {
    const { key, dir } = setupAuthor();
    const source = join(dir, 'src', 'index.js');
    const later = new Date(Date.now() + 60_000);
    appendFileSync(source, '\nexport const changed = true;\n');
    utimesSync(source, later, later);
    const sign = runTessera(['plugin', 'sign', dir, '--key', key]);
    expect(sign.code).toBe(0);
    expect(sign.stderr).toContain('warning: src/index.js changed after plugin.js was built; signed it anyway. Rebuild and sign: tessera plugin build');
    const test = runTessera(['plugin', 'test', dir, '--trust', tempDir(), '--dev-key', key]);
    expect(test.code).toBe(0);
    expect(test.stderr).toContain('warning: src/index.js changed after plugin.js was built; testing the old build.');

    const build = runTessera(['plugin', 'build', dir]);
    expect(build.code).toBe(0);
    expect(build.stderr).toMatch(/warning: plugin\.sig signs the previous build \(b3:[0-9a-f]{64}\), not this one: the plugin will not load until you sign again/);
    const earlier = new Date(Date.now() - 60_000);
    utimesSync(source, earlier, earlier);
    const fresh = runTessera(['plugin', 'sign', dir, '--key', key]);
    expect(fresh).toMatchObject({ code: 0, stderr: '' });

    appendFileSync(join(dir, 'plugin.js'), '\n// edited by hand\n');
    expect(runTessera(['plugin', 'sign', dir, '--key', key]).stderr).toMatch(/warning: plugin\.js is not the build plugin\.json records \(b3:[0-9a-f]{64} there, b3:[0-9a-f]{64} on disk\)/);
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
