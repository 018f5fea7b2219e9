/**
 * Capture (issue 6 point 4): the microphone through node-record-lpcm16 (sox or arecord) and a file-backed
 * recorder for tests. Both produce a raw little-endian 16-bit PCM byte stream with a known layout, and the
 * same {@link pcmFrames} turns it into 16 kHz mono frames — so a test that feeds a WAV file runs the
 * microphone's framing, down-mixing and resampling code.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import type { VoiceTools } from './detect.js';
import { aptFix } from './detect.js';
import { FRAME_SAMPLES, SPEECH_SAMPLE_RATE } from './types.js';
import type { PartStatus, Recorder } from './types.js';
import type { PcmFormat } from './wav.js';
import { checkFormat, createResampler, downmix, parseWavHeader } from './wav.js';

/**
 * Frame a raw PCM byte stream of layout `format` into 16 kHz mono frames of {@link FRAME_SAMPLES} samples
 * (the last may be shorter). Chunk boundaries may fall anywhere, even inside a sample.
 */
export async function* pcmFrames(chunks: AsyncIterable<Uint8Array>, format: PcmFormat): AsyncGenerator<Int16Array> {
  checkFormat(format);
  const bytesPerFrame = 2 * format.channels;
  const resampler = createResampler(format.sampleRate, SPEECH_SAMPLE_RATE);
  let carry = new Uint8Array(0);
  let pending = new Int16Array(0);
  const emit = function* (samples: Int16Array, final: boolean): Generator<Int16Array> {
    const all = new Int16Array(pending.length + samples.length);
    all.set(pending);
    all.set(samples, pending.length);
    let at = 0;
    while (all.length - at >= FRAME_SAMPLES) {
      yield all.slice(at, at + FRAME_SAMPLES);
      at += FRAME_SAMPLES;
    }
    pending = all.slice(at);
    if (final && pending.length > 0) {
      yield pending;
      pending = new Int16Array(0);
    }
  };
  for await (const chunk of chunks) {
    const bytes = new Uint8Array(carry.length + chunk.length);
    bytes.set(carry);
    bytes.set(chunk, carry.length);
    const usable = bytes.length - (bytes.length % bytesPerFrame);
    carry = bytes.slice(usable);
    if (usable === 0) continue;
    const view = new DataView(bytes.buffer, bytes.byteOffset, usable);
    const interleaved = new Int16Array(usable / 2);
    for (let i = 0; i < interleaved.length; i++) interleaved[i] = view.getInt16(i * 2, true);
    yield* emit(resampler.push(downmix(interleaved, format.channels)), false);
  }
  yield* emit(resampler.flush(), true);
}

/** A recorder over a raw PCM source; `stop` ends iteration after the current chunk. */
function recorderOver(source: string, open: () => { chunks: AsyncIterable<Uint8Array>; format: PcmFormat; stop(): void }): Recorder {
  let stopped = false;
  let started = false;
  let stopSource: (() => void) | undefined;
  return {
    source,
    stop() {
      stopped = true;
      stopSource?.();
    },
    async *[Symbol.asyncIterator]() {
      if (started) throw new TesseraError('VALIDATION_FAILED', `the recorder ${source} was already read; make a new one`);
      started = true;
      if (stopped) return;
      const src = open();
      stopSource = src.stop;
      try {
        for await (const frame of pcmFrames(src.chunks, src.format)) {
          if (stopped) return;
          yield frame;
        }
      } catch (err) {
        if (stopped) return;
        if (isTesseraError(err)) throw err;
        throw new TesseraError('VOICE_UNAVAILABLE', `audio capture from ${source} failed: ${err instanceof Error ? err.message : String(err)}`.trim(), { cause: err });
      } finally {
        stopped = true;
        src.stop();
      }
    },
  };
}

export interface FileRecorderOptions {
  /**
   * Deliver the audio at `realtime ×` its natural pace (1 = like a microphone; default 0 = as fast as it can
   * be read). Pacing exercises timeouts and early end-of-speech the way live capture does.
   */
  realtime?: number;
  /** Bytes per chunk of the raw stream (default 20 ms of audio), like a capture pipe's reads. */
  chunkMs?: number;
}

/**
 * A recorder reading a WAV file (path) or WAV bytes. The header is checked at once: empty input, non-WAV
 * data and unsupported formats throw AUDIO_INVALID here, before any audio flows.
 */
