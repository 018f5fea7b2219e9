/**
 * The timetable of a city package (GTFS: agency, stops, routes, trips, stop_times, calendar; optional shapes and
 * translations) and the earliest-arrival search on it: the Connection Scan Algorithm (Dibbelt, Pajor, Strasser,
 * Wagner, "Connection Scan Algorithm", 2017) over the day's connections sorted by departure, with walking from the
 * start to nearby stops, footpaths between stops, and walking from the stops to the destination. Written here.
 */
import { TesseraError } from '../../common/errors.js';
import type { LatLon } from '../../common/journeys.js';
import type { StreetName, WalkGraph } from './graph.js';
import { createSearcher, haversine } from './graph.js';

/** A name per language (`en` is the GTFS name; `uk`, `ru` from translations.txt). */
export type LocalName = StreetName;

export interface Stop {
  id: string;
  name: LocalName;
  location: LatLon;
  /** Nearest walking-graph node and the metres to it; -1 when none is within reach (the stop is not walkable). */
  node: number;
  snapMeters: number;
}

export interface TransitRoute {
  id: string;
  short: string;
  long: string;
  /** GTFS route_type (0 tram, 1 subway, 2 rail, 3 bus, …). */
  type: number;
}

export interface Trip {
  id: string;
  route: number;
  service: number;
  headsign: string;
  /** Index of the last stop (its translated name is the headsign in other languages). */
  lastStop: number;
  shape: LatLon[] | null;
  /** Cumulative metres along `shape`, per point. */
  shapeDist: Float64Array | null;
}

export interface Timetable {
  timezone: string;
  stops: Stop[];
  routes: TransitRoute[];
  trips: Trip[];
  services: Array<{ id: string; days: boolean[]; start: number; end: number }>;
  /** Connections sorted by departure (seconds after the service day's midnight). */
  dep: Int32Array;
  arr: Int32Array;
  from: Int32Array;
  to: Int32Array;
  trip: Int32Array;
  /** Position of the connection in its trip (0 = leaves the first stop). */
  seq: Int32Array;
  /** shape_dist_traveled at departure and arrival (NaN when absent). */
  fromDist: Float64Array;
  toDist: Float64Array;
  /** Per trip, its connections in order (CSR over `tripConns`). */
  tripStart: Int32Array;
  tripConns: Int32Array;
  /** Footpaths between stops (CSR): `transferTo`, `transferSec`. */
  transferStart: Int32Array;
  transferTo: Int32Array;
  transferSec: Float64Array;
}

// ---- CSV (RFC 4180, as GTFS uses it) ----

/** Parses CSV text into rows of fields (quotes, doubled quotes, CRLF, a leading BOM). */
export function parseCsv(text: string): string[][] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // Most GTFS files quote nothing: split them directly (a timetable is tens of thousands of rows).
  if (!text.includes('"')) return text.split(/\r\n|\n|\r/).filter((line) => line !== '').map((line) => line.split(','));
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (!(row.length === 1 && row[0] === '')) rows.push(row);
      row = [];
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const invalid = (message: string) => new TesseraError('CITY_PACKAGE_INVALID', message);

