/**
 * Authorization is decided on the route the server matched (issue 13 §1.1): every route in the route table ×
 * every way of writing its path, over plain requests and WebSocket upgrades, without a token and with a token
 * whose role does not reach the route. Raw HTTP (node:http) so that nothing normalizes the paths on the way.
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createHttpServer } from '../../main/host/http/server.js';
import { setOperatorPin } from '../../main/host/credentials.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { ROLES } from '../../main/common/roles.js';
import { tempDir } from '../helpers/tmp.js';

const TENANT_TOKEN = 'acme-token-0123456789abcdef0123456789';
let host: RunningHost;
let dataDir: string;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });

beforeAll(async () => {
  dataDir = tempDir('tessera-access-', 'file');
  writeFileSync(join(dataDir, 'tenants.json'), JSON.stringify({ tenants: [{ id: 'acme', token_sha256: createHash('sha256').update(TENANT_TOKEN).digest('hex') }] }));
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
});
afterAll(async () => {
  agent.destroy();
  await host?.close();
});

interface Answer { status: number; body: string; headers: Record<string, string | string[] | undefined> }

/** One request with the path exactly as written. */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: host.port, method, path, agent, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    // The server may close a connection on a request line it cannot parse: nothing was served.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.message === 'socket hang up' ? resolve({ status: 0, body: '', headers: {} }) : reject(err)));
    req.end(body);
  });
}

/** A WebSocket handshake with the path exactly as written: the status it got (101 when it was upgraded). */
function upgrade(path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port: host.port,
      path,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), 'sec-websocket-protocol': 'tessera.v1', ...headers },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve(101);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.message === 'socket hang up' ? resolve(0) : reject(err)));
    req.end();
  });
}

/** Runs `work` over `items`, `width` at a time (the agent keeps 8 sockets). */
async function eachLimited<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/** A concrete path for a route: parameters filled with plausible values. */
function concrete(url: string): string {
  return url.replace(/:cid/g, `b3:${'a'.repeat(64)}`).replace(/:[a-z_]+/g, 'x1');
}

const hex = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Every way of writing `path` that a router or a file server might take for it. */
function variants(path: string): string[] {
  const out = new Set<string>([path]);
  const chars = [...path];
  chars.forEach((c, i) => {
    if (c === '/') {
      out.add(path.slice(0, i) + '//' + path.slice(i + 1)); // doubled slash
      out.add(path.slice(0, i) + '/./' + path.slice(i + 1)); // dot segment
      out.add(path.slice(0, i) + '/x/../' + path.slice(i + 1)); // dot-dot segment
      out.add(path.slice(0, i) + '%2F' + path.slice(i + 1)); // encoded slash
      out.add(path.slice(0, i) + '\\' + path.slice(i + 1)); // backslash
      return;
    }
    out.add(path.slice(0, i) + hex(c) + path.slice(i + 1)); // one character percent-encoded (lower-case hex)
    out.add(path.slice(0, i) + hex(c).toUpperCase() + path.slice(i + 1)); // …and upper-case hex
  });
  out.add(chars.map((c) => (c === '/' ? c : hex(c))).join('')); // every character encoded
  out.add(path.toUpperCase());
  out.add(path.replace(/^\/([a-z])/, (_m, c: string) => `/${c.toUpperCase()}`));
  for (const tail of ['/', '/.', '/..', '%00', '%20', '%2e', ';', ';x=1', '.json', '?', '?x=1', '#', '%23', '%3F', '~', '*']) out.add(path + tail);
  out.add('/.' + path);
  out.add('/x/..' + path);
  out.add('//' + path.slice(1));
  return [...out];
}

