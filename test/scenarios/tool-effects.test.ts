/**
 * Tool effects and idempotency keys (issue 13 point 12): a tool step's HTTP requests carry an `Idempotency-Key`
 * that is the same on every attempt of the step, after a retry and after the runtime is killed mid-step and
 * resumes it, so a receiver that honours the key applies the effect once. A real runtime in a child process, a
 * real plugin in the sandbox, a real HTTP receiver on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { makePublisher } from '../helpers/plugins.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

const worker = fileURLToPath(new URL('../fixtures/tool-effect-worker.ts', import.meta.url));

/** Charges for an order, then sends its receipt: two effects of one step. The charge's body holds the call's logical time, which differs between attempts. */
const PLUGIN = `export async function invoke(args, host) {
  const charge = await host.call('http.fetch', { url: args.base + '/charge', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ order: args.order, at: new Date().toISOString() }) });
  if (charge.status !== 200) throw new Error('the charge failed with ' + charge.status);
  const receipt = await host.call('http.fetch', { url: args.base + '/receipt', method: 'POST', body: JSON.stringify({ order: args.order }) });
  return { charge: charge.json, receipt: receipt.status };
}`;

interface Received {
  path: string;
  key: string | undefined;
  body: string;
}

const closers: Array<() => void> = [];
afterEach(() => {
  while (closers.length > 0) closers.pop()!();
});

/**
 * A receiver that applies each charge once per Idempotency-Key (and every time when a request has none). The first
 * charge fails with 503; the second is applied and then never answered (`onHeld`), as if the answer were lost.
 */
async function receiver(onHeld: () => void) {
  const received: Received[] = [];
  const applied = new Map<string, string>();
  let charges = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const key = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined;
      received.push({ path: req.url ?? '', key, body });
      if (req.url !== '/charge') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      const n = received.filter((r) => r.path === '/charge').length;
      if (n === 1) return void res.writeHead(503).end('busy');
      let answer = key === undefined ? undefined : applied.get(key);
      if (answer === undefined) {
        answer = JSON.stringify({ charge: ++charges });
        if (key !== undefined) applied.set(key, answer);
      }
      if (n === 2) return onHeld();
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, charges: () => charges };
}

/** One life of the worker: 'done' with the run's status, or 'killed' when `kill` was called first. */
function life(args: string[], killer: { kill?: () => void }): Promise<{ outcome: 'done' | 'killed'; status?: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    killer.kill = () => child.kill('SIGKILL');
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      const done = /^done (.*)$/m.exec(out);
      if (done) resolve({ outcome: 'done', status: JSON.parse(done[1]!) as Record<string, unknown> });
      else if (signal === 'SIGKILL') resolve({ outcome: 'killed' });
      else reject(new Error(`worker exited ${code}: ${err}`));
    });
  });
}

describe('tool effects', () => {
  it('sends one Idempotency-Key per effect, the same across a retry and a resume after SIGKILL mid-step', async () => {
    const killer: { kill?: () => void } = {};
    const rx = await receiver(() => killer.kill?.());
    const publisher = makePublisher('test');
    publisher.write({ name: 'effect-post', kind: 'tool', code: PLUGIN, capabilities: [{ name: 'http.fetch', origins: [rx.base] }] });
    const args = [tempDir('tessera-effects-'), publisher.root, publisher.trustDir, rx.base];

    // Life 1: the charge fails (503), the step is retried, and the retry's charge is applied but never answered:
    // the runtime is killed while the step waits for it.
    expect((await life(args, killer)).outcome).toBe('killed');
    // Life 2: the run resumes at that step and charges again; the receiver recognizes the key.
    const second = await life(args, killer);
    expect(second.outcome).toBe('done');
    expect(second.status).toMatchObject({ state: 'completed', bag: { paid: { charge: { charge: 1 }, receipt: 200 } } });
    const step = (second.status!['steps'] as Array<{ name: string; state: string; attempt: number }>)[0]!;
    // Attempts 1 (503) and 2 (killed) happened; the record of the second may have been lost with the process
    // (step bookkeeping is group-committed): the step runs again under the same key either way.
    expect(step).toMatchObject({ name: 'pay', state: 'completed' });
    expect(step.attempt).toBeGreaterThanOrEqual(2);

    const charges = rx.received.filter((r) => r.path === '/charge');
    expect(charges).toHaveLength(3);
    expect(charges[0]!.key).toMatch(/^b3:[0-9a-f]{64}$/);
    expect(new Set(charges.map((r) => r.key))).toEqual(new Set([charges[0]!.key]));
    // Same key though the bodies differ (the logical time in them): the key names the effect, not its bytes.
    expect(new Set(charges.map((r) => r.body)).size).toBeGreaterThan(1);
    expect(rx.charges()).toBe(1);
    // The step's other effect has a key of its own.
    const receipts = rx.received.filter((r) => r.path === '/receipt');
    expect(receipts).toHaveLength(1);
    expect(receipts[0]!.key).toMatch(/^b3:/);
    expect(receipts[0]!.key).not.toBe(charges[0]!.key);
  }, 120_000);
});

