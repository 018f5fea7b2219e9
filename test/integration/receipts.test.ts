/**
 * The receipt pipeline end to end (issue 5 points 1–3, 5): a real headless host (real SQLite file, the signed
 * first-party plugins in the real sandbox, real HTTP on 127.0.0.1) running the shipped API Receipt Gateway.
 * Chains are checked offline with the pure verifier, as the bundle verifier and the renderer do.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBase64 } from '../../main/common/dsse.js';
import { readZip } from '../../main/common/zip.js';
import { RECEIPT_PAYLOAD_TYPE, verifyChain } from '../../main/common/receipt.js';
import type { ReceiptPayload } from '../../main/common/receipt.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { readPublicKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { PERMIT_PAYLOAD_TYPE } from '../../sandbox/permits.js';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { requireBuild } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;
const TENANT_TOKEN = 'acme-token-0123456789abcdef0123456789';

beforeAll(async () => {
  requireBuild();
  const dataDir = tempDir('tessera-receipts-', 'file');
  writeFileSync(join(dataDir, 'tenants.json'), JSON.stringify({ tenants: [{ id: 'acme', token_sha256: createHash('sha256').update(TENANT_TOKEN).digest('hex') }] }));
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
}, 60_000);

afterAll(async () => {
  await host?.close();
});

let counter = 0;
const principal = (tenant = 'default') => ({ id: 'svc-payments', tenant, audiences: ['gateway'], scopes: ['post:/v1/payments'] });
/** A gateway event view (seed 004 §10) with a fresh nonce. */
const eventView = (overrides: Record<string, unknown> = {}, tenant = 'default') => ({
  v: 'ai-json-nrf1/0.1.1',
  t: 'record',
  hdr: { src: 'gw-1', nonce: `nonce-${Date.now()}-${counter++}` },
  intent: { kind: 'EVAL', name: 'api-receipt' },
  ctx: { method: 'POST', path: '/v1/payments', body_cid: `b3:${'0'.repeat(63)}${counter % 10}`, request: counter },
  meta: { tenant, app: 'gw', user: 'svc', principal: principal(tenant) },
  decision: {},
  ...overrides,
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(host.origin + path, {
    method,
    headers: { authorization: `Bearer ${host.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* HTML */
  }
  return { status: res.status, body: json, text, headers: res.headers };
}

const deviceLookup = () => {
  const key = host.runtime.deviceKey;
  return (keyid: string) => (keyid === key.keyid ? { publicKeyRaw: key.publicKeyRaw } : undefined);
};
const payloads = (cid: string): ReceiptPayload[] => host.runtime.receipts.receipts(cid).map((e) => JSON.parse(new TextDecoder().decode(fromBase64(e.payload))) as ReceiptPayload);

describe('POST /v1/run (API Receipt Gateway)', () => {
  it('ACK: permit, INTENT → RESULT → DELIVERY → EXECUTION signed by the device, verified offline, shown on the card', async () => {
    const view = eventView();
    const { status, body } = await call('POST', '/v1/run', view);
    expect(status).toBe(200);
    expect(body).toMatchObject({ verdict: 'ACK', state: 'decided', repeated: false, consent: null });
    const cid = body['cid'] as string;
    expect(cid).toMatch(/^b3:[0-9a-f]{64}$/);
    expect(body['card_url']).toBe(`${host.origin}/v1/r/${cid}`);
    expect(body['bundle_url']).toBe(`${host.origin}/v1/r/${cid}/bundle`);
    expect(body['product']).toBe(host.runtime.products.get().cid);

    const chain = payloads(cid);
    expect(chain.map((r) => r.kind)).toEqual(['INTENT', 'RESULT', 'DELIVERY', 'EXECUTION']);
    expect(chain[0]!.body).toMatchObject({ intent: 'event.eval.api-receipt', nonce: view.hdr.nonce, src: 'gw-1', exp: null, slots: { method: 'POST', scopes: ['post:/v1/payments'] } });
    const result = chain[1]!.body as { decision: string; permit: { payloadType: string }; permit_id: string; policies: Array<{ plugin: string; verdict: string }> };
    expect(result.decision).toBe('ALLOW');
    expect(result.permit.payloadType).toBe(PERMIT_PAYLOAD_TYPE);
    expect(result.policies.map((p) => `${p.plugin}:${p.verdict}`)).toEqual(['policy-existence:ACK', 'policy-authorization:ACK']);
    expect(chain[2]!.body).toMatchObject({ permit_id: result.permit_id, effect: 'deliver' });
    // Write-before-effect: the permit was recorded, then used exactly once by the effect.
    expect(host.runtime.receipts.permits(cid)).toEqual([expect.objectContaining({ id: result.permit_id, state: 'effected' })]);

    const verified = verifyChain(host.runtime.receipts.receipts(cid), deviceLookup(), { capsule: cid });
    expect(verified.ok).toBe(true);
    for (const env of host.runtime.receipts.receipts(cid)) expect(env.payloadType).toBe(RECEIPT_PAYLOAD_TYPE);
    // Every receipt also went into the device log.
    for (const id of host.runtime.receipts.receiptIds(cid)) expect(host.runtime.deviceLog.indexOf(id)).toBeGreaterThanOrEqual(0);
    // The keys a verifier needs: the device's, as SPKI PEM.
    expect(host.runtime.receipts.publicKeys(cid).map((k) => readPublicKey(k.publicKeyPem).keyid)).toEqual([host.runtime.deviceKey.keyid]);
    expect(host.runtime.receipts.manifests(cid).map((m) => `${m.role}:${m.name}`)).toEqual(['product:api-receipt-gateway', 'intake:intake-event', 'policy:policy-existence', 'policy:policy-authorization']);

    const card = await call('GET', `/v1/r/${cid}`);
    expect(card.status).toBe(200);
    expect(card.body).toMatchObject({ cid, verdict: 'ACK', decision: 'ALLOW', tenant: 'default', product: { name: 'api-receipt-gateway' } });
    expect((card.body['receipts'] as Array<{ kind: string; signer: string }>).map((r) => [r.kind, r.signer])).toEqual(chain.map((r) => [r.kind, host.runtime.deviceKey.keyid]));

    const html = await call('GET', `/v1/r/${cid}`, undefined, { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toContain('text/html');
    const csp = html.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('script-src');
    expect(csp).not.toContain('unsafe-inline');
    expect(html.text).toContain('<svg');
    expect(html.text).toContain(`QR code of ${host.origin}/v1/r/${cid}`);
    expect(html.text).toContain(`${host.origin}/v1/r/${cid}/bundle`);
    expect(html.text).not.toContain('<script');
    for (const r of chain) expect(html.text).toContain(r.issued_at);
    expect(html.text).toContain(host.runtime.deviceKey.keyid);
  });

  it('the HTML card renders in Chromium under its CSP: styles applied, QR drawn, no violation, no script', async () => {
    const { body } = await call('POST', '/v1/run', eventView());
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${host.token}` } });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      const res = await page.goto(body['card_url'] as string);
      expect(res?.status()).toBe(200);
      expect(await page.locator('h1 .badge').textContent()).toBe('ACK');
      // The style block is allowed by its hash: the badge is green, not unstyled.
      expect(await page.locator('h1 .badge').evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(26, 127, 55)');
      const qr = page.locator('.qr svg');
      expect(await qr.getAttribute('aria-label')).toBe(`QR code of ${body['card_url'] as string}`);
      expect((await qr.boundingBox())!.width).toBeGreaterThan(50);
      expect(await page.locator('table').nth(1).locator('tbody tr').count()).toBe(4);
      expect(await page.locator('a[download]').getAttribute('href')).toBe(body['bundle_url']);
      expect(problems).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, 'receipt-card.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  it('NACK: evidence names what failed, no permit, no effect', async () => {
    const { status, body } = await call('POST', '/v1/run', eventView({ ctx: { method: 'DELETE', path: '/v1/accounts' }, meta: { tenant: 'default', principal: principal() } }));
    expect(status).toBe(200);
    expect(body).toMatchObject({ verdict: 'NACK', state: 'rejected' });
    const cid = body['cid'] as string;
    expect(payloads(cid).map((r) => r.kind)).toEqual(['INTENT', 'RESULT']);
    const card = await call('GET', `/v1/r/${cid}`);
    expect(card.body['decision']).toBe('DENY');
    expect(card.body['evidence']).toEqual(expect.arrayContaining([expect.objectContaining({ plugin: 'policy-authorization', verdict: 'NACK', reason: expect.stringContaining('lacks scope delete:/v1/accounts'), evidence: { missing: ['delete:/v1/accounts'] } })]));
    expect(host.runtime.receipts.permits(cid)).toEqual([]);

    const missing = await call('POST', '/v1/run', eventView({ intent: { kind: 'EVAL' } }));
    const ev = (await call('GET', `/v1/r/${missing.body['cid'] as string}`)).body['evidence'] as Array<{ plugin: string; evidence: unknown }>;
    expect(ev.find((p) => p.plugin === 'policy-existence')).toMatchObject({ verdict: 'NACK', evidence: { missing: ['intent.name'] } });

    // A plugin fault fails closed: the intake refuses a view whose intent is not an object (its input_schema).
    const fault = await call('POST', '/v1/run', eventView({ intent: 'pay' }));
    expect(fault.body).toMatchObject({ verdict: 'NACK' });
    const [intent, result] = payloads(fault.body['cid'] as string);
    expect(intent!.body).toMatchObject({ intent: null, intake: { fault: 'VALIDATION_FAILED' } });
    expect((result!.body as { policies: Array<{ plugin: string; verdict: string; reason: string }> }).policies).toEqual([
      expect.objectContaining({ plugin: 'policy-existence', verdict: 'NACK' }),
      expect.objectContaining({ plugin: 'policy-authorization', verdict: 'NACK', reason: 'not run: the intake intake-event failed' }),
    ]);
  });

  it('the same input gives the same capsule cid and the same answer, with no second chain', async () => {
    const view = eventView();
    const first = await call('POST', '/v1/run', view);
    const again = await call('POST', '/v1/run', { ...view, hdr: { src: 'gw-1', nonce: `${view.hdr.nonce}-retry`, exp: '2099-01-01T00:00:00Z' } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ cid: first.body['cid'], verdict: 'ACK', repeated: true });
    expect(payloads(first.body['cid'] as string)).toHaveLength(4);
    // Key order and NFC do not matter.
    const reordered = JSON.parse(JSON.stringify({ decision: {}, meta: view.meta, ctx: view.ctx, intent: view.intent, t: 'record', v: view.v, hdr: { nonce: `${view.hdr.nonce}-r2`, src: 'gw-1' } })) as Record<string, unknown>;
    expect((await call('POST', '/v1/run', reordered)).body['cid']).toBe(first.body['cid']);
    // Identical requests racing each other: one chain, and every other one answered and journaled as a repeat.
    const raced = eventView();
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => call('POST', '/v1/run', { ...raced, hdr: { src: 'gw-1', nonce: `${raced.hdr.nonce}-race-${i}` } })));
    const cid = answers[0]!.body['cid'] as string;
    expect(answers.map((a) => [a.status, a.body['cid']])).toEqual(answers.map(() => [200, cid]));
    expect(answers.filter((a) => a.body['repeated'] === true)).toHaveLength(11);
    expect(payloads(cid)).toHaveLength(4);
    const repeats = host.runtime.journal.query({ topic: 'receipt.repeated', limit: 1000 }).events.filter((e) => (e.payload as { capsule: string }).capsule === cid);
    expect(repeats).toHaveLength(11);
  });

  it('replay: the same (src, nonce) is refused with 409 REPLAY_BLOCKED, counted and journaled', async () => {
    const view = eventView();
    expect((await call('POST', '/v1/run', view)).status).toBe(200);
    const before = host.runtime.metrics.replayBlocked.get();
    const replay = await call('POST', '/v1/run', { ...view, ctx: { ...view.ctx, other: true } });
    expect(replay).toMatchObject({ status: 409, body: { error: { code: 'REPLAY_BLOCKED' } } });
    expect(host.runtime.metrics.replayBlocked.get()).toBe(before + 1);
    const events = host.runtime.journal.query({ topic: 'receipt.replay_blocked', order: 'desc', limit: 1 }).events;
    expect(events[0]?.payload).toMatchObject({ src: 'gw-1', nonce: view.hdr.nonce });
    // Another sender may use the same nonce.
    expect((await call('POST', '/v1/run', { ...view, hdr: { ...view.hdr, src: 'gw-2' } })).status).toBe(200);
  });

  it('exp: an expired request is refused with REQUEST_EXPIRED and journaled; a live one records exp in its INTENT', async () => {
    const view = eventView();
    const expired = await call('POST', '/v1/run', { ...view, hdr: { ...view.hdr, exp: '2020-01-01T00:00:00Z' } });
    expect(expired).toMatchObject({ status: 400, body: { error: { code: 'REQUEST_EXPIRED' } } });
    const journaled = host.runtime.journal.query({ topic: 'receipt.expired', order: 'desc', limit: 1 }).events[0]?.payload;
    expect(journaled).toMatchObject({ nonce: view.hdr.nonce, exp: '2020-01-01T00:00:00.000Z' });
    const live = await call('POST', '/v1/run', { ...view, hdr: { ...view.hdr, exp: '2099-12-31T23:59:59+01:00' } });
    expect(live.status).toBe(200);
    expect(payloads(live.body['cid'] as string)[0]!.body).toMatchObject({ exp: '2099-12-31T22:59:59.000Z' });
  });

  it('bad inputs answer with stable codes and write nothing', async () => {
    const count = () => host.runtime.store.db.prepare('SELECT count(*) AS n FROM receipt_chain').get() as { n: number };
    const before = count().n;
    const cases: Array<[unknown, number, string]> = [
      ['{"hdr":', 400, 'VIEW_INVALID'],
      [{ intent: {} }, 400, 'VIEW_INVALID'],
      [{ ...eventView(), hdr: { src: 'gw', nonce: 'x' } }, 400, 'VIEW_INVALID'],
      [`{"hdr":{"src":"gw","nonce":"nonce-big-1"},"n":123456789012345678901}`, 400, 'VIEW_INVALID'],
      [`{"hdr":{"src":"gw","nonce":"nonce-deep-1"},"d":${'['.repeat(64)}${']'.repeat(64)}}`, 400, 'VIEW_TOO_DEEP'],
      [{ ...eventView(), pad: 'x'.repeat(70_000) }, 413, 'VIEW_TOO_LARGE'],
    ];
    for (const [body, status, code] of cases) {
      const res = await call('POST', '/v1/run', body);
      expect(res, JSON.stringify(body).slice(0, 80)).toMatchObject({ status, body: { error: { code } } });
      // A refused view leaves a keep-alive connection open (a body over the read limit aside).
      if (status === 400) expect(res.headers.get('connection'), JSON.stringify(body).slice(0, 80)).not.toBe('close');
    }
    expect(await call('POST', '/v1/run?product=nope', eventView())).toMatchObject({ status: 404, body: { error: { code: 'PRODUCT_NOT_FOUND' } } });
    const textBody = await fetch(`${host.origin}/v1/run`, { method: 'POST', headers: { authorization: `Bearer ${host.token}`, 'content-type': 'text/plain' }, body: 'hello' });
    expect(textBody.status).toBe(415);
    const noAuth = await fetch(`${host.origin}/v1/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(eventView()) });
    expect(noAuth.status).toBe(401);
    expect(await call('GET', `/v1/r/b3:${'a'.repeat(64)}`)).toMatchObject({ status: 404, body: { error: { code: 'CAPSULE_NOT_FOUND' } } });
    expect(await call('GET', '/v1/r/not-a-cid')).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(count().n).toBe(before);
  });

  it('a failure while writing leaves nothing half-written, and concurrent requests committed with it are unaffected', async () => {
    const view = eventView();
    let armed = true;
    // A write that fails after INTENT, RESULT, DELIVERY and the permit are in: the receipts' listener throws.
    const trap = host.runtime.receipts.onReceipts((written) => {
      const delivery = written.find((r) => r.payload.kind === 'DELIVERY');
      if (armed && delivery) {
        const intent = host.runtime.receipts.chain(delivery.payload.capsule)[0]?.payload.body as { nonce?: string } | undefined;
        if (intent?.nonce === view.hdr.nonce) throw new Error('simulated disk failure');
      }
    });
    try {
      const others = Array.from({ length: 8 }, () => eventView());
      const [failed, ...ok] = await Promise.all([call('POST', '/v1/run', view), ...others.map((v) => call('POST', '/v1/run', v))]);
      expect(failed).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL' } } });
      for (const r of ok) expect(r.body).toMatchObject({ verdict: 'ACK', repeated: false });
      for (const r of ok) expect(verifyChain(host.runtime.receipts.receipts(r.body['cid'] as string), deviceLookup()).ok).toBe(true);
      const db = host.runtime.store.db;
      expect(db.prepare('SELECT count(*) AS n FROM receipt_nonces WHERE nonce = ?').get(view.hdr.nonce)).toEqual({ n: 0 });
      const decided = host.runtime.journal.query({ topic: 'receipt.decided', limit: 1000 }).events.map((e) => (e.payload as { capsule: string }).capsule);
      expect(decided).toEqual(expect.arrayContaining(ok.map((r) => r.body['cid'])));
      expect(db.prepare("SELECT count(*) AS n FROM receipt_capsule_bodies WHERE json_extract(capsule, '$.view.ctx.request') = ?").get(view.ctx.request)).toEqual({ n: 0 });
      expect(db.prepare("SELECT count(*) AS n FROM receipt_permits WHERE capsule NOT IN (SELECT cid FROM receipt_capsules)").get()).toEqual({ n: 0 });
    } finally {
      armed = false;
      trap.dispose();
    }
    // Nothing of the failed attempt remains, not even its nonce: the same request now goes through.
    expect((await call('POST', '/v1/run', view)).body).toMatchObject({ verdict: 'ACK', repeated: false });
  });

  it('enrich and metrics: a decided capsule is counted, timed per module, and called back to webhook subscribers', async () => {
    const got: Array<{ event: string; data: { cid: string; verdict?: string } }> = [];
    const receiver = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        got.push(JSON.parse(text) as (typeof got)[number]);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const sub = host.runtime.webhooks.subscribe({ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, events: ['receipt.*'] });
    try {
      const m = host.runtime.metrics;
      const before = { ack: m.ack.get(), nack: m.nack.get(), permits: m.permitIssued.get(), runs: m.runDuration.snapshot().count };
      const ack = await call('POST', '/v1/run', eventView());
      const nack = await call('POST', '/v1/run', eventView({ ctx: { method: 'PUT', path: '/v1/other' } }));
      expect({ ack: m.ack.get(), nack: m.nack.get(), permits: m.permitIssued.get(), runs: m.runDuration.snapshot().count }).toEqual({ ack: before.ack + 1, nack: before.nack + 1, permits: before.permits + 1, runs: before.runs + 2 });
      for (const module of ['intake-event@1.0.0', 'policy-existence@1.0.0', 'policy-authorization@1.0.0', 'permit', 'receipts', 'verify']) expect(m.moduleDuration.snapshot({ module }).count).toBeGreaterThan(0);
      // Until the three callbacks arrived; the deadline is a ceiling for a loaded machine, not a duration.
      for (const deadline = Date.now() + 20_000; got.length < 3 && Date.now() < deadline; ) {
        await host.runtime.webhooks.deliverDue();
        await new Promise((r) => setTimeout(r, 20));
      }
      const seen = got.map((g) => `${g.event}:${g.data.cid}:${g.data.verdict ?? '-'}`).sort();
      expect(seen).toEqual([`receipt.decided:${ack.body['cid'] as string}:ACK`, `receipt.decided:${nack.body['cid'] as string}:NACK`, `receipt.delivered:${ack.body['cid'] as string}:-`].sort());
    } finally {
      host.runtime.webhooks.unsubscribe(sub.id);
      receiver.close();
    }
  });

  it('tenants: a tenant token runs as its tenant (another tenant is a different capsule), and reaches /v1 only', async () => {
    const asAcme = { authorization: `Bearer ${TENANT_TOKEN}` };
    const view = eventView({}, 'acme');
    const acme = await call('POST', '/v1/run', view, asAcme);
    expect(acme.body).toMatchObject({ verdict: 'ACK' });
    expect(payloads(acme.body['cid'] as string)[0]!.subject).toBe('tenant:acme');
    // The default tenant sending acme's principal: policy-authorization refuses the cross-tenant claim.
    const cross = await call('POST', '/v1/run', { ...view, hdr: { ...view.hdr, nonce: `${view.hdr.nonce}-x` } });
    expect(cross.body).toMatchObject({ verdict: 'NACK' });
    expect(cross.body['cid']).not.toBe(acme.body['cid']);
    // A tenant token is a tenant's: the device's own routes answer 403, not "invalid token".
    const info = await fetch(`${host.origin}/api/info`, { headers: asAcme });
    expect(info.status).toBe(403);
    expect(((await info.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    // ...and it sees its own capsules only: another tenant's card and bundle are not found, and so are not told apart
    // from capsules that do not exist; the device token sees both.
    const own = await call('GET', `/v1/r/${acme.body['cid'] as string}`, undefined, asAcme);
    expect(own.status).toBe(200);
    for (const path of [`/v1/r/${cross.body['cid'] as string}`, `/v1/r/${cross.body['cid'] as string}/bundle`]) {
      const other = await call('GET', path, undefined, asAcme);
      expect(other.status).toBe(404);
      expect(other.body).toMatchObject({ error: { code: 'CAPSULE_NOT_FOUND' } });
      expect((await call('GET', path)).status).toBe(200);
    }
    // Lowercase "bearer" is the same scheme (RFC 9110).
    expect((await call('GET', `/v1/r/${acme.body['cid'] as string}`, undefined, { authorization: `bearer ${TENANT_TOKEN}` })).status).toBe(200);
  });

  it('signs card and bundle URLs with the address the client reached, never the Host header it sent (localhost:666 here; a foreign name is refused outright, see access.test.ts)', async () => {
    // node:http, since fetch does not let a caller choose the Host header.
    const spoofed = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; bytes: Buffer }>((resolve, reject) => {
        const req = httpRequest(host.origin + path, { method, headers: { host: 'localhost:666', authorization: `Bearer ${host.token}`, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const run = JSON.parse((await spoofed('POST', '/v1/run', JSON.stringify(eventView()))).bytes.toString('utf8')) as { cid: string; card_url: string };
    expect(run.card_url).toBe(`${host.origin}/v1/r/${run.cid}`);
    const card = JSON.parse((await spoofed('GET', `/v1/r/${run.cid}`)).bytes.toString('utf8')) as { bundle_url: string };
    expect(card.bundle_url).toBe(`${host.origin}/v1/r/${run.cid}/bundle`);
    const bundle = await spoofed('GET', `/v1/r/${run.cid}/bundle`);
    const index = JSON.parse(new TextDecoder().decode(readZip(new Uint8Array(bundle.bytes)).get('index.json'))) as { card_url: string };
    expect(index.card_url).toBe(`${host.origin}/v1/r/${run.cid}`);
  });

  it('GET /.well-known/product.json lists the loaded product with its cid and pinned plugins', async () => {
    const res = await fetch(`${host.origin}/.well-known/product.json`);
    const body = (await res.json()) as { products: Array<Record<string, unknown>>; routes: Array<{ url: string }> };
    expect(body.products).toEqual([expect.objectContaining({ name: 'api-receipt-gateway', cid: host.runtime.products.get().cid, plugins: expect.objectContaining({ 'intake-event': expect.objectContaining({ version: '1.0.0' }) }) })]);
    expect(body.routes.map((r) => r.url)).toEqual(expect.arrayContaining(['/v1/run', '/v1/r/:cid', '/v1/consents']));
    const openapi = (await (await fetch(`${host.origin}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/v1/run', '/v1/r/{cid}', '/v1/consents', '/v1/consents/{id}/approve', '/v1/consents/{id}/reject']));
    expect(openapi.paths['/v1/run']!['post']).toMatchObject({ requestBody: expect.anything(), responses: expect.objectContaining({ 200: expect.anything(), 409: expect.anything() }) });
  });
});
