/**
 * A lean HTTP/1.1 load client for the benchmarks: keep-alive connections over node:net, one request in flight
 * per connection (no pipelining), each request written with one `write` and each answer read by Content-Length.
 *
 * Why not node:http: its client costs about 0.3 ms of CPU per request here (agent bookkeeping, the parser,
 * the request/response objects, several syscalls), on the same two cores as the server it measures — the
 * benchmark then measured its own client as much as the server. This one does what wrk does and no more; it
 * counts its own CPU time so that the benchmark can print it.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface Answer {
  status: number;
  /** The body, as UTF-8 text. */
  body: string;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection; `send` writes a whole request and resolves with its answer. */
export class Connection {
  private buffer: Buffer = Buffer.alloc(0);
  private pending: { resolve: (a: Answer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      this.pending?.reject(err);
      this.pending = undefined;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the server closed the connection')));
  }

  static open(origin: string): Promise<Connection> {
    const { hostname, port } = new URL(origin);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) }, () => {
        socket.off('error', reject);
        resolve(new Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends `head` (request line and headers, ending with an empty line) and `body`; resolves with the answer. */
  send(head: string, body = ''): Promise<Answer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('one request at a time per connection'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(head + body);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private parse(): void {
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0 || !this.pending) return;
    const head = this.buffer.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!length) {
      this.pending.reject(new Error(`the answer has no Content-Length (chunked answers are not supported): ${head.split('\r\n')[0]}`));
      this.pending = undefined;
      return;
    }
    const total = end + HEADER_END.length + Number(length[1]);
    if (this.buffer.length < total) return;
    const body = this.buffer.toString('utf8', end + HEADER_END.length, total);
    this.buffer = this.buffer.subarray(total);
    const { resolve } = this.pending;
    this.pending = undefined;
    resolve({ status, body });
  }
}

/** The request line and headers of one request; `body` sets Content-Type JSON and Content-Length. */
export function requestHead(method: string, path: string, host: string, token: string, body?: string): string {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, `Authorization: Bearer ${token}`, 'Connection: keep-alive'];
  if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
  return lines.join('\r\n') + '\r\n\r\n';
}
