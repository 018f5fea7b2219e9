/**
 * The sync protocol between a device and the Tessera cloud (issue 16; DESIGN.md "Formats → Sync"): what travels,
 * what is signed, and the bytes a device signs to authenticate a request. Pure module: shared by the runtime's sync
 * module (main/runtime/sync), the cloud server (main/cloud) and the renderer. No node: imports.
 *
 * ## Identities and keys
 * - A **tenant** has one Ed25519 **cloud key**. It signs device certificates, leases, co-signatures of device tree
 *   heads (the cloud is a witness), double-spend proofs, and the entitlement tokens issued in the cloud.
 * - A **device** is its device key (`keyid` = cid of the raw public key, as everywhere). It enrolls once with a
 *   one-time code and gets a {@link DeviceCertificate}; every later request is signed with the device key
 *   ({@link requestSigningBytes}), so there is no bearer secret to steal from a kiosk's disk besides the key itself.
 *
 * ## Routes of the cloud (all JSON, errors in the one shape `{"error":{"code","message"}}`)
 * Admin (`Authorization: Bearer <tenant admin token>`; `root` = the cloud's own operator token):
 * - `POST /v1/tenants` (root) `{id, name}` → `{tenant, admin_token, cloud_key: {keyid, pem}}`
 * - `POST /v1/enrollment-codes` `{role, name?, venue?, ttl_s?}` → `{code, role, expires_at}`
 * - `GET  /v1/devices` → `{devices: DeviceSummary[]}`; `POST /v1/devices/:device/revoke` `{reason}`
 * - `POST /v1/products` `ProductProtection` → the stored protection (a change for every device)
 * - `POST /v1/entitlements` {@link CloudIssueRequest} → `{serial, code}` (a TS1 token signed by the cloud key)
 * - `POST /v1/entitlements/:serial/revoke` `{reason}`
 * - `POST /v1/leases` `{serial, device, rights, ttl_s?}` (assign ahead of time) → `{lease: DsseEnvelope}`
 * - `POST /v1/leases/move` `{serial, from, to, rights}` → `{recall: lease_id}` (rights reach `to` once `from` returned them)
 * - `GET  /v1/conflicts` → `{conflicts: DoubleSpendProof-summaries}`; `GET /v1/alerts` → `{alerts}`
 * - `GET  /v1/receipts/:id/inclusion` (admin, or a device of the tenant) → {@link CloudInclusion}
 * Device (signed request headers, {@link DEVICE_HEADERS}):
 * - `POST /v1/enroll/challenge` (public) `{code}` → `{challenge, expires_at}`
 * - `POST /v1/enroll` (public) {@link EnrollRequest} → {@link EnrollResponse}
 * - `GET  /v1/sync/head` → {@link AcceptedHead}
 * - `POST /v1/sync/receipts` {@link ReceiptUpload} → {@link AcceptedHead}
 * - `GET  /v1/sync/pull?checkpoint=N&limit=M` → {@link PullResponse}
 * - `POST /v1/leases/grant` `{serial, rights}` → `{lease: DsseEnvelope}` (a grant while online)
 * - `POST /v1/leases/return` {@link LeaseReturn} → `{returned: number}` (unused rights back to the pool)
 */
import type { DsseEnvelope } from './dsse.js';
import type { EntitlementKind } from './entitlement-token.js';

/** DSSE payloadType of a {@link DeviceCertificate}. */
export const DEVICE_CERT_PAYLOAD_TYPE = 'application/vnd.tessera.device-cert+json';
export const DEVICE_CERT_VERSION = 'tessera.device-cert/1';
/** DSSE payloadType of a {@link Lease}. */
export const LEASE_PAYLOAD_TYPE = 'application/vnd.tessera.lease+json';
export const LEASE_VERSION = 'tessera.lease/1';
/** DSSE payloadType of a {@link Cosignature}. */
export const COSIGNATURE_PAYLOAD_TYPE = 'application/vnd.tessera.cosignature+json';
export const COSIGNATURE_VERSION = 'tessera.cosignature/1';
/** DSSE payloadType of a {@link DoubleSpendProof}. */
export const DOUBLE_SPEND_PAYLOAD_TYPE = 'application/vnd.tessera.double-spend+json';
export const DOUBLE_SPEND_VERSION = 'tessera.double-spend/1';

