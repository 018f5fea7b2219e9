import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { chromiumPath } from '../../main/host/doctor.js';
import { requireBuild, startTessera } from './cli.js';
import type { StartedTessera } from './cli.js';
import { tempDir } from './tmp.js';

/** Where end-to-end tests write screenshots (ignored by git). */
export const ARTIFACTS = fileURLToPath(new URL('../e2e/artifacts/', import.meta.url));

/**
 * Debian's Chromium (never a downloaded browser), headless, with background networking off: this machine's
 * closed network refuses Chromium's own connections, many at a time, otherwise.
 */
export async function launchChromium(extraArgs: readonly string[] = [], options: { executablePath?: string } = {}): Promise<Browser> {
  const executablePath = options.executablePath ?? chromiumPath();
  if (!executablePath) throw new Error('Chromium is missing: run `npm run setup` (installs Debian chromium) or set TESSERA_CHROMIUM.');
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

export interface UiSession {
  tessera: StartedTessera;
  browser: Browser;
  page: Page;
  dataDir: string;
  /** Console errors and uncaught page errors, in order; tests clear it when they expect some. */
  consoleErrors: string[];
  /** Close the browser, then stop Tessera with SIGINT and wait for it to exit. */
  close(): Promise<void>;
}

/** A headless Tessera on a free port with its own data folder, Debian Chromium, and one page recording errors. */
export async function startUiSession(prefix: string, viewport = { width: 1280, height: 800 }, options: { chromiumArgs?: readonly string[]; tesseraArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<UiSession> {
  requireBuild();
  const dataDir = tempDir(prefix, 'file');
  const tessera = await startTessera(dataDir, options.tesseraArgs ?? [], options.env);
  const browser = await launchChromium(options.chromiumArgs ?? []);
  const page = await browser.newPage({ viewport });
  const consoleErrors: string[] = [];
  page.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(msg.text()));
  page.on('pageerror', (err) => consoleErrors.push(err.message));
  return {
    tessera,
    browser,
    page,
    dataDir,
    consoleErrors,
    async close() {
      await browser.close();
      tessera.child.kill('SIGINT');
      await tessera.exited;
    },
  };
}
