/**
 * Receipt chains (main/common/receipt.ts) written by the real receipt store (real SQLite file, device key
 * signing with node:crypto) and checked offline by verifyChain with the pure @noble verifier.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../main/common/canonical.js';
import { cidOf } from '../../main/common/cid.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { fromBase64, toBase64 } from '../../main/common/dsse.js';
import {
  CAPSULE_VERSION,
  CONSENT_PAYLOAD_TYPE,
  CONSENT_VERSION,
  RECEIPT_PAYLOAD_TYPE,
  capsuleId,
  checkBuiltChain,
  proposalId,
  receiptId,
  verifyChain,
} from '../../main/common/receipt.js';
import type { Capsule, ReceiptPayload } from '../../main/common/receipt.js';
import { generateKeyPair, signEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { cardData, renderCardHtml } from '../../main/runtime/receipts/card.js';
import { createReceiptStore } from '../../main/runtime/receipts/store.js';
import type { ReceiptStore } from '../../main/runtime/receipts/store.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const opened: Store[] = [];
afterEach(() => {
  while (opened.length > 0) opened.pop()!.close();
});

const capsule: Capsule = { v: CAPSULE_VERSION, product: cidOf({ p: 1 }), act: 'transact', tenant: 'acme', aud: 'gateway', src: 'gw-1', view: { intent: { name: 'x' } } };
const T0 = Date.parse('2026-06-01T10:00:00Z');

function setup(): { store: ReceiptStore; device: SigningKey; lookup: (k: string) => { publicKeyRaw: Uint8Array } | undefined; keys: Map<string, SigningKey> } {
  const db = openStore({ path: join(tempDir(), 'tessera.db') });
  opened.push(db);
  const device = generateKeyPair();
  const keys = new Map([[device.keyid, device]]);
  return { store: createReceiptStore({ store: db, deviceKey: device }), device, keys, lookup: (k) => (keys.has(k) ? { publicKeyRaw: keys.get(k)!.publicKeyRaw } : undefined) };
}

/** A capsule with INTENT → RESULT → DELIVERY → EXECUTION. */
function writeChain(store: ReceiptStore): string {
  const cid = capsuleId(capsule);
  store.transaction(() => {
    store.createCapsule(cid, capsule, 'ACK', 'decided', T0);
    store.appendReceipt(cid, 'INTENT', 'tenant:acme', { intent: 'event.eval.x', nonce: 'n-00000001', exp: null }, T0);
    store.appendReceipt(cid, 'RESULT', 'tenant:acme', { verdict: 'ACK', decision: 'ALLOW' }, T0 + 1);
    store.appendReceipt(cid, 'DELIVERY', 'outbox', { effect: 'deliver' }, T0 + 2);
    store.appendReceipt(cid, 'EXECUTION', 'device:x', { effect: 'deliver', outcome: 'done' }, T0 + 3);
  });
  return cid;
}

/** Re-signs `payload` as the envelope at `index` (a forger with the device key, or tampering plus re-signing). */
function resign(key: SigningKey, payload: unknown): DsseEnvelope {
  return signEnvelope(RECEIPT_PAYLOAD_TYPE, canonicalBytes(payload), [key]);
}

const payloadOf = (env: DsseEnvelope): ReceiptPayload => JSON.parse(new TextDecoder().decode(fromBase64(env.payload))) as ReceiptPayload;

