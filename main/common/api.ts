/**
 * The client interface the UI talks to, whatever the transport (preload IPC inside Electron, HTTP/WS in a
 * browser). Pure types plus the wire limits both ends agree on.
 */
import type { ClusterClient } from './cluster-api.js';
import type { AgentClient } from './agents-api.js';
import type { JourneyClient } from './journeys-api.js';
import type { ProductClient } from './products-api.js';
import type { Role, SessionView } from './roles.js';
import type { SyncClient } from './sync-api.js';

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
  /** The data folder; over HTTP only an operator is told. */
  data_dir: string;
  started_at: string;
}

/** The runtime as a client sees it: the data folder is shown to operators only. */
export type RuntimeInfoView = Omit<RuntimeInfo, 'data_dir'> & { data_dir?: string };

/** This device, as the UI needs to know it: the key id that signs its receipts and bundles (`GET /api/device`). */
export interface DeviceInfo {
  /** `b3:` cid of the device's Ed25519 public key: a bundle's `device`, the device log's `log`. */
  keyid: string;
}

export type Unsubscribe = () => void;

/** What every transport offers the renderer. Errors reject with {@link import('./errors.js').TesseraError}. */
/**
 * A capability link to a capsule (issue 14 §8, main/runtime/links): `url` opens the capsule's card on a phone with
 * no bearer header, `url` + `/bundle` downloads its offline bundle. The token is shown once; the device stores its hash.
 */
export interface CapsuleLink {
  id: string;
  capsule: string;
  label: string | null;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  state: 'active' | 'expired' | 'revoked';
  token: string;
  /** `/c/<token>`. */
  url_path: string;
  /** The full URL for a phone on the kiosk's network (the device's public origin + url_path). */
  url: string;
}

/** What `createLink` / `POST /api/links` take. */
export interface CapsuleLinkRequest {
  /** cid of the capsule (`b3:<64 hex>`). */
  capsule: string;
  /** Lifetime in ms (default 90 days). */
  ttl_ms?: number;
  /** A note for the operator's list; never shown on the public card. */
  label?: string;
}

