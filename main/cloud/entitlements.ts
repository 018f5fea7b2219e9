/**
 * Entitlements in the cloud (issue 16 §4–§5): products and their protection, entitlements issued with the tenant's
 * cloud key (TS1 tokens, common/entitlement-token.ts) or learned from kiosks' ISSUANCE receipts, the deny list
 * (revocations), the device pull feed, and double-spend detection at ingest.
 *
 * ## What devices pull
 * `GET /v1/sync/pull?checkpoint=N` returns the tenant's changes after seq N meant for every device or for the caller.
 * The feed's seq is handed out under the tenant row's lock (main/cloud/feed.ts), so changes commit in seq order; the
 * answer's rows and its `checkpoint` (the highest seq committed) come from one statement, hence one snapshot: a pull
 * never skips a change a concurrent transaction commits later.
 *
 * ## Double spends
 * {@link entitlementIngestHook} runs inside the receipt upload's transaction (main/cloud/receipts.ts): REDEMPTION
 * receipts become `redemptions` rows (their envelopes kept as evidence), an undo marks its redemption undone, and
 * for each serial touched, when the redemptions of all devices exceed its rights, a {@link DoubleSpendProof} signed
 * by the tenant key is upserted in `conflicts` (adjudicated by {@link adjudicate}: earliest first) and a
 * `DOUBLE_SPEND` alert is raised. It relies on these REDEMPTION body fields: `action` (`redeem`|`undo`), `serial`,
 * `amount` (stored value; 1 otherwise), `lease` (the lease id it was redeemed under, or absent), `beyond_lease`
 * (true: a `bound` redemption outside the lease), `protection`, `undo_of` (undo: the redeem receipt's id).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { DOUBLE_SPEND_PAYLOAD_TYPE, DOUBLE_SPEND_VERSION, PROTECTIONS, adjudicate } from '../common/cloud.js';
import type { CloudEntitlement, CloudIssueRequest, DoubleSpendProof, ProductProtection, SpendEvidence, SyncChange } from '../common/cloud.js';
import { canonicalBytes } from '../common/canonical.js';
import type { DsseEnvelope } from '../common/dsse.js';
import { decodeToken, encodeToken, kidOfKeyid } from '../common/entitlement-token.js';
import type { EntitlementKind } from '../common/entitlement-token.js';
import { TesseraError } from '../common/errors.js';
import { readPublicKey, signEnvelope, verifyEd25519 } from '../runtime/keys/index.js';
import { tenantOf } from './app.js';
import type { AcceptedReceipt, IngestHook } from './app.js';
import type { Sql } from './db.js';
import { appendChanges, tenantKey } from './feed.js';
import type { ChangeBody } from './feed.js';
import { countableRights, leasesAtIssue, lockEntitlements, refreshLeaseUse, settleExpired } from './leases.js';

const iso = (d: Date | number): string => new Date(d).toISOString();
const KINDS: readonly EntitlementKind[] = ['single_use', 'multi_use', 'time_pass', 'stored_value'];
const SERIAL = { type: 'string', pattern: '^[0-9a-f]{24}$' } as const;
const CID = { type: 'string', pattern: '^b3:[0-9a-f]{64}$' } as const;
const errorRef = { $ref: 'Error#' } as const;
const errors = { 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef } as const;
const looseObject = { type: 'object', additionalProperties: true } as const;
/** Most changes one pull returns. */
export const MAX_PULL = 1000;

interface EntitlementRow {
  serial: string; product_cid: string; kind: EntitlementKind; rights: number | null; currency: string | null; valid_from: Date; valid_until: Date;
  venues: string[]; code: string | null; source: string; issued_at: Date; revoked_at: Date | null; reason: string | null;
}

function cloudEntitlement(r: EntitlementRow): CloudEntitlement {
  return {
    serial: r.serial, product_cid: r.product_cid, kind: r.kind, ...(r.rights !== null ? { rights: Number(r.rights) } : {}), ...(r.currency !== null ? { currency: r.currency } : {}),
    valid_from: iso(r.valid_from), valid_until: iso(r.valid_until), venues: r.venues, code: r.code ?? '',
  };
}

