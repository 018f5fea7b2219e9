/**
 * Agents over real HTTP and WebSocket on 127.0.0.1 (issue 17; README "Agents"): a real headless host with the real
 * orchestrator and agent runtime on the device's SQLite, the shipped agent profiles (rule-based: no device model)
 * and two test profiles in `<data>/agents/profiles` whose model is the protocol-faithful fake OpenAI server (the only
 * fake: no model can be downloaded here). Who may reach what, one session's life over the routes, bad input and the
 * error shape, the session room (seq order, a client leaving mid-turn, catching up with `after`), and the CLI.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AgentEvent, SessionInfo, TranscriptEntry, TurnResult } from '../../main/runtime/agents/types.js';
import type { AgentSummary, ProposalView } from '../../main/runtime/orchestrator/types.js';
import { runCli } from '../../main/host/cli.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import type { FakeOpenAi } from '../helpers/fake-openai.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;
let fake: FakeOpenAi;
let operator: string;
let traveller: string;
let staff: string;

/** A profile of the operator's own (`<data>/agents/profiles`), backed by the fake model. */
function testProfile(type: string, baseUrl: string, sessionBudget: string): string {
  return [
    `type: ${type}`,
    `title: ${type}`,
    'system_prompt: You answer in one sentence. Session {{SESSION_ID}}.',
    `model: { base_url: "${baseUrl}", model: fake-model }`,
    'mcp_servers: []',
    'budgets:',
    `  session: ${sessionBudget}`,
    'degraded: fallback',
    'fallback: support',
    'meta: { roles: [traveller, operator], proposes: [] }',
    '',
  ].join('\n');
}

beforeAll(async () => {
  fake = await startFakeOpenAi();
  const dataDir = tempDir('tessera-agents-http-', 'file');
  mkdirSync(join(dataDir, 'agents', 'profiles'), { recursive: true });
  writeFileSync(join(dataDir, 'agents', 'profiles', 'chat-test.yaml'), testProfile('chat-test', fake.url, '{ tokens: 1000000, model_calls: 100 }'));
  writeFileSync(join(dataDir, 'agents', 'profiles', 'tiny-test.yaml'), testProfile('tiny-test', fake.url, '{ model_calls: 1 }'));
  writeFileSync(
    join(dataDir, 'agents', 'profiles', 'propose-test.yaml'),
    testProfile('propose-test', fake.url, '{ model_calls: 10 }')
      .replace('mcp_servers: []', 'mcp_servers: [{ name: tessera, transport: in-process, factory: tessera, options: { tools: [propose] } }]')
      .replace('proposes: []', 'proposes: [journey.skip]'),
  );
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {}, pluginDirs: [] });
  operator = host.token;
  traveller = host.credentials.roleToken('traveller');
  staff = host.credentials.roleToken('staff');
}, 60_000);
afterAll(async () => {
  await host?.close();
  await fake?.close();
});

interface Answer<T> { status: number; body: T }
type ErrorBody = { error: { code: string; message: string; details?: Record<string, unknown> } };

async function call<T = Record<string, unknown>>(token: string | null, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<Answer<T>> {
  const res = await fetch(host.origin + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

const open = async (token: string, agent_type: string): Promise<SessionInfo> => {
  const res = await call<SessionInfo>(token, 'POST', '/api/agents/sessions', { agent_type });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
};

const expectError = (res: Answer<unknown>, status: number, code: string) => expect([res.status, (res.body as ErrorBody).error?.code], JSON.stringify(res.body)).toEqual([status, code]);

type Frame = { type: 'hello'; v: number; session: string; gap: boolean } | { type: 'event'; event: AgentEvent } | { type: 'pong' } | { type: 'error'; error: { code: string; message: string } };

/** A client of a session's room that records every frame and can wait for one. */
interface Room {
  frames: Frame[];
  events(): AgentEvent[];
  until(predicate: (frames: Frame[]) => boolean, what: string): Promise<void>;
  /** Resolves with the close code. */
  closed: Promise<number>;
  socket: WebSocket;
}

function room(token: string, session: string, after?: number): Promise<Room> {
  const socket = new WebSocket(`${host.origin.replace('http', 'ws')}/ws/agents/${encodeURIComponent(session)}${after === undefined ? '' : `?after=${after}`}`, ['tessera.v1'], { headers: { authorization: `Bearer ${token}` } });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (data) => {
    frames.push(JSON.parse(String(data)) as Frame);
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  const r: Room = {
    frames,
    socket,
    closed,
    events: () => frames.flatMap((f) => (f.type === 'event' ? [f.event] : [])),
    until: (predicate, what) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(frames)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        // A ceiling for a loaded machine, not an expected duration.
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`room: no ${what} in time; frames: ${JSON.stringify(frames).slice(0, 2000)}`));
        }, 15_000);
        waiters.add(check);
        check();
      }),
  };
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(r));
    socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    socket.once('error', reject);
  });
}

