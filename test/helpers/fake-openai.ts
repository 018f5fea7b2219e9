/**
 * A protocol-faithful OpenAI-compatible Chat Completions server on 127.0.0.1 (issue 17, "Real parts and bad input":
 * the only fake, since no model can be downloaded here). It speaks what OpenAI, llama.cpp's server, Ollama and vLLM
 * speak: `POST /v1/chat/completions` answered as SSE (`data: {chat.completion.chunk}` events, `data: [DONE]`) when
 * the request says `stream: true`, else one `chat.completion` JSON; tool calls streamed the way OpenAI does (a first
 * fragment with `index`, `id`, `type` and `function.name`, then `function.arguments` fragments); the usage chunk
 * (`choices: []`) when the request has `stream_options.include_usage`; errors as `{error: {message, type, param,
 * code}}`; `GET /v1/models`. It rejects, as OpenAI does (HTTP 400), a request without `model` or `messages`, a
 * `tool` message that answers no preceding `tool_calls`, and an assistant's `tool_calls` left unanswered — so a
 * runtime that builds a bad transcript fails here as it would against the real thing (`validate: false` to allow).
 *
 * ```ts
 * const fake = await startFakeOpenAi();            // fake.url = 'http://127.0.0.1:<port>/v1' → ModelConfig.base_url
 * fake.enqueue('Hello there!');                    // the next request gets this text, streamed word by word
 * fake.enqueue({ toolCalls: [{ name: 'weather__forecast', arguments: { city: 'Paris' } }] });
 * fake.enqueue({ kind: 'error', status: 429, code: 'insufficient_quota' });   // OpenAI's "over quota"
 * // or decide from the request (used when the queue is empty):
 * fake.respond((req) =>
 *   req.lastMessage?.role === 'tool'
 *     ? `It will rain: ${req.lastMessage.content}`
 *     : { toolCalls: [{ name: 'weather__forecast', arguments: { city: 'Paris' } }] });
 * // …run the code under test…
 * expect(fake.requests[0]!.body.messages[0]).toEqual({ role: 'system', content: '…' });
 * await fake.close();
 * ```
 *
 * Answers ({@link FakeAnswer}) — a string is `{ text }`:
 * - `{ text?, chunks?, toolCalls?, … }` ({@link FakeReply}): a normal answer; knobs for the delay between events,
 *   CRLF line endings, `:` comments, lines split across reads, several events per read, a server that ignores
 *   `stream` (`json: true`), usage given/absent.
 * - `{ kind: 'error', status, message?, type?, code? }`: an HTTP error with OpenAI's body.
 * - `{ kind: 'hang', text? }`: headers and some text, then nothing, ever (`headers: false`: not even headers).
 * - `{ kind: 'drop', text? }`: some text, then the connection is destroyed mid-stream.
 * - `{ kind: 'malformed' }`: a stream whose third event is truncated JSON.
 * - `{ kind: 'raw', status?, headers?, body }`: exactly these bytes (pieces `delayMs` apart).
 * Every answer takes `firstByteDelayMs`: nothing at all (not even headers) is sent before it.
 *
 * Which answer a request gets: the next queued one ({@link FakeOpenAi.enqueue}); else the {@link FakeOpenAi.respond}
 * handler's; else HTTP 500 "no answer scripted" (loud on purpose). Every request is recorded in `requests`.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A message of the request, as the client sent it. */
export interface FakeMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content?: string | null;
  tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
  [field: string]: unknown;
}

/** The request body (`{}` when the body was not JSON). */
export interface FakeChatBody {
  model?: string;
  messages?: FakeMessage[];
  tools?: Array<{ type: 'function'; function: { name: string; description?: string; parameters?: Record<string, unknown> } }>;
  tool_choice?: unknown;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  temperature?: number;
  max_tokens?: number;
  [field: string]: unknown;
}

