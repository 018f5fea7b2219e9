/**
 * The ProductRuntimeSession state machine (seed 000 §3.1, §6.1): the states, which move is legal from each, and
 * the event each move publishes. Pure: the sessions module (./index.ts) decides when to move and writes the rows,
 * receipts and events; this file only says whether a move is allowed.
 *
 * ```
 * created ──▶ preflight_ok ──▶ pending_payment ──▶ active ──▶ completed
 *    │              │ └──────────────────────────▶ active (a free product: no payment)
 *    ▼              ▼                 │               │
 * preflight_failed  canceled ◀────────┴───────────────┘ (refund, entitlements revoked)
 *                   failed ◀── any state that is not final (a fatal fault)
 * ```
 */
import { TesseraError } from '../../common/errors.js';

export const SESSION_STATES = ['created', 'preflight_ok', 'preflight_failed', 'pending_payment', 'active', 'completed', 'canceled', 'failed'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** States a session never leaves. */
export const FINAL_STATES: readonly SessionState[] = ['preflight_failed', 'completed', 'canceled', 'failed'];

/** The legal moves. `failed` is reachable from every state that is not final (a fatal fault, seed 000 §3.1). */
const MOVES: Readonly<Record<SessionState, readonly SessionState[]>> = {
  created: ['preflight_ok', 'preflight_failed', 'canceled', 'failed'],
  preflight_ok: ['pending_payment', 'active', 'canceled', 'failed'],
  pending_payment: ['active', 'canceled', 'failed'],
  active: ['completed', 'canceled', 'failed'],
  preflight_failed: [],
  completed: [],
  canceled: [],
  failed: [],
};

/** The event each state is entered with (seed 000 §6.1, exactly these names). */
export const STATE_EVENTS: Readonly<Record<SessionState, string>> = {
  created: 'product.runtime.created',
  preflight_ok: 'product.runtime.preflight_ok',
  preflight_failed: 'product.runtime.preflight_failed',
  pending_payment: 'product.runtime.payment_pending',
  active: 'product.runtime.activated',
  completed: 'product.runtime.completed',
  canceled: 'product.runtime.canceled',
  failed: 'product.runtime.failed',
};

/** Published when the payment of a session in `pending_payment` is captured (the state stays until issuing). */
export const PAYMENT_CAPTURED_EVENT = 'product.runtime.payment_captured';

export function isFinal(state: SessionState): boolean {
  return FINAL_STATES.includes(state);
}

export function canMove(from: SessionState, to: SessionState): boolean {
  return MOVES[from].includes(to);
}

/**
 * Refuses an illegal move with SESSION_TRANSITION_REFUSED, naming the session, both states and what is possible.
 * @throws TesseraError SESSION_TRANSITION_REFUSED
 */
export function assertMove(id: string, from: SessionState, to: SessionState, action: string): void {
  if (canMove(from, to)) return;
  const next = MOVES[from];
  throw new TesseraError(
    'SESSION_TRANSITION_REFUSED',
    `Session ${id} is ${from}: it cannot ${action} (${from} → ${to} is not a move of the session state machine; ${next.length === 0 ? `${from} is final` : `from ${from} it can go to ${next.join(', ')}`}).`,
    { details: { session: id, from, to } },
  );
}
