/**
 * The sandbox channel's outbox (sandbox/protocol.ts createOutbox): messages queued together leave as one `batch`
 * in order, a lone message leaves as itself, and the flush moment decides what counts as together — a microtask
 * gathers one job's messages, setImmediate (the runtime's side) also gathers those of separate callbacks of one
 * event-loop turn, as the plugin calls of HTTP requests read in one turn.
 */
import { describe, expect, it } from 'vitest';
import { createOutbox } from '../../sandbox/protocol.js';

type Message = { t: 'm'; n: number };
type Written = Message | { t: 'batch'; messages: Message[] };

/** Two timers due at the same time run in the same timers phase of one turn, as two separate callbacks. */
function fromTwoCallbacks(send: (m: Message) => void): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(() => send({ t: 'm', n: 1 }), 0);
    setTimeout(() => {
      send({ t: 'm', n: 2 });
      send({ t: 'm', n: 3 });
    }, 0);
    setTimeout(() => setImmediate(resolve), 5);
  });
}

describe('sandbox outbox', () => {
  it('sends a lone message as itself and one job’s messages as one batch, in order', async () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((m) => written.push(m));
    outbox.send({ t: 'm', n: 1 });
    await Promise.resolve();
    outbox.send({ t: 'm', n: 2 });
    outbox.send({ t: 'm', n: 3 });
    expect(written).toHaveLength(1);
    await Promise.resolve();
    expect(written).toEqual([
      { t: 'm', n: 1 },
      { t: 'batch', messages: [{ t: 'm', n: 2 }, { t: 'm', n: 3 }] },
    ]);
  });

  it('with a microtask flush, separate callbacks of one turn write separately', async () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((m) => written.push(m));
    await fromTwoCallbacks((m) => outbox.send(m));
    expect(written).toEqual([
      { t: 'm', n: 1 },
      { t: 'batch', messages: [{ t: 'm', n: 2 }, { t: 'm', n: 3 }] },
    ]);
  });

  it('with a setImmediate flush, separate callbacks of one turn share one write', async () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((m) => written.push(m), setImmediate);
    await fromTwoCallbacks((m) => outbox.send(m));
    expect(written).toEqual([{ t: 'batch', messages: [1, 2, 3].map((n) => ({ t: 'm', n })) }]);
  });

  it('clear drops what is queued; flush writes it now', () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((m) => written.push(m), () => undefined);
    outbox.send({ t: 'm', n: 1 });
    outbox.clear();
    outbox.send({ t: 'm', n: 2 });
    outbox.flush();
    outbox.flush();
    expect(written).toEqual([{ t: 'm', n: 2 }]);
  });
});
