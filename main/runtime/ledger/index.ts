/**
 * The device's ledger (seed 000 §2.1 "Wallet & Accounts: internal ledger", §4.3; issue 14 point 4): double-entry
 * bookkeeping in integer minor units on SQLite. Owns the `ledger_*` tables.
 *
 * Invariants, each enforced where the write happens (and re-checked by {@link Ledger.check}):
 * - every transaction balances: per currency its postings sum to zero (LEDGER_UNBALANCED otherwise, nothing written);
 * - amounts are non-zero safe integers of at most {@link MAX_AMOUNT} minor units; currencies are ISO 4217 codes;
 * - no `wallet:` or `revenue:` account goes below zero (INSUFFICIENT_FUNDS, nothing written); only `external:`
 *   accounts — the world outside the device that top-ups come from — may;
 * - a transaction is idempotent by its key: the same key with the same content answers the first transaction and
 *   posts nothing; the same key with other content is IDEMPOTENCY_CONFLICT.
 *
 * Every post is one SQLite transaction (`BEGIN IMMEDIATE` when it is not nested in a caller's): the balance check
 * and the write are atomic, also against another process on the same file, and a crash leaves a transaction whole
 * or absent. Its journal event (`wallet.topped_up`, `payment.captured`, `payment.refunded`) commits with it and
 * reaches subscribers after the commit.
 */
import { randomUUID } from 'node:crypto';
import { cidOf } from '../../common/cid.js';
import { TesseraError } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import type { AppendInput } from '../journal/index.js';
import type { Migration, Store } from '../store/index.js';

export { createInternalBalanceProvider } from './provider.js';
export type { PaymentProvider, CaptureRequest, Payment, RefundRequest, Refund } from './provider.js';

/** The largest amount of one posting: 10^13 minor units (a hundred billion of a two-decimal currency). */
export const MAX_AMOUNT = 10_000_000_000_000;
const ACCOUNT = /^(wallet|revenue|external):[\w.:@-]{1,128}$/;
const CURRENCY = /^[A-Z]{3}$/;
const KEY = /^[\w.:@/+=-]{1,200}$/;
const MAX_POSTINGS = 32;

export type TransactionKind = 'topup' | 'capture' | 'refund' | 'adjust';

export interface Posting {
  /** `wallet:<id>`, `revenue:<id>` or `external:<id>`. */
  account: string;
  /** Minor units; negative takes from the account, positive adds to it. */
  amount: number;
  currency: string;
}

export interface PostRequest {
  idempotency_key: string;
  kind: TransactionKind;
  postings: Posting[];
  memo?: string;
  /** The transaction this one answers (a refund names its capture). */
  ref?: string;
  product_runtime_session_id?: string;
  /** Who asked (an operator, a session): recorded with the transaction. */
  by?: string;
}

export interface LedgerTransaction {
  id: string;
  idempotency_key: string;
  kind: TransactionKind;
  postings: Posting[];
  memo: string | null;
  ref: string | null;
  product_runtime_session_id: string | null;
  by: string | null;
  created_at: string;
  /** True when this call found the transaction its key already posted (nothing was posted again). */
  replayed: boolean;
}

export interface Balance {
  currency: string;
  amount: number;
}

export interface LedgerEntry {
  transaction: string;
  kind: TransactionKind;
  amount: number;
  currency: string;
  memo: string | null;
  product_runtime_session_id: string | null;
  created_at: string;
}

