/**
 * Journey documents (seed 000 "TJM", §4.4; issue 15 point 1): the published schema
 * (resources/schema/journey.schema.json), the rules a schema cannot state — each problem with its JSON-pointer path
 * and a plain-English message — and the signed form: a DSSE envelope with {@link JOURNEY_PAYLOAD_TYPE} over the
 * canonical bytes, verified against the publisher trust exactly as a ProductDef is (./signed.ts). The catalogue
 * (./index.ts) holds them beside the ProductDefs that name them.
 */
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { canonicalBytes } from '../../common/canonical.js';
import { cidOf } from '../../common/cid.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError } from '../../common/errors.js';
import { JOURNEY_PAYLOAD_TYPE, WEEKDAYS } from '../../common/journeys.js';
import type { JourneyDoc, JourneyDocProblem, JourneyNode, JourneyPlace, OpeningHours } from '../../common/journeys.js';
import type { SigningKey } from '../keys/index.js';
import { signEnvelope } from '../keys/index.js';
import type { TrustView } from '../trust/index.js';
import { openSigned, requireCanonical } from './signed.js';
import type { SignedKind } from './signed.js';
import journeySchema from '../../../resources/schema/journey.schema.json' with { type: 'json' };

export { JOURNEY_PAYLOAD_TYPE };

/** A signed journey document file is at most this big (the schema bounds every list well below it). */
export const MAX_JOURNEY_DOC_BYTES = 1024 * 1024;

const JOURNEY_KIND: SignedKind = { payloadType: JOURNEY_PAYLOAD_TYPE, what: 'a journey document', invalid: 'JOURNEY_DOC_INVALID', signCommand: 'tessera journey sign' };

/** What validation may ask the catalogue. */
export interface JourneyDocContext {
  /**
   * The venue ids of a product (every version the catalogue holds), or undefined when it holds no such product. Absent:
   * `needs` are not checked against products (a document validated offline, before its products are published).
   */
  venues?: (productId: string) => string[] | undefined;
}

/** Compiled on first use: every `tessera` command imports this module, few validate a journey. */
let compiled: ValidateFunction | undefined;
function schemaValidator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
    ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
    compiled = ajv.compile(journeySchema);
  }
  return compiled;
}

/**
 * Everything wrong with a journey document, in document order within each kind of check: schema errors first (when
 * there are any, the other checks do not run: they need the shape), then duplicate ids, unknown places and nodes,
 * needs outside the named product's venues (with `context.venues`), opening hours that never fit, static routes
 * between unknown nodes, nodes unreachable from `start`, and cycles in `next`. Empty: the document is valid.
 */
