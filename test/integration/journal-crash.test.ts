import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createJournal } from '../../main/runtime/journal/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const writer = fileURLToPath(new URL('../fixtures/journal-writer.ts', import.meta.url));

/** Start the writer, wait until it has acknowledged `count` events, SIGKILL it mid-burst, return the acknowledged ids. */
function burstAndKill(dbPath: string, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, dbPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let buffer = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) acked.push(Number(line));
      if (!killed && acked.length >= count) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`writer exited with ${code}: ${stderr}`));
    });
  });
}

describe('journal durability', () => {
  it('keeps every acknowledged event and an intact database through repeated SIGKILLs mid-burst', async () => {
    const dbPath = join(tempDir(), 'tessera.db');
    const allAcked: number[] = [];
    for (let round = 0; round < 3; round++) {
      const acked = await burstAndKill(dbPath, 3000);
      expect(acked.length).toBeGreaterThanOrEqual(3000);
      allAcked.push(...acked);

      const store = openStore({ path: dbPath });
      try {
        expect(store.integrityCheck()).toEqual(['ok']);
        const journal = createJournal({ store });
        const stored = new Set<number>();
        for (let after = 0, page; (page = journal.query({ after, limit: 1000 })).events.length > 0; after = page.events.at(-1)!.id) {
          for (const e of page.events) stored.add(e.id);
        }
        const missing = allAcked.filter((id) => !stored.has(id));
        expect(missing).toEqual([]);
        // ids are dense: an event is either wholly there or wholly absent (batches are all-or-nothing)
        const ids = [...stored].sort((a, b) => a - b);
        expect(ids[ids.length - 1]! - ids[0]! + 1).toBe(ids.length);
        // batches are all-or-nothing: every batch stored has all 5 of its events
        const batchSizes = new Map<string, number>();
        for (let after = 0, page; (page = journal.query({ topic: 'burst.batch', after, limit: 1000 })).events.length > 0; after = page.events.at(-1)!.id) {
          for (const e of page.events) {
            const { run, i } = e.payload as { run: number; i: number };
            batchSizes.set(`${run}:${i}`, (batchSizes.get(`${run}:${i}`) ?? 0) + 1);
          }
        }
        expect(batchSizes.size).toBeGreaterThan(0);
        expect([...batchSizes.values()].filter((n) => n !== 5)).toEqual([]);
      } finally {
        store.close();
      }
    }
  }, 300_000);
});
