/**
 * The guide agent's chat (issue 17 point 8), the part without a screen: which agent session belongs to the journey
 * shown, the chat's lines from the transcript and the room's events (each once, whichever arrives first), and which
 * of the agent's proposals wait for the traveller. Pure: ./guide-agent.tsx renders what this decides.
 */
import type { AgentProposalView, AgentSessionView, AgentTranscriptEntry } from '../../../main/common/agents-api.js';

/** The agent type that talks to travellers about their journey (resources/agents/journey-guide.yaml). */
export const GUIDE_AGENT = 'journey-guide';

/** One line of the chat: the traveller's question or the guide's answer of one turn. */
export interface ChatLine {
  /** `u:<turn>` or `a:<turn>`: a turn has one question and (at most) one answer shown. */
  key: string;
  who: 'you' | 'guide';
  text: string;
  /** The guide's answer came from its rules, not its model. */
  fallback?: boolean;
  /** Transcript order. */
  seq: number;
}

/** The open session of this journey (the newest when there are several), or null. */
export function sessionForJourney(sessions: readonly AgentSessionView[], journeyId: string): AgentSessionView | null {
  return [...sessions]
    .filter((s) => s.agent_type === GUIDE_AGENT && s.state !== 'closed' && s.metadata['journey_id'] === journeyId)
    .sort((a, b) => b.created_at.localeCompare(a.created_at))[0] ?? null;
}

/**
 * The chat after one more transcript entry: a user entry is the turn's question, an assistant entry with text its
 * answer (the latest with text wins: a turn that called tools first answers last); tool calls, results and turn
 * ends are not chat. Entries already shown change nothing.
 */
export function addEntry(lines: readonly ChatLine[], entry: AgentTranscriptEntry): ChatLine[] {
  let line: ChatLine | null = null;
  if (entry.type === 'user') line = { key: `u:${entry.turn}`, who: 'you', text: entry.text, seq: entry.seq };
  else if (entry.type === 'assistant' && entry.text.trim() !== '') line = { key: `a:${entry.turn}`, who: 'guide', text: entry.text, seq: entry.seq, ...(entry.source === 'fallback' ? { fallback: true } : {}) };
  if (!line) return lines as ChatLine[];
  const old = lines.find((l) => l.key === line.key);
  if (old && old.seq >= line.seq) return lines as ChatLine[];
  return [...lines.filter((l) => l.key !== line.key), line].sort((a, b) => a.seq - b.seq);
}

export function linesOf(entries: readonly AgentTranscriptEntry[]): ChatLine[] {
  return entries.reduce<ChatLine[]>((lines, e) => addEntry(lines, e), []);
}

/** Proposals merged by id, the newer view of each winning (by `updated_at`), newest first. */
export function mergeProposals(old: readonly AgentProposalView[], fresh: readonly AgentProposalView[]): AgentProposalView[] {
  const byId = new Map(old.map((p) => [p.id, p]));
  for (const p of fresh) {
    const had = byId.get(p.id);
    if (!had || had.updated_at <= p.updated_at) byId.set(p.id, p);
  }
  return [...byId.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
}

/** The cards the traveller decides: allowed by policy and waiting for them. */
export function awaiting(proposals: readonly AgentProposalView[]): AgentProposalView[] {
  return proposals.filter((p) => p.state === 'awaiting_approval' && p.approval.need !== 'operator');
}
