/** Scenario routes (seed 001 §1, §7): run, status, cancel, list runs, the step journal of a run. */
import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../../common/errors.js';
import type { RunRequest } from '../../common/api.js';
import type { RunState } from '../../runtime/scenarios/engine.js';
import { LANGUAGES } from '../../runtime/intents/normalize.js';
import type { Language } from '../../runtime/intents/normalize.js';
import { debugRequestSchema, runIdRequestSchema, runRequestSchema, runsQuerySchema } from '../schemas.js';
import type { DebugRequest } from '../operations.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const runIdSchema = { type: 'string', minLength: 1, maxLength: 200 } as const;
const runRecord = {
  type: 'object',
  additionalProperties: true,
  required: ['run_id', 'scenario_id', 'state'],
  properties: {
    run_id: { type: 'string' },
    scenario_id: { type: 'string' },
    state: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'cancelled'] },
    priority: { type: 'string' },
    ctx: { type: 'object', additionalProperties: true },
    bag: { type: 'object', additionalProperties: true },
    error: { type: ['object', 'null'], additionalProperties: true },
    trace_id: { type: 'string' },
    parent_run_id: { type: ['string', 'null'] },
    dry_run: { type: 'boolean' },
    created_at: { type: 'string' },
    started_at: { type: ['string', 'null'] },
    finished_at: { type: ['string', 'null'] },
    steps: { type: 'array', items: { type: 'object', additionalProperties: true } },
  },
} as const;

