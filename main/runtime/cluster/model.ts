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
  /** `nats://host:port` (several comma-separated); `nats://user:password@host:port` authenticates with a password. */
  url: string;
  /** A NATS credentials file (`.creds`: user JWT + NKey seed) to authenticate with (env TESSERA_NATS_CREDS). */
  credsFile?: string;
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
  /**
   * Finished run records are pruned this long after they end (default 7 days; env TESSERA_NATS_RETENTION_MS): the
   * origin deletes the shared record (any node once it is twice as old), and every other node drops its mirror.
   */
  retentionMs?: number;
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
 * `TESSERA_NODE_ATTRS` (comma list of kind:value), `TESSERA_NATS_ACK_WAIT_MS` (default 30000), `TESSERA_NATS_CREDS`
 * (a NATS credentials file), `TESSERA_NATS_RETENTION_MS` (default 7 days).
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
  const credsFile = env['TESSERA_NATS_CREDS']?.trim();
  const ret = env['TESSERA_NATS_RETENTION_MS']?.trim();
  const retentionMs = ret ? Number(ret) : undefined;
  if (retentionMs !== undefined && (!Number.isInteger(retentionMs) || retentionMs < 1_000)) throw new TesseraError('CONFIG_INVALID', `TESSERA_NATS_RETENTION_MS "${ret}" must be a whole number of ms ≥ 1000.`);
  return { url, node, attributes, ...(ackWaitMs !== undefined ? { ackWaitMs } : {}), ...(credsFile ? { credsFile } : {}), ...(retentionMs !== undefined ? { retentionMs } : {}) };
}

export const isFinal = (state: RunState) => state !== 'queued' && state !== 'running';

export function newRecord(run: { run_id: string; scenario_id: string; ctx: Record<string, unknown>; priority: Priority; trace_id: string; created_at: number }, origin: string, now: number): ClusterRun {
  return { ...run, state: 'queued', bag: {}, error: null, started_at: null, finished_at: null, steps: {}, origin, node: null, fence: 0, delivery: 0, msg_seq: null, updated_at: now };
}

export type { ErrorData, RemoteStep };

// ── validating what arrives from NATS (the server is a trust boundary: never crash or act on a malformed value) ──
const RUN_STATES: ReadonlySet<string> = new Set(['queued', 'running', 'completed', 'failed', 'cancelled']);
const STEP_STATES: ReadonlySet<string> = new Set(['started', 'completed', 'failed', 'skipped', 'compensated', 'compensation_failed', 'cancelled']);
const PRIORITIES: ReadonlySet<string> = new Set(['LOW', 'NORM', 'HIGH']);
/** Node-side cap of a message's max_deliver (the scenario schema allows 1..100). */
export const MAX_DELIVER_CAP = 100;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isTime = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));
const isError = (v: unknown) => v === null || (isObject(v) && typeof v['code'] === 'string' && typeof v['message'] === 'string');
const isStep = (v: unknown) =>
  isObject(v) && typeof v['name'] === 'string' && STEP_STATES.has(v['state'] as string) && isInt(v['attempt']) && typeof v['effect'] === 'boolean' && isError(v['error']) && typeof v['started_at'] === 'number' && isTime(v['finished_at']);

/**
 * A run record read from the `tessera_runs` bucket under `key`, or why it is refused: the shape of ClusterRun, a
 * known state, numeric fence and times, and `key === runKey(run_id)` (a record cannot speak for another run).
 */
export function parseRunRecord(key: string, value: unknown): ClusterRun | string {
  if (!isObject(value)) return 'not an object';
  const r = value;
  if (typeof r['run_id'] !== 'string' || r['run_id'] === '') return 'no run_id';
  if (runKey(r['run_id']) !== key) return `run_id ${JSON.stringify(r['run_id'])} does not belong to key ${key}`;
  if (typeof r['scenario_id'] !== 'string' || r['scenario_id'] === '') return 'no scenario_id';
  if (!RUN_STATES.has(r['state'] as string)) return `unknown state ${JSON.stringify(r['state'])}`;
  if (!PRIORITIES.has(r['priority'] as string)) return 'unknown priority';
  if (!isObject(r['ctx']) || !isObject(r['bag']) || !isObject(r['steps'])) return 'ctx, bag and steps must be objects';
  if (!Object.values(r['steps']).every(isStep)) return 'a malformed step';
  if (!isError(r['error'])) return 'a malformed error';
  if (typeof r['trace_id'] !== 'string' || typeof r['origin'] !== 'string') return 'no trace_id or origin';
  if (!(r['node'] === null || typeof r['node'] === 'string')) return 'node must be a name or null';
  if (!isInt(r['fence']) || !isInt(r['delivery'])) return 'fence and delivery must be whole numbers';
  if (!(r['msg_seq'] === null || isInt(r['msg_seq']))) return 'msg_seq must be a whole number or null';
  if (!(r['cancel_requested'] === undefined || typeof r['cancel_requested'] === 'string')) return 'cancel_requested must be a string';
  if (typeof r['created_at'] !== 'number' || !isTime(r['started_at']) || !isTime(r['finished_at']) || typeof r['updated_at'] !== 'number') return 'malformed times';
  return r as unknown as ClusterRun;
}

/** A work-queue message, or why it is refused (strict: a max_deliver outside 1..MAX_DELIVER_CAP is refused too). */
export function parseDispatchMessage(value: unknown): DispatchMessage | string {
  if (!isObject(value)) return 'not an object';
  if (typeof value['run_id'] !== 'string' || value['run_id'] === '') return 'no run_id';
  if (typeof value['scenario_id'] !== 'string' || value['scenario_id'] === '') return 'no scenario_id';
  if (typeof value['origin'] !== 'string') return 'no origin';
  const md = value['max_deliver'];
  if (!isInt(md) || md < 1 || md > MAX_DELIVER_CAP) return `max_deliver must be a whole number 1..${MAX_DELIVER_CAP}`;
  return { run_id: value['run_id'], scenario_id: value['scenario_id'], origin: value['origin'], max_deliver: md };
}

/** A heartbeat entry of the `tessera_nodes` bucket under `key`, or why it is refused. */
export function parseNodeEntry(key: string, value: unknown): ClusterNode | string {
  if (!isObject(value)) return 'not an object';
  if (value['name'] !== key) return `name ${JSON.stringify(value['name'])} is not its key ${key}`;
  if (!Array.isArray(value['attributes']) || !value['attributes'].every((a) => typeof a === 'string')) return 'attributes must be strings';
  if (!isInt(value['running'])) return 'running must be a whole number';
  if (typeof value['last_seen'] !== 'string' || Number.isNaN(Date.parse(value['last_seen']))) return 'last_seen is not a time';
  if (typeof value['started_at'] !== 'string') return 'no started_at';
  return value as unknown as ClusterNode;
}

/** The validated record of a KV entry, or null (deleted, not JSON, or malformed). */
export function recordOf(entry: { key: string; operation?: string; json<T>(): T } | null | undefined): ClusterRun | null {
  if (!entry || (entry.operation !== undefined && entry.operation !== 'PUT')) return null;
  try {
    const r = parseRunRecord(entry.key, entry.json<unknown>());
    return typeof r === 'string' ? null : r;
  } catch {
    return null;
  }
}
