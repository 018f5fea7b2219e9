/**
 * Issue 17 "kill -9 in the middle of a session and of a tool call: the session resumes from its transcript and no
 * effect runs twice" — a real `tessera start --headless` process, killed with SIGKILL and started again on the same
 * data folder; the model is the protocol-faithful fake OpenAI server on loopback; the tool is a real stdio MCP server
 * (test/fixtures/mcp/echo-server.mjs) whose `effect` tool applies an effect once per idempotency key, as a receiver of
 * an Idempotency-Key does, and notes every attempt.
 *
 * 1. Mid tool call: the model asks for `fixture__effect`; the effect is made and the tool holds its answer; the runtime
 *    is killed. After the restart the dangling call runs again with the SAME key (two attempts, one effect), the turn
 *    finishes, and the transcript holds the call and its result once.
 * 2. Mid answer: the model streams slowly; the runtime is killed between two tokens. After the restart the turn is
 *    finished by calling the model again: one user message, one answer, nothing doubled.
 * 3. The session goes on from its transcript: the next request to the model carries the whole conversation.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TranscriptEntry } from '../../main/runtime/agents/types.js';
import { cleanEnv, requireBuild, startTessera } from '../helpers/cli.js';
import type { StartedTessera } from '../helpers/cli.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import type { FakeOpenAi } from '../helpers/fake-openai.js';
import { tempDir } from '../helpers/tmp.js';

const ECHO_SERVER = resolve('test/fixtures/mcp/echo-server.mjs');

let fake: FakeOpenAi;
let dataDir: string;
let effectLog: string;
let tessera: StartedTessera;
let token: string;
let session: string;

const env = () => cleanEnv({ TESSERA_AGENT_MODEL_URL: fake.url, TESSERA_AGENT_MODEL: 'fake-model' });

async function api<T>(path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(tessera.origin + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as T };
}

const transcript = async () => (await api<{ entries: TranscriptEntry[] }>(`/api/agents/sessions/${session}/transcript`)).json.entries;
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { key: string }) : []);

/** SIGKILL, then the same command on the same data folder (the data-folder lock of a dead pid is taken over). */
async function killAndRestart(): Promise<void> {
  tessera.child.kill('SIGKILL');
  await tessera.exited;
  tessera = await startTessera(dataDir, [], env());
}

beforeAll(async () => {
  requireBuild();
  fake = await startFakeOpenAi();
  dataDir = tempDir('tessera-e2e-agent-crash-', 'file');
  effectLog = join(dataDir, 'effects.jsonl');
  const profiles = join(dataDir, 'agents', 'profiles');
  mkdirSync(profiles, { recursive: true });
  writeFileSync(
    join(profiles, 'booker.yaml'),
    [
      'type: booker',
      'title: Booker',
      'system_prompt: "You book things with the fixture tools."',
      'model: default',
      'degraded: fallback',
      'fallback: support',
      'mcp_servers:',
      `  - { name: fixture, transport: stdio, command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(ECHO_SERVER)}], env: { EFFECT_LOG: ${JSON.stringify(effectLog)} } }`,
      'meta: { roles: [operator], proposes: [] }',
      '',
    ].join('\n'),
  );
  tessera = await startTessera(dataDir, [], env());
  token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
  const opened = await api<{ id: string }>('/api/agents/sessions', { agent_type: 'booker' });
  expect(opened.status, JSON.stringify(opened.json)).toBe(201);
  session = opened.json.id;
}, 120_000);

afterAll(async () => {
  tessera?.child.kill('SIGINT');
  await tessera?.exited;
  await fake?.close();
}, 60_000);

