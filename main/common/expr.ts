/**
 * The scenario expression language (seed 001 §5 "expression-eval на JSON-пути", §11 "безопасные выражения
 * `${expr}`, доступ к `ctx`, `bag`"): a small, total, side-effect-free language evaluated by a tree walker.
 * No `eval`, no `Function`, no host objects: an expression sees only the own data properties of the scope it is
 * given, and can call only the whitelisted functions below.
 *
 * Grammar (lowest precedence first):
 *   expr     := or ('?' expr ':' expr)?
 *   or       := and (('||' | '??') and)*          (`??` and `||` share a level; parenthesize to mix them)
 *   and      := equality ('&&' equality)*
 *   equality := relation (('==' | '!=') relation)*
 *   relation := sum (('<' | '<=' | '>' | '>=' | 'in') sum)*
 *   sum      := product (('+' | '-') product)*
 *   product  := unary (('*' | '/' | '%') unary)*
 *   unary    := ('!' | '-') unary | postfix
 *   postfix  := primary ('.' name | '[' expr ']')*
 *   primary  := number | 'string' | "string" | true | false | null | '[' list ']' | '{' key ':' expr, … '}'
 *             | name | fn '(' args ')' | '(' expr ')'
 * Names are `[A-Za-z_$][A-Za-z0-9_$]*`, so `$` is a name: trigger filters bind the event to it and write
 * `$.payload.city == "Berlin"`.
 *
 * Semantics, chosen so that scenario authors are not surprised and a typo is an error rather than a silent false:
 * - An unknown root name is an error; a missing member is `undefined`; a member of `null`/`undefined` is
 *   `undefined` (navigation is always "optional", like JSONPath finding nothing).
 * - `__proto__`, `constructor` and `prototype` are never valid member names or object-literal keys. Getters are
 *   never invoked (only data properties are read) and a function found in the scope is an error.
 * - `==`/`!=` never coerce: primitives compare with `===`; arrays and plain objects compare deeply (same keys,
 *   deep-equal values, array order matters). So `1 == "1"` is false and `[1, {a: 2}] == [1, {a: 2}]` is true.
 * - `<`, `<=`, `>`, `>=` compare two numbers or two strings; anything else is an error.
 * - `+` adds numbers, concatenates when either side is a string (the other a string or number), concatenates
 *   two arrays; `- * / %` take numbers; dividing by zero is an error (JSON has no Infinity).
 * - `&&`, `||`, `??`, `?:` short-circuit and yield an operand, as in JavaScript, with {@link isTruthy}.
 * - `x in list` is deep membership, `k in obj` an own key, `s in str` a substring.
 *
 * Secrets ({@link secret}) stay wrapped through the evaluation: a value computed from a secret is a secret
 * (comparisons and other boolean results excepted), so it can be passed on to a tool but never lands in a log:
 * see {@link redact} and {@link interpolate}.
 *
 * Limits: {@link MAX_EXPR_LENGTH} characters, {@link MAX_EXPR_DEPTH} levels of nesting,
 * {@link MAX_EXPR_STEPS} evaluation steps (functions over data pay per element) — every evaluation terminates.
 *
 * Pure module: shared by the runtime and the renderer.
 */
import { TesseraError } from './errors.js';

export const MAX_EXPR_LENGTH = 2000;
export const MAX_EXPR_DEPTH = 64;
export const MAX_EXPR_STEPS = 100_000;
/** Nesting limit when walking data (deep equality, redaction, stringification). */
const MAX_DATA_DEPTH = 1000;

const FORBIDDEN_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

// ---------------------------------------------------------------------------------------------------------------
// Errors

export interface ExprErrorDetails {
  expression: string;
  /** 1-based column in `expression`. */
  column: number;
  /** The message without the position and the expression. */
  reason: string;
}

/**
 * A parse or evaluation error. Its code is VALIDATION_FAILED and its details are {@link ExprErrorDetails}; like
 * every TesseraError it is identified by name and code, not `instanceof` (use {@link isExprError}).
 */
export class ExprError extends TesseraError {
  declare readonly details: ExprErrorDetails;
  constructor(expression: string, column: number, reason: string) {
    super('VALIDATION_FAILED', `${reason} at column ${column} of ${JSON.stringify(clip(expression))}`, {
      details: { expression, column, reason },
    });
  }
}

