/**
 * Preflight (seed 000 §4.2; issue 14 point 3): may this product be sold here, now, to this person? Four policy
 * plugins decide in the sandbox, in parallel, on one input: availability (status, sale window), product quota
 * (per user, per wallet, global), coverage (market, city, cluster, safety score) and a risk pre-screen. Any NACK
 * fails preflight; the reasons carry a stable code (docs/errors.md "Preflight reasons") and a sentence the
 * traveller reads.
 *
 * Fail closed, as the receipt pipeline does (receipts/pipeline.ts): a plugin that is missing, crashes, runs out of
 * time or memory, answers out of contract, or an unavailable sandbox, is a NACK with PREFLIGHT_CHECK_FAILED (the
 * fault's code in `evidence.fault`, with `retryable` when trying again may help). This function never throws for
 * a plugin's sake and writes nothing: the sessions module records the decision (RESULT receipt, events).
 */
import { cidOf } from '../../common/cid.js';
import { ERROR_CODES, toErrorData } from '../../common/errors.js';
import type { PluginRunResult } from '../../common/api.js';
import type { ResolvedProduct } from '../catalogue/index.js';
import type { PluginRegistry } from '../plugins/index.js';

/** The preflight policies, by name and the range of versions this runtime runs. */
export const PREFLIGHT_POLICIES = [
  { name: 'policy-availability', range: '^1' },
  { name: 'policy-product-quota', range: '^1' },
  { name: 'policy-coverage', range: '^1' },
  { name: 'policy-risk', range: '^1' },
] as const;

export type PreflightCode =
  | 'PREFLIGHT_INACTIVE'
  | 'PREFLIGHT_NOT_YET_AVAILABLE'
  | 'PREFLIGHT_NO_LONGER_AVAILABLE'
  | 'PREFLIGHT_QUOTA_USER'
  | 'PREFLIGHT_QUOTA_WALLET'
  | 'PREFLIGHT_SOLD_OUT'
  | 'PREFLIGHT_CITY_NOT_COVERED'
  | 'PREFLIGHT_MARKET_NOT_COVERED'
  | 'PREFLIGHT_RISK'
  | 'PREFLIGHT_CHECK_FAILED';

/** What a traveller reads when a check could not be made (docs/errors.md). */
export const CHECK_FAILED_MESSAGE = 'We could not check this purchase just now; please try again or ask a member of staff.';

const CODES = new Set<string>(['PREFLIGHT_INACTIVE', 'PREFLIGHT_NOT_YET_AVAILABLE', 'PREFLIGHT_NO_LONGER_AVAILABLE', 'PREFLIGHT_QUOTA_USER', 'PREFLIGHT_QUOTA_WALLET', 'PREFLIGHT_SOLD_OUT', 'PREFLIGHT_CITY_NOT_COVERED', 'PREFLIGHT_MARKET_NOT_COVERED', 'PREFLIGHT_RISK', 'PREFLIGHT_CHECK_FAILED']);

export interface PreflightContext {
  user_id?: string;
  wallet_id?: string;
  /** ISO 3166-1 alpha-2, e.g. `UA`. */
  market: string;
  /** City slug, e.g. `lviv`. */
  city: string;
  /** District slug, when the kiosk knows it. */
  cluster?: string;
  /** The area's safety score (0..1), when the host has one. */
  safety_score?: number;
  /** Logical time of the decision (epoch ms or ISO 8601): the plugins' `Date`. */
  now: number | string;
  /** Purchases the host counted (its sessions): of this product by this user, in this wallet, in all; and all this user's sessions in the last hour. */
  counts: { user: number; wallet: number; global: number; user_last_hour: number };
}

export interface PreflightRequest {
  plugins: Pick<PluginRegistry, 'find' | 'run'>;
  def: ResolvedProduct;
  context: PreflightContext;
  trace_id?: string;
  /** The risk pre-screen's thresholds (default in policy-risk: 5 sessions an hour, 500000 minor units). */
  risk?: { max_sessions_per_hour?: number; max_amount?: number };
}

export interface PreflightReason {
  code: PreflightCode;
  /** The sentence a traveller reads. */
  message: string;
  /** The plugin that refused. */
  plugin: string;
}

/** One policy's outcome, in the shape of `/v1/run`'s RESULT receipts. */
export interface PreflightPolicy {
  plugin: string;
  /** The version that ran (empty when none was loaded). */
  version: string;
  cid: string;
  verdict: 'ACK' | 'NACK';
  reason: string;
  evidence: unknown;
}

export interface PreflightResult {
  ok: boolean;
  verdict: 'ACK' | 'NACK';
  /** Why it failed, one per refusing policy, in {@link PREFLIGHT_POLICIES} order; empty when ok. */
  reasons: PreflightReason[];
  policies: PreflightPolicy[];
  /** The one input every policy got, and its cid (for the receipt). */
  input: PreflightInput;
  input_cid: string;
  trace_id?: string;
}