const productSchema = {
  type: 'object', additionalProperties: false, required: ['product_cid', 'protection', 'deny_max_age_s'],
  properties: { product_cid: CID, protection: { type: 'string', enum: [...PROTECTIONS] }, bound: { type: 'integer', minimum: 0 }, deny_max_age_s: { type: 'integer', minimum: 1 } },
} as const;

/** Product, entitlement, deny-list, conflict and pull routes. */
export async function entitlementRoutes(app: FastifyInstance): Promise<void> {
  const { db, clock } = app.cloud;

  app.post<{ Body: ProductProtection }>('/v1/products', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: "Set how a product's entitlements are protected offline (prevent, bound, detect) and its deny-list freshness bound; every device pulls it.",
      tags: ['entitlements'],
      body: productSchema,
      response: { 200: productSchema, ...errors },
    },
  }, async (request) => {
    const tenant = tenantOf(request);
    const p = request.body;
    if (p.protection === 'bound' && p.bound === undefined) throw new TesseraError('VALIDATION_FAILED', 'A bound protection needs `bound`: how many redemptions a device may make beyond its lease offline.');
    const product: ProductProtection = { product_cid: p.product_cid, protection: p.protection, ...(p.protection === 'bound' ? { bound: p.bound! } : {}), deny_max_age_s: p.deny_max_age_s };
    await db.tx(async (sql) => {
      await sql.query(
        `INSERT INTO products (tenant, product_cid, protection, bound, deny_max_age_s) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant, product_cid) DO UPDATE SET protection = excluded.protection, bound = excluded.bound, deny_max_age_s = excluded.deny_max_age_s, updated_at = now()`,
        [tenant, product.product_cid, product.protection, product.bound ?? null, product.deny_max_age_s],
      );
      await appendChanges(sql, tenant, [{ change: { type: 'product', product } }]);
    });
    return product;
  });

  app.get('/v1/products', {
    config: { cloudAccess: ['admin'] },
    schema: { summary: "The tenant's product protections.", tags: ['entitlements'], response: { 200: { type: 'object', additionalProperties: false, required: ['products'], properties: { products: { type: 'array', items: productSchema } } }, ...errors } },
  }, async (request) => {
    const rows = await db.query<{ product_cid: string; protection: ProductProtection['protection']; bound: number | null; deny_max_age_s: number }>(
      'SELECT product_cid, protection, bound, deny_max_age_s FROM products WHERE tenant = $1 ORDER BY product_cid', [tenantOf(request)],
    );
    return { products: rows.map((r) => ({ product_cid: r.product_cid, protection: r.protection, ...(r.bound !== null ? { bound: r.bound } : {}), deny_max_age_s: r.deny_max_age_s })) };
  });

  app.post<{ Body: CloudIssueRequest }>('/v1/entitlements', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: 'Issue an entitlement signed by the tenant cloud key (a TS1 token); every device pulls it. `leases` grants rights to devices at once.',
      tags: ['entitlements'],
      body: {
        type: 'object', additionalProperties: false, required: ['product_cid', 'kind', 'valid_from', 'valid_until', 'venues'],
        properties: {
          product_cid: CID, kind: { type: 'string', enum: [...KINDS] }, uses: { type: 'integer', minimum: 1 }, amount: { type: 'integer', minimum: 1 },
          currency: { type: 'string', pattern: '^[A-Z]{3}$' }, uses_per_venue: { type: 'integer', minimum: 1 }, valid_from: { type: 'string', minLength: 10, maxLength: 40 },
          valid_until: { type: 'string', minLength: 10, maxLength: 40 }, venues: { type: 'array', maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 128 } },
          leases: { type: 'array', maxItems: 100, items: { type: 'object', additionalProperties: false, required: ['device', 'rights'], properties: { device: { type: 'string', pattern: '^b3:[0-9a-f]{64}$' }, rights: { type: 'integer', minimum: 1 }, ttl_s: { type: 'integer', minimum: 60 } } } },
        },
      },
      response: { 200: { type: 'object', additionalProperties: false, required: ['serial', 'code', 'leases'], properties: { serial: { type: 'string' }, code: { type: 'string' }, leases: { type: 'array', items: looseObject } } }, ...errors },
    },
  }, async (request) => {
    const tenant = tenantOf(request);
    const req = request.body;
    const from = Date.parse(req.valid_from);
    const until = Date.parse(req.valid_until);
    if (Number.isNaN(from) || Number.isNaN(until) || until <= from) throw new TesseraError('VALIDATION_FAILED', 'valid_until must be a time after valid_from.');
    const rights = req.kind === 'multi_use' ? req.uses : req.kind === 'stored_value' ? req.amount : req.kind === 'time_pass' ? req.uses_per_venue : undefined;
    if ((req.kind === 'multi_use' || req.kind === 'stored_value') && rights === undefined) throw new TesseraError('VALIDATION_FAILED', `A ${req.kind} entitlement needs ${req.kind === 'multi_use' ? 'uses' : 'amount'}.`);
    if ((req.kind === 'stored_value') !== (req.currency !== undefined)) throw new TesseraError('VALIDATION_FAILED', 'A stored_value entitlement needs a currency; other kinds take none.');
    const serial = randomBytes(12).toString('hex');
    return db.tx(async (sql) => {
      const now = clock();
      const key = await tenantKey(sql, tenant);
      const code = encodeToken({
        serial, product_cid: req.product_cid, kind: req.kind, ...(rights !== undefined ? { rights } : {}), ...(req.currency !== undefined ? { currency: req.currency } : {}),
        nbf: Math.floor(from / 1000), exp: Math.floor(until / 1000), venues: req.venues, issuer_keyid: key.keyid,
      }, (m) => key.sign(m));
      const [row] = await sql.query<EntitlementRow>(
        `INSERT INTO cloud_entitlements (tenant, serial, product_cid, kind, rights, currency, valid_from, valid_until, venues, code, source, issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, 'cloud', $11) RETURNING *`,
        [tenant, serial, req.product_cid, req.kind, rights ?? null, req.currency ?? null, iso(Math.floor(from / 1000) * 1000), iso(Math.floor(until / 1000) * 1000), JSON.stringify(req.venues), code, iso(now)],
      );
      await appendChanges(sql, tenant, [{ change: { type: 'entitlement', entitlement: cloudEntitlement(row!) } }]);
      const leases = req.leases?.length ? await leasesAtIssue(sql, tenant, serial, req.leases, now) : [];
      return { serial, code, leases };
    });
  });

  app.post<{ Params: { serial: string }; Body: { reason: string } }>('/v1/entitlements/:serial/revoke', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: 'Put a serial on the deny list: every device pulls the revocation and refuses the code. A serial the cloud never saw may be revoked too (a kiosk sale not yet uploaded).',
      tags: ['entitlements'],
      params: { type: 'object', required: ['serial'], properties: { serial: SERIAL } },
      body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } },
      response: { 200: { type: 'object', additionalProperties: false, required: ['serial', 'revoked_at', 'reason'], properties: { serial: { type: 'string' }, revoked_at: { type: 'string' }, reason: { type: 'string' } } }, ...errors },
    },
  }, async (request) => {
    const tenant = tenantOf(request);
    const { serial } = request.params;
    const reason = request.body.reason.trim();
    if (!reason) throw new TesseraError('VALIDATION_FAILED', 'A revocation needs a reason.');
    return db.tx(async (sql) => {
      const now = clock();
      const ent = (await lockEntitlements(sql, tenant, [serial])).get(serial);
      if (ent?.revoked_at) {
        const [r] = await sql.query<{ reason: string }>('SELECT reason FROM cloud_entitlements WHERE tenant = $1 AND serial = $2', [tenant, serial]);
        return { serial, revoked_at: iso(ent.revoked_at), reason: r!.reason };
      }
      if (ent) await sql.query('UPDATE cloud_entitlements SET revoked_at = $3, reason = $4 WHERE tenant = $1 AND serial = $2', [tenant, serial, iso(now), reason]);
      else {
        const seen = await sql.query<{ n: number }>("SELECT count(*)::bigint AS n FROM changes WHERE tenant = $1 AND type = 'revocation' AND body->>'serial' = $2", [tenant, serial]);
        if (Number(seen[0]!.n) > 0) {
          const [prev] = await sql.query<{ body: { at: string; reason: string } }>("SELECT body FROM changes WHERE tenant = $1 AND type = 'revocation' AND body->>'serial' = $2 ORDER BY seq LIMIT 1", [tenant, serial]);
          return { serial, revoked_at: prev!.body.at, reason: prev!.body.reason };
        }
      }
      await appendChanges(sql, tenant, [{ change: { type: 'revocation', serial, reason, at: iso(now) } }]);
      return { serial, revoked_at: iso(now), reason };
    });
  });

  app.get<{ Querystring: { serial?: string; source?: string; limit?: number } }>('/v1/entitlements', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: "The tenant's entitlements (issued in the cloud or learned from kiosks), newest first, with the rights used and leased.",
      tags: ['entitlements'],
      querystring: { type: 'object', additionalProperties: false, properties: { serial: SERIAL, source: { type: 'string', maxLength: 80 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } } },
      response: { 200: { type: 'object', additionalProperties: false, required: ['entitlements'], properties: { entitlements: { type: 'array', items: looseObject } } }, ...errors },
    },
  }, async (request) => {
    const tenant = tenantOf(request);
    const q = request.query;
    const where = ['e.tenant = $1'];
    const args: unknown[] = [tenant];
    if (q.serial) {
      args.push(q.serial);
      where.push(`e.serial = $${args.length}`);
    }
    if (q.source) {
      args.push(q.source);
      where.push(`e.source = $${args.length}`);
    }
    args.push(q.limit ?? 200);
    const rows = await db.query<EntitlementRow & { used: number; leased: number }>(
      `SELECT e.*,
         (SELECT coalesce(sum(amount), 0)::bigint FROM redemptions r WHERE r.tenant = e.tenant AND r.serial = e.serial AND NOT r.undone) AS used,
         (SELECT coalesce(sum(rights), 0)::bigint FROM leases l WHERE l.tenant = e.tenant AND l.serial = e.serial AND l.state IN ('active', 'recalled')) AS leased
       FROM cloud_entitlements e WHERE ${where.join(' AND ')} ORDER BY e.issued_at DESC, e.serial LIMIT $${args.length}`,
      args,
    );
    return {
      entitlements: rows.map((r) => ({
        ...cloudEntitlement(r), source: r.source, issued_at: iso(r.issued_at), revoked_at: r.revoked_at ? iso(r.revoked_at) : null, reason: r.reason,
        used: Number(r.used), leased: Number(r.leased),
      })),
    };
  });

  app.get('/v1/conflicts', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: 'Double spends found at sync: per serial, the signed proof built from the devices\' own REDEMPTION receipts and its deterministic adjudication.',
      tags: ['entitlements'],
      response: { 200: { type: 'object', additionalProperties: false, required: ['conflicts'], properties: { conflicts: { type: 'array', items: looseObject } } }, ...errors },
    },
  }, async (request) => {
    const rows = await db.query<{ serial: string; rights: number; used: number; proof: DsseEnvelope; created_at: Date; updated_at: Date }>(
      'SELECT serial, rights, used, proof, created_at, updated_at FROM conflicts WHERE tenant = $1 ORDER BY updated_at DESC, serial LIMIT 500', [tenantOf(request)],
    );
    return {
      conflicts: rows.map((r) => {
        const proof = JSON.parse(Buffer.from(r.proof.payload, 'base64').toString('utf8')) as DoubleSpendProof;
        return {
          serial: r.serial, product_cid: proof.product_cid, rights: Number(r.rights), used: Number(r.used), devices: [...new Set(proof.evidence.map((e) => e.device))].sort(),
          adjudication: proof.adjudication, created_at: iso(r.created_at), updated_at: iso(r.updated_at), proof: r.proof,
        };
      }),
    };
  });

  app.get<{ Querystring: { checkpoint?: number; limit?: number } }>('/v1/sync/pull', {
    config: { cloudAccess: ['device'] },
    schema: {
      summary: "A device's changes after `checkpoint` (products, entitlements, revocations, its leases and recalls, issuer keys, revoked devices); resume with the answer's checkpoint.",
      tags: ['sync'],
      querystring: { type: 'object', additionalProperties: false, properties: { checkpoint: { type: 'integer', minimum: 0, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: MAX_PULL, default: 500 } } },
      response: {
        200: {
          type: 'object', additionalProperties: false, required: ['changes', 'checkpoint', 'more', 'server_time'],
          properties: { changes: { type: 'array', items: looseObject }, checkpoint: { type: 'integer' }, more: { type: 'boolean' }, server_time: { type: 'string' } },
        },
        ...errors,
      },
    },
  }, async (request) => {
    const caller = request.caller;
    if (caller?.kind !== 'device') throw new TesseraError('FORBIDDEN', 'Only a device pulls its feed.');
    const checkpoint = request.query.checkpoint ?? 0;
    const limit = request.query.limit ?? 500;
    const serverTime = iso(clock());
    // One statement, one snapshot: `top` is the highest seq committed when the rows were read. Seqs are handed out
    // under the tenant row's lock, so nothing at or below `top` can still commit after this.
    const rows = await db.query<{ top: number; seq: number | null; body: Omit<SyncChange, 'seq'> | null }>(
      `SELECT t.top, v.seq, v.body FROM (SELECT coalesce(max(seq), 0)::bigint AS top FROM changes WHERE tenant = $1) t
        LEFT JOIN LATERAL (SELECT seq, body FROM changes WHERE tenant = $1 AND seq > $2 AND (device IS NULL OR device = $3) ORDER BY seq LIMIT $4) v ON true
        ORDER BY v.seq`,
      [caller.tenant, checkpoint, caller.device, limit + 1],
    );
    const top = Number(rows[0]?.top ?? 0);
    const found = rows.filter((r) => r.seq !== null).map((r) => ({ ...r.body!, seq: Number(r.seq) }) as SyncChange);
    const more = found.length > limit;
    const changes = more ? found.slice(0, limit) : found;
    return { changes, checkpoint: more ? changes.at(-1)!.seq : Math.max(checkpoint, top), more, server_time: serverTime };
  });
}

