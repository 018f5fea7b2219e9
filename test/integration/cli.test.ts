import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { APP_ROOT } from '../../main/host/paths.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import pkg from '../../package.json' with { type: 'json' };
import { cleanEnv, requireBuild, runTessera, runTesseraAsync, startTessera } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

beforeAll(requireBuild);

/** These tests start real `tessera` processes (seconds each on a loaded 2-core machine): a ceiling, not a duration. */
describe('tessera CLI', { timeout: 120_000 }, () => {
  // Independent commands run side by side: each is a fresh Node process, and vitest's one worker leaves the other core idle.
  it('prints help for the program and for every command', async () => {
    const cmds = ['start', 'doctor', 'version'];
    const [top, ...rest] = await Promise.all([
      runTesseraAsync(['--help']),
      ...cmds.flatMap((cmd) => [runTesseraAsync([cmd, '--help']), runTesseraAsync(['help', cmd])]),
    ]);
    expect(top!.code).toBe(0);
    cmds.forEach((cmd, i) => {
      const [help, viaHelp] = [rest[2 * i]!, rest[2 * i + 1]!];
      expect(top!.stdout).toContain(cmd);
      expect(help.code, cmd).toBe(0);
      expect(help.stdout).toContain(`Usage: tessera ${cmd}`);
      expect(help.stdout).toContain('--help');
      expect(viaHelp.stdout).toBe(help.stdout);
    });
    expect(rest[0]!.stdout).toMatch(/--headless[\s\S]*--port N[\s\S]*--host H[\s\S]*--data DIR/);
  });

  it('answers usage errors with exit 2 and the CONFIG_INVALID code', async () => {
    const [unknown, badFlag, jsn, extra, out, noTrust, group, bare, nope, badPort] = await Promise.all([
      runTesseraAsync(['frobnicate']),
      runTesseraAsync(['start', '--colour']),
      runTesseraAsync(['bundle', 'verify', 'x.zip', '--jsn']),
      runTesseraAsync(['version', 'extra']),
      runTesseraAsync(['keygen', '--out']),
      runTesseraAsync(['plugin', 'verify', tempDir(), '--trust', join(tempDir(), 'nope')]),
      runTesseraAsync(['help', 'consent']),
      runTesseraAsync(['consent']),
      runTesseraAsync(['help', 'nope']),
      runTesseraAsync(['start', '--headless', '--port', 'abc', '--data', tempDir()]),
    ]);
    expect(unknown!.code).toBe(2);
    expect(unknown!.stderr).toContain('error CONFIG_INVALID: unknown command "frobnicate"');
    expect(badFlag!.code).toBe(2);
    expect(badFlag!.stderr).toContain('error CONFIG_INVALID');
    expect(jsn!.stderr).toContain('error CONFIG_INVALID: unknown option "--jsn"');
    expect(extra!.stderr).toContain('error CONFIG_INVALID: unexpected argument "extra"; this command takes no arguments');
    expect(out!.stderr).toContain('error CONFIG_INVALID: --out needs a value');
    expect(noTrust!.code).toBe(2);
    expect(noTrust!.stderr).toMatch(/error CONFIG_INVALID: --trust .*nope: no such folder/);
    // help names a group's commands, and says when there is no such command.
    expect(group!.code).toBe(0);
    expect(group!.stdout).toMatch(/tessera consent list[\s\S]*tessera consent approve/);
    expect(bare!.stdout).toBe(group!.stdout);
    expect(nope!.code).toBe(2);
    expect(nope!.stderr).toContain('error CONFIG_INVALID: unknown command "nope"');
    expect(badPort!.code).toBe(2);
    expect(badPort!.stderr).toContain('--port must be an integer');
  });

  it('prints the package version', () => {
    const r = runTessera(['version', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'tessera', version: pkg.version });
  });

  it('runs through npx without npm warnings, while onnxruntime-node stays denied its GPU download', () => {
    // Only this project's npm configuration counts: the user's own ~/.npmrc is replaced by an empty one.
    const userconfig = join(tempDir(), 'npmrc');
    writeFileSync(userconfig, '');
    const r = spawnSync('npx', ['--no-install', 'tessera', 'version'], { cwd: APP_ROOT, env: cleanEnv({ npm_config_userconfig: userconfig }), encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`tessera ${pkg.version}`);
    expect(r.stderr).not.toMatch(/npm warn/i);
    // What the removed .npmrc key was for: the postinstall is denied by allowScripts and skipped by setup's environment.
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    expect(readFileSync(join(APP_ROOT, 'scripts', 'setup.sh'), 'utf8')).toMatch(/ONNXRUNTIME_NODE_INSTALL=skip [^\n]*npm ci/);
  });

  it('doctor reports every optional part with its state and exits 0 when the core works', () => {
    const r = runTessera(['doctor', '--json']);
    expect(r.code).toBe(0);
    const { checks } = JSON.parse(r.stdout) as { checks: Array<{ name: string; core: boolean; ok: boolean; fix?: string }> };
    const names = checks.map((c) => c.name).join(' | ');
    for (const part of ['Electron binary', 'Display', 'Chromium', 'isolated-vm', 'espeak-ng', 'pocketsphinx', 'sox']) expect(names).toContain(part);
    expect(checks.filter((c) => c.core).every((c) => c.ok)).toBe(true);
    for (const c of checks.filter((c) => !c.ok)) expect(c.fix, c.name).toBeTruthy();
    // no display in the test environment: the human report says so and names the way out
    const human = runTessera(['doctor']);
    expect(human.stdout).toMatch(/missing\s+optional Display/);
    expect(human.stdout).toContain('Core: working');
  });

  it('starts headless, guards the API with the token from <data>/api-token, and stops cleanly on SIGTERM', async () => {
    const data = tempDir();
    const t = await startTessera(data);
    const token = readFileSync(join(data, 'api-token'), 'utf8').trim();
    expect(statSync(join(data, 'api-token')).mode & 0o777).toBe(0o600);
    expect(t.uiUrl).toBe(`${t.origin}/#token=${token}`);
    expect((await fetch(`${t.origin}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.origin}/api/events`)).status).toBe(401);
    expect((await fetch(`${t.origin}/api/events`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(await (await fetch(`${t.origin}/`)).text()).toContain('<div id="app">');
    // the first-party plugins load in the background at start
    let plugins: Array<{ name: string; trust: string }> = [];
    for (const deadline = Date.now() + 20_000; plugins.length < 10 && Date.now() < deadline; ) {
      plugins = ((await (await fetch(`${t.origin}/api/plugins`, { headers: { authorization: `Bearer ${token}` } })).json()) as { plugins: typeof plugins }).plugins;
      if (plugins.length < 10) await new Promise((r) => setTimeout(r, 50));
    }
    expect(plugins.map((p) => p.name).sort()).toEqual(['intake-event', 'policy-agent-proposal', 'policy-authorization', 'policy-availability', 'policy-coverage', 'policy-existence', 'policy-product-quota', 'policy-quota', 'policy-risk', 'tool-weather']);

    // A live WebSocket client and a keep-alive HTTP connection must not hold up the shutdown.
    const ws = new WebSocket(t.origin.replace('http', 'ws') + '/ws?topics=**', { headers: { authorization: `Bearer ${token}` } });
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    t.child.kill('SIGTERM');
    expect(await t.exited).toBe(0);
    expect(await closed).toBe(1001);
    expect(t.stderr()).toContain('Stopped cleanly');

    // The database was closed properly: WAL checkpointed, stop journaled, integrity intact.
    expect(!existsSync(join(data, 'tessera.db-wal')) || statSync(join(data, 'tessera.db-wal')).size === 0).toBe(true);
    const store = openStore({ path: join(data, 'tessera.db') });
    try {
      expect(store.integrityCheck()).toEqual(['ok']);
      const topics = createJournal({ store }).query().events.map((e) => e.topic);
      expect(topics.filter((t) => t.startsWith('runtime.') || t.startsWith('host.'))).toEqual(['runtime.started', 'host.listening', 'runtime.stopping']);
      // the ten first-party plugins, built and signed by `npm run build`, were loaded at start
      expect(topics.filter((t) => t === 'plugin.loaded')).toHaveLength(10);
      expect(topics).not.toContain('plugin.load_failed');
    } finally {
      store.close();
    }
  });

  it('uses TESSERA_TOKEN instead of a token file, and TESSERA_DATA as the data folder', async () => {
    const data = tempDir();
    const env = cleanEnv({ TESSERA_TOKEN: 'env-token-abcdefghijklmnop', TESSERA_DATA: data });
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../helpers/cli.js');
    const child = spawn(process.execPath, [BIN, 'start', '--headless', '--port', '0'], { env });
    const origin = await new Promise<string>((resolve) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /Open:\s+(http:\/\/[^\s/]+)/.exec(out);
        if (m) resolve(m[1]!);
      });
    });
    expect((await fetch(`${origin}/api/events`, { headers: { authorization: 'Bearer env-token-abcdefghijklmnop' } })).status).toBe(200);
    expect(existsSync(join(data, 'api-token'))).toBe(false);
    expect(existsSync(join(data, 'tessera.db'))).toBe(true);
    child.kill('SIGINT');
    expect(await new Promise((r) => child.on('exit', r))).toBe(0);
  });

  it('refuses a port in use with PORT_IN_USE and leaves the running instance alone', async () => {
    const first = await startTessera(tempDir());
    const port = new URL(first.origin).port;
    const second = runTessera(['start', '--headless', '--port', port, '--data', tempDir()]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('error PORT_IN_USE');
    expect((await fetch(`${first.origin}/healthz`)).status).toBe(200);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
  });

  it('exits 1 with the error when the start fails after the database opened, leaving nothing running', async () => {
    // A database that a newer release migrated: refused once the store is open and the sandbox host may be up.
    const data = tempDir();
    const first = await startTessera(data);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    const store = openStore({ path: join(data, 'tessera.db') });
    store.db.prepare("INSERT INTO _migrations (module, version, name, applied_at) VALUES ('receipts', 99, 'from the future', 0)").run();
    store.close();
    const started = Date.now();
    const refused = runTessera(['start', '--headless', '--port', '0', '--data', data]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error STORE_TOO_NEW');
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 40_000);
});