export interface FakeRequest {
  method: string;
  /** e.g. `/v1/chat/completions`. */
  path: string;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: FakeChatBody;
  raw: string;
  /** `body.messages`' last message. */
  lastMessage: FakeMessage | undefined;
  /** The answer it got (after a string was turned into `{ text }`). */
  answer: Exclude<FakeAnswer, string> | undefined;
  /** `performance.now()` just before each text delta event was written (for latency measurements). */
  textWrittenAt: number[];
  /** True when the client closed the connection before the answer was complete (an abort, a timeout). */
  clientClosed: boolean;
}

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export interface FakeToolCall {
  /** Default: `call_<random>`, as OpenAI's. */
  id?: string;
  name: string;
  /** An object is sent as its JSON; a string as is (so a test can send invalid JSON). */
  arguments: string | Record<string, unknown>;
}

interface Delivery {
  /** Nothing (not even the status line) is sent before this many ms: a slow first byte. */
  firstByteDelayMs?: number;
}

/** A normal answer: text and/or tool calls, streamed (or JSON when the request has no `stream: true`). */
export interface FakeReply extends Delivery {
  kind?: 'reply';
  text?: string;
  /** The text's pieces, one event each (default: `text` split after each word, like tokens). */
  chunks?: string[];
  toolCalls?: FakeToolCall[];
  /** Length of each `function.arguments` fragment (default 7). */
  argsChunkSize?: number;
  /** Send the fragments of parallel tool calls interleaved (call 0, call 1, call 0…) instead of one call after the other. */
  interleave?: boolean;
  /** Between events (default 0). */
  delayMs?: number;
  /** Default: `tool_calls` with tool calls, else `stop`. */
  finishReason?: string;
  /** Default: computed (4 chars per token), sent when the request asks `include_usage` (and in JSON answers). `false`: never. */
  usage?: FakeUsage | false;
  /** Answer one `chat.completion` JSON even when the request asked to stream (a server that ignores `stream`). */
  json?: boolean;
  /** `\r\n` line endings. */
  crlf?: boolean;
  /** A `: keep-alive` comment line before each event. */
  comments?: boolean;
  /** Write the stream in pieces of this many bytes, one event-loop turn apart (lines split across reads). */
  splitBytes?: number;
  /** Write every event in one write (several events per read). */
  coalesce?: boolean;
  /** Leave out the final `data: [DONE]` (some servers end the response after the finish chunk). */
  noDone?: boolean;
}

export interface FakeError extends Delivery {
  kind: 'error';
  status: number;
  /** Default: OpenAI's message for the status (or for `code: 'insufficient_quota'`). */
  message?: string;
  /** Default: `server_error` for 5xx, `requests` for 429, `insufficient_quota` with that code, else `invalid_request_error`. */
  type?: string;
  code?: string | null;
  headers?: Record<string, string>;
  /** A raw body instead of OpenAI's JSON shape. */
  body?: string;
}

/** Headers and `text`, then nothing ever: a model that never finishes. `headers: false`: nothing at all. */
export interface FakeHang extends Delivery {
  kind: 'hang';
  text?: string;
  delayMs?: number;
  headers?: boolean;
}

/** Headers and `text`, then the connection is destroyed (a crashed server, a cut network). */
export interface FakeDrop extends Delivery {
  kind: 'drop';
  text?: string;
  delayMs?: number;
}

/** A stream whose third event is truncated JSON (a role chunk, a text chunk, then `{"id":…` cut off), and no `[DONE]`. */
export interface FakeMalformed extends Delivery {
  kind: 'malformed';
}

/** Exactly these bytes (each piece one write, `delayMs` apart). Default headers: `text/event-stream`. */
export interface FakeRaw extends Delivery {
  kind: 'raw';
  status?: number;
  headers?: Record<string, string>;
  body: string | string[];
  delayMs?: number;
}

export type FakeAnswer = string | FakeReply | FakeError | FakeHang | FakeDrop | FakeMalformed | FakeRaw;

/** Decides the answer from the request; `undefined` → the default (HTTP 500 "no answer scripted"). */
export type FakeResponder = (request: FakeRequest) => FakeAnswer | undefined | Promise<FakeAnswer | undefined>;

