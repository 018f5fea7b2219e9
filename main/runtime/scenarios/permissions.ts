/**
 * Scenario permissions (seed 001 §17, issue 18 point 3): what a scenario's steps may use, what its publisher may
 * let it use, and the run-time check the engine makes before a step's target acts.
 *
 * A permission is one of `tts`, `stt`, `secrets:<name>`, `tool:<plugin>`, `bus.publish:<topic pattern>`
 * (main/common/topics.ts patterns: `*` one segment, `**` any number), `scenario:<id>`. A scenario declares them in
 * `permissions:`; a step needs:
 * - io.say → `tts`; io.ask → `tts` and `stt`;
 * - a tool step → `tool:<plugin>`;
 * - bus.publish of topic T → a declared `bus.publish:<pattern>` matching T (the topic as published: a topic built
 *   from a secret or personal value is matched revealed, and never printed);
 * - a `scenario: X` step or the `scenario.run` action of X → `scenario:X`;
 * - a read of `secrets["name"]` in its expressions (its `when` included) → `secrets:name` (the run's scope holds
 *   only the declared secrets; a read of any other name is recorded and refuses the step).
 * A scenario with no `permissions` list (only loadable unsigned, in developer mode) may use anything; a signed
 * one is always held to its list (the loader sets an absent list to `[]`, see ./signing.ts).
 *
 * A sub-scenario never does more than the runs that started it (no confused deputy, review 18 item 9): a run
 * started by another run (`parent_run_id`) may use only what its own scenario **and** every ancestor's scenario
 * declare — the intersection, checked level by level (`ancestors`).
 *
 * Grants (what a publisher may declare) live in a trust folder's `grants.json`:
 * `{"<key name or keyid>": ["tts", "tool:*", "secrets:weather.*", "bus.publish:app.**", …]}` — patterns are a
 * permission, `*` (everything), `secrets:`/`tool:`/`scenario:` with a trailing `*` (a prefix), or `bus.publish:<pattern>`
 * (covers every topic the declared pattern could match). Grants of several folders add up.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { isSecret, reveal } from '../../common/expr.js';
import { compilePattern, patternProblem } from '../../common/topics.js';
import type { Scenario, StepTarget } from './model.js';

export const GRANTS_FILE = 'grants.json';
const MAX_GRANTS_FILE_BYTES = 1024 * 1024;

const NAME = /^[A-Za-z0-9_.-]+$/;
const PLUGIN = /^[a-z0-9][a-z0-9._-]*$/;
/** A scenario id (resources/schema/scenario.schema.json `id`). */
const SCENARIO_ID = /^[a-z][a-z0-9_]{1,63}$/;
/** The permission kinds whose grants may end in `*` (a prefix). */
const PREFIX_KINDS = ['secrets:', 'tool:', 'scenario:'] as const;

/** Null when `p` is a permission a scenario may declare, else why not. */
export function permissionProblem(p: string): string | null {
  if (p === 'tts' || p === 'stt') return null;
  if (p.startsWith('secrets:')) return NAME.test(p.slice(8)) ? null : `"${p}": a secret name is letters, digits, "_", "." or "-"`;
  if (p.startsWith('tool:')) return PLUGIN.test(p.slice(5)) ? null : `"${p}": a plugin name is lowercase letters, digits, ".", "_" or "-"`;
  if (p.startsWith('scenario:')) return SCENARIO_ID.test(p.slice(9)) ? null : `"${p}": a scenario id is 2-64 lowercase letters, digits or "_", starting with a letter`;
  if (p.startsWith('bus.publish:')) {
    const problem = patternProblem(p.slice(12));
    return problem === null ? null : `"${p}": ${problem}`;
  }
  return `"${p}" is not a permission (tts, stt, secrets:<name>, tool:<plugin>, bus.publish:<topic pattern>, scenario:<id>)`;
}

/** Null when `g` is a grant pattern, else why not. */
export function grantProblem(g: string): string | null {
  if (g === '*') return null;
  if (PREFIX_KINDS.some((kind) => g.startsWith(kind)) && g.endsWith('*')) {
    const rest = g.slice(g.indexOf(':') + 1, -1);
    return rest === '' || NAME.test(rest) ? null : `"${g}": a prefix is letters, digits, "_", "." or "-" before the final "*"`;
  }
  return permissionProblem(g);
}

/**
 * Whether topic pattern `outer` matches every topic `inner` matches (both valid topics.ts patterns): `**` takes any
 * run of segments, `*` takes one segment that is a name or `*`, a name takes only the same name.
 */