describe('access: every route × every way of writing its path', () => {
  it('refuses every protected route without a token, however its path is written (never a 2xx, never the route)', async () => {
    const routes = host.server.tessera.routes;
    expect(routes.length).toBeGreaterThan(40);
    const publicRoutes = routes.filter((r) => r.access === 'public').map((r) => r.url);
    // The capability-link routes are public: the token in the path is the credential (issue 14 §8).
    expect(publicRoutes.sort()).toEqual(['/.well-known/product.json', '/c/:token', '/c/:token/bundle', '/healthz', '/readyz']);
    // Without a real token, no way of writing a link's path opens anything.
    for (const variant of [...variants('/c/x1'), ...variants('/c/x1/bundle')]) {
      const answer = await raw('GET', variant);
      expect({ variant, status: answer.status }).toEqual({ variant, status: expect.toSatisfy((s: number) => [0, 400, 404, 405].includes(s)) });
    }
    const cases = routes.filter((r) => r.access !== 'public').flatMap((route) => variants(concrete(route.url)).map((variant) => ({ route, variant })));
    const leaks: string[] = [];
    await eachLimited(cases, 8, async ({ route, variant }) => {
      const answer = await raw(route.method, variant, {}, route.method === 'POST' ? '{}' : undefined);
      // 401 (matched, no token), 404/405 (not this route), 400 (a URL the router cannot decode), 0 (the request
      // line was refused before any route).
      if (![0, 400, 401, 404, 405].includes(answer.status)) leaks.push(`${route.method} ${variant} → ${answer.status} ${answer.body.slice(0, 80)}`);
      if (answer.status === 401) expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    });
    const checked = cases.length;
    expect(leaks).toEqual([]);
    expect(checked).toBeGreaterThan(2000);
  }, 300_000);

  it('reaches each protected route with the device token on its canonical path (so the variants above were refused by the check, not by a typo)', async () => {
    for (const route of host.server.tessera.routes) {
      if (route.url.startsWith('/ws')) continue;
      const answer = await raw(route.method, concrete(route.url), { authorization: `Bearer ${host.token}` }, route.method === 'POST' ? '{}' : undefined);
      expect([401, 403, 421], `${route.method} ${route.url}: ${answer.body.slice(0, 120)}`).not.toContain(answer.status);
    }
  });

  it('gives each role only its routes: a role token on a route of other roles is 403 under every spelling of the path', async () => {
    const cases = ROLES.flatMap((role) =>
      host.server.tessera.routes.filter((route) => route.access !== 'public' && !route.access.includes(role)).flatMap((route) => variants(concrete(route.url)).map((variant) => ({ role, route, variant }))),
    );
    expect(cases.length).toBeGreaterThan(5000);
    const leaks: string[] = [];
    await eachLimited(cases, 8, async ({ role, route, variant }) => {
      const answer = await raw(route.method, variant, { authorization: `Bearer ${host.credentials.roleToken(role)}` }, route.method === 'POST' ? '{}' : undefined);
      if (![0, 400, 403, 404, 405].includes(answer.status)) leaks.push(`${role}: ${route.method} ${variant} → ${answer.status} ${answer.body.slice(0, 100)}`);
    });
    expect(leaks).toEqual([]);
  }, 300_000);

  it('refuses WebSocket upgrades without a token under every spelling of /ws, /ws/io and an agent room, and accepts the canonical ones with it', async () => {
    // An agent room upgrades for a valid token whatever the session; who may watch it is decided once subscribed.
    for (const path of ['/ws', '/ws/io', '/ws/agents/0f6c1c57-8b62-4c2b-9d1e-3f1f3c2a9b11']) {
      for (const variant of variants(path)) {
        expect([0, 400, 401, 404, 405], `${variant}`).toContain(await upgrade(variant));
      }
      expect(await upgrade(path, { authorization: `Bearer ${host.token}` })).toBe(101);
      expect(await upgrade(path, { 'sec-websocket-protocol': `tessera.v1, tessera.bearer.${host.token}` })).toBe(101);
    }
  });
});

