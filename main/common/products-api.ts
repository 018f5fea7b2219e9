/**
 * The client side of issue 14's routes — catalogue, product sessions, wallets, redemption, receipt links — written
 * once over a {@link Requester}: the HTTP transport sends the request itself, the Electron transport hands it to the
 * main process (IPC method `api`), which injects it into the same Fastify routes with the window's credential, so
 * both are decided by the same route schemas and the same access rule (main/host/http/access.ts).
 *
 * The shapes here are what the routes answer (their JSON schemas are the reference; README "Passes, tickets and
 * vouchers"). Pure module: shared by the renderer and the host.
 */
import type { CapsuleLink } from './api.js';
import type { RedeemAnswer } from './entitlements.js';

/** One JSON request to the runtime: resolves with the answer, rejects with its TesseraError. */
export type Requester = <T>(method: 'GET' | 'POST', path: string, body?: unknown) => Promise<T>;

export type TextMap = Record<string, string>;

/** A product as `GET /api/catalogue` lists it. */
export interface CatalogueProduct {
  cid: string;
  ref: string;
  id: string;
  version: string;
  status: string;
  markets: string[];
  cities: string[];
  /** The journey document that guides a buyer (`lviv.old-town-day@^1`), or null; absent from older runtimes. */
  journey?: string | null;
  profiles: {
    entitlement: { kind: 'single_use' | 'multi_use' | 'time_pass' | 'stored_value'; uses?: number; uses_per_venue?: number; amount?: number; currency?: string; duration_ms?: number; validity_ms: number; venues: Array<{ id: string; name: string; city: string }> };
    pricing: { price: number; currency: string };
    ui: { title: TextMap; description: TextMap; terms: TextMap };
    [profile: string]: unknown;
  };
  [field: string]: unknown;
}

export interface Venue {
  id: string;
  name: string;
  city: string;
  [field: string]: unknown;
}

/** An entitlement as a session or `GET /api/entitlements` shows it. */
export interface EntitlementView {
  serial: string;
  /** The QR code's text (`TS1:…`, base45). */
  code?: string;
  kind: string;
  state: string;
  title?: string | null;
  product_ref?: string;
  rights_total?: number | null;
  rights_left?: number | null;
  currency?: string | null;
  valid_from: string;
  valid_until: string;
  venues?: string[];
  [field: string]: unknown;
}

export interface ProductSessionView {
  product_runtime_session_id: string;
  state: 'created' | 'preflight_ok' | 'preflight_failed' | 'pending_payment' | 'active' | 'completed' | 'canceled' | 'failed';
  product: { ref: string; id: string; version: string; cid: string; title: string | null };
  user_id: string;
  wallet_id: string;
  market: string | null;
  city: string | null;
  price: { amount: number; currency: string };
  preflight: { verdict: 'ACK' | 'NACK'; reasons: Array<{ code: string; message: string; plugin?: string }> } | null;
  payment: { payment_id: string; amount: number; currency: string; captured_at: string; refund_id?: string; refunded_at?: string } | null;
  entitlements: EntitlementView[];
  capsule: string;
  reason: { code: string; message: string } | null;
  created_at: string;
  updated_at: string;
  ended_at: string | null;
  [field: string]: unknown;
}

export interface WalletView {
  wallet_id: string;
  balances: Array<{ currency: string; amount: number }>;
}

export type { RedeemAnswer, RedeemVerdict } from './entitlements.js';

export interface RedemptionRecord {
  id: string;
  serial: string;
  at: string;
  venue: string;
  screen?: string | null;
  amount?: number | null;
  title?: string | null;
  undone_at?: string | null;
  capsule?: string;
  receipt_id?: string;
  [field: string]: unknown;
}

/**
 * A read-only link to one capsule's receipts that a phone can open (`POST /api/links`): the route's answer,
 * {@link CapsuleLink}, whose `url` is null while the host has no public origin (then `url_path` on the page's origin).
 */
