/**
 * Tenant isolation and request limits of the cloud (issue 16 §7). Every route the server registers (seen through
 * onRoute, so a route added later is covered without editing this file) is called:
 * - without credentials → 401 on every route that is not public;
 * - with tenant B's admin token and with B's signed device, naming tenant A's ids wherever a path, query or body takes
 *   one → never an answer holding any of A's identifiers, and never a change to any of A's rows (every table with a
 *   tenant column compared before and after). A's ids are real rows made through the routes: its kiosk device, a
 *   product, an entitlement (serial) with a lease, a device log uploaded through POST /v1/sync/receipts, and a forked
 *   upload's evidence and alert.
 * Plus the rate limits (429 RATE_LIMITED, the stricter per-address one on enrollment) and the body limit (413).
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudInclusion, Lease } from '../../main/common/cloud.js';
import { fromBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import type { Db } from '../../main/cloud/db.js';
import { openDb } from '../../main/cloud/db.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { ROOT_TOKEN, bearer, createTenant, createTestDevice, makeCode, signed, tenantWithDevice, testCloud } from '../helpers/cloud.js';
import type { TestCloud, TestDevice } from '../helpers/cloud.js';
import { cloudDbs } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const codeOf = (res: { json: () => unknown }) => (res.json() as { error?: { code?: string } }).error?.code;

interface SeenRoute {
  method: string;
  url: string;
  access: unknown;
}

/** Tenant A's identifiers a guessing tenant B would put in a request: all real rows of A, made through the routes. */
interface TenantIds {
  tenant: string;
  device: string;
  cloudKeyid: string;
  product: string;
  serial: string;
  lease: string;
  /** The receipt B names (the last one A uploaded); `receipts` holds every id A uploaded. */
  receipt: string;
  receipts: string[];
}

/** A value for a path parameter, query or body field of that name, from A's ids. */
function guess(name: string, a: TenantIds): unknown {
  if (/product/.test(name)) return a.product;
  if (/device|from|to|source/.test(name)) return a.device;
  if (/serial/.test(name)) return a.serial;
  if (/lease/.test(name)) return a.lease;
  if (/receipt|^id$|cid/.test(name)) return a.receipt;
  if (/tenant/.test(name)) return a.tenant;
  if (/checkpoint|limit|from_seq|size|rights|used|ttl/.test(name)) return 0;
  return a.device;
}

function fillPath(url: string, a: TenantIds): string {
  return url.replace(/:([A-Za-z_]+)/g, (_m, name: string) => encodeURIComponent(String(guess(name, a))));
}

type PropSchema = { type?: unknown; enum?: unknown[]; default?: unknown; minimum?: number; items?: PropSchema; properties?: Record<string, PropSchema>; required?: string[] };
const propsOf = (schema: unknown) => (schema as { properties?: Record<string, PropSchema> } | undefined)?.properties;

/** A value of schema `prop` for a field called `name`, naming A wherever it could hold an id; objects filled in too. */
function valueFor(name: string, prop: PropSchema, a: TenantIds): unknown {
  const type = Array.isArray(prop.type) ? prop.type[0] : prop.type;
  if (prop.enum) return prop.enum[0];
  if (type === 'integer' || type === 'number') return /ttl/.test(name) ? 3600 : 1;
  if (type === 'array') return name === 'receipts' ? [] : [valueFor(name, prop.items ?? {}, a)];
  if (type === 'object') return objectFor(prop, a);
  if (type === 'boolean') return false;
  if (/valid_from/.test(name)) return new Date(Date.now() - 60_000).toISOString();
  if (/valid_until/.test(name)) return new Date(Date.now() + 86_400_000).toISOString();
  return /reason|name|message/.test(name) ? 'guessing' : String(guess(name, a));
}

/** Named in a request, these fields could point at A's rows; other optional fields are left out (they only add ways to fail validation). */
const ID_FIELD = /device|serial|lease|^from$|^to$|id$|cid|product|reason/;

/** The required properties of an object schema, and the optional ones that could hold an id. */
function objectFor(schema: PropSchema, a: TenantIds): Record<string, unknown> {
  const entries = Object.entries(schema.properties ?? {}).filter(([name]) => !schema.required || schema.required.includes(name) || ID_FIELD.test(name));
  return Object.fromEntries(entries.map(([name, prop]) => [name, valueFor(name, prop, a)]));
}

/**
 * A body that passes the route's schema where it can, naming A in every field that could hold an id (a body the
 * schema refuses would prove nothing: the handler would never run). Nested objects too: B issuing an entitlement
 * asks for a lease on A's device.
 */
