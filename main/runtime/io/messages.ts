/**
 * The message catalogue (issue 13 point 16): every sentence the device says to a traveller, per language, one
 * JSON file per language (`resources/messages/en.json`, `ru.json`; adding `uk.json` adds Ukrainian). A file maps
 * keys to templates:
 *
 * ```json
 * {
 *   "timer.set_minutes": "Timer set for {minutes, plural, one {# minute} other {# minutes}}.",
 *   "weather.now": "{city, name}: {summary, name, weather}, {temp}°C.",
 *   "city.new_york": "New York"
 * }
 * ```
 *
 * Template syntax (a subset of ICU MessageFormat):
 * - `{x}` — the parameter `x` as text (a number in the language's digits);
 * - `{x, plural, one {…} few {…} many {…} other {…}}` — the branch `Intl.PluralRules` picks for the number `x`
 *   (`=N {…}` matches exactly N first); `#` inside a branch is the number; `other` is required;
 * - `{x, name}` / `{x, name, LIST}` — the display name of the id `x`: the key `LIST.<id>` (default LIST: `x`),
 *   e.g. `city.berlin` → "Berlin" / "Берлин"; an id with no entry is shown as written, with `_` as spaces.
 *
 * Contract: every template is parsed when the catalogue loads (an error names the file and the key); rendering
 * never throws. A key missing in a language falls back to the default language (en), then to the key itself; a
 * missing parameter renders as nothing. Languages are chosen by their code (`ru`, `ru-RU` → `ru`).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TesseraError } from '../../common/errors.js';

/** The language every key must exist in, and the fallback for the others. */
export const DEFAULT_LANGUAGE = 'en';

type Node = string | { arg: string; kind: 'text' } | { arg: string; kind: 'name'; list: string } | { arg: string; kind: 'plural'; branches: Map<string, Node[]> } | { kind: 'pound' };

export interface MessageCatalogue {
  /** Languages with a file, default first. */
  readonly languages: readonly string[];
  /** The catalogue's language for `language` (`ru-RU` → `ru`), or the default when it has none. */
  resolve(language: string | null | undefined): string;
  has(key: string, language?: string): boolean;
  /** The words for `key` in `language` (see the module comment for the fallbacks). Never throws. */
  render(key: string, params?: Record<string, unknown>, language?: string | null): string;
  /** The display name of `id` in `list` (`city`, `berlin` → "Berlin"). */
  name(list: string, id: string, language?: string | null): string;
  /** Keys of a language's file, sorted. */
  keys(language: string): string[];
  /** The parameters a key's template uses in a language (`{x}`, `{x, plural…}`, `{x, name}`), sorted. */
  params(key: string, language: string): string[];
}

/** `resources/messages` of the app, found from this file (source or build alike). */
export function builtinMessagesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'resources', 'messages');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new TesseraError('NOT_FOUND', 'Cannot find the app folder with resources/messages.');
    dir = parent;
  }
}

/**
 * Loads every `<language>.json` of `dirs` (later folders add keys to, or replace keys of, earlier ones).
 * Throws VALIDATION_FAILED naming the file and key of a malformed file or template.
 */
export function loadMessageCatalogue(dirs: readonly string[] = [builtinMessagesDir()]): MessageCatalogue {
  const files: Array<{ language: string; file: string; entries: Record<string, unknown> }> = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const m = /^([a-z]{2,3})\.json$/.exec(name);
      if (!m) continue;
      const file = join(dir, name);
      let entries: unknown;
      try {
        entries = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new TesseraError('VALIDATION_FAILED', `${file}: not valid JSON: ${(err as Error).message}`);
      }
      if (entries === null || typeof entries !== 'object' || Array.isArray(entries)) throw new TesseraError('VALIDATION_FAILED', `${file}: must be an object of "key": "template"`);
      files.push({ language: m[1]!, file, entries: entries as Record<string, unknown> });
    }
  }
  return createMessageCatalogue(files);
}

