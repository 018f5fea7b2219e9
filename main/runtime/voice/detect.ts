/**
 * What this machine has of the voice tool chain: the same facts `tessera doctor` reports, found the same way
 * (executables on PATH, the pocketsphinx model folder), plus whether there is a sound card. Cheap and
 * synchronous (file-system checks only; no process is started), so the runtime can call it at start.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Where the Debian `pocketsphinx-en-us` package puts the US English model. */
export const SPHINX_MODEL_DIRS = ['/usr/share/pocketsphinx/model/en-us', '/usr/local/share/pocketsphinx/model/en-us'];

/** The apt-get command that installs a Debian package (as doctor prints it). */
export const aptFix = (pkgs: string): string => `sudo apt-get install -y ${pkgs}   (or: npm run setup)`;

/** The US English acoustic model and pronunciation dictionary of pocketsphinx. */
export interface SphinxModel {
  /** The acoustic model folder (`-hmm`). */
  hmm: string;
  /** The CMU pronunciation dictionary (`-dict`). */
  dict: string;
}

/** Voice tools found on this machine; a field is undefined when the tool is missing. */
export interface VoiceTools {
  platform: NodeJS.Platform;
  /** espeak-ng (Linux text-to-speech). */
  espeak?: string;
  /** macOS `say`. */
  say?: string;
  /** Windows PowerShell (System.Speech). */
  powershell?: string;
  /** `pocketsphinx_continuous` (Debian's pocketsphinx 0.8 package). */
  pocketsphinx?: string;
  sphinxModel?: SphinxModel;
  /** sox, and its `rec`/`play` front ends (capture and playback). */
  sox?: string;
  rec?: string;
  play?: string;
  /** ALSA capture and playback. */
  arecord?: string;
  aplay?: string;
  /** Whether an audio device exists. On Linux: /proc/asound/cards lists one; elsewhere assumed. */
  soundCard: { present: boolean; detail: string };
}

/** First of `names` that is an executable file in a PATH folder (Windows: also with .exe). */
export function findExecutable(names: readonly string[], env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string | undefined {
  const dirs = (env['PATH'] ?? env['Path'] ?? '').split(delimiter).filter(Boolean);
  const exts = platform === 'win32' ? ['.exe', ''] : [''];
  for (const name of names) {
    for (const dir of dirs) {
      for (const ext of exts) {
        const candidate = join(dir, name + ext);
        try {
          accessSync(candidate, constants.X_OK);
          return candidate;
        } catch {
          // not here
        }
      }
    }
  }
  return undefined;
}

/** Whether ALSA sees a sound card (Linux); other platforms are assumed to have one. */
export function detectSoundCard(platform: NodeJS.Platform = process.platform, cardsFile = '/proc/asound/cards'): { present: boolean; detail: string } {
  if (platform !== 'linux') return { present: true, detail: 'assumed (not Linux)' };
  let text: string;
  try {
    text = readFileSync(cardsFile, 'utf8');
  } catch {
    return { present: false, detail: `no sound card: ${cardsFile} does not exist (no ALSA driver loaded)` };
  }
  if (/no soundcards/i.test(text) || text.trim() === '') return { present: false, detail: `no sound card: ${cardsFile} lists none` };
  const first = text.split('\n')[0]!.trim();
  return { present: true, detail: first };
}

/** Find the voice tools (see {@link VoiceTools}). `env` and `platform` are parameters for tests. */
export function detectVoiceTools(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): VoiceTools {
  const find = (...names: string[]) => findExecutable(names, env, platform);
  const modelDir = SPHINX_MODEL_DIRS.find((d) => existsSync(join(d, 'en-us', 'mdef')) && existsSync(join(d, 'cmudict-en-us.dict')));
  const tools: VoiceTools = { platform, soundCard: detectSoundCard(platform) };
  const set = <K extends keyof VoiceTools>(key: K, value: VoiceTools[K] | undefined) => {
    if (value !== undefined) tools[key] = value;
  };
  set('espeak', find('espeak-ng'));
  if (platform === 'darwin') set('say', find('say'));
  if (platform === 'win32') set('powershell', find('powershell', 'pwsh'));
  set('pocketsphinx', find('pocketsphinx_continuous'));
  if (modelDir) tools.sphinxModel = { hmm: join(modelDir, 'en-us'), dict: join(modelDir, 'cmudict-en-us.dict') };
  set('sox', find('sox'));
  set('rec', find('rec'));
  set('play', find('play'));
  set('arecord', find('arecord'));
  set('aplay', find('aplay'));
  return tools;
}
