/**
 * `tessera scenario …`: golden tests of scenarios (seed 001 §13, issue 4 §9).
 *
 * - `scenario test SCENARIO_OR_ID CASES.yaml [--update] [--scenarios DIR] [--json]`: runs each case with its
 *   stubs in a private engine (main/runtime/scenarios/golden.ts) and compares the messages the run sent with
 *   the case's golden file. One line per case (PASS / FAIL with a line diff / WROTE), then `N passed, M failed`.
 *   Exit 0 when all match (or, with --update, once the golden files are rewritten), 1 when any differs or a file
 *   is malformed (`error VALIDATION_FAILED: file:line:col: …`), 2 on a usage error.
 *
 * SCENARIO_OR_ID is a scenario file (its folder's other scenarios and the bundled ones are registered too, for
 * sub-scenarios) or the id of a bundled scenario (resources/scenarios) or one in `--scenarios DIR`.
 *
 * - `scenario sign FILE --key KEY`: loads the scenario (includes inlined) and writes `NAME.sig` beside `NAME.yaml`,
 *   a DSSE envelope over its canonical form (main/runtime/scenarios/signing.ts). Offline and deterministic.
 * - `scenario verify FILE [--trust DIR] [--data DIR] [--json]`: who signed it, its cid and its permissions, or the
 *   code and reason the runtime would refuse it with. Exit 0 valid, 1 refused.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { TesseraError, toErrorData } from '../common/errors.js';
import { readPrivateKey } from '../runtime/keys/index.js';
import { loadScenarioDir, loadScenarioFile } from '../runtime/scenarios/dsl.js';
import { readGrants } from '../runtime/scenarios/permissions.js';
import { builtinScenarioKeys, scenarioCid, signScenario, signatureFileOf, verifyScenario } from '../runtime/scenarios/signing.js';
import { combineTrustStores, openTrustStore } from '../runtime/trust/index.js';
import { writeAtomic } from '../../sandbox/package.js';
import { resolveDataDir } from './config.js';
import { diffLines, goldenText, loadScenarioCases, runScenarioCase } from '../runtime/scenarios/golden.js';
import type { ScenarioCase, Transcript } from '../runtime/scenarios/golden.js';
import type { Scenario } from '../runtime/scenarios/model.js';
import { reporting } from './cli-report.js';
import type { Command } from './cli.js';
import { BUILTIN_SCENARIOS_DIR, BUILTIN_TRUST_DIR } from './paths.js';

/** A path as the user would type it from here. */
const shown = (path: string) => {
  const r = relative(process.cwd(), path);
  return r === '' || r.startsWith('..') || isAbsolute(r) ? path : r;
};

/** Scenarios of a folder; a folder with a broken file still gives its good ones (the broken one is not the test's). */
const scenariosIn = (dir: string): Scenario[] => (existsSync(dir) ? loadScenarioDir(dir).scenarios : []);

/** The scenario under test and every scenario it may call, the scenario under test winning on id clashes. */
function resolveScenarios(ref: string, extraDir: string | undefined): { target: Scenario; all: Scenario[] } {
  const extra = extraDir === undefined ? [] : scenariosIn(resolve(extraDir));
  const isFile = /\.ya?ml$/i.test(ref) || (existsSync(ref) && statSync(ref).isFile());
  if (isFile) {
    const target = loadScenarioFile(resolve(ref));
    const around = [...scenariosIn(BUILTIN_SCENARIOS_DIR), ...extra, ...scenariosIn(dirname(resolve(ref)))];
    return { target, all: [...around.filter((s) => s.id !== target.id), target] };
  }
  const all = [...scenariosIn(BUILTIN_SCENARIOS_DIR), ...extra];
  const target = [...all].reverse().find((s) => s.id === ref);
  if (!target) throw new TesseraError('SCENARIO_NOT_FOUND', `No scenario "${ref}" (known: ${[...new Set(all.map((s) => s.id))].sort().join(', ') || 'none'}); give a scenario file or an id.`);
  return { target, all };
}

