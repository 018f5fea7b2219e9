/**
 * `createVoice`: the voice stack as one object for the I/O router (issue 6 points 3–4). It never fails for a
 * missing part: each part's status says whether it works and, if not, why and what fixes it, so the runtime
 * starts with voice disabled and the router degrades to text (seed 001 §3).
 *
 * Choice of engines: TTS by platform (./tts.ts); STT `whisper` when a model folder is configured and loads,
 * otherwise `pocketsphinx` with the rules' grammar (config `stt: 'auto'`); VAD Silero. The caller holds the
 * `mic`/`tts` locks around `listen`/`say`.
 */
import { TesseraError } from '../../common/errors.js';
import type { RuleSet } from '../intents/index.js';
import type { Logger } from '../log/index.js';
import type { VoiceTools } from './detect.js';
import { detectVoiceTools } from './detect.js';
import type { GrammarFiles } from './grammar.js';
import { createPocketsphinxStt, sphinxMissing } from './pocketsphinx.js';
import { nowMs } from './proc.js';
import { createMicRecorder, micStatus } from './recorder.js';
import { createFileSink, createPlayerSink, speakerStatus } from './sink.js';
import { createTtsEngine } from './tts.js';
import { SPEECH_SAMPLE_RATE } from './types.js';
import type { AudioSink, ListenResult, PartStatus, Recorder, SayResult, SttEngine, TtsEngine, Vad, Voice, VoiceStatus } from './types.js';
import type { SileroOptions } from './vad.js';
import { createSileroVad, vadStatus } from './vad.js';
import type { TransformersImporter } from './whisper.js';
import { createWhisperStt } from './whisper.js';
import { durationMs } from './wav.js';

/** Voice settings (from the runtime's configuration). */
export interface VoiceConfig {
  /** Where compiled grammars are cached, e.g. `<data>/voice`. */
  cacheDir: string;
  /** `auto` (default): Whisper when `whisperModelDir` is set and loads, else pocketsphinx; `off` disables STT. */
  stt?: 'auto' | 'pocketsphinx' | 'whisper' | 'off';
  /** A transformers.js Whisper export (folder with config.json and onnx/). */
  whisperModelDir?: string;
  /** Default TTS voice (validated against the engine's list) and rate (words per minute). */
  ttsVoice?: string;
  ttsRate?: number;
  vad?: SileroOptions;
  /** Default for {@link ListenOptions.timeoutMs}. */
  listenTimeoutMs?: number;
  /**
   * Speech output written as WAV files (`0001.wav`, …, in real time) into this folder instead of played: a device
   * with no sound card that records what it says (`TESSERA_AUDIO_OUT`), e.g. for tests and benchmarks.
   */
  audioOutDir?: string;
}

export interface CreateVoiceOptions {
  /** The intent rule sets; the English ones become the pocketsphinx grammar. */
  ruleSets: readonly RuleSet[];
  config: VoiceConfig;
  logger?: Logger;
  /** What the machine has (default: {@link detectVoiceTools}); a parameter for tests. */
  tools?: VoiceTools;
  /** Where `say` plays when the caller names no sink (default: the system player). */
  sink?: AudioSink;
  /** Loads transformers.js (default: dynamic import); a parameter for tests. */
  importTransformers?: TransformersImporter;
}

/** A {@link Voice} with its engines exposed for diagnostics and benchmarks. */
export interface VoiceStack extends Voice {
  readonly tools: VoiceTools;
  readonly tts: TtsEngine | undefined;
  readonly stt: SttEngine | undefined;
  readonly vad: Vad | undefined;
  /** The pocketsphinx grammar (when pocketsphinx is the STT engine): cid, files, skipped rules. */
  readonly grammar: GrammarFiles | undefined;
  refreshGrammar(): Promise<string | null>;
}

/** How the status names the pocketsphinx engine: its grammar's cid and size. */
const sphinxEngineText = (g: GrammarFiles) =>
  `pocketsphinx (grammar ${g.cid.slice(0, 15)}…: ${g.intents.length} intents, ${g.sentences} sentences, ${g.words} words${g.generated.length > 0 ? `, ${g.generated.length} pronounced by espeak-ng` : ''})`;

