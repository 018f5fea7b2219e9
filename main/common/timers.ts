/**
 * Timers for delays of any length (issue 13 point 13: `set_timer 600h` rang after 3 s).
 *
 * `setTimeout` stores its delay as a signed 32-bit integer: anything over 2^31 − 1 ms (about 24.8 days) fires
 * at once (Node: after 1 ms, with a TimeoutOverflowWarning; browsers likewise). Every timer whose delay comes
 * from a user, a scenario or a stored due time goes through `setLongTimeout`, which chains timeouts of at most
 * that length until the whole delay has passed.
 *
 * The delay is counted by the timers themselves (each link is a monotonic `setTimeout`), not by re-reading a
 * wall clock, so a long wait neither fires early nor drifts when the system clock is changed.
 *
 * Pure module: no Node-only imports (`unref` is used where the platform has it).
 */

/** The longest delay one `setTimeout` honours. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface LongTimeout {
  /** Stops the timer; `fn` will not be called. Calling it again, or after the timer fired, does nothing. */
  cancel(): void;
}

export interface LongTimeoutOptions {
  /** Do not keep a Node process alive for this timer (every link is unref'd). */
  unref?: boolean;
}

/**
 * Calls `fn` once after `ms` milliseconds, however long that is. A delay that is not a positive number
 * (0, negative, NaN) fires on the next timer turn; `Infinity` never fires.
 */
export function setLongTimeout(fn: () => void, ms: number, options: LongTimeoutOptions = {}): LongTimeout {
  let remaining = ms > 0 ? ms : 0;
  let handle: ReturnType<typeof setTimeout> | undefined;
  let cancelled = false;
  const arm = (): void => {
    if (cancelled) return;
    const step = Math.min(remaining, MAX_TIMEOUT_MS);
    remaining -= step;
    handle = setTimeout(remaining > 0 ? arm : fire, step);
    if (options.unref) (handle as { unref?: () => void }).unref?.();
  };
  const fire = (): void => {
    handle = undefined;
    if (!cancelled) fn();
  };
  arm();
  return {
    cancel() {
      cancelled = true;
      if (handle !== undefined) clearTimeout(handle);
      handle = undefined;
    },
  };
}
