/**
 * The cloud's database (issue 16 §1): PostgreSQL through node-postgres when a URL names a server, else PGlite
 * (Postgres compiled to WebAssembly, in-process) in a folder, so that one command starts a working cloud on a
 * laptop. One set of migrations and one set of SQL text serve both: {@link Db} is the whole surface the cloud uses.
 *
 * Values come back the same from both: `bigint` as a JavaScript number (ids and counts stay below 2^53), `bytea`
 * as a Uint8Array (node-postgres' Buffer is one), `jsonb` parsed, `timestamptz` as a Date.
 *
 * Transactions: {@link Db.tx} runs its function on one connection inside BEGIN … COMMIT (ROLLBACK on a throw). PGlite
 * is one connection: its transactions are serialized with everything else, which is what an embedded cloud needs.
 * Code that must serialize writers on PostgreSQL takes a row lock (`SELECT … FOR UPDATE`), which PGlite accepts too.
 */
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { TesseraError } from '../common/errors.js';
import { MIGRATIONS } from './migrations.js';

/** One connection's (or the pool's) way to run SQL; `$1, $2…` placeholders in both drivers. */
export interface Sql {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface Db extends Sql {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction; its result once COMMIT succeeded. A throw rolls everything back and is rethrown. */
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenDbOptions {
  /** `postgres://…`: a PostgreSQL server. Absent: PGlite in `dataDir` (in memory when that is absent too). */
  url?: string;
  dataDir?: string;
  /** Pool size for PostgreSQL (default 10). */
  max?: number;
}

// node-postgres returns int8 (counts, bigserial) as strings by default; the cloud's numbers fit in 2^53.
pg.types.setTypeParser(20, (text) => Number(text));

/** Opens the database and brings its schema up to date. @throws TesseraError STORE_UNAVAILABLE when it cannot be reached. */
export async function openDb(options: OpenDbOptions = {}): Promise<Db> {
  const db = options.url ? await openPostgres(options.url, options.max ?? 10) : await openPglite(options.dataDir);
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return db;
}

async function openPostgres(url: string, max: number): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 10_000 });
  // An idle client whose server went away must not crash the process: the next query reports it.
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new TesseraError('STORE_UNAVAILABLE', `Cannot reach PostgreSQL at ${redact(url)}: ${(err as Error).message}`);
  }
  const run = async <R>(client: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[]) => (await client.query(text, params as unknown[] | undefined)).rows as R[];
  return {
    kind: 'postgres',
    query: (text, params) => run(pool, text, params),
    async tx(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({ query: (text, params) => run(client, text, params) });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

async function openPglite(dataDir: string | undefined): Promise<Db> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  let lite: PGlite;
  try {
    lite = await PGlite.create(dataDir);
  } catch (err) {
    throw new TesseraError('STORE_UNAVAILABLE', `Cannot open the embedded database in ${dataDir ?? 'memory'}: ${(err as Error).message}`);
  }
  return {
    kind: 'pglite',
    query: async (text, params) => (await lite.query(text, params as unknown[] | undefined)).rows as never[],
    tx: (fn) => lite.transaction((t) => fn({ query: async (text, params) => (await t.query(text, params as unknown[] | undefined)).rows as never[] })),
    close: () => lite.close(),
  };
}

/** The advisory lock key that serializes schema set-up between clouds sharing a database ("tess" in ASCII). */
const MIGRATION_LOCK_KEY = 0x74657373;

/** Applies the migrations not applied yet, each in its own transaction, in order. */
async function migrate(db: Db): Promise<void> {
  // Two clouds starting at once on one empty PostgreSQL database would both run CREATE TABLE IF NOT EXISTS and one
  // fail on the catalog's unique index: the first holds a transaction-scoped advisory lock, the second waits for it.
  await db.tx(async (sql) => {
    await sql.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await sql.query('CREATE TABLE IF NOT EXISTS cloud_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
  });
  const done = new Set((await db.query<{ version: number }>('SELECT version FROM cloud_migrations')).map((r) => r.version));
  const newest = Math.max(0, ...done);
  const known = Math.max(0, ...MIGRATIONS.map((m) => m.version));
  if (newest > known) throw new TesseraError('STORE_TOO_NEW', `The cloud database is at schema ${newest}; this Tessera knows up to ${known}. Run the newer Tessera.`);
  for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    try {
      await db.tx(async (sql) => {
        // Two clouds starting on one PostgreSQL database: the second waits here, then finds the version applied.
        await sql.query('LOCK TABLE cloud_migrations IN EXCLUSIVE MODE');
        if ((await sql.query('SELECT 1 FROM cloud_migrations WHERE version = $1', [m.version])).length > 0) return;
        for (const statement of m.up) await sql.query(statement);
        await sql.query('INSERT INTO cloud_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      });
    } catch (err) {
      throw new TesseraError('STORE_MIGRATION_FAILED', `Cloud migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
    }
  }
}

/** A database URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
