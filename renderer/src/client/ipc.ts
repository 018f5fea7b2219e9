/** The Electron transport of the client interface: the preload bridge, validated again in the main process. */
import type { DebugState, DeviceInfo, EventPage, PluginInfo, PluginLoadFailure, PluginRunResult, PublishInput, ReplayDifference, RunDetail, RunSummary, RuntimeInfo, ScenarioSummary, TesseraClient, TesseraEvent } from '../../../main/common/api.js';
import type { BridgeResult, TesseraBridge } from '../../../main/common/bridge.js';
import { fromErrorData } from '../../../main/common/errors.js';
import { compilePattern } from '../../../main/common/topics.js';
import type { Role, SessionView } from '../../../main/common/roles.js';
import { createAgentClient } from '../../../main/common/agents-api.js';
import { createJourneyClient } from '../../../main/common/journeys-api.js';
import { createProductClient } from '../../../main/common/products-api.js';
import type { Requester } from '../../../main/common/products-api.js';
import { createSyncClient } from '../../../main/common/sync-api.js';
import { createClusterClient } from '../../../main/common/cluster-api.js';
import { createIpcIoClient } from './io-ipc.js';

function unwrap<T>(result: BridgeResult): T {
  if (result.ok) return result.value as T;
  throw fromErrorData(result.error);
}

interface LocalSubscription {
  patterns: string[];
  matchers: Array<(topic: string) => boolean>;
  onEvent: (event: TesseraEvent) => void;
}

export function createIpcClient(bridge: TesseraBridge): TesseraClient {
  // The main process keeps one pattern set per window: the union of this window's subscriptions, which are
  // dispatched here.
  const subscriptions = new Set<LocalSubscription>();
  let stopListening: (() => void) | undefined;
  const sync = () => bridge.subscribe([...new Set([...subscriptions].flatMap((s) => s.patterns))]);
  // Issue 14's and 15's routes: each request goes into the same HTTP routes in the main process (IPC method `api`),
  // with this window's credential.
  const viaRoutes: Requester = async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => unwrap<T>(await bridge.invoke('api', body === undefined ? { method, path } : { method, path, body }));

  return {
    io: createIpcIoClient(bridge),
    products: createProductClient(viaRoutes),
    journeys: createJourneyClient(viaRoutes),
    sync: createSyncClient(viaRoutes),
    cluster: createClusterClient(viaRoutes),
    // No room over IPC: the turn's answer comes with its response.
    agents: createAgentClient(viaRoutes),
    info: async () => unwrap<RuntimeInfo>(await bridge.invoke('info')),
    session: async () => unwrap<SessionView>(await bridge.invoke('session')),
    unlock: async (pin: string) => unwrap<{ token: string; roles: Role[]; expires_at: string }>(await bridge.invoke('unlock', { pin })),
    lock: async () => void unwrap(await bridge.invoke('lock')),
    device: async () => unwrap<DeviceInfo>(await bridge.invoke('device')),
    queryEvents: async (query) => unwrap<EventPage>(await bridge.invoke('queryEvents', query)),
    publishEvent: async (input: PublishInput) => unwrap<TesseraEvent>(await bridge.invoke('publishEvent', input)),
    listPlugins: async () => unwrap<PluginInfo[]>(await bridge.invoke('listPlugins')),
    testPlugin: async (req) => unwrap<PluginRunResult>(await bridge.invoke('testPlugin', req)),
    loadPlugin: async (req) => unwrap<PluginInfo>(await bridge.invoke('loadPlugin', req)),
    pluginFailures: async () => unwrap<PluginLoadFailure[]>(await bridge.invoke('pluginFailures')),
    listScenarios: async () => unwrap<ScenarioSummary[]>(await bridge.invoke('listScenarios')),
    runScenario: async (req) => unwrap<{ run_id: string }>(await bridge.invoke('runScenario', req)),
    listRuns: async (query = {}) => unwrap<RunSummary[]>(await bridge.invoke('listRuns', query)),
    runStatus: async (runId) => unwrap<RunDetail>(await bridge.invoke('runStatus', { run_id: runId })),
    cancelRun: async (runId) => unwrap<{ cancelled: boolean }>(await bridge.invoke('cancelRun', { run_id: runId })),
    debugRun: async (runId, action, breakpoints) => unwrap<DebugState>(await bridge.invoke('debugRun', { run_id: runId, action, ...(breakpoints ? { breakpoints } : {}) })),
    replayRun: async (runId) => unwrap<{ run_id: string }>(await bridge.invoke('replayRun', { run_id: runId })),
    replayDiff: async (runId) => unwrap<ReplayDifference[]>(await bridge.invoke('replayDiff', { run_id: runId })),
    subscribe(patterns, onEvent, onStatus) {
      const sub: LocalSubscription = { patterns, matchers: patterns.map(compilePattern), onEvent };
      subscriptions.add(sub);
      stopListening ??= bridge.onEvent((event) => {
        for (const s of subscriptions) if (s.matchers.some((m) => m(event.topic))) s.onEvent(event);
      });
      void sync().then((r) => onStatus?.(r.ok));
      return () => {
        subscriptions.delete(sub);
        void sync();
      };
    },
  };
}
