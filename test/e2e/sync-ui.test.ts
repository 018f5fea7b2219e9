/**
 * The device UI's sync parts (issue 16 §5–6) in real Chromium against a real runtime and its real HTTP server
 * (in process: createRuntime + createHttpServer serving the built renderer, `npm run build`): the status bar's cloud
 * state for staff and operators (and nothing for a traveller), refreshed by `sync.*` events on the real bus; the
 * Redeem verdict card's lease, the guard's verdicts with what staff should do, the bound risk, and the lease panel.
 * Screenshots: test/e2e/artifacts/sync-ui-*.png.
 *
 * TEST-ONLY STAND-INS (the lead rewires these at merge):
 * 1. `syncStandIn` answers `GET /api/sync` and `POST /api/sync/now` from `status` below, with the access H4's
 *    main/host/http/sync.ts declares (staff, operator). Once H4's sync module is merged, drop it and set the state
 *    up through `runtime.sync` (enroll against a real cloud, take a lease, leave receipts pending, cut the link).
 * 2. `POST /api/redeem` is answered in the page (Playwright `page.route`, as test/e2e/redeem-scanner.test.ts does)
 *    with RedeemAnswers carrying `lease` and the guard's verdicts, which H4's redeem guard produces. Once merged,
 *    redeem a real `prevent`/`bound` pass instead (inside, at and beyond the lease, deny list made stale).
 * A second server on the same runtime without the stand-in shows the real NOT_FOUND of a runtime without the module.
 */
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import type { Browser, Page, Route } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaseBalance, SyncStatus } from '../../main/common/cloud.js';
import { createHttpServer } from '../../main/host/http/server.js';
import { RENDERER_DIR } from '../../main/host/paths.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { RedeemAnswer } from '../../renderer/src/areas/redeem-api.js';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'test-token-sync-ui-0123456789abcdef';
const VENUE = 'lviv.museum-history';
const HOUR = 3_600_000;
const iso = (msFromNow: number) => new Date(Date.now() + msFromNow).toISOString();

const museumLease = (): LeaseBalance => ({ lease: 'lse_museum', serial: '5f1e0c2a9b7d4e3f8a6c1b2d', product_cid: `b3:${'7'.repeat(64)}`, title: 'Museum pass', rights: 5, used: 2, left: 3, exp: iso(4 * HOUR), state: 'active' });
const cardLease = (): LeaseBalance => ({ lease: 'lse_card', serial: '0a1b2c3d4e5f60718293a4b5', product_cid: `b3:${'8'.repeat(64)}`, title: 'City card', rights: 2, used: 1, left: 1, exp: iso(2 * HOUR), state: 'active' });
const oldLease = (): LeaseBalance => ({ lease: 'lse_old', serial: 'ffeeddccbbaa998877665544', product_cid: `b3:${'9'.repeat(64)}`, title: 'Opera ticket', rights: 4, used: 4, left: 0, exp: iso(-HOUR), state: 'returned' });

/** What the stand-in answers (TEST-ONLY, see the file comment); tests change it and publish events. */
let status: SyncStatus;
let nowCalls = 0;
function resetStatus(): void {
  status = {
    cloud: { url: 'http://127.0.0.1:4700', tenant: 'city-a', role: 'redeemer', device: `b3:${'1'.repeat(64)}` },
    state: 'online',
    last_sync: iso(-120_000),
    last_error: null,
    pending_uploads: 3,
    accepted_size: 40,
    next_attempt: iso(30_000),
    deny_list_as_of: iso(-3 * HOUR),
    leases: [museumLease(), cardLease(), oldLease()],
  };
}

/** TEST-ONLY stand-in for H4's main/host/http/sync.ts (GET /api/sync, POST /api/sync/now). */
async function syncStandIn(app: FastifyInstance) {
  app.get('/api/sync', { config: { access: ['staff', 'operator'] } }, async () => status);
  app.post('/api/sync/now', { config: { access: ['staff', 'operator'] } }, async () => {
    nowCalls++;
    status = { ...status, state: 'online', last_sync: new Date().toISOString(), pending_uploads: 0, accepted_size: status.accepted_size + status.pending_uploads };
    return status;
  });
}

let runtime: Runtime;
let server: FastifyInstance;
let plain: FastifyInstance;
let origin: string;
let plainOrigin: string;
let browser: Browser;