describe('tool effects inside the runtime', () => {
  it('journals a tool step’s events.emit and io.say once per step, however many attempts it takes', async () => {
    const publisher = makePublisher('test');
    const runtime = await createRuntime({ dataDir: tempDir('tessera-effects-'), shell: 'headless', logger: createMemoryLogger(), builtinTrustDir: publisher.trustDir });
    try {
      await runtime.plugins.load(publisher.write({
        name: 'emitter',
        kind: 'tool',
        capabilities: [{ name: 'kv' }, { name: 'events.emit' }, { name: 'io.say' }],
        // Fails on its first two attempts per label, after its effects.
        code: `export async function invoke(args, host) {
          const key = 'n/' + args.label;
          const n = ((await host.call('kv.get', { key })) ?? 0) + 1;
          await host.call('kv.set', { key, value: n });
          const first = await host.call('events.emit', { topic: 'shipped', payload: { label: args.label, attempt: n } });
          const second = await host.call('events.emit', { topic: 'shipped', payload: { label: args.label, attempt: n, again: true } });
          await host.call('io.say', { text: 'Shipped ' + args.label + '.' });
          if (n < 3) throw new Error('flaky ' + n);
          return { first: first.id, second: second.id, attempts: n };
        }`,
      }));
      runtime.scenarios.register(scenario('emit', [{ name: 'ship', tool: 'emitter', with: { label: '${ctx.label}' }, retries: { max: 3, backoff: 'fixed', initial: 10, max_delay: 10 }, output: 'out' }]));
      const a = await runtime.scenarios.wait(runtime.scenarios.run('emit', { label: 'a' }), 20_000);
      const b = await runtime.scenarios.wait(runtime.scenarios.run('emit', { label: 'b' }), 20_000);
      expect([a.state, b.state]).toEqual(['completed', 'completed']);
      expect(a.bag).toMatchObject({ out: { attempts: 3 } });
      const shipped = runtime.journal.query({ topic: 'plugin.emitter.shipped', limit: 100 }).events;
      // Two emits per step (each its own key), from the first attempt only; the later attempts got their ids back.
      expect(shipped.map((e) => e.payload)).toEqual([
        { label: 'a', attempt: 1 }, { label: 'a', attempt: 1, again: true },
        { label: 'b', attempt: 1 }, { label: 'b', attempt: 1, again: true },
      ]);
      expect((a.bag['out'] as { first: number; second: number })).toMatchObject({ first: shipped[0]!.id, second: shipped[1]!.id });
      const said = runtime.journal.query({ topic: 'io.say', limit: 100 }).events.map((e) => e.payload as { text: string; idempotency_key: string });
      expect(said.map((p) => p.text)).toEqual(['Shipped a.', 'Shipped b.']);
      expect(said[0]!.idempotency_key).toMatch(/^b3:/);
      expect(said[0]!.idempotency_key).not.toBe(said[1]!.idempotency_key);
    } finally {
      await runtime.close();
    }
  }, 60_000);

  it('refuses an Idempotency-Key header set by the plugin: the runtime sets it', async () => {
    const publisher = makePublisher('test');
    const runtime = await createRuntime({ dataDir: tempDir('tessera-effects-'), shell: 'headless', logger: createMemoryLogger(), builtinTrustDir: publisher.trustDir });
    try {
      await runtime.plugins.load(publisher.write({
        name: 'own-key',
        kind: 'tool',
        capabilities: [{ name: 'http.fetch', origins: ['http://127.0.0.1:9'] }],
        code: `export async function invoke(args, host) {
          return host.call('http.fetch', { url: 'http://127.0.0.1:9/x', method: 'POST', headers: { 'idempotency-key': 'mine' }, body: '{}' });
        }`,
      }));
      runtime.scenarios.register(scenario('own-key', [{ name: 'post', tool: 'own-key' }]));
      const done = await runtime.scenarios.wait(runtime.scenarios.run('own-key'), 20_000);
      expect(done).toMatchObject({ state: 'failed', error: { message: expect.stringContaining('Idempotency-Key header is set by the runtime') } });
    } finally {
      await runtime.close();
    }
  }, 60_000);
});
