import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_CHECKS } from '../../main/common/bundle.js';
import type { BundleVerdict } from '../../main/common/bundle.js';
import { ARTIFACTS, startUiSession } from '../helpers/browser.js';
import type { UiSession } from '../helpers/browser.js';
import { runTessera } from '../helpers/cli.js';
import { flipInside, makeBundleFixture } from '../helpers/bundle-fixture.js';
import type { BundleFixture } from '../helpers/bundle-fixture.js';
import { tempDir } from '../helpers/tmp.js';

// The Verify page in real Chromium against a real headless Tessera: a bundle of a capsule decided by
// POST /v1/run is checked in the page, offline, by the same code as the CLI and POST /v1/verify; a bundle
// made by another device (its own key, real receipt store) is intact but not a pass, as `--device` says.
let session: UiSession;
let page: Page;
let token: string;
let bundle: Uint8Array;
let cid: string;
/** This device's key id, as the device log names it (GET /v1/log/root → log). */
let ownKey: string;
let other: BundleFixture;
let requests: string[] = [];

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(session.tessera.origin + path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
}

beforeAll(async () => {
  session = await startUiSession('tessera-e2e-verify-', { width: 1280, height: 1100 });
  page = session.page;
  token = decodeURIComponent(/#token=([^&\s]+)/.exec(session.tessera.uiUrl)![1]!);
  const view = (attempt: number) => ({
    v: 'ai-json-nrf1/0.1.1',
    t: 'record',
    hdr: { src: 'gw-e2e', nonce: `verify-${Date.now()}-${attempt}` },
    intent: { kind: 'EVAL', name: 'api-receipt' },
    ctx: { method: 'POST', path: '/v1/payments', body_cid: `b3:${'2'.repeat(64)}` },
    meta: { tenant: 'default', app: 'gw', user: 'svc', principal: { id: 'svc-payments', tenant: 'default', audiences: ['gateway'], scopes: ['post:/v1/payments'] } },
    decision: {},
  });
  // The page is under test, not the policies: an allowed request's bundle is wanted. A policy that fails closed on a
  // starved machine (NACK) is asked again with a new nonce, and named if it keeps failing.
  let run: { cid: string; bundle_url: string; verdict: string } | undefined;
  for (let attempt = 0; attempt < 3 && run?.verdict !== 'ACK'; attempt++) {
    run = (await (await api('/v1/run', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(view(attempt)) })).json()) as { cid: string; bundle_url: string; verdict: string };
  }
  if (run!.verdict !== 'ACK') throw new Error(`POST /v1/run answered ${run!.verdict} three times: ${JSON.stringify(await (await api(`/v1/r/${run!.cid}`)).json())}`);
  run = run!;
  cid = run.cid;
  bundle = new Uint8Array(await (await api(new URL(run.bundle_url).pathname)).arrayBuffer());
  ownKey = ((await (await api('/v1/log/root')).json()) as { log: string }).log;
  other = makeBundleFixture(tempDir('tessera-e2e-verify-other-', 'file'));
  page.on('request', (r) => requests.push(r.url()));
}, 90_000);

afterAll(async () => {
  other?.close();
  await session?.close();
}, 30_000);

/** Open the page and wait until it knows this device's key (it takes no file before). */
async function openVerify(): Promise<void> {
  await page.goto(session.tessera.uiUrl);
  await page.locator('nav a[data-area="verify"]').click();
  await page.getByTestId('area-verify').getByRole('heading', { name: 'Verify a bundle' }).waitFor();
  await page.getByTestId('verify-own-key').waitFor();
}

/** Choose a file on the page, offline, and wait for its verdict; no request may be made meanwhile. */
async function verifyOffline(name: string, bytes: Uint8Array): Promise<void> {
  await page.context().setOffline(true);
  requests = [];
  await page.getByTestId('verify-file').setInputFiles({ name, mimeType: 'application/zip', buffer: Buffer.from(bytes) });
  await page.getByTestId('verify-result').filter({ hasText: name }).waitFor();
  expect(requests).toEqual([]);
  await page.context().setOffline(false);
}

const result = () => page.getByTestId('verify-result');
const shown = async () => ({
  ok: await result().getAttribute('data-ok'),
  intact: await result().getAttribute('data-intact'),
  signer: await result().getAttribute('data-signer'),
  verdict: await page.getByTestId('verify-verdict').textContent(),
});

