/**
 * The IPC half of the client interface. Every message is checked twice: the sender must be the Tessera UI
 * frame — the main frame showing `app://tessera/index.html` (Electron checklist: validate IPC senders; a
 * `file://` page or any other origin is refused) — and the arguments must pass the same JSON schemas as the HTTP
 * routes. Results and errors cross as plain data (errors via toErrorData).
 */
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import type { IpcMain, IpcMainInvokeEvent, WebContents } from 'electron';
import type { DeviceInfo, TesseraEvent } from '../common/api.js';
import { TesseraError, toErrorData } from '../common/errors.js';
import type { ErrorData } from '../common/errors.js';
import { compilePattern } from '../common/topics.js';
import { ALL_ROLES, assertWatchable, infoFor } from '../common/roles.js';
import type { Role, SessionView } from '../common/roles.js';
import type { Credentials } from '../host/credentials.js';
import { JSON_MAX_DEPTH, valueDepthExceeds } from '../common/json-text.js';
import type { Operations } from '../host/operations.js';
import { debugRequestSchema, eventQuerySchema, pluginLoadRequestSchema, pluginTestRequestSchema, publishInputSchema, runIdRequestSchema, runRequestSchema, runsQuerySchema, subscribeMessageSchema } from '../host/schemas.js';
import type { Bus } from '../runtime/bus/index.js';
import type { Disposable } from '../runtime/lifecycle/index.js';
import { isAppUrl } from './security.js';
import type { IoRouter } from '../runtime/io/index.js';
import { IO_METHODS, createIoIpc } from './ipc-io.js';

export const IPC_INVOKE = 'tessera:invoke';
export const IPC_SUBSCRIBE = 'tessera:subscribe';
export const IPC_EVENT = 'tessera:event';

export type IpcResult = { ok: true; value: unknown } | { ok: false; error: ErrorData };

/**
 * `api {method, path, body?}`: one request to the runtime's own HTTP routes, carried over IPC (issue 14's routes
 * are reached this way: main/common/products-api.ts). Only `/api/` and `/v1/` paths; no WebSockets.
 */
export const apiRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['method', 'path'],
  properties: {
    method: { type: 'string', enum: ['GET', 'POST'] },
    path: { type: 'string', minLength: 5, maxLength: 2048, pattern: '^/(api|v1)/[^\\s#]*$' },
    body: {},
  },
} as const;

/** Sends one request into the HTTP routes in process (Fastify `inject`): what `api` calls. */
export type InjectRequest = (request: { method: 'GET' | 'POST'; url: string; headers: Record<string, string>; payload?: string }) => Promise<{ statusCode: number; body: string }>;

const ajv = new Ajv({ allErrors: false, useDefaults: true, coerceTypes: false });
const validators = {
  queryEvents: ajv.compile(eventQuerySchema),
  publishEvent: ajv.compile(publishInputSchema),
  subscribe: ajv.compile(subscribeMessageSchema),
  testPlugin: ajv.compile(pluginTestRequestSchema),
  loadPlugin: ajv.compile(pluginLoadRequestSchema),
  runScenario: ajv.compile(runRequestSchema),
  runId: ajv.compile(runIdRequestSchema),
  debugRun: ajv.compile(debugRequestSchema),
  listRuns: ajv.compile(runsQuerySchema),
  unlock: ajv.compile({ type: 'object', additionalProperties: false, required: ['pin'], properties: { pin: { type: 'string', minLength: 1, maxLength: 64 } } }),
  api: ajv.compile(apiRequestSchema),
};

/** Throws VALIDATION_FAILED with Ajv's description unless `value` matches. */
function check(validate: ValidateFunction, value: unknown): void {
  // The depth rule of every JSON body (main/common/json-text.ts), before anything recurses into the value.
  if (valueDepthExceeds(value)) throw new TesseraError('VALIDATION_FAILED', `The argument nests deeper than ${JSON_MAX_DEPTH} levels; flatten it.`);
  if (!validate(value)) throw new TesseraError('VALIDATION_FAILED', ajv.errorsText(validate.errors));
}

export function validateSender(event: IpcMainInvokeEvent, rendererIndexUrl: string): void {
  const url = event.senderFrame?.url;
  if (!url || !isAppUrl(url, rendererIndexUrl) || event.senderFrame !== event.sender.mainFrame) {
    throw new TesseraError('IPC_SENDER_REJECTED', `IPC from ${url ?? 'an unknown frame'} refused.`);
  }
}

/**
 * Who may call each IPC method: the roles of the HTTP route that does the same (main/host/http/*.ts). A method
 * not listed here is refused, whatever the window holds.
 */
