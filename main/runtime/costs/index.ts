/**
 * Costs and quotas (seed 001 §14, issue point 10): counters of what steps spend (`http_calls`, `tts_seconds`,
 * `plugin_calls`… — free names) per UTC day, node, user, run and step, and daily quotas per node or per user that
 * refuse with an error naming the kind, the limit, the usage and when it resets.
 *
 * Counters are aggregated rows in SQLite (one per day × kind × node × user × run × step), not one row or journal
 * entry per call, so a chatty step cannot flood the journal. The journal gets `quota.exceeded` on the first
 * refusal per day, kind and subject (in this process), which is the event an operator wants to see.
 *
 * Days are UTC days of the injected clock (STYLE.md §6): a quota resets at 00:00 UTC.
 *
 * Contract for callers: `check(kind)` before spending, `record(kind, amount)` after. The two are separate so
 * that a failed call can still be recorded (it cost an HTTP request) and so that the amount can be measured
 * (TTS seconds are known only afterwards).
 */
import { TesseraError } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import type { Migration, Store } from '../store/index.js';

export type QuotaScope = 'node' | 'user';

export interface Quota {
  kind: string;
  per: QuotaScope;
  /** Allowed total per UTC day, in the kind's unit (calls, seconds…). 0 forbids the kind. */
  daily: number;
}

export interface CostContext {
  user?: string;
  /** Defaults to the meter's node. */
  node?: string;
  run_id?: string;
  step?: string;
}

export interface TotalsQuery {
  /** `YYYY-MM-DD` (UTC); default today. */
  day?: string;
  user?: string;
  node?: string;
  run_id?: string;
  step?: string;
}

export interface QuotaExceededDetails {
  kind: string;
  per: QuotaScope;
  subject: string;
  limit: number;
  used: number;
  day: string;
  resets_at: string;
}

export interface CostMeter {
  /** Adds `amount` (≥ 0) of `kind` to today's counters. Never refuses: call {@link CostMeter.check} first. */
  record(kind: string, amount: number, context?: CostContext): void;
  /** Sum per kind for a day (default today), optionally narrowed to a user, node, run or step. */
  totals(query?: TotalsQuery): Record<string, number>;
  /**
   * Refuses when today's total of `kind` for the node or for `user` has reached its quota — or, with `amount`,
   * would go over it.
   * @throws TesseraError QUOTA_EXCEEDED with {@link QuotaExceededDetails} as details.
   */
  check(kind: string, context?: { user?: string; node?: string; amount?: number; trace_id?: string }): void;
  /** Sets (replaces) a quota; persisted. */
  setQuota(quota: Quota): void;
  /** Removes a quota; returns false when there was none. */
  removeQuota(kind: string, per: QuotaScope): boolean;
  quotas(): Quota[];
}

export interface CostMeterOptions {
  store: Store;
  bus: Bus;
  clock?: () => number;
  /** This runtime's node id: the subject of per-node quotas and the default node of a record. */
  node?: string;
  /** Quotas from configuration, applied (upserted) at creation. */
  quotas?: readonly Quota[];
}

export const QUOTA_EXCEEDED_TOPIC = 'quota.exceeded';
/** `http_calls`, `tts_seconds`, `llm.tokens`: lower case, starts with a letter, at most 64 characters. */
export const COST_KIND = /^[a-z][a-z0-9_.-]{0,63}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'costs',
    up: (db) => {
      db.exec(`CREATE TABLE cost_usage (
        day TEXT NOT NULL, kind TEXT NOT NULL, node TEXT NOT NULL, user TEXT NOT NULL,
        run_id TEXT NOT NULL, step TEXT NOT NULL, amount REAL NOT NULL,
        PRIMARY KEY (day, kind, node, user, run_id, step)) STRICT, WITHOUT ROWID`);
      db.exec("CREATE TABLE cost_quotas (kind TEXT NOT NULL, per TEXT NOT NULL CHECK (per IN ('node', 'user')), daily REAL NOT NULL CHECK (daily >= 0), PRIMARY KEY (kind, per)) STRICT, WITHOUT ROWID");
    },
  },
];

