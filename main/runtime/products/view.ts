/**
 * The JSON view parser (seed 004 §2–§3 "ai-json-nrf1 view … validação forte"): the body of `POST /v1/run`
 * as text in, a normalized view or one stable error code out. Never throws anything else, whatever the bytes.
 *
 * Checks, in this order, each with its own code (docs/errors.md):
 * 1. size: at most {@link VIEW_LIMITS}.maxBytes UTF-8 bytes → VIEW_TOO_LARGE;
 * 2. nesting: at most maxDepth levels, counted before parsing so no input can exhaust the stack → VIEW_TOO_DEEP;
 * 3. JSON syntax → VIEW_INVALID;
 * 4. values: numbers finite and, when integral, within ±(2^53−1) (larger ones lost precision in parsing);
 *    strings valid Unicode (no lone surrogates) and at most maxString characters; at most maxKeys keys per
 *    object; no `__proto__`, `constructor` or `prototype` keys; keys distinct after NFC → VIEW_INVALID;
 * 5. shape: a JSON object with `hdr: {src, nonce, exp?}` → VIEW_INVALID.
 *
 * Every string and key is normalized to NFC, so NFC-equivalent inputs give equal views (and equal cids).
 */
import { TesseraError } from '../../common/errors.js';
import type { JsonObject, JsonValue } from '../../common/receipt.js';
import { JSON_MAX_DEPTH, jsonStructureProblem, jsonSyntaxError } from '../../common/json-text.js';

export const VIEW_LIMITS = {
  /** Largest body, UTF-8 bytes. */
  maxBytes: 64 * 1024,
  /** Deepest nesting of arrays and objects (the top-level object is depth 1). */
  maxDepth: JSON_MAX_DEPTH,
  /** Longest string or key, in UTF-16 code units. */
  maxString: 8 * 1024,
  /** Most keys in one object and items in one array. */
  maxKeys: 1024,
} as const;

/** `hdr` of a view: who sent it, a single-use nonce, and an optional expiry. */
export interface ViewHeader {
  /** 1–200 characters: the sender (replay protection is per `(src, nonce)`). */
  src: string;
  /** 8–128 characters of `[A-Za-z0-9._:-]`. */
  nonce: string;
  /** ISO-8601 time after which the request must not be decided, or null. */
  exp: string | null;
}

export interface ParsedView {
  hdr: ViewHeader;
  /** The view without `hdr`, NFC-normalized. */
  view: JsonObject;
}

const NONCE = /^[A-Za-z0-9._:-]{8,128}$/;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const encoder = new TextEncoder();

/**
 * Parses a `POST /v1/run` body.
 * @throws TesseraError VIEW_TOO_LARGE, VIEW_TOO_DEEP or VIEW_INVALID with `details.path` where it applies.
 */
export function parseView(text: string): ParsedView {
  if (typeof text !== 'string') throw invalid('$', 'the body must be JSON text');
  // Length in UTF-16 units bounds the UTF-8 length from below (×1) and above (×3): count bytes only when needed.
  if (text.length > VIEW_LIMITS.maxBytes || (text.length * 3 > VIEW_LIMITS.maxBytes && encoder.encode(text).length > VIEW_LIMITS.maxBytes)) {
    throw new TesseraError('VIEW_TOO_LARGE', `The view is over ${VIEW_LIMITS.maxBytes} bytes of UTF-8; send a smaller view (large content goes by cid, e.g. ctx.body_cid).`);
  }
  checkStructure(text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid('$', `the body is not valid JSON (${jsonSyntaxError(err)})`);
  }
  const normalized = normalize(value, '$');
  if (normalized === null || typeof normalized !== 'object' || Array.isArray(normalized)) throw invalid('$', 'the view must be a JSON object');
  const { hdr, ...view } = normalized;
  return { hdr: header(hdr), view };
}

