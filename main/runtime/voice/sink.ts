/**
 * Audio sinks: the system player (sox `play` or ALSA `aplay`, WAV on stdin) and a file-backed sink that
 * stands in for the sound card in tests and keeps a timeline of what "played" when.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import type { VoiceTools } from './detect.js';
import { aptFix } from './detect.js';
import type { Invocation } from './proc.js';
import { runProcess, wallMs } from './proc.js';
import type { AudioSink, FileSink, PartStatus, Playback, TimelineEntry, Wav } from './types.js';
import { durationMs, encodeWav } from './wav.js';

/** How the system player would be run: sox `play` (any platform) or ALSA `aplay`, the WAV on stdin. */
export function playerInvocation(tools: VoiceTools): Invocation | undefined {
  if (tools.play) return { cmd: tools.play, args: ['-q', '-t', 'wav', '-'] };
  if (tools.aplay) return { cmd: tools.aplay, args: ['-q', '-t', 'wav', '-'] };
  return undefined;
}

/** Whether this machine can play audio, and why not. */
export function speakerStatus(tools: VoiceTools): PartStatus {
  const inv = playerInvocation(tools);
  if (!inv) return { available: false, reason: 'no audio player: neither sox `play` nor `aplay` is installed', fix: aptFix('sox') };
  if (!tools.soundCard.present) return { available: false, reason: tools.soundCard.detail, fix: 'attach or enable an audio device; speech output goes to inbox.local until then' };
  return { available: true, engine: `${inv.cmd} (${tools.soundCard.detail})` };
}

/**
 * The system player. `play` throws VOICE_UNAVAILABLE (with the reason) when {@link speakerStatus} says there is
 * no player or no sound card, or when the player exits with an error.
 */
export function createPlayerSink(tools: VoiceTools): AudioSink {
  const inv = playerInvocation(tools);
  const status = speakerStatus(tools);
  return {
    id: inv ? `player:${inv.cmd}` : 'player:none',
    async play(wav, signal) {
      if (!status.available || !inv) throw new TesseraError('VOICE_UNAVAILABLE', `cannot play audio: ${status.reason}${status.fix ? `; ${status.fix}` : ''}`);
      const started_at = wallMs();
      const timeoutMs = durationMs(wav) + 10_000;
      const result = await runProcess({ ...inv, stdin: encodeWav(wav) }, { ...(signal ? { signal } : {}), timeoutMs });
      if (result.code !== 0) throw new TesseraError('VOICE_UNAVAILABLE', `cannot play audio: ${inv.cmd} exited with ${result.code}: ${result.stderr.trim().split('\n').pop() ?? ''}`);
      return { started_at, ended_at: wallMs() };
    },
  };
}

export interface FileSinkOptions {
  /**
   * Hold each utterance for `pace × its duration` before `play` resolves (0, the default, returns as soon as
   * the file is written; 1 is real time). Makes overlapping playbacks visible on the timeline.
   */
  pace?: number;
}

/** A sink that writes `0001.wav`, `0002.wav`, … into `dir` (created if missing) and records a timeline. */
export function createFileSink(dir: string, options: FileSinkOptions = {}): FileSink {
  const pace = options.pace ?? 0;
  if (!(pace >= 0)) throw new TesseraError('VALIDATION_FAILED', `pace must be 0 or more, got ${pace}`);
  mkdirSync(dir, { recursive: true });
  const timeline: TimelineEntry[] = [];
  let count = 0;
  return {
    id: `file:${dir}`,
    dir,
    timeline,
    async play(wav: Wav, signal?: AbortSignal): Promise<Playback> {
      if (signal?.aborted) throw new TesseraError('RUN_CANCELLED', 'playback was cancelled');
      const started_at = wallMs();
      const file = join(dir, `${String(++count).padStart(4, '0')}.wav`);
      writeFileSync(file, encodeWav(wav));
      const duration_ms = durationMs(wav);
      // A cancelled utterance still occupied the device until it was cancelled: it goes on the timeline too.
      let ended_at = started_at;
      try {
        if (pace > 0) await hold(duration_ms * pace, signal);
      } finally {
        ended_at = wallMs();
        timeline.push({ file, duration_ms, started_at, ended_at });
      }
      return { started_at, ended_at };
    },
  };
}

function hold(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new TesseraError('RUN_CANCELLED', 'playback was cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
