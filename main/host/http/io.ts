/**
 * I/O routes (seed 001 §3, issue 6 points 1, 6, 7; issue 13 point 14): the router's status (channels, voice with
 * the reasons it is off, locks, open questions, sessions), dialogue sessions (one per traveller), text input,
 * direct sends, the `inbox.local` list and acknowledgement, and the WebSocket `/ws/io` over which the Journey
 * Guide joins the `ui` channel for its session and streams push-to-talk audio.
 *
 * `/ws/io` protocol (JSON text frames, audio as binary frames):
 *   server → `{"type":"hello","voice_enabled","voice_disabled_reason","session","idle_reset_ms"}` on connect (the
 *            socket is now a `ui` client; `?session=ID` joins that session at once)
 *   client → `{"type":"join","session":ID}` shows that session's dialogue (send it again after a reconnect);
 *            server → `{"type":"joined","session":ID}`, or `{"type":"session.ended","session","reason"}` when it is
 *            not open (start a new one with POST /api/io/session)
 *   server → `{"type":"say","message":{id,run_id,text,session?}}`, `{"type":"ask","question":{run_id,step,prompt,
 *            session?}}` — of the joined session, or of no session; `{"type":"session.ended","session","reason"}`
 *            when the joined session ends (the next traveller, or the idle reset)
 *   client → `{"type":"audio.start","sample_rate":16000,"run_id"?,"step"?}` (heard as the joined session's) then
 *            binary frames of little-endian
 *            16-bit mono PCM (even length, ≤ 32 KiB each, ≤ 30 s in all), then `{"type":"audio.end"}`
 *            (or `{"type":"audio.cancel"}`)
 *   server → `{"type":"heard","outcome":"speech"|"no_speech","text","result"?}` after `audio.end`
 *   server → `{"type":"error","error":{"code","message"}}` for a bad message (the connection stays open);
 *            MIC_BUSY when another stream holds the microphone (one stream at a time)
 *   client → `{"type":"ping"}` → `{"type":"pong"}`
 */
import Ajv from 'ajv';
import type { FastifyPluginAsync } from 'fastify';
import type { WebSocket } from 'ws';
import { TesseraError, toErrorData } from '../../common/errors.js';
import { MAX_CHUNK_BYTES, MAX_IO_TEXT, SESSION_ID_PATTERN, createPushRecorder } from '../../runtime/io/index.js';
import type { PushRecorder } from '../../runtime/io/index.js';
import { parseJsonFrame } from './ws-send.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const tags = ['io'];

