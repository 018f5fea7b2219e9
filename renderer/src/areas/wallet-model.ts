/**
 * The traveller's wallet (issue 14 point 7), the part without a screen: how the answers of the catalogue, wallet,
 * session and link routes map onto what the wallet shows, and the words it shows them in. Pure: the clients call
 * the `…FromAnswer` adapters (renderer/src/client/http.ts), the components the formatters.
 *
 * The adapters are the one place to change when a route's answer differs from what ISSUE14-PLAN.md let us assume:
 * - `GET /api/catalogue` → an array of {@link CatalogueEntry} (or `{products: […]}` / `{catalogue: […]}`; an entry may
 *   also be a bare ProductDef with `cid`, or carry it as `product`);
 * - `GET /api/wallets/:id` → `{wallet_id, balances: [{currency, amount}]}`;
 * - `POST /api/links` → `{url, token?, expires_at?}` (or `{link: {url}}`).
 */
import type { EntitlementView, ProductSessionView, WalletView } from '../../../main/common/products-api.js';

// ---- the shapes the wallet reads (what the routes answer; the runtime may send more) ----

export type { WalletView } from '../../../main/common/products-api.js';
export type { ProductSessionView, EntitlementView } from '../../../main/common/products-api.js';
/** A receipt link as the wallet shows it: the URL a phone opens. */
export interface CapabilityLink {
  url: string;
  token?: string;
  expires_at?: string;
}

export type EntitlementKind = 'single_use' | 'multi_use' | 'time_pass' | 'stored_value';

/** A ProductDef as the wallet reads it: the catalogue's resolved profiles, or a def as signed. */
export interface ProductDefView {
  id: string;
  version: string;
  status?: string;
  markets?: string[];
  cities?: string[];
  profiles: {
    entitlement: {
      kind: EntitlementKind;
      uses?: number;
      uses_per_venue?: number;
      amount?: number;
      currency?: string;
      /** ISO-8601 duration of a time pass (`PT48H`), or the catalogue's resolved `duration_ms`. */
      duration?: string;
      duration_ms?: number;
      validity?: string;
      venues?: Array<{ id: string; name?: string }>;
    };
    pricing: { price: number; currency: string };
    /** Words by language tag (`en`, `uk`, …). */
    ui?: { title?: Record<string, string>; description?: Record<string, string>; terms?: Record<string, string> };
    [profile: string]: unknown;
  };
}

/** One product of `GET /api/catalogue`. */
export interface CatalogueEntry {
  /** cid of the ProductDef. */
  cid: string;
  id: string;
  version: string;
  /** What `POST /api/sessions {product}` takes: `id@version`. */
  ref: string;
  def: ProductDefView;
}

// ---- adapters ----

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One catalogue entry from whatever `GET /api/catalogue` lists; undefined for an entry without a usable ProductDef. */
export function catalogueEntry(raw: unknown): CatalogueEntry | undefined {
  if (!isObject(raw)) return undefined;
  const def = (isObject(raw['def']) ? raw['def'] : isObject(raw['product']) ? raw['product'] : isObject(raw['profiles']) ? raw : undefined) as ProductDefView | undefined;
  if (!def || !isObject(def.profiles) || !isObject(def.profiles.entitlement) || !isObject(def.profiles.pricing)) return undefined;
  const id = typeof raw['id'] === 'string' ? raw['id'] : def.id;
  const version = typeof raw['version'] === 'string' ? raw['version'] : def.version;
  const cid = typeof raw['cid'] === 'string' ? raw['cid'] : '';
  const ref = typeof raw['ref'] === 'string' ? raw['ref'] : `${id}@${version}`;
  return { cid, id, version, ref, def };
}

export function catalogueFromAnswer(answer: unknown): CatalogueEntry[] {
  const list = Array.isArray(answer) ? answer : isObject(answer) ? (answer['products'] ?? answer['catalogue'] ?? answer['items']) : undefined;
  return Array.isArray(list) ? list.map(catalogueEntry).filter((e): e is CatalogueEntry => e !== undefined) : [];
}

