/**
 * The device side of the cloud (issue 16 §2–§6; protocol in common/cloud.ts): enrollment, the sync loop, leases and
 * the redeem guard. Owns the `sync_*` tables (./state.ts).
 *
 * ## One round (`now()` or the timer)
 * 1. **Upload**: ask the cloud's accepted size of this device's log (`GET /v1/sync/head`), then send the receipts
 *    after it in log order, ≤ {@link UPLOAD_BATCH} a request, each with the device's signed head at the new size and
 *    the consistency proof from the accepted size. The cloud's co-signature of each accepted head is kept (bundles
 *    carry it). LOG_GAP (the cloud accepted another size than we thought — a lost answer) resumes at its size.
 * 2. **Pull**: `GET /v1/sync/pull?checkpoint` until `more` is false; each page is applied and its checkpoint stored
 *    in one SQLite transaction, so a crash mid-pull resumes at the last page applied. A complete pull makes the deny
 *    list fresh as of the cloud's `server_time`.
 * 3. **Leases back**: leases expired or recalled are returned with what was used of them (after the upload, so the
 *    cloud already holds every redemption made under them).
 *
 * Failures never reach the runtime: a round that fails schedules the next one with full-jitter exponential backoff
 * (1 s … 5 min); a successful round waits {@link SyncOptions.intervalMs} (`TESSERA_SYNC_INTERVAL_MS`, default 30 s).
 * Work is done in batches with a turn of the event loop between them, so neither HTTP nor the UI wait on sync.
 *
 * ## Events
 * `sync.enrolled`, `sync.online`, `sync.offline` (on each change of reachability), `sync.uploaded` (per batch),
 * `sync.pulled` (per round with changes), `sync.failed` (per failed round), `sync.refused` (the cloud refused this
 * device or its log: DEVICE_REVOKED, DEVICE_UNKNOWN, LOG_FORKED, RECEIPT_INVALID — retried only at the interval),
 * `sync.lease.granted`, `sync.lease.returned`.
 */
import { COSIGNATURE_PAYLOAD_TYPE, DEVICE_CERT_PAYLOAD_TYPE, LEASE_PAYLOAD_TYPE, enrollSigningBytes } from '../../common/cloud.js';
import type { AcceptedHead, Cosignature, DeviceCertificate, EnrollResponse, Lease, PullResponse, SyncChange, SyncStatus } from '../../common/cloud.js';
import { fromBase64, toBase64 } from '../../common/dsse.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import type { ErrorCode } from '../../common/errors.js';
import type { TokenClaims } from '../../common/entitlement-token.js';
import type { Bus } from '../bus/index.js';
import type { Entitlements, RedeemGuard } from '../entitlements/index.js';
import { readPublicKey, verifyEnvelope } from '../keys/index.js';
import type { SigningKey } from '../keys/index.js';
import type { Disposable } from '../lifecycle/index.js';
import type { Logger } from '../log/index.js';
import type { DeviceLog } from '../receipts/device-log.js';
import type { ReceiptStore } from '../receipts/store.js';
import type { Store } from '../store/index.js';
import type { TrustStore } from '../trust/index.js';
import { backoffDelay, createCloudClient } from './client.js';
import type { CloudClient } from './client.js';
import { openSyncState } from './state.js';
import type { Enrollment, SyncState } from './state.js';

export { backoffDelay, createCloudClient } from './client.js';
export type { CloudClient } from './client.js';
export type { Enrollment } from './state.js';

/** Receipts per upload request. */
export const UPLOAD_BATCH = 500;
/** Changes per pull request. */
export const PULL_LIMIT = 500;
/** How long a redemption waits for an online grant before the guard decides offline. */
export const GRANT_TIMEOUT_MS = 1_500;
export const DEFAULT_SYNC_INTERVAL_MS = 30_000;

/** Codes that mean the cloud refuses this device or its log: no fast retry, the operator must look. */
const REFUSALS: ReadonlySet<ErrorCode> = new Set(['DEVICE_REVOKED', 'DEVICE_UNKNOWN', 'LOG_FORKED', 'RECEIPT_INVALID']);

