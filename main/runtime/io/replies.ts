/**
 * What the Journey Guide says when a request it understood could not be done (issue 13 point 15): every
 * understood request gets an answer, and a failure is said in words a traveller understands — never an error
 * code, a stack or a schema. The code and the technical reason stay in the journal and the run (Ops). The
 * words are the message catalogue's (./messages.ts), in the language the request was made in.
 */
import type { MessageCatalogue } from './messages.js';
/** Why a traveller's run ended without finishing. */
export interface RunEnd {
  /** The scenario that ran. */
  scenario_id: string | null;
  state: 'failed' | 'cancelled';
  /** The failed step's error (a code of main/common/errors.ts, as journaled), or the run's. */
  error: { code: string; message: string } | null;
  /** The run was waiting for the traveller's answer when it ended. */
  waiting_for_answer: boolean;
}

/** Errors that mean a tool could not reach or use what it depends on (a service, the sandbox, its permit). */
const SERVICE_CODES = new Set(['PLUGIN_FAILED', 'PLUGIN_NOT_FOUND', 'PLUGIN_OUTPUT_INVALID', 'PLUGIN_MEMORY_EXCEEDED', 'SANDBOX_UNAVAILABLE', 'CAPABILITY_DENIED', 'PERMIT_INVALID', 'STEP_FAILED']);
const TIMEOUT_CODES = new Set(['STEP_TIMEOUT', 'PLUGIN_TIMEOUT']);
const BUSY_CODES = new Set(['LOCK_TIMEOUT', 'QUEUE_FULL', 'QUOTA_EXCEEDED', 'MIC_BUSY']);

/**
 * The kind of failure, as the traveller should hear it. A scenario may have its own words for its failure
 * (`failed.<scenario id>`); a question left unanswered, a timeout, a service out of reach, a busy device, a stop
 * by staff and anything else each have theirs.
 */
export function failureKey(end: RunEnd): string {
  const code = end.error?.code ?? '';
  if (end.state === 'cancelled' || code === 'RUN_CANCELLED') return 'failed.cancelled';
  if (end.waiting_for_answer && TIMEOUT_CODES.has(code)) return 'failed.no_answer';
  if (end.scenario_id) return `failed.${end.scenario_id}`;
  return fallbackKey(code);
}

/** The general key for `code`, used when a scenario has no words of its own. */
export function fallbackKey(code: string): string {
  if (TIMEOUT_CODES.has(code)) return 'failed.timeout';
  if (BUSY_CODES.has(code)) return 'failed.busy';
  if (SERVICE_CODES.has(code)) return 'failed.service';
  return 'failed.other';
}

/** The sentence a traveller hears, in `language`, when their run ended without finishing. */
export function failureText(end: RunEnd, messages: MessageCatalogue, language: string | null): string {
  const key = failureKey(end);
  return messages.render(messages.has(key) ? key : fallbackKey(end.error?.code ?? ''), {}, language);
}

/**
 * The language an utterance that no rule recognized was probably written in: Cyrillic is Russian (Ukrainian
 * when it has і, ї, є or ґ and the catalogue has Ukrainian), anything else the catalogue's default.
 */
export function guessLanguage(text: string, messages: MessageCatalogue): string {
  if (/[іїєґ]/iu.test(text) && messages.languages.includes('uk')) return 'uk';
  if (/\p{Script=Cyrillic}/u.test(text)) return messages.resolve('ru');
  return messages.resolve(null);
}
