/**
 * The fleet (issue 16 "Real parts in tests", "Done when"): the cloud and three device runtimes as separate
 * processes with their own data folders, each device behind its own link proxy, against real PostgreSQL and
 * against PGlite.
 *
 * 1. Three redeemers enroll; a `prevent` pass with 6 uses is leased 2 per device, a `detect` pass has 2 uses.
 * 2. Every link is cut. All three redeem the prevent pass three times at once (two within the lease, one beyond)
 *    and the detect pass once each.
 * 3. Heal and sync: the prevent pass is used exactly 6 times and has no conflict; the detect pass (3 of 2) has one
 *    double-spend proof signed by the cloud, whose adjudication honours the two earliest; every receipt is in the
 *    cloud's database exactly once and every device's head there is the device's own.
 * 4. kill -9 the cloud in the middle of an upload, start it again on the same database: the device catches up,
 *    still exactly once. kill -9 a device in the middle of a pull (its second page): started again, it resumes
 *    from its checkpoint and holds every revocation.
 * 5. A device whose log was edited on disk is refused with LOG_FORKED; the cloud keeps the evidence and alerts.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOUBLE_SPEND_PAYLOAD_TYPE, adjudicate } from '../../main/common/cloud.js';
import { leafHash, nodeHash, receiptLeaf } from '../../main/common/merkle.js';
import type { DoubleSpendProof, SyncStatus } from '../../main/common/cloud.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import type { RedeemAnswer } from '../../main/common/entitlements.js';
import { openDb } from '../../main/cloud/db.js';
import type { Db } from '../../main/cloud/db.js';
import { DATABASE_FILE } from '../../main/runtime/index.js';
import { readPublicKey, verifyEnvelope } from '../../main/runtime/keys/index.js';
import { cleanEnv, requireBuild, startTessera } from '../helpers/cli.js';
import type { StartedTessera } from '../helpers/cli.js';
import { call, startCloudProcess } from '../helpers/fleet.js';
import type { CloudProcess } from '../helpers/fleet.js';
import { startLinkProxy } from '../helpers/link-proxy.js';
import type { LinkProxy } from '../helpers/link-proxy.js';
import { postgresBinDir, startPostgres } from '../helpers/postgres.js';
import type { RunningPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const PREVENT = `b3:${'a1'.repeat(32)}`;
const DETECT = `b3:${'d2'.repeat(32)}`;
/** Revocations issued for the pull test: more than one page of the device's pull (PULL_LIMIT 500). */
const REVOCATIONS = 520;

interface Device {
  name: string;
  dataDir: string;
  proxy: LinkProxy;
  proc: StartedTessera;
  token: string;
  keyid: string;
}

const variants = postgresBinDir() ? (['postgres', 'pglite'] as const) : (['pglite'] as const);

