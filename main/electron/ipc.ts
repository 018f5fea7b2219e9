/**
 * The IPC half of the client interface. Every message is checked twice: the sender must be the Tessera UI
 * frame (Electron checklist: validate IPC senders), and the arguments must pass the same JSON schemas as
 * the HTTP routes. Results and errors cross as plain data (errors via toErrorData).
 */
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import type { IpcMain, IpcMainInvokeEvent, WebContents } from 'electron';
import type { TesseraEvent } from '../common/api.js';
import { TesseraError, toErrorData } from '../common/errors.js';
import type { ErrorData } from '../common/errors.js';
import { compilePattern, patternProblem } from '../common/topics.js';
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
};

/** Throws VALIDATION_FAILED with Ajv's description unless `value` matches. */
function check(validate: ValidateFunction, value: unknown): void {
  if (!validate(value)) throw new TesseraError('VALIDATION_FAILED', ajv.errorsText(validate.errors));
}

export function validateSender(event: IpcMainInvokeEvent, rendererIndexUrl: string): void {
  const url = event.senderFrame?.url;
  if (!url || !isAppUrl(url, rendererIndexUrl) || event.senderFrame !== event.sender.mainFrame) {
    throw new TesseraError('IPC_SENDER_REJECTED', `IPC from ${url ?? 'an unknown frame'} refused.`);
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
export function registerIpc(ipcMain: IpcMain, deps: { operations: Operations; bus: Bus; rendererIndexUrl: string; target: () => WebContents | undefined; io?: IoRouter }): Disposable {
  let matchers: Array<(topic: string) => boolean> = [];
  // The Journey Guide's I/O (./ipc-io.ts), when the runtime has an I/O router.
  const io = deps.io ? createIoIpc(deps.io) : undefined;
  ipcMain.handle(IPC_INVOKE, (event, method: unknown, arg: unknown): IpcResult | Promise<IpcResult> => {
    try {
      validateSender(event, deps.rendererIndexUrl);
    } catch (err) {
      return { ok: false, error: toErrorData(err) } satisfies IpcResult;
    }
    if (io && (IO_METHODS as readonly unknown[]).includes(method)) return io.invoke(method as (typeof IO_METHODS)[number], arg);
    return handleInvoke(deps.operations, method, arg);
  });
  ipcMain.handle(IPC_SUBSCRIBE, (event, message: unknown): IpcResult => {
    try {
      validateSender(event, deps.rendererIndexUrl);
      check(validators.subscribe, message);
      const patterns = (message as { patterns: string[] }).patterns;
      for (const p of patterns) {
        const problem = patternProblem(p);
        if (problem) throw new TesseraError('TOPIC_INVALID', problem);
      }
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
