// Generates the sample city data package source for Lviv (issue 15 point 3, seed 000 "LEM"):
// resources/city/src/lviv/{city.json, graph.json, gtfs/*.txt}. Deterministic (a seeded PRNG, no clock, no network):
// running it again writes the same bytes. `npm run build` then signs the folder into resources/city/lviv/ with
// `tessera city sign` (scripts/build-plugins.mjs). Both folders are committed.
//
// What it makes — generated, but plausible and around real coordinates:
// - a walking graph of the old town and Lychakiv (~5–6 thousand nodes): named main streets drawn through their real
//   course (Rynok Square, Svobody Avenue, Drukarska, Pidvalna, Lychakivska…), and a jittered grid of side streets
//   (some blocks merged) named from a list of real Lviv street names; every edge carries its length and street;
// - three tram lines (2, 7, 1) with their stops, shapes and a day's timetable (every 10 minutes, 06:00–23:00, both
//   directions, every day) in real GTFS files, with Ukrainian and Russian stop names in translations.txt.
// Usage: node scripts/make-city.mjs [OUT_DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = process.argv[2] ?? join(root, 'resources', 'city', 'src', 'lviv');

// ---- geometry ----
const R = 6371008.8;
const rad = (d) => (d * Math.PI) / 180;
/** Haversine metres: the routing module uses the same formula for its A* heuristic, so edges are never shorter. */
function meters(a, b) {
  const dLat = rad(b[0] - a[0]);
  const dLon = rad(b[1] - a[1]);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a[0])) * Math.cos(rad(b[0])) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}
const round6 = (x) => Math.round(x * 1e6) / 1e6;
const LAT0 = 49.84;
const M_LAT = 111195; // metres per degree of latitude
const M_LON = 111195 * Math.cos(rad(LAT0));

// ---- seeded PRNG (mulberry32) ----
let seed = 0x15c17;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

// ---- the graph under construction ----
const nodes = []; // [lat, lon]
const edges = new Map(); // "a-b" (a<b) -> [a, b, street]
const streets = []; // {en, uk, ru}
const streetIndex = new Map();
function street(names) {
  const key = names[0];
  if (!streetIndex.has(key)) {
    streetIndex.set(key, streets.length);
    streets.push({ en: names[0], uk: names[1], ru: names[2] });
  }
  return streetIndex.get(key);
}
function addNode(p) {
  nodes.push([round6(p[0]), round6(p[1])]);
  return nodes.length - 1;
}
function addEdge(a, b, s) {
  if (a === b) return;
  const key = a < b ? `${a}-${b}` : `${b}-${a}`;
  if (!edges.has(key)) edges.set(key, [Math.min(a, b), Math.max(a, b), s]);
}
/** A straight piece a→b as nodes every ≤ 30 m (the first and last given), edges named `s`. */
function segment(a, b, s) {
  const pa = nodes[a];
  const pb = nodes[b];
  const n = Math.max(1, Math.ceil(meters(pa, pb) / 30));
  let prev = a;
  for (let i = 1; i < n; i++) {
    const t = i / n;
    const id = addNode([pa[0] + (pb[0] - pa[0]) * t, pa[1] + (pb[1] - pa[1]) * t]);
    addEdge(prev, id, s);
    prev = id;
  }
  addEdge(prev, b, s);
}

