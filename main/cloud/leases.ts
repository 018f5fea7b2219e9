/**
 * Leases (issue 16 §5): the rights of an entitlement partitioned between devices as signed, expiring grants, so
 * that devices offline never redeem a `prevent` entitlement beyond its rights (bounded counters / escrow).
 *
 * ## The invariant, and how it holds under concurrency
 * For every serial with countable rights R:
 *
 *     Σ over active|recalled leases of max(rights, used)  +  Σ over returned|expired leases of used
 *       +  Σ of redemptions outside any lease (no lease, or beyond_lease)                          ≤ R
 *
 * is checked before a lease is created, with the entitlement's `cloud_entitlements` row locked (`SELECT … FOR
 * UPDATE`): every writer of a serial's rights — grants, assignments, returns, moves, expiry settlement, and the
 * receipt ingest hook (main/cloud/entitlements.ts) — takes that lock first (several serials: in serial order), then
 * the tenant row (appendChanges). Two grants racing for the last right therefore serialize and the second sees the
 * first's lease. The same SQL runs on PostgreSQL (row locks) and PGlite (one connection: serialized anyway).
 *
 * ## Unused rights come back
 * - `POST /v1/leases/return`: the device stops using the lease; the cloud checks it holds the device's log up to
 *   `log_size` (else LOG_GAP: upload first), counts the REDEMPTION receipts naming the lease, and frees the rest.
 * - Expiry: a lease past its `exp` keeps all its rights until the device's accepted tree head (receipts.ts,
 *   `device_logs.head`) was signed after `exp` — then every redemption the device made under it is uploaded and
 *   counted, and the lease settles as `expired` holding what was used. Settlement runs whenever a serial's leases
 *   are read for a decision (grant, assign, return, move, list) and after each ingest of the holder's receipts.
 * - Move: the lease of `from` is recalled (a `lease_recall` change for it); once it is returned or settled, the
 *   freed rights (up to the asked number) are granted to `to` as a new lease.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { LEASE_PAYLOAD_TYPE, LEASE_VERSION } from '../common/cloud.js';
import type { Lease, LeaseReturn } from '../common/cloud.js';
import { canonicalBytes } from '../common/canonical.js';
import { fromBase64 } from '../common/dsse.js';
import type { DsseEnvelope } from '../common/dsse.js';
import { TesseraError } from '../common/errors.js';
import { signEnvelope } from '../runtime/keys/index.js';
import { tenantOf } from './app.js';
import type { Sql } from './db.js';
import { appendChanges, tenantKey } from './feed.js';

/** Lease lifetime when the request names none: one day (capped by the entitlement's validity). */
export const DEFAULT_LEASE_TTL_S = 24 * 3600;
/** Longest lease: thirty days. */
export const MAX_LEASE_TTL_S = 30 * 24 * 3600;

export type LeaseState = 'active' | 'returned' | 'expired' | 'recalled';

/** The entitlement row a lease decision reads, locked. */
export interface LockedEntitlement {
  serial: string;
  product_cid: string;
  kind: string;
  /** Countable rights (single_use: 1); null: not countable (a time pass without uses per venue). */
  rights: number | null;
  valid_until: Date;
  revoked_at: Date | null;
}

interface LeaseRow {
  lease: string;
  serial: string;
  device: string;
  rights: number;
  used: number;
  nbf: Date;
  exp: Date;
  state: LeaseState;
  envelope: DsseEnvelope;
  move_to: string | null;
  move_rights: number | null;
  closed_at: Date | null;
}

const iso = (d: Date | number): string => new Date(d).toISOString();

/** A serial's countable rights: single_use is 1; multi_use and stored_value carry theirs; time_pass counts none. */
export function countableRights(kind: string, rights: number | null): number | null {
  if (kind === 'single_use') return 1;
  if (kind === 'time_pass') return null;
  return rights;
}

/**
 * Locks the entitlement rows of `serials` (in serial order, so two transactions never wait on each other in a
 * cycle) and returns those that exist. Must run inside a transaction.
 */
