/**
 * The hostile-plugin suite (issue 3 §9): every case is contained, answered with a clear error, and the
 * runtime keeps serving. Real isolates in a real sandbox host process; a real SQLite file; real HTTP.
 */
import { createServer } from 'node:http';
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { issuePermit } from '../../sandbox/permits.js';
import { cidOf } from '../../main/common/cid.js';
import { makePublisher } from '../helpers/plugins.js';
import { tempDir } from '../helpers/tmp.js';

let runtime: Runtime;
let publisher: ReturnType<typeof makePublisher>;
let fixtureOrigin: string;
let elsewhereOrigin: string;
const servers: Array<ReturnType<typeof createServer>> = [];

const NOW = Date.parse('2026-03-01T12:00:00Z');

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  publisher = makePublisher();
  runtime = await createRuntime({ dataDir: tempDir('tessera-hostile-', 'file'), shell: 'headless', logger: createMemoryLogger(), builtinTrustDir: publisher.trustDir });
  elsewhereOrigin = await listen((_req, res) => res.end('{"secret":true}'));
  fixtureOrigin = await listen((req, res) => {
    if (req.url === '/redirect') {
      res.writeHead(302, { location: `${elsewhereOrigin}/` });
      res.end();
    } else if (req.url === '/huge') {
      res.end('x'.repeat(2 * 1024 * 1024));
    } else {
      res.setHeader('content-type', 'application/json');
      res.end('{"temp_c":21}');
    }
  });
}, 60_000);

afterAll(async () => {
  await runtime?.close();
  servers.forEach((s) => s.close());
});

async function load(code: string, extra: Parameters<typeof publisher.write>[0] extends infer S ? Partial<S> : never = {}) {
  const dir = publisher.write({ code, ...extra });
  return (await runtime.plugins.load(dir)).key;
}

async function outcome(key: string, input: unknown = {}, opts: Parameters<Runtime['plugins']['run']>[2] = {}) {
  try {
    const r = await runtime.plugins.run(key, input, { now: NOW, ...opts });
    return { ok: true as const, output: r.output, result: r };
  } catch (err) {
    const e = err as { code: string; message: string };
    return { ok: false as const, code: e.code, message: e.message };
  }
}

/** After every hostile case, a well-behaved plugin still answers and the journal still writes. */
let healthy: string;
async function expectRuntimeServes() {
  healthy ??= await load('export function decide(input) { return { verdict: "ACK", reason: "fine " + input.n }; }');
  const r = await outcome(healthy, { n: 1 });
  expect(r).toMatchObject({ ok: true, output: { verdict: 'ACK', reason: 'fine 1' } });
  expect(runtime.bus.publish('test.alive', {}).id).toBeGreaterThan(0);
  expect(runtime.ready).toBe(true);
}

describe('hostile plugins: time and randomness', () => {
  it('sees only the logical time, however it reads the clock', async () => {
    const key = await load(`export function decide() {
      const seen = {
        now: Date.now(),
        newDate: new Date().getTime(),
        dateString: Date(),
        ctorViaProto: new (Object.getPrototypeOf(new Date()).constructor)().getTime(),
        ctorViaInstance: new (new Date().constructor)().getTime(),
        intl: typeof Intl,
        performance: typeof performance,
        timers: [typeof setTimeout, typeof setInterval, typeof queueMicrotask].join(","),
      };
      return { verdict: "ACK", reason: "clock", evidence: seen };
    }`);
    const r = await outcome(key);
    expect(r.ok).toBe(true);
    const ev = (r.output as { evidence: Record<string, unknown> }).evidence;
    expect(ev).toMatchObject({ now: NOW, newDate: NOW, ctorViaProto: NOW, ctorViaInstance: NOW, intl: 'undefined', performance: 'undefined', timers: 'undefined,undefined,undefined' });
    expect(ev['dateString']).toContain('2026');
    await expectRuntimeServes();
  });

  it('cannot use Math.random', async () => {
    const key = await load('export function decide() { return { verdict: "ACK", reason: String(Math.random()) }; }');
    const r = await outcome(key);
    expect(r).toMatchObject({ ok: false, code: 'PLUGIN_FAILED' });
    expect(r.ok === false && r.message).toMatch(/Math\.random is not available/);
  });

  it('gives byte-identical output for the same plugin and input, also across a sandbox-host restart', async () => {
    const key = await load('export function decide(input) { return { verdict: input.n % 2 ? "ACK" : "NACK", reason: "at " + new Date().toISOString(), evidence: { sq: input.n * input.n, list: [3, 1, 2].sort() } }; }');
    const a = await outcome(key, { n: 7 });
    const b = await outcome(key, { n: 7 });
    runtime.plugins.sandbox.crash();
    await expect(outcome(key, { n: 7 })).resolves.toMatchObject({ ok: false, code: 'SANDBOX_UNAVAILABLE' }).catch(() => undefined);
    let c = await outcome(key, { n: 7 });
    for (let i = 0; i < 20 && !c.ok; i++) c = await outcome(key, { n: 7 });
    expect(a.ok && b.ok && c.ok).toBe(true);
    if (a.ok && b.ok && c.ok) {
      expect(JSON.stringify(b.output)).toBe(JSON.stringify(a.output));
      expect(JSON.stringify(c.output)).toBe(JSON.stringify(a.output));
      expect(c.result.output_cid).toBe(a.result.output_cid);
    }
    await expectRuntimeServes();
  });
});

