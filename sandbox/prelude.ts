/**
 * The first code every plugin isolate runs (DESIGN.md "Sandbox rules"). It removes ambient authority and
 * non-determinism from the context, then defines the dispatcher the host calls. It runs before the plugin,
 * captures the intrinsics it needs, and leaves no host Reference reachable from plugin code.
 *
 * Contract with sandbox/isolate.ts:
 * - globals `__tessera_cap` (a Reference to the host's capability function) and `__tessera_kind` are read
 *   once here and deleted;
 * - `globalThis.__tessera_register(namespace)` is called by the entry module with the plugin's exports, then
 *   deleted;
 * - the dispatcher `__tessera_dispatch(input, ctx, now, callId)` takes JSON strings and returns a JSON string
 *   `{"ok":true,"value":…}`, `{"ok":false,"error":{"name","message"}}`, or `{"pending":true}` when the plugin
 *   returned a promise: then `__tessera_settle(callId)` resolves to one of the first two;
 * - `__tessera_cancel(callId)` marks a parked call cancelled: its `host.cancelled()` turns true and its
 *   `host.call` rejects at once with a CapabilityError whose code is RUN_CANCELLED.
 */
export const PRELUDE = String.raw`
'use strict';
(() => {
  const G = globalThis;
  const capRef = G.__tessera_cap;
  const kindFunction = G.__tessera_kind;
  delete G.__tessera_cap;
  delete G.__tessera_kind;

  const parse = JSON.parse;
  const stringify = JSON.stringify;
  const freeze = Object.freeze;
  const defineProperty = Object.defineProperty;
  const getPrototypeOf = Object.getPrototypeOf;
  const isArray = Array.isArray;
  const StringCtor = String;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const PromiseCtor = Promise;
  const promiseThen = Promise.prototype.then;

  class SandboxViolation extends ErrorCtor {
    constructor(message) { super(message); this.name = 'SandboxViolation'; }
  }
  const forbid = (what, why) => function forbidden() { throw new SandboxViolation(what + ' is not available in the Tessera sandbox: ' + why); };

  // 1. No clock: Date reads the logical time the host passes with each call.
  const RealDate = Date;
  let logicalNow = 0;
  function SandboxDate(...args) {
    if (!new.target) return new RealDate(logicalNow).toString();
    return args.length === 0 ? new RealDate(logicalNow) : new RealDate(...args);
  }
  SandboxDate.now = function now() { return logicalNow; };
  SandboxDate.parse = RealDate.parse;
  SandboxDate.UTC = RealDate.UTC;
  SandboxDate.prototype = RealDate.prototype;
  defineProperty(RealDate.prototype, 'constructor', { value: SandboxDate, writable: false, enumerable: false, configurable: false });
  defineProperty(G, 'Date', { value: SandboxDate, writable: false, enumerable: false, configurable: false });

  // 2. No randomness: pass it in the input, so the same input gives the same output.
  defineProperty(Math, 'random', { value: forbid('Math.random', 'pass randomness in the input'), writable: false, configurable: false });

  // 3. No clocks, threads, wasm, weak references or consoles.
  for (const name of ['Intl', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'WeakRef', 'FinalizationRegistry', 'console', 'performance', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask']) {
    delete G[name];
  }

  // 4. No code from strings: eval and every Function constructor throw.
  const ctors = [Function, async function () {}.constructor, function* () {}.constructor, async function* () {}.constructor];
  for (const C of ctors) {
    defineProperty(C.prototype, 'constructor', { value: forbid('Function', 'code from strings is forbidden'), writable: false, configurable: false });
  }
  defineProperty(G, 'Function', { value: forbid('Function', 'code from strings is forbidden'), writable: false, configurable: false });
  defineProperty(G, 'eval', { value: forbid('eval', 'code from strings is forbidden'), writable: false, configurable: false });

  // 5. Outputs must be JSON: no functions, symbols, BigInt, undefined, non-finite numbers or cycles.
  const toJson = (value) => stringify(value, function replacer(key, v) {
    const t = typeof v;
    if (t === 'function' || t === 'symbol' || t === 'bigint' || t === 'undefined') {
      throw new TypeErrorCtor('output is not JSON: ' + (key === '' ? 'the value' : '"' + key + '"') + ' is a ' + t);
    }
    if (t === 'number' && !(v - v === 0)) throw new TypeErrorCtor('output is not JSON: "' + key + '" is ' + StringCtor(v));
    if (t === 'object' && v !== null && !isArray(v)) {
      const proto = getPrototypeOf(v);
      if (proto !== null && proto !== Object.prototype) throw new TypeErrorCtor('output is not JSON: "' + key + '" is not a plain object');
    }
    return v;
  });

  const errorOf = (e) => {
    if (e !== null && typeof e === 'object') {
      let name = 'Error';
      let message = '';
      try { name = StringCtor(e.name); message = StringCtor(e.message); } catch { message = 'unreadable error'; }
      return { name, message: message.slice(0, 1000) };
    }
    let message = 'non-error value thrown';
    try { message = 'threw ' + StringCtor(e).slice(0, 200); } catch {}
    return { name: 'Error', message };
  };

  let plugin = null;
  G.__tessera_register = (namespace) => {
    delete G.__tessera_register;
    const fn = namespace[kindFunction] ?? (namespace.default && namespace.default[kindFunction]);
    if (typeof fn !== 'function') throw new TypeErrorCtor('the plugin does not export a function "' + kindFunction + '"');
    plugin = { fn, self: namespace.default ?? namespace };
  };

  // Calls parked on a promise, and those of them the runtime cancelled (its run was cancelled).
  const active = new Set();
  const cancelledCalls = new Set();
  const cancelledError = () => {
    const err = new ErrorCtor('the run was cancelled: stop and return');
    err.name = 'CapabilityError';
    err.code = 'RUN_CANCELLED';
    return err;
  };

  const makeHost = (callId) => freeze({
    cancelled() {
      return cancelledCalls.has(callId);
    },
    call(capability, params) {
      if (cancelledCalls.has(callId)) return PromiseCtor.reject(cancelledError());
      if (typeof capability !== 'string') return PromiseCtor.reject(new TypeErrorCtor('host.call(capability, params): capability must be a string'));
      let paramsJson;
      try { paramsJson = toJson(params === undefined ? null : params); } catch (e) { return PromiseCtor.reject(e); }
      const pending = capRef.apply(undefined, [callId, capability, paramsJson], { arguments: { copy: true }, result: { promise: true, copy: true } });
      return promiseThen.call(pending, (reply) => {
        const r = parse(reply);
        if (r.ok) return r.value;
        const err = new ErrorCtor(r.error.message);
        err.name = 'CapabilityError';
        err.code = r.error.code;
        throw err;
      });
    },
  });

  const ok = (value) => '{"ok":true,"value":' + toJson(value === undefined ? null : value) + '}';
  const failed = (e) => stringify({ ok: false, error: errorOf(e) });
  const inFlight = new Map();

  // Synchronous fast path: a plugin that returns a plain value is answered in the same turn. A plugin that
  // returns a thenable is parked under its call id and finished by __tessera_settle.
  G.__tessera_dispatch = (inputJson, ctxJson, now, callId) => {
    logicalNow = now;
    try {
      if (!plugin) throw new TypeErrorCtor('plugin not registered');
      const input = parse(inputJson);
      const ctx = parse(ctxJson);
      const host = makeHost(callId);
      let result;
      if (kindFunction === 'invoke') result = plugin.fn.call(plugin.self, input, host);
      else {
        defineProperty(ctx, 'host', { value: host, enumerable: false });
        result = plugin.fn.call(plugin.self, input, ctx);
      }
      if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof result.then === 'function') {
        inFlight.set(callId, result);
        active.add(callId);
        return '{"pending":true}';
      }
      return ok(result);
    } catch (e) {
      return failed(e);
    }
  };
  G.__tessera_settle = async (callId) => {
    const pending = inFlight.get(callId);
    inFlight.delete(callId);
    try {
      return ok(await pending);
    } catch (e) {
      return failed(e);
    } finally {
      active.delete(callId);
      cancelledCalls.delete(callId);
    }
  };
  G.__tessera_cancel = (callId) => {
    if (active.has(callId)) cancelledCalls.add(callId);
  };
})();
`;
