/**
 * The generic agent runtime (seed 003; issue 17): its contract, the runtime and the file-based adapter set.
 * Tessera's own agents, adapters and proposal flow live in main/runtime/orchestrator and plug in through these.
 */
export { AGENT_EVENT_VERSION, AgentError, isAgentError } from './types.js';
export type {
  AgentErrorCode, ModelConfig, Budgets, BudgetKind, McpServerConfig, DegradedMode, AgentProfile, ProfileVariables,
  AgentProfileLoader, SandboxConfig, SandboxConfigProvider, SessionState, Usage, PauseInfo, SessionRecord, SessionInfo,
  ToolCall, TranscriptEntry, SessionPersistenceAdapter, StorageBackend, ChatMessage, ToolSpec, ChatRequest, ChatResult,
  ModelClient, ToolOutcome, SessionTools, InProcessServerFactory, ToolsFactory, ResponderContext, Responder, AgentEvent,
  AgentEventType, RoomSubscription, CreateSessionRequest, MessageOptions, TurnResult, AgentRuntimeConfig, AgentRuntime,
} from './types.js';
export { createAgentRuntime } from './runtime.js';
export { createFileAdapters } from './file-adapters.js';
// TODO(merge): export { createOpenAiClient } from './model.js';
// TODO(merge): export { createMcpTools } from './mcp.js';
