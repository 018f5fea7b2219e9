/**
 * `tessera cloud enroll`, `tessera sync status|now` and their routes (`POST /api/sync/enroll`, `POST /api/sync/now`,
 * `GET /api/sync`) on a real running device (`startHost`: the composed runtime, HTTP on 127.0.0.1), against the real
 * cloud server with the TEST-ONLY sync routes of test/helpers/fake-cloud.ts. The commands run in-process through
 * `runCli`, talking to the device over HTTP like the installed CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncStatus } from '../../main/common/cloud.js';
import { openDb } from '../../main/cloud/db.js';
import type { Db } from '../../main/cloud/db.js';
import { runCli } from '../../main/host/cli.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { startFakeCloud } from '../helpers/fake-cloud.js';
import type { FakeCloud } from '../helpers/fake-cloud.js';
import { tempDir } from '../helpers/tmp.js';

let db: Db;
let cloud: FakeCloud;
let host: RunningHost;

beforeAll(async () => {
  db = await openDb({});
  cloud = await startFakeCloud(db);
  host = await startHost({ dataDir: tempDir('tessera-sync-cli-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
}, 120_000);
afterAll(async () => {
  await host?.close();
  await cloud?.close();
  await db?.close();
});

async function tessera(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli([...args, '--url', host.origin, '--token', host.token], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {} });
  return { code, stdout, stderr };
}

describe('tessera sync and cloud enroll on a running device', () => {
  it('says the device is not enrolled, enrolls it with a code, syncs by itself, and prints the status', async () => {
    const before = await tessera('sync', 'status');
    expect(before).toMatchObject({ code: 0, stdout: 'Not enrolled with a cloud. Enroll with: tessera cloud enroll --cloud URL --code CODE\n' });
    expect(await tessera('sync', 'now')).toMatchObject({ code: 1, stderr: expect.stringContaining('error NOT_ENROLLED') });
    expect(await tessera('cloud', 'enroll', '--cloud', cloud.url)).toMatchObject({ code: 2, stderr: expect.stringContaining('--cloud and --code are required') });
    const bad = await tessera('cloud', 'enroll', '--cloud', cloud.url, '--code', 'enr_nope');
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringContaining('error ENROLLMENT_INVALID') });

    const enrolled = await tessera('cloud', 'enroll', '--cloud', cloud.url, '--code', cloud.s.code, '--name', 'gate 1');
    expect(enrolled.code).toBe(0);
    expect(enrolled.stdout).toBe(`Enrolled with ${cloud.url} (tenant ${cloud.s.tenant}) as redeemer ${host.runtime.deviceKey.keyid}; syncing.\n`);
    // The runtime's loop runs a first round by itself after enrolling: wait for it, no sleeps.
    await expect.poll(() => host.runtime.sync.status().state, { timeout: 30_000 }).toBe('online');
    expect(cloud.s.accepted.get(host.runtime.deviceKey.keyid)?.size).toBe(host.runtime.deviceLog.size);

    const status = await fetch(`${host.origin}/api/sync`, { headers: { authorization: `Bearer ${host.token}` } }).then((r) => r.json() as Promise<SyncStatus>);
    expect(status).toMatchObject({ state: 'online', cloud: { url: cloud.url, tenant: cloud.s.tenant, role: 'redeemer' }, pending_uploads: 0 });
    const text = await tessera('sync', 'status');
    expect(text.stdout).toMatch(new RegExp(`^ONLINE  ${cloud.url.replace(/\./g, '\\.')}  tenant ${cloud.s.tenant}  redeemer b3:`));
    expect(text.stdout).toContain('  pending uploads: 0 receipts');

    // Down: `sync now` exits 1 and says why; the status says offline and when it tries again.
    cloud.s.down = true;
    const down = await tessera('sync', 'now', '--json');
    expect(down.code).toBe(1);
    expect(JSON.parse(down.stdout)).toMatchObject({ state: 'offline', last_error: { code: 'CLOUD_UNREACHABLE' }, next_attempt: expect.any(String) });
    cloud.s.down = false;
    expect((await tessera('sync', 'now')).code).toBe(0);
  }, 120_000);
});
