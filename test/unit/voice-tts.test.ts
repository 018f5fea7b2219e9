import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectSoundCard, detectVoiceTools, findExecutable } from '../../main/runtime/voice/detect.js';
import { MAX_SPEECH_CHARS, validateRate, validateSpeechText } from '../../main/runtime/voice/text.js';
import {
  WINDOWS_SPEECH_SCRIPT,
  createTtsEngine,
  espeakInvocation,
  macSayInvocation,
  parseEspeakVariants,
  parseEspeakVoices,
  parseMacVoices,
  validateEspeakVoice,
  windowsRate,
  windowsSpeechInvocation,
} from '../../main/runtime/voice/tts.js';
import { tempDir } from '../helpers/tmp.js';

/** Texts that would run code or change the engine's behaviour if they reached a shell, argv or a script. */
const HOSTILE = [
  `it's "quoted" and 'single'`,
  '$(touch /tmp/tessera-pwned)',
  '`id` and ${HOME}',
  '-v xx --stdout /etc/passwd',
  '--help',
  '(SayText "pwned") (system "rm -rf /")',
  '; rm -rf / & | > /tmp/x',
  "'; Remove-Item C:\\ -Recurse; '",
  '$env:PATH; [System.IO.File]::Delete("x")',
  '<speak><audio src="http://x"/></speak>',
  '[[volm 0]] quiet please',
];

