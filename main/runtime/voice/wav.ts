/**
 * RIFF WAV reading and writing (16-bit PCM only) and sample conversion: down-mixing to mono and a streaming
 * windowed-sinc resampler, so espeak-ng's 22 050 Hz or a 44.1 kHz stereo file become the 16 kHz mono that
 * the VAD and the recognizers expect. Pure module: no Node APIs beyond `Buffer`.
 */
import { TesseraError } from '../../common/errors.js';
import type { Wav } from './types.js';

/** Sample rates accepted in input files. */
export const MIN_SAMPLE_RATE = 8_000;
export const MAX_SAMPLE_RATE = 96_000;

/** Raw PCM layout of a stream: what a WAV header or a capture command says. */
export interface PcmFormat {
  sampleRate: number;
  channels: number;
}

const invalid = (message: string): never => {
  throw new TesseraError('AUDIO_INVALID', message);
};

/** Check a PCM layout; throws AUDIO_INVALID naming the field and the accepted range. */
export function checkFormat(format: PcmFormat, what = 'audio'): void {
  if (!Number.isInteger(format.sampleRate) || format.sampleRate < MIN_SAMPLE_RATE || format.sampleRate > MAX_SAMPLE_RATE) {
    invalid(`${what} has a sample rate of ${format.sampleRate} Hz; expected ${MIN_SAMPLE_RATE}–${MAX_SAMPLE_RATE} Hz`);
  }
  if (format.channels !== 1 && format.channels !== 2) invalid(`${what} has ${format.channels} channels; expected 1 (mono) or 2 (stereo)`);
}

/** Where the samples of a WAV file are, as found by {@link parseWavHeader}. */
export interface WavHeader extends PcmFormat {
  /** Byte offset of the first sample. */
  dataOffset: number;
  /**
   * Bytes of sample data: the `data` chunk's size, capped at what the buffer holds (espeak-ng writing to a
   * pipe leaves the size field at 0x7fffffff because it cannot seek back).
   */
  dataBytes: number;
}

/**
 * Read the header of a RIFF/WAVE buffer. Throws AUDIO_INVALID when it is empty, not RIFF/WAVE, not 16-bit
 * PCM (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format), or has no `data` chunk.
 */
