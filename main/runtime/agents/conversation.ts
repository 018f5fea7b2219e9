/**
 * From a session's transcript to what the model reads and what a turn answers. Pure functions: the transcript is
 * the truth (a resumed session rebuilds everything from it), so the same entries always give the same messages.
 */
import type { AgentProfile, ChatMessage, ToolCall, ToolOutcome, TranscriptEntry, TurnResult } from './types.js';

/** A transcript entry before the runtime numbers and dates it. */
export type EntryBody = DistributiveOmit<TranscriptEntry, 'seq' | 'at' | 'turn'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

type ToolResultEntry = Extract<TranscriptEntry, { type: 'tool_result' }>;

/** What the model reads of a tool's result: its content, or the error when it failed with none (FR4.6). */
function toolText(e: ToolResultEntry): string {
  if (e.ok || e.content !== '') return e.content;
  return `error ${e.error?.code ?? 'AGENT_TOOL_FAILED'}: ${e.error?.message ?? 'the tool failed'}`;
}

/**
 * The Chat Completions messages of a transcript. Only a model answer's tool calls are replayed as `tool_calls`
 * (a fallback responder's calls are its own business); a call left without a result by an earlier failure gets a
 * placeholder result, since endpoints refuse an assistant `tool_calls` message whose calls are not all answered.
 */
export function chatMessages(systemPrompt: string, transcript: readonly TranscriptEntry[]): ChatMessage[] {
  const out: ChatMessage[] = [{ role: 'system', content: systemPrompt }];
  let open: string[] = [];
  const closeOpen = (): void => {
    for (const id of open) out.push({ role: 'tool', tool_call_id: id, content: 'error: no result (the call was interrupted)' });
    open = [];
  };
  for (const e of transcript) {
    if (e.type === 'user') {
      closeOpen();
      out.push({ role: 'user', content: e.text });
    } else if (e.type === 'assistant') {
      closeOpen();
      if (e.source === 'model' && e.tool_calls.length > 0) {
        out.push({
          role: 'assistant',
          content: e.text === '' ? null : e.text,
          tool_calls: e.tool_calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: JSON.stringify(c.arguments) } })),
        });
        open = e.tool_calls.map((c) => c.id);
      } else {
        out.push({ role: 'assistant', content: e.text });
      }
    } else if (e.type === 'tool_result' && open.includes(e.call_id)) {
      out.push({ role: 'tool', tool_call_id: e.call_id, content: toolText(e) });
      open = open.filter((id) => id !== e.call_id);
    }
  }
  return out;
}

/**
 * Tool call ids that are unique within the session: the idempotency key is `<session>:<call id>`, and some local
 * servers number their calls from 0 in every answer — a repeated id would make a server skip a new call as a replay.
 */
export function uniqueCalls(calls: readonly ToolCall[], transcript: readonly TranscriptEntry[], seq: number): ToolCall[] {
  const seen = new Set<string>();
  for (const e of transcript) {
    if (e.type === 'assistant') for (const c of e.tool_calls) seen.add(c.id);
    if (e.type === 'tool_call') seen.add(e.call.id);
  }
  return calls.map((c, i) => {
    const id = c.id === '' || seen.has(c.id) ? `call_${seq}_${i}` : c.id;
    seen.add(id);
    return { ...c, id };
  });
}

/** May this profile's agent call that tool? (`tools` absent: every tool of its servers.) */
export function toolAllowed(profile: AgentProfile, name: string): boolean {
  return profile.tools === undefined || profile.tools.includes(name);
}

/** The answer of a turn, read back from its transcript entries. */
export function turnResult(
  entries: readonly TranscriptEntry[],
  turn: { id: string; trace_id: string },
  outcome: TurnResult['outcome'],
  extra: Pick<TurnResult, 'error' | 'pause'> = {},
): TurnResult {
  const own = entries.filter((e) => e.turn === turn.id);
  let text = '';
  let source: TurnResult['source'] = 'model';
  const calls = new Map<string, { call: ToolCall; outcome: ToolOutcome }>();
  for (const e of own) {
    if (e.type === 'assistant') {
      text = e.text;
      source = e.source;
    } else if (e.type === 'tool_call') {
      calls.set(e.call.id, { call: e.call, outcome: { ok: false, content: '', error: { code: 'AGENT_TOOL_FAILED', message: 'no result' } } });
    } else if (e.type === 'tool_result') {
      const c = calls.get(e.call_id);
      if (c) c.outcome = { ok: e.ok, content: e.content, ...(e.error ? { error: e.error } : {}) };
    }
  }
  return {
    turn: turn.id,
    trace_id: turn.trace_id,
    outcome,
    text: outcome === 'completed' ? text : '',
    source,
    tool_calls: [...calls.values()],
    ...(extra.error ? { error: extra.error } : {}),
    ...(extra.pause ? { pause: extra.pause } : {}),
  };
}
