/**
 * JSON schemas of the client API. One source for the HTTP routes (validation + the OpenAPI document) and for
 * the Electron IPC bridge (validated with the same Ajv settings), so both transports accept exactly the same
 * inputs.
 */
import { LIMITS, TRACE_ID_PATTERN } from '../common/api.js';
import { MAX_TOPIC_LENGTH } from '../common/topics.js';

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  description: 'Every error response has this shape; `code` is stable and listed in docs/errors.md.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        retryable: { type: 'boolean' },
        details: {},
      },
    },
  },
} as const;

export const eventSchema = {
  type: 'object',
  required: ['id', 'ts', 'topic', 'trace_id', 'payload'],
  properties: {
    id: { type: 'integer', description: 'Monotonic per device.' },
    ts: { type: 'string', format: 'date-time' },
    topic: { type: 'string' },
    trace_id: { type: 'string' },
    payload: { description: 'Any JSON value.' },
  },
} as const;

export const eventQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    topic: { type: 'string', minLength: 1, maxLength: MAX_TOPIC_LENGTH, description: 'Topic prefix on segment boundaries, or a pattern with `*` (one segment) / `**` (any).' },
    since: { type: 'string', minLength: 1, maxLength: 40, description: 'Events at or after this time: ISO-8601 or epoch milliseconds.' },
    until: { type: 'string', minLength: 1, maxLength: 40, description: 'Events before this time: ISO-8601 or epoch milliseconds.' },
    trace_id: { type: 'string', pattern: TRACE_ID_PATTERN },
    after: { type: 'integer', minimum: 0, description: 'Cursor from a previous page (`next`).' },
    limit: { type: 'integer', minimum: 1, maximum: LIMITS.maxPageSize, default: LIMITS.defaultPageSize },
    order: { type: 'string', enum: ['asc', 'desc'], default: 'asc' },
  },
} as const;

export const eventPageSchema = {
  type: 'object',
  required: ['events', 'next'],
  properties: {
    events: { type: 'array', items: eventSchema },
    next: { type: ['integer', 'null'], description: 'Pass as `after` for the next page; null on the last page.' },
  },
} as const;

export const publishInputSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['topic'],
  properties: {
    topic: { type: 'string', minLength: 1, maxLength: MAX_TOPIC_LENGTH },
    payload: { description: `Any JSON value, at most ${LIMITS.maxPayloadBytes} bytes serialized.` },
    trace_id: { type: 'string', pattern: TRACE_ID_PATTERN },
  },
} as const;

export const runtimeInfoSchema = {
  type: 'object',
  required: ['name', 'version', 'shell', 'data_dir', 'started_at'],
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    shell: { type: 'string', enum: ['electron', 'headless'] },
    data_dir: { type: 'string' },
    started_at: { type: 'string', format: 'date-time' },
  },
} as const;

export const subscribeMessageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'patterns'],
  properties: {
    type: { const: 'subscribe' },
    patterns: { type: 'array', maxItems: LIMITS.maxPatternsPerSubscription, items: { type: 'string', minLength: 1, maxLength: MAX_TOPIC_LENGTH } },
  },
} as const;
