/**
 * The execution contract of seed 002 §2: the {@link ExecutionContext} every intent handler receives, and the
 * execution lifecycle the runtime — never the handler — owns.
 *
 * Contracts:
 * - A context is validated before a handler sees it (ids, intent type, consistency of the intent's tenant,
 *   session and solution with the context's, JSON size limits); a bad one throws VALIDATION_FAILED naming the
 *   field (PAYLOAD_TOO_LARGE for sizes). The context and everything in it are frozen.
 * - Owns the `executions` table (store module `executions`). Lifecycle, legal moves only
 *   ({@link EXECUTION_TRANSITIONS}): created → running | cancelled, running → completed | failed | cancelled.
 *   An illegal move throws with `details.reason: 'EXECUTION_STATE_INVALID'`.
 * - Every transition is journaled as `execution.<state>` in the same transaction as the write, with the
 *   execution's trace id; so are the domain events a handler appends through `ctx.wal`.
 * - An execution may point at the scenario run serving it ({@link ExecutionRegistry.bindRun});
 *   {@link followScenarioRuns} then moves the execution along with the run.
 */
import { randomUUID } from 'node:crypto';
import type { TesseraEvent } from '../../common/api.js';
import { TRACE_ID_PATTERN } from '../../common/api.js';
import { TesseraError, fromErrorData, toErrorData } from '../../common/errors.js';
import type { ErrorData } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import { newTraceId } from '../journal/index.js';
import type { Disposable } from '../lifecycle/index.js';
import type { Migration, Store } from '../store/index.js';
import type { ArtifactRegistry, ArtifactState } from './artifacts.js';
import type { StateSurface } from './state-surface.js';
import { createStateSurface } from './state-surface.js';
import { checkId, checkIntentType, checkText, contractError, deepFreeze, frozenJson, isPlainObject, toContractJson } from './validate.js';

