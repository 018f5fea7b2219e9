import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startUiSession } from '../helpers/browser.js';
import type { UiSession } from '../helpers/browser.js';
import type { StartedTessera } from '../helpers/cli.js';

// Real Chromium (Debian's, never a downloaded one) against a real headless Tessera on a free port.
let browser: Browser;
let tessera: StartedTessera;
let token: string;
let page: Page;
let session: UiSession;

beforeAll(async () => {
  session = await startUiSession('tessera-e2e-');
  ({ tessera, browser, page } = session);
  token = readFileSync(join(session.dataDir, 'api-token'), 'utf8').trim();
});

afterAll(() => session?.close(), 30_000);

const publish = (topic: string, payload: unknown) =>
  fetch(`${tessera.origin}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ topic, payload }) });

describe('the UI served by a headless runtime', () => {
  it('takes the token from the printed URL, keeps it in session storage and removes it from the address bar', async () => {
    await page.goto(tessera.uiUrl);
    await page.getByRole('navigation', { name: 'Areas' }).waitFor();
    expect(page.url()).not.toContain(token);
    expect(page.url()).toMatch(/#\/journey$/);
    expect(await page.evaluate(() => sessionStorage.getItem('tessera.token'))).toBe(token);
    await expect.poll(() => page.getByTestId('version').textContent()).toMatch(/^Tessera \d+\.\d+\.\d+/);
    await expect.poll(() => page.getByTestId('runtime-link').textContent()).toBe('Runtime connected');
    expect(await page.getByTestId('network').textContent()).toBe('Online');
  });

  it('shows each of the four areas, with a screenshot of each', async () => {
    for (const [id, heading] of [['journey', 'Journey Guide'], ['redeem', 'Redeem'], ['studio', 'Plugin Studio'], ['ops', 'Event stream']] as const) {
      await page.locator(`nav a[data-area="${id}"]`).click();
      await page.getByTestId(`area-${id}`).getByRole('heading', { name: heading }).waitFor();
      expect(await page.locator(`nav a[data-area="${id}"]`).getAttribute('aria-current')).toBe('page');
      await page.screenshot({ path: join(ARTIFACTS, `area-${id}.png`) });
    }
  });

  it('fits a phone-sized screen: no area scrolls sideways at 390 px', async () => {
    await publish('ui.narrow.check', { long: 'x'.repeat(300), id: `b3:${'a'.repeat(64)}` });
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      for (const id of ['journey', 'redeem', 'studio', 'ops', 'verify']) {
        await page.locator(`nav a[data-area="${id}"]`).click();
        await page.getByTestId(`area-${id}`).waitFor();
        await page.waitForTimeout(150);
        const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth }));
        expect(widths.page, id).toBeLessThanOrEqual(widths.screen);
        await page.screenshot({ path: join(ARTIFACTS, `narrow-${id}.png`) });
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  it('shows an event published through the API live in Ops', async () => {
    await page.locator('nav a[data-area="ops"]').click();
    await expect.poll(() => page.getByTestId('stream-status').textContent()).toBe('Live');
    const res = await publish('e2e.hello', { from: 'playwright' });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: number };
    const row = page.locator('tr[data-topic="e2e.hello"]');
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td').first().textContent()).toBe(String(id));
    expect(await row.locator('td.payload').textContent()).toContain('"from":"playwright"');
    await page.screenshot({ path: join(ARTIFACTS, 'ops-live-event.png') });
  });

  it('publishes from the Ops form and reports a bad payload without sending it', async () => {
    await page.locator('#pub-topic').fill('ops.from-ui');
    await page.locator('#pub-payload').fill('{"n": 7}');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.locator('tr[data-topic="ops.from-ui"]').waitFor();
    await page.locator('#pub-payload').fill('{not json');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByText('Payload is not valid JSON.').waitFor();
    await page.locator('#pub-topic').fill('bad..topic');
    await page.locator('#pub-payload').fill('1');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByText(/TOPIC_INVALID/).waitFor();
  });

  it('filters the stream by topic pattern', async () => {
    await page.locator('#ops-filter').fill('filtered.*');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.getByTestId('stream-status').textContent()).toBe('Live');
    await publish('unrelated.topic', {});
    await publish('filtered.yes', {});
    await page.locator('tr[data-topic="filtered.yes"]').waitFor();
    expect(await page.locator('tr[data-topic="unrelated.topic"]').count()).toBe(0);
  });

  it('asks for a token in a browser that has none, and rejects a wrong one', async () => {
    const fresh = await browser.newPage();
    await fresh.goto(tessera.origin + '/');
    await fresh.getByLabel('Link or token').fill('definitely-not-the-token');
    await fresh.getByRole('button', { name: 'Connect' }).click();
    await fresh.getByRole('alert').getByText('did not accept the token').waitFor();
    await fresh.getByLabel('Link or token').fill(tessera.uiUrl);
    await fresh.getByRole('button', { name: 'Connect' }).click();
    await fresh.getByRole('navigation', { name: 'Areas' }).waitFor();
    await fresh.close();
  });

  it('runs under the strict CSP without errors', async () => {
    const res = await page.request.get(tessera.origin + '/');
    expect(res.headers()['content-security-policy']).toContain("script-src 'self'");
    session.consoleErrors.length = 0;
    await page.reload();
    await page.getByTestId('area-ops').waitFor();
    await expect.poll(() => page.getByTestId('stream-status').textContent()).toBe('Live');
    expect(session.consoleErrors).toEqual([]);
  });
});