export function validateJourneyDoc(doc: unknown, context: JourneyDocContext = {}): JourneyDocProblem[] {
  const validateSchema = schemaValidator();
  if (!validateSchema(doc)) return schemaProblems(validateSchema.errors ?? []);
  const d = doc as JourneyDoc;
  const problems: JourneyDocProblem[] = [];
  const add = (path: string, code: JourneyDocProblem['code'], message: string) => problems.push({ path, code, message });

  if (!knownTimeZone(d.timezone)) add('/timezone', 'schema', `"${d.timezone}" is not an IANA time zone this device knows (e.g. Europe/Kyiv).`);

  // Ids: the first holder of an id wins; a later one is the problem.
  const places = new Map<string, { place: JourneyPlace; index: number }>();
  d.places.forEach((place, i) => {
    const held = places.get(place.id);
    if (held) add(`/places/${i}/id`, 'duplicate_id', `Place id "${place.id}" is already used by /places/${held.index}.`);
    else places.set(place.id, { place, index: i });
    (place.opening_hours ?? []).forEach((h, j) => {
      if (minutes(h.close) <= minutes(h.open)) add(`/places/${i}/opening_hours/${j}/close`, 'schema', `Closes at ${h.close}, not after it opens (${h.open}); hours past midnight are not supported.`);
    });
  });
  const nodes = new Map<string, { node: JourneyNode; index: number }>();
  d.nodes.forEach((node, i) => {
    const held = nodes.get(node.id);
    if (held) add(`/nodes/${i}/id`, 'duplicate_id', `Node id "${node.id}" is already used by /nodes/${held.index}.`);
    else nodes.set(node.id, { node, index: i });
  });
  const placeList = [...places.keys()].join(', ');
  const unknownNode = (id: string) => `No node has the id "${id}" (nodes: ${[...nodes.keys()].join(', ')}).`;

  if (!nodes.has(d.start)) add('/start', 'unknown_node', unknownNode(d.start));
  d.nodes.forEach((node, i) => {
    const at = places.get(node.place)?.place;
    if (!at) add(`/nodes/${i}/place`, 'unknown_place', `Node "${node.id}" is at "${node.place}", which is not one of the places (${placeList}).`);
    (node.next ?? []).forEach((id, j) => {
      if (!nodes.has(id)) add(`/nodes/${i}/next/${j}`, 'unknown_node', unknownNode(id));
    });
    (node.alternatives ?? []).forEach((id, j) => {
      if (!nodes.has(id)) add(`/nodes/${i}/alternatives/${j}`, 'unknown_node', unknownNode(id));
      else if (id === node.id) add(`/nodes/${i}/alternatives/${j}`, 'unknown_node', `Node "${node.id}" names itself as its own alternative.`);
    });
    if (node.needs && context.venues) {
      const venues = context.venues(node.needs.product);
      if (venues === undefined) add(`/nodes/${i}/needs/product`, 'unknown_venue', `Node "${node.id}" needs the product "${node.needs.product}", which the catalogue does not hold.`);
      else if (!venues.includes(node.needs.venue)) {
        add(`/nodes/${i}/needs/venue`, 'unknown_venue', `"${node.needs.venue}" is not a venue of ${node.needs.product} (its venues: ${venues.join(', ') || 'none'}), so no entitlement of it is valid there.`);
      }
    }
    if (at) for (const p of hoursProblems(node, i, at)) problems.push(p);
  });

  d.static_routes.forEach((route, i) => {
    for (const end of ['from', 'to'] as const) {
      if (!nodes.has(route[end])) add(`/static_routes/${i}/${end}`, 'static_route', `The static route ${route.from} → ${route.to} names "${route[end]}", which is not a node. ${unknownNode(route[end])}`);
    }
    if (route.from === route.to) add(`/static_routes/${i}/to`, 'static_route', `The static route goes from "${route.from}" to itself.`);
  });

  // Reachability: through `next`, or as an alternative of a reachable node (which may then continue by its own next).
  if (nodes.has(d.start)) {
    const reached = new Set<string>([d.start]);
    const queue = [d.start];
    while (queue.length > 0) {
      const node = nodes.get(queue.shift()!)!.node;
      for (const id of [...(node.next ?? []), ...(node.alternatives ?? [])]) {
        if (nodes.has(id) && !reached.has(id)) {
          reached.add(id);
          queue.push(id);
        }
      }
    }
    d.nodes.forEach((node, i) => {
      if (!reached.has(node.id) && nodes.get(node.id)?.index === i) {
        add(`/nodes/${i}`, 'unreachable_node', `Node "${node.id}" (${node.title.en}) cannot be reached from the start "${d.start}": no reachable node lists it in next or alternatives.`);
      }
    });
  }

  for (const cycle of nextCycles(d, nodes)) add(cycle.path, 'order_cycle', `The order has a cycle: ${cycle.ids.join(' → ')}. \`next\` must not lead back to a node (the journey is a DAG from start).`);
  return problems;
}

/** The document when it has no problem. @throws TesseraError JOURNEY_DOC_INVALID listing the problems (details.problems). */
export function assertJourneyDoc(value: unknown, source = 'journey document', context: JourneyDocContext = {}): JourneyDoc {
  const problems = validateJourneyDoc(value, context);
  if (problems.length > 0) {
    const shown = problems.slice(0, 8).map((p) => `${p.path || '/'}: ${p.message}`);
    const more = problems.length > 8 ? ` (and ${problems.length - 8} more)` : '';
    throw new TesseraError('JOURNEY_DOC_INVALID', `${source}: ${shown.join('; ')}${more}`, { details: { source, problems } });
  }
  return value as JourneyDoc;
}