/** The intent an execution serves (seed 002 `Intent`). */
export interface Intent {
  /** e.g. `weather.now`, `ingest_file`. */
  readonly intent_type: string;
  readonly tenant_id: string;
  readonly session_id: string;
  readonly solution_id: string;
  /** The intent's arguments (slots); a JSON object. */
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Free-form facts about the intent; a JSON object. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** An intent as given to {@link createExecutionContext}: ids missing here are taken from the context input. */
export interface IntentInput {
  intent_type: string;
  tenant_id?: string;
  session_id?: string;
  solution_id?: string;
  parameters?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/** The audit trail a handler may append domain events to (seed 002 §5 WAL). */
export interface WriteAheadLog {
  /** The trace id every appended event carries: the execution's. */
  readonly trace_id: string;
  /**
   * Journal `payload` under `topic` (publishing it on the bus) with the execution's trace id. Topics under the
   * runtime's own prefixes (`execution`, `artifact`, `state`, `scenario`, `bus`) are refused with FORBIDDEN:
   * handlers do not write lifecycle events.
   */
  append(topic: string, payload?: unknown): TesseraEvent;
}

/** What the runtime passes to every intent handler (seed 002 §2). Frozen. */
export interface ExecutionContext {
  /** Unique execution id. */
  readonly execution_id: string;
  /** The intent being executed; its tenant, session and solution equal the context's. */
  readonly intent: Intent;
  /** Tenant identifier. */
  readonly tenant_id: string;
  /** Session identifier. */
  readonly session_id: string;
  /** Solution (context) identifier. */
  readonly solution_id: string;
  /** Session and execution state; writes carry the execution's trace id. */
  readonly state_surface: StateSurface;
  /** Audit trail for domain events. */
  readonly wal: WriteAheadLog;
  /** Additional metadata; a JSON object of at most 64 KiB. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** ISO-8601 creation time. */
  readonly created_at: string;
}

/** Input of {@link createExecutionContext}. */
export interface ExecutionContextInput {
  execution_id: string;
  intent: IntentInput;
  /** Defaults to the intent's; when both are given they must be equal. Same for session_id and solution_id. */
  tenant_id?: string;
  session_id?: string;
  solution_id?: string;
  metadata?: Record<string, unknown>;
  /** ISO-8601 or epoch ms; default the clock's now. */
  created_at?: string | number;
}

/** Dependencies of {@link createExecutionContext}. */
export interface ExecutionContextDeps {
  state_surface: StateSurface;
  bus: Bus;
  /** The execution's trace id; a new one when absent. */
  trace_id?: string;
  /** Epoch milliseconds. */
  clock?: () => number;
}

/** Execution lifecycle states (seed 002 §2). */
export type ExecutionState = 'created' | 'running' | 'completed' | 'failed' | 'cancelled';

/** Every execution state, in lifecycle order. */
export const EXECUTION_STATES: readonly ExecutionState[] = ['created', 'running', 'completed', 'failed', 'cancelled'];

/** The legal moves of the execution lifecycle: from a state to the states it may become. */
export const EXECUTION_TRANSITIONS: Readonly<Record<ExecutionState, readonly ExecutionState[]>> = Object.freeze({
  created: ['running', 'cancelled'],
  running: ['completed', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
});

/** An execution as stored. */
export interface ExecutionRecord {
  readonly execution_id: string;
  readonly intent_type: string;
  readonly intent: Intent;
  readonly tenant_id: string;
  readonly session_id: string;
  readonly solution_id: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly state: ExecutionState;
  /** Joins the execution's journal events (GET /api/events?trace_id=…). */
  readonly trace_id: string;
  /** The scenario run serving it, once bound. */
  readonly run_id: string | null;
  /** What the handler returned on completion (JSON, ≤ 64 KiB); null otherwise. */
  readonly result: unknown;
  /** Why it failed or was cancelled; null otherwise. */
  readonly error: ErrorData | null;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly updated_at: string;
}

/** An artifact produced by an execution, as its status lists it. */
export interface ExecutionArtifactRef {
  readonly artifact_id: string;
  readonly kind: string;
  readonly state: ArtifactState;
}

/** The answer of GET /api/execution/{id}/status: the record plus the artifacts the execution produced. */
export interface ExecutionStatus extends ExecutionRecord {
  /** Artifacts whose `produced_by.execution_id` is this execution (empty without an artifact registry). */
  readonly artifacts: readonly ExecutionArtifactRef[];
}

/** Input of {@link ExecutionRegistry.create}. */
export type CreateExecutionInput = Omit<ExecutionContextInput, 'execution_id' | 'created_at'> & {
  /** A caller-chosen id; creating an existing id with the same intent returns the existing execution. Default `exe_<uuid>`. */
  execution_id?: string;
  /** The trace to join; a new one when absent. */
  trace_id?: string;
};

/** What {@link ExecutionRegistry.invoke} expects a handler to return (or nothing). */
export interface HandlerOutcome {
  /** JSON, at most 64 KiB; stored as the execution's result. */
  result?: unknown;
}

/** An intent handler as the runtime invokes it. */
export type ExecutionHandler = (ctx: ExecutionContext) => HandlerOutcome | void | Promise<HandlerOutcome | void>;

/** The runtime's owner of execution records and their lifecycle (seed 002 §2). */
export interface ExecutionRegistry {
  /** Record a new execution in state `created` after validating its context. */
  create(input: CreateExecutionInput): ExecutionRecord;
  /** The execution, or undefined. */
  get(executionId: string): ExecutionRecord | undefined;
  /** The execution with its artifacts; throws when unknown (`details.reason: 'EXECUTION_NOT_FOUND'`). */
  status(executionId: string): ExecutionStatus;
  /** The execution bound to scenario run `runId`, if any. */
  byRun(runId: string): ExecutionRecord | undefined;
  /** The validated, frozen context for the handler; only while `created` or `running`. */
  context(executionId: string): ExecutionContext;
  /** created → running. */
  start(executionId: string): ExecutionRecord;
  /** running → completed, storing `outcome.result`. */
  complete(executionId: string, outcome?: HandlerOutcome): ExecutionRecord;
  /** running → failed, storing the error serialized (unknown errors become INTERNAL). */
  fail(executionId: string, error: unknown): ExecutionRecord;
  /** created | running → cancelled. */
  cancel(executionId: string, reason?: string): ExecutionRecord;
  /**
   * Point the execution at the scenario run serving it. Allowed until it finishes; binding the same run again
   * is a no-op, another run is VALIDATION_FAILED. Journaled as `execution.run_bound`.
   */
  bindRun(executionId: string, runId: string): ExecutionRecord;
  /**
   * Run `handler` as the runtime does: start, build the context, await the handler, then complete or fail.
   * When the execution was cancelled meanwhile, the handler's outcome is dropped. Resolves with the final record.
   */
  invoke(executionId: string, handler: ExecutionHandler): Promise<ExecutionRecord>;
}

/** Dependencies of {@link createExecutionRegistry}. */
export interface ExecutionRegistryOptions {
  store: Store;
  bus: Bus;
  /** The surface contexts expose; default one over `store`. */
  state_surface?: StateSurface;
  /** When given, `status` lists the execution's artifacts. */
  artifacts?: ArtifactRegistry;
  /** Epoch milliseconds. */
  clock?: () => number;
  /** New execution ids. */
  newId?: () => string;
}

export const EXECUTION_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'executions',
    up(db) {
      db.exec(`
        CREATE TABLE executions (
          execution_id TEXT    PRIMARY KEY,
          intent_type  TEXT    NOT NULL,
          tenant_id    TEXT    NOT NULL,
          session_id   TEXT    NOT NULL,
          solution_id  TEXT    NOT NULL,
          intent       TEXT    NOT NULL CHECK (json_valid(intent)),
          metadata     TEXT    NOT NULL CHECK (json_valid(metadata)),
          state        TEXT    NOT NULL CHECK (state IN ('created', 'running', 'completed', 'failed', 'cancelled')),
          trace_id     TEXT    NOT NULL,
          run_id       TEXT,
          result       TEXT    CHECK (result IS NULL OR json_valid(result)),
          error        TEXT    CHECK (error IS NULL OR json_valid(error)),
          created_at   INTEGER NOT NULL,
          started_at   INTEGER,
          finished_at  INTEGER,
          updated_at   INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX executions_run ON executions (run_id) WHERE run_id IS NOT NULL;
        CREATE INDEX executions_session ON executions (tenant_id, session_id, created_at);
      `);
    },
  },
];

/** Topic prefixes only the runtime writes; `ctx.wal.append` refuses them. */
export const RESERVED_WAL_PREFIXES: readonly string[] = ['execution', 'artifact', 'state', 'scenario', 'bus'];

const TRACE_ID = new RegExp(TRACE_ID_PATTERN);

function checkTraceId(value: unknown): string {
  if (typeof value !== 'string' || !TRACE_ID.test(value)) {
    throw new TesseraError('TRACE_ID_INVALID', 'trace_id must be 1–128 characters of letters, digits, ".", "_", ":" or "-", starting with a letter or digit.');
  }
  return value;
}

function toIso(value: string | number, field: string): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new TesseraError('VALIDATION_FAILED', `${field} must be an ISO-8601 time or epoch milliseconds.`);
  return date.toISOString();
}

