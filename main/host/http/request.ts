/** What the HTTP routes read from a request besides its body: the bearer token, who it is, this server's origin. */
import type { FastifyRequest } from 'fastify';

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
