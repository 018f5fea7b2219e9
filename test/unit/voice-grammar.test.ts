import { readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRuleSet, setListValues } from '../../main/runtime/intents/index.js';
import { EXTRA_PRONUNCIATIONS, compileGrammar, grammarCid, grammarFiles, numberWords } from '../../main/runtime/voice/grammar.js';
import { findExecutable } from '../../main/runtime/voice/detect.js';
import { espeakToArpabet } from '../../main/runtime/voice/phonemes.js';
import { tempDir } from '../helpers/tmp.js';

/** A small CMU-format dictionary: every word the rules below use except "zork" and "tessera". */
const DICT = `
a AH
a(2) EY
by B AY
city S IH T IY
hello HH AH L OW
hello(2) HH EH L OW
hi HH AY
in IH N
minute M IH N AH T
minutes M IH N AH T S
new N UW
play P L EY
timer T AY M ER
the DH AH
weather W EH DH ER
berlin B ER L IH N
york Y AO R K
paris P EH R IH S
one W AH N
two T UW
twenty T W EH N T IY
for F AO R
`;

const RULES = `
language: en
lists:
  city:
    values:
      - berlin
      - {in: "new york [city]", out: new_york}
      - {in: zork, out: zork}
  minutes:
    range: {from: 1, to: 120}
  album:
    wildcard: true
intents:
  greet:
    handler: greet
    data:
      - sentences: ["(hello|hi) [tessera] [zork]"]
  weather:
    handler: weather
    data:
      - sentences: ["weather in {city}", "zork weather"]
  timer:
    handler: timer
    data:
      - sentences: ["[a] timer for {minutes} minute[s]"]
  music:
    handler: music
    data:
      - sentences: ["play {album}"]
`;

function setup(rules = RULES) {
  const dir = tempDir();
  const dict = join(dir, 'cmu.dict');
  writeFileSync(dict, DICT);
  return { dir, dict, rules: parseRuleSet(rules, { file: 'rules.yaml' }) };
}

