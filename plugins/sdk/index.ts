/**
 * The Tessera plugin SDK: the TypeScript contracts of the four plugin kinds (issue 3 §3; DESIGN.md "Sandbox
 * rules"). Types only — a plugin bundles no runtime from here.
 *
 * A plugin is one ES module that exports the function of its kind. It runs in an isolate with no clock (its
 * `Date` is the logical time in `ctx.now`), no `Math.random`, no timers, no network, no filesystem and no
 * `eval`. Inputs and outputs are JSON copies. The world is reachable only through `host.call`.
 */

/** JSON values: what crosses the sandbox boundary. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The only door to the world. Each capability must be declared in plugin.json and granted; effects need a permit. */
export interface ToolHost {
  /**
   * - `kv.get {key}` → value | null; `kv.set {key, value}`; `kv.delete {key}`; `kv.list {prefix?}` — the
   *   plugin's own persistent store (keys ≤ 256 chars, values ≤ 64 KiB).
   * - `http.fetch {url, method?, headers?, body?}` → `{status, content_type, body, json?}` — only to origins
   *   in the manifest's allowlist; redirects elsewhere are refused; 256 KiB, 5 s. An effect: needs a permit.
   *   Every request carries an `Idempotency-Key` header set by the runtime (a plugin may not set it): in a
   *   scenario step it is the same on every attempt and resume of the step, for the nth request to a URL.
   * - `events.emit {topic, payload}` → published as `plugin.<name>.<topic>`.
   * - `io.say {text}` → text out through the I/O router. An effect: needs a permit.
   *   In a scenario step, both happen once per step: a retried attempt gets the first attempt's result back.
   *
   * A refused call rejects with an Error named `CapabilityError` whose `code` is CAPABILITY_DENIED or
   * PERMIT_INVALID and whose message says why; the refusal is journaled. Once the call was cancelled (see
   * {@link ToolHost.cancelled}) every `call` rejects at once with a `CapabilityError` whose `code` is
   * RUN_CANCELLED.
   */
  call(capability: string, params?: Json | Record<string, unknown>): Promise<unknown>;
  /**
   * The cancel token of this call: true once the run that made it was cancelled. The runtime has stopped
   * waiting for the answer by then; a plugin doing long work (a loop of `host.call`s) should check it between
   * steps and return. A plugin that is still running CANCEL_GRACE_MS (250 ms) after the cancel is terminated:
   * its isolate is disposed and recreated for the next call. Plain synchronous code cannot observe it (there is
   * no way in while it runs) and is bounded by its CPU time limit instead.
   */
  cancelled(): boolean;
}

/** What every call receives besides its input. */
export interface PluginContext {
  /** The logical time of this call, ISO-8601 UTC; `Date.now()` returns the same instant. */
  now: string;
  trace_id: string;
  plugin: { name: string; version: string };
  /** In a scenario tool step: the step's idempotency key, the same on every attempt and after a restart. */
  idempotency_key?: string;
  [key: string]: unknown;
}

export interface PolicyContext extends PluginContext {
  /** Capability door for policies (e.g. policy-quota uses `kv`). */
  host: ToolHost;
}

/** A policy's answer. `ASK` means a human must decide. */
export interface PolicyDecision {
  verdict: 'ACK' | 'NACK' | 'ASK';
  /** Why, in words a person can act on (1–2000 characters). */
  reason: string;
  evidence?: Json | Record<string, unknown>;
  metrics?: Record<string, number>;
}

/** kind "policy" */
export type Decide<I = unknown> = (input: I, ctx: PolicyContext) => PolicyDecision | Promise<PolicyDecision>;
/** kind "tool" */
export type Invoke<A = unknown, R = unknown> = (args: A, host: ToolHost) => R | Promise<R>;
/** kind "intake": normalize an input (text, a scan, a form) into an intent with slots. */
export type Normalize<I = unknown> = (input: I, ctx: PolicyContext) => IntakeResult | Promise<IntakeResult>;
/** kind "enrich": derive extra artifacts from a decided capsule. */
export type Enrich<C = unknown> = (capsule: C, ctx: PolicyContext) => EnrichResult | Promise<EnrichResult>;

export interface IntakeResult {
  /** Dot-separated intent name, e.g. `weather.now`. */
  intent: string;
  slots?: Record<string, unknown>;
  ctx?: Record<string, unknown>;
}

export interface EnrichResult {
  artifacts: Array<{ kind: string; data: unknown }>;
}
