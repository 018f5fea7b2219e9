/**
 * One policy `decide` through the whole sandbox path (runtime → sandbox host process → isolate → back),
 * against the layers underneath measured in the same run: the same function in-process as plain JS, the same
 * code in an isolated-vm isolate in-process, the host's own isolate wrapper in-process, and a bare JSON round
 * trip to a child process. Also the registry on top (input checks, output validation, journaling), a cold
 * load, and memory per loaded plugin. Targets from the benchmark issue (2-core machine): full-path p50 ≤ 100 µs,
 * ≥ 50,000 decisions/s with 64 in flight, cold load ≤ 15 ms.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ivm from 'isolated-vm';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { generateKeyPair } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createLogger } from '../../main/runtime/log/index.js';
import { openTrustStore } from '../../main/runtime/trust/index.js';
import type { TrustStore } from '../../main/runtime/trust/index.js';
import { createSandboxHost } from '../../sandbox/client.js';
import type { SandboxHost } from '../../sandbox/client.js';
import { createPluginIsolate } from '../../sandbox/isolate.js';
import { signPlugin, verifyPlugin } from '../../sandbox/package.js';
import type { IsolateLimits, LoadRequest } from '../../sandbox/protocol.js';
import type { AnyBenchmark, AsyncSide, FigureSide } from './harness.js';

/** The policy under test. Its source is also the plugin's code, so every side runs the same function. */
function decide(input: { amount: number; limit: number; user: string }) {
  if (input.amount > input.limit) return { verdict: 'NACK', reason: 'over the limit by ' + (input.amount - input.limit) + ' for ' + input.user };
  return { verdict: 'ACK', reason: 'within the limit for ' + input.user };
}

const DECIDE_SOURCE = decide.toString();
const PLUGIN_CODE = `export ${DECIDE_SOURCE}\n`;
const INPUT = { amount: 42, limit: 100, user: 'kiosk-7' };
const INPUT_JSON = JSON.stringify(INPUT);
const NOW = Date.parse('2026-03-01T12:00:00Z');
const CTX_JSON = JSON.stringify({ now: new Date(NOW).toISOString(), trace_id: '0'.repeat(32), plugin: { name: 'bench-policy', version: '1.0.0' } });
const LIMITS: IsolateLimits = { memoryMb: 32, timeoutMs: 50, deadlineMs: 5000, maxOutputChars: 1024 * 1024 };
const IN_FLIGHT = 64;
const quiet = () => createLogger({ level: 'error', pretty: false, write: () => undefined });
const request = (key: string): LoadRequest => ({ key, kind: 'policy', code: PLUGIN_CODE, limits: LIMITS });

// ---------------------------------------------------------------- sides

const plainJs: AsyncSide = {
  name: 'plain JS decide in-process (JSON in/out)',
  setup: () => ({ run: () => JSON.stringify(decide(JSON.parse(INPUT_JSON) as typeof INPUT)) }),
};

const rawIsolate: AsyncSide = {
  name: 'same code in an isolate in-process (applySync)',
  setup() {
    const isolate = new ivm.Isolate({ memoryLimit: LIMITS.memoryMb });
    const context = isolate.createContextSync();
    const fn = isolate.compileScriptSync(`(() => { ${DECIDE_SOURCE}; return (inputJson) => JSON.stringify(decide(JSON.parse(inputJson))); })()`).runSync(context, { reference: true }) as ivm.Reference<(s: string) => string>;
    // A CPU timeout is armed as the host arms one (its cost is part of the call); a generous one, because
    // isolated-vm counts wall time and a baseline that throws on a busy machine would void the whole benchmark.
    const opts = { timeout: 1000 } as const;
    return { run: () => fn.applySync(undefined, [INPUT_JSON], opts), teardown: () => isolate.dispose() };
  },
};

const pluginIsolate: AsyncSide = {
  name: "host's plugin isolate in-process (prelude, stats)",
  async setup() {
    const plugin = createPluginIsolate({ key: 'bench', kind: 'policy', code: PLUGIN_CODE, limits: LIMITS, capability: () => Promise.resolve('null') });
    await plugin.warm();
    let id = 0;
    return { run: () => plugin.call(INPUT_JSON, CTX_JSON, NOW, ++id), teardown: () => plugin.dispose() };
  },
};

