/**
 * Receipts, device → cloud (issue 16 §3): uploads of a real device log (SQLite + runtime/receipts/device-log.ts) to
 * the cloud's Fastify server on PGlite, signed as a device signs them. Proves that accepted uploads are stored once
 * and co-signed, that retries and duplicates change nothing, that gaps, forks and bad receipts are refused with
 * their codes (forks with evidence and an alert), and that inclusion proofs verify against the co-signed head.
 */
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { COSIGNATURE_PAYLOAD_TYPE } from '../../main/common/cloud.js';
import type { AcceptedHead, CloudInclusion, Cosignature } from '../../main/common/cloud.js';
import { fromBase64, toBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { hashFromHex, verifyInclusion } from '../../main/common/merkle.js';
import { RECEIPT_PAYLOAD_TYPE } from '../../main/common/receipt.js';
import { createCloudServer } from '../../main/cloud/app.js';
import type { IngestHook } from '../../main/cloud/app.js';
import { openDb } from '../../main/cloud/db.js';
import type { Db } from '../../main/cloud/db.js';
import { inclusionOf, receiptRoutes } from '../../main/cloud/receipts.js';
import { generateKeyPair, signEnvelope, verifyEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { buildReceipts } from '../../main/runtime/receipts/store.js';
import { createTestDevice, insertDevice, insertTenant, signedRequest } from '../helpers/cloud.js';
import type { TestDevice } from '../helpers/cloud.js';
import { tempDir } from '../helpers/tmp.js';

let db: Db;
let app: FastifyInstance;
let hooks: IngestHook[];
let adminToken: string;
let cloudKey: SigningKey;
let device: TestDevice;
const devices: TestDevice[] = [];

// One database per file (starting PGlite takes seconds); every test starts from empty tables. PGlite in memory, or
// the PostgreSQL server TESSERA_CLOUD_TEST_PG names (a throwaway database: its cloud tables are emptied).
beforeAll(async () => {
  const url = process.env['TESSERA_CLOUD_TEST_PG'];
  db = await openDb(url ? { url } : {});
});
afterAll(async () => {
  await db.close();
});
beforeEach(async () => {
  await db.query('TRUNCATE tenants, admin_tokens, devices, alerts, changes, device_logs, cloud_receipts, cloud_capsules, cloud_log_nodes, fork_evidence, enrollment_codes CASCADE');
  hooks = [];
  const dir = tempDir('tessera-cloud-receipts-');
  device = createTestDevice(dir);
  devices.push(device);
  ({ adminToken, cloudKey } = await insertTenant(db, 'acme', [device.key]));
  app = await createCloudServer({ db, logger: createMemoryLogger(), rootToken: 'root-secret', version: 'test', routes: [receiptRoutes], ingestHooks: hooks });
  await app.ready();
});
afterEach(async () => {
  await app?.close();
  while (devices.length > 0) devices.pop()!.close();
});

async function call(key: SigningKey, method: 'GET' | 'POST', url: string, body?: unknown) {
  const { headers, payload } = signedRequest(key, method, url, body);
  const res = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> & { error?: { code: string; message: string; details?: Record<string, unknown> } } };
}
const upload = (d: TestDevice, body: unknown) => call(d.key, 'POST', '/v1/sync/receipts', body);
const count = async (table: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;

/** Checks the co-signature: signed by the tenant's cloud key, naming this device's log at that size and root. */
function expectCosigned(head: AcceptedHead, d: TestDevice): void {
  const verified = verifyEnvelope(head.cosignature!, (k) => (k === cloudKey.keyid ? cloudKey : undefined));
  expect(verified.payloadType).toBe(COSIGNATURE_PAYLOAD_TYPE);
  const statement = JSON.parse(new TextDecoder().decode(verified.payload)) as Cosignature;
  expect(statement).toMatchObject({ log: d.key.keyid, size: head.size, root: head.root, tenant: 'acme', witness: cloudKey.keyid });
  expect(head.root).toBe(d.log.root(head.size).root);
}

/** A receipt signed by `key` continuing `prev` in `capsule`, as the runtime builds them. */
function craft(key: SigningKey, capsule: string, prev: string | null, kind: 'INTENT' | 'RESULT', device = key.keyid, at = Date.now()): { envelope: DsseEnvelope; id: string } {
  const [built] = buildReceipts(capsule, prev, [{ kind, subject: 'tenant:test', body: {} }], at, device);
  return { envelope: signEnvelope(RECEIPT_PAYLOAD_TYPE, built!.bytes, [key]), id: built!.id };
}
const capsuleCid = (n: number) => `b3:${n.toString(16).padStart(64, 'c')}`;

describe('receipt upload', () => {
  it('accepts a device log in batches, stores every receipt once and co-signs each accepted head', async () => {
    expect((await call(device.key, 'GET', '/v1/sync/head')).body).toEqual({ size: 0, root: null, cosignature: null });
    device.add(25);
    let size = 0;
    for (const to of [7, 8, 20, 25]) {
      const res = await upload(device, device.upload(size, to));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const head = res.body as unknown as AcceptedHead;
      expect(head.size).toBe(to);
      expectCosigned(head, device);
      size = to;
    }
    expect(await count('cloud_receipts')).toBe(25);
    const ids = await db.query<{ id: string }>('SELECT id FROM cloud_receipts ORDER BY idx');
    expect(ids.map((r) => r.id)).toEqual(device.ids);
    const head = (await call(device.key, 'GET', '/v1/sync/head')).body as unknown as AcceptedHead;
    expect(head.size).toBe(25);
    expectCosigned(head, device);
    const row = (await db.query<{ size: number; root: string }>('SELECT size, root FROM device_logs'))[0]!;
    expect(row).toEqual({ size: 25, root: device.log.root(25).root });
  });

  it('answers a retry of the last batch with the current head and refuses an older batch with LOG_GAP; nothing is stored twice', async () => {
    device.add(12);
    const first = device.upload(0, 5);
    const second = device.upload(5, 12);
    expect((await upload(device, first)).status).toBe(200);
    const accepted = await upload(device, second);
    expect(accepted.status).toBe(200);
    // The answer to `second` was lost: the device sends it again.
    const retry = await upload(device, second);
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(accepted.body);
    // Both at once (two connections): one stores, the other is answered as a retry.
    device.add(4);
    const third = device.upload(12, 16);
    const both = await Promise.all([upload(device, third), upload(device, third)]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both[0]!.body).toEqual(both[1]!.body);
    // An older batch is not the last one: the device is told where the cloud stands.
    const old = await upload(device, first);
    expect(old.status).toBe(409);
    expect(old.body.error).toMatchObject({ code: 'LOG_GAP', details: { accepted_size: 16 } });
    expect(await count('cloud_receipts')).toBe(16);
  });

  it('refuses an upload that does not start at the accepted size with LOG_GAP', async () => {
    device.add(10);
    const res = await upload(device, device.upload(3, 10));
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'LOG_GAP', details: { accepted_size: 0 } });
    expect(await count('cloud_receipts')).toBe(0);
  });

  it('refuses a rewritten log with LOG_FORKED, stores nothing, keeps the evidence and raises an alert', async () => {
    // The device's log as the cloud accepts it: ten receipts.
    device.add(10);
    expect((await upload(device, device.upload(0, 10))).status).toBe(200);
    // The same device key, a log where leaf 3 was rewritten, then five more receipts.
    const forked = createTestDevice(tempDir('tessera-cloud-fork-'), { key: device.key });
    devices.push(forked);
    forked.addSigned(device.envelopes.slice(0, 3), device.ids.slice(0, 3));
    const rewritten = craft(device.key, capsuleCid(3), null, 'INTENT');
    forked.addSigned([rewritten.envelope], [rewritten.id]);
    forked.addSigned(device.envelopes.slice(4, 10), device.ids.slice(4, 10));
    forked.add(5);
    const res = await upload(forked, forked.upload(10, 15));
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'LOG_FORKED', details: { accepted_size: 10, accepted_root: device.log.root(10).root } });
    expect(await count('cloud_receipts')).toBe(10);
    expect((await db.query<{ size: number }>('SELECT size FROM device_logs'))[0]!.size).toBe(10);
    const evidence = await db.query<{ device: string; accepted_size: number; refused_head: DsseEnvelope; upload_from: number }>('SELECT device, accepted_size, refused_head, upload_from FROM fork_evidence');
    expect(evidence).toHaveLength(1);
    expect(evidence[0]).toMatchObject({ device: device.key.keyid, accepted_size: 10, upload_from: 10, refused_head: forked.log.signedHead(15).envelope });
    const alerts = await app.inject({ method: 'GET', url: '/v1/alerts', headers: { authorization: `Bearer ${adminToken}` } });
    expect(alerts.statusCode).toBe(200);
    expect((alerts.json() as { alerts: Array<{ code: string; device: string; evidence: { fork_evidence: number } }> }).alerts).toEqual([
      expect.objectContaining({ code: 'LOG_FORKED', device: device.key.keyid, evidence: expect.objectContaining({ refused: expect.objectContaining({ size: 15 }) }) }),
    ]);
    // The honest log still extends what was accepted.
    device.add(5);
    expect((await upload(device, device.upload(10, 15))).status).toBe(200);
  });

  it('refuses a consistency proof that does not verify with LOG_FORKED even when the receipts hash to the head', async () => {
    device.add(6);
    expect((await upload(device, device.upload(0, 3))).status).toBe(200);
    const body = device.upload(3, 6);
    body.consistency = body.consistency.map((h, i) => (i === 0 ? h.replace(/^./, (c) => (c === '0' ? '1' : '0')) : h));
    const res = await upload(device, body);
    expect(res.body.error?.code).toBe('LOG_FORKED');
    expect(await count('cloud_receipts')).toBe(3);
  });

  it('refuses valid receipts that are not the ones the signed head covers with LOG_FORKED', async () => {
    device.add(6);
    // The first upload (no consistency proof to check): head of the real log, leaf 1 swapped for another valid receipt.
    const first = device.upload(0, 3);
    first.receipts[1] = craft(device.key, capsuleCid(7), null, 'INTENT').envelope;
    expect((await upload(device, first)).body.error?.code).toBe('LOG_FORKED');
    expect(await count('cloud_receipts')).toBe(0);
    expect((await upload(device, device.upload(0, 3))).status).toBe(200);
    // A later upload: head and proof of the real log, leaf 4 swapped.
    const body = device.upload(3, 6);
    body.receipts[1] = craft(device.key, capsuleCid(8), null, 'INTENT').envelope;
    const res = await upload(device, body);
    expect(res.status).toBe(409);
    expect(res.body.error?.code).toBe('LOG_FORKED');
    expect(await count('cloud_receipts')).toBe(3);
    expect(await count('fork_evidence')).toBe(2);
  });

  it('refuses receipts with a bad signature, of another device, with a broken prev or a second INTENT, naming the receipt', async () => {
    device.add(4);
    expect((await upload(device, device.upload(0, 4))).status).toBe(200);
    const other = generateKeyPair();
    const cases: Array<{ name: string; receipt: () => { envelope: DsseEnvelope; id: string }; field: string }> = [
      {
        name: 'signature altered',
        receipt: () => {
          const r = craft(device.key, capsuleCid(1), null, 'INTENT');
          const sig = fromBase64(r.envelope.signatures[0]!.sig);
          sig[5] = sig[5]! ^ 1;
          return { ...r, envelope: { ...r.envelope, signatures: [{ keyid: device.key.keyid, sig: toBase64(sig) }] } };
        },
        field: 'signature',
      },
      { name: 'signed by another key', receipt: () => craft(other, capsuleCid(2), null, 'INTENT', device.key.keyid), field: 'signature' },
      { name: "another device's receipt", receipt: () => craft(device.key, capsuleCid(3), null, 'INTENT', other.keyid), field: 'device' },
      { name: 'prev names an unknown receipt', receipt: () => craft(device.key, capsuleCid(4), capsuleCid(99), 'RESULT'), field: 'prev' },
      // Receipt 0 starts a capsule; receipt 2 continues it: a RESULT naming receipt 0 instead of 2 forks the chain.
      { name: 'prev is not the last receipt of its capsule', receipt: () => craft(device.key, JSON.parse(new TextDecoder().decode(fromBase64(device.envelopes[0]!.payload))).capsule, device.ids[0]!, 'RESULT'), field: 'prev' },
      { name: 'a second INTENT of a capsule', receipt: () => craft(device.key, JSON.parse(new TextDecoder().decode(fromBase64(device.envelopes[0]!.payload))).capsule, null, 'INTENT'), field: 'prev' },
      { name: 'a RESULT that starts a chain', receipt: () => craft(device.key, capsuleCid(5), null, 'RESULT'), field: 'prev' },
    ];
    for (const c of cases) {
      const bad = createTestDevice(tempDir('tessera-cloud-bad-'), { key: device.key });
      devices.push(bad);
      bad.addSigned(device.envelopes, device.ids);
      bad.add(1);
      const r = c.receipt();
      bad.addSigned([r.envelope], [r.id]);
      bad.add(1);
      const res = await upload(bad, bad.upload(4));
      expect(res.status, c.name).toBe(422);
      expect(res.body.error, c.name).toMatchObject({ code: 'RECEIPT_INVALID', details: { index: 1, field: c.field } });
    }
    expect(await count('cloud_receipts')).toBe(4);
    // A chain continued across uploads is accepted.
    device.add(6);
    expect((await upload(device, device.upload(4))).status).toBe(200);
  });

  it('runs the ingest hooks inside the transaction: they see the accepted receipts, and a throw stores nothing', async () => {
    const seen: Array<{ device: string; indices: number[] }> = [];
    hooks.push(async (_sql, at, receipts) => void seen.push({ device: at.device, indices: receipts.map((r) => r.index) }));
    device.add(5);
    expect((await upload(device, device.upload(0, 3))).status).toBe(200);
    expect(seen).toEqual([{ device: device.key.keyid, indices: [0, 1, 2] }]);
    hooks.push(async (sql) => {
      await sql.query("INSERT INTO alerts (tenant, code, message) VALUES ('acme', 'TEST', 'from a hook')");
      throw new Error('hook refuses');
    });
    expect((await upload(device, device.upload(3, 5))).status).toBe(500);
    expect(await count('cloud_receipts')).toBe(3);
    expect(await count('alerts')).toBe(0);
    expect((await call(device.key, 'GET', '/v1/sync/head')).body).toMatchObject({ size: 3 });
  });
});

