/**
 * Issue 14 "Done when", end to end with nothing faked but the camera, and the network really cut: Tessera and
 * Chromium run in a network namespace that has only loopback (test/helpers/netns.ts).
 *
 * 1. A traveller at the portrait kiosk (`--kiosk`, 1080×1920) buys the 48-hour pass from the kiosk balance and sees
 *    its QR code — which scans back to the code (jsQR on a screenshot).
 * 2. Staff (a staff role token) scan it from Chromium's fake camera, fed a video of that very QR: REDEEMED.
 * 3. A single-use ticket is scanned twice: REDEEMED, then ALREADY USED with time and place.
 * 4. The redemption receipt, from the offline bundle of its capsule, verifies with OpenSSL and b3sum exactly as the
 *    README shows.
 * Screenshots of each step go to test/e2e/artifacts/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanQr } from '../helpers/qr-scan.js';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { BIN, cleanEnv, requireBuild, startTessera } from '../helpers/cli.js';
import type { StartedTessera } from '../helpers/cli.js';
import { writeQrVideo } from '../helpers/fake-camera.js';
import { createOfflineNamespace } from '../helpers/netns.js';
import type { OfflineNamespace } from '../helpers/netns.js';
import { tempDir } from '../helpers/tmp.js';

let ns: OfflineNamespace;
let tessera: StartedTessera;
let dataDir: string;
let staffToken: string;
const browsers: Browser[] = [];

/** A CLI command inside the namespace (it reaches the runtime on loopback, like everything here). */
function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(ns.enter[0]!, [...ns.enter.slice(1), process.execPath, BIN, ...args], { encoding: 'utf8', env: cleanEnv(), timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  requireBuild();
  ns = await createOfflineNamespace();
  dataDir = tempDir('tessera-e2e-done-', 'file');
  tessera = await startTessera(dataDir, ['--kiosk'], cleanEnv(), { prefix: ns.enter });
  const topUp = cli(['wallet', 'topup', 'main', '200000', 'UAH', '--url', tessera.origin, '--data', dataDir]);
  expect(topUp.code, topUp.stderr).toBe(0);
  const token = cli(['token', '--role', 'staff', '--data', dataDir]);
  expect(token.code, token.stderr).toBe(0);
  staffToken = token.stdout.trim();
}, 240_000);

afterAll(async () => {
  for (const b of browsers) await b.close().catch(() => undefined);
  tessera?.child.kill('SIGINT');
  await tessera?.exited;
  ns?.close();
}, 60_000);

async function browser(args: string[] = []): Promise<Browser> {
  const b = await launchChromium(args, { executablePath: ns.chromium });
  browsers.push(b);
  return b;
}

const scan = (b: Browser, target: Locator) => scanQr(b, target);

/** The traveller's kiosk: Journey Guide → Passes & tickets → choose product `ref` → pay; answers the code its QR shows. */
async function buy(page: Page, b: Browser, ref: string, shot: string): Promise<string> {
  await page.getByTestId('tab-wallet').click();
  const product = page.locator(`[data-testid="wallet-product"][data-ref="${ref}"]`);
  await product.getByTestId('wallet-choose').click();
  await expect.poll(() => page.getByTestId('wallet-preflight').textContent(), { timeout: 30_000 }).toContain('All checks passed');
  await page.getByTestId('wallet-pay').click();
  await page.getByTestId('wallet-paid').waitFor({ timeout: 30_000 });
  // The pass shown right after paying (the list above may hold earlier ones).
  const qr = page.locator('.wallet-passes').last().getByTestId('wallet-pass-qr');
  await qr.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(ARTIFACTS, shot) });
  const code = await scan(b, qr);
  expect(code).toMatch(/^TS1:[0-9A-Z $%*+\-./:]+$/);
  await page.getByTestId('wallet-back').click();
  return code!;
}

/** A staff screen whose camera shows the QR of `code`, at `venue`; answers the page once the scanner is live. */
async function staffScreen(code: string, venue: string): Promise<Page> {
  const video = join(tempDir('tessera-e2e-camera-', 'file'), 'qr.y4m');
  const b = await browser(writeQrVideo(video, code));
  const page = await b.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${tessera.origin}/#token=${encodeURIComponent(staffToken)}`);
  await page.locator('nav a[data-area="redeem"]').click();
  await page.getByTestId('redeem-screen').fill('gate 1');
  await page.getByTestId('redeem-venue').fill(venue);
  return page;
}

const verdictWords = (page: Page) => page.getByTestId('redeem-verdict-words');

let passCode: string;
let ticketCode: string;

