import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../main/common/errors.js';
import type { TemplateErrorDetails, TemplateNode } from '../../main/runtime/intents/index.js';
import { parseTemplate } from '../../main/runtime/intents/index.js';

/** A compact rendering of the tree: words, (a|b), [a], {list:name}, <rule>, and + for glued parts. */
function show(node: TemplateNode): string {
  switch (node.type) {
    case 'sequence':
      return node.items.map(show).join(' ');
    case 'word':
      return node.text;
    case 'alternative': {
      const inner = node.options.map(show).join('|');
      return node.optional ? `[${inner}]` : `(${inner})`;
    }
    case 'slot':
      return `{${node.list}:${node.name}}`;
    case 'rule':
      return `<${node.name}>`;
    case 'joined':
      return node.parts.map(show).join('+');
  }
}

function errorOf(template: string): TemplateErrorDetails & { message: string } {
  try {
    parseTemplate(template);
  } catch (err) {
    if (!isTesseraError(err)) throw err;
    expect(err.code).toBe('VALIDATION_FAILED');
    return { ...(err.details as TemplateErrorDetails), message: err.message };
  }
  throw new Error(`"${template}" parsed without an error`);
}

describe('intent template parser', () => {
  it('parses words, alternatives, optional words and slots', () => {
    expect(show(parseTemplate('what is (the weather|the forecast) in {city}'))).toBe('what is (the weather|the forecast) in {city:city}');
    expect(show(parseTemplate('[please] set [a] timer'))).toBe('[please] set [a] timer');
  });

  it('names a slot after its list unless an alias is given', () => {
    const root = parseTemplate('from {city:origin} to {city}');
    const slots = root.items.filter((n) => n.type === 'slot');
    expect(slots.map((s) => (s.type === 'slot' ? [s.list, s.name] : []))).toEqual([
      ['city', 'origin'],
      ['city', 'city'],
    ]);
  });

  it('nests groups inside groups', () => {
    expect(show(parseTemplate('[(what is|what\'s) [the]] weather'))).toBe("[(what is|what's) [the]] weather");
    expect(show(parseTemplate('((a|b) c|[d (e|f)])'))).toBe('((a|b) c|[d (e|f)])');
  });

  it('treats an empty alternative as optional', () => {
    const root = parseTemplate('минут(у|ы|)');
    expect(show(root)).toBe('минут+[у|ы]');
    expect(show(parseTemplate('(|now) please'))).toBe('[now] please');
  });

  it('glues parts written without a space and keeps the space inside a group', () => {
    const root = parseTemplate('[the ]light');
    expect(root.items).toHaveLength(1);
    const joined = root.items[0]!;
    expect(joined.type).toBe('joined');
    const optional = joined.type === 'joined' ? joined.parts[0] : undefined;
    expect(optional?.type === 'alternative' && optional.options[0]!.trailingSpace).toBe(true);
  });

  it('parses expansion rule references', () => {
    expect(show(parseTemplate('play <album_phrase> [<room>]'))).toBe('play <album_phrase> [<room>]');
  });

  it('records the offset of every node', () => {
    const root = parseTemplate('hi (a|b) {city}');
    expect(root.items.map((n) => [n.start, n.end])).toEqual([
      [0, 2],
      [3, 8],
      [9, 15],
    ]);
  });

  it('reports an unclosed group at the opening bracket', () => {
    const e = errorOf('play (a|b {album}');
    expect(e.offset).toBe(5);
    expect(e.message).toBe('column 6: "(" is never closed; expected ")"');
  });

  it('reports a mismatched closing bracket where it stands', () => {
    const e = errorOf('set [a) timer');
    expect(e.offset).toBe(6);
    expect(e.reason).toContain('closes "[" at column 5');
  });

  it('rejects a stray closing bracket, a bare "|" and empty groups with their positions', () => {
    expect(errorOf('hello)').offset).toBe(5);
    expect(errorOf('a | b').reason).toContain('"|" outside a group');
    expect(errorOf('a | b').offset).toBe(2);
    expect(errorOf('say () now').offset).toBe(4);
    expect(errorOf('say [] now').reason).toBe('empty group "[]"');
    expect(errorOf('   ').reason).toBe('empty template');
  });

  it('rejects malformed slot and rule references', () => {
    expect(errorOf('in {city').reason).toContain('"{" is never closed');
    expect(errorOf('in {}').offset).toBe(3);
    expect(errorOf('in {a:b:c}').reason).toContain('write {list} or {list:slot_name}');
    expect(errorOf('in {bad name}').reason).toContain('invalid slot reference');
    expect(errorOf('in <>').reason).toContain('invalid expansion rule reference');
    expect(errorOf('in city}').offset).toBe(7);
  });
});
