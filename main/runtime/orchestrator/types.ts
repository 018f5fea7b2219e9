/**
 * Tessera's Agent Orchestrator (seed 000 §5.3, §6.4, §7.3, §8; issue 17 points 3–6, 8): Tessera's own agents on the
 * generic agent runtime (../agents). Shared contract of the module; the pieces:
 *
 * - ./store.ts — the default adapters on the device: sessions in SQLite (`agent_sessions`), transcripts in SQLite
 *   (`agent_transcript`), files under `<data>/agents/<session>/files`. Migrations owned here.
 * - ./profiles.ts — profiles from `resources/agents/*.yaml` then `<data>/agents/profiles/*.yaml` (Trip Planner,
 *   Journey Guide, Support, Ops/SLO), validated with clear errors; `model: default` takes the device's model config.
 * - ./tools.ts — the in-process MCP server `tessera` per session: read-only runtime tools, Tessera's signed tool
 *   plugins as MCP tools (capability checks and permits as in scenarios), and the one mutating tool `propose`.
 * - ./proposals.ts — agents only propose (§8): PROPOSAL receipts, policy plugins, approvals, exactly-once execution.
 * - ./responders.ts — the rule-based behaviour of each agent (no model, model down).
 * - ./index.ts — createOrchestrator: composes the above with the agent runtime; routing by policy, rate limits,
 *   the audit trail in the journal, `agent.degraded`.
 */
import type { AgentEvent, Budgets, SessionInfo, TranscriptEntry, TurnResult, Usage } from '../agents/types.js';
import type { Role } from '../../common/roles.js';

// ---- proposals -------------------------------------------------------------------------------------------------

/** Who must approve a proposal after the policies allowed it. */
export type ApprovalNeed = 'none' | 'traveller' | 'operator';

/**
 * - `refused`: a policy said no (terminal).
 * - `awaiting_approval`: allowed by policy; waits for the traveller or operator.
 * - `rejected`: the approver said no (terminal).
 * - `approved` → `executing` → `executed` | `failed`: runs exactly once, keyed by the proposal's cid.
 */
export type ProposalState = 'refused' | 'awaiting_approval' | 'rejected' | 'approved' | 'executing' | 'executed' | 'failed';

export interface ProposalRequest {
  /** A registered action: `journey.skip`, `journey.change`, `session.buy`, `entitlement.redeem`, `agent.profile.change`… */
  action: string;
  args: Record<string, unknown>;
  /** The agent's one-sentence reason, shown on the card. */
  reason: string;
  agent: { session: string; type: string };
  /** The agent session's owner (the principal the proposal is for). */
  owner: string;
  /** From the agent session's metadata, when it has them. */
  product_runtime_session_id?: string;
  journey_id?: string;
  trace_id?: string;
}

export interface ProposalView {
  /** cid of the canonical proposal (action, args, agent session, owner): the same request twice is one proposal. */
  id: string;
  /** The capsule holding its receipt chain (card: `/v1/r/<capsule>`). */
  capsule: string;
  action: string;
  args: Record<string, unknown>;
  reason: string;
  agent: { session: string; type: string };
  owner: string;
  state: ProposalState;
  approval: { need: ApprovalNeed; by?: string; at?: string; decision?: 'approve' | 'reject' };
  policies: Array<{ plugin: string; verdict: 'ACK' | 'NACK'; reason: string }>;
  /** The executor's answer once executed; its error when failed. */
  result?: unknown;
  error?: { code: string; message: string };
  /** A sentence for the card in the owner's language when known (else English). */
  text: string;
  created_at: string;
  updated_at: string;
}

