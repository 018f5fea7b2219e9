/**
 * Capability links (issue 14 §8) through a real runtime (real SQLite file, the signed first-party plugins in the
 * real sandbox, HTTP on 127.0.0.1): a capsule decided by POST /v1/run, a link made for it with a traveller's
 * token, then opened with no bearer header — card, bundle (verified by the host verifier and the CLI), the QR in
 * the bundle, the phone layout in Chromium — and everything a link must not give.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import jsQR from 'jsqr';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapsuleLink } from '../../main/common/api.js';
import { readZip } from '../../main/common/zip.js';
import { runCli } from '../../main/host/cli.js';
import { publicOriginFor, startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { LINK_CARD_CSP } from '../../main/runtime/links/card.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { verifyBundleOnHost } from '../../main/runtime/receipts/bundle.js';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { runTessera } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;
let dataDir: string;
let capsuleA: string;
let capsuleB: string;
let link: CapsuleLink;
let traveller: string;
let staff: string;

const url = (path: string) => host.origin + path;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const LINK_NOT_FOUND = { error: { code: 'LINK_NOT_FOUND', message: 'No receipt at this link: it is unknown, revoked or expired.' } };

async function run(name: string): Promise<string> {
  const view = {
    v: 'ai-json-nrf1/0.1.1',
    t: 'record',
    hdr: { src: 'gw-links', nonce: `links-${name}-${randomBytes(6).toString('hex')}` },
    intent: { kind: 'EVAL', name },
    ctx: { method: 'POST', path: '/v1/payments', body_cid: `b3:${'1'.repeat(64)}` },
    meta: { tenant: 'default', app: 'gw', user: 'svc', principal: { id: 'svc-payments', tenant: 'default', audiences: ['gateway'], scopes: ['post:/v1/payments'] } },
    decision: {},
  };
  const res = await fetch(url('/v1/run'), { method: 'POST', headers: { ...bearer(host.token), 'content-type': 'application/json' }, body: JSON.stringify(view) });
  const body = (await res.json()) as { cid: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.cid;
}

async function createLink(token: string, body: Record<string, unknown>) {
  const res = await fetch(url('/api/links'), { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** One request with the path exactly as written (fetch would resolve `..`). */
function raw(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: host.port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dataDir = tempDir('tessera-links-', 'file');
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
  traveller = host.credentials.roleToken('traveller');
  staff = host.credentials.roleToken('staff');
  capsuleA = await run('link-a');
  capsuleB = await run('link-b');
  const made = await createLink(traveller, { capsule: capsuleA, label: 'purchase test' });
  expect(made.status, JSON.stringify(made.body)).toBe(200);
  link = made.body as unknown as CapsuleLink;
}, 90_000);

afterAll(async () => {
  await host?.close();
});

