/**
 * A sandbox host that dies while the runtime is still writing to it (kill -9 under load): the writes already queued
 * fail with EPIPE before the child's exit is seen. The runtime must survive that, fail the calls in flight with
 * SANDBOX_UNAVAILABLE, restart the host and serve the next call. Real host process, real fork launcher.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createSandboxHost, forkLauncher } from '../../sandbox/client.js';
import type { ChildHandle, SandboxHost } from '../../sandbox/client.js';

const CODE = `export function decide(input) { return { verdict: 'ACK', reason: 'n=' + input.n }; }\n`;
const LIMITS = { memoryMb: 32, timeoutMs: 1000, deadlineMs: 5000, maxOutputChars: 4096 };
const NOW = Date.parse('2026-03-01T12:00:00Z');
const CTX = JSON.stringify({ now: new Date(NOW).toISOString(), trace_id: '0'.repeat(32), plugin: { name: 'echo', version: '1.0.0' } });

let host: SandboxHost | undefined;
afterAll(() => host?.dispose());

describe('a sandbox host killed with writes on their way', () => {
  it('costs the calls in flight and a restart, never the runtime', async () => {
    let child: ChildHandle | undefined;
    host = createSandboxHost({ logger: createMemoryLogger(), launcher: (entry) => (child = forkLauncher(entry)) });
    await host.load({ key: 'echo', kind: 'policy', code: CODE, limits: LIMITS });
    expect(JSON.parse((await host.call('echo', '{"n":0}', CTX, NOW)).value)).toMatchObject({ verdict: 'ACK' });

    const errors: unknown[] = [];
    const onError = (err: unknown) => errors.push(err);
    process.on('uncaughtException', onError);
    try {
      // Kill the host and wait, without letting the event loop run, until it is surely gone: its exit is not seen
      // yet, so the runtime still writes these calls to its pipe.
      process.kill(child!.pid!, 'SIGKILL');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      const calls = Array.from({ length: 20 }, (_, n) => host!.call('echo', JSON.stringify({ n }), CTX, NOW).then(() => 'ok', (e: { code?: string }) => e.code));
      expect(new Set(await Promise.all(calls))).toEqual(new Set(['SANDBOX_UNAVAILABLE']));
      // Restarted, plugins loaded again: the next call is answered.
      let answer: string | undefined;
      for (const end = Date.now() + 20_000; answer === undefined && Date.now() < end; ) {
        answer = await host.call('echo', '{"n":1}', CTX, NOW).then((r) => r.value, () => undefined);
        if (answer === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(JSON.parse(answer!)).toMatchObject({ reason: 'n=1' });
      expect(host.restarts).toBe(1);
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(errors).toEqual([]);
  }, 30_000);
});
