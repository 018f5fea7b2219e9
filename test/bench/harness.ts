/**
 * A tiny benchmark harness. Each benchmark pairs a candidate (Tessera code) with one or more baselines (the
 * plain things underneath) measured in the same run, on the same machine, in alternating rounds, so the ratio
 * means something even when absolute numbers drift. Figures are printed, never asserted; a benchmark may name
 * a target, and the report says whether it was met.
 *
 * Four shapes:
 * - `Benchmark` (ops): synchronous throughput, median ops/s of the rounds; ratio = candidate ÷ baseline ops/s.
 * - `LatencyBenchmark`: one operation at a time, awaited; p50, p95 and p99 over every sample of every round;
 *   ratio = candidate p50 ÷ baseline p50 (how many times the baseline's time).
 * - `ThroughputBenchmark`: `inFlight` operations kept in flight; median ops/s of the rounds;
 *   ratio = candidate ÷ baseline ops/s.
 * - `FigureBenchmark`: a value the benchmark measures itself (a cold load in ms, bytes per plugin);
 *   ratio = candidate ÷ baseline value.
 */
export interface Side {
  name: string;
  /** Prepare fresh state for one round; returns the function to time and an optional cleanup. */
  setup(): { run(): void; teardown?(): void };
}

export interface Benchmark {
  kind?: 'ops';
  name: string;
  /** Operations performed by one `run()` call (for ops/s). */
  opsPerRun: number;
  /** `run()` calls per round. */
  runsPerRound: number;
  baseline: Side;
  candidate: Side;
}

/** A side whose operation may be asynchronous; `setup` may be too (forking a process, loading a plugin). */
export interface AsyncSide {
  name: string;
  setup(): Promise<{ run(): unknown; teardown?(): unknown }> | { run(): unknown; teardown?(): unknown };
}

/** A threshold from an issue: `max` for times and sizes, `min` for rates. */
export interface Target {
  max?: number;
  min?: number;
}

export interface LatencyBenchmark {
  kind: 'latency';
  name: string;
  /** Timed operations per round (after `warmup` untimed ones). */
  samples: number;
  warmup?: number;
  candidate: AsyncSide;
  baselines: AsyncSide[];
  /** Target for the candidate's p50, µs. */
  target?: Target;
}

export interface ThroughputBenchmark {
  kind: 'throughput';
  name: string;
  /** Operations kept in flight at once. */
  inFlight: number;
  /** Operations per round (after `warmup` untimed ones). */
  ops: number;
  warmup?: number;
  candidate: AsyncSide;
  baselines: AsyncSide[];
  /** Target for the candidate's ops/s. */
  target?: Target;
}

export interface FigureSide {
  name: string;
  /** One measurement (one round). */
  measure(): Promise<number> | number;
}

export interface FigureBenchmark {
  kind: 'figure';
  name: string;
  unit: string;
  candidate: FigureSide;
  baselines: FigureSide[];
  target?: Target;
}

export type AnyBenchmark = Benchmark | LatencyBenchmark | ThroughputBenchmark | FigureBenchmark;

export interface Result {
  kind?: 'ops';
  benchmark: string;
  baseline: { name: string; opsPerSec: number; usPerOp: number };
  candidate: { name: string; opsPerSec: number; usPerOp: number };
  /** candidate ops/s ÷ baseline ops/s (1.0 = as fast as the baseline). */
  ratio: number;
  rounds: number;
}

export interface LatencyFigures {
  name: string;
  p50Us: number;
  p95Us: number;
  p99Us: number;
  meanUs: number;
  samples: number;
}

export interface LatencyResult {
  kind: 'latency';
  benchmark: string;
  candidate: LatencyFigures;
  /** `ratio`: candidate p50 ÷ this baseline's p50. */
  baselines: Array<LatencyFigures & { ratio: number }>;
  target?: Target & { met: boolean };
  rounds: number;
}

export interface ThroughputResult {
  kind: 'throughput';
  benchmark: string;
  inFlight: number;
  candidate: { name: string; opsPerSec: number };
  /** `ratio`: candidate ops/s ÷ this baseline's ops/s. */
  baselines: Array<{ name: string; opsPerSec: number; ratio: number }>;
  target?: Target & { met: boolean };
  rounds: number;
}

export interface FigureResult {
  kind: 'figure';
  benchmark: string;
  unit: string;
  candidate: { name: string; value: number };
  /** `ratio`: candidate ÷ this baseline. */
  baselines: Array<{ name: string; value: number; ratio: number }>;
  target?: Target & { met: boolean };
  rounds: number;
}