const unavailable = (part: string, status: PartStatus) =>
  new TesseraError('VOICE_UNAVAILABLE', `${part} is not available: ${status.reason ?? 'unknown reason'}${status.fix ? `; fix: ${status.fix}` : ''}`);

/** Build the voice stack; never throws for a missing part (see {@link Voice.status}). */
export async function createVoice(options: CreateVoiceOptions): Promise<VoiceStack> {
  const { config, logger } = options;
  const tools = options.tools ?? detectVoiceTools();

  const ttsResult = await createTtsEngine(tools);
  const tts = ttsResult.engine;

  let vad: Vad | undefined;
  let vadError: unknown;
  try {
    vad = await createSileroVad(config.vad);
  } catch (err) {
    vadError = err;
  }

  let stt: SttEngine | undefined;
  let grammar: GrammarFiles | undefined;
  let sphinxEngine: ReturnType<typeof createPocketsphinxStt> | undefined;
  let sttStatus: PartStatus;
  const mode = config.stt ?? 'auto';
  let whisperNote: string | undefined;
  if (mode === 'whisper' || (mode === 'auto' && config.whisperModelDir)) {
    try {
      stt = await createWhisperStt({ modelDir: config.whisperModelDir, ...(options.importTransformers ? { importer: options.importTransformers } : {}) });
    } catch (err) {
      whisperNote = (err as Error).message;
      logger?.warn('Whisper is not available', { reason: whisperNote });
    }
  }
  if (stt) {
    sttStatus = { available: true, engine: `whisper (transformers.js, ${config.whisperModelDir})` };
  } else if (mode === 'off') {
    sttStatus = { available: false, reason: 'speech-to-text is switched off in the configuration (stt: off)' };
  } else if (mode === 'whisper') {
    sttStatus = { available: false, reason: whisperNote ?? 'Whisper is not available' };
  } else {
    const missing = sphinxMissing(tools);
    if (missing) {
      sttStatus = whisperNote ? { ...missing, reason: `${missing.reason}; also ${whisperNote}` } : missing;
    } else {
      try {
        const sphinx = createPocketsphinxStt({ tools, ruleSets: options.ruleSets, cacheDir: config.cacheDir });
        stt = sphinx;
        sphinxEngine = sphinx;
        grammar = sphinx.grammar;
        for (const s of grammar.skipped) logger?.info('an intent sentence is not in the speech grammar', { intent: s.intent, sentence: s.sentence, source: s.source, reason: s.reason });
        if (grammar.generated.length > 0) logger?.info('pronunciations generated by espeak-ng for words missing from the dictionary', { words: grammar.generated });
        const notSpoken = [...new Set(grammar.skipped.filter((s) => s.intent !== '*').map((s) => s.intent))].filter((i) => !grammar!.intents.includes(i));
        sttStatus = {
          available: true,
          engine: sphinxEngineText(grammar),
          ...(grammar.skipped.length > 0 || whisperNote
            ? { reason: [whisperNote, grammar.skipped.length > 0 ? `${grammar.skipped.length} rule parts are not in the grammar${notSpoken.length > 0 ? `; text only: ${notSpoken.join(', ')}` : ''}` : undefined].filter(Boolean).join('; ') }
            : {}),
        };
      } catch (err) {
        sttStatus = { available: false, reason: (err as Error).message };
      }
    }
  }

  const micPart = micStatus(tools);
  const status: VoiceStatus = {
    tts: ttsResult.status,
    stt: sttStatus,
    mic: { available: micPart.available, ...(micPart.engine ? { engine: micPart.engine } : {}), ...(micPart.reason ? { reason: micPart.reason } : {}), ...(micPart.fix ? { fix: micPart.fix } : {}) },
    speaker: config.audioOutDir !== undefined && !options.sink ? { available: true, engine: `WAV files in ${config.audioOutDir}` } : speakerStatus(tools),
    vad: vadStatus(vad, vadError),
  };
  const defaultSink = options.sink ?? (config.audioOutDir !== undefined ? createFileSink(config.audioOutDir, { pace: 1 }) : createPlayerSink(tools));
  const refresh = async (engine: NonNullable<typeof sphinxEngine>): Promise<string> => {
    const before = grammar?.cid;
    grammar = engine.refresh();
    status.stt = { ...status.stt, engine: sphinxEngineText(grammar) };
    if (grammar.cid !== before) logger?.info('speech grammar recompiled', { cid: grammar.cid, sentences: grammar.sentences, words: grammar.words, cached: grammar.cached, generated: grammar.generated });
    return grammar.cid;
  };
  logger?.info('voice', { tts: status.tts.available, stt: status.stt.engine ?? status.stt.reason, mic: status.mic.available, speaker: status.speaker.available, vad: status.vad.available });

  // Grammar refreshes run one at a time; one asked for meanwhile runs after it, with the values of then.
  let refreshing: Promise<string | null> = Promise.resolve(null);
  return {
    tools,
    tts,
    stt,
    vad,
    get grammar() {
      return grammar;
    },
    status: () => status,
    refreshGrammar() {
      const engine = sphinxEngine;
      if (!engine) return Promise.resolve(null);
      refreshing = refreshing.then(
        () => refresh(engine),
        () => refresh(engine),
      );
      return refreshing;
    },

    async say(text, opts = {}): Promise<SayResult> {
      if (!tts) throw unavailable('text-to-speech', status.tts);
      const voice = opts.voice ?? config.ttsVoice;
      const rate = opts.rate ?? config.ttsRate;
      const synth = await tts.synthesize(text, { ...(voice !== undefined ? { voice } : {}), ...(rate !== undefined ? { rate } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      const sink = opts.sink ?? defaultSink;
      const playback = await sink.play(synth.wav, opts.signal);
      return { engine: synth.engine, sink: sink.id, first_audio_ms: synth.first_audio_ms, synth_ms: synth.total_ms, duration_ms: durationMs(synth.wav), playback };
    },

    async listen(recorder: Recorder, opts = {}): Promise<ListenResult> {
      const started = nowMs();
      if (!stt || !vad) {
        recorder.stop();
        throw unavailable(stt ? 'voice activity detection' : 'speech-to-text', stt ? status.vad : status.stt);
      }
      const timeoutMs = opts.timeoutMs ?? config.listenTimeoutMs ?? 10_000;
      const maxSegments = opts.maxSegments ?? 1;
      let samples = 0;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        recorder.stop();
      }, timeoutMs);
      const onAbort = () => recorder.stop();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const counted: AsyncIterable<Int16Array> = {
        async *[Symbol.asyncIterator]() {
          for await (const frame of recorder) {
            samples += frame.length;
            yield frame;
          }
        },
      };
      const stats = { model_ms: 0 };
      const segments: ListenResult['segments'] = [];
      let sttMs = 0;
      let confidence: number | undefined;
      try {
        for await (const seg of vad.segments(counted, { stats, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onSpeechStart ? { onSpeechStart: opts.onSpeechStart } : {}) })) {
          const t = await stt.transcribe(seg.samples, opts.signal ? { signal: opts.signal } : {});
          sttMs += t.ms;
          if (t.confidence !== undefined) confidence = Math.min(confidence ?? 1, t.confidence);
          segments.push({ start_ms: seg.start_ms, end_ms: seg.end_ms, text: t.text });
          if (segments.length >= maxSegments) break;
        }
      } finally {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        recorder.stop();
      }
      if (opts.signal?.aborted) throw new TesseraError('RUN_CANCELLED', 'listening was cancelled');
      const text = segments.map((s) => s.text).filter(Boolean).join(' ');
      logger?.debug('listened', { source: recorder.source, segments: segments.length, timed_out: timedOut, text_chars: text.length });
      return {
        outcome: text ? 'speech' : 'no_speech',
        text,
        engine: stt.id,
        ...(confidence !== undefined ? { confidence } : {}),
        segments,
        timings: { audio_ms: (samples / SPEECH_SAMPLE_RATE) * 1000, vad_ms: stats.model_ms, stt_ms: sttMs, total_ms: nowMs() - started },
      };
    },

    microphone(): Recorder {
      if (!micPart.available || !micPart.program) throw unavailable('the microphone', status.mic);
      return createMicRecorder({ program: micPart.program });
    },

    async dispose() {
      await stt?.dispose();
      await vad?.dispose();
    },
  };
}
