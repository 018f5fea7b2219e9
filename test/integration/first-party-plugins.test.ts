/**
 * The first-party plugins as `npm run build` ships them (built, signed with the development key, trusted through
 * resources/trust), loaded by a real headless host and driven over its HTTP API (issue 3 §7, §8).
 */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidOf } from '../../main/common/cid.js';
import { runCli } from '../../main/host/cli.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { BUILTIN_PLUGINS_DIR } from '../../main/host/paths.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { issuePermit } from '../../sandbox/permits.js';
import { requireBuild } from '../helpers/cli.js';
import { startFakeOpenMeteo } from '../helpers/open-meteo.js';
import type { FakeOpenMeteo } from '../helpers/open-meteo.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;
/** Open-Meteo as tool-weather's manifest names it, served on 127.0.0.1 through the operator's origin map. */
let meteo: FakeOpenMeteo;
/** Monday 7 December 2026, 10:00 UTC: 11:00 in Paris. */
const MONDAY = Date.parse('2026-12-07T10:00:00Z');

beforeAll(async () => {
  requireBuild();
  meteo = await startFakeOpenMeteo({ now: MONDAY });
  host = await startHost({ dataDir: tempDir('tessera-fp-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: { TESSERA_HTTP_ORIGIN_MAP: meteo.originMap } });
  for (let i = 0; i < 200 && host.runtime.plugins.list().length < 10; i++) await new Promise((r) => setTimeout(r, 25));
}, 60_000);

afterAll(async () => {
  await host?.close();
  await meteo?.close();
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
    expect(plugins.map((p) => p.name).sort()).toEqual(['intake-event', 'policy-agent-proposal', 'policy-authorization', 'policy-availability', 'policy-coverage', 'policy-existence', 'policy-product-quota', 'policy-quota', 'policy-risk', 'tool-weather']);
    for (const p of plugins) {
      expect(p).toMatchObject({ trust: 'trusted', publisher: { name: 'tessera-dev' } });
      expect(p.cid).toMatch(/^b3:[0-9a-f]{64}$/);
    }
    expect(plugins.find((p) => p.name === 'tool-weather')!.capabilities).toEqual(['http.fetch', 'kv', 'events.emit']);
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

  it('tool-weather: asks Open-Meteo for the place and the day\'s forecast with a permit, publishes it, and refuses without a permit', async () => {
    meteo.setDay('Paris', '2026-12-08', { weather_code: 63, temperature_2m_max: 9.6, temperature_2m_min: 4.2, precipitation_sum: 6.3, precipitation_probability_max: 85 });
    const input = { city: 'Paris', day: 'tomorrow', language: 'en' };
    const permit = issuePermit(host.runtime.deviceKey, { input_cid: cidOf(input), scope: ['http.fetch'], expires_at: new Date(MONDAY + 60_000).toISOString(), nonce: 'weather-nonce-1' });
    const published: unknown[] = [];
    const sub = host.runtime.bus.subscribe('plugin.tool-weather.forecast', (e) => void published.push(e.payload));
    const seen = meteo.requests.length;
    const result = await host.runtime.plugins.run('tool-weather', input, { now: MONDAY, permit });
    // The real Open-Meteo paths and parameters: geocoding, then the 7-day forecast for its coordinates.
    expect(meteo.requests.slice(seen)).toEqual([
      '/v1/search?name=Paris&count=1&language=en&format=json',
      '/v1/forecast?latitude=48.85341&longitude=2.3488&daily=weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,precipitation_probability_max&current=temperature_2m,weather_code&timezone=auto&forecast_days=7',
    ]);
    const forecast = { place: { name: 'Paris', lat: 48.85341, lon: 2.3488 }, date: '2026-12-08', summary: 'rain', weather_code: 63, precipitation_probability_max: 85, precipitation_mm: 6.3, temp_max_c: 9.6, temp_min_c: 4.2, fetched_at: '2026-12-07T10:00:00.000Z', offline: false };
    expect(result.output).toEqual({ status: 'ok', city: 'Paris', ...forecast, place: { ...forecast.place, timezone: 'Europe/Paris', country: 'France' }, day: 'tomorrow', current: null, age_minutes: 0, age_hours: 0, age_days: 0 });
    expect(result.capability_calls.map((c) => [c.capability, c.ok])).toEqual([['http.fetch', true], ['http.fetch', true], ['kv.set', true], ['events.emit', true]]);
    // The shared contract's payload, exactly (issue 15 plan: the Journey Guide agent reads it for rain).
    await expect.poll(() => published).toEqual([forecast]);
    await sub.dispose();

    await expect(host.runtime.plugins.run('tool-weather', input, { now: MONDAY })).rejects.toMatchObject({ code: 'PLUGIN_FAILED', message: expect.stringContaining('no permit') });
    // A Studio run, like `tessera plugin test`, gets a throwaway permit for its input and the same origin map.
    const studio = await run('tool-weather', { city: 'Lviv', language: 'uk' }, '2026-12-07T10:00:00Z');
    expect(studio).toMatchObject({ status: 200, body: { output: { status: 'ok', city: 'Lviv', place: { name: 'Львів' }, date: '2026-12-07', day: 'today', current: { temp_c: expect.any(Number), summary: 'partly_cloudy' }, offline: false } } });
    expect(meteo.requests).toContain('/v1/search?name=Lviv&count=1&language=uk&format=json');
    // The host said at start where these origins really go.
    expect(host.runtime.journal.query({ topic: 'sandbox.http_origin_map' }).events.map((e) => e.payload)).toEqual([{ entries: [{ from: 'https://geocoding-api.open-meteo.com', to: meteo.origin }, { from: 'https://api.open-meteo.com', to: meteo.origin }] }]);
  });

  it('tool-weather: answers from the saved forecast with its age when Open-Meteo cannot be reached, and fails clearly with nothing saved', async () => {
    const ask = (input: Record<string, unknown>, now: number, nonce: string) =>
      host.runtime.plugins.run('tool-weather', input, { now, permit: issuePermit(host.runtime.deviceKey, { input_cid: cidOf(input), scope: ['http.fetch'], expires_at: new Date(now + 60_000).toISOString(), nonce }) });
    meteo.setDay('Berlin', '2026-12-09', { weather_code: 71, temperature_2m_max: 1, temperature_2m_min: -3, precipitation_sum: 2, precipitation_probability_max: 70 });
    expect((await ask({ city: 'berlin', day: 'wednesday', language: 'ru' }, MONDAY, 'w-online')).output).toMatchObject({ status: 'ok', place: { name: 'Берлин' }, date: '2026-12-09', day: 'wednesday', summary: 'light_snow', offline: false });
    const published: Array<{ offline: boolean }> = [];
    const sub = host.runtime.bus.subscribe('plugin.tool-weather.forecast', (e) => void published.push(e.payload as { offline: boolean }));
    try {
      // No answer at all (the connection drops), 3 hours later: the saved forecast, said to be offline and 3 hours old.
      meteo.mode = 'drop';
      const later = MONDAY + 3 * 3_600_000 + 5 * 60_000;
      const offline = await ask({ city: 'Berlin', day: 'wednesday' }, later, 'w-dropped');
      expect(offline.output).toMatchObject({ status: 'ok', city: 'Berlin', date: '2026-12-09', day: 'wednesday', summary: 'light_snow', temp_max_c: 1, temp_min_c: -3, precipitation_probability_max: 70, fetched_at: '2026-12-07T10:00:00.000Z', offline: true, current: null, age_minutes: 185, age_hours: 3, age_days: 0 });
      await expect.poll(() => published.map((p) => p.offline)).toEqual([true]);
      // A 503 is the same: out of reach for now.
      meteo.mode = 'unavailable';
      expect((await ask({ city: 'BERLIN', day: 'tomorrow' }, later, 'w-unavailable')).output).toMatchObject({ date: '2026-12-08', day: 'tomorrow', offline: true, age_hours: 3 });
      // Saved under the name Open-Meteo gave too: "Берлин" asked offline finds the forecast fetched as "berlin".
      expect((await ask({ city: 'Берлин', day: 'wednesday', language: 'ru' }, later, 'w-other-name')).output).toMatchObject({ city: 'Берлин', date: '2026-12-09', offline: true });
      // Nothing saved for Oslo: a clear failure with its code, not a made-up forecast.
      await expect(ask({ city: 'Oslo' }, later, 'w-nothing-saved')).rejects.toMatchObject({ code: 'PLUGIN_FAILED', message: expect.stringMatching(/WEATHER_UNAVAILABLE: Open-Meteo cannot be reached .* no forecast for "Oslo" was saved here/) });
      // A saved forecast that no longer reaches the day asked for is no answer either.
      await expect(ask({ city: 'Berlin', day: 'tomorrow' }, MONDAY + 8 * 86_400_000, 'w-too-old-1')).rejects.toMatchObject({ message: expect.stringContaining('does not reach 2026-12-16') });
    } finally {
      meteo.mode = 'ok';
      await sub.dispose();
    }
  });

  it('tool-weather: says when it knows no such place or the day is past the forecast, and stops on an Open-Meteo 400', async () => {
    const ask = (input: Record<string, unknown>, nonce: string) =>
      host.runtime.plugins.run('tool-weather', input, { now: MONDAY, permit: issuePermit(host.runtime.deviceKey, { input_cid: cidOf(input), scope: ['http.fetch'], expires_at: new Date(MONDAY + 60_000).toISOString(), nonce }) });
    expect((await ask({ city: 'Atlantis' }, 'unknown-1')).output).toEqual({ status: 'place_unknown', city: 'Atlantis' });
    expect((await ask({ city: 'Paris', day: '2026-12-24' }, 'unknown-2')).output).toEqual({ status: 'day_out_of_range', city: 'Paris', date: '2026-12-24', first: '2026-12-07', last: '2026-12-13' });
    await expect(ask({ city: 'Paris', day: 'someday' }, 'unknown-3')).rejects.toMatchObject({ message: expect.stringContaining('day must be today, tomorrow') });
    // Open-Meteo's 400 carries its reason; the plugin stops there rather than answer from an old forecast.
    meteo.withdrawn.add('precipitation_probability_max');
    try {
      await expect(ask({ city: 'Paris', day: 'tomorrow' }, 'unknown-5')).rejects.toMatchObject({ message: expect.stringContaining('WEATHER_REQUEST_REFUSED: Open-Meteo refused https://api.open-meteo.com/v1/forecast with 400: Cannot initialize ForecastVariableDaily from invalid String value precipitation_probability_max for key daily') });
    } finally {
      meteo.withdrawn.clear();
    }
    // New York is five hours behind: at 03:00 UTC it is still Sunday 6 December there.
    const early = Date.parse('2026-12-07T03:00:00Z');
    meteo.now = early;
    try {
      const input = { city: 'new_york', day: 'today' };
      const out = await host.runtime.plugins.run('tool-weather', input, { now: early, permit: issuePermit(host.runtime.deviceKey, { input_cid: cidOf(input), scope: ['http.fetch'], expires_at: new Date(early + 60_000).toISOString(), nonce: 'unknown-4' }) });
      expect(out.output).toMatchObject({ status: 'ok', city: 'new_york', place: { name: 'New York' }, date: '2026-12-06', day: 'today' });
    } finally {
      meteo.now = MONDAY;
    }
  });

  it('tool-weather: `tessera plugin test` reaches Open-Meteo through TESSERA_HTTP_ORIGIN_MAP, and refuses a map to another machine', async () => {
    const { writeFileSync } = await import('node:fs');
    const input = join(tempDir(), 'input.json');
    writeFileSync(input, JSON.stringify({ city: 'Kyiv', day: 'tomorrow', language: 'uk' }));
    const test = async (env: Record<string, string>) => {
      let stdout = '';
      const code = await runCli(['plugin', 'test', join(BUILTIN_PLUGINS_DIR, 'tool-weather'), '--input', input, '--data', tempDir(), '--now', '2026-12-07T10:00:00Z'], { stdout: (t) => void (stdout += t), stderr: () => undefined, env });
      return { code, out: JSON.parse(stdout) as Record<string, unknown> };
    };
    const ok = await test({ TESSERA_HTTP_ORIGIN_MAP: meteo.originMap });
    expect(ok).toMatchObject({ code: 0, out: { ok: true, output: { status: 'ok', place: { name: 'Київ' }, date: '2026-12-08', day: 'tomorrow', offline: false } } });
    const off = await test({ TESSERA_HTTP_ORIGIN_MAP: 'https://api.open-meteo.com=http://192.168.1.20:8080' });
    expect(off).toMatchObject({ code: 1, out: { ok: false, error: { code: 'CONFIG_INVALID', message: expect.stringContaining('not a loopback address') } } });
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
