/**
 * The cloud's schema, one list for PostgreSQL and PGlite (main/cloud/db.ts applies it). Each migration is a list of
 * statements run in one transaction. Never edit a released migration; add one.
 *
 * Every table that holds a tenant's rows has `tenant` as the first column of its primary key or of an index, and
 * every query names the tenant of the authenticated caller: no row is reachable by id alone.
 */
export interface CloudMigration {
  version: number;
  name: string;
  up: readonly string[];
}

export const MIGRATIONS: readonly CloudMigration[] = [
  {
    version: 1,
    name: 'tenants, cloud keys, admin tokens, enrollment codes, devices, change feed, alerts',
    up: [
      `CREATE TABLE tenants (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, cloud_keyid TEXT NOT NULL, cloud_key_pem TEXT NOT NULL, cloud_private_pem TEXT NOT NULL,
        last_seq BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      // Only SHA-256 digests of tokens and codes are kept: a copy of the database does not let anyone in.
      `CREATE TABLE admin_tokens (token_sha256 TEXT PRIMARY KEY, tenant TEXT NOT NULL REFERENCES tenants(id), created_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
      `CREATE TABLE enrollment_codes (
        code_sha256 TEXT PRIMARY KEY, tenant TEXT NOT NULL REFERENCES tenants(id), role TEXT NOT NULL, name TEXT, venue TEXT,
        expires_at TIMESTAMPTZ NOT NULL, used_by TEXT, used_at TIMESTAMPTZ, created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE enrollment_challenges (challenge TEXT PRIMARY KEY, code_sha256 TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)`,
      `CREATE TABLE devices (
        tenant TEXT NOT NULL REFERENCES tenants(id), device TEXT NOT NULL, public_key_pem TEXT NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL,
        venue TEXT, certificate JSONB NOT NULL, enrolled_at TIMESTAMPTZ NOT NULL DEFAULT now(), revoked_at TIMESTAMPTZ, revoked_reason TEXT,
        last_seen_at TIMESTAMPTZ, PRIMARY KEY (tenant, device)
      )`,
      // A device key belongs to one tenant: enrolling it again elsewhere is refused.
      `CREATE UNIQUE INDEX devices_key ON devices (device)`,
      // The tenant's pull feed: seq is taken from tenants.last_seq under that row's lock, so a pull that saw seq n
      // can never later find a committed n-1 (a bigserial would let a slower transaction commit a smaller seq).
      `CREATE TABLE changes (
        tenant TEXT NOT NULL REFERENCES tenants(id), seq BIGINT NOT NULL, device TEXT, type TEXT NOT NULL, body JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (tenant, seq)
      )`,
      `CREATE TABLE alerts (
        id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL REFERENCES tenants(id), device TEXT, code TEXT NOT NULL, message TEXT NOT NULL,
        evidence JSONB, created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX alerts_tenant ON alerts (tenant, id)`,
    ],
  },
];
