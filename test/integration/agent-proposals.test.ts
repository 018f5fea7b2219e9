/**
 * Agents only propose (seed 000 §8; issue 17 point 6) on a real runtime: a real SQLite data folder, the shipped signed
 * catalogue and journey, the built and signed `policy-agent-proposal` in the real sandbox, the ledger, sessions and
 * journeys. A redemption an injected prompt talks an agent into is only a proposal, and the policy refuses it; an
 * action outside the agent's profile is refused; a traveller's approval runs a proposal exactly once, also when the
 * process dies after the effect and before its record; every chain verifies offline, in its bundle too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JourneyView } from '../../main/common/journeys.js';
import { verifyChain } from '../../main/common/receipt.js';
import { BUILTIN_CATALOGUE_DIR, BUILTIN_JOURNEYS_DIR, BUILTIN_PLUGINS_DIR, BUILTIN_TRUST_DIR } from '../../main/host/paths.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { productApprovalsOf, registerTesseraActions } from '../../main/runtime/orchestrator/actions.js';
import { PROPOSAL_EVENTS, createProposals } from '../../main/runtime/orchestrator/proposals.js';
import type { ProposalsOptions } from '../../main/runtime/orchestrator/proposals.js';
import type { ApprovalNeed, ProposalRequest, Proposals } from '../../main/runtime/orchestrator/types.js';
import { capsuleBundle, verifyBundleOnHost } from '../../main/runtime/receipts/bundle.js';
import type { ProductSession } from '../../main/runtime/sessions/index.js';
import { requireBuild } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const PROFILES: Record<string, { proposes: string[] }> = {
  'journey-guide': { proposes: ['journey.skip', 'journey.change', 'session.buy'] },
  // Support lists redeem on purpose: the policy still refuses it from any agent.
  support: { proposes: ['session.buy', 'entitlement.redeem'] },
  'ops-slo': { proposes: ['agent.profile.change'] },
};
const TRAVELLER = { principal: 'traveller', roles: ['traveller'] as const };
const OPERATOR = { principal: 'operator', roles: ['operator'] as const };
/** Products whose sessions ask more than the actions' defaults (by product runtime session id). */
const stricter = new Map<string, Record<string, ApprovalNeed>>();

let runtime: Runtime;
let proposals: Proposals;
let options: ProposalsOptions;

beforeAll(async () => {
  requireBuild();
  runtime = await createRuntime({
    dataDir: tempDir('tessera-proposals-'),
    shell: 'headless',
    logger: createMemoryLogger(),
    builtinTrustDir: BUILTIN_TRUST_DIR,
    pluginDirs: [BUILTIN_PLUGINS_DIR],
    catalogueDirs: [BUILTIN_CATALOGUE_DIR],
    journeyDirs: [BUILTIN_JOURNEYS_DIR],
    voice: false,
  });
  await runtime.ledger.topUp({ wallet_id: 'main', amount: 10_000_000, currency: 'UAH', idempotency_key: 'proposals-test-topup' });
  options = {
    store: runtime.store,
    receipts: runtime.receipts,
    device: runtime.deviceKey.keyid,
    plugins: runtime.plugins,
    bus: runtime.bus,
    logger: runtime.logger,
    profileOf: (type) => PROFILES[type],
    productOf: (session) => (stricter.has(session) ? { agent_approvals: stricter.get(session)! } : productApprovalsOf(runtime)(session)),
    // The coffee voucher (10000) is within an agent's limit here, the museum pass (45000) is not.
    limits: { max_amount: 20_000 },
  };
  proposals = createProposals(options);
  registerTesseraActions(proposals, runtime);
}, 120_000);

afterAll(async () => {
  await runtime?.close();
});

let n = 0;
const request = (agent: string, action: string, args: Record<string, unknown>, extra: Partial<ProposalRequest> = {}): ProposalRequest => ({
  action,
  args,
  reason: 'The traveller asked for it.',
  agent: { session: `ags_${agent}_${++n}`, type: agent },
  owner: 'traveller',
  ...extra,
});

