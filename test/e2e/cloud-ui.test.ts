/**
 * The cloud operator page (issue 16 §7) in real Chromium against a real cloud server (main/cloud/app.ts
 * createCloudServer on PGlite, real HTTP on 127.0.0.1) serving the real build (out/cloud-ui, `npm run build`) through
 * main/cloud/ui.ts, under its strict CSP, at 390 px (a phone) and 1280 px. Screenshots: test/e2e/artifacts/cloud-ui-*.png.
 *
 * TEST-ONLY STAND-IN (the lead rewires this at merge): the four admin routes the page reads — GET /v1/devices,
 * /v1/leases, /v1/conflicts, /v1/alerts — belong to H1–H3 and are not on this branch. `standInAdminRoutes` below
 * answers them with fixed rows per tenant, behind the real admin-token authentication of createCloudServer. Once
 * H1's tenants/devices, H2's alerts and H3's leases/conflicts are merged, drop it: create the tenant, enroll devices,
 * grant leases and make a double spend through their routes instead, and keep every assertion on the page.
 */
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOUBLE_SPEND_VERSION, adjudicate } from '../../main/common/cloud.js';
import type { DoubleSpendProof } from '../../main/common/cloud.js';
import { createCloudServer, sha256Hex, tenantOf } from '../../main/cloud/app.js';
import { openDb } from '../../main/cloud/db.js';
import type { Db } from '../../main/cloud/db.js';
import { CLOUD_UI_DIR, cloudUiRoutes, createCloudUiRoutes } from '../../main/cloud/ui.js';
import { CONTENT_SECURITY_POLICY } from '../../main/common/csp.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { existsSync } from 'node:fs';

const TOKEN_A = 'adm_tenant-a-0123456789abcdefghijklmnop';
const TOKEN_B = 'adm_tenant-b-0123456789abcdefghijklmnop';
const NOW = Date.now();
const iso = (msFromNow: number) => new Date(NOW + msFromNow).toISOString();
const DEV = (n: number) => `b3:${String(n).repeat(64)}`;
const SERIAL = '5f1e0c2a9b7d4e3f8a6c1b2d';

const evidence = [
  { device: DEV(1), receipt_id: `b3:${'a'.repeat(64)}`, issued_at: iso(-3_600_000), amount: 1 },
  { device: DEV(2), receipt_id: `b3:${'b'.repeat(64)}`, issued_at: iso(-3_000_000), amount: 1 },
  { device: DEV(2), receipt_id: `b3:${'c'.repeat(64)}`, issued_at: iso(-2_400_000), amount: 1 },
];
const verdict = adjudicate(2, evidence);
const proof: DoubleSpendProof = {
  v: DOUBLE_SPEND_VERSION,
  tenant: 'city-a',
  serial: SERIAL,
  product_cid: `b3:${'7'.repeat(64)}`,
  rights: 2,
  used: verdict.used,
  evidence: evidence.map((e) => ({ ...e, receipt: { payloadType: 'x', payload: '', signatures: [] } })),
  adjudication: { rule: 'earliest-first', honoured: verdict.honoured, over: verdict.over },
  issuer: DEV(9),
  issued_at: iso(-60_000),
};
/** The proof as the cloud stores it: a DSSE envelope whose payload the page decodes. */
const signedProof = { payloadType: 'application/vnd.tessera.double-spend+json', payload: Buffer.from(JSON.stringify(proof)).toString('base64'), signatures: [{ keyid: DEV(9), sig: 'AA==' }] };

/** Rows each tenant's admin sees (TEST-ONLY, see the file comment). */
const ROWS: Record<string, { devices: unknown[]; leases: unknown[]; conflicts: unknown[]; alerts: unknown[] }> = {
  'city-a': {
    devices: [
      { device: DEV(1), name: 'Museum gate 1', role: 'redeemer', venue: 'lviv.museum-history', enrolled_at: iso(-86_400_000), last_seen_at: iso(-120_000), revoked_at: null, log: { size: 1284, root: 'ab'.repeat(32), accepted_at: iso(-120_000) }, lag_s: 120 },
      { device: DEV(2), name: 'Opera scanner', role: 'redeemer', venue: 'lviv.opera', enrolled_at: iso(-86_400_000), last_seen_at: iso(-7_200_000), revoked_at: iso(-3_600_000), log: { size: 312, root: 'cd'.repeat(32), accepted_at: iso(-7_200_000) }, lag_s: 7200 },
      { device: DEV(3), name: 'Kiosk 7', role: 'kiosk', venue: null, enrolled_at: iso(-600_000), last_seen_at: null, revoked_at: null, log: null, lag_s: null },
    ],
    leases: [
      { lease: 'lse_1', serial: SERIAL, device: DEV(1), rights: 3, used: 1, nbf: iso(-3_600_000), exp: iso(3_600_000), state: 'active', product_cid: proof.product_cid },
      { lease: 'lse_2', serial: SERIAL, device: DEV(2), rights: 2, used: 2, nbf: iso(-7_200_000), exp: iso(-60_000), state: 'returned', product_cid: proof.product_cid },
    ],
    conflicts: [{ serial: SERIAL, proof: signedProof, updated_at: iso(-60_000) }],
    alerts: [{ id: '17', device: DEV(2), code: 'LOG_FORKED', message: 'Device Opera scanner sent a head inconsistent with the one accepted at size 312; evidence kept.', created_at: iso(-3_500_000), evidence: {} }],
  },
  'city-b': { devices: [], leases: [], conflicts: [], alerts: [] },
};

