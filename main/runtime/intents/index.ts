/**
 * Intents (seed 001 §6, §16; seed 002 §1): rule templates with slots → recognizer → IntentRegistry → router.
 * The rule format is documented in ./rules.ts, the template syntax in ./template.ts, the ranking in
 * ./recognizer.ts, the test-case format in ./cases.ts.
 */
export { LANGUAGES, normalize, readNumber, tokenize } from './normalize.js';
export type { Language, Token, Tokenized } from './normalize.js';
export { parseTemplate } from './template.js';
export type { AlternativeNode, JoinedNode, RuleRefNode, SequenceNode, SlotNode, TemplateErrorDetails, TemplateNode, WordNode } from './template.js';
export type { ReadingCounts, SlotValue } from './matcher.js';
export { compileRuleSet, loadRuleSet, parseRuleSet, setListValues } from './rules.js';
export type { DynamicListValue, IntentRule, IntentTarget, RuleSet, SentenceRule, SourceRef } from './rules.js';
export { MAX_UTTERANCE_TOKENS, SCORE_WEIGHTS, createRecognizer } from './recognizer.js';
export type { MatchedRule, Recognition, RecognizeOptions, Recognizer } from './recognizer.js';
export { createIntentRegistry, registerRuleSetIntents } from './registry.js';
export type { IntentHandler, IntentInvocation, IntentRegistration, IntentRegistry, RegisterIntentOptions } from './registry.js';
export { createIntentRouter } from './router.js';
export type { IntentRoute, IntentRouter, RouteContext, RunScenario } from './router.js';
export { loadIntentCases, parseIntentCases, runIntentCases } from './cases.js';
export { checkIntentTargets } from './targets.js';
export type { ScenarioShape, TargetProblem } from './targets.js';
export type { IntentCase, IntentCaseFile, IntentCaseResult } from './cases.js';
