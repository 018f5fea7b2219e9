/**
 * The device's one HTTP client for the cloud (issue 16; protocol in common/cloud.ts): every request but the two
 * public enrollment ones is signed with the device key ({@link requestSigningBytes} over method, path with query,
 * time and the SHA-256 of the exact body bytes sent). Timeouts on every call; failures come back as TesseraErrors
 * with the cloud's own code (LOG_GAP, DEVICE_REVOKED…) or CLOUD_UNREACHABLE when nothing answered.
 */
import { createHash } from 'node:crypto';
import { DEVICE_HEADERS, requestSigningBytes } from '../../common/cloud.js';
import { toBase64 } from '../../common/dsse.js';
import { TesseraError, isErrorCode } from '../../common/errors.js';
import type { SigningKey } from '../keys/index.js';

export interface CloudClientOptions {
  /** The cloud's origin, `http(s)://host:port` (no trailing slash needed). */
  url: string;
  deviceKey: SigningKey;
  clock?: () => number;
  /** Per request, ms (default 15 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Aborts every request in flight and to come (the runtime is stopping). */
  signal?: AbortSignal;
}

export interface CloudClient {
  readonly url: string;
  /** A device-signed request. @throws TesseraError with the cloud's code, or CLOUD_UNREACHABLE. */
  signed<T>(method: 'GET' | 'POST', path: string, body?: unknown, options?: { timeoutMs?: number }): Promise<T>;
  /** An unsigned request (the public enrollment routes). */
  open<T>(method: 'GET' | 'POST', path: string, body?: unknown, options?: { timeoutMs?: number }): Promise<T>;
}

export function createCloudClient(options: CloudClientOptions): CloudClient {
  const url = options.url.replace(/\/+$/, '');
  const clock = options.clock ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  const call = async <T>(sign: boolean, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<T> => {
    const bytes = body === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (sign) {
      const time = new Date(clock()).toISOString();
      const digest = createHash('sha256').update(bytes).digest('hex');
      headers[DEVICE_HEADERS.device] = options.deviceKey.keyid;
      headers[DEVICE_HEADERS.time] = time;
      headers[DEVICE_HEADERS.signature] = toBase64(options.deviceKey.sign(requestSigningBytes(method, path, time, digest)));
    }
    let res: Response;
    try {
      res = await doFetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body: bytes } : {}), signal: options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs) });
    } catch (cause) {
      const e = cause as Error;
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e as { cause?: { code?: string } }).cause?.code ?? e.message;
      throw new TesseraError('CLOUD_UNREACHABLE', `The cloud at ${url} could not be reached (${why}); the device goes on offline and retries.`, { cause });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (cause) {
      throw new TesseraError('CLOUD_UNREACHABLE', `The cloud at ${url} broke off its answer to ${method} ${path}.`, { cause });
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok) return parsed as T;
    const err = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
    if (err?.code && isErrorCode(err.code)) {
      throw new TesseraError(err.code, err.message ?? `${method} ${path} failed.`, { ...(err.details ? { details: err.details } : {}) });
    }
    throw new TesseraError(res.status >= 500 ? 'CLOUD_UNREACHABLE' : 'VALIDATION_FAILED', `The cloud answered ${res.status} to ${method} ${path}: ${text.slice(0, 200)}`);
  };
  const timeout = (o?: { timeoutMs?: number }) => o?.timeoutMs ?? options.timeoutMs ?? 15_000;
  return {
    url,
    signed: (method, path, body, o) => call(true, method, path, body, timeout(o)),
    open: (method, path, body, o) => call(false, method, path, body, timeout(o)),
  };
}

/**
 * Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"): the delay before retry
 * `attempt` (1 = the first retry) is uniform in [0, min(cap, base · 2^(attempt−1))], so a fleet that lost the cloud
 * together does not come back together.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random, baseMs = 1_000, capMs = 5 * 60_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.floor(random() * ceiling);
}
