/**
 * The host side of offline bundles (issue 5 §6): gathers one capsule's receipts, keys and manifests from the
 * receipt store, the device log's signed tree head and inclusion proofs, and the QR image of its card URL, then
 * builds the ZIP with the pure core (common/bundle.ts) that every verifier shares.
 */
import { buildBundle, verifyBundle } from '../../common/bundle.js';
import type { BundleKey, BundleVerdict } from '../../common/bundle.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError } from '../../common/errors.js';
import { verifyEd25519 } from '../keys/index.js';
import type { SigningKey } from '../keys/index.js';
import type { DeviceLog } from './device-log.js';
import { qrPng } from './qr-png.js';
import type { ReceiptStore } from './store.js';

export interface BundleSources {
  receipts: ReceiptStore;
  log: DeviceLog;
  /** Signs the bundle's index; the device key that signed the receipts. */
  deviceKey: SigningKey;
  clock?: () => number;
  /**
   * Issue 16: the newest co-signature by the cloud of a head of at least `minSize` (runtime.sync.cosignature). When
   * one covers every receipt of the capsule, the bundle's proofs are against that head and carry it.
   */
  cosignature?: (minSize: number) => { size: number; envelope: DsseEnvelope; witness: { keyid: string; pem: string } } | undefined;
}

/**
 * The offline bundle of capsule `cid`, its card at `cardUrl` (absolute URL, encoded in qr.png).
 *
 * Receipts written before the device log existed are appended to it first (idempotent), so every bundled
 * receipt has an inclusion proof; the proofs are against the log's signed head at its current size — or, once the
 * cloud co-signed a head holding all of them (issue 16), against that head, with the co-signature and witness key.
 *
 * @throws TesseraError CAPSULE_NOT_FOUND for an unknown capsule.
 */
export function capsuleBundle(sources: BundleSources, cid: string, cardUrl: string): Uint8Array {
  const { receipts, log, deviceKey } = sources;
  const record = receipts.capsule(cid);
  if (record === undefined) throw new TesseraError('CAPSULE_NOT_FOUND', `No capsule ${cid} on this device; check the cid (it is the "cid" POST /v1/run answered).`);
  const envelopes = receipts.receipts(cid);
  const ids = receipts.receiptIds(cid);
  for (const id of ids) if (log.indexOf(id) === undefined) log.append(id);
  const minSize = Math.max(...ids.map((id) => log.indexOf(id)!)) + 1;
  const cosigned = sources.cosignature?.(minSize);
  const witnessed = cosigned !== undefined && cosigned.size <= log.size ? cosigned : undefined;
  const { envelope: treeHead, head } = log.signedHead(witnessed?.size);
  const keys: BundleKey[] = receipts.publicKeys(cid).map((k) => ({ keyid: k.keyid, pem: k.publicKeyPem, role: k.role }));
  if (witnessed && !keys.some((k) => k.keyid === witnessed.witness.keyid)) keys.push({ keyid: witnessed.witness.keyid, pem: witnessed.witness.pem, role: 'witness' });
  return buildBundle({
    capsule: record.capsule,
    receipts: envelopes,
    keys,
    manifests: receipts.manifests(cid).map((m) => ({ role: m.role, name: m.name, version: m.version, cid: m.cid, manifest: m.manifest })),
    log: { tree_head: treeHead, proofs: ids.map((id) => log.inclusion(id, head.size)) },
    ...(witnessed ? { cosignature: witnessed.envelope } : {}),
    cardUrl,
    qrPng: qrPng(cardUrl),
    createdAt: new Date((sources.clock ?? Date.now)()).toISOString(),
    signer: deviceKey,
  });
}

/** {@link verifyBundle} with node:crypto's Ed25519 (same verdicts as the pure verifier, several times faster). */
export function verifyBundleOnHost(bytes: Uint8Array): BundleVerdict {
  return verifyBundle(bytes, { verify: verifyEd25519 });
}

/** `tessera-<first 16 hex digits of the capsule cid>.zip`: the file name downloads and the CLI suggest. */
export function bundleFileName(cid: string): string {
  return `tessera-${cid.slice(3, 19)}.zip`;
}
