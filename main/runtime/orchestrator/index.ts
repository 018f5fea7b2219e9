/**
 * Tessera's Agent Orchestrator (seed 000 §5.3, §6.4, §7.3, §8; issue 17 point 6): Tessera's agents on the generic
 * agent runtime (../agents), composed from this folder's parts (./types.ts lists them).
 *
 * - Routing by policy: a caller opens an agent only when one of its roles is in the profile's `meta.roles`
 *   (FORBIDDEN otherwise); a caller without the operator role sees and talks only to sessions it owns (owner = the
 *   caller's principal); only an operator resumes a paused session with more budget.
 * - Rate limits (AGENT_RATE_LIMITED, with the seconds to wait): at most `messagesPerMinute` messages per caller
 *   principal in any 60 s, and for a caller without the operator role `opensPerMinute` opened sessions; a refused
 *   call (not the caller's session, a turn already running, a paused or closed session…) spends no slot. A caller
 *   without the operator role holds at most `maxSessionsInUse` sessions in use (not closed and active within the
 *   idle window, i.e. loaded): more is refused until it closes one or one goes idle. Operators are neither limited
 *   on opens nor counted against travellers' sessions.
 * - Scope (review 17 finding 3): `metadata.journey_id` and `metadata.product_runtime_session_id` are ids
 *   ({@link METADATA_ID}, VALIDATION_FAILED otherwise); for a caller without the operator role they must name a
 *   journey and a product session this device holds, the journey of that product session (FORBIDDEN otherwise).
 *   The session's variables (`JOURNEY_ID` from the metadata, the request's `variables`) fill only the profile's
 *   system prompt (./profiles.ts).
 * - One turn at a time: `say` to a session whose turn is running is refused (AGENT_SESSION_BUSY) before it touches
 *   the running turn's trace or proposals.
 * - Errors of the agent runtime (AgentError) leave as TesseraError with the same code.
 * - Audit trail: every event of every session is journaled through the bus under `agent.*` (the topics of
 *   ISSUE17-PLAN "Bus topics"), each with `session`, `agent_type` and the turn's trace id as the journal trace.
 *   `message.delta` and `usage` are not journaled, and nothing here journals a secret (the model's API key is
 *   resolved inside the runtime and never appears in an event).
 * - `say` returns the turn's result and the proposals its `propose` calls made.
 * - `converse` (issue 17 point 8): the I/O router's words no intent understood, from a traveller with a journey in
 *   progress, go to the model-backed journey guide of that journey, as the kiosk's traveller.
 * - Start: proposals a crash left approved are executed first (exactly once, by their cid), then sessions a crash
 *   left mid-turn are resumed. Shutdown: the agent runtime stops taking turns, waits for running ones and syncs.
 */
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import type { ErrorCode } from '../../common/errors.js';
import { reveal } from '../../common/expr.js';
import type { Role } from '../../common/roles.js';
import { isAgentError } from '../agents/types.js';
import type { AgentEvent, AgentRuntime, AgentRuntimeConfig, InProcessServerFactory, ModelClient, SessionInfo, ToolsFactory } from '../agents/types.js';
import type { Bus } from '../bus/index.js';
import { newTraceId } from '../journal/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import { builtinAgentsDir, createProfileLoader, deviceModelFromEnv, TESSERA_SERVER } from './profiles.js';
import type { DeviceModel, ProfileInfo, TesseraProfileLoader } from './profiles.js';
import { RESPONDERS } from './responders.js';
import { createAgentStore } from './store.js';
import { createTesseraServerFactory } from './tools.js';
import type { TesseraToolsDeps } from './tools.js';
import type { AgentSummary, Caller, Orchestrator, ProposalView, Proposals } from './types.js';

export type { AgentSummary, Caller, Orchestrator, ProposalView, Proposals } from './types.js';

/** Messages one caller may send per minute (all its sessions together), unless configured. */
export const DEFAULT_MESSAGES_PER_MINUTE = 30;
/** Sessions one caller without the operator role may open per minute, unless configured. */
export const DEFAULT_OPENS_PER_MINUTE = 10;
/**
 * Sessions in use (not closed, active within the idle window, so loaded in memory) a caller without the operator
 * role may hold at once, unless configured: travellers cannot take the runtime's room for loaded sessions from
 * operators.
 */
