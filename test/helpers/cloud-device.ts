/**
 * Test devices for the cloud (issue 16): a real device log (SQLite store + runtime/receipts/device-log.ts) of receipt
 * chains signed by a device key, the uploads a device sends (common/cloud.ts ReceiptUpload), device-signed requests
 * (common/cloud.ts requestSigningBytes), and tenant/device rows inserted straight into the cloud's database.
 * Not a second sync client: the device side lives in main/runtime/sync.
 */
import { join } from 'node:path';
import { DEVICE_HEADERS, requestSigningBytes } from '../../main/common/cloud.js';
import type { ReceiptUpload } from '../../main/common/cloud.js';
import { cidOfBytes } from '../../main/common/cid.js';
import { toBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { RECEIPT_PAYLOAD_TYPE } from '../../main/common/receipt.js';
import type { ReceiptKind } from '../../main/common/receipt.js';
import { sha256Hex } from '../../main/cloud/app.js';
import type { Sql } from '../../main/cloud/db.js';
import { generateKeyPair, privateKeyPem, signEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createDeviceLog } from '../../main/runtime/receipts/device-log.js';
import type { DeviceLog } from '../../main/runtime/receipts/device-log.js';
import { buildReceipts } from '../../main/runtime/receipts/store.js';
import { openStore } from '../../main/runtime/store/index.js';

export interface TestDevice {
  key: SigningKey;
  log: DeviceLog;
  /** Receipt envelopes by leaf index. */
  envelopes: DsseEnvelope[];
  ids: string[];
  /**
   * Issues `count` receipts: chains of `chain` receipts (INTENT, then RESULTs), two capsules interleaved, each
   * receipt appended to the device log as the runtime does.
   */
  add(count: number): void;
  /** Appends already-signed receipts (crafted by a test) to the log as they are. */
  addSigned(envelopes: readonly DsseEnvelope[], ids: readonly string[]): void;
  /** The upload of leaves `from … to−1` (default: to the end) with the signed head at `to` and the consistency proof. */
  upload(from: number, to?: number): ReceiptUpload;
  close(): void;
}

/** A device with its own SQLite log in `dir`; `key` shared lets a test build a forked log of the same device. */
export function createTestDevice(dir: string, options: { key?: SigningKey; chain?: number; clock?: () => number } = {}): TestDevice {
  const key = options.key ?? generateKeyPair();
  const chain = options.chain ?? 3;
  const clock = options.clock ?? Date.now;
  const store = openStore({ path: join(dir, `device-${Math.random().toString(36).slice(2)}.db`) });
  const log = createDeviceLog({ store, deviceKey: key, clock });
  const envelopes: DsseEnvelope[] = [];
  const ids: string[] = [];
  const open: Array<{ cid: string; prev: string | null; left: number }> = [];
  let capsules = 0;
  const device: TestDevice = {
    key,
    log,
    envelopes,
    ids,
    add(count) {
      const newIds: string[] = [];
      for (let k = 0; k < count; k++) {
        if (open.length < 2) open.push({ cid: cidOfBytes(new TextEncoder().encode(`capsule ${key.keyid} ${capsules++} ${Math.random()}`)), prev: null, left: chain });
        const c = open[k % open.length]!;
        const kind: ReceiptKind = c.prev === null ? 'INTENT' : 'RESULT';
        const [built] = buildReceipts(c.cid, c.prev, [{ kind, subject: 'tenant:test', body: { n: ids.length + newIds.length } }], clock(), key.keyid);
        envelopes.push(signEnvelope(RECEIPT_PAYLOAD_TYPE, built!.bytes, [key]));
        newIds.push(built!.id);
        c.prev = built!.id;
        if (--c.left === 0) open.splice(open.indexOf(c), 1);
      }
      ids.push(...newIds);
      log.appendNew(newIds);
    },
    addSigned(signed, signedIds) {
      envelopes.push(...signed);
      ids.push(...signedIds);
      log.appendNew(signedIds);
    },
    upload(from, to = ids.length) {
      return { from, receipts: envelopes.slice(from, to), head: log.signedHead(to).envelope, consistency: log.consistency(from, to).proof };
    },
    close: () => store.close(),
  };
  return device;
}

/** Inserts a tenant (with a fresh cloud key) and, for each device key, an enrolled device row. Returns the admin token. */
export async function insertTenant(sql: Sql, tenant: string, devices: readonly SigningKey[] = []): Promise<{ adminToken: string; cloudKey: SigningKey }> {
  const cloudKey = generateKeyPair();
  await sql.query('INSERT INTO tenants (id, name, cloud_keyid, cloud_key_pem, cloud_private_pem) VALUES ($1, $2, $3, $4, $5)', [tenant, tenant, cloudKey.keyid, cloudKey.publicKeyPem, privateKeyPem(cloudKey)]);
  const adminToken = `adm_${tenant}_${Math.random().toString(36).slice(2)}`;
  await sql.query('INSERT INTO admin_tokens (token_sha256, tenant) VALUES ($1, $2)', [sha256Hex(adminToken), tenant]);
  for (const [i, key] of devices.entries()) await insertDevice(sql, tenant, key, `device ${i}`);
  return { adminToken, cloudKey };
}

export async function insertDevice(sql: Sql, tenant: string, key: SigningKey, name: string, role = 'redeemer'): Promise<void> {
  await sql.query('INSERT INTO devices (tenant, device, public_key_pem, role, name, certificate) VALUES ($1, $2, $3, $4, $5, $6::jsonb)', [tenant, key.keyid, key.publicKeyPem, role, name, '{}']);
}

/** Headers (and the exact body text) of a request signed by a device key. */
export function signedRequest(key: SigningKey, method: string, pathWithQuery: string, body?: unknown, time = new Date().toISOString()): { headers: Record<string, string>; payload: string | undefined } {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const signature = key.sign(requestSigningBytes(method, pathWithQuery, time, sha256Hex(payload ?? '')));
  return {
    headers: { [DEVICE_HEADERS.device]: key.keyid, [DEVICE_HEADERS.time]: time, [DEVICE_HEADERS.signature]: toBase64(signature), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    payload,
  };
}
