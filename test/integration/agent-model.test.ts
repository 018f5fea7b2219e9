/**
 * The OpenAI-compatible model client (issue 17 point 4) against a protocol-faithful Chat Completions server on
 * 127.0.0.1 (test/helpers/fake-openai.ts): streaming, tool calls assembled from fragments, usage, a server that
 * ignores `stream`, every error class, timeouts, abort, malformed and broken streams — and the API key only ever in
 * the Authorization header.
 */
import { inspect } from 'node:util';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAiClient } from '../../main/runtime/agents/model.js';
import { isAgentError } from '../../main/runtime/agents/types.js';
import type { AgentError, ChatMessage, ChatRequest, ModelConfig, ToolSpec } from '../../main/runtime/agents/types.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import type { FakeOpenAi } from '../helpers/fake-openai.js';

const KEY = 'sk-test-SECRET-7f3a9c41';
let fake: FakeOpenAi;
const logs: unknown[] = [];
const client = createOpenAiClient({
  logger: { debug: (msg, f) => logs.push({ msg, f }), warn: (msg, f) => logs.push({ msg, f }) },
});

const WEATHER: ToolSpec = { name: 'weather__forecast', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const TIME: ToolSpec = { name: 'clock__now', description: 'Local time of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } };
const HELLO: ChatMessage[] = [
  { role: 'system', content: 'You are a guide.' },
  { role: 'user', content: 'Hello!' },
];

function req(model: Partial<ModelConfig> = {}, more: Partial<ChatRequest> = {}): ChatRequest {
  return { model: { base_url: fake.url, model: 'fake-model', ...model }, apiKey: KEY, messages: HELLO, tools: [], ...more };
}

/** The call's AgentError — checked to carry no trace of the API key, nor the logs. */
async function failure(p: Promise<unknown>): Promise<AgentError> {
  const err = await p.then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  if (!isAgentError(err)) throw err;
  expect(inspect(err, { depth: 20, showHidden: true })).not.toContain(KEY);
  expect(JSON.stringify(err.options.details)).not.toContain(KEY);
  expect(logs.some((l) => (l as { msg: string }).msg === 'model call failed')).toBe(true);
  expect(JSON.stringify(logs)).not.toContain(KEY);
  return err;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  fake = await startFakeOpenAi({ apiKey: KEY });
});
afterAll(async () => {
  await fake?.close();
});
beforeEach(() => {
  fake.reset();
  logs.length = 0;
});

describe('streaming answers', () => {
  it('streams text piece by piece to onDelta, in order, and returns it whole with the endpoint usage', async () => {
    fake.enqueue({ chunks: ['Hel', 'lo, ', 'trav', 'eller', '!'], usage: { prompt_tokens: 21, completion_tokens: 5 }, delayMs: 2 });
    const deltas: string[] = [];
    const result = await client.complete(req({ temperature: 0.2 }), { onDelta: (t) => deltas.push(t) });
    expect(deltas).toEqual(['Hel', 'lo, ', 'trav', 'eller', '!']);
    expect(result).toEqual({ text: 'Hello, traveller!', tool_calls: [], finish_reason: 'stop', usage: { prompt_tokens: 21, completion_tokens: 5, estimated: false } });
    const sent = fake.requests[0]!;
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent.body).toEqual({ model: 'fake-model', messages: HELLO, stream: true, stream_options: { include_usage: true }, max_tokens: 512, temperature: 0.2 });
  });

  it.each([
    ['CRLF line endings and comment lines', { crlf: true, comments: true }],
    ['lines split across reads (5-byte pieces)', { splitBytes: 5 }],
    ['CRLF split between reads (3-byte pieces)', { crlf: true, splitBytes: 3 }],
    ['every event in one read', { coalesce: true }],
    ['no [DONE] after the finish chunk', { noDone: true }],
  ])('parses SSE framing: %s', async (_name, framing) => {
    fake.enqueue({ text: 'Take tram 4 to Opera. ', toolCalls: [{ id: 'call_a', name: 'weather__forecast', arguments: { city: 'Paris' } }], usage: { prompt_tokens: 9, completion_tokens: 8 }, ...framing });
    const deltas: string[] = [];
    const result = await client.complete(req({}, { tools: [WEATHER] }), { onDelta: (t) => deltas.push(t) });
    expect(deltas.join('')).toBe('Take tram 4 to Opera. ');
    expect(result.text).toBe('Take tram 4 to Opera. ');
    expect(result.tool_calls).toEqual([{ id: 'call_a', name: 'weather__forecast', arguments: { city: 'Paris' } }]);
    expect(result.usage).toEqual({ prompt_tokens: 9, completion_tokens: 8, estimated: false });
  });

  it('assembles two parallel tool calls from interleaved fragments, then answers the tool results (respond hook)', async () => {
    fake.respond((r) =>
      r.lastMessage?.role === 'tool'
        ? { text: `Sunny and ${String(r.lastMessage.content)}.` }
        : {
            toolCalls: [
              { id: 'call_w', name: 'weather__forecast', arguments: { city: 'Paris', days: 2, note: 'a "quoted" ünïcode ✓' } },
              { id: 'call_t', name: 'clock__now', arguments: { city: 'Paris' } },
            ],
            interleave: true,
            argsChunkSize: 3,
          },
    );
    const first = await client.complete(req({}, { tools: [WEATHER, TIME] }), {});
    expect(first.finish_reason).toBe('tool_calls');
    expect(first.text).toBe('');
    expect(first.tool_calls).toEqual([
      { id: 'call_w', name: 'weather__forecast', arguments: { city: 'Paris', days: 2, note: 'a "quoted" ünïcode ✓' } },
      { id: 'call_t', name: 'clock__now', arguments: { city: 'Paris' } },
    ]);
    expect(fake.requests[0]!.body.tools).toEqual([
      { type: 'function', function: WEATHER },
      { type: 'function', function: TIME },
    ]);
    expect(fake.requests[0]!.body.tool_choice).toBe('auto');

    // The next round: the transcript the runtime sends back must be one OpenAI accepts (the fake validates it).
    const messages: ChatMessage[] = [
      ...HELLO,
      { role: 'assistant', content: null, tool_calls: first.tool_calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: JSON.stringify(c.arguments) } })) },
      { role: 'tool', tool_call_id: 'call_w', content: '21 °C' },
      { role: 'tool', tool_call_id: 'call_t', content: '10:00' },
    ];
    const second = await client.complete(req({}, { tools: [WEATHER, TIME], messages }), {});
    expect(second).toMatchObject({ text: 'Sunny and 10:00.', tool_calls: [], finish_reason: 'stop' });
  });

  it('estimates usage at 4 characters per token when the endpoint sends none', async () => {
    fake.enqueue({ text: 'x'.repeat(40), usage: false });
    const result = await client.complete(req(), {});
    expect(result.usage.estimated).toBe(true);
    expect(result.usage.completion_tokens).toBe(10);
    expect(result.usage.prompt_tokens).toBe(Math.ceil((16 + 4 + 6 + 4) / 4));
  });

  it('estimates usage when the endpoint reports numbers that are not counts (negative, fractional, not numbers)', async () => {
    const odd = [{ prompt_tokens: -1_000_000, completion_tokens: 5 }, { prompt_tokens: 3, completion_tokens: 1.5 }, { prompt_tokens: '7', completion_tokens: 2 }];
    for (const usage of odd) {
      fake.enqueue({ text: 'x'.repeat(40), usage: usage as unknown as { prompt_tokens: number; completion_tokens: number } });
      const result = await client.complete(req(), {});
      expect(result.usage).toEqual({ prompt_tokens: Math.ceil((16 + 4 + 6 + 4) / 4), completion_tokens: 10, estimated: true });
    }
  });

  it('accepts a JSON answer from a server that ignores stream, text and tool calls', async () => {
    fake.enqueue({ json: true, text: 'One moment.', toolCalls: [{ id: 'call_j', name: 'weather__forecast', arguments: '{"city":"Lviv"}' }], usage: { prompt_tokens: 30, completion_tokens: 12 } });
    const deltas: string[] = [];
    const result = await client.complete(req({}, { tools: [WEATHER] }), { onDelta: (t) => deltas.push(t) });
    expect(deltas).toEqual(['One moment.']);
    expect(result).toEqual({ text: 'One moment.', tool_calls: [{ id: 'call_j', name: 'weather__forecast', arguments: { city: 'Lviv' } }], finish_reason: 'tool_calls', usage: { prompt_tokens: 30, completion_tokens: 12, estimated: false } });
  });
});

