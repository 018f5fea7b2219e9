/**
 * Offline bundles and the device log through a real running Tessera (`tessera start --headless`: real SQLite
 * file, the signed first-party plugins in the real sandbox, HTTP on 127.0.0.1): a capsule decided by
 * POST /v1/run, its bundle downloaded, verified by the CLI, by POST /v1/verify and by the renderer's offline
 * page in real Chromium — the same verdict three ways, for the valid bundle and for tampered bytes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawKeyFromPem, verifyBundle, verifyTreeHead } from '../../main/common/bundle.js';
import type { BundleVerdict } from '../../main/common/bundle.js';
import { toBase64 } from '../../main/common/dsse.js';
import { verifyBundleOnHost } from '../../main/runtime/receipts/bundle.js';
import { hashFromHex, inclusionProofProblem, verifyConsistency } from '../../main/common/merkle.js';
import { readZip, writeZip } from '../../main/common/zip.js';
import { flipInside } from '../helpers/bundle-fixture.js';
import { launchChromium } from '../helpers/browser.js';
import { requireBuild, runTessera, startTessera } from '../helpers/cli.js';
import type { StartedTessera } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

let tessera: StartedTessera;
let token: string;
let dir: string;
let browser: Browser;
let page: Page;
let cid: string;
let bundle: Uint8Array;

async function call(method: 'GET' | 'POST', path: string, body?: BodyInit, headers: Record<string, string> = {}) {
  const res = await fetch(tessera.origin + path, { method, headers: { authorization: `Bearer ${token}`, ...headers }, ...(body === undefined ? {} : { body }) });
  const bytes = new Uint8Array(await res.arrayBuffer());
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch {
    /* binary */
  }
  return { status: res.status, json, bytes, headers: res.headers };
}

