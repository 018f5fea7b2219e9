/**
 * `tool-entitlements`, built in: scenario tool steps naming it reach this module directly instead of a sandbox
 * plugin (issue 14 §6: `resources/scenarios/redeem_entitlement.yaml` and the voice intent "redeem code …").
 * - `{op: "redeem", entitlement_id: CODE, venue}` → `{id, verdict, message, receipt_id}`; a refused code fails
 *   the step with the verdict's sentence (not retryable: the same code gets the same answer).
 * - `{op: "revert", redemption_id, reason?}` → the undo's answer (the saga's compensation).
 * Idempotent per step: the redemption's `screen` is `scenario:<idempotency key>`, and a step re-run after a crash
 * finds the redemption its first attempt made instead of redeeming twice.
 */
import { TesseraError } from '../../common/errors.js';
import type { ToolRunner } from '../scenarios/engine.js';
import type { Entitlements } from './index.js';

export const ENTITLEMENTS_TOOL = 'tool-entitlements';

export function entitlementsToolRunner(inner: ToolRunner | undefined, entitlements: () => Entitlements | undefined): ToolRunner {
  return {
    async run(tool, args, options) {
      if (tool !== ENTITLEMENTS_TOOL) {
        if (!inner) throw new TesseraError('PLUGIN_NOT_FOUND', `No loaded tool plugin "${tool}".`);
        return inner.run(tool, args, options);
      }
      const module = entitlements();
      if (!module) throw new TesseraError('NOT_READY', 'The entitlements module is not started yet.');
      const a = (args ?? {}) as Record<string, unknown>;
      if (a['op'] === 'revert') {
        const answer = module.undo(String(a['redemption_id'] ?? ''), typeof a['reason'] === 'string' ? a['reason'] : undefined);
        return { verdict: answer.verdict, message: answer.message };
      }
      if (a['op'] !== 'redeem') throw new TesseraError('VALIDATION_FAILED', `${ENTITLEMENTS_TOOL}: op must be redeem or revert.`);
      const screen = `scenario:${options.idempotency_key}`;
      const earlier = module.history({ q: screen, limit: 1 }).find((r) => r.screen === screen && !r.undone_at);
      if (earlier) return { id: earlier.id, verdict: 'REDEEMED', message: null, receipt_id: earlier.receipt_id };
      const answer = module.redeem({ code: String(a['entitlement_id'] ?? ''), venue: String(a['venue'] ?? 'main'), screen });
      if (!answer.ok) throw new TesseraError('STEP_FAILED', answer.message, { retryable: false, details: { verdict: answer.verdict, ...(answer.previous ? { previous: answer.previous } : {}) } });
      return { id: answer.redemption!.id, verdict: answer.verdict, message: null, receipt_id: answer.redemption!.receipt_id };
    },
  };
}