function bodyFor(route: RouteOptions | SeenRoute, a: TenantIds): Record<string, unknown> {
  const schema = (route as RouteOptions).schema?.body as PropSchema | undefined;
  if (!schema?.properties) return { device: a.device, serial: a.serial, lease: a.lease, id: a.receipt, reason: 'guessing', rights: 1 };
  return objectFor(schema, a);
}

/**
 * The query string a GET takes, from its schema (every parameter it knows, naming A where it takes an id); without
 * a schema, the names a guesser would try.
 */
function queryFor(route: RouteOptions | SeenRoute, a: TenantIds): string {
  const props = propsOf((route as RouteOptions).schema?.querystring);
  const query: Record<string, string> = {};
  if (!props) Object.assign(query, { device: a.device, serial: a.serial, lease: a.lease, tenant: a.tenant, checkpoint: '0' });
  for (const [name, prop] of Object.entries(props ?? {})) {
    const type = Array.isArray(prop.type) ? prop.type[0] : prop.type;
    if (prop.enum) query[name] = String(prop.enum[0]);
    else if (type === 'integer' || type === 'number') query[name] = String(prop.default ?? (/before/.test(name) ? 2 ** 31 - 1 : prop.minimum ?? 0));
    else query[name] = String(guess(name, a));
  }
  return new URLSearchParams(query).toString();
}

/** Routes whose path id may be any id of the caller's own tenant (the route's contract), A's included. */
const OWN_TENANT_ANY_ID = new Set(['/v1/entitlements/:serial/revoke']);

const leaseOf = (envelope: DsseEnvelope) => JSON.parse(new TextDecoder().decode(fromBase64(envelope.payload))) as Lease;

/** Tenant A's rows in every table that has a tenant column (last_seen_at aside: A's own requests set it in the background). */
async function rowsOf(db: Db, tenant: string): Promise<Record<string, string[]>> {
  const tables = await db.query<{ table_name: string }>("SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'tenant' ORDER BY table_name");
  const out: Record<string, string[]> = {};
  for (const { table_name: table } of [{ table_name: 'tenants' }, ...tables]) {
    const rows = await db.query<Record<string, unknown>>(`SELECT * FROM ${table} WHERE ${table === 'tenants' ? 'id' : 'tenant'} = $1`, [tenant]);
    out[table] = rows.map(({ last_seen_at: _seen, ...row }) => JSON.stringify(row, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))).sort();
  }
  return out;
}

