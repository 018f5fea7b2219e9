/**
 * Test pieces for the cloud (issue 16), one file for every cloud test: a server on a given database with a clock the
 * test moves; device-signed requests (signed exactly as common/cloud.ts says, with no client of main/); enrollment in
 * one call; a real device log (SQLite store + runtime/receipts/device-log.ts) of receipt chains signed by a device key
 * with the uploads a device sends (common/cloud.ts ReceiptUpload); tenant/device rows inserted straight into the
 * cloud's database. Not a device client: the device's own one lives in main/runtime/sync.
 */
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, RouteOptions } from 'fastify';
import { DEVICE_HEADERS, enrollSigningBytes, requestSigningBytes } from '../../main/common/cloud.js';
import type { EnrollResponse, ReceiptUpload } from '../../main/common/cloud.js';
import { cidOfBytes } from '../../main/common/cid.js';
import { toBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { RECEIPT_PAYLOAD_TYPE } from '../../main/common/receipt.js';
import type { ReceiptKind } from '../../main/common/receipt.js';
import { createCloudServer, sha256Hex } from '../../main/cloud/app.js';
import type { CloudLimits } from '../../main/cloud/app.js';
import type { Db, Sql } from '../../main/cloud/db.js';
import { CLOUD_ROUTES, cloudIngestHooks } from '../../main/cloud/index.js';
import { generateKeyPair, privateKeyPem, signEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createLogger } from '../../main/runtime/log/index.js';
import { createDeviceLog } from '../../main/runtime/receipts/device-log.js';
import type { DeviceLog } from '../../main/runtime/receipts/device-log.js';
import { buildReceipts } from '../../main/runtime/receipts/store.js';
import { openStore } from '../../main/runtime/store/index.js';

export const ROOT_TOKEN = 'ttr_test-root-token-0123456789abcdef';

export interface TestCloud {
  app: FastifyInstance;
  db: Db;
  /** The server's clock (ms); tests move it. */
  now: { ms: number };
}

/** A cloud server on `db` with every route module, plus `extraRoutes`; `app.ready()` done. */
export async function testCloud(
  db: Db,
  options: { limits?: Partial<CloudLimits>; extraRoutes?: ReadonlyArray<(app: FastifyInstance) => Promise<void>>; onRoute?: (route: RouteOptions) => void } = {},
): Promise<TestCloud> {
  const now = { ms: Date.now() };
  // Registered first and not encapsulated (Fastify's skip-override, what fastify-plugin sets): sees every route after it.
  const watch = Object.assign(async (app: FastifyInstance) => void app.addHook('onRoute', (route) => options.onRoute?.(route)), { [Symbol.for('skip-override')]: true });
  const app = await createCloudServer({
    db,
    logger: createLogger({ level: 'error' }),
    rootToken: ROOT_TOKEN,
    version: 'test',
    routes: [watch, ...CLOUD_ROUTES, ...(options.extraRoutes ?? [])],
    ingestHooks: cloudIngestHooks(() => now.ms),
    clock: () => now.ms,
    ...(options.limits ? { limits: options.limits } : {}),
  });
  await app.ready();
  return { app, db, now };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * Headers (and the exact body text) of a request signed by `key` at `timeMs` (default now); `keyid` other than the
 * key's own makes an impostor's request.
 */
export function signedRequest(key: SigningKey, method: string, pathWithQuery: string, body?: unknown, timeMs = Date.now(), keyid = key.keyid): { headers: Record<string, string>; payload: string | undefined } {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const time = new Date(timeMs).toISOString();
  const signature = key.sign(requestSigningBytes(method, pathWithQuery, time, sha256Hex(payload ?? '')));
  return {
    headers: { [DEVICE_HEADERS.device]: keyid, [DEVICE_HEADERS.time]: time, [DEVICE_HEADERS.signature]: toBase64(signature), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    payload,
  };
}

/** Inject options for a request signed by `key` at `timeMs` (the body sent is exactly the bytes signed). */
export function signed(key: SigningKey, method: 'GET' | 'POST', url: string, body: unknown, timeMs: number, keyid = key.keyid): InjectOptions {
  const { headers, payload } = signedRequest(key, method, url, body, timeMs, keyid);
  return { method, url, headers, ...(payload === undefined ? {} : { payload }) };
}

/** Creates tenant `id` with the root token; its admin token and cloud key. */
export async function createTenant(app: FastifyInstance, id: string): Promise<{ admin: string; cloudKey: { keyid: string; pem: string } }> {
  const res = await app.inject({ method: 'POST', url: '/v1/tenants', headers: bearer(ROOT_TOKEN), payload: { id, name: `Tenant ${id}` } });
  if (res.statusCode !== 200) throw new Error(`tenant ${id}: ${res.statusCode} ${res.body}`);
  const body = res.json<{ admin_token: string; cloud_key: { keyid: string; pem: string } }>();
  return { admin: body.admin_token, cloudKey: body.cloud_key };
}

export async function makeCode(app: FastifyInstance, admin: string, body: Record<string, unknown> = { role: 'redeemer' }): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/enrollment-codes', headers: bearer(admin), payload: body });
  if (res.statusCode !== 200) throw new Error(`code: ${res.statusCode} ${res.body}`);
  return res.json<{ code: string }>().code;
}

/** Challenge + signed enrollment with a new (or the given) key. */
export async function enroll(app: FastifyInstance, code: string, key: SigningKey = generateKeyPair(), name?: string): Promise<{ key: SigningKey; response: EnrollResponse }> {
  const ch = await app.inject({ method: 'POST', url: '/v1/enroll/challenge', payload: { code } });
  if (ch.statusCode !== 200) throw new Error(`challenge: ${ch.statusCode} ${ch.body}`);
  const { challenge } = ch.json<{ challenge: string }>();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/enroll',
    payload: { code, challenge, public_key: key.publicKeyPem, signature: toBase64(key.sign(enrollSigningBytes(code, challenge))), ...(name ? { name } : {}) },
  });
  if (res.statusCode !== 200) throw new Error(`enroll: ${res.statusCode} ${res.body}`);
  return { key, response: res.json<EnrollResponse>() };
}

