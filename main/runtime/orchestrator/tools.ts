/**
 * The in-process MCP server `tessera` (issue 17 point 5; seed 003 FR4.5; seed 000 §8): one fresh server per agent
 * session, offering what the session's profile lists in its `options.tools` (default: every read-only tool) and
 * `options.plugins` (signed tool plugins), plus `propose`. The model sees them as `tessera__<tool>`.
 *
 * - Read-only runtime tools: `journey_next`, `journey_place`, `route_to`, `journey_ideas` (the journeys module's own
 *   rule-based guide), `products_list`, `weather` (the `tool-weather` plugin), `metrics_read` (named Tessera metrics
 *   with their objectives, for the Ops agent), `entitlements_list` (the passes of the session's product session).
 * - Journeys are scoped to the agent session: a session whose metadata names a journey or a product session reads
 *   only that journey (or that product session's journeys); with neither, only an operator's session reads any.
 * - Tool plugins run through the plugin registry exactly as scenario tool steps do (../scenarios/tools.ts
 *   `pluginToolRunner`): trust, capability grants and a device-signed permit bound to the arguments; the
 *   idempotency key is the one the agent runtime sends in `_meta["tessera/idempotency_key"]`.
 * - `propose {action, args, reason}` is the one tool that asks for a change: it records a proposal through
 *   {@link Proposals.propose} (PROPOSAL receipt, policy verdicts) and answers its id, state and card text. It
 *   executes nothing: a proposal runs only after the policies allowed it and the approver approved it. Its
 *   arguments are bound to the session's scope first (`scopedArgs`): the session's own journey, and for a purchase
 *   the session's user and wallet, never the agent's choice.
 * - Failures come back as MCP results with `isError: true` and a message that starts with the error code.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import type { IssuedEntitlement } from '../../common/entitlements.js';
import type { JourneyLanguage, JourneyView, NextStep, Proposal, RoutePlan } from '../../common/journeys.js';
import { JOURNEY_LANGUAGES } from '../../common/journeys.js';
import { TesseraError } from '../../common/errors.js';
import type { InProcessServerFactory, SessionInfo } from '../agents/types.js';
import type { SigningKey } from '../keys/index.js';
import type { MetricsRegistry } from '../metrics/index.js';
import type { PluginRegistry } from '../plugins/index.js';
import { pluginToolRunner } from '../scenarios/tools.js';
import { VERSION } from '../version.js';
import type { ProposalView, Proposals } from './types.js';

/** The `_meta` key the agent runtime's MCP client puts the call's idempotency key under. */
export const IDEMPOTENCY_META = 'tessera/idempotency_key';
export const WEATHER_PLUGIN = 'tool-weather';

/** What the tools read of the runtime's modules (structural: the runtime passes the real ones). */
export interface TesseraToolsDeps {
  journeys?: {
    get(id: string, language?: JourneyLanguage): JourneyView;
    list(q?: { session?: string; state?: 'started' | 'completed' | 'abandoned'; limit?: number }): JourneyView[];
    next(id: string, o?: { language?: JourneyLanguage }): NextStep;
    routeTo(id: string, place: string, o?: { language?: JourneyLanguage }): RoutePlan;
    place(id: string, place: string, o?: { language?: JourneyLanguage }): { name: string; opens_at: string | null; closes_at: string | null; closed_today: boolean; text: string };
    proposals(id: string, o?: { language?: JourneyLanguage }): Proposal[];
  };
  catalogue?: { list(q?: { city?: string }): Array<{ id: string; ref: string; cities: string[]; journey: string | null; profiles: { pricing: { price: number; currency: string }; entitlement: { kind: string; venues: Array<{ id: string; name: string }> }; ui: { title: Record<string, string>; description: Record<string, string> } } }> };
  entitlements?: { list(q?: { session?: string; limit?: number }): IssuedEntitlement[] };
  /** Product runtime sessions: whose and which wallet a proposed purchase is (`propose` of `session.buy`). */
  sessions?: { get(id: string): { user_id: string; wallet_id: string } };
  plugins?: PluginRegistry;
  deviceKey?: SigningKey;
  metrics?: MetricsRegistry;
  proposals: Proposals;
  /** The trace id of the session's turn in progress (the proposal joins it). */
  traceOf?: (session: string) => string | undefined;
  /** Called with every proposal a session's `propose` made (the orchestrator returns them with the turn). */
  onProposal?: (session: string, proposal: ProposalView) => void;
  clock?: () => number;
}

