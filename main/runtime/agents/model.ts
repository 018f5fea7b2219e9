/**
 * The OpenAI-compatible Chat Completions client (issue 17 point 4): the protocol llama.cpp's server, Ollama, vLLM
 * and OpenAI all speak. One `complete()` = one `POST ${base_url}/chat/completions` with `stream: true`; the SSE
 * answer is parsed as it arrives (text deltas go to `onDelta` piece by piece, tool calls are assembled from their
 * fragments by `index`), and a server that ignores `stream` and answers `application/json` is accepted too.
 *
 * Contract (what callers rely on; ModelClient in ./types.ts):
 * - Failures are AgentError with a stable code, never anything else — except a caller's abort, which rejects with
 *   `signal.reason` (the Web platform's convention: the caller who aborted knows why).
 *   - AGENT_MODEL_FAILED, retryable: connection refused/reset/unresolvable, the stream broke, HTTP 408/429/5xx,
 *     an error event inside the stream. `details.status` and the error body's `code`/`type`/`message`.
 *   - AGENT_MODEL_FAILED with `details.over_quota: true` (not retryable): HTTP 402, or an error whose `code` or
 *     `type` is `insufficient_quota` (OpenAI's 429 for an account out of credit) — the provider's quota, not ours.
 *   - AGENT_MODEL_FAILED, not retryable: any other 4xx, an invalid `base_url`.
 *   - AGENT_MODEL_TIMEOUT (retryable, `details.phase`): `first_byte` — nothing of the answer within
 *     `first_byte_timeout_ms` (the first body byte of a stream; the headers of a JSON answer, which servers send
 *     with the whole body); `total` — the whole answer not within `timeout_ms`.
 *   - AGENT_MODEL_OUTPUT_INVALID: an SSE event that is not JSON, an answer without `choices`, a tool call without
 *     a name or whose arguments are not a JSON object (the message names the tool), an answer (text and tool call
 *     arguments) longer than max(64 KiB, 16 × max_tokens) characters — reading stops there and the request is
 *     aborted (`details.limit`).
 * - The API key goes only into the `Authorization` header. It is never logged and never part of an error's
 *   message, details or cause: text from the endpoint (error messages may echo the key) is redacted.
 * - `usage` comes from the endpoint (`stream_options.include_usage`) when both numbers are integers ≥ 0; without
 *   it (or with anything else), it is estimated at 4 characters per token and marked `estimated: true`.
 * - `max_tokens` is always sent (default 512): it is what the runtime reserves from the token budget.
 *
 * Uses Node's global fetch (undici), injectable for tests and for apps that route through a proxy.
 */
import { randomUUID } from 'node:crypto';
import { AgentError, isAgentError } from './types.js';
import type { ChatRequest, ChatResult, ModelClient, ToolCall } from './types.js';

