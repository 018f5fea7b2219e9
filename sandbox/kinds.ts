/**
 * The contract of each plugin kind, checked on the host side after the output crossed as JSON text
 * (issue 3 §3; seed 004 §1). A plugin's output is data from a hostile source: it is parsed by the host's own
 * JSON.parse, refused if it carries prototype-polluting keys, and validated against its kind's schema.
 */
import Ajv from 'ajv';
import { TesseraError } from '../main/common/errors.js';
import type { PluginKind } from './protocol.js';

// The TypeScript shapes of these contracts are the plugin SDK's (plugins/sdk/index.ts); the schemas below check them.
const schemas: Record<PluginKind, object> = {
  policy: {
    type: 'object',
    additionalProperties: false,
    required: ['verdict', 'reason'],
    properties: {
      verdict: { enum: ['ACK', 'NACK', 'ASK'] },
      reason: { type: 'string', minLength: 1, maxLength: 2000 },
      evidence: {},
      metrics: { type: 'object', additionalProperties: { type: 'number' } },
    },
  },
  tool: {},
  intake: {
    type: 'object',
    additionalProperties: false,
    required: ['intent'],
    properties: {
      intent: { type: 'string', pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', maxLength: 200 },
      slots: { type: 'object' },
      ctx: { type: 'object' },
    },
  },
  enrich: {
    type: 'object',
    additionalProperties: false,
    required: ['artifacts'],
    properties: {
      artifacts: {
        type: 'array',
        maxItems: 64,
        items: { type: 'object', additionalProperties: false, required: ['kind', 'data'], properties: { kind: { type: 'string', minLength: 1, maxLength: 100 }, data: {} } },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const validators = Object.fromEntries(Object.entries(schemas).map(([k, s]) => [k, ajv.compile(s)])) as Record<PluginKind, ReturnType<typeof ajv.compile>>;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Parse a plugin's JSON output and check it against its kind. Throws PLUGIN_OUTPUT_INVALID naming the problem. */
export function checkOutput(kind: PluginKind, json: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(json, (key, v: unknown) => {
      if (FORBIDDEN_KEYS.has(key)) throw new TesseraError('PLUGIN_OUTPUT_INVALID', `The output contains the key "${key}", which is refused (prototype pollution).`);
      return v;
    });
  } catch (err) {
    if (err instanceof TesseraError) throw err;
    throw new TesseraError('PLUGIN_OUTPUT_INVALID', 'The output is not valid JSON.');
  }
  const validate = validators[kind];
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`).join('; ');
    throw new TesseraError('PLUGIN_OUTPUT_INVALID', `The ${kind} plugin's output does not match its contract: ${problems}`);
  }
  return value;
}
