/**
 * What starts scenarios without a person: schedules (seed 001 §4: cron and one-shot `at`, in SQLite,
 * surviving restarts, with a missed-fire policy) and bus triggers (§5: a topic pattern and a condition over
 * the event, persisted).
 *
 * Exactly-once starts: each fire enqueues a run whose id is derived from the schedule and the fire time (or
 * the trigger and the event id), so a crash between "enqueued" and "recorded" cannot start it twice. Triggers
 * remember the last event they saw and catch up from the journal at start, so an event journaled just before
 * a crash still starts its run.
 *
 * Triggers cannot feed on themselves (issue 13 point 11: a trigger on `**` started 523 runs in 5 s, for ever):
 * - The runtime's own bookkeeping, `scenario.*` and `trigger.*` events, never starts a trigger; a pattern that
 *   can match nothing else (its first segment is `scenario` or `trigger`) is refused at creation.
 * - A run a trigger starts gets the trace id of its event with `:<trigger_id>` appended (triggerTrace below).
 *   Everything that run causes carries that trace (its steps' events, sub-scenarios, plugin events, messages),
 *   so an event whose trace names a trigger can never start that trigger again: A→B→A stops at the second A
 *   (journaled once per trace as `trigger.loop_blocked`). Chains are at most MAX_TRIGGER_CHAIN triggers long.
 * - Each trigger has a token bucket (`rate`: per_second, burst), which also bounds loops through causes that
 *   do not carry the trace (a worker's own events, an outside system echoing a webhook back). An event over it
 *   starts nothing: it is counted in the trigger's `throttled` and the first of each burst is journaled as
 *   `trigger.throttled`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { TesseraEvent } from '../../common/api.js';
import { TesseraError } from '../../common/errors.js';
import { isTruthy } from '../../common/expr.js';
import { compilePattern, patternProblem } from '../../common/topics.js';
import type { Bus } from '../bus/index.js';
import type { Journal } from '../journal/index.js';
import type { Disposable } from '../lifecycle/index.js';
import type { Logger } from '../log/index.js';
import type { Migration, Store } from '../store/index.js';
import { createFailureLog, isStoreFailure, writeLockFree } from '../store/failures.js';
import { checkTimeZone, parseAt, parseCron } from './cron.js';
import type { Expressions, ScenarioEngine } from './engine.js';

export type MissedPolicy = 'run_once' | 'skip';

export interface ScheduleInput {
  scenario_id: string;
  cron?: string;
  at?: string;
  tz?: string;
  ctx?: Record<string, unknown>;
  /** After the device was off: start one run for the missed fires (`run_once`, default) or none (`skip`). */
  missed?: MissedPolicy;
}

export interface Schedule extends Required<Pick<ScheduleInput, 'scenario_id' | 'tz' | 'missed'>> {
  job_id: string;
  cron: string | null;
  at: string | null;
  ctx: Record<string, unknown>;
  next_fire_at: string | null;
  last_fire_at: string | null;
  enabled: boolean;
}

/** How many runs a trigger may start: `per_second` on average, up to `burst` at once (a token bucket). */
export interface TriggerRate {
  per_second: number;
  burst: number;
}

/** Used for triggers created without a `rate` (and by the runtime unless it is given another default). */
export const DEFAULT_TRIGGER_RATE: TriggerRate = { per_second: 10, burst: 30 };
/** The most triggers one chain of causes may pass through (trigger → run → event → trigger …). */
export const MAX_TRIGGER_CHAIN = 7;

export interface TriggerInput {
  /** Topic pattern (`nlp.intent.*`). */
  pattern: string;
  /** A condition over the event as `$`: `$.payload.city == "Berlin"`. */
  filter?: string;
  scenario_id: string;
  ctx?: Record<string, unknown>;
  /** Default: the runtime's (DEFAULT_TRIGGER_RATE unless configured). */
  rate?: TriggerRate;
}

export interface Trigger extends TriggerInput {
  trigger_id: string;
  filter: string | undefined;
  ctx: Record<string, unknown>;
  /** The rate in force: the trigger's own, or the runtime's default. */
  rate: TriggerRate;
  last_event_id: number;
  fired: number;
  /** Matching events that started nothing because the trigger was over its rate. */
  throttled: number;
}