export async function lockEntitlements(sql: Sql, tenant: string, serials: readonly string[]): Promise<Map<string, LockedEntitlement>> {
  const out = new Map<string, LockedEntitlement>();
  for (const serial of [...new Set(serials)].sort()) {
    const rows = await sql.query<{ serial: string; product_cid: string; kind: string; rights: number | null; valid_until: Date; revoked_at: Date | null }>(
      'SELECT serial, product_cid, kind, rights, valid_until, revoked_at FROM cloud_entitlements WHERE tenant = $1 AND serial = $2 FOR UPDATE',
      [tenant, serial],
    );
    const row = rows[0];
    if (row) out.set(serial, { ...row, rights: countableRights(row.kind, row.rights) });
  }
  return out;
}

/** Rights of `serial` spoken for: leases (active/recalled: all of theirs; closed: what was used) + use outside leases. */
export async function committedRights(sql: Sql, tenant: string, serial: string): Promise<number> {
  const [leased] = await sql.query<{ n: number }>(
    `SELECT coalesce(sum(CASE WHEN state IN ('active', 'recalled') THEN GREATEST(rights, used) ELSE used END), 0)::bigint AS n
       FROM leases WHERE tenant = $1 AND serial = $2`,
    [tenant, serial],
  );
  const [outside] = await sql.query<{ n: number }>(
    'SELECT coalesce(sum(amount), 0)::bigint AS n FROM redemptions WHERE tenant = $1 AND serial = $2 AND NOT undone AND (lease IS NULL OR beyond_lease)',
    [tenant, serial],
  );
  return Number(leased!.n) + Number(outside!.n);
}

/** Rights used under `lease` as the uploaded REDEMPTION receipts of its holder say (undone ones not counted). */
export async function usedUnderLease(sql: Sql, tenant: string, lease: string, device: string): Promise<number> {
  const [row] = await sql.query<{ n: number }>(
    'SELECT coalesce(sum(amount), 0)::bigint AS n FROM redemptions WHERE tenant = $1 AND lease = $2 AND device = $3 AND NOT undone AND NOT beyond_lease',
    [tenant, lease, device],
  );
  return Number(row!.n);
}

/** Refreshes `used` of the open leases of `serial` from the redemptions uploaded so far. Caller holds the serial's lock. */
export async function refreshLeaseUse(sql: Sql, tenant: string, serial: string): Promise<void> {
  await sql.query(
    `UPDATE leases l SET used = (SELECT coalesce(sum(r.amount), 0) FROM redemptions r
        WHERE r.tenant = l.tenant AND r.lease = l.lease AND r.device = l.device AND NOT r.undone AND NOT r.beyond_lease)
      WHERE l.tenant = $1 AND l.serial = $2 AND l.state IN ('active', 'recalled')`,
    [tenant, serial],
  );
}

/** The `issued_at` of a device's accepted tree head (receipts.ts `device_logs.head`: a DSSE envelope of a TreeHead, or the TreeHead). */
function headIssuedAt(head: unknown): number | null {
  if (!head || typeof head !== 'object') return null;
  let payload: unknown = head;
  const env = head as Partial<DsseEnvelope>;
  if (typeof env.payload === 'string') {
    try {
      payload = JSON.parse(new TextDecoder().decode(fromBase64(env.payload)));
    } catch {
      return null;
    }
  }
  const at = (payload as { issued_at?: unknown } | null)?.issued_at;
  const ms = typeof at === 'string' ? Date.parse(at) : NaN;
  return Number.isNaN(ms) ? null : ms;
}

/**
 * Settles the leases of `serial` that expired before `now` and whose holder's accepted head was signed after their
 * `exp`: they become `expired`, holding what was used under them; a pending move then grants the freed rights to its
 * target. Caller holds the serial's lock (see {@link lockEntitlements}).
 */
export async function settleExpired(sql: Sql, tenant: string, ent: LockedEntitlement, now: number): Promise<void> {
  const rows = await sql.query<LeaseRow & { head: unknown }>(
    `SELECT l.*, d.head FROM leases l LEFT JOIN device_logs d ON d.tenant = l.tenant AND d.device = l.device
      WHERE l.tenant = $1 AND l.serial = $2 AND l.state IN ('active', 'recalled') AND l.exp < $3 ORDER BY l.lease`,
    [tenant, ent.serial, iso(now)],
  );
  for (const row of rows) {
    const signedAt = headIssuedAt(row.head);
    if (signedAt === null || signedAt <= row.exp.getTime()) continue;
    const used = await usedUnderLease(sql, tenant, row.lease, row.device);
    await sql.query("UPDATE leases SET state = 'expired', used = $3, closed_at = $4 WHERE tenant = $1 AND lease = $2", [tenant, row.lease, used, iso(now)]);
    if (row.move_to) await finishMove(sql, tenant, ent, row, now);
  }
}

