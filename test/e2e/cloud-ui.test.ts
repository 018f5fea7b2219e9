/**
 * The cloud operator page (issue 16 §7) in real Chromium against the real cloud: every route module (CLOUD_ROUTES,
 * test/helpers/cloud.ts testCloud) on PGlite, real HTTP on 127.0.0.1, serving the real build (out/cloud-ui, `npm run
 * build`) through main/cloud/ui.ts under its strict CSP, at 390 px (a phone) and 1280 px. Screenshots:
 * test/e2e/artifacts/cloud-ui-*.png.
 *
 * Everything the page lists is made through the cloud's own routes: two tenants (root token), enrollment codes, three
 * devices enrolled with their own keys (challenge, signature), products and entitlements with leases, a lease given
 * back, device logs uploaded with signed heads and consistency proofs (`/v1/sync/receipts`, each device's real log:
 * test/helpers/cloud.ts), a double spend (two devices redeem a `detect` pass beyond its rights offline, then
 * upload: the cloud's signed proof and DOUBLE_SPEND alert), a forked log refused (LOG_FORKED alert), a revocation.
 */
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEASE_PAYLOAD_TYPE } from '../../main/common/cloud.js';
import type { Lease } from '../../main/common/cloud.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { RECEIPT_PAYLOAD_TYPE, RECEIPT_VERSION, receiptBytes, receiptId } from '../../main/common/receipt.js';
import type { JsonObject, ReceiptPayload } from '../../main/common/receipt.js';
import { createCloudServer } from '../../main/cloud/app.js';
import { openDb } from '../../main/cloud/db.js';
import type { Db } from '../../main/cloud/db.js';
import { CLOUD_UI_DIR, createCloudUiRoutes } from '../../main/cloud/ui.js';
import { CONTENT_SECURITY_POLICY } from '../../main/common/csp.js';
import { signEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { bearer, createTenant, createTestDevice, enroll, makeCode, signed, testCloud } from '../helpers/cloud.js';
import type { TestCloud, TestDevice } from '../helpers/cloud.js';
import { tempDir } from '../helpers/tmp.js';

const DETECT = `b3:${'7'.repeat(64)}`;
const PREVENT = `b3:${'8'.repeat(64)}`;

interface Dev { name: string; key: SigningKey; log: TestDevice; chains: Map<string, string | null> }

let tc: TestCloud;
let app: FastifyInstance;
let db: Db;
let tokenA: string;
let tokenB: string;
let gate: Dev;
let opera: Dev;
let kiosk: Dev;
let conflictSerial: string;
let gateLease: string;
let operaLease: string;

/** An admin call through the real routes; throws with the answer when it is not 200. */
async function admin<T>(method: 'GET' | 'POST', url: string, token: string, body?: unknown): Promise<T> {
  const res = await app.inject({ method, url, headers: bearer(token), ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}) });
  if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return res.json<T>();
}
/** A device-signed call at the cloud's clock. */
async function device(d: Dev, method: 'GET' | 'POST', url: string, body?: unknown) {
  return app.inject(signed(d.key, method, url, body, tc.now.ms));
}
/** A REDEMPTION receipt as a redeemer's runtime signs it (INTENT first on its capsule), appended to its own log. */
function redeem(d: Dev, serial: string, product: string, at: number, extra: JsonObject = {}): void {
  const capsule = `b3:${createHash('sha256').update(`${d.key.keyid}/${serial}`).digest('hex')}`;
  const envelopes: DsseEnvelope[] = [];
  const ids: string[] = [];
  const add = (kind: 'INTENT' | 'REDEMPTION', body: JsonObject) => {
    const payload: ReceiptPayload = { v: RECEIPT_VERSION, kind, capsule, prev: d.chains.get(serial) ?? null, subject: serial, body, issued_at: new Date(at).toISOString(), device: d.key.keyid };
    envelopes.push(signEnvelope(RECEIPT_PAYLOAD_TYPE, receiptBytes(payload), [d.key]));
    const id = receiptId(payload);
    ids.push(id);
    d.chains.set(serial, id);
  };
  if (!d.chains.has(serial)) add('INTENT', { intent: 'entitlement.redeem', serial, product });
  add('REDEMPTION', { action: 'redeem', redemption_id: `rdm_${randomBytes(6).toString('hex')}`, serial, venue: 'museum', ...extra });
  d.log.addSigned(envelopes, ids);
}
/** Uploads what the cloud has not accepted of a device's log (the device's own signed head, consistency proof). */
async function upload(d: Dev): Promise<{ statusCode: number; code?: string }> {
  const head = await device(d, 'GET', '/v1/sync/head');
  if (head.statusCode !== 200) throw new Error(`head: ${head.body}`);
  const res = await device(d, 'POST', '/v1/sync/receipts', d.log.upload(head.json<{ size: number }>().size));
  return { statusCode: res.statusCode, ...(res.statusCode === 200 ? {} : { code: res.json<{ error: { code: string } }>().error.code }) };
}
const leaseId = (e: unknown): string => {
  const env = e as DsseEnvelope;
  expect(env.payloadType).toBe(LEASE_PAYLOAD_TYPE);
  return (JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Lease).lease;
};

