/**
 * Agents only propose (seed 000 §8; issue 17 point 6): anything an agent wants to change becomes a proposal with its
 * own capsule and signed receipt chain (main/common/receipt.ts, PROPOSAL): PROPOSAL → the policies' RESULT (plugin
 * `policy-agent-proposal` in the sandbox, fail closed) → the approver's RESULT (`via: "approval"`) → EXECUTION. Owns
 * the table `agent_proposals` (store.migrate('agent-proposals')).
 *
 * - Identity: a proposal's id is {@link proposalId} of its action, args, agent session and owner, so the same request
 *   twice is one proposal (the second gets the first back), also after a restart.
 * - Every state change is one SQLite transaction holding the row, its receipts (checked with checkBuiltChain before
 *   the commit) and its journal events; events reach subscribers after the commit.
 * - Approval need: the action's default, raised (never lowered) by the session's product (`agent_approvals`).
 *   Traveller need: a caller with the `traveller` or `operator` role; operator need: `operator`.
 * - Exactly once: the approval and the move to `executing` commit together, before the effect (write-before-effect);
 *   the action runs with `key` = the proposal id; its EXECUTION receipt and `executed`/`failed` commit together after.
 *   A crash in between leaves `executing`: {@link Proposals.recover} runs the action again with the same key, and
 *   each action is idempotent by that key (./actions.ts says how), so the effect happens once. In one process a
 *   proposal runs at most once at a time.
 *
 * Events (bus, journaled; each with `session` (the agent session), `agent_type`, `proposal`, `action`, and
 * `product_runtime_session_id` / `journey_id` when known): `agent.recommendation.shown` (awaiting approval),
 * `agent.recommendation.accepted|rejected` (the decision), `agent.proposal.refused|executed|failed`.
 */
import { cidOf } from '../../common/cid.js';
import { canonicalize } from '../../common/canonical.js';
import { TesseraError, toErrorData } from '../../common/errors.js';
import { CAPSULE_VERSION, approverSatisfies, capsuleId, checkBuiltChain, proposalId } from '../../common/receipt.js';
import type { Capsule, JsonObject, JsonValue } from '../../common/receipt.js';
import type { Bus } from '../bus/index.js';
import { newTraceId } from '../journal/index.js';
import type { AppendInput } from '../journal/index.js';
import type { Logger } from '../log/index.js';
import type { PluginRegistry } from '../plugins/index.js';
import type { DecidingManifest, ReceiptDraft, ReceiptStore } from '../receipts/store.js';
import type { Migration, Store } from '../store/index.js';
import type { ApprovalNeed, ProposalAction, ProposalRequest, ProposalState, ProposalView, Proposals } from './types.js';

/** The policy every proposal passes, by name and the range of versions this runtime runs. */
export const PROPOSAL_POLICY = { name: 'policy-agent-proposal', range: '^1' } as const;

/** Bus topics of proposals (journaled). */
export const PROPOSAL_EVENTS = {
  shown: 'agent.recommendation.shown',
  accepted: 'agent.recommendation.accepted',
  rejected: 'agent.recommendation.rejected',
  refused: 'agent.proposal.refused',
  executed: 'agent.proposal.executed',
  failed: 'agent.proposal.failed',
} as const;

/** The sentence of a policy check that could not be made (docs/errors.md "Proposal policy reasons"). */
export const POLICY_CHECK_FAILED_MESSAGE = 'This proposal could not be checked, so it will not run.';
/** Without a limit from the host: the most an agent may propose to spend, in minor units (as policy-risk). */
export const DEFAULT_MAX_AMOUNT = 500_000;

const NEED_ORDER: readonly ApprovalNeed[] = ['none', 'traveller', 'operator'];
const STATES: readonly ProposalState[] = ['refused', 'awaiting_approval', 'rejected', 'approved', 'executing', 'executed', 'failed'];
const MAX_ARGS_BYTES = 8 * 1024;
const MAX_REASON = 500;
const NAME = /^[\w.:@-]{1,128}$/;

