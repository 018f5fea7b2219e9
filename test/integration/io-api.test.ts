/**
 * I/O routes over real HTTP and WebSocket on 127.0.0.1 (issue 6 points 1, 6, 7), with a runtime whose voice is
 * off (the state of a machine without speech engines): status with the reason, text input, sends, the inbox,
 * and the `/ws/io` dialogue socket with its validation of control messages and audio frames.
 */
import type { FastifyInstance } from 'fastify';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createHttpServer } from '../../main/host/http/server.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 't'.repeat(43);
let runtime: Runtime;
let server: FastifyInstance;
let origin: string;

beforeAll(async () => {
  const dir = tempDir('tessera-io-api-', 'file');
  runtime = await createRuntime({ dataDir: join(dir, 'data'), shell: 'headless', logger: createMemoryLogger(), voice: false, intentRuleFiles: [new URL('../../resources/intents/en.yaml', import.meta.url).pathname], scenarioDirs: [new URL('../../resources/scenarios', import.meta.url).pathname], builtinTrustDir: new URL('../../resources/trust', import.meta.url).pathname });
  server = await createHttpServer({ runtime, token: TOKEN, logger: createMemoryLogger() });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address() as { port: number };
  origin = `http://127.0.0.1:${address.port}`;
}, 60_000);

afterAll(async () => {
  await server?.close();
  await runtime?.close();
});

