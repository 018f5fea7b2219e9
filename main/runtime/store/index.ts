/**
 * The device's one SQLite database (DESIGN.md "Data"): better-sqlite3, WAL mode, versioned migrations.
 *
 * The store owns the migration machinery; each runtime module owns its tables and registers its own ordered
 * migrations under its module name. A module never reads another module's tables.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import type { Logger } from '../log/index.js';
import { startCheckpointer } from './checkpointer.js';
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
  /** Checkpoints the WAL and closes the file. Idempotent. */
  close(): void;
}

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
    db.pragma('busy_timeout = 5000');
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
  } catch (cause) {
    throw new TesseraError('STORE_UNAVAILABLE', `Cannot open the database ${path}: ${(cause as Error).message}`, { cause });
  }

  const checkpointer: Checkpointer | undefined = options.backgroundCheckpoint && path !== ':memory:' ? startCheckpointer(db, path, logger) : undefined;
  const currentVersion = db.prepare<[string], { v: number | null }>('SELECT MAX(version) AS v FROM _migrations WHERE module = ?');
  const recordMigration = db.prepare('INSERT INTO _migrations (module, version, name, applied_at) VALUES (?, ?, ?, ?)');

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