const listen = async (app: FastifyInstance) => {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  if (!existsSync(join(RENDERER_DIR, 'index.html'))) throw new Error('The UI is not built: run `npm run build` first.');
  resetStatus();
  runtime = await createRuntime({ dataDir: tempDir('tessera-e2e-sync-ui-', 'file'), shell: 'headless', logger: createMemoryLogger() });
  server = await createHttpServer({ runtime, token: TOKEN, logger: createMemoryLogger(), rendererDir: RENDERER_DIR });
  await server.register(syncStandIn);
  plain = await createHttpServer({ runtime, token: TOKEN, logger: createMemoryLogger(), rendererDir: RENDERER_DIR });
  origin = await listen(server);
  plainOrigin = await listen(plain);
  browser = await launchChromium(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await plain?.close();
  await runtime?.close();
}, 30_000);

const roleToken = (role: 'staff' | 'traveller' | 'operator') => server.tessera.credentials.roleToken(role);
const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `sync-ui-${name}.png`) });

async function open(at: string, token: string, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const syncRequests: string[] = [];
  const paths: string[] = [];
  const errors: string[] = [];
  page.on('requestfinished', (r) => paths.push(new URL(r.url()).pathname));
  page.on('request', (r) => new URL(r.url()).pathname.startsWith('/api/sync') && syncRequests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  const consoleErrors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  await page.goto(`${at}/#token=${encodeURIComponent(token)}`);
  return { page, syncRequests, paths, errors, consoleErrors, close: () => context.close() };
}

describe('status bar', () => {
  it('shows staff the cloud state, last sync, pending uploads and leases, follows sync.* events, and syncs now', async () => {
    resetStatus();
    const { page, errors, close } = await open(origin, roleToken('staff'));
    const bar = page.getByTestId('sync-status');
    await bar.waitFor();
    expect(await bar.getAttribute('data-state')).toBe('online');
    expect(await page.getByTestId('sync-state').textContent()).toBe('Cloud: online');
    expect(await page.getByTestId('sync-last').textContent()).toBe('Synced 2 min ago');
    expect(await page.getByTestId('sync-pending').textContent()).toBe('3 to upload');
    // Active, unexpired leases only, soonest expiry first; the returned one is not counted.
    expect(await page.getByTestId('sync-leases').textContent()).toBe('Leases: City card 1/2 · Museum pass 3/5');
    await shot(page, 'statusbar-staff');

    // The cloud goes away: the device's sync module says so with an event, and the bar follows at once (the slow
    // poll is a minute; this waits far less).
    status = { ...status, state: 'offline', last_error: { code: 'CLOUD_UNREACHABLE', message: 'The cloud did not answer within 10 s.', at: new Date().toISOString() }, pending_uploads: 5 };
    runtime.bus.publish('sync.offline', { error: status.last_error });
    await expect.poll(() => bar.getAttribute('data-state'), { timeout: 10_000 }).toBe('offline');
    expect(await page.getByTestId('sync-state').textContent()).toBe('Cloud: offline');
    expect(await page.getByTestId('sync-state').getAttribute('title')).toContain('The cloud did not answer within 10 s. (CLOUD_UNREACHABLE)');
    expect(await page.getByTestId('sync-pending').textContent()).toBe('5 to upload');
    await shot(page, 'statusbar-offline');

    // Back online, staff press Sync now: the route runs a round and the bar shows its result.
    status = { ...status, state: 'online', last_error: null };
    await page.getByTestId('sync-now').click();
    await expect.poll(() => page.getByTestId('sync-pending').textContent(), { timeout: 10_000 }).toBe('All uploaded');
    expect(nowCalls).toBe(1);
    expect(await page.getByTestId('sync-last').textContent()).toBe('Synced just now');
    expect(errors).toEqual([]);
    await close();
  }, 60_000);

  it('shows a traveller kiosk nothing of sync and asks nothing', async () => {
    const { page, syncRequests, close } = await open(origin, roleToken('traveller'));
    await page.getByTestId('area-journey').waitFor();
    await page.getByTestId('runtime-link').filter({ hasText: 'Runtime connected' }).waitFor();
    runtime.bus.publish('sync.uploaded', { size: 40 });
    // The version line is the last thing the status bar fills in; by then a request would have been made.
    await expect.poll(() => page.getByTestId('version').textContent()).not.toBe('runtime unreachable');
    expect(await page.getByTestId('sync-status').count()).toBe(0);
    expect(syncRequests).toEqual([]);
    await close();
  }, 60_000);

  it('hides for an operator on a runtime without the sync module, without asking it (no 404 in the console)', async () => {
    const { page, syncRequests, paths, errors, consoleErrors, close } = await open(plainOrigin, TOKEN);
    // The manifest does not list /api/sync, so the page never asks it.
    await expect.poll(() => paths.includes('/.well-known/product.json')).toBe(true);
    const answer = await fetch(`${plainOrigin}/api/sync`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(answer.status).toBe(404);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    await page.getByTestId('runtime-link').filter({ hasText: 'Runtime connected' }).waitFor();
    expect(await page.getByTestId('sync-status').count()).toBe(0);
    // And stays hidden: an event does not ask either.
    runtime.bus.publish('sync.online', {});
    await page.getByTestId('version').filter({ hasNotText: 'runtime unreachable' }).waitFor();
    // Redeem (the device token holds staff too) does not ask for leases either.
    await page.evaluate(() => (location.hash = '#/redeem'));
    await page.getByTestId('area-redeem').waitFor();
    await page.getByTestId('redeem-history-row').or(page.getByText('No redemptions yet.')).first().waitFor();
    expect(await page.getByTestId('redeem-leases').count()).toBe(0);
    expect(syncRequests).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(errors).toEqual([]);
    await close();
  }, 60_000);
});

describe('Redeem with leases', () => {
  const json = (route: Route, body: unknown) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  const entitlement = { serial: museumLease().serial, product_cid: museumLease().product_cid, product_ref: 'city.museum-pass@1.0.0', title: 'Museum pass', kind: 'multi_use' as const, rights_total: 10, rights_left: 7, valid_from: iso(-HOUR), valid_until: iso(48 * HOUR), venues: [VENUE] };
  const redemption = () => ({ id: `rdm_${Date.now()}`, at: new Date().toISOString(), venue: VENUE, undo_until: iso(120_000), receipt_id: `b3:${'1'.repeat(64)}`, capsule: `b3:${'2'.repeat(64)}` });
  /** The answers H4's redeem guard gives (TEST-ONLY, see the file comment), in the order the test scans. */
  const answers: RedeemAnswer[] = [
    { verdict: 'REDEEMED', ok: true, message: 'Redeemed at History Museum.', entitlement, redemption: redemption(), lease: { lease: 'lse_museum', rights: 5, used: 3, left: 2, exp: museumLease().exp, protection: 'prevent' as const } },
    { verdict: 'NO_LEASE', ok: false, message: 'This device holds no lease for this pass and the cloud could not be reached to get one.', entitlement },
    { verdict: 'LEASE_EXHAUSTED', ok: false, message: 'This device used all 5 uses of its lease for this pass.', entitlement, lease: { lease: 'lse_museum', rights: 5, used: 5, left: 0, exp: museumLease().exp, protection: 'prevent' as const } },
    { verdict: 'DENY_LIST_STALE', ok: false, message: 'The deny list on this device is 3 hours old; this product allows 1 hour.', entitlement },
    { verdict: 'REDEEMED', ok: true, message: 'Redeemed at History Museum, beyond this device\'s lease.', entitlement, redemption: redemption(), lease: { lease: 'lse_museum', rights: 5, used: 5, left: 0, exp: museumLease().exp, protection: 'bound' as const, beyond: 2, bound: 3 } },
  ];

  it('shows the lease on the verdict card, the guard\'s refusals with what to do, the bound risk and the lease panel', async () => {
    resetStatus();
    const { page, errors, close } = await open(origin, roleToken('staff'), { width: 1280, height: 900 });
    let scans = 0;
    await page.route('**/api/redeem', (route) => {
      const answer = answers[scans++]!;
      // The redemption used one of the lease (the stand-in's state follows, as the sync module's would).
      if (answer.verdict === 'REDEEMED' && answer.lease) status = { ...status, leases: status.leases.map((l) => (l.lease === answer.lease!.lease ? { ...l, used: answer.lease!.used, left: answer.lease!.left } : l)) };
      return json(route, answer);
    });
    await page.getByTestId('area-redeem').waitFor();
    await page.getByTestId('redeem-venue').fill(VENUE);

    // The lease panel lists the device's leases: active first, soonest expiry first.
    const panel = page.getByTestId('redeem-leases');
    await panel.waitFor();
    expect(await panel.getByTestId('redeem-lease-row').evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-lease')}:${r.getAttribute('data-state')}:${r.children[1]!.textContent}`))).toEqual(['lse_card:active:1 of 2', 'lse_museum:active:3 of 5', 'lse_old:returned:0 of 4']);

    const scan = async (expected: string) => {
      await page.getByTestId('redeem-code').fill('TS1:TEST');
      await page.getByTestId('redeem-submit').click();
      await expect.poll(() => page.getByTestId('redeem-verdict').getAttribute('data-verdict')).toBe(expected);
    };
    const next = async () => {
      await page.getByTestId('redeem-next').click();
      await page.getByTestId('redeem-scan').waitFor();
    };

    // 1. Inside the lease: what is left on this device's lease, until when; the panel follows.
    await scan('REDEEMED');
    expect(await page.getByTestId('redeem-lease').textContent()).toMatch(/^2 of 5 uses left on this device's lease, until /);
    expect(await page.getByTestId('redeem-lease-risk').count()).toBe(0);
    await expect.poll(() => panel.locator('[data-lease="lse_museum"]').evaluate((r) => r.children[1]!.textContent)).toBe('2 of 5');
    // The status bar follows a redemption too (no sync.* event says a lease was used).
    await expect.poll(() => page.getByTestId('sync-leases').textContent()).toBe('Leases: City card 1/2 · Museum pass 2/5');
    await shot(page, 'redeem-lease');
    await next();

    // 2–4. The guard's refusals: amber cards, what happened (the runtime's sentence) and what to do.
    await scan('NO_LEASE');
    expect(await page.getByTestId('redeem-verdict-words').textContent()).toBe('NO LEASE ON THIS DEVICE');
    expect(await page.getByTestId('redeem-verdict').getAttribute('class')).toContain('tone-caution');
    expect(await page.getByTestId('redeem-verdict-message').textContent()).toBe(answers[1]!.message);
    expect(await page.getByTestId('redeem-advice').textContent()).toMatch(/^Nothing was redeemed\. .*connect it to the network and scan again, or send the traveller to a gate that is online\.$/);
    expect(await page.getByTestId('redeem-verdict-words').evaluate((el) => parseFloat(getComputedStyle(el).fontSize))).toBeGreaterThanOrEqual(48);
    await shot(page, 'redeem-no-lease');
    await next();

    await scan('LEASE_EXHAUSTED');
    expect(await page.getByTestId('redeem-verdict-words').textContent()).toBe('LEASE USED UP');
    expect(await page.getByTestId('redeem-lease').textContent()).toMatch(/^0 of 5 uses left/);
    expect(await page.getByTestId('redeem-advice').textContent()).toContain('the pass itself may have more');
    await next();

    await scan('DENY_LIST_STALE');
    expect(await page.getByTestId('redeem-verdict-words').textContent()).toBe('DENY LIST TOO OLD');
    // The advice says how old the device's deny list is (SyncStatus.deny_list_as_of) and what to press.
    expect(await page.getByTestId('redeem-advice').textContent()).toMatch(/\(3 h ago\).*press "Sync now" in the status bar/);
    await shot(page, 'redeem-deny-list-stale');
    await next();

    // 5. A `bound` product beyond the lease: redeemed, with the risk shown.
    await scan('REDEEMED');
    const risk = page.getByTestId('redeem-lease-risk');
    expect(await risk.textContent()).toBe('2 of 3 offline redemptions beyond the lease used — 1 left before this device refuses; they are checked at the next sync');
    expect(await risk.getAttribute('data-beyond')).toBe('2');
    await shot(page, 'redeem-bound-risk');
    expect(errors).toEqual([]);
    await close();
  }, 90_000);

  it('fits a phone (390 px): verdict card and lease panel without sideways scrolling', async () => {
    resetStatus();
    const { page, close } = await open(origin, roleToken('staff'), { width: 390, height: 844 });
    await page.route('**/api/redeem', (route) => json(route, answers[4]));
    await page.getByTestId('area-redeem').waitFor();
    await page.getByTestId('redeem-venue').fill(VENUE);
    await page.getByTestId('redeem-leases').waitFor();
    await page.getByTestId('redeem-code').fill('TS1:TEST');
    await page.getByTestId('redeem-submit').click();
    await page.getByTestId('redeem-lease-risk').waitFor();
    const overflow = await page.evaluate(() => [...document.querySelectorAll('.area *')].filter((el) => el.getBoundingClientRect().right > innerWidth + 1 && !el.closest('.table-scroll')).map((el) => el.className || el.tagName));
    expect(overflow).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'sync-ui-redeem-390.png'), fullPage: true });
    await close();
  }, 60_000);
});
