/**
 * The Journey Guide's screen logic (renderer/src/areas/guide-model.ts, issue 15 point 4) and its client
 * (main/common/journeys-api.ts): the words in three languages, which journey and which sessions it shows, which QR
 * code goes with the node ahead, and the offline map's projection.
 */
import { describe, expect, it } from 'vitest';
import type { JourneyNodeView, JourneyView, RoutePlan, RoutingStatus } from '../../main/common/journeys.js';
import { createJourneyClient } from '../../main/common/journeys-api.js';
import type { CatalogueProduct, ProductSessionView } from '../../main/common/products-api.js';
import { TesseraError } from '../../main/common/errors.js';
import {
  boundsOf,
  fitAspect,
  degradedWords,
  formatDay,
  guideLanguage,
  guideProblemWords,
  hoursWords,
  isConflict,
  mapBounds,
  namesJourney,
  nodeStatus,
  packageAgeWords,
  passForNode,
  pathOf,
  pickJourney,
  projection,
  routeLines,
  routeWords,
  startableSessions,
  staticRouteOf,
  textsFor,
} from '../../renderer/src/areas/guide-model.js';

const RYNOK = { lat: 49.8419, lon: 24.0316 };
const OPERA = { lat: 49.8442, lon: 24.0262 };

const node = (id: string, over: Partial<JourneyNodeView> = {}): JourneyNodeView => ({
  id,
  kind: 'visit',
  title: id,
  place: { id: `p.${id}`, name: `Place ${id}`, location: RYNOK, indoor: true, kind: 'museum' },
  state: 'pending',
  at: null,
  by: null,
  needs: null,
  covered_by: null,
  opens_at: null,
  closes_at: null,
  duration_min: 30,
  closed_today: false,
  ...over,
});

const routing = (over: Partial<RoutingStatus> = {}): RoutingStatus => ({
  mode: 'graph',
  degraded: null,
  package: { id: 'lviv', version: '1.0.0', created_at: '2026-11-12T09:00:00Z', valid_until: '2027-05-12T00:00:00Z', age_days: 25 },
  ...over,
});

const journey = (id: string, over: Partial<JourneyView> = {}): JourneyView => ({
  journey_instance_id: id,
  product_runtime_session_id: 'prs_1',
  doc: { ref: 'lviv.old-town-day@1.0.0', cid: 'b3:1', title: 'Old town' },
  phase: 'in_trip',
  state: 'started',
  language: 'en',
  nodes: [node('a'), node('b')],
  current: 'a',
  version: 1,
  routing: routing(),
  created_at: '2026-12-07T08:00:00.000Z',
  updated_at: '2026-12-07T08:00:00.000Z',
  ended_at: null,
  ...over,
});

const session = (id: string, over: Partial<ProductSessionView> = {}): ProductSessionView => ({
  product_runtime_session_id: id,
  state: 'active',
  product: { ref: 'city.museum-pass-48h@1.1.0', id: 'city.museum-pass-48h', version: '1.1.0', cid: 'b3:pass', title: 'Museum Pass' },
  user_id: 'ses_1',
  wallet_id: 'main',
  market: 'UA',
  city: 'lviv',
  price: { amount: 45000, currency: 'UAH' },
  preflight: null,
  payment: null,
  entitlements: [],
  capsule: 'b3:c',
  reason: null,
  created_at: '2026-12-07T07:00:00Z',
  updated_at: '2026-12-07T07:00:00Z',
  ended_at: null,
  ...over,
});