export type AnyResult = Result | LatencyResult | ThroughputResult | FigureResult;

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
/** Nearest-rank percentile of sorted values. */
const percentile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

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
    kind: 'ops',
    benchmark: b.name,
    baseline: { name: b.baseline.name, opsPerSec: bo, usPerOp: 1e6 / bo },
    candidate: { name: b.candidate.name, opsPerSec: co, usPerOp: 1e6 / co },
    ratio: co / bo,
    rounds,
  };
}

/** Rounds visit the sides in a rotating order, so no side always runs first (cold) or last (warm). */
function rotation<T>(sides: T[], round: number): T[] {
  const k = round % sides.length;
  return [...sides.slice(k), ...sides.slice(0, k)];
}

const meet = (value: number, target: Target | undefined): (Target & { met: boolean }) | undefined =>
  target && { ...target, met: (target.max === undefined || value <= target.max) && (target.min === undefined || value >= target.min) };

async function sampleLatency(side: AsyncSide, b: LatencyBenchmark): Promise<Float64Array> {
  const { run, teardown } = await side.setup();
  try {
    for (let i = 0; i < (b.warmup ?? Math.min(200, b.samples)); i++) await run();
    const out = new Float64Array(b.samples);
    for (let i = 0; i < b.samples; i++) {
      const start = process.hrtime.bigint();
      await run();
      out[i] = Number(process.hrtime.bigint() - start) / 1e3;
    }
    return out;
  } finally {
    await teardown?.();
  }
}

export async function measureLatency(b: LatencyBenchmark, rounds = 5): Promise<LatencyResult> {
  const sides = [b.candidate, ...b.baselines];
  const samples = new Map<AsyncSide, Float64Array[]>(sides.map((s) => [s, []]));
  for (let r = 0; r < rounds; r++) {
    for (const side of rotation(sides, r)) samples.get(side)!.push(await sampleLatency(side, b));
  }
  const figures = (side: AsyncSide): LatencyFigures => {
    const all = samples.get(side)!;
    const sorted = new Float64Array(all.reduce((n, a) => n + a.length, 0));
    let o = 0;
    for (const a of all) {
      sorted.set(a, o);
      o += a.length;
    }
    sorted.sort();
    return { name: side.name, p50Us: percentile(sorted, 50), p95Us: percentile(sorted, 95), p99Us: percentile(sorted, 99), meanUs: sorted.reduce((s, x) => s + x, 0) / sorted.length, samples: sorted.length };
  };
  const candidate = figures(b.candidate);
  const target = meet(candidate.p50Us, b.target);
  return {
    kind: 'latency',
    benchmark: b.name,
    candidate,
    baselines: b.baselines.map((s) => {
      const f = figures(s);
      return { ...f, ratio: candidate.p50Us / f.p50Us };
    }),
    ...(target ? { target } : {}),
    rounds,
  };
}

/** `ops` operations with `inFlight` of them outstanding at any time; returns ops/s. */
async function pump(run: () => unknown, ops: number, inFlight: number): Promise<number> {
  let started = 0;
  const worker = async () => {
    while (started < ops) {
      started++;
      await run();
    }
  };
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(inFlight, ops) }, worker));
  return ops / (Number(process.hrtime.bigint() - start) / 1e9);
}

async function timeThroughput(side: AsyncSide, b: ThroughputBenchmark): Promise<number> {
  const { run, teardown } = await side.setup();
  try {
    await pump(run, b.warmup ?? Math.min(1000, b.ops), b.inFlight);
    return await pump(run, b.ops, b.inFlight);
  } finally {
    await teardown?.();
  }
}

export async function measureThroughput(b: ThroughputBenchmark, rounds = 5): Promise<ThroughputResult> {
  const sides = [b.candidate, ...b.baselines];
  const rates = new Map<AsyncSide, number[]>(sides.map((s) => [s, []]));
  for (let r = 0; r < rounds; r++) {
    for (const side of rotation(sides, r)) rates.get(side)!.push(await timeThroughput(side, b));
  }
  const candidate = { name: b.candidate.name, opsPerSec: median(rates.get(b.candidate)!) };
  const target = meet(candidate.opsPerSec, b.target);
  return {
    kind: 'throughput',
    benchmark: b.name,
    inFlight: b.inFlight,
    candidate,
    baselines: b.baselines.map((s) => {
      const opsPerSec = median(rates.get(s)!);
      return { name: s.name, opsPerSec, ratio: candidate.opsPerSec / opsPerSec };
    }),
    ...(target ? { target } : {}),
    rounds,
  };
}