describe('hostile plugins: escaping the sandbox', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['process', 'process.exit(1)', /process is not defined/],
    ['require', 'require("fs")', /require is not defined/],
    ['fetch', 'fetch("http://127.0.0.1/")', /fetch is not defined/],
    ['eval', 'eval("1+1")', /eval is not available/],
    ['Function', 'Function("return this")()', /Function is not available/],
    ['constructor.constructor', '(function(){}).constructor.constructor("return process")()', /not available/],
    ['async constructor', '(async function(){}).constructor("return 1")', /not available/],
    ['WebAssembly', 'WebAssembly.compile(new Uint8Array(8))', /WebAssembly is not defined/],
    ['SharedArrayBuffer', 'new SharedArrayBuffer(8)', /SharedArrayBuffer is not defined/],
    ['Atomics', 'Atomics.wait', /Atomics is not defined/],
    ['WeakRef', 'new WeakRef({})', /WeakRef is not defined/],
  ];
  for (const [name, expr, message] of cases) {
    it(`cannot reach ${name}`, async () => {
      const key = await load(`export function decide() { const v = ${expr}; return { verdict: "ACK", reason: "escaped " + String(v) }; }`);
      const r = await outcome(key);
      expect(r).toMatchObject({ ok: false, code: 'PLUGIN_FAILED' });
      expect(r.ok === false && r.message).toMatch(message);
    });
  }

  it('cannot import modules, statically or dynamically', async () => {
    const dir = publisher.write({ code: 'import fs from "fs"; export function decide() { return { verdict: "ACK", reason: typeof fs }; }' });
    await expect(runtime.plugins.load(dir)).rejects.toMatchObject({ code: 'PLUGIN_FAILED', message: expect.stringMatching(/import of "fs" refused/) });
    const key = await load('export async function decide() { const m = await import("fs"); return { verdict: "ACK", reason: typeof m }; }');
    expect(await outcome(key)).toMatchObject({ ok: false, code: 'PLUGIN_FAILED' });
    await expectRuntimeServes();
  });

  it('cannot pollute prototypes through its output', async () => {
    const key = await load('export function decide() { return JSON.parse(\'{"verdict":"ACK","reason":"x","evidence":{"__proto__":{"polluted":true}}}\'); }');
    const r = await outcome(key);
    expect(r).toMatchObject({ ok: false, code: 'PLUGIN_OUTPUT_INVALID' });
    expect(r.ok === false && r.message).toMatch(/__proto__/);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('hostile plugins: resources', () => {
  it('has an infinite loop stopped by the CPU timeout', async () => {
    const key = await load('export function decide() { for (;;) {} }', { limits: { timeout_ms: 50 } });
    const started = Date.now();
    const r = await outcome(key);
    expect(r).toMatchObject({ ok: false, code: 'PLUGIN_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(2000);
    await expectRuntimeServes();
  });

  it('has a promise that never settles cut by the deadline, its isolate disposed and recreated', async () => {
    const key = await load('let calls = 0; export function decide(input) { calls++; if (input.hang) return new Promise(() => {}); return { verdict: "ACK", reason: "calls=" + calls }; }', { limits: { deadline_ms: 300 } });
    const r = await outcome(key, { hang: true });
    expect(r).toMatchObject({ ok: false, code: 'PLUGIN_TIMEOUT' });
    expect(r.ok === false && r.message).toMatch(/never settles/);
    // a fresh isolate: module state starts over
    expect(await outcome(key, { hang: false })).toMatchObject({ ok: true, output: { reason: 'calls=1' } });
  });

  it('has a memory bomb disposed at its memory limit', async () => {
    const key = await load('export function decide() { const a = []; for (;;) a.push(new Array(1e5).fill(a.length)); }', { limits: { memory_mb: 16, timeout_ms: 5000 } });
    const r = await outcome(key);
    expect(r).toMatchObject({ ok: false, code: 'PLUGIN_MEMORY_EXCEEDED' });
    await expectRuntimeServes();
  });

  it('has a huge output refused', async () => {
    const key = await load('export function decide() { return { verdict: "ACK", reason: "x", evidence: "y".repeat(3 * 1024 * 1024) }; }', { limits: { memory_mb: 64 } });
    const r = await outcome(key);
    expect(r).toMatchObject({ ok: false, code: 'PLUGIN_OUTPUT_INVALID' });
    expect(r.ok === false && r.message).toMatch(/limit/);
  });

  it('has deep recursion answered with an error', async () => {
    const key = await load('function f(n) { return f(n + 1) + 1; } export function decide() { return { verdict: "ACK", reason: String(f(0)) }; }');
    const r = await outcome(key);
    expect(r).toMatchObject({ ok: false, code: 'PLUGIN_FAILED' });
    expect(r.ok === false && r.message).toMatch(/call stack/);
    await expectRuntimeServes();
  });
});

describe('hostile plugins: outputs that are not JSON or not the contract', () => {
  const cases: Array<[string, string]> = [
    ['a function', '{ verdict: "ACK", reason: "x", evidence: () => 1 }'],
    ['a symbol', '{ verdict: "ACK", reason: "x", evidence: Symbol("s") }'],
    ['a BigInt', '{ verdict: "ACK", reason: "x", evidence: 10n }'],
    ['a cycle', '(() => { const o = { verdict: "ACK", reason: "x" }; o.evidence = o; return o; })()'],
    ['NaN', '{ verdict: "ACK", reason: "x", metrics: { score: NaN } }'],
    ['a Map', '{ verdict: "ACK", reason: "x", evidence: new Map() }'],
    ['a wrong verdict', '{ verdict: "MAYBE", reason: "x" }'],
    ['a missing reason', '{ verdict: "ACK" }'],
    ['an extra field', '{ verdict: "ACK", reason: "x", admin: true }'],
  ];
  for (const [name, expr] of cases) {
    it(`refuses ${name}`, async () => {
      const key = await load(`export function decide() { return ${expr}; }`);
      const r = await outcome(key);
      expect(r.ok).toBe(false);
      expect(r.ok === false && ['PLUGIN_OUTPUT_INVALID', 'PLUGIN_FAILED'].includes(r.code)).toBe(true);
    });
  }
});

describe('hostile plugins: capabilities', () => {
  it('cannot call a capability it was not granted; the refusal is journaled', async () => {
    const key = await load('export async function decide(input, ctx) { await ctx.host.call("kv.set", { key: "a", value: 1 }); return { verdict: "ACK", reason: "wrote" }; }');
    const r = await outcome(key);
    expect(r).toMatchObject({ ok: false, code: 'PLUGIN_FAILED' });
    expect(r.ok === false && r.message).toMatch(/kv\.set was not granted/);
    const denied = runtime.journal.query({ topic: 'plugin.capability_denied', order: 'desc', limit: 1 }).events[0];
    expect(denied?.payload).toMatchObject({ capability: 'kv.set', code: 'CAPABILITY_DENIED' });
  });

  it('uses a granted kv, scoped to itself and persistent', async () => {
    const key = await load('export async function decide(input, ctx) { const n = (await ctx.host.call("kv.get", { key: "n" })) ?? 0; await ctx.host.call("kv.set", { key: "n", value: n + 1 }); return { verdict: "ACK", reason: "n=" + (n + 1) }; }', { capabilities: [{ name: 'kv' }] });
    expect(await outcome(key)).toMatchObject({ ok: true, output: { reason: 'n=1' } });
    expect(await outcome(key)).toMatchObject({ ok: true, output: { reason: 'n=2' } });
  });

  it('fetches an allowlisted origin only with a permit, and never follows a redirect elsewhere', async () => {
    const code = 'export async function invoke(args, host) { const r = await host.call("http.fetch", { url: args.url }); return { status: r.status, json: r.json ?? null }; }';
    const key = await load(code, { kind: 'tool', capabilities: [{ name: 'http.fetch', origins: [fixtureOrigin] }] });
    const permitFor = (input: unknown) =>
      issuePermit(runtime.deviceKey, { input_cid: cidOf(input), scope: ['http.fetch'], expires_at: new Date(NOW + 60_000).toISOString(), nonce: `n-${Math.random().toString(36).slice(2)}` });

    const okInput = { url: `${fixtureOrigin}/weather` };
    expect(await outcome(key, okInput, { permit: permitFor(okInput) })).toMatchObject({ ok: true, output: { status: 200, json: { temp_c: 21 } } });

    const noPermit = await outcome(key, okInput);
    expect(noPermit).toMatchObject({ ok: false, code: 'PLUGIN_FAILED' });
    expect(noPermit.ok === false && noPermit.message).toMatch(/no permit/);

    const otherInput = { url: `${fixtureOrigin}/weather?x=1` };
    const wrongInput = await outcome(key, otherInput, { permit: permitFor(okInput) });
    expect(wrongInput.ok === false && wrongInput.message).toMatch(/bound to input/);

    const replayed = permitFor(okInput);
    expect((await outcome(key, okInput, { permit: replayed })).ok).toBe(true);
    const replay = await outcome(key, okInput, { permit: replayed });
    expect(replay.ok === false && replay.message).toMatch(/already used/);

    const elsewhere = { url: `${elsewhereOrigin}/` };
    const direct = await outcome(key, elsewhere, { permit: permitFor(elsewhere) });
    expect(direct.ok === false && direct.message).toMatch(/not in this plugin's allowlist/);

    const redirect = { url: `${fixtureOrigin}/redirect` };
    const redirected = await outcome(key, redirect, { permit: permitFor(redirect) });
    expect(redirected.ok === false && redirected.message).toMatch(/redirect .* leaves this plugin's allowlist/);

    const huge = { url: `${fixtureOrigin}/huge` };
    const big = await outcome(key, huge, { permit: permitFor(huge) });
    expect(big.ok === false && big.message).toMatch(/over \d+ bytes/);
    await expectRuntimeServes();
  });
});

describe('the sandbox host process', () => {
  it('restarts after a crash, fails calls in flight clearly, reloads plugins and serves the next call', async () => {
    const key = await load('export async function decide(input, ctx) { return { verdict: "ACK", reason: "alive" }; }');
    const pidBefore = runtime.plugins.sandbox.pid;
    const restartsBefore = runtime.plugins.sandbox.restarts;
    const inFlight = outcome(key);
    runtime.plugins.sandbox.crash();
    const failed = await inFlight;
    if (!failed.ok) expect(failed.code).toBe('SANDBOX_UNAVAILABLE');
    let next = await outcome(key);
    for (const end = Date.now() + 20_000; !next.ok && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 20));
      next = await outcome(key);
    }
    expect(next).toMatchObject({ ok: true, output: { reason: 'alive' } });
    expect(runtime.plugins.sandbox.pid).not.toBe(pidBefore);
    expect(runtime.plugins.sandbox.restarts).toBe(restartsBefore + 1);
    expect(runtime.journal.query({ topic: 'sandbox.restarted' }).events.length).toBeGreaterThan(0);
    await expectRuntimeServes();
  });
});

describe('heap readings', () => {
  it('reads the heap after every call by default; freshHeap false reports the latest reading instead', async () => {
    // Each call keeps ~4 MB more in module state, so a reading taken after the call grows from call to call. The CPU
    // limit is far above what the allocation needs, so a garbage collection on a busy machine does not cut a call.
    const key = await load('const kept = []; export function decide() { kept.push(new Array(500000).fill(kept.length)); return { verdict: "ACK", reason: String(kept.length) }; }', { limits: { memory_mb: 128, timeout_ms: 1000 } });
    const fresh = [];
    for (let i = 0; i < 3; i++) fresh.push((await runtime.plugins.run(key, {}, { now: NOW })).heap_used_bytes);
    expect(fresh[1]!).toBeGreaterThan(fresh[0]! + 1_000_000);
    expect(fresh[2]!).toBeGreaterThan(fresh[1]! + 1_000_000);
    // Back to back (well within the 50 ms sampling period): the same reading, not a new one per call.
    const sampled = [];
    for (let i = 0; i < 3; i++) sampled.push((await runtime.plugins.run(key, {}, { now: NOW, freshHeap: false })).heap_used_bytes);
    expect(new Set(sampled).size).toBeLessThan(3);
    expect(sampled[0]!).toBeGreaterThan(0);
  });
});