/** The status a WebSocket upgrade to the room gets (101 when it opened). */
function upgradeStatus(token: string | null, session: string): Promise<number> {
  const socket = new WebSocket(`${host.origin.replace('http', 'ws')}/ws/agents/${session}`, ['tessera.v1'], token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return new Promise((resolve) => {
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      socket.terminate();
    });
    socket.once('error', () => undefined);
  });
}

/** Waits until `condition` holds, asking again every 50 ms (a ceiling of 15 s for a loaded machine). */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Seqs increase by one, from `first`. */
function expectContiguous(events: AgentEvent[], first: number): void {
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => first + i));
}

describe('who may reach the agents', () => {
  it('lists the guide to a traveller but not Ops/SLO, everything to the operator, nothing to staff or without a token', async () => {
    const forTraveller = await call<{ agents: AgentSummary[] }>(traveller, 'GET', '/api/agents');
    expect(forTraveller.status).toBe(200);
    const types = forTraveller.body.agents.map((a) => a.type);
    expect(types).toContain('journey-guide');
    expect(types).not.toContain('ops-slo');
    const guide = forTraveller.body.agents.find((a) => a.type === 'journey-guide')!;
    // No device model here: the guide answers from its rules.
    expect(guide).toMatchObject({ model: false, degraded: true, enabled: true, roles: expect.arrayContaining(['traveller']) });
    expect((await call<{ agents: AgentSummary[] }>(operator, 'GET', '/api/agents')).body.agents.map((a) => a.type)).toEqual(expect.arrayContaining(['journey-guide', 'ops-slo', 'chat-test']));
    expectError(await call(staff, 'GET', '/api/agents'), 403, 'FORBIDDEN');
    expectError(await call(null, 'GET', '/api/agents'), 401, 'UNAUTHORIZED');
    expectError(await call(staff, 'POST', '/api/agents/sessions', { agent_type: 'journey-guide' }), 403, 'FORBIDDEN');
  });

  it('lets a traveller open the guide but not Ops/SLO; an unknown agent is AGENT_PROFILE_INVALID', async () => {
    const guide = await open(traveller, 'journey-guide');
    expect(guide).toMatchObject({ agent_type: 'journey-guide', owner: 'traveller', state: 'idle' });
    expectError(await call(traveller, 'POST', '/api/agents/sessions', { agent_type: 'ops-slo' }), 403, 'FORBIDDEN');
    expect((await call(operator, 'POST', '/api/agents/sessions', { agent_type: 'ops-slo' })).status).toBe(201);
    expectError(await call(operator, 'POST', '/api/agents/sessions', { agent_type: 'no-such-agent' }), 400, 'AGENT_PROFILE_INVALID');
  });

  it("keeps an operator's session from a traveller: not readable, not talkable, not watchable", async () => {
    const ops = await open(operator, 'support');
    expectError(await call(traveller, 'GET', `/api/agents/sessions/${ops.id}`), 403, 'FORBIDDEN');
    expectError(await call(traveller, 'POST', `/api/agents/sessions/${ops.id}/messages`, { text: 'hello' }), 403, 'FORBIDDEN');
    expect((await call<{ sessions: SessionInfo[] }>(traveller, 'GET', '/api/agents/sessions')).body.sessions.map((s) => s.id)).not.toContain(ops.id);
    expect((await call<{ sessions: SessionInfo[] }>(operator, 'GET', '/api/agents/sessions')).body.sessions.map((s) => s.id)).toContain(ops.id);

    const watcher = await room(traveller, ops.id);
    expect(await watcher.closed).toBe(1008);
    expect(watcher.frames).toEqual([{ type: 'error', error: expect.objectContaining({ code: 'FORBIDDEN' }) }]);
    const nowhere = await room(operator, 'ags-no-such-session');
    expect(await nowhere.closed).toBe(1008);
    expect(nowhere.frames).toEqual([{ type: 'error', error: expect.objectContaining({ code: 'AGENT_SESSION_NOT_FOUND' }) }]);
    expect(await upgradeStatus(staff, ops.id)).toBe(403);
    expect(await upgradeStatus(null, ops.id)).toBe(401);
    expect(await upgradeStatus(operator, `${ops.id}?after=-1`)).toBe(400);
  });
});

