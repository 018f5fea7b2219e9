/** setLongTimeout (issue 13 point 13): a delay longer than one setTimeout can hold waits its whole length. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMEOUT_MS, setLongTimeout } from '../../main/common/timers.js';

const HOUR = 3_600_000;

afterEach(() => {
  vi.useRealTimers();
});

describe('setLongTimeout', () => {
  it('fires a 600 h delay after 600 h, not before (a plain setTimeout fires it at once)', () => {
    vi.useFakeTimers();
    // The premise, as the fake clock models Node: a delay over 2^31 − 1 ms becomes 1 ms.
    let plain = 0;
    setTimeout(() => plain++, 600 * HOUR);
    vi.advanceTimersByTime(1);
    expect(plain).toBe(1);

    let fired = 0;
    setLongTimeout(() => fired++, 600 * HOUR);
    vi.advanceTimersByTime(MAX_TIMEOUT_MS + 1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(600 * HOUR - (MAX_TIMEOUT_MS + 1) - 1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
    vi.advanceTimersByTime(1000 * HOUR);
    expect(fired).toBe(1);
  });

  it('fires a short delay like setTimeout, and a zero, negative or NaN delay on the next timer turn', () => {
    vi.useFakeTimers();
    const fired: string[] = [];
    setLongTimeout(() => fired.push('250'), 250);
    for (const [name, ms] of [['0', 0], ['-5', -5], ['NaN', Number.NaN]] as const) setLongTimeout(() => fired.push(name), ms);
    vi.advanceTimersByTime(0);
    expect(fired).toEqual(['0', '-5', 'NaN']);
    vi.advanceTimersByTime(249);
    expect(fired).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['0', '-5', 'NaN', '250']);
  });

  it('never fires once cancelled, whichever link of the chain is waiting', () => {
    vi.useFakeTimers();
    let fired = 0;
    const early = setLongTimeout(() => fired++, 600 * HOUR);
    const late = setLongTimeout(() => fired++, 600 * HOUR);
    early.cancel();
    vi.advanceTimersByTime(MAX_TIMEOUT_MS + 10);
    late.cancel();
    late.cancel();
    vi.advanceTimersByTime(1000 * HOUR);
    expect(fired).toBe(0);
  });

  it('on real timers, a 600 h delay has not fired when a 20 ms timer armed after it fires', async () => {
    let fired = false;
    const long = setLongTimeout(() => (fired = true), 600 * HOUR, { unref: true });
    // Timers fire in order of expiry: an overflowed one (1 ms) would have run before this one.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fired).toBe(false);
    long.cancel();
  });
});
