/**
 * Speech accuracy on real audio (issue 6 points 4–5): espeak-ng speaks English phrases to WAV (through
 * `Voice.say` into a file sink); each WAV goes through the file recorder (the microphone's framing and
 * resampling path), Silero VAD, pocketsphinx constrained by the grammar compiled from resources/intents/en.yaml,
 * and the intent recognizer. Asserted: ≥ 90 % end with the expected intent and exactly the expected slots.
 * Printed: accuracy and, per phrase, what was heard and the latencies.
 *
 * Phrases: every case of resources/intents/tests/en.yaml whose intent has sentences in the grammar (the
 * wildcard intents are text-only; the grammar reports them as skipped), plus test/fixtures/voice/phrases.en.yaml.
 * Also checked: every sentence the compiled grammar can produce is understood by the text recognizer, so
 * recognition is constrained to what the runtime understands.
 * The voice is espeak-ng's en-us with the Klatt variant, whose formant synthesis is the closest to natural speech
 * among espeak-ng's voices for the US English acoustic model.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecognizer, loadIntentCases, loadRuleSet, setListValues } from '../../main/runtime/intents/index.js';
import type { IntentCase, RuleSet } from '../../main/runtime/intents/index.js';
import { createFileRecorder, createFileSink, createVoice } from '../../main/runtime/voice/index.js';
import type { FileSink, VoiceStack } from '../../main/runtime/voice/index.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SPEAKER = 'en-us+klatt';

let rules: RuleSet;
let voice: VoiceStack;
let sink: FileSink;

beforeAll(async () => {
  rules = loadRuleSet(join(ROOT, 'resources/intents/en.yaml'));
  // The corpus's places ({place} is set at run time from the journeys in progress): in the grammar as at a kiosk.
  for (const [name, values] of Object.entries(loadIntentCases(join(ROOT, 'resources/intents/tests/en.yaml')).lists ?? {})) setListValues(rules, name, values);
  const dir = tempDir('tessera-voice-acc-', 'file');
  voice = await createVoice({ ruleSets: [rules], config: { cacheDir: join(dir, 'cache') } });
  sink = createFileSink(join(dir, 'sink'));
  const s = voice.status();
  // Real engines or nothing: these are installed by `npm run setup`.
  expect(s.tts, 'espeak-ng is needed').toMatchObject({ available: true });
  expect(s.stt, 'pocketsphinx is needed').toMatchObject({ available: true });
  expect(s.vad).toMatchObject({ available: true });
});

afterAll(async () => {
  await voice?.dispose();
});

const sameSlots = (a: Record<string, unknown>, b: Record<string, unknown>) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** A JSGF expression as the grammar compiler writes it (tokens separated by spaces). */
type Jsgf = { k: 'seq'; items: Jsgf[] } | { k: 'alt'; options: Jsgf[]; optional: boolean } | { k: 'word'; word: string } | { k: 'ref'; name: string };

/** Parse the rule bodies of a grammar written by ./grammar.ts: words, <refs>, ( | ), [ | ]. */
function parseJsgf(text: string): Map<string, Jsgf> {
  const rules = new Map<string, Jsgf>();
  for (const m of text.matchAll(/^(?:public )?<([^>]+)> = (.*);$/gm)) {
    const tokens = m[2]!.split(' ').filter(Boolean);
    let i = 0;
    const alt = (close?: string): Jsgf => {
      const options: Jsgf[] = [];
      let items: Jsgf[] = [];
      while (i < tokens.length) {
        const t = tokens[i++]!;
        if (t === close) break;
        if (t === '|') {
          options.push({ k: 'seq', items });
          items = [];
        } else if (t === '(') items.push(alt(')'));
        else if (t === '[') items.push({ ...(alt(']') as { k: 'alt'; options: Jsgf[] }), optional: true });
        else if (t.startsWith('<')) items.push({ k: 'ref', name: t.slice(1, -1) });
        else items.push({ k: 'word', word: t });
      }
      options.push({ k: 'seq', items });
      return { k: 'alt', options, optional: false };
    };
    rules.set(m[1]!, alt());
  }
  return rules;
}

