/**
 * Webhooks end to end (issue 5 point 8): a real runtime with a real SQLite file, the real HTTP host on
 * 127.0.0.1, and a real receiver (node:http) that records what it gets. Signatures are checked with
 * node:crypto and with `openssl pkeyutl`, exactly as the README tells a receiver to.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { cidOf } from '../../main/common/cid.js';
import { pae } from '../../main/common/dsse.js';
import { createHttpServer } from '../../main/host/http/server.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { DeliveryOptions } from '../../main/runtime/webhooks/index.js';
import { backoffDelay, parseRetryAfter } from '../../main/runtime/webhooks/delivery.js';
import { callbackKey } from '../../main/runtime/webhooks/signature.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'test-token-webhooks-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Host {
  runtime: Runtime;
  server: FastifyInstance;
  origin: string;
  close(): Promise<void>;
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});

/** The real runtime and HTTP host, with delivery settings and (optionally) a clock the test controls. */
async function startHost(dataDir: string, delivery: Partial<DeliveryOptions>, clock?: () => number): Promise<Host> {
  const runtime = await createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger(), webhookDelivery: delivery, ...(clock ? { clock } : {}) });
  const server = await createHttpServer({ runtime, token: TOKEN, logger: createMemoryLogger() });
  runtime.resources.add({ dispose: () => server.close() });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.server.address() as AddressInfo;
  let closed = false;
  const host = {
    runtime,
    server,
    origin: `http://127.0.0.1:${port}`,
    close: async () => {
      if (closed) return;
      closed = true;
      await runtime.close();
    },
  };
  cleanup.push(host.close);
  return host;
}

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * A receiver that answers each request with the next behaviour (a status, "hang", or a status with a Retry-After
 * value), then the last one forever.
 */
