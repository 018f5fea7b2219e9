/**
 * Offline routing on a signed city data package (seed 000 "LEM", §7.1; issue 15 point 3).
 *
 * - Packages: sub-folders of `dirs` (built-in resources/city, then `<data>/city`; `TESSERA_CITY_PACKAGES` overrides
 *   the list) holding a signed `package.json` (package.ts). At start and on `reload()` every package found is
 *   verified against the publisher trust (signature and every file's cid) and the newest valid, unexpired one is
 *   used (newest by `created_at`). One that fails is journaled as `city.load_failed` and skipped, never fatal.
 * - Degraded: no package (missing), only expired ones (stale: the clock is past `valid_until`; re-checked on every
 *   call) or only ones that fail verification or parsing (invalid) ⇒ `status().mode === 'static'` with the reason,
 *   `plan` throws ROUTING_UNAVAILABLE (the caller uses the journey document's static routes), and `lem.degraded`
 *   `{reason, message, package}` is journaled once per change of reason.
 * - Planning: both ends snap to the nearest graph node (≤ 1 km); walking is A* at 4.8 km/h; transit is a
 *   connection scan over the day's trips (in the timetable's zone) with walks to and from stops within 1.2 km and
 *   footpaths between stops; the faster of the two is returned (transit only when it saves a minute). Null when
 *   the graph has no path. Answers carry plain directions in en, ru or uk.
 *
 * Synchronous and single-threaded: each searcher's scratch arrays are reused across plans.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { TesseraError, toErrorData } from '../../common/errors.js';
import type { JourneyLanguage, LatLon, RouteLeg, RoutePlan, RoutingStatus } from '../../common/journeys.js';
import { JOURNEY_EVENTS, JOURNEY_LANGUAGES } from '../../common/journeys.js';
import type { Bus } from '../bus/index.js';
import type { Logger } from '../log/index.js';
import type { TrustView } from '../trust/index.js';
import { buildWalkGraph, createSearcher, haversine } from './graph.js';
import type { GraphPath, Searcher, WalkGraph } from './graph.js';
import { CITY_MANIFEST_FILE, verifyCityPackage } from './package.js';
import type { VerifiedCityPackage } from './package.js';
import { WALK_SPEED_MPS, buildTimetable, createConnectionScan, localTime } from './transit.js';
import type { ConnectionScan, Itinerary, Timetable } from './transit.js';
import { HERE_M, arriveSentence, hereSentence, lineName, pick, rideSentence, walkSentence } from './text.js';
import type { WalkTarget } from './text.js';

export { CITY_MANIFEST_FILE, CITY_PAYLOAD_TYPE, CITY_REQUIRED_FILES, CITY_SOURCE_FILE, signCityPackage, validateCityManifest, verifyCityPackage, writeCityPackage } from './package.js';
export type { CityManifest, VerifiedCityPackage } from './package.js';
export { WALK_SPEED_MPS } from './transit.js';

export interface Routing {
  /** Package state now (re-evaluates staleness against the clock). */
  status(): RoutingStatus;
  /** Re-reads the package folders (after an operator installs or removes one). */
  reload(): RoutingStatus;
  /**
   * A route on the city package: walking (A* on the walking graph) or walking + transit (connection scan on the
   * GTFS timetable), whichever arrives first. `modes` (default both): `['walk']` never rides; `['transit']` rides
   * whenever an itinerary exists, else walks. Null when the graph has no path (or an end is over 1 km from it).
   * @throws TesseraError ROUTING_UNAVAILABLE when the package is missing/stale/invalid (the caller then uses the
   *   document's static route); VALIDATION_FAILED for coordinates or a time that are not real.
   */
  plan(req: { from: LatLon; to: LatLon; depart_at: number; modes?: Array<'walk' | 'transit'>; language?: JourneyLanguage; names?: { from?: string; to?: string } }): RoutePlan | null;
  /** Geometry for an offline map (no tile server): ways as polylines, transit stops and lines, bbox. Null when degraded. */
  map(): CityMap | null;
}