function patternCovers(outer: string[], oi: number, inner: string[], ii: number): boolean {
  if (oi === outer.length) return ii === inner.length;
  const o = outer[oi]!;
  if (o === '**') {
    for (let k = ii; k <= inner.length; k++) if (patternCovers(outer, oi + 1, inner, k)) return true;
    return false;
  }
  if (ii === inner.length) return false;
  const i = inner[ii]!;
  if (i === '**') return false;
  if (o === '*' || o === i) return patternCovers(outer, oi + 1, inner, ii + 1);
  return false;
}

/** Whether grant pattern `grant` allows declaring permission `wanted`. */
export function grantCovers(grant: string, wanted: string): boolean {
  if (grant === '*' || grant === wanted) return true;
  for (const kind of PREFIX_KINDS) {
    if (grant.startsWith(kind) && grant.endsWith('*') && wanted.startsWith(kind)) return wanted.slice(kind.length).startsWith(grant.slice(kind.length, -1));
  }
  if (grant.startsWith('bus.publish:') && wanted.startsWith('bus.publish:')) return patternCovers(grant.slice(12).split('.'), 0, wanted.slice(12).split('.'), 0);
  return false;
}

/** The declared permissions no grant covers (empty: the scenario is not over-permissioned). */
export function ungranted(declared: readonly string[], grants: readonly string[]): string[] {
  return declared.filter((p) => !grants.some((g) => grantCovers(g, p)));
}

/**
 * Reads `grants.json` of each folder that has one; the grants of a key are the union over folders of the entries
 * named by its keyid or its trusted name.
 * @throws TesseraError GRANTS_INVALID naming the file and the entry.
 */
