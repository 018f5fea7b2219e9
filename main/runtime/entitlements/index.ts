/**
 * Entitlements (issue 14 §5–§6, seed 000 §4.3, §6.3, §7.2): issues signed tokens for product sessions, keeps
 * the local redemption ledger (rights used per serial), checks and redeems codes offline, undoes a mis-tap
 * within {@link UNDO_WINDOW_MS}, revokes serials, expires entitlements on a timer, and holds the issuing
 * switch (degraded mode). Owns the `ent_*` tables.
 *
 * ## Atomicity
 * A redemption is one synchronous SQLite transaction: the rights check, the ledger row, the entitlement
 * capsule (first time) and its signed REDEMPTION receipt (with its device-log leaf) and the journal events.
 * kill -9 leaves all of it or none; two screens redeeming one single-use token are serialized by that
 * transaction, so exactly one wins and the other reads the winner's row (ALREADY_USED, with time and place).
 *
 * ## Issuer trust
 * The device key (it issues what this device sells) plus the keys of `<data>/issuers` (a trust folder:
 * `<name>.pem` files and `revoked.json`). A token names its issuer by an 8-byte kid; the kid is only a hint,
 * the signature is checked with the key the folder holds.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { CLOCK_SKEW_S, encodeToken, kidOfKeyid, verifyToken, windowState } from '../../common/entitlement-token.js';
import type { DecodedToken, EntitlementKind, IssuerLookup, TokenClaims } from '../../common/entitlement-token.js';
import { TesseraError } from '../../common/errors.js';
import { CAPSULE_VERSION, capsuleId } from '../../common/receipt.js';
import type { Capsule, JsonObject } from '../../common/receipt.js';
import { setLongTimeout } from '../../common/timers.js';
import type { LongTimeout } from '../../common/timers.js';
import type { Bus } from '../bus/index.js';
import type { SigningKey } from '../keys/index.js';
import { verifyEd25519 } from '../keys/index.js';
import type { Disposable } from '../lifecycle/index.js';
import { toDisposable } from '../lifecycle/index.js';
import type { Logger } from '../log/index.js';
import type { ReceiptStore } from '../receipts/store.js';
import type { Migration, Store } from '../store/index.js';
import type { TrustView } from '../trust/index.js';
import { UNDO_WINDOW_MS } from '../../common/entitlements.js';
import type { EntitlementChange, EntitlementState, IssueRequest, IssuedEntitlement, IssuingState, RedeemAnswer, RedeemLease, RedeemRequest, RedeemVerdict, RedemptionRecord } from '../../common/entitlements.js';
import type { Protection } from '../../common/cloud.js';

export * from '../../common/entitlements.js';
export { CLOCK_SKEW_S };

export interface Entitlements extends Disposable {
  /**
   * Issues a token signed by the device key; journals `entitlement.issued` and `token.issued`. Runs inside the
   * caller's SQLite transaction when there is one (events reach subscribers only once it committed).
   * @throws TesseraError ISSUING_PAUSED while the issuing switch is off; VALIDATION_FAILED for a malformed request.
   */
  issue(req: IssueRequest): IssuedEntitlement;
  list(q?: { session?: string; user?: string; state?: string; limit?: number }): IssuedEntitlement[];
  /** Revokes the active entitlements of a session (cancel, refund); returns how many. */
  revokeForSession(sessionId: string, reason: string): number;
  /** Revokes one serial on this device (any issuer's); journals `entitlement.revoked`. */
  revoke(serial: string, reason: string): void;
  /** What a redemption would answer, writing nothing (verdict VALID when it would redeem). */
  check(code: string, venue: string, amount?: number): RedeemAnswer;
  redeem(req: RedeemRequest): RedeemAnswer;
  /**
   * {@link redeem}, committed together with the other redemptions asked in the same turn of the event loop: one
   * SQLite transaction for all of them, each in its own savepoint, so one that fails takes only itself back. Each
   * answer is given once the transaction has committed, never before; a failed commit fails them all (nothing of
   * them was written). What many staff screens at once use (`POST /api/redeem`).
   */
  redeemSoon(req: RedeemRequest): Promise<RedeemAnswer>;
  /**
   * Undoes a redemption within {@link UNDO_WINDOW_MS} with a compensating REDEMPTION receipt.
   * @throws TesseraError REDEMPTION_NOT_FOUND, ALREADY_UNDONE, UNDO_WINDOW_CLOSED.
   */
  undo(redemptionId: string, reason?: string): RedeemAnswer;
  /** Newest first; `q` matches a serial prefix, venue, screen, product or title; `before` is a redemption id. */
  history(q?: { q?: string; venue?: string; limit?: number; before?: string }): RedemptionRecord[];
  issuing(): IssuingState;
  /** Turns issuing off (`trutta.degraded`) or on (`trutta.restored`); persisted. Redemption goes on either way. */
  setIssuing(paused: boolean, reason?: string): void;
  /** Called after an entitlement issued here is used up, expired or revoked (and when an undo reactivates it). */
  onChange(listener: (change: EntitlementChange) => void): Disposable;
}

/**
 * Issue 16: the check of products the cloud protects (`prevent`, `bound`, `detect`), provided by main/runtime/sync.
 * Without a guard — or for a product the guard knows no protection of (`judge` → null) — redemption is exactly what
 * it was before the cloud: the offline checks and the local ledger.
 */