export interface TesseraClient {
  info(): Promise<RuntimeInfoView>;
  /** What this client's credential may do (main/common/roles.ts). */
  session(): Promise<SessionView>;
  /**
   * Operator unlock with the device's PIN: resolves with a session token holding every role until `expires_at`.
   * Errors: PIN_NOT_SET, PIN_INVALID (`details.attempts_left`), PIN_LOCKED (`details.retry_after_seconds`).
   */
  unlock(pin: string): Promise<{ token: string; roles: Role[]; expires_at: string }>;
  /** Ends the operator session this client holds (nothing for other credentials). */
  lock(): Promise<void>;
  /** This device's key id, to check who signed a bundle (every role may ask). */
  device(): Promise<DeviceInfo>;
  queryEvents(query: EventQuery): Promise<EventPage>;
  publishEvent(input: PublishInput): Promise<TesseraEvent>;
  /** Loaded plugins with their trust state. */
  listPlugins(): Promise<PluginInfo[]>;
  /**
   * Run a plugin once in the real sandbox with the production limits (a loaded one, a folder on this device or an
   * uploaded package), in a throwaway runtime: the live store and journal are never touched.
   */
  testPlugin(request: PluginTestRequest): Promise<PluginRunResult>;
  /** Load a plugin folder, or reload a loaded plugin from its folder, into the running runtime (no restart). */
  loadPlugin(request: PluginLoadRequest): Promise<PluginInfo>;
  /** Plugin folders whose latest load failed, with why (most recent first). */
  pluginFailures(): Promise<PluginLoadFailure[]>;
  /** Registered scenarios. */
  listScenarios(): Promise<ScenarioSummary[]>;
  /** Start a run; resolves with its id at once. */
  runScenario(request: RunRequest): Promise<{ run_id: string }>;
  /** Recent runs, newest first. */
  listRuns(query?: { scenario_id?: string; state?: RunSummary['state']; limit?: number }): Promise<RunSummary[]>;
  /** A run with its step journal. */
  runStatus(runId: string): Promise<RunDetail>;
  cancelRun(runId: string): Promise<{ cancelled: boolean }>;
  /** The run's debugger: `continue` to the next breakpoint, `step` to stop before the next step, `set` the breakpoints. */
  debugRun(runId: string, action: DebugAction, breakpoints?: string[]): Promise<DebugState>;
  /** Replay a finished run (effect steps return their recorded outputs); resolves with the replay's run id. */
  replayRun(runId: string): Promise<{ run_id: string }>;
  /** Where a replay's steps differ from the run it replays. */
  replayDiff(replayRunId: string): Promise<ReplayDifference[]>;
  /**
   * A capability link to capsule `capsule` (a purchase's or redemption's receipt) that a traveller's phone opens;
   * travellers, staff and operators may ask. Rejects with CAPSULE_NOT_FOUND for an unknown capsule.
   */
  /** Live events matching any of `patterns`; `onStatus` reports the link to the runtime. */
  subscribe(patterns: string[], onEvent: (event: TesseraEvent) => void, onStatus?: (connected: boolean) => void): Unsubscribe;
  /** Voice and text I/O for the Journey Guide (issue 6); absent on transports that do not carry it yet. */
  io?: IoClient;
  /** Catalogue, product sessions, wallets, redemption and receipt links (issue 14; main/common/products-api.ts). */
  products: ProductClient;
  /** Journeys, their next step and routes, the guide's proposals, the city package and its map (issue 15; main/common/journeys-api.ts). */
  journeys: JourneyClient;
  /** This device's sync with the cloud: status, sync now, enrollment (issue 16; main/common/sync-api.ts). */
  sync: SyncClient;
  /** Agents: sessions, turns, transcripts, budgets, proposals and the session's room (issue 17; main/common/agents-api.ts). */
  agents: AgentClient;
  /** The nodes this device's scenario runs are spread over, and those runs (issue 18; main/common/cluster-api.ts). */
  cluster?: ClusterClient;
}

/** `GET /api/io/status`, as the Journey Guide reads it (main/host/http/io.ts has the full schema). */
export interface IoStatusView {
  voice_enabled: boolean;
  voice_disabled_reason: string | null;
  in: Record<string, { available: boolean; reason?: string }>;
  out: Record<string, { available: boolean; reason?: string }>;
  /** Open questions; each belongs to the dialogue session of the traveller it asks (null: no session's). */
  questions: Array<{ run_id: string; step: string; session: string | null; prompt: string; asked_at: string; expects?: string | null }>;
  locks: { holders: Array<{ resource: string; owner: string; count: number }>; waiters: Array<{ resources: string[]; owner: string; priority: string }> };
  /** Open dialogue sessions, and after how long without input one is reset (0: never). */
  sessions: { open: number; idle_reset_ms: number };
}

/** A traveller's dialogue session was started (`POST /api/io/session`), ending `ended` first when asked to. */
export interface IoSessionStart {
  session: { id: string; started_at: string };
  ended: { id: string; reason: string } | null;
}

/** What became of an utterance (`POST /api/io/input`, or a transcript heard over `/ws/io`). */
export interface IoInputOutcome {
  /** `agent`: no intent matched and the journey guide agent answered (issue 17 point 8). */
  kind: 'answer' | 'intent' | 'agent' | 'unrecognized';
  text: string;
  channel: 'text' | 'voice';
  run_id?: string | null;
  step?: string | null;
  intent?: string;
  slots?: Record<string, unknown>;
  /** The dialogue session it came from. */
  session?: string;
  /** A clear request made while a question of the session waited: the question stays open. */
  question_left_open?: { run_id: string; step: string };
  /** `agent`: the agent session that answered and its turn (its transcript holds the utterance and the answer). */
  agent_session?: string;
  turn?: string;
}