/** After a recalled lease closed: grant its target what is free now, up to what the move asked. */
async function finishMove(sql: Sql, tenant: string, ent: LockedEntitlement, row: Pick<LeaseRow, 'move_to' | 'move_rights' | 'exp'>, now: number): Promise<void> {
  if (!row.move_to || ent.rights === null || ent.revoked_at || ent.valid_until.getTime() <= now) return;
  const free = ent.rights - (await committedRights(sql, tenant, ent.serial));
  const n = Math.min(free, row.move_rights ?? free);
  if (n <= 0) return;
  await createLease(sql, tenant, ent, { device: row.move_to, rights: n, ttl_s: DEFAULT_LEASE_TTL_S }, now);
}

/**
 * Creates a lease of `rights` (or fewer: what is free, when `partial`) for `device`, signed by the tenant key, and
 * appends a `lease` change for that device. Caller holds the serial's lock and has settled expired leases.
 * @throws TesseraError LEASE_UNAVAILABLE when nothing (or, without `partial`, not enough) is free, or the entitlement is
 * revoked, expired or not countable.
 */
export async function createLease(
  sql: Sql,
  tenant: string,
  ent: LockedEntitlement,
  ask: { device: string; rights: number; ttl_s?: number; partial?: boolean },
  now: number,
): Promise<DsseEnvelope> {
  if (ent.revoked_at) throw new TesseraError('LEASE_UNAVAILABLE', `Entitlement ${ent.serial} was revoked on ${iso(ent.revoked_at)}; it has no rights to lease.`);
  if (ent.valid_until.getTime() <= now) throw new TesseraError('LEASE_UNAVAILABLE', `Entitlement ${ent.serial} expired at ${iso(ent.valid_until)}.`);
  if (ent.rights === null) throw new TesseraError('LEASE_UNAVAILABLE', `Entitlement ${ent.serial} is a ${ent.kind} without countable rights; there is nothing to lease.`);
  const free = ent.rights - (await committedRights(sql, tenant, ent.serial));
  const n = ask.partial ? Math.min(ask.rights, free) : ask.rights;
  if (n <= 0 || n > free) {
    throw new TesseraError('LEASE_UNAVAILABLE', `Entitlement ${ent.serial} has ${Math.max(0, free)} of ${ent.rights} rights free to lease; ${ask.rights} were asked.`, {
      details: { serial: ent.serial, free: Math.max(0, free), rights: ent.rights },
    });
  }
  const ttl = Math.min(ask.ttl_s ?? DEFAULT_LEASE_TTL_S, MAX_LEASE_TTL_S);
  const exp = Math.min(now + ttl * 1000, ent.valid_until.getTime());
  const key = await tenantKey(sql, tenant);
  const lease: Lease = {
    v: LEASE_VERSION,
    lease: `lse_${randomBytes(12).toString('hex')}`,
    tenant,
    device: ask.device,
    serial: ent.serial,
    product_cid: ent.product_cid,
    rights: n,
    nbf: iso(now),
    exp: iso(exp),
    issued_at: iso(now),
    issuer: key.keyid,
  };
  const envelope = signEnvelope(LEASE_PAYLOAD_TYPE, canonicalBytes(lease), [key]);
  await sql.query(
    `INSERT INTO leases (tenant, lease, serial, device, rights, nbf, exp, state, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8::jsonb)`,
    [tenant, lease.lease, ent.serial, ask.device, n, lease.nbf, lease.exp, JSON.stringify(envelope)],
  );
  await appendChanges(sql, tenant, [{ device: ask.device, change: { type: 'lease', lease: envelope } }]);
  return envelope;
}

