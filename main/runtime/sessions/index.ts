/**
 * Product runtime sessions (seed 000 §3–§4, §6.1; issue 14 point 2): one traveller buying and holding one product,
 * from `created` through preflight, payment and issuing to `completed`, `canceled` or `failed`. Owns the
 * `product_sessions` table. Modules it drives are given as interfaces (catalogue, preflight, payments,
 * entitlements): it never reads their tables.
 *
 * Durability: every move is one SQLite transaction holding the row, the move's receipts (the session's capsule
 * chain: INTENT → RESULT → PAYMENT → ISSUANCE… → SETTLEMENT) and its journal events, so a kill -9 leaves the
 * session in the last state it reached, with exactly that state's receipts. A payment is the one step outside a
 * transaction (a provider may be remote): the session records `pending_action = 'capture'` before it asks, and on
 * start {@link Sessions.recover} asks the provider what became of that idempotency key — captured: the session goes
 * on to issuing; not captured: it stays `pending_payment`, charged nothing. A refund works the same way.
 *
 * Concurrency: moves of one session run one at a time (an in-process queue per session); a second `pay` of a
 * session that the first made active answers the session as it stands — one charge (issue 14 "double-submitted
 * purchase").
 */
import { randomUUID } from 'node:crypto';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import { CAPSULE_VERSION, capsuleId } from '../../common/receipt.js';
import type { Capsule, JsonObject, JsonValue } from '../../common/receipt.js';
import type { Bus } from '../bus/index.js';
import { newTraceId } from '../journal/index.js';
import type { AppendInput } from '../journal/index.js';
import type { Logger } from '../log/index.js';
import type { ReceiptDraft, ReceiptStore } from '../receipts/store.js';
import type { Migration, Store } from '../store/index.js';
import { PAYMENT_CAPTURED_EVENT, SESSION_STATES, STATE_EVENTS, assertMove, isFinal } from './machine.js';
import type { SessionState } from './machine.js';
import type { Catalogue, ResolvedProduct } from '../catalogue/index.js';
import type { IssueRequest, IssuedEntitlement } from '../../common/entitlements.js';
import type { Entitlements } from '../entitlements/index.js';
import type { Payment, PaymentProvider } from '../ledger/provider.js';
import type { PreflightContext, PreflightResult } from './preflight.js';

export { SESSION_STATES, FINAL_STATES, STATE_EVENTS, canMove, isFinal } from './machine.js';
export type { SessionState } from './machine.js';

// ---- what the session needs of other modules (structural: the runtime passes the real ones) ----

/** What the session needs of the preflight (./preflight.ts `runPreflight` with the runtime's plugins). */
export type SessionPreflight = (request: { def: ResolvedProduct; context: PreflightContext; trace_id: string }) => Promise<PreflightResult>;

/** seed 000 §4.3 "PSP or internal balance": what a session asks of the payment provider (main/runtime/ledger/provider.ts). */
export type SessionPayments = PaymentProvider;
type PaymentRecord = Payment;

/** What a session needs of the entitlements module (main/runtime/entitlements). */
export type SessionEntitlements = Pick<Entitlements, 'issue' | 'list' | 'revokeForSession' | 'issuing' | 'onChange' | 'history'>;

// ---- the session ----

export interface ProductSession {
  product_runtime_session_id: string;
  state: SessionState;
  /** `journey`: the journey document the product guides its buyer with (`lviv.old-town-day@^1`), or null. */
  product: { ref: string; id: string; version: string; cid: string; title: string | null; journey: string | null };
  user_id: string;
  wallet_id: string;
  market: string | null;
  city: string | null;
  price: { amount: number; currency: string };
  preflight: { verdict: 'ACK' | 'NACK'; reasons: PreflightResult['reasons'] } | null;
  payment: (PaymentRecord & { refunded_at?: string; refund_id?: string }) | null;
  entitlements: IssuedEntitlement[];
  /** cid of the session's capsule: its receipts are at `/v1/r/<capsule>`. */
  capsule: string;
  /** Why the session ended as it did (final states). */
  reason: { code: string; message: string } | null;
  /** Seed 000 §3.2: the session's latest journey (in progress first), if it has one. */
  journey_instance_id: string | null;
  trace_id: string;
  created_at: string;
  updated_at: string;
  ended_at: string | null;
}

