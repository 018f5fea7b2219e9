/**
 * Receipts and capsules (seed 004 §3–§4 "SIRP"; DESIGN.md "Formats → Receipt"): the signed, hash-chained
 * record of every decision Tessera takes. This module is the format and its offline check; the runtime writes
 * receipts (runtime/receipts), the bundle verifier and the renderer check them with {@link verifyChain}.
 *
 * - A **capsule** is the decided input: product, act, tenant, audience, source and the JSON view. Its cid
 *   ({@link capsuleId}) covers exactly those fields and nothing per-request (no nonce, no expiry, no time), so
 *   the same input to the same product gives the same capsule cid on every machine (seed 004 §7 idempotence).
 * - A **receipt** is a {@link ReceiptPayload} carried as a DSSE envelope ({@link RECEIPT_PAYLOAD_TYPE}) signed by
 *   the device key named in `device`. Its id is the cid of the payload ({@link receiptId}); `prev` is the id of
 *   the receipt before it in the capsule's chain (`null` for the first, always an INTENT).
 *
 * Pure module: shared by the runtime, the renderer and offline verifiers. No node: imports.
 */
import { canonicalBytes, canonicalize } from './canonical.js';
import { cidOf, cidOfBytes, isCid } from './cid.js';
import { fromBase64, verifyEnvelopeWith } from './dsse.js';
import type { DsseEnvelope, PublicKeyLookup, SignatureVerifier } from './dsse.js';
import { verifyEd25519Noble } from './ed25519-verify.js';
import { isTesseraError } from './errors.js';

/** DSSE payloadType of a receipt envelope. */
export const RECEIPT_PAYLOAD_TYPE = 'application/vnd.tessera.receipt+json';
/** DSSE payloadType of an approver's consent decision (embedded in CONSENT receipts). */
export const CONSENT_PAYLOAD_TYPE = 'application/vnd.tessera.consent+json';
/** Version tag of {@link ReceiptPayload}. */
export const RECEIPT_VERSION = 'tessera.receipt/1';
/** Version tag of {@link Capsule}. */
export const CAPSULE_VERSION = 'tessera.capsule/1';
/** Version tag of {@link ConsentDecision}. */
export const CONSENT_VERSION = 'tessera.consent/1';

/** The kinds of receipts, in the order a full chain usually has them. */
export const RECEIPT_KINDS = ['INTENT', 'PROPOSAL', 'RESULT', 'CONSENT', 'DELIVERY', 'EXECUTION', 'REDEMPTION', 'PAYMENT', 'ISSUANCE', 'SETTLEMENT'] as const;
export type ReceiptKind = (typeof RECEIPT_KINDS)[number];
/**
 * The kinds that start a chain (`prev` null), and only those: an INTENT (what was asked of the runtime), or a PROPOSAL
 * (what an agent proposed; seed 000 §8, issue 17). A PROPOSAL may appear nowhere else in a chain.
 */
export const CHAIN_START_KINDS: readonly ReceiptKind[] = ['INTENT', 'PROPOSAL'];

/** Who must approve an agent's proposal after the policies allowed it (the `approval.need` of its RESULT receipts). */
export const APPROVAL_NEEDS = ['none', 'traveller', 'operator'] as const;
export type ProposalApprovalNeed = (typeof APPROVAL_NEEDS)[number];

/**
 * The id of an agent's proposal: the cid of its canonical content — the action, its arguments, the agent session and
 * the owner (not the reason, not the time). The same request twice is one proposal; a PROPOSAL receipt's
 * `body.proposal` must equal this over its own body ({@link verifyChain} recomputes it).
 */
export function proposalId(p: { action: string; args: JsonObject | Record<string, unknown>; agent_session: string; owner: string }): string {
  return cidOf({ v: 'tessera.proposal/1', action: p.action, args: p.args, agent_session: p.agent_session, owner: p.owner });
}

/** A policy's (or the combined) verdict. */
export type Verdict = 'ACK' | 'NACK' | 'ASK';

/** JSON object values (what bodies and views are made of). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * The decided input. `capsuleId(capsule)` = `cidOf(capsule)`: it covers every field here and nothing else.
 * Per-request data (`hdr.nonce`, `hdr.exp`, arrival time) stays out and is recorded in the INTENT receipt.
 */