export interface OpenAiClientOptions {
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Call starts and ends at debug, failures at warn; never the API key or the prompt. */
  logger?: { debug(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void };
}

const DEFAULT_FIRST_BYTE_MS = 10_000;
const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_TOKENS = 512;
/** An error answer's body is read up to this much (enough for any provider's JSON error). */
const ERROR_BODY_LIMIT = 64 * 1024;
/** An answer may be this many characters per `max_tokens` token (and 64 KiB in any case) before it is refused. */
const CHARS_PER_TOKEN_LIMIT = 16;
const MIN_ANSWER_LIMIT = 64 * 1024;
/** A JSON answer's body may be this many bytes per allowed character (UTF-8 and `\uXXXX` escapes), plus slack. */
const JSON_BYTES_PER_CHAR = 6;
/** After `[DONE]`, how long the server has to end the response before the client cancels it (servers end at once). */
const DONE_GRACE_MS = 250;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const snippet = (s: string, n = 200) => (s.length > n ? `${s.slice(0, n)}…` : s);

/** Creates the client. One client serves any number of concurrent calls (each call owns its own state). */
export function createOpenAiClient(options: OpenAiClientOptions = {}): ModelClient {
  const doFetch = options.fetch ?? globalThis.fetch;
  const log = options.logger;
  return {
    async complete(request, { signal, onDelta } = {}) {
      signal?.throwIfAborted();
      const endpoint = endpointOf(request.model.base_url);
      const redact = redactor(request.apiKey);
      const started = performance.now();
      log?.debug('model call', { endpoint: endpoint.shown, model: request.model.model, messages: request.messages.length, tools: request.tools.length });
      try {
        const result = await call(doFetch, endpoint, request, redact, signal, onDelta);
        log?.debug('model answered', { endpoint: endpoint.shown, ms: Math.round(performance.now() - started), finish_reason: result.finish_reason, usage: result.usage });
        return result;
      } catch (err) {
        if (isAgentError(err)) log?.warn('model call failed', { endpoint: endpoint.shown, code: err.code, message: err.message, ms: Math.round(performance.now() - started) });
        throw err;
      }
    },
  };
}

interface Endpoint {
  url: string;
  /** For messages and logs: origin and path only (no credentials, no query). */
  shown: string;
}

function endpointOf(baseUrl: string): Endpoint {
  let url: URL;
  try {
    url = new URL(`${baseUrl.replace(/\/+$/, '')}/chat/completions`);
  } catch {
    throw new AgentError('AGENT_MODEL_FAILED', 'the model base_url is not a valid URL', { details: { reason: 'config' } });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AgentError('AGENT_MODEL_FAILED', `the model base_url must be http(s), not ${url.protocol}`, { details: { reason: 'config' } });
  return { url: url.href, shown: `${url.origin}${url.pathname}` };
}

function redactor(apiKey: string | undefined): (s: string) => string {
  if (!apiKey) return (s) => s;
  return (s) => (s.includes(apiKey) ? s.split(apiKey).join('[redacted]') : s);
}

/** The most characters of text and tool call arguments an answer may have. */
function answerLimit(request: ChatRequest): number {
  return Math.max(MIN_ANSWER_LIMIT, CHARS_PER_TOKEN_LIMIT * (request.model.max_tokens ?? DEFAULT_MAX_TOKENS));
}

function requestBody(request: ChatRequest): string {
  const m = request.model;
  const body: Json = {
    model: m.model,
    messages: request.messages,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: m.max_tokens ?? DEFAULT_MAX_TOKENS,
  };
  if (m.temperature !== undefined) body.temperature = m.temperature;
  if (request.tools.length > 0) {
    body.tools = request.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
    body.tool_choice = 'auto';
  }
  return JSON.stringify(body);
}

/** One call: owns its timers, its abort controller and its parse state; releases all of them on every path. */
async function call(
  doFetch: typeof fetch,
  endpoint: Endpoint,
  request: ChatRequest,
  redact: (s: string) => string,
  signal: AbortSignal | undefined,
  onDelta: ((text: string) => void) | undefined,
): Promise<ChatResult> {
  const controller = new AbortController();
  let timedOut: 'first_byte' | 'total' | undefined;
  const expire = (phase: 'first_byte' | 'total') => () => {
    timedOut ??= phase;
    controller.abort();
  };
  const firstByteMs = request.model.first_byte_timeout_ms ?? DEFAULT_FIRST_BYTE_MS;
  const totalMs = request.model.timeout_ms ?? DEFAULT_TIMEOUT_MS;
  let firstByteTimer: ReturnType<typeof setTimeout> | undefined = setTimeout(expire('first_byte'), firstByteMs);
  const totalTimer = setTimeout(expire('total'), totalMs);
  const gotFirstByte = () => {
    clearTimeout(firstByteTimer);
    firstByteTimer = undefined;
  };
  const onAbort = () => controller.abort(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  // An exception from the caller's onDelta stops the call and is rethrown as is (it is the caller's, not the model's).
  let callbackError: { err: unknown } | undefined;
  const deltas = onDelta
    ? (text: string) => {
        try {
          onDelta(text);
        } catch (err) {
          callbackError = { err };
          throw err;
        }
      }
    : undefined;
  let answered = false;
  let completed = false;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream, application/json' };
  if (request.apiKey) headers.authorization = `Bearer ${request.apiKey}`;
  try {
    const res = await doFetch(endpoint.url, { method: 'POST', headers, body: requestBody(request), signal: controller.signal });
    answered = true;
    const type = res.headers.get('content-type') ?? '';
    if (!res.ok) {
      gotFirstByte();
      throw httpError(res.status, await readLimited(res.body), res.headers, endpoint, redact);
    }
    const result = /\bjson\b/i.test(type)
      ? (gotFirstByte(), parseJsonAnswer(await readJsonBody(res.body, answerLimit(request)), request, endpoint, deltas, redact))
      : await readStream(res.body, request, endpoint, deltas, gotFirstByte, redact);
    completed = true;
    return result;
  } catch (err) {
    if (callbackError) throw callbackError.err;
    if (signal?.aborted) throw signal.reason;
    if (timedOut) {
      const ms = timedOut === 'first_byte' ? firstByteMs : totalMs;
      throw new AgentError('AGENT_MODEL_TIMEOUT', timedOut === 'first_byte' ? `the model sent nothing within ${ms} ms (${endpoint.shown})` : `the model did not finish its answer within ${ms} ms (${endpoint.shown})`, {
        retryable: true,
        details: { phase: timedOut, timeout_ms: ms, endpoint: endpoint.shown },
      });
    }
    if (isAgentError(err)) throw err;
    throw networkError(err, answered, endpoint);
  } finally {
    clearTimeout(firstByteTimer);
    clearTimeout(totalTimer);
    signal?.removeEventListener('abort', onAbort);
    // Releases the connection of an answer left unread (an error, a parse failure); a no-op once it was read.
    if (!completed) controller.abort();
  }
}

/** fetch's failures: `TypeError('fetch failed')` with the socket's error as `cause` (ECONNREFUSED, UND_ERR_SOCKET…). */
function networkError(err: unknown, answered: boolean, endpoint: Endpoint): AgentError {
  const cause = isObject(err) && 'cause' in err ? (err as { cause?: unknown }).cause : undefined;
  const code = (isObject(cause) && typeof cause.code === 'string' ? cause.code : undefined) ?? (isObject(err) && typeof err.code === 'string' ? err.code : undefined);
  const why = code ?? (err instanceof Error ? err.message : String(err));
  return answered
    ? new AgentError('AGENT_MODEL_FAILED', `the model's answer broke off (${why}) (${endpoint.shown})`, { retryable: true, details: { reason: 'stream_broken', code, endpoint: endpoint.shown } })
    : new AgentError('AGENT_MODEL_FAILED', `could not reach the model at ${endpoint.shown} (${why})`, { retryable: true, details: { reason: 'connection', code, endpoint: endpoint.shown } });
}

/** A JSON answer's body, refused (AGENT_MODEL_OUTPUT_INVALID) as soon as it is too large to hold an allowed answer. */
async function readJsonBody(body: ReadableStream<Uint8Array> | null, limit: number): Promise<string> {
  if (!body) return '';
  const maxBytes = limit * JSON_BYTES_PER_CHAR + MIN_ANSWER_LIMIT;
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) throw tooLong(limit);
    parts.push(value);
  }
  return Buffer.concat(parts).toString('utf8');
}

async function readLimited(body: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!body) return '';
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ERROR_BODY_LIMIT) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.byteLength;
    }
  } catch {
    // A broken error body still leaves the status: answer with what arrived.
  } finally {
    void reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(parts).toString('utf8', 0, Math.min(size, ERROR_BODY_LIMIT));
}

