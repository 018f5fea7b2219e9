/**
 * The client side of issue 17's agent routes (main/host/http/agents.ts, README "Agents"), written once over a
 * {@link Requester} like ./journeys-api.ts: the HTTP transport sends the request itself, the Electron transport hands
 * it to the main process (IPC method `api`), which injects it into the same Fastify routes with the window's
 * credential. The session's room (`/ws/agents/:id?after=N`) is a WebSocket: only the HTTP transport opens it
 * ({@link AgentClient.room}); elsewhere the turn's answer arrives with `say`'s response.
 *
 * - `GET  /api/agents` → {@link AgentSummaryView}[] (traveller, operator)
 * - `POST /api/agents/sessions` `{agent_type, metadata?}` → {@link AgentSessionView}
 * - `GET  /api/agents/sessions?agent_type&state&limit`, `GET /api/agents/sessions/:id`
 * - `POST /api/agents/sessions/:id/messages` `{text}` → {@link AgentTurnView}
 * - `GET  /api/agents/sessions/:id/transcript?after&limit`, `GET …/budgets`, `POST …/resume {extend?}` (operator)
 * - `GET  /api/agents/proposals?session&state`, `POST /api/agents/proposals/:id/approve|reject`
 *
 * The shapes mirror main/runtime/agents/types.ts (SessionInfo, TranscriptEntry, TurnResult, AgentEvent v1) and
 * main/runtime/orchestrator/types.ts (ProposalView, AgentSummary); main/common imports nothing outside itself, so
 * they are restated here (test/unit/agents-api.test.ts checks the runtime's types still fit them).
 * Pure module: shared by the renderer and the host.
 */
import { query } from './products-api.js';
import type { Requester } from './products-api.js';

export type AgentSessionState = 'idle' | 'running' | 'paused' | 'closed';

export interface AgentUsage {
  tokens: number;
  tool_calls: number;
  wall_ms: number;
  model_calls: number;
}

/** Limits; an absent one is unlimited. */
export type AgentBudgets = Partial<AgentUsage>;
export type AgentBudgetKind = keyof AgentUsage;

/** Which budget ran out, in which scope: the session waits for `resume` with more. */
export interface AgentPause {
  budget: AgentBudgetKind;
  scope: 'session' | 'day';
  used: number;
  limit: number;
  at: string;
  since: string;
}

/** An agent session (SessionInfo). */
export interface AgentSessionView {
  id: string;
  agent_type: string;
  state: AgentSessionState;
  /** Who opened it: `traveller` or `operator`. */
  owner: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  last_active_at: string;
  usage: AgentUsage;
  pause: AgentPause | null;
  /** Answers come from the agent's rules: its model is missing or down. */
  degraded: boolean;
}

/** An agent the caller may open a session with (AgentSummary). */
export interface AgentSummaryView {
  type: string;
  title: string;
  description?: string;
  roles: string[];
  /** A model is configured for it. */
  model: boolean;
  /** Model missing or down: answers come from rules (or the agent is off). */
  degraded: boolean;
  enabled: boolean;
}

export interface AgentToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface AgentErrorInfo {
  code: string;
  message: string;
}

/** One line of a session's transcript (TranscriptEntry). */
export type AgentTranscriptEntry =
  | { seq: number; at: string; turn: string; type: 'user'; text: string; by: string }
  | { seq: number; at: string; turn: string; type: 'assistant'; text: string; tool_calls: AgentToolCall[]; source: 'model' | 'fallback'; usage?: { prompt_tokens: number; completion_tokens: number } }
  | { seq: number; at: string; turn: string; type: 'tool_call'; call: AgentToolCall; idempotency_key: string }
  | { seq: number; at: string; turn: string; type: 'tool_result'; call_id: string; ok: boolean; content: string; error?: AgentErrorInfo }
  | { seq: number; at: string; turn: string; type: 'turn_end'; outcome: 'completed' | 'failed' | 'paused'; error?: AgentErrorInfo };

export type AgentProposalState = 'refused' | 'awaiting_approval' | 'rejected' | 'approved' | 'executing' | 'executed' | 'failed';

/** A change an agent proposed (ProposalView): the card's `text`, its receipts at `/v1/r/<capsule>`. */
export interface AgentProposalView {
  id: string;
  capsule: string;
  action: string;
  args: Record<string, unknown>;
  reason: string;
  agent: { session: string; type: string };
  owner: string;
  state: AgentProposalState;
  approval: { need: 'none' | 'traveller' | 'operator'; by?: string; at?: string; decision?: 'approve' | 'reject' };
  policies: Array<{ plugin: string; verdict: 'ACK' | 'NACK'; reason: string }>;
  result?: unknown;
  error?: AgentErrorInfo;
  text: string;
  created_at: string;
  updated_at: string;
}

/** One turn's answer (TurnResult & {proposals}). */
export interface AgentTurnView {
  turn: string;
  trace_id: string;
  outcome: 'completed' | 'failed' | 'paused';
  /** '' when paused or failed. */
  text: string;
  source: 'model' | 'fallback';
  tool_calls: Array<{ call: AgentToolCall; outcome: { ok: boolean; content: string; error?: AgentErrorInfo } }>;
  error?: AgentErrorInfo;
  pause?: AgentPause;
  proposals: AgentProposalView[];
}

export interface AgentBudgetView {
  session: { limit: AgentBudgets; used: AgentUsage };
  day: { date: string; limit: AgentBudgets; used: AgentUsage };
}

