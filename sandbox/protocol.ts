/**
 * Messages between the runtime and the sandbox host process (DESIGN.md "Processes"). Every payload that came
 * from or goes to a plugin travels as a JSON string, never as a live object: nothing shared, nothing
 * structured-cloned that a plugin shaped.
 */
import type { ErrorData } from '../main/common/errors.js';

export type PluginKind = 'policy' | 'tool' | 'intake' | 'enrich';

/** The function each kind exports. */
export const KIND_FUNCTION: Record<PluginKind, string> = {
  policy: 'decide',
  tool: 'invoke',
  intake: 'normalize',
  enrich: 'enrich',
};

export interface IsolateLimits {
  /** V8 heap limit of the plugin's isolate. */
  memoryMb: number;
  /** CPU time per call (synchronous execution). */
  timeoutMs: number;
  /** Wall-clock deadline per call, for promises that never settle; the isolate is disposed past it. */
  deadlineMs: number;
  /** Largest output, as JSON characters. */
  maxOutputChars: number;
}

export interface LoadRequest {
  /** Unique per loaded plugin version: `name@version#cid`. */
  key: string;
  kind: PluginKind;
  code: string;
  limits: IsolateLimits;
}

/** How long a cancelled call may take to wind down on its own before its isolate is terminated. */
export const CANCEL_GRACE_MS = 250;

export interface CallStats {
  cpu_us: number;
  wall_us: number;
  heap_used_bytes: number;
}

export type RuntimeToHost =
  | { t: 'load'; id: number; plugin: LoadRequest }
  | { t: 'unload'; id: number; key: string }
  /** `heap`: read the isolate's used heap after this call; otherwise `stats.heap_used_bytes` may be a reading up to 50 ms old. */
  | { t: 'call'; id: number; key: string; input: string; ctx: string; now: number; heap?: boolean }
  /**
   * The caller of call `id` stopped waiting for it (its run was cancelled): the plugin's `host.cancelled()`
   * turns true, its capability calls reject with RUN_CANCELLED, and if it has not finished within
   * CANCEL_GRACE_MS its isolate is terminated. The host still answers the call with `done`.
   */
  | { t: 'cancel'; id: number; key: string; reason: string }
  | { t: 'cap-result'; id: number; ok: true; value: string }
  | { t: 'cap-result'; id: number; ok: false; error: ErrorData }
  | { t: 'ping'; id: number }
  /** Messages queued together, sent with one write (createOutbox below); either side may send one. */
  | { t: 'batch'; messages: RuntimeToHost[] };

export type HostToRuntime =
  | { t: 'ready'; pid: number }
  | { t: 'done'; id: number; ok: true; value?: string; stats?: CallStats }
  | { t: 'done'; id: number; ok: false; error: ErrorData; stats?: CallStats }
  /** A capability call made by the plugin during call `call`. The runtime answers with `cap-result`. */
  | { t: 'cap'; id: number; call: number; capability: string; params: string }
  | { t: 'batch'; messages: HostToRuntime[] };

/**
 * Both sides queue their messages and flush them together: one message as itself, several as one `batch`,
 * in order. The flush is a microtask queued by the first message, so it runs once the current job and the
 * promise continuations already queued behind it are done: 64 calls resolved by one batch of replies send
 * their 64 successors as one batch, while a lone call leaves at once.
 *
 * A message sent with `coalesce` waits instead for the end of the event loop's turn (setImmediate), so that messages
 * sent from other I/O callbacks of the same turn share its write: the runtime's receipt pipeline coalesces its
 * plugin calls, and the calls of every HTTP request read in one turn then leave in one pipe write. A message sent
 * without `coalesce` meanwhile takes the waiting ones with it, at its microtask.
 */
export function createOutbox<M extends { t: string }>(write: (message: M | { t: 'batch'; messages: M[] }) => void): {
  send(message: M, coalesce?: boolean): void;
  flush(): void;
  clear(): void;
} {
  let queue: M[] = [];
  let soon = false;
  let later = false;
  const flush = () => {
    const messages = queue;
    if (messages.length === 0) return;
    queue = [];
    write(messages.length === 1 ? messages[0]! : { t: 'batch', messages });
  };
  const flushSoon = () => {
    soon = false;
    flush();
  };
  const flushLater = () => {
    later = false;
    flush();
  };
  return {
    send(message, coalesce = false) {
      queue.push(message);
      if (!coalesce && !soon) {
        soon = true;
        queueMicrotask(flushSoon);
      } else if (coalesce && !later && !soon) {
        later = true;
        setImmediate(flushLater);
      }
    },
    flush,
    clear() {
      queue = [];
    },
  };
}