export interface Ledger {
  /** Posts one balanced transaction. @throws LEDGER_UNBALANCED, INSUFFICIENT_FUNDS, IDEMPOTENCY_CONFLICT, VALIDATION_FAILED */
  post(request: PostRequest): LedgerTransaction;
  /** Adds money to a wallet from `external:topup` (an operator took cash or a card payment for it). */
  topUp(request: { wallet_id: string; amount: number; currency: string; idempotency_key: string; by?: string; memo?: string }): LedgerTransaction & { balance: number };
  /** The balance of an account (`wallet:main`) or of a wallet by id (`main`) in one currency; 0 when never used. */
  balance(accountOrWallet: string, currency: string): number;
  /** A wallet's balances; none for a wallet that never held money (wallets exist by their id, nothing creates them). */
  wallet(walletId: string): { wallet_id: string; balances: Balance[] };
  /** A wallet's entries, newest first. */
  entries(walletId: string, query?: { limit?: number; before?: number }): { entries: Array<LedgerEntry & { seq: number }>; next: number | null };
  transaction(id: string): LedgerTransaction | undefined;
  /** The transaction a key posted, if any. */
  find(idempotencyKey: string): LedgerTransaction | undefined;
  /** Transactions that name `ref` (a capture's refunds). */
  referring(ref: string): LedgerTransaction[];
  /** Recomputes every balance from the entries and checks every transaction balances. */
  check(): { ok: boolean; problems: string[] };
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'double-entry ledger',
    up(db) {
      db.exec(`
        CREATE TABLE ledger_transactions (
          id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, content TEXT NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('topup', 'capture', 'refund', 'adjust')),
          memo TEXT, ref TEXT, session TEXT, by TEXT, created_at INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX ledger_transactions_ref ON ledger_transactions (ref) WHERE ref IS NOT NULL;
        CREATE TABLE ledger_entries (
          seq INTEGER PRIMARY KEY, tx TEXT NOT NULL REFERENCES ledger_transactions (id), account TEXT NOT NULL,
          currency TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount <> 0)
        ) STRICT;
        CREATE INDEX ledger_entries_account ON ledger_entries (account, seq);
        CREATE INDEX ledger_entries_tx ON ledger_entries (tx);
        CREATE TABLE ledger_balances (
          account TEXT NOT NULL, currency TEXT NOT NULL, amount INTEGER NOT NULL,
          PRIMARY KEY (account, currency),
          CHECK (amount >= 0 OR account LIKE 'external:%')
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
];

interface TxRow {
  id: string;
  idempotency_key: string;
  content: string;
  kind: TransactionKind;
  memo: string | null;
  ref: string | null;
  session: string | null;
  by: string | null;
  created_at: number;
}

const EVENTS: Partial<Record<TransactionKind, string>> = { topup: 'wallet.topped_up', capture: 'payment.captured', refund: 'payment.refunded' };

export interface LedgerOptions {
  store: Store;
  bus: Bus;
  clock?: () => number;
}

export function createLedger(options: LedgerOptions): Ledger {
  const { store, bus } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('ledger', MIGRATIONS);
  const db = store.db;

  const byKey = db.prepare<[string], TxRow>('SELECT * FROM ledger_transactions WHERE idempotency_key = ?');
  const byId = db.prepare<[string], TxRow>('SELECT * FROM ledger_transactions WHERE id = ?');
  const byRef = db.prepare<[string], TxRow>('SELECT * FROM ledger_transactions WHERE ref = ? ORDER BY created_at, id');
  const insertTx = db.prepare('INSERT INTO ledger_transactions (id, idempotency_key, content, kind, memo, ref, session, by, created_at) VALUES (@id, @key, @content, @kind, @memo, @ref, @session, @by, @at)');
  const insertEntry = db.prepare('INSERT INTO ledger_entries (tx, account, currency, amount) VALUES (?, ?, ?, ?)');
  // The new balance is computed and checked before it is written: the table's CHECK is a last line of defence, and
  // SQLite checks it on an upsert's candidate row before it looks for the row to update.
  const setBalance = db.prepare('INSERT INTO ledger_balances (account, currency, amount) VALUES (?, ?, ?) ON CONFLICT (account, currency) DO UPDATE SET amount = excluded.amount');
  const balanceOf = db.prepare<[string, string], { amount: number }>('SELECT amount FROM ledger_balances WHERE account = ? AND currency = ?');
  const balancesOf = db.prepare<[string], Balance>('SELECT currency, amount FROM ledger_balances WHERE account = ? ORDER BY currency');
  const entriesOf = db.prepare<[string, number, number], { seq: number; tx: string; amount: number; currency: string; kind: TransactionKind; memo: string | null; session: string | null; created_at: number }>(
    'SELECT e.seq, e.tx, e.amount, e.currency, t.kind, t.memo, t.session, t.created_at FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx WHERE e.account = ? AND e.seq < ? ORDER BY e.seq DESC LIMIT ?',
  );
  const postingsOf = db.prepare<[string], Posting>('SELECT account, amount, currency FROM ledger_entries WHERE tx = ? ORDER BY seq');
  const recomputed = db.prepare<[], { account: string; currency: string; amount: number }>('SELECT account, currency, SUM(amount) AS amount FROM ledger_entries GROUP BY account, currency');
  const allBalances = db.prepare<[], { account: string; currency: string; amount: number }>('SELECT account, currency, amount FROM ledger_balances');
  const unbalanced = db.prepare<[], { tx: string; currency: string; total: number }>('SELECT tx, currency, SUM(amount) AS total FROM ledger_entries GROUP BY tx, currency HAVING total <> 0');

  const toTx = (row: TxRow, replayed: boolean): LedgerTransaction => ({
    id: row.id,
    idempotency_key: row.idempotency_key,
    kind: row.kind,
    postings: postingsOf.all(row.id),
    memo: row.memo,
    ref: row.ref,
    product_runtime_session_id: row.session,
    by: row.by,
    created_at: new Date(row.created_at).toISOString(),
    replayed,
  });

  const validate = (request: PostRequest): void => {
    const bad = (message: string): never => {
      throw new TesseraError('VALIDATION_FAILED', message);
    };
    if (typeof request.idempotency_key !== 'string' || !KEY.test(request.idempotency_key)) bad('idempotency_key must be 1–200 letters, digits or . _ : @ / + = -.');
    if (!Object.hasOwn(EVENTS, request.kind) && request.kind !== 'adjust') bad(`kind must be topup, capture, refund or adjust, not ${JSON.stringify(request.kind)}.`);
    if (!Array.isArray(request.postings) || request.postings.length < 2 || request.postings.length > MAX_POSTINGS) bad(`A transaction has 2–${MAX_POSTINGS} postings.`);
    for (const [i, p] of request.postings.entries()) {
      if (typeof p?.account !== 'string' || !ACCOUNT.test(p.account)) bad(`posting ${i}: account must be wallet:<id>, revenue:<id> or external:<id>.`);
      if (typeof p.currency !== 'string' || !CURRENCY.test(p.currency)) bad(`posting ${i}: currency must be an ISO 4217 code such as UAH.`);
      if (!Number.isSafeInteger(p.amount) || p.amount === 0 || Math.abs(p.amount) > MAX_AMOUNT) bad(`posting ${i}: amount must be a non-zero integer number of minor units, at most ${MAX_AMOUNT} in size.`);
    }
    const sums = new Map<string, number>();
    for (const p of request.postings) sums.set(p.currency, (sums.get(p.currency) ?? 0) + p.amount);
    for (const [currency, sum] of sums) {
      if (sum !== 0) throw new TesseraError('LEDGER_UNBALANCED', `The postings in ${currency} sum to ${sum}, not 0: every transaction must balance per currency. Nothing was posted.`);
    }
  };

  // Nested in a caller's transaction it is a savepoint; alone, BEGIN IMMEDIATE takes the write lock before the
  // balance is read, so another process cannot spend the same money between the read and the write.
  const write = db.transaction((request: PostRequest, content: string): { row: TxRow; deliver: () => void } => {
    const existing = byKey.get(request.idempotency_key);
    if (existing) {
      if (existing.content !== content) {
        throw new TesseraError('IDEMPOTENCY_CONFLICT', `Idempotency key ${JSON.stringify(request.idempotency_key)} already posted transaction ${existing.id} with other content; use a new key for a new transaction.`);
      }
      return { row: existing, deliver: () => undefined };
    }
    const row: TxRow = {
      id: `ltx_${randomUUID()}`,
      idempotency_key: request.idempotency_key,
      content,
      kind: request.kind,
      memo: request.memo ?? null,
      ref: request.ref ?? null,
      session: request.product_runtime_session_id ?? null,
      by: request.by ?? null,
      created_at: clock(),
    };
    insertTx.run({ id: row.id, key: row.idempotency_key, content, kind: row.kind, memo: row.memo, ref: row.ref, session: row.session, by: row.by, at: row.created_at });
    for (const p of request.postings) {
      const held = balanceOf.get(p.account, p.currency)?.amount ?? 0;
      const after = held + p.amount;
      if (after < 0 && !p.account.startsWith('external:')) {
        throw new TesseraError('INSUFFICIENT_FUNDS', `${p.account} holds ${held} ${p.currency} (minor units), less than the ${-p.amount} this needs. Nothing was posted.`, {
          details: { account: p.account, currency: p.currency, balance: held, needed: -p.amount },
        });
      }
      insertEntry.run(row.id, p.account, p.currency, p.amount);
      setBalance.run(p.account, p.currency, after);
    }
    const events: AppendInput[] = [];
    const topic = EVENTS[request.kind];
    if (topic) events.push({ topic, payload: eventPayload(row, request.postings) });
    return { row, deliver: bus.stageMany(events).deliver };
  });

  const walletAccount = (id: string) => (id.includes(':') && ACCOUNT.test(id) ? id : `wallet:${id}`);

  return {
    post: (request) => postOnce(request),
    topUp(request) {
      if (!Number.isSafeInteger(request.amount) || request.amount <= 0) throw new TesseraError('VALIDATION_FAILED', 'A top-up amount must be a positive integer number of minor units.');
      const account = walletAccount(request.wallet_id);
      const tx = postOnce({
        idempotency_key: request.idempotency_key,
        kind: 'topup',
        postings: [
          { account: 'external:topup', amount: -request.amount, currency: request.currency },
          { account, amount: request.amount, currency: request.currency },
        ],
        ...(request.memo === undefined ? {} : { memo: request.memo }),
        ...(request.by === undefined ? {} : { by: request.by }),
      });
      return { ...tx, balance: balanceOf.get(account, request.currency)?.amount ?? 0 };
    },
    balance: (accountOrWallet, currency) => balanceOf.get(walletAccount(accountOrWallet), currency)?.amount ?? 0,
    wallet(walletId) {
      const balances = balancesOf.all(walletAccount(walletId));
      return { wallet_id: walletId, balances };
    },
    entries(walletId, query = {}) {
      const limit = Math.min(Math.max(query.limit ?? 50, 1), 500);
      const rows = entriesOf.all(walletAccount(walletId), query.before ?? Number.MAX_SAFE_INTEGER, limit + 1);
      const page = rows.slice(0, limit);
      return {
        entries: page.map((r) => ({ seq: r.seq, transaction: r.tx, kind: r.kind, amount: r.amount, currency: r.currency, memo: r.memo, product_runtime_session_id: r.session, created_at: new Date(r.created_at).toISOString() })),
        next: rows.length > limit ? page.at(-1)!.seq : null,
      };
    },
    transaction(id) {
      const row = byId.get(id);
      return row ? toTx(row, false) : undefined;
    },
    find(key) {
      const row = byKey.get(key);
      return row ? toTx(row, false) : undefined;
    },
    referring: (ref) => byRef.all(ref).map((row) => toTx(row, false)),
    check() {
      const problems: string[] = [];
      for (const u of unbalanced.all()) problems.push(`transaction ${u.tx} sums to ${u.total} ${u.currency}`);
      const stored = new Map(allBalances.all().map((b) => [`${b.account} ${b.currency}`, b.amount]));
      const computed = recomputed.all();
      for (const c of computed) {
        const key = `${c.account} ${c.currency}`;
        if (stored.get(key) !== c.amount) problems.push(`${key}: the entries sum to ${c.amount}, the balance says ${String(stored.get(key))}`);
        if (c.amount < 0 && !c.account.startsWith('external:')) problems.push(`${key} is below zero (${c.amount})`);
        stored.delete(key);
      }
      for (const [key, amount] of stored) if (amount !== 0) problems.push(`${key}: a balance of ${amount} with no entries`);
      return { ok: problems.length === 0, problems };
    },
  };

  /** Validates, then writes (or finds what the key already wrote), then hands the event to subscribers. */
  function postOnce(request: PostRequest): LedgerTransaction {
    validate(request);
    const content = cidOf({ kind: request.kind, postings: request.postings.map((p) => ({ account: p.account, amount: p.amount, currency: p.currency })), memo: request.memo ?? null, ref: request.ref ?? null, session: request.product_runtime_session_id ?? null });
    const before = byKey.get(request.idempotency_key);
    const { row, deliver } = db.inTransaction ? write(request, content) : write.immediate(request, content);
    deliver();
    return toTx(row, before !== undefined);
  }
}

/** What the journal says of a transaction: its kind's fields, in words a reader of the journal expects. */
function eventPayload(row: TxRow, postings: readonly Posting[]): Record<string, unknown> {
  const wallet = postings.find((p) => p.account.startsWith('wallet:'));
  const base = {
    transaction: row.id,
    wallet_id: wallet ? wallet.account.slice('wallet:'.length) : null,
    amount: wallet ? Math.abs(wallet.amount) : Math.abs(postings[0]!.amount),
    currency: (wallet ?? postings[0]!).currency,
    ...(row.session ? { product_runtime_session_id: row.session } : {}),
    ...(row.by ? { by: row.by } : {}),
  };
  if (row.kind === 'capture') return { ...base, payment_id: row.id };
  if (row.kind === 'refund') return { ...base, refund_id: row.id, payment_id: row.ref };
  return base;
}