/** Validate a context input; returns the canonical intent and ids. Shared by the factory and the registry. */
function validateContextInput(input: Omit<ExecutionContextInput, 'execution_id' | 'created_at'>): { intent: Intent; metadataJson: string } {
  if (!isPlainObject(input)) throw new TesseraError('VALIDATION_FAILED', 'The execution context input must be an object.');
  const intentIn = input.intent as unknown;
  if (!isPlainObject(intentIn)) throw new TesseraError('VALIDATION_FAILED', 'intent must be an object with at least intent_type.');
  const intentType = checkIntentType(intentIn['intent_type'], 'intent.intent_type');
  const ids = {} as Record<'tenant_id' | 'session_id' | 'solution_id', string>;
  for (const field of ['tenant_id', 'session_id', 'solution_id'] as const) {
    const own = input[field];
    const fromIntent = intentIn[field];
    if (own === undefined && fromIntent === undefined) throw new TesseraError('VALIDATION_FAILED', `${field} is required (on the context or on its intent).`);
    if (own !== undefined) checkId(own, field);
    if (fromIntent !== undefined) checkId(fromIntent, `intent.${field}`);
    if (own !== undefined && fromIntent !== undefined && own !== fromIntent) {
      throw new TesseraError('VALIDATION_FAILED', `${field} is "${own}" but intent.${field} is "${String(fromIntent)}"; a context must agree with its intent.`);
    }
    ids[field] = (own ?? fromIntent) as string;
  }
  const parametersJson = toContractJson(intentIn['parameters'] ?? {}, 'intent.parameters', { object: true });
  const intentMetadataJson = toContractJson(intentIn['metadata'] ?? {}, 'intent.metadata', { object: true });
  const metadataJson = toContractJson(input.metadata ?? {}, 'metadata', { object: true });
  const intent: Intent = deepFreeze({
    intent_type: intentType,
    ...ids,
    parameters: JSON.parse(parametersJson) as Record<string, unknown>,
    metadata: JSON.parse(intentMetadataJson) as Record<string, unknown>,
  });
  return { intent, metadataJson };
}

