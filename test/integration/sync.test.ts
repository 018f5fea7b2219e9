/**
 * The device side of the cloud (issue 16) over the real protocol: a real SQLite device (receipt store, device log,
 * entitlements with the sync module's guard) talking over real HTTP on 127.0.0.1 to the real cloud server
 * (main/cloud/app.ts createCloudServer on PGlite, with its device-signature authentication) — whose sync, lease and
 * enrollment routes are, on this branch, a TEST-ONLY route module (`testCloudRoutes`), implementing just
 * what these tests need of common/cloud.ts (test/helpers/fake-cloud.ts). The end-to-end test against the real cloud routes is
 * test/integration/sync-cloud.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { COSIGNATURE_PAYLOAD_TYPE } from '../../main/common/cloud.js';
import type { Cosignature, Lease, ProductProtection } from '../../main/common/cloud.js';
import { canonicalBytes } from '../../main/common/canonical.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { encodeToken } from '../../main/common/entitlement-token.js';
import { CAPSULE_VERSION, capsuleId } from '../../main/common/receipt.js';
import type { Capsule } from '../../main/common/receipt.js';
import { openDb } from '../../main/cloud/db.js';
import type { Db } from '../../main/cloud/db.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { createEntitlements } from '../../main/runtime/entitlements/index.js';
import type { Entitlements } from '../../main/runtime/entitlements/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import type { Journal } from '../../main/runtime/journal/index.js';
import { generateKeyPair, signEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { capsuleBundle, verifyBundleOnHost } from '../../main/runtime/receipts/bundle.js';
import { createDeviceLog } from '../../main/runtime/receipts/device-log.js';
import type { DeviceLog } from '../../main/runtime/receipts/device-log.js';
import { createReceiptStore } from '../../main/runtime/receipts/store.js';
import type { ReceiptStore } from '../../main/runtime/receipts/store.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { backoffDelay, createSync } from '../../main/runtime/sync/index.js';
import type { Sync } from '../../main/runtime/sync/index.js';
import { openTrustStore } from '../../main/runtime/trust/index.js';
import { readZipData, readZipDirectory } from '../../main/common/zip.js';
import { PRODUCT, signLease, startFakeCloud } from '../helpers/fake-cloud.js';
import type { FakeCloud, FakeCloudState } from '../helpers/fake-cloud.js';
import { opensslVerifyDsse } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';

const OTHER_PRODUCT = `b3:${'ef'.repeat(32)}`;
const HOUR = 3600_000;

// ------------------------------------------------------------------------------------------------ harness

interface World {
  s: FakeCloudState;
  db: Db;
  app: FastifyInstance;
  url: string;
  store: Store;
  journal: Journal;
  receipts: ReceiptStore;
  log: DeviceLog;
  deviceKey: SigningKey;
  entitlements: Entitlements;
  sync: Sync;
  dir: string;
  push: FakeCloud['push'];
  token(serial: string, rights?: number, product?: string): string;
  topics(prefix: string): string[];
  close(): Promise<void>;
}

const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});
// One PGlite database for the file (opening one costs seconds); each world is its own tenant in it.
let sharedDb: Db | undefined;
afterAll(async () => {
  await sharedDb?.close();
});

async function world(opts: { intervalMs?: number } = {}): Promise<World> {
  const clock = { now: Date.now() };
  sharedDb ??= await openDb({});
  const db = sharedDb;
  const cloud = await startFakeCloud(db, clock);
  const { s, app, url } = cloud;
  const tenantKey = s.key;

  const dir = tempDir('tessera-sync-', 'file');
  const store = openStore({ path: join(dir, 'tessera.db') });
  const journal = createJournal({ store, clock: () => clock.now });
  const logger = createMemoryLogger();
  const bus = createBus({ journal, logger });
  const deviceKey = generateKeyPair();
  const receipts = createReceiptStore({ store, deviceKey });
  const log = createDeviceLog({ store, deviceKey, clock: () => clock.now });
  receipts.onReceipts((written) => void log.appendNew(written.map((r) => r.id)));
  const issuers = openTrustStore(join(dir, 'issuers'), { create: true });
  const late: { entitlements?: Entitlements } = {};
  const sync = createSync({ store, bus, logger, deviceKey, deviceLog: log, receipts, issuers, entitlements: () => late.entitlements, clock: () => clock.now, intervalMs: opts.intervalMs ?? 3_600_000 });
  const entitlements = createEntitlements({ store, bus, receipts, deviceKey, issuers, logger, clock: () => clock.now, guard: sync.guard });
  late.entitlements = entitlements;
  sync.start();
  const w: World = {
    s, db, app, url, store, journal, receipts, log, deviceKey, entitlements, sync, dir,
    push: cloud.push,
    token: (serial, rights = 3, product = PRODUCT) => encodeToken({
      serial, product_cid: product, kind: 'multi_use', rights, nbf: Math.floor(clock.now / 1000) - 60, exp: Math.floor(clock.now / 1000) + 86_400, venues: [], issuer_keyid: tenantKey.keyid,
    }, (m) => tenantKey.sign(m)),
    topics: (prefix) => journal.query({ topic: prefix, limit: 1000 }).events.map((e) => e.topic),
    async close() {
      await sync.dispose();
      entitlements.dispose();
      store.close();
      await app.close().catch(() => undefined);
    },
  };
  worlds.push(w);
  return w;
}

const serial = () => randomBytes(12).toString('hex');
const protection = (p: Partial<ProductProtection> = {}): ProductProtection => ({ product_cid: PRODUCT, protection: 'prevent', deny_max_age_s: 3600, ...p });

/** Receipts on the device: `n` INTENT/RESULT pairs in capsules of their own (what runs write). */
function writeReceipts(w: World, n: number): string[] {
  const cids: string[] = [];
  w.receipts.transaction(() => {
    for (let i = 0; i < n; i++) {
      const capsule = { v: CAPSULE_VERSION, product: 'test-product', act: 'test', tenant: 'device', aud: 'x', src: 'test', view: { i, n: randomBytes(8).toString('hex') } } as Capsule;
      const cid = capsuleId(capsule);
      cids.push(cid);
      w.receipts.createCapsule(cid, capsule, 'ACK', 'decided', w.s.clock.now);
      w.receipts.appendReceipts(cid, [{ kind: 'INTENT', subject: 's', body: { i } }, { kind: 'RESULT', subject: 's', body: { verdict: 'ACK' } }], w.s.clock.now);
    }
  });
  return cids;
}

