/**
 * A full disk, on a real small filesystem (issue 13 points 8 and 9). On a full disk `POST /api/scenario/run`
 * answered 202 with run ids never stored, `/api/io/input` likewise, `POST /api/schedules` answered 507 "nothing
 * written" for a schedule that was written; the WAL filled a 64 MB disk; writes then failed for good while
 * `/readyz` said ready.
 *
 * Every write route is called with the disk filled to within 0…48 KiB of full, after the WAL was checkpointed
 * and truncated (so each write needs new space): the boundary where the first commit of a request fits and a
 * later one does not falls inside the sweep. The answer must tell the truth: a 2xx only for what was committed,
 * 507 (or 503) only when nothing was, never a 500.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { DATABASE_FILE } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { WAL_BOUND_BYTES } from '../../main/runtime/store/checkpointer.js';
import { canonicalBytes } from '../../main/common/canonical.js';
import { CONSENT_PAYLOAD_TYPE, CONSENT_VERSION } from '../../main/common/receipt.js';
import { generateKeyPair, signEnvelope } from '../../main/runtime/keys/index.js';
import { requireBuild } from '../helpers/cli.js';
import { mountSmallDisk, smallDiskUnavailable } from '../helpers/small-disk.js';
import type { SmallDisk } from '../helpers/small-disk.js';
import { scenario } from '../helpers/scenarios.js';

const unavailable = smallDiskUnavailable();
if (unavailable) console.warn(`full-disk tests skipped: ${unavailable}`);

interface Res {
  status: number;
  body: Record<string, unknown>;
}

/** The approver of the k-of-n product `gateway-consent` (1 of 1), for the consent routes. */
const approver = generateKeyPair();