export function walletFromAnswer(answer: unknown, walletId: string): WalletView {
  const a = isObject(answer) ? answer : {};
  const balances = Array.isArray(a['balances']) ? a['balances'].filter(isObject).map((b) => ({ currency: String(b['currency']), amount: Number(b['amount']) })) : [];
  return { wallet_id: typeof a['wallet_id'] === 'string' ? a['wallet_id'] : walletId, balances };
}

export function linkFromAnswer(answer: unknown, origin = typeof location === 'undefined' ? '' : location.origin): CapabilityLink {
  const a = isObject(answer) ? (isObject(answer['link']) ? answer['link'] : answer) : {};
  // No public origin set on the kiosk: the link is on the address this page was opened on.
  if (typeof a['url'] !== 'string' && typeof a['url_path'] === 'string') return linkFromAnswer({ ...a, url: origin + a['url_path'] });
  if (typeof a['url'] !== 'string') throw new Error('The receipt link answer has no url.');
  return { url: a['url'], ...(typeof a['token'] === 'string' ? { token: a['token'] } : {}), ...(typeof a['expires_at'] === 'string' ? { expires_at: a['expires_at'] } : {}) };
}

// ---- words ----

/** The traveller's language: the browser's, as a BCP 47 tag (`en-GB`, `uk`). */
export function travellerLanguage(): string {
  return (typeof navigator !== 'undefined' && navigator.language) || 'en';
}

/** A text of a `{en, uk, …}` map in `lang`, its base language, English, or whatever there is. */
export function pick(texts: Record<string, string> | undefined, lang: string): string | undefined {
  if (!texts) return undefined;
  const base = lang.split('-')[0]!;
  return texts[lang] ?? texts[base] ?? texts['en'] ?? Object.values(texts)[0];
}

