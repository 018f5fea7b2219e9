/**
 * Journeys and routes (seed 000 §3.2, §4.4 "TJM", §4.5, §6.2, §7.1 "LEM"; issue 15): the shapes shared by the
 * runtime (main/runtime/journeys, main/runtime/routing), the host (HTTP, CLI, IPC) and the renderer. Pure: no Node
 * APIs.
 *
 * A **journey document** (TJM doc) is signed and content-addressed like a ProductDef: a DSSE envelope with
 * {@link JOURNEY_PAYLOAD_TYPE} over its canonical bytes; its cid identifies it; a ProductDef names it
 * (`journey: "<id>@<range>"`). Its schema is `resources/schema/journey.schema.json`.
 *
 * A **journey instance** follows one document for one product runtime session; a session holds 0..N of them
 * (pre-trip, in-trip, post-trip). Its events are exactly the seed's (§6.2, {@link JOURNEY_EVENTS}), each carrying
 * `product_runtime_session_id`.
 */

/** DSSE payloadType of a signed journey document. */
export const JOURNEY_PAYLOAD_TYPE = 'application/vnd.tessera.journey+json';

/** Languages a journey speaks: the seeds' languages. A text map must hold `en`; others fall back to it. */
export const JOURNEY_LANGUAGES = ['en', 'ru', 'uk'] as const;
export type JourneyLanguage = (typeof JOURNEY_LANGUAGES)[number];
/** `{en: "...", ru?: "...", uk?: "..."}`. */
export type JourneyText = { en: string } & Partial<Record<JourneyLanguage, string>>;

export const NODE_KINDS = ['visit', 'meal', 'transit', 'checkpoint', 'free_time'] as const;
export type NodeKind = (typeof NODE_KINDS)[number];

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface LatLon {
  lat: number;
  lon: number;
}

/** Open `open`–`close` (local `HH:MM`, close after open; `24:00` allowed) on each of `days`. */
export interface OpeningHours {
  days: Weekday[];
  open: string;
  close: string;
}

/** A service point (seed 000 LEM): where a node happens. */
export interface JourneyPlace {
  /** For places that accept entitlements: the ProductDef venue id (`lviv.history`). */
  id: string;
  name: JourneyText;
  /** Other names a traveller may say, per language (compiled into the speech grammar with the name). */
  aliases?: Partial<Record<JourneyLanguage, string[]>>;
  kind: 'museum' | 'cafe' | 'restaurant' | 'square' | 'theatre' | 'park' | 'church' | 'viewpoint' | 'station' | 'other';
  indoor: boolean;
  location: LatLon;
  /** Absent: always open (a square, a street). */
  opening_hours?: OpeningHours[];
}

/** The entitlement a node needs: a product whose entitlement is valid at `venue` (a ProductDef venue id). */
export interface NodeNeed {
  /** ProductDef id (`city.museum-pass-48h`). */
  product: string;
  venue: string;
}

export interface JourneyNode {
  id: string;
  kind: NodeKind;
  place: string;
  title: JourneyText;
  /** Planned time at the node. */
  duration_min: number;
  /** Local time window the node should happen in (`HH:MM`); must fit the place's opening hours on some day. */
  window?: { from: string; until: string };
  needs?: NodeNeed;
  /** Order constraints: the nodes that may come next (the journey graph is a DAG from `start`). */
  next?: string[];
  /** Nodes that may replace this one (an indoor alternative when it rains…); they need not be on a `next` path. */
  alternatives?: string[];
  /** May be skipped without the journey counting as partial. */
  optional?: boolean;
}

/** A route written in the document: what the guide uses when the city package cannot route (seed 000 §7.1). */
export interface StaticRoute {
  from: string;
  to: string;
  mode: 'walk' | 'transit';
  minutes: number;
  /** Plain directions, said and shown when routing is degraded. */
  text: JourneyText;
  /** Optional polyline for the map. */
  path?: LatLon[];
}

export interface JourneyDoc {
  id: string;
  version: string;
  city: string;
  /** IANA zone of opening hours and windows (`Europe/Kyiv`). */
  timezone: string;
  title: JourneyText;
  description?: JourneyText;
  /** Which part of a trip it guides (seed 000 §3.2). */
  phase: JourneyPhase;
  places: JourneyPlace[];
  nodes: JourneyNode[];
  /** The first node. */
  start: string;
  static_routes: StaticRoute[];
}

export const JOURNEY_PHASES = ['pre_trip', 'in_trip', 'post_trip'] as const;
export type JourneyPhase = (typeof JOURNEY_PHASES)[number];

/** One problem of a journey document, with where it is (`/nodes/3/place`, a JSON pointer). */
export interface JourneyDocProblem {
  path: string;
  code: 'schema' | 'unknown_place' | 'unknown_node' | 'unreachable_node' | 'order_cycle' | 'unknown_venue' | 'hours_never_fit' | 'duplicate_id' | 'static_route';
  message: string;
}

// ---- instances (seed 000 §6.2) ----

export const JOURNEY_STATES = ['started', 'completed', 'abandoned'] as const;
export type JourneyState = (typeof JOURNEY_STATES)[number];