export function readGrants(dirs: readonly string[]): (publisher: { keyid: string; name: string }) => string[] {
  const tables: Array<Record<string, string[]>> = [];
  for (const dir of dirs) {
    const file = join(dir, GRANTS_FILE);
    let text: string;
    try {
      if (statSync(file).size > MAX_GRANTS_FILE_BYTES) throw invalidGrants(file, `it is larger than ${MAX_GRANTS_FILE_BYTES} bytes`);
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (err instanceof TesseraError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw invalidGrants(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw invalidGrants(file, `it is not JSON (${(err as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidGrants(file, 'expected {"<key name or keyid>": ["tts", "tool:*", …], …}');
    const table: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
    for (const [who, list] of Object.entries(parsed as Record<string, unknown>)) {
      if (!Array.isArray(list) || !list.every((g) => typeof g === 'string')) throw invalidGrants(file, `"${who}" must be a list of permission patterns`);
      for (const g of list as string[]) {
        const problem = grantProblem(g);
        if (problem !== null) throw invalidGrants(file, `"${who}": ${problem}`);
      }
      table[who] = list as string[];
    }
    tables.push(table);
  }
  return ({ keyid, name }) => tables.flatMap((t) => [...(t[keyid] ?? []), ...(t[name] ?? [])]);
}

function invalidGrants(file: string, problem: string): TesseraError {
  return new TesseraError('GRANTS_INVALID', `Grants file ${file}: ${problem}.`, { details: { file } });
}

// ---------------------------------------------------------------------------------------------------------------
// Run time

/** A need of a step: the permission, and for a topic the one to match (`shown`: how messages may print it). */
interface Need {
  permission: string;
  topic?: string;
  shown: string;
}

/**
 * What a step's target needs, given its interpolated input (sealed or clear: a topic or scenario id that holds a
 * secret or personal value is matched on its revealed value and shown as `***`).
 */
export function targetNeeds(target: StepTarget, input: Record<string, unknown>): Need[] {
  if (target.kind === 'tool') return [{ permission: `tool:${target.tool}`, shown: `calls tool ${target.tool}` }];
  if (target.kind === 'scenario') return [{ permission: `scenario:${target.scenario}`, shown: `runs scenario ${target.scenario}` }];
  if (target.action === 'io.say') return [{ permission: 'tts', shown: 'uses tts' }];
  if (target.action === 'io.ask') return [{ permission: 'tts', shown: 'uses tts' }, { permission: 'stt', shown: 'uses stt' }];
  if (target.action === 'bus.publish') {
    const topic = String(reveal(input['topic']) ?? '');
    const sensitive = isSecret(input['topic']);
    return [{ permission: `bus.publish:${sensitive ? '***' : topic}`, topic, shown: sensitive ? 'publishes on a topic built from a secret or personal value' : `publishes "${topic}"` }];
  }
  if (target.action === 'scenario.run') {
    const id = String(reveal(input['id']) ?? '');
    const sensitive = isSecret(input['id']);
    return [{ permission: `scenario:${id}`, shown: sensitive ? 'runs a scenario named by a secret or personal value' : `runs scenario ${id}` }];
  }
  return [];
}

/** Records the secret names a run read that its scenario did not declare, per secrets box given to a run. */
const deniedReads = new WeakMap<object, Set<string>>();

/**
 * The `secrets` a run of `scenario` sees in its expressions: all of them when it (and each of its `ancestors`)
 * declares no permissions, else only the names declared by it and by every ancestor that has a list, in an object
 * that records every read of another name (taken by {@link stepRefusal} / {@link deniedRead}).
 */
export function scopeSecrets(scenario: Scenario, all: Record<string, unknown>, ancestors: readonly Scenario[] = []): Record<string, unknown> {
  const lists = [scenario, ...ancestors].map((s) => s.permissions).filter((l): l is string[] => l !== undefined);
  if (lists.length === 0) return all;
  const declaredBy = (list: string[]) => new Set(list.filter((p) => p.startsWith('secrets:')).map((p) => p.slice(8)));
  const sets = lists.map(declaredBy);
  const allowed = new Set([...sets[0]!].filter((name) => sets.every((set) => set.has(name))));
  const visible: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(all)) if (allowed.has(name)) visible[name] = value;
  const denied = new Set<string>();
  // The expression engine reads a member through its own property descriptor (main/common/expr.ts `lookup`).
  const box = new Proxy(visible, {
    getOwnPropertyDescriptor(target, name) {
      if (typeof name === 'string' && !allowed.has(name)) denied.add(name);
      return Reflect.getOwnPropertyDescriptor(target, name);
    },
  });
  deniedReads.set(box, denied);
  return box;
}

export interface StepRefusal {
  permission: string;
  message: string;
}

/**
 * The refusal for the first undeclared secret the run's expressions read since the last call for `secretsBox`, or
 * null (taking it: the next step is judged on its own reads). Call after a step's `when` and before its target.
 */
export function deniedRead(scenario: Scenario, stepName: string, secretsBox: unknown, ancestors: readonly Scenario[] = []): StepRefusal | null {
  const reads = typeof secretsBox === 'object' && secretsBox !== null ? deniedReads.get(secretsBox) : undefined;
  if (reads === undefined || reads.size === 0) return null;
  const name = [...reads][0]!;
  reads.clear();
  const permission = `secrets:${name}`;
  const by = [scenario, ...ancestors].find((s) => s.permissions !== undefined && !s.permissions.includes(permission)) ?? scenario;
  return refusal(scenario, by, stepName, permission, `reads secret "${name}"`);
}

/** Whether `declared` (a scenario's list; undefined: anything) allows `need`. */
function allows(declared: readonly string[] | undefined, need: Need): boolean {
  if (declared === undefined) return true;
  if (need.topic !== undefined) return declared.some((p) => p.startsWith('bus.publish:') && patternProblem(p.slice(12)) === null && compilePattern(p.slice(12))(need.topic!));
  return declared.includes(need.permission);
}

/**
 * Why step `stepName` of `scenario` may not act with `input` (its target's needs, and the undeclared secrets its
 * expressions read since the last call for this run's `secretsBox`), or null. Call right before the target acts.
 * `ancestors`: the scenarios of the runs that started this one, parent first — each must allow the need too.
 */
export function stepRefusal(scenario: Scenario, stepName: string, target: StepTarget, input: Record<string, unknown>, secretsBox: unknown, ancestors: readonly Scenario[] = []): StepRefusal | null {
  const chain = [scenario, ...ancestors];
  if (chain.every((s) => s.permissions === undefined)) return null;
  const read = deniedRead(scenario, stepName, secretsBox, ancestors);
  if (read) return read;
  for (const need of targetNeeds(target, input)) {
    const by = chain.find((s) => !allows(s.permissions, need));
    if (by) return refusal(scenario, by, stepName, need.permission, need.shown);
  }
  return null;
}

/** `by`: the scenario whose list lacks the permission (the run's own, or an ancestor that started it). */
function refusal(scenario: Scenario, by: Scenario, stepName: string, permission: string, what: string): StepRefusal {
  const declared = by.permissions ?? [];
  const whose = by === scenario ? 'the scenario declares' : `it was started (directly or not) by scenario ${by.id}, which declares`;
  return { permission, message: `Step ${stepName} of scenario ${scenario.id} ${what}, which needs permission ${permission}; ${whose} ${declared.length === 0 ? 'none' : declared.join(', ')}.` };
}
