/**
 * Test pieces for the cloud (issue 16): a server on a given database with a clock the test moves, device-signed
 * requests for `app.inject` (signed exactly as common/cloud.ts says, with no client of main/), and enrollment in
 * one call. Not a device client: the device's own one lives in main/runtime/sync.
 */
import type { FastifyInstance, InjectOptions, RouteOptions } from 'fastify';
import { DEVICE_HEADERS, enrollSigningBytes, requestSigningBytes } from '../../main/common/cloud.js';
import type { EnrollResponse } from '../../main/common/cloud.js';
import { toBase64 } from '../../main/common/dsse.js';
import { createCloudServer, sha256Hex } from '../../main/cloud/app.js';
import type { CloudLimits } from '../../main/cloud/app.js';
import type { Db } from '../../main/cloud/db.js';
import { CLOUD_ROUTES, cloudIngestHooks } from '../../main/cloud/index.js';
import { generateKeyPair } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createLogger } from '../../main/runtime/log/index.js';

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

/** Inject options for a request signed by `key` at `timeMs` (the body sent is exactly the bytes signed). */
export function signed(key: SigningKey, method: 'GET' | 'POST', url: string, body: unknown, timeMs: number, keyid = key.keyid): InjectOptions {
  const raw = body === undefined ? '' : JSON.stringify(body);
  const time = new Date(timeMs).toISOString();
  const sig = key.sign(requestSigningBytes(method, url, time, sha256Hex(raw)));
  return {
    method,
    url,
    headers: { [DEVICE_HEADERS.device]: keyid, [DEVICE_HEADERS.time]: time, [DEVICE_HEADERS.signature]: toBase64(sig), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: raw }),
  };
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