let origin: string;
let browser: Browser;
const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `cloud-ui-${name}.png`), fullPage: true });

beforeAll(async () => {
  if (!existsSync(join(CLOUD_UI_DIR, 'index.html'))) throw new Error('The cloud page is not built: run `npm run build` first.');
  db = await openDb({});
  tc = await testCloud(db);
  app = tc.app;
  await app.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const browserStarting = launchChromium();

  tokenA = (await createTenant(app, 'city-a')).admin;
  tokenB = (await createTenant(app, 'city-b')).admin;
  const dir = tempDir('tessera-e2e-cloud-ui-', 'file');
  const enrolled = async (name: string, role: string, venue?: string): Promise<Dev> => {
    const code = await makeCode(app, tokenA, { role, ...(venue ? { venue } : {}) });
    const { key } = await enroll(app, code, undefined, name);
    return { name, key, log: createTestDevice(dir, { key }), chains: new Map() };
  };
  gate = await enrolled('Museum gate 1', 'redeemer', 'lviv.museum-history');
  opera = await enrolled('Opera scanner', 'redeemer', 'lviv.opera');
  kiosk = await enrolled('Kiosk 7', 'kiosk');

  // A `detect` pass of 2 uses; a `prevent` pass of 5 uses with leases to both redeemers at issue.
  await admin('POST', '/v1/products', tokenA, { product_cid: DETECT, protection: 'detect', deny_max_age_s: 3600 });
  await admin('POST', '/v1/products', tokenA, { product_cid: PREVENT, protection: 'prevent', deny_max_age_s: 3600 });
  const now = tc.now.ms;
  const window = { valid_from: new Date(now - 60_000).toISOString(), valid_until: new Date(now + 86_400_000).toISOString(), venues: [] };
  conflictSerial = (await admin<{ serial: string }>('POST', '/v1/entitlements', tokenA, { product_cid: DETECT, kind: 'multi_use', uses: 2, ...window })).serial;
  const leased = await admin<{ serial: string; leases: unknown[] }>('POST', '/v1/entitlements', tokenA, {
    product_cid: PREVENT, kind: 'multi_use', uses: 5, ...window, leases: [{ device: gate.key.keyid, rights: 3 }, { device: opera.key.keyid, rights: 2 }],
  });
  [gateLease, operaLease] = leased.leases.map(leaseId) as [string, string];

  // Offline, both redeemers take the detect pass: the gate once, the opera twice (the first earliest) — 3 of 2.
  // The gate also redeems the prevent pass once within its lease. Then both upload their logs.
  redeem(opera, conflictSerial, DETECT, now - 3_600_000, { protection: 'detect' });
  redeem(gate, conflictSerial, DETECT, now - 3_000_000, { protection: 'detect' });
  redeem(opera, conflictSerial, DETECT, now - 2_400_000, { protection: 'detect' });
  redeem(gate, leased.serial, PREVENT, now - 1_000_000, { protection: 'prevent', lease: gateLease });
  gate.log.add(3); // and other receipts of its runs
  for (const d of [gate, opera]) expect(await upload(d)).toEqual({ statusCode: 200 });
  // The opera gives its unused lease back (its log is uploaded).
  const back = await device(opera, 'POST', '/v1/leases/return', { lease: operaLease, used: 0, log_size: opera.log.ids.length });
  expect(back.statusCode, back.body).toBe(200);
  // Then its database is swapped for another log under the same key: the cloud refuses the fork and raises an alert.
  const forked: Dev = { ...opera, log: createTestDevice(dir, { key: opera.key, chain: 1 }), chains: new Map() };
  forked.log.add(opera.log.ids.length + 1);
  expect(await upload(forked)).toEqual({ statusCode: 409, code: 'LOG_FORKED' });
  await admin('POST', `/v1/devices/${encodeURIComponent(opera.key.keyid)}/revoke`, tokenA, { reason: 'stolen' });
  // Two minutes later (the cloud's clock): what the page shows as lag.
  tc.now.ms += 120_000;
  browser = await browserStarting;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await db?.close();
  for (const d of [gate, opera, kiosk]) d?.log.close();
}, 30_000);