describe('a session over the routes', () => {
  it('a traveller talks to the rule-based guide, reads its transcript and budgets, and closes it', async () => {
    const s = await open(traveller, 'journey-guide');
    const turn = await call<TurnResult & { proposals: ProposalView[] }>(traveller, 'POST', `/api/agents/sessions/${s.id}/messages`, { text: 'What is next?' });
    expect(turn.status, JSON.stringify(turn.body)).toBe(200);
    expect(turn.body).toMatchObject({ outcome: 'completed', source: 'fallback', proposals: [] });
    expect(turn.body.text.length).toBeGreaterThan(0);

    const transcript = await call<{ entries: TranscriptEntry[] }>(traveller, 'GET', `/api/agents/sessions/${s.id}/transcript`);
    // The guide's rules look the journey up with its tools before answering.
    const kinds = transcript.body.entries.map((e) => e.type);
    expect([kinds[0], ...kinds.slice(-2)]).toEqual(['user', 'assistant', 'turn_end']);
    expect(transcript.body.entries.map((e) => e.seq)).toEqual(kinds.map((_, i) => i + 1));
    expect(transcript.body.entries[0]).toMatchObject({ type: 'user', text: 'What is next?', seq: 1 });
    expect((await call<{ entries: TranscriptEntry[] }>(traveller, 'GET', `/api/agents/sessions/${s.id}/transcript?after=1&limit=1`)).body.entries.map((e) => e.seq)).toEqual([2]);

    const budgets = await call<{ session: { limit: Record<string, number>; used: Record<string, number> }; day: { date: string } }>(traveller, 'GET', `/api/agents/sessions/${s.id}/budgets`);
    expect(budgets.status).toBe(200);
    expect(budgets.body.session.used).toMatchObject({ model_calls: 0 });
    expect(budgets.body.session.limit['tokens']).toBeGreaterThan(0);
    expect(budgets.body.day.date).toBe(new Date().toISOString().slice(0, 10));

    const closed = await call<SessionInfo>(traveller, 'DELETE', `/api/agents/sessions/${s.id}`);
    expect([closed.status, closed.body.state]).toEqual([200, 'closed']);
    expect((await call<SessionInfo>(traveller, 'DELETE', `/api/agents/sessions/${s.id}`)).body.state).toBe('closed');
    expectError(await call(traveller, 'POST', `/api/agents/sessions/${s.id}/messages`, { text: 'Hello?' }), 409, 'AGENT_SESSION_CLOSED');
  });

  it('refuses bad input with the one error shape', async () => {
    const s = await open(operator, 'support');
    const say = (body: unknown) => call(operator, 'POST', `/api/agents/sessions/${s.id}/messages`, body);
    expectError(await say({ text: '' }), 400, 'VALIDATION_FAILED');
    expectError(await say({ text: '  \n\t ' }), 400, 'VALIDATION_FAILED');
    expectError(await say({ text: 'x'.repeat(4001) }), 400, 'VALIDATION_FAILED');
    expectError(await say({ text: 'hi', extra: true }), 400, 'VALIDATION_FAILED');
    expectError(await say({ text: 42 }), 400, 'VALIDATION_FAILED');
    expectError(await call(operator, 'POST', '/api/agents/sessions/ags-unknown/messages', { text: 'hi' }), 404, 'AGENT_SESSION_NOT_FOUND');
    expectError(await call(operator, 'GET', '/api/agents/sessions/ags-unknown'), 404, 'AGENT_SESSION_NOT_FOUND');
    expectError(await call(operator, 'GET', `/api/agents/sessions/${encodeURIComponent('a b')}`), 400, 'VALIDATION_FAILED');
    expectError(await call(operator, 'POST', '/api/agents/sessions', { agent_type: 'Journey Guide' }), 400, 'VALIDATION_FAILED');
    expectError(await call(operator, 'POST', '/api/agents/sessions', { agent_type: 'support', metadata: 'x' }), 400, 'VALIDATION_FAILED');
    // A journey id is an id, and a traveller's names a journey of this device.
    expectError(await call(traveller, 'POST', '/api/agents/sessions', { agent_type: 'journey-guide', metadata: { journey_id: 'jny_1"; $(cat ~/.tessera/api-token) #' } }), 400, 'VALIDATION_FAILED');
    expectError(await call(traveller, 'POST', '/api/agents/sessions', { agent_type: 'journey-guide', metadata: { journey_id: 'jny_nowhere' } }), 403, 'FORBIDDEN');
    expectError(await call(operator, 'GET', `/api/agents/sessions/${s.id}/transcript?limit=0`), 400, 'VALIDATION_FAILED');
    expectError(await call(operator, 'POST', `/api/agents/sessions/${s.id}/resume`, { extend: { tokens: -5 } }), 400, 'VALIDATION_FAILED');
    expectError(await call(operator, 'GET', '/api/agents/proposals/not-a-cid'), 400, 'VALIDATION_FAILED');
    expectError(await call(operator, 'GET', `/api/agents/proposals/b3:${'0'.repeat(64)}`), 404, 'AGENT_PROPOSAL_NOT_FOUND');
    expectError(await call(operator, 'POST', `/api/agents/proposals/b3:${'0'.repeat(64)}/approve`), 404, 'AGENT_PROPOSAL_NOT_FOUND');
    expect((await call<{ proposals: ProposalView[] }>(traveller, 'GET', '/api/agents/proposals')).status).toBe(200);
  });

  it('pauses a model-backed session at its budget and lets only an operator resume it with more', async () => {
    const s = await open(traveller, 'tiny-test');
    fake.enqueue('First answer.');
    const first = await call<TurnResult>(traveller, 'POST', `/api/agents/sessions/${s.id}/messages`, { text: 'One' });
    expect(first.body).toMatchObject({ outcome: 'completed', source: 'model', text: 'First answer.' });
    const second = await call<TurnResult>(traveller, 'POST', `/api/agents/sessions/${s.id}/messages`, { text: 'Two' });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ outcome: 'paused', pause: { budget: 'model_calls', scope: 'session' } });
    expect((await call<SessionInfo>(traveller, 'GET', `/api/agents/sessions/${s.id}`)).body.state).toBe('paused');
    const busy = await call<ErrorBody>(traveller, 'POST', `/api/agents/sessions/${s.id}/messages`, { text: 'Three' });
    expectError(busy, 409, 'AGENT_SESSION_PAUSED');
    expectError(await call(traveller, 'POST', `/api/agents/sessions/${s.id}/resume`, { extend: { model_calls: 5 } }), 403, 'FORBIDDEN');
    fake.enqueue('Second answer.');
    const resumed = await call<SessionInfo>(operator, 'POST', `/api/agents/sessions/${s.id}/resume`, { extend: { model_calls: 5 } });
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    expect(resumed.body.state).not.toBe('paused');
    // The pending turn goes on with the raised budget: its answer is the one the model was given for it.
    await eventually(async () => (await call<{ entries: TranscriptEntry[] }>(operator, 'GET', `/api/agents/sessions/${s.id}/transcript`)).body.entries.some((e) => e.type === 'assistant' && e.text === 'Second answer.'), 'the resumed turn\'s answer');
  });
});

