/**
 * The receipt pipeline's plugin events (main/runtime/receipts/pipeline.ts): the `plugin.ran` events of a run's
 * intake and policies are journaled together (one commit for the requests of a turn, not one per plugin), with
 * the run's trace id, before its `receipt.decided`, and bus subscribers still receive them. A real headless host:
 * real SQLite file, the signed first-party plugins in the real sandbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraEvent } from '../../main/common/api.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;

beforeAll(async () => {
  host = await startHost({ dataDir: tempDir('tessera-plugin-events-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
}, 60_000);

afterAll(async () => {
  await host?.close();
});

const view = (n: number) =>
  JSON.stringify({
    v: 'ai-json-nrf1/0.1.1',
    t: 'record',
    hdr: { src: 'gw-events', nonce: `events-${Date.now()}-${n}` },
    intent: { kind: 'EVAL', name: 'api-receipt' },
    ctx: { method: 'POST', path: '/v1/payments', request: n },
    meta: { tenant: 'default', app: 'gw', user: 'svc', principal: { id: 'svc', tenant: 'default', audiences: ['gateway'], scopes: ['post:/v1/payments'] } },
    decision: {},
  });

describe('plugin events of a pipeline run', () => {
  it('journals one plugin.ran per plugin with the trace id, before receipt.decided, and delivers them', async () => {
    const delivered: TesseraEvent[] = [];
    const sub = host.runtime.bus.subscribe('plugin.ran', (e) => void delivered.push(e));
    const traces = ['a', 'b', 'c', 'd'].map((c) => c.repeat(32));
    try {
      const outcomes = await Promise.all(traces.map((trace_id, i) => host.runtime.pipeline.run({ tenant: { id: 'default' }, body: view(i), trace_id })));
      expect(outcomes.map((o) => o.verdict)).toEqual(['ACK', 'ACK', 'ACK', 'ACK']);
    } finally {
      sub.dispose();
    }
    const product = host.runtime.products.get();
    const plugins = [product.intake.name, ...product.policies.map((p) => p.name)];
    for (const trace_id of traces) {
      const events = host.runtime.journal.query({ trace_id, limit: 100 }).events;
      const ran = events.filter((e) => e.topic === 'plugin.ran');
      const decided = events.filter((e) => e.topic === 'receipt.decided');
      expect(ran.map((e) => (e.payload as { plugin: string }).plugin.split('@')[0]).sort()).toEqual([...plugins].sort());
      expect(decided).toHaveLength(1);
      expect(Math.max(...ran.map((e) => e.id))).toBeLessThan(decided[0]!.id);
      expect(delivered.filter((e) => e.trace_id === trace_id)).toHaveLength(plugins.length);
    }
  });

  it('journals and delivers the plugin events of a run whose write failed, and nothing of its receipts', async () => {
    const delivered: TesseraEvent[] = [];
    const sub = host.runtime.bus.subscribe('plugin.ran', (e) => void delivered.push(e));
    const trace_id = 'e'.repeat(32);
    const trap = host.runtime.receipts.onReceipts(() => {
      throw new Error('simulated disk failure');
    });
    try {
      await expect(host.runtime.pipeline.run({ tenant: { id: 'default' }, body: view(99), trace_id })).rejects.toThrow('simulated disk failure');
    } finally {
      trap.dispose();
    }
    // The events were staged in the group commit, whose other writes (this run's savepoint) rolled back alone.
    const plugins = 1 + host.runtime.products.get().policies.length;
    const deadline = Date.now() + 20_000; // a ceiling for a loaded machine; the loop ends when they are there
    while (delivered.filter((e) => e.trace_id === trace_id).length < plugins && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    sub.dispose();
    const events = host.runtime.journal.query({ trace_id, limit: 100 }).events;
    expect(events.filter((e) => e.topic === 'plugin.ran')).toHaveLength(plugins);
    expect(events.filter((e) => e.topic === 'receipt.decided')).toHaveLength(0);
    expect(delivered.filter((e) => e.trace_id === trace_id)).toHaveLength(plugins);
  });
});
