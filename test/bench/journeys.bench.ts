/**
 * The Journey Guide answering "what's next?" (issue 15 "Benchmark"), on a real runtime: SQLite file, the shipped
 * catalogue, journey and city package, the sandbox's preflight plugins, the intent rules, the scenario engine,
 * tool-journeys and the I/O router with its locks.
 *
 * - Typed: text in (`io.input`) to the answer out on the traveller's screen (a ui client attached to the router),
 *   p95. Target ≤ 50 ms. Baselines in the same run: the journeys module's `next()` alone (what the answer is made
 *   of), and the same utterance only recognized (rules → intent).
 * - Spoken: end of speech to the first audio of the answer, p95. A WAV espeak-ng spoke ("what's next") is read at
 *   the pace of a microphone through the real VAD and pocketsphinx (`io.hear`); the answer is synthesized by
 *   espeak-ng and "played" into WAV files (no sound card here). End of speech is where the words end in the file;
 *   first audio is when the answer's synthesis produced its first bytes. The kiosk's input is the talk button
 *   (push-to-talk in the browser and in Electron): the capture ends when it is released, here 100 ms after the last
 *   word. Target ≤ 700 ms. Baselines: recognition alone on the same audio (end of speech → transcript), the same
 *   question typed to its first audio, and hands-free listening, where the VAD waits for ~0.77 s of silence.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_CATALOGUE_DIR, BUILTIN_CITY_DIR, BUILTIN_INTENT_FILES, BUILTIN_JOURNEYS_DIR, BUILTIN_PLUGINS_DIR, BUILTIN_SCENARIOS_DIR, BUILTIN_TRUST_DIR } from '../../main/host/paths.js';
import { createDefaultVoice } from '../../main/runtime/io/index.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createFileRecorder, createVoice, durationMs, parseWav } from '../../main/runtime/voice/index.js';
import type { VoiceStack } from '../../main/runtime/voice/index.js';
import type { AnyBenchmark, AsyncSide, FigureSide } from './harness.js';

const QUESTION = "what's next";
const SPOKEN_SAMPLES = 8;

interface World {
  dir: string;
  runtime: Runtime;
  session: string;
  journey: string;
  /** The answers the traveller's screen received, by run id. */
  shown: Map<string, number>;
  /** The question with silence after it, for the VAD to end (hands-free). */
  wav: string;
  /** The question ending 100 ms after its last word, as a released talk button ends the capture. */
  ptt: string;
  /** Where the words end in both files, ms. */
  speechEndMs: number;
}

let world: Promise<World> | undefined;

function setup(): Promise<World> {
  world ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-journeys-'));
    const runtime = await createRuntime({
      dataDir: dir,
      shell: 'headless',
      logger: createMemoryLogger(),
      builtinTrustDir: BUILTIN_TRUST_DIR,
      pluginDirs: [BUILTIN_PLUGINS_DIR],
      catalogueDirs: [BUILTIN_CATALOGUE_DIR],
      journeyDirs: [BUILTIN_JOURNEYS_DIR],
      cityDirs: [BUILTIN_CITY_DIR],
      scenarioDirs: [BUILTIN_SCENARIOS_DIR],
      intentRuleFiles: BUILTIN_INTENT_FILES,
      voice: (rules) => createDefaultVoice(rules, { dataDir: dir, logger: createMemoryLogger(), config: { audioOutDir: join(dir, 'said') } }),
    });
    await runtime.ledger.topUp({ wallet_id: 'main', amount: 1_000_000, currency: 'UAH', idempotency_key: 'bench-topup' });
    // On a kiosk the traveller is the dialogue session.
    const session = runtime.io.startSession().session.id;
    let bought;
    for (let i = 0; ; i++) {
      bought = await runtime.sessions.create({ product: 'city.museum-pass-48h', user_id: session, wallet_id: 'main', market: 'UA', city: 'lviv' });
      if (bought.state === 'preflight_ok' || i > 5) break;
    }
    const paid = await runtime.sessions.pay(bought.product_runtime_session_id);
    const journey = runtime.journeys.start({ session: paid.product_runtime_session_id });
    // First stop done: "what's next" is a walk on the city package to the History Museum.
    runtime.journeys.complete(journey.journey_instance_id, journey.current!);
    const shown = new Map<string, number>();
    runtime.io.attachUi({ send: (m) => m.type === 'say' && m.message.run_id !== null && shown.set(m.message.run_id, performance.now()), session: () => session });
    await runtime.io.refreshGrammar();
    const raw = join(dir, 'raw.wav');
    const words = join(dir, 'words.wav');
    execFileSync('espeak-ng', ['-v', 'en-us+klatt', '-w', raw, '--', QUESTION]);
    // The words alone: espeak-ng's trailing silence trimmed, so that "end of speech" is where the words end.
    execFileSync('sox', [raw, '-r', '16000', '-c', '1', '-b', '16', words, 'reverse', 'silence', '1', '0.02', '0.5%', 'reverse']);
    const speechEndMs = 500 + durationMs(parseWav(readFileSync(words)));
    // Hands-free: half a second before the words, a second and a half after (the VAD ends the utterance on silence).
    const wav = join(dir, 'hands-free.wav');
    execFileSync('sox', [words, wav, 'pad', '0.5', '1.5']);
    // Push-to-talk (the kiosk's talk button): the button is released 100 ms after the last word, ending the capture.
    const ptt = join(dir, 'push-to-talk.wav');
    execFileSync('sox', [words, ptt, 'pad', '0.5', '0.1']);
    return { dir, runtime, session, journey: journey.journey_instance_id, shown, wav, ptt, speechEndMs };
  })();
  return world;
}

