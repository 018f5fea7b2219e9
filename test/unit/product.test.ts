/**
 * Product manifests (main/runtime/products): the shipped API Receipt Gateway preset validates against the
 * published schema; errors name the file and the field; plugin ranges resolve against loaded plugins and a
 * lock file of cids is enforced.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PluginInfo } from '../../main/common/api.js';
import { cidOf } from '../../main/common/cid.js';
import { isTesseraError } from '../../main/common/errors.js';
import { generateKeyPair } from '../../main/runtime/keys/index.js';
import { readProductManifest, resolveProduct, validateProductManifest } from '../../main/runtime/products/index.js';
import type { ProductManifest } from '../../main/runtime/products/index.js';
import { combineVerdicts, resolveInput } from '../../main/runtime/receipts/pipeline.js';
import { tempDir } from '../helpers/tmp.js';

const PRESET = join(import.meta.dirname, '../../resources/products/api-receipt-gateway.product.json');
const preset = (): ProductManifest => JSON.parse(readFileSync(PRESET, 'utf8')) as ProductManifest;

function plugin(name: string, version: string, kind: PluginInfo['kind']): PluginInfo {
  const manifest = { name, version, kind, entry: 'plugin.js', entry_cid: cidOf(`${name}@${version} code`) };
  return {
    key: `${name}@${version}`,
    name,
    version,
    kind,
    cid: cidOf(manifest),
    entry_cid: manifest.entry_cid,
    publisher: { keyid: cidOf('publisher'), name: 'test' },
    trust: 'trusted',
    capabilities: [],
    limits: { memoryMb: 16, timeoutMs: 50, deadlineMs: 5000, maxOutputChars: 1 << 20 },
    manifest,
  };
}
const loaded = [plugin('intake-event', '1.0.0', 'intake'), plugin('policy-existence', '1.0.0', 'policy'), plugin('policy-existence', '1.2.0', 'policy'), plugin('policy-authorization', '1.0.0', 'policy'), plugin('policy-existence', '2.0.0', 'policy')];

const problemOf = (fn: () => unknown): { code: string; message: string } => {
  try {
    fn();
  } catch (err) {
    if (isTesseraError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected an error');
};

describe('product manifests', () => {
  it('the API Receipt Gateway preset validates and resolves to the highest loaded version in each range', () => {
    const manifest = readProductManifest(PRESET);
    const product = resolveProduct(manifest, PRESET, loaded);
    expect(product).toMatchObject({ name: 'api-receipt-gateway', act: 'transact', aud: 'gateway', kofn: null, lock_source: 'resolved', effects: ['deliver'] });
    expect(product.cid).toBe(cidOf(manifest));
    expect(product.intake).toMatchObject({ name: 'intake-event', version: '1.0.0', kind: 'intake' });
    expect(product.policies.map((p) => `${p.name}@${p.version}`)).toEqual(['policy-existence@1.2.0', 'policy-authorization@1.0.0']);
    expect(product.lock.plugins['policy-existence']!.cid).toBe(loaded[2]!.cid);
  });

  it('names the file and each failing field', () => {
    const bad = { ...preset(), name: 'Bad Name', colour: 'red', pipeline: [{ ...preset().pipeline[0]!, policies: ['policy-existence'] }] };
    const { code, message } = problemOf(() => validateProductManifest(bad, 'bad.product.json'));
    expect(code).toBe('PRODUCT_INVALID');
    expect(message).toContain('bad.product.json');
    expect(message).toContain('name: must be 2-64 lowercase letters');
    expect(message).toContain('colour: is not a known field');
    expect(message).toContain('pipeline[0].policies[0]');
    const noSecurity = { ...preset() } as Partial<ProductManifest>;
    delete noSecurity.security;
    expect(problemOf(() => validateProductManifest(noSecurity, 'x.product.json')).message).toContain('security: is required');
    expect(problemOf(() => validateProductManifest({ ...preset(), acts: ['attest'] }, 'x.product.json')).message).toContain('pipeline[0].act: "transact" is not one of acts');
    const approver = generateKeyPair();
    const kofn = { k: 2, approvers: [{ name: 'ops', public_key: approver.publicKeyPem }] };
    expect(problemOf(() => validateProductManifest({ ...preset(), security: { ...preset().security, kofn } }, 'x.product.json')).message).toContain('security.kofn.k: 2 approvals needed but only 1');
    const garbage = { k: 1, approvers: [{ name: 'ops', public_key: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n' }] };
    expect(problemOf(() => validateProductManifest({ ...preset(), security: { ...preset().security, kofn: garbage } }, 'x.product.json')).message).toContain('security.kofn.approvers[0].public_key');
  });

  it('refuses a range no loaded plugin satisfies and a plugin of the wrong kind', () => {
    const dir = tempDir();
    const file = join(dir, 'p.product.json');
    const m = preset();
    m.pipeline[0]!.policies = ['policy-existence@^3'];
    expect(problemOf(() => resolveProduct(m, file, loaded))).toMatchObject({ code: 'PLUGIN_NOT_FOUND', message: expect.stringContaining('policy-existence@^3') });
    m.pipeline[0]!.policies = ['intake-event@^1'];
    m.pipeline[0]!.intake = 'policy-authorization@^1';
    expect(problemOf(() => resolveProduct(m, file, loaded))).toMatchObject({ code: 'PRODUCT_INVALID' });
  });

  it('enforces a lock file: a locked cid that is not the loaded one is refused, a matching lock pins it', () => {
    const dir = tempDir();
    const file = join(dir, 'gw.product.json');
    writeFileSync(file, readFileSync(PRESET));
    const first = resolveProduct(readProductManifest(file), file, loaded);
    writeFileSync(join(dir, 'gw.lock.json'), JSON.stringify(first.lock));
    expect(resolveProduct(readProductManifest(file), file, loaded)).toMatchObject({ lock_source: 'file', cid: first.cid });
    // A rebuilt plugin with the same version but different code: a different cid than the lock pins.
    const tampered = loaded.map((p) => (p.name === 'policy-authorization' ? { ...p, cid: cidOf('other code') } : p));
    expect(problemOf(() => resolveProduct(readProductManifest(file), file, tampered))).toMatchObject({ code: 'PLUGIN_TAMPERED', message: expect.stringContaining('policy-authorization@1.0.0') });
    // A lock that pins a different range than the manifest requires must be regenerated.
    writeFileSync(join(dir, 'gw.lock.json'), JSON.stringify({ ...first.lock, requires: { ...first.lock.requires, 'policy-existence': '^2' } }));
    expect(problemOf(() => resolveProduct(readProductManifest(file), file, loaded))).toMatchObject({ code: 'PRODUCT_INVALID', message: expect.stringContaining('regenerate the lock') });
  });

  it('a changed manifest is a new product (a new cid)', () => {
    const a = preset();
    const b = { ...preset(), version: '1.0.1' };
    expect(cidOf(a)).not.toBe(cidOf(b));
    expect(cidOf(JSON.parse(JSON.stringify(a)))).toBe(cidOf(a));
  });
});

describe('pipeline pure parts', () => {
  it('combines verdicts: any NACK ⇒ NACK, else any ASK ⇒ ASK, else ACK', () => {
    expect(combineVerdicts(['ACK', 'ACK'])).toBe('ACK');
    expect(combineVerdicts(['ACK', 'ASK'])).toBe('ASK');
    expect(combineVerdicts(['ASK', 'NACK', 'ACK'])).toBe('NACK');
    expect(combineVerdicts([])).toBe('ACK');
  });

  it('resolves "$name.path" references in a policy input template', () => {
    const env = { view: { meta: { principal: { id: 'svc' } } }, tenant: 'acme', intake: { slots: { scopes: ['post:/x'] } } };
    expect(resolveInput({ tenant: '$tenant', principal: '$view.meta.principal', scopes: '$intake.slots.scopes', fixed: ['a', 1], missing: '$view.nope.deeper' }, env)).toEqual({
      tenant: 'acme',
      principal: { id: 'svc' },
      scopes: ['post:/x'],
      fixed: ['a', 1],
      missing: null,
    });
  });
});
