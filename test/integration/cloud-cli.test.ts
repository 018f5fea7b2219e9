/**
 * `tessera cloud start` with no arguments serves a working cloud on PGlite (issue 16 "Done when"): the built CLI
 * as a real process on its default port, real HTTP; the operator's first steps through the CLI (tenant, code), a
 * device enrolling over HTTP, a clean stop on SIGTERM, and the data still there after a restart.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { cpSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enrollSigningBytes } from '../../main/common/cloud.js';
import { toBase64 } from '../../main/common/dsse.js';
import { startCloud } from '../../main/cloud/index.js';
import { generateKeyPair } from '../../main/runtime/keys/index.js';
import { createLogger } from '../../main/runtime/log/index.js';
import { BIN, cleanEnv, requireBuild, runTessera, runTesseraAsync } from '../helpers/cli.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

interface StartedCloud {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const started: StartedCloud[] = [];
afterEach(() => {
  for (const c of started.splice(0)) if (c.child.exitCode === null) c.child.kill('SIGKILL');
});

/** Environment with no cloud settings inherited: the defaults are what is tested. */
function cloudEnv(dataDir: string): NodeJS.ProcessEnv {
  const env = cleanEnv({ TESSERA_DATA: dataDir, TESSERA_LOG_LEVEL: 'warn' });
  for (const name of ['DATABASE_URL', 'TESSERA_CLOUD_DATA', 'TESSERA_CLOUD_URL', 'TESSERA_CLOUD_TOKEN']) delete env[name];
  return env;
}