export interface Capsule {
  v: typeof CAPSULE_VERSION;
  /** cid of the product manifest that decided (the deployed product). */
  product: string;
  /** The act of the pipeline step, e.g. `transact`. */
  act: string;
  tenant: string;
  aud: string;
  /** `hdr.src` of the request: who sent it (replay protection is per `(src, nonce)`). */
  src: string;
  /** The NFC-normalized JSON view without its `hdr`. */
  view: JsonObject;
}

/**
 * A receipt's payload: what the device signs. `id = receiptId(payload) = cidOf(payload)`.
 *
 * Bodies by kind (all written by runtime/receipts):
 * - INTENT: `{intent, slots, nonce, exp (ISO or null), received_at, lock}` — what was asked, and the
 *   replay/expiry header, so `exp` is auditable; `lock` maps plugin name → manifest cid.
 * - PROPOSAL (issue 17; seed 000 §8 "agents only propose"; written by runtime/orchestrator/proposals.ts): the first
 *   receipt of an agent proposal's capsule: `{proposal, action, args, reason, agent: {session, type}, owner,
 *   product_runtime_session_id?, journey_id?}` where `proposal` = {@link proposalId} of `{action, args,
 *   agent.session, owner}`. The chain that follows is fixed, and {@link verifyChain} checks it:
 *   1. a RESULT from the policies: `{step: "policy", verdict: ACK|NACK, decision: ALLOW|DENY, policies: [...as below],
 *      approval: {need: none|traveller|operator}, input_cid}`. DENY ends the chain (the proposal was refused).
 *   2. when `need` is not `none`, the human decision: a RESULT `{step: "approval", via: "approval", verdict, decision:
 *      ALLOW (approve) | DENY (reject), policies: [], approval: {need, decision: approve|reject, by (principal), roles}}`
 *      whose roles satisfy the need (traveller: `traveller` or `operator`; operator: `operator`). DENY ends the chain.
 *   3. at most one EXECUTION, only after an ALLOW that needed no one or an approval: `{proposal, executor: "agent.proposal",
 *      effect: <action>, key (= proposal, the idempotency key), outcome: executed|failed, output_cid (cid of the
 *      action's answer, or null), error?: {code, message}}`.
 * - RESULT: `{verdict, decision: ALLOW|DENY|REQUIRE, policies: [{plugin, version, cid, verdict, reason,
 *   evidence}], permit?: DsseEnvelope, permit_id?: cid, consent?: {id, k, n}, via?: "consent"}`.
 * - CONSENT: `{consent, decision: approve|reject, approver (keyid), envelope: DsseEnvelope}` where `envelope`
 *   is the approver's signed {@link ConsentDecision}; {@link verifyChain} checks it too.
 * - DELIVERY: `{permit_id, recipient, effect, payload_cid}` — the permitted effect was handed to its recipient.
 * - EXECUTION: `{permit_id, executor, effect, outcome, output_cid}` — the executor finished the effect (an agent
 *   proposal's: see PROPOSAL).
 * - REDEMPTION: an entitlement was redeemed at a venue (`action: redeem`), or a redemption was undone by a
 *   compensating receipt (`action: undo`, `undo_of`) — issue 14, seed 001 §2 saga.
 * - PAYMENT: a product session's payment was captured or refunded (`action: capture|refund`, ledger transaction id).
 * - ISSUANCE: an entitlement token was issued for a product session (serial, kind, rights, validity).
 * - SETTLEMENT: a product session's closing summary (seed 000 §4.6).
 * Product-session receipts carry `product_runtime_session_id` in their body (seed 000 §3.2).
 */
export interface ReceiptPayload {
  v: typeof RECEIPT_VERSION;
  kind: ReceiptKind;
  /** cid of the {@link Capsule} this receipt belongs to. */
  capsule: string;
  /** id of the previous receipt of the same capsule; null only for the first (an INTENT or a PROPOSAL). */
  prev: string | null;
  /** Who or what the receipt is about: `tenant:<id>`, `key:<keyid>` (an approver), `outbox`, `device:<keyid>`. */
  subject: string;
  body: JsonObject;
  /** ISO-8601 UTC time the device issued it. Never decreases along a chain. */
  issued_at: string;
  /** keyid of the device key that signs the envelope. */
  device: string;
}

