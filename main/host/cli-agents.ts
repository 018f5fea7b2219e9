/**
 * `tessera agent …`: Tessera's agents over the HTTP API of a running Tessera (issue 17; README "Agents"; cli-api.ts
 * for `--url`/`--token`/`--data`). What an operator uses to talk to an agent from a terminal, follow a session,
 * raise a paused session's budget and decide the agents' proposals.
 *
 * - `agent list`, `agent open TYPE [--metadata JSON]`, `agent say SESSION TEXT…` (streams the answer from the
 *   session's room while the turn runs), `agent sessions [--type T] [--state S] [--limit N]`, `agent show SESSION`,
 *   `agent transcript SESSION [--after N] [--limit N]`, `agent budgets SESSION`,
 *   `agent resume SESSION [--tokens N] [--tool-calls N] [--wall-ms N] [--model-calls N]`, `agent close SESSION`,
 *   `agent proposals [--session S] [--state S]`, `agent approve ID`, `agent reject ID`, `agent watch SESSION [--after N]`.
 * - `--json` prints the API's answer (for `watch`: one event per line). A failed or paused turn exits 1.
 */
import WebSocket from 'ws';
import { TesseraError, fromErrorData } from '../common/errors.js';
import type { AgentEvent, SessionInfo, TranscriptEntry, TurnResult, Usage, Budgets } from '../runtime/agents/types.js';
import type { AgentSummary, ProposalView } from '../runtime/orchestrator/types.js';
import { apiClient, apiConnection, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { CliIo, Command } from './cli.js';

type Values = Record<string, string | boolean | undefined>;
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const enc = encodeURIComponent;
const json = { json: { type: 'boolean' } } as const;
const jsonFlag: [string, string] = ['--json', 'Print the answer as JSON.'];
const SESSION_STATES = ['idle', 'running', 'paused', 'closed'];
const PROPOSAL_STATES = ['refused', 'awaiting_approval', 'rejected', 'approved', 'executing', 'executed', 'failed'];

function exact(positionals: string[], n: number, usage: string): string[] {
  if (positionals.length !== n) throw new TesseraError('CONFIG_INVALID', `Usage: ${usage}`);
  return positionals;
}

function print(values: Values, io: CliIo, answer: unknown, human: () => void): number {
  if (values['json']) io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
  else human();
  return 0;
}

/** A whole number flag within [min, max], or undefined when absent. */
function integer(values: Values, flag: string, min: number, max: number): number | undefined {
  const text = str(values[flag]);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) throw new TesseraError('CONFIG_INVALID', `--${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}.`);
  return n;
}

function oneOf(values: Values, flag: string, allowed: readonly string[]): string | undefined {
  const v = str(values[flag]);
  if (v !== undefined && !allowed.includes(v)) throw new TesseraError('CONFIG_INVALID', `--${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}.`);
  return v;
}

const usageLine = (u: Usage) => `${u.tokens} tokens, ${u.model_calls} model calls, ${u.tool_calls} tool calls, ${Math.round(u.wall_ms)} ms`;

function describeSession(s: SessionInfo, io: CliIo): void {
  io.stdout(`${s.id}  ${s.agent_type}  ${s.state}${s.degraded ? ' (degraded: rule-based answers)' : ''}  owner ${s.owner}\n`);
  io.stdout(`  created ${s.created_at}  last active ${s.last_active_at}\n  used ${usageLine(s.usage)}\n`);
  if (s.pause) io.stdout(`  paused: ${s.pause.budget} (${s.pause.scope}) ${s.pause.used}/${s.pause.limit} before ${s.pause.at} — tessera agent resume ${s.id} --${s.pause.budget.replace('_', '-')} N\n`);
  if (Object.keys(s.metadata).length > 0) io.stdout(`  metadata ${JSON.stringify(s.metadata)}\n`);
}

