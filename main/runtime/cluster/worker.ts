/**
 * Executing delivered runs (issue 18 point 1): claim, fence, run through the engine, ack only after the final
 * state is written under the fence.
 *
 * Traps designed against:
 * - A late ack credited to another worker's redelivery (nats-server#4786): a node acks a delivery only after it
 *   wrote the run's final state with CAS under its own fence. A node that was paused or partitioned while the run
 *   was redelivered finds its next write refused (the record carries another node/fence) and never acks.
 * - At-least-once delivery: the claim is a CAS on the run record's revision, and its fence grows with every claim;
 *   every step outcome is a CAS on the revision this node last wrote, so two holders cannot both advance a run.
 * - A republished duplicate (the outbox publishes again a run not seen claimed): a delivery whose stream sequence
 *   differs from the claimed one while that claim's node is alive is acked as a duplicate, not claimed.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { TesseraError, toErrorData } from '../../common/errors.js';
import type { ErrorData } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import type { Logger } from '../log/index.js';
import type { RunFence, RemoteStep, ScenarioEngine, StepRecord } from '../scenarios/engine.js';
import type { ClusterRun } from './model.js';
import { isFinal, parseDispatchMessage, parseRunRecord, recordOf, runKey, satisfies } from './model.js';

export interface WorkerContext {
  node: string;
  /** This node's attributes: a delivered run whose scenario's constraints they lack is refused. */
  attributes: readonly string[];
  engine: ScenarioEngine;
  bus: Bus;
  logger: Logger;
  runs: () => KV | undefined;
  ackWaitMs: number;
  nakBaseMs: number;
  clock: () => number;
  /** Whether a node is alive now (its heartbeat is fresh). */
  alive(node: string): boolean;
  stopping(): boolean;
  /** Fault injection (Cluster.pauseProgress): no `working()` while paused. */
  paused(): boolean;
}

/** A message whose run record is still missing after this many deliveries is terminated (forged, or its record lost). */
const MISSING_RECORD_TERM_AFTER = 5;
/** Deliveries (naks included) after which a run is given up even if never claimed: 1000 ≈ 8 h at the 30 s nak cap. */
const RAW_DELIVERY_CAP = 1000;
const encode = (r: ClusterRun) => JSON.stringify(r);
const isCasFailure = (err: unknown) => /wrong last sequence|key exists/i.test(String((err as Error)?.message ?? err));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());
const fenced = (runId: string, why: string) => new TesseraError('RUN_FENCED', `Run ${runId}: ${why}`);

/**
 * Holds one claim of a run. `mutate` writes the record with CAS on the revision this node last wrote; on a CAS
 * failure it reads the record again: still ours (someone set cancel_requested) → merge and retry; another
 * node/fence → RUN_FENCED. A NATS outage is retried until an ack wait has passed without a write, after which
 * the claim may have been redelivered elsewhere: RUN_FENCED too (the run stops, unacked; its new owner ends it).
 */
class Claim implements RunFence {
  constructor(
    private readonly ctx: WorkerContext,
    private readonly kv: KV,
    readonly record: { current: ClusterRun },
    private revision: number,
  ) {}

  private get key() {
    return runKey(this.record.current.run_id);
  }

  /** Still this claim's: same node and fence, and not ended meanwhile (a cancel or max_deliver ends a run without a claim). */
  private ours(r: ClusterRun) {
    return r.node === this.ctx.node && r.fence === this.record.current.fence && !isFinal(r.state);
  }

