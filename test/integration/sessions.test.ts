/**
 * Product runtime sessions end to end over real HTTP on 127.0.0.1 (issue 14 points 2–5, 9): a real runtime, its
 * SQLite file, the shipped signed catalogue, the preflight plugins in the real sandbox, the ledger and the
 * entitlement tokens.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../main/common/receipt.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { ProductSession } from '../../main/runtime/sessions/index.js';
import { BIN, cleanEnv, requireBuild } from '../helpers/cli.js';

/** The built CLI, asynchronously: the host it talks to runs in this process. */
function tessera(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  requireBuild();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args, '--url', host.origin, '--token', host.token], { env: cleanEnv(), timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

let host: RunningHost;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-sessions-'));
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
}, 120_000);
afterAll(async () => {
  await host?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(host.origin + path, {
    method,
    headers: { authorization: `Bearer ${host.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

const PASS = 'city.museum-pass-48h';
const TICKET = 'city.museum-ticket';
let keys = 0;
const key = () => `test-${process.pid}-${++keys}`;

async function balance(wallet = 'main'): Promise<number> {
  const res = await call<{ balances: Array<{ currency: string; amount: number }> }>('GET', `/api/wallets/${wallet}`);
  if (res.status === 404) return 0;
  return res.body.balances.find((b) => b.currency === 'UAH')?.amount ?? 0;
}
async function topUp(amount: number, wallet = 'main'): Promise<void> {
  const res = await call('POST', `/api/wallets/${wallet}/topup`, { amount, currency: 'UAH', idempotency_key: key() });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}
let travellers = 0;
/** A session for a new traveller each time (the products' per-user quotas are small). */
const create = (product: string, extra: Record<string, unknown> = {}) => call<ProductSession>('POST', '/api/sessions', { product, user_id: `traveller-${++travellers}`, market: 'UA', city: 'lviv', ...extra });
const topics = (trace: string) => host.runtime.journal.query({ trace_id: trace, limit: 100, order: 'asc' }).events.map((e) => e.topic);
const chainKinds = (capsule: string) => host.runtime.receipts.chain(capsule).map((r) => r.payload.kind);

describe('product runtime sessions', () => {
  it('buys the 48-hour pass: preflight, payment from the balance, an entitlement code, seed 000 events and a verifiable chain', async () => {
    await topUp(100_000);
    const before = await balance();
    const created = await create(PASS);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.state).toBe('preflight_ok');
    expect(created.body.preflight).toMatchObject({ verdict: 'ACK', reasons: [] });
    const id = created.body.product_runtime_session_id;
    const paid = await call<ProductSession>('POST', `/api/sessions/${id}/pay`, {});
    expect(paid.status, JSON.stringify(paid.body)).toBe(200);
    expect(paid.body.state).toBe('active');
    expect(paid.body.payment).toMatchObject({ amount: paid.body.price.amount, currency: 'UAH' });
    expect(await balance()).toBe(before - paid.body.price.amount);
    expect(paid.body.entitlements).toHaveLength(1);
    const ent = paid.body.entitlements[0]!;
    expect(ent).toMatchObject({ kind: 'time_pass', state: 'active' });
    expect(String(ent['code'])).toMatch(/^TS1:[0-9A-Z $%*+\-./:]+$/);
    expect(String(ent['code']).length).toBeLessThanOrEqual(300);

    expect(topics(paid.body.trace_id).filter((t) => t.startsWith('product.runtime.'))).toEqual([
      'product.runtime.created',
      'product.runtime.preflight_ok',
      'product.runtime.payment_pending',
      'product.runtime.payment_captured',
      'product.runtime.activated',
    ]);
    // Every event of the session, whichever module wrote it, names the session.
    const all = host.runtime.journal.query({ topic: '**', limit: 1000 }).events.filter((e) => JSON.stringify(e.payload).includes(id));
    for (const t of ['payment.captured', 'entitlement.issued', 'token.issued']) expect(all.map((e) => e.topic), t).toContain(t);

    expect(chainKinds(paid.body.capsule)).toEqual(['INTENT', 'RESULT', 'PAYMENT', 'ISSUANCE']);
    for (const r of host.runtime.receipts.chain(paid.body.capsule)) expect(r.payload.body['product_runtime_session_id']).toBe(id);
    const device = host.runtime.deviceKey;
    const verified = verifyChain(host.runtime.receipts.receipts(paid.body.capsule) as DsseEnvelope[], (keyid) => (keyid === device.keyid ? { publicKeyRaw: device.publicKeyRaw } : undefined));
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
  });

  it('charges once for a purchase submitted twice at the same instant, and once for a create sent twice with one key', async () => {
    await topUp(100_000);
    const k = key();
    const [a, b] = await Promise.all([create(TICKET, { idempotency_key: k, user_id: 'double' }), create(TICKET, { idempotency_key: k, user_id: 'double' })]);
    expect(a.body.product_runtime_session_id).toBe(b.body.product_runtime_session_id);
    const id = a.body.product_runtime_session_id;
    const before = await balance();
    const [p1, p2] = await Promise.all([call<ProductSession>('POST', `/api/sessions/${id}/pay`, {}), call<ProductSession>('POST', `/api/sessions/${id}/pay`, {})]);
    expect([p1.status, p2.status]).toEqual([200, 200]);
    expect(p1.body.state).toBe('active');
    expect(p2.body.entitlements.map((e) => e.serial)).toEqual(p1.body.entitlements.map((e) => e.serial));
    expect(await balance()).toBe(before - p1.body.price.amount);
    expect(chainKinds(p1.body.capsule).filter((k) => k === 'PAYMENT')).toHaveLength(1);
  });

  it('leaves an unpaid session waiting when the balance is short (402, nothing charged), and pays once topped up', async () => {
    const created = await create(PASS, { wallet_id: 'short-wallet' });
    const id = created.body.product_runtime_session_id;
    const refused = await call<{ error: { code: string; message: string } }>('POST', `/api/sessions/${id}/pay`, {});
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe('INSUFFICIENT_FUNDS');
    const waiting = await call<ProductSession>('GET', `/api/sessions/${id}`);
    expect(waiting.body).toMatchObject({ state: 'pending_payment', payment: null, entitlements: [] });
    await topUp(created.body.price.amount, 'short-wallet');
    const paid = await call<ProductSession>('POST', `/api/sessions/${id}/pay`, {});
    expect(paid.body.state).toBe('active');
    expect(await balance('short-wallet')).toBe(0);
  });

  it('fails the preflight of a city the product does not cover, with a reason a traveller reads, and refuses to take payment', async () => {
    const created = await create(PASS, { city: 'atlantis' });
    expect(created.body.state).toBe('preflight_failed');
    expect(created.body.preflight?.verdict).toBe('NACK');
    const reason = created.body.preflight!.reasons[0]!;
    expect(reason.code).toBe('PREFLIGHT_CITY_NOT_COVERED');
    expect(reason.message.length).toBeGreaterThan(10);
    expect(chainKinds(created.body.capsule)).toEqual(['INTENT', 'RESULT']);
    const pay = await call<{ error: { code: string } }>('POST', `/api/sessions/${created.body.product_runtime_session_id}/pay`, {});
    expect(pay.status).toBe(409);
    expect(pay.body.error.code).toBe('PREFLIGHT_FAILED');
  });

  it('cancels an unused pass: refund through the ledger, the entitlement revoked, a settlement receipt; a second cancel is refused', async () => {
    await topUp(100_000);
    const before = await balance();
    const created = await create(PASS);
    const id = created.body.product_runtime_session_id;
    const paid = await call<ProductSession>('POST', `/api/sessions/${id}/pay`, {});
    const code = String(paid.body.entitlements[0]!['code']);
    const canceled = await call<ProductSession>('POST', `/api/sessions/${id}/cancel`, { reason: 'changed my mind' });
    expect(canceled.status, JSON.stringify(canceled.body)).toBe(200);
    expect(canceled.body.state).toBe('canceled');
    expect(canceled.body.payment?.refund_id).toBeTruthy();
    expect(await balance()).toBe(before);
    expect(canceled.body.entitlements[0]!.state).toBe('revoked');
    expect(chainKinds(canceled.body.capsule)).toEqual(['INTENT', 'RESULT', 'PAYMENT', 'ISSUANCE', 'PAYMENT', 'SETTLEMENT']);
    const venue = (paid.body.entitlements[0]!['venues'] as string[])[0]!;
    const redeem = await call<{ verdict: string }>('POST', '/api/redeem', { code, venue });
    expect(redeem.body.verdict).toBe('REVOKED');
    const again = await call<{ error: { code: string } }>('POST', `/api/sessions/${id}/cancel`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('SESSION_TRANSITION_REFUSED');
  });

  it('completes a single-ticket session once its ticket is redeemed, with a settlement receipt', async () => {
    await topUp(100_000);
    const created = await create(TICKET);
    const id = created.body.product_runtime_session_id;
    const paid = await call<ProductSession>('POST', `/api/sessions/${id}/pay`, {});
    const ent = paid.body.entitlements[0]!;
    const redeemed = await call<{ verdict: string }>('POST', '/api/redeem', { code: ent['code'], venue: (ent['venues'] as string[])[0] });
    expect(redeemed.body.verdict).toBe('REDEEMED');
    await expect.poll(async () => (await call<ProductSession>('GET', `/api/sessions/${id}`)).body.state, { timeout: 20_000 }).toBe('completed');
    const done = await call<ProductSession>('GET', `/api/sessions/${id}`);
    expect(done.body.reason?.code).toBe('USED_UP');
    const chain = host.runtime.receipts.chain(done.body.capsule);
    expect(chain.at(-1)!.payload.kind).toBe('SETTLEMENT');
    expect(chain.at(-1)!.payload.body['entitlements']).toEqual([expect.objectContaining({ serial: ent.serial, state: 'used' })]);
    expect(topics(done.body.trace_id)).toContain('product.runtime.completed');
  });

  it('stops issuing in degraded mode (seed 000 §7.2) without charging, while existing entitlements still redeem', async () => {
    await topUp(100_000);
    const held = await create(TICKET);
    const heldPaid = await call<ProductSession>('POST', `/api/sessions/${held.body.product_runtime_session_id}/pay`, {});
    const pause = await call('POST', '/api/issuing', { paused: true, reason: 'issuer offline' });
    expect(pause.status).toBeLessThan(300);
    try {
      const before = await balance();
      const created = await create(TICKET);
      const refused = await call<{ error: { code: string } }>('POST', `/api/sessions/${created.body.product_runtime_session_id}/pay`, {});
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('ISSUING_PAUSED');
      expect(await balance()).toBe(before);
      const ent = heldPaid.body.entitlements[0]!;
      const redeemed = await call<{ verdict: string }>('POST', '/api/redeem', { code: ent['code'], venue: (ent['venues'] as string[])[0] });
      expect(redeemed.body.verdict).toBe('REDEEMED');
    } finally {
      await call('POST', '/api/issuing', { paused: false });
    }
  });

  it('answers bad input with stable codes', async () => {
    expect((await call<{ error: { code: string } }>('POST', '/api/sessions', { product: 'no.such-product' })).body.error.code).toBe('PRODUCTDEF_NOT_FOUND');
    expect((await call<{ error: { code: string } }>('POST', '/api/sessions', { product: PASS, user_id: 'has space' })).status).toBe(400);
    expect((await call<{ error: { code: string } }>('POST', '/api/sessions', { product: PASS, extra: 1 })).status).toBe(400);
    expect((await call<{ error: { code: string } }>('GET', '/api/sessions/prs_nope')).body.error.code).toBe('SESSION_NOT_FOUND');
    expect((await call<{ error: { code: string } }>('POST', '/api/sessions/prs_nope/pay', {})).body.error.code).toBe('SESSION_NOT_FOUND');
  });

  it('is usable from the CLI: wallet topup and show, session buy, show and cancel', async () => {
    const top = await tessera(['wallet', 'topup', 'cli-wallet', '60000', 'UAH', '--key', 'cli-top-1']);
    expect(top.status, top.stderr).toBe(0);
    expect(top.stdout).toContain('wallet cli-wallet holds 600.00 UAH');
    expect((await tessera(['wallet', 'topup', 'cli-wallet', '60000', 'UAH', '--key', 'cli-top-1'])).stdout).toContain('already topped up with this key');
    const bought = await tessera(['session', 'buy', PASS, '--user', 'cli-user', '--wallet', 'cli-wallet', '--market', 'UA', '--city', 'lviv', '--json']);
    expect(bought.status, bought.stderr).toBe(0);
    const session = JSON.parse(bought.stdout) as ProductSession;
    expect(session.state).toBe('active');
    expect((await tessera(['wallet', 'show', 'cli-wallet'])).stdout).toContain('wallet cli-wallet: 150.00 UAH');
    const shown = await tessera(['session', 'show', session.product_runtime_session_id]);
    expect(shown.stdout).toContain(`${session.product_runtime_session_id}  active`);
    expect(shown.stdout).toMatch(/entitlement [0-9a-f]{24} time_pass active/);
    const canceled = await tessera(['session', 'cancel', session.product_runtime_session_id, '--reason', 'testing the CLI']);
    expect(canceled.status, canceled.stderr).toBe(0);
    expect(canceled.stdout).toContain('canceled');
    const refused = await tessera(['session', 'pay', session.product_runtime_session_id]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('SESSION_TRANSITION_REFUSED');
    expect((await tessera(['wallet', 'topup', 'cli-wallet', '-5', 'UAH'])).status).toBe(2);
  });
});

describe('where a kiosk sells', () => {
  it('sells where TESSERA_MARKET and TESSERA_CITY say when a session names no city, and the preflight checks that place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-sessions-place-'));
    const elsewhere = await startHost({ dataDir: dir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: { TESSERA_MARKET: 'UA', TESSERA_CITY: 'kyiv' } });
    try {
      const session = await elsewhere.runtime.sessions.create({ product: PASS, user_id: 'placed' });
      expect(session).toMatchObject({ market: 'UA', city: 'kyiv', state: 'preflight_failed' });
      expect(session.preflight?.reasons.map((r) => r.code)).toEqual(['PREFLIGHT_CITY_NOT_COVERED']);
      const named = await elsewhere.runtime.sessions.create({ product: PASS, user_id: 'placed-2', city: 'lviv' });
      expect(named).toMatchObject({ city: 'lviv', state: 'preflight_ok' });
    } finally {
      await elsewhere.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