describe('issue 14, done when: buy at the kiosk, redeem with the network cut', () => {
  it('is really offline: from inside, nothing but loopback answers', async () => {
    const b = await browser();
    const page = await b.newPage();
    await page.goto(`${tessera.origin}/healthz`);
    const outside = await page.evaluate(async () => {
      try {
        await fetch('http://registry.npmjs.org/', { mode: 'no-cors' });
        return 'reached';
      } catch {
        return 'unreachable';
      }
    });
    expect(outside).toBe('unreachable');
  });

  it('a traveller buys the 48-hour pass at the portrait kiosk and sees its QR code', async () => {
    const b = await browser();
    const page = await b.newPage({ viewport: { width: 1080, height: 1920 } });
    await page.goto(tessera.uiUrl);
    await page.getByTestId('area-journey').waitFor();
    passCode = await buy(page, b, 'city.museum-pass-48h@1.1.0', 'done-1-pass-bought-1080x1920.png');
    ticketCode = await buy(page, b, 'city.museum-ticket@1.0.0', 'done-2-ticket-bought-1080x1920.png');
    expect(passCode).not.toBe(ticketCode);
  }, 180_000);

  it('staff scan the pass from the camera with the network cut: REDEEMED', async () => {
    const page = await staffScreen(passCode, 'lviv.art');
    await expect.poll(() => verdictWords(page).textContent().catch(() => null), { timeout: 60_000 }).toBe('REDEEMED');
    await page.screenshot({ path: join(ARTIFACTS, 'done-3-pass-redeemed.png') });
  }, 180_000);

  it('a single-use ticket scanned twice: REDEEMED, then ALREADY USED with time and place', async () => {
    const page = await staffScreen(ticketCode, 'lviv.history');
    await expect.poll(() => verdictWords(page).textContent().catch(() => null), { timeout: 60_000 }).toBe('REDEEMED');
    await page.screenshot({ path: join(ARTIFACTS, 'done-4-ticket-redeemed.png') });
    // The traveller still holds it up after the cooldown; staff press Next scan and it is read again.
    await page.getByTestId('redeem-next').click();
    await page.getByTestId('redeem-code').fill(ticketCode);
    await page.getByTestId('redeem-code').press('Enter');
    await expect.poll(() => verdictWords(page).textContent(), { timeout: 30_000 }).toBe('ALREADY USED');
    const previous = (await page.getByTestId('redeem-previous').textContent()) ?? '';
    expect(previous).toMatch(/lviv\.history|History Museum/);
    expect(previous).toMatch(/\d{1,2}:\d{2}/);
    expect(previous).toContain('gate 1');
    await page.screenshot({ path: join(ARTIFACTS, 'done-5-ticket-already-used.png') });
  }, 180_000);

  it('the redemption receipt verifies with OpenSSL and b3sum, as the README shows', async () => {
    const p = await (await browser()).newPage();
    await p.goto(`${tessera.origin}/healthz`);
    // From inside the namespace: the staff screen's own credential lists the redemption and fetches its bundle.
    const bundle = await p.evaluate(async ({ token }) => {
      const auth = { authorization: `Bearer ${token}` };
      const { redemptions } = (await (await fetch('/api/redemptions?limit=50', { headers: auth })).json()) as { redemptions: Array<{ capsule: string; venue: string }> };
      const capsule = redemptions.find((r) => r.venue === 'lviv.history')!.capsule;
      const zip = new Uint8Array(await (await fetch(`/v1/r/${capsule}/bundle`, { headers: auth })).arrayBuffer());
      let binary = '';
      for (let i = 0; i < zip.length; i += 0x8000) binary += String.fromCharCode(...zip.subarray(i, i + 0x8000));
      return { capsule, zip: btoa(binary) };
    }, { token: staffToken });
    const dir = tempDir('tessera-e2e-receipt-', 'file');
    writeFileSync(join(dir, 'bundle.zip'), Buffer.from(bundle.zip, 'base64'));
    execFileSync('unzip', ['-q', 'bundle.zip', '-d', 'b'], { cwd: dir });
    const b = join(dir, 'b');
    // The REDEMPTION receipt of the chain (INTENT first), checked with the README's commands.
    const receipts = readdirSorted(join(b, 'receipts'));
    const redemption = receipts.find((f) => JSON.parse(Buffer.from((JSON.parse(readFileSync(join(b, 'receipts', f), 'utf8')) as { payload: string }).payload, 'base64').toString('utf8')).kind === 'REDEMPTION');
    expect(redemption).toBeDefined();
    const keyFile = readdirSorted(join(b, 'keys')).find((f) => f.endsWith('.pem'))!;
    const script = [
      `R=receipts/${redemption}`,
      'jq -r .payload "$R" | base64 -d > payload.json',
      "jq -r '.signatures[0].sig' \"$R\" | base64 -d > sig.bin",
      'T=$(jq -r .payloadType "$R")',
      'printf \'DSSEv1 %d %s %d \' "${#T}" "$T" "$(stat -c %s payload.json)" > pae.bin',
      'cat payload.json >> pae.bin',
      `openssl pkeyutl -verify -pubin -inkey keys/${keyFile} -rawin -in pae.bin -sigfile sig.bin`,
      'b3sum payload.json',
      'b3sum capsule.json',
    ].join('\n');
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: b, encoding: 'utf8' });
    console.log(`$ openssl pkeyutl -verify … && b3sum payload.json capsule.json\n${r.stdout}${r.stderr}`);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('Signature Verified Successfully');
    expect(lines[2]).toBe(`${bundle.capsule.slice(3)}  capsule.json`);
  }, 120_000);
});

function readdirSorted(dir: string): string[] {
  return (execFileSync('ls', ['-1', dir], { encoding: 'utf8' }).trim().split('\n')).sort();
}
