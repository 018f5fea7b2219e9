/**
 * policy-quota: at most `limit` ACKs per subject per window (UTC day by default), counted in the plugin's own
 * key/value store. The window comes from the logical time, so replays decide the same way.
 */
import type { PolicyContext, PolicyDecision } from '../../sdk/index.js';

interface Input {
  subject: string;
  limit: number;
  window?: 'day' | 'hour';
}

export async function decide(input: Input, ctx: PolicyContext): Promise<PolicyDecision> {
  if (!input || typeof input.subject !== 'string' || input.subject === '' || !Number.isInteger(input.limit) || input.limit < 0) {
    return { verdict: 'NACK', reason: 'input must be {subject: string, limit: integer ≥ 0, window?: "day"|"hour"}' };
  }
  const bucket = input.window === 'hour' ? ctx.now.slice(0, 13) : ctx.now.slice(0, 10);
  const key = `count/${input.subject}/${bucket}`;
  const used = ((await ctx.host.call('kv.get', { key })) as number | null) ?? 0;
  if (used >= input.limit) {
    return { verdict: 'NACK', reason: `${input.subject} used ${used} of ${input.limit} in ${bucket}`, metrics: { used, limit: input.limit } };
  }
  await ctx.host.call('kv.set', { key, value: used + 1 });
  return { verdict: 'ACK', reason: `${input.subject}: ${used + 1} of ${input.limit} in ${bucket}`, metrics: { used: used + 1, limit: input.limit } };
}
