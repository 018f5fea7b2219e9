/**
 * A database locked by another process (issue 13 point 7): a process holding the write lock for 5 s killed the
 * runtime through an uncaught SQLITE_BUSY in the schedule tick. Here a real second process opens the same file
 * and holds `BEGIN IMMEDIATE` while the runtime's loops and HTTP routes need to write: the runtime stays up,
 * answers 503 STORE_BUSY (retryable), never 500, and catches up by itself once the lock is released.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { DATABASE_FILE } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');
/** A second process: opens the database, takes the write lock, says `locked`, commits when told on stdin. */
const HOLDER = `
const Database = require(process.argv[1]);
const db = new Database(process.argv[2]);
db.pragma('busy_timeout = 10000');
db.exec('BEGIN IMMEDIATE');
process.stdout.write('locked\\n');
process.stdin.once('data', () => { db.exec('COMMIT'); db.close(); process.exit(0); });
`;

async function holdWriteLock(file: string): Promise<{ release(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', HOLDER, DRIVER, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    void exited.then(() => reject(new Error('the lock holder exited before taking the lock')));
  });
  cleanup.push(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  return {
    async release() {
      child.stdin.write('go\n');
      await exited;
    },
  };
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});

async function start() {
  const logger = createMemoryLogger();
  const dataDir = tempDir('tessera-busy-');
  const host: RunningHost = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger, shell: 'headless', env: {}, pluginDirs: [], scenarioDirs: [] });
  cleanup.push(() => host.close());
  host.runtime.scenarios.register(scenario('note', [{ name: 'n', action: 'bus.publish', with: { topic: 'test.noted', payload: { run: '${run.id}' } } }]));
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${host.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const logged = (text: string) => logger.lines.filter((l) => String(l['msg']).includes(text)).length;
  return { host, api, logged, db: join(dataDir, DATABASE_FILE) };
}

describe('a database locked by another process', () => {
  it('keeps the runtime up through a schedule tick that cannot write, answers 503 STORE_BUSY meanwhile, and fires the schedule once the lock is free', async () => {
    const { host, api, logged, db } = await start();
    const at = new Date(Date.now() + 1500).toISOString().replace('Z', '+00:00');
    const created = await api('POST', '/api/schedules', { scenario_id: 'note', at });
    expect(created.status).toBe(201);
    const lock = await holdWriteLock(db);
    // The tick comes due while the lock is held: it waits busy_timeout (5 s), fails, and is retried.
    await expect.poll(() => logged('the schedule tick failed'), { timeout: 40_000, interval: 100 }).toBe(1);
    const event = await api('POST', '/api/events', { topic: 'test.while_locked', payload: {} });
    expect(event).toMatchObject({ status: 503, body: { error: { code: 'STORE_BUSY' } } });
    const run = await api('POST', '/api/scenario/run', { id: 'note' });
    expect(run).toMatchObject({ status: 503, body: { error: { code: 'STORE_BUSY' } } });
    // Readiness says so too, without waiting the 5 s a write would.
    await expect.poll(async () => (await api('GET', '/readyz')).body, { timeout: 10_000, interval: 200 }).toMatchObject({ error: { code: 'NOT_READY', details: { store: 'STORE_BUSY' } } });
    await lock.release();

    // The schedule fires once, under its own run id; the refused run and event were never written.
    await expect.poll(async () => ((await api('GET', '/api/scenario/runs?scenario_id=note')).body['runs'] as Array<{ state: string }>).map((r) => r.state), { timeout: 20_000, interval: 100 }).toEqual(['completed']);
    const runs = (await api('GET', '/api/scenario/runs?scenario_id=note')).body['runs'] as Array<{ run_id: string }>;
    expect(runs[0]!.run_id).toMatch(/^sched_job_/);
    expect(host.runtime.journal.query({ topic: 'schedule.fired' }).events).toHaveLength(1);
    expect(host.runtime.journal.query({ topic: 'test.while_locked' }).events).toHaveLength(0);
    expect(logged('the schedule tick failed')).toBe(1);
    expect(logged('the schedule tick works again')).toBe(1);
    expect((await api('GET', '/readyz')).status).toBe(200);
  }, 120_000);

  it('retries a webhook attempt it could not record while the lock was held, and delivers it after', async () => {
    const { host, api, logged, db } = await start();
    const attempts: string[] = [];
    // The first attempt is asked to come back later; the second comes due while another process holds the lock.
    const receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        attempts.push(String(req.headers['tessera-attempt']));
        if (attempts.length === 1) res.writeHead(503, { 'retry-after': '2' }).end();
        else res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    expect((await api('POST', '/v1/webhooks', { url, events: ['test.*'] })).status).toBe(201);
    host.runtime.webhooks.notify('test.created', { cid: `b3:${'a'.repeat(64)}` });
    await expect.poll(() => attempts.length, { timeout: 20_000, interval: 50 }).toBe(1);
    const lock = await holdWriteLock(db);
    await expect.poll(() => logged('recording a webhook attempt failed'), { timeout: 40_000, interval: 100 }).toBe(1);
    await lock.release();
    await expect.poll(() => attempts, { timeout: 30_000, interval: 100 }).toEqual(['1', '2']);
    expect(logged('recording a webhook attempt failed')).toBe(1);
    expect(logged('webhook delivery attempt crashed')).toBe(0);
  }, 120_000);

  it('has a trigger the store refused catch up on that event from the journal once the store writes again', async () => {
    const { host } = await start();
    const { runtime } = host;
    // Subscribed before the trigger, so it runs first: the event is journaled, then the store stops taking
    // writes (query_only: SQLITE_READONLY, a store failure like a locked or full one) before the trigger acts.
    runtime.bus.subscribe('test.order.*', () => void runtime.store.db.pragma('query_only = ON'));
    const trigger = runtime.automation.createTrigger({ pattern: 'test.order.*', scenario_id: 'note' });
    const first = runtime.bus.publish('test.order.created', { n: 1 });
    expect(runtime.store.db.pragma('query_only', { simple: true })).toBe(1);
    await new Promise((r) => setTimeout(r, 1500)); // a catch-up try or two while the store still refuses
    runtime.store.db.pragma('query_only = OFF');
    await expect.poll(() => runtime.journal.query({ topic: 'test.noted' }).events.length, { timeout: 20_000, interval: 50 }).toBe(1);
    expect(runtime.automation.triggers()[0]).toMatchObject({ trigger_id: trigger.trigger_id, fired: 1, last_event_id: first.id });
  }, 60_000);
});
