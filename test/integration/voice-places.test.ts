/**
 * The `{place}` slot by voice (issue 15 point 5): the places of the journeys in progress are set into the intent
 * rules at run time and compiled into the speech grammar, and real speech (espeak-ng → WAV → the file recorder →
 * Silero VAD → pocketsphinx → the intent recognizer → the I/O router) is heard with them at once; a place no
 * journey has is heard as words and routed to the "unknown place" answer instead of being forced onto a place of
 * the list. The places come from an in-test source with the journeys module's two methods (`places`,
 * `onPlacesChange`); the runtime, router, scenarios and speech engines are the real ones.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JourneyLanguage } from '../../main/common/journeys.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import type { InputOutcome } from '../../main/runtime/io/index.js';
import { bindPlaceList } from '../../main/runtime/journeys/places.js';
import type { PlaceListBinding } from '../../main/runtime/journeys/places.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createFileRecorder, createFileSink, createVoice } from '../../main/runtime/voice/index.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

const RESOURCES = new URL('../../resources/', import.meta.url).pathname;
const SPEAKER = 'en-us+klatt';

let runtime: Runtime;
let dir: string;
let binding: PlaceListBinding;
let places: Array<{ id: string; names: Partial<Record<JourneyLanguage, string[]>> }> = [];
const listeners = new Set<() => void>();
const source = {
  places: () => places,
  onPlacesChange: (l: () => void) => (listeners.add(l), { dispose: () => void listeners.delete(l) }),
};
/** What the journeys module does when a journey starts or ends: new places, and a change event. */
const journeysChange = async (next: typeof places) => {
  places = next;
  for (const l of listeners) l();
  await binding.update();
};

const LVIV = [
  { id: 'lviv.opera', names: { en: ['Opera', 'opera house', 'Lviv Opera'], uk: ['Опера', 'опери'] } },
  { id: 'lviv.lychakiv', names: { en: ['Lychakiv Cemetery'] } },
  { id: 'lviv.rynok', names: { en: ['Rynok Square', 'market square'], ru: ['площадь Рынок'] } },
];

beforeAll(async () => {
  dir = tempDir('tessera-voice-places-', 'file');
  runtime = await createRuntime({
    dataDir: join(dir, 'data'),
    shell: 'headless',
    logger: createMemoryLogger(),
    scenarioDirs: [join(RESOURCES, 'scenarios')],
    builtinTrustDir: join(RESOURCES, 'trust'), // the shipped scenarios are signed by the built-in dev key (issue 18)
    intentRuleFiles: ['en', 'ru', 'uk'].map((l) => join(RESOURCES, 'intents', `${l}.yaml`)),
    voice: async (ruleSets) => ({ voice: await createVoice({ ruleSets, config: { cacheDir: join(dir, 'voice') } }), sink: createFileSink(join(dir, 'sink')) }),
  });
  binding = bindPlaceList({ source, ruleSets: runtime.intents.recognizer.ruleSets, refreshGrammar: () => runtime.io.refreshGrammar() });
  // The speech stack is built while the runtime starts: wait for it (the first listen would, too).
  for (let i = 0; i < 1200 && !runtime.io.status().in.voice.available; i++) await new Promise((r) => setTimeout(r, 50));
  expect(runtime.io.status().in.voice.available).toBe(true);
  await binding.update();
}, 120_000);

afterAll(async () => {
  await binding?.dispose();
  await runtime?.close();
}, 30_000);

let n = 0;
/** Say `text` (espeak-ng) into the kiosk: what the router made of it. */
async function speak(text: string): Promise<{ heard: string; outcome: InputOutcome | undefined }> {
  const wav = join(dir, `utterance-${++n}.wav`);
  execFileSync('espeak-ng', ['-v', SPEAKER, '-w', wav, '--', text]);
  const { listen, outcome } = await runtime.io.hear(createFileRecorder(wav));
  if (outcome?.kind === 'intent' && outcome.run_id) await runtime.scenarios.wait(outcome.run_id, 20_000);
  return { heard: listen.text, outcome };
}
const sttEngine = () => runtime.io.status().voice!.stt.engine ?? '';

