/**
 * Durability under SIGKILL (issue 4 §2): a real worker process is killed at random points many times while
 * it runs scenarios of effectful steps; after the last restart every run has reached a final state and each
 * effect happened exactly once per idempotency key.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

const worker = fileURLToPath(new URL('../fixtures/scenario-worker.ts', import.meta.url));
const RUNS = 20;

function life(dataDir: string, n: number, killAfterMs: number | null): Promise<'done' | 'killed'> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', worker, dataDir, String(RUNS), String(n)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    // The kill delay counts from the worker's `ready` (runtime up, runs about to be resumed and enqueued), so a
    // slow start-up on a busy machine does not make every kill land before any scenario work.
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (killAfterMs !== null && timer === undefined && out.includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (out.includes('done')) resolve('done');
      else if (signal === 'SIGKILL') resolve('killed');
      else reject(new Error(`worker exited ${code}: ${err}`));
    });
  });
}

describe('scenario durability', () => {
  it('finishes every run with each effect exactly once, across many SIGKILLs at random points', async () => {
    const dataDir = tempDir('tessera-crash-');
    let kills = 0;
    const outcomes: string[] = [];
    // Seeded schedule of kill delays after `ready`: a life's runs (20, 6 at a time, each over 150 ms) take ~600 ms
    // and more, so kills land while runs are being enqueued, resumed, mid-step and finishing.
    let seed = 7;
    const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    // Every life brings RUNS new runs (each lasting over 150 ms), so each kill lands on unfinished work.
    for (let i = 0; i < 12; i++) {
      const outcome = await life(dataDir, i, Math.floor(next() * 700));
      outcomes.push(outcome);
      if (outcome === 'killed') kills++;
    }
    expect(await life(dataDir, 12, null)).toBe('done');
    expect(kills, `lives: ${outcomes.join(', ')}`).toBeGreaterThanOrEqual(6);

    const runtime = await createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger() });
    try {
      expect(runtime.store.integrityCheck()).toEqual(['ok']);
      const runs = runtime.scenarios.runs({ scenario_id: 'crashy', limit: 1000 });
      // A life killed while enqueueing kept a prefix of its runs (records commit in order); most kept all RUNS.
      const byLife = new Map<string, number[]>();
      for (const r of runs) {
        const [, life, index] = /^crash-(\d+)-(\d+)$/.exec(r.run_id)!;
        byLife.set(life!, [...(byLife.get(life!) ?? []), Number(index)]);
      }
      for (const indices of byLife.values()) expect(indices.sort((a, b) => a - b)).toEqual(indices.map((_, i) => i));
      expect(runs.length).toBeGreaterThanOrEqual(RUNS * 2);
      expect(runs.every((r) => r.state === 'completed')).toBe(true);
      const effects = new Map<string, number>();
      for (let after = 0, page; (page = runtime.journal.query({ topic: 'test.effect', after, limit: 1000 })).events.length > 0; after = page.events.at(-1)!.id) {
        for (const e of page.events) {
          const { run, step } = e.payload as { run: string; step: string };
          effects.set(`${run}/${step}`, (effects.get(`${run}/${step}`) ?? 0) + 1);
        }
      }
      expect(effects.size).toBe(runs.length * 4);
      expect([...effects.entries()].filter(([, n]) => n !== 1)).toEqual([]);
      const said = runtime.journal.query({ topic: 'io.say', limit: 1000 }).events.map((e) => (e.payload as { text: string }).text);
      expect(said).toHaveLength(runs.length);
      expect(new Set(said).size).toBe(runs.length);
      const memoryChanges = runtime.journal.query({ topic: 'memory.changed', limit: 1000 }).events;
      expect(memoryChanges).toHaveLength(runs.length);
      // Kills landed mid-run: some runs were resumed after having started in an earlier life.
      const resumed = runtime.journal.query({ topic: 'scenario.run.started', limit: 1000 }).events.filter((e) => (e.payload as { resumed: boolean }).resumed);
      expect(resumed.length).toBeGreaterThan(0);
    } finally {
      await runtime.close();
    }
  }, 180_000);
});