// ---- names ----
const N = {
  rynok: ['Rynok Square', 'площа Ринок', 'площадь Рынок'],
  svobody: ['Svobody Avenue', 'проспект Свободи', 'проспект Свободы'],
  drukarska: ['Drukarska Street', 'вулиця Друкарська', 'улица Друкарская'],
  pidvalna: ['Pidvalna Street', 'вулиця Підвальна', 'улица Подвальная'],
  lychakivska: ['Lychakivska Street', 'вулиця Личаківська', 'улица Лычаковская'],
  mechnykova: ['Mechnykova Street', 'вулиця Мечникова', 'улица Мечникова'],
  stefanyka: ['Stefanyka Street', 'вулиця Стефаника', 'улица Стефаника'],
  doroshenka: ['Doroshenka Street', 'вулиця Дорошенка', 'улица Дорошенко'],
  krakivska: ['Krakivska Street', 'вулиця Краківська', 'улица Краковская'],
  halytska: ['Halytska Street', 'вулиця Галицька', 'улица Галицкая'],
  vysokyi: ['High Castle Park path', 'стежка парку Високий Замок', 'тропа парка Высокий Замок'],
  kryvonosa: ['Kryvonosa Street', 'вулиця Кривоноса', 'улица Кривоноса'],
  virmenska: ['Virmenska Street', 'вулиця Вірменська', 'улица Армянская'],
  teatralna: ['Teatralna Street', 'вулиця Театральна', 'улица Театральная'],
  horodotska: ['Horodotska Street', 'вулиця Городоцька', 'улица Городоцкая'],
  shevchenka: ['Shevchenka Avenue', 'проспект Шевченка', 'проспект Шевченко'],
  valova: ['Valova Street', 'вулиця Валова', 'улица Валовая'],
  lesi: ['Lesi Ukrainky Street', 'вулиця Лесі Українки', 'улица Леси Украинки'],
  pekarska: ['Pekarska Street', 'вулиця Пекарська', 'улица Пекарская'],
  franka: ['Ivana Franka Street', 'вулиця Івана Франка', 'улица Ивана Франко'],
  zelena: ['Zelena Street', 'вулиця Зелена', 'улица Зелёная'],
};
/** Side streets: real Lviv street names, given to runs of the generated grid. */
const SIDE = [
  ['Ruska Street', 'вулиця Руська', 'улица Русская'],
  ['Shevska Street', 'вулиця Шевська', 'улица Шевская'],
  ['Serbska Street', 'вулиця Сербська', 'улица Сербская'],
  ['Staroievreiska Street', 'вулиця Староєврейська', 'улица Староеврейская'],
  ['Brativ Rohatyntsiv Street', 'вулиця Братів Рогатинців', 'улица Братьев Рогатинцев'],
  ['Kopernyka Street', 'вулиця Коперника', 'улица Коперника'],
  ['Hnatiuka Street', 'вулиця Гнатюка', 'улица Гнатюка'],
  ['Chaikovskoho Street', 'вулиця Чайковського', 'улица Чайковского'],
  ['Sichovykh Striltsiv Street', 'вулиця Січових Стрільців', 'улица Сечевых Стрельцов'],
  ['Hrushevskoho Street', 'вулиця Грушевського', 'улица Грушевского'],
  ['Kostiushka Street', 'вулиця Костюшка', 'улица Костюшко'],
  ['Vynnychenka Street', 'вулиця Винниченка', 'улица Винниченко'],
  ['Hlyboka Street', 'вулиця Глибока', 'улица Глубокая'],
  ['Krupiarska Street', 'вулиця Крупярська', 'улица Крупярская'],
  ['Lysenka Street', 'вулиця Лисенка', 'улица Лысенко'],
  ['Tershakovtsiv Street', 'вулиця Тершаковців', 'улица Тершаковцев'],
  ['Zamarstynivska Street', 'вулиця Замарстинівська', 'улица Замарстыновская'],
  ['Khmelnytskoho Street', 'вулиця Хмельницького', 'улица Хмельницкого'],
  ['Bandery Street', 'вулиця Бандери', 'улица Бандеры'],
  ['Sakharova Street', 'вулиця Сахарова', 'улица Сахарова'],
  ['Rustaveli Street', 'вулиця Руставелі', 'улица Руставели'],
  ['Nechuia-Levytskoho Street', 'вулиця Нечуя-Левицького', 'улица Нечуя-Левицкого'],
  ['Kotliarevskoho Street', 'вулиця Котляревського', 'улица Котляревского'],
  ['Lystopadovoho Chynu Street', 'вулиця Листопадового Чину', 'улица Листопадового Чина'],
  ['Mytna Square', 'площа Митна', 'площадь Мытная'],
  ['Kurbasa Street', 'вулиця Курбаса', 'улица Курбаса'],
  ['Rappaporta Street', 'вулиця Раппапорта', 'улица Раппапорта'],
  ['Tarnavskoho Street', 'вулиця Тарнавського', 'улица Тарнавского'],
  ['Levytskoho Street', 'вулиця Левицького', 'улица Левицкого'],
  ['Kleparivska Street', 'вулиця Клепарівська', 'улица Клепаровская'],
  ['Ohiienka Street', 'вулиця Огієнка', 'улица Огиенко'],
  ['Akademika Hnatiuka Lane', 'провулок Академіка Гнатюка', 'переулок Академика Гнатюка'],
];

