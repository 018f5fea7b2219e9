/**
 * Text normalization for intent matching (seed 001 §6: "нормализация языка (ru/en), токенизация"; Ukrainian, the
 * language of seed 000, since issue 15).
 *
 * Contract: the same function normalizes the user's utterance, the literal words of rule templates and the
 * values of slot lists, so a template matches whatever spelling the normalization folds together:
 * - Unicode NFC, lower case, `ё → е`, stress marks (U+0301) removed;
 * - a token is a run of letters and digits; an apostrophe between two letters stays inside the token
 *   ("what's", "don't", Ukrainian "п'ять"; `’` and `ʼ` are read as `'`), every other character separates tokens
 *   (punctuation, hyphens);
 * - whitespace is collapsed by construction (tokens are joined with one space).
 *
 * Tokens keep their offsets in the NFC text, so a wildcard slot can return the user's own spelling
 * ("ABCD-1234", "The Wall") rather than its normal form. Pure module: no Node APIs.
 */

/** The languages rule sets may be written in. */
export type Language = 'en' | 'ru' | 'uk';

export const LANGUAGES: readonly Language[] = ['en', 'ru', 'uk'];

/** One token of a normalized text. */
export interface Token {
  /** Normal form: lower case, `ё → е`, no stress marks. */
  text: string;
  /** Offset of the token's first character in {@link Tokenized.source}. */
  start: number;
  /** Offset just past the token's last character in {@link Tokenized.source}. */
  end: number;
}

/** A text split into normalized tokens. */
export interface Tokenized {
  /** The input in NFC with `’` read as `'`: the text token offsets point into. */
  source: string;
  tokens: Token[];
}

const TOKEN_RE = /[\p{L}\p{N}\p{M}]+(?:'[\p{L}\p{M}]+)*/gu;

/** Split `text` into normalized tokens with their offsets (see the module comment for the rules). */
export function tokenize(text: string, _language?: Language): Tokenized {
  // The languages share one normalization today; the parameter is the seam for language-specific rules.
  const source = text.normalize('NFC').replace(/[’ʼ]/g, "'");
  const tokens: Token[] = [];
  for (const m of source.matchAll(TOKEN_RE)) {
    const normal = foldToken(m[0]);
    if (normal.length > 0) tokens.push({ text: normal, start: m.index, end: m.index + m[0].length });
  }
  return { source, tokens };
}

function foldToken(raw: string): string {
  return raw.toLowerCase().replace(/\u0301/g, '').replace(/ё/g, 'е');
}

/** The normal form of `text`: its tokens joined by single spaces ("Погода в Берлине?" → "погода в берлине"). */
export function normalize(text: string, language?: Language): string {
  return tokenize(text, language)
    .tokens.map((t) => t.text)
    .join(' ');
}

/**
 * The user's own spelling of tokens `from..to-1` (inclusive of the characters between them, e.g. the hyphen of
 * "ABCD-1234"), whitespace collapsed. Used for wildcard slot values.
 */
export function sourceSpan(text: Tokenized, from: number, to: number): string {
  const first = text.tokens[from];
  const last = text.tokens[to - 1];
  if (!first || !last) return '';
  return text.source.slice(first.start, last.end).replace(/\s+/g, ' ');
}

const EN_UNITS: Record<string, number> = {
  zero: 0, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10,
  eleven: 11, twelve: 12, thirteen: 13, fourteen: 14, fifteen: 15, sixteen: 16, seventeen: 17, eighteen: 18, nineteen: 19,
};
const EN_TENS: Record<string, number> = { twenty: 20, thirty: 30, forty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90 };
const RU_UNITS: Record<string, number> = {
  ноль: 0, один: 1, одна: 1, одну: 1, одно: 1, два: 2, две: 2, три: 3, четыре: 4, пять: 5, шесть: 6, семь: 7, восемь: 8, девять: 9, десять: 10,
  одиннадцать: 11, двенадцать: 12, тринадцать: 13, четырнадцать: 14, пятнадцать: 15, шестнадцать: 16, семнадцать: 17, восемнадцать: 18, девятнадцать: 19,
};
const RU_TENS: Record<string, number> = { двадцать: 20, тридцать: 30, сорок: 40, пятьдесят: 50, шестьдесят: 60, семьдесят: 70, восемьдесят: 80, девяносто: 90 };
// Ukrainian words that differ from the Russian ones (один, одна, одну, три, сорок… are shared).
const UK_UNITS: Record<string, number> = {
  нуль: 0, одне: 1, два: 2, дві: 2, чотири: 4, "п'ять": 5, шість: 6, сім: 7, вісім: 8, "дев'ять": 9, десять: 10,
  одинадцять: 11, дванадцять: 12, тринадцять: 13, чотирнадцять: 14, "п'ятнадцять": 15, шістнадцять: 16, сімнадцять: 17, вісімнадцять: 18, "дев'ятнадцять": 19,
};
const UK_TENS: Record<string, number> = { двадцять: 20, тридцять: 30, "п'ятдесят": 50, шістдесят: 60, сімдесят: 70, вісімдесят: 80, "дев'яносто": 90 };
const unitOf = (word: string): number | undefined => EN_UNITS[word] ?? RU_UNITS[word] ?? UK_UNITS[word];
const tensOf = (word: string): number | undefined => EN_TENS[word] ?? RU_TENS[word] ?? UK_TENS[word];

/**
 * Read a number at `tokens[at]`: digits ("25"), a number word ("five", "пять", "две") or tens + unit
 * ("twenty five", "twenty-five", "двадцать пять", "двадцять п'ять"). Returns the value and how many tokens it took, longest
 * reading first; an empty list when there is no number there. Words of every language are accepted whatever
 * the rule set's language, since users mix them rarely and the words never collide.
 */
export function readNumber(tokens: readonly Token[], at: number): Array<{ value: number; length: number }> {
  const first = tokens[at]?.text;
  if (first === undefined) return [];
  if (/^\d{1,9}$/.test(first)) return [{ value: Number(first), length: 1 }];
  const tens = tensOf(first);
  if (tens !== undefined) {
    const next = tokens[at + 1]?.text;
    const unit = next === undefined ? undefined : unitOf(next);
    const readings = [{ value: tens, length: 1 }];
    if (unit !== undefined && unit >= 1 && unit <= 9) readings.unshift({ value: tens + unit, length: 2 });
    return readings;
  }
  const unit = unitOf(first);
  return unit === undefined ? [] : [{ value: unit, length: 1 }];
}
