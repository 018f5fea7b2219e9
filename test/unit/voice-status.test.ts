import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleSet } from '../../main/runtime/intents/index.js';
import { createFileRecorder, createVoice, encodeWav } from '../../main/runtime/voice/index.js';
import type { VoiceTools } from '../../main/runtime/voice/index.js';
import { tempDir } from '../helpers/tmp.js';

const RULES = loadRuleSet(new URL('../../resources/intents/en.yaml', import.meta.url).pathname);
const BARE: VoiceTools = { platform: 'linux', soundCard: { present: false, detail: 'no sound card: test machine' } };

describe('createVoice on a machine without the speech tools', () => {
  it('starts, and says for each part why it is unavailable and which command fixes it', async () => {
    const voice = await createVoice({ ruleSets: [RULES], config: { cacheDir: join(tempDir(), 'cache') }, tools: BARE });
    try {
      const s = voice.status();
      expect(s.tts).toEqual({ available: false, reason: 'espeak-ng is not installed', fix: expect.stringContaining('sudo apt-get install -y espeak-ng') });
      expect(s.stt).toEqual({ available: false, reason: expect.stringContaining('pocketsphinx is not installed'), fix: expect.stringContaining('apt-get install -y pocketsphinx pocketsphinx-en-us') });
      expect(s.mic).toEqual({ available: false, reason: expect.stringContaining('neither sox nor arecord'), fix: expect.stringContaining('apt-get install -y sox') });
      expect(s.speaker).toEqual({ available: false, reason: expect.stringContaining('neither sox `play` nor `aplay`'), fix: expect.stringContaining('apt-get install -y sox') });
      // The VAD ships inside its npm package: it does not depend on system tools.
      expect(s.vad.available).toBe(true);
      await expect(voice.say('hello')).rejects.toMatchObject({ code: 'VOICE_UNAVAILABLE', message: expect.stringContaining('text-to-speech is not available: espeak-ng is not installed; fix: sudo apt-get install -y espeak-ng') });
      const wav = encodeWav({ sampleRate: 16_000, channels: 1, samples: new Int16Array(1600) });
      await expect(voice.listen(createFileRecorder(wav))).rejects.toMatchObject({ code: 'VOICE_UNAVAILABLE', message: expect.stringContaining('speech-to-text is not available: pocketsphinx is not installed') });
      expect(() => voice.microphone()).toThrow(expect.objectContaining({ code: 'VOICE_UNAVAILABLE' }));
    } finally {
      await voice.dispose();
    }
  });

  it('says the Whisper folder problem and falls back to nothing when pocketsphinx is missing too', async () => {
    const dir = tempDir();
    const voice = await createVoice({ ruleSets: [RULES], config: { cacheDir: join(dir, 'cache'), whisperModelDir: join(dir, 'no-model') }, tools: BARE });
    try {
      expect(voice.status().stt.reason).toMatch(/pocketsphinx is not installed.*; also Whisper is not available: the Whisper model folder .*no-model does not exist/);
    } finally {
      await voice.dispose();
    }
  });

  it('honours stt: off', async () => {
    const voice = await createVoice({ ruleSets: [RULES], config: { cacheDir: join(tempDir(), 'cache'), stt: 'off' }, tools: BARE });
    try {
      expect(voice.status().stt).toEqual({ available: false, reason: 'speech-to-text is switched off in the configuration (stt: off)' });
    } finally {
      await voice.dispose();
    }
  });
});