// ------------------------------------------------------------------------------------------------ tests

describe('sync: enrollment and provably complete upload', () => {
  it('enrolls with a one-time code, trusts the cloud key as an issuer, and uploads the whole log in batches of 500 with consistency proofs', async () => {
    const w = await world();
    writeReceipts(w, 600); // 1200 receipts: three uploads (500, 500, 200)
    expect(w.sync.status()).toMatchObject({ state: 'not_enrolled', cloud: null });
    await expect(w.sync.now()).rejects.toMatchObject({ code: 'NOT_ENROLLED' });
    await expect(w.sync.enroll({ cloud: w.url, code: 'enr_wrong' })).rejects.toMatchObject({ code: 'ENROLLMENT_INVALID' });
    const enrolled = await w.sync.enroll({ cloud: w.url, code: w.s.code, name: 'gate 1' });
    expect(enrolled.cloud).toEqual({ url: w.url, tenant: w.s.tenant, role: 'redeemer', device: w.deviceKey.keyid });
    const status = await w.sync.now();
    expect(status).toMatchObject({ state: 'online', pending_uploads: 0, accepted_size: 1200, last_error: null });
    expect(w.s.uploads).toBe(3);
    expect(w.s.accepted.get(w.deviceKey.keyid)!.root).toBe(w.log.root(1200).root);
    expect(w.topics('sync')).toEqual(['sync.enrolled', 'sync.uploaded', 'sync.uploaded', 'sync.uploaded', 'sync.online']);
    // More receipts later: only the new ones go, with a consistency proof from 1200 (checked by the cloud).
    writeReceipts(w, 5);
    expect(w.sync.status().pending_uploads).toBe(10);
    expect(await w.sync.now()).toMatchObject({ accepted_size: 1210, pending_uploads: 0 });
    expect(w.s.uploads).toBe(4);
    // A token issued by the cloud key verifies on the device now.
    expect(w.entitlements.check(w.token(serial()), 'gate').verdict).toBe('VALID');
  }, 120_000);

  it('resumes at the cloud\'s size after a lost answer (LOG_GAP), and goes offline with jittered backoff when the cloud is down, catching up after', async () => {
    const w = await world();
    await w.sync.enroll({ cloud: w.url, code: w.s.code });
    writeReceipts(w, 3);
    await w.sync.now();
    // The device believes the cloud holds 2 of its 6 receipts (as when an upload's answer was lost): the upload from 2
    // is refused with LOG_GAP naming the cloud's size 6, and the device resumes there.
    writeReceipts(w, 1);
    w.s.staleHeadBy = 4;
    expect(await w.sync.now()).toMatchObject({ state: 'online', accepted_size: 8 });
    expect(w.s.gaps).toBe(1);
    expect(w.s.accepted.get(w.deviceKey.keyid)!.size).toBe(8);

    w.s.down = true;
    writeReceipts(w, 2);
    const failed = await w.sync.now();
    expect(failed).toMatchObject({ state: 'offline', pending_uploads: 4, last_error: { code: 'CLOUD_UNREACHABLE' } });
    expect(failed.next_attempt).not.toBeNull();
    // Full jitter: within [now, now + 2 s] for the second failure in a row (base 1 s · 2^1).
    const second = await w.sync.now();
    const wait = Date.parse(second.next_attempt!) - w.s.clock.now;
    expect(wait).toBeGreaterThanOrEqual(0);
    expect(wait).toBeLessThanOrEqual(2_000);
    expect(w.topics('sync.offline')).toHaveLength(1);
    expect(w.topics('sync.failed')).toHaveLength(2);
  });
});