/**
 * Build the frozen {@link ExecutionContext} for a handler, validating it first (seed 002 §2 "Validation").
 * Throws VALIDATION_FAILED naming the first bad field, PAYLOAD_TOO_LARGE for JSON over 64 KiB.
 */
export function createExecutionContext(input: ExecutionContextInput, deps: ExecutionContextDeps): ExecutionContext {
  if (!isPlainObject(input)) throw new TesseraError('VALIDATION_FAILED', 'The execution context input must be an object.');
  const executionId = checkId(input.execution_id, 'execution_id');
  const { intent, metadataJson } = validateContextInput(input);
  const clock = deps.clock ?? Date.now;
  const createdAt = input.created_at === undefined ? new Date(clock()).toISOString() : toIso(input.created_at, 'created_at');
  const traceId = deps.trace_id === undefined ? newTraceId(clock()) : checkTraceId(deps.trace_id);
  const { bus } = deps;
  const wal: WriteAheadLog = Object.freeze({
    trace_id: traceId,
    append(topic: string, payload?: unknown) {
      const head = typeof topic === 'string' ? topic.split('.', 1)[0]! : '';
      if (RESERVED_WAL_PREFIXES.includes(head)) {
        throw new TesseraError('FORBIDDEN', `Topic "${topic}" is reserved for the runtime; handlers append domain events under their own prefix.`);
      }
      return bus.publish(topic, payload, { trace_id: traceId });
    },
  });
  return Object.freeze({
    execution_id: executionId,
    intent,
    tenant_id: intent.tenant_id,
    session_id: intent.session_id,
    solution_id: intent.solution_id,
    state_surface: deps.state_surface.withTrace(traceId),
    wal,
    metadata: frozenJson<Record<string, unknown>>(metadataJson),
    created_at: createdAt,
  });
}