describe('the cloud copy of a log', () => {
  it('has the device root after every upload and the device inclusion paths, however the log is cut into batches', async () => {
    device.add(70);
    const runs = { n: 0 };
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: 69 }), { maxLength: 8 }), async (cuts) => {
        // An empty cloud copy each run: the same log, cut at other places.
        await db.query('TRUNCATE device_logs, cloud_receipts, cloud_capsules, cloud_log_nodes');
        const sizes = [...cuts.sort((a, b) => a - b), 70];
        let from = 0;
        for (const to of sizes) {
          const res = await upload(device, device.upload(from, to));
          expect(res.status, JSON.stringify(res.body)).toBe(200);
          expect((res.body as unknown as AcceptedHead).root).toBe(device.log.root(to).root);
          from = to;
        }
        for (const index of [0, 13, 34, 69]) {
          const proof = await inclusionOf(db, 'acme', device.ids[index]!);
          expect(proof.path).toEqual(device.log.inclusion(device.ids[index]!, 70).path);
        }
        runs.n++;
      }),
      { numRuns: 12 },
    );
    expect(runs.n).toBe(12);
  });
});

describe('inclusion proofs', () => {
  it('proves any uploaded receipt against the co-signed head, for the admin and devices of the tenant only', async () => {
    device.add(37);
    expect((await upload(device, device.upload(0, 20))).status).toBe(200);
    expect((await upload(device, device.upload(20, 37))).status).toBe(200);
    const peer = generateKeyPair();
    await insertDevice(db, 'acme', peer, 'peer');
    for (const index of [0, 1, 19, 20, 31, 32, 36]) {
      const id = device.ids[index]!;
      const res = await app.inject({ method: 'GET', url: `/v1/receipts/${id}/inclusion`, headers: { authorization: `Bearer ${adminToken}` } });
      expect(res.statusCode).toBe(200);
      const proof = res.json() as CloudInclusion;
      expect(proof).toMatchObject({ receipt: id, log: device.key.keyid, index, size: 37, root: device.log.root(37).root });
      expect(verifyInclusion(hashFromHex(proof.leaf_hash)!, proof.index, proof.size, proof.path.map((h) => hashFromHex(h)!), hashFromHex(proof.root)!)).toBe(true);
      expect(proof.path).toEqual(device.log.inclusion(id, 37).path);
      expectCosigned({ size: proof.size, root: proof.root, cosignature: proof.cosignature }, device);
    }
    const byPeer = await call(peer, 'GET', `/v1/receipts/${device.ids[5]!}/inclusion`);
    expect(byPeer.status).toBe(200);
    // Another tenant knows the id but holds no such receipt.
    const { adminToken: otherAdmin } = await insertTenant(db, 'globex');
    const foreign = await app.inject({ method: 'GET', url: `/v1/receipts/${device.ids[5]!}/inclusion`, headers: { authorization: `Bearer ${otherAdmin}` } });
    expect(foreign.statusCode).toBe(404);
    expect((foreign.json() as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    const alerts = await app.inject({ method: 'GET', url: '/v1/alerts', headers: { authorization: `Bearer ${otherAdmin}` } });
    expect(alerts.json()).toEqual({ alerts: [] });
  });
});

describe('API description', () => {
  it('lists the receipt routes with their schemas in the OpenAPI document', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/sync/head', '/v1/sync/receipts', '/v1/receipts/{id}/inclusion', '/v1/alerts']));
    expect(doc.paths['/v1/sync/receipts']!['post']!.requestBody).toBeDefined();
    expect(Object.keys(doc.paths['/v1/sync/receipts']!['post']!.responses)).toEqual(expect.arrayContaining(['200', '409', '422']));
  });
});