const channelStatus = { type: 'object', required: ['available'], properties: { available: { type: 'boolean' }, reason: { type: 'string' } } } as const;
const message = {
  type: 'object',
  required: ['id', 'key', 'text', 'state', 'delivered_to', 'reasons', 'created_at'],
  properties: {
    id: { type: 'integer' },
    key: { type: 'string' },
    run_id: { type: ['string', 'null'] },
    requested: { type: ['array', 'null'], items: { type: 'string' } },
    session: { type: ['string', 'null'], description: 'The dialogue session it is for; null: everyone.' },
    text: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'delivered', 'inboxed'] },
    delivered_to: { type: 'array', items: { type: 'string' } },
    reasons: { type: 'object', additionalProperties: { type: 'string' } },
    trace_id: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    finished_at: { type: ['string', 'null'] },
    acked_at: { type: ['string', 'null'] },
  },
} as const;
const lockState = {
  type: 'object',
  required: ['holders', 'waiters'],
  properties: {
    holders: { type: 'array', items: { type: 'object', properties: { resource: { type: 'string' }, owner: { type: 'string' }, count: { type: 'integer' }, since: { type: 'number' } } } },
    waiters: { type: 'array', items: { type: 'object', properties: { resources: { type: 'array', items: { type: 'string' } }, owner: { type: 'string' }, priority: { type: 'string' }, since: { type: 'number' } } } },
  },
} as const;
const question = { type: 'object', properties: { run_id: { type: 'string' }, step: { type: 'string' }, session: { type: ['string', 'null'] }, prompt: { type: 'string' }, asked_at: { type: 'string' }, trace_id: { type: ['string', 'null'] }, expects: { type: ['string', 'null'], description: 'What answer the question expects (name, city, place, yes_no, number, free_text), or null.' } } } as const;
const statusSchema = {
  type: 'object',
  required: ['defaults', 'out', 'in', 'voice_enabled', 'voice_disabled_reason', 'ui_clients', 'inbox_unread', 'questions', 'locks', 'sessions'],
  properties: {
    defaults: { type: 'object', properties: { in: { type: 'array', items: { type: 'string' } }, out: { type: 'array', items: { type: 'string' } } } },
    out: { type: 'object', additionalProperties: channelStatus },
    in: { type: 'object', additionalProperties: channelStatus },
    voice: { type: ['object', 'null'], additionalProperties: { type: 'object', properties: { available: { type: 'boolean' }, engine: { type: 'string' }, reason: { type: 'string' }, fix: { type: 'string' } } } },
    voice_enabled: { type: 'boolean' },
    voice_disabled_reason: { type: ['string', 'null'] },
    ui_clients: { type: 'integer' },
    inbox_unread: { type: 'integer' },
    questions: { type: 'array', items: question },
    locks: lockState,
    sessions: { type: 'object', required: ['open', 'idle_reset_ms'], properties: { open: { type: 'integer' }, idle_reset_ms: { type: 'integer' } } },
  },
} as const;
const runIdSchema = { type: 'string', minLength: 1, maxLength: 200 } as const;
const stepSchema = { type: 'string', minLength: 1, maxLength: 300 } as const;
const sessionSchema = { type: 'string', pattern: SESSION_ID_PATTERN.source, description: 'A dialogue session id (POST /api/io/session).' } as const;
/** `POST /api/io/input` (also the Electron IPC `ioInput` argument). */
export const ioInputSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['text'],
  properties: { text: { type: 'string', minLength: 1, maxLength: MAX_IO_TEXT }, run_id: runIdSchema, step: stepSchema, session: sessionSchema },
} as const;
/** `POST /api/io/session` (also the Electron IPC `ioSession` argument). */
export const ioSessionSchema = { type: 'object', additionalProperties: false, properties: { end: sessionSchema } } as const;
const sessionView = {
  type: 'object',
  required: ['id', 'started_at'],
  properties: { id: { type: 'string' }, started_at: { type: 'string' }, last_input_at: { type: ['string', 'null'] }, ended_at: { type: ['string', 'null'] }, end_reason: { type: ['string', 'null'] } },
} as const;
const outcomeSchema = {
  type: 'object',
  required: ['kind', 'text', 'channel'],
  properties: {
    kind: { type: 'string', enum: ['answer', 'intent', 'agent', 'unrecognized'] },
    text: { type: 'string' },
    channel: { type: 'string' },
    run_id: { type: ['string', 'null'] },
    step: { type: ['string', 'null'] },
    intent: { type: 'string' },
    slots: { type: 'object', additionalProperties: true },
    error: { type: 'object', description: 'An understood utterance whose scenario could not start: why (the speaker got a plain answer).', properties: { code: { type: 'string' }, message: { type: 'string' } }, additionalProperties: true },
    session: { type: 'string' },
    question_left_open: { type: 'object', description: "A clear request made while the session's question waited: the question stays open.", properties: { run_id: { type: 'string' }, step: { type: 'string' } } },
    agent_session: { type: 'string', description: '`agent`: the journey guide agent session that answered (no intent matched).' },
    turn: { type: 'string', description: "`agent`: the agent's turn (GET /api/agents/sessions/{agent_session}/transcript)." },
  },
} as const;
const channelName = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_.-]*$' } as const;

const ajv = new Ajv({ allErrors: false });
const validateControl = ajv.compile({
  oneOf: [
    { type: 'object', additionalProperties: false, required: ['type', 'session'], properties: { type: { const: 'join' }, session: sessionSchema } },
    {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'sample_rate'],
      properties: { type: { const: 'audio.start' }, sample_rate: { type: 'integer', minimum: 8000, maximum: 48000 }, run_id: runIdSchema, step: stepSchema },
    },
    { type: 'object', additionalProperties: false, required: ['type'], properties: { type: { enum: ['audio.end', 'audio.cancel', 'ping'] } } },
  ],
});
type Control = { type: 'join'; session: string } | { type: 'audio.start'; sample_rate: number; run_id?: string; step?: string } | { type: 'audio.end' | 'audio.cancel' | 'ping' };