interface Row {
  execution_id: string;
  intent_type: string;
  tenant_id: string;
  session_id: string;
  solution_id: string;
  intent: string;
  metadata: string;
  state: ExecutionState;
  trace_id: string;
  run_id: string | null;
  result: string | null;
  error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

/** Create the registry of executions over the device store; applies its migrations. */
export function createExecutionRegistry(options: ExecutionRegistryOptions): ExecutionRegistry {
  const { store, bus, artifacts } = options;
  const clock = options.clock ?? Date.now;
  const newId = options.newId ?? (() => `exe_${randomUUID()}`);
  store.migrate('executions', EXECUTION_MIGRATIONS);
  const stateSurface = options.state_surface ?? createStateSurface({ store, bus, clock });
  const db = store.db;
  const q = {
    get: db.prepare<[string], Row>('SELECT * FROM executions WHERE execution_id = ?'),
    byRun: db.prepare<[string], Row>('SELECT * FROM executions WHERE run_id = ? ORDER BY created_at LIMIT 1'),
    insert: db.prepare(`INSERT INTO executions (execution_id, intent_type, tenant_id, session_id, solution_id, intent, metadata, state, trace_id, created_at, updated_at)
      VALUES (@execution_id, @intent_type, @tenant_id, @session_id, @solution_id, @intent, @metadata, 'created', @trace_id, @now, @now)`),
    move: db.prepare<{ execution_id: string; from: ExecutionState; to: ExecutionState; result: string | null; error: string | null; now: number; started: number | null; finished: number | null }>(
      `UPDATE executions SET state = @to, result = @result, error = @error, updated_at = @now,
        started_at = COALESCE(started_at, @started), finished_at = @finished WHERE execution_id = @execution_id AND state = @from`,
    ),
    bind: db.prepare('UPDATE executions SET run_id = ?, updated_at = ? WHERE execution_id = ?'),
  };

  const toRecord = (row: Row): ExecutionRecord => Object.freeze({
    execution_id: row.execution_id,
    intent_type: row.intent_type,
    intent: frozenJson<Intent>(row.intent),
    tenant_id: row.tenant_id,
    session_id: row.session_id,
    solution_id: row.solution_id,
    metadata: frozenJson<Record<string, unknown>>(row.metadata),
    state: row.state,
    trace_id: row.trace_id,
    run_id: row.run_id,
    result: row.result === null ? null : frozenJson<unknown>(row.result),
    error: row.error === null ? null : frozenJson<ErrorData>(row.error),
    created_at: new Date(row.created_at).toISOString(),
    started_at: row.started_at === null ? null : new Date(row.started_at).toISOString(),
    finished_at: row.finished_at === null ? null : new Date(row.finished_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  });

  const mustGet = (executionId: string): Row => {
    const row = q.get.get(checkId(executionId, 'execution_id'));
    if (!row) throw contractError('EXECUTION_NOT_FOUND', `No execution ${executionId}.`, { execution_id: executionId });
    return row;
  };

  const move = db.transaction((executionId: string, to: ExecutionState, extra: { result?: string; error?: ErrorData }): ExecutionRecord => {
    const row = mustGet(executionId);
    if (!EXECUTION_TRANSITIONS[row.state].includes(to)) {
      const allowed = EXECUTION_TRANSITIONS[row.state];
      throw contractError('EXECUTION_STATE_INVALID', `Execution ${executionId} is ${row.state}; it cannot become ${to} (from ${row.state}: ${allowed.length > 0 ? allowed.join(', ') : 'no further state'}).`, { execution_id: executionId, from: row.state, to });
    }
    const now = clock();
    const final = EXECUTION_TRANSITIONS[to].length === 0;
    q.move.run({
      execution_id: executionId,
      from: row.state,
      to,
      result: extra.result ?? null,
      error: extra.error === undefined ? null : JSON.stringify(extra.error),
      now,
      started: to === 'running' ? now : null,
      finished: final ? now : null,
    });
    bus.publish(`execution.${to}`, {
      execution_id: executionId,
      intent_type: row.intent_type,
      from: row.state,
      ...(row.run_id === null ? {} : { run_id: row.run_id }),
      ...(extra.error === undefined ? {} : { error: extra.error }),
    }, { trace_id: row.trace_id });
    return toRecord(q.get.get(executionId)!);
  });

  const create = db.transaction((input: CreateExecutionInput): ExecutionRecord => {
    if (!isPlainObject(input)) throw new TesseraError('VALIDATION_FAILED', 'create: the input must be an object.');
    const executionId = input.execution_id === undefined ? newId() : checkId(input.execution_id, 'execution_id');
    const { intent, metadataJson } = validateContextInput(input);
    const intentJson = JSON.stringify(intent);
    const existing = q.get.get(executionId);
    if (existing) {
      // Idempotent create, so a caller retrying after a crash gets the same execution back.
      if (existing.intent === intentJson && existing.metadata === metadataJson) return toRecord(existing);
      throw new TesseraError('VALIDATION_FAILED', `execution_id ${executionId} already exists with another intent or metadata.`);
    }
    const now = clock();
    const traceId = input.trace_id === undefined ? newTraceId(now) : checkTraceId(input.trace_id);
    q.insert.run({ execution_id: executionId, intent_type: intent.intent_type, tenant_id: intent.tenant_id, session_id: intent.session_id, solution_id: intent.solution_id, intent: intentJson, metadata: metadataJson, trace_id: traceId, now });
    bus.publish('execution.created', { execution_id: executionId, intent_type: intent.intent_type, tenant_id: intent.tenant_id, session_id: intent.session_id, solution_id: intent.solution_id }, { trace_id: traceId });
    return toRecord(q.get.get(executionId)!);
  });

  const bindRun = db.transaction((executionId: string, runId: string): ExecutionRecord => {
    checkText(runId, 'run_id', 200);
    const row = mustGet(executionId);
    if (row.run_id === runId) return toRecord(row);
    if (row.run_id !== null) throw new TesseraError('VALIDATION_FAILED', `Execution ${executionId} is already served by run ${row.run_id}; it cannot be bound to ${runId}.`);
    if (EXECUTION_TRANSITIONS[row.state].length === 0) {
      throw contractError('EXECUTION_STATE_INVALID', `Execution ${executionId} is ${row.state}; a finished execution cannot be bound to a run.`, { execution_id: executionId, from: row.state });
    }
    q.bind.run(runId, clock(), executionId);
    bus.publish('execution.run_bound', { execution_id: executionId, run_id: runId }, { trace_id: row.trace_id });
    return toRecord(q.get.get(executionId)!);
  });

  const registry: ExecutionRegistry = {
    create: (input) => create(input),
    get(executionId) {
      const row = q.get.get(checkId(executionId, 'execution_id'));
      return row ? toRecord(row) : undefined;
    },
    status(executionId) {
      const record = toRecord(mustGet(executionId));
      const refs: ExecutionArtifactRef[] = [];
      if (artifacts) {
        // Live artifacts, then soft-deleted ones: the status reports everything the execution produced.
        for (const state of [undefined, 'DELETED'] as const) {
          for (let after: string | null | undefined; after !== null;) {
            const page = artifacts.list({ ...(state ? { state } : {}), produced_by: { execution_id: executionId }, limit: 1000, ...(after ? { after } : {}) });
            refs.push(...page.artifacts.map((a) => ({ artifact_id: a.artifact_id, kind: a.kind, state: a.state })));
            after = page.next;
          }
        }
      }
      return Object.freeze({ ...record, artifacts: Object.freeze(refs) });
    },
    byRun(runId) {
      const row = q.byRun.get(checkText(runId, 'run_id', 200));
      return row ? toRecord(row) : undefined;
    },
    context(executionId) {
      const row = mustGet(executionId);
      if (row.state !== 'created' && row.state !== 'running') {
        throw contractError('EXECUTION_STATE_INVALID', `Execution ${executionId} is ${row.state}; a handler context exists only while it is created or running.`, { execution_id: executionId, from: row.state });
      }
      const intent = JSON.parse(row.intent) as Intent;
      return createExecutionContext(
        { execution_id: row.execution_id, intent, metadata: JSON.parse(row.metadata) as Record<string, unknown>, created_at: row.created_at },
        { state_surface: stateSurface, bus, trace_id: row.trace_id, clock },
      );
    },
    start: (executionId) => move(executionId, 'running', {}),
    complete(executionId, outcome = {}) {
      if (!isPlainObject(outcome)) throw new TesseraError('VALIDATION_FAILED', 'complete: the outcome must be an object such as { result }.');
      return move(executionId, 'completed', outcome.result === undefined ? {} : { result: toContractJson(outcome.result, 'result') });
    },
    fail: (executionId, error) => move(executionId, 'failed', { error: toErrorData(error) }),
    cancel: (executionId, reason) =>
      move(executionId, 'cancelled', { error: toErrorData(new TesseraError('RUN_CANCELLED', reason === undefined ? 'The execution was cancelled.' : checkText(reason, 'reason', 2000))) }),
    bindRun: (executionId, runId) => bindRun(executionId, runId),
    async invoke(executionId, handler) {
      if (typeof handler !== 'function') throw new TesseraError('VALIDATION_FAILED', 'invoke: handler must be a function.');
      const ctx = registry.context(executionId);
      if (mustGet(executionId).state === 'created') registry.start(executionId);
      let outcome: HandlerOutcome | void;
      try {
        outcome = await handler(ctx);
      } catch (err) {
        return finishUnlessCancelled(executionId, () => registry.fail(executionId, err));
      }
      return finishUnlessCancelled(executionId, () => {
        try {
          return registry.complete(executionId, outcome ?? {});
        } catch (err) {
          // An unstorable result (too large, not JSON) fails the execution instead of leaving it running.
          return registry.fail(executionId, err);
        }
      });
    },
  };

  /** The handler finished; record its outcome unless the runtime cancelled the execution meanwhile. */
  const finishUnlessCancelled = (executionId: string, finish: () => ExecutionRecord): ExecutionRecord => {
    const row = mustGet(executionId);
    return row.state === 'running' ? finish() : toRecord(row);
  };

  return registry;
}

/**
 * Keep executions bound to scenario runs ({@link ExecutionRegistry.bindRun}) in step with them: a run that
 * starts, completes, fails or is cancelled moves its execution the same way, when that move is legal. The
 * caller owns the returned subscription (STYLE.md §2) and disposes it before the store closes.
 */
export function followScenarioRuns(deps: { bus: Bus; executions: ExecutionRegistry }): Disposable {
  const { bus, executions } = deps;
  return bus.subscribe('scenario.run.*', (event) => {
    const payload = event.payload as { run_id?: unknown; error?: unknown } | null;
    if (typeof payload?.run_id !== 'string') return;
    const execution = executions.byRun(payload.run_id);
    if (!execution) return;
    const state = event.topic.slice('scenario.run.'.length);
    const ensureRunning = () => {
      if (executions.get(execution.execution_id)?.state === 'created') executions.start(execution.execution_id);
    };
    if (state === 'started') {
      ensureRunning();
    } else if (state === 'completed') {
      ensureRunning();
      if (executions.get(execution.execution_id)?.state === 'running') executions.complete(execution.execution_id, { result: { run_id: payload.run_id } });
    } else if (state === 'failed') {
      ensureRunning();
      if (executions.get(execution.execution_id)?.state === 'running') executions.fail(execution.execution_id, fromErrorData(payload.error));
    } else if (state === 'cancelled') {
      const current = executions.get(execution.execution_id)?.state;
      if (current === 'created' || current === 'running') executions.cancel(execution.execution_id, `Scenario run ${payload.run_id} was cancelled.`);
    }
  }, { name: 'contracts.follow-scenario-runs' });
}
