/**
 * policy-risk (seed 000 §4.2 "risk / fraud pre-screen"): a deliberately simple screen on what the host counted —
 * how many purchases this person started in the last hour, and the price against the device's threshold. The
 * thresholds come from the host (`input.risk`), defaulting to 5 an hour and 500000 minor units. The traveller is
 * told to ask staff, never which rule tripped (that is in the evidence for the operator).
 */
import type { PolicyContext, PolicyDecision } from '../../sdk/index.js';

interface Input {
  product: { ref: string; price: number; currency: string };
  counts: { user_last_hour?: number };
  risk?: { max_sessions_per_hour?: number; max_amount?: number };
}

const DEFAULT_MAX_SESSIONS_PER_HOUR = 5;
const DEFAULT_MAX_AMOUNT = 500_000;
const RISK_MESSAGE = 'We cannot sell this right now because of unusual activity; please ask a member of staff.';

const whole = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

function nack(code: string, message: string, extra: Record<string, unknown> = {}): PolicyDecision {
  return { verdict: 'NACK', reason: `${code}: ${message}`, evidence: { code, message, ...extra } };
}

export function decide(input: Input, _ctx: PolicyContext): PolicyDecision {
  const price = input?.product?.price;
  const recent = input?.counts?.user_last_hour;
  const maxSessions = input?.risk?.max_sessions_per_hour ?? DEFAULT_MAX_SESSIONS_PER_HOUR;
  const maxAmount = input?.risk?.max_amount ?? DEFAULT_MAX_AMOUNT;
  if (!whole(price) || !whole(recent) || !whole(maxSessions) || !whole(maxAmount)) {
    return nack('PREFLIGHT_CHECK_FAILED', 'We could not check this purchase just now; please try again or ask a member of staff.', { problem: 'input.product.price, input.counts.user_last_hour and input.risk limits must be integers ≥ 0' });
  }
  if (recent >= maxSessions) return nack('PREFLIGHT_RISK', RISK_MESSAGE, { rule: 'sessions_per_hour', count: recent, limit: maxSessions });
  if (price > maxAmount) return nack('PREFLIGHT_RISK', RISK_MESSAGE, { rule: 'amount', amount: price, limit: maxAmount, currency: input.product.currency });
  return { verdict: 'ACK', reason: `${recent} purchases in the last hour (limit ${maxSessions}); price ${price} ≤ ${maxAmount}`, evidence: { message: 'No unusual activity.', sessions_last_hour: recent, amount: price } };
}
