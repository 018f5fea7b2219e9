/**
 * Agents' model client (issue 17 "Benchmark": the overhead the runtime adds between a model token and the client,
 * target p95 ≤ 5 ms). The fake OpenAI server (test/helpers/fake-openai.ts) streams answers token by token, 2 ms
 * apart, and notes `performance.now()` as it writes each text event; the latency of a token is the time from that
 * write to its arrival:
 * - candidate: through `createOpenAiClient().complete()` — undici's fetch, the SSE parser, the JSON of each chunk,
 *   the delta accumulation — until `onDelta` gets the token;
 * - baseline: the fake server alone, read raw over node:http — until the bytes of the token's event arrive.
 * Server and client share one process (and so one clock); the difference is what the client adds per token.
 */
import { createOpenAiClient } from '../../main/runtime/agents/model.js';
import type { ChatRequest } from '../../main/runtime/agents/types.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import type { FakeOpenAi } from '../helpers/fake-openai.js';
import { percentile, rawTokenRead, tokenLatencies } from './sse-latency.js';
import type { AnyBenchmark, FigureSide } from './harness.js';

/** Answers per pass, tokens per answer, ms between tokens (a fast local model writes one every 10–50 ms). */
const ANSWERS = 8;
const TOKENS = 40;
const DELAY_MS = 2;
const TEXT = Array.from({ length: TOKENS }, (_, i) => `word${i} `).join('');

let fake: Promise<FakeOpenAi> | undefined;
const server = () => (fake ??= startFakeOpenAi());
const client = createOpenAiClient();

/** ms from each text event's write to its arrival, for one answer. */
async function throughClient(f: FakeOpenAi): Promise<number[]> {
  f.enqueue({ text: TEXT, delayMs: DELAY_MS });
  const arrived: number[] = [];
  const req: ChatRequest = { model: { base_url: f.url, model: 'bench' }, messages: [{ role: 'user', content: 'Tell me a story.' }], tools: [] };
  await client.complete(req, { onDelta: () => arrived.push(performance.now()) });
  return tokenLatencies(f.requests.at(-1)!, arrived);
}

function raw(f: FakeOpenAi): Promise<number[]> {
  f.enqueue({ text: TEXT, delayMs: DELAY_MS });
  return rawTokenRead(f);
}

async function pass(side: (f: FakeOpenAi) => Promise<number[]>): Promise<number[]> {
  const f = await server();
  f.reset();
  const all: number[] = [];
  for (let i = 0; i < ANSWERS; i++) all.push(...(await side(f)));
  return all;
}

const side = (name: string, run: (f: FakeOpenAi) => Promise<number[]>, p: number): FigureSide => ({ name, measure: async () => percentile(await pass(run), p) });
const CLIENT = `createOpenAiClient: fetch → SSE → onDelta (${ANSWERS}×${TOKENS} tokens, ${DELAY_MS} ms apart)`;
const RAW = 'fake OpenAI server alone, node:http raw read of the SSE bytes';

export const benchmarks: AnyBenchmark[] = [
  { kind: 'figure', name: 'agents: model token → client, p50', unit: 'ms', candidate: side(CLIENT, throughClient, 50), baselines: [side(RAW, raw, 50)] },
  { kind: 'figure', name: 'agents: model token → client, p95', unit: 'ms', candidate: side(CLIENT, throughClient, 95), baselines: [side(RAW, raw, 95)], target: { max: 5 } },
];

export async function dispose(): Promise<void> {
  if (fake) await (await fake).close();
}