export interface CreateSessionRequest {
  /** `id`, `id@range` or a ProductDef cid. */
  product: string;
  user_id?: string;
  wallet_id?: string;
  market?: string;
  city?: string;
  /** The same key from the same user answers the session it first created (a double-submitted request). */
  idempotency_key?: string;
  /** Run the preflight at once (default true). */
  preflight?: boolean;
  /** Who asks (`traveller`, `operator`, `device`, `cli`…): recorded in the session's events and receipts. */
  by?: string;
}

export interface Sessions {
  /** @throws PRODUCTDEF_NOT_FOUND, IDEMPOTENCY_CONFLICT, SANDBOX_UNAVAILABLE (preflight left for a retry) */
  create(request: CreateSessionRequest): Promise<ProductSession>;
  /** Runs the preflight of a `created` session. @throws SESSION_NOT_FOUND, SESSION_TRANSITION_REFUSED */
  preflight(id: string, by?: string): Promise<ProductSession>;
  /**
   * Pays (from the session's wallet) and issues the entitlements; a session already active is answered as it is.
   * @throws SESSION_NOT_FOUND, SESSION_TRANSITION_REFUSED, PREFLIGHT_FAILED, ISSUING_PAUSED, INSUFFICIENT_FUNDS
   */
  pay(id: string, by?: string): Promise<ProductSession>;
  /** Cancels; refunds what was paid and revokes the entitlements when none was used. @throws SESSION_TRANSITION_REFUSED */
  cancel(id: string, reason?: string, by?: string): Promise<ProductSession>;
  /** Completes an active session now (operator), with its settlement receipt. */
  complete(id: string, reason?: string, by?: string): Promise<ProductSession>;
  get(id: string): ProductSession;
  list(query?: { user?: string; state?: SessionState; limit?: number }): ProductSession[];
  /** Finishes what a crash interrupted (payments and refunds in flight; sessions whose entitlements are all spent). */
  recover(): Promise<void>;
  dispose(): void;
}

export interface SessionsOptions {
  store: Store;
  bus: Bus;
  receipts: ReceiptStore;
  logger: Logger;
  catalogue: Pick<Catalogue, 'resolve'>;
  preflight: SessionPreflight;
  payments: SessionPayments;
  entitlements: SessionEntitlements;
  clock?: () => number;
  /** Wallet paid from when a request names none: the device's internal balance. */
  defaultWallet?: string;
  /**
   * Where this device sells, for requests that do not say (`TESSERA_MARKET`, `TESSERA_CITY`); without it a session
   * is for the product's first market and city.
   */
  location?: { market?: string; city?: string };
  /** The session's latest journey (main/runtime/journeys `latestOf`), once the journeys module exists. */
  journeyOf?: (session: string) => string | null;
}

export const DEFAULT_WALLET = 'main';
/** The service principal that moves sessions (seed 000 §2.1, §8: the Product Runtime Gateway). */
export const SESSION_PRINCIPAL = 'product-runtime-gateway';
const MAX_LIST = 500;

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'product runtime sessions',
    up(db) {
      db.exec(`
        CREATE TABLE product_sessions (
          id TEXT PRIMARY KEY,
          state TEXT NOT NULL CHECK (state IN (${SESSION_STATES.map((s) => `'${s}'`).join(', ')})),
          product_cid TEXT NOT NULL, product_ref TEXT NOT NULL, product_id TEXT NOT NULL, title TEXT,
          user_id TEXT NOT NULL, wallet_id TEXT NOT NULL, market TEXT, city TEXT,
          capsule TEXT NOT NULL, trace_id TEXT NOT NULL,
          price INTEGER NOT NULL CHECK (price >= 0), currency TEXT NOT NULL,
          preflight TEXT, payment TEXT, reason TEXT,
          pending_action TEXT CHECK (pending_action IN ('capture', 'refund')),
          idempotency_key TEXT UNIQUE,
          created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, ended_at INTEGER
        ) STRICT;
        CREATE INDEX product_sessions_user ON product_sessions (user_id, created_at);
        CREATE INDEX product_sessions_product ON product_sessions (product_id, state);
        CREATE INDEX product_sessions_state ON product_sessions (state) WHERE state IN ('pending_payment', 'active') OR pending_action IS NOT NULL;
      `);
    },
  },
];

