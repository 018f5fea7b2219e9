/**
 * The one reading of JSON text that crosses a boundary (issue 13 §2.13): every JSON body of the HTTP API, the
 * product view of `/v1/run`, and values arriving over IPC follow the same rules.
 *
 * - The bytes are UTF-8; invalid UTF-8 is refused, never replaced with U+FFFD behind the sender's back.
 * - Nesting is at most {@link JSON_MAX_DEPTH} levels, counted before `JSON.parse` so that no input can exhaust a
 *   stack later (canonicalization, schema validation and the journal recurse).
 * - A key given twice in one object is refused: `JSON.parse` would silently keep the last value (RFC 8259 §4),
 *   and a sender and Tessera must not read two different documents from the same bytes.
 *
 * Pure: no Node APIs (TextDecoder is a web standard).
 */
export const JSON_MAX_DEPTH = 32;

export type JsonTextProblem =
  | { kind: 'utf8'; message: string }
  | { kind: 'depth'; at: number; message: string }
  | { kind: 'duplicate'; key: string; at: number; message: string }
  | { kind: 'syntax'; message: string };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** The text of UTF-8 bytes, or the problem with them. */
export function decodeUtf8(bytes: Uint8Array): string | JsonTextProblem {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return { kind: 'utf8', message: 'The body is not valid UTF-8.' };
  }
}

/**
 * One pass over the text before `JSON.parse`: the first nesting or duplicate-key problem, if any. Malformed text
 * passes (JSON.parse names that error).
 */
export function jsonStructureProblem(text: string, maxDepth = JSON_MAX_DEPTH): JsonTextProblem | undefined {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const open: Array<Set<string> | null> = [];
  let inString = false;
  let escaped = false;
  let keyStart = -1;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) {
        escaped = true;
        i++;
      } else if (c === 0x22) {
        inString = false;
        if (keyStart >= 0) {
          const problem = keyProblem(text, keyStart, i, escaped, open[open.length - 1]!);
          if (problem) return problem;
        }
        keyStart = -1;
      }
    } else if (c === 0x22) {
      inString = true;
      escaped = false;
      if (expectKey) keyStart = i;
      expectKey = false;
    } else if (c === 0x7b || c === 0x5b) {
      if (open.length >= maxDepth) return { kind: 'depth', at: i, message: `The JSON nests deeper than ${maxDepth} levels (at character ${i}); flatten it.` };
      open.push(c === 0x7b ? new Set() : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      open.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = open.length > 0 && open[open.length - 1] !== null;
    }
  }
  return undefined;
}

function keyProblem(text: string, start: number, end: number, escaped: boolean, seen: Set<string> | undefined): JsonTextProblem | undefined {
  if (!seen) return undefined;
  let key: string;
  try {
    key = escaped ? (JSON.parse(text.slice(start, end + 1)) as string) : text.slice(start + 1, end);
  } catch {
    return undefined;
  }
  if (seen.has(key)) return { kind: 'duplicate', key, at: start, message: `The key ${JSON.stringify(key)} appears twice in one object (at character ${start}); send each key once.` };
  seen.add(key);
  return undefined;
}

/** Parses JSON text by the rules above: the value, or the first problem. */
export function parseJsonText(text: string, maxDepth = JSON_MAX_DEPTH): { value: unknown } | { problem: JsonTextProblem } {
  const problem = jsonStructureProblem(text, maxDepth);
  if (problem) return { problem };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (err) {
    return { problem: { kind: 'syntax', message: `The body is not valid JSON (${jsonSyntaxError(err)}).` } };
  }
}

/**
 * What JSON.parse said, without the excerpt of the text V8 quotes in some messages (`Unexpected token 'o',
 * ..."{"value": other-secr"... is not valid JSON`): a body may hold a secret, a PIN or an enrollment code, and the
 * error goes back to whoever sent it and into logs.
 */
export function jsonSyntaxError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // Node 20 quotes the text in messages ending "… is not valid JSON"; the others end "in JSON at position N".
  return message.includes('is not valid JSON') ? 'unexpected character' : message;
}

/**
 * How deep a value already parsed nests (for values that arrive as objects, e.g. over IPC), counted without
 * recursion; stops counting past `limit`.
 */
export function valueDepthExceeds(value: unknown, limit = JSON_MAX_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
