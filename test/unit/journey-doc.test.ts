/**
 * Journey documents (issue 15 point 1): the shipped Lviv day against the schema and the rules it cannot state; each
 * validation problem on a small break of it, with its code and JSON-pointer path; signing and verifying; and the
 * catalogue holding them beside the ProductDefs — resolve, conflict, idempotent add, restart — on a real SQLite file.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../main/common/canonical.js';
import { cidOf } from '../../main/common/cid.js';
import { toBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { JOURNEY_PAYLOAD_TYPE } from '../../main/common/journeys.js';
import type { JourneyDoc, JourneyDocProblem } from '../../main/common/journeys.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { createCatalogue, signJourneyDoc, signProductDef, validateJourneyDoc, validateProductDef, verifyJourneyDoc } from '../../main/runtime/catalogue/index.js';
import type { JourneyDocContext, ProductDef } from '../../main/runtime/catalogue/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { generateKeyPair, readPrivateKey, signEnvelope } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { openTrustStore } from '../../main/runtime/trust/index.js';
import type { TrustStore } from '../../main/runtime/trust/index.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const JOURNEY_SRC = join(ROOT, 'resources', 'journeys', 'src');
const JOURNEYS = join(ROOT, 'resources', 'journeys');
const CATALOGUE_SRC = join(ROOT, 'resources', 'catalogue', 'src');
const sample = (): JourneyDoc => JSON.parse(readFileSync(join(JOURNEY_SRC, 'lviv.old-town-day.json'), 'utf8')) as JourneyDoc;
const productDef = (file: string): ProductDef => JSON.parse(readFileSync(join(CATALOGUE_SRC, file), 'utf8')) as ProductDef;
const SHIPPED_DEFS = readdirSync(CATALOGUE_SRC).map(productDef);

/** The venues of the shipped products, as the catalogue answers them. */
const shippedVenues: JourneyDocContext = {
  venues: (id) => {
    const defs = SHIPPED_DEFS.filter((d) => d.id === id);
    return defs.length === 0 ? undefined : [...new Set(defs.flatMap((d) => d.profiles.entitlement.venues.map((v) => v.id)))];
  },
};

const node = (doc: JourneyDoc, id: string) => doc.nodes.find((n) => n.id === id)!;
const place = (doc: JourneyDoc, id: string) => doc.places.find((p) => p.id === id)!;