// ---------------------------------------------------------------- ingest

interface SpendRow {
  receipt_id: string; device: string; amount: number; issued_at_text: string; envelope: DsseEnvelope;
}

const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

/**
 * The ingest hook with a given clock (the proofs' and settlements' time). Registered by the cloud in
 * `ingestHooks`; runs inside the upload's transaction, after every receipt verified. A throw refuses the upload.
 */
export function createEntitlementIngestHook(clock: () => number = Date.now): IngestHook {
  return async (sql, at, receipts) => {
    const { tenant, device } = at;
    const touched = new Set<string>();
    // Feed entries are appended last: appendChanges takes the tenant row's lock, which every writer takes after the
    // entitlement rows' locks (main/cloud/leases.ts); taking it earlier here could deadlock with a grant.
    const learned: ChangeBody[] = [];
    let role: string | undefined;
    for (const r of receipts) {
      const p = r.payload;
      const body = p.body as Record<string, unknown>;
      const serial = str(body['serial']);
      if (!serial || !/^[0-9a-f]{24}$/.test(serial)) continue;
      if (p.kind === 'ISSUANCE') {
        role ??= (await sql.query<{ role: string }>('SELECT role FROM devices WHERE tenant = $1 AND device = $2', [tenant, device]))[0]?.role;
        if (role === 'kiosk') {
          const entitlement = await learnIssuance(sql, tenant, device, r);
          if (entitlement) learned.push({ type: 'entitlement', entitlement });
        }
      } else if (p.kind === 'INTENT' && body['intent'] === 'entitlement.redeem') {
        const product = str(body['product']);
        const kind = str(body['kind']);
        if (product && kind && (KINDS as readonly string[]).includes(kind)) {
          await sql.query('INSERT INTO seen_tokens (tenant, serial, product_cid, kind, rights, currency) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING', [
            tenant, serial, product, kind, typeof body['rights'] === 'number' ? body['rights'] : null, str(body['currency']) ?? null,
          ]);
        }
      } else if (p.kind === 'REDEMPTION') {
        const action = body['action'];
        if (action === 'redeem') {
          const amount = typeof body['amount'] === 'number' && Number.isSafeInteger(body['amount']) && body['amount'] > 0 ? body['amount'] : 1;
          await sql.query(
            `INSERT INTO redemptions (tenant, receipt_id, serial, device, amount, issued_at, issued_at_text, lease, protection, beyond_lease, envelope)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb) ON CONFLICT DO NOTHING`,
            [tenant, r.id, serial, device, amount, p.issued_at, p.issued_at, str(body['lease']) ?? null, str(body['protection']) ?? null, body['beyond_lease'] === true, JSON.stringify(r.envelope)],
          );
          touched.add(serial);
        } else if (action === 'undo' && typeof body['undo_of'] === 'string') {
          await sql.query('UPDATE redemptions SET undone = true WHERE tenant = $1 AND receipt_id = $2 AND device = $3', [tenant, body['undo_of'], device]);
          touched.add(serial);
        }
      }
    }
    const now = clock();
    // Leases of this device that may settle now that more of its log is here.
    const due = await sql.query<{ serial: string }>("SELECT DISTINCT serial FROM leases WHERE tenant = $1 AND device = $2 AND state IN ('active', 'recalled') AND exp < $3", [tenant, device, iso(now)]);
    const serials = [...new Set([...touched, ...due.map((d) => d.serial)])].sort();
    const locked = await lockEntitlements(sql, tenant, serials);
    for (const serial of serials) {
      const ent = locked.get(serial);
      if (ent) {
        await refreshLeaseUse(sql, tenant, serial);
        await settleExpired(sql, tenant, ent, now);
      }
      if (touched.has(serial)) await checkDoubleSpend(sql, tenant, device, serial, now);
    }
    await appendChanges(sql, tenant, learned.map((change) => ({ change })));
  };
}