export interface Sync extends Disposable {
  status(): SyncStatus;
  /**
   * Enrolls this device with a cloud: challenge → signature by the device key → certificate. Trusts the cloud key as
   * an entitlement issuer (`<data>/issuers`), then starts syncing.
   * @throws TesseraError VALIDATION_FAILED when already enrolled or the answer does not verify; the cloud's codes
   *   (ENROLLMENT_INVALID…); CLOUD_UNREACHABLE.
   */
  enroll(req: { cloud: string; code: string; name?: string }): Promise<SyncStatus>;
  /** Runs a round now (waits for one in flight first) and answers the status after it. @throws TesseraError NOT_ENROLLED. */
  now(): Promise<SyncStatus>;
  /** Starts the timer (a first round soon after). Called once the runtime is composed. */
  start(): void;
  /** The redeem guard the entitlements module calls (leases, bound, deny-list freshness). */
  readonly guard: RedeemGuard;
  /** The newest co-signature of a head of at least `minSize`, with the witness key, for bundles. */
  cosignature(minSize: number): { size: number; envelope: DsseEnvelope; witness: { keyid: string; pem: string } } | undefined;
}

export interface SyncOptions {
  store: Store;
  bus: Pick<Bus, 'publish'>;
  logger: Logger;
  deviceKey: SigningKey;
  deviceLog: DeviceLog;
  receipts: Pick<ReceiptStore, 'envelopesOf'>;
  /** `<data>/issuers`: the cloud key and kiosks' keys are trusted here, revoked devices revoked. */
  issuers: TrustStore;
  /** Late-bound (created after the guard it is given): revocations pulled from the cloud are applied through it. */
  entitlements: () => Entitlements | undefined;
  clock?: () => number;
  /** Between successful rounds; default `TESSERA_SYNC_INTERVAL_MS` or 30 s. */
  intervalMs?: number;
  random?: () => number;
  fetch?: typeof fetch;
  grantTimeoutMs?: number;
  /** A product's title for staff (the catalogue's), shown with the lease balances; none: the pass serial is shown. */
  productTitle?: (productCid: string) => string | undefined;
}

type Phase = 'online' | 'offline' | 'refused';