describe('JSGF grammar from intent rules', () => {
  it('turns alternatives, optional parts, glued words and list slots into JSGF', () => {
    const { dict, rules } = setup();
    const g = compileGrammar([rules], dict);
    expect(g.jsgf.startsWith('#JSGF V1.0;\ngrammar tessera;\npublic <utterance> = ')).toBe(true);
    expect(g.jsgf).toContain('<list_city> = berlin | new york city | new york;');
    expect(g.jsgf).toMatch(/<s\d+> = \( hello \| hi \) \[ tessera \];/);
    expect(g.jsgf).toMatch(/<s\d+> = weather in <list_city>;/);
    expect(g.jsgf).toMatch(/<s\d+> = \[ a \] timer for <range_minutes> \( minutes \| minute \);/);
    expect(g.intents.sort()).toEqual(['greet', 'timer', 'weather']);
    expect(g.sentences).toBe(3);
  });

  it('speaks ranges as the number words the recognizer reads back, up to 99, and says so', () => {
    const { dict, rules } = setup();
    const g = compileGrammar([rules], dict);
    const range = /<range_minutes> = ([^;]*);/.exec(g.jsgf)![1]!;
    // Only words in the dictionary survive: one, two, twenty, twenty one, twenty two.
    expect(range.split(' | ')).toEqual(['one', 'two', 'twenty', 'twenty one', 'twenty two']);
    expect(g.skipped).toContainEqual(expect.objectContaining({ sentence: '{minutes}', reason: expect.stringContaining('numbers 100–120 are left out') }));
    expect([numberWords(7), numberWords(40), numberWords(95), numberWords(100)]).toEqual([['seven'], ['forty'], ['ninety', 'five'], undefined]);
  });

  it('skips wildcard sentences and sentences with unknown required words, and reports each with its source', () => {
    const { dict, rules } = setup();
    const g = compileGrammar([rules], dict);
    expect(g.skipped).toContainEqual({ intent: 'music', sentence: 'play {album}', source: 'rules.yaml:29', reason: 'wildcard slot {album} is free text, which a grammar cannot hold' });
    expect(g.skipped).toContainEqual(expect.objectContaining({ intent: 'weather', sentence: 'zork weather', reason: '"zork" is not in the pronunciation dictionary' }));
    expect(g.jsgf).not.toContain('zork');
  });

  it('drops only the alternative or list value with an unknown word, and reports it', () => {
    const { dict, rules } = setup();
    const g = compileGrammar([rules], dict);
    // [zork] is optional: the sentence stays without it; the list value zork is dropped.
    expect(g.skipped).toContainEqual(expect.objectContaining({ intent: 'greet', reason: '"zork" is not in the pronunciation dictionary: the alternatives that use it are left out' }));
    expect(g.skipped).toContainEqual(expect.objectContaining({ sentence: '{city}', reason: '"zork" is not in the pronunciation dictionary: the values that use it are left out' }));
    // "tessera" is missing from this dictionary but known from the built-in pronunciations.
    expect(g.dict).toContain(`tessera ${EXTRA_PRONUNCIATIONS['tessera']![0]}`);
  });

  it('writes a dictionary of exactly the grammar words, with alternate pronunciations numbered', () => {
    const { dict, rules } = setup();
    const g = compileGrammar([rules], dict);
    const words = g.dict.trim().split('\n').map((l) => l.split(' ')[0]);
    expect(words).toContain('hello');
    expect(words).toContain('hello(2)');
    expect(words).toContain('a(2)');
    expect(words).not.toContain('play');
    expect(words).not.toContain('paris');
    expect(g.words).toBe(new Set(words.map((w) => w!.replace(/\(\d+\)$/, ''))).size);
  });

  it('fails with VOICE_UNAVAILABLE when no sentence can be spoken', () => {
    const { dict } = setup();
    const only = parseRuleSet('language: en\nlists: {x: {wildcard: true}}\nintents: {a: {handler: a, data: [{sentences: ["play {x}"]}]}}\n');
    expect(() => compileGrammar([only], dict)).toThrow(expect.objectContaining({ code: 'VOICE_UNAVAILABLE', message: expect.stringContaining('wildcard slot {x}') }));
    const russian = parseRuleSet('language: ru\nintents: {a: {handler: a, data: [{sentences: ["привет"]}]}}\n');
    expect(() => compileGrammar([russian], dict)).toThrow(expect.objectContaining({ code: 'VOICE_UNAVAILABLE', message: expect.stringContaining('no English rule set') }));
  });
});

describe('pronunciations from espeak-ng', () => {
  it('maps espeak-ng phoneme mnemonics to ARPAbet, and refuses what it does not know', () => {
    expect(espeakToArpabet("tS'3:tS")).toBe('CH ER CH');
    expect(espeakToArpabet("k'A@kIv")).toBe('K AA R K IH V');
    expect(espeakToArpabet("b'V?n-")).toBe('B AH T AH N');
    expect(espeakToArpabet("a#b,aUt")).toBe('AH B AW T');
    expect(espeakToArpabet("t'Es3r@")).toBe('T EH S ER AH');
    expect(espeakToArpabet('k%Q')).toBeUndefined();
    expect(espeakToArpabet("''")).toBeUndefined();
  });

  it.skipIf(findExecutable(['espeak-ng']) === undefined)('lets a sentence with a word missing from the dictionary into the grammar, and lists the word', () => {
    const { dict, rules } = setup();
    const g = compileGrammar([rules], dict, { espeak: findExecutable(['espeak-ng'])! });
    expect(g.generated).toContain('zork');
    expect(g.jsgf).toMatch(/<s\d+> = zork weather;/);
    expect(g.dict).toMatch(/^zork Z AO R K$/m);
    expect(g.skipped.some((s) => s.reason.includes('zork'))).toBe(false);
    // The cache key says whether espeak-ng took part.
    expect(grammarCid([rules], dict, { espeak: '/usr/bin/espeak-ng' })).not.toBe(grammarCid([rules], dict));
  });
});