/** Minor-unit digits of a currency (UAH, EUR: 2; JPY: 0). */
function digitsOf(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** Integer minor units as "450.00 UAH" (digits grouped as the language does: "1,000.00 UAH", "1 000,00 UAH"). */
export function formatMoney(minor: number, currency: string, lang = travellerLanguage()): string {
  const digits = digitsOf(currency);
  const number = new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(minor / 10 ** digits);
  return `${number} ${currency}`;
}

/** "PT48H" → "48-hour", "P2D" → "2-day", "PT90M" → "90-minute"; undefined when it is not one unit. */
export function durationWords(iso: string | undefined): string | undefined {
  const m = iso ? /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/.exec(iso) : null;
  if (!m) return undefined;
  const parts = [m[1] && `${m[1]}-day`, m[2] && `${m[2]}-hour`, m[3] && `${m[3]}-minute`].filter(Boolean);
  return parts.length === 1 ? (parts[0] as string) : undefined;
}

/** "museum" when every venue is one (by id or name), else "venue": "one entry per museum". */
function placeWord(venues: Array<{ id: string; name?: string }> | string[] | undefined): string {
  const names = (venues ?? []).map((v) => (typeof v === 'string' ? v : `${v.id} ${v.name ?? ''}`).toLowerCase());
  return names.length > 0 && names.every((n) => n.includes('museum')) ? 'museum' : 'venue';
}

/** What a product gives, in words: "48-hour pass, one entry per museum", "Single ticket", "Voucher, 100.00 UAH". */
export function kindWords(def: ProductDefView, lang = travellerLanguage()): string {
  const e = def.profiles.entitlement;
  switch (e.kind) {
    case 'single_use':
      return 'Single ticket, one entry';
    case 'multi_use':
      return e.uses === undefined ? 'Ticket for several entries' : `Ticket for ${e.uses} ${e.uses === 1 ? 'entry' : 'entries'}`;
    case 'time_pass': {
      const span = durationWords(e.duration ?? e.validity);
      const pass = span ? `${span} pass` : 'Time pass';
      const place = placeWord(e.venues);
      if (e.uses_per_venue === undefined) return `${pass}, unlimited entries`;
      return `${pass}, ${e.uses_per_venue === 1 ? 'one entry' : `${e.uses_per_venue} entries`} per ${place}`;
    }
    case 'stored_value':
      return e.amount !== undefined ? `Voucher, ${formatMoney(e.amount, e.currency ?? def.profiles.pricing.currency, lang)} to spend` : 'Voucher';
    default:
      return 'Ticket';
  }
}

export function productTitle(def: ProductDefView, lang = travellerLanguage()): string {
  return pick(def.profiles.ui?.title, lang) ?? def.id;
}

/** Where a product is accepted, by name. */
export function venueNames(def: ProductDefView): string[] {
  return (def.profiles.entitlement.venues ?? []).map((v) => v.name ?? v.id);
}

/** What is left on a held entitlement: "1 entry left at each museum", "62.50 UAH left", "Used". */
export function rightsWords(e: EntitlementView, lang = travellerLanguage()): string {
  if (e.state === 'used') return 'Used up';
  if (e.state === 'revoked') return 'Withdrawn';
  const left = e.rights_left ?? null;
  const entries = (n: number) => `${n} ${n === 1 ? 'entry' : 'entries'}`;
  switch (e.kind) {
    case 'stored_value':
      return left === null ? 'Voucher' : `${formatMoney(left, e.currency ?? '', lang)} left`;
    case 'time_pass':
      return left === null ? 'Unlimited entries while valid' : `${entries(left)} left at each ${placeWord(e.venues)}`;
    case 'single_use':
      return `${entries(left ?? 1)} left`;
    default:
      return left === null ? 'Valid' : `${entries(left)} left`;
  }
}

/** The state of a held entitlement in words. */
export function stateWords(state: string): string {
  return ({ active: 'Active', used: 'Used', expired: 'Expired', revoked: 'Revoked' } as Record<string, string>)[state] ?? state;
}

/** A date and time in the traveller's language ("7 Dec 2026, 14:05"). */
export function formatWhen(iso: string, lang = travellerLanguage()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(t);
}

/** The passes this traveller holds: each entitlement of their paid sessions, newest session first. */
export function heldPasses(sessions: readonly ProductSessionView[]): Array<{ session: ProductSessionView; entitlement: EntitlementView }> {
  return sessions.flatMap((session) => (session.payment || session.state === 'active' || session.state === 'completed' ? session.entitlements.map((entitlement) => ({ session, entitlement })) : []));
}

/** Error codes a traveller is told about in words; any other error is shown with its own message. */
export function problemWords(err: unknown, context: { balance?: string; price?: string } = {}): string {
  const code = typeof err === 'object' && err !== null ? String((err as { code?: unknown }).code ?? '') : '';
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'INSUFFICIENT_FUNDS':
      return context.balance
        ? `The kiosk balance is ${context.balance}${context.price ? `, less than ${context.price}` : ''}; ask staff to top it up. Nothing was charged.`
        : 'The kiosk balance is too low for this; ask staff to top it up. Nothing was charged.';
    case 'ISSUING_PAUSED':
      return 'New passes and tickets cannot be issued at the moment; the passes you hold still work. Please ask staff. Nothing was charged.';
    case 'PREFLIGHT_FAILED':
      return 'This cannot be bought right now (see the reasons above). Nothing was charged.';
    case 'NOT_READY':
      return 'The kiosk cannot reach its service at the moment. Please try again in a moment.';
    case 'SESSION_TRANSITION_REFUSED':
      return `This purchase cannot go on: ${message}`;
    case 'FORBIDDEN':
    case 'UNAUTHORIZED':
      return 'This screen may not do that; please ask staff.';
    default:
      return message;
  }
}