interface Row {
  id: string;
  state: SessionState;
  product_cid: string;
  product_ref: string;
  product_id: string;
  title: string | null;
  user_id: string;
  wallet_id: string;
  market: string | null;
  city: string | null;
  capsule: string;
  trace_id: string;
  price: number;
  currency: string;
  preflight: string | null;
  payment: string | null;
  reason: string | null;
  pending_action: 'capture' | 'refund' | null;
  idempotency_key: string | null;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  /** Who asked for the move being made (not stored: recorded in its events and receipts). */
  by?: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();

const USER_ID = /^[\w.:@-]{1,128}$/;

export function createSessions(options: SessionsOptions): Sessions {
  const { store, bus, receipts, logger, catalogue, payments, entitlements } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('sessions', MIGRATIONS);
  const db = store.db;

  const getRow = db.prepare<[string], Row>('SELECT * FROM product_sessions WHERE id = ?');
  const byKey = db.prepare<[string], Row>('SELECT * FROM product_sessions WHERE idempotency_key = ?');
  const insert = db.prepare(`INSERT INTO product_sessions (id, state, product_cid, product_ref, product_id, title, user_id, wallet_id, market, city, capsule, trace_id, price, currency, idempotency_key, created_at, updated_at)
    VALUES (@id, 'created', @product_cid, @product_ref, @product_id, @title, @user_id, @wallet_id, @market, @city, @capsule, @trace_id, @price, @currency, @idempotency_key, @at, @at)`);
  const setState = db.prepare(
    'UPDATE product_sessions SET state = @to, updated_at = @at, ended_at = CASE WHEN @final = 1 THEN @at ELSE ended_at END, reason = COALESCE(@reason, reason) WHERE id = @id AND state = @from',
  );
  const setPreflight = db.prepare('UPDATE product_sessions SET preflight = ? WHERE id = ?');
  const setPayment = db.prepare('UPDATE product_sessions SET payment = ? WHERE id = ?');
  const setPending = db.prepare('UPDATE product_sessions SET pending_action = ?, updated_at = ? WHERE id = ?');
  const setPendingRefund = db.prepare("UPDATE product_sessions SET pending_action = 'refund', reason = ?, updated_at = ? WHERE id = ?");
  const listAll = db.prepare<[string | null, string | null, string | null, string | null, number], Row>(
    'SELECT * FROM product_sessions WHERE (? IS NULL OR user_id = ?) AND (? IS NULL OR state = ?) ORDER BY created_at DESC, id LIMIT ?',
  );
  const unfinished = db.prepare<[], Row>("SELECT * FROM product_sessions WHERE state IN ('pending_payment', 'active') OR pending_action IS NOT NULL");
  // What the quota policy counts: sessions that bought (or are buying) the product.
  const counts = db.prepare<{ product: string; user: string; wallet: string; hour_ago: number }, { user: number; wallet: number; global: number; user_last_hour: number }>(`
    SELECT
      COALESCE(SUM(user_id = @user AND state IN ('pending_payment', 'active', 'completed')), 0) AS user,
      COALESCE(SUM(wallet_id = @wallet AND state IN ('pending_payment', 'active', 'completed')), 0) AS wallet,
      COALESCE(SUM(state IN ('pending_payment', 'active', 'completed')), 0) AS global,
      (SELECT COUNT(*) FROM product_sessions WHERE user_id = @user AND created_at >= @hour_ago) AS user_last_hour
    FROM product_sessions WHERE product_id = @product`);

  /** The journey document the product names (null when it names none, or when its def is no longer held). */
  const journeyOfProduct = (cid: string): string | null => {
    try {
      return catalogue.resolve(cid).journey ?? null;
    } catch {
      return null;
    }
  };

  const toSession = (row: Row): ProductSession => {
    const [id, version] = splitRef(row.product_ref);
    return {
      product_runtime_session_id: row.id,
      state: row.state,
      product: { ref: row.product_ref, id, version, cid: row.product_cid, title: row.title, journey: journeyOfProduct(row.product_cid) },
      user_id: row.user_id,
      wallet_id: row.wallet_id,
      market: row.market,
      city: row.city,
      price: { amount: row.price, currency: row.currency },
      preflight: row.preflight === null ? null : (JSON.parse(row.preflight) as ProductSession['preflight']),
      payment: row.payment === null ? null : (JSON.parse(row.payment) as ProductSession['payment']),
      entitlements: entitlements.list({ session: row.id }),
      capsule: row.capsule,
      reason: row.reason === null ? null : (JSON.parse(row.reason) as ProductSession['reason']),
      journey_instance_id: options.journeyOf?.(row.id) ?? null,
      trace_id: row.trace_id,
      created_at: iso(row.created_at),
      updated_at: iso(row.updated_at),
      ended_at: row.ended_at === null ? null : iso(row.ended_at),
    };
  };

  const rowOf = (id: string): Row => {
    const row = typeof id === 'string' ? getRow.get(id) : undefined;
    if (!row) throw new TesseraError('SESSION_NOT_FOUND', `No product session ${JSON.stringify(id)} on this device.`);
    return row;
  };

  /**
   * The fields every event and receipt body of a session carries (seed 000 §3.2, §6.3), with the service principal
   * that acts (seed 000 §8: the product runtime gateway) and who asked it to.
   */
  const about = (row: Row): JsonObject => ({
    product_runtime_session_id: row.id,
    product_version_id: row.product_cid,
    product: row.product_ref,
    user_id: row.user_id,
    wallet_id: row.wallet_id,
    principal: SESSION_PRINCIPAL,
    by: row.by ?? 'runtime',
  });

  /**
   * One move of a session: in one SQLite transaction, `write` (rows of other modules, e.g. issuing), the state
   * change (refused if another move got there first), the receipts and the events; events reach subscribers after
   * the commit. Returns what `write` returned.
   */
  const move = <T>(row: Row, to: SessionState | null, step: { action: string; receipts?: (extra: T) => ReceiptDraft[]; events?: (extra: T) => AppendInput[]; reason?: { code: string; message: string }; write?: () => T }): T => {
    if (to !== null) assertMove(row.id, row.state, to, step.action);
    const at = clock();
    let deliver: () => void = () => undefined;
    const result = receipts.transaction(() => {
      const extra = step.write ? step.write() : (undefined as T);
      if (to !== null) {
        const changed = setState.run({ id: row.id, from: row.state, to, at, final: isFinal(to) ? 1 : 0, reason: step.reason ? JSON.stringify(step.reason) : null }).changes;
        if (changed !== 1) throw new TesseraError('SESSION_TRANSITION_REFUSED', `Session ${row.id} changed while it was being moved to ${to}; read it again.`, { details: { session: row.id, to } });
      }
      const drafts = step.receipts ? step.receipts(extra) : [];
      if (drafts.length > 0) receipts.appendReceipts(row.capsule, drafts, at);
      const events: AppendInput[] = [...(step.events ? step.events(extra) : [])];
      if (to !== null) events.push({ topic: STATE_EVENTS[to], trace_id: row.trace_id, payload: { ...about(row), from: row.state, state: to, ...(step.reason ? { reason: step.reason } : {}) } });
      deliver = bus.stageMany(events).deliver;
      return extra;
    });
    deliver();
    if (to !== null) row.state = to;
    return result;
  };

  // Moves of one session run one at a time, in order of arrival.
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const before = queues.get(id) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    queues.set(id, tail);
    void tail.then(() => {
      if (queues.get(id) === tail) queues.delete(id);
    });
    return run;
  };

