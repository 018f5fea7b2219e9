/**
 * Coalesced plugin calls (sandbox/client.ts CallOptions.coalesce) through the real sandbox host process: calls
 * started by separate callbacks of one event-loop turn leave in one write to the host when coalesced, one write each
 * when not, and every call gets its own answer either way. The launcher is the real fork launcher, wrapped to
 * record what the runtime writes to the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createSandboxHost, forkLauncher } from '../../sandbox/client.js';
import type { SandboxHost } from '../../sandbox/client.js';
import type { RuntimeToHost } from '../../sandbox/protocol.js';

const CODE = `export function decide(input) { return { verdict: input.n % 2 === 0 ? 'ACK' : 'NACK', reason: 'n=' + input.n }; }\n`;
const LIMITS = { memoryMb: 32, timeoutMs: 1000, deadlineMs: 5000, maxOutputChars: 4096 };
const NOW = Date.parse('2026-03-01T12:00:00Z');
const CTX = JSON.stringify({ now: new Date(NOW).toISOString(), trace_id: '0'.repeat(32), plugin: { name: 'parity', version: '1.0.0' } });

let host: SandboxHost;
const written: RuntimeToHost[] = [];

beforeAll(async () => {
  host = createSandboxHost({
    logger: createMemoryLogger(),
    launcher: (entry) => {
      const child = forkLauncher(entry);
      return { ...child, get pid() { return child.pid; }, send: (m) => (written.push(m), child.send(m)) };
    },
  });
  await host.load({ key: 'parity', kind: 'policy', code: CODE, limits: LIMITS });
}, 30_000);

afterAll(() => host.dispose());

/** Starts one call from each of three timer callbacks of one turn; resolves with their answers. */
async function threeCalls(coalesce: boolean): Promise<string[]> {
  const calls: Array<Promise<{ value: string }>> = [];
  await new Promise<void>((resolve) => {
    for (const n of [1, 2, 3]) setTimeout(() => calls.push(host.call('parity', JSON.stringify({ n }), CTX, NOW, undefined, { coalesce })), 0);
    setTimeout(resolve, 5);
  });
  return (await Promise.all(calls)).map((r) => r.value);
}

const callsIn = (m: RuntimeToHost): number => (m.t === 'call' ? 1 : m.t === 'batch' ? m.messages.filter((x) => x.t === 'call').length : 0);

describe('coalesced plugin calls', () => {
  it('leave in one write when coalesced, and each gets its own answer', async () => {
    written.length = 0;
    const answers = await threeCalls(true);
    expect(answers.map((a) => JSON.parse(a) as unknown)).toEqual([
      { verdict: 'NACK', reason: 'n=1' },
      { verdict: 'ACK', reason: 'n=2' },
      { verdict: 'NACK', reason: 'n=3' },
    ]);
    expect(written.map(callsIn)).toEqual([3]);
  });

  it('leave one write each when not coalesced', async () => {
    written.length = 0;
    const answers = await threeCalls(false);
    expect(answers.map((a) => (JSON.parse(a) as { reason: string }).reason)).toEqual(['n=1', 'n=2', 'n=3']);
    expect(written.map(callsIn)).toEqual([1, 1, 1]);
  });
});