/** The fields of a consent decision, all required: what an approver signs, and nothing else. */
export const CONSENT_DECISION_FIELDS: readonly string[] = ['v', 'consent', 'capsule', 'decision', 'approver'];

/** What an approver signs (DSSE, {@link CONSENT_PAYLOAD_TYPE}) to approve or reject a consent request. */
export interface ConsentDecision {
  v: typeof CONSENT_VERSION;
  /** The consent request id. */
  consent: string;
  /** cid of the capsule the request is about. */
  capsule: string;
  decision: 'approve' | 'reject';
  /** keyid of the approver (must be the key that signs). */
  approver: string;
}

/** Path of a capsule's card (`GET`, JSON or HTML by content negotiation). */
export function cardPath(capsuleCid: string): string {
  return `/v1/r/${capsuleCid}`;
}

/** Path of a capsule's offline bundle (ZIP) download: the route the bundle builder registers. */
export function bundlePath(capsuleCid: string): string {
  return `/v1/r/${capsuleCid}/bundle`;
}

/** The cid of a capsule. */
export function capsuleId(capsule: Capsule): string {
  return cidOf(capsule);
}

/** The id of a receipt: the cid of its payload (canonical bytes, so independent of key order). */
export function receiptId(payload: ReceiptPayload): string {
  return cidOf(payload);
}

/** The canonical bytes a receipt envelope carries (and the device signs, inside the DSSE PAE). */
export function receiptBytes(payload: ReceiptPayload): Uint8Array {
  return canonicalBytes(payload);
}

/** One receipt that passed {@link verifyChain}. */
export interface VerifiedReceipt {
  id: string;
  payload: ReceiptPayload;
  /** The keyid whose signature verified (equal to `payload.device`). */
  keyid: string;
}

/** The outcome of {@link verifyChain}: every receipt, or the first failure with where it is. */
export type ChainResult =
  | { ok: true; capsule: string; receipts: VerifiedReceipt[] }
  | {
      ok: false;
      /** Index of the failing envelope in the array given (−1 for the chain as a whole, e.g. empty). */
      index: number;
      /** The field that fails: `signature`, `payloadType`, `payload`, `v`, `kind`, `capsule`, `prev`, `device`, `issued_at`, `body.envelope`, … */
      field: string;
      /** One sentence naming the receipt index, the field and what is wrong. */
      reason: string;
    };

export interface VerifyChainOptions {
  /** The capsule cid every receipt must name; by default the first receipt's. */
  capsule?: string;
  /** Signature check; default @noble/ed25519 (pure). The runtime passes node:crypto's for speed. */
  verify?: SignatureVerifier;
}

const RECEIPT_FIELDS = ['body', 'capsule', 'device', 'issued_at', 'kind', 'prev', 'subject', 'v'];
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/**
 * Checks a capsule's receipt chain offline: for each envelope, in order, its DSSE signature by the key its
 * `device` field names (found with `lookupKey`), its payload type and shape, that it names the capsule, that
 * `prev` is the id of the envelope before it (null for the first, which must be an INTENT or a PROPOSAL), that ids
 * are unique and `issued_at` never decreases; for CONSENT receipts, the approver's embedded signed decision
 * (signature by `approver`, same capsule and consent id, same decision); for a chain that starts with a PROPOSAL,
 * the proposal's id and the order policy RESULT → approval → EXECUTION (nothing executes that was refused, rejected
 * or not approved as its need says).
 *
 * Never throws: malformed input is a failure with a reason such as
 * `receipt 2 (prev): expected b3:…, the id of receipt 1, got b3:…`.
 */
