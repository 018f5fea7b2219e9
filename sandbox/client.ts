/**
 * The runtime's side of the sandbox: starts the sandbox host process, supervises it and talks to it.
 *
 * Supervision contract: if the host process dies (native crash, V8 out-of-memory, kill), every call in flight
 * fails at once with SANDBOX_UNAVAILABLE, the host is started again (with backoff if it keeps dying), every
 * loaded plugin is loaded again, and calls made meanwhile wait for that. The runtime never goes down with it.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TesseraError, fromErrorData, toErrorData } from '../main/common/errors.js';
import type { Logger } from '../main/runtime/log/index.js';
import { createOutbox } from './protocol.js';
import type { CallStats, HostToRuntime, LoadRequest, RuntimeToHost } from './protocol.js';

export interface ChildHandle {
  readonly pid: number | undefined;
  send(message: RuntimeToHost): void;
  onMessage(listener: (message: HostToRuntime) => void): void;
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts the sandbox host process. Headless: child_process.fork; in Electron: utilityProcess (main/electron). */
export type ProcessLauncher = (entry: { file: string; execArgv: string[] }) => ChildHandle;

/** Answers a plugin's `host.call(capability, params)`; throw a TesseraError to refuse. */
export type CapabilityHandler = (capability: string, params: unknown) => Promise<unknown>;

export interface CallOptions {
  heap?: boolean;
  signal?: AbortSignal;
  /**
   * Send the call at the end of this event-loop turn, in one pipe write with the calls other I/O callbacks of the
   * turn start (protocol.ts createOutbox), instead of at once. The receipt pipeline's calls: under load, the calls
   * of all the HTTP requests read in one turn leave together (~8% more `POST /v1/run` requests/s measured). A
   * tight loop of calls is faster without it: they already leave together, and waiting delays the host.
   */
  coalesce?: boolean;
}

export interface CallResult {
  /** The plugin's output as JSON text. */
  value: string;
  stats: CallStats;
}

export interface SandboxHost {
  load(plugin: LoadRequest): Promise<void>;
  unload(key: string): Promise<void>;
  /**
   * `options.heap`: measure the isolate's used heap after this very call (otherwise the reading may be up to 50 ms
   * old). `options.signal`: the caller's cancel token. When it aborts, the call rejects at once with RUN_CANCELLED,
   * the plugin sees `host.cancelled()` turn true and its capability calls refused with RUN_CANCELLED, and a plugin
   * that does not stop within CANCEL_GRACE_MS is terminated in the sandbox host (other plugins are unaffected).
   */
  call(key: string, input: string, ctx: string, now: number, capability?: CapabilityHandler, options?: CallOptions): Promise<CallResult>;
  /** PID of the current host process (undefined while restarting). */
  readonly pid: number | undefined;
  readonly restarts: number;
  /** Kill the host process, as a crash would (tests and `tessera doctor`). */
  crash(): void;
  dispose(): Promise<void>;
}

export interface SandboxHostOptions {
  logger: Logger;
  launcher?: ProcessLauncher;
  /** Called after each restart of the host, once plugins are loaded again. */
  onRestart?: (info: { restarts: number; reason: string }) => void;
}

/** Where the host entry is: the built file next to the built runtime, or the TypeScript source under tsx. */
export function sandboxEntry(): { file: string; execArgv: string[] } {
  // isolated-vm needs --no-node-snapshot on Node ≥ 20.
  const base = ['--no-node-snapshot'];
  for (const rel of ['./sandbox-host.js', '../sandbox-host.js']) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(file)) return { file, execArgv: base };
  }
  const source = fileURLToPath(new URL('./host-main.ts', import.meta.url));
  if (existsSync(source)) return { file: source, execArgv: [...base, '--import', 'tsx'] };
  throw new TesseraError('SANDBOX_UNAVAILABLE', 'The sandbox host entry is missing: run `npm run build`.');
}

