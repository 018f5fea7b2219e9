/**
 * `npm run bench`: runs every test/bench/*.bench.ts and prints each benchmark's absolute figures and its
 * ratio to the baseline measured in the same run. `--json FILE` also writes the results as JSON;
 * `--filter TEXT` runs only benchmarks whose name contains TEXT.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { measure, report } from './harness.js';
import type { Benchmark, Result } from './harness.js';

const { values } = parseArgs({ options: { json: { type: 'string' }, filter: { type: 'string' }, rounds: { type: 'string' } } });
const dir = fileURLToPath(new URL('.', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).sort();
const rounds = values.rounds ? Number(values.rounds) : 5;
const results: Result[] = [];

console.log(`Tessera benchmarks — node ${process.versions.node}, ${process.platform}-${process.arch}, ${rounds} rounds each`);
for (const file of files) {
  const mod = (await import(pathToFileURL(dir + file).href)) as { benchmarks: Benchmark[] };
  for (const b of mod.benchmarks) {
    if (values.filter && !b.name.includes(values.filter)) continue;
    process.stdout.write(`  running ${b.name}…\n`);
    results.push(measure(b, rounds));
  }
}
console.log(report(results));
if (values.json) writeFileSync(values.json, JSON.stringify({ node: process.versions.node, results }, null, 2));