describe('access: who the request comes from and where it goes', () => {
  it('refuses a Host that names no address of this device (DNS rebinding), with the token, and accepts localhost and the IP', async () => {
    const auth = { authorization: `Bearer ${host.token}` };
    for (const name of ['evil.example', `evil.example:${host.port}`, 'tessera.local.evil.example', '10.1.2.3', '[::2]:80', 'localhost.evil.example', 'a b']) {
      const answer = await raw('GET', '/api/info', { ...auth, host: name });
      expect(answer.status, name).toBe(421);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'HOST_NOT_ALLOWED' } });
    }
    for (const name of [`127.0.0.1:${host.port}`, `localhost:${host.port}`, 'LOCALHOST', '127.0.0.1']) {
      expect((await raw('GET', '/api/info', { ...auth, host: name })).status, name).toBe(200);
    }
    // The guard holds for public routes and for the UI too: a rebound page reads nothing.
    expect((await raw('GET', '/healthz', { host: 'evil.example' })).status).toBe(421);
  });

  it("refuses a WebSocket from another site's page (Origin) even with the token, and accepts this server's own origin", async () => {
    const auth = { authorization: `Bearer ${host.token}` };
    for (const origin of ['http://evil.example', `http://evil.example:${host.port}`, 'null', `http://127.0.0.1:${host.port + 1}`, `https://127.0.0.1:${host.port}`, 'file://']) {
      expect(await upgrade('/ws', { ...auth, origin }), origin).toBe(403);
    }
    expect(await upgrade('/ws', { ...auth, origin: host.origin })).toBe(101);
    expect(await upgrade('/ws', { ...auth, origin: `http://localhost:${host.port}` })).toBe(101);
  });

  it('a route that declares no access stops the server from starting', async () => {
    const app = await createHttpServer({ runtime: host.runtime, token: 'x'.repeat(32), logger: createMemoryLogger() });
    app.get('/api/forgotten', async () => ({ secret: true }));
    await expect(app.ready()).rejects.toThrow(/GET \/api\/forgotten/);
    await app.close().catch(() => undefined);
  });

  it('a traveller token sees the Journey Guide and Verify, not the journal, the device log, Studio or the data folder', async () => {
    const traveller = { authorization: `Bearer ${host.credentials.roleToken('traveller')}` };
    const info = await raw('GET', '/api/info', traveller);
    expect(info.status).toBe(200);
    expect(JSON.parse(info.body)).not.toHaveProperty('data_dir');
    expect(JSON.parse((await raw('GET', '/api/info', { authorization: `Bearer ${host.token}` })).body)).toHaveProperty('data_dir', dataDir);
    expect(JSON.parse((await raw('GET', '/api/auth/session', traveller)).body)).toEqual({ kind: 'role', roles: ['traveller'], pin_set: false });
    expect((await raw('GET', '/api/io/status', traveller)).status).toBe(200);
    for (const [method, path] of [['GET', '/api/events'], ['GET', '/v1/log/root'], ['GET', '/api/plugins'], ['POST', '/api/plugins/test'], ['GET', '/metrics'], ['POST', '/v1/webhooks']] as const) {
      const answer = await raw(method, path, traveller, method === 'POST' ? '{}' : undefined);
      expect(answer.status, path).toBe(403);
      expect(JSON.parse(answer.body).error.message).toMatch(/needs the .* role; this credential holds traveller/);
    }
    // On /ws a traveller may watch the dialogue's topics, not the whole journal.
    const ws = new WebSocket(`${host.origin.replace('http', 'ws')}/ws`, ['tessera.v1', `tessera.bearer.${host.credentials.roleToken('traveller')}`]);
    const frames: Array<{ type: string; error?: { code: string }; patterns?: string[] }> = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as (typeof frames)[number]));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', patterns: ['**'] }));
    ws.send(JSON.stringify({ type: 'subscribe', patterns: ['io.**'] }));
    await expect.poll(() => frames.filter((f) => f.type !== 'hello').length).toBe(2);
    expect(frames.slice(1)).toEqual([{ type: 'error', error: expect.objectContaining({ code: 'FORBIDDEN' }) }, { type: 'subscribed', patterns: ['io.**'] }]);
    ws.close();
  });

  it('operator unlock: no PIN set is 409; a wrong PIN is 403 with the tries left; the right one gives a token holding every role until it is locked', async () => {
    const traveller = { authorization: `Bearer ${host.credentials.roleToken('traveller')}` };
    const unlock = (pin: string) => raw('POST', '/api/auth/unlock', traveller, JSON.stringify({ pin }));
    expect(JSON.parse((await unlock('2580')).body)).toMatchObject({ error: { code: 'PIN_NOT_SET' } });
    await setOperatorPin(dataDir, '2580');
    expect(JSON.parse((await raw('GET', '/api/auth/session', traveller)).body)).toMatchObject({ pin_set: true });
    const wrong = await unlock('0000');
    expect(wrong.status).toBe(403);
    expect(JSON.parse(wrong.body)).toMatchObject({ error: { code: 'PIN_INVALID', details: { attempts_left: 4 } } });
    const right = await unlock('2580');
    expect(right.status).toBe(200);
    const session = JSON.parse(right.body) as { token: string; roles: string[]; expires_at: string };
    expect(session.roles).toEqual([...ROLES]);
    expect(Date.parse(session.expires_at) - Date.now()).toBeLessThanOrEqual(15 * 60_000);
    const asOperator = { authorization: `Bearer ${session.token}` };
    expect((await raw('GET', '/api/events', asOperator)).status).toBe(200);
    expect(JSON.parse((await raw('GET', '/api/auth/session', asOperator)).body)).toMatchObject({ kind: 'unlocked', expires_at: session.expires_at });
    expect(JSON.parse((await raw('POST', '/api/auth/lock', asOperator, '{}')).body)).toEqual({ locked: true });
    expect((await raw('GET', '/api/events', asOperator)).status).toBe(401);
  });

  it("tenants: the device log (its size is every tenant's volume) is the operator's; a tenant token gets 403 there", async () => {
    const tenant = { authorization: `Bearer ${TENANT_TOKEN}` };
    expect(JSON.parse((await raw('GET', '/api/auth/session', tenant)).body)).toMatchObject({ kind: 'tenant', roles: [] });
    for (const path of ['/v1/log/root', `/v1/log/inclusion?cid=b3:${'a'.repeat(64)}`, '/v1/log/consistency?from=0', '/%761/log/root']) {
      const answer = await raw('GET', path, tenant);
      expect(answer.status, path).toBe(403);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'FORBIDDEN', message: expect.stringContaining('tenant token') } });
      expect((await raw('GET', path, { authorization: `Bearer ${host.token}` })).status, path).not.toBe(403);
    }
  });
});