/** A GTFS table as records by column name; `required` columns must be there. */
function table(files: Map<string, Uint8Array>, name: string, required: readonly string[], optional = false): Array<Record<string, string>> {
  const bytes = files.get(`gtfs/${name}`);
  if (!bytes) {
    if (optional) return [];
    throw invalid(`gtfs/${name} is missing.`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid(`gtfs/${name} is not UTF-8 text.`);
  }
  const rows = parseCsv(text);
  if (rows.length === 0) throw invalid(`gtfs/${name} has no header row.`);
  const header = rows[0]!.map((h) => h.trim());
  for (const col of required) if (!header.includes(col)) throw invalid(`gtfs/${name} has no column ${col}.`);
  return rows.slice(1).map((r) => {
    const rec: Record<string, string> = {};
    header.forEach((h, i) => (rec[h] = (r[i] ?? '').trim()));
    return rec;
  });
}

/** `HH:MM:SS` (hours may pass 24) → seconds. */
function gtfsTime(text: string, where: string): number {
  const m = /^(\d{1,2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) throw invalid(`${where}: "${text}" is not a GTFS time (HH:MM:SS).`);
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
}

function gtfsDate(text: string, where: string): number {
  if (!/^\d{8}$/.test(text)) throw invalid(`${where}: "${text}" is not a GTFS date (YYYYMMDD).`);
  return Number(text);
}

export const WALK_SPEED_MPS = 4800 / 3600;
/** Stops farther than this from the walking graph are left out of routing. */
const STOP_SNAP_M = 300;
/** Footpaths between stops up to this walking distance. */
const TRANSFER_M = 400;

/**
 * Builds the timetable from a verified package's files, snapping each stop to `graph`.
 * @throws TesseraError CITY_PACKAGE_INVALID naming the file, row and field.
 */
export function buildTimetable(files: Map<string, Uint8Array>, graph: WalkGraph): Timetable {
  const agency = table(files, 'agency.txt', ['agency_name', 'agency_timezone']);
  if (agency.length === 0) throw invalid('gtfs/agency.txt has no agency.');
  const timezone = agency[0]!['agency_timezone']!;
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    throw invalid(`gtfs/agency.txt: "${timezone}" is not an IANA time zone.`);
  }
  const translations = table(files, 'translations.txt', ['table_name', 'field_name', 'language', 'translation'], true);
  const stopNames = new Map<string, Record<string, string>>();
  for (const t of translations) {
    if (t['table_name'] !== 'stops' || t['field_name'] !== 'stop_name' || !t['record_id']) continue;
    const names = stopNames.get(t['record_id']) ?? {};
    names[t['language']!] = t['translation']!;
    stopNames.set(t['record_id'], names);
  }
  const stopIndex = new Map<string, number>();
  const stops: Stop[] = table(files, 'stops.txt', ['stop_id', 'stop_name', 'stop_lat', 'stop_lon']).map((r, i) => {
    const lat = Number(r['stop_lat']);
    const lon = Number(r['stop_lon']);
    if (!r['stop_id'] || !(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)) throw invalid(`gtfs/stops.txt row ${i + 2}: stop_id, stop_lat and stop_lon are required.`);
    if (stopIndex.has(r['stop_id'])) throw invalid(`gtfs/stops.txt row ${i + 2}: stop_id ${r['stop_id']} is listed twice.`);
    stopIndex.set(r['stop_id'], i);
    const snap = graph.snap({ lat, lon }, STOP_SNAP_M);
    const tr = stopNames.get(r['stop_id']) ?? {};
    return {
      id: r['stop_id'],
      name: { en: r['stop_name']!, ...(tr['uk'] ? { uk: tr['uk'] } : {}), ...(tr['ru'] ? { ru: tr['ru'] } : {}) },
      location: { lat, lon },
      node: snap ? snap.node : -1,
      snapMeters: snap ? snap.meters : Infinity,
    };
  });
  const routeIndex = new Map<string, number>();
  const routes: TransitRoute[] = table(files, 'routes.txt', ['route_id', 'route_type']).map((r, i) => {
    routeIndex.set(r['route_id']!, i);
    return { id: r['route_id']!, short: r['route_short_name'] ?? '', long: r['route_long_name'] ?? '', type: Number(r['route_type']) };
  });
  const serviceIndex = new Map<string, number>();
  const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
  const services = table(files, 'calendar.txt', ['service_id', ...DAYS, 'start_date', 'end_date']).map((r, i) => {
    serviceIndex.set(r['service_id']!, i);
    return { id: r['service_id']!, days: DAYS.map((d) => r[d] === '1'), start: gtfsDate(r['start_date']!, `gtfs/calendar.txt row ${i + 2}`), end: gtfsDate(r['end_date']!, `gtfs/calendar.txt row ${i + 2}`) };
  });
  const shapes = new Map<string, Array<{ seq: number; lat: number; lon: number; dist: number }>>();
  for (const r of table(files, 'shapes.txt', ['shape_id', 'shape_pt_lat', 'shape_pt_lon', 'shape_pt_sequence'], true)) {
    const list = shapes.get(r['shape_id']!) ?? [];
    list.push({ seq: Number(r['shape_pt_sequence']), lat: Number(r['shape_pt_lat']), lon: Number(r['shape_pt_lon']), dist: r['shape_dist_traveled'] ? Number(r['shape_dist_traveled']) : NaN });
    shapes.set(r['shape_id']!, list);
  }
  const tripIndex = new Map<string, number>();
  const trips: Trip[] = table(files, 'trips.txt', ['route_id', 'service_id', 'trip_id']).map((r, i) => {
    const route = routeIndex.get(r['route_id']!);
    const service = serviceIndex.get(r['service_id']!);
    if (route === undefined) throw invalid(`gtfs/trips.txt row ${i + 2}: route ${r['route_id']} is not in routes.txt.`);
    if (service === undefined) throw invalid(`gtfs/trips.txt row ${i + 2}: service ${r['service_id']} is not in calendar.txt.`);
    tripIndex.set(r['trip_id']!, i);
    const pts = r['shape_id'] ? shapes.get(r['shape_id']) : undefined;
    let shape: LatLon[] | null = null;
    let shapeDist: Float64Array | null = null;
    if (pts && pts.length > 1) {
      pts.sort((a, b) => a.seq - b.seq);
      shape = pts.map((p) => ({ lat: p.lat, lon: p.lon }));
      shapeDist = new Float64Array(pts.length);
      for (let k = 1; k < pts.length; k++) shapeDist[k] = Number.isFinite(pts[k]!.dist) ? pts[k]!.dist : shapeDist[k - 1]! + haversine(pts[k - 1]!.lat, pts[k - 1]!.lon, pts[k]!.lat, pts[k]!.lon);
    }
    return { id: r['trip_id']!, route, service, headsign: r['trip_headsign'] ?? '', lastStop: -1, shape, shapeDist };
  });
  // Stop times → per trip, in stop_sequence order → connections.
  const perTrip: Array<Array<{ seq: number; arr: number; dep: number; stop: number; dist: number }>> = trips.map(() => []);
  table(files, 'stop_times.txt', ['trip_id', 'arrival_time', 'departure_time', 'stop_id', 'stop_sequence']).forEach((r, i) => {
    const where = `gtfs/stop_times.txt row ${i + 2}`;
    const t = tripIndex.get(r['trip_id']!);
    const s = stopIndex.get(r['stop_id']!);
    if (t === undefined) throw invalid(`${where}: trip ${r['trip_id']} is not in trips.txt.`);
    if (s === undefined) throw invalid(`${where}: stop ${r['stop_id']} is not in stops.txt.`);
    const arr = r['arrival_time'] ? gtfsTime(r['arrival_time'], where) : NaN;
    const dep = r['departure_time'] ? gtfsTime(r['departure_time'], where) : arr;
    if (Number.isNaN(dep)) throw invalid(`${where}: a time is required (this timetable has no interpolated stops).`);
    perTrip[t]!.push({ seq: Number(r['stop_sequence']), arr: Number.isNaN(arr) ? dep : arr, dep, stop: s, dist: r['shape_dist_traveled'] ? Number(r['shape_dist_traveled']) : NaN });
  });
  const all: Array<{ dep: number; arr: number; from: number; to: number; trip: number; seq: number; fromDist: number; toDist: number }> = [];
  perTrip.forEach((list, t) => {
    list.sort((a, b) => a.seq - b.seq);
    if (list.length > 0) trips[t]!.lastStop = list[list.length - 1]!.stop;
    for (let k = 0; k + 1 < list.length; k++) {
      const a = list[k]!;
      const b = list[k + 1]!;
      if (b.arr < a.dep) throw invalid(`gtfs/stop_times.txt: trip ${trips[t]!.id} arrives at stop ${k + 2} before it leaves stop ${k + 1}.`);
      all.push({ dep: a.dep, arr: b.arr, from: a.stop, to: b.stop, trip: t, seq: k, fromDist: a.dist, toDist: b.dist });
    }
  });
  all.sort((x, y) => x.dep - y.dep || x.arr - y.arr);
  const c = all.length;
  const tt = {
    dep: new Int32Array(c),
    arr: new Int32Array(c),
    from: new Int32Array(c),
    to: new Int32Array(c),
    trip: new Int32Array(c),
    seq: new Int32Array(c),
    fromDist: new Float64Array(c),
    toDist: new Float64Array(c),
  };
  const tripCount = new Int32Array(trips.length + 1);
  all.forEach((x, i) => {
    tt.dep[i] = x.dep;
    tt.arr[i] = x.arr;
    tt.from[i] = x.from;
    tt.to[i] = x.to;
    tt.trip[i] = x.trip;
    tt.seq[i] = x.seq;
    tt.fromDist[i] = x.fromDist;
    tt.toDist[i] = x.toDist;
    tripCount[x.trip + 1]!++;
  });
  const tripStart = new Int32Array(trips.length + 1);
  for (let t = 0; t < trips.length; t++) tripStart[t + 1] = tripStart[t]! + tripCount[t + 1]!;
  const tripConns = new Int32Array(c);
  for (let i = 0; i < c; i++) tripConns[tripStart[tt.trip[i]!]! + tt.seq[i]!] = i;
  // Footpaths: walking between stops within TRANSFER_M on the graph.
  const searcher = createSearcher(graph);
  const transfers: Array<Array<[number, number]>> = stops.map(() => []);
  stops.forEach((s, i) => {
    if (s.node < 0) return;
    searcher.reach(s.node, TRANSFER_M);
    stops.forEach((o, j) => {
      if (j === i || o.node < 0) return;
      const d = searcher.distance(o.node);
      if (Number.isFinite(d)) transfers[i]!.push([j, (d + s.snapMeters + o.snapMeters) / WALK_SPEED_MPS]);
    });
  });
  const transferStart = new Int32Array(stops.length + 1);
  transfers.forEach((l, i) => (transferStart[i + 1] = transferStart[i]! + l.length));
  const transferTo = new Int32Array(transferStart[stops.length]!);
  const transferSec = new Float64Array(transferStart[stops.length]!);
  transfers.flat().forEach(([to, sec], k) => {
    transferTo[k] = to;
    transferSec[k] = sec;
  });
  return { timezone, stops, routes, trips, services, ...tt, tripStart, tripConns, transferStart, transferTo, transferSec };
}

// ---- local time in the timetable's zone ----

const formatters = new Map<string, Intl.DateTimeFormat>();
/** The local date (YYYYMMDD), weekday (0 = Monday) and seconds since local midnight of `epochMs` in `timezone`. */
export function localTime(epochMs: number, timezone: string): { date: number; weekday: number; seconds: number } {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    formatters.set(timezone, f);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(epochMs))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const y = parts['year']!, m = parts['month']!, d = parts['day']!;
  const weekday = (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
  return { date: y * 10000 + m * 100 + d, weekday, seconds: parts['hour']! * 3600 + parts['minute']! * 60 + parts['second']! + (epochMs % 1000) / 1000 };
}

// ---- the search ----

/** One ride of a transit itinerary. */
export interface Ride {
  /** Connection where the traveller boards and the one they alight from. */
  enter: number;
  exit: number;
}
/** A transit itinerary: walk to `firstStop`, then rides and footpaths; ends at `lastStop`, then walk. */
export interface Itinerary {
  /** Seconds after local midnight of the service day. */
  arrival: number;
  firstStop: number;
  lastStop: number;
  steps: Array<{ kind: 'ride'; enter: number; exit: number } | { kind: 'walk'; from: number; to: number; seconds: number }>;
}

export interface ConnectionScan {
  /**
   * Earliest arrival at the destination leaving at `start` (seconds after local midnight of `date`), given the
   * walking seconds from the origin to stops (`access`) and from stops to the destination (`egress`); only
   * itineraries arriving before `bound` count. Null when none rides a vehicle and beats the bound.
   */
  earliest(q: { date: number; weekday: number; start: number; access: Map<number, number>; egress: Map<number, number>; bound: number }): Itinerary | null;
}

const VIA_NONE = 0, VIA_ACCESS = 1, VIA_RIDE = 2, VIA_WALK = 3;

export function createConnectionScan(tt: Timetable): ConnectionScan {
  const s = tt.stops.length;
  const arrival = new Float64Array(s);
  const viaKind = new Uint8Array(s);
  const viaA = new Int32Array(s);
  const viaB = new Int32Array(s);
  const viaSec = new Float64Array(s);
  const boarded = new Int32Array(tt.trips.length);
  const tripEpoch = new Uint32Array(tt.trips.length);
  let epoch = 0;
  const n = tt.dep.length;
  return {
    earliest({ date, weekday, start, access, egress, bound }) {
      epoch++;
      arrival.fill(Infinity);
      viaKind.fill(VIA_NONE);
      const active = tt.services.map((sv) => sv.days[weekday] === true && date >= sv.start && date <= sv.end);
      for (const [stop, sec] of access) {
        if (start + sec < arrival[stop]!) {
          arrival[stop] = start + sec;
          viaKind[stop] = VIA_ACCESS;
        }
      }
      let best = bound;
      let bestStop = -1;
      const improve = (stop: number) => {
        const e = egress.get(stop);
        if (e !== undefined && arrival[stop]! + e < best && viaKind[stop] !== VIA_ACCESS) {
          best = arrival[stop]! + e;
          bestStop = stop;
        }
      };
      // First connection leaving at or after the start.
      let lo = 0, hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (tt.dep[mid]! < start) lo = mid + 1;
        else hi = mid;
      }
      for (let c = lo; c < n; c++) {
        const dep = tt.dep[c]!;
        if (dep >= best) break;
        const trip = tt.trip[c]!;
        if (!active[tt.trips[trip]!.service]) continue;
        const onBoard = tripEpoch[trip] === epoch;
        const from = tt.from[c]!;
        if (!onBoard && !(arrival[from]! <= dep)) continue;
        if (!onBoard) {
          tripEpoch[trip] = epoch;
          boarded[trip] = c;
        }
        const to = tt.to[c]!;
        const arr = tt.arr[c]!;
        if (arr < arrival[to]!) {
          arrival[to] = arr;
          viaKind[to] = VIA_RIDE;
          viaA[to] = boarded[trip]!;
          viaB[to] = c;
          improve(to);
          for (let k = tt.transferStart[to]!; k < tt.transferStart[to + 1]!; k++) {
            const o = tt.transferTo[k]!;
            const t = arr + tt.transferSec[k]!;
            if (t < arrival[o]!) {
              arrival[o] = t;
              viaKind[o] = VIA_WALK;
              viaA[o] = to;
              viaSec[o] = tt.transferSec[k]!;
              improve(o);
            }
          }
        }
      }
      if (bestStop < 0) return null;
      const steps: Itinerary['steps'] = [];
      let at = bestStop;
      for (let guard = 0; viaKind[at] !== VIA_ACCESS; guard++) {
        if (guard > 4 * s) return null;
        if (viaKind[at] === VIA_RIDE) {
          steps.push({ kind: 'ride', enter: viaA[at]!, exit: viaB[at]! });
          at = tt.from[viaA[at]!]!;
        } else if (viaKind[at] === VIA_WALK) {
          steps.push({ kind: 'walk', from: viaA[at]!, to: at, seconds: viaSec[at]! });
          at = viaA[at]!;
        } else return null;
      }
      steps.reverse();
      return { arrival: best, firstStop: at, lastStop: bestStop, steps };
    },
  };
}