describe('proposals over the routes', () => {
  it("shows a session's proposal to its owner and the operator only, and refuses a decision on a decided one", async () => {
    // An operator's session may name a journey this device does not hold (only a traveller's is checked).
    const opened = await call<SessionInfo>(operator, 'POST', '/api/agents/sessions', { agent_type: 'propose-test', metadata: { journey_id: 'jny_nowhere' } });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const s = opened.body;
    fake.enqueue({ toolCalls: [{ name: 'tessera__propose', arguments: { action: 'journey.skip', args: { journey: 'jny_nowhere', node: 'museum' }, reason: 'It is closed today.' } }] });
    fake.enqueue('I proposed skipping the museum.');
    const turn = await call<TurnResult & { proposals: ProposalView[] }>(operator, 'POST', `/api/agents/sessions/${s.id}/messages`, { text: 'Skip the museum.' });
    expect(turn.body).toMatchObject({ outcome: 'completed', text: 'I proposed skipping the museum.' });
    expect(turn.body.proposals).toHaveLength(1);
    const proposal = turn.body.proposals[0]!;
    // No policy plugin is loaded in this host: the proposal fails closed.
    expect(proposal).toMatchObject({ action: 'journey.skip', agent: { session: s.id, type: 'propose-test' }, owner: 'operator', state: 'refused' });

    const listed = await call<{ proposals: ProposalView[] }>(operator, 'GET', `/api/agents/proposals?session=${s.id}`);
    expect(listed.body.proposals.map((p) => p.id)).toEqual([proposal.id]);
    expect((await call<ProposalView>(operator, 'GET', `/api/agents/proposals/${proposal.id}`)).body).toMatchObject({ id: proposal.id, capsule: proposal.capsule, state: 'refused' });
    expectError(await call(operator, 'POST', `/api/agents/proposals/${proposal.id}/approve`), 409, 'AGENT_PROPOSAL_DECIDED');

    expectError(await call(traveller, 'GET', `/api/agents/proposals/${proposal.id}`), 404, 'AGENT_PROPOSAL_NOT_FOUND');
    expectError(await call(traveller, 'POST', `/api/agents/proposals/${proposal.id}/reject`), 404, 'AGENT_PROPOSAL_NOT_FOUND');
    expect((await call<{ proposals: ProposalView[] }>(traveller, 'GET', '/api/agents/proposals')).body.proposals.map((p) => p.id)).not.toContain(proposal.id);
  });
});