describe('backoff', () => {
  it('draws full jitter in [0, min(5 min, 1 s · 2^(attempt−1))]', () => {
    expect(backoffDelay(1, () => 0.999)).toBe(999);
    expect(backoffDelay(3, () => 0.5)).toBe(2_000);
    expect(backoffDelay(40, () => 0.999999)).toBe(299_999);
    expect(backoffDelay(10, () => 0)).toBe(0);
    const draws = Array.from({ length: 2000 }, () => backoffDelay(4));
    expect(Math.max(...draws)).toBeLessThan(8_000);
    expect(Math.min(...draws)).toBeLessThan(1_000);
    expect(new Set(draws.map((d) => Math.floor(d / 1000))).size).toBe(8);
  });
});

describe('redeem guard: leases, bound, detect, deny-list freshness', () => {
  it('changes nothing for a device that is not enrolled, nor for a product the cloud does not protect', async () => {
    const w = await world();
    const code = encodeToken({ serial: serial(), product_cid: PRODUCT, kind: 'multi_use', rights: 2, nbf: Math.floor(w.s.clock.now / 1000) - 60, exp: Math.floor(w.s.clock.now / 1000) + 3600, venues: [], issuer_keyid: w.deviceKey.keyid }, (m) => w.deviceKey.sign(m));
    const a = await w.entitlements.redeemSoon({ code, venue: 'gate' });
    expect(a).toMatchObject({ verdict: 'REDEEMED' });
    expect(a.lease).toBeUndefined();
    const body = w.receipts.chain(a.redemption!.capsule).at(-1)!.payload.body;
    expect(Object.keys(body)).not.toContain('lease');
    await w.sync.enroll({ cloud: w.url, code: w.s.code });
    w.push({ type: 'product', product: protection({ product_cid: OTHER_PRODUCT }) });
    await w.sync.now();
    expect((await w.entitlements.redeemSoon({ code, venue: 'gate' })).verdict).toBe('REDEEMED');
  });

  it('prevent: redeems offline only within the lease (receipt and answer name it), refuses beyond it, undo gives the right back, and returns the rest at expiry', async () => {
    const w = await world();
    await w.sync.enroll({ cloud: w.url, code: w.s.code });
    const sn = serial();
    const lease = signLease(w.s, w.deviceKey.keyid, sn, 2, HOUR);
    const leaseId = (JSON.parse(Buffer.from(lease.payload, 'base64').toString()) as Lease).lease;
    w.push({ type: 'product', product: protection({ deny_max_age_s: 86_400 }) }, { type: 'lease', lease });
    await w.sync.now();
    expect(w.topics('sync.lease')).toEqual(['sync.lease.granted']);
    expect(w.sync.status().leases).toEqual([expect.objectContaining({ lease: leaseId, serial: sn, rights: 2, used: 0, left: 2, state: 'active' })]);
    // Offline from here on.
    w.s.down = true;
    const code = w.token(sn, 5);
    const r1 = await w.entitlements.redeemSoon({ code, venue: 'gate' });
    expect(r1).toMatchObject({ verdict: 'REDEEMED', lease: { lease: leaseId, rights: 2, used: 1, left: 1, protection: 'prevent' } });
    expect(w.receipts.chain(r1.redemption!.capsule).at(-1)!.payload.body).toMatchObject({ action: 'redeem', lease: leaseId, protection: 'prevent', beyond_lease: false });
    const [r2, r3] = await Promise.all([w.entitlements.redeemSoon({ code, venue: 'gate' }), w.entitlements.redeemSoon({ code, venue: 'gate 2' })]);
    expect([r2.verdict, r3.verdict]).toEqual(['REDEEMED', 'LEASE_EXHAUSTED']);
    expect(r3).toMatchObject({ ok: false, lease: { left: 0, used: 2 } });
    expect(r3.message).toMatch(/^Lease used up: this device has used 2 of the 2 rights leased to it\./);
    expect(w.entitlements.check(code, 'gate').verdict).toBe('LEASE_EXHAUSTED');
    // The token still has 3 rights in the local ledger: the lease, not the ledger, refused.
    expect(r3.entitlement?.rights_left).toBe(3);
    const undone = w.entitlements.undo(r2.redemption!.id, 'mis-tap');
    expect(w.receipts.chain(r2.redemption!.capsule).at(-1)!.payload.body).toMatchObject({ action: 'undo', lease: leaseId });
    expect(undone.verdict).toBe('UNDONE');
    expect((await w.entitlements.redeemSoon({ code, venue: 'gate' })).verdict).toBe('REDEEMED');
    // Another serial of the same product: no lease at all.
    const none = await w.entitlements.redeemSoon({ code: w.token(serial()), venue: 'gate' });
    expect(none).toMatchObject({ verdict: 'NO_LEASE', ok: false });
    expect(none.message).toMatch(/^No lease: this device holds no lease on this pass/);
    // At expiry the lease redeems no more, and once the cloud is back its unused rights are returned with what was used.
    w.s.clock.now += HOUR + 1000;
    const after = await w.entitlements.redeemSoon({ code, venue: 'gate' });
    expect(after.verdict).toBe('NO_LEASE');
    expect(after.message).toContain('its lease expired at');
    w.s.down = false;
    expect(await w.sync.now()).toMatchObject({ state: 'online', pending_uploads: 0 });
    expect(w.s.returns).toEqual([{ lease: leaseId, used: 2, log_size: w.log.size }]);
    expect(w.sync.status().leases[0]).toMatchObject({ lease: leaseId, state: 'returned', used: 2 });
    expect(w.topics('sync.lease.returned')).toHaveLength(1);
  });

  it('asks the cloud for a grant before redeeming when online, within 1.5 s, and redeems under it', async () => {
    const w = await world();
    await w.sync.enroll({ cloud: w.url, code: w.s.code });
    const sn = serial();
    w.s.grantable.set(sn, 1);
    w.push({ type: 'product', product: protection() });
    await w.sync.now();
    const code = w.token(sn);
    const first = await w.entitlements.redeemSoon({ code, venue: 'gate' });
    expect(first).toMatchObject({ verdict: 'REDEEMED', lease: { rights: 1, used: 1, left: 0 } });
    expect(w.topics('sync.lease.granted')).toHaveLength(1);
    // The cloud has nothing more to grant: refused, with the lease used up.
    const second = await w.entitlements.redeemSoon({ code, venue: 'gate' });
    expect(second.verdict).toBe('LEASE_EXHAUSTED');
  });

  it('bound: allows N redemptions beyond the lease and says the risk; detect: accepts; an old deny list fails closed and says how old', async () => {
    const w = await world();
    await w.sync.enroll({ cloud: w.url, code: w.s.code });
    const sn = serial();
    w.push({ type: 'product', product: protection({ protection: 'bound', bound: 2, deny_max_age_s: 600 }) });
    await w.sync.now();
    w.s.down = true;
    const code = w.token(sn, 10);
    const b1 = await w.entitlements.redeemSoon({ code, venue: 'gate' });
    expect(b1).toMatchObject({ verdict: 'REDEEMED', lease: { lease: null, beyond: 1, bound: 2, protection: 'bound' } });
    expect(b1.message).toContain('1 of 2 offline redemptions beyond the lease used');
    expect(w.receipts.chain(b1.redemption!.capsule).at(-1)!.payload.body).toMatchObject({ lease: null, protection: 'bound', beyond_lease: true });
    expect((await w.entitlements.redeemSoon({ code, venue: 'gate' })).lease).toMatchObject({ beyond: 2 });
    const b3 = await w.entitlements.redeemSoon({ code, venue: 'gate' });
    expect(b3).toMatchObject({ verdict: 'NO_LEASE', lease: { beyond: 2, bound: 2 } });
    // 11 minutes without a complete pull: the deny list is older than its 10-minute bound.
    w.s.clock.now += 11 * 60_000;
    const stale = await w.entitlements.redeemSoon({ code, venue: 'gate' });
    expect(stale).toMatchObject({ verdict: 'DENY_LIST_STALE', ok: false });
    expect(stale.message).toMatch(/is 11 min old .* may be at most 10 min old\. Connect this device/);

    const w2 = await world();
    await w2.sync.enroll({ cloud: w2.url, code: w2.s.code });
    w2.push({ type: 'product', product: protection({ protection: 'detect' }) });
    const revoked = serial();
    w2.push({ type: 'revocation', serial: revoked, reason: 'refunded', at: new Date().toISOString() });
    await w2.sync.now();
    const d = await w2.entitlements.redeemSoon({ code: w2.token(serial()), venue: 'gate' });
    expect(d.verdict).toBe('REDEEMED');
    expect(d.lease).toBeUndefined();
    expect(w2.receipts.chain(d.redemption!.capsule).at(-1)!.payload.body).toMatchObject({ protection: 'detect', lease: null });
    // The pulled revocation (deny list) reached the ledger.
    expect((await w2.entitlements.redeemSoon({ code: w2.token(revoked), venue: 'gate' })).verdict).toBe('REVOKED');
  });
});