/** The device must be an enrolled, unrevoked device of the tenant. @throws TesseraError NOT_FOUND / DEVICE_REVOKED. */
async function requireDevice(sql: Sql, tenant: string, device: string): Promise<void> {
  const rows = await sql.query<{ revoked_at: Date | null }>('SELECT revoked_at FROM devices WHERE tenant = $1 AND device = $2', [tenant, device]);
  if (rows.length === 0) throw new TesseraError('NOT_FOUND', `No device ${device} in this tenant.`);
  if (rows[0]!.revoked_at) throw new TesseraError('DEVICE_REVOKED', `Device ${device} is revoked; it gets no leases.`);
}

/** Locks one serial's row and settles its expired leases. @throws TesseraError NOT_FOUND for a serial the tenant does not hold. */
async function lockOne(sql: Sql, tenant: string, serial: string, now: number): Promise<LockedEntitlement> {
  const ent = (await lockEntitlements(sql, tenant, [serial])).get(serial);
  if (!ent) throw new TesseraError('NOT_FOUND', `No entitlement ${serial} in this tenant.`);
  await settleExpired(sql, tenant, ent, now);
  return ent;
}

/** Issues leases at issue time (`CloudIssueRequest.leases`), inside the issuing transaction. */
export async function leasesAtIssue(sql: Sql, tenant: string, serial: string, asks: ReadonlyArray<{ device: string; rights: number; ttl_s?: number }>, now: number): Promise<DsseEnvelope[]> {
  const ent = (await lockEntitlements(sql, tenant, [serial])).get(serial)!;
  const out: DsseEnvelope[] = [];
  for (const ask of asks) {
    await requireDevice(sql, tenant, ask.device);
    out.push(await createLease(sql, tenant, ent, ask, now));
  }
  return out;
}

const SERIAL = { type: 'string', pattern: '^[0-9a-f]{24}$' } as const;
const KEYID = { type: 'string', pattern: '^b3:[0-9a-f]{64}$' } as const;
const LEASE_ID = { type: 'string', pattern: '^lse_[0-9a-f]{24}$' } as const;
const errorRef = { $ref: 'Error#' } as const;
const errors = { 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef } as const;
const envelopeSchema = { type: 'object', additionalProperties: true, required: ['payloadType', 'payload', 'signatures'], properties: { payloadType: { type: 'string' }, payload: { type: 'string' }, signatures: { type: 'array', items: { type: 'object', additionalProperties: true } } } } as const;
const leaseAnswer = { type: 'object', additionalProperties: false, required: ['lease'], properties: { lease: envelopeSchema } } as const;

export interface LeaseSummary {
  lease: string;
  serial: string;
  device: string;
  rights: number;
  used: number;
  left: number;
  nbf: string;
  exp: string;
  state: LeaseState;
  move_to: string | null;
  closed_at: string | null;
}

