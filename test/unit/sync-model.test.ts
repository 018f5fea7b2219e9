import { describe, expect, it } from 'vitest';
import type { LeaseBalance, SyncStatus } from '../../main/common/cloud.js';
import { createSyncClient } from '../../main/common/sync-api.js';
import { compactLeases, relativeTime, syncDetail, syncStateLook } from '../../renderer/src/sync-model.js';
import { boundRiskText, leaseText, staffAdvice } from '../../renderer/src/areas/redeem-verdict.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

const lease = (over: Partial<LeaseBalance>): LeaseBalance => ({ lease: 'l1', serial: '5f1e0c2a9b7d4e3f8a6c', product_cid: 'b3:x', rights: 5, used: 2, left: 3, exp: new Date(NOW + 3_600_000).toISOString(), state: 'active', ...over });

describe('status bar words', () => {
  it('says how long ago in minutes, hours and days, and ahead', () => {
    expect(relativeTime(ago(10), NOW)).toBe('just now');
    expect(relativeTime(ago(120), NOW)).toBe('2 min ago');
    expect(relativeTime(ago(3 * 3600), NOW)).toBe('3 h ago');
    expect(relativeTime(ago(86_400 * 2), NOW)).toBe('2 days ago');
    expect(relativeTime(ago(-300), NOW)).toBe('in 5 min');
  });

  it('names each state', () => {
    const base: SyncStatus = { cloud: null, state: 'not_enrolled', last_sync: null, last_error: null, pending_uploads: 0, accepted_size: 0, next_attempt: null, deny_list_as_of: null, leases: [] };
    expect(syncStateLook(base)).toEqual({ words: 'Cloud: not enrolled', tone: 'neutral' });
    expect(syncStateLook({ ...base, state: 'offline' }).tone).toBe('warn');
    expect(syncStateLook({ ...base, state: 'refused' }).tone).toBe('err');
    expect(syncDetail({ ...base, cloud: { url: 'http://c', tenant: 't', role: 'redeemer', device: 'd' }, last_error: { code: 'CLOUD_UNREACHABLE', message: 'down', at: ago(60) } }, NOW)).toContain('Last problem 1 min ago: down (CLOUD_UNREACHABLE)');
  });

  it('lists active unexpired leases only, soonest first, compactly', () => {
    const leases = [
      lease({ lease: 'a', serial: 'aaaaaaaaaaaaaaaaaaaaaaaa', title: 'City card', exp: new Date(NOW + 7_200_000).toISOString(), left: 1, rights: 2 }),
      lease({ lease: 'b', title: 'Museum pass' }),
      lease({ lease: 'c', title: 'Old', exp: ago(10) }),
      lease({ lease: 'd', title: 'Back', state: 'returned' }),
      lease({ lease: 'e', serial: 'eeeeeeeeeeeeeeeeeeeeeeee', title: 'Zoo', exp: new Date(NOW + 9_000_000).toISOString() }),
    ];
    expect(compactLeases(leases, NOW)).toBe('Leases: Museum pass 3/5 · City card 1/2 +1 more');
    expect(compactLeases([lease({ title: undefined })], NOW)).toBe('Leases: pass 5f1e0c2a… 3/5');
    expect(compactLeases([lease({ state: 'expired' })], NOW)).toBeNull();
    // Two leases of one pass (one at issue, one granted when it ran out) read as one: 0/2 + 1/1.
    expect(compactLeases([lease({ lease: 'a', title: 'Museum pass', rights: 2, used: 2, left: 0 }), lease({ lease: 'b', title: 'Museum pass', rights: 1, used: 0, left: 1 })], NOW)).toBe('Leases: Museum pass 1/3');
  });
});

describe('Redeem lease words', () => {
  it('says the lease balance and the bound risk', () => {
    expect(leaseText({ lease: 'l', rights: 5, used: 2, left: 3, exp: new Date(NOW).toISOString(), protection: 'prevent' as const }, 'multi_use')).toMatch(/^3 of 5 uses left on this device's lease, until /);
    expect(leaseText({ lease: 'l', rights: 1000, used: 250, left: 750, exp: new Date(NOW).toISOString(), protection: 'prevent' as const }, 'stored_value', 'UAH')).toMatch(/^7\.50 UAH of 10\.00 UAH left/);
    expect(boundRiskText({ lease: 'l', rights: 5, used: 5, left: 0, exp: '', protection: 'bound' as const, beyond: 2, bound: 3 })).toBe('2 of 3 offline redemptions beyond the lease used — 1 left before this device refuses; they are checked at the next sync');
    expect(boundRiskText({ lease: 'l', rights: 5, used: 1, left: 4, exp: '', protection: 'bound' as const, beyond: 0, bound: 3 })).toBe('0 of 3 offline redemptions beyond the lease used');
    expect(boundRiskText({ lease: 'l', rights: 5, used: 1, left: 4, exp: '', protection: 'prevent' as const })).toBeNull();
  });

  it('tells staff what to do after each guard verdict, and nothing after the others', () => {
    expect(staffAdvice('NO_LEASE', NOW)).toMatch(/connect it to the network/);
    expect(staffAdvice('LEASE_EXHAUSTED', NOW)).toMatch(/every use its lease gives it/);
    expect(staffAdvice('DENY_LIST_STALE', NOW, ago(3 * 3600))).toMatch(/\(3 h ago\).*Sync now/);
    expect(staffAdvice('DENY_LIST_STALE', NOW, null)).toMatch(/was never fetched/);
    expect(staffAdvice('DENY_LIST_STALE', NOW, ago(20))).toContain('(under a minute ago)');
    expect(staffAdvice('REDEEMED', NOW)).toBeNull();
  });
});

describe('sync client', () => {
  it('calls the three routes with their bodies', async () => {
    const calls: unknown[] = [];
    const client = createSyncClient(async <T,>(method: 'GET' | 'POST', path: string, body?: unknown) => {
      calls.push([method, path, body]);
      return {} as T;
    });
    await client.status();
    await client.now();
    await client.enroll({ cloud: 'http://c', code: 'enr_x' });
    await client.enroll({ cloud: 'http://c', code: 'enr_x', name: 'gate 1' });
    expect(calls).toEqual([
      ['GET', '/api/sync', undefined],
      ['POST', '/api/sync/now', {}],
      ['POST', '/api/sync/enroll', { cloud: 'http://c', code: 'enr_x' }],
      ['POST', '/api/sync/enroll', { cloud: 'http://c', code: 'enr_x', name: 'gate 1' }],
    ]);
  });

  it('knows from the manifest whether the runtime has the sync routes, asks once, and tries when it cannot tell', async () => {
    const client = (answer: () => Promise<unknown>) => {
      let asked = 0;
      const c = createSyncClient(async <T,>(_m: 'GET' | 'POST', path: string) => {
        expect(path).toBe('/.well-known/product.json');
        asked++;
        return (await answer()) as T;
      });
      return { c, asked: () => asked };
    };
    const without = client(async () => ({ routes: [{ method: 'GET', url: '/api/info', access: ['staff'] }] }));
    expect(await without.c.available()).toBe(false);
    expect(await without.c.available()).toBe(false);
    expect(without.asked()).toBe(1);
    expect(await client(async () => ({ routes: [{ method: 'GET', url: '/api/sync', access: ['staff', 'operator'] }] })).c.available()).toBe(true);
    expect(await client(async () => Promise.reject(new Error('VALIDATION_FAILED over IPC'))).c.available()).toBe(true);
  });
});