describe('errors', () => {
  it.each([
    { status: 500, retryable: true, type: 'server_error' },
    { status: 503, retryable: true, type: 'server_error' },
    { status: 429, retryable: true, type: 'requests', code: 'rate_limit_exceeded' },
    { status: 400, retryable: false, type: 'invalid_request_error', code: 'context_length_exceeded' },
    { status: 404, retryable: false, type: 'invalid_request_error', code: 'model_not_found' },
  ])('HTTP $status → AGENT_MODEL_FAILED, retryable: $retryable, with the error body in details', async ({ status, retryable, type, code }) => {
    fake.enqueue({ kind: 'error', status, ...(code ? { code } : {}), message: `failure ${status}` });
    const err = await failure(client.complete(req(), {}));
    expect(err.code).toBe('AGENT_MODEL_FAILED');
    expect(err.retryable).toBe(retryable);
    expect(err.options.details).toMatchObject({ status, type, message: `failure ${status}`, ...(code ? { code } : {}) });
    expect(err.options.details?.over_quota).toBeUndefined();
    expect(err.message).toContain(`HTTP ${status}`);
  });

  it('reads Retry-After of a 429 into details.retry_after_ms', async () => {
    fake.enqueue({ kind: 'error', status: 429, headers: { 'retry-after': '2' } });
    const err = await failure(client.complete(req(), {}));
    expect(err.options.details).toMatchObject({ status: 429, retry_after_ms: 2000 });
  });

  it.each([
    ['HTTP 429 insufficient_quota', { kind: 'error' as const, status: 429, code: 'insufficient_quota' }],
    ['HTTP 402', { kind: 'error' as const, status: 402 }],
  ])('%s → AGENT_MODEL_FAILED over_quota, not retryable', async (_name, answer) => {
    fake.enqueue(answer);
    const err = await failure(client.complete(req(), {}));
    expect(err.code).toBe('AGENT_MODEL_FAILED');
    expect(err.retryable).toBe(false);
    expect(err.options.details).toMatchObject({ status: answer.status, over_quota: true });
  });

  it('never shows the API key, even when the endpoint echoes it', async () => {
    fake.enqueue({ kind: 'error', status: 401, code: 'invalid_api_key', message: `Incorrect API key provided: ${KEY}.` });
    const err = await failure(client.complete(req(), {}));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('Incorrect API key provided: [redacted]');
    // And a wrong key is refused by the endpoint (the key travels in the header only).
    const wrong = await failure(client.complete(req({}, { apiKey: 'sk-other' }), {}));
    expect(wrong.options.details).toMatchObject({ status: 401, code: 'invalid_api_key' });
    expect(fake.requests.every((r) => !r.raw.includes(KEY))).toBe(true);
  });

  it('a refused connection → AGENT_MODEL_FAILED retryable', async () => {
    const port = await closedPort();
    const err = await failure(client.complete(req({ base_url: `http://127.0.0.1:${port}/v1` }), {}));
    expect(err.code).toBe('AGENT_MODEL_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.options.details).toMatchObject({ reason: 'connection', code: 'ECONNREFUSED' });
  });

  it('a connection broken mid-stream → AGENT_MODEL_FAILED retryable, after the deltas that arrived', async () => {
    fake.enqueue({ kind: 'drop', text: 'Half an ans' });
    const deltas: string[] = [];
    const err = await failure(client.complete(req(), { onDelta: (t) => deltas.push(t) }));
    expect(err.code).toBe('AGENT_MODEL_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.options.details).toMatchObject({ reason: 'stream_broken' });
    expect(deltas.join('')).toBe('Half an ans');
  });

  it('a stream that ends cleanly before its finish → AGENT_MODEL_FAILED retryable', async () => {
    fake.enqueue({ kind: 'raw', body: 'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n' });
    const err = await failure(client.complete(req(), {}));
    expect(err).toMatchObject({ code: 'AGENT_MODEL_FAILED', retryable: true });
    expect(err.options.details).toMatchObject({ reason: 'stream_ended' });
  });

  it('an error event inside the stream → AGENT_MODEL_FAILED', async () => {
    fake.enqueue({ kind: 'raw', body: ['data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n', 'data: {"error":{"message":"CUDA out of memory","type":"server_error","code":null}}\n\n'] });
    const err = await failure(client.complete(req(), {}));
    expect(err).toMatchObject({ code: 'AGENT_MODEL_FAILED', retryable: true });
    expect(err.options.details).toMatchObject({ reason: 'stream_error', message: 'CUDA out of memory' });
  });
});

describe('malformed output', () => {
  it('a stream event that is not JSON → AGENT_MODEL_OUTPUT_INVALID', async () => {
    fake.enqueue({ kind: 'malformed' });
    const err = await failure(client.complete(req(), {}));
    expect(err.code).toBe('AGENT_MODEL_OUTPUT_INVALID');
  });

  it('an event without choices → AGENT_MODEL_OUTPUT_INVALID', async () => {
    fake.enqueue({ kind: 'raw', body: 'data: {"id":"x","object":"chat.completion.chunk"}\n\ndata: [DONE]\n\n' });
    const err = await failure(client.complete(req(), {}));
    expect(err.code).toBe('AGENT_MODEL_OUTPUT_INVALID');
    expect(err.message).toContain('without choices');
  });

  it('tool arguments that are not a JSON object → AGENT_MODEL_OUTPUT_INVALID naming the tool', async () => {
    fake.enqueue({ toolCalls: [{ name: 'weather__forecast', arguments: '{"city": "Par' }] });
    const err = await failure(client.complete(req({}, { tools: [WEATHER] }), {}));
    expect(err.code).toBe('AGENT_MODEL_OUTPUT_INVALID');
    expect(err.message).toContain('"weather__forecast"');
    expect(err.options.details).toMatchObject({ tool: 'weather__forecast', arguments: '{"city": "Par' });
  });

  it('a JSON answer without choices → AGENT_MODEL_OUTPUT_INVALID', async () => {
    fake.enqueue({ kind: 'raw', headers: { 'content-type': 'application/json' }, body: '{"id":"x","object":"chat.completion"}' });
    const err = await failure(client.complete(req(), {}));
    expect(err.code).toBe('AGENT_MODEL_OUTPUT_INVALID');
  });

  it('an answer longer than max(64 KiB, 16 × max_tokens) characters → AGENT_MODEL_OUTPUT_INVALID, reading stops', async () => {
    fake.enqueue({ kind: 'hang', text: 'x'.repeat(70_000) });
    const endless = await failure(client.complete(req({ max_tokens: 100, timeout_ms: 5000 }), {}));
    expect(endless).toMatchObject({ code: 'AGENT_MODEL_OUTPUT_INVALID' });
    expect(endless.options.details).toMatchObject({ limit: 64 * 1024 });
    await expect.poll(() => fake.requests[0]?.clientClosed).toBe(true);
    // Tool call arguments count too, and so does a JSON answer; a larger max_tokens allows a longer answer.
    const huge = JSON.stringify({ note: 'y'.repeat(70_000) });
    fake.enqueue({ toolCalls: [{ name: 'weather__forecast', arguments: huge }] }, { json: true, text: 'z'.repeat(70_000) });
    expect(await failure(client.complete(req({ max_tokens: 100 }, { tools: [WEATHER] }), {}))).toMatchObject({ code: 'AGENT_MODEL_OUTPUT_INVALID' });
    expect(await failure(client.complete(req({ max_tokens: 100 }), {}))).toMatchObject({ code: 'AGENT_MODEL_OUTPUT_INVALID' });
    fake.enqueue({ text: 'z'.repeat(70_000) });
    expect((await client.complete(req({ max_tokens: 8192 }), {})).text).toHaveLength(70_000);
  });
});

describe('timeouts and abort', () => {
  it('no first byte within first_byte_timeout_ms → AGENT_MODEL_TIMEOUT (first_byte), and the connection is closed', async () => {
    fake.enqueue({ text: 'late', firstByteDelayMs: 10_000 });
    const start = performance.now();
    const err = await failure(client.complete(req({ first_byte_timeout_ms: 150 }), {}));
    expect(performance.now() - start).toBeLessThan(2000);
    expect(err).toMatchObject({ code: 'AGENT_MODEL_TIMEOUT', retryable: true });
    expect(err.options.details).toMatchObject({ phase: 'first_byte', timeout_ms: 150 });
    await expect.poll(() => fake.requests[0]?.clientClosed).toBe(true);
  });

  it('an answer that never ends → AGENT_MODEL_TIMEOUT (total) after the deltas that arrived', async () => {
    fake.enqueue({ kind: 'hang', text: 'I am thinking' });
    const deltas: string[] = [];
    const err = await failure(client.complete(req({ first_byte_timeout_ms: 2000, timeout_ms: 300 }), { onDelta: (t) => deltas.push(t) }));
    expect(err).toMatchObject({ code: 'AGENT_MODEL_TIMEOUT' });
    expect(err.options.details).toMatchObject({ phase: 'total', timeout_ms: 300 });
    expect(deltas.join('')).toBe('I am thinking');
    await expect.poll(() => fake.requests[0]?.clientClosed).toBe(true);
  });

  it("the caller's abort stops the call at once with the caller's reason", async () => {
    fake.enqueue({ kind: 'hang', text: 'Never ending story' });
    const controller = new AbortController();
    const reason = new Error('the session is closing');
    let abortedAt = 0;
    const p = client.complete(req(), {
      signal: controller.signal,
      onDelta: () => {
        if (abortedAt > 0) return;
        abortedAt = performance.now();
        controller.abort(reason);
      },
    });
    await expect(p).rejects.toBe(reason);
    expect(performance.now() - abortedAt).toBeLessThan(100);
    await expect.poll(() => fake.requests[0]?.clientClosed).toBe(true);
    // Already aborted: no request at all.
    await expect(client.complete(req(), { signal: controller.signal })).rejects.toBe(reason);
    expect(fake.requests).toHaveLength(1);
  });
});