function describeProposal(p: ProposalView, io: CliIo): void {
  const need = p.state === 'awaiting_approval' ? `  (needs ${p.approval.need}: tessera agent approve|reject ${p.id})` : '';
  io.stdout(`${p.id}  ${p.state}  ${p.action}  — ${p.text}${need}\n`);
  for (const v of p.policies.filter((x) => x.verdict === 'NACK')) io.stdout(`  refused by ${v.plugin}: ${v.reason}\n`);
  if (p.error) io.stdout(`  error ${p.error.code}: ${p.error.message}\n`);
}

function describeEntry(e: TranscriptEntry, io: CliIo): void {
  const line = (() => {
    switch (e.type) {
      case 'user': return `${e.by}: ${e.text}`;
      case 'assistant': return `assistant${e.source === 'fallback' ? ' (rules)' : ''}: ${e.text}${e.tool_calls.length > 0 ? `  [calls ${e.tool_calls.map((c) => c.name).join(', ')}]` : ''}`;
      case 'tool_call': return `tool ${e.call.name} ${JSON.stringify(e.call.arguments)}`;
      case 'tool_result': return `tool result ${e.ok ? 'ok' : `error ${e.error?.code ?? ''}`}: ${e.content.length > 200 ? `${e.content.slice(0, 200)}…` : e.content}`;
      case 'turn_end': return `turn ${e.outcome}${e.error ? ` (${e.error.code}: ${e.error.message})` : ''}`;
    }
  })();
  io.stdout(`#${e.seq}  ${line}\n`);
}

