/** The HTTP/WS transport of the client interface, for the UI served by a headless runtime. */
import type { DebugState, EventPage, EventQuery, PluginInfo, PluginRunResult, PluginTestRequest, PublishInput, ReplayDifference, RunDetail, RunRequest, RunSummary, RuntimeInfo, ScenarioSummary, TesseraClient, TesseraEvent } from '../../../main/common/api.js';
import { TesseraError, fromErrorData } from '../../../main/common/errors.js';
import { createHttpIoClient } from './io-http.js';

export interface HttpClientOptions {
  /** e.g. `http://127.0.0.1:7420`; defaults to the page's origin. */
  origin?: string;
  token: string;
  /** Called when the runtime rejects the token, so the UI can ask for a new one. */
  onUnauthorized?: () => void;
}

export function createHttpClient(options: HttpClientOptions): TesseraClient {
  const origin = options.origin ?? location.origin;

  async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(origin + path, {
        method,
        headers: { authorization: `Bearer ${options.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new TesseraError('NOT_READY', 'The runtime cannot be reached.', { retryable: true });
    }
    const data: unknown = await res.json().catch(() => undefined);
    if (!res.ok) {
      if (res.status === 401) options.onUnauthorized?.();
      throw fromErrorData((data as { error?: unknown } | undefined)?.error);
    }
    return data as T;
  }

  return {
    io: createHttpIoClient({ origin, token: options.token }),
    info: () => request<RuntimeInfo>('GET', '/api/info'),
    queryEvents(query: EventQuery) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
      return request<EventPage>('GET', `/api/events?${params.toString()}`);
    },
    publishEvent: (input: PublishInput) => request<TesseraEvent>('POST', '/api/events', input),
    listPlugins: () => request<{ plugins: PluginInfo[] }>('GET', '/api/plugins').then((r) => r.plugins),
    testPlugin: (req: PluginTestRequest) => request<PluginRunResult>('POST', '/api/plugins/test', req),
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
      let socket: WebSocket | undefined;
      let closed = false;
      let retry = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const connect = () => {
        const url = origin.replace(/^http/, 'ws') + '/ws';
        socket = new WebSocket(url, ['tessera.v1', `tessera.bearer.${options.token}`]);
        socket.onopen = () => {
          retry = 0;
          socket?.send(JSON.stringify({ type: 'subscribe', patterns }));
          onStatus?.(true);
        };
        socket.onmessage = (msg) => {
          try {
            const data = JSON.parse(String(msg.data)) as { type: string; event?: TesseraEvent };
            if (data.type === 'event' && data.event) onEvent(data.event);
          } catch {
            // A malformed frame from the runtime is dropped; the stream goes on.
          }
        };
        socket.onclose = () => {
          onStatus?.(false);
          if (closed) return;
          // Reconnect with capped exponential backoff: 0.5 s, 1 s, 2 s … 10 s.
          timer = setTimeout(connect, Math.min(10_000, 500 * 2 ** retry++));
        };
      };
      connect();
      return () => {
        closed = true;
        if (timer) clearTimeout(timer);
        socket?.close();
      };
    },
  };
}
