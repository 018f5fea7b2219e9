import { describe, expect, it } from 'vitest';
import {
  compileExpr,
  evaluateExpr,
  EXPR_FUNCTIONS,
  hasExpressions,
  interpolate,
  isExprError,
  isSecret,
  isTruthy,
  MAX_EXPR_LENGTH,
  parseTemplate,
  redact,
  reveal,
  secret,
} from '../../main/common/expr.js';
import { isTesseraError } from '../../main/common/errors.js';

/** The ExprError thrown by `f`, checked to be a VALIDATION_FAILED TesseraError with a column. */
function exprError(f: () => unknown): { reason: string; column: number; expression: string; message: string } {
  try {
    f();
  } catch (err) {
    expect(isTesseraError(err)).toBe(true);
    expect(isExprError(err)).toBe(true);
    if (!isExprError(err)) throw err;
    expect(err.code).toBe('VALIDATION_FAILED');
    return { ...err.details, message: err.message };
  }
  throw new Error('expected an ExprError');
}

const ev = (src: string, scope: Record<string, unknown> = {}): unknown => evaluateExpr(src, scope);

describe('expr: literals and operators', () => {
  it('evaluates number, string, boolean, null, array and object literals', () => {
    expect(ev('42')).toBe(42);
    expect(ev('1.5e2')).toBe(150);
    expect(ev("'single'")).toBe('single');
    expect(ev('"double \\"q\\" \\n \\u00e9 \\u{1F600}"')).toBe('double "q" \n é 😀');
    expect(ev('true')).toBe(true);
    expect(ev('false')).toBe(false);
    expect(ev('null')).toBeNull();
    expect(ev('[1, "a", [true], ]')).toEqual([1, 'a', [true]]);
    expect(ev('{a: 1, "b c": [2], d: {e: null}}')).toEqual({ a: 1, 'b c': [2], d: { e: null } });
  });

  it('applies precedence: * before +, comparison before &&, && before ||, ternary last', () => {
    expect(ev('1 + 2 * 3')).toBe(7);
    expect(ev('(1 + 2) * 3')).toBe(9);
    expect(ev('10 - 4 - 3')).toBe(3);
    expect(ev('7 % 4 / 2')).toBe(1.5);
    expect(ev('1 < 2 && 3 >= 3')).toBe(true);
    expect(ev('false && true || true')).toBe(true);
    expect(ev('1 > 2 ? "a" : 2 > 1 ? "b" : "c"')).toBe('b');
    expect(ev('-2 * -3')).toBe(6);
    expect(ev('!!1')).toBe(true);
  });

  it('short-circuits &&, || and ?? and yields an operand, as JavaScript does', () => {
    expect(ev('0 || "x"')).toBe('x');
    expect(ev('"a" && "b"')).toBe('b');
    expect(ev('null ?? 0 ?? 5')).toBe(0);
    expect(ev('missing.x ?? "fallback"', { missing: null })).toBe('fallback');
    // The right side is not evaluated, so its error never happens.
    expect(ev('false && nope')).toBe(false);
    expect(ev('true || nope')).toBe(true);
    expect(ev('1 ?? nope')).toBe(1);
    expect(ev('true ? 1 : nope')).toBe(1);
  });

  it('adds numbers, concatenates strings (with numbers) and arrays, and refuses anything else', () => {
    expect(ev('"n=" + 1')).toBe('n=1');
    expect(ev('1 + "x"')).toBe('1x');
    expect(ev('[1] + [2, 3]')).toEqual([1, 2, 3]);
    expect(exprError(() => ev('1 + null')).reason).toMatch(/"\+" adds numbers, strings or arrays, got number and null/);
    expect(exprError(() => ev('"a" - 1')).reason).toMatch(/"-" takes numbers/);
    expect(exprError(() => ev('-"x"')).reason).toMatch(/unary "-" takes a number/);
  });

  it('refuses division by zero (JSON has no Infinity)', () => {
    expect(exprError(() => ev('1 / 0'))).toMatchObject({ reason: 'division by zero', column: 3 });
    expect(exprError(() => ev('1 % 0')).reason).toBe('division by zero');
  });

  it('compares two numbers or two strings and nothing else', () => {
    expect(ev('"abc" < "abd"')).toBe(true);
    expect(ev('2 <= 2')).toBe(true);
    expect(exprError(() => ev('"a" < 1'))).toMatchObject({ reason: '"<" compares two numbers or two strings, got string and number', column: 5 });
    expect(exprError(() => ev('x > 3', { x: undefined })).reason).toMatch(/got undefined and number/);
  });

  it('== is strict for primitives and deep for arrays and objects; != is its negation', () => {
    expect(ev('1 == "1"')).toBe(false);
    expect(ev('null == false')).toBe(false);
    expect(ev('0 == -0')).toBe(true);
    expect(ev('"a" != "b"')).toBe(true);
    expect(ev('[1, {a: [2, 3]}] == [1, {a: [2, 3]}]')).toBe(true);
    expect(ev('{a: 1, b: 2} == {b: 2, a: 1}')).toBe(true);
    expect(ev('[1, 2] == [2, 1]')).toBe(false);
    expect(ev('{a: 1} == {a: 1, b: 2}')).toBe(false);
    expect(ev('{a: undefined_is_not_a_literal} == {}', { undefined_is_not_a_literal: null })).toBe(false);
    expect(ev('[] == {}')).toBe(false);
    expect(ev('x == y', { x: { list: [1, 2, { deep: true }] }, y: { list: [1, 2, { deep: true }] } })).toBe(true);
    expect(ev('x != y', { x: [1], y: [1] })).toBe(false);
  });

  it('"in" tests deep membership in arrays, own keys of objects and substrings', () => {
    expect(ev('2 in [1, 2]')).toBe(true);
    expect(ev('{a: 1} in [{a: 1}]')).toBe(true);
    expect(ev('"a" in {a: 1}')).toBe(true);
    expect(ev('"toString" in {}')).toBe(false);
    expect(ev('"ell" in "hello"')).toBe(true);
    expect(ev('"x" in list && true', { list: ['x'] })).toBe(true);
    expect(exprError(() => ev('1 in 2')).reason).toMatch(/needs an array, object or string/);
  });
});

