import { readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDataDir, loadOrCreateToken, parsePort, resolveDataDir, voiceSettingsFromEnv } from '../../main/host/config.js';
import { tempDir } from '../helpers/tmp.js';

describe('host configuration', () => {
  it('takes the data folder from --data, then TESSERA_DATA, then the platform user-data folder', () => {
    expect(resolveDataDir('/flag', { TESSERA_DATA: '/env' })).toBe('/flag');
    expect(resolveDataDir(undefined, { TESSERA_DATA: '/env' })).toBe('/env');
    expect(defaultDataDir({ XDG_CONFIG_HOME: '/xdg' }, 'linux', '/home/u')).toBe('/xdg/Tessera');
    expect(defaultDataDir({}, 'linux', '/home/u')).toBe('/home/u/.config/Tessera');
    expect(defaultDataDir({}, 'darwin', '/Users/u')).toBe('/Users/u/Library/Application Support/Tessera');
    expect(defaultDataDir({ APPDATA: 'C:\\AppData' }, 'win32', 'C:\\u')).toContain('Tessera');
  });

  it('validates ports', () => {
    expect(parsePort(undefined)).toBe(7420);
    expect(parsePort('0')).toBe(0);
    expect(parsePort('8080')).toBe(8080);
    for (const bad of ['-1', '65536', 'http', '80.5', '']) expect(() => parsePort(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('creates the API token once, mode 0600, and reuses it', () => {
    const dir = tempDir();
    const first = loadOrCreateToken(dir, {});
    expect(first.source).toBe('created');
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(join(dir, 'api-token')).mode & 0o777).toBe(0o600);
    const second = loadOrCreateToken(dir, {});
    expect(second).toEqual({ token: first.token, source: 'file' });
  });

  it('prefers TESSERA_TOKEN and rejects a malformed one', () => {
    const dir = tempDir();
    expect(loadOrCreateToken(dir, { TESSERA_TOKEN: 'a-long-enough-token-123' })).toEqual({ token: 'a-long-enough-token-123', source: 'env' });
    expect(() => loadOrCreateToken(dir, { TESSERA_TOKEN: 'short' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('tightens a token file readable by others and replaces a malformed one', () => {
    const dir = tempDir();
    const file = join(dir, 'api-token');
    writeFileSync(file, 'abcdefghijklmnopqrstuvwxyz012345\n');
    chmodSync(file, 0o644);
    expect(loadOrCreateToken(dir, {}).token).toBe('abcdefghijklmnopqrstuvwxyz012345');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, '');
    const fresh = loadOrCreateToken(dir, {});
    expect(fresh.source).toBe('created');
    expect(readFileSync(file, 'utf8').trim()).toBe(fresh.token);
  });

  it('reads the voice settings from TESSERA_STT, TESSERA_WHISPER_MODEL and TESSERA_TTS_VOICE, refusing bad values', () => {
    expect(voiceSettingsFromEnv({})).toEqual({});
    expect(voiceSettingsFromEnv({ TESSERA_STT: 'off', TESSERA_TTS_VOICE: 'en-us+klatt' })).toEqual({ stt: 'off', ttsVoice: 'en-us+klatt' });
    expect(voiceSettingsFromEnv({ TESSERA_AUDIO_OUT: '/tmp/said' })).toEqual({ audioOutDir: '/tmp/said' });
    expect(voiceSettingsFromEnv({ TESSERA_WHISPER_MODEL: '/models/whisper-tiny.en' })).toEqual({ whisperModelDir: '/models/whisper-tiny.en' });
    expect(() => voiceSettingsFromEnv({ TESSERA_STT: 'vosk' })).toThrow(/TESSERA_STT must be one of auto, pocketsphinx, whisper, off; got "vosk"/);
    expect(() => voiceSettingsFromEnv({ TESSERA_STT: 'whisper' })).toThrow(/needs TESSERA_WHISPER_MODEL/);
  });
});