/** The fields of an OpenAI error body `{error: {message, type, code}}` (or Ollama's `{error: "…"}`). */
function errorFields(error: unknown): { message?: string; type?: string; code?: string | number } {
  if (typeof error === 'string') return { message: error };
  if (!isObject(error)) return {};
  return {
    ...(typeof error.message === 'string' ? { message: error.message } : {}),
    ...(typeof error.type === 'string' ? { type: error.type } : {}),
    ...(typeof error.code === 'string' || typeof error.code === 'number' ? { code: error.code } : {}),
  };
}

function modelError(status: number | undefined, fields: ReturnType<typeof errorFields>, endpoint: Endpoint, redact: (s: string) => string, extra: Json = {}): AgentError {
  const overQuota = status === 402 || fields.code === 'insufficient_quota' || fields.type === 'insufficient_quota';
  const numeric = typeof fields.code === 'number' ? fields.code : status;
  const retryable = !overQuota && (numeric === undefined || numeric === 408 || numeric === 429 || numeric >= 500);
  const message = fields.message === undefined ? undefined : redact(snippet(fields.message, 500));
  const details: Json = { ...(status !== undefined ? { status } : {}), ...extra, endpoint: endpoint.shown };
  if (fields.code !== undefined) details.code = fields.code;
  if (fields.type !== undefined) details.type = fields.type;
  if (message !== undefined) details.message = message;
  if (overQuota) details.over_quota = true;
  const head = status === undefined ? 'the model reported an error in its stream' : `the model endpoint answered HTTP ${status}`;
  return new AgentError('AGENT_MODEL_FAILED', `${head}${overQuota ? ' (over quota)' : ''}${message ? `: ${snippet(message)}` : ''} (${endpoint.shown})`, { retryable, details });
}

