/**
 * Compiled sentence templates and the matcher that runs them over a tokenized utterance.
 *
 * Contract:
 * - A match is anchored: the template must consume every token of the utterance.
 * - The matcher enumerates every way the template can consume the text (every alternative, every split of
 *   every wildcard), within a step budget, and reports each complete reading to the caller, who ranks them
 *   (./recognizer.ts). Readings come out with each wildcard as short as possible first, so among readings
 *   that rank equal the first reported is the lazy one (hassil's convention; a wildcard at the end of the
 *   template still takes the rest of the text because the match is anchored).
 * - A wildcard takes at least one token and at most its list's `max_tokens`.
 * Pure module: no Node APIs.
 */
import type { Token, Tokenized } from './normalize.js';
import { readNumber, sourceSpan } from './normalize.js';

/** A slot value: a list's output value, a range's number, or a wildcard's text as the user wrote it. */
export type SlotValue = string | number | boolean;

/** One entry of a value list, compiled: the token sequence that selects it and the value it yields. */
export interface ListEntry {
  tokens: string[];
  value: SlotValue;
}

/** A slot list after compilation. */
export type CompiledList =
  | {
      kind: 'values';
      name: string;
      byFirstToken: Map<string, ListEntry[]>;
      minTokens: number;
      maxTokens: number;
      /**
       * Declared `dynamic: true`: its values are set at run time (./rules.ts `setListValues`), in place, so every
       * compiled template that refers to it sees the new values at once; empty until then (it matches nothing).
       */
      dynamic?: true;
    }
  | { kind: 'range'; name: string; from: number; to: number; step: number }
  | {
      kind: 'wildcard';
      name: string;
      maxTokens: number;
      /**
       * `speech: names`: the speech grammar stands in for the free text with a vocabulary of place and landmark words
       * (main/runtime/voice/grammar.ts), so a name said aloud that no list holds is still heard as words — and
       * answered ("I don't know a place called …") — instead of being forced onto the nearest list value.
       */
      speech?: 'names';
    };

/** A compiled template node (internal to the intents module). */
export type Matcher =
  | { k: 'seq'; items: Matcher[] }
  | { k: 'alt'; options: Matcher[]; optional: boolean }
  | { k: 'lit'; seqs: string[][] }
  | { k: 'slot'; slot: string; list: CompiledList };

/** What one complete reading consumed, by kind of template part. */
export interface ReadingCounts {
  /** Tokens matched by literal words of the template. */
  literal: number;
  /** Tokens matched by value lists and ranges. */
  list: number;
  /** Tokens taken by wildcards. */
  wildcard: number;
}

interface SlotLink {
  name: string;
  /** The value; undefined for a wildcard, whose text is cut from `from..to` only for complete readings. */
  value: SlotValue | undefined;
  from: number;
  to: number;
  next: SlotLink | null;
}

interface State {
  literal: number;
  list: number;
  wildcard: number;
  slots: SlotLink | null;
}

/** A match gives up after this many steps, or after reporting this many readings: a bound on hostile input. */
export const MATCH_STEP_BUDGET = 20_000;
export const MATCH_READING_BUDGET = 256;

/**
 * Call `onReading` for every complete reading of `text` by `matcher`, in enumeration order (lazy wildcards
 * first). Returns false when a budget ran out (the readings reported so far stand; ordinary commands never
 * come near either budget).
 */
