/**
 * What the renderer's HTTP clients share: JSON requests with the bearer token and the one error shape, and
 * WebSockets that authenticate with the token as a subprotocol and reconnect with capped exponential backoff.
 */
import { TesseraError, fromErrorData } from '../../../main/common/errors.js';

export interface Transport {
  /** A JSON request; a non-2xx answer throws its TesseraError, an unreachable runtime NOT_READY (retryable). */
  request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>;
  /**
   * Opens `path` as a WebSocket that reconnects until closed (0.5 s, 1 s, 2 s … 10 s between tries). A function is
   * asked again at each connection (e.g. a room's `?after=` the last event seen).
   */
  socket(path: string | (() => string), handlers: SocketHandlers): ReconnectingSocket;
}

export interface SocketHandlers {
  /** Each (re)connection, before `onStatus(true)`: e.g. send the subscription again. */
  onOpen?: (send: (data: string | ArrayBuffer | ArrayBufferView) => void) => void;
  /** A text frame parsed as JSON; malformed frames are dropped and the stream goes on. */
  onJson: (data: unknown) => void;
  onStatus?: (connected: boolean) => void;
}

export interface ReconnectingSocket {
  /** Sends when connected; returns false (nothing sent) while reconnecting. */
  send(data: string | ArrayBuffer | ArrayBufferView): boolean;
  close(): void;
}

export function createTransport(options: { origin: string; token: string; onUnauthorized?: () => void }): Transport {
  const { origin, token } = options;
  return {
    async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
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
      if (!res.ok) {
        if (res.status === 401) options.onUnauthorized?.();
        throw fromErrorData((data as { error?: unknown } | undefined)?.error);
      }
      return data as T;
    },
    socket(path, handlers) {
      let socket: WebSocket | undefined;
      let closed = false;
      let retry = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const send = (data: string | ArrayBuffer | ArrayBufferView) => {
        if (socket?.readyState !== WebSocket.OPEN) return false;
        socket.send(data);
        return true;
      };
      const connect = () => {
        socket = new WebSocket(origin.replace(/^http/, 'ws') + (typeof path === 'function' ? path() : path), ['tessera.v1', `tessera.bearer.${token}`]);
        socket.binaryType = 'arraybuffer';
        socket.onopen = () => {
          retry = 0;
          handlers.onOpen?.(send);
          handlers.onStatus?.(true);
        };
        socket.onmessage = (msg) => {
          if (typeof msg.data !== 'string') return;
          let data: unknown;
          try {
            data = JSON.parse(msg.data);
          } catch {
            return; // A malformed frame from the runtime is dropped; the stream goes on.
          }
          handlers.onJson(data);
        };
        socket.onclose = () => {
          handlers.onStatus?.(false);
          if (closed) return;
          timer = setTimeout(connect, Math.min(10_000, 500 * 2 ** retry++));
        };
      };
      connect();
      return {
        send,
        close() {
          closed = true;
          if (timer) clearTimeout(timer);
          socket?.close();
        },
      };
    },
  };
}