export const DEFAULT_MAX_SESSIONS_IN_USE = 50;
/** `metadata.journey_id` and `metadata.product_runtime_session_id`: one id, nothing a template or shell would read. */
export const METADATA_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
/** After a model is found down, how long before it is tried again, unless configured. */
export const DEFAULT_DEGRADED_RETRY_MS = 30_000;
/** The agent a traveller's spoken and typed words reach when no intent matches (issue 17 point 8). */
export const GUIDE_AGENT = 'journey-guide';
/** The principal of a kiosk's traveller: the owner of the guide sessions the UI opens in kiosk mode. */
const TRAVELLER: Caller = { principal: 'traveller', roles: ['traveller'] };
/** Idle sessions are unloaded after this long (`TESSERA_AGENT_IDLE_MS`), unless configured. */
export const DEFAULT_AGENT_IDLE_MS = 15 * 60_000;

export interface OrchestratorDeps {
  store: Store;
  /** The runtime's data folder: `<data>/agents/` holds session files and the operator's profiles. */
  dataDir: string;
  bus: Bus;
  logger: Logger;
  /** The secret store: the model's API key (`agents.model.api_key`) and a profile's `meta.sandbox_env`. */
  secrets: { has(name: string): boolean; get(name: string): unknown };
  /** The proposal flow (./proposals.ts): the `propose` tool records through it. */
  proposals: Proposals;
  /** Builds the generic agent runtime (../agents/runtime.ts `createAgentRuntime`). */
  createAgentRuntime: (config: AgentRuntimeConfig) => AgentRuntime;
  /** What the `tessera` tools read (journeys, catalogue, entitlements, plugins, metrics). */
  tools: Omit<TesseraToolsDeps, 'proposals' | 'traceOf' | 'onProposal' | 'clock'>;
  /** The profiles; default {@link createDeviceProfileLoader} (the proposal policy reads the same loader's `meta.proposes`). */
  profiles?: TesseraProfileLoader;
  /** Default: the core's OpenAI-compatible client. */
  model?: ModelClient;
  /** The MCP tools (../agents/mcp.ts `createMcpTools`) given the in-process servers (`tessera`); default: the core's. */
  mcpTools?: (inProcessServers: Record<string, InProcessServerFactory>) => ToolsFactory;
  /** Default {@link DEFAULT_AGENT_IDLE_MS}. */
  idleMs?: number;
  /** Default {@link DEFAULT_MESSAGES_PER_MINUTE}. */
  messagesPerMinute?: number;
  /** Default {@link DEFAULT_OPENS_PER_MINUTE}. */
  opensPerMinute?: number;
  /** Default {@link DEFAULT_MAX_SESSIONS_IN_USE}. */
  maxSessionsInUse?: number;
  /** After the model is found down, how long before it is tried again (default {@link DEFAULT_DEGRADED_RETRY_MS}). */
  degradedRetryMs?: number;
  /**
   * The traveller's journey in progress (../journeys `Journeys.active`; on a kiosk the user is the dialogue
   * session): {@link TesseraOrchestrator.converse} talks about it. Absent: converse answers null.
   */
  activeJourney?: (user: string) => { journey_instance_id: string; product_runtime_session_id: string } | null;
  clock?: () => number;
}

/** Where an AgentError of the runtime leaves: a TesseraError with the same code (the codes are listed in both). */
export function toTesseraError(err: unknown): unknown {
  if (!isAgentError(err)) return err;
  return new TesseraError(err.code as ErrorCode, err.message, { ...(err.options.details ? { details: err.options.details } : {}), retryable: err.retryable, cause: err });
}

async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toTesseraError(err);
  }
}

const forbidden = (message: string) => new TesseraError('FORBIDDEN', message);

/** Refused before a turn started: such a message spent nothing, so it gives its rate-limit slot back. */
const REFUSALS = new Set(['AGENT_SESSION_BUSY', 'AGENT_SESSION_PAUSED', 'AGENT_SESSION_CLOSED', 'AGENT_SESSION_NOT_FOUND', 'AGENT_DISABLED', 'AGENT_INPUT_INVALID', 'AGENT_RATE_LIMITED', 'AGENT_RUNTIME_STOPPING']);

/**
 * A per-principal sliding-window limit of `perMinute` calls: a call spends a slot (AGENT_RATE_LIMITED with the
 * seconds until one frees when none is left) and gets a function that gives it back (the call was refused later).
 */
