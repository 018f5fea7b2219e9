/**
 * Event topics and topic patterns (seed 001 §5: `bus.subscribe("nlp.intent.*")`).
 *
 * A topic is dot-separated segments of `[A-Za-z0-9_-]`, at most 200 characters: `nlp.intent.weather`.
 * A pattern is a topic whose segments may also be `*` (exactly one segment) or `**` (any number of segments,
 * including none): `nlp.intent.*` matches `nlp.intent.weather` but not `nlp.intent` nor `nlp.intent.a.b`;
 * `nlp.**` matches `nlp`, `nlp.intent` and `nlp.intent.a.b`; `**` matches everything.
 *
 * Pure module: shared by the runtime and the renderer.
 */
const SEGMENT = /^[A-Za-z0-9_-]+$/;
export const MAX_TOPIC_LENGTH = 200;

/** Returns null when `topic` is a valid concrete topic, else the reason it is not. */
export function topicProblem(topic: unknown): string | null {
  if (typeof topic !== 'string') return 'a topic must be a string';
  if (topic.length === 0) return 'a topic must not be empty';
  if (topic.length > MAX_TOPIC_LENGTH) return `a topic is at most ${MAX_TOPIC_LENGTH} characters`;
  for (const segment of topic.split('.')) {
    if (!SEGMENT.test(segment)) return `"${topic}" is not a topic: segments are letters, digits, "_" or "-", separated by single dots`;
  }
  return null;
}

/** Returns null when `pattern` is a valid topic pattern, else the reason it is not. */
export function patternProblem(pattern: unknown): string | null {
  if (typeof pattern !== 'string') return 'a topic pattern must be a string';
  if (pattern.length === 0) return 'a topic pattern must not be empty';
  if (pattern.length > MAX_TOPIC_LENGTH) return `a topic pattern is at most ${MAX_TOPIC_LENGTH} characters`;
  for (const segment of pattern.split('.')) {
    if (segment !== '*' && segment !== '**' && !SEGMENT.test(segment)) {
      return `"${pattern}" is not a topic pattern: segments are names, "*" (one segment) or "**" (any number)`;
    }
  }
  return null;
}

export function isWildcardPattern(pattern: string): boolean {
  return pattern.split('.').some((s) => s === '*' || s === '**');
}

/** The literal segments before the first wildcard, joined by dots ("" when the pattern starts with one). */
export function literalPrefix(pattern: string): string {
  const out: string[] = [];
  for (const segment of pattern.split('.')) {
    if (segment === '*' || segment === '**') break;
    out.push(segment);
  }
  return out.join('.');
}

export type TopicMatcher = (topic: string) => boolean;

/** Compile a (valid) pattern into a matcher. Linear in topic length; no regular expressions built from input. */
export function compilePattern(pattern: string): TopicMatcher {
  const parts = pattern.split('.');
  if (!parts.some((p) => p === '*' || p === '**')) return (topic) => topic === pattern;
  return (topic) => matchSegments(parts, 0, topic.split('.'), 0);
}

function matchSegments(pattern: string[], pi: number, topic: string[], ti: number): boolean {
  while (pi < pattern.length) {
    const p = pattern[pi];
    if (p === '**') {
      // Collapse consecutive `**` and try every split point; patterns are short so this stays cheap.
      while (pattern[pi + 1] === '**') pi++;
      if (pi === pattern.length - 1) return true;
      for (let k = ti; k <= topic.length; k++) {
        if (matchSegments(pattern, pi + 1, topic, k)) return true;
      }
      return false;
    }
    if (ti >= topic.length) return false;
    if (p !== '*' && p !== topic[ti]) return false;
    pi++;
    ti++;
  }
  return ti === topic.length;
}
