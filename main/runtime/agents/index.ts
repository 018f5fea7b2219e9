/**
 * The generic agent runtime (seed 003; issue 17): its contract, the runtime and the file-based adapter set.
 * Tessera's own agents, adapters and proposal flow live in main/runtime/orchestrator and plug in through these.
 */
export * from './types.js';
export { createAgentRuntime } from './runtime.js';
export { createFileAdapters } from './file-adapters.js';
// TODO(merge): export { createOpenAiClient } from './model.js';
// TODO(merge): export { createMcpTools } from './mcp.js';
