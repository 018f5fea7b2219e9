/**
 * The generic agent runtime (issue 17 points 1, 2, 4, 6, 7; seed 003 FR1, FR2, FR5, NFR1.3, NFR2) over the
 * file-based adapters on a temp folder. The model is a scripted ModelClient (answers queued per test, streamed
 * through onDelta in small pieces) and the tools count their calls per idempotency key — the protocol-faithful HTTP
 * model server and real MCP servers are tested with model.ts and mcp.ts.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentError,
  createAgentRuntime,
  createFileAdapters,
  type AgentEvent,
  type AgentProfile,
  type AgentRuntime,
  type AgentRuntimeConfig,
  type ChatRequest,
  type ChatResult,
  type ModelClient,
  type SessionRecord,
  type ToolCall,
  type ToolsFactory,
  type TranscriptEntry,
} from '../../main/runtime/agents/index.js';
import { createRooms } from '../../main/runtime/agents/rooms.js';
import { tempDir } from '../helpers/tmp.js';

type Script = ChatResult | Error | ((req: ChatRequest, signal?: AbortSignal) => Promise<ChatResult>);

function answer(text: string, tool_calls: ToolCall[] = []): ChatResult {
  return { text, tool_calls, finish_reason: tool_calls.length > 0 ? 'tool_calls' : 'stop', usage: { prompt_tokens: 10, completion_tokens: 5, estimated: false } };
}

function scriptedModel(): { client: ModelClient; queue: Script[]; requests: ChatRequest[] } {
  const queue: Script[] = [];
  const requests: ChatRequest[] = [];
  const client: ModelClient = {
    async complete(req, { onDelta, signal }) {
      requests.push(structuredClone(req));
      const next = queue.shift() ?? answer('ok');
      if (next instanceof Error) throw next;
      const result = typeof next === 'function' ? await next(req, signal) : next;
      for (const piece of result.text.match(/.{1,4}/gs) ?? []) onDelta?.(piece);
      return result;
    },
  };
  return { client, queue, requests };
}

function countingTools(): { factory: ToolsFactory; calls: Map<string, number>; closed: string[] } {
  const calls = new Map<string, number>();
  const closed: string[] = [];
  const factory: ToolsFactory = async (session) => ({
    list: () => [{ name: 'demo__echo', description: 'Echoes its arguments', parameters: { type: 'object' } }],
    async call(name, args, { idempotencyKey }) {
      calls.set(idempotencyKey, (calls.get(idempotencyKey) ?? 0) + 1);
      if (name !== 'demo__echo') return { ok: false, content: '', error: { code: 'AGENT_TOOL_FAILED', message: `unknown tool ${name}` } };
      return { ok: true, content: JSON.stringify(args) };
    },
    async close() {
      closed.push(session.id);
    },
  });
  return { factory, calls, closed };
}

const MODEL = { base_url: 'http://127.0.0.1:9/v1', model: 'scripted', max_tokens: 100 };

function profileOf(type: string, vars: Record<string, string>): AgentProfile {
  const base: AgentProfile = {
    type, title: type, system_prompt: `Session {{SESSION_ID}} of {{AGENT_TYPE}} in {{CITY}}`, model: MODEL, mcp_servers: [],
    budgets: { session: {}, day: {} }, degraded: 'fallback', fallback: 'rules',
  };
  const variants: Record<string, Partial<AgentProfile>> = {
    guide: {},
    planner: { degraded: 'off', fallback: undefined },
    rulebot: { model: undefined },
    offbot: { model: undefined, degraded: 'off', fallback: undefined },
    budgeted: { budgets: { session: { model_calls: 1 }, day: {} } },
    daily: { budgets: { session: {}, day: { model_calls: 1 } } },
    broken: { degraded: 'sometimes' as 'off' },
  };
  const variant = variants[type];
  if (!variant) throw new Error(`no profile file ${type}.yaml`);
  const p = { ...base, ...variant };
  p.system_prompt = p.system_prompt.replace(/\{\{(\w+)\}\}/g, (_, name: string) => vars[name] ?? `{{${name}}}`);
  return p;
}

interface Harness {
  runtime: AgentRuntime;
  model: ReturnType<typeof scriptedModel>;
  tools: ReturnType<typeof countingTools>;
  events: AgentEvent[];
  dir: string;
  adapters: ReturnType<typeof createFileAdapters>;
}

const runtimes: AgentRuntime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.shutdown({ graceMs: 100 })));
});

let skew = 0;
afterEach(() => {
  skew = 0;
});

function harness(options: Partial<AgentRuntimeConfig> & { dir?: string } = {}): Harness {
  const dir = options.dir ?? tempDir('tessera-agents-');
  const adapters = createFileAdapters(dir);
  const model = scriptedModel();
  const tools = countingTools();
  const runtime = createAgentRuntime({
    persistence: adapters.persistence,
    storage: adapters.storage,
    profiles: { list: async () => [], load: async (type, vars) => profileOf(type, vars) },
    sandbox: { configure: async (s) => ({ env: {}, mcp_servers: [], workdir: join(dir, s.id, 'work') }) },
    model: model.client,
    tools: tools.factory,
    responders: { rules: async (ctx) => ({ text: `rule answer to ${ctx.text}` }) },
    clock: () => Date.now() + skew,
    ...options,
  });
  runtimes.push(runtime);
  const events: AgentEvent[] = [];
  runtime.onEvent((e) => events.push(e));
  return { runtime, model, tools, events, dir, adapters };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function rejection(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (err) {
    return err as AgentError;
  }
  throw new Error('expected a rejection');
}

const types = (entries: TranscriptEntry[]): string[] => entries.map((e) => e.type);
/** What the runtime reserves (and settles without usage) for a prompt: 4 characters per token. */
const promptEstimate = (req: ChatRequest): number => Math.ceil((JSON.stringify(req.messages).length + JSON.stringify(req.tools).length) / 4);
const by = { by: 'traveller:kiosk-1' };

