/**
 * The client interface the UI talks to, whatever the transport (preload IPC inside Electron, HTTP/WS in a
 * browser). Pure types plus the wire limits both ends agree on.
 */

/** One journaled event. `id` is monotonic per device; `ts` is an ISO-8601 UTC time with milliseconds. */
export interface TesseraEvent {
  id: number;
  ts: string;
  topic: string;
  trace_id: string;
  payload: unknown;
}

export interface EventQuery {
  /** A topic prefix on segment boundaries (`nlp.intent` matches `nlp.intent` and `nlp.intent.x`) or a pattern with `*`/`**`. */
  topic?: string;
  /** Events at or after this time (ISO-8601 or epoch milliseconds). */
  since?: string;
  /** Events strictly before this time (ISO-8601 or epoch milliseconds). */
  until?: string;
  trace_id?: string;
  /** Cursor: only events with an id greater than this (ascending order) or smaller (descending order). */
  after?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface EventPage {
  events: TesseraEvent[];
  /** Pass as `after` to fetch the next page; null when this page was the last. */
  next: number | null;
}

export interface PublishInput {
  topic: string;
  payload?: unknown;
  trace_id?: string;
}

export interface RuntimeInfo {
  name: string;
  version: string;
  /** Where the UI runs: inside the Electron shell or served over HTTP. */
  shell: 'electron' | 'headless';
  data_dir: string;
  started_at: string;
}

export type Unsubscribe = () => void;

/** What every transport offers the renderer. Errors reject with {@link import('./errors.js').TesseraError}. */
export interface TesseraClient {
  info(): Promise<RuntimeInfo>;
  queryEvents(query: EventQuery): Promise<EventPage>;
  publishEvent(input: PublishInput): Promise<TesseraEvent>;
  /** Loaded plugins with their trust state. */
  listPlugins(): Promise<PluginInfo[]>;
  /** Run a plugin in the real sandbox with the production limits (a loaded one, or a folder on this device). */
  testPlugin(request: PluginTestRequest): Promise<PluginRunResult>;
  /** Registered scenarios. */
  listScenarios(): Promise<ScenarioSummary[]>;
  /** Start a run; resolves with its id at once. */
  runScenario(request: RunRequest): Promise<{ run_id: string }>;
  /** Recent runs, newest first. */
  listRuns(query?: { scenario_id?: string; state?: RunSummary['state']; limit?: number }): Promise<RunSummary[]>;
  /** A run with its step journal. */
  runStatus(runId: string): Promise<RunDetail>;
  cancelRun(runId: string): Promise<{ cancelled: boolean }>;
  /** Live events matching any of `patterns`; `onStatus` reports the link to the runtime. */
  subscribe(patterns: string[], onEvent: (event: TesseraEvent) => void, onStatus?: (connected: boolean) => void): Unsubscribe;
}

export const LIMITS = {
  /** Largest event payload, as UTF-8 JSON bytes. */
  maxPayloadBytes: 256 * 1024,
  /** Largest HTTP body. */
  maxBodyBytes: 1024 * 1024,
  defaultPageSize: 100,
  maxPageSize: 1000,
  maxPatternsPerSubscription: 32,
} as const;

/** Trace ids: 1–128 characters, starting with a letter or digit. Generated ones are 32 lowercase hex digits (W3C). */
export const TRACE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';

/** A loaded plugin as the API and Plugin Studio show it. */
export interface PluginInfo {
  key: string;
  name: string;
  version: string;
  kind: 'policy' | 'tool' | 'intake' | 'enrich';
  /** cid of the canonical signed manifest. */
  cid: string;
  entry_cid: string;
  publisher: { keyid: string; name: string };
  trust: 'trusted' | 'developer';
  capabilities: string[];
  limits: { memoryMb: number; timeoutMs: number; deadlineMs: number; maxOutputChars: number };
  manifest: Record<string, unknown>;
}

/** One plugin call's outcome (what `tessera plugin test` prints and `POST /api/plugins/test` returns). */
export interface PluginRunResult {
  plugin: { key: string; name: string; version: string; kind: string; cid: string };
  trace_id: string;
  /** The logical time the plugin saw. */
  now: string;
  input_cid: string;
  /** A policy's `{verdict, reason, evidence?, metrics?}` or a tool's result. */
  output: unknown;
  output_cid: string;
  duration_ms: number;
  cpu_us: number;
  heap_used_bytes: number;
  capability_calls: Array<{ capability: string; ok: boolean; summary: string; error?: string }>;
}

export interface PluginTestRequest {
  /** A loaded plugin (key, name@version or name) … */
  plugin?: string;
  /** … or a plugin folder on this device, verified and loaded first … */
  dir?: string;
  /** … or an uploaded package: the three files of a plugin folder. Verified, run once, then unloaded. */
  package?: { manifest: Record<string, unknown>; code: string; signature: Record<string, unknown> };
  input: unknown;
  now?: string;
}

export interface ScenarioSummary {
  id: string;
  version: number;
  description: string | null;
  priority: 'LOW' | 'NORM' | 'HIGH';
  pool: 'cpu' | 'io';
  steps: string[];
  source: string | null;
}

export interface RunRequest {
  id: string;
  ctx?: Record<string, unknown>;
  priority?: 'LOW' | 'NORM' | 'HIGH';
  force?: boolean;
  dry_run?: boolean;
  /** Step names to pause before (debugger). */
  breakpoints?: string[];
}

/** A scenario run (`scenario.run.*` events carry `run_id` to follow it live). */
export interface RunSummary {
  run_id: string;
  scenario_id: string;
  state: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  priority: 'LOW' | 'NORM' | 'HIGH';
  ctx: Record<string, unknown>;
  bag: Record<string, unknown>;
  error: { code: string; message: string } | null;
  trace_id: string;
  parent_run_id: string | null;
  dry_run: boolean;
  /** The run this one replays, if it is a replay. */
  replay_of?: string | null;
  /** The step the run waits before, at a breakpoint. */
  paused_at?: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface StepSummary {
  step_key: string;
  name: string;
  state: 'started' | 'completed' | 'failed' | 'skipped' | 'compensated' | 'compensation_failed';
  attempt: number;
  effect: boolean;
  simulated: boolean;
  input: unknown;
  output: unknown;
  error: { code: string; message: string } | null;
  first_started_at: string;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  /** The bag right after this step, secrets redacted. */
  bag_after?: Record<string, unknown> | null;
}

export interface RunDetail extends RunSummary {
  steps: StepSummary[];
}
