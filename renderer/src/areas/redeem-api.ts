/**
 * What the Redeem area needs from the runtime (issue 14 point 6; the answer shapes are the shared contract in
 * ISSUE14-PLAN.md "RedeemAnswer"). The area takes a {@link RedeemApi} so that it does not depend on which client
 * carries the calls: {@link redeemApiFor} builds it on the client's product methods (main/common/products-api.ts).
 */
import type { RedeemAnswer, RedeemLease, RedeemRequest, RedeemVerdict } from '../../../main/common/entitlements.js';
import type { TesseraClient } from '../../../main/common/api.js';
import type { SyncStatus } from '../../../main/common/cloud.js';
import { TesseraError } from '../../../main/common/errors.js';

// The request shape is the route's own (main/common/entitlements.ts).
export type { RedeemRequest };

/** The redeem guard's verdicts (issue 16): a protected product without lease rights, or a stale deny list. */
export type LeaseVerdict = Extract<RedeemVerdict, 'NO_LEASE' | 'LEASE_EXHAUSTED' | 'DENY_LIST_STALE'>;
export type { RedeemAnswer, RedeemLease, RedeemVerdict };

/**
 * One row of `GET /api/redemptions` as the history shows it. The contract names the route, not the row: the area
 * reads these fields when present and shows what it has.
 */
export interface RedemptionRecord {
  id: string;
  at: string;
  action?: 'redeem' | 'undo';
  verdict?: RedeemVerdict | string;
  serial?: string;
  title?: string;
  product_ref?: string;
  venue?: string;
  screen?: string;
  amount?: number;
  currency?: string;
  undo_until?: string;
  undone_at?: string;
}

export interface Venue {
  id: string;
  name?: string;
  city?: string;
}

/** The calls the Redeem area makes. Every method rejects with a TesseraError; NOT_READY means the runtime is unreachable. */
export interface RedeemApi {
  /** `POST /api/redeem`: checks and, when every check passes, redeems (a REDEMPTION receipt). */
  redeem(request: RedeemRequest): Promise<RedeemAnswer>;
  /** `POST /api/redeem/check`: the same checks, nothing written (verdict VALID or a refusal). */
  check(request: RedeemRequest): Promise<RedeemAnswer>;
  /** `POST /api/redemptions/:id/undo`: within the undo window; answers UNDONE. */
  undo(redemptionId: string): Promise<RedeemAnswer>;
  /** `GET /api/redemptions?q=`: newest first. */
  history(query: string): Promise<RedemptionRecord[]>;
  /** `GET /api/catalogue/venues`: the venues staff pick from (free text when this fails). */
  venues(): Promise<Venue[]>;
  /**
   * `GET /api/sync`: the device's sync state with its lease balances, for the lease panel. Rejects NOT_FOUND when the
   * runtime has no sync module (the panel hides); absent: no panel.
   */
  syncStatus?(): Promise<SyncStatus>;
}

/**
 * The Redeem API over the client's product methods (main/common/products-api.ts): the same routes over HTTP in a
 * browser and over IPC (`api`) in the desktop window, with whatever credential the UI holds now (an operator's
 * unlocked session included).
 */
export function redeemApiFor(client: TesseraClient): RedeemApi {
  // One API per client, so that a re-render of the app does not look like a new API to the area's effects.
  let api = made.get(client);
  if (!api) made.set(client, (api = makeRedeemApi(client)));
  return api;
}

const made = new WeakMap<TesseraClient, RedeemApi>();

function makeRedeemApi(client: TesseraClient): RedeemApi {
  const p = client.products;
  return {
    redeem: (req) => p.redeem(req) as Promise<RedeemAnswer>,
    check: (req) => p.checkCode(req) as Promise<RedeemAnswer>,
    undo: (id) => p.undoRedemption(id) as Promise<RedeemAnswer>,
    history: async (q) => (await p.redemptions({ ...(q.trim() === '' ? {} : { q: q.trim() }), limit: 50 })) as unknown as RedemptionRecord[],
    venues: async () => (await p.venues()) as unknown as Venue[],
    syncStatus: async () => {
      if (!(await client.sync.available())) throw new TesseraError('NOT_FOUND', 'This runtime has no sync module.');
      return client.sync.status();
    },
  };
}
