/**
 * The turn engine of the agent runtime: one turn from the user's message to its `turn_end`, model ⇄ tools, with
 * budgets reserved before each call and settled after, the degraded paths, and the events of each step.
 *
 * Durability rule (ISSUE17-PLAN "Decisions"): a transcript entry is persisted BEFORE the thing it describes
 * happens — `pending_turn` and the user message before the model call, `tool_call` before the tool runs,
 * `turn_end` last. {@link Turns.driveTurn} re-reads the turn's entries and does the next missing step, so the same
 * code runs a new turn, continues a paused one and finishes one a crash interrupted (a dangling `tool_call` runs
 * again with the same idempotency key; a turn whose last entry is the user message calls the model again).
 */
import { addUsage, dayUsage, emptyUsage, remaining, sessionLimits, utcDay, type BudgetLedger } from './budgets.js';
import { chatMessages, toolAllowed, turnResult, uniqueCalls, type EntryBody } from './conversation.js';
import {
  AgentError,
  isAgentError,
  type AgentEventType,
  type AgentProfile,
  type AgentRuntimeConfig,
  type Budgets,
  type ChatResult,
  type DegradedMode,
  type ModelClient,
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

const DEFAULT_MAX_TOKENS = 512;

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/**
 * The tokens a model call cost: the endpoint's usage when both numbers are counts (integers ≥ 0), else the
 * estimate (4 characters per token of the prompt and of the answer). Never negative.
 */
function tokensOf(result: ChatResult, prompt: number): { prompt_tokens: number; completion_tokens: number } {
  const { prompt_tokens: p, completion_tokens: c } = result.usage;
  if (isCount(p) && isCount(c)) return { prompt_tokens: p, completion_tokens: c };
  const answer = result.text.length + result.tool_calls.reduce((n, t) => n + t.name.length + JSON.stringify(t.arguments).length, 0);
  return { prompt_tokens: prompt, completion_tokens: Math.ceil(answer / 4) };
}
const DEFAULT_MAX_TOOL_ROUNDS = 8;

/** A session loaded in memory. Its `record` is the one object every change goes to (and `known` points at). */
export interface Live {
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

export type Turn = NonNullable<SessionRecord['pending_turn']>;

/** The model was found down for an agent type: until `until`, it is not called (fallback answers, or the type is off). */
export interface Health {
  mode: DegradedMode;
  reason: string;
  until: number;
}

/** What the engine needs of the runtime that owns the sessions. */
export interface TurnDeps {
  config: Pick<AgentRuntimeConfig, 'storage' | 'responders' | 'secret'>;
  model: ModelClient;
  clock: () => number;
  ledger: BudgetLedger;
  /** Every record the runtime knows (the per-day budgets sum them). */
  known: ReadonlyMap<string, SessionRecord>;
  /** Per agent type: the model was found down. */
  health: Map<string, Health>;
  degrade(type: string, mode: DegradedMode, reason: string): void;
  emit(rec: SessionRecord, type: AgentEventType, data: Record<string, unknown>, traceId?: string): void;
  /** Runs an adapter call; a failure is reported (error event) and thrown as AGENT_ADAPTER_FAILED. */
  call<T>(adapter: string, op: string, session: string | undefined, fn: () => Promise<T>): Promise<T>;
  /** Saves a record; a failure is reported and left to the periodic sync. */
  saveSoft(rec: SessionRecord): Promise<void>;
  info(rec: SessionRecord): SessionInfo;
  stopping(): boolean;
}

export interface Turns {
  driveTurn(live: Live, turn: Turn, signal: AbortSignal): Promise<TurnResult>;
  /** Persists one transcript entry (numbered and dated here) and emits its event. */
  append(live: Live, turn: Turn, body: EntryBody): Promise<TranscriptEntry>;
  /** Ends a turn whose transcript cannot be written (without a `turn_end`: the write is what failed). */
  endTurnUnsaved(live: Live, turn: Turn, err: unknown): Promise<TurnResult>;
  setState(live: Live, state: SessionState, traceId?: string): void;
  limits(live: Live): { session: Budgets; day: Budgets; dayUsed: Usage; date: string };
}

export function createTurns(d: TurnDeps): Turns {
  const { config, model, clock, ledger, known, health, degrade, emit, call, saveSoft, info } = d;
  const storage = config.storage;
  const iso = (): string => new Date(clock()).toISOString();

  function setState(live: Live, state: SessionState, traceId?: string): void {
    const rec = live.record;
    if (rec.state === state) return;
    rec.state = state;
    emit(rec, 'session.state', { state, ...(rec.pause ? { pause: rec.pause } : {}) }, traceId);
  }

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
    const tools = recordingTools(live, turn);
    let answer: Awaited<ReturnType<typeof responder>>;
    try {
      answer = await responder({
        session: info(rec), text: user?.type === 'user' ? user.text : '', transcript: live.transcript, tools: tools.tools,
        idempotencyKey: (suffix) => `${tools.prefix}${suffix}`, signal,
      });
    } catch (err) {
      if (signal.aborted || (isAgentError(err) && err.code === 'AGENT_ADAPTER_FAILED')) throw err;
      const e = isAgentError(err) ? err : new AgentError('AGENT_TOOL_FAILED', `fallback responder failed: ${String(err)}`);
      return endTurn(live, turn, 'failed', { code: e.code, message: e.message });
    }
    const calls: ToolCall[] = [];
    let unrecorded = 0;
    for (const c of answer.tool_calls ?? []) {
      const call: ToolCall = { id: c.id, name: c.name, arguments: c.arguments };
      calls.push(call);
      if (tools.recorded.has(c.id)) continue;
      // Not made through ctx.tools (so not recorded as it ran): recorded now, after the fact.
      unrecorded++;
      await append(live, turn, { type: 'tool_call', call, idempotency_key: `${tools.prefix}${c.id}` });
      await append(live, turn, { type: 'tool_result', call_id: c.id, ok: c.outcome.ok, content: c.outcome.content, ...(c.outcome.error ? { error: c.outcome.error } : {}) });
    }
    settle(live, { tool_calls: unrecorded, wall_ms: clock() - started });
    await append(live, turn, { type: 'assistant', text: answer.text, tool_calls: calls, source: 'fallback' });
    emitUsage(live, turn);
    return endTurn(live, turn, 'completed');
  }

  /**
   * The session's tools as a responder sees them: each call's `tool_call` entry is persisted before the tool runs
   * and its `tool_result` after (the durability rule), entries one at a time even when calls overlap. The call id
   * is the key's suffix when the key comes from `ctx.idempotencyKey` (`<session>:<turn>:<suffix>`).
   */
  function recordingTools(live: Live, turn: Turn): { tools: SessionTools; prefix: string; recorded: Set<string> } {
    const prefix = `${live.record.id}:${turn.id}:`;
    const recorded = new Set<string>();
    let writes: Promise<unknown> = Promise.resolve();
    const record = (body: EntryBody): Promise<TranscriptEntry> => {
      const written = writes.then(() => append(live, turn, body));
      writes = written.catch(() => undefined);
      return written;
    };
    const tools: SessionTools = {
      list: () => live.tools.list(),
      async call(name, args, options) {
        const key = options.idempotencyKey;
        const id = key.startsWith(prefix) ? key.slice(prefix.length) : `rule_${recorded.size + 1}`;
        recorded.add(id);
        await record({ type: 'tool_call', call: { id, name, arguments: args }, idempotency_key: key });
        // Wall time is settled for the whole responder, tools included (degradedStep).
        settle(live, { tool_calls: 1 });
        let outcome: ToolOutcome;
        try {
          outcome = await live.tools.call(name, args, options);
        } catch (err) {
          const error = { code: isAgentError(err) ? err.code : 'AGENT_TOOL_FAILED', message: err instanceof Error ? err.message : String(err) };
          await record({ type: 'tool_result', call_id: id, ok: false, content: '', error });
          throw err;
        }
        await record({ type: 'tool_result', call_id: id, ok: outcome.ok, content: outcome.content, ...(outcome.error ? { error: outcome.error } : {}) });
        return outcome;
      },
      // The session's tools are the runtime's to close, not a responder's.
      close: async () => undefined,
    };
    return { tools, prefix, recorded };
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
      result = await model.complete(
        { model: profile.model, ...(apiKey === undefined ? {} : { apiKey }), messages, tools },
        { signal, onDelta: (text) => emit(rec, 'message.delta', { turn: turn.id, text }, turn.trace_id) },
      );
    } catch (err) {
      ledger.release(rec.id, rec.agent_type, need);
      // A failed or malformed call still cost (at least) its prompt.
      settle(live, { tokens: prompt, model_calls: 1, wall_ms: clock() - started });
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
    const usage = tokensOf(result, prompt);
    settle(live, { tokens: usage.prompt_tokens + usage.completion_tokens, model_calls: 1, wall_ms: clock() - started });
    health.delete(rec.agent_type);
    if (rec.degraded) {
      rec.degraded = false;
      emit(rec, 'session.degraded', { degraded: false, reason: 'the model answered' }, turn.trace_id);
    }
    const calls = final ? [] : uniqueCalls(result.tool_calls, live.transcript, rec.transcript_seq + 1);
    await append(live, turn, {
      type: 'assistant', text: result.text, tool_calls: calls, source: 'model', usage,
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
      if (d.stopping() && signal.aborted) {
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

  return { driveTurn, append, endTurnUnsaved, setState, limits };
}