  const runPreflight = async (row: Row): Promise<void> => {
    assertMove(row.id, row.state, 'preflight_ok', 'run its preflight');
    const product = catalogue.resolve(row.product_cid);
    const now = clock();
    const decision = await options.preflight({
      def: product,
      context: {
        user_id: row.user_id,
        wallet_id: row.wallet_id,
        market: row.market ?? '',
        city: row.city ?? '',
        now: iso(now),
        counts: counts.get({ product: row.product_id, user: row.user_id, wallet: row.wallet_id, hour_ago: now - 3600_000 })!,
      },
      trace_id: row.trace_id,
    });
    // A check that could not be made because the sandbox was down is no answer: the session stays `created` and
    // the caller may retry (SANDBOX_UNAVAILABLE, retryable), rather than ending on an outage.
    const outage = decision.policies.filter((p) => (p.evidence as { retryable?: unknown } | null)?.retryable === true);
    if (!decision.ok && outage.length > 0 && decision.reasons.every((r) => r.code === 'PREFLIGHT_CHECK_FAILED')) {
      throw new TesseraError('SANDBOX_UNAVAILABLE', `The preflight of session ${row.id} could not run (${outage.map((p) => p.plugin).join(', ')}): the session is still created; try its preflight again.`, { retryable: true });
    }
    const to: SessionState = decision.ok ? 'preflight_ok' : 'preflight_failed';
    const summary = { verdict: decision.verdict, reasons: decision.reasons };
    const first = decision.reasons[0];
    move(row, to, {
      action: 'run its preflight',
      ...(decision.ok || !first ? {} : { reason: { code: first.code, message: first.message } }),
      write: () => {
        setPreflight.run(JSON.stringify(summary), row.id);
        receipts.setCapsuleState(row.capsule, decision.ok ? 'ACK' : 'NACK', decision.ok ? 'decided' : 'rejected', clock());
      },
      receipts: () => [
        {
          kind: 'RESULT',
          subject: `user:${row.user_id}`,
          body: {
            ...about(row),
            step: 'preflight',
            verdict: decision.verdict,
            decision: decision.ok ? 'ALLOW' : 'DENY',
            reasons: decision.reasons as unknown as JsonValue,
            policies: decision.policies as unknown as JsonValue,
            input_cid: decision.input_cid,
          },
        },
      ],
    });
  };

