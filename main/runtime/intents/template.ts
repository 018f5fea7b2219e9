/**
 * The sentence template language of intent rules, after Home Assistant's hassil
 * (https://github.com/home-assistant/hassil, "Sentence templates"):
 *
 * | syntax            | meaning                                                                    |
 * |-------------------|----------------------------------------------------------------------------|
 * | `word`            | a literal word, compared after normalization (./normalize.ts)              |
 * | `(a\|b c\|d)`     | exactly one of the alternatives; an empty alternative `(a\|)` is optional  |
 * | `[words]`         | optional; `[a\|b]` is "a, b or nothing"                                    |
 * | `{list}`          | a slot filled from the list `list`; the slot is named `list`               |
 * | `{list:name}`     | a slot filled from the list `list`, named `name`                           |
 * | `<rule>`          | the template of the expansion rule `rule`, inlined                         |
 *
 * Groups nest. Parts written without a space between them are glued into one word: `минут(у|ы|)` is
 * "минуту", "минуты" or "минут", and `[the ]light` is "the light" or "light" (hassil's convention, so Russian
 * endings need no repeated stems). Glued parts may not contain slots. Pure module: no Node APIs.
 */
import { TesseraError } from '../../common/errors.js';

interface Span {
  /** Offset of the node's first character in the template. */
  start: number;
  /** Offset just past the node's last character. */
  end: number;
}

export interface SequenceNode extends Span {
  type: 'sequence';
  items: TemplateNode[];
  /** Whether the sequence's text begins / ends with whitespace (matters only when it is glued to a word). */
  leadingSpace: boolean;
  trailingSpace: boolean;
}
export interface WordNode extends Span {
  type: 'word';
  /** The text as written (it may normalize to several tokens, e.g. "wi-fi", or none, e.g. "?"). */
  text: string;
}
export interface AlternativeNode extends Span {
  type: 'alternative';
  options: SequenceNode[];
  /** `[…]`, or `(…)` with an empty alternative: matching nothing is allowed. */
  optional: boolean;
}
export interface SlotNode extends Span {
  type: 'slot';
  /** The list the value comes from. */
  list: string;
  /** The slot name in the result (the list name unless `{list:name}`). */
  name: string;
}
export interface RuleRefNode extends Span {
  type: 'rule';
  name: string;
}
export interface JoinedNode extends Span {
  type: 'joined';
  /** Parts written without whitespace between them; their expansions are concatenated. */
  parts: TemplateNode[];
}

export type TemplateNode = SequenceNode | WordNode | AlternativeNode | SlotNode | RuleRefNode | JoinedNode;

/** Details of a template syntax error (`TesseraError` code VALIDATION_FAILED, `details` of this shape). */
export interface TemplateErrorDetails {
  template: string;
  /** Offset of the offending character in the template (0-based). */
  offset: number;
  /** The message without the position prefix. */
  reason: string;
}

/** Throw a template error at `offset`; the message reads "column N: reason". */
export function templateError(template: string, offset: number, reason: string): never {
  const details: TemplateErrorDetails = { template, offset, reason };
  throw new TesseraError('VALIDATION_FAILED', `column ${offset + 1}: ${reason}`, { details });
}

const NAME_RE = /^[\p{L}\p{N}_.-]+$/u;
const SPECIAL = new Set(['(', ')', '[', ']', '{', '}', '<', '>', '|']);

/**
 * Parse a sentence template into its syntax tree. Throws `VALIDATION_FAILED` with
 * {@link TemplateErrorDetails} (offset of the fault) on unbalanced or empty groups, `|` outside a group,
 * malformed slot or rule references, and empty templates.
 */
