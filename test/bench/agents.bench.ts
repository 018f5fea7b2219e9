/**
 * Agents (issue 17 "Benchmark"), on a real headless host: the orchestrator on the device's SQLite, the `tessera`
 * in-process MCP server per session, the OpenAI-compatible client against the fake OpenAI server on loopback, the
 * session room over a real WebSocket. Baselines in the same run: the fake model server alone.
 *
 * - session creation, p95, no model (target ≤ 50 ms; seed 003 NFR1.1: 30 s) — vs one completion from the fake server;
 * - a model token's way to the client, p95 (target ≤ 5 ms; seed 003 NFR1.2: 500 ms end to end): from the fake server's
 *   write of a token to the `message.delta` frame arriving on `/ws/agents/{id}` — vs the raw SSE read of that token;
 * - memory per idle session (loaded, tools started) — vs the same SessionRecord kept as a plain object;
 * - resume of 50 sessions after a restart (target ≤ 2 s; seed 003 NFR1.5: 60 s) — vs reading their records and
 *   transcripts straight from the adapters.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import WebSocket from 'ws';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import type { Caller } from '../../main/runtime/orchestrator/index.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import type { FakeOpenAi } from '../helpers/fake-openai.js';
import { percentile, rawTokenRead, tokenLatencies } from './sse-latency.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AnyBenchmark, FigureSide } from './harness.js';

const operator: Caller = { principal: 'operator', roles: ['operator'] };
const TOKENS = 40;
const DELAY_MS = 2;
const TEXT = Array.from({ length: TOKENS }, (_, i) => `word${i} `).join('');
const CREATES = 60;
const IDLE_SESSIONS = 200;
const RESUMED = 50;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Bench {
  fake: FakeOpenAi;
  dataDir: string;
  host: RunningHost;
}
let bench: Promise<Bench> | undefined;

async function startBenchHost(dataDir: string): Promise<RunningHost> {
  return startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
}

function setup(): Promise<Bench> {
  bench ??= (async () => {
    const fake = await startFakeOpenAi();
    const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-agents-'));
    const profiles = join(dataDir, 'agents', 'profiles');
    mkdirSync(profiles, { recursive: true });
    const tools = 'mcp_servers:\n  - { name: tessera, transport: in-process, factory: tessera, options: { tools: [products_list, metrics_read] } }\n';
    const meta = 'meta: { roles: [operator], proposes: [] }\nbudgets: { session: { tokens: 100000000, model_calls: 100000 }, day: {} }\n';
    writeFileSync(join(profiles, 'bench-rules.yaml'), `type: bench-rules\ntitle: Rules\nsystem_prompt: "Answer from rules."\nmodel: none\ndegraded: fallback\nfallback: support\n${tools}${meta}`);
    writeFileSync(
      join(profiles, 'bench-model.yaml'),
      `type: bench-model\ntitle: Model\nsystem_prompt: "Tell stories."\nmodel: { base_url: ${JSON.stringify(fake.url)}, model: bench }\ndegraded: fallback\nfallback: support\n${tools}${meta}`,
    );
    const host = await startBenchHost(dataDir);
    return { fake, dataDir, host };
  })();
  return bench;
}


// ---- session creation ----

async function createSessions(): Promise<number[]> {
  const { host } = await setup();
  const times: number[] = [];
  for (let i = 0; i < CREATES; i++) {
    const t0 = performance.now();
    const s = await host.runtime.agents.open(operator, { agent_type: 'bench-rules' });
    times.push(performance.now() - t0);
    await host.runtime.agents.close(operator, s.id);
  }
  return times;
}

async function completions(): Promise<number[]> {
  const { fake } = await setup();
  const times: number[] = [];
  for (let i = 0; i < CREATES; i++) {
    fake.enqueue({ text: 'Hello.', json: true });
    const t0 = performance.now();
    const res = await fetch(`${fake.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'Hi' }] }) });
    await res.json();
    times.push(performance.now() - t0);
  }
  return times;
}

// ---- a token's way to the client ----

async function throughRoom(): Promise<number[]> {
  const { fake, host } = await setup();
  const session = await host.runtime.agents.open(operator, { agent_type: 'bench-model' });
  const token = host.token;
  const ws = new WebSocket(`ws://127.0.0.1:${host.port}/ws/agents/${session.id}?after=0`, { headers: { authorization: `Bearer ${token}` } });
  const arrived: number[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      const now = performance.now();
      const m = JSON.parse(String(data)) as { type: string; event?: { type: string } };
      if (m.type === 'hello') resolve();
      if (m.type === 'event' && m.event?.type === 'message.delta') arrived.push(now);
    });
    ws.on('error', reject);
  });
  const all: number[] = [];
  for (let i = 0; i < 4; i++) {
    arrived.length = 0;
    fake.reset();
    fake.enqueue({ text: TEXT, delayMs: DELAY_MS });
    // The runtime directly: the orchestrator's per-caller message rate limit is not what is measured.
    await host.runtime.agents.runtime.message(session.id, 'Tell me a story.', { by: 'bench' });
    const r = fake.requests.at(-1)!;
    // The last delta frame may still be on its way when the turn's answer returns.
    for (let wait = 0; arrived.length < r.textWrittenAt.length && wait < 100; wait++) await new Promise((res) => setTimeout(res, 10));
    all.push(...tokenLatencies(r, arrived));
  }
  ws.close();
  await host.runtime.agents.close(operator, session.id);
  return all;
}

function rawRead(): Promise<number[]> {
  return setup().then(async ({ fake }) => {
    const all: number[] = [];
    for (let i = 0; i < 4; i++) {
      fake.reset();
      fake.enqueue({ text: TEXT, delayMs: DELAY_MS });
      all.push(...(await rawTokenRead(fake)));
    }
    return all;
  });
}

// ---- memory per idle session ----

async function memoryPerSession(): Promise<number> {
  const { host } = await setup();
  gc();
  const before = process.memoryUsage();
  const ids: string[] = [];
  for (let i = 0; i < IDLE_SESSIONS; i++) ids.push((await host.runtime.agents.open(operator, { agent_type: 'bench-rules' })).id);
  gc();
  const after = process.memoryUsage();
  const perSession = (after.heapUsed + after.external - before.heapUsed - before.external) / IDLE_SESSIONS / 1024;
  for (const id of ids) await host.runtime.agents.close(operator, id);
  return perSession;
}

async function memoryPlainRecord(): Promise<number> {
  const { host } = await setup();
  const sample = await host.runtime.agents.open(operator, { agent_type: 'bench-rules' });
  await host.runtime.agents.close(operator, sample.id);
  const json = JSON.stringify(await host.runtime.agents.runtime.get(sample.id));
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = Array.from({ length: IDLE_SESSIONS }, () => JSON.parse(json) as unknown);
  gc();
  const perRecord = (process.memoryUsage().heapUsed - before) / IDLE_SESSIONS / 1024;
  kept.length = 0;
  return perRecord;
}

// ---- resume of 50 sessions after a restart ----

let resumable: Promise<string[]> | undefined;
/** 50 sessions with a model-backed turn each (so a transcript to load), left idle by a stopped host. */
function prepareResumable(): Promise<string[]> {
  resumable ??= (async () => {
    const b = await setup();
    const ids: string[] = [];
    b.fake.reset();
    b.fake.respond(() => ({ text: 'A short answer.' }));
    for (let i = 0; i < RESUMED; i++) {
      const s = await b.host.runtime.agents.open(operator, { agent_type: 'bench-model' });
      await b.host.runtime.agents.runtime.message(s.id, `Question ${i}`, { by: 'bench' });
      ids.push(s.id);
    }
    return ids;
  })();
  return resumable;
}

