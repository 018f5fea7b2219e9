/**
 * The plugin registry: verifies and loads signed plugins into the supervised sandbox host, runs them, and
 * answers their capability calls (issue 3). Journals `plugin.loaded`, `plugin.load_failed`, `plugin.ran`,
 * `plugin.failed` and (from the broker) `plugin.capability_denied`, each with the call's trace id.
 */
import Ajv from 'ajv';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import semver from 'semver';
import type { DsseEnvelope } from '../../common/dsse.js';
import { cidOf } from '../../common/cid.js';
import { TesseraError, toErrorData } from '../../common/errors.js';
import type { ErrorData } from '../../common/errors.js';
import { LIMITS } from '../../common/api.js';
import type { PluginInfo, PluginLoadFailure, PluginRunResult } from '../../common/api.js';
import { createCapabilityBroker } from '../../../sandbox/capabilities.js';
import type { CallScope, CapabilityCall, HttpOriginMap } from '../../../sandbox/capabilities.js';
import { createSandboxHost } from '../../../sandbox/client.js';
import type { CallOptions, ProcessLauncher, SandboxHost } from '../../../sandbox/client.js';
import { checkOutput } from '../../../sandbox/kinds.js';
import { effectiveLimits } from '../../../sandbox/manifest.js';
import type { RuntimeLimits } from '../../../sandbox/manifest.js';
import { verifyPlugin } from '../../../sandbox/package.js';
import type { VerifiedPlugin } from '../../../sandbox/package.js';
import { verifyPermit } from '../../../sandbox/permits.js';
import type { Bus } from '../bus/index.js';
import type { AppendInput } from '../journal/index.js';
import type { Logger } from '../log/index.js';
import type { Migration, Store } from '../store/index.js';
import type { TrustView } from '../trust/index.js';
import { runPluginTrial } from './trial.js';
import type { TrialResult, TrialSource } from './trial.js';

export { runPluginTrial } from './trial.js';
export type { TrialOptions, TrialResult, TrialSource } from './trial.js';

export interface RunOptions {
  /** Extra context for the plugin (JSON object); `now`, `trace_id` and `plugin` are set by the runtime. */
  ctx?: Record<string, unknown>;
  /** Logical time given to the plugin (its `Date`), epoch ms or ISO-8601; defaults to the runtime clock. */
  now?: number | string;
  trace_id?: string;
  /** A permit (DSSE envelope) for effect capabilities. */
  permit?: DsseEnvelope;
  /**
   * The idempotency key of the work this call does (a scenario step's key), the same on every attempt and after a
   * restart: the plugin sees it as `ctx.idempotency_key`, and each of its effects gets a key derived from it
   * (sandbox/capabilities.ts: http.fetch's `Idempotency-Key` header; events.emit and io.say done once per key).
   */
  idempotency_key?: string;
  /** Cancel token: aborting it rejects the run with RUN_CANCELLED and stops the plugin (sandbox/client.ts `call`). */
  signal?: AbortSignal;
  /**
   * Takes the run's `plugin.ran` / `plugin.failed` event instead of the registry publishing it at once: the caller
   * must publish it (the receipt pipeline publishes a request's events together, one journal commit, not three).
   */
  deferEvent?: (event: AppendInput) => void;
  /**
   * Whether the result's `heap_used_bytes` is read after this very call (default true). False takes the isolate's
   * latest reading, at most 50 ms old (sandbox/isolate.ts HEAP_SAMPLE_MS): reading an isolate's heap costs the
   * sandbox about as much as a small call, and the receipt pipeline does not report it.
   */
  freshHeap?: boolean;
  /** Send the call at the end of this event-loop turn, together with the turn's other such calls (sandbox/client.ts CallOptions). */
  coalesce?: boolean;
}

export interface PluginRegistry {
  /**
   * Verify a plugin folder (against `trust`, default the registry's) and load it; replaces a loaded plugin of the
   * same name and version (another version stays loaded beside it). A folder that fails is listed by
   * {@link failures} until it loads; what was loaded before from it stays loaded.
   */
  load(dir: string, trust?: TrustView): Promise<PluginInfo>;
  list(): PluginInfo[];
  /** Folders whose latest load failed, most recent first, with the error. */
  failures(): PluginLoadFailure[];
  /**
   * Run a plugin once in a throwaway runtime (./trial.ts) with this registry's trust, limits and sandbox launcher:
   * nothing of the run reaches this registry's store, journal or sandbox host.
   */
  trial(source: TrialSource, input: unknown, options?: { now?: number | string }): Promise<TrialResult>;
  /** A plugin by key, by `name@version`, or by name with an optional semver range (highest match). */
  find(ref: string, range?: string): VerifiedPlugin | undefined;
  run(ref: string, input: unknown, options?: RunOptions): Promise<PluginRunResult>;
  unload(ref: string): Promise<void>;
  readonly sandbox: SandboxHost;
  dispose(): Promise<void>;
}