export interface RedeemGuard {
  /** False while the device is not enrolled: redemption is then exactly what it was before the cloud. */
  active(): boolean;
  /**
   * Synchronous, outside any transaction: true when an online grant should be tried before redeeming (a protected
   * product, no lease here that covers `amount`, and the cloud reachable as far as the device knows).
   */
  wantsGrant(claims: TokenClaims, amount: number): boolean;
  /** Asks the cloud for a lease; settles within its own timeout and never rejects (offline, the guard decides). */
  grant(claims: TokenClaims, amount: number): Promise<void>;
  /**
   * Inside the redemption transaction, after every offline check passed: may this device redeem `amount` now?
   * Null: the product is not protected (nothing changes). Reads only; {@link record} writes.
   */
  judge(claims: TokenClaims, amount: number, now: number): GuardVerdict | null;
  /** Inside the same transaction, once the redemption row and receipt are written: counts it against the lease. */
  record(allowed: GuardAllowed, redemptionId: string, serial: string, amount: number, now: number): void;
  /** Inside the undo's transaction: gives the right back; returns the lease fields for the undo receipt's body, or null. */
  undo(redemptionId: string): JsonObject | null;
}

export type GuardVerdict = GuardAllowed | { ok: false; verdict: 'NO_LEASE' | 'LEASE_EXHAUSTED' | 'DENY_LIST_STALE'; message: string; lease?: RedeemLease };

export interface GuardAllowed {
  ok: true;
  protection: Protection;
  /** The lease the redemption uses; null for `detect` and for a `bound` redemption beyond the lease. */
  lease: string | null;
  beyond: boolean;
  /** The balance before and after this redemption (absent for `detect`). */
  before?: RedeemLease;
  after?: RedeemLease;
  /** Said to staff after "Redeemed": the bound risk. */
  note?: string;
}

export interface EntitlementsOptions {
  /** Issue 16: leases and deny-list freshness of products the cloud protects (main/runtime/sync). */
  guard?: RedeemGuard;
  store: Store;
  bus: Pick<Bus, 'stageMany'>;
  receipts: ReceiptStore;
  deviceKey: SigningKey;
  /** `<data>/issuers`, opened with openTrustStore (create: true). */
  issuers: TrustView & { dir?: string };
  logger: Logger;
  clock?: () => number;
  /** A product's title by cid (the catalogue's), for passes issued elsewhere (the cloud, another kiosk). */
  productTitle?: (productCid: string) => string | undefined;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'issued entitlements, seen tokens, redemption ledger, revocations, settings',
    up(db) {
      db.exec(`
        CREATE TABLE ent_issued (
          serial TEXT PRIMARY KEY, code TEXT NOT NULL, session TEXT NOT NULL, product_cid TEXT NOT NULL, product_ref TEXT NOT NULL,
          title TEXT, kind TEXT NOT NULL, rights_total INTEGER, currency TEXT, valid_from INTEGER NOT NULL, valid_until INTEGER NOT NULL,
          venues TEXT NOT NULL, user_id TEXT, state TEXT NOT NULL CHECK (state IN ('active', 'used', 'expired', 'revoked')),
          issued_at INTEGER NOT NULL, state_at INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX ent_issued_session ON ent_issued (session);
        CREATE INDEX ent_issued_user ON ent_issued (user_id);
        CREATE INDEX ent_issued_active ON ent_issued (state, valid_until);
        CREATE TABLE ent_tokens (
          serial TEXT PRIMARY KEY, capsule TEXT NOT NULL, issuer TEXT NOT NULL, product_cid TEXT NOT NULL, kind TEXT NOT NULL,
          rights INTEGER, currency TEXT, nbf INTEGER NOT NULL, exp INTEGER NOT NULL, venues TEXT NOT NULL, first_seen INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE ent_redemptions (
          row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, serial TEXT NOT NULL, venue TEXT NOT NULL, screen TEXT, amount INTEGER,
          at INTEGER NOT NULL, undo_until INTEGER NOT NULL, receipt_id TEXT NOT NULL, capsule TEXT NOT NULL,
          rights_before INTEGER, rights_after INTEGER, undone_at INTEGER, undo_reason TEXT, undo_receipt_id TEXT
        ) STRICT;
        CREATE INDEX ent_redemptions_serial ON ent_redemptions (serial, undone_at);
        CREATE TABLE ent_revoked (serial TEXT PRIMARY KEY, reason TEXT NOT NULL, at INTEGER NOT NULL) STRICT, WITHOUT ROWID;
        CREATE TABLE ent_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT, WITHOUT ROWID;
      `);
    },
  },
];

interface IssuedRow {
  serial: string; code: string; session: string; product_cid: string; product_ref: string; title: string | null; kind: EntitlementKind;
  rights_total: number | null; currency: string | null; valid_from: number; valid_until: number; venues: string; user_id: string | null;
  state: EntitlementState; issued_at: number;
}
interface RedemptionRow {
  row: number; id: string; serial: string; venue: string; screen: string | null; amount: number | null; at: number; undo_until: number;
  receipt_id: string; capsule: string; rights_before: number | null; rights_after: number | null; undone_at: number | null; undo_reason: string | null;
}

const iso = (ms: number) => new Date(ms).toISOString();
const hhmm = (ms: number) => `${iso(ms).slice(11, 16)} UTC`;
const OK_VERDICTS: ReadonlySet<RedeemVerdict> = new Set(['REDEEMED', 'VALID', 'UNDONE']);
/** How long the issuer-key map is reused while the trust folder's mtime has not changed. */
const ISSUER_CACHE_MS = 1_000;

function answer(verdict: RedeemVerdict, message: string, extra: Partial<RedeemAnswer> = {}): RedeemAnswer {
  return { verdict, ok: OK_VERDICTS.has(verdict), message, ...extra };
}