export const scenarioRoutes: FastifyPluginAsync = async (app) => {
  const { runtime, operations } = app.tessera;

  app.get('/api/scenarios', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Registered scenarios.',
      tags: ['scenarios'],
      security: secured,
      response: { 200: { type: 'object', properties: { scenarios: { type: 'array', items: { type: 'object', additionalProperties: true } } } }, 401: errorRef },
    },
  }, async () => ({ scenarios: operations.listScenarios() }));

  app.post<{ Body: RunRequest }>('/api/scenario/run', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Start a scenario run; answers at once with its run id.',
      tags: ['scenarios'],
      security: secured,
      body: runRequestSchema,
      response: { 202: { type: 'object', required: ['run_id'], properties: { run_id: { type: 'string' } } }, 400: errorRef, 401: errorRef, 404: errorRef, 429: errorRef },
    },
  }, async (request, reply) => reply.code(202).send(operations.runScenario(request.body)));

  app.get<{ Querystring: { run_id: string } }>('/api/scenario/status', {
    config: { access: ['operator'] },
    schema: {
      summary: "A run's state, bag and step journal with timings, attempts and errors.",
      tags: ['scenarios'],
      security: secured,
      querystring: { type: 'object', required: ['run_id'], properties: { run_id: runIdSchema } },
      response: { 200: runRecord, 401: errorRef, 404: errorRef },
    },
  }, async (request) => operations.runStatus(request.query.run_id));

  app.post<{ Body: { run_id: string; reason?: string } }>('/api/scenario/cancel', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Cancel a queued or running run (cooperative: the current step observes the cancel token).',
      tags: ['scenarios'],
      security: secured,
      body: runIdRequestSchema,
      response: { 200: { type: 'object', required: ['cancelled'], properties: { cancelled: { type: 'boolean' } } }, 401: errorRef, 404: errorRef },
    },
  }, async (request) => {
    operations.runStatus(request.body.run_id); // 404 for an unknown run
    return { cancelled: runtime.scenarios.cancel(request.body.run_id, request.body.reason) };
  });

  app.post<{ Body: DebugRequest }>('/api/scenario/debug', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Debugger of a queued or running run: `continue` to the next breakpoint, `step` to stop before the next step, `set` the breakpoints (step names).',
      tags: ['scenarios'],
      security: secured,
      body: debugRequestSchema,
      response: { 200: { type: 'object', required: ['paused_at', 'breakpoints'], properties: { paused_at: { type: ['string', 'null'] }, breakpoints: { type: 'array', items: { type: 'string' } } } }, 400: errorRef, 401: errorRef, 404: errorRef },
    },
  }, async (request) => operations.debugRun(request.body));

  app.post<{ Body: { run_id: string } }>('/api/scenario/replay', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Replay a finished run: same ctx; effectful steps return their recorded outputs; see /api/scenario/diff.',
      tags: ['scenarios'],
      security: secured,
      body: { type: 'object', additionalProperties: false, required: ['run_id'], properties: { run_id: runIdSchema } },
      response: { 202: { type: 'object', required: ['run_id'], properties: { run_id: { type: 'string' } } }, 400: errorRef, 401: errorRef, 404: errorRef },
    },
  }, async (request, reply) => reply.code(202).send(operations.replayRun(request.body.run_id)));

  app.get<{ Querystring: { run_id: string } }>('/api/scenario/diff', {
    config: { access: ['operator'] },
    schema: {
      summary: "Where a replay's steps differ from the original run's: evaluated inputs, outputs, or steps present in only one.",
      tags: ['scenarios'],
      security: secured,
      querystring: { type: 'object', required: ['run_id'], properties: { run_id: runIdSchema } },
      response: { 200: { type: 'object', properties: { differences: { type: 'array', items: { type: 'object', additionalProperties: true } } } }, 400: errorRef, 401: errorRef, 404: errorRef },
    },
  }, async (request) => ({ differences: operations.replayDiff(request.query.run_id) }));

  app.get<{ Querystring: { scenario_id?: string; state?: RunState; limit?: number } }>('/api/scenario/runs', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Recent runs, newest first.',
      tags: ['scenarios'],
      security: secured,
      querystring: runsQuerySchema,
      response: { 200: { type: 'object', properties: { runs: { type: 'array', items: runRecord } } }, 401: errorRef },
    },
  }, async (request) => ({ runs: operations.listRuns(request.query) }));

  const automation = () => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
    return runtime.automation;
  };
  const ctxSchema = { type: 'object', additionalProperties: true } as const;

  app.get('/api/schedules', {
    config: { access: ['operator'] },
    schema: { summary: 'Schedules with their next fire time.', tags: ['automation'], security: secured, response: { 200: { type: 'object', properties: { schedules: { type: 'array', items: { type: 'object', additionalProperties: true } } } }, 401: errorRef } },
  }, async () => ({ schedules: automation().schedules() }));

  app.post<{ Body: { scenario_id: string; cron?: string; at?: string; tz?: string; ctx?: Record<string, unknown>; missed?: 'run_once' | 'skip' } }>('/api/schedules', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Create a schedule: `cron` (5 fields) or one-shot `at` (ISO-8601 with offset), in a time zone, with a missed-fire policy.',
      tags: ['automation'],
      security: secured,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['scenario_id'],
        properties: {
          scenario_id: { type: 'string', minLength: 1, maxLength: 64 },
          cron: { type: 'string', minLength: 9, maxLength: 200 },
          at: { type: 'string', minLength: 16, maxLength: 40 },
          tz: { type: 'string', minLength: 1, maxLength: 64 },
          ctx: ctxSchema,
          missed: { type: 'string', enum: ['run_once', 'skip'] },
        },
      },
      response: { 201: { type: 'object', additionalProperties: true }, 400: errorRef, 401: errorRef, 404: errorRef },
    },
  }, async (request, reply) => reply.code(201).send(automation().createSchedule(request.body)));

  app.delete<{ Params: { job_id: string } }>('/api/schedules/:job_id', {
    config: { access: ['operator'] },
    schema: { summary: 'Delete a schedule.', tags: ['automation'], security: secured, params: { type: 'object', properties: { job_id: { type: 'string', maxLength: 64 } } }, response: { 200: { type: 'object', properties: { deleted: { type: 'boolean' } } }, 401: errorRef, 404: errorRef } },
  }, async (request) => {
    if (!automation().deleteSchedule(request.params.job_id)) throw new TesseraError('NOT_FOUND', `No schedule ${request.params.job_id}.`);
    return { deleted: true };
  });

  app.get('/api/triggers', {
    config: { access: ['operator'] },
    schema: { summary: 'Bus triggers: topic pattern, condition, scenario, how often fired.', tags: ['automation'], security: secured, response: { 200: { type: 'object', properties: { triggers: { type: 'array', items: { type: 'object', additionalProperties: true } } } }, 401: errorRef } },
  }, async () => ({ triggers: automation().triggers() }));

  app.post<{ Body: { pattern: string; filter?: string; scenario_id: string; ctx?: Record<string, unknown>; rate?: { per_second: number; burst: number } } }>('/api/triggers', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Run a scenario for every event matching a topic pattern and an optional condition over `$` (the event), e.g. `$.payload.city == "Berlin"`. 400 TRIGGER_PATTERN_REFUSED for a pattern that matches only scenario.* or trigger.* events.',
      tags: ['automation'],
      security: secured,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['pattern', 'scenario_id'],
        properties: {
          pattern: { type: 'string', minLength: 1, maxLength: 200 },
          filter: { type: 'string', minLength: 1, maxLength: 2000 },
          scenario_id: { type: 'string', minLength: 1, maxLength: 64 },
          ctx: ctxSchema,
          rate: { type: 'object', additionalProperties: false, required: ['per_second', 'burst'], description: 'Runs it may start: per_second on average, burst at once (default 10 and 30).', properties: { per_second: { type: 'number', exclusiveMinimum: 0, maximum: 1000 }, burst: { type: 'integer', minimum: 1, maximum: 10000 } } },
        },
      },
      response: { 201: { type: 'object', additionalProperties: true }, 400: errorRef, 401: errorRef, 404: errorRef },
    },
  }, async (request, reply) => reply.code(201).send(automation().createTrigger(request.body)));

  app.delete<{ Params: { trigger_id: string } }>('/api/triggers/:trigger_id', {
    config: { access: ['operator'] },
    schema: { summary: 'Delete a trigger.', tags: ['automation'], security: secured, params: { type: 'object', properties: { trigger_id: { type: 'string', maxLength: 64 } } }, response: { 200: { type: 'object', properties: { deleted: { type: 'boolean' } } }, 401: errorRef, 404: errorRef } },
  }, async (request) => {
    if (!automation().deleteTrigger(request.params.trigger_id)) throw new TesseraError('NOT_FOUND', `No trigger ${request.params.trigger_id}.`);
    return { deleted: true };
  });

  app.post<{ Body: { text: string; ctx?: Record<string, unknown>; language?: Language; run?: boolean } }>('/api/intent/recognize', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Recognize an utterance with the intent rules: {intent, slots, score, rule, target}; `run: true` also starts the target scenario. Publishes nlp.intent.<intent>.',
      tags: ['intents'],
      security: secured,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['text'],
        properties: { text: { type: 'string', minLength: 1, maxLength: 1000 }, ctx: ctxSchema, language: { type: 'string', enum: [...LANGUAGES] }, run: { type: 'boolean' } },
      },
      response: { 200: { type: 'object', additionalProperties: true, required: ['intent'], properties: { intent: { type: ['string', 'null'] } } }, 400: errorRef, 401: errorRef, 404: errorRef },
    },
  }, async (request) => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
    const { text, ctx = {}, language, run } = request.body;
    const route = runtime.intents.router.route(text, { ...ctx, ...(language ? { language } : {}) });
    if (!route) return { intent: null, slots: {}, score: 0 };
    const target = route.target;
    if (run && !('scenario' in target)) throw new TesseraError('VALIDATION_FAILED', `Intent ${route.intent} routes to a handler, not a scenario.`);
    // The event and the run it starts commit together (the run's row goes with this transaction): on a full disk
    // the answer is both or an error with neither written (issue 13 point 8). Subscribers hear of it once committed.
    const { staged, runId } = runtime.store.db.transaction(() => {
      const events = runtime.bus.stageMany([{ topic: `nlp.intent.${route.intent}`, payload: { text, intent: route.intent, slots: route.slots, score: route.score } }]);
      const started = run && 'scenario' in target ? runtime.scenarios.run(target.scenario, { ...ctx, ...route.slots }, { trace_id: events.events[0]!.trace_id }) : undefined;
      runtime.scenarios.flush();
      return { staged: events, runId: started };
    })();
    staged.deliver();
    const body: Record<string, unknown> = { intent: route.intent, slots: route.slots, score: route.score, target, rule: route.recognition.rule, language: route.recognition.language, event_id: staged.events[0]!.id };
    if (runId !== undefined) body['run_id'] = runId;
    return body;
  });
};
