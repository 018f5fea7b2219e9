/**
 * The durable scenario engine (seed 001 P0 §1–§2, §4–§5; issue 4 §2–§3): a started run finishes, whatever
 * crashes, with each step's result and each effect the runtime records exactly once; an effect outside the
 * device (a tool's HTTP request) is at least once, with one stable idempotency key (issue 13 point 12).
 *
 * Contracts:
 * - Every run and step transition is written to SQLite (runs, steps) and journaled on the bus in the same
 *   transaction: before a step runs (`scenario.step.started`) and after (`completed | retrying | failed`).
 * - A step's idempotency key is `scenario_id/run_id/step_name[#iteration]`. A completed step is never run
 *   again: after a restart its recorded output is replayed. A step that started but has no outcome is run
 *   again with the same key.
 * - Built-in effects (bus.publish, io.say, io.ask's question, memory.set, scenario.run) are recorded in the
 *   `effects` table in the same transaction as the effect itself, keyed by the idempotency key: they happen
 *   once per key. Tool plugins receive the key (`ctx.idempotency_key`); their HTTP requests carry keys derived
 *   from it (`Idempotency-Key`, sandbox/capabilities.ts), so receivers that honour it apply each once.
 * - A step that fails after its retries runs the `compensate` steps of the completed effectful steps in
 *   reverse order (saga), and the run ends `failed` with the cause.
 * - Scheduling: FIFO within priority HIGH > NORM > LOW, with aging so LOW never starves; limits global, per
 *   scenario (`max_concurrent`) and per pool (`cpu`, `io`); `force` bypasses a full queue. A run enqueued with
 *   nothing queued ahead and room to run starts at once, in the caller's turn, so a burst's runs start their
 *   first steps before earlier runs go on to their next ones.
 * - Cancel: the step a cancel interrupts is recorded `cancelled` (a run's own timeout: `failed`, STEP_TIMEOUT);
 *   the tool plugin it waits for observes the cancel token. A runtime that stops leaves it `started` (resumable).
 */
import { createHash } from 'node:crypto';
import type { TesseraEvent } from '../../common/api.js';
import { TesseraError, isTesseraError, toErrorData } from '../../common/errors.js';
import type { ErrorData } from '../../common/errors.js';
import { isSecret, isTruthy, reveal, secret } from '../../common/expr.js';
import { compilePattern } from '../../common/topics.js';
import { setLongTimeout } from '../../common/timers.js';
import type { LongTimeout } from '../../common/timers.js';
import type { Bus } from '../bus/index.js';
import type { Journal } from '../journal/index.js';
import type { Logger } from '../log/index.js';
import type { Memory } from '../memory/index.js';
import type { Migration, Store } from '../store/index.js';
import { createFailureLog, isStoreFailure, toStoreError, writeLockFree } from '../store/failures.js';
import type { LockManager } from './locks.js';
import { createLockManager } from './locks.js';
import type { Priority, Scenario, Step } from './model.js';
import { parseDuration } from './dsl.js';
import { deniedRead, scopeSecrets, stepRefusal } from './permissions.js';
import type { StepRefusal } from './permissions.js';
import Ajv from 'ajv';

export type RunState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
/**
 * `cancelled`: the run was cancelled while the step ran (it never finished). A step stays `started` only while it
 * runs, or when the runtime stopped under it (it is run again on resume).
 */
export type StepState = 'started' | 'completed' | 'failed' | 'skipped' | 'compensated' | 'compensation_failed' | 'cancelled';