/** A random sentence of `e`. */
function sample(e: Jsgf, rules: Map<string, Jsgf>, rnd: () => number): string[] {
  switch (e.k) {
    case 'word':
      return [e.word];
    case 'ref':
      return sample(rules.get(e.name)!, rules, rnd);
    case 'seq':
      return e.items.flatMap((x) => sample(x, rules, rnd));
    case 'alt': {
      if (e.optional && rnd() < 0.5) return [];
      return sample(e.options[Math.floor(rnd() * e.options.length)]!, rules, rnd);
    }
  }
}

describe('the speech grammar', () => {
  it('only produces sentences the intent recognizer understands (2,000 random sentences of the shipped rules)', () => {
    const jsgf = parseJsgf(voice.grammar!.jsgf);
    const text = createRecognizer(rules);
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const misses: string[] = [];
    const seen = new Set<string>();
    for (let n = 0; n < 2000; n++) {
      const sentence = sample(jsgf.get('utterance')!, jsgf, rnd).join(' ');
      seen.add(sentence);
      const got = text.recognize(sentence);
      if (!got || !voice.grammar!.intents.includes(got.intent)) misses.push(sentence);
    }
    expect(misses).toEqual([]);
    expect(seen.size).toBeGreaterThan(500);
  });
});

describe('speech recognition on espeak-ng audio', () => {
  it('recognizes at least 40 corpus phrases with ≥ 90 % intent-and-slot accuracy', async () => {
    const grammarIntents = new Set(voice.grammar!.intents);
    const corpus = loadIntentCases(join(ROOT, 'resources/intents/tests/en.yaml')).cases.filter((c) => c.intent !== null && grammarIntents.has(c.intent));
    const extra = loadIntentCases(join(ROOT, 'test/fixtures/voice/phrases.en.yaml')).cases;
    const phrases: IntentCase[] = [...corpus, ...extra];
    expect(phrases.length).toBeGreaterThanOrEqual(40);

    const text = createRecognizer(rules);
    const rows: Array<{ phrase: string; heard: string; ok: boolean; audio: number; firstAudio: number; vad: number; stt: number; total: number }> = [];
    for (const c of phrases) {
      // The phrase must be right as text first, so any miss below is a speech miss.
      const typed = text.recognize(c.text);
      expect(typed?.intent, c.text).toBe(c.intent);
      const said = await voice.say(c.text, { sink, voice: SPEAKER });
      const wav = sink.timeline[sink.timeline.length - 1]!.file;
      const heard = await voice.listen(createFileRecorder(wav), { timeoutMs: 30_000 });
      const got = heard.outcome === 'speech' ? text.recognize(heard.text) : null;
      const ok = got !== null && got.intent === c.intent && sameSlots(got.slots, c.slots);
      rows.push({ phrase: c.text, heard: heard.text, ok, audio: heard.timings.audio_ms, firstAudio: said.first_audio_ms, vad: heard.timings.vad_ms, stt: heard.timings.stt_ms, total: heard.timings.total_ms });
    }

    const correct = rows.filter((r) => r.ok).length;
    const accuracy = correct / rows.length;
    const f = (n: number) => n.toFixed(0).padStart(5);
    const lines = rows.map((r) => `${r.ok ? 'ok  ' : 'MISS'} ${f(r.audio)} ${f(r.firstAudio)} ${f(r.vad)} ${f(r.stt)} ${f(r.total)}  ${r.phrase}${r.ok ? '' : `  → heard "${r.heard}"`}`);
    const totals = rows.map((r) => r.total);
    const rtf = rows.reduce((a, r) => a + r.total, 0) / rows.reduce((a, r) => a + r.audio, 0);
    console.log(
      [
        `voice accuracy: ${correct}/${rows.length} = ${(accuracy * 100).toFixed(1)} % (voice ${SPEAKER}, grammar ${voice.grammar!.cid.slice(0, 15)}…)`,
        `listen latency ms: p50 ${pct(totals, 50).toFixed(0)}, p95 ${pct(totals, 95).toFixed(0)}; real-time factor ${rtf.toFixed(3)}`,
        '     audio  tts1st  vad   stt  total (ms)',
        ...lines,
      ].join('\n'),
    );
    expect(accuracy).toBeGreaterThanOrEqual(0.9);
  }, 180_000);
});