function limiter(perMinute: number, what: string, clock: () => number): (caller: Caller) => () => void {
  const spent = new Map<string, number[]>();
  return (caller) => {
    const now = clock();
    const recent = (spent.get(caller.principal) ?? []).filter((t) => now - t < 60_000);
    if (recent.length >= perMinute) {
      spent.set(caller.principal, recent);
      const wait = Math.max(1, Math.ceil((60_000 - (now - recent[0]!)) / 1000));
      throw new TesseraError('AGENT_RATE_LIMITED', `At most ${perMinute} ${what} a minute to agents; try again in ${wait} s.`, { details: { limit: perMinute, window_ms: 60_000, retry_after_seconds: wait }, retryable: true });
    }
    recent.push(now);
    spent.set(caller.principal, recent);
    return () => {
      const list = spent.get(caller.principal);
      const i = list ? list.lastIndexOf(now) : -1;
      if (i >= 0) list!.splice(i, 1);
    };
  };
}
const isOperator = (caller: Caller) => caller.roles.includes('operator');
const MAX_AUDIT_TEXT = 4000;
const clip = (s: unknown) => (typeof s === 'string' && s.length > MAX_AUDIT_TEXT ? `${s.slice(0, MAX_AUDIT_TEXT)}…` : s);

/**
 * The device's profiles: resources/agents then `<data>/agents/profiles` (or `dirs`), the device model from
 * `TESSERA_AGENT_MODEL_URL` / `TESSERA_AGENT_MODEL` (read at each load) unless `deviceModel` says otherwise, and
 * this module's responders as the fallbacks a profile may name.
 */
export function createDeviceProfileLoader(options: { dataDir: string; dirs?: readonly string[]; deviceModel?: () => DeviceModel | null }): TesseraProfileLoader {
  return createProfileLoader({
    dirs: options.dirs ?? [builtinAgentsDir(), join(options.dataDir, 'agents', 'profiles')],
    deviceModel: options.deviceModel ?? (() => deviceModelFromEnv()),
    responders: Object.keys(RESPONDERS),
  });
}

/** The guide agent's answer to a traveller's words ({@link TesseraOrchestrator.converse}). */
export interface ConverseResult {
  text: string;
  agent_session: string;
  turn: string;
  trace_id: string;
}

export interface TesseraOrchestrator extends Orchestrator {
  /**
   * The Journey Guide talks through the guide agent (issue 17 point 8): what a traveller of `dialogueSession` said
   * (typed or spoken) that no intent understood, said to the `journey-guide` agent session of their journey in
   * progress as the kiosk's traveller — the session the Guide tab shows (found by `metadata.journey_id` among the
   * traveller's sessions), opened with `{journey_id, product_runtime_session_id, dialogue_session, language}` when
   * there is none. Answers the model's text, or null when there is nothing to add: no journey in progress, the guide
   * agent is not there or switched off, it has no model or its model was found down within the retry interval (a
   * rule-based guide answers nothing the intents do not), its session is paused, or the turn failed, paused or was
   * answered by the rules after all (the model went down during it). Throws what `say` throws (a session busy with
   * a turn the Guide tab started, the rate limit).
   */
  converse(dialogueSession: string, text: string, options?: { language?: string }): Promise<ConverseResult | null>;
  /** The profile loader (for Ops: which files did not validate). */
  readonly profiles: TesseraProfileLoader;
  /** The agent runtime under the orchestrator (tests, the host's WebSocket rooms). */
  readonly runtime: AgentRuntime;
}