export async function measureFigure(b: FigureBenchmark, rounds = 5): Promise<FigureResult> {
  const sides = [b.candidate, ...b.baselines];
  const values = new Map<FigureSide, number[]>(sides.map((s) => [s, []]));
  for (let r = 0; r < rounds; r++) {
    for (const side of rotation(sides, r)) values.get(side)!.push(await side.measure());
  }
  const candidate = { name: b.candidate.name, value: median(values.get(b.candidate)!) };
  const target = meet(candidate.value, b.target);
  return {
    kind: 'figure',
    benchmark: b.name,
    unit: b.unit,
    candidate,
    baselines: b.baselines.map((s) => {
      const value = median(values.get(s)!);
      return { name: s.name, value, ratio: candidate.value / value };
    }),
    ...(target ? { target } : {}),
    rounds,
  };
}

export async function measureAny(b: AnyBenchmark, rounds = 5): Promise<AnyResult> {
  switch (b.kind) {
    case 'latency':
      return measureLatency(b, rounds);
    case 'throughput':
      return measureThroughput(b, rounds);
    case 'figure':
      return measureFigure(b, rounds);
    default:
      return measure(b, rounds);
  }
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const ratioText = (r: number) => (r >= 100 ? `${Math.round(r).toLocaleString('en-US')}×` : r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`);
const targetText = (t: (Target & { met: boolean }) | undefined, unit: string) =>
  t ? `   target ${t.max !== undefined ? `≤ ${fmt(t.max)}` : `≥ ${fmt(t.min!)}`} ${unit}: ${t.met ? 'met' : 'MISSED'}` : '';

function reportOps(r: Result): string[] {
  return [
    `${r.benchmark.padEnd(38)} ${fmt(r.candidate.opsPerSec).padStart(15)} ${fmt(r.candidate.usPerOp).padStart(7)} ${fmt(r.baseline.opsPerSec).padStart(16)} ${fmt(r.baseline.usPerOp).padStart(7)}   ${r.ratio.toFixed(2)}×`,
    `  candidate: ${r.candidate.name}; baseline: ${r.baseline.name}; median of ${r.rounds} rounds`,
  ];
}

function reportLatency(r: LatencyResult): string[] {
  const row = (label: string, f: LatencyFigures, ratio: string) => `  ${label.padEnd(54)} ${fmt(f.p50Us).padStart(10)} ${fmt(f.p95Us).padStart(10)} ${fmt(f.p99Us).padStart(10)} ${fmt(f.meanUs).padStart(10)}   ${ratio}`;
  return [
    `${r.benchmark} — one at a time, ${r.candidate.samples.toLocaleString('en-US')} samples over ${r.rounds} rounds${targetText(r.target, 'µs p50')}`,
    `  ${''.padEnd(54)} ${'p50 µs'.padStart(10)} ${'p95 µs'.padStart(10)} ${'p99 µs'.padStart(10)} ${'mean µs'.padStart(10)}   p50 ÷ baseline p50`,
    row(r.candidate.name, r.candidate, ''),
    ...r.baselines.map((b) => row(`vs ${b.name}`, b, ratioText(b.ratio))),
  ];
}

function reportThroughput(r: ThroughputResult): string[] {
  const row = (label: string, opsPerSec: number, ratio: string) => `  ${label.padEnd(54)} ${fmt(opsPerSec).padStart(12)}   ${ratio}`;
  return [
    `${r.benchmark} — ${r.inFlight} in flight, median of ${r.rounds} rounds${targetText(r.target, 'ops/s')}`,
    `  ${''.padEnd(54)} ${'ops/s'.padStart(12)}   ops/s ÷ baseline ops/s`,
    row(r.candidate.name, r.candidate.opsPerSec, ''),
    ...r.baselines.map((b) => row(`vs ${b.name}`, b.opsPerSec, ratioText(b.ratio))),
  ];
}

function reportFigure(r: FigureResult): string[] {
  const row = (label: string, value: number, ratio: string) => `  ${label.padEnd(54)} ${fmt(value).padStart(12)}   ${ratio}`;
  return [
    `${r.benchmark} — median of ${r.rounds} rounds${targetText(r.target, r.unit)}`,
    `  ${''.padEnd(54)} ${r.unit.padStart(12)}   ÷ baseline`,
    row(r.candidate.name, r.candidate.value, ''),
    ...r.baselines.map((b) => row(`vs ${b.name}`, b.value, ratioText(b.ratio))),
  ];
}

export function report(results: AnyResult[]): string {
  const ops = results.filter((r): r is Result => r.kind === undefined || r.kind === 'ops');
  const lines: string[] = [''];
  if (ops.length > 0) {
    lines.push('benchmark                              candidate ops/s   µs/op   baseline ops/s   µs/op   ratio');
    for (const r of ops) lines.push(...reportOps(r));
  }
  for (const r of results) {
    if (r.kind === 'latency') lines.push('', ...reportLatency(r));
    else if (r.kind === 'throughput') lines.push('', ...reportThroughput(r));
    else if (r.kind === 'figure') lines.push('', ...reportFigure(r));
  }
  return lines.join('\n');
}
