/**
 * The wallet's words and adapters (renderer/src/areas/wallet-model.ts, issue 14 point 7): prices from integer minor
 * units, what a product gives, what is left on a pass, refusals in words, and the answers of the catalogue, wallet
 * and link routes in the shapes ISSUE14-PLAN.md lets us assume (and the near variants a helper may ship).
 */
import { describe, expect, it } from 'vitest';
import { catalogueFromAnswer, durationWords, formatMoney, heldPasses, kindWords, linkFromAnswer, problemWords, rightsWords, walletFromAnswer } from '../../renderer/src/areas/wallet-model.js';
import type { ProductSessionView } from '../../main/common/products-api.js';
import { TesseraError } from '../../main/common/errors.js';
import { CATALOGUE, COFFEE_VOUCHER, MUSEUM_PASS, MUSEUM_TICKET } from '../fixtures/wallet-fixtures.js';

describe('wallet words', () => {
  it('formats integer minor units with the currency after the number, grouped as the language does', () => {
    expect(formatMoney(45000, 'UAH', 'en')).toBe('450.00 UAH');
    expect(formatMoney(100000, 'UAH', 'en')).toBe('1,000.00 UAH');
    expect(formatMoney(6250, 'EUR', 'de')).toBe('62,50 EUR');
    expect(formatMoney(500, 'JPY', 'en')).toBe('500 JPY');
  });

  it('says what a product gives', () => {
    expect(durationWords('PT48H')).toBe('48-hour');
    expect(durationWords('P2D')).toBe('2-day');
    expect(durationWords('P1DT12H')).toBeUndefined();
    expect(kindWords(MUSEUM_PASS.def as never, 'en')).toBe('48-hour pass, one entry per museum');
    expect(kindWords(MUSEUM_TICKET.def as never, 'en')).toBe('Single ticket, one entry');
    expect(kindWords(COFFEE_VOUCHER.def as never, 'en')).toBe('Voucher, 100.00 UAH to spend');
    expect(kindWords({ id: 'x', version: '1', profiles: { entitlement: { kind: 'multi_use', uses: 5 }, pricing: { price: 1, currency: 'UAH' } } }, 'en')).toBe('Ticket for 5 entries');
  });

  it('says what is left on a pass, and its end states', () => {
    const base = { serial: 's', valid_from: '2026-12-07T10:00:00Z', valid_until: '2026-12-09T10:00:00Z', state: 'active' };
    expect(rightsWords({ ...base, kind: 'time_pass', rights_left: 1, venues: ['lviv.museum-art', 'lviv.museum-history'] }, 'en')).toBe('1 entry left at each museum');
    expect(rightsWords({ ...base, kind: 'stored_value', rights_left: 6250, currency: 'UAH' }, 'en')).toBe('62.50 UAH left');
    expect(rightsWords({ ...base, kind: 'multi_use', rights_left: 3 }, 'en')).toBe('3 entries left');
    expect(rightsWords({ ...base, kind: 'single_use', state: 'used', rights_left: 0 }, 'en')).toBe('Used up');
  });

  it('turns refusals into words a traveller reads, never a bare code', () => {
    expect(problemWords(new TesseraError('INSUFFICIENT_FUNDS', 'Wallet main holds 10000'), { balance: '100.00 UAH', price: '150.00 UAH' })).toBe('The kiosk balance is 100.00 UAH, less than 150.00 UAH; ask staff to top it up. Nothing was charged.');
    expect(problemWords(new TesseraError('ISSUING_PAUSED', 'paused'))).toMatch(/^New passes and tickets cannot be issued at the moment/);
    expect(problemWords(new TesseraError('NOT_READY', 'The runtime cannot be reached.'))).toBe('The kiosk cannot reach its service at the moment. Please try again in a moment.');
    expect(problemWords(new TesseraError('PREFLIGHT_FAILED', 'x'))).not.toContain('PREFLIGHT_FAILED');
  });
});

describe('wallet adapters', () => {
  it('reads the catalogue as an array, as {products}, or as bare ProductDefs, and drops entries without a definition', () => {
    expect(catalogueFromAnswer(CATALOGUE).map((e) => e.ref)).toEqual(CATALOGUE.map((e) => e.ref));
    expect(catalogueFromAnswer({ products: [{ cid: 'b3:1', ...MUSEUM_PASS.def }, { nonsense: true }] })).toEqual([{ cid: 'b3:1', id: MUSEUM_PASS.id, version: '1.0.0', ref: MUSEUM_PASS.ref, def: expect.objectContaining({ id: MUSEUM_PASS.id }) }]);
    expect(catalogueFromAnswer(null)).toEqual([]);
  });

  it('reads a wallet and a link', () => {
    expect(walletFromAnswer({ wallet_id: 'main', balances: [{ currency: 'UAH', amount: 100 }] }, 'main')).toEqual({ wallet_id: 'main', balances: [{ currency: 'UAH', amount: 100 }] });
    expect(walletFromAnswer({}, 'main')).toEqual({ wallet_id: 'main', balances: [] });
    expect(linkFromAnswer({ link: { url: 'http://k/c/t' } })).toEqual({ url: 'http://k/c/t' });
    expect(() => linkFromAnswer({})).toThrow(/no url/);
  });

  it("holds the entitlements of a traveller's paid sessions only", () => {
    const s = (state: ProductSessionView['state'], paid: boolean) => ({ state, payment: paid ? { payment_id: 'p' } : null, entitlements: [{ serial: state }] }) as unknown as ProductSessionView;
    expect(heldPasses([s('active', true), s('preflight_ok', false), s('canceled', true)]).map((h) => h.entitlement.serial)).toEqual(['active', 'canceled']);
  });
});
