/** The HTTP/WS transport of the Journey Guide's I/O client: `/api/io/*` routes and the `/ws/io` dialogue socket. */
import type { DialogueConnection, DialogueMessage, IoClient, IoInputOutcome, IoStatusView } from '../../../main/common/api.js';
import { TesseraError, fromErrorData } from '../../../main/common/errors.js';

export function createHttpIoClient(options: { origin: string; token: string }): IoClient {
  const { origin, token } = options;
  async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(origin + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new TesseraError('NOT_READY', 'The runtime cannot be reached.', { retryable: true });
    }
    const data: unknown = await res.json().catch(() => undefined);
    if (!res.ok) throw fromErrorData((data as { error?: unknown } | undefined)?.error);
    return data as T;
  }

  return {
    status: () => request<IoStatusView>('GET', '/api/io/status'),
    input: (req) => request<IoInputOutcome>('POST', '/api/io/input', req),
    dialogue(onMessage, onStatus) {
      let socket: WebSocket | undefined;
      let closed = false;
      let retry = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const connect = () => {
        socket = new WebSocket(origin.replace(/^http/, 'ws') + '/ws/io', ['tessera.v1', `tessera.bearer.${token}`]);
        socket.binaryType = 'arraybuffer';
        socket.onopen = () => {
          retry = 0;
          onStatus?.(true);
        };
        socket.onmessage = (msg) => {
          if (typeof msg.data !== 'string') return;
          try {
            onMessage(JSON.parse(msg.data) as DialogueMessage);
          } catch {
            // A malformed frame from the runtime is dropped; the dialogue goes on.
          }
        };
        socket.onclose = () => {
          onStatus?.(false);
          if (closed) return;
          timer = setTimeout(connect, Math.min(10_000, 500 * 2 ** retry++));
        };
      };
      connect();
      const sendJson = (m: unknown) => {
        if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(m));
      };
      const connection: DialogueConnection = {
        startAudio: (sampleRate, question) => sendJson({ type: 'audio.start', sample_rate: sampleRate, ...(question ?? {}) }),
        sendAudio: (pcm) => {
          if (socket?.readyState === WebSocket.OPEN) socket.send(pcm);
        },
        endAudio: (cancel = false) => sendJson({ type: cancel ? 'audio.cancel' : 'audio.end' }),
        close() {
          closed = true;
          if (timer) clearTimeout(timer);
          socket?.close();
        },
      };
      return connection;
    },
  };
}