/** What a device is enrolled as. A kiosk sells and guides, a redeemer redeems, a gateway relays for a site. */
export const DEVICE_ROLES = ['kiosk', 'redeemer', 'gateway'] as const;
export type DeviceRole = (typeof DEVICE_ROLES)[number];

/**
 * How an entitlement's rights are protected against being used twice by devices that are offline (issue 16 §5):
 * - `prevent`: rights are partitioned as signed, expiring leases; a device redeems offline only within its lease.
 * - `bound`: like prevent, plus up to `bound` redemptions beyond the lease per device, shown to staff as risk.
 * - `detect`: accept; overspends are found at sync and become double-spend proofs.
 */
export const PROTECTIONS = ['prevent', 'bound', 'detect'] as const;
export type Protection = (typeof PROTECTIONS)[number];

/** The sync settings of a product (a ProductDef cid), set by an operator in the cloud and pulled by devices. */
export interface ProductProtection {
  product_cid: string;
  protection: Protection;
  /** `bound` only: redemptions a device may make beyond its lease while offline. */
  bound?: number;
  /**
   * Freshness bound of the deny list for this product, seconds: a device whose last complete pull is older fails
   * closed for the product (verdict DENY_LIST_STALE) and says why on the Redeem screen.
   */
  deny_max_age_s: number;
}

/** Signed by the tenant's cloud key at enrollment: device `device` (its key) belongs to `tenant` as `role`. */
export interface DeviceCertificate {
  v: typeof DEVICE_CERT_VERSION;
  tenant: string;
  /** keyid of the device key. */
  device: string;
  /** SPKI PEM of the device key. */
  public_key: string;
  role: DeviceRole;
  name: string;
  venue?: string;
  issued_at: string;
  /** keyid of the cloud key that signs. */
  issuer: string;
}

/** One device as operators see it (`GET /v1/devices`). */
export interface DeviceSummary {
  device: string;
  name: string;
  role: DeviceRole;
  venue: string | null;
  enrolled_at: string;
  /** The last signed request the cloud accepted from it, or null. */
  last_seen_at: string | null;
  revoked_at: string | null;
  revoked_reason: string | null;
  /** The last head of its log the cloud accepted (and co-signed), or null before its first upload. */
  log: { size: number; root: string; accepted_at: string } | null;
  /** Seconds since that head was accepted (how stale the cloud's copy may be), or null before the first upload. */
  lag_s: number | null;
}

/** Headers of a device-signed request. */
export const DEVICE_HEADERS = {
  /** keyid of the device key. */
  device: 'tessera-device',
  /** ISO-8601 time the request was signed; the cloud refuses one more than {@link REQUEST_SKEW_S} away from its clock. */
  time: 'tessera-time',
  /** base64 Ed25519 signature over {@link requestSigningBytes}. */
  signature: 'tessera-signature',
} as const;

/** How far a signed request's time may be from the cloud's clock, seconds. */
export const REQUEST_SKEW_S = 300;

/**
 * The bytes a device signs for a request: `tessera-request/1 LF METHOD LF path-with-query LF time LF body-sha256-hex`
 * (the hex SHA-256 of the exact body bytes sent; of the empty string for a request without a body).
 */
export function requestSigningBytes(method: string, pathWithQuery: string, time: string, bodySha256Hex: string): Uint8Array {
  return new TextEncoder().encode(`tessera-request/1\n${method.toUpperCase()}\n${pathWithQuery}\n${time}\n${bodySha256Hex}`);
}

/** The bytes a device signs to prove it holds its key at enrollment. */
export function enrollSigningBytes(code: string, challenge: string): Uint8Array {
  return new TextEncoder().encode(`tessera-enroll/1\n${code}\n${challenge}`);
}

