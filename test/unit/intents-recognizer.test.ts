import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../main/common/errors.js';
import { compileRuleSet, createRecognizer, loadRuleSet, parseIntentCases, parseRuleSet, runIntentCases, setListValues } from '../../main/runtime/intents/index.js';

const MUSIC = `
language: en
lists:
  album: {wildcard: true}
  artist: {wildcard: true}
  room:
    values:
      - kitchen
      - {in: living room, out: living_room}
      - bedroom
intents:
  music.play:
    scenario: play_music
    data:
      - sentences:
          - play {album} by {artist} [in [the] {room}]
`;

const rulesError = (yaml: string, file = 'rules.yaml'): string => {
  try {
    parseRuleSet(yaml, { file });
  } catch (err) {
    if (isTesseraError(err) && err.code === 'VALIDATION_FAILED') return err.message;
    throw err;
  }
  throw new Error('the rules compiled');
};

describe('intent recognizer: wildcards', () => {
  const music = createRecognizer(parseRuleSet(MUSIC, { file: 'music.yaml' }));

  it('does not let the artist wildcard swallow a room the list knows (the greediness trap)', () => {
    const r = music.recognize('play the wall by pink floyd in the kitchen');
    expect(r).toMatchObject({ intent: 'music.play', slots: { album: 'the wall', artist: 'pink floyd', room: 'kitchen' } });
    expect(r!.rule).toEqual({ intent: 'music.play', sentence: 'play {album} by {artist} [in [the] {room}]', source: 'music.yaml:16', file: 'music.yaml', line: 16 });
  });

  it('lets a wildcard at the end take the rest of the text when no room follows', () => {
    expect(music.recognize('play the wall by pink floyd')?.slots).toEqual({ album: 'the wall', artist: 'pink floyd' });
    expect(music.recognize('play the wall by pink floyd in the garage')?.slots).toEqual({ album: 'the wall', artist: 'pink floyd in the garage' });
  });

  it('tries every split, so literal words inside a wildcard do not cut it short', () => {
    expect(music.recognize('play back in black by ac dc in the living room')?.slots).toEqual({ album: 'back in black', artist: 'ac dc', room: 'living_room' });
  });

  it('prefers the lazy reading when two splits rank equal', () => {
    // "stand by me by ben e king": album "stand" and album "stand by me" take the same number of wildcard words.
    expect(music.recognize('play stand by me by ben e king')?.slots).toEqual({ album: 'stand', artist: 'me by ben e king' });
  });

  it('requires at least one word for a wildcard', () => {
    expect(music.recognize('play by pink floyd')).toBeNull();
    expect(music.recognize('play the wall by')).toBeNull();
  });

  it('returns the user’s spelling for wildcard slots', () => {
    expect(music.recognize('Play The Wall by Pink Floyd, in the Bedroom!')?.slots).toEqual({ album: 'The Wall', artist: 'Pink Floyd', room: 'bedroom' });
  });

  it('ranks every distinct reading, the trap’s intended one first', () => {
    const all = music.recognizeAll('play the wall by pink floyd in the kitchen');
    expect(all.map((r) => r.slots)).toEqual([
      { album: 'the wall', artist: 'pink floyd', room: 'kitchen' },
      { album: 'the wall', artist: 'pink floyd in the kitchen' },
    ]);
    expect(all[0]!.score).toBeGreaterThan(all[1]!.score);
    expect(all[0]!.counts).toEqual({ literal: 4, list: 1, wildcard: 4 });
  });

  it('stays bounded on a template with many wildcards and a long utterance', () => {
    const r = createRecognizer(
      compileRuleSet({ language: 'en', lists: { a: { wildcard: true } }, intents: { x: { scenario: 'y', data: [{ sentences: ['[x] {a:a} [x] {a:b} [x] {a:c} [x] {a:d} [x] {a:e}'] }] } } }),
    );
    const text = Array.from({ length: 64 }, () => 'x').join(' ');
    const started = performance.now();
    expect(r.recognize(text)?.intent).toBe('x');
    expect(performance.now() - started).toBeLessThan(500);
    expect(r.recognize(`${text} x`)).toBeNull();
  });

  it('bounds a wildcard by max_tokens', () => {
    const r = createRecognizer(compileRuleSet({ language: 'en', lists: { code: { wildcard: true, max_tokens: 2 } }, intents: { redeem: { scenario: 'r', data: [{ sentences: ['redeem {code}'] }] } } }));
    expect(r.recognize('redeem ab 12')?.slots).toEqual({ code: 'ab 12' });
    expect(r.recognize('redeem ab 12 cd')).toBeNull();
  });
});