export type ReceiptLink = Omit<CapsuleLink, 'url'> & { url: string | null };

export interface ProductClient {
  catalogue(query?: { city?: string }): Promise<CatalogueProduct[]>;
  venues(): Promise<Venue[]>;
  createSession(request: { product: string; user_id?: string; wallet_id?: string; market?: string; city?: string; idempotency_key?: string }): Promise<ProductSessionView>;
  session(id: string): Promise<ProductSessionView>;
  sessions(query?: { user?: string; state?: string; limit?: number }): Promise<ProductSessionView[]>;
  pay(id: string): Promise<ProductSessionView>;
  cancel(id: string, reason?: string): Promise<ProductSessionView>;
  wallet(id: string): Promise<WalletView>;
  topUp(id: string, request: { amount: number; currency: string; idempotency_key: string; memo?: string }): Promise<{ transaction: string; wallet_id: string; balance: number; currency: string; replayed: boolean }>;
  redeem(request: { code: string; venue: string; amount?: number; screen?: string }): Promise<RedeemAnswer>;
  checkCode(request: { code: string; venue: string }): Promise<RedeemAnswer>;
  undoRedemption(id: string): Promise<RedeemAnswer>;
  redemptions(query?: { q?: string; venue?: string; limit?: number }): Promise<RedemptionRecord[]>;
  issuing(): Promise<{ paused: boolean; since?: string | null; reason?: string | null }>;
  setIssuing(paused: boolean, reason?: string): Promise<{ paused: boolean; since?: string | null; reason?: string | null }>;
  createLink(capsule: string): Promise<ReceiptLink>;
}

/** `?a=1&b=x` of the parameters that have a value (`''` when none): the query of the API clients' GET requests. */
export const query = (params: Record<string, string | number | undefined>): string => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const text = q.toString();
  return text === '' ? '' : `?${text}`;
};
const id = (value: string) => encodeURIComponent(value);

/** The product client over one requester (HTTP or IPC). */
export function createProductClient(request: Requester): ProductClient {
  return {
    catalogue: (q = {}) => request<{ products: CatalogueProduct[] }>('GET', `/api/catalogue${query(q)}`).then((r) => r.products),
    venues: () => request<{ venues: Venue[] }>('GET', '/api/catalogue/venues').then((r) => r.venues),
    createSession: (body) => request<ProductSessionView>('POST', '/api/sessions', body),
    session: (sid) => request<ProductSessionView>('GET', `/api/sessions/${id(sid)}`),
    sessions: (q = {}) => request<{ sessions: ProductSessionView[] }>('GET', `/api/sessions${query(q)}`).then((r) => r.sessions),
    pay: (sid) => request<ProductSessionView>('POST', `/api/sessions/${id(sid)}/pay`, {}),
    cancel: (sid, reason) => request<ProductSessionView>('POST', `/api/sessions/${id(sid)}/cancel`, reason === undefined ? {} : { reason }),
    wallet: (wid) => request<WalletView>('GET', `/api/wallets/${id(wid)}`),
    topUp: (wid, body) => request('POST', `/api/wallets/${id(wid)}/topup`, body),
    redeem: (body) => request<RedeemAnswer>('POST', '/api/redeem', body),
    checkCode: (body) => request<RedeemAnswer>('POST', '/api/redeem/check', body),
    undoRedemption: (rid) => request<RedeemAnswer>('POST', `/api/redemptions/${id(rid)}/undo`, {}),
    redemptions: (q = {}) => request<{ redemptions: RedemptionRecord[] }>('GET', `/api/redemptions${query(q)}`).then((r) => r.redemptions),
    issuing: () => request('GET', '/api/issuing'),
    setIssuing: (paused, reason) => request('POST', '/api/issuing', reason === undefined ? { paused } : { paused, reason }),
    createLink: (capsule) => request<ReceiptLink>('POST', '/api/links', { capsule }),
  };
}
