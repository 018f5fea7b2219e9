/**
 * A small structured logger. JSON lines on stderr when it is not a terminal (services, CI), readable lines
 * when it is. Fields are data, never interpolated into the message.
 *
 * Every line is masked (mask.ts, seed 004 §5): fields on the mask list become `[masked]` and secret-looking
 * values (bearer tokens, JWTs, e-mails, phone numbers…) are redacted inside strings, in the message too. The
 * defaults cannot be turned off by a caller by accident; `mask` and `TESSERA_LOG_MASK_FIELDS` add to them.
 */
import { createMasker, maskFieldsFromEnv } from './mask.js';
import type { MaskConfig, Masker } from './mask.js';

export { createMasker, ghost, DEFAULT_MASK_FIELDS, DEFAULT_MASK_PATTERNS, DEFAULT_GHOST_FIELDS, MASKED } from './mask.js';
export type { MaskConfig, MaskPattern, Masker, GhostOptions } from './mask.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to process.stderr. */
  write?: (line: string) => void;
  pretty?: boolean;
  base?: Record<string, unknown>;
  /** Fields and patterns to mask in addition to the defaults (plus `TESSERA_LOG_MASK_FIELDS`, comma-separated). */
  mask?: MaskConfig;
  /** A ready masker (children share their parent's); overrides `mask`. */
  masker?: Masker;
}

export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  return value === 'debug' || value === 'info' || value === 'warn' || value === 'error' ? value : undefined;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? parseLogLevel(process.env['TESSERA_LOG_LEVEL']) ?? 'info';
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const pretty = options.pretty ?? Boolean(process.stderr.isTTY);
  const base = options.base ?? {};
  const masker = options.masker ?? createMasker({ ...options.mask, fields: [...(options.mask?.fields ?? []), ...maskFieldsFromEnv()] });

  const emit = (lvl: LogLevel, rawMsg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const all = masker.mask({ ...base, ...fields });
    const msg = masker.maskText(rawMsg);
    if (pretty) {
      const extra = Object.keys(all).length > 0 ? ' ' + safeJson(all) : '';
      write(`${new Date().toISOString().slice(11, 23)} ${lvl.toUpperCase().padEnd(5)} ${msg}${extra}`);
    } else {
      write(safeJson({ time: new Date().toISOString(), level: lvl, msg, ...all }));
    }
  };

  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ level, write, pretty, masker, base: { ...base, ...fields } }),
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (v instanceof Error ? { name: v.name, message: v.message } : v));
  } catch {
    return '"<unserializable>"';
  }
}

/** A logger that records lines in memory; for tests that assert what was logged. */
export function createMemoryLogger(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', pretty: false, write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  return Object.assign(logger, { lines });
}
