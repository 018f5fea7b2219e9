/**
 * The capability bridge: the only door from a plugin to the world (DESIGN.md "Sandbox rules"; issue 3 §4).
 * Runs in the runtime. Every call is checked against the plugin's grant and, for effects, against the permit
 * the caller supplied; a refused call throws CAPABILITY_DENIED inside the plugin with the reason and is
 * journaled as `plugin.capability_denied`.
 *
 * Calls are `host.call("<family>.<op>", params)` or `host.call("<family>", params)`; the family is what a
 * manifest declares and a grant allows: kv.get/kv.set/kv.delete/kv.list, http.fetch, events.emit, io.say.
 *
 * Idempotency (issue 13 point 12). A plugin call that does a scenario step's work carries the step's
 * idempotency key (`CallScope.idempotency_key`), the same on every attempt and after a restart. Each effect the
 * plugin makes gets its own key derived from it: the cid of {step key, capability, what the effect addresses
 * (http.fetch: method and URL; events.emit: topic), and its ordinal among the call's effects that address the
 * same thing}. Not the body or payload: those may hold the logical time, which differs between attempts. So
 * the nth POST to a URL in a step has the same key on every attempt of that step. Then:
 * - http.fetch sends it as the `Idempotency-Key` header (plugins may not set that header themselves): the
 *   receiver that stores its effect once per key makes the effect exactly-once; one that ignores the header
 *   may see the request again when a step is retried or resumed after a crash.
 * - events.emit and io.say are recorded in `plugin_effects` under that key in the same transaction as the
 *   event they journal: an attempt that repeats one returns the first one's result and journals nothing.
 * A call without a step key (a plugin test, Studio) gets a key of its own, unique to that call.
 */
import { randomUUID } from 'node:crypto';
import { cidOf } from '../main/common/cid.js';
import { TesseraError, toErrorData } from '../main/common/errors.js';
import { topicProblem } from '../main/common/topics.js';
import type { Bus } from '../main/runtime/bus/index.js';
import type { Migration, Store } from '../main/runtime/store/index.js';
import type { CapabilityHandler } from './client.js';
import { EFFECT_CAPABILITIES, normalizeOrigin } from './manifest.js';
import type { CapabilityRequest } from './manifest.js';

export interface Grant {
  name: string;
  origins?: string[];
}

export interface CapabilityCall {
  capability: string;
  ok: boolean;
  /** Short description of what was asked (never the full payload). */
  summary: string;
  error?: string;
}

export interface CallScope {
  plugin: { name: string; version: string; key: string };
  grants: readonly Grant[];
  trace_id: string;
  /**
   * The idempotency key of the work this call performs (a scenario step's `scenario/run/step`), the same on
   * every attempt and resume of it; effect keys derive from it. Absent: the call is its own unit of work.
   */
  idempotency_key?: string;
  /** Checks the caller's permit for an effect capability; throws PERMIT_INVALID when there is none or it does not cover it. */
  checkPermit(capability: string): void;
  /** Every capability call made during the plugin call, in order. */
  calls: CapabilityCall[];
}

export const KV_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'plugin key/value store',
    up(db) {
      db.exec(`CREATE TABLE plugin_kv (
        plugin     TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL CHECK (json_valid(value)),
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (plugin, key)
      ) STRICT, WITHOUT ROWID`);
    },
  },
];

export const EFFECT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'plugin effects done once per key',
    up(db) {
      db.exec(`CREATE TABLE plugin_effects (
        effect_key TEXT PRIMARY KEY,
        result     TEXT NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID`);
    },
  },
];

/** The header that carries an effect's key to an HTTP receiver (draft-ietf-httpapi-idempotency-key-header). */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

export const KV_LIMITS = { maxKeyLength: 256, maxValueBytes: 64 * 1024, maxKeysPerPlugin: 10_000 };
export const FETCH_LIMITS = { maxResponseBytes: 256 * 1024, timeoutMs: 5000, maxRedirects: 3, maxBodyBytes: 64 * 1024 };

export interface CapabilityBroker {
  /** A handler bound to one plugin call. */
  handlerFor(scope: CallScope): CapabilityHandler;
}

export interface BrokerOptions {
  store: Store;
  bus: Bus;
  clock?: () => number;
  fetch?: typeof fetch;
  /** Where http.fetch really connects for some allowlisted origins ({@link HttpOriginMap}); default none. */
  originMap?: HttpOriginMap;
}