export interface Automation extends Disposable {
  createSchedule(input: ScheduleInput): Schedule;
  deleteSchedule(jobId: string): boolean;
  schedules(): Schedule[];
  createTrigger(input: TriggerInput): Trigger;
  deleteTrigger(triggerId: string): boolean;
  triggers(): Trigger[];
  /** Apply missed-fire policies, catch triggers up from the journal, arm the timer. Call once after scenarios are registered. */
  start(): void;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'schedules and triggers',
    up(db) {
      db.exec(`
        CREATE TABLE schedules (
          job_id       TEXT PRIMARY KEY,
          scenario_id  TEXT NOT NULL,
          cron         TEXT,
          at           TEXT,
          tz           TEXT NOT NULL,
          ctx          TEXT NOT NULL,
          missed       TEXT NOT NULL,
          next_fire_at INTEGER,
          last_fire_at INTEGER,
          enabled      INTEGER NOT NULL DEFAULT 1,
          created_at   INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE triggers (
          trigger_id    TEXT PRIMARY KEY,
          pattern       TEXT NOT NULL,
          filter        TEXT,
          scenario_id   TEXT NOT NULL,
          ctx           TEXT NOT NULL,
          last_event_id INTEGER NOT NULL,
          fired         INTEGER NOT NULL DEFAULT 0,
          created_at    INTEGER NOT NULL
        ) STRICT;
      `);
    },
  },
  {
    version: 2,
    name: 'trigger rate limits',
    up(db) {
      db.exec(`
        ALTER TABLE triggers ADD COLUMN rate_per_s REAL;
        ALTER TABLE triggers ADD COLUMN burst      INTEGER;
        ALTER TABLE triggers ADD COLUMN throttled  INTEGER NOT NULL DEFAULT 0;
      `);
    },
  },
];

const TRIGGER_ID = /^trg_[0-9a-f]{8}$/;
const MAX_TRACE_ID = 128;

/** The triggers that caused an event, oldest first: the `:trg_…` segments that end its trace id. */
export function triggerLineage(traceId: string): string[] {
  const parts = traceId.split(':');
  let i = parts.length;
  while (i > 1 && TRIGGER_ID.test(parts[i - 1]!)) i--;
  return parts.slice(i);
}

/**
 * The trace id of a run trigger `triggerId` starts for an event of trace `traceId`: that trace with
 * `:<triggerId>` appended, so the run and everything it causes name the trigger. When the result would be
 * longer than a trace id may be, the part before the triggers is replaced by a hash of it (the same every
 * time, so a run started again after a crash gets the same trace). Null when the chain would pass through
 * more than MAX_TRIGGER_CHAIN triggers.
 */
export function triggerTrace(traceId: string, triggerId: string): string | null {
  const chain = [...triggerLineage(traceId), triggerId];
  if (chain.length > MAX_TRIGGER_CHAIN) return null;
  const root = traceId.split(':').slice(0, traceId.split(':').length - (chain.length - 1)).join(':');
  const tail = chain.map((id) => `:${id}`).join('');
  if (root.length + tail.length <= MAX_TRACE_ID) return root + tail;
  return createHash('sha256').update(root).digest('hex').slice(0, 32) + tail;
}

/** The runtime's own bookkeeping topics: they never start a trigger. */
const isBookkeeping = (topic: string): boolean => {
  const first = topic.split('.', 1)[0];
  return first === 'scenario' || first === 'trigger';
};

interface ScheduleRow {
  job_id: string;
  scenario_id: string;
  cron: string | null;
  at: string | null;
  tz: string;
  ctx: string;
  missed: MissedPolicy;
  next_fire_at: number | null;
  last_fire_at: number | null;
  enabled: number;
}

interface TriggerRow {
  trigger_id: string;
  pattern: string;
  filter: string | null;
  scenario_id: string;
  ctx: string;
  last_event_id: number;
  fired: number;
  rate_per_s: number | null;
  burst: number | null;
  throttled: number;
}

/** A trigger's rate bucket and what has been journaled of its current burst; in memory, full at start. */
interface TriggerState {
  tokens: number;
  at: number;
  /** Over its rate since the last run it started: `trigger.throttled` was journaled for this burst. */
  throttling: boolean;
  /** The trace of the last `trigger.loop_blocked` journaled: one per trace, not one per event. */
  loopReported: string | undefined;
}

/** Timers longer than this are re-armed in steps (setTimeout's limit is ~24.8 days). */
const MAX_TIMER_MS = 60_000;
/** After a tick failed (the store locked or full): when to try again. */
const TICK_RETRY_MS = 1_000;

