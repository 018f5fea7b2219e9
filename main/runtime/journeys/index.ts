/**
 * Journey instances (seed 000 §3.2, §4.4 "TJM Journey Runtime", §4.5 context loop, §6.2; issue 15 point 2): one
 * journey document followed by one traveller within one product runtime session. A session holds 0..N journeys
 * (pre-trip, in-trip, post-trip). Owns the tables `journeys`, `journey_proposals` and `journey_changes`.
 *
 * - Every change is one SQLite transaction holding the row and its events (exactly the seed's: `journey.started`,
 *   `journey.node.entered|completed|skipped`, `journey.route.generated`, `journey.completed|abandoned`), each carrying
 *   `product_runtime_session_id`; a kill -9 leaves the journey at the last change it committed, and it resumes at the
 *   same node.
 * - A node completes when the traveller says so (touch or voice) and by itself when staff redeem the node's
 *   entitlement at its venue: `entitlement.redeemed` on the bus → the traveller's journeys with a node needing that
 *   venue. A redemption whose event a crash lost is found again by {@link Journeys.recover} in the redemption history.
 * - Actions name the node they act on: two screens completing the same node complete it once, and neither completes
 *   the next node by accident; a screen that sends `expected_version` learns of another screen's change
 *   (JOURNEY_CONFLICT) instead of acting on a journey it has not seen.
 * - Routing (seed 000 "LEM", §7.1): next steps are planned on the city package; when it is missing, stale or invalid
 *   the document's static routes are used, the guide says so, and `product.runtime.degraded` is journaled for the
 *   session (once per journey and reason).
 * - The Journey Guide agent (./agent.ts) proposes; {@link Journeys.decide} applies a proposal only on acceptance.
 */
import { randomUUID } from 'node:crypto';
import { TesseraError } from '../../common/errors.js';
import { JOURNEY_EVENTS, JOURNEY_LANGUAGES, JOURNEY_STATES } from '../../common/journeys.js';
import type {
  JourneyDoc,
  JourneyLanguage,
  JourneyNodeView,
  JourneyPhase,
  JourneyPlace,
  JourneyState,
  JourneyView,
  LatLon,
  NextStep,
  NodeCompletedBy,
  Proposal,
  RoutePlan,
  RoutingStatus,
  StaticRoute,
} from '../../common/journeys.js';
import type { IssuedEntitlement, RedemptionRecord } from '../../common/entitlements.js';
import type { Bus } from '../bus/index.js';
import type { AppendInput } from '../journal/index.js';
import { newTraceId } from '../journal/index.js';
import type { Disposable } from '../lifecycle/index.js';
import type { Logger } from '../log/index.js';
import type { MessageCatalogue } from '../io/messages.js';
import type { Migration, Store } from '../store/index.js';
import { createGuideAgent } from './agent.js';
import type { Forecast } from './agent.js';
import { applyChange, currentNode, formatHhmm, initialProgress, isOpen, localTime, nodeOf, openingToday, placeOf, previousDone } from './plan.js';
import type { Progress } from './plan.js';

// ---- what journeys need of other modules (structural: the runtime passes the real ones) ----

/** A journey document as the catalogue resolves it. */
export interface JourneySource {
  ref: string;
  id: string;
  version: string;
  cid: string;
  doc: JourneyDoc;
}

export interface JourneyCatalogue {
  /** The ProductDef of a session (by cid): its `journey` names the document the product guides with. */
  resolve(ref: string): { id: string; journey?: string | null };
  /** @throws JOURNEY_DOC_NOT_FOUND */
  resolveJourney(ref: string): JourneySource;
}

export interface JourneySessions {
  get(id: string): { product_runtime_session_id: string; state: string; user_id: string; product: { id: string; cid: string; ref: string } };
}

export interface JourneyEntitlements {
  list(q?: { session?: string; user?: string; state?: string; limit?: number }): IssuedEntitlement[];
  history(q?: { q?: string; venue?: string; limit?: number }): RedemptionRecord[];
}

export interface JourneyRouting {
  status(): RoutingStatus;
  plan(req: { from: LatLon; to: LatLon; depart_at: number; modes?: Array<'walk' | 'transit'>; language?: JourneyLanguage; names?: { from?: string; to?: string } }): RoutePlan | null;
}

export interface StartJourneyRequest {
  /** The product runtime session (must be active). */
  session: string;
  /** A journey document ref (`id`, `id@range`, cid); default: the one the session's product names. */
  journey?: string;
  phase?: JourneyPhase;
  language?: JourneyLanguage;
  /** Who asks (`traveller`, `operator`, `cli`…), recorded in the events. */
  by?: string;
}

export interface NodeActionOptions {
  by?: NodeCompletedBy;
  /** The version the caller saw: a change made since is refused with JOURNEY_CONFLICT. */
  expected_version?: number;
}