export function parseTemplate(template: string): SequenceNode {
  let i = 0;

  const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);

  const parseSequence = (close: string | undefined): SequenceNode => {
    const start = i;
    const items: TemplateNode[] = [];
    let chunk: TemplateNode[] = [];
    const flush = () => {
      if (chunk.length === 1) items.push(chunk[0]!);
      else if (chunk.length > 1) items.push({ type: 'joined', parts: chunk, start: chunk[0]!.start, end: chunk[chunk.length - 1]!.end });
      chunk = [];
    };
    const leadingSpace = isSpace(template[i]);
    for (;;) {
      const c = template[i];
      if (c === undefined) break;
      if (isSpace(c)) {
        flush();
        i++;
        continue;
      }
      if (c === '|' || c === ')' || c === ']') {
        if (close !== undefined) break;
        if (c === '|') templateError(template, i, '"|" outside a group; write the alternatives as (a|b)');
        templateError(template, i, `unexpected "${c}" without a matching opening bracket`);
      }
      if (c === '(' || c === '[') chunk.push(parseGroup(c));
      else if (c === '{') chunk.push(parseReference('{', '}'));
      else if (c === '<') chunk.push(parseReference('<', '>'));
      else if (c === '}' || c === '>') templateError(template, i, `unexpected "${c}" without a matching opening bracket`);
      else {
        const wordStart = i;
        while (i < template.length && !isSpace(template[i]) && !SPECIAL.has(template[i]!)) i++;
        chunk.push({ type: 'word', text: template.slice(wordStart, i), start: wordStart, end: i });
      }
    }
    flush();
    return { type: 'sequence', items, start, end: i, leadingSpace, trailingSpace: i > start && isSpace(template[i - 1]) };
  };

  const parseGroup = (open: '(' | '['): AlternativeNode => {
    const start = i;
    const close = open === '(' ? ')' : ']';
    i++;
    const options: SequenceNode[] = [];
    for (;;) {
      options.push(parseSequence(close));
      const c = template[i];
      if (c === '|') {
        i++;
        continue;
      }
      if (c === close) {
        i++;
        break;
      }
      if (c === undefined) templateError(template, start, `"${open}" is never closed; expected "${close}"`);
      templateError(template, i, `"${c}" closes "${open}" at column ${start + 1}; expected "${close}"`);
    }
    const empty = options.filter((o) => o.items.length === 0).length;
    if (empty === options.length) templateError(template, start, `empty group "${open}${close}"`);
    return { type: 'alternative', options: options.filter((o) => o.items.length > 0), optional: open === '[' || empty > 0, start, end: i };
  };

  const parseReference = (open: '{' | '<', close: '}' | '>'): SlotNode | RuleRefNode => {
    const start = i;
    const endAt = template.indexOf(close, i + 1);
    const what = open === '{' ? 'slot' : 'expansion rule';
    if (endAt < 0) templateError(template, start, `"${open}" is never closed; expected "${close}"`);
    const body = template.slice(i + 1, endAt).trim();
    i = endAt + 1;
    if (open === '<') {
      if (!NAME_RE.test(body)) templateError(template, start, `invalid ${what} reference "<${body}>"`);
      return { type: 'rule', name: body, start, end: i };
    }
    const [list, name, extra] = body.split(':').map((s) => s.trim());
    if (!list || !NAME_RE.test(list) || extra !== undefined || (name !== undefined && !NAME_RE.test(name))) {
      templateError(template, start, `invalid ${what} reference "{${body}}"; write {list} or {list:slot_name}`);
    }
    return { type: 'slot', list, name: name ?? list, start, end: i };
  };

  const root = parseSequence(undefined);
  if (root.items.length === 0) templateError(template, 0, 'empty template');
  return root;
}

/** Slot and rule references anywhere in `node`, in order of appearance. */
export function references(node: TemplateNode): Array<SlotNode | RuleRefNode> {
  switch (node.type) {
    case 'slot':
    case 'rule':
      return [node];
    case 'word':
      return [];
    case 'sequence':
      return node.items.flatMap(references);
    case 'joined':
      return node.parts.flatMap(references);
    case 'alternative':
      return node.options.flatMap(references);
  }
}
