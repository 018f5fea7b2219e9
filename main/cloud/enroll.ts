/**
 * Enrollment (issue 16 §2): an operator makes a one-time code for a role; a device proves it holds its key by
 * signing a challenge, and gets a device certificate signed by the tenant's cloud key.
 *
 * 1. `POST /v1/enrollment-codes` (admin) `{role, name?, venue?, ttl_s?}` → `{code, role, expires_at}`. The code is
 *    answered once; only its SHA-256 is kept. Valid `ttl_s` seconds (default 24 h).
 * 2. `POST /v1/enroll/challenge` (public) `{code}` → `{challenge, expires_at}`: a random challenge bound to the code,
 *    valid {@link CHALLENGE_TTL_S} seconds, usable once.
 * 3. `POST /v1/enroll` (public) {@link EnrollRequest} → {@link EnrollResponse}: the signature over
 *    `enrollSigningBytes(code, challenge)` must verify with `public_key`; the code must be unused and unexpired, the
 *    challenge issued for that code and unexpired, and the key enrolled nowhere (any tenant). Then, in one
 *    transaction: the code is marked used, the challenge deleted, the device inserted, its certificate signed. A
 *    kiosk's key is also announced to the tenant's devices as an entitlement `issuer` (kiosks sell; redeemers must
 *    trust what they issue).
 *
 * Every refusal of steps 2 and 3 is 403 ENROLLMENT_INVALID with a message that says which check failed but nothing
 * about other tenants. Each public route has a stricter per-address rate limit (`limits.enrollPerMinute` requests a
 * minute on each), so codes cannot be guessed at speed (they carry 192 random bits anyway).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { DEVICE_CERT_PAYLOAD_TYPE, DEVICE_CERT_VERSION, DEVICE_ROLES, enrollSigningBytes } from '../common/cloud.js';
import type { DeviceCertificate, DeviceRole, EnrollRequest, EnrollResponse } from '../common/cloud.js';
import { fromBase64 } from '../common/dsse.js';
import { TesseraError } from '../common/errors.js';
import { readPublicKey, signEnvelope, verifyEd25519 } from '../runtime/keys/index.js';
import type { PublicKeyInfo } from '../runtime/keys/index.js';
import { newSecret, sha256Hex, tenantOf } from './app.js';
import { appendChanges, tenantKey } from './feed.js';

/** How long a challenge stays valid, seconds. */
export const CHALLENGE_TTL_S = 300;
/** Default and largest lifetime of an enrollment code, seconds. */
export const DEFAULT_CODE_TTL_S = 24 * 3600;
export const MAX_CODE_TTL_S = 30 * 24 * 3600;

const errorRef = { $ref: 'Error#' } as const;
const invalid = (message: string): TesseraError => new TesseraError('ENROLLMENT_INVALID', message);

interface CodeRow {
  tenant: string;
  role: DeviceRole;
  name: string | null;
  venue: string | null;
  expires_at: Date;
  used_by: string | null;
}

const enrollResponseSchema = {
  type: 'object',
  required: ['tenant', 'device', 'role', 'certificate', 'cloud_key'],
  properties: {
    tenant: { type: 'string' },
    device: { type: 'string' },
    role: { type: 'string', enum: [...DEVICE_ROLES] },
    venue: { type: 'string' },
    certificate: { type: 'object', additionalProperties: true },
    cloud_key: { type: 'object', required: ['keyid', 'pem'], properties: { keyid: { type: 'string' }, pem: { type: 'string' } } },
  },
} as const;

