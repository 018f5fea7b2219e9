/**
 * The client side of issue 15's routes — journeys (instances), their next step, routes and the Journey Guide
 * agent's proposals, and the city package (routing status and the offline map) — written once over a
 * {@link Requester}, exactly like ./products-api.ts: the HTTP transport sends the request itself, the Electron
 * transport hands it to the main process through the generic IPC method `api` (no per-method IPC), which injects it
 * into the same Fastify routes with the window's credential. Refusals reject with the route's TesseraError
 * (JOURNEY_NOT_FOUND, JOURNEY_CONFLICT with `details.current_version`, JOURNEY_ENDED, SESSION_NOT_ACTIVE, …).
 *
 * Paths and shapes: ISSUE15-PLAN.md "Journeys (lead)" and "Routing (HA)"; the shapes are main/common/journeys.ts.
 * Pure module: shared by the renderer and the host.
 */
import type { JourneyLanguage, JourneyPhase, JourneyState, JourneyView, LatLon, NextStep, Proposal, RoutePlan, RoutingStatus } from './journeys.js';
import { query } from './products-api.js';
import type { Requester } from './products-api.js';

/**
 * Geometry for an offline map (`GET /api/city/map`; main/runtime/routing `CityMap`): no tile server, only the city
 * package's walking ways as polylines, its transit stops and lines, and the box around them.
 */
export interface CityMap {
  bbox: { south: number; west: number; north: number; east: number };
  ways: LatLon[][];
  stops: Array<{ id: string; name: string; location: LatLon }>;
  lines: Array<{ name: string; path: LatLon[] }>;
}

/** What `POST /api/journeys` takes: the product runtime session (must be active), optionally which document and phase. */
export interface StartJourneyRequest {
  session: string;
  /** A journey document ref (`id@range`); default: the one the session's product names. */
  journey?: string;
  phase?: JourneyPhase;
  language?: JourneyLanguage;
}

export interface JourneyClient {
  /** Starts a journey for an active product session (201). Errors: SESSION_NOT_ACTIVE, JOURNEY_DOC_NOT_FOUND. */
  start(request: StartJourneyRequest): Promise<JourneyView>;
  /** Journeys by product session, by traveller (`user`: the dialogue session id on a kiosk) and state. */
  list(query?: { session?: string; user?: string; state?: JourneyState }): Promise<JourneyView[]>;
  get(id: string, language?: JourneyLanguage): Promise<JourneyView>;
  /**
   * The traveller is done at `node` (touch). With `expected_version` a stale screen gets JOURNEY_CONFLICT
   * (`details.current_version`) instead of changing a journey it has not seen; completing a node that is already
   * completed answers the journey as it stands.
   */
  complete(id: string, node: string, options?: { expected_version?: number }): Promise<JourneyView>;
  skip(id: string, node: string, options?: { expected_version?: number }): Promise<JourneyView>;
  abandon(id: string, reason?: string): Promise<JourneyView>;
  /** The next-step card: the sentence, the node, the route (graph or static), whether routing is degraded. */
  next(id: string, language?: JourneyLanguage): Promise<NextStep>;
  /** A route from the current node's place to `place` (a place id of the journey). Errors: PLACE_UNKNOWN, ROUTE_NOT_FOUND. */
  route(id: string, place: string, language?: JourneyLanguage): Promise<RoutePlan>;
  /** The agent's proposals for this journey (every state; the guide shows those still `shown`). */
  proposals(id: string): Promise<Proposal[]>;
  accept(id: string, proposal: string): Promise<{ journey: JourneyView; proposal: Proposal }>;
  reject(id: string, proposal: string): Promise<{ journey: JourneyView; proposal: Proposal }>;
  /** The city package's state (`GET /api/city`): graph routing or static routes and why, the package's age. */
  city(): Promise<RoutingStatus>;
  /** The offline map's geometry. Rejects with CITY_PACKAGE_MISSING while routing is degraded. */
  cityMap(): Promise<CityMap>;
}

const seg = (value: string) => encodeURIComponent(value);
const versioned = (options?: { expected_version?: number }) => (options?.expected_version === undefined ? {} : { expected_version: options.expected_version });

/** The journey client over one requester (HTTP or IPC). */
export function createJourneyClient(request: Requester): JourneyClient {
  const path = (id: string) => `/api/journeys/${seg(id)}`;
  return {
    start: (body) => request<JourneyView>('POST', '/api/journeys', body),
    list: (q = {}) => request<{ journeys: JourneyView[] }>('GET', `/api/journeys${query(q)}`).then((r) => r.journeys),
    get: (id, language) => request<JourneyView>('GET', `${path(id)}${query({ language })}`),
    complete: (id, node, options) => request<JourneyView>('POST', `${path(id)}/nodes/${seg(node)}/complete`, versioned(options)),
    skip: (id, node, options) => request<JourneyView>('POST', `${path(id)}/nodes/${seg(node)}/skip`, versioned(options)),
    abandon: (id, reason) => request<JourneyView>('POST', `${path(id)}/abandon`, reason === undefined ? {} : { reason }),
    next: (id, language) => request<NextStep>('GET', `${path(id)}/next${query({ language })}`),
    route: (id, place, language) => request<RoutePlan>('GET', `${path(id)}/route${query({ to: place, language })}`),
    proposals: (id) => request<{ proposals: Proposal[] }>('GET', `${path(id)}/proposals`).then((r) => r.proposals),
    accept: (id, pid) => request<{ journey: JourneyView; proposal: Proposal }>('POST', `${path(id)}/proposals/${seg(pid)}/accept`, {}),
    reject: (id, pid) => request<{ journey: JourneyView; proposal: Proposal }>('POST', `${path(id)}/proposals/${seg(pid)}/reject`, {}),
    city: () => request<RoutingStatus>('GET', '/api/city'),
    cityMap: () => request<CityMap>('GET', '/api/city/map'),
  };
}
