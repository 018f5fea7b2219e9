/**
 * The walking graph of a city package (`graph.json`) and the searches on it: snapping a coordinate to the nearest
 * node (a uniform grid index), A* between two nodes, and a bounded one-to-many Dijkstra (walks to the tram stops
 * around a point). Written here, not taken from a routing library (issue 15: no GPL code in the app).
 *
 * The graph is undirected and stored as compressed adjacency (CSR) typed arrays. Each searcher owns its scratch
 * arrays and stamps them per query, so a query allocates only its answer; a searcher's answer is valid until its
 * next query. JavaScript runs one plan at a time, so the routing module keeps one searcher per role.
 */
import type { LatLon } from '../../common/journeys.js';
import { TesseraError } from '../../common/errors.js';

/** A street name per language (`en` always; others fall back to it). */
export interface StreetName {
  en: string;
  uk?: string;
  ru?: string;
}

export interface WalkGraph {
  readonly size: number;
  readonly lat: Float64Array;
  readonly lon: Float64Array;
  /** CSR: the half-edges of node i are `offsets[i] .. offsets[i+1]-1`. */
  readonly offsets: Int32Array;
  readonly targets: Int32Array;
  readonly lengths: Float64Array;
  /** Street index of each half-edge, -1 when unnamed. */
  readonly streetOf: Int32Array;
  readonly streets: StreetName[];
  /** Number of undirected edges. */
  readonly edgeCount: number;
  readonly bbox: { south: number; west: number; north: number; east: number };
  /** The nearest node within `maxMeters` of `p`, or null. */
  snap(p: LatLon, maxMeters: number): { node: number; meters: number } | null;
}

export const GRAPH_FORMAT = 'tessera.walk-graph/1';
const EARTH_RADIUS_M = 6371008.8;
const RAD = Math.PI / 180;

/** Great-circle metres (haversine): the generator measures edges with it, so it never overestimates a walk. */
export function haversine(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const sLat = Math.sin(((lat2 - lat1) * RAD) / 2);
  const sLon = Math.sin(((lon2 - lon1) * RAD) / 2);
  const h = sLat * sLat + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * sLon * sLon;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

const invalid = (message: string) => new TesseraError('CITY_PACKAGE_INVALID', `graph.json: ${message}`);

/**
 * Builds the graph from the parsed `graph.json`: `{format, nodes: [[lat, lon]…], streets: [{en, uk?, ru?}…],
 * edges: [[a, b, metres, street|-1]…]}`.
 * @throws TesseraError CITY_PACKAGE_INVALID naming what is wrong.
 */
export function buildWalkGraph(json: unknown): WalkGraph {
  if (typeof json !== 'object' || json === null) throw invalid('is not a JSON object');
  const { format, nodes, streets, edges } = json as Record<string, unknown>;
  if (format !== GRAPH_FORMAT) throw invalid(`format must be "${GRAPH_FORMAT}"`);
  if (!Array.isArray(nodes) || nodes.length === 0) throw invalid('nodes must be a non-empty array');
  if (!Array.isArray(edges)) throw invalid('edges must be an array');
  if (!Array.isArray(streets)) throw invalid('streets must be an array');
  const n = nodes.length;
  const lat = new Float64Array(n);
  const lon = new Float64Array(n);
  let south = 90, north = -90, west = 180, east = -180;
  for (let i = 0; i < n; i++) {
    const p = nodes[i] as unknown;
    if (!Array.isArray(p) || typeof p[0] !== 'number' || typeof p[1] !== 'number' || !(Math.abs(p[0]) <= 90) || !(Math.abs(p[1]) <= 180)) throw invalid(`nodes[${i}] must be [lat, lon]`);
    lat[i] = p[0];
    lon[i] = p[1];
    south = Math.min(south, p[0]);
    north = Math.max(north, p[0]);
    west = Math.min(west, p[1]);
    east = Math.max(east, p[1]);
  }
  const names: StreetName[] = streets.map((s: unknown, i) => {
    const r = s as Record<string, unknown> | null;
    if (typeof r !== 'object' || r === null || typeof r['en'] !== 'string') throw invalid(`streets[${i}] must be {en, uk?, ru?}`);
    return { en: r['en'], ...(typeof r['uk'] === 'string' ? { uk: r['uk'] } : {}), ...(typeof r['ru'] === 'string' ? { ru: r['ru'] } : {}) };
  });
  const degree = new Int32Array(n + 1);
  for (let e = 0; e < edges.length; e++) {
    const row = edges[e] as unknown;
    if (!Array.isArray(row) || row.length !== 4) throw invalid(`edges[${e}] must be [a, b, metres, street]`);
    const a = row[0] as number, b = row[1] as number, m = row[2] as unknown, s = row[3] as number;
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0 || a >= n || b >= n) throw invalid(`edges[${e}] names a node that does not exist`);
    if (typeof m !== 'number' || !Number.isFinite(m) || m < 0) throw invalid(`edges[${e}] has no length in metres`);
    if (!Number.isInteger(s) || s < -1 || s >= names.length) throw invalid(`edges[${e}] names a street that does not exist`);
    degree[a]!++;
    degree[b]!++;
  }
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + degree[i]!;
  const fill = offsets.slice(0, n);
  const half = offsets[n]!;
  const targets = new Int32Array(half);
  const lengths = new Float64Array(half);
  const streetOf = new Int32Array(half);
  for (const row of edges as number[][]) {
    const a = row[0]!, b = row[1]!, m = row[2]!, s = row[3]!;
    let k = fill[a]!++;
    targets[k] = b;
    lengths[k] = m;
    streetOf[k] = s;
    k = fill[b]!++;
    targets[k] = a;
    lengths[k] = m;
    streetOf[k] = s;
  }
  const snapper = createSnapper(lat, lon, { south, west, north, east });
  return { size: n, lat, lon, offsets, targets, lengths, streetOf, streets: names, edgeCount: edges.length, bbox: { south, west, north, east }, snap: snapper };
}

