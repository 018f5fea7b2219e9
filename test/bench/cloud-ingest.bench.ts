/**
 * Cloud receipt ingest (issue 16 "Benchmark"), on PGlite (the embedded default, on disk) and on real PostgreSQL
 * when `TESSERA_BENCH_PG` names a server (or test/helpers/postgres.ts can start a throwaway cluster):
 * 1. Ingest with full verification, receipts/s: uploads of 2,000 receipts (MAX_UPLOAD_RECEIPTS) through
 *    `ingestUpload` — every signature, id, device field and chain link, the root recomputed from the stored
 *    subtrees, the consistency proof, the co-signature, all rows in one transaction — against a raw multi-row
 *    INSERT of the same rows (2,000 per statement, prepared beforehand) into a table shaped like cloud_receipts,
 *    in the same database and run.
 * 2. Catch-up of a device holding 100,000 receipts over HTTP on 127.0.0.1, in the device's batches of 500
 *    (signed requests, the device reads its signed head and consistency proof from its SQLite log for each batch),
 *    seconds; target ≤ 60 s. Baseline: the raw INSERT of the same 100,000 rows.
 * The device's 100,000 receipts (real chains, real device log) are made once, before any round.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { ReceiptUpload } from '../../main/common/cloud.js';
import { fromBase64 } from '../../main/common/dsse.js';
import type { ReceiptPayload } from '../../main/common/receipt.js';
import { DEFAULT_CLOUD_LIMITS, createCloudServer } from '../../main/cloud/app.js';
import type { CloudContext } from '../../main/cloud/app.js';
import { openDb } from '../../main/cloud/db.js';
import type { Db } from '../../main/cloud/db.js';
import { ingestUpload, receiptRoutes } from '../../main/cloud/receipts.js';
import { installFastDigests } from '../../main/runtime/digests.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createTestDevice, insertTenant, signedRequest } from '../helpers/cloud.js';
import type { TestDevice } from '../helpers/cloud.js';
import type { AnyBenchmark, FigureBenchmark, FigureSide } from './harness.js';

const DEVICE_RECEIPTS = 100_000;
const INGEST_RECEIPTS = 10_000;
const INGEST_BATCH = 2_000;
const CATCH_UP_BATCH = 500;
const RAW_BATCH = 2_000;

interface World {
  dir: string;
  device: TestDevice;
  /** The rows a raw INSERT writes, prepared once: the receipts as cloud_receipts holds them. */
  rows: Array<[number, string, string, string, string, string]>;
  uploads: ReceiptUpload[];
}

interface Target {
  name: string;
  db: Db;
  app: FastifyInstance;
  url: string;
  stop?: () => Promise<void>;
}

let world: Promise<World> | undefined;
const targets = new Map<string, Promise<Target | undefined>>();

/** The device and its 100,000 receipts in chains of 3, two capsules interleaved, in a real SQLite device log. */
function theWorld(): Promise<World> {
  return (world ??= (async () => {
    await installFastDigests();
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-cloud-'));
    const device = createTestDevice(dir);
    for (let made = 0; made < DEVICE_RECEIPTS; made += 10_000) device.add(10_000);
    const rows = device.envelopes.map((env, i): [number, string, string, string, string, string] => {
      const p = JSON.parse(new TextDecoder().decode(fromBase64(env.payload))) as ReceiptPayload;
      return [i, device.ids[i]!, JSON.stringify(env), p.kind, p.capsule, p.issued_at];
    });
    const uploads: ReceiptUpload[] = [];
    for (let from = 0; from < INGEST_RECEIPTS; from += INGEST_BATCH) uploads.push(device.upload(from, from + INGEST_BATCH));
    return { dir, device, rows, uploads };
  })());
}