function httpError(status: number, body: string, headers: Headers, endpoint: Endpoint, redact: (s: string) => string): AgentError {
  let fields: ReturnType<typeof errorFields>;
  try {
    const parsed = JSON.parse(body) as unknown;
    fields = errorFields(isObject(parsed) && 'error' in parsed ? parsed.error : parsed);
  } catch {
    fields = body.trim() ? { message: body.trim() } : {};
  }
  const extra: Json = {};
  const retryAfter = headers.get('retry-after');
  if (retryAfter) {
    const ms = /^\d+(\.\d+)?$/.test(retryAfter.trim()) ? Number(retryAfter) * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms) && ms >= 0) extra.retry_after_ms = Math.round(ms);
  }
  return modelError(status, fields, endpoint, redact, extra);
}

const invalid = (message: string, details: Json) => new AgentError('AGENT_MODEL_OUTPUT_INVALID', message, { details });
const tooLong = (limit: number) => invalid(`the model's answer is longer than ${limit} characters`, { limit });

/** A tool call being assembled from stream fragments (or read whole from a JSON answer). */
interface CallSlot {
  id: string;
  name: string;
  args: string;
}

/** Assembles one answer from stream events (or from one JSON answer). */
class Answer {
  text = '';
  slots: CallSlot[] = [];
  finish: string | undefined;
  usage: { prompt_tokens: number; completion_tokens: number } | undefined;
  /** `[DONE]` seen. */
  done = false;
  /** Characters of text and tool call arguments so far (capped at `limit`). */
  private size = 0;

  constructor(
    private readonly onDelta: ((text: string) => void) | undefined,
    private readonly endpoint: Endpoint,
    private readonly redact: (s: string) => string,
    private readonly limit: number,
  ) {}

  /** Counts `n` more characters of the answer; throws once the answer is over its limit. */
  grow(n: number): void {
    this.size += n;
    if (this.size > this.limit) throw tooLong(this.limit);
  }

  /** One SSE event's data. */
  event(data: string): void {
    if (this.done) return;
    if (data === '[DONE]') {
      this.done = true;
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      throw invalid('the model sent a stream event that is not JSON', { event: this.redact(snippet(data)) });
    }
    if (!isObject(chunk)) throw invalid('the model sent a stream event that is not a JSON object', { event: this.redact(snippet(data)) });
    if (chunk.error !== undefined && chunk.error !== null) throw modelError(undefined, errorFields(chunk.error), this.endpoint, this.redact, { reason: 'stream_error' });
    this.takeUsage(chunk.usage);
    const choices = chunk.choices;
    if (!Array.isArray(choices)) {
      if (isObject(chunk.usage)) return; // a usage-only chunk
      throw invalid('the model sent a stream event without choices', { event: this.redact(snippet(data)) });
    }
    if (choices.length === 0) return;
    const choice: unknown = choices.length === 1 ? choices[0] : (choices.find((c) => isObject(c) && c.index === 0) ?? choices[0]);
    if (!isObject(choice)) throw invalid('the model sent a stream event with a malformed choice', { event: this.redact(snippet(data)) });
    const delta = choice.delta;
    if (isObject(delta)) {
      const content = delta.content;
      if (typeof content === 'string' && content.length > 0) {
        this.grow(content.length);
        this.text += content;
        this.onDelta?.(content);
      }
      const calls = delta.tool_calls;
      if (Array.isArray(calls)) for (const c of calls) this.fragment(c);
    }
    if (typeof choice.finish_reason === 'string') this.finish = choice.finish_reason;
  }