describe('the session room', () => {
  it('streams a model turn with increasing seq; a client that leaves mid-turn does not stop it and gets exactly what it missed with after=N', async () => {
    const s = await open(operator, 'chat-test');
    const words = Array.from({ length: 24 }, (_, i) => `word${i + 1}`);
    fake.enqueue({ text: words.join(' '), delayMs: 25 });

    const first = await room(operator, s.id, 0);
    await first.until((f) => f[0]?.type === 'hello', 'hello');
    expect(first.frames[0]).toEqual({ type: 'hello', v: 1, session: s.id, gap: false });
    const turn = call<TurnResult>(operator, 'POST', `/api/agents/sessions/${s.id}/messages`, { text: 'Count for me.' });
    await first.until(() => first.events().filter((e) => e.type === 'message.delta').length >= 3, 'three deltas');
    first.socket.close();
    await first.closed;
    const seen = first.events();
    expectContiguous(seen, seen[0]!.seq);
    expect(seen.every((e) => e.v === 1 && e.session === s.id)).toBe(true);
    const last = seen.at(-1)!.seq;

    // The turn goes on without the client.
    const result = await turn;
    expect(result.body).toMatchObject({ outcome: 'completed', source: 'model', text: words.join(' ') });

    const second = await room(operator, s.id, last);
    await second.until(() => second.events().some((e) => e.type === 'turn.completed'), 'turn.completed');
    // A ping is answered after the room's replay: every event it had is in by the pong.
    second.socket.send(JSON.stringify({ type: 'ping' }));
    await second.until((f) => f.some((x) => x.type === 'pong'), 'pong');
    expect(second.frames[0]).toEqual({ type: 'hello', v: 1, session: s.id, gap: false });
    const missed = second.events();
    expectContiguous(missed, last + 1);
    const all = [...seen, ...missed];
    const deltas = all.filter((e) => e.type === 'message.delta').map((e) => e.data['text']).join('');
    expect(deltas).toBe(words.join(' '));
    const assistant = all.find((e) => e.type === 'message.assistant')!;
    expect((assistant.data['entry'] as { text: string }).text).toBe(words.join(' '));
    expect(all.find((e) => e.type === 'turn.started')!.trace_id).toBe(result.body.trace_id);
    second.socket.close();

    // From the start: the same events again, numbered the same.
    const third = await room(operator, s.id, 0);
    third.socket.send(JSON.stringify({ type: 'ping' }));
    await third.until((f) => f.some((x) => x.type === 'pong'), 'pong');
    const replayed = third.events().filter((e) => e.seq >= seen[0]!.seq);
    expect(replayed.map((e) => [e.seq, e.type])).toEqual(all.map((e) => [e.seq, e.type]));
    third.socket.send('not json');
    await third.until((f) => f.some((x) => x.type === 'error'), 'error frame');
    expect(third.socket.readyState).toBe(WebSocket.OPEN);
    third.socket.close();
  });
});

