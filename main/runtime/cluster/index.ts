/**
 * Scenario runs spread over nodes on NATS JetStream (issue 18 point 1; seed 001 §15, §18). Loaded only when the
 * runtime is started with a cluster (`tessera start --nats URL`): `main/runtime/index.ts` imports this module
 * lazily, so a runtime without NATS never loads the NATS client.
 *
 * Pieces (each in its own file):
 * - ./outbox.ts — `scenario.run` on a node writes the run's row and an outbox row in one SQLite transaction (the
 *   engine's dispatch hook); the relay here publishes it to the work-queue stream `TESSERA_RUNS` on subject
 *   `tessera.runs.<token>` (one token per distinct constraint set, ./model.ts) with `Nats-Msg-Id = run id`. While
 *   NATS is down the rows wait; the run's status says `queued`.
 * - Consumers: one durable pull consumer per constraint set, filtered on its own subject (work-queue streams refuse
 *   overlapping consumers, so subjects are disjoint). A node pulls from every consumer whose set ⊆ its attributes;
 *   the sets come from the scenarios loaded here (all nodes load the same scenarios).
 * - ./worker.ts — claim with CAS + a fence per delivery, run through the engine, `working()` while running, ack
 *   only after the final state is written under the fence; nak with exponential delay, term on failure,
 *   `max_deliver` from the scenario.
 * - Run records: the `tessera_runs` KV bucket. Every node watches it and mirrors each record into its own tables
 *   (`engine.remote.apply`), so `status`, `runs`, `cancel`, `replay` answer synchronously on any node, and a node
 *   that comes back finds its unfinished dispatched runs reconciled (they are never resumed locally).
 * - Nodes: heartbeats in the `tessera_nodes` KV bucket (TTL), with name, attributes and running count.
 *
 * JetStream 2.9 fsyncs every 2 minutes: the origin's outbox row is kept until its run is seen claimed or finished
 * and published again (same msg id) when it was not; on servers ≥ 2.10 set `sync_interval: always` for power-loss
 * durability of accepted runs.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nanos } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV, KvEntry } from '@nats-io/kv';
import type { Bus } from '../bus/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import type { ScenarioEngine } from '../scenarios/engine.js';
import type { ClusterNode, ClusterOptions, ClusterRun, DispatchMessage } from './model.js';
import { MAX_DELIVER_CAP, NODES_BUCKET, RUNS_BUCKET, STREAM, SUBJECT_PREFIX, isFinal, newRecord, parseNodeEntry, parseRunRecord, recordOf, runKey, satisfies, subjectToken } from './model.js';
import { createOutbox } from './outbox.js';
import { handleDelivery } from './worker.js';
import type { WorkerContext } from './worker.js';

export type { ClusterNode, ClusterOptions, ClusterRun } from './model.js';
export { clusterOptionsFromEnv, parseAttributes, satisfies, subjectToken } from './model.js';

/** A run as `runtime.cluster.runs()` lists it (the shared record without ctx, bag and steps). */
export interface ClusterRunSummary {
  run_id: string;
  scenario_id: string;
  state: ClusterRun['state'];
  /** The node that dispatched it. */
  origin: string;
  /** The node that holds (or last held) it; null while queued. */
  node: string | null;
  fence: number;
  delivery: number;
  cancel_requested: string | null;
  updated_at: string;
}

/**
 * `runtime.cluster` (issue 18): the stable surface for HTTP (`/api/cluster/*`), the CLI (`tessera cluster status`)
 * and the Ops tab. All reads are synchronous, from this node's mirror of the shared buckets.
 */
