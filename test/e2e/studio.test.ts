import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startUiSession } from '../helpers/browser.js';
import type { UiSession } from '../helpers/browser.js';
import type { StartedTessera } from '../helpers/cli.js';
import { makePublisher } from '../helpers/plugins.js';
import { signPlugin } from '../../sandbox/package.js';

// Plugin Studio in real Chromium against a real headless Tessera, which loads the first-party signed plugins at start.
const PLUGIN = 'policy-existence';
let tessera: StartedTessera;
let page: Page;
let session: UiSession;

const pluginRuns: string[] = [];

/** A pass with three rides: each run takes one in the plugin's key/value store. */
const RIDE_PASS = "export async function invoke(args, host) { const left = ((await host.call('kv.get', { key: 'rides' })) ?? 3) - 1; await host.call('kv.set', { key: 'rides', value: left }); return { left }; }";
/** An author's key, trusted by the Tessera under test through its data folder's trust/. */
const publisher = makePublisher();

beforeAll(async () => {
  session = await startUiSession('tessera-e2e-studio-', { width: 1280, height: 1800 });
  ({ tessera, page } = session);
  mkdirSync(join(session.dataDir, 'trust'), { recursive: true });
  writeFileSync(join(session.dataDir, 'trust', 'author.pem'), publisher.key.publicKeyPem);
  // Tall enough that plugin, input and result all show in one screenshot (the area, not the page, scrolls).
  page.on('request', (req) => new URL(req.url()).pathname === '/api/plugins/test' && pluginRuns.push(req.postData() ?? ''));
});

afterAll(() => session?.close(), 30_000);

/** The manifest as the Studio shows it: the source of the example input the test runs. */
async function shownManifest(): Promise<{ name: string; kind: string; example_input?: unknown }> {
  return JSON.parse((await page.getByTestId('plugin-manifest').textContent()) ?? '') as { name: string; kind: string; example_input?: unknown };
}

async function run(input: string): Promise<void> {
  await page.getByTestId('studio-input').fill(input);
  await page.getByTestId('studio-run').click();
}

