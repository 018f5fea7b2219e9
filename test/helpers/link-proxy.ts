/**
 * A TCP proxy between a device and the cloud, for tests that cut the link: real sockets on 127.0.0.1, no HTTP
 * knowledge. `cut('reset')` drops every open connection and resets new ones at once (a cable pulled, a server
 * gone); `cut('blackhole')` accepts and then says nothing (a captive portal, a dead route: the client's timeout
 * must fire); `heal()` forwards again.
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';

export interface LinkProxy {
  /** `http://127.0.0.1:PORT`: give this to the device instead of the cloud's URL. */
  readonly url: string;
  readonly port: number;
  cut(mode?: 'reset' | 'blackhole'): void;
  heal(): void;
  /** Forward new connections to another port from now on (a cloud restarted on a new port). */
  retarget(port: number): void;
  /** Connections accepted so far (forwarded or not). */
  readonly connections: number;
  close(): Promise<void>;
}

export interface LinkProxyOptions {
  /**
   * Called with the request line (`POST /v1/sync/receipts HTTP/1.1`) of each HTTP request the device sends, before
   * it is forwarded: a test kills a process "in the middle of" a given request here.
   */
  onRequest?: (line: string) => void;
}

export async function startLinkProxy(target: { host?: string; port: number }, options: LinkProxyOptions = {}): Promise<LinkProxy> {
  let mode: 'open' | 'reset' | 'blackhole' = 'open';
  let targetPort = target.port;
  let connections = 0;
  const open = new Set<Socket>();
  const track = (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
  };
  const server: Server = createServer((client) => {
    connections++;
    track(client);
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'blackhole') return; // held open, never answered
    const upstream = connect({ host: target.host ?? '127.0.0.1', port: targetPort });
    track(upstream);
    client.on('data', (chunk: Buffer) => {
      const head = chunk.subarray(0, 200).toString('latin1');
      const line = /^(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) \S+ HTTP\/1\.[01]/.exec(head);
      if (line) options.onRequest?.(line[0]);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get connections() {
      return connections;
    },
    retarget(port) {
      targetPort = port;
    },
    cut(how = 'reset') {
      mode = how;
      for (const s of open) s.destroy();
    },
    heal() {
      mode = 'open';
      // Held blackhole connections go too: the client retries on a fresh connection.
      for (const s of open) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