describe('grammar cache', () => {
  it('is keyed by the rules as compiled: file positions do not matter, content does', () => {
    const { dict, rules } = setup();
    const moved = parseRuleSet(`\n\n# a comment\n${RULES}`, { file: 'other.yaml' });
    const changed = parseRuleSet(RULES.replace('- berlin', '- paris'), { file: 'rules.yaml' });
    expect(grammarCid([moved], dict)).toBe(grammarCid([rules], dict));
    expect(grammarCid([changed], dict)).not.toBe(grammarCid([rules], dict));
  });

  it('writes the files once and reuses them; a damaged entry is rebuilt', () => {
    const { dir, dict, rules } = setup();
    const cache = join(dir, 'cache');
    const first = grammarFiles([rules], dict, cache);
    expect(first.cached).toBe(false);
    const second = grammarFiles([rules], dict, cache);
    expect(second.cached).toBe(true);
    expect(second.jsgf).toBe(first.jsgf);
    expect(second.skipped).toEqual(first.skipped);
    writeFileSync(join(first.jsgfFile, '..', 'report.json'), '{not json');
    const third = grammarFiles([rules], dict, cache);
    expect(third.cached).toBe(false);
    expect(third.jsgf).toBe(first.jsgf);
    // New rules: a new entry, and the old one is removed.
    const changed = grammarFiles([parseRuleSet(RULES.replace('- berlin', '- paris'))], dict, cache);
    expect(changed.jsgfFile).not.toBe(first.jsgfFile);
    expect(readdirSync(cache)).toEqual([basename(join(changed.jsgfFile, '..'))]);
  });

  it('follows a dynamic list: new values give a new grammar, the one in use is kept until the next change (issue 15)', () => {
    const { dir, dict } = setup();
    const rules = parseRuleSet('language: en\nlists:\n  place: {dynamic: true}\nintents:\n  go:\n    handler: go\n    data:\n      - sentences: ["play {place}", "hello"]\n', { file: 'places.yaml' });
    const cache = join(dir, 'cache');
    const empty = grammarFiles([rules], dict, cache);
    expect(empty.skipped).toEqual([{ intent: 'go', sentence: 'play {place}', source: 'places.yaml:8', reason: 'list {place}: list {place} has no speakable value' }]);
    setListValues(rules, 'place', [{ in: ['Berlin', 'new york'], out: 'b' }]);
    const one = grammarFiles([rules], dict, cache, { keep: [join(empty.jsgfFile, '..')] });
    expect(one.cid).not.toBe(empty.cid);
    expect(one.jsgf).toContain('<list_place> = berlin | new york;');
    expect(one.skipped).toEqual([]);
    expect(readdirSync(cache).sort()).toEqual([basename(join(empty.jsgfFile, '..')), basename(join(one.jsgfFile, '..'))].sort());
    setListValues(rules, 'place', [{ in: ['paris'], out: 'p' }]);
    const two = grammarFiles([rules], dict, cache, { keep: [join(one.jsgfFile, '..')] });
    expect(two.jsgf).toContain('<list_place> = paris;');
    expect(readdirSync(cache).sort()).toEqual([basename(join(one.jsgfFile, '..')), basename(join(two.jsgfFile, '..'))].sort());
  });

  it('hears a `speech: names` wildcard as two to four place words, and leaves other wildcards out', () => {
    const { dict } = setup();
    const placeDict = `${DICT}\nhow HH AW\ndo D UW\ni AY\nget G EH T\nto T UW\ntower T AW ER\npalace P AE L AH S\n`;
    const file = join(tempDir(), 'cmu.dict');
    writeFileSync(file, placeDict);
    const yaml = (speech: string) => `language: en\nlists:\n  place_name: {wildcard: true, max_tokens: 6${speech}}\nintents:\n  go:\n    handler: go\n    data:\n      - sentences: ["how do i get to {place_name}", "hello"]\n`;
    const g = compileGrammar([parseRuleSet(yaml(', speech: names'))], file);
    expect(g.jsgf).toMatch(/<names_place_name> = \[ the \] \( [a-z |]*palace[a-z |]* \) \( [a-z |]+ \) \[ [a-z |]+ \];/);
    expect(g.jsgf).toContain('how do i get to <names_place_name>');
    expect(g.sentences).toBe(2);
    const text = compileGrammar([parseRuleSet(yaml(''))], file);
    expect(text.sentences).toBe(1);
    expect(text.skipped.map((x) => x.sentence)).toEqual(['how do i get to {place_name}']);
    expect(dict).toBeTruthy();
  });
});
