/**
 * What the sync module keeps on the device (issue 16 §4–§6): the enrollment, the pull checkpoint and the time the
 * deny list was last complete, the cloud's accepted size of this device's log and its co-signatures, the products'
 * protections, the leases this device holds and every redemption counted against them. Owns the `sync_*` tables.
 *
 * The redeem guard ({@link SyncState.judge}, {@link SyncState.record}, {@link SyncState.undoUse}) reads and writes
 * these tables inside the entitlements module's redemption transaction (same SQLite connection): the lease check and
 * the use it allows commit together, so two screens can never both take a lease's last right.
 */
import type { DsseEnvelope } from '../../common/dsse.js';
import type { EnrollResponse, Lease, LeaseBalance, ProductProtection, Protection } from '../../common/cloud.js';
import type { RedeemLease } from '../../common/entitlements.js';
import type { TokenClaims } from '../../common/entitlement-token.js';
import type { JsonObject } from '../../common/receipt.js';
import type { Migration, Store } from '../store/index.js';

/** Stored at enrollment: who this device is to the cloud. */
export interface Enrollment extends EnrollResponse {
  url: string;
  enrolled_at: string;
}

export interface StoredLease extends LeaseBalance {
  nbf: string;
  envelope: DsseEnvelope;
}

export type GuardJudgement =
  | { ok: true; protection: Protection; lease: string | null; beyond: boolean; before?: RedeemLease; after?: RedeemLease; note?: string }
  | { ok: false; verdict: 'NO_LEASE' | 'LEASE_EXHAUSTED' | 'DENY_LIST_STALE'; message: string; lease?: RedeemLease };

export interface SyncState {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown): void;
  enrollment(): Enrollment | undefined;
  product(productCid: string): ProductProtection | undefined;
  putProduct(p: ProductProtection): void;
  putEntitlement(serial: string, body: unknown): void;
  /** Inserts a lease verified by the caller; false when it was already known. */
  addLease(lease: Lease, envelope: DsseEnvelope): boolean;
  /** Marks a lease recalled (it redeems no more); returns whether it was active. */
  recall(leaseId: string): boolean;
  markReturned(leaseId: string, at: number): void;
  /** Leases to give back: expired or recalled, not returned yet. */
  toReturn(now: number): Array<{ lease: string; used: number }>;
  leases(now: number): StoredLease[];
  /** Best active lease of a serial covering `amount`, or undefined. */
  activeLease(serial: string, amount: number, now: number): StoredLease | undefined;
  putCosignature(size: number, root: string, envelope: DsseEnvelope): void;
  /** The latest co-signature of a head whose size is at least `minSize`. */
  cosignature(minSize: number): { size: number; root: string; envelope: DsseEnvelope } | undefined;
  judge(claims: TokenClaims, amount: number, now: number): GuardJudgement | null;
  record(j: Extract<GuardJudgement, { ok: true }>, redemptionId: string, serial: string, amount: number, now: number): void;
  undoUse(redemptionId: string): JsonObject | null;
  /** Runs `fn` in one SQLite transaction (a savepoint when nested). */
  transaction<T>(fn: () => T): T;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sync state, products, cloud entitlements, leases, lease uses, co-signatures',
    up(db) {
      db.exec(`
        CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT, WITHOUT ROWID;
        CREATE TABLE sync_products (product_cid TEXT PRIMARY KEY, protection TEXT NOT NULL, bound INTEGER, deny_max_age_s INTEGER NOT NULL) STRICT, WITHOUT ROWID;
        CREATE TABLE sync_entitlements (serial TEXT PRIMARY KEY, body TEXT NOT NULL) STRICT, WITHOUT ROWID;
        CREATE TABLE sync_leases (
          lease TEXT PRIMARY KEY, serial TEXT NOT NULL, product_cid TEXT NOT NULL, rights INTEGER NOT NULL, nbf INTEGER NOT NULL, exp INTEGER NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('active', 'recalled', 'returned')), envelope TEXT NOT NULL, returned_at INTEGER
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX sync_leases_serial ON sync_leases (serial, state);
        CREATE TABLE sync_lease_uses (
          redemption_id TEXT PRIMARY KEY, serial TEXT NOT NULL, lease TEXT, amount INTEGER NOT NULL, beyond INTEGER NOT NULL, undone INTEGER NOT NULL DEFAULT 0, at INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX sync_lease_uses_lease ON sync_lease_uses (lease, undone);
        CREATE INDEX sync_lease_uses_serial ON sync_lease_uses (serial, beyond, undone);
        CREATE TABLE sync_cosignatures (size INTEGER PRIMARY KEY, root TEXT NOT NULL, envelope TEXT NOT NULL) STRICT;
      `);
    },
  },
];

