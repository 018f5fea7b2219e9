/**
 * Offline routing on a signed city package (issue 15 point 3, seed 000 "LEM" and §7.1): the shipped Lviv package
 * as `npm run build` signs it, and small packages made and signed here. Real journal (SQLite in memory) and bus.
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isTesseraError } from '../../main/common/errors.js';
import { cityPackageDirs } from '../../main/host/config.js';
import type { LatLon } from '../../main/common/journeys.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { generateKeyPair } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createRouting, loadCityPackage, writeCityPackage } from '../../main/runtime/routing/index.js';
import type { Routing } from '../../main/runtime/routing/index.js';
import { createSearcher, haversine } from '../../main/runtime/routing/graph.js';
import type { WalkGraph } from '../../main/runtime/routing/graph.js';
import { parseCsv } from '../../main/runtime/routing/transit.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { openTrustStore } from '../../main/runtime/trust/index.js';
import type { TrustView } from '../../main/runtime/trust/index.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CITY_DIR = join(ROOT, 'resources', 'city');
const devTrust = openTrustStore(join(ROOT, 'resources', 'trust'));

const RYNOK: LatLon = { lat: 49.8419, lon: 24.0316 };
const LYCHAKIV: LatLon = { lat: 49.8331, lon: 24.0561 };
const PHARMACY: LatLon = { lat: 49.8428, lon: 24.0325 };
/** A Monday, 10:00 in Lviv (EET, UTC+2). */
const MONDAY_10 = Date.parse('2026-12-07T10:00:00+02:00');

const stores: Store[] = [];
afterEach(() => {
  while (stores.length > 0) stores.pop()!.close();
});

function harness(dirs: string[], trust: TrustView = devTrust, clock?: () => number) {
  const logger = createMemoryLogger();
  const store = openStore({ path: ':memory:', logger });
  stores.push(store);
  const journal = createJournal({ store });
  const bus = createBus({ journal, logger });
  const routing = createRouting({ dirs, trust, bus, logger, ...(clock ? { clock } : {}) });
  const degraded = () => journal.query({ topic: 'lem.degraded' }).events.map((e) => e.payload as { reason: string; message: string; package: unknown });
  return { routing, degraded, journal };
}

function keyTrust(key: SigningKey): TrustView {
  return { list: () => [], revocations: () => [], lookup: (keyid) => (keyid === key.keyid ? { state: 'trusted', publicKeyRaw: key.publicKeyRaw, name: 'test publisher' } : { state: 'unknown' }) };
}

/** A copy of the shipped Lviv package under a fresh parent folder (to tamper with). */
function lvivCopy(): { parent: string; dir: string } {
  const parent = tempDir('tessera-city-');
  cpSync(join(CITY_DIR, 'lviv'), join(parent, 'lviv'), { recursive: true });
  return { parent, dir: join(parent, 'lviv') };
}

/** The textbook Dijkstra (no heap: the nearest unsettled node by a linear scan), over the graph's own arrays. */
function plainDijkstra(g: WalkGraph, a: number, b: number): number {
  const dist = new Float64Array(g.size).fill(Infinity);
  const done = new Uint8Array(g.size);
  dist[a] = 0;
  for (;;) {
    let u = -1;
    for (let i = 0; i < g.size; i++) if (!done[i] && dist[i]! < Infinity && (u < 0 || dist[i]! < dist[u]!)) u = i;
    if (u < 0) return Infinity;
    if (u === b) return dist[b]!;
    done[u] = 1;
    for (let k = g.offsets[u]!; k < g.offsets[u + 1]!; k++) {
      const v = g.targets[k]!;
      if (dist[u]! + g.lengths[k]! < dist[v]!) dist[v] = dist[u]! + g.lengths[k]!;
    }
  }
}

/** A tiny seeded PRNG, so the random pairs are the same on every run. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A small source folder: a 4×4 grid of streets 100 m apart plus an island of two nodes 2 km east (not connected),
 * one tram line along the bottom row. `valid_until` etc. from `meta`.
 */
