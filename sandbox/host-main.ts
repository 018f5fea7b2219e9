/**
 * Entry point of the sandbox host process: a child of the runtime (child_process.fork headless, Electron
 * utilityProcess in the app) that holds every plugin isolate, so a V8 out-of-memory or a native crash costs
 * this process, never the runtime or its database (isolated-vm's own advice; DESIGN.md "Processes").
 *
 * It speaks sandbox/protocol.ts over the parent channel and has no other authority: capability calls are
 * forwarded to the runtime, which decides.
 */
import type { ErrorData } from '../main/common/errors.js';
import { createOutbox } from './protocol.js';
import type { HostToRuntime, RuntimeToHost } from './protocol.js';
import { createPluginIsolate } from './isolate.js';
import type { CallOutcome, PluginIsolate } from './isolate.js';

interface Channel {
  send(message: HostToRuntime): void;
  onMessage(listener: (message: RuntimeToHost) => void): void;
}

/** The parent channel: Electron's utilityProcess gives `process.parentPort`, Node's fork gives `process.send`. */
function parentChannel(): Channel {
  const parentPort = (process as unknown as { parentPort?: { postMessage(m: unknown): void; on(e: 'message', l: (e: { data: unknown }) => void): void } }).parentPort;
  if (parentPort) {
    return {
      send: (m) => parentPort.postMessage(m),
      onMessage: (l) => parentPort.on('message', (e) => l(e.data as RuntimeToHost)),
    };
  }
  if (!process.send) throw new Error('the sandbox host must be started by the Tessera runtime');
  return {
    send: (m) => void process.send!(m),
    onMessage: (l) => process.on('message', (m) => l(m as RuntimeToHost)),
  };
}

const parent = parentChannel();
// Replies are queued and leave together (protocol.ts createOutbox): at the end of each incoming message or
// batch for the calls it answered synchronously, from a microtask for the rest (loads, asynchronous plugins,
// capability calls).
const channel = createOutbox<HostToRuntime>((m) => parent.send(m));
const plugins = new Map<string, PluginIsolate>();
const pendingCaps = new Map<number, { resolve: (json: string) => void }>();
let nextCapId = 1;
/** Calls the runtime cancelled that have not answered yet: their capability calls are refused here, at once. */
const cancelledCalls = new Map<number, string>();

const capability = (callId: number, capabilityName: string, params: string): Promise<string> =>
  new Promise((resolve) => {
    const reason = cancelledCalls.get(callId);
    if (reason !== undefined) {
      resolve(JSON.stringify({ ok: false, error: { code: 'RUN_CANCELLED', message: `${capabilityName} refused: the run was cancelled (${reason}); stop and return.` } }));
      return;
    }
    const id = nextCapId++;
    pendingCaps.set(id, { resolve });
    channel.send({ t: 'cap', id, call: callId, capability: capabilityName, params });
  });

const done = (id: number, outcome: CallOutcome): HostToRuntime =>
  outcome.ok ? { t: 'done', id, ok: true, value: outcome.value, stats: outcome.stats } : { t: 'done', id, ok: false, error: outcome.error, ...(outcome.stats ? { stats: outcome.stats } : {}) };

const handle = (message: RuntimeToHost): void => {
  switch (message.t) {
    case 'load': {
      const { key, kind, code, limits } = message.plugin;
      plugins.get(key)?.dispose();
      const plugin = createPluginIsolate({ key, kind, code, limits, capability });
      plugins.set(key, plugin);
      plugin.warm().then(
        () => channel.send({ t: 'done', id: message.id, ok: true }),
        (err: Error & { data?: ErrorData }) => {
          plugin.dispose();
          plugins.delete(key);
          channel.send({ t: 'done', id: message.id, ok: false, error: err.data ?? { code: 'PLUGIN_FAILED', message: String(err.message) } });
        },
      );
      return;
    }
    case 'unload':
      plugins.get(message.key)?.dispose();
      plugins.delete(message.key);
      channel.send({ t: 'done', id: message.id, ok: true });
      return;
    case 'call': {
      const plugin = plugins.get(message.key);
      if (!plugin) {
        channel.send({ t: 'done', id: message.id, ok: false, error: { code: 'PLUGIN_NOT_FOUND', message: `${message.key} is not loaded in the sandbox.` } });
        return;
      }
      const { id } = message;
      const outcome = plugin.call(message.input, message.ctx, message.now, id, message.heap === true);
      if (outcome instanceof Promise) {
        void outcome.then((o) => {
          cancelledCalls.delete(id);
          channel.send(done(id, o));
        });
      } else channel.send(done(id, outcome));
      return;
    }
    case 'cancel': {
      const plugin = plugins.get(message.key);
      // Only a call still parked on a promise can be cancelled; one that finished has answered already.
      if (plugin?.cancel(message.id, message.reason)) cancelledCalls.set(message.id, message.reason);
      return;
    }
    case 'cap-result': {
      const pending = pendingCaps.get(message.id);
      if (!pending) return;
      pendingCaps.delete(message.id);
      pending.resolve(JSON.stringify(message.ok ? { ok: true, value: JSON.parse(message.value) as unknown } : { ok: false, error: message.error }));
      return;
    }
    case 'ping':
      channel.send({ t: 'done', id: message.id, ok: true, value: String(plugins.size) });
      return;
    case 'batch':
      for (const m of message.messages) handle(m);
      return;
  }
};

parent.onMessage((message) => {
  handle(message);
  channel.flush();
});

// The runtime going away ends this process: an orphaned sandbox host must never linger.
process.on('disconnect', () => process.exit(0));
channel.send({ t: 'ready', pid: process.pid });
channel.flush();