export interface FakeOpenAi {
  /** `http://127.0.0.1:<port>/v1`: a ModelConfig's `base_url`. */
  readonly url: string;
  /** Every request, in arrival order. */
  readonly requests: FakeRequest[];
  /** Queue answers: each request takes the next one. */
  enqueue(...answers: FakeAnswer[]): void;
  /** Replace the queue with these answers. */
  script(...answers: FakeAnswer[]): void;
  /** The answer of requests that find the queue empty (`undefined`: none). */
  respond(handler: FakeResponder | undefined): void;
  /** Resolves once `count` requests in all have arrived (rejects after `timeoutMs`, default 5 s). */
  waitForRequests(count: number, timeoutMs?: number): Promise<FakeRequest[]>;
  /** Empties the queue, the handler and `requests`. */
  reset(): void;
  /** Closes the server and every connection (hanging answers included). */
  close(): Promise<void>;
}

export interface FakeOpenAiOptions {
  /** Requests without `Authorization: Bearer <apiKey>` get OpenAI's 401 `invalid_api_key`. Default: no check. */
  apiKey?: string;
  /** What `GET /v1/models` lists (default `['fake-model']`). */
  models?: string[];
  /** Check the request as OpenAI does (default true). */
  validate?: boolean;
}

const sleep = (ms: number, res: ServerResponse): Promise<void> => {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.once('close', done);
  });
};

const callId = () => `call_${randomBytes(12).toString('base64url')}`;
const words = (text: string) => text.match(/\S+\s*|\s+/g) ?? [];
const tokens = (chars: number) => Math.max(1, Math.ceil(chars / 4));

function errorBody(status: number, message: string, type: string, code: string | null): string {
  return JSON.stringify({ error: { message, type, param: null, code } });
}

function defaultError(e: FakeError): { message: string; type: string } {
  if (e.code === 'insufficient_quota') return { message: 'You exceeded your current quota, please check your plan and billing details.', type: 'insufficient_quota' };
  const messages: Record<number, string> = {
    400: 'Invalid request.',
    401: 'Incorrect API key provided.',
    402: 'Payment required: your account has no credit left.',
    404: 'The model does not exist or you do not have access to it.',
    429: 'Rate limit reached for requests. Please try again in 1s.',
    500: 'The server had an error while processing your request. Sorry about that!',
    502: 'Bad gateway.',
    503: 'The engine is currently overloaded, please try again later.',
  };
  return { message: messages[e.status] ?? `HTTP ${e.status}`, type: e.status >= 500 ? 'server_error' : e.status === 429 ? 'requests' : 'invalid_request_error' };
}

/** OpenAI's checks of a transcript (a tool message must answer a preceding tool call, every tool call must be answered). */
function invalidRequest(body: FakeChatBody): string | undefined {
  if (typeof body.model !== 'string' || body.model === '') return 'you must provide a model parameter';
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "[] is too short - 'messages'";
  let open = new Set<string>();
  for (const [i, m] of body.messages.entries()) {
    if (m.role === 'tool') {
      if (typeof m.tool_call_id !== 'string' || !open.delete(m.tool_call_id)) return `Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages[${i}])`;
      continue;
    }
    if (open.size > 0) return `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(', ')}`;
    if (!['system', 'user', 'assistant', 'developer'].includes(m.role)) return `Invalid value: '${m.role}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'. (messages[${i}].role)`;
    if (m.role === 'assistant' && Array.isArray(m.tool_calls)) open = new Set(m.tool_calls.map((c) => c.id));
  }
  if (open.size > 0) return `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(', ')}`;
  return undefined;
}