export interface ProposalsOptions {
  store: Store;
  /** Signs and stores the chains (with the device key). */
  receipts: ReceiptStore;
  /** keyid of the device key the receipt store signs with (the chain check before each commit). */
  device: string;
  plugins: Pick<PluginRegistry, 'find' | 'run'>;
  /** Events are staged in each change's transaction (the bus journals them) and delivered after the commit. */
  bus: Pick<Bus, 'stageMany'>;
  logger: Logger;
  clock?: () => number;
  /** The agent profile's `meta.proposes` (the actions its agents may propose); undefined for an unknown type (proposes nothing). */
  profileOf(agentType: string): { proposes: readonly string[] } | undefined;
  /** The product of a product runtime session: its `agent_approvals` (action → need) raise the actions' defaults. */
  productOf?(productRuntimeSessionId: string): { agent_approvals?: Readonly<Record<string, ApprovalNeed>> } | undefined;
  /** The device's limits for agents (`max_amount`: minor units a `session.buy` may cost; default {@link DEFAULT_MAX_AMOUNT}). */
  limits?: { max_amount?: number };
  /** The card's language for an owner (default `en`). */
  languageOf?(owner: string): string;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'agent proposals',
    up(db) {
      db.exec(`
        CREATE TABLE agent_proposals (
          id TEXT PRIMARY KEY, capsule TEXT NOT NULL,
          action TEXT NOT NULL, args TEXT NOT NULL, reason TEXT NOT NULL,
          agent_session TEXT NOT NULL, agent_type TEXT NOT NULL, owner TEXT NOT NULL,
          product_session TEXT, journey_id TEXT, trace_id TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN (${STATES.map((s) => `'${s}'`).join(', ')})),
          need TEXT NOT NULL CHECK (need IN ('none', 'traveller', 'operator')),
          decision TEXT CHECK (decision IN ('approve', 'reject')), decided_by TEXT, decided_at INTEGER,
          policies TEXT NOT NULL, result TEXT, error TEXT,
          created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX agent_proposals_session ON agent_proposals (agent_session, created_at);
        CREATE INDEX agent_proposals_owner ON agent_proposals (owner, created_at);
        CREATE INDEX agent_proposals_open ON agent_proposals (state) WHERE state IN ('awaiting_approval', 'approved', 'executing');
      `);
    },
  },
];

interface Row {
  id: string;
  capsule: string;
  action: string;
  args: string;
  reason: string;
  agent_session: string;
  agent_type: string;
  owner: string;
  product_session: string | null;
  journey_id: string | null;
  trace_id: string;
  state: ProposalState;
  need: ApprovalNeed;
  decision: 'approve' | 'reject' | null;
  decided_by: string | null;
  decided_at: number | null;
  policies: string;
  result: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
}

