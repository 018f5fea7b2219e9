/**
 * kill -9 during a payment (issue 14 "Bad input and races"): a child runtime buys the 48-hour pass again and again
 * and is killed at a random moment, often inside a payment. Reopened, every session is either paid with its
 * receipts and its entitlement, or not paid at all — never charged without a pass, never a pass without a charge —
 * and the wallet's balance is the top-up less exactly the sessions that are active.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { BUILTIN_CATALOGUE_DIR, BUILTIN_PLUGINS_DIR, BUILTIN_TRUST_DIR } from '../../main/host/paths.js';
import { tempDir } from '../helpers/tmp.js';

const worker = fileURLToPath(new URL('../fixtures/session-buyer-worker.ts', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
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
function buyAndKill(dataDir: string, atLeast: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, [worker, dataDir, PRODUCT], { stdio: ['ignore', 'pipe', 'pipe'] });
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
      await runtime.ledger.topUp({ wallet_id: 'main', amount: TOP_UP, currency: 'UAH', idempotency_key: 'crash-test-topup' });
      await runtime.close();
    }
    for (let round = 0; round < 3; round++) await buyAndKill(dataDir, 2 + round);

    const runtime = await open(dataDir);
    try {
      await runtime.sessions.recover();
      const sessions = runtime.sessions.list({ limit: 500 });
      expect(sessions.length).toBeGreaterThanOrEqual(9);
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
          expect(['created', 'preflight_ok', 'pending_payment']).toContain(s.state);
          expect(captured, s.product_runtime_session_id).toBeUndefined();
          expect(kinds).not.toContain('PAYMENT');
          expect(s.entitlements).toHaveLength(0);
        }
      }
      const balance = runtime.ledger.balance('main', 'UAH');
      expect(balance).toBe(TOP_UP - spent);
      expect(runtime.ledger.check()).toMatchObject({ ok: true });
    } finally {
      await runtime.close();
    }
  }, 300_000);
});