export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const requests: FakeRequest[] = [];
  let queue: FakeAnswer[] = [];
  let handler: FakeResponder | undefined;
  let waiters: Array<() => void> = [];
  let served = 0;

  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      void serve(req, res, Buffer.concat(parts).toString('utf8')).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(errorBody(500, `fake-openai: ${String(err)}`, 'server_error', null));
        else res.destroy();
      });
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const sendError = (status: number, message: string, type: string, code: string | null) =>
      void res.writeHead(status, { 'content-type': 'application/json' }).end(errorBody(status, message, type, code));

    if (options.apiKey !== undefined && headers.authorization !== `Bearer ${options.apiKey}`) {
      return sendError(401, headers.authorization ? 'Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.' : "You didn't provide an API key.", 'invalid_request_error', 'invalid_api_key');
    }
    if (req.method === 'GET' && path === '/v1/models') {
      const data = (options.models ?? ['fake-model']).map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'fake-openai' }));
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data }));
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') return sendError(404, `Invalid URL (${req.method} ${path})`, 'invalid_request_error', null);

    let body: FakeChatBody = {};
    let parsed = true;
    try {
      const json = JSON.parse(raw) as unknown;
      if (typeof json === 'object' && json !== null && !Array.isArray(json)) body = json as FakeChatBody;
      else parsed = false;
    } catch {
      parsed = false;
    }
    const record: FakeRequest = { method: req.method, path, headers, body, raw, lastMessage: Array.isArray(body.messages) ? body.messages.at(-1) : undefined, answer: undefined, textWrittenAt: [], clientClosed: false };
    requests.push(record);
    served++;
    for (const w of waiters) w();
    res.on('close', () => {
      if (!res.writableFinished) record.clientClosed = true;
    });
    if (!parsed) return sendError(400, 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly.)', 'invalid_request_error', null);
    const problem = options.validate === false ? undefined : invalidRequest(body);
    if (problem) return sendError(400, problem, 'invalid_request_error', null);

    const next = queue.length > 0 ? queue.shift() : await handler?.(record);
    const answer: Exclude<FakeAnswer, string> =
      next === undefined ? { kind: 'error', status: 500, message: 'fake-openai: no answer scripted for this request (enqueue one, or set respond())' } : typeof next === 'string' ? { text: next } : next;
    record.answer = answer;
    await sleep(answer.firstByteDelayMs ?? 0, res);
    if (res.destroyed) return;
    await deliver(answer, record, res);
  }

  async function deliver(answer: Exclude<FakeAnswer, string>, record: FakeRequest, res: ServerResponse): Promise<void> {
    const model = record.body.model ?? 'fake-model';
    const id = `chatcmpl-${randomBytes(9).toString('base64url')}`;
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = record.body.stream_options?.include_usage === true;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_fake', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...(includeUsage ? { usage: null } : {}) });
    const sseHead = () => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': id });
      res.flushHeaders();
    };
    const textEvents = async (text: string | undefined, delayMs: number) => {
      res.write(`data: ${chunk({ role: 'assistant', content: '', refusal: null })}\n\n`);
      for (const piece of words(text ?? '')) {
        await sleep(delayMs, res);
        if (res.destroyed) return;
        record.textWrittenAt.push(performance.now());
        res.write(`data: ${chunk({ content: piece })}\n\n`);
      }
    };

    switch (answer.kind) {
      case 'error': {
        const d = defaultError(answer);
        res.writeHead(answer.status, { 'content-type': answer.body === undefined ? 'application/json' : 'text/plain', ...answer.headers });
        res.end(answer.body ?? errorBody(answer.status, answer.message ?? d.message, answer.type ?? d.type, answer.code ?? null));
        return;
      }
      case 'hang':
        if (answer.headers === false) return;
        sseHead();
        await textEvents(answer.text, answer.delayMs ?? 0);
        return; // never ends; close() destroys it
      case 'drop':
        sseHead();
        await textEvents(answer.text, answer.delayMs ?? 0);
        // Let the written events reach the client, then cut the connection without ending the chunked body.
        await sleep(5, res);
        res.destroy();
        return;
      case 'malformed':
        sseHead();
        await textEvents('Hel', 0);
        res.end(`data: {"id":"${id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo wor\n\n`);
        return;
      case 'raw': {
        res.writeHead(answer.status ?? 200, { 'content-type': 'text/event-stream; charset=utf-8', ...answer.headers });
        res.flushHeaders();
        const pieces = typeof answer.body === 'string' ? [answer.body] : answer.body;
        for (const [i, piece] of pieces.entries()) {
          if (i > 0) await sleep(answer.delayMs ?? 1, res);
          if (res.destroyed) return;
          res.write(piece);
        }
        res.end();
        return;
      }
      default:
        return reply(answer, record, res, { id, created, model, includeUsage, chunk });
    }
  }

  async function reply(
    a: FakeReply,
    record: FakeRequest,
    res: ServerResponse,
    c: { id: string; created: number; model: string; includeUsage: boolean; chunk: (delta: Record<string, unknown>, finish?: string | null) => string },
  ): Promise<void> {
    const pieces = a.chunks ?? words(a.text ?? '');
    const text = a.chunks ? a.chunks.join('') : (a.text ?? '');
    const calls = (a.toolCalls ?? []).map((t) => ({ id: t.id ?? callId(), name: t.name, args: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments) }));
    const finish = a.finishReason ?? (calls.length > 0 ? 'tool_calls' : 'stop');
    const usage = a.usage === false ? undefined : (a.usage ?? { prompt_tokens: tokens(JSON.stringify(record.body.messages ?? []).length), completion_tokens: tokens(text.length + calls.reduce((n, t) => n + t.name.length + t.args.length, 0)) });
    const usageJson = usage && { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens };

    if (a.json || record.body.stream !== true) {
      const message = { role: 'assistant', content: text === '' && calls.length > 0 ? null : text, refusal: null, ...(calls.length > 0 ? { tool_calls: calls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.args } })) } : {}) };
      const body = { id: c.id, object: 'chat.completion', created: c.created, model: c.model, choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], ...(usageJson ? { usage: usageJson } : {}), system_fingerprint: 'fp_fake' };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }

    // The events, in OpenAI's order: role, text, tool-call headers and argument fragments, finish, usage, [DONE].
    const events: Array<{ data: string; text: boolean }> = [{ data: c.chunk({ role: 'assistant', content: calls.length > 0 && text === '' ? null : '', refusal: null }), text: false }];
    for (const p of pieces) events.push({ data: c.chunk({ content: p }), text: true });
    const size = Math.max(1, a.argsChunkSize ?? 7);
    const fragments = calls.map((t, index) => {
      const list = [c.chunk({ tool_calls: [{ index, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] })];
      for (let i = 0; i < t.args.length; i += size) list.push(c.chunk({ tool_calls: [{ index, function: { arguments: t.args.slice(i, i + size) } }] }));
      return list;
    });
    if (a.interleave) {
      for (let i = 0; fragments.some((f) => i < f.length); i++) for (const f of fragments) if (i < f.length) events.push({ data: f[i]!, text: false });
    } else {
      for (const f of fragments) for (const data of f) events.push({ data, text: false });
    }
    events.push({ data: c.chunk({}, finish), text: false });
    if (c.includeUsage && usageJson) events.push({ data: JSON.stringify({ id: c.id, object: 'chat.completion.chunk', created: c.created, model: c.model, system_fingerprint: 'fp_fake', choices: [], usage: usageJson }), text: false });
    if (!a.noDone) events.push({ data: '[DONE]', text: false });

    const nl = a.crlf ? '\r\n' : '\n';
    const frame = (data: string) => `${a.comments ? `: keep-alive${nl}` : ''}data: ${data}${nl}${nl}`;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': c.id });
    res.flushHeaders();
    if (a.coalesce || a.splitBytes) {
      const all = Buffer.from(events.map((e) => frame(e.data)).join(''));
      if (a.coalesce && !a.splitBytes) {
        const now = performance.now();
        for (const e of events) if (e.text) record.textWrittenAt.push(now);
        res.end(all);
        return;
      }
      for (let i = 0; i < all.length; i += a.splitBytes!) {
        // A turn of the event loop between pieces: each reaches the client as its own read.
        if (i > 0) await new Promise((r) => setImmediate(r));
        if (res.destroyed) return;
        res.write(all.subarray(i, i + a.splitBytes!));
      }
      res.end();
      return;
    }
    for (const [i, e] of events.entries()) {
      if (i > 0) await sleep(a.delayMs ?? 0, res);
      if (res.destroyed) return;
      if (e.text) record.textWrittenAt.push(performance.now());
      res.write(frame(e.data));
    }
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    enqueue: (...answers) => void queue.push(...answers),
    script: (...answers) => void (queue = [...answers]),
    respond: (h) => void (handler = h),
    waitForRequests(count, timeoutMs = 5000) {
      if (served >= count) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (served < count) return;
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== check);
          resolve(requests);
        };
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== check);
          reject(new Error(`fake-openai: ${served} of ${count} requests arrived within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(check);
      });
    },
    reset() {
      queue = [];
      handler = undefined;
      requests.length = 0;
      served = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
