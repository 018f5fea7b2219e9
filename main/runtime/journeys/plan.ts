/**
 * Pure parts of a journey instance (seed 000 §4.4–4.5, §6.2): the itinerary a document gives, the node states and
 * which node is current, local opening hours in the document's zone, and what an accepted proposal changes. No I/O:
 * ./index.ts reads and writes the rows and publishes the events these functions decide.
 */
import type { JourneyDoc, JourneyNode, JourneyPlace, NodeCompletedBy, NodeState, OpeningHours, Proposal, Weekday } from '../../common/journeys.js';
import { WEEKDAYS } from '../../common/journeys.js';

/** A node's progress as the instance stores it. */
export interface NodeRecord {
  state: NodeState;
  at: number | null;
  by: NodeCompletedBy | null;
  /** Free time spent at another place (an accepted `set_place` proposal). */
  place?: string;
  /** Why it was skipped, when not by the traveller (`substituted`). */
  reason?: string;
}

export interface Progress {
  /** Node ids in planned order. */
  plan: string[];
  nodes: Record<string, NodeRecord>;
}

/**
 * The itinerary: every node reachable from `start` through `next` (alternatives are not on it until a proposal
 * puts them there), in an order that respects `next` (a topological order; ties in document order, so a straight
 * document reads straight). The document was validated as a DAG when it entered the catalogue; a cycle here is
 * cut rather than looped on.
 */
export function itinerary(doc: JourneyDoc): string[] {
  const byId = new Map(doc.nodes.map((n, i) => [n.id, { node: n, index: i }]));
  const reachable = new Set<string>();
  const stack = [doc.start];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (reachable.has(id) || !byId.has(id)) continue;
    reachable.add(id);
    for (const n of byId.get(id)!.node.next ?? []) stack.push(n);
  }
  const indegree = new Map<string, number>([...reachable].map((id) => [id, 0]));
  for (const id of reachable) for (const n of byId.get(id)!.node.next ?? []) if (reachable.has(n)) indegree.set(n, indegree.get(n)! + 1);
  const order: string[] = [];
  const ready = [...reachable].filter((id) => indegree.get(id) === 0);
  while (ready.length > 0) {
    ready.sort((a, b) => byId.get(a)!.index - byId.get(b)!.index);
    const id = ready.shift()!;
    order.push(id);
    for (const n of byId.get(id)!.node.next ?? []) {
      if (!reachable.has(n)) continue;
      indegree.set(n, indegree.get(n)! - 1);
      if (indegree.get(n) === 0) ready.push(n);
    }
  }
  return order;
}

export function initialProgress(doc: JourneyDoc): Progress {
  const plan = itinerary(doc);
  return { plan, nodes: Object.fromEntries(plan.map((id) => [id, { state: 'pending', at: null, by: null } as NodeRecord])) };
}

/** The node the traveller is at or heading to: the first on the plan neither completed nor skipped. */
export function currentNode(p: Progress): string | null {
  return p.plan.find((id) => isOpen(p.nodes[id]!.state)) ?? null;
}

export const isOpen = (s: NodeState): boolean => s === 'pending' || s === 'entered';

/** The node before `id` on the plan that the traveller finished (where they come from), if any. */
export function previousDone(p: Progress, id: string): string | null {
  const i = p.plan.indexOf(id);
  for (let k = i - 1; k >= 0; k--) if (p.nodes[p.plan[k]!]!.state === 'completed') return p.plan[k]!;
  return i > 0 ? p.plan[i - 1]! : null;
}

export function nodeOf(doc: JourneyDoc, id: string): JourneyNode | undefined {
  return doc.nodes.find((n) => n.id === id);
}

export function placeOf(doc: JourneyDoc, p: Progress, nodeId: string): JourneyPlace | undefined {
  const id = p.nodes[nodeId]?.place ?? nodeOf(doc, nodeId)?.place;
  return doc.places.find((pl) => pl.id === id);
}

// ---- local time in the document's zone ----

export interface LocalTime {
  day: Weekday;
  /** Minutes since local midnight. */
  minutes: number;
  /** `YYYY-MM-DD`. */
  date: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

export function localTime(epochMs: number, timeZone: string): LocalTime {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(epochMs)).map((x) => [x.type, x.value]));
  const day = String(parts['weekday']).toLowerCase().slice(0, 3) as Weekday;
  return { day: WEEKDAYS.includes(day) ? day : 'mon', minutes: Number(parts['hour']) * 60 + Number(parts['minute']), date: `${parts['year']}-${parts['month']}-${parts['day']}` };
}

export const hhmm = (s: string): number => {
  const [h, m] = s.split(':').map(Number);
  return h! * 60 + m!;
};
export const formatHhmm = (minutes: number): string => `${String(Math.floor(minutes / 60) % 24).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

/** Today's opening of a place: null when it has no hours (always open); `closed` when it does not open today. */
export function openingToday(hours: OpeningHours[] | undefined, day: Weekday): { open: number; close: number } | 'closed' | null {
  if (!hours || hours.length === 0) return null;
  const today = hours.filter((h) => h.days.includes(day));
  if (today.length === 0) return 'closed';
  return { open: Math.min(...today.map((h) => hhmm(h.open))), close: Math.max(...today.map((h) => hhmm(h.close))) };
}

// ---- proposals ----

/**
 * What accepting a proposal does to the progress (seed 000 §4.5: the traveller decides; nothing changes without
 * acceptance). Returns the nodes it skipped (a substituted node), for their events.
 */
export function applyChange(p: Progress, change: Proposal['change'], at: number): { skipped: string[] } {
  if (change.op === 'move_first') {
    const current = currentNode(p);
    const from = p.plan.indexOf(change.node);
    if (current === null || from < 0 || current === change.node) return { skipped: [] };
    p.plan.splice(from, 1);
    p.plan.splice(p.plan.indexOf(current), 0, change.node);
    // The node the traveller was heading to waits its turn again.
    if (p.nodes[current]!.state === 'entered') p.nodes[current] = { ...p.nodes[current]!, state: 'pending', at: null };
    return { skipped: [] };
  }
  if (change.op === 'substitute') {
    const i = p.plan.indexOf(change.node);
    if (i < 0) return { skipped: [] };
    p.plan.splice(i, 0, change.with);
    p.nodes[change.with] = { state: 'pending', at: null, by: null };
    p.nodes[change.node] = { state: 'skipped', at, by: null, reason: 'substituted' };
    return { skipped: [change.node] };
  }
  p.nodes[change.node] = { ...p.nodes[change.node]!, place: change.place };
  return { skipped: [] };
}
