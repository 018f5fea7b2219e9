/**
 * Scenario runs spread over nodes on a real NATS JetStream server (issue 18 point 1): several runtimes in this
 * process, each with its own SQLite file, sharing one throwaway nats-server. Ack waits are short so redelivery
 * shows within a couple of seconds.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterOptionsFromEnv, subjectToken } from '../../main/runtime/cluster/model.js';
import { startNats } from '../helpers/nats.js';
import type { RunningNats } from '../helpers/nats.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';
import { atGate, clusterNodes, final, gated, quick, release, until } from '../helpers/cluster.js';

const ACK_WAIT_MS = 1_500;
let nats: RunningNats;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats.dispose();
});
const { open, loggers, effects, count, node } = clusterNodes({ nats: () => nats, prefix: 'tessera-cluster', ackWaitMs: ACK_WAIT_MS });
const failing = scenario('fails', [{ name: 'boom', action: 'wait', effect: false, with: { duration: -1 } }]);

/** Deliveries of the constraint set's consumer not yet acked (an acked message also leaves the work-queue stream). */
async function ackPending(token: string): Promise<number> {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.consumers.info('TESSERA_RUNS', `runs_${token}`)).num_ack_pending;
  } finally {
    await nc.close();
  }
}
describe('distributed scenario runs over NATS JetStream', () => {
  it('runs a constrained run only on a node whose attributes satisfy it, and spreads the rest over the nodes', async () => {
    const all = [quick('mic-only', { constraints: ['has:mic'] }), scenario('slow', [{ name: 'w', action: 'wait', effect: false, with: { duration: 300 } }])];
    const [mic, plain] = await Promise.all([node('mic1', ['has:mic', 'region:eu'], all), node('plain1', ['region:eu'], all)]);
    const micRuns = Array.from({ length: 6 }, () => plain.scenarios.run('mic-only'));
    const slowRuns = Array.from({ length: 12 }, () => plain.scenarios.run('slow'));
    for (const id of [...micRuns, ...slowRuns]) await until(`${id} to finish`, () => final(plain, id));
    for (const id of micRuns) {
      expect(plain.scenarios.status(id).state).toBe('completed');
      expect(plain.cluster!.status(id)?.node).toBe('mic1');
      expect(count('fx.one', id)).toBe(1);
      expect(effects.find((e) => e.run_id === id)?.node).toBe('mic1');
    }
    const ranOn = new Set(slowRuns.map((id) => plain.cluster!.status(id)?.node));
    expect(ranOn).toEqual(new Set(['mic1', 'plain1']));
    // Status answers on a node the run never touched, synchronously, from the mirror.
    expect(mic.scenarios.status(slowRuns[0]!).state).toBe('completed');
    expect(plain.cluster!.nodes().map((n) => n.name)).toEqual(['mic1', 'plain1']);
  });

  it('redelivers a run whose node stopped mid-run and resumes it elsewhere at its first unfinished step, effects once; the node that comes back reconciles it', async () => {
    const dirA = tempDir('tessera-cluster-a-');
    const a = await node('a', ['has:tts'], [gated('gated')], dirA);
    const b = await node('b', ['has:tts'], [gated('gated')]);
    b.cluster!.pauseProgress(); // A takes it
    const runId = a.scenarios.run('gated');
    await until('step one on a', () => count('fx.one', runId) === 1);
    b.cluster!.resumeProgress();
    await a.close(); // mid-run: waiting at the gate, unacked
    open.splice(open.indexOf(a), 1);
    await until('b to claim it', () => b.cluster!.status(runId)?.node === 'b' || undefined);
    await until('b waiting at the gate', () => atGate(b, runId));
    release(b, runId);
    const done = await until('the run to finish on b', () => final(b, runId));
    expect(done.state).toBe('completed');
    expect(count('fx.one', runId)).toBe(1); // replayed on b from a's record, not published again
    expect(count('fx.two', runId)).toBe(1);
    expect(effects.filter((e) => e.run_id === runId && e.topic === 'fx.two')[0]!.node).toBe('b');
    const record = b.cluster!.status(runId)!;
    expect(record.fence).toBe(2);
    expect(record.delivery).toBe(2);
    // A comes back: its local row (running, dispatched) is not resumed here; it is reconciled from the record.
    const a2 = await node('a', ['has:tts'], [gated('gated')], dirA);
    await until('a to see it completed', () => final(a2, runId));
    expect(a2.scenarios.status(runId).state).toBe('completed');
    expect(count('fx.two', runId)).toBe(1);
  });

  it("refuses a stale node's late step and ack after its run was taken over", async () => {
    const a = await node('stale', ['has:tts'], [gated('gated')]);
    const b = await node('fresh', ['has:tts'], [gated('gated')]);
    b.cluster!.pauseProgress();
    const runId = a.scenarios.run('gated');
    await until('a at the gate', () => atGate(a, runId));
    a.cluster!.pauseProgress(); // partitioned: no progress signals, no pulls
    b.cluster!.resumeProgress();
    await until('b to take it over', () => b.cluster!.status(runId)?.node === 'fresh' || undefined);
    await until('b at the gate', () => atGate(b, runId));
    const fenced = new Promise((resolve) => a.bus.subscribe('cluster.run.fenced', resolve));
    a.cluster!.resumeProgress();
    release(a, runId); // the stale node's step completes late: its write is refused, it stops, never publishes fx.two
    await fenced;
    expect(count('fx.two', runId)).toBe(0);
    // No late ack either (nats-server#4786: it would be credited to b's redelivery and drop the message b holds).
    const pending = await ackPending(subjectToken([]));
    expect(pending).toBe(1);
    release(b, runId);
    await until('b to finish it', () => final(b, runId));
    expect(count('fx.one', runId)).toBe(1);
    expect(count('fx.two', runId)).toBe(1);
    expect(b.cluster!.status(runId)).toMatchObject({ state: 'completed', node: 'fresh', fence: 2 });
    await until('a to mirror the completion', () => final(a, runId));
  });

  it('keeps runs in the outbox while NATS is down and finishes each once after it comes back', async () => {
    const paced = scenario('paced', [
      { name: 'one', action: 'bus.publish', with: { topic: 'fx.one', payload: { run_id: '${run.id}' } } },
      { name: 'nap', action: 'wait', effect: false, with: { duration: 300 } },
      { name: 'two', action: 'bus.publish', with: { topic: 'fx.two', payload: { run_id: '${run.id}' } } },
    ]);
    const n = await node('burst', [], [paced]);
    const first = Array.from({ length: 5 }, () => n.scenarios.run('paced'));
    await until('the first runs in flight', () => first.every((id) => count('fx.one', id) === 1));
    await nats.stop(); // mid-run: their next step outcomes wait for the server
    const held = Array.from({ length: 15 }, () => n.scenarios.run('paced'));
    expect(n.cluster!.outbox()).toBeGreaterThanOrEqual(15);
    expect(n.scenarios.status(held[0]!).state).toBe('queued');
    await nats.start();
    for (const id of [...first, ...held]) await until(`${id} to finish`, () => final(n, id), 20_000);
    for (const id of [...first, ...held]) {
      expect(n.scenarios.status(id).state).toBe('completed');
      expect(count('fx.one', id)).toBe(1);
      expect(count('fx.two', id)).toBe(1);
    }
    await until('the outbox to drain', () => n.cluster!.outbox() === 0);
  });

  it('cancels across nodes, fails for good with term, and counts max_deliver in claims, not naks', async () => {
    const runner = await node('runner', ['has:mic'], [gated('gated', { constraints: ['has:mic'] }), failing, quick('mic-x', { constraints: ['has:mic'] })]);
    const origin = await node('origin', [], [gated('gated', { constraints: ['has:mic'] }), failing, quick('mic-y', { constraints: ['has:mic'], max_deliver: 2 })]);
    // Cancel from the origin while it waits at the gate on the runner.
    const runId = origin.scenarios.run('gated');
    await until('the runner at the gate', () => atGate(runner, runId));
    expect(origin.scenarios.status(runId).steps.find((s) => s.step_key === 'one')?.state).toBe('completed');
    expect(origin.scenarios.cancel(runId, 'operator said so')).toBe(true);
    const cancelled = await until('the cancel to reach the runner and come back', () => final(origin, runId));
    expect(cancelled.state).toBe('cancelled');
    expect(count('fx.two', runId)).toBe(0);
    // A failing run: failed everywhere, delivered once (term, not redelivered).
    const failed = origin.scenarios.run('fails');
    expect((await until('the failure', () => final(origin, failed))).state).toBe('failed');
    expect(origin.cluster!.status(failed)?.delivery).toBe(1);
    // mic-y: the only node that serves its constraints does not have it loaded: its naks do not use up max_deliver
    // (2, counted in claims); once the runner loads it, the run completes there.
    const waiting = origin.scenarios.run('mic-y');
    const handedBack = () => loggers.get('runner')!.lines.filter((l) => l['run_id'] === waiting && /handed back/.test(String(l['msg']))).length;
    await until('three naks from the runner', () => handedBack() >= 3);
    expect(origin.scenarios.status(waiting).state).toBe('queued');
    runner.scenarios.register(quick('mic-y', { constraints: ['has:mic'], max_deliver: 2 }));
    expect((await until('mic-y to run once loaded', () => final(origin, waiting))).state).toBe('completed');
    expect(origin.cluster!.status(waiting)).toMatchObject({ node: 'runner', fence: 1 });
    // Replay of a run that ran on another node works here (its steps were mirrored).
    const replay = origin.scenarios.replay(failed);
    expect((await origin.scenarios.wait(replay, 10_000)).state).toBe('failed');
  });

  it('reads --nats/--node/--attr from the environment the CLI sets, and refuses malformed values', () => {
    expect(clusterOptionsFromEnv({})).toBeUndefined();
    expect(clusterOptionsFromEnv({ TESSERA_NATS_URL: 'nats://127.0.0.1:4222', TESSERA_NODE_NAME: 'kiosk-1', TESSERA_NODE_ATTRS: 'region:eu, has:mic', TESSERA_NATS_ACK_WAIT_MS: '2000' })).toEqual({ url: 'nats://127.0.0.1:4222', node: 'kiosk-1', attributes: ['has:mic', 'region:eu'], ackWaitMs: 2000 });
    for (const env of [{ TESSERA_NATS_URL: 'http://x' }, { TESSERA_NATS_URL: 'nats://x:1', TESSERA_NODE_ATTRS: 'mic' }, { TESSERA_NATS_URL: 'nats://x:1', TESSERA_NODE_NAME: 'a b' }, { TESSERA_NATS_URL: 'nats://x:1', TESSERA_NATS_ACK_WAIT_MS: '10' }]) {
      expect(() => clusterOptionsFromEnv(env)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
    // Disjoint subjects: one per distinct set, whatever the order.
    expect(subjectToken(['region:eu', 'has:mic'])).toBe(subjectToken(['has:mic', 'region:eu']));
    expect(subjectToken([])).toBe('any');
    expect(subjectToken(['has:mic'])).not.toBe(subjectToken(['has:mic', 'region:eu']));
  });
});