export interface Journeys {
  /** @throws SESSION_NOT_FOUND, SESSION_NOT_ACTIVE, JOURNEY_DOC_NOT_FOUND */
  start(req: StartJourneyRequest): JourneyView;
  /** @throws JOURNEY_NOT_FOUND */
  get(id: string, language?: JourneyLanguage): JourneyView;
  list(q?: { session?: string; user?: string; state?: JourneyState; limit?: number }): JourneyView[];
  /** The traveller's journey in progress (on a kiosk, user_id is the dialogue session), latest started first. */
  active(user: string): JourneyView | null;
  /** The id of a session's latest journey (in progress first), for the session's `journey_instance_id`. */
  latestOf(session: string): string | null;
  /** @throws JOURNEY_NOT_FOUND, JOURNEY_NODE_UNKNOWN, JOURNEY_ENDED, JOURNEY_CONFLICT */
  complete(id: string, node: string, options?: NodeActionOptions): JourneyView;
  /** @throws as complete */
  skip(id: string, node: string, options?: NodeActionOptions): JourneyView;
  /** @throws JOURNEY_NOT_FOUND, JOURNEY_ENDED */
  abandon(id: string, reason?: string): JourneyView;
  /** The next-step card: where to go, how, whether the traveller's pass covers it and when it opens. */
  next(id: string, options?: { language?: JourneyLanguage }): NextStep;
  /** A route from where the traveller is to `place` (a place id of the journey). @throws PLACE_UNKNOWN, ROUTE_NOT_FOUND */
  routeTo(id: string, place: string, options?: { language?: JourneyLanguage }): RoutePlan;
  /** A place of the journey, with today's opening. @throws PLACE_UNKNOWN */
  place(id: string, place: string, options?: { language?: JourneyLanguage }): { place: JourneyPlace; name: string; opens_at: string | null; closes_at: string | null; closed_today: boolean; text: string };
  /** Places of the journeys in progress with their names per language: the intents' `{place}` list. */
  places(): Array<{ id: string; names: Partial<Record<JourneyLanguage, string[]>> }>;
  onPlacesChange(listener: () => void): Disposable;
  /** The agent's proposals for the journey now (new ones are journaled as shown). */
  proposals(id: string, options?: { language?: JourneyLanguage }): Proposal[];
  /** @throws PROPOSAL_NOT_FOUND, JOURNEY_ENDED */
  decide(id: string, proposal: string, decision: 'accept' | 'reject'): { journey: JourneyView; proposal: Proposal };
  /**
   * Applies one change op — what accepting a guide proposal does — on request (an agent's approved `journey.change`
   * proposal, issue 17): `move_first` (make `node` the next one), `substitute` (replace `node` by one of its document
   * `alternatives`) or `set_place` (spend free-time `node` at a place of the document). Idempotent by `key`: a key
   * already applied answers the journey as it stands and changes nothing (the key is kept with the change, in the same
   * transaction). @throws JOURNEY_NOT_FOUND, JOURNEY_NODE_UNKNOWN, PLACE_UNKNOWN, JOURNEY_ENDED, JOURNEY_CONFLICT (it
   * no longer fits: the node is done, already first, or already substituted), VALIDATION_FAILED (not a change op)
   */
  applyChange(id: string, change: Proposal['change'], options: { key: string }): JourneyView;
  /** Completes nodes whose entitlement was redeemed while no event reached us (a crash between the two). */
  recover(): void;
  dispose(): void;
}

export interface JourneysOptions {
  store: Store;
  bus: Bus;
  logger: Logger;
  catalogue: JourneyCatalogue;
  sessions: JourneySessions;
  entitlements: JourneyEntitlements;
  /** Absent: no city package at all (the guide uses static routes). */
  routing?: JourneyRouting;
  messages: MessageCatalogue;
  clock?: () => number;
}

/** The service principal that moves journeys (seed 000 §2.1 "TJM Journey Runtime", §8). */
export const JOURNEY_PRINCIPAL = 'tjm-journey-runtime';

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'journey instances and proposals',
    up(db) {
      db.exec(`
        CREATE TABLE journeys (
          id TEXT PRIMARY KEY,
          session_id TEXT NOT NULL, user_id TEXT NOT NULL,
          doc_cid TEXT NOT NULL, doc_ref TEXT NOT NULL,
          phase TEXT NOT NULL, language TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN (${JOURNEY_STATES.map((s) => `'${s}'`).join(', ')})),
          progress TEXT NOT NULL, version INTEGER NOT NULL,
          degraded TEXT, trace_id TEXT NOT NULL,
          created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, ended_at INTEGER
        ) STRICT;
        CREATE INDEX journeys_session ON journeys (session_id, created_at);
        CREATE INDEX journeys_user ON journeys (user_id, state, created_at);
        CREATE TABLE journey_proposals (
          id TEXT PRIMARY KEY, journey_id TEXT NOT NULL REFERENCES journeys (id),
          kind TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL,
          change TEXT NOT NULL, params TEXT NOT NULL,
          created_at INTEGER NOT NULL, decided_at INTEGER,
          UNIQUE (journey_id, kind, subject)
        ) STRICT;
      `);
    },
  },
  {
    version: 2,
    name: 'change ops applied by idempotency key',
    // An agent's approved proposal runs again with the same key after a crash (issue 17): the key is written with the
    // change it made, so the second run finds it and changes nothing.
    up(db) {
      db.exec(`
        CREATE TABLE journey_changes (
          key TEXT PRIMARY KEY, journey_id TEXT NOT NULL REFERENCES journeys (id), change TEXT NOT NULL, at INTEGER NOT NULL
        ) STRICT;
      `);
    },
  },
];

interface Row {
  id: string;
  session_id: string;
  user_id: string;
  doc_cid: string;
  doc_ref: string;
  phase: JourneyPhase;
  language: JourneyLanguage;
  state: JourneyState;
  progress: string;
  version: number;
  degraded: string | null;
  trace_id: string;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
}

