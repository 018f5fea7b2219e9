/**
 * The generic agent runtime's public contract (seed 003: FR1–FR5, NFR1–NFR4; issue 17 points 1–4, 6, 7).
 *
 * This folder (`main/runtime/agents/`) is the generic core: sessions, adapters, profiles, budgets, the
 * OpenAI-compatible model client, MCP tools and per-session event rooms. It knows nothing of Tessera's products,
 * journeys, wallets or receipts — a lint rule forbids imports from outside this folder (other than Node built-ins
 * and `@modelcontextprotocol/sdk`), so it can be lifted into its own package. Tessera's own agents, adapters on the
 * device's SQLite, the proposal flow and the orchestrator live in `main/runtime/orchestrator/` and plug in through
 * the interfaces below, injected at construction (FR2.5).
 *
 * Everything here is JSON-serializable data or an interface; no implementation.
 */
import type { Server as McpSdkServer } from '@modelcontextprotocol/sdk/server/index.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * Stable codes of the agent runtime's errors. The host maps each to an HTTP status (Tessera lists them in
 * main/common/errors.ts and docs/errors.md with the same names).
 */
export type AgentErrorCode =
  /** No session by that id (never created, or deleted). */
  | 'AGENT_SESSION_NOT_FOUND'
  /** The session is closed; it cannot take messages. */
  | 'AGENT_SESSION_CLOSED'
  /** The session is busy with a turn; one turn at a time. */
  | 'AGENT_SESSION_BUSY'
  /** The session is paused at a budget limit; it needs `resume` with a raised budget. */
  | 'AGENT_SESSION_PAUSED'
  /** No profile by that agent type, or the profile is invalid (message says which field, FR3.5). */
  | 'AGENT_PROFILE_INVALID'
  /** The agent type is switched off (non-critical agent while its model is degraded, or disabled by config). */
  | 'AGENT_DISABLED'
  /** The model endpoint answered an error, refused the connection, or the stream broke. */
  | 'AGENT_MODEL_FAILED'
  /** The model did not answer in time (first byte or whole answer). */
  | 'AGENT_MODEL_TIMEOUT'
  /** The model's output is not a valid Chat Completions answer (bad SSE, bad JSON, bad tool-call arguments). */
  | 'AGENT_MODEL_OUTPUT_INVALID'
  /** A tool call failed: unknown tool, invalid arguments, the MCP server crashed or answered an error. */
  | 'AGENT_TOOL_FAILED'
  /** A persistence or storage adapter failed (emitted as an error event; never crashes the runtime). */
  | 'AGENT_ADAPTER_FAILED'
  /** Too many sessions or requests (rate limit or `maxSessions`). */
  | 'AGENT_RATE_LIMITED'
  /** The runtime is shutting down. */
  | 'AGENT_RUNTIME_STOPPING'
  /** Bad input to a runtime method (empty message, message too long, bad metadata). */
  | 'AGENT_INPUT_INVALID';

/** The one error class of the core. `retryable`: trying the same call again later may succeed. */
export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    readonly options: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
  get retryable(): boolean {
    return this.options.retryable ?? false;
  }
}

export function isAgentError(err: unknown): err is AgentError {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AgentError' && typeof (err as { code?: unknown }).code === 'string';
}

// ---------------------------------------------------------------------------------------------------------------
// Profiles (FR3)
// ---------------------------------------------------------------------------------------------------------------

/** Where a profile's model lives: any OpenAI-compatible Chat Completions endpoint (llama.cpp, Ollama, vLLM, OpenAI). */
export interface ModelConfig {
  /** e.g. `http://127.0.0.1:8080/v1` — the client posts to `${base_url}/chat/completions`. */
  base_url: string;
  /** The `model` field sent to the endpoint. */
  model: string;
  /** Name of the secret holding the API key (resolved through {@link AgentRuntimeConfig.secret}); never the key itself. */
  api_key_secret?: string;
  temperature?: number;
  /** Upper bound of completion tokens per call; also what a call reserves from the token budget. Default 512. */
  max_tokens?: number;
  /** No first byte within this → AGENT_MODEL_TIMEOUT. Default 10 000 ms. */
  first_byte_timeout_ms?: number;
  /** The whole answer within this → else AGENT_MODEL_TIMEOUT. Default 60 000 ms. */
  timeout_ms?: number;
}