/** Only one push-to-talk stream at a time per runtime: the microphone is one resource. */
const activeStreams = new WeakMap<object, string>();

export const ioRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;
  const io = () => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
    return runtime.io;
  };

  app.get('/api/io/status', {
    config: { access: ['traveller', 'operator'] },
    schema: { summary: 'I/O channels and whether each works, voice parts with the reasons they are off, lock holders and waiters, open questions.', tags, security: secured, response: { 200: statusSchema, 401: errorRef, 503: errorRef } },
  }, async () => io().status());

  app.post<{ Body: { end?: string } }>('/api/io/session', {
    config: { access: ['traveller', 'operator'] },
    schema: {
      summary: "Start a traveller's dialogue session (the Journey Guide's \"new traveller\"); with end, end that one first: its questions expire and its later messages go to inbox.local.",
      tags,
      security: secured,
      body: ioSessionSchema,
      response: { 200: { type: 'object', required: ['session', 'ended'], properties: { session: sessionView, ended: { type: ['object', 'null'], properties: { id: { type: 'string' }, reason: { type: 'string' } } } } }, 400: errorRef, 401: errorRef, 503: errorRef },
    },
  }, async (request) => io().startSession(request.body ?? {}));

  app.post<{ Body: { text: string; run_id?: string; step?: string; session?: string } }>('/api/io/input', {
    config: { access: ['traveller', 'operator'] },
    schema: {
      summary: "Text input: with run_id and step it answers that question; without, it answers the oldest open question of its session (a clear request starts its intent instead), or starts the scenario its intent routes to.",
      tags,
      security: secured,
      body: ioInputSchema,
      response: { 200: outcomeSchema, 400: errorRef, 401: errorRef, 404: errorRef, 409: errorRef, 429: errorRef, 503: errorRef },
    },
  }, async (request) => {
    const { text, run_id, step, session } = request.body;
    const outcome = await io().input(text, { ...(run_id !== undefined ? { run_id } : {}), ...(step !== undefined ? { step } : {}), ...(session !== undefined ? { session } : {}), channel: 'text' });
    runtime.scenarios.flush(); // a run the intent started is durable before we acknowledge it
    return outcome;
  });

  app.post<{ Body: { text: string; channel?: string | string[] } }>('/api/io/send', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Send a message (io.router.send): delivered on the channel(s) given, or the defaults; inboxed when none can take it.',
      tags,
      security: secured,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['text'],
        properties: { text: { type: 'string', minLength: 1, maxLength: MAX_IO_TEXT }, channel: { anyOf: [channelName, { type: 'array', minItems: 1, maxItems: 8, items: channelName }] } },
      },
      response: { 200: message, 400: errorRef, 401: errorRef, 503: errorRef },
    },
  }, async (request) => io().send(request.body.channel ?? null, request.body.text));

  app.get<{ Querystring: { include_acked?: boolean; limit?: number; after?: number } }>('/api/io/inbox', {
    config: { access: ['operator'] },
    schema: {
      summary: 'inbox.local: messages no channel could deliver, oldest first (acknowledged ones with include_acked=true).',
      tags,
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { include_acked: { type: 'boolean' }, limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: { type: 'integer', minimum: 0 } } },
      response: { 200: { type: 'object', required: ['messages'], properties: { messages: { type: 'array', items: message } } }, 400: errorRef, 401: errorRef, 503: errorRef },
    },
  }, async (request) => ({ messages: io().inbox(request.query) }));

  app.post<{ Body: { ids: number[] } }>('/api/io/inbox/ack', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Acknowledge inboxed messages; answers the ids acknowledged now (already acknowledged or unknown ids are left out).',
      tags,
      security: secured,
      body: { type: 'object', additionalProperties: false, required: ['ids'], properties: { ids: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'integer', minimum: 1 } } } },
      response: { 200: { type: 'object', required: ['acked'], properties: { acked: { type: 'array', items: { type: 'integer' } } } }, 400: errorRef, 401: errorRef, 503: errorRef },
    },
  }, async (request) => ({ acked: io().ack(request.body.ids) }));

  app.get('/ws/io', {
    config: { access: ['traveller', 'operator'] },
    websocket: true,
    schema: { summary: 'The Journey Guide dialogue (WebSocket): joins the ui channel, streams push-to-talk audio. Protocol in main/host/http/io.ts.', tags, security: secured },
  }, (socket: WebSocket, request) => {
    const log = runtime.logger.child({ ws_io: request.id });
    const send = (m: unknown) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(m));
    };
    const fail = (err: unknown) => send({ type: 'error', error: toErrorData(err) });
    const router = runtime.io;
    // The session this socket shows: its traveller's messages and questions reach it, no other traveller's.
    let joined: string | null = null;
    const join = (id: string): boolean => {
      const found = router.session(id);
      if (!found || found.ended_at !== null) {
        send({ type: 'session.ended', session: id, reason: found?.end_reason ?? 'unknown' });
        return false;
      }
      joined = id;
      return true;
    };
    const attachment = router.attachUi({ send, session: () => joined });
    const asked = (request.query as { session?: unknown } | undefined)?.session;
    const status = router.status();
    send({ type: 'hello', voice_enabled: status.voice_enabled, voice_disabled_reason: status.voice_disabled_reason, session: null, idle_reset_ms: status.sessions.idle_reset_ms });
    if (typeof asked === 'string' && SESSION_ID_PATTERN.test(asked) && join(asked)) send({ type: 'joined', session: asked });

    let stream: { recorder: PushRecorder; done: Promise<void> } | undefined;
    const endStream = (cancel: boolean) => {
      if (!stream) return;
      if (cancel) stream.recorder.stop();
      else stream.recorder.end();
      stream = undefined;
    };
    const owner = `ui:${request.id}`;

    const start = (c: Extract<Control, { type: 'audio.start' }>) => {
      if (stream) throw new TesseraError('VALIDATION_FAILED', 'An audio stream is already open on this connection; send audio.end first.');
      const holder = activeStreams.get(router);
      if (holder !== undefined) throw new TesseraError('MIC_BUSY', 'Another push-to-talk stream is using the microphone; try again when it ends.');
      if ((c.run_id === undefined) !== (c.step === undefined)) throw new TesseraError('VALIDATION_FAILED', 'Give both run_id and step to answer a question by voice, or neither.');
      const recorder = createPushRecorder(owner, { sampleRate: c.sample_rate, channels: 1 });
      activeStreams.set(router, owner);
      const done = router
        .hear(recorder, { owner, ...(joined ? { session: joined } : {}), ...(c.run_id !== undefined ? { run_id: c.run_id, step: c.step! } : {}) })
        .then(
          (r) => {
            runtime.scenarios.flush();
            send({ type: 'heard', outcome: r.listen.outcome, text: r.listen.text, ...(r.outcome ? { result: r.outcome } : {}) });
          },
          (err: unknown) => {
            if (stream?.recorder === recorder) stream = undefined;
            fail(err);
          },
        )
        .finally(() => {
          if (activeStreams.get(router) === owner) activeStreams.delete(router);
        });
      stream = { recorder, done };
    };

    socket.on('message', (data, isBinary) => {
      try {
        if (isBinary) {
          if (!stream) throw new TesseraError('VALIDATION_FAILED', 'Audio arrived without audio.start; send {"type":"audio.start","sample_rate":16000} first.');
          const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
          if (bytes.byteLength > MAX_CHUNK_BYTES) throw new TesseraError('VALIDATION_FAILED', `An audio frame is at most ${MAX_CHUNK_BYTES} bytes.`);
          try {
            stream.recorder.push(bytes);
          } catch (err) {
            endStream(true);
            throw err;
          }
          return;
        }
        const parsed = parseJsonFrame(data);
        if (!validateControl(parsed)) throw new TesseraError('VALIDATION_FAILED', `Expected join {session}, audio.start {sample_rate 8000–48000, run_id?, step?}, audio.end, audio.cancel or ping: ${ajv.errorsText(validateControl.errors)}`);
        const c = parsed as Control;
        if (c.type === 'ping') send({ type: 'pong' });
        else if (c.type === 'join') {
          if (join(c.session)) send({ type: 'joined', session: c.session });
        }
        else if (c.type === 'audio.start') start(c);
        else endStream(c.type === 'audio.cancel');
      } catch (err) {
        fail(err);
      }
    });
    socket.on('close', () => {
      endStream(true);
      attachment.dispose();
      log.debug('journey dialogue socket closed');
    });
  });
};