export const forkLauncher: ProcessLauncher = ({ file, execArgv }) => {
  const child = fork(file, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
  // A host that dies with messages on their way fails those writes (EPIPE) before its exit is seen: without a
  // listener that error event would take the runtime down. The exit handler rejects the calls and restarts the host.
  child.on('error', () => {});
  const ignoreFailedSend = (): void => {};
  return {
    get pid() {
      return child.pid;
    },
    send: (m) => {
      if (child.connected) child.send(m, ignoreFailedSend);
    },
    onMessage: (l) => child.on('message', (m) => l(m as HostToRuntime)),
    onExit: (l) => child.on('exit', (code, signal) => l(code, signal)),
    kill: (signal) => void child.kill(signal ?? 'SIGKILL'),
  };
};

interface Pending {
  resolve(message: HostToRuntime & { t: 'done' }): void;
  reject(err: TesseraError): void;
  capability?: CapabilityHandler;
}

export function createSandboxHost(options: SandboxHostOptions): SandboxHost {
  const { logger } = options;
  const launcher = options.launcher ?? forkLauncher;
  const loaded = new Map<string, LoadRequest>();
  const pending = new Map<number, Pending>();
  let nextId = 1;
  /** Calls cancelled by their caller whose `done` has not arrived: capability calls they still make are refused. */
  const cancelled = new Map<number, string>();
  let child: ChildHandle | undefined;
  let ready: Promise<void> | undefined;
  /** The host is started and every loaded plugin is loaded in it: calls skip waiting for `ready`. */
  let up = false;
  let restarts = 0;
  let disposed = false;
  let lastStart = 0;
  let backoff = 100;

  // Messages to the host are queued and flushed together (protocol.ts createOutbox): by a microtask, or at the end
  // of the event loop's turn for calls made with `coalesce`. A host that stops takes its queue with it: the calls
  // those messages belonged to are rejected in onExit.
  const outbox = createOutbox<RuntimeToHost>((m) => child?.send(m));
  const send = (message: RuntimeToHost, coalesce?: boolean) => outbox.send(message, coalesce);

  const start = (): Promise<void> => {
    lastStart = Date.now();
    const c = launcher(sandboxEntry());
    child = c;
    return new Promise<void>((resolve, reject) => {
      let isReady = false;
      const receive = (message: HostToRuntime): void => {
        if (message.t === 'batch') {
          for (const m of message.messages) receive(m);
          return;
        }
        if (message.t === 'ready') {
          isReady = true;
          resolve();
          return;
        }
        if (message.t === 'cap') {
          void answerCapability(message);
          return;
        }
        cancelled.delete(message.id);
        const p = pending.get(message.id);
        if (!p) return;
        pending.delete(message.id);
        p.resolve(message);
      };
      c.onMessage((message) => {
        if (c === child) receive(message);
      });
      c.onExit((code, signal) => {
        if (c !== child) return;
        child = undefined;
        up = false;
        outbox.clear();
        cancelled.clear();
        const reason = signal ? `signal ${signal}` : `exit code ${code}`;
        for (const [id, p] of pending) {
          pending.delete(id);
          p.reject(new TesseraError('SANDBOX_UNAVAILABLE', `The sandbox host stopped (${reason}) during the call; it is restarting.`));
        }
        if (!isReady) reject(new TesseraError('SANDBOX_UNAVAILABLE', `The sandbox host failed to start (${reason}).`));
        if (disposed) return;
        logger.error('sandbox host stopped; restarting', { reason, restarts: restarts + 1 });
        // Crash loop protection: back off while it keeps dying young.
        backoff = Date.now() - lastStart < 2000 ? Math.min(backoff * 2, 5000) : 100;
        ready = new Promise<void>((r) => setTimeout(r, isReady ? 0 : backoff)).then(async () => {
          if (disposed) throw new TesseraError('SANDBOX_UNAVAILABLE', 'The sandbox is shut down.');
          restarts++;
          await start();
          const started = child;
          for (const plugin of loaded.values()) {
            await request({ t: 'load', id: 0, plugin }).catch((err: unknown) => logger.error('plugin failed to reload after a sandbox restart', { key: plugin.key, error: err }));
          }
          // Only if no other restart began meanwhile (that one sets it when it is done).
          up = child !== undefined && child === started;
          options.onRestart?.({ restarts, reason });
        });
        ready.catch(() => undefined);
      });
    });
  };

  const answerCapability = async (message: HostToRuntime & { t: 'cap' }) => {
    const handler = pending.get(message.call)?.capability;
    try {
      const reason = cancelled.get(message.call);
      if (reason !== undefined) throw new TesseraError('RUN_CANCELLED', `${message.capability} refused: the run was cancelled (${reason}); stop and return.`);
      if (!handler) throw new TesseraError('CAPABILITY_DENIED', `No capability is available to this call (${message.capability}).`);
      const value = await handler(message.capability, JSON.parse(message.params) as unknown);
      send({ t: 'cap-result', id: message.id, ok: true, value: JSON.stringify(value ?? null) });
    } catch (err) {
      send({ t: 'cap-result', id: message.id, ok: false, error: toErrorData(err) });
    }
  };

  const request = <M extends RuntimeToHost & { id: number }>(message: M, capability?: CapabilityHandler): Promise<HostToRuntime & { t: 'done' }> =>
    new Promise((resolve, reject) => {
      if (!child) return reject(new TesseraError('SANDBOX_UNAVAILABLE', 'The sandbox host is not running.'));
      const id = nextId++;
      pending.set(id, capability ? { resolve, reject, capability } : { resolve, reject });
      message.id = id;
      send(message);
    });

  const whenReady = async () => {
    if (disposed) throw new TesseraError('SANDBOX_UNAVAILABLE', 'The sandbox is shut down.');
    ready ??= start().then(() => {
      up = child !== undefined;
    });
    await ready;
  };

  const cancelledError = (signal: AbortSignal) => {
    const reason = signal.reason instanceof Error ? signal.reason.message : typeof signal.reason === 'string' ? signal.reason : 'cancelled';
    return { reason, error: new TesseraError('RUN_CANCELLED', `The plugin call was cancelled: ${reason}.`) };
  };

  /** One promise per call: the reply settles it directly (no async wrapper awaiting `request`). */
  const callNow = (message: RuntimeToHost & { t: 'call' }, capability: CapabilityHandler | undefined, signal: AbortSignal | undefined, coalesce: boolean | undefined): Promise<CallResult> =>
    new Promise<CallResult>((resolve, reject) => {
      if (!child) return reject(new TesseraError('SANDBOX_UNAVAILABLE', 'The sandbox host is not running.'));
      if (signal?.aborted) return reject(cancelledError(signal).error);
      const id = nextId++;
      // The caller stops waiting at once; the host is told, so the plugin can stop (or be stopped) on its side.
      const onAbort = () => {
        if (!pending.delete(id)) return;
        const { reason, error } = cancelledError(signal!);
        cancelled.set(id, reason);
        send({ t: 'cancel', id, key: message.key, reason });
        reject(error);
      };
      const settle = (reply: HostToRuntime & { t: 'done' }) => {
        signal?.removeEventListener('abort', onAbort);
        if (reply.ok) resolve({ value: reply.value ?? 'null', stats: reply.stats ?? { cpu_us: 0, wall_us: 0, heap_used_bytes: 0 } });
        else reject(fromErrorData(reply.error));
      };
      const fail = (err: TesseraError) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      pending.set(id, capability ? { resolve: settle, reject: fail, capability } : { resolve: settle, reject: fail });
      signal?.addEventListener('abort', onAbort, { once: true });
      message.id = id;
      send(message, coalesce);
    });

  return {
    get pid() {
      return child?.pid;
    },
    get restarts() {
      return restarts;
    },
    async load(plugin) {
      await whenReady();
      const reply = await request({ t: 'load', id: 0, plugin });
      if (!reply.ok) throw fromErrorData(reply.error);
      loaded.set(plugin.key, plugin);
    },
    async unload(key) {
      loaded.delete(key);
      if (!child) return;
      await whenReady();
      await request({ t: 'unload', id: 0, key });
    },
    call(key, input, ctx, now, capability, options) {
      const message: RuntimeToHost & { t: 'call' } = options?.heap ? { t: 'call', id: 0, key, input, ctx, now, heap: true } : { t: 'call', id: 0, key, input, ctx, now };
      // Fast path: a running host needs no wait (and no extra promise turns).
      if (up && !disposed) return callNow(message, capability, options?.signal, options?.coalesce);
      return whenReady().then(() => callNow(message, capability, options?.signal, options?.coalesce));
    },
    crash() {
      child?.kill('SIGKILL');
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      up = false;
      outbox.clear();
      const c = child;
      child = undefined;
      for (const [id, p] of pending) {
        pending.delete(id);
        p.reject(new TesseraError('SANDBOX_UNAVAILABLE', 'The sandbox is shutting down.'));
      }
      if (c) {
        const exited = new Promise<void>((r) => c.onExit(() => r()));
        c.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
        c.kill('SIGKILL');
      }
    },
  };
}