/** A cloud on `kind`'s database with the bench device enrolled, listening on 127.0.0.1; undefined when PostgreSQL is not available. */
function target(kind: 'pglite' | 'postgres'): Promise<Target | undefined> {
  let t = targets.get(kind);
  if (!t) {
    t = (async () => {
      const w = await theWorld();
      let url: string | undefined;
      let stop: (() => Promise<void>) | undefined;
      if (kind === 'postgres') {
        url = process.env['TESSERA_BENCH_PG'];
        if (!url) {
          const started = await startPostgres();
          if (!started) return undefined;
          ({ url, stop } = started);
        }
      }
      const db = await openDb(url ? { url } : { dataDir: join(w.dir, 'pglite') });
      await db.query('DROP TABLE IF EXISTS bench_raw_receipts');
      await db.query('CREATE TABLE bench_raw_receipts (tenant TEXT NOT NULL, device TEXT NOT NULL, idx BIGINT NOT NULL, id TEXT NOT NULL, envelope JSONB NOT NULL, kind TEXT NOT NULL, capsule TEXT NOT NULL, issued_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (tenant, device, idx))');
      await db.query('CREATE UNIQUE INDEX bench_raw_receipts_id ON bench_raw_receipts (tenant, id)');
      await db.query("DELETE FROM device_logs WHERE tenant = 'bench'");
      await db.query("DELETE FROM devices WHERE tenant = 'bench'");
      await db.query("DELETE FROM admin_tokens WHERE tenant = 'bench'");
      await db.query("DELETE FROM tenants WHERE id = 'bench'");
      await insertTenant(db, 'bench', [w.device.key]);
      const app = await createCloudServer({ db, logger: createMemoryLogger(), rootToken: 'bench-root', version: 'bench', routes: [receiptRoutes], limits: { ratePerMinute: 1_000_000 } });
      const address = await app.listen({ port: 0, host: '127.0.0.1' });
      return { name: kind === 'pglite' ? 'PGlite' : 'PostgreSQL', db, app, url: address, ...(stop ? { stop } : {}) };
    })();
    targets.set(kind, t);
  }
  return t;
}

/** test/helpers/postgres.ts (issue 16, H1) when it is there: a throwaway cluster. */
async function startPostgres(): Promise<{ url: string; stop: () => Promise<void> } | undefined> {
  const path = '../helpers/postgres.js';
  try {
    const mod = (await import(path)) as { startPostgres?: () => Promise<{ url: string; stop: () => Promise<void> }> };
    return mod.startPostgres ? await mod.startPostgres() : undefined;
  } catch {
    return undefined;
  }
}

/** Empties the cloud's copy of the bench device (untimed, before a round). */
async function reset(t: Target): Promise<void> {
  for (const table of ['cloud_receipts', 'cloud_capsules', 'cloud_log_nodes', 'device_logs', 'bench_raw_receipts']) await t.db.query(`DELETE FROM ${table} WHERE tenant = 'bench'`);
}

