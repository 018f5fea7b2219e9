import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startUiSession } from '../helpers/browser.js';
import type { UiSession } from '../helpers/browser.js';
import type { StartedTessera } from '../helpers/cli.js';

// Ops › Runs in real Chromium against a real headless Tessera running the shipped scenarios (resources/scenarios).
let tessera: StartedTessera;
let page: Page;
let session: UiSession;

const runRequests: string[] = [];

beforeAll(async () => {
  session = await startUiSession('tessera-e2e-ops-runs-', { width: 1280, height: 1400 });
  ({ tessera, page } = session);
  page.on('request', (req) => new URL(req.url()).pathname === '/api/scenario/run' && runRequests.push(req.postData() ?? ''));
});

afterAll(() => session?.close(), 30_000);

/** Starts `set_timer` from the form and returns the id of the run it started. */
async function startTimer(ctx: string): Promise<string> {
  await page.getByTestId('start-scenario').selectOption('set_timer');
  await page.getByTestId('start-ctx').fill(ctx);
  const result = page.getByTestId('start-result');
  const before = (await result.count()) ? await result.getAttribute('data-run-id') : null;
  await page.getByTestId('start-submit').click();
  await expect.poll(async () => ((await result.count()) ? result.getAttribute('data-run-id') : null), { timeout: 5_000 }).not.toBe(before);
  return (await result.getAttribute('data-run-id'))!;
}