describe('the session room when the buffer no longer reaches back', () => {
  it('says gap: true and sends what it still holds, contiguous to the end', async () => {
    const s = await open(operator, 'chat-test');
    // More pieces than a room keeps (1000 events): the first events of the session fall out of the buffer.
    fake.enqueue({ chunks: Array.from({ length: 1100 }, (_, i) => `p${i} `) });
    expect((await call<TurnResult>(operator, 'POST', `/api/agents/sessions/${s.id}/messages`, { text: 'Talk a lot.' })).body.outcome).toBe('completed');
    const late = await room(operator, s.id, 1);
    late.socket.send(JSON.stringify({ type: 'ping' }));
    await late.until((f) => f.some((x) => x.type === 'pong'), 'pong');
    expect(late.frames[0]).toEqual({ type: 'hello', v: 1, session: s.id, gap: true });
    const events = late.events();
    expect(events[0]!.seq).toBeGreaterThan(2);
    expectContiguous(events, events[0]!.seq);
    expect(events.map((e) => e.type)).toContain('turn.completed');
    late.socket.close();
  });
});

describe('tessera agent', () => {
  /** Runs a command in this process; `writes` fills while it runs. `--token=T`: a random token may start with "-". */
  const start = (args: string[]) => {
    const writes: string[] = [];
    let stderr = '';
    const done = runCli([...args, '--url', host.origin, `--token=${operator}`], { stdout: (t) => void writes.push(t), stderr: (t) => void (stderr += t), env: {} }).then((code) => ({ code, stdout: writes.join(''), writes, stderr }));
    return { writes, done };
  };
  const cli = (args: string[]) => start(args).done;

  it('opens a session, says something with the answer streamed from the room, and reads the transcript', async () => {
    const opened = await cli(['agent', 'open', 'chat-test']);
    expect(opened.code, opened.stderr).toBe(0);
    const id = opened.stdout.trim();
    fake.enqueue({ text: 'Hello from the model.', delayMs: 10 });
    const said = await cli(['agent', 'say', id, 'Hello', 'there']);
    expect(said.code, said.stderr).toBe(0);
    expect(said.stdout).toBe('Hello from the model.\n');
    // Written as the model wrote it, piece by piece from the room, not once at the end.
    expect(said.writes.slice(0, 2)).toEqual(['Hello ', 'from ']);
    expect(fake.requests.at(-1)!.lastMessage).toMatchObject({ role: 'user', content: 'Hello there' });
    const transcript = await cli(['agent', 'transcript', id]);
    expect(transcript.stdout).toMatch(/#1 {2}operator: Hello there\n#2 {2}assistant: Hello from the model\.\n/);
    // watch follows the room (the replay first) until the session is closed.
    const watching = start(['agent', 'watch', id]);
    await eventually(async () => watching.writes.join('').includes('assistant: Hello from the model.'), 'the replayed answer');
    const closed = await cli(['agent', 'close', id]);
    expect(closed.stdout).toContain(`${id}  chat-test  closed`);
    const watched = await watching.done;
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stdout).toMatch(/^#\d+ message\.user {2}operator: Hello there$/m);
    expect(watched.stdout).toMatch(/^#\d+ message\.assistant {2}assistant: Hello from the model\.$/m);
    expect(watched.stdout).toMatch(/^#\d+ session\.closed /m);
    // A session closed already: watch prints what is left of its room and ends.
    expect((await cli(['agent', 'watch', id])).code).toBe(0);
    const missing = await cli(['agent', 'show', 'ags-unknown']);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringMatching(/^error AGENT_SESSION_NOT_FOUND: /)]);
    expect((await cli(['agent', 'resume', id, '--tokens', 'many'])).code).toBe(2);
  });
});

// Last: it spends the traveller's opens for the minute.
describe('opening sessions as a traveller', () => {
  it('is limited to 10 a minute: 429 AGENT_RATE_LIMITED with retry-after; an operator is not limited', async () => {
    let refused: Answer<ErrorBody> | undefined;
    for (let i = 0; i < 11 && !refused; i++) {
      const res = await call<ErrorBody>(traveller, 'POST', '/api/agents/sessions', { agent_type: 'journey-guide' });
      if (res.status !== 201) refused = res;
    }
    expect(refused).toBeDefined();
    expectError(refused!, 429, 'AGENT_RATE_LIMITED');
    expect(refused!.body.error.message).toMatch(/^At most 10 new sessions a minute to agents; try again in \d+ s\.$/);
    const res = await fetch(`${host.origin}/api/agents/sessions`, { method: 'POST', headers: { authorization: `Bearer ${traveller}`, 'content-type': 'application/json' }, body: JSON.stringify({ agent_type: 'journey-guide' }) });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(res.headers.get('retry-after'))).toBe(((await res.json()) as ErrorBody).error.details!['retry_after_seconds']);
    expect((await call(operator, 'POST', '/api/agents/sessions', { agent_type: 'journey-guide' })).status).toBe(201);
  });
});
