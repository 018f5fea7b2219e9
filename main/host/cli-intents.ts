/**
 * `tessera intent …`: test and try intent rule sets (seed 001 §6), like Home Assistant's intent tests.
 *
 * - `intent test RULES.yaml CASES.yaml [--json]`: one line per case (PASS/FAIL, expected vs got), then
 *   exactly `N passed, M failed`. Exit 0 when all pass, 1 when any fails, 2 on a usage error, 1 with
 *   `error VALIDATION_FAILED: file:line:col: …` when a file is malformed.
 * - `intent recognize TEXT [--rules FILE] [--language en|ru|uk] [--all]`: the reading as JSON (null when
 *   nothing matches); without --rules, the bundled rules in resources/intents.
 *
 * Commands report their own errors in the CLI's shape (`error CODE: message`) so they behave the same when
 * called directly (tests) and through runCli.
 */
import { join } from 'node:path';
import { TesseraError } from '../common/errors.js';
import type { IntentCaseResult, Language, Recognition } from '../runtime/intents/index.js';
import { LANGUAGES, createRecognizer, loadIntentCases, loadRuleSet, runIntentCases } from '../runtime/intents/index.js';
import { reporting } from './cli-report.js';
import type { Command } from './cli.js';
import { APP_ROOT } from './paths.js';

/** The rule files shipped with the app, used when `--rules` is not given. */
export const BUNDLED_INTENT_RULES = ['en.yaml', 'ru.yaml', 'uk.yaml'].map((f) => join(APP_ROOT, 'resources', 'intents', f));

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

const show = (intent: string | null, slots: Record<string, unknown>) => (intent === null ? 'no intent' : `${intent} ${JSON.stringify(slots)}`);

function formatResult(r: IntentCaseResult): string {
  const head = `${r.ok ? 'PASS' : 'FAIL'}  ${r.case.source}  ${JSON.stringify(r.case.text)}`;
  if (r.ok) return `${head} → ${show(r.case.intent, r.case.slots)}\n`;
  const got = r.got ? `${show(r.got.intent, r.got.slots)}  (score ${r.got.score}, rule ${r.got.rule.source} ${JSON.stringify(r.got.rule.sentence)})` : 'no intent';
  return `${head}\n      expected: ${show(r.case.intent, r.case.slots)}\n      got:      ${got}\n      ${r.reason}\n`;
}

const intentTest: Command = {
  name: 'intent test',
  summary: 'Check a rule set against a file of utterances with their expected intent and slots.',
  usage: 'tessera intent test RULES.yaml CASES.yaml [--json]',
  positionals: 2,
  options: { json: { type: 'boolean' } },
  flags: [['--json', 'Print the results as JSON.']],
  run(values, positionals, io) {
    return reporting(io, () => {
      const [rulesFile, casesFile] = positionals;
      if (!rulesFile || !casesFile) throw new TesseraError('CONFIG_INVALID', `RULES.yaml and CASES.yaml are required. Usage: ${this.usage}`);
      const rules = loadRuleSet(rulesFile);
      const cases = loadIntentCases(casesFile);
      if (cases.language !== undefined && cases.language !== rules.language) {
        throw new TesseraError('VALIDATION_FAILED', `${casesFile}: the cases are language ${cases.language} but ${rulesFile} is ${rules.language}.`);
      }
      const recognizer = createRecognizer(rules);
      const started = performance.now();
      const results = runIntentCases(recognizer, cases);
      const elapsedMs = performance.now() - started;
      const failed = results.filter((r) => !r.ok).length;
      const passed = results.length - failed;
      if (values['json']) {
        const json = {
          rules: rulesFile,
          cases: casesFile,
          passed,
          failed,
          elapsed_ms: Math.round(elapsedMs * 1000) / 1000,
          results: results.map((r) => ({
            source: r.case.source,
            text: r.case.text,
            ok: r.ok,
            expected: { intent: r.case.intent, slots: r.case.slots },
            got: r.got ? { intent: r.got.intent, slots: r.got.slots, score: r.got.score, rule: r.got.rule } : null,
            ...(r.reason ? { reason: r.reason } : {}),
          })),
        };
        io.stdout(JSON.stringify(json, null, 2) + '\n');
      } else {
        io.stdout(results.map(formatResult).join('') + `${passed} passed, ${failed} failed\n`);
      }
      return failed === 0 ? 0 : 1;
    });
  },
};

const intentRecognize: Command = {
  name: 'intent recognize',
  summary: 'Recognize one utterance and print the intent, slots, score and matching rule as JSON.',
  usage: 'tessera intent recognize TEXT [--rules FILE] [--language en|ru|uk] [--all]',
  positionals: 1,
  options: { rules: { type: 'string' }, language: { type: 'string' }, all: { type: 'boolean' } },
  flags: [
    ['--rules FILE', 'The rule file (default: the bundled resources/intents/en.yaml and ru.yaml).'],
    ['--language en|ru|uk', 'Recognize in this language only (default: every rule set, best reading wins).'],
    ['--all', 'Print every distinct reading, best first, instead of the best one.'],
  ],
  run(values, positionals, io) {
    return reporting(io, () => {
      const text = positionals[0];
      if (text === undefined) throw new TesseraError('CONFIG_INVALID', `TEXT is required. Usage: ${this.usage}`);
      const language = str(values['language']);
      if (language !== undefined && !LANGUAGES.includes(language as Language)) throw new TesseraError('CONFIG_INVALID', `--language must be one of ${LANGUAGES.join(', ')}, got "${language}".`);
      const rulesFile = str(values['rules']);
      const recognizer = createRecognizer((rulesFile ? [rulesFile] : BUNDLED_INTENT_RULES).map(loadRuleSet));
      const options = language === undefined ? {} : { language: language as Language };
      const out: Recognition | Recognition[] | null = values['all'] ? recognizer.recognizeAll(text, options) : recognizer.recognize(text, options);
      io.stdout(JSON.stringify(out, null, 2) + '\n');
      return 0;
    });
  },
};

export const INTENT_COMMANDS: Command[] = [intentTest, intentRecognize];