describe('guide words', () => {
  it('speaks the wallet’s language when it is Russian or Ukrainian, English otherwise', () => {
    expect(guideLanguage('ru-RU')).toBe('ru');
    expect(guideLanguage('uk')).toBe('uk');
    expect(guideLanguage('UK-ua')).toBe('uk');
    expect(guideLanguage('en-GB')).toBe('en');
    expect(guideLanguage('de')).toBe('en');
    expect(guideLanguage(undefined)).toBe('en');
  });

  it('says the city package’s date and age, with plural forms in each language', () => {
    expect(packageAgeWords(routing(), 'en')).toBe('City data from 12 Nov 2026, 25 days old');
    expect(packageAgeWords(routing({ package: { ...routing().package!, age_days: 1.7 } }), 'en')).toBe('City data from 12 Nov 2026, 1 day old');
    expect(packageAgeWords(routing({ package: { ...routing().package!, age_days: 0.2 } }), 'en')).toBe('City data from 12 Nov 2026, less than a day old');
    expect(packageAgeWords(routing(), 'ru')).toBe(`Данные города от ${formatDay('2026-11-12T09:00:00Z', 'ru')}, 25 дней`);
    expect(packageAgeWords(routing({ package: { ...routing().package!, age_days: 22 } }), 'ru')).toMatch(/, 22 дня$/);
    expect(packageAgeWords(routing({ package: { ...routing().package!, age_days: 21 } }), 'uk')).toMatch(/, 21 день$/);
    expect(packageAgeWords(routing(), 'uk')).toMatch(/^Дані міста від .*, 25 днів$/);
    expect(packageAgeWords(routing({ mode: 'static', package: null, degraded: { reason: 'missing', message: 'no package' } }), 'en')).toBe('No city data on this kiosk');
    expect(packageAgeWords(null, 'en')).toBeNull();
  });

  it('shows the degraded banner when routing is static or the next step fell back, with the reason in words', () => {
    expect(degradedWords(routing(), false, 'en')).toBeNull();
    expect(degradedWords(routing({ mode: 'static', degraded: { reason: 'stale', message: 'x' } }), false, 'en')).toBe("The city map is not available (the city data is out of date): directions come from the journey's own notes.");
    expect(degradedWords(routing({ mode: 'static', degraded: { reason: 'invalid', message: 'x' } }), false, 'ru')).toBe('Карта города недоступна (данные города не прошли проверку): маршруты берутся из заметок самого путешествия.');
    expect(degradedWords(routing(), true, 'uk')).toBe('Мапа міста недоступна (на мапі не знайдено шляху): маршрути беруться з нотаток самої подорожі.');
  });

  it('says today’s opening hours, and nothing for a place that is always open', () => {
    expect(hoursWords({ opens_at: '10:00', closes_at: '18:00' }, 'en')).toBe('Open today 10:00–18:00');
    expect(hoursWords({ opens_at: null, closes_at: null, closed_today: true }, 'en')).toBe('Closed today');
    expect(hoursWords({ opens_at: null, closes_at: null, closed_today: true }, 'uk')).toBe('Сьогодні зачинено');
    expect(hoursWords({ opens_at: '10:00', closes_at: null }, 'en')).toBe('Opens today at 10:00');
    expect(hoursWords({ opens_at: '10:00', closes_at: '18:00' }, 'ru')).toBe('Сегодня открыто 10:00–18:00');
    expect(hoursWords({ opens_at: null, closes_at: null }, 'uk')).toBeNull();
  });

  it('sums a route up in minutes and metres, and names each tram leg', () => {
    const route: RoutePlan = {
      source: 'graph',
      from: RYNOK,
      to: OPERA,
      depart_at: '2026-12-07T09:00:00Z',
      arrive_at: '2026-12-07T09:12:00Z',
      minutes: 12,
      meters: 1450,
      text: 'x',
      legs: [
        { mode: 'walk', from: { name: 'Rynok', location: RYNOK }, to: { name: 'Stop A', location: RYNOK }, depart_at: '', arrive_at: '', meters: 234, path: [] },
        { mode: 'transit', from: { name: 'Stop A', location: RYNOK }, to: { name: 'Opera', location: OPERA }, depart_at: '', arrive_at: '', meters: 1216, line: 'Tram 7', headsign: 'Opera', stops: 3, path: [RYNOK, OPERA] },
      ],
    };
    expect(routeWords(route, 'en')).toEqual({ summary: '12 minutes · 1.5 km', legs: ['Walk 230 m → Stop A', 'Tram 7 → Opera, 3 stops'] });
    expect(routeWords(route, 'ru')!.summary).toBe('12 минут · 1,5 км');
    expect(routeWords({ ...route, minutes: 1, meters: 80, legs: [] }, 'uk')!.summary).toBe('1 хвилина · 80 м');
    expect(routeWords(null, 'en')).toBeNull();
  });

  it('says refusals in words in each language, and keeps the message of anything else', () => {
    expect(guideProblemWords(new TesseraError('NOT_READY', 'x'), 'en')).toBe('The kiosk cannot reach its service at the moment. Please try again in a moment.');
    expect(guideProblemWords({ code: 'SESSION_NOT_ACTIVE', message: 'x' }, 'ru')).toMatch(/^Ваша карта не активна/);
    expect(guideProblemWords({ code: 'PROPOSAL_NOT_FOUND', message: 'x' }, 'uk')).toBe('Ця пропозиція вже неактуальна.');
    expect(guideProblemWords(new Error('boom'), 'en')).toBe('boom');
    expect(isConflict({ code: 'JOURNEY_CONFLICT', details: { current_version: 4 } })).toBe(true);
    const plan = { source: 'static', legs: [], text: 'Walk along Svobody Ave.' };
    expect(staticRouteOf({ code: 'ROUTE_NOT_FOUND', details: { static: plan } })).toBe(plan);
    expect(staticRouteOf({ code: 'ROUTE_NOT_FOUND', details: { static: null } })).toBeNull();
    expect(staticRouteOf({ code: 'NOT_FOUND', details: { static: plan } })).toBeNull();
    expect(isConflict(new TesseraError('NOT_FOUND', 'x'))).toBe(false);
  });

  it('has every word in every language', () => {
    const shape = (v: unknown): unknown => (typeof v === 'function' ? 'fn' : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)])) : typeof v);
    expect(shape(textsFor('ru'))).toEqual(shape(textsFor('en')));
    expect(shape(textsFor('uk'))).toEqual(shape(textsFor('en')));
    expect(textsFor('ru').done).not.toBe(textsFor('en').done);
    expect(textsFor('uk').start).toBe('Почати подорож на сьогодні');
  });
});

