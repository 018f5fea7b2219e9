/**
 * Rule-based behaviour of Tessera's agents (seed 000 §7.3; issue 17 point 4): what answers when an agent has no
 * model, or its model is down or over its provider's quota. Each responder reads the world only through the
 * session's own tools (the `tessera` MCP server, ./tools.ts), exactly as the model would, so the transcript shows
 * the same tool calls and the same scoping applies.
 *
 * - `journey-guide`: the journeys module's own rule-based guide — `journey_next` (journeys.next) and
 *   `journey_ideas` (journeys.proposals, main/runtime/journeys/agent.ts). Not a second guide.
 * - `support`: a few intents answered from a short FAQ, with the product list or the next step when asked.
 * - `ops-slo`: reads the metrics and reports which objectives are broken.
 * - The Trip Planner has none: it is switched off while degraded (`degraded: off`).
 *
 * A responder never proposes a change and never throws for a tool's sake: a failed tool becomes a plain sentence.
 */
import type { Responder, ResponderContext, ToolCall, ToolOutcome } from '../agents/types.js';
import { TESSERA_SERVER } from './profiles.js';

type Call = ToolCall & { outcome: ToolOutcome };

/** Calls `tessera__<tool>` and records the call for the transcript. */
async function use(ctx: ResponderContext, calls: Call[], tool: string, args: Record<string, unknown> = {}): Promise<ToolOutcome> {
  const id = `rule-${calls.length + 1}`;
  const name = `${TESSERA_SERVER}__${tool}`;
  const outcome = await ctx.tools.call(name, args, { idempotencyKey: ctx.idempotencyKey(id), signal: ctx.signal });
  calls.push({ id, name, arguments: args, outcome });
  return outcome;
}

function json<T>(outcome: ToolOutcome): T | null {
  if (!outcome.ok) return null;
  try {
    return JSON.parse(outcome.content) as T;
  } catch {
    return null;
  }
}

/** The tool's error without its code prefix (`JOURNEY_NOT_FOUND: …` → `…`). */
const why = (outcome: ToolOutcome) => (outcome.error?.message ?? outcome.content).replace(/^[A-Z_]+: /, '');

const IDEAS = /\b(idea|ideas|suggest|suggestion|recommend|what should)\b|порад|пропону|що робити|что делать/i;

/** The journey guide without a model: the next step, and the guide's suggestions for now. */
export const journeyGuideResponder: Responder = async (ctx) => {
  const calls: Call[] = [];
  const next = await use(ctx, calls, 'journey_next');
  const step = json<{ text: string; finished: boolean }>(next);
  if (!step) return { text: `I cannot see your journey right now: ${why(next)}`, tool_calls: calls };
  const ideas = json<Array<{ text: string }>>(await use(ctx, calls, 'journey_ideas')) ?? [];
  const suggestions = ideas.map((i) => i.text).join(' ');
  if (IDEAS.test(ctx.text)) return { text: suggestions !== '' ? suggestions : `Nothing to suggest right now. ${step.text}`, tool_calls: calls };
  return { text: suggestions !== '' ? `${step.text} ${suggestions}` : step.text, tool_calls: calls };
};

interface Product {
  title: string;
  price: number;
  currency: string;
  venues: string[];
}

const money = (minor: number, currency: string) => `${(minor / 100).toFixed(2)} ${currency}`;

/** Support's intents, tried in order; the first whose pattern matches answers. */
const SUPPORT_INTENTS: Array<{ name: string; pattern: RegExp; answer: (ctx: ResponderContext, calls: Call[]) => Promise<string> }> = [
  {
    name: 'refused',
    pattern: /refus|rejected|not valid|doesn'?t work|did not work|didn'?t work|scanner|не працю|не работает|відмов|отказ/i,
    answer: async () =>
      'A pass is refused at a venue when it is not valid there, has expired, is used up, or was already used for this visit. Show the staff member the pass on your screen: they see the exact reason on their scanner and can help.',
  },
  {
    name: 'refund',
    pattern: /refund|money back|cancel|повернен|возврат|скасув|отмен/i,
    answer: async () => 'Refunds and cancellations are done by staff or an operator, not by me. Ask at the kiosk desk or at the venue; they can see your purchase.',
  },
  {
    name: 'products',
    pattern: /\b(price|prices|cost|buy|pass|passes|ticket|tickets|product|products)\b|ціна|цена|купит|купити|квит|билет/i,
    answer: async (ctx, calls) => {
      const outcome = await use(ctx, calls, 'products_list');
      const products = json<Product[]>(outcome);
      if (!products) return `I cannot read the product list right now: ${why(outcome)}`;
      if (products.length === 0) return 'This kiosk sells nothing at the moment.';
      return `This kiosk sells: ${products.slice(0, 5).map((p) => `${p.title} (${money(p.price, p.currency)})`).join('; ')}. Buy on the Buy tab.`;
    },
  },
  {
    name: 'next',
    pattern: /\b(next|where|journey|stop)\b|далі|дальше|куди|куда/i,
    answer: async (ctx, calls) => {
      const outcome = await use(ctx, calls, 'journey_next');
      return json<{ text: string }>(outcome)?.text ?? `I cannot see your journey right now: ${why(outcome)}`;
    },
  },
];

/** Support without a model: a small FAQ. */
export const supportResponder: Responder = async (ctx) => {
  const calls: Call[] = [];
  for (const intent of SUPPORT_INTENTS) {
    if (intent.pattern.test(ctx.text)) return { text: await intent.answer(ctx, calls), tool_calls: calls };
  }
  return {
    text: 'I can help with passes that were refused, prices and products, refunds, and your next stop. For anything else, please ask the staff at the desk.',
    tool_calls: calls,
  };
};

interface MetricRow {
  metric: string;
  what: string;
  value: number | null;
  objective: string | null;
  breached: boolean;
}

const shown = (v: number | null) => (v === null ? 'no data' : Number.isInteger(v) ? String(v) : v.toFixed(3));

/** The Ops agent without a model: the objectives that are broken, worst first, or that all are met. */
export const opsSloResponder: Responder = async (ctx) => {
  const calls: Call[] = [];
  const outcome = await use(ctx, calls, 'metrics_read');
  const rows = json<MetricRow[]>(outcome);
  if (!rows) return { text: `I cannot read the metrics: ${why(outcome)}`, tool_calls: calls };
  const broken = rows.filter((r) => r.breached);
  const lines = rows.filter((r) => r.objective !== null).map((r) => `${r.metric} = ${shown(r.value)} (objective ${r.objective})${r.breached ? ' — BREACHED' : ''}`);
  const head = broken.length === 0 ? 'All objectives are met.' : `${broken.length} objective${broken.length === 1 ? ' is' : 's are'} breached: ${broken.map((r) => r.what).join('; ')}.`;
  return { text: `${head}\n${lines.join('\n')}`, tool_calls: calls };
};

/** The responders by name, as profiles' `fallback` names them. */
export const RESPONDERS: Record<string, Responder> = {
  'journey-guide': journeyGuideResponder,
  support: supportResponder,
  'ops-slo': opsSloResponder,
};
