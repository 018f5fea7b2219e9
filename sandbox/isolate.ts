/**
 * One plugin version in one isolate (runs inside the sandbox host process). Owns the isolate: creates it
 * lazily, disposes it when a call breaks it (memory limit, deadline), and recreates it on the next call, so a
 * plugin that misbehaved once does not stay broken and never takes its neighbours down.
 */
import ivm from 'isolated-vm';
import type { ErrorData } from '../main/common/errors.js';
import type { CallStats, IsolateLimits, PluginKind } from './protocol.js';
import { CANCEL_GRACE_MS, KIND_FUNCTION } from './protocol.js';
import { PRELUDE } from './prelude.js';

export type CapabilityHandler = (callId: number, capability: string, paramsJson: string) => Promise<string>;

export type CallOutcome = { ok: true; value: string; stats: CallStats } | { ok: false; error: ErrorData; stats?: CallStats };

export interface PluginIsolate {
  readonly key: string;
  /**
   * Runs the kind's function. Answers synchronously when the plugin does (the common case: no promise, no
   * timer), otherwise with a promise bounded by the wall-clock deadline. `wantHeap` forces a fresh
   * `heap_used_bytes` reading; without it the reading may be up to HEAP_SAMPLE_MS old.
   */
  call(inputJson: string, ctxJson: string, now: number, callId: number, wantHeap?: boolean): CallOutcome | Promise<CallOutcome>;
  /**
   * The runtime cancelled call `callId` (its run was cancelled). A call still parked on a promise sees
   * `host.cancelled()` turn true and its capability calls reject with RUN_CANCELLED; if it has not finished
   * `graceMs` later it is abandoned and answered RUN_CANCELLED, and the isolate is terminated when no other call
   * is running in it (it is recreated on the next call). A call that already finished is left alone.
   * Returns whether the call was still parked.
   */
  cancel(callId: number, reason: string, graceMs?: number): boolean;
  /** Compile and run the module once, so load errors surface at load time. */
  warm(): Promise<void>;
  dispose(): void;
}

interface Live {
  isolate: ivm.Isolate;
  context: ivm.Context;
  dispatch: ivm.Reference<(input: string, ctx: string, now: number, callId: number) => string>;
  settle: ivm.Reference<(callId: number) => Promise<string>>;
  cancel: ivm.Reference<(callId: number) => void>;
}

/** The prelude's replies (sandbox/prelude.ts). */
const PENDING = '{"pending":true}';
const OK_PREFIX = '{"ok":true,"value":';
/** Oldest `heap_used_bytes` reading a call may report when the caller did not ask for a fresh one. */
export const HEAP_SAMPLE_MS = 50;
/** The wall-time backstop of a call, as a multiple of its CPU limit (isolated-vm times calls by the wall clock). */
export const WALL_FACTOR = 4;

