/**
 * Failures of the store itself, as opposed to failures of what is written (issue 13 points 7–9): another process
 * holds the write lock (`SQLITE_BUSY`, `SQLITE_LOCKED`), the disk is full (`SQLITE_FULL`), the disk or the file
 * fails (`SQLITE_IOERR…`, `SQLITE_READONLY…`, `SQLITE_CANTOPEN`). Such a failure says nothing about the write:
 * the same write succeeds once the lock is free or space returns. So a caller keeps or retries it rather than
 * dropping it, answers with a retryable code, and a loop on a timer logs it once and tries again next time.
 */
import type Database from 'better-sqlite3';
import { TesseraError } from '../../common/errors.js';
import type { Logger } from '../log/index.js';

const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
};

/** Another connection (usually another process) holds the lock this write needed, for longer than busy_timeout. */
export function isStoreBusy(err: unknown): boolean {
  const code = codeOf(err);
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') || code === 'STORE_BUSY';
}

/** The disk holding the database (or its WAL) is full. */
export function isStoreFull(err: unknown): boolean {
  const code = codeOf(err);
  return code === 'SQLITE_FULL' || code === 'STORE_FULL';
}

/** Any failure of the store rather than of the write: locked, full, or an I/O error of the disk or file. */
export function isStoreFailure(err: unknown): boolean {
  if (isStoreBusy(err) || isStoreFull(err)) return true;
  const code = codeOf(err);
  return code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'STORE_UNAVAILABLE';
}

/**
 * A locked or full store as the TesseraError its caller answers with (STORE_BUSY 503, STORE_FULL 507; both say
 * nothing was written, so the caller must only use this when that is true); any other error unchanged.
 */
export function toStoreError(err: unknown): unknown {
  if (err instanceof TesseraError) return err;
  if (isStoreBusy(err)) {
    return new TesseraError('STORE_BUSY', 'Another process holds the database\'s write lock; nothing of this request was written. Retry shortly.', { cause: err });
  }
  if (isStoreFull(err)) {
    return new TesseraError('STORE_FULL', 'The disk holding the database is full; nothing of this request was written. Free some space and retry.', { cause: err });
  }
  return err;
}

export interface FailureLog {
  /** Logs `err` unless the last failure was of the same kind (same code, or same message when there is none). */
  failed(err: unknown, fields?: Record<string, unknown>): void;
  /** The work succeeded: logs the recovery once if it had failed, and forgets the last failure. */
  succeeded(fields?: Record<string, unknown>): void;
}

/**
 * For work that runs again and again on a timer (a schedule tick, a delivery poll, a flush): a failure that
 * repeats every tick is logged once, until it changes or the work succeeds, not several times a second.
 */
export function createFailureLog(logger: Logger, what: string): FailureLog {
  let last: string | undefined;
  return {
    failed(err, fields = {}) {
      const kind = isStoreBusy(err) ? 'busy' : isStoreFull(err) ? 'full' : codeOf(err) || (err instanceof Error ? err.message : String(err));
      if (kind === last) return;
      last = kind;
      logger.warn(`${what} failed; retrying (said once until the failure changes)`, { ...fields, error: err });
    },
    succeeded(fields = {}) {
      if (last === undefined) return;
      last = undefined;
      logger.info(`${what} works again`, fields);
    },
  };
}

/**
 * Whether a write could take the database's write lock right now, without waiting (`BEGIN IMMEDIATE` with no busy
 * wait, then rolled back). A loop that failed on a locked store asks this before each retry and skips the round
 * when the lock is still taken: a retry that waited busy_timeout (5 s, on the thread that serves HTTP) every
 * second left the requests of the same moment unanswered for a minute.
 */
export function writeLockFree(db: Database.Database): boolean {
  if (!db.open || db.inTransaction) return true;
  const wait = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma('busy_timeout = 0');
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return true;
  } catch (err) {
    // Any other failure is for the caller's own write to meet and handle.
    return !isStoreBusy(err);
  } finally {
    db.pragma(`busy_timeout = ${wait}`);
  }
}
