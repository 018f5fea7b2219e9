/**
 * Masking and ghosts (seed 004 §5 "Logs: estruturados, sem PII (ghost e mask lists)").
 *
 * - A **mask list** names fields whose values never reach a log line (`authorization`, `*_token`, `password`,
 *   `email`…), and value **patterns** that are redacted wherever they appear inside strings (bearer tokens,
 *   JWTs, e-mail addresses, phone numbers, `token=` query parameters, URL credentials, PEM private keys).
 *   The logger applies it to every structured line (log/index.ts); defaults are below, and configuration adds
 *   to them (`TESSERA_LOG_MASK_FIELDS`, logger option `mask`). A value wrapped as a secret (main/common/expr.ts:
 *   secrets, personal memory values) is written `***` wherever it sits in a line.
 * - A **ghost** is a record's public projection: PII fields replaced by the cid of their value, so cards,
 *   webhook payloads and logs can refer to "the same e-mail" without showing it. A cid of a low-entropy value
 *   (a phone number) can be confirmed by whoever guesses the value: a ghost hides, it does not encrypt.
 */
import { cidOf } from '../../common/cid.js';
import { isSecret } from '../../common/expr.js';

export const MASKED = '[masked]';

/**
 * Field names masked by default (compared lower-case without `_`, `-` and `.`): a key is masked when it equals
 * one of {@link DEFAULT_MASK_FIELDS} or ends with one of {@link DEFAULT_MASK_SUFFIXES}.
 */
export const DEFAULT_MASK_FIELDS: readonly string[] = [
  'authorization', 'proxyauthorization', 'cookie', 'setcookie', 'auth', 'bearer', 'token', 'apitoken', 'secret', 'password', 'passwd', 'pwd', 'passphrase',
  'apikey', 'xapikey', 'privatekey', 'clientsecret', 'sessionid', 'credentials', 'credential',
  'email', 'emailaddress', 'mail', 'phone', 'phonenumber', 'mobile', 'msisdn', 'ssn', 'cpf', 'cnpj', 'creditcard', 'cardnumber', 'pan', 'cvv', 'iban',
];
export const DEFAULT_MASK_SUFFIXES: readonly string[] = ['token', 'secret', 'password', 'passwd', 'apikey', 'privatekey', 'authorization', 'cookie', 'email', 'phone'];

/** PII field names a {@link ghost} replaces by default (same comparison as the mask list). */
export const DEFAULT_GHOST_FIELDS: readonly string[] = ['email', 'emailaddress', 'phone', 'phonenumber', 'mobile', 'msisdn', 'name', 'fullname', 'firstname', 'lastname', 'address', 'ssn', 'cpf', 'cnpj', 'birthdate', 'dob', 'ip', 'ipaddress'];

export interface MaskPattern {
  /** Global regular expression; every match is replaced. */
  pattern: RegExp;
  /** Replacement text (may use `$1`…). */
  replace: string;
}

/** Value patterns redacted inside every string of a log line. Order matters: specific before general. */
export const DEFAULT_MASK_PATTERNS: readonly MaskPattern[] = [
  { pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, replace: '[masked private key]' },
  { pattern: /\b([Bb]earer)\s+[A-Za-z0-9._~+/=-]{6,}/g, replace: '$1 [masked]' },
  { pattern: /\beyJ[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{4,65536}\.[A-Za-z0-9_-]{0,8192}/g, replace: '[masked jwt]' },
  { pattern: /([?&;\s]|^)((?:access_|refresh_|api_|id_)?token|api[_-]?key|apikey|secret|password|passwd|sig|signature)=[^&\s"']+/gi, replace: '$1$2=[masked]' },
  { pattern: /\/\/[^/\s:@]+:[^/\s@]+@/g, replace: '//[masked]@' },
  // Bounded repetitions (RFC 5321 lengths) keep this linear on long adversarial strings.
  { pattern: /[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b/g, replace: '[masked email]' },
  { pattern: /\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,5}){2,4}\b/g, replace: '[masked phone]' },
  { pattern: /\(\d{2,3}\)\s?\d{4,5}-?\d{4}\b/g, replace: '[masked phone]' },
];

export interface MaskConfig {
  /** Extra field names to mask (added to the defaults unless `replaceDefaults`). */
  fields?: readonly string[];
  /** Extra value patterns. */
  patterns?: readonly MaskPattern[];
  /** Use only the given fields and patterns, not the defaults. */
  replaceDefaults?: boolean;
}

export interface Masker {
  /** A deep copy of `value` with masked fields replaced by `[masked]` and patterns redacted in strings. */
  mask<T>(value: T): T;
  /** A string with the value patterns redacted. */
  maskText(text: string): string;
  /** Whether a field of this name is masked. */
  isMaskedField(name: string): boolean;
}

const MAX_DEPTH = 12;

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.\s]/g, '');
}

