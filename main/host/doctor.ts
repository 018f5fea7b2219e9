/**
 * `tessera doctor`: what this machine has of what Tessera can use. Core parts decide the exit code; optional
 * parts (Electron, a display, Chromium, isolated-vm, speech tools) are reported with the command that
 * installs them.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type IsolatedVm from 'isolated-vm';
import { detectSoundCard } from '../runtime/voice/detect.js';

export interface Check {
  name: string;
  core: boolean;
  ok: boolean;
  detail: string;
  /** How to get it when missing. */
  fix?: string;
}

const require = createRequire(import.meta.url);

export function findExecutable(names: string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = (env['PATH'] ?? '').split(delimiter).filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** Path of the Electron binary when the `electron` package and its downloaded binary are both present. */
export function electronBinary(): string | undefined {
  try {
    const path = require('electron') as unknown;
    return typeof path === 'string' && existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

export function hasDisplay(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): boolean {
  if (platform === 'darwin' || platform === 'win32') return true;
  return Boolean(env['DISPLAY'] || env['WAYLAND_DISPLAY']);
}

export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env['TESSERA_CHROMIUM'];
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return CHROMIUM_PATHS.find((p) => existsSync(p)) ?? findExecutable(['chromium', 'chromium-browser', 'google-chrome'], env);
}

function versionOf(bin: string, args: string[]): string {
  try {
    return execFileSync(bin, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
  } catch {
    return bin;
  }
}

const apt = (pkg: string) => `sudo apt-get install -y ${pkg}   (or: npm run setup)`;

export async function runChecks(env: NodeJS.ProcessEnv = process.env): Promise<Check[]> {
  const checks: Check[] = [];
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  checks.push({
    name: 'Node.js',
    core: true,
    ok: major > 20 || (major === 20 && minor >= 19),
    detail: `v${process.versions.node}`,
    fix: 'install Node.js 20.19 or newer',
  });

  try {
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    const db = new Database(':memory:');
    const version = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
    db.close();
    checks.push({ name: 'SQLite (better-sqlite3)', core: true, ok: true, detail: `SQLite ${version}` });
  } catch (err) {
    checks.push({ name: 'SQLite (better-sqlite3)', core: true, ok: false, detail: (err as Error).message.split('\n')[0]!, fix: 'npm rebuild better-sqlite3   (needs python3, make, g++)' });
  }

  const electron = electronBinary();
  checks.push({
    name: 'Electron binary',
    core: false,
    ok: electron !== undefined,
    detail: electron ?? 'missing: `tessera start` runs headless and serves the UI over HTTP',
    fix: 'node node_modules/electron/install.js   (downloads the binary; needs access to the Electron release host)',
  });

  const display = hasDisplay(env);
  checks.push({
    name: 'Display',
    core: false,
    ok: display,
    detail: display ? (env['WAYLAND_DISPLAY'] ? `Wayland ${env['WAYLAND_DISPLAY']}` : env['DISPLAY'] ? `X11 ${env['DISPLAY']}` : 'native') : 'none (no DISPLAY or WAYLAND_DISPLAY)',
    fix: 'run under a desktop session, or `Xvfb :99 & export DISPLAY=:99`; or use `tessera start --headless`',
  });

  const chromium = chromiumPath(env);
  checks.push({ name: 'Chromium', core: false, ok: chromium !== undefined, detail: chromium ? versionOf(chromium, ['--version']) : 'missing (needed by the end-to-end tests)', fix: apt('chromium') });

  try {
    const ivm = require('isolated-vm') as typeof IsolatedVm;
    const isolate = new ivm.Isolate({ memoryLimit: 8 });
    try {
      const ctx = isolate.createContextSync();
      const two = ctx.evalSync('1 + 1', { timeout: 100 }) as number;
      if (two !== 2) throw new Error('isolate evaluated 1 + 1 wrongly');
    } finally {
      isolate.dispose();
    }
    checks.push({ name: 'isolated-vm', core: false, ok: true, detail: 'isolates start and run code' });
  } catch (err) {
    checks.push({ name: 'isolated-vm', core: false, ok: false, detail: (err as Error).message.split('\n')[0]!, fix: 'npm rebuild isolated-vm   (needs python3, make, g++); plugins cannot run without it' });
  }

  const espeak = findExecutable(['espeak-ng'], env);
  checks.push({ name: 'espeak-ng (text-to-speech)', core: false, ok: espeak !== undefined, detail: espeak ? versionOf(espeak, ['--version']) : 'missing', fix: apt('espeak-ng') });

  // Debian's pocketsphinx 0.8 package installs `pocketsphinx_continuous`; 5.x builds install `pocketsphinx`.
  const sphinx = findExecutable(['pocketsphinx_continuous', 'pocketsphinx'], env);
  const sphinxModel = ['/usr/share/pocketsphinx/model/en-us/en-us', '/usr/share/pocketsphinx/model/en-us'].find((p) => existsSync(p));
  checks.push({
    name: 'pocketsphinx (speech-to-text)',
    core: false,
    ok: sphinx !== undefined && sphinxModel !== undefined,
    detail: sphinx ? (sphinxModel ? `${sphinx}, model ${sphinxModel}` : `${sphinx}, but the en-us model is missing`) : 'missing',
    fix: apt('pocketsphinx pocketsphinx-en-us'),
  });

  const sox = findExecutable(['sox'], env);
  checks.push({ name: 'sox (audio recording and conversion)', core: false, ok: sox !== undefined, detail: sox ? versionOf(sox, ['--version']) : 'missing', fix: apt('sox') });

  // Without a sound card the runtime still starts: spoken answers degrade to the UI or inbox.local, and speech
  // comes from the browser's microphone (Journey Guide push-to-talk).
  const card = detectSoundCard();
  checks.push({ name: 'sound card (speaker and microphone)', core: false, ok: card.present, detail: card.present ? card.detail : `${card.detail}; spoken answers go to the UI or inbox.local, speech comes from the browser`, fix: 'attach an audio device (ALSA: `aplay -l` lists cards); nothing to install' });
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) => {
    const mark = c.ok ? 'present' : 'missing';
    const kind = c.core ? 'core    ' : 'optional';
    const line = `  ${mark.padEnd(8)} ${kind} ${c.name.padEnd(width)}  ${c.detail}`;
    return c.ok || !c.fix ? line : `${line}\n  ${' '.repeat(8 + 1 + 8 + 1 + width)}  install: ${c.fix}`;
  });
  const coreOk = checks.filter((c) => c.core).every((c) => c.ok);
  lines.push('', coreOk ? 'Core: working. Optional parts that are missing only limit what this machine can do.' : 'Core: NOT working — fix the core parts above.');
  return lines.join('\n');
}
