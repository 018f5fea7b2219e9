/**
 * The Journey Guide dialogue in real Chromium against a real headless Tessera (issue 6 point 6): typed turns
 * and a spoken one — Chromium's fake microphone plays a WAV espeak-ng spoke, the page's AudioWorklet turns it
 * into 16 kHz PCM streamed over /ws/io, and the runtime's real VAD and pocketsphinx hear it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startUiSession } from '../helpers/browser.js';
import type { UiSession } from '../helpers/browser.js';
import { tempDir } from '../helpers/tmp.js';

let session: UiSession;
let page: Page;
let token: string;

beforeAll(async () => {
  const dir = tempDir('tessera-journey-wav-', 'file');
  const wav = join(dir, 'hello.wav');
  const spoken = join(dir, 'spoken.wav');
  execFileSync('espeak-ng', ['-v', 'en-us+klatt', '-w', spoken, '--', 'hello']);
  // The fake device starts playing when capture opens, while the page is still loading its AudioWorklet: the
  // phrase comes after 1.5 s of silence, as a person starts speaking after pressing the button.
  execFileSync('sox', [spoken, wav, 'pad', '1.5', '1']);
  session = await startUiSession('tessera-e2e-journey-', { width: 1100, height: 800 }, {
    chromiumArgs: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}%noloop`, '--autoplay-policy=no-user-gesture-required'],
  });
  page = session.page;
  token = readFileSync(join(session.dataDir, 'api-token'), 'utf8').trim();
}, 60_000);

afterAll(() => session?.close(), 30_000);

const api = async (path: string, body?: unknown) =>
  (await fetch(`${session.tessera.origin}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })).json() as Promise<Record<string, unknown>>;
/** The dialogue session the page shows. */
const shownSession = async () => (await page.getByTestId('dialogue').getAttribute('data-session')) ?? '';
const say = async (text: string) => {
  await page.getByTestId('say-input').fill(text);
  await page.getByTestId('say-send').click();
};
const turns = (who: string) => page.locator(`[data-testid="dialogue"] li[data-who="${who}"] .turn-text`).allTextContents();

