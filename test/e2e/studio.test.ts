import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startUiSession } from '../helpers/browser.js';
import type { UiSession } from '../helpers/browser.js';
import type { StartedTessera } from '../helpers/cli.js';

// Plugin Studio in real Chromium against a real headless Tessera, which loads the first-party signed plugins at start.
const PLUGIN = 'policy-existence';
let tessera: StartedTessera;
let page: Page;
let session: UiSession;

const pluginRuns: string[] = [];

beforeAll(async () => {
  session = await startUiSession('tessera-e2e-studio-', { width: 1280, height: 1800 });
  ({ tessera, page } = session);
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
    expect(session.consoleErrors).toEqual([]);
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

  it('points a tool whose effect needs a permit to the permit hint, not to forbidden globals', async () => {
    const item = page.getByTestId('plugin-list').getByTestId('plugin-item-tool-weather');
    await item.click();
    await expect.poll(async () => (await shownManifest()).name).toBe('tool-weather');
    await page.getByTestId('studio-now').fill('2026-05-01T08:00:00Z');
    await page.getByTestId('studio-run').click();
    const error = page.locator('[data-testid="studio-error"][data-code="PLUGIN_FAILED"]');
    await error.waitFor();
    expect(await error.textContent()).toContain('http.fetch is an effect and this call has no permit');
    expect(await error.locator('.hint').textContent()).toContain('`tessera plugin test` gives effects a throwaway permit');
  });
});