/** Lease routes (admin: assign, move, list; device: grant, return). */
export async function leaseRoutes(app: FastifyInstance): Promise<void> {
  const { db, clock } = app.cloud;

  app.post<{ Body: { serial: string; device: string; rights: number; ttl_s?: number } }>('/v1/leases', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: 'Assign a lease ahead of time (venue assignment): `rights` of an entitlement to one device until ttl_s (default one day).',
      tags: ['leases'],
      body: { type: 'object', additionalProperties: false, required: ['serial', 'device', 'rights'], properties: { serial: SERIAL, device: KEYID, rights: { type: 'integer', minimum: 1 }, ttl_s: { type: 'integer', minimum: 60, maximum: MAX_LEASE_TTL_S } } },
      response: { 200: leaseAnswer, ...errors },
    },
  }, async (request) => {
    const tenant = tenantOf(request);
    const { serial, device, rights, ttl_s } = request.body;
    return db.tx(async (sql) => {
      const now = clock();
      const ent = await lockOne(sql, tenant, serial, now);
      await requireDevice(sql, tenant, device);
      return { lease: await createLease(sql, tenant, ent, { device, rights, ...(ttl_s !== undefined ? { ttl_s } : {}) }, now) };
    });
  });

  app.post<{ Body: { serial: string; rights: number; ttl_s?: number } }>('/v1/leases/grant', {
    config: { cloudAccess: ['device'] },
    schema: {
      summary: 'A device online asks for rights of an entitlement: it gets a signed lease of what is free, up to `rights` (LEASE_UNAVAILABLE when none is).',
      tags: ['leases'],
      body: { type: 'object', additionalProperties: false, required: ['serial', 'rights'], properties: { serial: SERIAL, rights: { type: 'integer', minimum: 1 }, ttl_s: { type: 'integer', minimum: 60, maximum: MAX_LEASE_TTL_S } } },
      response: { 200: leaseAnswer, ...errors },
    },
  }, async (request) => {
    const caller = request.caller;
    if (caller?.kind !== 'device') throw new TesseraError('FORBIDDEN', 'Only a device asks for a lease.');
    const { serial, rights, ttl_s } = request.body;
    return db.tx(async (sql) => {
      const now = clock();
      const ent = await lockOne(sql, caller.tenant, serial, now);
      return { lease: await createLease(sql, caller.tenant, ent, { device: caller.device, rights, partial: true, ...(ttl_s !== undefined ? { ttl_s } : {}) }, now) };
    });
  });

  app.post<{ Body: LeaseReturn }>('/v1/leases/return', {
    config: { cloudAccess: ['device'] },
    schema: {
      summary: 'A device gives a lease back: the cloud counts the uploaded redemptions under it (the log must be uploaded up to log_size, else LOG_GAP) and frees the rest.',
      tags: ['leases'],
      body: { type: 'object', additionalProperties: false, required: ['lease', 'used', 'log_size'], properties: { lease: LEASE_ID, used: { type: 'integer', minimum: 0 }, log_size: { type: 'integer', minimum: 0 } } },
      response: { 200: { type: 'object', additionalProperties: false, required: ['returned', 'used'], properties: { returned: { type: 'integer' }, used: { type: 'integer' } } }, ...errors },
    },
  }, async (request) => {
    const caller = request.caller;
    if (caller?.kind !== 'device') throw new TesseraError('FORBIDDEN', 'Only the holder returns a lease.');
    const { lease, used, log_size } = request.body;
    const tenant = caller.tenant;
    return db.tx(async (sql) => {
      const now = clock();
      const found = await sql.query<{ serial: string }>('SELECT serial FROM leases WHERE tenant = $1 AND lease = $2 AND device = $3', [tenant, lease, caller.device]);
      if (found.length === 0) throw new TesseraError('LEASE_NOT_FOUND', `No lease ${lease} held by this device.`);
      const ent = await lockOne(sql, tenant, found[0]!.serial, now);
      const [row] = await sql.query<LeaseRow>('SELECT * FROM leases WHERE tenant = $1 AND lease = $2', [tenant, lease]);
      if (row!.state === 'returned' || row!.state === 'expired') return { returned: Math.max(0, row!.rights - row!.used), used: row!.used };
      const accepted = await sql.query<{ size: number }>('SELECT size FROM device_logs WHERE tenant = $1 AND device = $2', [tenant, caller.device]);
      const size = accepted[0]?.size ?? 0;
      if (size < log_size) {
        throw new TesseraError('LOG_GAP', `The cloud holds ${size} entries of this device's log; upload up to ${log_size} before returning lease ${lease}.`, { details: { accepted_size: size } });
      }
      // What the device says it used and what its uploaded receipts show: the larger (a right never returns twice).
      const counted = Math.max(used, await usedUnderLease(sql, tenant, lease, caller.device));
      await sql.query("UPDATE leases SET state = 'returned', used = $3, closed_at = $4 WHERE tenant = $1 AND lease = $2", [tenant, lease, counted, iso(now)]);
      if (row!.move_to) await finishMove(sql, tenant, ent, row!, now);
      return { returned: Math.max(0, row!.rights - counted), used: counted };
    });
  });

  app.post<{ Body: { serial: string; from: string; to: string; rights: number } }>('/v1/leases/move', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: 'Move rights between devices: the lease of `from` is recalled; once it is returned (or settles at expiry) what it did not use, up to `rights`, is leased to `to`.',
      tags: ['leases'],
      body: { type: 'object', additionalProperties: false, required: ['serial', 'from', 'to', 'rights'], properties: { serial: SERIAL, from: KEYID, to: KEYID, rights: { type: 'integer', minimum: 1 } } },
      response: { 200: { type: 'object', additionalProperties: false, required: ['recall'], properties: { recall: { type: 'string' } } }, ...errors },
    },
  }, async (request) => {
    const tenant = tenantOf(request);
    const { serial, from, to, rights } = request.body;
    return db.tx(async (sql) => {
      const now = clock();
      await lockOne(sql, tenant, serial, now);
      await requireDevice(sql, tenant, to);
      const rows = await sql.query<{ lease: string }>(
        "SELECT lease FROM leases WHERE tenant = $1 AND serial = $2 AND device = $3 AND state = 'active' AND exp > $4 ORDER BY exp DESC, lease LIMIT 1",
        [tenant, serial, from, iso(now)],
      );
      if (rows.length === 0) throw new TesseraError('LEASE_NOT_FOUND', `Device ${from} holds no active lease of ${serial}.`);
      const lease = rows[0]!.lease;
      await sql.query("UPDATE leases SET state = 'recalled', move_to = $3, move_rights = $4 WHERE tenant = $1 AND lease = $2", [tenant, lease, to, rights]);
      await appendChanges(sql, tenant, [{ device: from, change: { type: 'lease_recall', lease, reason: `${rights} rights moved to device ${to}` } }]);
      return { recall: lease };
    });
  });

  app.get<{ Querystring: { serial?: string; device?: string; state?: LeaseState; limit?: number } }>('/v1/leases', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: "The tenant's leases, newest first (expired leases whose holders uploaded past their expiry are settled first).",
      tags: ['leases'],
      querystring: { type: 'object', additionalProperties: false, properties: { serial: SERIAL, device: KEYID, state: { type: 'string', enum: ['active', 'returned', 'expired', 'recalled'] }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } } },
      response: {
        200: {
          type: 'object', additionalProperties: false, required: ['leases'],
          properties: {
            leases: {
              type: 'array',
              items: {
                type: 'object', additionalProperties: false, required: ['lease', 'serial', 'device', 'rights', 'used', 'left', 'nbf', 'exp', 'state', 'move_to', 'closed_at'],
                properties: {
                  lease: { type: 'string' }, serial: { type: 'string' }, device: { type: 'string' }, rights: { type: 'integer' }, used: { type: 'integer' }, left: { type: 'integer' },
                  nbf: { type: 'string' }, exp: { type: 'string' }, state: { type: 'string' }, move_to: { type: ['string', 'null'] }, closed_at: { type: ['string', 'null'] },
                },
              },
            },
          },
        },
        ...errors,
      },
    },
  }, async (request) => {
    const tenant = tenantOf(request);
    const q = request.query;
    const now = clock();
    // Settle what can be settled first (each serial under its own lock), so the list shows returned rights.
    const due = await db.query<{ serial: string }>(
      `SELECT DISTINCT serial FROM leases WHERE tenant = $1 AND state IN ('active', 'recalled') AND exp < $2 ${q.serial ? 'AND serial = $3' : ''} ORDER BY serial LIMIT 100`,
      q.serial ? [tenant, iso(now), q.serial] : [tenant, iso(now)],
    );
    for (const { serial } of due) {
      await db.tx(async (sql) => {
        const ent = (await lockEntitlements(sql, tenant, [serial])).get(serial);
        if (ent) await settleExpired(sql, tenant, ent, now);
      });
    }
    const where = ['tenant = $1'];
    const args: unknown[] = [tenant];
    for (const [column, value] of [['serial', q.serial], ['device', q.device], ['state', q.state]] as const) {
      if (value === undefined) continue;
      args.push(value);
      where.push(`${column} = $${args.length}`);
    }
    args.push(q.limit ?? 200);
    const rows = await db.query<LeaseRow>(`SELECT * FROM leases WHERE ${where.join(' AND ')} ORDER BY created_at DESC, lease LIMIT $${args.length}`, args);
    return { leases: rows.map(leaseSummary) };
  });
}

function leaseSummary(r: LeaseRow): LeaseSummary {
  const rights = Number(r.rights);
  const used = Number(r.used);
  return {
    lease: r.lease, serial: r.serial, device: r.device, rights, used, left: r.state === 'active' ? Math.max(0, rights - used) : 0,
    nbf: iso(r.nbf), exp: iso(r.exp), state: r.state, move_to: r.move_to, closed_at: r.closed_at ? iso(r.closed_at) : null,
  };
}