describe('capability links', () => {
  it('gives a traveller a 256-bit token and a URL on the public origin, shown once', () => {
    expect(link.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(link.url_path).toBe(`/c/${link.token}`);
    expect(link.url).toBe(`${host.publicOrigin}/c/${link.token}`);
    expect(host.publicOrigin).toBe(host.origin);
    expect(link).toMatchObject({ capsule: capsuleA, label: 'purchase test', state: 'active', revoked_at: null });
    expect(Date.parse(link.expires_at) - Date.parse(link.created_at)).toBe(90 * 24 * 3600 * 1000);
  });

  it('opens the card with no bearer header: JSON by content negotiation, with the link as its own URLs', async () => {
    const res = await fetch(url(link.url_path), { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    const card = (await res.json()) as Record<string, unknown>;
    expect(card).toMatchObject({ cid: capsuleA, verdict: expect.stringMatching(/^(ACK|NACK|ASK)$/), card_url: link.url, bundle_url: `${link.url}/bundle` });
    expect((card['receipts'] as unknown[]).length).toBeGreaterThan(0);
    expect(JSON.stringify(card)).not.toContain('/v1/r/');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('serves the phone card as HTML under a strict CSP that loads nothing', async () => {
    const res = await fetch(url(link.url_path), { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(LINK_CARD_CSP);
    expect(LINK_CARD_CSP).toContain("default-src 'none'");
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    expect(html).toContain('<meta name="viewport" content="width=device-width,initial-scale=1">');
    expect(html).toContain('Download the offline bundle');
    expect(html).toMatch(/Approved|Refused|Waiting for approval/);
    expect(html).not.toMatch(/<script|src="http/);
  });

  it('downloads a bundle that verifies offline, whose card URL and QR image are the link', async () => {
    const res = await fetch(url(`${link.url_path}/bundle`));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    const bytes = new Uint8Array(await res.arrayBuffer());
    const verdict = verifyBundleOnHost(bytes);
    expect(verdict).toMatchObject({ ok: true, verdict: 'OK', capsule: capsuleA, card_url: link.url });
    const file = join(dataDir, 'link-bundle.zip');
    writeFileSync(file, bytes);
    const cli = runTessera(['bundle', 'verify', file, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, card_url: link.url });
    const png = new Map(readZip(bytes)).get('qr.png');
    expect(png).toBeDefined();
    // Decoded by Chromium's PNG decoder and jsQR, as a phone camera would read the printed image.
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const pixels = await page.evaluate(async (dataUrl) => {
        const img = new Image();
        img.src = dataUrl;
        await img.decode();
        const canvas = document.createElement('canvas');
        canvas.width = img.width;
        canvas.height = img.height;
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        return { width: img.width, height: img.height, data: Array.from(ctx.getImageData(0, 0, img.width, img.height).data) };
      }, `data:image/png;base64,${Buffer.from(png!).toString('base64')}`);
      expect(jsQR(Uint8ClampedArray.from(pixels.data), pixels.width, pixels.height)?.data).toBe(link.url);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('stores only the hash of the token, and journals the link without it', () => {
    const db = new Database(join(dataDir, 'tessera.db'), { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare('SELECT * FROM links WHERE id = ?').get(link.id) as Record<string, unknown>;
      expect(row['token_sha256']).toEqual(createHash('sha256').update(link.token).digest());
      expect(JSON.stringify(row)).not.toContain(link.token);
      const created = db.prepare("SELECT * FROM events WHERE topic = 'link.created'").all();
      expect(created.length).toBeGreaterThan(0);
      expect(JSON.stringify(created)).not.toContain(link.token);
    } finally {
      db.close();
    }
    // Nor anywhere in the database's files (main file and WAL).
    for (const name of readdirSync(dataDir).filter((n) => n.startsWith('tessera.db'))) {
      expect(readFileSync(join(dataDir, name)).includes(Buffer.from(link.token)), name).toBe(false);
    }
  });

  it('answers one 404 LINK_NOT_FOUND for a random, malformed, revoked or expired token', async () => {
    const random = randomBytes(32).toString('base64url');
    for (const path of [`/c/${random}`, `/c/${random}/bundle`, '/c/x', `/c/${'A'.repeat(100)}`]) {
      const res = await fetch(url(path), { headers: { accept: 'application/json' } });
      expect({ path, status: res.status, body: await res.json() }).toEqual({ path, status: 404, body: LINK_NOT_FOUND });
    }
    const extra = (await createLink(staff, { capsule: capsuleA })).body as unknown as CapsuleLink;
    expect((await fetch(url(extra.url_path))).status).toBe(200);
    // Only the operator revokes and lists.
    expect((await fetch(url(`/api/links/${extra.id}/revoke`), { method: 'POST', headers: { ...bearer(traveller), 'content-type': 'application/json' }, body: '{}' })).status).toBe(403);
    const revoked = await fetch(url(`/api/links/${extra.id}/revoke`), { method: 'POST', headers: { ...bearer(host.token), 'content-type': 'application/json' }, body: '{}' });
    expect(await revoked.json()).toMatchObject({ id: extra.id, state: 'revoked' });
    for (const path of [extra.url_path, `${extra.url_path}/bundle`]) {
      const res = await fetch(url(path), { headers: { accept: 'text/html' } });
      expect({ status: res.status, body: await res.json() }).toEqual({ status: 404, body: LINK_NOT_FOUND });
    }
    const brief = (await createLink(traveller, { capsule: capsuleA, ttl_ms: 1 })).body as unknown as CapsuleLink;
    // Expired one millisecond after it was made; wait for the device clock to pass it rather than sleeping.
    while (Date.now() <= Date.parse(brief.expires_at)) await new Promise((r) => setImmediate(r));
    const expired = await fetch(url(brief.url_path));
    expect({ status: expired.status, body: await expired.json() }).toEqual({ status: 404, body: LINK_NOT_FOUND });
    const listed = await fetch(url(`/api/links?capsule=${capsuleA}`), { headers: bearer(host.token) });
    const states = ((await listed.json()) as { links: Array<{ id: string; state: string }> }).links;
    expect(Object.fromEntries(states.map((l) => [l.id, l.state]))).toMatchObject({ [link.id]: 'active', [extra.id]: 'revoked', [brief.id]: 'expired' });
    expect(JSON.stringify(states)).not.toContain(link.token);
    expect((await fetch(url(`/api/links?capsule=${capsuleA}`), { headers: bearer(traveller) })).status).toBe(403);
    expect((await createLink(traveller, { capsule: `b3:${'0'.repeat(64)}` })).body).toMatchObject({ error: { code: 'CAPSULE_NOT_FOUND' } });
    expect((await fetch(url('/api/links'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capsule: capsuleA }) })).status).toBe(401);
  });

  it('gives nothing but its own capsule: no other route, no other capsule', async () => {
    const t = link.token;
    for (const path of [`/c/${t}/../../v1/log`, `/c/${t}/%2e%2e/%2e%2e/v1/log`, `/c/${t}/..%2f..%2fv1%2flog`, `/c/${t}/${capsuleB}`, `/c/${t}/bundle/${capsuleB}`, `/c/${t}/../../v1/r/${capsuleB}`, `/v1/r/${capsuleA}`, `/v1/r/${capsuleA}/bundle`, `/api/links?capsule=${capsuleA}`]) {
      const res = await raw(path);
      expect({ path, status: res.status }).toEqual({ path, status: expect.toSatisfy((s: number) => s === 401 || s === 404 || s === 400) });
      // Refusals only (a 404 names the path it was sent, nothing of the capsule).
      expect(res.body).toMatch(/^\{"error":\{"code":"(NOT_FOUND|UNAUTHORIZED|VALIDATION_FAILED|LINK_NOT_FOUND)"/);
    }
    const card = await (await fetch(url(`/c/${t}?cid=${capsuleB}`), { headers: { accept: 'application/json' } })).json();
    expect(card).toMatchObject({ cid: capsuleA });
    expect(JSON.stringify(card)).not.toContain(capsuleB);
    // The link's token is no bearer credential.
    expect((await fetch(url('/api/info'), { headers: bearer(t) })).status).toBe(401);
  });

  it('is created the same way from the CLI and for the window roles (the Electron window reaches POST /api/links through IPC api)', async () => {
    let out = '';
    let err = '';
    const io = { stdout: (s: string) => void (out += s), stderr: (s: string) => void (err += s), env: {} };
    expect(await runCli(['link', capsuleB, '--ttl', '30d', '--url', host.origin, '--token', host.token], io), err).toBe(0);
    const cliUrl = out.trim();
    expect(cliUrl).toMatch(new RegExp(`^${host.publicOrigin}/c/[A-Za-z0-9_-]{43}$`));
    const id = /Link (lnk_[0-9a-f]{24})/.exec(err)?.[1];
    expect(err).toContain('valid until');
    expect((await fetch(cliUrl, { headers: { accept: 'application/json' } })).status).toBe(200);
    out = '';
    expect(await runCli(['link', 'revoke', id!, '--url', host.origin, '--token', host.token], io)).toBe(0);
    expect(out).toContain(`Revoked ${id!}`);
    expect((await fetch(cliUrl)).status).toBe(404);
    err = '';
    expect(await runCli(['link', capsuleB, '--ttl', 'forever', '--url', host.origin, '--token', host.token], io)).toBe(2);
    expect(err).toContain('error CONFIG_INVALID: --ttl');
  });

  it('renders at phone width (390×844) with no horizontal scroll and text of at least 16 px', async () => {
    const browser: Browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      const errors: string[] = [];
      page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
      const requests: string[] = [];
      page.on('request', (r) => void requests.push(r.url()));
      const res = await page.goto(link.url);
      expect(res?.status()).toBe(200);
      await page.getByText('Download the offline bundle').waitFor();
      const layout = await page.evaluate(() => {
        const root = document.documentElement;
        const sizes: Array<{ text: string; px: number }> = [];
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          const text = n.textContent?.trim() ?? '';
          if (text && n.parentElement) sizes.push({ text: text.slice(0, 30), px: parseFloat(getComputedStyle(n.parentElement).fontSize) });
        }
        return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, bodyScroll: document.body.scrollWidth, sizes };
      });
      expect(layout.scrollWidth).toBeLessThanOrEqual(layout.clientWidth);
      expect(layout.bodyScroll).toBeLessThanOrEqual(layout.clientWidth);
      expect(layout.sizes.filter((s) => s.px < 16)).toEqual([]);
      expect(layout.sizes.length).toBeGreaterThan(5);
      // The style block ran under the CSP (a refused style would leave 16 px default text and a console error).
      expect(errors).toEqual([]);
      expect(await page.locator('.verdict').evaluate((el) => getComputedStyle(el).color)).toBe('rgb(255, 255, 255)');
      // Only the page itself was fetched: no sub-resource could carry the token in a Referer.
      expect(requests).toEqual([link.url]);
      await page.screenshot({ path: join(ARTIFACTS, 'link-card-390x844.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('the origin links carry', () => {
  const lan = { eth0: [{ address: '192.168.1.20', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: '00:00:00:00:00:00', cidr: '192.168.1.20/24' }], lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '255.0.0.0', mac: '00:00:00:00:00:00', cidr: '127.0.0.1/8' }] } as unknown as Parameters<typeof publicOriginFor>[0]['interfaces'];
  it('is --public-url when given, else the --host address, else the first LAN address for a wildcard host', () => {
    expect(publicOriginFor({ publicUrl: 'https://kiosk-7.example/', host: '0.0.0.0', port: 7420, interfaces: lan })).toEqual({ origin: 'https://kiosk-7.example', reachable: true });
    expect(publicOriginFor({ host: '10.0.0.5', port: 7420 })).toEqual({ origin: 'http://10.0.0.5:7420', reachable: true });
    expect(publicOriginFor({ host: '0.0.0.0', port: 7420, interfaces: lan })).toEqual({ origin: 'http://192.168.1.20:7420', reachable: true });
    expect(publicOriginFor({ host: '127.0.0.1', port: 7420 })).toEqual({ origin: 'http://127.0.0.1:7420', reachable: false });
    expect(() => publicOriginFor({ publicUrl: 'http://x/path', host: '127.0.0.1', port: 1 })).toThrow(/origin only/);
  });

  it('refuses a --public-url that is not an origin before anything starts', async () => {
    let err = '';
    const io = { stdout: () => undefined, stderr: (s: string) => void (err += s), env: {} };
    expect(await runCli(['start', '--headless', '--port', '0', '--public-url', 'http://kiosk.example/receipts', '--data', join(dataDir, 'never')], io)).toBe(2);
    expect(err).toMatch(/^error CONFIG_INVALID: The public URL "http:\/\/kiosk.example\/receipts" must be an origin only/);
  });

  it('builds link URLs on the public URL, whose host name the server then accepts in Host', async () => {
    const named = await startHost({ dataDir: tempDir('tessera-links-named-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: { TESSERA_PUBLIC_URL: 'http://kiosk-7.lan:8080' } });
    try {
      expect(named.publicOrigin).toBe('http://kiosk-7.lan:8080');
      expect(named.runtime.links.publicOrigin()).toBe('http://kiosk-7.lan:8080');
      const answer = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: named.port, path: '/healthz', headers: { host: 'kiosk-7.lan:8080' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(answer).toBe(200);
    } finally {
      await named.close();
    }
  }, 60_000);
});
