/**
 * The runtime's speech stack (issue 6 point 7): built from the speech module with the engines `tessera doctor`
 * finds, its recognition grammar compiled from the loaded intent rules. When no part works (espeak-ng,
 * pocketsphinx and sox all missing, or the stack fails to start) the runtime runs with voice disabled and the
 * reason — with the install command — goes to `/api/io/status` and the journal (`io.voice.status`).
 */
import { join } from 'node:path';
import { toErrorData } from '../../common/errors.js';
import type { RuleSet } from '../intents/index.js';
import type { Logger } from '../log/index.js';
import { createVoice } from '../voice/index.js';
import type { PartStatus, VoiceStatus } from '../voice/types.js';
import type { VoiceConfig } from '../voice/index.js';
import type { VoiceSetup } from './channels.js';

/** "tts: espeak-ng is not installed (fix: sudo apt-get install -y espeak-ng …); stt: …" */
export function describeMissing(status: VoiceStatus): string {
  return (Object.entries(status) as Array<[string, PartStatus]>)
    .filter(([, s]) => !s.available)
    .map(([part, s]) => `${part}: ${s.reason ?? 'unavailable'}${s.fix ? ` (fix: ${s.fix})` : ''}`)
    .join('; ');
}

/** The operator's voice settings (`TESSERA_STT`, `TESSERA_WHISPER_MODEL`, `TESSERA_TTS_VOICE`); the cache folder is the runtime's. */
export type VoiceSettings = Omit<VoiceConfig, 'cacheDir'>;

export async function createDefaultVoice(ruleSets: readonly RuleSet[], options: { dataDir: string; logger: Logger; config?: VoiceSettings }): Promise<VoiceSetup> {
  try {
    const voice = await createVoice({ ruleSets, config: { ...options.config, cacheDir: join(options.dataDir, 'voice') }, logger: options.logger });
    const status = voice.status();
    if (!status.tts.available && !status.stt.available) {
      await voice.dispose();
      return { reason: `no speech engine works here — ${describeMissing(status)}` };
    }
    const missing = describeMissing(status);
    if (missing) options.logger.info('voice is partly available', { missing });
    return { voice };
  } catch (err) {
    return { reason: `the speech stack failed to start: ${toErrorData(err).message}` };
  }
}