  /** The entitlement the product issues, valid from `now` for the product's validity. */
  const issueSpec = (row: Row, product: ResolvedProduct, now: number): IssueRequest => {
    const e = product.profiles.entitlement;
    return {
      product_runtime_session_id: row.id,
      product_cid: row.product_cid,
      product_ref: row.product_ref,
      kind: e.kind,
      ...(e.uses !== undefined ? { uses: e.uses } : {}),
      ...(e.amount !== undefined ? { amount: e.amount } : {}),
      ...(e.currency !== undefined ? { currency: e.currency } : {}),
      ...(e.uses_per_venue !== undefined ? { uses_per_venue: e.uses_per_venue } : {}),
      valid_from: now,
      valid_until: now + e.validity_ms,
      venues: e.venues.map((v) => v.id),
      user_id: row.user_id,
      ...(row.title ? { title: row.title } : {}),
    };
  };

  /** Payment captured (or none needed): records it, issues the entitlements, the session becomes active. */
  const activate = (row: Row, payment: PaymentRecord | null): void => {
    const product = catalogue.resolve(row.product_cid);
    move<IssuedEntitlement[]>(row, 'active', {
      action: 'be activated',
      write: () => {
        if (payment) setPayment.run(JSON.stringify(payment), row.id);
        setPending.run(null, clock(), row.id);
        return [entitlements.issue(issueSpec(row, product, clock()))];
      },
      receipts: (issued) => [
        ...(payment
          ? [{ kind: 'PAYMENT' as const, subject: `wallet:${row.wallet_id}`, body: { ...about(row), action: 'capture', provider: payments.name, payment_id: payment.payment_id, amount: payment.amount, currency: payment.currency, captured_at: payment.captured_at } }]
          : []),
        ...issued.map((e) => ({
          kind: 'ISSUANCE' as const,
          subject: `user:${row.user_id}`,
          // `code`: the signed token itself, so the cloud learns a kiosk's sale (product, rights, venues, currency) from
          // the receipt and can serve it to redeemers (issue 16 §4); its claims are authoritative, the fields above a summary.
          body: { ...about(row), serial: e.serial, kind: e.kind, rights_total: e.rights_total ?? null, valid_from: e.valid_from, valid_until: e.valid_until, code: e.code } as JsonObject,
        })),
      ],
      events: () =>
        payment
          ? [
              { topic: PAYMENT_CAPTURED_EVENT, trace_id: row.trace_id, payload: { ...about(row), payment_id: payment.payment_id, amount: payment.amount, currency: payment.currency } },
            ]
          : [],
    });
  };

