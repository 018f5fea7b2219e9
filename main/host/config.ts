/**
 * Where things live and how the host is reached: the data folder, the listen address and the API token.
 * Precedence for each setting: command-line flag, then environment variable, then default.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { TesseraError } from '../common/errors.js';
import type { Logger } from '../runtime/log/index.js';
import { BUILTIN_CITY_DIR } from './paths.js';

export const DEFAULT_PORT = 7420;
export const DEFAULT_HOST = '127.0.0.1';
export const TOKEN_FILE = 'api-token';

/** The platform's user-data folder for Tessera — the same folder Electron's `app.getPath('userData')` gives. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home = homedir()): string {
  if (platform === 'win32') return join(env['APPDATA'] ?? join(home, 'AppData', 'Roaming'), 'Tessera');
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'Tessera');
  return join(env['XDG_CONFIG_HOME'] || join(home, '.config'), 'Tessera');
}

export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env['TESSERA_DATA'] || defaultDataDir(env);
}

export function parsePort(value: string | undefined, fallback = DEFAULT_PORT): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new TesseraError('CONFIG_INVALID', `--port must be an integer from 0 to 65535 (0 picks a free port), got "${value}"`);
  }
  return Number(value);
}

export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (!st.isDirectory()) throw new Error('not a folder');
  } catch (cause) {
    throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot use ${dir} as the data folder: ${(cause as Error).message}`, { cause });
  }
}

const TOKEN_SHAPE = /^[A-Za-z0-9._~+/=-]{16,512}$/;

/**
 * The API token: `TESSERA_TOKEN` when set, else `<data>/api-token`, created on first start with 256 random
 * bits, mode 0600, written atomically (temp file + rename) so a crash never leaves a half-written token.
 */
export function loadOrCreateToken(dataDir: string, env: NodeJS.ProcessEnv, logger?: Logger): { token: string; source: 'env' | 'file' | 'created' } {
  const fromEnv = env['TESSERA_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!TOKEN_SHAPE.test(fromEnv)) throw new TesseraError('CONFIG_INVALID', 'TESSERA_TOKEN must be 16–512 characters of letters, digits or . _ ~ + / = -');
    return { token: fromEnv, source: 'env' };
  }
  const file = join(dataDir, TOKEN_FILE);
  let existing: string | undefined;
  try {
    existing = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot read ${file}: ${(err as Error).message}`);
    }
  }
  if (existing !== undefined && TOKEN_SHAPE.test(existing)) {
    if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) {
      chmodSync(file, 0o600);
      logger?.warn('the API token file was readable by others; its mode is now 0600', { file });
    }
    return { token: existing, source: 'file' };
  }
  if (existing !== undefined) logger?.warn('the API token file is malformed; writing a new token', { file });
  const token = newToken();
  writeSecretFile(file, token + '\n');
  return { token, source: 'created' };
}

/**
 * Writes a secret file of the data folder (the API token, the operator PIN's hash): mode 0600, written atomically
 * (temp file, fsync, rename) so a crash never leaves a half-written one. DATA_DIR_UNUSABLE when it cannot.
 */
export function writeSecretFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (cause) {
    throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot write ${file}: ${(cause as Error).message}`, { cause });
  }
}

const STT_MODES = ['auto', 'pocketsphinx', 'whisper', 'off'] as const;

/**
 * Voice settings from the environment: `TESSERA_STT` (auto | pocketsphinx | whisper | off),
 * `TESSERA_WHISPER_MODEL` (a transformers.js Whisper folder; used by `auto` when set) and `TESSERA_TTS_VOICE`
 * (an espeak-ng voice such as `en-us+klatt`, checked against the engine's list when voice starts).
 */
export function voiceSettingsFromEnv(env: NodeJS.ProcessEnv): { stt?: (typeof STT_MODES)[number]; whisperModelDir?: string; ttsVoice?: string; audioOutDir?: string } {
  const stt = env['TESSERA_STT'];
  if (stt !== undefined && stt !== '' && !(STT_MODES as readonly string[]).includes(stt)) {
    throw new TesseraError('CONFIG_INVALID', `TESSERA_STT must be one of ${STT_MODES.join(', ')}; got "${stt}".`);
  }
  const model = env['TESSERA_WHISPER_MODEL'];
  if (stt === 'whisper' && !model) throw new TesseraError('CONFIG_INVALID', 'TESSERA_STT=whisper needs TESSERA_WHISPER_MODEL: the folder of a transformers.js Whisper export (config.json and onnx/).');
  const voice = env['TESSERA_TTS_VOICE'];
  const audioOut = env['TESSERA_AUDIO_OUT'];
  return {
    ...(audioOut ? { audioOutDir: resolve(audioOut) } : {}),
    ...(stt ? { stt: stt as (typeof STT_MODES)[number] } : {}),
    ...(model ? { whisperModelDir: model } : {}),
    ...(voice ? { ttsVoice: voice } : {}),
  };
}

/**
 * The parent folders of city packages: `TESSERA_CITY_PACKAGES` (path-list; empty: none) when set, else the
 * built-in resources/city then `<data>/city`.
 */
export function cityPackageDirs(env: NodeJS.ProcessEnv, dataDir: string): string[] {
  const listed = env['TESSERA_CITY_PACKAGES'];
  if (listed !== undefined) return listed.split(delimiter).filter((d) => d.trim() !== '').map((d) => resolve(d));
  return [BUILTIN_CITY_DIR, join(dataDir, 'city')];
}

/**
 * A new bearer token: 256 random bits, base64url, never starting with `-` (a token passed as `--token T` must not
 * read as an option, which one random token in 64 would).
 */
export function newToken(): string {
  for (;;) {
    const token = randomBytes(32).toString('base64url');
    if (!token.startsWith('-')) return token;
  }
}
