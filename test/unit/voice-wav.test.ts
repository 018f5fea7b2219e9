import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pcmFrames } from '../../main/runtime/voice/recorder.js';
import { FRAME_SAMPLES } from '../../main/runtime/voice/types.js';
import { createResampler, downmix, durationMs, encodeWav, parseWav, parseWavHeader, toMono } from '../../main/runtime/voice/wav.js';

const sine = (rate: number, hz: number, seconds: number, amp = 10_000) => Int16Array.from({ length: Math.round(rate * seconds) }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)));

/** A WAV header with chosen fields, followed by `dataBytes` zero bytes. */
function header(fields: { format?: number; channels?: number; rate?: number; bits?: number; dataSize?: number; dataBytes?: number }): Buffer {
  const { format = 1, channels = 1, rate = 16_000, bits = 16, dataBytes = 8 } = fields;
  const b = Buffer.alloc(44 + dataBytes);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + dataBytes, 4);
  b.write('WAVEfmt ', 8, 'ascii');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(format, 20);
  b.writeUInt16LE(channels, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE((rate * channels * bits) / 8, 28);
  b.writeUInt16LE((channels * bits) / 8, 32);
  b.writeUInt16LE(bits, 34);
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(fields.dataSize ?? dataBytes, 40);
  return b;
}

async function collect(chunks: Uint8Array[], format: { sampleRate: number; channels: number }): Promise<Int16Array[]> {
  async function* gen() {
    yield* chunks;
  }
  const frames: Int16Array[] = [];
  for await (const f of pcmFrames(gen(), format)) frames.push(f);
  return frames;
}

describe('WAV files', () => {
  it('round-trips samples, rate and channels through encode and parse', () => {
    const wav = { sampleRate: 22_050, channels: 2, samples: Int16Array.from([0, 1, -1, 32767, -32768, 1234]) };
    const back = parseWav(encodeWav(wav));
    expect(back.sampleRate).toBe(22_050);
    expect(back.channels).toBe(2);
    expect([...back.samples]).toEqual([...wav.samples]);
    expect(durationMs(wav)).toBeCloseTo((3 / 22_050) * 1000);
  });

  it('reads a streamed WAV whose data size field was never filled in (espeak-ng --stdout)', () => {
    const b = header({ dataSize: 0x7fffffff, dataBytes: 6 });
    b.writeInt16LE(-5, 44);
    expect([...parseWav(b).samples]).toEqual([-5, 0, 0]);
  });

  it('skips unknown chunks and accepts WAVE_FORMAT_EXTENSIBLE with the PCM sub-format', () => {
    const wav = encodeWav({ sampleRate: 16_000, channels: 1, samples: Int16Array.from([7, 8]) });
    const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0, 1, 2, 3, 0])]);
    const withList = Buffer.concat([wav.subarray(0, 36), list, wav.subarray(36)]);
    expect([...parseWav(withList).samples]).toEqual([7, 8]);

    const ext = Buffer.alloc(12 + 8 + 40 + 8 + 4);
    ext.write('RIFFxxxxWAVEfmt ', 0, 'ascii');
    ext.writeUInt32LE(40, 16);
    ext.writeUInt16LE(0xfffe, 20);
    ext.writeUInt16LE(1, 22);
    ext.writeUInt32LE(16_000, 24);
    ext.writeUInt16LE(16, 34);
    ext.writeUInt16LE(1, 44); // sub-format GUID starts with 0x0001: PCM
    ext.write('data', 60, 'ascii');
    ext.writeUInt32LE(4, 64);
    ext.writeInt16LE(3, 68);
    expect([...parseWav(ext).samples]).toEqual([3, 0]);
  });

  it.each([
    ['an empty file', Buffer.alloc(0), /empty \(0 bytes\)/],
    ['text', Buffer.from('hello, not audio at all'), /not a WAV file/],
    ['floating-point samples', header({ format: 3, bits: 32 }), /floating-point audio; expected 16-bit PCM/],
    ['8-bit samples', header({ bits: 8 }), /8-bit audio; expected 16-bit PCM/],
    ['three channels', header({ channels: 3 }), /3 channels; expected 1 \(mono\) or 2/],
    ['a 4 kHz rate', header({ rate: 4000 }), /4000 Hz; expected 8000–96000 Hz/],
    ['no data chunk', header({}).subarray(0, 36), /no data chunk/],
  ])('rejects %s with AUDIO_INVALID and a reason', (_name, bytes, message) => {
    expect(() => parseWavHeader(bytes, 'x.wav')).toThrow(expect.objectContaining({ code: 'AUDIO_INVALID', message: expect.stringMatching(message) }));
  });
});