/** The floor of any out-of-process design: a JSON message to a child process and back, nothing else. */
const ECHO_CHILD = `process.on('message', (m) => process.send({ t: 'done', id: m.id, ok: true, value: '{"verdict":"ACK","reason":"within the limit for kiosk-7"}' }));`;
const childEcho: AsyncSide = {
  name: 'bare JSON round trip to a child process',
  async setup() {
    const child = spawn(process.execPath, ['-e', ECHO_CHILD], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    const pending = new Map<number, () => void>();
    child.on('message', (m: { id: number }) => {
      pending.get(m.id)?.();
      pending.delete(m.id);
    });
    await new Promise<void>((r) => child.once('spawn', () => r()));
    let id = 0;
    return {
      run: () =>
        new Promise<void>((resolve) => {
          const n = ++id;
          pending.set(n, resolve);
          child.send({ t: 'call', id: n, key: 'bench-policy@1.0.0#00000000', input: INPUT_JSON, ctx: CTX_JSON, now: NOW });
        }),
      teardown: () => new Promise<void>((r) => {
        child.once('exit', () => r());
        child.kill();
      }),
    };
  },
};

const fullPath: AsyncSide = {
  name: 'sandbox host: runtime → host process → isolate',
  async setup() {
    const host = createSandboxHost({ logger: quiet() });
    await host.load(request('bench-policy@1.0.0#00000000'));
    return { run: () => host.call('bench-policy@1.0.0#00000000', INPUT_JSON, CTX_JSON, NOW), teardown: () => host.dispose() };
  },
};

// ------------------------------------------------------- signed plugins and a runtime

interface Publisher {
  key: SigningKey;
  trust: TrustStore;
  trustDir: string;
  root: string;
  /** A signed policy plugin folder. */
  write(name: string): string;
}

const cleanups: Array<() => Promise<void> | void> = [];

function makePublisher(): Publisher {
  const key = generateKeyPair();
  const trustDir = mkdtempSync(join(tmpdir(), 'bench-trust-'));
  const root = mkdtempSync(join(tmpdir(), 'bench-plugins-'));
  cleanups.push(() => rmSync(trustDir, { recursive: true, force: true }), () => rmSync(root, { recursive: true, force: true }));
  const trust = openTrustStore(trustDir);
  trust.add(key.publicKeyPem, 'bench-publisher');
  return {
    key,
    trust,
    trustDir,
    root,
    write(name) {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'plugin.js'), PLUGIN_CODE);
      writeFileSync(join(dir, 'plugin.json'), JSON.stringify({ name, version: '1.0.0', kind: 'policy', entry: 'plugin.js', entry_cid: 'b3:' + '0'.repeat(64), capabilities: [] }, null, 2));
      signPlugin(dir, key);
      return dir;
    },
  };
}

let publisherOnce: Publisher | undefined;
const publisher = () => (publisherOnce ??= makePublisher());
let pluginSerial = 0;