/** Resolves when the run `runId` put its answer on the traveller's screen; answers the time (performance.now). */
async function answered(w: World, runId: string): Promise<number> {
  for (;;) {
    const at = w.shown.get(runId);
    if (at !== undefined) return at;
    await new Promise((r) => setImmediate(r));
  }
}

const typed: AsyncSide = {
  name: 'typed "what\'s next?": io.input → intent → journey_next_step → tool-journeys → answer on the screen',
  async setup() {
    const w = await setup();
    return {
      async run() {
        const outcome = await w.runtime.io.input(QUESTION, { session: w.session, channel: 'text' });
        if (outcome.kind !== 'intent' || !outcome.run_id) throw new Error(`not understood: ${JSON.stringify(outcome)}`);
        await answered(w, outcome.run_id);
      },
    };
  },
};

const nextAlone: AsyncSide = {
  name: 'baseline: journeys.next() alone (route on the package, the sentence)',
  async setup() {
    const w = await setup();
    return { run: () => w.runtime.journeys.next(w.journey) };
  },
};

const recognizeAlone: AsyncSide = {
  name: 'baseline: the utterance recognized only (rules → intent)',
  async setup() {
    const w = await setup();
    return { run: () => w.runtime.intents.recognizer.recognize(QUESTION) };
  },
};

/** Wall ms from `start` to `io.voice.speaking` + its synthesis' first audio, for the answer of run `runId`. */
function firstAudio(w: World, runId: () => string | null): Promise<number> {
  return new Promise((resolve) => {
    let speakingAt: number | undefined;
    const subs = [
      w.runtime.bus.subscribe('io.voice.speaking', (e) => {
        if ((e.payload as { run_id?: string }).run_id === runId()) speakingAt = performance.now();
      }),
      w.runtime.bus.subscribe('io.voice.spoken', (e) => {
        const p = e.payload as { run_id?: string; first_audio_ms: number };
        if (p.run_id !== runId() || speakingAt === undefined) return;
        for (const s of subs) void s.dispose();
        resolve(speakingAt + p.first_audio_ms);
      }),
    ];
  });
}

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(0.95 * xs.length) - 1)]!;

/** End of speech → first audio of the answer, spoken at a microphone's pace; p95 over the samples. */
const spokenSide = (mode: 'ptt' | 'wav', name: string): FigureSide => ({
  name,
  async measure() {
    const w = await setup();
    const ms: number[] = [];
    for (let i = 0; i < SPOKEN_SAMPLES; i++) {
      let run: string | null = null;
      const audio = firstAudio(w, () => run);
      const start = performance.now();
      const heard = await w.runtime.io.hear(createFileRecorder(w[mode], { realtime: 1 }), { session: w.session, channel: 'voice' });
      const outcome = heard.outcome;
      if (!outcome || outcome.kind !== 'intent' || !outcome.run_id) throw new Error(`not understood: ${JSON.stringify(heard)}`);
      run = outcome.run_id;
      ms.push((await audio) - (start + w.speechEndMs));
      await w.runtime.io.idle();
    }
    return p95(ms);
  },
});

