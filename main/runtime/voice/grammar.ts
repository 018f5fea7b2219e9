/**
 * A JSGF grammar compiled from the intent rules (issue 6 point 4, after Home Assistant's speech-to-phrase):
 * pocketsphinx can then only hear sentences the intent recognizer understands, which makes a 36 MB model
 * exact on command phrases.
 *
 * What carries over, from the compiled rule templates (main/runtime/intents/matcher.ts `Matcher`):
 * - words, `(a|b)` alternatives, `[optional]` parts, expansion rules (already inlined), glued words
 *   (already expanded to their forms), fixed slots (they need no words);
 * - `{list}` value slots become one grammar rule per list, with every spoken form of every value;
 * - `{range}` slots become the number words the recognizer reads back (./normalize.ts `readNumber`: 0–99 as
 *   words; digits cannot be spoken, and 100 and up are not readable from words, so they are left out).
 *
 * - `{wildcard}` slots of lists declared `speech: names` become a run of 1–4 words of {@link NAME_WORDS} (place and
 *   landmark words): a place said aloud that is not on the traveller's journey is heard as words and answered
 *   ("I don't know a place called the eiffel tower…"), not forced onto the nearest place of the `{place}` list;
 *
 * What cannot, and is reported in `skipped` (never silently dropped):
 * - sentences with another `{wildcard}` slot (free text has no grammar);
 * - words missing from the pronunciation dictionary (CMU dict + {@link EXTRA_PRONUNCIATIONS}) and that
 *   espeak-ng cannot spell out either (./phonemes.ts; only when an espeak-ng binary is given): the alternative
 *   holding the word is removed; a sentence left with no way to be said is skipped.
 *
 * The result is cached by cid: the same rules and dictionary give the same grammar files, reused across runs.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cidOf } from '../../common/cid.js';
import { TesseraError } from '../../common/errors.js';
import type { RuleSet } from '../intents/index.js';
import type { CompiledList, Matcher } from '../intents/matcher.js';
import { espeakPronunciations } from './phonemes.js';

/**
 * Words of the bundled rules that the CMU dictionary lacks, in its ARPAbet phones: the native pronunciation
 * and the one espeak-ng uses (`espeak-ng -x -v en-us WORD`: Lviv is 'Elv'aIv, Kyiv kj'Iv). Anything else
 * missing is reported in {@link CompiledGrammar.skipped}.
 */
export const EXTRA_PRONUNCIATIONS: Readonly<Record<string, readonly string[]>> = {
  tessera: ['T EH S ER AH', 'T EH S EH R AH'],
  lviv: ['L V IY V', 'L AH V IY V', 'EH L V AY V'],
  kyiv: ['K IY V', 'K Y IH V'],
};

/**
 * The words a `speech: names` wildcard is heard as: what names of places and landmarks are made of, and famous
 * ones a traveller may ask for. Words missing from the dictionary are pruned like any other.
 */
export const NAME_WORDS: readonly string[] = (
  'saint royal national central tower palace castle cathedral church chapel abbey basilica monastery temple mosque synagogue museum gallery ' +
  'library university park garden gardens bridge river harbour station airport market theatre theater cinema stadium zoo fountain ' +
  'statue monument memorial cemetery fortress island hotel ' +
  'eiffel louvre notre dame buckingham westminster colosseum vatican kremlin acropolis brandenburg liberty empire building times golden'
).split(' ');

/** A sentence (or a part of one) that is not in the grammar, and why. */
export interface SkippedRule {
  intent: string;
  /** The template as written, or `{list}` for a list value. */
  sentence: string;
  /** `file:line` of the template. */
  source: string;
  reason: string;
}

/** The grammar for pocketsphinx and what went into it. */
export interface CompiledGrammar {
  /** cid of the inputs (rules as compiled + dictionary identity): the cache key. */
  cid: string;
  /** JSGF V1.0 text; the public rule is `<utterance>`. */
  jsgf: string;
  /** Pronunciation dictionary text for exactly the grammar's words (pocketsphinx `-dict` format). */
  dict: string;
  /** Distinct words in the grammar. */
  words: number;
  /** Intents with at least one sentence in the grammar. */
  intents: string[];
  /** Words whose pronunciation espeak-ng generated (not in the CMU dictionary nor the built-in list). */
  generated: string[];
  /** Sentences in the grammar. */
  sentences: number;
  skipped: SkippedRule[];
}

