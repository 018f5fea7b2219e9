/**
 * The voice module's boundaries on real engines and real files: espeak-ng with hostile text, the system
 * player and microphone on a machine without a sound card, the file sink's timeline, and `listen` on bad or
 * empty input (empty file, not a WAV, wrong sample format, silence), converted input (44.1 kHz stereo made by
 * sox), speech surrounded by silence, timeouts and cancellation.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecognizer, loadRuleSet } from '../../main/runtime/intents/index.js';
import type { RuleSet } from '../../main/runtime/intents/index.js';
import { createFileRecorder, createFileSink, createMicRecorder, createPlayerSink, createVoice, detectSoundCard, detectVoiceTools, encodeWav } from '../../main/runtime/voice/index.js';
import type { VoiceStack, Wav } from '../../main/runtime/voice/index.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SPEAKER = 'en-us+klatt';
const noSoundCard = !detectSoundCard().present;

let rules: RuleSet;
let voice: VoiceStack;
let dir: string;

beforeAll(async () => {
  rules = loadRuleSet(join(ROOT, 'resources/intents/en.yaml'));
  dir = tempDir('tessera-voice-io-', 'file');
  voice = await createVoice({ ruleSets: [rules], config: { cacheDir: join(dir, 'cache') } });
  expect(voice.status().tts.available && voice.status().stt.available && voice.status().vad.available).toBe(true);
});

afterAll(async () => {
  await voice?.dispose();
});

/** Speak `text` with espeak-ng into a WAV file; returns its path and audio. */
async function speak(text: string, name: string): Promise<{ file: string; wav: Wav }> {
  const { wav } = await voice.tts!.synthesize(text, { voice: SPEAKER });
  const file = join(dir, name);
  writeFileSync(file, encodeWav(wav));
  return { file, wav };
}

const sox = (...args: string[]) => execFileSync('sox', args, { stdio: ['ignore', 'ignore', 'pipe'] });

