/**
 * The catalogue (issue 14 point 1): the ProductDef schema on the shipped samples and on bad defs, signed defs
 * verified against a trust folder, versions side by side and never edited in place, `id@range` resolution, and
 * loading folders where a bad file is journaled, never fatal — on a real SQLite file.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../main/common/canonical.js';
import { cidOf } from '../../main/common/cid.js';
import { toBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { PRODUCTDEF_PAYLOAD_TYPE, createCatalogue, durationMs, signProductDef, validateProductDef } from '../../main/runtime/catalogue/index.js';
import type { ProductDef } from '../../main/runtime/catalogue/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import type { Journal } from '../../main/runtime/journal/index.js';
import { generateKeyPair, readPrivateKey, signEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { combineTrustStores, openTrustStore } from '../../main/runtime/trust/index.js';
import type { TrustStore } from '../../main/runtime/trust/index.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SRC = join(ROOT, 'resources', 'catalogue', 'src');
const SHIPPED = join(ROOT, 'resources', 'catalogue');
const sample = (name: string): ProductDef => JSON.parse(readFileSync(join(SRC, `${name}.json`), 'utf8')) as ProductDef;
const pass = () => sample('city.museum-pass-48h');

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function setup(options: { dirs?: string[]; path?: string; trust?: TrustStore; key?: SigningKey } = {}) {
  const dir = tempDir();
  const key = options.key ?? generateKeyPair();
  const trust = options.trust ?? openTrustStore(join(dir, 'trust'), { create: true });
  if (!options.trust) trust.add(key.publicKeyPem, 'publisher');
  const store = openStore({ path: options.path ?? join(dir, 'tessera.db') });
  stores.push(store);
  const journal: Journal = createJournal({ store });
  const bus = createBus({ journal, logger: createMemoryLogger() });
  const catalogue = createCatalogue({ store, bus, logger: createMemoryLogger(), trust, dirs: options.dirs ?? [], clock: () => Date.parse('2026-06-01T10:00:00Z') });
  const sign = (def: unknown) => signProductDef(def, key).envelope;
  const topics = (topic: string) => journal.query({ topic }).events;
  return { dir, key, trust, store, journal, catalogue, sign, topics };
}

const version = (def: ProductDef, v: string, patch: Partial<ProductDef> = {}): ProductDef => ({ ...structuredClone(def), version: v, ...patch });

describe('ProductDef schema', () => {
  it('accepts the three shipped samples and resolves their durations', () => {
    for (const name of ['city.museum-pass-48h', 'city.museum-ticket', 'city.coffee-voucher']) expect(validateProductDef(sample(name)).id).toBe(name);
    expect(durationMs('PT48H')).toBe(48 * 3600_000);
    expect(durationMs('P30D')).toBe(30 * 86400_000);
    expect(durationMs('P1W')).toBe(7 * 86400_000);
    expect(durationMs('PT1H30M5S')).toBe(5405_000);
    // Issue 17: who approves what an agent proposes for this product.
    expect(validateProductDef({ ...pass(), agent_approvals: { 'session.buy': 'operator', 'journey.skip': 'traveller' } }).agent_approvals).toEqual({ 'session.buy': 'operator', 'journey.skip': 'traveller' });
  });

  it.each([
    ['a negative price', (d: ProductDef) => void (d.profiles.pricing.price = -1), /profiles\.pricing\.price: must be a whole number of minor units/],
    ['a price with a fraction', (d: ProductDef) => void (d.profiles.pricing.price = 450.5), /profiles\.pricing\.price: must be a whole number/],
    ['a price as a string', (d: ProductDef) => void ((d.profiles.pricing as { price: unknown }).price = '450'), /profiles\.pricing\.price/],
    ['an unknown entitlement kind', (d: ProductDef) => void ((d.profiles.entitlement as { kind: string }).kind = 'season_ticket'), /profiles\.entitlement\.kind: must be one of single_use, multi_use, time_pass, stored_value/],
    ['a missing version', (d: ProductDef) => void delete (d as Partial<ProductDef>).version, /version: is required/],
    ['a missing pricing profile', (d: ProductDef) => void delete (d.profiles as Partial<ProductDef['profiles']>).pricing, /profiles\.pricing: is required/],
    ['an unknown field', (d: ProductDef) => void ((d as unknown as Record<string, unknown>)['discount'] = 10), /discount: is not a known field/],
    ['a lowercase currency', (d: ProductDef) => void (d.profiles.pricing.currency = 'uah'), /must be an ISO 4217 code/],
    ['a status outside draft|active|retired', (d: ProductDef) => void ((d as { status: string }).status = 'paused'), /status/],
    ['a calendar-month duration', (d: ProductDef) => void (d.profiles.entitlement.validity = 'P1M'), /validity: must be an ISO 8601 duration/],
    ['a zero duration', (d: ProductDef) => void (d.profiles.entitlement.validity = 'PT0S'), /validity: must be longer than zero/],
    ['a time pass without its duration', (d: ProductDef) => void delete (d.profiles.entitlement as { duration?: string }).duration, /duration: is required/],
    ['a title without English', (d: ProductDef) => void (d.profiles.ui.title = { uk: 'Картка' } as unknown as ProductDef['profiles']['ui']['title']), /title\.en: is required/],
    ['a title over 120 characters', (d: ProductDef) => void (d.profiles.ui.title.en = 'x'.repeat(121)), /title\.en/],
    ['a venue listed twice', (d: ProductDef) => void d.profiles.entitlement.venues.push({ ...d.profiles.entitlement.venues[0]! }), /listed twice/],
    ['a sale window that ends before it starts', (d: ProductDef) => void (d.effective_until = '2025-01-01T00:00:00Z'), /effective_until: must be after effective_from/],
    ['a safety city it is not sold in', (d: ProductDef) => void (d.profiles.safety.cities = ['kyiv']), /safety\.cities\[0\]: "kyiv" is not one of cities/],
    ['a journey without a version range', (d: ProductDef) => void (d.journey = 'lviv.old-town-day'), /journey: must be a journey document id and a semver range/],
    ['an agent approval that is not a need', (d: ProductDef) => void (d.agent_approvals = { 'session.buy': 'nobody' as never }), /agent_approvals/],
    ['a journey with a range that is not semver', (d: ProductDef) => void (d.journey = 'lviv.old-town-day@soon'), /journey: "soon" is not a semver range or version/],
  ])('refuses %s with PRODUCTDEF_INVALID naming the field', (_what, breakIt, message) => {
    const def = pass();
    breakIt(def);
    expect(() => validateProductDef(def, 'def.json')).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_INVALID', message: expect.stringMatching(message) }));
  });
});

describe('catalogue registry', () => {
  it('adds a signed def, journals catalogue.added, and resolves it by id, range, exact version and cid with resolved profiles', () => {
    const { catalogue, sign, topics, key } = setup();
    const { added, product } = catalogue.add(sign(pass()));
    expect(added).toBe(true);
    expect(product).toMatchObject({ cid: cidOf(pass()), ref: 'city.museum-pass-48h@1.0.0', status: 'active', publisher: { keyid: key.keyid, name: 'publisher' }, source: 'api' });
    expect(product.profiles.entitlement).toEqual({
      kind: 'time_pass',
      duration_ms: 48 * 3600_000,
      uses_per_venue: 1,
      validity_ms: 48 * 3600_000,
      venues: [
        { id: 'lviv.history', name: 'Lviv History Museum', city: 'lviv' },
        { id: 'lviv.art', name: 'Lviv National Art Gallery', city: 'lviv' },
        { id: 'lviv.pharm', name: 'Pharmacy Museum', city: 'lviv' },
      ],
    });
    expect(product.profiles.quota).toEqual({ per_user: 2, per_wallet: 10, global: 1000 });
    for (const ref of ['city.museum-pass-48h', 'city.museum-pass-48h@^1', 'city.museum-pass-48h@1.0.0', product.cid]) expect(catalogue.resolve(ref)).toBe(product);
    expect(topics('catalogue.added').map((e) => e.payload)).toEqual([{ id: 'city.museum-pass-48h', version: '1.0.0', cid: product.cid, status: 'active', publisher: key.keyid, source: 'api' }]);
  });

  it('keeps versions side by side: a range picks the highest active one, an exact version or cid any status', () => {
    const { catalogue, sign } = setup();
    const v1 = catalogue.add(sign(pass())).product;
    const v11 = catalogue.add(sign(version(pass(), '1.1.0'))).product;
    const v2draft = catalogue.add(sign(version(pass(), '2.0.0', { status: 'draft' }))).product;
    const v12retired = catalogue.add(sign(version(pass(), '1.2.0', { status: 'retired' }))).product;
    expect(catalogue.resolve('city.museum-pass-48h').version).toBe('1.1.0');
    expect(catalogue.resolve('city.museum-pass-48h@^1').version).toBe('1.1.0');
    expect(catalogue.resolve('city.museum-pass-48h@~1.0').version).toBe('1.0.0');
    expect(catalogue.resolve('city.museum-pass-48h@1.0.0')).toBe(v1);
    expect(catalogue.resolve('city.museum-pass-48h@2.0.0')).toBe(v2draft);
    expect(catalogue.resolve(v12retired.cid)).toBe(v12retired);
    expect(() => catalogue.resolve('city.museum-pass-48h@^2')).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_NOT_FOUND', message: expect.stringContaining('2.0.0 (draft)') }));
    expect(() => catalogue.resolve('city.nothing')).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_NOT_FOUND' }));
    expect(() => catalogue.resolve('not a ref')).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_NOT_FOUND' }));
    expect(() => catalogue.resolve(`b3:${'0'.repeat(64)}`)).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_NOT_FOUND' }));
    // Offered: the highest active version per id; by status: every version in it.
    expect(catalogue.list().map((p) => p.ref)).toEqual(['city.museum-pass-48h@1.1.0']);
    expect(catalogue.list({ status: 'all' }).map((p) => p.version)).toEqual(['2.0.0', '1.2.0', '1.1.0', '1.0.0']);
    expect(catalogue.list({ status: 'retired' }).map((p) => p.version)).toEqual(['1.2.0']);
    expect(catalogue.list({ city: 'kyiv' })).toEqual([]);
    expect(v11.version).toBe('1.1.0');
  });

  it('refuses the same id@version with other content (PRODUCTDEF_CONFLICT) and takes the same content again as a no-op, also after a restart', () => {
    const first = setup();
    first.catalogue.add(first.sign(pass()));
    const changed = pass();
    changed.profiles.pricing.price = 1;
    expect(() => first.catalogue.add(first.sign(changed))).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_CONFLICT', message: expect.stringContaining('city.museum-pass-48h@1.0.0 is already published') }));
    expect(first.catalogue.add(first.sign(pass())).added).toBe(false);
    expect(first.topics('catalogue.added')).toHaveLength(1);
    expect(first.catalogue.resolve('city.museum-pass-48h').profiles.pricing.price).toBe(45000);
    // Reopened: the stored def is back, still immutable.
    const path = first.store.path;
    first.store.close();
    const again = setup({ path, trust: first.trust, key: first.key });
    expect(again.catalogue.resolve('city.museum-pass-48h').cid).toBe(cidOf(pass()));
    expect(() => again.catalogue.add(again.sign(changed))).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_CONFLICT' }));
    expect(again.catalogue.add(again.sign(pass())).added).toBe(false);
  });

  it('refuses a tampered payload, an untrusted or revoked key, another payload type and non-canonical bytes', () => {
    const { catalogue, sign, trust, key } = setup();
    const good = sign(pass()) as DsseEnvelope;
    const cheaper = pass();
    cheaper.profiles.pricing.price = 100;
    const tampered = { ...good, payload: toBase64(canonicalBytes(cheaper)) };
    expect(() => catalogue.add(tampered)).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
    const stranger = generateKeyPair();
    expect(() => catalogue.add(signProductDef(pass(), stranger).envelope)).toThrow(expect.objectContaining({ code: 'KEY_UNKNOWN' }));
    expect(() => catalogue.add(signEnvelope('application/vnd.tessera.plugin+json', canonicalBytes(pass()), [key]))).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID', message: expect.stringContaining('not a ProductDef') }));
    const spaced = new TextEncoder().encode(JSON.stringify(pass(), null, 2));
    expect(() => catalogue.add(signEnvelope(PRODUCTDEF_PAYLOAD_TYPE, spaced, [key]))).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_INVALID', message: expect.stringContaining('canonical') }));
    const invalid = pass() as unknown as Record<string, unknown>;
    invalid['status'] = 'paused';
    expect(() => catalogue.add(signEnvelope(PRODUCTDEF_PAYLOAD_TYPE, canonicalBytes(invalid), [key]))).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_INVALID' }));
    expect(() => catalogue.add({ nope: true })).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
    trust.revoke(key.keyid, 'key leaked');
    expect(() => catalogue.add(good)).toThrow(expect.objectContaining({ code: 'KEY_REVOKED' }));
    expect(catalogue.list({ status: 'all' })).toEqual([]);
  });

  it('loads the shipped signed catalogue with the built-in trust and a bad file beside it is journaled, never fatal', () => {
    const dataCatalogue = join(tempDir(), 'catalogue');
    mkdirSync(dataCatalogue);
    writeFileSync(join(dataCatalogue, 'broken.json'), '{ not json');
    const stranger = generateKeyPair();
    writeFileSync(join(dataCatalogue, 'untrusted.json'), JSON.stringify(signProductDef(version(pass(), '9.0.0'), stranger).envelope));
    const dev = readPrivateKey(join(ROOT, 'plugins', 'dev-key'));
    writeFileSync(join(dataCatalogue, 'extra.json'), JSON.stringify(signProductDef(version(pass(), '1.5.0'), dev).envelope));
    const builtin = openTrustStore(join(ROOT, 'resources', 'trust'));
    const { catalogue, topics } = setup({ dirs: [SHIPPED, dataCatalogue], trust: combineTrustStores(builtin) as TrustStore });
    // Three products; the museum pass in two versions (1.1.0 names its journey).
    expect(readdirSync(SHIPPED).filter((f) => f.endsWith('.json'))).toHaveLength(4);
    expect(catalogue.list({ city: 'lviv' }).map((p) => p.ref)).toEqual(['city.coffee-voucher@1.0.0', 'city.museum-pass-48h@1.5.0', 'city.museum-ticket@1.0.0']);
    for (const name of ['city.museum-pass-48h', 'city.museum-ticket', 'city.coffee-voucher']) expect(catalogue.resolve(`${name}@1.0.0`).cid).toBe(cidOf(sample(name)));
    expect(catalogue.resolve('city.coffee-voucher').profiles.entitlement).toMatchObject({ kind: 'stored_value', amount: 10000, currency: 'UAH' });
    expect(catalogue.errors().map((e) => [e.source.split('/').pop(), e.code])).toEqual([['broken.json', 'PRODUCTDEF_INVALID'], ['untrusted.json', 'KEY_UNKNOWN']]);
    expect(topics('catalogue.load_failed')).toHaveLength(2);
    expect(catalogue.venues().map((v) => [v.id, v.city, v.products.join(',')])).toEqual([
      ['lviv.art', 'lviv', 'city.museum-pass-48h'],
      ['lviv.history', 'lviv', 'city.museum-pass-48h,city.museum-ticket'],
      ['lviv.opera', 'lviv', 'city.coffee-voucher'],
      ['lviv.pharm', 'lviv', 'city.museum-pass-48h'],
      ['lviv.rynok', 'lviv', 'city.coffee-voucher'],
    ]);
  });

  it('ships signed files that are exactly what signing the sources with the dev key gives', () => {
    const dev = readPrivateKey(join(ROOT, 'plugins', 'dev-key'));
    for (const name of readdirSync(SRC)) {
      const def = JSON.parse(readFileSync(join(SRC, name), 'utf8')) as ProductDef;
      const shipped = JSON.parse(readFileSync(join(SHIPPED, `${def.id}@${def.version}.json`), 'utf8')) as unknown;
      expect(shipped, `${name}: run npm run build to re-sign it`).toEqual(signProductDef(def, dev).envelope);
    }
  });

  it('leaves out a stored def whose publisher was revoked since, and journals it at start', () => {
    const first = setup();
    first.catalogue.add(first.sign(pass()));
    const path = first.store.path;
    first.store.close();
    first.trust.revoke(first.key.keyid, 'compromised');
    const again = setup({ path, trust: first.trust, key: first.key });
    expect(again.catalogue.list({ status: 'all' })).toEqual([]);
    expect(again.catalogue.errors()).toEqual([expect.objectContaining({ source: 'store', code: 'KEY_REVOKED' })]);
  });
});