/** A uniform grid of ~100 m cells over the bbox; a query looks at rings of cells until nothing nearer can exist. */
function createSnapper(lat: Float64Array, lon: Float64Array, bbox: WalkGraph['bbox']): WalkGraph['snap'] {
  const midLat = (bbox.south + bbox.north) / 2;
  const mLat = 111_195;
  const mLon = Math.max(1, 111_195 * Math.cos(midLat * RAD));
  let cell = 100; // metres
  let rows = 0, cols = 0;
  for (;;) {
    rows = Math.floor(((bbox.north - bbox.south) * mLat) / cell) + 1;
    cols = Math.floor(((bbox.east - bbox.west) * mLon) / cell) + 1;
    if (rows * cols <= 1 << 20) break;
    cell *= 2;
  }
  const dLat = cell / mLat;
  const dLon = cell / mLon;
  const cellOf = (la: number, lo: number) => [Math.floor((la - bbox.south) / dLat), Math.floor((lo - bbox.west) / dLon)] as const;
  const starts = new Int32Array(rows * cols + 1);
  const n = lat.length;
  const cellIndex = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = Math.floor((lat[i]! - bbox.south) / dLat) * cols + Math.floor((lon[i]! - bbox.west) / dLon);
    cellIndex[i] = k;
    starts[k + 1]!++;
  }
  for (let k = 0; k < rows * cols; k++) starts[k + 1]! += starts[k]!;
  const cursor = starts.slice(0, rows * cols);
  const members = new Int32Array(n);
  for (let i = 0; i < n; i++) members[cursor[cellIndex[i]!]!++] = i;
  return (p, maxMeters) => {
    const [r0, c0] = cellOf(p.lat, p.lon);
    let best = -1;
    let bestM = maxMeters;
    const maxRing = Math.ceil(maxMeters / cell) + 1;
    for (let ring = 0; ring <= maxRing; ring++) {
      // Every node in ring k is at least (k-1) cells away: stop once that passes the best so far.
      if (best >= 0 && (ring - 1) * cell > bestM) break;
      for (let r = r0 - ring; r <= r0 + ring; r++) {
        if (r < 0 || r >= rows) continue;
        const edge = r === r0 - ring || r === r0 + ring;
        for (let c = c0 - ring; c <= c0 + ring; c += edge ? 1 : 2 * ring) {
          if (c < 0 || c >= cols) {
            if (ring === 0) break;
            continue;
          }
          const k = r * cols + c;
          for (let m = starts[k]!; m < starts[k + 1]!; m++) {
            const i = members[m]!;
            const d = haversine(p.lat, p.lon, lat[i]!, lon[i]!);
            if (d < bestM || (best < 0 && d <= bestM)) {
              bestM = d;
              best = i;
            }
          }
          if (ring === 0) break;
        }
      }
    }
    return best < 0 ? null : { node: best, meters: bestM };
  };
}

/** A path on the graph: its nodes, the half-edges between them, and its length. */
export interface GraphPath {
  meters: number;
  nodes: number[];
  /** Half-edge indices (into targets/lengths/streetOf), one fewer than nodes. */
  edges: number[];
}

/** A binary min-heap of (key, node) with lazy deletion: stale entries are skipped when popped. */
class Heap {
  keys: Float64Array;
  items: Int32Array;
  size = 0;
  constructor(capacity: number) {
    this.keys = new Float64Array(capacity);
    this.items = new Int32Array(capacity);
  }
  push(key: number, item: number): void {
    if (this.size === this.keys.length) {
      const keys = new Float64Array(this.size * 2);
      keys.set(this.keys);
      const items = new Int32Array(this.size * 2);
      items.set(this.items);
      this.keys = keys;
      this.items = items;
    }
    let i = this.size++;
    const { keys, items } = this;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    keys[i] = key;
    items[i] = item;
  }
  /** Pops the minimum; read `lastKey` for its key. */
  lastKey = 0;
  pop(): number {
    const { keys, items } = this;
    const top = items[0]!;
    this.lastKey = keys[0]!;
    const size = --this.size;
    if (size > 0) {
      const key = keys[size]!;
      const item = items[size]!;
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= size) break;
        if (child + 1 < size && keys[child + 1]! < keys[child]!) child++;
        if (keys[child]! >= key) break;
        keys[i] = keys[child]!;
        items[i] = items[child]!;
        i = child;
      }
      keys[i] = key;
      items[i] = item;
    }
    return top;
  }
}