// ---- 1. the side-street grid ----
const BBOX = { south: 49.826, west: 24.012, north: 49.853, east: 24.066 };
const SPACING = 105; // metres between grid streets
const rows = Math.floor(((BBOX.north - BBOX.south) * M_LAT) / SPACING) + 1;
const cols = Math.floor(((BBOX.east - BBOX.west) * M_LON) / SPACING) + 1;
const grid = [];
for (let r = 0; r < rows; r++) {
  grid.push([]);
  for (let c = 0; c < cols; c++) {
    const jLat = (random() - 0.5) * 24;
    const jLon = (random() - 0.5) * 24;
    grid[r].push(addNode([BBOX.south + (r * SPACING + jLat) / M_LAT, BBOX.west + (c * SPACING + jLon) / M_LON]));
  }
}
// Street names for runs of 4–7 blocks along a row or a column.
let sideName = 0;
const nextSide = () => street(SIDE[sideName++ % SIDE.length]);
const gridEdges = [];
for (let r = 0; r < rows; r++) {
  let s = nextSide();
  let left = 4 + Math.floor(random() * 4);
  for (let c = 0; c + 1 < cols; c++) {
    if (left-- === 0) {
      s = nextSide();
      left = 4 + Math.floor(random() * 4);
    }
    gridEdges.push([grid[r][c], grid[r][c + 1], s]);
  }
}
for (let c = 0; c < cols; c++) {
  let s = nextSide();
  let left = 4 + Math.floor(random() * 4);
  for (let r = 0; r + 1 < rows; r++) {
    if (left-- === 0) {
      s = nextSide();
      left = 4 + Math.floor(random() * 4);
    }
    gridEdges.push([grid[r][c], grid[r + 1][c], s]);
  }
}
// Merge some blocks (drop ~12% of the grid edges), never cutting a grid corner off.
const gridDegree = new Map();
for (const [a, b] of gridEdges) {
  gridDegree.set(a, (gridDegree.get(a) ?? 0) + 1);
  gridDegree.set(b, (gridDegree.get(b) ?? 0) + 1);
}
for (const [a, b, s] of gridEdges) {
  if (random() < 0.12 && gridDegree.get(a) > 2 && gridDegree.get(b) > 2) {
    gridDegree.set(a, gridDegree.get(a) - 1);
    gridDegree.set(b, gridDegree.get(b) - 1);
    continue;
  }
  segment(a, b, s);
}
const gridNodeCount = nodes.length;