export function verifyChain(envelopes: readonly DsseEnvelope[], lookupKey: PublicKeyLookup, options: VerifyChainOptions = {}): ChainResult {
  const verify = options.verify ?? verifyEd25519Noble;
  if (!Array.isArray(envelopes) || envelopes.length === 0) return fail(-1, 'receipts', 'the chain has no receipts');
  const receipts: VerifiedReceipt[] = [];
  const seen = new Set<string>();
  const proposal = newProposalState();
  let capsule = options.capsule;
  for (let i = 0; i < envelopes.length; i++) {
    const env = envelopes[i]!;
    let payloadBytes: Uint8Array;
    let payloadType: string;
    let keyid: string;
    let claimedDevice: string | undefined;
    // The device named inside the payload is the only key allowed to sign it; read it before verifying.
    try {
      claimedDevice = (JSON.parse(new TextDecoder().decode(fromBase64(env.payload))) as { device?: unknown }).device as string | undefined;
    } catch {
      return fail(i, 'payload', `receipt ${i} (payload): not base64-encoded JSON`);
    }
    if (typeof claimedDevice !== 'string' || !isCid(claimedDevice)) return fail(i, 'device', `receipt ${i} (device): must be the keyid (b3: cid) of the signing device key`);
    const only: PublicKeyLookup = (k) => (k === claimedDevice ? lookupKey(k) : undefined);
    try {
      const verified = verifyEnvelopeWith(env, only, verify);
      payloadBytes = verified.payload;
      payloadType = verified.payloadType;
      keyid = verified.keyid;
    } catch (err) {
      const why = isTesseraError(err) ? `${err.code}: ${err.message}` : String(err);
      return fail(i, 'signature', `receipt ${i} (signature): no valid signature by device ${claimedDevice} (${why})`);
    }
    if (payloadType !== RECEIPT_PAYLOAD_TYPE) return fail(i, 'payloadType', `receipt ${i} (payloadType): "${payloadType}" is not ${RECEIPT_PAYLOAD_TYPE}`);
    let payload: ReceiptPayload;
    const text = new TextDecoder().decode(payloadBytes);
    try {
      payload = JSON.parse(text) as ReceiptPayload;
    } catch {
      return fail(i, 'payload', `receipt ${i} (payload): not JSON`);
    }
    const shape = shapeProblem(payload);
    if (shape !== null) return fail(i, shape.field, `receipt ${i} (${shape.field}): ${shape.problem}`);
    try {
      // The payload must be exactly its canonical bytes: then receiptId(payload) is the cid of the signed bytes.
      if (canonicalize(payload) !== text) return fail(i, 'payload', `receipt ${i} (payload): the signed bytes are not canonical JSON (RFC 8785 over NFC)`);
    } catch {
      return fail(i, 'payload', `receipt ${i} (payload): cannot be canonicalized`);
    }
    const id = cidOfBytes(payloadBytes);
    capsule ??= payload.capsule;
    const link = linkProblem(i, id, payload, receipts[i - 1], capsule, seen);
    if (link !== null) return link;
    if (payload.kind === 'CONSENT') {
      const problem = consentProblem(payload, capsule, lookupKey, verify);
      if (problem !== null) return fail(i, `body.${problem.field}`, `receipt ${i} (body.${problem.field}): ${problem.problem}`);
    }
    const step = proposalStep(proposal, i, payload);
    if (step !== null) return step;
    receipts.push({ id, payload, keyid });
  }
  return { ok: true, capsule: capsule!, receipts };
}

/**
 * The rules that tie receipt `i` to its chain (shared by {@link verifyChain} and {@link checkBuiltChain}): it names
 * the capsule; the first is an INTENT or a PROPOSAL with `prev` null (a PROPOSAL is never later); every later one's
 * `prev` is the id of the one before, and its `issued_at` is not earlier; no id appears twice. Adds `id` to `seen`.
 */
