/**
 * Text-to-speech engines (issue 6 point 3): espeak-ng on Linux, `say` on macOS, System.Speech through
 * PowerShell on Windows — chosen by what {@link detectVoiceTools} finds, i.e. by the same checks as
 * `tessera doctor`.
 *
 * Safety contract: the text is validated (./text.ts) and always written to the program's **stdin**; it never
 * appears in argv, in an environment variable or in a script. Voices are checked against the engine's own
 * list, rates against a range; the only other argv elements are constants and a temp-file path we made. So
 * quotes, `$(…)`, backticks, leading dashes and festival `(SayText …)` forms are spoken as words. The
 * invocation builders are pure and exported so tests can check exactly what would run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import type { VoiceTools } from './detect.js';
import { aptFix } from './detect.js';
import type { Invocation } from './proc.js';
import { nowMs, runProcess } from './proc.js';
import { validateRate, validateSpeechText, validateVoice } from './text.js';
import type { PartStatus, Synthesis, SynthesizeOptions, TtsEngine, TtsEngineId } from './types.js';
import { parseWav } from './wav.js';

/** Voice and rate after validation. */
export interface SpeechParams {
  voice?: string;
  rate?: number;
}

/** espeak-ng writing a WAV to stdout, reading the text from stdin. */
export function espeakInvocation(bin: string, text: string, params: SpeechParams = {}): Invocation {
  const args = ['--stdout', '--stdin'];
  if (params.voice !== undefined) args.push('-v', params.voice);
  if (params.rate !== undefined) args.push('-s', String(params.rate));
  return { cmd: bin, args, stdin: text };
}

/**
 * macOS `say` writing 16-bit 22 050 Hz WAV to `outFile`, reading the text from stdin (`-f -`). `[[…]]`
 * embedded speech commands (volume, rate, silence…) are neutralized: they are not for callers to send.
 */
export function macSayInvocation(bin: string, text: string, params: SpeechParams, outFile: string): Invocation {
  const args = ['-o', outFile, '--file-format=WAVE', '--data-format=LEI16@22050', '-f', '-'];
  if (params.voice !== undefined) args.push('-v', params.voice);
  if (params.rate !== undefined) args.push('-r', String(params.rate));
  return { cmd: bin, args, stdin: text.replace(/\[\[|\]\]/g, ' ') };
}

/**
 * The PowerShell program for Windows: a constant. Parameters come from environment variables that hold only
 * validated values (voice from the installed list, an integer rate, our temp path); the text is read from
 * stdin and spoken with `Speak` (plain text, never SSML).
 */
export const WINDOWS_SPEECH_SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  '[Console]::InputEncoding = [System.Text.Encoding]::UTF8',
  'Add-Type -AssemblyName System.Speech',
  '$s = New-Object System.Speech.Synthesis.SpeechSynthesizer',
  'if ($env:TESSERA_TTS_VOICE) { $s.SelectVoice($env:TESSERA_TTS_VOICE) }',
  '$s.Rate = [int]$env:TESSERA_TTS_RATE',
  '$f = New-Object System.Speech.AudioFormat.SpeechAudioFormatInfo(22050, [System.Speech.AudioFormat.AudioBitsPerSample]::Sixteen, [System.Speech.AudioFormat.AudioChannel]::Mono)',
  '$s.SetOutputToWaveFile($env:TESSERA_TTS_OUT, $f)',
  '$s.Speak([Console]::In.ReadToEnd())',
  '$s.Dispose()',
].join('; ');

/** Lists the installed System.Speech voices, one name per line. */
export const WINDOWS_VOICES_SCRIPT = "Add-Type -AssemblyName System.Speech; (New-Object System.Speech.Synthesis.SpeechSynthesizer).GetInstalledVoices() | ForEach-Object { $_.VoiceInfo.Name }";

/** System.Speech's rate is −10…10 around ~180 words per minute; 20 wpm a step. */
export function windowsRate(wpm: number | undefined): number {
  return wpm === undefined ? 0 : Math.max(-10, Math.min(10, Math.round((wpm - 180) / 20)));
}

