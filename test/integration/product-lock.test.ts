/**
 * `tessera product lock` (main/host/cli-products.ts) through the built CLI: it pins a product's plugin ranges to
 * the cids of the verified plugins, `--check` tells a current lock from a stale one, the runtime then serves the
 * product from the lock, and every refusal leaves the existing lock as it was.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBuild, runTessera, startTessera } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

beforeAll(requireBuild);

const ROOT = join(import.meta.dirname, '../..');
const PRESET = join(ROOT, 'resources/products/api-receipt-gateway.product.json');
const BUILT_PLUGINS = join(ROOT, 'out/plugins');

/** A data folder with a copy of the gateway preset, renamed so it does not shadow the built-in product. */
function setup(edit: (m: Record<string, unknown>) => void = () => undefined) {
  const data = tempDir('tessera-lock-');
  const products = join(data, 'products');
  mkdirSync(products, { recursive: true });
  const file = join(products, 'gw-locked.product.json');
  const manifest = JSON.parse(readFileSync(PRESET, 'utf8')) as Record<string, unknown>;
  delete manifest['$schema'];
  manifest['name'] = 'gw-locked';
  edit(manifest);
  writeFileSync(file, JSON.stringify(manifest, null, 2));
  return { data, file, lock: join(products, 'gw-locked.lock.json') };
}

/** The cid `tessera plugin verify` reports for a built-in plugin. */
function verifiedCid(name: string): string {
  const r = runTessera(['plugin', 'verify', join(BUILT_PLUGINS, name), '--json']);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { cid: string }).cid;
}