/** Grammar files on disk, as pocketsphinx wants them. */
export interface GrammarFiles extends CompiledGrammar {
  jsgfFile: string;
  dictFile: string;
  /** Whether the files were already in the cache. */
  cached: boolean;
}

// --- the expression tree before pruning ------------------------------------------------------------------

type Expr =
  | { k: 'seq'; items: Expr[] }
  | { k: 'alt'; options: Expr[]; optional: boolean }
  | { k: 'words'; words: string[] }
  | { k: 'ref'; name: string }
  | { k: 'void'; reason: string };

const NULL: Expr = { k: 'seq', items: [] };

const EN_UNITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const EN_TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** English words for 0–99 that `readNumber` reads back as `n`; undefined for 100 and up. */
export function numberWords(n: number): string[] | undefined {
  if (!Number.isInteger(n) || n < 0 || n > 99) return undefined;
  if (n < 20) return [EN_UNITS[n]!];
  const tens = EN_TENS[Math.floor(n / 10)]!;
  return n % 10 === 0 ? [tens] : [tens, EN_UNITS[n % 10]!];
}

interface Lists {
  /** Grammar rule name → its expression. */
  rules: Map<string, Expr>;
  skipped: SkippedRule[];
}

const ruleName = (kind: string, list: string) => `${kind}_${list.replace(/[^A-Za-z0-9_]/g, '_')}`;

/** Most words a `speech: names` wildcard is heard as. */
const MAX_NAME_WORDS = 4;

function listExpr(list: CompiledList, lists: Lists): Expr {
  if (list.kind === 'wildcard' && list.speech === 'names') {
    const name = ruleName('names', list.name);
    if (!lists.rules.has(name)) {
      // "[the] word word [word]": two words at least and no short function words, which would soak up any sound
      // (measured on the espeak-ng corpus, test/integration/voice-accuracy.test.ts).
      const word: Expr = { k: 'alt', options: NAME_WORDS.map((w) => ({ k: 'words', words: [w] })), optional: false };
      const optional: Expr = { k: 'alt', options: [word], optional: true };
      const n = Math.max(2, Math.min(MAX_NAME_WORDS, list.maxTokens) - 1);
      lists.rules.set(name, { k: 'seq', items: [{ k: 'alt', options: [{ k: 'words', words: ['the'] }], optional: true }, word, word, ...Array.from({ length: n - 2 }, () => optional)] });
    }
    return { k: 'ref', name };
  }
  if (list.kind === 'wildcard') return { k: 'void', reason: `wildcard slot {${list.name}} is free text, which a grammar cannot hold` };
  const name = ruleName(list.kind === 'range' ? 'range' : 'list', list.name);
  if (!lists.rules.has(name)) {
    const options: Expr[] = [];
    if (list.kind === 'range') {
      for (let n = list.from; n <= list.to; n += list.step) {
        const words = numberWords(n);
        if (words) options.push({ k: 'words', words });
      }
      if (list.to > 99) lists.skipped.push({ intent: '*', sentence: `{${list.name}}`, source: '', reason: `numbers ${Math.max(100, list.from)}–${list.to} are left out: the recognizer reads number words up to 99 only` });
    } else {
      for (const entries of list.byFirstToken.values()) for (const e of entries) options.push({ k: 'words', words: e.tokens });
    }
    lists.rules.set(name, options.length > 0 ? { k: 'alt', options, optional: false } : { k: 'void', reason: `list {${list.name}} has no speakable value` });
  }
  return { k: 'ref', name };
}