interface CaseResult {
  case: ScenarioCase;
  status: 'pass' | 'fail' | 'wrote';
  transcript: Transcript;
  /** Why it failed: a diff against the golden file, or that there is none. */
  diff?: string[];
  missing?: boolean;
}

/** Write a golden file whole or not at all. */
function writeGolden(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function format(r: CaseResult): string {
  const head = `${r.status === 'pass' ? 'PASS ' : r.status === 'wrote' ? 'WROTE' : 'FAIL '}  ${r.case.name}`;
  if (r.status === 'pass') return `${head}\n`;
  if (r.status === 'wrote') return `${head}  → ${shown(r.case.golden)}\n`;
  if (r.missing) return `${head}\n      no golden file ${shown(r.case.golden)}; run with --update to record it:\n${goldenText(r.transcript).replace(/^/gm, '      ').trimEnd()}\n`;
  return `${head}  (${r.case.source})\n      golden ${shown(r.case.golden)} (-) vs this run (+):\n${r.diff!.map((l) => `      ${l}`).join('\n')}\n`;
}

const scenarioTest: Command = {
  name: 'scenario test',
  summary: 'Run a scenario with stubs (io.ask answers, tool results, events) and compare the messages it sends with golden files.',
  usage: 'tessera scenario test SCENARIO_OR_ID CASES.yaml [--update] [--scenarios DIR] [--json]',
  positionals: 2,
  options: { update: { type: 'boolean' }, scenarios: { type: 'string' }, json: { type: 'boolean' } },
  flags: [
    ['--update', 'Write the golden file of every case that differs or has none, instead of failing.'],
    ['--scenarios DIR', 'Also look up scenarios (the one tested, and the ones it calls) in this folder.'],
    ['--json', 'Print the results as JSON.'],
  ],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [ref, casesFile] = positionals;
      if (!ref || !casesFile) throw new TesseraError('CONFIG_INVALID', `SCENARIO_OR_ID and CASES.yaml are required. Usage: ${this.usage}`);
      const { target, all } = resolveScenarios(ref, values['scenarios'] as string | undefined);
      const file = loadScenarioCases(casesFile, target.id);
      if (file.scenario !== undefined && file.scenario !== target.id) {
        throw new TesseraError('VALIDATION_FAILED', `${casesFile}: the cases are for scenario ${file.scenario}, not ${target.id}.`);
      }
      const update = values['update'] === true;
      const results: CaseResult[] = [];
      for (const c of file.cases) {
        const transcript = await runScenarioCase(all, target.id, c);
        const actual = goldenText(transcript);
        const expected = existsSync(c.golden) ? readFileSync(c.golden, 'utf8') : undefined;
        if (expected === actual) results.push({ case: c, status: 'pass', transcript });
        else if (update) {
          writeGolden(c.golden, actual);
          results.push({ case: c, status: 'wrote', transcript });
        } else results.push({ case: c, status: 'fail', transcript, ...(expected === undefined ? { missing: true } : { diff: diffLines(expected, actual) }) });
      }
      const failed = results.filter((r) => r.status === 'fail').length;
      const wrote = results.filter((r) => r.status === 'wrote').length;
      const passed = results.length - failed - wrote;
      if (values['json']) {
        io.stdout(JSON.stringify({
          scenario: target.id,
          cases: casesFile,
          passed,
          failed,
          written: wrote,
          results: results.map((r) => ({ name: r.case.name, status: r.status, golden: r.case.golden, transcript: r.transcript, ...(r.diff ? { diff: r.diff } : {}), ...(r.missing ? { missing: true } : {}) })),
        }, null, 2) + '\n');
      } else {
        io.stdout(results.map(format).join('') + `${passed} passed, ${failed} failed${update ? `, ${wrote} written` : ''}\n`);
      }
      return failed === 0 ? 0 : 1;
    });
  },
};

const scenarioFileArg = (positionals: string[], usage: string): string => {
  const file = positionals[0];
  if (!file) throw new TesseraError('CONFIG_INVALID', `FILE is required. Usage: ${usage}`);
  if (!existsSync(file)) throw new TesseraError('CONFIG_INVALID', `${file}: no such file.`);
  return resolve(file);
};