/** The input of the four preflight plugins (their plugin.json input_schema). */
export interface PreflightInput {
  product: {
    ref: string;
    cid: string;
    status: string;
    effective_from: string;
    effective_until: string | null;
    markets: string[];
    cities: string[];
    quota: ResolvedProduct['profiles']['quota'];
    safety: ResolvedProduct['profiles']['safety'];
    price: number;
    currency: string;
  };
  request: { user_id?: string; wallet_id?: string; market: string; city: string; cluster?: string; safety_score?: number };
  counts: PreflightContext['counts'];
  risk: { max_sessions_per_hour?: number; max_amount?: number };
}

export function preflightInput(def: ResolvedProduct, context: PreflightContext, risk: PreflightRequest['risk'] = {}): PreflightInput {
  const c = context;
  return {
    product: {
      ref: def.ref,
      cid: def.cid,
      status: def.status,
      effective_from: def.def.effective_from,
      effective_until: def.def.effective_until ?? null,
      markets: def.markets,
      cities: def.cities,
      quota: def.profiles.quota,
      safety: def.profiles.safety,
      price: def.profiles.pricing.price,
      currency: def.profiles.pricing.currency,
    },
    request: {
      ...(c.user_id !== undefined ? { user_id: c.user_id } : {}),
      ...(c.wallet_id !== undefined ? { wallet_id: c.wallet_id } : {}),
      market: c.market,
      city: c.city,
      ...(c.cluster !== undefined ? { cluster: c.cluster } : {}),
      ...(c.safety_score !== undefined ? { safety_score: c.safety_score } : {}),
    },
    counts: { ...c.counts },
    risk: { ...risk },
  };
}

/** Runs the four preflight policies in parallel and combines them: any NACK ⇒ NACK. Never rejects. */
export async function runPreflight(request: PreflightRequest): Promise<PreflightResult> {
  const { plugins, def, context } = request;
  const input = preflightInput(def, context, request.risk);
  const policies = await Promise.all(
    PREFLIGHT_POLICIES.map(async ({ name, range }): Promise<PreflightPolicy> => {
      const plugin = plugins.find(name, range);
      if (!plugin) return failed(name, '', '', { code: 'PLUGIN_NOT_FOUND', message: `No ${name}@${range} is loaded.`, retryable: false });
      const base = { plugin: name, version: plugin.manifest.version, cid: plugin.cid };
      let ran: PluginRunResult;
      try {
        ran = await plugins.run(plugin.key, input, { now: context.now, ...(request.trace_id ? { trace_id: request.trace_id } : {}), ctx: { product: def.ref } });
      } catch (err) {
        const data = toErrorData(err);
        return failed(name, base.version, base.cid, { code: data.code, message: data.message, retryable: data.retryable ?? ERROR_CODES[data.code].retryable });
      }
      const out = ran.output as { verdict: string; reason: string; evidence?: unknown };
      if (out.verdict === 'ACK') return { ...base, verdict: 'ACK', reason: out.reason, evidence: out.evidence ?? null };
      // A NACK must name a preflight code and a sentence; an ASK has no human to ask here: both fail closed otherwise.
      const ev = out.evidence as { code?: unknown; message?: unknown } | undefined;
      if (out.verdict === 'NACK' && typeof ev?.code === 'string' && CODES.has(ev.code) && typeof ev.message === 'string' && ev.message !== '') {
        return { ...base, verdict: 'NACK', reason: out.reason, evidence: out.evidence };
      }
      return { ...base, verdict: 'NACK', reason: `the policy answered ${out.verdict} without a preflight code: ${out.reason}`, evidence: { code: 'PREFLIGHT_CHECK_FAILED', message: CHECK_FAILED_MESSAGE, answered: out.verdict } };
    }),
  );
  const reasons: PreflightReason[] = policies
    .filter((p) => p.verdict === 'NACK')
    .map((p) => {
      const ev = p.evidence as { code: PreflightCode; message: string };
      return { code: ev.code, message: ev.message, plugin: p.plugin };
    });
  const ok = reasons.length === 0;
  return { ok, verdict: ok ? 'ACK' : 'NACK', reasons, policies, input, input_cid: cidOf(input), ...(request.trace_id ? { trace_id: request.trace_id } : {}) };
}

function failed(plugin: string, version: string, cid: string, fault: { code: string; message: string; retryable: boolean }): PreflightPolicy {
  return {
    plugin,
    version,
    cid,
    verdict: 'NACK',
    reason: `the policy failed: ${fault.code}: ${fault.message}`,
    evidence: { code: 'PREFLIGHT_CHECK_FAILED', message: CHECK_FAILED_MESSAGE, fault: fault.code, retryable: fault.retryable },
  };
}
