/**
 * End to end against the REAL cloud (issue 16): `startCloud` (main/cloud/index.ts, PGlite) with every route module
 * H1–H3 wrote, and a real device (`startHost`: the runtime with its HTTP API) that enrolls, uploads, pulls a lease,
 * redeems within it offline, is refused beyond it, gets an online grant, and whose synced receipt's bundle carries
 * the cloud's co-signature.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncStatus } from '../../main/common/cloud.js';
import type { RedeemAnswer } from '../../main/common/entitlements.js';
import { startCloud } from '../../main/cloud/index.js';
import type { RunningCloud } from '../../main/cloud/index.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { capsuleBundle, verifyBundleOnHost } from '../../main/runtime/receipts/bundle.js';
import { CAPSULE_VERSION, capsuleId } from '../../main/common/receipt.js';
import type { Capsule } from '../../main/common/receipt.js';
import { opensslVerifyDsse } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';

const PRODUCT = `b3:${'ab'.repeat(32)}`;


describe('sync against the real cloud', () => {
  let cloud: RunningCloud;
  let device: RunningHost;
  let admin: string;

  const cloudApi = async <T>(method: string, path: string, token: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${cloud.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const deviceApi = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${device.origin}${path}`, { method, headers: { authorization: `Bearer ${device.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  beforeAll(async () => {
    cloud = await startCloud({ dataDir: tempDir('tessera-cloud-', 'file'), port: 0, host: '127.0.0.1', logger: createMemoryLogger() });
    admin = (await cloudApi<{ admin_token: string }>('POST', '/v1/tenants', cloud.rootToken, { id: 'acme', name: 'Acme' })).admin_token;
    device = await startHost({ dataDir: tempDir('tessera-device-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
  }, 120_000);
  afterAll(async () => {
    await device?.close();
    await cloud?.close();
  });

  it('enrolls, uploads the log with a co-signed head, pulls a lease, redeems within it and not beyond, gets an online grant, and bundles the co-signature', async () => {
    const { code } = await cloudApi<{ code: string }>('POST', '/v1/enrollment-codes', admin, { role: 'redeemer', name: 'gate 1' });
    const enrolled = await deviceApi<SyncStatus>('POST', '/api/sync/enroll', { cloud: cloud.url, code });
    expect(enrolled.cloud).toMatchObject({ tenant: 'acme', role: 'redeemer', device: device.runtime.deviceKey.keyid });
    // The code is one-time.
    await expect(deviceApi('POST', '/api/sync/enroll', { cloud: cloud.url, code })).rejects.toThrow();

    await cloudApi('POST', '/v1/products', admin, { product_cid: PRODUCT, protection: 'prevent', deny_max_age_s: 3600 });
    const now = Date.now();
    const issued = await cloudApi<{ serial: string; code: string }>('POST', '/v1/entitlements', admin, {
      product_cid: PRODUCT, kind: 'multi_use', uses: 5, valid_from: new Date(now - 60_000).toISOString(), valid_until: new Date(now + 86_400_000).toISOString(), venues: [],
      leases: [{ device: device.runtime.deviceKey.keyid, rights: 2 }],
    });
    const synced = await deviceApi<SyncStatus>('POST', '/api/sync/now');
    expect(synced).toMatchObject({ state: 'online', pending_uploads: 0 });
    expect(synced.deny_list_as_of).not.toBeNull();
    expect(synced.leases).toEqual([expect.objectContaining({ serial: issued.serial, rights: 2, left: 2, state: 'active' })]);

    // Within the lease, then beyond it (the grant route has 3 rights left, so this one is granted online).
    const r1 = await deviceApi<RedeemAnswer>('POST', '/api/redeem', { code: issued.code, venue: 'gate' });
    expect(r1).toMatchObject({ verdict: 'REDEEMED', lease: { rights: 2, used: 1, left: 1 } });
    const r2 = await deviceApi<RedeemAnswer>('POST', '/api/redeem', { code: issued.code, venue: 'gate' });
    expect(r2.verdict).toBe('REDEEMED');
    const r3 = await deviceApi<RedeemAnswer>('POST', '/api/redeem', { code: issued.code, venue: 'gate' });
    expect(r3).toMatchObject({ verdict: 'REDEEMED' });
    expect(r3.lease?.lease).not.toBe(r1.lease?.lease);

    // A capsule of the device's own (as a run writes), uploaded with the rest and co-signed: its bundle carries the witness.
    const rt = device.runtime;
    const capsule = { v: CAPSULE_VERSION, product: 'sync-e2e', act: 'test', tenant: 'device', aud: 'x', src: 'test', view: { n: 1 } } as Capsule;
    const cid = capsuleId(capsule);
    rt.receipts.transaction(() => {
      rt.receipts.createCapsule(cid, capsule, 'ACK', 'decided', Date.now());
      rt.receipts.appendReceipts(cid, [{ kind: 'INTENT', subject: 's', body: {} }, { kind: 'RESULT', subject: 's', body: { verdict: 'ACK' } }], Date.now());
    });
    const after = await deviceApi<SyncStatus>('POST', '/api/sync/now');
    expect(after).toMatchObject({ state: 'online', pending_uploads: 0, accepted_size: device.runtime.deviceLog.size });
    const inclusion = await cloudApi<{ receipt: string; cosignature: unknown }>('GET', `/v1/receipts/${encodeURIComponent(r1.redemption!.receipt_id)}/inclusion`, admin);
    expect(inclusion.receipt).toBe(r1.redemption!.receipt_id);
    const bundle = capsuleBundle({ receipts: rt.receipts, log: rt.deviceLog, deviceKey: rt.deviceKey, cosignature: (n) => rt.sync.cosignature(n) }, cid, `${device.origin}/c/x`);
    const verdict = verifyBundleOnHost(bundle);
    expect(verdict.ok).toBe(true);
    expect(verdict.checks.find((c) => c.id === 'witness')?.detail).toContain('co-signed by the cloud of tenant acme');
    // The co-signature verifies with OpenSSL alone, given the witness key the bundle carries.
    const dir = tempDir('tessera-cosig-');
    writeFileSync(join(dir, 'b.zip'), bundle);
    execFileSync('unzip', ['-q', 'b.zip', '-d', 'x'], { cwd: dir });
    const witness = readdirSync(join(dir, 'x', 'keys')).map((f) => `keys/${f}`).find((f) => f !== `keys/${rt.deviceKey.keyid.slice(3)}.pem`)!;
    expect(opensslVerifyDsse(join(dir, 'x'), 'log/cosignature.json', witness)).toBe('Signature Verified Successfully\n');
    expect(opensslVerifyDsse(join(dir, 'x'), 'log/cosignature.json', witness, true)).toBe('Signature Verification Failure\n');
  }, 120_000);
});
