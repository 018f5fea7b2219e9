import { describe, expect, it } from 'vitest';
import { compilePattern, literalPrefix, patternProblem, topicProblem } from '../../main/common/topics.js';

describe('topics', () => {
  it('accepts dot-separated names and rejects empty segments, wildcards and junk in concrete topics', () => {
    expect(topicProblem('nlp.intent.weather')).toBeNull();
    expect(topicProblem('a_b-c.D9')).toBeNull();
    for (const bad of ['', '.a', 'a.', 'a..b', 'a.*', 'a b', 'a/b', 'ä', 'x'.repeat(201), 42]) {
      expect(topicProblem(bad), String(bad)).not.toBeNull();
    }
  });

  it('accepts * and ** as whole segments only', () => {
    expect(patternProblem('nlp.intent.*')).toBeNull();
    expect(patternProblem('**')).toBeNull();
    expect(patternProblem('a.**.z')).toBeNull();
    expect(patternProblem('a.b*')).not.toBeNull();
    expect(patternProblem('a..b')).not.toBeNull();
  });

  it('matches * against exactly one segment (seed 001: nlp.intent.*)', () => {
    const m = compilePattern('nlp.intent.*');
    expect(m('nlp.intent.weather')).toBe(true);
    expect(m('nlp.intent')).toBe(false);
    expect(m('nlp.intent.weather.now')).toBe(false);
    expect(m('nlp.intentx.weather')).toBe(false);
  });

  it('matches ** against any number of segments, including none', () => {
    const m = compilePattern('nlp.**');
    expect(m('nlp')).toBe(true);
    expect(m('nlp.a')).toBe(true);
    expect(m('nlp.a.b.c')).toBe(true);
    expect(m('nlpx')).toBe(false);
    const mid = compilePattern('a.**.z');
    expect(mid('a.z')).toBe(true);
    expect(mid('a.b.c.z')).toBe(true);
    expect(mid('a.b.c')).toBe(false);
    expect(compilePattern('**')('anything.at.all')).toBe(true);
  });

  it('matches a pattern without wildcards only against the identical topic', () => {
    expect(compilePattern('a.b')('a.b')).toBe(true);
    expect(compilePattern('a.b')('a.b.c')).toBe(false);
  });

  it('finds the literal prefix before the first wildcard', () => {
    expect(literalPrefix('nlp.intent.*')).toBe('nlp.intent');
    expect(literalPrefix('*.x')).toBe('');
    expect(literalPrefix('a.b')).toBe('a.b');
  });
});
