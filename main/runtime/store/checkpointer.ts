/**
 * The WAL checkpointer: copies committed pages from the write-ahead log into the database file on a worker
 * thread, with its own connection, so the thread that writes never waits for it.
 *
 * Why: with SQLite's automatic checkpoint the connection that commits the transaction crossing the threshold
 * (1,000 pages) copies those pages and fsyncs both files before its commit returns — on this machine that is
 * milliseconds of stall, every few hundred receipts, on the event loop that serves HTTP. Measured under
 * `POST /v1/run` load: about 15 % more requests per second with the copying moved here.
 *
 * How: every {@link CHECKPOINT_INTERVAL_MS} the worker runs `PRAGMA wal_checkpoint(PASSIVE)`, which never blocks
 * writers or readers. PASSIVE copies pages but never restarts the log: SQLite restarts it only when a writer
 * finds every frame copied, which under sustained load the worker alone never achieves. The writing connection
 * therefore keeps its own automatic checkpoint at {@link FALLBACK_AUTOCHECKPOINT_PAGES}, the bound on the WAL
 * under load: by then the worker has copied nearly everything, so that checkpoint finds little left to do, and
 * the next write restarts the log (and cuts the file back to {@link WAL_SIZE_LIMIT_BYTES}). That bound was 64 MiB:
 * under a burst of writes the WAL reached 82 MB, 2.7× the database, in 8 s, and on a 64 MB disk filled it (issue 13
 * point 9); at 8 MiB the same burst peaks near 10 MB. (A TRUNCATE checkpoint from the worker was tried and is
 * worse: while it waits for a gap between writes it holds the checkpoint lock, so the writer's own checkpoints
 * are skipped and the WAL grew past 50 MB.) If the worker cannot start or dies, the writing connection goes back
 * to SQLite's default threshold.
 *
 * The worker's code is a string evaluated by `worker_threads` (no separate file to find after bundling); it
 * loads the same better-sqlite3 module as this thread, by resolved path.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/index.js';
import type { Db } from './index.js';

/** How often the worker checkpoints. */
export const CHECKPOINT_INTERVAL_MS = 200;
/** What the WAL may reach under sustained writes before the writing connection checkpoints (bytes). */
export const WAL_BOUND_BYTES = 8 * 1024 * 1024;
/** The writing connection's own automatic checkpoint while the worker runs: {@link WAL_BOUND_BYTES} in 4 KiB pages. */
export const FALLBACK_AUTOCHECKPOINT_PAGES = WAL_BOUND_BYTES / 4096;
/** SQLite's default threshold, restored when the worker is gone. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1_000;
/**
 * What the WAL file is cut back to when the log restarts after a checkpoint (bytes). Without it the file keeps its
 * largest size ever (tens of MB after a burst), which on a small disk is what fills it.
 */
export const WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024;
/** How long `stop` waits for the worker to close its connection. */
const STOP_WAIT_MS = 2_000;

export interface Checkpointer {
  /** Closes the worker's connection and ends the worker; synchronous, so the caller can close the database next. */
  stop(): void;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const done = new Int32Array(workerData.done);
let db;
try {
  db = new Database(workerData.path, { fileMustExist: true });
  db.pragma('busy_timeout = 1000');
} catch (err) {
  parentPort.postMessage({ t: 'error', message: String(err && err.message) });
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
  process.exit(1);
}
let failing = false;
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    if (failing) parentPort.postMessage({ t: 'ok' });
    failing = false;
  } catch (err) {
    failing = true;
    parentPort.postMessage({ t: 'error', message: String(err && err.message) });
  }
}, workerData.interval);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  try { db.close(); } finally {
    Atomics.store(done, 0, 1);
    Atomics.notify(done, 0);
    parentPort.close();
  }
});
`;

/**
 * Starts the checkpointer for the database file `path`, which `db` (the writing connection) has open in WAL mode.
 * Returns undefined, leaving SQLite's automatic checkpoint in place, when a worker cannot be started.
 */
export function startCheckpointer(db: Db, path: string, logger?: Logger): Checkpointer | undefined {
  const done = new SharedArrayBuffer(4);
  let worker: Worker;
  try {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // execArgv []: plain CommonJS whatever flags started this process (--input-type=module would make it ESM).
    worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { driver, path, interval: CHECKPOINT_INTERVAL_MS, done } });
  } catch (err) {
    logger?.warn('WAL checkpoints stay on the writing thread: no worker thread', { error: err });
    return undefined;
  }
  worker.unref();
  db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  let stopped = false;
  const fallBack = (why: string, error?: unknown) => {
    if (stopped || !db.open) return;
    stopped = true;
    db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
    logger?.warn(`WAL checkpoints moved back to the writing thread: ${why}`, error === undefined ? {} : { error });
  };
  // A failing checkpoint fails again every interval (a full disk): said once per kind of failure, not 5 times a second.
  let lastFailure: string | undefined;
  worker.on('message', (m: { t: string; message?: string }) => {
    if (m.t === 'ok') {
      logger?.info('background WAL checkpoints work again');
      lastFailure = undefined;
      return;
    }
    if (m.t !== 'error' || m.message === lastFailure) return;
    lastFailure = m.message;
    logger?.warn('background WAL checkpoint failed (said once until the failure changes)', { error: m.message });
  });
  worker.on('error', (err) => fallBack('the checkpoint worker failed', err));
  worker.on('exit', (code) => {
    if (code !== 0) fallBack(`the checkpoint worker exited with code ${code}`);
  });
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      worker.postMessage('stop');
      // Wait (bounded) for the worker to close its connection, so the caller's close is the last one and SQLite
      // checkpoints and removes the WAL as usual.
      Atomics.wait(new Int32Array(done), 0, 0, STOP_WAIT_MS);
      void worker.terminate();
    },
  };
}