/**
 * Signs a journey document (validated first, without a catalogue: `needs` are checked when a catalogue adds it) as a
 * DSSE envelope over its canonical bytes. Ed25519 is deterministic: the same document and key give the same envelope.
 * @throws TesseraError JOURNEY_DOC_INVALID listing the problems.
 */
export function signJourneyDoc(doc: JourneyDoc, key: SigningKey, source?: string): DsseEnvelope {
  const valid = assertJourneyDoc(doc, source);
  return signEnvelope(JOURNEY_PAYLOAD_TYPE, canonicalBytes(valid), [key]);
}

export interface VerifiedJourneyDoc {
  doc: JourneyDoc;
  cid: string;
  publisher: { keyid: string; name: string };
  envelope: DsseEnvelope;
}

/**
 * Verifies a signed journey document: a DSSE envelope of {@link JOURNEY_PAYLOAD_TYPE} by a key `trust` trusts, whose
 * payload is the canonical bytes of a valid document (checked with `context`: the catalogue's products).
 * @throws TesseraError SIGNATURE_INVALID (malformed, other payload type, altered), KEY_UNKNOWN, KEY_REVOKED, or
 *   JOURNEY_DOC_INVALID (the payload is not a valid document, or not its canonical bytes), naming `source`.
 */
export function verifyJourneyDoc(json: unknown, trust: TrustView, source = 'journey document', context: JourneyDocContext = {}): VerifiedJourneyDoc {
  const opened = openSigned(json, trust, JOURNEY_KIND, source);
  const doc = assertJourneyDoc(opened.value, source, context);
  requireCanonical(doc, opened.payload, JOURNEY_KIND, source);
  return { doc, cid: cidOf(doc), publisher: opened.publisher, envelope: opened.envelope };
}

// ---- opening hours ----

/** `HH:MM` (or `24:00`) in minutes after midnight. */
function minutes(clock: string): number {
  return Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));
}

/** `tue–sun`, `mon, wed, fri`: days in week order, runs of three or more joined. */
function dayList(days: readonly string[]): string {
  const idx = [...new Set(days)].map((d) => WEEKDAYS.indexOf(d as (typeof WEEKDAYS)[number])).sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1] === idx[j]! + 1) j++;
    parts.push(j - i >= 2 ? `${WEEKDAYS[idx[i]!]}–${WEEKDAYS[idx[j]!]}` : idx.slice(i, j + 1).map((k) => WEEKDAYS[k]).join(', '));
    i = j + 1;
  }
  return parts.join(', ');
}

const hoursText = (hours: readonly OpeningHours[]) => hours.map((h) => `${dayList(h.days)} ${h.open}–${h.close}`).join('; ');

/**
 * A node fits when, on some day, the place is open for `duration_min` inside the node's window (or at all, without a
 * window). A place without opening hours is always open.
 */
function hoursProblems(node: JourneyNode, i: number, place: JourneyPlace): JourneyDocProblem[] {
  const w = node.window;
  const name = place.name.en;
  if (w) {
    const span = minutes(w.until) - minutes(w.from);
    if (span <= 0) return [{ path: `/nodes/${i}/window/until`, code: 'hours_never_fit', message: `Node "${node.id}"'s window ends at ${w.until}, not after it starts (${w.from}).` }];
    if (span < node.duration_min) {
      return [{ path: `/nodes/${i}/window`, code: 'hours_never_fit', message: `Node "${node.id}"'s window ${w.from}–${w.until} is ${span} minutes, shorter than its ${node.duration_min} minutes.` }];
    }
  }
  const hours = place.opening_hours;
  if (hours === undefined) return [];
  const usable = hours.filter((h) => minutes(h.close) > minutes(h.open));
  if (usable.length === 0) return [{ path: `/nodes/${i}/place`, code: 'hours_never_fit', message: `Node "${node.id}" is at ${name}, which is never open (its opening hours name no day with a time open).` }];
  const from = w ? minutes(w.from) : 0;
  const until = w ? minutes(w.until) : 24 * 60;
  const best = Math.max(...usable.map((h) => Math.min(until, minutes(h.close)) - Math.max(from, minutes(h.open))));
  if (best >= node.duration_min) return [];
  if (w) {
    const inside = best <= 0 ? 'does not overlap them at all' : `overlaps them by at most ${best} minutes`;
    return [{ path: `/nodes/${i}/window`, code: 'hours_never_fit', message: `Node "${node.id}" never fits: ${name} is open ${hoursText(hours)}, and the window ${w.from}–${w.until} ${inside}, less than the node's ${node.duration_min} minutes, on every day.` }];
  }
  return [{ path: `/nodes/${i}/duration_min`, code: 'hours_never_fit', message: `Node "${node.id}" never fits: ${name} is open at most ${best} minutes a day (${hoursText(hours)}), less than the node's ${node.duration_min} minutes.` }];
}

