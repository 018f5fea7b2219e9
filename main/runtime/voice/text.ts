/**
 * Validation of what is handed to a speech engine. Text always reaches the engine as data (stdin), but
 * control characters could still steer a terminal-minded program or a log, and a very long text would hold
 * the `tts` lock for minutes; voices and rates are checked against what the engine offers.
 */
import { TesseraError } from '../../common/errors.js';

/** The longest text one `say` may speak (about two minutes of speech). */
export const MAX_SPEECH_CHARS = 2000;

/** Speaking rates accepted, words per minute. */
export const MIN_RATE_WPM = 80;
export const MAX_RATE_WPM = 450;

/** C0 controls except tab, newline and carriage return; DEL; C1 controls; bidi overrides and isolates. */
function isForbidden(code: number): boolean {
  return (code <= 0x1f && code !== 0x09 && code !== 0x0a && code !== 0x0d) || (code >= 0x7f && code <= 0x9f) || (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069);
}

/**
 * The text to speak, with tabs and line breaks turned into spaces. Throws VALIDATION_FAILED when the text is
 * blank, longer than {@link MAX_SPEECH_CHARS}, or contains a control character (naming its position).
 */
export function validateSpeechText(text: unknown): string {
  if (typeof text !== 'string') throw new TesseraError('VALIDATION_FAILED', 'text to speak must be a string');
  if (text.length > MAX_SPEECH_CHARS) throw new TesseraError('VALIDATION_FAILED', `text to speak is ${text.length} characters; the limit is ${MAX_SPEECH_CHARS}: split it into sentences`);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (isForbidden(code)) throw new TesseraError('VALIDATION_FAILED', `text to speak contains the control character U+${code.toString(16).toUpperCase().padStart(4, '0')} at position ${i}; remove it`);
  }
  const clean = text.replace(/[\t\r\n]+/g, ' ').trim();
  if (clean === '') throw new TesseraError('VALIDATION_FAILED', 'text to speak is empty');
  return clean;
}

/** A voice name from `voices`; throws VALIDATION_FAILED listing a few that exist. */
export function validateVoice(voice: string, voices: readonly string[]): string {
  if (!voices.includes(voice)) {
    const some = voices.slice(0, 8).join(', ');
    throw new TesseraError('VALIDATION_FAILED', `unknown voice "${voice.slice(0, 60)}"; available: ${some}${voices.length > 8 ? ', …' : ''}`);
  }
  return voice;
}

/** A speaking rate in words per minute; throws VALIDATION_FAILED outside {@link MIN_RATE_WPM}–{@link MAX_RATE_WPM}. */
export function validateRate(rate: number): number {
  if (!Number.isInteger(rate) || rate < MIN_RATE_WPM || rate > MAX_RATE_WPM) {
    throw new TesseraError('VALIDATION_FAILED', `speaking rate must be an integer from ${MIN_RATE_WPM} to ${MAX_RATE_WPM} words per minute, got ${rate}`);
  }
  return rate;
}
