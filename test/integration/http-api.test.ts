import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LIMITS } from '../../main/common/api.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Real HTTP on 127.0.0.1 against a real runtime with a real SQLite file.
let host: RunningHost;
let dataDir: string;
let auth: Record<string, string>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-http-'));
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
  auth = { authorization: `Bearer ${host.token}` };
});
afterAll(async () => {
  await host?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const url = (path: string) => host.origin + path;
async function json(res: Response) {
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('HTTP API', () => {
  it('serves /healthz and /readyz without a token', async () => {
    expect(await json(await fetch(url('/healthz')))).toEqual({ status: 200, body: { status: 'ok' } });
    const ready = await json(await fetch(url('/readyz')));
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', schema: { journal: 1 } });
  });

  it('answers 401 with the error shape under /api, /v1 and /ws without a valid token', async () => {
    for (const path of ['/api/events', '/v1/webhooks', '/ws']) {
      const res = await json(await fetch(url(path)));
      expect(res.status, path).toBe(401);
      expect(res.body).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
    }
    const wrong = await fetch(url('/api/events'), { headers: { authorization: 'Bearer not-the-token' } });
    expect(wrong.status).toBe(401);
    const noScheme = await fetch(url('/api/events'), { headers: { authorization: host.token } });
    expect(noScheme.status).toBe(401);
  });

  it('publishes an event and finds it by topic prefix and by trace id', async () => {
    const created = await json(await fetch(url('/api/events'), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'nlp.intent.weather', payload: { city: 'Berlin' }, trace_id: 'http-trace-1' }) }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(Number), topic: 'nlp.intent.weather', trace_id: 'http-trace-1', payload: { city: 'Berlin' } });
    const byPrefix = await json(await fetch(url('/api/events?topic=nlp.intent'), { headers: auth }));
    expect((byPrefix.body['events'] as Array<{ id: number }>).map((e) => e.id)).toContain(created.body['id']);
    const byTrace = await json(await fetch(url('/api/events?trace_id=http-trace-1'), { headers: auth }));
    expect(byTrace.body).toEqual({ events: [created.body], next: null });
    const bySince = await json(await fetch(url(`/api/events?since=${encodeURIComponent(String(created.body['ts']))}&topic=nlp.*.weather`), { headers: auth }));
    expect((bySince.body['events'] as unknown[]).length).toBeGreaterThanOrEqual(1);
  });

  it('rejects bad input with stable codes and journals nothing', async () => {
    // Voice starts in the background and journals io.voice.status once it is up: wait for it, so that the
    // window below holds only what these requests could have written.
    await expect.poll(() => host.runtime.journal.query({ topic: 'io.voice.status', limit: 1 }).events.length, { timeout: 20_000 }).toBe(1);
    const before = host.runtime.journal.lastId();
    const post = (body: string, type = 'application/json') => fetch(url('/api/events'), { method: 'POST', headers: { ...auth, 'content-type': type }, body });
    const cases: Array<[Promise<Response>, number, string]> = [
      [post('{"topic":"a..b"}'), 400, 'TOPIC_INVALID'],
      [post('{"payload":1}'), 400, 'VALIDATION_FAILED'],
      [post('{"topic":"a","extra":1}'), 400, 'VALIDATION_FAILED'],
      [post('{"topic":"a","trace_id":"has space"}'), 400, 'VALIDATION_FAILED'],
      [post('{not json'), 400, 'VALIDATION_FAILED'],
      [post('topic=a', 'application/x-www-form-urlencoded'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [post(JSON.stringify({ topic: 'a', payload: 'x'.repeat(LIMITS.maxBodyBytes) })), 413, 'PAYLOAD_TOO_LARGE'],
      [post(JSON.stringify({ topic: 'a', payload: 'x'.repeat(LIMITS.maxPayloadBytes) })), 413, 'PAYLOAD_TOO_LARGE'],
      [fetch(url('/api/events?limit=0'), { headers: auth }), 400, 'VALIDATION_FAILED'],
      [fetch(url('/api/events?since=yesterday'), { headers: auth }), 400, 'VALIDATION_FAILED'],
      [fetch(url('/api/events?topic=a.b*'), { headers: auth }), 400, 'TOPIC_INVALID'],
      [fetch(url('/api/nothing-here'), { headers: auth }), 404, 'NOT_FOUND'],
    ];
    for (const [request, status, code] of cases) {
      const res = await json(await request);
      expect({ status: res.status, code: (res.body['error'] as { code: string } | undefined)?.code }).toEqual({ status, code });
      expect(typeof (res.body['error'] as { message: unknown }).message).toBe('string');
    }
    expect(host.runtime.journal.lastId()).toBe(before);
  });

  it('publishes an OpenAPI document generated from the route schemas', async () => {
    const { status, body } = await json(await fetch(url('/openapi.json')));
    expect(status).toBe(200);
    expect(body['openapi']).toBe('3.1.0');
    const paths = body['paths'] as Record<string, Record<string, { parameters?: Array<{ name: string }> }>>;
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz', '/.well-known/product.json', '/api/events']));
    expect(paths['/api/events']!['get']!.parameters!.map((p) => p.name)).toEqual(expect.arrayContaining(['topic', 'since', 'trace_id', 'limit']));
    expect(paths['/api/events']!['post']).toBeDefined();
  });

  it('describes itself at /.well-known/product.json', async () => {
    const { body } = await json(await fetch(url('/.well-known/product.json')));
    expect(body).toMatchObject({ name: 'Tessera', version: expect.any(String), api: { openapi: '/openapi.json' } });
    // The default product, the API Receipt Gateway, identified by its manifest's cid and its pinned plugins.
    expect(body['products']).toEqual([expect.objectContaining({ name: 'api-receipt-gateway', cid: expect.stringMatching(/^b3:[0-9a-f]{64}$/), plugins: expect.objectContaining({ 'policy-existence': expect.objectContaining({ cid: expect.stringMatching(/^b3:/) }) }) })]);
    expect(body['routes']).toEqual(expect.arrayContaining([{ method: 'POST', url: '/api/events', access: ['operator'] }, { method: 'GET', url: '/healthz', access: 'public' }, { method: 'POST', url: '/api/io/input', access: ['traveller', 'operator'] }]));
    // Served without a token, so it does not say where the data lives.
    expect(body['runtime']).toEqual({ name: 'Tessera', version: expect.any(String), shell: 'headless', started_at: expect.any(String) });
  });

  it('keeps the one error shape for URLs it cannot route: bad encoding, wrong method, unknown path', async () => {
    const badUrl = await json(await fetch(url('/v1/r/%ff'), { headers: auth }));
    expect(badUrl).toEqual({ status: 400, body: { error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('percent-encoding') } } });
    const wrongMethod = await fetch(url('/v1/run'), { headers: auth });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect(await wrongMethod.json()).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: '/v1/run takes POST, not GET.' } });
    expect((await json(await fetch(url(`/v1/r/b3:${'0'.repeat(64)}/bundle`), { method: 'DELETE', headers: auth }))).body).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } });
    // An unknown path is echoed cut short, however long it is.
    const long = await json(await fetch(url(`/v1/${'a'.repeat(5000)}`), { headers: auth }));
    expect(long.status).toBe(404);
    expect((long.body['error'] as { message: string }).message.length).toBeLessThan(200);
  });

  it('answers a text/plain body with 415 on every route that takes a body', async () => {
    for (const path of ['/api/events', '/v1/webhooks', '/v1/webhook/test', '/v1/run', '/v1/verify', `/v1/consents/cns_${'0'.repeat(24)}/approve`]) {
      const res = await json(await fetch(url(path), { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: '{"a":1}' }));
      expect(res.status, path).toBe(415);
      expect(res.body, path).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
    }
    // The message names what the route takes.
    const verify = await json(await fetch(url('/v1/verify'), { method: 'POST', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' }));
    expect(verify.body).toEqual({ error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the body as application/zip or application/json.' } });
  });

  it('names the limit of the route a body is too large for, and calls an oversized view VIEW_TOO_LARGE', async () => {
    const huge = JSON.stringify({ hdr: { src: 'x', nonce: 'nonce-big-1' }, blob: 'a'.repeat(2 * 1024 * 1024) });
    const run = await json(await fetch(url('/v1/run'), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: huge }));
    expect(run).toMatchObject({ status: 413, body: { error: { code: 'VIEW_TOO_LARGE' } } });
    // /v1/verify takes a base64 bundle in JSON, so its limit is 4/3 of the largest bundle, not the server's 1 MiB.
    const limit = Math.ceil((16 * 1024 * 1024 * 4) / 3) + 1024;
    const verify = await json(await fetch(url('/v1/verify'), { method: 'POST', headers: { ...auth, 'content-type': 'application/zip' }, body: new Uint8Array(limit + 1) }));
    expect(verify).toMatchObject({ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE', message: `The body is over ${limit} bytes, the limit of this route.` } } });
  });

  it('streams matching events over /ws to a client authenticated by header', async () => {
    const ws = new WebSocket(url('/ws').replace('http', 'ws') + '?topics=live.*', { headers: auth });
    const messages: Array<{ type: string; event?: { topic: string } }> = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await waitFor(() => messages.some((m) => m.type === 'subscribed'));
    host.runtime.bus.publish('other.topic', {});
    host.runtime.bus.publish('live.one', { n: 1 });
    await waitFor(() => messages.some((m) => m.type === 'event'));
    expect(messages.filter((m) => m.type === 'event').map((m) => m.event!.topic)).toEqual(['live.one']);
    ws.send('{"type":"subscribe","patterns":["bad..pattern"]}');
    ws.send('not json');
    await waitFor(() => messages.filter((m) => m.type === 'error').length === 2);
    ws.close();
  });

  it('accepts the token as a WebSocket subprotocol, as browsers send it, and refuses a socket without one', async () => {
    const ws = new WebSocket(url('/ws').replace('http', 'ws'), ['tessera.v1', `tessera.bearer.${host.token}`]);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('tessera.v1');
    ws.close();
    const refused = new WebSocket(url('/ws').replace('http', 'ws'), ['tessera.v1']);
    const status = await new Promise<number>((resolve) => refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(401);
  });

  it('serves no UI files when the renderer folder is not configured', async () => {
    expect(tempDir()).toBeTruthy();
    expect((await fetch(url('/'))).status).toBe(404);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}
