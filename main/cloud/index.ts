/**
 * The Tessera cloud as one call (issue 16 §1): `startCloud` opens the database (PostgreSQL when a URL names one, else
 * PGlite in `<dataDir>/pglite`), creates the operator's root token once (`<dataDir>/root-token`, mode 0600), registers
 * every route module and listens. `tessera cloud start` (main/host/cli-cloud.ts) is a thin shell around it.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { TesseraError } from '../common/errors.js';
import { writeKeyFileAtomic } from '../runtime/keys/index.js';
import type { Logger } from '../runtime/log/index.js';
import { lockDataDir } from '../runtime/store/lock.js';
import type { DataDirLock } from '../runtime/store/lock.js';
import { VERSION } from '../runtime/version.js';
import { createCloudServer, newSecret } from './app.js';
import type { CloudLimits, IngestHook } from './app.js';
import { openDb, redact } from './db.js';
import type { Db } from './db.js';
import { deviceRoutes } from './devices.js';
import { enrollRoutes } from './enroll.js';
import { createEntitlementIngestHook, entitlementRoutes } from './entitlements.js';
import { leaseRoutes } from './leases.js';
import { receiptRoutes } from './receipts.js';
import { tenantRoutes } from './tenants.js';
import { cloudUiRoutes } from './ui.js';

/** Every route module of the cloud, in registration order. Each is a Fastify plugin reading `app.cloud`. */
export const CLOUD_ROUTES: ReadonlyArray<(app: FastifyInstance) => Promise<void>> = [
  tenantRoutes,
  enrollRoutes,
  deviceRoutes,
  receiptRoutes,
  entitlementRoutes,
  leaseRoutes,
  cloudUiRoutes,
];

/** Hooks run inside the receipt ingest's transaction (app.ts {@link IngestHook}), on the cloud's clock. */
export function cloudIngestHooks(clock: () => number = Date.now): IngestHook[] {
  return [createEntitlementIngestHook(clock)];
}

/** The operator's token file in the cloud's data folder. */
export const ROOT_TOKEN_FILE = 'root-token';
export const DEFAULT_CLOUD_PORT = 4700;

export interface StartCloudOptions {
  /** Holds `root-token` and, without a database URL, the embedded database (`pglite/`). Created when missing. */
  dataDir: string;
  /** A `postgres://` URL; default `env.DATABASE_URL`, else PGlite in `<dataDir>/pglite`. */
  database?: string;
  host?: string;
  /** Default 4700; 0 picks a free port. */
  port?: number;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  limits?: Partial<CloudLimits>;
  clock?: () => number;
}

export interface RunningCloud {
  /** `http://host:port` it listens on. */
  url: string;
  rootToken: string;
  rootTokenFile: string;
  /** Where its data is: the redacted PostgreSQL URL, or the PGlite folder. */
  database: string;
  db: Db;
  app: FastifyInstance;
  /** Stops listening (finishing open requests), then closes the database. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The operator's root token: read from `<dataDir>/root-token`, or made (256 random bits' worth) and written there
 * with mode 0600 on the first start. @throws TesseraError DATA_DIR_UNUSABLE when the folder cannot hold it.
 */
export function loadOrCreateRootToken(dataDir: string): { token: string; file: string } {
  const file = join(dataDir, ROOT_TOKEN_FILE);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!existsSync(file)) {
      try {
        writeKeyFileAtomic(file, `${newSecret('ttr')}\n`, { mode: 0o600, overwrite: false });
      } catch (err) {
        // Another cloud starting on the same folder wrote it first: use theirs.
        if (!existsSync(file)) throw err;
      }
    }
    const token = readFileSync(file, 'utf8').trim();
    if (token.length < 16) throw new Error(`${file} holds no token; delete it to make a new one`);
    return { token, file };
  } catch (cause) {
    if (cause instanceof TesseraError) throw new TesseraError('DATA_DIR_UNUSABLE', cause.message, { cause });
    throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot keep the cloud's root token in ${dataDir}: ${(cause as Error).message}`, { cause });
  }
}

/** Opens the database, builds the server with every route module and listens. */
export async function startCloud(options: StartCloudOptions): Promise<RunningCloud> {
  const env = options.env ?? process.env;
  const url = options.database ?? (env['DATABASE_URL'] || undefined);
  const { token: rootToken, file: rootTokenFile } = loadOrCreateRootToken(options.dataDir);
  const pgliteDir = join(options.dataDir, 'pglite');
  // PGlite is one process's database: a second cloud on the same folder would corrupt it, so it is refused
  // (DATA_DIR_LOCKED, naming the holder). Clouds sharing one PostgreSQL server need no lock.
  const lock: DataDirLock | undefined = url ? undefined : lockDataDir(options.dataDir);
  let db: Db;
  try {
    db = await openDb(url ? { url } : { dataDir: pgliteDir });
  } catch (err) {
    lock?.release();
    throw err;
  }
  let app: FastifyInstance;
  try {
    app = await createCloudServer({
      db,
      logger: options.logger,
      rootToken,
      version: VERSION,
      routes: CLOUD_ROUTES,
      ingestHooks: cloudIngestHooks(options.clock),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? DEFAULT_CLOUD_PORT });
  } catch (err) {
    await db.close().catch(() => undefined);
    lock?.release();
    const code = (err as { code?: unknown }).code;
    const where = `${options.host ?? '127.0.0.1'}:${options.port ?? DEFAULT_CLOUD_PORT}`;
    if (code === 'EADDRINUSE') throw new TesseraError('PORT_IN_USE', `Port ${where} is in use. Stop the other process or pass --port (0 picks a free one).`, { cause: err });
    if (code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new TesseraError('CONFIG_INVALID', `Cannot listen on ${where}: ${(err as Error).message}. Pick another --host or --port.`, { cause: err });
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port ?? DEFAULT_CLOUD_PORT;
  const host = options.host ?? '127.0.0.1';
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const origin = `http://${shownHost}:${port}`;
  app.cloud.origin = origin;
  let closing: Promise<void> | undefined;
  return {
    url: origin,
    rootToken,
    rootTokenFile,
    database: url ? redact(url) : pgliteDir,
    db,
    app,
    close() {
      closing ??= (async () => {
        try {
          await app.close();
        } finally {
          try {
            await db.close();
          } finally {
            lock?.release();
          }
        }
      })();
      return closing;
    },
  };
}