describe('bundles carry the cloud\'s co-signature', () => {
  it('proves a synced capsule against the co-signed head, verifies with OpenSSL alone, and fails the witness check when altered', async () => {
    const w = await world();
    await w.sync.enroll({ cloud: w.url, code: w.s.code });
    writeReceipts(w, 2);
    const cid = writeReceipts(w, 1)[0]!;
    const sources = { receipts: w.receipts, log: w.log, deviceKey: w.deviceKey, cosignature: (n: number) => w.sync.cosignature(n) };
    const before = verifyBundleOnHost(capsuleBundle(sources, cid, 'https://x.example/c/1'));
    expect(before.error).toBeUndefined();
    expect(before.checks.find((c) => c.id === 'witness')).toMatchObject({ status: 'pass', detail: expect.stringContaining('not synced yet') });
    await w.sync.now();
    writeReceipts(w, 1); // the log grows past the co-signed head: the bundle still uses the co-signed one
    const bytes = capsuleBundle(sources, cid, 'https://x.example/c/1');
    const v = verifyBundleOnHost(bytes);
    expect(v.ok).toBe(true);
    expect(v.checks.find((c) => c.id === 'witness')).toMatchObject({ status: 'pass', detail: expect.stringContaining(`co-signed by the cloud of tenant ${w.s.tenant} (${w.s.key.keyid})`) });

    // OpenSSL alone, with the commands README.txt step 5 gives.
    const dir = tempDir('tessera-cosig-', 'file');
    writeFileSync(join(dir, 'b.zip'), bytes);
    execFileSync('unzip', ['-q', 'b.zip', '-d', 'x'], { cwd: dir });
    const witnessPem = `keys/${w.s.key.keyid.slice(3)}.pem`;
    expect(opensslVerifyDsse(join(dir, 'x'), 'log/cosignature.json', witnessPem)).toBe('Signature Verified Successfully\n');
    const readme = execFileSync('cat', ['x/README.txt'], { cwd: dir, encoding: 'utf8' });
    expect(readme).toContain(`R=log/cosignature.json and -inkey ${witnessPem}`);
    expect(opensslVerifyDsse(join(dir, 'x'), 'log/cosignature.json', witnessPem, true)).toBe('Signature Verification Failure\n');

    // A co-signature of another size, re-signed into a bundle whose index is re-signed too, fails only the witness check.
    const entries = readZipData(bytes, readZipDirectory(bytes));
    const env = JSON.parse(new TextDecoder().decode(entries.get('log/cosignature.json')!)) as DsseEnvelope;
    const payload = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Cosignature;
    const forged = signEnvelope(COSIGNATURE_PAYLOAD_TYPE, canonicalBytes({ ...payload, size: payload.size + 1 }), [w.s.key]);
    const { buildBundle } = await import('../../main/common/bundle.js');
    const inclusion = JSON.parse(new TextDecoder().decode(entries.get('log/inclusion.json')!)) as { tree_head: DsseEnvelope; proofs: never[] };
    const rebuilt = buildBundle({
      capsule: w.receipts.capsule(cid)!.capsule, receipts: w.receipts.receipts(cid),
      keys: [{ keyid: w.deviceKey.keyid, pem: w.deviceKey.publicKeyPem, role: 'device' }, { keyid: w.s.key.keyid, pem: w.s.key.publicKeyPem, role: 'witness' }],
      manifests: [], log: inclusion, cosignature: forged, cardUrl: 'https://x.example/c/1', qrPng: entries.get('qr.png')!, createdAt: new Date().toISOString(), signer: w.deviceKey,
    });
    const bad = verifyBundleOnHost(rebuilt);
    expect(bad).toMatchObject({ ok: false, error: { code: 'BUNDLE_WITNESS_INVALID', where: 'log/cosignature.json' } });
    expect(bad.checks.filter((c) => c.status !== 'pass').map((c) => c.id)).toEqual(['witness']);
  });
});
