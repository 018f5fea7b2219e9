/**
 * The generic agent runtime (seed 003 FR1, FR2.7, NFR1, NFR2; issue 17 points 1, 4, 6, 7): sessions in memory,
 * everything persisted through the injected adapters, one turn at a time per session.
 *
 * Durability rule (ISSUE17-PLAN "Decisions"): a transcript entry is persisted BEFORE the thing it describes
 * happens — `pending_turn` and the user message before the model call, `tool_call` before the tool runs,
 * `turn_end` last. A process that dies mid-turn therefore leaves a transcript from which {@link driveTurn} can
 * finish the turn: it re-reads the turn's entries and does the next missing step (a dangling `tool_call` runs again
 * with the same idempotency key; a turn whose last entry is the user message calls the model again).
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { addUsage, createBudgetLedger, dayUsage, emptyUsage, extendBudgets, hasRoom, remaining, sessionLimits, utcDay } from './budgets.js';
import { chatMessages, toolAllowed, turnResult, uniqueCalls, type EntryBody } from './conversation.js';
import { createRooms } from './rooms.js';
import {
  AgentError,
  isAgentError,
  type AgentErrorCode,
  type AgentEventType,
  type AgentProfile,
  type AgentRuntime,
  type AgentRuntimeConfig,
  type Budgets,
  type ChatResult,
  type DegradedMode,
  type PauseInfo,
  type SessionInfo,
  type SessionRecord,
  type SessionState,
  type SessionTools,
  type ToolCall,
  type ToolOutcome,
  type TranscriptEntry,
  type TurnResult,
  type Usage,
} from './types.js';

const DEFAULT_IDLE_MS = 15 * 60_000;
const DEFAULT_SYNC_MS = 30_000;
const DEFAULT_MAX_LOADED = 200;
const DEFAULT_ROOM_BUFFER = 1000;
const DEFAULT_DEGRADED_RETRY_MS = 30_000;
const DEFAULT_MAX_TOKENS = 512;
const DEFAULT_MAX_TOOL_ROUNDS = 8;
const DEFAULT_GRACE_MS = 10_000;
const MAX_MESSAGE_CHARS = 100_000;
const AGENT_TYPE_RE = /^[a-z][a-z0-9-]{0,63}$/;

/** A session loaded in memory. Its `record` is the one object every change goes to (and `known` points at). */
interface Live {
  record: SessionRecord;
  profile: AgentProfile;
  tools: SessionTools;
  /** The whole transcript, in seq order (what the model reads is rebuilt from it). */
  transcript: TranscriptEntry[];
  turn: Promise<TurnResult> | null;
  abort: AbortController | null;
  /** Changed since the last successful save (the periodic sync saves it). */
  dirty: boolean;
  closing: boolean;
}

type Turn = NonNullable<SessionRecord['pending_turn']>;

/** The model was found down for an agent type: until `until`, it is not called (fallback answers, or the type is off). */
interface Health {
  mode: DegradedMode;
  reason: string;
  until: number;
}

