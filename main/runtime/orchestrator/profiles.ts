/**
 * Tessera's agent profiles (seed 003 FR3, seed 000 §5; issue 17 point 3): YAML files `<type>.yaml` read from the
 * built-in `resources/agents/` then `<data>/agents/profiles/` (a later folder's file replaces an earlier one's of the
 * same type), validated against resources/schema/agent-profile.schema.json.
 *
 * Contract:
 * - Files are read on every `load` and `list` (never cached): a changed profile applies to the next session, never
 *   to a running one (seed 003 Q4).
 * - Errors are AgentError AGENT_PROFILE_INVALID whose message names the file and the field
 *   (`journey-guide.yaml: budgets.session.tokens: must be >= 1`).
 * - Template variables `{{NAME}}` in `system_prompt` are filled from the runtime's `SESSION_ID` and `AGENT_TYPE`,
 *   the session's custom variables, then the profile's own `variables` defaults. Every other string of the profile
 *   (MCP servers' commands, arguments, environment and folders, the model, `meta`) is filled from the runtime's two
 *   and the profile's defaults only: a session's variables come from whoever opened it (a traveller) and never
 *   reach what runs or where it connects. A placeholder with no value is an error naming it and the field it is in;
 *   nothing is sent to a model half-filled.
 * - `model: default` is the device's model: `TESSERA_AGENT_MODEL_URL` (base_url) and `TESSERA_AGENT_MODEL` (name),
 *   API key from the secret {@link DEVICE_MODEL_SECRET}. No URL → no model: the agent is rule-based (degraded).
 * - `meta.roles` (who may open the agent) and `meta.proposes` (the actions it may propose) are required: the
 *   orchestrator routes by the first, the proposal policy reads the second.
 */
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { Role } from '../../common/roles.js';
import { AgentError } from '../agents/types.js';
import type { AgentProfile, AgentProfileLoader, Budgets, DegradedMode, McpServerConfig, ModelConfig, ProfileVariables } from '../agents/types.js';
import profileSchema from '../../../resources/schema/agent-profile.schema.json' with { type: 'json' };
import { describeSchemaError as describe } from '../schema-errors.js';

/** The secret holding the device model's API key (`tessera secret set agents.model.api_key`). */
export const DEVICE_MODEL_SECRET = 'agents.model.api_key';
/** The in-process MCP server every Tessera agent gets unless its profile lists its own servers (./tools.ts). */
export const TESSERA_SERVER = 'tessera';

/** Limits when a profile names none (per session; per agent type and UTC day). */
export const DEFAULT_BUDGETS: { session: Required<Budgets>; day: Required<Budgets> } = {
  session: { tokens: 60_000, tool_calls: 60, wall_ms: 10 * 60_000, model_calls: 40 },
  day: { tokens: 2_000_000, tool_calls: 3_000, wall_ms: 6 * 3_600_000, model_calls: 2_000 },
};

/** The device's model endpoint, when one is configured. */
export interface DeviceModel {
  base_url: string;
  model: string;
}

/** `TESSERA_AGENT_MODEL_URL` and `TESSERA_AGENT_MODEL` (default name `default`); null when no URL is set. */
export function deviceModelFromEnv(env: NodeJS.ProcessEnv = process.env): DeviceModel | null {
  const url = env['TESSERA_AGENT_MODEL_URL']?.trim();
  if (!url) return null;
  return { base_url: url.replace(/\/+$/, ''), model: env['TESSERA_AGENT_MODEL']?.trim() || 'default' };
}

/** What listings and routing need of a profile, without filling its variables. */
export interface ProfileInfo {
  type: string;
  title: string;
  description?: string;
  roles: Role[];
  proposes: string[];
  /** Whether the profile has a model now (`model: default` with the device's model configured, or its own). */
  model: boolean;
  degraded: DegradedMode;
  file: string;
}

export interface TesseraProfileLoader extends AgentProfileLoader {
  /** @throws AgentError AGENT_PROFILE_INVALID (no such type, or its file is invalid). */
  info(type: string): ProfileInfo;
  /** Every valid profile, by type. */
  infos(): ProfileInfo[];
  /** Files that did not validate, with why (listed by Ops; `list` leaves them out). */
  problems(): Array<{ file: string; message: string }>;
}