export interface EnrollRequest {
  code: string;
  challenge: string;
  /** SPKI PEM of the device key. */
  public_key: string;
  /** base64 Ed25519 signature over {@link enrollSigningBytes}. */
  signature: string;
  /** What the device calls itself (shown to operators); defaults to the code's name. */
  name?: string;
}

export interface EnrollResponse {
  tenant: string;
  device: string;
  role: DeviceRole;
  venue?: string;
  certificate: DsseEnvelope;
  cloud_key: { keyid: string; pem: string };
}

/**
 * One upload of receipts: the device's log leaves `from … from+receipts.length−1`, in log order, with the device's
 * signed tree head at `from + receipts.length` and a consistency proof (hex hashes) from the cloud's last accepted
 * size (`from`) to that head. `from` must equal the size the cloud accepted last (else LOG_GAP, with that size in
 * `details.accepted_size`, so the device resumes there). At most {@link MAX_UPLOAD_RECEIPTS} receipts.
 */
export interface ReceiptUpload {
  from: number;
  receipts: DsseEnvelope[];
  head: DsseEnvelope;
  consistency: string[];
}

export const MAX_UPLOAD_RECEIPTS = 2000;

/** The cloud's view of a device log: the last head it accepted, co-signed. size 0 and nulls before the first upload. */
export interface AcceptedHead {
  size: number;
  root: string | null;
  cosignature: DsseEnvelope | null;
}

/** The cloud's witness statement: it saw device `log`'s head of `size` with `root`, consistent with all before. */
export interface Cosignature {
  v: typeof COSIGNATURE_VERSION;
  log: string;
  size: number;
  root: string;
  tenant: string;
  /** keyid of the cloud key that signs. */
  witness: string;
  witnessed_at: string;
}

/** An inclusion proof from the cloud: the receipt is leaf `index` of device `log`'s co-signed head. */
export interface CloudInclusion {
  receipt: string;
  log: string;
  index: number;
  size: number;
  leaf_hash: string;
  path: string[];
  root: string;
  cosignature: DsseEnvelope;
}

/** A right to redeem offline: device `device` may use up to `rights` of entitlement `serial` between nbf and exp. */
export interface Lease {
  v: typeof LEASE_VERSION;
  lease: string;
  tenant: string;
  device: string;
  serial: string;
  product_cid: string;
  /** Uses (single_use, multi_use) or minor units (stored_value). */
  rights: number;
  nbf: string;
  exp: string;
  issued_at: string;
  issuer: string;
}

/** A device gives back what it did not use of a lease (it redeems with it no more). */
export interface LeaseReturn {
  lease: string;
  /** Rights the device used under the lease (its REDEMPTION receipts name the lease). */
  used: number;
  /** The device's log size after the last redemption under the lease: the cloud checks it accepted that much. */
  log_size: number;
}

/** An entitlement issued in the cloud, as devices pull it. */
export interface CloudEntitlement {
  serial: string;
  product_cid: string;
  kind: EntitlementKind;
  rights?: number;
  currency?: string;
  valid_from: string;
  valid_until: string;
  venues: string[];
  /** The TS1 token (what the traveller's QR holds). */
  code: string;
}

export interface CloudIssueRequest {
  product_cid: string;
  kind: EntitlementKind;
  uses?: number;
  amount?: number;
  currency?: string;
  uses_per_venue?: number;
  valid_from: string;
  valid_until: string;
  venues: string[];
  /** Leases granted at issue (venue assignment ahead of time). */
  leases?: Array<{ device: string; rights: number; ttl_s?: number }>;
}

