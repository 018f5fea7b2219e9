/**
 * The client API implemented once, over the runtime. The HTTP routes and the Electron IPC bridge are thin
 * adapters around these functions; inputs reaching here have passed the schemas in ./schemas.ts.
 */
import type { EventPage, EventQuery, PluginInfo, PluginRunResult, PluginTestRequest, PublishInput, RuntimeInfo, TesseraEvent } from '../common/api.js';
import { TesseraError } from '../common/errors.js';
import type { Runtime } from '../runtime/index.js';

export interface Operations {
  info(): RuntimeInfo;
  queryEvents(query: EventQuery): EventPage;
  publishEvent(input: PublishInput): TesseraEvent;
  listPlugins(): PluginInfo[];
  testPlugin(request: PluginTestRequest): Promise<PluginRunResult>;
}

export function createOperations(runtime: Runtime): Operations {
  const requireRunning = () => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
  };
  return {
    info: () => runtime.info,
    queryEvents(query) {
      requireRunning();
      return runtime.journal.query(query);
    },
    publishEvent(input) {
      requireRunning();
      return runtime.bus.publish(input.topic, input.payload, input.trace_id === undefined ? {} : { trace_id: input.trace_id });
    },
    listPlugins() {
      requireRunning();
      return runtime.plugins.list();
    },
    async testPlugin(request) {
      requireRunning();
      if ((request.plugin === undefined) === (request.dir === undefined)) {
        throw new TesseraError('VALIDATION_FAILED', 'Give exactly one of "plugin" (a loaded plugin) or "dir" (a plugin folder on this device).');
      }
      const ref = request.dir !== undefined ? (await runtime.plugins.load(request.dir)).key : request.plugin!;
      return runtime.plugins.run(ref, request.input, request.now === undefined ? {} : { now: request.now });
    },
  };
}
