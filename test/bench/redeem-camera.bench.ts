/**
 * Camera frame to verdict in Chromium (issue 14 "Benchmark"): the Redeem app served by a real runtime, Debian
 * Chromium with its fake camera playing a video of a freshly issued code, and the time from the first camera frame
 * the scanner saw to the frame after the verdict was painted (the page publishes both: redeem-verdict.tsx). Each
 * round issues a new single-use ticket and launches a new browser (the fake camera is fixed at launch).
 *
 * Baseline, from the same rounds' pages: the first frame to the decoded code (jsQR alone, on the page's thread) —
 * so the ratio says how much the request, the checks, the ledger, the signed receipt and the paint add to decoding.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';
import { chromiumPath } from '../../main/host/doctor.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { RENDERER_DIR } from '../../main/host/paths.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { AnyBenchmark } from './harness.js';
import { fakeCameraArgs, writeQrVideo } from '../helpers/fake-camera.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-camera-'));
let started: Promise<RunningHost> | undefined;
const host = () => (started ??= startHost({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {}, rendererDir: RENDERER_DIR }));

let round = 0;
/** One scan: issue a ticket, play its QR to a new Chromium, wait for the verdict; the page's own timings, ms. */
async function scanOnce(): Promise<{ decode: number; verdict: number }> {
  const h = await host();
  const product = h.runtime.catalogue.resolve('city.museum-ticket');
  const now = Date.now();
  const issued = h.runtime.entitlements.issue({ product_runtime_session_id: `bench-${++round}`, product_cid: product.cid, product_ref: product.ref, kind: 'single_use', valid_from: now, valid_until: now + 3600_000, venues: ['lviv.history'] });
  const video = join(dir, `qr-${round}.y4m`);
  writeQrVideo(video, issued.code);
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('Chromium is missing: run npm run setup');
  const browser: Browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', ...fakeCameraArgs(video)] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${h.origin}/#token=${encodeURIComponent(h.credentials.roleToken('staff'))}`);
    await page.locator('nav a[data-area="redeem"]').click();
    await page.getByTestId('redeem-screen').fill('bench');
    await page.getByTestId('redeem-venue').fill('lviv.history');
    const verdict = page.getByTestId('redeem-verdict');
    await verdict.locator('[data-testid="redeem-verdict-words"]').waitFor({ timeout: 60_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="redeem-verdict"]')?.getAttribute('data-shown-at') !== null, undefined, { timeout: 30_000 });
    const words = await page.getByTestId('redeem-verdict-words').textContent();
    if (words !== 'REDEEMED') throw new Error(`the scan answered ${words}, not REDEEMED`);
    const t = await verdict.evaluate((el) => ({ first: Number(el.getAttribute('data-first-frame-at')), decoded: Number(el.getAttribute('data-decoded-at')), shown: Number(el.getAttribute('data-shown-at')) }));
    return { decode: t.decoded - t.first, verdict: t.shown - t.first };
  } finally {
    await browser.close();
  }
}

// Both sides read the same scans: each candidate round scans once, and the baseline reads that round's decode time.
let last: { decode: number; verdict: number } | undefined;

export const benchmarks: AnyBenchmark[] = [
  {
    kind: 'figure',
    name: 'redeem: camera frame to verdict in Chromium (fake camera, real runtime, single-use ticket)',
    unit: 'ms',
    candidate: {
      name: 'first camera frame → REDEEMED painted (decode, POST /api/redeem, checks, ledger, signed receipt, paint)',
      measure: async () => (last = await scanOnce()).verdict,
    },
    baselines: [
      {
        name: 'first camera frame → code decoded by jsQR (the same scans)',
        measure: async () => (last ?? (last = await scanOnce())).decode,
      },
    ],
  },
];

export async function dispose(): Promise<void> {
  if (started) await (await started).close();
  rmSync(dir, { recursive: true, force: true });
}
