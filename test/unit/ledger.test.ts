/**
 * The double-entry ledger and the internal-balance payment provider (issue 14 point 4), on real SQLite files: every
 * refusal writes nothing, keys make posts idempotent, and — a fast-check property run in three processes, each with
 * its own connection to one file — random concurrent postings never unbalance the books, never take a wallet below
 * zero and never charge a key twice.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../main/common/errors.js';
import type { TesseraEvent } from '../../main/common/api.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createInternalBalanceProvider, createLedger } from '../../main/runtime/ledger/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import type { LedgerOp, LedgerOutcome } from '../fixtures/ledger-poster-worker.js';

function open(path = join(tempDir('tessera-ledger-'), 'ledger.db')) {
  const store = openStore({ path });
  const journal = createJournal({ store });
  const bus = createBus({ journal, logger: createMemoryLogger() });
  const ledger = createLedger({ store, bus });
  return { store, journal, bus, ledger, provider: createInternalBalanceProvider(ledger), path };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isTesseraError(err) ? err.code : String(err);
  }
  return undefined;
}
async function asyncCodeOf(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
  } catch (err) {
    return isTesseraError(err) ? err.code : String(err);
  }
  return undefined;
}

const count = (l: ReturnType<typeof open>) => (l.store.db.prepare('SELECT COUNT(*) AS n FROM ledger_entries').get() as { n: number }).n;

describe('the ledger', () => {
  it('tops up a wallet, captures and refunds, with balances, entries and journal events', async () => {
    const l = open();
    const seen: TesseraEvent[] = [];
    l.bus.subscribe('**', (e) => void seen.push(e));
    const top = l.ledger.topUp({ wallet_id: 'main', amount: 50_000, currency: 'UAH', idempotency_key: 'top-1', by: 'operator' });
    expect(top.balance).toBe(50_000);
    const paid = await l.provider.capture({ session_id: 'prs_1', wallet_id: 'main', amount: 45_000, currency: 'UAH', idempotency_key: 'prs_1:capture', merchant: 'city.museum-pass-48h' });
    expect(l.ledger.balance('main', 'UAH')).toBe(5_000);
    expect(l.ledger.balance('revenue:city.museum-pass-48h', 'UAH')).toBe(45_000);
    const back = await l.provider.refund({ payment_id: paid.payment_id, amount: 45_000, currency: 'UAH', idempotency_key: 'prs_1:refund', reason: 'canceled' });
    expect(back.refund_id).toMatch(/^ltx_/);
    expect(l.ledger.wallet('main')).toEqual({ wallet_id: 'main', balances: [{ currency: 'UAH', amount: 50_000 }] });
    expect(l.ledger.entries('main').entries.map((e) => [e.kind, e.amount])).toEqual([['refund', 45_000], ['capture', -45_000], ['topup', 50_000]]);
    expect(seen.map((e) => e.topic)).toEqual(['wallet.topped_up', 'payment.captured', 'payment.refunded']);
    expect(seen[1]!.payload).toMatchObject({ payment_id: paid.payment_id, product_runtime_session_id: 'prs_1', wallet_id: 'main', amount: 45_000, currency: 'UAH' });
    expect(l.ledger.check()).toEqual({ ok: true, problems: [] });
    l.store.close();
  });

  it('refuses an unbalanced transaction, a wallet below zero and bad amounts, writing nothing', () => {
    const l = open();
    l.ledger.topUp({ wallet_id: 'main', amount: 100, currency: 'UAH', idempotency_key: 'top' });
    const before = count(l);
    const lastEvent = l.journal.lastId();
    expect(codeOf(() => l.ledger.post({ idempotency_key: 'u', kind: 'adjust', postings: [{ account: 'wallet:main', amount: -10, currency: 'UAH' }, { account: 'revenue:x', amount: 9, currency: 'UAH' }] }))).toBe('LEDGER_UNBALANCED');
    expect(codeOf(() => l.ledger.post({ idempotency_key: 'c', kind: 'adjust', postings: [{ account: 'wallet:main', amount: -10, currency: 'UAH' }, { account: 'revenue:x', amount: 10, currency: 'EUR' }] }))).toBe('LEDGER_UNBALANCED');
    expect(codeOf(() => l.ledger.post({ idempotency_key: 'o', kind: 'capture', postings: [{ account: 'wallet:main', amount: -101, currency: 'UAH' }, { account: 'revenue:x', amount: 101, currency: 'UAH' }] }))).toBe('INSUFFICIENT_FUNDS');
    expect(codeOf(() => l.ledger.post({ idempotency_key: 'f', kind: 'capture', postings: [{ account: 'wallet:main', amount: -1.5, currency: 'UAH' }, { account: 'revenue:x', amount: 1.5, currency: 'UAH' }] }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => l.ledger.post({ idempotency_key: 'big', kind: 'adjust', postings: [{ account: 'external:x', amount: -(2 ** 53), currency: 'UAH' }, { account: 'wallet:main', amount: 2 ** 53, currency: 'UAH' }] }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => l.ledger.post({ idempotency_key: 'acct', kind: 'adjust', postings: [{ account: 'main', amount: -1, currency: 'UAH' }, { account: 'wallet:main', amount: 1, currency: 'UAH' }] }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => l.ledger.post({ idempotency_key: 'cur', kind: 'adjust', postings: [{ account: 'external:x', amount: -1, currency: 'uah' }, { account: 'wallet:main', amount: 1, currency: 'uah' }] }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => l.ledger.post({ idempotency_key: 'zero', kind: 'adjust', postings: [{ account: 'external:x', amount: 0, currency: 'UAH' }, { account: 'wallet:main', amount: 0, currency: 'UAH' }] }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => l.ledger.topUp({ wallet_id: 'main', amount: -5, currency: 'UAH', idempotency_key: 'neg' }))).toBe('VALIDATION_FAILED');
    expect(count(l)).toBe(before);
    expect(l.journal.lastId()).toBe(lastEvent);
    expect(l.ledger.balance('main', 'UAH')).toBe(100);
    expect(l.ledger.wallet('nobody')).toEqual({ wallet_id: 'nobody', balances: [] });
    l.store.close();
  });

  it('answers the same key with the first transaction, refuses it for other content, and never refunds more than was taken', async () => {
    const l = open();
    const a = l.ledger.topUp({ wallet_id: 'main', amount: 1_000, currency: 'UAH', idempotency_key: 'same' });
    const b = l.ledger.topUp({ wallet_id: 'main', amount: 1_000, currency: 'UAH', idempotency_key: 'same' });
    expect(b.id).toBe(a.id);
    expect([a.replayed, b.replayed]).toEqual([false, true]);
    expect(l.ledger.balance('main', 'UAH')).toBe(1_000);
    expect(codeOf(() => l.ledger.topUp({ wallet_id: 'main', amount: 2_000, currency: 'UAH', idempotency_key: 'same' }))).toBe('IDEMPOTENCY_CONFLICT');
    const paid = await l.provider.capture({ session_id: 's', wallet_id: 'main', amount: 600, currency: 'UAH', idempotency_key: 's:capture', merchant: 'm' });
    const again = await l.provider.capture({ session_id: 's', wallet_id: 'main', amount: 600, currency: 'UAH', idempotency_key: 's:capture', merchant: 'm' });
    expect(again.payment_id).toBe(paid.payment_id);
    expect(l.ledger.balance('main', 'UAH')).toBe(400);
    expect(await l.provider.findCapture('s:capture')).toEqual(paid);
    expect(await l.provider.findCapture('never')).toBeUndefined();
    await l.provider.refund({ payment_id: paid.payment_id, amount: 400, currency: 'UAH', idempotency_key: 'r1', reason: 'part' });
    expect(await asyncCodeOf(() => l.provider.refund({ payment_id: paid.payment_id, amount: 201, currency: 'UAH', idempotency_key: 'r2', reason: 'too much' }))).toBe('VALIDATION_FAILED');
    expect(await asyncCodeOf(() => l.provider.refund({ payment_id: paid.payment_id, amount: 200, currency: 'EUR', idempotency_key: 'r3', reason: 'wrong currency' }))).toBe('CURRENCY_MISMATCH');
    const r1again = await l.provider.refund({ payment_id: paid.payment_id, amount: 400, currency: 'UAH', idempotency_key: 'r1', reason: 'part' });
    expect(l.ledger.transaction(r1again.refund_id)?.kind).toBe('refund');
    expect(l.ledger.balance('main', 'UAH')).toBe(800);
    expect(l.ledger.check().ok).toBe(true);
    l.store.close();
  });

  it('rolls a post back with the caller\'s transaction', () => {
    const l = open();
    expect(
      codeOf(() =>
        l.store.db.transaction(() => {
          l.ledger.topUp({ wallet_id: 'main', amount: 10, currency: 'UAH', idempotency_key: 'inner' });
          throw new Error('the caller failed after the post');
        })(),
      ),
    ).toContain('the caller failed');
    expect(l.ledger.find('inner')).toBeUndefined();
    expect(l.ledger.balance('main', 'UAH')).toBe(0);
    l.store.close();
  });

  it('detects books that were altered behind its back', () => {
    const l = open();
    l.ledger.topUp({ wallet_id: 'main', amount: 10, currency: 'UAH', idempotency_key: 'x' });
    l.store.db.prepare("UPDATE ledger_balances SET amount = 11 WHERE account = 'wallet:main'").run();
    expect(l.ledger.check()).toMatchObject({ ok: false, problems: [expect.stringContaining('wallet:main UAH: the entries sum to 10, the balance says 11')] });
    l.store.close();
  });
});

const worker = fileURLToPath(new URL('../fixtures/ledger-poster-worker.ts', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

/** One poster process with its own connection to the file; resolves with its outcomes. */
function runPoster(path: string, ops: LedgerOp[], n: number): Promise<LedgerOutcome[]> {
  const plan = `${path}.plan-${n}.json`;
  writeFileSync(plan, JSON.stringify({ path, ops }));
  return new Promise((resolve, reject) => {
    execFile(tsx, [worker, plan], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`poster ${n} failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as LedgerOutcome[]);
    });
  });
}

const wallets = ['a', 'b'];
const opArb = fc.oneof(
  fc.record({ op: fc.constant('topup' as const), wallet: fc.constantFrom(...wallets), amount: fc.integer({ min: 1, max: 500 }), key: fc.integer({ min: 0, max: 15 }).map((k) => `t${k}`) }),
  fc.record({ op: fc.constant('capture' as const), wallet: fc.constantFrom(...wallets), amount: fc.integer({ min: 1, max: 400 }), key: fc.integer({ min: 0, max: 15 }).map((k) => `c${k}`) }),
  fc.record({ op: fc.constant('refund' as const), capture: fc.integer({ min: 0, max: 15 }).map((k) => `c${k}`), amount: fc.integer({ min: 1, max: 400 }), key: fc.integer({ min: 0, max: 15 }).map((k) => `r${k}`) }),
);

describe('the ledger under concurrent postings (property)', () => {
  it('never unbalances, never takes a wallet below zero and never posts a key twice, whatever three processes post at once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { minLength: 5, maxLength: 25 }), { minLength: 3, maxLength: 3 }), async (plans) => {
        const path = join(tempDir('tessera-ledger-prop-'), 'ledger.db');
        open(path).store.close(); // migrate once, before the workers race
        const outcomes = (await Promise.all(plans.map((ops, n) => runPoster(path, ops, n)))).flat();
        const l = open(path);
        try {
          expect(l.ledger.check()).toEqual({ ok: true, problems: [] });
          // No wallet or revenue account below zero.
          const negative = l.store.db.prepare("SELECT account, amount FROM ledger_balances WHERE amount < 0 AND account NOT LIKE 'external:%'").all();
          expect(negative).toEqual([]);
          // One transaction per key, whatever the outcomes said: every report of a key names the same transaction.
          const byKey = new Map<string, Set<string>>();
          for (const o of outcomes) if (o.tx) (byKey.get(o.key) ?? byKey.set(o.key, new Set()).get(o.key)!).add(o.tx);
          for (const [key, txs] of byKey) expect(txs.size, key).toBe(1);
          const keys = (l.store.db.prepare('SELECT COUNT(*) AS n FROM ledger_transactions').get() as { n: number }).n;
          expect(keys).toBe(byKey.size);
          // Only stable refusals; never an unexplained fault.
          for (const o of outcomes) if (o.code) expect(['INSUFFICIENT_FUNDS', 'IDEMPOTENCY_CONFLICT', 'VALIDATION_FAILED', 'NO_CAPTURE']).toContain(o.code);
          // What the wallets hold is what the transactions say: top-ups less captures plus refunds.
          const sum = (kind: string) => (l.store.db.prepare(`SELECT COALESCE(SUM(e.amount), 0) AS s FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx WHERE t.kind = ? AND e.account LIKE 'wallet:%'`).get(kind) as { s: number }).s;
          const held = wallets.reduce((s, w) => s + l.ledger.balance(w, 'UAH'), 0);
          expect(held).toBe(sum('topup') + sum('capture') + sum('refund'));
        } finally {
          l.store.close();
        }
      }),
      { numRuns: 10 },
    );
  }, 240_000);
});