function writeSmallSource(src: string, meta: Partial<{ created_at: string; valid_until: string; version: string }> = {}): { island: LatLon; corner: LatLon } {
  mkdirSync(join(src, 'gtfs'), { recursive: true });
  const lat0 = 50.0, lon0 = 30.0, dLat = 100 / 111195, dLon = 100 / (111195 * Math.cos((50 * Math.PI) / 180));
  const nodes: Array<[number, number]> = [];
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) nodes.push([lat0 + r * dLat, lon0 + c * dLon]);
  nodes.push([lat0, lon0 + 30 * dLon], [lat0 + dLat, lon0 + 30 * dLon]);
  const edges: Array<[number, number, number, number]> = [];
  const m = (a: number, b: number) => Math.ceil(haversine(nodes[a]![0], nodes[a]![1], nodes[b]![0], nodes[b]![1]) * 10) / 10;
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) {
    const i = r * 4 + c;
    if (c < 3) edges.push([i, i + 1, m(i, i + 1), 0]);
    if (r < 3) edges.push([i, i + 4, m(i, i + 4), 1]);
  }
  edges.push([16, 17, m(16, 17), -1]);
  writeFileSync(join(src, 'graph.json'), JSON.stringify({ format: 'tessera.walk-graph/1', nodes, streets: [{ en: 'Main Street', uk: 'Головна вулиця', ru: 'Главная улица' }, { en: 'Cross Street' }], edges }));
  writeFileSync(join(src, 'city.json'), JSON.stringify({ id: 'testville', version: meta.version ?? '1.0.0', city: 'testville', created_at: meta.created_at ?? '2026-01-01T00:00:00Z', valid_until: meta.valid_until ?? '2027-01-01T00:00:00Z' }));
  const g = (name: string, text: string) => writeFileSync(join(src, 'gtfs', name), text);
  g('agency.txt', 'agency_id,agency_name,agency_url,agency_timezone\nA,"Test, Trams",https://example.org,Europe/Kyiv\n');
  g('stops.txt', `stop_id,stop_name,stop_lat,stop_lon\nw,West,${lat0},${lon0}\ne,East,${lat0},${lon0 + 3 * dLon}\n`);
  g('routes.txt', 'route_id,agency_id,route_short_name,route_long_name,route_type\nR,A,9,West – East,0\n');
  g('trips.txt', 'route_id,service_id,trip_id,trip_headsign\nR,S,t1,East\n');
  g('stop_times.txt', 'trip_id,arrival_time,departure_time,stop_id,stop_sequence\nt1,08:00:00,08:00:00,w,1\nt1,08:01:00,08:01:00,e,2\n');
  g('calendar.txt', 'service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nS,1,1,1,1,1,1,1,20260101,20271231\n');
  return { island: { lat: lat0 + 0.2 * dLat, lon: lon0 + 30 * dLon }, corner: { lat: lat0 + 3 * dLat, lon: lon0 + 3 * dLon } };
}

function unavailable(routing: Routing): string | undefined {
  try {
    routing.plan({ from: RYNOK, to: PHARMACY, depart_at: MONDAY_10 });
  } catch (err) {
    return isTesseraError(err) ? `${err.code}:${(err.details as { reason: string }).reason}` : 'other';
  }
  return undefined;
}