const spoken = spokenSide('ptt', 'spoken "what\'s next" with the talk button: end of speech → first audio of the answer (button released 100 ms after the last word; VAD, pocketsphinx, intent, scenario, espeak-ng)');
const handsFree = spokenSide('wav', 'spoken "what\'s next" hands-free: end of speech → first audio (the VAD ends the utterance after ~0.77 s of silence)');

let listener: Promise<VoiceStack> | undefined;

const recognitionOnly: FigureSide = {
  name: 'baseline: end of speech → transcript (the same push-to-talk audio at a microphone\'s pace, VAD + pocketsphinx only)',
  async measure() {
    const w = await setup();
    // A second speech stack with the same rules and places: the router's is busy with the candidate's runs.
    listener ??= createVoice({ ruleSets: w.runtime.intents.recognizer.ruleSets, config: { cacheDir: join(w.dir, 'voice-baseline') } });
    const voice = await listener;
    const ms: number[] = [];
    for (let i = 0; i < SPOKEN_SAMPLES; i++) {
      const start = performance.now();
      const heard = await voice.listen(createFileRecorder(w.ptt, { realtime: 1 }));
      if (heard.outcome !== 'speech') throw new Error(`not heard: ${JSON.stringify(heard)}`);
      ms.push(performance.now() - (start + w.speechEndMs));
    }
    return p95(ms);
  },
};

const typedToAudio: FigureSide = {
  name: 'baseline: the same question typed, to the first audio of its answer (asked on the voice channel)',
  async measure() {
    const w = await setup();
    const ms: number[] = [];
    for (let i = 0; i < SPOKEN_SAMPLES; i++) {
      let run: string | null = null;
      const audio = firstAudio(w, () => run);
      const start = performance.now();
      const outcome = await w.runtime.io.input(QUESTION, { session: w.session, channel: 'voice' });
      if (outcome.kind !== 'intent' || !outcome.run_id) throw new Error(`not understood: ${JSON.stringify(outcome)}`);
      run = outcome.run_id;
      ms.push((await audio) - start);
      await w.runtime.io.idle();
    }
    return p95(ms);
  },
};

const typedP95: FigureSide = {
  name: 'typed "what\'s next?": text in → answer on the screen, p95 of 200',
  async measure() {
    const side = await typed.setup();
    const ms: number[] = [];
    for (let i = 0; i < 220; i++) {
      const start = performance.now();
      await side.run();
      if (i >= 20) ms.push(performance.now() - start);
    }
    return p95(ms);
  },
};

const nextP95: FigureSide = {
  name: 'baseline: journeys.next() alone, p95 of 200',
  async measure() {
    const w = await setup();
    const ms: number[] = [];
    for (let i = 0; i < 220; i++) {
      const start = performance.now();
      w.runtime.journeys.next(w.journey);
      if (i >= 20) ms.push(performance.now() - start);
    }
    return p95(ms);
  },
};

export const benchmarks: AnyBenchmark[] = [
  { kind: 'latency', name: 'journey guide: "what\'s next?" typed, text in → answer out', samples: 200, warmup: 20, candidate: typed, baselines: [nextAlone, recognizeAlone] },
  { kind: 'figure', name: 'journey guide: "what\'s next?" typed, p95', unit: 'ms', candidate: typedP95, baselines: [nextP95], target: { max: 50 } },
  { kind: 'figure', name: 'journey guide: "what\'s next" spoken, end of speech → first audio, p95', unit: 'ms', candidate: spoken, baselines: [recognitionOnly, typedToAudio, handsFree], target: { max: 700 } },
];

export async function dispose(): Promise<void> {
  if (!world) return;
  const w = await world;
  if (listener) await (await listener).dispose();
  await w.runtime.close();
  rmSync(w.dir, { recursive: true, force: true });
}
