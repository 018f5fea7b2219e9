import { describe, expect, it } from 'vitest';
import { createLockManager } from '../../main/runtime/scenarios/locks.js';
import type { LockChange } from '../../main/runtime/scenarios/locks.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('lock manager', () => {
  it('grants a free resource at once and queues the next owner until it is released', async () => {
    const locks = createLockManager();
    const order: string[] = [];
    const r1 = await locks.acquire(['tts'], { owner: 'a' });
    const p2 = locks.acquire(['tts'], { owner: 'b' }).then((r) => (order.push('b'), r));
    await tick();
    expect(order).toEqual([]);
    expect(locks.state()).toMatchObject({ holders: [{ resource: 'tts', owner: 'a', count: 1 }], waiters: [{ owner: 'b', resources: ['tts'], priority: 'NORM' }] });
    r1();
    const r2 = await p2;
    expect(order).toEqual(['b']);
    r2();
    expect(locks.state()).toEqual({ holders: [], waiters: [] });
  });

  it('serves waiters HIGH before NORM before LOW, first come first served within a level', async () => {
    const locks = createLockManager();
    const release = await locks.acquire(['mic'], { owner: 'holder' });
    const order: string[] = [];
    const ask = (owner: string, priority: 'LOW' | 'NORM' | 'HIGH') =>
      locks.acquire(['mic'], { owner, priority }).then((r) => {
        order.push(owner);
        r();
      });
    const all = [ask('low1', 'LOW'), ask('norm1', 'NORM'), ask('high1', 'HIGH'), ask('norm2', 'NORM'), ask('low2', 'LOW'), ask('high2', 'HIGH')];
    expect(locks.state().waiters.map((w) => w.owner)).toEqual(['high1', 'high2', 'norm1', 'norm2', 'low1', 'low2']);
    release();
    await Promise.all(all);
    expect(order).toEqual(['high1', 'high2', 'norm1', 'norm2', 'low1', 'low2']);
  });

  it('takes several resources all or nothing, so [mic, tts] and [tts, mic] never deadlock', async () => {
    const locks = createLockManager();
    const holding = new Map<string, string>();
    let overlaps = 0;
    const worker = async (owner: string, resources: string[]) => {
      for (let i = 0; i < 50; i++) {
        const release = await locks.acquire(resources, { owner, timeoutMs: 2000 });
        for (const r of resources) {
          if (holding.has(r)) overlaps++;
          holding.set(r, owner);
        }
        await tick();
        for (const r of resources) holding.delete(r);
        release();
      }
    };
    await Promise.all([worker('a', ['mic', 'tts']), worker('b', ['tts', 'mic']), worker('c', ['tts']), worker('d', ['mic'])]);
    expect(overlaps).toBe(0);
    expect(locks.state()).toEqual({ holders: [], waiters: [] });
  });

  it('holds nothing while waiting: a request for [mic, tts] does not keep mic while tts is busy', async () => {
    const locks = createLockManager();
    const tts = await locks.acquire(['tts'], { owner: 'speaker' });
    const both = locks.acquire(['tts', 'mic'], { owner: 'both' });
    expect(locks.holders()).toEqual({ tts: 1 });
    // No barging: a later request for mic alone waits behind the earlier one that wants mic too.
    const micOnly = locks.acquire(['mic'], { owner: 'listener', timeoutMs: 20 });
    await expect(micOnly).rejects.toMatchObject({ code: 'LOCK_TIMEOUT' });
    tts();
    (await both)();
  });

  it('is re-entrant for one owner, and an owner never queues behind others for what it already holds', async () => {
    const locks = createLockManager();
    const step = await locks.acquire(['tts'], { owner: 'run-1' });
    const other = locks.acquire(['tts'], { owner: 'run-2' });
    // The run's own speech (the router asks as the run) goes before run-2, which waits for the run.
    const speech = await locks.acquire(['tts'], { owner: 'run-1', timeoutMs: 50 });
    expect(locks.state().holders).toMatchObject([{ resource: 'tts', owner: 'run-1', count: 2 }]);
    step();
    let granted = false;
    void other.then(() => (granted = true));
    await tick();
    expect(granted).toBe(false); // the speech still holds it
    speech();
    speech(); // releases are idempotent: a second call does not free another grant
    (await other)();
    expect(granted).toBe(true);
  });

  it('anonymous requests are not re-entrant', async () => {
    const locks = createLockManager();
    const first = await locks.acquire(['x']);
    await expect(locks.acquire(['x'], { timeoutMs: 10 })).rejects.toMatchObject({ code: 'LOCK_TIMEOUT' });
    first();
  });

  it('times out with LOCK_TIMEOUT naming the holder, and the withdrawn request no longer blocks later ones', async () => {
    const locks = createLockManager();
    const held = await locks.acquire(['mic'], { owner: 'run-a' });
    const t0 = Date.now();
    const err = await locks.acquire(['mic', 'tts'], { owner: 'run-b', timeoutMs: 30 }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    expect(err).toMatchObject({ code: 'LOCK_TIMEOUT' });
    expect((err as Error).message).toContain('run-a');
    expect(locks.state().waiters).toEqual([]);
    // tts was claimed by run-b's request while it waited; now it is free for others at once.
    (await locks.acquire(['tts'], { owner: 'run-c', timeoutMs: 10 }))();
    held();
  });

  it("withdraws a waiting request when its signal aborts, rejecting with the signal's reason", async () => {
    const locks = createLockManager();
    const held = await locks.acquire(['tts'], { owner: 'a' });
    const controller = new AbortController();
    const waiting = locks.acquire(['tts'], { owner: 'b', signal: controller.signal });
    const reason = new Error('cancelled by request');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(locks.state().waiters).toEqual([]);
    held();
    expect(locks.holders()).toEqual({});
    // The engine's original form: a bare signal, already aborted.
    const aborted = new AbortController();
    aborted.abort();
    await expect(locks.acquire(['tts'], aborted.signal)).rejects.toMatchObject({ code: 'RUN_CANCELLED' });
  });

  it('releaseOwner frees everything a dead owner held, however often it took it, and wakes the waiters', async () => {
    const locks = createLockManager();
    await locks.acquire(['mic', 'tts'], { owner: 'crashed' });
    await locks.acquire(['tts'], { owner: 'crashed' });
    const next = locks.acquire(['tts'], { owner: 'next' });
    expect(locks.releaseOwner('crashed')).toBe(2);
    (await next)();
    expect(locks.releaseOwner('nobody')).toBe(0);
  });

  it('refuses malformed lock names', async () => {
    const locks = createLockManager();
    await expect(locks.acquire(['ok', 'not ok'])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(locks.acquire([''])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await locks.acquire([]))()).toBeUndefined();
  });

  it('reports each change of hands to listeners, with the number still waiting', async () => {
    const locks = createLockManager();
    const changes: LockChange[] = [];
    const sub = locks.onChange((c) => changes.push(c));
    const a = await locks.acquire(['tts'], { owner: 'a' });
    const b = locks.acquire(['tts'], { owner: 'b' });
    a();
    (await b)();
    sub.dispose();
    await locks.acquire(['tts'], { owner: 'c' });
    expect(changes).toEqual([
      { resource: 'tts', holder: 'a', waiting: 0 },
      { resource: 'tts', holder: 'b', waiting: 0 },
      { resource: 'tts', holder: null, waiting: 0 },
    ]);
  });

  it('hands over under heavy contention without losing or duplicating a grant', async () => {
    const locks = createLockManager();
    const names = ['mic', 'tts', 'camera'];
    const holding = new Map<string, string>();
    let grants = 0;
    const worker = async (w: number) => {
      for (let i = 0; i < 40; i++) {
        const want = names.filter((_, k) => (w + i + k) % 2 === 0);
        const resources = want.length ? want : ['tts'];
        const release = await locks.acquire(resources, { owner: `w${w}`, priority: (['LOW', 'NORM', 'HIGH'] as const)[(w + i) % 3]! });
        for (const r of resources) {
          expect(holding.get(r)).toBeUndefined();
          holding.set(r, `w${w}`);
        }
        grants++;
        await Promise.resolve();
        for (const r of resources) holding.delete(r);
        release();
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
    expect(grants).toBe(12 * 40);
    expect(locks.state()).toEqual({ holders: [], waiters: [] });
  });
});
