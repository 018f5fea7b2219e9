/**
 * The guide agent's chat logic (renderer/src/areas/guide-agent-model.ts, issue 17 point 8) and the agent client
 * (main/common/agents-api.ts): which session belongs to the journey, each transcript entry shown once whichever way it
 * arrives, the cards the traveller decides, the room's frames once and in order, the routes the client calls, and
 * that the runtime's types still fit the shapes main/common restates.
 */
import { describe, expect, it } from 'vitest';
import { agentRoomReader, createAgentClient } from '../../main/common/agents-api.js';
import type { AgentProposalView, AgentRoomEvent, AgentSessionView, AgentSummaryView, AgentTranscriptEntry, AgentTurnView } from '../../main/common/agents-api.js';
import { TesseraError } from '../../main/common/errors.js';
import type { SessionInfo, TranscriptEntry, TurnResult, AgentEvent } from '../../main/runtime/agents/types.js';
import type { AgentSummary, ProposalView } from '../../main/runtime/orchestrator/types.js';
import { addEntry, awaiting, linesOf, mergeProposals, sessionForJourney } from '../../renderer/src/areas/guide-agent-model.js';
import { agentProblemWords, textsFor } from '../../renderer/src/areas/guide-model.js';

// The runtime's types fit the restated ones (a compile-time check: `tsc` fails when they drift apart).
const fits = <A, B extends A>(b: B): A => b;
void fits<AgentSessionView, SessionInfo>;
void fits<AgentTranscriptEntry, TranscriptEntry>;
void fits<AgentProposalView, ProposalView>;
void fits<AgentSummaryView, AgentSummary>;
void fits<Omit<AgentTurnView, 'proposals'>, TurnResult>;
void fits<AgentRoomEvent, AgentEvent>;

const session = (over: Partial<AgentSessionView>): AgentSessionView => ({
  id: 'ags_1', agent_type: 'journey-guide', state: 'idle', owner: 'traveller', metadata: {}, created_at: '2026-01-01T10:00:00.000Z',
  updated_at: '2026-01-01T10:00:00.000Z', last_active_at: '2026-01-01T10:00:00.000Z', usage: { tokens: 0, tool_calls: 0, wall_ms: 0, model_calls: 0 }, pause: null, degraded: false, ...over,
});
const proposal = (over: Partial<AgentProposalView>): AgentProposalView => ({
  id: 'b3:1', capsule: 'b3:c', action: 'journey.skip', args: {}, reason: 'closed', agent: { session: 'ags_1', type: 'journey-guide' }, owner: 'traveller', state: 'awaiting_approval',
  approval: { need: 'traveller' }, policies: [], text: 'Skip the museum', created_at: '2026-01-01T10:00:00.000Z', updated_at: '2026-01-01T10:00:00.000Z', ...over,
});
const at = '2026-01-01T10:00:00.000Z';

describe('the guide agent chat', () => {
  it('finds the journey\'s open session, the newest of several, never a closed one or another journey\'s', () => {
    const list = [
      session({ id: 'a', metadata: { journey_id: 'jny_1' }, created_at: '2026-01-01T09:00:00.000Z' }),
      session({ id: 'b', metadata: { journey_id: 'jny_1' }, created_at: '2026-01-01T11:00:00.000Z' }),
      session({ id: 'c', metadata: { journey_id: 'jny_1' }, created_at: '2026-01-01T12:00:00.000Z', state: 'closed' }),
      session({ id: 'd', metadata: { journey_id: 'jny_2' }, created_at: '2026-01-01T13:00:00.000Z' }),
      session({ id: 'e', agent_type: 'support', metadata: { journey_id: 'jny_1' }, created_at: '2026-01-01T14:00:00.000Z' }),
    ];
    expect(sessionForJourney(list, 'jny_1')?.id).toBe('b');
    expect(sessionForJourney(list, 'jny_3')).toBeNull();
  });

  it('shows one question and one answer per turn: tool rounds, tool results and turn ends are not chat; a repeat changes nothing', () => {
    const entries: AgentTranscriptEntry[] = [
      { seq: 1, at, turn: 't1', type: 'user', text: 'what should I do next?', by: 'traveller' },
      { seq: 2, at, turn: 't1', type: 'assistant', text: '', tool_calls: [{ id: 'c1', name: 'tessera__journey_next', arguments: {} }], source: 'model' },
      { seq: 3, at, turn: 't1', type: 'tool_call', call: { id: 'c1', name: 'tessera__journey_next', arguments: {} }, idempotency_key: 'k' },
      { seq: 4, at, turn: 't1', type: 'tool_result', call_id: 'c1', ok: true, content: '{}' },
      { seq: 5, at, turn: 't1', type: 'assistant', text: 'Walk to the museum.', tool_calls: [], source: 'model' },
      { seq: 6, at, turn: 't1', type: 'turn_end', outcome: 'completed' },
      { seq: 7, at, turn: 't2', type: 'user', text: 'and then?', by: 'traveller' },
      { seq: 8, at, turn: 't2', type: 'assistant', text: 'The gallery.', tool_calls: [], source: 'fallback' },
    ];
    const lines = linesOf(entries);
    expect(lines.map((l) => [l.who, l.text, l.fallback ?? false])).toEqual([
      ['you', 'what should I do next?', false],
      ['guide', 'Walk to the museum.', false],
      ['you', 'and then?', false],
      ['guide', 'The gallery.', true],
    ]);
    // The room replays what the transcript already gave: nothing moves.
    expect(addEntry(lines, entries[4]!)).toBe(lines);
    expect(entries.reduce(addEntry, lines)).toEqual(lines);
  });

  it('merges proposals by id keeping the newer view, and offers only those waiting for the traveller', () => {
    const waiting = proposal({ id: 'b3:1' });
    const done = proposal({ id: 'b3:1', state: 'executed', updated_at: '2026-01-01T10:01:00.000Z' });
    const operatorOnly = proposal({ id: 'b3:2', approval: { need: 'operator' } });
    const refused = proposal({ id: 'b3:3', state: 'refused' });
    expect(awaiting(mergeProposals([], [waiting, operatorOnly, refused])).map((p) => p.id)).toEqual(['b3:1']);
    expect(mergeProposals([done], [waiting])[0]!.state).toBe('executed');
    expect(awaiting(mergeProposals([waiting], [done]))).toEqual([]);
  });

  it('says the agent refusals a traveller may meet in their language, other errors as the guide does', () => {
    expect(agentProblemWords(new TesseraError('AGENT_SESSION_BUSY', 'busy'), 'en')).toBe('The guide is still answering your last question.');
    expect(agentProblemWords(new TesseraError('AGENT_RATE_LIMITED', 'x'), 'uk')).toBe(textsFor('uk').agent.problems.AGENT_RATE_LIMITED);
    expect(agentProblemWords(new TesseraError('NOT_READY', 'x'), 'ru')).toBe(textsFor('ru').problems.NOT_READY);
    for (const lang of ['en', 'ru', 'uk'] as const) expect(textsFor(lang).agent.ruleBased.length).toBeGreaterThan(20);
  });
});

