/**
 * The device's one SQLite database (DESIGN.md "Data"): better-sqlite3, WAL mode, versioned migrations.
 *
 * The store owns the migration machinery; each runtime module owns its tables and registers its own ordered
 * migrations under its module name. A module never reads another module's tables.
 */
import Database from 'better-sqlite3';
import { mkdirSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import type { Logger } from '../log/index.js';
import { startCheckpointer } from './checkpointer.js';
import { isStoreBusy, isStoreFull } from './failures.js';
import type { Checkpointer } from './checkpointer.js';

export type Db = Database.Database;

export interface Migration {
  /** 1, 2, 3… without gaps; never edit a migration once released, add the next one. */
  version: number;
  name: string;
  up(db: Db): void;
}

export interface Store {
  readonly path: string;
  readonly db: Db;
  readonly isOpen: boolean;
  /** Apply `module`'s pending migrations, each in its own transaction. Returns the module's schema version. */
  migrate(module: string, migrations: readonly Migration[]): number;
  /** Applied schema version per module. */
  versions(): Record<string, number>;
  /** `PRAGMA integrity_check`; returns "ok" or the problems SQLite lists. */
  integrityCheck(): string[];
  /**
   * Whether a write commits now (what `/readyz` reports, issue 13 point 9): a one-row write to `_store_probe`,
   * committed, waiting at most {@link PROBE_BUSY_MS} for the lock. At most one probe per {@link PROBE_EVERY_MS};
   * calls in between get the last answer. Never throws.
   */
  writable(): StoreWritable;
  /** Checkpoints the WAL and closes the file. Idempotent. */
  close(): void;
}

export type StoreWritable =
  | { ok: true }
  | { ok: false; code: 'STORE_FULL' | 'STORE_BUSY' | 'STORE_UNAVAILABLE'; reason: string; free_bytes?: number };

/** How long a write waits for another connection's lock before SQLITE_BUSY (STORE_BUSY). */
export const BUSY_TIMEOUT_MS = 5_000;
/** How long the writability probe waits for the lock: a probe must not hold up the thread that serves HTTP. */
export const PROBE_BUSY_MS = 250;
/** The writability probe commits at most this often. */
export const PROBE_EVERY_MS = 1_000;

export interface StoreOptions {
  path: string;
  logger?: Logger;
  /** `NORMAL` (default) keeps every committed transaction through a process crash; `FULL` also through power loss. */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * Checkpoint the WAL on a worker thread (checkpointer.ts) instead of in the commit that crosses SQLite's
   * threshold. The runtime turns it on for its database; default off (tools and tests opening a file briefly).
   */
  backgroundCheckpoint?: boolean;
}

export function openStore(options: StoreOptions): Store {
  const { path, logger } = options;
  if (path !== ':memory:') {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot create the data folder ${dirname(path)}: ${(cause as Error).message}`, { cause });
    }
  }
  let db: Db;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Savepoints (one per request in a group commit) keep their undo pages in memory, not in a temp file: with
    // the default, every page a request touched was written to disk twice.
    db.pragma('temp_store = MEMORY');
    // 32 MiB of page cache (the default is 2 MiB): the random-keyed indexes of the receipt tables stay cached.
    db.pragma('cache_size = -32768');
    db.exec(`CREATE TABLE IF NOT EXISTS _migrations (
      module     TEXT    NOT NULL,
      version    INTEGER NOT NULL,
      name       TEXT    NOT NULL,
      applied_at TEXT    NOT NULL,
      PRIMARY KEY (module, version)
    ) STRICT`);
    db.exec('CREATE TABLE IF NOT EXISTS _store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL) STRICT');
  } catch (cause) {
    throw new TesseraError('STORE_UNAVAILABLE', `Cannot open the database ${path}: ${(cause as Error).message}`, { cause });
  }

  const checkpointer: Checkpointer | undefined = options.backgroundCheckpoint && path !== ':memory:' ? startCheckpointer(db, path, logger) : undefined;
  const currentVersion = db.prepare<[string], { v: number | null }>('SELECT MAX(version) AS v FROM _migrations WHERE module = ?');
  const recordMigration = db.prepare('INSERT INTO _migrations (module, version, name, applied_at) VALUES (?, ?, ?, ?)');
  const probe = db.prepare('INSERT INTO _store_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at');
  let lastProbe: { at: number; result: StoreWritable } | undefined;
  const freeBytes = (): number | undefined => {
    if (path === ':memory:') return undefined;
    try {
      const s = statfsSync(dirname(path));
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  };
  const probeNow = (): StoreWritable => {
    if (!db.open) return { ok: false, code: 'STORE_UNAVAILABLE', reason: `the database ${path} is closed` };
    if (db.inTransaction) return { ok: true }; // a transaction is open: the store is writing
    db.pragma(`busy_timeout = ${PROBE_BUSY_MS}`);
    try {
      probe.run(Date.now());
      return { ok: true };
    } catch (err) {
      const free = freeBytes();
      if (isStoreFull(err)) {
        return { ok: false, code: 'STORE_FULL', reason: `the disk holding ${path} is full (${free ?? 'unknown'} bytes free); free some space and Tessera writes again by itself`, ...(free === undefined ? {} : { free_bytes: free }) };
      }
      if (isStoreBusy(err)) return { ok: false, code: 'STORE_BUSY', reason: `another process holds the write lock of ${path}` };
      return { ok: false, code: 'STORE_UNAVAILABLE', reason: `${path} cannot be written: ${(err as Error).message}`, ...(free === undefined ? {} : { free_bytes: free }) };
    } finally {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  };

  return {
    path,
    db,
    get isOpen() {
      return db.open;
    },
    migrate(module, migrations) {
      migrations.forEach((m, i) => {
        if (m.version !== i + 1) throw new Error(`${module}: migration #${i} has version ${m.version}, expected ${i + 1}`);
      });
      const applied = currentVersion.get(module)?.v ?? 0;
      if (applied > migrations.length) {
        throw new TesseraError(
          'STORE_TOO_NEW',
          `${path}: module "${module}" is at schema version ${applied} but this Tessera knows only ${migrations.length}. Upgrade Tessera or use another data folder.`,
        );
      }
      for (const m of migrations.slice(applied)) {
        try {
          db.transaction(() => {
            m.up(db);
            recordMigration.run(module, m.version, m.name, new Date().toISOString());
          })();
          logger?.info('migration applied', { module, version: m.version, name: m.name });
        } catch (cause) {
          throw new TesseraError('STORE_MIGRATION_FAILED', `${module} migration ${m.version} (${m.name}) failed: ${(cause as Error).message}`, { cause });
        }
      }
      return migrations.length;
    },
    versions() {
      const rows = db.prepare<[], { module: string; v: number }>('SELECT module, MAX(version) AS v FROM _migrations GROUP BY module').all();
      return Object.fromEntries(rows.map((r) => [r.module, r.v]));
    },
    integrityCheck() {
      const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
      return rows.map((row) => row.integrity_check);
    },
    writable() {
      const now = Date.now();
      if (lastProbe && now - lastProbe.at < PROBE_EVERY_MS && db.open) return lastProbe.result;
      lastProbe = { at: now, result: probeNow() };
      return lastProbe.result;
    },
    close() {
      if (!db.open) return;
      checkpointer?.stop();
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
      } catch (err) {
        logger?.warn('WAL checkpoint at close failed', { error: err });
      }
      db.close();
    },
  };
}
