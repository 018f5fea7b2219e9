/**
 * The city package over HTTP and the CLI (issue 15 point 3): a real headless host on 127.0.0.1 whose city packages
 * come from a temporary folder holding a copy of the shipped (signed) Lviv package (`TESSERA_CITY_PACKAGES`), so the
 * test can remove it and reload; and the built `tessera city` commands.
 */
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { BIN, cleanEnv, requireBuild } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SHIPPED = join(ROOT, 'resources', 'city', 'lviv');

let host: RunningHost;
let packages: string;

beforeAll(async () => {
  packages = tempDir('tessera-city-packages-', 'file');
  cpSync(SHIPPED, join(packages, 'lviv'), { recursive: true });
  const dataDir = tempDir('tessera-city-data-', 'file');
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: { TESSERA_CITY_PACKAGES: packages }, pluginDirs: [] });
}, 60_000);
afterAll(async () => {
  await host?.close();
});

const api = async (method: 'GET' | 'POST', path: string, token = host.token) => {
  const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

const tessera = (args: string[], env: NodeJS.ProcessEnv = cleanEnv()) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });

describe('city package over HTTP', { timeout: 60_000 }, () => {
  it('GET /api/city gives a traveller the routing status with the package and its age', async () => {
    const { status, body } = await api('GET', '/api/city', host.credentials.roleToken('traveller'));
    expect(status).toBe(200);
    expect(body).toMatchObject({ mode: 'graph', degraded: null, package: { id: 'lviv', version: '1.0.0', created_at: '2026-12-01T00:00:00Z', valid_until: '2027-12-31T23:59:59Z', age_days: expect.any(Number) } });
  });

  it('GET /api/city/map draws the old town offline: ways, tram stops and lines, bbox', async () => {
    const { status, body } = await api('GET', '/api/city/map', host.credentials.roleToken('staff'));
    expect(status).toBe(200);
    const map = body as { bbox: Record<string, number>; ways: Array<Array<{ lat: number; lon: number }>>; stops: Array<{ name: string }>; lines: Array<{ name: string; path: unknown[] }> };
    expect(map.ways.length).toBeGreaterThan(500);
    expect(map.ways[0]![0]).toEqual({ lat: expect.any(Number), lon: expect.any(Number) });
    expect(map.stops.map((s) => s.name)).toEqual(expect.arrayContaining(['Pidvalna', 'Lychakiv Cemetery', 'Opera House']));
    expect(map.lines.map((l) => l.name).sort()).toEqual(['Tram 1', 'Tram 2', 'Tram 7']);
    expect(map.bbox['south']).toBeLessThan(49.8331);
    expect(map.bbox['north']).toBeGreaterThan(49.8483);
  });

  it('POST /api/city/reload is the operator\'s; after the package is removed the status degrades, the map is 404, lem.degraded is journaled', async () => {
    expect((await api('POST', '/api/city/reload', host.credentials.roleToken('traveller'))).status).toBe(403);
    rmSync(join(packages, 'lviv'), { recursive: true });
    const { status, body } = await api('POST', '/api/city/reload');
    expect(status).toBe(200);
    expect(body).toMatchObject({ mode: 'static', degraded: { reason: 'missing' }, package: null });
    const map = await api('GET', '/api/city/map');
    expect(map.status).toBe(404);
    expect(map.body).toMatchObject({ error: { code: 'CITY_PACKAGE_MISSING' } });
    const events = host.runtime.journal.query({ topic: 'lem.degraded' }).events;
    expect(events.map((e) => (e.payload as { reason: string }).reason)).toEqual(['missing']);
    // Put it back: routing is planned on the graph again.
    cpSync(SHIPPED, join(packages, 'lviv'), { recursive: true });
    expect((await api('POST', '/api/city/reload')).body).toMatchObject({ mode: 'graph', degraded: null });
    expect(host.runtime.routing.plan({ from: { lat: 49.8419, lon: 24.0316 }, to: { lat: 49.8331, lon: 24.0561 }, depart_at: Date.parse('2026-12-07T10:00:00+02:00') })!.legs.map((l) => l.mode)).toEqual(['walk', 'transit', 'walk']);
  });
});

describe('tessera city', { timeout: 120_000 }, () => {
  beforeAll(() => requireBuild());

  it('info shows the shipped package; verify passes it and fails a tampered copy naming the file', async () => {
    const info = await tessera(['city', 'info', SHIPPED]);
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/valid {4}lviv@1\.0\.0 \(lviv\)/);
    expect(info.stdout).toMatch(/transit {2}3 lines, 17 stops/);
    expect((await tessera(['city', 'verify', SHIPPED])).status).toBe(0);
    const copy = join(tempDir('tessera-city-cli-'), 'lviv');
    cpSync(SHIPPED, copy, { recursive: true });
    writeFileSync(join(copy, 'graph.json'), readFileSync(join(copy, 'graph.json'), 'utf8').replace('Rynok Square', 'Rynok Squares'));
    const bad = await tessera(['city', 'verify', copy]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/error CITY_PACKAGE_INVALID: .*graph\.json does not match the cid/);
  });

  it('sign writes the same bytes as the committed package', async () => {
    const out = join(tempDir('tessera-city-sign-'), 'lviv');
    const signed = await tessera(['city', 'sign', join(ROOT, 'resources', 'city', 'src', 'lviv'), '--key', join(ROOT, 'plugins', 'dev-key'), '--out', out]);
    expect(signed.status, signed.stderr).toBe(0);
    expect(readFileSync(join(out, 'package.json'))).toEqual(readFileSync(join(SHIPPED, 'package.json')));
    expect(readFileSync(join(out, 'gtfs', 'stop_times.txt'))).toEqual(readFileSync(join(SHIPPED, 'gtfs', 'stop_times.txt')));
  });
});
