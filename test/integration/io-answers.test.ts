/**
 * Every understood request gets an answer (issue 13 point 15), in the language it was asked in (point 16), end to
 * end with real parts: the shipped intent rules, scenarios and message catalogue, a real SQLite file, and the built
 * tool-weather plugin in the real sandbox whose weather service cannot be reached (the operator's origin map sends
 * its Open-Meteo origins to a loopback port nobody listens on) and which has no forecast saved.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import type { UiMessage } from '../../main/runtime/io/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { BUILTIN_PLUGINS_DIR, BUILTIN_TRUST_DIR } from '../../main/host/paths.js';
import { parseHttpOriginMap } from '../../sandbox/capabilities.js';
import { requireBuild } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const RESOURCES = new URL('../../resources/', import.meta.url).pathname;
let runtime: Runtime;

/** A port that was free a moment ago and has nothing listening on it now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  requireBuild();
  const down = `http://127.0.0.1:${await closedPort()}`;
  runtime = await createRuntime({
    dataDir: tempDir('tessera-io-answers-', 'file'),
    shell: 'headless',
    logger: createMemoryLogger(),
    voice: false,
    builtinTrustDir: BUILTIN_TRUST_DIR,
    pluginDirs: [BUILTIN_PLUGINS_DIR],
    scenarioDirs: [join(RESOURCES, 'scenarios')],
    intentRuleFiles: [join(RESOURCES, 'intents', 'en.yaml'), join(RESOURCES, 'intents', 'ru.yaml')],
    httpOriginMap: parseHttpOriginMap(`https://geocoding-api.open-meteo.com=${down},https://api.open-meteo.com=${down}`),
  });
  for (let i = 0; i < 400 && !runtime.plugins.find('tool-weather'); i++) await new Promise((r) => setTimeout(r, 25));
}, 60_000);

afterAll(async () => {
  await runtime?.close();
});

describe('a weather question with no reachable weather service', () => {
  it('is answered in plain words in the dialogue, once, with the reason kept in the run', async () => {
    const shown: UiMessage[] = [];
    const ui = runtime.io.attachUi({ send: (m) => shown.push(m) });
    const outcome = await runtime.io.input("What's the weather like in Berlin?");
    expect(outcome).toMatchObject({ kind: 'intent', intent: 'weather.now', slots: { city: 'berlin' } });
    const runId = (outcome as { run_id: string }).run_id;
    const run = await runtime.scenarios.wait(runId, 30_000);
    expect(run.state).toBe('failed');
    // What Ops sees: the code and the technical reason.
    expect(run.error).toMatchObject({ code: 'STEP_FAILED', message: expect.stringContaining('could not be reached') });
    await expect.poll(() => shown.filter((m) => m.type === 'say').map((m) => (m as Extract<UiMessage, { type: 'say' }>).message), { timeout: 10_000 }).toEqual([
      { id: expect.any(Number), run_id: runId, text: 'Sorry, I cannot get the weather right now: the weather service is not answering. Please try again in a few minutes.' },
    ]);
    // What the traveller sees has no code and no technical reason in it.
    const said = (shown[0] as Extract<UiMessage, { type: 'say' }>).message.text;
    expect(said).not.toContain(run.error!.code);
    expect(said).not.toContain(run.error!.message);
    const rows = runtime.store.db.prepare('SELECT state, delivered_to FROM io_messages WHERE run_id = ?').all(runId);
    expect(rows).toEqual([{ state: 'delivered', delivered_to: '["ui"]' }]);
    await ui.dispose();
  }, 60_000);
});

/** What the ui channel shows, per run (null: the router's own answers to utterances that started nothing). */
function watch() {
  const said: Array<{ run_id: string | null; text: string }> = [];
  const ui = runtime.io.attachUi({ send: (m) => m.type === 'say' && said.push({ run_id: m.message.run_id, text: m.message.text }) });
  return { said, of: (runId: string | null) => said.filter((m) => m.run_id === runId).map((m) => m.text), dispose: () => ui.dispose() };
}
const runOf = async (text: string) => {
  const outcome = await runtime.io.input(text);
  expect(outcome.kind).toBe('intent');
  return (outcome as { run_id: string }).run_id;
};

describe('answers in the language they were asked in', () => {
  it('counts minutes with each language\'s plural rules and says what it did not understand in that language', async () => {
    const ui = watch();
    const runs = { ru2: await runOf('поставь таймер на 2 минуты'), ru5: await runOf('засеки 5 минут'), en1: await runOf('set a timer for one minute'), en3: await runOf('set a timer for 3 minutes') };
    await runtime.io.input('расскажи анекдот');
    await runtime.io.input('tell me a joke');
    await expect.poll(() => [ui.of(runs.ru2), ui.of(runs.ru5), ui.of(runs.en1), ui.of(runs.en3)]).toEqual([['Таймер на 2 минуты.'], ['Таймер на 5 минут.'], ['Timer set for 1 minute.'], ['Timer set for 3 minutes.']]);
    await expect.poll(() => ui.of(null)).toEqual(['Извините, не удалось понять: «расскажи анекдот».', 'Sorry, I did not understand "tell me a joke".']);
    for (const id of Object.values(runs)) runtime.scenarios.cancel(id);
    ui.dispose();
  });

  it('tells a Russian speaker in Russian that the weather service is not answering', async () => {
    const ui = watch();
    const runId = await runOf('погода в Берлине');
    expect(runtime.scenarios.status(runId).ctx).toMatchObject({ city: 'berlin', language: 'ru' });
    await expect.poll(() => ui.of(runId), { timeout: 30_000 }).toEqual(['Извините, сейчас не удаётся узнать погоду: сервис погоды не отвечает. Попробуйте через несколько минут.']);
    ui.dispose();
  }, 60_000);

  it('plays music only when a player answers, and says so when none does', async () => {
    const ui = watch();
    // A player integration answers a moment later (over HTTP in real life), under the request's trace id.
    const player = runtime.bus.subscribe('media.play', (e) => void setTimeout(() => runtime.bus.publish('media.playing', { album: (e.payload as { album: string }).album }, { trace_id: e.trace_id }), 20));
    const played = await runOf('play the wall by pink floyd in the kitchen');
    await expect.poll(() => ui.of(played)).toEqual(['Playing the wall by pink floyd.']);
    expect((await runtime.scenarios.wait(played, 5000)).state).toBe('completed');
    await player.dispose();
    const unanswered = await runOf('включи альбом Кино');
    expect((await runtime.scenarios.wait(unanswered, 20_000)).state).toBe('failed');
    await expect.poll(() => ui.of(unanswered)).toEqual(['Извините, здесь не отвечает ни один музыкальный плеер.']);
    ui.dispose();
  }, 30_000);
});
