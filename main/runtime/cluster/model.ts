/**
 * Pure parts of the cluster (issue 18 point 1): options, the run record shared by the nodes, how a constraint set
 * maps to a subject, and which node may serve it. No NATS import here.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { TesseraError } from '../../common/errors.js';
import type { ErrorData } from '../../common/errors.js';
import type { RunState } from '../scenarios/engine.js';
import type { Priority } from '../scenarios/model.js';
import type { RemoteRun, RemoteStep } from '../scenarios/engine.js';

export interface ClusterOptions {
  /** `nats://host:port` (several comma-separated). */
  url: string;
  /** This node's name: unique in the cluster (the run records name the node that runs them). */
  node: string;
  /** `kind:value` labels (`has:mic`, `region:eu`, …): a run goes only to nodes having all its scenario's constraints. */
  attributes: string[];
  /** JetStream ack wait of the run consumers (default 30 s): a node that stops signalling progress this long loses its runs. */
  ackWaitMs?: number;
  /** Between node heartbeats (default 2 s); a node unseen for 5 heartbeats is gone from `nodes()`. */
  heartbeatMs?: number;
  /** First nak delay on a retryable failure, doubled per delivery up to 30 s (default 500 ms). */
  nakBaseMs?: number;
  /** A published run not yet seen claimed is published again (same Nats-Msg-Id) after this long (default 60 s). */
  republishAfterMs?: number;
}

export const STREAM = 'TESSERA_RUNS';
export const SUBJECT_PREFIX = 'tessera.runs';
export const RUNS_BUCKET = 'tessera_runs';
export const NODES_BUCKET = 'tessera_nodes';

/** One run as every node sees it (the `tessera_runs` KV bucket). Written only with CAS on the entry's revision. */
export interface ClusterRun extends RemoteRun {
  /** The node whose `scenario.run` dispatched it. */
  origin: string;
  /** The node that claimed the latest delivery; null while queued. */
  node: string | null;
  /** Grows with every claim: a node holds the run only while the record still carries its node and fence. */
  fence: number;
  /** JetStream delivery count of the claim. */
  delivery: number;
  /** Stream sequence of the message claimed (a republished duplicate has another one). */
  msg_seq: number | null;
  /** Set by a cancel from any node; the owner stops the run, a queued run ends `cancelled` when delivered. */
  cancel_requested?: string;
  updated_at: number;
}

/** What travels in the work-queue message (the run record carries the rest). */
export interface DispatchMessage {
  run_id: string;
  scenario_id: string;
  origin: string;
  /** The scenario's max_deliver on the origin (default 5). */
  max_deliver: number;
}

/** A node as its heartbeat says (the `tessera_nodes` KV bucket, entries expire with a TTL). */
export interface ClusterNode {
  name: string;
  attributes: string[];
  /** Distributed runs executing on it now. */
  running: number;
  /** ISO time of its last heartbeat. */
  last_seen: string;
  started_at: string;
}

/** Constraint set → subject token: `any` for none, else a hash of the sorted set (disjoint subjects per set). */
export function subjectToken(constraints: readonly string[] | undefined): string {
  if (!constraints || constraints.length === 0) return 'any';
  return 'c' + createHash('sha256').update([...new Set(constraints)].sort().join('\n')).digest('hex').slice(0, 16);
}

/** Whether a node with `attributes` may run a scenario with `constraints`. */
export function satisfies(attributes: readonly string[], constraints: readonly string[] | undefined): boolean {
  const have = new Set(attributes);
  return (constraints ?? []).every((c) => have.has(c));
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`; other run ids are hex-encoded. */
export function runKey(runId: string): string {
  return /^[-_=a-zA-Z0-9]+(\.[-_=a-zA-Z0-9]+)*$/.test(runId) ? runId : 'x_' + Buffer.from(runId).toString('hex');
}

/** `has:mic,region:eu` (env TESSERA_NODE_ATTRS) → sorted, de-duplicated labels. @throws Error on a malformed label. */
export function parseAttributes(values: readonly string[]): string[] {
  const out = new Set<string>();
  for (const v of values.flatMap((x) => x.split(','))) {
    const a = v.trim();
    if (a === '') continue;
    if (!/^[a-z][a-z0-9_-]*:[^\s,]+$/i.test(a)) throw new Error(`node attribute "${a}" is not kind:value (e.g. has:mic, region:eu)`);
    out.add(a);
  }
  return [...out].sort();
}

/**
 * The cluster settings of `tessera start` from the environment (the CLI turns `--nats`, `--node`, `--attr` into
 * these): `TESSERA_NATS_URL` (none: no cluster), `TESSERA_NODE_NAME` (default the host name),
 * `TESSERA_NODE_ATTRS` (comma list of kind:value), `TESSERA_NATS_ACK_WAIT_MS` (default 30000).
 * @throws TesseraError CONFIG_INVALID on a malformed value.
 */
export function clusterOptionsFromEnv(env: NodeJS.ProcessEnv): ClusterOptions | undefined {
  const url = env['TESSERA_NATS_URL']?.trim();
  if (!url) return undefined;
  if (!url.split(',').every((u) => /^(nats|tls|wss?):\/\/[^\s]+$/.test(u.trim()))) throw new TesseraError('CONFIG_INVALID', `TESSERA_NATS_URL / --nats "${url}" is not a nats://host:port URL.`);
  const node = env['TESSERA_NODE_NAME']?.trim() || hostname();
  if (!/^[-_a-zA-Z0-9]+$/.test(node)) throw new TesseraError('CONFIG_INVALID', `TESSERA_NODE_NAME / --node "${node}": use letters, digits, - and _.`);
  let attributes: string[];
  try {
    attributes = parseAttributes([env['TESSERA_NODE_ATTRS'] ?? '']);
  } catch (err) {
    throw new TesseraError('CONFIG_INVALID', `TESSERA_NODE_ATTRS / --attr: ${(err as Error).message}.`);
  }
  const ack = env['TESSERA_NATS_ACK_WAIT_MS']?.trim();
  const ackWaitMs = ack ? Number(ack) : undefined;
  if (ackWaitMs !== undefined && (!Number.isInteger(ackWaitMs) || ackWaitMs < 500)) throw new TesseraError('CONFIG_INVALID', `TESSERA_NATS_ACK_WAIT_MS "${ack}" must be a whole number of ms ≥ 500.`);
  return { url, node, attributes, ...(ackWaitMs !== undefined ? { ackWaitMs } : {}) };
}

export const isFinal = (state: RunState) => state !== 'queued' && state !== 'running';

export function newRecord(run: { run_id: string; scenario_id: string; ctx: Record<string, unknown>; priority: Priority; trace_id: string; created_at: number }, origin: string, now: number): ClusterRun {
  return { ...run, state: 'queued', bag: {}, error: null, started_at: null, finished_at: null, steps: {}, origin, node: null, fence: 0, delivery: 0, msg_seq: null, updated_at: now };
}

export type { ErrorData, RemoteStep };
