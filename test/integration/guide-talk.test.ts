/**
 * Talking to the Journey Guide (issue 15 point 5) with every real part: the headless host's runtime with the shipped
 * signed catalogue, journey document and city package, the preflight plugins in the real sandbox, the shipped
 * intent rules (en, ru, uk), scenarios and message catalogue, the I/O router, and the journeys module behind the
 * built-in tool-journeys. A traveller of a dialogue session asks before and after buying the pass: what's next, how
 * to get to a place of the journey (by its name in any language, in a case form the document does not list) and to
 * one that is on no journey, when a place closes, for the ticket; then says "I'm done here" and "skip this".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import type { UiMessage } from '../../main/runtime/io/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';

let host: RunningHost;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-guide-talk-'));
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
  await host.runtime.ledger.topUp({ wallet_id: 'main', amount: 10_000_000, currency: 'UAH', idempotency_key: 'guide-talk-topup' });
}, 120_000);

afterAll(async () => {
  await host?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A traveller at the kiosk: what they are told, one utterance at a time. */
function traveller() {
  const rt = host.runtime;
  const session = rt.io.startSession().session.id;
  const said: string[] = [];
  const ui = rt.io.attachUi({ send: (m: UiMessage) => void (m.type === 'say' && said.push(m.message.text)), session: () => session });
  const ask = async (text: string) => {
    const before = said.length;
    const outcome = await rt.io.input(text, { session });
    if (outcome.kind === 'intent' && outcome.run_id) expect((await rt.scenarios.wait(outcome.run_id, 20_000)).state).toBe('completed');
    await rt.io.idle();
    return { outcome, said: said.slice(before) };
  };
  return { session, ask, dispose: () => ui.dispose() };
}

/** Buys the 48-hour museum pass for `user` and starts the journey it names. */
async function startJourney(user: string) {
  const rt = host.runtime;
  const created = await rt.sessions.create({ product: 'city.museum-pass-48h', user_id: user, wallet_id: 'main', idempotency_key: `guide-talk-${user}` });
  const paid = await rt.sessions.pay(created.product_runtime_session_id);
  expect(paid.state).toBe('active');
  return rt.journeys.start({ session: created.product_runtime_session_id });
}

describe('talking to the Journey Guide', () => {
  it('says how to get a journey to a traveller without one, and that {place} holds no place yet', async () => {
    const t = traveller();
    expect((await t.ask("what's next?")).said).toEqual(['You have no journey yet: buy a pass and start it on the Guide tab.']);
    expect((await t.ask('як дістатися до опери')).said).toEqual(['У вас ще немає маршруту: купіть перепустку й запустіть маршрут на вкладці «Гід».']);
    t.dispose();
  });

  it('answers the journey intents from the traveller\'s journey, in the language asked, and fills {place} from it', async () => {
    const t = traveller();
    const journey = await startJourney(t.session);
    // The journey's places reached the {place} slot as it started.
    const places = host.runtime.journeys.places().map((p) => p.id);
    const opera = journey.nodes.find((n) => n.place.name.includes('Opera'))!.place;
    expect(places).toContain(opera.id);

    const next = await t.ask("what's next?");
    expect(next.outcome).toMatchObject({ kind: 'intent', intent: 'journey.next_step' });
    expect(next.said).toEqual([host.runtime.journeys.next(journey.journey_instance_id, { language: 'en' }).text]);

    const route = await t.ask('how do I get to the opera');
    expect(route.outcome).toMatchObject({ intent: 'journey.route', slots: { place: opera.id } });
    expect(route.said).toEqual([expect.stringMatching(new RegExp(`^To ${opera.name}: about \\d+ minutes?\\. `))]);

    // A case form the document does not list: free text, found by its stem, answered in Ukrainian.
    const uk = await t.ask('як дістатися до опери');
    expect(uk.said).toEqual([expect.stringMatching(/^До місця «[^»]*опера» приблизно \d+ хвилин/)]);

    const eiffel = await t.ask('how do I get to the Eiffel Tower');
    expect(eiffel.outcome).toMatchObject({ intent: 'journey.route', slots: { place_name: 'the Eiffel Tower' } });
    expect(eiffel.said).toEqual([expect.stringMatching(new RegExp(`^I don't know a place called "the Eiffel Tower" on your journey; your stops are .*${opera.name}`))]);

    const history = journey.nodes.find((n) => n.place.id === 'lviv.history')!;
    const hours = await t.ask('when does the history museum close');
    expect(hours.outcome).toMatchObject({ intent: 'journey.hours', slots: { place: 'lviv.history', ask: 'close' } });
    const today = host.runtime.journeys.place(journey.journey_instance_id, 'lviv.history', { language: 'en' });
    expect(hours.said).toEqual([today.closed_today || today.closes_at === null ? today.text : `${history.place.name} closes at ${today.closes_at} today.`]);

    const first = journey.nodes.find((n) => n.id === journey.current)!;
    expect((await t.ask('show my ticket')).said).toEqual([first.needs ? expect.any(String) : `${first.title} needs no ticket.`]);

    // "I'm done here" completes the stop the traveller is at (by voice), and says what is next.
    const done = await t.ask("I'm done here");
    expect(done.said).toEqual([expect.stringMatching(new RegExp(`^Done: ${first.title}\\. `))]);
    const after = host.runtime.journeys.get(journey.journey_instance_id);
    expect(after.nodes.find((n) => n.id === first.id)).toMatchObject({ state: 'completed', by: 'voice' });
    const second = after.nodes.find((n) => n.id === after.current)!;
    const skipped = await t.ask('skip this');
    expect(skipped.said).toEqual([expect.stringMatching(new RegExp(`^Skipped: ${second.title}\\. `))]);
    expect(host.runtime.journeys.get(journey.journey_instance_id).nodes.find((n) => n.id === second.id)).toMatchObject({ state: 'skipped', by: 'voice' });

    // Asked in Russian, answered in Russian from the same journey.
    expect((await t.ask('что дальше')).said).toEqual([host.runtime.journeys.next(journey.journey_instance_id, { language: 'ru' }).text]);
    t.dispose();
  }, 120_000);
});
