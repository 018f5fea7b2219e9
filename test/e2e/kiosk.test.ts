/**
 * A kiosk started for travellers (issue 13 §1.2): real headless Tessera started with --kiosk, real Chromium.
 * The traveller sees the Journey Guide and Verify only; an operator unlocks the rest with the PIN and locks again.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setOperatorPin } from '../../main/host/credentials.js';
import { ARTIFACTS, startUiSession } from '../helpers/browser.js';
import type { UiSession } from '../helpers/browser.js';

let session: UiSession;
let page: Page;

beforeAll(async () => {
  session = await startUiSession('tessera-kiosk-', { width: 1280, height: 800 }, { tesseraArgs: ['--kiosk'] });
  page = session.page;
});
afterAll(() => session?.close(), 30_000);

const areas = () => page.locator('nav[aria-label="Areas"] a').evaluateAll((links) => links.map((a) => a.getAttribute('data-area')));

describe('a kiosk started for travellers', () => {
  it('carries the traveller token, not the device token, and shows only the Journey Guide and Verify', async () => {
    const deviceToken = readFileSync(join(session.dataDir, 'api-token'), 'utf8').trim();
    expect(session.tessera.uiUrl).not.toContain(encodeURIComponent(deviceToken));
    await page.goto(session.tessera.uiUrl);
    await page.getByTestId('area-journey').waitFor();
    await expect.poll(areas).toEqual(['journey', 'verify']);
    // The kiosk layout: large type, targets at least 48 px high.
    expect(await page.evaluate(() => document.documentElement.classList.contains('kiosk'))).toBe(true);
    const sizes = await page.evaluate(() => ({ font: parseFloat(getComputedStyle(document.documentElement).fontSize), nav: [...document.querySelectorAll('nav a')].map((a) => a.getBoundingClientRect().height) }));
    expect(sizes.font).toBeGreaterThanOrEqual(24);
    expect(Math.min(...sizes.nav)).toBeGreaterThanOrEqual(48);
    // No PIN set yet: nothing to unlock.
    expect(await page.getByTestId('unlock').count()).toBe(0);
    // Typing the address of an operator area shows the traveller's area instead.
    await page.evaluate(() => (location.hash = '#/ops'));
    await page.getByTestId('area-journey').waitFor();
    expect(await page.getByTestId('area-ops').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'kiosk-traveller.png') });
  });

  it('unlocks every area with the operator PIN, refuses a wrong one with the tries left, and locks again', async () => {
    await setOperatorPin(session.dataDir, '2580');
    await page.reload();
    await page.getByTestId('unlock').click();
    await page.getByLabel('Operator PIN').fill('0000');
    await page.getByRole('button', { name: 'Unlock' }).click();
    await expect.poll(() => page.getByTestId('unlock-error').textContent()).toMatch(/not the operator PIN \(4 tries left\)/);
    await page.getByLabel('Operator PIN').fill('2580');
    await page.getByRole('button', { name: 'Unlock' }).click();
    await expect.poll(areas).toEqual(['journey', 'redeem', 'studio', 'ops', 'verify']);
    await page.locator('nav a[data-area="ops"]').click();
    await page.getByTestId('area-ops').getByRole('heading', { name: 'Event stream' }).waitFor();
    await expect.poll(() => page.getByTestId('lock').textContent()).toMatch(/^Lock 1[45]:\d\d$/);
    await page.screenshot({ path: join(ARTIFACTS, 'kiosk-unlocked.png') });
    await page.getByTestId('lock').click();
    await expect.poll(areas).toEqual(['journey', 'verify']);
    await page.getByTestId('area-journey').waitFor();
  });
});