async function open(disk: SmallDisk): Promise<{ host: RunningHost; api: (method: string, path: string, body?: unknown) => Promise<Res> }> {
  const dataDir = join(disk.dir, 'data');
  const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../../resources/products/api-receipt-gateway.product.json'), 'utf8')) as Record<string, unknown> & { security: Record<string, unknown> };
  manifest['name'] = 'gateway-consent';
  manifest.security = { ...manifest.security, kofn: { k: 1, approvers: [{ name: 'approver', public_key: approver.publicKeyPem }] } };
  mkdirSync(join(dataDir, 'products'), { recursive: true });
  writeFileSync(join(dataDir, 'products', 'gateway-consent.product.json'), JSON.stringify(manifest));
  const host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
  host.runtime.scenarios.register(scenario('note', [{ name: 'n', action: 'bus.publish', with: { topic: 'test.noted', payload: { run: '${run.id}' } } }]));
  host.runtime.scenarios.register(scenario('slow', [{ name: 'nap', action: 'wait', with: { duration: 600_000 } }]));
  host.runtime.scenarios.register(scenario('noop', [{ name: 'n', action: 'log', with: {} }]));
  host.runtime.scenarios.register(scenario('pause', [{ name: 'nap', action: 'wait', with: { duration: 1500 } }, { name: 'after', action: 'log', with: {} }]));
  const api = async (method: string, path: string, body?: unknown): Promise<Res> => {
    const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${host.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  return { host, api };
}

/** A write route: `call` makes the request; `committed` says, after the disk has room again, whether its effect is stored. */
interface WriteCase {
  route: string;
  /** The request only asks (a cancel is cooperative): it answers at once and its record commits with the run's. */
  request?: true;
  prepare?: () => Promise<Record<string, unknown>>;
  call(mark: number, prepared: Record<string, unknown>): Promise<Res>;
  committed(mark: number, prepared: Record<string, unknown>, res: Res): boolean;
}

describe.skipIf(unavailable !== undefined)('a full disk (tmpfs)', () => {
  let disk: SmallDisk;
  let host: RunningHost;
  let api: (method: string, path: string, body?: unknown) => Promise<Res>;

  beforeAll(async () => {
    requireBuild();
    disk = mountSmallDisk(48);
    ({ host, api } = await open(disk));
  }, 60_000);
  afterAll(async () => {
    await host?.close();
    disk?.unmount();
  });

  const rt = () => host.runtime;
  const count = (sql: string, ...args: unknown[]) => (rt().store.db.prepare(sql).get(...args) as { n: number }).n;
  /** A view of the api-receipt product; with an expired credential policy-authorization answers ASK. */
  const view = (mark: number, expiresAt = '2099-01-01T00:00:00Z') => ({
    hdr: { src: 'full-disk', nonce: `nonce-${mark}-${randomUUID()}` },
    intent: { kind: 'EVAL', name: 'api-receipt' },
    ctx: { method: 'POST', path: '/v1/payments', request: mark },
    meta: { tenant: 'default', principal: { id: 'svc', tenant: 'default', audiences: ['gateway'], scopes: ['post:/v1/payments'], expires_at: expiresAt } },
  });
  const vote = (consent: string, capsule: string, decision: 'approve' | 'reject') =>
    signEnvelope(CONSENT_PAYLOAD_TYPE, canonicalBytes({ v: CONSENT_VERSION, consent, capsule, decision, approver: approver.keyid }), [approver]);
  const askConsent = async () => {
    const asked = await api('POST', '/v1/run?product=gateway-consent', view(Math.floor(Math.random() * 1e9), '2020-01-01T00:00:00Z'));
    expect(asked.body).toMatchObject({ verdict: 'ASK', consent: { id: expect.any(String) } });
    return { consent: (asked.body['consent'] as { id: string }).id, capsule: asked.body['cid'] as string };
  };
  const runsOf = (scenarioId: string) => rt().scenarios.runs({ scenario_id: scenarioId, limit: 1000 });

  const cases: WriteCase[] = [
    {
      route: 'POST /api/scenario/run',
      call: (mark) => api('POST', '/api/scenario/run', { id: 'note', ctx: { mark } }),
      committed: (mark) => runsOf('note').some((r) => r.ctx['mark'] === mark),
    },
    {
      // "set a timer for N minutes" starts set_timer with ctx.minutes = N (1…90 here).
      route: 'POST /api/io/input',
      call: (mark) => api('POST', '/api/io/input', { text: `set a timer for ${(mark % 90) + 1} minutes` }),
      committed: (mark) => runsOf('set_timer').some((r) => r.ctx['minutes'] === (mark % 90) + 1),
    },
    {
      route: 'POST /api/intent/recognize',
      call: (mark) => api('POST', '/api/intent/recognize', { text: `start a timer for ${(mark % 90) + 91} minutes`, run: true }),
      committed: (mark) => runsOf('set_timer').some((r) => r.ctx['minutes'] === (mark % 90) + 91) || count("SELECT COUNT(*) AS n FROM events WHERE topic = 'nlp.intent.timer.set' AND json_extract(payload, '$.slots.minutes') = ?", (mark % 90) + 91) > 0,
    },
    {
      route: 'POST /api/schedules',
      call: (mark) => api('POST', '/api/schedules', { scenario_id: 'note', cron: '0 0 1 1 *', ctx: { mark } }),
      committed: (mark) => rt().automation.schedules().some((s) => s.ctx['mark'] === mark) || count("SELECT COUNT(*) AS n FROM events WHERE topic = 'schedule.created'") > schedulesCreated,
    },
    {
      route: 'DELETE /api/schedules/:job_id',
      prepare: async () => ({ job: rt().automation.createSchedule({ scenario_id: 'note', cron: '0 0 1 1 *' }).job_id }),
      call: (_mark, p) => api('DELETE', `/api/schedules/${String(p['job'])}`),
      committed: (_mark, p) => !rt().automation.schedules().some((s) => s.job_id === p['job']),
    },
    {
      route: 'POST /api/triggers',
      call: (mark) => api('POST', '/api/triggers', { pattern: `test.never.t${mark}`, scenario_id: 'note', ctx: { mark } }),
      committed: (mark) => rt().automation.triggers().some((t) => t.ctx['mark'] === mark),
    },
    {
      route: 'DELETE /api/triggers/:trigger_id',
      prepare: async () => ({ trigger: rt().automation.createTrigger({ pattern: 'test.never.deleted', scenario_id: 'note' }).trigger_id }),
      call: (_mark, p) => api('DELETE', `/api/triggers/${String(p['trigger'])}`),
      committed: (_mark, p) => !rt().automation.triggers().some((t) => t.trigger_id === p['trigger']),
    },
    {
      route: 'POST /api/events',
      call: (mark) => api('POST', '/api/events', { topic: 'test.mark', payload: { mark } }),
      committed: (mark) => count("SELECT COUNT(*) AS n FROM events WHERE topic = 'test.mark' AND json_extract(payload, '$.mark') = ?", mark) > 0,
    },
    {
      route: 'POST /api/io/send',
      call: (mark) => api('POST', '/api/io/send', { text: `message ${mark}`, channel: 'ui' }),
      committed: (mark) => count('SELECT COUNT(*) AS n FROM io_messages WHERE text = ?', `message ${mark}`) > 0,
    },
    {
      route: 'POST /api/io/inbox/ack',
      prepare: async () => ({ id: (await rt().io.send('ui', `to ack ${randomUUID()}`)).id }),
      call: (_mark, p) => api('POST', '/api/io/inbox/ack', { ids: [p['id']] }),
      committed: (_mark, p) => count('SELECT COUNT(*) AS n FROM io_messages WHERE id = ? AND acked_at IS NOT NULL', p['id']) > 0,
    },
    {
      route: 'POST /api/scenario/cancel',
      request: true,
      prepare: async () => ({ run: rt().scenarios.run('slow') }),
      call: (_mark, p) => api('POST', '/api/scenario/cancel', { run_id: p['run'] }),
      committed: (_mark, p) => rt().scenarios.status(String(p['run'])).state === 'cancelled',
    },
    {
      route: 'POST /api/scenario/replay',
      prepare: async () => ({ run: (await rt().scenarios.wait(rt().scenarios.run('noop'), 10_000)).run_id }),
      call: (_mark, p) => api('POST', '/api/scenario/replay', { run_id: p['run'] }),
      committed: (_mark, p) => count('SELECT COUNT(*) AS n FROM scenario_runs WHERE replay_of = ?', p['run']) > 0,
    },
    {
      route: 'POST /v1/webhooks',
      call: (mark) => api('POST', '/v1/webhooks', { url: `http://127.0.0.1:9/hook-${mark}`, events: ['test.never'] }),
      committed: (mark) => rt().webhooks.list().some((w) => w.url.endsWith(`/hook-${mark}`)),
    },
    {
      route: 'DELETE /v1/webhooks/:id',
      prepare: async () => ({ id: rt().webhooks.subscribe({ url: 'http://127.0.0.1:9/gone', events: ['test.never'] }).id }),
      call: (_mark, p) => api('DELETE', `/v1/webhooks/${String(p['id'])}`),
      committed: (_mark, p) => !rt().webhooks.list().some((w) => w.id === p['id']),
    },
    ...(['approve', 'reject'] as const).map((decision): WriteCase => ({
      route: `POST /v1/consents/:id/${decision}`,
      prepare: askConsent,
      call: (_mark, p) => api('POST', `/v1/consents/${String(p['consent'])}/${decision}`, vote(String(p['consent']), String(p['capsule']), decision)),
      committed: (_mark, p) => (rt().receipts.consent(String(p['consent']))?.votes.length ?? 0) > 0,
    })),
    {
      route: 'POST /v1/run',
      prepare: async () => ({ capsules: count('SELECT COUNT(*) AS n FROM receipt_capsules') }),
      call: (mark) => api('POST', '/v1/run', view(mark)),
      committed: (_mark, p, res) => (res.status === 200 ? rt().receipts.receipts(String(res.body['cid'])).length > 0 : count('SELECT COUNT(*) AS n FROM receipt_capsules') > (p['capsules'] as number)),
    },
  ];
  let schedulesCreated = 0;

  it.each(cases.map((c) => [c.route, c] as const))('%s answers only what it committed: 2xx when stored, 507/503 when nothing was', async (_route, c) => {
    const db = rt().store.db;
    const seen = new Map<number, number>();
    for (const leaveKiB of [0, 4, 8, 12, 16, 20, 24, 32, 40, 48]) {
      const mark = Math.floor(Math.random() * 1e9);
      const prepared = (await c.prepare?.()) ?? {};
      schedulesCreated = count("SELECT COUNT(*) AS n FROM events WHERE topic = 'schedule.created'");
      // No slack in the WAL: every commit from here on needs space the disk does not have (or just has).
      db.pragma('wal_checkpoint(TRUNCATE)');
      disk.fill(leaveKiB * 1024);
      let res: Res;
      try {
        res = await c.call(mark, prepared);
      } finally {
        disk.free();
      }
      // Whatever the engine kept pending is written now (a top-level run commits everything before it).
      rt().scenarios.run('noop');
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
      const stored = c.committed(mark, prepared, res);
      const where = `${c.route} with ${leaveKiB} KiB free answered ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
      expect([200, 201, 202, 503, 507], where).toContain(res.status);
      if (res.status < 300) expect(stored, `${where}, but nothing was stored`).toBe(true);
      else expect(stored, `${where}, but it was stored`).toBe(false);
    }
    // The sweep reached a full disk: at least one answer was 507.
    if (!c.request) expect([...seen.keys()], `answers: ${JSON.stringify([...seen])}`).toContain(507);
  }, 120_000);

  it('makes /readyz say the store cannot write while the disk is full, and recovers writes and readiness by itself once space returns', async () => {
    expect((await api('GET', '/readyz')).status).toBe(200);
    // A run in progress across the full disk: its step records are held back, then written.
    const inProgress = rt().scenarios.run('pause');
    rt().store.db.pragma('wal_checkpoint(TRUNCATE)');
    disk.fill(0);
    try {
      const refused = await api('POST', '/api/events', { topic: 'test.full', payload: { n: 1 } });
      expect(refused).toMatchObject({ status: 507, body: { error: { code: 'STORE_FULL' } } });
      expect(await api('POST', '/api/scenario/run', { id: 'note' })).toMatchObject({ status: 507, body: { error: { code: 'STORE_FULL' } } });
      await expect.poll(async () => (await api('GET', '/readyz')).body, { timeout: 10_000, interval: 200 }).toMatchObject({ error: { code: 'NOT_READY', message: expect.stringContaining('full'), details: { store: 'STORE_FULL' } } });
      expect((await api('GET', '/readyz')).status).toBe(503);
    } finally {
      disk.free();
    }
    // No restart: the same runtime writes again and says ready; the run in progress finishes, its records written.
    await expect.poll(async () => (await api('GET', '/readyz')).status, { timeout: 10_000, interval: 200 }).toBe(200);
    expect((await rt().scenarios.wait(inProgress, 10_000)).state).toBe('completed');
    expect(rt().scenarios.status(inProgress).steps.map((st) => st.state)).toEqual(['completed', 'completed']);
    const written = await api('POST', '/api/events', { topic: 'test.full', payload: { n: 2 } });
    expect(written.status).toBe(201);
    const run = await api('POST', '/api/scenario/run', { id: 'note', ctx: { after: 'full' } });
    expect(run.status).toBe(202);
    expect((await rt().scenarios.wait(String(run.body['run_id']), 10_000)).state).toBe('completed');
    expect(rt().store.integrityCheck()).toEqual(['ok']);
  }, 60_000);
});

describe.skipIf(unavailable !== undefined)('the WAL under sustained writes (64 MiB tmpfs)', () => {
  it('stays within twice WAL_BOUND_BYTES, so 20,000 single-row commits that once filled a 64 MB disk with WAL now fit on it', async () => {
    requireBuild();
    const disk = mountSmallDisk(64);
    const { host } = await open(disk).catch((err: unknown) => {
      disk.unmount();
      throw err;
    });
    try {
      const wal = join(disk.dir, 'data', `${DATABASE_FILE}-wal`);
      const size = (f: string) => {
        try {
          return statSync(f).size;
        } catch {
          return 0;
        }
      };
      let maxWal = 0;
      const payload = { text: 'x'.repeat(500), hash: createHash('sha256').update('load').digest('hex') };
      // Each commit appends the pages it touched (~16 KB) to the WAL while the database grows by ~1 KB: with the
      // old 64 MiB threshold the WAL alone outgrew this disk and writes failed with SQLITE_FULL.
      for (let events = 0; events < 20_000; events += 200) {
        for (let i = 0; i < 200; i++) host.runtime.bus.publish('load.event', payload);
        maxWal = Math.max(maxWal, size(wal));
        await new Promise((r) => setImmediate(r));
      }
      expect(maxWal, `WAL peaked at ${maxWal} bytes`).toBeLessThanOrEqual(2 * 8 * 1024 * 1024);
      expect(WAL_BOUND_BYTES).toBe(8 * 1024 * 1024);
      expect(disk.freeBytes()).toBeGreaterThan(16 * 1024 * 1024);
    } finally {
      await host.close();
      disk.unmount();
    }
  }, 120_000);
});
