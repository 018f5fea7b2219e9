/**
 * The actions Tessera's agents may propose (seed 000 §8; issue 17 point 6), each executed by the module that owns the
 * change, through its public interface. Every `execute` is idempotent by `key` (the proposal id), because a proposal
 * left `executing` by a crash runs again with the same key (./proposals.ts):
 *
 * - `journey.skip` {journey, node} — journeys.skip names the node: a node already done is answered as it is.
 * - `journey.change` {journey, change: {op: move_first|substitute|set_place, …}} — journeys.applyChange keeps the key
 *   with the change (table `journey_changes`): the same key again changes nothing.
 * - `session.buy` {product, user?, wallet?} — `user` and `wallet` are never the agent's: the `propose` tool
 *   (./tools.ts) fills them from the agent session's product runtime session (or its owner) and refuses them from
 *   the agent. sessions.create with idempotency key `proposal:<key>` (the same key
 *   answers the session it created), then preflight and pay, which answer an active session as it is (one charge; a
 *   payment a crash cut is finished by sessions.recover, which runs first at start).
 * - `entitlement.redeem` {serial, venue} — operator approval, and the policy refuses it from any agent (staff redeem
 *   at the venue); should a policy ever allow it, the redemption's screen is `proposal:<key>` and a redemption with
 *   that screen already in the history is answered instead of redeeming again.
 * - `agent.profile.change` {agent_type, field, value} — operator approval; it records the change request in its
 *   EXECUTION receipt and answer (and calls `parts.profileChange` when the host gives one); profiles are files an
 *   operator edits (`<data>/agents/profiles/*.yaml`), so nothing else changes.
 *
 * Cards: `describe` names every argument that changes the effect — the product's title and price with
 * the wallet and user of a purchase, the stops (and place) of a journey change, the value of a profile change.
 *
 * Approvals: traveller for the journey and purchase actions, operator for the others; a product's `agent_approvals`
 * may raise them (./proposals.ts).
 */
import { TesseraError } from '../../common/errors.js';
import { JOURNEY_LANGUAGES } from '../../common/journeys.js';
import type { JourneyLanguage, Proposal as JourneyProposal } from '../../common/journeys.js';
import type { Catalogue } from '../catalogue/index.js';
import type { Entitlements } from '../entitlements/index.js';
import type { Journeys } from '../journeys/index.js';
import type { Sessions } from '../sessions/index.js';
import type { ApprovalNeed, ProposalAction, Proposals } from './types.js';

/** The parts of the runtime the actions change, through their public interfaces. */
export interface TesseraActionParts {
  catalogue: Pick<Catalogue, 'resolve'>;
  sessions: Pick<Sessions, 'create' | 'preflight' | 'pay'>;
  journeys: Pick<Journeys, 'skip' | 'applyChange' | 'get'>;
  entitlements: Pick<Entitlements, 'list' | 'redeem' | 'history'>;
  /** Applies an approved profile change (idempotent by key); absent: the change request is only recorded. */
  profileChange?(change: { agent_type: string; field: string; value: unknown }, key: string): unknown;
}

/** An id argument (sessions, journeys, nodes, serials, venues, users, wallets). */
const ID = /^[\w.:@-]{1,128}$/;

function need(args: Record<string, unknown>, field: string, pattern = ID): string {
  const v = args[field];
  if (typeof v !== 'string' || !pattern.test(v)) throw new TesseraError('VALIDATION_FAILED', `The proposal's ${field} must be an id (1–128 letters, digits or . _ : @ -).`, { details: { field } });
  return v;
}

function optional(args: Record<string, unknown>, field: string): string | undefined {
  return args[field] === undefined ? undefined : need(args, field);
}

const money = (minor: number, currency: string) => `${(minor / 100).toFixed(2)} ${currency}`;
const clipped = (s: string, max = 200) => (s.length > max ? `${s.slice(0, max)}…` : s);

const CHANGE_OPS = ['move_first', 'substitute', 'set_place'] as const;

