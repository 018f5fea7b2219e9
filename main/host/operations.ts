/**
 * The client API implemented once, over the runtime. The HTTP routes and the Electron IPC bridge are thin
 * adapters around these functions; inputs reaching here have passed the schemas in ./schemas.ts.
 */
import type { CapsuleLink, CapsuleLinkRequest, DebugAction, DebugState, EventPage, EventQuery, ReplayDifference, PluginInfo, PluginLoadFailure, PluginLoadRequest, PluginRunResult, PluginTestRequest, PublishInput, RunDetail, RunRequest, RunSummary, RuntimeInfo, ScenarioSummary, TesseraEvent } from '../common/api.js';
import { basename } from 'node:path';
import { TesseraError } from '../common/errors.js';
import type { Runtime } from '../runtime/index.js';
import type { IssuedEntitlement, IssuingState, RedeemAnswer, RedeemRequest, RedemptionRecord } from '../common/entitlements.js';

export interface Operations {
  info(): RuntimeInfo;
  queryEvents(query: EventQuery): EventPage;
  publishEvent(input: PublishInput): TesseraEvent;
  listPlugins(): PluginInfo[];
  testPlugin(request: PluginTestRequest): Promise<PluginRunResult>;
  loadPlugin(request: PluginLoadRequest): Promise<PluginInfo>;
  pluginFailures(): PluginLoadFailure[];
  listScenarios(): ScenarioSummary[];
  runScenario(request: RunRequest): { run_id: string };
  listRuns(query: { scenario_id?: string; state?: RunSummary['state']; limit?: number }): RunSummary[];
  runStatus(runId: string): RunDetail;
  cancelRun(runId: string): { cancelled: boolean };
  debugRun(request: DebugRequest): DebugState;
  /** Replay a finished run; acknowledged durable like runScenario. */
  replayRun(runId: string): { run_id: string };
  replayDiff(runId: string): ReplayDifference[];
  /** Redeem an entitlement code at a venue (issue 14 §6): a verdict, never an error for a refused code; answered once committed. */
  redeem(request: RedeemRequest): Promise<RedeemAnswer>;
  /** What {@link redeem} would answer, writing nothing. */
  checkCode(request: RedeemRequest): RedeemAnswer;
  undoRedemption(request: { id: string; reason?: string }): RedeemAnswer;
  redemptions(query: { q?: string; venue?: string; limit?: number; before?: string }): RedemptionRecord[];
  entitlements(query: { session?: string; user?: string; state?: string; limit?: number }): IssuedEntitlement[];
  issuing(): IssuingState;
  setIssuing(request: { paused: boolean; reason?: string }): IssuingState;
  /**
   * A capability link to a capsule (issue 14 §8). `url` is null only while the host has set no public origin
   * (the HTTP route then uses the address the client reached). `by` names who asked, for the journal.
   * @throws TesseraError CAPSULE_NOT_FOUND for an unknown capsule.
   */
  createLink(request: CapsuleLinkRequest & { by?: string }): Omit<CapsuleLink, 'url'> & { url: string | null };
}

export interface DebugRequest {
  run_id: string;
  action: DebugAction;
  breakpoints?: string[];
}

