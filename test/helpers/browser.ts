import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { chromiumPath } from '../../main/host/doctor.js';

/** Where end-to-end tests write screenshots (ignored by git). */
export const ARTIFACTS = fileURLToPath(new URL('../e2e/artifacts/', import.meta.url));

/**
 * Debian's Chromium (never a downloaded browser), headless, with background networking off: this machine's
 * closed network refuses Chromium's own connections, many at a time, otherwise.
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('Chromium is missing: run `npm run setup` (installs Debian chromium) or set TESSERA_CHROMIUM.');
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
