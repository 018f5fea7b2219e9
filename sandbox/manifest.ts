/**
 * plugin.json: what a plugin is, what it needs and how much it may use (DESIGN.md "Formats → Plugin").
 * Validated strictly at every boundary: on disk, when signing, when loading, and when uploaded over HTTP.
 */
import Ajv from 'ajv';
import semver from 'semver';
import { TesseraError } from '../main/common/errors.js';
import type { IsolateLimits, PluginKind } from './protocol.js';

export const KNOWN_CAPABILITIES = ['kv', 'http.fetch', 'events.emit', 'io.say'] as const;
export type CapabilityName = (typeof KNOWN_CAPABILITIES)[number];

/** Capabilities that change the world: calls to them need a valid permit (seed 004 §4). */
export const EFFECT_CAPABILITIES: ReadonlySet<string> = new Set(['http.fetch', 'io.say']);

export interface CapabilityRequest {
  name: string;
  /** http.fetch only: the origins (scheme://host[:port]) the plugin may fetch from. */
  origins?: string[];
}

export interface PluginManifest {
  name: string;
  version: string;
  kind: PluginKind;
  description?: string;
  /** The bundled ES module, relative to the plugin folder. */
  entry: string;
  /** cid of the entry file's bytes; set by `tessera plugin build`/`sign`. */
  entry_cid: string;
  capabilities: CapabilityRequest[];
  limits?: { memory_mb?: number; timeout_ms?: number; deadline_ms?: number };
  /** Optional JSON schema of the input, shown and used for validation by Plugin Studio. */
  input_schema?: Record<string, unknown>;
  /** Optional example input for `plugin test` and Plugin Studio. */
  example_input?: unknown;
}

export const MANIFEST_FILE = 'plugin.json';
export const SIGNATURE_FILE = 'plugin.sig';
export const PLUGIN_PAYLOAD_TYPE = 'application/vnd.tessera.plugin+json';

export const manifestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'version', 'kind', 'entry', 'entry_cid', 'capabilities'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]{1,63}$' },
    version: { type: 'string', minLength: 5, maxLength: 64 },
    kind: { enum: ['policy', 'tool', 'intake', 'enrich'] },
    description: { type: 'string', maxLength: 1000 },
    entry: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\\.m?js$' },
    entry_cid: { type: 'string', pattern: '^b3:[0-9a-f]{64}$' },
    capabilities: {
      type: 'array',
      maxItems: 16,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 64 },
          origins: { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 200 } },
        },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        memory_mb: { type: 'integer', minimum: 8 },
        timeout_ms: { type: 'integer', minimum: 1 },
        deadline_ms: { type: 'integer', minimum: 10 },
      },
    },
    input_schema: { type: 'object' },
    example_input: {},
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: false });
const validateManifest = ajv.compile(manifestSchema);

/** The runtime's ceilings; a manifest may ask for less, never more. */
export interface RuntimeLimits {
  maxMemoryMb: number;
  maxTimeoutMs: number;
  maxDeadlineMs: number;
  maxOutputChars: number;
}

export const DEFAULT_RUNTIME_LIMITS: RuntimeLimits = { maxMemoryMb: 128, maxTimeoutMs: 1000, maxDeadlineMs: 30_000, maxOutputChars: 1024 * 1024 };
const DEFAULTS = { memory_mb: 32, timeout_ms: 50, deadline_ms: 5000 };

/** The rule of `manifestSchema.properties.name.pattern`, in words. */
export const PLUGIN_NAME_RULE = 'a plugin name is 2–64 characters: a lowercase letter first, then lowercase letters, digits or "-"';

/** Why `name` cannot be a plugin's name, or undefined when it can. */
export function pluginNameProblem(name: string): string | undefined {
  return new RegExp(manifestSchema.properties.name.pattern).test(name) ? undefined : `"${name}" cannot be a plugin name: ${PLUGIN_NAME_RULE}`;
}

/** What a `pattern` failure at a manifest path means, in words (Ajv would print the regular expression). */
const PATTERN_RULES: Record<string, string> = {
  '/name': PLUGIN_NAME_RULE,
  '/entry': 'the entry is a file name in the plugin folder (letters, digits, "_", "." or "-") ending in .js or .mjs',
  '/entry_cid': 'entry_cid is "b3:" and 64 lowercase hex digits (tessera plugin build and sign record it)',
};

/** One Ajv error as a sentence an author can act on. */
function describeProblem(e: NonNullable<typeof validateManifest.errors>[number], value: unknown): string {
  const path = e.instancePath || '/';
  if (e.keyword === 'pattern') {
    const given = path.split('/').slice(1).reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value);
    return `${path} ${JSON.stringify(given)} is not valid: ${PATTERN_RULES[path] ?? 'it does not have the expected form'}`;
  }
  return `${path} ${e.message ?? 'is invalid'}${e.params && 'allowedValues' in e.params ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : ''}`;
}

/** Parse and validate a manifest; the error names every problem found. */
export function parseManifest(value: unknown, source = MANIFEST_FILE): PluginManifest {
  if (!validateManifest(value)) {
    const problems = (validateManifest.errors ?? []).map((e) => describeProblem(e, value));
    throw new TesseraError('PLUGIN_MANIFEST_INVALID', `${source} is invalid: ${problems.join('; ')}`);
  }
  const m = value as unknown as PluginManifest;
  if (!semver.valid(m.version)) throw new TesseraError('PLUGIN_MANIFEST_INVALID', `${source} is invalid: /version "${m.version}" is not a semantic version (like 1.2.3)`);
  const seen = new Set<string>();
  for (const c of m.capabilities) {
    if (seen.has(c.name)) throw new TesseraError('PLUGIN_MANIFEST_INVALID', `${source} is invalid: capability "${c.name}" is listed twice`);
    seen.add(c.name);
    if (c.origins && c.name !== 'http.fetch') throw new TesseraError('PLUGIN_MANIFEST_INVALID', `${source} is invalid: only http.fetch takes "origins"`);
    for (const o of c.origins ?? []) {
      if (normalizeOrigin(o) !== o) throw new TesseraError('PLUGIN_MANIFEST_INVALID', `${source} is invalid: "${o}" is not an origin like https://api.example.com or http://127.0.0.1:8080`);
    }
  }
  return m;
}

/** `scheme://host[:port]` as URL.origin spells it, or undefined when `value` is not an http(s) origin. */
export function normalizeOrigin(value: string): string | undefined {
  try {
    const u = new URL(value);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

/** The limits a plugin actually runs with: its manifest's, capped by the runtime's. */
export function effectiveLimits(manifest: PluginManifest, runtime: RuntimeLimits = DEFAULT_RUNTIME_LIMITS): IsolateLimits {
  const l = { ...DEFAULTS, ...manifest.limits };
  return {
    memoryMb: Math.min(l.memory_mb, runtime.maxMemoryMb),
    timeoutMs: Math.min(l.timeout_ms, runtime.maxTimeoutMs),
    deadlineMs: Math.min(Math.max(l.deadline_ms, l.timeout_ms), runtime.maxDeadlineMs),
    maxOutputChars: runtime.maxOutputChars,
  };
}