describe.each(cloudDbs())('tenant isolation on %s', (_kind, open) => {
  let db: Db;
  let cloud: TestCloud;
  let app: FastifyInstance;
  const routes: Array<RouteOptions & { config?: { cloudAccess?: unknown } }> = [];
  let a: TenantIds;
  let aAdmin: string;
  let aDevice: SigningKey;
  /** A's device log, as uploaded. */
  let aLog: TestDevice;
  /** Strings only A's rows hold, which B never sends: none may appear in any answer to B. */
  let secrets: string[];
  let b: { admin: string; device: SigningKey };

  beforeAll(async () => {
    db = await open();
    cloud = await testCloud(db, { onRoute: (route) => void routes.push(route as (typeof routes)[number]) });
    app = cloud.app;
    const ta = await tenantWithDevice(app, 'tenant-a', 'kiosk');
    aAdmin = ta.admin;
    aDevice = ta.device;
    const unusedCode = await makeCode(app, ta.admin, { role: 'redeemer', venue: 'a-secret-venue' });
    const asA = async (url: string, payload: Record<string, unknown>) => {
      const res = await app.inject({ method: 'POST', url, headers: bearer(ta.admin), payload });
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
      return res.json<Record<string, unknown>>();
    };
    // A's product, an entitlement of it with a lease to A's device, and A's device log uploaded through the sync route.
    const product = `b3:${'a1'.repeat(32)}`;
    await asA('/v1/products', { product_cid: product, protection: 'prevent', deny_max_age_s: 3600 });
    const issued = await asA('/v1/entitlements', {
      product_cid: product, kind: 'multi_use', uses: 5, valid_from: new Date(cloud.now.ms - 60_000).toISOString(), valid_until: new Date(cloud.now.ms + 30 * 86_400_000).toISOString(),
      venues: ['a-secret-venue'], leases: [{ device: aDevice.keyid, rights: 2 }],
    }) as { serial: string; code: string; leases: DsseEnvelope[] };
    const lease = leaseOf(issued.leases[0]!);
    const dir = tempDir('tessera-cloud-isolation-', 'file');
    const log = (aLog = createTestDevice(dir, { key: aDevice, clock: () => cloud.now.ms }));
    log.add(6);
    const uploaded = await app.inject(signed(aDevice, 'POST', '/v1/sync/receipts', log.upload(0), cloud.now.ms));
    if (uploaded.statusCode !== 200) throw new Error(`upload: ${uploaded.statusCode} ${uploaded.body}`);
    const head = uploaded.json<{ root: string }>();
    // A forked log of the same device: refused, with A's evidence and an alert kept.
    const fork = createTestDevice(dir, { key: aDevice, clock: () => cloud.now.ms });
    fork.add(7);
    const forked = await app.inject(signed(aDevice, 'POST', '/v1/sync/receipts', fork.upload(6), cloud.now.ms));
    if (codeOf(forked) !== 'LOG_FORKED') throw new Error(`fork: ${forked.statusCode} ${forked.body}`);
    fork.close();
    a = { tenant: 'tenant-a', device: aDevice.keyid, cloudKeyid: ta.cloudKey.keyid, product, serial: issued.serial, lease: lease.lease, receipt: log.ids.at(-1)!, receipts: [...log.ids, ...fork.ids] };
    secrets = [ta.cloudKey.keyid, 'a-secret-venue', aDevice.publicKeyPem.split('\n')[1]!, unusedCode, issued.code, head.root, ...a.receipts.filter((id) => id !== a.receipt)];
    const tb = await tenantWithDevice(app, 'tenant-b', 'kiosk');
    b = { admin: tb.admin, device: tb.device };
  });
  afterAll(async () => {
    aLog?.close();
    await app?.close();
    await db?.close();
  });

  /** The routes a caller can name: not HEAD (Fastify adds one per GET) and not the public document. */
  const callable = () => routes.filter((r) => r.method !== 'HEAD' && !(Array.isArray(r.method) && r.method.includes('HEAD') && r.method.length === 1));

  it('sees every route of the server, and each declares its access', () => {
    const urls = callable().map((r) => `${String(r.method)} ${r.url}`);
    for (const expected of [
      'POST /v1/tenants', 'POST /v1/enrollment-codes', 'POST /v1/enroll/challenge', 'POST /v1/enroll', 'GET /v1/devices', 'POST /v1/devices/:device/revoke', 'GET /openapi.json',
      'POST /v1/sync/receipts', 'GET /v1/sync/head', 'GET /v1/receipts/:id/inclusion', 'GET /v1/alerts', 'POST /v1/products', 'POST /v1/entitlements', 'POST /v1/entitlements/:serial/revoke',
      'GET /v1/entitlements', 'POST /v1/leases', 'POST /v1/leases/grant', 'POST /v1/leases/return', 'POST /v1/leases/move', 'GET /v1/leases', 'GET /v1/conflicts', 'GET /v1/sync/pull',
    ]) expect(urls).toContain(expected);
    for (const r of callable()) expect(r.config?.cloudAccess, `${String(r.method)} ${r.url}`).toBeDefined();
  });

  it("A's ids are real: A's admin and device reach each of them", async () => {
    const get = (url: string) => app.inject({ method: 'GET', url, headers: bearer(aAdmin) });
    expect((await get(`/v1/entitlements?serial=${a.serial}`)).json<{ entitlements: Array<{ serial: string }> }>().entitlements.map((e) => e.serial)).toEqual([a.serial]);
    expect((await get(`/v1/leases?serial=${a.serial}`)).json<{ leases: Array<{ lease: string }> }>().leases.map((l) => l.lease)).toEqual([a.lease]);
    expect((await get('/v1/alerts')).json<{ alerts: Array<{ code: string }> }>().alerts.map((x) => x.code)).toEqual(['LOG_FORKED']);
    for (const inclusion of [await get(`/v1/receipts/${a.receipt}/inclusion`), await app.inject(signed(aDevice, 'GET', `/v1/receipts/${a.receipt}/inclusion`, undefined, cloud.now.ms))]) {
      expect(inclusion.statusCode).toBe(200);
      expect(inclusion.json<CloudInclusion>()).toMatchObject({ receipt: a.receipt, log: a.device, size: 6 });
    }
  });

  it('answers 401 without credentials on every route that is not public', async () => {
    const closed = callable().filter((r) => r.config?.cloudAccess !== 'public');
    expect(closed.length).toBeGreaterThanOrEqual(15);
    for (const r of closed) {
      const method = String(r.method) as 'GET' | 'POST';
      const res = await app.inject({ method, url: fillPath(r.url, a), ...(method === 'POST' ? { payload: bodyFor(r, a) } : {}) });
      expect([res.statusCode, codeOf(res)], `${method} ${r.url}`).toEqual([401, 'UNAUTHORIZED']);
      // A token nobody issued is no better.
      const forged = await app.inject({ method, url: fillPath(r.url, a), headers: bearer('tta_not-a-real-token-000000000000'), ...(method === 'POST' ? { payload: bodyFor(r, a) } : {}) });
      expect(forged.statusCode, `${method} ${r.url}`).toBe(401);
    }
  });

  it("never shows or changes tenant A's rows to tenant B's admin or device, whatever ids it names", async () => {
    const before = await rowsOf(db, a.tenant);
    const named = [a.tenant, a.device, a.product, a.serial, a.lease, a.receipt];
    // What B stored in its own tenant (a product of the same cid, say) may come back to B later.
    const storedByB = new Set<string>();
    const tried: string[] = [];
    for (const r of callable()) {
      if (r.config?.cloudAccess === 'public' || r.url === '/v1/tenants') continue;
      const method = String(r.method) as 'GET' | 'POST';
      const url = fillPath(r.url, a);
      const withQuery = method === 'GET' ? `${url}${url.includes('?') ? '&' : '?'}${queryFor(r, a)}` : url;
      for (const target of [method === 'GET' ? url : undefined, withQuery].filter((u): u is string => u !== undefined)) {
        const body = method === 'POST' ? bodyFor(r, a) : undefined;
        const asAdmin = await app.inject({ method, url: target, headers: bearer(b.admin), ...(body ? { payload: body } : {}) });
        const asDevice = await app.inject(signed(b.device, method, target, body, cloud.now.ms));
        // What B itself sent may come back (an echo, a "no device X" message); anything else of A's may not.
        const sent = `${decodeURIComponent(target)} ${JSON.stringify(body ?? {})}`;
        for (const [who, res] of [['admin', asAdmin], ['device', asDevice]] as const) {
          tried.push(`${who} ${method} ${target} → ${res.statusCode}`);
          const leaks = [...secrets, ...named.filter((id) => !sent.includes(id) && !storedByB.has(id))];
          for (const leak of leaks) expect(res.body, `${who} ${method} ${target} (${res.statusCode}) shows ${leak}`).not.toContain(leak);
          // Naming one of A's ids in the path of a route that acts on it: not found or forbidden, never done. A route
          // that takes any id for the caller's own tenant (revoking a serial not seen yet puts it on B's own deny
          // list) answers A's id exactly as an id nobody issued: no oracle of what A has.
          if (OWN_TENANT_ANY_ID.has(r.url)) {
            const unknown = target.replace(encodeURIComponent(a.serial), 'f'.repeat(24));
            const control = who === 'admin' ? await app.inject({ method, url: unknown, headers: bearer(b.admin), ...(body ? { payload: body } : {}) }) : await app.inject(signed(b.device, method, unknown, body, cloud.now.ms));
            expect([res.statusCode, codeOf(res)], `${who} ${method} ${target}`).toEqual([control.statusCode, codeOf(control)]);
          } else if (/:\w+/.test(r.url)) expect([400, 401, 403, 404], `${who} ${method} ${target}`).toContain(res.statusCode);
          if (method === 'POST' && res.statusCode === 200) for (const id of named) if (sent.includes(id)) storedByB.add(id);
        }
      }
    }
    expect(tried.length).toBeGreaterThan(30);
    // Not one of A's rows changed, in any table.
    expect(await rowsOf(db, a.tenant)).toEqual(before);
    expect(before['cloud_receipts']).toHaveLength(6);
    expect(before['leases']).toHaveLength(1);
    // A's device is still enrolled and unrevoked, and A's admin still sees only its own.
    expect((await db.query<{ revoked_at: Date | null }>('SELECT revoked_at FROM devices WHERE device = $1', [a.device]))[0]!.revoked_at).toBeNull();
    const aDevices = await db.query<{ tenant: string }>('SELECT tenant FROM devices WHERE device = $1', [a.device]);
    expect(aDevices).toEqual([{ tenant: 'tenant-a' }]);
    // B's own views hold B's rows only.
    const bList = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(b.admin) });
    expect(bList.json<{ devices: Array<{ device: string }> }>().devices.map((d) => d.device)).toEqual([b.device.keyid]);
  });

  it("answers 404 to B's admin and device asking for the inclusion proof of A's receipt, and refuses A's receipts uploaded by B's device", async () => {
    for (const id of [a.receipt, a.receipts[0]!]) {
      const asAdmin = await app.inject({ method: 'GET', url: `/v1/receipts/${id}/inclusion`, headers: bearer(b.admin) });
      const asDevice = await app.inject(signed(b.device, 'GET', `/v1/receipts/${id}/inclusion`, undefined, cloud.now.ms));
      for (const res of [asAdmin, asDevice]) {
        expect([res.statusCode, codeOf(res)]).toEqual([404, 'NOT_FOUND']);
        for (const secret of secrets.filter((x) => x !== id)) expect(res.body).not.toContain(secret);
      }
    }
    // A's own signed receipts and head, sent by B's device as its upload: refused, nothing stored for B.
    const replay = await app.inject(signed(b.device, 'POST', '/v1/sync/receipts', aLog.upload(0), cloud.now.ms));
    expect(replay.statusCode).toBeGreaterThanOrEqual(400);
    expect(['SIGNATURE_INVALID', 'RECEIPT_INVALID', 'LOG_FORKED']).toContain(codeOf(replay));
    expect(await db.query("SELECT id FROM cloud_receipts WHERE tenant = 'tenant-b'")).toEqual([]);
  });

  it('the root token creates tenants and reads no tenant rows', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(ROOT_TOKEN) });
    expect([res.statusCode, codeOf(res)]).toEqual([403, 'FORBIDDEN']);
  });
});