describe('the agent client', () => {
  it('calls the routes of README "Agents"', async () => {
    const calls: unknown[] = [];
    const client = createAgentClient(async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => {
      calls.push(body === undefined ? [method, path] : [method, path, body]);
      return { agents: [], sessions: [], entries: [], proposals: [] } as T;
    });
    await client.agents();
    await client.open({ agent_type: 'journey-guide', metadata: { journey_id: 'jny_1' } });
    await client.sessions({ agent_type: 'journey-guide', limit: 5 });
    await client.say('ags 1', 'hi');
    await client.transcript('ags_1', { after: 3 });
    await client.budgets('ags_1');
    await client.resume('ags_1', { tokens: 100 });
    await client.proposals({ session: 'ags_1' });
    await client.decide('b3:ab', 'approve');
    await client.decide('b3:ab', 'reject');
    expect(calls).toEqual([
      ['GET', '/api/agents'],
      ['POST', '/api/agents/sessions', { agent_type: 'journey-guide', metadata: { journey_id: 'jny_1' } }],
      ['GET', '/api/agents/sessions?agent_type=journey-guide&limit=5'],
      ['POST', '/api/agents/sessions/ags%201/messages', { text: 'hi' }],
      ['GET', '/api/agents/sessions/ags_1/transcript?after=3'],
      ['GET', '/api/agents/sessions/ags_1/budgets'],
      ['POST', '/api/agents/sessions/ags_1/resume', { extend: { tokens: 100 } }],
      ['GET', '/api/agents/proposals?session=ags_1'],
      ['POST', '/api/agents/proposals/b3%3Aab/approve', {}],
      ['POST', '/api/agents/proposals/b3%3Aab/reject', {}],
    ]);
    expect(client.room).toBeUndefined();
  });

  it('passes room events on once and in order across a reconnect, and remembers the last seq for the next `after`', () => {
    const seen: number[] = [];
    const hellos: boolean[] = [];
    const errors: string[] = [];
    const reader = agentRoomReader(2, { onEvent: (e) => seen.push(e.seq), onHello: (gap) => hellos.push(gap), onError: (e) => errors.push(e.code) });
    const ev = (seq: number) => ({ type: 'event', event: { v: 1, session: 's', seq, at, type: 'usage', data: {} } });
    reader.frame({ type: 'hello', v: 1, session: 's', gap: false });
    for (const seq of [1, 2, 3, 4, 4, 3, 5]) reader.frame(ev(seq));
    reader.frame({ type: 'hello', v: 1, session: 's', gap: true });
    reader.frame('not a frame');
    reader.frame({ type: 'error', error: { code: 'FORBIDDEN', message: 'not yours' } });
    expect(seen).toEqual([3, 4, 5]);
    expect(reader.last()).toBe(5);
    expect(hellos).toEqual([false, true]);
    expect(errors).toEqual(['FORBIDDEN']);
  });
});
