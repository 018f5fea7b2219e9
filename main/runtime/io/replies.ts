/**
 * What the Journey Guide says when a request it understood could not be done (issue 13 point 15): every
 * understood request gets an answer, and a failure is said in words a traveller understands — never an error
 * code, a stack or a schema. The code and the technical reason stay in the journal and the run (Ops).
 */
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

/** English words for each key: what the message catalogue replaces (point 16). */
const ENGLISH: Record<string, string> = {
  'failed.cancelled': 'That was stopped before it finished.',
  'failed.no_answer': 'I did not get an answer, so I stopped there. Ask me again whenever you like.',
  'failed.weather_now': 'Sorry, I cannot get the weather right now: the weather service is not answering. Please try again in a few minutes.',
  'failed.timeout': 'Sorry, that took too long, so I stopped. Please try again.',
  'failed.busy': 'Sorry, I am busy with something else right now. Please try again in a moment.',
  'failed.service': 'Sorry, I cannot reach a service I need for that right now. Please try again later.',
  'failed.other': 'Sorry, something went wrong and I could not finish that. Please try again, or ask a member of staff.',
};

/** The sentence a traveller hears when their run ended without finishing. */
export function failureText(end: RunEnd): string {
  const key = failureKey(end);
  return ENGLISH[key] ?? ENGLISH[fallbackKey(end.error?.code ?? '')]!;
}
