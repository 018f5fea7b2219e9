/** What the HTTP routes read from a request besides its body: the bearer token, who it is, this server's origin. */
import type { FastifyRequest } from 'fastify';
import { TesseraError } from '../../common/errors.js';
import { decodeUtf8, parseJsonText } from '../../common/json-text.js';

/**
 * This server's origin as the client reached it: the local address and port of the request's socket, never the
 * Host header, which the client chooses (card and bundle URLs are signed into bundles and shown as QR codes).
 */
export function localOrigin(request: FastifyRequest): string {
  const socket = request.socket;
  let address = socket.localAddress ?? '127.0.0.1';
  if (address.startsWith('::ffff:')) address = address.slice(7);
  const host = address.includes(':') ? `[${address}]` : address;
  return `${request.protocol}://${host}:${socket.localPort ?? 0}`;
}

/** The token of an `Authorization` header; the scheme is case-insensitive (RFC 9110 §11.1). */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^bearer +(\S+) *$/i.exec(header);
  return match ? match[1] : undefined;
}

/** The device token sees every tenant's capsules; a tenant token only its own (the others are "not found"). */
export function canSee(request: FastifyRequest, capsule: { tenant: string }): boolean {
  return request.tenant === null || capsule.tenant === request.tenant.id;
}

/**
 * The content-type parser of every JSON body (main/common/json-text.ts: strict UTF-8, one depth rule, no duplicate
 * keys). Some clients label every request as JSON: an empty body on a request that carries none (DELETE, GET) is none.
 */
export function parseJsonBody(request: FastifyRequest, body: Buffer, done: (err: Error | null, value?: unknown) => void): void {
  if (body.length === 0) {
    if (request.method === 'DELETE' || request.method === 'GET') done(null, undefined);
    else done(new TesseraError('VALIDATION_FAILED', 'The body is empty; send a JSON document.'));
    return;
  }
  const text = decodeUtf8(body);
  if (typeof text !== 'string') return done(new TesseraError('VALIDATION_FAILED', text.message));
  const parsed = parseJsonText(text);
  if ('problem' in parsed) return done(new TesseraError('VALIDATION_FAILED', parsed.problem.message, { details: { problem: parsed.problem.kind } }));
  done(null, parsed.value);
}
