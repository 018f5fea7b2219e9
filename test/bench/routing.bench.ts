/**
 * Route planning on the sample city package (issue 15 "Benchmark": p95 ≤ 20 ms): `routing.plan()` on the shipped
 * Lviv package (7 thousand nodes, 3 tram lines) between random points of the old town at random times of a Monday,
 * walking only (A*) and walking + transit (A* + access/egress Dijkstra + connection scan + directions text).
 * Baselines in the same run, on the same graph and the same pairs (already snapped to nodes), both stopping at the
 * target: a plain Dijkstra with a binary heap (lazy deletion), as most code would write it, and the textbook one — no
 * heap, the nearest unsettled node found by a linear scan.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LatLon } from '../../main/common/journeys.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { installFastDigests } from '../../main/runtime/digests.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createRouting, loadCityPackage } from '../../main/runtime/routing/index.js';
import type { Routing } from '../../main/runtime/routing/index.js';
import type { WalkGraph } from '../../main/runtime/routing/graph.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { openTrustStore } from '../../main/runtime/trust/index.js';
import type { AnyBenchmark, AsyncSide, FigureSide } from './harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAIRS = 400;

interface Setup {
  routing: Routing;
  graph: WalkGraph;
  pairs: Array<{ from: LatLon; to: LatLon; depart_at: number; a: number; b: number }>;
  store: Store;
}
let setup: Promise<Setup> | undefined;
const ready = () =>
  (setup ??= (async () => {
    await installFastDigests();
    const logger = createMemoryLogger();
    const trust = openTrustStore(join(ROOT, 'resources', 'trust'));
    const store = openStore({ path: ':memory:', logger });
    const bus = createBus({ journal: createJournal({ store }), logger });
    const routing = createRouting({ dirs: [join(ROOT, 'resources', 'city')], trust, bus, logger });
    if (routing.status().mode !== 'graph') throw new Error(`the shipped city package does not load: ${routing.status().degraded?.message}`);
    const { graph } = loadCityPackage(join(ROOT, 'resources', 'city', 'lviv'), trust);
    // Seeded random points inside the old town's box, at random minutes of a Monday between 07:00 and 21:00.
    let seed = 0x15;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const { south, west, north, east } = graph.bbox;
    const point = () => ({ lat: south + (north - south) * (0.05 + 0.9 * random()), lon: west + (east - west) * (0.05 + 0.9 * random()) });
    const monday7 = Date.parse('2026-12-07T07:00:00+02:00');
    const pairs = Array.from({ length: PAIRS }, () => {
      const from = point();
      const to = point();
      return { from, to, depart_at: monday7 + Math.floor(random() * 14 * 60) * 60_000, a: graph.snap(from, 1000)!.node, b: graph.snap(to, 1000)!.node };
    });
    return { routing, graph, pairs, store };
  })());

/** The textbook Dijkstra: O(n²), no heap, stops when the target is settled. */
function textbookDijkstra(g: WalkGraph, a: number, b: number, dist: Float64Array, done: Uint8Array): number {
  dist.fill(Infinity);
  done.fill(0);
  dist[a] = 0;
  for (;;) {
    let u = -1;
    let du = Infinity;
    for (let i = 0; i < g.size; i++) {
      if (done[i] === 0 && dist[i]! < du) {
        du = dist[i]!;
        u = i;
      }
    }
    if (u < 0 || u === b) return du;
    done[u] = 1;
    for (let k = g.offsets[u]!; k < g.offsets[u + 1]!; k++) {
      const v = g.targets[k]!;
      const dv = du + g.lengths[k]!;
      if (dv < dist[v]!) dist[v] = dv;
    }
  }
}

/** A plain Dijkstra with a binary heap of (distance, node) and lazy deletion; stops when the target is settled. */
function heapDijkstra(g: WalkGraph, a: number, b: number, dist: Float64Array): number {
  dist.fill(Infinity);
  dist[a] = 0;
  const keys: number[] = [0];
  const nodes: number[] = [a];
  const push = (k: number, v: number) => {
    let i = keys.length;
    keys.push(k);
    nodes.push(v);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (keys[up]! <= k) break;
      keys[i] = keys[up]!;
      nodes[i] = nodes[up]!;
      i = up;
    }
    keys[i] = k;
    nodes[i] = v;
  };
  const pop = (): [number, number] => {
    const top: [number, number] = [keys[0]!, nodes[0]!];
    const k = keys.pop()!;
    const v = nodes.pop()!;
    if (keys.length > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= keys.length) break;
        if (c + 1 < keys.length && keys[c + 1]! < keys[c]!) c++;
        if (keys[c]! >= k) break;
        keys[i] = keys[c]!;
        nodes[i] = nodes[c]!;
        i = c;
      }
      keys[i] = k;
      nodes[i] = v;
    }
    return top;
  };
  while (keys.length > 0) {
    const [du, u] = pop();
    if (du > dist[u]!) continue;
    if (u === b) return du;
    for (let k = g.offsets[u]!; k < g.offsets[u + 1]!; k++) {
      const v = g.targets[k]!;
      const dv = du + g.lengths[k]!;
      if (dv < dist[v]!) {
        dist[v] = dv;
        push(dv, v);
      }
    }
  }
  return Infinity;
}