function linkProblem(i: number, id: string, payload: ReceiptPayload, before: { id: string; payload: ReceiptPayload } | undefined, capsule: string, seen: Set<string>): ChainResult | null {
  if (payload.capsule !== capsule) return fail(i, 'capsule', `receipt ${i} (capsule): names ${payload.capsule}, not the capsule ${capsule}`);
  if (before === undefined) {
    if (payload.prev !== null) return fail(i, 'prev', `receipt 0 (prev): the first receipt must have prev null, got ${String(payload.prev)}`);
    if (!CHAIN_START_KINDS.includes(payload.kind)) return fail(i, 'kind', `receipt 0 (kind): the chain must start with an INTENT or a PROPOSAL, got ${payload.kind}`);
  } else {
    if (payload.kind === 'PROPOSAL') return fail(i, 'kind', `receipt ${i} (kind): a PROPOSAL may only start a chain`);
    if (payload.prev !== before.id) return fail(i, 'prev', `receipt ${i} (prev): expected ${before.id}, the id of receipt ${i - 1}, got ${String(payload.prev)}`);
    if (Date.parse(payload.issued_at) < Date.parse(before.payload.issued_at)) return fail(i, 'issued_at', `receipt ${i} (issued_at): ${payload.issued_at} is before receipt ${i - 1}'s ${before.payload.issued_at}`);
  }
  if (seen.has(id)) return fail(i, 'id', `receipt ${i} (id): ${id} appears twice in the chain`);
  seen.add(id);
  return null;
}

/**
 * The chain rules of {@link verifyChain} — payload shape, capsule binding, `prev` links, kinds, time order, unique
 * ids, one signing device — over receipts this process has just built and signed, given as their ids (the cid of
 * the signed bytes, computed when they were built) and payloads. It does not decode envelopes or verify
 * signatures: the builder made both from these very payloads. The runtime runs it on every chain it writes
 * before the write commits; offline verifiers use {@link verifyChain}.
 */
export function checkBuiltChain(receipts: ReadonlyArray<{ id: string; payload: ReceiptPayload }>, options: { capsule: string; device: string }): ChainResult {
  if (receipts.length === 0) return fail(-1, 'receipts', 'the chain has no receipts');
  const seen = new Set<string>();
  const proposal = newProposalState();
  for (let i = 0; i < receipts.length; i++) {
    const { id, payload } = receipts[i]!;
    const shape = shapeProblem(payload);
    if (shape !== null) return fail(i, shape.field, `receipt ${i} (${shape.field}): ${shape.problem}`);
    if (payload.device !== options.device) return fail(i, 'device', `receipt ${i} (device): names ${payload.device}, not the signing device ${options.device}`);
    const link = linkProblem(i, id, payload, receipts[i - 1], options.capsule, seen);
    if (link !== null) return link;
    const step = proposalStep(proposal, i, payload);
    if (step !== null) return step;
  }
  return { ok: true, capsule: options.capsule, receipts: receipts.map((r) => ({ id: r.id, payload: r.payload, keyid: options.device })) };
}

/**
 * Parses and checks an approver's signed {@link ConsentDecision} envelope. Returns the decision and signing
 * keyid, or a problem; never throws. Used by {@link verifyChain} and by the runtime when a decision arrives.
 */
export function verifyConsentDecision(envelope: unknown, lookupKey: PublicKeyLookup, verify: SignatureVerifier = verifyEd25519Noble): { ok: true; decision: ConsentDecision; keyid: string } | { ok: false; problem: string } {
  try {
    const verified = verifyEnvelopeWith(envelope as DsseEnvelope, lookupKey, verify);
    if (verified.payloadType !== CONSENT_PAYLOAD_TYPE) return { ok: false, problem: `payloadType "${verified.payloadType}" is not ${CONSENT_PAYLOAD_TYPE}` };
    const decision = JSON.parse(new TextDecoder().decode(verified.payload)) as ConsentDecision;
    if (decision === null || typeof decision !== 'object' || decision.v !== CONSENT_VERSION) return { ok: false, problem: `the payload is not a ${CONSENT_VERSION} decision` };
    if (decision.decision !== 'approve' && decision.decision !== 'reject') return { ok: false, problem: 'decision must be "approve" or "reject"' };
    if (typeof decision.consent !== 'string' || !isCid(decision.capsule)) return { ok: false, problem: 'the decision needs a consent id and a capsule cid' };
    if (decision.approver !== verified.keyid) return { ok: false, problem: `the decision names approver ${String(decision.approver)} but is signed by ${verified.keyid}` };
    return { ok: true, decision, keyid: verified.keyid };
  } catch (err) {
    return { ok: false, problem: isTesseraError(err) ? `${err.code}: ${err.message}` : 'not a DSSE envelope' };
  }
}

