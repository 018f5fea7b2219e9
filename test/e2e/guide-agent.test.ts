/**
 * Issue 17 point 8: the Journey Guide talks through the guide agent, in real Chromium on a portrait kiosk against a
 * real `tessera start --kiosk` whose device model is the protocol-faithful fake OpenAI server
 * (TESSERA_AGENT_MODEL_URL; test/helpers/fake-openai.ts — the only fake). Screenshots: test/e2e/artifacts/agent-*.png.
 *
 * (a) With a model: "what should I do next?" → the model calls `tessera__journey_next` and answers with its result,
 *     streamed over the session's room; "skip the next stop" → `tessera__propose` journey.skip → the card appears on
 *     the Guide, the traveller accepts, the node is skipped exactly once (journey, journal, a second approve refused).
 * (b) Without a model (the endpoint answers 500): the panel says the guide works without its model, the answer comes
 *     from the rule-based guide, `agent.degraded` is journaled.
 * (c) Ops → Agents: the session, its transcript (tool calls and results), its proposal with the receipt link, and its
 *     audit trail.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from '../helpers/browser.js';
import { cleanEnv, requireBuild, startTessera } from '../helpers/cli.js';
import type { StartedTessera } from '../helpers/cli.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import type { FakeOpenAi } from '../helpers/fake-openai.js';
import { tempDir } from '../helpers/tmp.js';

const KIOSK = { width: 1080, height: 1920 };
const NEXT_Q = 'What should I do next?';
const SKIP_Q = 'Please skip the next stop';

let fake: FakeOpenAi;
let tessera: StartedTessera;
let browser: Browser;
let page: Page;
let deviceToken = '';
let travellerToken = '';
let journeyId = '';
let agentSession = '';
/** The node "skip the next stop" names: the first one after where the traveller is. */
let skipNode = '';
const errors: string[] = [];
/** Text frames the page received on /ws/agents/… */
const roomFrames: string[] = [];