export function createSync(options: SyncOptions): Sync {
  const { store, bus, logger, deviceKey, deviceLog, receipts, issuers } = options;
  const clock = options.clock ?? Date.now;
  const random = options.random ?? Math.random;
  const intervalMs = options.intervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
  const grantTimeoutMs = options.grantTimeoutMs ?? GRANT_TIMEOUT_MS;
  const state: SyncState = openSyncState(store);
  let client: CloudClient | undefined;
  let phase: Phase | undefined;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let nextAt: number | null = null;
  let running: Promise<void> | null = null;
  let started = false;
  let disposed = false;
  const stopping = new AbortController();
  const iso = (ms: number) => new Date(ms).toISOString();

  const clientOf = (e: Enrollment): CloudClient => {
    if (!client || client.url !== e.url.replace(/\/+$/, '')) client = createCloudClient({ url: e.url, deviceKey, clock, signal: stopping.signal, ...(options.fetch ? { fetch: options.fetch } : {}) });
    return client;
  };
  const publish = (topic: string, payload: unknown) => {
    try {
      bus.publish(topic, payload);
    } catch (err) {
      logger.warn('could not journal a sync event', { topic, error: err });
    }
  };
  const setPhase = (next: Phase, why?: { code: string; message: string }) => {
    const was = phase;
    phase = next;
    if (was === next) return;
    if (next === 'online') publish('sync.online', { cloud: state.enrollment()?.url });
    else if (next === 'offline') publish('sync.offline', { cloud: state.enrollment()?.url, ...(why ? { code: why.code, message: why.message } : {}) });
  };

  // ---------------------------------------------------------------- verifying what the cloud signs

  const cloudLookup = (e: Enrollment) => {
    const key = readPublicKey(e.cloud_key.pem);
    return (keyid: string) => (keyid === key.keyid ? { publicKeyRaw: key.publicKeyRaw } : undefined);
  };
  /** The payload of an envelope signed by the tenant's cloud key, of the type expected. @throws TesseraError SIGNATURE_INVALID. */
  const cloudSigned = <T>(e: Enrollment, envelope: DsseEnvelope, payloadType: string): T => {
    if (envelope?.payloadType !== payloadType) throw new TesseraError('SIGNATURE_INVALID', `Expected a ${payloadType} envelope from the cloud.`);
    verifyEnvelope(envelope, cloudLookup(e));
    return JSON.parse(new TextDecoder().decode(fromBase64(envelope.payload))) as T;
  };
  /** Verifies a lease for this device and keeps it; true when it is new. */
  const acceptLease = (e: Enrollment, envelope: DsseEnvelope): Lease | undefined => {
    const lease = cloudSigned<Lease>(e, envelope, LEASE_PAYLOAD_TYPE);
    if (lease.device !== deviceKey.keyid || lease.tenant !== e.tenant) {
      logger.warn('a lease for another device or tenant was ignored', { lease: lease.lease, device: lease.device });
      return undefined;
    }
    return state.addLease(lease, envelope) ? lease : undefined;
  };

  // ---------------------------------------------------------------- applying pulled changes

  const trustIssuer = (pem: string, name: string) => {
    const key = readPublicKey(pem);
    if (key.keyid === deviceKey.keyid) return;
    try {
      issuers.add(pem, name);
    } catch (err) {
      // Another key holds that name: trust it under its keyid's name instead.
      if (isTesseraError(err) && err.code === 'VALIDATION_FAILED') issuers.add(pem);
      else throw err;
    }
  };
  const apply = (e: Enrollment, change: SyncChange, granted: Lease[], recalled: string[]) => {
    switch (change.type) {
      case 'product':
        state.putProduct(change.product);
        return;
      case 'entitlement':
        state.putEntitlement(change.entitlement.serial, change.entitlement);
        return;
      case 'revocation':
        if (/^[0-9a-f]{24}$/.test(change.serial)) options.entitlements()?.revoke(change.serial, change.reason || 'revoked in the cloud');
        return;
      case 'lease': {
        const lease = acceptLease(e, change.lease);
        if (lease) granted.push(lease);
        return;
      }
      case 'lease_recall':
        if (state.recall(change.lease)) recalled.push(change.lease);
        return;
      case 'issuer':
        trustIssuer(change.pem, change.name);
        return;
      case 'device_revoked':
        if (change.device !== deviceKey.keyid) issuers.revoke(change.device, change.reason || 'device revoked in the cloud');
        return;
      default:
        logger.debug('an unknown change type was skipped', { change });
    }
  };

  // ---------------------------------------------------------------- one round

  const upload = async (e: Enrollment, c: CloudClient): Promise<void> => {
    let accepted = (await c.signed<AcceptedHead>('GET', '/v1/sync/head')).size;
    state.set('accepted_size', accepted);
    for (let gaps = 0; ; ) {
      const size = deviceLog.size;
      if (accepted > size) throw new TesseraError('LOG_FORKED', `The cloud holds ${accepted} receipts of this device's log, but the device holds only ${size}: its database was replaced or restored from an old copy. The operator must look at it.`);
      if (accepted === size) return;
      const to = Math.min(size, accepted + UPLOAD_BATCH);
      const ids = deviceLog.receiptIds(accepted, to);
      const envelopes = receipts.envelopesOf(ids);
      const missing = envelopes.findIndex((x) => x === undefined);
      if (missing >= 0) throw new TesseraError('INTERNAL', `Receipt ${ids[missing]} is in the device log but not in the receipt store; run an integrity check of the database.`);
      const head = deviceLog.signedHead(to);
      const consistency = accepted === 0 ? [] : deviceLog.consistency(accepted, to).proof;
      let answer: AcceptedHead;
      try {
        answer = await c.signed<AcceptedHead>('POST', '/v1/sync/receipts', { from: accepted, receipts: envelopes as DsseEnvelope[], head: head.envelope, consistency });
      } catch (err) {
        // The cloud accepted another size (an answer lost on the way back): resume there, a few times at most.
        const at = isTesseraError(err) && err.code === 'LOG_GAP' ? (err.details as { accepted_size?: unknown } | undefined)?.accepted_size : undefined;
        if (typeof at === 'number' && gaps++ < 3) {
          accepted = at;
          state.set('accepted_size', accepted);
          continue;
        }
        throw err;
      }
      accepted = answer.size;
      state.transaction(() => {
        state.set('accepted_size', accepted);
        if (answer.cosignature && answer.root) {
          // Kept only when it verifies: a bundle must never carry a co-signature that fails its own check.
          try {
            const cosig = cloudSigned<Cosignature>(e, answer.cosignature, COSIGNATURE_PAYLOAD_TYPE);
            if (cosig.log === deviceKey.keyid && cosig.size === answer.size && cosig.root === answer.root) state.putCosignature(cosig.size, cosig.root, answer.cosignature);
          } catch (err) {
            logger.warn('the cloud\'s co-signature did not verify; it is not kept', { error: err });
          }
        }
      });
      publish('sync.uploaded', { receipts: envelopes.length, accepted_size: accepted, pending: Math.max(0, deviceLog.size - accepted) });
      await new Promise((r) => setImmediate(r));
    }
  };

  const pull = async (e: Enrollment, c: CloudClient): Promise<void> => {
    let total = 0;
    const granted: Lease[] = [];
    const recalled: string[] = [];
    for (;;) {
      const checkpoint = state.get<number>('checkpoint') ?? 0;
      const page = await c.signed<PullResponse>('GET', `/v1/sync/pull?checkpoint=${checkpoint}&limit=${PULL_LIMIT}`);
      state.transaction(() => {
        for (const change of page.changes) apply(e, change, granted, recalled);
        state.set('checkpoint', page.checkpoint);
        if (!page.more) state.set('deny_list_as_of', page.server_time);
      });
      total += page.changes.length;
      if (!page.more) break;
      await new Promise((r) => setImmediate(r));
    }
    for (const l of granted) publish('sync.lease.granted', { lease: l.lease, serial: l.serial, rights: l.rights, exp: l.exp, via: 'pull' });
    if (total > 0) publish('sync.pulled', { changes: total, checkpoint: state.get<number>('checkpoint') ?? 0, recalled });
  };

  const giveBack = async (c: CloudClient): Promise<void> => {
    for (const l of state.toReturn(clock())) {
      const logSize = state.get<number>('accepted_size') ?? 0;
      try {
        const r = await c.signed<{ returned: number }>('POST', '/v1/leases/return', { lease: l.lease, used: l.used, log_size: logSize });
        state.markReturned(l.lease, clock());
        publish('sync.lease.returned', { lease: l.lease, used: l.used, returned: r?.returned ?? null });
      } catch (err) {
        if (isTesseraError(err) && err.code === 'LEASE_NOT_FOUND') state.markReturned(l.lease, clock());
        else throw err;
      }
    }
  };

  const round = async (): Promise<void> => {
    const e = state.enrollment();
    if (!e || disposed) return;
    const c = clientOf(e);
    try {
      await upload(e, c);
      await pull(e, c);
      await giveBack(c);
      failures = 0;
      state.set('last_sync', iso(clock()));
      state.set('last_error', null);
      setPhase('online');
    } catch (err) {
      if (disposed || !store.isOpen) return;
      failures++;
      const code: string = isTesseraError(err) ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      state.set('last_error', { code, message, at: iso(clock()) });
      if (REFUSALS.has(code as ErrorCode)) {
        setPhase('refused');
        publish('sync.refused', { code, message });
        logger.warn('the cloud refused this device', { code, message });
      } else {
        setPhase('offline', { code, message });
        publish('sync.failed', { code, message, attempt: failures });
        logger.info('sync round failed; retrying with backoff', { code, message, attempt: failures });
      }
    }
  };

  const schedule = (delayMs: number) => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (disposed || !started || !state.enrollment()) {
      nextAt = null;
      return;
    }
    nextAt = clock() + delayMs;
    timer = setTimeout(() => {
      timer = undefined;
      void runRound();
    }, delayMs);
    timer.unref();
  };
  const runRound = (): Promise<void> => {
    if (running) return running;
    nextAt = null;
    running = round().finally(() => {
      running = null;
      // Refused: no fast retries, the operator must act; the interval still looks again.
      schedule(failures === 0 || phase === 'refused' ? intervalMs : backoffDelay(failures, random));
    });
    return running;
  };

  // ---------------------------------------------------------------- the guard

  const guard: RedeemGuard = {
    active: () => state.enrollment() !== undefined,
    wantsGrant(claims: TokenClaims, amount: number) {
      if (phase !== 'online' || !state.enrollment()) return false;
      const p = state.product(claims.product_cid);
      if (!p || p.protection === 'detect') return false;
      return state.activeLease(claims.serial, amount, clock()) === undefined;
    },
    async grant(claims, amount) {
      const e = state.enrollment();
      if (!e) return;
      try {
        const { lease: envelope } = await clientOf(e).signed<{ lease: DsseEnvelope }>('POST', '/v1/leases/grant', { serial: claims.serial, rights: amount }, { timeoutMs: grantTimeoutMs });
        const lease = state.transaction(() => acceptLease(e, envelope));
        if (lease) publish('sync.lease.granted', { lease: lease.lease, serial: lease.serial, rights: lease.rights, exp: lease.exp, via: 'grant' });
      } catch (err) {
        if (isTesseraError(err) && err.code === 'CLOUD_UNREACHABLE') setPhase('offline', { code: err.code, message: err.message });
        logger.info('no online grant; the guard decides offline', { serial: claims.serial, error: isTesseraError(err) ? err.code : String(err) });
      }
    },
    judge: (claims, amount, now) => state.judge(claims, amount, now),
    record: (allowed, redemptionId, serial, amount, now) => state.record(allowed, redemptionId, serial, amount, now),
    undo: (redemptionId) => state.undoUse(redemptionId),
  };

  // ---------------------------------------------------------------- the API

  const api: Sync = {
    guard,
    status() {
      const e = state.enrollment();
      const accepted = state.get<number>('accepted_size') ?? 0;
      const now = clock();
      return {
        cloud: e ? { url: e.url, tenant: e.tenant, role: e.role, device: e.device } : null,
        state: !e ? 'not_enrolled' : running ? 'syncing' : phase ?? 'offline',
        last_sync: state.get<string>('last_sync') ?? null,
        last_error: state.get<SyncStatus['last_error']>('last_error') ?? null,
        pending_uploads: e ? Math.max(0, deviceLog.size - accepted) : 0,
        accepted_size: accepted,
        next_attempt: e && !running && nextAt !== null ? iso(nextAt) : null,
        deny_list_as_of: state.get<string>('deny_list_as_of') ?? null,
        leases: state.leases(now).map(({ nbf: _nbf, envelope: _envelope, ...balance }) => {
          const title = balance.title ?? options.productTitle?.(balance.product_cid);
          return title ? { ...balance, title } : balance;
        }),
      };
    },

    async enroll(req) {
      const existing = state.enrollment();
      if (existing) throw new TesseraError('VALIDATION_FAILED', `This device is already enrolled with ${existing.url} (tenant ${existing.tenant}) as ${existing.device}.`);
      let url: URL;
      try {
        url = new URL(req.cloud);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
      } catch {
        throw new TesseraError('VALIDATION_FAILED', `The cloud URL ${JSON.stringify(req.cloud)} is not an http(s) URL.`);
      }
      const c = createCloudClient({ url: url.origin, deviceKey, clock, signal: stopping.signal, ...(options.fetch ? { fetch: options.fetch } : {}) });
      const { challenge } = await c.open<{ challenge: string }>('POST', '/v1/enroll/challenge', { code: req.code });
      const signature = toBase64(deviceKey.sign(enrollSigningBytes(req.code, challenge)));
      const answer = await c.open<EnrollResponse>('POST', '/v1/enroll', { code: req.code, challenge, public_key: deviceKey.publicKeyPem, signature, ...(req.name ? { name: req.name } : {}) });
      const cloudKey = readPublicKey(answer.cloud_key.pem);
      if (cloudKey.keyid !== answer.cloud_key.keyid) throw new TesseraError('VALIDATION_FAILED', 'The cloud key in the enrollment answer does not match its keyid.');
      const enrollment: Enrollment = {
        url: url.origin, tenant: answer.tenant, device: answer.device, role: answer.role, ...(answer.venue ? { venue: answer.venue } : {}),
        certificate: answer.certificate, cloud_key: { keyid: cloudKey.keyid, pem: cloudKey.publicKeyPem }, enrolled_at: iso(clock()),
      };
      const cert = cloudSigned<DeviceCertificate>(enrollment, answer.certificate, DEVICE_CERT_PAYLOAD_TYPE);
      if (cert.device !== deviceKey.keyid || answer.device !== deviceKey.keyid) throw new TesseraError('VALIDATION_FAILED', `The certificate names device ${cert.device}, not this device (${deviceKey.keyid}).`);
      // Kept first: the cloud now knows this key, so losing the answer would leave the device unable to enroll again.
      state.set('enrollment', enrollment);
      try {
        trustIssuer(cloudKey.publicKeyPem, `cloud-${answer.tenant}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64));
      } catch (err) {
        // The pull's `issuer` change for the cloud key trusts it again at the next round.
        logger.warn('could not trust the cloud key as an issuer yet', { error: err });
      }
      publish('sync.enrolled', { cloud: enrollment.url, tenant: enrollment.tenant, device: enrollment.device, role: enrollment.role });
      if (started) void runRound();
      return api.status();
    },

    async now() {
      if (!state.enrollment()) throw new TesseraError('NOT_ENROLLED', 'This device is not enrolled with a cloud; run `tessera cloud enroll --cloud URL --code CODE`.');
      if (running) await running;
      await runRound();
      return api.status();
    },

    start() {
      if (started || disposed) return;
      started = true;
      // The first round soon, not during start-up's busiest moment.
      if (state.enrollment()) schedule(Math.min(intervalMs, 1_000));
    },

    cosignature(minSize) {
      const e = state.enrollment();
      const c = state.cosignature(minSize);
      if (!e || !c) return undefined;
      return { size: c.size, envelope: c.envelope, witness: { keyid: e.cloud_key.keyid, pem: e.cloud_key.pem } };
    },

    async dispose() {
      disposed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      // A round in flight stops at its current request (aborted) and writes nothing more; the store closes after.
      stopping.abort();
      await running?.catch(() => undefined);
    },
  };
  return api;
}
