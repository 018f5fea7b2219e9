/**
 * Plugin Studio's side of the runtime (issue 13 points 2 and 18) on a real headless host: a Studio run is a trial in
 * a throwaway runtime, so a plugin with effects leaves the live store and journal as they were, over HTTP and over
 * the IPC bridge alike; and a plugin folder is loaded or reloaded without a restart, with the folders that failed
 * listed with their reason.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PluginInfo, PluginLoadFailure } from '../../main/common/api.js';
import { cidOf } from '../../main/common/cid.js';
import { handleInvoke } from '../../main/electron/ipc.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createOperations } from '../../main/host/operations.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { signPlugin } from '../../sandbox/package.js';
import { issuePermit } from '../../sandbox/permits.js';
import { makePublisher } from '../helpers/plugins.js';
import { tempDir } from '../helpers/tmp.js';

/** A pass with three rides: each run takes one (kv), announces it (events.emit) and says so (io.say, an effect). */
const PASS_TOOL = `export async function invoke(args, host) {
  const left = ((await host.call('kv.get', { key: 'rides' })) ?? 3) - 1;
  await host.call('kv.set', { key: 'rides', value: left });
  await host.call('events.emit', { topic: 'ride.taken', payload: { left } });
  await host.call('io.say', { text: 'Ride taken, ' + left + ' left' });
  return { left };
}`;

const publisher = makePublisher();
let host: RunningHost;
let dataDir: string;

beforeAll(async () => {
  dataDir = tempDir('tessera-studio-', 'file');
  mkdirSync(join(dataDir, 'trust'), { recursive: true });
  writeFileSync(join(dataDir, 'trust', 'test-publisher.pem'), publisher.key.publicKeyPem);
  mkdirSync(join(dataDir, 'plugins'), { recursive: true });
  cpSync(publisher.write({ name: 'pass-tool', kind: 'tool', code: PASS_TOOL, capabilities: [{ name: 'kv' }, { name: 'events.emit' }, { name: 'io.say' }] }), join(dataDir, 'plugins', 'pass-tool'), { recursive: true });
  // Found at start but never signed: the failure is listed from the first request on.
  cpSync(publisher.write({ name: 'unsigned-policy', code: 'export function decide() { return { verdict: "ACK", reason: "ok" }; }' }, false), join(dataDir, 'plugins', 'unsigned-policy'), { recursive: true });
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {}, pluginDirs: [join(dataDir, 'plugins')] });
}, 60_000);

afterAll(async () => {
  await host?.close();
});

const api = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
  const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${host.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/** This process's child processes (the live sandbox host among them), by pid, `ps` itself left out. */
function children(): number[] {
  return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.trim() !== '' && !/\bps$/.test(line.trim()))
    .map((line) => Number.parseInt(line, 10))
    .sort((a, b) => a - b);
}

/** What a run with effects would change in the live store: the plugin's key/value rows and the journal's events. */
function liveState() {
  const db = host.runtime.store.db;
  const kv = db.prepare("SELECT key, value FROM plugin_kv WHERE plugin = 'pass-tool' ORDER BY key").all();
  const events = host.runtime.journal.query({ topic: 'plugin.**', limit: 1000 }).events.map((e) => `${e.topic} ${JSON.stringify(e.payload)}`);
  const said = host.runtime.journal.query({ topic: 'io.say', limit: 1000 }).events.length;
  return { kv, events, said };
}

/** Each trial starts a sandbox host process (~0.3 s idle, seconds on a loaded machine): a ceiling, not a duration. */
const TRIALS = { timeout: 120_000 };