const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, `agent-${name}.png`) });
const call = async <T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown, token = deviceToken): Promise<{ status: number; body: T }> => {
  const res = await fetch(tessera.origin + path, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as T };
};
const events = async (topic: string) => (await call<{ events: Array<{ topic: string; payload: Record<string, unknown> }> }>('GET', `/api/events?topic=${encodeURIComponent(topic)}&limit=500`)).body.events;
const statuses = (p: Page) => p.getByTestId('guide-node').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-node')}:${e.getAttribute('data-status')}`));
const guideLines = (p: Page) => p.locator('[data-testid="guide-agent-line"][data-who="guide"]');
const lastUser = (messages: Array<{ role: string; content?: string | null }> = []) => [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';

/** Asks the guide on the panel and waits for the turn to end (the panel takes questions again). */
async function ask(text: string): Promise<void> {
  const before = await guideLines(page).count();
  await page.getByTestId('guide-agent-input').fill(text);
  await page.getByTestId('guide-agent-send').click();
  await expect.poll(() => guideLines(page).count(), { timeout: 20_000 }).toBe(before + 1);
  await expect.poll(() => page.getByTestId('guide-agent').getAttribute('data-asking'), { timeout: 20_000 }).toBe('false');
}

beforeAll(async () => {
  requireBuild();
  fake = await startFakeOpenAi();
  const dataDir = tempDir('tessera-e2e-agent-', 'file');
  tessera = await startTessera(dataDir, ['--kiosk'], { ...cleanEnv(), TESSERA_AGENT_MODEL_URL: fake.url, TESSERA_AGENT_MODEL: 'fake-guide' });
  deviceToken = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
  travellerToken = decodeURIComponent(/#token=([^&]+)/.exec(tessera.uiUrl)![1]!);
  const topUp = await call('POST', '/api/wallets/main/topup', { amount: 500_000, currency: 'UAH', idempotency_key: 'e2e-agent-topup' });
  expect(topUp.status, JSON.stringify(topUp.body)).toBe(200);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  tessera?.child.kill('SIGINT');
  await tessera?.exited;
  await fake?.close();
}, 60_000);

describe('the Journey Guide on the guide agent', () => {
  it('(a) with a model: answers from journey_next streamed over the room, proposes a skip the traveller accepts, and the node is skipped exactly once', async () => {
    page = await browser.newPage({ viewport: KIOSK });
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('websocket', (ws) => ws.url().includes('/ws/agents/') && ws.on('framereceived', (f) => roomFrames.push(String(f.payload))));
    await page.goto(tessera.uiUrl);
    // The traveller is the dialogue session shown; their pass is bought for it (the wallet tab is test/e2e/wallet's).
    await expect.poll(() => page.getByTestId('dialogue').getAttribute('data-session'), { timeout: 15_000 }).toMatch(/^ses_/);
    const traveller = (await page.getByTestId('dialogue').getAttribute('data-session'))!;
    const { products } = (await call<{ products: Array<{ ref: string; id: string; version: string; journey?: string | null }> }>('GET', '/api/catalogue', undefined, travellerToken)).body;
    const pass = products.filter((c) => c.id === 'city.museum-pass-48h' && typeof c.journey === 'string').sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }))[0]!;
    // A preflight whose checks could not run in time (a loaded machine) is tried again, as the traveller would.
    let prs = '';
    for (let attempt = 0; attempt < 3 && !prs; attempt++) {
      const created = await call<{ product_runtime_session_id: string; state: string }>('POST', '/api/sessions', { product: pass.ref, user_id: traveller, wallet_id: 'main', idempotency_key: `e2e-agent-${attempt}` }, travellerToken);
      if (created.body.state === 'preflight_ok') prs = created.body.product_runtime_session_id;
    }
    expect(prs).toMatch(/^prs_/);
    expect((await call<{ state: string }>('POST', `/api/sessions/${prs}/pay`, {}, travellerToken)).body.state).toBe('active');

    await page.getByTestId('tab-guide').click();
    await page.getByTestId('guide-start').click({ timeout: 15_000 });
    await page.getByTestId('guide-next-text').waitFor({ timeout: 15_000 });
    journeyId = (await page.getByTestId('guide').getAttribute('data-journey'))!;
    const journey = (await call<{ current: string; nodes: Array<{ id: string; state: string }> }>('GET', `/api/journeys/${journeyId}`)).body;
    skipNode = journey.nodes[journey.nodes.findIndex((n) => n.id === journey.current) + 1]!.id;
    await page.getByTestId('guide-agent').waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('guide-agent-degraded').count()).toBe(0);
    expect((await page.getByTestId('guide-agent-send').boundingBox())!.height).toBeGreaterThanOrEqual(64);

    // The model: tools first, then an answer made of what the tool said.
    fake.respond((req) => {
      const question = lastUser(req.body.messages);
      const last = req.lastMessage;
      if (last?.role === 'tool') {
        if (/next/i.test(question) && !/skip/i.test(question)) return { text: `Here is your next step: ${(JSON.parse(last.content ?? '{}') as { text: string }).text}`, delayMs: 20 };
        return 'I proposed skipping it; it waits for your decision on the card.';
      }
      if (/old town/i.test(question)) return 'The old town is a UNESCO World Heritage site.';
      if (/skip/i.test(question)) return { toolCalls: [{ name: 'tessera__propose', arguments: { action: 'journey.skip', args: { journey: journeyId, node: skipNode }, reason: 'You asked to skip it.' } }] };
      if (/next/i.test(question)) return { toolCalls: [{ name: 'tessera__journey_next', arguments: {} }] };
      return undefined;
    });
    // Words to the kiosk that no intent understands (typed here; spoken words take the same way) go to the journey's
    // guide agent, which answers them; the Guide tab takes up the session they opened.
    const said = await call<{ kind: string; agent_session: string }>('POST', '/api/io/input', { text: 'tell me about the old town', session: traveller }, travellerToken);
    expect(said.body).toMatchObject({ kind: 'agent' });
    await expect.poll(() => page.getByTestId('guide-agent').getAttribute('data-session'), { timeout: 15_000 }).toBe(said.body.agent_session);
    await expect.poll(() => guideLines(page).last().textContent(), { timeout: 15_000 }).toBe('The old town is a UNESCO World Heritage site.');
    await ask(NEXT_Q);
    const next = (await call<{ text: string }>('GET', `/api/journeys/${journeyId}/next`)).body.text;
    const answer = guideLines(page).last();
    expect(await answer.textContent()).toBe(`Here is your next step: ${next}`);
    expect(await answer.getAttribute('data-source')).toBe('model');
    agentSession = (await page.getByTestId('guide-agent').getAttribute('data-session'))!;
    expect(agentSession).not.toBe('');
    // The session is the journey's: its metadata reached the model's prompt, and its tools were offered.
    const first = fake.requests[0]!.body;
    expect(first.messages![0]!.content).toContain(journeyId);
    expect(first.tools!.map((t) => t.function.name)).toEqual(expect.arrayContaining(['tessera__journey_next', 'tessera__propose']));
    // The answer was streamed in the room: deltas, then the assistant's entry.
    const frames = roomFrames.map((f) => JSON.parse(f) as { type: string; event?: { type: string; data: Record<string, unknown> } });
    expect(frames[0]).toMatchObject({ type: 'hello', v: 1, session: agentSession });
    expect(frames.filter((f) => f.event?.type === 'message.delta').length).toBeGreaterThan(3);
    expect(frames.findIndex((f) => f.event?.type === 'message.assistant' && (f.event.data['entry'] as { text: string }).text !== '')).toBeGreaterThan(frames.findIndex((f) => f.event?.type === 'message.delta'));
    await shot(page, '1-answer');

    await ask(SKIP_Q);
    const card = page.locator('[data-testid="guide-agent-proposal"][data-kind="journey.skip"]');
    await card.waitFor({ timeout: 15_000 });
    expect(await card.getAttribute('data-source')).toBe('agent');
    // The journeys module's cards and the agent's are one style.
    expect(await card.getAttribute('class')).toBe('guide-proposal');
    expect((await statuses(page)).find((s) => s.startsWith(`${skipNode}:`))).toBe(`${skipNode}:pending`);
    await card.scrollIntoViewIfNeeded();
    await shot(page, '2-proposal');
    const proposalId = (await card.getAttribute('data-proposal'))!;
    await card.getByTestId('guide-agent-accept').click();
    await expect.poll(() => statuses(page), { timeout: 15_000 }).toContain(`${skipNode}:skipped`);
    expect(await page.getByTestId('guide-agent-proposal').count()).toBe(0);
    expect(await page.getByTestId('guide-agent-note').textContent()).toBe('Done: your journey was changed.');
    const after = (await call<{ nodes: Array<{ id: string; state: string }> }>('GET', `/api/journeys/${journeyId}`)).body;
    expect(after.nodes.find((n) => n.id === skipNode)!.state).toBe('skipped');
    // Exactly once: one skip journaled, one execution, and a second approval is refused.
    expect((await events('journey.node.skipped')).filter((e) => e.payload['node'] === skipNode && e.payload['journey_instance_id'] === journeyId)).toHaveLength(1);
    expect((await events('agent.proposal.executed')).filter((e) => e.payload['proposal'] === proposalId)).toHaveLength(1);
    const again = await call<{ error: { code: string } }>('POST', `/api/agents/proposals/${proposalId}/approve`, {}, travellerToken);
    expect([again.status, again.body.error.code]).toEqual([409, 'AGENT_PROPOSAL_DECIDED']);
    await shot(page, '3-skipped');
  }, 120_000);

  it('(b) without a model: says so in plain words and answers from the rule-based guide; agent.degraded is journaled', async () => {
    fake.respond(() => ({ kind: 'error', status: 500 }));
    const asked = fake.requests.length;
    await ask('Where do I go now?');
    expect(fake.requests.length).toBeGreaterThan(asked);
    await expect.poll(() => page.getByTestId('guide-agent').getAttribute('data-degraded'), { timeout: 10_000 }).toBe('true');
    expect(await page.getByTestId('guide-agent-degraded').allTextContents()).toEqual(['The guide is working without its AI model right now, so its answers come from simple built-in rules.']);
    const answer = guideLines(page).last();
    expect(await answer.getAttribute('data-source')).toBe('fallback');
    const next = (await call<{ text: string }>('GET', `/api/journeys/${journeyId}/next`)).body.text;
    expect(await answer.textContent()).toContain(next);
    const degraded = (await events('agent.degraded')).filter((e) => e.payload['session'] === agentSession);
    expect(degraded.at(-1)?.payload).toMatchObject({ agent_type: 'journey-guide', degraded: true });
    await page.getByTestId('guide-agent').scrollIntoViewIfNeeded();
    await shot(page, '4-rule-based');
    expect(errors).toEqual([]);
  }, 60_000);

  it('(c) Ops → Agents shows the session, its transcript with the tool calls, and its audit trail', async () => {
    const ops = await browser.newPage({ viewport: { width: 1366, height: 1000 } });
    ops.on('pageerror', (err) => errors.push(err.message));
    await ops.goto(`${tessera.origin}/#token=${encodeURIComponent(deviceToken)}`);
    await ops.locator('nav a[data-area="ops"]').click();
    await ops.getByTestId('ops-tab-agents').click();
    const row = ops.locator(`[data-testid="agent-session-row"][data-session="${agentSession}"]`);
    await row.waitFor({ timeout: 15_000 });
    expect(await row.getAttribute('data-type')).toBe('journey-guide');
    expect(await row.getAttribute('data-degraded')).toBe('true');
    expect(await row.textContent()).toContain('traveller');
    await row.click();
    const detail = ops.getByTestId('agent-session-detail');
    await expect.poll(() => detail.getByTestId('agent-transcript-entry').evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('data-type')))].sort()), { timeout: 15_000 }).toEqual(['assistant', 'tool_call', 'tool_result', 'turn_end', 'user']);
    const text = (await detail.getByTestId('agent-transcript').textContent())!;
    expect(text).toContain(NEXT_Q);
    expect(text).toContain('tessera__journey_next');
    expect(text).toContain('tessera__propose');
    expect(text).toContain('Assistant (rules)');
    const topics = () => detail.getByTestId('agent-audit-row').evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('data-topic')))]);
    await expect.poll(topics, { timeout: 15_000 }).toEqual(expect.arrayContaining(['agent.session.created', 'agent.message', 'agent.tool.called', 'agent.tool.result', 'agent.degraded', 'agent.recommendation.accepted', 'agent.proposal.executed']));
    const proposal = detail.locator('[data-testid="agent-proposal-row"][data-action="journey.skip"]');
    expect(await proposal.getAttribute('data-state')).toBe('executed');
    expect(await proposal.getByTestId('agent-proposal-receipts').getAttribute('href')).toMatch(/^\/v1\/r\/b3%3A[0-9a-f]{64}$/);
    await shot(ops, '5-ops');
    await detail.getByTestId('agent-audit').scrollIntoViewIfNeeded();
    await shot(ops, '6-ops-audit');
    expect(errors).toEqual([]);
  }, 60_000);
});
