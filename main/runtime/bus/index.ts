/**
 * In-process publish/subscribe over the journal (seed 001 §5, DESIGN.md "Data").
 *
 * Contract:
 * - `publish` journals the event first and only then delivers it, so a subscriber never sees an event that
 *   is not durable, and every event carries a trace id.
 * - Delivery is synchronous and in subscription order. A throwing or rejecting handler is isolated: the
 *   publisher and the other handlers are unaffected; the failure is logged and journaled as
 *   `bus.subscriber_failed` (never re-reported for its own failures, so a broken handler cannot loop).
 * - Sensitive payloads (issue 18 point 4: secrets and personal data): a payload may hold values wrapped with
 *   main/common/expr.ts `secret()`. The journal stores them as `***` (a secret serializes so), and what `publish`
 *   returns and a journal query reads is that redacted form; in-process subscribers are handed the payload as
 *   given, secrets still wrapped, so the one that needs the value (the I/O router for TTS) calls `reveal()` and
 *   anything that serializes it (a WebSocket, a webhook, a log line) still shows `***`. An event re-read from the
 *   journal (crash recovery, a wait that looks back) has only `***`.
 */
import type { TesseraEvent } from '../../common/api.js';
import { TesseraError } from '../../common/errors.js';
import { redact } from '../../common/expr.js';
import { compilePattern, patternProblem } from '../../common/topics.js';
import type { AppendInput, Journal } from '../journal/index.js';
import type { Disposable } from '../lifecycle/index.js';
import { toDisposable } from '../lifecycle/index.js';
import type { Logger } from '../log/index.js';

export type EventHandler = (event: TesseraEvent) => void | Promise<void>;

export interface Bus {
  publish(topic: string, payload?: unknown, options?: { trace_id?: string }): TesseraEvent;
  /** Publish several events in one journal transaction, then deliver them in order. */
  publishMany(inputs: readonly AppendInput[]): TesseraEvent[];
  /**
   * Journals `inputs` now — inside the caller's SQLite transaction when there is one — and returns `deliver`, which
   * hands them to subscribers: call it once that transaction has committed, never if it rolled back. Lets a
   * producer journal its events in the commit it makes anyway, without subscribers seeing uncommitted events.
   */
  stageMany(inputs: readonly AppendInput[]): { events: TesseraEvent[]; deliver(): void };
  /** `pattern` as in main/common/topics.ts. Dispose the result to unsubscribe. */
  subscribe(pattern: string, handler: EventHandler, options?: { name?: string }): Disposable;
  readonly subscriberCount: number;
}

export const SUBSCRIBER_FAILED_TOPIC = 'bus.subscriber_failed';

/** The event subscribers get: the journaled one, or with the given payload when it holds secrets (see above). */
function withSecrets(event: TesseraEvent, payload: unknown): TesseraEvent {
  // redact() copies only when it finds a secret: the same object back means there is none.
  return redact(payload) === payload ? event : { ...event, payload };
}

interface Subscription {
  pattern: string;
  name: string;
  matches: (topic: string) => boolean;
  handler: EventHandler;
}

export function createBus(options: { journal: Journal; logger: Logger }): Bus {
  const { journal, logger } = options;
  let subscriptions: Subscription[] = [];

  const reportFailure = (sub: Subscription, event: TesseraEvent, err: unknown) => {
    const error = err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) };
    logger.warn('event subscriber failed', { subscriber: sub.name, pattern: sub.pattern, topic: event.topic, event_id: event.id, error });
    if (event.topic === SUBSCRIBER_FAILED_TOPIC) return;
    try {
      deliver(journal.append({ topic: SUBSCRIBER_FAILED_TOPIC, trace_id: event.trace_id, payload: { subscriber: sub.name, pattern: sub.pattern, topic: event.topic, event_id: event.id, error } }));
    } catch (journalErr) {
      logger.error('could not journal a subscriber failure', { error: journalErr });
    }
  };

  const deliver = (event: TesseraEvent) => {
    // Snapshot: handlers that subscribe or unsubscribe during delivery take effect from the next event.
    for (const sub of subscriptions) {
      if (!sub.matches(event.topic)) continue;
      try {
        const result = sub.handler(event);
        if (result && typeof (result as Promise<void>).then === 'function') {
          (result as Promise<void>).then(undefined, (err: unknown) => reportFailure(sub, event, err));
        }
      } catch (err) {
        reportFailure(sub, event, err);
      }
    }
  };

  let counter = 0;
  return {
    publish(topic, payload, opts = {}) {
      const event = journal.append({ topic, payload, ...(opts.trace_id === undefined ? {} : { trace_id: opts.trace_id }) });
      deliver(withSecrets(event, payload));
      return event;
    },
    publishMany(inputs) {
      const events = journal.appendMany(inputs);
      events.forEach((e, i) => deliver(withSecrets(e, inputs[i]!.payload)));
      return events;
    },
    stageMany(inputs) {
      const events = journal.appendMany(inputs);
      return { events, deliver: () => events.forEach((e, i) => deliver(withSecrets(e, inputs[i]!.payload))) };
    },
    subscribe(pattern, handler, opts = {}) {
      const problem = patternProblem(pattern);
      if (problem) throw new TesseraError('TOPIC_INVALID', problem);
      const sub: Subscription = { pattern, name: opts.name ?? `subscriber#${++counter}`, matches: compilePattern(pattern), handler };
      subscriptions = [...subscriptions, sub];
      return toDisposable(() => {
        subscriptions = subscriptions.filter((s) => s !== sub);
      });
    },
    get subscriberCount() {
      return subscriptions.length;
    },
  };
}
