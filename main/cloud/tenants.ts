/**
 * Tenants (issue 16 §2): `POST /v1/tenants` (root) creates a tenant with its own Ed25519 cloud key and a first
 * admin token.
 *
 * - The cloud key's private half is kept as PKCS#8 PEM in `tenants.cloud_private_pem` (feed.ts `tenantKey` reads
 *   it); it signs device certificates, leases, co-signatures, double-spend proofs and cloud-issued tokens.
 * - The admin token is answered once and never stored: only its SHA-256 is (`admin_tokens`).
 * - The cloud key goes into the tenant's feed as an `issuer` change (name `cloud`), so that every device of the
 *   tenant trusts the entitlement tokens the cloud issues.
 * - A second tenant with the same id: 409 TENANT_EXISTS, nothing changed.
 */
import type { FastifyInstance } from 'fastify';
import { TesseraError } from '../common/errors.js';
import { generateKeyPair, privateKeyPem } from '../runtime/keys/index.js';
import { newSecret, sha256Hex } from './app.js';
import { appendChanges } from './feed.js';

/** What a tenant id looks like: lower-case letters, digits and dashes, 1–63 characters, starting with a letter or digit. */
export const TENANT_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';

export interface CreatedTenant {
  tenant: string;
  name: string;
  /** Shown once: only its SHA-256 is kept. */
  admin_token: string;
  cloud_key: { keyid: string; pem: string };
}

const errorRef = { $ref: 'Error#' } as const;

export async function tenantRoutes(app: FastifyInstance): Promise<void> {
  const { db } = app.cloud;

  app.post<{ Body: { id: string; name?: string } }>('/v1/tenants', {
    config: { cloudAccess: ['root'] },
    schema: {
      summary: 'Create a tenant: its cloud key and its first admin token (answered once).',
      description: 'Root only (the cloud operator token). The cloud key is announced to the tenant\'s devices as an issuer. 409 TENANT_EXISTS when the id is taken.',
      tags: ['tenants'],
      security: [{ bearer: [] }],
      body: {
        type: 'object',
        required: ['id'],
        additionalProperties: false,
        properties: { id: { type: 'string', pattern: TENANT_ID_PATTERN }, name: { type: 'string', minLength: 1, maxLength: 200 } },
      },
      response: {
        200: {
          type: 'object',
          required: ['tenant', 'name', 'admin_token', 'cloud_key'],
          properties: {
            tenant: { type: 'string' },
            name: { type: 'string' },
            admin_token: { type: 'string' },
            cloud_key: { type: 'object', required: ['keyid', 'pem'], properties: { keyid: { type: 'string' }, pem: { type: 'string' } } },
          },
        },
        '4xx': errorRef,
      },
    },
    handler: async (request): Promise<CreatedTenant> => {
      const { id } = request.body;
      const name = request.body.name ?? id;
      const key = generateKeyPair();
      const adminToken = newSecret('tta');
      await db.tx(async (sql) => {
        const inserted = await sql.query(
          'INSERT INTO tenants (id, name, cloud_keyid, cloud_key_pem, cloud_private_pem) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id',
          [id, name, key.keyid, key.publicKeyPem, privateKeyPem(key)],
        );
        if (inserted.length === 0) throw new TesseraError('TENANT_EXISTS', `A tenant named ${id} already exists; pick another id.`);
        await sql.query('INSERT INTO admin_tokens (token_sha256, tenant) VALUES ($1, $2)', [sha256Hex(adminToken), id]);
        await appendChanges(sql, id, [{ change: { type: 'issuer', keyid: key.keyid, pem: key.publicKeyPem, name: 'cloud' } }]);
      });
      app.cloud.logger.info('cloud tenant created', { tenant: id, cloud_key: key.keyid });
      return { tenant: id, name, admin_token: adminToken, cloud_key: { keyid: key.keyid, pem: key.publicKeyPem } };
    },
  });
}
