/** The ProductRuntimeSession state machine (seed 000 §3.1, §6.1; issue 14 point 2). */
import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../main/common/errors.js';
import { FINAL_STATES, SESSION_STATES, STATE_EVENTS, assertMove, canMove } from '../../main/runtime/sessions/machine.js';
import type { SessionState } from '../../main/runtime/sessions/machine.js';

describe('the product session state machine', () => {
  it('has exactly the states and event names of seed 000 §6.1', () => {
    expect([...SESSION_STATES].sort()).toEqual(['active', 'canceled', 'completed', 'created', 'failed', 'pending_payment', 'preflight_failed', 'preflight_ok']);
    expect(Object.values(STATE_EVENTS).sort()).toEqual([
      'product.runtime.activated',
      'product.runtime.canceled',
      'product.runtime.completed',
      'product.runtime.created',
      'product.runtime.failed',
      'product.runtime.payment_pending',
      'product.runtime.preflight_failed',
      'product.runtime.preflight_ok',
    ]);
  });

  it('walks the seed\'s happy path: created → preflight_ok → pending_payment → active → completed', () => {
    const path: SessionState[] = ['created', 'preflight_ok', 'pending_payment', 'active', 'completed'];
    for (let i = 1; i < path.length; i++) expect(canMove(path[i - 1]!, path[i]!)).toBe(true);
  });

  it('lets a free product go from preflight_ok straight to active, and a failed preflight end the session', () => {
    expect(canMove('preflight_ok', 'active')).toBe(true);
    expect(canMove('created', 'preflight_failed')).toBe(true);
    expect(canMove('preflight_failed', 'pending_payment')).toBe(false);
  });

  it('never leaves a final state, and reaches failed from every other', () => {
    for (const final of FINAL_STATES) for (const to of SESSION_STATES) expect(canMove(final, to)).toBe(false);
    for (const from of SESSION_STATES.filter((s) => !FINAL_STATES.includes(s))) expect(canMove(from, 'failed')).toBe(true);
  });

  it('refuses skipping the preflight or the payment, and going back', () => {
    expect(canMove('created', 'pending_payment')).toBe(false);
    expect(canMove('created', 'active')).toBe(false);
    expect(canMove('pending_payment', 'preflight_ok')).toBe(false);
    expect(canMove('active', 'pending_payment')).toBe(false);
  });

  it('refuses an illegal move with SESSION_TRANSITION_REFUSED naming both states and what is possible', () => {
    let caught: unknown;
    try {
      assertMove('prs_1', 'canceled', 'active', 'be paid');
    } catch (err) {
      caught = err;
    }
    expect(isTesseraError(caught) && caught.code).toBe('SESSION_TRANSITION_REFUSED');
    expect((caught as Error).message).toContain('canceled is final');
    expect(() => assertMove('prs_1', 'created', 'preflight_ok', 'run its preflight')).not.toThrow();
    try {
      assertMove('prs_1', 'created', 'active', 'be paid');
    } catch (err) {
      expect((err as Error).message).toMatch(/from created it can go to preflight_ok, preflight_failed, canceled, failed/);
    }
  });
});
