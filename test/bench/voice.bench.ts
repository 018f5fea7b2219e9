/**
 * Voice (issue 6 point 8): recognition real-time factor and latency of the grammar engine (file recorder →
 * Silero VAD → pocketsphinx with the grammar compiled from resources/intents/en.yaml) over espeak-ng phrases,
 * against pocketsphinx_continuous run directly on the same audio with the same grammar; and espeak-ng's
 * time to first audio through the TTS engine against espeak-ng spawned by hand. Targets on this machine:
 * real-time factor ≤ 0.2, TTS first audio ≤ 100 ms.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadIntentCases, loadRuleSet } from '../../main/runtime/intents/index.js';
import { createFileRecorder, createVoice, durationMs, encodeWav } from '../../main/runtime/voice/index.js';
import type { VoiceStack } from '../../main/runtime/voice/index.js';
import { DECODER_ARGS } from '../../main/runtime/voice/pocketsphinx.js';
import type { AnyBenchmark, AsyncSide, FigureSide } from './harness.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SPEAKER = 'en-us+klatt';
/** Phrases per pass: enough for a p95, short enough for a quick run. */
const PHRASES = 20;

interface Phrase {
  text: string;
  /** espeak-ng's WAV (22 050 Hz), what the candidate reads. */
  wav: string;
  /** The same audio converted by sox to 16 kHz mono, what the raw baseline reads. */
  wav16: string;
  audioMs: number;
}

interface Shared {
  dir: string;
  voice: VoiceStack;
  phrases: Phrase[];
}

let shared: Promise<Shared> | undefined;

function setup(): Promise<Shared> {
  shared ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-voice-'));
    const rules = loadRuleSet(join(ROOT, 'resources/intents/en.yaml'));
    const voice = await createVoice({ ruleSets: [rules], config: { cacheDir: join(dir, 'cache') } });
    if (!voice.stt || !voice.tts || !voice.grammar) throw new Error(`voice is not available here: ${JSON.stringify(voice.status())}`);
    const intents = new Set(voice.grammar.intents);
    const texts = loadIntentCases(join(ROOT, 'resources/intents/tests/en.yaml'))
      .cases.filter((c) => c.intent !== null && intents.has(c.intent))
      .slice(0, PHRASES)
      .map((c) => c.text);
    const phrases: Phrase[] = [];
    for (const [i, text] of texts.entries()) {
      const { wav } = await voice.tts.synthesize(text, { voice: SPEAKER });
      const file = join(dir, `p${i}.wav`);
      const file16 = join(dir, `p${i}-16k.wav`);
      writeFileSync(file, encodeWav(wav));
      execFileSync('sox', [file, '-r', '16000', '-c', '1', '-b', '16', file16]);
      phrases.push({ text, wav: file, wav16: file16, audioMs: durationMs(wav) });
    }
    return { dir, voice, phrases };
  })();
  return shared;
}

/** Runs a program to completion; resolves with the wall time in ms. */
function timed(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

/** Wall time of each phrase through `listen` (the candidate) or pocketsphinx_continuous alone (baselines). */
async function pass(kind: 'listen' | 'raw' | 'raw-default'): Promise<{ ms: number[]; audioMs: number }> {
  const { voice, phrases } = await setup();
  const ms: number[] = [];
  let audioMs = 0;
  for (const p of phrases) {
    audioMs += p.audioMs;
    if (kind === 'listen') {
      ms.push((await voice.listen(createFileRecorder(p.wav))).timings.total_ms);
    } else {
      const g = voice.grammar!;
      const args = ['-infile', p.wav16, '-jsgf', g.jsgfFile, '-dict', g.dictFile, '-hmm', voice.tools.sphinxModel!.hmm, '-logfn', '/dev/null', ...(kind === 'raw' ? DECODER_ARGS : [])];
      ms.push(await timed(voice.tools.pocketsphinx!, args));
    }
  }
  return { ms, audioMs };
}

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(0.95 * xs.length) - 1)]!;

const SIDES: Array<{ name: string; kind: 'listen' | 'raw' | 'raw-default' }> = [
  { name: 'listen(): file recorder → Silero VAD → pocketsphinx (rules grammar)', kind: 'listen' },
  { name: 'pocketsphinx_continuous alone, same grammar and decoder settings', kind: 'raw' },
  { name: 'pocketsphinx_continuous alone, same grammar, default decoder settings', kind: 'raw-default' },
];

