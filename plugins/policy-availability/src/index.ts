/**
 * policy-availability (seed 000 §4.2 "availability checks"): the product version is `active` and the logical time
 * (`ctx.now`, never a clock) is inside its sale window [effective_from, effective_until). The sentence in
 * `evidence.message` is what the traveller reads (docs/errors.md "Preflight reasons").
 */
import type { PolicyContext, PolicyDecision } from '../../sdk/index.js';

interface Input {
  product: { ref: string; status: string; effective_from: string; effective_until?: string | null };
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** "1 March 2027" (UTC), without Intl: the sandbox has no locale clock. */
function day(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

function nack(code: string, message: string, extra: Record<string, unknown> = {}): PolicyDecision {
  return { verdict: 'NACK', reason: `${code}: ${message}`, evidence: { code, message, ...extra } };
}

export function decide(input: Input, ctx: PolicyContext): PolicyDecision {
  const p = input?.product;
  const from = typeof p?.effective_from === 'string' ? Date.parse(p.effective_from) : NaN;
  const until = p?.effective_until == null ? null : Date.parse(p.effective_until);
  if (!p || typeof p.status !== 'string' || Number.isNaN(from) || (until !== null && Number.isNaN(until))) {
    return nack('PREFLIGHT_CHECK_FAILED', 'We could not check this purchase just now; please try again or ask a member of staff.', { problem: 'input.product must carry status, effective_from and effective_until' });
  }
  const now = Date.parse(ctx.now);
  if (p.status !== 'active') return nack('PREFLIGHT_INACTIVE', 'This product is not on sale.', { status: p.status });
  if (now < from) return nack('PREFLIGHT_NOT_YET_AVAILABLE', `This product goes on sale on ${day(from)}.`, { effective_from: p.effective_from });
  if (until !== null && now >= until) return nack('PREFLIGHT_NO_LONGER_AVAILABLE', 'This product is no longer on sale.', { effective_until: p.effective_until });
  return { verdict: 'ACK', reason: `${p.ref} is active and on sale at ${ctx.now}`, evidence: { message: 'On sale.', status: p.status } };
}