describe('walking search', () => {
  it('finds the same shortest distance as a textbook Dijkstra on random pairs of the Lviv graph', () => {
    const { graph } = loadCityPackage(join(CITY_DIR, 'lviv'), devTrust);
    expect(graph.size).toBeGreaterThan(3000);
    const search = createSearcher(graph);
    const random = prng(15);
    for (let i = 0; i < 25; i++) {
      const a = Math.floor(random() * graph.size);
      const b = Math.floor(random() * graph.size);
      const found = search.route(a, b);
      const expected = plainDijkstra(graph, a, b);
      expect(found, `pair ${a}→${b}`).not.toBeNull();
      expect(found!.meters).toBeCloseTo(expected, 6);
      // The path it returns is a real path of that length.
      let sum = 0;
      for (let k = 0; k < found!.edges.length; k++) {
        expect(graph.targets[found!.edges[k]!]).toBe(found!.nodes[k + 1]);
        sum += graph.lengths[found!.edges[k]!]!;
      }
      expect(sum).toBeCloseTo(found!.meters, 6);
    }
  });

  it('plans a walk from Rynok Square to the Pharmacy Museum along named streets, in three languages', () => {
    const { routing } = harness([CITY_DIR]);
    const en = routing.plan({ from: RYNOK, to: PHARMACY, depart_at: MONDAY_10, names: { to: 'Pharmacy Museum' } })!;
    expect(en.source).toBe('graph');
    expect(en.legs.map((l) => l.mode)).toEqual(['walk']);
    expect(en.meters).toBeGreaterThan(100);
    expect(en.meters).toBeLessThan(400);
    expect(en.text).toMatch(/^Walk \d+ minutes? .*to Pharmacy Museum\.$/);
    expect(en.legs[0]!.path[0]).toEqual(RYNOK);
    expect(en.legs[0]!.path.at(-1)).toEqual(PHARMACY);
    const here = routing.plan({ from: PHARMACY, to: { lat: PHARMACY.lat + 0.00005, lon: PHARMACY.lon }, depart_at: MONDAY_10, language: 'ru', names: { to: 'Аптека-музей' } })!;
    expect(here).toMatchObject({ minutes: 0, text: 'Вы на месте: «Аптека-музей».' });
    const walk = routing.plan({ from: RYNOK, to: LYCHAKIV, depart_at: MONDAY_10, modes: ['walk'], language: 'uk' })!;
    expect(walk.text).toMatch(/^Пішки \d+ хвилин.? до місця призначення \(.*вулиця Личаківська.*\)\.$/);
    const ru = routing.plan({ from: RYNOK, to: LYCHAKIV, depart_at: MONDAY_10, modes: ['walk'], language: 'ru', names: { to: 'Лычаковское кладбище' } })!;
    expect(ru.text).toMatch(/^Пешком \d+ минут.? до «Лычаковское кладбище» \(.*улица Лычаковская.*\)\.$/);
  });
});

describe('walking and transit', () => {
  it('takes the tram from Rynok Square to Lychakiv Cemetery when it arrives earlier than walking', () => {
    const { routing } = harness([CITY_DIR]);
    const walk = routing.plan({ from: RYNOK, to: LYCHAKIV, depart_at: MONDAY_10, modes: ['walk'] })!;
    const best = routing.plan({ from: RYNOK, to: LYCHAKIV, depart_at: MONDAY_10, names: { to: 'Lychakiv Cemetery' } })!;
    expect(best.legs.map((l) => l.mode)).toEqual(['walk', 'transit', 'walk']);
    expect(Date.parse(best.arrive_at)).toBeLessThan(Date.parse(walk.arrive_at) - 5 * 60_000);
    const ride = best.legs[1]!;
    expect(ride.line).toBe('Tram 2');
    expect(ride.stops).toBeGreaterThanOrEqual(3);
    expect(Date.parse(ride.depart_at)).toBeGreaterThanOrEqual(Date.parse(best.legs[0]!.arrive_at));
    expect(best.text).toMatch(/Take Tram 2 towards Lychakiv Cemetery at 10:\d\d from Pidvalna, \d stops, to /);
    expect(best.text).toMatch(/You arrive at 10:\d\d\.$/);
    const uk = routing.plan({ from: RYNOK, to: LYCHAKIV, depart_at: MONDAY_10, language: 'uk' })!;
    expect(uk.text).toMatch(/Трамвай 2 у напрямку «Личаківський цвинтар»: о 10:\d\d від зупинки «Підвальна», \d зупин/);
  });

  it('walks when no tram runs any more (after 23:00) and when asked to walk', () => {
    const { routing } = harness([CITY_DIR]);
    const late = routing.plan({ from: RYNOK, to: LYCHAKIV, depart_at: Date.parse('2026-12-07T23:40:00+02:00') })!;
    expect(late.legs.map((l) => l.mode)).toEqual(['walk']);
    expect(routing.plan({ from: RYNOK, to: LYCHAKIV, depart_at: MONDAY_10, modes: ['walk'] })!.legs.map((l) => l.mode)).toEqual(['walk']);
  });

  it('answers null when the graph has no path (a point on a disconnected part) or a point is far off the graph', () => {
    const parent = tempDir('tessera-city-');
    const src = tempDir('tessera-city-src-');
    const { island, corner } = writeSmallSource(src);
    const key = generateKeyPair();
    writeCityPackage(src, join(parent, 'testville'), key);
    const { routing } = harness([parent], keyTrust(key), () => Date.parse('2026-06-01T08:00:00+03:00'));
    expect(routing.status().mode).toBe('graph');
    expect(routing.plan({ from: corner, to: island, depart_at: Date.parse('2026-06-01T07:50:00+03:00') })).toBeNull();
    expect(routing.plan({ from: corner, to: { lat: 49.9, lon: 29.9 }, depart_at: Date.parse('2026-06-01T07:50:00+03:00') })).toBeNull();
    expect(routing.plan({ from: corner, to: { lat: 50, lon: 30 }, depart_at: Date.parse('2026-06-01T07:50:00+03:00') })!.meters).toBeGreaterThan(500);
  });
});