export function isExprError(err: unknown): err is ExprError {
  if (!(err instanceof Error) || (err as { name?: unknown }).name !== 'TesseraError') return false;
  const d = (err as { details?: unknown }).details as Partial<ExprErrorDetails> | undefined;
  return typeof d === 'object' && d !== null && typeof d.expression === 'string' && typeof d.column === 'number';
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

// ---------------------------------------------------------------------------------------------------------------
// Secrets

const SECRET_BRAND = Symbol.for('tessera.secret');

/**
 * A value that must never be logged. It reveals itself only through {@link reveal}; `String()`, `JSON.stringify`
 * and Node's `util.inspect` all print `***`.
 */
export interface Secret {
  readonly [SECRET_BRAND]: true;
}

class SecretBox implements Secret {
  readonly [SECRET_BRAND] = true as const;
  readonly #value: unknown;
  constructor(value: unknown) {
    this.#value = value;
  }
  unwrap(): unknown {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[Secret ***]';
  }
}

/** Wrap `value` as a secret (a secret stays as it is). */
export function secret(value: unknown): Secret {
  return isSecret(value) ? value : new SecretBox(value);
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof SecretBox;
}

/** `value` with every secret in it (deep, through arrays and plain objects) replaced by what it wraps. */
export function reveal(value: unknown): unknown {
  return mapSecrets(value, (s) => reveal(s.unwrap()), new Budget(Number.POSITIVE_INFINITY), 0);
}

/** `value` with every secret in it (deep) replaced by the string `"***"`: what may go into logs and snapshots. */
export function redact(value: unknown): unknown {
  return mapSecrets(value, () => '***', new Budget(Number.POSITIVE_INFINITY), 0);
}

/** Copies arrays and plain objects only when a secret is found below them; returns other values untouched. */
function mapSecrets(value: unknown, f: (s: SecretBox) => unknown, budget: Budget, depth: number): unknown {
  if (value instanceof SecretBox) return f(value);
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_DATA_DEPTH) throw new TesseraError('VALIDATION_FAILED', `value is nested deeper than ${MAX_DATA_DEPTH} levels`);
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      budget.charge(1);
      const v: unknown = value[i];
      const m = mapSecrets(v, f, budget, depth + 1);
      if (m !== v && out === undefined) out = value.slice(0, i);
      if (out !== undefined) out.push(m);
    }
    return out ?? value;
  }
  if (!isPlainObject(value)) return value;
  let out: Record<string, unknown> | undefined;
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    budget.charge(1);
    const k = keys[i]!;
    const v = (value as Record<string, unknown>)[k];
    const m = mapSecrets(v, f, budget, depth + 1);
    if (m !== v && out === undefined) {
      out = {};
      for (const prev of keys.slice(0, i)) defineKey(out, prev, (value as Record<string, unknown>)[prev]);
    }
    if (out !== undefined) defineKey(out, k, m);
  }
  return out ?? value;
}

// ---------------------------------------------------------------------------------------------------------------
// Values

/**
 * Truthiness for `when:`, `!`, `&&`, `||`, `?:`: false, null, undefined, 0, NaN, "", [] and {} are false
 * (empty collections are false, as in Python and Jinja, so `when: ${bag.items}` skips an empty list);
 * everything else is true. A secret is as truthy as what it wraps.
 */
export function isTruthy(value: unknown): boolean {
  const v = value instanceof SecretBox ? value.unwrap() : value;
  if (v === null || v === undefined || v === false || v === 0 || v === '' || Number.isNaN(v)) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isPlainObject(v)) return Object.keys(v).length > 0;
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Sets an own data property without ever touching a prototype (even for the key `__proto__`). */
function defineKey(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof SecretBox) return 'secret';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

class Budget {
  used = 0;
  constructor(readonly limit: number) {}
  charge(n: number): void {
    this.used += n;
    if (this.used > this.limit) throw new BudgetExceeded();
  }
}

class BudgetExceeded extends Error {}

// ---------------------------------------------------------------------------------------------------------------
// Lexer

type TokenKind = 'num' | 'str' | 'name' | 'op' | 'eof';
interface Token {
  kind: TokenKind;
  value: string;
  num?: number;
  /** 0-based offset. */
  pos: number;
}

const OPERATORS = ['??', '==', '!=', '<=', '>=', '&&', '||', '!', '<', '>', '+', '-', '*', '/', '%', '?', ':', '.', ',', '(', ')', '[', ']', '{', '}'];
const NAME_START = /[A-Za-z_$]/;
const NAME_PART = /[A-Za-z0-9_$]/;
const DIGIT = /[0-9]/;

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (pos: number, reason: string): never => {
    throw new ExprError(src, pos + 1, reason);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (DIGIT.test(c)) {
      while (i < src.length && DIGIT.test(src[i]!)) i++;
      if (src[i] === '.' && DIGIT.test(src[i + 1] ?? '')) {
        i++;
        while (i < src.length && DIGIT.test(src[i]!)) i++;
      }
      if (src[i] === 'e' || src[i] === 'E') {
        let j = i + 1;
        if (src[j] === '+' || src[j] === '-') j++;
        if (!DIGIT.test(src[j] ?? '')) fail(i, 'malformed number exponent');
        i = j;
        while (i < src.length && DIGIT.test(src[i]!)) i++;
      }
      if (i < src.length && NAME_PART.test(src[i]!)) fail(i, `unexpected "${src[i]!}" after a number`);
      const text = src.slice(start, i);
      const num = Number(text);
      if (!Number.isFinite(num)) fail(start, `number ${text} is out of range`);
      tokens.push({ kind: 'num', value: text, num, pos: start });
      continue;
    }
    if (c === '"' || c === "'") {
      const { value, end } = readString(src, i, fail);
      tokens.push({ kind: 'str', value, pos: start });
      i = end;
      continue;
    }
    if (NAME_START.test(c)) {
      while (i < src.length && NAME_PART.test(src[i]!)) i++;
      tokens.push({ kind: 'name', value: src.slice(start, i), pos: start });
      continue;
    }
    if (src.startsWith('===', i) || src.startsWith('!==', i)) fail(i, `"${src.slice(i, i + 3)}" is not an operator; use "${src.slice(i, i + 2)}" (it never coerces)`);
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op === undefined) fail(i, c === '`' ? 'template literals are not supported; use "+" or ${…} interpolation' : `unexpected character ${JSON.stringify(c)}`);
    tokens.push({ kind: 'op', value: op!, pos: start });
    i += op!.length;
  }
  tokens.push({ kind: 'eof', value: '', pos: src.length });
  return tokens;
}