interface ToolContext {
  session: SessionInfo;
  language: JourneyLanguage;
  idempotencyKey: string;
  signal: AbortSignal;
}

interface ToolDef {
  name: string;
  description: string;
  inputSchema: Tool['inputSchema'];
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<unknown>;
}

/** The read-only tools plus propose: what a profile gets when its server options list no `tools`. */
export const TESSERA_TOOLS = ['journey_next', 'journey_place', 'route_to', 'journey_ideas', 'products_list', 'weather', 'metrics_read', 'entitlements_list', 'propose'] as const;

/** Objectives the Ops agent reports against (metric, what is measured, the threshold). */
export const METRIC_OBJECTIVES = [
  { metric: 'tessera_run_duration_seconds', measure: 'p95', max: 0.5, unit: 's', what: 'POST /v1/run end to end' },
  { metric: 'tessera_http_request_duration_seconds', measure: 'p95', max: 1, unit: 's', what: 'HTTP request latency' },
  { metric: 'nack_ratio', measure: 'ratio', max: 0.2, unit: '', what: 'policy refusals / decisions (tessera_nack_total / (ack + nack))' },
  { metric: 'tessera_webhook_fail_total', measure: 'total', max: 0, unit: '', what: 'webhook deliveries given up' },
  { metric: 'tessera_replay_blocked_total', measure: 'total', max: null, unit: '', what: 'replayed requests blocked (informative)' },
] as const;

/** Actions whose `journey` argument is bound to the session's journey. */
const JOURNEY_ACTIONS = new Set(['journey.skip', 'journey.change']);

const ajv = new Ajv({ allErrors: true, strict: false });
const str = (max = 200) => ({ type: 'string', minLength: 1, maxLength: max });
const obj = (properties: Record<string, unknown>, required: string[] = []): Tool['inputSchema'] => ({ type: 'object', properties, required, additionalProperties: false }) as Tool['inputSchema'];

const fail = (code: string, message: string): never => {
  throw new TesseraError(code as never, message);
};

function languageOf(session: SessionInfo): JourneyLanguage {
  const l = session.metadata['language'];
  return typeof l === 'string' && (JOURNEY_LANGUAGES as readonly string[]).includes(l) ? (l as JourneyLanguage) : 'en';
}

const metaString = (session: SessionInfo, key: string): string | undefined => {
  const v = session.metadata[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

/** Whether the session's owner is an operator (Ops reads any journey; a traveller only theirs). */
const isOperatorSession = (session: SessionInfo) => session.owner === 'operator' || session.owner.startsWith('operator:');

/** Sums every series of each metric family in Prometheus text; quantile families keep the worst series. */
export function readMetricFamilies(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const q = m[2] ? /quantile="([^"]+)"/.exec(m[2]) : null;
    const key = q ? `${m[1]}{quantile=${q[1]}}` : m[1]!;
    out.set(key, q ? Math.max(out.get(key) ?? 0, value) : (out.get(key) ?? 0) + value);
  }
  return out;
}