describe('Journey Guide dialogue', () => {
  it('shows the voice state and joins the ui channel', async () => {
    await page.goto(session.tessera.uiUrl);
    await page.getByTestId('area-journey').getByRole('heading', { name: 'Journey Guide' }).waitFor();
    await expect.poll(() => page.getByTestId('voice-state').textContent(), { timeout: 20_000 }).toBe('Voice on');
    await expect.poll(async () => (await api('/api/io/status'))['ui_clients']).toBe(1);
    expect(await page.getByTestId('mic-state').textContent()).toBe('Mic: free');
    expect(await page.getByTestId('tts-state').textContent()).toBe('TTS: free');
  });

  it('carries a typed dialogue: the intent starts a scenario, its question and the answer to it are shown', async () => {
    await page.getByTestId('say-input').fill('hello');
    await page.getByTestId('say-send').click();
    await expect.poll(() => turns('you')).toEqual(['hello']);
    await expect.poll(() => page.getByTestId('question').textContent()).toBe('Hi! What should I call you?');
    await expect.poll(() => turns('tessera')).toEqual(['Hi! What should I call you?']);
    await page.getByTestId('say-input').fill('Ada');
    await page.getByTestId('say-send').click();
    await expect.poll(() => turns('tessera'), { timeout: 10_000 }).toEqual(['Hi! What should I call you?', 'Hello, Ada! Tessera is ready.']);
    expect(await turns('you')).toEqual(['hello', 'Ada']);
    expect(await page.locator('[data-testid="dialogue"] li[data-who="you"] .turn-detail').allTextContents()).toEqual(['typed → greet', 'typed → answer']);
    await expect.poll(() => page.getByTestId('question').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'journey-typed.png') });
  });

  it('hears a spoken phrase through push-to-talk and answers it', async () => {
    const ptt = page.getByTestId('ptt');
    await ptt.hover();
    await page.mouse.down();
    await expect.poll(() => page.getByTestId('mic-state').textContent()).toBe('Mic: listening to you');
    await page.waitForTimeout(4000);
    await page.mouse.up();
    await expect.poll(() => turns('you'), { timeout: 20_000 }).toEqual(['hello', 'Ada', 'hello']);
    expect((await page.locator('[data-testid="dialogue"] li[data-who="you"] .turn-detail').allTextContents())[2]).toBe('spoken → greet');
    await expect.poll(() => page.getByTestId('question').textContent(), { timeout: 10_000 }).toBe('Hi! What should I call you?');
    await page.getByTestId('say-input').fill('Grace');
    await page.getByTestId('say-send').click();
    await expect.poll(() => turns('tessera'), { timeout: 10_000 }).toContain('Hello, Grace! Tessera is ready.');
    await page.screenshot({ path: join(ARTIFACTS, 'journey-spoken.png') });
    const events = (await api('/api/events?topic=io.voice.heard')) as { events: Array<{ payload: { outcome: string; text: string } }> };
    expect(events.events.map((e) => [e.payload.outcome, e.payload.text])).toEqual([['speech', 'hello']]);
    expect(session.consoleErrors).toEqual([]);
  });

  it("keeps one dialogue per traveller: a clear request is not taken as a name, and the next traveller starts on a clean page", async () => {
    await page.getByTestId('new-traveller').click();
    await expect.poll(() => turns('you'), { timeout: 10_000 }).toEqual([]);
    const first = await shownSession();
    expect(first).toMatch(/^ses_/);
    await say('hello');
    await expect.poll(() => page.getByTestId('question').textContent(), { timeout: 10_000 }).toBe('Hi! What should I call you?');
    // The guide's own suggestion is a request, not a name; the question stays open for the name.
    await say("what's next?");
    await expect.poll(() => turns('tessera'), { timeout: 10_000 }).toEqual(['Hi! What should I call you?', 'You have no journey yet: buy a pass and start it on the Guide tab.']);
    expect(await page.getByTestId('question').textContent()).toBe('Hi! What should I call you?');

    // A timer of this traveller that rings after they have gone must not ring for the next one.
    const ring = (await api('/api/scenario/run', { id: 'set_timer', ctx: { duration: '1500ms', label: 'Old tea', session_id: first, utterance: 'tea', io: { out: ['ui'] } } })) as { run_id: string };
    await page.getByTestId('new-traveller').click();
    await expect.poll(shownSession, { timeout: 10_000 }).not.toBe(first);
    await expect.poll(() => page.locator('[data-testid="dialogue"] li[data-who]').count(), { timeout: 10_000 }).toBe(0);
    await expect.poll(() => page.getByTestId('question').count(), { timeout: 10_000 }).toBe(0);
    await say('Hello, show my tickets!');
    await expect.poll(() => turns('tessera'), { timeout: 10_000 }).toEqual(['Sorry, I did not understand "Hello, show my tickets!".']);
    await expect.poll(async () => ((await api(`/api/scenario/status?run_id=${ring.run_id}`)) as { state: string }).state, { timeout: 10_000 }).toBe('completed');
    const inbox = (await api('/api/io/inbox')) as { messages: Array<{ text: string; session: string | null; reasons: Record<string, string> }> };
    expect(inbox.messages.find((m) => m.text === 'Old tea: time is up!')).toMatchObject({ session: first, reasons: { ui: "the traveller's dialogue ended (new_traveller)" } });
    expect(await turns('tessera')).toEqual(['Sorry, I did not understand "Hello, show my tickets!".']);

    // The dialogue ended elsewhere (as the idle reset ends it): the page follows with a fresh one.
    const second = await shownSession();
    await api('/api/io/session', { end: second });
    await expect.poll(shownSession, { timeout: 10_000 }).not.toBe(second);
    await expect.poll(() => page.locator('[data-testid="dialogue"] li[data-who]').count(), { timeout: 10_000 }).toBe(0);
    await say('hello');
    await expect.poll(() => turns('tessera'), { timeout: 10_000 }).toEqual(['Hi! What should I call you?']);
    await page.screenshot({ path: join(ARTIFACTS, 'journey-new-traveller.png') });
    expect(session.consoleErrors).toEqual([]);
  });
});

