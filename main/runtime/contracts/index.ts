/**
 * The runtime contracts of seed 002 (issue point 7), the public TypeScript API intent implementations rely
 * on: ExecutionContext and the execution lifecycle (./execution.ts), the State Surface (./state-surface.ts)
 * and the ArtifactRegistry (./artifacts.ts). Interfaces and factories only (STYLE.md §7).
 */
export { ARTIFACT_MIGRATIONS, ARTIFACT_STATES, ARTIFACT_TRANSITIONS, createArtifactRegistry } from './artifacts.js';
export type {
  Artifact,
  ArtifactPage,
  ArtifactProducer,
  ArtifactQuery,
  ArtifactRegistry,
  ArtifactRegistryOptions,
  ArtifactState,
  ArtifactWriteOptions,
  LineageEntry,
  Materialization,
  RegisterArtifactInput,
  ResolvedArtifact,
} from './artifacts.js';
export {
  EXECUTION_MIGRATIONS,
  EXECUTION_STATES,
  EXECUTION_TRANSITIONS,
  RESERVED_WAL_PREFIXES,
  createExecutionContext,
  createExecutionRegistry,
  followScenarioRuns,
} from './execution.js';
export type {
  CreateExecutionInput,
  ExecutionArtifactRef,
  ExecutionContext,
  ExecutionContextDeps,
  ExecutionContextInput,
  ExecutionHandler,
  ExecutionRecord,
  ExecutionRegistry,
  ExecutionRegistryOptions,
  ExecutionState,
  ExecutionStatus,
  HandlerOutcome,
  Intent,
  IntentInput,
  WriteAheadLog,
} from './execution.js';
export { STATE_CHANGED_TOPIC, STATE_SURFACE_MIGRATIONS, createStateSurface } from './state-surface.js';
export type { StateEntry, StateListOptions, StateScope, StateScopeKind, StateSurface, StateSurfaceOptions, StateWriteOptions } from './state-surface.js';
export { CONTRACT_ERROR_CODES, CONTRACT_ID_PATTERN, INTENT_TYPE_PATTERN, MAX_CONTRACT_JSON_BYTES, MAX_INTENT_TYPE_LENGTH } from './validate.js';
export type { ContractFailure } from './validate.js';