const heapSide: AsyncSide = {
  name: 'plain Dijkstra (binary heap), same graph and pairs, pre-snapped',
  async setup() {
    const { graph, pairs } = await ready();
    const dist = new Float64Array(graph.size);
    let i = 0;
    return {
      run() {
        const p = pairs[i++ % pairs.length]!;
        if (!Number.isFinite(heapDijkstra(graph, p.a, p.b, dist))) throw new Error('no path');
      },
    };
  },
};

const planSide = (name: string, modes: Array<'walk' | 'transit'>): AsyncSide => ({
  name,
  async setup() {
    const { routing, pairs } = await ready();
    let i = 0;
    return {
      run() {
        const p = pairs[i++ % pairs.length]!;
        if (routing.plan({ from: p.from, to: p.to, depart_at: p.depart_at, modes, language: 'en' }) === null) throw new Error('no route between two old-town points');
      },
    };
  },
});

const dijkstraSide: AsyncSide = {
  name: 'textbook Dijkstra (linear scan, no heap), same graph and pairs, pre-snapped',
  async setup() {
    const { graph, pairs } = await ready();
    const dist = new Float64Array(graph.size);
    const done = new Uint8Array(graph.size);
    let i = 0;
    return {
      run() {
        const p = pairs[i++ % pairs.length]!;
        if (!Number.isFinite(textbookDijkstra(graph, p.a, p.b, dist, done))) throw new Error('no path');
      },
    };
  },
};

/** p95 in ms of one side over `n` pairs (a figure per round; the harness takes the median of the rounds). */
function p95Side(name: string, n: number, one: (s: Setup, i: number) => void): FigureSide {
  return {
    name,
    async measure() {
      const s = await ready();
      const times = new Float64Array(n);
      for (let i = 0; i < Math.min(20, n); i++) one(s, i); // warm-up
      for (let i = 0; i < n; i++) {
        const start = process.hrtime.bigint();
        one(s, i);
        times[i] = Number(process.hrtime.bigint() - start) / 1e6;
      }
      times.sort();
      return times[Math.ceil(0.95 * n) - 1]!;
    },
  };
}

const planOnce = (modes: Array<'walk' | 'transit'>) => (s: Setup, i: number) => {
  const p = s.pairs[i % s.pairs.length]!;
  s.routing.plan({ from: p.from, to: p.to, depart_at: p.depart_at, modes, language: 'en' });
};
let scratch: { dist: Float64Array; done: Uint8Array } | undefined;
let heapScratch: Float64Array | undefined;
const heapOnce = (s: Setup, i: number) => {
  heapScratch ??= new Float64Array(s.graph.size);
  const p = s.pairs[i % s.pairs.length]!;
  heapDijkstra(s.graph, p.a, p.b, heapScratch);
};
const dijkstraOnce = (s: Setup, i: number) => {
  scratch ??= { dist: new Float64Array(s.graph.size), done: new Uint8Array(s.graph.size) };
  const p = s.pairs[i % s.pairs.length]!;
  textbookDijkstra(s.graph, p.a, p.b, scratch.dist, scratch.done);
};

export const benchmarks: AnyBenchmark[] = [
  {
    kind: 'latency',
    name: 'routing: plan() walking (A* + snapping + directions), random old-town pairs',
    samples: 100,
    warmup: 20,
    candidate: planSide('routing.plan({modes: [walk]})', ['walk']),
    baselines: [heapSide, dijkstraSide],
  },
  {
    kind: 'latency',
    name: 'routing: plan() walking + transit (A*, access/egress Dijkstra, connection scan, directions)',
    samples: 100,
    warmup: 20,
    candidate: planSide('routing.plan() (walk and transit, the faster)', ['walk', 'transit']),
    baselines: [heapSide, dijkstraSide],
  },
  {
    kind: 'figure',
    name: 'routing: p95 of plan() walking + transit over 200 random pairs (issue 15 target ≤ 20 ms)',
    unit: 'ms',
    candidate: p95Side('routing.plan() walk + transit, p95', 200, planOnce(['walk', 'transit'])),
    baselines: [p95Side('routing.plan() walking only, p95', 200, planOnce(['walk'])), p95Side('plain Dijkstra (binary heap), p95', 200, heapOnce), p95Side('textbook Dijkstra, p95 (60 pairs)', 60, dijkstraOnce)],
    target: { max: 20 },
  },
];

export async function dispose(): Promise<void> {
  if (setup) (await setup).store.close();
}
