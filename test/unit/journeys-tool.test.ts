/**
 * `tool-journeys` (issue 15 point 5): the Journey Guide's answers to the journey intents, against a small in-test
 * implementation of the journeys interface it uses (the module's own tests cover the module; the integration test
 * against the real module comes with the merge). The answers are rendered with the shipped message catalogue, so
 * what is asserted is what the traveller hears.
 */
import { describe, expect, it } from 'vitest';
import { TesseraError } from '../../main/common/errors.js';
import type { JourneyLanguage, JourneyNodeView, JourneyView, NextStep, RoutePlan } from '../../main/common/journeys.js';
import { loadMessageCatalogue } from '../../main/runtime/io/index.js';
import { JOURNEYS_TOOL, journeysToolRunner, runJourneysOp } from '../../main/runtime/journeys/tool.js';
import type { GuideAnswer, JourneysForTool } from '../../main/runtime/journeys/tool.js';

const messages = loadMessageCatalogue();
const heard = (a: GuideAnswer, language = 'en') => ('text' in a ? a.text : messages.render(a.message, a.params, language));

interface Place {
  id: string;
  names: Partial<Record<JourneyLanguage, string[]>>;
  hours?: [string, string];
}
const PLACES: Place[] = [
  { id: 'lviv.rynok', names: { en: ['Rynok Square', 'market square'], uk: ['Площа Ринок', 'площі Ринок'] } },
  { id: 'lviv.history', names: { en: ['History Museum'], uk: ['Історичний музей', 'історичного музею'] }, hours: ['10:00', '18:00'] },
  { id: 'lviv.opera', names: { en: ['Opera', 'opera house'], uk: ['Опера', 'опери'] }, hours: ['11:00', '19:00'] },
];
const OTHER = { id: 'kyiv.lavra', names: { en: ['Lavra'] } };

/** One traveller's journey: Rynok Square → History Museum (needs the pass) → Opera. */
function fakeJourneys(options: { covered?: boolean; routeError?: TesseraError } = {}) {
  const state = new Map<string, { state: 'pending' | 'completed' | 'skipped'; by?: string }>([
    ['rynok', { state: 'pending' }],
    ['history', { state: 'pending' }],
    ['opera', { state: 'pending' }],
  ]);
  const calls: string[] = [];
  const nodeIds = ['rynok', 'history', 'opera'];
  const view = (language: JourneyLanguage = 'en'): JourneyView => {
    const nodes: JourneyNodeView[] = nodeIds.map((id, i) => {
      const place = PLACES[i]!;
      const name = place.names[language]?.[0] ?? place.names.en![0]!;
      return {
        id,
        kind: id === 'history' ? 'visit' : 'checkpoint',
        title: name,
        place: { id: place.id, name, location: { lat: 49.84, lon: 24.03 }, indoor: id === 'history', kind: 'museum' },
        state: state.get(id)!.state,
        at: null,
        by: null,
        needs: id === 'history' ? { product: 'city.museum-pass', venue: 'lviv.history' } : null,
        covered_by: id === 'history' && options.covered ? { serial: 'S-42', code: 'HC1:QR', title: 'Museum pass' } : null,
        opens_at: place.hours?.[0] ?? null,
        closes_at: place.hours?.[1] ?? null,
        duration_min: 30,
        closed_today: false,
      };
    });
    const current = nodeIds.find((id) => state.get(id)!.state === 'pending') ?? null;
    return {
      journey_instance_id: 'jny_1',
      product_runtime_session_id: 'prs_1',
      doc: { ref: 'lviv.old-town-day@1.0.0', cid: 'b3:00', title: 'Old town' },
      phase: 'in_trip',
      state: current === null ? 'completed' : 'started',
      language,
      nodes,
      current,
      version: 1,
      routing: { mode: 'graph', degraded: null, package: null },
      created_at: '',
      updated_at: '',
      ended_at: null,
    };
  };
  const act = (how: 'completed' | 'skipped') => (id: string, node: string) => {
    calls.push(`${how} ${node}`);
    if (state.get(node)!.state === 'pending') state.set(node, { state: how });
    return view();
  };
  const journeys: JourneysForTool = {
    active: (user) => (user === 'ses_traveller01' ? view() : null),
    get: (_id, language) => view(language),
    next: (_id, o) => {
      const v = view(o?.language);
      const node = v.nodes.find((n) => n.id === v.current) ?? null;
      const step: NextStep = { journey_instance_id: 'jny_1', node, route: null, text: node ? `Walk 5 minutes to ${node.title}.` : 'The journey is over.', degraded: false, finished: node === null };
      return step;
    },
    routeTo: (_id, place) => {
      calls.push(`route ${place}`);
      if (options.routeError) throw options.routeError;
      const plan: RoutePlan = { source: 'graph', from: { lat: 0, lon: 0 }, to: { lat: 0, lon: 0 }, depart_at: '', arrive_at: '', minutes: 7.6, meters: 600, legs: [], text: 'Walk along Svobody Avenue.' };
      return plan;
    },
    skip: act('skipped'),
    complete: act('completed'),
    places: () => [...PLACES.map(({ id, names }) => ({ id, names })), OTHER],
  };
  return { journeys, calls, state };
}