describe('text-to-speech with espeak-ng', () => {
  it('speaks hostile text as words: nothing runs, audio comes out, time to first audio is measured', async () => {
    const marker = join(dir, 'pwned');
    const texts = [`$(touch ${marker})`, `\`touch ${marker}\``, `-w ${marker} --stdout`, `(SayText "x") ; touch ${marker} | cat`, `it's "quoted"\nand on a new line`];
    for (const text of texts) {
      let first = -1;
      const s = await voice.tts!.synthesize(text, { onFirstAudio: (ms) => (first = ms) });
      expect(s.engine).toBe('espeak-ng');
      expect(s.wav.sampleRate).toBe(22_050);
      expect(s.wav.samples.length).toBeGreaterThan(22_050 / 2);
      expect(first).toBe(s.first_audio_ms);
      expect(s.first_audio_ms).toBeGreaterThan(0);
      expect(s.first_audio_ms).toBeLessThanOrEqual(s.total_ms);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses bad text, voices and rates before starting the engine', async () => {
    await expect(voice.tts!.synthesize('beep\u0007')).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('U+0007') });
    await expect(voice.tts!.synthesize('hi', { voice: '--stdout' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('unknown voice "--stdout"') });
    await expect(voice.tts!.synthesize('hi', { rate: 5000 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('stops synthesis when cancelled', async () => {
    const ac = new AbortController();
    const pending = voice.tts!.synthesize('a long sentence '.repeat(60), { signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: 'RUN_CANCELLED' });
  });
});

describe('audio output', () => {
  it('writes each utterance to the file sink and keeps a timeline that never overlaps when calls are serialized', async () => {
    const sink = createFileSink(join(dir, 'timeline'), { pace: 0.2 });
    for (const text of ['hello', 'next step', 'good evening']) await voice.say(text, { sink });
    expect(sink.timeline).toHaveLength(3);
    for (const [i, e] of sink.timeline.entries()) {
      expect(existsSync(e.file)).toBe(true);
      // pace 0.2 holds each utterance for a fifth of its length
      expect(e.ended_at - e.started_at).toBeGreaterThanOrEqual(e.duration_ms * 0.2 - 2);
      if (i > 0) expect(e.started_at).toBeGreaterThanOrEqual(sink.timeline[i - 1]!.ended_at);
    }
  });

  it('records a cancelled utterance until the moment it was cancelled', async () => {
    const sink = createFileSink(join(dir, 'cancel'), { pace: 1 });
    const { wav } = await speak('this sentence will not be heard to its end', 'cancel.wav');
    const ac = new AbortController();
    const pending = sink.play(wav, ac.signal);
    setTimeout(() => ac.abort(), 100);
    await expect(pending).rejects.toMatchObject({ code: 'RUN_CANCELLED' });
    expect(sink.timeline).toHaveLength(1);
    expect(sink.timeline[0]!.ended_at - sink.timeline[0]!.started_at).toBeLessThan(sink.timeline[0]!.duration_ms);
  });

  it.skipIf(!noSoundCard)('without a sound card, the player sink and `say` fail with VOICE_UNAVAILABLE and say why', async () => {
    expect(voice.status().speaker).toMatchObject({ available: false, reason: expect.stringContaining('no sound card') });
    await expect(voice.say('hello')).rejects.toMatchObject({ code: 'VOICE_UNAVAILABLE', message: expect.stringContaining('no sound card') });
    // Even when told there is a card, the real player's failure is reported, not thrown raw.
    const forced = createPlayerSink({ ...voice.tools, soundCard: { present: true, detail: 'assumed' } });
    const { wav } = await speak('hello', 'hello-player.wav');
    await expect(forced.play(wav)).rejects.toMatchObject({ code: 'VOICE_UNAVAILABLE', message: expect.stringMatching(/cannot play audio: .*play exited with/) });
  });
});

describe('capture', () => {
  it.skipIf(!noSoundCard)('without a sound card the microphone is unavailable, and a forced capture fails cleanly', async () => {
    expect(voice.status().mic).toMatchObject({ available: false, reason: expect.stringContaining('no sound card') });
    expect(() => voice.microphone()).toThrow(expect.objectContaining({ code: 'VOICE_UNAVAILABLE' }));
    const mic = createMicRecorder({ program: 'sox' });
    await expect(voice.listen(mic, { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'VOICE_UNAVAILABLE', message: expect.stringContaining('audio capture from mic:sox failed') });
  });
});

describe('capture program missing', () => {
  it.skipIf(detectVoiceTools().arecord !== undefined)('a capture program that is not installed ends listening with VOICE_UNAVAILABLE, not a crash', async () => {
    const mic = createMicRecorder({ program: 'arecord' });
    await expect(voice.listen(mic, { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'VOICE_UNAVAILABLE', message: expect.stringMatching(/audio capture from mic:arecord failed: .*ENOENT/) });
  });
});

describe('listening to bad and empty input', () => {
  it('refuses an empty file, a text file and a missing file with AUDIO_INVALID', () => {
    const empty = join(dir, 'empty.wav');
    const text = join(dir, 'text.wav');
    writeFileSync(empty, '');
    writeFileSync(text, 'this is not audio\n');
    expect(() => createFileRecorder(empty)).toThrow(expect.objectContaining({ code: 'AUDIO_INVALID', message: expect.stringContaining('is empty (0 bytes)') }));
    expect(() => createFileRecorder(text)).toThrow(expect.objectContaining({ code: 'AUDIO_INVALID', message: expect.stringContaining('is not a WAV file') }));
    expect(() => createFileRecorder(join(dir, 'missing.wav'))).toThrow(expect.objectContaining({ code: 'AUDIO_INVALID', message: expect.stringContaining('cannot read the audio file') }));
  });

  it('refuses WAVs in formats it cannot read (8-bit, 32-bit float, 6 channels) with the conversion command', async () => {
    const { file } = await speak('hello', 'fmt-src.wav');
    const cases: Array<[string, string[], RegExp]> = [
      ['u8.wav', ['-b', '8', '-e', 'unsigned-integer'], /8-bit audio; expected 16-bit PCM/],
      ['f32.wav', ['-b', '32', '-e', 'floating-point'], /floating-point audio/],
      ['six.wav', ['-c', '6'], /6 channels/],
    ];
    for (const [name, args, message] of cases) {
      const out = join(dir, name);
      sox(file, ...args, out);
      expect(() => createFileRecorder(out), name).toThrow(expect.objectContaining({ code: 'AUDIO_INVALID', message: expect.stringMatching(message) }));
    }
  });

  it('answers "no speech" for silence and for a WAV with no samples, without calling the recognizer', async () => {
    const silence = join(dir, 'silence.wav');
    sox('-n', '-r', '16000', '-c', '1', '-b', '16', silence, 'trim', '0', '2');
    const r1 = await voice.listen(createFileRecorder(silence));
    expect(r1).toMatchObject({ outcome: 'no_speech', text: '', segments: [] });
    expect(r1.timings.audio_ms).toBeCloseTo(2000, -1);
    expect(r1.timings.stt_ms).toBe(0);
    const r2 = await voice.listen(createFileRecorder(encodeWav({ sampleRate: 16_000, channels: 1, samples: new Int16Array(0) })));
    expect(r2).toMatchObject({ outcome: 'no_speech', text: '', segments: [] });
  });
});

describe('listening to speech', () => {
  it('converts 44.1 kHz stereo input and finds speech after a second of silence', async () => {
    const { file } = await speak('set a timer for twenty minutes', 'timer.wav');
    const stereo = join(dir, 'timer-44k-stereo.wav');
    sox(file, '-r', '44100', '-c', '2', stereo, 'pad', '1', '1');
    const heard = await voice.listen(createFileRecorder(stereo));
    expect(heard.outcome).toBe('speech');
    expect(heard.segments).toHaveLength(1);
    expect(heard.segments[0]!.start_ms).toBeGreaterThan(800);
    expect(createRecognizer(rules).recognize(heard.text)).toMatchObject({ intent: 'timer.set', slots: { minutes: 20 } });
  });

  it('hears two utterances separated by a pause when asked for two segments', async () => {
    const a = await speak('hello', 'a.wav');
    const b = await speak('what comes next', 'b.wav');
    const both = join(dir, 'both.wav');
    // Two seconds of silence between them: sox concatenates the files in order.
    const gap = join(dir, 'gap.wav');
    sox('-n', '-r', String(a.wav.sampleRate), '-c', '1', '-b', '16', gap, 'trim', '0', '2');
    sox(a.file, gap, b.file, both);
    const heard = await voice.listen(createFileRecorder(both), { maxSegments: 2 });
    expect(heard.segments.map((s) => s.text)).toEqual(['hello', 'what comes next']);
    expect(heard.text).toBe('hello what comes next');
  });

  it('ends the utterance when speech ends, without waiting for a live-paced source to end', async () => {
    const { file } = await speak('what comes next', 'live.wav');
    const live = join(dir, 'live-padded.wav');
    sox(file, live, 'pad', '0.5', '5');
    const started = performance.now();
    const heard = await voice.listen(createFileRecorder(live, { realtime: 1 }));
    const wall = performance.now() - started;
    expect(heard.text).toBe('what comes next');
    // ~0.5 s lead + ~1 s of speech + ~0.8 s of trailing silence for the VAD to call the end; the file is 6.5 s.
    expect(heard.timings.audio_ms).toBeLessThan(4000);
    // Paced like a microphone, reading the whole file would take 6.5 s.
    expect(wall).toBeLessThan(6000);
  });

  it('gives up after the timeout on a live-paced source with no speech', async () => {
    const long = join(dir, 'long-silence.wav');
    sox('-n', '-r', '16000', '-c', '1', '-b', '16', long, 'trim', '0', '10');
    const started = performance.now();
    const heard = await voice.listen(createFileRecorder(long, { realtime: 1 }), { timeoutMs: 400 });
    expect(performance.now() - started).toBeLessThan(2500);
    expect(heard.outcome).toBe('no_speech');
    expect(heard.timings.audio_ms).toBeLessThan(1500);
  });

  it('stops listening with RUN_CANCELLED when its signal aborts', async () => {
    const long = join(dir, 'long-silence-2.wav');
    sox('-n', '-r', '16000', '-c', '1', '-b', '16', long, 'trim', '0', '10');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await expect(voice.listen(createFileRecorder(long, { realtime: 1 }), { signal: ac.signal })).rejects.toMatchObject({ code: 'RUN_CANCELLED' });
  });
});