export function createOrchestrator(deps: OrchestratorDeps): TesseraOrchestrator {
  const { bus, logger, proposals } = deps;
  const clock = deps.clock ?? Date.now;
  const secret = (name: string): string | undefined => {
    try {
      if (!deps.secrets.has(name)) return undefined;
      const value = reveal(deps.secrets.get(name));
      return typeof value === 'string' ? value : undefined;
    } catch (err) {
      logger.warn('a secret an agent needs cannot be read', { name, code: (err as { code?: unknown }).code });
      return undefined;
    }
  };
  const adapters = createAgentStore({ store: deps.store, dataDir: deps.dataDir, secret });
  const profiles = deps.profiles ?? createDeviceProfileLoader({ dataDir: deps.dataDir });

  /** The trace of each session's turn in progress: set before the turn starts, so `propose` and the audit join it. */
  const traces = new Map<string, string>();
  /** Proposals made during each session's turn in progress. */
  const made = new Map<string, Map<string, ProposalView>>();
  /** agent_type of every session the orchestrator has seen (events name only the session). */
  const types = new Map<string, string>();
  /** Agent types whose model was last seen down (session.degraded events). */
  const degradedTypes = new Map<string, boolean>();
  /** When each agent type's model was last seen down (not tried again by `converse` until the retry interval passed). */
  const modelDownAt = new Map<string, number>();
  const degradedRetryMs = deps.degradedRetryMs ?? DEFAULT_DEGRADED_RETRY_MS;
  const modelDown = (type: string) => {
    const at = modelDownAt.get(type);
    return at !== undefined && clock() - at < degradedRetryMs;
  };

  const tessera = createTesseraServerFactory({
    ...deps.tools,
    proposals,
    clock,
    traceOf: (session) => traces.get(session),
    onProposal: (session, view) => made.get(session)?.set(view.id, view),
  });

  const runtime = deps.createAgentRuntime({
    persistence: adapters.persistence,
    storage: adapters.storage,
    profiles,
    sandbox: adapters.sandbox,
    ...(deps.model ? { model: deps.model } : {}),
    ...(deps.mcpTools ? { tools: deps.mcpTools({ [TESSERA_SERVER]: tessera }) } : {}),
    inProcessServers: { [TESSERA_SERVER]: tessera },
    responders: RESPONDERS,
    secret,
    clock,
    idleTimeoutMs: deps.idleMs ?? DEFAULT_AGENT_IDLE_MS,
    degradedRetryMs,
    logger: logger.child({ module: 'agents' }),
  });

  // ---- the audit trail ----------------------------------------------------------------------------------------
  const journal = (topic: string, event: AgentEvent, data: Record<string, unknown>) => {
    const trace = event.trace_id ?? traces.get(event.session);
    try {
      bus.publish(topic, { session: event.session, agent_type: types.get(event.session) ?? null, seq: event.seq, ...data }, trace ? { trace_id: trace } : {});
    } catch (err) {
      logger.warn('could not journal an agent event', { topic, session: event.session, error: err });
    }
  };
  const infoOf = (data: Record<string, unknown>): Partial<SessionInfo> => ((data['info'] ?? data['session'] ?? data) as Partial<SessionInfo>) ?? {};
  /** Recovery of interrupted sessions, started by `start()` and awaited by `shutdown()`. */
  let recovering: Promise<void> = Promise.resolve();
  const audit = runtime.onEvent((event) => {
    const d = event.data ?? {};
    switch (event.type) {
      case 'session.created':
      case 'session.resumed':
      case 'session.closed': {
        const info = infoOf(d);
        if (typeof info.agent_type === 'string') types.set(event.session, info.agent_type);
        journal(`agent.${event.type}`, event, { owner: info.owner ?? null, state: info.state ?? null });
        return;
      }
      case 'session.state':
        if (d['state'] === 'paused') journal('agent.session.paused', event, { pause: d['pause'] ?? null });
        return;
      case 'session.degraded': {
        const type = types.get(event.session);
        if (type) degradedTypes.set(type, d['degraded'] === true);
        if (type && d['degraded'] === true) modelDownAt.set(type, clock());
        else if (type) modelDownAt.delete(type);
        journal('agent.degraded', event, { degraded: d['degraded'] === true, reason: clip(d['reason'] ?? null) });
        return;
      }
      case 'turn.started':
        journal('agent.task.created', event, { turn: d['turn'] ?? null });
        return;
      case 'turn.completed':
        journal('agent.task.completed', event, { turn: d['turn'] ?? null, ...(d['outcome'] !== undefined ? { outcome: d['outcome'] } : {}) });
        return;
      case 'turn.failed':
        journal('agent.task.failed', event, { turn: d['turn'] ?? null, error: d['error'] ?? null });
        return;
      case 'message.user':
      case 'message.assistant': {
        const entry = (d['entry'] ?? {}) as Record<string, unknown>;
        journal('agent.message', event, { role: event.type === 'message.user' ? 'user' : 'assistant', turn: entry['turn'] ?? null, text: clip(entry['text']), ...(entry['source'] ? { source: entry['source'] } : {}), ...(entry['by'] ? { by: entry['by'] } : {}) });
        return;
      }
      case 'tool.call': {
        const entry = (d['entry'] ?? {}) as { turn?: string; call?: { id: string; name: string; arguments: unknown } };
        journal('agent.tool.called', event, { turn: entry.turn ?? null, call: entry.call?.id ?? null, tool: entry.call?.name ?? null, arguments: clip(JSON.stringify(entry.call?.arguments ?? {})) });
        return;
      }
      case 'tool.result': {
        const entry = (d['entry'] ?? {}) as { turn?: string; call_id?: string; ok?: boolean; content?: string; error?: unknown };
        journal('agent.tool.result', event, { turn: entry.turn ?? null, call: entry.call_id ?? null, ok: entry.ok ?? null, content: clip(entry.content ?? ''), ...(entry.error ? { error: entry.error } : {}) });
        return;
      }
      case 'error':
        logger.warn('agent runtime error', { session: event.session, code: d['code'], message: d['message'], adapter: d['adapter'] });
        return;
      default:
        // message.delta (streamed text: never journaled), usage, session.unloaded: room events only.
        return;
    }
  });

  // ---- policy ---------------------------------------------------------------------------------------------------
  const rolesOf = (type: string): Role[] => {
    try {
      return profiles.info(type).roles;
    } catch {
      return [];
    }
  };
  const mayUseType = (caller: Caller, type: string) => rolesOf(type).some((r) => caller.roles.includes(r));
  /** The session, if the caller may see it: an operator any; others their own, of an agent their roles may use. */
  const visible = async (caller: Caller, id: string): Promise<SessionInfo> => {
    const info = await runtime.get(id);
    types.set(info.id, info.agent_type);
    if (isOperator(caller)) return info;
    if (info.owner !== caller.principal || !mayUseType(caller, info.agent_type)) {
      // Not found rather than forbidden would hide that the id exists; ids are random, so say what the rule is.
      throw forbidden(`Agent session ${id} is not yours.`);
    }
    return info;
  };

  const takeMessage = limiter(deps.messagesPerMinute ?? DEFAULT_MESSAGES_PER_MINUTE, 'messages', clock);
  const takeOpen = limiter(deps.opensPerMinute ?? DEFAULT_OPENS_PER_MINUTE, 'new sessions', clock);
  const maxInUse = deps.maxSessionsInUse ?? DEFAULT_MAX_SESSIONS_IN_USE;
  const idleMs = deps.idleMs ?? DEFAULT_AGENT_IDLE_MS;
  /** Sessions with a `say` in progress (added with no await after the check, so two calls cannot both pass it). */
  const talking = new Set<string>();

  /** The metadata's ids checked; for a non-operator, that they exist and belong together. */
  const checkScope = (caller: Caller, metadata: Record<string, unknown>) => {
    const ids: Partial<Record<'journey_id' | 'product_runtime_session_id', string>> = {};
    for (const field of ['journey_id', 'product_runtime_session_id'] as const) {
      const v = metadata[field];
      if (v === undefined) continue;
      if (typeof v !== 'string' || !METADATA_ID.test(v)) throw new TesseraError('VALIDATION_FAILED', `metadata.${field} must be an id (1–128 letters, digits or . _ : -, starting with a letter or digit).`, { details: { field: `metadata.${field}` } });
      ids[field] = v;
    }
    if (isOperator(caller)) return;
    const { journey_id: journey, product_runtime_session_id: product } = ids;
    let journeyOf: string | undefined;
    if (journey !== undefined) {
      try {
        journeyOf = deps.tools.journeys!.get(journey).product_runtime_session_id;
      } catch {
        throw forbidden(`metadata.journey_id: ${journey} is not a journey on this device.`);
      }
    }
    if (product !== undefined) {
      try {
        deps.tools.sessions!.get(product);
      } catch {
        throw forbidden(`metadata.product_runtime_session_id: ${product} is not a purchase on this device.`);
      }
      if (journeyOf !== undefined && journeyOf !== product) throw forbidden(`metadata.journey_id: ${journey} is not the journey of ${product}.`);
    }
  };

  /** A non-operator's sessions in use (see the file's TSDoc); at the cap: AGENT_RATE_LIMITED saying to close one. */
  const checkInUse = async (caller: Caller) => {
    if (isOperator(caller)) return;
    const now = clock();
    const held = (await runtime.list({ owner: caller.principal })).filter((x) => x.state !== 'closed' && (x.state !== 'idle' || now - Date.parse(x.last_active_at) < idleMs));
    if (held.length >= maxInUse) {
      throw new TesseraError('AGENT_RATE_LIMITED', `At most ${maxInUse} agent sessions in use at once; close one (DELETE /api/agents/sessions/{id}, tessera agent close) or wait until one has been idle for ${Math.round(idleMs / 60_000)} min.`, {
        details: { limit: maxInUse, in_use: held.length },
        retryable: true,
      });
    }
  };

  /** See {@link TesseraOrchestrator.converse}. */
  async function converse(dialogueSession: string, text: string, options: { language?: string } = {}): Promise<ConverseResult | null> {
    const journey = deps.activeJourney?.(dialogueSession) ?? null;
    if (!journey) return null;
    let guide: ProfileInfo;
    try {
      guide = profiles.info(GUIDE_AGENT);
    } catch {
      return null; // no guide agent on this device, or its profile is broken (Ops lists why)
    }
    if (!guide.model || runtime.disabled().includes(GUIDE_AGENT) || modelDown(GUIDE_AGENT)) return null;
    const mine = await api.sessions(TRAVELLER, { agent_type: GUIDE_AGENT, limit: 200 });
    const found = mine.filter((s) => s.state !== 'closed' && s.metadata['journey_id'] === journey.journey_instance_id).sort((a, b) => b.created_at.localeCompare(a.created_at))[0];
    // A paused session asks an operator for more budget: its traveller is not understood meanwhile, as without it.
    if (found?.state === 'paused') return null;
    const session =
      found ??
      (await api.open(TRAVELLER, {
        agent_type: GUIDE_AGENT,
        metadata: { journey_id: journey.journey_instance_id, product_runtime_session_id: journey.product_runtime_session_id, dialogue_session: dialogueSession, ...(options.language ? { language: options.language } : {}) },
      }));
    const result = await api.say(TRAVELLER, session.id, text);
    if (result.source === 'fallback') {
      // The model went down during the turn: the rules answered (kept in the transcript), the traveller is not understood.
      modelDownAt.set(GUIDE_AGENT, clock());
      return null;
    }
    if (result.outcome !== 'completed' || result.text.trim() === '') return null;
    return { text: result.text, agent_session: session.id, turn: result.turn, trace_id: result.trace_id };
  }

  const api: TesseraOrchestrator = {
    proposals,
    profiles,
    runtime,
    converse,

    agents: (caller) =>
      mapped(async () => {
        const off = new Set(runtime.disabled());
        return profiles
          .infos()
          .filter((p) => p.roles.some((r) => caller.roles.includes(r)))
          .map(
            (p): AgentSummary => ({
              type: p.type,
              title: p.title,
              ...(p.description !== undefined ? { description: p.description } : {}),
              roles: p.roles,
              model: p.model,
              degraded: !p.model || degradedTypes.get(p.type) === true,
              enabled: !off.has(p.type) && (p.model || p.degraded === 'fallback'),
            }),
          );
      }),

    open: (caller, request) =>
      mapped(async () => {
        const type = request.agent_type;
        const info = profiles.info(type);
        if (!info.roles.some((r) => caller.roles.includes(r))) throw forbidden(`The ${info.title} agent is for ${info.roles.join(' and ')}; this caller is ${caller.roles.join(', ') || 'nobody'}.`);
        const metadata = request.metadata ?? {};
        if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new TesseraError('AGENT_INPUT_INVALID', 'metadata must be a JSON object.');
        checkScope(caller, metadata);
        const variables = { ...(request.variables ?? {}) };
        if (typeof metadata['journey_id'] === 'string' && variables['JOURNEY_ID'] === undefined) variables['JOURNEY_ID'] = metadata['journey_id'];
        await checkInUse(caller);
        // Operators hold the device's token already: they are neither rate-limited on opens nor capped (benchmarks,
        // Ops tooling); what is limited is what any traveller at the kiosk can do.
        const giveBack = isOperator(caller) ? () => undefined : takeOpen(caller);
        let session: SessionInfo;
        try {
          session = await runtime.create({ agent_type: type, owner: caller.principal, metadata, variables });
        } catch (err) {
          // Refused (switched off, a broken profile, the runtime stopping): no session, so no slot spent.
          giveBack();
          // A non-critical agent switched off for want of a model has no session to carry `session.degraded`: the
          // orchestrator journals `agent.degraded` for its type itself, once per change.
          if (isAgentError(err) && err.code === 'AGENT_DISABLED' && degradedTypes.get(type) !== true) {
            degradedTypes.set(type, true);
            try {
              bus.publish('agent.degraded', { session: null, agent_type: type, degraded: true, reason: err.message });
            } catch (journalErr) {
              logger.warn('could not journal agent.degraded', { agent_type: type, error: journalErr });
            }
          }
          throw err;
        }
        types.set(session.id, session.agent_type);
        return session;
      }),

    say: (caller, id, text, options = {}) =>
      mapped(async () => {
        const info = await visible(caller, id);
        if (!mayUseType(caller, info.agent_type)) throw forbidden(`This caller may not talk to the ${info.agent_type} agent.`);
        // Refused before anything of the running turn (its trace, its proposals) or of the rate limit is touched.
        // (A turn the runtime runs on its own — recovery, resume — is refused by runtime.message, and the slot given back.)
        if (talking.has(id)) throw new TesseraError('AGENT_SESSION_BUSY', `Agent session ${id} is in the middle of a turn; send this when it has answered.`, { retryable: true });
        const giveBack = takeMessage(caller);
        talking.add(id);
        const trace = options.trace_id ?? newTraceId(clock());
        traces.set(id, trace);
        const collected = new Map<string, ProposalView>();
        made.set(id, collected);
        try {
          const result = await runtime.message(id, text, { by: caller.principal, trace_id: trace });
          return { ...result, proposals: [...collected.values()] };
        } catch (err) {
          if (isAgentError(err) && REFUSALS.has(err.code)) giveBack();
          throw err;
        } finally {
          talking.delete(id);
          if (made.get(id) === collected) made.delete(id);
          if (traces.get(id) === trace) traces.delete(id);
        }
      }),

    sessions: (caller, filter = {}) =>
      mapped(async () => {
        const list = await runtime.list({
          ...(filter.agent_type ? { agent_type: filter.agent_type } : {}),
          ...(filter.state ? { state: filter.state as SessionInfo['state'] } : {}),
          ...(filter.limit ? { limit: filter.limit } : {}),
          ...(isOperator(caller) ? {} : { owner: caller.principal }),
        });
        if (isOperator(caller)) return list;
        // One read of the profiles for the whole list (they are files, read afresh on every call).
        const allowed = new Set(profiles.infos().filter((p) => p.roles.some((r) => caller.roles.includes(r))).map((p) => p.type));
        return list.filter((s) => s.owner === caller.principal && allowed.has(s.agent_type));
      }),

    session: (caller, id) => mapped(() => visible(caller, id)),

    transcript: (caller, id, options = {}) =>
      mapped(async () => {
        await visible(caller, id);
        return runtime.transcript(id, options);
      }),

    budgets: (caller, id) =>
      mapped(async () => {
        await visible(caller, id);
        return runtime.budgets(id);
      }),

    resume: (caller, id, extend) =>
      mapped(async () => {
        if (!isOperator(caller)) throw forbidden('Only an operator may resume an agent session with more budget.');
        await visible(caller, id);
        return runtime.resume(id, { ...(extend ? { extend } : {}), by: caller.principal });
      }),

    close: (caller, id) =>
      mapped(async () => {
        await visible(caller, id);
        return runtime.close(id, { by: caller.principal });
      }),

    subscribe: (caller, id, after, listener) =>
      mapped(async () => {
        await visible(caller, id);
        return runtime.subscribe(id, after, listener);
      }),

    start: () =>
      mapped(async () => {
        // Proposals first: an approved proposal a crash interrupted runs (once) before any agent talks again.
        await proposals.recover();
        // Sessions a crash left mid-turn are finished in the background: a model that is down (up to its timeout)
        // must not hold up the device's start. A message to such a session waits for its turn to finish first.
        recovering = runtime.recover().then(
          ({ resumed, failed }) => {
            if (resumed.length > 0 || failed.length > 0) logger.info('agent sessions recovered', { resumed: resumed.length, failed });
          },
          (err: unknown) => logger.warn('agent session recovery failed', { error: err instanceof Error ? err.message : String(err) }),
        );
      }),

    async shutdown() {
      // 1. The runtime stops taking turns, lets running ones finish (with a deadline), syncs every record and closes tools.
      try {
        await runtime.shutdown();
        await recovering;
      } finally {
        // 2. Only then stop journaling its events: the last turns' events are still in the audit trail.
        audit.dispose();
      }
    },
  };
  return api;
}
