/**
 * policy-existence: ACK when every required field is present (non-empty) in the subject; NACK naming the
 * missing ones. Fields are dot paths (`passport.number`). Seed 004 §1: the first policy of the pipeline.
 */
import type { PolicyContext, PolicyDecision } from '../../sdk/index.js';

interface Input {
  required: string[];
  subject: Record<string, unknown>;
}

function present(subject: unknown, path: string): boolean {
  let value: unknown = subject;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, part)) return false;
    value = (value as Record<string, unknown>)[part];
  }
  return value !== undefined && value !== null && value !== '';
}

export function decide(input: Input, _ctx: PolicyContext): PolicyDecision {
  if (!input || !Array.isArray(input.required) || typeof input.subject !== 'object' || input.subject === null) {
    return { verdict: 'NACK', reason: 'input must be {required: string[], subject: object}' };
  }
  const missing = input.required.filter((field) => !present(input.subject, String(field)));
  return missing.length === 0
    ? { verdict: 'ACK', reason: `all ${input.required.length} required fields are present`, evidence: { checked: input.required }, metrics: { required: input.required.length, missing: 0 } }
    : { verdict: 'NACK', reason: `missing: ${missing.join(', ')}`, evidence: { missing }, metrics: { required: input.required.length, missing: missing.length } };
}
