/**
 * Faults of distributed scenario runs (issue 18 point 1, review findings): stale holders of finished runs, malformed
 * and forged bus/KV input, steps committed locally but not recorded, sub-scenarios, cancels. One throwaway
 * nats-server for the file; runtimes in this process, each with its own SQLite file.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKey, subjectToken } from '../../main/runtime/cluster/model.js';
import { startNats } from '../helpers/nats.js';
import type { RunningNats } from '../helpers/nats.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';
import { atGate, clusterNodes, final, fx, gated, quick, release, statusOf, until } from '../helpers/cluster.js';

const ACK_WAIT_MS = 1_500;
let nats: RunningNats;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
});
afterAll(async () => {
  await nc?.close().catch(() => undefined);
  await nats.dispose();
});
const { open, loggers, effects, count, node } = clusterNodes({ nats: () => nats, prefix: 'tessera-faults', ackWaitMs: ACK_WAIT_MS });

const kv = async (bucket: string) => new Kvm(jetstream(nc)).open(bucket);
const pending = async (token: string) => {
  const info = await (await jetstreamManager(nc)).consumers.info('TESSERA_RUNS', `runs_${token}`);
  return info.num_pending + info.num_ack_pending;
};

describe('distributed runs under faults', () => {
  it('a stale holder of a run finished without a claim (max_deliver exhausted) neither acts nor overwrites it', async () => {
    const s = gated('stale-final', { max_deliver: 1 });
    const a = await node('sa', [], [s]);
    const b = await node('sb', [], [s]);
    b.cluster!.pauseProgress();
    const runId = a.scenarios.run('stale-final');
    await until('a at the gate', () => atGate(a, runId));
    a.cluster!.pauseProgress();
    b.cluster!.resumeProgress();
    await until('b to mark it exhausted', () => b.cluster!.status(runId)?.state === 'failed');
    let fenced = false;
    a.bus.subscribe('cluster.run.fenced', () => void (fenced = true));
    a.cluster!.resumeProgress();
    release(a, runId);
    await until('a to act or be fenced', () => fenced || count('fx.two', runId) > 0);
    expect(count('fx.two', runId)).toBe(0);
    const rec = await until('a to mirror the end', () => final(a, runId));
    expect(rec.state).toBe('failed');
    expect(rec.error?.code).toBe('RUN_DELIVERY_EXHAUSTED');
    expect(b.cluster!.status(runId)?.state).toBe('failed');
  });

  it('skips malformed run and node entries in the shared buckets: the mirror, the node list and the outbox keep working', async () => {
    const s = quick('after-junk');
    const origin = await node('jo', [], [s]);
    origin.cluster!.pauseProgress(); // the other node runs it: the origin learns the end from the records watch only
    const runs = await kv('tessera_runs');
    const nodesKv = await kv('tessera_nodes');
    await runs.put('junk-null', 'null');
    await runs.put('junk-nokey', JSON.stringify({ state: 'running' }));
    await runs.put('junk-text', 'not json');
    await nodesKv.put('ghost', 'null');
    await nodesKv.put('ghost2', 'not json');
    const runner = await node('jr', [], [s]);
    const runId = origin.scenarios.run('after-junk');
    expect((await until('the origin to see it completed', () => final(origin, runId))).state).toBe('completed');
    await until('the outbox to drain', () => origin.cluster!.outbox() === 0);
    await until('both nodes listed', () => runner.cluster!.nodes().map((n) => n.name).join() === 'jo,jr');
    await nodesKv.put('jr', 'null'); // a live node's entry overwritten with junk: the list still answers
    expect(() => origin.cluster!.nodes()).not.toThrow();
    await until('the runner to join again with its next heartbeat', () => origin.cluster!.nodes().some((n) => n.name === 'jr'));
  });

  it('trusts nothing from NATS: a forged record never rewrites a local run, a forged run is checked against ctx_schema and constraints, poison messages are terminated', async () => {
    const geo = scenario('geo', [fx('one', 'fx.one')], { ctx_schema: { type: 'object', required: ['city'] } });
    const micOnly = quick('mic-only-f', { constraints: ['has:mic'] });
    const n = await node('trust', [], [quick('local-x'), geo, micOnly]);
    const runs = await kv('tessera_runs');
    const js = jetstream(nc);
    const record = (runId: string, scenarioId: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ run_id: runId, scenario_id: scenarioId, state: 'queued', priority: 'NORM', ctx: {}, bag: {}, error: null, trace_id: 't'.repeat(32), created_at: Date.now(), started_at: null, finished_at: null, steps: {}, origin: 'mallory', node: null, fence: 0, delivery: 0, msg_seq: null, updated_at: Date.now(), ...extra });
    // (a) A local run (a dry run never leaves the node) is not rewritten by a record under its id.
    const local = n.scenarios.run('local-x', {}, { dry_run: true });
    await n.scenarios.wait(local, 5_000);
    const before = n.scenarios.status(local);
    await runs.put(runKey(local), record(local, 'local-x', { state: 'failed', bag: { forged: true }, origin: 'trust', error: { code: 'X', message: 'forged' } }));
    await runs.put('marker-a', record('marker-a', 'local-x'));
    await until('the marker to be mirrored', () => n.cluster!.status('marker-a'));
    expect(n.scenarios.status(local)).toMatchObject({ state: before.state, bag: before.bag });
    // (b) ctx is checked against the local ctx_schema on the executing node; (c) so are the constraints.
    await runs.put('forged-ctx', record('forged-ctx', 'geo'));
    await js.publish('tessera.runs.any', JSON.stringify({ run_id: 'forged-ctx', scenario_id: 'geo', origin: 'mallory', max_deliver: 5 }));
    await runs.put('forged-mic', record('forged-mic', 'mic-only-f'));
    await js.publish('tessera.runs.any', JSON.stringify({ run_id: 'forged-mic', scenario_id: 'mic-only-f', origin: 'mallory', max_deliver: 5 }));
    // (e) Poison: malformed message, max_deliver not a positive whole number, no record, a record of another scenario.
    await js.publish('tessera.runs.any', JSON.stringify({ run_id: 5 }));
    await js.publish('tessera.runs.any', JSON.stringify({ run_id: 'no-max', scenario_id: 'geo', origin: 'mallory' }));
    await runs.put('mismatch', record('mismatch', 'local-x'));
    await js.publish('tessera.runs.any', JSON.stringify({ run_id: 'mismatch', scenario_id: 'geo', origin: 'mallory', max_deliver: 5 }));
    const failedWith = (id: string) => {
      const r = n.cluster!.status(id);
      return r?.state === 'failed' ? r.error?.code : undefined;
    };
    expect(await until('the ctx refusal', () => failedWith('forged-ctx'))).toBe('VALIDATION_FAILED');
    expect(await until('the constraints refusal', () => failedWith('forged-mic'))).toBe('RUN_REFUSED');
    await until('every message terminated or acked', async () => (await pending('any')) === 0, 10_000);
    expect(count('fx.one', 'forged-ctx') + count('fx.one', 'forged-mic') + count('fx.one', 'mismatch')).toBe(0);
    expect(n.cluster!.status('mismatch')?.state).toBe('queued');
  });

  it('runs the sub-scenario of a distributed run as its own fenced cluster run: the node taking the parent over finds it, effects once, the node that comes back does not resume it', async () => {
    const parent = scenario('parent', [{ name: 'kid', scenario: 'kid' }]);
    const kid = gated('kid');
    const dirA = tempDir('tessera-faults-pa-');
    const a = await node('pa', [], [parent, kid], dirA);
    const b = await node('pb', [], [parent, kid]);
    b.cluster!.pauseProgress(); // a takes the parent and its child
    const parentId = a.scenarios.run('parent');
    const first = await until('the child effect', () => effects.find((e) => e.topic === 'fx.one' && e.run_id.startsWith(`${parentId}.`)));
    const childId = first.run_id;
    await until('the child at the gate', () => atGate(a, childId));
    b.cluster!.resumeProgress();
    await a.close(); // kill-like: both runs stay unacked and move to b
    open.splice(open.indexOf(a), 1);
    await until('b at the child gate', () => atGate(b, childId), 20_000);
    release(b, childId);
    expect((await until('the parent to finish on b', () => final(b, parentId), 20_000)).state).toBe('completed');
    expect(count('fx.one', childId)).toBe(1);
    expect(count('fx.two', childId)).toBe(1);
    const a2 = await node('pa', [], [parent, kid], dirA);
    await until('a to reconcile the child', () => final(a2, childId));
    expect(count('fx.one', childId)).toBe(1);
  });

  it('a stale holder that ends its run (a cancel) says nothing locally until the record holds it; the cancel reaches the new holder', async () => {
    const a = await node('ca', [], [gated('held')]);
    const b = await node('cb', [], [gated('held')]);
    b.cluster!.pauseProgress();
    const runId = a.scenarios.run('held');
    const ends: string[] = [];
    a.bus.subscribe('scenario.run.*', (e) => {
      if ((e.payload as { run_id?: unknown }).run_id === runId && /completed|failed|cancelled/.test(e.topic)) ends.push(e.topic);
    });
    await until('a at the gate', () => atGate(a, runId));
    a.cluster!.pauseProgress();
    b.cluster!.resumeProgress();
    await until('b at the gate', () => b.cluster!.status(runId)?.node === 'cb' && atGate(b, runId));
    a.cluster!.resumeProgress();
    expect(a.scenarios.cancel(runId, 'stop it')).toBe(true); // a still executes its stale claim
    await until('the cancel to end the run on b', () => b.cluster!.status(runId)?.state === 'cancelled');
    await until('a to mirror it', () => final(a, runId));
    expect(ends).toEqual(['scenario.run.cancelled']);
    expect(count('fx.two', runId)).toBe(0);
  });

  it("keeps the consumer's ack wait when a node with another one joins, and signals progress on the consumer's", async () => {
    const aw = (id: string, ms: number) => scenario(id, [{ name: 'nap', action: 'wait', effect: false, with: { duration: ms } }, fx('one', 'fx.one')], { constraints: ['has:aw'] });
    const long = await node('long', ['has:aw'], [aw('aw-run', 2_500)], undefined, { ackWaitMs: 6_000 });
    const token = subjectToken(['has:aw']);
    await until('the consumer made by the long node', async () => (await (await jetstreamManager(nc)).consumers.info('TESSERA_RUNS', `runs_${token}`).catch(() => null)) !== null);
    const short = await node('short', ['has:aw'], [aw('aw-run', 2_500)], undefined, { ackWaitMs: 800 });
    await until('the short node to adopt the consumer', () => loggers.get('short')!.lines.some((l) => /another ack wait/.test(String(l['msg']))));
    await short.close(); // a node with a shorter ack wait came and went: the consumer keeps the long one
    open.splice(open.indexOf(short), 1);
    const runId = long.scenarios.run('aw-run');
    expect((await until('the run to finish', () => final(long, runId), 10_000)).state).toBe('completed');
    expect(long.cluster!.status(runId)).toMatchObject({ node: 'long', fence: 1, delivery: 1 });
    expect(count('fx.one', runId)).toBe(1);
  });

  it('publishes a waiting run again only when the stream lost its message', async () => {
    const lonely = quick('lonely', { constraints: ['has:nobody'] });
    const origin = await node('lo', [], [lonely], undefined, { republishAfterMs: 200 });
    const dispatched: number[] = [];
    origin.bus.subscribe('cluster.run.dispatched', (e) => void dispatched.push((e.payload as { seq: number }).seq));
    const runId = origin.scenarios.run('lonely');
    await until('the first publication', () => dispatched.length === 1);
    const token = subjectToken(['has:nobody']);
    const jsm = await jetstreamManager(nc);
    await until('republish checks to pass with the message held', () => loggers.get('lo')!.lines.length > 0 && origin.cluster!.outbox() === 1);
    expect((await jsm.consumers.info('TESSERA_RUNS', `runs_${token}`)).num_pending).toBe(1);
    await jsm.streams.deleteMessage('TESSERA_RUNS', dispatched[0]!); // lost, as with a server that lost its store
    await until('a new publication', () => dispatched.length === 2);
    expect((await jsm.consumers.info('TESSERA_RUNS', `runs_${token}`)).num_pending).toBe(1);
    await node('ln', ['has:nobody'], [lonely]);
    expect((await until('the run to finish once a node serves it', () => final(origin, runId))).state).toBe('completed');
    expect(count('fx.one', runId)).toBe(1);
  });

  it('prunes finished run records after the retention period: the shared record and the mirrors; the origin keeps its run', async () => {
    const origin = await node('ro', [], [quick('kept')], undefined, { retentionMs: 1_000 });
    origin.cluster!.pauseProgress();
    const other = await node('rr', [], [quick('kept')], undefined, { retentionMs: 1_000 });
    const runId = origin.scenarios.run('kept');
    await until('the run to finish on the other node', () => other.cluster!.status(runId)?.state === 'completed');
    origin.cluster!.resumeProgress();
    const runs = await kv('tessera_runs');
    await until('the shared record pruned', async () => (await runs.get(runKey(runId)))?.operation !== 'PUT', 10_000);
    await until('the mirrors dropped', () => origin.cluster!.status(runId) === undefined && other.cluster!.status(runId) === undefined && statusOf(other, runId) === undefined);
    expect(origin.scenarios.status(runId).state).toBe('completed');
  });

  // Last in the file: it kills the shared server (and starts it again).
  it('uploads a step committed here but never written to the record (NATS lost right after the effect) when the run comes back to this node', async () => {
    const n = await node('solo', [], [gated('kv-lag')]);
    let armed = true;
    n.bus.subscribe('fx.one', () => {
      if (!armed) return;
      armed = false;
      void nats.kill(); // synchronous SIGKILL: the step's record write that follows never reaches the server
    });
    let fenced = false;
    n.bus.subscribe('cluster.run.fenced', () => void (fenced = true));
    const runId = n.scenarios.run('kv-lag');
    await until('the step committed locally and the run stopped', () => fenced && statusOf(n, runId)?.steps.find((x) => x.step_key === 'one')?.state === 'completed', 20_000);
    await nats.start();
    await until('the run back at the gate under a new claim', () => (n.cluster!.status(runId)?.fence ?? 0) >= 2 && atGate(n, runId), 20_000);
    release(n, runId);
    await until('the run to finish', () => final(n, runId));
    const rec = await until('the final record', () => (n.cluster!.status(runId)?.state === 'completed' ? n.cluster!.status(runId) : undefined));
    expect(Object.keys(rec.steps).sort()).toEqual(['gate', 'one', 'two']);
    expect(count('fx.one', runId)).toBe(1);
  });

  it('sets the stream, buckets and consumers up again when the server comes back without its store', async () => {
    const n = await node('again', [], [quick('again-x')]);
    const before = n.scenarios.run('again-x');
    await until('a first run', () => final(n, before));
    await nats.stop();
    rmSync(nats.storeDir, { recursive: true, force: true });
    await nats.start();
    const runId = n.scenarios.run('again-x');
    expect((await until('a run after the store was lost', () => final(n, runId), 20_000)).state).toBe('completed');
    await until('the records watch reopened on the new bucket', () => n.cluster!.status(runId)?.state === 'completed');
  });
});