interface LeaseRow { lease: string; serial: string; product_cid: string; rights: number; nbf: number; exp: number; state: 'active' | 'recalled' | 'returned'; envelope: string; returned_at: number | null }

const iso = (ms: number) => new Date(ms).toISOString();

/** How long, said for a person: "3 h 20 min", "45 s". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
  return `${Math.round(h / 24)} days`;
}

export function openSyncState(store: Store): SyncState {
  store.migrate('sync', MIGRATIONS);
  const db = store.db;
  const stmt = {
    get: db.prepare<[string], { value: string }>('SELECT value FROM sync_state WHERE key = ?'),
    set: db.prepare('INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    product: db.prepare<[string], { product_cid: string; protection: Protection; bound: number | null; deny_max_age_s: number }>('SELECT * FROM sync_products WHERE product_cid = ?'),
    putProduct: db.prepare('INSERT INTO sync_products (product_cid, protection, bound, deny_max_age_s) VALUES (?, ?, ?, ?) ON CONFLICT (product_cid) DO UPDATE SET protection = excluded.protection, bound = excluded.bound, deny_max_age_s = excluded.deny_max_age_s'),
    putEntitlement: db.prepare('INSERT INTO sync_entitlements (serial, body) VALUES (?, ?) ON CONFLICT (serial) DO UPDATE SET body = excluded.body'),
    addLease: db.prepare("INSERT INTO sync_leases (lease, serial, product_cid, rights, nbf, exp, state, envelope) VALUES (?, ?, ?, ?, ?, ?, 'active', ?) ON CONFLICT DO NOTHING"),
    recall: db.prepare<[string]>("UPDATE sync_leases SET state = 'recalled' WHERE lease = ? AND state = 'active'"),
    returned: db.prepare<[number, string]>("UPDATE sync_leases SET state = 'returned', returned_at = ? WHERE lease = ? AND state <> 'returned'"),
    leases: db.prepare<[], LeaseRow>('SELECT * FROM sync_leases ORDER BY exp'),
    leasesOf: db.prepare<[string], LeaseRow>("SELECT * FROM sync_leases WHERE serial = ? AND state = 'active' ORDER BY exp, lease"),
    lastLeaseOf: db.prepare<[string], LeaseRow>('SELECT * FROM sync_leases WHERE serial = ? ORDER BY exp DESC LIMIT 1'),
    toReturn: db.prepare<[number], LeaseRow>("SELECT * FROM sync_leases WHERE (state = 'recalled') OR (state = 'active' AND exp <= ?)"),
    usedOf: db.prepare<[string], { used: number | null }>('SELECT sum(amount) AS used FROM sync_lease_uses WHERE lease = ? AND undone = 0'),
    beyondOf: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM sync_lease_uses WHERE serial = ? AND beyond = 1 AND undone = 0'),
    insertUse: db.prepare('INSERT INTO sync_lease_uses (redemption_id, serial, lease, amount, beyond, at) VALUES (?, ?, ?, ?, ?, ?)'),
    use: db.prepare<[string], { lease: string | null; beyond: number; undone: number }>('SELECT lease, beyond, undone FROM sync_lease_uses WHERE redemption_id = ?'),
    undoUse: db.prepare<[string]>('UPDATE sync_lease_uses SET undone = 1 WHERE redemption_id = ?'),
    putCosig: db.prepare('INSERT INTO sync_cosignatures (size, root, envelope) VALUES (?, ?, ?) ON CONFLICT (size) DO UPDATE SET root = excluded.root, envelope = excluded.envelope'),
    cosig: db.prepare<[number], { size: number; root: string; envelope: string }>('SELECT * FROM sync_cosignatures WHERE size >= ? ORDER BY size DESC LIMIT 1'),
  };

  const usedOf = (lease: string) => stmt.usedOf.get(lease)?.used ?? 0;
  const balance = (r: LeaseRow, now: number): StoredLease => {
    const used = usedOf(r.lease);
    const state: LeaseBalance['state'] = r.state === 'active' && r.exp <= now ? 'expired' : r.state;
    return {
      lease: r.lease, serial: r.serial, product_cid: r.product_cid, rights: r.rights, used, left: Math.max(0, r.rights - used),
      nbf: iso(r.nbf), exp: iso(r.exp), state, envelope: JSON.parse(r.envelope) as DsseEnvelope,
    };
  };
  const view = (l: StoredLease | undefined, protection: Protection, usedNow = 0, extra: Partial<RedeemLease> = {}): RedeemLease => ({
    lease: l?.lease ?? null,
    rights: l?.rights ?? 0,
    used: (l?.used ?? 0) + usedNow,
    left: Math.max(0, (l?.left ?? 0) - usedNow),
    exp: l?.exp ?? null,
    protection,
    ...extra,
  });
  const usable = (r: LeaseRow, now: number) => r.state === 'active' && r.nbf <= now && now < r.exp;

  const state: SyncState = {
    get<T>(key: string) {
      const row = stmt.get.get(key);
      return row ? (JSON.parse(row.value) as T) : undefined;
    },
    set(key, value) {
      stmt.set.run(key, JSON.stringify(value));
    },
    enrollment: () => state.get<Enrollment>('enrollment'),
    product(productCid) {
      const r = stmt.product.get(productCid);
      return r ? { product_cid: r.product_cid, protection: r.protection, ...(r.bound !== null ? { bound: r.bound } : {}), deny_max_age_s: r.deny_max_age_s } : undefined;
    },
    putProduct(p) {
      stmt.putProduct.run(p.product_cid, p.protection, p.bound ?? null, p.deny_max_age_s);
    },
    putEntitlement(serial, body) {
      stmt.putEntitlement.run(serial, JSON.stringify(body));
    },
    addLease(lease, envelope) {
      return stmt.addLease.run(lease.lease, lease.serial, lease.product_cid, lease.rights, Date.parse(lease.nbf), Date.parse(lease.exp), JSON.stringify(envelope)).changes > 0;
    },
    recall: (leaseId) => stmt.recall.run(leaseId).changes > 0,
    markReturned(leaseId, at) {
      stmt.returned.run(at, leaseId);
    },
    toReturn: (now) => stmt.toReturn.all(now).map((r) => ({ lease: r.lease, used: usedOf(r.lease) })),
    leases: (now) => stmt.leases.all().map((r) => balance(r, now)),
    activeLease(serial, amount, now) {
      for (const r of stmt.leasesOf.all(serial)) {
        if (!usable(r, now)) continue;
        const b = balance(r, now);
        if (b.left >= amount) return b;
      }
      return undefined;
    },
    putCosignature(size, root, envelope) {
      stmt.putCosig.run(size, root, JSON.stringify(envelope));
    },
    cosignature(minSize) {
      const r = stmt.cosig.get(minSize);
      return r ? { size: r.size, root: r.root, envelope: JSON.parse(r.envelope) as DsseEnvelope } : undefined;
    },

    judge(claims, amount, now) {
      const p = state.product(claims.product_cid);
      if (!p) return null;
      // Fail closed on an old deny list: a revocation may be waiting in the cloud that this device has not heard of.
      const asOf = state.get<string>('deny_list_as_of');
      const maxMs = p.deny_max_age_s * 1000;
      const age = asOf === undefined ? Infinity : now - Date.parse(asOf);
      if (age > maxMs) {
        const what = asOf === undefined ? 'was never pulled from the cloud' : `is ${duration(age)} old (last complete pull ${asOf})`;
        return { ok: false, verdict: 'DENY_LIST_STALE', message: `Deny list too old: the list of revoked passes for this product ${what}, and may be at most ${duration(maxMs)} old. Connect this device to the network (tessera sync now) and scan again.` };
      }
      if (p.protection === 'detect') return { ok: true, protection: 'detect', lease: null, beyond: false };
      const lease = state.activeLease(claims.serial, amount, now);
      if (lease) {
        return { ok: true, protection: p.protection, lease: lease.lease, beyond: false, before: view(lease, p.protection), after: view(lease, p.protection, amount) };
      }
      // No lease covers it: the last lease known for the serial (used up, expired, recalled or returned) says why.
      const lastRow = stmt.lastLeaseOf.get(claims.serial);
      const last = lastRow ? balance(lastRow, now) : undefined;
      if (p.protection === 'bound') {
        const bound = p.bound ?? 0;
        const beyond = stmt.beyondOf.get(claims.serial)!.n;
        if (beyond < bound) {
          const after = view(last && last.state === 'active' ? last : undefined, 'bound', 0, { beyond: beyond + 1, bound });
          return {
            ok: true, protection: 'bound', lease: null, beyond: true, before: { ...after, beyond }, after,
            note: `Beyond the lease: ${beyond + 1} of ${bound} offline redemptions beyond the lease used on this device; the cloud reconciles at sync.`,
          };
        }
      }
      const lv = view(last && last.state === 'active' ? last : undefined, p.protection, 0, p.protection === 'bound' ? { beyond: stmt.beyondOf.get(claims.serial)!.n, bound: p.bound ?? 0 } : {});
      const fix = 'Connect this device to the network so it can get a grant, or ask the operator to lease rights to it (tessera cloud, POST /v1/leases).';
      const bounded = p.protection === 'bound' ? ` and all ${p.bound ?? 0} redemptions allowed beyond the lease are used` : '';
      if (last && last.state === 'active' && now < Date.parse(last.exp) && Date.parse(last.nbf) <= now) {
        return { ok: false, verdict: 'LEASE_EXHAUSTED', message: `Lease used up: this device has used ${last.used} of the ${last.rights} ${last.rights === 1 ? 'right' : 'rights'} leased to it${bounded}. ${fix}`, lease: lv };
      }
      const why = !last ? 'this device holds no lease on this pass' : last.state === 'expired' ? `its lease expired at ${last.exp}` : last.state === 'recalled' ? 'its lease was recalled by the operator' : last.state === 'returned' ? 'its lease was returned to the cloud' : `its lease starts at ${last.nbf}`;
      return { ok: false, verdict: 'NO_LEASE', message: `No lease: ${why}${bounded}, and this product may be redeemed offline only within a lease. ${fix}`, lease: lv };
    },
    record(j, redemptionId, serial, amount, now) {
      if (j.protection === 'detect') return;
      stmt.insertUse.run(redemptionId, serial, j.lease, amount, j.beyond ? 1 : 0, now);
    },
    undoUse(redemptionId) {
      const u = stmt.use.get(redemptionId);
      if (!u || u.undone) return null;
      stmt.undoUse.run(redemptionId);
      return { lease: u.lease, beyond_lease: u.beyond === 1 };
    },
    transaction: (fn) => db.transaction(fn)(),
  };
  return state;
}
