/**
 * Agent routes (issue 17; seed 003 FR5, seed 000 §5.3, §8): Tessera's agents over HTTP — list the agents the caller
 * may use, open a session, say something and get the turn's answer (with the proposals it made), read the transcript
 * and budgets, resume a paused session with more budget (operator), close it; list, approve and reject proposals.
 * The WebSocket `/ws/agents/:id` is the session's room: its events, numbered, replayed after a reconnect.
 *
 * Decisions are the orchestrator's (`runtime.agents`, main/runtime/orchestrator): these routes validate input, say
 * who the caller is, and map its errors (TesseraError codes of the same names as the agent runtime's, README
 * "Agents"). Staff reach none of them; `resume` is the operator's.
 *
 * Who the caller is ({@link callerOf}): the role the request acts as — `operator` for any credential holding it (the
 * device token, an operator unlock), else `traveller`, else `staff`. Sessions belong to that principal: a traveller
 * reaches the sessions travellers opened, not an operator's.
 *
 * `/ws/agents/:id?after=N` protocol (JSON text frames):
 *   server → `{"type":"hello","v":1,"session":ID,"gap":false}` once subscribed; `gap: true` when events after N are no
 *            longer buffered (reload the transcript, then follow the live events)
 *   server → `{"type":"event","event":AgentEvent}` for each event with seq > N, in order, each seq once
 *   client → `{"type":"ping"}` → `{"type":"pong"}`
 *   server → `{"type":"error","error":{"code","message"}}` for a bad message (the connection stays open); when the
 *            caller may not watch the session (or it does not exist) the error frame is followed by close 1008
 * Closing the socket ends the subscription only: the session and its turn go on. A client that stops reading (over
 * 4 MiB buffered) is closed with 1013.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { TesseraError, isErrorCode, isTesseraError, toErrorData } from '../../common/errors.js';
import type { Role } from '../../common/roles.js';
import { TRACE_ID_PATTERN } from '../../common/api.js';
import { AGENT_EVENT_VERSION, isAgentError } from '../../runtime/agents/types.js';
import type { AgentEvent, Budgets, SessionState } from '../../runtime/agents/types.js';
import type { Caller, Orchestrator, ProposalState, ProposalView } from '../../runtime/orchestrator/types.js';
import { jsonSender, parseJsonFrame } from './ws-send.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const tags = ['agents'];
/** Travellers talk to their guide; operators to every agent. Staff (Redeem) have no agent. */
const USERS = ['traveller', 'operator'] as const;
/** The longest message a person may send an agent in one turn (characters). */
export const MAX_AGENT_TEXT = 4000;

export const AGENT_TYPE_PATTERN = '^[a-z][a-z0-9-]{0,63}$';
export const AGENT_SESSION_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$';
/** A proposal's id is the cid of its canonical content. */
export const PROPOSAL_ID_PATTERN = '^b3:[0-9a-f]{64}$';
const SESSION_STATES: readonly SessionState[] = ['idle', 'running', 'paused', 'closed'];
const PROPOSAL_STATES: readonly ProposalState[] = ['refused', 'awaiting_approval', 'rejected', 'approved', 'executing', 'executed', 'failed'];

const agentType = { type: 'string', pattern: AGENT_TYPE_PATTERN, description: 'An agent type, e.g. `journey-guide`.' } as const;
const sessionId = { type: 'string', pattern: AGENT_SESSION_ID_PATTERN } as const;
const proposalId = { type: 'string', pattern: PROPOSAL_ID_PATTERN, description: 'The proposal\'s cid.' } as const;
const sessionParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: sessionId } } as const;
const proposalParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: proposalId } } as const;
const loose = (description: string) => ({ type: 'object', additionalProperties: true, description }) as const;
const count = { type: 'number', minimum: 0 } as const;

const usageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tokens', 'tool_calls', 'wall_ms', 'model_calls'],
  properties: { tokens: count, tool_calls: count, wall_ms: count, model_calls: count },
} as const;
const budgetsSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Limits; an absent one is unlimited.',
  properties: { tokens: count, tool_calls: count, wall_ms: count, model_calls: count },
} as const;
const pauseSchema = {
  type: ['object', 'null'],
  additionalProperties: true,
  description: 'Why the session is paused (which budget, in which scope, used and limit, what it was about to do), or null.',
  properties: { budget: { type: 'string' }, scope: { type: 'string', enum: ['session', 'day'] }, used: count, limit: count, at: { type: 'string' }, since: { type: 'string' } },
} as const;

/** SessionInfo (main/runtime/agents/types.ts). */
export const agentSessionSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['id', 'agent_type', 'state', 'owner', 'metadata', 'created_at', 'updated_at', 'last_active_at', 'usage', 'pause', 'degraded'],
  properties: {
    id: { type: 'string' },
    agent_type: { type: 'string' },
    state: { type: 'string', enum: [...SESSION_STATES] },
    owner: { type: 'string', description: 'Who opened it: `traveller` or `operator`.' },
    metadata: { type: 'object', additionalProperties: true },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
    last_active_at: { type: 'string' },
    usage: usageSchema,
    pause: pauseSchema,
    degraded: { type: 'boolean', description: 'Answers come from the agent\'s rules: its model is missing or down.' },
  },
} as const;

/** ProposalView (main/runtime/orchestrator/types.ts). */
export const agentProposalSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['id', 'capsule', 'action', 'args', 'reason', 'agent', 'owner', 'state', 'approval', 'policies', 'text', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    capsule: { type: 'string', description: 'Its receipt chain: the card is /v1/r/<capsule>.' },
    action: { type: 'string' },
    args: { type: 'object', additionalProperties: true },
    reason: { type: 'string' },
    agent: { type: 'object', additionalProperties: false, required: ['session', 'type'], properties: { session: { type: 'string' }, type: { type: 'string' } } },
    owner: { type: 'string' },
    state: { type: 'string', enum: [...PROPOSAL_STATES] },
    approval: loose('`{need: none|traveller|operator, by?, at?, decision?}`.'),
    policies: { type: 'array', items: loose('`{plugin, verdict: ACK|NACK, reason}`.') },
    result: { description: 'What the action answered once executed.' },
    error: loose('`{code, message}` when it failed.'),
    text: { type: 'string', description: 'The card\'s sentence.' },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
  },
} as const;

const turnErrorSchema = { type: 'object', additionalProperties: false, required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } as const;

/** TurnResult & {proposals}. */
export const agentTurnSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['turn', 'trace_id', 'outcome', 'text', 'source', 'tool_calls', 'proposals'],
  properties: {
    turn: { type: 'string' },
    trace_id: { type: 'string', description: 'Its journal events: GET /api/events?trace_id=….' },
    outcome: { type: 'string', enum: ['completed', 'failed', 'paused'] },
    text: { type: 'string', description: 'The answer (\'\' when paused or failed).' },
    source: { type: 'string', enum: ['model', 'fallback'] },
    tool_calls: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: true,
        properties: {
          call: { type: 'object', additionalProperties: true, properties: { id: { type: 'string' }, name: { type: 'string' }, arguments: { type: 'object', additionalProperties: true } } },
          outcome: { type: 'object', additionalProperties: true, properties: { ok: { type: 'boolean' }, content: { type: 'string' }, error: turnErrorSchema } },
        },
      },
    },
    error: turnErrorSchema,
    pause: pauseSchema,
    proposals: { type: 'array', items: agentProposalSchema },
  },
} as const;

const agentSummarySchema = {
  type: 'object',
  additionalProperties: true,
  required: ['type', 'title', 'roles', 'model', 'degraded', 'enabled'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    description: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' }, description: 'Who may open a session with it.' },
    model: { type: 'boolean', description: 'A model is configured for it.' },
    degraded: { type: 'boolean', description: 'Its model is missing or down: answers come from rules, or it is off.' },
    enabled: { type: 'boolean' },
  },
} as const;