describe('which journey and which sessions the guide shows', () => {
  it('marks nodes: done, skipped, the current one (entered: you are here), the rest pending', () => {
    expect(nodeStatus(node('a', { state: 'completed' }), 'b')).toBe('done');
    expect(nodeStatus(node('a', { state: 'skipped' }), 'b')).toBe('skipped');
    expect(nodeStatus(node('b'), 'b')).toBe('current');
    expect(nodeStatus(node('b', { state: 'entered' }), 'b')).toBe('here');
    expect(nodeStatus(node('c'), 'b')).toBe('pending');
  });

  it('shows the latest journey in progress, else the latest that ended', () => {
    const older = journey('j1', { state: 'started', created_at: '2026-12-07T08:00:00Z' });
    const newer = journey('j2', { state: 'completed', created_at: '2026-12-07T09:00:00Z' });
    const newest = journey('j3', { state: 'started', created_at: '2026-12-07T10:00:00Z' });
    expect(pickJourney([older, newer])?.journey_instance_id).toBe('j1');
    expect(pickJourney([older, newer, newest])?.journey_instance_id).toBe('j3');
    expect(pickJourney([newer, journey('j0', { state: 'abandoned', created_at: '2026-12-06T09:00:00Z' })])?.journey_instance_id).toBe('j2');
    expect(pickJourney([])).toBeNull();
  });

  it('offers the start for active sessions whose product names a journey and that have none yet', () => {
    const paid = session('prs_1');
    const other = session('prs_2', { product: { ...paid.product, ref: 'city.coffee-voucher@1.0.0', id: 'city.coffee-voucher', cid: 'b3:coffee' } });
    const unpaid = session('prs_3', { state: 'preflight_ok' });
    const catalogue = [
      { cid: 'b3:pass', ref: paid.product.ref, journey: 'lviv.old-town-day@^1' },
      { cid: 'b3:coffee', ref: 'city.coffee-voucher@1.0.0', journey: null },
    ] as unknown as CatalogueProduct[];
    expect(startableSessions([paid, other, unpaid], [], catalogue).map((s) => s.product_runtime_session_id)).toEqual(['prs_1']);
    // A session with a journey (started or ended) is shown, never started twice.
    expect(startableSessions([paid], [journey('j', { product_runtime_session_id: 'prs_1', state: 'completed' })], catalogue)).toEqual([]);
    // The session's own `product.journey` decides first; without any word the runtime is asked (it refuses in words).
    expect(namesJourney(session('x', { product: { ...paid.product, journey: null } as never }), catalogue)).toBe(false);
    expect(namesJourney(session('x', { product: { ...paid.product, cid: 'b3:unknown', ref: 'u@1' } }), catalogue)).toBeUndefined();
    expect(startableSessions([session('x', { product: { ...paid.product, cid: 'b3:unknown', ref: 'u@1' } })], [], null)).toHaveLength(1);
  });
});

