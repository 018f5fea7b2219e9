/**
 * Authorization, decided on the route the server matched (issue 13 §1.1), never on the raw URL: the router
 * decodes `/%61pi/info` to `/api/info`, so a check of the raw text is a check of something else.
 *
 * - Every route declares who may reach it in its options, `config: { access }`: `'public'`, or the roles (and
 *   `'tenant'`) that may. A route that declares nothing cannot be registered: the server refuses to start.
 * - The hook runs on every request (WebSocket upgrades go through the same router and hooks). A request that
 *   matched no route is answered 404/405 by the not-found handler and reaches nothing.
 * - The `Host` header must name an address this server listens on, and a WebSocket upgrade's `Origin` must be
 *   this server's own: a web page whose name was rebound to 127.0.0.1 (DNS rebinding) gets nothing.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import type { Role } from '../../common/roles.js';
import type { Credentials, Principal } from '../credentials.js';
import { bearerToken } from './request.js';

/** Who may reach a route: everyone, or the holders of these roles (`tenant`: a tenant token). */
export type Access = 'public' | ReadonlyArray<Role | 'tenant'>;

/** Every role; for routes any credential holder may use. */
export const ANY_ROLE: ReadonlyArray<Role | 'tenant'> = ['traveller', 'staff', 'author', 'operator'];

export const WS_BEARER_PREFIX = 'tessera.bearer.';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may reach this route; required on every route (see main/host/http/access.ts). */
    access?: Access;
  }
  interface FastifyRequest {
    /** Who sent the request; null on public routes and before the access hook ran. */
    principal: Principal | null;
  }
}

export interface AccessOptions {
  credentials: Credentials;
  /** Host names besides `localhost` and the IP literal the client connected to (e.g. the `--host` name). */
  allowedHosts?: readonly string[];
}

/** Installs the access hook and the rule that every route declares its access. Call before any route. */
export function installAccessControl(app: FastifyInstance, options: AccessOptions): void {
  const { credentials } = options;
  const extraHosts = new Set((options.allowedHosts ?? []).map((h) => h.toLowerCase().replace(/^\[|\]$/g, '')));
  app.decorateRequest('principal', null);

  // Checked once every plugin has added its routes (a plugin's own onRoute hook may set the access of the
  // routes it adds, after this one ran): a route that declares nothing stops the server from starting.
  const added: Array<{ method: string | string[]; url: string; config?: { access?: Access } }> = [];
  app.addHook('onRoute', (route) => void added.push(route as (typeof added)[number]));
  app.addHook('onReady', async () => {
    const undeclared = added.filter((r) => r.config?.access === undefined).map((r) => `${Array.isArray(r.method) ? r.method.join(',') : r.method} ${r.url}`);
    if (undeclared.length > 0) throw new Error(`Routes that declare no access (config.access): ${undeclared.join('; ')}. Every route must say who may reach it.`);
  });

  app.addHook('onRequest', async (request, reply) => {
    const host = hostAllowed(request, extraHosts);
    if (host !== true) return refuse(reply, 421, 'HOST_NOT_ALLOWED', host);
    const upgrade = isUpgrade(request);
    if (upgrade) {
      const origin = originAllowed(request, extraHosts);
      if (origin !== true) return refuse(reply, 403, 'HOST_NOT_ALLOWED', origin);
    }
    // No route matched: the not-found handler answers 404 (or 405) and nothing else runs.
    if (request.is404) return;
    const access = request.routeOptions.config.access;
    if (access === 'public') return;

    const header = request.headers.authorization;
    let candidate = bearerToken(header);
    if (candidate === undefined && upgrade) {
      const offered = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
      candidate = offered.find((p) => p.startsWith(WS_BEARER_PREFIX))?.slice(WS_BEARER_PREFIX.length);
    }
    const principal = credentials.resolve(candidate);
    if (!principal) {
      const problem = header === undefined && candidate === undefined
        ? 'Send Authorization: Bearer <token>; the token is in <data>/api-token.'
        : candidate === undefined
          ? 'The Authorization header must be "Bearer <token>".'
          : 'The bearer token is not valid for this device (or its operator unlock has ended).';
      void reply.header('www-authenticate', 'Bearer realm="tessera"');
      return refuse(reply, 401, 'UNAUTHORIZED', problem);
    }
    const allowed = access ?? [];
    const granted = principal.kind === 'tenant' ? allowed.includes('tenant') : principal.roles.some((r) => allowed.includes(r));
    if (!granted) {
      const needs = allowed.filter((a) => a !== 'tenant');
      const message = principal.kind === 'tenant'
        ? `A tenant token reaches the product API only; ${request.routeOptions.url} needs the device API token (<data>/api-token).`
        : `${request.method} ${request.routeOptions.url} needs the ${needs.join(' or ') || 'device owner'} role; this credential holds ${principal.roles.join(', ')}.`;
      return refuse(reply, 403, 'FORBIDDEN', message);
    }
    request.principal = principal;
    request.tenant = principal.tenant;
  });
}

function refuse(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  // An upgrade that is refused must not leave its socket open; a refused body is not worth reading.
  void reply.code(status).header('connection', 'close').send({ error: { code, message } });
  return reply;
}

function isUpgrade(request: FastifyRequest): boolean {
  return String(request.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

/** The address the client connected to, as it may appear in a Host header (no brackets, no zone). */
function localAddress(request: FastifyRequest): string {
  let address = request.socket.localAddress ?? '';
  if (address.startsWith('::ffff:')) address = address.slice(7);
  return address.toLowerCase();
}

function hostName(authority: string): string | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(authority.trim());
  if (!match) return undefined;
  return match[1]!.replace(/^\[|\]$/g, '').toLowerCase();
}

function nameAllowed(name: string, request: FastifyRequest, extra: ReadonlySet<string>): boolean {
  if (name === 'localhost' || extra.has(name)) return true;
  // An IP literal: the address the client connected to. Loopback literals are the same machine.
  if (isIP(name) !== 0) return name === localAddress(request) || name === '127.0.0.1' || name === '::1';
  return false;
}

function hostAllowed(request: FastifyRequest, extra: ReadonlySet<string>): true | string {
  const raw = request.headers.host;
  // HTTP/1.0 clients may send no Host; they cannot be a browser page under a rebound name.
  if (raw === undefined || raw === '') return true;
  const name = hostName(raw);
  if (name !== undefined && nameAllowed(name, request, extra)) return true;
  return `Host "${raw.slice(0, 100)}" is not an address of this device: reach it as 127.0.0.1 or localhost (or the name given to --host).`;
}

function originAllowed(request: FastifyRequest, extra: ReadonlySet<string>): true | string {
  const origin = request.headers.origin;
  // Browsers always send Origin on a WebSocket handshake; other clients may not, and are not a page of a
  // foreign site.
  if (origin === undefined) return true;
  let url: URL | undefined;
  try {
    url = new URL(origin);
  } catch {
    url = undefined;
  }
  const port = url ? (url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)) : -1;
  if (url && url.protocol === `${request.protocol}:` && port === request.socket.localPort && nameAllowed(url.hostname.replace(/^\[|\]$/g, '').toLowerCase(), request, extra)) return true;
  return `A WebSocket from origin "${origin.slice(0, 100)}" is not accepted: only pages served by this device may open one.`;
}
