/**
 * One sentence per JSON Schema (Ajv) error, naming the field in the document's own notation
 * (`pipeline[0].policies[1].use: must be …`): what product manifests, ProductDefs and agent profiles say when a file
 * does not match its schema. A schema may carry `x-message` beside a keyword whose default message would not help.
 */
import type { ErrorObject } from 'ajv';

/** Keywords whose `x-message` (on the same schema) replaces Ajv's message. */
const CUSTOM_KEYWORDS = new Set(['pattern', 'type', 'minimum']);

/** `a.b[2].c` of an error's instance path; `(top level)` for the document itself. */
export function schemaPath(e: ErrorObject): string {
  return e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).split('/').map((seg, i) => (/^\d+$/.test(seg) ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('');
}

export function describeSchemaError(e: ErrorObject): string {
  const path = schemaPath(e);
  const under = path === '(top level)' ? '' : `${path}.`;
  const custom = (e.parentSchema as { 'x-message'?: string } | undefined)?.['x-message'];
  if (CUSTOM_KEYWORDS.has(e.keyword) && custom) return `${path}: ${custom}`;
  if (e.keyword === 'additionalProperties') return `${under}${String((e.params as { additionalProperty: string }).additionalProperty)}: is not a known field`;
  if (e.keyword === 'required') return `${under}${String((e.params as { missingProperty: string }).missingProperty)}: is required`;
  if (e.keyword === 'enum') return `${path}: must be one of ${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
  return `${path}: ${e.message ?? 'is invalid'}`;
}