export function createAgentRuntime(config: AgentRuntimeConfig): AgentRuntime {
  // TODO(merge): default to ./mcp.js createMcpTools (helper MCP writes it in parallel).
  const toolsFactory = config.tools;
  // TODO(merge): default to ./model.js createOpenAiClient (helper MODEL writes it in parallel).
  const model = config.model;
  if (!toolsFactory || !model) throw new TypeError('createAgentRuntime: config.tools and config.model are required (their defaults land with ./mcp.ts and ./model.ts)');

  const { persistence, storage, profiles } = config;
  const clock = config.clock ?? Date.now;
  const iso = (): string => new Date(clock()).toISOString();
  const idleMs = config.idleTimeoutMs ?? DEFAULT_IDLE_MS;
  const maxLoaded = config.maxLoadedSessions ?? DEFAULT_MAX_LOADED;
  const degradedRetryMs = config.degradedRetryMs ?? DEFAULT_DEGRADED_RETRY_MS;
  const log = config.logger;

  const sessions = new Map<string, Live>();
  const loading = new Map<string, Promise<Live>>();
  const unloading = new Map<string, Promise<void>>();
  /** Records an unload could not save: the periodic sync retries them (NFR2.3); a reload prefers them. */
  const unsaved = new Map<string, SessionRecord>();
  /** Every record this runtime knows (for per-day budgets): filled once from `fetchAll`, then kept current. */
  const known = new Map<string, SessionRecord>();
  let indexed: Promise<void> | null = null;
  const health = new Map<string, Health>();
  const ledger = createBudgetLedger();
  const rooms = createRooms({
    buffer: config.roomBuffer ?? DEFAULT_ROOM_BUFFER,
    onListenerError: (err) => log?.warn('agent event listener threw', { error: String(err) }),
  });
  let creating = 0;
  let stopping = false;
  let stopped: Promise<void> | null = null;

  // --- events and adapters -------------------------------------------------------------------------------------

  function emit(rec: SessionRecord, type: AgentEventType, data: Record<string, unknown>, traceId?: string): void {
    rooms.open(rec.id, rec.event_seq);
    rec.event_seq = rooms.emit(rec.id, type, data, iso(), traceId).seq;
    const live = sessions.get(rec.id);
    if (live?.record === rec) live.dirty = true;
  }

  /** FR2.7, NFR2.4: an adapter failure becomes an `error` event and an AgentError; it never escapes as a crash. */
  function adapterFailed(adapter: string, op: string, err: unknown, session?: string): AgentError {
    const message = `${adapter}.${op} failed: ${err instanceof Error ? err.message : String(err)}`;
    log?.error('agent adapter failed', { adapter, op, session, error: message });
    const data = { code: 'AGENT_ADAPTER_FAILED', message, adapter, op };
    const rec = session === undefined ? undefined : (sessions.get(session)?.record ?? known.get(session));
    if (rec) emit(rec, 'error', data);
    else if (session !== undefined) rooms.emit(session, 'error', data, iso());
    else rooms.broadcast('error', data, iso());
    return new AgentError('AGENT_ADAPTER_FAILED', message, { retryable: true, details: { adapter, op }, cause: err });
  }

  async function call<T>(adapter: string, op: string, session: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isAgentError(err) && err.code === 'AGENT_ADAPTER_FAILED') throw err;
      throw adapterFailed(adapter, op, err, session);
    }
  }

  const clone = <T>(value: T): T => structuredClone(value);

  async function saveRecord(rec: SessionRecord): Promise<void> {
    rec.updated_at = iso();
    const live = sessions.get(rec.id);
    if (live?.record === rec) live.dirty = false;
    try {
      await call('persistence', 'save', rec.id, () => persistence.save(clone(rec)));
      unsaved.delete(rec.id);
    } catch (err) {
      if (live?.record === rec) live.dirty = true;
      throw err;
    }
    known.set(rec.id, rec);
  }

  /** Saves where a failure must not stop the work (already reported; the periodic sync retries). */
  async function saveSoft(rec: SessionRecord): Promise<void> {
    await saveRecord(rec).catch(() => undefined);
  }

  function index(): Promise<void> {
    indexed ??= (async () => {
      try {
        for (const r of await persistence.fetchAll()) if (!known.has(r.id)) known.set(r.id, r);
      } catch (err) {
        adapterFailed('persistence', 'fetchAll', err);
        indexed = null;
      }
    })();
    return indexed;
  }

  const info = (r: SessionRecord): SessionInfo => clone({
    id: r.id, agent_type: r.agent_type, state: r.state, owner: r.owner, metadata: r.metadata, created_at: r.created_at,
    updated_at: r.updated_at, last_active_at: r.last_active_at, usage: r.usage, pause: r.pause, degraded: r.degraded,
  });

  function setState(live: Live, state: SessionState, traceId?: string): void {
    const rec = live.record;
    if (rec.state === state) return;
    rec.state = state;
    emit(rec, 'session.state', { state, ...(rec.pause ? { pause: rec.pause } : {}) }, traceId);
  }

  const fail = (code: AgentErrorCode, message: string, details?: Record<string, unknown>): AgentError =>
    new AgentError(code, message, { retryable: code === 'AGENT_SESSION_BUSY' || code === 'AGENT_RATE_LIMITED' || code === 'AGENT_RUNTIME_STOPPING' || code === 'AGENT_DISABLED', ...(details ? { details } : {}) });

  function assertRunning(): void {
    if (stopping) throw fail('AGENT_RUNTIME_STOPPING', 'the agent runtime is shutting down');
  }

  // --- profiles, tools, degraded ----------------------------------------------------------------------------------

  async function loadProfile(type: string, id: string, variables: Record<string, string>): Promise<AgentProfile> {
    let p: AgentProfile;
    try {
      p = await profiles.load(type, { ...variables, SESSION_ID: id, AGENT_TYPE: type });
    } catch (err) {
      if (isAgentError(err)) throw err;
      throw new AgentError('AGENT_PROFILE_INVALID', `agent profile ${type}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const bad = (field: string, why: string): AgentError => new AgentError('AGENT_PROFILE_INVALID', `agent profile ${type}: field ${field} ${why}`, { details: { type, field } });
    if (typeof p !== 'object' || p === null) throw bad('(profile)', 'is not an object');
    if (p.type !== type) throw bad('type', `is ${JSON.stringify(p.type)}, not ${type}`);
    if (typeof p.system_prompt !== 'string') throw bad('system_prompt', 'must be a string');
    if (!Array.isArray(p.mcp_servers)) throw bad('mcp_servers', 'must be a list');
    if (typeof p.budgets?.session !== 'object' || typeof p.budgets?.day !== 'object') throw bad('budgets', 'needs session and day');
    if (p.degraded !== 'fallback' && p.degraded !== 'off') throw bad('degraded', 'must be fallback or off');
    if (p.degraded === 'fallback' && (p.fallback === undefined || config.responders?.[p.fallback] === undefined)) {
      throw bad('fallback', `names no responder of this runtime (${String(p.fallback)})`);
    }
    return p;
  }

  async function startTools(rec: SessionRecord, profile: AgentProfile): Promise<SessionTools> {
    const sandbox = await call('sandbox', 'configure', rec.id, () => config.sandbox.configure(info(rec), profile));
    await call('sandbox', 'workdir', rec.id, () => mkdir(sandbox.workdir, { recursive: true }));
    try {
      return await toolsFactory!(info(rec), [...profile.mcp_servers, ...sandbox.mcp_servers], sandbox);
    } catch (err) {
      if (isAgentError(err)) throw err;
      throw new AgentError('AGENT_TOOL_FAILED', `tools of session ${rec.id} did not start: ${String(err)}`, { cause: err });
    }
  }

  function disabledNow(type: string): Health | undefined {
    const h = health.get(type);
    return h && h.mode === 'off' && clock() < h.until ? h : undefined;
  }

  function degrade(type: string, mode: DegradedMode, reason: string): void {
    health.set(type, { mode, reason, until: clock() + degradedRetryMs });
    log?.warn('agent model degraded', { agent_type: type, mode, reason });
  }

  // --- sessions in memory --------------------------------------------------------------------------------------

  const loadedCount = (): number => sessions.size + loading.size + creating;

  async function ensureLoaded(id: string): Promise<Live> {
    await unloading.get(id);
    const live = sessions.get(id);
    if (live) return live;
    const pending = loading.get(id);
    if (pending) return pending;
    if (loadedCount() >= maxLoaded) throw fail('AGENT_RATE_LIMITED', `at most ${maxLoaded} sessions are loaded at once`);
    const p = (async (): Promise<Live> => {
      await index();
      const rec = unsaved.get(id) ?? (await call('persistence', 'load', id, () => persistence.load(id)));
      if (!rec) throw fail('AGENT_SESSION_NOT_FOUND', `no agent session ${id}`);
      if (rec.state === 'closed') throw fail('AGENT_SESSION_CLOSED', `agent session ${id} is closed`);
      const profile = await loadProfile(rec.agent_type, rec.id, rec.variables);
      const transcript = await call('storage', 'readTranscript', id, () => storage.readTranscript(id));
      // The transcript is the truth: a crash may have come between an append and the record's save.
      rec.transcript_seq = Math.max(rec.transcript_seq, transcript.at(-1)?.seq ?? 0);
      const tools = await startTools(rec, profile);
      const loaded: Live = { record: rec, profile, tools, transcript, turn: null, abort: null, dirty: false, closing: false };
      if (rec.state === 'running' && !rec.pending_turn) rec.state = 'idle';
      sessions.set(id, loaded);
      known.set(id, rec);
      emit(rec, 'session.resumed', info(rec));
      return loaded;
    })();
    loading.set(id, p);
    try {
      return await p;
    } finally {
      loading.delete(id);
    }
  }

  async function unload(live: Live): Promise<void> {
    const rec = live.record;
    sessions.delete(rec.id);
    const done = (async () => {
      await live.tools.close().catch((err: unknown) => log?.warn('agent tools did not close', { session: rec.id, error: String(err) }));
      emit(rec, 'session.unloaded', info(rec));
      await saveRecord(rec).catch(() => unsaved.set(rec.id, rec));
      rooms.release(rec.id);
    })();
    unloading.set(rec.id, done);
    await done;
    unloading.delete(rec.id);
  }

  /** One turn at a time per session: `live.turn` is the running one. */
  async function exclusive(live: Live, external: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<TurnResult>): Promise<TurnResult> {
    if (live.turn) throw fail('AGENT_SESSION_BUSY', `agent session ${live.record.id} is in the middle of a turn`);
    const abort = new AbortController();
    const signal = external ? AbortSignal.any([abort.signal, external]) : abort.signal;
    live.abort = abort;
    const p = fn(signal);
    live.turn = p;
    try {
      return await p;
    } finally {
      live.turn = null;
      live.abort = null;
    }
  }

  // --- the turn ----------------------------------------------------------------------------------------------------

  async function append(live: Live, turn: Turn, body: EntryBody): Promise<TranscriptEntry> {
    const rec = live.record;
    const entry = { ...body, seq: rec.transcript_seq + 1, at: iso(), turn: turn.id } as TranscriptEntry;
    await call('storage', 'appendTranscript', rec.id, () => storage.appendTranscript(rec.id, [entry]));
    rec.transcript_seq = entry.seq;
    live.transcript.push(entry);
    live.dirty = true;
    const type = ({ user: 'message.user', assistant: 'message.assistant', tool_call: 'tool.call', tool_result: 'tool.result', turn_end: null } as const)[entry.type];
    if (type) emit(rec, type, { entry }, turn.trace_id);
    return entry;
  }

  function settle(live: Live, used: Partial<Usage>): void {
    const rec = live.record;
    addUsage(rec.usage, used);
    addUsage((rec.daily[utcDay(clock())] ??= emptyUsage()), used);
    live.dirty = true;
  }

  function limits(live: Live): { session: Budgets; day: Budgets; dayUsed: Usage; date: string } {
    const date = utcDay(clock());
    return {
      session: sessionLimits(live.profile.budgets.session, live.record.budget_extra),
      day: live.profile.budgets.day,
      dayUsed: dayUsage(known.values(), live.record.agent_type, date),
      date,
    };
  }

  function reserve(live: Live, need: Partial<Usage>, at: string): PauseInfo | null {
    const l = limits(live);
    return ledger.reserve({
      session: live.record.id, agentType: live.record.agent_type, sessionLimit: l.session, sessionUsed: live.record.usage,
      dayLimit: l.day, dayUsed: l.dayUsed, need, at, now: iso(),
    });
  }

  function emitUsage(live: Live, turn: Turn): void {
    const l = limits(live);
    emit(live.record, 'usage', {
      usage: live.record.usage,
      budgets: { session: l.session, day: l.day },
      remaining: { session: remaining(l.session, live.record.usage), day: remaining(l.day, l.dayUsed) },
    }, turn.trace_id);
  }

  async function endTurn(live: Live, turn: Turn, outcome: 'completed' | 'failed', error?: { code: string; message: string }): Promise<TurnResult> {
    const rec = live.record;
    try {
      await append(live, turn, { type: 'turn_end', outcome, ...(error ? { error } : {}) });
    } catch (err) {
      // Never answer success for what was not persisted.
      if (outcome === 'completed') return endTurnUnsaved(live, turn, err);
    }
    rec.pending_turn = null;
    rec.last_active_at = iso();
    setState(live, 'idle', turn.trace_id);
    emit(rec, outcome === 'completed' ? 'turn.completed' : 'turn.failed', { turn: turn.id, ...(error ? { error } : {}) }, turn.trace_id);
    await saveSoft(rec);
    return turnResult(live.transcript, turn, outcome, error ? { error } : {});
  }

  /** A turn that cannot write its transcript fails without a `turn_end` (the write is what failed). */
  async function endTurnUnsaved(live: Live, turn: Turn, err: unknown): Promise<TurnResult> {
    const error = { code: 'AGENT_ADAPTER_FAILED', message: err instanceof Error ? err.message : String(err) };
    live.record.pending_turn = null;
    live.record.pause = null;
    live.record.last_active_at = iso();
    setState(live, 'idle', turn.trace_id);
    emit(live.record, 'turn.failed', { turn: turn.id, error }, turn.trace_id);
    await saveSoft(live.record);
    return turnResult(live.transcript, turn, 'failed', { error });
  }

  /** At a budget limit the session pauses and asks (the turn stays pending; `resume({extend})` continues it). */
  async function pauseTurn(live: Live, turn: Turn, pause: PauseInfo): Promise<TurnResult> {
    const rec = live.record;
    rec.pause = pause;
    setState(live, 'paused', turn.trace_id);
    await append(live, turn, { type: 'turn_end', outcome: 'paused' });
    await saveSoft(rec);
    return turnResult(live.transcript, turn, 'paused', { pause });
  }

  /** Answers through the rule-based responder, or fails the turn with AGENT_DISABLED when the type is `off`. */
  async function degradedStep(live: Live, turn: Turn, reason: string, signal: AbortSignal): Promise<TurnResult> {
    const rec = live.record;
    const profile = live.profile;
    if (!rec.degraded) {
      rec.degraded = true;
      emit(rec, 'session.degraded', { degraded: true, reason }, turn.trace_id);
    }
    const responder = profile.fallback === undefined ? undefined : config.responders?.[profile.fallback];
    if (profile.degraded === 'off' || !responder) {
      return endTurn(live, turn, 'failed', { code: 'AGENT_DISABLED', message: `agent ${rec.agent_type} is switched off: ${reason}` });
    }
    const user = live.transcript.findLast((e) => e.turn === turn.id && e.type === 'user');
    const started = clock();
    let answer: Awaited<ReturnType<typeof responder>>;
    try {
      answer = await responder({
        session: info(rec), text: user?.type === 'user' ? user.text : '', transcript: live.transcript, tools: live.tools,
        idempotencyKey: (suffix) => `${rec.id}:${suffix}`, signal,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      const e = isAgentError(err) ? err : new AgentError('AGENT_TOOL_FAILED', `fallback responder failed: ${String(err)}`);
      return endTurn(live, turn, 'failed', { code: e.code, message: e.message });
    }
    const calls: ToolCall[] = [];
    for (const c of answer.tool_calls ?? []) {
      const call: ToolCall = { id: c.id, name: c.name, arguments: c.arguments };
      calls.push(call);
      await append(live, turn, { type: 'tool_call', call, idempotency_key: `${rec.id}:${c.id}` });
      await append(live, turn, { type: 'tool_result', call_id: c.id, ok: c.outcome.ok, content: c.outcome.content, ...(c.outcome.error ? { error: c.outcome.error } : {}) });
    }
    settle(live, { tool_calls: calls.length, wall_ms: clock() - started });
    await append(live, turn, { type: 'assistant', text: answer.text, tool_calls: calls, source: 'fallback' });
    emitUsage(live, turn);
    return endTurn(live, turn, 'completed');
  }

  /** One model call. Returns a result when the turn ends here (paused, failed, degraded), null to go on. */
  async function modelStep(live: Live, turn: Turn, final: boolean, signal: AbortSignal): Promise<TurnResult | null> {
    const rec = live.record;
    const profile = live.profile;
    if (!profile.model) return degradedStep(live, turn, 'no model configured', signal);
    const h = health.get(rec.agent_type);
    if (h && clock() < h.until) return degradedStep(live, turn, h.reason, signal);

    const messages = chatMessages(profile.system_prompt, live.transcript);
    const tools = final ? [] : live.tools.list().filter((t) => toolAllowed(profile, t.name));
    const prompt = Math.ceil((JSON.stringify(messages).length + JSON.stringify(tools).length) / 4);
    const need = { tokens: (profile.model.max_tokens ?? DEFAULT_MAX_TOKENS) + prompt, model_calls: 1 };
    const pause = reserve(live, need, 'model');
    if (pause) return pauseTurn(live, turn, pause);

    const started = clock();
    let result: ChatResult;
    try {
      const apiKey = profile.model.api_key_secret === undefined ? undefined : config.secret?.(profile.model.api_key_secret);
      result = await model!.complete(
        { model: profile.model, ...(apiKey === undefined ? {} : { apiKey }), messages, tools },
        { signal, onDelta: (text) => emit(rec, 'message.delta', { turn: turn.id, text }, turn.trace_id) },
      );
    } catch (err) {
      ledger.release(rec.id, rec.agent_type, need);
      settle(live, { model_calls: 1, wall_ms: clock() - started });
      if (signal.aborted) throw err;
      const e = isAgentError(err) ? err : new AgentError('AGENT_MODEL_FAILED', String(err), { cause: err });
      if (e.code === 'AGENT_MODEL_FAILED' || e.code === 'AGENT_MODEL_TIMEOUT') {
        // Theirs (endpoint down, slow, over the provider's quota) degrades; ours (budgets) pauses.
        const reason = `${e.code}${e.options.details?.over_quota === true ? ' (over quota)' : ''}: ${e.message}`;
        degrade(rec.agent_type, profile.degraded, reason);
        return degradedStep(live, turn, reason, signal);
      }
      return endTurn(live, turn, 'failed', { code: e.code, message: e.message });
    }
    ledger.release(rec.id, rec.agent_type, need);
    settle(live, { tokens: result.usage.prompt_tokens + result.usage.completion_tokens, model_calls: 1, wall_ms: clock() - started });
    health.delete(rec.agent_type);
    if (rec.degraded) {
      rec.degraded = false;
      emit(rec, 'session.degraded', { degraded: false, reason: 'the model answered' }, turn.trace_id);
    }
    const calls = final ? [] : uniqueCalls(result.tool_calls, live.transcript, rec.transcript_seq + 1);
    await append(live, turn, {
      type: 'assistant', text: result.text, tool_calls: calls, source: 'model',
      usage: { prompt_tokens: result.usage.prompt_tokens, completion_tokens: result.usage.completion_tokens },
    });
    emitUsage(live, turn);
    return null;
  }

  /** Runs one tool call of the model's answer (its `tool_call` entry first). Returns what ran out, if anything. */
  async function toolStep(live: Live, turn: Turn, call: ToolCall, signal: AbortSignal): Promise<PauseInfo | null> {
    const rec = live.record;
    const need = { tool_calls: 1 };
    const pause = reserve(live, need, call.name);
    if (pause) return pause;
    const key = `${rec.id}:${call.id}`;
    try {
      if (!live.transcript.some((e) => e.type === 'tool_call' && e.call.id === call.id)) {
        await append(live, turn, { type: 'tool_call', call, idempotency_key: key });
      }
      const started = clock();
      let outcome: ToolOutcome;
      if (!toolAllowed(live.profile, call.name)) {
        outcome = { ok: false, content: '', error: { code: 'AGENT_TOOL_FAILED', message: `tool ${call.name} is not allowed for ${rec.agent_type}` } };
      } else {
        try {
          outcome = await live.tools.call(call.name, call.arguments, { idempotencyKey: key, signal });
        } catch (err) {
          if (signal.aborted) throw err;
          outcome = { ok: false, content: '', error: { code: isAgentError(err) ? err.code : 'AGENT_TOOL_FAILED', message: err instanceof Error ? err.message : String(err) } };
        }
      }
      settle(live, { tool_calls: 1, wall_ms: clock() - started });
      await append(live, turn, { type: 'tool_result', call_id: call.id, ok: outcome.ok, content: outcome.content, ...(outcome.error ? { error: outcome.error } : {}) });
      emitUsage(live, turn);
    } finally {
      ledger.release(rec.id, rec.agent_type, need);
    }
    return null;
  }

  /**
   * Drives a turn to its end from whatever its transcript entries say was done: the same code runs a new turn,
   * continues one after `resume({extend})`, and finishes one a crash interrupted.
   */
  async function driveTurn(live: Live, turn: Turn, signal: AbortSignal): Promise<TurnResult> {
    const maxRounds = live.profile.max_tool_rounds ?? DEFAULT_MAX_TOOL_ROUNDS;
    try {
      for (;;) {
        if (signal.aborted) throw signal.reason;
        const entries = live.transcript.filter((e) => e.turn === turn.id);
        const last = entries.at(-1);
        if (!last) return await endTurn(live, turn, 'failed', { code: 'AGENT_RUNTIME_STOPPING', message: 'the runtime stopped before the message was saved' });
        if (last.type === 'turn_end' && last.outcome !== 'paused') {
          // The turn ended but the record was not saved after it (a crash): only the record needs it.
          live.record.pending_turn = null;
          setState(live, 'idle', turn.trace_id);
          await saveSoft(live.record);
          return turnResult(live.transcript, turn, last.outcome, last.error ? { error: last.error } : {});
        }
        const answer = entries.findLast((e) => e.type === 'assistant');
        if (answer?.type === 'assistant') {
          const done = new Set(entries.flatMap((e) => (e.type === 'tool_result' ? [e.call_id] : [])));
          const next = answer.source === 'model' ? answer.tool_calls.find((c) => !done.has(c.id)) : undefined;
          if (next) {
            const pause = await toolStep(live, turn, next, signal);
            if (pause) return await pauseTurn(live, turn, pause);
            continue;
          }
          if (answer.tool_calls.length === 0 || answer.source === 'fallback') return await endTurn(live, turn, 'completed');
        }
        // The model's move: after the user's message, or after every result of its last tool round. Past
        // max_tool_rounds it is offered no tools, so it has to answer in words.
        const rounds = entries.filter((e) => e.type === 'assistant' && e.tool_calls.length > 0).length;
        const ended = await modelStep(live, turn, rounds >= maxRounds, signal);
        if (ended) return ended;
      }
    } catch (err) {
      if (stopping && signal.aborted) {
        // Shutdown: leave `pending_turn` set; recover() finishes the turn after the restart.
        const error = { code: 'AGENT_RUNTIME_STOPPING', message: 'the runtime is shutting down; the turn finishes after the restart' };
        emit(live.record, 'turn.failed', { turn: turn.id, error }, turn.trace_id);
        return turnResult(live.transcript, turn, 'failed', { error });
      }
      if (isAgentError(err) && err.code === 'AGENT_ADAPTER_FAILED') return endTurnUnsaved(live, turn, err);
      const error = live.closing
        ? { code: 'AGENT_SESSION_CLOSED', message: 'the session was closed during the turn' }
        : isAgentError(err) ? { code: err.code, message: err.message } : { code: 'AGENT_MODEL_FAILED', message: signal.aborted ? 'the turn was aborted' : String(err) };
      return endTurn(live, turn, 'failed', error).catch((e: unknown) => endTurnUnsaved(live, turn, e));
    }
  }

  function finishPending(live: Live): Promise<TurnResult> {
    const turn = live.record.pending_turn!;
    return exclusive(live, undefined, (signal) => {
      setState(live, 'running', turn.trace_id);
      return driveTurn(live, turn, signal);
    });
  }

  // --- sync and idle timers ------------------------------------------------------------------------------------

  let syncing: Promise<void> | null = null;
  /** NFR1.4: saves changed records in the background; never blocks a turn (turns do not wait for it). */
  function syncNow(all = false): Promise<void> {
    syncing ??= (async () => {
      const lives = [...sessions.values()].filter((l) => all || l.dirty);
      const records = [...lives.map((l) => l.record), ...unsaved.values()];
      if (records.length === 0) return;
      for (const l of lives) l.dirty = false;
      const at = iso();
      for (const r of records) r.updated_at = at;
      try {
        await persistence.sync(records.map(clone));
        unsaved.clear();
      } catch (err) {
        for (const l of lives) l.dirty = true;
        adapterFailed('persistence', 'sync', err);
      }
    })().finally(() => {
      syncing = null;
    });
    return syncing;
  }

  const timers: NodeJS.Timeout[] = [];
  const syncMs = config.syncIntervalMs ?? DEFAULT_SYNC_MS;
  if (syncMs > 0) timers.push(setInterval(() => void syncNow(), syncMs).unref());
  if (idleMs > 0) {
    timers.push(setInterval(() => {
      const now = clock();
      for (const live of [...sessions.values()]) {
        if (!live.turn && !live.closing && now - Date.parse(live.record.last_active_at) >= idleMs) void unload(live);
      }
    }, Math.max(10, Math.min(idleMs, 60_000))).unref());
  }

  // --- the public API -------------------------------------------------------------------------------------------

  async function resume(id: string, options: { extend?: Budgets; by?: string } = {}): Promise<SessionInfo> {
    assertRunning();
    const live = await ensureLoaded(id);
    const rec = live.record;
    if (live.closing) throw fail('AGENT_SESSION_CLOSED', `agent session ${id} is closed`);
    if (options.extend) {
      rec.budget_extra = extendBudgets(rec.budget_extra, options.extend);
      live.dirty = true;
    }
    if (rec.state === 'paused' && rec.pause) {
      const p = rec.pause;
      const l = limits(live);
      const room = p.scope === 'session' ? hasRoom(p.budget, l.session, rec.usage) : hasRoom(p.budget, l.day, l.dayUsed);
      if (!room) {
        await saveSoft(rec);
        throw fail('AGENT_SESSION_PAUSED', `agent session ${id} is still at its ${p.scope} ${p.budget} limit`, { pause: p });
      }
      rec.pause = null;
      setState(live, 'idle');
      emit(rec, 'session.resumed', info(rec));
    }
    if (rec.pending_turn && !live.turn) await finishPending(live);
    else await saveSoft(rec);
    return info(rec);
  }

  async function recordOf(id: string): Promise<SessionRecord> {
    const rec = sessions.get(id)?.record ?? unsaved.get(id) ?? (await call('persistence', 'load', id, () => persistence.load(id)));
    if (!rec) throw fail('AGENT_SESSION_NOT_FOUND', `no agent session ${id}`);
    return rec;
  }

  return {
    async create(request) {
      assertRunning();
      const type = request.agent_type;
      if (typeof type !== 'string' || !AGENT_TYPE_RE.test(type)) throw fail('AGENT_INPUT_INVALID', `agent_type must match ${AGENT_TYPE_RE.source}`);
      if (typeof request.owner !== 'string' || request.owner === '') throw fail('AGENT_INPUT_INVALID', 'owner must be a non-empty string');
      const metadata = request.metadata ?? {};
      if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw fail('AGENT_INPUT_INVALID', 'metadata must be a JSON object');
      const variables = request.variables ?? {};
      if (Object.values(variables).some((v) => typeof v !== 'string')) throw fail('AGENT_INPUT_INVALID', 'variables must be strings');
      const off = disabledNow(type);
      if (off) throw fail('AGENT_DISABLED', `agent ${type} is switched off: ${off.reason}`);
      if (loadedCount() >= maxLoaded) throw fail('AGENT_RATE_LIMITED', `at most ${maxLoaded} sessions are loaded at once`);
      creating++;
      try {
        await index();
        const id = randomUUID();
        const profile = await loadProfile(type, id, variables);
        if (!profile.model && profile.degraded === 'off') {
          degrade(type, 'off', 'no model configured');
          throw fail('AGENT_DISABLED', `agent ${type} is switched off: no model configured`);
        }
        const at = iso();
        const rec: SessionRecord = {
          v: 1, id, agent_type: type, state: 'idle', owner: request.owner, metadata: clone(metadata), variables: { ...variables },
          created_at: at, updated_at: at, last_active_at: at, transcript_seq: 0, event_seq: 0, usage: emptyUsage(), daily: {},
          budget_extra: {}, pause: null, degraded: !profile.model, pending_turn: null,
        };
        const tools = await startTools(rec, profile);
        try {
          await saveRecord(rec);
        } catch (err) {
          await tools.close().catch(() => undefined);
          throw err;
        }
        sessions.set(id, { record: rec, profile, tools, transcript: [], turn: null, abort: null, dirty: false, closing: false });
        emit(rec, 'session.created', info(rec));
        if (rec.degraded) emit(rec, 'session.degraded', { degraded: true, reason: 'no model configured' });
        return info(rec);
      } finally {
        creating--;
      }
    },

    async message(id, text, options) {
      assertRunning();
      if (typeof text !== 'string' || text.trim() === '') throw fail('AGENT_INPUT_INVALID', 'the message is empty');
      if (text.length > MAX_MESSAGE_CHARS) throw fail('AGENT_INPUT_INVALID', `the message is longer than ${MAX_MESSAGE_CHARS} characters`);
      const live = await ensureLoaded(id);
      const rec = live.record;
      // A turn a crash left pending is finished first (the new message is a new turn after it).
      if (rec.pending_turn && rec.state !== 'paused' && !live.turn) await finishPending(live);
      if (live.closing) throw fail('AGENT_SESSION_CLOSED', `agent session ${id} is closed`);
      if (rec.state === 'paused') throw fail('AGENT_SESSION_PAUSED', `agent session ${id} is paused at a budget limit`, { pause: rec.pause });
      if (live.turn) throw fail('AGENT_SESSION_BUSY', `agent session ${id} is in the middle of a turn`);
      const off = disabledNow(rec.agent_type);
      if (off) throw fail('AGENT_DISABLED', `agent ${rec.agent_type} is switched off: ${off.reason}`);
      return exclusive(live, options.signal, async (signal) => {
        const turn: Turn = { id: randomUUID(), trace_id: options.trace_id ?? randomUUID(), started_at: iso() };
        rec.pending_turn = turn;
        rec.last_active_at = turn.started_at;
        setState(live, 'running', turn.trace_id);
        emit(rec, 'turn.started', { turn: turn.id }, turn.trace_id);
        try {
          // pending_turn, then the user's message, are persisted before the model is called.
          await saveRecord(rec);
          await append(live, turn, { type: 'user', text, by: options.by });
        } catch (err) {
          return endTurnUnsaved(live, turn, err);
        }
        return driveTurn(live, turn, signal);
      });
    },

    resume,

    async close(id) {
      const live = sessions.get(id);
      let rec: SessionRecord;
      if (live) {
        live.closing = true;
        if (live.turn) {
          live.abort?.abort(fail('AGENT_SESSION_CLOSED', 'the session was closed'));
          await live.turn.catch(() => undefined);
        }
        await live.tools.close().catch((err: unknown) => log?.warn('agent tools did not close', { session: id, error: String(err) }));
        sessions.delete(id);
        rec = live.record;
      } else {
        await unloading.get(id);
        rec = await recordOf(id);
      }
      if (rec.state === 'closed') return info(rec);
      rec.state = 'closed';
      rec.pause = null;
      rec.pending_turn = null;
      emit(rec, 'session.closed', info(rec));
      await saveRecord(rec).catch((err: unknown) => {
        unsaved.set(id, rec);
        throw err;
      });
      rooms.release(id);
      return info(rec);
    },

    async get(id) {
      return info(await recordOf(id));
    },

    async list(filter = {}) {
      const stored = await call('persistence', 'fetchAll', undefined, () => persistence.fetchAll());
      const byId = new Map(stored.map((r) => [r.id, r]));
      for (const r of stored) if (!known.has(r.id)) known.set(r.id, r);
      for (const [id, r] of unsaved) byId.set(id, r);
      for (const [id, l] of sessions) byId.set(id, l.record);
      const out = [...byId.values()]
        .filter((r) => (filter.agent_type === undefined || r.agent_type === filter.agent_type) && (filter.owner === undefined || r.owner === filter.owner) && (filter.state === undefined || r.state === filter.state))
        .sort((a, b) => b.created_at.localeCompare(a.created_at));
      return out.slice(0, filter.limit ?? out.length).map(info);
    },

    async transcript(id, options = {}) {
      await recordOf(id);
      return call('storage', 'readTranscript', id, () => storage.readTranscript(id, options));
    },

    async budgets(id) {
      await index();
      const live = sessions.get(id);
      const rec = live?.record ?? (await recordOf(id));
      const profile = live?.profile ?? (await loadProfile(rec.agent_type, rec.id, rec.variables));
      const date = utcDay(clock());
      return {
        session: { limit: sessionLimits(profile.budgets.session, rec.budget_extra), used: clone(rec.usage) },
        day: { date, limit: clone(profile.budgets.day), used: dayUsage(known.values(), rec.agent_type, date) },
      };
    },

    subscribe(id, after, listener) {
      return rooms.subscribe(id, after, listener, (sessions.get(id)?.record ?? known.get(id))?.event_seq);
    },

    onEvent: (listener) => rooms.onEvent(listener),

    disabled() {
      return [...health.keys()].filter((type) => disabledNow(type) !== undefined).sort();
    },

    async recover() {
      const stored = await call('persistence', 'fetchAll', undefined, () => persistence.fetchAll());
      for (const r of stored) if (!known.has(r.id)) known.set(r.id, r);
      const interrupted = stored.filter((r) => r.state !== 'closed' && r.state !== 'paused' && (r.pending_turn !== null || r.state === 'running'));
      const resumed: string[] = [];
      const failed: Array<{ id: string; error: string }> = [];
      await Promise.all(interrupted.map(async (r) => {
        try {
          await resume(r.id);
          resumed.push(r.id);
        } catch (err) {
          failed.push({ id: r.id, error: err instanceof Error ? err.message : String(err) });
        }
      }));
      return { resumed, failed };
    },

    shutdown(options = {}) {
      stopped ??= (async () => {
        // 1. Stop intake before the first await: every public call now answers AGENT_RUNTIME_STOPPING.
        stopping = true;
        for (const t of timers) clearInterval(t);
        // 2. Let running turns finish within the grace period, then abort the rest (their pending_turn stays set).
        const running = (): Array<Promise<unknown>> => [...sessions.values()].flatMap((l) => (l.turn ? [l.turn.catch(() => undefined)] : []));
        await settleWithin(running(), options.graceMs ?? DEFAULT_GRACE_MS);
        for (const l of sessions.values()) l.abort?.abort(fail('AGENT_RUNTIME_STOPPING', 'the agent runtime is shutting down'));
        await settleWithin(running(), 1000);
        await Promise.all([...unloading.values()]);
        // 3. Final sync of every record (NFR2.2), then 4. close every session's tools.
        await syncing;
        await syncNow(true);
        await Promise.all([...sessions.values()].map((l) => l.tools.close().catch(() => undefined)));
        sessions.clear();
      })();
      return stopped;
    },
  };
}

async function settleWithin(promises: Array<Promise<unknown>>, ms: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(promises), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