describe('agent runtime: sessions and turns', () => {
  it('persists the user message before calling the model, fills template variables, and keeps the transcript in order', async () => {
    const h = harness();
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'traveller:kiosk-1', variables: { CITY: 'Lviv' } });
    let seenByModel: string[] = [];
    h.model.queue.push(async () => {
      seenByModel = types(await h.adapters.storage.readTranscript(s.id));
      return answer('Hello from Lviv');
    });
    const result = await h.runtime.message(s.id, 'Hi', by);
    expect(result).toMatchObject({ outcome: 'completed', text: 'Hello from Lviv', source: 'model' });
    expect(seenByModel).toEqual(['user']);
    expect(h.model.requests[0]!.messages[0]).toEqual({ role: 'system', content: `Session ${s.id} of guide in Lviv` });
    const transcript = await h.runtime.transcript(s.id);
    expect(types(transcript)).toEqual(['user', 'assistant', 'turn_end']);
    expect(transcript.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(await h.runtime.get(s.id)).toMatchObject({ state: 'idle', usage: { model_calls: 1, tokens: 15 } });
  });

  it("runs the model's tool calls (tool_call persisted first, keyed <session>:<call id>) and loops until the model answers in words", async () => {
    const h = harness();
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'traveller:kiosk-1' });
    h.model.queue.push(answer('', [{ id: 'c1', name: 'demo__echo', arguments: { x: 1 } }]), answer('', [{ id: 'c1', name: 'demo__echo', arguments: { x: 2 } }]), answer('done'));
    const result = await h.runtime.message(s.id, 'Use the tool', by);
    expect(result.outcome).toBe('completed');
    expect(result.text).toBe('done');
    expect(result.tool_calls.map((c) => c.outcome.content)).toEqual(['{"x":1}', '{"x":2}']);
    expect(types(await h.runtime.transcript(s.id))).toEqual(['user', 'assistant', 'tool_call', 'tool_result', 'assistant', 'tool_call', 'tool_result', 'assistant', 'turn_end']);
    // The model reused the id c1: the runtime renamed the second call so its idempotency key stays unique.
    expect([...h.tools.calls.entries()]).toEqual([[`${s.id}:c1`, 1], [`${s.id}:${result.tool_calls[1]!.call.id}`, 1]]);
    expect(result.tool_calls[1]!.call.id).not.toBe('c1');
    const third = h.model.requests[2]!.messages;
    expect(third.filter((m) => m.role === 'tool')).toHaveLength(2);
  });

  it('streams deltas to the room with consecutive seq; a subscriber replays what came after N, and learns of a gap', async () => {
    const h = harness({ roomBuffer: 8 });
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'traveller:kiosk-1' });
    const live: AgentEvent[] = [];
    const sub = h.runtime.subscribe(s.id, 0, (e) => live.push(e));
    expect(sub.gap).toBe(false);
    h.model.queue.push(answer('The museum opens at ten'));
    await h.runtime.message(s.id, 'When?', by);
    sub.dispose();
    const deltas = live.filter((e) => e.type === 'message.delta');
    expect(deltas.map((e) => e.data.text).join('')).toBe('The museum opens at ten');
    expect(live.map((e) => e.seq)).toEqual(live.map((_, i) => i + 1));
    const last = live.at(-1)!.seq;
    const replayed: AgentEvent[] = [];
    const late = h.runtime.subscribe(s.id, last - 3, (e) => replayed.push(e));
    expect(late.gap).toBe(false);
    expect(replayed.map((e) => e.seq)).toEqual([last - 2, last - 1, last]);
    late.dispose();
    const tooLate = h.runtime.subscribe(s.id, 1, () => undefined);
    expect(tooLate.gap).toBe(true);
    tooLate.dispose();
    // A client that saw more than the room knows of (the room restarted lower after a crash) reloads too.
    const ahead = h.runtime.subscribe(s.id, last + 5, () => undefined);
    expect(ahead.gap).toBe(true);
    ahead.dispose();
  });

  it('drops a room once nobody listens and its session is not loaded (unloaded, closed)', async () => {
    const h = harness({ idleTimeoutMs: 50 });
    const replayedAfter = (id: string): { gap: boolean; count: number } => {
      let count = 0;
      const sub = h.runtime.subscribe(id, 0, () => count++);
      sub.dispose();
      return { gap: sub.gap, count };
    };
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    const sub = h.runtime.subscribe(s.id, 0, () => undefined);
    await h.runtime.message(s.id, 'Hi', by);
    await waitFor('session.unloaded', () => h.events.some((e) => e.type === 'session.unloaded'));
    expect(replayedAfter(s.id).count).toBeGreaterThan(0);
    sub.dispose();
    // The buffer went with the room: a late subscriber is told to reload the transcript, nothing is replayed.
    expect(replayedAfter(s.id)).toEqual({ gap: true, count: 0 });

    const c = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    const listening = h.runtime.subscribe(c.id, 0, () => undefined);
    await h.runtime.close(c.id);
    expect(replayedAfter(c.id).count).toBeGreaterThan(0);
    listening.dispose();
    expect(replayedAfter(c.id)).toEqual({ gap: true, count: 0 });
  });

  it('keeps no room for a subscription to a session that is not loaded, once it is disposed', () => {
    const loaded = new Set<string>();
    const rooms = createRooms({ buffer: 10, loaded: (id) => loaded.has(id) });
    rooms.subscribe('elsewhere', 0, () => undefined, 7).dispose();
    expect(rooms.size()).toBe(0);
    loaded.add('here');
    rooms.open('here', 0);
    rooms.emit('here', 'usage', {}, '');
    rooms.subscribe('here', 0, () => undefined).dispose();
    expect(rooms.size()).toBe(1);
    loaded.delete('here');
    rooms.release('here');
    expect(rooms.size()).toBe(0);
  });

  it('closes a session idempotently: its tools close, it takes no more messages, its transcript stays', async () => {
    const h = harness();
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    await h.runtime.message(s.id, 'Hi', by);
    expect(await h.runtime.close(s.id)).toMatchObject({ state: 'closed' });
    expect(await h.runtime.close(s.id)).toMatchObject({ state: 'closed' });
    expect(h.tools.closed).toEqual([s.id]);
    expect(h.events.filter((e) => e.type === 'session.closed')).toHaveLength(1);
    expect((await rejection(h.runtime.message(s.id, 'Again', by))).code).toBe('AGENT_SESSION_CLOSED');
    expect(types(await h.runtime.transcript(s.id))).toEqual(['user', 'assistant', 'turn_end']);
    expect((await rejection(h.runtime.get('no-such-session'))).code).toBe('AGENT_SESSION_NOT_FOUND');
  });

  it('fails creation with AGENT_PROFILE_INVALID naming the type or the field', async () => {
    const h = harness();
    const unknown = await rejection(h.runtime.create({ agent_type: 'nosuch', owner: 'o' }));
    expect(unknown.code).toBe('AGENT_PROFILE_INVALID');
    expect(unknown.message).toContain('nosuch');
    const broken = await rejection(h.runtime.create({ agent_type: 'broken', owner: 'o' }));
    expect(broken.code).toBe('AGENT_PROFILE_INVALID');
    expect(broken.message).toContain('degraded');
    expect(await h.runtime.list()).toEqual([]);
  });
});

