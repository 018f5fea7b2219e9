/**
 * The webhook delivery worker: reads due rows of the outbox (`webhook_deliveries`), POSTs each signed body to
 * its subscription's URL, and records every attempt.
 *
 * - At-least-once: an attempt is recorded (`attempts + 1`, an attempt row `started`) before the request is sent.
 *   A process that dies mid-request leaves a `started` attempt; at the next start those deliveries are due at
 *   once and sent again with the same `Idempotency-Key`.
 * - Retries: after a failed attempt n (no 2xx within the timeout, connection error, redirect) the next is due
 *   after `min(maxMs, baseMs × 2^(n−1))` scaled by a jitter factor in `[1 − jitter, 1]`, or later when the
 *   receiver asks so with `Retry-After` (seconds or an HTTP date; capped at `maxMs`); after `maxAttempts`
 *   the delivery is `failed`, journaled (`webhook.failed`) and counted. Due times are stored, so backoff
 *   survives restarts, and measured on the runtime clock.
 * - At most `maxInFlight` requests at once; each has `timeoutMs`. While several subscriptions have due rows, each
 *   gets at most its share of the slots (`maxInFlight` ÷ their number, at least one), so a receiver that hangs
 *   holds up its own deliveries, not everyone's. And whatever is due, one subscription never holds the slots the
 *   others would need for their next delivery (one each, as far as slots go): a receiver that hangs once the
 *   others have drained cannot take every slot and make their next callback wait out its timeout.
 * - Shutdown (dispose) stops the timer, aborts requests in flight and waits for them; an aborted attempt stays
 *   `started` and the delivery stays pending, due at once.
 */
import type { Db } from '../store/index.js';
import { createFailureLog, isStoreFailure, writeLockFree } from '../store/failures.js';
import type { SigningKey } from '../keys/index.js';
import type { Logger } from '../log/index.js';
import type { TesseraMetrics } from '../metrics/index.js';
import { signatureHeader } from './signature.js';

export interface DeliveryOptions {
  /** Attempts before a delivery is given up as `failed`. */
  maxAttempts: number;
  /** Backoff before the 2nd attempt; doubles each time. */
  backoffBaseMs: number;
  /** Backoff cap. */
  backoffMaxMs: number;
  /** Fraction of the backoff removed at random (0 = none, 0.5 = up to half). */
  jitter: number;
  /** Per attempt: connect, send and receive the status. */
  timeoutMs: number;
  maxInFlight: number;
  /** Longest sleep between checks of the outbox (the worker also wakes on notify and on each completion). */
  pollMs: number;
  /** Delivered rows (and their attempt log) older than this are deleted; failed rows are kept for the operator. */
  retentionMs: number;
}

export const DEFAULT_DELIVERY_OPTIONS: DeliveryOptions = {
  maxAttempts: 8,
  backoffBaseMs: 2_000,
  backoffMaxMs: 3_600_000,
  jitter: 0.5,
  timeoutMs: 10_000,
  maxInFlight: 8,
  pollMs: 1_000,
  retentionMs: 7 * 86_400_000,
};

const PRUNE_EVERY_MS = 60_000;

export interface FailedInfo {
  delivery: string;
  subscription: string;
  cid: string;
  event: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
}

export interface DeliveryWorker {
  start(): void;
  /** Checks the outbox on the next turn of the event loop. */
  wake(): void;
  deliverDue(): Promise<void>;
  idle(): Promise<void>;
  dispose(): Promise<void>;
}

interface DueRow {
  id: string;
  subscription_id: string;
  cid: string;
  key: string;
  event: string;
  body: string;
  attempts: number;
  url: string;
}

/** The delay before attempt `attempt + 1`, after `attempt` failed (1-based), with `random` in [0, 1). */
export function backoffDelay(attempt: number, options: Pick<DeliveryOptions, 'backoffBaseMs' | 'backoffMaxMs' | 'jitter'>, random: number): number {
  const raw = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (1 - options.jitter * random));
}

