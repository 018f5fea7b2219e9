/**
 * Token latency against the fake OpenAI server (test/helpers/fake-openai.ts), for the agents' benches: the server notes
 * `performance.now()` as it writes each text event; a side notes when each token arrives; server and reader share one
 * process, so one clock. {@link rawTokenRead} is the baseline: the fake server alone, its SSE bytes read raw.
 */
import { request } from 'node:http';
import type { FakeOpenAi, FakeRequest } from '../helpers/fake-openai.js';

const TEXT_EVENT = '"delta":{"content":';

/** ms from each text event's write to its arrival. @throws when a token is missing */
export function tokenLatencies(r: FakeRequest, arrived: number[]): number[] {
  if (arrived.length !== r.textWrittenAt.length) throw new Error(`${arrived.length} tokens arrived of ${r.textWrittenAt.length} written`);
  return arrived.map((t, i) => t - r.textWrittenAt[i]!);
}

export function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** One streamed answer (queue it first) read over node:http: when each text event's bytes arrive. */
export function rawTokenRead(f: FakeOpenAi): Promise<number[]> {
  const body = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'Tell me a story.' }], stream: true });
  return new Promise((resolve, reject) => {
    const req = request(`${f.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const arrived: number[] = [];
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const now = performance.now();
        // Count the text events completed by this read (an event ends with a blank line).
        pending += chunk;
        const end = pending.lastIndexOf('\n\n');
        if (end < 0) return;
        const events = pending.slice(0, end);
        pending = pending.slice(end + 2);
        for (let i = events.indexOf(TEXT_EVENT); i >= 0; i = events.indexOf(TEXT_EVENT, i + 1)) arrived.push(now);
      });
      res.on('end', () => resolve(tokenLatencies(f.requests.at(-1)!, arrived)));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
