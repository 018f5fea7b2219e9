/**
 * Leases (issue 16 "Benchmark"): the round trip of an online lease grant — a device-signed `POST /v1/leases/grant`
 * over real HTTP to the cloud on PGlite (signature check, the entitlement row locked, rights counted, a signed lease,
 * a feed entry, one commit) — p95 in ms, against a device-signed `GET /v1/sync/head` (the same authentication and
 * one read) on the same server and connection in the same run.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEVICE_HEADERS, enrollSigningBytes, requestSigningBytes } from '../../main/common/cloud.js';
import { toBase64 } from '../../main/common/dsse.js';
import { startCloud } from '../../main/cloud/index.js';
import type { RunningCloud } from '../../main/cloud/index.js';
import { generateKeyPair } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { AnyBenchmark, FigureSide } from './harness.js';

const SAMPLES = 300;
const PRODUCT = `b3:${'c3'.repeat(32)}`;

interface World {
  cloud: RunningCloud;
  dir: string;
  key: SigningKey;
  serial: string;
}

let started: Promise<World> | undefined;
const world = () =>
  (started ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-lease-'));
    const cloud = await startCloud({ dataDir: dir, port: 0, logger: createMemoryLogger(), limits: { ratePerMinute: 1_000_000 } });
    const admin = (await json<{ admin_token: string }>(cloud.url, 'POST', '/v1/tenants', { id: 'bench', name: 'Bench' }, { authorization: `Bearer ${cloud.rootToken}` })).admin_token;
    const auth = { authorization: `Bearer ${admin}` };
    const { code } = await json<{ code: string }>(cloud.url, 'POST', '/v1/enrollment-codes', { role: 'redeemer' }, auth);
    const key = generateKeyPair();
    const { challenge } = await json<{ challenge: string }>(cloud.url, 'POST', '/v1/enroll/challenge', { code });
    await json(cloud.url, 'POST', '/v1/enroll', { code, challenge, public_key: key.publicKeyPem, signature: toBase64(key.sign(enrollSigningBytes(code, challenge))) });
    await json(cloud.url, 'POST', '/v1/products', { product_cid: PRODUCT, protection: 'prevent', deny_max_age_s: 3600 }, auth);
    const now = Date.now();
    const { serial } = await json<{ serial: string }>(cloud.url, 'POST', '/v1/entitlements', {
      product_cid: PRODUCT, kind: 'multi_use', uses: 1_000_000, valid_from: new Date(now - 60_000).toISOString(), valid_until: new Date(now + 86_400_000).toISOString(), venues: [],
    }, auth);
    return { cloud, dir, key, serial };
  })());

async function json<T = unknown>(origin: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(`${origin}${path}`, { method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** A device-signed request, signed exactly as the device's sync client signs (common/cloud.ts). */
function signed(w: World, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const raw = body === undefined ? '' : JSON.stringify(body);
  const time = new Date().toISOString();
  const sig = w.key.sign(requestSigningBytes(method, path, time, createHash('sha256').update(raw).digest('hex')));
  return json(w.cloud.url, method, path, body, { [DEVICE_HEADERS.device]: w.key.keyid, [DEVICE_HEADERS.time]: time, [DEVICE_HEADERS.signature]: toBase64(sig) });
}

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1]!;

const side = (name: string, grant: boolean): FigureSide => ({
  name,
  async measure() {
    const w = await world();
    const latencies: number[] = [];
    for (let i = 0; i < SAMPLES + 20; i++) {
      const t0 = performance.now();
      if (grant) await signed(w, 'POST', '/v1/leases/grant', { serial: w.serial, rights: 1 });
      else await signed(w, 'GET', '/v1/sync/head');
      if (i >= 20) latencies.push(performance.now() - t0);
    }
    return p95(latencies);
  },
});

export const benchmarks: AnyBenchmark[] = [
  {
    kind: 'figure',
    name: 'cloud: lease grant round trip p95 over HTTP (PGlite)',
    unit: 'ms',
    candidate: side('POST /v1/leases/grant (device-signed) p95', true),
    baselines: [side('GET /v1/sync/head (device-signed) p95', false)],
  },
];

export async function dispose(): Promise<void> {
  if (!started) return;
  const w = await started;
  await w.cloud.close();
  rmSync(w.dir, { recursive: true, force: true });
}