// ---- 2. the named main streets, through their real course ----
/** Draws a polyline as a street and links each of its nodes to the nearest grid-area node within 45 m. */
function draw(names, points, { closed = false } = {}) {
  const s = street(names);
  const ids = points.map((p) => addNode(p));
  for (let i = 0; i + 1 < ids.length; i++) segment(ids[i], ids[i + 1], s);
  if (closed) segment(ids[ids.length - 1], ids[0], s);
}
draw(N.rynok, [[49.8425, 24.0307], [49.8425, 24.0326], [49.8413, 24.0326], [49.8413, 24.0307]], { closed: true });
draw(N.svobody, [[49.8441, 24.0262], [49.8425, 24.0268], [49.8408, 24.0276], [49.8395, 24.0283]]);
draw(N.drukarska, [[49.8425, 24.0322], [49.8428, 24.0325], [49.8436, 24.0329]]);
draw(N.virmenska, [[49.8425, 24.0316], [49.8433, 24.0314], [49.8446, 24.0321]]);
draw(N.krakivska, [[49.8425, 24.0311], [49.8438, 24.0305], [49.8453, 24.0300]]);
draw(N.teatralna, [[49.8436, 24.0291], [49.8420, 24.0296], [49.8405, 24.0301]]);
draw(N.halytska, [[49.8413, 24.0310], [49.8404, 24.0303], [49.8395, 24.0293]]);
draw(N.pidvalna, [[49.8456, 24.0334], [49.8440, 24.0342], [49.8428, 24.0346], [49.8413, 24.0350], [49.8399, 24.0346]]);
draw(N.valova, [[49.8413, 24.0326], [49.8407, 24.0338], [49.8404, 24.0350]]);
draw(N.lychakivska, [[49.8411, 24.0352], [49.8405, 24.0375], [49.8395, 24.0405], [49.8385, 24.0430], [49.8373, 24.0458], [49.8362, 24.0485], [49.8351, 24.0512], [49.8341, 24.0536], [49.8337, 24.0570], [49.8342, 24.0605]]);
draw(N.mechnykova, [[49.8362, 24.0485], [49.8347, 24.0520], [49.8333, 24.0550], [49.8327, 24.0558]]);
draw(N.pekarska, [[49.8404, 24.0350], [49.8388, 24.0385], [49.8370, 24.0420], [49.8352, 24.0455]]);
draw(N.stefanyka, [[49.8395, 24.0283], [49.8388, 24.0272], [49.8380, 24.0259], [49.8372, 24.0245]]);
draw(N.doroshenka, [[49.8412, 24.0226], [49.8404, 24.0245], [49.8396, 24.0266], [49.8395, 24.0283]]);
draw(N.shevchenka, [[49.8395, 24.0283], [49.8384, 24.0290], [49.8370, 24.0298]]);
draw(N.horodotska, [[49.8424, 24.0150], [49.8427, 24.0190], [49.8432, 24.0225], [49.8441, 24.0262]]);
draw(N.lesi, [[49.8441, 24.0262], [49.8446, 24.0285], [49.8450, 24.0310], [49.8456, 24.0334]]);
draw(N.kryvonosa, [[49.8456, 24.0334], [49.8463, 24.0352], [49.8470, 24.0368]]);
draw(N.vysokyi, [[49.8470, 24.0368], [49.8476, 24.0382], [49.8483, 24.0394]]);
draw(N.franka, [[49.8395, 24.0345], [49.8378, 24.0340], [49.8360, 24.0335], [49.8342, 24.0333]]);
draw(N.zelena, [[49.8360, 24.0335], [49.8345, 24.0360], [49.8330, 24.0390], [49.8312, 24.0410]]);

// Where a named street meets the grid: each of its nodes joins the nearest grid-area node within 45 m (a crossing),
// unnamed (a short link). A coarse bucket index keeps this linear.
const BUCKET = 0.0006;
const buckets = new Map();
const bucketKey = (p) => `${Math.floor(p[0] / BUCKET)},${Math.floor(p[1] / BUCKET)}`;
for (let i = 0; i < gridNodeCount; i++) {
  const k = bucketKey(nodes[i]);
  if (!buckets.has(k)) buckets.set(k, []);
  buckets.get(k).push(i);
}
const LINK = -1; // unnamed
for (let i = gridNodeCount; i < nodes.length; i++) {
  const p = nodes[i];
  const bi = Math.floor(p[0] / BUCKET);
  const bj = Math.floor(p[1] / BUCKET);
  let best = -1;
  let bestD = 45;
  for (let di = -1; di <= 1; di++) {
    for (let dj = -1; dj <= 1; dj++) {
      for (const j of buckets.get(`${bi + di},${bj + dj}`) ?? []) {
        const d = meters(p, nodes[j]);
        if (d < bestD) {
          bestD = d;
          best = j;
        }
      }
    }
  }
  if (best >= 0) addEdge(i, best, LINK);
}
// Named streets also join each other where their ends meet (within 12 m).
for (let i = gridNodeCount; i < nodes.length; i++) {
  for (let j = i + 1; j < nodes.length; j++) {
    if (Math.abs(nodes[i][0] - nodes[j][0]) < 0.00012 && Math.abs(nodes[i][1] - nodes[j][1]) < 0.00018 && meters(nodes[i], nodes[j]) < 12) addEdge(i, j, LINK);
  }
}

// ---- 3. write graph.json ----
// Each edge: [node, node, metres (rounded up, so never below the straight line), street index or -1 (unnamed)].
const edgeRows = [...edges.values()].sort((x, y) => x[0] - y[0] || x[1] - y[1]).map(([a, b, s]) => [a, b, Math.ceil(meters(nodes[a], nodes[b]) * 10) / 10, s]);
const graph = { format: 'tessera.walk-graph/1', nodes, streets, edges: edgeRows };
mkdirSync(join(out, 'gtfs'), { recursive: true });
writeFileSync(join(out, 'graph.json'), JSON.stringify(graph) + '\n');