/** Where a proposal's chain stands while it is checked (see PROPOSAL on {@link ReceiptPayload}). */
interface ProposalChainState {
  /** True once receipt 0 was a PROPOSAL. */
  active: boolean;
  /** `policy` waits for the policies' RESULT; `approval` for the human decision; `execution` for the EXECUTION; `closed`: nothing more. */
  next: 'policy' | 'approval' | 'execution' | 'closed';
  need: ProposalApprovalNeed | null;
}

const newProposalState = (): ProposalChainState => ({ active: false, next: 'policy', need: null });
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * The rules of a proposal's chain, one receipt at a time (shared by {@link verifyChain} and {@link checkBuiltChain}):
 * the PROPOSAL's body and id, then policy RESULT → approval (when needed) → at most one EXECUTION, and nothing
 * after a DENY. Chains that start with an INTENT are not touched. Returns the failure, or null.
 */
function proposalStep(state: ProposalChainState, i: number, payload: ReceiptPayload): ChainResult | null {
  const body = payload.body as Record<string, unknown>;
  const bad = (field: string, problem: string): ChainResult => fail(i, `body.${field}`, `receipt ${i} (body.${field}): ${problem}`);
  if (i === 0) {
    if (payload.kind !== 'PROPOSAL') return null;
    state.active = true;
    if (!nonEmpty(body['action'])) return bad('action', 'a PROPOSAL must name its action');
    if (!isObject(body['args'])) return bad('args', 'a PROPOSAL\'s args must be a JSON object');
    const agent = body['agent'];
    if (!isObject(agent) || !nonEmpty(agent['session']) || !nonEmpty(agent['type'])) return bad('agent', 'a PROPOSAL must name the agent {session, type}');
    if (!nonEmpty(body['owner'])) return bad('owner', 'a PROPOSAL must name its owner');
    let expected: string;
    try {
      expected = proposalId({ action: body['action'], args: body['args'], agent_session: agent['session'], owner: body['owner'] });
    } catch {
      return bad('args', 'cannot be canonicalized');
    }
    if (body['proposal'] !== expected) return bad('proposal', `is ${String(body['proposal'])}, but the cid of the proposal's action, args, agent session and owner is ${expected}`);
    return null;
  }
  if (!state.active) return null;
  const decision = body['decision'];
  const approval = body['approval'];
  if (state.next === 'closed') return fail(i, 'kind', `receipt ${i} (kind): the proposal's chain ended (refused, rejected or executed); no ${payload.kind} may follow`);
  if (state.next === 'policy') {
    if (payload.kind !== 'RESULT' || body['via'] !== undefined) return fail(i, 'kind', `receipt ${i} (kind): a PROPOSAL is followed by the policies' RESULT, got ${payload.kind}`);
    if (decision !== 'ALLOW' && decision !== 'DENY') return bad('decision', 'the policies\' RESULT must decide ALLOW or DENY');
    if (!isObject(approval) || !(APPROVAL_NEEDS as readonly unknown[]).includes(approval['need'])) return bad('approval', `must be {need: ${APPROVAL_NEEDS.join('|')}}`);
    state.need = approval['need'] as ProposalApprovalNeed;
    state.next = decision === 'DENY' ? 'closed' : state.need === 'none' ? 'execution' : 'approval';
    return null;
  }
  if (state.next === 'approval') {
    if (payload.kind === 'EXECUTION') return fail(i, 'kind', `receipt ${i} (kind): the proposal needs the ${String(state.need)}'s approval before it executes`);
    if (payload.kind !== 'RESULT' || body['via'] !== 'approval') return fail(i, 'kind', `receipt ${i} (kind): the proposal waits for its approval (a RESULT via "approval"), got ${payload.kind}`);
    if (!isObject(approval) || approval['need'] !== state.need) return bad('approval', `must repeat the need "${String(state.need)}" of the policies' RESULT`);
    const says = approval['decision'];
    if ((says !== 'approve' || decision !== 'ALLOW') && (says !== 'reject' || decision !== 'DENY')) return bad('decision', 'an approval is {approval.decision: approve, decision: ALLOW} or {approval.decision: reject, decision: DENY}');
    const roles = approval['roles'];
    if (!nonEmpty(approval['by']) || !Array.isArray(roles)) return bad('approval', 'must name who decided (`by`) and their `roles`');
    if (says === 'approve' && !approverSatisfies(state.need!, roles)) return bad('approval.roles', `[${roles.join(', ')}] cannot approve what needs the ${String(state.need)}`);
    state.next = says === 'approve' ? 'execution' : 'closed';
    return null;
  }
  if (payload.kind !== 'EXECUTION') return fail(i, 'kind', `receipt ${i} (kind): an approved proposal is followed by its EXECUTION, got ${payload.kind}`);
  if (body['proposal'] !== undefined && body['key'] !== body['proposal']) return bad('key', 'the execution\'s idempotency key must be the proposal id');
  if (body['outcome'] !== 'executed' && body['outcome'] !== 'failed') return bad('outcome', 'must be "executed" or "failed"');
  state.next = 'closed';
  return null;
}

