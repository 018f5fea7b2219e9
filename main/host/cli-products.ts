/**
 * `tessera product lock`: pins a product manifest's plugin ranges (`policy-existence@^1`) to the exact versions
 * and cids that satisfy them, in `NAME.lock.json` beside `NAME.product.json` (sandbox/lock.ts). With a lock, the
 * runtime refuses to start the product on any other plugin code; without one it pins the highest version found,
 * for that process only. `--check` verifies an existing lock against the manifest and the plugins instead.
 *
 * The plugins considered are the ones `tessera start` loads — the built-in ones and `<data>/plugins` — plus
 * `--plugins DIR`, each verified (signature, trust, code cid) as the runtime verifies it. A folder that fails is
 * reported and left out, as at start.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TesseraError, toErrorData } from '../common/errors.js';
import type { ErrorCode, ErrorData } from '../common/errors.js';
import { checkProductLock, lockFileOf, productRequires, readProductManifest } from '../runtime/products/index.js';
import type { TrustView } from '../runtime/trust/index.js';
import { readLock, resolveLock, writeLock } from '../../sandbox/lock.js';
import type { LockCandidate, PluginLock } from '../../sandbox/lock.js';
import { MANIFEST_FILE } from '../../sandbox/manifest.js';
import { verifyPlugin } from '../../sandbox/package.js';
import type { Command } from './cli.js';
import { trustFor } from './cli-plugins.js';
import { resolveDataDir } from './config.js';
import { BUILTIN_PLUGINS_DIR } from './paths.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

const isFolder = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** A verified plugin folder, as a lock sees it. */
interface Candidate extends LockCandidate {
  dir: string;
}

/** A plugin folder that failed verification; `plugin` is the name@version its plugin.json claims, when readable. */
interface Skipped {
  dir: string;
  reason: string;
  code: ErrorCode;
  plugin?: string;
}

/** The `name@version` a plugin folder's manifest claims, read without verifying anything (for messages only). */
function claimedPlugin(dir: string): string | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as { name?: unknown; version?: unknown };
    return typeof m.name === 'string' && typeof m.version === 'string' ? `${m.name}@${m.version}` : undefined;
  } catch {
    return undefined;
  }
}

/** Verifies every plugin folder directly under each root; the ones that fail are returned apart, with why. */
function findPlugins(roots: readonly string[], trust: TrustView): { found: Candidate[]; skipped: Skipped[] } {
  const found: Candidate[] = [];
  const skipped: Skipped[] = [];
  for (const root of roots) {
    if (!existsSync(root)) continue;
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      const dir = join(root, entry.name);
      if (!entry.isDirectory() || !existsSync(join(dir, MANIFEST_FILE))) continue;
      try {
        const p = verifyPlugin(dir, trust);
        found.push({ dir, name: p.manifest.name, version: p.manifest.version, cid: p.cid, entry_cid: p.manifest.entry_cid, publisher: p.publisher });
      } catch (err) {
        const e = toErrorData(err);
        const plugin = claimedPlugin(dir);
        skipped.push({ dir, reason: `${e.code}: ${e.message}`, code: e.code, ...(plugin ? { plugin } : {}) });
      }
    }
  }
  return { found, skipped };
}

function describeLock(lock: PluginLock, found: readonly Candidate[]): string {
  const names = Object.keys(lock.plugins);
  const width = Math.max(...names.map((n) => n.length));
  return names
    .map((name) => {
      const pin = lock.plugins[name]!;
      const dir = found.find((p) => p.name === name && p.cid === pin.cid)?.dir;
      return `  ${name.padEnd(width)}  ${lock.requires[name]} → ${pin.version}  ${pin.cid}${dir ? `\n  ${''.padEnd(width)}  from ${dir}` : ''}\n`;
    })
    .join('');
}

/**
 * Why a pinned plugin is missing when its folder is there but failed verification (its code changed after signing,
 * its key is not trusted…): that folder's own error, which says more than "not loaded".
 */
