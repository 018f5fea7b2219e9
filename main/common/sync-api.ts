/**
 * The client side of the device's sync routes (issue 16 §6; main/host/http/sync.ts), written once over a
 * {@link Requester} like main/common/products-api.ts: the HTTP transport sends the request itself, the Electron
 * transport hands it to the main process (IPC method `api`), which injects it into the same Fastify routes with the
 * window's credential.
 *
 * - `GET  /api/sync` (staff, operator) → {@link SyncStatus}
 * - `POST /api/sync/now` (staff, operator) → {@link SyncStatus}: a sync round now (resolves when it has run)
 * - `POST /api/sync/enroll` (operator) `{cloud, code, name?}` → {@link SyncStatus}: enrolls this device with a cloud
 *
 * A runtime without the sync module answers NOT_FOUND on all three: callers treat that as "no sync on this device"
 * (the status bar hides). Pure module: shared by the renderer and the host.
 */
import type { LeaseBalance, SyncStatus } from './cloud.js';
import type { Requester } from './products-api.js';

export type { LeaseBalance, SyncStatus };

/** What `POST /api/sync/enroll` takes: the cloud's URL and a one-time enrollment code from its operator. */
export interface SyncEnrollRequest {
  cloud: string;
  code: string;
  /** What this device calls itself in the cloud's device list (default: the code's name). */
  name?: string;
}

export interface SyncClient {
  /**
   * Whether this runtime serves the sync routes: its manifest (`GET /.well-known/product.json`) lists `/api/sync`.
   * Asked once per client, so that a runtime without the sync module is not asked (a 404 is a console error in a
   * browser); true when the manifest cannot be read (the Electron bridge carries only /api and /v1): then `status()`
   * answers, NOT_FOUND included.
   */
  available(): Promise<boolean>;
  /** This device's sync state, lease balances included. Rejects NOT_FOUND when the runtime has no sync module. */
  status(): Promise<SyncStatus>;
  /** Runs a sync round now (upload, pull, lease returns) and answers the state after it. */
  now(): Promise<SyncStatus>;
  /** Enrolls this device with `cloud` using a one-time code (operator only). */
  enroll(request: SyncEnrollRequest): Promise<SyncStatus>;
}

/** The sync client over one requester (HTTP or IPC). */
export function createSyncClient(request: Requester): SyncClient {
  let known: Promise<boolean> | undefined;
  return {
    available: () =>
      (known ??= request<{ routes?: unknown }>('GET', '/.well-known/product.json').then(
        (manifest) => !Array.isArray(manifest.routes) || manifest.routes.some((r) => (r as { url?: unknown } | null)?.url === '/api/sync'),
        () => true,
      )),
    status: () => request<SyncStatus>('GET', '/api/sync'),
    now: () => request<SyncStatus>('POST', '/api/sync/now', {}),
    enroll: (body) => request<SyncStatus>('POST', '/api/sync/enroll', body.name === undefined ? { cloud: body.cloud, code: body.code } : { cloud: body.cloud, code: body.code, name: body.name }),
  };
}
