/**
 * The device UI's sync parts (issue 16 §5–6) in real Chromium against the real parts: a real cloud (`startCloud`,
 * main/cloud/index.ts, on PGlite, real HTTP on 127.0.0.1) and a real device runtime with its HTTP server serving the
 * built renderer (`npm run build`), enrolled as a redeemer through a TCP link proxy (test/helpers/link-proxy.ts) the
 * test cuts and heals. Products, entitlements and leases are made through the cloud's routes; redemptions go through
 * the Redeem screen to the runtime's redeem guard.
 *
 * Shown: the status bar (not enrolled → online with lease balances → offline with receipts to upload → online, all
 * uploaded after "Sync now"), a traveller sees nothing; on the Redeem screen a `prevent` pass leased 2 uses shows the
 * lease balance, is redeemed within the lease while offline and refused beyond it (LEASE_EXHAUSTED, with the balance);
 * a `bound` pass beyond its lease shows the risk; a product whose deny list is older than its bound (the device's clock
 * moved past it while offline) fails closed (DENY_LIST_STALE). After the heal the cloud holds the `prevent` pass's
 * redemptions within its rights. Screenshots: test/e2e/artifacts/sync-ui-*.png.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncStatus } from '../../main/common/cloud.js';
import { startCloud } from '../../main/cloud/index.js';
import type { RunningCloud } from '../../main/cloud/index.js';
import { createHttpServer } from '../../main/host/http/server.js';
import { BUILTIN_CATALOGUE_DIR, BUILTIN_TRUST_DIR, RENDERER_DIR } from '../../main/host/paths.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { startLinkProxy } from '../helpers/link-proxy.js';
import type { LinkProxy } from '../helpers/link-proxy.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'test-token-sync-ui-0123456789abcdef';
const VENUE = 'lviv.museum-history';
/** The `prevent` product: one of the catalogue's (its title is what staff read); set once the runtime loaded it. */
let PREVENT: string;
let preventTitle: string;
const BOUND = `b3:${'b2'.repeat(32)}`;
const FRESH = `b3:${'c3'.repeat(32)}`;
/** The `FRESH` product's deny-list bound; the device's clock is moved past it while offline. */
const FRESH_MAX_AGE_S = 60;

let cloud: RunningCloud;
let proxy: LinkProxy;
let runtime: Runtime;
let server: FastifyInstance;
let origin: string;
let browser: Browser;
let admin: string;
/** The device's clock runs this far ahead of the real one (within the cloud's 300 s request skew). */
let ahead = 0;
const passes: Record<'prevent' | 'bound' | 'fresh', { serial: string; code: string }> = {} as never;

async function cloudApi<T>(method: 'GET' | 'POST', path: string, token: string, body?: unknown): Promise<T> {
  const res = await fetch(`${cloud.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

beforeAll(async () => {
  if (!existsSync(join(RENDERER_DIR, 'index.html'))) throw new Error('The UI is not built: run `npm run build` first.');
  const browserStarting = launchChromium(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
  cloud = await startCloud({ dataDir: tempDir('tessera-e2e-sync-ui-cloud-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger() });
  proxy = await startLinkProxy({ port: Number(new URL(cloud.url).port) });
  admin = (await cloudApi<{ admin_token: string }>('POST', '/v1/tenants', cloud.rootToken, { id: 'city-a', name: 'City A' })).admin_token;
  // Rounds only when the test (or staff) asks: the interval is long.
  runtime = await createRuntime({ dataDir: tempDir('tessera-e2e-sync-ui-', 'file'), shell: 'headless', logger: createMemoryLogger(), clock: () => Date.now() + ahead, syncIntervalMs: 3_600_000, builtinTrustDir: BUILTIN_TRUST_DIR, catalogueDirs: [BUILTIN_CATALOGUE_DIR] });
  const museum = runtime.catalogue.list().find((p) => p.id === 'city.museum-ticket')!;
  PREVENT = museum.cid;
  preventTitle = museum.profiles.ui.title['en']!;
  server = await createHttpServer({ runtime, token: TOKEN, logger: createMemoryLogger(), rendererDir: RENDERER_DIR });
  await server.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(server.server.address() as { port: number }).port}`;

  // Protection per product: `prevent` (only within a lease offline), `bound` (1 beyond the lease), and a product whose
  // deny list may be at most a minute old.
  await cloudApi('POST', '/v1/products', admin, { product_cid: PREVENT, protection: 'prevent', deny_max_age_s: 3600 });
  await cloudApi('POST', '/v1/products', admin, { product_cid: BOUND, protection: 'bound', bound: 2, deny_max_age_s: 3600 });
  await cloudApi('POST', '/v1/products', admin, { product_cid: FRESH, protection: 'detect', deny_max_age_s: FRESH_MAX_AGE_S });
  browser = await browserStarting;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await runtime?.close();
  await proxy?.close();
  await cloud?.close();
}, 30_000);