export function parseWavHeader(buf: Uint8Array, what = 'the audio'): WavHeader {
  if (buf.length === 0) invalid(`${what} is empty (0 bytes); expected a WAV file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const ascii = (at: number) => String.fromCharCode(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!);
  if (buf.length < 12 || ascii(0) !== 'RIFF' || ascii(8) !== 'WAVE') invalid(`${what} is not a WAV file (no RIFF/WAVE header); convert it with: sox IN -r 16000 -c 1 -b 16 OUT.wav`);
  let at = 12;
  let fmt: { format: number; channels: number; sampleRate: number; bits: number } | undefined;
  while (at + 8 <= buf.length) {
    const id = ascii(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) invalid(`${what} has a truncated fmt chunk`);
      let format = view.getUint16(body, true);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
      if (format === 0xfffe && size >= 40 && body + 26 <= buf.length) format = view.getUint16(body + 24, true);
      fmt = { format, channels: view.getUint16(body + 2, true), sampleRate: view.getUint32(body + 4, true), bits: view.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (!fmt) invalid(`${what} has its data chunk before the fmt chunk`);
      const f = fmt!;
      if (f.format !== 1 || f.bits !== 16) {
        invalid(`${what} is ${f.format === 3 ? 'floating-point' : f.format === 1 ? `${f.bits}-bit` : `format ${f.format}`} audio; expected 16-bit PCM (convert with: sox IN -b 16 -e signed-integer OUT.wav)`);
      }
      const format = { sampleRate: f.sampleRate, channels: f.channels };
      checkFormat(format, what);
      const available = buf.length - body;
      const dataBytes = Math.min(size, available);
      return { ...format, dataOffset: body, dataBytes: dataBytes - (dataBytes % (2 * f.channels)) };
    }
    at = body + size + (size % 2);
  }
  return invalid(`${what} has no ${fmt ? 'data' : 'fmt'} chunk`);
}

/** Decode a 16-bit PCM WAV file. Throws AUDIO_INVALID (see {@link parseWavHeader}). */
export function parseWav(buf: Uint8Array, what?: string): Wav {
  const h = parseWavHeader(buf, what);
  return { sampleRate: h.sampleRate, channels: h.channels, samples: bytesToSamples(buf.subarray(h.dataOffset, h.dataOffset + h.dataBytes)) };
}

/** Little-endian 16-bit bytes to samples (copies; an odd trailing byte is dropped). */
export function bytesToSamples(bytes: Uint8Array): Int16Array {
  const n = bytes.length >> 1;
  const out = new Int16Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true);
  return out;
}

/** Encode samples as a canonical 44-byte-header RIFF WAV file. */
export function encodeWav(wav: Wav): Buffer {
  checkFormat(wav, 'the WAV to write');
  const dataBytes = wav.samples.length * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(wav.channels, 22);
  buf.writeUInt32LE(wav.sampleRate, 24);
  buf.writeUInt32LE(wav.sampleRate * wav.channels * 2, 28);
  buf.writeUInt16LE(wav.channels * 2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < wav.samples.length; i++) buf.writeInt16LE(wav.samples[i]!, 44 + i * 2);
  return buf;
}

/** Length of the audio in milliseconds. */
export function durationMs(wav: Wav): number {
  return (wav.samples.length / wav.channels / wav.sampleRate) * 1000;
}

/** Average interleaved channels into one. */
export function downmix(samples: Int16Array, channels: number): Int16Array {
  if (channels === 1) return samples;
  const n = Math.floor(samples.length / channels);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += samples[i * channels + c]!;
    out[i] = Math.round(sum / channels);
  }
  return out;
}

/** A resampler fed in pieces: the output does not depend on how the input was split. */
export interface StreamResampler {
  /** Feed mono samples; returns the output samples now computable. */
  push(samples: Int16Array): Int16Array;
  /** End of input: returns the remaining output (the input is padded with silence). */
  flush(): Int16Array;
}

/** Zero crossings of the sinc kernel on each side: enough for speech, cheap at 16 kHz. */
const HALF_TAPS = 12;
/** Most kernel phases precomputed; rate pairs needing more (unusual rates) round to the nearest phase. */
const MAX_PHASES = 4096;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * A streaming band-limited resampler (windowed sinc, Blackman window, cut-off at 0.95 × the lower Nyquist
 * frequency, so down-sampling 22 050 → 16 000 Hz does not fold 8–11 kHz back into the speech band). The
 * kernel is precomputed per phase (22 050 → 16 000 Hz has exactly 320), so each output sample costs one dot
 * product. Equal rates pass samples through unchanged.
 */
export function createResampler(inRate: number, outRate: number): StreamResampler {
  if (inRate === outRate) return { push: (s) => s, flush: () => new Int16Array(0) };
  const g = gcd(inRate, outRate);
  // Output n sits at input position n·M/L.
  const L = outRate / g;
  const M = inRate / g;
  const phases = Math.min(L, MAX_PHASES);
  const cutoff = 0.95 * Math.min(1, outRate / inRate);
  const half = Math.ceil(HALF_TAPS / cutoff);
  const taps = 2 * half;
  const kernel = (x: number): number => {
    if (x === 0) return cutoff;
    if (Math.abs(x) >= half) return 0;
    const a = Math.PI * x;
    const w = 0.42 + 0.5 * Math.cos(a / half) + 0.08 * Math.cos((2 * a) / half);
    return (Math.sin(a * cutoff) / a) * w;
  };
  // table[p·taps + j] weighs input sample center − half + 1 + j for fractional offset p / phases.
  const table = new Float32Array(phases * taps);
  for (let p = 0; p < phases; p++) for (let j = 0; j < taps; j++) table[p * taps + j] = kernel(p / phases - (j - half + 1));

  // `buf` holds input samples from absolute index `base` (starting with `half` samples of silence, so the
  // first outputs have left context); `n` is the index of the next output sample.
  let buf = new Float32Array(half);
  let base = -half;
  let n = 0;

  const run = (): Int16Array => {
    const out: number[] = [];
    const last = base + buf.length - 1;
    // Past this center the kernel needs samples not received yet; at the end (`final`) the `half` samples of
    // silence appended by flush() let it reach the last real input sample.
    const maxCenter = last - half;
    for (;;) {
      const num = n * M;
      const center = Math.floor(num / L);
      if (center > maxCenter) break;
      const rem = num - center * L;
      const phase = phases === L ? rem : Math.min(phases - 1, Math.round((rem / L) * phases));
      const t = phase * taps;
      const from = center - half + 1 - base;
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += buf[from + j]! * table[t + j]!;
      out.push(Math.max(-32768, Math.min(32767, Math.round(acc))));
      n++;
    }
    // Drop input no longer needed (keep `half` samples of left context for the next output).
    const keepFrom = Math.max(0, Math.floor((n * M) / L) - half - base);
    if (keepFrom > 0) {
      buf = buf.slice(keepFrom);
      base += keepFrom;
    }
    return Int16Array.from(out);
  };

  return {
    push(samples) {
      const next = new Float32Array(buf.length + samples.length);
      next.set(buf);
      next.set(samples, buf.length);
      buf = next;
      return run();
    },
    flush() {
      // Pad with silence so the last input samples get their right context.
      const next = new Float32Array(buf.length + half);
      next.set(buf);
      buf = next;
      return run();
    },
  };
}

/** Convert a whole WAV to 16-bit mono at `rate` (default 16 kHz). */
export function toMono(wav: Wav, rate = 16_000): Int16Array {
  const mono = downmix(wav.samples, wav.channels);
  if (wav.sampleRate === rate) return mono;
  const r = createResampler(wav.sampleRate, rate);
  const a = r.push(mono);
  const b = r.flush();
  const out = new Int16Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
