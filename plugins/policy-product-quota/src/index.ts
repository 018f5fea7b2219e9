/**
 * policy-product-quota (seed 000 §4.2 "quotas / limits: per_user / per_wallet, global caps"): the host counts the
 * purchases (its sessions table) and passes the counts; this policy compares them with the product's caps. A
 * purchase is allowed while the count is below the cap (a cap of 2 allows the first and second). An absent or
 * null cap is no cap.
 */
import type { PolicyContext, PolicyDecision } from '../../sdk/index.js';

interface Input {
  product: { ref: string; quota: { per_user?: number | null; per_wallet?: number | null; global?: number | null } };
  counts: { user?: number; wallet?: number; global?: number };
}

const count = (n: unknown): number | null => (typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : null);
const cap = (n: unknown): number | null | undefined => (n === undefined || n === null ? null : count(n) ?? undefined);

function nack(code: string, message: string, extra: Record<string, unknown> = {}): PolicyDecision {
  return { verdict: 'NACK', reason: `${code}: ${message}`, evidence: { code, message, ...extra } };
}

export function decide(input: Input, _ctx: PolicyContext): PolicyDecision {
  const q = input?.product?.quota;
  const c = input?.counts;
  const caps = { user: cap(q?.per_user), wallet: cap(q?.per_wallet), global: cap(q?.global) };
  const counts = { user: count(c?.user), wallet: count(c?.wallet), global: count(c?.global) };
  if (!q || !c || caps.user === undefined || caps.wallet === undefined || caps.global === undefined) {
    return nack('PREFLIGHT_CHECK_FAILED', 'We could not check this purchase just now; please try again or ask a member of staff.', { problem: 'input.product.quota caps must be integers ≥ 0 or null' });
  }
  // A cap is only checked against a count the host gave; a missing count for a set cap fails closed.
  for (const k of ['user', 'wallet', 'global'] as const) {
    if (caps[k] !== null && counts[k] === null) {
      return nack('PREFLIGHT_CHECK_FAILED', 'We could not check this purchase just now; please try again or ask a member of staff.', { problem: `input.counts.${k} must be an integer ≥ 0` });
    }
  }
  if (caps.global !== null && counts.global! >= caps.global) return nack('PREFLIGHT_SOLD_OUT', 'This product is sold out.', { count: counts.global, cap: caps.global });
  if (caps.user !== null && counts.user! >= caps.user) {
    return nack('PREFLIGHT_QUOTA_USER', `You already have ${counts.user} of these, the most one person can buy.`, { count: counts.user, cap: caps.user });
  }
  if (caps.wallet !== null && counts.wallet! >= caps.wallet) {
    return nack('PREFLIGHT_QUOTA_WALLET', `This wallet already holds ${counts.wallet} of these, the most it can hold.`, { count: counts.wallet, cap: caps.wallet });
  }
  return { verdict: 'ACK', reason: `under every cap of ${input.product.ref}`, evidence: { message: 'Within the limits.', counts, caps } };
}