describe('Ops runs', () => {
  it('opens Ops on the runs list and the event stream, both live', async () => {
    await page.goto(tessera.uiUrl);
    await page.locator('nav a[data-area="ops"]').click();
    await page.getByTestId('area-ops').getByRole('heading', { name: 'Runs', exact: true }).waitFor();
    await expect.poll(() => page.getByTestId('runs-status').textContent()).toBe('Live');
    await expect.poll(() => page.getByTestId('stream-status').textContent()).toBe('Live');
    await page.getByTestId('runs-table').waitFor();
    await page.getByTestId('start-scenario').locator('option[value="set_timer"]').waitFor({ state: 'attached' });
    // The form says what context a scenario needs (its ctx_schema's required names).
    await page.getByTestId('start-scenario').selectOption('redeem_entitlement');
    await expect.poll(() => page.getByTestId('scenario-ctx-required').textContent()).toBe('entitlement_id');
  });

  it('starts set_timer from the form and shows the run go from running to completed live, without a reload', async () => {
    let navigations = 0;
    page.on('framenavigated', () => navigations++);
    const runId = await startTimer('{"duration": "1s"}');
    expect(JSON.parse(runRequests.at(-1)!)).toEqual({ id: 'set_timer', ctx: { duration: '1s' } });
    const row = page.getByTestId(`run-row-${runId}`);
    await row.waitFor();
    // Record every state the row shows, from inside the page, so a state shown only briefly is not missed.
    await row.evaluate((el) => {
      const seen = [el.getAttribute('data-state') ?? ''];
      (window as unknown as { seenStates: string[] }).seenStates = seen;
      new MutationObserver(() => {
        const state = el.getAttribute('data-state') ?? '';
        if (seen.at(-1) !== state) seen.push(state);
      }).observe(el, { attributes: true, attributeFilter: ['data-state'] });
    });
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('completed');
    const seenStates = await page.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates);
    expect(seenStates).toContain('running');
    expect(seenStates.at(-1)).toBe('completed');
    expect(navigations).toBe(0);
  });

  it("opens the completed run and shows its three steps completed, with durations and bars on the run's span", async () => {
    const runId = await page.getByTestId('start-result').getAttribute('data-run-id');
    await page.getByTestId(`run-row-${runId}`).click();
    const detail = page.getByTestId('run-detail');
    await expect.poll(() => detail.getAttribute('data-state')).toBe('completed');
    expect(await detail.getAttribute('data-run-id')).toBe(runId);
    for (const step of ['confirm_timer', 'wait_out', 'ring']) {
      const row = detail.getByTestId(`step-row-${step}`);
      expect(await row.getAttribute('data-state')).toBe('completed');
      expect(await row.getByTestId('step-duration').textContent()).toMatch(/^\d+(\.\d)? m?s$/);
      expect(await row.getByTestId('step-attempts').textContent()).toBe('1');
      expect(await row.locator('svg.ops-bar rect.ops-fill-completed').count()).toBe(1);
    }
    // The wait takes the second it was given, the longest step by far; bars are thousandths of the run's span.
    expect(await detail.getByTestId('step-row-wait_out').getByTestId('step-duration').textContent()).toMatch(/^1\.\d s$/);
    const bar = async (step: string) => {
      const rect = detail.getByTestId(`step-row-${step}`).locator('rect.ops-bar-fill');
      return { x: Number(await rect.getAttribute('x')), width: Number(await rect.getAttribute('width')) };
    };
    const [confirm, wait, ring] = [await bar('confirm_timer'), await bar('wait_out'), await bar('ring')];
    expect(wait.width).toBeGreaterThan(Math.max(confirm.width, ring.width) * 3);
    expect(confirm.x).toBeLessThan(wait.x + 1);
    // A bar is at least 3 thousandths wide, so a quick last step may be pulled left over the wait's end:
    // the order holds, not a gap.
    expect(ring.x).toBeGreaterThan(wait.x);
    expect(wait.x + wait.width).toBeLessThanOrEqual(ring.x + ring.width);
    expect(ring.x + ring.width).toBeLessThanOrEqual(1000);
    expect(await detail.getByTestId('step-row-confirm_timer').textContent()).toContain('effect');
    expect(await detail.getByTestId('run-cancel').count()).toBe(0);
  });

  it('cancels a long timer from the UI and shows it cancelled', async () => {
    const runId = await startTimer('{"duration": "1h"}');
    const row = page.getByTestId(`run-row-${runId}`);
    const detail = page.getByTestId('run-detail');
    // Starting a run opens it.
    await expect.poll(() => detail.getAttribute('data-run-id')).toBe(runId);
    await expect.poll(() => detail.getByTestId('step-row-wait_out').getAttribute('data-state'), { timeout: 5_000 }).toBe('started');
    expect(await row.getAttribute('data-state')).toBe('running');
    await page.getByTestId('run-cancel').click();
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 5_000 }).toBe('cancelled');
    await expect.poll(() => detail.getAttribute('data-state')).toBe('cancelled');
    expect(await detail.getByTestId('run-error').textContent()).toContain('RUN_CANCELLED');
    expect(await detail.getByTestId('step-row-confirm_timer').getAttribute('data-state')).toBe('completed');
    // The wait never finished: the cancel ended it, and the runtime recorded it cancelled, which its row says.
    const wait = detail.getByTestId('step-row-wait_out');
    await expect.poll(() => wait.getAttribute('data-state')).toBe('cancelled');
    expect(await wait.getByTestId('step-duration').textContent()).toMatch(/^\d+(\.\d)? m?s \(cancelled\)$/);
    expect(await wait.textContent()).toContain('RUN_CANCELLED');
    expect(await wait.locator('rect.ops-fill-cancelled').count()).toBe(1);
    expect(await detail.getByTestId('run-cancel').count()).toBe(0);
  });

  it('reports an invalid JSON context locally, without asking the runtime', async () => {
    const before = runRequests.length;
    await page.getByTestId('start-ctx').fill('{"duration": ');
    await page.getByTestId('start-submit').click();
    const error = page.getByTestId('start-error');
    await error.waitFor();
    expect(await error.getAttribute('role')).toBe('alert');
    expect(await error.getAttribute('data-code')).toBe('LOCAL');
    expect(await error.textContent()).toContain('not valid JSON');
    await page.getByTestId('start-ctx').fill('["not", "an object"]');
    await page.getByTestId('start-submit').click();
    await expect.poll(() => error.textContent()).toContain('must be a JSON object');
    expect(runRequests.length).toBe(before);
    await page.getByTestId('start-ctx').fill('{"duration": ');
    await page.getByTestId('start-submit').click();
    await expect.poll(() => error.textContent()).toContain('not valid JSON');
    await page.screenshot({ path: join(ARTIFACTS, 'ops-runs.png') });
  });

  it('runs under the strict CSP without console errors', () => {
    expect(session.consoleErrors).toEqual([]);
  });

  it("shows the runtime's refusal of a context that does not match the scenario's ctx_schema, with its code", async () => {
    const before = runRequests.length;
    await page.getByTestId('start-ctx').fill('{}');
    await page.getByTestId('start-submit').click();
    await expect.poll(() => page.getByTestId('start-error').getAttribute('data-code')).toBe('VALIDATION_FAILED');
    expect(await page.getByTestId('start-error').textContent()).toContain('ctx_schema');
    expect(runRequests.length).toBe(before + 1);
  });
});
