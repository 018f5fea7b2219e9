/**
 * Tenants, enrollment and devices of the cloud (issue 16 §2), on PGlite and on a real PostgreSQL server: a tenant
 * and its cloud key, one-time codes, the challenge signed by the device key, the certificate signed by the cloud
 * key, device-signed requests, revocation — and every way in that must be refused, with its code.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEVICE_CERT_PAYLOAD_TYPE, enrollSigningBytes } from '../../main/common/cloud.js';
import type { DeviceCertificate, DeviceSummary } from '../../main/common/cloud.js';
import { toBase64 } from '../../main/common/dsse.js';
import { tenantOf } from '../../main/cloud/app.js';
import type { Db } from '../../main/cloud/db.js';
import { generateKeyPair, readPublicKey, verifyEnvelope } from '../../main/runtime/keys/index.js';
import { ROOT_TOKEN, bearer, createTenant, enroll, makeCode, signed, testCloud } from '../helpers/cloud.js';
import type { TestCloud } from '../helpers/cloud.js';
import { cloudDbs } from '../helpers/postgres.js';

/** A device-only route, standing in for the sync routes: answers who the cloud says the caller is. */
async function whoamiRoutes(app: FastifyInstance): Promise<void> {
  app.post('/test/whoami', { config: { cloudAccess: ['device'] } }, async (request) => ({ caller: request.caller, tenant: tenantOf(request) }));
  app.get('/test/whoami', { config: { cloudAccess: ['device'] } }, async (request) => ({ caller: request.caller }));
}

const codeOf = (res: { json: () => unknown }) => (res.json() as { error?: { code?: string } }).error?.code;

let tenantCount = 0;