export function createCostMeter(options: CostMeterOptions): CostMeter {
  const { store, bus } = options;
  const clock = options.clock ?? Date.now;
  const thisNode = options.node ?? 'local';
  store.migrate('costs', MIGRATIONS);
  const db = store.db;
  const add = db.prepare(`INSERT INTO cost_usage (day, kind, node, user, run_id, step, amount) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (day, kind, node, user, run_id, step) DO UPDATE SET amount = amount + excluded.amount`);
  const usedByNode = db.prepare<[string, string, string], { total: number | null }>('SELECT sum(amount) AS total FROM cost_usage WHERE day = ? AND kind = ? AND node = ?');
  const usedByUser = db.prepare<[string, string, string], { total: number | null }>('SELECT sum(amount) AS total FROM cost_usage WHERE day = ? AND kind = ? AND user = ?');
  const getQuota = db.prepare<[string, string], { daily: number }>('SELECT daily FROM cost_quotas WHERE kind = ? AND per = ?');
  const putQuota = db.prepare('INSERT INTO cost_quotas (kind, per, daily) VALUES (?, ?, ?) ON CONFLICT (kind, per) DO UPDATE SET daily = excluded.daily');
  const delQuota = db.prepare('DELETE FROM cost_quotas WHERE kind = ? AND per = ?');
  const allQuotas = db.prepare<[], Quota>('SELECT kind, per, daily FROM cost_quotas ORDER BY kind, per');
  // Refusals already journaled today, so a retry loop adds one journal entry, not thousands.
  const journaled = new Set<string>();

  const today = () => utcDay(clock());
  const validateQuota = (q: Quota) => {
    checkKind(q.kind);
    if (q.per !== 'node' && q.per !== 'user') throw new TesseraError('VALIDATION_FAILED', `A quota is per "node" or per "user", not ${JSON.stringify(q.per)}.`);
    if (typeof q.daily !== 'number' || !Number.isFinite(q.daily) || q.daily < 0) {
      throw new TesseraError('VALIDATION_FAILED', `The daily quota of "${q.kind}" per ${q.per} must be a finite number ≥ 0.`);
    }
  };
  for (const q of options.quotas ?? []) validateQuota(q);
  db.transaction(() => (options.quotas ?? []).forEach((q) => putQuota.run(q.kind, q.per, q.daily)))();

  const refuse = (details: QuotaExceededDetails, traceId: string | undefined): never => {
    const key = `${details.day}|${details.kind}|${details.per}|${details.subject}`;
    if (!journaled.has(key)) {
      journaled.add(key);
      bus.publish(QUOTA_EXCEEDED_TOPIC, details, traceId === undefined ? {} : { trace_id: traceId });
    }
    const who = details.per === 'node' ? `node "${details.subject}"` : `user "${details.subject}"`;
    throw new TesseraError(
      'QUOTA_EXCEEDED',
      `Daily quota for "${details.kind}" reached for ${who}: used ${fmt(details.used)} of ${fmt(details.limit)} today (${details.day} UTC); it resets at ${details.resets_at} (in ${untilText(Date.parse(details.resets_at) - clock())}).`,
      { details },
    );
  };

  return {
    record(kind, amount, context = {}) {
      checkKind(kind);
      if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
        throw new TesseraError('VALIDATION_FAILED', `A cost amount of "${kind}" must be a finite number ≥ 0.`);
      }
      if (amount === 0) return;
      add.run(today(), kind, context.node ?? thisNode, context.user ?? '', context.run_id ?? '', context.step ?? '', amount);
    },
    totals(query = {}) {
      const day = query.day ?? today();
      if (!DAY.test(day)) throw new TesseraError('VALIDATION_FAILED', `A day is "YYYY-MM-DD" (UTC), not ${JSON.stringify(day)}.`);
      const where = ['day = ?'];
      const params: string[] = [day];
      for (const col of ['user', 'node', 'run_id', 'step'] as const) {
        const v = query[col];
        if (v !== undefined) {
          where.push(`${col} = ?`);
          params.push(v);
        }
      }
      const rows = db.prepare<string[], { kind: string; total: number }>(`SELECT kind, sum(amount) AS total FROM cost_usage WHERE ${where.join(' AND ')} GROUP BY kind ORDER BY kind`).all(...params);
      return Object.fromEntries(rows.map((r) => [r.kind, r.total]));
    },
    check(kind, context = {}) {
      checkKind(kind);
      const amount = context.amount ?? 0;
      if (!Number.isFinite(amount) || amount < 0) throw new TesseraError('VALIDATION_FAILED', `A cost amount of "${kind}" must be a finite number ≥ 0.`);
      const now = clock();
      const day = utcDay(now);
      const resets_at = new Date((Math.floor(now / DAY_MS) + 1) * DAY_MS).toISOString();
      const over = (used: number, limit: number) => (amount === 0 ? used >= limit : used + amount > limit);
      const node = context.node ?? thisNode;
      const nodeQuota = getQuota.get(kind, 'node');
      if (nodeQuota) {
        const used = usedByNode.get(day, kind, node)?.total ?? 0;
        if (over(used, nodeQuota.daily)) refuse({ kind, per: 'node', subject: node, limit: nodeQuota.daily, used, day, resets_at }, context.trace_id);
      }
      const userQuota = context.user === undefined ? undefined : getQuota.get(kind, 'user');
      if (userQuota && context.user !== undefined) {
        const used = usedByUser.get(day, kind, context.user)?.total ?? 0;
        if (over(used, userQuota.daily)) refuse({ kind, per: 'user', subject: context.user, limit: userQuota.daily, used, day, resets_at }, context.trace_id);
      }
    },
    setQuota(quota) {
      validateQuota(quota);
      putQuota.run(quota.kind, quota.per, quota.daily);
    },
    removeQuota(kind, per) {
      checkKind(kind);
      return delQuota.run(kind, per).changes > 0;
    },
    quotas() {
      return allQuotas.all().map((q) => ({ kind: q.kind, per: q.per, daily: q.daily }));
    },
  };
}

function checkKind(kind: unknown): asserts kind is string {
  if (typeof kind !== 'string' || !COST_KIND.test(kind)) {
    throw new TesseraError('VALIDATION_FAILED', `${JSON.stringify(typeof kind === 'string' ? kind.slice(0, 80) : typeof kind)} is not a cost kind: use lower-case letters, digits, "_", "." or "-", starting with a letter (e.g. "http_calls").`);
  }
}

/** `YYYY-MM-DD` of `ms` in UTC. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/\.?0+$/, '');
}

function untilText(ms: number): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h > 0 ? `${h}h ${m}m` : `${m}m`;
}
