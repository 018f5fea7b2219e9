/**
 * Named resource locks (seed 001 §9: "mic", "tts", …). FIFO per resource; a holder takes all its resources at
 * once, in sorted order, so two runs asking for [mic, tts] and [tts, mic] cannot deadlock. Cancelling the
 * signal while waiting withdraws the request.
 */
import { TesseraError } from '../../common/errors.js';

export interface LockManager {
  /** Resolves with a release function once every resource is held. */
  acquire(resources: readonly string[], signal?: AbortSignal): Promise<() => void>;
  /** Who holds what, for diagnostics. */
  holders(): Record<string, number>;
}

export function createLockManager(): LockManager {
  const held = new Map<string, number>();
  const waiters: Array<{ resources: string[]; grant: () => void }> = [];

  const free = (resources: string[]) => resources.every((r) => !held.has(r));
  const take = (resources: string[]) => resources.forEach((r) => held.set(r, (held.get(r) ?? 0) + 1));
  const pump = () => {
    // FIFO, but a waiter whose resources are free may pass one that is blocked on others.
    for (let i = 0; i < waiters.length; ) {
      const w = waiters[i]!;
      const blockedByEarlier = waiters.slice(0, i).some((e) => e.resources.some((r) => w.resources.includes(r)));
      if (!blockedByEarlier && free(w.resources)) {
        waiters.splice(i, 1);
        take(w.resources);
        w.grant();
      } else i++;
    }
  };

  return {
    acquire(input, signal) {
      const resources = [...new Set(input)].sort();
      if (resources.length === 0) return Promise.resolve(() => undefined);
      return new Promise((resolve, reject) => {
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          for (const r of resources) held.delete(r);
          pump();
        };
        const waiter = { resources, grant: () => resolve(release) };
        if (signal?.aborted) return reject(new TesseraError('NOT_READY', 'Cancelled while waiting for locks.'));
        signal?.addEventListener('abort', () => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new TesseraError('NOT_READY', `Cancelled while waiting for ${resources.join(', ')}.`));
            pump();
          }
        }, { once: true });
        waiters.push(waiter);
        pump();
      });
    },
    holders: () => Object.fromEntries(held),
  };
}