export async function enrollRoutes(app: FastifyInstance): Promise<void> {
  const { db, clock, limits, logger } = app.cloud;
  const enrollRateLimit = { max: limits.enrollPerMinute, timeWindow: 60_000, keyGenerator: (request: { ip: string }) => request.ip };

  app.post<{ Body: { role: DeviceRole; name?: string; venue?: string; ttl_s?: number } }>('/v1/enrollment-codes', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: 'Make a one-time enrollment code for a device of this tenant (answered once).',
      description: `The device enrolls with it (tessera cloud enroll) within ttl_s seconds (default ${DEFAULT_CODE_TTL_S}, at most ${MAX_CODE_TTL_S}).`,
      tags: ['enrollment'],
      security: [{ bearer: [] }],
      body: {
        type: 'object',
        required: ['role'],
        additionalProperties: false,
        properties: {
          role: { type: 'string', enum: [...DEVICE_ROLES] },
          name: { type: 'string', minLength: 1, maxLength: 200 },
          venue: { type: 'string', minLength: 1, maxLength: 200 },
          ttl_s: { type: 'integer', minimum: 60, maximum: MAX_CODE_TTL_S },
        },
      },
      response: {
        200: { type: 'object', required: ['code', 'role', 'expires_at'], properties: { code: { type: 'string' }, role: { type: 'string' }, name: { type: 'string' }, venue: { type: 'string' }, expires_at: { type: 'string' } } },
        '4xx': errorRef,
      },
    },
    handler: async (request) => {
      const tenant = tenantOf(request);
      const { role, name, venue } = request.body;
      const code = newSecret('enr');
      const expiresAt = new Date(clock() + (request.body.ttl_s ?? DEFAULT_CODE_TTL_S) * 1000);
      await db.query('INSERT INTO enrollment_codes (code_sha256, tenant, role, name, venue, expires_at) VALUES ($1, $2, $3, $4, $5, $6)', [sha256Hex(code), tenant, role, name ?? null, venue ?? null, expiresAt]);
      return { code, role, ...(name ? { name } : {}), ...(venue ? { venue } : {}), expires_at: expiresAt.toISOString() };
    },
  });

  app.post<{ Body: { code: string } }>('/v1/enroll/challenge', {
    config: { cloudAccess: 'public', rateLimit: enrollRateLimit },
    schema: {
      summary: 'Start enrolling: a challenge for the device to sign with its key, bound to the code.',
      description: `Valid ${CHALLENGE_TTL_S} s, usable once. 403 ENROLLMENT_INVALID for an unknown, used or expired code. Rate limited per address.`,
      tags: ['enrollment'],
      body: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: { type: 'string', minLength: 1, maxLength: 200 } } },
      response: { 200: { type: 'object', required: ['challenge', 'expires_at'], properties: { challenge: { type: 'string' }, expires_at: { type: 'string' } } }, '4xx': errorRef },
    },
    handler: async (request) => {
      const codeSha = sha256Hex(request.body.code);
      const row = (await db.query<CodeRow>('SELECT tenant, role, name, venue, expires_at, used_by FROM enrollment_codes WHERE code_sha256 = $1', [codeSha]))[0];
      checkCode(row, clock());
      const challenge = randomBytes(24).toString('base64url');
      const expiresAt = new Date(clock() + CHALLENGE_TTL_S * 1000);
      // Expired challenges go when new ones come: the table stays the size of the enrollments in flight.
      await db.query('DELETE FROM enrollment_challenges WHERE expires_at < $1', [new Date(clock())]);
      await db.query('INSERT INTO enrollment_challenges (challenge, code_sha256, expires_at) VALUES ($1, $2, $3)', [challenge, codeSha, expiresAt]);
      return { challenge, expires_at: expiresAt.toISOString() };
    },
  });

  app.post<{ Body: EnrollRequest }>('/v1/enroll', {
    config: { cloudAccess: 'public', rateLimit: enrollRateLimit },
    schema: {
      summary: 'Enroll a device: proof of its key over the challenge → its certificate signed by the tenant cloud key.',
      description: 'One-time: the code is used up. 403 ENROLLMENT_INVALID for a bad proof, an unknown/used/expired code or challenge, or a key enrolled already. Rate limited per address.',
      tags: ['enrollment'],
      body: {
        type: 'object',
        required: ['code', 'challenge', 'public_key', 'signature'],
        additionalProperties: false,
        properties: {
          code: { type: 'string', minLength: 1, maxLength: 200 },
          challenge: { type: 'string', minLength: 1, maxLength: 200 },
          public_key: { type: 'string', minLength: 1, maxLength: 4096 },
          signature: { type: 'string', minLength: 1, maxLength: 200 },
          name: { type: 'string', minLength: 1, maxLength: 200 },
        },
      },
      response: { 200: enrollResponseSchema, '4xx': errorRef },
    },
    handler: async (request): Promise<EnrollResponse> => {
      const body = request.body;
      let key: PublicKeyInfo;
      // readPublicKey also takes a file path: only PEM text may reach it from a request.
      if (!body.public_key.startsWith('-----BEGIN ')) throw invalid('public_key must be SPKI PEM text (-----BEGIN PUBLIC KEY-----).');
      try {
        key = readPublicKey(body.public_key);
      } catch (err) {
        throw invalid(`public_key is not an Ed25519 public key in PEM (${(err as Error).message}).`);
      }
      let signature: Uint8Array;
      try {
        signature = fromBase64(body.signature);
      } catch {
        throw invalid('signature is not base64.');
      }
      if (!verifyEd25519(signature, enrollSigningBytes(body.code, body.challenge), key.publicKeyRaw)) {
        throw invalid('The signature over the code and challenge does not verify with public_key: the device must sign with the key it enrolls.');
      }
      const codeSha = sha256Hex(body.code);
      const now = clock();
      const answer = await db.tx(async (sql): Promise<EnrollResponse> => {
        const challenge = (await sql.query<{ expires_at: Date }>('DELETE FROM enrollment_challenges WHERE challenge = $1 AND code_sha256 = $2 RETURNING expires_at', [body.challenge, codeSha]))[0];
        if (!challenge) throw invalid('The challenge is unknown, used, or was issued for another code; ask for a new one (POST /v1/enroll/challenge).');
        if (challenge.expires_at.getTime() <= now) throw invalid(`The challenge expired at ${challenge.expires_at.toISOString()}; ask for a new one.`);
        const code = (await sql.query<CodeRow>('SELECT tenant, role, name, venue, expires_at, used_by FROM enrollment_codes WHERE code_sha256 = $1 FOR UPDATE', [codeSha]))[0];
        checkCode(code, now);
        if ((await sql.query('SELECT 1 FROM devices WHERE device = $1', [key.keyid])).length > 0) {
          throw invalid(`The key ${key.keyid} is enrolled already; a device key belongs to one enrollment. Revoke it and enroll a new key.`);
        }
        const tenant = code!.tenant;
        const name = body.name ?? code!.name ?? `${code!.role}-${key.keyid.slice(3, 11)}`;
        const cloud = await tenantKey(sql, tenant);
        const certificate: DeviceCertificate = {
          v: DEVICE_CERT_VERSION,
          tenant,
          device: key.keyid,
          public_key: key.publicKeyPem,
          role: code!.role,
          name,
          ...(code!.venue ? { venue: code!.venue } : {}),
          issued_at: new Date(now).toISOString(),
          issuer: cloud.keyid,
        };
        const envelope = signEnvelope(DEVICE_CERT_PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(certificate)), [cloud]);
        await sql.query('UPDATE enrollment_codes SET used_by = $2, used_at = $3 WHERE code_sha256 = $1', [codeSha, key.keyid, new Date(now)]);
        await sql.query(
          'INSERT INTO devices (tenant, device, public_key_pem, role, name, venue, certificate, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)',
          [tenant, key.keyid, key.publicKeyPem, code!.role, name, code!.venue, JSON.stringify(envelope), new Date(now)],
        );
        if (code!.role === 'kiosk') await appendChanges(sql, tenant, [{ change: { type: 'issuer', keyid: key.keyid, pem: key.publicKeyPem, name } }]);
        return { tenant, device: key.keyid, role: code!.role, ...(code!.venue ? { venue: code!.venue } : {}), certificate: envelope, cloud_key: { keyid: cloud.keyid, pem: cloud.publicKeyPem } };
      }).catch((err: unknown) => {
        // Two enrollments of one key through two codes at once: the unique index decides, the loser is told why.
        if ((err as { code?: unknown }).code === '23505') throw invalid(`The key ${key.keyid} is enrolled already.`);
        throw err;
      });
      logger.info('cloud device enrolled', { tenant: answer.tenant, device: answer.device, role: answer.role });
      return answer;
    },
  });
}

/** The checks a code must pass to start or finish an enrollment. */
function checkCode(row: CodeRow | undefined, now: number): asserts row is CodeRow {
  if (!row) throw invalid('The enrollment code is not known to this cloud; check it, or ask the operator for a new one.');
  if (row.used_by !== null) throw invalid('The enrollment code was used already; each code enrolls one device. Ask the operator for a new one.');
  if (row.expires_at.getTime() <= now) throw invalid(`The enrollment code expired at ${row.expires_at.toISOString()}; ask the operator for a new one.`);
}