export interface CityMap {
  bbox: { south: number; west: number; north: number; east: number };
  ways: LatLon[][];
  stops: Array<{ id: string; name: string; location: LatLon }>;
  lines: Array<{ name: string; path: LatLon[] }>;
}

export interface RoutingOptions {
  /** Parent folders of package folders, in order (built-in first). */
  dirs: readonly string[];
  /** The publisher trust packages must be signed by. */
  trust: TrustView;
  bus: Bus;
  logger: Logger;
  clock?: () => number;
}

/** A verified package with its graph and timetable built, ready to plan on. */
export interface LoadedCity {
  pkg: VerifiedCityPackage;
  graph: WalkGraph;
  timetable: Timetable;
}

/**
 * Verifies and parses one package folder (what `tessera city info|verify` show).
 * @throws TesseraError as verifyCityPackage, or CITY_PACKAGE_INVALID when graph.json or a GTFS file does not parse.
 */
export function loadCityPackage(dir: string, trust: TrustView, label: string = dir): LoadedCity {
  return parseCity(verifyCityPackage(dir, trust, label), label);
}

/** Builds the graph and timetable of a verified package. @throws TesseraError CITY_PACKAGE_INVALID. */
function parseCity(pkg: VerifiedCityPackage, label: string): LoadedCity {
  try {
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(pkg.files.get('graph.json')));
    } catch (err) {
      throw new TesseraError('CITY_PACKAGE_INVALID', `graph.json is not valid JSON: ${(err as Error).message}`);
    }
    const graph = buildWalkGraph(json);
    return { pkg, graph, timetable: buildTimetable(pkg.files, graph) };
  } catch (err) {
    const data = toErrorData(err);
    throw new TesseraError(data.code, `${label}: ${data.message}`, data.details !== undefined ? { details: data.details } : {});
  }
}

/** Ends farther than this from the walking graph get no route. */
const SNAP_M = 1000;
/** Walks to and from stops up to this far. */
const ACCESS_M = 1200;
/** Transit must save this much over walking to be proposed. */
const TRANSIT_GAIN_S = 60;
const DAY_MS = 86_400_000;

type Problem = { reason: 'missing' | 'stale' | 'invalid'; message: string };