describe('intent recognizer: lists, ranges and fixed slots', () => {
  const rules = parseRuleSet(
    `
language: ru
lists:
  city:
    values:
      - {in: "берлин(|е|а)", out: berlin}
      - {in: [москв(а|е|у), мск], out: moscow}
      - париж
  minutes: {range: {from: 1, to: 60}}
  even: {range: {from: 2, to: 10, step: 2}}
expansion_rules:
  minutes_word: минут(у|ы|)
intents:
  weather.now:
    scenario: weather_now
    data:
      - sentences: ["[какая] погода (в|во) {city}", "погода {city}"]
  timer.set:
    handler: timers
    data:
      - sentences: ["таймер на {minutes} <minutes_word>"]
      - sentences: ["таймер на полчаса"]
        slots: {minutes: 30}
  even.pick:
    scenario: even
    data:
      - sentences: ["четное {even}"]
`,
    { file: 'ru.yaml' },
  );
  const ru = createRecognizer(rules);

  it('maps the grammatical cases of a city to one canonical value', () => {
    for (const text of ['погода в Берлине', 'Погода Берлин', 'какая погода в берлина']) expect(ru.recognize(text)?.slots, text).toEqual({ city: 'berlin' });
    for (const text of ['погода в Москве', 'погода москву', 'погода мск']) expect(ru.recognize(text)?.slots, text).toEqual({ city: 'moscow' });
  });

  it('yields a plain list value as written', () => {
    expect(ru.recognize('погода в Париже')).toBeNull();
    expect(ru.recognize('погода Париж')?.slots).toEqual({ city: 'париж' });
  });

  it('rejects a value that is not in the list', () => {
    expect(ru.recognize('погода в Атлантиде')).toBeNull();
  });

  it('reads range slots from digits and number words and yields numbers', () => {
    expect(ru.recognize('таймер на 5 минут')?.slots).toEqual({ minutes: 5 });
    expect(ru.recognize('таймер на две минуты')?.slots).toEqual({ minutes: 2 });
    expect(ru.recognize('таймер на одну минуту')?.slots).toEqual({ minutes: 1 });
    expect(ru.recognize('таймер на двадцать пять минут')?.slots).toEqual({ minutes: 25 });
  });

  it('rejects numbers outside the range or off its step', () => {
    expect(ru.recognize('таймер на 61 минуту')).toBeNull();
    expect(ru.recognize('таймер на 0 минут')).toBeNull();
    expect(ru.recognize('четное 4')?.slots).toEqual({ even: 4 });
    expect(ru.recognize('четное 5')).toBeNull();
  });

  it('adds the fixed slots of a data block', () => {
    expect(ru.recognize('таймер на полчаса')).toMatchObject({ intent: 'timer.set', slots: { minutes: 30 }, target: { handler: 'timers' } });
  });

  it('reports the target the rule file names', () => {
    expect(ru.recognize('погода в Берлине')?.target).toEqual({ scenario: 'weather_now' });
  });
});

describe('intent recognizer: scoring and ranking', () => {
  const rules = parseRuleSet(`
language: en
lists:
  anything: {wildcard: true}
  artist: {wildcard: true}
  city: {values: [berlin]}
intents:
  music.play:
    scenario: play_music
    data:
      - sentences: ["play {anything}", "play music by {artist}"]
  weather.now:
    scenario: weather_now
    data:
      - sentences: ["weather in {city}", "weather in {anything}"]
  greet:
    scenario: greet_on_boot
    data:
      - sentences: ["hello"]
`);
  const r = createRecognizer(rules);

  it('scores 1 when every word is a literal word of the template', () => {
    expect(r.recognize('Hello!')?.score).toBe(1);
  });

  it('prefers literal words over a wildcard that could take them', () => {
    const best = r.recognize('play music by queen');
    expect(best).toMatchObject({ intent: 'music.play', slots: { artist: 'queen' } });
    expect(best!.rule.sentence).toBe('play music by {artist}');
    const all = r.recognizeAll('play music by queen');
    expect(all.map((x) => x.slots)).toEqual([{ artist: 'queen' }, { anything: 'music by queen' }]);
    expect(all[0]!.score).toBeGreaterThan(all[1]!.score);
  });

  it('prefers a list value over a wildcard for the same words', () => {
    const all = r.recognizeAll('weather in berlin');
    expect(all[0]!.slots).toEqual({ city: 'berlin' });
    expect(all[1]!.slots).toEqual({ anything: 'berlin' });
    expect(all[0]!.score).toBeGreaterThan(all[1]!.score);
    expect(r.recognize('weather in atlantis')?.slots).toEqual({ anything: 'atlantis' });
  });

  it('keeps scores within (0, 1]', () => {
    for (const text of ['hello', 'play x', 'play a b c d e f', 'weather in berlin', 'play music by queen']) {
      for (const c of r.recognizeAll(text)) {
        expect(c.score).toBeGreaterThan(0);
        expect(c.score).toBeLessThanOrEqual(1);
      }
    }
  });

  it('returns null for empty text and for text no rule covers entirely', () => {
    expect(r.recognize('')).toBeNull();
    expect(r.recognize('?!')).toBeNull();
    expect(r.recognize('hello there')).toBeNull();
  });

  it('limits recognizeAll', () => {
    expect(r.recognizeAll('play music by queen', { limit: 1 })).toHaveLength(1);
  });

  it('restricts recognition to one language when asked', () => {
    const both = createRecognizer([rules, parseRuleSet('language: ru\nintents:\n  greet:\n    scenario: greet_on_boot\n    data: [{sentences: [привет]}]\n')]);
    expect(both.languages).toEqual(['en', 'ru']);
    expect(both.recognize('привет')?.language).toBe('ru');
    expect(both.recognize('привет', { language: 'en' })).toBeNull();
    expect(both.recognize('hello', { language: 'ru' })).toBeNull();
  });

  it('recognizes an utterance of the shipped rules (50 sentences) in well under a millisecond', () => {
    const shipped = createRecognizer([loadRuleSet('resources/intents/en.yaml'), loadRuleSet('resources/intents/ru.yaml')]);
    expect(shipped.ruleSets.reduce((n, s) => n + s.sentences.length, 0)).toBeGreaterThanOrEqual(45);
    const texts = ['play songs in the key of life by stevie wonder in the office', 'погода в Берлине', 'set a timer for twenty five minutes', 'tell me a joke'];
    for (let i = 0; i < 100; i++) for (const t of texts) shipped.recognize(t);
    const rounds = 500;
    const started = performance.now();
    for (let i = 0; i < rounds; i++) for (const t of texts) shipped.recognize(t);
    const perUtteranceMs = (performance.now() - started) / (rounds * texts.length);
    // Typically ~0.05 ms; the bound is loose so a busy CI machine does not fail it.
    expect(perUtteranceMs).toBeLessThan(1);
  });
});