export function createOperations(runtime: Runtime): Operations {
  const requireRunning = () => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
  };
  return {
    info: () => runtime.info,
    queryEvents(query) {
      requireRunning();
      return runtime.journal.query(query);
    },
    publishEvent(input) {
      requireRunning();
      return runtime.bus.publish(input.topic, input.payload, input.trace_id === undefined ? {} : { trace_id: input.trace_id });
    },
    listPlugins() {
      requireRunning();
      return runtime.plugins.list();
    },
    listScenarios() {
      requireRunning();
      return runtime.scenarios.scenarios().map((s) => ({ id: s.id, version: s.version, description: s.description ?? null, priority: s.priority, pool: s.pool, steps: s.steps.map((st) => st.name), source: s.source ? sourceName(s.source) : null, ctx_required: requiredOf(s.ctx_schema) }));
    },
    runScenario({ id, ctx, ...opts }) {
      requireRunning();
      const runId = runtime.scenarios.run(id, ctx ?? {}, opts);
      runtime.scenarios.flush(); // acknowledged runs are durable
      return { run_id: runId };
    },
    redeem(request) {
      requireRunning();
      // Committed with the other screens' redemptions of this turn, in one transaction (a group commit).
      return runtime.entitlements.redeemSoon(request);
    },
    checkCode(request) {
      requireRunning();
      return runtime.entitlements.check(request.code, request.venue, request.amount);
    },
    undoRedemption({ id, reason }) {
      requireRunning();
      return runtime.entitlements.undo(id, reason);
    },
    redemptions(query) {
      requireRunning();
      return runtime.entitlements.history(query);
    },
    entitlements(query) {
      requireRunning();
      return runtime.entitlements.list(query);
    },
    issuing() {
      requireRunning();
      return runtime.entitlements.issuing();
    },
    setIssuing({ paused, reason }) {
      requireRunning();
      runtime.entitlements.setIssuing(paused, reason);
      return runtime.entitlements.issuing();
    },
    listRuns(query) {
      requireRunning();
      return runtime.scenarios.runs(query);
    },
    runStatus(runId) {
      requireRunning();
      return runtime.scenarios.status(runId) as RunDetail;
    },
    cancelRun(runId) {
      requireRunning();
      return { cancelled: runtime.scenarios.cancel(runId) };
    },
    debugRun({ run_id, action, breakpoints }) {
      requireRunning();
      return runtime.scenarios.debug(run_id, action, breakpoints);
    },
    replayRun(runId) {
      requireRunning();
      const replay = runtime.scenarios.replay(runId);
      runtime.scenarios.flush(); // acknowledged runs are durable
      return { run_id: replay };
    },
    replayDiff(runId) {
      requireRunning();
      return runtime.scenarios.diff(runId);
    },
    async testPlugin(request) {
      requireRunning();
      const given = [request.plugin, request.dir, request.package].filter((x) => x !== undefined).length;
      if (given !== 1) {
        throw new TesseraError('VALIDATION_FAILED', 'Give exactly one of "plugin" (a loaded plugin), "dir" (a plugin folder on this device) or "package" (an uploaded plugin).');
      }
      const options = request.now === undefined ? {} : { now: request.now };
      // Every Studio run is a trial in a throwaway runtime, the same code path as `tessera plugin test`.
      if (request.package !== undefined) return (await runtime.plugins.trial({ package: request.package }, request.input, options)).result;
      if (request.dir !== undefined) return (await runtime.plugins.trial({ dir: request.dir }, request.input, options)).result;
      const loaded = runtime.plugins.find(request.plugin!);
      if (!loaded) throw new TesseraError('PLUGIN_NOT_FOUND', `No loaded plugin matches "${request.plugin!}".`);
      return (await runtime.plugins.trial({ dir: loaded.dir, expectCid: loaded.cid }, request.input, options)).result;
    },
    async loadPlugin(request) {
      requireRunning();
      if ((request.dir === undefined) === (request.plugin === undefined)) {
        throw new TesseraError('VALIDATION_FAILED', 'Give exactly one of "dir" (a plugin folder on this device) or "plugin" (a loaded plugin to reload from its folder).');
      }
      let dir = request.dir;
      if (dir === undefined) {
        const loaded = runtime.plugins.find(request.plugin!);
        if (!loaded) throw new TesseraError('PLUGIN_NOT_FOUND', `No loaded plugin matches "${request.plugin!}".`);
        dir = loaded.dir;
      }
      return runtime.plugins.load(dir);
    },
    pluginFailures() {
      requireRunning();
      return runtime.plugins.failures();
    },
    createLink({ capsule, ttl_ms, label, by }) {
      requireRunning();
      // The links module reads no other module's table: whether the capsule exists is checked here.
      if (runtime.receipts.capsule(capsule) === undefined) throw new TesseraError('CAPSULE_NOT_FOUND', `No capsule ${capsule} on this device.`);
      return runtime.links.create({ capsule, ...(ttl_ms !== undefined ? { ttl_ms } : {}), ...(label !== undefined ? { label } : {}), ...(by !== undefined ? { by } : {}) });
    },
  };
}

/**
 * A scenario file as API answers name it: relative to its scenarios folder (the loader reads one level, so the
 * file name), never the device's absolute path (issue 13 point 20).
 */
function sourceName(file: string): string {
  return basename(file);
}

/** The required top-level names of a scenario's ctx_schema (what a run must be started with). */
function requiredOf(schema: unknown): string[] {
  const required = (schema as { required?: unknown } | null | undefined)?.required;
  return Array.isArray(required) ? required.filter((r): r is string => typeof r === 'string') : [];
}
