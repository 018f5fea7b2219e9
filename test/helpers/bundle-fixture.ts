import { join } from 'node:path';
import { cidOf } from '../../main/common/cid.js';
import { canonicalBytes } from '../../main/common/canonical.js';
import { CAPSULE_VERSION, CONSENT_PAYLOAD_TYPE, CONSENT_VERSION, capsuleId } from '../../main/common/receipt.js';
import type { Capsule, JsonObject } from '../../main/common/receipt.js';
import { generateKeyPair, signEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { capsuleBundle } from '../../main/runtime/receipts/bundle.js';
import { createDeviceLog } from '../../main/runtime/receipts/device-log.js';
import type { DeviceLog } from '../../main/runtime/receipts/device-log.js';
import { createReceiptStore } from '../../main/runtime/receipts/store.js';
import type { ReceiptStore } from '../../main/runtime/receipts/store.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';

export interface BundleFixture {
  store: Store;
  receipts: ReceiptStore;
  log: DeviceLog;
  deviceKey: SigningKey;
  capsule: Capsule;
  cid: string;
  cardUrl: string;
  bundle: Uint8Array;
  close(): void;
}

export const PRODUCT_MANIFEST = { name: 'api-receipt-gateway', version: '1.0.0', acts: ['transact'] };
export const POLICY_MANIFEST = { name: 'policy-existence', version: '1.0.0', kind: 'policy', entry: 'index.js', entry_cid: cidOf('code') };

/**
 * A real capsule written through the real receipt store (real SQLite file, device key, DSSE receipts) with the
 * device log listening, plus `others` receipts of other capsules before it so the log is bigger than the chain;
 * then its bundle built by the host code.
 */
/**
 * `consent`: an approver (its own key) approves the capsule: a CONSENT receipt embedding the approver's signed
 * decision, and the approver's key recorded with the capsule, as k-of-n consent writes them.
 */
export function makeBundleFixture(dir: string, options: { others?: number; delivery?: boolean; consent?: boolean } = {}): BundleFixture {
  const store = openStore({ path: join(dir, 'tessera.db') });
  const deviceKey = generateKeyPair();
  const receipts = createReceiptStore({ store, deviceKey });
  const log = createDeviceLog({ store, deviceKey, clock: () => Date.parse('2026-03-04T05:06:07Z') });
  receipts.onReceipts((written) => log.appendMany(written.map((r) => r.id)));
  let t = Date.parse('2026-03-04T05:00:00Z');
  const write = (capsule: Capsule) => {
    const cid = capsuleId(capsule);
    const product = { role: 'product' as const, name: PRODUCT_MANIFEST.name, version: PRODUCT_MANIFEST.version, cid: cidOf(PRODUCT_MANIFEST), manifest: PRODUCT_MANIFEST };
    const policy = { role: 'policy' as const, name: POLICY_MANIFEST.name, version: POLICY_MANIFEST.version, cid: cidOf(POLICY_MANIFEST), manifest: POLICY_MANIFEST };
    receipts.transaction(() => {
      receipts.createCapsule(cid, capsule, 'ACK', 'decided', t);
      receipts.recordManifests(cid, [product, policy]);
      receipts.appendReceipt(cid, 'INTENT', `tenant:${capsule.tenant}`, { intent: 'api-receipt', slots: {}, nonce: `n-${t}`, exp: null, received_at: new Date(t).toISOString(), lock: { [POLICY_MANIFEST.name]: policy.cid } }, t++);
      receipts.appendReceipt(
        cid,
        'RESULT',
        `tenant:${capsule.tenant}`,
        { verdict: 'ACK', decision: 'ALLOW', policies: [{ plugin: POLICY_MANIFEST.name, version: POLICY_MANIFEST.version, cid: policy.cid, verdict: 'ACK', reason: 'all present', evidence: {} }] },
        t++,
      );
      if (options.consent && capsule.view['ctx'] !== undefined && (capsule.view['ctx'] as { path?: string }).path === '/v1/payments/1') {
        const approver = generateKeyPair();
        const decision = { v: CONSENT_VERSION, consent: 'consent-1', capsule: cid, decision: 'approve' as const, approver: approver.keyid };
        const envelope = signEnvelope(CONSENT_PAYLOAD_TYPE, canonicalBytes(decision), [approver]);
        receipts.recordKey(cid, approver.keyid, approver.publicKeyPem, 'approver');
        receipts.appendReceipt(cid, 'CONSENT', `key:${approver.keyid}`, { consent: 'consent-1', decision: 'approve', approver: approver.keyid, envelope: envelope as unknown as JsonObject }, t++);
      }
      if (options.delivery) receipts.appendReceipt(cid, 'DELIVERY', 'outbox', { permit_id: cidOf('permit'), recipient: 'https://example.org/hook', effect: 'webhook', payload_cid: cidOf('payload') }, t++);
    });
    return cid;
  };
  const base = (i: number): Capsule => ({
    v: CAPSULE_VERSION,
    product: cidOf(PRODUCT_MANIFEST),
    act: 'transact',
    tenant: 'acme',
    aud: 'tenant-xyz',
    src: 'svc',
    view: { intent: { kind: 'EVAL', name: 'api-receipt' }, ctx: { method: 'POST', path: `/v1/payments/${i}` }, meta: { tenant: 'acme', app: 'gw', user: 'svc' } },
  });
  for (let i = 0; i < (options.others ?? 3); i++) write(base(1000 + i));
  const capsule = base(1);
  const cid = write(capsule);
  const cardUrl = `http://127.0.0.1:7420/v1/r/${cid}`;
  const bundle = capsuleBundle({ receipts, log, deviceKey, clock: () => Date.parse('2026-03-04T06:00:00Z') }, cid, cardUrl);
  return { store, receipts, log, deviceKey, capsule, cid, cardUrl, bundle, close: () => store.close() };
}

/**
 * A copy of a ZIP with one byte of the named entry's stored bytes XORed with `mask` (the entry is found by its
 * local header). The CRCs are left alone, so a verifier must notice.
 */
export function flipInside(bytes: Uint8Array, name: string, offsetInFile: number, mask: number): Uint8Array {
  const needle = new TextEncoder().encode(name);
  const copy = bytes.slice();
  for (let i = 0; i + 30 + needle.length < copy.length; i++) {
    if (copy[i] === 0x50 && copy[i + 1] === 0x4b && copy[i + 2] === 0x03 && copy[i + 3] === 0x04 && needle.every((b, j) => copy[i + 30 + j] === b)) {
      const start = i + 30 + needle.length + (copy[i + 28]! | (copy[i + 29]! << 8));
      copy[start + offsetInFile] = copy[start + offsetInFile]! ^ mask;
      return copy;
    }
  }
  throw new Error(`no entry ${name}`);
}
