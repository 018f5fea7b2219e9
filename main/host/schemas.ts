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
  required: ['name', 'version', 'shell', 'started_at'],
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

export const pluginInfoSchema = {
  type: 'object',
  required: ['key', 'name', 'version', 'kind', 'cid', 'entry_cid', 'publisher', 'trust', 'capabilities', 'limits', 'manifest'],
  properties: {
    key: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    kind: { type: 'string', enum: ['policy', 'tool', 'intake', 'enrich'] },
    cid: { type: 'string' },
    entry_cid: { type: 'string' },
    publisher: { type: 'object', properties: { keyid: { type: 'string' }, name: { type: 'string' } } },
    trust: { type: 'string' },
    capabilities: { type: 'array', items: { type: 'string' } },
    limits: { type: 'object', additionalProperties: { type: 'number' } },
    manifest: { type: 'object', additionalProperties: true },
  },
} as const;

/** POST /api/plugins/load and IPC loadPlugin: exactly one of the two (operations.loadPlugin says so in words). */
export const pluginLoadRequestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dir: { type: 'string', minLength: 1, maxLength: 4096, description: 'A plugin folder on this device: verified and loaded.' },
    plugin: { type: 'string', minLength: 1, maxLength: 200, description: 'A loaded plugin (key, name@version or name): loaded again from its folder.' },
  },
} as const;

export const pluginLoadFailureSchema = {
  type: 'object',
  required: ['dir', 'error', 'at'],
  properties: {
    dir: { type: 'string' },
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
    at: { type: 'string' },
  },
} as const;

export const pluginTestRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['input'],
  properties: {
    plugin: { type: 'string', minLength: 1, maxLength: 200, description: 'A loaded plugin: key, name@version or name.' },
    dir: { type: 'string', minLength: 1, maxLength: 4096, description: 'A plugin folder on this device; verified and run as it is, not loaded.' },
    package: {
      type: 'object',
      additionalProperties: false,
      required: ['manifest', 'code', 'signature'],
      description: 'An uploaded plugin: plugin.json as an object, the bundled script as text, plugin.sig as an object. Verified and run once.',
      properties: { manifest: { type: 'object' }, code: { type: 'string', maxLength: 900000 }, signature: { type: 'object' } },
    },
    input: { description: 'The input, any JSON value.' },
    now: { type: 'string', minLength: 1, maxLength: 40, description: 'Logical time given to the plugin (ISO-8601); default the runtime clock.' },
  },
} as const;

export const pluginRunResultSchema = {
  type: 'object',
  required: ['plugin', 'trace_id', 'now', 'input_cid', 'output', 'output_cid', 'duration_ms', 'cpu_us', 'heap_used_bytes', 'capability_calls'],
  properties: {
    plugin: { type: 'object', additionalProperties: true },
    trace_id: { type: 'string' },
    now: { type: 'string' },
    input_cid: { type: 'string' },
    output: {},
    output_cid: { type: 'string' },
    duration_ms: { type: 'number' },
    cpu_us: { type: 'number' },
    heap_used_bytes: { type: 'number' },
    capability_calls: { type: 'array', items: { type: 'object', additionalProperties: true } },
  },
} as const;

export const runRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64 },
    ctx: { type: 'object', additionalProperties: true },
    priority: { type: 'string', enum: ['LOW', 'NORM', 'HIGH'] },
    force: { type: 'boolean', description: 'Enqueue even when the queue is full.' },
    dry_run: { type: 'boolean', description: 'Simulate effectful steps.' },
    breakpoints: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 100 }, description: 'Step names to pause before (debugger).' },
  },
} as const;

export const runIdRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['run_id'],
  properties: { run_id: { type: 'string', minLength: 1, maxLength: 200 }, reason: { type: 'string', maxLength: 500 } },
} as const;

/** `POST /api/links` and the `createLink` IPC method (main/runtime/links). */
export const linkRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['capsule'],
  properties: {
    capsule: { type: 'string', pattern: '^b3:[0-9a-f]{64}$' },
    ttl_ms: { type: 'integer', minimum: 1, maximum: 5 * 365 * 24 * 3600 * 1000 },
    label: { type: 'string', maxLength: 200 },
  },
} as const;

export const debugRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['run_id', 'action'],
  properties: {
    run_id: { type: 'string', minLength: 1, maxLength: 200 },
    action: { type: 'string', enum: ['continue', 'step', 'set'] },
    breakpoints: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 100 }, description: 'Step names to pause before (with `set`).' },
  },
} as const;

export const runsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    scenario_id: { type: 'string', maxLength: 64 },
    state: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'cancelled'] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
  },
} as const;

/** A DSSE envelope (signed receipts, tree heads, consent decisions); signatures are checked by the route, not here. */
export const envelopeSchema = {
  type: 'object',
  required: ['payloadType', 'payload', 'signatures'],
  properties: {
    payloadType: { type: 'string' },
    payload: { type: 'string' },
    signatures: { type: 'array', items: { type: 'object', required: ['sig'], properties: { keyid: { type: 'string' }, sig: { type: 'string' } } } },
  },
} as const;

// ---- entitlements (issue 14; shared by the HTTP routes in http/redeem.ts and the Electron IPC bridge) ----

/** `POST /api/redeem` and `/api/redeem/check`. */
export const redeemRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'venue'],
  properties: {
    code: { type: 'string', minLength: 1, maxLength: 4096, description: 'The scanned or typed code (`TS1:…`).' },
    venue: { type: 'string', minLength: 1, maxLength: 128, description: 'The venue this staff screen serves.' },
    amount: { type: 'integer', minimum: 1, maximum: 1_000_000_000, description: 'stored_value: minor units to take.' },
    screen: { type: 'string', minLength: 1, maxLength: 128, description: 'Which staff screen (shown in history).' },
  },
} as const;

export const undoRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 }, reason: { type: 'string', minLength: 1, maxLength: 500 } },
} as const;

export const redemptionsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    q: { type: 'string', maxLength: 200 },
    venue: { type: 'string', maxLength: 128 },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    before: { type: 'string', maxLength: 100 },
  },
} as const;

export const entitlementsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    session: { type: 'string', maxLength: 200 },
    user: { type: 'string', maxLength: 200 },
    state: { type: 'string', enum: ['active', 'used', 'expired', 'revoked'] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

export const setIssuingSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['paused'],
  properties: { paused: { type: 'boolean' }, reason: { type: 'string', minLength: 1, maxLength: 500 } },
} as const;
