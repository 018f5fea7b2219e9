/**
 * The catalogue over HTTP and the CLI, and preflight through the real sandbox (issue 14 points 1 and 3): a real
 * headless host on 127.0.0.1 with the shipped (signed) Lviv catalogue and the first-party preflight plugins as
 * `npm run build` ships them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidOf } from '../../main/common/cid.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { signProductDef } from '../../main/runtime/catalogue/index.js';
import type { ProductDef, ResolvedProduct } from '../../main/runtime/catalogue/index.js';
import { generateKeyPair, readPrivateKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { PREFLIGHT_POLICIES, runPreflight } from '../../main/runtime/sessions/preflight.js';
import type { PreflightContext } from '../../main/runtime/sessions/preflight.js';
import { execFile } from 'node:child_process';
import { BIN, cleanEnv, requireBuild } from '../helpers/cli.js';
import { makePublisher } from '../helpers/plugins.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const DEV_KEY = join(ROOT, 'plugins', 'dev-key');
const passDef = () => JSON.parse(readFileSync(join(ROOT, 'resources', 'catalogue', 'src', 'city.museum-pass-48h.json'), 'utf8')) as ProductDef;
/** The pass on sale: 1.1.0, which names its journey document. */
const passDef11 = () => JSON.parse(readFileSync(join(ROOT, 'resources', 'catalogue', 'src', 'city.museum-pass-48h@1.1.0.json'), 'utf8')) as ProductDef;

let host: RunningHost;
let dataDir: string;

beforeAll(async () => {
  requireBuild();
  dataDir = tempDir('tessera-catalogue-', 'file');
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
  // The plugins load at start; wait until the four preflight policies are there.
  for (let i = 0; i < 400 && PREFLIGHT_POLICIES.some((p) => !host.runtime.plugins.find(p.name, p.range)); i++) await new Promise((r) => setTimeout(r, 25));
}, 60_000);
afterAll(async () => {
  await host?.close();
});

/** The built CLI, asynchronously: the host it talks to runs in this process, so a blocking spawnSync would deadlock. */
const tessera = (args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });

const api = async (method: 'GET' | 'POST', path: string, body?: unknown, token = host.token) => {
  const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('catalogue over HTTP', { timeout: 60_000 }, () => {
  it('GET /api/catalogue lists the shipped Lviv products with prices, profiles and their cids, to a traveller', async () => {
    const traveller = host.credentials.roleToken('traveller');
    const { status, body } = await api('GET', '/api/catalogue?city=lviv', undefined, traveller);
    expect(status).toBe(200);
    const products = body['products'] as Array<{ ref: string; cid: string; profiles: { pricing: { price: number; currency: string }; entitlement: { kind: string }; ui: { title: Record<string, string> } } }>;
    expect(products.map((p) => [p.ref, p.profiles.entitlement.kind, p.profiles.pricing.price, p.profiles.pricing.currency])).toEqual([
      ['city.coffee-voucher@1.0.0', 'stored_value', 10000, 'UAH'],
      ['city.museum-pass-48h@1.1.0', 'time_pass', 45000, 'UAH'],
      ['city.museum-ticket@1.0.0', 'single_use', 15000, 'UAH'],
    ]);
    expect(products[1]!.cid).toBe(cidOf(passDef11()));
    expect(products.map((p) => (p as { journey?: unknown }).journey)).toEqual([null, 'lviv.old-town-day@^1', null]);
    expect(products[1]!.profiles.ui.title).toEqual({ en: 'Lviv Museum Pass, 48 hours', uk: 'Музейна картка Львова, 48 годин' });
    expect((await api('GET', '/api/catalogue?city=kyiv', undefined, traveller)).body).toEqual({ products: [] });
    expect((await api('GET', '/api/catalogue?city=Not%20A%20City')).status).toBe(400);
  });

  it('GET /api/catalogue/venues lists every venue with its city; GET /api/catalogue/:ref resolves id, range, version and cid', async () => {
    const staff = host.credentials.roleToken('staff');
    const venues = (await api('GET', '/api/catalogue/venues', undefined, staff)).body['venues'] as Array<{ id: string; city: string }>;
    expect(venues.map((v) => v.id)).toEqual(['lviv.art', 'lviv.history', 'lviv.opera', 'lviv.pharm', 'lviv.rynok']);
    expect(venues.every((v) => v.city === 'lviv')).toBe(true);
    const cid = cidOf(passDef());
    for (const ref of ['city.museum-pass-48h@~1.0', 'city.museum-pass-48h@1.0.0', cid]) {
      const { status, body } = await api('GET', `/api/catalogue/${encodeURIComponent(ref)}`, undefined, staff);
      expect({ status, cid: body['cid'], envelope: body['envelope'] }).toEqual({ status: 200, cid, envelope: undefined });
    }
    for (const ref of ['city.museum-pass-48h', 'city.museum-pass-48h@^1']) expect((await api('GET', `/api/catalogue/${encodeURIComponent(ref)}`, undefined, staff)).body['cid']).toBe(cidOf(passDef11()));
    const withEnvelope = await api('GET', `/api/catalogue/city.museum-pass-48h?envelope=true`);
    expect(withEnvelope.body['envelope']).toEqual(JSON.parse(readFileSync(join(ROOT, 'resources', 'catalogue', 'city.museum-pass-48h@1.1.0.json'), 'utf8')));
    expect(await api('GET', '/api/catalogue/city.museum-pass-48h@%5E2')).toMatchObject({ status: 404, body: { error: { code: 'PRODUCTDEF_NOT_FOUND' } } });
    expect(await api('GET', '/api/catalogue/city.nothing')).toMatchObject({ status: 404, body: { error: { code: 'PRODUCTDEF_NOT_FOUND' } } });
  });

  it('POST /api/catalogue adds a signed def for an operator (201, then 200), refuses other content (409), an untrusted key (403), a traveller (403)', async () => {
    const dev = readPrivateKey(DEV_KEY);
    const v2 = { ...passDef(), version: '2.0.0' };
    v2.profiles.pricing.price = 50000;
    const envelope = signProductDef(v2, dev).envelope;
    expect(await api('POST', '/api/catalogue', envelope, host.credentials.roleToken('traveller'))).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    const first = await api('POST', '/api/catalogue', envelope, host.credentials.roleToken('operator'));
    expect(first).toMatchObject({ status: 201, body: { added: true, product: { ref: 'city.museum-pass-48h@2.0.0', cid: cidOf(v2), profiles: { pricing: { price: 50000 } } } } });
    expect(await api('POST', '/api/catalogue', envelope)).toMatchObject({ status: 200, body: { added: false } });
    expect((await api('GET', '/api/catalogue/city.museum-pass-48h')).body['version']).toBe('2.0.0');
    expect((await api('GET', '/api/catalogue/city.museum-pass-48h@1')).body['version']).toBe('1.1.0');
    const other = { ...v2, profiles: { ...v2.profiles, pricing: { price: 1, currency: 'UAH' } } };
    expect(await api('POST', '/api/catalogue', signProductDef(other, dev).envelope)).toMatchObject({ status: 409, body: { error: { code: 'PRODUCTDEF_CONFLICT' } } });
    expect(await api('POST', '/api/catalogue', signProductDef({ ...v2, version: '3.0.0' }, generateKeyPair()).envelope)).toMatchObject({ status: 403, body: { error: { code: 'KEY_UNKNOWN' } } });
    const tampered = { ...envelope, payload: Buffer.from(JSON.stringify(other)).toString('base64') };
    expect(await api('POST', '/api/catalogue', tampered)).toMatchObject({ status: 400, body: { error: { code: 'SIGNATURE_INVALID' } } });
    expect(await api('POST', '/api/catalogue', { payloadType: 'x' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    const added = host.runtime.journal.query({ topic: 'catalogue.added' }).events.map((e) => (e.payload as { version: string; source: string }));
    expect(added.filter((e) => e.source === 'api')).toEqual([expect.objectContaining({ version: '2.0.0' })]);
  });

  it('tessera catalogue sign | add | list | show work against the running host', async () => {
    const dir = tempDir();
    const def = { ...passDef(), version: '1.0.1', status: 'draft' };
    writeFileSync(join(dir, 'def.json'), JSON.stringify(def));
    const env = cleanEnv();
    const conn = ['--url', host.origin, '--token', host.token];
    const signed = await tessera(['catalogue', 'sign', join(dir, 'def.json'), '--key', DEV_KEY, '--out', join(dir, 'signed.json')], env);
    expect(signed.status, signed.stderr).toBe(0);
    expect(signed.stdout).toContain(`cid:    ${cidOf(def)}`);
    const added = await tessera(['catalogue', 'add', join(dir, 'signed.json'), ...conn], env);
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toContain('Added city.museum-pass-48h@1.0.1 (draft)');
    const list = await tessera(['catalogue', 'list', '--status', 'draft', ...conn], env);
    expect(list.stdout).toMatch(/city\.museum-pass-48h@1\.0\.1 +draft +time_pass +450\.00 UAH +Lviv Museum Pass/);
    const show = await tessera(['catalogue', 'show', 'city.museum-pass-48h@1.0.1', ...conn], env);
    expect(JSON.parse(show.stdout)).toMatchObject({ cid: cidOf(def), status: 'draft' });
    const missing = await tessera(['catalogue', 'show', 'city.nothing', ...conn], env);
    expect({ status: missing.status, stderr: missing.stderr }).toEqual({ status: 1, stderr: expect.stringContaining('error PRODUCTDEF_NOT_FOUND') });
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...def, pricing: 1 }));
    const bad = await tessera(['catalogue', 'sign', join(dir, 'bad.json'), '--key', DEV_KEY], env);
    expect({ status: bad.status, stderr: bad.stderr }).toEqual({ status: 1, stderr: expect.stringContaining('error PRODUCTDEF_INVALID') });
  });
});

describe('preflight through the sandbox', { timeout: 60_000 }, () => {
  const NOW = Date.parse('2026-06-01T10:00:00Z');
  const context = (patch: Partial<PreflightContext> = {}): PreflightContext => ({
    user_id: 'u-1',
    wallet_id: 'w-1',
    market: 'UA',
    city: 'lviv',
    now: NOW,
    ...patch,
    counts: { user: 0, wallet: 0, global: 0, user_last_hour: 0, ...patch.counts },
  });
  const pass = (): ResolvedProduct => host.runtime.catalogue.resolve('city.museum-pass-48h@1.0.0');
  const preflight = (ctx: PreflightContext, def = pass(), risk?: { max_sessions_per_hour?: number; max_amount?: number }) =>
    runPreflight({ plugins: host.runtime.plugins, def, context: ctx, trace_id: 'preflight-test', ...(risk ? { risk } : {}) });
  const codes = (r: Awaited<ReturnType<typeof preflight>>) => r.reasons.map((x) => `${x.plugin}:${x.code}`);

  it('ACKs the 48-hour pass in Lviv: four ACK policies with their versions and cids', async () => {
    const r = await preflight(context());
    expect(r).toMatchObject({ ok: true, verdict: 'ACK', reasons: [], trace_id: 'preflight-test' });
    expect(r.policies.map((p) => [p.plugin, p.verdict])).toEqual(PREFLIGHT_POLICIES.map((p) => [p.name, 'ACK']));
    for (const p of r.policies) expect(p).toMatchObject({ version: '1.0.0', cid: expect.stringMatching(/^b3:[0-9a-f]{64}$/) });
    expect(r.input_cid).toBe(cidOf(r.input));
  });

  it('policy-availability: NACKs a draft, a product before its sale window and after it, each with the sentence a traveller reads', async () => {
    const draft = { ...pass(), status: 'draft' as const };
    expect((await preflight(context(), draft)).reasons).toEqual([{ plugin: 'policy-availability', code: 'PREFLIGHT_INACTIVE', message: 'This product is not on sale.' }]);
    const early = await preflight(context({ now: '2025-12-31T23:59:59Z' }));
    expect(early.reasons).toEqual([{ plugin: 'policy-availability', code: 'PREFLIGHT_NOT_YET_AVAILABLE', message: 'This product goes on sale on 1 January 2026.' }]);
    const ended = { ...pass(), def: { ...pass().def, effective_until: '2026-05-01T00:00:00Z' } };
    expect(codes(await preflight(context(), ended))).toEqual(['policy-availability:PREFLIGHT_NO_LONGER_AVAILABLE']);
  });

  it('policy-product-quota: NACKs at the per-user, per-wallet and global caps, ACKs just under them', async () => {
    expect((await preflight(context({ counts: { user: 1, wallet: 9, global: 999, user_last_hour: 0 } }))).ok).toBe(true);
    const user = await preflight(context({ counts: { user: 2, wallet: 0, global: 0, user_last_hour: 0 } }));
    expect(user.reasons).toEqual([{ plugin: 'policy-product-quota', code: 'PREFLIGHT_QUOTA_USER', message: 'You already have 2 of these, the most one person can buy.' }]);
    expect(codes(await preflight(context({ counts: { user: 0, wallet: 10, global: 0, user_last_hour: 0 } })))).toEqual(['policy-product-quota:PREFLIGHT_QUOTA_WALLET']);
    const soldOut = await preflight(context({ counts: { user: 0, wallet: 0, global: 1000, user_last_hour: 0 } }));
    expect(soldOut.reasons).toEqual([{ plugin: 'policy-product-quota', code: 'PREFLIGHT_SOLD_OUT', message: 'This product is sold out.' }]);
  });

  it('policy-coverage: NACKs another market, another city, a cluster outside the safety profile and a low safety score', async () => {
    expect((await preflight(context({ market: 'PL' }))).reasons).toEqual([{ plugin: 'policy-coverage', code: 'PREFLIGHT_MARKET_NOT_COVERED', message: 'This product is not sold in your country.' }]);
    expect((await preflight(context({ city: 'ivano-frankivsk' }))).reasons).toEqual([{ plugin: 'policy-coverage', code: 'PREFLIGHT_CITY_NOT_COVERED', message: 'This product is not sold in Ivano-Frankivsk.' }]);
    expect((await preflight(context({ cluster: 'sykhiv' }))).reasons[0]).toMatchObject({ code: 'PREFLIGHT_CITY_NOT_COVERED', message: 'This product is not sold in this part of the city.' });
    expect((await preflight(context({ cluster: 'centre' }))).ok).toBe(true);
    const scored = { ...pass(), profiles: { ...pass().profiles, safety: { ...pass().profiles.safety, min_safety_score: 0.7 } } };
    expect(codes(await preflight(context({ safety_score: 0.5 }), scored))).toEqual(['policy-coverage:PREFLIGHT_CITY_NOT_COVERED']);
    expect((await preflight(context({ safety_score: 0.9 }), scored)).ok).toBe(true);
  });

  it('policy-risk: NACKs too many purchases in the last hour and a price above the threshold, telling the traveller to ask staff', async () => {
    const busy = await preflight(context({ counts: { user: 0, wallet: 0, global: 0, user_last_hour: 5 } }));
    expect(busy.reasons).toEqual([{ plugin: 'policy-risk', code: 'PREFLIGHT_RISK', message: 'We cannot sell this right now because of unusual activity; please ask a member of staff.' }]);
    expect(busy.policies.find((p) => p.plugin === 'policy-risk')!.evidence).toMatchObject({ rule: 'sessions_per_hour', count: 5, limit: 5 });
    const pricey = await preflight(context(), pass(), { max_amount: 40000 });
    expect(pricey.policies.find((p) => p.plugin === 'policy-risk')!.evidence).toMatchObject({ code: 'PREFLIGHT_RISK', rule: 'amount', amount: 45000, limit: 40000 });
    expect((await preflight(context({ counts: { user: 0, wallet: 0, global: 0, user_last_hour: 4 } }))).ok).toBe(true);
  });

  it('reports every refusing policy at once', async () => {
    const r = await preflight(context({ market: 'PL', now: '2025-06-01T00:00:00Z', counts: { user: 2, wallet: 0, global: 0, user_last_hour: 9 } }));
    expect(codes(r)).toEqual(['policy-availability:PREFLIGHT_NOT_YET_AVAILABLE', 'policy-product-quota:PREFLIGHT_QUOTA_USER', 'policy-coverage:PREFLIGHT_MARKET_NOT_COVERED', 'policy-risk:PREFLIGHT_RISK']);
  });

  it('fails closed: a crashing policy, one that never returns and one answering out of contract are NACK with PREFLIGHT_CHECK_FAILED', async () => {
    const publisher = makePublisher('test');
    // Higher 1.x versions of three of the policies, loaded beside the shipped ones (the ^1 range picks them).
    const crash = await host.runtime.plugins.load(publisher.write({ name: 'policy-risk', version: '1.9.0', code: 'export function decide() { throw new Error("boom"); }' }), publisher.trust);
    const loop = await host.runtime.plugins.load(publisher.write({ name: 'policy-coverage', version: '1.9.0', code: 'export function decide() { for (;;) {} }', limits: { timeout_ms: 50 } }), publisher.trust);
    const vague = await host.runtime.plugins.load(publisher.write({ name: 'policy-product-quota', version: '1.9.0', code: 'export function decide() { return { verdict: "NACK", reason: "no" }; }' }), publisher.trust);
    try {
      const r = await preflight(context());
      expect(r).toMatchObject({ ok: false, verdict: 'NACK' });
      expect(codes(r)).toEqual(['policy-product-quota:PREFLIGHT_CHECK_FAILED', 'policy-coverage:PREFLIGHT_CHECK_FAILED', 'policy-risk:PREFLIGHT_CHECK_FAILED']);
      expect(r.reasons[0]!.message).toBe('We could not check this purchase just now; please try again or ask a member of staff.');
      const byName = Object.fromEntries(r.policies.map((p) => [p.plugin, p]));
      expect(byName['policy-risk']).toMatchObject({ version: '1.9.0', evidence: { code: 'PREFLIGHT_CHECK_FAILED', fault: 'PLUGIN_FAILED' } });
      expect(byName['policy-coverage']).toMatchObject({ version: '1.9.0', evidence: { code: 'PREFLIGHT_CHECK_FAILED', fault: 'PLUGIN_TIMEOUT' } });
      expect(byName['policy-product-quota']).toMatchObject({ version: '1.9.0', evidence: { code: 'PREFLIGHT_CHECK_FAILED', answered: 'NACK' } });
      expect(byName['policy-availability']).toMatchObject({ verdict: 'ACK' });
    } finally {
      for (const p of [crash, loop, vague]) await host.runtime.plugins.unload(p.key);
    }
    // A policy that is not loaded at all fails closed too.
    const missing = await runPreflight({ plugins: { find: () => undefined, run: () => Promise.reject(new Error('unreachable')) }, def: pass(), context: context() });
    expect(missing.reasons.map((x) => x.code)).toEqual(['PREFLIGHT_CHECK_FAILED', 'PREFLIGHT_CHECK_FAILED', 'PREFLIGHT_CHECK_FAILED', 'PREFLIGHT_CHECK_FAILED']);
    expect((await preflight(context())).ok).toBe(true);
  });
});