function toExpr(m: Matcher, lists: Lists): Expr {
  switch (m.k) {
    case 'seq':
      return { k: 'seq', items: m.items.map((i) => toExpr(i, lists)) };
    case 'alt':
      return { k: 'alt', options: m.options.map((o) => toExpr(o, lists)), optional: m.optional };
    case 'lit':
      return m.seqs.length === 1 ? { k: 'words', words: m.seqs[0]! } : { k: 'alt', options: m.seqs.map((words) => ({ k: 'words', words })), optional: false };
    case 'slot':
      return listExpr(m.list, lists);
  }
}

function collectWords(e: Expr, into: Set<string>): void {
  if (e.k === 'words') for (const w of e.words) into.add(w);
  else if (e.k === 'seq') for (const i of e.items) collectWords(i, into);
  else if (e.k === 'alt') for (const o of e.options) collectWords(o, into);
}

/** Remove what cannot be said with `known` words; `void` when nothing is left. */
function prune(e: Expr, known: (w: string) => boolean, voidRefs: Map<string, string>): Expr {
  switch (e.k) {
    case 'words': {
      const missing = e.words.filter((w) => !known(w));
      return missing.length === 0 ? e : { k: 'void', reason: `"${missing.join('", "')}" ${missing.length > 1 ? 'are' : 'is'} not in the pronunciation dictionary` };
    }
    case 'ref': {
      const reason = voidRefs.get(e.name);
      return reason === undefined ? e : { k: 'void', reason };
    }
    case 'void':
      return e;
    case 'seq': {
      const items = e.items.map((i) => prune(i, known, voidRefs));
      const bad = items.find((i) => i.k === 'void');
      // An optional part left with no option is an empty sequence: drop it rather than write <NULL>.
      return bad ?? { k: 'seq', items: items.filter((i) => !(i.k === 'seq' && i.items.length === 0)) };
    }
    case 'alt': {
      const all = e.options.map((o) => prune(o, known, voidRefs));
      const options = all.filter((o) => o.k !== 'void');
      if (options.length > 0) return { k: 'alt', options, optional: e.optional };
      return e.optional ? NULL : (all[0] ?? { k: 'void', reason: 'empty alternative' });
    }
  }
}

/** Words of `e` missing from the dictionary (in alternatives that `prune` removed, when `e` survived). */
function missingWords(e: Expr, known: (w: string) => boolean, out: Set<string>): void {
  if (e.k === 'words') {
    for (const w of e.words) if (!known(w)) out.add(w);
  } else if (e.k === 'seq') {
    for (const i of e.items) missingWords(i, known, out);
  } else if (e.k === 'alt') {
    for (const o of e.options) missingWords(o, known, out);
  }
}

function droppedReason(e: Expr, known: (w: string) => boolean, what: string): string | undefined {
  const missing = new Set<string>();
  missingWords(e, known, missing);
  if (missing.size === 0) return undefined;
  const list = [...missing].slice(0, 10).map((w) => `"${w}"`).join(', ') + (missing.size > 10 ? `, … (${missing.size} words)` : '');
  const one = missing.size === 1;
  return `${list} ${one ? 'is' : 'are'} not in the pronunciation dictionary: the ${what} that use ${one ? 'it' : 'them'} are left out`;
}

function render(e: Expr): string {
  switch (e.k) {
    case 'words':
      return e.words.join(' ');
    case 'ref':
      return `<${e.name}>`;
    case 'void':
      return '<VOID>';
    case 'seq':
      return e.items.length === 0 ? '<NULL>' : e.items.map((i) => (i.k === 'alt' && !i.optional && i.options.length > 1 ? `( ${render(i)} )` : render(i))).join(' ');
    case 'alt': {
      const inner = e.options.map(render).join(' | ');
      if (e.optional) return `[ ${inner} ]`;
      return inner;
    }
  }
}

/** The parts of the grammar before the dictionary is consulted: deterministic, cheap. */
function build(ruleSets: readonly RuleSet[]) {
  const lists: Lists = { rules: new Map(), skipped: [] };
  const sentences: Array<{ intent: string; sentence: string; source: string; expr: Expr }> = [];
  for (const rs of ruleSets) {
    if (rs.language !== 'en') continue;
    for (const s of rs.sentences) sentences.push({ intent: s.intent, sentence: s.sentence, source: `${s.source.file}:${s.source.line}`, expr: toExpr(s.matcher, lists) });
  }
  return { lists, sentences };
}