describe('agent runtime: budgets', () => {
  it('pauses at the session budget, asks, and resume({extend}) continues the same turn', async () => {
    const h = harness();
    const s = await h.runtime.create({ agent_type: 'budgeted', owner: 'o' });
    h.model.queue.push(answer('', [{ id: 'c1', name: 'demo__echo', arguments: {} }]), answer('finished'));
    const result = await h.runtime.message(s.id, 'Go', by);
    expect(result.outcome).toBe('paused');
    expect(result.pause).toMatchObject({ budget: 'model_calls', scope: 'session', used: 1, limit: 1, at: 'model' });
    expect(h.tools.calls.get(`${s.id}:c1`)).toBe(1);
    expect(h.events.some((e) => e.type === 'session.state' && e.data.state === 'paused')).toBe(true);
    expect((await rejection(h.runtime.message(s.id, 'Again', by))).code).toBe('AGENT_SESSION_PAUSED');
    expect((await rejection(h.runtime.resume(s.id))).code).toBe('AGENT_SESSION_PAUSED');
    const resumed = await h.runtime.resume(s.id, { extend: { model_calls: 1 } });
    expect(resumed).toMatchObject({ state: 'idle', pause: null, usage: { model_calls: 2 } });
    const transcript = await h.runtime.transcript(s.id);
    expect(new Set(transcript.map((e) => e.turn)).size).toBe(1);
    expect(transcript.at(-2)).toMatchObject({ type: 'assistant', text: 'finished' });
    expect(transcript.at(-1)).toMatchObject({ type: 'turn_end', outcome: 'completed' });
    expect(h.tools.calls.get(`${s.id}:c1`)).toBe(1);
    expect((await h.runtime.budgets(s.id)).session.limit).toEqual({ model_calls: 2 });
  });

  it("sums an agent type's sessions for its per-day budget", async () => {
    const h = harness();
    const a = await h.runtime.create({ agent_type: 'daily', owner: 'o' });
    const b = await h.runtime.create({ agent_type: 'daily', owner: 'o' });
    expect((await h.runtime.message(a.id, 'One', by)).outcome).toBe('completed');
    const second = await h.runtime.message(b.id, 'Two', by);
    expect(second.outcome).toBe('paused');
    expect(second.pause).toMatchObject({ budget: 'model_calls', scope: 'day', used: 1, limit: 1 });
    expect((await h.runtime.budgets(b.id)).day.used.model_calls).toBe(1);
  });

  it('settles the estimate, never a negative amount, when the model reports usage that is not a count', async () => {
    const h = harness();
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    const lying = (usage: Record<string, number>): ChatResult => ({ ...answer('four'), usage: { ...usage, estimated: false } as ChatResult['usage'] });
    h.model.queue.push(lying({ prompt_tokens: -1_000_000, completion_tokens: 5 }), lying({ prompt_tokens: 10, completion_tokens: Number.NaN }), lying({ prompt_tokens: 1.5, completion_tokens: 2 }));
    let expected = 0;
    for (const text of ['One', 'Two', 'Three']) {
      await h.runtime.message(s.id, text, by);
      expected += promptEstimate(h.model.requests.at(-1)!) + 1;
      expect((await h.runtime.get(s.id)).usage.tokens).toBe(expected);
    }
    const entries = (await h.runtime.transcript(s.id)).filter((e) => e.type === 'assistant');
    expect(entries.every((e) => e.type === 'assistant' && e.usage!.prompt_tokens >= 0 && Number.isInteger(e.usage!.completion_tokens))).toBe(true);
  });
});

