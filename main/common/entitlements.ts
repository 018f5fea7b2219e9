/**
 * Public types of the entitlements module (runtime/entitlements; notes/ISSUE14-PLAN.md "Entitlements runtime API"). Pure:
 * shared by the runtime, the host and the renderer client.
 */
import type { EntitlementKind } from './entitlement-token.js';

export type { EntitlementKind };

/** A mis-tap can be undone for this long after the redemption (a compensating REDEMPTION receipt). */
export const UNDO_WINDOW_MS = 2 * 60_000;

export interface IssueRequest {
  product_runtime_session_id: string;
  product_cid: string;
  /** `id@version`. */
  product_ref: string;
  kind: EntitlementKind;
  /** multi_use: how many uses. */
  uses?: number;
  /** stored_value: amount in minor units, with its currency. */
  amount?: number;
  currency?: string;
  /** time_pass: uses per venue (absent: unlimited). */
  uses_per_venue?: number;
  /** Epoch ms. */
  valid_from: number;
  valid_until: number;
  venues: string[];
  user_id?: string;
  title?: string;
}

export type EntitlementState = 'active' | 'used' | 'expired' | 'revoked';

export interface IssuedEntitlement {
  serial: string;
  code: string;
  product_runtime_session_id: string;
  product_cid: string;
  product_ref: string;
  title?: string;
  kind: EntitlementKind;
  rights_total?: number;
  rights_left?: number;
  currency?: string;
  valid_from: string;
  valid_until: string;
  venues: string[];
  user_id?: string;
  state: EntitlementState;
  issued_at: string;
  link?: string;
}

export type RedeemVerdict =
  | 'REDEEMED' | 'VALID' | 'ALREADY_USED' | 'EXPIRED' | 'NOT_YET_VALID' | 'NOT_VALID_HERE' | 'UNKNOWN_ISSUER' | 'REVOKED' | 'DAMAGED_CODE'
  | 'INSUFFICIENT_BALANCE' | 'UNDONE'
  /** Issue 16 (a product protected by the cloud, `prevent`/`bound`): this device holds no active lease on the entitlement. */
  | 'NO_LEASE'
  /** Issue 16: the device's lease on the entitlement is used up (and `bound` allows no more beyond it). */
  | 'LEASE_EXHAUSTED'
  /** Issue 16: the deny list for the product is older than its freshness bound; the device fails closed. */
  | 'DENY_LIST_STALE';

export const REDEEM_VERDICTS: readonly RedeemVerdict[] = [
  'REDEEMED', 'VALID', 'ALREADY_USED', 'EXPIRED', 'NOT_YET_VALID', 'NOT_VALID_HERE', 'UNKNOWN_ISSUER', 'REVOKED', 'DAMAGED_CODE', 'INSUFFICIENT_BALANCE', 'UNDONE',
  'NO_LEASE', 'LEASE_EXHAUSTED', 'DENY_LIST_STALE',
];

/**
 * The lease a redemption used or would use (issue 16 §5), in a {@link RedeemAnswer} of a product the cloud protects
 * with `prevent` or `bound`. `left` is what this device may still redeem offline under the lease.
 */
export interface RedeemLease {
  /** The lease id; null when the device holds none (a `bound` redemption beyond any lease). */
  lease: string | null;
  rights: number;
  used: number;
  left: number;
  /** When the lease expires (ISO), null without one. */
  exp: string | null;
  protection: 'prevent' | 'bound' | 'detect';
  /** `bound`: redemptions of this entitlement made here beyond the lease (this one included when it is one). */
  beyond?: number;
  /** `bound`: how many beyond the lease the product allows per device. */
  bound?: number;
}

export interface RedeemAnswer {
  verdict: RedeemVerdict;
  /** True for REDEEMED, VALID and UNDONE. */
  ok: boolean;
  /** One English sentence a person reads. */
  message: string;
  entitlement?: {
    serial: string; product_cid: string; product_ref?: string; title?: string; kind: EntitlementKind;
    rights_total?: number; rights_left?: number; currency?: string; valid_from: string; valid_until: string; venues: string[];
  };
  redemption?: { id: string; at: string; venue: string; screen?: string; amount?: number; undo_until: string; receipt_id: string; capsule: string; undone_at?: string };
  /** ALREADY_USED: when and where it was used last. */
  previous?: { at: string; venue: string; screen?: string };
  /** Issue 16: the lease balance, for products protected by leases (absent for every other product). */
  lease?: RedeemLease;
}

export interface RedeemRequest {
  code: string;
  venue: string;
  /** stored_value: minor units to take. */
  amount?: number;
  /** Which staff screen redeemed it (free text, shown in history). */
  screen?: string;
}

export interface RedemptionRecord {
  id: string;
  serial: string;
  venue: string;
  screen?: string;
  amount?: number;
  at: string;
  undo_until: string;
  undone_at?: string;
  undo_reason?: string;
  receipt_id: string;
  capsule: string;
  kind: EntitlementKind;
  product_cid: string;
  product_ref?: string;
  title?: string;
  rights_before?: number;
  rights_after?: number;
  product_runtime_session_id?: string;
}

export interface IssuingState {
  paused: boolean;
  since?: string;
  reason?: string;
}

export interface EntitlementChange {
  serial: string;
  state: EntitlementState;
  product_runtime_session_id?: string;
}