export function createRouting(options: RoutingOptions): Routing {
  const { bus, logger, trust } = options;
  const clock = options.clock ?? Date.now;
  let city: (LoadedCity & { search: { walk: Searcher; access: Searcher; egress: Searcher }; scan: ConnectionScan; map?: CityMap }) | null = null;
  let problem: Problem | null = null;
  let published: Problem['reason'] | null = null;

  const load = (): void => {
    city = null;
    problem = null;
    const found: string[] = [];
    for (const parent of options.dirs) {
      if (!existsSync(parent) || !statSync(parent).isDirectory()) continue;
      for (const name of readdirSync(parent).sort()) {
        const dir = join(parent, name);
        if (existsSync(join(dir, CITY_MANIFEST_FILE))) found.push(dir);
      }
    }
    if (found.length === 0) {
      logger.info('no city package found', { dirs: options.dirs });
      problem = { reason: 'missing', message: "No city package is installed: routes fall back to the journeys' static routes." };
      return;
    }
    const failures: string[] = [];
    const verified: VerifiedCityPackage[] = [];
    for (const dir of found) {
      try {
        verified.push(verifyCityPackage(dir, trust, basename(dir)));
      } catch (err) {
        const data = toErrorData(err);
        failures.push(`${data.code}: ${data.message}`);
        logger.warn('a city package failed verification', { dir, error: err });
        bus.publish('city.load_failed', { dir, error: data });
      }
    }
    const now = clock();
    // Unexpired first, then the newest; the first folder wins a tie.
    const order = verified
      .map((pkg, i) => ({ pkg, i, fresh: now <= Date.parse(pkg.manifest.valid_until), created: Date.parse(pkg.manifest.created_at) }))
      .sort((a, b) => Number(b.fresh) - Number(a.fresh) || b.created - a.created || a.i - b.i);
    for (const { pkg } of order) {
      try {
        const { graph, timetable } = parseCity(pkg, basename(pkg.dir));
        city = { pkg, graph, timetable, search: { walk: createSearcher(graph), access: createSearcher(graph), egress: createSearcher(graph) }, scan: createConnectionScan(timetable) };
        logger.info('city package loaded', { dir: pkg.dir, id: pkg.manifest.id, version: pkg.manifest.version, nodes: graph.size, stops: timetable.stops.length, trips: timetable.trips.length });
        return;
      } catch (err) {
        const data = toErrorData(err);
        failures.push(`${data.code}: ${data.message}`);
        logger.warn('a city package did not parse', { dir: pkg.dir, error: err });
        bus.publish('city.load_failed', { dir: pkg.dir, error: data });
      }
    }
    problem = { reason: 'invalid', message: `The city package failed verification, so routes fall back to the journeys' static routes: ${failures.join(' ')}` };
  };

  const status = (): RoutingStatus => {
    const now = clock();
    let out: RoutingStatus;
    if (city) {
      const m = city.pkg.manifest;
      const pkg = { id: m.id, version: m.version, created_at: m.created_at, valid_until: m.valid_until, age_days: Math.max(0, Math.floor((now - Date.parse(m.created_at)) / DAY_MS)) };
      if (now > Date.parse(m.valid_until)) {
        out = { mode: 'static', degraded: { reason: 'stale', message: `The city package ${m.id}@${m.version} was valid until ${m.valid_until}; routes fall back to the journeys' static routes until a newer package is installed.` }, package: pkg };
      } else out = { mode: 'graph', degraded: null, package: pkg };
    } else out = { mode: 'static', degraded: problem ?? { reason: 'missing', message: 'No city package is loaded.' }, package: null };
    const reason = out.degraded?.reason ?? null;
    if (reason !== published) {
      published = reason;
      if (out.degraded) {
        logger.warn('routing degraded to static routes', { reason, message: out.degraded.message });
        bus.publish(JOURNEY_EVENTS.lemDegraded, { reason, message: out.degraded.message, package: out.package });
      }
    }
    return out;
  };

  load();
  status();

  return {
    status,
    reload() {
      load();
      return status();
    },
    plan(req) {
      const st = status();
      if (st.mode !== 'graph' || !city) throw new TesseraError('ROUTING_UNAVAILABLE', st.degraded?.message ?? 'Routing is not available.', { details: { reason: st.degraded?.reason ?? 'missing' } });
      for (const [k, p] of [['from', req.from], ['to', req.to]] as const) {
        if (!p || !(Math.abs(p.lat) <= 90) || !(Math.abs(p.lon) <= 180)) throw new TesseraError('VALIDATION_FAILED', `${k} must be {lat, lon} with lat in -90..90 and lon in -180..180.`);
      }
      if (!Number.isFinite(req.depart_at)) throw new TesseraError('VALIDATION_FAILED', 'depart_at must be a time (ms since the epoch).');
      const language = req.language && (JOURNEY_LANGUAGES as readonly string[]).includes(req.language) ? req.language : 'en';
      return planOn(city, req, language);
    },
    map() {
      if (status().mode !== 'graph' || !city) return null;
      city.map ??= buildMap(city.graph, city.timetable);
      return city.map;
    },
  };
}

// ---- planning ----

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
const point = (g: WalkGraph, i: number): LatLon => ({ lat: g.lat[i]!, lon: g.lon[i]! });
const iso = (ms: number) => new Date(Math.round(ms)).toISOString();

const DEFAULT_NAMES: Record<JourneyLanguage, { from: string; to: string }> = {
  en: { from: 'Start', to: 'Destination' },
  ru: { from: 'Начало', to: 'Пункт назначения' },
  uk: { from: 'Початок', to: 'Пункт призначення' },
};