export type AgentEventType =
  | 'session.created' | 'session.resumed' | 'session.unloaded' | 'session.closed' | 'session.state' | 'session.degraded'
  | 'turn.started' | 'turn.completed' | 'turn.failed'
  | 'message.user' | 'message.delta' | 'message.assistant' | 'tool.call' | 'tool.result' | 'usage' | 'error';

/** One event of a session's room (AgentEvent, schema v1). */
export interface AgentRoomEvent {
  v: 1;
  session: string;
  seq: number;
  at: string;
  trace_id?: string;
  type: AgentEventType;
  data: Record<string, unknown>;
}

/** What a room reports: every event once and in order; `gap` when events were lost (reload the transcript). */
export interface AgentRoomHandlers {
  onEvent(event: AgentRoomEvent): void;
  /** After each (re)connection: `gap` true when events after the last one seen are no longer buffered. */
  onHello?(gap: boolean): void;
  /** The room refused (the session is not this caller's, or gone): the connection stays closed. */
  onError?(error: AgentErrorInfo): void;
  onStatus?(connected: boolean): void;
}

/** Opens `/ws/agents/:id?after=N`, reconnecting with `after` = the last seq seen. */
export type AgentRoomOpener = (session: string, after: number, handlers: AgentRoomHandlers) => { close(): void };

export interface AgentClient {
  agents(): Promise<AgentSummaryView[]>;
  /** Opens a session (201). Errors: FORBIDDEN, AGENT_PROFILE_INVALID, AGENT_DISABLED (503). */
  open(request: { agent_type: string; metadata?: Record<string, unknown> }): Promise<AgentSessionView>;
  sessions(query?: { agent_type?: string; state?: AgentSessionState; limit?: number }): Promise<AgentSessionView[]>;
  session(id: string): Promise<AgentSessionView>;
  /**
   * One turn; resolves with the answer once the turn ends (follow it live in the room). Errors: AGENT_SESSION_BUSY,
   * AGENT_SESSION_PAUSED, AGENT_SESSION_CLOSED (409), AGENT_RATE_LIMITED (429), AGENT_DISABLED (503).
   */
  say(id: string, text: string): Promise<AgentTurnView>;
  transcript(id: string, query?: { after?: number; limit?: number }): Promise<AgentTranscriptEntry[]>;
  budgets(id: string): Promise<AgentBudgetView>;
  /** Operator: resume a (paused) session with its budgets raised by `extend`. */
  resume(id: string, extend?: AgentBudgets): Promise<AgentSessionView>;
  proposals(query?: { session?: string; state?: AgentProposalState; limit?: number }): Promise<AgentProposalView[]>;
  /** Approve (runs it exactly once) or reject. Errors: AGENT_PROPOSAL_DECIDED (409), AGENT_APPROVAL_REQUIRED (403). */
  decide(id: string, decision: 'approve' | 'reject'): Promise<AgentProposalView>;
  /** The session's room over a WebSocket; absent on transports without one (Electron IPC). */
  room?: AgentRoomOpener;
}

const seg = (value: string) => encodeURIComponent(value);

/** The agent client over one requester (HTTP or IPC), with the transport's room when it has one. */
export function createAgentClient(request: Requester, room?: AgentRoomOpener): AgentClient {
  const path = (id: string) => `/api/agents/sessions/${seg(id)}`;
  return {
    agents: () => request<{ agents: AgentSummaryView[] }>('GET', '/api/agents').then((r) => r.agents),
    open: (body) => request<AgentSessionView>('POST', '/api/agents/sessions', body.metadata === undefined ? { agent_type: body.agent_type } : { agent_type: body.agent_type, metadata: body.metadata }),
    sessions: (q = {}) => request<{ sessions: AgentSessionView[] }>('GET', `/api/agents/sessions${query(q)}`).then((r) => r.sessions),
    session: (id) => request<AgentSessionView>('GET', path(id)),
    say: (id, text) => request<AgentTurnView>('POST', `${path(id)}/messages`, { text }),
    transcript: (id, q = {}) => request<{ entries: AgentTranscriptEntry[] }>('GET', `${path(id)}/transcript${query(q)}`).then((r) => r.entries),
    budgets: (id) => request<AgentBudgetView>('GET', `${path(id)}/budgets`),
    resume: (id, extend) => request<AgentSessionView>('POST', `${path(id)}/resume`, extend === undefined ? {} : { extend }),
    proposals: (q = {}) => request<{ proposals: AgentProposalView[] }>('GET', `/api/agents/proposals${query(q)}`).then((r) => r.proposals),
    decide: (id, decision) => request<AgentProposalView>('POST', `/api/agents/proposals/${seg(id)}/${decision}`, {}),
    ...(room ? { room } : {}),
  };
}

/** The frames the room sends (README "Agents"). */
export type AgentRoomFrame = { type: 'hello'; v: number; session: string; gap: boolean } | { type: 'event'; event: AgentRoomEvent } | { type: 'error'; error: AgentErrorInfo } | { type: 'pong' };

/**
 * The room's frame handling shared by transports: events are passed on once and in order (a replay after a
 * reconnect never repeats one), `last()` is what the next connection asks `after`.
 */
export function agentRoomReader(after: number, handlers: AgentRoomHandlers): { last(): number; frame(data: unknown): void } {
  let last = after;
  return {
    last: () => last,
    frame(data) {
      const f = data as AgentRoomFrame | null;
      if (!f || typeof f !== 'object') return;
      if (f.type === 'hello') handlers.onHello?.(f.gap === true);
      else if (f.type === 'error') handlers.onError?.(f.error);
      else if (f.type === 'event' && f.event && typeof f.event.seq === 'number' && f.event.seq > last) {
        last = f.event.seq;
        handlers.onEvent(f.event);
      }
    },
  };
}