describe('package verification and degradation', () => {
  it('reports the shipped package with its age and journals nothing when it is valid', () => {
    const { routing, degraded } = harness([CITY_DIR], devTrust, () => Date.parse('2026-12-11T12:00:00Z'));
    expect(routing.status()).toEqual({ mode: 'graph', degraded: null, package: { id: 'lviv', version: '1.0.0', created_at: '2026-12-01T00:00:00Z', valid_until: '2027-12-31T23:59:59Z', age_days: 10 } });
    expect(degraded()).toEqual([]);
    const map = routing.map()!;
    expect(map.ways.length).toBeGreaterThan(500);
    expect(map.stops.map((s) => s.name)).toContain('Lychakiv Cemetery');
    expect(map.lines.map((l) => l.name).sort()).toEqual(['Tram 1', 'Tram 2', 'Tram 7']);
    expect(map.bbox.south).toBeLessThan(RYNOK.lat);
    expect(map.bbox.east).toBeGreaterThan(LYCHAKIV.lon);
  });

  it('degrades to static routes when a file was altered, journaling lem.degraded once, without throwing at start', () => {
    const { parent, dir } = lvivCopy();
    const stops = join(dir, 'gtfs', 'stops.txt');
    writeFileSync(stops, readFileSync(stops, 'utf8').replace('Pidvalna', 'Pidvalnaa'));
    const { routing, degraded, journal } = harness([parent]);
    const status = routing.status();
    expect(status.mode).toBe('static');
    expect(status.degraded!.reason).toBe('invalid');
    expect(status.degraded!.message).toMatch(/lviv\/gtfs\/stops\.txt does not match the cid/);
    expect(status.degraded!.message).not.toContain(parent);
    routing.status();
    routing.reload();
    expect(degraded()).toEqual([{ reason: 'invalid', message: status.degraded!.message, package: null }]);
    expect(journal.query({ topic: 'city.load_failed' }).events.length).toBe(2);
    expect(unavailable(routing)).toBe('ROUTING_UNAVAILABLE:invalid');
    expect(routing.map()).toBeNull();
  });

  it('degrades when the signature does not verify or the publisher key is unknown', () => {
    const { parent, dir } = lvivCopy();
    const file = join(dir, 'package.json');
    const envelope = JSON.parse(readFileSync(file, 'utf8')) as { signatures: Array<{ sig: string }> };
    const sig = Buffer.from(envelope.signatures[0]!.sig, 'base64');
    sig[5]! ^= 0xff;
    envelope.signatures[0]!.sig = sig.toString('base64');
    writeFileSync(file, JSON.stringify(envelope));
    const bad = harness([parent]);
    expect(bad.routing.status().degraded).toMatchObject({ reason: 'invalid', message: expect.stringContaining('SIGNATURE_INVALID') });
    expect(bad.degraded().length).toBe(1);

    const junkParent = tempDir('tessera-city-');
    mkdirSync(join(junkParent, 'junk'));
    writeFileSync(join(junkParent, 'junk', 'package.json'), 'not json at all');
    const junk = harness([junkParent]);
    expect(junk.routing.status().degraded).toMatchObject({ reason: 'invalid', message: expect.stringContaining('CITY_PACKAGE_INVALID: junk/package.json') });

    const unknown = harness([CITY_DIR], keyTrust(generateKeyPair()));
    expect(unknown.routing.status().degraded).toMatchObject({ reason: 'invalid', message: expect.stringContaining('KEY_UNKNOWN') });
    expect(unavailable(unknown.routing)).toBe('ROUTING_UNAVAILABLE:invalid');
  });

  it('turns stale once the clock passes valid_until, journals it once, and recovers when the clock is back', () => {
    let now = Date.parse('2027-12-31T23:59:00Z');
    const { routing, degraded } = harness([CITY_DIR], devTrust, () => now);
    expect(routing.status().mode).toBe('graph');
    expect(routing.plan({ from: RYNOK, to: PHARMACY, depart_at: now })).not.toBeNull();
    now = Date.parse('2028-01-01T00:00:01Z');
    const stale = routing.status();
    expect(stale).toMatchObject({ mode: 'static', degraded: { reason: 'stale' }, package: { id: 'lviv', age_days: 396 } });
    expect(unavailable(routing)).toBe('ROUTING_UNAVAILABLE:stale');
    routing.status();
    expect(degraded()).toEqual([{ reason: 'stale', message: stale.degraded!.message, package: stale.package }]);
    now = Date.parse('2027-06-01T00:00:00Z');
    expect(routing.status().mode).toBe('graph');
  });

  it('is missing with no package, journals it, and picks a package up on reload', () => {
    const parent = tempDir('tessera-city-');
    const { routing, degraded } = harness([parent]);
    expect(routing.status()).toMatchObject({ mode: 'static', degraded: { reason: 'missing' }, package: null });
    expect(unavailable(routing)).toBe('ROUTING_UNAVAILABLE:missing');
    expect(routing.map()).toBeNull();
    cpSync(join(CITY_DIR, 'lviv'), join(parent, 'lviv'), { recursive: true });
    expect(routing.reload().mode).toBe('graph');
    rmSync(join(parent, 'lviv'), { recursive: true });
    expect(routing.reload().degraded!.reason).toBe('missing');
    expect(degraded().map((e) => e.reason)).toEqual(['missing', 'missing']);
  });

  it('uses the newest valid package of several, and an older valid one when the newest fails', () => {
    const parent = tempDir('tessera-city-');
    const src = tempDir('tessera-city-src-');
    const key = generateKeyPair();
    writeSmallSource(src, { version: '1.0.0', created_at: '2026-01-01T00:00:00Z' });
    writeCityPackage(src, join(parent, 'a-old'), key);
    writeSmallSource(src, { version: '1.1.0', created_at: '2026-03-01T00:00:00Z' });
    writeCityPackage(src, join(parent, 'b-new'), key);
    const clock = () => Date.parse('2026-06-01T00:00:00Z');
    expect(harness([parent], keyTrust(key), clock).routing.status().package!.version).toBe('1.1.0');
    writeFileSync(join(parent, 'b-new', 'graph.json'), '{}');
    const { routing, journal } = harness([parent], keyTrust(key), clock);
    expect(routing.status()).toMatchObject({ mode: 'graph', package: { version: '1.0.0' } });
    expect(journal.query({ topic: 'city.load_failed' }).events.length).toBe(1);
  });

  it('signs a source folder to the same bytes every time', () => {
    const src = tempDir('tessera-city-src-');
    writeSmallSource(src);
    const key = generateKeyPair();
    const out = tempDir('tessera-city-out-');
    const first = writeCityPackage(src, join(out, 'p'), key);
    const bytes = readFileSync(join(out, 'p', 'package.json'));
    const second = writeCityPackage(src, join(out, 'p'), key);
    expect(second.cid).toBe(first.cid);
    expect(readFileSync(join(out, 'p', 'package.json'))).toEqual(bytes);
    expect(() => writeCityPackage(src, src, key)).toThrow(/holds something else than a city package/);
  });
});

describe('GTFS text', () => {
  it('reads quoted fields, doubled quotes, CRLF and a BOM', () => {
    expect(parseCsv('\ufeffa,b\r\n"x, y","say ""hi"""\r\n\r\nlast,\n')).toEqual([['a', 'b'], ['x, y', 'say "hi"'], ['last', '']]);
    // Without any quote (most GTFS files): the same rows.
    expect(parseCsv('\ufeffa,b\r\nx,y\r\n\r\nlast,\n')).toEqual([['a', 'b'], ['x', 'y'], ['last', '']]);
  });

  it('finds the packages in TESSERA_CITY_PACKAGES (a path list; empty: none), else the built-in folder and <data>/city', () => {
    expect(cityPackageDirs({ TESSERA_CITY_PACKAGES: '' }, '/data')).toEqual([]);
    expect(cityPackageDirs({ TESSERA_CITY_PACKAGES: `/a${delimiter}/b` }, '/data')).toEqual(['/a', '/b']);
    expect(cityPackageDirs({}, '/data')).toEqual([CITY_DIR, join('/data', 'city')]);
  });
});
