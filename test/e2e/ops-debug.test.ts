import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { requireBuild, startTessera } from '../helpers/cli.js';
import type { StartedTessera } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { DATABASE_FILE } from '../../main/runtime/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { createSecretStore } from '../../main/runtime/secrets/index.js';
import { openStore } from '../../main/runtime/store/index.js';

// Ops › Runs debugger, step inspector and replay in real Chromium against a real headless Tessera, with a
// scenario from the data folder (issue 4 §9, §11).
const SCENARIO = `id: debug_demo
version: 1
description: Four steps to pause between; the stamp differs on every run.
steps:
  - name: remember
    action: memory.set
    with: { key: demo.name, value: "\${ctx.name}" }
    output: name
  - name: token
    action: memory.set
    with: { key: demo.token, value: "\${secrets['demo.token']}" }
    output: token
  - name: stamp
    action: log
    with: { message: "run \${run.id}" }
  - name: greet
    action: bus.publish
    with: { topic: demo.greeted, payload: { who: "\${bag.name}" } }
    output: greeted
  - name: farewell
    action: log
    with: { message: "bye \${bag.name}" }
`;

let tessera: StartedTessera;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

beforeAll(async () => {
  requireBuild();
  const dataDir = tempDir('tessera-e2e-ops-debug-', 'file');
  mkdirSync(join(dataDir, 'scenarios'), { recursive: true });
  writeFileSync(join(dataDir, 'scenarios', 'debug_demo.yaml'), SCENARIO);
  // A secret in the device's encrypted store, for a step that echoes it into the bag.
  const store = openStore({ path: join(dataDir, DATABASE_FILE) });
  createSecretStore({ store, dataDir, bus: createBus({ journal: createJournal({ store }), logger: createMemoryLogger() }) }).set('demo.token', 'hunter2-do-not-show');
  store.close();
  tessera = await startTessera(dataDir, ['--developer']); // debug_demo.yaml is unsigned (issue 18)
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
  page.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(msg.text()));
  page.on('pageerror', (err) => consoleErrors.push(err.message));
});

afterAll(async () => {
  await browser?.close();
  tessera?.child.kill('SIGINT');
  await tessera?.exited;
}, 30_000);

const detail = () => page.getByTestId('run-detail');
const step = (name: string) => detail().getByTestId(`step-row-${name}`);
const pausedAt = () => detail().getByTestId('run-debug').getAttribute('data-paused-at');

