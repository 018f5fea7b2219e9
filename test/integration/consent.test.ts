/**
 * ASK and k-of-n consent (issue 5 point 4; seed 004 §3–§4, §6): a product with `security.kofn` (2 of 3
 * approvers) in `<data>/products`, a real headless host, approvers signing with their own keys over HTTP and
 * through the `tessera consent` command; the resulting chain verifies offline with the approvers' keys.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../main/common/canonical.js';
import { fromBase64 } from '../../main/common/dsse.js';
import { CONSENT_PAYLOAD_TYPE, CONSENT_VERSION, verifyChain } from '../../main/common/receipt.js';
import type { ReceiptPayload } from '../../main/common/receipt.js';
import { runCli } from '../../main/host/cli.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { generateKeyPair, readPublicKey, signEnvelope, writePrivateKey } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { requireBuild } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;
let keyDir: string;
const approvers: SigningKey[] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
const TENANT_TOKEN = 'acme-consent-token-0123456789abcdef';
const PRESET = join(import.meta.dirname, '../../resources/products/api-receipt-gateway.product.json');

beforeAll(async () => {
  requireBuild();
  const dataDir = tempDir('tessera-consent-', 'file');
  keyDir = tempDir('tessera-consent-keys-', 'file');
  approvers.forEach((k, i) => writePrivateKey(join(keyDir, `approver-${i}`), k));
  const manifest = JSON.parse(readFileSync(PRESET, 'utf8')) as Record<string, unknown> & { security: Record<string, unknown> };
  manifest['name'] = 'gateway-consent';
  manifest.security = { ...manifest.security, kofn: { k: 2, approvers: approvers.map((k, i) => ({ name: `approver ${i}`, public_key: k.publicKeyPem })) } };
  const products = join(dataDir, 'products');
  mkdirSync(products);
  writeFileSync(join(products, 'gateway-consent.product.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(dataDir, 'tenants.json'), JSON.stringify({ tenants: [{ id: 'acme', token_sha256: createHash('sha256').update(TENANT_TOKEN).digest('hex') }] }));
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
}, 60_000);

afterAll(async () => {
  await host?.close();
});

let counter = 0;
/** A view whose principal's credential expired: policy-authorization answers ASK (a human must decide). */
const askView = () => ({
  hdr: { src: 'gw-1', nonce: `consent-${Date.now()}-${counter++}` },
  intent: { kind: 'EVAL', name: 'api-receipt' },
  ctx: { method: 'POST', path: '/v1/payments', request: counter },
  meta: { tenant: 'default', principal: { id: 'svc', tenant: 'default', audiences: ['gateway'], scopes: ['post:/v1/payments'], expires_at: '2020-01-01T00:00:00Z' } },
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown, token = host.token) {
  const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const sign = (key: SigningKey, consent: string, capsule: string, decision: 'approve' | 'reject') =>
  signEnvelope(CONSENT_PAYLOAD_TYPE, canonicalBytes({ v: CONSENT_VERSION, consent, capsule, decision, approver: key.keyid }), [key]);

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), env: {} });
  return { code, out, err };
}
const conn = () => ['--url', host.origin, '--token', host.token];
const kinds = (cid: string) => host.runtime.receipts.receipts(cid).map((e) => (JSON.parse(new TextDecoder().decode(fromBase64(e.payload))) as ReceiptPayload).kind);

async function ask(): Promise<{ cid: string; consent: string }> {
  const { status, body } = await call('POST', '/v1/run?product=gateway-consent', askView());
  expect(status).toBe(200);
  // Anything but ASK says why: the decision receipt carries each policy's verdict, reason and evidence (a plugin fault
  // such as PLUGIN_TIMEOUT on a starved machine shows there, not as a bare NACK).
  const why = () => JSON.stringify(host.runtime.receipts.receipts(body['cid'] as string).map((e) => (JSON.parse(new TextDecoder().decode(fromBase64(e.payload))) as ReceiptPayload).body));
  expect(body, body['verdict'] === 'ASK' ? undefined : why()).toMatchObject({ verdict: 'ASK', state: 'pending', consent: { k: 2, n: 3 } });
  return { cid: body['cid'] as string, consent: (body['consent'] as { id: string }).id };
}