async function restart(): Promise<RunningHost> {
  const b = await setup();
  await b.host.close();
  b.host = await startBenchHost(b.dataDir);
  return b.host;
}

async function resumeAll(): Promise<number> {
  const ids = await prepareResumable();
  const host = await restart();
  const t0 = performance.now();
  await Promise.all(ids.map((id) => host.runtime.agents.resume(operator, id)));
  return performance.now() - t0;
}

async function readAll(): Promise<number> {
  const ids = await prepareResumable();
  const host = await restart();
  const rt = host.runtime.agents.runtime;
  const t0 = performance.now();
  await Promise.all(ids.map(async (id) => Promise.all([rt.get(id), rt.transcript(id)])));
  return performance.now() - t0;
}

const p95 = (name: string, run: () => Promise<number[]>): FigureSide => ({ name, measure: async () => percentile(await run(), 95) });

export const benchmarks: AnyBenchmark[] = [
  {
    kind: 'figure',
    name: 'agents: session creation, p95 (no model)',
    unit: 'ms',
    candidate: p95(`orchestrator.open + close: profile, SQLite record, tessera MCP server (${CREATES} sessions)`, createSessions),
    baselines: [p95('fake OpenAI server alone: one completion (JSON) over HTTP', completions)],
    target: { max: 50 },
  },
  {
    kind: 'figure',
    name: 'agents: model token → client over /ws/agents, p95',
    unit: 'ms',
    candidate: p95(`fake server → client → runtime → room → WebSocket frame (4×${TOKENS} tokens, ${DELAY_MS} ms apart)`, throughRoom),
    baselines: [p95('fake OpenAI server alone, node:http raw read of the SSE bytes', rawRead)],
    target: { max: 5 },
  },
  {
    kind: 'figure',
    name: 'agents: memory per idle session',
    unit: 'KiB',
    candidate: { name: `${IDLE_SESSIONS} sessions loaded with their tools (heap + external)`, measure: memoryPerSession },
    baselines: [{ name: 'the same SessionRecord as a plain object', measure: memoryPlainRecord }],
  },
  {
    kind: 'figure',
    name: `agents: resume ${RESUMED} sessions after a restart`,
    unit: 'ms',
    candidate: { name: `orchestrator.resume × ${RESUMED} at once (record, transcript, profile, tools)`, measure: resumeAll },
    baselines: [{ name: 'their records and transcripts read from the adapters', measure: readAll }],
    target: { max: 2000 },
  },
];

export async function dispose(): Promise<void> {
  if (!bench) return;
  const b = await bench;
  await b.host.close();
  await b.fake.close();
  rmSync(b.dataDir, { recursive: true, force: true });
}