/** One action agents may propose, registered by the module that owns the change. */
export interface ProposalAction {
  name: string;
  /** Who approves by default (a product may ask for more, never less). */
  approval: ApprovalNeed;
  /** @throws TesseraError VALIDATION_FAILED naming the argument. */
  validate(args: Record<string, unknown>): void;
  /** Runs the change. `key` (the proposal id) is the idempotency key: called again with the same key after a crash, it must not apply twice. */
  execute(args: Record<string, unknown>, context: { key: string; proposal: ProposalView }): Promise<unknown>;
  /** The card's sentence. */
  describe(args: Record<string, unknown>, language: string): string;
  /**
   * What the proposal would cost, in minor units, when it spends money (`session.buy`: the product's price): the
   * policy weighs it against the device's limit. Absent for actions that spend nothing.
   * @throws as validate (e.g. PRODUCTDEF_NOT_FOUND)
   */
  price?(args: Record<string, unknown>): { amount: number; currency: string };
}

export interface Proposals {
  registerAction(action: ProposalAction): void;
  actions(): string[];
  /** PROPOSAL receipt, then the policy plugins (RESULT receipt). Idempotent by cid. @throws AGENT_ACTION_UNKNOWN, VALIDATION_FAILED */
  propose(request: ProposalRequest): Promise<ProposalView>;
  /** @throws AGENT_PROPOSAL_NOT_FOUND */
  get(id: string): ProposalView;
  list(filter?: { session?: string; owner?: string; state?: ProposalState; limit?: number }): ProposalView[];
  /**
   * The approver's decision; approve runs the action exactly once. @throws AGENT_PROPOSAL_NOT_FOUND,
   * AGENT_PROPOSAL_DECIDED, AGENT_APPROVAL_REQUIRED (the caller's roles cannot approve this need)
   */
  decide(id: string, decision: 'approve' | 'reject', by: { principal: string; roles: readonly Role[] }): Promise<ProposalView>;
  /** At start: proposals left `approved`/`executing` by a crash are executed (again, with the same key). */
  recover(): Promise<void>;
}

// ---- the orchestrator ------------------------------------------------------------------------------------------

/** What a caller is, as the orchestrator's policy sees it. */
export interface Caller {
  /** Stable owner string of sessions, e.g. `traveller`, `operator`, `staff` (the role the request acts as). */
  principal: string;
  roles: readonly Role[];
}

export interface AgentSummary {
  type: string;
  title: string;
  description?: string;
  /** Roles that may open a session with this agent (policy-based routing). */
  roles: Role[];
  /** Whether a model is configured for it. */
  model: boolean;
  /** Model missing/down: answers come from rules (`fallback`) or the agent is off. */
  degraded: boolean;
  enabled: boolean;
}

export interface Orchestrator {
  agents(caller: Caller): Promise<AgentSummary[]>;
  /** @throws FORBIDDEN (the caller's roles may not use this agent), AGENT_* of the runtime */
  open(caller: Caller, request: { agent_type: string; metadata?: Record<string, unknown>; variables?: Record<string, string> }): Promise<SessionInfo>;
  /** Rate-limited per caller. @throws AGENT_RATE_LIMITED, FORBIDDEN (not the caller's session), AGENT_* */
  say(caller: Caller, session: string, text: string, options?: { trace_id?: string }): Promise<TurnResult & { proposals: ProposalView[] }>;
  sessions(caller: Caller, filter?: { agent_type?: string; state?: string; limit?: number }): Promise<SessionInfo[]>;
  session(caller: Caller, id: string): Promise<SessionInfo>;
  transcript(caller: Caller, id: string, options?: { after?: number; limit?: number }): Promise<TranscriptEntry[]>;
  budgets(caller: Caller, id: string): Promise<{ session: { limit: Budgets; used: Usage }; day: { date: string; limit: Budgets; used: Usage } }>;
  /** Resume a paused session with more budget (operator). */
  resume(caller: Caller, id: string, extend?: Budgets): Promise<SessionInfo>;
  close(caller: Caller, id: string): Promise<SessionInfo>;
  /** Room subscription for the WebSocket route, after checking the caller may see the session. */
  subscribe(caller: Caller, id: string, after: number, listener: (event: AgentEvent) => void): Promise<{ gap: boolean; dispose(): void }>;
  readonly proposals: Proposals;
  /** At start: recover proposals, then resume sessions a crash left running. */
  start(): Promise<void>;
  shutdown(): Promise<void>;
}
