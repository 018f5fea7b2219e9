/**
 * Named resource locks (seed 001 §9: `mic`, `tts`, any name a step declares; issue 6 point 2). One manager per
 * runtime, shared by the scenario engine (a step's or scenario's `locks: [...]`) and the I/O router (which holds
 * `tts` while it speaks and `mic` while it listens).
 *
 * Contract:
 * - **All or nothing.** A request names several resources and is granted when every one is free; nothing is
 *   held while waiting, so two requests for [mic, tts] and [tts, mic] cannot deadlock (resources are also
 *   sorted into one canonical order, which is the order they are reported in).
 * - **FIFO within priority.** Waiters are served HIGH > NORM > LOW, first come first served within a level; a
 *   waiter never passes an earlier one that wants any of its resources (no barging), but may pass one that
 *   waits for other resources.
 * - **Owners, re-entrant.** A request carries an owner (a run id, typically). A resource its owner already
 *   holds counts as free for it and does not queue behind other waiters: a run holding `tts` through its
 *   step's `locks: [tts]` can still speak through the router, which asks for `tts` as that run. Each grant
 *   returns its own release; the resource is free once every grant of its owner is released. Requests
 *   without an owner are anonymous and never re-entrant. Taking locks in several steps while holding others
 *   (nested acquisition by different owners) can still deadlock; timeouts bound that.
 * - **Timeouts and cancel.** `timeoutMs` rejects a waiting request with LOCK_TIMEOUT; aborting `signal` rejects
 *   it with the signal's reason (the engine's cancel reason) or RUN_CANCELLED. Either withdraws the request.
 * - **Crash.** `releaseOwner(owner)` drops every hold of an owner whose run died without releasing (the
 *   engine releases in `finally`; this is the safety net for holders outside it).
 * - Releases are idempotent. Grants happen synchronously inside `release()`/`acquire()` (the promise resolves
 *   on the next microtask), which is what keeps the hand-over under a millisecond.
 */
import { TesseraError } from '../../common/errors.js';
import { setLongTimeout } from '../../common/timers.js';
import type { LongTimeout } from '../../common/timers.js';
import type { Disposable } from '../lifecycle/index.js';

export type LockPriority = 'LOW' | 'NORM' | 'HIGH';

const RANK: Record<LockPriority, number> = { HIGH: 0, NORM: 1, LOW: 2 };

/** Options of one request. Passing an AbortSignal instead is the engine's original form. */
export interface AcquireOptions {
  /** Who asks: holds of the same owner are re-entrant. Default: anonymous (a fresh owner per request). */
  owner?: string;
  /** Default NORM. */
  priority?: LockPriority;
  /** Give up waiting after this long (LOCK_TIMEOUT). Default: wait until granted or cancelled. */
  timeoutMs?: number;
  /** Aborting withdraws a waiting request; it does not release a granted one. */
  signal?: AbortSignal;
}

/** Releases one grant. Idempotent. */
export type ReleaseLocks = () => void;

/** A resource and who holds it. */
export interface LockHolder {
  resource: string;
  owner: string;
  /** Grants of this owner not yet released. */
  count: number;
  /** Epoch ms of the first of those grants. */
  since: number;
}

/** A request still waiting. */
export interface LockWaiter {
  resources: string[];
  owner: string;
  priority: LockPriority;
  /** Epoch ms it started waiting. */
  since: number;
}

/** What the UI and `/api/io/status` show: holders by resource (canonical order), waiters in service order. */
export interface LockState {
  holders: LockHolder[];
  waiters: LockWaiter[];
}

/** A change of one resource: granted to an owner, or released (holder null). */
export interface LockChange {
  resource: string;
  holder: string | null;
  waiting: number;
}

export interface LockManager {
  /**
   * Resolves with a release function once every resource is held by this request's owner. An empty list
   * resolves at once. Rejects with LOCK_TIMEOUT, the signal's reason, or VALIDATION_FAILED for a bad name.
   */
  acquire(resources: readonly string[], options?: AcquireOptions | AbortSignal): Promise<ReleaseLocks>;
  /** Drops every hold of `owner` (its run died); returns how many resources were freed. */
  releaseOwner(owner: string): number;
  /** Count of grants per held resource (kept for the engine's diagnostics). */
  holders(): Record<string, number>;
  state(): LockState;
  /** Called synchronously after each resource changes hands. Dispose to stop. */
  onChange(listener: (change: LockChange) => void): Disposable;
}

/** Lock names: what a step may declare in `locks:`. */
export const LOCK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

interface Hold {
  owner: string;
  count: number;
  since: number;
}

interface Waiter {
  resources: string[];
  owner: string;
  priority: LockPriority;
  seq: number;
  since: number;
  grant: () => void;
}

