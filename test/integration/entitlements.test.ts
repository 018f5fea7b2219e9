import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeToken } from '../../main/common/entitlement-token.js';
import { verifyChain } from '../../main/common/receipt.js';
import { generateKeyPair, verifyEd25519 } from '../../main/runtime/keys/index.js';
import type { IssueRequest } from '../../main/runtime/entitlements/index.js';
import { PRODUCT_CID, openHarness } from '../fixtures/entitlements-harness.js';
import { tempDir } from '../helpers/tmp.js';

const HOUR = 3600_000;
function request(h: { clock: { now: number } }, over: Partial<IssueRequest> = {}): IssueRequest {
  return { product_runtime_session_id: 'prs_1', product_cid: PRODUCT_CID, product_ref: 'city.museum-ticket@1.0.0', kind: 'single_use', valid_from: h.clock.now, valid_until: h.clock.now + 24 * HOUR, venues: ['museum-art'], title: 'Museum ticket', ...over };
}
const topics = (h: ReturnType<typeof openHarness>, prefix: string) => h.journal.query({ topic: prefix, limit: 100 }).events.map((e) => e.topic);

describe('entitlements module (real SQLite file)', () => {
  it('issues a token, redeems it once with a signed REDEMPTION receipt, then answers ALREADY_USED with time and place', () => {
    const h = openHarness(tempDir());
    const issued = h.entitlements.issue(request(h));
    expect(issued).toMatchObject({ state: 'active', rights_left: 1, kind: 'single_use', product_runtime_session_id: 'prs_1' });
    expect(topics(h, 'entitlement')).toEqual(['entitlement.issued']);
    expect(h.journal.query({ topic: 'token.issued' }).events[0]!.payload).toMatchObject({ product_runtime_session_id: 'prs_1', serial: issued.serial });
    expect(h.entitlements.check(issued.code, 'museum-art')).toMatchObject({ verdict: 'VALID', ok: true });
    const changes: string[] = [];
    h.entitlements.onChange((c) => changes.push(`${c.serial}:${c.state}`));
    const first = h.entitlements.redeem({ code: issued.code, venue: 'museum-art', screen: 'gate 1' });
    expect(first).toMatchObject({ verdict: 'REDEEMED', ok: true, entitlement: { rights_left: 0, product_ref: 'city.museum-ticket@1.0.0' }, redemption: { venue: 'museum-art', screen: 'gate 1' } });
    h.clock.now += 60_000;
    const second = h.entitlements.redeem({ code: issued.code, venue: 'museum-art' });
    expect(second).toMatchObject({ verdict: 'ALREADY_USED', ok: false, previous: { venue: 'museum-art', at: first.redemption!.at, screen: 'gate 1' } });
    expect(second.message).toBe('Already used at museum-art at 10:00 UTC.');
    expect(changes).toEqual([`${issued.serial}:used`]);
    expect(h.entitlements.list({ session: 'prs_1' })[0]).toMatchObject({ state: 'used', rights_left: 0 });
    expect(topics(h, 'token')).toEqual(['token.issued', 'token.burned']);
    // The chain verifies: INTENT (claims) then REDEMPTION, signed by the device.
    const chain = h.receipts.receipts(first.redemption!.capsule);
    const result = verifyChain(chain, (keyid) => (keyid === h.deviceKey.keyid ? { publicKeyRaw: h.deviceKey.publicKeyRaw } : undefined));
    expect(result.ok).toBe(true);
    expect(h.receipts.chain(first.redemption!.capsule).map((r) => [r.payload.kind, (r.payload.body as { action?: string }).action])).toEqual([['INTENT', undefined], ['REDEMPTION', 'redeem']]);
    h.close();
  });

  it('undoes within 2 minutes with a compensating receipt, and refuses after the window and twice', () => {
    const h = openHarness(tempDir());
    const issued = h.entitlements.issue(request(h));
    const r1 = h.entitlements.redeem({ code: issued.code, venue: 'museum-art' });
    h.clock.now += 119_000;
    const undone = h.entitlements.undo(r1.redemption!.id, 'mis-tap');
    expect(undone).toMatchObject({ verdict: 'UNDONE', ok: true, redemption: { undone_at: expect.any(String) } });
    expect(h.entitlements.list()[0]!.state).toBe('active');
    expect(() => h.entitlements.undo(r1.redemption!.id)).toThrow(expect.objectContaining({ code: 'ALREADY_UNDONE' }));
    const r2 = h.entitlements.redeem({ code: issued.code, venue: 'museum-art' });
    expect(r2.verdict).toBe('REDEEMED');
    h.clock.now += 120_001;
    expect(() => h.entitlements.undo(r2.redemption!.id)).toThrow(expect.objectContaining({ code: 'UNDO_WINDOW_CLOSED' }));
    expect(() => h.entitlements.undo('rdm_nope')).toThrow(expect.objectContaining({ code: 'REDEMPTION_NOT_FOUND' }));
    const bodies = h.receipts.chain(r1.redemption!.capsule).map((r) => r.payload.body as { action?: string; undo_of?: string });
    expect(bodies.map((b) => b.action)).toEqual([undefined, 'redeem', 'undo', 'redeem']);
    expect(bodies[2]!.undo_of).toBe(r1.redemption!.receipt_id);
    expect(h.entitlements.history({ q: issued.serial.slice(0, 8) }).map((r) => !!r.undone_at)).toEqual([false, true]);
    h.close();
  });

  it('takes partial amounts from a stored-value voucher and answers INSUFFICIENT_BALANCE past it', () => {
    const h = openHarness(tempDir());
    const v = h.entitlements.issue(request(h, { kind: 'stored_value', amount: 10000, currency: 'UAH', venues: [] }));
    expect(h.entitlements.redeem({ code: v.code, venue: 'cafe', amount: 3500 })).toMatchObject({ verdict: 'REDEEMED', entitlement: { rights_left: 6500, currency: 'UAH' }, redemption: { amount: 3500 } });
    expect(h.entitlements.redeem({ code: v.code, venue: 'cafe', amount: 7000 })).toMatchObject({ verdict: 'INSUFFICIENT_BALANCE', ok: false, entitlement: { rights_left: 6500 } });
    expect(h.entitlements.redeem({ code: v.code, venue: 'cafe', amount: 6500 })).toMatchObject({ verdict: 'REDEEMED', entitlement: { rights_left: 0 } });
    expect(() => h.entitlements.redeem({ code: v.code, venue: 'cafe' })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(h.entitlements.list()[0]!.state).toBe('used');
    h.close();
  });

  it('counts time-pass uses per venue, and multi-use uses in total', () => {
    const h = openHarness(tempDir());
    const pass = h.entitlements.issue(request(h, { kind: 'time_pass', uses_per_venue: 1, venues: ['a', 'b', 'c'] }));
    expect(h.entitlements.redeem({ code: pass.code, venue: 'a' }).verdict).toBe('REDEEMED');
    expect(h.entitlements.redeem({ code: pass.code, venue: 'b' }).verdict).toBe('REDEEMED');
    expect(h.entitlements.redeem({ code: pass.code, venue: 'a' })).toMatchObject({ verdict: 'ALREADY_USED', previous: { venue: 'a' } });
    expect(h.entitlements.redeem({ code: pass.code, venue: 'd' }).verdict).toBe('NOT_VALID_HERE');
    const multi = h.entitlements.issue(request(h, { kind: 'multi_use', uses: 2, venues: [] }));
    expect(h.entitlements.redeem({ code: multi.code, venue: 'x' }).entitlement!.rights_left).toBe(1);
    expect(h.entitlements.redeem({ code: multi.code, venue: 'y' }).entitlement!.rights_left).toBe(0);
    expect(h.entitlements.redeem({ code: multi.code, venue: 'x' }).verdict).toBe('ALREADY_USED');
    h.close();
  });

  it('answers EXPIRED and NOT_YET_VALID outside the window (120 s skew), and expires issued entitlements on a timer and at start', async () => {
    const dir = tempDir();
    let h = openHarness(dir);
    const later = h.entitlements.issue(request(h, { valid_from: h.clock.now + HOUR, valid_until: h.clock.now + 2 * HOUR }));
    expect(h.entitlements.check(later.code, 'museum-art').verdict).toBe('NOT_YET_VALID');
    h.clock.now += HOUR - 100_000; // inside the skew tolerance
    expect(h.entitlements.check(later.code, 'museum-art').verdict).toBe('VALID');
    h.clock.now += 2 * HOUR;
    expect(h.entitlements.check(later.code, 'museum-art').verdict).toBe('EXPIRED');
    // Expired while the runtime was down: caught up at start.
    h.close();
    h = openHarness(dir, Date.parse('2026-12-07T10:00:00Z') + 4 * HOUR);
    expect(h.entitlements.list()[0]!.state).toBe('expired');
    expect(topics(h, 'entitlement.expired')).toEqual(['entitlement.expired']);
    // A live timer: valid for 50 ms of real time.
    h.clock.now = Date.now();
    const follow = setInterval(() => (h.clock.now = Date.now()), 5);
    const short = h.entitlements.issue(request(h, { valid_from: Date.now() - 1000, valid_until: Date.now() + 50 }));
    const seen = await new Promise<string>((resolve) => h.entitlements.onChange((c) => resolve(`${c.serial}:${c.state}`)));
    clearInterval(follow);
    expect(seen).toBe(`${short.serial}:expired`);
    h.close();
  });

  it('answers UNKNOWN_ISSUER, trusts keys added to <data>/issuers, and REVOKED for their revocation or a revoked serial', () => {
    const h = openHarness(tempDir());
    const other = generateKeyPair();
    const code = encodeToken({ serial: randomBytes(12).toString('hex'), product_cid: PRODUCT_CID, kind: 'single_use', nbf: h.clock.now / 1000, exp: h.clock.now / 1000 + 3600, venues: [], issuer_keyid: other.keyid }, (m) => other.sign(m));
    expect(h.entitlements.check(code, 'v').verdict).toBe('UNKNOWN_ISSUER');
    h.issuers.add(other.publicKeyPem, 'partner');
    h.clock.now += 2000; // past the issuer cache
    expect(h.entitlements.check(code, 'v').verdict).toBe('VALID');
    h.issuers.revoke(other.keyid, 'key leaked');
    h.clock.now += 2000;
    expect(h.entitlements.check(code, 'v').verdict).toBe('REVOKED');
    const mine = h.entitlements.issue(request(h, { product_runtime_session_id: 'prs_cancel' }));
    expect(h.entitlements.revokeForSession('prs_cancel', 'refunded')).toBe(1);
    expect(h.entitlements.redeem({ code: mine.code, venue: 'museum-art' })).toMatchObject({ verdict: 'REVOKED', message: 'Revoked: refunded.' });
    expect(h.entitlements.check('TS1:garbage', 'v').verdict).toBe('DAMAGED_CODE');
    expect(verifyEd25519).toBeTypeOf('function');
    h.close();
  });

  it('pauses issuing (ISSUING_PAUSED, trutta.degraded) across a restart while redemption goes on', () => {
    const dir = tempDir();
    let h = openHarness(dir);
    const before = h.entitlements.issue(request(h));
    h.entitlements.setIssuing(true, 'ledger offline');
    h.close();
    h = openHarness(dir);
    expect(h.entitlements.issuing()).toMatchObject({ paused: true, reason: 'ledger offline' });
    expect(() => h.entitlements.issue(request(h))).toThrow(expect.objectContaining({ code: 'ISSUING_PAUSED' }));
    expect(h.entitlements.redeem({ code: before.code, venue: 'museum-art' }).verdict).toBe('REDEEMED');
    h.entitlements.setIssuing(false);
    expect(h.entitlements.issue(request(h)).state).toBe('active');
    expect(topics(h, 'trutta')).toEqual(['trutta.degraded', 'trutta.restored']);
    h.close();
  });
});