/** A fresh page that records console errors and CSP violations. */
async function openPage(width: number, height: number): Promise<{ page: Page; errors: string[]; violations: () => Promise<string[]> }> {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __csp: string[] }).__csp = seen;
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return { page, errors, violations: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp) };
}

describe('cloud operator page', () => {
  it('is served at / with its assets under the strict CSP, and says when it is not built', async () => {
    const res = await fetch(`${origin}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/); // no inline script
    for (const [file, type] of [['app.js', /^text\/javascript/], ['app.css', /^text\/css/]] as const) {
      const asset = await fetch(`${origin}/ui/${file}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(type);
      await asset.arrayBuffer();
    }
    const status = async (path: string) => {
      const r = await fetch(origin + path);
      await r.arrayBuffer();
      return r.status;
    };
    expect(await status('/ui/..%2Fpackage.json')).toBe(400);
    expect(await status('/ui/nothing.js')).toBe(404);
    // The admin routes stay behind the token: the page itself is public, its data is not.
    expect(await status('/v1/devices')).toBe(401);

    const unbuilt = await createCloudServer({ db, logger: createMemoryLogger(), rootToken: 'root_0123456789abcdefghijklmnopqrstuv', version: 'test', routes: [createCloudUiRoutes('/nonexistent/cloud-ui')] });
    const answer = await unbuilt.inject({ method: 'GET', url: '/' });
    expect(answer.statusCode).toBe(404);
    expect(answer.json().error.message).toMatch(/npm run build/);
    await unbuilt.close();
  });

  it('on a phone (390 px): asks for the token, refuses a wrong one, then lists devices, leases, conflicts and alerts', async () => {
    const { page, errors, violations } = await openPage(390, 844);
    await page.goto(`${origin}/`);
    await page.getByTestId('token-form').waitFor();
    await shot(page, 'token-390');

    await page.getByTestId('token').fill('adm_not-a-token');
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByTestId('token-rejected').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('tessera.cloud.admin-token'))).toBeNull();
    errors.length = 0; // the refused requests (401) log as console errors; nothing else may

    await page.getByTestId('token').fill(tokenA);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByTestId('fleet').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('tessera.cloud.admin-token'))).toBe(tokenA);

    // Devices: last head, lag, revoked — as the cloud accepted them.
    await expect.poll(() => page.getByTestId('device-row').count()).toBe(3);
    const gateRow = page.locator(`[data-testid="device-row"][data-device="${gate.key.keyid}"]`);
    expect(await gateRow.textContent()).toContain('Museum gate 1');
    expect(await gateRow.getByTestId('device-head').textContent()).toMatch(new RegExp(`^${gate.log.ids.length} receipts, `));
    expect(await gateRow.getByTestId('device-lag').textContent()).toBe('2 min');
    expect(await gateRow.getByTestId('device-state').textContent()).toBe('active');
    const operaRow = page.locator(`[data-testid="device-row"][data-device="${opera.key.keyid}"]`);
    expect(await operaRow.getAttribute('data-revoked')).toBe('true');
    expect(await operaRow.getByTestId('device-state').textContent()).toMatch(/^revoked .*: stolen$/);
    // Its last accepted head is the one before the fork.
    expect(await operaRow.getByTestId('device-head').textContent()).toMatch(new RegExp(`^${opera.log.ids.length} receipts, `));
    expect(await page.locator(`[data-testid="device-row"][data-device="${kiosk.key.keyid}"]`).getByTestId('device-head').textContent()).toBe('nothing uploaded');

    // Leases, named by device: the gate used one of its three (its uploaded redemption), the opera gave its two back.
    await expect.poll(() => page.getByTestId('lease-row').count()).toBe(2);
    expect(await page.locator(`[data-lease="${gateLease}"]`).textContent()).toContain('Museum gate 1');
    expect(await page.locator(`[data-lease="${gateLease}"]`).textContent()).toContain('1 of 3');
    expect(await page.locator(`[data-lease="${gateLease}"]`).getAttribute('data-state')).toBe('active');
    expect(await page.locator(`[data-lease="${operaLease}"]`).getAttribute('data-state')).toBe('returned');

    // The conflict the cloud found at upload: used vs rights, honoured/over, and the adjudication the page checks
    // against the evidence (the devices' own receipts in the signed proof): the two earliest honoured, the last over.
    const conflict = page.locator(`[data-testid="conflict"][data-serial="${conflictSerial}"]`);
    expect(await conflict.getByTestId('conflict-used').textContent()).toBe('used 3 of 2');
    expect(await conflict.getByTestId('conflict-split').textContent()).toBe('2 honoured · 1 over');
    await conflict.locator('summary').click();
    expect(await conflict.locator('summary').textContent()).toContain('checked against the evidence');
    expect(await conflict.getByTestId('evidence').evaluateAll((els) => els.map((e) => e.getAttribute('data-honoured')))).toEqual(['true', 'true', 'false']);
    expect(await conflict.getByTestId('evidence').first().textContent()).toContain('Opera scanner');
    expect(await conflict.getByTestId('evidence').nth(1).textContent()).toContain('Museum gate 1');
    expect(await conflict.getByTestId('evidence').last().textContent()).toContain('Opera scanner');

    // The alerts: the double spend and the forked log.
    expect((await page.getByTestId('alert-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-code')))).sort()).toEqual(['DOUBLE_SPEND', 'LOG_FORKED']);

    // A phone: nothing scrolls sideways, every row reads as a card.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(page, 'fleet-390');

    // The token is kept for this tab: a reload opens the fleet again without asking.
    await page.reload();
    await page.getByTestId('fleet').waitFor();
    expect(await page.getByTestId('token-form').count()).toBe(0);

    expect(errors).toEqual([]);
    expect(await violations()).toEqual([]);
    // The CSP is really enforced: an inline script injected into the page does not run and is reported.
    await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = true';
      document.body.append(s);
    });
    await expect.poll(violations).toEqual([expect.stringMatching(/^script-src/)]);
    expect(await page.evaluate(() => (window as unknown as { __inline?: boolean }).__inline)).toBeUndefined();

    // Forget the token: back to the form, nothing stored.
    await page.getByTestId('sign-out').click();
    await page.getByTestId('token-form').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('tessera.cloud.admin-token'))).toBeNull();
    await page.context().close();
  }, 60_000);

  it('on a laptop (1280 px): another tenant\'s token sees its own empty fleet', async () => {
    const { page, errors, violations } = await openPage(1280, 800);
    await page.goto(`${origin}/`);
    await page.getByTestId('token').fill(tokenA);
    await page.getByRole('button', { name: 'Open' }).click();
    await expect.poll(() => page.getByTestId('device-row').count()).toBe(3);
    await page.getByTestId('conflict').waitFor();
    // The real alerts carry long messages (hex roots): each code still reads on one line.
    expect(await page.getByTestId('alert-row').locator('code').evaluateAll((els) => els.map((e) => e.getClientRects().length))).toEqual([1, 1]);
    await shot(page, 'fleet-1280');
    await page.getByTestId('sign-out').click();
    await page.getByTestId('token').fill(tokenB);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByTestId('fleet').waitFor();
    expect(await page.getByTestId('section-devices').textContent()).toContain('No devices enrolled yet');
    expect(await page.getByTestId('device-row').count()).toBe(0);
    expect(await page.getByTestId('conflict').count()).toBe(0);
    expect(errors).toEqual([]);
    expect(await violations()).toEqual([]);
    await page.context().close();
  }, 60_000);
});