describe('Ops debugger and replay', () => {
  let runId: string;

  it('starts a run with a breakpoint and shows it paused before that step, with the bag after each finished step', async () => {
    await page.goto(tessera.uiUrl);
    await page.locator('nav a[data-area="ops"]').click();
    await page.getByTestId('start-scenario').locator('option[value="debug_demo"]').waitFor({ state: 'attached' });
    await page.getByTestId('start-scenario').selectOption('debug_demo');
    await page.getByTestId('start-ctx').fill('{"name": "Ada"}');
    await page.getByTestId('start-breakpoints').fill('stamp');
    await page.getByTestId('start-submit').click();
    await page.getByTestId('start-result').waitFor();
    runId = (await page.getByTestId('start-result').getAttribute('data-run-id'))!;
    await expect.poll(() => detail().getAttribute('data-run-id')).toBe(runId);
    await expect.poll(pausedAt, { timeout: 5_000 }).toBe('stamp');
    expect(await detail().getByTestId('run-paused').textContent()).toBe('Paused before stamp');
    expect(await detail().getByTestId('debug-breakpoint-list').textContent()).toBe('Breakpoints: stamp');
    expect(await detail().getAttribute('data-state')).toBe('running');
    expect(await step('remember').getAttribute('data-state')).toBe('completed');
    expect(await step('stamp').count()).toBe(0);
    // The step inspector: input, output and the bag right after the step.
    await step('remember').getByTestId('step-toggle').click();
    const inspect = detail().getByTestId('step-inspect-remember');
    expect(JSON.parse((await inspect.getByTestId('step-bag').textContent())!)).toEqual({ name: 'Ada' });
    expect(JSON.parse((await inspect.getByTestId('step-input').textContent())!)).toEqual({ key: 'demo.name', value: 'Ada' });
    expect(JSON.parse((await inspect.getByTestId('step-output').textContent())!)).toBe('Ada');
    // The secret the next step stored shows as *** in its input, output and the bag after it, and nowhere in the
    // run's detail in clear.
    await step('token').getByTestId('step-toggle').click();
    const token = detail().getByTestId('step-inspect-token');
    expect(JSON.parse((await token.getByTestId('step-bag').textContent())!)).toEqual({ name: 'Ada', token: '***' });
    expect(JSON.parse((await token.getByTestId('step-input').textContent())!)).toEqual({ key: 'demo.token', value: '***' });
    expect(JSON.parse((await token.getByTestId('step-output').textContent())!)).toBe('***');
    expect(await detail().innerHTML()).not.toContain('hunter2');
  });

  it('steps over one step and stops before the next', async () => {
    await detail().getByTestId('debug-step').click();
    await expect.poll(pausedAt, { timeout: 5_000 }).toBe('greet');
    expect(await step('stamp').getAttribute('data-state')).toBe('completed');
    expect(await step('greet').count()).toBe(0);
  });

  it('replaces the breakpoints and continues to the next one, then to the end', async () => {
    await detail().getByTestId('debug-breakpoints').fill('farewell, nosuchstep');
    await detail().getByTestId('debug-set').click();
    await expect.poll(() => detail().getByTestId('debug-note').textContent()).toBe('Breakpoints set: farewell, nosuchstep.');
    await expect.poll(() => detail().getByTestId('debug-breakpoint-list').textContent()).toBe('Breakpoints: farewell, nosuchstep');
    expect(await pausedAt()).toBe('greet'); // setting breakpoints does not move the run
    await detail().getByTestId('debug-continue').click();
    await expect.poll(pausedAt, { timeout: 5_000 }).toBe('farewell');
    expect(await step('greet').getAttribute('data-state')).toBe('completed');
    await detail().getByTestId('debug-continue').click();
    await expect.poll(() => detail().getAttribute('data-state'), { timeout: 5_000 }).toBe('completed');
    expect(await detail().getByTestId('run-debug').count()).toBe(0);
    await step('greet').getByTestId('step-toggle').click();
    expect(JSON.parse((await detail().getByTestId('step-inspect-greet').getByTestId('step-bag').textContent())!)).toMatchObject({ name: 'Ada', greeted: expect.any(Number) });
  });

  it('replays the finished run and shows where it differs: only the stamp, whose input names the run', async () => {
    const replay = detail().getByTestId('run-replay');
    await replay.getByTestId('replay-start').click();
    await expect.poll(() => replay.getAttribute('data-phase'), { timeout: 10_000 }).toBe('done');
    expect(await replay.getByTestId('replay-state').textContent()).toBe('completed');
    const replayId = (await replay.getByTestId('replay-open').textContent())!;
    expect(replayId).not.toBe(runId);
    const rows = replay.getByTestId('replay-diff').locator('tbody tr');
    expect(await rows.count()).toBe(1);
    const row = replay.getByTestId('diff-row-stamp');
    expect(await row.getAttribute('data-field')).toBe('input');
    expect(JSON.parse((await row.getByTestId('diff-original').textContent())!)).toEqual({ message: `run ${runId}` });
    expect(JSON.parse((await row.getByTestId('diff-replayed').textContent())!)).toEqual({ message: `run ${replayId}` });
    await page.screenshot({ path: join(ARTIFACTS, 'ops-debug.png') });
    // The replay itself opens, marked as a replay of the original; its effect steps were not performed again.
    await replay.getByTestId('replay-open').click();
    await expect.poll(() => detail().getAttribute('data-run-id')).toBe(replayId);
    expect(await detail().getByTestId('run-replay-of').textContent()).toBe(runId);
    await expect.poll(() => step('greet').textContent()).toContain('simulated');
  });

  it('answers a debugger action on a finished run with the runtime error, and logs nothing to the console', async () => {
    const token = decodeURIComponent(tessera.uiUrl.split('#token=')[1]!);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const res = await fetch(`${tessera.origin}/api/scenario/debug`, { method: 'POST', headers, body: JSON.stringify({ run_id: runId, action: 'continue' }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('VALIDATION_FAILED');
    const bad = await fetch(`${tessera.origin}/api/scenario/debug`, { method: 'POST', headers, body: JSON.stringify({ run_id: runId, action: 'jump' }) });
    expect(bad.status).toBe(400);
    expect(consoleErrors).toEqual([]);
  });
});
