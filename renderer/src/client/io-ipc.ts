/** The Electron transport of the Journey Guide's I/O client: `ioStatus`, `ioSession`, `ioInput`, `ioTalk` over the preload bridge. */
import type { IoClient, IoInputOutcome, IoSessionStart, IoStatusView } from '../../../main/common/api.js';
import type { BridgeResult, TesseraBridge } from '../../../main/common/bridge.js';
import { fromErrorData } from '../../../main/common/errors.js';

function unwrap<T>(result: BridgeResult): T {
  if (result.ok) return result.value as T;
  throw fromErrorData(result.error);
}

export function createIpcIoClient(bridge: TesseraBridge): IoClient {
  return {
    status: async () => unwrap<IoStatusView>(await bridge.invoke('ioStatus')),
    session: async (req = {}) => unwrap<IoSessionStart>(await bridge.invoke('ioSession', req)),
    input: async (req) => unwrap<IoInputOutcome>(await bridge.invoke('ioInput', req)),
    talk: {
      start: async () => unwrap<{ outcome: 'speech' | 'no_speech'; text: string; result?: IoInputOutcome }>(await bridge.invoke('ioTalk', { action: 'start' })),
      stop: async () => void unwrap(await bridge.invoke('ioTalk', { action: 'stop' })),
    },
  };
}
