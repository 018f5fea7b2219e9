/**
 * The one list of Tessera error codes (STYLE.md §4). Every code here is documented in docs/errors.md and a
 * test checks both directions. Codes are stable: they travel in the HTTP error shape
 * `{"error":{"code","message"}}`, in CLI messages, over IPC and in the journal. Never rename one; add new ones.
 *
 * Pure module: shared by the runtime, the renderer and (later) the sandbox.
 */
export const ERROR_CODES = {
  UNAUTHORIZED: { status: 401, retryable: false, summary: 'The request has no valid bearer token.' },
  FORBIDDEN: { status: 403, retryable: false, summary: 'The caller is known but may not do this.' },
  VALIDATION_FAILED: { status: 400, retryable: false, summary: 'The input does not match the schema of the route, command or message.' },
  TOPIC_INVALID: { status: 400, retryable: false, summary: 'An event topic or topic pattern is malformed.' },
  TRACE_ID_INVALID: { status: 400, retryable: false, summary: 'A trace id is malformed.' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, summary: 'A body or event payload is over its size limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, summary: 'The body is not JSON.' },
  NOT_FOUND: { status: 404, retryable: false, summary: 'No route or resource by that name.' },
  METHOD_NOT_ALLOWED: { status: 405, retryable: false, summary: 'The route exists but not with that method.' },
  NOT_READY: { status: 503, retryable: true, summary: 'The runtime is starting or stopping; try again shortly.' },
  STORE_UNAVAILABLE: { status: 503, retryable: true, summary: 'The database could not be opened or is closed.' },
  STORE_MIGRATION_FAILED: { status: 500, retryable: false, summary: 'A schema migration failed; the database was left at its previous version.' },
  STORE_TOO_NEW: { status: 500, retryable: false, summary: 'The database was written by a newer Tessera than this one.' },
  CONFIG_INVALID: { status: 400, retryable: false, summary: 'A command-line flag or environment variable has an invalid value.' },
  DATA_DIR_UNUSABLE: { status: 500, retryable: false, summary: 'The data folder cannot be created, read or written.' },
  PORT_IN_USE: { status: 500, retryable: false, summary: 'The HTTP port is taken by another process.' },
  IPC_SENDER_REJECTED: { status: 403, retryable: false, summary: 'An IPC message came from a frame that is not the Tessera UI.' },
  SIGNATURE_INVALID: { status: 400, retryable: false, summary: 'A DSSE envelope is malformed or its signature does not verify.' },
  KEY_UNKNOWN: { status: 403, retryable: false, summary: 'Signed by a key that is not in the trust store.' },
  KEY_REVOKED: { status: 403, retryable: false, summary: 'Signed by a key that the trust store has revoked.' },
  KEY_FILE_INVALID: { status: 400, retryable: false, summary: 'A key file cannot be read or is not an Ed25519 key in the expected format.' },
  PLUGIN_NOT_FOUND: { status: 404, retryable: false, summary: 'No plugin by that name, version or folder.' },
  PLUGIN_MANIFEST_INVALID: { status: 400, retryable: false, summary: 'plugin.json is missing or does not match the manifest schema.' },
  PLUGIN_UNSIGNED: { status: 400, retryable: false, summary: 'The plugin has no plugin.sig.' },
  PLUGIN_TAMPERED: { status: 400, retryable: false, summary: "A plugin file no longer matches the content id its signed manifest records." },
  CAPABILITY_NOT_GRANTABLE: { status: 403, retryable: false, summary: "The plugin requests a capability the runtime's trust policy does not grant it." },
  CAPABILITY_DENIED: { status: 403, retryable: false, summary: 'A capability call was refused: not granted, no valid permit, or outside its allowlist.' },
  PERMIT_INVALID: { status: 403, retryable: false, summary: 'A permit is missing, expired, bound to another input, or not signed by a trusted key.' },
  PLUGIN_FAILED: { status: 422, retryable: false, summary: 'The plugin threw an error or used something the sandbox forbids.' },
  PLUGIN_OUTPUT_INVALID: { status: 422, retryable: false, summary: "The plugin's output is not JSON, is too large, or does not match its kind's schema." },
  PLUGIN_TIMEOUT: { status: 422, retryable: false, summary: 'The plugin ran past its CPU time limit or its promise did not settle before the deadline.' },
  PLUGIN_MEMORY_EXCEEDED: { status: 422, retryable: false, summary: 'The plugin went over its memory limit; its isolate was disposed.' },
  SANDBOX_UNAVAILABLE: { status: 503, retryable: true, summary: 'The sandbox host process is down or restarting; calls in flight failed.' },
  SCENARIO_NOT_FOUND: { status: 404, retryable: false, summary: 'No scenario by that id is registered.' },
  SCENARIO_INVALID: { status: 400, retryable: false, summary: 'A scenario file does not match the scenario schema; the message points at the line and field.' },
  RUN_NOT_FOUND: { status: 404, retryable: false, summary: 'No scenario run by that id.' },
  QUEUE_FULL: { status: 429, retryable: true, summary: 'The run queue is full; retry later or pass force.' },
  STEP_FAILED: { status: 422, retryable: false, summary: 'A scenario step failed after its retries; the run failed and compensations ran.' },
  STEP_TIMEOUT: { status: 422, retryable: true, summary: 'A scenario step or run went past its timeout.' },
  RUN_CANCELLED: { status: 409, retryable: false, summary: 'The run was cancelled.' },
  EXECUTION_NOT_FOUND: { status: 404, retryable: false, summary: 'No execution by that id.' },
  EXECUTION_STATE_INVALID: { status: 409, retryable: false, summary: 'The execution cannot move to that state from the one it is in.' },
  ARTIFACT_NOT_FOUND: { status: 404, retryable: false, summary: 'No artifact by that id.' },
  ARTIFACT_STATE_INVALID: { status: 409, retryable: false, summary: 'The artifact cannot move to that state from the one it is in.' },
  STATE_VERSION_CONFLICT: { status: 409, retryable: true, summary: 'The state key changed since it was read; read it again and retry.' },
  QUOTA_EXCEEDED: { status: 429, retryable: false, summary: "A daily quota is used up for this node or user; the message says when it resets." },
  SECRET_UNREADABLE: { status: 500, retryable: false, summary: 'A stored secret cannot be decrypted: its ciphertext was altered or the key file is not the one it was written with.' },
  INTERNAL: { status: 500, retryable: false, summary: 'An unexpected fault; the runtime kept running and logged it.' },
} as const satisfies Record<string, { status: number; retryable: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The serialized form of an error wherever it crosses a boundary (HTTP, IPC, journal, sandbox). */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  retryable?: boolean;
  details?: unknown;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

/**
 * An error with a stable code. Identified by `name` and `code`, not `instanceof`, because it crosses realms
 * (STYLE.md §5): use {@link isTesseraError}.
 */
export class TesseraError extends Error {
  override readonly name = 'TesseraError';
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { details?: unknown; cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function isTesseraError(err: unknown): err is TesseraError {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'TesseraError' && isErrorCode((err as { code?: unknown }).code);
}

/** Serialize any thrown value. Unknown faults become INTERNAL without leaking their message or stack. */
export function toErrorData(err: unknown): ErrorData {
  if (isTesseraError(err)) {
    const data: ErrorData = { code: err.code, message: err.message };
    if (err.retryable !== ERROR_CODES[err.code].retryable) data.retryable = err.retryable;
    if (err.details !== undefined) data.details = err.details;
    return data;
  }
  return { code: 'INTERNAL', message: 'Internal error; see the runtime log.' };
}

/** Restore an error serialized by {@link toErrorData}; malformed input becomes INTERNAL. */
export function fromErrorData(data: unknown): TesseraError {
  if (typeof data === 'object' && data !== null) {
    const { code, message, retryable, details } = data as Record<string, unknown>;
    if (isErrorCode(code) && typeof message === 'string') {
      return new TesseraError(code, message, { details, ...(typeof retryable === 'boolean' ? { retryable } : {}) });
    }
  }
  return new TesseraError('INTERNAL', 'Malformed error data received.');
}
