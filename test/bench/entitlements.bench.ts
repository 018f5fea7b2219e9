/**
 * Entitlements (issue 14 "Benchmark"):
 * 1. Token verification per second (decode: base45 → inflate → CBOR → claims; issuer lookup; Ed25519 over the
 *    Sig_structure) against a bare node:crypto Ed25519 verify of the same bytes. Target ≥ 0.8× the bare verify.
 * 2. Redemption end to end over HTTP (decode → checks → ledger → signed REDEMPTION receipt, one SQLite commit),
 *    8 staff screens in flight on 8 keep-alive connections, each redeeming a fresh multi-use token: req/s against
 *    GET /healthz on the same server and client, and the p95 latency (target ≤ 25 ms).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { decodeToken, encodeToken, kidOfKeyid, verifyToken } from '../../main/common/entitlement-token.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { generateKeyPair, verifyEd25519 } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { AnyBenchmark, AsyncSide, Benchmark, FigureSide } from './harness.js';
import { Connection, requestHead } from './http-client.js';

const IN_FLIGHT = 8;
const VERIFY_RUNS = 2000;

// ---- 1. verification
const issuer = generateKeyPair();
let started: Promise<{ host: RunningHost; dir: string }> | undefined;
const host = () =>
  (started ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-ent-'));
    return { host: await startHost({ dataDir: dir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} }), dir };
  })());

let sample: string | undefined;
/** The sample 48-hour pass with 3 venues. */
function sampleCode(): string {
  return (sample ??= (() => {
    return encodeToken({ serial: '0123456789abcdef01234567', product_cid: `b3:${'ab'.repeat(32)}`, kind: 'time_pass', rights: 1, nbf: 1_700_000_000, exp: 2_000_000_000, venues: ['lviv.museum-history', 'lviv.museum-art', 'lviv.pharmacy-museum'], issuer_keyid: issuer.keyid }, (m) => issuer.sign(m));
  })());
}

const lookup = (kid: string) => (kid === kidOfKeyid(issuer.keyid) ? { state: 'trusted' as const, keyid: issuer.keyid, publicKeyRaw: issuer.publicKeyRaw } : { state: 'unknown' as const });

const verification: Benchmark = {
  name: 'entitlements: verify a token (decode + issuer + Ed25519) vs a bare Ed25519 verify of the same bytes',
  opsPerRun: 1,
  runsPerRound: VERIFY_RUNS,
  candidate: {
    name: 'verifyToken(code) with node:crypto',
    setup() {
      const code = sampleCode();
      return { run: () => void (verifyToken(code, lookup, verifyEd25519).ok || fail('token did not verify')) };
    },
  },
  baseline: {
    name: 'bare verifyEd25519(sig, Sig_structure, key)',
    setup() {
      const decoded = decodeToken(sampleCode());
      if (!decoded.ok) throw new Error('sample did not decode');
      const { signature, signed } = decoded.token;
      const key = issuer.publicKeyRaw;
      return { run: () => void (verifyEd25519(signature, signed, key) || fail('bare verify failed')) };
    },
  },
};
function fail(message: string): never {
  throw new Error(message);
}

// ---- 2. redemption over HTTP

/** Codes issued by the device for a round: multi-use with enough uses that no redemption is refused. */
function codesFor(h: RunningHost, n: number): string[] {
  return Array.from({ length: n }, (_, i) => h.runtime.entitlements.issue({
    product_runtime_session_id: `prs_bench_${i}`, product_cid: `b3:${'ab'.repeat(32)}`, product_ref: 'bench@1.0.0', kind: 'multi_use', uses: 1_000_000,
    valid_from: Date.now() - 60_000, valid_until: Date.now() + 86_400_000, venues: ['lviv.museum-art'],
  }).code);
}

async function burst(path: string, bodyOf: (i: number) => string | undefined, token: string, total: number): Promise<{ latencies: number[]; seconds: number }> {
  const { host: h } = await host();
  const conns = await Promise.all(Array.from({ length: IN_FLIGHT }, () => Connection.open(h.origin)));
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(conns.map(async (c) => {
    while (next < total) {
      const i = next++;
      const body = bodyOf(i);
      const head = requestHead(body === undefined ? 'GET' : 'POST', path, new URL(h.origin).host, token, body);
      const start = performance.now();
      const answer = await c.send(head, body ?? '');
      latencies.push(performance.now() - start);
      if (answer.status !== 200) throw new Error(`${path} answered ${answer.status}`);
      if (body !== undefined && !answer.body.includes('"REDEEMED"')) throw new Error(`not redeemed: ${answer.body.slice(0, 200)}`);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  conns.forEach((c) => c.close());
  return { latencies, seconds };
}

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)]!;
const REDEEM_OPS = 1500;

function redeemSide(): AsyncSide {
  return {
    name: 'POST /api/redeem (staff token): decode → checks → ledger → signed receipt',
    async setup() {
      const { host: h } = await host();
      const codes = codesFor(h, 64);
      const token = h.credentials.roleToken('staff');
      const head = (code: string) => JSON.stringify({ code, venue: 'lviv.museum-art', screen: 'bench' });
      const conns = await Promise.all(Array.from({ length: IN_FLIGHT }, () => Connection.open(h.origin)));
      let i = 0;
      return {
        async run() {
          const c = conns.pop()!;
          try {
            const body = head(codes[i++ % codes.length]!);
            const answer = await c.send(requestHead('POST', '/api/redeem', new URL(h.origin).host, token, body), body);
            if (answer.status !== 200) throw new Error(`redeem answered ${answer.status}`);
          } finally {
            conns.push(c);
          }
        },
        teardown: () => conns.forEach((c) => c.close()),
      };
    },
  };
}

function healthSide(): AsyncSide {
  return {
    name: 'GET /healthz, public, same server and client',
    async setup() {
      const { host: h } = await host();
      const conns = await Promise.all(Array.from({ length: IN_FLIGHT }, () => Connection.open(h.origin)));
      const head = requestHead('GET', '/healthz', new URL(h.origin).host, 'none');
      return {
        async run() {
          const c = conns.pop()!;
          try {
            await c.send(head);
          } finally {
            conns.push(c);
          }
        },
        teardown: () => conns.forEach((c) => c.close()),
      };
    },
  };
}

const p95Side = (name: string, redeem: boolean): FigureSide => ({
  name,
  async measure() {
    const { host: h } = await host();
    if (redeem) {
      const codes = codesFor(h, 64);
      const r = await burst('/api/redeem', (i) => JSON.stringify({ code: codes[i % codes.length], venue: 'lviv.museum-art', screen: 'bench' }), h.credentials.roleToken('staff'), REDEEM_OPS);
      return p95(r.latencies);
    }
    return p95((await burst('/healthz', () => undefined, 'none', REDEEM_OPS)).latencies);
  },
});

export const benchmarks: AnyBenchmark[] = [
  verification,
  {
    kind: 'throughput',
    name: 'entitlements: redemption end to end over HTTP, 8 staff screens in flight',
    inFlight: IN_FLIGHT,
    ops: REDEEM_OPS,
    warmup: 200,
    candidate: redeemSide(),
    baselines: [healthSide()],
  },
  {
    kind: 'figure',
    name: 'entitlements: redemption p95 latency over HTTP at 8 concurrent staff screens',
    unit: 'ms',
    candidate: p95Side('POST /api/redeem p95', true),
    baselines: [p95Side('GET /healthz p95', false)],
    target: { max: 25 },
  },
];

export async function dispose(): Promise<void> {
  if (!started) return;
  const { host: h, dir } = await started;
  await h.close();
  rmSync(dir, { recursive: true, force: true });
}