/** Limits of a session and of an agent type per day (UTC). Absent: unlimited. */
export interface Budgets {
  /** Prompt + completion tokens. */
  tokens?: number;
  tool_calls?: number;
  /** Wall time spent in turns (model calls and tool calls), ms. */
  wall_ms?: number;
  /** Model calls. */
  model_calls?: number;
}

export type BudgetKind = keyof Budgets;

/** One MCP server a session gets (FR4). Command-based (stdio) or code-based (in-process, FR4.5). */
export type McpServerConfig =
  | {
      name: string;
      transport: 'stdio';
      command: string;
      args?: string[];
      /** Added to a minimal environment (PATH, HOME…): nothing else of the runtime's environment leaks (FR4.3). */
      env?: Record<string, string>;
      /** Default: the session's own scratch folder. */
      cwd?: string;
      /** Per tool call. Default 30 000 ms. */
      call_timeout_ms?: number;
    }
  | {
      name: string;
      transport: 'in-process';
      /** Key into {@link AgentRuntimeConfig.inProcessServers}: the app's factory builds a fresh server per session. */
      factory: string;
      /** Passed to the factory (e.g. which tool plugins to offer). */
      options?: Record<string, unknown>;
      call_timeout_ms?: number;
    };

/** What to do when the model is missing, down or over its provider's quota (seed 000 §7.3). */
export type DegradedMode =
  /** Answer with the app's rule-based responder named in {@link AgentProfile.fallback} (critical, user-facing agents). */
  | 'fallback'
  /** Switch the agent type off: new sessions and messages get AGENT_DISABLED until the model is back. */
  | 'off';

/** A complete agent definition (FR3.2), after template variables are filled. */
export interface AgentProfile {
  /** The agent type, e.g. `journey-guide`: `[a-z][a-z0-9-]{0,63}`. */
  type: string;
  title: string;
  description?: string;
  /** With `{{SESSION_ID}}`, `{{AGENT_TYPE}}` and custom `{{VARS}}` replaced (FR3.3). */
  system_prompt: string;
  /** Absent: no model — the agent is rule-based only (degraded from the start). */
  model?: ModelConfig;
  mcp_servers: McpServerConfig[];
  /** Tool names (as the model sees them: `<server>__<tool>`) this agent may call; absent: every tool of its servers. */
  tools?: string[];
  budgets: { session: Budgets; day: Budgets };
  degraded: DegradedMode;
  /** Name of the app's rule-based responder ({@link AgentRuntimeConfig.responders}); required when degraded is `fallback`. */
  fallback?: string;
  /** Most tool rounds in one turn before the runtime stops the loop (default 8). */
  max_tool_rounds?: number;
  /** Free-form, for the app (e.g. who may talk to this agent, what its proposals need). */
  meta?: Record<string, unknown>;
}

/** What a session creator passes; the loader fills the profile's `{{NAME}}` placeholders from these. */
export interface ProfileVariables {
  SESSION_ID: string;
  AGENT_TYPE: string;
  [name: string]: string;
}

/**
 * Loads agent profiles (FR2.3, FR3). Called at session creation (and at resume) — never cached by the runtime, so
 * a changed profile applies to the next session (seed 003 Q4: no hot reload of running sessions).
 */
export interface AgentProfileLoader {
  /** The agent types this loader knows, with titles, for listings. */
  list(): Promise<Array<{ type: string; title: string; description?: string }>>;
  /**
   * @throws AgentError AGENT_PROFILE_INVALID with a message naming the type and the field that is wrong (FR3.5).
   */
  load(type: string, variables: ProfileVariables): Promise<AgentProfile>;
}

/** The environment of one session's "sandbox": its MCP servers and their environment (FR2.4, FR4.3). */
export interface SandboxConfig {
  /** Environment added to every stdio MCP server of the session (API keys the app resolved, endpoints). */
  env: Record<string, string>;
  /** Servers added to the profile's. */
  mcp_servers: McpServerConfig[];
  /** The session's scratch folder (stdio servers' default cwd); created by the runtime. */
  workdir: string;
}