beforeAll(async () => {
  requireBuild();
  dir = tempDir('tessera-bundle-api-', 'file');
  tessera = await startTessera(join(dir, 'data'));
  token = decodeURIComponent(/#token=([^&\s]+)/.exec(tessera.uiUrl)![1]!);
  const view = {
    v: 'ai-json-nrf1/0.1.1',
    t: 'record',
    hdr: { src: 'gw-1', nonce: `bundle-${Date.now()}` },
    intent: { kind: 'EVAL', name: 'api-receipt' },
    ctx: { method: 'POST', path: '/v1/payments', body_cid: `b3:${'1'.repeat(64)}` },
    meta: { tenant: 'default', app: 'gw', user: 'svc', principal: { id: 'svc-payments', tenant: 'default', audiences: ['gateway'], scopes: ['post:/v1/payments'] } },
    decision: {},
  };
  const run = await call('POST', '/v1/run', JSON.stringify(view), { 'content-type': 'application/json' });
  expect(run.status, JSON.stringify(run.json)).toBe(200);
  cid = run.json['cid'] as string;
  const download = await call('GET', new URL(run.json['bundle_url'] as string).pathname);
  expect(download.status).toBe(200);
  bundle = download.bytes;
  expect(download.headers.get('content-type')).toBe('application/zip');
  expect(download.headers.get('content-disposition')).toBe(`attachment; filename="tessera-${cid.slice(3, 19)}.zip"`);
  browser = await launchChromium();
  page = await browser.newPage();
  await page.goto(tessera.uiUrl);
  await page.locator('nav a[data-area="verify"]').waitFor();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (tessera) {
    tessera.child.kill('SIGINT');
    await tessera.exited;
  }
}, 30_000);

/** The verdict of the CLI (`--json`), with its exit code and stderr. */
function cliVerify(bytes: Uint8Array, name: string) {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  const r = runTessera(['bundle', 'verify', file, '--json']);
  return { code: r.code, verdict: JSON.parse(r.stdout) as BundleVerdict, stderr: r.stderr, human: runTessera(['bundle', 'verify', file]) };
}

/** The verdict of the renderer's Verify page, computed in Chromium with no request made while verifying. */
let pageRuns = 0;
async function pageVerify(bytes: Uint8Array, label: string): Promise<{ ok: string; code: string | null; where: string | null; capsule: string; requests: string[] }> {
  const name = `${label}-${++pageRuns}.zip`;
  await page.locator('nav a[data-area="verify"]').click();
  await page.getByTestId('verify-file').waitFor({ state: 'attached' });
  const requests: string[] = [];
  const record = (r: { url(): string }) => requests.push(r.url());
  page.on('request', record);
  await page.getByTestId('verify-file').setInputFiles({ name, mimeType: 'application/zip', buffer: Buffer.from(bytes) });
  await page.getByTestId('verify-result').filter({ hasText: name }).waitFor();
  page.off('request', record);
  const error = page.getByTestId('verify-error');
  const hasError = (await error.count()) > 0;
  return {
    ok: (await page.getByTestId('verify-result').getAttribute('data-ok'))!,
    code: hasError ? await error.getAttribute('data-code') : null,
    where: hasError ? await error.getAttribute('data-where') : null,
    capsule: (await page.getByTestId('verify-capsule').textContent())!,
    requests,
  };
}

describe('offline bundle of a capsule decided by POST /v1/run', () => {
  it('verifies: the capsule, its ACK, its receipts and the device-log proofs', () => {
    const t0 = performance.now();
    const v = verifyBundle(bundle);
    const pureMs = performance.now() - t0;
    const t1 = performance.now();
    const host = verifyBundleOnHost(bundle);
    const hostMs = performance.now() - t1;
    console.log(`bundle of ${v.receipts} receipts: ${bundle.length} bytes; verified in ${pureMs.toFixed(1)} ms (pure JS, first call) and ${hostMs.toFixed(1)} ms (node:crypto)`);
    expect(v.error).toBeUndefined();
    expect(v).toMatchObject({ ok: true, verdict: 'OK', capsule: cid, decision: 'ACK' });
    expect(host).toEqual(v);
    expect(v.receipts).toBeGreaterThanOrEqual(2);
  });

  it('documents the bundle, verify and log routes in /openapi.json', async () => {
    const doc = (await (await fetch(`${tessera.origin}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/r/{cid}/bundle', '/v1/verify', '/v1/log/root', '/v1/log/inclusion', '/v1/log/consistency']));
    expect(Object.keys(doc.paths['/v1/verify']!['post'] as object)).toContain('requestBody');
  });

  it('gives the same verdict through the CLI, POST /v1/verify (ZIP and base64 JSON) and the renderer, with no network in the page', async () => {
    const cli = cliVerify(bundle, 'valid.zip');
    expect(cli.code).toBe(0);
    expect(cli.human.code).toBe(0);
    expect(cli.human.stdout).toContain(`valid: capsule ${cid} (ACK)`);
    const zip = await call('POST', '/v1/verify', Buffer.from(bundle), { 'content-type': 'application/zip' });
    const json = await call('POST', '/v1/verify', JSON.stringify({ bundle: toBase64(bundle) }), { 'content-type': 'application/json' });
    expect(zip.status).toBe(200);
    expect(zip.json).toEqual(cli.verdict);
    expect(json.json).toEqual(cli.verdict);
    const shown = await pageVerify(bundle, 'valid.zip');
    expect(shown).toMatchObject({ ok: 'true', code: null, capsule: cid });
    expect(shown.requests).toEqual([]);
  }, 60_000);

  for (const [label, tamper, code, where] of [
    ['a flipped byte inside the second receipt', () => flipInside(bundle, 'receipts/002.dsse.json', 40, 0x20), 'BUNDLE_ZIP_INVALID', 'receipts/002.dsse.json'],
    [
      'a receipt rewritten and the container rebuilt around it',
      () => {
        const files = readZip(bundle);
        files.set('receipts/001.dsse.json', new TextEncoder().encode(new TextDecoder().decode(files.get('receipts/001.dsse.json')).replace('"keyid"', '"keyid" ')));
        return writeZip(files);
      },
      'BUNDLE_HASH_MISMATCH',
      'receipts/001.dsse.json',
    ],
  ] as const) {
    it(`fails the same way three ways for ${label}, naming ${where}`, async () => {
      const bad = tamper();
      const cli = cliVerify(bad, 'tampered.zip');
      expect(cli.code).toBe(1);
      expect(cli.verdict.error).toMatchObject({ code, where });
      expect(cli.human.stderr).toContain(`invalid: ${code} in ${where}: `);
      const post = await call('POST', '/v1/verify', Buffer.from(bad), { 'content-type': 'application/zip' });
      expect(post.status).toBe(200);
      expect(post.json).toEqual(cli.verdict);
      const shown = await pageVerify(bad, 'tampered.zip');
      expect(shown).toMatchObject({ ok: 'false', code, where });
      expect(shown.requests).toEqual([]);
    }, 60_000);
  }
});

describe('bundle and verify routes: bad requests', () => {
  it('answers 404 CAPSULE_NOT_FOUND for an unknown capsule and 400 for a malformed cid', async () => {
    expect((await call('GET', `/v1/r/b3:${'0'.repeat(64)}/bundle`)).json).toMatchObject({ error: { code: 'CAPSULE_NOT_FOUND' } });
    expect((await call('GET', '/v1/r/b3:XYZ/bundle')).status).toBe(400);
  });

  it('refuses bodies that are not a bundle request, and requests without the token', async () => {
    const badBase64 = await call('POST', '/v1/verify', JSON.stringify({ bundle: 'not base64!' }), { 'content-type': 'application/json' });
    expect(badBase64.status).toBe(400);
    expect(badBase64.json).toMatchObject({ error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('base64') } });
    expect((await call('POST', '/v1/verify', JSON.stringify({ bundle: toBase64(bundle), extra: 1 }), { 'content-type': 'application/json' })).status).toBe(400);
    expect((await call('POST', '/v1/verify', 'hello', { 'content-type': 'text/plain' })).json).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
    const empty = await call('POST', '/v1/verify', Buffer.alloc(0), { 'content-type': 'application/zip' });
    expect(empty.status).toBe(400);
    expect(empty.json).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    for (const wrong of [123, true, ['x']]) {
      const typed = await call('POST', '/v1/verify', JSON.stringify({ bundle: wrong }), { 'content-type': 'application/json' });
      expect(typed.status, JSON.stringify(wrong)).toBe(400);
      expect(typed.json).toMatchObject({ error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('must be string') } });
    }
    const garbage = await call('POST', '/v1/verify', Buffer.from('PK not really'), { 'content-type': 'application/zip' });
    expect(garbage.status).toBe(200);
    expect(garbage.json).toMatchObject({ ok: false, error: { code: 'BUNDLE_ZIP_INVALID', where: 'zip' } });
    const anonymous = await fetch(`${tessera.origin}/v1/verify`, { method: 'POST', headers: { 'content-type': 'application/zip' }, body: Buffer.from(bundle) });
    expect(anonymous.status).toBe(401);
  });

  it('the CLI: --help, a missing argument (exit 2), a missing file and a folder (exit 1, with a verdict)', () => {
    expect(runTessera(['bundle', 'verify', '--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining('Usage: tessera bundle verify FILE [--device KEYID] [--json]') });
    expect(runTessera(['bundle', 'verify']).code).toBe(2);
    const missing = runTessera(['bundle', 'verify', join(dir, 'nope.zip')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`invalid: VALIDATION_FAILED in ${join(dir, 'nope.zip')}: ${join(dir, 'nope.zip')}: no such file.`);
    // --device: the bundle must also be this device's.
    const file = join(dir, 'device-check.zip');
    writeFileSync(file, bundle);
    const device = (JSON.parse(runTessera(['bundle', 'verify', file, '--json']).stdout) as BundleVerdict).device!;
    expect(runTessera(['bundle', 'verify', file, '--device', device]).code).toBe(0);
    const other = runTessera(['bundle', 'verify', file, '--device', `b3:${'0'.repeat(64)}`, '--json']);
    expect(other.code).toBe(1);
    expect(JSON.parse(other.stdout)).toMatchObject({ ok: false, device, error: { code: 'KEY_UNKNOWN', where: 'keys/keys.json' } });
    expect(runTessera(['bundle', 'verify', file, '--device', 'kiosk-7']).code).toBe(2);
    // --json prints a verdict for a file that cannot be read too, so a script always has one to parse.
    const json = runTessera(['bundle', 'verify', dir, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, verdict: 'INVALID', checks: [], error: { code: 'VALIDATION_FAILED', where: dir } });
  });
});

describe('device log routes', () => {
  it('serve a signed head, inclusion proofs of the capsule receipts and consistency proofs that verify', async () => {
    const files = Object.fromEntries(readZip(bundle));
    const keys = JSON.parse(new TextDecoder().decode(files['keys/keys.json'])) as Array<{ keyid: string; file: string; role: string }>;
    const device = keys.find((k) => k.role === 'device')!;
    const raw = rawKeyFromPem(new TextDecoder().decode(files[device.file]))!;

    const root = await call('GET', '/v1/log/root');
    expect(root.status).toBe(200);
    const head = verifyTreeHead(root.json['envelope'] as never, device.keyid, raw);
    expect(typeof head).toBe('object');
    expect(head).toMatchObject({ size: root.json['size'], root: root.json['root'], log: device.keyid });

    const receiptIds = (JSON.parse(new TextDecoder().decode(files['log/inclusion.json'])) as { proofs: Array<{ receipt: string }> }).proofs.map((p) => p.receipt);
    for (const id of receiptIds) {
      const proof = await call('GET', `/v1/log/inclusion?cid=${id}`);
      expect(proof.status).toBe(200);
      expect(inclusionProofProblem(proof.json, { size: root.json['size'] as number, root: root.json['root'] as string })).toBeNull();
    }
    const size = root.json['size'] as number;
    const first = await call('GET', '/v1/log/root?size=1');
    const consistency = await call('GET', `/v1/log/consistency?from=1&to=${size}`);
    expect(consistency.status).toBe(200);
    const hex = (h: unknown) => hashFromHex(h)!;
    expect(verifyConsistency(1, size, (consistency.json['proof'] as string[]).map(hex), hex(first.json['root']), hex(root.json['root']))).toBe(true);
  });

  it('refuse unknown receipts, sizes beyond the log and malformed queries with stable codes', async () => {
    const size = (await call('GET', '/v1/log/root')).json['size'] as number;
    expect((await call('GET', `/v1/log/inclusion?cid=b3:${'0'.repeat(64)}`)).json).toMatchObject({ error: { code: 'LOG_NOT_FOUND' } });
    expect((await call('GET', `/v1/log/root?size=${size + 1}`)).json).toMatchObject({ error: { code: 'LOG_RANGE_INVALID' } });
    expect((await call('GET', `/v1/log/consistency?from=2&to=1`)).json).toMatchObject({ error: { code: 'LOG_RANGE_INVALID' } });
    expect((await call('GET', '/v1/log/consistency')).status).toBe(400);
    expect((await call('GET', '/v1/log/inclusion?cid=nope')).json).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    // Any size outside the log is the log's own answer, with the log's size in the details.
    expect((await call('GET', '/v1/log/root?size=-1')).json).toMatchObject({ error: { code: 'LOG_RANGE_INVALID', details: { log_size: size } } });
    // Decimal digits only: a number coercion would read 0x1 and 1e0 as 1.
    for (const odd of ['0x1', '1e0', '+1', '1.0', '01']) expect((await call('GET', `/v1/log/root?size=${encodeURIComponent(odd)}`)).json, odd).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
  });
});