  /** One `delta.tool_calls[]` item: the first of a call carries `id` and `function.name`, later ones argument text. */
  private fragment(c: unknown): void {
    if (!isObject(c)) throw invalid('the model sent a malformed tool call fragment', { fragment: this.redact(snippet(JSON.stringify(c))) });
    const fn = isObject(c.function) ? c.function : {};
    const id = typeof c.id === 'string' && c.id.length > 0 ? c.id : undefined;
    // Servers that omit `index` send one call at a time: a new id opens a slot, otherwise the last slot continues.
    let index = typeof c.index === 'number' ? c.index : id !== undefined ? this.slotOf(id) : Math.max(0, this.slots.length - 1);
    if (index < 0 || !Number.isInteger(index)) index = 0;
    const slot = (this.slots[index] ??= { id: '', name: '', args: '' });
    if (id !== undefined && slot.id === '') slot.id = id;
    if (typeof fn.name === 'string' && fn.name.length > 0 && slot.name !== fn.name) slot.name += fn.name;
    if (typeof fn.arguments === 'string') {
      this.grow(fn.arguments.length);
      slot.args += fn.arguments;
    } else if (isObject(fn.arguments)) {
      slot.args = JSON.stringify(fn.arguments);
      this.grow(slot.args.length);
    }
  }

  private slotOf(id: string): number {
    const known = this.slots.findIndex((s) => s !== undefined && s.id === id);
    return known >= 0 ? known : this.slots.length;
  }

  takeUsage(usage: unknown): void {
    if (!isObject(usage)) return;
    const p = usage.prompt_tokens;
    const c = usage.completion_tokens;
    // Only counts: a negative or fractional number (a buggy or hostile endpoint) leaves the usage to the estimate.
    const count = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;
    if (count(p) && count(c)) this.usage = { prompt_tokens: p, completion_tokens: c };
  }

  result(request: ChatRequest): ChatResult {
    const tool_calls: ToolCall[] = [];
    this.slots.forEach((slot, index) => {
      if (slot === undefined) return; // a gap in the indexes: nothing was sent for it
      if (!slot.name) throw invalid(`the model called a tool without a name (call ${index})`, { call_id: slot.id, index });
      let args: unknown;
      try {
        args = slot.args.trim() === '' ? {} : JSON.parse(slot.args);
      } catch {
        args = undefined;
      }
      if (!isObject(args)) throw invalid(`the model's arguments for tool "${slot.name}" are not a JSON object`, { tool: slot.name, call_id: slot.id, arguments: this.redact(snippet(slot.args)) });
      tool_calls.push({ id: slot.id || `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`, name: slot.name, arguments: args });
    });
    const finish_reason = this.finish ?? (tool_calls.length > 0 ? 'tool_calls' : 'stop');
    const usage = this.usage ? { ...this.usage, estimated: false } : { ...estimate(request, this.text, this.slots), estimated: true };
    return { text: this.text, tool_calls, finish_reason, usage };
  }
}

/** 4 characters per token: what the prompt and the answer would cost, for endpoints that report no usage. */
function estimate(request: ChatRequest, text: string, slots: CallSlot[]): { prompt_tokens: number; completion_tokens: number } {
  let prompt = 0;
  for (const m of request.messages) {
    prompt += (m.content?.length ?? 0) + 4;
    if (m.role === 'assistant' && m.tool_calls) for (const c of m.tool_calls) prompt += c.function.name.length + c.function.arguments.length;
  }
  if (request.tools.length > 0) prompt += JSON.stringify(request.tools).length;
  let completion = text.length;
  for (const s of slots) if (s) completion += s.name.length + s.args.length;
  return { prompt_tokens: Math.ceil(prompt / 4), completion_tokens: Math.ceil(completion / 4) };
}

/**
 * An incremental SSE parser (WHATWG "event stream interpretation"): lines end with CRLF, LF or CR, possibly split
 * across chunks; `data:` lines of one event are joined with `\n`; an empty line dispatches; `:` lines are comments;
 * `event`, `id` and `retry` are not used by Chat Completions and are ignored.
 */
class SseParser {
  private buffer = '';
  private data = '';
  private hasData = false;

  constructor(private readonly dispatch: (data: string) => void) {}