const lookup = (keyid: string) => (keyid === runtime.deviceKey.keyid ? { publicKeyRaw: runtime.deviceKey.publicKeyRaw } : undefined);
/** The proposal's chain verified offline (pure verifier) and in its offline bundle; returns the kinds. */
function verified(capsule: string): string[] {
  const chain = verifyChain(runtime.receipts.receipts(capsule), lookup, { capsule });
  expect(chain.ok, chain.ok ? '' : chain.reason).toBe(true);
  const bundle = verifyBundleOnHost(capsuleBundle({ receipts: runtime.receipts, log: runtime.deviceLog, deviceKey: runtime.deviceKey }, capsule, `http://127.0.0.1/v1/r/${capsule}`));
  expect(bundle.ok, JSON.stringify(bundle.checks.filter((c) => c.status !== 'pass'))).toBe(true);
  return runtime.receipts.chain(capsule).map((r) => r.payload.kind);
}

const events = (topic: string, proposal: string) => runtime.journal.query({ topic, limit: 500 }).events.filter((e) => (e.payload as { proposal?: string }).proposal === proposal);

async function buy(product: string, user: string): Promise<ProductSession> {
  for (let attempt = 0; ; attempt++) {
    const s = await runtime.sessions.create({ product, user_id: user, wallet_id: 'main' });
    // A preflight whose checks could not run in time on a loaded machine is tried again with a new session.
    if (s.state === 'preflight_failed' && s.reason?.code === 'PREFLIGHT_CHECK_FAILED' && attempt < 3) continue;
    return runtime.sessions.pay(s.product_runtime_session_id);
  }
}

async function expectCode(p: Promise<unknown>, code: string): Promise<Record<string, unknown> | undefined> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: string; details?: Record<string, unknown> } | undefined;
  expect(err?.code).toBe(code);
  return err?.details;
}

