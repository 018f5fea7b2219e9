/**
 * Journey instances (issue 15 point 2, 7; seed 000 §6.2, §6.4, §7.1) on a real SQLite file, the real bus and
 * journal and the app's message catalogue: the seed's events with the session id, nodes completed by touch and by a
 * staff redemption through the bus, two screens on one node, stale versions, completion, static routes when there is
 * no city package, and the guide agent's proposals (shown, accepted, rejected; nothing changes without acceptance).
 * The sessions and entitlements the module reads are small in-memory stand-ins of their interfaces; the real ones
 * are exercised in test/integration/journeys.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { IssuedEntitlement, RedemptionRecord } from '../../main/common/entitlements.js';
import { createBus } from '../../main/runtime/bus/index.js';
import type { Bus } from '../../main/runtime/bus/index.js';
import { loadMessageCatalogue } from '../../main/runtime/io/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import type { Journal } from '../../main/runtime/journal/index.js';
import { createJourneys } from '../../main/runtime/journeys/index.js';
import type { Journeys, JourneySessions } from '../../main/runtime/journeys/index.js';
import { itinerary } from '../../main/runtime/journeys/plan.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { testJourneyDoc } from '../fixtures/journey-doc.js';
import { tempDir } from '../helpers/tmp.js';

// Tuesday 8 December 2026, 11:00 in Lviv (UTC+2).
const TUESDAY_11 = Date.parse('2026-12-08T09:00:00Z');

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

interface World {
  journeys: Journeys;
  bus: Bus;
  journal: Journal;
  store: Store;
  path: string;
  sessions: Map<string, ReturnType<JourneySessions['get']>>;
  held: IssuedEntitlement[];
  redemptions: RedemptionRecord[];
  now: { ms: number };
  topics: () => string[];
}

function world(options: { path?: string; now?: number; held?: IssuedEntitlement[] } = {}): World {
  const path = options.path ?? `${tempDir('tessera-journeys-')}/t.db`;
  const store = openStore({ path, logger: createMemoryLogger() });
  stores.push(store);
  const now = { ms: options.now ?? TUESDAY_11 };
  const journal = createJournal({ store, clock: () => now.ms });
  const bus = createBus({ journal, logger: createMemoryLogger() });
  const doc = testJourneyDoc();
  const sessions = new Map<string, ReturnType<JourneySessions['get']>>([
    ['prs_pass', { product_runtime_session_id: 'prs_pass', state: 'active', user_id: 'ana', product: { id: 'city.museum-pass-48h', cid: 'b3:pass', ref: 'city.museum-pass-48h@1.1.0' } }],
    ['prs_unpaid', { product_runtime_session_id: 'prs_unpaid', state: 'pending_payment', user_id: 'ana', product: { id: 'city.museum-pass-48h', cid: 'b3:pass', ref: 'city.museum-pass-48h@1.1.0' } }],
  ]);
  const held: IssuedEntitlement[] = options.held ?? [
    { serial: 's-pass', code: 'TS1:PASS', product_runtime_session_id: 'prs_pass', product_cid: 'b3:pass', product_ref: 'city.museum-pass-48h@1.1.0', title: 'Lviv Museum Pass', kind: 'time_pass', valid_from: '', valid_until: '', venues: ['lviv.history', 'lviv.pharm', 'lviv.art'], user_id: 'ana', state: 'active', issued_at: '' },
  ];
  const redemptions: RedemptionRecord[] = [];
  const journeys = createJourneys({
    store,
    bus,
    logger: createMemoryLogger(),
    catalogue: {
      resolve: () => ({ id: 'city.museum-pass-48h', journey: 'test.old-town@^1' }),
      resolveJourney: () => ({ ref: 'test.old-town@1.0.0', id: 'test.old-town', version: '1.0.0', cid: 'b3:doc', doc }),
    },
    sessions: {
      get: (id) => {
        const s = sessions.get(id);
        if (!s) throw new Error(`no session ${id}`);
        return s;
      },
    },
    entitlements: { list: (q) => held.filter((e) => (!q?.user || e.user_id === q.user) && (!q?.state || e.state === q.state)), history: (q) => redemptions.filter((r) => !q?.venue || r.venue === q.venue) },
    messages: loadMessageCatalogue(),
    clock: () => now.ms,
  });
  const topics = () => journal.query({ limit: 1000 }).events.map((e) => e.topic);
  return { journeys, bus, journal, store, path, sessions, held, redemptions, now, topics };
}

describe('journey instances', () => {
  it('follows the document from its start through `next`, alternatives left off the itinerary', () => {
    expect(itinerary(testJourneyDoc())).toEqual(['start', 'history', 'pharm', 'castle', 'free', 'end']);
  });

  it('starts only in an active session, with journey.started and the first node entered, each carrying the session id', () => {
    const w = world();
    expect(() => w.journeys.start({ session: 'prs_unpaid' })).toThrow(expect.objectContaining({ code: 'SESSION_NOT_ACTIVE' }));
    const j = w.journeys.start({ session: 'prs_pass' });
    expect(j.state).toBe('started');
    expect(j.current).toBe('start');
    expect(j.nodes.map((n) => n.state)).toEqual(['entered', 'pending', 'pending', 'pending', 'pending', 'pending']);
    const events = w.journal.query({ topic: 'journey.**', limit: 100 }).events;
    expect(events.map((e) => e.topic)).toEqual(['journey.started', 'journey.node.entered']);
    for (const e of events) expect((e.payload as Record<string, unknown>)['product_runtime_session_id']).toBe('prs_pass');
    // The pass covers the museum nodes: the view carries its code for the QR.
    expect(j.nodes.find((n) => n.id === 'history')!.covered_by).toEqual({ serial: 's-pass', code: 'TS1:PASS', title: 'Lviv Museum Pass' });
    expect(w.journeys.active('ana')!.journey_instance_id).toBe(j.journey_instance_id);
  });

  it('holds several journeys in one session (pre-trip, in-trip), each with its own progress and events', () => {
    const w = world();
    const before = w.journeys.start({ session: 'prs_pass', phase: 'pre_trip' });
    const during = w.journeys.start({ session: 'prs_pass', phase: 'in_trip', language: 'ru' });
    expect(before.journey_instance_id).not.toBe(during.journey_instance_id);
    w.journeys.complete(during.journey_instance_id, 'start');
    expect(w.journeys.get(before.journey_instance_id).current).toBe('start');
    expect(w.journeys.get(during.journey_instance_id).current).toBe('history');
    expect(w.journeys.list({ session: 'prs_pass' }).map((j) => j.phase).sort()).toEqual(['in_trip', 'pre_trip']);
    expect(w.journeys.get(during.journey_instance_id).nodes[1]!.title).toBe('The History Museum');
    expect(w.journeys.latestOf('prs_pass')).toBe(during.journey_instance_id);
    const started = w.journal.query({ topic: 'journey.started', limit: 10 }).events.map((e) => (e.payload as { journey_instance_id: string }).journey_instance_id);
    expect(started).toEqual([before.journey_instance_id, during.journey_instance_id]);
  });

  it('completes the node a traveller names once, even from two screens, and refuses a change made on a stale version', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    const first = w.journeys.complete(j.journey_instance_id, 'start', { expected_version: j.version });
    expect(first.current).toBe('history');
    // The second screen taps "done" on the same node: answered as it stands, the next node is untouched.
    const second = w.journeys.complete(j.journey_instance_id, 'start', { expected_version: j.version });
    expect(second.version).toBe(first.version);
    expect(second.nodes.find((n) => n.id === 'history')!.state).toBe('entered');
    // Acting on the next node with the old version: refused, with the version to read.
    expect(() => w.journeys.skip(j.journey_instance_id, 'history', { expected_version: j.version })).toThrow(expect.objectContaining({ code: 'JOURNEY_CONFLICT', details: expect.objectContaining({ current_version: first.version }) }));
    expect(() => w.journeys.complete(j.journey_instance_id, 'nowhere')).toThrow(expect.objectContaining({ code: 'JOURNEY_NODE_UNKNOWN' }));
    expect(w.topics().filter((t) => t === 'journey.node.completed')).toHaveLength(1);
  });

  it('completes a node by itself when staff redeem its entitlement at its venue (entitlement.redeemed on the bus)', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    w.journeys.complete(j.journey_instance_id, 'start');
    w.bus.publish('entitlement.redeemed', { serial: 's-pass', venue: 'lviv.history', redemption_id: 'rdm_1', product_runtime_session_id: 'prs_pass' });
    const after = w.journeys.get(j.journey_instance_id);
    expect(after.nodes.find((n) => n.id === 'history')).toMatchObject({ state: 'completed', by: 'redemption' });
    expect(after.current).toBe('pharm');
    // A redemption at a venue of no open node changes nothing.
    w.bus.publish('entitlement.redeemed', { serial: 's-pass', venue: 'lviv.history', redemption_id: 'rdm_2', product_runtime_session_id: 'prs_pass' });
    expect(w.journeys.get(j.journey_instance_id).version).toBe(after.version);
  });

  it('ends with journey.completed: success when every required node was done, partial when one was skipped', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    for (const node of ['start', 'history', 'pharm']) w.journeys.complete(j.journey_instance_id, node);
    w.journeys.skip(j.journey_instance_id, 'castle');
    w.journeys.complete(j.journey_instance_id, 'free', { by: 'voice' });
    const done = w.journeys.complete(j.journey_instance_id, 'end');
    expect(done.state).toBe('completed');
    expect(done.current).toBeNull();
    const completed = w.journal.query({ topic: 'journey.completed', limit: 10 }).events;
    expect(completed).toHaveLength(1);
    expect(completed[0]!.payload).toMatchObject({ outcome: 'partial', skipped: ['castle'], product_runtime_session_id: 'prs_pass' });
    expect(() => w.journeys.abandon(j.journey_instance_id)).toThrow(expect.objectContaining({ code: 'JOURNEY_ENDED' }));
    expect(w.journeys.next(j.journey_instance_id).finished).toBe(true);
  });

  it('without a city package, the next step uses the document\'s static route, says so, and journals product.runtime.degraded once', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    w.journeys.complete(j.journey_instance_id, 'start');
    const step = w.journeys.next(j.journey_instance_id);
    expect(step.degraded).toBe(true);
    expect(step.route).toMatchObject({ source: 'static', minutes: 1 });
    expect(step.text).toContain('The city map is not available');
    expect(step.text).toContain('Cross the square to number 6.');
    expect(step.text).toContain('Your Lviv Museum Pass covers it.');
    expect(step.text).toContain('It is open until 18:00.');
    const ru = w.journeys.next(j.journey_instance_id, { language: 'ru' });
    expect(ru.text).toContain('Перейдите площадь к дому 6.');
    w.journeys.next(j.journey_instance_id);
    const degraded = w.journal.query({ topic: 'product.runtime.degraded', limit: 10 }).events;
    expect(degraded).toHaveLength(1);
    expect(degraded[0]!.payload).toMatchObject({ product_runtime_session_id: 'prs_pass', component: 'lem', reason: 'missing' });
    expect(w.topics()).toContain('journey.route.generated');
  });

  it('answers when a place of the journey opens and closes today, and refuses a place it does not have', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    expect(w.journeys.place(j.journey_instance_id, 'lviv.history').text).toBe('Lviv History Museum is open today from 10:00 to 18:00.');
    expect(() => w.journeys.place(j.journey_instance_id, 'lviv.zoo')).toThrow(expect.objectContaining({ code: 'PLACE_UNKNOWN' }));
    expect(w.journeys.places().find((p) => p.id === 'lviv.history')!.names.en).toEqual(['Lviv History Museum', 'history museum']);
    // On a Monday the museum does not open: the view says so rather than showing no hours at all.
    const monday = world({ now: Date.parse('2026-12-07T09:00:00Z') });
    const m = monday.journeys.start({ session: 'prs_pass' });
    expect(m.nodes.find((n) => n.id === 'history')).toMatchObject({ opens_at: null, closes_at: null, closed_today: true });
    expect(m.nodes.find((n) => n.id === 'start')!.closed_today).toBe(false);
    expect(monday.journeys.place(m.journey_instance_id, 'lviv.history').text).toBe('Lviv History Museum is closed today.');
  });

  it('resumes at the same node after the process is gone (the journey is only what was committed)', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    w.journeys.complete(j.journey_instance_id, 'start');
    w.store.close();
    stores.splice(stores.indexOf(w.store), 1);
    const again = world({ path: w.path });
    expect(again.journeys.get(j.journey_instance_id).current).toBe('history');
  });

  it('completes on restart a node whose redemption event a crash lost (found in the redemption history)', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    w.journeys.complete(j.journey_instance_id, 'start');
    w.redemptions.push({ id: 'rdm_lost', serial: 's-pass', venue: 'lviv.history', at: new Date(TUESDAY_11 + 60_000).toISOString(), undo_until: '', receipt_id: 'r', capsule: 'c', kind: 'time_pass', product_cid: 'b3:pass', product_runtime_session_id: 'prs_pass' });
    w.journeys.recover();
    expect(w.journeys.get(j.journey_instance_id).nodes.find((n) => n.id === 'history')).toMatchObject({ state: 'completed', by: 'redemption' });
  });
});

describe('the Journey Guide agent proposes; the traveller decides', () => {
  it('proposes a stop that closes soon, changes nothing until accepted, and moves it first when accepted', () => {
    // 15:45 in Lviv: the gallery is not on the plan, the History Museum closes at 18:00, the Pharmacy Museum at 19:00.
    const w = world({ now: Date.parse('2026-12-08T15:45:00Z') }); // 17:45 local
    const j = w.journeys.start({ session: 'prs_pass' });
    w.journeys.complete(j.journey_instance_id, 'start');
    w.journeys.skip(j.journey_instance_id, 'history');
    // Current: pharm (closes 19:00, 75 min — but it is current). Nothing later closes soon.
    expect(w.journeys.proposals(j.journey_instance_id).filter((p) => p.kind === 'closes_soon')).toEqual([]);

    const v = world({ now: Date.parse('2026-12-08T15:45:00Z') });
    const k = v.journeys.start({ session: 'prs_pass' });
    const before = v.journeys.get(k.journey_instance_id);
    const [idea] = v.journeys.proposals(k.journey_instance_id).filter((p) => p.kind === 'closes_soon');
    expect(idea).toMatchObject({ state: 'shown', change: { op: 'move_first', node: 'history' } });
    expect(idea!.text).toBe('Lviv History Museum closes at 18:00, in 15 minutes. Go there first?');
    expect(v.journeys.get(k.journey_instance_id).version).toBe(before.version);
    // Asking again shows the same proposal, journaled once.
    v.journeys.proposals(k.journey_instance_id);
    expect(v.topics().filter((t) => t === 'agent.recommendation.shown').length).toBeGreaterThan(0);
    const shownOnce = v.topics().filter((t) => t === 'agent.recommendation.shown').length;
    v.journeys.proposals(k.journey_instance_id);
    expect(v.topics().filter((t) => t === 'agent.recommendation.shown').length).toBe(shownOnce);
    const { journey, proposal } = v.journeys.decide(k.journey_instance_id, idea!.id, 'accept');
    expect(proposal.state).toBe('accepted');
    expect(journey.current).toBe('history');
    expect(journey.nodes[0]!.id).toBe('history');
    expect(v.topics()).toContain('agent.recommendation.accepted');
  });

  it('proposes the indoor alternative when today\'s forecast says rain, and a rejected idea is not shown again', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    expect(w.journeys.proposals(j.journey_instance_id).filter((p) => p.kind === 'rain_indoor')).toEqual([]);
    w.bus.publish('plugin.tool-weather.forecast', { place: { name: 'Lviv', lat: 49.84, lon: 24.03 }, date: '2026-12-08', summary: 'rain', precipitation_probability_max: 85, precipitation_mm: 6 });
    const [rain] = w.journeys.proposals(j.journey_instance_id).filter((p) => p.kind === 'rain_indoor');
    expect(rain).toMatchObject({ change: { op: 'substitute', node: 'castle', with: 'art' } });
    expect(rain!.text).toBe('Rain is forecast today. Visit National Art Gallery instead of High Castle?');
    w.journeys.decide(j.journey_instance_id, rain!.id, 'reject');
    expect(w.topics()).toContain('agent.recommendation.rejected');
    expect(w.journeys.proposals(j.journey_instance_id).find((p) => p.kind === 'rain_indoor')!.state).toBe('rejected');
    expect(w.journeys.get(j.journey_instance_id).nodes.map((n) => n.id)).not.toContain('art');
  });

  it('accepting the indoor alternative puts it on the itinerary in place of the outdoor stop', () => {
    const w = world();
    const j = w.journeys.start({ session: 'prs_pass' });
    w.bus.publish('plugin.tool-weather.forecast', { place: { name: 'Lviv', lat: 49.84, lon: 24.03 }, date: '2026-12-08', precipitation_probability_max: 90 });
    const rain = w.journeys.proposals(j.journey_instance_id).find((p) => p.kind === 'rain_indoor')!;
    const { journey } = w.journeys.decide(j.journey_instance_id, rain.id, 'accept');
    expect(journey.nodes.map((n) => `${n.id}:${n.state}`)).toEqual(['start:entered', 'history:pending', 'pharm:pending', 'art:pending', 'castle:skipped', 'free:pending', 'end:pending']);
  });

  it('at free time, proposes the nearest café the traveller\'s voucher covers', () => {
    const voucher: IssuedEntitlement = { serial: 's-coffee', code: 'TS1:COFFEE', product_runtime_session_id: 'prs_coffee', product_cid: 'b3:coffee', product_ref: 'city.coffee-voucher@1.0.0', title: 'Coffee voucher', kind: 'stored_value', valid_from: '', valid_until: '', venues: ['lviv.rynok', 'lviv.opera'], user_id: 'ana', state: 'active', issued_at: '' };
    const w = world();
    w.held.push(voucher);
    const j = w.journeys.start({ session: 'prs_pass' });
    for (const node of ['start', 'history', 'pharm', 'castle']) w.journeys.complete(j.journey_instance_id, node);
    const cafe = w.journeys.proposals(j.journey_instance_id).find((p) => p.kind === 'free_time_cafe')!;
    expect(cafe.change).toEqual({ op: 'set_place', node: 'free', place: 'lviv.rynok' });
    expect(cafe.text).toBe('Free time: Rynok Square Coffee is 1 minute away and your Coffee voucher covers it. Go there?');
    const { journey } = w.journeys.decide(j.journey_instance_id, cafe.id, 'accept');
    expect(journey.nodes.find((n) => n.id === 'free')!.place.id).toBe('lviv.rynok');
  });
});
