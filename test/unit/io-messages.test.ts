/**
 * The message catalogue (issue 13 point 16): one file per language, plurals by Intl.PluralRules, display names
 * instead of slot ids, fallbacks that never show a traveller a broken sentence, and the shipped files held to
 * what the shipped scenarios and intent rules need.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleSet } from '../../main/runtime/intents/index.js';
import { createMessageCatalogue, loadMessageCatalogue } from '../../main/runtime/io/index.js';
import { fallbackKey, guessLanguage } from '../../main/runtime/io/replies.js';
import { tempDir } from '../helpers/tmp.js';

const RESOURCES = new URL('../../resources/', import.meta.url).pathname;

const catalogue = (en: Record<string, string>, ru: Record<string, string> = {}) =>
  createMessageCatalogue([
    { language: 'en', file: 'en.json', entries: en },
    { language: 'ru', file: 'ru.json', entries: ru },
  ]);

describe('message catalogue', () => {
  it('picks the plural form each language needs', () => {
    const m = catalogue(
      { 'timer.set': 'Timer set for {n, plural, =0 {no time} one {# minute} other {# minutes}}.' },
      { 'timer.set': 'Таймер на {n, plural, one {# минуту} few {# минуты} many {# минут} other {# минуты}}.' },
    );
    expect([0, 1, 2, 5, 21].map((n) => m.render('timer.set', { n }, 'en'))).toEqual(['Timer set for no time.', 'Timer set for 1 minute.', 'Timer set for 2 minutes.', 'Timer set for 5 minutes.', 'Timer set for 21 minutes.']);
    expect([1, 2, 5, 11, 21, 22, 25, 1.5].map((n) => m.render('timer.set', { n }, 'ru'))).toEqual([
      'Таймер на 1 минуту.',
      'Таймер на 2 минуты.',
      'Таймер на 5 минут.',
      'Таймер на 11 минут.',
      'Таймер на 21 минуту.',
      'Таймер на 22 минуты.',
      'Таймер на 25 минут.',
      'Таймер на 1,5 минуты.',
    ]);
  });

  it('shows ids by their display names, and what it has no name for as it came', () => {
    const m = catalogue({ 'weather.now': '{city, name}: {summary, name, sky}.', 'city.berlin': 'Berlin', 'city.new_york': 'New York', 'sky.partly_cloudy': 'partly cloudy' }, { 'weather.now': '{city, name}: {summary, name, sky}.', 'city.berlin': 'Берлин' });
    expect(m.render('weather.now', { city: 'berlin', summary: 'Partly cloudy' }, 'en')).toBe('Berlin: partly cloudy.');
    expect(m.render('weather.now', { city: 'berlin', summary: 'sunny' }, 'ru')).toBe('Берлин: sunny.');
    // Russian has no name for new_york here: the default language's is used; an unknown id loses its underscores.
    expect(m.render('weather.now', { city: 'new_york', summary: 'x' }, 'ru')).toBe('New York: x.');
    expect(m.name('city', 'saint_petersburg', 'en')).toBe('saint petersburg');
    expect(m.name('city', 'Oslo', 'en')).toBe('Oslo');
  });

  it('falls back to the default language, then to the key, and never throws', () => {
    const m = catalogue({ 'a.only_en': 'English only', 'a.hello': 'Hello, {name}!' }, { 'a.hello': 'Привет, {name}!' });
    expect(m.languages).toEqual(['en', 'ru']);
    expect(m.render('a.hello', { name: 'Ada' }, 'ru-RU')).toBe('Привет, Ada!');
    expect(m.render('a.hello', { name: 'Ada' }, 'de')).toBe('Hello, Ada!');
    expect(m.render('a.only_en', {}, 'ru')).toBe('English only');
    expect(m.render('a.missing', {}, 'ru')).toBe('a.missing');
    expect(m.render('a.hello', {}, 'en')).toBe('Hello, !');
    expect(m.render('a.hello', { name: 3.25 }, 'ru')).toBe('Привет, 3,25!');
  });

  it('refuses a malformed file or template, naming the file and the key', () => {
    const bad = (entries: Record<string, unknown>) => () => createMessageCatalogue([{ language: 'en', file: 'en.json', entries }]);
    expect(bad({ 'a.b': 'Hello, {name' })).toThrow(/^en\.json: "a\.b": expected "," or "}"/);
    expect(bad({ 'a.b': '{n, plural, one {# thing}}' })).toThrow('en.json: "a.b": a plural needs an "other" branch');
    expect(bad({ 'a.b': '{n, plural, lots {x} other {y}}' })).toThrow('"lots" is not a plural category');
    expect(bad({ 'a.b': '{n, select, a {x}}' })).toThrow('"select" is not a format (plural, name)');
    expect(bad({ 'a.b': 'stray }' })).toThrow('"}" without "{"');
    expect(bad({ 'A B': 'x' })).toThrow('en.json: "A B" is not a message key');
    expect(bad({ 'a.b': 42 })).toThrow('en.json: "a.b" must be a string');
    const dir = tempDir('tessera-messages-');
    writeFileSync(join(dir, 'en.json'), '{"a.b": ');
    expect(() => loadMessageCatalogue([dir])).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining(`${join(dir, 'en.json')}: not valid JSON`) }));
  });

  it('guesses the language of an utterance no rule understood from its script', () => {
    const m = catalogue({ x: 'x' }, { x: 'x' });
    expect(guessLanguage('расскажи анекдот', m)).toBe('ru');
    expect(guessLanguage('tell me a joke', m)).toBe('en');
    expect(guessLanguage('розкажи щось', m)).toBe('ru'); // a catalogue with no Ukrainian file: Cyrillic reads as Russian
    const withUk = createMessageCatalogue([{ language: 'en', file: 'en.json', entries: { x: 'x' } }, { language: 'uk', file: 'uk.json', entries: { x: 'x' } }]);
    expect(guessLanguage('розкажи щось цікаве', withUk)).toBe('uk');
  });
});

describe('the shipped catalogue', () => {
  const shipped = loadMessageCatalogue();

  it('has one file per language, each with exactly the keys and parameters of the English one', () => {
    expect(readdirSync(join(RESOURCES, 'messages')).sort()).toEqual(['en.json', 'ru.json', 'uk.json']);
    expect(shipped.languages).toEqual(['en', 'ru', 'uk']);
    const en = shipped.keys('en');
    for (const language of shipped.languages) {
      expect(shipped.keys(language)).toEqual(en);
      for (const key of en) expect([key, shipped.params(key, language)]).toEqual([key, shipped.params(key, 'en')]);
    }
  });

  it('has every message the shipped scenarios name, and words for every kind of failure', () => {
    const named = new Set<string>();
    const dirs = [join(RESOURCES, 'scenarios'), join(RESOURCES, 'scenarios', 'fragments')];
    for (const dir of dirs) {
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
        for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
          const m = /^\s*message:\s*(.+)$/.exec(line);
          if (!m) continue;
          // A literal key, or the keys an expression chooses between ('a.b' string literals).
          const keys = m[1]!.includes('${') ? [...m[1]!.matchAll(/'([a-z0-9_]+(?:\.[a-z0-9_]+)+)'/g)].map((k) => k[1]!) : [m[1]!.trim()];
          keys.forEach((k) => named.add(k));
        }
      }
    }
    expect(named.size).toBeGreaterThanOrEqual(15);
    for (const key of named) expect([key, shipped.has(key, 'en'), shipped.has(key, 'ru'), shipped.has(key, 'uk')]).toEqual([key, true, true, true]);
    for (const code of ['STEP_TIMEOUT', 'LOCK_TIMEOUT', 'PLUGIN_FAILED', 'INTERNAL']) expect(shipped.has(fallbackKey(code), 'ru')).toBe(true);
    for (const key of ['failed.cancelled', 'failed.no_answer', 'io.not_understood', 'io.cannot_start']) expect(shipped.has(key, 'ru')).toBe(true);
  });

  it('has a display name for every value of the shipped intent rules\' value lists, in every language', () => {
    const ids = new Map<string, Set<string>>();
    for (const language of ['en', 'ru', 'uk']) {
      const rules = loadRuleSet(join(RESOURCES, 'intents', `${language}.yaml`));
      for (const rule of rules.sentences) {
        const walk = (m: typeof rule.matcher): void => {
          if (m.k === 'seq') m.items.forEach(walk);
          else if (m.k === 'alt') m.options.forEach(walk);
          // Dynamic lists ({place}) hold the journeys' places, whose names come with them, not from the catalogue.
          else if (m.k === 'slot' && m.list.kind === 'values' && !m.list.dynamic) {
            const set = ids.get(m.list.name) ?? ids.set(m.list.name, new Set()).get(m.list.name)!;
            for (const entries of m.list.byFirstToken.values()) for (const e of entries) set.add(String(e.value));
          }
        };
        walk(rule.matcher);
      }
    }
    expect([...ids.keys()].sort()).toEqual(['city', 'day', 'room']);
    for (const [list, values] of ids) for (const id of values) for (const language of ['en', 'ru', 'uk']) expect([language, `${list}.${id}`, shipped.has(`${list}.${id}`, language)]).toEqual([language, `${list}.${id}`, true]);
    expect(shipped.name('city', 'new_york', 'en')).toBe('New York');
    expect(shipped.name('city', 'saint_petersburg', 'ru')).toBe('Санкт-Петербург');
  });
});
