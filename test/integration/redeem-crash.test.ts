import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openHarness } from '../fixtures/entitlements-harness.js';
import { tempDir } from '../helpers/tmp.js';

const worker = fileURLToPath(new URL('../fixtures/redeem-worker.ts', import.meta.url));

/** Start the worker, wait for `count` acknowledged redemptions, SIGKILL it mid-stream; the acknowledged ids. */
function redeemAndKill(dir: string, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', worker, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: string[] = [];
    let buffer = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      acked.push(...lines);
      if (!killed && acked.length >= count) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(acked) : reject(new Error(`worker exited with ${code}: ${stderr}`))));
  });
}

describe('redemption durability', () => {
  it('leaves every ledger row with its signed receipt and every REDEMPTION receipt with its row after kill -9 mid-redemption', async () => {
    const dir = tempDir();
    const acked: string[] = [];
    for (let round = 0; round < 3; round++) acked.push(...await redeemAndKill(dir, 150 + round * 37));
    const h = openHarness(dir);
    try {
      expect(h.store.integrityCheck()).toEqual(['ok']);
      const db = h.store.db;
      const rows = db.prepare('SELECT id, receipt_id, capsule FROM ent_redemptions').all() as Array<{ id: string; receipt_id: string; capsule: string }>;
      // Every acknowledged redemption is there.
      const ids = new Set(rows.map((r) => r.id));
      for (const id of acked) expect(ids.has(id), id).toBe(true);
      // Every ledger row has its receipt, in its capsule's chain.
      for (const r of rows) {
        const receipt = db.prepare('SELECT capsule, kind FROM receipt_chain WHERE id = ?').get(r.receipt_id) as { capsule: string; kind: string } | undefined;
        expect(receipt, r.id).toEqual({ capsule: r.capsule, kind: 'REDEMPTION' });
      }
      // Every REDEMPTION receipt has its ledger row.
      const receiptIds = db.prepare("SELECT id FROM receipt_chain WHERE kind = 'REDEMPTION'").all() as Array<{ id: string }>;
      const rowReceipts = new Set(rows.map((r) => r.receipt_id));
      for (const { id } of receiptIds) expect(rowReceipts.has(id), id).toBe(true);
      expect(receiptIds.length).toBe(rows.length);
      // And the journal says so too.
      expect((db.prepare("SELECT count(*) AS n FROM events WHERE topic = 'entitlement.redeemed'").get() as { n: number }).n).toBe(rows.length);
      expect(rows.length).toBeGreaterThanOrEqual(acked.length);
    } finally {
      h.close();
    }
  }, 120_000);
});