const rtfSide = (s: (typeof SIDES)[number]): FigureSide => ({
  name: s.name,
  async measure() {
    const { ms, audioMs } = await pass(s.kind);
    return ms.reduce((a, b) => a + b, 0) / audioMs;
  },
});

const p95Side = (s: (typeof SIDES)[number]): FigureSide => ({
  name: s.name,
  async measure() {
    return p95((await pass(s.kind)).ms);
  },
});

/** One utterance per `run()`, cycling through the phrases. */
const latencySide = (s: (typeof SIDES)[number]): AsyncSide => ({
  name: s.name,
  async setup() {
    const { voice, phrases } = await setup();
    let i = 0;
    return {
      async run() {
        const p = phrases[i++ % phrases.length]!;
        if (s.kind === 'listen') return voice.listen(createFileRecorder(p.wav));
        const g = voice.grammar!;
        return timed(voice.tools.pocketsphinx!, ['-infile', p.wav16, '-jsgf', g.jsgfFile, '-dict', g.dictFile, '-hmm', voice.tools.sphinxModel!.hmm, '-logfn', '/dev/null', ...(s.kind === 'raw' ? DECODER_ARGS : [])]);
      },
    };
  },
});

const SENTENCES = ['Hello, welcome to Tessera.', 'Your timer for five minutes has started.', 'The weather in Berlin is sunny.', 'Please continue to the next step.', 'Your voucher was redeemed.'];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Spawn espeak-ng writing WAV to stdout; ms until its first stdout bytes. */
function espeakFirstByte(bin: string, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let first: number | undefined;
    const child = spawn(bin, ['--stdout', text], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.on('data', () => (first ??= performance.now() - start));
    child.on('error', reject);
    child.on('close', () => (first === undefined ? reject(new Error('espeak-ng wrote nothing')) : resolve(first)));
  });
}

export const benchmarks: AnyBenchmark[] = [
  {
    kind: 'figure',
    name: 'voice: recognition real-time factor (wall time ÷ audio time)',
    unit: '×',
    candidate: rtfSide(SIDES[0]!),
    baselines: SIDES.slice(1).map(rtfSide),
    target: { max: 0.2 },
  },
  {
    kind: 'latency',
    name: 'voice: one utterance recognized (espeak-ng phrase, ~1–2 s of audio)',
    samples: PHRASES,
    warmup: 2,
    candidate: latencySide(SIDES[0]!),
    baselines: SIDES.slice(1).map(latencySide),
  },
  {
    kind: 'figure',
    name: 'voice: recognition latency p95 per utterance',
    unit: 'ms',
    candidate: p95Side(SIDES[0]!),
    baselines: SIDES.slice(1).map(p95Side),
  },
  {
    kind: 'figure',
    name: 'voice: TTS time to first audio (espeak-ng), median of 5 sentences',
    unit: 'ms',
    candidate: {
      name: 'TtsEngine.synthesize (validation, stdin, first stdout bytes)',
      async measure() {
        const { voice } = await setup();
        const firsts: number[] = [];
        for (const text of SENTENCES) firsts.push((await voice.tts!.synthesize(text)).first_audio_ms);
        return median(firsts);
      },
    },
    baselines: [
      {
        name: 'espeak-ng --stdout TEXT spawned directly: first stdout bytes',
        async measure() {
          const { voice } = await setup();
          const firsts: number[] = [];
          for (const text of SENTENCES) firsts.push(await espeakFirstByte(voice.tools.espeak!, text));
          return median(firsts);
        },
      },
      {
        name: 'espeak-ng -w /dev/null TEXT: whole synthesis',
        async measure() {
          const { voice } = await setup();
          const all: number[] = [];
          for (const text of SENTENCES) all.push(await timed(voice.tools.espeak!, ['-w', '/dev/null', text]));
          return median(all);
        },
      },
    ],
    target: { max: 100 },
  },
];

export async function dispose(): Promise<void> {
  if (!shared) return;
  const { dir, voice } = await shared;
  await voice.dispose();
  rmSync(dir, { recursive: true, force: true });
}