describe('intent rule files', () => {
  it('points a template error at its file, line and column', () => {
    const yaml = 'language: en\nintents:\n  x:\n    scenario: y\n    data:\n      - sentences:\n          - "play (a|b {album}"\n';
    expect(rulesError(yaml)).toBe('rules.yaml:7:19: "(" is never closed; expected ")" in template "play (a|b {album}"');
  });

  it('points an unknown list at the slot reference', () => {
    const yaml = 'language: en\nintents:\n  x:\n    scenario: y\n    data:\n      - sentences:\n          - play {albun} now\n';
    expect(rulesError(yaml)).toBe('rules.yaml:7:18: unknown list {albun}; define it under lists: in template "play {albun} now"');
  });

  it('reports YAML syntax errors with their line', () => {
    expect(rulesError('language: en\nintents:\n  x: [unclosed\n')).toMatch(/^rules\.yaml:\d+:\d+: invalid YAML/);
  });

  it('rejects unknown keys, bad languages and intents without a target, naming the line', () => {
    expect(rulesError('language: en\nintents:\n  x:\n    scenario: y\n    sentences: [hi]\n')).toBe('rules.yaml:5:5: unknown key "sentences"; expected one of: scenario, handler, description, data');
    expect(rulesError('language: de\nintents: {}\n')).toBe('rules.yaml:1:11: language must be one of en, ru, uk');
    expect(rulesError('language: en\nintents:\n  x:\n    data: [{sentences: [hi]}]\n')).toBe('rules.yaml:4:5: intent "x" needs exactly one of scenario: or handler:');
  });

  it('rejects malformed lists', () => {
    expect(rulesError('language: en\nlists:\n  n: {range: {from: 5, to: 1}}\nintents: {x: {scenario: y, data: [{sentences: [hi]}]}}\n')).toContain('rules.yaml:3:14: range must have 0 <= from <= to');
    expect(rulesError('language: en\nlists:\n  n: {values: [a], wildcard: true}\nintents: {x: {scenario: y, data: [{sentences: [hi]}]}}\n')).toContain('needs exactly one of values:, range:, wildcard: true or dynamic: true');
    expect(rulesError('language: en\nlists:\n  p: {dynamic: yes please}\nintents: {x: {scenario: y, data: [{sentences: [hi]}]}}\n')).toContain('rules.yaml:3:16: dynamic must be true');
    expect(rulesError('language: en\nlists:\n  p: {wildcard: true, speech: loud}\nintents: {x: {scenario: y, data: [{sentences: [hi]}]}}\n')).toContain('speech must be names');
    expect(rulesError('language: en\nlists:\n  p: {values: [a], speech: names}\nintents: {x: {scenario: y, data: [{sentences: [hi]}]}}\n')).toContain('speech applies to wildcard lists only');
    expect(rulesError('language: en\nlists:\n  c: {values: ["{x}"]}\nintents: {x: {scenario: y, data: [{sentences: [hi]}]}}\n')).toContain('cannot be part of a glued word or a list value');
  });

  it('rejects unknown and self-referring expansion rules', () => {
    expect(rulesError('language: en\nintents: {x: {scenario: y, data: [{sentences: ["hi <there>"]}]}}\n')).toContain('unknown expansion rule <there>');
    expect(rulesError('language: en\nexpansion_rules: {a: "x <a>"}\nintents: {x: {scenario: y, data: [{sentences: ["hi <a>"]}]}}\n')).toContain('refers to itself');
  });

  it('names the path when the rules are plain data', () => {
    try {
      compileRuleSet({ language: 'en', intents: { x: { scenario: 'y', data: [{ sentences: [42] }] } } }, { file: 'inline' });
      throw new Error('compiled');
    } catch (err) {
      expect((err as Error).message).toBe('inline at intents.x.data.0.sentences.0: a sentence template must be a non-empty string');
    }
  });
});