  push(text: string): void {
    const buf = this.buffer.length === 0 ? text : this.buffer + text;
    let start = 0;
    const n = buf.length;
    while (start < n) {
      let lf = buf.indexOf('\n', start);
      const cr = buf.indexOf('\r', start);
      let next: number;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
        if (cr === n - 1) break;
        lf = cr;
        next = buf.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
      } else if (lf >= 0) {
        next = lf + 1;
      } else {
        break;
      }
      this.line(buf.slice(start, lf));
      start = next;
    }
    this.buffer = start === 0 ? buf : buf.slice(start);
  }

  /** The stream ended: a last line without its line ending, and an event without its blank line, still count. */
  end(text: string): void {
    this.push(text);
    const rest = this.buffer.endsWith('\r') ? this.buffer.slice(0, -1) : this.buffer;
    this.buffer = '';
    if (rest.length > 0) this.line(rest);
    this.line('');
  }

  private line(line: string): void {
    if (line.length === 0) {
      if (this.hasData) {
        const data = this.data;
        this.data = '';
        this.hasData = false;
        this.dispatch(data);
      }
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' comment */) return;
    const colon = line.indexOf(':');
    if ((colon < 0 ? line : line.slice(0, colon)) !== 'data') return;
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.data = this.hasData ? `${this.data}\n${value}` : value;
    this.hasData = true;
  }
}

async function readStream(
  body: ReadableStream<Uint8Array> | null,
  request: ChatRequest,
  endpoint: Endpoint,
  onDelta: ((text: string) => void) | undefined,
  gotFirstByte: () => void,
  redact: (s: string) => string,
): Promise<ChatResult> {
  const answer = new Answer(onDelta, endpoint, redact, answerLimit(request));
  const parser = new SseParser((data) => answer.event(data));
  if (body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let first = true;
    let grace: ReturnType<typeof setTimeout> | undefined;
    try {
      for (;;) {
        let read: ReadableStreamReadResult<Uint8Array>;
        try {
          read = await reader.read();
        } catch (err) {
          if (answer.done) break; // the answer is whole; only the end of the response went wrong
          throw err;
        }
        if (read.done) break;
        if (first) {
          first = false;
          gotFirstByte();
        }
        if (answer.done) continue;
        parser.push(decoder.decode(read.value, { stream: true }));
        // Servers end the response right after [DONE]; one that does not is cut off rather than waited for.
        if (answer.done) grace = setTimeout(() => void reader.cancel().catch(() => undefined), DONE_GRACE_MS);
      }
      if (!answer.done) parser.end(decoder.decode());
    } finally {
      clearTimeout(grace);
    }
  }
  if (!answer.done && answer.finish === undefined) {
    throw new AgentError('AGENT_MODEL_FAILED', `the model's stream ended before the answer was complete (${endpoint.shown})`, { retryable: true, details: { reason: 'stream_ended', endpoint: endpoint.shown } });
  }
  return answer.result(request);
}

/** A server that ignored `stream: true` and answered one `chat.completion` object. */
function parseJsonAnswer(body: string, request: ChatRequest, endpoint: Endpoint, onDelta: ((text: string) => void) | undefined, redact: (s: string) => string): ChatResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw invalid('the model answered JSON that does not parse', { body: redact(snippet(body)) });
  }
  if (!isObject(parsed)) throw invalid('the model answered JSON that is not an object', { body: redact(snippet(body)) });
  if (parsed.error !== undefined && parsed.error !== null) throw modelError(undefined, errorFields(parsed.error), endpoint, redact, { reason: 'answer_error' });
  const choices = parsed.choices;
  const choice: unknown = Array.isArray(choices) ? choices[0] : undefined;
  if (!isObject(choice) || !isObject(choice.message)) throw invalid('the model answered without choices', { body: redact(snippet(body)) });
  const answer = new Answer(undefined, endpoint, redact, answerLimit(request));
  const message = choice.message;
  if (typeof message.content === 'string') {
    answer.grow(message.content.length);
    answer.text = message.content;
  }
  if (Array.isArray(message.tool_calls)) {
    message.tool_calls.forEach((c: unknown, index) => {
      if (!isObject(c)) throw invalid('the model answered a malformed tool call', { index });
      const fn = isObject(c.function) ? c.function : {};
      const args = typeof fn.arguments === 'string' ? fn.arguments : fn.arguments === undefined ? '' : JSON.stringify(fn.arguments);
      answer.grow(args.length);
      answer.slots.push({ id: typeof c.id === 'string' ? c.id : '', name: typeof fn.name === 'string' ? fn.name : '', args });
    });
  }
  if (typeof choice.finish_reason === 'string') answer.finish = choice.finish_reason;
  answer.takeUsage(parsed.usage);
  const result = answer.result(request);
  // Streaming consumers still see the text, in one piece.
  if (result.text.length > 0) onDelta?.(result.text);
  return result;
}