describe('speech text validation', () => {
  it('turns line breaks and tabs into spaces and trims', () => {
    expect(validateSpeechText('  line one\nline two\r\n\tend ')).toBe('line one line two end');
  });

  it.each([
    ['a NUL', 'a\u0000b', /U\+0000 at position 1/],
    ['an escape sequence', 'x\u001b[31m', /U\+001B at position 1/],
    ['a C1 control', 'x\u0085', /U\+0085/],
    ['a bidi override', 'abc\u202edef', /U\+202E at position 3/],
    ['only spaces', ' \n\t ', /empty/],
    ['too many characters', 'a'.repeat(MAX_SPEECH_CHARS + 1), /the limit is 2000/],
  ])('refuses %s with VALIDATION_FAILED', (_name, text, message) => {
    expect(() => validateSpeechText(text)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringMatching(message) }));
  });

  it('refuses rates outside 80–450 words per minute', () => {
    expect(validateRate(175)).toBe(175);
    for (const bad of [79, 451, 150.5, Number.NaN]) expect(() => validateRate(bad)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});

describe('TTS invocations carry the text on stdin only', () => {
  it.each(HOSTILE)('espeak-ng: %s', (text) => {
    const inv = espeakInvocation('/usr/bin/espeak-ng', text, { voice: 'en-us', rate: 160 });
    expect(inv.cmd).toBe('/usr/bin/espeak-ng');
    expect(inv.args).toEqual(['--stdout', '--stdin', '-v', 'en-us', '-s', '160']);
    expect(inv.stdin).toBe(text);
    expect(inv.env).toBeUndefined();
  });

  it.each(HOSTILE)('macOS say: %s', (text) => {
    const inv = macSayInvocation('/usr/bin/say', text, { voice: 'Samantha' }, '/tmp/t/speech.wav');
    expect(inv.args).toEqual(['-o', '/tmp/t/speech.wav', '--file-format=WAVE', '--data-format=LEI16@22050', '-f', '-', '-v', 'Samantha']);
    expect(inv.stdin).toBe(text.replace(/\[\[|\]\]/g, ' '));
    expect(String(inv.stdin)).not.toContain('[[');
  });

  it.each(HOSTILE)('Windows System.Speech: %s', (text) => {
    const inv = windowsSpeechInvocation('C:\\ps.exe', text, { voice: 'Microsoft Zira Desktop', rate: 220 }, 'C:\\t\\s.wav');
    expect(inv.args).toEqual(['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command', WINDOWS_SPEECH_SCRIPT]);
    expect(inv.stdin).toBe(text);
    expect(inv.env).toEqual({ TESSERA_TTS_OUT: 'C:\\t\\s.wav', TESSERA_TTS_RATE: '2', TESSERA_TTS_VOICE: 'Microsoft Zira Desktop' });
    // The script speaks plain text from stdin, never SSML, and has no place a value is spliced in.
    expect(WINDOWS_SPEECH_SCRIPT).toContain('$s.Speak([Console]::In.ReadToEnd())');
    expect(WINDOWS_SPEECH_SCRIPT).not.toMatch(/SpeakSsml|Invoke-Expression|iex /);
  });

  it('maps words per minute to System.Speech rates, clamped to −10…10', () => {
    expect([windowsRate(undefined), windowsRate(180), windowsRate(80), windowsRate(450), windowsRate(240)]).toEqual([0, 0, -5, 10, 3]);
  });
});

describe('voice lists', () => {
  const espeakListing = [
    'Pty Language       Age/Gender VoiceName          File                 Other Languages',
    ' 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)',
    ' 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)',
  ].join('\n');
  const variantListing = ['Pty Language       Age/Gender VoiceName          File                 Other Languages', ' 5  variant         --/M      Klatt              !v/klatt', ' 5  variant         --/M      Alex               !v/Alex'].join('\n');

  it('reads espeak-ng voices and variants, and accepts voice+variant only from those lists', () => {
    const voices = parseEspeakVoices(espeakListing);
    const variants = parseEspeakVariants(variantListing);
    expect(voices).toEqual(['en-gb', 'English_(Great_Britain)', 'en-us', 'English_(America)']);
    expect(variants).toEqual(['klatt', 'Alex']);
    expect(validateEspeakVoice('en-us+klatt', voices, variants)).toBe('en-us+klatt');
    for (const bad of ['en-us+nope', 'xx', '-v', 'en-us+klatt+klatt', 'en-us; rm -rf /']) {
      expect(() => validateEspeakVoice(bad, voices, variants), bad).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    }
  });

  it('reads macOS voices, including names with spaces', () => {
    const listing = ['Alex                en_US    # Most people recognize me by my voice.', 'Bad News            en_US    # The light you see at the end of the tunnel', 'Amélie              fr_CA    # Bonjour'].join('\n');
    expect(parseMacVoices(listing)).toEqual(['Alex', 'Bad News', 'Amélie']);
  });
});

describe('detecting the voice tools', () => {
  it('finds executables on the given PATH only', () => {
    const dir = tempDir();
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const name of ['espeak-ng', 'pocketsphinx_continuous', 'sox']) {
      writeFileSync(join(bin, name), '#!/bin/sh\n');
      chmodSync(join(bin, name), 0o755);
    }
    writeFileSync(join(bin, 'play'), 'not executable');
    const tools = detectVoiceTools({ PATH: bin }, 'linux');
    expect(tools.espeak).toBe(join(bin, 'espeak-ng'));
    expect(tools.pocketsphinx).toBe(join(bin, 'pocketsphinx_continuous'));
    expect(tools.sox).toBe(join(bin, 'sox'));
    expect(tools.play).toBeUndefined();
    expect(findExecutable(['nothing-here'], { PATH: bin })).toBeUndefined();
    expect(detectVoiceTools({ PATH: '' }, 'linux').espeak).toBeUndefined();
  });

  it('says whether ALSA lists a sound card, and why not', () => {
    const dir = tempDir();
    const none = join(dir, 'none');
    const one = join(dir, 'one');
    writeFileSync(none, '--- no soundcards ---\n');
    writeFileSync(one, ' 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n');
    expect(detectSoundCard('linux', join(dir, 'missing'))).toEqual({ present: false, detail: expect.stringContaining('does not exist') });
    expect(detectSoundCard('linux', none)).toEqual({ present: false, detail: expect.stringContaining('lists none') });
    expect(detectSoundCard('linux', one)).toEqual({ present: true, detail: '0 [PCH            ]: HDA-Intel - HDA Intel PCH' });
    expect(detectSoundCard('darwin').present).toBe(true);
  });

  it('reports no TTS engine with the install command when espeak-ng is missing', async () => {
    const { engine, status } = await createTtsEngine({ platform: 'linux', soundCard: { present: false, detail: '' } });
    expect(engine).toBeUndefined();
    expect(status).toEqual({ available: false, reason: 'espeak-ng is not installed', fix: expect.stringContaining('apt-get install -y espeak-ng') });
  });
});
