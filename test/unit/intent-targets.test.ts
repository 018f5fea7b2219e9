/**
 * Where intents route, checked at load (issue 13 point 16): every scenario an intent names exists, and every
 * sentence's slots, with the context the Journey Guide adds, satisfy the scenario's ctx_schema. The shipped
 * rules and scenarios are held to it here; the runtime journals what it finds at start.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkIntentTargets, loadRuleSet, parseRuleSet } from '../../main/runtime/intents/index.js';
import { DIALOGUE_CONTEXT_SAMPLE } from '../../main/runtime/io/index.js';
import { createRuntime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { loadScenarioDir } from '../../main/runtime/scenarios/dsl.js';
import { tempDir } from '../helpers/tmp.js';

const RESOURCES = new URL('../../resources/', import.meta.url).pathname;
const shippedRules = () => ['en', 'ru', 'uk'].map((l) => loadRuleSet(join(RESOURCES, 'intents', `${l}.yaml`)));
const shippedScenarios = () => {
  const loaded = loadScenarioDir(join(RESOURCES, 'scenarios'));
  expect(loaded.errors).toEqual([]);
  return new Map(loaded.scenarios.map((s) => [s.id, s]));
};

describe('intent targets', () => {
  it('the shipped rules route only to shipped scenarios, and every sentence gives what its scenario needs', () => {
    const scenarios = shippedScenarios();
    expect(checkIntentTargets(shippedRules(), (id) => scenarios.get(id), { ...DIALOGUE_CONTEXT_SAMPLE })).toEqual([]);
  });

  it('names a slot that fills the wrong ctx field and a target with no scenario, with the sentence and its line', () => {
    const rules = parseRuleSet([
      'language: en',
      'lists:',
      '  code: {wildcard: true}',
      '  n: {range: {from: 0, to: 5}}',
      'intents:',
      '  entitlement.redeem:',
      '    scenario: redeem',
      '    data:',
      '      - sentences: ["redeem {code}"]',
      '  music.play:',
      '    scenario: play_music',
      '    data:',
      '      - sentences: ["play something"]',
      '  count:',
      '    scenario: counter',
      '    data:',
      '      - sentences: ["count [to] {n}"]',
      '  fine:',
      '    scenario: redeem',
      '    data:',
      '      - sentences: ["use {code:entitlement_id}"]',
      '',
    ].join('\n'), { file: 'rules.yaml' });
    const scenarios = new Map<string, { ctx_schema?: Record<string, unknown> }>([
      ['redeem', { ctx_schema: { type: 'object', required: ['entitlement_id'], properties: { entitlement_id: { type: 'string', minLength: 1 } } } }],
      // The range's lower end (0) is below what the scenario takes.
      ['counter', { ctx_schema: { type: 'object', required: ['n'], properties: { n: { type: 'integer', minimum: 1 } } } }],
    ]);
    const problems = checkIntentTargets([rules], (id) => scenarios.get(id), { ...DIALOGUE_CONTEXT_SAMPLE });
    expect(problems).toEqual([
      { intent: 'entitlement.redeem', scenario: 'redeem', source: 'rules.yaml:9', sentence: 'redeem {code}', message: expect.stringContaining("must have required property 'entitlement_id'") },
      { intent: 'music.play', scenario: 'play_music', source: 'rules.yaml:13', message: 'intent "music.play" routes to scenario "play_music", which does not exist' },
      { intent: 'count', scenario: 'counter', source: 'rules.yaml:17', sentence: 'count [to] {n}', message: expect.stringContaining('ctx/n must be >= 1') },
    ]);
    expect(problems[0]!.message).toContain('gives {"code":"some words"}');
  });

  it('is journaled at start, so Ops sees an intent that cannot run', async () => {
    const dir = tempDir('tessera-targets-');
    const rules = join(dir, 'en.yaml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(rules, 'language: en\nintents:\n  music.play:\n    scenario: play_nothing\n    data: [{sentences: [play something]}]\n');
    const runtime = await createRuntime({ dataDir: join(dir, 'data'), shell: 'headless', logger: createMemoryLogger(), voice: false, intentRuleFiles: [rules] });
    try {
      expect(runtime.journal.query({ topic: 'intent.target_invalid' }).events.map((e) => e.payload)).toEqual([
        { intent: 'music.play', scenario: 'play_nothing', source: 'en.yaml:5', message: 'intent "music.play" routes to scenario "play_nothing", which does not exist' },
      ]);
    } finally {
      await runtime.close();
    }
  });
});