/** Options of the grammar compiler. */
export interface GrammarOptions {
  /** espeak-ng, to generate pronunciations for words the dictionaries lack (./phonemes.ts). */
  espeak?: string;
}

/**
 * Read the pronunciations of `words` from a CMU-format dictionary (`word`, `word(2)` … lines), then
 * {@link EXTRA_PRONUNCIATIONS}, then espeak-ng for what is still missing (when `espeak` is given).
 */
export function readPronunciations(dictFile: string, words: ReadonlySet<string>, options: GrammarOptions = {}): { prons: Map<string, string[]>; generated: string[] } {
  let text: string;
  try {
    text = readFileSync(dictFile, 'utf8');
  } catch (err) {
    throw new TesseraError('VOICE_UNAVAILABLE', `cannot read the pronunciation dictionary ${dictFile}: ${(err as Error).message}; install it with: sudo apt-get install -y pocketsphinx-en-us`, { cause: err });
  }
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    const word = line.slice(0, space).replace(/\(\d+\)$/, '');
    if (!words.has(word)) continue;
    const phones = line.slice(space + 1).replace(/#.*$/, '').trim();
    if (phones) found.set(word, [...(found.get(word) ?? []), phones]);
  }
  for (const [word, prons] of Object.entries(EXTRA_PRONUNCIATIONS)) if (words.has(word) && !found.has(word)) found.set(word, [...prons]);
  const generated: string[] = [];
  if (options.espeak) {
    const missing = [...words].filter((w) => !found.has(w)).sort();
    for (const [word, phones] of espeakPronunciations(options.espeak, missing)) {
      found.set(word, [phones]);
      generated.push(word);
    }
  }
  return { prons: found, generated };
}

/**
 * Compile the English rule sets into a grammar. `dictFile` is the CMU dictionary of the pocketsphinx model.
 * Throws VOICE_UNAVAILABLE when no sentence survives (no English rules, or none speakable).
 */
export function compileGrammar(ruleSets: readonly RuleSet[], dictFile: string, options: GrammarOptions = {}): CompiledGrammar {
  const { lists, sentences } = build(ruleSets);
  const cid = grammarCid(ruleSets, dictFile, options);
  const words = new Set<string>();
  for (const e of lists.rules.values()) collectWords(e, words);
  for (const s of sentences) collectWords(s.expr, words);
  const { prons, generated } = readPronunciations(dictFile, words, options);
  const known = (w: string) => prons.has(w);

  const skipped: SkippedRule[] = [...lists.skipped];
  const voidRefs = new Map<string, string>();
  const ruleText: string[] = [];
  for (const [name, e] of lists.rules) {
    const pruned = prune(e, known, voidRefs);
    const listName = name.replace(/^(list|range|names)_/, '');
    const dropped = droppedReason(e, known, 'values');
    if (dropped && pruned.k !== 'void') skipped.push({ intent: '*', sentence: `{${listName}}`, source: '', reason: dropped });
    if (pruned.k === 'void') voidRefs.set(name, `list {${listName}}: ${pruned.reason}`);
    else ruleText.push(`<${name}> = ${render(pruned)};`);
  }
  const kept: string[] = [];
  const intents = new Set<string>();
  sentences.forEach((s, i) => {
    const pruned = prune(s.expr, known, voidRefs);
    if (pruned.k === 'void') {
      skipped.push({ intent: s.intent, sentence: s.sentence, source: s.source, reason: pruned.reason });
      return;
    }
    const dropped = droppedReason(s.expr, known, 'alternatives');
    if (dropped) skipped.push({ intent: s.intent, sentence: s.sentence, source: s.source, reason: dropped });
    const name = `s${i}`;
    kept.push(name);
    intents.add(s.intent);
    ruleText.push(`<${name}> = ${render(pruned)};`);
  });
  if (kept.length === 0) throw new TesseraError('VOICE_UNAVAILABLE', `no intent sentence can be turned into a speech grammar (${skipped.length} skipped; first: ${skipped[0]?.reason ?? 'no English rule set loaded'})`);

  const jsgf = ['#JSGF V1.0;', 'grammar tessera;', `public <utterance> = ${kept.map((n) => `<${n}>`).join(' | ')};`, ...ruleText, ''].join('\n');
  const used = new Set<string>();
  for (const line of ruleText) for (const tok of line.replace(/<[^>]*>/g, ' ').split(/[\s|()[\];=]+/)) if (tok) used.add(tok);
  const dictLines: string[] = [];
  for (const w of [...used].sort()) (prons.get(w) ?? []).forEach((p, i) => dictLines.push(`${i === 0 ? w : `${w}(${i + 1})`} ${p}`));
  return { cid, jsgf, dict: dictLines.join('\n') + '\n', words: used.size, intents: [...intents], generated: generated.filter((w) => used.has(w)), sentences: kept.length, skipped };
}