const transcriptEntrySchema = loose('A TranscriptEntry (README "Agents"): `{seq, at, turn, type: user|assistant|tool_call|tool_result|turn_end, …}`.');

const budgetViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['session', 'day'],
  properties: {
    session: { type: 'object', additionalProperties: false, required: ['limit', 'used'], properties: { limit: budgetsSchema, used: usageSchema } },
    day: { type: 'object', additionalProperties: false, required: ['date', 'limit', 'used'], properties: { date: { type: 'string' }, limit: budgetsSchema, used: usageSchema } },
  },
} as const;

const extendSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  description: 'Added to the session\'s budgets.',
  properties: {
    tokens: { type: 'integer', minimum: 1, maximum: 100_000_000 },
    tool_calls: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    wall_ms: { type: 'integer', minimum: 1, maximum: 7 * 24 * 3600 * 1000 },
    model_calls: { type: 'integer', minimum: 1, maximum: 1_000_000 },
  },
} as const;

/** Runs `fn`; an AGENT_RATE_LIMITED it throws with `details.retry_after_seconds` also sets the `retry-after` header. */
async function retryAfter<T>(reply: FastifyReply, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const wait = (err as { code?: unknown; details?: { retry_after_seconds?: unknown } }).details?.retry_after_seconds;
    if ((err as { code?: unknown }).code === 'AGENT_RATE_LIMITED' && typeof wait === 'number') void reply.header('retry-after', String(wait));
    throw err;
  }
}

/**
 * The caller as the orchestrator's policy sees it: the role this request acts as (an operator's credential acts as
 * the operator even when it holds every role) and the roles it holds.
 */
export function callerOf(request: FastifyRequest): Caller {
  const roles: readonly Role[] = request.principal?.roles ?? [];
  const principal = roles.includes('operator') ? 'operator' : roles.includes('traveller') ? 'traveller' : roles.includes('staff') ? 'staff' : (roles[0] ?? 'unknown');
  return { principal, roles };
}

/**
 * An agent runtime error that reached the host unmapped becomes the TesseraError of the same code, so that its
 * status and shape are right (the orchestrator maps them; this is the net under it).
 */
export function asTesseraError(err: unknown): unknown {
  if (isTesseraError(err) || !isAgentError(err) || !isErrorCode(err.code)) return err;
  return new TesseraError(err.code, err.message, { retryable: err.retryable, ...(err.options.details !== undefined ? { details: err.options.details } : {}) });
}

/** Proposals for sessions of another principal are not this caller's to see: the operator sees all. */
function visible(caller: Caller, proposal: ProposalView): boolean {
  return caller.roles.includes('operator') || proposal.owner === caller.principal;
}

