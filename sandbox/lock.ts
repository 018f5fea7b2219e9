/**
 * Pinning (issue 3 §5): a product manifest names plugins by semver range (`"policy-existence": "^1"`); a lock
 * file records the exact version and cids that satisfied them, so a device runs exactly what was reviewed.
 * A lock is checked against what is loaded: a different cid under the same version is refused.
 */
import { readFileSync } from 'node:fs';
import semver from 'semver';
import type { PluginInfo } from '../main/common/api.js';
import { TesseraError } from '../main/common/errors.js';
import { writeAtomic } from './package.js';

export interface LockedPlugin {
  version: string;
  /** cid of the signed manifest (which carries the code's cid). */
  cid: string;
  entry_cid: string;
  publisher: string;
}

export interface PluginLock {
  lockfileVersion: 1;
  /** The ranges this lock satisfies, as the product manifest gave them. */
  requires: Record<string, string>;
  plugins: Record<string, LockedPlugin>;
}

/** What a lock needs to know of a plugin: a loaded one (PluginInfo), or a verified plugin folder. */
export type LockCandidate = Pick<PluginInfo, 'name' | 'version' | 'cid' | 'entry_cid' | 'publisher'>;

/** Pick, for each required plugin, the highest loaded version inside its range. */
export function resolveLock(requires: Record<string, string>, available: readonly LockCandidate[]): PluginLock {
  const plugins: Record<string, LockedPlugin> = {};
  const problems: string[] = [];
  for (const [name, range] of Object.entries(requires).sort(([a], [b]) => a.localeCompare(b))) {
    if (semver.validRange(range) === null) {
      problems.push(`${name}: "${range}" is not a semver range`);
      continue;
    }
    const candidates = available.filter((p) => p.name === name && semver.satisfies(p.version, range)).sort((a, b) => semver.rcompare(a.version, b.version));
    const best = candidates[0];
    if (!best) {
      const versions = available.filter((p) => p.name === name).map((p) => p.version);
      problems.push(`${name}@${range}: ${versions.length > 0 ? `only ${versions.join(', ')} loaded` : 'not loaded'}`);
      continue;
    }
    plugins[name] = { version: best.version, cid: best.cid, entry_cid: best.entry_cid, publisher: best.publisher.keyid };
  }
  if (problems.length > 0) throw new TesseraError('PLUGIN_NOT_FOUND', `Cannot satisfy the plugin requirements: ${problems.join('; ')}.`);
  return { lockfileVersion: 1, requires: { ...requires }, plugins };
}

/** Check that every locked plugin is loaded with exactly its locked cid; returns the loaded plugins in lock order. */
export function checkLock<P extends LockCandidate>(lock: PluginLock, available: readonly P[]): P[] {
  const out: P[] = [];
  for (const [name, pin] of Object.entries(lock.plugins)) {
    const sameVersion = available.filter((p) => p.name === name && p.version === pin.version);
    const exact = sameVersion.find((p) => p.cid === pin.cid);
    if (!exact) {
      throw new TesseraError(
        sameVersion.length > 0 ? 'PLUGIN_TAMPERED' : 'PLUGIN_NOT_FOUND',
        sameVersion.length > 0
          ? `${name}@${pin.version} is loaded with cid ${sameVersion[0]!.cid}, but the lock pins ${pin.cid}.`
          : `${name}@${pin.version} (locked) is not loaded.`,
      );
    }
    out.push(exact);
  }
  return out;
}

export function readLock(file: string): PluginLock {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TesseraError('VALIDATION_FAILED', `${file} is not a readable JSON lock file: ${(err as Error).message}`);
  }
  const lock = value as PluginLock;
  if (lock?.lockfileVersion !== 1 || typeof lock.plugins !== 'object' || lock.plugins === null || typeof lock.requires !== 'object') {
    throw new TesseraError('VALIDATION_FAILED', `${file} is not a Tessera plugin lock (lockfileVersion 1).`);
  }
  for (const [name, pin] of Object.entries(lock.plugins)) {
    if (!semver.valid(pin?.version) || !/^b3:[0-9a-f]{64}$/.test(pin?.cid ?? '')) throw new TesseraError('VALIDATION_FAILED', `${file}: the entry for ${name} needs a version and a b3: cid.`);
  }
  return lock;
}

export function writeLock(file: string, lock: PluginLock): void {
  writeAtomic(file, JSON.stringify(lock, null, 2) + '\n');
}