export function createFileRecorder(input: string | Uint8Array, options: FileRecorderOptions = {}): Recorder {
  const name = typeof input === 'string' ? input : 'buffer';
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    try {
      bytes = readFileSync(input);
    } catch (err) {
      throw new TesseraError('AUDIO_INVALID', `cannot read the audio file ${input}: ${(err as Error).message}`, { cause: err });
    }
  } else {
    bytes = input;
  }
  const header = parseWavHeader(bytes, typeof input === 'string' ? input : 'the audio');
  const format = { sampleRate: header.sampleRate, channels: header.channels };
  const data = bytes.subarray(header.dataOffset, header.dataOffset + header.dataBytes);
  const bytesPerMs = (format.sampleRate * format.channels * 2) / 1000;
  const chunkBytes = Math.max(2, Math.round((options.chunkMs ?? 20) * bytesPerMs));
  const realtime = options.realtime ?? 0;
  return recorderOver(`file:${name}`, () => {
    let halted = false;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      const t0 = performance.now();
      for (let at = 0; at < data.length && !halted; at += chunkBytes) {
        const chunk = data.subarray(at, Math.min(data.length, at + chunkBytes));
        if (realtime > 0) {
          const due = t0 + ((at + chunk.length) / bytesPerMs) * realtime;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        yield chunk;
      }
    }
    return {
      chunks: chunks(),
      format,
      stop: () => {
        halted = true;
      },
    };
  });
}

/** The capture programs node-record-lpcm16 can drive. */
export type CaptureProgram = 'sox' | 'arecord';

/** The program the microphone recorder would use, and whether it can work here. */
export function micStatus(tools: VoiceTools): PartStatus & { program?: CaptureProgram } {
  const program: CaptureProgram | undefined = tools.sox ? 'sox' : tools.arecord ? 'arecord' : undefined;
  if (!program) return { available: false, reason: 'no capture program: neither sox nor arecord is installed', fix: aptFix('sox') };
  if (!tools.soundCard.present) return { available: false, program, reason: tools.soundCard.detail, fix: 'attach a microphone; until then use the text box or a WAV file' };
  return { available: true, program, engine: `${program} via node-record-lpcm16 (${tools.soundCard.detail})` };
}

interface LpcmRecording {
  stream(): Readable;
  stop(): void;
  /** The capture process (node-record-lpcm16 neither listens for its spawn errors nor reports its stderr). */
  process?: ChildProcess;
}
interface LpcmModule {
  record(options: Record<string, unknown>): LpcmRecording;
}

export interface MicRecorderOptions {
  program?: CaptureProgram;
  /** The capture device (AUDIODEV for sox, `-D` for arecord). */
  device?: string;
}

/**
 * The microphone: node-record-lpcm16 runs sox or arecord, which capture raw 16 kHz mono 16-bit PCM to a pipe.
 * Capture failures (no device, program missing, the program exiting with an error) end iteration with
 * VOICE_UNAVAILABLE carrying the program's own message.
 */
export function createMicRecorder(options: MicRecorderOptions = {}): Recorder {
  const program = options.program ?? 'sox';
  const format = { sampleRate: SPEECH_SAMPLE_RATE, channels: 1 };
  return recorderOver(`mic:${program}`, () => {
    const lpcm = createRequire(import.meta.url)('node-record-lpcm16') as LpcmModule;
    const recording = lpcm.record({ sampleRate: format.sampleRate, channels: format.channels, audioType: 'raw', recorder: program, ...(options.device ? { device: options.device } : {}) });
    const stream = recording.stream();
    const proc = recording.process;
    let stopped = false;
    let failure: string | undefined;
    let stderr = '';
    // The library emits 'error' with a string when the program exits non-zero, possibly after the stream
    // ended: a listener must always be there, or that emit would be an uncaught exception.
    stream.on('error', (err: unknown) => {
      failure ??= err instanceof Error ? err.message : String(err);
    });
    proc?.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => {
      if (!proc) resolve(0);
      proc?.once('close', (code) => resolve(code));
      // A missing program (ENOENT): without this listener the 'error' event would take the process down.
      proc?.once('error', (err) => {
        failure ??= err.message;
        resolve(null);
      });
    });
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for await (const chunk of stream) yield chunk as Uint8Array;
      const code = await exited;
      if (!stopped && (code !== 0 || failure)) {
        const why = stderr.trim().split('\n').filter(Boolean).pop() ?? failure ?? '';
        throw new Error(`${program} exited with ${code ?? 'an error'}${why ? `: ${why}` : ''}`);
      }
    }
    return {
      chunks: chunks(),
      format,
      stop: () => {
        stopped = true;
        try {
          recording.stop();
        } catch {
          // already stopped
        }
      },
    };
  });
}