interface ProposalRow {
  id: string;
  journey_id: string;
  kind: Proposal['kind'];
  subject: string;
  state: Proposal['state'];
  change: string;
  params: string;
  created_at: number;
  decided_at: number | null;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const MAX_LIST = 200;

export function createJourneys(options: JourneysOptions): Journeys {
  const { store, bus, logger, catalogue, sessions, entitlements, routing, messages } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('journeys', MIGRATIONS);
  const db = store.db;
  /** One SQLite transaction (a savepoint when nested). */
  const tx = <T>(fn: () => T): T => db.transaction(fn)();

  const stmt = {
    get: db.prepare<[string], Row>('SELECT * FROM journeys WHERE id = ?'),
    insert: db.prepare(`INSERT INTO journeys (id, session_id, user_id, doc_cid, doc_ref, phase, language, state, progress, version, trace_id, created_at, updated_at)
      VALUES (@id, @session_id, @user_id, @doc_cid, @doc_ref, @phase, @language, 'started', @progress, 1, @trace_id, @at, @at)`),
    update: db.prepare('UPDATE journeys SET progress = @progress, state = @state, version = version + 1, updated_at = @at, ended_at = @ended_at WHERE id = @id AND version = @version'),
    setDegraded: db.prepare('UPDATE journeys SET degraded = ? WHERE id = ?'),
    list: db.prepare<{ session: string | null; user: string | null; state: string | null; limit: number }, Row>(
      'SELECT * FROM journeys WHERE (@session IS NULL OR session_id = @session) AND (@user IS NULL OR user_id = @user) AND (@state IS NULL OR state = @state) ORDER BY created_at DESC, rowid DESC LIMIT @limit',
    ),
    started: db.prepare<[], Row>("SELECT * FROM journeys WHERE state = 'started'"),
    startedOf: db.prepare<[string], Row>("SELECT * FROM journeys WHERE user_id = ? AND state = 'started' ORDER BY created_at DESC, rowid DESC"),
    latestOf: db.prepare<[string], { id: string }>("SELECT id FROM journeys WHERE session_id = ? ORDER BY state = 'started' DESC, created_at DESC, rowid DESC LIMIT 1"),
    proposals: db.prepare<[string], ProposalRow>('SELECT * FROM journey_proposals WHERE journey_id = ? ORDER BY created_at, rowid'),
    proposal: db.prepare<[string, string], ProposalRow>('SELECT * FROM journey_proposals WHERE journey_id = ? AND id = ?'),
    insertProposal: db.prepare(
      "INSERT OR IGNORE INTO journey_proposals (id, journey_id, kind, subject, state, change, params, created_at) VALUES (@id, @journey_id, @kind, @subject, 'shown', @change, @params, @at)",
    ),
    decideProposal: db.prepare("UPDATE journey_proposals SET state = ?, decided_at = ? WHERE id = ? AND state = 'shown'"),
    changeByKey: db.prepare<[string], { journey_id: string }>('SELECT journey_id FROM journey_changes WHERE key = ?'),
    insertChange: db.prepare('INSERT INTO journey_changes (key, journey_id, change, at) VALUES (?, ?, ?, ?)'),
  };

  const docs = new Map<string, JourneySource>();
  const docOf = (row: Row): JourneyDoc => {
    let source = docs.get(row.doc_cid);
    if (!source) docs.set(row.doc_cid, (source = catalogue.resolveJourney(row.doc_cid)));
    return source.doc;
  };

  const progressOf = (row: Pick<Row, 'progress'>): Progress => JSON.parse(row.progress) as Progress;

  const rowOf = (id: string): Row => {
    const row = typeof id === 'string' ? stmt.get.get(id) : undefined;
    if (!row) throw new TesseraError('JOURNEY_NOT_FOUND', `No journey ${JSON.stringify(id)} on this device.`);
    return row;
  };

  const lang = (l: string | undefined | null, fallback: JourneyLanguage = 'en'): JourneyLanguage => (JOURNEY_LANGUAGES.includes(l as JourneyLanguage) ? (l as JourneyLanguage) : fallback);
  const say = (key: string, params: Record<string, unknown>, language: JourneyLanguage): string => messages.render(key, params, language);
  const text = (t: { en: string } & Partial<Record<JourneyLanguage, string>>, language: JourneyLanguage): string => t[language] ?? t.en;

  /** The fields every journey event carries (seed 000 §3.2: `product_runtime_session_id` for correlation). */
  const about = (row: Row): Record<string, unknown> => ({
    journey_instance_id: row.id,
    product_runtime_session_id: row.session_id,
    journey: row.doc_ref,
    journey_version_id: row.doc_cid,
    user_id: row.user_id,
    principal: JOURNEY_PRINCIPAL,
  });

  // ---- views ----

  /** The traveller's usable entitlements. */
  const held = (row: Row): Array<Omit<IssuedEntitlement, "title"> & { title: string | null }> =>
    entitlements.list({ user: row.user_id, state: 'active', limit: 200 }).map((e) => ({ ...e, title: e.title ?? null }));

  const coverage = (row: Row, need: { product: string; venue: string } | undefined): JourneyNodeView['covered_by'] => {
    if (!need) return null;
    const e = held(row).find((x) => x.venues.includes(need.venue) && x.product_ref.split('@')[0] === need.product);
    return e ? { serial: e.serial, code: e.code, title: e.title } : null;
  };

  const nodeView = (row: Row, doc: JourneyDoc, progress: Progress, id: string, language: JourneyLanguage, now: number): JourneyNodeView => {
    const node = nodeOf(doc, id)!;
    const rec = progress.nodes[id]!;
    const place = placeOf(doc, progress, id)!;
    const today = openingToday(place.opening_hours, localTime(now, doc.timezone).day);
    return {
      id,
      kind: node.kind,
      title: text(node.title, language),
      place: { id: place.id, name: text(place.name, language), location: place.location, indoor: place.indoor, kind: place.kind },
      state: rec.state,
      at: rec.at === null ? null : iso(rec.at),
      by: rec.by,
      needs: node.needs ?? null,
      covered_by: coverage(row, node.needs),
      opens_at: today && today !== 'closed' ? formatHhmm(today.open) : null,
      closes_at: today && today !== 'closed' ? formatHhmm(today.close) : null,
      closed_today: today === 'closed',
      duration_min: node.duration_min,
    };
  };

  const routingStatus = (): RoutingStatus =>
    routing ? routing.status() : { mode: 'static', degraded: { reason: 'missing', message: 'This device has no city data package.' }, package: null };

  const view = (row: Row, language?: JourneyLanguage): JourneyView => {
    const doc = docOf(row);
    const progress = progressOf(row);
    const l = lang(language, row.language);
    const now = clock();
    return {
      journey_instance_id: row.id,
      product_runtime_session_id: row.session_id,
      doc: { ref: row.doc_ref, cid: row.doc_cid, title: text(doc.title, l) },
      phase: row.phase,
      state: row.state,
      language: l,
      nodes: progress.plan.map((id) => nodeView(row, doc, progress, id, l, now)),
      current: row.state === 'started' ? currentNode(progress) : null,
      version: row.version,
      routing: routingStatus(),
      created_at: iso(row.created_at),
      updated_at: iso(row.updated_at),
      ended_at: row.ended_at === null ? null : iso(row.ended_at),
    };
  };

  // ---- changes ----

  const placeListeners = new Set<() => void>();
  const placesChanged = (): void => {
    for (const l of placeListeners) {
      try {
        l();
      } catch (err) {
        logger.warn('a places listener failed', { error: err });
      }
    }
  };

  /**
   * One change of a journey, in one transaction: `mutate` edits the progress (and returns the extra events), then the
   * node that became current is entered, the journey completes when no node is left, the row is written only if
   * nobody changed it meanwhile, and the events are journaled; they reach subscribers after the commit.
   */
  const change = (row: Row, mutate: (p: Progress, at: number) => AppendInput[], opts: { end?: 'abandoned'; reason?: string } = {}): Row => {
    const at = clock();
    let deliver: () => void = () => undefined;
    let ended = false;
    const written = tx(() => {
      const fresh = rowOf(row.id);
      if (fresh.version !== row.version) throw new TesseraError('JOURNEY_CONFLICT', `Journey ${row.id} changed while this change was made; read it again.`, { details: { current_version: fresh.version } });
      const progress = progressOf(fresh);
      const before = currentNode(progress);
      const events = mutate(progress, at);
      let state: JourneyState = fresh.state;
      if (opts.end) {
        state = opts.end;
        events.push({ topic: JOURNEY_EVENTS.abandoned, trace_id: fresh.trace_id, payload: { ...about(fresh), ...(opts.reason ? { reason: opts.reason } : {}), node: before } });
      } else {
        const now = currentNode(progress);
        if (now !== null && progress.nodes[now]!.state === 'pending') {
          progress.nodes[now] = { ...progress.nodes[now]!, state: 'entered', at };
          events.push({ topic: JOURNEY_EVENTS.nodeEntered, trace_id: fresh.trace_id, payload: { ...about(fresh), node: now, place: placeOf(docOf(fresh), progress, now)?.id ?? null } });
        }
        if (now === null) {
          state = 'completed';
          const skipped = progress.plan.filter((id) => progress.nodes[id]!.state === 'skipped' && !nodeOf(docOf(fresh), id)?.optional && progress.nodes[id]!.reason !== 'substituted');
          events.push({ topic: JOURNEY_EVENTS.completed, trace_id: fresh.trace_id, payload: { ...about(fresh), outcome: skipped.length === 0 ? 'success' : 'partial', skipped } });
        }
      }
      ended = state !== 'started';
      const next: Row = { ...fresh, progress: JSON.stringify(progress), state, version: fresh.version + 1, updated_at: at, ended_at: ended ? at : null };
      const changed = stmt.update.run({ id: fresh.id, progress: next.progress, state, at, ended_at: next.ended_at, version: fresh.version }).changes;
      if (changed !== 1) throw new TesseraError('JOURNEY_CONFLICT', `Journey ${row.id} changed while this change was made; read it again.`, { details: { current_version: fresh.version + 1 } });
      deliver = bus.stageMany(events).deliver;
      return next;
    });
    deliver();
    if (ended) placesChanged();
    return written;
  };

  const checkAction = (row: Row, node: string, options: NodeActionOptions): { done: boolean } => {
    const progress = progressOf(row);
    if (!progress.nodes[node]) {
      throw new TesseraError('JOURNEY_NODE_UNKNOWN', `Journey ${row.id} has no node ${JSON.stringify(node)}; its nodes are ${progress.plan.join(', ')}.`, { details: { nodes: progress.plan } });
    }
    // Already done (another screen, a redemption, a double tap): answered as it stands, nothing done twice.
    if (!isOpen(progress.nodes[node]!.state)) return { done: true };
    if (row.state !== 'started') throw new TesseraError('JOURNEY_ENDED', `Journey ${row.id} is ${row.state}; its nodes can no longer change.`, { details: { state: row.state } });
    if (options.expected_version !== undefined && options.expected_version !== row.version) {
      throw new TesseraError('JOURNEY_CONFLICT', `Journey ${row.id} changed since version ${options.expected_version} (it is at ${row.version}), maybe on another screen; read it again.`, {
        details: { current_version: row.version, expected_version: options.expected_version },
      });
    }
    return { done: false };
  };

  const finishNode = (id: string, node: string, how: 'completed' | 'skipped', options: NodeActionOptions = {}): JourneyView => {
    const row = rowOf(id);
    if (checkAction(row, node, options).done) return view(row);
    const by = options.by ?? 'touch';
    const written = change(row, (p, at) => {
      if (!isOpen(p.nodes[node]!.state)) return [];
      p.nodes[node] = { ...p.nodes[node]!, state: how, at, by };
      return [{ topic: how === 'completed' ? JOURNEY_EVENTS.nodeCompleted : JOURNEY_EVENTS.nodeSkipped, trace_id: row.trace_id, payload: { ...about(row), node, by } }];
    });
    return view(written);
  };

  // ---- routes ----

  /** Where the traveller is: the place of the last node they finished before `node`, else the start's. */
  const origin = (doc: JourneyDoc, p: Progress, node: string): { id: string; place: JourneyPlace } | null => {
    const prev = previousDone(p, node);
    if (prev === null) return null;
    const place = placeOf(doc, p, prev);
    return place ? { id: prev, place } : null;
  };

  const staticRoute = (doc: JourneyDoc, from: string | null, to: string, language: JourneyLanguage, depart: number): RoutePlan | null => {
    const fromPlace = from === null ? null : doc.nodes.find((n) => n.id === from)?.place;
    const toPlace = doc.nodes.find((n) => n.id === to)?.place;
    const written: StaticRoute | undefined =
      doc.static_routes.find((r) => r.from === from && r.to === to) ??
      doc.static_routes.find((r) => r.to === to && doc.nodes.find((n) => n.id === r.from)?.place === fromPlace) ??
      doc.static_routes.find((r) => doc.nodes.find((n) => n.id === r.to)?.place === toPlace && (from === null || doc.nodes.find((n) => n.id === r.from)?.place === fromPlace));
    if (!written) return null;
    const a = doc.places.find((p) => p.id === fromPlace) ?? doc.places.find((p) => p.id === toPlace)!;
    const b = doc.places.find((p) => p.id === toPlace)!;
    const path = written.path ?? [a.location, b.location];
    return {
      source: 'static',
      from: a.location,
      to: b.location,
      depart_at: iso(depart),
      arrive_at: iso(depart + written.minutes * 60_000),
      minutes: written.minutes,
      meters: 0,
      legs: [{ mode: written.mode, from: { name: text(a.name, language), location: a.location }, to: { name: text(b.name, language), location: b.location }, depart_at: iso(depart), arrive_at: iso(depart + written.minutes * 60_000), meters: 0, path }],
      text: text(written.text, language),
    };
  };

  /** Journals the degradation once per journey and reason (seed 000 §7.1: `product.runtime.degraded`). */
  const noteDegraded = (row: Row, status: RoutingStatus): void => {
    const reason = status.degraded?.reason ?? null;
    if (reason === row.degraded) return;
    tx(() => {
      stmt.setDegraded.run(reason, row.id);
      if (reason !== null) bus.stageMany([{ topic: JOURNEY_EVENTS.runtimeDegraded, trace_id: row.trace_id, payload: { ...about(row), component: 'lem', mode: 'static_routes', reason, message: status.degraded!.message } }]).deliver();
    });
    row.degraded = reason;
  };

  const routedOnce = new Set<string>();
  /** `journey.route.generated`, once per journey version and destination (the card is read often; the route is one). */
  const noteRoute = (row: Row, node: string, route: RoutePlan): void => {
    const key = `${row.id}:${row.version}:${node}`;
    if (routedOnce.has(key)) return;
    routedOnce.add(key);
    bus.publish(JOURNEY_EVENTS.routeGenerated, { ...about(row), node, source: route.source, minutes: route.minutes, meters: route.meters, modes: [...new Set(route.legs.map((l) => l.mode))] }, { trace_id: row.trace_id });
  };

  const planRoute = (row: Row, doc: JourneyDoc, p: Progress, fromNode: string | null, from: JourneyPlace | null, toNode: string, to: JourneyPlace, language: JourneyLanguage): { route: RoutePlan | null; degraded: boolean; noPath: boolean } => {
    const now = clock();
    if (from && from.id === to.id) return { route: null, degraded: false, noPath: false };
    const status = routingStatus();
    noteDegraded(row, status);
    if (status.mode === 'graph' && routing && from) {
      try {
        const route = routing.plan({ from: from.location, to: to.location, depart_at: now, modes: ['walk', 'transit'], language, names: { from: text(from.name, language), to: text(to.name, language) } });
        if (route) return { route, degraded: false, noPath: false };
        return { route: staticRoute(doc, fromNode, toNode, language, now), degraded: true, noPath: true };
      } catch (err) {
        logger.warn('route planning failed; using the static route', { journey: row.id, error: err });
      }
    }
    return { route: from ? staticRoute(doc, fromNode, toNode, language, now) : null, degraded: status.mode !== 'graph', noPath: false };
  };

  const stepText = (doc: JourneyDoc, progress: Progress, node: JourneyNodeView, route: RoutePlan | null, degraded: boolean, noPath: boolean, language: JourneyLanguage): string => {
    const now = localTime(clock(), doc.timezone);
    const parts: string[] = [];
    const place = node.place.name;
    if (degraded && route) parts.push(say(noPath ? 'journey.next.no_path' : 'journey.next.static', { place, text: route.text }, language));
    else if (degraded) parts.push(say(noPath ? 'journey.next.no_path_none' : 'journey.next.static_none', { place }, language));
    else if (!route) parts.push(say('journey.next.here', { place, title: node.title }, language));
    else {
      const transit = route.legs.find((l) => l.mode === 'transit');
      parts.push(transit ? say('journey.next.transit', { minutes: route.minutes, place, line: transit.line ?? '', headsign: transit.headsign ?? '' }, language) : say('journey.next.walk', { minutes: route.minutes, place }, language));
    }
    if (node.needs) parts.push(node.covered_by ? say('journey.next.covered', { title: node.covered_by.title ?? node.needs.product }, language) : say('journey.next.not_covered', { product: node.needs.product }, language));
    const hours = openingToday(placeOf(doc, progress, node.id)?.opening_hours, now.day);
    if (hours === 'closed') parts.push(say('journey.next.closed_today', {}, language));
    else if (hours && now.minutes < hours.open) parts.push(say('journey.next.opens', { time: formatHhmm(hours.open) }, language));
    else if (hours && now.minutes >= hours.close) parts.push(say('journey.next.closed_now', { time: formatHhmm(hours.close) }, language));
    else if (hours) parts.push(say('journey.next.closes', { time: formatHhmm(hours.close) }, language));
    return parts.join(' ');
  };

  // ---- the agent ----

  const agent = createGuideAgent({ clock, text });

  const proposalView = (r: ProposalRow, language: JourneyLanguage): Proposal => ({
    id: r.id,
    journey_instance_id: r.journey_id,
    kind: r.kind,
    state: r.state,
    text: say(`journey.proposal.${r.kind}`, JSON.parse(r.params) as Record<string, unknown>, language),
    change: JSON.parse(r.change) as Proposal['change'],
    created_at: iso(r.created_at),
    decided_at: r.decided_at === null ? null : iso(r.decided_at),
  });

  const proposalStillFits = (p: Progress, change: Proposal['change']): boolean => {
    const rec = p.nodes[change.node];
    if (!rec || !isOpen(rec.state)) return false;
    if (change.op === 'move_first') return currentNode(p) !== change.node;
    if (change.op === 'substitute') return !p.nodes[change.with];
    return rec.place !== change.place;
  };

  // ---- redemptions complete nodes (seed 000 §4.5: Trutta watches entitlements; issue 15 point 2) ----

  const journeysForRedemption = (session: string | undefined, venue: string): Array<{ row: Row; node: string }> => {
    if (!session) return [];
    let owner: ReturnType<JourneySessions['get']>;
    try {
      owner = sessions.get(session);
    } catch {
      return [];
    }
    const out: Array<{ row: Row; node: string }> = [];
    for (const row of stmt.startedOf.all(owner.user_id)) {
      const doc = docOf(row);
      const p = progressOf(row);
      const node = p.plan.find((id) => isOpen(p.nodes[id]!.state) && nodeOf(doc, id)?.needs?.venue === venue && nodeOf(doc, id)?.needs?.product === owner.product.id);
      if (node) out.push({ row, node });
    }
    return out;
  };

  const onRedeemed = (payload: { venue?: unknown; product_runtime_session_id?: unknown }): void => {
    if (typeof payload?.venue !== 'string') return;
    for (const { row, node } of journeysForRedemption(typeof payload.product_runtime_session_id === 'string' ? payload.product_runtime_session_id : undefined, payload.venue)) {
      try {
        finishNode(row.id, node, 'completed', { by: 'redemption' });
      } catch (err) {
        logger.warn('a redemption could not complete its journey node', { journey: row.id, node, error: err });
      }
    }
  };
  const subscriptions: Disposable[] = [
    bus.subscribe('entitlement.redeemed', (e) => onRedeemed(e.payload as { venue?: unknown; product_runtime_session_id?: unknown }), { name: 'journeys:redeemed' }),
    bus.subscribe('plugin.tool-weather.forecast', (e) => agent.noteForecast(e.payload as Forecast), { name: 'journeys:weather' }),
  ];

  const journeys: Journeys = {
    start(req) {
      const session = sessions.get(req.session);
      if (session.state !== 'active') {
        throw new TesseraError('SESSION_NOT_ACTIVE', `Session ${session.product_runtime_session_id} is ${session.state}: a journey starts once its product is paid and active.`, { details: { state: session.state } });
      }
      const ref = req.journey ?? catalogue.resolve(session.product.cid).journey ?? null;
      if (!ref) throw new TesseraError('JOURNEY_DOC_NOT_FOUND', `The product ${session.product.ref} names no journey; give one (\`journey\`).`);
      const source = catalogue.resolveJourney(ref);
      docs.set(source.cid, source);
      const progress = initialProgress(source.doc);
      const at = clock();
      const row: Row = {
        id: `jny_${randomUUID()}`,
        session_id: session.product_runtime_session_id,
        user_id: session.user_id,
        doc_cid: source.cid,
        doc_ref: source.ref,
        phase: req.phase ?? source.doc.phase,
        language: lang(req.language),
        state: 'started',
        progress: JSON.stringify(progress),
        version: 1,
        degraded: null,
        trace_id: newTraceId(),
        created_at: at,
        updated_at: at,
        ended_at: null,
      };
      let deliver: () => void = () => undefined;
      tx(() => {
        stmt.insert.run({ ...row, at });
        deliver = bus.stageMany([
          { topic: JOURNEY_EVENTS.started, trace_id: row.trace_id, payload: { ...about(row), phase: row.phase, by: req.by ?? 'traveller', nodes: progress.plan } },
        ]).deliver;
      });
      deliver();
      // Entering the first node is the journey's first change (its own event, in its own commit).
      const entered = change(row, () => []);
      placesChanged();
      return view(entered);
    },

    get: (id, language) => view(rowOf(id), language),

    list(q = {}) {
      return stmt.list.all({ session: q.session ?? null, user: q.user ?? null, state: q.state ?? null, limit: Math.min(Math.max(q.limit ?? 50, 1), MAX_LIST) }).map((r) => view(r));
    },

    active(user) {
      const row = stmt.startedOf.get(user);
      return row ? view(row) : null;
    },

    latestOf: (session) => stmt.latestOf.get(session)?.id ?? null,

    complete: (id, node, o) => finishNode(id, node, 'completed', o),
    skip: (id, node, o) => finishNode(id, node, 'skipped', o),

    abandon(id, reason) {
      const row = rowOf(id);
      if (row.state !== 'started') throw new TesseraError('JOURNEY_ENDED', `Journey ${row.id} is ${row.state} already.`, { details: { state: row.state } });
      return view(change(row, () => [], { end: 'abandoned', ...(reason ? { reason } : {}) }));
    },

    next(id, o = {}) {
      const row = rowOf(id);
      const language = lang(o.language, row.language);
      const doc = docOf(row);
      const p = progressOf(row);
      const current = row.state === 'started' ? currentNode(p) : null;
      if (current === null) {
        return { journey_instance_id: row.id, node: null, route: null, text: say(row.state === 'abandoned' ? 'journey.abandoned' : 'journey.finished', {}, language), degraded: false, finished: true };
      }
      const node = nodeView(row, doc, p, current, language, clock());
      const from = origin(doc, p, current);
      const { route, degraded, noPath } = planRoute(row, doc, p, from?.id ?? null, from?.place ?? null, current, placeOf(doc, p, current)!, language);
      if (route) noteRoute(row, current, route);
      return { journey_instance_id: row.id, node, route, text: stepText(doc, p, node, route, degraded, noPath, language), degraded, finished: false };
    },

    routeTo(id, placeId, o = {}) {
      const row = rowOf(id);
      const language = lang(o.language, row.language);
      const doc = docOf(row);
      const p = progressOf(row);
      const to = doc.places.find((pl) => pl.id === placeId);
      if (!to) throw new TesseraError('PLACE_UNKNOWN', `Journey ${row.id} has no place ${JSON.stringify(placeId)}; its places are ${doc.places.map((pl) => text(pl.name, 'en')).join(', ')}.`, { details: { places: doc.places.map((pl) => pl.id) } });
      const current = currentNode(p);
      const toNode = doc.nodes.find((n) => n.place === placeId)?.id ?? placeId;
      // From where the traveller came from (the last stop done before the current one), else the current stop's place.
      const from = current !== null ? (origin(doc, p, current) ?? { id: current, place: placeOf(doc, p, current)! }) : { id: doc.start, place: placeOf(doc, p, doc.start)! };
      const { route, noPath } = planRoute(row, doc, p, from.id, from.place, toNode, to, language);
      if (from.place.id === to.id) {
        const here = staticRoute(doc, null, toNode, language, clock());
        return here ?? { source: 'static', from: to.location, to: to.location, depart_at: iso(clock()), arrive_at: iso(clock()), minutes: 0, meters: 0, legs: [], text: say('journey.next.here', { place: text(to.name, language), title: text(to.name, language) }, language) };
      }
      if (!route || noPath) {
        throw new TesseraError('ROUTE_NOT_FOUND', say('journey.route.none', { place: text(to.name, language) }, language), { details: { static: route } });
      }
      noteRoute(row, toNode, route);
      return route;
    },

    place(id, placeId, o = {}) {
      const row = rowOf(id);
      const language = lang(o.language, row.language);
      const doc = docOf(row);
      const place = doc.places.find((pl) => pl.id === placeId);
      if (!place) throw new TesseraError('PLACE_UNKNOWN', `Journey ${row.id} has no place ${JSON.stringify(placeId)}.`, { details: { places: doc.places.map((pl) => pl.id) } });
      const today = openingToday(place.opening_hours, localTime(clock(), doc.timezone).day);
      const name = text(place.name, language);
      const opens = today && today !== 'closed' ? formatHhmm(today.open) : null;
      const closes = today && today !== 'closed' ? formatHhmm(today.close) : null;
      const sentence = today === null ? say('journey.hours.always', { place: name }, language) : today === 'closed' ? say('journey.hours.closed_today', { place: name }, language) : say('journey.hours.today', { place: name, open: opens, close: closes }, language);
      return { place, name, opens_at: opens, closes_at: closes, closed_today: today === 'closed', text: sentence };
    },

    places() {
      const byId = new Map<string, Partial<Record<JourneyLanguage, Set<string>>>>();
      for (const row of stmt.started.all()) {
        let doc: JourneyDoc;
        try {
          doc = docOf(row);
        } catch {
          continue;
        }
        for (const place of doc.places) {
          const names = byId.get(place.id) ?? {};
          for (const l of JOURNEY_LANGUAGES) {
            const set = names[l] ?? new Set<string>();
            if (place.name[l]) set.add(place.name[l]!);
            for (const a of place.aliases?.[l] ?? []) set.add(a);
            if (set.size > 0) names[l] = set;
          }
          byId.set(place.id, names);
        }
      }
      return [...byId].map(([id, names]) => ({ id, names: Object.fromEntries(Object.entries(names).map(([l, s]) => [l, [...s]])) }));
    },

    onPlacesChange(listener) {
      placeListeners.add(listener);
      return { dispose: () => void placeListeners.delete(listener) };
    },

    proposals(id, o = {}) {
      const row = rowOf(id);
      const language = lang(o.language, row.language);
      if (row.state === 'started') {
        const doc = docOf(row);
        const p = progressOf(row);
        const ideas = agent.propose({ doc, progress: p, covers: (venue) => held(row).find((e) => e.venues.includes(venue)) ?? null, language });
        const shown: AppendInput[] = [];
        tx(() => {
          for (const idea of ideas) {
            const pid = `prp_${randomUUID()}`;
            const inserted = stmt.insertProposal.run({ id: pid, journey_id: row.id, kind: idea.kind, subject: idea.subject, change: JSON.stringify(idea.change), params: JSON.stringify(idea.params), at: clock() }).changes;
            if (inserted === 1) shown.push({ topic: JOURNEY_EVENTS.recommendationShown, trace_id: row.trace_id, payload: { ...about(row), agent: 'journey-guide', proposal: pid, kind: idea.kind, change: idea.change } });
          }
          if (shown.length > 0) bus.stageMany(shown).deliver();
        });
      }
      const p = progressOf(row);
      return stmt.proposals
        .all(id)
        .map((r) => (r.state === 'shown' && (row.state !== 'started' || !proposalStillFits(p, JSON.parse(r.change) as Proposal['change'])) ? { ...r, state: 'expired' as const } : r))
        .map((r) => proposalView(r, language));
    },

    decide(id, pid, decision) {
      const row = rowOf(id);
      const r = stmt.proposal.get(id, pid);
      if (!r) throw new TesseraError('PROPOSAL_NOT_FOUND', `Journey ${id} has no proposal ${JSON.stringify(pid)}.`);
      if (r.state !== 'shown') return { journey: view(row), proposal: proposalView(r, row.language) };
      if (row.state !== 'started') throw new TesseraError('JOURNEY_ENDED', `Journey ${row.id} is ${row.state}; its proposals can no longer be taken.`, { details: { state: row.state } });
      const change_ = JSON.parse(r.change) as Proposal['change'];
      const topic = decision === 'accept' ? JOURNEY_EVENTS.recommendationAccepted : JOURNEY_EVENTS.recommendationRejected;
      let written = row;
      if (decision === 'accept') {
        if (!proposalStillFits(progressOf(row), change_)) throw new TesseraError('JOURNEY_CONFLICT', `The proposal no longer fits journey ${row.id} (the journey moved on); nothing was changed.`, { details: { current_version: row.version } });
        written = change(row, (p, at) => {
          stmt.decideProposal.run('accepted', at, pid);
          const { skipped } = applyChange(p, change_, at);
          return [
            { topic, trace_id: row.trace_id, payload: { ...about(row), agent: 'journey-guide', proposal: pid, kind: r.kind, change: change_ } },
            ...skipped.map((node) => ({ topic: JOURNEY_EVENTS.nodeSkipped, trace_id: row.trace_id, payload: { ...about(row), node, by: 'traveller', reason: 'substituted', proposal: pid } })),
          ];
        });
      } else {
        tx(() => {
          stmt.decideProposal.run('rejected', clock(), pid);
          bus.stageMany([{ topic, trace_id: row.trace_id, payload: { ...about(row), agent: 'journey-guide', proposal: pid, kind: r.kind } }]).deliver();
        });
      }
      return { journey: view(written), proposal: proposalView(stmt.proposal.get(id, pid)!, row.language) };
    },

    applyChange(id, change_, o) {
      if (typeof o?.key !== 'string' || o.key === '') throw new TesseraError('VALIDATION_FAILED', 'A journey change needs an idempotency key.');
      const row = rowOf(id);
      if (stmt.changeByKey.get(o.key)) return view(row);
      const doc = docOf(row);
      const p = progressOf(row);
      const op = (change_ as { op?: unknown } | null)?.op;
      if (op !== 'move_first' && op !== 'substitute' && op !== 'set_place') throw new TesseraError('VALIDATION_FAILED', 'A journey change is {op: move_first|substitute|set_place, node, with?|place?}.');
      if (typeof change_.node !== 'string' || !p.nodes[change_.node]) {
        throw new TesseraError('JOURNEY_NODE_UNKNOWN', `Journey ${row.id} has no node ${JSON.stringify(change_.node)}; its nodes are ${p.plan.join(', ')}.`, { details: { nodes: p.plan } });
      }
      if (change_.op === 'substitute' && !(nodeOf(doc, change_.node)?.alternatives ?? []).includes(change_.with)) {
        throw new TesseraError('JOURNEY_NODE_UNKNOWN', `Node ${change_.node} of journey ${row.id} has no alternative ${JSON.stringify(change_.with)}.`, { details: { alternatives: nodeOf(doc, change_.node)?.alternatives ?? [] } });
      }
      if (change_.op === 'set_place' && !doc.places.some((pl) => pl.id === change_.place)) {
        throw new TesseraError('PLACE_UNKNOWN', `Journey ${row.id} has no place ${JSON.stringify(change_.place)}.`, { details: { places: doc.places.map((pl) => pl.id) } });
      }
      if (row.state !== 'started') throw new TesseraError('JOURNEY_ENDED', `Journey ${row.id} is ${row.state}; it can no longer change.`, { details: { state: row.state } });
      if (!proposalStillFits(p, change_)) throw new TesseraError('JOURNEY_CONFLICT', `The change no longer fits journey ${row.id} (the journey moved on); nothing was changed.`, { details: { current_version: row.version } });
      const written = change(row, (progress, at) => {
        stmt.insertChange.run(o.key, row.id, JSON.stringify(change_), at);
        const { skipped } = applyChange(progress, change_, at);
        return skipped.map((node) => ({ topic: JOURNEY_EVENTS.nodeSkipped, trace_id: row.trace_id, payload: { ...about(row), node, by: 'traveller', reason: 'substituted', change_key: o.key } }));
      });
      return view(written);
    },

    recover() {
      for (const row of stmt.started.all()) {
        let doc: JourneyDoc;
        try {
          doc = docOf(row);
        } catch (err) {
          logger.warn('a journey\'s document is no longer in the catalogue', { journey: row.id, error: err });
          continue;
        }
        const p = progressOf(row);
        for (const id of p.plan) {
          const need = nodeOf(doc, id)?.needs;
          if (!need || !isOpen(p.nodes[id]!.state)) continue;
          const redeemed = entitlements
            .history({ venue: need.venue, limit: 200 })
            .find((r) => !r.undone_at && Date.parse(r.at) >= row.created_at && r.product_runtime_session_id !== undefined && ownedBy(r.product_runtime_session_id, row.user_id, need.product));
          if (redeemed) {
            logger.info('a redemption completes a journey node after a restart', { journey: row.id, node: id, redemption: redeemed.id });
            finishNode(row.id, id, 'completed', { by: 'redemption' });
          }
        }
      }
    },

    dispose() {
      for (const s of subscriptions.splice(0)) void s.dispose();
      placeListeners.clear();
    },
  };

  const ownedBy = (session: string, user: string, product: string): boolean => {
    try {
      const s = sessions.get(session);
      return s.user_id === user && s.product.id === product;
    } catch {
      return false;
    }
  };

  return journeys;
}