async function rawInsert(t: Target, rows: World['rows']): Promise<void> {
  for (let start = 0; start < rows.length; start += RAW_BATCH) {
    const chunk = rows.slice(start, start + RAW_BATCH);
    const values: unknown[] = [];
    const tuples = chunk.map((r, i) => {
      values.push('bench', 'device', ...r);
      const b = i * 8;
      return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}::jsonb, $${b + 6}, $${b + 7}, $${b + 8}::timestamptz)`;
    });
    await t.db.query(`INSERT INTO bench_raw_receipts (tenant, device, idx, id, envelope, kind, capsule, issued_at) VALUES ${tuples.join(', ')}`, values);
  }
}

/** Receipts/s of a timed async operation over `n` receipts, after an untimed reset. */
async function rate(t: Target, n: number, op: () => Promise<void>): Promise<number> {
  await reset(t);
  const start = performance.now();
  await op();
  return n / ((performance.now() - start) / 1000);
}

function ingestSides(kind: 'pglite' | 'postgres'): { candidate: FigureSide; baselines: FigureSide[] } {
  const name = kind === 'pglite' ? 'PGlite' : 'PostgreSQL';
  return {
    candidate: {
      name: `ingestUpload, full verification, ${INGEST_BATCH} per upload (${name})`,
      async measure() {
        const t = await need(kind);
        const w = await theWorld();
        const cloud: CloudContext = { db: t.db, logger: createMemoryLogger(), clock: Date.now, ingestHooks: [], limits: DEFAULT_CLOUD_LIMITS };
        return rate(t, INGEST_RECEIPTS, async () => {
          for (const upload of w.uploads) await ingestUpload(cloud, 'bench', w.device.key.keyid, upload);
        });
      },
    },
    baselines: [{
      name: `raw multi-row INSERT, ${RAW_BATCH} rows per statement (${name})`,
      async measure() {
        const t = await need(kind);
        const w = await theWorld();
        return rate(t, INGEST_RECEIPTS, () => rawInsert(t, w.rows.slice(0, INGEST_RECEIPTS)));
      },
    }],
  };
}

function catchUpSides(kind: 'pglite' | 'postgres'): { candidate: FigureSide; baselines: FigureSide[] } {
  const name = kind === 'pglite' ? 'PGlite' : 'PostgreSQL';
  const seconds = async (op: (t: Target, w: World) => Promise<void>) => {
    const t = await need(kind);
    const w = await theWorld();
    await reset(t);
    const start = performance.now();
    await op(t, w);
    return (performance.now() - start) / 1000;
  };
  return {
    candidate: {
      name: `POST /v1/sync/receipts over HTTP, ${CATCH_UP_BATCH} per upload (${name})`,
      measure: () => seconds(async (t, w) => {
        for (let from = 0; from < DEVICE_RECEIPTS; from += CATCH_UP_BATCH) {
          const { headers, payload } = signedRequest(w.device.key, 'POST', '/v1/sync/receipts', w.device.upload(from, Math.min(DEVICE_RECEIPTS, from + CATCH_UP_BATCH)));
          const res = await fetch(`${t.url}/v1/sync/receipts`, { method: 'POST', headers, body: payload! });
          if (res.status !== 200) throw new Error(`upload from ${from}: ${res.status} ${await res.text()}`);
          await res.arrayBuffer().catch(() => undefined);
        }
      }),
    },
    baselines: [{ name: `raw multi-row INSERT of the same rows, ${RAW_BATCH} per statement (${name})`, measure: () => seconds((t, w) => rawInsert(t, w.rows)) }],
  };
}

async function need(kind: 'pglite' | 'postgres'): Promise<Target> {
  const t = await target(kind);
  if (!t) throw new Error('No PostgreSQL: set TESSERA_BENCH_PG=postgres://… (or merge test/helpers/postgres.ts).');
  return t;
}

const ingest = (kind: 'pglite' | 'postgres'): FigureBenchmark => ({
  kind: 'figure',
  name: `cloud ingest (${kind === 'pglite' ? 'PGlite' : 'PostgreSQL'}): receipts/s with full verification vs a raw multi-row INSERT`,
  unit: 'receipts/s',
  ...ingestSides(kind),
});
const catchUp = (kind: 'pglite' | 'postgres'): FigureBenchmark => ({
  kind: 'figure',
  name: `cloud catch-up (${kind === 'pglite' ? 'PGlite' : 'PostgreSQL'}): a device holding ${DEVICE_RECEIPTS.toLocaleString('en')} receipts, seconds`,
  unit: 's',
  ...catchUpSides(kind),
  target: { max: 60 },
});

export const benchmarks: AnyBenchmark[] = [ingest('pglite'), catchUp('pglite'), ingest('postgres'), catchUp('postgres')];

export async function dispose(): Promise<void> {
  for (const t of targets.values()) {
    const open = await t.catch(() => undefined);
    if (!open) continue;
    await open.app.close();
    await open.db.close();
    await open.stop?.();
  }
  if (world) {
    const w = await world;
    w.device.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
}
