/**
 * Redemptions asked together are committed together (issue 14 "Benchmark": redemption p95 at 8 staff screens):
 * `redeemSoon` writes the redemptions of one event-loop turn in one SQLite transaction, each in its own savepoint.
 * What must still hold: two screens with one single-use ticket get exactly one REDEEMED; a redemption that fails
 * takes only itself back; nobody hears an answer or an event before the commit.
 */
import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../main/common/errors.js';
import type { IssueRequest } from '../../main/runtime/entitlements/index.js';
import { PRODUCT_CID, openHarness } from '../fixtures/entitlements-harness.js';
import { tempDir } from '../helpers/tmp.js';

const HOUR = 3600_000;
const ticket = (now: number, over: Partial<IssueRequest> = {}): IssueRequest => ({ product_runtime_session_id: 'prs_g', product_cid: PRODUCT_CID, product_ref: 'city.museum-ticket@1.0.0', kind: 'single_use', valid_from: now, valid_until: now + HOUR, venues: ['museum-art'], ...over });

describe('redemptions committed together', () => {
  it('gives one single-use ticket to exactly one of eight screens asking in the same turn, the others ALREADY_USED', async () => {
    const h = openHarness(tempDir());
    const issued = h.entitlements.issue(ticket(h.clock.now));
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => h.entitlements.redeemSoon({ code: issued.code, venue: 'museum-art', screen: `gate ${i}` })));
    expect(answers.filter((a) => a.verdict === 'REDEEMED')).toHaveLength(1);
    expect(answers.filter((a) => a.verdict === 'ALREADY_USED')).toHaveLength(7);
    const winner = answers.find((a) => a.verdict === 'REDEEMED')!;
    for (const a of answers.filter((x) => x.verdict === 'ALREADY_USED')) expect(a.previous).toMatchObject({ venue: 'museum-art', screen: winner.redemption!.screen });
    expect(h.journal.query({ topic: 'entitlement.redeemed', limit: 10 }).events).toHaveLength(1);
  });

  it('takes back only the redemption that fails, and answers each with its own outcome', async () => {
    const h = openHarness(tempDir());
    const a = h.entitlements.issue(ticket(h.clock.now));
    const b = h.entitlements.issue(ticket(h.clock.now));
    const voucher = h.entitlements.issue(ticket(h.clock.now, { kind: 'stored_value', amount: 1000, currency: 'UAH' }));
    const results = await Promise.allSettled([
      h.entitlements.redeemSoon({ code: a.code, venue: 'museum-art' }),
      // A stored-value redemption without an amount is refused with VALIDATION_FAILED: it must not take the others back.
      h.entitlements.redeemSoon({ code: voucher.code, venue: 'museum-art' }),
      h.entitlements.redeemSoon({ code: b.code, venue: 'museum-art' }),
    ]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.verdict : isTesseraError(r.reason) ? r.reason.code : 'thrown'))).toEqual(['REDEEMED', 'VALIDATION_FAILED', 'REDEEMED']);
    expect(h.entitlements.history({ limit: 10 }).map((r) => r.serial).sort()).toEqual([a.serial, b.serial].sort());
  });

  it('tells nobody before the commit: events and answers come after the transaction, none when it fails', async () => {
    const h = openHarness(tempDir());
    const issued = h.entitlements.issue(ticket(h.clock.now));
    const seen: string[] = [];
    h.bus.subscribe('entitlement.redeemed', () => void seen.push(h.store.db.inTransaction ? 'inside' : 'after'));
    const answer = await h.entitlements.redeemSoon({ code: issued.code, venue: 'museum-art' });
    expect(answer.verdict).toBe('REDEEMED');
    expect(seen).toEqual(['after']);
    // A write that fails (the database is made read-only under it): the redemption is refused, nothing written or told.
    const other = h.entitlements.issue(ticket(h.clock.now));
    h.store.db.pragma('query_only = ON');
    await expect(h.entitlements.redeemSoon({ code: other.code, venue: 'museum-art' })).rejects.toThrow();
    h.store.db.pragma('query_only = OFF');
    expect(seen).toEqual(['after']);
    expect(h.entitlements.history({ limit: 10 }).map((r) => r.serial)).toEqual([issued.serial]);
  });
});
