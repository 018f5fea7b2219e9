/**
 * The runtime: everything that is not a shell. Composed here, shared by the headless host and the Electron
 * main process, and free of Electron (lint-enforced). Later modules (sandbox host, scenarios, pipeline,
 * receipts, io) are added to this composition and to its shutdown order.
 */
import { join } from 'node:path';
import type { RuntimeInfo } from '../common/api.js';
import { createBus } from './bus/index.js';
import type { Bus } from './bus/index.js';
import { createJournal } from './journal/index.js';
import type { Journal } from './journal/index.js';
import { createDisposableStore, toDisposable } from './lifecycle/index.js';
import type { DisposableStore } from './lifecycle/index.js';
import type { Logger } from './log/index.js';
import { openStore } from './store/index.js';
import type { Store } from './store/index.js';
import { PRODUCT_NAME, VERSION } from './version.js';

export type RuntimeState = 'running' | 'stopping' | 'stopped';

export interface Runtime {
  readonly info: RuntimeInfo;
  readonly logger: Logger;
  readonly store: Store;
  readonly journal: Journal;
  readonly bus: Bus;
  readonly state: RuntimeState;
  /** True while the store is open and the runtime is not stopping: what `/readyz` reports. */
  readonly ready: boolean;
  /** Owner for resources the shells attach to the runtime's lifetime; disposed before the store closes. */
  readonly resources: DisposableStore;
  /** Marks the runtime as stopping (before any await), disposes attached resources, closes the store last. */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  dataDir: string;
  shell: RuntimeInfo['shell'];
  logger: Logger;
  clock?: () => number;
}

export const DATABASE_FILE = 'tessera.db';

export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { dataDir, logger } = options;
  const store = openStore({ path: join(dataDir, DATABASE_FILE), logger });
  let journal: Journal;
  try {
    journal = createJournal({ store, ...(options.clock ? { clock: options.clock } : {}) });
  } catch (err) {
    store.close();
    throw err;
  }
  const bus = createBus({ journal, logger: logger.child({ module: 'bus' }) });
  const resources = createDisposableStore();
  let state: RuntimeState = 'running';
  const info: RuntimeInfo = {
    name: PRODUCT_NAME,
    version: VERSION,
    shell: options.shell,
    data_dir: dataDir,
    started_at: new Date((options.clock ?? Date.now)()).toISOString(),
  };
  bus.publish('runtime.started', { version: VERSION, shell: options.shell, pid: process.pid });

  let closing: Promise<void> | undefined;
  return {
    info,
    logger,
    store,
    journal,
    bus,
    resources,
    get state() {
      return state;
    },
    get ready() {
      return state === 'running' && store.isOpen;
    },
    close() {
      closing ??= (async () => {
        // 1. Refuse new work before the first await: readyz turns 503 at once.
        state = 'stopping';
        // 2. Record the stop while the journal still accepts writes.
        try {
          bus.publish('runtime.stopping', { reason: 'shutdown' });
        } catch (err) {
          logger.warn('could not journal runtime.stopping', { error: err });
        }
        // 3. Dispose what the shells attached (servers, sandbox host, timers), last-in first-out.
        try {
          await resources.dispose();
        } finally {
          // 4. Close SQLite last, after everything that could still write to it.
          store.close();
          state = 'stopped';
        }
      })();
      return closing;
    },
  };
}

export { toDisposable };