function unverifiedPin(lock: PluginLock | undefined, found: readonly Candidate[], skipped: readonly Skipped[]): ErrorData | undefined {
  for (const [name, pin] of Object.entries(lock?.plugins ?? {})) {
    if (found.some((p) => p.name === name && p.version === pin.version)) continue;
    const failed = skipped.find((s) => s.plugin === `${name}@${pin.version}`);
    if (failed) return { code: failed.code, message: `${name}@${pin.version} (locked) is in ${failed.dir}, which fails verification: ${failed.reason}` };
  }
  return undefined;
}

const productLock: Command = {
  name: 'product lock',
  summary: "Pin a product's plugin ranges to exact versions and cids (NAME.lock.json beside it), or check its lock. Exit 0 ok, 1 not.",
  usage: 'tessera product lock PRODUCT.product.json [--plugins DIR] [--data DIR] [--trust DIR] [--check] [--json]',
  positionals: 1,
  options: { plugins: { type: 'string' }, data: { type: 'string' }, trust: { type: 'string' }, check: { type: 'boolean' }, json: { type: 'boolean' } },
  flags: [
    ['--plugins DIR', 'Also consider the plugin folders in DIR (besides the built-in ones and <data>/plugins).'],
    ['--data DIR', 'Data folder whose plugins/ and trust/ are used (default as for start).'],
    ['--trust DIR', 'Trust folder to verify the plugins against (default: the built-in roots plus <data>/trust).'],
    ['--check', 'Do not write: check that the existing lock matches the manifest and pins plugins that are present.'],
    ['--json', 'Print the result as JSON.'],
  ],
  async run(values, positionals, io) {
    const file = positionals[0] ? resolve(positionals[0]) : undefined;
    if (!file) throw new TesseraError('CONFIG_INVALID', `PRODUCT.product.json is required. Usage: ${this.usage}`);
    const dataDir = resolveDataDir(str(values['data']), io.env);
    const trust = trustFor(values, io);
    const extra = str(values['plugins']);
    if (extra !== undefined && !isFolder(extra)) throw new TesseraError('CONFIG_INVALID', `--plugins ${extra}: no such folder.`);
    const json = values['json'] === true;
    const check = values['check'] === true;
    const lockFile = lockFileOf(file);

    const manifest = readProductManifest(file);
    const requires = productRequires(manifest, file);
    const { found, skipped } = findPlugins([BUILTIN_PLUGINS_DIR, join(dataDir, 'plugins'), ...(extra ? [resolve(extra)] : [])], trust);
    if (!json) for (const s of skipped) io.stderr(`skipped ${s.dir}: ${s.reason}\n`);
    const report = (ok: boolean, lock: PluginLock | undefined, message: string, error?: ErrorData): number => {
      if (json) io.stdout(JSON.stringify({ ok, product: `${manifest.name}@${manifest.version}`, lock_file: lockFile, ...(lock ? { lock } : {}), ...(error ? { error } : {}), skipped }, null, 2) + '\n');
      else if (ok) io.stdout(`${message}\n${lock ? describeLock(lock, found) : ''}`);
      else io.stderr(`error ${error?.code ?? 'PRODUCT_INVALID'}: ${message}\n`);
      return ok ? 0 : 1;
    };

    if (check) {
      if (!existsSync(lockFile)) {
        const missing = `${lockFile} does not exist; run tessera product lock ${positionals[0]} to write it.`;
        return report(false, undefined, missing, { code: 'PRODUCT_INVALID', message: missing });
      }
      let lock: PluginLock | undefined;
      try {
        lock = readLock(lockFile);
        checkProductLock(lock, requires, file, found);
      } catch (err) {
        const e = unverifiedPin(lock, found, skipped) ?? toErrorData(err);
        return report(false, lock, `the lock ${lockFile} does not hold: ${e.message}`, e);
      }
      return report(true, lock, `The lock of ${manifest.name}@${manifest.version} is current: ${lockFile}`);
    }
    const lock = resolveLock(requires, found);
    try {
      writeLock(lockFile, lock);
    } catch (cause) {
      throw new TesseraError('DATA_DIR_UNUSABLE', `Cannot write the lock ${lockFile}: ${(cause as Error).message}`, { cause });
    }
    return report(true, lock, `Locked ${manifest.name}@${manifest.version} → ${lockFile}`);
  },
};

export const PRODUCT_COMMANDS: Command[] = [productLock];