const scenarioSign: Command = {
  name: 'scenario sign',
  summary: 'Sign a scenario file: NAME.sig beside NAME.yaml, a DSSE envelope over its canonical form (includes inlined).',
  usage: 'tessera scenario sign FILE --key KEY',
  positionals: 1,
  options: { key: { type: 'string' } },
  flags: [['--key KEY', 'The private key file (from tessera keygen); the devices must trust its public key and grant what the scenario declares.']],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const keyPath = values['key'] as string | undefined;
      if (!keyPath) throw new TesseraError('CONFIG_INVALID', `--key KEY is required. Usage: ${this.usage}`);
      const file = scenarioFileArg(positionals, this.usage);
      const scenario = loadScenarioFile(file);
      const key = readPrivateKey(resolve(keyPath));
      const out = signatureFileOf(file);
      writeAtomic(out, JSON.stringify(signScenario(scenario, key), null, 2) + '\n');
      io.stdout(`Signed ${scenario.id} (version ${scenario.version})\n  cid:         ${scenarioCid(scenario)}\n  key id:      ${key.keyid}\n  permissions: ${scenario.permissions?.join(', ') || 'none'}\n  file:        ${shown(out)}\n`);
      return 0;
    });
  },
};

const scenarioVerify: Command = {
  name: 'scenario verify',
  summary: 'Check a scenario file as the runtime loads it: signature, trusted key, grants. Exit 0 valid, 1 refused.',
  usage: 'tessera scenario verify FILE [--trust DIR] [--data DIR] [--json]',
  positionals: 1,
  options: { trust: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } },
  flags: [
    ['--trust DIR', 'Trust folder (keys, revoked.json, grants.json) to verify against (default: the built-in roots plus <data>/trust).'],
    ['--data DIR', 'Data folder whose trust/ is used (default as for start).'],
    ['--json', 'Print the result as JSON.'],
  ],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const file = scenarioFileArg(positionals, this.usage);
      const explicit = values['trust'] as string | undefined;
      if (explicit && !existsSync(explicit)) throw new TesseraError('CONFIG_INVALID', `--trust ${explicit}: no such folder.`);
      const dataTrust = resolve(resolveDataDir(values['data'] as string | undefined, io.env), 'trust');
      const dirs = explicit ? [resolve(explicit)] : [BUILTIN_TRUST_DIR, ...(existsSync(dataTrust) ? [dataTrust] : [])];
      const stores = dirs.map((d) => openTrustStore(d));
      const trust = combineTrustStores(...stores);
      const grants = readGrants(dirs);
      // As the runtime: the built-in (development) key vouches only for the shipped scenarios.
      const builtin = explicit ? undefined : builtinScenarioKeys(stores[0]!, stores[1], [BUILTIN_SCENARIOS_DIR]);
      try {
        const scenario = loadScenarioFile(file);
        const v = verifyScenario(scenario, file, { trust, grants, ...(builtin ? { builtin } : {}) });
        if (values['json']) io.stdout(JSON.stringify({ valid: true, id: scenario.id, version: scenario.version, cid: v.cid, publisher: v.publisher, permissions: v.permissions, granted: grants(v.publisher) }, null, 2) + '\n');
        else io.stdout(`valid: ${scenario.id} (version ${scenario.version}) ${v.cid}\n  signed by ${v.publisher.keyid} (${v.publisher.name})\n  permissions: ${v.permissions.join(', ') || 'none'}\n`);
        return 0;
      } catch (err) {
        const e = toErrorData(err);
        if (values['json']) io.stdout(JSON.stringify({ valid: false, error: e }, null, 2) + '\n');
        else io.stderr(`invalid: ${e.code}: ${e.message}\n`);
        return 1;
      }
    });
  },
};

export const SCENARIO_COMMANDS: Command[] = [scenarioTest, scenarioSign, scenarioVerify];
