/** The engine's expression adapter over main/common/expr.ts: `${…}` interpolation, conditions, redaction. */
import { evaluateExpr, interpolate, redact, reveal } from '../../common/expr.js';
import type { Expressions } from './engine.js';

/** `when:` and `foreach:` may be written bare (`ctx.n > 1`) or wrapped (`${ctx.n > 1}`). */
function unwrap(expr: string): string {
  const m = /^\s*\$\{([\s\S]*)\}\s*$/.exec(expr);
  return m ? m[1]! : expr;
}

export const scenarioExpressions: Expressions = {
  interpolate: (value, scope, options) => interpolate(value, scope, options),
  evaluate: (expr, scope) => evaluateExpr(unwrap(expr), scope),
  redact: (value) => redact(value),
  reveal: (value) => reveal(value),
};
