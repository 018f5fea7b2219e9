/** The HTTP/WS transport of the client interface, for the UI served by a headless runtime. */
import type { DebugState, DeviceInfo, EventPage, EventQuery, PluginInfo, PluginLoadFailure, PluginLoadRequest, PluginRunResult, PluginTestRequest, PublishInput, ReplayDifference, RunDetail, RunRequest, RunSummary, RuntimeInfoView, ScenarioSummary, TesseraClient, TesseraEvent } from '../../../main/common/api.js';
import type { Role, SessionView } from '../../../main/common/roles.js';
import { agentRoomReader, createAgentClient } from '../../../main/common/agents-api.js';
import type { AgentRoomOpener } from '../../../main/common/agents-api.js';
import { createJourneyClient } from '../../../main/common/journeys-api.js';
import { createProductClient } from '../../../main/common/products-api.js';
import { createSyncClient } from '../../../main/common/sync-api.js';
import { createClusterClient } from '../../../main/common/cluster-api.js';
import { createHttpIoClient } from './io-http.js';
import { createTransport } from './transport.js';

export interface HttpClientOptions {
  /** e.g. `http://127.0.0.1:7420`; defaults to the page's origin. */
  origin?: string;
  token: string;
  /** Called when the runtime rejects the token, so the UI can ask for a new one. */
  onUnauthorized?: () => void;
}

export function createHttpClient(options: HttpClientOptions): TesseraClient {
  const origin = options.origin ?? location.origin;

  const transport = createTransport({ origin, token: options.token, ...(options.onUnauthorized ? { onUnauthorized: options.onUnauthorized } : {}) });
  const request = transport.request.bind(transport);
  // An agent session's room: `?after=` the last seq seen at each (re)connection; a refusal (not this caller's
  // session, or gone) closes it for good — the runtime closes with 1008 and would refuse again.
  const room: AgentRoomOpener = (session, after, handlers) => {
    const reader = agentRoomReader(after, handlers);
    const socket = transport.socket(() => `/ws/agents/${encodeURIComponent(session)}?after=${reader.last()}`, {
      onJson: (data) => {
        reader.frame(data);
        if ((data as { type?: unknown } | null)?.type === 'error') socket.close();
      },
      ...(handlers.onStatus ? { onStatus: handlers.onStatus } : {}),
    });
    return { close: () => socket.close() };
  };

  return {
    io: createHttpIoClient(transport),
    products: createProductClient(request),
    journeys: createJourneyClient(request),
    sync: createSyncClient(request),
    cluster: createClusterClient(request),
    agents: createAgentClient(request, room),
    info: () => request<RuntimeInfoView>('GET', '/api/info'),
    session: () => request<SessionView>('GET', '/api/auth/session'),
    unlock: (pin: string) => request<{ token: string; roles: Role[]; expires_at: string }>('POST', '/api/auth/unlock', { pin }),
    lock: () => request<{ locked: boolean }>('POST', '/api/auth/lock', {}).then(() => undefined),
    device: () => request<DeviceInfo>('GET', '/api/device'),
    queryEvents(query: EventQuery) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
      return request<EventPage>('GET', `/api/events?${params.toString()}`);
    },
    publishEvent: (input: PublishInput) => request<TesseraEvent>('POST', '/api/events', input),
    listPlugins: () => request<{ plugins: PluginInfo[] }>('GET', '/api/plugins').then((r) => r.plugins),
    testPlugin: (req: PluginTestRequest) => request<PluginRunResult>('POST', '/api/plugins/test', req),
    loadPlugin: (req: PluginLoadRequest) => request<PluginInfo>('POST', '/api/plugins/load', req),
    pluginFailures: () => request<{ failures: PluginLoadFailure[] }>('GET', '/api/plugins/failures').then((r) => r.failures),
    listScenarios: () => request<{ scenarios: ScenarioSummary[] }>('GET', '/api/scenarios').then((r) => r.scenarios),
    runScenario: (req: RunRequest) => request<{ run_id: string }>('POST', '/api/scenario/run', req),
    listRuns(query = {}) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
      return request<{ runs: RunSummary[] }>('GET', `/api/scenario/runs?${params.toString()}`).then((r) => r.runs);
    },
    runStatus: (runId: string) => request<RunDetail>('GET', `/api/scenario/status?run_id=${encodeURIComponent(runId)}`),
    cancelRun: (runId: string) => request<{ cancelled: boolean }>('POST', '/api/scenario/cancel', { run_id: runId }),
    debugRun: (runId, action, breakpoints) => request<DebugState>('POST', '/api/scenario/debug', { run_id: runId, action, ...(breakpoints ? { breakpoints } : {}) }),
    replayRun: (runId: string) => request<{ run_id: string }>('POST', '/api/scenario/replay', { run_id: runId }),
    replayDiff: (runId: string) => request<{ differences: ReplayDifference[] }>('GET', `/api/scenario/diff?run_id=${encodeURIComponent(runId)}`).then((r) => r.differences),
    subscribe(patterns, onEvent, onStatus) {
      const socket = transport.socket('/ws', {
        onOpen: (send) => send(JSON.stringify({ type: 'subscribe', patterns })),
        onJson: (data) => {
          const frame = data as { type?: unknown; event?: TesseraEvent } | null;
          if (frame?.type === 'event' && frame.event) onEvent(frame.event);
        },
        ...(onStatus ? { onStatus } : {}),
      });
      return () => socket.close();
    },
  };
}