/** PowerShell running {@link WINDOWS_SPEECH_SCRIPT}, text on stdin. */
export function windowsSpeechInvocation(bin: string, text: string, params: SpeechParams, outFile: string): Invocation {
  const env: Record<string, string> = { TESSERA_TTS_OUT: outFile, TESSERA_TTS_RATE: String(windowsRate(params.rate)), TESSERA_TTS_VOICE: params.voice ?? '' };
  return { cmd: bin, args: ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command', WINDOWS_SPEECH_SCRIPT], stdin: text, env };
}

/** Voice names from `espeak-ng --voices`: the language codes and the voice names (columns 2 and 4). */
export function parseEspeakVoices(listing: string): string[] {
  const voices = new Set<string>();
  for (const line of listing.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 5) {
      voices.add(cols[1]!);
      voices.add(cols[3]!);
    }
  }
  return [...voices];
}

/** Variant names from `espeak-ng --voices=variant` (the file column without `!v/`: "klatt", "m3", "Alex"). */
export function parseEspeakVariants(listing: string): string[] {
  const variants: string[] = [];
  for (const line of listing.split('\n').slice(1)) {
    const file = line.trim().split(/\s+/)[4];
    if (file?.startsWith('!v/')) variants.push(file.slice(3));
  }
  return variants;
}

/**
 * An espeak-ng voice: a voice from the list, optionally with `+variant` from the variant list
 * ("en-us+klatt"). Throws VALIDATION_FAILED otherwise.
 */
export function validateEspeakVoice(voice: string, voices: readonly string[], variants: readonly string[]): string {
  const plus = voice.indexOf('+');
  if (plus < 0) return validateVoice(voice, voices);
  validateVoice(voice.slice(0, plus), voices);
  validateVoice(voice.slice(plus + 1), variants);
  return voice;
}

/** Voice names from macOS `say -v '?'` ("Alex    en_US    # …"; names may contain spaces). */
export function parseMacVoices(listing: string): string[] {
  const voices: string[] = [];
  for (const line of listing.split('\n')) {
    const m = /^(.+?)\s{2,}[a-z]{2,3}[_-][A-Za-z0-9]+\s+#/.exec(line);
    if (m) voices.push(m[1]!.trim());
  }
  return voices;
}

function checkParams(options: SynthesizeOptions, spec: EngineSpec): SpeechParams {
  const params: SpeechParams = {};
  if (options.voice !== undefined) params.voice = spec.validateVoice ? spec.validateVoice(options.voice) : validateVoice(options.voice, spec.voices);
  if (options.rate !== undefined) params.rate = validateRate(options.rate);
  return params;
}

interface EngineSpec {
  id: TtsEngineId;
  bin: string;
  voices: readonly string[];
  /** Build the invocation; `outFile` is set for engines that write a file. */
  invocation(text: string, params: SpeechParams, outFile: string | undefined): Invocation;
  writesFile: boolean;
  /** A voice check other than "is in `voices`". */
  validateVoice?: (voice: string) => string;
}