/** The cache key: the rules as compiled (structure, not file positions), the dictionary's identity, espeak-ng. */
export function grammarCid(ruleSets: readonly RuleSet[], dictFile: string, options: GrammarOptions = {}): string {
  const { lists, sentences } = build(ruleSets);
  let dictId: unknown = dictFile;
  try {
    const st = statSync(dictFile);
    dictId = { file: dictFile, size: st.size, mtime: Math.floor(st.mtimeMs) };
  } catch {
    // missing: compileGrammar reports it
  }
  return cidOf({ v: 1, lists: [...lists.rules].map(([n, e]) => [n, render(e)]), sentences: sentences.map((s) => [s.intent, render(s.expr)]), dict: dictId, extra: EXTRA_PRONUNCIATIONS, espeak: options.espeak ?? null });
}

/**
 * The grammar as files in `<cacheDir>/grammar-<cid-hex>/`: compiled and written (atomically) on first use,
 * read back afterwards. Writing a new grammar removes the entries of earlier rule sets, except the folders named
 * in `keep` (the grammar a recognizer may still be reading when a dynamic list changed).
 */
export function grammarFiles(ruleSets: readonly RuleSet[], dictFile: string, cacheDir: string, options: GrammarOptions & { keep?: readonly string[] } = {}): GrammarFiles {
  const cid = grammarCid(ruleSets, dictFile, options.espeak ? { espeak: options.espeak } : {});
  const dir = join(cacheDir, `grammar-${cid.slice(3, 23)}`);
  const jsgfFile = join(dir, 'tessera.gram');
  const dictOut = join(dir, 'tessera.dict');
  const reportFile = join(dir, 'report.json');
  if (existsSync(reportFile) && existsSync(jsgfFile) && existsSync(dictOut)) {
    try {
      const report = JSON.parse(readFileSync(reportFile, 'utf8')) as CompiledGrammar;
      if (report.cid === cid) return { ...report, jsgf: readFileSync(jsgfFile, 'utf8'), dict: readFileSync(dictOut, 'utf8'), jsgfFile, dictFile: dictOut, cached: true };
    } catch {
      // a damaged cache entry is rebuilt below
    }
  }
  const grammar = compileGrammar(ruleSets, dictFile, options.espeak ? { espeak: options.espeak } : {});
  mkdirSync(dir, { recursive: true });
  const write = (file: string, text: string) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  write(jsgfFile, grammar.jsgf);
  write(dictOut, grammar.dict);
  // The report repeats everything but the two texts, which live in their own files.
  write(reportFile, JSON.stringify({ ...grammar, jsgf: '', dict: '' }, null, 2));
  // Grammars of earlier rule sets are not used again: one entry per data folder is enough.
  for (const entry of readdirSync(cacheDir)) {
    const path = join(cacheDir, entry);
    if (entry.startsWith('grammar-') && path !== dir && !(options.keep ?? []).includes(path)) rmSync(path, { recursive: true, force: true });
  }
  return { ...grammar, jsgfFile, dictFile: dictOut, cached: false };
}
