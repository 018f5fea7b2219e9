/**
 * The Journey Guide's "Guide" tab (issue 15 point 4 and 7) in real Chromium against a real headless Tessera started
 * for travellers (`--kiosk`), at 1366×768 and on a portrait 1080×1920 kiosk. Screenshots: test/e2e/artifacts/guide-*.png.
 *
 * Two halves:
 * 1. "answered in the page": the journey, city, session and catalogue routes are answered by
 *    test/fixtures/guide-fixtures.ts (Playwright `page.route`), so the screen is proven on a branch without the
 *    lead's routes: start, next-step card, QR code that scans back, map from the package, proposals, skip, the
 *    degraded banner, the end of the journey, Russian and Ukrainian; and the start offered for a pass really bought in
 *    the wallet (only the journey and city routes answered in the page).
 * 2. "against the real routes": nothing answered in the page. It runs only when the runtime serves `GET /api/journeys`
 *    (checked once below: a 404 means the lead's routes are not merged yet, and the half is skipped, not failed):
 *    buy the museum pass in the wallet, start today's journey, see the route and map, show the pass's QR code, a
 *    second screen's change (JOURNEY_CONFLICT) said in words, walk the day to its end; and the same journey with the
 *    city package removed (`TESSERA_CITY_PACKAGES=`) on static routes, saying so.
 */
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { scanQr } from '../helpers/qr-scan.js';
import { ARTIFACTS, startUiSession } from '../helpers/browser.js';
import type { UiSession } from '../helpers/browser.js';
import { cleanEnv, runTessera } from '../helpers/cli.js';
import { CITY_MAP, PASS_CODE, createGuideMock, installGuideRoutes } from '../fixtures/guide-fixtures.js';

const LAPTOP = { width: 1366, height: 768 };
const KIOSK = { width: 1080, height: 1920 };

const ui: UiSession = await startUiSession('tessera-e2e-guide-', LAPTOP, { tesseraArgs: ['--kiosk'] });
const token = decodeURIComponent(/#token=([^&]+)/.exec(ui.tessera.uiUrl)![1]!);
const api = async (method: 'GET' | 'POST', path: string, body?: unknown, origin = ui.tessera.origin, bearer = token) => {
  const res = await fetch(origin + path, { method, headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
};
/** The lead's journey routes are on this build: anything but a 404 for the list (a traveller may list their own). */
const routesPresent = (await api('GET', '/api/journeys?user=probe')).status !== 404;
const opened: Array<BrowserContext | UiSession> = [];
afterAll(async () => {
  for (const o of opened.reverse()) await o.close().catch(() => undefined);
  await ui.close();
}, 60_000);

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `guide-${name}.png`) });
const pageScrolls = (page: Page) => page.evaluate(() => document.scrollingElement!.scrollHeight > innerHeight + 1);
const traveller = async (page: Page) => (await page.getByTestId('guide').getAttribute('data-traveller')) ?? '';
const statuses = (page: Page) => page.getByTestId('guide-node').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-node')}:${e.getAttribute('data-status')}`));

async function openGuide(browser: Browser, url: string, options: { locale?: string; viewport?: { width: number; height: number } } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: options.viewport ?? LAPTOP, ...(options.locale ? { locale: options.locale } : {}) });
  opened.push(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => ui.consoleErrors.push(err.message));
  await page.goto(url);
  await page.getByTestId('area-journey').waitFor();
  return { context, page };
}

