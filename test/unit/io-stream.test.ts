/** The push recorder behind push-to-talk (main/runtime/io/stream.ts): validation and the microphone's framing path. */
import { describe, expect, it } from 'vitest';
import { MAX_CHUNK_BYTES, MAX_STREAM_SECONDS, createPushRecorder } from '../../main/runtime/io/index.js';
import { FRAME_SAMPLES } from '../../main/runtime/voice/index.js';

const pcm = (samples: number, value = 1000) => new Uint8Array(Int16Array.from({ length: samples }, () => value).buffer);

describe('push recorder', () => {
  it('frames pushed 16 kHz PCM into 512-sample frames, across chunk boundaries, until the end', async () => {
    const rec = createPushRecorder('test', { sampleRate: 16_000, channels: 1 });
    const frames: Int16Array[] = [];
    const reading = (async () => {
      for await (const f of rec) frames.push(f);
    })();
    rec.push(pcm(300));
    rec.push(pcm(900));
    rec.end();
    await reading;
    expect(frames.map((f) => f.length)).toEqual([FRAME_SAMPLES, FRAME_SAMPLES, 1200 - 2 * FRAME_SAMPLES]);
    expect(frames[0]![0]).toBe(1000);
    expect(rec.bytes).toBe(2400);
  });

  it('resamples 48 kHz to 16 kHz like the microphone path', async () => {
    const rec = createPushRecorder('test', { sampleRate: 48_000, channels: 1 });
    rec.push(pcm(4800));
    rec.end();
    let total = 0;
    for await (const f of rec) total += f.length;
    expect(Math.abs(total - 1600)).toBeLessThanOrEqual(2);
  });

  it('refuses odd, empty and oversized chunks, audio past the limit, and pushes after the end', () => {
    const rec = createPushRecorder('test', { sampleRate: 8_000, channels: 1 });
    expect(() => rec.push(new Uint8Array(3))).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => rec.push(new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => rec.push(new Uint8Array(MAX_CHUNK_BYTES + 2))).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    const limit = MAX_STREAM_SECONDS * 8_000 * 2;
    for (let sent = 0; sent < limit; sent += MAX_CHUNK_BYTES) rec.push(new Uint8Array(Math.min(MAX_CHUNK_BYTES, limit - sent)));
    expect(() => rec.push(new Uint8Array(2))).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining(`${MAX_STREAM_SECONDS} s`) }));
    rec.end();
    expect(() => rec.push(new Uint8Array(2))).toThrow(expect.objectContaining({ message: expect.stringContaining('ended') }));
  });

  it('refuses an unreadable format and a second reader', async () => {
    await expect(createPushRecorder('test', { sampleRate: 4_000, channels: 1 })[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'AUDIO_INVALID' });
    const rec = createPushRecorder('test', { sampleRate: 16_000, channels: 1 });
    rec[Symbol.asyncIterator]();
    expect(() => rec[Symbol.asyncIterator]()).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});