describe('the {place} slot by voice', () => {
  it('hears the places of the journeys once they start, with the grammar recompiled, and not before', async () => {
    const before = await speak('how do I get to the opera');
    expect(before.outcome).not.toMatchObject({ slots: { place: 'lviv.opera' } });
    const grammarBefore = sttEngine();

    await journeysChange(LVIV);
    expect(sttEngine()).not.toBe(grammarBefore);
    expect((await speak('how do I get to the opera')).outcome).toMatchObject({ kind: 'intent', intent: 'journey.route', slots: { place: 'lviv.opera' } });
    expect((await speak('how do I get to the opera house')).outcome).toMatchObject({ kind: 'intent', intent: 'journey.route', slots: { place: 'lviv.opera' } });
    // A name the pronunciation dictionary lacks: espeak-ng spelled it for the grammar.
    expect((await speak('when does lychakiv cemetery close')).outcome).toMatchObject({ kind: 'intent', intent: 'journey.hours', slots: { place: 'lviv.lychakiv', ask: 'close' } });
    expect((await speak('take me to rynok square')).outcome).toMatchObject({ kind: 'intent', intent: 'journey.route', slots: { place: 'lviv.rynok' } });
    // The text recognizer got the Russian and Ukrainian names at the same moment.
    expect(await runtime.io.input('как добраться до площадь Рынок')).toMatchObject({ kind: 'intent', slots: { place: 'lviv.rynok' } });
    expect(await runtime.io.input('як дістатися до опери')).toMatchObject({ kind: 'intent', slots: { place: 'lviv.opera' } });
  }, 180_000);

  it('hears a place on no journey as the words said, for the "unknown place" answer, not as the nearest place', async () => {
    await journeysChange(LVIV);
    for (const [text, name] of [
      ['how do I get to the eiffel tower', 'the eiffel tower'],
      ['how do I get to buckingham palace', 'buckingham palace'],
    ] as const) {
      const { heard, outcome } = await speak(text);
      expect([heard, outcome]).toMatchObject([text.toLowerCase(), { kind: 'intent', intent: 'journey.route', slots: { place_name: name } }]);
    }
  }, 120_000);

  it('forgets the places of journeys that ended: the grammar and the recognizer drop them', async () => {
    await journeysChange(LVIV);
    const withPlaces = sttEngine();
    await journeysChange([]);
    expect(sttEngine()).not.toBe(withPlaces);
    expect((await speak('when does lychakiv cemetery close')).outcome).not.toMatchObject({ slots: { place: 'lviv.lychakiv' } });
    expect(await runtime.io.input('when does the opera close')).toMatchObject({ kind: 'intent', intent: 'journey.hours', slots: { place_name: 'the opera' } });
    // The same places again: the grammar compiled for them before is taken from the cache.
    await journeysChange(LVIV);
    expect(sttEngine()).toBe(withPlaces);
  }, 120_000);
});

describe('speech heard while a question listens', () => {
  it('is decided by what the question expects: a request starts its intent and the question stays open', async () => {
    const here = tempDir('tessera-voice-expects-', 'file');
    // The microphone hears a request (a name cannot be heard by pocketsphinx: names are in no grammar).
    const heard = ['what comes next'].map((text, i) => {
      const wav = join(here, `mic-${i}.wav`);
      execFileSync('espeak-ng', ['-v', SPEAKER, '-w', wav, '--', text]);
      return wav;
    });
    let turn = 0;
    const kiosk = await createRuntime({
      dataDir: join(here, 'data'),
      shell: 'headless',
      logger: createMemoryLogger(),
      scenarioDirs: [join(RESOURCES, 'scenarios')],
      builtinTrustDir: join(RESOURCES, 'trust'), // the shipped scenarios are signed by the built-in dev key (issue 18)
      intentRuleFiles: [join(RESOURCES, 'intents', 'en.yaml')],
      io: { in: ['voice'], out: ['ui'] },
      voice: async (ruleSets) => ({ voice: await createVoice({ ruleSets, config: { cacheDir: join(here, 'voice') } }), microphone: () => createFileRecorder(heard[Math.min(turn++, heard.length - 1)]!) }),
    });
    try {
      kiosk.scenarios.register(scenario('ask_who', [{ name: 'ask', action: 'io.ask', with: { prompt: 'Who are you?', timeout: 60_000, expects: 'name' }, output: 'answer' }]));
      const run = kiosk.scenarios.run('ask_who', {});
      // What is heard is a request: it runs journey_next_step, and the question stays open (typed or push-to-talk).
      await expect.poll(() => kiosk.journal.query({ topic: 'io.input', limit: 10 }).events.map((e) => (e.payload as { kind: string; intent?: string }).intent ?? (e.payload as { kind: string }).kind), { timeout: 60_000 }).toContain('journey.next_step');
      const first = kiosk.journal.query({ topic: 'io.input', limit: 10 }).events[0]!.payload;
      expect(first).toMatchObject({ kind: 'intent', channel: 'voice', intent: 'journey.next_step', question_left_open: { run_id: run, step: 'ask' } });
      expect(kiosk.io.status().questions).toMatchObject([{ run_id: run, step: 'ask', expects: 'name' }]);
    } finally {
      await kiosk.close();
    }
  }, 120_000);
});