/**
 * An operator's redirection of allowlisted origins to loopback servers (`TESSERA_HTTP_ORIGIN_MAP`, README
 * "Configuration"): `https://api.open-meteo.com` → `http://127.0.0.1:8080`. What it is for: tests that speak a
 * real service's protocol on 127.0.0.1, and a device that keeps a local mirror or caching proxy of a service.
 *
 * What it does not change: the plugin's allowlist (the manifest still names the real origins and is checked
 * against the URL the plugin asked for, before any mapping), the URL the plugin sees in answers, and redirects
 * (a redirect is resolved against the requested URL and checked against the allowlist again, then mapped).
 * Targets are loopback only (127.0.0.0/8, [::1], localhost), so the setting can never send a plugin's requests
 * to another machine; each target is an origin with no path.
 */
export type HttpOriginMap = ReadonlyMap<string, string>;

/** The environment variable {@link parseHttpOriginMap} reads. */
export const HTTP_ORIGIN_MAP_ENV = 'TESSERA_HTTP_ORIGIN_MAP';

/**
 * Parses `FROM=TO[,FROM=TO…]` (origins, `http(s)://host[:port]`; spaces around entries ignored; empty: none).
 * @throws CONFIG_INVALID naming the entry: not an origin, a path or credentials given, a FROM given twice, or a TO
 * that is not loopback.
 */
export function parseHttpOriginMap(text: string | undefined): HttpOriginMap {
  const map = new Map<string, string>();
  if (text === undefined) return map;
  const bad = (entry: string, why: string): never => {
    throw new TesseraError('CONFIG_INVALID', `${HTTP_ORIGIN_MAP_ENV}: "${entry}" ${why}; write FROM=TO pairs of origins separated by commas, e.g. https://api.open-meteo.com=http://127.0.0.1:8080.`);
  };
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) bad(entry, 'is not FROM=TO');
    const [from, to] = [entry.slice(0, eq).trim(), entry.slice(eq + 1).trim()].map((o) => {
      const origin = normalizeOrigin(o);
      if (!origin) return bad(entry, `has "${o}", which is not an http(s) origin`);
      const u = new URL(o);
      if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) bad(entry, `has "${o}", which is more than an origin (no path, query or fragment)`);
      return origin;
    }) as [string, string];
    const host = new URL(to).hostname.replace(/^\[|\]$/g, '');
    if (!(host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host))) bad(entry, `maps to ${to}, which is not a loopback address (127.0.0.1, [::1], localhost)`);
    if (map.has(from)) bad(entry, `maps ${from} a second time`);
    map.set(from, to);
  }
  return map;
}

/** Which requested capabilities the runtime grants. Unknown names and http.fetch without origins are refused. */
export function grantCapabilities(requested: readonly CapabilityRequest[]): Grant[] {
  return requested.map((c) => {
    if (!['kv', 'http.fetch', 'events.emit', 'io.say'].includes(c.name)) {
      throw new TesseraError('CAPABILITY_NOT_GRANTABLE', `The plugin requests "${c.name}", which this runtime does not offer (it offers kv, http.fetch, events.emit, io.say).`);
    }
    if (c.name === 'http.fetch' && (!c.origins || c.origins.length === 0)) {
      throw new TesseraError('CAPABILITY_NOT_GRANTABLE', 'The plugin requests http.fetch without an "origins" allowlist; list the origins it may reach.');
    }
    return c.origins ? { name: c.name, origins: [...c.origins] } : { name: c.name };
  });
}