export function createLockManager(options: { clock?: () => number } = {}): LockManager {
  const clock = options.clock ?? Date.now;
  const held = new Map<string, Hold>();
  // Kept sorted by (priority rank, seq): the service order.
  const waiters: Waiter[] = [];
  const listeners = new Set<(change: LockChange) => void>();
  let seq = 0;
  let anonymous = 0;

  const waitingFor = (resource: string) => waiters.reduce((n, w) => n + (w.resources.includes(resource) ? 1 : 0), 0);
  const notify = (resource: string) => {
    if (listeners.size === 0) return;
    const change = { resource, holder: held.get(resource)?.owner ?? null, waiting: waitingFor(resource) };
    for (const l of listeners) {
      try {
        l(change);
      } catch {
        // A listener's failure must not break lock bookkeeping; listeners report their own errors.
      }
    }
  };

  const take = (resources: string[], owner: string): void => {
    const now = clock();
    for (const r of resources) {
      const h = held.get(r);
      if (h) h.count++;
      else held.set(r, { owner, count: 1, since: now });
    }
  };

  const insert = (w: Waiter) => {
    let i = waiters.length;
    while (i > 0 && RANK[waiters[i - 1]!.priority] > RANK[w.priority]) i--;
    waiters.splice(i, 0, w);
  };

  /** Grant every waiter that can go, in service order. */
  const pump = () => {
    // Resources wanted by an earlier waiter still waiting: later waiters may not take them (no barging).
    const claimed = new Set<string>();
    for (let i = 0; i < waiters.length; ) {
      const w = waiters[i]!;
      const grantable = w.resources.every((r) => {
        const h = held.get(r);
        if (h) return h.owner === w.owner;
        return !claimed.has(r);
      });
      if (grantable) {
        waiters.splice(i, 1);
        take(w.resources, w.owner);
        w.grant();
        for (const r of w.resources) notify(r);
      } else {
        for (const r of w.resources) if (held.get(r)?.owner !== w.owner) claimed.add(r);
        i++;
      }
    }
  };

  const drop = (resources: string[], owner: string, all: boolean): string[] => {
    const freed: string[] = [];
    for (const r of resources) {
      const h = held.get(r);
      if (!h || h.owner !== owner) continue;
      h.count = all ? 0 : h.count - 1;
      if (h.count <= 0) {
        held.delete(r);
        freed.push(r);
      }
    }
    return freed;
  };

  const afterFree = (freed: string[]) => {
    if (freed.length === 0) return;
    pump();
    // Resources nobody took: report them free (granted ones were reported by pump).
    for (const r of freed) if (!held.has(r)) notify(r);
  };

  return {
    acquire(input, opts) {
      const o: AcquireOptions = opts === undefined ? {} : isSignal(opts) ? { signal: opts } : opts;
      for (const r of input) {
        if (typeof r !== 'string' || !LOCK_NAME.test(r)) return Promise.reject(new TesseraError('VALIDATION_FAILED', `Lock names are 1–64 letters, digits, "_", ".", ":" or "-": ${JSON.stringify(r)}.`));
      }
      const resources = [...new Set(input)].sort();
      if (resources.length === 0) return Promise.resolve(() => undefined);
      const owner = o.owner ?? `anonymous:${++anonymous}`;
      const priority = o.priority ?? 'NORM';
      const signal = o.signal;
      if (signal?.aborted) return Promise.reject(cancelReason(signal, resources));
      return new Promise<ReleaseLocks>((resolve, reject) => {
        let timer: LongTimeout | undefined;
        let released = false;
        const release: ReleaseLocks = () => {
          if (released) return;
          released = true;
          afterFree(drop(resources, owner, false));
        };
        const onAbort = () => withdraw(cancelReason(signal!, resources));
        const cleanup = () => {
          timer?.cancel();
          signal?.removeEventListener('abort', onAbort);
        };
        const waiter: Waiter = {
          resources,
          owner,
          priority,
          seq: ++seq,
          since: clock(),
          grant: () => {
            cleanup();
            resolve(release);
          },
        };
        const withdraw = (err: Error) => {
          const i = waiters.indexOf(waiter);
          if (i < 0) return;
          waiters.splice(i, 1);
          cleanup();
          reject(err);
          // Its claim may have held back later waiters.
          pump();
        };
        if (o.timeoutMs !== undefined) {
          timer = setLongTimeout(() => withdraw(new TesseraError('LOCK_TIMEOUT', `Waited ${o.timeoutMs} ms for ${resources.join(', ')} (held by ${resources.map((r) => held.get(r)?.owner).filter(Boolean).join(', ') || 'earlier waiters'}); try again later.`)), o.timeoutMs);
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        insert(waiter);
        pump();
      });
    },
    releaseOwner(owner) {
      const freed = drop([...held.keys()], owner, true);
      afterFree(freed);
      return freed.length;
    },
    holders: () => Object.fromEntries([...held].map(([r, h]) => [r, h.count])),
    state: () => ({
      holders: [...held].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([resource, h]) => ({ resource, owner: h.owner, count: h.count, since: h.since })),
      waiters: waiters.map((w) => ({ resources: [...w.resources], owner: w.owner, priority: w.priority, since: w.since })),
    }),
    onChange(listener) {
      listeners.add(listener);
      return { dispose: () => void listeners.delete(listener) };
    },
  };
}

function isSignal(v: unknown): v is AbortSignal {
  return typeof v === 'object' && v !== null && typeof (v as AbortSignal).addEventListener === 'function' && 'aborted' in v;
}

/** The engine aborts with its own Cancelled (or STEP_TIMEOUT) reason; pass it through so the run ends as such. */
function cancelReason(signal: AbortSignal, resources: string[]): Error {
  if (signal.reason instanceof Error && signal.reason.name !== 'AbortError') return signal.reason;
  return new TesseraError('RUN_CANCELLED', `Cancelled while waiting for ${resources.join(', ')}.`);
}
