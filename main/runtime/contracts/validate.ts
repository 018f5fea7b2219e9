/**
 * Input checks and error mapping shared by the runtime contracts of seed 002 (execution, state, artifacts).
 *
 * Contract: every check throws a {@link TesseraError} whose message names the offending field, so a caller
 * (an intent handler, the HTTP API) can fix its input without reading this code.
 */
import { Buffer } from 'node:buffer';
import { TesseraError } from '../../common/errors.js';
import type { ErrorCode } from '../../common/errors.js';

/** Ids of executions, tenants, sessions, solutions, artifacts, runs and state keys. */
export const CONTRACT_ID_PATTERN = '^[A-Za-z0-9_.:-]{1,128}$';
const CONTRACT_ID = new RegExp(CONTRACT_ID_PATTERN);

/**
 * Intent types (`weather.now`, `ingest_file`): dot-separated segments of letters, digits, `_` and `-`, at most
 * 128 characters — the shape of a topic segment list, so an intent type can appear in event topics.
 */
export const INTENT_TYPE_PATTERN = '^[A-Za-z0-9_-]+(?:\\.[A-Za-z0-9_-]+)*$';
const INTENT_TYPE = new RegExp(INTENT_TYPE_PATTERN);
export const MAX_INTENT_TYPE_LENGTH = 128;

/** Largest JSON document (UTF-8 bytes) stored for one metadata object, state value, parameters or result. */
export const MAX_CONTRACT_JSON_BYTES = 64 * 1024;

/**
 * Which existing error code each contract failure uses today. The proposed dedicated codes travel in
 * `details.reason` already, so clients can tell the failures apart before docs/errors.md gains them; adopting
 * a proposed code is a one-line change here.
 */
export const CONTRACT_ERROR_CODES = {
  /** Proposed: EXECUTION_NOT_FOUND (404). */
  EXECUTION_NOT_FOUND: 'EXECUTION_NOT_FOUND',
  /** Proposed: ARTIFACT_NOT_FOUND (404). */
  ARTIFACT_NOT_FOUND: 'ARTIFACT_NOT_FOUND',
  /** Proposed: EXECUTION_STATE_INVALID (409). */
  EXECUTION_STATE_INVALID: 'EXECUTION_STATE_INVALID',
  /** Proposed: ARTIFACT_STATE_INVALID (409). */
  ARTIFACT_STATE_INVALID: 'ARTIFACT_STATE_INVALID',
  /** Proposed: STATE_VERSION_CONFLICT (409, retryable after re-reading). */
  STATE_VERSION_CONFLICT: 'STATE_VERSION_CONFLICT',
} as const satisfies Record<string, ErrorCode>;

export type ContractFailure = keyof typeof CONTRACT_ERROR_CODES;

/** A contract failure: today's code from {@link CONTRACT_ERROR_CODES}, the proposed code in `details.reason`. */
export function contractError(reason: ContractFailure, message: string, details: Record<string, unknown> = {}): TesseraError {
  return new TesseraError(CONTRACT_ERROR_CODES[reason], message, { details: { reason, ...details } });
}

/** Throws VALIDATION_FAILED unless `value` is an id matching {@link CONTRACT_ID_PATTERN}. */
export function checkId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TesseraError('VALIDATION_FAILED', `${field} must be a non-empty string.`);
  if (!CONTRACT_ID.test(value)) {
    throw new TesseraError('VALIDATION_FAILED', `${field} must be 1–128 characters of letters, digits, ".", "_", ":" or "-".`);
  }
  return value;
}

/** Throws VALIDATION_FAILED unless `value` is an intent type (see {@link INTENT_TYPE_PATTERN}). */
export function checkIntentType(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TesseraError('VALIDATION_FAILED', `${field} must be a non-empty string.`);
  if (value.length > MAX_INTENT_TYPE_LENGTH || !INTENT_TYPE.test(value)) {
    throw new TesseraError('VALIDATION_FAILED', `${field} must be dot-separated names of letters, digits, "_" or "-", at most ${MAX_INTENT_TYPE_LENGTH} characters (e.g. "weather.now").`);
  }
  return value;
}

/** Throws VALIDATION_FAILED unless `value` is a string of 1..`max` characters. */
export function checkText(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0) throw new TesseraError('VALIDATION_FAILED', `${field} must be a non-empty string.`);
  if (value.length > max) throw new TesseraError('VALIDATION_FAILED', `${field} is longer than ${max} characters.`);
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Serialize `value` as JSON for storage. Throws VALIDATION_FAILED when it is not serializable — including
 * functions, symbols and non-finite numbers, which JSON would silently drop or null (or, with `object`, when it is
 * not a plain object) and PAYLOAD_TOO_LARGE when it is over `maxBytes` UTF-8 bytes.
 */
export function toContractJson(value: unknown, field: string, options: { object?: boolean; maxBytes?: number } = {}): string {
  const maxBytes = options.maxBytes ?? MAX_CONTRACT_JSON_BYTES;
  if (options.object && !isPlainObject(value)) throw new TesseraError('VALIDATION_FAILED', `${field} must be a plain JSON object.`);
  let json: string | undefined;
  try {
    // Values JSON would drop or turn into null without a word (functions, symbols, NaN, Infinity) are refused.
    json = JSON.stringify(value, (key, v: unknown) => {
      const what = key === '' ? 'the value' : `"${key}"`;
      if (typeof v === 'function' || typeof v === 'symbol') throw new TypeError(`${what} is a ${typeof v}`);
      if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError(`${what} is ${String(v)}`);
      return v;
    });
  } catch (cause) {
    throw new TesseraError('VALIDATION_FAILED', `${field} is not serializable as JSON: ${(cause as Error).message}`, { cause });
  }
  if (json === undefined) throw new TesseraError('VALIDATION_FAILED', `${field} is not a JSON value.`);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > maxBytes) throw new TesseraError('PAYLOAD_TOO_LARGE', `${field} is ${bytes} bytes as JSON; the limit is ${maxBytes}.`);
  return json;
}

/** Parse stored JSON and freeze it deeply, so values handed to handlers cannot be changed behind the store's back. */
export function frozenJson<T>(json: string): T {
  return deepFreeze(JSON.parse(json) as T);
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Throws VALIDATION_FAILED unless `value` is a whole number in [min, max]; returns `fallback` when undefined. */
export function checkInteger(value: unknown, field: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TesseraError('VALIDATION_FAILED', `${field} must be a whole number from ${min} to ${max}.`);
  }
  return value;
}