async function startReceiver(behaviours: Array<number | 'hang' | { status: number; retryAfter: string }>): Promise<{ url: string; got: Received[]; stored: Map<string, string>; server: Server }> {
  const got: Received[] = [];
  const stored = new Map<string, string>();
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      got.push({ headers: req.headers, body, at: performance.now() });
      const behaviour = behaviours[Math.min(got.length - 1, behaviours.length - 1)]!;
      if (behaviour === 'hang') {
        hanging.push(res);
        return;
      }
      if (typeof behaviour === 'object') {
        res.writeHead(behaviour.status, { 'retry-after': behaviour.retryAfter }).end();
        return;
      }
      // A receiver that dedupes: the first body per Idempotency-Key is stored, repeats are acknowledged.
      if (behaviour >= 200 && behaviour < 300) {
        const key = String(req.headers['idempotency-key']);
        if (!stored.has(key)) stored.set(key, body);
      }
      res.writeHead(behaviour, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        hanging.forEach((r) => r.destroy());
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks?id=1`, got, stored, server };
}

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function api(host: Host, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(host.origin + path, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const FAST: Partial<DeliveryOptions> = { backoffBaseMs: 20, jitter: 0, pollMs: 20, timeoutMs: 2_000 };

function record(n: number) {
  const data = { verdict: 'ACK', n };
  return { cid: cidOf(data), ...data };
}

describe('webhook delivery', () => {
  it('delivers a callback signed by the device key that node:crypto and openssl both verify', async () => {
    const dir = tempDir();
    const host = await startHost(dir, FAST);
    const receiver = await startReceiver([200]);
    const created = await api(host, 'POST', '/v1/webhooks', { url: receiver.url, events: ['receipt.*'], description: 'test receiver' });
    expect(created.status).toBe(201);
    const webhook = created.body['webhook'] as { id: string; url: string; events: string[] };
    const signing = created.body['signing_key'] as { keyid: string; public_key_pem: string; payload_type: string };
    expect(webhook).toMatchObject({ id: expect.stringMatching(/^whs_/), url: receiver.url, events: ['receipt.*'] });
    expect(signing.keyid).toBe(host.runtime.deviceKey.keyid);

    const rec = record(1);
    expect(host.runtime.webhooks.notify('consent.opened', rec)).toEqual([]); // pattern does not match
    const ids = host.runtime.webhooks.notify('receipt.created', rec);
    expect(ids).toHaveLength(1);
    expect(host.runtime.webhooks.notify('receipt.created', { ...rec })).toEqual([]); // same event, same data: enqueued once
    await until('the callback', () => receiver.got.length === 1);
    const { headers, body } = receiver.got[0]!;

    const key = callbackKey('receipt.created', rec);
    expect(headers['idempotency-key']).toBe(key);
    expect(key).toBe(cidOf({ event: 'receipt.created', data: JSON.parse(body).data })); // a receiver can recompute it from the body
    expect(headers['content-type']).toBe('application/json');
    expect(headers['tessera-event']).toBe('receipt.created');
    expect(headers['tessera-delivery']).toBe(ids[0]);
    expect(JSON.parse(body)).toEqual({ type: 'tessera.webhook.v1', key, event: 'receipt.created', cid: rec.cid, subscription: webhook.id, delivery: ids[0], created_at: expect.any(String), data: rec });

    const sigHeader = String(headers['tessera-signature']);
    const m = /^t=(\d+), keyid=(b3:[0-9a-f]{64}), sig=([A-Za-z0-9+/=]+)$/.exec(sigHeader);
    expect(m, sigHeader).not.toBeNull();
    const [, t, keyid, sig] = m!;
    expect(keyid).toBe(signing.keyid);
    expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(60);

    // node:crypto, from the published PEM and the DSSE PAE of the exact body bytes.
    const message = pae(`${signing.payload_type};t=${t}`, Buffer.from(body, 'utf8'));
    const publicKey = createPublicKey(signing.public_key_pem);
    expect(cryptoVerify(null, message, publicKey, Buffer.from(sig!, 'base64'))).toBe(true);
    expect(cryptoVerify(null, pae(`${signing.payload_type};t=${Number(t) + 1}`, Buffer.from(body)), publicKey, Buffer.from(sig!, 'base64'))).toBe(false);

    // openssl, with the message built in the shell as the README shows.
    const work = tempDir();
    writeFileSync(join(work, 'device.pub'), signing.public_key_pem);
    writeFileSync(join(work, 'body.json'), body);
    writeFileSync(join(work, 'sig.b64'), sig!);
    const script = [
      'set -e',
      `T=${t}`,
      `TYPE="${signing.payload_type};t=$T"`,
      'printf "DSSEv1 %d %s %d " "${#TYPE}" "$TYPE" "$(wc -c < body.json)" > msg.bin',
      'cat body.json >> msg.bin',
      'base64 -d sig.b64 > sig.bin',
      'openssl pkeyutl -verify -pubin -inkey device.pub -rawin -in msg.bin -sigfile sig.bin',
    ].join('\n');
    expect(execFileSync('bash', ['-c', script], { cwd: work, encoding: 'utf8' })).toContain('Signature Verified Successfully');
    writeFileSync(join(work, 'body.json'), body.replace('"ACK"', '"NAK"'));
    const tampered = spawnSync('bash', ['-c', script], { cwd: work, encoding: 'utf8' });
    expect(tampered.status).not.toBe(0);
    expect(tampered.stdout + tampered.stderr).toMatch(/Signature Verification Failure/);

    await until('the delivery to be recorded', () => host.runtime.webhooks.deliveries(webhook.id)[0]?.state === 'delivered');
    const log = await api(host, 'GET', `/v1/webhooks/${webhook.id}/deliveries`);
    expect(log.status).toBe(200);
    expect(log.body['deliveries']).toEqual([
      expect.objectContaining({ id: ids[0], cid: rec.cid, key, state: 'delivered', attempts: 1, last_status: 200, next_attempt_at: null, attempt_log: [expect.objectContaining({ attempt: 1, status: 200, outcome: 'success', error: null })] }),
    ]);
    expect(host.runtime.metrics.webhook.attempts.get()).toBe(1);
    expect(host.runtime.metrics.webhook.success.get()).toBe(1);

    // Changed data about the same subject (ASK, then ALLOW) is another callback with its own key.
    expect(host.runtime.webhooks.notify('receipt.created', { ...rec, verdict: 'ALLOW' })).toHaveLength(1);
    await until('the second callback', () => receiver.got.length === 2);
    expect(receiver.got[1]!.headers['idempotency-key']).toBe(callbackKey('receipt.created', { ...rec, verdict: 'ALLOW' }));
    expect(receiver.stored.size).toBe(2);
  });

  it('commits outbox rows with the caller transaction and drops them when it rolls back', async () => {
    const host = await startHost(tempDir(), FAST);
    const receiver = await startReceiver([200]);
    const sub = host.runtime.webhooks.subscribe({ url: receiver.url });
    const db = host.runtime.store.db;
    expect(() =>
      db.transaction(() => {
        expect(host.runtime.webhooks.notify('receipt.created', record(10))).toHaveLength(1);
        throw new Error('the receipt could not be stored');
      })(),
    ).toThrow('the receipt could not be stored');
    db.transaction(() => host.runtime.webhooks.notify('receipt.created', record(11)))();
    await until('the committed callback', () => receiver.got.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.got.map((g) => g.headers['idempotency-key'])).toEqual([callbackKey('receipt.created', record(11))]);
    expect(host.runtime.webhooks.deliveries(sub.id).map((d) => d.cid)).toEqual([record(11).cid]);
  });

  it('retries a 500 after the backoff measured on the runtime clock, then succeeds', async () => {
    let now = Date.parse('2026-11-24T08:00:00Z');
    // Only the test moves time: the worker's timers fire, but nothing is due until the clock says so.
    const host = await startHost(tempDir(), { backoffBaseMs: 60_000, jitter: 0, pollMs: 20 }, () => now);
    const receiver = await startReceiver([500, 200]);
    const sub = host.runtime.webhooks.subscribe({ url: receiver.url });
    host.runtime.webhooks.notify('receipt.created', record(2));
    await until('the first attempt', () => host.runtime.webhooks.deliveries(sub.id)[0]?.attempt_log[0]?.outcome === 'retry');
    const first = host.runtime.webhooks.deliveries(sub.id)[0]!;
    expect(first).toMatchObject({ state: 'pending', attempts: 1, last_status: 500, last_error: 'the receiver answered HTTP 500', next_attempt_at: new Date(now + 60_000).toISOString() });

    now += 59_999;
    await host.runtime.webhooks.deliverDue();
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.got).toHaveLength(1);
    now += 1;
    await host.runtime.webhooks.deliverDue();
    await host.runtime.webhooks.idle();
    expect(receiver.got).toHaveLength(2);
    expect(receiver.got[1]!.headers['idempotency-key']).toBe(receiver.got[0]!.headers['idempotency-key']);
    expect(receiver.got[1]!.headers['tessera-attempt']).toBe('2');
    expect(receiver.got[1]!.body).toBe(receiver.got[0]!.body);
    const done = host.runtime.webhooks.deliveries(sub.id)[0]!;
    expect(done).toMatchObject({ state: 'delivered', attempts: 2, last_status: 200 });
    expect(done.attempt_log.map((a) => [a.attempt, a.status, a.outcome])).toEqual([
      [1, 500, 'retry'],
      [2, 200, 'success'],
    ]);
    expect(Date.parse(done.attempt_log[1]!.started_at) - Date.parse(done.attempt_log[0]!.started_at)).toBe(60_000);
    const m = host.runtime.metrics.webhook;
    expect([m.attempts.get(), m.retry.get(), m.success.get(), m.fail.get()]).toEqual([2, 1, 1, 0]);
  });

  it('gives up after max attempts as failed, journaled and counted, with backoff doubling between attempts', async () => {
    const host = await startHost(tempDir(), { ...FAST, maxAttempts: 3, backoffBaseMs: 100 });
    const receiver = await startReceiver([503]);
    const sub = host.runtime.webhooks.subscribe({ url: receiver.url });
    host.runtime.webhooks.notify('receipt.created', record(3));
    await until('the delivery to fail', () => host.runtime.webhooks.deliveries(sub.id)[0]?.state === 'failed');
    expect(receiver.got).toHaveLength(3);
    const gaps = [receiver.got[1]!.at - receiver.got[0]!.at, receiver.got[2]!.at - receiver.got[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(95);
    expect(gaps[1]).toBeGreaterThanOrEqual(195);
    const failed = host.runtime.webhooks.deliveries(sub.id, { state: 'failed' })[0]!;
    expect(failed).toMatchObject({ attempts: 3, last_status: 503, next_attempt_at: null });
    expect(failed.attempt_log.map((a) => a.outcome)).toEqual(['retry', 'retry', 'failed']);
    const journaled = host.runtime.journal.query({ topic: 'webhook.failed' }).events;
    expect(journaled.map((e) => e.payload)).toEqual([{ delivery: failed.id, subscription: sub.id, cid: record(3).cid, event: 'receipt.created', attempts: 3, last_status: 503, last_error: 'the receiver answered HTTP 503' }]);
    const m = host.runtime.metrics.webhook;
    expect([m.attempts.get(), m.retry.get(), m.success.get(), m.fail.get()]).toEqual([3, 2, 0, 1]);
    await new Promise((r) => setTimeout(r, 150));
    expect(receiver.got).toHaveLength(3); // no attempt after giving up
  });

  it('survives a restart mid-delivery: the callback is sent again with the same Idempotency-Key and stored once', async () => {
    const dir = tempDir();
    const receiver = await startReceiver(['hang', 200]);
    let host = await startHost(dir, FAST);
    const sub = host.runtime.webhooks.subscribe({ url: receiver.url });
    const rec = record(4);
    host.runtime.webhooks.notify('receipt.created', rec);
    await until('the first attempt to reach the receiver', () => receiver.got.length === 1);
    await host.close(); // aborts the request in flight; the delivery stays pending

    host = await startHost(dir, FAST);
    await until('the second attempt', () => receiver.got.length === 2);
    await until('delivered', () => host.runtime.webhooks.deliveries(sub.id)[0]?.state === 'delivered');
    const key = callbackKey('receipt.created', rec);
    expect(receiver.got.map((g) => g.headers['idempotency-key'])).toEqual([key, key]);
    expect(receiver.got[1]!.body).toBe(receiver.got[0]!.body);
    expect([...receiver.stored.keys()]).toEqual([key]);
    const d = host.runtime.webhooks.deliveries(sub.id)[0]!;
    expect(d).toMatchObject({ attempts: 2, state: 'delivered' });
    expect(d.attempt_log.map((a) => a.outcome)).toEqual(['started', 'success']);
  });

  it('keeps a scheduled retry across a restart at its stored due time', async () => {
    const dir = tempDir();
    let now = Date.parse('2026-11-24T08:00:00Z');
    const receiver = await startReceiver([500, 200]);
    let host = await startHost(dir, { backoffBaseMs: 30_000, jitter: 0, pollMs: 20 }, () => now);
    const sub = host.runtime.webhooks.subscribe({ url: receiver.url });
    host.runtime.webhooks.notify('receipt.created', record(5));
    await until('the failed attempt', () => host.runtime.webhooks.deliveries(sub.id)[0]?.attempt_log[0]?.outcome === 'retry');
    await host.close();
    now += 10_000;
    host = await startHost(dir, { backoffBaseMs: 30_000, jitter: 0, pollMs: 20 }, () => now);
    await host.runtime.webhooks.deliverDue();
    expect(receiver.got).toHaveLength(1);
    now += 20_000;
    await host.runtime.webhooks.deliverDue();
    await host.runtime.webhooks.idle();
    expect(receiver.got).toHaveLength(2);
    expect(host.runtime.webhooks.deliveries(sub.id)[0]).toMatchObject({ state: 'delivered', attempts: 2 });
  });

  it('never has more than maxInFlight requests open at once, and waits for a free slot without spinning', async () => {
    // The runtime clock counts its reads: the worker reads it on every check of the outbox.
    let reads = 0;
    const clock = () => {
      reads++;
      return Date.now();
    };
    const host = await startHost(tempDir(), { ...FAST, maxInFlight: 2, pollMs: 100, timeoutMs: 60_000 }, clock);
    const receiver = await startReceiver(['hang']);
    host.runtime.webhooks.subscribe({ url: receiver.url });
    for (let i = 0; i < 5; i++) host.runtime.webhooks.notify('receipt.created', record(100 + i));
    await until('two requests', () => receiver.got.length === 2);
    // Three due rows wait for a slot: about 10 checks (a few clock reads each) in this second, where a worker
    // re-checking on every timer turn makes thousands.
    const before = reads;
    await new Promise((r) => setTimeout(r, 1000));
    expect(reads - before).toBeLessThan(200);
    expect(receiver.got).toHaveLength(2);
  });

  it('keeps a receiver that hangs from holding up the others: a share of the slots while both have work, never the slot the other needs next', async () => {
    const host = await startHost(tempDir(), { ...FAST, maxInFlight: 4, timeoutMs: 60_000 });
    const stuck = await startReceiver(['hang']);
    const fine = await startReceiver([200]);
    host.runtime.webhooks.subscribe({ url: stuck.url });
    const good = host.runtime.webhooks.subscribe({ url: fine.url });
    for (let i = 0; i < 12; i++) host.runtime.webhooks.notify('receipt.created', record(300 + i));
    await until('every delivery to the answering receiver', () => host.runtime.webhooks.deliveries(good.id).every((d) => d.state === 'delivered') && fine.got.length >= 12);
    // Once the answering one has drained, the hanging one takes more slots, but not the one left for the other.
    await until('the hanging receiver to hold every slot it may', () => stuck.got.length === 3);
    // The next callback to the answering receiver goes out at once, not after the hanging requests' 60 s timeout.
    host.runtime.webhooks.notify('receipt.created', record(399));
    await until('the next delivery to the answering receiver', () => fine.got.length === 13 && host.runtime.webhooks.deliveries(good.id).every((d) => d.state === 'delivered'));
    expect(stuck.got).toHaveLength(3);
  });

  it('times out an attempt that gets no answer and retries it', async () => {
    const host = await startHost(tempDir(), { ...FAST, timeoutMs: 150 });
    const receiver = await startReceiver(['hang', 200]);
    const sub = host.runtime.webhooks.subscribe({ url: receiver.url });
    host.runtime.webhooks.notify('receipt.created', record(6));
    await until('delivered', () => host.runtime.webhooks.deliveries(sub.id)[0]?.state === 'delivered');
    const log = host.runtime.webhooks.deliveries(sub.id)[0]!.attempt_log;
    expect(log[0]).toMatchObject({ outcome: 'retry', status: null, error: 'no response within 150 ms' });
    expect(log[0]!.duration_ms).toBeGreaterThanOrEqual(140);
  });

  it('waits as long as a Retry-After asks when that is longer than the backoff', async () => {
    const now = Date.parse('2026-11-24T08:00:00Z');
    const host = await startHost(tempDir(), { backoffBaseMs: 1_000, jitter: 0, pollMs: 20 }, () => now);
    const receiver = await startReceiver([{ status: 429, retryAfter: '120' }]);
    const sub = host.runtime.webhooks.subscribe({ url: receiver.url });
    host.runtime.webhooks.notify('receipt.created', record(9));
    await until('the first attempt', () => host.runtime.webhooks.deliveries(sub.id)[0]?.attempts === 1 && host.runtime.webhooks.deliveries(sub.id)[0]?.attempt_log[0]?.outcome === 'retry');
    expect(host.runtime.webhooks.deliveries(sub.id)[0]).toMatchObject({ last_status: 429, next_attempt_at: new Date(now + 120_000).toISOString() });
    expect(parseRetryAfter('Tue, 24 Nov 2026 08:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter('soon', now)).toBe(0);
    expect(parseRetryAfter(null, now)).toBe(0);
  });

  it('computes exponential backoff with bounded jitter and a cap', () => {
    const o = { backoffBaseMs: 1000, backoffMaxMs: 10_000, jitter: 0.5 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, o, 0))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(backoffDelay(3, o, 0.999_999)).toBe(2000);
    expect(backoffDelay(3, o, 0.5)).toBe(3000);
  });
});

describe('webhook routes', () => {
  it('lists, reads and deletes subscriptions; unknown ids are WEBHOOK_NOT_FOUND', async () => {
    const host = await startHost(tempDir(), FAST);
    const a = await api(host, 'POST', '/v1/webhooks', { url: 'https://example.com/hooks' });
    expect(a.status).toBe(201);
    const id = (a.body['webhook'] as { id: string }).id;
    expect(a.body['webhook']).toMatchObject({ events: ['**'], description: '' });
    const list = await api(host, 'GET', '/v1/webhooks');
    expect(list.body).toEqual({ webhooks: [a.body['webhook']], signing_key: a.body['signing_key'] });
    expect((await api(host, 'GET', `/v1/webhooks/${id}`)).body).toEqual(a.body['webhook']);
    // Labelled as JSON with no body, as some HTTP clients send every request: a DELETE carries none.
    const deleted = await fetch(`${host.origin}/v1/webhooks/${id}`, { method: 'DELETE', headers: { ...auth, 'content-type': 'application/json' } });
    expect(await deleted.json()).toEqual({ deleted: id });
    for (const [method, path] of [['GET', `/v1/webhooks/${id}`], ['DELETE', `/v1/webhooks/${id}`], ['GET', `/v1/webhooks/${id}/deliveries`], ['GET', '/v1/webhooks/whs_nope/deliveries']] as const) {
      const res = await api(host, method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body).toEqual({ error: { code: 'WEBHOOK_NOT_FOUND', message: expect.stringContaining('No webhook subscription') } });
    }
    expect(host.runtime.journal.query({ topic: 'webhook.**' }).events.map((e) => e.topic)).toEqual(['webhook.subscribed', 'webhook.unsubscribed']);
  });

  it('keeps subscriptions to the device token: a tenant token gets 403 there but may check callbacks', async () => {
    const dir = tempDir();
    const tenantToken = 'tenant-acme-token-0123456789';
    writeFileSync(join(dir, 'tenants.json'), JSON.stringify({ tenants: [{ id: 'acme', token_sha256: createHash('sha256').update(tenantToken).digest('hex') }] }));
    const host = await startHost(dir, FAST);
    const sub = host.runtime.webhooks.subscribe({ url: 'https://example.com/hooks' });
    const asTenant = (method: string, path: string, body?: unknown) =>
      fetch(host.origin + path, { method, headers: { authorization: `Bearer ${tenantToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    for (const [method, path, body] of [['GET', '/v1/webhooks'], ['POST', '/v1/webhooks', { url: 'https://evil.example/' }], ['GET', `/v1/webhooks/${sub.id}`], ['DELETE', `/v1/webhooks/${sub.id}`], ['GET', `/v1/webhooks/${sub.id}/deliveries`]] as const) {
      const res = await asTenant(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(await res.json()).toEqual({ error: { code: 'FORBIDDEN', message: expect.stringContaining('device API token') } });
    }
    expect(host.runtime.webhooks.list().map((s) => s.id)).toEqual([sub.id]);
    const check = await asTenant('POST', '/v1/webhook/test', { headers: {}, body: '{}' });
    expect(check.status).toBe(200);
    expect(await check.json()).toEqual({ valid: false, reason: 'the Tessera-Signature header is missing' });
  });

  it('refuses bad input with stable codes and creates nothing', async () => {
    const host = await startHost(tempDir(), FAST);
    const cases: Array<[unknown, number, string, RegExp?]> = [
      [{ url: 'ftp://example.com/x' }, 400, 'WEBHOOK_URL_INVALID', /http or https, not "ftp"/],
      [{ url: 'file:///etc/passwd' }, 400, 'WEBHOOK_URL_INVALID', /not "file"/],
      [{ url: 'javascript:alert(1)' }, 400, 'WEBHOOK_URL_INVALID'],
      [{ url: 'example.com/hooks' }, 400, 'WEBHOOK_URL_INVALID', /not an absolute URL/],
      [{ url: 'https://user:pw@example.com/' }, 400, 'WEBHOOK_URL_INVALID', /credentials/],
      [{ url: 'https://example.com/#x' }, 400, 'WEBHOOK_URL_INVALID', /fragment/],
      [{ url: 'https://example.com/' + 'a'.repeat(3000) }, 400, 'WEBHOOK_URL_INVALID', /at most 2048/],
      [{ url: 'https://example.com/' + 'a'.repeat(5000) }, 400, 'WEBHOOK_URL_INVALID', /at most 2048/],
      [{ url: 'https://example.com/', events: ['receipt..x'] }, 400, 'TOPIC_INVALID'],
      [{ url: 'https://example.com/', events: [] }, 400, 'VALIDATION_FAILED'],
      [{ url: 'https://example.com/', extra: true }, 400, 'VALIDATION_FAILED'],
      // Wrong JSON types are refused, not coerced ("123", ["receipt.*"]).
      [{ url: 123 }, 400, 'VALIDATION_FAILED', /must be string/],
      [{ url: 'https://example.com/', events: 'receipt.*' }, 400, 'VALIDATION_FAILED', /must be array/],
      [{ events: ['**'] }, 400, 'VALIDATION_FAILED'],
      ['{not json', 400, 'VALIDATION_FAILED'],
    ];
    for (const [body, status, code, message] of cases) {
      const res = await api(host, 'POST', '/v1/webhooks', body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect((res.body['error'] as { code: string }).code, JSON.stringify(body)).toBe(code);
      if (message) expect((res.body['error'] as { message: string }).message).toMatch(message);
    }
    expect(host.runtime.webhooks.list()).toEqual([]);
    const noAuth = await fetch(`${host.origin}/v1/webhooks`);
    expect(noAuth.status).toBe(401);
    const badQuery = await api(host, 'GET', `/v1/webhooks/whs_x/deliveries?state=lost`);
    expect(badQuery.status).toBe(400);
    // A producer's mistakes show even before anyone subscribes.
    expect(() => host.runtime.webhooks.notify('receipt.created', { cid: 'not-a-cid' })).toThrow(/cid/);
    expect(() => host.runtime.webhooks.notify('bad topic', record(1))).toThrow(/topic/);
    host.runtime.webhooks.subscribe({ url: 'https://example.com/' });
    expect(() => host.runtime.webhooks.notify('receipt.created', { cid: 'not-a-cid' })).toThrow(/cid/);
    expect(() => host.runtime.webhooks.notify('receipt.created', { ...record(1), amount: 10n })).toThrow(/not JSON|canonicalize/);
    expect(host.runtime.webhooks.deliveries(host.runtime.webhooks.list()[0]!.id)).toEqual([]);
  });

  it('POST /v1/webhook/test says valid for a real callback and gives the precise reason for a tampered one', async () => {
    const host = await startHost(tempDir(), FAST);
    const receiver = await startReceiver([200]);
    host.runtime.webhooks.subscribe({ url: receiver.url });
    const rec = record(7);
    const [delivery] = host.runtime.webhooks.notify('receipt.created', rec);
    await until('the callback', () => receiver.got.length === 1);
    const headers = Object.fromEntries(Object.entries(receiver.got[0]!.headers).map(([k, v]) => [k, String(v)]));
    const body = receiver.got[0]!.body;
    const test = (h: Record<string, string>, b: string, extra: Record<string, unknown> = {}) => api(host, 'POST', '/v1/webhook/test', { headers: h, body: b, ...extra });

    const ok = await test(headers, body);
    const key = callbackKey('receipt.created', rec);
    expect(ok).toEqual({ status: 200, body: { valid: true, keyid: host.runtime.deviceKey.keyid, timestamp: expect.any(Number), event: 'receipt.created', cid: rec.cid, key, delivery } });
    // Header names are case-insensitive.
    expect((await test({ 'Tessera-Signature': headers['tessera-signature']!, 'Idempotency-Key': key }, body)).body['valid']).toBe(true);

    const reasons: Array<[Record<string, string>, string, RegExp]> = [
      [headers, body.replace('"ACK"', '"NAK"'), /signature does not verify/],
      [headers, body + ' ', /signature does not verify/],
      [{ ...headers, 'tessera-signature': headers['tessera-signature']!.replace(/t=(\d+)/, (_m, t: string) => `t=${Number(t) - 1}`) }, body, /signature does not verify/],
      [{ ...headers, 'tessera-signature': undefined as unknown as string }, body, /Tessera-Signature header is missing/],
      [{ ...headers, 'tessera-signature': 'sig=abc' }, body, /malformed: it must have t=, keyid= and sig=/],
      [{ ...headers, 'tessera-signature': headers['tessera-signature']!.replace(/sig=.*/, 'sig=AAAA') }, body, /sig must be 64 bytes/],
      [{ ...headers, 'tessera-signature': headers['tessera-signature']!.replace(/keyid=b3:[0-9a-f]+/, `keyid=${cidOf('other')}`) }, body, /not this device's key/],
      [{ ...headers, 'idempotency-key': cidOf('other') }, body, /Idempotency-Key header .* differs from the body's key/],
      [{ ...headers, 'tessera-event': 'receipt.other' }, body, /Tessera-Event header receipt.other differs/],
    ];
    for (const [h, b, reason] of reasons) {
      const clean = Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined));
      const res = await test(clean, b);
      expect(res.status).toBe(200);
      expect(res.body['valid'], String(reason)).toBe(false);
      expect(res.body['reason']).toMatch(reason);
    }

    const bad = await api(host, 'POST', '/v1/webhook/test', { headers, body: { not: 'a string' } });
    expect(bad.status).toBe(400);
    expect((bad.body['error'] as { code: string }).code).toBe('VALIDATION_FAILED');
    expect((await api(host, 'POST', '/v1/webhook/test', '{oops')).status).toBe(400);
  });

  it('tells a stale callback from a fresh one by its signed timestamp', async () => {
    let now = Date.now();
    const host = await startHost(tempDir(), FAST, () => now);
    const receiver = await startReceiver([200]);
    host.runtime.webhooks.subscribe({ url: receiver.url });
    host.runtime.webhooks.notify('receipt.created', record(8));
    await until('the callback', () => receiver.got.length === 1);
    const headers = Object.fromEntries(Object.entries(receiver.got[0]!.headers).map(([k, v]) => [k, String(v)]));
    now += 301_000;
    const stale = await api(host, 'POST', '/v1/webhook/test', { headers, body: receiver.got[0]!.body });
    expect(stale.body).toEqual({ valid: false, reason: expect.stringMatching(/^the timestamp t=\d+ is 301 s from now; at most 300 s is accepted$/) });
    const tolerant = await api(host, 'POST', '/v1/webhook/test', { headers, body: receiver.got[0]!.body, tolerance_seconds: 600 });
    expect(tolerant.body['valid']).toBe(true);
  });
});