/** Messages the runtime sends on the dialogue connection (`/ws/io`). */
export type DialogueMessage =
  | { type: 'hello'; voice_enabled: boolean; voice_disabled_reason: string | null; session: string | null; idle_reset_ms: number }
  | { type: 'joined'; session: string }
  | { type: 'session.ended'; session: string; reason: string }
  | { type: 'say'; message: { id: number; run_id: string | null; text: string; session?: string } }
  | { type: 'ask'; question: { run_id: string; step: string; prompt: string; session?: string } }
  | { type: 'heard'; outcome: 'speech' | 'no_speech'; text: string; result?: IoInputOutcome }
  | { type: 'error'; error: { code: string; message: string } }
  | { type: 'pong' };

/** The Journey Guide's live dialogue: joins the `ui` channel while open; carries push-to-talk audio. */
export interface DialogueConnection {
  /** Show this session's dialogue (kept across reconnects). */
  join(session: string): void;
  /** Begin an utterance of 16-bit mono PCM at `sampleRate` (optionally answering one question). */
  startAudio(sampleRate: number, question?: { run_id: string; step: string }): void;
  /** One chunk of little-endian 16-bit PCM (at most 32 KiB). */
  sendAudio(pcm: ArrayBuffer): void;
  /** End the utterance (it is transcribed) or cancel it. */
  endAudio(cancel?: boolean): void;
  close(): void;
}

export interface IoClient {
  status(): Promise<IoStatusView>;
  /** Start a traveller's dialogue session; `end` ends the previous traveller's first ("new traveller"). */
  session(request?: { end?: string }): Promise<IoSessionStart>;
  input(request: { text: string; run_id?: string; step?: string; session?: string }): Promise<IoInputOutcome>;
  /** Browser transport: the `/ws/io` socket; push-to-talk audio is captured in the page and streamed. */
  dialogue?(onMessage: (message: DialogueMessage) => void, onStatus?: (open: boolean) => void): DialogueConnection;
  /** Electron transport: push-to-talk on the device microphone, captured in the main process. */
  talk?: {
    /** Listens until the utterance ends or `stop`; resolves with what was heard. */
    start(): Promise<{ outcome: 'speech' | 'no_speech'; text: string; result?: IoInputOutcome }>;
    stop(): Promise<void>;
  };
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

/** Give exactly one: a folder on this device, or a loaded plugin (key, name@version or name) to reload from its folder. */
export interface PluginLoadRequest {
  dir?: string;
  plugin?: string;
}

/** A plugin folder that did not load (at start or later), and why. */
export interface PluginLoadFailure {
  /** The folder, as an absolute path on this device. */
  dir: string;
  error: { code: string; message: string };
  /** When the load failed (ISO-8601). */
  at: string;
}

export interface PluginTestRequest {
  /** A loaded plugin (key, name@version or name) … */
  plugin?: string;
  /** … or a plugin folder on this device, verified and run as it is (not loaded into the runtime) … */
  dir?: string;
  /** … or an uploaded package: the three files of a plugin folder. Verified and run once. */
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
  /** The context names a run must be started with (its ctx_schema's top-level required ones; empty for none). */
  ctx_required: string[];
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
  /** Step names the run pauses before (debugger). */
  breakpoints?: string[];
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface StepSummary {
  step_key: string;
  name: string;
  /** `cancelled`: the run was cancelled while this step ran. */
  state: 'started' | 'completed' | 'failed' | 'skipped' | 'compensated' | 'compensation_failed' | 'cancelled';
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

export type DebugAction = 'continue' | 'step' | 'set';

/** A run's debugger: the step it is paused before (if any) and its breakpoints (step names). */
export interface DebugState {
  paused_at: string | null;
  breakpoints: string[];
}

/** One place where a replay differs from its original: a step's evaluated input, its output, or whether it ran. */
export interface ReplayDifference {
  step_key: string;
  field: 'input' | 'output' | 'presence';
  original: unknown;
  replayed: unknown;
}

export interface RunDetail extends RunSummary {
  steps: StepSummary[];
}