/** The ingest hook on the system clock (what main/cloud/index.ts registers). */
export const entitlementIngestHook: IngestHook = createEntitlementIngestHook();

/** A kiosk's sale: the token in its ISSUANCE receipt (signed by the kiosk's key) becomes a cloud entitlement all devices pull. */
async function learnIssuance(sql: Sql, tenant: string, device: string, r: AcceptedReceipt): Promise<CloudEntitlement | undefined> {
  const body = r.payload.body as Record<string, unknown>;
  const decoded = decodeToken(body['code']);
  if (!decoded.ok) return undefined; // an older kiosk (no code in the body) or a damaged one: nothing a redeemer could use
  const { claims } = decoded.token;
  if (claims.serial !== body['serial'] || decoded.token.kid !== kidOfKeyid(device)) return undefined;
  const [dev] = await sql.query<{ public_key_pem: string }>('SELECT public_key_pem FROM devices WHERE tenant = $1 AND device = $2', [tenant, device]);
  if (!dev || !verifyEd25519(decoded.token.signature, decoded.token.signed, readPublicKey(dev.public_key_pem).publicKeyRaw)) return undefined;
  const rows = await sql.query<EntitlementRow>(
    `INSERT INTO cloud_entitlements (tenant, serial, product_cid, kind, rights, currency, valid_from, valid_until, venues, code, source, issued_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12) ON CONFLICT DO NOTHING RETURNING *`,
    [tenant, claims.serial, claims.product_cid, claims.kind, claims.rights ?? null, claims.currency ?? null, iso(claims.nbf * 1000), iso(claims.exp * 1000), JSON.stringify(claims.venues), body['code'], device, r.payload.issued_at],
  );
  return rows[0] ? cloudEntitlement(rows[0]) : undefined;
}