describe('agent runtime: degraded model', () => {
  it('answers with the fallback responder when the profile has no model; an `off` agent without one is disabled', async () => {
    const h = harness();
    const s = await h.runtime.create({ agent_type: 'rulebot', owner: 'o' });
    expect(s.degraded).toBe(true);
    const result = await h.runtime.message(s.id, 'Where is the exit?', by);
    expect(result).toMatchObject({ outcome: 'completed', source: 'fallback', text: 'rule answer to Where is the exit?' });
    expect(h.model.requests).toHaveLength(0);
    const off = await rejection(h.runtime.create({ agent_type: 'offbot', owner: 'o' }));
    expect(off.code).toBe('AGENT_DISABLED');
    expect(h.runtime.disabled()).toEqual(['offbot']);
  });

  it("gives a responder idempotency keys <session>:<turn>:<suffix> and records each of its tool calls before the tool runs", async () => {
    const seenBeforeRun: string[][] = [];
    const h: Harness = harness({
      tools: async () => ({
        list: () => [],
        async call(_name, _args, { idempotencyKey }) {
          seenBeforeRun.push(types(await h.adapters.storage.readTranscript(s.id)));
          return { ok: true, content: idempotencyKey };
        },
        async close() {},
      }),
      responders: {
        rules: async (ctx) => {
          const id = 'rule-1';
          const outcome = await ctx.tools.call('journey__next', {}, { idempotencyKey: ctx.idempotencyKey(id), signal: ctx.signal });
          return { text: outcome.content, tool_calls: [{ id, name: 'journey__next', arguments: {}, outcome }] };
        },
      },
    });
    const s = await h.runtime.create({ agent_type: 'rulebot', owner: 'o' });
    const first = await h.runtime.message(s.id, 'Next?', by);
    const second = await h.runtime.message(s.id, 'And then?', by);
    expect(first.text).toBe(`${s.id}:${first.turn}:rule-1`);
    expect(second.text).toBe(`${s.id}:${second.turn}:rule-1`);
    expect(seenBeforeRun[0]).toEqual(['user', 'tool_call']);
    const transcript = await h.runtime.transcript(s.id);
    expect(types(transcript).slice(0, 5)).toEqual(['user', 'tool_call', 'tool_result', 'assistant', 'turn_end']);
    expect(transcript[1]).toMatchObject({ type: 'tool_call', idempotency_key: `${s.id}:${first.turn}:rule-1`, call: { id: 'rule-1' } });
    expect(first.tool_calls).toHaveLength(1);
    expect((await h.runtime.get(s.id)).usage.tool_calls).toBe(2);
  });

  it('falls back when the model fails, stops calling it until degradedRetryMs passes, and reports it back', async () => {
    const h = harness({ degradedRetryMs: 60_000 });
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    h.model.queue.push(new AgentError('AGENT_MODEL_FAILED', 'HTTP 503', { retryable: true }));
    const first = await h.runtime.message(s.id, 'Hello', by);
    expect(first).toMatchObject({ outcome: 'completed', source: 'fallback', text: 'rule answer to Hello' });
    expect(h.events.filter((e) => e.type === 'session.degraded').map((e) => e.data.degraded)).toEqual([true]);
    await h.runtime.message(s.id, 'Still there?', by);
    expect(h.model.requests).toHaveLength(1);
    skew = 61_000;
    const back = await h.runtime.message(s.id, 'And now?', by);
    expect(back).toMatchObject({ source: 'model', text: 'ok' });
    expect(h.events.filter((e) => e.type === 'session.degraded').map((e) => e.data.degraded)).toEqual([true, false]);
  });

  it('switches an `off` agent type off when its model times out (AGENT_DISABLED, listed in disabled())', async () => {
    const h = harness();
    const s = await h.runtime.create({ agent_type: 'planner', owner: 'o' });
    h.model.queue.push(new AgentError('AGENT_MODEL_TIMEOUT', 'no first byte in 10 s', { retryable: true }));
    const result = await h.runtime.message(s.id, 'Plan a trip', by);
    expect(result.outcome).toBe('failed');
    expect(result.error?.code).toBe('AGENT_DISABLED');
    expect(h.runtime.disabled()).toEqual(['planner']);
    expect((await rejection(h.runtime.create({ agent_type: 'planner', owner: 'o' }))).code).toBe('AGENT_DISABLED');
    expect((await rejection(h.runtime.message(s.id, 'Again', by))).code).toBe('AGENT_DISABLED');
  });

  it('fails the turn on malformed model output and keeps the session usable', async () => {
    const h = harness();
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    h.model.queue.push(new AgentError('AGENT_MODEL_OUTPUT_INVALID', 'tool call arguments are not JSON'));
    const bad = await h.runtime.message(s.id, 'Hi', by);
    expect(bad).toMatchObject({ outcome: 'failed', error: { code: 'AGENT_MODEL_OUTPUT_INVALID' } });
    // A failed call still costs what its prompt would have.
    expect((await h.runtime.get(s.id)).usage).toMatchObject({ model_calls: 1, tokens: promptEstimate(h.model.requests[0]!) });
    expect(h.events.some((e) => e.type === 'turn.failed' && e.data.turn === bad.turn)).toBe(true);
    expect(h.runtime.disabled()).toEqual([]);
    expect(await h.runtime.message(s.id, 'Hi again', by)).toMatchObject({ outcome: 'completed', text: 'ok' });
  });
});

