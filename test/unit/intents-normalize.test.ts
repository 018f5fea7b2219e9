import { describe, expect, it } from 'vitest';
import { normalize, readNumber, tokenize } from '../../main/runtime/intents/index.js';

describe('intent text normalization', () => {
  it('lower-cases, strips punctuation and collapses spaces in English', () => {
    expect(normalize('  Hello,   World!!  ', 'en')).toBe('hello world');
    expect(normalize('Set a timer -- for 5 minutes.', 'en')).toBe('set a timer for 5 minutes');
  });

  it("keeps apostrophes inside English words and reads ’ as '", () => {
    expect(normalize("What's the weather? Don't know.", 'en')).toBe("what's the weather don't know");
    expect(normalize('What’s next', 'en')).toBe("what's next");
    expect(normalize("'quoted' words'", 'en')).toBe('quoted words');
  });

  it('folds ё to е, drops stress marks and lower-cases Russian', () => {
    expect(normalize('Идём ДАЛЬШЕ, ёлка!', 'ru')).toBe('идем дальше елка');
    expect(normalize('за́мок', 'ru')).toBe('замок');
  });

  it('applies NFC so composed and decomposed letters compare equal', () => {
    const decomposed = 'й'.normalize('NFD');
    expect(decomposed).not.toBe('й');
    expect(normalize(`Мой ${decomposed}`, 'ru')).toBe('мой й');
    expect(normalize('Cafe\u0301', 'en')).toBe(normalize('Café', 'en'));
  });

  it('keeps digits and splits on hyphens and slashes', () => {
    expect(normalize('Нью-Йорк, ABCD-1234, AC/DC', 'ru')).toBe('нью йорк abcd 1234 ac dc');
  });

  it('keeps each token’s offsets in the source so wildcards can return the original spelling', () => {
    const t = tokenize('Redeem  ABCD-1234!', 'en');
    expect(t.tokens.map((x) => x.text)).toEqual(['redeem', 'abcd', '1234']);
    expect(t.source.slice(t.tokens[1]!.start, t.tokens[2]!.end)).toBe('ABCD-1234');
  });

  it('reads numbers from digits and from English and Russian number words', () => {
    const read = (text: string) => readNumber(tokenize(text).tokens, 0);
    expect(read('25 minutes')).toEqual([{ value: 25, length: 1 }]);
    expect(read('one')).toEqual([{ value: 1, length: 1 }]);
    expect(read('twenty')).toEqual([{ value: 20, length: 1 }]);
    expect(read('twenty-five')).toEqual([
      { value: 25, length: 2 },
      { value: 20, length: 1 },
    ]);
    expect(read('одну минуту')[0]).toEqual({ value: 1, length: 1 });
    expect(read('две')[0]).toEqual({ value: 2, length: 1 });
    expect(read('десять')[0]).toEqual({ value: 10, length: 1 });
    expect(read('двадцать пять')[0]).toEqual({ value: 25, length: 2 });
    expect(read('минута')).toEqual([]);
    // Ukrainian, with the apostrophe inside the word in any of its spellings.
    expect(read("двадцять п'ять")[0]).toEqual({ value: 25, length: 2 });
    expect(read('двадцять п’ять')[0]).toEqual({ value: 25, length: 2 });
    expect(read('дві хвилини')[0]).toEqual({ value: 2, length: 1 });
    expect(read('сорок')[0]).toEqual({ value: 40, length: 1 });
    expect(read('хвилина')).toEqual([]);
  });
});