export function createTesseraServerFactory(deps: TesseraToolsDeps): InProcessServerFactory {
  const clock = deps.clock ?? Date.now;
  const runner = deps.plugins && deps.deviceKey ? pluginToolRunner(deps.plugins, deps.deviceKey) : undefined;

  /** The journey a session may read: the one asked for if in its scope, else its own. */
  const journeyFor = (session: SessionInfo, asked: unknown, language: JourneyLanguage): JourneyView => {
    const journeys = deps.journeys ?? fail('NOT_FOUND', 'This device has no journeys module.');
    const own = metaString(session, 'journey_id');
    const productSession = metaString(session, 'product_runtime_session_id');
    const id = typeof asked === 'string' && asked !== '' ? asked : (own ?? (productSession ? journeys.list({ session: productSession, state: 'started', limit: 1 })[0]?.journey_instance_id : undefined));
    if (!id) return fail('JOURNEY_NOT_FOUND', 'This conversation is not tied to a journey: start the journey on the Guide tab first.');
    const view = journeys.get(id, language);
    const inScope = id === own || (productSession !== undefined && view.product_runtime_session_id === productSession) || (own === undefined && productSession === undefined && isOperatorSession(session));
    if (!inScope) return fail('FORBIDDEN', `Journey ${id} is not the journey of this conversation.`);
    return view;
  };

  /**
   * A proposal's arguments bound to the session's scope (review 17 finding 1: a prompt injection must not aim a
   * proposal at someone else's journey or wallet while the card reads as the traveller's own):
   * - `journey` is this conversation's `metadata.journey_id`: filled in when absent for the journey actions, refused
   *   (FORBIDDEN) when it names another journey or the conversation has none;
   * - `session.buy` never takes `user` or `wallet` from the agent (FORBIDDEN): they are the user and wallet of the
   *   conversation's product runtime session, or its owner (and the device's default wallet) when it has none.
   * The card (./actions.ts `describe`) names what these arguments change.
   */
  const scopedArgs = (action: string, args: Record<string, unknown>, session: SessionInfo): Record<string, unknown> => {
    const own = metaString(session, 'journey_id');
    const out = { ...args };
    if (JOURNEY_ACTIONS.has(action) || out['journey'] !== undefined) {
      if (!own) return fail('FORBIDDEN', `${action}: this conversation is not tied to a journey, so it cannot propose a change to one.`);
      if (out['journey'] !== undefined && out['journey'] !== own) return fail('FORBIDDEN', `${action}: journey ${String(out['journey'])} is not the journey of this conversation (${own}); leave "journey" out to mean this conversation's.`);
      out['journey'] = own;
    }
    if (action === 'session.buy') {
      const given = ['user', 'wallet'].filter((f) => out[f] !== undefined);
      if (given.length > 0) return fail('FORBIDDEN', `session.buy: an agent does not choose the ${given.join(' or ')}: the purchase is for this conversation's traveller and paid from their wallet; leave ${given.map((f) => `"${f}"`).join(' and ')} out.`);
      const productSession = metaString(session, 'product_runtime_session_id');
      if (productSession) {
        const sessions = deps.sessions ?? fail('NOT_FOUND', 'This device has no product sessions module: a purchase cannot be proposed.');
        const bought = sessions.get(productSession);
        out['user'] = bought.user_id;
        out['wallet'] = bought.wallet_id;
      } else {
        out['user'] = session.owner;
      }
    }
    return out;
  };

  const runPlugin = async (name: string, args: unknown, ctx: ToolContext): Promise<unknown> => {
    if (!runner) return fail('PLUGIN_NOT_FOUND', `No plugin registry: ${name} cannot run.`);
    return runner.run(name, args, { idempotency_key: ctx.idempotencyKey, trace_id: deps.traceOf?.(ctx.session.id) ?? ctx.session.id, now: clock(), signal: ctx.signal });
  };

  const builtins: Record<(typeof TESSERA_TOOLS)[number], ToolDef> = {
    journey_next: {
      name: 'journey_next',
      description: "The traveller's next step: where to go, how to get there, whether their pass covers it, when it opens. `journey` defaults to this conversation's journey.",
      inputSchema: obj({ journey: str() }),
      async run(a, ctx) {
        const view = journeyFor(ctx.session, a['journey'], ctx.language);
        const step = deps.journeys!.next(view.journey_instance_id, { language: ctx.language });
        return { journey: view.journey_instance_id, text: step.text, node: step.node ? { id: step.node.id, title: step.node.title, place: step.node.place.name } : null, finished: step.finished, degraded: step.degraded };
      },
    },
    journey_place: {
      name: 'journey_place',
      description: 'A place of the journey (a place id of its stops) with today\'s opening hours.',
      inputSchema: obj({ journey: str(), place: str() }, ['place']),
      async run(a, ctx) {
        const view = journeyFor(ctx.session, a['journey'], ctx.language);
        const p = deps.journeys!.place(view.journey_instance_id, String(a['place']), { language: ctx.language });
        return { name: p.name, opens_at: p.opens_at, closes_at: p.closes_at, closed_today: p.closed_today, text: p.text };
      },
    },
    route_to: {
      name: 'route_to',
      description: 'How to get from where the traveller is to a place of the journey (walking and transit, on the offline city map).',
      inputSchema: obj({ journey: str(), place: str() }, ['place']),
      async run(a, ctx) {
        const view = journeyFor(ctx.session, a['journey'], ctx.language);
        const plan = deps.journeys!.routeTo(view.journey_instance_id, String(a['place']), { language: ctx.language });
        return { minutes: Math.round(plan.minutes), source: plan.source, text: plan.text };
      },
    },
    journey_ideas: {
      name: 'journey_ideas',
      description: "The journey guide's rule-based suggestions for now (a stop closing soon, rain, a café for free time); the traveller accepts them on their card.",
      inputSchema: obj({ journey: str() }),
      async run(a, ctx) {
        const view = journeyFor(ctx.session, a['journey'], ctx.language);
        return deps.journeys!.proposals(view.journey_instance_id, { language: ctx.language }).filter((p) => p.state === 'shown').map((p) => ({ id: p.id, kind: p.kind, text: p.text }));
      },
    },
    products_list: {
      name: 'products_list',
      description: 'Products this device sells (passes and tickets): id, title, price, what kind of entitlement, which venues.',
      inputSchema: obj({ city: str(100) }),
      async run(a, ctx) {
        const catalogue = deps.catalogue ?? fail('NOT_FOUND', 'This device has no catalogue.');
        const l = ctx.language;
        return catalogue.list(typeof a['city'] === 'string' ? { city: a['city'] } : {}).map((p) => ({
          id: p.id,
          ref: p.ref,
          title: p.profiles.ui.title[l] ?? p.profiles.ui.title['en'] ?? p.id,
          description: p.profiles.ui.description[l] ?? p.profiles.ui.description['en'] ?? '',
          price: p.profiles.pricing.price,
          currency: p.profiles.pricing.currency,
          kind: p.profiles.entitlement.kind,
          venues: p.profiles.entitlement.venues.map((v) => v.name),
          cities: p.cities,
        }));
      },
    },
    weather: {
      name: 'weather',
      description: 'The forecast for a day in a city (from the tool-weather plugin; answers from its cache when offline, with the age).',
      inputSchema: obj({ place: str(100), date: { type: 'string', maxLength: 20, description: 'today, tomorrow or YYYY-MM-DD' } }, ['place']),
      async run(a, ctx) {
        return runPlugin(WEATHER_PLUGIN, { city: a['place'], ...(typeof a['date'] === 'string' ? { day: a['date'] } : {}), language: ctx.language }, ctx);
      },
    },
    metrics_read: {
      name: 'metrics_read',
      description: "The device's service metrics against their objectives: latency p95 of runs and HTTP requests, policy refusal ratio, failed webhooks, blocked replays. Each row says whether it breaks its objective.",
      inputSchema: obj({}),
      async run() {
        const metrics = deps.metrics ?? fail('NOT_FOUND', 'This device has no metrics registry.');
        const m = readMetricFamilies(metrics.render());
        const ack = m.get('tessera_ack_total') ?? 0;
        const nack = m.get('tessera_nack_total') ?? 0;
        return METRIC_OBJECTIVES.map((o) => {
          const value =
            o.measure === 'p95' ? (m.get(`${o.metric}_quantiles{quantile=0.95}`) ?? null) : o.measure === 'ratio' ? (ack + nack > 0 ? nack / (ack + nack) : 0) : (m.get(o.metric) ?? 0);
          const v = value === null || Number.isNaN(value) ? null : value;
          return { metric: o.metric, what: o.what, measure: o.measure, value: v, objective: o.max === null ? null : `<= ${o.max}${o.unit}`, breached: o.max !== null && v !== null && v > o.max };
        });
      },
    },
    entitlements_list: {
      name: 'entitlements_list',
      description: "The traveller's passes in this conversation's product session: title, state, uses left, validity, venues (never the pass code).",
      inputSchema: obj({}),
      async run(_a, ctx) {
        const entitlements = deps.entitlements ?? fail('NOT_FOUND', 'This device has no entitlements module.');
        const session = metaString(ctx.session, 'product_runtime_session_id') ?? fail('NOT_FOUND', 'This conversation is not tied to a purchase: there are no passes to show.');
        return entitlements.list({ session, limit: 50 }).map((e) => ({ serial: e.serial, title: e.title ?? e.product_ref, kind: e.kind, state: e.state, rights_left: e.rights_left ?? null, valid_until: e.valid_until, venues: e.venues }));
      },
    },
    propose: {
      name: 'propose',
      description:
        "Propose a change for the runtime to check and the traveller or an operator to approve. Nothing happens until it is approved: answer that it was proposed, never that it was done. A journey change is always to this conversation's journey (leave `journey` out); a purchase is always for this conversation's traveller and their wallet (give only `product`).",
      inputSchema: obj({ action: str(64), args: { type: 'object' }, reason: str(500) }, ['action', 'args', 'reason']),
      async run(a, ctx) {
        const s = ctx.session;
        const product = metaString(s, 'product_runtime_session_id');
        const journey = metaString(s, 'journey_id');
        const trace = deps.traceOf?.(s.id);
        const view = await deps.proposals.propose({
          action: String(a['action']),
          args: scopedArgs(String(a['action']), a['args'] as Record<string, unknown>, s),
          reason: String(a['reason']),
          agent: { session: s.id, type: s.agent_type },
          owner: s.owner,
          ...(product ? { product_runtime_session_id: product } : {}),
          ...(journey ? { journey_id: journey } : {}),
          ...(trace ? { trace_id: trace } : {}),
        });
        deps.onProposal?.(s.id, view);
        const note =
          view.state === 'refused'
            ? `Refused by the runtime's policy: ${view.policies.filter((p) => p.verdict === 'NACK').map((p) => p.reason).join('; ') || 'not allowed'}. Tell the user it cannot be done this way.`
            : view.state === 'awaiting_approval'
              ? `Proposed; it waits for the ${view.approval.need}'s approval. Nothing has changed yet.`
              : `Proposal state: ${view.state}.`;
        return { id: view.id, state: view.state, approval: view.approval.need, text: view.text, note };
      },
    },
  };

  const validators = new Map<string, ValidateFunction>();
  const validatorOf = (def: ToolDef) => {
    let v = validators.get(def.name);
    if (!v) {
      v = ajv.compile(def.inputSchema);
      validators.set(def.name, v);
    }
    return v;
  };

  return (session, options) => {
    const wanted = Array.isArray(options['tools']) ? (options['tools'] as unknown[]).filter((t): t is string => typeof t === 'string') : [...TESSERA_TOOLS];
    const proposes = Array.isArray(options['proposes']) ? (options['proposes'] as unknown[]).filter((t): t is string => typeof t === 'string') : [];
    const tools = new Map<string, ToolDef>();
    for (const name of wanted) {
      const def = (builtins as Record<string, ToolDef>)[name];
      if (!def) continue;
      tools.set(name, name === 'propose' && proposes.length > 0 ? { ...def, description: `${def.description} Actions this agent may propose: ${proposes.join(', ')}.` } : def);
    }
    // Signed tool plugins the profile names, as they are loaded now: one MCP tool each, named after the plugin.
    const pluginNames = Array.isArray(options['plugins']) ? (options['plugins'] as unknown[]).filter((t): t is string => typeof t === 'string') : [];
    for (const name of pluginNames) {
      const plugin = deps.plugins?.find(name);
      if (!plugin || plugin.manifest.kind !== 'tool') continue;
      tools.set(plugin.manifest.name, {
        name: plugin.manifest.name,
        description: plugin.manifest.description ?? `The ${plugin.manifest.name} tool plugin.`,
        inputSchema: (plugin.manifest.input_schema ?? { type: 'object' }) as Tool['inputSchema'],
        run: (args, ctx) => runPlugin(plugin.manifest.name, args, ctx),
      });
    }

    const server = new Server({ name: 'tessera', version: VERSION }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [...tools.values()].map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })),
    }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
      const def = tools.get(request.params.name);
      const args = (request.params.arguments ?? {}) as Record<string, unknown>;
      const meta = request.params._meta as Record<string, unknown> | undefined;
      const key = typeof meta?.[IDEMPOTENCY_META] === 'string' ? (meta[IDEMPOTENCY_META] as string) : `${session.id}:${String(extra.requestId)}`;
      try {
        if (!def) return fail('NOT_FOUND', `No tool "${request.params.name}" for this agent (it has ${[...tools.keys()].join(', ') || 'none'}).`);
        const validate = validatorOf(def);
        if (!validate(args)) {
          const problems = (validate.errors ?? []).map((e) => `${e.instancePath || 'arguments'} ${e.message ?? 'is invalid'}`).join('; ');
          return fail('VALIDATION_FAILED', `${def.name}: ${problems}`);
        }
        const result = await def.run(args, { session, language: languageOf(session), idempotencyKey: key, signal: extra.signal });
        return { content: [{ type: 'text', text: typeof result === 'string' ? result : JSON.stringify(result) }] };
      } catch (err) {
        const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'INTERNAL';
        return { isError: true, content: [{ type: 'text', text: `${code}: ${(err as Error).message}` }] };
      }
    });
    return server;
  };
}