describe.each(variants)('a fleet of three redeemers and the cloud on %s', (kind) => {
  let postgres: RunningPostgres | undefined;
  let databaseUrl: string | undefined;
  const cloudDir = tempDir(`tessera-fleet-cloud-${kind}-`, 'file');
  let cloud: CloudProcess;
  let admin: string;
  let cloudKeyPem: string;
  const devices: Device[] = [];
  /** Called with each request line a device sends; a test sets it to act mid-request. */
  const onRequest: Array<((device: string, line: string) => void) | undefined> = [undefined];

  const startDevice = async (d: Pick<Device, 'name' | 'dataDir' | 'proxy'>): Promise<StartedTessera> =>
    startTessera(d.dataDir, [], cleanEnv({ TESSERA_SYNC_INTERVAL_MS: '600000' }));
  const tokenOf = (proc: StartedTessera) => /#token=(\S+)/.exec(proc.uiUrl)![1]!;
  const dev = async <T = Record<string, unknown>>(d: Device, method: string, path: string, body?: unknown) => {
    const r = await call<T>(`${d.proc.origin}${path}`, { method, token: d.token, ...(body === undefined ? {} : { body }) });
    return r;
  };
  const cloudCall = <T = Record<string, unknown>>(path: string, body?: unknown, token = admin) => call<T>(`${cloud.url}${path}`, { token, ...(body === undefined ? {} : { body }) });
  const syncNow = (d: Device) => dev<SyncStatus>(d, 'POST', '/api/sync/now');
  const status = async (d: Device) => (await dev<SyncStatus>(d, 'GET', '/api/sync')).body;
  /** Syncs until the device has nothing left to upload and answers online; a ceiling, not a duration. */
  const syncUntilCaughtUp = async (d: Device) => {
    await expect.poll(async () => {
      const r = await syncNow(d);
      return r.status === 200 && r.body.state === 'online' && r.body.pending_uploads === 0;
    }, { timeout: 60_000, interval: 250 }).toBe(true);
  };
  const startTheCloud = async () => {
    cloud = await startCloudProcess(cloudDir, databaseUrl ? { database: databaseUrl } : {});
    for (const d of devices) d.proxy.retarget(cloud.port);
  };
  /**
   * Runs `fn` on the cloud's database. PGlite is one process's database: the cloud is stopped (cleanly) while the
   * test reads its folder, then started again on it.
   */
  const withCloudDb = async <T>(fn: (db: Db) => Promise<T>): Promise<T> => {
    if (databaseUrl) {
      const db = await openDb({ url: databaseUrl, max: 2 });
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    }
    cloud.child.kill('SIGTERM');
    expect(await cloud.exited).toBe(0);
    const db = await openDb({ dataDir: join(cloudDir, 'pglite') });
    try {
      return await fn(db);
    } finally {
      await db.close();
      await startTheCloud();
    }
  };

  beforeAll(async () => {
    requireBuild();
    if (kind === 'postgres') {
      postgres = await startPostgres();
      databaseUrl = postgres.url;
    }
    cloud = await startCloudProcess(cloudDir, databaseUrl ? { database: databaseUrl } : {});
    const tenant = await cloudCall<{ admin_token: string; cloud_key: { pem: string } }>('/v1/tenants', { id: 'acme', name: 'Acme museums' }, cloud.rootToken);
    expect(tenant.status).toBe(200);
    admin = tenant.body.admin_token;
    cloudKeyPem = tenant.body.cloud_key.pem;
    await Promise.all(['gate-1', 'gate-2', 'gate-3'].map(async (name) => {
      const proxy = await startLinkProxy({ port: cloud.port }, { onRequest: (line) => onRequest[0]?.(name, line) });
      const dataDir = tempDir(`tessera-fleet-${name}-`, 'file');
      const proc = await startDevice({ name, dataDir, proxy });
      devices.push({ name, dataDir, proxy, proc, token: tokenOf(proc), keyid: '' });
    }));
    devices.sort((a, b) => a.name.localeCompare(b.name));
    for (const d of devices) {
      const code = await cloudCall<{ code: string }>('/v1/enrollment-codes', { role: 'redeemer', name: d.name, venue: 'museum' });
      const enrolled = await dev<SyncStatus>(d, 'POST', '/api/sync/enroll', { cloud: d.proxy.url, code: code.body.code });
      expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(200);
      d.keyid = enrolled.body.cloud!.device;
    }
  }, 240_000);

  afterAll(async () => {
    for (const d of devices) {
      d.proc.child.kill('SIGKILL');
      await d.proxy.close();
    }
    cloud?.child.kill('SIGKILL');
    await Promise.all([cloud?.exited, ...devices.map((d) => d.proc.exited)]);
    await postgres?.stop();
  }, 60_000);

  let prevent: { serial: string; code: string };
  let detect: { serial: string; code: string };
  /** A detect pass with rights to spare, for making receipts. */
  let roomy: { code: string };

  it('redeems offline on all three at once within the leases only, and finds the double spend of the detect pass at sync', async () => {
    expect((await cloudCall('/v1/products', { product_cid: PREVENT, protection: 'prevent', deny_max_age_s: 86_400 })).status).toBe(200);
    expect((await cloudCall('/v1/products', { product_cid: DETECT, protection: 'detect', deny_max_age_s: 86_400 })).status).toBe(200);
    const window = { valid_from: new Date(Date.now() - 60_000).toISOString(), valid_until: new Date(Date.now() + 86_400_000).toISOString(), venues: [] };
    const issuedPrevent = await cloudCall<{ serial: string; code: string }>('/v1/entitlements', { product_cid: PREVENT, kind: 'multi_use', uses: 6, ...window, leases: devices.map((d) => ({ device: d.keyid, rights: 2 })) });
    expect(issuedPrevent.status, JSON.stringify(issuedPrevent.body)).toBe(200);
    prevent = issuedPrevent.body;
    detect = (await cloudCall<{ serial: string; code: string }>('/v1/entitlements', { product_cid: DETECT, kind: 'multi_use', uses: 2, ...window })).body;
    for (const d of devices) {
      await syncUntilCaughtUp(d);
      expect((await status(d)).leases).toEqual([expect.objectContaining({ serial: prevent.serial, rights: 2, left: 2, state: 'active' })]);
    }

    // The network goes: every device is offline.
    for (const d of devices) d.proxy.cut('reset');
    const redeem = (d: Device, code: string) => dev<RedeemAnswer>(d, 'POST', '/api/redeem', { code, venue: 'museum', screen: d.name });
    const answers = await Promise.all(devices.map(async (d) => {
      const mine = await Promise.all([redeem(d, prevent.code), redeem(d, prevent.code), redeem(d, prevent.code), redeem(d, detect.code)]);
      return mine.map((r) => r.body);
    }));
    for (const [i, mine] of answers.entries()) {
      const verdicts = mine.slice(0, 3).map((a) => a.verdict).sort();
      expect(verdicts, `${devices[i]!.name}: ${JSON.stringify(mine)}`).toEqual(['LEASE_EXHAUSTED', 'REDEEMED', 'REDEEMED']);
      expect(mine[3]!.verdict).toBe('REDEEMED');
      const refused = mine.find((a) => a.verdict === 'LEASE_EXHAUSTED')!;
      expect(refused.lease).toMatchObject({ rights: 2, used: 2, left: 0 });
    }
    for (const d of devices) expect((await status(d)).state).toBe('offline');

    // The network is back.
    for (const d of devices) d.proxy.heal();
    for (const d of devices) await syncUntilCaughtUp(d);
    const ents = await cloudCall<{ entitlements: Array<{ serial: string; used: number; rights: number }> }>(`/v1/entitlements?serial=${prevent.serial}`);
    expect(ents.body.entitlements[0]).toMatchObject({ serial: prevent.serial, rights: 6, used: 6 });

    const conflicts = await cloudCall<{ conflicts: Array<{ serial: string; proof: DsseEnvelope }> }>('/v1/conflicts');
    expect(conflicts.body.conflicts.map((c) => c.serial)).toEqual([detect.serial]);
    const envelope = conflicts.body.conflicts[0]!.proof;
    expect(envelope.payloadType).toBe(DOUBLE_SPEND_PAYLOAD_TYPE);
    const cloudKey = readPublicKey(cloudKeyPem);
    const verified = verifyEnvelope(envelope, (keyid) => (keyid === cloudKey.keyid ? { publicKeyRaw: cloudKey.publicKeyRaw } : undefined));
    const proof = JSON.parse(Buffer.from(verified.payload).toString('utf8')) as DoubleSpendProof;
    expect(proof).toMatchObject({ serial: detect.serial, rights: 2, used: 3 });
    expect(new Set(proof.evidence.map((e) => e.device))).toEqual(new Set(devices.map((d) => d.keyid)));
    const again = adjudicate(proof.rights, proof.evidence);
    expect(proof.adjudication).toMatchObject({ honoured: again.honoured, over: again.over });
    expect(proof.adjudication.over).toHaveLength(1);
    const alerts = await cloudCall<{ alerts: Array<{ code: string }> }>('/v1/alerts');
    expect(alerts.body.alerts.map((a) => a.code)).toContain('DOUBLE_SPEND');
  }, 240_000);

  /** Every device's head in the cloud is its own, and the cloud holds each receipt exactly once. */
  const checkExactlyOnce = async () => {
    const listed = await cloudCall<{ devices: Array<{ device: string; log: { size: number; root: string } | null }> }>('/v1/devices');
    let total = 0;
    for (const d of devices) {
      const root = await dev<{ size: number; root: string }>(d, 'GET', '/v1/log/root');
      const inCloud = listed.body.devices.find((x) => x.device === d.keyid)!;
      expect(inCloud.log, d.name).toEqual(expect.objectContaining({ size: root.body.size, root: root.body.root }));
      total += root.body.size;
    }
    const counts = await withCloudDb(async (db) => (await db.query<{ n: number; ids: number }>('SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM cloud_receipts WHERE tenant = $1', ['acme']))[0]);
    expect(counts).toEqual({ n: total, ids: total });
    console.log(`fleet (${kind}): ${total} receipts from ${devices.length} devices in the cloud, each exactly once; every head equal to its device's`);
  };

  it('keeps every receipt exactly once and every head consistent across a kill -9 of the cloud in the middle of an upload', async () => {
    const d = devices[0]!;
    const window = { valid_from: new Date(Date.now() - 60_000).toISOString(), valid_until: new Date(Date.now() + 86_400_000).toISOString(), venues: [] };
    roomy = (await cloudCall<{ code: string }>('/v1/entitlements', { product_cid: DETECT, kind: 'multi_use', uses: 1000, ...window })).body;
    // More receipts on the device, made offline.
    d.proxy.cut('reset');
    for (let i = 0; i < 40; i++) expect((await dev<RedeemAnswer>(d, 'POST', '/api/redeem', { code: roomy.code, venue: 'museum' })).body.verdict).toBe('REDEEMED');
    d.proxy.heal();
    const killed = new Promise<void>((resolve) => {
      onRequest[0] = (name, line) => {
        if (name === d.name && line.startsWith('POST /v1/sync/receipts')) {
          onRequest[0] = undefined;
          cloud.child.kill('SIGKILL');
          resolve();
        }
      };
    });
    void syncNow(d);
    await killed;
    await cloud.exited;
    // The cloud's folder lock died with it; PGlite (or PostgreSQL) recovers what was committed.
    await startTheCloud();
    await syncUntilCaughtUp(d);
    for (const other of devices.slice(1)) await syncUntilCaughtUp(other);
    await checkExactlyOnce();
  }, 240_000);

  it('resumes a pull from its checkpoint after a kill -9 of the device in its middle, and holds every revocation once', async () => {
    const d = devices[2]!;
    const serials = Array.from({ length: REVOCATIONS }, (_, i) => `${'0'.repeat(18)}${i.toString(16).padStart(6, '0')}`);
    for (const serial of serials) expect((await cloudCall(`/v1/entitlements/${serial}/revoke`, { reason: 'lost card' })).status).toBe(200);
    let pulls = 0;
    const killed = new Promise<void>((resolve) => {
      onRequest[0] = (name, line) => {
        if (name === d.name && line.startsWith('GET /v1/sync/pull') && ++pulls === 2) {
          onRequest[0] = undefined;
          d.proc.child.kill('SIGKILL');
          resolve();
        }
      };
    });
    void syncNow(d).catch(() => undefined);
    await killed;
    await d.proc.exited;
    d.proc = await startDevice(d);
    d.token = tokenOf(d.proc);
    await syncUntilCaughtUp(d);
    // Stopped to read its database: every revocation once, and the checkpoint at the cloud's last change for it.
    d.proc.child.kill('SIGTERM');
    await d.proc.exited;
    const sqlite = new Database(join(d.dataDir, DATABASE_FILE), { readonly: true });
    try {
      const revoked = sqlite.prepare<[], { serial: string }>('SELECT serial FROM ent_revoked').all().map((r) => r.serial);
      expect(new Set(revoked)).toEqual(new Set(serials));
    } finally {
      sqlite.close();
    }
    d.proc = await startDevice(d);
    d.token = tokenOf(d.proc);
    await syncUntilCaughtUp(d);
  }, 240_000);

  it('refuses a device whose log was edited on disk with LOG_FORKED, keeps the evidence and raises an alert', async () => {
    const d = devices[1]!;
    d.proc.child.kill('SIGTERM');
    await d.proc.exited;
    const file = join(d.dataDir, DATABASE_FILE);
    const sqlite = new Database(file);
    try {
      // Leaf 0 now claims another receipt: history rewritten under the head the cloud accepted.
      // Rewritten consistently, as a careful forger would: the leaf and every subtree above it.
      const forged = `b3:${'f0'.repeat(32)}`;
      sqlite.prepare('UPDATE log_leaves SET receipt_id = ?, hash = ? WHERE idx = 0').run(forged, leafHash(receiptLeaf(forged)));
      let level: Uint8Array[] = sqlite.prepare<[], { hash: Buffer }>('SELECT hash FROM log_leaves ORDER BY idx').all().map((r) => new Uint8Array(r.hash));
      sqlite.prepare('DELETE FROM log_nodes').run();
      const insert = sqlite.prepare('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)');
      for (let height = 1; level.length > 1; height++) {
        const up: Uint8Array[] = [];
        for (let i = 0; i + 1 < level.length; i += 2) up.push(nodeHash(level[i]!, level[i + 1]!));
        up.forEach((hash, i) => insert.run(height, i, hash));
        level = up;
      }
    } finally {
      sqlite.close();
    }
    d.proc = await startDevice(d);
    d.token = tokenOf(d.proc);
    // Something new to upload, so the device sends a head over the edited history.
    expect((await dev<RedeemAnswer>(d, 'POST', '/api/redeem', { code: roomy.code, venue: 'museum' })).body.verdict).toBe('REDEEMED');
    await expect.poll(async () => {
      await syncNow(d);
      return (await status(d)).last_error?.code;
    }, { timeout: 60_000, interval: 500 }).toBe('LOG_FORKED');
    expect((await status(d)).state).toBe('refused');
    const alerts = await cloudCall<{ alerts: Array<{ code: string; device: string; evidence: unknown }> }>('/v1/alerts');
    const forkAlert = alerts.body.alerts.find((a) => a.code === 'LOG_FORKED' && a.device === d.keyid);
    expect(forkAlert).toBeDefined();
    const evidence = await withCloudDb((db) => db.query<{ device: string; refused_head: unknown }>('SELECT device, refused_head FROM fork_evidence WHERE tenant = $1', ['acme']));
    expect(evidence.map((e) => e.device)).toContain(d.keyid);
    expect(evidence.find((e) => e.device === d.keyid)?.refused_head).toEqual(expect.objectContaining({ payloadType: 'application/vnd.tessera.tree-head+json' }));
  }, 240_000);
});