describe('Plugin Studio', () => {
  it('lists the first-party plugins and shows the picked one with its manifest, ids and limits', async () => {
    await page.goto(tessera.uiUrl);
    await page.locator('nav a[data-area="studio"]').click();
    await page.getByTestId('area-studio').getByRole('heading', { name: 'Plugin Studio' }).waitFor();
    const item = page.getByTestId('plugin-list').getByTestId(`plugin-item-${PLUGIN}`);
    await item.waitFor();
    expect(await item.textContent()).toContain('policy');
    await item.click();
    expect(await item.getAttribute('aria-pressed')).toBe('true');

    await page.getByTestId('plugin-manifest').waitFor();
    const manifest = await shownManifest();
    expect(manifest).toMatchObject({ name: PLUGIN, kind: 'policy' });
    const bench = page.locator('.studio-bench');
    expect(await bench.textContent()).toMatch(/cidb3:[0-9a-f]{64}/);
    expect(await bench.textContent()).toMatch(/entry_cidb3:[0-9a-f]{64}/);
    expect(await bench.textContent()).toMatch(/\d+ MB memory · \d+ ms CPU/);
    // The input starts as the manifest's example.
    expect(JSON.parse(await page.getByTestId('studio-input').inputValue())).toEqual(manifest.example_input ?? {});
  });

  it('runs the example input in the sandbox and shows the ACK verdict with its measurements', async () => {
    const before = pluginRuns.length;
    await page.getByTestId('studio-run').click();
    const verdict = page.getByTestId('studio-verdict');
    await verdict.waitFor();
    // The example has every required field present (plugins/policy-existence/plugin.json).
    expect(await verdict.textContent()).toBe('ACK');
    expect(await verdict.getAttribute('class')).toContain('verdict-ack');
    expect(pluginRuns.length).toBe(before + 1);
    expect(JSON.parse(pluginRuns.at(-1)!)).toEqual({ plugin: expect.stringContaining(PLUGIN) as unknown, input: (await shownManifest()).example_input });
    const result = page.getByTestId('studio-result');
    expect(await result.textContent()).toMatch(/output_cidb3:[0-9a-f]{64}/);
    expect(await result.textContent()).toMatch(/Heap used\d+ KiB/);
    expect(await page.getByTestId('studio-capability-calls').textContent()).toBe('No capability calls.');
    expect(await page.getByTestId('studio-error').count()).toBe(0);
  });

  it('shows NACK, in its colour and naming the field, when a required field is missing from the subject', async () => {
    await page.getByTestId('studio-now').fill('2025-01-31T09:00:00Z');
    await run(JSON.stringify({ required: ['name', 'ticket.number'], subject: { name: 'Ada Lovelace', ticket: {} } }, null, 2));
    await expect.poll(() => page.getByTestId('studio-verdict').getAttribute('data-verdict'), { timeout: 10_000 }).toBe('NACK');
    expect(await page.getByTestId('studio-verdict').getAttribute('class')).toContain('verdict-nack');
    const result = page.getByTestId('studio-result');
    expect(await result.textContent()).toContain('missing: ticket.number');
    expect(await result.textContent()).toContain('2025-01-31T09:00:00.000Z');
    expect(JSON.parse(pluginRuns.at(-1)!)).toMatchObject({ now: '2025-01-31T09:00:00Z' });
    await page.getByTestId('studio-verdict').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'studio.png') });
  });

  it('reports invalid JSON input locally, without calling the runtime', async () => {
    const before = pluginRuns.length;
    await run('{"required": ["name",');
    const error = page.getByRole('alert').and(page.getByTestId('studio-error'));
    await error.waitFor();
    expect(await error.getAttribute('data-code')).toBe('LOCAL');
    expect(await error.textContent()).toContain('not valid JSON');
    expect(await page.getByTestId('studio-verdict').count()).toBe(0);
    expect(pluginRuns.length).toBe(before);
    await error.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'studio-invalid-json.png') });
  });

  it('runs under the strict CSP without console errors', () => {
    // The refused load and the failed runs are HTTP errors the browser logs as such; nothing else went wrong.
    expect(session.consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of (400|422)/.test(e))).toEqual([]);
  });

  it("explains an error from the runtime with its code and a hint (input outside the plugin's input_schema)", async () => {
    const before = pluginRuns.length;
    await page.getByTestId('studio-now').fill('');
    await run('{"subject": {}}');
    const error = page.getByRole('alert').and(page.locator('[data-testid="studio-error"][data-code="VALIDATION_FAILED"]'));
    await error.waitFor();
    expect(await error.textContent()).toContain('input_schema');
    expect(pluginRuns.length).toBe(before + 1);
  });

  it('loads a plugin folder without a restart, runs it as a trial whose store starts empty each time, and reloads it after a rebuild', async () => {
    // Waited for in the page itself: a poll of textContent from the test was seen to miss the result for a minute on a
    // machine with a CPU-bound process beside it, while the page showed it within a second.
    const resultContains = (text: string) =>
      page.waitForFunction((t) => document.querySelector('[data-testid="studio-result"]')?.textContent?.includes(t) === true, text, { timeout: 60_000, polling: 100 });
    const dir = publisher.write({ name: 'ride-pass', kind: 'tool', code: RIDE_PASS, capabilities: [{ name: 'kv' }], extra: { example_input: {} } });
    await page.getByTestId('studio-load-dir').fill(dir);
    await page.getByTestId('studio-load').click();
    await expect.poll(() => page.getByTestId('studio-load-status').textContent(), { timeout: 60_000 }).toContain('Loaded ride-pass 1.0.0');
    await expect.poll(async () => (await shownManifest()).name).toBe('ride-pass');
    for (let i = 0; i < 2; i++) {
      await page.getByTestId('studio-run').click();
      // Each Run is a trial: the ride is taken in a throwaway store, so the pass starts at three every time.
      await resultContains('"left": 2');
      expect(await page.getByTestId('studio-capability-calls').textContent()).toContain('kv.set');
    }

    writeFileSync(join(dir, 'plugin.js'), RIDE_PASS.replace('?? 3', '?? 10'));
    signPlugin(dir, publisher.key);
    const before = (await page.locator('.studio-bench').textContent()) ?? '';
    await page.getByTestId('studio-reload').click();
    // Done reloading (the button is back), not merely started: the bench's text changes as soon as it says "Reloading…".
    const reloaded = async () => (await page.getByTestId('studio-reload').textContent()) === 'Reload from its folder' && (await page.getByTestId('studio-reload').isEnabled());
    await expect.poll(async () => (await page.locator('.studio-bench').textContent()) !== before && (await reloaded()) && (await shownManifest()).name === 'ride-pass', { timeout: 60_000 }).toBe(true);
    expect(await page.getByTestId('plugin-list').getByTestId('plugin-item-ride-pass').count()).toBe(1);
    await page.getByTestId('studio-run').click();
    await resultContains('"left": 9');
    // Each trial starts a throwaway runtime with its own sandbox process: on a busy machine this test takes a while.
  }, 300_000);

  it('lists a folder that did not load with its reason and a hint, and loads it once it is fixed', async () => {
    const dir = publisher.write({ name: 'late-policy', code: 'export function decide() { return { verdict: "ACK", reason: "late but fine" }; }' }, false);
    await page.getByTestId('studio-load-dir').fill(dir);
    await page.getByTestId('studio-load').click();
    await page.locator('form[aria-label="Load a plugin folder"] [data-testid="studio-error"][data-code="PLUGIN_UNSIGNED"]').waitFor();
    const failure = page.getByTestId('plugin-failures').getByTestId('plugin-failure');
    await failure.waitFor();
    expect(await failure.getAttribute('data-code')).toBe('PLUGIN_UNSIGNED');
    expect(await failure.textContent()).toContain(dir);
    expect(await failure.textContent()).toContain('tessera plugin sign DIR --key KEY');
    await page.getByTestId('plugin-failures').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'studio-load-failed.png') });

    signPlugin(dir, publisher.key);
    await page.getByTestId('plugin-failure-retry').click();
    await page.getByTestId('plugin-list').getByTestId('plugin-item-late-policy').waitFor();
    await expect.poll(() => page.getByTestId('plugin-failures').count(), { timeout: 15_000 }).toBe(0);
  });

  it('points a plugin whose capability call was refused to the capability hint, not to forbidden globals', async () => {
    // Calls http.fetch without declaring it: refused inside the plugin, which then fails.
    const dir = publisher.write({ name: 'nosy-tool', kind: 'tool', code: "export async function invoke(args, host) { return host.call('http.fetch', { url: 'https://example.com/' }); }", extra: { example_input: {} } });
    await page.getByTestId('studio-load-dir').fill(dir);
    await page.getByTestId('studio-load').click();
    await expect.poll(async () => (await shownManifest()).name, { timeout: 15_000 }).toBe('nosy-tool');
    await page.getByTestId('studio-run').click();
    const error = page.locator('[data-testid="studio-error"][data-code="PLUGIN_FAILED"]');
    await error.waitFor();
    expect(await error.textContent()).toContain('CapabilityError');
    expect(await error.locator('.hint').textContent()).toContain('A capability call was refused or failed');
    // The refused load and the failed runs are HTTP errors the browser logs as such; nothing else went wrong.
    expect(session.consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of (400|422)/.test(e))).toEqual([]);
  });
});