export interface RegistryOptions {
  store: Store;
  bus: Bus;
  logger: Logger;
  /** Publisher keys trusted to sign plugins. */
  trust: TrustView;
  /** Keys trusted to sign permits (the device key, plus any trust the operator adds). */
  permitTrust: TrustView;
  clock?: () => number;
  limits?: RuntimeLimits;
  launcher?: ProcessLauncher;
  /** Allowlisted origins http.fetch connects to on loopback instead (`TESSERA_HTTP_ORIGIN_MAP`; sandbox/capabilities.ts). Trials get it too. */
  httpOriginMap?: HttpOriginMap;
}

const NONCE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'used permit nonces',
    up: (db) => db.exec('CREATE TABLE permit_nonces (nonce TEXT PRIMARY KEY, used_at INTEGER NOT NULL, input_cid TEXT NOT NULL) STRICT, WITHOUT ROWID'),
  },
];

const ajv = new Ajv({ allErrors: true, strict: false });

export function createPluginRegistry(options: RegistryOptions): PluginRegistry {
  const { store, bus, logger } = options;
  const clock = options.clock ?? Date.now;
  store.migrate('permits', NONCE_MIGRATIONS);
  const useNonce = store.db.prepare('INSERT INTO permit_nonces (nonce, used_at, input_cid) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const broker = createCapabilityBroker({ store, bus, clock, ...(options.httpOriginMap ? { originMap: options.httpOriginMap } : {}) });
  const plugins = new Map<string, VerifiedPlugin>();
  /** The latest failed load of each folder (by absolute path), until that folder loads. */
  const failed = new Map<string, PluginLoadFailure>();
  const inputValidators = new Map<string, ReturnType<typeof ajv.compile>>();
  const sandbox = createSandboxHost({
    logger: logger.child({ module: 'sandbox' }),
    ...(options.launcher ? { launcher: options.launcher } : {}),
    onRestart: ({ restarts, reason }) => bus.publish('sandbox.restarted', { restarts, reason, plugins: [...plugins.keys()] }),
  });

  const info = (p: VerifiedPlugin): PluginInfo => ({
    key: p.key,
    name: p.manifest.name,
    version: p.manifest.version,
    kind: p.manifest.kind,
    cid: p.cid,
    entry_cid: p.manifest.entry_cid,
    publisher: p.publisher,
    trust: 'trusted',
    capabilities: p.grants.map((g) => g.name),
    limits: effectiveLimits(p.manifest, options.limits),
    manifest: p.manifest as unknown as Record<string, unknown>,
  });

  const find = (ref: string, range?: string): VerifiedPlugin | undefined => {
    const byKey = plugins.get(ref);
    if (byKey) return byKey;
    const [name, version] = ref.split('@');
    const candidates = [...plugins.values()].filter((p) => p.manifest.name === name && (version === undefined || p.manifest.version === version) && (!range || semver.satisfies(p.manifest.version, range)));
    return candidates.sort((a, b) => semver.rcompare(a.manifest.version, b.manifest.version))[0];
  };

  return {
    sandbox,
    async load(dir, trust = options.trust) {
      let plugin: VerifiedPlugin;
      try {
        plugin = verifyPlugin(dir, trust);
        await sandbox.load({ key: plugin.key, kind: plugin.manifest.kind, code: plugin.code, limits: effectiveLimits(plugin.manifest, options.limits) });
      } catch (err) {
        const error = toErrorData(err);
        failed.delete(resolve(dir));
        failed.set(resolve(dir), { dir: resolve(dir), error: { code: error.code, message: error.message }, at: new Date(clock()).toISOString() });
        bus.publish('plugin.load_failed', { dir, error });
        throw err;
      }
      failed.delete(plugin.dir);
      for (const [key, old] of plugins) {
        if (old.manifest.name === plugin.manifest.name && old.manifest.version === plugin.manifest.version && key !== plugin.key) {
          plugins.delete(key);
          inputValidators.delete(key);
          await sandbox.unload(key);
        }
      }
      plugins.set(plugin.key, plugin);
      if (plugin.manifest.input_schema) {
        try {
          inputValidators.set(plugin.key, ajv.compile(plugin.manifest.input_schema));
        } catch (err) {
          logger.warn('the plugin input_schema does not compile; inputs are not validated against it', { plugin: plugin.key, error: err });
        }
      }
      const result = info(plugin);
      bus.publish('plugin.loaded', { key: plugin.key, cid: plugin.cid, publisher: plugin.publisher.keyid, capabilities: result.capabilities });
      return result;
    },
    list: () => [...plugins.values()].map(info),
    failures: () => [...failed.values()].reverse(),
    find,
    trial: (source, input, trialOptions = {}) =>
      runPluginTrial(source, input, {
        trust: options.trust,
        logger: logger.child({ module: 'plugin-trial' }),
        ...(trialOptions.now === undefined ? {} : { now: trialOptions.now }),
        ...(options.launcher ? { launcher: options.launcher } : {}),
        ...(options.limits ? { limits: options.limits } : {}),
        ...(options.httpOriginMap ? { httpOriginMap: options.httpOriginMap } : {}),
      }),
    async run(ref, input, opts = {}) {
      const plugin = find(ref);
      if (!plugin) throw new TesseraError('PLUGIN_NOT_FOUND', `No loaded plugin matches "${ref}".`);
      const traceId = opts.trace_id ?? randomUUID().replaceAll('-', '');
      const now = opts.now === undefined ? clock() : typeof opts.now === 'number' ? opts.now : Date.parse(opts.now);
      if (!Number.isFinite(now)) throw new TesseraError('VALIDATION_FAILED', `now must be an ISO-8601 time or epoch milliseconds, got ${JSON.stringify(opts.now)}`);
      let inputJson: string;
      try {
        inputJson = JSON.stringify(input ?? null);
      } catch {
        throw new TesseraError('VALIDATION_FAILED', 'The input is not JSON.');
      }
      if (inputJson.length > LIMITS.maxPayloadBytes) throw new TesseraError('PAYLOAD_TOO_LARGE', `The input is ${inputJson.length} characters of JSON; the limit is ${LIMITS.maxPayloadBytes}.`);
      const validate = inputValidators.get(plugin.key);
      if (validate && !validate(input)) {
        throw new TesseraError('VALIDATION_FAILED', `The input does not match ${plugin.manifest.name}'s input_schema: ${ajv.errorsText(validate.errors)}`);
      }
      const inputCid = cidOf(input ?? null);
      let permitError: ErrorData | undefined;
      let permitScope: string[] = [];
      if (opts.permit !== undefined) {
        try {
          const permit = verifyPermit(opts.permit, { trust: options.permitTrust, inputCid, now });
          if (useNonce.run(permit.nonce, clock(), inputCid).changes === 0) throw new TesseraError('PERMIT_INVALID', `The permit's nonce ${permit.nonce} was already used (replay).`);
          permitScope = permit.scope;
        } catch (err) {
          permitError = toErrorData(err);
        }
      }
      const calls: CapabilityCall[] = [];
      const scope: CallScope = {
        plugin: { name: plugin.manifest.name, version: plugin.manifest.version, key: plugin.key },
        grants: plugin.grants,
        trace_id: traceId,
        ...(opts.idempotency_key !== undefined ? { idempotency_key: opts.idempotency_key } : {}),
        calls,
        checkPermit(capability) {
          if (permitError) throw new TesseraError('PERMIT_INVALID', permitError.message);
          if (opts.permit === undefined) throw new TesseraError('PERMIT_INVALID', `${capability} is an effect and this call has no permit.`);
          if (!permitScope.includes(capability)) throw new TesseraError('PERMIT_INVALID', `The permit does not cover ${capability} (scope: ${permitScope.join(', ') || 'empty'}).`);
        },
      };
      const ctx = { ...opts.ctx, ...(opts.idempotency_key !== undefined ? { idempotency_key: opts.idempotency_key } : {}), now: new Date(now).toISOString(), trace_id: traceId, plugin: { name: plugin.manifest.name, version: plugin.manifest.version } };
      const emit = (topic: string, payload: unknown): void => {
        if (opts.deferEvent) opts.deferEvent({ topic, payload, trace_id: traceId });
        else bus.publish(topic, payload, { trace_id: traceId });
      };
      const started = process.hrtime.bigint();
      try {
        const heap = opts.freshHeap !== false;
        const callOptions: CallOptions = { heap, coalesce: opts.coalesce === true };
        if (opts.signal) callOptions.signal = opts.signal;
        const result = await sandbox.call(plugin.key, inputJson, JSON.stringify(ctx), now, broker.handlerFor(scope), callOptions);
        const output = checkOutput(plugin.manifest.kind, result.value);
        const run: PluginRunResult = {
          plugin: { key: plugin.key, name: plugin.manifest.name, version: plugin.manifest.version, kind: plugin.manifest.kind, cid: plugin.cid },
          trace_id: traceId,
          now: new Date(now).toISOString(),
          input_cid: inputCid,
          output,
          output_cid: cidOf(output),
          duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
          cpu_us: result.stats.cpu_us,
          heap_used_bytes: result.stats.heap_used_bytes,
          capability_calls: calls,
        };
        emit('plugin.ran', { plugin: plugin.key, output_cid: run.output_cid, ...(plugin.manifest.kind === 'policy' ? { verdict: (output as { verdict: string }).verdict } : {}), duration_ms: run.duration_ms });
        return run;
      } catch (err) {
        emit('plugin.failed', { plugin: plugin.key, error: toErrorData(err) });
        throw err;
      }
    },
    async unload(ref) {
      const plugin = find(ref);
      if (!plugin) throw new TesseraError('PLUGIN_NOT_FOUND', `No loaded plugin matches "${ref}".`);
      plugins.delete(plugin.key);
      inputValidators.delete(plugin.key);
      await sandbox.unload(plugin.key);
      bus.publish('plugin.unloaded', { key: plugin.key });
    },
    dispose: () => sandbox.dispose(),
  };
}