export const NODE_STATES = ['pending', 'entered', 'completed', 'skipped'] as const;
export type NodeState = (typeof NODE_STATES)[number];

/** Exactly the seed's journey events (§6.2), plus the agent's (§6.4) and degradation (§7.1). */
export const JOURNEY_EVENTS = {
  started: 'journey.started',
  nodeEntered: 'journey.node.entered',
  nodeCompleted: 'journey.node.completed',
  nodeSkipped: 'journey.node.skipped',
  routeGenerated: 'journey.route.generated',
  completed: 'journey.completed',
  abandoned: 'journey.abandoned',
  recommendationShown: 'agent.recommendation.shown',
  recommendationAccepted: 'agent.recommendation.accepted',
  recommendationRejected: 'agent.recommendation.rejected',
  lemDegraded: 'lem.degraded',
  runtimeDegraded: 'product.runtime.degraded',
} as const;

/** Who completed a node: the traveller (touch, voice) or a staff redemption of its entitlement at its venue. */
export type NodeCompletedBy = 'touch' | 'voice' | 'redemption' | 'operator';

export interface JourneyNodeView {
  id: string;
  kind: NodeKind;
  title: string;
  place: { id: string; name: string; location: LatLon; indoor: boolean; kind: JourneyPlace['kind'] };
  state: NodeState;
  /** Entered / completed / skipped at (ISO). */
  at: string | null;
  by: NodeCompletedBy | null;
  needs: NodeNeed | null;
  /** The traveller's entitlement covering `needs` (serial, code for the QR, title), if they hold one. */
  covered_by: { serial: string; code: string; title: string | null } | null;
  /** Today's opening in the place's zone, `HH:MM`, when it has hours. */
  opens_at: string | null;
  closes_at: string | null;
  /** The place has opening hours and does not open today. */
  closed_today: boolean;
  duration_min: number;
}

export interface JourneyView {
  journey_instance_id: string;
  product_runtime_session_id: string;
  /** `id@version` and cid of the document. */
  doc: { ref: string; cid: string; title: string };
  phase: JourneyPhase;
  state: JourneyState;
  language: JourneyLanguage;
  /** The itinerary in planned order (accepted proposals may reorder or substitute). */
  nodes: JourneyNodeView[];
  /** The node the traveller is at or heading to; null once the journey ended. */
  current: string | null;
  /** Increases with every change: a UI sends it back as `expected_version` to detect another UI's change. */
  version: number;
  /** Routing health: `ok`, or why the guide uses the document's static routes. */
  routing: RoutingStatus;
  created_at: string;
  updated_at: string;
  ended_at: string | null;
}

// ---- routing (seed 000 "LEM") ----

export interface RoutingStatus {
  mode: 'graph' | 'static';
  /** Present when `mode` is `static`: missing, stale, invalid (failed verification) or no_path. */
  degraded: { reason: 'missing' | 'stale' | 'invalid'; message: string } | null;
  package: { id: string; version: string; created_at: string; valid_until: string; age_days: number } | null;
}

export interface RouteLeg {
  mode: 'walk' | 'transit';
  from: { name: string; location: LatLon };
  to: { name: string; location: LatLon };
  /** ISO times. */
  depart_at: string;
  arrive_at: string;
  meters: number;
  /** transit only: the line (`Tram 7`) and its headsign. */
  line?: string;
  headsign?: string;
  stops?: number;
  path: LatLon[];
}

export interface RoutePlan {
  /** `graph`: planned on the city package; `static`: the document's static route. */
  source: 'graph' | 'static';
  from: LatLon;
  to: LatLon;
  depart_at: string;
  arrive_at: string;
  minutes: number;
  meters: number;
  legs: RouteLeg[];
  /** Plain directions in the asked language (static routes: the document's text). */
  text: string;
}

/** What the next-step card shows and the guide says ("walk 8 minutes to the Art Gallery; your pass covers it; it opens at 10:00"). */
export interface NextStep {
  journey_instance_id: string;
  node: JourneyNodeView | null;
  route: RoutePlan | null;
  /** The sentence, in the journey's language. */
  text: string;
  /** True when routing fell back to static routes (the text says so). */
  degraded: boolean;
  finished: boolean;
}

// ---- the Journey Guide agent (seed 000 §4.5 agent loop, §5.1, §6.4, §8: it proposes, the traveller decides) ----

export type ProposalKind = 'closes_soon' | 'rain_indoor' | 'free_time_cafe';
export type ProposalState = 'shown' | 'accepted' | 'rejected' | 'expired';

export interface Proposal {
  id: string;
  journey_instance_id: string;
  kind: ProposalKind;
  state: ProposalState;
  /** The card's sentence in the journey's language. */
  text: string;
  /** What accepting changes: make `node` the next one, replace `node` by its alternative `with`, or spend free-time `node` at `place`. */
  change: { op: 'move_first'; node: string } | { op: 'substitute'; node: string; with: string } | { op: 'set_place'; node: string; place: string };
  created_at: string;
  decided_at: string | null;
}
