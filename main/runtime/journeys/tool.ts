/**
 * `tool-journeys`, built in (issue 15 point 5): the Journey Guide's answers to the journey intents. Scenario tool
 * steps naming it reach the journeys module directly instead of a sandbox plugin, as `tool-entitlements` reaches
 * the entitlements module (../entitlements/tool.ts); `resources/scenarios/journey_*.yaml` call it.
 *
 * Every op takes `user` — the traveller, i.e. the dialogue session id (`ctx.session_id`: on a kiosk the
 * traveller's user id is the dialogue session) — and `language` (`en`, `ru`, `uk`; the utterance's), and works
 * on that traveller's journey in progress ({@link JourneysForTool.active}). Ops and answers:
 * - `{op: "next"}` → the next step's sentence: `{text, journey_instance_id, node, finished}`;
 * - `{op: "route", place?, place_name?}` → how to get to `place` (a place id of the `{place}` list), or to the
 *   place the traveller named (`place_name`, free text matched against the journey's place names), or with
 *   neither to the current stop;
 * - `{op: "hours", place?, place_name?, ask: "close" | "open" | "hours"}` → when that place closes / opens today;
 * - `{op: "current"}` → `{journey_instance_id, node, title}` of the stop the traveller is at (null when none): the
 *   scenario records it as a step output, so the `skip` / `done` after it act on that stop even when re-run after
 *   a crash (they name the node; the journeys module treats a node already completed or skipped as done);
 * - `{op: "skip", node}` / `{op: "done", node}` → skip / complete that stop (`by: voice`), then say what is next;
 * - `{op: "ticket"}` → the pass that covers the current stop (`ticket: {serial, code, node}` for the UI's QR).
 *
 * The answer is `{text}` (a sentence the journeys module rendered in `language`) or `{message, params}` (a key of
 * the message catalogue, resources/messages, that the scenario's `io.say` renders in the run's language); a
 * scenario says whichever it got. Nothing here throws for what a traveller can say: no journey ("you have no
 * journey yet: buy a pass and start it on the Guide tab" — also on a device without the journeys module), a
 * place not on the journey ("I don't know a place called X on your journey; your stops are A, B, C"), no route
 * (the written route when the document has one), a journey that has ended. Other errors of the module
 * propagate and fail the step (the I/O router then tells the traveller in plain words).
 */
import type { JourneyLanguage, JourneyView, NextStep, NodeCompletedBy, RoutePlan } from '../../common/journeys.js';
import { JOURNEY_LANGUAGES } from '../../common/journeys.js';
import { TesseraError } from '../../common/errors.js';
import { normalize } from '../intents/normalize.js';
import type { ToolRunner } from '../scenarios/engine.js';

export const JOURNEYS_TOOL = 'tool-journeys';

/**
 * The part of the journeys module (`Journeys` of main/runtime/journeys/index.ts, issue 15 plan) the tool uses:
 * `Pick<Journeys, 'active' | 'get' | 'next' | 'routeTo' | 'skip' | 'complete' | 'places'>`, written out so the
 * tool does not depend on the module's internals.
 */
export interface JourneysForTool {
  active(user: string): JourneyView | null;
  get(id: string, language?: JourneyLanguage): JourneyView;
  next(id: string, o?: { language?: JourneyLanguage }): NextStep;
  /** @throws PLACE_UNKNOWN, ROUTE_NOT_FOUND (details.static: RoutePlan | null) */
  routeTo(id: string, place: string, o?: { language?: JourneyLanguage }): RoutePlan;
  skip(id: string, node: string, o?: { by?: NodeCompletedBy; expected_version?: number }): JourneyView;
  complete(id: string, node: string, o?: { by?: NodeCompletedBy; expected_version?: number }): JourneyView;
  places(): Array<{ id: string; names: Partial<Record<JourneyLanguage, string[]>> }>;
  /** A place of the journey with today's opening, when the module has it (it knows a place closed today). @throws PLACE_UNKNOWN */
  place?(id: string, place: string, o?: { language?: JourneyLanguage }): { name: string; opens_at: string | null; closes_at: string | null; closed_today: boolean; text: string };
}

/** What an op answers: a rendered sentence, or a catalogue key with its parameters; plus facts for the UI. */
export type GuideAnswer = ({ text: string } | { message: string; params: Record<string, unknown> }) & {
  journey_instance_id?: string | null;
  node?: string | null;
  finished?: boolean;
  title?: string | null;
  ticket?: { serial: string; code: string; node: string; title: string | null };
};

const OPS = ['next', 'route', 'hours', 'current', 'skip', 'done', 'ticket'] as const;
type Op = (typeof OPS)[number];