function startCloudProcess(args: string[], env: NodeJS.ProcessEnv): Promise<StartedCloud> {
  const child = spawn(process.execPath, [BIN, 'cloud', 'start', ...args], { env });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    // A ceiling for a loaded machine, not an expected duration.
    const timer = setTimeout(() => reject(new Error(`tessera cloud start did not print its URL in time.\nstdout: ${out}\nstderr: ${err}`)), 90_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /URL:\s+(http:\/\/\S+)/.exec(out);
      if (m && out.includes('Press Ctrl+C')) {
        clearTimeout(timer);
        const c = { child, url: m[1]!, stdout: () => out, stderr: () => err, exited };
        started.push(c);
        resolve(c);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tessera cloud start exited early with ${code}.\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** Whether 127.0.0.1:port can be bound now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function api(url: string, method: 'GET' | 'POST', path: string, token?: string, body?: unknown) {
  const res = await fetch(url + path, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('tessera cloud (built CLI, real process)', () => {
  beforeAll(() => requireBuild());

  it('`tessera cloud start` with no arguments serves a working cloud on PGlite; tenant and code from the CLI; a device enrolls; data survives a restart', async () => {
    const data = tempDir('tessera-cloud-cli-');
    const env = cloudEnv(data);
    // The default port may be held for a moment by another test's cloud on this machine: wait for it, do not pick another.
    await expect.poll(() => portFree(4700), { timeout: 60_000, interval: 500 }).toBe(true);
    const cloud = await startCloudProcess([], env);
    expect(cloud.url).toBe('http://127.0.0.1:4700');
    const tokenFile = join(data, 'cloud', 'root-token');
    expect(cloud.stdout()).toContain(`PGlite (embedded) in ${join(data, 'cloud', 'pglite')}`);
    expect(cloud.stdout()).toContain(tokenFile);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(data, 'cloud', 'pglite')).isDirectory()).toBe(true);

    // The operator's first steps, through the CLI against the running process (root token read from the cloud's folder).
    const tenant = runTessera(['cloud', 'tenant', 'create', 'acme', '--name', 'Acme Museums'], env);
    expect(tenant.stderr).toBe('');
    expect(tenant.code).toBe(0);
    const admin = /Admin token: (\S+)/.exec(tenant.stdout)?.[1];
    expect(admin).toMatch(/^tta_/);
    const again = runTessera(['cloud', 'tenant', 'create', 'acme'], env);
    expect([again.code, again.stderr]).toEqual([1, expect.stringContaining('error TENANT_EXISTS')]);
    const code = runTessera(['cloud', 'code', '--role', 'kiosk', '--venue', 'museum', '--json'], { ...env, TESSERA_CLOUD_TOKEN: admin! });
    expect(code.code).toBe(0);
    const enrollment = JSON.parse(code.stdout) as { code: string; role: string };
    expect(enrollment.role).toBe('kiosk');

    // A device enrolls over real HTTP.
    const key = generateKeyPair();
    const challenge = await api(cloud.url, 'POST', '/v1/enroll/challenge', undefined, { code: enrollment.code });
    expect(challenge.status).toBe(200);
    const ch = String(challenge.json['challenge']);
    const enrolled = await api(cloud.url, 'POST', '/v1/enroll', undefined, { code: enrollment.code, challenge: ch, public_key: key.publicKeyPem, signature: toBase64(key.sign(enrollSigningBytes(enrollment.code, ch))), name: 'Front desk' });
    expect(enrolled.status).toBe(200);
    expect(enrolled.json).toMatchObject({ tenant: 'acme', device: key.keyid, role: 'kiosk', venue: 'museum' });
    const devices = await api(cloud.url, 'GET', '/v1/devices', admin);
    expect(devices.json['devices']).toEqual([expect.objectContaining({ device: key.keyid, name: 'Front desk' })]);
    // The cloud's own OpenAPI document lists its routes; errors keep the one shape.
    const openapi = await api(cloud.url, 'GET', '/openapi.json');
    expect(Object.keys(openapi.json['paths'] as object)).toEqual(expect.arrayContaining(['/v1/tenants', '/v1/enrollment-codes', '/v1/enroll/challenge', '/v1/enroll', '/v1/devices', '/v1/devices/{device}/revoke']));
    expect(await api(cloud.url, 'GET', '/v1/devices')).toMatchObject({ status: 401, json: { error: { code: 'UNAUTHORIZED' } } });

    cloud.child.kill('SIGTERM');
    expect(await cloud.exited).toBe(0);
    expect(cloud.stderr()).toContain('Stopped cleanly.');

    // Restarted on the same folder (any port): same root token, the tenant and its device are still there.
    const token = statSync(tokenFile).mtimeMs;
    const second = await startCloudProcess(['--port', '0'], env);
    expect(statSync(tokenFile).mtimeMs).toBe(token);
    const after = await api(second.url, 'GET', '/v1/devices', admin);
    expect(after.json['devices']).toEqual([expect.objectContaining({ device: key.keyid })]);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 300_000); // two cold starts of PGlite and four CLI processes on a loaded 2-core machine

  it('refuses bad arguments with usage errors, and says when no cloud answers', async () => {
    const env = cloudEnv(tempDir('tessera-cloud-cli-'));
    // Six independent commands, run side by side.
    const [role, noId, noToken, db, down, help] = await Promise.all([
      ['cloud', 'code', '--role', 'cashier', '--token', 'x'],
      ['cloud', 'tenant', 'create'],
      ['cloud', 'tenant', 'create', 'acme'],
      ['cloud', 'start', '--database', 'mysql://x'],
      ['cloud', 'code', '--role', 'kiosk', '--token', 'x', '--cloud', 'http://127.0.0.1:9'],
      ['cloud', '--help'],
    ].map((args) => runTesseraAsync(args, env)));
    expect([role!.code, role!.stderr]).toEqual([2, expect.stringContaining('error CONFIG_INVALID: --role must be one of kiosk, redeemer, gateway')]);
    expect([noId!.code, noId!.stderr]).toEqual([2, expect.stringContaining('tenant ID is required')]);
    expect([noToken!.code, noToken!.stderr]).toEqual([2, expect.stringContaining('No root token')]);
    expect([db!.code, db!.stderr]).toEqual([2, expect.stringContaining('--database must be a postgres:// URL')]);
    expect([down!.code, down!.stderr]).toEqual([1, expect.stringContaining('error CLOUD_UNREACHABLE')]);
    expect(help!.stdout).toContain('tessera cloud tenant create ID');
  }, 180_000); // six CLI processes
});

describe('startCloud', () => {
  it('refuses a second cloud on the same PGlite folder (DATA_DIR_LOCKED) or on a port in use (PORT_IN_USE), and frees the folder on close', async () => {
    const dataDir = tempDir('tessera-cloud-lock-');
    const logger = createLogger({ level: 'error' });
    const first = await startCloud({ dataDir, port: 0, logger, env: {} });
    try {
      await expect(startCloud({ dataDir, port: 0, logger, env: {} })).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED' });
      expect((await fetch(`${first.url}/openapi.json`)).status).toBe(200);
    } finally {
      await first.close();
    }
    // Another folder holding a database already (a copy of this one, so that PGlite need not be made again: a
    // cold PGlite folder costs seconds), for the port test below.
    const other = tempDir('tessera-cloud-lock-');
    cpSync(dataDir, other, { recursive: true });
    const again = await startCloud({ dataDir, port: 0, logger, env: {} });
    try {
      expect(again.rootToken).toBe(first.rootToken);
      // The other folder on the port in use: PORT_IN_USE, and that folder's lock is freed for a later start.
      const port = Number(new URL(again.url).port);
      await expect(startCloud({ dataDir: other, port, logger, env: {} })).rejects.toMatchObject({ code: 'PORT_IN_USE' });
      await (await startCloud({ dataDir: other, port: 0, logger, env: {} })).close();
      expect((await fetch(`${again.url}/openapi.json`)).status).toBe(200);
    } finally {
      await again.close();
    }
  }, 300_000); // a cold start of PGlite and three warm ones on a loaded machine

  it('runs on PostgreSQL when given a URL (DATABASE_URL too): two clouds share one database, each sees what the other wrote', async () => {
    const url = await freshPostgresUrl();
    const logger = createLogger({ level: 'error' });
    const dataDir = tempDir('tessera-cloud-pg-');
    // Started at once on an empty database: both set up the schema (one waits for the other), neither fails.
    const settled = await Promise.allSettled([startCloud({ dataDir, port: 0, logger, database: url }), startCloud({ dataDir, port: 0, logger, env: { DATABASE_URL: url } })]);
    const running = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (running.length < 2) {
      await Promise.all(running.map((c) => c.close()));
      throw settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')!.reason;
    }
    const [one, two] = running as [(typeof running)[0], (typeof running)[0]];
    try {
      expect([one.db.kind, two.db.kind]).toEqual(['postgres', 'postgres']);
      expect(one.database).toBe(url);
      const created = await api(one.url, 'POST', '/v1/tenants', one.rootToken, { id: 'shared' });
      expect(created.status).toBe(200);
      const code = await api(two.url, 'POST', '/v1/enrollment-codes', String(created.json['admin_token']), { role: 'redeemer' });
      expect(code.status).toBe(200);
      expect((await api(two.url, 'POST', '/v1/tenants', two.rootToken, { id: 'shared' })).json).toMatchObject({ error: { code: 'TENANT_EXISTS' } });
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  }, 120_000);
});