// ---- order ----

/** Each cycle of `next` once, as the ids around it (first = last), with the pointer of the edge that closes it. */
function nextCycles(d: JourneyDoc, nodes: Map<string, { node: JourneyNode; index: number }>): Array<{ ids: string[]; path: string }> {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: Array<{ ids: string[]; path: string }> = [];
  const visit = (id: string): void => {
    state.set(id, 'open');
    stack.push(id);
    const { node, index } = nodes.get(id)!;
    (node.next ?? []).forEach((to, j) => {
      if (!nodes.has(to)) return;
      const s = state.get(to);
      if (s === 'open') cycles.push({ ids: [...stack.slice(stack.indexOf(to)), to], path: `/nodes/${index}/next/${j}` });
      else if (s === undefined) visit(to);
    });
    stack.pop();
    state.set(id, 'done');
  };
  // From the start first, so that a cycle is named in the order a traveller would walk it.
  for (const id of [d.start, ...nodes.keys()]) if (nodes.has(id) && !state.has(id)) visit(id);
  return cycles;
}

function knownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

// ---- schema errors ----

const pointerSegment = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

function schemaProblems(errors: readonly ErrorObject[]): JourneyDocProblem[] {
  const seen = new Set<string>();
  const out: JourneyDocProblem[] = [];
  for (const e of errors) {
    const p = schemaProblem(e);
    const key = `${p.path}\n${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

function schemaProblem(e: ErrorObject): JourneyDocProblem {
  const at = e.instancePath;
  const params = e.params as Record<string, unknown>;
  const custom = (e.parentSchema as { 'x-message'?: string } | undefined)?.['x-message'];
  const problem = (path: string, message: string): JourneyDocProblem => ({ path, code: 'schema', message });
  switch (e.keyword) {
    case 'required':
      return problem(`${at}/${pointerSegment(String(params['missingProperty']))}`, 'Is required.');
    case 'additionalProperties':
      return problem(`${at}/${pointerSegment(String(params['additionalProperty']))}`, 'Is not a known field.');
    case 'enum':
      return problem(at, `Must be one of ${(params['allowedValues'] as unknown[]).join(', ')}.`);
    case 'uniqueItems':
      return problem(`${at}/${String(params['i'])}`, `Repeats item ${String(params['j'])} of the list.`);
    case 'minItems':
      return problem(at, `Must list at least ${String(params['limit'])}.`);
    case 'maxItems':
      return problem(at, `Must list at most ${String(params['limit'])}.`);
    case 'minLength':
      return problem(at, params['limit'] === 1 ? 'Must not be empty.' : `Must be at least ${String(params['limit'])} characters.`);
    case 'maxLength':
      return problem(at, `Must be at most ${String(params['limit'])} characters.`);
    default:
      if (custom && ['pattern', 'type', 'minimum', 'maximum'].includes(e.keyword)) return problem(at, `${custom.charAt(0).toUpperCase()}${custom.slice(1)}.`);
      return problem(at, `${(e.message ?? 'is invalid').replace(/^./, (c) => c.toUpperCase())}.`);
  }
}
