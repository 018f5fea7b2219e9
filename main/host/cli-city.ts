/**
 * `tessera city …`: city data packages for offline routing (seed 000 "LEM"; issue 15 point 3). All offline.
 *
 * - `city sign SRC --key KEY --out DIR`: signs a source folder (`city.json`, `graph.json`, `gtfs/*.txt`) into a
 *   package folder: the files plus `package.json`, a DSSE envelope (application/vnd.tessera.city+json) over the
 *   manifest with every file's cid. Deterministic: the same source and key give the same bytes (`npm run build`
 *   re-signs the shipped Lviv package this way).
 * - `city verify DIR`: signature against the publisher trust, every file's cid, the files parse, not stale.
 *   Exit 0 valid, 1 not.
 * - `city info [DIR]`: what a package holds (id, version, dates, age, publisher, graph and timetable sizes); without
 *   DIR, every package the runtime would look at (`TESSERA_CITY_PACKAGES`, else resources/city and `<data>/city`).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TesseraError, toErrorData } from '../common/errors.js';
import { readPrivateKey } from '../runtime/keys/index.js';
import { CITY_MANIFEST_FILE, loadCityPackage, writeCityPackage } from '../runtime/routing/index.js';
import type { LoadedCity } from '../runtime/routing/index.js';
import type { TrustView } from '../runtime/trust/index.js';
import type { Command } from './cli.js';
import { trustFor } from './cli-plugins.js';
import { cityPackageDirs, resolveDataDir } from './config.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const DAY_MS = 86_400_000;

interface Report {
  dir: string;
  ok: boolean;
  stale: boolean;
  error?: { code: string; message: string };
  package?: { id: string; version: string; city: string; created_at: string; valid_until: string; age_days: number; cid: string; publisher: { keyid: string; name: string }; files: Record<string, string> };
  graph?: { nodes: number; edges: number; streets: number };
  timetable?: { timezone: string; stops: number; routes: number; trips: number; connections: number };
}

function inspect(dir: string, trust: TrustView, now: number): Report {
  let city: LoadedCity;
  try {
    city = loadCityPackage(dir, trust);
  } catch (err) {
    const data = toErrorData(err);
    return { dir, ok: false, stale: false, error: { code: data.code, message: data.message } };
  }
  const m = city.pkg.manifest;
  const stale = now > Date.parse(m.valid_until);
  return {
    dir,
    ok: !stale,
    stale,
    ...(stale ? { error: { code: 'CITY_PACKAGE_STALE', message: `${dir}: valid until ${m.valid_until}; the clock is past it.` } } : {}),
    package: { id: m.id, version: m.version, city: m.city, created_at: m.created_at, valid_until: m.valid_until, age_days: Math.max(0, Math.floor((now - Date.parse(m.created_at)) / DAY_MS)), cid: city.pkg.cid, publisher: city.pkg.publisher, files: m.files },
    graph: { nodes: city.graph.size, edges: city.graph.edgeCount, streets: city.graph.streets.length },
    timetable: { timezone: city.timetable.timezone, stops: city.timetable.stops.length, routes: city.timetable.routes.length, trips: city.timetable.trips.length, connections: city.timetable.dep.length },
  };
}

function describe(r: Report): string {
  if (!r.package) return `${r.dir}\n  INVALID  error ${r.error!.code}: ${r.error!.message}\n`;
  const p = r.package;
  return [
    `${r.dir}`,
    `  ${r.stale ? 'STALE' : 'valid'}    ${p.id}@${p.version} (${p.city})${r.stale ? `  error CITY_PACKAGE_STALE: valid until ${p.valid_until}` : ''}`,
    `  created  ${p.created_at} (${p.age_days} days ago), valid until ${p.valid_until}`,
    `  signed   by ${p.publisher.name} (${p.publisher.keyid})`,
    `  cid      ${p.cid}`,
    `  graph    ${r.graph!.nodes} nodes, ${r.graph!.edges} edges, ${r.graph!.streets} streets`,
    `  transit  ${r.timetable!.routes} lines, ${r.timetable!.stops} stops, ${r.timetable!.trips} trips, ${r.timetable!.connections} connections (${r.timetable!.timezone})`,
    `  files    ${Object.keys(p.files).length}`,
    '',
  ].join('\n');
}

const trustFlags: Array<[string, string]> = [
  ['--trust DIR', 'Trust folder to verify against (default: the built-in roots plus <data>/trust).'],
  ['--data DIR', 'Data folder whose trust/ (and, for info, city/) is used (default as for start).'],
  ['--json', 'Print the result as JSON.'],
];

const citySign: Command = {
  name: 'city sign',
  summary: 'Sign a city data source folder (city.json, graph.json, gtfs/*.txt) into a package folder with a publisher key.',
  usage: 'tessera city sign SRC --key KEY --out DIR',
  positionals: 1,
  options: { key: { type: 'string' }, out: { type: 'string' } },
  flags: [['--key KEY', 'The private key file (from tessera keygen); devices must trust its public key.'], ['--out DIR', 'The package folder to write (created; a package already there is replaced).']],
  async run(values, positionals, io) {
    const src = positionals[0];
    const keyPath = str(values['key']);
    const out = str(values['out']);
    if (!src || !keyPath || !out) throw new TesseraError('CONFIG_INVALID', `SRC, --key KEY and --out DIR are required. Usage: ${this.usage}`);
    if (!existsSync(src)) throw new TesseraError('CONFIG_INVALID', `${src}: no such folder.`);
    const key = readPrivateKey(resolve(keyPath));
    const { manifest, cid } = writeCityPackage(resolve(src), resolve(out), key);
    io.stdout(`Signed ${manifest.id}@${manifest.version} (${Object.keys(manifest.files).length} files)\n  cid:    ${cid}\n  key id: ${key.keyid}\n  folder: ${out}\n`);
    return 0;
  },
};

const cityVerify: Command = {
  name: 'city verify',
  summary: 'Check a city package folder: signature and trust, every file against its cid, the files parse, not stale. Exit 0 valid, 1 not.',
  usage: 'tessera city verify DIR [--trust DIR] [--data DIR] [--json]',
  positionals: 1,
  options: { trust: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } },
  flags: trustFlags,
  async run(values, positionals, io) {
    const dir = positionals[0];
    if (!dir) throw new TesseraError('CONFIG_INVALID', `DIR is required. Usage: ${this.usage}`);
    const report = inspect(resolve(dir), trustFor(values, io), Date.now());
    if (values['json']) io.stdout(JSON.stringify(report, null, 2) + '\n');
    else if (report.ok) io.stdout(describe(report));
    else {
      if (report.package) io.stdout(describe(report));
      io.stderr(`error ${report.error!.code}: ${report.error!.message}\n`);
    }
    return report.ok ? 0 : 1;
  },
};

const cityInfo: Command = {
  name: 'city info',
  summary: 'Show a city package (or every package the runtime would load): version, age, validity, publisher, sizes.',
  usage: 'tessera city info [DIR] [--trust DIR] [--data DIR] [--json]',
  positionals: 1,
  options: { trust: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } },
  flags: trustFlags,
  async run(values, positionals, io) {
    const trust = trustFor(values, io);
    const now = Date.now();
    let dirs: string[];
    if (positionals[0]) dirs = [resolve(positionals[0])];
    else {
      dirs = [];
      for (const parent of cityPackageDirs(io.env, resolveDataDir(str(values['data']), io.env))) {
        if (!existsSync(parent)) continue;
        for (const name of readdirSync(parent).sort()) if (existsSync(join(parent, name, CITY_MANIFEST_FILE))) dirs.push(join(parent, name));
      }
    }
    const reports = dirs.map((d) => inspect(d, trust, now));
    if (values['json']) io.stdout(JSON.stringify({ packages: reports }, null, 2) + '\n');
    else if (reports.length === 0) io.stdout('No city packages found; routing uses the journeys\' static routes.\n');
    else io.stdout(reports.map(describe).join('\n'));
    return positionals[0] && !reports[0]!.ok ? 1 : 0;
  },
};

export const CITY_COMMANDS: Command[] = [cityInfo, cityVerify, citySign];