describe('the shipped journey document lviv.old-town-day', () => {
  it('is valid, with the products the shipped catalogue sells', () => {
    expect(validateJourneyDoc(sample(), shippedVenues)).toEqual([]);
    expect(sample()).toMatchObject({ id: 'lviv.old-town-day', version: '1.0.0', city: 'lviv', timezone: 'Europe/Kyiv', phase: 'in_trip', start: 'rynok' });
  });

  it('walks Rynok Square → History Museum → Pharmacy Museum → lunch → Art Gallery → free time → Opera, with an optional tram trip and a rainy-day alternative', () => {
    const doc = sample();
    const order: string[] = [];
    for (let id: string | undefined = doc.start; id; id = node(doc, id).next?.at(-1)) order.push(`${id}:${node(doc, id).kind}`);
    expect(order).toEqual(['rynok:checkpoint', 'history:visit', 'pharm:visit', 'lunch:meal', 'art:visit', 'free:free_time', 'opera:checkpoint']);
    expect(node(doc, 'history').needs).toEqual({ product: 'city.museum-pass-48h', venue: 'lviv.history' });
    expect(node(doc, 'pharm').needs).toEqual({ product: 'city.museum-pass-48h', venue: 'lviv.pharm' });
    expect(node(doc, 'art').needs).toEqual({ product: 'city.museum-pass-48h', venue: 'lviv.art' });
    expect(node(doc, 'lunch').needs).toEqual({ product: 'city.coffee-voucher', venue: 'lviv.rynok' });
    // Venue places carry the ProductDef venue ids, so that a redemption there names them.
    for (const n of doc.nodes.filter((x) => x.needs)) expect(n.place).toBe(n.needs!.venue);
    expect(node(doc, 'lychakiv')).toMatchObject({ optional: true, next: ['art'] });
    expect(node(doc, 'lunch').next).toEqual(['lychakiv', 'art']);
    expect(node(doc, 'art').alternatives).toEqual(['cathedral']);
    expect(place(doc, node(doc, 'cathedral').place).indoor).toBe(true);
    // The tram beats walking to Lychakiv.
    expect(doc.static_routes.find((r) => r.from === 'lunch' && r.to === 'lychakiv')).toMatchObject({ mode: 'transit' });
  });

  it('has real coordinates, opening hours closed on Monday at the two big museums, texts and aliases in en, ru and uk', () => {
    const doc = sample();
    const at = (id: string) => place(doc, id).location;
    expect(at('lviv.rynok-square')).toEqual({ lat: 49.8419, lon: 24.0316 });
    expect(at('lviv.history')).toEqual({ lat: 49.8418, lon: 24.0322 });
    expect(at('lviv.pharm')).toEqual({ lat: 49.8428, lon: 24.0325 });
    expect(at('lviv.art')).toEqual({ lat: 49.8377, lon: 24.0254 });
    expect(at('lviv.opera-house')).toEqual({ lat: 49.8441, lon: 24.0262 });
    expect(at('lviv.lychakiv')).toEqual({ lat: 49.8331, lon: 24.0561 });
    for (const id of ['lviv.history', 'lviv.art']) expect(place(doc, id).opening_hours!.flatMap((h) => h.days)).not.toContain('mon');
    for (const p of doc.places) {
      expect(Object.keys(p.name).sort(), p.id).toEqual(['en', 'ru', 'uk']);
      expect(Object.keys(p.aliases ?? {}).sort(), p.id).toEqual(['en', 'ru', 'uk']);
    }
    for (const n of doc.nodes) expect(Object.keys(n.title).sort(), n.id).toEqual(['en', 'ru', 'uk']);
    expect(place(doc, 'lviv.history').aliases).toMatchObject({ en: expect.arrayContaining(['history museum']), ru: expect.arrayContaining(['исторический музей']), uk: expect.arrayContaining(['історичний музей']) });
  });

  it('writes a static route, in three languages, for every step the order allows (next, and into each alternative)', () => {
    const doc = sample();
    const steps = doc.nodes.flatMap((n) => (n.next ?? []).map((to) => `${n.id}→${to}`));
    const alternatives = doc.nodes.flatMap((n) => (n.alternatives ?? []).flatMap((alt) => doc.nodes.filter((m) => m.next?.includes(n.id)).map((m) => `${m.id}→${alt}`)));
    const routes = new Set(doc.static_routes.map((r) => `${r.from}→${r.to}`));
    for (const step of [...steps, ...alternatives]) expect(routes.has(step), step).toBe(true);
    for (const r of doc.static_routes) expect(Object.keys(r.text).sort()).toEqual(['en', 'ru', 'uk']);
  });

  it('is named by the museum pass 1.1.0 (journey: lviv.old-town-day@^1); 1.0.0 names none', () => {
    const v11 = validateProductDef(productDef('city.museum-pass-48h@1.1.0.json'));
    expect(v11).toMatchObject({ id: 'city.museum-pass-48h', version: '1.1.0', journey: 'lviv.old-town-day@^1' });
    expect(validateProductDef(productDef('city.museum-pass-48h.json')).journey).toBeUndefined();
  });
});

type Break = [what: string, breakIt: (d: JourneyDoc) => void, expected: Pick<JourneyDocProblem, 'code' | 'path'> & { message?: RegExp }];

