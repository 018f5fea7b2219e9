/**
 * Who may do what on a device (issue 13 §1.2). Pure: shared by the host, which decides every request on the
 * route it matched, and the renderer, which shows only the areas the holder of its credential may use.
 *
 * - `traveller`: the public kiosk — the Journey Guide and Verify.
 * - `staff`: field staff — Redeem, Verify, receipt cards.
 * - `author`: plugin authors — Plugin Studio (runs in a throwaway store).
 * - `operator`: Ops and settings — the journal, runs, schedules, webhooks, metrics, the device log.
 *
 * The device API token (`<data>/api-token`) holds every role; a role token holds one; an operator unlock (the
 * kiosk's PIN) yields a short-lived session that holds every role.
 */
import { TesseraError } from './errors.js';
import { patternProblem } from './topics.js';

export const ROLES = ['traveller', 'staff', 'author', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Every role: what the device token and an unlocked operator session hold. */
export const ALL_ROLES: readonly Role[] = ROLES;

/** The UI's areas and the roles that see each; an area no held role names is not shown at all. */
export const AREA_ROLES = {
  journey: ['traveller'],
  redeem: ['staff'],
  studio: ['author'],
  ops: ['operator'],
  verify: ['traveller', 'staff', 'operator'],
} as const satisfies Record<string, readonly Role[]>;
export type AreaId = keyof typeof AREA_ROLES;

export function canSeeArea(area: AreaId, roles: readonly Role[]): boolean {
  return (AREA_ROLES[area] as readonly Role[]).some((r) => roles.includes(r));
}

/**
 * Topic patterns a role may watch on `/ws` (the journal is every traveller's words: only operators see all of
 * it). A requested pattern is allowed when it lies under one of these prefixes.
 */
export const WATCHABLE_TOPICS: Record<Role, readonly string[]> = {
  traveller: ['io', 'runtime'],
  // `sync`: the status bar's cloud state and lease balances (issue 16) — device state, nothing of a traveller's.
  staff: ['runtime', 'sync'],
  author: ['runtime', 'plugin'],
  operator: ['**'],
};

/** Whether a holder of `roles` may subscribe to `pattern` (already checked to be a well-formed pattern). */
export function canWatch(pattern: string, roles: readonly Role[]): boolean {
  // A pattern that starts with a literal prefix segment matches only topics under it, whatever wildcards follow.
  return roles.some((role) => WATCHABLE_TOPICS[role].some((prefix) => prefix === '**' || pattern === prefix || pattern.startsWith(prefix + '.')));
}

/**
 * Checks one pattern a holder of `roles` asks to watch (on `/ws` or over IPC): TOPIC_INVALID when it is malformed,
 * FORBIDDEN when it reaches beyond the role's topics.
 */
export function assertWatchable(pattern: string, roles: readonly Role[]): void {
  const problem = patternProblem(pattern);
  if (problem) throw new TesseraError('TOPIC_INVALID', problem);
  if (!canWatch(pattern, roles)) throw new TesseraError('FORBIDDEN', `This credential (${roles.join(', ')}) may not watch "${pattern}": only an operator sees the whole journal.`);
}

/** The runtime's description as a holder of `roles` may see it: where the device keeps its data is the operator's business. */
export function infoFor<T extends { data_dir: string }>(info: T, roles: readonly Role[]): Omit<T, 'data_dir'> & { data_dir?: string } {
  if (roles.includes('operator')) return info;
  const { data_dir: _hidden, ...rest } = info;
  return rest;
}

/** What the holder of a credential is, as `GET /api/auth/session` tells the UI. */
export interface SessionView {
  /** `device`: the API token; `role`: a role token; `unlocked`: an operator unlock; `tenant`: a tenant token. */
  kind: 'device' | 'role' | 'unlocked' | 'tenant';
  roles: Role[];
  /** When an unlocked session ends (ISO 8601); absent for tokens that do not expire. */
  expires_at?: string;
  /** Whether an operator PIN is set on this device (the UI offers "Operator unlock" only then). */
  pin_set: boolean;
}