const api = async (method: string, path: string, body?: unknown, token = TOKEN) => {
  const res = await fetch(origin + path, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

interface Socket {
  ws: WebSocket;
  messages: Array<Record<string, unknown>>;
  next(type: string): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

async function dialogue(protocols?: string[]): Promise<Socket> {
  const url = origin.replace('http', 'ws') + '/ws/io';
  const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  const messages: Array<Record<string, unknown>> = [];
  const waiting: Array<{ type: string; resolve: (m: Record<string, unknown>) => void }> = [];
  let seen = 0;
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as Record<string, unknown>;
    messages.push(m);
    const i = waiting.findIndex((w) => w.type === m['type']);
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(m);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    next(type) {
      const found = messages.slice(seen).find((m) => m['type'] === type);
      if (found) {
        seen = messages.indexOf(found) + 1;
        return Promise.resolve(found);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${type} message; got ${JSON.stringify(messages)}`)), 5000);
        waiting.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            seen = messages.indexOf(m) + 1;
            resolve(m);
          },
        });
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close();
      }),
  };
}

describe('I/O API', () => {
  it('reports the channels, why voice is off, the locks and the open questions; refuses without the token', async () => {
    expect((await api('GET', '/api/io/status', undefined, 'wrong')).status).toBe(401);
    const { status, body } = await api('GET', '/api/io/status');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      voice_enabled: false,
      voice_disabled_reason: expect.stringContaining('turned off'),
      defaults: { in: ['voice', 'text'], out: ['voice', 'ui'] },
      out: { console: { available: true }, ui: { available: false, reason: 'no UI is connected' }, voice: { available: false }, 'inbox.local': { available: true } },
      in: { text: { available: true }, voice: { available: false } },
      ui_clients: 0,
      questions: [],
      locks: { holders: [], waiters: [] },
      sessions: { open: 0, idle_reset_ms: 120_000 },
    });
  });

  it('validates input and answers a question by run and step, or says which is not waiting', async () => {
    expect(await api('POST', '/api/io/input', {})).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/io/input', { text: 'hi', extra: 1 })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/io/input', { text: 'x'.repeat(2001) })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/io/input', { text: 'hi', run_id: 'r' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/io/input', { text: 'Ada', run_id: 'nope', step: 'ask' })).toMatchObject({ status: 404, body: { error: { code: 'IO_ASK_NOT_FOUND' } } });

    runtime.scenarios.register(scenario('api_ask', [{ name: 'ask', action: 'io.ask', with: { prompt: 'Name?' }, output: 'name' }]));
    const runId = runtime.scenarios.run('api_ask');
    await waitFor(async () => ((await api('GET', '/api/io/status')).body['questions'] as unknown[]).length === 1);
    expect((await api('GET', '/api/io/status')).body['questions']).toEqual([expect.objectContaining({ run_id: runId, step: 'ask', prompt: 'Name?' })]);
    const answered = await api('POST', '/api/io/input', { text: 'Ada', run_id: runId, step: 'ask' });
    expect(answered).toEqual({ status: 200, body: { kind: 'answer', text: 'Ada', channel: 'text', run_id: runId, step: 'ask' } });
    expect((await runtime.scenarios.wait(runId, 5000)).bag).toEqual({ name: 'Ada' });
    expect(await api('POST', '/api/io/input', { text: 'tell me a joke' })).toMatchObject({ status: 200, body: { kind: 'unrecognized', text: 'tell me a joke' } });
    // Understood, but no journey is loaded: the speaker is told so in plain words, not a 400 with the scenario's schema.
    const early = await api('POST', '/api/io/input', { text: "what's next?" });
    expect(early).toMatchObject({ status: 200, body: { kind: 'intent', intent: 'journey.next_step', run_id: expect.any(String) } });
    await expect
      .poll(async () => ((await api('GET', '/api/io/inbox')).body['messages'] as Array<{ text: string }>).map((m) => m.text))
      .toContain('You have no journey yet: buy a pass and start it on the Guide tab.');
  });

  it('sends, inboxes what no channel takes, lists and acknowledges the inbox', async () => {
    const sent = await api('POST', '/api/io/send', { text: 'Kiosk closes at six.', channel: ['ui', 'voice'] });
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ state: 'inboxed', text: 'Kiosk closes at six.', delivered_to: [], reasons: { ui: 'no UI is connected', voice: expect.any(String) } });
    expect(await api('POST', '/api/io/send', { text: 'x', channel: 'Bad Channel' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect((await api('POST', '/api/io/send', { text: 'to the log', channel: 'console' })).body).toMatchObject({ state: 'delivered', delivered_to: ['console'] });

    const inbox = await api('GET', '/api/io/inbox');
    const ids = (inbox.body['messages'] as Array<{ id: number; text: string }>).map((m) => m.id);
    expect(ids).toContain(sent.body['id']);
    expect(await api('GET', '/api/io/inbox?limit=0')).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/io/inbox/ack', { ids: [] })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/io/inbox/ack', { ids: [sent.body['id'], 987654] })).toEqual({ status: 200, body: { acked: [sent.body['id']] } });
    expect(((await api('GET', '/api/io/inbox')).body['messages'] as Array<{ id: number }>).map((m) => m.id)).not.toContain(sent.body['id']);
    expect(((await api('GET', '/api/io/inbox?include_acked=true')).body['messages'] as Array<{ id: number; acked_at: string }>).find((m) => m.id === sent.body['id'])?.acked_at).toEqual(expect.any(String));
  });

  it('joins the ui channel while a dialogue socket is open, with the token as header or as subprotocol', async () => {
    const refused = new WebSocket(origin.replace('http', 'ws') + '/ws/io', ['tessera.v1']);
    expect(await new Promise<number>((resolve) => refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))).toBe(401);

    const a = await dialogue();
    expect(await a.next('hello')).toEqual({ type: 'hello', voice_enabled: false, voice_disabled_reason: expect.stringContaining('turned off'), session: null, idle_reset_ms: 120_000 });
    const b = await dialogue(['tessera.v1', `tessera.bearer.${TOKEN}`]);
    await b.next('hello');
    expect((await api('GET', '/api/io/status')).body['ui_clients']).toBe(2);
    const sent = await api('POST', '/api/io/send', { text: 'Welcome!', channel: 'ui' });
    expect(sent.body).toMatchObject({ state: 'delivered', delivered_to: ['ui'] });
    expect(await a.next('say')).toEqual({ type: 'say', message: { id: sent.body['id'], run_id: null, text: 'Welcome!' } });
    expect(await b.next('say')).toMatchObject({ message: { text: 'Welcome!' } });
    await a.close();
    await b.close();
    await waitFor(async () => (await api('GET', '/api/io/status')).body['ui_clients'] === 0);
    expect((await api('POST', '/api/io/send', { text: 'Anyone?', channel: 'ui' })).body).toMatchObject({ state: 'inboxed' });
  });

  it('gives each traveller a dialogue session: their words and answers stay in it, and the next traveller ends it', async () => {
    expect(await api('POST', '/api/io/session', { end: 'nope' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/io/session', { extra: 1 })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    const first = await api('POST', '/api/io/session', {});
    expect(first).toMatchObject({ status: 200, body: { session: { id: expect.stringMatching(/^ses_/), started_at: expect.any(String), ended_at: null }, ended: null } });
    const a = (first.body['session'] as { id: string }).id;
    const kiosk = await dialogue();
    await kiosk.next('hello');
    kiosk.ws.send(JSON.stringify({ type: 'join', session: a }));
    expect(await kiosk.next('joined')).toEqual({ type: 'joined', session: a });
    const other = await dialogue();
    await other.next('hello');

    const greeting = await api('POST', '/api/io/input', { text: 'hello', session: a });
    expect(greeting).toMatchObject({ status: 200, body: { kind: 'intent', intent: 'greet', session: a } });
    expect(await kiosk.next('ask')).toMatchObject({ question: { prompt: 'Hi! What should I call you?', session: a } });
    expect((await api('GET', '/api/io/status')).body['questions']).toEqual([expect.objectContaining({ session: a, prompt: 'Hi! What should I call you?' })]);
    // Words without a session do not answer a traveller's question.
    expect((await api('POST', '/api/io/input', { text: 'Mallory' })).body).toMatchObject({ kind: 'unrecognized' });

    const next = await api('POST', '/api/io/session', { end: a });
    expect(next.body).toMatchObject({ ended: { id: a, reason: 'new_traveller' } });
    expect(await kiosk.next('session.ended')).toEqual({ type: 'session.ended', session: a, reason: 'new_traveller' });
    expect(await api('POST', '/api/io/input', { text: 'Ada', session: a })).toMatchObject({ status: 409, body: { error: { code: 'IO_SESSION_ENDED' } } });
    const b = (next.body['session'] as { id: string }).id;
    kiosk.ws.send(JSON.stringify({ type: 'join', session: a }));
    expect(await kiosk.next('session.ended')).toEqual({ type: 'session.ended', session: a, reason: 'new_traveller' });
    kiosk.ws.send(JSON.stringify({ type: 'join', session: b }));
    await kiosk.next('joined');
    const run = (greeting.body as { run_id: string }).run_id;
    expect((await runtime.scenarios.wait(run, 5000)).bag).toEqual({ answer: null });
    expect(await api('POST', '/api/io/input', { text: 'set a timer for 3 minutes', session: b })).toMatchObject({ status: 200, body: { kind: 'intent', session: b } });
    expect(await kiosk.next('say')).toMatchObject({ message: { text: 'Timer set for 3 minutes.', session: b } });
    // The socket that joined no session saw none of the travellers' dialogue (only the answer to words of no session).
    expect(other.messages.filter((m) => m['type'] === 'say' || m['type'] === 'ask').map((m) => (m['message'] as { text: string }).text)).toEqual(['Sorry, I did not understand "Mallory".']);
    runtime.scenarios.cancel(runtime.scenarios.runs({ scenario_id: 'set_timer', state: 'running' })[0]!.run_id);
    await kiosk.close();
    await other.close();
  });

  it('validates control messages and audio frames, and says why it cannot listen when voice is off', async () => {
    const s = await dialogue();
    await s.next('hello');
    s.ws.send('not json');
    expect(await s.next('error')).toMatchObject({ error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('JSON') } });
    s.ws.send(Buffer.alloc(640));
    expect(await s.next('error')).toMatchObject({ error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('audio.start') } });
    s.ws.send(JSON.stringify({ type: 'audio.start', sample_rate: 4000 }));
    expect(await s.next('error')).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    s.ws.send(JSON.stringify({ type: 'audio.start', sample_rate: 16000, run_id: 'r' }));
    expect(await s.next('error')).toMatchObject({ error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('both run_id and step') } });
    s.ws.send(JSON.stringify({ type: 'ping' }));
    expect(await s.next('pong')).toEqual({ type: 'pong' });
    s.ws.send(JSON.stringify({ type: 'audio.start', sample_rate: 16000 }));
    expect(await s.next('error')).toMatchObject({ error: { code: 'VOICE_UNAVAILABLE', message: expect.stringContaining('turned off') } });
    await s.close();
  });
});

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