describe('expr: names and members', () => {
  const scope = { ctx: { city: 'Berlin', tags: ['a', 'b'], nested: { n: 1 }, 'odd key': 5 }, bag: {} };

  it('resolves names against the scope and members with . and []', () => {
    expect(ev('ctx.city', scope)).toBe('Berlin');
    expect(ev('ctx["city"]', scope)).toBe('Berlin');
    expect(ev('ctx["odd key"]', scope)).toBe(5);
    expect(ev('ctx.tags[1]', scope)).toBe('b');
    expect(ev('ctx.tags.length', scope)).toBe(2);
    expect(ev('ctx.nested.n + 1', scope)).toBe(2);
    expect(ev('"abc"[1]')).toBe('b');
  });

  it('yields undefined for a missing member and for members of null or undefined', () => {
    expect(ev('ctx.nope', scope)).toBeUndefined();
    expect(ev('ctx.nope.deeper.still', scope)).toBeUndefined();
    expect(ev('ctx.tags[9]', scope)).toBeUndefined();
    expect(ev('ctx.tags[-1]', scope)).toBeUndefined();
    expect(ev('ctx.city.toUpperCase', scope)).toBeUndefined();
    expect(ev('(1).toFixed')).toBeUndefined();
  });

  it('reports an unknown root name as an error, with its column', () => {
    expect(exprError(() => ev('ctx.city + citty', scope))).toMatchObject({ reason: 'unknown name "citty"', column: 12 });
  });

  it('binds $ as a name, so trigger filters read $.payload.city == "Berlin" (seed 001 §5)', () => {
    const event = { topic: 'nlp.intent.weather', payload: { city: 'Berlin' } };
    expect(evaluateExpr('$.payload.city == "Berlin"', { $: event })).toBe(true);
    expect(evaluateExpr('$.payload.city == "Paris"', { $: event })).toBe(false);
    expect(evaluateExpr('$.payload.missing.city == "Berlin"', { $: event })).toBe(false);
  });

  it('lists the root names an expression reads', () => {
    expect(compileExpr('ctx.a + bag.b * $.c + len(ctx.d)').names).toEqual(['ctx', 'bag', '$']);
  });
});

