/**
 * Webhooks (issue 5 point 8, seed 004 §2 "enrich: webhook", DESIGN.md "Data"): subscriptions, an outbox in
 * SQLite, and a delivery worker that POSTs signed callbacks with retries.
 *
 * Contract for producers (the receipt pipeline): call {@link Webhooks.notify} with an event name and a record
 * that has a `cid`, inside the SQLite transaction that stores the record when there is one. better-sqlite3 is
 * synchronous and has one connection, so the outbox rows commit or roll back with the caller's rows; the worker
 * is woken on the next turn of the event loop, after the transaction has ended.
 *
 * Delivery is at-least-once; the receiver stores each callback once by its `Idempotency-Key`: the cid of the
 * delivered record `{event, data}` ({@link callbackKey}; RFC 8785 canonical JSON, BLAKE3), recomputable from the
 * body. The same event with the same data is enqueued at most once per subscription (an idempotent `/v1/run`
 * replay does not call back twice); anything that changes the data (a capsule going from ASK to ALLOW, another
 * effect, a new chain head) or the event is another callback with another key.
 *
 * Hot path: with no subscription, `notify` does no work; with some, it hashes the record once and inserts one
 * row per match into tables whose keys mostly grow at the right edge (time-ordered delivery ids).
 *
 * Callbacks are authenticated by the device key's Ed25519 signature (signature.ts), not by shared secrets:
 * receivers pin the public key that `GET /v1/webhooks` returns.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { isCid } from '../../common/cid.js';
import { TesseraError } from '../../common/errors.js';
import { compilePattern, patternProblem, topicProblem } from '../../common/topics.js';
import type { TopicMatcher } from '../../common/topics.js';
import type { Bus } from '../bus/index.js';
import type { SigningKey } from '../keys/index.js';
import type { Disposable } from '../lifecycle/index.js';
import type { Logger } from '../log/index.js';
import type { TesseraMetrics } from '../metrics/index.js';
import type { Migration, Store } from '../store/index.js';
import { createDeliveryWorker, DEFAULT_DELIVERY_OPTIONS } from './delivery.js';
import type { DeliveryOptions } from './delivery.js';
import { callbackKey, checkCallback, WEBHOOK_BODY_TYPE } from './signature.js';
import type { CallbackCheck, WebhookBody } from './signature.js';

export type { CallbackCheck, WebhookBody } from './signature.js';
export type { DeliveryOptions } from './delivery.js';
export { WEBHOOK_PAYLOAD_TYPE, signatureHeader, signedMessage, parseSignatureHeader, checkCallback, callbackKey } from './signature.js';

export interface WebhookSubscription {
  /** `whs_…` */
  id: string;
  /** http(s) URL the callbacks are POSTed to. */
  url: string;
  /** Topic patterns (main/common/topics.ts) of the events delivered; `["**"]` is every event. */
  events: string[];
  description: string;
  created_at: string;
}