describe('conversion to 16 kHz mono', () => {
  it('averages stereo channels', () => {
    expect([...downmix(Int16Array.from([100, 300, -2, -4]), 2)]).toEqual([200, -3]);
  });

  it('resamples 22 050 Hz speech-band tones to 16 kHz with over 60 dB signal-to-error', () => {
    for (const hz of [300, 1000, 3000, 6000]) {
      const out = toMono({ sampleRate: 22_050, channels: 1, samples: sine(22_050, hz, 1) });
      expect(out.length).toBe(16_000);
      let err = 0;
      let sig = 0;
      for (let i = 200; i < out.length - 200; i++) {
        const ideal = 10_000 * Math.sin((2 * Math.PI * hz * i) / 16_000);
        err += (out[i]! - ideal) ** 2;
        sig += ideal ** 2;
      }
      expect(10 * Math.log10(sig / err), `${hz} Hz`).toBeGreaterThan(60);
    }
  });

  it('removes content above the new Nyquist frequency instead of folding it into the speech band', () => {
    const out = toMono({ sampleRate: 44_100, channels: 1, samples: sine(44_100, 10_000, 0.5) });
    const rms = Math.sqrt(out.slice(200, -200).reduce((a, s) => a + s * s, 0) / (out.length - 400));
    expect(rms).toBeLessThan(50); // the input's RMS is ~7071
  });

  it('gives the same output however the input is split', () => {
    const input = sine(22_050, 440, 0.2).map((s, i) => s + ((i * 7919) % 2000) - 1000);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 6 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const r = createResampler(22_050, 16_000);
        const parts: number[] = [];
        let from = 0;
        for (const p of [...points, input.length]) {
          parts.push(...r.push(input.subarray(from, p)));
          from = p;
        }
        parts.push(...r.flush());
        expect(parts).toEqual([...toMono({ sampleRate: 22_050, channels: 1, samples: input })]);
      }),
      { numRuns: 30 },
    );
  });
});

describe('pcmFrames (the capture path of microphone and file recorders)', () => {
  it('frames 16 kHz mono bytes into 512-sample frames whatever the chunk boundaries, even mid-sample', async () => {
    const samples = Int16Array.from({ length: 1300 }, (_, i) => i - 650);
    const bytes = new Uint8Array(samples.buffer);
    const whole = await collect([bytes], { sampleRate: 16_000, channels: 1 });
    expect(whole.map((f) => f.length)).toEqual([FRAME_SAMPLES, FRAME_SAMPLES, 1300 - 2 * FRAME_SAMPLES]);
    expect(whole.flatMap((f) => [...f])).toEqual([...samples]);
    const odd = await collect([bytes.subarray(0, 3), bytes.subarray(3, 1001), bytes.subarray(1001)], { sampleRate: 16_000, channels: 1 });
    expect(odd.flatMap((f) => [...f])).toEqual([...samples]);
  });

  it('down-mixes and resamples 44.1 kHz stereo to the same signal as the whole-buffer conversion', async () => {
    const left = sine(44_100, 500, 0.3);
    const stereo = new Int16Array(left.length * 2);
    left.forEach((s, i) => {
      stereo[2 * i] = s;
      stereo[2 * i + 1] = s;
    });
    const bytes = new Uint8Array(stereo.buffer);
    const frames = await collect([bytes.subarray(0, 999), bytes.subarray(999)], { sampleRate: 44_100, channels: 2 });
    expect(frames.flatMap((f) => [...f])).toEqual([...toMono({ sampleRate: 44_100, channels: 2, samples: stereo })]);
  });

  it('refuses a layout it cannot convert', async () => {
    await expect(collect([], { sampleRate: 16_000, channels: 6 })).rejects.toMatchObject({ code: 'AUDIO_INVALID' });
  });
});