/** A tenant with an admin token and one enrolled device of `role`. */
export async function tenantWithDevice(app: FastifyInstance, id: string, role = 'redeemer') {
  const tenant = await createTenant(app, id);
  const device = await enroll(app, await makeCode(app, tenant.admin, { role }));
  return { ...tenant, device: device.key, enrolled: device.response };
}

export interface TestDevice {
  key: SigningKey;
  log: DeviceLog;
  /** Receipt envelopes by leaf index. */
  envelopes: DsseEnvelope[];
  ids: string[];
  /**
   * Issues `count` receipts: chains of `chain` receipts (INTENT, then RESULTs), two capsules interleaved, each
   * receipt appended to the device log as the runtime does.
   */
  add(count: number): void;
  /** Appends already-signed receipts (crafted by a test) to the log as they are. */
  addSigned(envelopes: readonly DsseEnvelope[], ids: readonly string[]): void;
  /** The upload of leaves `from … to−1` (default: to the end) with the signed head at `to` and the consistency proof. */
  upload(from: number, to?: number): ReceiptUpload;
  close(): void;
}

/** A device with its own SQLite log in `dir`; `key` shared lets a test build a forked log of the same device. */
export function createTestDevice(dir: string, options: { key?: SigningKey; chain?: number; clock?: () => number } = {}): TestDevice {
  const key = options.key ?? generateKeyPair();
  const chain = options.chain ?? 3;
  const clock = options.clock ?? Date.now;
  const store = openStore({ path: join(dir, `device-${Math.random().toString(36).slice(2)}.db`) });
  const log = createDeviceLog({ store, deviceKey: key, clock });
  const envelopes: DsseEnvelope[] = [];
  const ids: string[] = [];
  const open: Array<{ cid: string; prev: string | null; left: number }> = [];
  let capsules = 0;
  const device: TestDevice = {
    key,
    log,
    envelopes,
    ids,
    add(count) {
      const newIds: string[] = [];
      for (let k = 0; k < count; k++) {
        if (open.length < 2) open.push({ cid: cidOfBytes(new TextEncoder().encode(`capsule ${key.keyid} ${capsules++} ${Math.random()}`)), prev: null, left: chain });
        const c = open[k % open.length]!;
        const kind: ReceiptKind = c.prev === null ? 'INTENT' : 'RESULT';
        const [built] = buildReceipts(c.cid, c.prev, [{ kind, subject: 'tenant:test', body: { n: ids.length + newIds.length } }], clock(), key.keyid);
        envelopes.push(signEnvelope(RECEIPT_PAYLOAD_TYPE, built!.bytes, [key]));
        newIds.push(built!.id);
        c.prev = built!.id;
        if (--c.left === 0) open.splice(open.indexOf(c), 1);
      }
      ids.push(...newIds);
      log.appendNew(newIds);
    },
    addSigned(signed, signedIds) {
      envelopes.push(...signed);
      ids.push(...signedIds);
      log.appendNew(signedIds);
    },
    upload(from, to = ids.length) {
      return { from, receipts: envelopes.slice(from, to), head: log.signedHead(to).envelope, consistency: log.consistency(from, to).proof };
    },
    close: () => store.close(),
  };
  return device;
}

/** Inserts a tenant (with a fresh cloud key) and, for each device key, an enrolled device row. Returns the admin token. */
export async function insertTenant(sql: Sql, tenant: string, devices: readonly SigningKey[] = []): Promise<{ adminToken: string; cloudKey: SigningKey }> {
  const cloudKey = generateKeyPair();
  await sql.query('INSERT INTO tenants (id, name, cloud_keyid, cloud_key_pem, cloud_private_pem) VALUES ($1, $2, $3, $4, $5)', [tenant, tenant, cloudKey.keyid, cloudKey.publicKeyPem, privateKeyPem(cloudKey)]);
  const adminToken = `adm_${tenant}_${Math.random().toString(36).slice(2)}`;
  await sql.query('INSERT INTO admin_tokens (token_sha256, tenant) VALUES ($1, $2)', [sha256Hex(adminToken), tenant]);
  for (const [i, key] of devices.entries()) await insertDevice(sql, tenant, key, `device ${i}`);
  return { adminToken, cloudKey };
}

export async function insertDevice(sql: Sql, tenant: string, key: SigningKey, name: string, role = 'redeemer'): Promise<void> {
  await sql.query('INSERT INTO devices (tenant, device, public_key_pem, role, name, certificate) VALUES ($1, $2, $3, $4, $5, $6::jsonb)', [tenant, key.keyid, key.publicKeyPem, role, name, '{}']);
}