export interface ProfileLoaderOptions {
  /** Folders of `<type>.yaml` files, in order: a later folder's profile replaces an earlier one's. */
  dirs: readonly string[];
  /** The device's model now (read at each load). */
  deviceModel: () => DeviceModel | null;
  /** Names of the rule-based responders the runtime has: a profile's `fallback` must be one. */
  responders?: readonly string[];
}

/** `resources/agents` of the app, found from this file (source or build alike). */
export function builtinAgentsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'resources', 'agents');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return join(process.cwd(), 'resources', 'agents');
    dir = parent;
  }
}

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
const validate: ValidateFunction = ajv.compile(profileSchema);

/** A profile as written (after schema validation). */
interface ProfileFile {
  type: string;
  title: string;
  description?: string;
  system_prompt: string;
  variables?: Record<string, string>;
  model?: 'default' | 'none' | ModelConfig;
  model_options?: Pick<ModelConfig, 'temperature' | 'max_tokens' | 'first_byte_timeout_ms' | 'timeout_ms'>;
  mcp_servers?: McpServerConfig[];
  tools?: string[];
  budgets?: { session?: Budgets; day?: Budgets };
  degraded: DegradedMode;
  fallback?: string;
  max_tool_rounds?: number;
  meta: { roles: Role[]; proposes: string[] } & Record<string, unknown>;
}

const invalid = (message: string, details: Record<string, unknown> = {}) => new AgentError('AGENT_PROFILE_INVALID', message, { details });

