/**
 * A recorder fed by pushes: the audio a browser streams over `/ws/io` (or the Electron window over IPC) while
 * push-to-talk is held. Raw little-endian 16-bit PCM chunks go through the speech module's own framer
 * (`pcmFrames`: down-mix, resample to 16 kHz, 512-sample frames), the same path as the microphone.
 *
 * Contract: `push` accepts whole 16-bit samples (an even byte count) up to {@link MAX_STREAM_SECONDS} of audio
 * in all; `end` ends the stream (release of the button); `stop` ends it from the reading side. Pushing after the
 * end is refused.
 */
import { TesseraError } from '../../common/errors.js';
import { pcmFrames } from '../voice/recorder.js';
import type { Recorder } from '../voice/types.js';

/** The longest push-to-talk utterance accepted. */
export const MAX_STREAM_SECONDS = 30;
/** Largest single chunk, bytes (a WebSocket frame). */
export const MAX_CHUNK_BYTES = 32 * 1024;

export interface PushRecorder extends Recorder {
  /** Append raw PCM; throws VALIDATION_FAILED for an odd or oversized chunk or past the length limit. */
  push(chunk: Uint8Array): void;
  /** No more audio: iteration ends after what was pushed. */
  end(): void;
  /** Bytes pushed so far. */
  readonly bytes: number;
}

export function createPushRecorder(source: string, format: { sampleRate: number; channels: number }): PushRecorder {
  const queue: Uint8Array[] = [];
  let ended = false;
  let stopped = false;
  let bytes = 0;
  let wake: (() => void) | undefined;
  const maxBytes = MAX_STREAM_SECONDS * format.sampleRate * format.channels * 2;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (stopped) return;
      const next = queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }
  let frames: AsyncGenerator<Int16Array> | undefined;
  return {
    source,
    get bytes() {
      return bytes;
    },
    push(chunk) {
      if (ended || stopped) throw new TesseraError('VALIDATION_FAILED', 'The audio stream has ended; start a new one.');
      if (chunk.byteLength === 0 || chunk.byteLength % 2 !== 0) throw new TesseraError('VALIDATION_FAILED', `Audio chunks are whole 16-bit samples: ${chunk.byteLength} bytes is not a positive even number.`);
      if (chunk.byteLength > MAX_CHUNK_BYTES) throw new TesseraError('VALIDATION_FAILED', `An audio chunk is at most ${MAX_CHUNK_BYTES} bytes; this one has ${chunk.byteLength}.`);
      if (bytes + chunk.byteLength > maxBytes) throw new TesseraError('VALIDATION_FAILED', `The utterance is over ${MAX_STREAM_SECONDS} s; release push-to-talk sooner.`);
      bytes += chunk.byteLength;
      queue.push(new Uint8Array(chunk));
      notify();
    },
    end() {
      ended = true;
      notify();
    },
    stop() {
      stopped = true;
      notify();
    },
    [Symbol.asyncIterator]() {
      if (frames) throw new TesseraError('VALIDATION_FAILED', `the recorder ${source} was already read; make a new one`);
      frames = pcmFrames(chunks(), format);
      return frames;
    },
  };
}
