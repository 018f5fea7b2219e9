/**
 * `npm run bench`: runs every test/bench/*.bench.ts and prints each benchmark's absolute figures and its
 * ratio to the baselines measured in the same run. `--json FILE` also writes the results as JSON;
 * `--filter A,B` runs only benchmarks whose name contains A or B; `--rounds N` sets the rounds (default 5).
 *
 * A bench file exports `benchmarks` (any shape of harness.ts) and may export `dispose()`, called once after
 * its benchmarks ran, for resources its benchmarks share.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { measureAny, report } from './harness.js';
import type { AnyBenchmark, AnyResult } from './harness.js';

const { values } = parseArgs({ options: { json: { type: 'string' }, filter: { type: 'string' }, rounds: { type: 'string' } } });
const dir = fileURLToPath(new URL('.', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).sort();
const rounds = values.rounds ? Number(values.rounds) : 5;
const results: AnyResult[] = [];
const filters = values.filter?.split(',').filter((f) => f.length > 0) ?? [];
const failures: string[] = [];

console.log(`Tessera benchmarks — node ${process.versions.node}, ${process.platform}-${process.arch}, ${rounds} rounds each`);
for (const file of files) {
  const mod = (await import(pathToFileURL(dir + file).href)) as { benchmarks: AnyBenchmark[]; dispose?: () => Promise<void> | void };
  try {
    for (const b of mod.benchmarks) {
      if (filters.length > 0 && !filters.some((f) => b.name.includes(f))) continue;
      process.stdout.write(`  running ${b.name}…\n`);
      // One failing benchmark is reported and does not take the others' figures with it.
      try {
        results.push(await measureAny(b, rounds));
      } catch (err) {
        failures.push(`${b.name}: ${(err as Error).stack ?? String(err)}`);
        process.stdout.write(`  FAILED ${b.name}: ${(err as Error).message}\n`);
      }
    }
  } finally {
    await mod.dispose?.();
  }
}
console.log(report(results));
if (values.json) writeFileSync(values.json, JSON.stringify({ node: process.versions.node, platform: `${process.platform}-${process.arch}`, rounds, results, failures }, null, 2));
if (failures.length > 0) {
  console.error(`\n${failures.length} benchmark(s) failed:\n${failures.join('\n')}`);
  process.exitCode = 1;
}