describe('an agent session across kill -9', () => {
  it('1. killed in the middle of a tool call: the call runs again with the same key, the effect happens once', async () => {
    // The model asks for the effect, and answers once it has the tool's result.
    fake.respond((req) =>
      req.lastMessage?.role === 'tool'
        ? `Booked: ${String(req.lastMessage.content)}.`
        : { toolCalls: [{ name: 'fixture__effect', arguments: { value: 'table for two', hold_ms: 600_000 } }] },
    );
    // The turn never answers before the kill; its request fails when the process dies.
    const pending = api(`/api/agents/sessions/${session}/messages`, { text: 'book a table for two' }).catch(() => null);
    // The call is in the transcript (written before the tool runs) and the effect was made: the tool holds its answer.
    await expect.poll(async () => (await transcript()).some((e) => e.type === 'tool_call') && lines(effectLog).length === 1, { timeout: 30_000 }).toBe(true);
    await killAndRestart();
    await pending;

    // The restarted runtime finishes the turn by itself (recover at start), no message needed.
    await expect.poll(async () => (await transcript()).some((e) => e.type === 'turn_end'), { timeout: 30_000 }).toBe(true);
    const entries = await transcript();
    const calls = entries.filter((e): e is Extract<TranscriptEntry, { type: 'tool_call' }> => e.type === 'tool_call');
    const results = entries.filter((e): e is Extract<TranscriptEntry, { type: 'tool_result' }> => e.type === 'tool_result');
    expect(entries.filter((e) => e.type === 'user')).toHaveLength(1);
    expect(calls).toHaveLength(1);
    expect(results).toHaveLength(1);
    expect(results[0]!.call_id).toBe(calls[0]!.call.id);
    expect(results[0]!.content).toContain(`already done ${calls[0]!.idempotency_key}`);
    const answer = entries.filter((e) => e.type === 'assistant' && e.tool_calls.length === 0);
    expect(answer).toHaveLength(1);
    expect(entries.at(-1)).toMatchObject({ type: 'turn_end', outcome: 'completed' });

    // Two attempts with one key, one effect.
    const key = calls[0]!.idempotency_key;
    expect(lines(`${effectLog}.attempts`).map((l) => l.key)).toEqual([key, key]);
    expect(lines(effectLog).map((l) => l.key)).toEqual([key]);
  }, 120_000);

  it('2. killed in the middle of the model\'s answer: the turn is finished once after the restart', async () => {
    fake.reset();
    const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    fake.enqueue({ text: words, delayMs: 250 });
    const pending = api(`/api/agents/sessions/${session}/messages`, { text: 'tell me a slow story' }).catch(() => null);
    await fake.waitForRequests(1, 30_000);
    // The user's words are persisted before the model is called; the answer is being streamed.
    await expect.poll(async () => (await transcript()).some((e) => e.type === 'user' && e.text === 'tell me a slow story'), { timeout: 30_000 }).toBe(true);
    const before = (await transcript()).length;
    fake.respond(() => 'The end.');
    await killAndRestart();
    await pending;

    await expect.poll(async () => (await transcript()).filter((e) => e.type === 'turn_end').length, { timeout: 30_000 }).toBe(2);
    const turn = (await transcript()).slice(before - 1);
    expect(turn.map((e) => e.type)).toEqual(['user', 'assistant', 'turn_end']);
    expect(turn[1]).toMatchObject({ type: 'assistant', text: 'The end.', source: 'model' });
    // The model was asked again for the same turn: the second request ends with the same user message.
    expect(fake.requests.length).toBeGreaterThanOrEqual(2);
    expect(fake.requests.at(-1)!.lastMessage).toMatchObject({ role: 'user', content: 'tell me a slow story' });
  }, 120_000);

  it('3. the session goes on from its transcript: the model sees the whole conversation', async () => {
    fake.reset();
    fake.enqueue('We booked a table and told a story.');
    const said = await api<{ outcome: string; text: string }>(`/api/agents/sessions/${session}/messages`, { text: 'what did we do?' });
    expect(said.status).toBe(200);
    expect(said.json).toMatchObject({ outcome: 'completed', text: 'We booked a table and told a story.' });
    const sent = fake.requests[0]!.body.messages!.map((m) => `${m.role}:${m.content ?? (m.tool_calls ? 'tool_calls' : '')}`);
    expect(sent).toEqual(expect.arrayContaining(['user:book a table for two', 'assistant:tool_calls', 'user:tell me a slow story', 'assistant:The end.', 'user:what did we do?']));
    // The tool's result is in the history once, answering the call.
    expect(fake.requests[0]!.body.messages!.filter((m) => m.role === 'tool')).toHaveLength(1);
  }, 60_000);
});