/** A catalogue from in-memory files (`file` names them in errors). */
export function createMessageCatalogue(files: ReadonlyArray<{ language: string; file: string; entries: Record<string, unknown> }>): MessageCatalogue {
  const tables = new Map<string, Map<string, Node[]>>();
  for (const { language, file, entries } of files) {
    let table = tables.get(language);
    if (!table) tables.set(language, (table = new Map()));
    for (const [key, template] of Object.entries(entries)) {
      if (!/^[a-z0-9_]+(\.[a-z0-9_-]+)*$/.test(key)) throw new TesseraError('VALIDATION_FAILED', `${file}: "${key}" is not a message key (lower-case words and digits joined by dots)`);
      if (typeof template !== 'string') throw new TesseraError('VALIDATION_FAILED', `${file}: "${key}" must be a string`);
      try {
        table.set(key, parseTemplate(template));
      } catch (err) {
        throw new TesseraError('VALIDATION_FAILED', `${file}: "${key}": ${(err as Error).message}`);
      }
    }
  }
  const languages = [...tables.keys()].sort((a, b) => (a === DEFAULT_LANGUAGE ? -1 : b === DEFAULT_LANGUAGE ? 1 : a < b ? -1 : 1));
  const plurals = new Map<string, Intl.PluralRules>();
  const numbers = new Map<string, Intl.NumberFormat>();
  const pluralOf = (lang: string) => plurals.get(lang) ?? plurals.set(lang, new Intl.PluralRules(lang)).get(lang)!;
  const numberOf = (lang: string) => numbers.get(lang) ?? numbers.set(lang, new Intl.NumberFormat(lang, { useGrouping: false, maximumFractionDigits: 3 })).get(lang)!;

  const resolve = (language: string | null | undefined): string => {
    if (typeof language === 'string') {
      const lower = language.toLowerCase();
      if (tables.has(lower)) return lower;
      const base = lower.split(/[-_]/)[0]!;
      if (tables.has(base)) return base;
    }
    return tables.has(DEFAULT_LANGUAGE) ? DEFAULT_LANGUAGE : (languages[0] ?? DEFAULT_LANGUAGE);
  };
  const lookup = (key: string, lang: string): Node[] | undefined => tables.get(lang)?.get(key) ?? tables.get(DEFAULT_LANGUAGE)?.get(key);

  const name = (list: string, id: string, lang: string): string => {
    const nodes = lookup(`${list}.${id.trim().toLowerCase().replace(/\s+/g, '_')}`, lang);
    if (nodes) return format(nodes, {}, lang, undefined);
    return /^[a-z0-9]+(_[a-z0-9]+)+$/.test(id) ? id.replace(/_/g, ' ') : id;
  };
  const text = (value: unknown, lang: string): string => {
    if (value === null || value === undefined) return '';
    if (typeof value === 'number') return numberOf(lang).format(value);
    if (typeof value === 'string') return value;
    if (typeof value === 'boolean') return String(value);
    return JSON.stringify(value);
  };
  const format = (nodes: Node[], params: Record<string, unknown>, lang: string, count: number | undefined): string => {
    let out = '';
    for (const node of nodes) {
      if (typeof node === 'string') out += node;
      else if (node.kind === 'pound') out += count === undefined ? '#' : numberOf(lang).format(count);
      else if (node.kind === 'text') out += text(params[node.arg], lang);
      else if (node.kind === 'name') {
        const v = params[node.arg];
        out += v === null || v === undefined ? '' : name(node.list, text(v, lang), lang);
      } else {
        const n = Number(params[node.arg]);
        const exact = node.branches.get(`=${n}`);
        const branch = exact ?? node.branches.get(Number.isFinite(n) ? pluralOf(lang).select(n) : 'other') ?? node.branches.get('other')!;
        out += format(branch, params, lang, Number.isFinite(n) ? n : undefined);
      }
    }
    return out;
  };

  return {
    languages,
    resolve,
    has: (key, language) => (language === undefined ? lookup(key, DEFAULT_LANGUAGE) !== undefined : tables.get(language)?.has(key) === true),
    render(key, params = {}, language) {
      const lang = resolve(language);
      const nodes = lookup(key, lang);
      return nodes ? format(nodes, params, lang, undefined) : key;
    },
    name: (list, id, language) => name(list, id, resolve(language)),
    keys: (language) => [...(tables.get(language)?.keys() ?? [])].sort(),
    params(key, language) {
      const found = new Set<string>();
      const walk = (nodes: Node[]) => {
        for (const n of nodes) {
          if (typeof n === 'string' || n.kind === 'pound') continue;
          found.add(n.arg);
          if (n.kind === 'plural') n.branches.forEach(walk);
        }
      };
      walk(tables.get(language)?.get(key) ?? []);
      return [...found].sort();
    },
  };
}

const PLURAL_CATEGORIES = new Set(['zero', 'one', 'two', 'few', 'many', 'other']);

/** Parses a template into nodes; throws an Error saying what is wrong and where (character offset). */
function parseTemplate(template: string): Node[] {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at character ${i + 1} of "${template}"`);
  };
  const skipSpace = () => {
    while (i < template.length && /\s/.test(template[i]!)) i++;
  };
  const word = (): string => {
    skipSpace();
    const m = /^[=A-Za-z0-9_]+/.exec(template.slice(i));
    if (!m) fail('expected a name');
    i += m![0].length;
    skipSpace();
    return m![0];
  };
  const nodes = (inPlural: boolean, depth: number): Node[] => {
    const out: Node[] = [];
    let literal = '';
    const flush = () => {
      if (literal) out.push(literal);
      literal = '';
    };
    while (i < template.length) {
      const c = template[i]!;
      if (c === '}') {
        if (depth === 0) fail('"}" without "{"');
        break;
      }
      if (c === '#' && inPlural) {
        flush();
        out.push({ kind: 'pound' });
        i++;
        continue;
      }
      if (c !== '{') {
        literal += c;
        i++;
        continue;
      }
      flush();
      i++;
      const arg = word();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(arg)) fail(`"${arg}" is not a parameter name`);
      if (template[i] === '}') {
        i++;
        out.push({ arg, kind: 'text' });
        continue;
      }
      if (template[i] !== ',') fail('expected "," or "}"');
      i++;
      const kind = word();
      if (kind === 'name') {
        let list = arg;
        if (template[i] === ',') {
          i++;
          list = word();
        }
        if (template[i] !== '}') fail('expected "}" after the name list');
        i++;
        out.push({ arg, kind: 'name', list });
      } else if (kind === 'plural') {
        if (template[i] !== ',') fail('expected "," after plural');
        i++;
        const branches = new Map<string, Node[]>();
        skipSpace();
        while (template[i] !== '}') {
          if (i >= template.length) fail('the plural is never closed');
          const category = word();
          if (!PLURAL_CATEGORIES.has(category) && !/^=\d+$/.test(category)) fail(`"${category}" is not a plural category (zero, one, two, few, many, other, =N)`);
          if (template[i] !== '{') fail(`expected "{" after ${category}`);
          i++;
          branches.set(category, nodes(true, depth + 1));
          if (template[i] !== '}') fail(`the ${category} branch is never closed`);
          i++;
          skipSpace();
        }
        i++;
        if (!branches.has('other')) fail('a plural needs an "other" branch');
        out.push({ arg, kind: 'plural', branches });
      } else {
        fail(`"${kind}" is not a format (plural, name)`);
      }
    }
    flush();
    return out;
  };
  const parsed = nodes(false, 0);
  if (i < template.length) fail('"}" without "{"');
  return parsed;
}