/** One policy's outcome, as the RESULT receipt records it. */
interface PolicyOutcome {
  plugin: string;
  version: string;
  cid: string;
  verdict: 'ACK' | 'NACK';
  reason: string;
  evidence: JsonValue;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const raise = (a: ApprovalNeed, b: ApprovalNeed | undefined): ApprovalNeed => (b !== undefined && NEED_ORDER.indexOf(b) > NEED_ORDER.indexOf(a) ? b : a);

export function createProposals(options: ProposalsOptions): Proposals {
  const { store, receipts, plugins, bus, logger } = options;
  const clock = options.clock ?? Date.now;
  const maxAmount = options.limits?.max_amount ?? DEFAULT_MAX_AMOUNT;
  store.migrate('agent-proposals', MIGRATIONS);
  const db = store.db;
  const actions = new Map<string, ProposalAction>();

  const stmt = {
    get: db.prepare<[string], Row>('SELECT * FROM agent_proposals WHERE id = ?'),
    insert: db.prepare(`INSERT INTO agent_proposals (id, capsule, action, args, reason, agent_session, agent_type, owner, product_session, journey_id, trace_id, state, need, policies, created_at, updated_at)
      VALUES (@id, @capsule, @action, @args, @reason, @agent_session, @agent_type, @owner, @product_session, @journey_id, @trace_id, @state, @need, @policies, @created_at, @updated_at)`),
    decide: db.prepare("UPDATE agent_proposals SET state = @state, decision = @decision, decided_by = @by, decided_at = @at, updated_at = @at WHERE id = @id AND state = 'awaiting_approval'"),
    executing: db.prepare("UPDATE agent_proposals SET state = 'executing', updated_at = ? WHERE id = ? AND state = 'approved'"),
    finish: db.prepare("UPDATE agent_proposals SET state = @state, result = @result, error = @error, updated_at = @at WHERE id = @id AND state = 'executing'"),
    list: db.prepare<{ session: string | null; owner: string | null; state: string | null; limit: number }, Row>(
      'SELECT * FROM agent_proposals WHERE (@session IS NULL OR agent_session = @session) AND (@owner IS NULL OR owner = @owner) AND (@state IS NULL OR state = @state) ORDER BY created_at DESC, rowid DESC LIMIT @limit',
    ),
    unfinished: db.prepare<[], Row>("SELECT * FROM agent_proposals WHERE state IN ('approved', 'executing') ORDER BY created_at, rowid"),
  };

  const view = (row: Row): ProposalView => {
    const args = JSON.parse(row.args) as Record<string, unknown>;
    const action = actions.get(row.action);
    let text = `${row.action} ${row.args}`;
    try {
      if (action) text = action.describe(args, options.languageOf?.(row.owner) ?? 'en');
    } catch (err) {
      logger.warn('a proposal action could not describe its card', { action: row.action, error: err });
    }
    return {
      id: row.id,
      capsule: row.capsule,
      action: row.action,
      args,
      reason: row.reason,
      agent: { session: row.agent_session, type: row.agent_type },
      owner: row.owner,
      state: row.state,
      approval: {
        need: row.need,
        ...(row.decided_by !== null ? { by: row.decided_by } : {}),
        ...(row.decided_at !== null ? { at: iso(row.decided_at) } : {}),
        ...(row.decision !== null ? { decision: row.decision } : {}),
      },
      policies: (JSON.parse(row.policies) as PolicyOutcome[]).map((p) => ({ plugin: p.plugin, verdict: p.verdict, reason: p.reason })),
      ...(row.result !== null ? { result: JSON.parse(row.result) as unknown } : {}),
      ...(row.error !== null ? { error: JSON.parse(row.error) as { code: string; message: string } } : {}),
      text,
      created_at: iso(row.created_at),
      updated_at: iso(row.updated_at),
    };
  };

  const rowOf = (id: string): Row => {
    const row = typeof id === 'string' ? stmt.get.get(id) : undefined;
    if (!row) throw new TesseraError('AGENT_PROPOSAL_NOT_FOUND', `No agent proposal ${JSON.stringify(id)} on this device.`);
    return row;
  };

  /** The fields every proposal event carries (seed 000 §3.2, §6.4). */
  const about = (row: Row): Record<string, unknown> => ({
    session: row.agent_session,
    agent_type: row.agent_type,
    proposal: row.id,
    action: row.action,
    ...(row.product_session !== null ? { product_runtime_session_id: row.product_session } : {}),
    ...(row.journey_id !== null ? { journey_id: row.journey_id } : {}),
  });
  const event = (topic: string, row: Row, extra: Record<string, unknown> = {}): AppendInput => ({ topic, trace_id: row.trace_id, payload: { ...about(row), ...extra } });

  /**
   * One state change in one transaction: `write` (row updates) → receipts appended to the proposal's chain → the whole
   * chain checked (checkBuiltChain: a change that breaks the proposal rules rolls back) → events staged. Events are
   * delivered after the commit.
   */
  const commit = <T>(capsule: string, write: () => T, drafts: (out: T) => ReceiptDraft[], events: (out: T) => AppendInput[]): T => {
    let deliver: () => void = () => undefined;
    const out = receipts.transaction(() => {
      const result = write();
      const list = drafts(result);
      if (list.length > 0) {
        receipts.appendReceipts(capsule, list, clock());
        const checked = checkBuiltChain(receipts.chain(capsule).map((r) => ({ id: r.id, payload: r.payload })), { capsule, device: options.device });
        if (!checked.ok) throw new TesseraError('CHAIN_INVALID', `The receipts of proposal capsule ${capsule} break the chain rules: ${checked.reason}`);
      }
      deliver = bus.stageMany(events(result)).deliver;
      return result;
    });
    deliver();
    return out;
  };

  /** The manifest that decides proposals on this device: its actions with their approvals, its policy, its limit (the capsule's `product`). */
  const manifest = (): DecidingManifest => {
    const m = {
      name: 'tessera.agent-proposals',
      version: '1.0.0',
      description: 'Agents only propose (seed 000 §8): the actions agents may propose on this device, who approves each, and the policy that checks them.',
      actions: [...actions.values()].map((a) => ({ name: a.name, approval: a.approval })).sort((a, b) => a.name.localeCompare(b.name)),
      policies: [`${PROPOSAL_POLICY.name}@${PROPOSAL_POLICY.range}`],
      limits: { max_amount: maxAmount },
    };
    return { role: 'product', name: m.name, version: m.version, cid: cidOf(m), manifest: m };
  };

  /** Runs the proposal policy; never throws: a fault is a NACK with AGENT_POLICY_CHECK_FAILED (fail closed). */
  const runPolicy = async (input: JsonObject, now: number, traceId: string): Promise<{ outcome: PolicyOutcome; manifest?: DecidingManifest }> => {
    const plugin = plugins.find(PROPOSAL_POLICY.name, PROPOSAL_POLICY.range);
    const failed = (version: string, cid: string, fault: { code: string; message: string }): PolicyOutcome => ({
      plugin: PROPOSAL_POLICY.name,
      version,
      cid,
      verdict: 'NACK',
      reason: `the policy failed: ${fault.code}: ${fault.message}`,
      evidence: { code: 'AGENT_POLICY_CHECK_FAILED', message: POLICY_CHECK_FAILED_MESSAGE, fault: fault.code },
    });
    if (!plugin) return { outcome: failed('', '', { code: 'PLUGIN_NOT_FOUND', message: `No ${PROPOSAL_POLICY.name}@${PROPOSAL_POLICY.range} is loaded.` }) };
    const decided: DecidingManifest = { role: 'policy', name: plugin.manifest.name, version: plugin.manifest.version, cid: plugin.cid, manifest: plugin.manifest as unknown as Record<string, unknown> };
    const base = { plugin: PROPOSAL_POLICY.name, version: plugin.manifest.version, cid: plugin.cid };
    try {
      const ran = await plugins.run(plugin.key, input, { now, trace_id: traceId });
      const out = ran.output as { verdict?: unknown; reason?: unknown; evidence?: unknown };
      const ev = out?.evidence as { code?: unknown; message?: unknown } | undefined;
      if (out?.verdict === 'ACK' && typeof out.reason === 'string') return { outcome: { ...base, verdict: 'ACK', reason: out.reason, evidence: (out.evidence ?? null) as JsonValue }, manifest: decided };
      // A NACK must carry a code and a sentence; an ASK has no one to ask here: both fail closed otherwise.
      if (out?.verdict === 'NACK' && typeof out.reason === 'string' && typeof ev?.code === 'string' && typeof ev.message === 'string') {
        return { outcome: { ...base, verdict: 'NACK', reason: out.reason, evidence: out.evidence as JsonValue }, manifest: decided };
      }
      return { outcome: { ...failed(base.version, base.cid, { code: 'PLUGIN_OUTPUT_INVALID', message: `answered ${String(out?.verdict)} without a reason code` }) }, manifest: decided };
    } catch (err) {
      const data = toErrorData(err);
      return { outcome: failed(base.version, base.cid, { code: data.code, message: data.message }), manifest: decided };
    }
  };

  const checkRequest = (request: ProposalRequest): ProposalAction => {
    const problem = (field: string, what: string): TesseraError => new TesseraError('VALIDATION_FAILED', `Proposal ${field}: ${what}.`, { details: { field } });
    if (request === null || typeof request !== 'object') throw problem('request', 'must be an object');
    const action = actions.get(request.action);
    if (!action) throw new TesseraError('AGENT_ACTION_UNKNOWN', `No action ${JSON.stringify(request.action)} can be proposed; the actions are ${[...actions.keys()].join(', ')}.`, { details: { actions: [...actions.keys()] } });
    if (request.args === null || typeof request.args !== 'object' || Array.isArray(request.args)) throw problem('args', 'must be a JSON object');
    let text: string;
    try {
      text = canonicalize(request.args);
    } catch {
      throw problem('args', 'must be plain JSON');
    }
    if (text.length > MAX_ARGS_BYTES) throw problem('args', `must be at most ${MAX_ARGS_BYTES} bytes of JSON`);
    if (typeof request.reason !== 'string' || request.reason.trim() === '' || request.reason.length > MAX_REASON) throw problem('reason', `must be a sentence of 1–${MAX_REASON} characters`);
    if (typeof request.agent?.session !== 'string' || !NAME.test(request.agent.session)) throw problem('agent.session', 'must be the agent session id');
    if (typeof request.agent?.type !== 'string' || !NAME.test(request.agent.type)) throw problem('agent.type', 'must be the agent type');
    if (typeof request.owner !== 'string' || !NAME.test(request.owner)) throw problem('owner', 'must be the owner principal');
    for (const f of ['product_runtime_session_id', 'journey_id', 'trace_id'] as const) {
      const v = request[f];
      if (v !== undefined && (typeof v !== 'string' || !NAME.test(v))) throw problem(f, 'must be an id');
    }
    action.validate(request.args);
    return action;
  };

  // Proposals being made (policy running) and being executed, by id: one at a time per id in this process.
  const proposing = new Map<string, Promise<ProposalView>>();
  const running = new Map<string, Promise<void>>();

  const propose = async (request: ProposalRequest, action: ProposalAction, id: string): Promise<ProposalView> => {
    const now = clock();
    const traceId = request.trace_id ?? newTraceId(now);
    const productSession = request.product_runtime_session_id ?? null;
    const need = raise(action.approval, productSession === null ? undefined : options.productOf?.(productSession)?.agent_approvals?.[action.name]);
    const price = action.price?.(request.args);
    const input: JsonObject = {
      proposal: { action: action.name, args: request.args as JsonObject, agent_type: request.agent.type },
      profile: { proposes: [...(options.profileOf(request.agent.type)?.proposes ?? [])] },
      limits: { max_amount: maxAmount },
      approval: { need },
      ...(price ? { price: { amount: price.amount, currency: price.currency } } : {}),
    };
    const { outcome, manifest: policyManifest } = await runPolicy(input, now, traceId);
    const allowed = outcome.verdict === 'ACK';
    const state: ProposalState = !allowed ? 'refused' : need === 'none' ? 'executing' : 'awaiting_approval';
    const product = manifest();
    const capsule: Capsule = {
      v: CAPSULE_VERSION,
      product: product.cid,
      act: 'agent.proposal',
      tenant: 'device',
      aud: request.owner,
      src: `agent-session:${request.agent.session}`,
      view: { proposal: id, action: action.name, args: request.args as JsonObject, agent_session: request.agent.session, owner: request.owner },
    };
    const cid = capsuleId(capsule);
    const at = clock();
    const row: Row = {
      id,
      capsule: cid,
      action: action.name,
      args: canonicalize(request.args),
      reason: request.reason.trim(),
      agent_session: request.agent.session,
      agent_type: request.agent.type,
      owner: request.owner,
      product_session: productSession,
      journey_id: request.journey_id ?? null,
      trace_id: traceId,
      state,
      need,
      decision: null,
      decided_by: null,
      decided_at: null,
      policies: JSON.stringify([outcome]),
      result: null,
      error: null,
      created_at: at,
      updated_at: at,
    };
    const subject = `agent-session:${row.agent_session}`;
    const written = commit(
      cid,
      () => {
        // Another process (or a request this one did not see) made it meanwhile: that one stands.
        if (stmt.get.get(id)) return false;
        receipts.createCapsule(cid, capsule, allowed ? (need === 'none' ? 'ACK' : 'ASK') : 'NACK', allowed ? (need === 'none' ? 'decided' : 'pending') : 'rejected', at);
        receipts.recordManifests(cid, policyManifest ? [product, policyManifest] : [product]);
        stmt.insert.run(row);
        return true;
      },
      (fresh): ReceiptDraft[] =>
        fresh
          ? [
              {
                kind: 'PROPOSAL',
                subject,
                body: {
                  proposal: id,
                  action: row.action,
                  args: request.args as JsonObject,
                  reason: row.reason,
                  agent: { session: row.agent_session, type: row.agent_type },
                  owner: row.owner,
                  ...(productSession !== null ? { product_runtime_session_id: productSession } : {}),
                  ...(row.journey_id !== null ? { journey_id: row.journey_id } : {}),
                } as JsonObject,
              },
              {
                kind: 'RESULT',
                subject,
                body: { step: 'policy', verdict: outcome.verdict, decision: allowed ? 'ALLOW' : 'DENY', policies: [outcome as unknown as JsonObject], approval: { need }, input_cid: cidOf(input) },
              },
            ]
          : [],
      (fresh) => {
        if (!fresh) return [];
        if (!allowed) {
          const ev = outcome.evidence as { code?: string; message?: string } | null;
          return [event(PROPOSAL_EVENTS.refused, row, { reasons: [{ plugin: outcome.plugin, code: ev?.code ?? 'AGENT_POLICY_CHECK_FAILED', message: ev?.message ?? POLICY_CHECK_FAILED_MESSAGE }] })];
        }
        return need === 'none' ? [] : [event(PROPOSAL_EVENTS.shown, row, { need, text: view(row).text })];
      },
    );
    if (written && state === 'executing') await run(id);
    return view(rowOf(id));
  };

  /** Runs an `approved`/`executing` proposal's action once in this process, and records what became of it. */
  const run = (id: string): Promise<void> => {
    let p = running.get(id);
    if (!p) {
      p = execute(id).finally(() => running.delete(id));
      running.set(id, p);
    }
    return p;
  };

  const execute = async (id: string): Promise<void> => {
    let row = rowOf(id);
    if (row.state !== 'approved' && row.state !== 'executing') return;
    const action = actions.get(row.action);
    if (!action) {
      // Left as it is: the action may be registered later in the start (recover runs it then).
      logger.warn('an approved proposal names an action that is not registered; it waits', { proposal: id, action: row.action });
      return;
    }
    if (row.state === 'approved') {
      stmt.executing.run(clock(), id);
      row = rowOf(id);
    }
    let outcome: 'executed' | 'failed';
    let result: unknown = null;
    let error: { code: string; message: string } | null = null;
    try {
      result = (await action.execute(JSON.parse(row.args) as Record<string, unknown>, { key: id, proposal: view(row) })) ?? null;
      outcome = 'executed';
    } catch (err) {
      const data = toErrorData(err);
      error = { code: data.code, message: data.message };
      outcome = 'failed';
      logger.warn('an approved proposal failed', { proposal: id, action: row.action, error: err });
    }
    let output: string | null = null;
    let resultJson: string | null = null;
    try {
      resultJson = canonicalize(result);
      output = cidOf(result);
    } catch {
      resultJson = JSON.stringify(String(result));
    }
    const at = clock();
    const subject = `agent-session:${row.agent_session}`;
    commit(
      row.capsule,
      () => {
        const changed = stmt.finish.run({ id, state: outcome, result: outcome === 'executed' ? resultJson : null, error: error === null ? null : JSON.stringify(error), at }).changes;
        if (changed !== 1) throw new TesseraError('AGENT_PROPOSAL_DECIDED', `Proposal ${id} was finished elsewhere.`, { details: { state: rowOf(id).state } });
        if (outcome === 'failed') receipts.setCapsuleState(row.capsule, 'NACK', 'rejected', at);
      },
      () => [
        {
          kind: 'EXECUTION',
          subject,
          body: { proposal: id, executor: 'agent.proposal', effect: row.action, key: id, outcome, output_cid: outcome === 'executed' ? output : null, ...(error ? { error } : {}) },
        },
      ],
      () => [event(outcome === 'executed' ? PROPOSAL_EVENTS.executed : PROPOSAL_EVENTS.failed, row, outcome === 'executed' ? { output_cid: output } : { error })],
    );
  };

  return {
    registerAction(action) {
      if (!NAME.test(action.name)) throw new TesseraError('VALIDATION_FAILED', `An action name must be 1–128 letters, digits or . _ : @ -, not ${JSON.stringify(action.name)}.`);
      if (!NEED_ORDER.includes(action.approval)) throw new TesseraError('VALIDATION_FAILED', `Action ${action.name}: approval must be one of ${NEED_ORDER.join(', ')}.`);
      actions.set(action.name, action);
    },

    actions: () => [...actions.keys()].sort(),

    async propose(request) {
      const action = checkRequest(request);
      const id = proposalId({ action: action.name, args: request.args, agent_session: request.agent.session, owner: request.owner });
      const existing = stmt.get.get(id);
      if (existing) return view(existing);
      let p = proposing.get(id);
      if (!p) {
        p = propose(request, action, id).finally(() => proposing.delete(id));
        proposing.set(id, p);
      }
      return p;
    },

    get: (id) => view(rowOf(id)),

    list(filter = {}) {
      return stmt.list.all({ session: filter.session ?? null, owner: filter.owner ?? null, state: filter.state ?? null, limit: Math.min(Math.max(filter.limit ?? 100, 1), 500) }).map(view);
    },

    async decide(id, decision, by) {
      if (decision !== 'approve' && decision !== 'reject') throw new TesseraError('VALIDATION_FAILED', 'decision must be "approve" or "reject".');
      const row = rowOf(id);
      if (row.state !== 'awaiting_approval') {
        throw new TesseraError('AGENT_PROPOSAL_DECIDED', `Proposal ${id} is ${row.state}; it can no longer be approved or rejected.`, { details: { state: row.state } });
      }
      if (!approverSatisfies(row.need, by.roles)) {
        const who = row.need === 'operator' ? "an operator's" : "the traveller's (or an operator's)";
        throw new TesseraError('AGENT_APPROVAL_REQUIRED', `Proposal ${id} needs ${who} decision; the roles ${by.roles.join(', ') || '(none)'} cannot decide it.`, { details: { need: row.need } });
      }
      const approve = decision === 'approve';
      const at = clock();
      commit(
        row.capsule,
        () => {
          // Approval and the move to `executing` commit together, before the effect (write-before-effect).
          if (stmt.decide.run({ id, state: approve ? 'executing' : 'rejected', decision, by: by.principal, at }).changes !== 1) {
            throw new TesseraError('AGENT_PROPOSAL_DECIDED', `Proposal ${id} was decided meanwhile.`, { details: { state: rowOf(id).state } });
          }
          receipts.setCapsuleState(row.capsule, approve ? 'ACK' : 'NACK', approve ? 'decided' : 'rejected', at);
        },
        () => [
          {
            kind: 'RESULT',
            subject: `agent-session:${row.agent_session}`,
            body: { step: 'approval', via: 'approval', verdict: approve ? 'ACK' : 'NACK', decision: approve ? 'ALLOW' : 'DENY', policies: [], approval: { need: row.need, decision, by: by.principal, roles: [...by.roles] } },
          },
        ],
        () => [event(approve ? PROPOSAL_EVENTS.accepted : PROPOSAL_EVENTS.rejected, row, { need: row.need, by: by.principal })],
      );
      if (approve) await run(id);
      return view(rowOf(id));
    },

    async recover() {
      for (const row of stmt.unfinished.all()) {
        logger.info('running a proposal a stop interrupted, with its idempotency key', { proposal: row.id, action: row.action, state: row.state });
        await run(row.id).catch((err: unknown) => logger.warn('could not finish an interrupted proposal', { proposal: row.id, error: err }));
      }
    },
  };
}
