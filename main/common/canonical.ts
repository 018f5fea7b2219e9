/**
 * Canonical bytes (DESIGN.md "Formats"): RFC 8785 JSON Canonicalization Scheme (JCS) applied to
 * NFC-normalized JSON. Content ids, signatures and receipts are computed over these bytes, so the output for a
 * given value must be identical on every machine, runtime and release: never change it, only add alongside.
 *
 * Tessera's one deviation from plain RFC 8785: every string value and every object key is normalized to
 * Unicode NFC *before* keys are sorted, so visually identical text typed on different keyboards gets the same
 * cid. Keys are then sorted by UTF-16 code units (RFC 8785 §3.2.3), numbers are written as ECMAScript writes
 * them (§3.2.2.3) and strings are escaped as `JSON.stringify` escapes them (§3.2.2.2).
 *
 * Pure module: shared by the runtime, the renderer and the sandbox.
 */
import { TesseraError } from './errors.js';

/**
 * Nesting limit: deeper input is refused with VALIDATION_FAILED instead of overflowing the call stack.
 * RFC 8785 §3.1 leaves implementation limits to the implementation; no Tessera format comes close to this.
 */
export const MAX_CANONICAL_DEPTH = 1000;

/** Matches a lone UTF-16 surrogate (with the `u` flag, paired surrogates form one code point and do not match). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
/**
 * Printable ASCII other than `"` and `\`: such a string is already NFC, holds no surrogate and is its own JSON
 * escape, so it is written as is (the common case: ids, cids, times, names — most of every receipt).
 */
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

type PathSegment = string | number;

/**
 * The RFC 8785 canonical JSON text of `value`, over NFC-normalized strings and keys.
 *
 * Accepts only what JSON can represent exactly: `null`, booleans, finite numbers, strings that are valid
 * Unicode (no lone surrogates, as I-JSON requires), arrays, and plain objects (prototype `Object.prototype` or
 * `null`) with string keys. A shared sub-object may appear more than once; a cycle may not.
 *
 * @throws TesseraError VALIDATION_FAILED naming the JSON path of the first offending value (`$.a[2].b`) for
 *   NaN or ±Infinity, `undefined`, functions, symbols (as values or keys), BigInt, cycles, non-plain objects
 *   (Date, Map, Set, RegExp, typed arrays, boxed primitives, class instances), array holes, lone surrogates,
 *   two keys that become equal after NFC normalization, and nesting deeper than {@link MAX_CANONICAL_DEPTH}.
 */
export function canonicalize(value: unknown): string {
  const out: Output = { text: '' };
  write(value, out, [], new Set());
  return out.text;
}

/** The text written so far (string concatenation: V8 builds it as a rope, cheaper than an array join). */
interface Output {
  text: string;
}

/** A string or key as canonical JSON text: NFC-normalized and escaped as JSON.stringify escapes. */
function quote(text: string, path: PathSegment[]): string {
  return PLAIN_ASCII.test(text) ? `"${text}"` : JSON.stringify(nfc(text, path));
}

/** The UTF-8 encoding of {@link canonicalize}; what cids are computed over and what gets signed. */
export function canonicalBytes(value: unknown): Uint8Array {
  return UTF8.encode(canonicalize(value));
}

const UTF8 = new TextEncoder();

function write(value: unknown, out: Output, path: PathSegment[], ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
      out.text += quote(value, path);
      return;
    case 'number':
      // RFC 8785 §3.2.2.3: ECMAScript Number-to-String; JSON.stringify also maps -0 to "0".
      if (!Number.isFinite(value)) fail(path, `${String(value)} is not a JSON number`);
      out.text += JSON.stringify(value);
      return;
    case 'boolean':
      out.text += value ? 'true' : 'false';
      return;
    case 'object':
      if (value === null) {
        out.text += 'null';
        return;
      }
      break;
    case 'bigint':
      fail(path, 'a BigInt is not a JSON number; convert it to a string or a safe integer');
      break;
    default:
      fail(path, `${value === undefined ? 'undefined' : `a ${typeof value}`} is not JSON`);
  }

  const object = value as object;
  if (ancestors.has(object)) fail(path, 'the value contains a cycle');
  if (ancestors.size >= MAX_CANONICAL_DEPTH) fail(path, `nesting is deeper than ${MAX_CANONICAL_DEPTH} levels`);
  ancestors.add(object);

  if (Array.isArray(object)) {
    out.text += '[';
    for (let i = 0; i < object.length; i++) {
      if (i > 0) out.text += ',';
      path.push(i);
      if (!(i in object)) fail(path, 'arrays must not have holes');
      write(object[i], out, path, ancestors);
      path.pop();
    }
    out.text += ']';
  } else {
    const proto: unknown = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const name = (object as { constructor?: { name?: unknown } }).constructor?.name;
      fail(path, `a ${typeof name === 'string' && name !== '' ? name : 'non-plain object'} is not JSON; use a plain object`);
    }
    if (Object.getOwnPropertySymbols(object).length > 0) fail(path, 'object keys must be strings, not symbols');

    const own = Object.keys(object);
    out.text += '{';
    if (allPlainAscii(own)) {
      // Plain ASCII keys are their own NFC form: distinct keys stay distinct, and each is its own JSON text.
      sortCodeUnits(own);
      for (let i = 0; i < own.length; i++) {
        const key = own[i]!;
        out.text += i > 0 ? `,"${key}":` : `"${key}":`;
        path.push(key);
        write((object as Record<string, unknown>)[key], out, path, ancestors);
        path.pop();
      }
    } else {
      // Normalize keys first: sorting and duplicate detection both apply to the NFC form.
      const byKey = new Map<string, string>();
      for (const original of own) {
        path.push(original);
        const normalized = nfc(original, path, 'key');
        const clash = byKey.get(normalized);
        if (clash !== undefined) {
          path.pop();
          fail(path, `keys ${JSON.stringify(clash)} and ${JSON.stringify(original)} are the same after NFC normalization`);
        }
        byKey.set(normalized, original);
        path.pop();
      }
      const keys = [...byKey.keys()].sort(compareCodeUnits);
      keys.forEach((key, i) => {
        const original = byKey.get(key)!;
        out.text += `${i > 0 ? ',' : ''}${JSON.stringify(key)}:`;
        path.push(original);
        write((object as Record<string, unknown>)[original], out, path, ancestors);
        path.pop();
      });
    }
    out.text += '}';
  }
  ancestors.delete(object);
}

function nfc(text: string, path: PathSegment[], what = 'string'): string {
  if (LONE_SURROGATE.test(text)) fail(path, `the ${what} contains a lone UTF-16 surrogate, which is not valid Unicode`);
  return text.normalize('NFC');
}

function allPlainAscii(keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) if (!PLAIN_ASCII.test(keys[i]!)) return false;
  return true;
}

/**
 * Sorts `keys` in place by {@link compareCodeUnits}: by insertion for the few keys of most objects (no work array,
 * unlike Array.prototype.sort, which allocated ~40 KB per receipt run), by `sort` for many.
 */
function sortCodeUnits(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort(compareCodeUnits);
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
}

/** RFC 8785 §3.2.3: compare as arrays of UTF-16 code units, which is what JS relational operators on strings do. */
function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function fail(path: PathSegment[], problem: string): never {
  throw new TesseraError('VALIDATION_FAILED', `Cannot canonicalize ${formatPath(path)}: ${problem}.`, { details: { path: formatPath(path) } });
}

/** `$`, `$.a[2].b`, `$["key with spaces"]`: the JSONPath-like location used in error messages. */
function formatPath(path: readonly PathSegment[]): string {
  let text = '$';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) text += `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}