const PLACES = `
language: en
lists:
  place: {dynamic: true}
  place_name: {wildcard: true, max_tokens: 6}
  room: {values: [kitchen]}
intents:
  journey.route:
    scenario: journey_route
    data:
      - sentences: ["how do i get to [the] {place}"]
      - sentences: ["how do i get to {place_name}"]
  journey.hours:
    scenario: journey_hours
    data:
      - sentences: ["when does [the] {place} close"]
`;

describe('dynamic lists (issue 15: {place} from the journeys in progress)', () => {
  it('match nothing until the runtime sets their values, then match them at once, without recompiling', () => {
    const set = parseRuleSet(PLACES, { file: 'places.yaml' });
    expect(set.dynamicLists).toEqual(['place']);
    const r = createRecognizer(set);
    // Empty: a place is only free text, ranked below a list match.
    expect(r.recognize('how do I get to the opera')).toMatchObject({ intent: 'journey.route', slots: { place_name: 'the opera' } });
    expect(r.recognize('when does the opera close')).toBeNull();
    expect(setListValues(set, 'place', [{ in: ['Opera', 'opera house', 'Lviv Opera'], out: 'lviv.opera' }, { in: ['Rynok Square', 'opera'], out: 'lviv.rynok' }])).toBe(4);
    expect(r.recognize('how do I get to the Opera House?')).toMatchObject({ intent: 'journey.route', slots: { place: 'lviv.opera' } });
    // A repeated text keeps its first value.
    expect(r.recognize('when does the opera close')).toMatchObject({ intent: 'journey.hours', slots: { place: 'lviv.opera' } });
    expect(r.recognize('how do I get to rynok square')?.slots).toEqual({ place: 'lviv.rynok' });
    // Set again: the old values are gone, the new ones match.
    setListValues(set, 'place', [{ in: ['Lychakiv Cemetery'], out: 'lviv.lychakiv' }]);
    expect(r.recognize('how do I get to the opera')?.slots).toEqual({ place_name: 'the opera' });
    expect(r.recognize('when does lychakiv cemetery close')?.slots).toEqual({ place: 'lviv.lychakiv' });
    setListValues(set, 'place', []);
    expect(r.recognize('when does lychakiv cemetery close')).toBeNull();
  });

  it('refuses values for a list that is not declared dynamic, naming the ones that are', () => {
    const set = parseRuleSet(PLACES, { file: 'places.yaml' });
    expect(() => setListValues(set, 'room', [{ in: ['hall'], out: 'hall' }])).toThrow(expect.objectContaining({ code: 'INTENT_LIST_NOT_DYNAMIC', message: 'The rule set places.yaml has no list "room" declared dynamic: true (its dynamic lists: place).' }));
    expect(() => setListValues(set, 'nope', [])).toThrow(expect.objectContaining({ code: 'INTENT_LIST_NOT_DYNAMIC' }));
  });

  it('takes their values from a case file\'s lists, and refuses lists no rule set declares dynamic', () => {
    const set = parseRuleSet(PLACES, { file: 'places.yaml' });
    const cases = parseIntentCases('language: en\nlists:\n  place:\n    - {in: [opera, opera house], out: lviv.opera}\n    - market square\ncases:\n  - {text: how do I get to the opera house, intent: journey.route, slots: {place: lviv.opera}}\n  - {text: when does market square close, intent: journey.hours, slots: {place: market square}}\n', 'cases.yaml');
    expect(runIntentCases(createRecognizer(set), cases).map((c) => c.ok)).toEqual([true, true]);
    const wrong = parseIntentCases('lists:\n  room: [hall]\ncases:\n  - {text: hi, intent: null}\n', 'wrong.yaml');
    expect(() => runIntentCases(createRecognizer(set), wrong)).toThrow(expect.objectContaining({ code: 'INTENT_LIST_NOT_DYNAMIC', message: expect.stringContaining('wrong.yaml: lists.room') }));
  });
});