describe('request limits', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openDb({});
  });
  afterAll(async () => {
    await db.close();
  });

  it('answers 429 RATE_LIMITED past the per-caller rate, and past the stricter per-address rate on enrollment', async () => {
    const { app } = await testCloud(db, { limits: { ratePerMinute: 5, enrollPerMinute: 3 } });
    try {
      const { admin } = await createTenant(app, 'limited');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(admin) })).statusCode);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      const limited = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(admin) });
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toMatchObject({ error: { code: 'RATE_LIMITED', retryable: true } });
      expect(limited.json<{ error: { message: string } }>().error.message).toMatch(/at most 5 a minute/);
      // Another caller is not held up by the first.
      const other = await createTenant(app, 'other');
      expect((await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(other.admin) })).statusCode).toBe(200);

      // Guessing enrollment codes from one address: 3 a minute, then 429 — another address is still served.
      const guesses: number[] = [];
      for (let i = 0; i < 4; i++) guesses.push((await app.inject({ method: 'POST', url: '/v1/enroll/challenge', remoteAddress: '10.0.0.1', payload: { code: `enr_guess-${i}` } })).statusCode);
      expect(guesses).toEqual([403, 403, 403, 429]);
      // POST /v1/enroll counts its own attempts the same way.
      const attempts: Array<[number, string | undefined]> = [];
      for (let i = 0; i < 4; i++) {
        const res = await app.inject({ method: 'POST', url: '/v1/enroll', remoteAddress: '10.0.0.1', payload: { code: 'x', challenge: 'y', public_key: 'z', signature: 'w' } });
        attempts.push([res.statusCode, codeOf(res)]);
      }
      expect(attempts).toEqual([[403, 'ENROLLMENT_INVALID'], [403, 'ENROLLMENT_INVALID'], [403, 'ENROLLMENT_INVALID'], [429, 'RATE_LIMITED']]);
      expect((await app.inject({ method: 'POST', url: '/v1/enroll/challenge', remoteAddress: '10.0.0.2', payload: { code: 'enr_guess' } })).statusCode).toBe(403);
    } finally {
      await app.close();
    }
  });

  it('answers 413 PAYLOAD_TOO_LARGE for a body over the limit, before any handler runs', async () => {
    const { app } = await testCloud(db, { limits: { maxBodyBytes: 1024 } });
    try {
      const { admin } = await createTenant(app, 'big');
      const big = await app.inject({ method: 'POST', url: '/v1/enrollment-codes', headers: bearer(admin), payload: { role: 'kiosk', name: 'x'.repeat(2000) } });
      expect([big.statusCode, codeOf(big)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
      const unauthenticated = await app.inject({ method: 'POST', url: '/v1/enroll', payload: { code: 'x'.repeat(5000) } });
      expect([unauthenticated.statusCode, codeOf(unauthenticated)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
      expect((await db.query("SELECT 1 FROM enrollment_codes WHERE tenant = 'big'")).length).toBe(0);
      // Just under the limit is served.
      expect((await app.inject({ method: 'POST', url: '/v1/enrollment-codes', headers: bearer(admin), payload: { role: 'kiosk', name: 'x'.repeat(150) } })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