// ---- 4. trams: stops, shapes, a day's timetable ----
const STOPS = {
  horodotska: ['Horodotska', 'Городоцька', 'Городоцкая', [49.8426, 24.0175]],
  opera: ['Opera House', 'Оперний театр', 'Оперный театр', [49.8444, 24.0258]],
  lesi: ['Lesi Ukrainky', 'Лесі Українки', 'Леси Украинки', [49.8450, 24.0306]],
  pidvalna: ['Pidvalna', 'Підвальна', 'Подвальная', [49.8430, 24.0347]],
  mytna: ['Mytna Square', 'Митна площа', 'Мытная площадь', [49.8408, 24.0372]],
  lychakivska: ['Lychakivska', 'Личаківська', 'Лычаковская', [49.8389, 24.0420]],
  krupiarska: ['Krupiarska', 'Крупярська', 'Крупярская', [49.8366, 24.0478]],
  mechnykova: ['Mechnykova', 'Мечникова', 'Мечникова', [49.8346, 24.0527]],
  cemetery: ['Lychakiv Cemetery', 'Личаківський цвинтар', 'Лычаковское кладбище', [49.8332, 24.0556]],
  pohulyanka: ['Pohulyanka', 'Погулянка', 'Погулянка', [49.8342, 24.0603]],
  stefanyka: ['Stefanyka', 'Стефаника', 'Стефаника', [49.8378, 24.0250]],
  shevchenka: ['Shevchenka Avenue', 'Проспект Шевченка', 'Проспект Шевченко', [49.8386, 24.0289]],
  mickiewicz: ['Mickiewicz Square', 'Площа Міцкевича', 'Площадь Мицкевича', [49.8398, 24.0297]],
  valova: ['Valova', 'Валова', 'Валовая', [49.8406, 24.0340]],
  franka: ['Ivana Franka', 'Івана Франка', 'Ивана Франко', [49.8362, 24.0336]],
  zelena: ['Zelena', 'Зелена', 'Зелёная', [49.8322, 24.0398]],
  doroshenka: ['Doroshenka', 'Дорошенка', 'Дорошенко', [49.8406, 24.0240]],
  krakivska: ['Krakivska', 'Краківська', 'Краковская', [49.8450, 24.0300]],
};
/** Lines: the stops in order and the way between them (extra shape points). */
const LINES = [
  {
    id: 'T2', short: '2', long: 'Horodotska – Lychakiv Cemetery', offset: 0,
    path: [['horodotska'], [49.8432, 24.0225], ['opera'], [49.8447, 24.0285], ['lesi'], [49.8456, 24.0334], [49.8440, 24.0342], ['pidvalna'], [49.8413, 24.0350], [49.8411, 24.0352], ['mytna'], [49.8395, 24.0405], ['lychakivska'], [49.8373, 24.0458], ['krupiarska'], [49.8351, 24.0512], ['mechnykova'], [49.8340, 24.0540], ['cemetery']],
  },
  {
    id: 'T7', short: '7', long: 'Stefanyka – Pohulyanka', offset: 300,
    path: [['stefanyka'], [49.8388, 24.0272], ['shevchenka'], ['mickiewicz'], [49.8404, 24.0320], ['valova'], [49.8404, 24.0350], [49.8411, 24.0356], ['mytna'], [49.8395, 24.0405], ['lychakivska'], [49.8373, 24.0458], ['krupiarska'], [49.8351, 24.0512], [49.8341, 24.0536], [49.8337, 24.0570], ['pohulyanka']],
  },
  {
    id: 'T1', short: '1', long: 'Doroshenka – Zelena', offset: 150,
    path: [['doroshenka'], [49.8396, 24.0266], ['mickiewicz'], [49.8395, 24.0320], [49.8395, 24.0345], [49.8378, 24.0340], ['franka'], [49.8345, 24.0360], ['zelena']],
  },
];
const csv = (rows) => rows.map((r) => r.map((v) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v))).join(',')).join('\n') + '\n';
const hms = (s) => `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;

const usedStops = new Set(LINES.flatMap((l) => l.path.filter((p) => typeof p[0] === 'string').map((p) => p[0])));
const stopsRows = [['stop_id', 'stop_name', 'stop_lat', 'stop_lon']];
const translations = [['table_name', 'field_name', 'language', 'translation', 'record_id']];
for (const [id, [en, uk, ru, [lat, lon]]] of Object.entries(STOPS)) {
  if (!usedStops.has(id)) continue;
  stopsRows.push([id, en, lat.toFixed(6), lon.toFixed(6)]);
  translations.push(['stops', 'stop_name', 'uk', uk, id], ['stops', 'stop_name', 'ru', ru, id]);
}
const routesRows = [['route_id', 'agency_id', 'route_short_name', 'route_long_name', 'route_type']];
const tripsRows = [['route_id', 'service_id', 'trip_id', 'trip_headsign', 'direction_id', 'shape_id']];
const stopTimesRows = [['trip_id', 'arrival_time', 'departure_time', 'stop_id', 'stop_sequence', 'shape_dist_traveled']];
const shapesRows = [['shape_id', 'shape_pt_lat', 'shape_pt_lon', 'shape_pt_sequence', 'shape_dist_traveled']];
const SPEED = 17 / 3.6; // m/s between stops
const DWELL = 20; // s at each stop
for (const line of LINES) {
  routesRows.push([line.id, 'LET', line.short, line.long, '0']);
  for (const direction of [0, 1]) {
    const path = direction === 0 ? line.path : [...line.path].reverse();
    const shapeId = `${line.id}-${direction}`;
    let dist = 0;
    let prev = null;
    const stopsAt = [];
    path.forEach((p, i) => {
      const point = typeof p[0] === 'string' ? STOPS[p[0]][3] : p;
      if (prev) dist += meters(prev, point);
      prev = point;
      shapesRows.push([shapeId, point[0].toFixed(6), point[1].toFixed(6), String(i + 1), dist.toFixed(1)]);
      if (typeof p[0] === 'string') stopsAt.push({ stop: p[0], dist });
    });
    const headsign = STOPS[stopsAt[stopsAt.length - 1].stop][0];
    for (let start = 6 * 3600 + line.offset, n = 0; start <= 23 * 3600; start += 600, n++) {
      const tripId = `${shapeId}-${String(n).padStart(3, '0')}`;
      tripsRows.push([line.id, 'DAILY', tripId, headsign, String(direction), shapeId]);
      let t = start;
      stopsAt.forEach((s, i) => {
        if (i > 0) t += Math.round((s.dist - stopsAt[i - 1].dist) / SPEED) + DWELL;
        stopTimesRows.push([tripId, hms(t), hms(t), s.stop, String(i + 1), s.dist.toFixed(1)]);
      });
    }
  }
}
const gtfs = {
  'agency.txt': [['agency_id', 'agency_name', 'agency_url', 'agency_timezone', 'agency_lang'], ['LET', 'Lvivelektrotrans (sample timetable)', 'https://example.org/lviv-trams', 'Europe/Kyiv', 'uk']],
  'stops.txt': stopsRows,
  'routes.txt': routesRows,
  'trips.txt': tripsRows,
  'stop_times.txt': stopTimesRows,
  'calendar.txt': [['service_id', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday', 'start_date', 'end_date'], ['DAILY', '1', '1', '1', '1', '1', '1', '1', '20261201', '20271231']],
  'shapes.txt': shapesRows,
  'translations.txt': translations,
};
for (const [name, rows] of Object.entries(gtfs)) writeFileSync(join(out, 'gtfs', name), csv(rows));

// ---- 5. the package metadata `tessera city sign` puts in the signed manifest ----
const city = { id: 'lviv', version: '1.0.0', city: 'lviv', created_at: '2026-12-01T00:00:00Z', valid_until: '2027-12-31T23:59:59Z' };
writeFileSync(join(out, 'city.json'), JSON.stringify(city, null, 2) + '\n');
process.stdout.write(`make-city: ${nodes.length} nodes, ${edgeRows.length} edges, ${streets.length} streets, ${usedStops.size} stops, ${tripsRows.length - 1} trips into ${out}\n`);
