/** What the Electron preload exposes to the renderer as `window.tesseraBridge`. */
import type { TesseraEvent } from './api.js';
import type { ErrorData } from './errors.js';

export type BridgeResult = { ok: true; value: unknown } | { ok: false; error: ErrorData };

export type BridgeMethod = 'api' | 'info' | 'device' | 'session' | 'unlock' | 'lock' | 'queryEvents' | 'publishEvent' | 'listPlugins' | 'testPlugin' | 'loadPlugin' | 'pluginFailures' | 'listScenarios' | 'runScenario' | 'listRuns' | 'runStatus' | 'cancelRun' | 'debugRun' | 'replayRun' | 'replayDiff' | 'ioStatus' | 'ioSession' | 'ioInput' | 'ioTalk';

export interface TesseraBridge {
  invoke(method: BridgeMethod, arg?: unknown): Promise<BridgeResult>;
  subscribe(patterns: string[]): Promise<BridgeResult>;
  onEvent(listener: (event: TesseraEvent) => void): () => void;
}
