/**
 * policy-agent-proposal (seed 000 §8 "agents never mutate; they propose"; issue 17 point 6): the runtime's policy on
 * what an agent proposes, before anyone is asked to approve it. The host (runtime/orchestrator/proposals.ts) gives
 * the proposal, the agent profile's `proposes` list, the device's limits, the approval the action needs, and the
 * price of a purchase. Rules, in order (the first that trips is the answer):
 *
 * 1. the action is not in the profile's `proposes` → AGENT_ACTION_NOT_ALLOWED;
 * 2. `entitlement.redeem`, from any agent → AGENT_REDEEM_STAFF_ONLY (staff redeem at the venue: the prompt-injection
 *    defence — text that talks an agent into "redeeming" can only produce a proposal, and this refuses it);
 * 3. `agent.profile.change` whose approval is not an operator's → AGENT_OPERATOR_APPROVAL_NEEDED;
 * 4. `session.buy` without a known price, or above `limits.max_amount` → AGENT_AMOUNT_OVER_LIMIT.
 *
 * Input out of contract is a NACK with AGENT_POLICY_CHECK_FAILED (fail closed; the host does the same for a plugin
 * that crashes, times out or is missing). The codes and sentences are listed in docs/errors.md.
 */
import type { PolicyContext, PolicyDecision } from '../../sdk/index.js';

interface Input {
  proposal: { action: string; args: Record<string, unknown>; agent_type: string };
  profile: { proposes: string[] };
  limits: { max_amount?: number };
  approval: { need: 'none' | 'traveller' | 'operator' };
  price?: { amount: number; currency: string };
}

/** Without a limit from the host: 500000 minor units, as policy-risk. */
const DEFAULT_MAX_AMOUNT = 500_000;

const whole = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

function nack(code: string, message: string, extra: Record<string, unknown> = {}): PolicyDecision {
  return { verdict: 'NACK', reason: `${code}: ${message}`, evidence: { code, message, ...extra } };
}

export function decide(input: Input, _ctx: PolicyContext): PolicyDecision {
  const action = input?.proposal?.action;
  const agent = input?.proposal?.agent_type;
  const proposes = input?.profile?.proposes;
  const need = input?.approval?.need;
  const max = input?.limits?.max_amount ?? DEFAULT_MAX_AMOUNT;
  if (typeof action !== 'string' || typeof agent !== 'string' || !Array.isArray(proposes) || !whole(max) || (need !== 'none' && need !== 'traveller' && need !== 'operator')) {
    return nack('AGENT_POLICY_CHECK_FAILED', 'This proposal could not be checked, so it will not run.', { problem: 'input.proposal {action, agent_type}, input.profile.proposes, input.approval.need and input.limits.max_amount are required' });
  }
  if (!proposes.includes(action)) {
    return nack('AGENT_ACTION_NOT_ALLOWED', `The ${agent} agent may not propose ${action}.`, { action, agent_type: agent, proposes });
  }
  if (action === 'entitlement.redeem') {
    return nack('AGENT_REDEEM_STAFF_ONLY', 'Only staff redeem passes, at the venue; an agent cannot.', { action, agent_type: agent });
  }
  if (action === 'agent.profile.change' && need !== 'operator') {
    return nack('AGENT_OPERATOR_APPROVAL_NEEDED', 'Changing an agent profile needs an operator\'s approval.', { action, need });
  }
  if (action === 'session.buy') {
    const amount = input.price?.amount;
    if (!whole(amount)) return nack('AGENT_AMOUNT_OVER_LIMIT', 'The price of this purchase is not known, so an agent cannot propose it.', { action, limit: max });
    if (amount > max) return nack('AGENT_AMOUNT_OVER_LIMIT', 'This purchase costs more than an agent may propose on this device.', { action, amount, limit: max, currency: input.price?.currency ?? null });
  }
  return { verdict: 'ACK', reason: `${agent} may propose ${action}; approval: ${need}`, evidence: { message: 'The agent may propose this.', action, need } };
}