/** Where the input, the newest answer and the conversation are, in CSS pixels of the viewport. */
const layout = () =>
  page.evaluate(() => {
    const rect = (el: Element | null | undefined) => {
      const r = el!.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height };
    };
    const list = document.querySelector('[data-testid="dialogue"]');
    const answers = list!.querySelectorAll('li[data-who="tessera"]');
    return {
      viewport: { width: innerWidth, height: innerHeight },
      pageScrolls: document.scrollingElement!.scrollHeight > innerHeight + 1,
      input: rect(document.querySelector('[data-testid="say-input"]')),
      send: rect(document.querySelector('[data-testid="say-send"]')),
      list: rect(list),
      last: rect(answers[answers.length - 1]),
    };
  });

/** `n` exchanges the runtime answers at once, each waited for. */
async function exchanges(n: number) {
  for (let i = 0; i < n; i++) {
    const before = (await turns('tessera')).length;
    await say(i % 2 === 0 ? "what's next?" : `tell me a joke number ${i}`);
    await expect.poll(async () => (await turns('tessera')).length, { timeout: 10_000 }).toBe(before + 1);
  }
}

describe('Journey Guide layout', () => {
  beforeAll(async () => {
    if (!page.url().startsWith(session.tessera.origin)) await page.goto(session.tessera.uiUrl);
    await page.getByTestId('new-traveller').waitFor();
  });

  it('keeps the input and the newest answer in view after 8 exchanges at 1280×800: the conversation scrolls, the input stays docked', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.getByTestId('new-traveller').click();
    await expect.poll(() => turns('you'), { timeout: 10_000 }).toEqual([]);
    await exchanges(8);
    expect(await turns('tessera')).toHaveLength(8);
    const l = await layout();
    expect(l.pageScrolls).toBe(false);
    expect(l.input.top).toBeGreaterThanOrEqual(0);
    expect(l.input.bottom).toBeLessThanOrEqual(l.viewport.height);
    expect(l.send.bottom).toBeLessThanOrEqual(l.viewport.height);
    // The newest answer is inside the visible part of the conversation, which is on screen.
    expect(l.last.top).toBeGreaterThanOrEqual(l.list.top - 1);
    expect(l.last.bottom).toBeLessThanOrEqual(l.list.bottom + 1);
    expect(l.list.bottom).toBeLessThanOrEqual(l.input.top);
    await page.screenshot({ path: join(ARTIFACTS, 'journey-1280x800-8-exchanges.png') });
  }, 60_000);

  it('gives a 1080×1920 portrait kiosk large type and touch targets of at least 48 px, and uses the screen', async () => {
    await page.setViewportSize({ width: 1080, height: 1920 });
    await page.getByTestId('new-traveller').click();
    await expect.poll(() => turns('you'), { timeout: 10_000 }).toEqual([]);
    await exchanges(3);
    const sizes = await page.evaluate(() => {
      const px = (el: Element | null) => parseFloat(getComputedStyle(el!).fontSize);
      const height = (el: Element | null) => el!.getBoundingClientRect().height;
      const targets = ['new-traveller', 'say-send', 'ptt', 'say-input'].map((id) => [id, height(document.querySelector(`[data-testid="${id}"]`))] as const);
      const nav = [...document.querySelectorAll('nav a')].map((a) => [a.textContent, a.getBoundingClientRect().height] as const);
      const journey = document.querySelector('.journey')!.getBoundingClientRect();
      return { text: px(document.querySelector('.turn-text')), input: px(document.querySelector('[data-testid="say-input"]')), targets, nav, journey: { width: journey.width, height: journey.height } };
    });
    expect(sizes.text).toBeGreaterThanOrEqual(24);
    expect(sizes.input).toBeGreaterThanOrEqual(24);
    for (const [id, h] of [...sizes.targets, ...sizes.nav]) expect([id, h >= 48]).toEqual([id, true]);
    // Not the desktop page in a corner: the dialogue spans the width and most of the height.
    expect(sizes.journey.width).toBeGreaterThanOrEqual(0.9 * 1080 - 80);
    expect(sizes.journey.height).toBeGreaterThanOrEqual(0.7 * 1920);
    const l = await layout();
    expect(l.pageScrolls).toBe(false);
    expect(l.input.bottom).toBeLessThanOrEqual(l.viewport.height);
    expect(l.last.bottom).toBeLessThanOrEqual(l.list.bottom + 1);
    await page.screenshot({ path: join(ARTIFACTS, 'journey-1080x1920-kiosk.png') });
    expect(session.consoleErrors).toEqual([]);
  }, 60_000);
});