describe('a Studio run', TRIALS, () => {
  it('runs a plugin with effects in a throwaway runtime: the effects happen there, and the live store and journal stay as they were', async () => {
    const before = liveState();
    const processes = children();
    expect(before.kv).toEqual([]);
    for (let i = 0; i < 2; i++) {
      const run = await api('POST', '/api/plugins/test', { plugin: 'pass-tool', input: {} });
      expect(run.status).toBe(200);
      // Every trial starts from an empty store: the pass has three rides each time.
      expect(run.body['output']).toEqual({ left: 2 });
      expect((run.body['capability_calls'] as Array<{ capability: string; ok: boolean }>).map((c) => [c.capability, c.ok])).toEqual([['kv.get', true], ['kv.set', true], ['events.emit', true], ['io.say', true]]);
    }
    expect(liveState()).toEqual(before);

    // The same runs through the Electron IPC bridge take the same path.
    const ipc = await handleInvoke(createOperations(host.runtime), 'testPlugin', { plugin: 'pass-tool', input: {} });
    expect(ipc).toMatchObject({ ok: true, value: { output: { left: 2 } } });
    expect(liveState()).toEqual(before);

    // A folder and an uploaded package are trials too: nothing is loaded, nothing is written.
    const dir = join(dataDir, 'plugins', 'pass-tool');
    const listed = host.runtime.plugins.list().length;
    expect(await api('POST', '/api/plugins/test', { dir, input: {} })).toMatchObject({ status: 200, body: { output: { left: 2 } } });
    const pkg = { manifest: JSON.parse(readFileSync(join(dir, 'plugin.json'), 'utf8')) as Record<string, unknown>, code: readFileSync(join(dir, 'plugin.js'), 'utf8'), signature: JSON.parse(readFileSync(join(dir, 'plugin.sig'), 'utf8')) as Record<string, unknown> };
    expect(await api('POST', '/api/plugins/test', { package: pkg, input: {} })).toMatchObject({ status: 200, body: { output: { left: 2 } } });
    expect(host.runtime.plugins.list().length).toBe(listed);
    expect(liveState()).toEqual(before);
    // Each trial's sandbox host process is gone with it (the live runtime's own may have ended short-lived helpers).
    expect(children().filter((pid) => !processes.includes(pid))).toEqual([]);
    expect(children()).toContain(host.runtime.plugins.sandbox.pid);

    // The live runtime's own runs do take rides: the trial was what kept them apart.
    const permit = issuePermit(host.runtime.deviceKey, { input_cid: cidOf({}), scope: ['io.say'], expires_at: new Date(Date.now() + 60_000).toISOString(), nonce: 'live-ride-1' });
    await host.runtime.plugins.run('pass-tool', {}, { permit });
    expect(liveState().kv).toEqual([{ key: 'rides', value: '2' }]);
    expect(liveState().events).toEqual(expect.arrayContaining([expect.stringMatching(/^plugin\.pass-tool\.ride\.taken /)]));
  });

  it('answers trust and plugin failures with their codes, as before', async () => {
    expect(await api('POST', '/api/plugins/test', { plugin: 'no-such-plugin', input: {} })).toMatchObject({ status: 404, body: { error: { code: 'PLUGIN_NOT_FOUND' } } });
    expect(await api('POST', '/api/plugins/test', { dir: join(dataDir, 'plugins', 'unsigned-policy'), input: {} })).toMatchObject({ status: 400, body: { error: { code: 'PLUGIN_UNSIGNED' } } });
    expect(await api('POST', '/api/plugins/test', { plugin: 'pass-tool', input: {}, now: 'yesterday' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
  });
});

describe('loading plugin folders without a restart', TRIALS, () => {
  it('lists a folder that failed at start with its reason, and loads it once it is fixed', async () => {
    const failed = await api('GET', '/api/plugins/failures');
    expect(failed.status).toBe(200);
    const unsigned = join(dataDir, 'plugins', 'unsigned-policy');
    expect(failed.body['failures']).toEqual([{ dir: unsigned, error: { code: 'PLUGIN_UNSIGNED', message: expect.stringContaining('plugin.sig is missing') }, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) }]);

    signPlugin(unsigned, publisher.key);
    const loaded = await api('POST', '/api/plugins/load', { dir: unsigned });
    expect(loaded).toMatchObject({ status: 200, body: { name: 'unsigned-policy', version: '1.0.0', trust: 'trusted' } });
    expect(((await api('GET', '/api/plugins')).body['plugins'] as PluginInfo[]).map((p) => p.name).sort()).toEqual(['pass-tool', 'unsigned-policy']);
    expect((await api('GET', '/api/plugins/failures')).body['failures']).toEqual([]);
  });

  it('reloads a plugin from its folder after a rebuild: the new code replaces the loaded version', async () => {
    const dir = join(dataDir, 'plugins', 'pass-tool');
    const old = host.runtime.plugins.find('pass-tool')!;
    writeFileSync(join(dir, 'plugin.js'), PASS_TOOL.replace("?? 3", "?? 10"));
    signPlugin(dir, publisher.key);
    // Until it is reloaded, a Studio run refuses to run other code than the plugin it shows.
    expect(await api('POST', '/api/plugins/test', { plugin: 'pass-tool', input: {} })).toMatchObject({ status: 404, body: { error: { code: 'PLUGIN_NOT_FOUND', message: expect.stringContaining('Load the folder again') } } });
    const reloaded = await api('POST', '/api/plugins/load', { plugin: 'pass-tool' });
    expect(reloaded.status).toBe(200);
    expect(reloaded.body['cid']).not.toBe(old.cid);
    const named = ((await api('GET', '/api/plugins')).body['plugins'] as PluginInfo[]).filter((p) => p.name === 'pass-tool');
    expect(named.map((p) => p.cid)).toEqual([reloaded.body['cid']]);
    expect(await api('POST', '/api/plugins/test', { plugin: 'pass-tool', input: {} })).toMatchObject({ status: 200, body: { output: { left: 9 } } });
  });

  it('refuses a folder that does not verify, keeps what was loaded from it, and lists the failure until it loads', async () => {
    const dir = join(dataDir, 'plugins', 'unsigned-policy');
    const loaded = host.runtime.plugins.find('unsigned-policy')!;
    appendFileSync(join(dir, 'plugin.js'), '\n// changed after signing');
    const refused = await api('POST', '/api/plugins/load', { dir });
    expect(refused).toMatchObject({ status: 400, body: { error: { code: 'PLUGIN_TAMPERED' } } });
    expect(host.runtime.plugins.find('unsigned-policy')?.cid).toBe(loaded.cid);
    const failures = (await api('GET', '/api/plugins/failures')).body['failures'] as PluginLoadFailure[];
    expect(failures).toEqual([expect.objectContaining({ dir, error: expect.objectContaining({ code: 'PLUGIN_TAMPERED' }) })]);

    // Over IPC: the same calls, the same answers.
    const operations = createOperations(host.runtime);
    expect(await handleInvoke(operations, 'pluginFailures', undefined)).toEqual({ ok: true, value: failures });
    expect(await handleInvoke(operations, 'loadPlugin', { dir, plugin: 'x' })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(await handleInvoke(operations, 'loadPlugin', { dir, extra: 1 })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    signPlugin(dir, publisher.key);
    expect(await handleInvoke(operations, 'loadPlugin', { dir })).toMatchObject({ ok: true, value: { name: 'unsigned-policy' } });
    expect((await api('GET', '/api/plugins/failures')).body['failures']).toEqual([]);

    const missing = join(dataDir, 'plugins', 'gone');
    expect(await api('POST', '/api/plugins/load', { dir: missing })).toMatchObject({ status: 404, body: { error: { code: 'PLUGIN_NOT_FOUND' } } });
    expect(await api('POST', '/api/plugins/load', {})).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/plugins/load', { plugin: 'no-such-plugin' })).toMatchObject({ status: 404, body: { error: { code: 'PLUGIN_NOT_FOUND' } } });
    rmSync(missing, { recursive: true, force: true });
  });
});
