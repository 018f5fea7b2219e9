/**
 * Scenario permissions (seed 001 §17, issue 18 point 3): what a scenario's steps may use, what its publisher may
 * let it use, and the run-time check the engine makes before a step's target acts.
 *
 * A permission is one of `tts`, `stt`, `secrets:<name>`, `tool:<plugin>`, `bus.publish:<topic pattern>`
 * (main/common/topics.ts patterns: `*` one segment, `**` any number). A scenario declares them in `permissions:`;
 * a step needs:
 * - io.say → `tts`; io.ask → `tts` and `stt`;
 * - a tool step → `tool:<plugin>`;
 * - bus.publish of topic T → a declared `bus.publish:<pattern>` matching T;
 * - a read of `secrets["name"]` in its expressions → `secrets:name` (the run's scope holds only the declared
 *   secrets; a read of any other name is recorded and refuses the step).
 * A scenario with no `permissions` list (only loadable unsigned, in developer mode) may use anything; a signed
 * one is always held to its list (the loader sets an absent list to `[]`, see ./signing.ts).
 *
 * Grants (what a publisher may declare) live in a trust folder's `grants.json`:
 * `{"<key name or keyid>": ["tts", "tool:*", "secrets:weather.*", "bus.publish:app.**", …]}` — patterns are a
 * permission, `*` (everything), `secrets:`/`tool:` with a trailing `*` (a prefix), or `bus.publish:<pattern>`
 * (covers every topic the declared pattern could match). Grants of several folders add up.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { compilePattern, patternProblem } from '../../common/topics.js';
import type { Scenario, StepTarget } from './model.js';

export const GRANTS_FILE = 'grants.json';
const MAX_GRANTS_FILE_BYTES = 1024 * 1024;

const NAME = /^[A-Za-z0-9_.-]+$/;
const PLUGIN = /^[a-z0-9][a-z0-9._-]*$/;

/** Null when `p` is a permission a scenario may declare, else why not. */
export function permissionProblem(p: string): string | null {
  if (p === 'tts' || p === 'stt') return null;
  if (p.startsWith('secrets:')) return NAME.test(p.slice(8)) ? null : `"${p}": a secret name is letters, digits, "_", "." or "-"`;
  if (p.startsWith('tool:')) return PLUGIN.test(p.slice(5)) ? null : `"${p}": a plugin name is lowercase letters, digits, ".", "_" or "-"`;
  if (p.startsWith('bus.publish:')) {
    const problem = patternProblem(p.slice(12));
    return problem === null ? null : `"${p}": ${problem}`;
  }
  return `"${p}" is not a permission (tts, stt, secrets:<name>, tool:<plugin>, bus.publish:<topic pattern>)`;
}

/** Null when `g` is a grant pattern, else why not. */
export function grantProblem(g: string): string | null {
  if (g === '*') return null;
  if ((g.startsWith('secrets:') || g.startsWith('tool:')) && g.endsWith('*')) {
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
  for (const kind of ['secrets:', 'tool:']) {
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

/** What a step's target needs, given its interpolated input. */
export function targetNeeds(target: StepTarget, input: Record<string, unknown>): Array<{ permission: string; topic?: string }> {
  if (target.kind === 'tool') return [{ permission: `tool:${target.tool}` }];
  if (target.kind !== 'action') return [];
  if (target.action === 'io.say') return [{ permission: 'tts' }];
  if (target.action === 'io.ask') return [{ permission: 'tts' }, { permission: 'stt' }];
  if (target.action === 'bus.publish') {
    const topic = String(input['topic'] ?? '');
    return [{ permission: `bus.publish:${topic}`, topic }];
  }
  return [];
}

/** Records the secret names a run read that its scenario did not declare, per secrets box given to a run. */
const deniedReads = new WeakMap<object, Set<string>>();

/**
 * The `secrets` a run of `scenario` sees in its expressions: all of them when it declares no permissions, else only
 * the declared ones, in an object that records every read of another name (taken by {@link stepRefusal}).
 */
export function scopeSecrets(scenario: Scenario, all: Record<string, unknown>): Record<string, unknown> {
  if (scenario.permissions === undefined) return all;
  const allowed = new Set(scenario.permissions.filter((p) => p.startsWith('secrets:')).map((p) => p.slice(8)));
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
 * Why step `stepName` of `scenario` may not act with `input` (its target's needs, and the undeclared secrets its
 * expressions read since the last call for this run's `secretsBox`), or null. Call right before the target acts.
 */
export function stepRefusal(scenario: Scenario, stepName: string, target: StepTarget, input: Record<string, unknown>, secretsBox: unknown): StepRefusal | null {
  const declared = scenario.permissions;
  if (declared === undefined) return null;
  const reads = typeof secretsBox === 'object' && secretsBox !== null ? deniedReads.get(secretsBox) : undefined;
  if (reads !== undefined && reads.size > 0) {
    const name = [...reads][0]!;
    reads.clear();
    return refusal(scenario, stepName, `secrets:${name}`, `reads secret "${name}"`);
  }
  for (const need of targetNeeds(target, input)) {
    if (need.topic !== undefined) {
      const ok = declared.some((p) => p.startsWith('bus.publish:') && patternProblem(p.slice(12)) === null && compilePattern(p.slice(12))(need.topic!));
      if (!ok) return refusal(scenario, stepName, need.permission, `publishes "${need.topic}"`);
    } else if (!declared.includes(need.permission)) {
      return refusal(scenario, stepName, need.permission, target.kind === 'tool' ? `calls tool ${target.tool}` : `uses ${need.permission}`);
    }
  }
  return null;
}

function refusal(scenario: Scenario, stepName: string, permission: string, what: string): StepRefusal {
  const declared = scenario.permissions ?? [];
  return { permission, message: `Step ${stepName} of scenario ${scenario.id} ${what}, which needs permission ${permission}; the scenario declares ${declared.length === 0 ? 'none' : declared.join(', ')}.` };
}