function readString(src: string, start: number, fail: (pos: number, reason: string) => never): { value: string; end: number } {
  const quote = src[start]!;
  let out = '';
  let i = start + 1;
  for (;;) {
    if (i >= src.length) return fail(start, 'unterminated string');
    const c = src[i]!;
    if (c === quote) return { value: out, end: i + 1 };
    if (c === '\n' || c === '\r') return fail(start, 'unterminated string (strings cannot span lines; use \\n)');
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const e = src[i + 1];
    const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', v: '\v', '0': '\0', '\\': '\\', "'": "'", '"': '"', '$': '$', '/': '/' };
    if (e !== undefined && Object.prototype.hasOwnProperty.call(simple, e)) {
      out += simple[e];
      i += 2;
    } else if (e === 'u') {
      const m = /^u(?:\{([0-9A-Fa-f]{1,6})\}|([0-9A-Fa-f]{4}))/.exec(src.slice(i + 1, i + 10));
      const code = m ? parseInt(m[1] ?? m[2]!, 16) : NaN;
      if (!m || code > 0x10ffff) return fail(i, 'malformed \\u escape');
      out += String.fromCodePoint(code);
      i += 1 + m[0].length;
    } else {
      return fail(i, e === undefined ? 'unterminated string' : `unknown escape \\${e}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Parser

type Node =
  | { t: 'lit'; v: string | number | boolean | null; pos: number; d: number }
  | { t: 'arr'; items: Node[]; pos: number; d: number }
  | { t: 'obj'; entries: Array<[string, Node]>; pos: number; d: number }
  | { t: 'name'; name: string; pos: number; d: number }
  | { t: 'member'; obj: Node; key: Node; pos: number; d: number }
  | { t: 'unary'; op: '!' | '-'; arg: Node; pos: number; d: number }
  | { t: 'binary'; op: string; l: Node; r: Node; pos: number; d: number }
  | { t: 'cond'; test: Node; then: Node; else: Node; pos: number; d: number }
  | { t: 'call'; fn: string; args: Node[]; pos: number; d: number };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

class Parser {
  private i = 0;
  private nesting = 0;
  readonly names = new Set<string>();
  constructor(
    private readonly src: string,
    private readonly tokens: Token[],
  ) {}

  parse(): Node {
    const node = this.expr();
    const t = this.peek();
    if (t.kind !== 'eof') this.fail(t.pos, `unexpected ${describe(t)}`);
    return node;
  }

  private fail(pos: number, reason: string): never {
    throw new ExprError(this.src, pos + 1, reason);
  }

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private next(): Token {
    return this.tokens[this.i++]!;
  }

  private isOp(value: string): boolean {
    const t = this.peek();
    return t.kind === 'op' && t.value === value;
  }

  private expect(value: string, context: string): Token {
    const t = this.peek();
    if (t.kind !== 'op' || t.value !== value) this.fail(t.pos, `expected "${value}" ${context}, found ${describe(t)}`);
    return this.next();
  }

  /** Builds a node and enforces the AST depth limit on it. */
  private node(n: DistributiveOmit<Node, 'd'>, children: Node[]): Node {
    const d = 1 + children.reduce((m, c) => Math.max(m, c.d), 0);
    if (d > MAX_EXPR_DEPTH) this.fail(n.pos, `expression is nested deeper than ${MAX_EXPR_DEPTH} levels`);
    return { ...n, d } as Node;
  }

  /** Guards the parser's own recursion, before any node exists (`((((…` or `!!!!…`). */
  private enter(pos: number): void {
    if (++this.nesting > MAX_EXPR_DEPTH) this.fail(pos, `expression is nested deeper than ${MAX_EXPR_DEPTH} levels`);
  }

  private expr(): Node {
    const start = this.peek().pos;
    this.enter(start);
    const test = this.or();
    let result = test;
    if (this.isOp('?')) {
      const q = this.next();
      const then = this.expr();
      this.expect(':', 'in a conditional "c ? a : b"');
      const otherwise = this.expr();
      result = this.node({ t: 'cond', test, then, else: otherwise, pos: q.pos }, [test, then, otherwise]);
    }
    this.nesting--;
    return result;
  }

  private binaryLevel(ops: readonly string[], operand: () => Node): Node {
    let left = operand();
    for (;;) {
      const t = this.peek();
      const isOp = (t.kind === 'op' && ops.includes(t.value)) || (t.kind === 'name' && t.value === 'in' && ops.includes('in'));
      if (!isOp) return left;
      this.next();
      const right = operand();
      left = this.node({ t: 'binary', op: t.value, l: left, r: right, pos: t.pos }, [left, right]);
    }
  }

  private or(): Node {
    return this.binaryLevel(['||', '??'], () => this.and());
  }
  private and(): Node {
    return this.binaryLevel(['&&'], () => this.equality());
  }
  private equality(): Node {
    return this.binaryLevel(['==', '!='], () => this.relation());
  }
  private relation(): Node {
    return this.binaryLevel(['<', '<=', '>', '>=', 'in'], () => this.sum());
  }
  private sum(): Node {
    return this.binaryLevel(['+', '-'], () => this.product());
  }
  private product(): Node {
    return this.binaryLevel(['*', '/', '%'], () => this.unary());
  }

  private unary(): Node {
    const t = this.peek();
    if (t.kind === 'op' && (t.value === '!' || t.value === '-')) {
      this.next();
      this.enter(t.pos);
      const arg = this.unary();
      this.nesting--;
      return this.node({ t: 'unary', op: t.value, arg, pos: t.pos }, [arg]);
    }
    return this.postfix();
  }

  private postfix(): Node {
    let node = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        const dot = this.next();
        const name = this.next();
        if (name.kind !== 'name') this.fail(name.pos, `expected a member name after ".", found ${describe(name)}`);
        if (FORBIDDEN_NAMES.has(name.value)) this.fail(name.pos, `"${name.value}" is not accessible`);
        const key = this.node({ t: 'lit', v: name.value, pos: name.pos }, []);
        node = this.node({ t: 'member', obj: node, key, pos: dot.pos }, [node, key]);
      } else if (this.isOp('[')) {
        const open = this.next();
        const key = this.expr();
        this.expect(']', 'to close "["');
        if (key.t === 'lit' && typeof key.v === 'string' && FORBIDDEN_NAMES.has(key.v)) this.fail(key.pos, `"${key.v}" is not accessible`);
        node = this.node({ t: 'member', obj: node, key, pos: open.pos }, [node, key]);
      } else if (this.isOp('(')) {
        this.fail(this.peek().pos, node.t === 'name' ? `"${node.name}" is not a function` : 'only the built-in functions can be called');
      } else {
        return node;
      }
    }
  }

  private primary(): Node {
    const t = this.next();
    switch (t.kind) {
      case 'num':
        return this.node({ t: 'lit', v: t.num!, pos: t.pos }, []);
      case 'str':
        return this.node({ t: 'lit', v: t.value, pos: t.pos }, []);
      case 'name': {
        if (t.value === 'true' || t.value === 'false') return this.node({ t: 'lit', v: t.value === 'true', pos: t.pos }, []);
        if (t.value === 'null') return this.node({ t: 'lit', v: null, pos: t.pos }, []);
        if (t.value === 'in') this.fail(t.pos, '"in" needs a left operand');
        if (this.isOp('(')) return this.call(t);
        if (FORBIDDEN_NAMES.has(t.value)) this.fail(t.pos, `"${t.value}" is not accessible`);
        this.names.add(t.value);
        return this.node({ t: 'name', name: t.value, pos: t.pos }, []);
      }
      case 'op':
        if (t.value === '(') {
          const inner = this.expr();
          this.expect(')', 'to close "("');
          return inner;
        }
        if (t.value === '[') return this.array(t);
        if (t.value === '{') return this.object(t);
        return this.fail(t.pos, `unexpected ${describe(t)}`);
      default:
        return this.fail(t.pos, 'unexpected end of expression');
    }
  }

  private call(name: Token): Node {
    if (!Object.prototype.hasOwnProperty.call(FUNCTIONS, name.value)) {
      this.fail(name.pos, `unknown function "${name.value}"; available: ${Object.keys(FUNCTIONS).join(', ')}`);
    }
    const spec = FUNCTIONS[name.value]!;
    this.next(); // (
    const args: Node[] = [];
    while (!this.isOp(')')) {
      args.push(this.expr());
      if (!this.isOp(')')) this.expect(',', `between the arguments of ${name.value}()`);
    }
    this.next(); // )
    if (args.length < spec.min || args.length > spec.max) {
      const want = spec.min === spec.max ? `${spec.min}` : spec.max === Infinity ? `at least ${spec.min}` : `${spec.min} or ${spec.max}`;
      this.fail(name.pos, `${name.value}() takes ${want} argument${want === '1' ? '' : 's'}, got ${args.length}`);
    }
    return this.node({ t: 'call', fn: name.value, args, pos: name.pos }, args);
  }

  private array(open: Token): Node {
    const items: Node[] = [];
    while (!this.isOp(']')) {
      if (this.peek().kind === 'eof') this.fail(open.pos, 'unterminated array: missing "]"');
      items.push(this.expr());
      if (!this.isOp(']')) this.expect(',', 'between array items');
    }
    this.next();
    return this.node({ t: 'arr', items, pos: open.pos }, items);
  }

  private object(open: Token): Node {
    const entries: Array<[string, Node]> = [];
    while (!this.isOp('}')) {
      const k = this.next();
      if (k.kind === 'eof') this.fail(open.pos, 'unterminated object: missing "}"');
      if (k.kind !== 'name' && k.kind !== 'str') this.fail(k.pos, `expected a key, found ${describe(k)}`);
      if (FORBIDDEN_NAMES.has(k.value)) this.fail(k.pos, `"${k.value}" cannot be a key`);
      this.expect(':', 'after an object key');
      entries.push([k.value, this.expr()]);
      if (!this.isOp('}')) this.expect(',', 'between object entries');
    }
    this.next();
    return this.node({ t: 'obj', entries, pos: open.pos }, entries.map((e) => e[1]));
  }
}

function describe(t: Token): string {
  if (t.kind === 'eof') return 'the end of the expression';
  if (t.kind === 'str') return 'a string';
  return `"${t.value}"`;
}

// ---------------------------------------------------------------------------------------------------------------
// Functions

interface FnSpec {
  min: number;
  max: number;
  /**
   * Called with the evaluated arguments as they are (secrets still wrapped). `reveal` unwraps one value and marks
   * the result as derived from a secret; the evaluator then wraps a non-boolean result as a secret.
   */
  run(args: unknown[], cx: CallContext): unknown;
}

interface CallContext {
  reveal(v: unknown): unknown;
  /** Marks the result as derived from a secret. */
  taint(): void;
  fail(reason: string): never;
  charge(n: number): void;
}

function str(cx: CallContext, v: unknown, fn: string): string {
  const s = cx.reveal(v);
  if (typeof s !== 'string') cx.fail(`${fn}() takes a string, got ${typeName(s)}`);
  return s as string;
}

function num(cx: CallContext, v: unknown, fn: string): number {
  const n = cx.reveal(v);
  if (typeof n !== 'number') cx.fail(`${fn}() takes a number, got ${typeName(n)}`);
  return n as number;
}

/** One step per started 256 characters: string work is linear but cheap. */
const strCost = (s: string): number => 1 + (s.length >> 8);

function numbersOf(args: unknown[], cx: CallContext, fn: string): number[] {
  const list = args.length === 1 && Array.isArray(cx.reveal(args[0])) ? (cx.reveal(args[0]) as unknown[]) : args;
  cx.charge(list.length);
  if (list.length === 0) cx.fail(`${fn}() of an empty list`);
  return list.map((v) => num(cx, v, fn));
}

const FUNCTIONS: Record<string, FnSpec> = {
  len: {
    min: 1,
    max: 1,
    run([x], cx) {
      const v = cx.reveal(x);
      if (typeof v === 'string') {
        cx.charge(strCost(v));
        let n = 0;
        for (const _ of v) n++; // code points, not UTF-16 units
        return n;
      }
      if (Array.isArray(v)) return v.length;
      if (isPlainObject(v)) return Object.keys(v).length;
      return cx.fail(`len() takes a string, array or object, got ${typeName(v)}`);
    },
  },
  lower: { min: 1, max: 1, run: ([s], cx) => str(cx, s, 'lower').toLowerCase() },
  upper: { min: 1, max: 1, run: ([s], cx) => str(cx, s, 'upper').toUpperCase() },
  trim: { min: 1, max: 1, run: ([s], cx) => str(cx, s, 'trim').trim() },
  contains: {
    min: 2,
    max: 2,
    run([a, b], cx) {
      return membership(b, a, cx, 'contains()');
    },
  },
  starts_with: {
    min: 2,
    max: 2,
    run([s, p], cx) {
      const text = str(cx, s, 'starts_with');
      cx.charge(strCost(text));
      return text.startsWith(str(cx, p, 'starts_with'));
    },
  },
  join: {
    min: 1,
    max: 2,
    run([list, sep], cx) {
      const items = cx.reveal(list);
      if (!Array.isArray(items)) return cx.fail(`join() takes an array, got ${typeName(items)}`);
      const separator = sep === undefined ? ',' : str(cx, sep, 'join');
      cx.charge(items.length);
      const parts = items.map((item) => {
        const v = cx.reveal(item);
        if (v === null || v === undefined) return '';
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
        return cx.fail(`join() joins strings, numbers and booleans, found ${typeName(v)}`);
      });
      const out = parts.join(separator);
      cx.charge(strCost(out));
      return out;
    },
  },
  keys: {
    min: 1,
    max: 1,
    run([o], cx) {
      const v = cx.reveal(o);
      if (!isPlainObject(v)) return cx.fail(`keys() takes an object, got ${typeName(v)}`);
      const keys = Object.keys(v);
      cx.charge(keys.length);
      return keys;
    },
  },
  default: {
    min: 2,
    max: 2,
    // Unlike `??`, also replaces "": the usual meaning for a form field or an unanswered question.
    run([x, y]) {
      const v = x instanceof SecretBox ? x.unwrap() : x;
      return v === null || v === undefined || v === '' ? y : x;
    },
  },
  number: {
    min: 1,
    max: 1,
    run([x], cx) {
      const v = cx.reveal(x);
      if (typeof v === 'number') return v;
      if (typeof v === 'boolean') return v ? 1 : 0;
      if (typeof v === 'string' && v.trim() !== '') {
        const n = Number(v.trim());
        if (Number.isFinite(n)) return n;
      }
      return cx.fail(`number() cannot convert ${typeof v === 'string' ? JSON.stringify(clip(v)) : typeName(v)} to a number`);
    },
  },
  string: {
    min: 1,
    max: 1,
    run([x], cx) {
      return stringify(x, { reveal: true, onSecret: () => cx.taint(), charge: (n) => cx.charge(n) });
    },
  },
  round: {
    min: 1,
    max: 2,
    run([x, digits], cx) {
      const n = num(cx, x, 'round');
      const d = digits === undefined ? 0 : num(cx, digits, 'round');
      if (!Number.isInteger(d) || d < 0 || d > 15) return cx.fail('round() takes 0 to 15 digits');
      // Shift by exponent notation rather than multiplying, so round(1.005, 2) is 1.01. Halves go toward +∞.
      const r = Number(`${Math.round(Number(`${n}e${d}`))}e-${d}`);
      return Number.isFinite(r) ? r : Math.round(n * 10 ** d) / 10 ** d;
    },
  },
  min: { min: 1, max: Infinity, run: (args, cx) => Math.min(...numbersOf(args, cx, 'min')) },
  max: { min: 1, max: Infinity, run: (args, cx) => Math.max(...numbersOf(args, cx, 'max')) },
  abs: { min: 1, max: 1, run: ([x], cx) => Math.abs(num(cx, x, 'abs')) },
};

/** The names of the functions expressions may call. */
export const EXPR_FUNCTIONS: readonly string[] = Object.freeze(Object.keys(FUNCTIONS));

/** `needle in haystack`: deep membership in an array, an own key of an object, a substring of a string. */
function membership(needle: unknown, haystack: unknown, cx: CallContext, what: string): boolean {
  const h = cx.reveal(haystack);
  if (Array.isArray(h)) {
    cx.charge(h.length);
    const budget = { charge: (n: number) => cx.charge(n) };
    return h.some((item) => deepEqual(item, needle, budget, 0));
  }
  const n = cx.reveal(needle);
  if (typeof h === 'string') {
    if (typeof n !== 'string') return cx.fail(`${what}: only a string can be looked for in a string, got ${typeName(n)}`);
    cx.charge(strCost(h));
    return h.includes(n);
  }
  if (isPlainObject(h)) {
    if (typeof n !== 'string') return cx.fail(`${what}: object keys are strings, got ${typeName(n)}`);
    return Object.prototype.hasOwnProperty.call(h, n);
  }
  return cx.fail(`${what} needs an array, object or string to look in, got ${typeName(h)}`);
}

function deepEqual(a: unknown, b: unknown, budget: { charge(n: number): void }, depth: number): boolean {
  budget.charge(1);
  const x = a instanceof SecretBox ? a.unwrap() : a;
  const y = b instanceof SecretBox ? b.unwrap() : b;
  if (x === y) return true;
  if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
  if (depth > MAX_DATA_DEPTH) throw new TesseraError('VALIDATION_FAILED', `value is nested deeper than ${MAX_DATA_DEPTH} levels`);
  if (Array.isArray(x) || Array.isArray(y)) {
    if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!deepEqual(x[i], y[i], budget, depth + 1)) return false;
    return true;
  }
  if (!isPlainObject(x) || !isPlainObject(y)) return false;
  const kx = Object.keys(x);
  if (kx.length !== Object.keys(y).length) return false;
  for (const k of kx) {
    if (!Object.prototype.hasOwnProperty.call(y, k) || !deepEqual(x[k], y[k], budget, depth + 1)) return false;
  }
  return true;
}

/**
 * Text of a value for `${…}` inside text and for `string()`: strings as they are, null and undefined as "",
 * numbers and booleans as JavaScript prints them, arrays and objects as JSON. Secrets print as `***` unless
 * `reveal`; `onSecret` is told about each one met.
 */
function stringify(value: unknown, opts: { reveal: boolean; onSecret?: () => void; charge: (n: number) => void }): string {
  const onSecret = (s: SecretBox): unknown => {
    opts.onSecret?.();
    return opts.reveal ? reveal(s.unwrap()) : '***';
  };
  const v = value instanceof SecretBox ? onSecret(value) : value;
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v !== 'object') return '';
  const budget = new Budget(Number.POSITIVE_INFINITY);
  const plain = mapSecrets(v, onSecret, budget, 0);
  opts.charge(budget.used);
  return JSON.stringify(plain) ?? '';
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluator

/** A parsed expression; evaluate it as often as needed. */
export interface CompiledExpr {
  readonly source: string;
  /** The root names it reads (`ctx`, `bag`, `$`…), in order of first use; callers may check them up front. */
  readonly names: readonly string[];
  /** @throws ExprError */
  evaluate(scope: Readonly<Record<string, unknown>>): unknown;
}

class Evaluation implements CallContext {
  readonly budget = new Budget(MAX_EXPR_STEPS);
  tainted = false;
  private pos = 0;
  constructor(
    private readonly src: string,
    private readonly scope: object,
  ) {}

  fail(reason: string, pos = this.pos): never {
    throw new ExprError(this.src, pos + 1, reason);
  }

  charge(n: number): void {
    this.budget.charge(n);
  }

  taint(): void {
    this.tainted = true;
  }

  reveal(v: unknown): unknown {
    if (v instanceof SecretBox) {
      this.tainted = true;
      return v.unwrap();
    }
    return v;
  }

  run(node: Node): unknown {
    try {
      return this.eval(node);
    } catch (err) {
      if (err instanceof BudgetExceeded) this.fail(`evaluation took more than ${MAX_EXPR_STEPS} steps`);
      if (err instanceof TesseraError && !isExprError(err)) this.fail(err.message);
      throw err;
    }
  }

  /** Evaluates `f` with its own taint flag; wraps a non-boolean result as a secret if it read a secret. */
  private derived(f: () => unknown): unknown {
    const outer = this.tainted;
    this.tainted = false;
    let result = f();
    if (this.tainted && typeof result !== 'boolean') result = secret(result);
    this.tainted = outer;
    return result;
  }

  private eval(node: Node): unknown {
    this.budget.charge(1);
    this.pos = node.pos;
    switch (node.t) {
      case 'lit':
        return node.v;
      case 'arr':
        return node.items.map((n) => this.eval(n));
      case 'obj': {
        const out: Record<string, unknown> = {};
        for (const [k, n] of node.entries) defineKey(out, k, this.eval(n));
        return out;
      }
      case 'name':
        return this.lookup(this.scope, node.name, node.pos, true);
      case 'member': {
        const base = this.eval(node.obj);
        const key = this.eval(node.key);
        return this.derived(() => {
          const b = this.reveal(base);
          const k = this.reveal(key);
          this.pos = node.key.pos;
          if (typeof k !== 'string' && typeof k !== 'number') this.fail(`a member name must be a string or number, got ${typeName(k)}`);
          return this.member(b, k as string | number, node.key.pos);
        });
      }
      case 'unary': {
        const v = this.eval(node.arg);
        this.pos = node.pos;
        if (node.op === '!') return !isTruthy(v);
        return this.derived(() => {
          const n = this.reveal(v);
          if (typeof n !== 'number') this.fail(`unary "-" takes a number, got ${typeName(n)}`);
          return -(n as number);
        });
      }
      case 'cond':
        return isTruthy(this.eval(node.test)) ? this.eval(node.then) : this.eval(node.else);
      case 'call': {
        const args = node.args.map((n) => this.eval(n));
        this.pos = node.pos;
        return this.derived(() => FUNCTIONS[node.fn]!.run(args, this));
      }
      case 'binary':
        return this.binary(node);
    }
  }

  private binary(node: Extract<Node, { t: 'binary' }>): unknown {
    const { op } = node;
    const left = this.eval(node.l);
    if (op === '&&') return isTruthy(left) ? this.eval(node.r) : left;
    if (op === '||') return isTruthy(left) ? left : this.eval(node.r);
    if (op === '??') {
      const l = left instanceof SecretBox ? left.unwrap() : left;
      return l === null || l === undefined ? this.eval(node.r) : left;
    }
    const right = this.eval(node.r);
    this.pos = node.pos;
    if (op === '==' || op === '!=') return deepEqual(left, right, this.budget, 0) === (op === '==');
    if (op === 'in') return this.derived(() => membership(left, right, this, '"in"'));
    return this.derived(() => {
      const l = this.reveal(left);
      const r = this.reveal(right);
      switch (op) {
        case '<':
        case '<=':
        case '>':
        case '>=': {
          if (!((typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string'))) {
            this.fail(`"${op}" compares two numbers or two strings, got ${typeName(l)} and ${typeName(r)}`);
          }
          const a = l as number | string;
          const b = r as number | string;
          return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
        }
        case '+': {
          if (typeof l === 'number' && typeof r === 'number') return l + r;
          if ((typeof l === 'string' || typeof l === 'number') && (typeof r === 'string' || typeof r === 'number')) {
            const s = String(l) + String(r);
            this.budget.charge(strCost(s));
            return s;
          }
          if (Array.isArray(l) && Array.isArray(r)) {
            this.budget.charge(l.length + r.length);
            return [...l, ...r];
          }
          return this.fail(`"+" adds numbers, strings or arrays, got ${typeName(l)} and ${typeName(r)}`);
        }
        default: {
          if (typeof l !== 'number' || typeof r !== 'number') return this.fail(`"${op}" takes numbers, got ${typeName(l)} and ${typeName(r)}`);
          if ((op === '/' || op === '%') && r === 0) return this.fail('division by zero');
          return op === '-' ? l - r : op === '*' ? l * r : op === '/' ? l / r : l % r;
        }
      }
    });
  }

  private member(base: unknown, key: string | number, pos: number): unknown {
    if (base === null || base === undefined) return undefined;
    const name = String(key);
    if (FORBIDDEN_NAMES.has(name)) this.fail(`"${name}" is not accessible`, pos);
    if (typeof base === 'string') {
      if (name === 'length') return base.length;
      return typeof key === 'number' && Number.isInteger(key) && key >= 0 ? base[key] : undefined;
    }
    if (typeof base !== 'object') return undefined;
    if (Array.isArray(base) && typeof key === 'number' && !(Number.isInteger(key) && key >= 0)) return undefined;
    return this.lookup(base, name, pos, false);
  }

  /** Reads an own data property; never a getter, never the prototype chain, never a function. */
  private lookup(target: object, name: string, pos: number, root: boolean): unknown {
    const desc = Object.getOwnPropertyDescriptor(target, name);
    if (desc === undefined) {
      if (root) this.fail(`unknown name "${name}"`, pos);
      return undefined;
    }
    if (!('value' in desc)) return this.fail(`"${name}" is an accessor property; only data can be read`, pos);
    if (typeof desc.value === 'function') return this.fail(`"${name}" is a function; expressions can only read data`, pos);
    return desc.value as unknown;
  }
}

class Compiled implements CompiledExpr {
  constructor(
    readonly source: string,
    readonly names: readonly string[],
    private readonly ast: Node,
  ) {}
  evaluate(scope: Readonly<Record<string, unknown>>): unknown {
    if (typeof scope !== 'object' || scope === null) throw new ExprError(this.source, 1, 'the scope must be an object');
    return new Evaluation(this.source, scope).run(this.ast);
  }
}

/**
 * Parse `src` once.
 * @throws ExprError for a syntax error, an unknown function, a forbidden member name, or a length or depth over
 *   the limits, with the 1-based column.
 */
export function compileExpr(src: string): CompiledExpr {
  if (typeof src !== 'string') throw new ExprError(String(src), 1, 'an expression must be a string');
  if (src.length > MAX_EXPR_LENGTH) throw new ExprError(src, MAX_EXPR_LENGTH + 1, `expression is longer than ${MAX_EXPR_LENGTH} characters`);
  if (src.trim() === '') throw new ExprError(src, 1, 'empty expression');
  const parser = new Parser(src, tokenize(src));
  const ast = parser.parse();
  return new Compiled(src, Object.freeze([...parser.names]), ast);
}

/** Small bounded cache: scenarios evaluate the same few expressions over and over. */
const cache = new Map<string, CompiledExpr>();
const CACHE_SIZE = 512;

function cachedCompile(src: string): CompiledExpr {
  let c = cache.get(src);
  if (c === undefined) {
    c = compileExpr(src);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(src, c);
  }
  return c;
}

/** Compile (cached) and evaluate. @throws ExprError */
export function evaluateExpr(src: string, scope: Readonly<Record<string, unknown>>): unknown {
  return cachedCompile(src).evaluate(scope);
}

// ---------------------------------------------------------------------------------------------------------------
// Templates

export type TemplatePart = { kind: 'text'; text: string } | { kind: 'expr'; expr: CompiledExpr; /** 0-based offset of the expression's first character in the template. */ offset: number };

/**
 * Split a string into text and `${…}` expressions. `$${` is a literal `${`. The end of an expression is the first
 * `}` outside strings and braces, so `${ {a: 1}.a }` and `${ "}" }` work.
 * @throws ExprError with the column in the whole string.
 */
export function parseTemplate(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let buf = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      buf += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      buf += text[i];
      i++;
      continue;
    }
    const start = i + 2;
    const end = findClose(text, start, i);
    if (buf !== '') parts.push({ kind: 'text', text: buf });
    buf = '';
    const src = text.slice(start, end);
    try {
      parts.push({ kind: 'expr', expr: cachedCompile(src), offset: start });
    } catch (err) {
      if (isExprError(err)) throw new ExprError(text, start + err.details.column, err.details.reason);
      throw err;
    }
    i = end + 1;
  }
  if (buf !== '' || parts.length === 0) parts.push({ kind: 'text', text: buf });
  return parts;
}

function findClose(text: string, from: number, open: number): number {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      i++;
      while (i < text.length && text[i] !== c) i += text[i] === '\\' ? 2 : 1;
      if (i >= text.length) break;
    } else if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0) return i;
      depth--;
    }
    i++;
  }
  throw new ExprError(text, open + 1, 'unterminated "${": missing "}"');
}

/** True when the string contains a `${…}` (not counting escaped `$${`). @throws ExprError for a malformed one. */
export function hasExpressions(text: string): boolean {
  return parseTemplate(text).some((p) => p.kind === 'expr');
}

export interface InterpolateOptions {
  /**
   * Unwrap secrets in the result: in text they print their value instead of `***`, and a whole-value result is
   * deeply revealed. Only for the value handed to the tool or action that needs them — never for logs.
   */
  revealSecrets?: boolean;
}

/**
 * Evaluate every `${…}` in the strings of a JSON-like value (arrays and plain objects are copied; keys are not
 * interpolated; other values are returned as they are).
 * - A string that is exactly `${expr}` becomes the expression's value, of any type (`"${ctx.count}"` is a number).
 *   Without `revealSecrets`, a secret stays wrapped, so the caller can still redact it.
 * - Otherwise each `${expr}` is replaced by its text: null and undefined as "", arrays and objects as JSON,
 *   secrets as `***` unless `revealSecrets`.
 * @throws ExprError
 */
export function interpolate(value: unknown, scope: Readonly<Record<string, unknown>>, options: InterpolateOptions = {}): unknown {
  return interpolateValue(value, scope, options, 0);
}

function interpolateValue(value: unknown, scope: Readonly<Record<string, unknown>>, options: InterpolateOptions, depth: number): unknown {
  if (typeof value === 'string') return interpolateString(value, scope, options);
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_DATA_DEPTH) throw new TesseraError('VALIDATION_FAILED', `value is nested deeper than ${MAX_DATA_DEPTH} levels`);
  if (Array.isArray(value)) return value.map((v) => interpolateValue(v, scope, options, depth + 1));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) defineKey(out, k, interpolateValue(value[k], scope, options, depth + 1));
  return out;
}

function interpolateString(text: string, scope: Readonly<Record<string, unknown>>, options: InterpolateOptions): unknown {
  if (!text.includes('${')) return text;
  const parts = parseTemplate(text);
  const only = parts[0];
  if (parts.length === 1 && only?.kind === 'expr' && only.offset === 2 && text.endsWith('}') && text.length === only.expr.source.length + 3) {
    const v = only.expr.evaluate(scope);
    return options.revealSecrets ? reveal(v) : v;
  }
  let out = '';
  for (const part of parts) {
    if (part.kind === 'text') out += part.text;
    else out += stringify(part.expr.evaluate(scope), { reveal: options.revealSecrets === true, charge: () => {} });
  }
  return out;
}
