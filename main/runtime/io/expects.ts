/**
 * What an open question expects, and whether an utterance fits it (issue 15 point 5: "an open question must not
 * swallow an unrelated command — decide by what the question expects and how strongly the utterance matches an
 * intent"). An `io.ask` step may declare `expects`; the I/O router (./router.ts `input`) then takes an utterance
 * of the question's session as its answer only when it fits, or when no intent understands it; an utterance that
 * does not fit and that an intent understands (at any score: "how do I get to the Eiffel Tower" is not a name)
 * starts that intent, and the question stays open. A question that declares nothing keeps the older rule: only a
 * strong match (score ≥ STRONG_INTENT_SCORE, no free-text wildcard) gets past it.
 *
 * | expects     | fits                                                                                         |
 * |-------------|----------------------------------------------------------------------------------------------|
 * | `name`      | at most four words, no digits, that no intent reads with words of its own ("Ada", "my name is Ada") |
 * | `city`      | exactly a value of a rule set's `city` list, after an optional "in"/"в"/"у" ("Paris", "в Париже") |
 * | `place`     | exactly a value of a rule set's `place` list (the journeys' places), likewise                 |
 * | `yes_no`    | a yes or a no in English, Russian or Ukrainian ("yes", "nope", "да", "ні", "так")              |
 * | `number`    | a number in digits or words, with at most one word after it ("5", "twenty five", "три штуки") |
 * | `free_text` | anything: every utterance answers it                                                         |
 *
 * Pure module: no Node APIs.
 */
import type { IntentRoute, RuleSet } from '../intents/index.js';
import { readNumber, tokenize } from '../intents/index.js';

/** The kinds of answer a question may expect. */
export const ANSWER_KINDS = ['name', 'city', 'place', 'yes_no', 'number', 'free_text'] as const;
export type AnswerKind = (typeof ANSWER_KINDS)[number];

const YES_NO = new Set(['yes', 'yeah', 'yep', 'sure', 'ok', 'okay', 'no', 'nope', 'nah', 'да', 'ага', 'конечно', 'нет', 'неа', 'так', 'звісно', 'ні', 'не']);
const PREPOSITIONS = new Set(['in', 'to', 'at', 'в', 'во', 'у', 'на', 'до']);
const MAX_NAME_WORDS = 4;

/** Whether `tokens` are exactly one value of the list `list` of some rule set. */
function isListValue(tokens: string[], list: string, ruleSets: readonly RuleSet[]): boolean {
  const words = tokens.length > 1 && PREPOSITIONS.has(tokens[0]!) ? tokens.slice(1) : tokens;
  for (const set of ruleSets) {
    const compiled = set.lists.get(list);
    if (!compiled || compiled.kind !== 'values') continue;
    for (const entry of compiled.byFirstToken.get(words[0] ?? '') ?? []) if (entry.tokens.join(' ') === words.join(' ')) return true;
  }
  return false;
}

/**
 * Whether `text` fits what a question expects. `route` is the intents' best reading of it (null: none), and
 * `ruleSets` the loaded rule sets, whose lists define the cities and places. An unknown kind fits everything
 * (the question then takes every answer, as before expectations existed).
 */
export function fitsExpectation(expects: string, text: string, route: IntentRoute | null, ruleSets: readonly RuleSet[]): boolean {
  const tokens = tokenize(text).tokens.map((t) => t.text);
  if (tokens.length === 0) return false;
  switch (expects as AnswerKind) {
    case 'name':
      // A request an intent reads with words of its own ("what's next", "I am done here") is not a name.
      return tokens.length <= MAX_NAME_WORDS && tokens.every((t) => !/\d/.test(t)) && (route === null || route.recognition.counts.literal === 0);
    case 'city':
      return isListValue(tokens, 'city', ruleSets);
    case 'place':
      return isListValue(tokens, 'place', ruleSets);
    case 'yes_no':
      return tokens.length <= 3 && tokens.some((t) => YES_NO.has(t)) && (route === null || route.recognition.counts.literal === 0);
    case 'number': {
      const read = readNumber(tokenize(text).tokens, 0)[0];
      return read !== undefined && tokens.length - read.length <= 1;
    }
    default:
      return true;
  }
}