const say = (message: string, params: Record<string, unknown> = {}): GuideAnswer => ({ message, params });
const NO_JOURNEY = (): GuideAnswer => say('journey.none');

function languageOf(v: unknown): JourneyLanguage {
  return typeof v === 'string' && (JOURNEY_LANGUAGES as readonly string[]).includes(v) ? (v as JourneyLanguage) : 'en';
}

const codeOf = (err: unknown): string | undefined => (err instanceof TesseraError || (typeof err === 'object' && err !== null) ? (err as { code?: unknown }).code as string | undefined : undefined);

/** Words that say nothing about which place: articles and the prepositions a route question puts before it. */
const STOP_WORDS = new Set(['the', 'a', 'to', 'of', 'до', 'в', 'во', 'у', 'на']);

/**
 * Whether two words are forms of one word: equal, or sharing a prefix of at least 4 letters that leaves at most two
 * letters of the shorter one (Russian and Ukrainian endings: "опери" / "опера", "оперного" / "оперний").
 */
function sameStem(a: string, b: string): boolean {
  if (a === b) return true;
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  return common >= Math.max(4, Math.min(a.length, b.length) - 2);
}

/** The journey's stops, by their place names, in itinerary order, each once. */
function stopsOf(view: JourneyView): string {
  return [...new Set(view.nodes.map((n) => n.place.name))].join(', ');
}

/**
 * The place id a traveller meant: the `{place}` slot (an id of the list, which holds the places of every journey
 * in progress), or a name they said, matched against this journey's place names (every language, aliases too).
 * Returns the id when it is a place of `view`, else the name to say back.
 */
function placeOf(view: JourneyView, places: JourneysForTool['places'], a: Record<string, unknown>, language: JourneyLanguage): { id: string } | { unknown: string } | null {
  const own = new Set(view.nodes.map((n) => n.place.id));
  const known = places();
  if (typeof a['place'] === 'string' && a['place'] !== '') {
    const id = a['place'];
    if (own.has(id)) return { id };
    const names = known.find((p) => p.id === id)?.names;
    return { unknown: names?.[language]?.[0] ?? names?.en?.[0] ?? id };
  }
  if (typeof a['place_name'] === 'string' && a['place_name'].trim() !== '') {
    const said = a['place_name'].trim();
    const wanted = normalize(said);
    const strip = (s: string) => s.replace(/^(the) /, '');
    const namesOf = (id: string, shown: string) => [shown, ...Object.values(known.find((p) => p.id === id)?.names ?? {}).flat()];
    for (const node of view.nodes) {
      if (namesOf(node.place.id, node.place.name).some((n) => normalize(n) === wanted || strip(normalize(n)) === strip(wanted))) return { id: node.place.id };
    }
    // A case form the document does not list ("до опери" for "Львівська опера"): every word said shares its stem with
    // a word of exactly one place's names.
    const words = wanted.split(' ').filter((w) => !STOP_WORDS.has(w));
    const hits = new Set(view.nodes.filter((node) => words.length > 0 && namesOf(node.place.id, node.place.name).some((n) => words.every((w) => normalize(n).split(' ').some((t) => sameStem(w, t))))).map((n) => n.place.id));
    if (hits.size === 1) return { id: [...hits][0]! };
    return { unknown: said };
  }
  return null;
}

function nodeTitle(view: JourneyView, node: string | null): string | null {
  return view.nodes.find((n) => n.id === node)?.title ?? null;
}