/** Streets that carry a real share of a walk, in walking order (at most three). */
function streetsOf(g: WalkGraph, path: GraphPath, language: JourneyLanguage): string[] {
  const metres = new Map<number, number>();
  for (const e of path.edges) {
    const s = g.streetOf[e]!;
    if (s >= 0) metres.set(s, (metres.get(s) ?? 0) + g.lengths[e]!);
  }
  const floor = Math.max(60, path.meters * 0.2);
  return [...metres].filter(([, m]) => m >= floor).slice(0, 3).map(([s]) => pick(g.streets[s]!, language));
}

interface Place {
  name: string;
  location: LatLon;
}

function walkLeg(g: WalkGraph, from: Place, to: Place, path: GraphPath, extraMeters: number, departMs: number): RouteLeg {
  const meters = path.meters + extraMeters;
  const coords = [from.location, ...path.nodes.map((i) => point(g, i)), to.location].map((p) => ({ lat: round6(p.lat), lon: round6(p.lon) }));
  return { mode: 'walk', from, to, depart_at: iso(departMs), arrive_at: iso(departMs + (meters / WALK_SPEED_MPS) * 1000), meters: Math.round(meters), path: coords };
}

const reversePath = (p: GraphPath): GraphPath => ({ meters: p.meters, nodes: [...p.nodes].reverse(), edges: [...p.edges].reverse() });