/** Field names from `TESSERA_LOG_MASK_FIELDS` (comma-separated), empty when unset. */
export function maskFieldsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['TESSERA_LOG_MASK_FIELDS'] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Builds a masker from the defaults plus `config`. */
export function createMasker(config: MaskConfig = {}): Masker {
  const base = config.replaceDefaults ? [] : DEFAULT_MASK_FIELDS;
  const exact = new Set([...base, ...(config.fields ?? [])].map(normalizeName));
  const suffixes = config.replaceDefaults ? [] : DEFAULT_MASK_SUFFIXES;
  const patterns = [...(config.replaceDefaults ? [] : DEFAULT_MASK_PATTERNS), ...(config.patterns ?? [])];
  const isMaskedField = (name: string) => {
    const n = normalizeName(name);
    return exact.has(n) || suffixes.some((s) => n.endsWith(s));
  };
  const maskText = (text: string) => {
    let out = text;
    for (const { pattern, replace } of patterns) {
      pattern.lastIndex = 0;
      out = out.replace(pattern, replace);
    }
    return out;
  };
  const walk = (value: unknown, depth: number, seen: WeakSet<object>): unknown => {
    if (typeof value === 'string') return maskText(value);
    if (typeof value !== 'object' || value === null) return value;
    // A secret or personal value (main/common/expr.ts `secret`) prints as it does everywhere: `***`.
    if (isSecret(value)) return String(value);
    if (seen.has(value)) return '[circular]';
    if (depth >= MAX_DEPTH) return '[too deep]';
    seen.add(value);
    try {
      if (value instanceof Error) {
        const cause: unknown = (value as { cause?: unknown }).cause;
        return { name: value.name, message: maskText(value.message), ...('code' in value ? { code: (value as { code: unknown }).code } : {}), ...(cause === undefined ? {} : { cause: walk(cause, depth + 1, seen) }) };
      }
      if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1, seen));
      if (value instanceof Uint8Array) return `[${value.length} bytes]`;
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Map) return walk(Object.fromEntries(value), depth, seen);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = isMaskedField(k) && v !== null && v !== undefined && v !== '' ? MASKED : walk(v, depth + 1, seen);
      return out;
    } finally {
      seen.delete(value);
    }
  };
  return {
    mask: <T>(value: T) => walk(value, 0, new WeakSet()) as T,
    maskText,
    isMaskedField,
  };
}

export interface GhostOptions {
  /**
   * PII fields to replace: a plain name matches that key at any depth (compared like mask fields); a dotted
   * path (`user.email`, `contacts.*.phone`) matches from the root, `*` being any key or array index.
   * Default {@link DEFAULT_GHOST_FIELDS}.
   */
  fields?: readonly string[];
}

/**
 * The public projection of `record`: every PII field's value replaced by its cid (`b3:…` of the value's
 * canonical JSON), everything else copied. Null and absent values stay as they are. Pure and deterministic:
 * the same record gives the same ghost on every machine.
 */
export function ghost<T>(record: T, options: GhostOptions = {}): T {
  const fields = options.fields ?? DEFAULT_GHOST_FIELDS;
  const names = new Set(fields.filter((f) => !f.includes('.')).map(normalizeName));
  const paths = fields.filter((f) => f.includes('.')).map((f) => f.split('.'));
  const pathMatches = (path: readonly string[]) => paths.some((p) => p.length === path.length && p.every((seg, i) => seg === '*' || seg === path[i]));
  const walk = (value: unknown, path: string[]): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, String(i)]));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const here = [...path, k];
      out[k] = v !== null && v !== undefined && (names.has(normalizeName(k)) || pathMatches(here)) ? cidOf(v) : walk(v, here);
    }
    return out;
  };
  return walk(record, []) as T;
}