export const IPC_ACCESS: Readonly<Record<string, readonly Role[]>> = {
  // Any role may send; the route the request reaches decides (its `config.access`, main/host/http/access.ts), with
  // the window's own credential, exactly as over HTTP.
  api: ALL_ROLES,
  info: ALL_ROLES,
  session: ALL_ROLES,
  unlock: ALL_ROLES,
  lock: ALL_ROLES,
  device: ALL_ROLES,
  ioStatus: ['traveller', 'operator'],
  ioSession: ['traveller', 'operator'],
  ioInput: ['traveller', 'operator'],
  ioTalk: ['traveller', 'operator'],
  listPlugins: ['author', 'operator'],
  testPlugin: ['author'],
  loadPlugin: ['author'],
  pluginFailures: ['author'],
  queryEvents: ['operator'],
  publishEvent: ['operator'],
  listScenarios: ['operator'],
  runScenario: ['operator'],
  listRuns: ['operator'],
  runStatus: ['operator'],
  cancelRun: ['operator'],
  debugRun: ['operator'],
  replayRun: ['operator'],
  replayDiff: ['operator'],
  /** The same roles as `POST /api/links`. */
};

/**
 * What the window may do. The desktop window is the device owner's and holds every role; a window opened with
 * `--kiosk` holds the traveller's until an operator unlocks it with the PIN (the same PIN, lockout and 15 minutes
 * as `POST /api/auth/unlock`).
 */
export interface WindowAccess {
  roles(): readonly Role[];
  /** The credential the window's requests carry into the HTTP routes (`api`): its roles, no more. */
  token(): string | undefined;
  session(): SessionView;
  unlock(pin: string): Promise<{ token: string; roles: Role[]; expires_at: string }>;
  lock(): void;
}

export function createWindowAccess(options: { kiosk: boolean; credentials?: Credentials; deviceToken?: string; now?: () => number }): WindowAccess {
  const now = options.now ?? Date.now;
  let unlocked: { token: string; expiresAt: number } | undefined;
  const active = () => {
    if (unlocked && unlocked.expiresAt <= now()) {
      options.credentials?.lock(unlocked.token);
      unlocked = undefined;
    }
    return unlocked;
  };
  const base: readonly Role[] = options.kiosk ? ['traveller'] : ALL_ROLES;
  return {
    roles: () => (active() ? ALL_ROLES : base),
    token() {
      const session = active();
      if (session) return session.token;
      return options.kiosk ? options.credentials?.roleToken('traveller') : options.deviceToken;
    },
    session() {
      const session = active();
      if (session) return { kind: 'unlocked', roles: [...ALL_ROLES], expires_at: new Date(session.expiresAt).toISOString(), pin_set: true };
      return { kind: options.kiosk ? 'role' : 'device', roles: [...base], pin_set: options.credentials?.pinSet() ?? false };
    },
    async unlock(pin) {
      if (!options.credentials) throw new TesseraError('PIN_NOT_SET', 'This window has no operator unlock.');
      const session = await options.credentials.unlock(pin);
      unlocked = { token: session.token, expiresAt: Date.parse(session.expires_at) };
      return session;
    },
    lock() {
      if (unlocked) options.credentials?.lock(unlocked.token);
      unlocked = undefined;
    },
  };
}

