/**
 * policy-authorization: tenant, audience and scope rules. ACK when the principal belongs to the tenant, is
 * issued for the audience and holds every requested scope; NACK otherwise; ASK when the principal's token is
 * not yet valid or has expired at the logical time (a human should re-authenticate).
 */
import type { PolicyContext, PolicyDecision } from '../../sdk/index.js';

interface Input {
  tenant: string;
  audience: string;
  scopes: string[];
  principal: { id: string; tenant: string; audiences: string[]; scopes: string[]; not_before?: string; expires_at?: string };
}

export function decide(input: Input, ctx: PolicyContext): PolicyDecision {
  const p = input?.principal;
  if (!p || typeof p.tenant !== 'string' || !Array.isArray(p.audiences) || !Array.isArray(p.scopes) || !Array.isArray(input.scopes)) {
    return { verdict: 'NACK', reason: 'input must carry tenant, audience, scopes[] and a principal {tenant, audiences[], scopes[]}' };
  }
  const now = Date.parse(ctx.now);
  if (p.not_before && now < Date.parse(p.not_before)) return { verdict: 'ASK', reason: `the principal's credential is valid from ${p.not_before}`, evidence: { now: ctx.now } };
  if (p.expires_at && now >= Date.parse(p.expires_at)) return { verdict: 'ASK', reason: `the principal's credential expired at ${p.expires_at}`, evidence: { now: ctx.now } };
  if (p.tenant !== input.tenant) return { verdict: 'NACK', reason: `principal ${p.id} belongs to tenant ${p.tenant}, not ${input.tenant}` };
  if (!p.audiences.includes(input.audience)) return { verdict: 'NACK', reason: `principal ${p.id} is not issued for audience ${input.audience}` };
  const missing = input.scopes.filter((s) => !p.scopes.includes(s));
  if (missing.length > 0) return { verdict: 'NACK', reason: `principal ${p.id} lacks scope ${missing.join(', ')}`, evidence: { missing } };
  return { verdict: 'ACK', reason: `principal ${p.id} may ${input.scopes.join(', ')} on ${input.audience}`, evidence: { tenant: p.tenant, scopes: input.scopes } };
}