/** Buys the highest version of the museum pass in the wallet tab (the one naming the journey) and answers its code. */
async function buyPass(p: Page, tessera: UiSession['tessera']): Promise<string> {
  const bearer = decodeURIComponent(/#token=([^&]+)/.exec(tessera.uiUrl)![1]!);
  const catalogue = (await api('GET', '/api/catalogue', undefined, tessera.origin, bearer)).body!['products'] as Array<{ ref: string; id: string; version: string; journey?: string | null }>;
  const passes = catalogue.filter((c) => c.id === 'city.museum-pass-48h' && c.journey !== null).sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }));
  expect(passes.length).toBeGreaterThan(0);
  await p.getByTestId('tab-wallet').click();
  await p.locator(`[data-testid="wallet-product"][data-ref="${passes[0]!.ref}"]`).getByTestId('wallet-choose').click();
  await p.getByTestId('wallet-pay').click();
  await p.getByTestId('wallet-paid').waitFor({ timeout: 30_000 });
  const qr = p.locator('.wallet-passes').last().getByTestId('wallet-pass-qr');
  await qr.scrollIntoViewIfNeeded();
  const code = await scanQr(ui.browser, qr);
  expect(code).toMatch(/^TS1:/);
  await p.getByTestId('wallet-back').click();
  return code!;
}