const roleToken = (role: 'staff' | 'traveller' | 'operator') => server.tessera.credentials.roleToken(role);
const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `sync-ui-${name}.png`) });

async function open(token: string, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const syncRequests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => new URL(r.url()).pathname.startsWith('/api/sync') && syncRequests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${origin}/#token=${encodeURIComponent(token)}`);
  return { page, syncRequests, errors, close: () => context.close() };
}

describe('status bar and Redeem against a real cloud', () => {
  it('shows an operator the device not enrolled, then online with its lease balances once enrolled and synced', async () => {
    const { page, errors, close } = await open(TOKEN);
    const bar = page.getByTestId('sync-status');
    await bar.waitFor();
    expect(await bar.getAttribute('data-state')).toBe('not_enrolled');
    expect(await page.getByTestId('sync-state').textContent()).toBe('Cloud: not enrolled');
    expect(await page.getByTestId('sync-now').count()).toBe(0);

    // An operator enrolls the device as a redeemer with a one-time code (through the proxy: the link the test cuts).
    const { code } = await cloudApi<{ code: string }>('POST', '/v1/enrollment-codes', admin, { role: 'redeemer', name: 'Museum gate 1', venue: VENUE });
    const enrolled = await fetch(`${origin}/api/sync/enroll`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ cloud: proxy.url, code }) });
    expect(enrolled.status).toBe(200);
    const device = runtime.deviceKey.keyid;

    // Passes issued in the cloud with the tenant key, leased to this device at issue.
    const now = Date.now();
    const window = { valid_from: new Date(now - 60_000).toISOString(), valid_until: new Date(now + 86_400_000).toISOString(), venues: [] };
    passes.prevent = await cloudApi('POST', '/v1/entitlements', admin, { product_cid: PREVENT, kind: 'multi_use', uses: 5, ...window, leases: [{ device, rights: 2 }] });
    passes.bound = await cloudApi('POST', '/v1/entitlements', admin, { product_cid: BOUND, kind: 'multi_use', uses: 5, ...window, leases: [{ device, rights: 1 }] });
    passes.fresh = await cloudApi('POST', '/v1/entitlements', admin, { product_cid: FRESH, kind: 'multi_use', uses: 5, ...window });

    // Staff-facing "Sync now" (the button the bar shows once enrolled) pulls them.
    await expect.poll(() => bar.getAttribute('data-state'), { timeout: 15_000 }).not.toBe('not_enrolled');
    await page.getByTestId('sync-now').click();
    await expect.poll(() => page.getByTestId('sync-leases').textContent(), { timeout: 15_000 }).toMatch(/^Leases: /);
    expect(await bar.getAttribute('data-state')).toBe('online');
    expect(await page.getByTestId('sync-state').textContent()).toBe('Cloud: online');
    expect(await page.getByTestId('sync-last').textContent()).toBe('Synced just now');
    expect(await page.getByTestId('sync-pending').textContent()).toBe('All uploaded');
    // Both leases, with their balances (same expiry: the first two shown).
    const leases = (await page.getByTestId('sync-leases').textContent())!;
    // The catalogue's title for the catalogue product; the serial for one the device does not know.
    expect(leases).toContain(`${preventTitle} 2/2`);
    expect(leases).toContain(`pass ${passes.bound.serial.slice(0, 8)}… 1/1`);
    await shot(page, 'statusbar-online');
    expect(errors).toEqual([]);
    await close();
  }, 90_000);

  it('shows a traveller kiosk nothing of sync and asks nothing', async () => {
    const { page, syncRequests, close } = await open(roleToken('traveller'));
    await page.getByTestId('area-journey').waitFor();
    await page.getByTestId('runtime-link').filter({ hasText: 'Runtime connected' }).waitFor();
    runtime.bus.publish('sync.uploaded', { receipts: 0, accepted_size: 0, pending: 0 });
    // The version line is the last thing the status bar fills in; by then a request would have been made.
    await expect.poll(() => page.getByTestId('version').textContent()).not.toBe('runtime unreachable');
    expect(await page.getByTestId('sync-status').count()).toBe(0);
    expect(syncRequests).toEqual([]);
    await close();
  }, 60_000);

  it('shows staff the lease balance, redeems within the lease offline, refuses beyond it, shows the bound risk and a stale deny list, and catches up after the heal', async () => {
    const { page, errors, close } = await open(roleToken('staff'));
    await page.getByTestId('area-redeem').waitFor();
    await page.getByTestId('redeem-venue').fill(VENUE);
    const bar = page.getByTestId('sync-status');
    const panel = page.getByTestId('redeem-leases');
    await panel.waitFor();
    const row = (serial: string) => panel.getByTestId('redeem-lease-row').filter({ has: page.locator(`td[title="${serial}"]`) });
    // The panel's "Left" column: all of the lease is left.
    expect(await row(passes.prevent.serial).evaluate((r) => r.children[1]!.textContent)).toBe('2 of 2');

    const scan = async (code: string, expected: string) => {
      if (await page.getByTestId('redeem-next').count()) {
        await page.getByTestId('redeem-next').click();
        await page.getByTestId('redeem-scan').waitFor();
      }
      await page.getByTestId('redeem-code').fill(code);
      await page.getByTestId('redeem-submit').click();
      await page.getByTestId('redeem-verdict').waitFor();
      expect(await page.getByTestId('redeem-verdict').getAttribute('data-verdict'), (await page.getByTestId('redeem-verdict').textContent()) ?? '').toBe(expected);
    };

    // 1. Online, within the lease: what is left of this device's lease, until when; panel and bar follow.
    await scan(passes.prevent.code, 'REDEEMED');
    expect(await page.getByTestId('redeem-lease').textContent()).toMatch(/^1 of 2 uses left on this device's lease, until /);
    expect(await page.getByTestId('redeem-verdict').textContent()).toContain(preventTitle);
    await expect.poll(() => row(passes.prevent.serial).evaluate((r) => r.children[1]!.textContent)).toBe('1 of 2');
    await expect.poll(() => page.getByTestId('sync-leases').textContent()).toContain(`${preventTitle} 1/2`);
    expect(await row(passes.prevent.serial).locator('td').first().textContent()).toBe(preventTitle);
    await shot(page, 'redeem-lease');

    // 2. The link is cut. Still within the lease: redeemed offline, nothing left.
    proxy.cut();
    await scan(passes.prevent.code, 'REDEEMED');
    expect(await page.getByTestId('redeem-lease').textContent()).toMatch(/^0 of 2 uses left/);
    await expect.poll(() => row(passes.prevent.serial).evaluate((r) => r.children[1]!.textContent)).toBe('0 of 2');

    // 3. Beyond the lease: the device tries an online grant, cannot reach the cloud, and refuses — the pass has 3
    //    more uses in the cloud, but not on this device.
    await scan(passes.prevent.code, 'LEASE_EXHAUSTED');
    expect(await page.getByTestId('redeem-verdict-words').textContent()).toBe('LEASE USED UP');
    expect(await page.getByTestId('redeem-verdict').getAttribute('class')).toContain('tone-caution');
    expect(await page.getByTestId('redeem-verdict-message').textContent()).toMatch(/^Lease used up: this device has used 2 of the 2 rights leased to it\./);
    expect(await page.getByTestId('redeem-lease').textContent()).toMatch(/^0 of 2 uses left on this device's lease/);
    expect(await page.getByTestId('redeem-advice').textContent()).toContain('the pass itself may have more');
    // The bar says offline (the failed grant told it) and that receipts wait to be uploaded.
    await expect.poll(() => bar.getAttribute('data-state'), { timeout: 10_000 }).toBe('offline');
    const pending = runtime.sync.status().pending_uploads;
    expect(pending).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('sync-pending').textContent()).toBe(`${pending} to upload`);
    expect(await page.getByTestId('sync-state').textContent()).toBe('Cloud: offline');
    await shot(page, 'redeem-lease-exhausted-offline');

    // 4. A `bound` pass: its one leased use, then one beyond the lease — redeemed, with the risk shown.
    await scan(passes.bound.code, 'REDEEMED');
    expect(await page.getByTestId('redeem-lease-risk').count()).toBe(0);
    await scan(passes.bound.code, 'REDEEMED');
    const risk = page.getByTestId('redeem-lease-risk');
    expect(await risk.textContent()).toBe('1 of 2 offline redemptions beyond the lease used — 1 left before this device refuses; they are checked at the next sync');
    expect(await risk.getAttribute('data-beyond')).toBe('1');
    await shot(page, 'redeem-bound-risk');

    // 5. Still offline, the device's clock passes the FRESH product's deny-list bound: it fails closed and says why.
    ahead = (FRESH_MAX_AGE_S + 30) * 1000;
    await scan(passes.fresh.code, 'DENY_LIST_STALE');
    expect(await page.getByTestId('redeem-verdict-words').textContent()).toBe('DENY LIST TOO OLD');
    expect(await page.getByTestId('redeem-verdict-message').textContent()).toMatch(/^Deny list too old: .* may be at most 60 s old\./);
    // The list is 90 s old by the device's clock; the browser's clock (behind it here) makes it newer still, never "0 min".
    expect(await page.getByTestId('redeem-advice').textContent()).toMatch(/\((under a minute|1 min|2 min) ago\), older than this product allows\..*press "Sync now" in the status bar/);
    await shot(page, 'redeem-deny-list-stale');
    // The clock is set right again (as NTP would once online): the status bar's "Synced …" reads the browser's clock.
    ahead = 0;

    // 6. The link heals; staff press "Sync now": online, everything uploaded.
    proxy.heal();
    await page.getByTestId('sync-now').click();
    await expect.poll(() => page.getByTestId('sync-pending').textContent(), { timeout: 20_000 }).toBe('All uploaded');
    await expect.poll(() => bar.getAttribute('data-state')).toBe('online');
    expect(await page.getByTestId('sync-last').textContent()).toBe('Synced just now');
    await shot(page, 'statusbar-healed');

    // The cloud holds every redemption: the prevent pass used 2 of its 5 rights, all within the lease — never beyond.
    const { leases } = await cloudApi<{ leases: Array<{ serial: string; used: number; rights: number }> }>('GET', `/v1/leases?serial=${passes.prevent.serial}`, admin);
    expect(leases.map((l) => [l.used, l.rights])).toEqual([[2, 2]]);
    const status: SyncStatus = runtime.sync.status();
    expect(status).toMatchObject({ state: 'online', pending_uploads: 0, accepted_size: runtime.deviceLog.size, last_error: null });
    expect((await cloudApi<{ conflicts: unknown[] }>('GET', '/v1/conflicts', admin)).conflicts).toEqual([]);
    expect(errors).toEqual([]);
    await close();
  }, 120_000);

  it('fits a phone (390 px): verdict card (an online grant beyond the used-up lease) and lease panel without sideways scrolling', async () => {
    const { page, close } = await open(roleToken('staff'), { width: 390, height: 844 });
    await page.getByTestId('area-redeem').waitFor();
    await page.getByTestId('redeem-venue').fill(VENUE);
    await page.getByTestId('redeem-leases').waitFor();
    await page.getByTestId('redeem-code').fill(passes.prevent.code);
    await page.getByTestId('redeem-submit').click();
    await page.getByTestId('redeem-lease').waitFor();
    // Online again, its lease used up: the device got a grant of one more use from the cloud (3 are free there).
    expect(await page.getByTestId('redeem-verdict').getAttribute('data-verdict')).toBe('REDEEMED');
    expect(await page.getByTestId('redeem-lease').textContent()).toMatch(/^0 of 1 use left on this device's lease/);
    // The status bar counts the pass once: 0 of its first lease's 2 and 0 of the granted 1.
    await expect.poll(() => page.getByTestId('sync-leases').textContent()).toContain(`${preventTitle} 0/3`);
    // The headline reads as one word on one line, not "REDEEME / D".
    expect(await page.getByTestId('redeem-verdict-words').evaluate((el) => {
      const range = document.createRange();
      range.selectNodeContents(el);
      return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
    })).toBe(1);
    const overflow = await page.evaluate(() => [...document.querySelectorAll('.area *')].filter((el) => el.getBoundingClientRect().right > innerWidth + 1 && !el.closest('.table-scroll')).map((el) => el.className || el.tagName));
    expect(overflow).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'sync-ui-redeem-390.png'), fullPage: true });
    await close();
  }, 60_000);
});