describe('slow clients (issue 13 §1.4)', () => {
  it('cuts requests whose headers or body do not arrive in time, and answers an unauthenticated slow body at once', async () => {
    const token = 'slow-clients-token-0123456789abcdef';
    const app = await createHttpServer({ runtime: host.runtime, token, logger: createMemoryLogger(), requestTimeoutMs: 1500 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    try {
      /** Opens a connection, writes `text`, and resolves with what came back and how long the server kept it open. */
      const hold = (text: string) =>
        new Promise<{ answer: string; ms: number }>((resolve) => {
          const started = Date.now();
          const socket = connect(port, '127.0.0.1', () => socket.write(text));
          let answer = '';
          socket.on('data', (d: Buffer) => (answer += d.toString('utf8')));
          socket.on('error', () => undefined);
          socket.on('close', () => resolve({ answer, ms: Date.now() - started }));
        });
      const slowBody = (auth: string) => `POST /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"topic":`;
      const [unauthenticated, authenticated, slowHeaders] = await Promise.all([
        hold(slowBody('')),
        hold(slowBody(`Authorization: Bearer ${token}\r\n`)),
        hold(`GET /api/info HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `),
      ]);
      // No token: 401 at once, and the connection is not kept waiting for a body nobody will read.
      expect(unauthenticated.answer).toMatch(/^HTTP\/1\.1 401/);
      expect(unauthenticated.ms).toBeLessThan(1500);
      // With a token, a body that never completes is cut at the request timeout (408), not held for good.
      expect(authenticated.answer).toMatch(/^HTTP\/1\.1 408|^$/);
      expect(authenticated.ms).toBeGreaterThanOrEqual(1400);
      expect(authenticated.ms).toBeLessThan(15_000);
      expect(slowHeaders.ms).toBeLessThan(15_000);
      // Many at once are all cut too.
      const many = await Promise.all(Array.from({ length: 200 }, () => hold(slowBody(''))));
      expect(many.every((c) => c.answer.startsWith('HTTP/1.1 401'))).toBe(true);
    } finally {
      await app.close();
    }
  }, 60_000);
});

describe('JSON bodies: one parser, one depth rule (issue 13 §2.13)', () => {
  it('answers 400 on every JSON route for deep nesting, invalid UTF-8 and a key given twice — never 500, never the handler', async () => {
    const auth = { authorization: `Bearer ${host.token}` };
    const before = host.runtime.journal.lastId();
    const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    const bodies: Array<[string, Buffer]> = [
      ['depth 1000', Buffer.from(deep(1000))],
      ['depth 5000', Buffer.from(`{"topic":"a","payload":${'['.repeat(5000)}${']'.repeat(5000)}}`)],
      ['invalid UTF-8', Buffer.concat([Buffer.from('{"topic":"a","text":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')])],
      ['duplicate key', Buffer.from('{"topic":"a","topic":"b"}')],
    ];
    const posts = host.server.tessera.routes.filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThan(15);
    for (const route of posts) {
      for (const [what, body] of bodies) {
        const answer = await new Promise<Answer>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port: host.port, method: 'POST', path: concrete(route.url), headers: { ...auth, 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
          });
          req.on('error', reject);
          req.end(body);
        });
        expect(answer.status, `${route.url} ${what}: ${answer.body.slice(0, 120)}`).toBe(400);
        expect(JSON.parse(answer.body).error.code, `${route.url} ${what}`).toMatch(/^(VALIDATION_FAILED|VIEW_INVALID|VIEW_TOO_DEEP)$/);
      }
    }
    // Nothing of any of them was journaled (no event, no run, no schedule).
    expect(host.runtime.journal.query({ after: before, limit: 100 }).events.filter((e) => !e.topic.startsWith('io.voice') && !e.topic.startsWith('http.'))).toEqual([]);
  }, 120_000);

  it('says a path part is too long instead of "takes GET, not GET", with the UI served or not', async () => {
    const answer = await raw('GET', `/v1/r/${'x'.repeat(300)}`, { authorization: `Bearer ${host.token}` });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('longer than this route takes') } });
    // With the UI's files served, an unmatched path falls to the file server first, then to the not-found handler.
    const ui = tempDir('tessera-ui-');
    writeFileSync(join(ui, 'index.html'), '<!doctype html><title>t</title>');
    const app = await createHttpServer({ runtime: host.runtime, token: 'ui-server-token-0123456789abcdef', logger: createMemoryLogger(), rendererDir: ui });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const port = (app.server.address() as { port: number }).port;
      const res = await fetch(`http://127.0.0.1:${port}/v1/r/${'x'.repeat(300)}`, { headers: { authorization: 'Bearer ui-server-token-0123456789abcdef' } });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('longer than this route takes') } });
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});
