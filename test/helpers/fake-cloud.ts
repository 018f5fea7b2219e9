/**
 * TEST-ONLY stand-in for the cloud's sync, lease and enrollment routes (issue 16; written before H1–H3's routes were
 * on the device helper's branch): the routes of main/common/cloud.ts the device tests need, in memory, registered on
 * the REAL cloud server (main/cloud/app.ts createCloudServer on PGlite — its device-signature authentication, error
 * shape and limits). Never part of main/cloud. The end-to-end test against the real routes is
 * test/integration/sync-cloud.test.ts.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { COSIGNATURE_PAYLOAD_TYPE, COSIGNATURE_VERSION, DEVICE_CERT_PAYLOAD_TYPE, DEVICE_CERT_VERSION, LEASE_PAYLOAD_TYPE, LEASE_VERSION, enrollSigningBytes } from '../../main/common/cloud.js';
import type { Cosignature, DeviceCertificate, Lease, ReceiptUpload, SyncChange } from '../../main/common/cloud.js';
import { canonicalBytes } from '../../main/common/canonical.js';
import { fromBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { TesseraError } from '../../main/common/errors.js';
import { hashFromHex, verifyConsistency } from '../../main/common/merkle.js';
import type { TreeHead } from '../../main/common/merkle.js';
import { createCloudServer, newSecret } from '../../main/cloud/app.js';
import type { Db } from '../../main/cloud/db.js';
import { generateKeyPair, privateKeyPem, readPublicKey, signEnvelope, verifyEd25519 } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';

export const PRODUCT = `b3:${'ab'.repeat(32)}`;
const HOUR = 3600_000;


/** What the test-only routes keep in memory (the real cloud keeps it in H2's and H3's tables). */
export interface FakeCloudState {
  tenant: string;
  key: SigningKey;
  code: string;
  accepted: Map<string, { size: number; root: string | null; leaves: string[]; cosignature: DsseEnvelope | null }>;
  feed: SyncChange[];
  /** serial → rights the cloud may still grant online. */
  grantable: Map<string, number>;
  returns: Array<{ lease: string; used: number; log_size: number }>;
  uploads: number;
  gaps: number;
  /** The head route answers this much less than the cloud holds, once (as after an upload whose answer was lost). */
  staleHeadBy: number;
  /** Every request is cut off (the link is down). */
  down: boolean;
  clock: { now: number };
}

export function signLease(s: FakeCloudState, device: string, serial: string, rights: number, ttlMs: number, product = PRODUCT): DsseEnvelope {
  const lease: Lease = {
    v: LEASE_VERSION, lease: `ls_${randomBytes(6).toString('hex')}`, tenant: s.tenant, device, serial, product_cid: product, rights,
    nbf: new Date(s.clock.now - 1000).toISOString(), exp: new Date(s.clock.now + ttlMs).toISOString(), issued_at: new Date(s.clock.now).toISOString(), issuer: s.key.keyid,
  };
  return signEnvelope(LEASE_PAYLOAD_TYPE, canonicalBytes(lease), [s.key]);
}