describe('the Journey Guide, routes answered in the page', () => {
  const mock = createGuideMock();
  let page: Page;

  it('says how to get a journey, then offers a large "Start today\'s journey" once the traveller holds a pass naming one', async () => {
    ({ page } = await openGuide(ui.browser, ui.tessera.uiUrl));
    await installGuideRoutes(page, mock);
    await page.getByTestId('tab-guide').click();
    await page.getByTestId('guide-no-journey').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('guide-no-journey').textContent()).toContain('Buy a pass that comes with a journey');
    expect(await page.getByTestId('guide-package-age').textContent()).toBe('City data from 12 Nov 2026, 25 days old');
    // The traveller is the dialogue session shown; the pass appears on the next read (the guide polls every 2 s).
    mock.traveller = await traveller(page);
    expect(mock.traveller).toMatch(/^ses_/);
    const start = page.getByTestId('guide-start');
    await start.waitFor({ timeout: 10_000 });
    expect(await start.textContent()).toBe("Start today's journey");
    expect((await start.boundingBox())!.height).toBeGreaterThanOrEqual(64);
    await shot(page, 'start-1366x768');
    await start.click();
    await expect.poll(() => statuses(page), { timeout: 10_000 }).toEqual(['rynok:current', 'history:pending', 'pharm:pending', 'art:pending', 'opera:pending']);
    expect(mock.requests.find((r) => r.method === 'POST' && r.path === '/api/journeys')?.body).toEqual({ session: 'prs_guide_1', language: 'en' });
    expect(await page.getByTestId('guide-next-text').textContent()).toBe('You are at Rynok Square');
    expect(await page.getByTestId('guide-start').count()).toBe(0);
  });

  it('draws the map offline from the package: streets, two coloured tram lines, stops, five numbered places', async () => {
    const map = page.getByTestId('guide-map');
    expect(await map.getAttribute('data-source')).toBe('package');
    expect(((await page.getByTestId('guide-map-ways').getAttribute('d')) ?? '').split('M').length - 1).toBe(CITY_MAP.ways.length);
    expect(await page.getByTestId('guide-map-line').evaluateAll((els) => els.map((e) => [e.getAttribute('data-line'), e.getAttribute('stroke')]))).toEqual([
      ['Tram 1', '#dc2626'],
      ['Tram 7', '#16a34a'],
    ]);
    expect(await page.getByTestId('guide-map-stop').count()).toBe(3);
    expect(await page.getByTestId('guide-map-marker').evaluateAll((els) => els.map((e) => `${e.textContent}:${e.getAttribute('data-status')}`))).toEqual([
      '1. Rynok Square1:current',
      '2. History Museum2:pending',
      '3. Pharmacy Museum3:pending',
      '4. Art Gallery4:pending',
      '5. Opera House5:pending',
    ]);
    // Nothing but the page's own origin was asked for (no tile server).
    const outside: string[] = [];
    page.on('request', (r) => !r.url().startsWith(ui.tessera.origin) && !r.url().startsWith('data:') && outside.push(r.url()));
    await page.waitForResponse((r) => r.url().includes('/next'), { timeout: 10_000 });
    expect(outside).toEqual([]);
    expect(await page.getByTestId('guide-degraded').count()).toBe(0);
  });

  it('"I\'m here / Done" completes the node it names with the journey\'s version; the card then says the walk, the pass and the hours, with the QR code that scans back', async () => {
    await page.getByTestId('guide-done').click();
    await expect.poll(() => page.getByTestId('guide-next-text').textContent(), { timeout: 10_000 }).toBe('Walk 8 minutes to the History Museum; your pass covers it; it opens at 10:00');
    expect(mock.requests.find((r) => r.path === '/api/journeys/jrn_guide_1/nodes/rynok/complete')?.body).toEqual({ expected_version: 1 });
    expect(await statuses(page)).toEqual(['rynok:done', 'history:current', 'pharm:pending', 'art:pending', 'opera:pending']);
    expect(await page.getByTestId('guide-next-hours').textContent()).toBe('Open today 10:00–18:00');
    expect(await page.getByTestId('guide-route').textContent()).toBe('8 minutes · 640 m');
    expect(await page.getByTestId('guide-map-route').count()).toBe(1);
    expect(await page.getByTestId('guide-node-state').first().textContent()).toBe('Done');
    const qr = page.getByTestId('guide-pass-qr');
    await qr.scrollIntoViewIfNeeded();
    expect(await scanQr(ui.browser, qr)).toBe(PASS_CODE);
    await page.getByTestId('guide-next').scrollIntoViewIfNeeded();
    await shot(page, 'next-step-1366x768');
    expect(await pageScrolls(page)).toBe(false);
  });

  it('shows the guide\'s proposal as a card; Accept changes the journey, and the card goes', async () => {
    const card = page.getByTestId('guide-proposal');
    expect(await card.locator('.guide-proposal-text').textContent()).toBe('The Pharmacy Museum closes soon — go there first?');
    await card.scrollIntoViewIfNeeded();
    await shot(page, 'proposal-1366x768');
    await card.getByTestId('guide-accept').click();
    await expect.poll(() => statuses(page), { timeout: 10_000 }).toEqual(['rynok:done', 'pharm:current', 'history:pending', 'art:pending', 'opera:pending']);
    expect(await page.getByTestId('guide-proposal').count()).toBe(0);
    expect(mock.requests.some((r) => r.method === 'POST' && r.path === '/api/journeys/jrn_guide_1/proposals/prp_1/accept')).toBe(true);
  });

  it('"Skip" marks the node skipped and moves on', async () => {
    await page.getByTestId('guide-skip').click();
    await expect.poll(() => statuses(page), { timeout: 10_000 }).toEqual(['rynok:done', 'pharm:skipped', 'history:current', 'art:pending', 'opera:pending']);
    expect(mock.requests.find((r) => r.path === '/api/journeys/jrn_guide_1/nodes/pharm/skip')?.body).toEqual({ expected_version: 3 });
  });

  it('shows the way to any place of the itinerary on touch, drawn on the map, and goes back to the next step', async () => {
    const art = page.locator('[data-testid="guide-node"][data-node="art"]').getByTestId('guide-node-way');
    expect((await art.boundingBox())!.height).toBeGreaterThanOrEqual(64);
    const nextRoute = await page.getByTestId('guide-map-route').getAttribute('d');
    await art.click();
    await expect.poll(() => page.getByTestId('guide-way-text').textContent().catch(() => null), { timeout: 10_000 }).toBe('Walk 8 minutes to the Art Gallery.');
    expect(mock.requests.some((r) => r.path === '/api/journeys/jrn_guide_1/route?to=lviv.art&language=en')).toBe(true);
    // The map draws that way instead of the next step's.
    await expect.poll(() => page.getByTestId('guide-map-route').getAttribute('d')).not.toBe(nextRoute);
    expect(await page.getByTestId('guide-map-route').getAttribute('d')).toMatch(/^M[\d.]+ [\d.]+L[\d.]+ [\d.]+L[\d.]+ [\d.]+$/);
    await shot(page, 'way-1366x768');
    await page.getByTestId('guide-way-back').click();
    expect(await page.getByTestId('guide-way').count()).toBe(0);
    expect(await page.getByTestId('guide-map-route').getAttribute('d')).toBe(nextRoute);
    // Done and skipped rows are not buttons.
    expect(await page.locator('[data-testid="guide-node"][data-node="rynok"]').getByTestId('guide-node-way').count()).toBe(0);
  });

  it('fills a portrait 1080×1920 kiosk: 64 px targets, large words, a QR code most of the width, no page scroll', async () => {
    await page.setViewportSize(KIOSK);
    await expect.poll(() => page.evaluate(() => document.documentElement.classList.contains('kiosk'))).toBe(true);
    const sizes = await page.evaluate(() => {
      const buttons = [...document.querySelectorAll('.guide button')].map((b) => [b.textContent, b.getBoundingClientRect().height] as const);
      const qr = document.querySelector('[data-testid="guide-pass-qr"] svg')!.getBoundingClientRect();
      const next = parseFloat(getComputedStyle(document.querySelector('.guide-next-text')!).fontSize);
      const smallest = Math.min(...[...document.querySelectorAll('.guide p, .guide li, .guide h3')].map((e) => parseFloat(getComputedStyle(e).fontSize)));
      const map = document.querySelector('[data-testid="guide-map"]')!.getBoundingClientRect();
      return { buttons, qr: qr.width, next, smallest, map: map.width };
    });
    for (const [label, h] of sizes.buttons) expect([label, h >= 64]).toEqual([label, true]);
    expect(sizes.qr).toBeGreaterThanOrEqual(0.6 * KIOSK.width);
    expect(sizes.next).toBeGreaterThanOrEqual(40);
    expect(sizes.smallest).toBeGreaterThanOrEqual(24);
    expect(sizes.map).toBeGreaterThanOrEqual(0.9 * (KIOSK.width - 60));
    expect(await pageScrolls(page)).toBe(false);
    await page.getByTestId('guide-next').scrollIntoViewIfNeeded();
    await shot(page, 'next-step-1080x1920-kiosk');
    expect(await scanQr(ui.browser, page.getByTestId('guide-pass-qr'))).toBe(PASS_CODE);
    await page.getByTestId('guide-map').scrollIntoViewIfNeeded();
    await shot(page, 'map-1080x1920-kiosk');
    await page.setViewportSize(LAPTOP);
  });

  it('says plainly when the city map is not available, and shows only the places and the static route', async () => {
    mock.routing = 'static';
    await expect.poll(() => page.getByTestId('guide-degraded').textContent().catch(() => null), { timeout: 10_000 }).toBe("The city map is not available (no city data on this kiosk): directions come from the journey's own notes.");
    await expect.poll(() => page.getByTestId('guide-map').getAttribute('data-source'), { timeout: 10_000 }).toBe('places');
    expect(await page.getByTestId('guide-map-ways').count()).toBe(0);
    expect(await page.getByTestId('guide-map-line').count()).toBe(0);
    expect(await page.getByTestId('guide-map-marker').count()).toBe(5);
    expect(await page.getByTestId('guide-map-route').count()).toBe(1);
    expect(await page.getByTestId('guide-package-age').textContent()).toBe('No city data on this kiosk');
    expect(await page.getByTestId('guide-next-text').textContent()).toContain("(the journey's notes)");
    await page.getByTestId('guide-degraded').scrollIntoViewIfNeeded();
    await shot(page, 'degraded-1366x768');
    mock.routing = 'graph';
    await expect.poll(() => page.getByTestId('guide-degraded').count(), { timeout: 10_000 }).toBe(0);
    await expect.poll(() => page.getByTestId('guide-map').getAttribute('data-source'), { timeout: 10_000 }).toBe('package');
  });

  it('reads the journey every 2 s while shown, and walks the day to its end', async () => {
    const reads = () => mock.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/api/journeys/jrn_guide_1/next')).length;
    const before = reads();
    await expect.poll(reads, { timeout: 10_000, interval: 500 }).toBeGreaterThanOrEqual(before + 2);
    expect(mock.requests.filter((r) => r.path.startsWith('/api/journeys/jrn_guide_1?')).every((r) => r.path.endsWith('?language=en'))).toBe(true);
    for (const node of ['history', 'art', 'opera']) {
      await expect.poll(() => page.getByTestId('guide-next').getAttribute('data-node'), { timeout: 10_000 }).toBe(node);
      await page.getByTestId('guide-done').click();
    }
    await page.getByTestId('guide-finished').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('guide-finished').textContent()).toBe('Journey complete — thank you for travelling with us!');
    expect(await statuses(page)).toEqual(['rynok:done', 'pharm:skipped', 'history:done', 'art:done', 'opera:done']);
    await shot(page, 'finished-1366x768');
    // A finished journey is shown, never started again.
    expect(await page.getByTestId('guide-start').count()).toBe(0);
    // The traveller's own screen stops reading when it leaves the tab.
    await page.getByTestId('tab-talk').click();
    const after = reads();
    await page.waitForTimeout(2_500); // a negative: no read may happen in more than one poll period
    expect(reads()).toBe(after);
    expect(ui.consoleErrors).toEqual([]);
  });

  it('speaks Russian and Ukrainian, and asks the runtime for its texts in that language', async () => {
    for (const [locale, lang, words] of [
      ['ru-RU', 'ru', { tab: 'Гид', start: 'Начать путешествие на сегодня', done: 'Я здесь / Готово', skip: 'Пропустить', age: /^Данные города от .*, 25 дней$/ }],
      ['uk-UA', 'uk', { tab: 'Гід', start: 'Почати подорож на сьогодні', done: 'Я тут / Готово', skip: 'Пропустити', age: /^Дані міста від .*, 25 днів$/ }],
    ] as const) {
      const { page: p } = await openGuide(ui.browser, ui.tessera.uiUrl, { locale, viewport: KIOSK });
      await installGuideRoutes(p, mock);
      expect(await p.getByTestId('tab-guide').textContent()).toBe(words.tab);
      await p.getByTestId('tab-guide').click();
      mock.journeys = [];
      mock.traveller = await traveller(p);
      await p.getByTestId('guide-start').waitFor({ timeout: 10_000 });
      expect(await p.getByTestId('guide').getAttribute('data-lang')).toBe(lang);
      expect(await p.getByTestId('guide-start').textContent()).toBe(words.start);
      await p.getByTestId('guide-start').click();
      await p.getByTestId('guide-done').waitFor({ timeout: 10_000 });
      expect(await p.getByTestId('guide-done').textContent()).toBe(words.done);
      expect(await p.getByTestId('guide-skip').textContent()).toBe(words.skip);
      expect(await p.getByTestId('guide-package-age').textContent()).toMatch(words.age);
      expect(mock.requests.some((r) => r.path === `/api/journeys/jrn_guide_1/next?language=${lang}`)).toBe(true);
      expect(mock.requests.filter((r) => r.method === 'POST' && r.path === '/api/journeys').at(-1)?.body).toEqual({ session: 'prs_guide_1', language: lang });
      await shot(p, `${lang}-1080x1920-kiosk`);
    }
  });
  it('says a refused start in words and stops offering it for that pass', async () => {
    const { page: p } = await openGuide(ui.browser, ui.tessera.uiUrl);
    await installGuideRoutes(p, mock);
    await p.getByTestId('tab-guide').click();
    mock.journeys = [];
    mock.startRefusal = { status: 404, code: 'NOT_FOUND', message: 'The product of session prs_guide_1 names no journey.' };
    mock.traveller = await traveller(p);
    await p.getByTestId('guide-start').click({ timeout: 10_000 });
    await expect.poll(() => p.getByTestId('guide-problem').textContent().catch(() => null), { timeout: 10_000 }).toBe('The product of session prs_guide_1 names no journey.');
    expect(await p.getByTestId('guide-start').count()).toBe(0);
    await p.getByTestId('guide-no-journey').waitFor();
    // Still said after the next reads of the journey (the words stay until the traveller's next action).
    const lists = () => mock.requests.filter((r) => r.path === `/api/journeys?user=${mock.traveller}`).length;
    const seen = lists();
    await expect.poll(lists, { timeout: 10_000 }).toBeGreaterThanOrEqual(seen + 2);
    expect(await p.getByTestId('guide-problem').textContent()).toBe('The product of session prs_guide_1 names no journey.');
    mock.startRefusal = null;
  });

  it('offers the start for a pass really bought in the wallet (the sessions and catalogue from the runtime), with that session', async () => {
    expect(runTessera(['wallet', 'topup', 'main', '200000', 'UAH', '--url', ui.tessera.origin, '--data', ui.dataDir], cleanEnv()).code).toBe(0);
    const real = createGuideMock();
    const { page: p } = await openGuide(ui.browser, ui.tessera.uiUrl, { viewport: KIOSK });
    await installGuideRoutes(p, real, { realSessions: true });
    await p.reload();
    await p.getByTestId('area-journey').waitFor();
    const code = await buyPass(p, ui.tessera);
    await p.getByTestId('tab-guide').click();
    real.traveller = await traveller(p);
    const start = p.getByTestId('guide-start');
    await start.waitFor({ timeout: 10_000 });
    const session = await start.getAttribute('data-session');
    expect(session).toMatch(/^prs_/);
    await start.click();
    await p.getByTestId('guide-done').waitFor({ timeout: 10_000 });
    expect(real.requests.find((r) => r.method === 'POST' && r.path === '/api/journeys')?.body).toEqual({ session, language: 'en' });
    expect(code).toMatch(/^TS1:/);
  }, 120_000);
});

