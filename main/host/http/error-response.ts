/**
 * The one error shape over HTTP (`{"error":{"code","message"}}`, STYLE.md §4): how any error a route or Fastify
 * throws maps to a status and that body. Shared by the device's API server and the cloud (main/cloud).
 */
import type { FastifyError } from 'fastify';
import { LIMITS } from '../../common/api.js';
import { ERROR_CODES, isTesseraError, toErrorData } from '../../common/errors.js';
import type { ErrorCode } from '../../common/errors.js';

/** Map any error to the status and body of the one error shape. */
export function errorResponse(err: unknown, bodyLimit: number = LIMITS.maxBodyBytes, consumes: readonly string[] = ['application/json']): { status: number; body: { error: ReturnType<typeof toErrorData> } } {
  if (isTesseraError(err)) return { status: err.status, body: { error: toErrorData(err) } };
  // A full disk is the operator's to fix, not a bug: its own code, and the write it stopped was rolled back.
  if ((err as { code?: unknown }).code === 'SQLITE_FULL') {
    return { status: ERROR_CODES.STORE_FULL.status, body: { error: { code: 'STORE_FULL', message: 'The disk holding the database is full; nothing of this request was written. Free some space and retry.', retryable: true } } };
  }
  // Another process holding the write lock past busy_timeout: the statement failed whole; a retry will do.
  const sqliteCode = (err as { code?: unknown }).code;
  if (typeof sqliteCode === 'string' && (sqliteCode.startsWith('SQLITE_BUSY') || sqliteCode.startsWith('SQLITE_LOCKED'))) {
    return { status: ERROR_CODES.STORE_BUSY.status, body: { error: { code: 'STORE_BUSY', message: 'Another process holds the database\'s write lock; nothing of this request was written. Retry shortly.', retryable: true } } };
  }
  const e = err as Partial<FastifyError> & { validation?: unknown; validationContext?: string };
  let code: ErrorCode | undefined;
  let message = e.message ?? 'Request failed.';
  if (e.validation) {
    code = 'VALIDATION_FAILED';
    message = e.message ?? 'Input does not match the schema.';
  } else if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    code = 'PAYLOAD_TOO_LARGE';
    message = `The body is over ${bodyLimit} bytes, the limit of this route.`;
  } else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    code = 'UNSUPPORTED_MEDIA_TYPE';
    message = `Send the body as ${consumes.join(' or ')}.`;
  } else if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || (e.statusCode === 400 && e.name === 'SyntaxError')) {
    code = 'VALIDATION_FAILED';
    message = e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'The body is empty; send a JSON document.' : 'The body is not valid JSON.';
  } else if (e.statusCode === 404) {
    code = 'NOT_FOUND';
  } else if (e.statusCode === 405) {
    code = 'METHOD_NOT_ALLOWED';
  } else if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    code = 'VALIDATION_FAILED';
  }
  if (!code) return { status: 500, body: { error: toErrorData(err) } };
  return { status: ERROR_CODES[code].status, body: { error: { code, message } } };
}