describe('journey document validation', () => {
  it.each<Break>([
    ['a missing title', (d) => void delete (d as Partial<JourneyDoc>).title, { code: 'schema', path: '/title', message: /required/ }],
    ['an unknown field on a node', (d) => void ((d.nodes[0] as unknown as Record<string, unknown>)['colour'] = 'red'), { code: 'schema', path: '/nodes/0/colour', message: /not a known field/ }],
    ['a node kind outside the list', (d) => void ((d.nodes[1] as { kind: string }).kind = 'party'), { code: 'schema', path: '/nodes/1/kind', message: /one of visit, meal, transit, checkpoint, free_time/ }],
    ['a time that is not HH:MM', (d) => void (node(d, 'history').window!.from = '25:00'), { code: 'schema', path: '/nodes/1/window/from', message: /HH:MM/ }],
    ['a latitude beyond the pole', (d) => void (d.places[0]!.location.lat = 91), { code: 'schema', path: '/places/0/location/lat', message: /latitude/ }],
    ['a title without English', (d) => void (d.title = { uk: 'День' } as unknown as JourneyDoc['title']), { code: 'schema', path: '/title/en', message: /required/ }],
    ['an unknown time zone', (d) => void (d.timezone = 'Europe/Atlantis'), { code: 'schema', path: '/timezone', message: /not an IANA time zone/ }],
    ['a place closing before it opens', (d) => void (place(d, 'lviv.history').opening_hours![0]!.close = '09:00'), { code: 'schema', path: '/places/1/opening_hours/0/close', message: /not after it opens \(10:00\)/ }],
    ['a place id used twice', (d) => void (d.places[2]!.id = 'lviv.history'), { code: 'duplicate_id', path: '/places/2/id', message: /already used by \/places\/1/ }],
    ['a node id used twice', (d) => void (d.nodes[2]!.id = 'history'), { code: 'duplicate_id', path: '/nodes/2/id', message: /"history" is already used by \/nodes\/1/ }],
    ['a node at an unknown place', (d) => void (node(d, 'history').place = 'lviv.zoo'), { code: 'unknown_place', path: '/nodes/1/place', message: /"lviv\.zoo", which is not one of the places/ }],
    ['next naming an unknown node', (d) => void (node(d, 'pharm').next = ['brunch']), { code: 'unknown_node', path: '/nodes/2/next/0', message: /No node has the id "brunch"/ }],
    ['an alternative naming an unknown node', (d) => void (node(d, 'art').alternatives = ['castle']), { code: 'unknown_node', path: '/nodes/5/alternatives/0', message: /"castle"/ }],
    ['a start naming an unknown node', (d) => void (d.start = 'station'), { code: 'unknown_node', path: '/start', message: /"station"/ }],
    ['a needs.venue the product does not list', (d) => void (node(d, 'history').needs!.venue = 'lviv.opera'), { code: 'unknown_venue', path: '/nodes/1/needs/venue', message: /"lviv\.opera" is not a venue of city\.museum-pass-48h \(its venues: lviv\.history, lviv\.art, lviv\.pharm\)/ }],
    ['a needs.product the catalogue does not hold', (d) => void (node(d, 'history').needs!.product = 'city.zoo-ticket'), { code: 'unknown_venue', path: '/nodes/1/needs/product', message: /"city\.zoo-ticket", which the catalogue does not hold/ }],
    ['a window after closing time', (d) => void (node(d, 'history').window = { from: '18:00', until: '20:00' }), { code: 'hours_never_fit', path: '/nodes/1/window', message: /Lviv History Museum is open tue–sun 10:00–18:00, and the window 18:00–20:00 does not overlap them at all/ }],
    ['a window that leaves too little time before closing', (d) => void (node(d, 'art').window = { from: '17:30', until: '19:00' }), { code: 'hours_never_fit', path: '/nodes/5/window', message: /overlaps them by at most 30 minutes, less than the node's 75 minutes/ }],
    ['a visit longer than the place is ever open', (d) => {
      delete node(d, 'pharm').window;
      node(d, 'pharm').duration_min = 700;
    }, { code: 'hours_never_fit', path: '/nodes/2/duration_min', message: /open at most 600 minutes a day \(mon–fri 09:00–19:00; sat, sun 10:00–18:00\), less than the node's 700 minutes/ }],
    ['a window shorter than the node', (d) => void (node(d, 'history').window = { from: '10:00', until: '10:30' }), { code: 'hours_never_fit', path: '/nodes/1/window', message: /is 30 minutes, shorter than its 60 minutes/ }],
    ['a window that ends before it starts', (d) => void (node(d, 'history').window = { from: '12:00', until: '11:00' }), { code: 'hours_never_fit', path: '/nodes/1/window/until', message: /ends at 11:00, not after it starts \(12:00\)/ }],
    ['a place that is never open', (d) => void (place(d, 'lviv.history').opening_hours = []), { code: 'hours_never_fit', path: '/nodes/1/place', message: /never open/ }],
    ['a static route to an unknown node', (d) => void (d.static_routes[0]!.to = 'museum'), { code: 'static_route', path: '/static_routes/0/to', message: /names "museum", which is not a node/ }],
    ['a static route from a node to itself', (d) => void (d.static_routes[0]!.to = 'rynok'), { code: 'static_route', path: '/static_routes/0/to', message: /from "rynok" to itself/ }],
  ])('finds %s', (_what, breakIt, expected) => {
    const doc = sample();
    breakIt(doc);
    const problems = validateJourneyDoc(doc, shippedVenues);
    expect(problems).toContainEqual({ code: expected.code, path: expected.path, message: expected.message ? expect.stringMatching(expected.message) : expect.any(String) });
  });

  it('names a node no step reaches (and only it): an optional node nothing leads to', () => {
    const doc = sample();
    node(doc, 'lunch').next = ['art'];
    expect(validateJourneyDoc(doc, shippedVenues)).toEqual([
      { code: 'unreachable_node', path: '/nodes/4', message: 'Node "lychakiv" (Lychakiv Cemetery, by tram) cannot be reached from the start "rynok": no reachable node lists it in next or alternatives.' },
    ]);
  });

  it('counts an alternative of a reachable node, and what follows it, as reachable', () => {
    const doc = sample();
    // The cathedral is reached only as an alternative (of the gallery, and of the cemetery on a rainy day).
    expect(doc.nodes.some((n) => n.next?.includes('cathedral'))).toBe(false);
    expect(validateJourneyDoc(doc)).toEqual([]);
    delete node(doc, 'art').alternatives;
    delete node(doc, 'lychakiv').alternatives;
    expect(validateJourneyDoc(doc).map((p) => [p.code, p.path])).toEqual([['unreachable_node', '/nodes/6']]);
  });

  it('names a cycle in next by its nodes, at the edge that closes it', () => {
    const doc = sample();
    node(doc, 'pharm').next = ['lunch', 'history'];
    expect(validateJourneyDoc(doc, shippedVenues)).toEqual([
      { code: 'order_cycle', path: '/nodes/2/next/1', message: 'The order has a cycle: history → pharm → history. `next` must not lead back to a node (the journey is a DAG from start).' },
    ]);
    const longer = sample();
    node(longer, 'opera').next = ['lunch'];
    expect(validateJourneyDoc(longer).map((p) => p.message)).toEqual([expect.stringContaining('lunch → lychakiv → art → free → opera → lunch')]);
  });

  it('checks needs only when it is given the catalogue', () => {
    const doc = sample();
    node(doc, 'history').needs!.venue = 'lviv.opera';
    expect(validateJourneyDoc(doc)).toEqual([]);
    expect(validateJourneyDoc(doc, shippedVenues).map((p) => p.code)).toEqual(['unknown_venue']);
  });

  it('reports schema problems alone (the other rules need the shape), each once, with JSON pointers', () => {
    expect(validateJourneyDoc({ id: 'Not An Id', places: 'none' })).toEqual(
      expect.arrayContaining([
        { code: 'schema', path: '/version', message: 'Is required.' },
        { code: 'schema', path: '/id', message: 'Must be dot-separated lowercase words, e.g. lviv.old-town-day.' },
        { code: 'schema', path: '/places', message: 'Must be array.' },
      ]),
    );
    expect(validateJourneyDoc(null)).toEqual([{ code: 'schema', path: '', message: 'Must be object.' }]);
    // Pointers escape "/" and "~" in keys (RFC 6901); a repeated list item points at the repeat.
    const doc = sample() as unknown as Record<string, unknown>;
    doc['a/b~c'] = 1;
    (doc as unknown as JourneyDoc).nodes[0]!.next = ['history', 'history'];
    expect(validateJourneyDoc(doc)).toEqual([
      { code: 'schema', path: '/a~1b~0c', message: 'Is not a known field.' },
      { code: 'schema', path: '/nodes/0/next/1', message: 'Repeats item 0 of the list.' },
    ]);
  });
});

describe('signed journey documents', () => {
  const key = generateKeyPair();
  const trustIn = (k: SigningKey) => {
    const trust = openTrustStore(join(tempDir(), 'trust'), { create: true });
    trust.add(k.publicKeyPem, 'publisher');
    return trust;
  };

  it('signs the canonical bytes (deterministic) and verifies to the document and its cid', () => {
    const envelope = signJourneyDoc(sample(), key);
    expect(envelope.payloadType).toBe(JOURNEY_PAYLOAD_TYPE);
    expect(signJourneyDoc(sample(), key)).toEqual(envelope);
    const verified = verifyJourneyDoc(envelope, trustIn(key), 'day.json', shippedVenues);
    expect(verified).toMatchObject({ doc: sample(), cid: cidOf(sample()), publisher: { keyid: key.keyid, name: 'publisher' } });
  });

  it('refuses to sign a broken document, listing its problems', () => {
    const doc = sample();
    doc.start = 'nowhere';
    expect(() => signJourneyDoc(doc, key, 'day.json')).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_INVALID', message: expect.stringContaining('day.json: /start: No node has the id "nowhere"'), details: expect.objectContaining({ problems: expect.any(Array) }) }));
  });

  it('refuses a tampered payload, an untrusted key, another payload type, non-canonical bytes and a signed broken document', () => {
    const trust = trustIn(key);
    const good = signJourneyDoc(sample(), key);
    const shorter = sample();
    node(shorter, 'history').duration_min = 5;
    expect(() => verifyJourneyDoc({ ...good, payload: toBase64(canonicalBytes(shorter)) }, trust)).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
    expect(() => verifyJourneyDoc(signJourneyDoc(sample(), generateKeyPair()), trust)).toThrow(expect.objectContaining({ code: 'KEY_UNKNOWN' }));
    expect(() => verifyJourneyDoc(signEnvelope('application/vnd.tessera.productdef+json', canonicalBytes(sample()), [key]), trust)).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID', message: expect.stringContaining('not a journey document') }));
    expect(() => verifyJourneyDoc(signEnvelope(JOURNEY_PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(sample(), null, 2)), [key]), trust)).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_INVALID', message: expect.stringContaining('canonical') }));
    const broken = sample();
    node(broken, 'opera').next = ['rynok'];
    expect(() => verifyJourneyDoc(signEnvelope(JOURNEY_PAYLOAD_TYPE, canonicalBytes(broken), [key]), trust)).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_INVALID', message: expect.stringContaining('cycle') }));
  });

  it('ships signed files that are exactly what signing the sources with the dev key gives', () => {
    const dev = readPrivateKey(join(ROOT, 'plugins', 'dev-key'));
    for (const name of readdirSync(JOURNEY_SRC)) {
      const doc = JSON.parse(readFileSync(join(JOURNEY_SRC, name), 'utf8')) as JourneyDoc;
      const shipped = JSON.parse(readFileSync(join(JOURNEYS, `${doc.id}@${doc.version}.json`), 'utf8')) as unknown;
      expect(shipped, `${name}: run npm run build to re-sign it`).toEqual(signJourneyDoc(doc, dev));
    }
  });
});

describe('journey documents in the catalogue', () => {
  const stores: Store[] = [];
  afterEach(() => stores.splice(0).forEach((s) => s.close()));

  function setup(options: { path?: string; trust?: TrustStore; key?: SigningKey } = {}) {
    const dir = tempDir();
    const key = options.key ?? generateKeyPair();
    const trust = options.trust ?? openTrustStore(join(dir, 'trust'), { create: true });
    if (!options.trust) trust.add(key.publicKeyPem, 'publisher');
    const store = openStore({ path: options.path ?? join(dir, 'tessera.db') });
    stores.push(store);
    const journal = createJournal({ store });
    const bus = createBus({ journal, logger: createMemoryLogger() });
    const catalogue = createCatalogue({ store, bus, logger: createMemoryLogger(), trust, clock: () => Date.parse('2026-06-01T10:00:00Z') });
    // The products the sample's needs name.
    for (const def of SHIPPED_DEFS) catalogue.add(signProductDef(def, key).envelope);
    const sign = (doc: JourneyDoc) => signJourneyDoc(doc, key);
    const topics = (topic: string) => journal.query({ topic }).events;
    return { key, trust, store, catalogue, sign, topics };
  }
  const version = (v: string, patch: (d: JourneyDoc) => void = () => {}): JourneyDoc => {
    const d = sample();
    d.version = v;
    patch(d);
    return d;
  };

  it('adds a signed document, journals catalogue.journey.added, and resolves it by id, range, exact version and cid', () => {
    const { catalogue, sign, topics, key, store } = setup();
    expect(store.versions()['catalogue']).toBe(2);
    const { added, journey } = catalogue.addJourney(sign(sample()));
    expect(added).toBe(true);
    expect(journey).toMatchObject({ ref: 'lviv.old-town-day@1.0.0', id: 'lviv.old-town-day', version: '1.0.0', cid: cidOf(sample()), doc: sample(), publisher: { keyid: key.keyid }, source: 'api', added_at: '2026-06-01T10:00:00.000Z' });
    for (const ref of ['lviv.old-town-day', 'lviv.old-town-day@^1', 'lviv.old-town-day@1.0.0', journey.cid]) expect(catalogue.resolveJourney(ref)).toBe(journey);
    expect(catalogue.journeys()).toEqual([journey]);
    expect(catalogue.envelope(journey.cid)).toEqual(sign(sample()));
    expect(topics('catalogue.journey.added').map((e) => e.payload)).toEqual([{ id: 'lviv.old-town-day', version: '1.0.0', cid: journey.cid, publisher: key.keyid, source: 'api' }]);
    // The pass that names it (1.1.0) is the one a traveller gets, and says which journey it comes with.
    expect(catalogue.resolve('city.museum-pass-48h').journey).toBe('lviv.old-town-day@^1');
    expect(catalogue.resolve('city.museum-pass-48h@1.0.0').journey).toBeNull();
  });

  it('keeps versions side by side: a range picks the highest matching, an exact version that one; a miss says what is held', () => {
    const { catalogue, sign } = setup();
    catalogue.addJourney(sign(sample()));
    catalogue.addJourney(sign(version('1.1.0')));
    catalogue.addJourney(sign(version('2.0.0')));
    expect(catalogue.resolveJourney('lviv.old-town-day').version).toBe('2.0.0');
    expect(catalogue.resolveJourney('lviv.old-town-day@^1').version).toBe('1.1.0');
    expect(catalogue.resolveJourney('lviv.old-town-day@~1.0').version).toBe('1.0.0');
    expect(catalogue.resolveJourney('lviv.old-town-day@2.0.0').version).toBe('2.0.0');
    expect(catalogue.journeys().map((j) => j.version)).toEqual(['2.0.0', '1.1.0', '1.0.0']);
    expect(() => catalogue.resolveJourney('lviv.old-town-day@^3')).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_NOT_FOUND', message: 'No version of journey "lviv.old-town-day" matches ^3 (held: 2.0.0, 1.1.0, 1.0.0).' }));
    expect(() => catalogue.resolveJourney('kyiv.day')).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_NOT_FOUND', message: 'No journey document "kyiv.day" is in the catalogue (held: lviv.old-town-day).' }));
    expect(() => catalogue.resolveJourney('not a ref')).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_NOT_FOUND' }));
    expect(() => catalogue.resolveJourney(`b3:${'0'.repeat(64)}`)).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_NOT_FOUND' }));
    // Journey documents are not products, and products are not journeys.
    expect(() => catalogue.resolve('lviv.old-town-day')).toThrow(expect.objectContaining({ code: 'PRODUCTDEF_NOT_FOUND' }));
    expect(() => catalogue.resolveJourney('city.museum-pass-48h')).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_NOT_FOUND' }));
  });

  it('refuses the same id@version with other content (JOURNEY_DOC_CONFLICT) and takes the same content again as a no-op, also after a restart', () => {
    const first = setup();
    first.catalogue.addJourney(first.sign(sample()));
    const changed = version('1.0.0', (d) => void (node(d, 'history').duration_min = 90));
    expect(() => first.catalogue.addJourney(first.sign(changed))).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_CONFLICT', message: expect.stringContaining('lviv.old-town-day@1.0.0 is already published with other content') }));
    expect(first.catalogue.addJourney(first.sign(sample())).added).toBe(false);
    expect(first.topics('catalogue.journey.added')).toHaveLength(1);
    const path = first.store.path;
    first.store.close();
    const again = setup({ path, trust: first.trust, key: first.key });
    expect(again.catalogue.resolveJourney('lviv.old-town-day').cid).toBe(cidOf(sample()));
    expect(again.catalogue.errors()).toEqual([]);
    expect(() => again.catalogue.addJourney(again.sign(changed))).toThrow(expect.objectContaining({ code: 'JOURNEY_DOC_CONFLICT' }));
    expect(again.catalogue.addJourney(again.sign(sample())).added).toBe(false);
  });

  it("checks a document's needs against the products it holds: a venue the product does not list is refused with the path", () => {
    const { catalogue, sign } = setup();
    const wrong = version('1.2.0', (d) => void (node(d, 'pharm').needs!.venue = 'lviv.rynok'));
    let thrown: unknown;
    try {
      catalogue.addJourney(sign(wrong));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'JOURNEY_DOC_INVALID', message: expect.stringContaining('/nodes/2/needs/venue: "lviv.rynok" is not a venue of city.museum-pass-48h'), details: { problems: [expect.objectContaining({ code: 'unknown_venue', path: '/nodes/2/needs/venue' })] } });
    expect(catalogue.journeys()).toEqual([]);
  });

  it('refuses a document signed by a key it does not trust', () => {
    const { catalogue } = setup();
    expect(() => catalogue.addJourney(signJourneyDoc(sample(), generateKeyPair()))).toThrow(expect.objectContaining({ code: 'KEY_UNKNOWN' }));
    expect(() => catalogue.addJourney({ payloadType: JOURNEY_PAYLOAD_TYPE } as unknown as DsseEnvelope)).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
  });
});