export const agentRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;
  const agents = (): Orchestrator => runtime.agents;

  // Only this plugin's routes: an AgentError that slipped through unmapped is answered as its TesseraError by the
  // server's handler (a handler that throws hands the error to its parent's).
  app.setErrorHandler((err) => {
    throw asTesseraError(err);
  });

  app.get('/api/agents', {
    config: { access: [...USERS] },
    schema: {
      summary: 'The agents this caller may open a session with: title, who may use it, whether a model backs it and whether it is degraded or off.',
      tags,
      security: secured,
      response: { 200: { type: 'object', required: ['agents'], properties: { agents: { type: 'array', items: agentSummarySchema } } }, 401: errorRef, 403: errorRef, 503: errorRef },
    },
  }, async (request) => ({ agents: await agents().agents(callerOf(request)) }));

  app.post<{ Body: { agent_type: string; metadata?: Record<string, unknown> } }>('/api/agents/sessions', {
    config: { access: [...USERS] },
    schema: {
      summary: 'Open a session with an agent (`agent.session.created`). 403 FORBIDDEN when the caller\'s role may not use it; 400 AGENT_PROFILE_INVALID for an unknown or broken agent; 503 AGENT_DISABLED while it is off.',
      description:
        '`metadata.journey_id` and `metadata.product_runtime_session_id` are ids (400 VALIDATION_FAILED otherwise); a traveller\'s must name a journey and a purchase of this device, the journey of that purchase (403 FORBIDDEN). 429 AGENT_RATE_LIMITED (with a `retry-after` header and details.retry_after_seconds): a traveller opens at most 10 sessions a minute and holds at most 50 in use (close one).',
      tags,
      security: secured,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['agent_type'],
        properties: {
          agent_type: agentType,
          metadata: { type: 'object', maxProperties: 32, additionalProperties: true, description: 'The app\'s own fields, e.g. `product_runtime_session_id`, `journey_id`.' },
        },
      },
      response: { 201: agentSessionSchema, 400: errorRef, 401: errorRef, 403: errorRef, 413: errorRef, 415: errorRef, 429: errorRef, 503: errorRef },
    },
  }, async (request, reply) => {
    const { agent_type, metadata } = request.body;
    const session = await retryAfter(reply, () => agents().open(callerOf(request), { agent_type, ...(metadata !== undefined ? { metadata } : {}) }));
    return reply.code(201).send(session);
  });

  app.get<{ Querystring: { agent_type?: string; state?: SessionState; limit?: number } }>('/api/agents/sessions', {
    config: { access: [...USERS] },
    schema: {
      summary: 'Agent sessions this caller may see (a traveller: travellers\' sessions; an operator: all), newest first.',
      tags,
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { agent_type: agentType, state: { type: 'string', enum: [...SESSION_STATES] }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } } },
      response: { 200: { type: 'object', required: ['sessions'], properties: { sessions: { type: 'array', items: agentSessionSchema } } }, 400: errorRef, 401: errorRef, 403: errorRef, 503: errorRef },
    },
  }, async (request) => ({ sessions: await agents().sessions(callerOf(request), request.query) }));

  app.get<{ Params: { id: string } }>('/api/agents/sessions/:id', {
    config: { access: [...USERS] },
    schema: { summary: 'One agent session: state, usage, why it is paused, whether it is degraded.', tags, security: secured, params: sessionParams, response: { 200: agentSessionSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 503: errorRef } },
  }, async (request) => agents().session(callerOf(request), request.params.id));

  app.delete<{ Params: { id: string } }>('/api/agents/sessions/:id', {
    config: { access: [...USERS] },
    schema: { summary: 'Close the session (`agent.session.closed`): it keeps its transcript and takes no more messages. Closing twice answers the closed session.', tags, security: secured, params: sessionParams, response: { 200: agentSessionSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 503: errorRef } },
  }, async (request) => agents().close(callerOf(request), request.params.id));

  app.post<{ Params: { id: string }; Body: { text: string; trace_id?: string } }>('/api/agents/sessions/:id/messages', {
    config: { access: [...USERS] },
    schema: {
      summary: 'Say something to the agent and wait for its answer (one turn; follow it live on /ws/agents/:id). A failed or paused turn is still 200: `outcome` says so.',
      description: `409 AGENT_SESSION_BUSY (one turn at a time), AGENT_SESSION_PAUSED (details.pause), AGENT_SESSION_CLOSED; 429 AGENT_RATE_LIMITED; 503 AGENT_DISABLED. The text is 1–${MAX_AGENT_TEXT} characters and not only spaces.`,
      tags,
      security: secured,
      params: sessionParams,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['text'],
        properties: {
          text: { type: 'string', minLength: 1, maxLength: MAX_AGENT_TEXT, description: 'What the person says; not only spaces.' },
          trace_id: { type: 'string', pattern: TRACE_ID_PATTERN, description: 'Join this trace (default: a new one per turn).' },
        },
      },
      response: { 200: agentTurnSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 413: errorRef, 415: errorRef, 429: errorRef, 503: errorRef },
    },
  }, async (request, reply) => {
    const { text, trace_id } = request.body;
    if (!/\S/.test(text)) throw new TesseraError('VALIDATION_FAILED', 'The text is only spaces: say something to the agent.');
    return retryAfter(reply, () => agents().say(callerOf(request), request.params.id, text, trace_id !== undefined ? { trace_id } : {}));
  });

  app.get<{ Params: { id: string }; Querystring: { after?: number; limit?: number } }>('/api/agents/sessions/:id/transcript', {
    config: { access: [...USERS] },
    schema: {
      summary: 'The session\'s transcript: entries with seq > after, in order (user, assistant, tool_call, tool_result, turn_end).',
      tags,
      security: secured,
      params: sessionParams,
      querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'integer', minimum: 0, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } } },
      response: { 200: { type: 'object', required: ['entries'], properties: { entries: { type: 'array', items: transcriptEntrySchema } } }, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 503: errorRef },
    },
  }, async (request) => ({ entries: await agents().transcript(callerOf(request), request.params.id, request.query) }));

  app.get<{ Params: { id: string } }>('/api/agents/sessions/:id/budgets', {
    config: { access: [...USERS] },
    schema: { summary: 'The session\'s budgets (its profile\'s plus what resume added) and use, and its agent type\'s for today (UTC).', tags, security: secured, params: sessionParams, response: { 200: budgetViewSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 503: errorRef } },
  }, async (request) => agents().budgets(callerOf(request), request.params.id));

  app.post<{ Params: { id: string }; Body: { extend?: Budgets } | undefined }>('/api/agents/sessions/:id/resume', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Resume a session: load it again, finish a turn a crash left, and — for a paused one — continue with its budgets raised by `extend`. 409 AGENT_SESSION_PAUSED when `extend` does not cover what ran out.',
      tags,
      security: secured,
      params: sessionParams,
      body: { type: 'object', additionalProperties: false, properties: { extend: extendSchema } },
      response: { 200: agentSessionSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef },
    },
  }, async (request) => agents().resume(callerOf(request), request.params.id, request.body?.extend));

  app.get<{ Querystring: { session?: string; state?: ProposalState; limit?: number } }>('/api/agents/proposals', {
    config: { access: [...USERS] },
    schema: {
      summary: 'Agents\' proposals this caller may see (a traveller: those for travellers\' sessions), newest first.',
      tags,
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { session: sessionId, state: { type: 'string', enum: [...PROPOSAL_STATES] }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } } },
      response: { 200: { type: 'object', required: ['proposals'], properties: { proposals: { type: 'array', items: agentProposalSchema } } }, 400: errorRef, 401: errorRef, 403: errorRef, 503: errorRef },
    },
  }, async (request) => {
    const caller = callerOf(request);
    const { session, state, limit } = request.query;
    const filter = { ...(session !== undefined ? { session } : {}), ...(state !== undefined ? { state } : {}), ...(limit !== undefined ? { limit } : {}), ...(caller.roles.includes('operator') ? {} : { owner: caller.principal }) };
    return { proposals: agents().proposals.list(filter).filter((p) => visible(caller, p)) };
  });

  const proposalOf = (request: FastifyRequest<{ Params: { id: string } }>): ProposalView => {
    const proposal = agents().proposals.get(request.params.id);
    // Another principal's proposal is answered as unknown: its existence is not this caller's business.
    if (!visible(callerOf(request), proposal)) throw new TesseraError('AGENT_PROPOSAL_NOT_FOUND', `No agent proposal ${request.params.id}.`);
    return proposal;
  };

  app.get<{ Params: { id: string } }>('/api/agents/proposals/:id', {
    config: { access: [...USERS] },
    schema: { summary: 'One proposal: its action, the policies\' verdicts, who must approve, its state and result.', tags, security: secured, params: proposalParams, response: { 200: agentProposalSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 503: errorRef } },
  }, async (request) => proposalOf(request));

  for (const decision of ['approve', 'reject'] as const) {
    app.post<{ Params: { id: string } }>(`/api/agents/proposals/:id/${decision}`, {
      config: { access: [...USERS] },
      schema: {
        summary: decision === 'approve'
          ? 'Approve a proposal: the runtime executes it exactly once (EXECUTION receipt) and answers it with its result. 403 AGENT_APPROVAL_REQUIRED when it needs an approver this caller is not.'
          : 'Reject a proposal; it is never executed.',
        description: '409 AGENT_PROPOSAL_DECIDED when it was already approved, rejected or refused (details.state).',
        tags,
        security: secured,
        params: proposalParams,
        response: { 200: agentProposalSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef },
      },
    }, async (request) => {
      const caller = callerOf(request);
      proposalOf(request);
      return agents().proposals.decide(request.params.id, decision, { principal: caller.principal, roles: caller.roles });
    });
  }

  app.get<{ Params: { id: string }; Querystring: { after?: number } }>('/ws/agents/:id', {
    config: { access: [...USERS] },
    websocket: true,
    schema: {
      summary: 'An agent session\'s room (WebSocket): its events after `after`, then live ones. Protocol in main/host/http/agents.ts and README "Agents".',
      tags,
      security: secured,
      params: sessionParams,
      querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'integer', minimum: 0, default: 0, description: 'The last seq this client saw.' } } },
    },
  }, (socket: WebSocket, request) => {
    const id = request.params.id;
    const after = request.query.after ?? 0;
    const log = runtime.logger.child({ ws_agents: request.id, agent_session: id });
    const send = jsonSender(socket, log, 'an agent room client');
    // Events the room replays while subscribing come before `hello` (which needs `gap`): held until it is sent.
    // Each seq is sent once and in order, whatever the room does at the edges of a reconnect.
    let last = after;
    let held: AgentEvent[] | null = [];
    const deliver = (event: AgentEvent) => {
      if (event.seq <= last) return;
      last = event.seq;
      send({ type: 'event', event });
    };
    let open = true;
    let subscription: { dispose(): void } | undefined;
    socket.on('close', () => {
      open = false;
      // The subscription only: the session and a turn in progress go on without this client.
      subscription?.dispose();
      subscription = undefined;
    });

    void (async () => {
      try {
        const sub = await agents().subscribe(callerOf(request), id, after, (event) => (held ? held.push(event) : deliver(event)));
        if (!open) {
          sub.dispose();
          return;
        }
        subscription = sub;
        // A gap (the room restarted after a crash, or no longer holds what follows `after`): the client reloads the
        // transcript, and every event the room still has is sent, even numbered at or below its `after`.
        if (sub.gap) last = 0;
        send({ type: 'hello', v: AGENT_EVENT_VERSION, session: id, gap: sub.gap });
        const replay = held;
        held = null;
        for (const event of replay) deliver(event);
      } catch (err) {
        const data = toErrorData(asTesseraError(err));
        if (data.code === 'INTERNAL') log.error('agent room subscription failed', { error: err });
        send({ type: 'error', error: data });
        // The close reason is at most 123 bytes: the code says enough.
        if (socket.readyState === socket.OPEN) socket.close(1008, data.code);
      }
    })();

    socket.on('message', (data, isBinary) => {
      try {
        if (isBinary) throw new TesseraError('VALIDATION_FAILED', 'Send JSON text frames.');
        const message = parseJsonFrame(data);
        if (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'ping') send({ type: 'pong' });
        else throw new TesseraError('VALIDATION_FAILED', 'This room takes only {"type":"ping"}; talk to the agent with POST /api/agents/sessions/:id/messages.');
      } catch (err) {
        send({ type: 'error', error: toErrorData(err) });
      }
    });
  });
};