  async mutate(fn: (r: ClusterRun) => ClusterRun): Promise<void> {
    const runId = this.record.current.run_id;
    const deadline = this.ctx.clock() + this.ctx.ackWaitMs;
    for (let attempt = 0; ; attempt++) {
      const next = { ...fn(this.record.current), updated_at: this.ctx.clock() };
      try {
        this.revision = await this.kv.update(this.key, encode(next), this.revision);
        this.record.current = next;
        return;
      } catch (err) {
        if (isCasFailure(err)) {
          const entry = await this.kv.get(this.key).catch(() => null);
          const seen = recordOf(entry);
          if (!entry || !seen || !this.ours(seen)) throw fenced(runId, `claimed by ${seen?.node ?? 'nobody'} (fence ${seen?.fence ?? '?'}) since this node took it (fence ${this.record.current.fence}).`);
          this.record.current = seen;
          this.revision = entry.revision;
          if (seen.cancel_requested && this.ctx.engine.remote.running(runId)) this.ctx.engine.cancel(runId, seen.cancel_requested);
          continue;
        }
        if (this.ctx.stopping() || this.ctx.clock() > deadline) throw fenced(runId, `the run record could not be written for an ack wait (${(err as Error).message}); it may run elsewhere now.`);
        await sleep(Math.min(1000, 50 * 2 ** attempt));
      }
    }
  }

  async check(stepKey: string): Promise<void> {
    const deadline = this.ctx.clock() + this.ctx.ackWaitMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const entry = await this.kv.get(this.key);
        const seen = recordOf(entry);
        if (!entry || !seen || !this.ours(seen)) throw fenced(this.record.current.run_id, `step ${stepKey} refused: claimed by ${seen?.node ?? 'nobody'} (fence ${seen?.fence ?? '?'}, ${seen?.state ?? 'no record'}).`);
        if (seen.cancel_requested) {
          // Cancelled before this step acts: stop the run here (the engine records it cancelled; not an effect later).
          this.ctx.engine.cancel(this.record.current.run_id, seen.cancel_requested);
          throw new TesseraError('RUN_CANCELLED', `Run ${this.record.current.run_id}: ${seen.cancel_requested}`);
        }
        return;
      } catch (err) {
        if (err instanceof TesseraError) throw err;
        if (this.ctx.stopping() || this.ctx.clock() > deadline) throw fenced(this.record.current.run_id, `the fence could not be checked (${(err as Error).message}).`);
        await sleep(Math.min(1000, 50 * 2 ** attempt));
      }
    }
  }

  step(stepKey: string, outcome: RemoteStep): Promise<void> {
    return this.mutate((r) => ({ ...r, steps: { ...r.steps, [stepKey]: outcome } }));
  }
}

/** Exponential nak delay: nakBase · 2^(delivery-1), at most 30 s. */
export const nakDelay = (base: number, delivery: number) => Math.min(30_000, base * 2 ** Math.max(0, delivery - 1));

/**
 * Term without a reason: nats-server 2.9 does not parse `+TERM <reason>` (2.10+) and redelivers the message as if
 * it was never settled. The reason is logged or recorded by the caller instead.
 */
const terminate = (msg: JsMsg) => msg.term();

/** Mirror the run's current record into the local tables (after this node stopped executing it). Never throws. */
async function reconcile(ctx: WorkerContext, key: string): Promise<void> {
  if (ctx.stopping()) return;
  try {
    const entry = await ctx.runs()?.get(key);
    const rec = recordOf(entry);
    if (rec && !ctx.engine.remote.running(rec.run_id)) ctx.engine.remote.apply(rec);
  } catch (err) {
    ctx.logger.debug?.('a fenced run could not be reconciled now; the records watch will', { key, error: err });
  }
}

/** This node's finished steps of the run that the record lacks. */
function localOnlySteps(ctx: WorkerContext, runId: string, rec: ClusterRun): StepRecord[] {
  let steps: StepRecord[];
  try {
    steps = ctx.engine.status(runId).steps;
  } catch {
    return [];
  }
  return steps.filter((s) => (s.state === 'completed' || s.state === 'skipped') && !(s.step_key in rec.steps));
}