describe('expr: hostile expressions', () => {
  it('never reaches constructor, __proto__ or prototype, statically or computed', () => {
    expect(exprError(() => ev('constructor.constructor("return process")()'))).toMatchObject({ column: 1 });
    expect(exprError(() => ev('a.constructor', { a: {} }))).toMatchObject({ reason: '"constructor" is not accessible', column: 3 });
    expect(exprError(() => ev('a.__proto__', { a: {} })).reason).toBe('"__proto__" is not accessible');
    expect(exprError(() => ev('a["__proto__"]', { a: {} })).reason).toBe('"__proto__" is not accessible');
    expect(exprError(() => ev('f.prototype', { f: {} })).reason).toBe('"prototype" is not accessible');
    expect(exprError(() => ev('a[k]', { a: {}, k: 'constructor' })).reason).toBe('"constructor" is not accessible');
    expect(exprError(() => ev('a["con" + "structor"]', { a: {} })).reason).toBe('"constructor" is not accessible');
    expect(exprError(() => ev('{__proto__: {polluted: 1}}')).reason).toBe('"__proto__" cannot be a key');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('knows no this, globalThis, process, require or other globals', () => {
    for (const name of ['this', 'globalThis', 'process', 'require', 'window', 'Function', 'eval', 'Object', 'toString', 'hasOwnProperty']) {
      expect(exprError(() => ev(`${name}`, { ctx: {} })).reason, name).toBe(`unknown name "${name}"`);
    }
    expect(exprError(() => ev('process.env.HOME')).reason).toBe('unknown name "process"');
  });

  it('calls only the whitelisted functions, never a member or a value from the scope', () => {
    expect(exprError(() => ev('eval("1")')).reason).toMatch(/^unknown function "eval"; available: len, lower/);
    expect(exprError(() => ev('ctx.city.toUpperCase()', { ctx: { city: 'x' } }))).toMatchObject({ reason: 'only the built-in functions can be called', column: 21 });
    expect(exprError(() => ev('(len)(1)')).column).toBe(6);
    expect(exprError(() => ev('f', { f: () => 1 })).reason).toBe('"f" is a function; expressions can only read data');
    expect(exprError(() => ev('o.m', { o: { m: () => 1 } })).reason).toBe('"m" is a function; expressions can only read data');
  });

  it('never runs a getter and never reads through the prototype chain', () => {
    let called = false;
    const o = {
      get g() {
        called = true;
        return 1;
      },
    };
    expect(exprError(() => ev('o.g', { o })).reason).toMatch(/accessor/);
    expect(called).toBe(false);
    const child = Object.create({ inherited: 'secret' }) as object;
    expect(ev('c.inherited', { c: child })).toBeUndefined();
    expect(exprError(() => ev('inherited', Object.create({ inherited: 1 }) as Record<string, unknown>)).reason).toBe('unknown name "inherited"');
  });

  it('rejects JavaScript syntax the language does not have', () => {
    expect(exprError(() => ev('x === 1', { x: 1 })).reason).toMatch(/"===" is not an operator/);
    expect(exprError(() => ev('a = 1', { a: 0 })).reason).toMatch(/unexpected character "="/);
    expect(exprError(() => ev('`tpl`')).reason).toMatch(/template literals are not supported/);
    expect(exprError(() => ev('x; y', { x: 1 })).reason).toMatch(/unexpected character ";"/);
    expect(exprError(() => ev('new Date()')).reason).toMatch(/unexpected "Date"/);
    expect(exprError(() => ev('() => 1'))).toMatchObject({ reason: 'unexpected character "="', column: 4 });
  });

  it('reports an unterminated string at the column where it starts', () => {
    expect(exprError(() => ev('ctx.a + "abc'))).toMatchObject({ reason: 'unterminated string', column: 9, expression: 'ctx.a + "abc' });
    expect(exprError(() => ev("'it\\'s"))).toMatchObject({ reason: 'unterminated string', column: 1 });
    expect(exprError(() => ev('"bad \\q escape"')).reason).toBe('unknown escape \\q');
  });

  it('reports syntax errors with the column of the offending token', () => {
    expect(exprError(() => ev('1 +'))).toMatchObject({ reason: 'unexpected end of expression', column: 4 });
    expect(exprError(() => ev('(1 + 2'))).toMatchObject({ column: 7 });
    expect(exprError(() => ev('[1, 2'))).toMatchObject({ column: 6 });
    expect(exprError(() => ev('x ? 1', { x: 1 })).reason).toMatch(/expected ":"/);
    expect(exprError(() => ev('1 2')).column).toBe(3);
    expect(exprError(() => ev('12abc')).column).toBe(3);
    expect(exprError(() => ev('   ')).reason).toBe('empty expression');
    expect(exprError(() => ev('len(1, 2)')).reason).toBe('len() takes 1 argument, got 2');
    expect(exprError(() => ev('1 @ 2')).message).toBe('unexpected character "@" at column 3 of "1 @ 2"');
  });

  it('refuses expressions longer than 2000 characters', () => {
    const long = `1${' + 1'.repeat(MAX_EXPR_LENGTH)}`;
    expect(exprError(() => compileExpr(long)).reason).toMatch(/longer than 2000 characters/);
  });

  it('refuses nesting deeper than 64 levels without overflowing the stack', () => {
    expect(ev(`${'('.repeat(60)}1${')'.repeat(60)}`)).toBe(1);
    expect(exprError(() => compileExpr(`${'('.repeat(500)}1${')'.repeat(500)}`)).reason).toMatch(/nested deeper than 64 levels/);
    expect(exprError(() => compileExpr(`${'!'.repeat(1000)}1`)).reason).toMatch(/nested deeper than 64 levels/);
    expect(exprError(() => compileExpr(`${'['.repeat(300)}${']'.repeat(300)}`)).reason).toMatch(/nested deeper than 64 levels/);
    expect(exprError(() => compileExpr(Array(100).fill('1').join(' + '))).reason).toMatch(/nested deeper than 64 levels/);
    expect(exprError(() => compileExpr(`a${'.b'.repeat(100)}`)).reason).toMatch(/nested deeper than 64 levels/);
  });

  it('stops after 100,000 steps, so functions over huge data terminate', () => {
    const big = Array.from({ length: 200_000 }, (_, i) => i);
    const copy = [...big];
    expect(exprError(() => ev('a == b', { a: big, b: copy })).reason).toBe('evaluation took more than 100000 steps');
    expect(exprError(() => ev('-1 in a', { a: big })).reason).toBe('evaluation took more than 100000 steps');
    expect(exprError(() => ev('join(a, ",")', { a: big })).reason).toBe('evaluation took more than 100000 steps');
    expect(exprError(() => ev('max(a)', { a: big })).reason).toBe('evaluation took more than 100000 steps');
    expect(exprError(() => ev('len(s)', { s: 'x'.repeat(50_000_000) })).reason).toBe('evaluation took more than 100000 steps');
    // The length of a list is known without walking it.
    expect(ev('len(a)', { a: big })).toBe(200_000);
    // Identical references compare equal at once.
    expect(ev('a == a', { a: big })).toBe(true);
  });

  it('refuses data nested deeper than it walks instead of overflowing the stack', () => {
    let deep: unknown = 1;
    let deep2: unknown = 1;
    for (let i = 0; i < 5000; i++) {
      deep = [deep];
      deep2 = [deep2];
    }
    expect(exprError(() => ev('a == b', { a: deep, b: deep2 })).reason).toMatch(/nested deeper than 1000 levels/);
  });

  it('does not accept a non-object scope', () => {
    expect(exprError(() => compileExpr('1').evaluate(null as unknown as Record<string, unknown>)).reason).toBe('the scope must be an object');
  });
});

describe('expr: functions', () => {
  it('offers exactly the documented whitelist', () => {
    expect([...EXPR_FUNCTIONS].sort()).toEqual(['abs', 'contains', 'default', 'join', 'keys', 'len', 'lower', 'max', 'min', 'number', 'round', 'starts_with', 'string', 'trim', 'upper']);
  });

  it('len counts code points of strings, items of arrays and keys of objects', () => {
    expect(ev('len("héllo😀")')).toBe(6);
    expect(ev('len([1, 2, 3])')).toBe(3);
    expect(ev('len({a: 1, b: 2})')).toBe(2);
    expect(exprError(() => ev('len(1)')).reason).toBe('len() takes a string, array or object, got number');
  });

  it('lower, upper, trim and starts_with take strings', () => {
    expect(ev('lower("ÄB")')).toBe('äb');
    expect(ev('upper("straße")')).toBe('STRASSE');
    expect(ev('trim("  x \\n")')).toBe('x');
    expect(ev('starts_with("nlp.intent.x", "nlp.")')).toBe(true);
    expect(exprError(() => ev('lower(1)'))).toMatchObject({ reason: 'lower() takes a string, got number', column: 1 });
  });

  it('contains looks in strings, arrays (deeply) and object keys', () => {
    expect(ev('contains("Berlin", "erl")')).toBe(true);
    expect(ev('contains([[1], [2]], [2])')).toBe(true);
    expect(ev('contains({k: 1}, "k")')).toBe(true);
    expect(ev('contains({k: 1}, "z")')).toBe(false);
  });

  it('join joins primitives with a separator (default ",") and keys lists own keys', () => {
    expect(ev('join(["a", 1, true, null], " / ")')).toBe('a / 1 / true / ');
    expect(ev('join([1, 2])')).toBe('1,2');
    expect(exprError(() => ev('join([{}], ",")')).reason).toMatch(/found object/);
    expect(ev('keys({b: 1, a: 2})')).toEqual(['b', 'a']);
    expect(exprError(() => ev('keys([1])')).reason).toBe('keys() takes an object, got array');
  });

  it('default replaces null, undefined and "" but keeps 0 and false; ?? replaces only null and undefined', () => {
    expect(ev('default(x, "d")', { x: '' })).toBe('d');
    expect(ev('default(x.y, "d")', { x: {} })).toBe('d');
    expect(ev('default(0, "d")')).toBe(0);
    expect(ev('default(false, "d")')).toBe(false);
    expect(ev('"" ?? "d"')).toBe('');
  });

  it('number and string convert strictly', () => {
    expect(ev('number(" 42.5 ")')).toBe(42.5);
    expect(ev('number(true)')).toBe(1);
    expect(exprError(() => ev('number("12abc")')).reason).toBe('number() cannot convert "12abc" to a number');
    expect(exprError(() => ev('number("")')).reason).toBe('number() cannot convert "" to a number');
    expect(ev('string(12)')).toBe('12');
    expect(ev('string(null)')).toBe('');
    expect(ev('string({a: [1]})')).toBe('{"a":[1]}');
  });

  it('round, min, max and abs do arithmetic', () => {
    expect(ev('round(2.5)')).toBe(3);
    expect(ev('round(1.005, 2)')).toBe(1.01);
    expect(ev('round(-1.234, 1)')).toBe(-1.2);
    expect(exprError(() => ev('round(1, 20)')).reason).toBe('round() takes 0 to 15 digits');
    expect(ev('min(3, 1, 2)')).toBe(1);
    expect(ev('max([3, 1, 2])')).toBe(3);
    expect(exprError(() => ev('max([])')).reason).toBe('max() of an empty list');
    expect(exprError(() => ev('min(1, "2")')).reason).toBe('min() takes a number, got string');
    expect(ev('abs(-3)')).toBe(3);
  });
});

describe('expr: truthiness', () => {
  it('treats false, null, undefined, 0, NaN, "", [] and {} as false', () => {
    for (const v of [false, null, undefined, 0, NaN, '', [], {}]) expect(isTruthy(v), JSON.stringify(v)).toBe(false);
    for (const v of [true, 1, -1, 'x', [0], { a: 0 }]) expect(isTruthy(v), JSON.stringify(v)).toBe(true);
    expect(ev('!x', { x: [] })).toBe(true);
    expect(isTruthy(secret(''))).toBe(false);
    expect(isTruthy(secret('x'))).toBe(true);
  });
});

describe('expr: secrets', () => {
  const scope = { secrets: { api_key: secret('sk-123') }, ctx: { city: 'Kyiv' } };

  it('never prints a secret through String, JSON.stringify or its fields', () => {
    const s = secret('sk-123');
    expect(String(s)).toBe('***');
    expect(JSON.stringify({ s })).toBe('{"s":"***"}');
    expect(Object.keys(s)).not.toContain('value');
    expect(JSON.stringify(Object.entries(s))).not.toContain('sk-123');
    expect(isSecret(s)).toBe(true);
    expect(isSecret('sk-123')).toBe(false);
    expect(secret(s)).toBe(s);
  });

  it('reveal and redact work deeply through arrays and objects', () => {
    const value = { a: [1, secret('x'), { b: secret({ c: 2 }) }], d: 'plain' };
    expect(reveal(value)).toEqual({ a: [1, 'x', { b: { c: 2 } }], d: 'plain' });
    expect(redact(value)).toEqual({ a: [1, '***', { b: '***' }], d: 'plain' });
    const plain = { a: [1] };
    expect(redact(plain)).toBe(plain);
  });

  it('evaluates secrets normally as arguments but keeps what is derived from them secret', () => {
    const upper = ev('upper(secrets.api_key)', scope);
    expect(isSecret(upper)).toBe(true);
    expect(reveal(upper)).toBe('SK-123');
    const concat = ev('"Bearer " + secrets.api_key', scope);
    expect(isSecret(concat)).toBe(true);
    expect(reveal(concat)).toBe('Bearer sk-123');
    expect(isSecret(ev('len(secrets.api_key)', scope))).toBe(true);
    // A choice passes the secret itself on.
    expect(ev('secrets.api_key ?? "none"', scope)).toBe(scope.secrets.api_key);
    // Comparisons and tests give plain booleans.
    expect(ev('secrets.api_key == "sk-123"', scope)).toBe(true);
    expect(ev('starts_with(secrets.api_key, "sk-")', scope)).toBe(true);
    expect(ev('len(secrets.api_key) > 3', scope)).toBe(true);
    // Unrelated results stay plain.
    expect(ev('upper(ctx.city)', scope)).toBe('KYIV');
    // Members of a secret object are secret.
    expect(isSecret(ev('s.user', { s: secret({ user: 'ada' }) }))).toBe(true);
    expect(isSecret(ev('string([s])', { s: secret('x') }))).toBe(true);
    expect(reveal(ev('string([s])', { s: secret('x') }))).toBe('["x"]');
  });

  it('prints *** for secrets inside interpolated text unless revealSecrets', () => {
    const args = { header: 'Bearer ${secrets.api_key}', key: '${secrets.api_key}', city: '${ctx.city}', obj: 'o=${ {k: secrets.api_key} }' };
    const out = interpolate(args, scope) as Record<string, unknown>;
    expect(out.header).toBe('Bearer ***');
    expect(out.obj).toBe('o={"k":"***"}');
    expect(isSecret(out.key)).toBe(true);
    expect(JSON.stringify(out)).not.toContain('sk-123');
    expect(redact(out)).toEqual({ header: 'Bearer ***', key: '***', city: 'Kyiv', obj: 'o={"k":"***"}' });
    expect(interpolate(args, scope, { revealSecrets: true })).toEqual({ header: 'Bearer sk-123', key: 'sk-123', city: 'Kyiv', obj: 'o={"k":"sk-123"}' });
  });
});

describe('expr: interpolate', () => {
  const scope = { ctx: { city: 'Berlin', n: 3, list: [1, 2], obj: { a: 1 }, none: null } };

  it('gives a string that is exactly ${expr} the value of the expression, of any type', () => {
    expect(interpolate('${ctx.n}', scope)).toBe(3);
    expect(interpolate('${ctx.n > 2}', scope)).toBe(true);
    expect(interpolate('${ctx.list}', scope)).toEqual([1, 2]);
    expect(interpolate('${ctx.none}', scope)).toBeNull();
    expect(interpolate('${ctx.missing}', scope)).toBeUndefined();
    expect(interpolate('${ {a: ctx.n} }', scope)).toEqual({ a: 3 });
  });

  it('stringifies values inside text: objects as JSON, null and undefined as nothing', () => {
    expect(interpolate('${ctx.city} has ${ctx.n} items: ${ctx.list} ${ctx.obj}.', scope)).toBe('Berlin has 3 items: [1,2] {"a":1}.');
    expect(interpolate('[${ctx.none}][${ctx.missing}]', scope)).toBe('[][]');
    expect(interpolate(' ${ctx.n}', scope)).toBe(' 3');
    expect(interpolate('${ctx.n}${ctx.n}', scope)).toBe('33');
  });

  it('escapes a literal ${ as $${', () => {
    expect(interpolate('cost: $${ctx.n}', scope)).toBe('cost: ${ctx.n}');
    expect(interpolate('$${x} and ${ctx.n}', scope)).toBe('${x} and 3');
    expect(interpolate('$$ and $', scope)).toBe('$$ and $');
    expect(hasExpressions('$${x}')).toBe(false);
    expect(hasExpressions('a ${x}')).toBe(true);
  });

  it('finds the closing brace outside strings and nested braces', () => {
    expect(interpolate('${ "}" + ctx.city }', scope)).toBe('}Berlin');
    expect(interpolate('x${ {a: {b: 1}}.a.b }y', scope)).toBe('x1y');
  });

  it('walks arrays and plain objects, copying them, and leaves other values and keys alone', () => {
    const input = { '${ctx.city}': ['${ctx.n}', 7, true, null, { deep: 'in ${ctx.city}' }] };
    const out = interpolate(input, scope);
    expect(out).toEqual({ '${ctx.city}': [3, 7, true, null, { deep: 'in Berlin' }] });
    expect(input['${ctx.city}'][0]).toBe('${ctx.n}');
  });

  it('reports a bad or unterminated ${ with its column in the whole string', () => {
    expect(exprError(() => interpolate('Hi ${ctx.city', scope))).toMatchObject({ reason: 'unterminated "${": missing "}"', column: 4 });
    expect(exprError(() => parseTemplate('Hi ${1 +}'))).toMatchObject({ reason: 'unexpected end of expression', column: 9 });
    expect(exprError(() => parseTemplate('ab ${"x}'))).toMatchObject({ column: 4 });
    expect(exprError(() => interpolate('${nope}', scope)).reason).toBe('unknown name "nope"');
  });
});