describe('agents only propose', () => {
  it('a redemption an injected prompt asks for is only a proposal, and the policy refuses it: nothing is redeemed', async () => {
    const pass = await buy('city.museum-pass-48h', 'victim');
    const serial = pass.entitlements[0]!.serial;
    const p = await proposals.propose(request('support', 'entitlement.redeem', { serial, venue: 'lviv.history' }, { product_runtime_session_id: pass.product_runtime_session_id }));
    expect(p).toMatchObject({ state: 'refused', approval: { need: 'operator' }, policies: [{ plugin: 'policy-agent-proposal', verdict: 'NACK' }] });
    expect(p.policies[0]!.reason).toMatch(/^AGENT_REDEEM_STAFF_ONLY: /);
    // Not even an operator can approve a refused proposal.
    expect(await expectCode(proposals.decide(p.id, 'approve', OPERATOR), 'AGENT_PROPOSAL_DECIDED')).toEqual({ state: 'refused' });
    expect(runtime.entitlements.history({ q: serial }).length).toBe(0);
    expect(verified(p.capsule)).toEqual(['PROPOSAL', 'RESULT']);
    const [refused] = events(PROPOSAL_EVENTS.refused, p.id);
    expect(refused!.payload).toMatchObject({ session: p.agent.session, agent_type: 'support', proposal: p.id, product_runtime_session_id: pass.product_runtime_session_id, reasons: [{ code: 'AGENT_REDEEM_STAFF_ONLY' }] });
  });

  it('refuses an action the agent\'s profile does not list, a purchase above the limit, and an action nobody registered', async () => {
    const outside = await proposals.propose(request('journey-guide', 'agent.profile.change', { agent_type: 'journey-guide', field: 'budgets.day.tokens', value: 1e9 }));
    expect(outside.state).toBe('refused');
    expect(outside.policies[0]!.reason).toMatch(/^AGENT_ACTION_NOT_ALLOWED: /);
    const dear = await proposals.propose(request('journey-guide', 'session.buy', { product: 'city.museum-pass-48h' }));
    expect(dear.state).toBe('refused');
    expect(dear.policies[0]!.reason).toMatch(/^AGENT_AMOUNT_OVER_LIMIT: /);
    await expectCode(proposals.propose(request('journey-guide', 'wallet.drain', {})), 'AGENT_ACTION_UNKNOWN');
    // Fail closed: with no policy loaded (or one that crashes), nothing is allowed.
    const blind = createProposals({ ...options, plugins: { find: () => undefined, run: () => Promise.reject(new Error('no sandbox')) } });
    registerTesseraActions(blind, runtime);
    const unchecked = await blind.propose(request('journey-guide', 'journey.skip', { journey: 'jny_1', node: 'museum' }));
    expect(unchecked).toMatchObject({ state: 'refused', policies: [{ verdict: 'NACK' }] });
    expect(unchecked.policies[0]!.reason).toContain('PLUGIN_NOT_FOUND');
    expect(events(PROPOSAL_EVENTS.refused, unchecked.id)[0]!.payload).toMatchObject({ reasons: [{ code: 'AGENT_POLICY_CHECK_FAILED' }] });
    await expectCode(proposals.propose(request('journey-guide', 'journey.skip', { journey: 'jny_1' })), 'VALIDATION_FAILED');
  });

  it('runs a journey skip once the traveller approves it, exactly once; the same request is the same proposal', async () => {
    const pass = await buy('city.museum-pass-48h', 'ana');
    const journey = runtime.journeys.start({ session: pass.product_runtime_session_id });
    const node = journey.nodes.at(-1)!.id;
    const ask = request('journey-guide', 'journey.skip', { journey: journey.journey_instance_id, node }, { product_runtime_session_id: pass.product_runtime_session_id, journey_id: journey.journey_instance_id });
    const p = await proposals.propose(ask);
    expect(p).toMatchObject({ state: 'awaiting_approval', approval: { need: 'traveller' }, policies: [{ verdict: 'ACK' }], text: `Skip ${journey.nodes.at(-1)!.title} on your journey.` });
    expect((await proposals.propose({ ...ask, reason: 'Asked again in other words.' })).id).toBe(p.id);
    expect(proposals.list({ session: ask.agent.session })).toHaveLength(1);
    expect(events(PROPOSAL_EVENTS.shown, p.id)[0]!.payload).toMatchObject({ session: ask.agent.session, agent_type: 'journey-guide', journey_id: journey.journey_instance_id, product_runtime_session_id: pass.product_runtime_session_id });

    expect(await expectCode(proposals.decide(p.id, 'approve', { principal: 'staff', roles: ['staff'] }), 'AGENT_APPROVAL_REQUIRED')).toEqual({ need: 'traveller' });
    expect(runtime.journeys.get(journey.journey_instance_id).nodes.at(-1)!.state).toBe('pending');
    const done = await proposals.decide(p.id, 'approve', TRAVELLER);
    expect(done).toMatchObject({ state: 'executed', approval: { need: 'traveller', by: 'traveller', decision: 'approve' }, result: { journey_instance_id: journey.journey_instance_id } });
    const after: JourneyView = runtime.journeys.get(journey.journey_instance_id);
    expect(after.nodes.at(-1)!.state).toBe('skipped');
    expect(after.version).toBe(journey.version + 1);
    expect(await expectCode(proposals.decide(p.id, 'approve', TRAVELLER), 'AGENT_PROPOSAL_DECIDED')).toEqual({ state: 'executed' });
    expect(verified(p.capsule)).toEqual(['PROPOSAL', 'RESULT', 'RESULT', 'EXECUTION']);
    expect(events(PROPOSAL_EVENTS.accepted, p.id)).toHaveLength(1);
    expect(events(PROPOSAL_EVENTS.executed, p.id)).toHaveLength(1);
    expect(runtime.journal.query({ topic: 'journey.node.skipped', limit: 500 }).events.filter((e) => (e.payload as { journey_instance_id?: string }).journey_instance_id === journey.journey_instance_id)).toHaveLength(1);
  });

  it('a rejected change changes nothing; a product may raise the approval to an operator, never lower it', async () => {
    const pass = await buy('city.museum-pass-48h', 'ben');
    const journey = runtime.journeys.start({ session: pass.product_runtime_session_id });
    const later = journey.nodes.find((x) => x.id !== journey.current && x.state === 'pending')!.id;
    const change = await proposals.propose(request('journey-guide', 'journey.change', { journey: journey.journey_instance_id, change: { op: 'move_first', node: later } }));
    expect(change.state).toBe('awaiting_approval');
    const rejected = await proposals.decide(change.id, 'reject', TRAVELLER);
    expect(rejected).toMatchObject({ state: 'rejected', approval: { decision: 'reject' } });
    expect(runtime.journeys.get(journey.journey_instance_id).version).toBe(journey.version);
    expect(verified(change.capsule)).toEqual(['PROPOSAL', 'RESULT', 'RESULT']);
    expect(events(PROPOSAL_EVENTS.rejected, change.id)).toHaveLength(1);
    await expectCode(proposals.decide(change.id, 'approve', TRAVELLER), 'AGENT_PROPOSAL_DECIDED');

    stricter.set(pass.product_runtime_session_id, { 'journey.change': 'operator', 'journey.skip': 'none' });
    const strict = await proposals.propose(request('journey-guide', 'journey.change', { journey: journey.journey_instance_id, change: { op: 'move_first', node: later } }, { product_runtime_session_id: pass.product_runtime_session_id }));
    expect(strict.approval.need).toBe('operator');
    await expectCode(proposals.decide(strict.id, 'approve', TRAVELLER), 'AGENT_APPROVAL_REQUIRED');
    expect(await proposals.decide(strict.id, 'approve', OPERATOR)).toMatchObject({ state: 'executed' });
    const moved = runtime.journeys.get(journey.journey_instance_id);
    expect(moved.current).toBe(later);
    // The same key again (a recovery run) changes nothing.
    expect(runtime.journeys.applyChange(journey.journey_instance_id, { op: 'move_first', node: later }, { key: strict.id }).version).toBe(moved.version);
    const skip = await proposals.propose(request('journey-guide', 'journey.skip', { journey: journey.journey_instance_id, node: later }, { product_runtime_session_id: pass.product_runtime_session_id }));
    expect(skip).toMatchObject({ state: 'awaiting_approval', approval: { need: 'traveller' } });
  });

  it('a purchase cut by a crash after its effect is finished by recover() with the same key: one session, one charge', async () => {
    const user = 'crash-buyer';
    const balance = () => runtime.ledger.balance('main', 'UAH');
    const before = balance();
    // The first process: the purchase happens, then the process "dies" before the EXECUTION receipt is written.
    const dying = createProposals(options);
    let effects = 0;
    registerTesseraActions(
      {
        registerAction: (action) =>
          dying.registerAction(
            action.name !== 'session.buy'
              ? action
              : {
                  ...action,
                  execute: async (args, context) => {
                    await action.execute(args, context);
                    effects++;
                    return new Promise<never>(() => undefined);
                  },
                },
          ),
      },
      runtime,
    );
    const p = await dying.propose(request('journey-guide', 'session.buy', { product: 'city.coffee-voucher', user }));
    expect(p).toMatchObject({ state: 'awaiting_approval', approval: { need: 'traveller' } });
    // The card names what the traveller approves: the product's title and price, and whose it is.
    const coffee = runtime.catalogue.resolve('city.coffee-voucher');
    expect(p.text).toBe(`Buy ${coffee.profiles.ui.title['en']} for ${(coffee.profiles.pricing.price / 100).toFixed(2)} ${coffee.profiles.pricing.currency}, for ${user}.`);
    void dying.decide(p.id, 'approve', TRAVELLER);
    for (let i = 0; i < 400 && effects === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(effects).toBe(1);
    expect(proposals.get(p.id).state).toBe('executing');
    expect(runtime.receipts.chain(p.capsule).map((r) => r.payload.kind)).toEqual(['PROPOSAL', 'RESULT', 'RESULT']);

    // The next start: a new service over the same database recovers it with the same key.
    await proposals.recover();
    const done = proposals.get(p.id);
    expect(done).toMatchObject({ state: 'executed', result: { state: 'active' } });
    const bought = runtime.sessions.list({ user });
    expect(bought.map((s) => s.state)).toEqual(['active']);
    expect(before - balance()).toBe(bought[0]!.price.amount);
    expect(verified(p.capsule)).toEqual(['PROPOSAL', 'RESULT', 'RESULT', 'EXECUTION']);
    expect(events(PROPOSAL_EVENTS.executed, p.id)).toHaveLength(1);
    await proposals.recover();
    expect(runtime.sessions.list({ user })).toHaveLength(1);
  });

  it('a profile change needs an operator; executing it records the request', async () => {
    const p = await proposals.propose(request('ops-slo', 'agent.profile.change', { agent_type: 'support', field: 'budgets.day.tokens', value: 200000 }));
    expect(p).toMatchObject({ state: 'awaiting_approval', approval: { need: 'operator' }, text: "Change budgets.day.tokens of the support agent's profile to 200000." });
    await expectCode(proposals.decide(p.id, 'approve', TRAVELLER), 'AGENT_APPROVAL_REQUIRED');
    expect(await proposals.decide(p.id, 'approve', OPERATOR)).toMatchObject({ state: 'executed', result: { recorded: true, agent_type: 'support', field: 'budgets.day.tokens', value: 200000 } });
    expect(verified(p.capsule)).toEqual(['PROPOSAL', 'RESULT', 'RESULT', 'EXECUTION']);
  });
});
