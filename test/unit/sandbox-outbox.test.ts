/**
 * The sandbox channel's outbox (sandbox/protocol.ts createOutbox): messages queued together leave as one `batch`
 * in order, a lone message leaves as itself. A plain message leaves at the microtask after its job; a `coalesce`
 * one waits for the end of the event loop's turn, gathering the messages of separate callbacks of that turn (as the
 * plugin calls of HTTP requests read in one turn), unless a plain message takes it along sooner.
 */
import { describe, expect, it } from 'vitest';
import { createOutbox } from '../../sandbox/protocol.js';

type Message = { t: 'm'; n: number };
type Written = Message | { t: 'batch'; messages: Message[] };

const m = (n: number): Message => ({ t: 'm', n });

/** Runs `callbacks` as separate timer callbacks of one turn (same due time), then waits for that turn to end. */
function inOneTurn(...callbacks: Array<() => void>): Promise<void> {
  return new Promise((resolve) => {
    for (const cb of callbacks) setTimeout(cb, 0);
    setTimeout(() => setImmediate(resolve), 5);
  });
}

describe('sandbox outbox', () => {
  it('sends a lone message as itself and one job’s messages as one batch, in order', async () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((x) => written.push(x));
    outbox.send(m(1));
    await Promise.resolve();
    outbox.send(m(2));
    outbox.send(m(3));
    expect(written).toHaveLength(1);
    await Promise.resolve();
    expect(written).toEqual([m(1), { t: 'batch', messages: [m(2), m(3)] }]);
  });

  it('writes plain messages of separate callbacks separately, at once', async () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((x) => written.push(x));
    await inOneTurn(
      () => outbox.send(m(1)),
      () => {
        outbox.send(m(2));
        outbox.send(m(3));
      },
    );
    expect(written).toEqual([m(1), { t: 'batch', messages: [m(2), m(3)] }]);
  });

  it('gathers coalesced messages of separate callbacks of one turn into one write', async () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((x) => written.push(x));
    let afterFirst: Written[] = [];
    await inOneTurn(
      () => outbox.send(m(1), true),
      () => {
        afterFirst = [...written];
        outbox.send(m(2), true);
        outbox.send(m(3), true);
      },
    );
    expect(afterFirst).toEqual([]);
    expect(written).toEqual([{ t: 'batch', messages: [m(1), m(2), m(3)] }]);
  });

  it('lets a plain message take the waiting coalesced ones along, in order', async () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((x) => written.push(x));
    await inOneTurn(
      () => outbox.send(m(1), true),
      () => outbox.send(m(2)),
      () => outbox.send(m(3), true),
    );
    expect(written).toEqual([{ t: 'batch', messages: [m(1), m(2)] }, m(3)]);
  });

  it('clear drops what is queued; flush writes it now', async () => {
    const written: Written[] = [];
    const outbox = createOutbox<Message>((x) => written.push(x));
    outbox.send(m(1), true);
    outbox.clear();
    outbox.send(m(2), true);
    outbox.flush();
    outbox.flush();
    expect(written).toEqual([m(2)]);
    await new Promise((r) => setImmediate(r));
    expect(written).toEqual([m(2)]);
  });
});
