/**
 * Event routes: query and publish over HTTP, live stream over WebSocket.
 *
 * WebSocket protocol on `/ws` (JSON text frames):
 *   client → `{"type":"subscribe","patterns":["ops.**"]}`  replaces the connection's patterns
 *   client → `{"type":"ping"}`                               server answers `{"type":"pong"}`
 *   server → `{"type":"hello","version":"…"}` on connect
 *   server → `{"type":"subscribed","patterns":[…]}`, `{"type":"event","event":{…}}`,
 *            `{"type":"error","error":{"code","message"}}`
 * Patterns may also be given at connect time: `/ws?topics=a.*,b.**`.
 * A client that stops reading (over 4 MiB buffered) is disconnected with close code 1013.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { WebSocket } from 'ws';
import Ajv from 'ajv';
import type { EventQuery, PublishInput, TesseraEvent } from '../../common/api.js';
import { TesseraError, toErrorData } from '../../common/errors.js';
import { compilePattern } from '../../common/topics.js';
import { eventPageSchema, eventQuerySchema, eventSchema, publishInputSchema, subscribeMessageSchema } from '../schemas.js';
import { ANY_ROLE } from './access.js';
import { assertWatchable } from '../../common/roles.js';
import { jsonSender, parseJsonFrame } from './ws-send.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];

const ajv = new Ajv({ allErrors: false });
const validateSubscribe = ajv.compile(subscribeMessageSchema);

export const eventRoutes: FastifyPluginAsync = async (app) => {
  const { runtime, operations } = app.tessera;

  app.get<{ Querystring: EventQuery }>('/api/events', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Query the event journal by topic prefix or pattern, time range and trace id.',
      tags: ['events'],
      security: secured,
      querystring: eventQuerySchema,
      response: { 200: eventPageSchema, 400: errorRef, 401: errorRef, 503: errorRef },
    },
  }, async (request) => operations.queryEvents(request.query));

  app.post<{ Body: PublishInput }>('/api/events', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Publish an event on the bus; it is journaled before delivery.',
      tags: ['events'],
      security: secured,
      body: publishInputSchema,
      response: { 201: eventSchema, 400: errorRef, 401: errorRef, 413: errorRef, 415: errorRef, 503: errorRef },
    },
  }, async (request, reply) => {
    const event = operations.publishEvent(request.body);
    return reply.code(201).send(event);
  });

  app.get<{ Querystring: { topics?: string } }>('/ws', {
    config: { access: ANY_ROLE },
    websocket: true,
    schema: {
      summary: 'Live event stream (WebSocket). See main/host/http/events.ts for the message protocol.',
      tags: ['events'],
      security: secured,
      querystring: { type: 'object', properties: { topics: { type: 'string', maxLength: 4096, description: 'Comma-separated topic patterns to subscribe at connect.' } } },
    },
  }, (socket: WebSocket, request) => {
    const log = runtime.logger.child({ ws: request.id });
    let matchers: Array<(topic: string) => boolean> = [];
    let patterns: string[] = [];
    const send = jsonSender(socket, log, 'a WebSocket client');
    const roles = request.principal?.roles ?? [];
    const setPatterns = (next: string[]) => {
      for (const p of next) assertWatchable(p, roles);
      patterns = [...new Set(next)];
      matchers = patterns.map(compilePattern);
      send({ type: 'subscribed', patterns });
    };

    const subscription = runtime.bus.subscribe('**', (event: TesseraEvent) => {
      if (matchers.some((m) => m(event.topic))) send({ type: 'event', event });
    }, { name: `ws:${request.id}` });
    // @fastify/websocket closes every client when the server closes (its default preClose), which ends this.
    socket.on('close', () => void subscription.dispose());

    send({ type: 'hello', version: runtime.info.version });
    try {
      if (request.query.topics) setPatterns(request.query.topics.split(',').map((s) => s.trim()).filter(Boolean));
    } catch (err) {
      send({ type: 'error', error: toErrorData(err) });
    }

    socket.on('message', (data, isBinary) => {
      try {
        if (isBinary) throw new TesseraError('VALIDATION_FAILED', 'Send JSON text frames.');
        const message = parseJsonFrame(data);
        if (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'ping') {
          send({ type: 'pong' });
          return;
        }
        if (!validateSubscribe(message)) {
          throw new TesseraError('VALIDATION_FAILED', `Expected {"type":"subscribe","patterns":[…]} or {"type":"ping"}: ${ajv.errorsText(validateSubscribe.errors)}`);
        }
        setPatterns([...(message as { patterns: string[] }).patterns]);
      } catch (err) {
        send({ type: 'error', error: toErrorData(err) });
      }
    });
  });
};