const user = 'ses_traveller01';

describe('tool-journeys', () => {
  it('says there is no journey yet, and how to get one, for a traveller with none, with no session, or with no journeys module', () => {
    const { journeys } = fakeJourneys();
    for (const op of ['next', 'route', 'hours', 'skip', 'done', 'ticket']) {
      expect(heard(runJourneysOp(journeys, { op, user: 'ses_somebodyelse', place: 'lviv.opera' }))).toBe('You have no journey yet: buy a pass and start it on the Guide tab.');
    }
    expect(heard(runJourneysOp(journeys, { op: 'next', user: '' }), 'uk')).toBe('У вас ще немає маршруту: купіть перепустку й запустіть маршрут на вкладці «Гід».');
    expect(heard(runJourneysOp(undefined, { op: 'next', user }), 'ru')).toBe('У вас пока нет маршрута: купите пропуск и запустите маршрут на вкладке «Гид».');
    expect(runJourneysOp(undefined, { op: 'current', user })).toMatchObject({ node: null });
  });

  it('answers "what\'s next" with the sentence the journeys module renders', () => {
    const { journeys } = fakeJourneys();
    expect(runJourneysOp(journeys, { op: 'next', user, language: 'en' })).toEqual({ text: 'Walk 5 minutes to Rynok Square.', journey_instance_id: 'jny_1', node: 'rynok', finished: false });
  });

  it('routes to a place of the journey, by its id or by a name said in any of its languages, and says the minutes', () => {
    const { journeys, calls } = fakeJourneys();
    expect(heard(runJourneysOp(journeys, { op: 'route', user, place: 'lviv.opera' }))).toBe('To Opera: about 8 minutes. Walk along Svobody Avenue.');
    expect(heard(runJourneysOp(journeys, { op: 'route', user, place_name: 'the Opera House', language: 'uk' }), 'uk')).toBe('До місця «Опера» приблизно 8 хвилин. Walk along Svobody Avenue.');
    // No place: the current stop.
    runJourneysOp(journeys, { op: 'route', user });
    expect(calls).toEqual(['route lviv.opera', 'route lviv.opera', 'route lviv.rynok']);
  });

  it('finds a place said in a case form its names do not list, when the stem points at exactly one place', () => {
    const { journeys, calls } = fakeJourneys();
    runJourneysOp(journeys, { op: 'route', user, place_name: 'опери', language: 'uk' });
    runJourneysOp(journeys, { op: 'route', user, place_name: 'історичному музеї', language: 'uk' });
    expect(calls).toEqual(['route lviv.opera', 'route lviv.history']);
    // A word no place's name shares its stem with is not guessed at.
    expect(heard(runJourneysOp(journeys, { op: 'route', user, place_name: 'вокзалу' }))).toContain('I don\'t know a place called "вокзалу"');
  });

  it('names the journey\'s stops for a place not on it: a free-text name, or another journey\'s place', () => {
    const { journeys, calls } = fakeJourneys();
    expect(heard(runJourneysOp(journeys, { op: 'route', user, place_name: 'the Eiffel Tower' }))).toBe('I don\'t know a place called "the Eiffel Tower" on your journey; your stops are Rynok Square, History Museum, Opera.');
    expect(heard(runJourneysOp(journeys, { op: 'hours', user, place: 'kyiv.lavra', ask: 'close' }))).toBe('I don\'t know a place called "Lavra" on your journey; your stops are Rynok Square, History Museum, Opera.');
    expect(heard(runJourneysOp(journeys, { op: 'route', user, place_name: 'Ейфелевої вежі', language: 'uk' }), 'uk')).toBe('Я не знаю місця «Ейфелевої вежі» на вашому маршруті; ваші зупинки: Площа Ринок, Історичний музей, Опера.');
    expect(calls).toEqual([]);
  });

  it('falls back to the written route, or says there is none, when the city package finds no path', () => {
    const written: RoutePlan = { source: 'static', from: { lat: 0, lon: 0 }, to: { lat: 0, lon: 0 }, depart_at: '', arrive_at: '', minutes: 12, meters: 900, legs: [], text: 'Follow the tram line to the Opera.' };
    const withStatic = fakeJourneys();
    // The module's code is ROUTE_NOT_FOUND; the tool reads codes as data (STYLE.md §5).
    Object.defineProperty(withStatic.journeys, 'routeTo', { value: () => { throw Object.assign(new Error('no path'), { code: 'ROUTE_NOT_FOUND', details: { static: written } }); } });
    expect(heard(runJourneysOp(withStatic.journeys, { op: 'route', user, place: 'lviv.opera' }))).toBe("I cannot plan a way to Opera on the city map. The guide's written directions: Follow the tram line to the Opera.");
    const none = fakeJourneys();
    Object.defineProperty(none.journeys, 'routeTo', { value: () => { throw Object.assign(new Error('no path'), { code: 'ROUTE_NOT_FOUND', details: { static: null } }); } });
    expect(heard(runJourneysOp(none.journeys, { op: 'route', user, place: 'lviv.opera' }))).toBe('I cannot find a way to Opera from here.');
    const broken = fakeJourneys();
    Object.defineProperty(broken.journeys, 'routeTo', { value: () => { throw new TesseraError('INTERNAL', 'boom'); } });
    expect(() => runJourneysOp(broken.journeys, { op: 'route', user, place: 'lviv.opera' })).toThrow('boom');
  });

  it('says when a place closes or opens today, and when it has no hours', () => {
    const { journeys } = fakeJourneys();
    expect(heard(runJourneysOp(journeys, { op: 'hours', user, place: 'lviv.history', ask: 'close' }))).toBe('History Museum closes at 18:00 today.');
    expect(heard(runJourneysOp(journeys, { op: 'hours', user, place_name: 'opera', ask: 'open' }))).toBe('Opera opens at 11:00 today.');
    expect(heard(runJourneysOp(journeys, { op: 'hours', user, place: 'lviv.history', ask: 'hours', language: 'uk' }), 'uk')).toBe('«Історичний музей» сьогодні відчинено з 10:00 до 18:00.');
    expect(heard(runJourneysOp(journeys, { op: 'hours', user, place: 'lviv.rynok', ask: 'close' }))).toBe('I have no opening hours for Rynok Square today.');
  });

  it('says the module\'s own sentence for a place closed today, and the asked-for half of today\'s hours otherwise', () => {
    const { journeys } = fakeJourneys();
    journeys.place = (_id, place) =>
      place === 'lviv.history'
        ? { name: 'History Museum', opens_at: null, closes_at: null, closed_today: true, text: 'History Museum is closed today.' }
        : { name: 'Opera', opens_at: '12:00', closes_at: '20:00', closed_today: false, text: 'Opera is open 12:00–20:00 today.' };
    expect(heard(runJourneysOp(journeys, { op: 'hours', user, place: 'lviv.history', ask: 'close' }))).toBe('History Museum is closed today.');
    expect(heard(runJourneysOp(journeys, { op: 'hours', user, place: 'lviv.opera', ask: 'close' }))).toBe('Opera closes at 20:00 today.');
  });

  it('skips and completes the stop it is told, by voice, never the next one when asked twice, and says what is next', () => {
    const { journeys, calls, state } = fakeJourneys();
    const here = runJourneysOp(journeys, { op: 'current', user });
    expect(here).toMatchObject({ node: 'rynok', title: 'Rynok Square' });
    expect(heard(runJourneysOp(journeys, { op: 'done', user, node: here.node }))).toBe('Done: Rynok Square. Walk 5 minutes to History Museum.');
    // The same step re-run (after a crash) names the same node: the history museum stays pending.
    runJourneysOp(journeys, { op: 'done', user, node: here.node });
    expect(state.get('history')!.state).toBe('pending');
    expect(heard(runJourneysOp(journeys, { op: 'skip', user, node: 'history' }), 'en')).toBe('Skipped: History Museum. Walk 5 minutes to Opera.');
    expect(heard(runJourneysOp(journeys, { op: 'done', user }))).toBe('You have completed the whole journey. Well done!');
    expect(calls).toEqual(['completed rynok', 'completed rynok', 'skipped history', 'completed opera']);
  });

  it('shows the pass that covers the current stop, or says it needs none or that the traveller holds none', () => {
    const without = fakeJourneys();
    expect(heard(runJourneysOp(without.journeys, { op: 'ticket', user }))).toBe('Rynok Square needs no ticket.');
    runJourneysOp(without.journeys, { op: 'done', user, node: 'rynok' });
    expect(heard(runJourneysOp(without.journeys, { op: 'ticket', user }))).toBe('You have no pass for History Museum yet: buy one on the Guide tab.');
    const covered = fakeJourneys({ covered: true });
    runJourneysOp(covered.journeys, { op: 'done', user, node: 'rynok' });
    const answer = runJourneysOp(covered.journeys, { op: 'ticket', user });
    expect(answer.ticket).toEqual({ serial: 'S-42', code: 'HC1:QR', node: 'history', title: 'Museum pass' });
    expect(heard(answer)).toBe('Here is your ticket for History Museum: show the QR code at the entrance.');
  });

  it('is reached by the engine\'s tool name; other tools go to the plugins, and a bad op is refused', async () => {
    const { journeys } = fakeJourneys();
    const seen: string[] = [];
    const runner = journeysToolRunner({ run: async (tool) => (seen.push(tool), { ok: tool }) }, () => journeys);
    const opts = { idempotency_key: 'k', trace_id: 't', now: 0, signal: new AbortController().signal };
    expect(await runner.run(JOURNEYS_TOOL, { op: 'next', user }, opts)).toMatchObject({ text: 'Walk 5 minutes to Rynok Square.' });
    expect(await runner.run('tool-weather', {}, opts)).toEqual({ ok: 'tool-weather' });
    expect(seen).toEqual(['tool-weather']);
    await expect(runner.run(JOURNEYS_TOOL, { op: 'teleport', user }, opts)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