/** One entry of a device's pull feed; `seq` orders the tenant's feed and is the checkpoint. */
export type SyncChange =
  | { seq: number; type: 'product'; product: ProductProtection }
  | { seq: number; type: 'entitlement'; entitlement: CloudEntitlement }
  | { seq: number; type: 'revocation'; serial: string; reason: string; at: string }
  | { seq: number; type: 'lease'; lease: DsseEnvelope }
  | { seq: number; type: 'lease_recall'; lease: string; reason: string }
  /** A key devices of the tenant accept as an entitlement issuer: the cloud key, and each enrolled kiosk's key. */
  | { seq: number; type: 'issuer'; keyid: string; pem: string; name: string }
  | { seq: number; type: 'device_revoked'; device: string; reason: string; at: string };

export interface PullResponse {
  changes: SyncChange[];
  /** Pass it back as `checkpoint` to resume after the last change here. */
  checkpoint: number;
  /** More changes wait: pull again at once. */
  more: boolean;
  /** The cloud's clock when it answered: a complete pull (`more: false`) makes the deny list fresh as of this time. */
  server_time: string;
}

/** One redemption as evidence: the device's own signed REDEMPTION receipt. */
export interface SpendEvidence {
  device: string;
  receipt_id: string;
  receipt: DsseEnvelope;
  issued_at: string;
  /** Rights it used (1, or the amount of a stored-value redemption). */
  amount: number;
}

/**
 * Signed by the tenant's cloud key when the redemptions of `serial` across devices exceed its `rights`. The
 * adjudication is deterministic: redemptions in order of (`issued_at`, `receipt_id`) are honoured while their sum
 * stays within `rights`; the rest are `over`. Anyone can recompute it from `evidence`.
 */
export interface DoubleSpendProof {
  v: typeof DOUBLE_SPEND_VERSION;
  tenant: string;
  serial: string;
  product_cid: string;
  rights: number;
  used: number;
  evidence: SpendEvidence[];
  adjudication: { rule: 'earliest-first'; honoured: string[]; over: string[] };
  issuer: string;
  issued_at: string;
}

/** Deterministic adjudication of {@link DoubleSpendProof}: pure, so every verifier recomputes the same answer. */
export function adjudicate(rights: number, evidence: readonly Pick<SpendEvidence, 'receipt_id' | 'issued_at' | 'amount'>[]): { honoured: string[]; over: string[]; used: number } {
  const ordered = [...evidence].sort((a, b) => (a.issued_at < b.issued_at ? -1 : a.issued_at > b.issued_at ? 1 : a.receipt_id < b.receipt_id ? -1 : a.receipt_id > b.receipt_id ? 1 : 0));
  const honoured: string[] = [];
  const over: string[] = [];
  let used = 0;
  let sum = 0;
  for (const e of ordered) {
    used += e.amount;
    if (sum + e.amount <= rights) {
      sum += e.amount;
      honoured.push(e.receipt_id);
    } else {
      over.push(e.receipt_id);
    }
  }
  return { honoured, over, used };
}

/** What the device's sync module reports (`GET /api/sync`, `tessera sync status`, the status bar). */
export interface SyncStatus {
  /** Enrolled with a cloud: its URL, tenant and this device's role; null before enrollment. */
  cloud: { url: string; tenant: string; role: DeviceRole; device: string } | null;
  state: 'not_enrolled' | 'online' | 'offline' | 'syncing' | 'refused';
  /** When the last sync round completed (ISO), or null. */
  last_sync: string | null;
  /** The last failure, said for a person, or null. */
  last_error: { code: string; message: string; at: string } | null;
  /** Receipts in the device log the cloud has not accepted yet. */
  pending_uploads: number;
  /** The cloud's accepted size of this device's log. */
  accepted_size: number;
  /** When the next attempt is due (ISO), or null while one runs or before enrollment. */
  next_attempt: string | null;
  /** When the deny list was last complete (the cloud's time of the last complete pull), or null. */
  deny_list_as_of: string | null;
  leases: LeaseBalance[];
}

export interface LeaseBalance {
  lease: string;
  serial: string;
  product_cid: string;
  title?: string;
  rights: number;
  used: number;
  left: number;
  exp: string;
  state: 'active' | 'expired' | 'returned' | 'recalled';
}
