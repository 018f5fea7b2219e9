/**
 * One plugin version in one isolate (runs inside the sandbox host process). Owns the isolate: creates it
 * lazily, disposes it when a call breaks it (memory limit, deadline), and recreates it on the next call, so a
 * plugin that misbehaved once does not stay broken and never takes its neighbours down.
 */
import ivm from 'isolated-vm';
import type { ErrorData } from '../main/common/errors.js';
import type { CallStats, IsolateLimits, PluginKind } from './protocol.js';
import { KIND_FUNCTION } from './protocol.js';
import { PRELUDE } from './prelude.js';

export type CapabilityHandler = (callId: number, capability: string, paramsJson: string) => Promise<string>;

export type CallOutcome = { ok: true; value: string; stats: CallStats } | { ok: false; error: ErrorData; stats?: CallStats };

export interface PluginIsolate {
  readonly key: string;
  call(inputJson: string, ctxJson: string, now: number, callId: number): Promise<CallOutcome>;
  /** Compile and run the module once, so load errors surface at load time. */
  warm(): Promise<void>;
  dispose(): void;
}

interface Live {
  isolate: ivm.Isolate;
  context: ivm.Context;
  dispatch: ivm.Reference<(input: string, ctx: string, now: number, callId: number) => string>;
  settle: ivm.Reference<(callId: number) => Promise<string>>;
}

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
      await global.delete('__tessera_dispatch');
      await global.delete('__tessera_settle');
      return { isolate, context, dispatch, settle };
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  };

  const ensure = async (): Promise<Live> => {
    if (disposed) throw Object.assign(new Error('plugin unloaded'), { data: { code: 'PLUGIN_NOT_FOUND', message: `${key} is not loaded.` } });
    if (!live || live.isolate.isDisposed) live = await start();
    return live;
  };

  const drop = () => {
    if (live && !live.isolate.isDisposed) live.isolate.dispose();
    live = undefined;
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
    async call(inputJson, ctxJson, now, callId) {
      let l: Live;
      try {
        l = await ensure();
      } catch (err) {
        const data = (err as { data?: ErrorData }).data;
        return { ok: false, error: data ?? { code: 'PLUGIN_FAILED', message: (err as Error).message } };
      }
      const cpuBefore = l.isolate.cpuTime;
      const wallBefore = process.hrtime.bigint();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), limits.deadlineMs);
      });
      const stats = (): CallStats => {
        const heap = l.isolate.isDisposed ? 0 : l.isolate.getHeapStatisticsSync().used_heap_size;
        return {
          cpu_us: l.isolate.isDisposed ? 0 : Number((l.isolate.cpuTime - cpuBefore) / 1000n),
          wall_us: Number((process.hrtime.bigint() - wallBefore) / 1000n),
          heap_used_bytes: heap,
        };
      };
      try {
        // Run synchronously on this thread (no thread hop: a few µs); the CPU timeout interrupts loops.
        let outcome: string | 'deadline' = l.dispatch.applySync(undefined, [inputJson, ctxJson, now, callId], {
          arguments: { copy: true },
          result: { copy: true },
          timeout: limits.timeoutMs,
        }) as unknown as string;
        if (outcome === '{"pending":true}') {
          const run = l.settle.apply(undefined, [callId], { arguments: { copy: true }, result: { promise: true, copy: true }, timeout: limits.timeoutMs }) as unknown as Promise<string>;
          outcome = await Promise.race([run, deadline]);
          if (outcome === 'deadline') {
            run.catch(() => undefined);
            drop();
            return { ok: false, error: { code: 'PLUGIN_TIMEOUT', message: `The plugin did not finish within its ${limits.deadlineMs} ms deadline (a promise that never settles?); its isolate was disposed.` }, stats: stats() };
          }
        }
        if (typeof outcome !== 'string') return { ok: false, error: { code: 'PLUGIN_OUTPUT_INVALID', message: 'The plugin returned no output.' }, stats: stats() };
        if (outcome.length > limits.maxOutputChars + 32) {
          return { ok: false, error: { code: 'PLUGIN_OUTPUT_INVALID', message: `The output is ${outcome.length} characters of JSON; the limit is ${limits.maxOutputChars}.` }, stats: stats() };
        }
        const reply = JSON.parse(outcome) as { ok: true; value: unknown } | { ok: false; error: { name: string; message: string } };
        if (!reply.ok) {
          const { name, message } = reply.error;
          const code = name === 'TypeError' && message.startsWith('output is not JSON') ? 'PLUGIN_OUTPUT_INVALID' : 'PLUGIN_FAILED';
          return { ok: false, error: { code, message: `${name}: ${message}` }, stats: stats() };
        }
        // Re-serialize only the value; the envelope was ours.
        return { ok: true, value: JSON.stringify(reply.value), stats: stats() };
      } catch (err) {
        const message = (err as Error).message ?? String(err);
        const s = live ? stats() : undefined;
        if (/memory limit/i.test(message) || l.isolate.isDisposed) {
          drop();
          return { ok: false, error: { code: 'PLUGIN_MEMORY_EXCEEDED', message: `The plugin went over its ${limits.memoryMb} MB memory limit; its isolate was disposed and will be recreated on the next call.` }, ...(s ? { stats: s } : {}) };
        }
        if (/timed out/i.test(message)) {
          return { ok: false, error: { code: 'PLUGIN_TIMEOUT', message: `The plugin ran past its ${limits.timeoutMs} ms CPU time limit.` }, ...(s ? { stats: s } : {}) };
        }
        return { ok: false, error: { code: 'PLUGIN_FAILED', message }, ...(s ? { stats: s } : {}) };
      } finally {
        clearTimeout(timer);
      }
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
