/**
 * The UI is served from `app://tessera/`, a privileged custom scheme, not from `file://` (Electron security
 * checklist: "avoid the file:// protocol"): a `file://` page is one origin with every file on the disk, while
 * `app://tessera` is an origin of its own that reaches only the built renderer folder. `CONTENT_SECURITY_POLICY`'s
 * `'self'` then means that origin, and the navigation and IPC checks (./security.ts, ./ipc.ts) accept only it.
 *
 * Registration has two halves: {@link registerAppScheme} before the app is ready (Electron's rule for privileged
 * schemes), {@link handleAppScheme} after. The request handler, {@link serveAppFile}, is plain Node and
 * unit-tested on real files (test/unit/electron-shell.test.ts).
 */
import type { Protocol } from 'electron';
import { realpath, readFile, stat } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, sep } from 'node:path';
import { CONTENT_SECURITY_POLICY } from '../common/csp.js';

export const APP_SCHEME = 'app';
export const APP_HOST = 'tessera';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
/** The one page of the UI; the window loads it and only it counts as the app (./security.ts `isAppUrl`). */
export const APP_INDEX_URL = `${APP_ORIGIN}/index.html`;

/**
 * `standard`: URLs with a host, relative resolution and a real origin (module scripts and `'self'` work);
 * `secure`: a secure context like https; `supportFetchAPI`: the page may fetch its own files. Not `corsEnabled`
 * (that would let other origins read these files) and not `bypassCSP`.
 */
export const APP_SCHEME_PRIVILEGES = { standard: true, secure: true, supportFetchAPI: true } as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.wasm': 'application/wasm',
  '.wav': 'audio/wav',
  '.txt': 'text/plain; charset=utf-8',
};

/** Headers of every answer: the CSP (the page's own, not only the session's), and no type sniffing. */
function baseHeaders(): Record<string, string> {
  return { 'content-security-policy': CONTENT_SECURITY_POLICY, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' };
}

function refuse(status: 400 | 404 | 405, reason: string): Response {
  return new Response(reason, { status, headers: { ...baseHeaders(), 'content-type': 'text/plain; charset=utf-8' } });
}

function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel);
}

/**
 * Answer one `app://` request from the files under `rootDir` (the built renderer). Only GET and HEAD of
 * `app://tessera/…`; `/` is `index.html`. The path is decoded once and refused (400) when a segment is empty,
 * `.` or `..`, or holds a backslash or a NUL — whatever the URL parser before us normalized or not; then the file's
 * real path (symbolic links resolved) must still be inside `rootDir`'s, else 404 like a missing file.
 */
export async function serveAppFile(request: { url: string; method: string }, rootDir: string): Promise<Response> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return refuse(400, 'Not a URL.');
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST) return refuse(404, `Only ${APP_ORIGIN}/ is served.`);
  if (request.method !== 'GET' && request.method !== 'HEAD') return refuse(405, 'Only GET and HEAD.');
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return refuse(400, 'The path has a malformed percent-encoding.');
  }
  if (path === '/') path = '/index.html';
  const segments = path.split('/').slice(1);
  if (segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))) return refuse(400, 'The path must name a file inside the app.');
  const file = join(rootDir, ...segments);
  if (!within(rootDir, file)) return refuse(400, 'The path must name a file inside the app.');
  let real: string;
  let body: Uint8Array<ArrayBuffer>;
  try {
    real = await realpath(file);
    if (!within(await realpath(rootDir), real) || !(await stat(real)).isFile()) return refuse(404, 'No such file in the app.');
    body = new Uint8Array(await readFile(real));
  } catch {
    return refuse(404, 'No such file in the app.');
  }
  const headers = { ...baseHeaders(), 'content-type': TYPES[extname(real).toLowerCase()] ?? 'application/octet-stream', 'content-length': String(body.length) };
  return new Response(request.method === 'HEAD' ? null : body, { status: 200, headers });
}

/** Before `app` is ready: make `app:` a standard, secure scheme (it can be done only then, and only once). */
export function registerAppScheme(protocol: Pick<Protocol, 'registerSchemesAsPrivileged'>): void {
  protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { ...APP_SCHEME_PRIVILEGES } }]);
}

/** After `app` is ready: serve `app://tessera/` from `rootDir` in the default session. */
export function handleAppScheme(protocol: Pick<Protocol, 'handle'>, rootDir: string): void {
  protocol.handle(APP_SCHEME, (request) => serveAppFile(request, rootDir));
}
