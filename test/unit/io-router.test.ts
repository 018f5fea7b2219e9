/**
 * The I/O router against a real runtime (real SQLite file, journal, bus, scenario engine, lock manager) with
 * voice disabled: channels, degradation to inbox.local, questions and answers, intents, crash recovery.
 */
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { TesseraEvent } from '../../main/common/api.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime, RuntimeOptions } from '../../main/runtime/index.js';
import type { UiMessage } from '../../main/runtime/io/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close();
});

async function start(dataDir = tempDir('tessera-io-'), extra: Partial<RuntimeOptions> = {}) {
  const runtime = await createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger(), voice: false, ...extra });
  runtimes.push(runtime);
  return { runtime, dataDir };
}

const topic = (runtime: Runtime, t: string): TesseraEvent[] => runtime.journal.query({ topic: t, limit: 1000 }).events;

describe('I/O router', () => {
  it('delivers to the console, degrades the ui with no UI connected, and inboxes what no channel took', async () => {
    const { runtime } = await start();
    const shown = await runtime.io.send('console', 'to the log');
    expect(shown).toMatchObject({ state: 'delivered', delivered_to: ['console'], reasons: {} });

    const nobody = await runtime.io.send('ui', 'nobody is watching');
    expect(nobody).toMatchObject({ state: 'inboxed', delivered_to: [], reasons: { ui: 'no UI is connected' } });
    expect(topic(runtime, 'io.degraded').map((e) => e.payload)).toEqual([{ message_id: nobody.id, run_id: null, channel: 'ui', reason: 'no UI is connected' }]);
    expect(topic(runtime, 'io.inboxed').map((e) => (e.payload as { message_id: number }).message_id)).toEqual([nobody.id]);

    const received: UiMessage[] = [];
    const ui = runtime.io.attachUi({ send: (m) => received.push(m) });
    const seen = await runtime.io.send(['ui', 'voice'], 'hello kiosk');
    // Voice is off, the UI is there: delivered (one channel took it), voice's reason recorded and journaled.
    expect(seen.state).toBe('delivered');
    expect(seen.delivered_to).toEqual(['ui']);
    expect(seen.reasons['voice']).toContain('turned off');
    expect(received).toEqual([{ type: 'say', message: { id: seen.id, run_id: null, text: 'hello kiosk' } }]);
    ui.dispose();

    const unknown = await runtime.io.send('tg', 'a telegram');
    expect(unknown.state).toBe('inboxed');
    expect(unknown.reasons['tg']).toContain('no adapter');
    expect(runtime.io.inbox().map((m) => m.id)).toEqual([nobody.id, unknown.id]);
    expect(runtime.io.ack([nobody.id, 999_999])).toEqual([nobody.id]);
    expect(runtime.io.ack([nobody.id])).toEqual([]);
    expect(runtime.io.inbox().map((m) => m.id)).toEqual([unknown.id]);
    expect(runtime.io.inbox({ include_acked: true }).map((m) => m.id)).toEqual([nobody.id, unknown.id]);
    expect(runtime.io.status().inbox_unread).toBe(1);
  });

  it('refuses empty and oversized text and an empty channel list', async () => {
    const { runtime } = await start();
    expect(() => runtime.io.send('console', '   ')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => runtime.io.send('console', 'x'.repeat(2001))).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => runtime.io.send([], 'x')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    await expect(runtime.io.input('  ')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(runtime.io.input('hi', { run_id: 'r' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('says why voice is off, in the status and in the journal', async () => {
    const { runtime } = await start();
    await runtime.io.idle();
    await new Promise((r) => setImmediate(r));
    const status = runtime.io.status();
    expect(status.voice_enabled).toBe(false);
    expect(status.voice_disabled_reason).toContain('turned off');
    expect(status.out['voice']).toMatchObject({ available: false });
    expect(status.in.voice).toMatchObject({ available: false });
    expect(status.out['console']).toEqual({ available: true });
    expect(topic(runtime, 'io.voice.status').map((e) => e.payload)).toEqual([{ enabled: false, reason: expect.stringContaining('turned off'), parts: null }]);
  });

  it('ends every io.say of many concurrent runs in exactly one delivered-or-inboxed record', async () => {
    const { runtime } = await start();
    const ui = runtime.io.attachUi({ send: () => undefined });
    runtime.scenarios.register(scenario('chatty', [
      { name: 'one', action: 'io.say', with: { text: 'first ${ctx.n}' } },
      { name: 'two', action: 'io.say', with: { text: 'second ${ctx.n}', channel: 'console' }, locks: ['tts'] },
      { name: 'three', action: 'io.say', with: { text: 'third ${ctx.n}' } },
    ]));
    const outs = [['ui'], ['voice'], ['console', 'voice'], ['inbox.local'], ['tg']];
    const ids = Array.from({ length: 30 }, (_, n) => runtime.scenarios.run('chatty', { n, io: { out: outs[n % outs.length] } }));
    // Halfway, the UI goes away: later ui messages degrade.
    setTimeout(() => ui.dispose(), 5);
    for (const id of ids) expect((await runtime.scenarios.wait(id, 20_000)).state).toBe('completed');
    await runtime.io.idle();

    const says = topic(runtime, 'io.say');
    expect(says).toHaveLength(90);
    const rows = runtime.store.db.prepare('SELECT key, state, delivered_to, requested FROM io_messages').all() as Array<{ key: string; state: string; delivered_to: string; requested: string | null }>;
    expect(rows).toHaveLength(90);
    expect(new Set(rows.map((r) => r.key))).toEqual(new Set(says.map((e) => (e.payload as { idempotency_key: string }).idempotency_key)));
    expect(rows.filter((r) => r.state === 'pending')).toEqual([]);
    const finals = [...topic(runtime, 'io.delivered'), ...topic(runtime, 'io.inboxed')].map((e) => (e.payload as { message_id: number }).message_id);
    expect(finals).toHaveLength(90);
    expect(new Set(finals).size).toBe(90);
    // Step "two" names its channel: it wins over ctx.io.
    expect(rows.filter((r) => r.key.endsWith('/two')).every((r) => r.state === 'delivered' && r.delivered_to === '["console"]')).toBe(true);
    // Voice-only runs and "tg" never deliver; inbox.local is inboxed on purpose.
    const byRun = (n: number) => rows.filter((r) => r.key.includes(`/${ids[n]}/`) && !r.key.endsWith('/two'));
    expect(byRun(1).every((r) => r.state === 'inboxed')).toBe(true);
    expect(byRun(2).every((r) => r.state === 'delivered')).toBe(true);
    expect(byRun(3).every((r) => r.state === 'inboxed')).toBe(true);
    expect(byRun(4).every((r) => r.state === 'inboxed')).toBe(true);
  });

  it('answers io.ask from text: by run and step, or the oldest open question; unknown ones are refused', async () => {
    const { runtime } = await start();
    const asked: UiMessage[] = [];
    runtime.io.attachUi({ send: (m) => asked.push(m) });
    runtime.scenarios.register(scenario('ask_name', [
      { name: 'ask', action: 'io.ask', with: { prompt: 'What is your name, ${ctx.who}?' }, output: 'name' },
      { name: 'greet', action: 'io.say', with: { text: 'Hello, ${bag.name}!' } },
    ]));
    const a = runtime.scenarios.run('ask_name', { who: 'first' });
    const b = runtime.scenarios.run('ask_name', { who: 'second' });
    await waitFor(() => runtime.io.status().questions.length === 2);
    expect(runtime.io.status().questions.map((q) => [q.run_id, q.step, q.prompt])).toEqual([[a, 'ask', 'What is your name, first?'], [b, 'ask', 'What is your name, second?']]);
    expect(asked.filter((m) => m.type === 'ask')).toHaveLength(2);

    await expect(runtime.io.input('Ada', { run_id: a, step: 'nope' })).rejects.toMatchObject({ code: 'IO_ASK_NOT_FOUND' });
    expect(await runtime.io.input('Grace', { run_id: b, step: 'ask' })).toEqual({ kind: 'answer', text: 'Grace', channel: 'text', run_id: b, step: 'ask' });
    expect(await runtime.io.input('  Ada ')).toEqual({ kind: 'answer', text: 'Ada', channel: 'text', run_id: a, step: 'ask' });
    expect((await runtime.scenarios.wait(a, 5000)).bag).toEqual({ name: 'Ada' });
    expect((await runtime.scenarios.wait(b, 5000)).bag).toEqual({ name: 'Grace' });
    await runtime.io.idle();
    expect(asked.filter((m) => m.type === 'say').map((m) => (m as { message: { text: string } }).message.text)).toEqual(expect.arrayContaining(['Hello, Ada!', 'Hello, Grace!']));
    expect(runtime.io.status().questions).toEqual([]);
    await expect(runtime.io.input('late', { run_id: a, step: 'ask' })).rejects.toMatchObject({ code: 'IO_ASK_NOT_FOUND' });
  });

  it('closes the question of a cancelled run', async () => {
    const { runtime } = await start();
    runtime.scenarios.register(scenario('ask_forever', [{ name: 'ask', action: 'io.ask', with: { prompt: 'Well?' } }]));
    const id = runtime.scenarios.run('ask_forever');
    await waitFor(() => runtime.io.status().questions.length === 1);
    runtime.scenarios.cancel(id);
    await runtime.scenarios.wait(id, 5000);
    expect(runtime.io.status().questions).toEqual([]);
    // With nothing waiting and no intents matching, the utterance is not understood (and says so).
    expect(await runtime.io.input('hello?')).toMatchObject({ kind: 'unrecognized' });
  });

  it('routes an utterance that answers nothing to the scenario of its intent, with ctx.io for the reply', async () => {
    const dir = tempDir('tessera-io-intents-');
    writeFileSync(`${dir}/en.yaml`, 'language: en\nintents:\n  echo.back:\n    scenario: echo_back\n    data:\n      - sentences:\n          - echo {word}\nlists:\n  word:\n    wildcard: true\n');
    const { runtime } = await start(tempDir('tessera-io-'), { intentRuleFiles: [`${dir}/en.yaml`] });
    const received: UiMessage[] = [];
    runtime.io.attachUi({ send: (m) => received.push(m) });
    runtime.scenarios.register(scenario('echo_back', [{ name: 'say', action: 'io.say', with: { text: 'You said ${ctx.word}.' } }]));
    const outcome = await runtime.io.input('echo marmalade');
    expect(outcome).toMatchObject({ kind: 'intent', intent: 'echo.back', slots: { word: 'marmalade' }, channel: 'text' });
    const runId = (outcome as { run_id: string }).run_id;
    const run = await runtime.scenarios.wait(runId, 5000);
    expect(run.ctx).toMatchObject({ io: { in: ['voice', 'text'], out: ['ui'] }, utterance: 'echo marmalade', intent: 'echo.back' });
    await runtime.io.idle();
    expect(received).toContainEqual({ type: 'say', message: expect.objectContaining({ run_id: runId, text: 'You said marmalade.' }) });
    expect(topic(runtime, 'io.input').map((e) => (e.payload as { kind: string }).kind)).toEqual(['intent']);
  });

  it('tells the traveller in plain words when the run they asked for times out, waits in vain for an answer, or is stopped; runs nobody asked for stay silent', async () => {
    const dir = tempDir('tessera-io-intents-');
    writeFileSync(`${dir}/en.yaml`, [
      'language: en',
      'intents:',
      '  slow.thing: {scenario: slow, data: [{sentences: [be slow]}]}',
      '  ask.thing: {scenario: asker, data: [{sentences: [ask me]}]}',
      '  long.thing: {scenario: long, data: [{sentences: [take long]}]}',
      '',
    ].join('\n'));
    const { runtime } = await start(tempDir('tessera-io-'), { intentRuleFiles: [`${dir}/en.yaml`] });
    const said: Array<{ run_id: string | null; text: string }> = [];
    runtime.io.attachUi({ send: (m) => m.type === 'say' && said.push({ run_id: m.message.run_id, text: m.message.text }) });
    runtime.scenarios.register(scenario('slow', [{ name: 'nap', action: 'wait', with: { duration: '1h' }, timeout: 50 }]));
    runtime.scenarios.register(scenario('asker', [{ name: 'ask', action: 'io.ask', with: { prompt: 'Which one?', timeout: 100 } }]));
    runtime.scenarios.register(scenario('long', [{ name: 'nap', action: 'wait', with: { duration: '1h' } }]));
    const runOf = async (text: string) => (await runtime.io.input(text) as { run_id: string }).run_id;

    const slow = await runOf('be slow');
    expect((await runtime.scenarios.wait(slow, 5000)).error?.message).toContain('STEP_TIMEOUT');
    const asker = await runOf('ask me');
    expect((await runtime.scenarios.wait(asker, 5000)).error?.message).toContain('STEP_TIMEOUT');
    const long = await runOf('take long');
    await waitFor(() => runtime.scenarios.status(long).state === 'running');
    runtime.scenarios.cancel(long, 'staff stopped it');
    await runtime.scenarios.wait(long, 5000);
    const quiet = runtime.scenarios.run('slow');
    await runtime.scenarios.wait(quiet, 5000);
    await runtime.io.idle();
    expect(said.filter((m) => m.run_id !== null && m.run_id !== asker)).toEqual([
      { run_id: slow, text: 'Sorry, that took too long, so I stopped. Please try again.' },
      { run_id: long, text: 'That was stopped before it finished.' },
    ]);
    expect(said.filter((m) => m.run_id === asker).map((m) => m.text)).toEqual(['Which one?', 'I did not get an answer, so I stopped there. Ask me again whenever you like.']);
    expect(said.some((m) => m.run_id === quiet)).toBe(false);
  });

  it('await resolves with the next text input, or null after its timeout', async () => {
    const { runtime } = await start();
    const next = runtime.io.await({ timeout: 2000 });
    await runtime.io.input('blue');
    expect(await next).toEqual({ text: 'blue', channel: 'text' });
    expect(await runtime.io.await({ timeout: 20 })).toBeNull();
    // Voice preferred but unavailable: text still answers.
    const spoken = runtime.io.await({ prefer: 'voice', timeout: 2000 });
    await runtime.io.input('green');
    expect(await spoken).toEqual({ text: 'green', channel: 'text' });
  });

  it('delivers at start what a crash left pending, once', async () => {
    const dataDir = tempDir('tessera-io-crash-');
    const first = await start(dataDir);
    // Accepted (the row is written) but the process "dies" before delivery: simulate with a row left pending.
    first.runtime.store.db.prepare("INSERT INTO io_messages (key, run_id, requested, text, state, created_at) VALUES ('crash-1', NULL, '[\"console\"]', 'left behind', 'pending', 0)").run();
    await first.runtime.close();
    runtimes.splice(runtimes.indexOf(first.runtime), 1);
    const second = await start(dataDir);
    await second.runtime.io.idle();
    const rows = second.runtime.store.db.prepare("SELECT state, delivered_to FROM io_messages WHERE key = 'crash-1'").all();
    expect(rows).toEqual([{ state: 'delivered', delivered_to: '["console"]' }]);
    expect(topic(second.runtime, 'io.delivered').filter((e) => (e.payload as { text: string }).text === 'left behind')).toHaveLength(1);
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('dialogue sessions: one dialogue per traveller', () => {
  const RESOURCES = new URL('../../resources/', import.meta.url).pathname;
  /** A runtime with the shipped English rules and scenarios, plus `ring soon` (a timer of 300 ms). */
  async function kiosk(extra: Partial<RuntimeOptions> = {}) {
    const dir = tempDir('tessera-io-sessions-');
    writeFileSync(`${dir}/ring.yaml`, 'language: en\nintents:\n  ring.soon:\n    scenario: ring_soon\n    data: [{sentences: [ring soon]}]\n');
    const { runtime } = await start(tempDir('tessera-io-'), { intentRuleFiles: [`${RESOURCES}intents/en.yaml`, `${dir}/ring.yaml`], scenarioDirs: [`${RESOURCES}scenarios`], builtinTrustDir: `${RESOURCES}trust`, ...extra });
    // It rings on the speaker and the screen, whatever way it was asked.
    runtime.scenarios.register(scenario('ring_soon', [{ name: 'nap', action: 'wait', with: { duration: 300 } }, { name: 'ring', action: 'io.say', with: { text: 'Ring!', channel: ['voice', 'ui'] } }]));
    return runtime;
  }
  /** A Journey Guide showing `session`: what it was shown. */
  const screen = (runtime: Runtime, session: () => string | null) => {
    const shown: UiMessage[] = [];
    const ui = runtime.io.attachUi({ send: (m) => shown.push(m), session });
    return { shown, said: () => shown.flatMap((m) => (m.type === 'say' ? [m.message.text] : [])), dispose: () => ui.dispose() };
  };

  it("does not let one traveller's open question capture the next traveller's words", async () => {
    const runtime = await kiosk();
    const a = runtime.io.startSession().session.id;
    const first = screen(runtime, () => a);
    const greeting = await runtime.io.input('hello', { session: a });
    await waitFor(() => runtime.io.status().questions.length === 1);
    expect(runtime.io.status().questions[0]).toMatchObject({ run_id: (greeting as { run_id: string }).run_id, session: a, prompt: 'Hi! What should I call you?' });

    // Another kiosk's traveller speaks while the question waits: it is not theirs to answer.
    const b = runtime.io.startSession().session.id;
    const second = screen(runtime, () => b);
    expect(await runtime.io.input('Hello, show my tickets!', { session: b })).toMatchObject({ kind: 'unrecognized', session: b });
    expect(runtime.io.status().questions).toHaveLength(1);
    expect(await runtime.io.input('Ada', { session: a })).toMatchObject({ kind: 'answer', session: a });
    await runtime.scenarios.wait((greeting as { run_id: string }).run_id, 5000);
    await runtime.io.idle();
    expect(first.said()).toEqual(['Hi! What should I call you?', 'Hello, Ada! Tessera is ready.']);
    expect(second.said()).toEqual(['Sorry, I did not understand "Hello, show my tickets!".']);
  });

  it('expires the question of a traveller who has gone: the next traveller starts afresh', async () => {
    const runtime = await kiosk();
    const a = runtime.io.startSession().session.id;
    const run = (await runtime.io.input('hello', { session: a }) as { run_id: string }).run_id;
    await waitFor(() => runtime.io.status().questions.length === 1);
    const { session, ended } = runtime.io.startSession({ end: a });
    expect(ended).toEqual({ id: a, reason: 'new_traveller' });
    expect(runtime.io.status().questions).toEqual([]);
    const next = screen(runtime, () => session.id);
    expect(await runtime.io.input('Hello, show my tickets!', { session: session.id })).toMatchObject({ kind: 'unrecognized' });
    // The old run got no answer, and what it said after is kept for the operator, not shown to anyone.
    const done = await runtime.scenarios.wait(run, 5000);
    expect(done.bag).toEqual({ answer: null });
    await runtime.io.idle();
    expect(next.said()).toEqual(['Sorry, I did not understand "Hello, show my tickets!".']);
    const last = runtime.io.inbox().filter((m) => m.run_id === run).at(-1)!;
    expect(last).toMatchObject({ text: 'Hello, friend! Tessera is ready.', session: a, state: 'inboxed', reasons: { ui: "the traveller's dialogue ended (new_traveller)" } });
    expect(topic(runtime, 'io.session.ended').map((e) => e.payload)).toEqual([{ session: a, reason: 'new_traveller', expired_questions: 1 }]);
    await expect(runtime.io.input('Ada', { session: a })).rejects.toMatchObject({ code: 'IO_SESSION_ENDED' });
  });

  it("does not take the guide's own suggestion \"what's next?\" as a name: a clear request starts its intent and the question stays open", async () => {
    const runtime = await kiosk();
    const a = runtime.io.startSession().session.id;
    const ui = screen(runtime, () => a);
    const greeting = (await runtime.io.input('hello', { session: a }) as { run_id: string }).run_id;
    await waitFor(() => runtime.io.status().questions.length === 1);
    const next = await runtime.io.input("what's next?", { session: a });
    expect(next).toMatchObject({ kind: 'intent', intent: 'journey.next_step', session: a, question_left_open: { run_id: greeting, step: 'ask_name' } });
    // Answered at once, while the question still waits for the name.
    await runtime.scenarios.wait((next as { run_id: string }).run_id, 5000);
    await waitFor(() => ui.said().length === 2);
    expect(runtime.io.status().questions).toHaveLength(1);
    expect(await runtime.io.input('Ada', { session: a })).toMatchObject({ kind: 'answer', run_id: greeting });
    await runtime.scenarios.wait(greeting, 5000);
    await runtime.io.idle();
    expect(ui.said()).toEqual(['Hi! What should I call you?', 'You have no journey yet: buy a pass and start it on the Guide tab.', 'Hello, Ada! Tessera is ready.']);
  });

  it("keeps an old timer's ring out of the new traveller's conversation and off the speaker", async () => {
    const runtime = await kiosk();
    const a = runtime.io.startSession().session.id;
    const run = (await runtime.io.input('ring soon', { session: a }) as { run_id: string }).run_id;
    const b = runtime.io.startSession({ end: a }).session.id;
    const next = screen(runtime, () => b);
    await runtime.scenarios.wait(run, 5000);
    await runtime.io.idle();
    expect(next.shown).toEqual([]);
    expect(runtime.io.inbox().filter((m) => m.run_id === run)).toEqual([expect.objectContaining({ text: 'Ring!', session: a, state: 'inboxed', delivered_to: [], reasons: { ui: "the traveller's dialogue ended (new_traveller)", voice: "the traveller's dialogue ended (new_traveller)" } })]);
    // A ring of a traveller still there reaches them, and only them.
    const c = runtime.io.startSession().session.id;
    const third = screen(runtime, () => c);
    const own = (await runtime.io.input('ring soon', { session: b }) as { run_id: string }).run_id;
    await runtime.scenarios.wait(own, 5000);
    await runtime.io.idle();
    expect(next.said()).toEqual(['Ring!']);
    expect(third.shown).toEqual([]);
  });

  it('resets a dialogue after the idle time: its question expires, a silent UI-less one is closed, a shown silent one waits', async () => {
    const runtime = await kiosk({ idleResetMs: 300 });
    expect(runtime.io.status().sessions).toEqual({ open: 0, idle_reset_ms: 300 });
    const talked = runtime.io.startSession().session.id;
    const shown = runtime.io.startSession().session.id;
    const orphan = runtime.io.startSession().session.id;
    screen(runtime, () => shown);
    const run = (await runtime.io.input('hello', { session: talked }) as { run_id: string }).run_id;
    await waitFor(() => runtime.io.session(talked)?.ended_at != null && runtime.io.session(orphan)?.ended_at != null, 5000);
    expect(runtime.io.session(talked)).toMatchObject({ end_reason: 'idle' });
    expect(runtime.io.session(orphan)).toMatchObject({ end_reason: 'idle' });
    expect(runtime.io.session(shown)).toMatchObject({ ended_at: null });
    expect((await runtime.scenarios.wait(run, 5000)).bag).toEqual({ answer: null });
    expect(topic(runtime, 'io.session.ended').map((e) => e.payload)).toEqual(expect.arrayContaining([{ session: talked, reason: 'idle', expired_questions: 1 }]));
  });

  it('reads the idle reset from TESSERA_IDLE_RESET and refuses a value it cannot read', async () => {
    const { idleResetFromEnv } = await import('../../main/runtime/io/index.js');
    expect(idleResetFromEnv({})).toBeUndefined();
    expect(idleResetFromEnv({ TESSERA_IDLE_RESET: '90s' })).toBe(90_000);
    expect(idleResetFromEnv({ TESSERA_IDLE_RESET: '2m' })).toBe(120_000);
    expect(idleResetFromEnv({ TESSERA_IDLE_RESET: '1500' })).toBe(1500);
    expect(idleResetFromEnv({ TESSERA_IDLE_RESET: 'off' })).toBe(0);
    expect(() => idleResetFromEnv({ TESSERA_IDLE_RESET: 'soon' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