function changeOf(args: Record<string, unknown>): JourneyProposal['change'] {
  const c = args['change'] as Record<string, unknown> | null | undefined;
  if (c === null || typeof c !== 'object' || !CHANGE_OPS.includes(c['op'] as (typeof CHANGE_OPS)[number])) {
    throw new TesseraError('VALIDATION_FAILED', `The proposal's change must be {op: ${CHANGE_OPS.join('|')}, node, with? (substitute), place? (set_place)}.`, { details: { field: 'change' } });
  }
  const node = need(c, 'node');
  if (c['op'] === 'substitute') return { op: 'substitute', node, with: need(c, 'with') };
  if (c['op'] === 'set_place') return { op: 'set_place', node, place: need(c, 'place') };
  return { op: 'move_first', node };
}

/** Registers Tessera's five proposable actions on `proposals`. */
export function registerTesseraActions(proposals: Pick<Proposals, 'registerAction'>, parts: TesseraActionParts): void {
  /** A node's title in the card's language (its id when the journey cannot be read). */
  const nodeTitle = (journey: unknown, node: unknown, language: string): string => {
    try {
      const view = parts.journeys.get(String(journey), (JOURNEY_LANGUAGES as readonly string[]).includes(language) ? (language as JourneyLanguage) : undefined);
      return view.nodes.find((n) => n.id === node)?.title ?? String(node);
    } catch {
      return String(node);
    }
  };
  /** A place's name when a stop of the journey is there (its id otherwise). */
  const placeName = (journey: unknown, place: string, language: string): string => {
    try {
      const view = parts.journeys.get(String(journey), (JOURNEY_LANGUAGES as readonly string[]).includes(language) ? (language as JourneyLanguage) : undefined);
      return view.nodes.find((n) => n.place.id === place)?.place.name ?? place;
    } catch {
      return place;
    }
  };
  const actions: ProposalAction[] = [
    {
      name: 'journey.skip',
      approval: 'traveller',
      validate(args) {
        need(args, 'journey');
        need(args, 'node');
      },
      async execute(args, { proposal }) {
        const j = parts.journeys.skip(need(args, 'journey'), need(args, 'node'), { by: proposal.approval.by === 'operator' ? 'operator' : 'touch' });
        return { journey_instance_id: j.journey_instance_id, version: j.version, state: j.state, current: j.current };
      },
      describe: (args, language) => `Skip ${nodeTitle(args['journey'], args['node'], language)} on your journey.`,
    },
    {
      name: 'journey.change',
      approval: 'traveller',
      validate(args) {
        need(args, 'journey');
        changeOf(args);
      },
      async execute(args, { key }) {
        const j = parts.journeys.applyChange(need(args, 'journey'), changeOf(args), { key });
        return { journey_instance_id: j.journey_instance_id, version: j.version, state: j.state, current: j.current };
      },
      describe(args, language) {
        const c = changeOf(args);
        const title = (node: string) => nodeTitle(args['journey'], node, language);
        if (c.op === 'move_first') return `Go to ${title(c.node)} next.`;
        if (c.op === 'substitute') return `Visit ${title(c.with)} instead of ${title(c.node)}.`;
        return `Spend ${title(c.node)} at ${placeName(args['journey'], c.place, language)}.`;
      },
    },
    {
      name: 'session.buy',
      approval: 'traveller',
      validate(args) {
        need(args, 'product', /^[\w.:@^~<>=*+ -]{1,200}$/);
        optional(args, 'user');
        optional(args, 'wallet');
        parts.catalogue.resolve(args['product'] as string);
      },
      price(args) {
        const pricing = parts.catalogue.resolve(need(args, 'product', /^[\w.:@^~<>=*+ -]{1,200}$/)).profiles.pricing;
        return { amount: pricing.price, currency: pricing.currency };
      },
      async execute(args, { key, proposal }) {
        const user = optional(args, 'user') ?? proposal.owner;
        const wallet = optional(args, 'wallet');
        const by = `agent-proposal:${proposal.agent.type}`;
        // The same key answers the session it created first: a second run after a crash buys nothing new.
        let s = await parts.sessions.create({ product: args['product'] as string, user_id: user, ...(wallet ? { wallet_id: wallet } : {}), idempotency_key: `proposal:${key}`, by });
        if (s.state === 'created') s = await parts.sessions.preflight(s.product_runtime_session_id, by);
        if (s.state === 'preflight_failed') {
          throw new TesseraError('PREFLIGHT_FAILED', `The purchase did not pass its preflight: ${s.reason?.message ?? s.preflight?.reasons[0]?.message ?? 'see its preflight reasons'}`, { details: { session: s.product_runtime_session_id } });
        }
        if (s.state !== 'active') s = await parts.sessions.pay(s.product_runtime_session_id, by);
        return { product_runtime_session_id: s.product_runtime_session_id, state: s.state, capsule: s.capsule, price: s.price, entitlements: s.entitlements.map((e) => e.serial) };
      },
      describe(args, language) {
        const user = typeof args['user'] === 'string' ? args['user'] : undefined;
        const wallet = typeof args['wallet'] === 'string' ? args['wallet'] : undefined;
        let what = String(args['product']);
        try {
          const p = parts.catalogue.resolve(what);
          what = `${p.profiles.ui.title[language] ?? p.profiles.ui.title['en'] ?? p.ref} for ${money(p.profiles.pricing.price, p.profiles.pricing.currency)}`;
        } catch {
          // A product this device does not hold: the card shows the reference as given (the policy refuses it anyway).
        }
        return `Buy ${what}${wallet ? `, paid from wallet ${wallet}` : ''}${user ? `, for ${user}` : ''}.`;
      },
    },
    {
      name: 'entitlement.redeem',
      approval: 'operator',
      validate(args) {
        need(args, 'serial');
        need(args, 'venue');
      },
      async execute(args, { key }) {
        const serial = need(args, 'serial');
        const venue = need(args, 'venue');
        const screen = `proposal:${key}`;
        const done = parts.entitlements.history({ q: key, limit: 10 }).find((r) => r.screen === screen);
        if (done) return { verdict: 'REDEEMED', redemption: done.id, serial: done.serial, venue: done.venue };
        const held = parts.entitlements.list({ limit: 500 }).find((e) => e.serial === serial);
        if (!held) throw new TesseraError('VALIDATION_FAILED', `No entitlement ${serial} was issued on this device.`, { details: { field: 'serial' } });
        const answer = parts.entitlements.redeem({ code: held.code, venue, screen });
        if (!answer.ok) throw new TesseraError('VALIDATION_FAILED', `The redemption was refused: ${answer.verdict}: ${answer.message}`, { details: { verdict: answer.verdict } });
        return { verdict: answer.verdict, redemption: answer.redemption?.id ?? null, serial, venue };
      },
      describe: (args) => `Redeem pass ${String(args['serial'])} at ${String(args['venue'])}.`,
    },
    {
      name: 'agent.profile.change',
      approval: 'operator',
      validate(args) {
        need(args, 'agent_type');
        need(args, 'field', /^[\w.-]{1,128}$/);
        if (!('value' in args)) throw new TesseraError('VALIDATION_FAILED', "The proposal's value is missing.", { details: { field: 'value' } });
      },
      async execute(args, { key }) {
        const change = { agent_type: need(args, 'agent_type'), field: need(args, 'field', /^[\w.-]{1,128}$/), value: args['value'] };
        const applied = parts.profileChange ? await parts.profileChange(change, key) : undefined;
        return { recorded: true, ...change, ...(applied !== undefined ? { applied } : {}) };
      },
      describe: (args) => `Change ${String(args['field'])} of the ${String(args['agent_type'])} agent's profile to ${clipped(JSON.stringify(args['value']) ?? 'nothing')}.`,
    },
  ];
  for (const action of actions) proposals.registerAction(action);
}

/**
 * `ProposalsOptions.productOf` on the runtime's parts: the `agent_approvals` of the ProductDef a product runtime
 * session bought (undefined when it names none, or for a session or def this device does not hold).
 */
export function productApprovalsOf(parts: { catalogue: Pick<Catalogue, 'resolve'>; sessions: Pick<Sessions, 'get'> }): (session: string) => { agent_approvals?: Readonly<Record<string, ApprovalNeed>> } | undefined {
  return (session) => {
    try {
      const approvals = parts.catalogue.resolve(parts.sessions.get(session).product.cid).def.agent_approvals;
      return approvals ? { agent_approvals: approvals } : undefined;
    } catch {
      return undefined;
    }
  };
}
