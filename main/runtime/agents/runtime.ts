/**
 * The generic agent runtime (seed 003 FR1, FR2.7, NFR1, NFR2; issue 17 points 1, 4, 6, 7): sessions in memory,
 * everything persisted through the injected adapters, one turn at a time per session.
 * The turn itself (model ⇄ tools, budgets, degraded paths, durability order) is ./turns.ts; this file owns the
 * sessions: creating, loading, unloading, closing, syncing, recovering and shutting down.
 */
import { createMcpTools } from './mcp.js';
import { createOpenAiClient } from './model.js';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createBudgetLedger, dayUsage, emptyUsage, extendBudgets, hasRoom, sessionLimits, utcDay } from './budgets.js';
import { createRooms } from './rooms.js';
import { createTurns, type Health, type Live, type Turn } from './turns.js';
import {
  AgentError,
  isAgentError,
  type AgentErrorCode,
  type AgentEventType,
  type AgentProfile,
  type AgentRuntime,
  type AgentRuntimeConfig,
  type Budgets,
  type DegradedMode,
  type SessionInfo,
  type SessionRecord,
  type SessionTools,
  type TurnResult,
} from './types.js';

const DEFAULT_IDLE_MS = 15 * 60_000;
const DEFAULT_SYNC_MS = 30_000;
const DEFAULT_MAX_LOADED = 200;
const DEFAULT_ROOM_BUFFER = 1000;
const DEFAULT_DEGRADED_RETRY_MS = 30_000;
const DEFAULT_GRACE_MS = 10_000;
const MAX_MESSAGE_CHARS = 100_000;
const AGENT_TYPE_RE = /^[a-z][a-z0-9-]{0,63}$/;

const clone = <T>(value: T): T => structuredClone(value);

/** What listings see of a record (a copy: callers cannot change the live record). */
const info = (r: SessionRecord): SessionInfo => clone({
  id: r.id, agent_type: r.agent_type, state: r.state, owner: r.owner, metadata: r.metadata, created_at: r.created_at,
  updated_at: r.updated_at, last_active_at: r.last_active_at, usage: r.usage, pause: r.pause, degraded: r.degraded,
});

export function createAgentRuntime(config: AgentRuntimeConfig): AgentRuntime {
  const toolsFactory = config.tools ?? createMcpTools({ ...(config.inProcessServers ? { inProcessServers: config.inProcessServers } : {}), ...(config.logger ? { logger: config.logger } : {}) });
  const model = config.model ?? createOpenAiClient(config.logger ? { logger: config.logger } : {});

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
  const roomBuffer = config.roomBuffer ?? DEFAULT_ROOM_BUFFER;
  const rooms = createRooms({
    buffer: roomBuffer,
    loaded: (id) => sessions.has(id),
    onListenerError: (err) => log?.warn('agent event listener threw', { error: String(err) }),
  });
  const turns = createTurns({
    config, model, clock, ledger, known, health, degrade, emit, call, saveSoft, info, stopping: () => stopping,
  });
  const { driveTurn, append, endTurnUnsaved, setState, limits } = turns;
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
      return await toolsFactory(info(rec), [...profile.mcp_servers, ...sandbox.mcp_servers], sandbox);
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

  /**
   * At `maxLoadedSessions`, unloads the least recently used session that is not in a turn (saved first: the
   * returned promise) to make room for one more; AGENT_RATE_LIMITED only when every loaded session is busy.
   * `sessions` is kept in order of use (ensureLoaded moves a session it hands out to the end).
   */
  function makeRoom(): Promise<void> | undefined {
    if (loadedCount() < maxLoaded) return undefined;
    const idle = [...sessions.values()].find((l) => !l.turn && !l.closing);
    if (!idle) throw fail('AGENT_RATE_LIMITED', `all ${maxLoaded} loaded sessions are busy`);
    return unload(idle);
  }

  async function ensureLoaded(id: string): Promise<Live> {
    await unloading.get(id);
    const live = sessions.get(id);
    if (live) {
      sessions.delete(id);
      sessions.set(id, live);
      return live;
    }
    const pending = loading.get(id);
    if (pending) return pending;
    const room = makeRoom();
    const p = (async (): Promise<Live> => {
      await room;
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
      if (rec.pending_turn || rec.state === 'running') {
        // An unclean stop: events after the last saved event_seq were sent but not saved. Numbers jump a whole
        // room buffer ahead so that none repeats; clients that saw those events get a gap and reload.
        rec.event_seq += roomBuffer;
        loaded.dirty = true;
      }
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
    // Unloaded (to make room for another) between being loaded for this call and now: the caller tries again.
    if (sessions.get(live.record.id) !== live) {
      throw live.closing
        ? fail('AGENT_SESSION_CLOSED', `agent session ${live.record.id} is closed`)
        : fail('AGENT_SESSION_BUSY', `agent session ${live.record.id} was just unloaded; try again`);
    }
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
      const room = makeRoom();
      creating++;
      try {
        await room;
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