export interface RunRecord {
  run_id: string;
  scenario_id: string;
  state: RunState;
  priority: Priority;
  ctx: Record<string, unknown>;
  bag: Record<string, unknown>;
  error: ErrorData | null;
  trace_id: string;
  parent_run_id: string | null;
  dry_run: boolean;
  replay_of: string | null;
  /** Set while the run waits at a breakpoint: the step it stopped before. */
  paused_at: string | null;
  /** Step names the run pauses before (debugger); empty for a finished run. */
  breakpoints: string[];
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface StepRecord {
  step_key: string;
  name: string;
  state: StepState;
  attempt: number;
  effect: boolean;
  simulated: boolean;
  input: unknown;
  output: unknown;
  error: ErrorData | null;
  first_started_at: string;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  /** The run's bag right after this step, secrets redacted (debugging). */
  bag_after: Record<string, unknown> | null;
}

export interface RunOptions {
  priority?: Priority;
  /** Enqueue even when the queue is full. */
  force?: boolean;
  /** Simulate effectful steps instead of running them (marked `simulated`). */
  dry_run?: boolean;
  trace_id?: string;
  parent_run_id?: string;
  /** A caller-chosen run id; running the same id twice returns the existing run (idempotent enqueue). */
  run_id?: string;
  /** Step names to pause before (debugger); `continue` and `step` resume through `debug()`. */
  breakpoints?: string[];
  /**
   * Replay of an earlier run (seed 001 P1): same scenario and ctx; effectful steps return the outputs the
   * original recorded instead of acting again; the rest run for real; `diff()` shows where they differ.
   */
  replay_of?: string;
}

export interface ReplayDifference {
  step_key: string;
  /** What differs: the step's evaluated input, its output, or whether it ran at all. */
  field: 'input' | 'output' | 'presence';
  original: unknown;
  replayed: unknown;
}

/** How tool steps reach tool plugins; the runtime binds this to the plugin registry. */
export interface ToolRunner {
  run(tool: string, args: unknown, options: { idempotency_key: string; trace_id: string; now: number; signal: AbortSignal }): Promise<unknown>;
}

/** An expression engine: interpolate `${…}` in values, evaluate conditions, redact secrets for logs. */
export interface Expressions {
  /** With `revealSecrets`, secrets in text print their value: only for the value handed to the action or tool. */
  interpolate(value: unknown, scope: Record<string, unknown>, options?: { revealSecrets?: boolean }): unknown;
  evaluate(expr: string, scope: Record<string, unknown>): unknown;
  redact(value: unknown): unknown;
  /** Unwrap secrets for the one consumer that needs them (the action or tool), never for logs. */
  reveal(value: unknown): unknown;
}

/** What a stub sees of a step about to run. */
export interface StubCall {
  run_id: string;
  scenario_id: string;
  /** The step key (`name` or `name#i`). */
  step: string;
  target: Step['target'];
  input: Record<string, unknown>;
}

export interface EngineLimits {
  /** Runs executing at once, all scenarios together. */
  global: number;
  pools: { cpu: number; io: number };
  /** Queued runs beyond which `run` refuses (QUEUE_FULL) unless forced. */
  queueMax: number;
  /** Waiting this long raises a queued run by one priority level (no starvation). */
  agingMs: number;
}

export interface EngineOptions {
  store: Store;
  bus: Bus;
  journal: Journal;
  logger: Logger;
  memory: Memory;
  expressions: Expressions;
  tools?: ToolRunner;
  /** Secrets for `${secrets["name"]}` in steps: wrapped values, redacted in everything logged. */
  secrets?: { scope(): Record<string, unknown> };
  /** Cost counters and daily quotas (seed 001 §14): tool calls and spoken characters are metered per step. */
  costs?: { check(kind: string, context?: { user?: string; trace_id?: string; amount?: number }): void; record(kind: string, amount: number, context?: { user?: string; run_id?: string; step?: string }): void };
  locks?: LockManager;
  /**
   * Test doubles (golden scenario tests, seed 001 §13 `io.stub`): consulted before each step's target runs, with
   * its evaluated input. `{value}` is the step's output and nothing is performed; undefined lets it run; a throw
   * fails the attempt like the target's own error would. Never set in production.
   */
  stub?: (call: StubCall) => { value: unknown } | undefined;
  /**
   * The message catalogue (main/runtime/io/messages.ts): an io.say or io.ask with `message: KEY` (and `params`)
   * says the catalogue's words for KEY in the run's language (`ctx.language`) as its `text` / `prompt`.
   */
  messages?: { render(key: string, params?: Record<string, unknown>, language?: string | null): string };
  clock?: () => number;
  /** Random numbers in [0,1) for retry jitter; each draw is recorded in the journal. */
  random?: () => number;
  limits?: Partial<EngineLimits>;
}

export interface ScenarioEngine {
  register(scenario: Scenario): void;
  scenario(id: string): Scenario | undefined;
  scenarios(): Scenario[];
  /**
   * Enqueue a run; returns its id at once. Called outside any transaction (HTTP, I/O input, the CLI) the run's row
   * is committed before it returns — or it throws STORE_BUSY / STORE_FULL and nothing of the run was written or
   * started (issue 13 point 8: no run id is answered that was never stored). Called inside a transaction (a
   * schedule or trigger firing, a parent step) it commits or rolls back with that transaction.
   */
  run(scenarioId: string, ctx?: Record<string, unknown>, options?: RunOptions): string;
  status(runId: string): RunRecord & { steps: StepRecord[] };
  runs(query?: { scenario_id?: string; state?: RunState; limit?: number }): RunRecord[];
  /** Cancel a queued or running run; resolves true when it was still unfinished. */
  cancel(runId: string, reason?: string): boolean;
  /**
   * Debugger (seed 001 P1): `continue` runs to the next breakpoint, `step` stops before the next step,
   * `set` replaces the run's breakpoints. Returns the step the run is paused at, if any.
   */
  debug(runId: string, action: 'continue' | 'step' | 'set', breakpoints?: string[]): { paused_at: string | null; breakpoints: string[] };
  /** Start a replay of `runId` (see RunOptions.replay_of); returns the new run's id. */
  replay(runId: string): string;
  /** Where a replay's steps differ from the original's. */
  diff(replayRunId: string): ReplayDifference[];
  /**
   * Write pending bookkeeping now. Enqueues and step records are group-committed once per event-loop turn;
   * whoever acknowledges a run to the outside world (HTTP, IPC, a schedule or trigger marking itself fired)
   * calls this first, so an acknowledged run is durable. Never throws: writes the store cannot take now (locked
   * by another process, disk full) stay pending, in order, and are retried every FLUSH_RETRY_MS.
   */
  flush(): void;
  /** Resolves when the run reaches a final state. */
  wait(runId: string, timeoutMs?: number): Promise<RunRecord>;
  /** Re-enqueue every unfinished run found in the store (called once at start). Returns how many. */
  resume(): number;
  readonly stats: { queued: number; running: number };
  /** Stop taking runs, cancel timers, wait for running steps to yield (with a deadline). Runs stay resumable. */
  dispose(): Promise<void>;
  /** Hooks for runs spread over nodes (issue 18, main/runtime/cluster). */
  readonly remote: RemoteRuns;
}

// ── distribution over nodes (issue 18; used by main/runtime/cluster) ─────────────────────────────────────
/**
 * How runs are spread over nodes (issue 18 point 1). Attached by the cluster module (`engine.remote.attach`);
 * without it every run runs here, exactly as before.
 */
export interface RunDistribution {
  /** Whether this run goes to the cluster instead of the local queue; asked in run(), before its row is written. */
  accepts(scenario: Scenario, options: RunOptions): boolean;
  /**
   * Called inside the transaction that inserts a dispatched run's row (seed 001 §18 outbox): write the outbox row
   * there, synchronously, so the run and its publication commit or roll back together.
   */
  dispatched(run: DispatchedRun): void;
  /** Cancel a dispatched run that is not running here (synchronous; the cluster forwards it through its outbox). */
  cancel(runId: string, reason: string): void;
}

export interface DispatchedRun {
  run_id: string;
  scenario_id: string;
  ctx: Record<string, unknown>;
  priority: Priority;
  trace_id: string;
  created_at: number;
}

/** A step's outcome as a run record shared by the nodes holds it (the cluster's KV record). */
export interface RemoteStep {
  name: string;
  state: StepState;
  attempt: number;
  effect: boolean;
  output: unknown;
  error: ErrorData | null;
  started_at: number;
  finished_at: number | null;
}

/** A run as recorded by the cluster (possibly on another node): what `remote.apply` mirrors into the local tables. */
export interface RemoteRun {
  run_id: string;
  scenario_id: string;
  state: RunState;
  priority: Priority;
  ctx: Record<string, unknown>;
  bag: Record<string, unknown>;
  error: ErrorData | null;
  trace_id: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  steps: Record<string, RemoteStep>;
}

/** How a delivered run ended on this node, held until the cluster wrote it under the run's fence. */
export interface RemoteOutcome {
  state: RunState;
  error: ErrorData | null;
  finished_at: number;
  /** Record it locally: final row, `scenario.run.<state>` journaled, waiters resolved. */
  commit(): void;
}

/**
 * The fence of one delivery of a distributed run (issue 18): a node executes a delivered run only while it holds
 * the run record's claim. Both calls reject with RUN_FENCED once another delivery has claimed the run; the engine
 * then stops the run where it is (no compensation, no final state: the new owner finishes it).
 */
export interface RunFence {
  /** Before an effectful step acts. */
  check(stepKey: string): Promise<void>;
  /** Commit a step's outcome (completed, skipped, failed for good) to the shared record, under the fence. */
  step(stepKey: string, outcome: RemoteStep): Promise<void>;
}

/** The engine's side of distribution (issue 18). Every member is a no-op for runs that never left this node. */
export interface RemoteRuns {
  attach(distribution: RunDistribution): void;
  /**
   * Mirror a run recorded by the cluster into the local tables (its row, marked dispatched, and its steps), so
   * status, runs, replay and diff answer for it synchronously. A final state resolves `wait()`ers; `announce`
   * also publishes `scenario.run.<state>` (the run's origin node, so its journal says how its run ended).
   * Ignored for a run executing here (its own engine writes it) and for a run that never left this node (a row
   * that exists with dispatched = 0: a record from the cluster cannot rewrite local history).
   */
  apply(run: RemoteRun, options?: { announce?: boolean }): void;
  /**
   * Execute a delivered run under `fence`: steps recorded as completed or skipped (mirrored first with apply) are
   * replayed, not run again. Resolves with how the run ended — not yet recorded locally: the caller writes it
   * under the fence first, then calls `commit()` (local row, journal, waiters) — or null when the run stopped
   * without finishing here (fenced out, or the runtime stopping).
   */
  execute(runId: string, fence: RunFence): Promise<RemoteOutcome | null>;
  /** Whether the run executes on this node now. */
  running(runId: string): boolean;
  /**
   * Whether the run is a delivered run executing here under a fence. Its sub-scenarios are dispatched to the
   * cluster as runs of their own (child run ids derive from the step's idempotency key, so the node that takes the
   * parent over finds the same child in the shared records instead of running it again).
   */
  fenced(runId: string): boolean;
  /**
   * Drop the local mirror of a finished run dispatched to the cluster (retention of the shared records); a run
   * that never left this node, or is not final, is kept. @returns whether rows were removed.
   */
  forget(runId: string): boolean;
  /** Why `ctx` does not match the scenario's ctx_schema as loaded here (undefined: it matches, or there is none). */
  ctxProblem(scenarioId: string, ctx: unknown): string | undefined;
}

/** The error a fenced-out run stops with. */
const isFenced = (err: unknown) => isTesseraError(err) && err.code === 'RUN_FENCED';

export const SCENARIO_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, steps and effects',
    up(db) {
      db.exec(`
        CREATE TABLE scenario_runs (
          run_id        TEXT PRIMARY KEY,
          scenario_id   TEXT NOT NULL,
          state         TEXT NOT NULL,
          priority      TEXT NOT NULL,
          ctx           TEXT NOT NULL,
          bag           TEXT NOT NULL DEFAULT '{}',
          error         TEXT,
          trace_id      TEXT NOT NULL,
          parent_run_id TEXT,
          dry_run       INTEGER NOT NULL DEFAULT 0,
          seq           INTEGER NOT NULL,
          created_at    INTEGER NOT NULL,
          started_at    INTEGER,
          finished_at   INTEGER
        ) STRICT;
        CREATE INDEX scenario_runs_state ON scenario_runs (state, seq);
        CREATE INDEX scenario_runs_scenario ON scenario_runs (scenario_id, seq);
        CREATE TABLE scenario_steps (
          run_id           TEXT NOT NULL,
          step_key         TEXT NOT NULL,
          name             TEXT NOT NULL,
          state            TEXT NOT NULL,
          attempt          INTEGER NOT NULL,
          effect           INTEGER NOT NULL,
          simulated        INTEGER NOT NULL DEFAULT 0,
          input            TEXT,
          output           TEXT,
          error            TEXT,
          first_started_at INTEGER NOT NULL,
          started_at       INTEGER NOT NULL,
          finished_at      INTEGER,
          ord              INTEGER NOT NULL,
          PRIMARY KEY (run_id, step_key)
        ) STRICT;
        CREATE TABLE effects (
          idempotency_key TEXT PRIMARY KEY,
          result          TEXT NOT NULL,
          created_at      INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    name: 'replays and bag snapshots',
    up(db) {
      db.exec(`
        ALTER TABLE scenario_runs ADD COLUMN replay_of TEXT;
        ALTER TABLE scenario_steps ADD COLUMN bag_after TEXT;
      `);
    },
  },
  {
    version: 3,
    name: 'runs dispatched to the cluster',
    up(db) {
      // 1: the run went to the cluster (issue 18): resume() leaves it alone; its record there is its truth.
      db.exec('ALTER TABLE scenario_runs ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;');
    },
  },
];

const PRIORITY_RANK: Record<Priority, number> = { LOW: 0, NORM: 1, HIGH: 2 };
const ajv = new Ajv({ allErrors: true, strict: false });
/**
 * Group commit bounds: pending bookkeeping is written once per event-loop turn, or sooner when an urgent record
 * (a run's first step starting) has waited this long, or the batch is this many writes long: a long synchronous
 * stretch (a burst of enqueues, many runs stepping in one turn) does not hold a run's start back until it ends.
 */
const FLUSH_MAX_AGE_MS = 2;
const FLUSH_MAX_WRITES = 2048;
/** After the store refused a flush (locked by another process, disk full): when to try again. */
const FLUSH_RETRY_MS = 1_000;
/** A run started inside another's start (sub-scenarios) past this depth is queued instead: bounded stack. */
const MAX_SYNC_START_DEPTH = 4;
const DEFAULT_LIMITS: EngineLimits = { global: 8, pools: { cpu: 2, io: 8 }, queueMax: 10_000, agingMs: 5_000 };

interface RunRow {
  run_id: string;
  scenario_id: string;
  state: RunState;
  priority: Priority;
  ctx: string;
  bag: string;
  error: string | null;
  trace_id: string;
  parent_run_id: string | null;
  dry_run: number;
  seq: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  replay_of: string | null;
  dispatched: number;
}

interface StepRow {
  run_id: string;
  step_key: string;
  name: string;
  state: StepState;
  attempt: number;
  effect: number;
  simulated: number;
  input: string | null;
  output: string | null;
  error: string | null;
  first_started_at: number;
  started_at: number;
  finished_at: number | null;
  ord: number;
  bag_after: string | null;
}

interface Queued {
  run_id: string;
  scenario_id: string;
  priority: Priority;
  enqueued_at: number;
  seq: number;
}

/**
 * A running run: seed 001 §1's ExecutionUnit. Its context (ctx, bag, step outputs) lives in executeRun's scope;
 * what is addressed to it arrives by three doors, all keyed by its run id: the cancel token (`controller`,
 * observed by its steps and the tool plugin it waits for), the debugger (`debuggers`: continue / step), and the
 * journal (io.answer and awaited events, matched on run id and step). The journal is its durable inbox: an answer
 * that arrived while the runtime was down is found there on resume.
 */
interface ExecutionUnit {
  run_id: string;
  scenario: Scenario;
  /** Its cancel token: aborted by cancel(), the run's timeout, or shutdown. */
  controller: AbortController;
  /** Whether it holds a concurrency slot now (it gives it up while it waits for a sub-scenario). */
  counted: boolean;
}

/** Thrown inside a run when it is cancelled; never a step failure. */
class Cancelled extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** Ancestors looked at for a sub-scenario's permissions; a deeper chain is cut (and the cut counts as a refusal). */
const MAX_RUN_ANCESTORS = 32;
/** Stands for an ancestor run whose scenario is unknown here: it declares nothing. */
const CLOSED_SCENARIO: Scenario = { id: '(unknown)', version: 0, priority: 'NORM', pool: 'cpu', locks: [], steps: [], permissions: [] };

const parseJson = <T>(text: string | null): T => (text === null ? (null as T) : (JSON.parse(text) as T));

/** Secret values shorter than this are not looked for in outputs (a one-letter secret would mask everything). */
const MIN_GUARDED_SECRET = 4;

/**
 * A step's output with every string that contains one of the run's secret values wrapped as a secret: an action
 * or tool that echoes a secret it was handed (memory.set returns its value) must not put it in the step record,
 * the journal or the bag snapshots. Later steps of the same run still get the value through the bag; a step
 * replayed from its record (after a restart, or in a replay) reads `***`, so use `secrets[…]` where it matters.
 */
function guardSecrets(value: unknown, scope: Record<string, unknown>, personal: Iterable<unknown> = []): unknown {
  const values = guardedValues(scope, personal);
  if (values.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return values.some((s) => v.includes(s)) ? secret(v) : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object' && !isSecret(v) && Object.getPrototypeOf(v) === Object.prototype) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value);
}

/** The run's secret values (its scope's `secrets`) and the personal values it read or stored, as text. */
function guardedValues(scope: Record<string, unknown>, personal: Iterable<unknown>): string[] {
  const box = scope['secrets'];
  const known = [...(box !== null && typeof box === 'object' ? Object.values(box as Record<string, unknown>) : []), ...personal];
  return known.map((v) => reveal(v)).filter((v): v is string => typeof v === 'string' && v.length >= MIN_GUARDED_SECRET);
}

/**
 * `error` with every occurrence of the run's secret and personal values (as {@link guardSecrets} finds them, also
 * JSON-escaped) replaced by `***` in its message and details (review 18 item 10): a step's or run's error is
 * journaled, stored and handed to the cluster, and a tool or action may echo what it was given in it. The same
 * object when nothing matched.
 */
function guardError(error: ErrorData, scope: Record<string, unknown>, personal: Iterable<unknown> = []): ErrorData {
  const values = guardedValues(scope, personal).flatMap((v) => [v, JSON.stringify(v).slice(1, -1)]).sort((a, b) => b.length - a.length);
  if (values.length === 0) return error;
  const mask = (v: unknown): unknown => {
    if (typeof v === 'string') return values.reduce((text, s) => text.split(s).join('***'), v);
    if (isSecret(v)) return '***';
    if (Array.isArray(v)) return v.map(mask);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mask(x)]));
    return v;
  };
  const guarded = mask(error) as ErrorData;
  return JSON.stringify(guarded) === JSON.stringify(error) ? error : guarded;
}

/**
 * A step's evaluated input for the action: `clear` (secrets revealed) where nothing secret went in, a secret
 * where `wrapped` (evaluated without revealing) holds one, and a text that printed a secret wrapped whole
 * (`"Hello ${memory['traveller.name']}"`). The action reveals what it hands on; what it journals stays `***`.
 */
function seal(clear: unknown, wrapped: unknown): unknown {
  if (isSecret(wrapped)) return wrapped;
  if (typeof clear === 'string') return typeof wrapped === 'string' && wrapped !== clear ? secret(clear) : clear;
  if (Array.isArray(clear) && Array.isArray(wrapped)) return clear.map((c, i) => seal(c, wrapped[i]));
  if (clear !== null && typeof clear === 'object' && wrapped !== null && typeof wrapped === 'object' && !Array.isArray(clear) && Object.getPrototypeOf(clear) === Object.prototype) {
    const w = wrapped as Record<string, unknown>;
    return Object.fromEntries(Object.entries(clear).map(([k, c]) => [k, seal(c, w[k])]));
  }
  return clear;
}

export function createScenarioEngine(options: EngineOptions): ScenarioEngine {
  const { store, bus, journal, logger, memory, expressions } = options;
  const clock = options.clock ?? Date.now;
  const random = options.random ?? Math.random;
  const limits: EngineLimits = { ...DEFAULT_LIMITS, ...options.limits, pools: { ...DEFAULT_LIMITS.pools, ...options.limits?.pools } };
  const locks = options.locks ?? createLockManager();
  store.migrate('scenarios', SCENARIO_MIGRATIONS);
  const db = store.db;
  /** Per run (keyed by its memory view): the personal values its steps read or stored, guarded in outputs. */
  const personalSeen = new WeakMap<object, Set<unknown>>();

  const q = {
    insertRun: db.prepare('INSERT INTO scenario_runs (run_id, scenario_id, state, priority, ctx, trace_id, parent_run_id, dry_run, seq, created_at, replay_of, dispatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    setBagAfter: db.prepare('UPDATE scenario_steps SET bag_after = ? WHERE run_id = ? AND step_key = ?'),
    getRun: db.prepare<[string], RunRow>('SELECT * FROM scenario_runs WHERE run_id = ?'),
    setRunState: db.prepare('UPDATE scenario_runs SET state = ?, error = ?, finished_at = ? WHERE run_id = ?'),
    startRun: db.prepare("UPDATE scenario_runs SET state = 'running', started_at = COALESCE(started_at, ?) WHERE run_id = ?"),
    setBag: db.prepare('UPDATE scenario_runs SET bag = ? WHERE run_id = ?'),
    unfinished: db.prepare<[], RunRow>("SELECT * FROM scenario_runs WHERE state IN ('queued', 'running') AND dispatched = 0 ORDER BY seq"),
    maxSeq: db.prepare<[], { s: number | null }>('SELECT MAX(seq) AS s FROM scenario_runs'),
    getStep: db.prepare<[string, string], StepRow>('SELECT * FROM scenario_steps WHERE run_id = ? AND step_key = ?'),
    steps: db.prepare<[string], StepRow>('SELECT * FROM scenario_steps WHERE run_id = ? ORDER BY ord'),
    startStep: db.prepare(`INSERT INTO scenario_steps (run_id, step_key, name, state, attempt, effect, simulated, input, first_started_at, started_at, ord)
      VALUES (@run_id, @step_key, @name, 'started', @attempt, @effect, @simulated, @input, @now, @now, @ord)
      ON CONFLICT (run_id, step_key) DO UPDATE SET state = 'started', attempt = @attempt, input = @input, started_at = @now, error = NULL, finished_at = NULL`),
    finishStep: db.prepare('UPDATE scenario_steps SET state = ?, output = ?, error = ?, finished_at = ? WHERE run_id = ? AND step_key = ?'),
    getEffect: db.prepare<[string], { result: string }>('SELECT result FROM effects WHERE idempotency_key = ?'),
    putEffect: db.prepare('INSERT INTO effects (idempotency_key, result, created_at) VALUES (?, ?, ?)'),
  };

  const scenarios = new Map<string, Scenario>();
  /** Per-run debugger state; only runs started with breakpoints (or `debug`ged) have one. */
  const debuggers = new Map<string, { breakpoints: Set<string>; stepping: boolean; pausedAt: string | null; resume?: () => void }>();
  const ctxValidators = new Map<string, ReturnType<typeof ajv.compile>>();
  const queue: Queued[] = [];
  const running = new Map<string, ExecutionUnit>();
  const waiters = new Map<string, Array<(r: RunRecord) => void>>();
  let seq = q.maxSeq.get()?.s ?? 0;
  let disposed = false;
  const inFlight = new Set<Promise<void>>();

  const toRecord = (row: RunRow): RunRecord => ({
    run_id: row.run_id,
    scenario_id: row.scenario_id,
    state: row.state,
    priority: row.priority,
    ctx: parseJson(row.ctx),
    bag: parseJson(row.bag),
    error: parseJson(row.error),
    trace_id: row.trace_id,
    parent_run_id: row.parent_run_id,
    dry_run: row.dry_run === 1,
    replay_of: row.replay_of,
    paused_at: debuggers.get(row.run_id)?.pausedAt ?? null,
    breakpoints: [...(debuggers.get(row.run_id)?.breakpoints ?? [])],
    created_at: new Date(row.created_at).toISOString(),
    started_at: row.started_at === null ? null : new Date(row.started_at).toISOString(),
    finished_at: row.finished_at === null ? null : new Date(row.finished_at).toISOString(),
  });
  const toStep = (row: StepRow): StepRecord => ({
    step_key: row.step_key,
    name: row.name,
    state: row.state,
    attempt: row.attempt,
    effect: row.effect === 1,
    simulated: row.simulated === 1,
    input: parseJson(row.input),
    output: parseJson(row.output),
    error: parseJson(row.error),
    first_started_at: new Date(row.first_started_at).toISOString(),
    started_at: new Date(row.started_at).toISOString(),
    finished_at: row.finished_at === null ? null : new Date(row.finished_at).toISOString(),
    duration_ms: row.finished_at === null ? null : row.finished_at - row.started_at,
    bag_after: parseJson(row.bag_after),
  });

  // ── scheduling ────────────────────────────────────────────────────────────────────────────────────────
  // Slot counters kept up to date as runs start, finish, or wait for a child, so picking is O(queue).
  const slots = { total: 0, byScenario: new Map<string, number>(), byPool: new Map<string, number>() };
  const countSlot = (scenario: Scenario, delta: 1 | -1) => {
    slots.total += delta;
    slots.byScenario.set(scenario.id, (slots.byScenario.get(scenario.id) ?? 0) + delta);
    slots.byPool.set(scenario.pool, (slots.byPool.get(scenario.pool) ?? 0) + delta);
  };
  const setCounted = (entry: ExecutionUnit | undefined, counted: boolean) => {
    if (!entry || entry.counted === counted) return;
    entry.counted = counted;
    countSlot(entry.scenario, counted ? 1 : -1);
  };

  /** Whether one more run of `scenario` fits the global, per-scenario and pool limits now. */
  const fits = (scenario: Scenario) =>
    slots.total < limits.global &&
    (scenario.max_concurrent === undefined || (slots.byScenario.get(scenario.id) ?? 0) < scenario.max_concurrent) &&
    (slots.byPool.get(scenario.pool) ?? 0) < limits.pools[scenario.pool];

  /** Start a run now: take its slot and execute it (synchronously up to its first wait). */
  const startRun = (item: Queued, scenario: Scenario, row?: RunRow) => {
    const controller = new AbortController();
    const entry: ExecutionUnit = { run_id: item.run_id, controller, scenario, counted: false };
    running.set(item.run_id, entry);
    setCounted(entry, true);
    const p = executeRun(item.run_id, scenario, controller.signal, row)
      .catch((err: unknown) => logger.error('scenario run crashed the executor', { run_id: item.run_id, error: err }))
      .finally(() => {
        setCounted(entry, false);
        running.delete(item.run_id);
        inFlight.delete(p);
        pump();
      });
    inFlight.add(p);
  };

  // A run starts synchronously up to its first wait, and that may enqueue or pump again (a sub-scenario): a pump
  // inside a pump only asks the running one for another pass, so no run is started twice.
  let pumping = false;
  let pumpAgain = false;
  /** Runs being started synchronously inside one another (a sub-scenario's first step starts its child). */
  let startDepth = 0;
  /**
   * Start every queued run that fits, in one ordered pass: priority raised by age (so LOW never starves), FIFO
   * (enqueue order) among equals. A run that does not fit (its scenario or pool is full) is passed over for
   * later ones that do; it keeps its place for the next pump.
   */
  const pump = () => {
    if (disposed) return;
    if (pumping) {
      pumpAgain = true;
      return;
    }
    pumping = true;
    try {
      do {
        pumpAgain = false;
        if (queue.length === 0) break;
        // The runs about to start must have their rows: while the store refuses them, they wait in the queue
        // (the flush retry pumps again).
        if (commitPending() !== undefined) break;
        if (slots.total >= limits.global) break;
        const now = clock();
        const score = (item: Queued) => PRIORITY_RANK[item.priority] + (now - item.enqueued_at) / limits.agingMs;
        const order = queue.map((item) => ({ item, score: score(item) })).sort((a, b) => b.score - a.score || a.item.seq - b.item.seq);
        const started = new Set<Queued>();
        for (const { item } of order) {
          if (slots.total >= limits.global) break;
          const scenario = scenarios.get(item.scenario_id);
          if (!scenario || !fits(scenario)) continue;
          started.add(item);
          startRun(item, scenario);
        }
        if (started.size > 0) {
          const rest = queue.filter((item) => !started.has(item));
          queue.length = 0;
          queue.push(...rest);
        }
      } while (pumpAgain && !disposed);
    } finally {
      pumping = false;
    }
  };

  // ── journaling helpers ────────────────────────────────────────────────────────────────────────────────
  // Group commit: the step bookkeeping of every run is written in one transaction per event-loop turn, so a
  // burst of steps costs one commit, not three each. Safe for exactly-once because effects never depend on
  // it: built-in effects commit atomically with their `effects` row (once()), and a step whose record was
  // lost in a crash simply runs again under the same idempotency key. Reads of runs and steps flush first.
  let pendingWrites: Array<() => void> = [];
  /** Runs enqueued but not yet flushed (their rows are in pendingWrites). */
  const pendingRunIds = new Set<string>();
  /** The pending write that inserts a run's row → that run's id. */
  const runInserts = new WeakMap<() => void, string>();
  let flushScheduled = false;
  /** performance.now() when the oldest pending urgent write was deferred; undefined when none is pending. */
  let urgentSince: number | undefined;
  let flushing = false;
  /** Run once the pending writes are committed: whoever waits for a run's end hears of it only then. */
  let afterCommit: Array<() => void> = [];
  const flushFailures = createFailureLog(logger, 'writing scenario bookkeeping');
  let retryTimer: NodeJS.Timeout | undefined;
  /** The store failure of the last flush, until one succeeds: meanwhile only the retry timer and run() try. */
  let failing: unknown;
  /**
   * Commits the pending writes; returns the store failure that prevented it, if any. Such a failure (another
   * process holding the lock, a full disk) says nothing about the writes, so they stay pending, ahead of later
   * ones, and a retry is armed; dropping them lost runs whose ids had been handed out (issue 13). While the store
   * is failing, only a caller that must know (`attempt`: run() before it answers, the retry) tries again; the
   * others would each wait busy_timeout on the thread that serves HTTP.
   */
  const commitPending = (attempt = false): unknown => {
    if (pendingWrites.length === 0) failing = undefined; // nothing held back: the next write finds out afresh
    if (pendingWrites.length === 0 || !store.isOpen) return undefined;
    // Inside a transaction the writes go with it (a schedule firing, a route committing an event with its run).
    if (failing !== undefined && !attempt && !db.inTransaction) {
      armRetry();
      return failing;
    }
    const batch = pendingWrites;
    const callbacks = afterCommit;
    pendingWrites = [];
    afterCommit = [];
    urgentSince = undefined;
    // Subscribers of the events written here may defer more (a trigger starting a run): those wait for the next
    // flush instead of nesting one inside this one.
    const outer = flushing;
    flushing = true;
    try {
      db.transaction(() => batch.forEach((fn) => fn()))();
    } catch (err) {
      if (isStoreFailure(err)) {
        // The inserts that ran before the failure took their runs off pendingRunIds; they are pending again.
        for (const fn of batch) {
          const runId = runInserts.get(fn);
          if (runId !== undefined) pendingRunIds.add(runId);
        }
        pendingWrites = [...batch, ...pendingWrites];
        afterCommit = [...callbacks, ...afterCommit];
        failing = err;
        flushFailures.failed(err);
        armRetry();
        return err;
      }
      // One bad write must not cost the others: write them one by one and report the ones that fail.
      for (const fn of batch) {
        try {
          db.transaction(fn)();
        } catch (err) {
          logger.error('scenario bookkeeping could not be written', { error: err });
        }
      }
    } finally {
      flushing = outer;
    }
    failing = undefined;
    flushFailures.succeeded();
    if (callbacks.length > 0) {
      // Inside someone else's transaction (a nested flush) the writes commit when it does: a turn later at most.
      if (db.inTransaction) setImmediate(() => callbacks.forEach((cb) => cb()));
      else callbacks.forEach((cb) => cb());
    }
    return undefined;
  };
  const flush = (): void => void commitPending();
  const armRetry = () => {
    if (retryTimer !== undefined || disposed) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      // Still locked by another process: skip this round rather than wait busy_timeout.
      if (!writeLockFree(db)) return armRetry();
      if (commitPending(true) === undefined) pump();
    }, FLUSH_RETRY_MS);
    retryTimer.unref();
  };
  const defer = (fn: () => void, urgent = false) => {
    const n = pendingWrites.push(fn);
    if (urgent) urgentSince ??= performance.now();
    if (!flushing && (n >= FLUSH_MAX_WRITES || (urgentSince !== undefined && performance.now() - urgentSince >= FLUSH_MAX_AGE_MS))) flush();
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        flush();
      });
    }
  };

  /**
   * The run's final state, group-committed with the bookkeeping of the runs finishing in the same turn (one commit,
   * not one per run); waiters hear of it once it is committed. Reads (status, wait, runs) flush first.
   */
  const finishRun = (runId: string, state: RunState, error: ErrorData | null, traceId: string, extra: Record<string, unknown> = {}) => {
    const finishedAt = clock();
    debuggers.delete(runId);
    afterCommit.push(() => {
      const list = waiters.get(runId);
      if (!list) return;
      waiters.delete(runId);
      const record = toRecord(q.getRun.get(runId)!);
      for (const w of list) w(record);
    });
    defer(() => {
      q.setRunState.run(state, error === null ? null : JSON.stringify(error), finishedAt, runId);
      bus.publish(`scenario.run.${state}`, { run_id: runId, ...extra, ...(error ? { error } : {}) }, { trace_id: traceId });
    }, true);
  };

  /**
   * How executeRun ends a run: a local run finishes now; a delivered run's outcome is held until the cluster has
   * written it under the run's fence (remote.execute hands it back with `commit`): a fenced-out node never says
   * its run ended.
   */
  const endRun = (runId: string, state: RunState, error: ErrorData | null, traceId: string, extra: Record<string, unknown> = {}) => {
    if (fences.has(runId)) heldOutcomes.set(runId, { state, error, finished_at: clock(), commit: () => finishRun(runId, state, error, traceId, extra) });
    else finishRun(runId, state, error, traceId, extra);
  };

  /** Do `fn` once per idempotency key, atomically with recording it; later calls return the recorded result. */
  const once = <T>(key: string, fn: () => T): T => {
    flush(); // journal order: the step's `started` before the effect's own event
    return db.transaction(() => {
      const prior = q.getEffect.get(key);
      if (prior) return JSON.parse(prior.result) as T;
      const result = fn();
      flush(); // a run enqueued by fn (scenario.run) commits with its effect record
      q.putEffect.run(key, JSON.stringify(result ?? null), clock());
      return result;
    })();
  };

  // ── actions ───────────────────────────────────────────────────────────────────────────────────────────
  interface StepEnv {
    run: RunRow;
    key: string;
    idempotencyKey: string;
    signal: AbortSignal;
    firstStartedAt: number;
    /** The step's input carries a secret (its revealed and redacted forms differ): what it stores is journaled as `***`. */
    sensitive: boolean;
  }

  const sleep = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      // Waits and retry delays come from scenarios (`wait: 600h`): longer than one setTimeout can hold.
      const t = setLongTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        t.cancel();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });

  /** Resolve with the first event matching `pattern` and `condition` after `afterId`. */
  const waitForEvent = (pattern: string, condition: (e: TesseraEvent) => boolean, afterId: number, timeoutMs: number | undefined, signal: AbortSignal) =>
    new Promise<TesseraEvent>((resolve, reject) => {
      const matches = compilePattern(pattern);
      const accept = (e: TesseraEvent) => matches(e.topic) && condition(e);
      // Already journaled while we were down?
      for (let after = afterId, page; (page = journal.query({ topic: pattern, after, limit: 500 })).events.length > 0; after = page.events.at(-1)!.id) {
        const hit = page.events.find(accept);
        if (hit) return resolve(hit);
      }
      let timer: LongTimeout | undefined;
      const sub = bus.subscribe(pattern, (e) => {
        if (!accept(e)) return;
        cleanup();
        resolve(e);
      }, { name: 'scenario-wait' });
      const onAbort = () => {
        cleanup();
        reject(signal.reason);
      };
      const cleanup = () => {
        void sub.dispose();
        timer?.cancel();
        signal.removeEventListener('abort', onAbort);
      };
      if (timeoutMs !== undefined) {
        timer = setLongTimeout(() => {
          cleanup();
          reject(new TesseraError('STEP_TIMEOUT', `No ${pattern} event arrived within ${timeoutMs} ms.`));
        }, timeoutMs);
      }
      signal.addEventListener('abort', onAbort, { once: true });
    });

  const asObject = (v: unknown, what: string): Record<string, unknown> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TesseraError('VALIDATION_FAILED', `${what} must be an object`);
    return v as Record<string, unknown>;
  };

  /** io.say / io.ask `{message, params}`: the catalogue's words in the run's language, as `text` / `prompt`. */
  const worded = (target: Step['target'], input: Record<string, unknown>, run: RunRow): Record<string, unknown> => {
    if (target.kind !== 'action' || (target.action !== 'io.say' && target.action !== 'io.ask') || typeof input['message'] !== 'string') return input;
    const field = target.action === 'io.say' ? 'text' : 'prompt';
    if (!options.messages) return { ...input, [field]: input[field] ?? input['message'] };
    const params = input['params'] !== null && typeof input['params'] === 'object' && !Array.isArray(input['params']) ? (input['params'] as Record<string, unknown>) : {};
    const language = parseJson<Record<string, unknown>>(run.ctx)?.['language'];
    const clearParams = reveal(params) as Record<string, unknown>;
    const text = options.messages.render(input['message'], clearParams, typeof language === 'string' ? language : null);
    return { ...input, [field]: clearParams === params ? text : secret(text) };
  };

  /** `given` is the sealed input (see `seal`): revealed here for the action, kept wrapped in what it journals. */
  async function execute(step: Step, given: Record<string, unknown>, env: StepEnv): Promise<unknown> {
    const { run, idempotencyKey, signal } = env;
    const trace = { trace_id: run.trace_id };
    const target = step.target;
    const sealed = worded(target, given, run);
    const input = expressions.reveal(sealed) as Record<string, unknown>;
    const stubbed = options.stub?.({ run_id: run.run_id, scenario_id: run.scenario_id, step: env.key, target, input });
    if (stubbed) return stubbed.value;
    const runCtx = parseJson<Record<string, unknown>>(run.ctx);
    const user = typeof runCtx['user'] === 'string' ? runCtx['user'] : undefined;
    const meter = (kind: string, amount: number) => {
      options.costs?.check(kind, { ...(user ? { user } : {}), trace_id: run.trace_id, amount });
      return () => options.costs?.record(kind, amount, { ...(user ? { user } : {}), run_id: run.run_id, step: env.key });
    };
    if (target.kind === 'tool') {
      if (!options.tools) throw new TesseraError('PLUGIN_NOT_FOUND', 'No tool plugins are available to this engine.');
      const done = meter('tool_calls', 1);
      try {
        return await options.tools.run(target.tool, input, { idempotency_key: idempotencyKey, trace_id: run.trace_id, now: clock(), signal });
      } finally {
        done(); // a failed call still cost a call
      }
    }
    if (target.kind === 'scenario') return runChild(target.scenario, asObject(input, 'with'), env, true);
    switch (target.action) {
      case 'io.say': {
        const text = String(input['text'] ?? '');
        // Metered inside the once: a step re-run after a crash neither speaks nor counts twice.
        return once(idempotencyKey, () => {
          meter('tts_chars', text.length)();
          // A text that holds a secret or personal value is journaled `***`; the I/O router reveals it (bus contract).
          return bus.publish('io.say', { text: isSecret(sealed['text']) ? sealed['text'] : text, channel: input['channel'] ?? null, run_id: run.run_id, idempotency_key: idempotencyKey }, trace).id;
        });
      }
      case 'bus.publish': {
        const topic = String(input['topic'] ?? '');
        return once(idempotencyKey, () => bus.publish(topic, sealed['payload'] ?? null, trace).id);
      }
      case 'memory.set': {
        const key = String(input['key'] ?? '');
        once(idempotencyKey, () => {
          memory.set(key, input['value'], { ...trace, by: idempotencyKey, sensitive: env.sensitive });
          return true;
        });
        return sealed['value'] ?? null; // a personal value stays wrapped in the step's output and the bag
      }
      case 'scenario.run':
        return runChild(String(input['id'] ?? ''), asObject(input['ctx'] ?? {}, 'ctx'), env, false);
      case 'io.ask': {
        const askId = once(idempotencyKey, () => bus.publish('io.ask', { prompt: isSecret(sealed['prompt']) ? sealed['prompt'] : String(input['prompt'] ?? ''), channel: input['channel'] ?? null, run_id: run.run_id, step: env.key, ...(typeof input['expects'] === 'string' ? { expects: input['expects'] } : {}) }, trace).id);
        const timeout = typeof input['timeout'] === 'number' ? input['timeout'] : undefined;
        const forThisStep = (e: TesseraEvent) => {
          const p = e.payload as { run_id?: unknown; step?: unknown } | null;
          return p?.run_id === run.run_id && p.step === env.key;
        };
        const answer = await waitForEvent('io.answer', forThisStep, askId, timeout, signal);
        return (answer.payload as { text?: unknown }).text ?? null;
      }
      case 'wait': {
        if (typeof input['event'] === 'string') {
          const timeout = typeof input['timeout'] === 'number' ? input['timeout'] : undefined;
          const filter = typeof input['filter'] === 'string' ? input['filter'] : undefined;
          const started = journal.query({ until: env.firstStartedAt, order: 'desc', limit: 1 }).events[0]?.id ?? 0;
          const condition = (ev: TesseraEvent) => filter === undefined || isTruthy(expressions.evaluate(filter, { $: ev }));
          const e = await waitForEvent(input['event'], condition, started, timeout, signal);
          return { id: e.id, topic: e.topic, payload: e.payload };
        }
        const raw = input['duration'] ?? 0;
        const duration = typeof raw === 'string' ? parseDuration(raw) : Number(raw);
        if (!Number.isFinite(duration) || duration < 0) throw new TesseraError('VALIDATION_FAILED', 'wait: duration must be a non-negative number of ms');
        // Durable: the deadline counts from the first start, so a restart does not wait the whole duration again.
        await sleep(env.firstStartedAt + duration - clock(), signal);
        return { waited_ms: duration };
      }
      case 'log':
        logger.info('scenario log', { run_id: run.run_id, message: sealed['message'] ?? null }); // the masker prints secrets `***`
        return null;
    }
  }

  /** A child run with a run id derived from the idempotency key, so a restart finds the same child. */
  async function runChild(scenarioId: string, ctx: Record<string, unknown>, env: StepEnv, awaitIt: boolean): Promise<unknown> {
    const childId = `${env.run.run_id}.${createHash('sha256').update(env.idempotencyKey).digest('hex').slice(0, 12)}`;
    once(env.idempotencyKey, () => engine.run(scenarioId, ctx, { run_id: childId, parent_run_id: env.run.run_id, trace_id: env.run.trace_id, priority: env.run.priority, force: true, dry_run: env.run.dry_run === 1 }));
    if (!awaitIt) return { run_id: childId };
    // While it waits for its child, the parent does not hold a concurrency slot (else a full engine deadlocks).
    const me = running.get(env.run.run_id);
    setCounted(me, false);
    pump();
    try {
      const done = await Promise.race([engine.wait(childId), new Promise<never>((_, reject) => env.signal.addEventListener('abort', () => reject(env.signal.reason), { once: true }))]);
      if (done.state !== 'completed') throw new TesseraError('STEP_FAILED', `Sub-scenario ${scenarioId} (${childId}) ended ${done.state}${done.error ? `: ${done.error.message}` : ''}.`);
      return done.bag;
    } finally {
      setCounted(me, true);
    }
  }

  // ── running a step ────────────────────────────────────────────────────────────────────────────────────
  const backoff = (step: Step, attempt: number) => {
    const { backoff: kind, initial, max_delay, jitter } = step.retries;
    const base = kind === 'fixed' ? initial : initial * 2 ** (attempt - 1);
    const factor = jitter > 0 ? 1 - jitter + 2 * jitter * random() : 1;
    return Math.min(max_delay, Math.round(base * factor));
  };

  const withTimeout = async <T>(fn: (signal: AbortSignal) => Promise<T>, timeoutMs: number | undefined, parent: AbortSignal, what: string): Promise<T> => {
    if (timeoutMs === undefined) return fn(parent);
    const controller = new AbortController();
    const onAbort = () => controller.abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    let timer: LongTimeout | undefined;
    try {
      return await Promise.race([
        fn(controller.signal),
        new Promise<never>((_, reject) => {
          timer = setLongTimeout(() => {
            const err = new TesseraError('STEP_TIMEOUT', `${what} went past its ${timeoutMs} ms timeout.`);
            controller.abort(err);
            reject(err);
          }, timeoutMs);
        }),
      ]);
    } finally {
      timer?.cancel();
      parent.removeEventListener('abort', onAbort);
    }
  };

  /**
   * The run was stopped while step `key` ran: record how the step ended and return what the run should throw.
   * Cancelled → the step is `cancelled`; the run's timeout → `failed` with STEP_TIMEOUT. When the runtime is
   * stopping the step stays `started`, so it runs again, under the same idempotency key, on resume.
   */
  const interrupted = (run: RunRow, key: string, attempt: number, signal: AbortSignal): Error => {
    const reason: Error = signal.reason instanceof Cancelled || isTesseraError(signal.reason) ? (signal.reason as Error) : new Cancelled(String(signal.reason));
    if (disposed) return reason;
    const cancelled = reason instanceof Cancelled;
    const error: ErrorData = cancelled ? { code: 'RUN_CANCELLED', message: reason.message } : toErrorData(reason);
    const state: StepState = cancelled ? 'cancelled' : 'failed';
    const finished = clock();
    defer(() => {
      q.finishStep.run(state, null, JSON.stringify(error), finished, run.run_id, key);
      bus.publish(`scenario.step.${state}`, { run_id: run.run_id, step: key, attempt, error }, { trace_id: run.trace_id });
    });
    return reason;
  };

  /**
   * The scenarios of the runs that started `run`, parent first (review 18 item 9: a sub-scenario may use only what
   * each of them declares too). A parent whose row or scenario is gone here counts as declaring nothing.
   */
  const ancestorsOf = (run: Pick<RunRow, 'parent_run_id'>): Scenario[] => {
    const out: Scenario[] = [];
    for (let id = run.parent_run_id; id !== null; ) {
      if (out.length === MAX_RUN_ANCESTORS) return [...out, CLOSED_SCENARIO];
      const row = q.getRun.get(id);
      out.push((row && scenarios.get(row.scenario_id)) || { ...CLOSED_SCENARIO, id: row?.scenario_id ?? CLOSED_SCENARIO.id });
      id = row?.parent_run_id ?? null;
    }
    return out;
  };

  let ord = 0;
  /** `first`: the run's first step, whose `started` is committed promptly (see FLUSH_MAX_AGE_MS). */
  async function runStep(step: Step, key: string, scope: Record<string, unknown>, run: RunRow, signal: AbortSignal, first = false): Promise<{ output: unknown; skipped: boolean }> {
    const prior = q.getStep.get(run.run_id, key);
    if (prior && (prior.state === 'completed' || prior.state === 'compensated')) return { output: parseJson(prior.output), skipped: false };
    if (prior && prior.state === 'skipped') return { output: null, skipped: true };
    const idempotencyKey = `${run.scenario_id}/${run.run_id}/${key}`;
    const trace = { trace_id: run.trace_id };
    const fence = fences.get(run.run_id);
    // Permissions (issue 18, ./permissions.ts): a step using what its scenario (or a run that started it) does not
    // declare fails before it acts, without retry.
    const owner = scenarios.get(run.scenario_id);
    const ancestors = run.parent_run_id === null ? [] : ancestorsOf(run);
    const refuse = (refused: StepRefusal, attempt: number, input: string | null): never => {
      const error: ErrorData = { code: 'PERMISSION_DENIED', message: refused.message, details: { step: key, permission: refused.permission } };
      defer(() => {
        q.startStep.run({ run_id: run.run_id, step_key: key, name: step.name, attempt, effect: step.effect ? 1 : 0, simulated: 0, input, now: clock(), ord: ++ord });
        q.finishStep.run('failed', null, JSON.stringify(error), clock(), run.run_id, key);
        bus.publish('scenario.step.refused', { run_id: run.run_id, scenario_id: run.scenario_id, step: key, permission: refused.permission, error }, trace);
        bus.publish('scenario.step.failed', { run_id: run.run_id, step: key, attempt, error }, trace);
      }, first);
      throw new TesseraError('STEP_FAILED', `Step ${step.name} was refused: PERMISSION_DENIED: ${refused.message}`, { details: { step: key, permission: refused.permission } });
    };
    const whenFalse = step.when !== undefined && !isTruthy(expressions.evaluate(step.when, scope));
    // A `when` that read an undeclared secret refuses its own step, not the next one.
    const readInWhen = step.when !== undefined && owner ? deniedRead(owner, step.name, scope['secrets'], ancestors) : null;
    if (readInWhen) refuse(readInWhen, prior ? prior.attempt + 1 : 1, null);
    if (whenFalse) {
      defer(() => {
        q.startStep.run({ run_id: run.run_id, step_key: key, name: step.name, attempt: 0, effect: step.effect ? 1 : 0, simulated: 0, input: null, now: clock(), ord: ++ord });
        q.finishStep.run('skipped', null, null, clock(), run.run_id, key);
        bus.publish('scenario.step.skipped', { run_id: run.run_id, step: key, reason: 'when was false' }, trace);
      }, first);
      if (fence) await fence.step(key, { name: step.name, state: 'skipped', attempt: 0, effect: step.effect, output: null, error: null, started_at: clock(), finished_at: clock() });
      return { output: null, skipped: true };
    }
    // Evaluated twice: once with secrets revealed for the action itself, once redacted for every record of it.
    const clear = asObject(expressions.interpolate(step.with, scope, { revealSecrets: true }) ?? {}, `${step.name}.with`);
    let wrapped = expressions.interpolate(step.with, scope) as Record<string, unknown>;
    const personal = personalSeen.get(scope['memory'] as object) ?? new Set<unknown>();
    // memory.set of a personal key (issue 18 point 4): its value is recorded `***`, like a secret.
    if (step.target.kind === 'action' && step.target.action === 'memory.set' && memory.isPersonal(String(clear['key'])) && !isSecret(wrapped['value'])) {
      wrapped = { ...wrapped, value: secret(clear['value']) };
      personal.add(clear['value']);
    }
    const input = seal(clear, wrapped) as Record<string, unknown>;
    const logged = JSON.stringify(expressions.redact(wrapped));
    const original = run.replay_of && step.effect ? q.getStep.get(run.replay_of, key) : undefined;
    const replayed = original?.state === 'completed' || original?.state === 'compensated';
    const simulated = (run.dry_run === 1 && step.effect) || replayed;
    let attempt = prior ? prior.attempt + 1 : 1;
    const refused = replayed || !owner ? null : stepRefusal(owner, step.name, step.target, input, scope['secrets'], ancestors);
    if (refused) refuse(refused, attempt, logged);
    const firstStartedAt = prior?.first_started_at ?? clock();
    for (;;) {
      const started = clock();
      defer(() => {
        q.startStep.run({ run_id: run.run_id, step_key: key, name: step.name, attempt, effect: step.effect ? 1 : 0, simulated: simulated ? 1 : 0, input: logged, now: started, ord: ++ord });
        bus.publish('scenario.step.started', { run_id: run.run_id, step: key, attempt, idempotency_key: idempotencyKey, ...(simulated ? { simulated: true } : {}) }, trace);
      }, first);
      try {
        const env: StepEnv = { run, key, idempotencyKey, signal, firstStartedAt, sensitive: logged !== JSON.stringify(clear) };
        if (fence && step.effect && !simulated) await fence.check(key); // a stale node never acts (issue 18)
        const output = guardSecrets(replayed ? parseJson(original!.output) : simulated ? { simulated: true, would: step.target, with: JSON.parse(logged) as unknown } : await withTimeout((s) => execute(step, input, { ...env, signal: s }), step.timeout, signal, `Step ${step.name}`), scope, personal);
        const outJson = JSON.stringify(output ?? null);
        const finished = clock();
        defer(() => {
          q.finishStep.run('completed', outJson, null, finished, run.run_id, key);
          bus.publish('scenario.step.completed', { run_id: run.run_id, step: key, attempt, duration_ms: finished - started, output: expressions.redact(output ?? null) }, trace);
        });
        if (fence) await fence.step(key, { name: step.name, state: 'completed', attempt, effect: step.effect, output: JSON.parse(outJson) as unknown, error: null, started_at: started, finished_at: finished });
        return { output: output ?? null, skipped: false };
      } catch (err) {
        if (isFenced(err)) throw err;
        // The run itself was stopped (cancel, run timeout, shutdown): no retry, the run decides what it means.
        if (signal.aborted) throw interrupted(run, key, attempt, signal);
        const raw = toErrorData(isTesseraError(err) ? err : new TesseraError('STEP_FAILED', `${step.name}: ${(err as Error).message ?? String(err)}`));
        if (!isTesseraError(err)) raw.message = `${step.name}: ${(err as Error).message ?? String(err)}`;
        // What the step read or stored never reaches the journal, the step row or the run's error in clear.
        const error = guardError(raw, scope, personal);
        if (attempt <= step.retries.max && error.code !== 'QUOTA_EXCEEDED') {
          const delay = backoff(step, attempt);
          defer(() => {
            q.finishStep.run('failed', null, JSON.stringify(error), clock(), run.run_id, key);
            bus.publish('scenario.step.retrying', { run_id: run.run_id, step: key, attempt, next_attempt: attempt + 1, delay_ms: delay, error }, trace);
          });
          try {
            await sleep(delay, signal);
          } catch {
            throw interrupted(run, key, attempt, signal);
          }
          attempt++;
          continue;
        }
        defer(() => {
          q.finishStep.run('failed', null, JSON.stringify(error), clock(), run.run_id, key);
          bus.publish('scenario.step.failed', { run_id: run.run_id, step: key, attempt, error }, trace);
        });
        // The cause is logged as it is (a compensation's failure): kept only when it held nothing to guard.
        throw Object.assign(new TesseraError('STEP_FAILED', `Step ${step.name} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${error.code}: ${error.message}`), error === raw ? { cause: err } : {});
      }
    }
  }

  async function compensate(run: RunRow, scenario: Scenario, scope: Record<string, unknown>, signal: AbortSignal) {
    flush();
    const done = q.steps.all(run.run_id).filter((s) => s.state === 'completed' && s.effect === 1).reverse();
    for (const row of done) {
      const step = scenario.steps.find((s) => s.name === row.name);
      if (!step?.compensate) continue;
      const comp: Step = { ...step, ...step.compensate, name: `${row.step_key}~compensate`, compensate: undefined, foreach: undefined, locks: step.compensate.locks ?? [] } as Step;
      try {
        await runStep(comp, comp.name, { ...scope, output: parseJson(row.output) }, run, signal);
        flush();
        db.transaction(() => {
          q.finishStep.run('compensated', row.output, null, clock(), run.run_id, row.step_key);
          bus.publish('scenario.step.compensated', { run_id: run.run_id, step: row.step_key }, { trace_id: run.trace_id });
        })();
      } catch (err) {
        q.finishStep.run('compensation_failed', row.output, JSON.stringify(toErrorData(err)), clock(), run.run_id, row.step_key);
        logger.error('a compensation failed', { run_id: run.run_id, step: row.step_key, error: err });
      }
    }
  }

  /** Pause before `step` when the run's debugger says so; resolves when `debug(continue|step)` is called. */
  async function breakpoint(run: RunRow, step: Step, signal: AbortSignal): Promise<void> {
    const dbg = debuggers.get(run.run_id);
    if (!dbg || (!dbg.stepping && !dbg.breakpoints.has(step.name))) return;
    if (q.getStep.get(run.run_id, step.name)?.state === 'completed') return; // replaying recorded steps after a restart
    dbg.pausedAt = step.name;
    bus.publish('scenario.run.paused', { run_id: run.run_id, before: step.name }, { trace_id: run.trace_id });
    await new Promise<void>((resolve, reject) => {
      dbg.resume = resolve;
      signal.addEventListener('abort', () => reject(new Cancelled(String((signal.reason as Error)?.message ?? 'cancelled'))), { once: true });
    });
    dbg.pausedAt = null;
    bus.publish('scenario.run.resumed', { run_id: run.run_id, at: step.name }, { trace_id: run.trace_id });
  }

  // ── running a run ─────────────────────────────────────────────────────────────────────────────────────
  /**
   * Run a run to its end. `preloaded` is the row of a run started as it was enqueued (its insert may still be
   * pending). With no locks and no debugger there is no wait before the first step: it starts (and is journaled)
   * synchronously, in the caller's turn.
   */
  async function executeRun(runId: string, scenario: Scenario, signal: AbortSignal, preloaded?: RunRow): Promise<void> {
    let run = preloaded ?? q.getRun.get(runId);
    if (!run || (run.state !== 'queued' && run.state !== 'running')) return;
    // Group-committed like step bookkeeping: a crash before the flush leaves the run `queued`, which resumes the same.
    const resumed = run.state === 'running';
    const startedAt = clock();
    const traceId = run.trace_id;
    defer(() => {
      q.startRun.run(startedAt, runId);
      bus.publish('scenario.run.started', { run_id: runId, scenario_id: scenario.id, resumed }, { trace_id: traceId });
    });
    run = { ...run, state: 'running', started_at: run.started_at ?? startedAt };
    const ctx = parseJson<Record<string, unknown>>(run.ctx);
    const bag: Record<string, unknown> = {};
    const steps: Record<string, unknown> = {};
    const scope: Record<string, unknown> = { ctx, bag, steps, run: { id: runId, scenario: scenario.id, trace_id: run.trace_id } };
    let releaseRunLocks: (() => void) | undefined;
    const runTimer = scenario.timeout === undefined ? undefined : setLongTimeout(() => running.get(runId)?.controller.abort(new TesseraError('STEP_TIMEOUT', `The run went past its ${scenario.timeout} ms timeout.`)), scenario.timeout - (clock() - (run.started_at ?? clock())));
    try {
      // Secrets are decrypted per run, wrapped so that nothing logged ever shows them.
      if (options.secrets) scope['secrets'] = scopeSecrets(scenario, options.secrets.scope(), run.parent_run_id === null ? [] : ancestorsOf(run));
      // Memory as it is at each step; personal values come wrapped, and are remembered to guard outputs.
      const personal = new Set<unknown>();
      scope['memory'] = memory.scope({ onPersonal: (v) => personal.add(v) });
      personalSeen.set(scope['memory'] as object, personal);
      // Waits only where there is something to wait for: a run with no locks starts its first step in this turn.
      if (scenario.locks.length > 0) {
        releaseRunLocks = await locks.acquire(scenario.locks, { signal, owner: runId, priority: run.priority });
      }
      for (const step of scenario.steps) {
        if (signal.aborted) throw new Cancelled(String((signal.reason as Error)?.message ?? 'cancelled'));
        if (debuggers.has(runId)) await breakpoint(run, step, signal);
        let release: () => void = () => undefined;
        if (step.locks.length > 0) {
          release = await locks.acquire(step.locks, { signal, owner: runId, priority: run.priority });
        }
        try {
          if (step.foreach !== undefined) {
            const list = expressions.evaluate(step.foreach, scope);
            if (!Array.isArray(list)) throw new TesseraError('STEP_FAILED', `Step ${step.name}: foreach must yield a list.`);
            const outputs: unknown[] = [];
            for (let i = 0; i < list.length; i++) {
              const r = await runStep(step, `${step.name}#${i}`, { ...scope, [step.as ?? 'item']: list[i] }, run, signal, step === scenario.steps[0] && i === 0);
              outputs.push(r.output);
            }
            steps[step.name] = outputs;
            if (step.output) bag[step.output] = outputs;
          } else {
            const r = await runStep(step, step.name, scope, run, signal, step === scenario.steps[0]);
            steps[step.name] = r.output;
            if (step.output && !r.skipped) bag[step.output] = r.output;
          }
        } finally {
          release();
        }
        const bagJson = JSON.stringify(expressions.redact(bag));
        const lastKey = step.foreach !== undefined ? null : step.name;
        defer(() => {
          q.setBag.run(bagJson, runId);
          if (lastKey) q.setBagAfter.run(bagJson, runId, lastKey);
        });
      }
      endRun(runId, 'completed', null, run.trace_id, { scenario_id: scenario.id });
    } catch (err) {
      // Another delivery claimed the run (issue 18): stop here, no compensation, no final state (its owner ends it).
      if (isFenced(err)) {
        bus.publish('cluster.run.fenced', { run_id: runId, scenario_id: scenario.id }, { trace_id: run.trace_id });
        return;
      }
      if (err instanceof Cancelled) {
        if (disposed) return; // shutting down: the run stays resumable
        endRun(runId, 'cancelled', { code: 'RUN_CANCELLED', message: err instanceof Cancelled ? err.reason : 'cancelled' }, run.trace_id);
        return;
      }
      const cause = guardError(toErrorData(err), scope, personalSeen.get(scope['memory'] as object));
      await compensate(run, scenario, scope, new AbortController().signal);
      endRun(runId, 'failed', cause, run.trace_id, { scenario_id: scenario.id });
    } finally {
      runTimer?.cancel();
      releaseRunLocks?.();
    }
  }

  // ── distribution over nodes (issue 18) ────────────────────────────────────────────────────────────────
  let distribution: RunDistribution | undefined;
  /** The fence of each delivered run executing here. */
  const fences = new Map<string, RunFence>();
  /** Outcomes of delivered runs that ended here, not yet committed locally (see endRun). */
  const heldOutcomes = new Map<string, RemoteOutcome>();
  const upsertRemote = db.prepare(`INSERT INTO scenario_runs (run_id, scenario_id, state, priority, ctx, bag, error, trace_id, dry_run, seq, created_at, started_at, finished_at, dispatched)
    VALUES (@run_id, @scenario_id, @state, @priority, @ctx, @bag, @error, @trace_id, 0, @seq, @created_at, @started_at, @finished_at, 1)
    ON CONFLICT (run_id) DO UPDATE SET state = @state, bag = @bag, error = @error, started_at = @started_at, finished_at = @finished_at, dispatched = 1`);
  const upsertRemoteStep = db.prepare(`INSERT INTO scenario_steps (run_id, step_key, name, state, attempt, effect, simulated, output, error, first_started_at, started_at, finished_at, ord)
    VALUES (@run_id, @step_key, @name, @state, @attempt, @effect, 0, @output, @error, @started_at, @started_at, @finished_at, @ord)
    ON CONFLICT (run_id, step_key) DO UPDATE SET state = @state, attempt = @attempt, output = @output, error = @error, finished_at = @finished_at`);
  const forgetSteps = db.prepare('DELETE FROM scenario_steps WHERE run_id = ?');
  const forgetRun = db.prepare('DELETE FROM scenario_runs WHERE run_id = ? AND dispatched = 1');
  const remote: RemoteRuns = {
    attach(d) {
      distribution = d;
    },
    running: (runId) => running.has(runId),
    fenced: (runId) => fences.has(runId),
    forget(runId) {
      if (running.has(runId) || disposed) return false;
      flush();
      const row = q.getRun.get(runId);
      if (!row || row.dispatched !== 1 || row.state === 'queued' || row.state === 'running') return false;
      db.transaction(() => {
        forgetSteps.run(runId);
        forgetRun.run(runId);
      })();
      return true;
    },
    ctxProblem(scenarioId, ctx) {
      const validate = ctxValidators.get(scenarioId);
      return validate && !validate(ctx) ? `ctx does not match ${scenarioId}'s ctx_schema: ${ajv.errorsText(validate.errors, { dataVar: 'ctx' })}` : undefined;
    },
    apply(r, applyOptions = {}) {
      if (running.has(r.run_id) || disposed) return;
      flush();
      const before = q.getRun.get(r.run_id);
      if (before && before.dispatched === 0) {
        logger.warn('a cluster record for a run that never left this node was ignored', { run_id: r.run_id });
        return;
      }
      const final = r.state !== 'queued' && r.state !== 'running';
      db.transaction(() => {
        upsertRemote.run({ run_id: r.run_id, scenario_id: r.scenario_id, state: r.state, priority: r.priority, ctx: JSON.stringify(r.ctx), bag: JSON.stringify(r.bag), error: r.error ? JSON.stringify(r.error) : null, trace_id: r.trace_id, seq: before?.seq ?? ++seq, created_at: r.created_at, started_at: r.started_at, finished_at: r.finished_at });
        for (const [key, st] of Object.entries(r.steps)) {
          upsertRemoteStep.run({ run_id: r.run_id, step_key: key, name: st.name, state: st.state, attempt: st.attempt, effect: st.effect ? 1 : 0, output: JSON.stringify(st.output ?? null), error: st.error ? JSON.stringify(st.error) : null, started_at: st.started_at, finished_at: st.finished_at, ord: ++ord });
        }
        if (final && before?.state !== r.state && applyOptions.announce) bus.publish(`scenario.run.${r.state}`, { run_id: r.run_id, scenario_id: r.scenario_id, remote: true, ...(r.error ? { error: r.error } : {}) }, { trace_id: r.trace_id });
      })();
      if (!final) return;
      const list = waiters.get(r.run_id);
      waiters.delete(r.run_id);
      const record = toRecord(q.getRun.get(r.run_id)!);
      for (const w of list ?? []) w(record);
    },
    async execute(runId, fence) {
      flush();
      const row = q.getRun.get(runId);
      const scenario = row ? scenarios.get(row.scenario_id) : undefined;
      if (!row || !scenario) throw new TesseraError('RUN_NOT_FOUND', `No run ${runId} of a known scenario here.`);
      if (running.has(runId)) throw new TesseraError('VALIDATION_FAILED', `Run ${runId} already runs here.`);
      if (row.state !== 'queued' && row.state !== 'running') {
        const done = toRecord(row); // ended here already: the record only needs to say so
        return { state: done.state, error: done.error, finished_at: row.finished_at ?? clock(), commit: () => undefined };
      }
      fences.set(runId, fence);
      const controller = new AbortController();
      const entry: ExecutionUnit = { run_id: runId, controller, scenario, counted: false };
      running.set(runId, entry);
      setCounted(entry, true);
      try {
        await executeRun(runId, scenario, controller.signal, row);
      } finally {
        fences.delete(runId);
        setCounted(entry, false);
        running.delete(runId);
        pump();
      }
      const outcome = heldOutcomes.get(runId);
      heldOutcomes.delete(runId);
      if (!commitPendingOk()) return null;
      return outcome ?? null;
    },
  };
  /** Commits what is pending; false when the store refused (the caller must not report a final state). */
  const commitPendingOk = () => commitPending(true) === undefined;

  const engine: ScenarioEngine = {
    remote,
    register(scenario) {
      scenarios.set(scenario.id, scenario);
      if (scenario.pii) memory.markPersonal(scenario.pii); // issue 18 point 4: marks outlive the scenario
      if (scenario.ctx_schema) ctxValidators.set(scenario.id, ajv.compile(scenario.ctx_schema));
      else ctxValidators.delete(scenario.id);
      pump();
    },
    scenario: (id) => scenarios.get(id),
    scenarios: () => [...scenarios.values()],
    run(scenarioId, ctx = {}, opts = {}) {
      if (disposed) throw new TesseraError('NOT_READY', 'The scenario engine is stopping.');
      const scenario = scenarios.get(scenarioId);
      if (!scenario) throw new TesseraError('SCENARIO_NOT_FOUND', `No scenario "${scenarioId}" is registered (known: ${[...scenarios.keys()].sort().join(', ') || 'none'}).`);
      if (opts.run_id !== undefined) {
        if (pendingRunIds.has(opts.run_id)) return opts.run_id;
        const existing = q.getRun.get(opts.run_id);
        if (existing) return existing.run_id;
      }
      const validate = ctxValidators.get(scenarioId);
      if (validate && !validate(ctx)) throw new TesseraError('VALIDATION_FAILED', `ctx does not match ${scenarioId}'s ctx_schema: ${ajv.errorsText(validate.errors, { dataVar: 'ctx' })}`);
      if (!opts.force && queue.length >= limits.queueMax) throw new TesseraError('QUEUE_FULL', `${queue.length} runs are queued (the limit is ${limits.queueMax}); retry later or pass force.`);
      const runId = opts.run_id ?? `run_${clock().toString(36)}_${createHash('sha256').update(`${scenarioId}:${seq + 1}:${random()}`).digest('hex').slice(0, 10)}`;
      const priority = opts.priority ?? scenario.priority;
      const traceId = opts.trace_id ?? createHash('sha256').update(runId).digest('hex').slice(0, 32);
      const now = clock();
      const mySeq = ++seq;
      const ctxJson = JSON.stringify(ctx);
      pendingRunIds.add(runId);
      const dispatch = distribution?.accepts(scenario, opts) === true ? distribution : undefined;
      const insert = () => {
        q.insertRun.run(runId, scenarioId, 'queued', priority, ctxJson, traceId, opts.parent_run_id ?? null, opts.dry_run ? 1 : 0, mySeq, now, opts.replay_of ?? null, dispatch ? 1 : 0);
        dispatch?.dispatched({ run_id: runId, scenario_id: scenarioId, ctx, priority, trace_id: traceId, created_at: now });
        bus.publish('scenario.run.queued', { run_id: runId, scenario_id: scenarioId, priority, ...(opts.dry_run ? { dry_run: true } : {}), ...(opts.parent_run_id ? { parent_run_id: opts.parent_run_id } : {}) }, { trace_id: traceId });
        pendingRunIds.delete(runId);
      };
      runInserts.set(insert, runId);
      if (!db.inTransaction && !flushing) {
        // Outside any transaction the caller hands the id out next: the row is committed first (with what else is
        // pending), or the run is withdrawn and the caller hears that nothing was written.
        pendingWrites.push(insert);
        const failure = commitPending(true);
        if (failure !== undefined) {
          pendingWrites = pendingWrites.filter((fn) => fn !== insert);
          pendingRunIds.delete(runId);
          throw toStoreError(failure);
        }
      } else {
        defer(insert);
      }
      if (dispatch) return runId; // it runs wherever the cluster delivers it
      if (opts.breakpoints && opts.breakpoints.length > 0) debuggers.set(runId, { breakpoints: new Set(opts.breakpoints), stepping: false, pausedAt: null });
      const item: Queued = { run_id: runId, scenario_id: scenarioId, priority, enqueued_at: now, seq: mySeq };
      // Nothing queued ahead of it and room to run: start it now, in the caller's turn, rather than behind the
      // later steps of runs already going (FIFO holds: the queue is empty). Its row was just committed (above), so
      // it is handed over as written; its first step's `started` commits within FLUSH_MAX_AGE_MS.
      // Not inside a transaction (a parent's effect record, a flush delivering events): a start there would commit
      // or roll back with work that is not its own; such runs go through the queue, a microtask later.
      if (queue.length === 0 && !pumping && !db.inTransaction && startDepth < MAX_SYNC_START_DEPTH && fits(scenario)) {
        const row: RunRow = { run_id: runId, scenario_id: scenarioId, state: 'queued', priority, ctx: ctxJson, bag: '{}', error: null, trace_id: traceId, parent_run_id: opts.parent_run_id ?? null, dry_run: opts.dry_run ? 1 : 0, seq: mySeq, created_at: now, started_at: null, finished_at: null, replay_of: opts.replay_of ?? null, dispatched: 0 };
        startDepth++;
        try {
          startRun(item, scenario, row);
        } finally {
          startDepth--;
        }
        return runId;
      }
      queue.push(item);
      queueMicrotask(pump);
      return runId;
    },
    debug(runId, action, breakpoints) {
      flush();
      const row = q.getRun.get(runId);
      if (!row) throw new TesseraError('RUN_NOT_FOUND', `No run ${runId}.`);
      if (row.state !== 'queued' && row.state !== 'running') throw new TesseraError('VALIDATION_FAILED', `Run ${runId} is ${row.state}; the debugger works on queued or running runs (replay it to run it again).`);
      let dbg = debuggers.get(runId);
      if (!dbg) {
        dbg = { breakpoints: new Set(), stepping: false, pausedAt: null };
        debuggers.set(runId, dbg);
      }
      if (action === 'set') dbg.breakpoints = new Set(breakpoints ?? []);
      else {
        dbg.stepping = action === 'step';
        const resume = dbg.resume;
        dbg.resume = undefined;
        resume?.();
      }
      return { paused_at: dbg.pausedAt, breakpoints: [...dbg.breakpoints] };
    },
    replay(runId) {
      flush();
      const row = q.getRun.get(runId);
      if (!row) throw new TesseraError('RUN_NOT_FOUND', `No run ${runId}.`);
      if (row.state === 'queued' || row.state === 'running') throw new TesseraError('VALIDATION_FAILED', `Run ${runId} is still ${row.state}; replay a finished run.`);
      return engine.run(row.scenario_id, parseJson(row.ctx), { replay_of: runId, priority: row.priority, force: true });
    },
    diff(replayRunId) {
      flush();
      const row = q.getRun.get(replayRunId);
      if (!row) throw new TesseraError('RUN_NOT_FOUND', `No run ${replayRunId}.`);
      if (!row.replay_of) throw new TesseraError('VALIDATION_FAILED', `Run ${replayRunId} is not a replay.`);
      const before = new Map(q.steps.all(row.replay_of).map((r) => [r.step_key, r]));
      const after = new Map(q.steps.all(replayRunId).map((r) => [r.step_key, r]));
      const out: ReplayDifference[] = [];
      for (const key of new Set([...before.keys(), ...after.keys()])) {
        const a = before.get(key);
        const b = after.get(key);
        if (!a || !b) {
          out.push({ step_key: key, field: 'presence', original: a ? a.state : null, replayed: b ? b.state : null });
          continue;
        }
        if ((a.input ?? null) !== (b.input ?? null)) out.push({ step_key: key, field: 'input', original: parseJson(a.input), replayed: parseJson(b.input) });
        if ((a.output ?? null) !== (b.output ?? null)) out.push({ step_key: key, field: 'output', original: parseJson(a.output), replayed: parseJson(b.output) });
      }
      return out;
    },
    status(runId) {
      flush();
      const row = q.getRun.get(runId);
      if (!row) throw new TesseraError('RUN_NOT_FOUND', `No run ${runId}.`);
      return { ...toRecord(row), steps: q.steps.all(runId).map(toStep) };
    },
    runs(query = {}) {
      flush();
      const where: string[] = [];
      const params: unknown[] = [];
      if (query.scenario_id) {
        where.push('scenario_id = ?');
        params.push(query.scenario_id);
      }
      if (query.state) {
        where.push('state = ?');
        params.push(query.state);
      }
      const sql = `SELECT * FROM scenario_runs${where.length ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT ?`;
      return (db.prepare(sql).all(...params, Math.min(query.limit ?? 50, 1000)) as RunRow[]).map(toRecord);
    },
    cancel(runId, reason = 'cancelled by request') {
      flush();
      const row = q.getRun.get(runId);
      if (!row) throw new TesseraError('RUN_NOT_FOUND', `No run ${runId}.`);
      if (row.state !== 'queued' && row.state !== 'running') return false;
      const i = queue.findIndex((x) => x.run_id === runId);
      if (i >= 0) {
        queue.splice(i, 1);
        finishRun(runId, 'cancelled', { code: 'RUN_CANCELLED', message: reason }, row.trace_id);
        return true;
      }
      const unit = running.get(runId);
      if (unit) unit.controller.abort(new Cancelled(reason));
      // A delivered run executing here: also through the record, so that it holds should this node's claim be stale.
      if ((unit && fences.has(runId)) || (!unit && row.dispatched === 1)) distribution?.cancel(runId, reason);
      return true;
    },
    wait(runId, timeoutMs) {
      flush();
      const row = q.getRun.get(runId);
      if (!row) return Promise.reject(new TesseraError('RUN_NOT_FOUND', `No run ${runId}.`));
      if (row.state !== 'queued' && row.state !== 'running') return Promise.resolve(toRecord(row));
      return new Promise((resolve, reject) => {
        const list = waiters.get(runId) ?? [];
        let timer: LongTimeout | undefined;
        const done = (r: RunRecord) => {
          timer?.cancel();
          resolve(r);
        };
        list.push(done);
        waiters.set(runId, list);
        if (timeoutMs !== undefined) {
          timer = setLongTimeout(() => {
            waiters.set(runId, (waiters.get(runId) ?? []).filter((w) => w !== done));
            reject(new TesseraError('STEP_TIMEOUT', `Run ${runId} did not finish within ${timeoutMs} ms.`));
          }, timeoutMs);
        }
      });
    },
    resume() {
      let n = 0;
      const queued = new Set(queue.map((x) => x.run_id));
      for (const row of q.unfinished.all()) {
        if (running.has(row.run_id) || queued.has(row.run_id)) continue;
        if (!scenarios.has(row.scenario_id)) {
          logger.warn('cannot resume a run of an unknown scenario', { run_id: row.run_id, scenario_id: row.scenario_id });
          continue;
        }
        queue.push({ run_id: row.run_id, scenario_id: row.scenario_id, priority: row.priority, enqueued_at: row.created_at, seq: row.seq });
        n++;
      }
      if (n > 0) bus.publish('scenario.resumed', { runs: n });
      pump();
      return n;
    },
    flush,
    get stats() {
      return { queued: queue.length, running: running.size };
    },
    async dispose() {
      disposed = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      // Last chances for writes a failing store held back: tried even while it was failing.
      commitPending(true);
      for (const r of running.values()) r.controller.abort(new Cancelled('runtime stopping'));
      await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, 5000).unref())]);
      commitPending(true);
    },
  };
  return engine;
}