export function createDeliveryWorker(deps: {
  db: Db;
  deviceKey: SigningKey;
  metrics: TesseraMetrics;
  clock: () => number;
  logger: Logger;
  random: () => number;
  options: DeliveryOptions;
  onFailed: (info: FailedInfo) => void;
}): DeliveryWorker {
  const { db, deviceKey, metrics, clock, logger, random, options } = deps;
  const q = {
    due: db.prepare<[number, number], DueRow>(`SELECT d.id, d.subscription_id, d.cid, d.key, d.event, d.body, d.attempts, s.url
      FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
      WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT ?`),
    nextDue: db.prepare<[], { t: number | null }>("SELECT MIN(next_at) AS t FROM webhook_deliveries WHERE state = 'pending'"),
    subscriptions: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM webhook_subscriptions'),
    begin: db.prepare('UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = ?, updated_at = ? WHERE id = ? AND state = ?'),
    beginLog: db.prepare("INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, started_at, outcome) VALUES (?, ?, ?, 'started')"),
    finish: db.prepare('UPDATE webhook_deliveries SET state = ?, next_at = ?, updated_at = ?, last_status = ?, last_error = ? WHERE id = ?'),
    finishLog: db.prepare('UPDATE webhook_attempts SET duration_ms = ?, status = ?, error = ?, outcome = ? WHERE delivery_id = ? AND attempt = ?'),
    prune: db.prepare("DELETE FROM webhook_deliveries WHERE state = 'delivered' AND updated_at < ?"),
    // Deliveries whose last attempt never finished (the process stopped mid-request) are due now.
    recover: db.prepare(`UPDATE webhook_deliveries SET next_at = ? WHERE state = 'pending' AND next_at > ? AND EXISTS (
      SELECT 1 FROM webhook_attempts a WHERE a.delivery_id = webhook_deliveries.id AND a.attempt = webhook_deliveries.attempts AND a.outcome = 'started')`),
  };
  const beginTx = db.transaction((row: DueRow, now: number) => {
    // While in flight the row is leased: not due again before the attempt can have timed out.
    q.begin.run(now + options.timeoutMs + options.pollMs, now, row.id, 'pending');
    q.beginLog.run(row.id, row.attempts + 1, now);
  });
  const finishTx = db.transaction((id: string, attempt: number, state: string, nextAt: number, status: number | null, error: string | null, outcome: string, durationMs: number) => {
    q.finish.run(state, nextAt, clock(), status, error, id);
    q.finishLog.run(durationMs, status, error, outcome, id, attempt);
  });

  const inFlight = new Map<string, { controller: AbortController; done: Promise<void>; subscription: string }>();
  let started = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let woken = false;
  let prunedAt = Number.NEGATIVE_INFINITY;
  // Failures that repeat every poll are logged once until they change or the work succeeds.
  const checkFailures = createFailureLog(logger, 'checking the webhook outbox');
  let storeFailing = false;
  const recordFailures = createFailureLog(logger, 'recording a webhook attempt');

  const attempt = async (row: DueRow, controller: AbortController): Promise<void> => {
    const n = row.attempts + 1;
    const startedAt = clock();
    beginTx(row, startedAt);
    metrics.webhook.attempts.inc();
    const body = new TextEncoder().encode(row.body);
    const t0 = performance.now();
    let status: number | null = null;
    let error: string | null = null;
    let retryAfterMs = 0;
    const timeout = setTimeout(() => controller.abort(new Error(`no response within ${options.timeoutMs} ms`)), options.timeoutMs);
    try {
      const res = await fetch(row.url, {
        method: 'POST',
        redirect: 'manual',
        signal: controller.signal,
        headers: {
          'content-type': 'application/json',
          'idempotency-key': row.key,
          'tessera-event': row.event,
          'tessera-delivery': row.id,
          'tessera-attempt': String(n),
          'tessera-signature': signatureHeader(deviceKey, Math.floor(clock() / 1000), body),
          'user-agent': 'Tessera-Webhooks/1',
        },
        body,
      });
      status = res.status;
      retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), clock());
      await res.body?.cancel().catch(() => undefined);
      if (status < 200 || status > 299) error = `the receiver answered HTTP ${status}`;
    } catch (err) {
      error = describeFetchError(err, controller.signal);
    } finally {
      clearTimeout(timeout);
    }
    const durationMs = Math.round((performance.now() - t0) * 1000) / 1000;
    if (stopped && error !== null) {
      // Interrupted by shutdown: the attempt stays `started`, the delivery is due at the next start.
      return;
    }
    if (!db.open) return;
    const now = clock();
    if (error === null) {
      finishTx(row.id, n, 'delivered', now, status, null, 'success', durationMs);
      metrics.webhook.success.inc();
    } else if (n >= options.maxAttempts) {
      finishTx(row.id, n, 'failed', now, status, error, 'failed', durationMs);
      metrics.webhook.fail.inc();
      logger.warn('webhook delivery gave up', { delivery: row.id, subscription: row.subscription_id, attempts: n, status, error });
      deps.onFailed({ delivery: row.id, subscription: row.subscription_id, cid: row.cid, event: row.event, attempts: n, last_status: status, last_error: error });
    } else {
      const delay = Math.max(backoffDelay(n, options, random()), Math.min(retryAfterMs, options.backoffMaxMs));
      finishTx(row.id, n, 'pending', now + delay, status, error, 'retry', durationMs);
      metrics.webhook.retry.inc();
    }
  };

  /**
   * Starts attempts for due rows up to the in-flight limit; returns the promises of the attempts it started.
   * Never throws: it runs from timers, where an exception would end the process.
   */
  const tick = (): Array<Promise<void>> => {
    try {
      // After a store failure, a round is skipped while another process still holds the lock (no busy wait).
      if (storeFailing && !writeLockFree(db)) {
        if (started) schedule(options.pollMs);
        return [];
      }
      const launched = launchDue();
      storeFailing = false;
      checkFailures.succeeded();
      return launched;
    } catch (err) {
      storeFailing = isStoreFailure(err);
      checkFailures.failed(err);
      if (started) schedule(options.pollMs);
      return [];
    }
  };

  const launchDue = (): Array<Promise<void>> => {
    if (stopped || !db.open) return [];
    const now = clock();
    if (now - prunedAt >= PRUNE_EVERY_MS) {
      prunedAt = now;
      q.prune.run(now - options.retentionMs);
    }
    const free = options.maxInFlight - inFlight.size;
    const launched: Array<Promise<void>> = [];
    if (free > 0) {
      // Read past the rows of a subscription that has used its share, so others' due rows are found.
      const due = q.due.all(now, (free + inFlight.size) * 4);
      const contended = Math.max(1, Math.floor(options.maxInFlight / new Set([...due.map((r) => r.subscription_id), ...[...inFlight.values()].map((f) => f.subscription)]).size));
      const others = Math.min(q.subscriptions.get()!.n - 1, options.maxInFlight - 1);
      const share = Math.min(contended, Math.max(1, options.maxInFlight - others));
      const held = new Map<string, number>();
      for (const f of inFlight.values()) held.set(f.subscription, (held.get(f.subscription) ?? 0) + 1);
      for (const row of due) {
        if (inFlight.has(row.id) || inFlight.size >= options.maxInFlight) continue;
        if ((held.get(row.subscription_id) ?? 0) >= share) continue;
        held.set(row.subscription_id, (held.get(row.subscription_id) ?? 0) + 1);
        const controller = new AbortController();
        let storeFailed = false;
        const done = attempt(row, controller)
          .then(() => recordFailures.succeeded(), (err: unknown) => {
            // The store refused the attempt's record (locked by another process, disk full): the delivery is
            // unchanged or still leased, so it is tried again; not at once, which would spin on the same failure.
            if (isStoreFailure(err)) {
              storeFailed = true;
              storeFailing = true;
              recordFailures.failed(err, { delivery: row.id });
            } else logger.error('webhook delivery attempt crashed', { delivery: row.id, error: err });
          })
          .finally(() => {
            inFlight.delete(row.id);
            if (started) schedule(storeFailed ? options.pollMs : 0);
          });
        inFlight.set(row.id, { controller, done, subscription: row.subscription_id });
        launched.push(done);
      }
    }
    if (started) schedule();
    return launched;
  };

  const schedule = (delay?: number) => {
    if (stopped || !started) return;
    if (timer !== undefined) clearTimeout(timer);
    let wait = delay;
    // With every slot taken, due rows must wait for a completion (which reschedules at once), not spin.
    if (wait === undefined && inFlight.size >= options.maxInFlight) wait = options.pollMs;
    if (wait === undefined) {
      const next = db.open ? q.nextDue.get()?.t ?? null : null;
      wait = next === null ? options.pollMs : Math.min(options.pollMs, Math.max(0, next - clock()));
    }
    timer = setTimeout(() => {
      timer = undefined;
      tick();
    }, wait);
    timer.unref();
  };

  return {
    start() {
      if (started || stopped) return;
      started = true;
      const now = clock();
      q.recover.run(now, now);
      schedule(0);
    },
    wake() {
      if (!started || woken) return;
      woken = true;
      setImmediate(() => {
        woken = false;
        tick();
      });
    },
    async deliverDue() {
      await Promise.all(tick());
    },
    async idle() {
      while (inFlight.size > 0) await Promise.all([...inFlight.values()].map((f) => f.done));
    },
    async dispose() {
      // 1. No new attempts; 2. abort those in flight; 3. wait for them to settle before the store closes.
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      for (const f of inFlight.values()) f.controller.abort(new Error('Tessera is shutting down'));
      await Promise.all([...inFlight.values()].map((f) => f.done));
    },
  };
}

/** Milliseconds a `Retry-After` value asks to wait (delta-seconds or an HTTP date); 0 when absent or invalid. */
export function parseRetryAfter(value: string | null, now: number): number {
  if (value === null) return 0;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : 0;
}

function describeFetchError(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    return reason instanceof Error ? reason.message : 'the request was aborted';
  }
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}: ${cause.message ?? 'connection failed'}`;
  return err instanceof Error ? err.message : String(err);
}