function planOn(city: LoadedCity & { search: { walk: Searcher; access: Searcher; egress: Searcher }; scan: ConnectionScan }, req: Parameters<Routing['plan']>[0], language: JourneyLanguage): RoutePlan | null {
  const { graph: g, timetable: tt } = city;
  const a = g.snap(req.from, SNAP_M);
  const b = g.snap(req.to, SNAP_M);
  if (!a || !b) return null;
  const modes = req.modes && req.modes.length > 0 ? req.modes : ['walk', 'transit'];
  const origin: Place = { name: req.names?.from ?? DEFAULT_NAMES[language].from, location: { lat: req.from.lat, lon: req.from.lon } };
  const dest: Place = { name: req.names?.to ?? DEFAULT_NAMES[language].to, location: { lat: req.to.lat, lon: req.to.lon } };
  const destTarget: WalkTarget = { kind: 'place', name: req.names?.to ?? null };
  const walkPath = city.search.walk.route(a.node, b.node);
  const walkSec = walkPath ? (walkPath.meters + a.meters + b.meters) / WALK_SPEED_MPS : Infinity;

  let itinerary: Itinerary | null = null;
  const local = localTime(req.depart_at, tt.timezone);
  if (modes.includes('transit') && tt.dep.length > 0) {
    const access = new Map<number, number>();
    const egress = new Map<number, number>();
    city.search.access.reach(a.node, ACCESS_M);
    city.search.egress.reach(b.node, ACCESS_M);
    tt.stops.forEach((s, i) => {
      if (s.node < 0) return;
      const da = city.search.access.distance(s.node);
      if (Number.isFinite(da)) access.set(i, (da + a.meters + s.snapMeters) / WALK_SPEED_MPS);
      const de = city.search.egress.distance(s.node);
      if (Number.isFinite(de)) egress.set(i, (de + b.meters + s.snapMeters) / WALK_SPEED_MPS);
    });
    const bound = modes.includes('walk') ? local.seconds + walkSec - TRANSIT_GAIN_S : Infinity;
    itinerary = city.scan.earliest({ date: local.date, weekday: local.weekday, start: local.seconds, access, egress, bound });
  }

  const tz = tt.timezone;
  const hhmm = clockFormat(tz);
  const sentences: string[] = [];
  const legs: RouteLeg[] = [];
  if (itinerary) {
    const dayStart = req.depart_at - local.seconds * 1000;
    const stopPlace = (i: number): Place => ({ name: pick(tt.stops[i]!.name, language), location: tt.stops[i]!.location });
    // 1. Walk to the first stop.
    const first = tt.stops[itinerary.firstStop]!;
    const accessPath = city.search.access.path(first.node)!;
    let leg = walkLeg(g, origin, stopPlace(itinerary.firstStop), accessPath, a.meters + first.snapMeters, req.depart_at);
    legs.push(leg);
    sentences.push(walkSentence(language, Math.round((Date.parse(leg.arrive_at) - Date.parse(leg.depart_at)) / 60000), streetsOf(g, accessPath, language), { kind: 'stop', name: stopPlace(itinerary.firstStop).name }));
    // 2. Rides and footpaths.
    for (const step of itinerary.steps) {
      if (step.kind === 'ride') {
        const trip = tt.trips[tt.trip[step.enter]!]!;
        const route = tt.routes[trip.route]!;
        const from = tt.from[step.enter]!;
        const to = tt.to[step.exit]!;
        const stops = tt.seq[step.exit]! - tt.seq[step.enter]! + 1;
        const departMs = dayStart + tt.dep[step.enter]! * 1000;
        const arriveMs = dayStart + tt.arr[step.exit]! * 1000;
        const line = lineName(language, route.type, route.short);
        const headsign = trip.lastStop >= 0 && tt.stops[trip.lastStop]!.name.en === trip.headsign ? pick(tt.stops[trip.lastStop]!.name, language) : trip.headsign || pick(tt.stops[trip.lastStop]!.name, language);
        const ridePath = ridePathOf(tt, step.enter, step.exit);
        legs.push({ mode: 'transit', from: stopPlace(from), to: stopPlace(to), depart_at: iso(departMs), arrive_at: iso(arriveMs), meters: Math.round(lengthOf(ridePath)), line: lineName('en', route.type, route.short), headsign: trip.headsign || tt.stops[trip.lastStop]!.name.en, stops, path: ridePath });
        sentences.push(rideSentence(language, { line, headsign, at: hhmm.format(departMs), board: stopPlace(from).name, alight: stopPlace(to).name, stops }));
      } else {
        const s1 = tt.stops[step.from]!;
        const s2 = tt.stops[step.to]!;
        const path = city.search.walk.route(s1.node, s2.node)!;
        const departMs = Date.parse(legs[legs.length - 1]!.arrive_at);
        leg = walkLeg(g, stopPlace(step.from), stopPlace(step.to), path, s1.snapMeters + s2.snapMeters, departMs);
        legs.push(leg);
        sentences.push(walkSentence(language, Math.round(step.seconds / 60), streetsOf(g, path, language), { kind: 'stop', name: stopPlace(step.to).name }));
      }
    }
    // 3. Walk from the last stop.
    const last = tt.stops[itinerary.lastStop]!;
    const egressPath = reversePath(city.search.egress.path(last.node)!);
    leg = walkLeg(g, stopPlace(itinerary.lastStop), dest, egressPath, b.meters + last.snapMeters, Date.parse(legs[legs.length - 1]!.arrive_at));
    legs.push(leg);
    sentences.push(walkSentence(language, Math.round((Date.parse(leg.arrive_at) - Date.parse(leg.depart_at)) / 60000), streetsOf(g, egressPath, language), destTarget));
    sentences.push(arriveSentence(language, hhmm.format(Date.parse(leg.arrive_at))));
  } else {
    if (!walkPath) return null;
    const leg = walkLeg(g, origin, dest, walkPath, a.meters + b.meters, req.depart_at);
    legs.push(leg);
    sentences.push(leg.meters < HERE_M ? hereSentence(language, req.names?.to ?? null) : walkSentence(language, Math.round(walkSec / 60), streetsOf(g, walkPath, language), destTarget));
  }
  const arrive = Date.parse(legs[legs.length - 1]!.arrive_at);
  return {
    source: 'graph',
    from: origin.location,
    to: dest.location,
    depart_at: iso(req.depart_at),
    arrive_at: iso(arrive),
    minutes: Math.round((arrive - req.depart_at) / 60000),
    meters: legs.reduce((m, l) => m + l.meters, 0),
    legs,
    text: sentences.join(' '),
  };
}

const clockFormats = new Map<string, Intl.DateTimeFormat>();
/** `HH:MM` in the timetable's zone (formatters are costly to make: one per zone). */
function clockFormat(timezone: string): Intl.DateTimeFormat {
  let f = clockFormats.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    clockFormats.set(timezone, f);
  }
  return f;
}

