/**
 * The client API implemented once, over the runtime. The HTTP routes and the Electron IPC bridge are thin
 * adapters around these functions; inputs reaching here have passed the schemas in ./schemas.ts.
 */
import type { DebugAction, DebugState, EventPage, EventQuery, ReplayDifference, PluginInfo, PluginRunResult, PluginTestRequest, PublishInput, RunDetail, RunRequest, RunSummary, RuntimeInfo, ScenarioSummary, TesseraEvent } from '../common/api.js';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../common/errors.js';
import type { Runtime } from '../runtime/index.js';

export interface Operations {
  info(): RuntimeInfo;
  queryEvents(query: EventQuery): EventPage;
  publishEvent(input: PublishInput): TesseraEvent;
  listPlugins(): PluginInfo[];
  testPlugin(request: PluginTestRequest): Promise<PluginRunResult>;
  listScenarios(): ScenarioSummary[];
  runScenario(request: RunRequest): { run_id: string };
  listRuns(query: { scenario_id?: string; state?: RunSummary['state']; limit?: number }): RunSummary[];
  runStatus(runId: string): RunDetail;
  cancelRun(runId: string): { cancelled: boolean };
  debugRun(request: DebugRequest): DebugState;
  /** Replay a finished run; acknowledged durable like runScenario. */
  replayRun(runId: string): { run_id: string };
  replayDiff(runId: string): ReplayDifference[];
}

export interface DebugRequest {
  run_id: string;
  action: DebugAction;
  breakpoints?: string[];
}

export function createOperations(runtime: Runtime): Operations {
  /** An uploaded package is written to a private folder, verified like any other, run once and removed. */
  const runUploaded = async (pkg: NonNullable<PluginTestRequest['package']>, input: unknown, options: { now?: string }) => {
    const entry = typeof pkg.manifest['entry'] === 'string' ? pkg.manifest['entry'] : '';
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.m?js$/.test(entry)) throw new TesseraError('PLUGIN_MANIFEST_INVALID', 'The uploaded manifest needs an "entry" file name like plugin.js.');
    const dir = join(runtime.info.data_dir, 'uploads', randomUUID());
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(join(dir, 'plugin.json'), JSON.stringify(pkg.manifest));
      writeFileSync(join(dir, entry), pkg.code);
      writeFileSync(join(dir, 'plugin.sig'), JSON.stringify(pkg.signature));
      const loaded = await runtime.plugins.load(dir, undefined, { transient: true });
      try {
        return await runtime.plugins.run(loaded.key, input, options);
      } finally {
        await runtime.plugins.unload(loaded.key).catch(() => undefined);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

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
      return runtime.scenarios.scenarios().map((s) => ({ id: s.id, version: s.version, description: s.description ?? null, priority: s.priority, pool: s.pool, steps: s.steps.map((st) => st.name), source: s.source ?? null, ctx_required: requiredOf(s.ctx_schema) }));
    },
    runScenario({ id, ctx, ...opts }) {
      requireRunning();
      const runId = runtime.scenarios.run(id, ctx ?? {}, opts);
      runtime.scenarios.flush(); // acknowledged runs are durable
      return { run_id: runId };
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
      if (request.package !== undefined) return runUploaded(request.package, request.input, options);
      const ref = request.dir !== undefined ? (await runtime.plugins.load(request.dir)).key : request.plugin!;
      return runtime.plugins.run(ref, request.input, options);
    },
  };
}

/** The required top-level names of a scenario's ctx_schema (what a run must be started with). */
function requiredOf(schema: unknown): string[] {
  const required = (schema as { required?: unknown } | null | undefined)?.required;
  return Array.isArray(required) ? required.filter((r): r is string => typeof r === 'string') : [];
}