describe('the QR code for the node ahead', () => {
  const needs = { product: 'city.museum-pass-48h', venue: 'lviv.art' };
  const entitlement = { serial: 'S1', code: 'TS1:ABC', kind: 'time_pass', state: 'active', title: 'Museum Pass', product_ref: 'city.museum-pass-48h@1.1.0', rights_left: 1, valid_from: '', valid_until: '', venues: ['lviv.history', 'lviv.art'] };

  it('shows the runtime’s covering entitlement, with the wallet’s facts when the traveller’s sessions hold it', () => {
    const n = node('art', { needs, covered_by: { serial: 'S1', code: 'TS1:ABC', title: 'Museum Pass' } });
    expect(passForNode(n, [session('prs_1', { entitlements: [entitlement] })])).toEqual({ code: 'TS1:ABC', serial: 'S1', title: 'Museum Pass', entitlement });
    expect(passForNode(n, [])).toEqual({ code: 'TS1:ABC', serial: 'S1', title: 'Museum Pass', entitlement: null });
  });

  it('falls back to an active held entitlement of the product valid at the venue, and to none', () => {
    const n = node('art', { needs });
    expect(passForNode(n, [session('prs_1', { entitlements: [entitlement] })])?.serial).toBe('S1');
    expect(passForNode(n, [session('prs_1', { entitlements: [{ ...entitlement, state: 'used' }] })])).toBeNull();
    expect(passForNode(n, [session('prs_1', { entitlements: [{ ...entitlement, venues: ['lviv.history'] }] })])).toBeNull();
    expect(passForNode(node('art', { needs: { ...needs, product: 'other' } }), [session('prs_1', { entitlements: [entitlement] })])).toBeNull();
  });

  it('shows no code for a node that needs none or is already done', () => {
    expect(passForNode(node('square'), [session('prs_1', { entitlements: [entitlement] })])).toBeNull();
    expect(passForNode(node('art', { needs, state: 'completed', covered_by: { serial: 'S1', code: 'TS1:ABC', title: null } }), [])).toBeNull();
    expect(passForNode(null, [])).toBeNull();
  });
});

describe('the offline map', () => {
  it('projects north up and east right, keeping the true proportions at the city’s latitude', () => {
    const b = { south: 49.83, west: 24.0, north: 49.85, east: 24.04 };
    const p = projection(b, 1000);
    expect(p.project({ lat: 49.85, lon: 24.0 })).toEqual([0, 0]);
    const [x, y] = p.project({ lat: 49.83, lon: 24.04 });
    expect(x).toBeCloseTo(1000, 6);
    expect(y).toBeCloseTo(p.height, 0);
    // 0.02° of latitude is ~2.22 km, 0.04° of longitude at 49.84° N is ~2.87 km: the map is 1000 × ~774.
    expect(p.height).toBeGreaterThan(770);
    expect(p.height).toBeLessThan(778);
    // One metre is the same length both ways.
    const [x1] = p.project({ lat: 49.84, lon: 24.02 + 1 / (111_320 * Math.cos((49.84 * Math.PI) / 180)) });
    const [, y1] = p.project({ lat: 49.84 - 1 / 111_320, lon: 24.02 });
    const [x0, y0] = p.project({ lat: 49.84, lon: 24.02 });
    expect(x1 - x0).toBeCloseTo(y1 - y0, 2);
  });

  it('frames the places and the route with a margin, a single place with a minimum span, nothing as null', () => {
    const b = boundsOf([RYNOK, OPERA], 0.1)!;
    expect(b.south).toBeLessThan(RYNOK.lat);
    expect(b.north).toBeGreaterThan(OPERA.lat);
    expect(b.west).toBeLessThan(OPERA.lon);
    expect(b.east).toBeGreaterThan(RYNOK.lon);
    const one = boundsOf([RYNOK], 0)!;
    expect(one.north - one.south).toBeCloseTo(0.002, 9);
    expect(boundsOf([])).toBeNull();
    const pkg = { south: 49.8, west: 23.9, north: 49.9, east: 24.1 };
    expect(mapBounds(pkg, [], [])).toEqual(pkg);
    expect(mapBounds(pkg, [RYNOK, OPERA], [])!.north).toBeLessThan(49.85);
    expect(mapBounds(null, [], [])).toBeNull();
  });

  it('draws polylines as SVG paths, and a route leg without geometry as a straight line', () => {
    const p = projection({ south: 0, west: 0, north: 1, east: 1 }, 100);
    expect(pathOf([{ lat: 1, lon: 0 }, { lat: 0, lon: 1 }], p)).toBe('M0 0L100 100');
    expect(pathOf([{ lat: 1, lon: 0 }], p)).toBe('');
    const leg = { mode: 'walk' as const, from: { name: 'a', location: RYNOK }, to: { name: 'b', location: OPERA }, depart_at: '', arrive_at: '', meters: 1, path: [] };
    expect(routeLines({ source: 'static', from: RYNOK, to: OPERA, depart_at: '', arrive_at: '', minutes: 1, meters: 1, text: '', legs: [leg] })).toEqual([{ mode: 'walk', path: [RYNOK, OPERA] }]);
    expect(routeLines(null)).toEqual([]);
  });
});

