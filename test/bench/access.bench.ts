/**
 * The price of authorization (issue 13 §1.1–1.2): every request now passes the access hook — the Host check, the
 * route's declared access, the credential's roles (device token, four role tokens, operator sessions, tenants).
 * Candidates: GET /api/info with a role token (the longest path through the credential check short of a tenant)
 * and with a token the device does not know (refused 401, the connection closed). Baseline in the same run:
 * GET /healthz on the same server, public (the hook returns at the route's `public`), same keep-alive client.
 * One in-process runtime; 8 requests in flight on 8 keep-alive connections.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { AnyBenchmark, AsyncSide } from './harness.js';
import { Connection, requestHead } from './http-client.js';

const IN_FLIGHT = 8;
let host: Promise<{ host: RunningHost; dir: string }> | undefined;
const started = () =>
  (host ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-access-'));
    return { host: await startHost({ dataDir: dir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} }), dir };
  })());

/** A side sending `path` with `token` over a pool of keep-alive connections, one request per operation. */
function side(name: string, path: string, token: (h: RunningHost) => string, expect: number, reconnect = false): AsyncSide {
  return {
    name,
    async setup() {
      const { host: h } = await started();
      const head = requestHead('GET', path, new URL(h.origin).host, token(h));
      const idle = await Promise.all(Array.from({ length: IN_FLIGHT }, () => Connection.open(h.origin)));
      return {
        async run() {
          // A refused request's connection is closed by the server: such a side opens a new one per request.
          const connection = reconnect ? await Connection.open(h.origin) : idle.pop()!;
          try {
            const answer = await connection.send(head);
            if (answer.status !== expect) throw new Error(`${path} answered ${answer.status}, expected ${expect}`);
          } finally {
            if (reconnect) connection.close();
            else idle.push(connection);
          }
        },
        teardown: () => idle.forEach((c) => c.close()),
      };
    },
  };
}

export const benchmarks: AnyBenchmark[] = [
  {
    kind: 'throughput',
    name: 'access: an authorized request (GET /api/info, traveller role token)',
    inFlight: IN_FLIGHT,
    ops: 4000,
    warmup: 500,
    candidate: side('GET /api/info with the traveller token (access hook + credential check)', '/api/info', (h) => h.credentials.roleToken('traveller'), 200),
    baselines: [side('GET /healthz, public, same server and client', '/healthz', () => 'none', 200)],
  },
  {
    kind: 'throughput',
    name: 'access: a refused request (GET /api/info, unknown token → 401, connection closed)',
    inFlight: IN_FLIGHT,
    ops: 2000,
    warmup: 200,
    candidate: side('GET /api/info with an unknown token, a new connection each', '/api/info', () => 'not-a-token-of-this-device-0123456789', 401, true),
    baselines: [side('GET /healthz, public, a new connection each', '/healthz', () => 'none', 200, true)],
  },
];

export async function dispose(): Promise<void> {
  if (!host) return;
  const { host: h, dir } = await host;
  await h.close();
  rmSync(dir, { recursive: true, force: true });
}