export interface Searcher {
  /** Shortest path from `a` to `b` (A*, haversine heuristic), or null when they are not connected. */
  route(a: number, b: number): GraphPath | null;
  /**
   * Dijkstra from `source`, settling every node within `maxMeters`. Then `distance(node)` (Infinity when not
   * reached) and `path(node)` read the result, until the next call on this searcher.
   */
  reach(source: number, maxMeters: number): void;
  distance(node: number): number;
  path(node: number): GraphPath | null;
}

export function createSearcher(g: WalkGraph): Searcher {
  const n = g.size;
  const dist = new Float64Array(n);
  const via = new Int32Array(n); // half-edge that reached the node (from its parent), -1 at the source
  const stamp = new Uint32Array(n);
  const closed = new Uint32Array(n);
  const heap = new Heap(Math.max(16, n));
  let epoch = 0;
  let reachSource = -1;
  const cosLat = new Float64Array(n);
  for (let i = 0; i < n; i++) cosLat[i] = Math.cos(g.lat[i]! * RAD);
  // The heuristic must never overestimate: scale it by the smallest ratio edge length ÷ straight line of the graph.
  let scale = 1;
  for (let a = 0; a < n; a++) {
    for (let k = g.offsets[a]!; k < g.offsets[a + 1]!; k++) {
      const straight = haversine(g.lat[a]!, g.lon[a]!, g.lat[g.targets[k]!]!, g.lon[g.targets[k]!]!);
      if (straight > 0) scale = Math.min(scale, g.lengths[k]! / straight);
    }
  }
  scale *= 0.999_999;
  const { offsets, targets, lengths, lat, lon } = g;

  const next = () => {
    epoch++;
    if (epoch === 0xffffffff) {
      stamp.fill(0);
      closed.fill(0);
      epoch = 1;
    }
    heap.size = 0;
  };
  const unwind = (source: number, target: number, meters: number): GraphPath => {
    const nodes = [target];
    const edges: number[] = [];
    let at = target;
    while (at !== source) {
      const e = via[at]!;
      edges.push(e);
      // The half-edge e leads into `at`; its owner is the node whose CSR range holds it.
      at = ownerOf(e);
      nodes.push(at);
    }
    nodes.reverse();
    edges.reverse();
    return { meters, nodes, edges };
  };
  // Owner of a half-edge: binary search in offsets.
  const ownerOf = (e: number): number => {
    let lo = 0, hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offsets[mid]! <= e) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };

  return {
    route(a, b) {
      next();
      reachSource = -1;
      if (a === b) return { meters: 0, nodes: [a], edges: [] };
      const tLat = lat[b]!, tLon = lon[b]!, tCos = cosLat[b]!;
      const h = (i: number) => {
        const sLat = Math.sin(((tLat - lat[i]!) * RAD) / 2);
        const sLon = Math.sin(((tLon - lon[i]!) * RAD) / 2);
        const x = sLat * sLat + cosLat[i]! * tCos * sLon * sLon;
        return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(x))) * scale;
      };
      dist[a] = 0;
      via[a] = -1;
      stamp[a] = epoch;
      heap.push(h(a), a);
      while (heap.size > 0) {
        const u = heap.pop();
        if (closed[u] === epoch) continue;
        closed[u] = epoch;
        if (u === b) return unwind(a, b, dist[b]!);
        const du = dist[u]!;
        for (let k = offsets[u]!; k < offsets[u + 1]!; k++) {
          const v = targets[k]!;
          if (closed[v] === epoch) continue;
          const dv = du + lengths[k]!;
          if (stamp[v] !== epoch || dv < dist[v]!) {
            stamp[v] = epoch;
            dist[v] = dv;
            via[v] = k;
            heap.push(dv + h(v), v);
          }
        }
      }
      return null;
    },
    reach(source, maxMeters) {
      next();
      reachSource = source;
      dist[source] = 0;
      via[source] = -1;
      stamp[source] = epoch;
      heap.push(0, source);
      while (heap.size > 0) {
        const u = heap.pop();
        if (closed[u] === epoch) continue;
        const du = dist[u]!;
        if (du > maxMeters) break;
        closed[u] = epoch;
        for (let k = offsets[u]!; k < offsets[u + 1]!; k++) {
          const v = targets[k]!;
          if (closed[v] === epoch) continue;
          const dv = du + lengths[k]!;
          if (dv <= maxMeters && (stamp[v] !== epoch || dv < dist[v]!)) {
            stamp[v] = epoch;
            dist[v] = dv;
            via[v] = k;
            heap.push(dv, v);
          }
        }
      }
    },
    distance(node) {
      return reachSource >= 0 && closed[node] === epoch ? dist[node]! : Infinity;
    },
    path(node) {
      if (reachSource < 0 || closed[node] !== epoch) return null;
      return unwind(reachSource, node, dist[node]!);
    },
  };
}
