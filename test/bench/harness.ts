/**
 * A tiny benchmark harness. Each benchmark pairs a candidate (Tessera code) with a baseline (the plain thing
 * underneath) measured in the same run, on the same machine, in alternating rounds, so the ratio means
 * something even when absolute numbers drift. Figures are printed, never asserted.
 */
export interface Side {
  name: string;
  /** Prepare fresh state for one round; returns the function to time and an optional cleanup. */
  setup(): { run(): void; teardown?(): void };
}

export interface Benchmark {
  name: string;
  /** Operations performed by one `run()` call (for ops/s). */
  opsPerRun: number;
  /** `run()` calls per round. */
  runsPerRound: number;
  baseline: Side;
  candidate: Side;
}

export interface Result {
  benchmark: string;
  baseline: { name: string; opsPerSec: number; usPerOp: number };
  candidate: { name: string; opsPerSec: number; usPerOp: number };
  /** candidate ops/s ÷ baseline ops/s (1.0 = as fast as the baseline). */
  ratio: number;
  rounds: number;
}

function timeSide(side: Side, b: Benchmark): number {
  const { run, teardown } = side.setup();
  try {
    for (let i = 0; i < Math.min(50, b.runsPerRound); i++) run(); // warm-up
    const start = process.hrtime.bigint();
    for (let i = 0; i < b.runsPerRound; i++) run();
    const ns = Number(process.hrtime.bigint() - start);
    return (b.runsPerRound * b.opsPerRun) / (ns / 1e9);
  } finally {
    teardown?.();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function measure(b: Benchmark, rounds = 5): Result {
  const base: number[] = [];
  const cand: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so neither side always runs on a warmer cache.
    if (r % 2 === 0) {
      base.push(timeSide(b.baseline, b));
      cand.push(timeSide(b.candidate, b));
    } else {
      cand.push(timeSide(b.candidate, b));
      base.push(timeSide(b.baseline, b));
    }
  }
  const bo = median(base);
  const co = median(cand);
  return {
    benchmark: b.name,
    baseline: { name: b.baseline.name, opsPerSec: bo, usPerOp: 1e6 / bo },
    candidate: { name: b.candidate.name, opsPerSec: co, usPerOp: 1e6 / co },
    ratio: co / bo,
    rounds,
  };
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));

export function report(results: Result[]): string {
  const lines = ['', 'benchmark                              candidate ops/s   µs/op   baseline ops/s   µs/op   ratio'];
  for (const r of results) {
    lines.push(
      `${r.benchmark.padEnd(38)} ${fmt(r.candidate.opsPerSec).padStart(15)} ${fmt(r.candidate.usPerOp).padStart(7)} ${fmt(r.baseline.opsPerSec).padStart(16)} ${fmt(r.baseline.usPerOp).padStart(7)}   ${r.ratio.toFixed(2)}×`,
    );
    lines.push(`  candidate: ${r.candidate.name}; baseline: ${r.baseline.name}; median of ${r.rounds} rounds`);
  }
  return lines.join('\n');
}