export function matchAll(matcher: Matcher, text: Tokenized, onReading: (slots: Record<string, SlotValue>, counts: ReadingCounts) => void): boolean {
  const tokens = text.tokens;
  const n = tokens.length;
  let steps = 0;
  let readings = 0;
  const exhausted = () => steps > MATCH_STEP_BUDGET || readings >= MATCH_READING_BUDGET;

  const run = (m: Matcher, pos: number, st: State, k: (pos: number, st: State) => void): void => {
    steps++;
    if (exhausted()) return;
    switch (m.k) {
      case 'seq':
        return runSeq(m.items, 0, pos, st, k);
      case 'alt':
        for (const option of m.options) run(option, pos, st, k);
        if (m.optional) k(pos, st);
        return;
      case 'lit':
        for (const seq of m.seqs) {
          if (startsWith(tokens, pos, seq)) k(pos + seq.length, { ...st, literal: st.literal + seq.length });
        }
        return;
      case 'slot':
        return runSlot(m.slot, m.list, pos, st, k);
    }
  };

  const runSeq = (items: Matcher[], index: number, pos: number, st: State, k: (pos: number, st: State) => void): void => {
    const item = items[index];
    if (item === undefined) return k(pos, st);
    run(item, pos, st, (p, s) => runSeq(items, index + 1, p, s, k));
  };

  const runSlot = (slot: string, list: CompiledList, pos: number, st: State, k: (pos: number, st: State) => void): void => {
    if (pos >= n) return;
    switch (list.kind) {
      case 'values':
        for (const entry of list.byFirstToken.get(tokens[pos]!.text) ?? []) {
          if (startsWith(tokens, pos, entry.tokens)) {
            k(pos + entry.tokens.length, { ...st, list: st.list + entry.tokens.length, slots: { name: slot, value: entry.value, from: pos, to: pos + entry.tokens.length, next: st.slots } });
          }
        }
        return;
      case 'range':
        for (const { value, length } of readNumber(tokens, pos)) {
          if (value < list.from || value > list.to || (value - list.from) % list.step !== 0) continue;
          k(pos + length, { ...st, list: st.list + length, slots: { name: slot, value, from: pos, to: pos + length, next: st.slots } });
        }
        return;
      case 'wildcard': {
        const last = Math.min(n, pos + list.maxTokens);
        for (let end = pos + 1; end <= last && !exhausted(); end++) {
          steps++;
          k(end, { ...st, wildcard: st.wildcard + (end - pos), slots: { name: slot, value: undefined, from: pos, to: end, next: st.slots } });
        }
        return;
      }
    }
  };

  run(matcher, 0, { literal: 0, list: 0, wildcard: 0, slots: null }, (pos, st) => {
    if (pos !== n || exhausted()) return;
    readings++;
    const slots: Record<string, SlotValue> = {};
    // The link list is newest-first; fill oldest-first so a slot set twice keeps its last value.
    const links: SlotLink[] = [];
    for (let l = st.slots; l; l = l.next) links.push(l);
    for (let i = links.length - 1; i >= 0; i--) {
      const link = links[i]!;
      slots[link.name] = link.value ?? sourceSpan(text, link.from, link.to);
    }
    onReading(slots, { literal: st.literal, list: st.list, wildcard: st.wildcard });
  });
  return !exhausted();
}

function startsWith(tokens: readonly Token[], pos: number, seq: readonly string[]): boolean {
  if (pos + seq.length > tokens.length) return false;
  for (let i = 0; i < seq.length; i++) if (tokens[pos + i]!.text !== seq[i]) return false;
  return true;
}

/** Cheap facts about a matcher that let the recognizer skip it without running it. */
export interface MatcherBounds {
  /** Fewest tokens any reading consumes. */
  min: number;
  /** Most tokens any reading consumes (Infinity with an unbounded wildcard). */
  max: number;
  /** Tokens every reading contains. */
  required: Set<string>;
}

export function boundsOf(m: Matcher): MatcherBounds {
  switch (m.k) {
    case 'seq': {
      const parts = m.items.map(boundsOf);
      return {
        min: parts.reduce((a, b) => a + b.min, 0),
        max: parts.reduce((a, b) => a + b.max, 0),
        required: new Set(parts.flatMap((b) => [...b.required])),
      };
    }
    case 'alt': {
      const parts = m.options.map(boundsOf);
      const required = m.optional || parts.length === 0 ? new Set<string>() : parts.map((b) => b.required).reduce((a, b) => new Set([...a].filter((t) => b.has(t))));
      return { min: m.optional ? 0 : Math.min(...parts.map((b) => b.min)), max: Math.max(0, ...parts.map((b) => b.max)), required };
    }
    case 'lit': {
      const sets = m.seqs.map((s) => new Set(s));
      return {
        min: Math.min(...m.seqs.map((s) => s.length)),
        max: Math.max(...m.seqs.map((s) => s.length)),
        required: sets.reduce((a, b) => new Set([...a].filter((t) => b.has(t)))),
      };
    }
    case 'slot': {
      const l = m.list;
      // A dynamic list's values change after compilation: its bounds must hold for any values.
      if (l.kind === 'values') return l.dynamic ? { min: 1, max: Number.POSITIVE_INFINITY, required: new Set() } : { min: l.minTokens, max: l.maxTokens, required: new Set() };
      if (l.kind === 'range') return { min: 1, max: 2, required: new Set() };
      return { min: 1, max: l.maxTokens, required: new Set() };
    }
  }
}