describe('receipt chains', () => {
  it('a stored chain verifies offline: ids are the cids of the payloads and prev links them in order', () => {
    const { store, lookup, device } = setup();
    const cid = writeChain(store);
    const envelopes = store.receipts(cid);
    const result = verifyChain(envelopes, lookup);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.capsule).toBe(cid);
    expect(result.receipts.map((r) => r.payload.kind)).toEqual(['INTENT', 'RESULT', 'DELIVERY', 'EXECUTION']);
    expect(result.receipts.map((r) => r.id)).toEqual(store.receiptIds(cid));
    expect(result.receipts[0]!.payload.prev).toBeNull();
    for (let i = 1; i < 4; i++) expect(result.receipts[i]!.payload.prev).toBe(result.receipts[i - 1]!.id);
    for (const r of result.receipts) {
      expect(r.id).toBe(receiptId(r.payload));
      expect(r.keyid).toBe(device.keyid);
      expect(r.payload.device).toBe(device.keyid);
    }
    expect(store.capsule(cid)).toMatchObject({ cid, verdict: 'ACK', state: 'decided', length: 4, head: result.receipts[3]!.id });
    expect(store.publicKeys(cid)).toEqual([{ keyid: device.keyid, publicKeyPem: device.publicKeyPem, role: 'device' }]);
  });

  it('names the receipt and the field that fails: a flipped payload byte, a broken prev link, a foreign capsule', () => {
    const { store, lookup, device } = setup();
    const cid = writeChain(store);
    const envelopes = store.receipts(cid);

    const flipped = envelopes.map((e) => ({ ...e }));
    const bytes = fromBase64(flipped[2]!.payload);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 1;
    flipped[2] = { ...flipped[2]!, payload: toBase64(bytes) };
    const a = verifyChain(flipped, lookup);
    expect(a).toMatchObject({ ok: false, index: 2 });
    if (!a.ok) expect(a.reason).toMatch(/^receipt 2 \((signature|payload|device)\)/);

    // Re-signed with the device key but pointing prev at receipt 0: the link check catches it.
    const relinked = [...envelopes];
    relinked[2] = resign(device, { ...payloadOf(envelopes[2]!), prev: payloadOf(envelopes[1]!).prev });
    const b = verifyChain(relinked, lookup);
    expect(b).toMatchObject({ ok: false, index: 2, field: 'prev' });
    if (!b.ok) expect(b.reason).toContain('the id of receipt 1');

    const other = [...envelopes];
    other[1] = resign(device, { ...payloadOf(envelopes[1]!), capsule: cidOf('another') });
    expect(verifyChain(other, lookup)).toMatchObject({ ok: false, index: 1, field: 'capsule' });

    expect(verifyChain(envelopes, lookup, { capsule: cidOf('expected') })).toMatchObject({ ok: false, index: 0, field: 'capsule' });
  });

  it('refuses a reordered chain, a dropped first receipt, a signature by another key, and an empty chain', () => {
    const { store, lookup, keys } = setup();
    const cid = writeChain(store);
    const envelopes = store.receipts(cid);
    expect(verifyChain([envelopes[1]!, envelopes[0]!, ...envelopes.slice(2)], lookup)).toMatchObject({ ok: false, index: 0, field: 'prev' });
    expect(verifyChain(envelopes.slice(1), lookup)).toMatchObject({ ok: false, index: 0 });
    const intruder = generateKeyPair();
    keys.set(intruder.keyid, intruder);
    // Signed by a known key that is not the device the payload names.
    const forged = [...envelopes];
    forged[3] = signEnvelope(RECEIPT_PAYLOAD_TYPE, fromBase64(envelopes[3]!.payload), [intruder]);
    expect(verifyChain(forged, lookup)).toMatchObject({ ok: false, index: 3, field: 'signature' });
    expect(verifyChain([], lookup)).toMatchObject({ ok: false, index: -1 });
  });

  it('refuses non-canonical payload bytes even when correctly signed (the id must be the cid of the signed bytes)', () => {
    const { store, lookup, device } = setup();
    const cid = writeChain(store);
    const envelopes = store.receipts(cid);
    const pretty = new TextEncoder().encode(JSON.stringify(payloadOf(envelopes[0]!), null, 2));
    const altered = [signEnvelope(RECEIPT_PAYLOAD_TYPE, pretty, [device]), ...envelopes.slice(1)];
    expect(verifyChain(altered, lookup)).toMatchObject({ ok: false, index: 0, field: 'payload' });
  });

  it('checks the approver signature embedded in a CONSENT receipt', () => {
    const { store, lookup, keys } = setup();
    const approver = generateKeyPair();
    keys.set(approver.keyid, approver);
    const cid = capsuleId(capsule);
    const decision = { v: CONSENT_VERSION, consent: 'cns_0123456789abcdef01234567', capsule: cid, decision: 'approve', approver: approver.keyid };
    const signed = signEnvelope(CONSENT_PAYLOAD_TYPE, canonicalBytes(decision), [approver]);
    store.transaction(() => {
      store.createCapsule(cid, capsule, 'ASK', 'pending', T0);
      store.appendReceipt(cid, 'INTENT', 'tenant:acme', {}, T0);
      store.appendReceipt(cid, 'RESULT', 'tenant:acme', { verdict: 'ASK' }, T0);
      store.recordKey(cid, approver.keyid, approver.publicKeyPem, 'approver');
      store.appendReceipt(cid, 'CONSENT', `key:${approver.keyid}`, { consent: decision.consent, decision: 'approve', approver: approver.keyid, envelope: signed as never }, T0);
    });
    expect(verifyChain(store.receipts(cid), lookup).ok).toBe(true);
    expect(store.publicKeys(cid).map((k) => k.role).sort()).toEqual(['approver', 'device']);

    // The device claims a rejection the approver never signed.
    const { store: s2, lookup: l2, keys: k2 } = setup();
    k2.set(approver.keyid, approver);
    s2.transaction(() => {
      s2.createCapsule(cid, capsule, 'ASK', 'pending', T0);
      s2.appendReceipt(cid, 'INTENT', 'tenant:acme', {}, T0);
      s2.appendReceipt(cid, 'CONSENT', `key:${approver.keyid}`, { consent: decision.consent, decision: 'reject', approver: approver.keyid, envelope: signed as never }, T0);
    });
    expect(verifyChain(s2.receipts(cid), l2)).toMatchObject({ ok: false, index: 1, field: 'body.decision' });
  });

  it('rolls back every receipt of a transaction that fails, and tells listeners about each stored receipt', () => {
    const { store } = setup();
    const seen: string[] = [];
    const sub = store.onReceipts((written) => seen.push(...written.map((r) => r.id)));
    const cid = capsuleId(capsule);
    expect(() =>
      store.transaction(() => {
        store.createCapsule(cid, capsule, 'ACK', 'decided', T0);
        store.appendReceipt(cid, 'INTENT', 'tenant:acme', {}, T0);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(store.capsule(cid)).toBeUndefined();
    expect(store.receipts(cid)).toEqual([]);
    writeChain(store);
    expect(seen.slice(1)).toEqual(store.receiptIds(cid));
    sub.dispose();
  });

  it('the card shows the chain and, for a ghosting product, PII in evidence as cids (the receipts keep it)', () => {
    const { store, device } = setup();
    const cid = capsuleId(capsule);
    store.transaction(() => {
      store.createCapsule(cid, capsule, 'NACK', 'rejected', T0);
      store.appendReceipt(cid, 'INTENT', 'tenant:acme', { intent: 'event.eval.x' }, T0);
      store.appendReceipt(cid, 'RESULT', 'tenant:acme', { verdict: 'NACK', decision: 'DENY', policies: [{ plugin: 'p', version: '1.0.0', verdict: 'NACK', reason: 'blocked', evidence: { name: 'Ada Lovelace', checked: ['x'] } }] }, T0 + 5);
    });
    const urls = { card_url: `https://device.example/v1/r/${cid}`, bundle_url: `https://device.example/v1/r/${cid}/bundle` };
    const plain = cardData(store, cid, urls)!;
    expect(plain).toMatchObject({ cid, verdict: 'NACK', decision: 'DENY', intent: 'event.eval.x', evidence: [{ evidence: { name: 'Ada Lovelace' } }] });
    expect(plain.receipts.map((r) => [r.kind, r.signer, r.issued_at])).toEqual([
      ['INTENT', device.keyid, new Date(T0).toISOString()],
      ['RESULT', device.keyid, new Date(T0 + 5).toISOString()],
    ]);
    const ghosted = cardData(store, cid, urls, { ghost: true })!;
    expect(ghosted.evidence).toEqual([expect.objectContaining({ evidence: { name: cidOf('Ada Lovelace'), checked: ['x'] } })]);
    const html = renderCardHtml(ghosted);
    expect(html).not.toContain('Ada Lovelace');
    expect(html).toContain(cidOf('Ada Lovelace'));
    expect(html).not.toMatch(/<script/i);
    expect(cardData(store, cidOf('unknown'), urls)).toBeUndefined();
  });

  it('saveManifests stores the manifests of a product once; a rolled-back save does not count as saved', () => {
    const { store } = setup();
    const manifest = (name: string) => ({ role: 'policy' as const, name, version: '1.0.0', cid: cidOf({ name }), manifest: { name, version: '1.0.0' } });
    const [a, b] = [manifest('policy-a'), manifest('policy-b')];
    // Saved inside a transaction that rolls back: the rows go with it, and the next capsule must write them.
    expect(() =>
      store.transaction(() => {
        store.saveManifests([b]);
        throw new Error('rolled back');
      }),
    ).toThrow('rolled back');
    store.saveManifests([a]);
    const cids = [1, 2].map((n) => {
      const c: Capsule = { ...capsule, src: `gw-${n}` };
      const cid = capsuleId(c);
      store.transaction(() => {
        store.createCapsule(cid, c, 'ACK', 'decided', T0);
        store.recordManifests(cid, [a, b]);
        store.appendReceipt(cid, 'INTENT', 'tenant:acme', { n }, T0);
      });
      return cid;
    });
    for (const cid of cids) expect(store.manifests(cid)).toEqual([a, b]);
  });

  it('claims (src, nonce) once', () => {
    const { store } = setup();
    expect(store.seen('gw', 'nonce-001', capsuleId(capsule))).toEqual({ nonce: false, capsule: false });
    expect(store.claimNonce('gw', 'nonce-001', cidOf(1), T0)).toBe(true);
    expect(store.seen('gw', 'nonce-001', capsuleId(capsule))).toEqual({ nonce: true, capsule: false });
    writeChain(store);
    expect(store.seen('gw', 'nonce-002', capsuleId(capsule))).toEqual({ nonce: false, capsule: true });
    expect(store.claimNonce('gw', 'nonce-001', cidOf(2), T0)).toBe(false);
    expect(store.claimNonce('gw2', 'nonce-001', cidOf(2), T0)).toBe(true);
  });

  it('checkBuiltChain passes the chain the store built, and names the receipt and field of each broken rule', () => {
    const { store, device } = setup();
    const cid = writeChain(store);
    const built = store.chain(cid).map((r) => ({ id: r.id, payload: r.payload }));
    const check = (chain: typeof built, device_ = device.keyid) => checkBuiltChain(chain, { capsule: cid, device: device_ });
    const passed = check(built);
    expect(passed).toMatchObject({ ok: true, capsule: cid });
    expect(passed.ok ? passed.receipts.map((r) => r.id) : []).toEqual(built.map((r) => r.id));
    const at = (i: number, change: Partial<ReceiptPayload>) => built.map((r, j) => (j === i ? { id: r.id, payload: { ...r.payload, ...change } } : r));
    expect(check([])).toMatchObject({ ok: false, index: -1 });
    expect(check(at(2, { prev: built[0]!.id }))).toMatchObject({ ok: false, index: 2, field: 'prev' });
    expect(check(at(0, { kind: 'RESULT' }))).toMatchObject({ ok: false, index: 0, field: 'kind' });
    expect(check(at(1, { capsule: cidOf('other') }))).toMatchObject({ ok: false, index: 1, field: 'capsule' });
    expect(check(at(3, { issued_at: '2026-06-01T09:59:59.000Z' }))).toMatchObject({ ok: false, index: 3, field: 'issued_at' });
    expect(check(at(1, { v: 'tessera.receipt/0' as never }))).toMatchObject({ ok: false, index: 1, field: 'v' });
    expect(check(built, cidOf('another device'))).toMatchObject({ ok: false, index: 0, field: 'device' });
    // The same id twice (a receipt appended twice) is refused even when prev links look right.
    const twice = [built[0]!, { id: built[0]!.id, payload: { ...built[1]!.payload, prev: built[0]!.id } }];
    expect(check(twice)).toMatchObject({ ok: false, index: 1, field: 'id' });
  });

  it('upgrades chains and permits written before they were keyed by the capsule body row', () => {
    const path = join(tempDir(), 'tessera.db');
    const device = generateKeyPair();
    const first = openStore({ path });
    const older = createReceiptStore({ store: first, deviceKey: device });
    const cid = writeChain(older);
    const envelopes = older.receipts(cid);
    older.transaction(() => older.recordPermit({ id: cidOf('permit'), capsule: cid, nonce: 'n-1', expires_at: new Date(T0 + 60_000).toISOString(), envelope: envelopes[0]! }, T0));
    // Back to the layout of schema version 2: no body columns, indexes on the capsule cid.
    first.db.exec(`
      DROP INDEX receipt_chain_body; ALTER TABLE receipt_chain DROP COLUMN body; CREATE UNIQUE INDEX receipt_chain_capsule ON receipt_chain (capsule, seq);
      DROP INDEX receipt_permits_body; ALTER TABLE receipt_permits DROP COLUMN body; CREATE UNIQUE INDEX receipt_permits_capsule ON receipt_permits (capsule, id);
      DELETE FROM _migrations WHERE module = 'receipts' AND version = 3;
    `);
    first.close();
    const db = openStore({ path });
    opened.push(db);
    const store = createReceiptStore({ store: db, deviceKey: device });
    expect(db.versions()['receipts']).toBe(3);
    expect(store.receipts(cid)).toEqual(envelopes);
    expect(store.permits(cid).map((p) => [p.id, p.state])).toEqual([[cidOf('permit'), 'issued']]);
    store.transaction(() => store.markPermitEffected(cid, cidOf('permit'), T0 + 1));
    expect(store.permits(cid)[0]!.state).toBe('effected');
    store.transaction(() => store.appendReceipt(cid, 'REDEMPTION', 'tenant:acme', { redeemed: true }, T0 + 5));
    expect(verifyChain(store.receipts(cid), (k) => (k === device.keyid ? { publicKeyRaw: device.publicKeyRaw } : undefined)).ok).toBe(true);
    expect(store.receipts(cid)).toHaveLength(envelopes.length + 1);
    expect(db.integrityCheck()).toEqual(['ok']);
  });
});

describe('an agent proposal\'s chain (issue 17: agents only propose)', () => {
  const proposal = { action: 'journey.skip', args: { journey: 'jny_1', node: 'museum' }, agent_session: 'ags_1', owner: 'traveller' };
  const pid = proposalId(proposal);
  const proposalBody = { proposal: pid, action: proposal.action, args: proposal.args, reason: 'It closes soon.', agent: { session: 'ags_1', type: 'journey-guide' }, owner: 'traveller' };
  const policy = (decision: 'ALLOW' | 'DENY', need = 'traveller') => ({ step: 'policy', verdict: decision === 'ALLOW' ? 'ACK' : 'NACK', decision, policies: [], approval: { need } });
  const approval = (decision: 'approve' | 'reject', roles = ['traveller']) => ({ step: 'approval', via: 'approval', verdict: decision === 'approve' ? 'ACK' : 'NACK', decision: decision === 'approve' ? 'ALLOW' : 'DENY', policies: [], approval: { need: 'traveller', decision, by: 'traveller', roles } });
  const execution = { proposal: pid, executor: 'agent.proposal', effect: 'journey.skip', key: pid, outcome: 'executed', output_cid: cidOf({ ok: true }) };
  type Draft = { kind: ReceiptPayload['kind']; body: Record<string, unknown> };

  /** Writes the drafts as one capsule's chain with the real store and returns the verdict of verifyChain and checkBuiltChain (which must agree). */
  function chainOf(drafts: Draft[]): ReturnType<typeof verifyChain> {
    const { store, lookup, device } = setup();
    const c: Capsule = { ...capsule, act: 'agent.proposal', view: { proposal: pid } };
    const cid = capsuleId(c);
    store.transaction(() => {
      store.createCapsule(cid, c, 'ASK', 'pending', T0);
      store.appendReceipts(cid, drafts.map((d) => ({ kind: d.kind, subject: 'agent-session:ags_1', body: d.body as never })), T0);
    });
    const offline = verifyChain(store.receipts(cid), lookup);
    const built = checkBuiltChain(store.chain(cid).map((r) => ({ id: r.id, payload: r.payload })), { capsule: cid, device: device.keyid });
    expect(built.ok ? { ok: true } : { ok: false, index: built.index, field: built.field }).toEqual(offline.ok ? { ok: true } : { ok: false, index: offline.index, field: offline.field });
    return offline;
  }

  it('verifies PROPOSAL → policy RESULT → approval → EXECUTION, and a refused or rejected proposal that stops there', () => {
    expect(chainOf([{ kind: 'PROPOSAL', body: proposalBody }, { kind: 'RESULT', body: policy('ALLOW') }, { kind: 'RESULT', body: approval('approve') }, { kind: 'EXECUTION', body: execution }]).ok).toBe(true);
    expect(chainOf([{ kind: 'PROPOSAL', body: proposalBody }, { kind: 'RESULT', body: policy('DENY') }]).ok).toBe(true);
    expect(chainOf([{ kind: 'PROPOSAL', body: proposalBody }, { kind: 'RESULT', body: policy('ALLOW') }, { kind: 'RESULT', body: approval('reject') }]).ok).toBe(true);
    // An operator may approve what the traveller may; an action that needs no one executes after the policies.
    expect(chainOf([{ kind: 'PROPOSAL', body: proposalBody }, { kind: 'RESULT', body: policy('ALLOW') }, { kind: 'RESULT', body: approval('approve', ['operator']) }, { kind: 'EXECUTION', body: execution }]).ok).toBe(true);
    expect(chainOf([{ kind: 'PROPOSAL', body: proposalBody }, { kind: 'RESULT', body: policy('ALLOW', 'none') }, { kind: 'EXECUTION', body: execution }]).ok).toBe(true);
  });

  it('refuses an execution without its approval, after a refusal or a rejection, twice, or approved by the wrong role', () => {
    const head: Draft[] = [{ kind: 'PROPOSAL', body: proposalBody }];
    expect(chainOf([...head, { kind: 'RESULT', body: policy('ALLOW') }, { kind: 'EXECUTION', body: execution }])).toMatchObject({ ok: false, index: 2, field: 'kind' });
    expect(chainOf([...head, { kind: 'RESULT', body: policy('DENY') }, { kind: 'RESULT', body: approval('approve') }])).toMatchObject({ ok: false, index: 2, field: 'kind' });
    expect(chainOf([...head, { kind: 'RESULT', body: policy('ALLOW') }, { kind: 'RESULT', body: approval('reject') }, { kind: 'EXECUTION', body: execution }])).toMatchObject({ ok: false, index: 3, field: 'kind' });
    const once: Draft[] = [...head, { kind: 'RESULT', body: policy('ALLOW') }, { kind: 'RESULT', body: approval('approve') }, { kind: 'EXECUTION', body: execution }];
    expect(chainOf([...once, { kind: 'EXECUTION', body: execution }])).toMatchObject({ ok: false, index: 4, field: 'kind' });
    expect(chainOf([...head, { kind: 'RESULT', body: policy('ALLOW', 'operator') }, { kind: 'RESULT', body: { ...approval('approve'), approval: { need: 'operator', decision: 'approve', by: 'traveller', roles: ['traveller'] } } }])).toMatchObject({ ok: false, index: 2, field: 'body.approval.roles' });
    expect(chainOf([...head, { kind: 'RESULT', body: policy('ALLOW') }, { kind: 'RESULT', body: { ...approval('approve'), decision: 'DENY' } }])).toMatchObject({ ok: false, index: 2, field: 'body.decision' });
  });

  it('binds the proposal id to its content, and lets a PROPOSAL only start a chain', () => {
    expect(chainOf([{ kind: 'PROPOSAL', body: { ...proposalBody, args: { journey: 'jny_1', node: 'cathedral' } } }])).toMatchObject({ ok: false, index: 0, field: 'body.proposal' });
    expect(chainOf([{ kind: 'PROPOSAL', body: { ...proposalBody, agent: { session: 'ags_1' } } }])).toMatchObject({ ok: false, index: 0, field: 'body.agent' });
    expect(chainOf([{ kind: 'INTENT', body: {} }, { kind: 'PROPOSAL', body: proposalBody }])).toMatchObject({ ok: false, index: 1, field: 'kind' });
    // The same request is the same proposal: the reason and key order do not count.
    expect(proposalId({ ...proposal, args: { node: 'museum', journey: 'jny_1' } })).toBe(pid);
    expect(proposalId({ ...proposal, owner: 'someone-else' })).not.toBe(pid);
  });
});
