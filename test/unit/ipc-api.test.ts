/**
 * The IPC method `api` (issue 14): a window's request goes into the runtime's own HTTP routes in process, with the
 * window's credential, so the route it reaches decides exactly as over HTTP — a kiosk window is a traveller there
 * too. The Electron binary cannot run here: the registration gets a fake ipcMain that speaks its protocol; the
 * routes are the real Fastify server (not listening: `inject`).
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IPC_INVOKE, createWindowAccess, registerIpc } from '../../main/electron/ipc.js';
import { createCredentials, setOperatorPin } from '../../main/host/credentials.js';
import { createHttpServer } from '../../main/host/http/server.js';
import { createOperations } from '../../main/host/operations.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

const rendererIndexUrl = 'app://tessera/index.html';
const DEVICE_TOKEN = 'device-token-0123456789abcdefghij';
const mainFrame = { url: rendererIndexUrl };
const ui = { mainFrame, isDestroyed: () => false, send: () => undefined };
const fromUi = { sender: ui, senderFrame: mainFrame };
let runtime: Runtime;
let server: FastifyInstance;
let dataDir: string;
let credentials: ReturnType<typeof createCredentials>;
const disposers: Array<() => unknown> = [];

type Result = { ok: boolean; value?: Record<string, unknown>; error?: { code: string; message: string } };

beforeEach(async () => {
  dataDir = tempDir();
  runtime = await createRuntime({ dataDir, shell: 'electron', logger: createMemoryLogger(), voice: false });
  credentials = createCredentials({ dataDir, deviceToken: DEVICE_TOKEN, tenantForToken: () => undefined });
  server = await createHttpServer({ runtime, token: DEVICE_TOKEN, credentials, logger: createMemoryLogger() });
});
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
  await server.close();
  await runtime.close();
});

/** A window (kiosk or desktop) and its `tessera:invoke`. */
function window(kiosk: boolean) {
  const handlers = new Map<string, (...args: unknown[]) => unknown>();
  const registration = registerIpc({ handle: (c: string, f: never) => handlers.set(c, f), removeHandler: (c: string) => handlers.delete(c) } as never, {
    operations: createOperations(runtime),
    bus: runtime.bus,
    rendererIndexUrl,
    target: () => ui as never,
    access: createWindowAccess({ kiosk, credentials, deviceToken: DEVICE_TOKEN }),
    inject: async (request) => {
      const res = await server.inject(request);
      return { statusCode: res.statusCode, body: res.body };
    },
  });
  disposers.push(() => registration.dispose());
  return async (method: string, arg?: unknown) => (await handlers.get(IPC_INVOKE)!(fromUi, method, arg)) as Result;
}

const topUp = { method: 'POST', path: '/api/wallets/main/topup', body: { amount: 5000, currency: 'UAH', idempotency_key: 'ipc-1' } };

describe('IPC api: the HTTP routes with the window\'s credential', () => {
  it('lets a kiosk window do what a traveller may (read a wallet) and refuses an operator route (top up) as FORBIDDEN', async () => {
    const invoke = window(true);
    expect(await invoke('api', { method: 'GET', path: '/api/wallets/main' })).toEqual({ ok: true, value: { wallet_id: 'main', balances: [] } });
    expect((await invoke('api', topUp)).error?.code).toBe('FORBIDDEN');
    expect((await invoke('api', { method: 'GET', path: '/api/events' })).error?.code).toBe('FORBIDDEN');
    expect(runtime.ledger.balance('main', 'UAH')).toBe(0);
  });

  it('gives an unlocked kiosk and a desktop window the operator\'s routes', async () => {
    await setOperatorPin(dataDir, '2580');
    const kiosk = window(true);
    expect((await kiosk('unlock', { pin: '2580' })).ok).toBe(true);
    const done = await kiosk('api', topUp);
    expect(done).toEqual({ ok: true, value: expect.objectContaining({ wallet_id: 'main', balance: 5000, currency: 'UAH', replayed: false }) });
    const desktop = window(false);
    expect((await desktop('api', { method: 'GET', path: '/api/wallets/main' })).value).toEqual({ wallet_id: 'main', balances: [{ currency: 'UAH', amount: 5000 }] });
    expect((await kiosk('lock')).ok).toBe(true);
    expect((await kiosk('api', { ...topUp, body: { ...topUp.body, idempotency_key: 'ipc-2' } })).error?.code).toBe('FORBIDDEN');
  });

  it('refuses requests that are not one JSON request to /api or /v1, and answers route errors as data', async () => {
    const invoke = window(false);
    for (const bad of [undefined, {}, { method: 'DELETE', path: '/api/info' }, { method: 'GET', path: '/ws' }, { method: 'GET', path: '/healthz' }, { method: 'GET', path: 'api/info' }, { method: 'GET', path: '/api/info', extra: 1 }, { method: 'GET', path: `/api/${'x'.repeat(3000)}` }]) {
      expect((await invoke('api', bad)).error?.code, JSON.stringify(bad)?.slice(0, 60)).toBe('VALIDATION_FAILED');
    }
    expect((await invoke('api', { method: 'POST', path: '/api/wallets/main/topup', body: { amount: -1, currency: 'UAH', idempotency_key: 'k' } })).error?.code).toBe('VALIDATION_FAILED');
    expect((await invoke('api', { method: 'GET', path: '/api/no/such/route' })).error?.code).toBe('NOT_FOUND');
    expect((await invoke('api', { method: 'GET', path: '/api/info' })).ok).toBe(true);
  });
});