function lengthOf(path: LatLon[]): number {
  let m = 0;
  for (let i = 1; i < path.length; i++) m += haversine(path[i - 1]!.lat, path[i - 1]!.lon, path[i]!.lat, path[i]!.lon);
  return m;
}

/** The vehicle's way from the boarding stop to the alighting stop: the trip's shape between them, else its stops. */
function ridePathOf(tt: Timetable, enter: number, exit: number): LatLon[] {
  const trip = tt.trips[tt.trip[enter]!]!;
  const d0 = tt.fromDist[enter]!;
  const d1 = tt.toDist[exit]!;
  const start = tt.stops[tt.from[enter]!]!.location;
  const end = tt.stops[tt.to[exit]!]!.location;
  if (trip.shape && trip.shapeDist && Number.isFinite(d0) && Number.isFinite(d1)) {
    const inner = trip.shape.filter((_, k) => trip.shapeDist![k]! > d0 + 0.5 && trip.shapeDist![k]! < d1 - 0.5);
    return [start, ...inner, end];
  }
  const t = tt.trip[enter]!;
  const out: LatLon[] = [start];
  for (let k = tt.tripStart[t]! + tt.seq[enter]!; k <= tt.tripStart[t]! + tt.seq[exit]!; k++) out.push(tt.stops[tt.to[tt.tripConns[k]!]!]!.location);
  return out;
}

// ---- the offline map ----

function buildMap(g: WalkGraph, tt: Timetable): CityMap {
  const degree = (i: number) => g.offsets[i + 1]! - g.offsets[i]!;
  const used = new Uint8Array(g.targets.length);
  const twin = (a: number, k: number): number => {
    const b = g.targets[k]!;
    for (let j = g.offsets[b]!; j < g.offsets[b + 1]!; j++) if (g.targets[j] === a && !used[j]) return j;
    return -1;
  };
  const ways: LatLon[][] = [];
  const walkFrom = (start: number, k0: number) => {
    const way: LatLon[] = [point(g, start)];
    let at = start;
    let k = k0;
    for (;;) {
      used[k] = 1;
      const t = twin(at, k);
      if (t >= 0) used[t] = 1;
      at = g.targets[k]!;
      way.push(point(g, at));
      if (degree(at) !== 2 || at === start) break;
      let nextK = -1;
      for (let j = g.offsets[at]!; j < g.offsets[at + 1]!; j++) if (!used[j]) nextK = j;
      if (nextK < 0) break;
      k = nextK;
    }
    ways.push(way.map((p) => ({ lat: round6(p.lat), lon: round6(p.lon) })));
  };
  // Chains between junctions and ends, then whatever is left (loops of degree-2 nodes).
  for (let i = 0; i < g.size; i++) {
    if (degree(i) === 2) continue;
    for (let k = g.offsets[i]!; k < g.offsets[i + 1]!; k++) if (!used[k]) walkFrom(i, k);
  }
  for (let i = 0; i < g.size; i++) for (let k = g.offsets[i]!; k < g.offsets[i + 1]!; k++) if (!used[k]) walkFrom(i, k);
  const served = new Set<number>();
  for (let c = 0; c < tt.dep.length; c++) {
    served.add(tt.from[c]!);
    served.add(tt.to[c]!);
  }
  const stops = tt.stops.filter((_, i) => served.has(i)).map((s) => ({ id: s.id, name: s.name.en, location: s.location }));
  // One path per line: its trip with the longest shape (or the most stops).
  const lines: CityMap['lines'] = [];
  tt.routes.forEach((route, r) => {
    let best: LatLon[] = [];
    tt.trips.forEach((trip, t) => {
      if (trip.route !== r) return;
      const path = trip.shape ?? Array.from({ length: tt.tripStart[t + 1]! - tt.tripStart[t]! }, (_, k) => tt.stops[tt.to[tt.tripConns[tt.tripStart[t]! + k]!]!]!.location);
      if (path.length > best.length) best = path;
    });
    if (best.length > 1) lines.push({ name: lineName('en', route.type, route.short), path: best });
  });
  return { bbox: { ...g.bbox }, ways, stops, lines };
}