export interface SubscribeInput {
  url: string;
  events?: string[];
  description?: string;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface WebhookAttempt {
  attempt: number;
  started_at: string;
  /** null while the attempt is in flight or when it was interrupted by a shutdown. */
  duration_ms: number | null;
  /** HTTP status, or null when there was no response (timeout, connection refused…). */
  status: number | null;
  error: string | null;
  /** `started` (in flight or interrupted), `success`, `retry` (another attempt is scheduled), `failed` (gave up). */
  outcome: 'started' | 'success' | 'retry' | 'failed';
}

export interface WebhookDelivery {
  /** `whd_…` */
  id: string;
  subscription_id: string;
  event: string;
  /** The subject record's cid (`record.cid` given to notify). */
  cid: string;
  /** The `Idempotency-Key`: cid of `{event, data}`. */
  key: string;
  state: DeliveryState;
  attempts: number;
  /** When the next attempt is due (pending deliveries). */
  next_attempt_at: string | null;
  created_at: string;
  updated_at: string;
  last_status: number | null;
  last_error: string | null;
  attempt_log: WebhookAttempt[];
}

/** A record to deliver: anything JSON with the cid that identifies it. */
export type WebhookRecord = { readonly cid: string } & Readonly<Record<string, unknown>>;

/** Outbox rows built by {@link Webhooks.prepare}, written by {@link Webhooks.enqueue}. */
export interface PreparedNotification {
  /** The delivery ids, one per matching subscription (none when nothing subscribes). */
  readonly ids: readonly string[];
  /** @internal the rows to insert. */
  readonly rows: ReadonlyArray<readonly [string, string, string, string, string, string, number, number, number]>;
}

export interface Webhooks extends Disposable {
  /**
   * Adds a subscription.
   * @throws TesseraError WEBHOOK_URL_INVALID for a URL that is not http(s), has credentials or is too long;
   *   TOPIC_INVALID for a bad event pattern; VALIDATION_FAILED for other bad fields.
   */
  subscribe(input: SubscribeInput): WebhookSubscription;
  list(): WebhookSubscription[];
  /** @throws TesseraError WEBHOOK_NOT_FOUND */
  get(id: string): WebhookSubscription;
  /** Removes a subscription with its pending deliveries and their log. @throws TesseraError WEBHOOK_NOT_FOUND */
  unsubscribe(id: string): void;
  /**
   * Writes one outbox row per subscription whose patterns match `event`, in the caller's transaction if one is
   * open (else in its own), and wakes the worker after it. Returns the ids of the deliveries created (none for
   * subscriptions that already have this event with this data). Cheap when nothing subscribes (no hashing, no
   * SQL).
   * @throws TesseraError VALIDATION_FAILED when `event` is not a topic, `record.cid` is not a cid or the
   *   record is not JSON.
   */
  notify(event: string, record: WebhookRecord): string[];
  /**
   * The first half of {@link Webhooks.notify}: validates and builds the outbox rows (their ids are in `ids`)
   * without writing them, so a producer can name the deliveries in what it signs before its transaction.
   * @throws TesseraError VALIDATION_FAILED as notify.
   */
  prepare(event: string, record: WebhookRecord): PreparedNotification;
  /** The second half: writes the rows (in the caller's transaction if one is open) and wakes the worker. Returns the ids created. */
  enqueue(prepared: PreparedNotification): string[];
  /** Newest first, with each delivery's attempt log. @throws TesseraError WEBHOOK_NOT_FOUND */
  deliveries(subscriptionId: string, query?: { state?: DeliveryState; limit?: number }): WebhookDelivery[];
  /** Deliveries in the outbox by state (for `GET /metrics`). */
  counts(): Record<DeliveryState, number>;
  /** Starts the delivery worker (the runtime does, after start-up). Idempotent. */
  start(): void;
  /** Attempts every delivery due now (by the runtime clock), waits for those attempts; for tests and the CLI. */
  deliverDue(): Promise<void>;
  /** Resolves when no attempt is in flight. */
  idle(): Promise<void>;
  /** Checks a received callback's headers and body against this device's key (what `/v1/webhook/test` does). */
  check(headers: Readonly<Record<string, string>>, body: string, options?: { toleranceSeconds?: number }): CallbackCheck;
  /** The key that signs callbacks, for receivers to pin. */
  readonly signingKey: { keyid: string; public_key_pem: string };
}

export interface WebhooksOptions {
  store: Store;
  bus: Bus;
  logger: Logger;
  deviceKey: SigningKey;
  metrics: TesseraMetrics;
  clock?: () => number;
  delivery?: Partial<DeliveryOptions>;
  /** Jitter source in [0, 1); default Math.random. */
  random?: () => number;
}

export const WEBHOOK_SUBSCRIBED_TOPIC = 'webhook.subscribed';
export const WEBHOOK_UNSUBSCRIBED_TOPIC = 'webhook.unsubscribed';
export const WEBHOOK_FAILED_TOPIC = 'webhook.failed';
export const MAX_URL_LENGTH = 2048;
export const MAX_PATTERNS = 16;
/** No deliveries: what {@link Webhooks.prepare} returns when nothing subscribes to the event. */
export const NO_DELIVERIES: PreparedNotification = { ids: [], rows: [] };

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'webhooks',
    up: (db) => {
      db.exec(`CREATE TABLE webhook_subscriptions (
        id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, description TEXT NOT NULL,
        created_at INTEGER NOT NULL) STRICT`);
      db.exec(`CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
        event TEXT NOT NULL, cid TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        last_status INTEGER, last_error TEXT,
        UNIQUE (subscription_id, key)) STRICT`);
      db.exec("CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending'");
      db.exec('CREATE INDEX webhook_deliveries_by_sub ON webhook_deliveries (subscription_id, created_at)');
      db.exec(`CREATE TABLE webhook_attempts (
        delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL, started_at INTEGER NOT NULL, duration_ms REAL, status INTEGER, error TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('started', 'success', 'retry', 'failed')),
        PRIMARY KEY (delivery_id, attempt)) STRICT, WITHOUT ROWID`);
    },
  },
];