/** TEST-ONLY stand-in for H1–H3's admin list routes (see the file comment): the caller's tenant's rows. */
async function standInAdminRoutes(app: FastifyInstance) {
  for (const name of ['devices', 'leases', 'conflicts', 'alerts'] as const) {
    app.get(`/v1/${name}`, { config: { cloudAccess: ['admin'] } }, async (request) => ({ [name]: ROWS[tenantOf(request)]?.[name] ?? [] }));
  }
}

let db: Db;
let cloud: FastifyInstance;
let origin: string;
let browser: Browser;
const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `cloud-ui-${name}.png`), fullPage: true });

beforeAll(async () => {
  if (!existsSync(join(CLOUD_UI_DIR, 'index.html'))) throw new Error('The cloud page is not built: run `npm run build` first.');
  db = await openDb({});
  for (const [tenant, token] of [['city-a', TOKEN_A], ['city-b', TOKEN_B]] as const) {
    await db.query('INSERT INTO tenants (id, name, cloud_keyid, cloud_key_pem, cloud_private_pem) VALUES ($1, $2, $3, $4, $5)', [tenant, tenant, 'b3:test', 'test', 'test']);
    await db.query('INSERT INTO admin_tokens (token_sha256, tenant) VALUES ($1, $2)', [sha256Hex(token), tenant]);
  }
  cloud = await createCloudServer({ db, logger: createMemoryLogger(), rootToken: 'root_0123456789abcdefghijklmnopqrstuv', version: 'test', routes: [cloudUiRoutes, standInAdminRoutes] });
  await cloud.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(cloud.server.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await cloud?.close();
  await db?.close();
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

    await page.getByTestId('token').fill(TOKEN_A);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByTestId('fleet').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('tessera.cloud.admin-token'))).toBe(TOKEN_A);

    // Devices: last head, lag, revoked.
    await expect.poll(() => page.getByTestId('device-row').count()).toBe(3);
    const gate = page.locator(`[data-testid="device-row"][data-device="${DEV(1)}"]`);
    expect(await gate.getByTestId('device-head').textContent()).toMatch(/^1284 receipts, /);
    expect(await gate.getByTestId('device-lag').textContent()).toBe('2 min');
    expect(await gate.getByTestId('device-state').textContent()).toBe('active');
    const opera = page.locator(`[data-testid="device-row"][data-device="${DEV(2)}"]`);
    expect(await opera.getAttribute('data-revoked')).toBe('true');
    expect(await opera.getByTestId('device-state').textContent()).toMatch(/^revoked /);
    expect(await opera.getByTestId('device-lag').textContent()).toBe('2 h');
    expect(await page.locator(`[data-testid="device-row"][data-device="${DEV(3)}"]`).getByTestId('device-head').textContent()).toBe('nothing uploaded');

    // Leases, named by device.
    await expect.poll(() => page.getByTestId('lease-row').count()).toBe(2);
    expect(await page.locator('[data-lease="lse_1"]').textContent()).toContain('Museum gate 1');
    expect(await page.locator('[data-lease="lse_1"]').textContent()).toContain('1 of 3');
    expect(await page.locator('[data-lease="lse_2"]').getAttribute('data-state')).toBe('returned');

    // The conflict: used vs rights, honoured/over, and the adjudication the page checks against the evidence.
    const conflict = page.getByTestId('conflict');
    expect(await conflict.getByTestId('conflict-used').textContent()).toBe('used 3 of 2');
    expect(await conflict.getByTestId('conflict-split').textContent()).toBe('2 honoured · 1 over');
    await conflict.locator('summary').click();
    expect(await conflict.locator('summary').textContent()).toContain('checked against the evidence');
    expect(await conflict.getByTestId('evidence').evaluateAll((els) => els.map((e) => e.getAttribute('data-honoured')))).toEqual(['true', 'true', 'false']);
    expect(await conflict.getByTestId('evidence').last().textContent()).toContain('Opera scanner');

    // The alert.
    expect(await page.getByTestId('alert-row').getAttribute('data-code')).toBe('LOG_FORKED');

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
    await page.getByTestId('token').fill(TOKEN_A);
    await page.getByRole('button', { name: 'Open' }).click();
    await expect.poll(() => page.getByTestId('device-row').count()).toBe(3);
    await shot(page, 'fleet-1280');
    await page.getByTestId('sign-out').click();
    await page.getByTestId('token').fill(TOKEN_B);
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