describe('agent runtime: durability', () => {
  it('finishes turns a crash left pending: a dangling tool call runs once more with the same key, a lone user message re-calls the model', async () => {
    const dir = tempDir('tessera-agents-');
    const { persistence, storage } = createFileAdapters(dir);
    const at = new Date().toISOString();
    const record = (id: string, turn: string): SessionRecord => ({
      v: 1, id, agent_type: 'guide', state: 'running', owner: 'o', metadata: {}, variables: {}, created_at: at, updated_at: at,
      last_active_at: at, transcript_seq: 1, event_seq: 5, usage: { tokens: 0, tool_calls: 0, wall_ms: 0, model_calls: 1 }, daily: {},
      budget_extra: {}, pause: null, degraded: false, pending_turn: { id: turn, trace_id: `trace-${turn}`, started_at: at },
    });
    const call: ToolCall = { id: 'c9', name: 'demo__echo', arguments: { stop: 'museum' } };
    await persistence.save(record('crashed-in-tool', 't1'));
    await storage.appendTranscript('crashed-in-tool', [
      { seq: 1, at, turn: 't1', type: 'user', text: 'Next stop?', by: 'o' },
      { seq: 2, at, turn: 't1', type: 'assistant', text: '', tool_calls: [call], source: 'model' },
      { seq: 3, at, turn: 't1', type: 'tool_call', call, idempotency_key: 'crashed-in-tool:c9' },
    ]);
    await persistence.save(record('crashed-before-model', 't2'));
    await storage.appendTranscript('crashed-before-model', [{ seq: 1, at, turn: 't2', type: 'user', text: 'Hello?', by: 'o' }]);

    const h = harness({ dir });
    h.model.queue.push(answer('after the crash'), answer('after the crash'));
    const { resumed, failed } = await h.runtime.recover();
    expect(failed).toEqual([]);
    expect(resumed.sort()).toEqual(['crashed-before-model', 'crashed-in-tool']);
    expect([...h.tools.calls.entries()]).toEqual([['crashed-in-tool:c9', 1]]);
    expect(h.model.requests).toHaveLength(2);
    const t1 = await h.runtime.transcript('crashed-in-tool');
    expect(types(t1)).toEqual(['user', 'assistant', 'tool_call', 'tool_result', 'assistant', 'turn_end']);
    expect(t1.at(-1)).toMatchObject({ turn: 't1', outcome: 'completed' });
    expect(types(await h.runtime.transcript('crashed-before-model'))).toEqual(['user', 'assistant', 'turn_end']);
    expect(await persistence.load('crashed-in-tool')).toMatchObject({ state: 'idle', pending_turn: null, transcript_seq: 6 });
    // After an unclean stop event numbers jump a whole room buffer past the record's event_seq (never repeat).
    expect(h.events.find((e) => e.session === 'crashed-in-tool')!.seq).toBe(5 + 1000 + 1);
  });

  it('reports adapter failures as error events and survives them: creation fails cleanly, a turn that cannot be written fails', async () => {
    const dir = tempDir('tessera-agents-');
    const files = createFileAdapters(dir);
    const broken = { save: false, append: (_e: TranscriptEntry) => false };
    const h = harness({
      dir,
      persistence: { ...files.persistence, save: async (r) => (broken.save ? Promise.reject(new Error('disk full')) : files.persistence.save(r)) },
      storage: { ...files.storage, appendTranscript: async (id, e) => (e.some(broken.append) ? Promise.reject(new Error('EIO')) : files.storage.appendTranscript(id, e)) },
    });
    broken.save = true;
    const create = await rejection(h.runtime.create({ agent_type: 'guide', owner: 'o' }));
    expect(create.code).toBe('AGENT_ADAPTER_FAILED');
    expect(h.events.filter((e) => e.type === 'error').map((e) => e.data)).toEqual([expect.objectContaining({ code: 'AGENT_ADAPTER_FAILED', adapter: 'persistence' })]);
    expect(h.tools.closed).toHaveLength(1);
    broken.save = false;
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    h.model.queue.push(async () => {
      broken.append = () => true;
      return answer('this answer cannot be written');
    });
    const result = await h.runtime.message(s.id, 'Hi', by);
    expect(result).toMatchObject({ outcome: 'failed', text: '', error: { code: 'AGENT_ADAPTER_FAILED' } });
    expect(h.events.some((e) => e.session === s.id && e.type === 'error' && e.data.adapter === 'storage')).toBe(true);
    // Only the turn_end cannot be written: the answer exists, but the turn is not reported as a success.
    broken.append = (e) => e.type === 'turn_end';
    expect(await h.runtime.message(s.id, 'Hi again', by)).toMatchObject({ outcome: 'failed', error: { code: 'AGENT_ADAPTER_FAILED' } });
    broken.append = () => false;
    expect(await h.runtime.message(s.id, 'Third time', by)).toMatchObject({ outcome: 'completed', text: 'ok' });
  });

  it('unloads idle sessions (closing their tools) and resumes them on the next message', async () => {
    const h = harness({ idleTimeoutMs: 50 });
    const s = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    await h.runtime.message(s.id, 'Hi', by);
    await waitFor('session.unloaded', () => h.events.some((e) => e.type === 'session.unloaded'));
    expect(h.tools.closed).toEqual([s.id]);
    expect(await h.runtime.message(s.id, 'Still here?', by)).toMatchObject({ outcome: 'completed' });
    expect(h.events.some((e) => e.type === 'session.resumed')).toBe(true);
    expect((await h.runtime.transcript(s.id)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const seqs = h.events.filter((e) => e.session === s.id).map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });

  it('on shutdown aborts a turn past its grace, syncs every record and closes tools; recover() finishes that turn', async () => {
    const dir = tempDir('tessera-agents-');
    const h = harness({ dir, syncIntervalMs: 0 });
    const done = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    await h.runtime.message(done.id, 'Hi', by);
    const hanging = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    h.model.queue.push((_req, signal) => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted')))));
    const turn = h.runtime.message(hanging.id, 'Think hard', by);
    await waitFor('the model call', () => h.model.requests.length === 2);
    await h.runtime.shutdown({ graceMs: 50 });
    expect((await turn).error?.code).toBe('AGENT_RUNTIME_STOPPING');
    expect(h.tools.closed.sort()).toEqual([done.id, hanging.id].sort());
    expect((await rejection(h.runtime.create({ agent_type: 'guide', owner: 'o' }))).code).toBe('AGENT_RUNTIME_STOPPING');
    const lastSeq = h.events.filter((e) => e.session === hanging.id).at(-1)!.seq;
    expect(await h.adapters.persistence.load(hanging.id)).toMatchObject({ state: 'running', event_seq: lastSeq, pending_turn: { trace_id: expect.any(String) } });

    const after = harness({ dir });
    after.model.queue.push(answer('thought about it'));
    expect(await after.runtime.recover()).toEqual({ resumed: [hanging.id], failed: [] });
    expect((await after.runtime.transcript(hanging.id)).at(-2)).toMatchObject({ type: 'assistant', text: 'thought about it' });
  });

  it('at maxLoadedSessions unloads the least recently used idle session (saved first); refuses only when all are busy', async () => {
    const h = harness({ maxLoadedSessions: 2 });
    const a = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    const b = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    await h.runtime.message(a.id, 'Hi', by);
    const c = await h.runtime.create({ agent_type: 'guide', owner: 'o' });
    expect(h.tools.closed).toEqual([b.id]);
    expect(h.events.filter((e) => e.type === 'session.unloaded').map((e) => e.session)).toEqual([b.id]);
    await h.runtime.message(b.id, 'Back', by);
    expect(h.tools.closed).toEqual([b.id, a.id]);
    expect(await h.adapters.persistence.load(a.id)).toMatchObject({ state: 'idle', transcript_seq: 3, usage: { model_calls: 1 } });

    const release: Array<() => void> = [];
    const hang = async (): Promise<ChatResult> => {
      await new Promise<void>((r) => release.push(r));
      return answer('late');
    };
    h.model.queue.push(hang, hang);
    const turns = [h.runtime.message(b.id, 'Slow', by), h.runtime.message(c.id, 'Slow', by)];
    await waitFor('two running turns', () => release.length === 2);
    expect((await rejection(h.runtime.create({ agent_type: 'guide', owner: 'o' }))).code).toBe('AGENT_RATE_LIMITED');
    expect((await rejection(h.runtime.message(a.id, 'Me too', by))).code).toBe('AGENT_RATE_LIMITED');
    for (const r of release) r();
    await Promise.all(turns);
    expect(await h.runtime.message(a.id, 'Now?', by)).toMatchObject({ outcome: 'completed' });
  });

  it('runs 50 sessions concurrently, one turn each (NFR1.3)', async () => {
    const h = harness();
    h.model.queue.push(...Array.from({ length: 50 }, () => async () => {
      await new Promise((r) => setTimeout(r, 20));
      return answer('fine');
    }));
    const started = Date.now();
    const sessions = await Promise.all(Array.from({ length: 50 }, () => h.runtime.create({ agent_type: 'guide', owner: 'o' })));
    const results = await Promise.all(sessions.map((s) => h.runtime.message(s.id, 'Hi', by)));
    expect(results.every((r) => r.outcome === 'completed' && r.text === 'fine')).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await h.runtime.list({ agent_type: 'guide' })).toHaveLength(50);
  });
});
