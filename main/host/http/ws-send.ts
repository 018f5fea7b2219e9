/**
 * JSON text frames over the server's WebSockets. Sending to a client that may stop reading: once more than {@link MAX_BUFFERED} bytes wait
 * in its send buffer, the client is closed with 1013 ("try again later") rather than let the server's memory grow.
 * Shared by the live event stream (`/ws`), the dialogue connection (`/ws/io`) and the agent rooms (`/ws/agents/{id}`).
 */
import type { RawData, WebSocket } from 'ws';
import { TesseraError } from '../../common/errors.js';
import type { Logger } from '../../runtime/log/index.js';

export const MAX_BUFFERED = 4 * 1024 * 1024;

/** A `send(message)` for `socket`: JSON text, nothing once the socket is no longer open. */
export function jsonSender(socket: WebSocket, log: Logger, what: string): (message: unknown) => void {
  return (message) => {
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount > MAX_BUFFERED) {
      log.warn(`closing ${what} that does not keep up`);
      socket.close(1013, 'client too slow');
      return;
    }
    socket.send(JSON.stringify(message));
  };
}

/** A client's text frame as JSON. @throws TesseraError VALIDATION_FAILED when it is not valid JSON */
export function parseJsonFrame(data: RawData): unknown {
  try {
    return JSON.parse(String(data));
  } catch {
    throw new TesseraError('VALIDATION_FAILED', 'The message is not valid JSON.');
  }
}