/** Provides each session's sandbox configuration (FR2.4). */
export interface SandboxConfigProvider {
  configure(session: SessionInfo, profile: AgentProfile): Promise<SandboxConfig>;
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions, transcripts and persistence (FR1, FR2.1, FR2.2)
// ---------------------------------------------------------------------------------------------------------------

/**
 * - `idle`: waiting for a message (in memory, or unloaded after the idle timeout — still resumable).
 * - `running`: a turn is in progress.
 * - `paused`: a budget is used up; the session asks (its `pause` says which) and waits for `resume` with more budget.
 * - `closed`: done; kept for its transcript.
 */
export type SessionState = 'idle' | 'running' | 'paused' | 'closed';

export interface Usage {
  tokens: number;
  tool_calls: number;
  wall_ms: number;
  model_calls: number;
}

export interface PauseInfo {
  budget: BudgetKind;
  scope: 'session' | 'day';
  used: number;
  limit: number;
  /** What the session was about to do (`model` call or a tool's name). */
  at: string;
  since: string;
}

/** The persisted state of one session: all a resume needs besides the transcript. */
export interface SessionRecord {
  v: 1;
  id: string;
  agent_type: string;
  state: SessionState;
  /** Who created it (the app's principal string, e.g. `traveller:kiosk-1`). */
  owner: string;
  /** Extensible (NFR4.4): the app's own fields (e.g. `product_runtime_session_id`, `journey_id`). */
  metadata: Record<string, unknown>;
  /** Custom template variables the profile was loaded with (so a resume loads the same profile). */
  variables: Record<string, string>;
  created_at: string;
  updated_at: string;
  /** Last activity (message, turn end); the idle timer counts from here. */
  last_active_at: string;
  /**
   * The transcript's last sequence number, and the event room's (events continue numbering after a resume; after an
   * unclean stop — `pending_turn` set or state `running` — they jump ahead by the room buffer so that none repeats).
   */
  transcript_seq: number;
  event_seq: number;
  usage: Usage;
  /** Usage per UTC day, `YYYY-MM-DD` → usage: the per-day budgets of an agent type sum these over its sessions. */
  daily: Record<string, Usage>;
  /** Budget overrides granted by `resume({ extend })`, added to the profile's session budgets. */
  budget_extra: Budgets;
  pause: PauseInfo | null;
  /** True while the model is degraded for this session (answers come from the rule-based responder). */
  degraded: boolean;
  /** The turn in progress (persisted before the model is called): a resume after a crash finishes it. */
  pending_turn: { id: string; trace_id: string; started_at: string } | null;
}

/** What listings and `SandboxConfigProvider` see. */
export type SessionInfo = Pick<SessionRecord, 'id' | 'agent_type' | 'state' | 'owner' | 'metadata' | 'created_at' | 'updated_at' | 'last_active_at' | 'usage' | 'pause' | 'degraded'>;

/** A tool call as the model asked for it (arguments already parsed JSON). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

/** One line of a transcript (`.jsonl`). Appended, never rewritten. `seq` counts from 1 per session. */
export type TranscriptEntry =
  | { seq: number; at: string; turn: string; type: 'user'; text: string; by: string }
  | { seq: number; at: string; turn: string; type: 'assistant'; text: string; tool_calls: ToolCall[]; source: 'model' | 'fallback'; usage?: { prompt_tokens: number; completion_tokens: number } }
  /** Written before the tool runs: a dangling call (no result) after a crash is run again with the same idempotency key. */
  | { seq: number; at: string; turn: string; type: 'tool_call'; call: ToolCall; idempotency_key: string }
  | { seq: number; at: string; turn: string; type: 'tool_result'; call_id: string; ok: boolean; content: string; error?: { code: string; message: string } }
  | { seq: number; at: string; turn: string; type: 'turn_end'; outcome: 'completed' | 'failed' | 'paused'; error?: { code: string; message: string } };

/** Session CRUD (FR2.1). Implementations: device SQLite (default), files (JSON), PostgreSQL (cloud). */
export interface SessionPersistenceAdapter {
  /** Every stored session (closed ones included) — for listings, per-day budgets and resume at start. */
  fetchAll(): Promise<SessionRecord[]>;
  load(id: string): Promise<SessionRecord | null>;
  /** Insert or replace one session's record (atomically: a crash leaves the old or the new record, never a torn one). */
  save(record: SessionRecord): Promise<void>;
  /** Save many at once (the periodic sync and the final sync at shutdown, NFR1.4, NFR2.2). */
  sync(records: SessionRecord[]): Promise<void>;
  /** Remove the record (the transcript is the storage backend's). */
  delete(id: string): Promise<void>;
}

/** Files and transcripts of sessions (FR2.2). */
export interface StorageBackend {
  /** Append entries (in seq order) durably before returning. */
  appendTranscript(sessionId: string, entries: TranscriptEntry[]): Promise<void>;
  /** Entries with `seq > after` (default all), in order. */
  readTranscript(sessionId: string, options?: { after?: number; limit?: number }): Promise<TranscriptEntry[]>;
  upload(sessionId: string, path: string, data: Uint8Array): Promise<void>;
  download(sessionId: string, path: string): Promise<Uint8Array | null>;
  list(sessionId: string): Promise<Array<{ path: string; size: number; updated_at: string }>>;
  /** Delete one file, or (no path) everything of the session: its files and transcript. */
  delete(sessionId: string, path?: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Models (issue 17 point 4)
// ---------------------------------------------------------------------------------------------------------------

/** Chat Completions messages, as sent to the endpoint. */
export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> }
  | { role: 'tool'; tool_call_id: string; content: string };

/** A tool as the model sees it (`tools[].function`). */
export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface ChatRequest {
  model: ModelConfig;
  /** Resolved from `model.api_key_secret`; never logged. */
  apiKey?: string;
  messages: ChatMessage[];
  tools: ToolSpec[];
}

export interface ChatResult {
  text: string;
  tool_calls: ToolCall[];
  finish_reason: 'stop' | 'tool_calls' | 'length' | 'content_filter' | string;
  /** From the endpoint's `usage` (stream_options.include_usage); estimated (chars / 4) when it sends none. */
  usage: { prompt_tokens: number; completion_tokens: number; estimated: boolean };
}

/**
 * An OpenAI-compatible Chat Completions client with streaming (SSE) and tool calls.
 * @throws AgentError AGENT_MODEL_FAILED (retryable for connection errors, 429 and 5xx), AGENT_MODEL_TIMEOUT,
 *   AGENT_MODEL_OUTPUT_INVALID. A provider that says the account is over quota (HTTP 429 with
 *   `insufficient_quota`, or 402) is AGENT_MODEL_FAILED with `details.over_quota: true`.
 */
export interface ModelClient {
  complete(request: ChatRequest, options: { signal?: AbortSignal; onDelta?: (text: string) => void }): Promise<ChatResult>;
}

// ---------------------------------------------------------------------------------------------------------------
// Tools (FR4)
// ---------------------------------------------------------------------------------------------------------------

/** The result of one tool call, as the model will read it. */
export interface ToolOutcome {
  ok: boolean;
  /** Text for the model (MCP text content joined; structured content as JSON). */
  content: string;
  error?: { code: string; message: string };
}

/** A session's tools: its MCP servers, started when the session is loaded and closed when it is unloaded (FR4.2). */
export interface SessionTools {
  /** Tool specs for the model, named `<server>__<tool>`. */
  list(): ToolSpec[];
  /**
   * Calls one tool. Never throws for the tool's sake: failures come back as `{ok:false, error}` (FR4.6) — unknown
   * tool, bad arguments, timeout, a crashed server (restarted once on the next call). The idempotency key reaches
   * the server in the request's `_meta` (`tessera/idempotency_key`).
   */
  call(name: string, args: Record<string, unknown>, options: { idempotencyKey: string; signal?: AbortSignal }): Promise<ToolOutcome>;
  close(): Promise<void>;
}

/** Builds one in-process MCP server for one session (a fresh instance per session: no shared state, FR4.2). */
export type InProcessServerFactory = (session: SessionInfo, options: Record<string, unknown>) => McpSdkServer | McpServer;

/** Starts a session's MCP servers (implemented by ./mcp.ts). */
export type ToolsFactory = (session: SessionInfo, servers: McpServerConfig[], sandbox: SandboxConfig) => Promise<SessionTools>;

// ---------------------------------------------------------------------------------------------------------------
// Rule-based responders (seed 000 §7.3)
// ---------------------------------------------------------------------------------------------------------------

/** What a rule-based responder gets: the session, the message and the session's tools (it may call them). */
export interface ResponderContext {
  session: SessionInfo;
  text: string;
  /** The transcript so far (latest last). */
  transcript: readonly TranscriptEntry[];
  /**
   * The session's tools. Each call made through them is recorded in the transcript as it happens (`tool_call`
   * persisted before the tool runs, `tool_result` after), its call id being the key's suffix when the key comes
   * from {@link ResponderContext.idempotencyKey}. Calls only returned in `tool_calls` (not made through these)
   * are recorded after the fact: only read-only tools may be used that way.
   */
  tools: SessionTools;
  /** `<session>:<turn>:<suffix>`: unique per turn, the same when a turn a crash interrupted is finished again. */
  idempotencyKey: (suffix: string) => string;
  signal: AbortSignal;
}

/** The app's rule-based behaviour of an agent, used with no model or when the model is degraded. */
export type Responder = (ctx: ResponderContext) => Promise<{ text: string; tool_calls?: Array<ToolCall & { outcome: ToolOutcome }> }>;

// ---------------------------------------------------------------------------------------------------------------
// Events and streaming (FR1.6, FR5)
// ---------------------------------------------------------------------------------------------------------------

/** Version of the event schema below (documented in README "Agent events"; bump on any incompatible change). */
export const AGENT_EVENT_VERSION = 1;

/**
 * One event of a session's room. `seq` increases by one per event of the session (across resumes); a client that
 * reconnects with the last `seq` it saw gets every later event still buffered, or a `gap` telling it to reload
 * the transcript.
 */
export interface AgentEvent {
  v: typeof AGENT_EVENT_VERSION;
  session: string;
  seq: number;
  at: string;
  /** The turn's trace id, when the event belongs to a turn. */
  trace_id?: string;
  type: AgentEventType;
  data: Record<string, unknown>;
}

/**
 * - `session.created|resumed|unloaded|closed`: lifecycle (`data`: the {@link SessionInfo}).
 * - `session.state`: `data: {state, pause?}` — includes `paused` with what ran out (the session "asks").
 * - `session.degraded`: `data: {degraded: boolean, reason}` — the model is missing/down/over quota, or back.
 * - `turn.started|completed|failed`: `data: {turn, error?}`.
 * - `message.user`, `message.assistant`: a transcript entry (`data.entry`).
 * - `message.delta`: streamed text of the answer being written (`data: {turn, text}`); not persisted.
 * - `tool.call`, `tool.result`: transcript entries (a failed tool's error is in the result, FR4.6).
 * - `usage`: `data: {usage, budgets, remaining}` after each model or tool call.
 * - `error`: an adapter or internal failure that did not stop the session (`data: {code, message, adapter?}`).
 */
export type AgentEventType =
  | 'session.created'
  | 'session.resumed'
  | 'session.unloaded'
  | 'session.closed'
  | 'session.state'
  | 'session.degraded'
  | 'turn.started'
  | 'turn.completed'
  | 'turn.failed'
  | 'message.user'
  | 'message.delta'
  | 'message.assistant'
  | 'tool.call'
  | 'tool.result'
  | 'usage'
  | 'error';

/** A subscription to one session's room: events after `after` (replayed from the buffer), then live. */
export interface RoomSubscription {
  /**
   * True when events between `after` and the first replayed one are no longer buffered, or when `after` is past
   * the room's last seq (the client saw events the room no longer knows of, e.g. after an unclean stop, whose
   * numbering jumps ahead by the room buffer): reload the transcript.
   */
  readonly gap: boolean;
  dispose(): void;
}

// ---------------------------------------------------------------------------------------------------------------
// The runtime (FR1)
// ---------------------------------------------------------------------------------------------------------------

export interface CreateSessionRequest {
  agent_type: string;
  owner: string;
  metadata?: Record<string, unknown>;
  /** Custom template variables (FR3.3); `SESSION_ID` and `AGENT_TYPE` are set by the runtime. */
  variables?: Record<string, string>;
}

export interface MessageOptions {
  /** Who speaks (recorded in the transcript). */
  by: string;
  /** Join an existing trace (the app's request trace); default: a new one per turn. */
  trace_id?: string;
  signal?: AbortSignal;
}

/** The answer of one turn. */
export interface TurnResult {
  turn: string;
  trace_id: string;
  outcome: 'completed' | 'failed' | 'paused';
  /** The final assistant text ('' when paused or failed). */
  text: string;
  source: 'model' | 'fallback';
  tool_calls: Array<{ call: ToolCall; outcome: ToolOutcome }>;
  error?: { code: string; message: string };
  pause?: PauseInfo;
}

export interface AgentRuntimeConfig {
  persistence: SessionPersistenceAdapter;
  storage: StorageBackend;
  profiles: AgentProfileLoader;
  sandbox: SandboxConfigProvider;
  /** Default: the OpenAI-compatible client of ./model.ts. */
  model?: ModelClient;
  /** Default: the MCP tools of ./mcp.ts. */
  tools?: ToolsFactory;
  inProcessServers?: Record<string, InProcessServerFactory>;
  /** Rule-based responders by name (profiles name theirs in `fallback`). */
  responders?: Record<string, Responder>;
  /** Resolves a secret's value by name (API keys); the runtime never logs it. */
  secret?: (name: string) => string | undefined;
  clock?: () => number;
  /** Unloads sessions idle this long (default 15 min; 0: never). */
  idleTimeoutMs?: number;
  /** Periodic sync of in-memory records (default 30 s, NFR1.4). */
  syncIntervalMs?: number;
  /**
   * Most sessions loaded in memory at once (default 200). At the limit the least recently used session that is
   * not in a turn is unloaded (saved first) to make room; AGENT_RATE_LIMITED only when every loaded one is busy.
   */
  maxLoadedSessions?: number;
  /** Events kept per session room for reconnecting clients (default 1000). */
  roomBuffer?: number;
  /** After the model is found down, how long before it is tried again (default 30 s). */
  degradedRetryMs?: number;
  logger?: { debug(msg: string, f?: Record<string, unknown>): void; info(msg: string, f?: Record<string, unknown>): void; warn(msg: string, f?: Record<string, unknown>): void; error(msg: string, f?: Record<string, unknown>): void };
}

/** The agent runtime (FR1). Implemented by ./runtime.ts `createAgentRuntime(config)`. */
export interface AgentRuntime {
  /**
   * Loads the profile (FR3.4), persists the record, starts the session's tools; emits `session.created`.
   * @throws AgentError AGENT_PROFILE_INVALID, AGENT_DISABLED, AGENT_RATE_LIMITED, AGENT_ADAPTER_FAILED, AGENT_INPUT_INVALID
   */
  create(request: CreateSessionRequest): Promise<SessionInfo>;
  /**
   * One turn: the user's message is persisted first, then model ⇄ tools until the model answers without tool
   * calls (or `max_tool_rounds`), with budgets reserved before each call and settled after. Streams events to the
   * session's room. A session unloaded by the idle timer or a restart is resumed first.
   * @throws AgentError AGENT_SESSION_NOT_FOUND, AGENT_SESSION_CLOSED, AGENT_SESSION_BUSY, AGENT_SESSION_PAUSED,
   *   AGENT_DISABLED, AGENT_INPUT_INVALID. Model and tool failures do not throw: they end the turn `failed`
   *   (or answer through the fallback responder) and are in the result.
   */
  message(id: string, text: string, options: MessageOptions): Promise<TurnResult>;
  /**
   * Loads a session from persistence (transcript included, FR1.4) into memory and finishes a turn a crash left
   * pending (a dangling tool call is run again with its idempotency key). A paused session is un-paused when
   * `extend` raises the budget that ran out. Emits `session.resumed`.
   * @throws AgentError AGENT_SESSION_NOT_FOUND, AGENT_SESSION_CLOSED, AGENT_SESSION_PAUSED (extend not enough)
   */
  resume(id: string, options?: { extend?: Budgets; by?: string }): Promise<SessionInfo>;
  /** Closes the session's tools and marks it closed (kept for its transcript). Idempotent. */
  close(id: string, options?: { by?: string }): Promise<SessionInfo>;
  get(id: string): Promise<SessionInfo>;
  list(filter?: { agent_type?: string; owner?: string; state?: SessionState; limit?: number }): Promise<SessionInfo[]>;
  transcript(id: string, options?: { after?: number; limit?: number }): Promise<TranscriptEntry[]>;
  /** Budgets of a session: limits (profile + extra), used, remaining — and the agent type's day. */
  budgets(id: string): Promise<{ session: { limit: Budgets; used: Usage }; day: { date: string; limit: Budgets; used: Usage } }>;
  /** Subscribe to a session's room (FR5.3): buffered events with seq > after, then live ones. */
  subscribe(id: string, after: number, listener: (event: AgentEvent) => void): RoomSubscription;
  /** Every event of every session (for the app's audit trail and journal), and adapter errors (FR2.7). */
  onEvent(listener: (event: AgentEvent) => void): { dispose(): void };
  /** Agent types switched off now (non-critical agents while degraded). */
  disabled(): string[];
  /** Resumes sessions that were `running` when the process died (call once at start; NFR1.5). */
  recover(): Promise<{ resumed: string[]; failed: Array<{ id: string; error: string }> }>;
  /** Graceful shutdown (FR1.7, NFR2.2): stops taking turns, waits for running ones (up to `graceMs`), syncs every record, closes every tool. */
  shutdown(options?: { graceMs?: number }): Promise<void>;
}