function header(hdr: JsonValue | undefined): ViewHeader {
  if (hdr === undefined) throw invalid('$.hdr', 'is required: {"src": sender, "nonce": single-use id, "exp"?: ISO-8601}');
  if (hdr === null || typeof hdr !== 'object' || Array.isArray(hdr)) throw invalid('$.hdr', 'must be an object {src, nonce, exp?}');
  for (const key of Object.keys(hdr)) if (key !== 'src' && key !== 'nonce' && key !== 'exp') throw invalid(`$.hdr.${key}`, 'is not a header field (src, nonce, exp)');
  const { src, nonce, exp } = hdr;
  if (typeof src !== 'string' || src.length < 1 || src.length > 200) throw invalid('$.hdr.src', 'must be a string of 1–200 characters naming the sender');
  if (typeof nonce !== 'string' || !NONCE.test(nonce)) throw invalid('$.hdr.nonce', 'must be 8–128 characters of letters, digits, ".", "_", ":" or "-", used once per sender');
  if (exp !== undefined && exp !== null && (typeof exp !== 'string' || !isCalendarTime(exp))) {
    throw invalid('$.hdr.exp', 'must be an ISO-8601 time with a zone, e.g. 2026-01-01T00:00:00Z');
  }
  return { src, nonce, exp: typeof exp === 'string' ? new Date(Date.parse(exp)).toISOString() : null };
}

/**
 * An ISO-8601 time with a zone whose date and time exist: Date.parse alone rolls 2099-02-30 over to March 2 and
 * 24:00 over to the next day, and a request's expiry must be the time its sender wrote.
 */
function isCalendarTime(text: string): boolean {
  const m = ISO.exec(text);
  if (!m || !Number.isFinite(Date.parse(text))) return false;
  const [year, month, day, hour, minute] = [text.slice(0, 4), text.slice(5, 7), text.slice(8, 10), text.slice(11, 13), text.slice(14, 16)].map(Number) as [number, number, number, number, number];
  const second = m[1] === undefined ? 0 : Number(m[1].slice(1, 3));
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59;
}

/** The one structure rule of JSON bodies (main/common/json-text.ts), in the view's own codes. */
function checkStructure(text: string): void {
  const problem = jsonStructureProblem(text, VIEW_LIMITS.maxDepth);
  if (problem?.kind === 'depth') throw new TesseraError('VIEW_TOO_DEEP', `The view nests deeper than ${VIEW_LIMITS.maxDepth} levels (at character ${problem.at}); flatten it.`);
  if (problem?.kind === 'duplicate') throw invalid('$', `the key ${JSON.stringify(problem.key)} appears twice in one object (at character ${problem.at}); send each key once`);
}

function normalize(value: unknown, path: string): JsonValue {
  switch (typeof value) {
    case 'string':
      return text(value, path);
    case 'number':
      if (!Number.isFinite(value)) throw invalid(path, 'the number is too large to represent (not finite)');
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw invalid(path, 'the integer is outside ±(2^53−1) and lost precision; send it as a string');
      return value;
    case 'boolean':
      return value;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) {
        if (value.length > VIEW_LIMITS.maxKeys) throw invalid(path, `the array has ${value.length} items; at most ${VIEW_LIMITS.maxKeys}`);
        return value.map((item, i) => normalize(item, `${path}[${i}]`));
      }
      const keys = Object.keys(value);
      if (keys.length > VIEW_LIMITS.maxKeys) throw invalid(path, `the object has ${keys.length} keys; at most ${VIEW_LIMITS.maxKeys}`);
      const out: JsonObject = {};
      for (const key of keys) {
        // The notation of the header checks and of canonical.ts: $.a.b for names, $["a b"] for other keys.
        const at = IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
        const nfcKey = text(key, at);
        if (FORBIDDEN_KEYS.has(nfcKey)) throw invalid(at, `the key "${nfcKey}" is refused`);
        if (Object.prototype.hasOwnProperty.call(out, nfcKey)) throw invalid(at, 'two keys are the same after Unicode NFC normalization');
        out[nfcKey] = normalize((value as Record<string, unknown>)[key], at);
      }
      return out;
    }
    default:
      throw invalid(path, 'not a JSON value');
  }
}

function text(value: string, path: string): string {
  if (value.length > VIEW_LIMITS.maxString) throw invalid(path, `the string has ${value.length} characters; at most ${VIEW_LIMITS.maxString}`);
  if (LONE_SURROGATE.test(value)) throw invalid(path, 'the string contains a lone UTF-16 surrogate, which is not valid Unicode');
  return value.normalize('NFC');
}

function invalid(path: string, problem: string): TesseraError {
  return new TesseraError('VIEW_INVALID', `${path}: ${problem}.`, { details: { path } });
}
