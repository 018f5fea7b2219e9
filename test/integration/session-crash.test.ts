/**
 * kill -9 during a payment (issue 14 "Bad input and races"): a child runtime buys the 48-hour pass again and again
 * and is killed at a random moment, often inside a payment. Reopened, every session is either paid with its
 * receipts and its entitlement, or not paid at all — never charged without a pass, never a pass without a charge —
 * and the wallet's balance is the top-up less exactly the sessions that are active.
 */
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { BUILTIN_CATALOGUE_DIR, BUILTIN_PLUGINS_DIR, BUILTIN_TRUST_DIR } from '../../main/host/paths.js';
import { tempDir } from '../helpers/tmp.js';

const worker = fileURLToPath(new URL('../fixtures/session-buyer-worker.ts', import.meta.url));
const PRODUCT = 'city.museum-pass-48h';
const TOP_UP = 100_000_000;

async function open(dataDir: string) {
  return createRuntime({
    dataDir,
    shell: 'headless',
    logger: createMemoryLogger(),
    builtinTrustDir: BUILTIN_TRUST_DIR,
    pluginDirs: [BUILTIN_PLUGINS_DIR, join(dataDir, 'plugins')],
    catalogueDirs: [BUILTIN_CATALOGUE_DIR],
    voice: false,
  });
}

/** Runs the buyer until it has printed `paid` `atLeast` times plus a random few milliseconds, then SIGKILLs it. */
function buyAndKill(dataDir: string, atLeast: number, mode = 'loop'): Promise<void> {
  return new Promise((resolve, reject) => {
    // node itself, not the tsx wrapper (whose child would outlive a SIGKILL of the wrapper).
    const child = spawn(process.execPath, ['--import', 'tsx', worker, dataDir, PRODUCT, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killing = false;
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!killing && (out.match(/^paid /gm) ?? []).length >= atLeast) {
        killing = true;
        // Somewhere inside the next purchase: preflight, capture, issuing or the commit.
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 40));
      }
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the buyer exited with ${code}: ${err}`))));
  });
}

describe('a payment cut by kill -9', () => {
  it('is afterwards either done with its receipts or not done at all, over several kills', async () => {
    const dataDir = tempDir('tessera-session-crash-');
    {
      const runtime = await open(dataDir);
      for (let w = 0; w < 4; w++) await runtime.ledger.topUp({ wallet_id: `w${w}`, amount: TOP_UP, currency: 'UAH', idempotency_key: `crash-test-topup-${w}` });
      await runtime.close();
    }
    for (let round = 0; round < 3; round++) await buyAndKill(dataDir, 2 + round);

    const runtime = await open(dataDir);
    try {
      await runtime.sessions.recover();
      const sessions = runtime.sessions.list({ limit: 500 });
      expect(sessions.filter((s) => s.state === 'active').length).toBeGreaterThanOrEqual(9);
      let spent = 0;
      for (const s of sessions) {
        const captured = await runtime.payments.findCapture(`${s.product_runtime_session_id}:capture`);
        const kinds = runtime.receipts.chain(s.capsule).map((r) => r.payload.kind);
        if (s.state === 'active') {
          expect(captured, s.product_runtime_session_id).toBeDefined();
          expect(kinds).toEqual(['INTENT', 'RESULT', 'PAYMENT', 'ISSUANCE']);
          expect(s.entitlements).toHaveLength(1);
          spent += s.price.amount;
        } else {
          // Not paid: no charge, no payment receipt, no entitlement.
          expect(['created', 'preflight_ok', 'preflight_failed', 'pending_payment']).toContain(s.state);
          expect(captured, s.product_runtime_session_id).toBeUndefined();
          expect(kinds).not.toContain('PAYMENT');
          expect(s.entitlements).toHaveLength(0);
        }
      }
      const held = [0, 1, 2, 3].reduce((sum, w) => sum + runtime.ledger.balance(`w${w}`, 'UAH'), 0);
      expect(held).toBe(4 * TOP_UP - spent);
      expect(runtime.ledger.check()).toMatchObject({ ok: true });
    } finally {
      await runtime.close();
    }
  }, 300_000);

  it('finishes, at the next start, a purchase whose payment was captured just before the kill', async () => {
    const dataDir = tempDir('tessera-session-crash-');
    {
      const runtime = await open(dataDir);
      for (let w = 0; w < 4; w++) await runtime.ledger.topUp({ wallet_id: `w${w}`, amount: TOP_UP, currency: 'UAH', idempotency_key: `crash-test-topup-${w}` });
      await runtime.close();
    }
    await buyAndKill(dataDir, Number.POSITIVE_INFINITY, 'kill-after-capture');
    // Before the next start: the money is taken and the session still says a capture is in flight.
    const db = new Database(join(dataDir, 'tessera.db'), { readonly: true });
    const [inFlight] = db.prepare("SELECT id, state, pending_action FROM product_sessions WHERE pending_action IS NOT NULL").all() as Array<{ id: string; state: string; pending_action: string }>;
    db.close();
    expect(inFlight).toMatchObject({ state: 'pending_payment', pending_action: 'capture' });
    const runtime = await open(dataDir);
    try {
      const session = runtime.sessions.get(inFlight!.id);
      expect(session.state).toBe('active');
      expect(session.entitlements).toHaveLength(1);
      expect(runtime.receipts.chain(session.capsule).map((r) => r.payload.kind)).toEqual(['INTENT', 'RESULT', 'PAYMENT', 'ISSUANCE']);
      expect(session.payment?.payment_id).toBe((await runtime.payments.findCapture(`${session.product_runtime_session_id}:capture`))?.payment_id);
      expect(runtime.ledger.check().ok).toBe(true);
    } finally {
      await runtime.close();
    }
  }, 300_000);
});
