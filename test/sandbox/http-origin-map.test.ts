/**
 * The operator's origin map (`TESSERA_HTTP_ORIGIN_MAP`, sandbox/capabilities.ts): http.fetch to an allowlisted
 * origin connects to a loopback server instead, while the allowlist stays the manifest's real origins. Real
 * capability broker, real SQLite store, real HTTP on 127.0.0.1.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost } from '../../main/host/headless.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import type { Store } from '../../main/runtime/store/index.js';
import { createCapabilityBroker, parseHttpOriginMap } from '../../sandbox/capabilities.js';
import type { CallScope } from '../../sandbox/capabilities.js';

let server: Server;
let local: string;
let store: Store;
const seen: Array<{ url: string; host: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', host: req.headers.host ?? '' });
    if (req.url === '/hop/away') {
      res.statusCode = 302;
      res.setHeader('location', `${local}/v1/forecast`);
      return res.end();
    }
    if (req.url === '/hop/here') {
      res.statusCode = 302;
      res.setHeader('location', '/v1/search?name=Lviv');
      return res.end();
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  local = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  store = openStore({ path: ':memory:', logger: createMemoryLogger() });
});

afterAll(async () => {
  store?.close();
  await new Promise<void>((r) => server.close(() => r()));
});

function fetcher(originMap: ReturnType<typeof parseHttpOriginMap>) {
  const bus = createBus({ journal: createJournal({ store }), logger: createMemoryLogger() });
  const broker = createCapabilityBroker({ store, bus, originMap });
  const scope: CallScope = {
    plugin: { name: 'weather-test', version: '1.0.0', key: 'weather-test@1.0.0' },
    grants: [{ name: 'http.fetch', origins: ['https://api.open-meteo.com'] }],
    trace_id: 't'.repeat(32),
    checkPermit: () => undefined,
    calls: [],
  };
  const handler = broker.handlerFor(scope);
  return (url: string) => handler('http.fetch', { url }) as Promise<{ status: number; json?: { path: string } }>;
}

describe('the http.fetch origin map', () => {
  it('connects an allowlisted origin to its loopback target, keeping the path and query', async () => {
    const get = fetcher(parseHttpOriginMap(`https://api.open-meteo.com=${local}`));
    const res = await get('https://api.open-meteo.com/v1/forecast?latitude=49.84&longitude=24.02');
    expect(res).toMatchObject({ status: 200, json: { path: '/v1/forecast?latitude=49.84&longitude=24.02' } });
    expect(seen.at(-1)).toEqual({ url: '/v1/forecast?latitude=49.84&longitude=24.02', host: local.slice('http://'.length) });
    // A relative redirect stays on the allowlisted origin and is mapped again.
    expect(await get('https://api.open-meteo.com/hop/here')).toMatchObject({ status: 200, json: { path: '/v1/search?name=Lviv' } });
  });

  it('leaves the allowlist as the manifest wrote it: the loopback target itself is not reachable by its own name', async () => {
    const get = fetcher(parseHttpOriginMap(`https://api.open-meteo.com=${local}`));
    const before = seen.length;
    await expect(get(`${local}/v1/forecast`)).rejects.toMatchObject({ code: 'CAPABILITY_DENIED', message: expect.stringContaining("is not in this plugin's allowlist") });
    await expect(get('https://geocoding-api.open-meteo.com/v1/search?name=Lviv')).rejects.toMatchObject({ code: 'CAPABILITY_DENIED' });
    expect(seen.length).toBe(before);
    // A redirect naming the target's own origin leaves the allowlist: refused, not followed.
    await expect(get('https://api.open-meteo.com/hop/away')).rejects.toMatchObject({ code: 'CAPABILITY_DENIED', message: expect.stringContaining('leaves this plugin\'s allowlist') });
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/hop/away']);
  });

  it('without a map, the real origin is what it connects to', async () => {
    const calls: string[] = [];
    const bus = createBus({ journal: createJournal({ store }), logger: createMemoryLogger() });
    const fake: typeof fetch = (input) => {
      calls.push(String(input));
      return Promise.resolve(new Response('{}', { headers: { 'content-type': 'application/json' } }));
    };
    const handler = createCapabilityBroker({ store, bus, fetch: fake }).handlerFor({ plugin: { name: 'p', version: '1.0.0', key: 'p@1.0.0' }, grants: [{ name: 'http.fetch', origins: ['https://api.open-meteo.com'] }], trace_id: 'a'.repeat(32), checkPermit: () => undefined, calls: [] });
    await handler('http.fetch', { url: 'https://api.open-meteo.com/v1/forecast?x=1' });
    expect(calls).toEqual(['https://api.open-meteo.com/v1/forecast?x=1']);
  });

  it('parses FROM=TO pairs and refuses targets off this machine, paths, duplicates and non-origins', () => {
    expect([...parseHttpOriginMap(' https://api.open-meteo.com=http://127.0.0.1:8080 , https://geocoding-api.open-meteo.com=http://localhost:9090,')]).toEqual([
      ['https://api.open-meteo.com', 'http://127.0.0.1:8080'],
      ['https://geocoding-api.open-meteo.com', 'http://localhost:9090'],
    ]);
    expect(parseHttpOriginMap(undefined).size).toBe(0);
    expect(parseHttpOriginMap('').size).toBe(0);
    expect([...parseHttpOriginMap('https://a.example=http://[::1]:81')]).toEqual([['https://a.example', 'http://[::1]:81']]);
    for (const [text, why] of [
      ['https://api.open-meteo.com=http://192.168.1.20:8080', 'not a loopback address'],
      ['https://api.open-meteo.com=https://evil.example', 'not a loopback address'],
      ['https://api.open-meteo.com=http://127.0.0.1:8080/v1', 'more than an origin'],
      ['https://api.open-meteo.com', 'is not FROM=TO'],
      ['ftp://api.open-meteo.com=http://127.0.0.1:1', 'not an http(s) origin'],
      ['https://a.example=http://127.0.0.1:1,https://a.example=http://127.0.0.1:2', 'a second time'],
    ]) {
      expect(() => parseHttpOriginMap(text), text).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(why!) }));
    }
  });

  it('stops a host from starting with a map it refuses, before anything opens', async () => {
    const dataDir = tempDir();
    await expect(startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: { TESSERA_HTTP_ORIGIN_MAP: 'https://api.open-meteo.com=http://10.0.0.7:8080' } })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('TESSERA_HTTP_ORIGIN_MAP') });
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