/** One event as a line a person reads (`message.delta` is left to `say`: the whole answer comes as `message.assistant`). */
function eventLine(e: AgentEvent): string | undefined {
  const d = e.data;
  const entry = d['entry'] as TranscriptEntry | undefined;
  switch (e.type) {
    case 'message.delta': return undefined;
    case 'message.user':
    case 'message.assistant':
    case 'tool.call':
    case 'tool.result': {
      if (!entry) break;
      const lines: string[] = [];
      describeEntry(entry, { stdout: (t) => lines.push(t.replace(/^#\d+ {2}/, '').trimEnd()), stderr: () => undefined, env: {} });
      return `#${e.seq} ${e.type}  ${lines.join(' ')}`;
    }
    case 'session.state': {
      const pause = d['pause'] as SessionInfo['pause'] | undefined;
      return `#${e.seq} session.state  ${String(d['state'])}${pause ? ` (${pause.budget}, ${pause.scope}: ${pause.used}/${pause.limit})` : ''}`;
    }
    case 'turn.failed': {
      const error = d['error'] as { code?: string; message?: string } | undefined;
      return `#${e.seq} turn.failed  ${error ? `${error.code}: ${error.message}` : ''}`;
    }
    default: break;
  }
  const text = JSON.stringify(d);
  return `#${e.seq} ${e.type}  ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`;
}

/** Frames of a session's room, as the server sends them (main/host/http/agents.ts). */
type RoomFrame = { type: 'hello'; v: number; session: string; gap: boolean } | { type: 'event'; event: AgentEvent } | { type: 'pong' } | { type: 'error'; error: unknown };

/**
 * Opens `/ws/agents/SESSION?after=N`. Resolves once the server said hello; frames go to `onFrame`, the end to
 * `onClose`. A refused upgrade or an error frame before hello rejects with the server's error.
 */
function openRoom(values: Values, io: CliIo, session: string, after: number, onFrame: (frame: RoomFrame, socket: WebSocket) => void, onClose: (code: number) => void): Promise<{ socket: WebSocket; gap: boolean }> {
  const { url, token } = apiConnection(values, io);
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws/agents/${enc(session)}?after=${after}`, ['tessera.v1'], { headers: { authorization: `Bearer ${token}` } });
  return new Promise((resolve, reject) => {
    let hello = false;
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        let error: unknown;
        try {
          error = (JSON.parse(body) as { error?: unknown }).error;
        } catch {
          error = undefined;
        }
        reject(error === undefined ? new TesseraError('INTERNAL', `HTTP ${res.statusCode} from the agent room.`) : fromErrorData(error));
      });
    });
    socket.on('error', (err) => {
      if (!hello) reject(new TesseraError('NOT_READY', `Cannot reach Tessera at ${url}: ${err.message}. Is it running (tessera start)?`));
    });
    socket.on('message', (data) => {
      let frame: RoomFrame;
      try {
        frame = JSON.parse(String(data)) as RoomFrame;
      } catch {
        return;
      }
      if (!hello && frame.type === 'error') {
        reject(fromErrorData(frame.error));
        return;
      }
      if (!hello && frame.type === 'hello') {
        hello = true;
        resolve({ socket, gap: frame.gap });
      }
      onFrame(frame, socket);
    });
    socket.on('close', (code) => onClose(code));
  });
}

const listCommand: Command = {
  name: 'agent list',
  summary: 'The agents this credential may talk to: type, title, whether a model backs it, degraded or off.',
  usage: 'tessera agent list [--json] [--url URL] [--token T]',
  options: { ...connection, ...json },
  flags: [jsonFlag, ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const { agents } = (await apiClient(values, io)('GET', '/api/agents')) as unknown as { agents: AgentSummary[] };
      return print(values, io, agents, () => {
        if (agents.length === 0) io.stdout('no agents\n');
        for (const a of agents) {
          const state = !a.enabled ? 'off' : a.degraded ? 'degraded (rules)' : a.model ? 'model' : 'rules';
          io.stdout(`${a.type.padEnd(16)} ${state.padEnd(16)} ${a.title}  (for ${a.roles.join(', ')})\n`);
        }
      });
    });
  },
};

const openCommand: Command = {
  name: 'agent open',
  summary: 'Open a session with an agent; prints its id.',
  usage: 'tessera agent open TYPE [--metadata JSON] [--json] [--url URL] [--token T]',
  options: { ...connection, ...json, metadata: { type: 'string' } },
  flags: [['--metadata JSON', 'The session\'s metadata, a JSON object (e.g. {"product_runtime_session_id":"…"}).'], jsonFlag, ...connectionFlags],
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [type] = exact(positionals, 1, this.usage);
      let metadata: unknown;
      const text = str(values['metadata']);
      if (text !== undefined) {
        try {
          metadata = JSON.parse(text);
        } catch {
          metadata = undefined;
        }
        if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new TesseraError('CONFIG_INVALID', `--metadata must be a JSON object, got ${JSON.stringify(text)}.`);
      }
      const session = (await apiClient(values, io)('POST', '/api/agents/sessions', { agent_type: type, ...(metadata !== undefined ? { metadata } : {}) })) as unknown as SessionInfo;
      return print(values, io, session, () => io.stdout(`${session.id}\n`));
    });
  },
};

const sayCommand: Command = {
  name: 'agent say',
  summary: 'Say something to an agent and print its answer as it is written (streamed from the session\'s room), then its proposals.',
  usage: 'tessera agent say SESSION TEXT… [--json] [--url URL] [--token T]',
  options: { ...connection, ...json },
  flags: [['--json', 'Print the turn\'s result as JSON (no streaming).'], ...connectionFlags],
  positionals: 1000,
  run(values, positionals, io) {
    return reporting(io, async () => {
      if (positionals.length < 2) throw new TesseraError('CONFIG_INVALID', `Usage: ${this.usage}`);
      const [session, ...words] = positionals as [string, ...string[]];
      const text = words.join(' ');
      const api = apiClient(values, io);
      // Streaming: subscribe first, and wait for a pong — the server answers it after the room's replay, so every
      // later event is of the turn about to start. The first turn.started after it names the turn to print.
      let streamed = false;
      let room: WebSocket | undefined;
      if (!values['json']) {
        let barrier = false;
        let turn: string | undefined;
        let pong: () => void = () => undefined;
        const ponged = new Promise<void>((resolve) => (pong = resolve));
        try {
          ({ socket: room } = await openRoom(values, io, session, 0, (frame) => {
            if (frame.type === 'pong') {
              barrier = true;
              pong();
            } else if (frame.type === 'event' && barrier) {
              const e = frame.event;
              if (e.type === 'turn.started' && turn === undefined) turn = String(e.data['turn']);
              else if (e.type === 'message.delta' && e.data['turn'] === turn && typeof e.data['text'] === 'string') {
                io.stdout(e.data['text']);
                streamed = true;
              }
            }
          }, () => pong()));
          room.send(JSON.stringify({ type: 'ping' }));
          await ponged;
        } catch {
          // No room (an older Tessera, a refused subscription): the answer is printed whole when the turn ends.
          room?.terminate();
          room = undefined;
        }
      }
      try {
        const result = (await api('POST', `/api/agents/sessions/${enc(session)}/messages`, { text })) as unknown as TurnResult & { proposals: ProposalView[] };
        if (values['json']) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
        else {
          if (streamed) io.stdout('\n');
          else if (result.text) io.stdout(`${result.text}\n`);
          for (const p of result.proposals) describeProposal(p, io);
        }
        if (result.outcome === 'paused' && result.pause) {
          io.stderr(`paused: the ${result.pause.scope} budget of ${result.pause.budget} is used (${result.pause.used}/${result.pause.limit}); an operator resumes it: tessera agent resume ${session} --${result.pause.budget.replace('_', '-')} N\n`);
        }
        if (result.outcome === 'failed') io.stderr(`turn failed${result.error ? ` ${result.error.code}: ${result.error.message}` : ''}\n`);
        return result.outcome === 'completed' ? 0 : 1;
      } finally {
        room?.close(1000);
      }
    });
  },
};

const sessionsCommand: Command = {
  name: 'agent sessions',
  summary: 'Agent sessions, newest first.',
  usage: `tessera agent sessions [--type T] [--state ${SESSION_STATES.join('|')}] [--limit N] [--json] [--url URL] [--token T]`,
  options: { ...connection, ...json, type: { type: 'string' }, state: { type: 'string' }, limit: { type: 'string' } },
  flags: [['--type T', 'Only sessions of this agent type.'], ['--state S', 'Only sessions in this state.'], ['--limit N', 'At most N sessions (default 50, at most 500).'], jsonFlag, ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const query = new URLSearchParams();
      const type = str(values['type']);
      const state = oneOf(values, 'state', SESSION_STATES);
      const limit = integer(values, 'limit', 1, 500);
      if (type) query.set('agent_type', type);
      if (state) query.set('state', state);
      if (limit !== undefined) query.set('limit', String(limit));
      const { sessions } = (await apiClient(values, io)('GET', `/api/agents/sessions${query.size > 0 ? `?${query}` : ''}`)) as unknown as { sessions: SessionInfo[] };
      return print(values, io, sessions, () => {
        if (sessions.length === 0) io.stdout('no sessions\n');
        for (const s of sessions) io.stdout(`${s.id}  ${s.agent_type.padEnd(14)} ${s.state.padEnd(7)} ${s.owner.padEnd(9)} ${s.last_active_at}${s.degraded ? '  degraded' : ''}\n`);
      });
    });
  },
};

/** `agent show|budgets|close SESSION`: one request about one session. */
function sessionCommand(verb: 'show' | 'budgets' | 'close', summary: string): Command {
  return {
    name: `agent ${verb}`,
    summary,
    usage: `tessera agent ${verb} SESSION [--json] [--url URL] [--token T]`,
    options: { ...connection, ...json },
    flags: [jsonFlag, ...connectionFlags],
    positionals: 1,
    run(values, positionals, io) {
      return reporting(io, async () => {
        const [id] = exact(positionals, 1, this.usage);
        const api = apiClient(values, io);
        if (verb === 'budgets') {
          const b = (await api('GET', `/api/agents/sessions/${enc(id!)}/budgets`)) as unknown as { session: { limit: Budgets; used: Usage }; day: { date: string; limit: Budgets; used: Usage } };
          return print(values, io, b, () => {
            const row = (name: string, limit: Budgets, used: Usage) => {
              const cell = (k: keyof Budgets) => `${k} ${used[k]}/${limit[k] ?? '∞'}`;
              io.stdout(`${name.padEnd(18)} ${(['tokens', 'model_calls', 'tool_calls', 'wall_ms'] as const).map(cell).join('  ')}\n`);
            };
            row('session', b.session.limit, b.session.used);
            row(`day ${b.day.date}`, b.day.limit, b.day.used);
          });
        }
        const s = (await api(verb === 'close' ? 'DELETE' : 'GET', `/api/agents/sessions/${enc(id!)}`)) as unknown as SessionInfo;
        return print(values, io, s, () => describeSession(s, io));
      });
    },
  };
}

const transcriptCommand: Command = {
  name: 'agent transcript',
  summary: 'A session\'s transcript: what was said, each tool call and result, how each turn ended.',
  usage: 'tessera agent transcript SESSION [--after N] [--limit N] [--json] [--url URL] [--token T]',
  options: { ...connection, ...json, after: { type: 'string' }, limit: { type: 'string' } },
  flags: [['--after N', 'Only entries after seq N.'], ['--limit N', 'At most N entries (default 200, at most 1000).'], jsonFlag, ...connectionFlags],
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [id] = exact(positionals, 1, this.usage);
      const query = new URLSearchParams();
      const after = integer(values, 'after', 0, Number.MAX_SAFE_INTEGER);
      const limit = integer(values, 'limit', 1, 1000);
      if (after !== undefined) query.set('after', String(after));
      if (limit !== undefined) query.set('limit', String(limit));
      const { entries } = (await apiClient(values, io)('GET', `/api/agents/sessions/${enc(id!)}/transcript${query.size > 0 ? `?${query}` : ''}`)) as unknown as { entries: TranscriptEntry[] };
      return print(values, io, entries, () => {
        if (entries.length === 0) io.stdout('no entries\n');
        for (const e of entries) describeEntry(e, io);
      });
    });
  },
};

const resumeCommand: Command = {
  name: 'agent resume',
  summary: 'Resume a session (operator): a paused one continues with its budgets raised by the amounts given.',
  usage: 'tessera agent resume SESSION [--tokens N] [--tool-calls N] [--wall-ms N] [--model-calls N] [--json] [--url URL] [--token T]',
  options: { ...connection, ...json, tokens: { type: 'string' }, 'tool-calls': { type: 'string' }, 'wall-ms': { type: 'string' }, 'model-calls': { type: 'string' } },
  flags: [['--tokens N', 'Add N tokens to the session\'s budget.'], ['--tool-calls N', 'Add N tool calls.'], ['--wall-ms N', 'Add N milliseconds of wall time.'], ['--model-calls N', 'Add N model calls.'], jsonFlag, ...connectionFlags],
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [id] = exact(positionals, 1, this.usage);
      const extend: Budgets = {};
      for (const [flag, key, max] of [['tokens', 'tokens', 100_000_000], ['tool-calls', 'tool_calls', 1_000_000], ['wall-ms', 'wall_ms', 7 * 24 * 3600 * 1000], ['model-calls', 'model_calls', 1_000_000]] as const) {
        const n = integer(values, flag, 1, max);
        if (n !== undefined) extend[key] = n;
      }
      const s = (await apiClient(values, io)('POST', `/api/agents/sessions/${enc(id!)}/resume`, Object.keys(extend).length > 0 ? { extend } : {})) as unknown as SessionInfo;
      return print(values, io, s, () => describeSession(s, io));
    });
  },
};

const proposalsCommand: Command = {
  name: 'agent proposals',
  summary: 'The agents\' proposals: action, state, the card\'s sentence, who must approve.',
  usage: `tessera agent proposals [--session S] [--state ${PROPOSAL_STATES.join('|')}] [--json] [--url URL] [--token T]`,
  options: { ...connection, ...json, session: { type: 'string' }, state: { type: 'string' } },
  flags: [['--session S', 'Only this agent session\'s proposals.'], ['--state S', 'Only proposals in this state.'], jsonFlag, ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const query = new URLSearchParams();
      const session = str(values['session']);
      const state = oneOf(values, 'state', PROPOSAL_STATES);
      if (session) query.set('session', session);
      if (state) query.set('state', state);
      const { proposals } = (await apiClient(values, io)('GET', `/api/agents/proposals${query.size > 0 ? `?${query}` : ''}`)) as unknown as { proposals: ProposalView[] };
      return print(values, io, proposals, () => {
        if (proposals.length === 0) io.stdout('no proposals\n');
        for (const p of proposals) describeProposal(p, io);
      });
    });
  },
};

function decideCommand(decision: 'approve' | 'reject'): Command {
  return {
    name: `agent ${decision}`,
    summary: decision === 'approve' ? 'Approve a proposal: the runtime executes it once and prints the outcome.' : 'Reject a proposal; it is never executed.',
    usage: `tessera agent ${decision} ID [--json] [--url URL] [--token T]`,
    options: { ...connection, ...json },
    flags: [jsonFlag, ...connectionFlags],
    positionals: 1,
    run(values, positionals, io) {
      return reporting(io, async () => {
        const [id] = exact(positionals, 1, this.usage);
        const p = (await apiClient(values, io)('POST', `/api/agents/proposals/${enc(id!)}/${decision}`)) as unknown as ProposalView;
        print(values, io, p, () => describeProposal(p, io));
        return p.state === 'failed' ? 1 : 0;
      });
    },
  };
}

const watchCommand: Command = {
  name: 'agent watch',
  summary: 'Follow a session\'s events live (its room) until it is closed or Ctrl+C; reconnect with --after the last seq seen.',
  usage: 'tessera agent watch SESSION [--after N] [--json] [--url URL] [--token T]',
  options: { ...connection, ...json, after: { type: 'string' } },
  flags: [['--after N', 'Start after event seq N (default 0: every event still buffered).'], ['--json', 'Print each event as one JSON line (message.delta included).'], ...connectionFlags],
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [id] = exact(positionals, 1, this.usage);
      const after = integer(values, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
      let failed: TesseraError | undefined;
      let end: (code: number) => void = () => undefined;
      const ended = new Promise<number>((resolve) => (end = resolve));
      let pong: () => void = () => undefined;
      const ponged = new Promise<void>((resolve) => (pong = resolve));
      let last = after;
      // Frames that arrive with hello are handled before this await returns: the callback gets the socket itself.
      const { socket, gap } = await openRoom(values, io, id!, after, (frame, ws) => {
        if (frame.type === 'pong') pong();
        if (frame.type === 'error') failed = fromErrorData(frame.error);
        if (frame.type !== 'event') return;
        last = frame.event.seq;
        if (values['json']) io.stdout(`${JSON.stringify(frame.event)}\n`);
        else {
          const line = eventLine(frame.event);
          if (line !== undefined) io.stdout(`${line}\n`);
        }
        if (frame.event.type === 'session.closed') ws.close(1000);
      }, (code) => {
        pong();
        end(code);
      });
      if (gap) io.stderr(`note: events after #${after} are no longer all buffered; the transcript has them: tessera agent transcript ${id}\n`);
      // A session closed before this subscription sends no more events (its room may be gone): once the replay is
      // in (the pong comes after it), ask whether it is closed. Closed later, its session.closed event ends the watch.
      socket.send(JSON.stringify({ type: 'ping' }));
      await ponged;
      if (socket.readyState === WebSocket.OPEN) {
        const session = (await apiClient(values, io)('GET', `/api/agents/sessions/${enc(id!)}`)) as unknown as SessionInfo;
        if (session.state === 'closed') socket.close(1000);
      }
      const code = await ended;
      if (failed) throw failed;
      if (code !== 1000 && code !== 1005) io.stderr(`the room closed (${code}); continue with: tessera agent watch ${id} --after ${last}\n`);
      return code === 1000 || code === 1005 ? 0 : 1;
    });
  },
};

export const AGENT_COMMANDS: Command[] = [
  listCommand,
  openCommand,
  sayCommand,
  sessionsCommand,
  sessionCommand('show', 'One session: its agent, state, owner, usage, why it is paused.'),
  transcriptCommand,
  sessionCommand('budgets', 'A session\'s budgets and use, and its agent type\'s for today (UTC).'),
  resumeCommand,
  sessionCommand('close', 'Close a session: it keeps its transcript and takes no more messages.'),
  proposalsCommand,
  decideCommand('approve'),
  decideCommand('reject'),
  watchCommand,
];
