/**
 * Issue 16 §4–§5 in the cloud: products, entitlements issued with the tenant key, the deny list, leases (grant,
 * assign, return, move, expiry) with the `prevent` invariant under concurrent grants, the device pull feed with its
 * checkpoint, and double-spend proofs built at ingest from real signed REDEMPTION receipts.
 *
 * Runs on PGlite (in memory) and on a real, throwaway PostgreSQL server (test/helpers/postgres.ts cloudDbs).
 * Tenants and devices are written straight into the database (enrollment is tested in cloud-enroll.test.ts);
 * device requests are signed here with requestSigningBytes, as a device does.
 */
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_HEADERS, LEASE_PAYLOAD_TYPE, adjudicate, requestSigningBytes } from '../../main/common/cloud.js';
import type { DoubleSpendProof, Lease, PullResponse, SyncChange } from '../../main/common/cloud.js';
import { canonicalBytes } from '../../main/common/canonical.js';
import { toBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { verifyToken, kidOfKeyid, encodeToken } from '../../main/common/entitlement-token.js';
import { MERKLE_HASH, TREE_HEAD_PAYLOAD_TYPE, TREE_HEAD_VERSION } from '../../main/common/merkle.js';
import { RECEIPT_PAYLOAD_TYPE, RECEIPT_VERSION, receiptBytes, receiptId } from '../../main/common/receipt.js';
import type { JsonObject, ReceiptPayload } from '../../main/common/receipt.js';
import { createCloudServer } from '../../main/cloud/app.js';
import type { AcceptedReceipt } from '../../main/cloud/app.js';
import type { Db } from '../../main/cloud/db.js';
import { appendChanges } from '../../main/cloud/feed.js';
import { createEntitlementIngestHook, entitlementRoutes } from '../../main/cloud/entitlements.js';
import { leaseRoutes } from '../../main/cloud/leases.js';
import { generateKeyPair, privateKeyPem, signEnvelope, verifyEnvelope, verifyEd25519 } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { cloudDbs } from '../helpers/postgres.js';

const PRODUCT = `b3:${'ab'.repeat(32)}`;
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

interface Device { key: SigningKey; id: string }
/** An answer as the assertions read it (the route schemas fix the shapes). */
interface Answer {
  error: { code: string; details?: unknown };
  lease: DsseEnvelope;
  leases: Array<{ rights: number } & Record<string, unknown>>;
  entitlements: Array<Record<string, unknown>>;
  conflicts: Array<{ serial: string; proof: DsseEnvelope }>;
  [key: string]: unknown;
}

describe.each(cloudDbs())('cloud leases and entitlements (%s)', (_name, open) => {
  let db: Db;
  let app: FastifyInstance;
  let now = Date.parse('2026-06-01T10:00:00.000Z');
  const clock = () => now;
  const tenant = `t_${randomBytes(4).toString('hex')}`;
  const other = `u_${randomBytes(4).toString('hex')}`;
  const tenantKeyPair = generateKeyPair();
  const adminToken = `adm_${randomBytes(16).toString('hex')}`;
  const otherToken = `adm_${randomBytes(16).toString('hex')}`;
  const devices: Device[] = [];
  const hook = createEntitlementIngestHook(clock);

  const addDevice = async (t: string, role: 'kiosk' | 'redeemer'): Promise<Device> => {
    const key = generateKeyPair();
    await db.query('INSERT INTO devices (tenant, device, public_key_pem, role, name, certificate) VALUES ($1, $2, $3, $4, $5, $6::jsonb)', [t, key.keyid, key.publicKeyPem, role, `${role}-${key.keyid.slice(3, 9)}`, '{}']);
    return { key, id: key.keyid };
  };

  beforeAll(async () => {
    db = await open();
    for (const [id, token, key] of [[tenant, adminToken, tenantKeyPair], [other, otherToken, generateKeyPair()]] as const) {
      await db.query('INSERT INTO tenants (id, name, cloud_keyid, cloud_key_pem, cloud_private_pem) VALUES ($1, $2, $3, $4, $5)', [id, id, key.keyid, key.publicKeyPem, privateKeyPem(key)]);
      await db.query('INSERT INTO admin_tokens (token_sha256, tenant) VALUES ($1, $2)', [sha256(token), id]);
    }
    for (let i = 0; i < 3; i++) devices.push(await addDevice(tenant, 'redeemer'));
    app = await createCloudServer({ db, logger: createMemoryLogger(), rootToken: 'root', version: 'test', clock, routes: [entitlementRoutes, leaseRoutes], ingestHooks: [hook], limits: { ratePerMinute: 100_000 } });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });

  const admin = async (method: 'GET' | 'POST', url: string, body?: unknown, token = adminToken) => {
    const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
    return { status: res.statusCode, body: res.json() as Answer };
  };
  /** A request signed with the device key, the way a device's sync client signs it. */
  const signed = async (device: Device, method: 'GET' | 'POST', url: string, body?: unknown) => {
    const raw = body === undefined ? '' : JSON.stringify(body);
    const time = new Date(now).toISOString();
    const sig = device.key.sign(requestSigningBytes(method, url, time, sha256(raw)));
    const res = await app.inject({
      method, url, payload: body === undefined ? undefined : raw,
      headers: { [DEVICE_HEADERS.device]: device.id, [DEVICE_HEADERS.time]: time, [DEVICE_HEADERS.signature]: toBase64(sig), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    });
    return { status: res.statusCode, body: res.json() as Answer };
  };
  const issue = async (over: Record<string, unknown> = {}) => {
    const res = await admin('POST', '/v1/entitlements', { product_cid: PRODUCT, kind: 'multi_use', uses: 3, valid_from: new Date(now - 60_000).toISOString(), valid_until: new Date(now + 30 * 86_400_000).toISOString(), venues: ['museum'], ...over });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as unknown as { serial: string; code: string; leases: DsseEnvelope[] };
  };
  const leaseOf = (envelope: DsseEnvelope): Lease => {
    verifyEnvelope(envelope, (k) => (k === tenantKeyPair.keyid ? { publicKeyRaw: tenantKeyPair.publicKeyRaw } : undefined));
    expect(envelope.payloadType).toBe(LEASE_PAYLOAD_TYPE);
    return JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as Lease;
  };
  const pullAll = async (device: Device, from = 0, limit = 500): Promise<{ changes: SyncChange[]; checkpoint: number }> => {
    const changes: SyncChange[] = [];
    let checkpoint = from;
    for (;;) {
      const res = await signed(device, 'GET', `/v1/sync/pull?checkpoint=${checkpoint}&limit=${limit}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const page = res.body as unknown as PullResponse;
      changes.push(...page.changes);
      checkpoint = page.checkpoint;
      if (!page.more) return { changes, checkpoint };
    }
  };

  /** A device's own receipt chain for one serial: INTENT (first sight of the token) then REDEMPTIONs, signed by its key. */
  const chains = new Map<string, { capsule: string; prev: string | null; index: number }>();
  const receipt = (device: Device, serial: string, kind: 'INTENT' | 'REDEMPTION' | 'ISSUANCE', body: JsonObject, at: number): AcceptedReceipt => {
    const chainKey = `${device.id}/${serial}`;
    let chain = chains.get(chainKey);
    if (!chain) {
      chain = { capsule: `b3:${sha256(chainKey)}`, prev: null, index: 0 };
      chains.set(chainKey, chain);
    }
    const payload: ReceiptPayload = { v: RECEIPT_VERSION, kind, capsule: chain.capsule, prev: chain.prev, subject: serial, body, issued_at: new Date(at).toISOString(), device: device.id };
    const envelope = signEnvelope(RECEIPT_PAYLOAD_TYPE, receiptBytes(payload), [device.key]);
    const id = receiptId(payload);
    chain.prev = id;
    return { id, index: chain.index++, envelope, payload };
  };
  const redeem = (device: Device, serial: string, at: number, extra: JsonObject = {}): AcceptedReceipt[] => {
    const out: AcceptedReceipt[] = [];
    if (!chains.has(`${device.id}/${serial}`)) out.push(receipt(device, serial, 'INTENT', { intent: 'entitlement.redeem', serial, product: PRODUCT, kind: 'single_use' }, at));
    out.push(receipt(device, serial, 'REDEMPTION', { action: 'redeem', redemption_id: `rdm_${randomBytes(6).toString('hex')}`, serial, venue: 'museum', ...extra }, at));
    return out;
  };
  const ingest = (device: Device, receipts: AcceptedReceipt[]) => db.tx((sql) => hook(sql, { tenant, device: device.id }, receipts));
  /** What the receipt ingest (main/cloud/receipts.ts) records once it accepted a head: the device's log size and its signed head. */
  const acceptHead = async (device: Device, size: number, signedAt: number) => {
    const head = { v: TREE_HEAD_VERSION, log: device.id, size, root: 'ab'.repeat(32), hash: MERKLE_HASH, issued_at: new Date(signedAt).toISOString() };
    const envelope = signEnvelope(TREE_HEAD_PAYLOAD_TYPE, canonicalBytes(head), [device.key]);
    await db.query(
      `INSERT INTO device_logs (tenant, device, size, root, head, accepted_at) VALUES ($1, $2, $3, $4, $5::jsonb, now())
       ON CONFLICT (tenant, device) DO UPDATE SET size = excluded.size, root = excluded.root, head = excluded.head`,
      [tenant, device.id, size, head.root, JSON.stringify(envelope)],
    );
  };

  it('issues with the tenant key a TS1 token devices verify, and serves products, the entitlement and its revocation in the pull feed', async () => {
    const product = await admin('POST', '/v1/products', { product_cid: PRODUCT, protection: 'prevent', deny_max_age_s: 3600 });
    expect(product.status).toBe(200);
    const { serial, code } = await issue();
    const verified = verifyToken(code, (kid) => (kid === kidOfKeyid(tenantKeyPair.keyid) ? { state: 'trusted', keyid: tenantKeyPair.keyid, publicKeyRaw: tenantKeyPair.publicKeyRaw } : { state: 'unknown' }), verifyEd25519);
    expect(verified.ok && verified.token.claims).toMatchObject({ serial, product_cid: PRODUCT, kind: 'multi_use', rights: 3, venues: ['museum'] });
    const before = await pullAll(devices[0]!);
    expect(before.changes.find((c) => c.type === 'product')).toMatchObject({ product: { product_cid: PRODUCT, protection: 'prevent', deny_max_age_s: 3600 } });
    expect(before.changes.find((c) => c.type === 'entitlement' && c.entitlement.serial === serial)).toMatchObject({ entitlement: { code, rights: 3 } });
    const revoked = await admin('POST', `/v1/entitlements/${serial}/revoke`, { reason: 'refunded' });
    expect(revoked.status).toBe(200);
    // Resumed from the checkpoint: only the revocation is new.
    const after = await pullAll(devices[0]!, before.checkpoint);
    expect(after.changes.map((c) => c.type)).toEqual(['revocation']);
    expect(after.changes[0]).toMatchObject({ serial, reason: 'refunded' });
    expect((await admin('POST', `/v1/entitlements/${serial}/revoke`, { reason: 'again' })).body).toMatchObject({ reason: 'refunded' });
    expect((await pullAll(devices[0]!, after.checkpoint)).changes).toEqual([]);
    // A revoked entitlement has nothing to lease; another tenant does not see it at all.
    expect((await signed(devices[0]!, 'POST', '/v1/leases/grant', { serial, rights: 1 })).body.error.code).toBe('LEASE_UNAVAILABLE');
    expect((await admin('GET', `/v1/entitlements?serial=${serial}`, undefined, otherToken)).body.entitlements).toEqual([]);
    expect((await admin('POST', '/v1/leases', { serial, device: devices[0]!.id, rights: 1 }, otherToken)).status).toBe(404);
  });

  it('documents every entitlement and lease route in the OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    for (const [method, path] of [['post', '/v1/products'], ['get', '/v1/products'], ['post', '/v1/entitlements'], ['get', '/v1/entitlements'], ['post', '/v1/entitlements/{serial}/revoke'],
      ['post', '/v1/leases'], ['get', '/v1/leases'], ['post', '/v1/leases/grant'], ['post', '/v1/leases/return'], ['post', '/v1/leases/move'], ['get', '/v1/conflicts'], ['get', '/v1/sync/pull']] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
  });

  it('grants what is free, signed by the tenant key, and refuses once every right is leased', async () => {
    const { serial } = await issue({ uses: 3 });
    const a = await signed(devices[0]!, 'POST', '/v1/leases/grant', { serial, rights: 2 });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(leaseOf(a.body.lease)).toMatchObject({ serial, device: devices[0]!.id, rights: 2, tenant, product_cid: PRODUCT });
    const b = await signed(devices[1]!, 'POST', '/v1/leases/grant', { serial, rights: 5 });
    expect(leaseOf(b.body.lease).rights).toBe(1);
    const c = await signed(devices[2]!, 'POST', '/v1/leases/grant', { serial, rights: 1 });
    expect(c.status).toBe(409);
    expect(c.body.error).toMatchObject({ code: 'LEASE_UNAVAILABLE' });
    // Each holder finds its lease in its own feed; the others do not see it.
    const feed1 = await pullAll(devices[1]!);
    expect(feed1.changes.filter((ch) => ch.type === 'lease').map((ch) => leaseOf((ch as { lease: DsseEnvelope }).lease).device)).toEqual([devices[1]!.id]);
  });

  it('never leases beyond the rights under concurrent grants and assignments', async () => {
    const { serial } = await issue({ uses: 5 });
    const asks = Array.from({ length: 24 }, (_, i) => (i % 3 === 2 ? admin('POST', '/v1/leases', { serial, device: devices[i % 3]!.id, rights: 1 }) : signed(devices[i % 3]!, 'POST', '/v1/leases/grant', { serial, rights: 1 + (i % 2) })));
    const answers = await Promise.all(asks);
    const granted = answers.filter((r) => r.status === 200).map((r) => leaseOf(r.body.lease).rights);
    expect(answers.filter((r) => r.status !== 200).every((r) => r.body.error.code === 'LEASE_UNAVAILABLE')).toBe(true);
    expect(granted.reduce((s, n) => s + n, 0)).toBe(5);
    const listed = await admin('GET', `/v1/leases?serial=${serial}`);
    expect(listed.body.leases.reduce((s: number, l: { rights: number }) => s + l.rights, 0)).toBe(5);
  });

  it('grants leases at issue, and counts redemptions beyond a bound lease against the rights', async () => {
    const [a, b] = [devices[0]!, devices[1]!];
    const { checkpoint } = await pullAll(a);
    const { serial, leases } = await issue({ uses: 4, leases: [{ device: a.id, rights: 2 }] });
    const lease = leaseOf(leases[0]!);
    expect(lease).toMatchObject({ device: a.id, rights: 2, serial });
    expect((await pullAll(a, checkpoint)).changes.filter((c) => c.type === 'lease').map((c) => leaseOf((c as { lease: DsseEnvelope }).lease).lease)).toEqual([lease.lease]);
    // Offline, a redeemed its two leased rights and one beyond (a `bound` product allows it): 2 + 1 of 4 are spoken for.
    const spent = [
      ...redeem(a, serial, now, { lease: lease.lease, protection: 'bound' }),
      ...redeem(a, serial, now + 1, { lease: lease.lease, protection: 'bound' }),
      ...redeem(a, serial, now + 2, { lease: lease.lease, protection: 'bound', beyond_lease: true }),
    ];
    await ingest(a, spent);
    expect(leaseOf((await signed(b, 'POST', '/v1/leases/grant', { serial, rights: 4 })).body.lease).rights).toBe(1);
    expect((await admin('GET', `/v1/leases?serial=${serial}&device=${a.id}`)).body.leases[0]).toMatchObject({ used: 2, left: 0 });
  });

  it('ingests kiosk sales and redemptions while devices ask for leases of the same serials, without deadlock or over-leasing', async () => {
    const kiosk = await addDevice(tenant, 'kiosk');
    const serials = await Promise.all([1, 2, 3].map(async () => (await issue({ uses: 6 })).serial));
    const work: Array<Promise<unknown>> = [];
    for (let i = 0; i < 12; i++) {
      const serial = serials[i % 3]!;
      const sold = randomBytes(12).toString('hex');
      const code = encodeToken({ serial: sold, product_cid: PRODUCT, kind: 'multi_use', rights: 2, nbf: 0, exp: 2e9, venues: [], issuer_keyid: kiosk.id }, (m) => kiosk.key.sign(m));
      // One upload: a kiosk sale (a feed entry) and a redemption of a contended serial, as one device's receipts.
      work.push(db.tx((sql) => hook(sql, { tenant, device: kiosk.id }, [
        receipt(kiosk, sold, 'ISSUANCE', { serial: sold, code } as JsonObject, now),
        ...redeem(kiosk, serial, now, { protection: 'detect' }),
      ])));
      work.push(signed(devices[i % 3]!, 'POST', '/v1/leases/grant', { serial: serials[(i + 1) % 3]!, rights: 1 }).then((r) => {
        if (r.status !== 200 && r.body.error.code !== 'LEASE_UNAVAILABLE') throw new Error(JSON.stringify(r.body));
      }));
    }
    await Promise.all(work);
    for (const serial of serials) {
      const [row] = await db.query<{ leased: number; outside: number }>(
        `SELECT (SELECT coalesce(sum(rights), 0)::bigint FROM leases WHERE tenant = $1 AND serial = $2) AS leased,
                (SELECT coalesce(sum(amount), 0)::bigint FROM redemptions WHERE tenant = $1 AND serial = $2 AND lease IS NULL) AS outside`,
        [tenant, serial],
      );
      expect(Number(row!.leased)).toBeLessThanOrEqual(6);
      expect(Number(row!.outside)).toBe(4);
    }
  });

  it('takes a returned lease back only once the log naming it is uploaded, counting its redemptions', async () => {
    const { serial } = await issue({ uses: 3 });
    const d = devices[0]!;
    const lease = leaseOf((await signed(d, 'POST', '/v1/leases/grant', { serial, rights: 3 })).body.lease);
    const receipts = redeem(d, serial, now, { lease: lease.lease, protection: 'prevent' });
    const gap = await signed(d, 'POST', '/v1/leases/return', { lease: lease.lease, used: 1, log_size: 10 });
    expect(gap.status).toBe(409);
    expect(gap.body.error).toMatchObject({ code: 'LOG_GAP', details: { accepted_size: 0 } });
    await ingest(d, receipts);
    await acceptHead(d, 10, now);
    // The device under-reports: the cloud counts the receipts it holds.
    const back = await signed(d, 'POST', '/v1/leases/return', { lease: lease.lease, used: 0, log_size: 10 });
    expect(back.body).toEqual({ returned: 2, used: 1 });
    expect((await signed(d, 'POST', '/v1/leases/return', { lease: lease.lease, used: 0, log_size: 10 })).body).toEqual({ returned: 2, used: 1 });
    expect((await signed(devices[1]!, 'POST', '/v1/leases/return', { lease: lease.lease, used: 0, log_size: 0 })).body.error.code).toBe('LEASE_NOT_FOUND');
    const next = await signed(devices[1]!, 'POST', '/v1/leases/grant', { serial, rights: 3 });
    expect(leaseOf(next.body.lease).rights).toBe(2);
  });

  it('returns the unused rights of an expired lease only after the holder uploads a head signed past its expiry', async () => {
    const { serial } = await issue({ uses: 2 });
    const d = devices[2]!;
    const lease = leaseOf((await admin('POST', '/v1/leases', { serial, device: d.id, rights: 2, ttl_s: 600 })).body.lease);
    await ingest(d, redeem(d, serial, now + 1000, { lease: lease.lease, protection: 'prevent' }));
    await acceptHead(d, 2, now + 2000);
    now += 3600_000; // past exp; the device has been offline since
    expect((await signed(devices[0]!, 'POST', '/v1/leases/grant', { serial, rights: 1 })).body.error.code).toBe('LEASE_UNAVAILABLE');
    // Its head signed after exp: every redemption under the lease is in; the one unused right comes back.
    await acceptHead(d, 3, now - 1000);
    const g = await signed(devices[0]!, 'POST', '/v1/leases/grant', { serial, rights: 2 });
    expect(leaseOf(g.body.lease).rights).toBe(1);
    const listed = await admin('GET', `/v1/leases?serial=${serial}&device=${d.id}`);
    expect(listed.body.leases[0]).toMatchObject({ state: 'expired', used: 1, rights: 2 });
  });

  it('moves rights: the holder is told to give its lease back, and the rights reach the target when it does', async () => {
    const { serial } = await issue({ uses: 4 });
    const [from, to] = [devices[0]!, devices[1]!];
    const start = (await pullAll(to)).checkpoint;
    const fromStart = (await pullAll(from)).checkpoint;
    const lease = leaseOf((await admin('POST', '/v1/leases', { serial, device: from.id, rights: 4 })).body.lease);
    const moved = await admin('POST', '/v1/leases/move', { serial, from: from.id, to: to.id, rights: 3 });
    expect(moved.body).toEqual({ recall: lease.lease });
    const recall = (await pullAll(from, fromStart)).changes.filter((c) => c.type === 'lease_recall');
    expect(recall).toMatchObject([{ lease: lease.lease }]);
    // Nothing reaches `to` before `from` gave the lease back.
    expect((await pullAll(to, start)).changes.filter((c) => c.type === 'lease')).toEqual([]);
    await acceptHead(from, 20, now);
    expect((await signed(from, 'POST', '/v1/leases/return', { lease: lease.lease, used: 0, log_size: 20 })).body).toEqual({ returned: 4, used: 0 });
    const granted = (await pullAll(to, start)).changes.filter((c) => c.type === 'lease');
    expect(granted.map((c) => leaseOf((c as { lease: DsseEnvelope }).lease))).toMatchObject([{ device: to.id, rights: 3, serial }]);
    expect((await admin('POST', '/v1/leases/move', { serial, from: from.id, to: to.id, rights: 1 })).body.error.code).toBe('LEASE_NOT_FOUND');
  });

  it('pulls in pages and never skips a change committed by a concurrent transaction', async () => {
    const d = devices[1]!;
    const { checkpoint: start } = await pullAll(d);
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    // Writers start one after another and keep their transaction open a little after taking a seq (a slow commit).
    const done = (async () => {
      const writers: Array<Promise<{ seq: number; mine: boolean }>> = [];
      for (let i = 0; i < 60; i++) {
        writers.push(db.tx(async (sql) => {
          const [seq] = await appendChanges(sql, tenant, [{ device: i % 4 === 0 ? devices[0]!.id : null, change: { type: 'revocation', serial: i.toString(16).padStart(24, '0'), reason: `r${i}`, at: new Date(now).toISOString() } }]);
          await pause(i % 3);
          return { seq: seq!, mine: i % 4 !== 0 };
        }));
        await pause(1);
      }
      return Promise.all(writers);
    })();
    // Pull while they commit, resuming each time from the checkpoint the last page gave.
    const seen: number[] = [];
    let checkpoint = start;
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      const page = await pullAll(d, checkpoint, 3);
      seen.push(...page.changes.map((c) => c.seq));
      checkpoint = page.checkpoint;
    }
    const last = await pullAll(d, checkpoint, 3);
    seen.push(...last.changes.map((c) => c.seq));
    const expected = (await done).filter((w) => w.mine).map((w) => w.seq).sort((a, b) => a - b);
    expect(seen).toEqual(expected);
  });

  it('learns a kiosk sale from its ISSUANCE receipt and serves it to redeemers', async () => {
    const kiosk = await addDevice(tenant, 'kiosk');
    const serial = randomBytes(12).toString('hex');
    const code = encodeToken({ serial, product_cid: PRODUCT, kind: 'multi_use', rights: 2, nbf: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 86_400, venues: ['pier'], issuer_keyid: kiosk.id }, (m) => kiosk.key.sign(m));
    const { checkpoint } = await pullAll(devices[0]!);
    await ingest(kiosk, [receipt(kiosk, serial, 'ISSUANCE', { serial, kind: 'multi_use', rights_total: 2, valid_from: new Date(now).toISOString(), valid_until: new Date(now + 86_400_000).toISOString(), code } as JsonObject, now)]);
    const feed = await pullAll(devices[0]!, checkpoint);
    expect(feed.changes).toMatchObject([{ type: 'entitlement', entitlement: { serial, code, rights: 2, venues: ['pier'] } }]);
    expect((await admin('GET', `/v1/entitlements?serial=${serial}`)).body.entitlements[0]).toMatchObject({ source: kiosk.id });
    // A redeemer's ISSUANCE (or a token signed by another key) is not a sale.
    const forged = randomBytes(12).toString('hex');
    const forgedCode = encodeToken({ serial: forged, product_cid: PRODUCT, kind: 'single_use', nbf: 0, exp: 2e9, venues: [], issuer_keyid: kiosk.id }, (m) => devices[0]!.key.sign(m));
    await ingest(kiosk, [receipt(kiosk, forged, 'ISSUANCE', { serial: forged, code: forgedCode } as JsonObject, now)]);
    const own = randomBytes(12).toString('hex');
    const ownCode = encodeToken({ serial: own, product_cid: PRODUCT, kind: 'single_use', nbf: 0, exp: 2e9, venues: [], issuer_keyid: devices[0]!.id }, (m) => devices[0]!.key.sign(m));
    await ingest(devices[0]!, [receipt(devices[0]!, own, 'ISSUANCE', { serial: own, code: ownCode } as JsonObject, now)]);
    for (const s of [forged, own]) expect((await admin('GET', `/v1/entitlements?serial=${s}`)).body.entitlements).toEqual([]);
  });

  it('turns redemptions beyond the rights into a signed double-spend proof anyone can re-adjudicate, with an alert', async () => {
    const { serial } = await issue({ kind: 'single_use', uses: undefined });
    const [a, b, c] = devices as [Device, Device, Device];
    await ingest(a, redeem(a, serial, now + 5000, { protection: 'detect' }));
    expect((await admin('GET', '/v1/conflicts')).body.conflicts.filter((x: { serial: string }) => x.serial === serial)).toEqual([]);
    // b redeemed earlier than a while offline; c redeemed and undid (a mis-tap): not a spend.
    await ingest(b, redeem(b, serial, now + 1000, { protection: 'detect' }));
    const cr = redeem(c, serial, now + 2000, { protection: 'detect' });
    const undo = receipt(c, serial, 'REDEMPTION', { action: 'undo', undo_of: cr.at(-1)!.id, serial, venue: 'museum' }, now + 3000);
    await ingest(c, [...cr, undo]);
    const conflicts = (await admin('GET', '/v1/conflicts')).body.conflicts.filter((x: { serial: string }) => x.serial === serial);
    expect(conflicts).toHaveLength(1);
    const envelope = conflicts[0]!.proof;
    verifyEnvelope(envelope, (k) => (k === tenantKeyPair.keyid ? { publicKeyRaw: tenantKeyPair.publicKeyRaw } : undefined));
    const proof = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as DoubleSpendProof;
    expect(proof).toMatchObject({ serial, rights: 1, used: 2 });
    // Evidence: each device's own signed receipt; the earliest (b's) is honoured.
    for (const e of proof.evidence) verifyEnvelope(e.receipt, (k) => (k === e.device ? { publicKeyRaw: devices.find((d) => d.id === k)!.key.publicKeyRaw } : undefined));
    expect(proof.evidence.map((e) => e.device).sort()).toEqual([a.id, b.id].sort());
    const again = adjudicate(proof.rights, proof.evidence);
    expect({ honoured: again.honoured, over: again.over }).toEqual({ honoured: proof.adjudication.honoured, over: proof.adjudication.over });
    expect(proof.adjudication.honoured).toEqual([proof.evidence.find((e) => e.device === b.id)!.receipt_id]);
    const alerts = await db.query<{ code: string; message: string }>("SELECT code, message FROM alerts WHERE tenant = $1 AND code = 'DOUBLE_SPEND' AND message LIKE $2", [tenant, `%${serial}%`]);
    expect(alerts).toHaveLength(1);
    // The same upload again (a retry) changes nothing.
    await ingest(b, []);
    expect(await db.query("SELECT 1 FROM alerts WHERE tenant = $1 AND message LIKE $2", [tenant, `%${serial}%`])).toHaveLength(1);
  });

  it('adjudicates deterministically: any order of the same evidence gives the same answer, within the rights, earliest first', () => {
    const spend = fc.record({
      receipt_id: fc.stringMatching(/^b3:[0-9a-f]{8}$/),
      issued_at: fc.integer({ min: 0, max: 50 }).map((s) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString()),
      amount: fc.integer({ min: 1, max: 5 }),
    });
    fc.assert(fc.property(fc.integer({ min: 0, max: 20 }), fc.uniqueArray(spend, { selector: (s) => s.receipt_id, maxLength: 12 }), fc.context(), (rights, evidence, ctx) => {
      const shuffled = [...evidence].reverse();
      const a = adjudicate(rights, evidence);
      const b = adjudicate(rights, shuffled);
      ctx.log(JSON.stringify(a));
      expect(b).toEqual(a);
      expect([...a.honoured, ...a.over].sort()).toEqual(evidence.map((e) => e.receipt_id).sort());
      const amount = new Map(evidence.map((e) => [e.receipt_id, e.amount]));
      expect(a.honoured.reduce((s, id) => s + amount.get(id)!, 0)).toBeLessThanOrEqual(rights);
      expect(a.used).toBe(evidence.reduce((s, e) => s + e.amount, 0));
      // Earliest first: a spend that fits is never passed over for a later one.
      const order = [...evidence].sort((x, y) => (x.issued_at === y.issued_at ? (x.receipt_id < y.receipt_id ? -1 : 1) : x.issued_at < y.issued_at ? -1 : 1));
      let sum = 0;
      for (const e of order) if (sum + e.amount <= rights) {
        sum += e.amount;
        expect(a.honoured).toContain(e.receipt_id);
      }
    }), { numRuns: 300 });
  });
});