  const pay = async (row: Row): Promise<void> => {
    if (row.state === 'active') return; // paid already: a double submit answers the session as it is, one charge
    if (row.state === 'preflight_failed') throw new TesseraError('PREFLIGHT_FAILED', `Session ${row.id} did not pass its preflight: ${JSON.parse(row.reason ?? '{}').message ?? 'see its preflight reasons'}.`);
    if (row.state === 'created') throw new TesseraError('SESSION_TRANSITION_REFUSED', `Session ${row.id} has not passed its preflight yet; run it first.`, { details: { session: row.id, from: row.state, to: 'pending_payment' } });
    const issuing = entitlements.issuing();
    if (issuing.paused) throw new TesseraError('ISSUING_PAUSED', `Issuing is paused on this device${issuing.reason ? ` (${issuing.reason})` : ''}; nothing was charged. Entitlements already issued can still be redeemed.`);
    if (row.price === 0) {
      assertMove(row.id, row.state, 'active', 'be activated');
      activate(row, null);
      return;
    }
    if (row.state === 'preflight_ok') move(row, 'pending_payment', { action: 'wait for its payment' });
    else assertMove(row.id, row.state, 'active', 'be paid');
    // Recorded before the provider is asked: a crash from here on is finished by recover() with this key.
    setPending.run('capture', clock(), row.id);
    row.pending_action = 'capture';
    let payment: PaymentRecord;
    try {
      payment = await payments.capture({ session_id: row.id, wallet_id: row.wallet_id, amount: row.price, currency: row.currency, idempotency_key: captureKey(row.id), merchant: row.product_id });
    } catch (err) {
      // Not charged (the provider refused): the session waits in pending_payment for another try or a cancel.
      setPending.run(null, clock(), row.id);
      row.pending_action = null;
      throw err;
    }
    await finishCapture(row, payment);
  };