/** Opens the entitlements module: migrates its tables, catches up on expiries and arms the expiry timers. */
export function createEntitlements(options: EntitlementsOptions): Entitlements {
  const { store, bus, receipts, deviceKey, issuers, logger, guard } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('entitlements', MIGRATIONS);
  const db = store.db;
  const listeners = new Set<(change: EntitlementChange) => void>();
  const timers = new Map<string, LongTimeout>();
  let disposed = false;
  /** While a group of redemptions is being written: what to do once it has committed (deliver events, notify). */
  let afterCommit: Array<() => void> | null = null;
  const whenCommitted = (fn: () => void): void => {
    if (afterCommit) afterCommit.push(fn);
    else fn();
  };

  const stmt = {
    issuedBySerial: db.prepare<[string], IssuedRow>('SELECT * FROM ent_issued WHERE serial = ?'),
    insertIssued: db.prepare(`INSERT INTO ent_issued (serial, code, session, product_cid, product_ref, title, kind, rights_total, currency, valid_from, valid_until, venues, user_id, state, issued_at, state_at)
      VALUES (@serial, @code, @session, @product_cid, @product_ref, @title, @kind, @rights_total, @currency, @valid_from, @valid_until, @venues, @user_id, 'active', @issued_at, @issued_at)`),
    setState: db.prepare<[EntitlementState, number, string, EntitlementState]>('UPDATE ent_issued SET state = ?, state_at = ? WHERE serial = ? AND state = ?'),
    token: db.prepare<[string], { serial: string; capsule: string }>('SELECT serial, capsule FROM ent_tokens WHERE serial = ?'),
    insertToken: db.prepare('INSERT INTO ent_tokens (serial, capsule, issuer, product_cid, kind, rights, currency, nbf, exp, venues, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    used: db.prepare<[string], { n: number; total: number | null }>('SELECT count(*) AS n, sum(amount) AS total FROM ent_redemptions WHERE serial = ? AND undone_at IS NULL'),
    usedAt: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM ent_redemptions WHERE serial = ? AND venue = ? AND undone_at IS NULL'),
    last: db.prepare<[string], RedemptionRow>('SELECT * FROM ent_redemptions WHERE serial = ? AND undone_at IS NULL ORDER BY row DESC LIMIT 1'),
    lastAt: db.prepare<[string, string], RedemptionRow>('SELECT * FROM ent_redemptions WHERE serial = ? AND venue = ? AND undone_at IS NULL ORDER BY row DESC LIMIT 1'),
    redemption: db.prepare<[string], RedemptionRow>('SELECT * FROM ent_redemptions WHERE id = ?'),
    insertRedemption: db.prepare(`INSERT INTO ent_redemptions (id, serial, venue, screen, amount, at, undo_until, receipt_id, capsule, rights_before, rights_after)
      VALUES (@id, @serial, @venue, @screen, @amount, @at, @undo_until, @receipt_id, @capsule, @rights_before, @rights_after)`),
    markUndone: db.prepare<[number, string | null, string, string]>('UPDATE ent_redemptions SET undone_at = ?, undo_reason = ?, undo_receipt_id = ? WHERE id = ? AND undone_at IS NULL'),
    revoked: db.prepare<[string], { reason: string; at: number }>('SELECT reason, at FROM ent_revoked WHERE serial = ?'),
    insertRevoked: db.prepare('INSERT OR IGNORE INTO ent_revoked (serial, reason, at) VALUES (?, ?, ?)'),
    setting: db.prepare<[string], { value: string }>('SELECT value FROM ent_settings WHERE key = ?'),
    putSetting: db.prepare('INSERT INTO ent_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    activeIssued: db.prepare<[], IssuedRow>("SELECT * FROM ent_issued WHERE state = 'active'"),
  };

  // ---------------------------------------------------------------- issuer keys by kid

  let issuerCache: { at: number; mtime: number; byKid: Map<string, string> } | undefined;
  const deviceKid = kidOfKeyid(deviceKey.keyid);
  const folderMtime = (): number => {
    try {
      return issuers.dir ? statSync(issuers.dir).mtimeMs : 0;
    } catch {
      return -1;
    }
  };
  const lookupIssuer: IssuerLookup = (kid) => {
    if (kid === deviceKid) return { state: 'trusted', keyid: deviceKey.keyid, publicKeyRaw: deviceKey.publicKeyRaw, name: 'this device' };
    const now = clock();
    const mtime = folderMtime();
    if (!issuerCache || issuerCache.mtime !== mtime || now - issuerCache.at > ISSUER_CACHE_MS) {
      const byKid = new Map<string, string>();
      for (const k of issuers.list()) byKid.set(kidOfKeyid(k.keyid), k.keyid);
      for (const r of issuers.revocations()) if (/^b3:[0-9a-f]{64}$/.test(r.keyid)) byKid.set(kidOfKeyid(r.keyid), r.keyid);
      issuerCache = { at: now, mtime, byKid };
    }
    const keyid = issuerCache.byKid.get(kid);
    if (!keyid) return { state: 'unknown' };
    const found = issuers.lookup(keyid);
    if (found.state === 'trusted') return { state: 'trusted', keyid, publicKeyRaw: found.publicKeyRaw, name: found.name };
    if (found.state === 'revoked') return { state: 'revoked', keyid, reason: found.reason };
    return { state: 'unknown' };
  };

  // ---------------------------------------------------------------- helpers

  const notify = (change: EntitlementChange): void => {
    for (const l of listeners) {
      try {
        l(change);
      } catch (err) {
        logger.warn('an entitlements listener threw', { error: err });
      }
    }
  };

  const toIssued = (r: IssuedRow): IssuedEntitlement => {
    const left = rightsLeftOfIssued(r);
    return {
      serial: r.serial,
      code: r.code,
      product_runtime_session_id: r.session,
      product_cid: r.product_cid,
      product_ref: r.product_ref,
      ...(r.title !== null ? { title: r.title } : {}),
      kind: r.kind,
      ...(r.rights_total !== null ? { rights_total: r.rights_total } : r.kind === 'single_use' ? { rights_total: 1 } : {}),
      ...(left !== undefined ? { rights_left: left } : {}),
      ...(r.currency !== null ? { currency: r.currency } : {}),
      valid_from: iso(r.valid_from),
      valid_until: iso(r.valid_until),
      venues: JSON.parse(r.venues) as string[],
      ...(r.user_id !== null ? { user_id: r.user_id } : {}),
      state: r.state,
      issued_at: iso(r.issued_at),
    };
  };

  /** Rights left on this device's ledger; time passes count per venue, so only their total use shows (undefined). */
  function rightsLeftOfIssued(r: Pick<IssuedRow, 'serial' | 'kind' | 'rights_total'>): number | undefined {
    const used = stmt.used.get(r.serial)!;
    if (r.kind === 'single_use') return Math.max(0, 1 - used.n);
    if (r.kind === 'multi_use') return Math.max(0, (r.rights_total ?? 0) - used.n);
    if (r.kind === 'stored_value') return Math.max(0, (r.rights_total ?? 0) - (used.total ?? 0));
    return undefined;
  }

  /** Rights before this redemption, for the token's kind (time_pass: at this venue; undefined: unlimited). */
  function rightsBefore(claims: TokenClaims, venue: string): number | undefined {
    if (claims.kind === 'time_pass') return claims.rights === undefined ? undefined : Math.max(0, claims.rights - stmt.usedAt.get(claims.serial, venue)!.n);
    return rightsLeftOfIssued({ serial: claims.serial, kind: claims.kind, rights_total: claims.rights ?? null });
  }

  function entitlementView(claims: TokenClaims, rightsLeft: number | undefined): NonNullable<RedeemAnswer['entitlement']> {
    const issued = stmt.issuedBySerial.get(claims.serial);
    const title = issued?.title ?? options.productTitle?.(claims.product_cid);
    return {
      serial: claims.serial,
      product_cid: claims.product_cid,
      ...(issued ? { product_ref: issued.product_ref } : {}),
      ...(title ? { title } : {}),
      kind: claims.kind,
      ...(claims.kind === 'single_use' ? { rights_total: 1 } : claims.rights !== undefined ? { rights_total: claims.rights } : {}),
      ...(rightsLeft !== undefined ? { rights_left: rightsLeft } : {}),
      ...(claims.currency !== undefined ? { currency: claims.currency } : {}),
      valid_from: iso(claims.nbf * 1000),
      valid_until: iso(claims.exp * 1000),
      venues: claims.venues,
    };
  }

  const redemptionView = (r: RedemptionRow): NonNullable<RedeemAnswer['redemption']> => ({
    id: r.id,
    at: iso(r.at),
    venue: r.venue,
    ...(r.screen !== null ? { screen: r.screen } : {}),
    ...(r.amount !== null ? { amount: r.amount } : {}),
    undo_until: iso(r.undo_until),
    receipt_id: r.receipt_id,
    capsule: r.capsule,
    ...(r.undone_at !== null ? { undone_at: iso(r.undone_at) } : {}),
  });

  const previousOf = (r: RedemptionRow | undefined): RedeemAnswer['previous'] | undefined =>
    r ? { at: iso(r.at), venue: r.venue, ...(r.screen !== null ? { screen: r.screen } : {}) } : undefined;

  interface Judged { verdict: RedeemVerdict; message: string; token?: DecodedToken; issuer?: string; rightsBefore?: number; previous?: RedemptionRow }

  /** Every offline check in the plan's order; the ledger part must run inside the write transaction to count. */
  function judge(code: string, venue: string, amount: number | undefined): Judged {
    const verified = verifyToken(code, lookupIssuer, verifyEd25519);
    if (!verified.ok) {
      const message = verified.reason === 'UNKNOWN_ISSUER' ? 'Unknown issuer: this code was not issued by anyone this device trusts.'
        : verified.reason === 'REVOKED' ? "Revoked: this code's issuer is no longer trusted."
        : 'Damaged code: it cannot be read or was altered. Ask for the code again or type it.';
      return { verdict: verified.reason, message, ...(verified.token ? { token: verified.token } : {}) };
    }
    return judgeVerified(verified.token, verified.issuer.keyid, venue, amount);
  }

  /** The checks after the signature: window, venue, local revocation, rights in the ledger (cheap: re-run in the write transaction). */
  function judgeVerified(token: DecodedToken, issuer: string, venue: string, amount: number | undefined): Judged {
    const claims = token.claims;
    const window = windowState(claims, Math.floor(clock() / 1000));
    if (window === 'expired') return { verdict: 'EXPIRED', message: `Expired on ${iso(claims.exp * 1000).slice(0, 16).replace('T', ' ')} UTC.`, token };
    if (window === 'not_yet_valid') return { verdict: 'NOT_YET_VALID', message: `Not valid yet: valid from ${iso(claims.nbf * 1000).slice(0, 16).replace('T', ' ')} UTC.`, token };
    if (claims.venues.length > 0 && !claims.venues.includes(venue)) return { verdict: 'NOT_VALID_HERE', message: `Not valid here: accepted at ${claims.venues.join(', ')}.`, token };
    const revoked = stmt.revoked.get(claims.serial);
    if (revoked) return { verdict: 'REVOKED', message: `Revoked: ${revoked.reason}.`, token };
    const before = rightsBefore(claims, venue);
    if (claims.kind === 'stored_value') {
      if (before !== undefined && (amount ?? 0) > before) {
        return { verdict: 'INSUFFICIENT_BALANCE', message: `Not enough left: ${before} of ${claims.rights} ${claims.currency} remain.`, token, rightsBefore: before };
      }
    } else if (before !== undefined && before <= 0) {
      const previous = claims.kind === 'time_pass' ? stmt.lastAt.get(claims.serial, venue) : stmt.last.get(claims.serial);
      const where = previous ? ` at ${previous.venue} at ${hhmm(previous.at)}` : '';
      return { verdict: 'ALREADY_USED', message: `Already used${where}.`, token, rightsBefore: 0, ...(previous ? { previous } : {}) };
    }
    return { verdict: 'VALID', message: 'Valid: it can be redeemed here.', token, issuer, ...(before !== undefined ? { rightsBefore: before } : {}) };
  }

  function checkAmount(amount: number | undefined): void {
    if (amount === undefined) return;
    if (!Number.isSafeInteger(amount) || amount <= 0) throw new TesseraError('VALIDATION_FAILED', 'amount is a positive integer in minor units.');
  }

  function toAnswer(j: Judged, venue: string): RedeemAnswer {
    const claims = j.token?.claims;
    return answer(j.verdict, j.message, {
      ...(claims ? { entitlement: entitlementView(claims, j.rightsBefore ?? (claims.kind === 'time_pass' ? undefined : rightsBefore(claims, venue))) } : {}),
      ...(j.previous ? { previous: previousOf(j.previous)! } : {}),
    });
  }

  // ---------------------------------------------------------------- expiry

  function expire(serial: string): void {
    timers.delete(serial);
    if (disposed || !store.isOpen) return;
    const now = clock();
    let row: IssuedRow | undefined;
    let deliver: (() => void) | undefined;
    db.transaction(() => {
      row = stmt.issuedBySerial.get(serial);
      if (!row || row.state !== 'active') return;
      // Fired early (a clock that moved back): look again in a second at the latest, never in a busy loop.
      if (row.valid_until > now) return void arm(row, 1_000);
      stmt.setState.run('expired', now, serial, 'active');
      deliver = bus.stageMany([{ topic: 'entitlement.expired', payload: { serial, product_runtime_session_id: row.session, product_ref: row.product_ref, valid_until: iso(row.valid_until) } }]).deliver;
    })();
    if (deliver && row) {
      deliver();
      notify({ serial, state: 'expired', product_runtime_session_id: row.session });
    }
  }

  function arm(row: Pick<IssuedRow, 'serial' | 'valid_until'>, atLeastMs = 0): void {
    timers.get(row.serial)?.cancel();
    timers.set(row.serial, setLongTimeout(() => expire(row.serial), Math.max(atLeastMs, row.valid_until - clock()), { unref: true }));
  }

  // Catch up on what expired while the runtime was down, then arm the rest.
  for (const row of stmt.activeIssued.all()) {
    if (row.valid_until <= clock()) expire(row.serial);
    else arm(row);
  }

  function markUsedUp(serial: string, now: number): EntitlementChange | undefined {
    const issued = stmt.issuedBySerial.get(serial);
    if (!issued || issued.state !== 'active') return undefined;
    stmt.setState.run('used', now, serial, 'active');
    timers.get(serial)?.cancel();
    timers.delete(serial);
    return { serial, state: 'used', product_runtime_session_id: issued.session };
  }

  // ---------------------------------------------------------------- the API

  // Redemptions asked in one turn of the event loop, written in one transaction (redeemSoon).
  const queue: Array<{ req: RedeemRequest; resolve: (a: RedeemAnswer) => void; reject: (e: unknown) => void }> = [];
  const flushQueue = (): void => {
    const batch = queue.splice(0, queue.length);
    const outcomes: Array<{ ok: true; answer: RedeemAnswer } | { ok: false; error: unknown }> = [];
    const deferred: Array<() => void> = [];
    afterCommit = deferred;
    try {
      receipts.transaction(() => {
        // Each redemption is a savepoint inside: one that throws rolls back alone and answers its own error.
        for (const { req } of batch) {
          try {
            outcomes.push({ ok: true, answer: api.redeem(req) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      // The commit itself failed (a full disk, a busy database): nothing of the batch was written.
      afterCommit = null;
      for (const b of batch) b.reject(error);
      return;
    }
    afterCommit = null;
    for (const fn of deferred) fn();
    batch.forEach((b, i) => {
      const o = outcomes[i]!;
      if (o.ok) b.resolve(o.answer);
      else b.reject(o.error);
    });
  };

  const api: Entitlements = {
    issue(req) {
      const state = this.issuing();
      if (state.paused) throw new TesseraError('ISSUING_PAUSED', `Issuing is paused${state.reason ? `: ${state.reason}` : ''}; redemption of existing entitlements goes on.`);
      if (!(req.valid_until > req.valid_from)) throw new TesseraError('VALIDATION_FAILED', 'valid_until must be after valid_from.');
      const rights = req.kind === 'multi_use' ? req.uses : req.kind === 'stored_value' ? req.amount : req.kind === 'time_pass' ? req.uses_per_venue : undefined;
      if ((req.kind === 'multi_use' || req.kind === 'stored_value') && (rights === undefined || !Number.isSafeInteger(rights) || rights <= 0)) {
        throw new TesseraError('VALIDATION_FAILED', `A ${req.kind} entitlement needs a positive ${req.kind === 'multi_use' ? 'uses' : 'amount'}.`);
      }
      if (req.kind === 'stored_value' && !/^[A-Z]{3}$/.test(req.currency ?? '')) throw new TesseraError('VALIDATION_FAILED', 'A stored_value entitlement needs an ISO 4217 currency.');
      const serial = randomBytes(12).toString('hex');
      const now = clock();
      let code: string;
      try {
        code = encodeToken({
          serial, product_cid: req.product_cid, kind: req.kind,
          ...(rights !== undefined ? { rights } : {}),
          ...(req.kind === 'stored_value' ? { currency: req.currency! } : {}),
          nbf: Math.floor(req.valid_from / 1000), exp: Math.ceil(req.valid_until / 1000), venues: req.venues, issuer_keyid: deviceKey.keyid,
        }, (m) => deviceKey.sign(m));
      } catch (err) {
        throw new TesseraError('VALIDATION_FAILED', `The entitlement cannot be encoded: ${(err as Error).message}.`);
      }
      const outer = db.inTransaction;
      let deliver: () => void = () => undefined;
      db.transaction(() => {
        stmt.insertIssued.run({
          serial, code, session: req.product_runtime_session_id, product_cid: req.product_cid, product_ref: req.product_ref, title: req.title ?? null,
          kind: req.kind, rights_total: rights ?? null, currency: req.currency ?? null, valid_from: req.valid_from, valid_until: req.valid_until,
          venues: JSON.stringify(req.venues), user_id: req.user_id ?? null, issued_at: now,
        });
        const common = { serial, product_runtime_session_id: req.product_runtime_session_id, product_cid: req.product_cid, product_ref: req.product_ref, kind: req.kind };
        deliver = bus.stageMany([
          { topic: 'entitlement.issued', payload: { ...common, ...(rights !== undefined ? { rights } : {}), valid_from: iso(req.valid_from), valid_until: iso(req.valid_until), venues: req.venues } },
          { topic: 'token.issued', payload: { ...common, issuer: deviceKey.keyid, length: code.length } },
        ]).deliver;
      })();
      // Inside a caller's transaction: deliver (and arm the timer) once it committed — the row is then visible.
      const after = (): void => {
        if (!stmt.issuedBySerial.get(serial)) return;
        deliver();
        arm({ serial, valid_until: req.valid_until });
      };
      if (outer) queueMicrotask(() => store.isOpen && after());
      else after();
      return toIssued(stmt.issuedBySerial.get(serial)!);
    },

    list(q = {}) {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.session) {
        where.push('session = ?');
        args.push(q.session);
      }
      if (q.user) {
        where.push('user_id = ?');
        args.push(q.user);
      }
      if (q.state) {
        where.push('state = ?');
        args.push(q.state);
      }
      const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
      const rows = db.prepare(`SELECT * FROM ent_issued ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at DESC LIMIT ${limit}`).all(...args) as IssuedRow[];
      return rows.map(toIssued);
    },

    revokeForSession(sessionId, reason) {
      const rows = db.prepare<[string], IssuedRow>("SELECT * FROM ent_issued WHERE session = ? AND state = 'active'").all(sessionId);
      for (const r of rows) this.revoke(r.serial, reason);
      return rows.length;
    },

    revoke(serial, reason) {
      if (!/^[0-9a-f]{24}$/.test(serial)) throw new TesseraError('VALIDATION_FAILED', 'A serial is 24 lowercase hex digits.');
      if (!reason.trim()) throw new TesseraError('VALIDATION_FAILED', 'A revocation needs a reason.');
      const now = clock();
      let change: EntitlementChange | undefined;
      let deliver: (() => void) | undefined;
      db.transaction(() => {
        if (!stmt.insertRevoked.run(serial, reason, now).changes) return;
        const issued = stmt.issuedBySerial.get(serial);
        if (issued && issued.state === 'active') {
          stmt.setState.run('revoked', now, serial, 'active');
          change = { serial, state: 'revoked', product_runtime_session_id: issued.session };
        }
        deliver = bus.stageMany([{ topic: 'entitlement.revoked', payload: { serial, reason, ...(issued ? { product_runtime_session_id: issued.session } : {}) } }]).deliver;
      })();
      timers.get(serial)?.cancel();
      timers.delete(serial);
      deliver?.();
      if (change) notify(change);
    },

    check(code, venue, amount) {
      checkAmount(amount);
      const j = judge(code, venue, amount);
      if (j.verdict !== 'VALID' || !guard) return toAnswer(j, venue);
      const claims = j.token!.claims;
      const g = guard.judge(claims, claims.kind === 'stored_value' ? amount ?? 0 : 1, clock());
      if (!g) return toAnswer(j, venue);
      if (!g.ok) return { ...toAnswer({ ...j, verdict: g.verdict, message: g.message }, venue), ...(g.lease ? { lease: g.lease } : {}) };
      return { ...toAnswer(j, venue), ...(g.before ? { lease: g.before } : {}) };
    },

    redeem(req) {
      checkAmount(req.amount);
      // Signature and window outside the transaction (pure CPU); the ledger check again inside it, where it counts.
      const pre = judge(req.code, req.venue, req.amount);
      if (pre.verdict !== 'VALID') return toAnswer(pre, req.venue);
      const claims = pre.token!.claims;
      if (claims.kind === 'stored_value' && req.amount === undefined) throw new TesseraError('VALIDATION_FAILED', 'A stored-value redemption needs an amount in minor units.');
      const now = clock();
      let result: RedeemAnswer | undefined;
      let deliver: (() => void) | undefined;
      let change: EntitlementChange | undefined;
      receipts.transaction(() => {
        // The signature was checked above (pure CPU, nothing it depends on can change); the ledger is read here.
        const j = judgeVerified(pre.token!, pre.issuer!, req.venue, req.amount);
        if (j.verdict !== 'VALID') {
          result = toAnswer(j, req.venue);
          return;
        }
        const before = j.rightsBefore;
        const used = claims.kind === 'stored_value' ? req.amount! : 1;
        // Issue 16: a product the cloud protects needs a lease with rights left (or the bound's allowance) and a fresh
        // deny list; read in this transaction, so two screens cannot both take the lease's last right.
        const g = guard?.judge(claims, used, now) ?? null;
        if (g && !g.ok) {
          result = { ...toAnswer({ ...j, verdict: g.verdict, message: g.message }, req.venue), ...(g.lease ? { lease: g.lease } : {}) };
          return;
        }
        const after = before === undefined ? undefined : before - used;
        const issued = stmt.issuedBySerial.get(claims.serial);
        const session = issued?.session;
        let capsule = stmt.token.get(claims.serial)?.capsule;
        const drafts: Array<{ kind: 'INTENT' | 'REDEMPTION'; subject: string; body: JsonObject }> = [];
        if (!capsule) {
          const c: Capsule = { v: CAPSULE_VERSION, product: claims.product_cid, act: 'entitlement.redeem', tenant: 'device', aud: 'venue', src: `issuer:${j.issuer!}`, view: { serial: claims.serial } };
          capsule = capsuleId(c);
          if (!receipts.has(capsule)) receipts.createCapsule(capsule, c, 'ACK', 'decided', now);
          stmt.insertToken.run(claims.serial, capsule, j.issuer!, claims.product_cid, claims.kind, claims.rights ?? null, claims.currency ?? null, claims.nbf, claims.exp, JSON.stringify(claims.venues), now);
          drafts.push({ kind: 'INTENT', subject: claims.serial, body: {
            intent: 'entitlement.redeem', serial: claims.serial, issuer: j.issuer!, product: claims.product_cid, kind: claims.kind,
            ...(claims.rights !== undefined ? { rights: claims.rights } : {}), ...(claims.currency !== undefined ? { currency: claims.currency } : {}),
            valid_from: iso(claims.nbf * 1000), valid_until: iso(claims.exp * 1000), venues: claims.venues, first_seen_at: iso(now),
          } });
        }
        const id = `rdm_${randomBytes(12).toString('hex')}`;
        drafts.push({ kind: 'REDEMPTION', subject: claims.serial, body: {
          action: 'redeem', redemption_id: id, serial: claims.serial, venue: req.venue, ...(req.screen ? { screen: req.screen } : {}),
          ...(claims.kind === 'stored_value' ? { amount: req.amount!, currency: claims.currency! } : {}),
          rights_before: before ?? null, rights_after: after ?? null, ...(session ? { product_runtime_session_id: session } : {}),
          ...(g ? { lease: g.lease, protection: g.protection, beyond_lease: g.beyond } : {}),
        } });
        const written = receipts.appendReceipts(capsule, drafts, now);
        const receiptId = written.at(-1)!.id;
        const row: Omit<RedemptionRow, 'row' | 'undone_at' | 'undo_reason'> = {
          id, serial: claims.serial, venue: req.venue, screen: req.screen ?? null, amount: claims.kind === 'stored_value' ? req.amount! : null,
          at: now, undo_until: now + UNDO_WINDOW_MS, receipt_id: receiptId, capsule, rights_before: before ?? null, rights_after: after ?? null,
        };
        stmt.insertRedemption.run(row);
        if (g) guard!.record(g, id, claims.serial, used, now);
        const payload = { serial: claims.serial, redemption_id: id, venue: req.venue, receipt_id: receiptId, capsule, ...(row.amount !== null ? { amount: row.amount } : {}), ...(after !== undefined ? { rights_left: after } : {}), ...(session ? { product_runtime_session_id: session } : {}) };
        const events = [{ topic: 'entitlement.redeemed', payload }];
        if (after === 0 && claims.kind !== 'time_pass') {
          events.push({ topic: 'token.burned', payload: { serial: claims.serial, redemption_id: id, ...(session ? { product_runtime_session_id: session } : {}) } as typeof payload });
          change = markUsedUp(claims.serial, now);
        }
        deliver = bus.stageMany(events).deliver;
        const what = claims.kind === 'stored_value' ? `${req.amount} ${claims.currency} taken; ${after} left.` : after !== undefined && after > 0 ? `${after} ${after === 1 ? 'use' : 'uses'} left.` : '';
        result = answer('REDEEMED', `Redeemed${what ? `: ${what}` : '.'}${g?.note ? ` ${g.note}` : ''}`, {
          entitlement: entitlementView(claims, after),
          redemption: redemptionView({ ...row, row: 0, undone_at: null, undo_reason: null }),
          ...(g?.after ? { lease: g.after } : {}),
        });
      });
      whenCommitted(() => {
        deliver?.();
        if (change) notify(change);
      });
      return result!;
    },

    redeemSoon(req) {
      const enqueue = () => new Promise<RedeemAnswer>((resolve, reject) => {
        queue.push({ req, resolve, reject });
        if (queue.length === 1) setImmediate(flushQueue);
      });
      // Issue 16: a protected product with no lease here that covers it: try an online grant first (bounded by the
      // guard's timeout), outside the transaction. Everything else is queued at once, as before.
      if (guard?.active()) {
        const verified = verifyToken(req.code, lookupIssuer, verifyEd25519);
        if (verified.ok) {
          const claims = verified.token.claims;
          const amount = claims.kind === 'stored_value' ? req.amount ?? 0 : 1;
          if (amount > 0 && guard.wantsGrant(claims, amount)) return guard.grant(claims, amount).then(enqueue, enqueue);
        }
      }
      return enqueue();
    },

    undo(redemptionId, reason) {
      const now = clock();
      let result: RedeemAnswer | undefined;
      let deliver: (() => void) | undefined;
      let change: EntitlementChange | undefined;
      receipts.transaction(() => {
        const r = stmt.redemption.get(redemptionId);
        if (!r) throw new TesseraError('REDEMPTION_NOT_FOUND', `No redemption ${redemptionId} on this device.`);
        if (r.undone_at !== null) throw new TesseraError('ALREADY_UNDONE', `Redemption ${redemptionId} was already undone at ${iso(r.undone_at)}.`);
        if (now > r.undo_until) throw new TesseraError('UNDO_WINDOW_CLOSED', `Redemption ${redemptionId} can no longer be undone: the ${UNDO_WINDOW_MS / 60_000}-minute window closed at ${iso(r.undo_until)}.`);
        const issued = stmt.issuedBySerial.get(r.serial);
        // Issue 16: the right goes back to the lease it was taken from; the undo receipt names that lease too.
        const leased = guard?.undo(r.id) ?? null;
        const [written] = receipts.appendReceipts(r.capsule, [{ kind: 'REDEMPTION', subject: r.serial, body: {
          action: 'undo', undo_of: r.receipt_id, redemption_id: r.id, serial: r.serial, venue: r.venue, ...(r.amount !== null ? { amount: r.amount } : {}),
          reason: reason ?? 'undone by staff', rights_before: r.rights_after, rights_after: r.rights_before, ...(issued ? { product_runtime_session_id: issued.session } : {}),
          ...(leased ?? {}),
        } }], now);
        stmt.markUndone.run(now, reason ?? null, written!.id, r.id);
        if (issued && issued.state === 'used' && issued.valid_until > now) {
          stmt.setState.run('active', now, r.serial, 'used');
          arm(issued);
          change = { serial: r.serial, state: 'active', product_runtime_session_id: issued.session };
        }
        deliver = bus.stageMany([{ topic: 'entitlement.redemption_undone', payload: { serial: r.serial, redemption_id: r.id, undo_receipt_id: written!.id, reason: reason ?? 'undone by staff', ...(issued ? { product_runtime_session_id: issued.session } : {}) } }]).deliver;
        const token = db.prepare<[string], { product_cid: string; kind: EntitlementKind; rights: number | null; currency: string | null; nbf: number; exp: number; venues: string }>('SELECT * FROM ent_tokens WHERE serial = ?').get(r.serial)!;
        const claims: TokenClaims = { serial: r.serial, product_cid: token.product_cid, kind: token.kind, ...(token.rights !== null ? { rights: token.rights } : {}), ...(token.currency !== null ? { currency: token.currency } : {}), nbf: token.nbf, exp: token.exp, venues: JSON.parse(token.venues) as string[] };
        result = answer('UNDONE', 'Undone: the redemption was reversed and its rights are back.', {
          entitlement: entitlementView(claims, r.rights_before ?? undefined),
          redemption: redemptionView({ ...r, undone_at: now }),
        });
      });
      deliver?.();
      if (change) notify(change);
      return result!;
    },

    history(q = {}) {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.venue) {
        where.push('r.venue = ?');
        args.push(q.venue);
      }
      if (q.q) {
        const like = `%${q.q.replace(/[%_\\]/g, (c) => `\\${c}`)}%`;
        where.push("(r.serial LIKE ? ESCAPE '\\' OR r.venue LIKE ? ESCAPE '\\' OR r.screen LIKE ? ESCAPE '\\' OR r.id LIKE ? ESCAPE '\\' OR i.product_ref LIKE ? ESCAPE '\\' OR i.title LIKE ? ESCAPE '\\')");
        args.push(like, like, like, like, like, like);
      }
      if (q.before) {
        const b = stmt.redemption.get(q.before);
        if (b) {
        where.push('r.row < ?');
        args.push(b.row);
      }
      }
      const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
      const rows = db.prepare(`SELECT r.*, t.kind, t.product_cid, i.product_ref, i.title, i.session FROM ent_redemptions r JOIN ent_tokens t ON t.serial = r.serial LEFT JOIN ent_issued i ON i.serial = r.serial
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY r.row DESC LIMIT ${limit}`).all(...args) as Array<RedemptionRow & { kind: EntitlementKind; product_cid: string; product_ref: string | null; title: string | null; session: string | null }>;
      return rows.map((r) => ({
        id: r.id, serial: r.serial, venue: r.venue, ...(r.screen !== null ? { screen: r.screen } : {}), ...(r.amount !== null ? { amount: r.amount } : {}),
        at: iso(r.at), undo_until: iso(r.undo_until), ...(r.undone_at !== null ? { undone_at: iso(r.undone_at) } : {}), ...(r.undo_reason !== null ? { undo_reason: r.undo_reason } : {}),
        receipt_id: r.receipt_id, capsule: r.capsule, kind: r.kind, product_cid: r.product_cid, ...(r.product_ref !== null ? { product_ref: r.product_ref } : {}),
        ...(r.title !== null ? { title: r.title } : {}), ...(r.rights_before !== null ? { rights_before: r.rights_before } : {}), ...(r.rights_after !== null ? { rights_after: r.rights_after } : {}),
        ...(r.session !== null ? { product_runtime_session_id: r.session } : {}),
      }));
    },

    issuing() {
      const row = stmt.setting.get('issuing');
      return row ? (JSON.parse(row.value) as IssuingState) : { paused: false };
    },

    setIssuing(paused, reason) {
      const current = this.issuing();
      if (current.paused === paused) return;
      const now = clock();
      const next: IssuingState = paused ? { paused, since: iso(now), ...(reason ? { reason } : {}) } : { paused, since: iso(now) };
      let deliver: (() => void) | undefined;
      db.transaction(() => {
        stmt.putSetting.run('issuing', JSON.stringify(next));
        deliver = bus.stageMany([{ topic: paused ? 'trutta.degraded' : 'trutta.restored', payload: { issuing: paused ? 'paused' : 'on', ...(reason ? { reason } : {}), since: next.since! } }]).deliver;
      })();
      deliver?.();
    },

    onChange(listener) {
      listeners.add(listener);
      return toDisposable(() => void listeners.delete(listener));
    },

    dispose() {
      disposed = true;
      for (const t of timers.values()) t.cancel();
      timers.clear();
      listeners.clear();
    },
  };
  return api;
}