export function createAutomation(options: { store: Store; bus: Bus; journal: Journal; engine: ScenarioEngine; expressions: Expressions; logger: Logger; clock?: () => number; triggerRate?: TriggerRate }): Automation {
  const { store, bus, journal, engine, expressions, logger } = options;
  const clock = options.clock ?? Date.now;
  const defaultRate = options.triggerRate ?? DEFAULT_TRIGGER_RATE;
  checkRate(defaultRate);
  store.migrate('automation', MIGRATIONS);
  const db = store.db;
  const q = {
    insertSchedule: db.prepare('INSERT INTO schedules (job_id, scenario_id, cron, at, tz, ctx, missed, next_fire_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    schedules: db.prepare<[], ScheduleRow>('SELECT * FROM schedules ORDER BY created_at'),
    due: db.prepare<[number], ScheduleRow>('SELECT * FROM schedules WHERE enabled = 1 AND next_fire_at IS NOT NULL AND next_fire_at <= ? ORDER BY next_fire_at'),
    earliest: db.prepare<[], { t: number | null }>('SELECT MIN(next_fire_at) AS t FROM schedules WHERE enabled = 1'),
    fired: db.prepare('UPDATE schedules SET last_fire_at = ?, next_fire_at = ?, enabled = ? WHERE job_id = ?'),
    deleteSchedule: db.prepare('DELETE FROM schedules WHERE job_id = ?'),
    insertTrigger: db.prepare('INSERT INTO triggers (trigger_id, pattern, filter, scenario_id, ctx, last_event_id, created_at, rate_per_s, burst) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    triggers: db.prepare<[], TriggerRow>('SELECT * FROM triggers ORDER BY created_at'),
    triggerSeen: db.prepare('UPDATE triggers SET last_event_id = MAX(last_event_id, ?), fired = fired + ?, throttled = throttled + ? WHERE trigger_id = ?'),
    deleteTrigger: db.prepare('DELETE FROM triggers WHERE trigger_id = ?'),
  };

  const toSchedule = (r: ScheduleRow): Schedule => ({
    job_id: r.job_id,
    scenario_id: r.scenario_id,
    cron: r.cron,
    at: r.at,
    tz: r.tz,
    ctx: JSON.parse(r.ctx) as Record<string, unknown>,
    missed: r.missed,
    next_fire_at: r.next_fire_at === null ? null : new Date(r.next_fire_at).toISOString(),
    last_fire_at: r.last_fire_at === null ? null : new Date(r.last_fire_at).toISOString(),
    enabled: r.enabled === 1,
  });
  const rateOf = (r: TriggerRow): TriggerRate => (r.rate_per_s !== null && r.burst !== null ? { per_second: r.rate_per_s, burst: r.burst } : defaultRate);
  const toTrigger = (r: TriggerRow): Trigger => ({ trigger_id: r.trigger_id, pattern: r.pattern, filter: r.filter ?? undefined, scenario_id: r.scenario_id, ctx: JSON.parse(r.ctx) as Record<string, unknown>, rate: rateOf(r), last_event_id: r.last_event_id, fired: r.fired, throttled: r.throttled });

  const nextFire = (r: Pick<ScheduleRow, 'cron' | 'tz'>, after: number) => (r.cron ? parseCron(r.cron).next(after, r.tz) ?? null : null);

  // ── schedules ─────────────────────────────────────────────────────────────────────────────────────────
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let disposed = false;

  const fire = (r: ScheduleRow, fireAt: number, reason: 'due' | 'missed') => {
    const runId = `sched_${r.job_id}_${fireAt}`;
    db.transaction(() => {
      try {
        engine.run(r.scenario_id, { ...(JSON.parse(r.ctx) as Record<string, unknown>), schedule: { job_id: r.job_id, fire_at: new Date(fireAt).toISOString(), reason } }, { run_id: runId, force: true });
        engine.flush(); // the run commits with the fire record, or neither does
      } catch (err) {
        bus.publish('schedule.failed', { job_id: r.job_id, error: (err as Error).message });
        logger.warn('a schedule could not start its scenario', { job_id: r.job_id, error: err });
      }
      const next = nextFire(r, Math.max(fireAt, clock()));
      q.fired.run(fireAt, next, r.cron && next !== null ? 1 : 0, r.job_id);
      bus.publish('schedule.fired', { job_id: r.job_id, scenario_id: r.scenario_id, run_id: runId, fire_at: new Date(fireAt).toISOString(), reason, next_fire_at: next === null ? null : new Date(next).toISOString() });
    })();
  };

  const tickFailures = createFailureLog(logger, 'the schedule tick');
  let tickFailing = false;
  const retryTick = () => {
    if (disposed) return;
    timer = setTimeout(tick, TICK_RETRY_MS);
    timer.unref?.();
  };
  const tick = () => {
    timer = undefined;
    if (disposed) return;
    try {
      // After a failure, a round is skipped while another process still holds the lock (no busy wait).
      if (tickFailing && !writeLockFree(db)) return retryTick();
      const now = clock();
      for (const r of q.due.all(now)) fire(r, r.next_fire_at!, 'due');
      arm();
      tickFailing = false;
      tickFailures.succeeded();
    } catch (err) {
      // Runs from a timer, where a throw would end the process (issue 13: another process holding the write lock
      // for 5 s did). A failed fire rolled back whole, so the retry fires it again under the same run id.
      tickFailing = true;
      tickFailures.failed(err);
      retryTick();
    }
  };

  const arm = () => {
    if (disposed || !started) return;
    if (timer) clearTimeout(timer);
    const t = q.earliest.get()?.t;
    if (t === null || t === undefined) return;
    timer = setTimeout(tick, Math.min(MAX_TIMER_MS, Math.max(0, t - clock())));
    timer.unref?.();
  };

  // ── triggers ──────────────────────────────────────────────────────────────────────────────────────────
  const subscriptions = new Map<string, Disposable>();
  const states = new Map<string, TriggerState>();
  const stateOf = (t: TriggerRow): TriggerState => {
    let s = states.get(t.trigger_id);
    if (!s) states.set(t.trigger_id, (s = { tokens: rateOf(t).burst, at: clock(), throttling: false, loopReported: undefined }));
    return s;
  };
  /** Takes one start from the trigger's bucket, refilled at `per_second` up to `burst`; false when it is empty. */
  const takeToken = (t: TriggerRow, s: TriggerState): boolean => {
    const rate = rateOf(t);
    const now = clock();
    s.tokens = Math.min(rate.burst, s.tokens + (Math.max(0, now - s.at) * rate.per_second) / 1000);
    s.at = now;
    if (s.tokens < 1) return false;
    s.tokens -= 1;
    return true;
  };

  const consider = (t: TriggerRow, e: TesseraEvent) => {
    if (e.id <= t.last_event_id) return;
    let match = !isBookkeeping(e.topic);
    if (match && t.filter) {
      try {
        match = isTruthy(expressions.evaluate(t.filter, { $: e }));
      } catch (err) {
        match = false;
        logger.warn('a trigger filter failed on an event', { trigger_id: t.trigger_id, event_id: e.id, error: err });
      }
    }
    const state = stateOf(t);
    const lineage = match ? triggerLineage(e.trace_id) : [];
    const trace = match && !lineage.includes(t.trigger_id) ? triggerTrace(e.trace_id, t.trigger_id) : null;
    const outcome = !match ? 'ignored' : trace === null ? 'loop' : takeToken(t, state) ? 'fired' : 'throttled';
    db.transaction(() => {
      if (outcome === 'fired') {
        engine.run(t.scenario_id, { ...(JSON.parse(t.ctx) as Record<string, unknown>), event: { id: e.id, topic: e.topic, payload: e.payload, trace_id: e.trace_id } }, { run_id: `trig_${t.trigger_id}_${e.id}`, trace_id: trace!, force: true });
        engine.flush(); // the run commits with the trigger's progress, or neither does
      } else if (outcome === 'throttled' && !state.throttling) {
        const rate = rateOf(t);
        bus.publish('trigger.throttled', { trigger_id: t.trigger_id, scenario_id: t.scenario_id, event_id: e.id, topic: e.topic, per_second: rate.per_second, burst: rate.burst }, { trace_id: e.trace_id });
      } else if (outcome === 'loop' && state.loopReported !== e.trace_id) {
        const reason = lineage.includes(t.trigger_id) ? 'loop' : 'chain_too_deep';
        bus.publish('trigger.loop_blocked', { trigger_id: t.trigger_id, scenario_id: t.scenario_id, event_id: e.id, topic: e.topic, reason, chain: lineage }, { trace_id: e.trace_id });
      }
      q.triggerSeen.run(e.id, outcome === 'fired' ? 1 : 0, outcome === 'throttled' ? 1 : 0, t.trigger_id);
    })();
    // Only once committed: a rolled-back start leaves the burst and loop reports as they were.
    if (outcome === 'fired') state.throttling = false;
    if (outcome === 'throttled') state.throttling = true;
    if (outcome === 'loop') state.loopReported = e.trace_id;
    t.last_event_id = e.id;
  };

  // A trigger whose dispatch the store refused (locked by another process, disk full) is "behind": it skips live
  // events and catches up from the journal, in order, every TICK_RETRY_MS until the store takes its writes again.
  // Live dispatch after a failure would record a later event as seen and skip the failed one for good.
  const behind = new Map<string, NodeJS.Timeout>();
  const dispatchFailures = createFailureLog(logger, 'trigger dispatch');
  const catchUp = (t: TriggerRow) => {
    behind.delete(t.trigger_id);
    if (disposed || !subscriptions.has(t.trigger_id)) return;
    const matches = compilePattern(t.pattern);
    try {
      if (!writeLockFree(db)) return fallBehind(t, new TesseraError('STORE_BUSY', 'The database is still locked by another process.'));
      for (let after = t.last_event_id, page; (page = journal.query({ topic: t.pattern, after, limit: 500 })).events.length > 0; after = page.events.at(-1)!.id) {
        for (const e of page.events) if (matches(e.topic) && e.topic !== 'trigger.failed') dispatch(t, e);
      }
      dispatchFailures.succeeded();
    } catch (err) {
      fallBehind(t, err);
    }
  };
  const fallBehind = (t: TriggerRow, err: unknown) => {
    dispatchFailures.failed(err, { trigger_id: t.trigger_id });
    if (disposed || behind.has(t.trigger_id)) return;
    const retry = setTimeout(() => catchUp(t), TICK_RETRY_MS);
    retry.unref?.();
    behind.set(t.trigger_id, retry);
  };
  /** Throws only a store failure (the caller falls behind); any other failure is journaled as trigger.failed. */
  const dispatch = (t: TriggerRow, e: TesseraEvent) => {
    try {
      consider(t, e);
    } catch (err) {
      if (isStoreFailure(err)) throw err;
      bus.publish('trigger.failed', { trigger_id: t.trigger_id, event_id: e.id, error: (err as Error).message });
    }
  };

  const subscribe = (t: TriggerRow) => {
    subscriptions.set(t.trigger_id, bus.subscribe(t.pattern, (e) => {
      if (e.topic === 'trigger.failed') return;
      if (behind.has(t.trigger_id)) return; // the catch-up reads it from the journal, in order
      try {
        dispatch(t, e);
      } catch (err) {
        fallBehind(t, err);
      }
    }, { name: `trigger:${t.trigger_id}` }));
  };

  const validateScenario = (id: string) => {
    if (!engine.scenario(id)) throw new TesseraError('SCENARIO_NOT_FOUND', `No scenario "${id}" is registered.`);
  };

  return {
    createSchedule(input) {
      validateScenario(input.scenario_id);
      if ((input.cron === undefined) === (input.at === undefined)) throw new TesseraError('VALIDATION_FAILED', 'A schedule has exactly one of cron or at.');
      const tz = input.tz ?? 'UTC';
      checkTimeZone(tz);
      const missed = input.missed ?? 'run_once';
      if (missed !== 'run_once' && missed !== 'skip') throw new TesseraError('VALIDATION_FAILED', 'missed must be run_once or skip');
      const first = input.cron !== undefined ? parseCron(input.cron).next(clock(), tz) : parseAt(input.at!);
      if (first === undefined) throw new TesseraError('VALIDATION_FAILED', `cron "${input.cron}" never fires`);
      const jobId = `job_${randomUUID().slice(0, 8)}`;
      // The row and its event commit together, so the answer (created, or an error with nothing written) is true
      // on a full disk too; subscribers hear of it once committed (issue 13 point 8).
      db.transaction(() => {
        q.insertSchedule.run(jobId, input.scenario_id, input.cron ?? null, input.at ?? null, tz, JSON.stringify(input.ctx ?? {}), missed, first, clock());
        return bus.stageMany([{ topic: 'schedule.created', payload: { job_id: jobId, scenario_id: input.scenario_id, cron: input.cron ?? null, at: input.at ?? null, tz, next_fire_at: new Date(first).toISOString() } }]);
      })().deliver();
      arm();
      return toSchedule(q.schedules.all().find((r) => r.job_id === jobId)!);
    },
    deleteSchedule(jobId) {
      const { gone, staged } = db.transaction(() => {
        const deleted = q.deleteSchedule.run(jobId).changes > 0;
        return { gone: deleted, staged: deleted ? bus.stageMany([{ topic: 'schedule.deleted', payload: { job_id: jobId } }]) : undefined };
      })();
      staged?.deliver();
      arm();
      return gone;
    },
    schedules: () => q.schedules.all().map(toSchedule),
    createTrigger(input) {
      validateScenario(input.scenario_id);
      const problem = patternProblem(input.pattern);
      if (problem) throw new TesseraError('TOPIC_INVALID', problem);
      // Such a trigger could never start a run (bookkeeping never does): refused rather than silently dead.
      if (isBookkeeping(input.pattern)) {
        throw new TesseraError('TRIGGER_PATTERN_REFUSED', `"${input.pattern}" matches only the runtime's own ${input.pattern.split('.', 1)[0]}.* events, which never start a trigger (a run's own bookkeeping would start runs for ever); react to what the runs do instead (the events they publish).`);
      }
      if (input.rate !== undefined) checkRate(input.rate);
      if (input.filter !== undefined) expressions.evaluate(input.filter, { $: { id: 0, topic: '', payload: null, ts: '', trace_id: '' } });
      const id = `trg_${randomUUID().slice(0, 8)}`;
      const last = journal.lastId();
      const staged = db.transaction(() => {
        q.insertTrigger.run(id, input.pattern, input.filter ?? null, input.scenario_id, JSON.stringify(input.ctx ?? {}), last, clock(), input.rate?.per_second ?? null, input.rate?.burst ?? null);
        return bus.stageMany([{ topic: 'trigger.created', payload: { trigger_id: id, pattern: input.pattern, filter: input.filter ?? null, scenario_id: input.scenario_id } }]);
      })();
      const row = q.triggers.all().find((r) => r.trigger_id === id)!;
      if (started) subscribe(row);
      staged.deliver();
      return toTrigger(row);
    },
    deleteTrigger(triggerId) {
      // Deleted (and its event journaled) first: a delete the store refuses leaves the trigger working.
      const { gone, staged } = db.transaction(() => {
        const deleted = q.deleteTrigger.run(triggerId).changes > 0;
        return { gone: deleted, staged: deleted ? bus.stageMany([{ topic: 'trigger.deleted', payload: { trigger_id: triggerId } }]) : undefined };
      })();
      clearTimeout(behind.get(triggerId));
      behind.delete(triggerId);
      void subscriptions.get(triggerId)?.dispose();
      subscriptions.delete(triggerId);
      states.delete(triggerId);
      staged?.deliver();
      return gone;
    },
    triggers: () => q.triggers.all().map(toTrigger),
    start() {
      if (started) return;
      started = true;
      const now = clock();
      // Missed fires while the device was off.
      for (const r of q.due.all(now)) {
        if (r.missed === 'run_once') fire(r, r.next_fire_at!, 'missed');
        else {
          const next = nextFire(r, now);
          q.fired.run(r.last_fire_at, next, r.cron && next !== null ? 1 : 0, r.job_id);
          bus.publish('schedule.missed', { job_id: r.job_id, skipped_fire_at: new Date(r.next_fire_at!).toISOString(), next_fire_at: next === null ? null : new Date(next).toISOString() });
        }
      }
      // Triggers catch up on events journaled after the last one they saw, then follow live.
      for (const t of q.triggers.all()) {
        const matches = compilePattern(t.pattern);
        for (let after = t.last_event_id, page; (page = journal.query({ topic: t.pattern, after, limit: 500 })).events.length > 0; after = page.events.at(-1)!.id) {
          for (const e of page.events) if (matches(e.topic)) consider(t, e);
        }
        subscribe(t);
      }
      arm();
    },
    dispose() {
      disposed = true;
      if (timer) clearTimeout(timer);
      for (const t of behind.values()) clearTimeout(t);
      behind.clear();
      for (const s of subscriptions.values()) void s.dispose();
      subscriptions.clear();
    },
  };
}

function checkRate(rate: TriggerRate): void {
  const { per_second: perSecond, burst } = (rate ?? {}) as Partial<TriggerRate>;
  if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0 || perSecond > 1000) {
    throw new TesseraError('VALIDATION_FAILED', `rate.per_second must be a number above 0 and at most 1000 (got ${JSON.stringify(perSecond)}).`);
  }
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > 10_000) {
    throw new TesseraError('VALIDATION_FAILED', `rate.burst must be a whole number from 1 to 10000 (got ${JSON.stringify(burst)}).`);
  }
}