describe('tessera product lock', () => {
  it('pins each range to the verified plugin, checks the lock, and the runtime serves the product from it', async () => {
    const { data, file, lock } = setup();
    const r = runTessera(['product', 'lock', file, '--data', data]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Locked gw-locked@1.0.0 → ${lock}`);
    const written = JSON.parse(readFileSync(lock, 'utf8')) as { lockfileVersion: number; requires: Record<string, string>; plugins: Record<string, { version: string; cid: string }> };
    expect(written.lockfileVersion).toBe(1);
    expect(written.requires).toEqual({ 'intake-event': '^1', 'policy-existence': '^1', 'policy-authorization': '^1' });
    for (const name of ['intake-event', 'policy-existence', 'policy-authorization']) {
      expect(written.plugins[name]).toMatchObject({ version: '1.0.0', cid: verifiedCid(name) });
      expect(r.stdout).toContain(written.plugins[name]!.cid);
    }

    const check = runTessera(['product', 'lock', file, '--data', data, '--check', '--json']);
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, product: 'gw-locked@1.0.0', lock_file: lock, lock: written, skipped: [] });

    const tessera = await startTessera(data);
    try {
      const described = (await (await fetch(`${tessera.origin}/.well-known/product.json`)).json()) as { products: Array<{ name: string; lock: string; plugins: Record<string, { cid: string }> }> };
      const product = described.products.find((p) => p.name === 'gw-locked');
      expect(product).toMatchObject({ lock: 'file', plugins: { 'policy-existence': { cid: written.plugins['policy-existence']!.cid } } });
    } finally {
      tessera.child.kill('SIGTERM');
      await tessera.exited;
    }
  }, 60_000);

  it('refuses what it cannot pin and reports a stale lock, leaving the lock file untouched', () => {
    const { data, file, lock } = setup();
    expect(runTessera(['product', 'lock', file, '--data', data]).code).toBe(0);
    const before = readFileSync(lock, 'utf8');

    // The manifest now asks for a major version nobody has.
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { pipeline: Array<{ policies: Array<{ use: string }> }> };
    manifest.pipeline[0]!.policies[0]!.use = 'policy-existence@^2';
    writeFileSync(file, JSON.stringify(manifest));
    const unsatisfiable = runTessera(['product', 'lock', file, '--data', data]);
    expect(unsatisfiable.code).toBe(1);
    expect(unsatisfiable.stderr).toMatch(/error PLUGIN_NOT_FOUND: .*policy-existence@\^2: only 1\.0\.0 loaded/);
    expect(readFileSync(lock, 'utf8')).toBe(before);
    const stale = runTessera(['product', 'lock', file, '--data', data, '--check']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^error PRODUCT_INVALID: the lock .*gw-locked\.lock\.json does not hold: .*does not pin policy-existence@\^2/);

    // The lock pins code that is not what is installed.
    copyFileSync(PRESET, file);
    const manifestBack = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    manifestBack['name'] = 'gw-locked';
    writeFileSync(file, JSON.stringify(manifestBack));
    const tampered = JSON.parse(before) as { plugins: Record<string, { cid: string }> };
    tampered.plugins['policy-authorization']!.cid = `b3:${'0'.repeat(64)}`;
    writeFileSync(lock, JSON.stringify(tampered));
    const check = runTessera(['product', 'lock', file, '--data', data, '--check', '--json']);
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: false, error: { code: 'PLUGIN_TAMPERED' } });

    // A lock file that is not one is refused by --check, and rewritten by a plain lock.
    writeFileSync(lock, '{"not": "a lock"}');
    const garbage = runTessera(['product', 'lock', file, '--data', data, '--check', '--json']);
    expect(garbage.code).toBe(1);
    expect(JSON.parse(garbage.stdout)).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('not a Tessera plugin lock') } });
    expect(runTessera(['product', 'lock', file, '--data', data]).code).toBe(0);
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(JSON.parse(before));
  }, 60_000);

  it('rejects a broken manifest without writing a lock, says when no lock exists, and skips a plugin that fails to verify', () => {
    const { data, file, lock } = setup((m) => {
      m['pipeline'] = [{ step: 1, act: 'transact', intake: 'intake-event', policies: [] }];
    });
    const broken = runTessera(['product', 'lock', file, '--data', data]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/error PRODUCT_INVALID: .*gw-locked\.product\.json/);
    expect(existsSync(lock)).toBe(false);

    const good = setup();
    const missing = runTessera(['product', 'lock', good.file, '--data', good.data, '--check']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${good.lock} does not exist; run tessera product lock`);

    // An extra plugin folder whose code was changed after signing: reported, left out, the rest still locks.
    const extra = tempDir('tessera-extra-plugins-');
    cpSync(join(BUILT_PLUGINS, 'policy-quota'), join(extra, 'policy-quota'), { recursive: true });
    writeFileSync(join(extra, 'policy-quota', 'plugin.js'), `${readFileSync(join(extra, 'policy-quota', 'plugin.js'), 'utf8')}\n// changed\n`);
    const r = runTessera(['product', 'lock', good.file, '--data', good.data, '--plugins', extra]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`skipped ${join(extra, 'policy-quota').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: PLUGIN_TAMPERED`));
    expect(Object.keys((JSON.parse(readFileSync(good.lock, 'utf8')) as { plugins: object }).plugins).sort()).toEqual(['intake-event', 'policy-authorization', 'policy-existence']);

    // A lock pinning a version whose only folder fails verification: --check gives that folder's reason, not "not loaded".
    const pinned = JSON.parse(readFileSync(good.lock, 'utf8')) as { plugins: Record<string, { version: string; cid: string }> };
    pinned.plugins['policy-existence'] = { version: '1.9.0', cid: `b3:${'1'.repeat(64)}` };
    writeFileSync(good.lock, JSON.stringify(pinned));
    cpSync(join(BUILT_PLUGINS, 'policy-existence'), join(extra, 'pe19'), { recursive: true });
    const bumped = JSON.parse(readFileSync(join(extra, 'pe19', 'plugin.json'), 'utf8')) as { version: string };
    bumped.version = '1.9.0';
    writeFileSync(join(extra, 'pe19', 'plugin.json'), JSON.stringify(bumped));
    const unverified = runTessera(['product', 'lock', good.file, '--data', good.data, '--plugins', extra, '--check', '--json']);
    expect(unverified.code).toBe(1);
    const why = JSON.parse(unverified.stdout) as { error: { code: string; message: string }; skipped: Array<{ dir: string; code: string }> };
    expect(why.error.code).not.toBe('PLUGIN_NOT_FOUND');
    expect(why.error.code).toBe(why.skipped.find((s) => s.dir === join(extra, 'pe19'))!.code);
    expect(why.error.message).toContain(`policy-existence@1.9.0 (locked) is in ${join(extra, 'pe19')}, which fails verification: ${why.error.code}`);

    for (const notAFolder of [join(extra, 'nope'), join(extra, 'policy-quota', 'plugin.json')]) {
      const r2 = runTessera(['product', 'lock', good.file, '--data', good.data, '--plugins', notAFolder]);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toMatch(/error CONFIG_INVALID: --plugins .*no such folder/);
    }

    // Where the lock cannot be written, the error says so and leaves no temporary file behind.
    const blocked = setup();
    mkdirSync(blocked.lock);
    const unwritable = runTessera(['product', 'lock', blocked.file, '--data', blocked.data]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/error DATA_DIR_UNUSABLE: Cannot write the lock .*gw-locked\.lock\.json/);
    expect(readdirSync(join(blocked.data, 'products')).sort()).toEqual(['gw-locked.lock.json', 'gw-locked.product.json']);
  }, 60_000);
});
