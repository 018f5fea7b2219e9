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
  // Receipts from devices (main/cloud/receipts.ts): the accepted copy of every device log (H2, issue 16 §3).
  {
    version: 2,
    name: 'device logs, uploaded receipts, capsule chain heads, log subtrees, fork evidence',
    up: [
      // The accepted copy of each device's log: its size and root, the device's signed head and the cloud's co-signature.
      `CREATE TABLE device_logs (
        tenant TEXT NOT NULL, device TEXT NOT NULL, size BIGINT NOT NULL DEFAULT 0, root TEXT, head JSONB, cosignature JSONB,
        accepted_at TIMESTAMPTZ, PRIMARY KEY (tenant, device), FOREIGN KEY (tenant, device) REFERENCES devices (tenant, device)
      )`,
      // Leaf `idx` of the device's log; a receipt id is stored once per tenant (idempotent by cid).
      `CREATE TABLE cloud_receipts (
        tenant TEXT NOT NULL, device TEXT NOT NULL, idx BIGINT NOT NULL, id TEXT NOT NULL, envelope JSONB NOT NULL, kind TEXT NOT NULL,
        capsule TEXT NOT NULL, issued_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (tenant, device, idx)
      )`,
      `CREATE UNIQUE INDEX cloud_receipts_id ON cloud_receipts (tenant, id)`,
      // The last receipt of each capsule's chain from a device: the `prev` the next receipt of that capsule must name.
      `CREATE TABLE cloud_capsules (
        tenant TEXT NOT NULL, device TEXT NOT NULL, capsule TEXT NOT NULL, head TEXT NOT NULL, head_issued_at TEXT NOT NULL, length INTEGER NOT NULL,
        PRIMARY KEY (tenant, device, capsule)
      )`,
      // Perfect subtrees of level ≥ 1 (2^level leaves from idx · 2^level), written once when complete.
      `CREATE TABLE cloud_log_nodes (
        tenant TEXT NOT NULL, device TEXT NOT NULL, level SMALLINT NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL,
        PRIMARY KEY (tenant, device, level, idx)
      )`,
      `CREATE TABLE fork_evidence (
        id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, device TEXT NOT NULL, reason TEXT NOT NULL,
        accepted_size BIGINT NOT NULL, accepted_root TEXT, accepted_head JSONB, refused_head JSONB NOT NULL, computed_root TEXT,
        consistency JSONB NOT NULL, upload_from BIGINT NOT NULL, receipt_ids JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX fork_evidence_tenant ON fork_evidence (tenant, device, id)`,
    ],
  },
  {
    version: 3,
    name: 'products (protection), cloud entitlements, leases, redemptions seen at ingest, double-spend conflicts',
    up: [
      `CREATE TABLE products (
        tenant TEXT NOT NULL REFERENCES tenants(id), product_cid TEXT NOT NULL, protection TEXT NOT NULL CHECK (protection IN ('prevent', 'bound', 'detect')),
        bound INTEGER, deny_max_age_s INTEGER NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (tenant, product_cid)
      )`,
      // Issued in the cloud (source 'cloud') or learned from a kiosk's ISSUANCE receipt (source = its keyid). The row is
      // the lock every change of the serial's rights takes (SELECT … FOR UPDATE): leases, returns, ingest.
      `CREATE TABLE cloud_entitlements (
        tenant TEXT NOT NULL REFERENCES tenants(id), serial TEXT NOT NULL, product_cid TEXT NOT NULL, kind TEXT NOT NULL, rights BIGINT,
        currency TEXT, valid_from TIMESTAMPTZ NOT NULL, valid_until TIMESTAMPTZ NOT NULL, venues JSONB NOT NULL, code TEXT,
        source TEXT NOT NULL, issued_at TIMESTAMPTZ NOT NULL DEFAULT now(), revoked_at TIMESTAMPTZ, reason TEXT, PRIMARY KEY (tenant, serial)
      )`,
      // A token a device redeemed that the cloud did not issue or learn of (its INTENT receipt names what it says).
      `CREATE TABLE seen_tokens (
        tenant TEXT NOT NULL REFERENCES tenants(id), serial TEXT NOT NULL, product_cid TEXT NOT NULL, kind TEXT NOT NULL, rights BIGINT,
        currency TEXT, PRIMARY KEY (tenant, serial)
      )`,
      // state: active | recalled hold all their rights; returned | expired hold what was used under them.
      `CREATE TABLE leases (
        tenant TEXT NOT NULL REFERENCES tenants(id), lease TEXT NOT NULL, serial TEXT NOT NULL, device TEXT NOT NULL, rights BIGINT NOT NULL,
        nbf TIMESTAMPTZ NOT NULL, exp TIMESTAMPTZ NOT NULL, state TEXT NOT NULL CHECK (state IN ('active', 'returned', 'expired', 'recalled')),
        used BIGINT NOT NULL DEFAULT 0, envelope JSONB NOT NULL, move_to TEXT, move_rights BIGINT, closed_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (tenant, lease)
      )`,
      `CREATE INDEX leases_serial ON leases (tenant, serial, state)`,
      `CREATE INDEX leases_device ON leases (tenant, device, state)`,
      // One row per REDEMPTION receipt (action redeem) uploaded; an undo receipt sets undone. The envelope is the
      // evidence a double-spend proof carries.
      `CREATE TABLE redemptions (
        tenant TEXT NOT NULL REFERENCES tenants(id), receipt_id TEXT NOT NULL, serial TEXT NOT NULL, device TEXT NOT NULL, amount BIGINT NOT NULL,
        issued_at TIMESTAMPTZ NOT NULL, issued_at_text TEXT NOT NULL, lease TEXT, protection TEXT, beyond_lease BOOLEAN NOT NULL DEFAULT false,
        undone BOOLEAN NOT NULL DEFAULT false, envelope JSONB NOT NULL, PRIMARY KEY (tenant, receipt_id)
      )`,
      `CREATE INDEX redemptions_serial ON redemptions (tenant, serial)`,
      `CREATE INDEX redemptions_lease ON redemptions (tenant, lease)`,
      `CREATE TABLE conflicts (
        tenant TEXT NOT NULL REFERENCES tenants(id), serial TEXT NOT NULL, rights BIGINT NOT NULL, used BIGINT NOT NULL, proof JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (tenant, serial)
      )`,
    ],
  },
  // The agent runtime's PostgreSQL adapter set (main/cloud/agent-store.ts, issue 17 §2). `scope` plays the part
  // `tenant` plays elsewhere: the first column of every key, named by every query of one adapter set.
  {
    version: 4,
    name: 'agent sessions, transcripts and files (the agent runtime adapters)',
    up: [
      // `record` is the whole SessionRecord; agent_type, state and updated_at are copies for listings and indexes.
      `CREATE TABLE agent_sessions (
        scope TEXT NOT NULL, id TEXT NOT NULL, agent_type TEXT NOT NULL, state TEXT NOT NULL, record JSONB NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (scope, id)
      )`,
      `CREATE INDEX agent_sessions_type ON agent_sessions (scope, agent_type, state)`,
      // Append-only; the key makes a retried append of the same seq a no-op instead of a duplicate.
      `CREATE TABLE agent_transcript (
        scope TEXT NOT NULL, session TEXT NOT NULL, seq BIGINT NOT NULL CHECK (seq >= 1), entry JSONB NOT NULL,
        PRIMARY KEY (scope, session, seq)
      )`,
      `CREATE TABLE agent_files (
        scope TEXT NOT NULL, session TEXT NOT NULL, path TEXT NOT NULL, data BYTEA NOT NULL, size BIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (scope, session, path)
      )`,
    ],
  },
];