/** TEST-ONLY: the routes of common/cloud.ts these tests need, on the real createCloudServer (its auth, its errors). */
export function testCloudRoutes(s: FakeCloudState) {
  return async (app: FastifyInstance) => {
    app.addHook('onRequest', async (req) => {
      if (s.down) req.raw.socket.destroy();
    });
    app.post<{ Body: { code: string } }>('/v1/enroll/challenge', { config: { cloudAccess: 'public' } }, async (req) => {
      if (req.body.code !== s.code) throw new TesseraError('ENROLLMENT_INVALID', 'Unknown code.');
      return { challenge: 'ch_test', expires_at: new Date(s.clock.now + 300_000).toISOString() };
    });
    app.post<{ Body: { code: string; challenge: string; public_key: string; signature: string; name?: string } }>('/v1/enroll', { config: { cloudAccess: 'public' } }, async (req) => {
      const key = readPublicKey(req.body.public_key);
      if (req.body.code !== s.code || !verifyEd25519(fromBase64(req.body.signature), enrollSigningBytes(req.body.code, req.body.challenge), key.publicKeyRaw)) {
        throw new TesseraError('ENROLLMENT_INVALID', 'Bad code or signature.');
      }
      const cert: DeviceCertificate = { v: DEVICE_CERT_VERSION, tenant: s.tenant, device: key.keyid, public_key: key.publicKeyPem, role: 'redeemer', name: req.body.name ?? 'gate', issued_at: new Date(s.clock.now).toISOString(), issuer: s.key.keyid };
      const certificate = signEnvelope(DEVICE_CERT_PAYLOAD_TYPE, canonicalBytes(cert), [s.key]);
      await app.cloud.db.query('INSERT INTO devices (tenant, device, public_key_pem, role, name, certificate) VALUES ($1, $2, $3, $4, $5, $6::jsonb)', [s.tenant, key.keyid, key.publicKeyPem, 'redeemer', cert.name, JSON.stringify(certificate)]);
      return { tenant: s.tenant, device: key.keyid, role: 'redeemer', certificate, cloud_key: { keyid: s.key.keyid, pem: s.key.publicKeyPem } };
    });
    const logOf = (device: string) => {
      if (!s.accepted.has(device)) s.accepted.set(device, { size: 0, root: null, leaves: [], cosignature: null });
      return s.accepted.get(device)!;
    };
    app.get('/v1/sync/head', { config: { cloudAccess: ['device'] } }, async (req) => {
      const l = logOf((req.caller as { device: string }).device);
      const size = l.size - s.staleHeadBy;
      s.staleHeadBy = 0;
      return { size, root: l.root, cosignature: l.cosignature };
    });
    app.post<{ Body: ReceiptUpload }>('/v1/sync/receipts', { config: { cloudAccess: ['device'] } }, async (req) => {
      const device = (req.caller as { device: string }).device;
      const l = logOf(device);
      if (req.body.from !== l.size && ++s.gaps) throw new TesseraError('LOG_GAP', `Accepted ${l.size}.`, { details: { accepted_size: l.size } });
      const head = JSON.parse(Buffer.from(req.body.head.payload, 'base64').toString('utf8')) as TreeHead;
      if (head.size !== l.size + req.body.receipts.length || head.log !== device) throw new TesseraError('LOG_FORKED', 'Head size or log wrong.');
      if (l.root !== null && !verifyConsistency(l.size, head.size, req.body.consistency.map((h) => hashFromHex(h)!), hashFromHex(l.root)!, hashFromHex(head.root)!)) {
        throw new TesseraError('LOG_FORKED', 'Consistency proof does not verify.');
      }
      s.uploads++;
      l.size = head.size;
      l.root = head.root;
      const cosig: Cosignature = { v: COSIGNATURE_VERSION, log: device, size: head.size, root: head.root, tenant: s.tenant, witness: s.key.keyid, witnessed_at: new Date(s.clock.now).toISOString() };
      l.cosignature = signEnvelope(COSIGNATURE_PAYLOAD_TYPE, canonicalBytes(cosig), [s.key]);
      return { size: l.size, root: l.root, cosignature: l.cosignature };
    });
    app.get<{ Querystring: { checkpoint?: string; limit?: string } }>('/v1/sync/pull', { config: { cloudAccess: ['device'] } }, async (req) => {
      const from = Number(req.query.checkpoint ?? 0);
      const limit = Number(req.query.limit ?? 100);
      const rest = s.feed.filter((c) => c.seq > from);
      const page = rest.slice(0, limit);
      return { changes: page, checkpoint: page.at(-1)?.seq ?? from, more: rest.length > page.length, server_time: new Date(s.clock.now).toISOString() };
    });
    app.post<{ Body: { serial: string; rights: number } }>('/v1/leases/grant', { config: { cloudAccess: ['device'] } }, async (req) => {
      const left = s.grantable.get(req.body.serial) ?? 0;
      if (left < req.body.rights) throw new TesseraError('LEASE_UNAVAILABLE', 'No rights left to lease.');
      s.grantable.set(req.body.serial, left - req.body.rights);
      return { lease: signLease(s, (req.caller as { device: string }).device, req.body.serial, req.body.rights, HOUR) };
    });
    app.post<{ Body: { lease: string; used: number; log_size: number } }>('/v1/leases/return', { config: { cloudAccess: ['device'] } }, async (req) => {
      s.returns.push(req.body);
      return { returned: 0 };
    });
  };
}

export interface FakeCloud {
  s: FakeCloudState;
  app: FastifyInstance;
  url: string;
  /** Appends changes to the pull feed (seq given here). */
  push(...changes: Array<SyncChange extends infer C ? (C extends { seq: number } ? Omit<C, 'seq'> : never) : never>): void;
  close(): Promise<void>;
}

/** A cloud with one tenant (random id) in `db`, listening on 127.0.0.1. */
export async function startFakeCloud(db: Db, clock: { now: number } = { now: Date.now() }): Promise<FakeCloud> {
  const tenantKey = generateKeyPair();
  const tenant = `acme-${randomBytes(4).toString('hex')}`;
  const s: FakeCloudState = { tenant, key: tenantKey, code: newSecret('enr'), accepted: new Map(), feed: [], grantable: new Map(), returns: [], uploads: 0, gaps: 0, staleHeadBy: 0, down: false, clock };
  await db.query('INSERT INTO tenants (id, name, cloud_keyid, cloud_key_pem, cloud_private_pem) VALUES ($1, $2, $3, $4, $5)', [tenant, 'Acme', tenantKey.keyid, tenantKey.publicKeyPem, privateKeyPem(tenantKey)]);
  const app = await createCloudServer({ db, logger: createMemoryLogger(), rootToken: newSecret('root'), version: 'test', routes: [testCloudRoutes(s)], clock: () => clock.now });
  await app.listen({ port: 0, host: '127.0.0.1' });
  let seq = 0;
  return {
    s,
    app,
    url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`,
    push: (...changes) => {
      for (const c of changes) s.feed.push({ ...c, seq: ++seq } as SyncChange);
    },
    close: () => app.close(),
  };
}