function engineFrom(spec: EngineSpec): TtsEngine {
  return {
    id: spec.id,
    voices: () => spec.voices,
    async synthesize(text, options = {}) {
      const clean = validateSpeechText(text);
      const params = checkParams(options, spec);
      const started = nowMs();
      let firstAudio: number | undefined;
      const markFirst = () => {
        if (firstAudio !== undefined) return;
        firstAudio = nowMs() - started;
        options.onFirstAudio?.(firstAudio);
      };
      const dir = spec.writesFile ? mkdtempSync(join(tmpdir(), 'tessera-tts-')) : undefined;
      try {
        const outFile = dir ? join(dir, 'speech.wav') : undefined;
        const result = await runProcess(spec.invocation(clean, params, outFile), { ...(options.signal ? { signal: options.signal } : {}), onFirstOutput: spec.writesFile ? undefined : markFirst });
        if (result.code !== 0) {
          throw new TesseraError('VOICE_UNAVAILABLE', `${spec.id} failed (exit ${result.code}): ${result.stderr.trim().split('\n')[0] ?? ''}`.trim());
        }
        const bytes = outFile ? readFileSync(outFile) : result.stdout;
        markFirst();
        const wav = parseWav(bytes, `${spec.id} output`);
        return { engine: spec.id, wav, first_audio_ms: firstAudio!, total_ms: nowMs() - started } satisfies Synthesis;
      } finally {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** espeak-ng; its voices are read once with `espeak-ng --voices`. */
export async function createEspeakEngine(bin: string): Promise<TtsEngine> {
  const listing = await runProcess({ cmd: bin, args: ['--voices'] }, { timeoutMs: 10_000 });
  const voices = parseEspeakVoices(listing.stdout.toString('utf8'));
  const variants = parseEspeakVariants((await runProcess({ cmd: bin, args: ['--voices=variant'] }, { timeoutMs: 10_000 })).stdout.toString('utf8'));
  return engineFrom({ id: 'espeak-ng', bin, voices, writesFile: false, validateVoice: (v) => validateEspeakVoice(v, voices, variants), invocation: (text, params) => espeakInvocation(bin, text, params) });
}

/** macOS `say`; its voices are read once with `say -v ?`. */
export async function createMacSayEngine(bin: string): Promise<TtsEngine> {
  const listing = await runProcess({ cmd: bin, args: ['-v', '?'] }, { timeoutMs: 10_000 });
  const voices = parseMacVoices(listing.stdout.toString('utf8'));
  return engineFrom({ id: 'say-macos', bin, voices, writesFile: true, invocation: (text, params, out) => macSayInvocation(bin, text, params, out!) });
}

/** Windows System.Speech through PowerShell; its voices are read once. */
export async function createWindowsSpeechEngine(bin: string): Promise<TtsEngine> {
  const listing = await runProcess({ cmd: bin, args: ['-NoProfile', '-NonInteractive', '-Command', WINDOWS_VOICES_SCRIPT] }, { timeoutMs: 20_000 });
  const voices = listing.stdout.toString('utf8').split(/\r?\n/).map((v) => v.trim()).filter(Boolean);
  return engineFrom({ id: 'say-windows', bin, voices, writesFile: true, invocation: (text, params, out) => windowsSpeechInvocation(bin, text, params, out!) });
}

/**
 * The text-to-speech engine for this machine: `say` on macOS, System.Speech on Windows, espeak-ng elsewhere
 * (or as a fallback). Without one, `engine` is undefined and `status` says what to install.
 */
export async function createTtsEngine(tools: VoiceTools): Promise<{ engine?: TtsEngine; status: PartStatus }> {
  const attempt = async (make: () => Promise<TtsEngine>, label: string) => {
    try {
      const engine = await make();
      return { engine, status: { available: true, engine: `${label} (${engine.voices().length} voices)` } };
    } catch (err) {
      return { status: { available: false, reason: `${label} is installed but does not run: ${(err as Error).message}` } };
    }
  };
  if (tools.platform === 'darwin' && tools.say) return attempt(() => createMacSayEngine(tools.say!), 'say (macOS)');
  if (tools.platform === 'win32' && tools.powershell) return attempt(() => createWindowsSpeechEngine(tools.powershell!), 'System.Speech (Windows)');
  if (tools.espeak) return attempt(() => createEspeakEngine(tools.espeak!), 'espeak-ng');
  const fix = tools.platform === 'darwin' ? 'macOS ships `say` in /usr/bin; check PATH' : tools.platform === 'win32' ? 'install Windows PowerShell (System.Speech ships with .NET Framework)' : aptFix('espeak-ng');
  return { status: { available: false, reason: tools.platform === 'linux' ? 'espeak-ng is not installed' : 'no text-to-speech program found', fix } };
}
