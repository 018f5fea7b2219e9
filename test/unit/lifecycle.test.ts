import { describe, expect, it } from 'vitest';
import { createDisposableStore, toDisposable } from '../../main/runtime/lifecycle/index.js';

describe('DisposableStore', () => {
  it('disposes children last-in first-out, once', async () => {
    const order: string[] = [];
    const store = createDisposableStore();
    store.add(toDisposable(() => void order.push('db')));
    store.add(toDisposable(async () => void order.push('server')));
    await store.dispose();
    await store.dispose();
    expect(order).toEqual(['server', 'db']);
    expect(store.isDisposed).toBe(true);
  });

  it('disposes every child even when one throws, then reports the failure', async () => {
    const order: string[] = [];
    const store = createDisposableStore();
    store.add(toDisposable(() => void order.push('first')));
    store.add(toDisposable(() => {
      throw new Error('boom');
    }));
    store.add(toDisposable(() => void order.push('last')));
    await expect(store.dispose()).rejects.toThrow('boom');
    expect(order).toEqual(['last', 'first']);
  });

  it('disposes a child added after the store was disposed', async () => {
    const store = createDisposableStore();
    await store.dispose();
    let disposed = false;
    store.add(toDisposable(() => void (disposed = true)));
    await new Promise((r) => setTimeout(r, 0));
    expect(disposed).toBe(true);
  });
});