describe('GET /api/device', () => {
  it('answers the key id that signs this device\'s bundles, and nothing without a token', async () => {
    const res = await api('/api/device');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ keyid: ownKey });
    expect(ownKey).toMatch(/^b3:[0-9a-f]{64}$/);
    expect((await fetch(`${session.tessera.origin}/api/device`)).status).toBe(401);
  });
});

describe('Verify page', () => {
  it('is reachable from the navigation and shows OK with every check passing for a real bundle, with no request made', async () => {
    await openVerify();
    expect(await page.getByTestId('verify-own-key').textContent()).toBe(ownKey);
    // Offline from here on: the verdict must not need the network.
    await page.context().setOffline(true);
    requests = [];
    await page.getByTestId('verify-file').setInputFiles({ name: 'capsule.zip', mimeType: 'application/zip', buffer: Buffer.from(bundle) });
    const result = page.getByTestId('verify-result');
    await result.waitFor();
    expect(requests).toEqual([]);
    expect(await result.getAttribute('data-ok')).toBe('true');
    expect(await result.getAttribute('data-signer')).toBe('this-device');
    expect(await page.getByTestId('verify-verdict').textContent()).toBe('Authentic — signed by this device');
    expect(await page.getByTestId('verify-meaning').textContent()).toBe('Intact and signed by this device. The request was allowed (ACK).');
    expect(await page.getByTestId('verify-device').textContent()).toBe(ownKey);
    expect(await page.getByTestId('verify-capsule').textContent()).toBe(cid);
    expect(await page.getByTestId('verify-decision').textContent()).toBe('ACK');
    expect(await page.getByTestId('verify-card').textContent()).toBe(`${session.tessera.origin}/v1/r/${cid}`);
    expect(await page.getByTestId('verify-qr').locator('svg').getAttribute('aria-label')).toBe(`QR code of ${session.tessera.origin}/v1/r/${cid}`);
    const statuses = await page.getByTestId('verify-checks').locator('li').evaluateAll((items) => items.map((li) => [li.getAttribute('data-check'), li.getAttribute('data-status')]));
    expect(statuses).toEqual(BUNDLE_CHECKS.map((c) => [c.id, 'pass']));
    const hint = (await result.locator('.hint').first().textContent())!;
    console.log(`Chromium verified the ${bundle.length}-byte bundle: ${hint}`);
    await page.screenshot({ path: join(ARTIFACTS, 'verify-ok.png'), fullPage: true });
    await page.context().setOffline(false);
    expect(session.consoleErrors).toEqual([]);
  });

  it('fails a tampered bundle dropped on the page, naming the same place as the CLI and POST /v1/verify', async () => {
    const bad = flipInside(bundle, 'log/inclusion.json', 25, 0x01);
    const dir = tempDir('tessera-e2e-verify-file-');
    writeFileSync(join(dir, 'bad.zip'), bad);
    const cli = runTessera(['bundle', 'verify', join(dir, 'bad.zip'), '--json']);
    expect(cli.code).toBe(1);
    const cliVerdict = JSON.parse(cli.stdout) as BundleVerdict;
    const post = (await (await api('/v1/verify', { method: 'POST', headers: { 'content-type': 'application/zip' }, body: Buffer.from(bad) })).json()) as BundleVerdict;
    expect(post).toEqual(cliVerdict);
    expect(cliVerdict.error).toMatchObject({ code: 'BUNDLE_ZIP_INVALID', where: 'log/inclusion.json' });

    await page.context().setOffline(true);
    requests = [];
    // A real drop: a DataTransfer holding the file, as a browser builds it when a file is dragged in.
    const drop = await page.evaluateHandle((data: number[]) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(data)], 'bad.zip', { type: 'application/zip' }));
      return dt;
    }, [...bad]);
    await page.getByTestId('verify-drop').dispatchEvent('drop', { dataTransfer: drop });
    await page.getByTestId('verify-result').filter({ hasText: 'bad.zip' }).waitFor();
    expect(requests).toEqual([]);
    expect(await page.getByTestId('verify-verdict').textContent()).toBe('INVALID');
    const error = page.getByTestId('verify-error');
    expect(await error.getAttribute('data-code')).toBe(cliVerdict.error!.code);
    expect(await error.getAttribute('data-where')).toBe(cliVerdict.error!.where);
    expect(await error.textContent()).toContain(cliVerdict.error!.message);
    expect(await page.locator('li[data-check="files"]').getAttribute('data-status')).toBe('fail');
    await page.screenshot({ path: join(ARTIFACTS, 'verify-tampered.png'), fullPage: true });
    await page.context().setOffline(false);
  });

  it('calls a bundle signed by another device intact but not authentic, with the code and place of `tessera bundle verify --device`', async () => {
    const dir = tempDir('tessera-e2e-verify-other-file-');
    writeFileSync(join(dir, 'other.zip'), other.bundle);
    // The CLI, told which device to expect, refuses it; without --device it is merely valid.
    expect(runTessera(['bundle', 'verify', join(dir, 'other.zip')]).code).toBe(0);
    const cli = runTessera(['bundle', 'verify', join(dir, 'other.zip'), '--device', ownKey, '--json']);
    expect(cli.code).toBe(1);
    const cliVerdict = JSON.parse(cli.stdout) as BundleVerdict;
    expect(cliVerdict.error).toMatchObject({ code: 'KEY_UNKNOWN', where: 'keys/keys.json' });

    await verifyOffline('other-device.zip', other.bundle);
    expect(await shown()).toEqual({ ok: 'false', intact: 'true', signer: 'other', verdict: 'Intact, but signed by another device' });
    expect(await page.getByTestId('verify-verdict').getAttribute('class')).toContain('bad');
    const error = page.getByTestId('verify-error');
    expect([await error.getAttribute('data-code'), await error.getAttribute('data-where')]).toEqual([cliVerdict.error!.code, cliVerdict.error!.where]);
    expect(await error.textContent()).toContain(cliVerdict.error!.message);
    const meaning = (await page.getByTestId('verify-meaning').textContent())!;
    expect(meaning).toContain(other.deviceKey.keyid);
    expect(meaning).toContain(`not by this device (${ownKey})`);
    expect(meaning).not.toContain('Authentic');
    expect(await page.getByTestId('verify-device').textContent()).toBe(other.deviceKey.keyid);
    // Every check of the bundle itself passed: it is whole, only not ours.
    const statuses = await page.getByTestId('verify-checks').locator('li').evaluateAll((items) => items.map((li) => li.getAttribute('data-status')));
    expect(new Set(statuses)).toEqual(new Set(['pass']));
    await page.screenshot({ path: join(ARTIFACTS, 'verify-other-device.png'), fullPage: true });
    expect(session.consoleErrors).toEqual([]);
  });

  it("compares with a key the user pins instead, until unpinned; a malformed key id is refused", async () => {
    await page.getByTestId('verify-pin-input').fill('b3:not-a-key');
    await page.getByTestId('verify-pin').click();
    expect(await page.getByTestId('verify-pin-error').textContent()).toContain('b3: followed by 64 hex digits');
    // The other device's bundle from the test before is still shown: pinning its key makes it a pass.
    await page.getByTestId('verify-pin-input').fill(`  ${other.deviceKey.keyid.toUpperCase().replace('B3:', 'b3:')} `);
    await page.getByTestId('verify-pin').click();
    expect(await page.getByTestId('verify-pinned').textContent()).toContain(other.deviceKey.keyid);
    expect(await page.getByTestId('verify-pin-error').count()).toBe(0);
    expect(await shown()).toEqual({ ok: 'true', intact: 'true', signer: 'pinned', verdict: 'Authentic — signed by the pinned key' });
    expect(await page.getByTestId('verify-meaning').textContent()).toBe('Intact and signed by the pinned key. The request was allowed (ACK).');
    // While pinned, this device's own bundle is the other one.
    await verifyOffline('own-while-pinned.zip', bundle);
    expect(await shown()).toEqual({ ok: 'false', intact: 'true', signer: 'other', verdict: 'Intact, but signed by another device' });
    expect(await page.getByTestId('verify-meaning').textContent()).toContain(`not by the pinned key (${other.deviceKey.keyid})`);
    await page.getByTestId('verify-unpin').click();
    expect(await shown()).toEqual({ ok: 'true', intact: 'true', signer: 'this-device', verdict: 'Authentic — signed by this device' });
    await page.getByTestId('verify-pin-input').waitFor();
    expect(session.consoleErrors).toEqual([]);
  });

  it('shows INVALID, not a crash, for a file that is not a ZIP at all', async () => {
    await page.getByTestId('verify-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('just some text') });
    await page.getByTestId('verify-result').filter({ hasText: 'notes.txt' }).waitFor();
    expect(await page.getByTestId('verify-error').getAttribute('data-code')).toBe('BUNDLE_ZIP_INVALID');
    expect(session.consoleErrors).toEqual([]);
  });
});
