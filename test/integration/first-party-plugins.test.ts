/**
 * The first-party plugins as `npm run build` ships them (built, signed with the development key, trusted through
 * resources/trust), loaded by a real headless host and driven over its HTTP API (issue 3 §7, §8).
 */
import { cpSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidOf } from '../../main/common/cid.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { BUILTIN_PLUGINS_DIR } from '../../main/host/paths.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { issuePermit } from '../../sandbox/permits.js';
import { requireBuild } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;
let weather: Server;
const requests: string[] = [];

beforeAll(async () => {
  requireBuild();
  host = await startHost({ dataDir: tempDir('tessera-fp-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
  for (let i = 0; i < 200 && host.runtime.plugins.list().length < 9; i++) await new Promise((r) => setTimeout(r, 25));
  // The local fixture the tool-weather plugin's allowlist names (http://127.0.0.1:47831).
  weather = createServer((req, res) => {
    requests.push(req.url ?? '');
    const city = new URL(req.url ?? '/', 'http://x').searchParams.get('city');
    res.setHeader('content-type', 'application/json');
    if (city === 'Atlantis') {
      res.statusCode = 404;
      res.end('{"error":"unknown city"}');
    } else res.end(JSON.stringify({ temp_c: 17.5, summary: `clear over ${city}` }));
  });
  await new Promise<void>((r) => weather.listen(47831, '127.0.0.1', () => r()));
}, 60_000);

afterAll(async () => {
  weather?.close();
  await host?.close();
});

const api = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
  const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${host.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const run = (plugin: string, input: unknown, now = '2026-06-01T10:00:00Z') => api('POST', '/api/plugins/test', { plugin, input, now });

/** Studio runs are trials, each with its own sandbox host process (seconds apiece on a loaded machine): a ceiling. */
describe('first-party plugins', { timeout: 120_000 }, () => {
  it('are listed by GET /api/plugins as trusted, signed by the development key', async () => {
    const { status, body } = await api('GET', '/api/plugins');
    expect(status).toBe(200);
    const plugins = body['plugins'] as Array<{ name: string; kind: string; trust: string; publisher: { name: string; keyid: string }; cid: string; capabilities: string[] }>;
    expect(plugins.map((p) => p.name).sort()).toEqual(['intake-event', 'policy-authorization', 'policy-availability', 'policy-coverage', 'policy-existence', 'policy-product-quota', 'policy-quota', 'policy-risk', 'tool-weather']);
    for (const p of plugins) {
      expect(p).toMatchObject({ trust: 'trusted', publisher: { name: 'tessera-dev' } });
      expect(p.cid).toMatch(/^b3:[0-9a-f]{64}$/);
    }
    expect(plugins.find((p) => p.name === 'tool-weather')!.capabilities).toEqual(['http.fetch']);
  });

  it('policy-existence: ACK when every required field is present, NACK naming the missing ones', async () => {
    const ok = await run('policy-existence', { required: ['name', 'ticket.number'], subject: { name: 'Ada', ticket: { number: 'T1' } } });
    expect(ok).toMatchObject({ status: 200, body: { output: { verdict: 'ACK' } } });
    const missing = await run('policy-existence', { required: ['name', 'ticket.number', 'passport'], subject: { name: 'Ada', ticket: {} } });
    expect(missing.body['output']).toMatchObject({ verdict: 'NACK', reason: 'missing: ticket.number, passport', evidence: { missing: ['ticket.number', 'passport'] } });
    const invalid = await run('policy-existence', { subject: {} });
    expect(invalid).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
  });

  it('policy-authorization: tenant, audience and scopes, and ASK outside the credential validity', async () => {
    const principal = { id: 'staff-7', tenant: 'railco', audiences: ['gate'], scopes: ['redeem'], expires_at: '2026-12-31T00:00:00Z' };
    const input = { tenant: 'railco', audience: 'gate', scopes: ['redeem'], principal };
    expect((await run('policy-authorization', input)).body['output']).toMatchObject({ verdict: 'ACK' });
    expect((await run('policy-authorization', { ...input, tenant: 'busco' })).body['output']).toMatchObject({ verdict: 'NACK', reason: expect.stringContaining('tenant railco, not busco') });
    expect((await run('policy-authorization', { ...input, scopes: ['redeem', 'refund'] })).body['output']).toMatchObject({ verdict: 'NACK', evidence: { missing: ['refund'] } });
    expect((await run('policy-authorization', input, '2027-01-02T00:00:00Z')).body['output']).toMatchObject({ verdict: 'ASK', reason: expect.stringContaining('expired') });
  });

  it('policy-quota: counts per subject per day in its key/value store; Studio runs count in a throwaway store', async () => {
    const input = { subject: 'pass-42', limit: 2 };
    const live = async (i: unknown, now = '2026-06-01T10:00:00Z') => ((await host.runtime.plugins.run('policy-quota', i, { now })).output as { verdict: string }).verdict;
    const verdicts = [];
    for (let i = 0; i < 3; i++) verdicts.push(await live(input));
    expect(verdicts).toEqual(['ACK', 'ACK', 'NACK']);
    expect(await live(input, '2026-06-02T10:00:00Z')).toBe('ACK');
    expect(await live({ subject: 'pass-43', limit: 2 })).toBe('ACK');
    // A Studio run starts from an empty store every time and leaves the live count alone.
    for (let i = 0; i < 2; i++) expect(((await run('policy-quota', input)).body['output'] as { verdict: string }).verdict).toBe('ACK');
    expect(await live(input)).toBe('NACK');
  });

  it('tool-weather: fetches its allowlisted service with a permit, and refuses without one', async () => {
    const input = { city: 'Lviv' };
    const now = Date.parse('2026-06-01T10:00:00Z');
    const permit = issuePermit(host.runtime.deviceKey, { input_cid: cidOf(input), scope: ['http.fetch'], expires_at: new Date(now + 60_000).toISOString(), nonce: 'weather-nonce-1' });
    const result = await host.runtime.plugins.run('tool-weather', input, { now, permit });
    expect(result.output).toEqual({ city: 'Lviv', temp_c: 17.5, summary: 'clear over Lviv' });
    expect(result.capability_calls).toEqual([expect.objectContaining({ capability: 'http.fetch', ok: true })]);
    expect(requests).toContain('/v1/current?city=Lviv');

    await expect(host.runtime.plugins.run('tool-weather', input, { now })).rejects.toMatchObject({ code: 'PLUGIN_FAILED', message: expect.stringContaining('no permit') });
    // A Studio run, like `tessera plugin test`, gets a throwaway permit for its input: the fetch is the effect under test.
    const studio = await run('tool-weather', { city: 'Odesa' });
    expect(studio).toMatchObject({ status: 200, body: { output: { city: 'Odesa', temp_c: 17.5 } } });
    expect(requests).toContain('/v1/current?city=Odesa');
    const unknown = { city: 'Atlantis' };
    const permit2 = issuePermit(host.runtime.deviceKey, { input_cid: cidOf(unknown), scope: ['http.fetch'], expires_at: new Date(now + 60_000).toISOString(), nonce: 'weather-nonce-2' });
    await expect(host.runtime.plugins.run('tool-weather', unknown, { now, permit: permit2 })).rejects.toMatchObject({ code: 'PLUGIN_FAILED', message: expect.stringContaining('answered 404') });
  });

  it('POST /api/plugins/test runs a plugin folder as it is, and answers trust failures with their codes', async () => {
    const copy = join(tempDir(), 'policy-existence');
    cpSync(join(BUILTIN_PLUGINS_DIR, 'policy-existence'), copy, { recursive: true });
    const loaded = host.runtime.plugins.list().length;
    const ok = await api('POST', '/api/plugins/test', { dir: copy, input: { required: [], subject: {} } });
    expect(ok).toMatchObject({ status: 200, body: { output: { verdict: 'ACK' } } });
    expect(host.runtime.plugins.list().length).toBe(loaded);
    const { appendFileSync } = await import('node:fs');
    appendFileSync(join(copy, 'plugin.js'), '\n// changed');
    expect(await api('POST', '/api/plugins/test', { dir: copy, input: {} })).toMatchObject({ status: 400, body: { error: { code: 'PLUGIN_TAMPERED' } } });
    expect(await api('POST', '/api/plugins/test', { plugin: 'no-such-plugin', input: {} })).toMatchObject({ status: 404, body: { error: { code: 'PLUGIN_NOT_FOUND' } } });

    // An uploaded package: the three files as JSON. Verified like a folder, run once, not kept.
    const { readFileSync } = await import('node:fs');
    const shipped = join(BUILTIN_PLUGINS_DIR, 'policy-existence');
    const pkg = {
      manifest: JSON.parse(readFileSync(join(shipped, 'plugin.json'), 'utf8')) as Record<string, unknown>,
      code: readFileSync(join(shipped, 'plugin.js'), 'utf8'),
      signature: JSON.parse(readFileSync(join(shipped, 'plugin.sig'), 'utf8')) as Record<string, unknown>,
    };
    const before = host.runtime.plugins.list().length;
    expect(await api('POST', '/api/plugins/test', { package: pkg, input: { required: ['x'], subject: {} } })).toMatchObject({ status: 200, body: { output: { verdict: 'NACK' } } });
    expect(host.runtime.plugins.list().length).toBe(before);
    expect(await api('POST', '/api/plugins/test', { package: { ...pkg, code: pkg.code + '\n//x' }, input: {} })).toMatchObject({ status: 400, body: { error: { code: 'PLUGIN_TAMPERED' } } });
    expect(await api('POST', '/api/plugins/test', { package: { ...pkg, manifest: { ...pkg.manifest, entry: '../../etc/passwd' } }, input: {} })).toMatchObject({ status: 400, body: { error: { code: 'PLUGIN_MANIFEST_INVALID' } } });
    expect(await api('POST', '/api/plugins/test', { package: pkg, plugin: 'policy-existence', input: {} })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/plugins/test', { input: {} })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect((await fetch(host.origin + '/api/plugins')).status).toBe(401);
  });
});