/**
 * When the serial's redemptions (all devices, undone ones excepted) exceed its rights: the signed proof, upserted in
 * `conflicts`, and a DOUBLE_SPEND alert when it is new or grew. Rights come from the cloud's entitlement, else from what
 * a redeemer's INTENT receipt read off the token.
 */
async function checkDoubleSpend(sql: Sql, tenant: string, device: string, serial: string, now: number): Promise<void> {
  const known = await sql.query<{ product_cid: string; kind: string; rights: number | null }>(
    `SELECT product_cid, kind, rights, 0 AS pick FROM cloud_entitlements WHERE tenant = $1 AND serial = $2
     UNION ALL SELECT product_cid, kind, rights, 1 AS pick FROM seen_tokens WHERE tenant = $1 AND serial = $2 ORDER BY pick LIMIT 1`,
    [tenant, serial],
  );
  const token = known[0];
  if (!token) return;
  const rights = countableRights(token.kind, token.rights === null ? null : Number(token.rights));
  if (rights === null) return;
  const spends = await sql.query<SpendRow>(
    'SELECT receipt_id, device, amount, issued_at_text, envelope FROM redemptions WHERE tenant = $1 AND serial = $2 AND NOT undone ORDER BY issued_at_text, receipt_id',
    [tenant, serial],
  );
  const evidence: SpendEvidence[] = spends.map((s) => ({ device: s.device, receipt_id: s.receipt_id, receipt: s.envelope, issued_at: s.issued_at_text, amount: Number(s.amount) }));
  const verdict = adjudicate(rights, evidence);
  if (verdict.used <= rights) return;
  const [previous] = await sql.query<{ used: number }>('SELECT used FROM conflicts WHERE tenant = $1 AND serial = $2', [tenant, serial]);
  if (previous && Number(previous.used) === verdict.used) return;
  const key = await tenantKey(sql, tenant);
  const proof: DoubleSpendProof = {
    v: DOUBLE_SPEND_VERSION, tenant, serial, product_cid: token.product_cid, rights, used: verdict.used, evidence,
    adjudication: { rule: 'earliest-first', honoured: verdict.honoured, over: verdict.over }, issuer: key.keyid, issued_at: iso(now),
  };
  const envelope = signEnvelope(DOUBLE_SPEND_PAYLOAD_TYPE, canonicalBytes(proof), [key]);
  await sql.query(
    `INSERT INTO conflicts (tenant, serial, rights, used, proof, created_at, updated_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6)
     ON CONFLICT (tenant, serial) DO UPDATE SET rights = excluded.rights, used = excluded.used, proof = excluded.proof, updated_at = excluded.updated_at`,
    [tenant, serial, rights, verdict.used, JSON.stringify(envelope), iso(now)],
  );
  const devices = [...new Set(evidence.map((e) => e.device))];
  await sql.query('INSERT INTO alerts (tenant, device, code, message, evidence) VALUES ($1, $2, $3, $4, $5::jsonb)', [
    tenant, device, 'DOUBLE_SPEND',
    `Entitlement ${serial} was redeemed for ${verdict.used} of ${rights} rights by ${devices.length} device(s); ${verdict.over.length} redemption(s) beyond its rights (earliest first honoured).`,
    JSON.stringify({ serial, over: verdict.over, proof: envelope }),
  ]);
}