/** Reads and validates one profile file. @throws AGENT_PROFILE_INVALID naming the file and the fields. */
export function readProfileFile(file: string, responders?: readonly string[]): ProfileFile {
  const name = basename(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw invalid(`${name}: cannot be read (${(err as Error).message})`, { file });
  }
  let value: unknown;
  try {
    value = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw invalid(`${name}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { file });
  }
  if (!validate(value)) {
    // A oneOf failure is explained by its branches' errors; the branch errors of a `model` that is neither a word nor an object say it twice.
    const problems = [...new Set((validate.errors ?? []).filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'if').map(describe))];
    throw invalid(`${name}: ${problems.slice(0, 8).join('; ')}`, { file, problems });
  }
  const profile = value as ProfileFile;
  const problems: string[] = [];
  const expected = name.replace(/\.ya?ml$/, '');
  if (profile.type !== expected) problems.push(`type: "${profile.type}" does not match the file name (${expected}.yaml)`);
  if (profile.degraded === 'fallback') {
    if (profile.fallback === undefined) problems.push('fallback: is required when degraded is "fallback" (the rule-based responder to answer with)');
    else if (responders && !responders.includes(profile.fallback)) problems.push(`fallback: "${profile.fallback}" is not a responder of this runtime (known: ${responders.join(', ') || 'none'})`);
  }
  const servers = profile.mcp_servers ?? [];
  const seen = new Set<string>();
  servers.forEach((s, i) => {
    if (seen.has(s.name)) problems.push(`mcp_servers[${i}].name: "${s.name}" is used twice`);
    seen.add(s.name);
  });
  if (problems.length > 0) throw invalid(`${name}: ${problems.join('; ')}`, { file, problems });
  return profile;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

/** Fills `{{NAME}}` in every string of `value` (deep); `path` names the field for errors. */
function fill(value: unknown, vars: Record<string, string>, path: string, file: string): unknown {
  if (typeof value === 'string') {
    return value.replace(PLACEHOLDER, (_m, key: string) => {
      const v = vars[key];
      if (v === undefined) throw invalid(`${file}: ${path}: unknown template variable {{${key}}} (known: ${Object.keys(vars).sort().join(', ')})`, { file, field: path, variable: key });
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => fill(v, vars, `${path}[${i}]`, file));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, vars, path === '' ? k : `${path}.${k}`, file)]));
  }
  return value;
}

function resolveModel(profile: Pick<ProfileFile, 'model' | 'model_options'>, device: DeviceModel | null): ModelConfig | undefined {
  const m = profile.model ?? 'none';
  if (m === 'none') return undefined;
  const options = profile.model_options ?? {};
  if (m === 'default') return device ? { base_url: device.base_url, model: device.model, api_key_secret: DEVICE_MODEL_SECRET, ...options } : undefined;
  return { ...m, ...options };
}

function files(dirs: readonly string[]): Map<string, string> {
  const byType = new Map<string, string>();
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const m = /^(.+)\.ya?ml$/.exec(name);
      if (m) byType.set(m[1]!, join(dir, name));
    }
  }
  return byType;
}

export function createProfileLoader(options: ProfileLoaderOptions): TesseraProfileLoader {
  const find = (type: string): string => {
    const file = typeof type === 'string' ? files(options.dirs).get(type) : undefined;
    if (!file) throw invalid(`No agent profile "${String(type)}" (known: ${[...files(options.dirs).keys()].join(', ') || 'none'})`, { type });
    return file;
  };
  const infoOf = (file: string, p: ProfileFile): ProfileInfo => ({
    type: p.type,
    title: p.title,
    ...(p.description !== undefined ? { description: p.description } : {}),
    roles: [...p.meta.roles],
    proposes: [...p.meta.proposes],
    model: resolveModel(p, options.deviceModel()) !== undefined,
    degraded: p.degraded,
    file,
  });
  const scan = () => {
    const ok: ProfileInfo[] = [];
    const bad: Array<{ file: string; message: string }> = [];
    for (const file of files(options.dirs).values()) {
      try {
        ok.push(infoOf(file, readProfileFile(file, options.responders)));
      } catch (err) {
        bad.push({ file, message: (err as Error).message });
      }
    }
    return { ok, bad };
  };

  return {
    async list() {
      return scan().ok.map((i) => ({ type: i.type, title: i.title, ...(i.description !== undefined ? { description: i.description } : {}) }));
    },
    infos: () => scan().ok,
    problems: () => scan().bad,
    info(type) {
      const file = find(type);
      return infoOf(file, readProfileFile(file, options.responders));
    },
    async load(type: string, variables: ProfileVariables): Promise<AgentProfile> {
      const file = find(type);
      const name = basename(file);
      const raw = readProfileFile(file, options.responders);
      for (const [k, v] of Object.entries(variables ?? {})) {
        if (typeof v !== 'string') throw invalid(`${name}: variable ${k}: must be a string`, { file, variable: k });
      }
      const runtimeVars = { SESSION_ID: variables.SESSION_ID, AGENT_TYPE: variables.AGENT_TYPE ?? type };
      // The operator's file and the runtime's ids fill every field; what the session's opener gave (traveller input:
      // metadata, `variables`) fills the system prompt only, so it never reaches a command, its arguments or
      // environment, a model URL or a secret's name (review 17 finding 3).
      const trusted: Record<string, string> = { ...(raw.variables ?? {}), ...runtimeVars };
      const vars: Record<string, string> = { ...(raw.variables ?? {}), ...variables, ...runtimeVars };
      // `variables` holds the defaults themselves: not filled (a default naming another variable is taken literally).
      const { variables: _defaults, system_prompt: prompt, ...rest } = raw;
      const p = { ...(fill(rest, trusted, '', name) as Omit<ProfileFile, 'variables' | 'system_prompt'>), system_prompt: fill(prompt, vars, 'system_prompt', name) as string };
      const base = { ...DEFAULT_BUDGETS.session };
      const model = resolveModel(p, options.deviceModel());
      const servers: McpServerConfig[] = p.mcp_servers ?? [{ name: TESSERA_SERVER, transport: 'in-process', factory: TESSERA_SERVER }];
      return {
        type: p.type,
        title: p.title,
        ...(p.description !== undefined ? { description: p.description } : {}),
        system_prompt: p.system_prompt,
        ...(model ? { model } : {}),
        // The tessera server learns which actions its `propose` tool may mention (the policy decides, not the tool).
        mcp_servers: servers.map((s) => (s.transport === 'in-process' && s.factory === TESSERA_SERVER ? { ...s, options: { ...(s.options ?? {}), proposes: p.meta.proposes } } : s)),
        ...(p.tools ? { tools: p.tools } : {}),
        budgets: { session: { ...base, ...(p.budgets?.session ?? {}) }, day: { ...DEFAULT_BUDGETS.day, ...(p.budgets?.day ?? {}) } },
        degraded: p.degraded,
        ...(p.fallback !== undefined ? { fallback: p.fallback } : {}),
        ...(p.max_tool_rounds !== undefined ? { max_tool_rounds: p.max_tool_rounds } : {}),
        meta: { ...p.meta, file },
      };
    },
  };
}
