/**
 * Budget arithmetic of the agent runtime (issue 17 point 6; ISSUE17-PLAN "Budgets"): limits per session
 * (profile + `budget_extra`) and per agent type per UTC day (sum of the records' `daily[today]`), reservations
 * taken before a model or tool call and settled after it with the real usage. Pure functions and one small ledger;
 * the runtime decides what to do with a {@link PauseInfo}.
 */
import type { BudgetKind, Budgets, PauseInfo, SessionRecord, Usage } from './types.js';

export const BUDGET_KINDS: readonly BudgetKind[] = ['tokens', 'tool_calls', 'wall_ms', 'model_calls'];

export function emptyUsage(): Usage {
  return { tokens: 0, tool_calls: 0, wall_ms: 0, model_calls: 0 };
}

/** Adds usage. Only finite amounts ≥ 0 count: usage never goes down (a bad number cannot erase a budget). */
export function addUsage(into: Usage, add: Partial<Usage>): Usage {
  for (const kind of BUDGET_KINDS) {
    const amount = add[kind];
    if (typeof amount === 'number' && Number.isFinite(amount) && amount > 0) into[kind] += amount;
  }
  return into;
}

/** `YYYY-MM-DD` of a UTC day. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The profile's session budgets raised by what `resume({extend})` granted. A kind the profile leaves unlimited stays unlimited. */
export function sessionLimits(profileSession: Budgets, extra: Budgets): Budgets {
  const out: Budgets = {};
  for (const kind of BUDGET_KINDS) {
    const base = profileSession[kind];
    if (base !== undefined) out[kind] = base + (extra[kind] ?? 0);
  }
  return out;
}

/** Adds `extend` to a record's `budget_extra` (negative or non-finite amounts are ignored: resume only raises). */
export function extendBudgets(extra: Budgets, extend: Budgets): Budgets {
  const out: Budgets = { ...extra };
  for (const kind of BUDGET_KINDS) {
    const amount = extend[kind];
    if (typeof amount === 'number' && Number.isFinite(amount) && amount > 0) out[kind] = (out[kind] ?? 0) + amount;
  }
  return out;
}

/** Does `kind` have room left (used < limit)? Decides whether `resume({extend})` un-pauses a session. */
export function hasRoom(kind: BudgetKind, limit: Budgets, used: Usage): boolean {
  const l = limit[kind];
  return l === undefined || used[kind] < l;
}

export function remaining(limit: Budgets, used: Usage): Budgets {
  const out: Budgets = {};
  for (const kind of BUDGET_KINDS) {
    const l = limit[kind];
    if (l !== undefined) out[kind] = Math.max(0, l - used[kind]);
  }
  return out;
}

/** Usage of one agent type on one day: the sum of its sessions' `daily[day]`. */
export function dayUsage(records: Iterable<SessionRecord>, agentType: string, day: string): Usage {
  const used = emptyUsage();
  for (const r of records) {
    const d = r.agent_type === agentType ? r.daily[day] : undefined;
    if (d) addUsage(used, d);
  }
  return used;
}

/**
 * Reservations in flight, per session and per agent type, so that concurrent turns cannot together overrun a
 * limit that each of them alone would respect (reserve before, settle after).
 */
export interface BudgetLedger {
  /**
   * Reserves `need` for a session if every limit leaves room (wall time: only checked, `used < limit`).
   * @returns null when reserved, else what ran out (the reservation is not taken).
   */
  reserve(input: { session: string; agentType: string; sessionLimit: Budgets; sessionUsed: Usage; dayLimit: Budgets; dayUsed: Usage; need: Partial<Usage>; at: string; now: string }): PauseInfo | null;
  /** Gives a reservation back (after the call, whatever happened). */
  release(session: string, agentType: string, need: Partial<Usage>): void;
}

export function createBudgetLedger(): BudgetLedger {
  const bySession = new Map<string, Usage>();
  const byType = new Map<string, Usage>();
  const held = (map: Map<string, Usage>, key: string): Usage => {
    let u = map.get(key);
    if (!u) map.set(key, (u = emptyUsage()));
    return u;
  };
  const check = (scope: 'session' | 'day', limit: Budgets, used: Usage, inFlight: Usage, need: Partial<Usage>, at: string, now: string): PauseInfo | null => {
    for (const kind of BUDGET_KINDS) {
      const l = limit[kind];
      if (l === undefined) continue;
      const u = used[kind] + inFlight[kind];
      const over = kind === 'wall_ms' ? u >= l : u + (need[kind] ?? 0) > l;
      if (over) return { budget: kind, scope, used: used[kind], limit: l, at, since: now };
    }
    return null;
  };
  return {
    reserve({ session, agentType, sessionLimit, sessionUsed, dayLimit, dayUsed, need, at, now }) {
      const s = held(bySession, session);
      const t = held(byType, agentType);
      const pause = check('session', sessionLimit, sessionUsed, s, need, at, now) ?? check('day', dayLimit, dayUsed, t, need, at, now);
      if (pause) return pause;
      addUsage(s, need);
      addUsage(t, need);
      return null;
    },
    release(session, agentType, need) {
      for (const u of [held(bySession, session), held(byType, agentType)]) {
        for (const kind of BUDGET_KINDS) u[kind] -= need[kind] ?? 0;
      }
      if (BUDGET_KINDS.every((k) => bySession.get(session)?.[k] === 0)) bySession.delete(session);
    },
  };
}