/** Each test runs the receipt pipeline in the sandbox and the consent CLI: seconds on a loaded machine; a ceiling. */
describe('ASK → k-of-n consent', { timeout: 120_000 }, () => {
  it('2 of 3 approvals (HTTP, then the CLI) promote the ASK to ALLOW with a permit, and the chain verifies with the approvers keys', async () => {
    const { cid, consent } = await ask();
    expect(kinds(cid)).toEqual(['INTENT', 'RESULT']);
    const listed = await call('GET', '/v1/consents?state=open');
    const entry = (listed.body['consents'] as Array<Record<string, unknown>>).find((c) => c['id'] === consent);
    expect(entry).toMatchObject({ capsule: cid, k: 2, n: 3, state: 'open', sign: { payloadType: CONSENT_PAYLOAD_TYPE, decision: { consent, capsule: cid } } });

    // Sent with the decision's own media type: the same JSON.
    const firstRes = await fetch(`${host.origin}/v1/consents/${consent}/approve`, { method: 'POST', headers: { authorization: `Bearer ${host.token}`, 'content-type': CONSENT_PAYLOAD_TYPE }, body: JSON.stringify(sign(approvers[0]!, consent, cid, 'approve')) });
    const first = { status: firstRes.status, body: (await firstRes.json()) as Record<string, unknown> };
    expect(first).toMatchObject({ status: 200, body: { verdict: 'ASK', consent: { state: 'open', votes: [{ approver: approvers[0]!.keyid, decision: 'approve' }] } } });
    expect(await call('POST', `/v1/consents/${consent}/approve`, sign(approvers[0]!, consent, cid, 'approve'))).toMatchObject({ status: 409, body: { error: { code: 'CONSENT_CLOSED' } } });

    const list = await cli(['consent', 'list', '--state', 'open', ...conn()]);
    expect(list.code).toBe(0);
    expect(list.out).toContain(`${consent}  open      1/2 of 3 approvers`);
    const second = await cli(['consent', 'approve', consent, '--key', join(keyDir, 'approver-2'), ...conn()]);
    expect(second.err).toBe('');
    expect(second.code).toBe(0);
    expect(second.out).toContain('2/2 approvals, request approved, capsule verdict ACK');
    // Once closed, the approver who did not vote is no longer shown as awaited.
    const closed = await cli(['consent', 'list', '--state', 'approved', ...conn()]);
    expect(closed.out).toContain(`    no vote  approver 1  ${approvers[1]!.keyid}`);

    expect(kinds(cid)).toEqual(['INTENT', 'RESULT', 'CONSENT', 'CONSENT', 'RESULT', 'DELIVERY', 'EXECUTION']);
    expect(host.runtime.receipts.permits(cid)).toEqual([expect.objectContaining({ state: 'effected' })]);
    const keys = new Map(host.runtime.receipts.publicKeys(cid).map((k) => [k.keyid, readPublicKey(k.publicKeyPem).publicKeyRaw]));
    expect([...keys.keys()].sort()).toEqual([host.runtime.deviceKey.keyid, approvers[0]!.keyid, approvers[2]!.keyid].sort());
    expect(verifyChain(host.runtime.receipts.receipts(cid), (k) => (keys.has(k) ? { publicKeyRaw: keys.get(k)! } : undefined), { capsule: cid }).ok).toBe(true);
    const card = await call('GET', `/v1/r/${cid}`);
    expect(card.body).toMatchObject({ verdict: 'ACK', state: 'decided', decision: 'ALLOW', consent: { id: consent, state: 'approved', approvals: 2, k: 2 } });
    // The same input again finds the promoted capsule.
    expect((await call('POST', '/v1/run?product=gateway-consent', { ...askView(), ctx: { method: 'POST', path: '/v1/payments', request: counter - 1 } })).body).toMatchObject({ cid, verdict: 'ACK', repeated: true });
    // Closed: a third approver is too late.
    const late = await cli(['consent', 'approve', consent, '--key', join(keyDir, 'approver-1'), ...conn()]);
    expect(late).toMatchObject({ code: 1, err: expect.stringContaining('error CONSENT_CLOSED') });
  });

  it('rejections that leave fewer than k possible approvals close the request as NACK', async () => {
    const { cid, consent } = await ask();
    expect((await call('POST', `/v1/consents/${consent}/reject`, sign(approvers[1]!, consent, cid, 'reject'))).body).toMatchObject({ verdict: 'ASK' });
    const rejected = await cli(['consent', 'reject', consent, '--key', join(keyDir, 'approver-0'), ...conn()]);
    expect(rejected.code).toBe(0);
    expect(rejected.out).toContain('capsule verdict NACK');
    expect(kinds(cid)).toEqual(['INTENT', 'RESULT', 'CONSENT', 'CONSENT', 'RESULT']);
    expect(host.runtime.receipts.permits(cid)).toEqual([]);
    expect((await call('GET', `/v1/r/${cid}`)).body).toMatchObject({ verdict: 'NACK', state: 'rejected', decision: 'DENY' });
  });

  it('refuses outsiders, bad signatures, and a decision signed for another action or request', async () => {
    const { cid, consent } = await ask();
    const outsider = generateKeyPair();
    expect(await call('POST', `/v1/consents/${consent}/approve`, sign(outsider, consent, cid, 'approve'))).toMatchObject({ status: 403, body: { error: { code: 'KEY_UNKNOWN' } } });
    const good = sign(approvers[0]!, consent, cid, 'approve');
    const tampered = { ...good, signatures: [{ ...good.signatures[0]!, sig: good.signatures[0]!.sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }] };
    expect(await call('POST', `/v1/consents/${consent}/approve`, tampered)).toMatchObject({ status: 400, body: { error: { code: 'SIGNATURE_INVALID' } } });
    expect(await call('POST', `/v1/consents/${consent}/reject`, good)).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    const other = await ask();
    expect(await call('POST', `/v1/consents/${consent}/approve`, sign(approvers[0]!, other.consent, other.cid, 'approve'))).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await call('POST', `/v1/consents/cns_${'0'.repeat(24)}/approve`, good)).toMatchObject({ status: 404, body: { error: { code: 'CONSENT_NOT_FOUND' } } });
    expect(await call('POST', `/v1/consents/${consent}/approve`, { payloadType: 'x' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    // A decision validly signed by an approver but carrying a field approvers are not shown is refused, not counted.
    const padded = signEnvelope(CONSENT_PAYLOAD_TYPE, canonicalBytes({ v: CONSENT_VERSION, consent, capsule: cid, decision: 'approve', approver: approvers[0]!.keyid, note: 'x' }), [approvers[0]!]);
    const refused = await call('POST', `/v1/consents/${consent}/approve`, padded);
    expect(refused).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect((refused.body['error'] as { message: string }).message).toContain('"note"');
    // An unsigned envelope: the message says why once, without repeating its code.
    const unsigned = await call('POST', `/v1/consents/${consent}/approve`, { ...good, signatures: [] });
    expect(unsigned).toMatchObject({ status: 400, body: { error: { code: 'SIGNATURE_INVALID' } } });
    expect((unsigned.body['error'] as { message: string }).message).not.toMatch(/SIGNATURE_INVALID|\.\.$/);
    // Nothing was recorded by any of these.
    expect(host.runtime.receipts.consent(consent)?.votes).toEqual([]);
    expect(kinds(cid)).toEqual(['INTENT', 'RESULT']);
  });

  it("keeps a tenant to its own consent requests: another tenant's are neither listed nor decidable", async () => {
    const { cid, consent } = await ask();
    const asAcme = await call('GET', '/v1/consents', undefined, TENANT_TOKEN);
    expect(asAcme.status).toBe(200);
    expect((asAcme.body['consents'] as Array<{ id: string }>).map((c) => c.id)).not.toContain(consent);
    expect((await call('GET', '/v1/consents')).body['consents']).toEqual(expect.arrayContaining([expect.objectContaining({ id: consent })]));
    const decided = await call('POST', `/v1/consents/${consent}/approve`, sign(approvers[0]!, consent, cid, 'approve'), TENANT_TOKEN);
    expect(decided).toMatchObject({ status: 404, body: { error: { code: 'CONSENT_NOT_FOUND' } } });
    expect(host.runtime.receipts.consent(consent)?.votes).toEqual([]);
  });

  it('the consent commands have --help and report usage errors', async () => {
    const help = await cli(['consent', 'approve', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('tessera consent approve ID --key KEY');
    expect((await cli(['consent', 'approve', 'cns_x', ...conn()])).code).toBe(2);
    expect((await cli(['consent', 'list', '--state', 'maybe', ...conn()])).code).toBe(2);
  });
});
