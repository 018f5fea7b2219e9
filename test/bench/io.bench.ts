/**
 * Lock hand-over (issue 6 point 8): the time from the release of `tts` by one holder to the grant to the next
 * waiter, p50/p99, with two waiters always queued (each timed operation also queues the next waiter, a few
 * µs). Baselines in the same run: one resolved-promise hop (the floor of any promise-based grant) and an
 * uncontended acquire + release. Target: p50 ≤ 1 ms (1,000 µs).
 */
import { createLockManager } from '../../main/runtime/scenarios/locks.js';
import type { ReleaseLocks } from '../../main/runtime/scenarios/locks.js';
import type { AnyBenchmark, AsyncSide } from './harness.js';

const handOver: AsyncSide = {
  name: 'release by the holder → grant to the next waiter (FIFO, 2 queued)',
  async setup() {
    const locks = createLockManager();
    let n = 0;
    const owner = () => `run-${n++}`;
    let holder: ReleaseLocks = await locks.acquire(['tts'], { owner: owner() });
    const queue: Array<Promise<ReleaseLocks>> = [locks.acquire(['tts'], { owner: owner() }), locks.acquire(['tts'], { owner: owner() })];
    return {
      async run() {
        holder();
        holder = await queue.shift()!;
        queue.push(locks.acquire(['tts'], { owner: owner() }));
      },
      async teardown() {
        holder();
        for (const p of queue) (await p)();
      },
    };
  },
};

const promiseHop: AsyncSide = {
  name: 'baseline: one resolved-promise hop',
  setup: () => ({ run: () => Promise.resolve() }),
};

const uncontended: AsyncSide = {
  name: 'baseline: uncontended acquire + release',
  setup() {
    const locks = createLockManager();
    return {
      async run() {
        (await locks.acquire(['tts'], { owner: 'solo' }))();
      },
    };
  },
};

export const benchmarks: AnyBenchmark[] = [
  { kind: 'latency', name: 'lock hand-over', samples: 20_000, warmup: 5_000, candidate: handOver, baselines: [promiseHop, uncontended], target: { max: 1000 } },
];