describe.skipIf(!routesPresent)('the Journey Guide against the real routes (skipped until GET /api/journeys is served)', () => {
  let page: Page;
  let journeyId = '';

  it('buys the pass, starts today\'s journey, and shows the next step, the itinerary, the map and the package\'s age', async () => {
    expect(runTessera(['wallet', 'topup', 'main', '200000', 'UAH', '--url', ui.tessera.origin, '--data', ui.dataDir], cleanEnv()).code).toBe(0);
    ({ page } = await openGuide(ui.browser, ui.tessera.uiUrl, { viewport: KIOSK }));
    const code = await buyPass(page, ui.tessera);
    await page.getByTestId('tab-guide').click();
    await page.getByTestId('guide-start').click();
    await page.getByTestId('guide-next-text').waitFor({ timeout: 15_000 });
    journeyId = (await page.getByTestId('guide').getAttribute('data-journey'))!;
    expect(journeyId).not.toBe('');
    expect((await statuses(page))[0]).toMatch(/:current$/);
    await expect.poll(() => page.getByTestId('guide-map').getAttribute('data-source'), { timeout: 10_000 }).toBe('package');
    expect(await page.getByTestId('guide-map-ways').count()).toBe(1);
    expect(await page.getByTestId('guide-map-marker').count()).toBe((await statuses(page)).length);
    expect(await page.getByTestId('guide-package-age').textContent()).toMatch(/^City data from \d{1,2} \w{3} \d{4}, (less than a day|\d+ days?) old$/);
    await shot(page, 'real-started-1080x1920-kiosk');
    // Walk until a node that needs the pass: its QR code is the wallet's.
    for (let i = 0; i < 10 && (await page.getByTestId('guide-pass-qr').count()) === 0; i++) {
      const version = await page.getByTestId('guide').getAttribute('data-version');
      await page.getByTestId('guide-done').click();
      await expect.poll(() => page.getByTestId('guide').getAttribute('data-version'), { timeout: 10_000 }).not.toBe(version);
    }
    const qr = page.getByTestId('guide-pass-qr');
    await qr.scrollIntoViewIfNeeded();
    expect(await scanQr(ui.browser, qr)).toBe(code);
    expect(await page.getByTestId('guide-map-route').count()).toBeGreaterThan(0);
    await page.getByTestId('guide-next').scrollIntoViewIfNeeded();
    await shot(page, 'real-next-step-1080x1920-kiosk');
  }, 120_000);

  it('says so in words when another screen changed the journey first (JOURNEY_CONFLICT), and shows it as it stands', async () => {
    const view = (await api('GET', `/api/journeys/${journeyId}`)).body as { nodes: Array<{ id: string; state: string }>; current: string; version: number };
    const later = view.nodes.filter((x) => x.state === 'pending' && x.id !== view.current).at(-1)!;
    // Hold this screen's reads so it keeps the journey as it was, while "another screen" completes a later node.
    // Its own POST (with the version it saw) lets the reads through again.
    let hold = true;
    await page.route(
      (url) => url.pathname.startsWith('/api/journeys'),
      (r) => {
        if (r.request().method() === 'POST') hold = false;
        return hold ? r.abort() : r.continue();
      },
    );
    expect((await api('POST', `/api/journeys/${journeyId}/nodes/${later.id}/complete`, {})).status).toBe(200);
    await page.getByTestId('guide-done').click();
    await expect.poll(() => page.getByTestId('guide-conflict').textContent().catch(() => null), { timeout: 10_000 }).toBe('Another screen changed this journey just now; here is how it stands.');
    await page.unroute((url) => url.pathname.startsWith('/api/journeys'));
    await expect.poll(() => page.getByTestId('guide').getAttribute('data-version'), { timeout: 10_000 }).toBe(String(view.version + 1));
    expect(await statuses(page)).toContain(`${later.id}:done`);
    await shot(page, 'real-conflict-1080x1920-kiosk');
  }, 60_000);

  it('walks the day to journey.completed', async () => {
    for (let i = 0; i < 20 && (await page.getByTestId('guide-finished').count()) === 0; i++) {
      // The guide's proposals (closing hours, weather) are declined: "Not now" takes the card away.
      const proposal = page.getByTestId('guide-proposal').first();
      if ((await proposal.count()) > 0) {
        const id = await proposal.getAttribute('data-proposal');
        await proposal.getByTestId('guide-reject').click();
        await expect.poll(() => page.locator(`[data-testid="guide-proposal"][data-proposal="${id}"]`).count(), { timeout: 10_000 }).toBe(0);
        continue;
      }
      const version = await page.getByTestId('guide').getAttribute('data-version');
      await page.getByTestId('guide-done').click();
      await expect.poll(() => page.getByTestId('guide').getAttribute('data-version'), { timeout: 10_000 }).not.toBe(version);
    }
    expect(await page.getByTestId('guide-finished').getAttribute('data-state')).toBe('completed');
    expect(await page.getByTestId('guide-finished').textContent()).toBe('Journey complete — thank you for travelling with us!');
    await shot(page, 'real-finished-1080x1920-kiosk');
  }, 120_000);

  it('runs the same journey on static routes with the city package removed, and says so', async () => {
    const bare = await startUiSession('tessera-e2e-guide-static-', KIOSK, { tesseraArgs: ['--kiosk'], env: cleanEnv({ TESSERA_CITY_PACKAGES: '' }) });
    opened.push(bare);
    expect(runTessera(['wallet', 'topup', 'main', '200000', 'UAH', '--url', bare.tessera.origin, '--data', bare.dataDir], cleanEnv()).code).toBe(0);
    const p = bare.page;
    await p.goto(bare.tessera.uiUrl);
    await p.getByTestId('area-journey').waitFor();
    await buyPass(p, bare.tessera);
    await p.getByTestId('tab-guide').click();
    await p.getByTestId('guide-start').click();
    await p.getByTestId('guide-next-text').waitFor({ timeout: 15_000 });
    expect(await p.getByTestId('guide-degraded').textContent()).toBe("The city map is not available (no city data on this kiosk): directions come from the journey's own notes.");
    expect(await p.getByTestId('guide-map').getAttribute('data-source')).toBe('places');
    expect(await p.getByTestId('guide-package-age').textContent()).toBe('No city data on this kiosk');
    await p.getByTestId('guide-done').click();
    await expect.poll(() => p.getByTestId('guide-route').getAttribute('data-source'), { timeout: 10_000 }).toBe('static');
    await shot(p, 'real-static-1080x1920-kiosk');
  }, 120_000);
});