export interface Cluster {
  /** This node's name and attributes. */
  readonly node: { name: string; attributes: string[] };
  /** Whether the NATS connection is up now. */
  readonly connected: boolean;
  /** Nodes whose heartbeat is fresh (this one included once connected), by name. */
  nodes(): ClusterNode[];
  /** Distributed runs known to this node (newest first), optionally of one state. */
  runs(query?: { state?: ClusterRun['state']; limit?: number }): ClusterRunSummary[];
  /** The shared record of one run (steps included), or undefined when this node has not seen it. */
  status(runId: string): ClusterRun | undefined;
  /** Outbox rows waiting for NATS (runs and cancels not yet published or not yet seen claimed). */
  outbox(): number;
  /** Resolves once connected and set up (stream, consumers, buckets); rejects after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * Fault injection for tests and drills: stop pulling, heartbeats and `working()` progress signals, as a paused or
   * partitioned node would (its runs get redelivered after the ack wait); `resumeProgress()` undoes it.
   */
  pauseProgress(): void;
  resumeProgress(): void;
  /** Stop pulling, let the runs here stop unacked (they are redelivered elsewhere), close the connection. */
  dispose(): Promise<void>;
}

export interface ClusterDeps {
  store: Store;
  engine: ScenarioEngine;
  bus: Bus;
  logger: Logger;
  clock?: () => number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

export function createCluster(options: ClusterOptions, deps: ClusterDeps): Cluster {
  const { engine, bus, logger } = deps;
  const clock = deps.clock ?? Date.now;
  const me = options.node;
  const attributes = [...options.attributes].sort();
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const heartbeatMs = options.heartbeatMs ?? 2_000;
  const republishAfterMs = options.republishAfterMs ?? 60_000;
  const retentionMs = options.retentionMs ?? 7 * 24 * 3_600_000;
  const outbox = createOutbox(deps.store);
  const startedAt = new Date(clock()).toISOString();

  let stopping = false;
  let paused = false;
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let jsm: JetStreamManager | undefined;
  let runsKv: KV | undefined;
  let nodesKv: KV | undefined;
  let connected = false;
  let readyResolve: () => void = () => undefined;
  const readyPromise = new Promise<void>((r) => (readyResolve = r));
  const records = new Map<string, ClusterRun>();
  const nodes = new Map<string, ClusterNode>();
  const running = new Set<string>();
  const consumers = new Map<string, Promise<void>>();
  const ensured = new Set<string>();
  const tasks = new Set<Promise<unknown>>();
  const watchers = new Set<{ stop(): void }>();
  const track = <T>(p: Promise<T>) => {
    tasks.add(p);
    void p.finally(() => tasks.delete(p)).catch(() => undefined);
    return p;
  };
  let wake: () => void = () => undefined;
  const kick = () => wake();

  // ── the engine's hooks ────────────────────────────────────────────────────────────────────────────────
  engine.remote.attach({
    // Top-level runs, and sub-scenarios of a distributed run (each its own fenced cluster run, found again by its
    // derived id when the parent moves; a local child would be unfenced and run again by the parent's next holder).
    // Sub-scenarios of local runs, replays, dry runs and debugged runs stay with the run that asked.
    accepts: (_s, o) => (!o.parent_run_id || engine.remote.fenced(o.parent_run_id)) && !o.replay_of && !o.dry_run && !(o.breakpoints && o.breakpoints.length > 0),
    dispatched(run) {
      outbox.add('run', run.run_id, run, run.created_at);
      setImmediate(kick);
    },
    cancel(runId, reason) {
      outbox.add('cancel', runId, { reason }, clock());
      setImmediate(kick);
    },
  });

  const alive = (name: string) => {
    if (name === me) return !stopping;
    const n = nodes.get(name);
    return n !== undefined && clock() - Date.parse(n.last_seen) < heartbeatMs * 5;
  };

  /** The ack wait each consumer really has (another node may have created it with its own): progress and claim deadlines follow it. */
  const ackWaits = new Map<string, number>();
  const ensureConsumer = async (token: string) => {
    if (ensured.has(token) || !jsm) return;
    // The first node to create a consumer sets its ack wait; the others read it (an `add` with another ack wait
    // would update the consumer under the nodes already pulling from it).
    const name = `runs_${token}`;
    const info =
      (await jsm.consumers.info(STREAM, name).catch(() => null)) ??
      (await jsm.consumers.add(STREAM, { durable_name: name, filter_subject: `${SUBJECT_PREFIX}.${token}`, ack_policy: AckPolicy.Explicit, ack_wait: nanos(ackWaitMs), max_deliver: -1, deliver_policy: DeliverPolicy.All, max_ack_pending: 10_000 }).catch(async (err: unknown) => {
        const existing = await jsm!.consumers.info(STREAM, name).catch(() => null);
        if (!existing) throw err;
        return existing;
      }));
    const actual = Math.floor(Number(info.config.ack_wait ?? nanos(ackWaitMs)) / 1e6);
    if (actual !== ackWaitMs) logger.warn('a run consumer has another ack wait than this node; using the consumer\'s', { token, consumer_ms: actual, node_ms: ackWaitMs });
    ackWaits.set(token, actual > 0 ? actual : ackWaitMs);
    ensured.add(token);
  };

  // ── relay (outbox → JetStream) ───────────────────────────────────────────────────────────────────────
  const relayOnce = async (): Promise<boolean> => {
    if (!js || !runsKv || !connected) return false;
    const rows = outbox.due(clock() - republishAfterMs, 200);
    for (const row of rows) {
      if (stopping) return false;
      const payload = JSON.parse(row.payload) as Record<string, unknown>;
      const key = runKey(row.run_id);
      if (row.kind === 'run') {
        const seen = records.get(row.run_id);
        if (seen && seen.state !== 'queued') {
          outbox.seen(row.run_id);
          outbox.remove(row.id);
          continue;
        }
        const scenario = engine.scenario(String(payload['scenario_id']));
        const token = subjectToken(scenario?.constraints);
        await ensureConsumer(token);
        // The record first (create fails harmlessly when it exists), then the message.
        await runsKv.create(key, JSON.stringify(newRecord(payload as unknown as Parameters<typeof newRecord>[0], me, clock()))).catch((err: unknown) => {
          if (!/wrong last sequence|key exists/i.test(String((err as Error).message))) throw err;
        });
        // Published before: publish again only when the stream lost the message (a server that came back without its
        // store); while it still holds it, a queued run just waits for an eligible node (no duplicates stored).
        if (row.published_at !== null && row.seq !== null && jsm) {
          // null (or a not-found error on some versions): the stream no longer holds it; other errors retry the batch.
          const held = await jsm.streams.getMessage(STREAM, { seq: row.seq }).then(
            (m) => m !== null,
            (err: unknown) => {
              if (/no message found|not found/i.test(String((err as Error).message))) return false;
              throw err;
            },
          );
          if (held) {
            outbox.published(row.id, clock());
            continue;
          }
        }
        const message: DispatchMessage = { run_id: row.run_id, scenario_id: String(payload['scenario_id']), origin: me, max_deliver: Math.min(MAX_DELIVER_CAP, scenario?.max_deliver ?? 5) };
        // A republication after a loss gets its own msg id: the server may still remember the first one.
        const msgID = row.published_at === null ? row.run_id : `${row.run_id}~${clock()}`;
        const ack = await js.publish(`${SUBJECT_PREFIX}.${token}`, JSON.stringify(message), { msgID });
        outbox.published(row.id, clock(), ack.seq);
        if (!ack.duplicate) bus.publish('cluster.run.dispatched', { run_id: row.run_id, scenario_id: message.scenario_id, subject: `${SUBJECT_PREFIX}.${token}`, seq: ack.seq });
      } else {
        // Cancel: a queued run ends cancelled here; a running one gets the flag its owner watches for.
        const reason = String(payload['reason'] ?? 'cancelled by request');
        // Removed only once written, or when the run is final or has no record; any other error (a timeout while
        // NATS reconnects) throws, and the batch is retried: a cancel is never dropped.
        for (;;) {
          const entry = await runsKv.get(key);
          const rec = recordOf(entry);
          if (!entry || !rec || isFinal(rec.state)) break;
          const next: ClusterRun = rec.state === 'queued' ? { ...rec, state: 'cancelled', error: { code: 'RUN_CANCELLED', message: reason }, finished_at: clock(), cancel_requested: reason, updated_at: clock() } : { ...rec, cancel_requested: reason, updated_at: clock() };
          try {
            await runsKv.update(key, JSON.stringify(next), entry.revision);
            break;
          } catch (err) {
            if (!/wrong last sequence|key exists/i.test(String((err as Error).message))) throw err;
          }
        }
        outbox.remove(row.id);
      }
    }
    return rows.length > 0;
  };
  const relayLoop = async () => {
    let delay = 1_000;
    while (!stopping) {
      try {
        const more = await relayOnce();
        if (more) continue;
        delay = 1_000; // idle: a dispatch or a reconnect kicks it sooner

      } catch (err) {
        logger.warn('the cluster outbox could not be published; retrying', { error: err, rows: outbox.count() });
        delay = Math.min(Math.max(delay, 100) * 2, 2_000);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(delay, republishAfterMs)).unref();
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  };

  // ── workers (JetStream → engine) ─────────────────────────────────────────────────────────────────────
  const limit = 8;
  const workerCtx: WorkerContext = { node: me, attributes, engine, bus, logger, runs: () => runsKv, ackWaitMs, nakBaseMs: options.nakBaseMs ?? 500, clock, alive, stopping: () => stopping, paused: () => paused };
  const pullLoop = async (token: string) => {
    while (!stopping) {
      if (paused || !js || !connected || running.size >= limit) {
        await sleep(50);
        continue;
      }
      try {
        await ensureConsumer(token);
        const consumer = await js.consumers.get(STREAM, `runs_${token}`);
        const batch = await consumer.fetch({ max_messages: limit - running.size, expires: 1_000 });
        for await (const msg of batch) {
          if (stopping) break;
          track(handleDelivery({ ...workerCtx, ackWaitMs: ackWaits.get(token) ?? ackWaitMs }, msg, running));
        }
      } catch (err) {
        if (!stopping) logger.debug?.('pulling runs failed; retrying', { token, error: err });
        await sleep(250);
      }
    }
  };
  /** Start a pull loop for every constraint set of the loaded scenarios this node satisfies. */
  const refreshConsumers = () => {
    for (const s of engine.scenarios()) {
      if (!satisfies(attributes, s.constraints)) continue;
      const token = subjectToken(s.constraints);
      if (!consumers.has(token)) consumers.set(token, track(pullLoop(token)));
    }
  };

  // ── mirror and heartbeats ────────────────────────────────────────────────────────────────────────────
  /** One records entry into the mirror. Throws nothing: a malformed or forged entry is logged and skipped. */
  const onRunEntry = (e: KvEntry) => {
    try {
      if (e.operation !== 'PUT') {
        // Pruned (or purged by an operator): drop the mirror too, unless this node is the run's origin.
        for (const [id, r] of records) {
          if (runKey(id) !== e.key) continue;
          records.delete(id);
          if (r.origin !== me && isFinal(r.state)) engine.remote.forget(id);
        }
        return;
      }
      let value: unknown;
      try {
        value = e.json<unknown>();
      } catch {
        value = undefined;
      }
      const rec = parseRunRecord(e.key, value);
      if (typeof rec === 'string') {
        logger.warn('a malformed run record was ignored', { key: e.key, why: rec });
        return;
      }
      records.set(rec.run_id, rec);
      if (rec.state !== 'queued') outbox.seen(rec.run_id);
      if (rec.cancel_requested && engine.remote.running(rec.run_id)) {
        engine.cancel(rec.run_id, rec.cancel_requested);
        return;
      }
      engine.remote.apply(rec, { announce: rec.origin === me && isFinal(rec.state) });
    } catch (err) {
      logger.warn('a run record could not be mirrored', { key: e.key, error: err });
    }
  };
  const onNodeEntry = (e: KvEntry) => {
    if (e.operation !== 'PUT') return void nodes.delete(e.key);
    let value: unknown;
    try {
      value = e.json<unknown>();
    } catch {
      value = undefined;
    }
    const n = parseNodeEntry(e.key, value);
    if (typeof n === 'string') {
      nodes.delete(e.key);
      logger.warn('a malformed node entry was ignored', { key: e.key, why: n });
    } else nodes.set(e.key, n);
  };
  /** Watch a bucket for as long as this node runs: a watch that ends or fails is opened again, with backoff. */
  const watchForever = async (what: string, kv: () => KV | undefined, onEntry: (e: KvEntry) => void) => {
    for (let attempt = 0; !stopping; attempt++) {
      try {
        const bucket = kv();
        if (bucket) {
          const iter = await bucket.watch({ key: '>' });
          watchers.add(iter);
          try {
            for await (const e of iter) {
              if (stopping) break;
              attempt = 0;
              onEntry(e);
            }
          } finally {
            watchers.delete(iter);
          }
        }
        if (!stopping && bucket) logger.warn(`the ${what} watch ended; opening it again`);
      } catch (err) {
        if (!stopping) logger.warn(`the ${what} watch failed; opening it again`, { error: err });
      }
      await sleep(Math.min(5_000, 200 * 2 ** Math.min(attempt, 5)));
    }
  };
  const heartbeat = async () => {
    const self: ClusterNode = { name: me, attributes, running: running.size, last_seen: new Date(clock()).toISOString(), started_at: startedAt };
    nodes.set(me, self);
    if (nodesKv && connected && !paused) await nodesKv.put(me, JSON.stringify(self)).catch(() => undefined);
  };

  // ── retention (review 13(c)): finished records do not pile up on the server nor in every node's mirror ──
  const prune = async () => {
    if (!runsKv || !connected || paused || stopping) return;
    const now = clock();
    for (const r of [...records.values()]) {
      if (stopping) return;
      const ended = r.finished_at ?? r.updated_at;
      if (!isFinal(r.state) || now - ended < retentionMs) continue;
      const mine = r.origin === me || (now - ended >= 2 * retentionMs && !alive(r.origin));
      if (mine) {
        try {
          await runsKv.purge(runKey(r.run_id));
        } catch (err) {
          logger.debug?.('a finished run record could not be pruned now', { run_id: r.run_id, error: err });
          continue;
        }
      }
      records.delete(r.run_id);
      if (r.origin !== me) engine.remote.forget(r.run_id); // the origin keeps its own run's history, as for a local run
    }
  };

  // ── connection and setup ─────────────────────────────────────────────────────────────────────────────
  /**
   * Create what is missing on the server: the stream, the buckets; consumers again on their next pull. Also after a
   * reconnect — a server that came back without its store (new store folder, a stream deleted by an operator) is
   * set up again, and the watches reopen on the new buckets. @returns whether anything was missing.
   */
  const ensureState = async (): Promise<boolean> => {
    if (!nc || !js) return false;
    jsm = await jetstreamManager(nc);
    const missing = async (name: string) => (await jsm!.streams.info(name).catch(() => null)) === null;
    const lost = (await missing(STREAM)) || (await missing(`KV_${RUNS_BUCKET}`)) || (await missing(`KV_${NODES_BUCKET}`));
    if (await missing(STREAM)) {
      await jsm.streams.add({ name: STREAM, subjects: [`${SUBJECT_PREFIX}.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: nanos(120_000) }).catch(async (err: unknown) => {
        if (await missing(STREAM)) throw err;
      });
    }
    const kvm = new Kvm(js);
    runsKv = await kvm.create(RUNS_BUCKET, { history: 1 });
    nodesKv = await kvm.create(NODES_BUCKET, { history: 1, ttl: heartbeatMs * 5 });
    if (lost) {
      ensured.clear();
      for (const w of watchers) w.stop(); // reopened by watchForever on the new buckets
    }
    return lost;
  };
  let recovering: Promise<void> | undefined;
  const recover = () =>
    (recovering ??= (async () => {
      for (let attempt = 0; !stopping; attempt++) {
        try {
          if (await ensureState()) logger.warn('the cluster\'s stream or buckets were missing on the server; set up again');
          kick();
          return;
        } catch (err) {
          logger.warn('cluster setup failed; retrying', { error: err });
          await sleep(Math.min(2_000, 100 * 2 ** attempt));
        }
      }
    })().finally(() => (recovering = undefined)));
  const setup = async () => {
    // Reconnect for ever: a node outlives any outage of the server; its runs wait in the outbox meanwhile.
    // The server is a trust boundary (README): authenticate with a creds file, or the URL's user:password.
    const authenticator = options.credsFile ? credsAuthenticator(readFileSync(options.credsFile)) : undefined;
    nc = await connect({ servers: options.url.split(','), ...(authenticator ? { authenticator } : {}), name: `tessera-${me}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: true, pingInterval: 5_000 });
    if (stopping) return;
    connected = true;
    bus.publish('cluster.node.connected', { node: me, server: nc.getServer() });
    void track((async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          connected = false;
          bus.publish('cluster.node.disconnected', { node: me });
        } else if (s.type === 'reconnect') {
          connected = true;
          bus.publish('cluster.node.connected', { node: me, server: nc.getServer() });
          void track(recover());
        }
      }
    })());
    js = jetstream(nc);
    await recover();
    if (stopping || !runsKv || !nodesKv) return;
    void track(watchForever('run records', () => runsKv, onRunEntry));
    void track(watchForever('nodes', () => nodesKv, onNodeEntry));
    await heartbeat();
    readyResolve();
    kick();
  };
  void track(setup().catch((err: unknown) => logger.error('the cluster could not start', { error: err })));
  void track(relayLoop());
  const timers = [setInterval(() => void heartbeat(), heartbeatMs), setInterval(refreshConsumers, 250), setInterval(() => void track(prune()), Math.max(100, Math.min(retentionMs / 4, 600_000)))];
  timers.forEach((t) => t.unref());
  void readyPromise.then(refreshConsumers);

  return {
    node: { name: me, attributes },
    get connected() {
      return connected;
    },
    nodes: () => [...nodes.values()].filter((n) => alive(n.name)).sort((a, b) => a.name.localeCompare(b.name)),
    runs(query = {}) {
      return [...records.values()]
        .filter((r) => !query.state || r.state === query.state)
        .sort((a, b) => b.created_at - a.created_at)
        .slice(0, Math.min(query.limit ?? 100, 1000))
        .map((r) => ({ run_id: r.run_id, scenario_id: r.scenario_id, state: r.state, origin: r.origin, node: r.node, fence: r.fence, delivery: r.delivery, cancel_requested: r.cancel_requested ?? null, updated_at: new Date(r.updated_at).toISOString() }));
    },
    status: (runId) => records.get(runId),
    outbox: () => outbox.count(),
    ready: (timeoutMs = 20_000) => Promise.race([readyPromise, sleep(timeoutMs).then(() => Promise.reject(new Error(`the cluster was not ready within ${timeoutMs} ms`)))]),
    pauseProgress() {
      paused = true;
    },
    resumeProgress() {
      paused = false;
    },
    async dispose() {
      // 1. Stop intake (pull loops, relay, heartbeats) before any await.
      stopping = true;
      timers.forEach((t) => clearInterval(t));
      kick();
      // 2. Close the connection: deliveries in flight stay unacked and are redelivered to another node; the runs
      //    here stop at their next fenced write (the engine is disposed after us and leaves them resumable).
      for (const w of watchers) w.stop();
      await nc?.close().catch(() => undefined);
      await Promise.race([Promise.allSettled([...tasks]), sleep(2_000)]);
    },
  };
}