export function createPluginIsolate(options: { key: string; kind: PluginKind; code: string; limits: IsolateLimits; capability: CapabilityHandler }): PluginIsolate {
  const { key, kind, code, limits } = options;
  let live: Live | undefined;
  let disposed = false;

  const start = async (): Promise<Live> => {
    const isolate = new ivm.Isolate({ memoryLimit: limits.memoryMb });
    try {
      const context = await isolate.createContext();
      const global = context.global;
      await global.set('globalThis', global.derefInto());
      await global.set('__tessera_kind', KIND_FUNCTION[kind]);
      await global.set('__tessera_cap', new ivm.Reference(options.capability));
      await (await isolate.compileScript(PRELUDE, { filename: 'tessera:prelude' })).run(context, { timeout: 1000 });
      let pluginModule: ivm.Module;
      try {
        pluginModule = await isolate.compileModule(code, { filename: `plugin:${key}` });
      } catch (err) {
        throw loadError(`the plugin's code does not compile: ${(err as Error).message}`);
      }
      const entry = await isolate.compileModule('import * as plugin from "tessera:plugin"; globalThis.__tessera_register(plugin);', { filename: 'tessera:entry' });
      const resolve = (specifier: string) => {
        if (specifier === 'tessera:plugin') return pluginModule;
        throw new Error(`import of "${specifier}" refused: a plugin is one bundled script with no imports`);
      };
      try {
        await entry.instantiate(context, resolve);
        await entry.evaluate({ timeout: limits.timeoutMs * 10 });
      } catch (err) {
        throw loadError(`the plugin failed to load: ${(err as Error).message}`);
      }
      const dispatch = (await global.get('__tessera_dispatch', { reference: true })) as Live['dispatch'];
      const settle = (await global.get('__tessera_settle', { reference: true })) as Live['settle'];
      const cancel = (await global.get('__tessera_cancel', { reference: true })) as Live['cancel'];
      await global.delete('__tessera_dispatch');
      await global.delete('__tessera_settle');
      await global.delete('__tessera_cancel');
      return { isolate, context, dispatch, settle, cancel };
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  };

  const unloaded = () => Object.assign(new Error('plugin unloaded'), { data: { code: 'PLUGIN_NOT_FOUND', message: `${key} is not loaded.` } });
  let starting: Promise<Live> | undefined;
  const ensure = async (): Promise<Live> => {
    if (disposed) throw unloaded();
    if (live && !live.isolate.isDisposed) return live;
    // One start at a time: calls arriving meanwhile (a whole batch, after a disposal) share it instead of each
    // starting an isolate that the next would overwrite and leak. Disposed meanwhile: the new isolate goes too.
    starting ??= start().then(
      (l) => {
        starting = undefined;
        if (disposed) {
          l.isolate.dispose();
          throw unloaded();
        }
        live = l;
        return l;
      },
      (err: unknown) => {
        starting = undefined;
        throw err;
      },
    );
    return starting;
  };

  const drop = () => {
    if (live && !live.isolate.isDisposed) live.isolate.dispose();
    live = undefined;
  };

  // Used heap is read at most every HEAP_SAMPLE_MS per isolate (getHeapStatisticsSync costs about as much as
  // the call itself), always on an isolate's first call, and whenever the caller asks (`wantHeap`).
  let heapUsed = 0;
  let heapSampledAt = -Infinity;
  let heapIsolate: ivm.Isolate | undefined;

  const failedToStart = (err: unknown): CallOutcome => {
    const data = (err as { data?: ErrorData }).data;
    return { ok: false, error: data ?? { code: 'PLUGIN_FAILED', message: (err as Error).message } };
  };

  /** What one call measures from; built per call so the hot path creates no closures. */
  interface Meter {
    l: Live;
    cpuBefore: bigint;
    wallBefore: bigint;
    wantHeap: boolean;
  }

  const statsOf = (m: Meter): CallStats => {
    const { l } = m;
    const wall = process.hrtime.bigint();
    if (l.isolate.isDisposed) return { cpu_us: 0, wall_us: Number((wall - m.wallBefore) / 1000n), heap_used_bytes: 0 };
    const ms = Number(wall / 1_000_000n);
    if (m.wantHeap || heapIsolate !== l.isolate || ms - heapSampledAt >= HEAP_SAMPLE_MS) {
      heapUsed = l.isolate.getHeapStatisticsSync().used_heap_size;
      heapSampledAt = ms;
      heapIsolate = l.isolate;
    }
    return { cpu_us: Number((l.isolate.cpuTime - m.cpuBefore) / 1000n), wall_us: Number((wall - m.wallBefore) / 1000n), heap_used_bytes: heapUsed };
  };

  const failure = (m: Meter, err: unknown): CallOutcome => {
    const message = (err as Error).message ?? String(err);
    const s = live ? statsOf(m) : undefined;
    if (/memory limit/i.test(message) || m.l.isolate.isDisposed) {
      drop();
      return { ok: false, error: { code: 'PLUGIN_MEMORY_EXCEEDED', message: `The plugin went over its ${limits.memoryMb} MB memory limit; its isolate was disposed and will be recreated on the next call.` }, ...(s ? { stats: s } : {}) };
    }
    if (/timed out/i.test(message)) {
      const cpuMs = s ? Math.round(s.cpu_us / 1000) : undefined;
      const busy = cpuMs !== undefined && cpuMs < limits.timeoutMs;
      return {
        ok: false,
        error: {
          code: 'PLUGIN_TIMEOUT',
          message: busy
            ? `The plugin did not finish within ${limits.timeoutMs * WALL_FACTOR} ms of wall time, having had only ${cpuMs} ms of CPU (its limit is ${limits.timeoutMs} ms): this machine is too busy to run it.`
            : `The plugin ran past its ${limits.timeoutMs} ms CPU time limit.`,
        },
        ...(s ? { stats: s } : {}),
      };
    }
    return { ok: false, error: { code: 'PLUGIN_FAILED', message }, ...(s ? { stats: s } : {}) };
  };

  /**
   * Unwraps the prelude's reply. Its envelope is built by the prelude's own captured JSON.stringify, so the
   * value is sliced out rather than parsed and serialized again (the registry parses it, as hostile data).
   */
  const finish = (m: Meter, outcome: unknown, synchronous = false): CallOutcome => {
    try {
      if (typeof outcome !== 'string') return { ok: false, error: { code: 'PLUGIN_OUTPUT_INVALID', message: 'The plugin returned no output.' }, stats: statsOf(m) };
      if (outcome.length > limits.maxOutputChars + 32) {
        return { ok: false, error: { code: 'PLUGIN_OUTPUT_INVALID', message: `The output is ${outcome.length} characters of JSON; the limit is ${limits.maxOutputChars}.` }, stats: statsOf(m) };
      }
      const stats = statsOf(m);
      // A synchronous call had the isolate to itself, so its CPU is its own (a parked call's is shared).
      if (synchronous && stats.cpu_us > limits.timeoutMs * 1000) {
        return { ok: false, error: { code: 'PLUGIN_TIMEOUT', message: `The plugin ran past its ${limits.timeoutMs} ms CPU time limit (it used ${Math.round(stats.cpu_us / 1000)} ms).` }, stats };
      }
      if (outcome.startsWith(OK_PREFIX) && outcome.endsWith('}')) return { ok: true, value: outcome.slice(OK_PREFIX.length, -1), stats };
      const reply = JSON.parse(outcome) as { ok: false; error: { name: string; message: string } };
      const { name, message } = reply.error;
      const code = name === 'TypeError' && message.startsWith('output is not JSON') ? 'PLUGIN_OUTPUT_INVALID' : 'PLUGIN_FAILED';
      return { ok: false, error: { code, message: `${name}: ${message}` }, stats };
    } catch (err) {
      return failure(m, err);
    }
  };

  // isolated-vm's `timeout` is wall time (laverdet/isolated-vm#108), and the limit is CPU time: on a starved
  // machine a 5 ms policy can take 50 ms of wall time and would be cut, failing closed as a NACK. So the wall
  // timeout is a backstop at WALL_FACTOR × the limit, and the CPU the call used is checked against the limit
  // itself (cpuOver), whichever way the call ended.
  // Arguments and result are strings and numbers, which isolated-vm copies as primitives: `copy: true` would
  // route them through the structured-clone serializer instead, for about as long as the call itself.
  const dispatchOptions = { timeout: limits.timeoutMs * WALL_FACTOR };

  /** One call on a live isolate: synchronous when the plugin answers synchronously (no timer, no promise). */
  const run = (l: Live, inputJson: string, ctxJson: string, now: number, callId: number, wantHeap: boolean): CallOutcome | Promise<CallOutcome> => {
    const m: Meter = { l, cpuBefore: l.isolate.cpuTime, wallBefore: process.hrtime.bigint(), wantHeap };
    let outcome: string;
    try {
      // Run synchronously on this thread (no thread hop: a few µs); the CPU timeout interrupts loops.
      outcome = l.dispatch.applySync(undefined, [inputJson, ctxJson, now, callId], dispatchOptions) as unknown as string;
    } catch (err) {
      return failure(m, err);
    }
    if (outcome !== PENDING) return finish(m, outcome, true);
    return settle(m, callId);
  };

  /** Calls parked on a promise, by call id: what cancelling one needs. */
  const parked = new Map<number, { l: Live; abandon?: (reason: string) => void; grace?: NodeJS.Timeout }>();

  /** A plugin that returned a promise: only now is a wall-clock deadline armed, for promises that never settle. */
  const settle = (m: Meter, callId: number): Promise<CallOutcome> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), limits.deadlineMs);
    });
    const entry: { l: Live; abandon?: (reason: string) => void; grace?: NodeJS.Timeout } = { l: m.l };
    const abandoned = new Promise<{ cancelled: string }>((resolve) => {
      entry.abandon = (reason) => resolve({ cancelled: reason });
    });
    parked.set(callId, entry);
    const settled = m.l.settle.apply(undefined, [callId], { arguments: { copy: true }, result: { promise: true, copy: true }, timeout: limits.timeoutMs * WALL_FACTOR }) as unknown as Promise<string>;
    return Promise.race([settled, deadline, abandoned])
      .then(
        (result): CallOutcome => {
          if (typeof result === 'object') {
            // Cancelled and still running after its grace: abandon it. Terminating the isolate stops a plugin that
            // never looks at host.cancelled(); only when nothing else runs in it, so no other call pays for this one.
            settled.catch(() => undefined);
            if ([...parked.keys()].every((id) => id === callId)) drop();
            return { ok: false, error: { code: 'RUN_CANCELLED', message: `The call was cancelled (${result.cancelled}) and did not stop within its grace period; it was abandoned.` }, stats: statsOf(m) };
          }
          if (result !== 'deadline') return finish(m, result);
          settled.catch(() => undefined);
          drop();
          return { ok: false, error: { code: 'PLUGIN_TIMEOUT', message: `The plugin did not finish within its ${limits.deadlineMs} ms deadline (a promise that never settles?); its isolate was disposed.` }, stats: statsOf(m) };
        },
        (err: unknown) => failure(m, err),
      )
      .finally(() => {
        clearTimeout(timer);
        clearTimeout(entry.grace);
        parked.delete(callId);
      });
  };

  return {
    key,
    async warm() {
      try {
        await ensure();
      } catch (err) {
        throw (err as { data?: ErrorData }).data ? err : loadError((err as Error).message);
      }
    },
    call(inputJson, ctxJson, now, callId, wantHeap = false) {
      if (disposed || !live || live.isolate.isDisposed) return ensure().then((l) => run(l, inputJson, ctxJson, now, callId, wantHeap), (err: unknown) => failedToStart(err));
      return run(live, inputJson, ctxJson, now, callId, wantHeap);
    },
    cancel(callId, reason, graceMs = CANCEL_GRACE_MS) {
      const entry = parked.get(callId);
      if (!entry) return false;
      if (entry.grace) return true;
      if (!entry.l.isolate.isDisposed) {
        // Raises the flag behind host.cancelled(); runs as soon as the isolate is idle (the plugin awaits).
        entry.l.cancel.apply(undefined, [callId], { timeout: limits.timeoutMs }).catch(() => undefined);
      }
      entry.grace = setTimeout(() => entry.abandon?.(reason), graceMs);
      return true;
    },
    dispose() {
      disposed = true;
      drop();
    },
  };
}

function loadError(message: string): Error & { data: ErrorData } {
  return Object.assign(new Error(message), { data: { code: 'PLUGIN_FAILED' as const, message } });
}