/** Runs one op for the traveller `user` (see the module comment). */
export function runJourneysOp(journeys: JourneysForTool | undefined, args: unknown): GuideAnswer {
  const a = (args ?? {}) as Record<string, unknown>;
  const op = a['op'] as Op;
  if (!OPS.includes(op)) throw new TesseraError('VALIDATION_FAILED', `${JOURNEYS_TOOL}: op must be one of ${OPS.join(', ')}.`);
  const language = languageOf(a['language']);
  const user = typeof a['user'] === 'string' ? a['user'] : '';
  // No journeys module, or a request from no dialogue session: there is no journey of this traveller.
  const active = journeys && user !== '' ? journeys.active(user) : null;
  if (!journeys || !active) return op === 'current' ? { ...NO_JOURNEY(), journey_instance_id: null, node: null } : NO_JOURNEY();
  const view = journeys.get(active.journey_instance_id, language);
  const id = view.journey_instance_id;
  const of = { journey_instance_id: id };

  const nextText = (): GuideAnswer & { text: string } => {
    const step = journeys.next(id, { language });
    return { text: step.text, ...of, node: step.node?.id ?? null, finished: step.finished };
  };

  switch (op) {
    case 'next':
      return nextText();

    case 'current':
      if (view.state !== 'started' || view.current === null) return { ...say('journey.done'), ...of, node: null, finished: true };
      return { ...say('journey.current', { title: nodeTitle(view, view.current) }), ...of, node: view.current, title: nodeTitle(view, view.current) };

    case 'skip':
    case 'done': {
      const node = typeof a['node'] === 'string' && a['node'] !== '' ? a['node'] : view.current;
      if (view.state !== 'started' || node === null) return { ...say('journey.done'), ...of, finished: true };
      const title = nodeTitle(view, node);
      const after = op === 'skip' ? journeys.skip(id, node, { by: 'voice' }) : journeys.complete(id, node, { by: 'voice' });
      if (after.state === 'completed') return { ...say('journey.done'), ...of, node, finished: true };
      const next = nextText();
      return { ...say(op === 'skip' ? 'journey.skipped' : 'journey.node_done', { title, next: next.text }), ...of, node, finished: next.finished ?? false };
    }

    case 'ticket': {
      const node = view.nodes.find((n) => n.id === view.current);
      if (!node) return { ...say('journey.done'), ...of, finished: true };
      if (!node.needs) return { ...say('journey.ticket_not_needed', { title: node.title }), ...of, node: node.id };
      if (!node.covered_by) return { ...say('journey.ticket_missing', { title: node.title }), ...of, node: node.id };
      const c = node.covered_by;
      return { ...say('journey.ticket', { title: node.title, pass: c.title ?? '' }), ...of, node: node.id, ticket: { serial: c.serial, code: c.code, node: node.id, title: c.title } };
    }

    case 'route': {
      const target = placeOf(view, () => journeys.places(), a, language);
      if (target && 'unknown' in target) return { ...say('journey.place_unknown', { name: target.unknown, stops: stopsOf(view) }), ...of };
      const placeId = target?.id ?? view.nodes.find((n) => n.id === view.current)?.place.id;
      if (!placeId) return { ...say('journey.done'), ...of, finished: true };
      const name = view.nodes.find((n) => n.place.id === placeId)?.place.name ?? placeId;
      try {
        const plan = journeys.routeTo(id, placeId, { language });
        const key = plan.source === 'static' ? 'journey.route_static' : 'journey.route';
        return { ...say(key, { place: name, minutes: Math.max(1, Math.round(plan.minutes)), directions: plan.text }), ...of };
      } catch (err) {
        if (codeOf(err) === 'PLACE_UNKNOWN') return { ...say('journey.place_unknown', { name, stops: stopsOf(view) }), ...of };
        if (codeOf(err) === 'ROUTE_NOT_FOUND') {
          const written = ((err as { details?: { static?: RoutePlan | null } }).details?.static ?? null) as RoutePlan | null;
          return written ? { ...say('journey.route_none_static', { place: name, directions: written.text }), ...of } : { ...say('journey.route_none', { place: name }), ...of };
        }
        throw err;
      }
    }

    case 'hours': {
      const target = placeOf(view, () => journeys.places(), a, language);
      if (target && 'unknown' in target) return { ...say('journey.place_unknown', { name: target.unknown, stops: stopsOf(view) }), ...of };
      const node = target ? view.nodes.find((n) => n.place.id === target.id) : view.nodes.find((n) => n.id === view.current);
      if (!node) return { ...say('journey.done'), ...of, finished: true };
      let hours = { name: node.place.name, opens_at: node.opens_at, closes_at: node.closes_at };
      if (journeys.place) {
        // The module's own sentence for a place closed today or always open; the asked-for half otherwise.
        const today = journeys.place(id, node.place.id, { language });
        if (today.closed_today || today.opens_at === null || today.closes_at === null) return { text: today.text, ...of, node: node.id };
        hours = today;
      }
      const place = hours.name;
      if (hours.opens_at === null || hours.closes_at === null) return { ...say('journey.hours_none', { place }), ...of, node: node.id };
      const ask = a['ask'] === 'open' ? 'journey.opens' : a['ask'] === 'close' ? 'journey.closes' : 'journey.hours';
      return { ...say(ask, { place, opens: hours.opens_at, closes: hours.closes_at }), ...of, node: node.id };
    }
  }
}

/** The engine's tool runner with `tool-journeys` built in; any other tool goes to `inner` (the sandbox plugins). */
export function journeysToolRunner(inner: ToolRunner | undefined, journeys: () => JourneysForTool | undefined): ToolRunner {
  return {
    async run(tool, args, options) {
      if (tool !== JOURNEYS_TOOL) {
        if (!inner) throw new TesseraError('PLUGIN_NOT_FOUND', `No loaded tool plugin "${tool}".`);
        return inner.run(tool, args, options);
      }
      return runJourneysOp(journeys(), args);
    },
  };
}