/** Whether someone holding `roles` may approve what needs `need`: an operator may approve what a traveller may. */
export function approverSatisfies(need: ProposalApprovalNeed, roles: readonly unknown[]): boolean {
  if (need === 'none') return true;
  if (need === 'traveller') return roles.includes('traveller') || roles.includes('operator');
  return roles.includes('operator');
}

function consentProblem(payload: ReceiptPayload, capsule: string, lookupKey: PublicKeyLookup, verify: SignatureVerifier): { field: string; problem: string } | null {
  const body = payload.body as { consent?: unknown; decision?: unknown; approver?: unknown; envelope?: unknown };
  if (typeof body.approver !== 'string') return { field: 'approver', problem: 'a CONSENT receipt must name the approver keyid' };
  const approver = body.approver;
  const checked = verifyConsentDecision(body.envelope, (k) => (k === approver ? lookupKey(k) : undefined), verify);
  if (!checked.ok) return { field: 'envelope', problem: `the approver's signed decision does not verify: ${checked.problem}` };
  if (checked.decision.capsule !== capsule) return { field: 'envelope', problem: `the approver signed for capsule ${checked.decision.capsule}, not ${capsule}` };
  if (checked.decision.consent !== body.consent) return { field: 'consent', problem: `the approver signed consent ${checked.decision.consent}, the receipt says ${String(body.consent)}` };
  if (checked.decision.decision !== body.decision) return { field: 'decision', problem: `the approver signed "${checked.decision.decision}", the receipt says ${String(body.decision)}` };
  return null;
}

function shapeProblem(p: ReceiptPayload): { field: string; problem: string } | null {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return { field: 'payload', problem: 'must be a JSON object' };
  const keys = Object.keys(p).sort();
  const extra = keys.filter((k) => !RECEIPT_FIELDS.includes(k));
  if (extra.length > 0) return { field: extra[0]!, problem: 'is not a receipt field' };
  if (p.v !== RECEIPT_VERSION) return { field: 'v', problem: `must be "${RECEIPT_VERSION}"` };
  if (!(RECEIPT_KINDS as readonly string[]).includes(p.kind)) return { field: 'kind', problem: `must be one of ${RECEIPT_KINDS.join(', ')}` };
  if (!isCid(p.capsule)) return { field: 'capsule', problem: 'must be a b3: cid' };
  if (p.prev !== null && !isCid(p.prev)) return { field: 'prev', problem: 'must be a receipt id (b3: cid) or null' };
  if (typeof p.subject !== 'string' || p.subject === '') return { field: 'subject', problem: 'must be a non-empty string' };
  if (p.body === null || typeof p.body !== 'object' || Array.isArray(p.body)) return { field: 'body', problem: 'must be a JSON object' };
  if (typeof p.issued_at !== 'string' || !ISO_UTC.test(p.issued_at)) return { field: 'issued_at', problem: 'must be an ISO-8601 UTC time' };
  if (!isCid(p.device)) return { field: 'device', problem: 'must be a keyid (b3: cid)' };
  return null;
}

function fail(index: number, field: string, reason: string): ChainResult {
  return { ok: false, index, field, reason };
}