  /** After a capture: activate; if issuing fails (paused meanwhile, a fault), refund and fail the session. */
  const finishCapture = async (row: Row, payment: PaymentRecord): Promise<void> => {
    try {
      activate(row, payment);
    } catch (err) {
      logger.warn('issuing failed after the payment was captured: refunding', { session: row.id, error: err });
      const reason = isTesseraError(err) ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: 'Issuing failed after the payment was captured.' };
      setPayment.run(JSON.stringify(payment), row.id);
      row.payment = JSON.stringify(payment);
      await refundAndClose(row, 'failed', reason);
      throw err;
    }
  };

  /** Refunds what the session paid (if anything) and moves it to `to` with its settlement receipt. */
  const refundAndClose = async (row: Row, to: 'canceled' | 'failed', reason: { code: string; message: string }): Promise<void> => {
    const paid = row.payment === null ? null : (JSON.parse(row.payment) as ProductSession['payment']);
    let refund: { refund_id: string; refunded_at: string } | null = null;
    if (paid && !paid.refund_id) {
      // The decision and its reason are recorded before the provider is asked: recover() finishes it after a crash.
      setPendingRefund.run(JSON.stringify(reason), clock(), row.id);
      row.pending_action = 'refund';
      refund = await payments.refund({ payment_id: paid.payment_id, amount: paid.amount, currency: paid.currency, idempotency_key: refundKey(row.id), reason: reason.message });
    }
    const settled = refund && paid ? { ...paid, ...refund } : paid;
    move(row, to, {
      action: to === 'canceled' ? 'be canceled' : 'fail',
      reason,
      write: () => {
        if (settled) setPayment.run(JSON.stringify(settled), row.id);
        setPending.run(null, clock(), row.id);
        entitlements.revokeForSession(row.id, reason.message);
      },
      receipts: () => [
        ...(refund && paid
          ? [{ kind: 'PAYMENT' as const, subject: `wallet:${row.wallet_id}`, body: { ...about(row), action: 'refund', provider: payments.name, payment_id: paid.payment_id, refund_id: refund.refund_id, amount: paid.amount, currency: paid.currency, refunded_at: refund.refunded_at } }]
          : []),
        settlement(row, to, reason, settled),
      ],
    });
  };

  /** seed 000 §4.6: the closing summary of a session — what was paid and refunded, and what became of each entitlement. */
  const settlement = (row: Row, to: SessionState, reason: { code: string; message: string } | null, paid: ProductSession['payment']): ReceiptDraft => {
    const held = entitlements.list({ session: row.id });
    return {
      kind: 'SETTLEMENT',
      subject: `user:${row.user_id}`,
      body: {
        ...about(row),
        state: to,
        reason: reason as unknown as JsonValue,
        paid: paid ? { amount: paid.amount, currency: paid.currency, payment_id: paid.payment_id } : null,
        refunded: paid?.refund_id ? { amount: paid.amount, currency: paid.currency, refund_id: paid.refund_id } : null,
        entitlements: held.map((e) => ({ serial: e.serial, kind: e.kind, state: e.state, rights_total: e.rights_total ?? null, rights_left: e.rights_left ?? null })),
      },
    };
  };

  const complete = (row: Row, reason: { code: string; message: string }): void => {
    const paid = row.payment === null ? null : (JSON.parse(row.payment) as ProductSession['payment']);
    move(row, 'completed', { action: 'complete', reason, receipts: () => [settlement(row, 'completed', reason, paid)] });
  };

  /** An active session whose entitlements are all used up, expired or revoked is over (seed 000 §4.6). */
  const completeIfSpent = (row: Row): boolean => {
    if (row.state !== 'active') return false;
    const held = entitlements.list({ session: row.id });
    if (held.length === 0 || held.some((e) => e.state === 'active')) return false;
    const expired = held.every((e) => e.state === 'expired');
    complete(row, expired ? { code: 'EXPIRED', message: 'Its entitlements expired.' } : { code: 'USED_UP', message: 'Its entitlements were used up or expired.' });
    return true;
  };

  const changes = entitlements.onChange((change) => {
    const id = change.product_runtime_session_id;
    if (!id) return;
    void serial(id, async () => {
      const row = getRow.get(id);
      if (row) completeIfSpent(row);
    }).catch((err: unknown) => logger.warn('could not complete a spent session', { session: id, error: err }));
  });

  const get = (id: string): ProductSession => toSession(rowOf(id));
  const withBy = (row: Row, by: string | undefined): Row => (by === undefined ? row : Object.assign(row, { by }));

  return {
    async create(request) {
      const user = request.user_id ?? 'anonymous';
      if (!USER_ID.test(user)) throw new TesseraError('VALIDATION_FAILED', 'user_id must be 1–128 letters, digits or . _ : @ -.');
      const wallet = request.wallet_id ?? options.defaultWallet ?? DEFAULT_WALLET;
      if (!USER_ID.test(wallet)) throw new TesseraError('VALIDATION_FAILED', 'wallet_id must be 1–128 letters, digits or . _ : @ -.');
      const key = request.idempotency_key === undefined ? null : `${user}\u0000${request.idempotency_key}`;
      const product = catalogue.resolve(request.product);
      if (key !== null) {
        const existing = byKey.get(key);
        if (existing) {
          if (existing.product_cid !== product.cid) throw new TesseraError('IDEMPOTENCY_CONFLICT', `Idempotency key ${JSON.stringify(request.idempotency_key)} already created session ${existing.id} for another product.`);
          return toSession(existing);
        }
      }
      const id = `prs_${randomUUID()}`;
      const at = clock();
      const trace = newTraceId(at);
      const market = request.market ?? options.location?.market ?? product.markets[0] ?? null;
      const city = request.city ?? options.location?.city ?? product.cities[0] ?? null;
      const capsule: Capsule = {
        v: CAPSULE_VERSION,
        product: product.cid,
        act: 'product.session',
        tenant: 'device',
        aud: [market, city].filter((x) => x !== null).join('/') || 'any',
        src: `user:${user}`,
        view: { product_runtime_session_id: id, product: product.ref, wallet_id: wallet },
      };
      const cid = capsuleId(capsule);
      const titles = product.profiles.ui.title;
      const title = titles['en'] ?? Object.values(titles)[0] ?? null;
      const row: Row = {
        id,
        state: 'created',
        product_cid: product.cid,
        product_ref: product.ref,
        product_id: product.id,
        title,
        user_id: user,
        wallet_id: wallet,
        market,
        city,
        capsule: cid,
        trace_id: trace,
        price: product.profiles.pricing.price,
        currency: product.profiles.pricing.currency,
        preflight: null,
        payment: null,
        reason: null,
        pending_action: null,
        idempotency_key: key,
        created_at: at,
        updated_at: at,
        ended_at: null,
        ...(request.by === undefined ? {} : { by: request.by }),
      };
      let deliver: () => void = () => undefined;
      receipts.transaction(() => {
        receipts.createCapsule(cid, capsule, 'ASK', 'pending', at);
        receipts.recordManifests(cid, [{ role: 'product', name: product.id, version: product.version, cid: product.cid, manifest: product.def as unknown as Record<string, unknown> }]);
        insert.run({ ...row, at });
        receipts.appendReceipts(
          cid,
          [{ kind: 'INTENT', subject: `user:${user}`, body: { ...about(row), intent: 'product.session.create', market: row.market, city: row.city, price: { amount: row.price, currency: row.currency } } }],
          at,
        );
        deliver = bus.stageMany([{ topic: STATE_EVENTS.created, trace_id: trace, payload: { ...about(row), state: 'created', market: row.market, city: row.city, price: { amount: row.price, currency: row.currency } } }]).deliver;
      });
      deliver();
      if (request.preflight === false) return get(id);
      return serial(id, async () => {
        await runPreflight(withBy(rowOf(id), request.by));
        return get(id);
      });
    },
    preflight: (id, by) =>
      serial(id, async () => {
        await runPreflight(withBy(rowOf(id), by));
        return get(id);
      }),
    pay: (id, by) =>
      serial(id, async () => {
        await pay(withBy(rowOf(id), by));
        return get(id);
      }),
    cancel: (id, reason, by) =>
      serial(id, async () => {
        const row = withBy(rowOf(id), by);
        assertMove(row.id, row.state, 'canceled', 'be canceled');
        if (row.state === 'active') {
          // Used: redeemed at least once and not undone (a time pass has no count that shows it).
          const used = entitlements.list({ session: id }).filter((e) => e.state === 'used' || entitlements.history({ q: e.serial, limit: 50 }).some((r) => r.serial === e.serial && !r.undone_at));
          if (used.length > 0) {
            throw new TesseraError('SESSION_TRANSITION_REFUSED', `Session ${id} cannot be canceled: its entitlement ${used[0]!.serial} has been used. An operator can complete it instead.`, { details: { session: id, from: row.state, to: 'canceled' } });
          }
        }
        await refundAndClose(row, 'canceled', { code: 'CANCELED', message: reason ?? 'Canceled on request.' });
        return get(id);
      }),
    complete: (id, reason, by) =>
      serial(id, async () => {
        const row = withBy(rowOf(id), by);
        complete(row, { code: 'OPERATOR', message: reason ?? 'Completed by an operator.' });
        return get(id);
      }),
    get,
    list(query = {}) {
      const limit = Math.min(Math.max(query.limit ?? 100, 1), MAX_LIST);
      return listAll.all(query.user ?? null, query.user ?? null, query.state ?? null, query.state ?? null, limit).map(toSession);
    },
    async recover() {
      for (const row of unfinished.all()) {
        await serial(row.id, async () => {
          const current = rowOf(row.id);
          if (current.pending_action === 'capture') {
            const payment = await payments.findCapture(captureKey(current.id));
            if (payment) {
              logger.info('finishing a session whose payment was captured before a stop', { session: current.id });
              await finishCapture(current, payment);
            } else {
              setPending.run(null, clock(), current.id);
            }
          } else if (current.pending_action === 'refund') {
            const reason = current.reason === null ? { code: 'CANCELED', message: 'Canceled before a stop.' } : (JSON.parse(current.reason) as { code: string; message: string });
            await refundAndClose(current, reason.code === 'CANCELED' ? 'canceled' : 'failed', reason);
          } else {
            completeIfSpent(current);
          }
        }).catch((err: unknown) => logger.warn('could not recover a product session', { session: row.id, error: err }));
      }
    },
    dispose() {
      changes.dispose();
    },
  };
}

const captureKey = (id: string): string => `${id}:capture`;
const refundKey = (id: string): string => `${id}:refund`;

function splitRef(ref: string): [string, string] {
  const at = ref.lastIndexOf('@');
  return at < 0 ? [ref, ''] : [ref.slice(0, at), ref.slice(at + 1)];
}