export function createCapabilityBroker(options: BrokerOptions): CapabilityBroker {
  const { store, bus } = options;
  const clock = options.clock ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  const originMap: HttpOriginMap = options.originMap ?? new Map();
  store.migrate('plugin_kv', KV_MIGRATIONS);
  store.migrate('plugin_effects', EFFECT_MIGRATIONS);
  const db = store.db;
  const effectGet = db.prepare<[string], { result: string }>('SELECT result FROM plugin_effects WHERE effect_key = ?');
  const effectPut = db.prepare('INSERT INTO plugin_effects (effect_key, result, created_at) VALUES (?, ?, ?)');

  /** Per plugin call: its base key and how many effects it has made per thing addressed. */
  const effectState = new WeakMap<CallScope, { base: string; stable: boolean; seen: Map<string, number> }>();
  /**
   * The key of the effect the plugin is making now (see the header comment). `target` is what the effect
   * addresses; the ordinal counts this call's earlier effects with the same capability and target.
   */
  const effectKey = (scope: CallScope, capability: string, target: unknown): { key: string; stable: boolean } => {
    let state = effectState.get(scope);
    if (!state) {
      state = scope.idempotency_key ? { base: scope.idempotency_key, stable: true, seen: new Map() } : { base: `call:${randomUUID()}`, stable: false, seen: new Map() };
      effectState.set(scope, state);
    }
    const identity = JSON.stringify([capability, target]);
    const n = (state.seen.get(identity) ?? 0) + 1;
    state.seen.set(identity, n);
    return { key: cidOf({ v: 1, work: state.base, capability, target: target ?? null, n }), stable: state.stable };
  };
  /** Does `fn` once per effect key, atomically with recording it; a repeat returns the recorded result. */
  const once = <T>(key: string, fn: () => T): T =>
    db.transaction(() => {
      const prior = effectGet.get(key);
      if (prior) return JSON.parse(prior.result) as T;
      const result = fn();
      effectPut.run(key, JSON.stringify(result ?? null), clock());
      return result;
    })();
  const kvGet = db.prepare<[string, string], { value: string }>('SELECT value FROM plugin_kv WHERE plugin = ? AND key = ?');
  const kvSet = db.prepare('INSERT INTO plugin_kv (plugin, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at');
  const kvDelete = db.prepare('DELETE FROM plugin_kv WHERE plugin = ? AND key = ?');
  const kvCount = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM plugin_kv WHERE plugin = ?');
  const kvList = db.prepare<[string, string, string, number], { key: string }>('SELECT key FROM plugin_kv WHERE plugin = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?');

  const deny = (message: string): never => {
    throw new TesseraError('CAPABILITY_DENIED', message);
  };

  const kvKey = (params: Record<string, unknown>): string => {
    const key = params['key'];
    if (typeof key !== 'string' || key.length === 0 || key.length > KV_LIMITS.maxKeyLength) deny(`kv: "key" must be a string of 1–${KV_LIMITS.maxKeyLength} characters`);
    return key as string;
  };

  async function run(scope: CallScope, family: string, op: string | undefined, params: Record<string, unknown>): Promise<unknown> {
    const plugin = scope.plugin.name;
    switch (family) {
      case 'kv': {
        if (op === 'get') {
          const row = kvGet.get(plugin, kvKey(params));
          return row ? (JSON.parse(row.value) as unknown) : null;
        }
        if (op === 'set') {
          const key = kvKey(params);
          const json = JSON.stringify(params['value'] ?? null);
          if (Buffer.byteLength(json) > KV_LIMITS.maxValueBytes) deny(`kv.set: the value is over ${KV_LIMITS.maxValueBytes} bytes`);
          if (!kvGet.get(plugin, key) && kvCount.get(plugin)!.n >= KV_LIMITS.maxKeysPerPlugin) deny(`kv.set: the plugin already has ${KV_LIMITS.maxKeysPerPlugin} keys`);
          kvSet.run(plugin, key, json, clock());
          return true;
        }
        if (op === 'delete') return kvDelete.run(plugin, kvKey(params)).changes > 0;
        if (op === 'list') {
          const prefix = typeof params['prefix'] === 'string' ? params['prefix'] : '';
          return kvList.all(plugin, prefix, prefix + '\uffff', 1000).map((r) => r.key);
        }
        return deny(`kv has get, set, delete and list, not "${op ?? ''}"`);
      }
      case 'events': {
        if (op !== 'emit') return deny(`events has only emit, not "${op ?? ''}"`);
        const topic = params['topic'];
        const full = `plugin.${plugin}.${String(topic)}`;
        if (typeof topic !== 'string' || topicProblem(topic) || topicProblem(full)) deny(`events.emit: "${String(topic)}" is not a topic (letters, digits, _ and - separated by dots)`);
        const effect = effectKey(scope, 'events.emit', full);
        const emit = () => {
          const event = bus.publish(full, params['payload'] ?? null, { trace_id: scope.trace_id });
          return { id: event.id, topic: event.topic };
        };
        return effect.stable ? once(effect.key, emit) : emit();
      }
      case 'io': {
        if (op !== 'say') return deny(`io has only say, not "${op ?? ''}"`);
        const text = params['text'];
        if (typeof text !== 'string' || text.length === 0 || text.length > 2000) deny('io.say: "text" must be a string of 1–2000 characters');
        // The key also travels in the event: the I/O router records one message per key.
        const effect = effectKey(scope, 'io.say', null);
        const say = () => {
          bus.publish('io.say', { text, from: `plugin:${plugin}`, idempotency_key: effect.key }, { trace_id: scope.trace_id });
          return true;
        };
        return effect.stable ? once(effect.key, say) : say();
      }
      case 'http': {
        if (op !== 'fetch') return deny(`http has only fetch, not "${op ?? ''}"`);
        const grant = scope.grants.find((g) => g.name === 'http.fetch');
        return httpFetch(new Set(grant?.origins ?? []), params, (method, url) => effectKey(scope, 'http.fetch', { method, url }).key);
      }
      default:
        return deny(`unknown capability "${family}"`);
    }
  }

  /** `keyFor` gives the request's Idempotency-Key, once per request: every redirect hop carries the same key. */
  async function httpFetch(allowed: Set<string>, params: Record<string, unknown>, keyFor: (method: string, url: string) => string): Promise<unknown> {
    const method = typeof params['method'] === 'string' ? params['method'].toUpperCase() : 'GET';
    if (!['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH'].includes(method)) deny(`http.fetch: method ${method} is not allowed`);
    const body = params['body'];
    if (body !== undefined && typeof body !== 'string') deny('http.fetch: "body" must be a string');
    if (typeof body === 'string' && Buffer.byteLength(body) > FETCH_LIMITS.maxBodyBytes) deny(`http.fetch: the body is over ${FETCH_LIMITS.maxBodyBytes} bytes`);
    const headers: Record<string, string> = {};
    const given = params['headers'];
    if (given && typeof given === 'object') {
      for (const [k, v] of Object.entries(given as Record<string, unknown>)) {
        if (typeof v !== 'string' || /^(host|cookie|authorization|proxy-)/i.test(k)) deny(`http.fetch: header "${k}" is not allowed`);
        if (k.toLowerCase() === IDEMPOTENCY_HEADER.toLowerCase()) deny(`http.fetch: the ${IDEMPOTENCY_HEADER} header is set by the runtime (the same on every attempt of the step); do not set it`);
        headers[k] = v as string;
      }
    }
    let url = typeof params['url'] === 'string' ? params['url'] : '';
    try {
      headers[IDEMPOTENCY_HEADER] = keyFor(method, new URL(url).href);
    } catch {
      return deny(`http.fetch: "${url}" is not a URL`);
    }
    const signal = AbortSignal.timeout(FETCH_LIMITS.timeoutMs);
    for (let hop = 0; ; hop++) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return deny(`http.fetch: "${url}" is not a URL`);
      }
      const origin = normalizeOrigin(parsed.href);
      if (!origin || !allowed.has(origin)) {
        return deny(hop === 0 ? `http.fetch: ${parsed.origin} is not in this plugin's allowlist` : `http.fetch: a redirect to ${parsed.origin} leaves this plugin's allowlist; refused`);
      }
      // The allowlist was checked on the URL asked for; only the connection goes where the operator mapped it.
      const target = originMap.get(origin);
      const connectTo = target === undefined ? parsed.href : target + parsed.pathname + parsed.search;
      let res: Response;
      try {
        res = await doFetch(connectTo, { method, headers, redirect: 'manual', signal, ...(body === undefined ? {} : { body: body as string }) });
      } catch (err) {
        throw new TesseraError('CAPABILITY_DENIED', `http.fetch: ${parsed.origin} could not be reached (${(err as Error).name === 'TimeoutError' ? `timed out after ${FETCH_LIMITS.timeoutMs} ms` : (err as Error).message})`);
      }
      if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
        if (hop >= FETCH_LIMITS.maxRedirects) deny(`http.fetch: more than ${FETCH_LIMITS.maxRedirects} redirects`);
        url = new URL(res.headers.get('location')!, parsed).href;
        await res.body?.cancel();
        continue;
      }
      const text = await readCapped(res, FETCH_LIMITS.maxResponseBytes);
      const type = res.headers.get('content-type') ?? '';
      let json: unknown;
      if (type.includes('json')) {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      return { status: res.status, content_type: type, body: text, ...(json === undefined ? {} : { json }) };
    }
  }

  return {
    handlerFor(scope) {
      return async (capability, params) => {
        const [family = '', op] = capability.split('.', 2);
        const declared = family === 'kv' ? 'kv' : `${family}.${op ?? ''}`;
        const record = (ok: boolean, error?: string) =>
          scope.calls.push({ capability, ok, summary: summarize(capability, params), ...(error ? { error } : {}) });
        try {
          if (!scope.grants.some((g) => g.name === declared)) {
            deny(`${capability} was not granted to ${scope.plugin.name} (granted: ${scope.grants.map((g) => g.name).join(', ') || 'nothing'})`);
          }
          if (EFFECT_CAPABILITIES.has(declared)) scope.checkPermit(declared);
          if (params === null || typeof params !== 'object' || Array.isArray(params)) deny(`${capability}: params must be an object`);
          const value = await run(scope, family, op, params as Record<string, unknown>);
          record(true);
          return value;
        } catch (err) {
          const data = toErrorData(err);
          record(false, `${data.code}: ${data.message}`);
          if (data.code === 'CAPABILITY_DENIED' || data.code === 'PERMIT_INVALID') {
            bus.publish('plugin.capability_denied', { plugin: scope.plugin.key, capability, code: data.code, reason: data.message }, { trace_id: scope.trace_id });
          }
          throw err;
        }
      };
    },
  };
}

function summarize(capability: string, params: unknown): string {
  const p = (params ?? {}) as Record<string, unknown>;
  const s = typeof p['url'] === 'string' ? p['url'] : typeof p['key'] === 'string' ? p['key'] : typeof p['topic'] === 'string' ? p['topic'] : '';
  return s ? `${capability} ${s.slice(0, 120)}` : capability;
}

async function readCapped(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new TesseraError('CAPABILITY_DENIED', `http.fetch: the response is over ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
