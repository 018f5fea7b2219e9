/**
 * What the Redeem area needs from the runtime (issue 14 point 6; the answer shapes are the shared contract in
 * ISSUE14-PLAN.md "RedeemAnswer"). The area takes a {@link RedeemApi} so that it does not depend on which client
 * carries the calls: {@link redeemApiFor} uses the client's own methods when it has them (`redeem`, `checkCode`,
 * `undoRedemption`, `redemptions`), and otherwise the HTTP routes with the page's own token.
 */
import type { TesseraClient } from '../../../main/common/api.js';
import { TesseraError } from '../../../main/common/errors.js';
import { createTransport } from '../client/transport.js';

export type RedeemVerdict =
  | 'REDEEMED'
  | 'VALID'
  | 'ALREADY_USED'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  | 'NOT_VALID_HERE'
  | 'UNKNOWN_ISSUER'
  | 'REVOKED'
  | 'DAMAGED_CODE'
  | 'INSUFFICIENT_BALANCE'
  | 'UNDONE';

export type EntitlementKind = 'single_use' | 'multi_use' | 'time_pass' | 'stored_value';

/** The runtime's answer to a check, a redemption or an undo (ISSUE14-PLAN.md, exactly). */
export interface RedeemAnswer {
  verdict: RedeemVerdict;
  /** True for REDEEMED, VALID and UNDONE. */
  ok: boolean;
  /** One English sentence a person reads ("Already used at Museum of Art at 10:42."). */
  message: string;
  entitlement?: {
    serial: string;
    product_cid: string;
    product_ref?: string;
    title?: string;
    kind: EntitlementKind;
    rights_total?: number;
    rights_left?: number;
    currency?: string;
    valid_from: string;
    valid_until: string;
    venues: string[];
  };
  redemption?: { id: string; at: string; venue: string; screen?: string; amount?: number; undo_until: string; receipt_id: string; capsule: string; undone_at?: string };
  /** ALREADY_USED: when and where it was used. */
  previous?: { at: string; venue: string; screen?: string };
}

export interface RedeemRequest {
  code: string;
  venue: string;
  /** Stored value only: how much to take, in minor units. */
  amount?: number;
  /** Which staff screen redeemed (shown in ALREADY USED elsewhere). */
  screen?: string;
}

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
}

/** The client methods the entitlements work adds (issue 14, H1); duck-typed until they are on TesseraClient. */
interface ClientWithRedeem {
  redeem?: (request: RedeemRequest) => Promise<RedeemAnswer>;
  checkCode?: (request: RedeemRequest) => Promise<RedeemAnswer>;
  undoRedemption?: (redemptionId: string, reason?: string) => Promise<RedeemAnswer>;
  redemptions?: (query: { q?: string; venue?: string; limit?: number }) => Promise<RedemptionRecord[] | { redemptions: RedemptionRecord[] }>;
  venues?: () => Promise<Venue[] | { venues: Venue[] }>;
}

const TOKEN_KEY = 'tessera.token';

function rows<T>(answer: T[] | Record<string, T[]> | undefined, key: string): T[] {
  if (Array.isArray(answer)) return answer;
  const list = answer?.[key];
  return Array.isArray(list) ? list : [];
}

/**
 * The Redeem API over `client`: its own methods where it has them; otherwise the HTTP routes, with the token this
 * browser page was opened with (session storage, renderer/src/client/token.ts). The desktop shell (IPC) has no
 * HTTP fallback: there each call says so.
 */
export function redeemApiFor(client: TesseraClient, transport: 'ipc' | 'http'): RedeemApi {
  // One API per client, so that a re-render of the app does not look like a new API to the area's effects.
  let api = made.get(client);
  if (!api) made.set(client, (api = makeRedeemApi(client, transport)));
  return api;
}

const made = new WeakMap<TesseraClient, RedeemApi>();

function makeRedeemApi(client: TesseraClient, transport: 'ipc' | 'http'): RedeemApi {
  const c = client as TesseraClient & ClientWithRedeem;
  const token = typeof sessionStorage === 'undefined' ? null : sessionStorage.getItem(TOKEN_KEY);
  const http = transport === 'http' && token ? createTransport({ origin: location.origin, token }) : undefined;
  const request = <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    if (!http) return Promise.reject(new TesseraError('NOT_FOUND', 'This window has no way to redeem yet: open the Redeem app in a browser served by the runtime.'));
    return http.request<T>(method, path, body);
  };
  return {
    redeem: (req) => (c.redeem ? c.redeem(req) : request<RedeemAnswer>('POST', '/api/redeem', req)),
    check: (req) => (c.checkCode ? c.checkCode(req) : request<RedeemAnswer>('POST', '/api/redeem/check', req)),
    undo: (id) => (c.undoRedemption ? c.undoRedemption(id) : request<RedeemAnswer>('POST', `/api/redemptions/${encodeURIComponent(id)}/undo`, {})),
    async history(q) {
      const query = { q: q.trim(), limit: 50 };
      if (c.redemptions) return rows(await c.redemptions(query), 'redemptions');
      const params = new URLSearchParams({ limit: String(query.limit) });
      if (query.q) params.set('q', query.q);
      return rows(await request<RedemptionRecord[] | { redemptions: RedemptionRecord[] }>('GET', `/api/redemptions?${params.toString()}`), 'redemptions');
    },
    async venues() {
      if (c.venues) return rows(await c.venues(), 'venues');
      return rows(await request<Venue[] | { venues: Venue[] }>('GET', '/api/catalogue/venues'), 'venues');
    },
  };
}