async function openRuntime(): Promise<{ runtime: Runtime; close(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-runtime-'));
  const runtime = await createRuntime({ dataDir, shell: 'headless', logger: quiet(), builtinTrustDir: publisher().trustDir });
  return {
    runtime,
    async close() {
      await runtime.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const registry: AsyncSide = {
  name: 'registry: runtime.plugins.run (checks, journal)',
  async setup() {
    const { runtime, close } = await openRuntime();
    const { key } = await runtime.plugins.load(publisher().write(`bench-registry-${++pluginSerial}`));
    return { run: () => runtime.plugins.run(key, INPUT, { now: NOW }), teardown: close };
  },
};

// ------------------------------------------------------------- cold load

/** One runtime shared by the cold-load rounds, started before the first is timed. */
let coldRuntime: Promise<{ runtime: Runtime; close(): Promise<void> }> | undefined;
const COLD_LOADS_PER_ROUND = 10;

const medianOf = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const coldLoad: FigureSide = {
  name: 'registry: verify + compile + first call, in the host',
  async measure() {
    coldRuntime ??= openRuntime().then((r) => (cleanups.push(r.close), r));
    const { runtime } = await coldRuntime;
    const dirs = Array.from({ length: COLD_LOADS_PER_ROUND }, () => publisher().write(`bench-cold-${++pluginSerial}`));
    const times: number[] = [];
    for (const dir of dirs) {
      const start = process.hrtime.bigint();
      const { key } = await runtime.plugins.load(dir);
      await runtime.plugins.run(key, INPUT, { now: NOW });
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
      await runtime.plugins.unload(key);
    }
    return medianOf(times);
  },
};

const coldVerify: FigureSide = {
  name: 'verify alone (signature + cids), in-process',
  measure() {
    const dirs = Array.from({ length: COLD_LOADS_PER_ROUND }, () => publisher().write(`bench-verify-${++pluginSerial}`));
    return medianOf(
      dirs.map((dir) => {
        const start = process.hrtime.bigint();
        verifyPlugin(dir, publisher().trust);
        return Number(process.hrtime.bigint() - start) / 1e6;
      }),
    );
  },
};

const coldIsolate: FigureSide = {
  name: 'isolate create + compile + first call, in-process',
  async measure() {
    const times: number[] = [];
    for (let i = 0; i < COLD_LOADS_PER_ROUND; i++) {
      const start = process.hrtime.bigint();
      const plugin = createPluginIsolate({ key: `cold-${i}`, kind: 'policy', code: PLUGIN_CODE, limits: LIMITS, capability: () => Promise.resolve('null') });
      await plugin.warm();
      await plugin.call(INPUT_JSON, CTX_JSON, NOW, 1);
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
      plugin.dispose();
    }
    return medianOf(times);
  },
};

// ---------------------------------------------------------------- memory

const MANY = 50;
const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

async function loadPlugins(host: SandboxHost, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const key = `bench-mem-${i}@1.0.0#00000000`;
    await host.load(request(key));
    await host.call(key, INPUT_JSON, CTX_JSON, NOW);
  }
}

/** RSS of the sandbox host once plugins `loadedBefore`…`count - 1` are loaded too (each called once), KiB. */
async function hostRssWith(host: SandboxHost, count: number, loadedBefore: number): Promise<number> {
  await loadPlugins(host, loadedBefore, count);
  await new Promise((r) => setTimeout(r, 50));
  return rssKiB(host.pid!);
}

const memPerPlugin: FigureSide = {
  name: `sandbox host RSS per plugin (${MANY} vs 1 loaded)`,
  async measure() {
    const host = createSandboxHost({ logger: quiet() });
    try {
      const one = await hostRssWith(host, 1, 0);
      return ((await hostRssWith(host, MANY, 1)) - one) / (MANY - 1);
    } finally {
      await host.dispose();
    }
  },
};

const heapPerPlugin: FigureSide = {
  name: "plugin isolate's used heap after a call (V8)",
  async measure() {
    const plugin = createPluginIsolate({ key: 'heap', kind: 'policy', code: PLUGIN_CODE, limits: LIMITS, capability: () => Promise.resolve('null') });
    try {
      const outcome = await plugin.call(INPUT_JSON, CTX_JSON, NOW, 1);
      return (outcome.stats?.heap_used_bytes ?? NaN) / 1024;
    } finally {
      plugin.dispose();
    }
  },
};

const bareIsolates: FigureSide = {
  name: 'bare isolate + empty context, in-process RSS',
  measure() {
    const isolates: ivm.Isolate[] = [];
    const before = process.memoryUsage().rss;
    for (let i = 0; i < MANY; i++) {
      const isolate = new ivm.Isolate({ memoryLimit: LIMITS.memoryMb });
      isolate.createContextSync();
      isolates.push(isolate);
    }
    const per = (process.memoryUsage().rss - before) / MANY / 1024;
    for (const i of isolates) i.dispose();
    return per;
  },
};

const hostRss: FigureSide = {
  name: 'sandbox host RSS with 1 plugin loaded',
  async measure() {
    const host = createSandboxHost({ logger: quiet() });
    try {
      return (await hostRssWith(host, 1, 0)) / 1024;
    } finally {
      await host.dispose();
    }
  },
};
const childRss: FigureSide = {
  name: 'bare node child process RSS',
  async measure() {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const rss = rssKiB(child.pid!) / 1024;
    await new Promise<void>((r) => {
      child.once('exit', () => r());
      child.kill();
    });
    return rss;
  },
};

// Every round starts a fresh sandbox host; thousands of untimed calls first let both processes' JITs settle
// (a cold host answers about twice as slowly for its first few thousand calls).
export const benchmarks: AnyBenchmark[] = [
  { kind: 'latency', name: 'decide, full path', samples: 2000, warmup: 3000, candidate: fullPath, baselines: [plainJs, rawIsolate, pluginIsolate, childEcho], target: { max: 100 } },
  { kind: 'throughput', name: 'decide, full path', inFlight: IN_FLIGHT, ops: 20_000, warmup: 10_000, candidate: fullPath, baselines: [plainJs, rawIsolate, pluginIsolate, childEcho], target: { min: 50_000 } },
  { kind: 'latency', name: 'decide via the registry', samples: 1000, warmup: 3000, candidate: registry, baselines: [fullPath] },
  { kind: 'throughput', name: 'decide via the registry', inFlight: IN_FLIGHT, ops: 5_000, warmup: 5_000, candidate: registry, baselines: [fullPath] },
  { kind: 'figure', name: 'plugin cold load', unit: 'ms', candidate: coldLoad, baselines: [coldIsolate, coldVerify], target: { max: 15 } },
  { kind: 'figure', name: 'memory per loaded plugin', unit: 'KiB', candidate: memPerPlugin, baselines: [heapPerPlugin, bareIsolates] },
  { kind: 'figure', name: 'sandbox host process memory', unit: 'MiB', candidate: hostRss, baselines: [childRss] },
];

export async function dispose(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!();
}