describe('the journey client', () => {
  it('sends each call to its route, with expected_version and language where given', async () => {
    const calls: Array<[string, string, unknown]> = [];
    const client = createJourneyClient(async <T,>(method: 'GET' | 'POST', path: string, body?: unknown) => {
      calls.push([method, path, body]);
      return (path.startsWith('/api/journeys?') ? { journeys: [] } : path.endsWith('/proposals') ? { proposals: [] } : {}) as T;
    });
    await client.start({ session: 'prs_1', language: 'uk' });
    await client.list({ user: 'ses 1', state: 'started' });
    await client.get('j/1', 'ru');
    await client.complete('j1', 'art', { expected_version: 3 });
    await client.skip('j1', 'art');
    await client.abandon('j1', 'rain');
    await client.next('j1', 'en');
    await client.route('j1', 'lviv.art', 'uk');
    await client.proposals('j1');
    await client.accept('j1', 'p1');
    await client.reject('j1', 'p2');
    await client.city();
    await client.cityMap();
    expect(calls).toEqual([
      ['POST', '/api/journeys', { session: 'prs_1', language: 'uk' }],
      ['GET', '/api/journeys?user=ses+1&state=started', undefined],
      ['GET', '/api/journeys/j%2F1?language=ru', undefined],
      ['POST', '/api/journeys/j1/nodes/art/complete', { expected_version: 3 }],
      ['POST', '/api/journeys/j1/nodes/art/skip', {}],
      ['POST', '/api/journeys/j1/abandon', { reason: 'rain' }],
      ['GET', '/api/journeys/j1/next?language=en', undefined],
      ['GET', '/api/journeys/j1/route?to=lviv.art&language=uk', undefined],
      ['GET', '/api/journeys/j1/proposals', undefined],
      ['POST', '/api/journeys/j1/proposals/p1/accept', {}],
      ['POST', '/api/journeys/j1/proposals/p2/reject', {}],
      ['GET', '/api/city', undefined],
      ['GET', '/api/city/map', undefined],
    ]);
  });
});

describe('the map fits its box', () => {
  it('grows the frame about its centre to the box’s proportions, so one SVG unit is one pixel', () => {
    const b = { south: 49.837, west: 24.0247, north: 49.8442, east: 24.0327 };
    for (const aspect of [0.75, 1, 1.5, 2.5]) {
      const f = fitAspect(b, aspect);
      const p = projection(f, 600);
      expect(p.height).toBeCloseTo(600 / aspect, 0);
      // Never cuts anything off: the old frame is inside the new one, centred.
      expect(f.south).toBeLessThanOrEqual(b.south + 1e-12);
      expect(f.north).toBeGreaterThanOrEqual(b.north - 1e-12);
      expect(f.west).toBeLessThanOrEqual(b.west + 1e-12);
      expect(f.east).toBeGreaterThanOrEqual(b.east - 1e-12);
      expect((f.south + f.north) / 2).toBeCloseTo((b.south + b.north) / 2, 12);
      expect((f.west + f.east) / 2).toBeCloseTo((b.west + b.east) / 2, 12);
    }
  });
});

describe('the journey client in Electron', () => {
  it('goes through the generic IPC method `api` (no per-method IPC), and rejects with the route\'s TesseraError', async () => {
    const { createIpcClient } = await import('../../renderer/src/client/ipc.js');
    const calls: Array<[string, unknown]> = [];
    const client = createIpcClient({
      invoke: async (method, arg) => {
        calls.push([method, arg]);
        const path = (arg as { path: string }).path;
        if (path.endsWith('/complete')) return { ok: false, error: { code: 'NOT_FOUND', message: 'No journey jrn_x.' } };
        return { ok: true, value: { journeys: [] } };
      },
      subscribe: async () => ({ ok: true, value: {} }),
      onEvent: () => () => undefined,
    });
    expect(await client.journeys.list({ user: 'ses_1' })).toEqual([]);
    await expect(client.journeys.complete('jrn_x', 'art', { expected_version: 2 })).rejects.toMatchObject({ name: 'TesseraError', code: 'NOT_FOUND', message: 'No journey jrn_x.' });
    expect(calls).toEqual([
      ['api', { method: 'GET', path: '/api/journeys?user=ses_1' }],
      ['api', { method: 'POST', path: '/api/journeys/jrn_x/nodes/art/complete', body: { expected_version: 2 } }],
    ]);
  });
});