describe.each(cloudDbs())('cloud enrollment on %s', (_kind, open) => {
  // One database and server per block (starting PGlite or making a database takes seconds); each test works in a
  // tenant of its own, so tests see only their own rows.
  let db: Db;
  let cloud: TestCloud;
  let app: FastifyInstance;
  /** This test's tenant id. */
  let acme: string;
  beforeAll(async () => {
    db = await open();
    // Enrollment is rate limited per address, and every test here enrolls from the same one (the limits: isolation test).
    cloud = await testCloud(db, { extraRoutes: [whoamiRoutes], limits: { enrollPerMinute: 100_000, ratePerMinute: 100_000 } });
    app = cloud.app;
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });
  beforeEach(() => {
    acme = `acme-${++tenantCount}`;
  });

  const feed = async (tenant: string) => db.query<{ seq: number; type: string; body: Record<string, unknown> }>('SELECT seq, type, body FROM changes WHERE tenant = $1 ORDER BY seq', [tenant]);

  it('creates a tenant, enrolls a device whose certificate verifies with the cloud key, and accepts its signed requests', async () => {
    const { admin, cloudKey } = await createTenant(app, acme);
    // The same id again: refused, nothing changed.
    const again = await app.inject({ method: 'POST', url: '/v1/tenants', headers: bearer(ROOT_TOKEN), payload: { id: acme } });
    expect(again.statusCode).toBe(409);
    expect(codeOf(again)).toBe('TENANT_EXISTS');
    // Only the digest of the admin token is stored.
    const stored = await db.query<{ token_sha256: string }>('SELECT token_sha256 FROM admin_tokens WHERE tenant = $1', [acme]);
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(admin);
    // The admin token cannot create tenants; the root token cannot make codes.
    expect((await app.inject({ method: 'POST', url: '/v1/tenants', headers: bearer(admin), payload: { id: 'other' } })).statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: '/v1/enrollment-codes', headers: bearer(ROOT_TOKEN), payload: { role: 'kiosk' } })).statusCode).toBe(403);

    const code = await makeCode(app, admin, { role: 'kiosk', venue: 'museum', name: 'Front desk' });
    const { key, response } = await enroll(app, code);
    expect(response).toMatchObject({ tenant: acme, device: key.keyid, role: 'kiosk', venue: 'museum', cloud_key: { keyid: cloudKey.keyid } });
    const cloudPublic = readPublicKey(cloudKey.pem);
    const verified = verifyEnvelope(response.certificate, (keyid) => (keyid === cloudPublic.keyid ? cloudPublic : undefined));
    expect(verified.payloadType).toBe(DEVICE_CERT_PAYLOAD_TYPE);
    const cert = JSON.parse(new TextDecoder().decode(verified.payload)) as DeviceCertificate;
    expect(cert).toMatchObject({ tenant: acme, device: key.keyid, public_key: key.publicKeyPem, role: 'kiosk', name: 'Front desk', venue: 'museum', issuer: cloudKey.keyid });
    // A certificate whose payload is changed does not verify.
    const forged = { ...response.certificate, payload: toBase64(new TextEncoder().encode(JSON.stringify({ ...cert, role: 'gateway' }))) };
    expect(() => verifyEnvelope(forged, () => cloudPublic)).toThrow();

    const who = await app.inject(signed(key, 'POST', '/test/whoami', { hello: 1 }, cloud.now.ms));
    expect(who.statusCode).toBe(200);
    expect(who.json()).toMatchObject({ caller: { kind: 'device', tenant: acme, device: key.keyid, role: 'kiosk', venue: 'museum', name: 'Front desk' }, tenant: acme });
    expect((await app.inject(signed(key, 'GET', '/test/whoami', undefined, cloud.now.ms))).statusCode).toBe(200);

    // The feed announces the cloud key and the kiosk's key as issuers.
    const changes = await feed(acme);
    expect(changes.map((c) => [c.seq, c.type, c.body['name']])).toEqual([
      [1, 'issuer', 'cloud'],
      [2, 'issuer', 'Front desk'],
    ]);
    expect(changes[1]!.body).toMatchObject({ keyid: key.keyid, pem: key.publicKeyPem });

    const list = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(admin) });
    expect(list.statusCode).toBe(200);
    const devices = list.json<{ devices: DeviceSummary[] }>().devices;
    expect(devices).toHaveLength(1);
    expect(devices[0]).toMatchObject({ device: key.keyid, name: 'Front desk', role: 'kiosk', venue: 'museum', revoked_at: null, log: null, lag_s: null });
    await expect.poll(async () => (await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(admin) })).json<{ devices: DeviceSummary[] }>().devices[0]!.last_seen_at).not.toBeNull();
  });

  it('a redeemer is no issuer; its name defaults to what the device says, then to role and key', async () => {
    const { admin } = await createTenant(app, acme);
    const named = await enroll(app, await makeCode(app, admin, { role: 'redeemer' }), generateKeyPair(), 'Gate 3');
    expect(JSON.parse(new TextDecoder().decode(Buffer.from(named.response.certificate.payload, 'base64'))).name).toBe('Gate 3');
    const unnamed = await enroll(app, await makeCode(app, admin, { role: 'gateway' }));
    expect(JSON.parse(new TextDecoder().decode(Buffer.from(unnamed.response.certificate.payload, 'base64'))).name).toBe(`gateway-${unnamed.key.keyid.slice(3, 11)}`);
    expect((await feed(acme)).map((c) => c.body['name'])).toEqual(['cloud']);
  });

  it('refuses a bad proof, a wrong or reused or expired code, a stale or foreign challenge, and a key enrolled already', async () => {
    const { admin } = await createTenant(app, acme);
    const code = await makeCode(app, admin);
    const challengeFor = async (c: string) => (await app.inject({ method: 'POST', url: '/v1/enroll/challenge', payload: { code: c } })).json<{ challenge: string }>().challenge;
    const attempt = (body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/enroll', payload: body });
    const device = generateKeyPair();
    const proof = (c: string, challenge: string, signer = device) => ({ code: c, challenge, public_key: device.publicKeyPem, signature: toBase64(signer.sign(enrollSigningBytes(c, challenge))) });

    // Unknown code: no challenge.
    const unknown = await app.inject({ method: 'POST', url: '/v1/enroll/challenge', payload: { code: 'enr_not-a-code' } });
    expect(unknown.statusCode).toBe(403);
    expect(codeOf(unknown)).toBe('ENROLLMENT_INVALID');

    // Signed by another key than the one enrolled: refused, and the code is not used up.
    let challenge = await challengeFor(code);
    const badSig = await attempt(proof(code, challenge, generateKeyPair()));
    expect([badSig.statusCode, codeOf(badSig)]).toEqual([403, 'ENROLLMENT_INVALID']);
    // Garbage instead of a key or a signature; a file path instead of PEM is never read.
    for (const broken of [{ ...proof(code, challenge), public_key: '/etc/passwd' }, { ...proof(code, challenge), public_key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' }, { ...proof(code, challenge), signature: '%%%' }]) {
      const res = await attempt(broken);
      expect([res.statusCode, codeOf(res)]).toEqual([403, 'ENROLLMENT_INVALID']);
      expect(res.body).not.toContain('root:');
    }
    // A challenge issued for another code does not enroll with this one.
    const otherCode = await makeCode(app, admin);
    const foreign = await attempt(proof(code, await challengeFor(otherCode)));
    expect([foreign.statusCode, codeOf(foreign)]).toEqual([403, 'ENROLLMENT_INVALID']);
    // A challenge past its 5 minutes.
    challenge = await challengeFor(code);
    cloud.now.ms += 301_000;
    const stale = await attempt(proof(code, challenge));
    expect([stale.statusCode, codeOf(stale)]).toEqual([403, 'ENROLLMENT_INVALID']);
    expect(stale.json<{ error: { message: string } }>().error.message).toMatch(/challenge expired/);

    // The right proof enrolls once; the same code again is refused, as is the same challenge.
    challenge = await challengeFor(code);
    expect((await attempt(proof(code, challenge))).statusCode).toBe(200);
    const replay = await attempt(proof(code, challenge));
    expect([replay.statusCode, codeOf(replay)]).toEqual([403, 'ENROLLMENT_INVALID']);
    const reused = await app.inject({ method: 'POST', url: '/v1/enroll/challenge', payload: { code } });
    expect([reused.statusCode, codeOf(reused)]).toEqual([403, 'ENROLLMENT_INVALID']);
    expect(reused.json<{ error: { message: string } }>().error.message).toMatch(/used already/);

    // The enrolled key with a fresh code, even of another tenant: refused.
    const other = await createTenant(app, `${acme}-other`);
    const otherTenantCode = await makeCode(app, other.admin);
    const twice = await attempt(proof(otherTenantCode, await challengeFor(otherTenantCode)));
    expect([twice.statusCode, codeOf(twice)]).toEqual([403, 'ENROLLMENT_INVALID']);
    expect(twice.json<{ error: { message: string } }>().error.message).toMatch(/enrolled already/);

    // An expired code: no challenge, and a challenge taken before it expired does not finish.
    const shortCode = await makeCode(app, admin, { role: 'redeemer', ttl_s: 60 });
    const early = await challengeFor(shortCode);
    cloud.now.ms += 61_000;
    const late = generateKeyPair();
    const expired = await attempt({ code: shortCode, challenge: early, public_key: late.publicKeyPem, signature: toBase64(late.sign(enrollSigningBytes(shortCode, early))) });
    expect([expired.statusCode, codeOf(expired)]).toEqual([403, 'ENROLLMENT_INVALID']);
    expect(expired.json<{ error: { message: string } }>().error.message).toMatch(/code expired/);
    expect(codeOf(await app.inject({ method: 'POST', url: '/v1/enroll/challenge', payload: { code: shortCode } }))).toBe('ENROLLMENT_INVALID');

    // Codes must name a known role and a sane lifetime.
    for (const body of [{ role: 'cashier' }, { role: 'kiosk', ttl_s: 1 }, { role: 'kiosk', extra: true }]) {
      const res = await app.inject({ method: 'POST', url: '/v1/enrollment-codes', headers: bearer(admin), payload: body });
      expect([res.statusCode, codeOf(res)]).toEqual([400, 'VALIDATION_FAILED']);
    }
    expect((await db.query('SELECT device FROM devices WHERE tenant IN ($1, $2)', [acme, `${acme}-other`])).length).toBe(1);
  });

  it('refuses signed requests from unknown devices, with a skewed clock, a bad signature, or after revocation', async () => {
    const { admin } = await createTenant(app, acme);
    const { key } = await enroll(app, await makeCode(app, admin));
    const now = cloud.now.ms;

    const stranger = generateKeyPair();
    const unknown = await app.inject(signed(stranger, 'POST', '/test/whoami', {}, now));
    expect([unknown.statusCode, codeOf(unknown)]).toEqual([401, 'DEVICE_UNKNOWN']);

    for (const skew of [301_000, -301_000]) {
      const res = await app.inject(signed(key, 'POST', '/test/whoami', {}, now + skew));
      expect([res.statusCode, codeOf(res)]).toEqual([401, 'CLOCK_SKEW']);
    }
    expect((await app.inject(signed(key, 'POST', '/test/whoami', {}, now + 299_000))).statusCode).toBe(200);

    // Signed by a stranger's key under the enrolled keyid; and a body changed after signing.
    const impostor = await app.inject(signed(stranger, 'POST', '/test/whoami', {}, now, key.keyid));
    expect([impostor.statusCode, codeOf(impostor)]).toEqual([401, 'UNAUTHORIZED']);
    const tampered = signed(key, 'POST', '/test/whoami', { amount: 1 }, now);
    const changed = await app.inject({ ...tampered, payload: JSON.stringify({ amount: 9 }) });
    expect([changed.statusCode, codeOf(changed)]).toEqual([401, 'UNAUTHORIZED']);
    // A device may not use admin routes, even with its valid signature.
    const asAdmin = await app.inject(signed(key, 'GET', '/v1/devices', undefined, now));
    expect([asAdmin.statusCode, codeOf(asAdmin)]).toEqual([403, 'FORBIDDEN']);

    const revoke = await app.inject({ method: 'POST', url: `/v1/devices/${key.keyid}/revoke`, headers: bearer(admin), payload: { reason: 'stolen' } });
    expect(revoke.statusCode).toBe(200);
    const revokedAt = revoke.json<{ revoked_at: string }>().revoked_at;
    const refused = await app.inject(signed(key, 'POST', '/test/whoami', {}, now));
    expect([refused.statusCode, codeOf(refused)]).toEqual([403, 'DEVICE_REVOKED']);
    // Revoking again answers the first revocation and adds no change.
    const again = await app.inject({ method: 'POST', url: `/v1/devices/${key.keyid}/revoke`, headers: bearer(admin), payload: { reason: 'twice' } });
    expect(again.json()).toEqual({ device: key.keyid, revoked_at: revokedAt, reason: 'stolen' });
    const changes = await feed(acme);
    expect(changes.filter((c) => c.type === 'device_revoked').map((c) => c.body)).toEqual([{ type: 'device_revoked', device: key.keyid, reason: 'stolen', at: revokedAt }]);
    const listed = (await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(admin) })).json<{ devices: DeviceSummary[] }>().devices;
    expect(listed[0]).toMatchObject({ revoked_at: revokedAt, revoked_reason: 'stolen' });
    const missing = await app.inject({ method: 'POST', url: `/v1/devices/${stranger.keyid}/revoke`, headers: bearer(admin), payload: { reason: 'x' } });
    expect([missing.statusCode, codeOf(missing)]).toEqual([404, 'NOT_FOUND']);
  });

  it('enrolls one device per code when two race for it, and creates one tenant when two race for its id', async () => {
    const { admin } = await createTenant(app, acme);
    const code = await makeCode(app, admin);
    const challenges = await Promise.all([0, 1].map(async () => (await app.inject({ method: 'POST', url: '/v1/enroll/challenge', payload: { code } })).json<{ challenge: string }>().challenge));
    const keys = [generateKeyPair(), generateKeyPair()];
    const results = await Promise.all(
      keys.map((key, i) => app.inject({ method: 'POST', url: '/v1/enroll', payload: { code, challenge: challenges[i], public_key: key.publicKeyPem, signature: toBase64(key.sign(enrollSigningBytes(code, challenges[i]!))) } })),
    );
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 403]);
    expect((await db.query('SELECT device FROM devices WHERE tenant = $1', [acme])).length).toBe(1);
    const race = `${acme}-race`;
    const tenants = await Promise.all([0, 1, 2].map(() => app.inject({ method: 'POST', url: '/v1/tenants', headers: bearer(ROOT_TOKEN), payload: { id: race } })));
    expect(tenants.map((r) => r.statusCode).sort()).toEqual([200, 409, 409]);
    expect((await db.query('SELECT 1 FROM admin_tokens WHERE tenant = $1', [race])).length).toBe(1);
  });

  it("lists each device with the last head the receipt ingest accepted (device_logs) and its lag", async () => {
    const { admin } = await createTenant(app, acme);
    const { key } = await enroll(app, await makeCode(app, admin));
    const other = await enroll(app, await makeCode(app, admin));
    // The row the receipt ingest (main/cloud/receipts.ts) keeps per device, written here as it writes it.
    const acceptedAt = new Date(cloud.now.ms - 90_000);
    await db.query("INSERT INTO device_logs (tenant, device, size, root, head, cosignature, accepted_at) VALUES ($4, $1, 42, $2, '{}'::jsonb, '{}'::jsonb, $3)", [key.keyid, 'ab'.repeat(32), acceptedAt, acme]);
    const devices = (await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(admin) })).json<{ devices: DeviceSummary[] }>().devices;
    expect(devices.find((d) => d.device === key.keyid)).toMatchObject({ log: { size: 42, root: 'ab'.repeat(32), accepted_at: acceptedAt.toISOString() }, lag_s: 90 });
    expect(devices.find((d) => d.device === other.key.keyid)).toMatchObject({ log: null, lag_s: null });
  });
});
