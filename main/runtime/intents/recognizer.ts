/**
 * The rule-based intent recognizer (seed 001 §6: "правила → слоты", no ML on the first step; §16 puts a
 * small model after the rules, which can later rank `recognizeAll`'s candidates).
 *
 * Ranking contract, from most to least important:
 * 1. score, higher first: the weighted share of the utterance's tokens matched by literal words (weight 1),
 *    by value lists and ranges (0.9) and by wildcards (0.4); so readings where list slots match fully and
 *    wildcards take fewer tokens win ("play the wall by pink floyd in the kitchen": the room is the list
 *    value "kitchen", not the end of the artist wildcard);
 * 2. fewer wildcard tokens; 3. more literal tokens;
 * 4. the earlier reading of the same rule (wildcards lazy, i.e. as short as possible), then the earlier rule.
 * Pure module: no Node APIs.
 */
import type { ReadingCounts, SlotValue } from './matcher.js';
import { matchAll } from './matcher.js';
import type { Language, Tokenized } from './normalize.js';
import { tokenize } from './normalize.js';
import type { IntentTarget, RuleSet, SentenceRule } from './rules.js';

/** Which rule produced a recognition. */
export interface MatchedRule {
  intent: string;
  /** The sentence template as written. */
  sentence: string;
  /** `file:line` of the template. */
  source: string;
  file: string;
  line: number;
}

/** One reading of an utterance. */
export interface Recognition {
  intent: string;
  /** Slot values: list outputs, range numbers, wildcard text as the user wrote it, plus fixed slots. */
  slots: Record<string, SlotValue>;
  /** In (0, 1]; 1 when every token was matched by a literal word. See the module comment. */
  score: number;
  language: Language;
  /** Where the rule set says the intent routes; the IntentRegistry may override it (./router.ts). */
  target: IntentTarget;
  rule: MatchedRule;
  /** Tokens matched by each kind of template part. */
  counts: ReadingCounts;
}

export interface RecognizeOptions {
  /** Only try rule sets of this language (default: all, best reading wins). */
  language?: Language;
}

export interface Recognizer {
  /** The best reading of `text`, or null when no rule matches the whole utterance. */
  recognize(text: string, options?: RecognizeOptions): Recognition | null;
  /**
   * Every distinct reading (intent + slots), best first, each with the score of its best rule. `limit`
   * caps the list (default 20).
   */
  recognizeAll(text: string, options?: RecognizeOptions & { limit?: number }): Recognition[];
  /** The languages with at least one rule set. */
  readonly languages: readonly Language[];
  /** The rule sets, in the order given. */
  readonly ruleSets: readonly RuleSet[];
}

/** Per-token weights of the score (see the module comment). */
export const SCORE_WEIGHTS = { literal: 1, list: 0.9, wildcard: 0.4 } as const;

/** Utterances longer than this many tokens are not matched at all: commands are short, and matching is bounded. */
export const MAX_UTTERANCE_TOKENS = 64;

interface Candidate extends Recognition {
  order: number;
  reading: number;
}

/** Build a recognizer over one or more compiled rule sets (./rules.ts). */
export function createRecognizer(ruleSets: RuleSet | readonly RuleSet[]): Recognizer {
  const sets = Array.isArray(ruleSets) ? [...(ruleSets as readonly RuleSet[])] : [ruleSets as RuleSet];
  const targets = new Map<string, IntentTarget>();
  sets.forEach((set) => set.intents.forEach((i) => targets.set(`${set.language}\u0000${i.name}`, i.target)));
  const languages = [...new Set(sets.map((s) => s.language))];

  const candidates = (text: string, options: RecognizeOptions): Candidate[] => {
    const out: Candidate[] = [];
    let order = 0;
    const tokenized = new Map<Language, Tokenized>();
    for (const set of sets) {
      if (options.language !== undefined && set.language !== options.language) continue;
      let tokens = tokenized.get(set.language);
      if (!tokens) tokenized.set(set.language, (tokens = tokenize(text, set.language)));
      const n = tokens.tokens.length;
      if (n === 0 || n > MAX_UTTERANCE_TOKENS) continue;
      const present = new Set(tokens.tokens.map((t) => t.text));
      for (const rule of set.sentences) {
        order++;
        if (!mayMatch(rule, n, present)) continue;
        let reading = 0;
        matchAll(rule.matcher, tokens, (slots, counts) => {
          out.push({
            intent: rule.intent,
            slots: { ...rule.slots, ...slots },
            score: scoreOf(counts, n),
            language: set.language,
            target: targets.get(`${set.language}\u0000${rule.intent}`)!,
            rule: { intent: rule.intent, sentence: rule.sentence, source: `${rule.source.file}:${rule.source.line}`, file: rule.source.file, line: rule.source.line },
            counts,
            order,
            reading: reading++,
          });
        });
      }
    }
    return out.sort(compare);
  };

  return {
    languages,
    ruleSets: sets,
    recognize(text, options = {}) {
      const best = candidates(text, options)[0];
      return best ? strip(best) : null;
    },
    recognizeAll(text, options = {}) {
      const seen = new Set<string>();
      const result: Recognition[] = [];
      for (const c of candidates(text, options)) {
        const key = JSON.stringify([c.intent, Object.entries(c.slots).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
        if (seen.has(key)) continue;
        seen.add(key);
        result.push(strip(c));
        if (result.length >= (options.limit ?? 20)) break;
      }
      return result;
    },
  };
}

function mayMatch(rule: SentenceRule, n: number, present: Set<string>): boolean {
  if (n < rule.bounds.min || n > rule.bounds.max) return false;
  for (const word of rule.bounds.required) if (!present.has(word)) return false;
  return true;
}

function scoreOf(counts: ReadingCounts, n: number): number {
  const weighted = counts.literal * SCORE_WEIGHTS.literal + counts.list * SCORE_WEIGHTS.list + counts.wildcard * SCORE_WEIGHTS.wildcard;
  return Math.round((weighted / n) * 1e6) / 1e6;
}

function compare(a: Candidate, b: Candidate): number {
  return b.score - a.score || a.counts.wildcard - b.counts.wildcard || b.counts.literal - a.counts.literal || a.order - b.order || a.reading - b.reading;
}

function strip(c: Candidate): Recognition {
  const { order: _order, reading: _reading, ...rest } = c;
  return rest;
}
