/**
 * One runtime per data folder (issue 13 point 10). Two runtimes on one folder each resume the other's live runs
 * and repeat their tool effects, so the runtime holds an exclusive lock on `<data>/tessera.lock` for its whole
 * life and a second one refuses to start (`DATA_DIR_LOCKED`, naming the holder's pid).
 *
 * Why an SQLite lock and not a pid file created with O_EXCL: a pid file outlives a holder killed with `kill -9`,
 * and deciding that it is stale means checking whether its pid is alive — which is wrong once the pid is reused
 * by an unrelated process, and racy when two starts find the same stale file and both take it over. Here the
 * lock is the operating system's own file lock (POSIX `fcntl` on Unix, `LockFileEx` on Windows) taken through
 * SQLite's `locking_mode = EXCLUSIVE` on a separate small database file: the kernel drops it when the holder's
 * process ends, however it ends, so there is no stale lock to detect, and taking it is one atomic step. SQLite
 * also makes two connections of one process exclude each other (POSIX locks alone would not), and better-sqlite3
 * is already here. The holder's pid is written beside it, in `<data>/tessera.pid`, only to name it in the error:
 * that file proves nothing (a killed holder leaves it behind); the lock decides.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';

/** The database file whose exclusive lock is the data folder's lock. */
export const LOCK_FILE = 'tessera.lock';
/** Who holds the lock, as JSON `{pid, started_at}`: for the message a second start shows. */
export const LOCK_OWNER_FILE = 'tessera.pid';

export interface DataDirLock {
  readonly dataDir: string;
  /** Releases the lock (closing its file) and removes the owner file. Idempotent. */
  release(): void;
}

interface Owner {
  pid: number;
  started_at: string;
}

function readOwner(dataDir: string): Owner | undefined {
  try {
    const owner = JSON.parse(readFileSync(join(dataDir, LOCK_OWNER_FILE), 'utf8')) as Partial<Owner>;
    return typeof owner.pid === 'number' ? { pid: owner.pid, started_at: String(owner.started_at ?? 'an unknown time') } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the data folder's lock (creating the folder if needed), or throws `DATA_DIR_LOCKED` when another runtime
 * — in this process or another — holds it. Never waits: a second start fails at once.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot create the data folder ${dataDir}: ${(cause as Error).message}`, { cause });
  }
  const file = join(dataDir, LOCK_FILE);
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (cause) {
    throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot open the lock file ${file}: ${(cause as Error).message}`, { cause });
  }
  try {
    db.pragma('busy_timeout = 0');
    // The rollback journal stays in memory: no -journal file beside the lock, nothing to recover after a kill.
    db.pragma('journal_mode = MEMORY');
    db.pragma('locking_mode = EXCLUSIVE');
    // In EXCLUSIVE locking mode a connection that has written keeps its exclusive lock until it closes.
    db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS lock (id INTEGER PRIMARY KEY); COMMIT');
  } catch (cause) {
    db.close();
    const code = (cause as { code?: unknown }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      const owner = readOwner(dataDir);
      const who = owner && owner.pid !== process.pid ? `Tessera process ${owner.pid} (started ${owner.started_at})` : owner ? `another runtime in this process (pid ${owner.pid})` : 'another Tessera process (its pid is not recorded)';
      throw new TesseraError(
        'DATA_DIR_LOCKED',
        `The data folder ${dataDir} is in use by ${who}. One runtime per data folder: stop that one first, or start this one with another --data folder.`,
        { details: { data_dir: dataDir, ...(owner ? { pid: owner.pid } : {}) }, cause },
      );
    }
    throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot lock the data folder with ${file}: ${(cause as Error).message}`, { cause });
  }
  const ownerFile = join(dataDir, LOCK_OWNER_FILE);
  const me: Owner = { pid: process.pid, started_at: new Date().toISOString() };
  try {
    // Written whole or not at all (a reader never sees half a file).
    writeFileSync(`${ownerFile}.tmp`, JSON.stringify(me) + '\n', { mode: 0o600 });
    renameSync(`${ownerFile}.tmp`, ownerFile);
  } catch {
    // Only the message of a second start loses the pid; the lock holds regardless.
  }
  let released = false;
  return {
    dataDir,
    release() {
      if (released) return;
      released = true;
      // The owner file first: once the lock is free another runtime may write its own.
      if (readOwner(dataDir)?.pid === me.pid) rmSync(ownerFile, { force: true });
      db.close();
    },
  };
}
