/**
 * Weather for a day, for real (issue 15 §5, §6), end to end with real parts: the shipped intent rules, scenarios and
 * message catalogue, the built and signed tool-weather plugin in the real sandbox, a real SQLite file, and Open-Meteo
 * spoken on 127.0.0.1 (test/helpers/open-meteo.ts) through the operator's origin map — the plugin's manifest still
 * allowlists only the real Open-Meteo origins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_INTENT_FILES, BUILTIN_PLUGINS_DIR, BUILTIN_SCENARIOS_DIR, BUILTIN_TRUST_DIR } from '../../main/host/paths.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { parseHttpOriginMap } from '../../sandbox/capabilities.js';
import { requireBuild } from '../helpers/cli.js';
import { startFakeOpenMeteo } from '../helpers/open-meteo.js';
import type { FakeOpenMeteo } from '../helpers/open-meteo.js';
import { tempDir } from '../helpers/tmp.js';

/** Monday 7 December 2026, 10:00 UTC. */
const MONDAY = Date.parse('2026-12-07T10:00:00Z');
let runtime: Runtime;
let meteo: FakeOpenMeteo;
/** The runtime's clock: Monday morning, moved on by the tests (only between runs). */
const clock = { at: MONDAY, at0: Date.now() };
const now = () => clock.at + (Date.now() - clock.at0);
const moveTo = (t: number) => {
  clock.at = t;
  clock.at0 = Date.now();
};

beforeAll(async () => {
  requireBuild();
  meteo = await startFakeOpenMeteo({ now: MONDAY });
  meteo.setDay('Paris', '2026-12-08', { weather_code: 63, temperature_2m_max: 9.6, temperature_2m_min: 4.2, precipitation_sum: 6.3, precipitation_probability_max: 85 });
  runtime = await createRuntime({
    dataDir: tempDir('tessera-weather-', 'file'),
    shell: 'headless',
    logger: createMemoryLogger(),
    clock: now,
    voice: false,
    builtinTrustDir: BUILTIN_TRUST_DIR,
    pluginDirs: [BUILTIN_PLUGINS_DIR],
    scenarioDirs: [BUILTIN_SCENARIOS_DIR],
    intentRuleFiles: BUILTIN_INTENT_FILES,
    httpOriginMap: parseHttpOriginMap(meteo.originMap),
  });
  for (let i = 0; i < 400 && !runtime.plugins.find('tool-weather'); i++) await new Promise((r) => setTimeout(r, 25));
}, 60_000);

afterAll(async () => {
  await runtime?.close();
  await meteo?.close();
});

/** What the ui channel shows, per run. */
function watch() {
  const said: Array<{ run_id: string | null; text: string }> = [];
  const ui = runtime.io.attachUi({ send: (m) => m.type === 'say' && said.push({ run_id: m.message.run_id, text: m.message.text }) });
  return { of: (runId: string) => said.filter((m) => m.run_id === runId).map((m) => m.text), dispose: () => ui.dispose() };
}
const ask = async (text: string) => {
  const outcome = await runtime.io.input(text);
  expect(outcome.kind).toBe('intent');
  return outcome as { run_id: string; intent: string; slots: Record<string, unknown> };
};

describe('weather for a day', () => {
  it('answers "weather in Paris tomorrow" with Open-Meteo\'s forecast for Tuesday in Paris, and publishes it for the guide', async () => {
    const ui = watch();
    const forecasts: unknown[] = [];
    const sub = runtime.bus.subscribe('plugin.tool-weather.forecast', (e) => void forecasts.push(e.payload));
    const run = await ask('weather in Paris tomorrow');
    expect(run).toMatchObject({ intent: 'weather.day', slots: { city: 'paris', day: 'tomorrow' } });
    await expect.poll(() => ui.of(run.run_id), { timeout: 20_000 }).toEqual(['Paris, tomorrow: rain, 4 to 10°C, 85% chance of precipitation.']);
    expect((await runtime.scenarios.wait(run.run_id, 10_000)).state).toBe('completed');
    expect(forecasts).toEqual([expect.objectContaining({ place: { name: 'Paris', lat: 48.85341, lon: 2.3488 }, date: '2026-12-08', precipitation_probability_max: 85, offline: false })]);
    // Without a day: the current conditions Open-Meteo reports.
    const current = await ask("what's the weather in Paris");
    expect(current).toMatchObject({ intent: 'weather.now', slots: { city: 'paris' } });
    await expect.poll(() => ui.of(current.run_id), { timeout: 20_000 }).toEqual([expect.stringMatching(/^Paris: partly cloudy, -?\d+°C\.$/)]);
    await sub.dispose();
    ui.dispose();
  }, 30_000);

  it('answers "погода в Париже завтра" in Russian', async () => {
    const ui = watch();
    const run = await ask('погода в Париже завтра');
    expect(run).toMatchObject({ intent: 'weather.day', slots: { city: 'paris', day: 'tomorrow' } });
    await expect.poll(() => ui.of(run.run_id), { timeout: 20_000 }).toEqual(['Париж, завтра: дождь, от 4 до 10 °C, вероятность осадков 85%.']);
    expect(meteo.requests).toContain('/v1/search?name=paris&count=1&language=ru&format=json');
    ui.dispose();
  }, 30_000);

  it('says aloud that it is offline and how old the forecast is when Open-Meteo cannot be reached', async () => {
    const ui = watch();
    meteo.mode = 'drop';
    moveTo(MONDAY + 3 * 3_600_000);
    try {
      const en = await ask('weather in Paris tomorrow');
      await expect.poll(() => ui.of(en.run_id), { timeout: 20_000 }).toEqual(['Offline: the forecast from 3 hours ago says: Paris, tomorrow: rain, 4 to 10°C, 85% chance of precipitation.']);
      const ru = await ask('погода в Париже завтра');
      await expect.poll(() => ui.of(ru.run_id), { timeout: 20_000 }).toEqual(['Нет связи. Прогноз, полученный 3 часа назад: Париж, завтра: дождь, от 4 до 10 °C, вероятность осадков 85%.']);
      // "What's the weather in Paris" offline: no current conditions to give, today's saved forecast with its age.
      const current = await ask("what's the weather in Paris");
      expect(current.intent).toBe('weather.now');
      await expect.poll(() => ui.of(current.run_id), { timeout: 20_000 }).toEqual([expect.stringMatching(/^Offline: the forecast from 3 hours ago says: Paris, today: partly cloudy, -?\d+ to \d+°C, 10% chance of precipitation\.$/)]);
      // A place nothing was saved for: the scenario's own words, after its retries.
      const oslo = await ask('погода в Берлине завтра');
      expect((await runtime.scenarios.wait(oslo.run_id, 40_000)).state).toBe('failed');
      await expect.poll(() => ui.of(oslo.run_id)).toEqual(['Извините, сейчас не удаётся узнать прогноз: сервис погоды не отвечает, а сохранённого прогноза для этого места здесь нет. Попробуйте через несколько минут.']);
    } finally {
      meteo.mode = 'ok';
      ui.dispose();
    }
  }, 60_000);
});
