/**
 * mic/tts locks on real audio (issue 6 point 2): many concurrent scenarios speak (espeak-ng into a paced file
 * sink, the sound card's stand-in) and listen (a WAV espeak-ng spoke, through the file recorder, Silero VAD and
 * pocketsphinx), with step locks in both orders. The audio timeline must show no two utterances at once and
 * no two listens at once; a cancel releases what the cancelled run held.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createVoice } from '../../main/runtime/voice/index.js';
import { createFileRecorder } from '../../main/runtime/voice/recorder.js';
import { createFileSink } from '../../main/runtime/voice/sink.js';
import type { FileSink, Recorder } from '../../main/runtime/voice/types.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

const RULES = new URL('../../resources/intents/en.yaml', import.meta.url).pathname;

let runtime: Runtime;
let sink: FileSink;
const listens: Array<{ start: number; end: number }> = [];
let answerWav: string;

/** A file recorder (realtime pace, like a microphone) whose reading interval goes on the listen timeline. */
function trackedMicrophone(): Recorder {
  const inner = createFileRecorder(answerWav, { realtime: 0.5 });
  return {
    source: inner.source,
    stop: () => inner.stop(),
    async *[Symbol.asyncIterator]() {
      const entry = { start: performance.timeOrigin + performance.now(), end: Infinity };
      listens.push(entry);
      try {
        yield* inner;
      } finally {
        entry.end = performance.timeOrigin + performance.now();
      }
    },
  };
}

const noOverlap = (spans: Array<{ start: number; end: number }>) => {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const overlaps: string[] = [];
  for (let i = 1; i < sorted.length; i++) if (sorted[i]!.start < sorted[i - 1]!.end) overlaps.push(`${i}: starts ${(sorted[i - 1]!.end - sorted[i]!.start).toFixed(1)} ms before the previous ends`);
  return overlaps;
};

beforeAll(async () => {
  const dir = tempDir('tessera-io-locks-', 'file');
  answerWav = join(dir, 'answer.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-w', answerWav, '--', 'please continue']);
  sink = createFileSink(join(dir, 'sink'), { pace: 0.2 });
  runtime = await createRuntime({
    dataDir: join(dir, 'data'),
    shell: 'headless',
    logger: createMemoryLogger(),
    intentRuleFiles: [RULES],
    scenarioLimits: { global: 16, pools: { cpu: 2, io: 16 } },
    io: { in: ['voice'], out: ['voice'] },
    voice: async (ruleSets) => ({ voice: await createVoice({ ruleSets, config: { cacheDir: join(dir, 'voice') } }), sink, microphone: trackedMicrophone }),
  });
}, 120_000);

afterAll(() => runtime?.close(), 30_000);

describe('mic and tts locks on real audio', () => {
  it('never speaks two utterances at once nor listens twice at once, whatever order runs take their locks in', async () => {
    runtime.scenarios.register(scenario('talk_listen_a', [
      { name: 'hello', action: 'io.say', with: { text: 'Hello from run ${ctx.n}.' } },
      { name: 'ask', action: 'io.ask', with: { prompt: 'Run ${ctx.n}, what now?' }, locks: ['mic', 'tts'], output: 'answer' },
      { name: 'bye', action: 'io.say', with: { text: 'Run ${ctx.n} heard ${bag.answer}.' }, locks: ['tts'] },
    ]));
    runtime.scenarios.register(scenario('talk_listen_b', [
      { name: 'ask', action: 'io.ask', with: { prompt: 'Run ${ctx.n}, speak up.' }, locks: ['tts', 'mic'], output: 'answer' },
      { name: 'bye', action: 'io.say', with: { text: 'Thanks, run ${ctx.n}.' } },
    ]));
    const before = sink.timeline.length;
    const ids = Array.from({ length: 10 }, (_, n) => runtime.scenarios.run(n % 2 === 0 ? 'talk_listen_a' : 'talk_listen_b', { n }, { priority: (['LOW', 'NORM', 'HIGH'] as const)[n % 3]! }));
    const runs = await Promise.all(ids.map((id) => runtime.scenarios.wait(id, 90_000)));
    expect(runs.map((r) => r.state)).toEqual(ids.map(() => 'completed'));
    for (const r of runs) expect(String(r.bag['answer'])).toMatch(/continue/);
    await runtime.io.idle();

    const utterances = sink.timeline.slice(before).map((t) => ({ start: t.started_at, end: t.ended_at }));
    expect(utterances).toHaveLength(5 * 3 + 5 * 2);
    expect(noOverlap(utterances)).toEqual([]);
    expect(listens).toHaveLength(10);
    expect(noOverlap(listens)).toEqual([]);
    expect(runtime.locks.state()).toEqual({ holders: [], waiters: [] });
    const rows = runtime.store.db.prepare("SELECT count(*) AS n FROM io_messages WHERE state = 'delivered' AND delivered_to = '[\"voice\"]'").get() as { n: number };
    expect(rows.n).toBe(25);
  }, 180_000);

  it('releases the locks of a run cancelled while it waits for an answer, and the next run gets them', async () => {
    runtime.scenarios.register(scenario('hold_and_wait', [{ name: 'ask', action: 'io.ask', with: { prompt: 'Say nothing.' }, locks: ['mic', 'tts'] }], {}));
    runtime.scenarios.register(scenario('speak_after', [{ name: 'say', action: 'io.say', with: { text: 'My turn.' }, locks: ['tts'] }]));
    const holder = runtime.scenarios.run('hold_and_wait', { io: { in: ['text'], out: ['voice'] } });
    await waitFor(() => runtime.locks.state().holders.some((h) => h.owner === holder && h.resource === 'mic'));
    const next = runtime.scenarios.run('speak_after');
    await waitFor(() => runtime.locks.state().waiters.some((w) => w.owner === next));
    runtime.scenarios.cancel(holder);
    expect((await runtime.scenarios.wait(holder, 10_000)).state).toBe('cancelled');
    expect((await runtime.scenarios.wait(next, 10_000)).state).toBe('completed');
    await runtime.io.idle();
    expect(runtime.locks.state()).toEqual({ holders: [], waiters: [] });
  }, 60_000);

  it("speaks a HIGH run's message before a LOW run's that asked first", async () => {
    runtime.scenarios.register(scenario('say_once', [{ name: 'say', action: 'io.say', with: { text: 'Priority ${ctx.p}.' } }]));
    const hold = await runtime.locks.acquire(['tts'], { owner: 'test-holder' });
    const low = runtime.scenarios.run('say_once', { p: 'low' }, { priority: 'LOW' });
    await waitFor(() => runtime.locks.state().waiters.some((w) => w.owner === low));
    const high = runtime.scenarios.run('say_once', { p: 'high' }, { priority: 'HIGH' });
    await waitFor(() => runtime.locks.state().waiters.some((w) => w.owner === high));
    expect(runtime.locks.state().waiters.map((w) => [w.owner, w.priority])).toEqual([[high, 'HIGH'], [low, 'LOW']]);
    hold();
    await runtime.scenarios.wait(low, 10_000);
    await runtime.scenarios.wait(high, 10_000);
    await runtime.io.idle();
    const spoken = runtime.journal.query({ topic: 'io.voice.spoken', limit: 1000 }).events.map((e) => (e.payload as { run_id: string }).run_id).filter((id) => id === low || id === high);
    expect(spoken).toEqual([high, low]);
  }, 60_000);
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