/** Handle one delivery. Never throws; settles the message (ack/nak/term) or leaves it (fenced, stopping). */
export async function handleDelivery(ctx: WorkerContext, msg: JsMsg, running: Set<string>): Promise<void> {
  const kv = ctx.runs();
  const delivery = msg.info.deliveryCount;
  let raw: unknown;
  try {
    raw = msg.json<unknown>();
  } catch {
    raw = undefined;
  }
  const parsed = parseDispatchMessage(raw);
  if (typeof parsed === 'string') {
    // Poison: never nak'd for ever. Nothing is written: a malformed message names no run we can trust.
    ctx.logger.warn('a malformed run message was terminated', { subject: msg.subject, seq: msg.seq, why: parsed });
    terminate(msg);
    return;
  }
  const body = parsed;
  const runId = body.run_id;
  const nak = (why: string) => {
    ctx.logger.warn('a distributed run was handed back', { run_id: runId, delivery, why });
    msg.nak(nakDelay(ctx.nakBaseMs, delivery));
  };
  const poison = (why: string) => {
    ctx.logger.warn('a distributed run message was terminated', { run_id: runId, delivery, why });
    terminate(msg);
  };
  if (!kv) return nak('the run records are not open yet');
  try {
    const key = runKey(runId);
    const entry = await kv.get(key);
    if (!entry || entry.operation !== 'PUT') {
      // The origin writes the record before it publishes: a message without one is forged or its record was lost.
      return delivery >= MISSING_RECORD_TERM_AFTER ? poison('no run record for this message') : nak('its run record is not written yet');
    }
    let value: unknown;
    try {
      value = entry.json<unknown>();
    } catch {
      value = undefined;
    }
    const parsedRec = parseRunRecord(key, value);
    if (typeof parsedRec === 'string') return poison(`its run record is malformed: ${parsedRec}`);
    const rec = parsedRec;
    if (rec.scenario_id !== body.scenario_id) return poison(`the message names scenario ${body.scenario_id}, its record ${rec.scenario_id}`);
    if (isFinal(rec.state)) {
      msg.ack(); // finished already (a redelivery after a lost ack, or a duplicate)
      return;
    }
    if (rec.state === 'running' && rec.msg_seq !== null && rec.msg_seq !== msg.seq && rec.node !== null && ctx.alive(rec.node)) {
      msg.ack(); // a republished duplicate of a run another live node holds
      return;
    }
    const now = ctx.clock();
    const finish = async (claim: Claim | undefined, state: 'cancelled' | 'failed', error: ErrorData) => {
      if (claim) await claim.mutate((r) => ({ ...r, state, error, finished_at: now }));
      // Ended without a claim: this node and a new fence, so an earlier holder's claim is fenced out for good.
      else await kv.update(key, encode({ ...rec, state, error, node: ctx.node, fence: rec.fence + 1, finished_at: now, updated_at: now }), entry.revision);
      ctx.engine.remote.apply({ ...rec, state, error, finished_at: now });
    };
    const refuse = async (code: 'VALIDATION_FAILED' | 'RUN_REFUSED', why: string) => {
      await finish(undefined, 'failed', { code, message: `Run ${runId} refused by node ${ctx.node}: ${why}` });
      ctx.bus.publish('cluster.run.refused', { run_id: runId, scenario_id: rec.scenario_id, node: ctx.node, code, why }, { trace_id: rec.trace_id });
      terminate(msg);
    };
    if (rec.cancel_requested) {
      await finish(undefined, 'cancelled', { code: 'RUN_CANCELLED', message: rec.cancel_requested });
      msg.ack();
      return;
    }
    // Enforced here, not by the consumer: scenarios sharing a constraint set (one consumer) differ in max_deliver.
    // Counted in claims (the record's fence), not deliveries: a nak from a node that could not serve the run (its
    // scenario not loaded there) does not use up its attempts. Raw deliveries are capped too (a run no node serves).
    const maxDeliver = body.max_deliver;
    if (rec.fence >= maxDeliver || delivery > RAW_DELIVERY_CAP) {
      const why = rec.fence >= maxDeliver ? `was claimed ${rec.fence} times; its scenario allows ${maxDeliver} (max_deliver)` : `was delivered ${delivery} times without a node that serves it`;
      await finish(undefined, 'failed', { code: 'RUN_DELIVERY_EXHAUSTED', message: `Run ${runId} ${why}.` });
      ctx.bus.publish('cluster.run.exhausted', { run_id: runId, scenario_id: rec.scenario_id, deliveries: delivery, claims: rec.fence }, { trace_id: rec.trace_id });
      terminate(msg);
      return;
    }
    const scenario = ctx.engine.scenario(rec.scenario_id);
    if (!scenario) return nak(`scenario ${rec.scenario_id} is not loaded here`);
    // The executing node checks again what the origin checked: the bus is a trust boundary, and versions differ.
    if (!satisfies(ctx.attributes, scenario.constraints)) return await refuse('RUN_REFUSED', `this node (${ctx.attributes.join(', ') || 'no attributes'}) lacks the constraints of ${scenario.id} (${(scenario.constraints ?? []).join(', ')}).`);
    const ctxProblem = ctx.engine.remote.ctxProblem(scenario.id, rec.ctx);
    if (ctxProblem) return await refuse('VALIDATION_FAILED', ctxProblem);
    // Claim: CAS on the revision read above; the fence grows with every claim.
    const claimed: ClusterRun = { ...rec, state: 'running', node: ctx.node, fence: rec.fence + 1, delivery, msg_seq: msg.seq, started_at: rec.started_at ?? now, updated_at: now };
    let revision: number;
    try {
      revision = await kv.update(key, encode(claimed), entry.revision);
    } catch (err) {
      if (isCasFailure(err)) return nak('claimed concurrently');
      throw err;
    }
    const trace = { trace_id: rec.trace_id };
    if (rec.node !== null) ctx.bus.publish('cluster.run.redelivered', { run_id: runId, from: rec.node, to: ctx.node, delivery, fence: claimed.fence }, trace);
    ctx.bus.publish('cluster.run.claimed', { run_id: runId, scenario_id: rec.scenario_id, node: ctx.node, delivery, fence: claimed.fence }, trace);
    // The steps recorded by earlier holders become local rows first: the engine replays them instead of running them.
    ctx.engine.remote.apply(claimed);
    const claim = new Claim(ctx, kv, { current: claimed }, revision);
    // Steps this node committed locally but never wrote to the record (NATS lost right after the step) go up now,
    // under the new fence, before the engine replays them: else the record never learns they ran.
    for (const st of localOnlySteps(ctx, runId, claimed)) await claim.step(st.step_key, { name: st.name, state: st.state, attempt: st.attempt, effect: st.effect, output: st.output, error: st.error, started_at: Date.parse(st.started_at), finished_at: st.finished_at ? Date.parse(st.finished_at) : null });
    // Progress: only a node that stops (dies, pauses, loses NATS) lets its run be redelivered.
    running.add(runId);
    const working = setInterval(() => !ctx.paused() && msg.working(), Math.max(100, Math.floor(ctx.ackWaitMs / 3)));
    let result;
    try {
      result = await ctx.engine.remote.execute(runId, claim);
    } finally {
      clearInterval(working);
      running.delete(runId);
    }
    if (result === null) {
      // Fenced out, or this runtime is stopping: never acked (redelivered elsewhere). The record's newer state,
      // ignored by the mirror while the run executed here, becomes the local row now.
      await reconcile(ctx, key);
      return;
    }
    const final = result;
    const status = ctx.engine.status(runId);
    await claim.mutate((r) => ({ ...r, state: final.state, bag: status.bag, error: final.error, finished_at: final.finished_at }));
    // Recorded locally only now that the record holds it (a fenced-out node never says its run ended).
    final.commit();
    // Acked only now, under the fence (nats-server#4786). A failed run is final: term, not redelivered.
    if (final.state === 'failed') terminate(msg);
    else msg.ack();
  } catch (err) {
    if (err instanceof TesseraError && err.code === 'RUN_FENCED') {
      ctx.bus.publish('cluster.run.fenced', { run_id: runId, node: ctx.node, delivery, error: toErrorData(err) });
      await reconcile(ctx, runKey(runId));
      return;
    }
    if (ctx.stopping()) return;
    nak(String((err as Error)?.message ?? err));
  }
}