interface SubscriptionRow {
  id: string;
  url: string;
  events: string;
  description: string;
  created_at: number;
}

interface DeliveryRow {
  id: string;
  subscription_id: string;
  event: string;
  cid: string;
  key: string;
  state: DeliveryState;
  attempts: number;
  next_at: number;
  created_at: number;
  updated_at: number;
  last_status: number | null;
  last_error: string | null;
}

/** Creates the webhook service over the runtime's store; the worker starts with {@link Webhooks.start}. */
export function createWebhooks(options: WebhooksOptions): Webhooks {
  const { store, bus, deviceKey, metrics } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('webhooks', MIGRATIONS);
  const db = store.db;
  const q = {
    insertSub: db.prepare('INSERT INTO webhook_subscriptions (id, url, events, description, created_at) VALUES (?, ?, ?, ?, ?)'),
    allSubs: db.prepare<[], SubscriptionRow>('SELECT * FROM webhook_subscriptions ORDER BY created_at, id'),
    deleteSub: db.prepare('DELETE FROM webhook_subscriptions WHERE id = ?'),
    enqueue: db.prepare(`INSERT INTO webhook_deliveries (id, subscription_id, event, cid, key, body, state, next_at, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (subscription_id, key) DO NOTHING`),
    deliveries: db.prepare<[string, string | null, string | null, number], DeliveryRow>(`SELECT id, subscription_id, event, cid, key, state, attempts, next_at, created_at, updated_at, last_status, last_error
      FROM webhook_deliveries WHERE subscription_id = ? AND (? IS NULL OR state = ?) ORDER BY created_at DESC, id DESC LIMIT ?`),
    counts: db.prepare<[], { state: DeliveryState; n: number }>('SELECT state, count(*) AS n FROM webhook_deliveries GROUP BY state'),
    attempts: db.prepare<[string], { attempt: number; started_at: number; duration_ms: number | null; status: number | null; error: string | null; outcome: WebhookAttempt['outcome'] }>(
      'SELECT attempt, started_at, duration_ms, status, error, outcome FROM webhook_attempts WHERE delivery_id = ? ORDER BY attempt',
    ),
  };

  // Subscriptions are few and read on every notify: kept in memory, reloaded after each change.
  let subs: Array<{ sub: WebhookSubscription; matchers: TopicMatcher[] }> = [];
  const reload = () => {
    subs = q.allSubs.all().map((row) => {
      const sub = toSubscription(row);
      return { sub, matchers: sub.events.map(compilePattern) };
    });
  };
  reload();

  const worker = createDeliveryWorker({
    db,
    deviceKey,
    metrics,
    clock,
    logger: options.logger.child({ module: 'webhooks' }),
    random: options.random ?? Math.random,
    options: { ...DEFAULT_DELIVERY_OPTIONS, ...options.delivery },
    onFailed: (info) => {
      try {
        bus.publish(WEBHOOK_FAILED_TOPIC, info);
      } catch (err) {
        options.logger.warn('could not journal a failed webhook delivery', { delivery: info.delivery, error: err });
      }
    },
  });

  const find = (id: string): WebhookSubscription => {
    const found = subs.find((s) => s.sub.id === id);
    if (found === undefined) throw new TesseraError('WEBHOOK_NOT_FOUND', `No webhook subscription "${id}". GET /v1/webhooks lists them.`);
    return found.sub;
  };

  const enqueueAll = db.transaction((rows: PreparedNotification['rows']) => {
    const created: string[] = [];
    for (const row of rows) if (q.enqueue.run(...row).changes === 1) created.push(row[0]);
    return created;
  });

  const prepare = (event: string, record: WebhookRecord): PreparedNotification => {
    // Checked even with no subscription, so a producer's bug shows before the first one is added.
    const problem = topicProblem(event);
    if (problem !== null) throw new TesseraError('VALIDATION_FAILED', `Webhook event: ${problem}.`);
    if (!isCid(record.cid)) throw new TesseraError('VALIDATION_FAILED', 'A webhook record needs a "cid" (b3:…) that identifies it.');
    if (subs.length === 0) return NO_DELIVERIES;
    const matching = subs.filter((s) => s.matchers.some((m) => m(event)));
    if (matching.length === 0) return NO_DELIVERIES;
    const data = { ...record };
    // Also proves the record is JSON (canonicalization refuses anything else), so the body below serializes.
    const key = callbackKey(event, data);
    const now = clock();
    const createdAt = new Date(now).toISOString();
    const rows = matching.map((s): [string, string, string, string, string, string, number, number, number] => {
      const id = newDeliveryId(now);
      const body: WebhookBody = { type: WEBHOOK_BODY_TYPE, key, event, cid: record.cid, subscription: s.sub.id, delivery: id, created_at: createdAt, data };
      return [id, s.sub.id, event, record.cid, key, JSON.stringify(body), now, now, now];
    });
    return { ids: rows.map((r) => r[0]), rows };
  };
  const enqueue = (prepared: PreparedNotification): string[] => {
    if (prepared.rows.length === 0) return [];
    // Inside the caller's transaction this nests as a savepoint; otherwise it is its own transaction.
    const created = enqueueAll(prepared.rows);
    if (created.length > 0) worker.wake();
    return created;
  };

  return {
    subscribe(input) {
      const sub = validateSubscription(input);
      const now = clock();
      const id = `whs_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
      // The row and its event commit together: on a full disk the answer is "subscribed" or "nothing written",
      // never an error for a subscription that was stored (issue 13 point 8).
      const staged = db.transaction(() => {
        q.insertSub.run(id, sub.url, JSON.stringify(sub.events), sub.description, now);
        return bus.stageMany([{ topic: WEBHOOK_SUBSCRIBED_TOPIC, payload: { id, url: redactUrl(sub.url), events: sub.events } }]);
      })();
      reload();
      staged.deliver();
      return find(id);
    },
    list: () => subs.map((s) => s.sub),
    get: find,
    unsubscribe(id) {
      find(id);
      const staged = db.transaction(() => {
        q.deleteSub.run(id);
        return bus.stageMany([{ topic: WEBHOOK_UNSUBSCRIBED_TOPIC, payload: { id } }]);
      })();
      reload();
      staged.deliver();
    },
    notify(event, record) {
      return enqueue(prepare(event, record));
    },
    prepare,
    enqueue,
    deliveries(subscriptionId, query = {}) {
      find(subscriptionId);
      const limit = Math.min(Math.max(Math.trunc(query.limit ?? 50), 1), 500);
      return q.deliveries.all(subscriptionId, query.state ?? null, query.state ?? null, limit).map((row) => ({
        id: row.id,
        subscription_id: row.subscription_id,
        event: row.event,
        cid: row.cid,
        key: row.key,
        state: row.state,
        attempts: row.attempts,
        next_attempt_at: row.state === 'pending' ? new Date(row.next_at).toISOString() : null,
        created_at: new Date(row.created_at).toISOString(),
        updated_at: new Date(row.updated_at).toISOString(),
        last_status: row.last_status,
        last_error: row.last_error,
        attempt_log: q.attempts.all(row.id).map((a) => ({ ...a, started_at: new Date(a.started_at).toISOString() })),
      }));
    },
    counts() {
      const out: Record<DeliveryState, number> = { pending: 0, delivered: 0, failed: 0 };
      for (const row of q.counts.all()) out[row.state] = row.n;
      return out;
    },
    start: () => worker.start(),
    deliverDue: () => worker.deliverDue(),
    idle: () => worker.idle(),
    check(headers, body, opts = {}) {
      return checkCallback(headers, body, {
        lookup: (keyid) => (keyid === deviceKey.keyid ? { publicKeyRaw: deviceKey.publicKeyRaw } : undefined),
        now: Math.floor(clock() / 1000),
        ...(opts.toleranceSeconds === undefined ? {} : { toleranceSeconds: opts.toleranceSeconds }),
      });
    },
    signingKey: { keyid: deviceKey.keyid, public_key_pem: deviceKey.publicKeyPem },
    dispose: () => worker.dispose(),
  };
}

/**
 * `whd_` + 12 hex digits of the enqueue time (ms) + 12 random hex digits: ids sort by time, so the primary key
 * index grows at its right edge instead of taking random-page writes.
 */
function newDeliveryId(now: number): string {
  return `whd_${Math.max(0, Math.trunc(now)).toString(16).padStart(12, '0')}${randomBytes(6).toString('hex')}`;
}

function toSubscription(row: SubscriptionRow): WebhookSubscription {
  return { id: row.id, url: row.url, events: JSON.parse(row.events) as string[], description: row.description, created_at: new Date(row.created_at).toISOString() };
}

/** Validates and normalizes a subscription request. */
function validateSubscription(input: SubscribeInput): { url: string; events: string[]; description: string } {
  if (typeof input !== 'object' || input === null) throw new TesseraError('VALIDATION_FAILED', 'A subscription is an object with "url" and optional "events" and "description".');
  const url = checkWebhookUrl(input.url);
  const events = input.events ?? ['**'];
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_PATTERNS) {
    throw new TesseraError('VALIDATION_FAILED', `"events" must be a list of 1 to ${MAX_PATTERNS} topic patterns (e.g. ["receipt.*"]).`);
  }
  for (const p of events) {
    const problem = patternProblem(p);
    if (problem !== null) throw new TesseraError('TOPIC_INVALID', `"events": ${problem}.`);
  }
  const description = input.description ?? '';
  if (typeof description !== 'string' || description.length > 200) throw new TesseraError('VALIDATION_FAILED', '"description" must be a string of at most 200 characters.');
  return { url, events: [...new Set(events)], description };
}

/**
 * The normalized URL when `value` is an absolute http(s) URL without credentials, at most
 * {@link MAX_URL_LENGTH} characters.
 * @throws TesseraError WEBHOOK_URL_INVALID saying what is wrong.
 */
export function checkWebhookUrl(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new TesseraError('WEBHOOK_URL_INVALID', '"url" must be an http:// or https:// URL.');
  if (value.length > MAX_URL_LENGTH) throw new TesseraError('WEBHOOK_URL_INVALID', `"url" is ${value.length} characters; at most ${MAX_URL_LENGTH} are accepted.`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TesseraError('WEBHOOK_URL_INVALID', `"${value}" is not an absolute URL; give one like https://example.com/hooks/tessera.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TesseraError('WEBHOOK_URL_INVALID', `Webhook URLs must use http or https, not "${url.protocol.replace(/:$/, '')}".`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new TesseraError('WEBHOOK_URL_INVALID', 'Webhook URLs must not carry credentials (user:password@); callbacks are authenticated by their signature.');
  }
  if (url.hash !== '') throw new TesseraError('WEBHOOK_URL_INVALID', 'Webhook URLs must not have a #fragment.');
  return url.href;
}

/** The URL without its query string (which may carry a token), for the journal and logs. */
function redactUrl(url: string): string {
  const u = new URL(url);
  return u.search === '' ? u.href : `${u.origin}${u.pathname}?…`;
}