/** `api`: the request goes through the HTTP routes with the window's credential; their answer comes back as data. */
async function viaRoutes(inject: InjectRequest | undefined, access: WindowAccess, arg: unknown): Promise<IpcResult> {
  try {
    check(validators.api, arg);
    const token = access.token();
    if (!inject || !token) throw new TesseraError('NOT_READY', 'This window cannot reach the runtime\'s routes.');
    const { method, path, body } = arg as { method: 'GET' | 'POST'; path: string; body?: unknown };
    const res = await inject({ method, url: path, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
    let data: unknown;
    try {
      data = JSON.parse(res.body);
    } catch {
      throw new TesseraError('INTERNAL', `The route answered ${res.statusCode} with a body that is not JSON.`);
    }
    if (res.statusCode >= 400) return { ok: false, error: (data as { error: ErrorData }).error };
    return { ok: true, value: data };
  } catch (err) {
    return { ok: false, error: toErrorData(err) };
  }
}

/** Handle one `tessera:invoke` call; never rejects (the renderer gets `{ok:false,error}`). */
export async function handleInvoke(operations: Operations, method: unknown, arg: unknown): Promise<IpcResult> {
  try {
    switch (method) {
      case 'info':
        return { ok: true, value: operations.info() };
      case 'queryEvents': {
        const query = structuredClone(arg ?? {});
        check(validators.queryEvents, query);
        return { ok: true, value: operations.queryEvents(query as Parameters<Operations['queryEvents']>[0]) };
      }
      case 'publishEvent':
        check(validators.publishEvent, arg);
        return { ok: true, value: operations.publishEvent(arg as Parameters<Operations['publishEvent']>[0]) };
      case 'listPlugins':
        return { ok: true, value: operations.listPlugins() };
      case 'listScenarios':
        return { ok: true, value: operations.listScenarios() };
      case 'runScenario':
        check(validators.runScenario, arg);
        return { ok: true, value: operations.runScenario(arg as Parameters<Operations['runScenario']>[0]) };
      case 'listRuns': {
        const query = structuredClone(arg ?? {});
        check(validators.listRuns, query);
        return { ok: true, value: operations.listRuns(query as Parameters<Operations['listRuns']>[0]) };
      }
      case 'runStatus':
      case 'cancelRun':
      case 'replayRun':
      case 'replayDiff':
        check(validators.runId, arg);
        return { ok: true, value: operations[method]((arg as { run_id: string }).run_id) };
      case 'debugRun':
        check(validators.debugRun, arg);
        return { ok: true, value: operations.debugRun(arg as Parameters<Operations['debugRun']>[0]) };
      case 'testPlugin':
        check(validators.testPlugin, arg);
        return { ok: true, value: await operations.testPlugin(arg as Parameters<Operations['testPlugin']>[0]) };
      case 'loadPlugin':
        check(validators.loadPlugin, arg);
        return { ok: true, value: await operations.loadPlugin(arg as Parameters<Operations['loadPlugin']>[0]) };
      case 'pluginFailures':
        return { ok: true, value: operations.pluginFailures() };
      default:
        throw new TesseraError('NOT_FOUND', `No IPC method ${JSON.stringify(method)}.`);
    }
  } catch (err) {
    return { ok: false, error: toErrorData(err) };
  }
}

/**
 * Register the handlers. Live events go to the one UI WebContents for the patterns it asked for last.
 * Returns a Disposable that removes the handlers and the bus subscription.
 */
export function registerIpc(
  ipcMain: IpcMain,
  deps: { operations: Operations; bus: Bus; rendererIndexUrl: string; target: () => WebContents | undefined; io?: IoRouter; device?: DeviceInfo; access?: WindowAccess; inject?: InjectRequest },
): Disposable {
  const access = deps.access ?? createWindowAccess({ kiosk: false });
  let matchers: Array<(topic: string) => boolean> = [];
  // The Journey Guide's I/O (./ipc-io.ts), when the runtime has an I/O router.
  const io = deps.io ? createIoIpc(deps.io) : undefined;
  ipcMain.handle(IPC_INVOKE, (event, method: unknown, arg: unknown): IpcResult | Promise<IpcResult> => {
    try {
      validateSender(event, deps.rendererIndexUrl);
    } catch (err) {
      return { ok: false, error: toErrorData(err) } satisfies IpcResult;
    }
    // A method without an entry in the access table does not exist, for any window.
    if (typeof method !== 'string' || !Object.hasOwn(IPC_ACCESS, method)) return { ok: false, error: toErrorData(new TesseraError('NOT_FOUND', `No IPC method ${JSON.stringify(method)}.`)) };
    const allowed = IPC_ACCESS[method]!;
    const roles = access.roles();
    if (!roles.some((r) => allowed.includes(r))) {
      return { ok: false, error: toErrorData(new TesseraError('FORBIDDEN', `${method} needs the ${allowed.join(' or ')} role; this window holds ${roles.join(', ')}.`)) };
    }
    if (method === 'session') return { ok: true, value: access.session() };
    if (method === 'lock') {
      access.lock();
      return { ok: true, value: { locked: true } };
    }
    if (method === 'unlock') {
      if (!validators.unlock(arg)) return { ok: false, error: toErrorData(new TesseraError('VALIDATION_FAILED', ajv.errorsText(validators.unlock.errors))) };
      return access.unlock((arg as { pin: string }).pin).then((value) => ({ ok: true as const, value }), (err: unknown) => ({ ok: false as const, error: toErrorData(err) }));
    }
    if (method === 'info') return { ok: true, value: infoFor(deps.operations.info(), roles) };
    if (method === 'api') return viaRoutes(deps.inject, access, arg);
    if (io && (IO_METHODS as readonly unknown[]).includes(method)) return io.invoke(method as (typeof IO_METHODS)[number], arg);
    // This device's key id (GET /api/device): fixed for the runtime's life, so handed over as it was given.
    if (method === 'device' && deps.device) return { ok: true, value: { ...deps.device } };
    return handleInvoke(deps.operations, method, arg);
  });
  ipcMain.handle(IPC_SUBSCRIBE, (event, message: unknown): IpcResult => {
    try {
      validateSender(event, deps.rendererIndexUrl);
      check(validators.subscribe, message);
      const patterns = (message as { patterns: string[] }).patterns;
      for (const p of patterns) assertWatchable(p, access.roles());
      matchers = patterns.map(compilePattern);
      io?.setUiPresent(matchers.some((m) => m('io.delivered')));
      return { ok: true, value: { patterns } };
    } catch (err) {
      return { ok: false, error: toErrorData(err) };
    }
  });
  const subscription = deps.bus.subscribe('**', (event: TesseraEvent) => {
    if (!matchers.some((m) => m(event.topic))) return;
    const contents = deps.target();
    if (contents && !contents.isDestroyed()) contents.send(IPC_EVENT, event);
  }, { name: 'electron-ipc' });
  return {
    dispose() {
      ipcMain.removeHandler(IPC_INVOKE);
      ipcMain.removeHandler(IPC_SUBSCRIBE);
      void io?.dispose();
      return subscription.dispose();
    },
  };
}
