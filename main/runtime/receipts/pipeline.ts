/**
 * The receipt pipeline (seed 004 §3 "caminho quente"): `intake → policies → permit → receipts → verify →
 * enrich` for one JSON view, and the k-of-n consent that promotes an ASK to ALLOW (seed 004 §4, §6).
 *
 * Order of one run and why:
 * 1. Parse the view (stable codes, products/view.ts); compute the capsule and its cid.
 * 2. Refuse a seen `(src, nonce)` (REPLAY_BLOCKED, counted and journaled) and an expired `hdr.exp`
 *    (REQUEST_EXPIRED, journaled with the times). A capsule already decided is answered as it stands
 *    (idempotence: same input ⇒ same cid ⇒ same answer, no second chain, no second effect).
 * 3. Intake, then the policies in parallel, in the sandbox. A plugin fault (throws, bad output, timeout) is a
 *    NACK with the fault as evidence — fail closed, and receipted; a sandbox outage (retryable) is not
 *    receipted: it fails the request so that a retry decides it.
 * 4. The permit and the whole chain (INTENT, RESULT, DELIVERY/EXECUTION) are built, then signed on the signer's
 *    worker thread (keys createWorkerSigner): the thread serving HTTP does not spend ~30 µs per signature. The
 *    effects' webhook outbox rows are prepared then too, so the receipts can name them.
 * 5. One SQLite transaction for every write of the request: nonce, capsule, manifests, the permit
 *    (write-before-effect: recorded before the effect, marked used by the effect), the effects (the prepared
 *    outbox rows), the consent request, the signed receipts, the journal entry, the webhook outbox rows, and the
 *    chain check — a failure anywhere rolls all of it back. A permit signed for a run that then loses a race or
 *    fails is never recorded and never used. The chain check (checkBuiltChain, the rules of verifyChain) runs on
 *    the receipts as built: ids, prev links, capsule binding, kinds, time order, signer. It does not decode and
 *    re-verify signatures this process has just made over those very payloads; a consent decision, whose chain
 *    holds an approver's signature, signs in its transaction and re-reads and verifies the whole chain.
 * 6. The plugins' `plugin.ran` events of the requests of one turn are journaled in the group commit of those
 *    requests, ahead of their receipts (no commit of their own), and reach subscribers once it has committed.
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { cidOf } from '../../common/cid.js';
import { pae, toBase64, verifyEnvelopeWith } from '../../common/dsse.js';
import type { DsseEnvelope, SignatureVerifier } from '../../common/dsse.js';
import { TesseraError, isTesseraError, toErrorData } from '../../common/errors.js';
import { CAPSULE_VERSION, CONSENT_DECISION_FIELDS, CONSENT_VERSION, RECEIPT_PAYLOAD_TYPE, capsuleId, cardPath, checkBuiltChain, verifyChain, verifyConsentDecision } from '../../common/receipt.js';
import type { Capsule, JsonObject, JsonValue, Verdict } from '../../common/receipt.js';
import { PERMIT_PAYLOAD_TYPE, issuePermit, issuePermitWith } from '../../../sandbox/permits.js';
import type { Permit } from '../../../sandbox/permits.js';
import type { Bus } from '../bus/index.js';
import { newTraceId } from '../journal/index.js';
import type { AppendInput, Journal } from '../journal/index.js';
import { signEnvelopeWith, verifyEd25519 } from '../keys/index.js';
import type { AsyncSigner, SigningKey } from '../keys/index.js';
import type { Logger } from '../log/index.js';
import type { PluginRegistry } from '../plugins/index.js';
import type { PluginRunResult } from '../../common/api.js';
import { parseView } from '../products/view.js';
import type { ParsedView } from '../products/view.js';
import type { Product, Products, Tenant } from '../products/index.js';
import { buildReceipts } from './store.js';
import type { BuiltReceipt, ConsentRecord, DecidingManifest, PermitRecord, ReceiptDraft, ReceiptStore, StoredReceipt } from './store.js';
import { NO_DELIVERIES } from '../webhooks/index.js';
import type { PreparedNotification } from '../webhooks/index.js';

/** What the pipeline needs of the metrics module (main/runtime/metrics): a subset of TesseraMetrics. */
export interface PipelineMetrics {
  runDuration: { observe(seconds: number): void };
  moduleDuration: { observe(seconds: number, labels: { module: string }): void };
  ack: { inc(): void };
  nack: { inc(): void };
  ask: { inc(): void };
  replayBlocked: { inc(): void };
  permitIssued: { inc(): void };
}

/** What the pipeline needs of the webhooks module (main/runtime/webhooks): enqueue in the caller's transaction. */
export interface PipelineWebhooks {
  notify(event: string, record: { readonly cid: string } & Readonly<Record<string, unknown>>): string[];
  prepare(event: string, record: { readonly cid: string } & Readonly<Record<string, unknown>>): PreparedNotification;
  enqueue(prepared: PreparedNotification): string[];
}

export interface RunRequest {
  tenant: Tenant;
  /** The request body as text (parsed here, with the view's limits), or already parsed by {@link parseView}. */
  body: string | ParsedView;
  /** Product name; the default product when absent. */
  product?: string;
  trace_id?: string;
}

export interface RunOutcome {
  cid: string;
  verdict: Verdict;
  state: 'decided' | 'pending' | 'rejected';
  /** cid of the product manifest. */
  product: string;
  /** True when the capsule was already decided and this request only found it. */
  repeated: boolean;
  consent: { id: string; k: number; n: number } | null;
}

export interface ConsentOutcome {
  consent: ConsentRecord;
  /** The capsule's verdict after this vote. */
  verdict: Verdict;
}

export interface Pipeline {
  /**
   * Runs the product's pipeline on one view.
   * @throws TesseraError VIEW_INVALID, VIEW_TOO_LARGE, VIEW_TOO_DEEP, REPLAY_BLOCKED, REQUEST_EXPIRED,
   *   PRODUCT_NOT_FOUND, SANDBOX_UNAVAILABLE, NOT_READY, CHAIN_INVALID.
   */
  run(request: RunRequest): Promise<RunOutcome>;
  /**
   * Records an approver's signed decision on a consent request; k approvals promote the capsule to ALLOW
   * (permit, RESULT, effects); enough rejections that k can no longer be reached close it as NACK.
   * @throws TesseraError CONSENT_NOT_FOUND, CONSENT_CLOSED (closed, or this approver already voted),
   *   SIGNATURE_INVALID (bad envelope or signature), KEY_UNKNOWN (not an approver of this request),
   *   VALIDATION_FAILED (the signed decision is for another request, capsule or action).
   */
  decide(consentId: string, action: 'approve' | 'reject', envelope: unknown): ConsentOutcome;
}

export interface PipelineOptions {
  products: Products;
  plugins: PluginRegistry;
  receipts: ReceiptStore;
  journal: Journal;
  deviceKey: SigningKey;
  /**
   * Signs a run's permit and receipts off this thread (keys/index.ts createWorkerSigner), before its transaction.
   * Without it they are signed here. Consent decisions always sign in their transaction, on this thread.
   */
  signer?: AsyncSigner;
  logger: Logger;
  clock?: () => number;
  metrics?: PipelineMetrics;
  webhooks?: PipelineWebhooks;
  /**
   * Publishes the plugins' `plugin.ran` / `plugin.failed` events: those of the requests whose plugins finish in
   * the same turn of the event loop go in one journal commit (without it the registry commits each one alone).
   */
  bus?: Pick<Bus, 'publishMany' | 'stageMany'>;
  /** False while the runtime stops: runs are refused with NOT_READY. */
  ready?: () => boolean;
}

/** What a run signs before its transaction: its whole chain and, for an ACK, the permit and the effects' outbox rows. */
interface SignedRun {
  chain: StoredReceipt[];
  permit?: { record: Omit<PermitRecord, 'state'>; envelope: DsseEnvelope };
  effects: Array<{ effect: string; outbox: PreparedNotification }>;
}

/** What a run needs of its product that does not change between runs (a product is never reconfigured). */
interface ProductPlan {
  manifests: DecidingManifest[];
  lock: JsonObject;
  /** Per policy, in order: whether its input names `$intake` (it then waits for the intake). */
  needsIntake: boolean[];
}

/**
 * Most requests written in one shared transaction (group commit). Under 32 concurrent clients about 11 are ready
 * per turn: with a cap of 8 they took two commits, and the commit's cost per request (its WAL frames, most of them
 * pages every request of the batch touches) fell from ~150 µs to ~100 µs with the cap raised (measured here).
 */
const GROUP_COMMIT_MAX = 32;

/** Plugin faults that are the plugin's own (deterministic): receipted as NACK evidence. Others fail the request. */
const PLUGIN_FAULTS = new Set(['PLUGIN_FAILED', 'PLUGIN_OUTPUT_INVALID', 'PLUGIN_TIMEOUT', 'PLUGIN_MEMORY_EXCEEDED', 'VALIDATION_FAILED', 'PAYLOAD_TOO_LARGE']);

interface PolicyOutcome {
  plugin: string;
  version: string;
  cid: string;
  verdict: Verdict;
  reason: string;
  evidence: JsonValue;
}

/** Combined verdict (seed 004 §3): any NACK ⇒ NACK, else any ASK ⇒ ASK, else ACK. */
export function combineVerdicts(verdicts: readonly Verdict[]): Verdict {
  if (verdicts.includes('NACK')) return 'NACK';
  if (verdicts.includes('ASK')) return 'ASK';
  return 'ACK';
}

/**
 * Replaces every string `"$name.path"` in `template` by that value of `env` (`$view.meta.principal`), whole
 * values only. A path that does not exist gives null. Pure; used to build each policy's input.
 */
export function resolveInput(template: unknown, env: Record<string, unknown>): unknown {
  if (typeof template === 'string' && template.startsWith('$')) {
    let value: unknown = env;
    for (const part of template.slice(1).split('.')) {
      if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, part)) return null;
      value = (value as Record<string, unknown>)[part];
    }
    return value ?? null;
  }
  if (Array.isArray(template)) return template.map((t) => resolveInput(t, env));
  if (template !== null && typeof template === 'object') return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, resolveInput(v, env)]));
  return template;
}

export function createPipeline(options: PipelineOptions): Pipeline {
  const { products, plugins, receipts, journal, deviceKey, logger, metrics, webhooks } = options;
  const clock = options.clock ?? Date.now;
  const devicePublicKey = deviceKey.publicKeyRaw;
  const deviceLookup = (keyid: string) => (keyid === deviceKey.keyid ? { publicKeyRaw: devicePublicKey } : undefined);
  const verifier: SignatureVerifier = verifyEd25519;
  // The plugins' events of the runs being decided. The next group commit (flush, below) journals them first, in
  // its own transaction, so a run's plugin.ran events come before its receipt.decided and cost no commit of their
  // own; they reach subscribers after that commit. When the last run being decided ends without a commit (its
  // write failed or it never got there), the events still pending are published on their own.
  const pluginEvents: AppendInput[] = [];
  /** Runs between their first plugin call and the end of their commit: while one is, a flush is still to come. */
  let runsDeciding = 0;
  const publishPluginEvents = (): void => {
    if (pluginEvents.length === 0) return;
    try {
      options.bus!.publishMany(pluginEvents.splice(0));
    } catch (err) {
      logger.error('could not journal the plugin events of a run', { error: err });
    }
  };
  /** Journals the pending plugin events inside the caller's transaction; returns their delivery to subscribers. */
  const stagePluginEvents = (): (() => void) | undefined => {
    if (pluginEvents.length === 0) return undefined;
    const events = pluginEvents.splice(0);
    try {
      return options.bus!.stageMany(events).deliver;
    } catch (err) {
      logger.error('could not journal the plugin events of a run', { error: err });
      return undefined;
    }
  };
  const deferEvent = options.bus ? (event: AppendInput): void => {
    // A plugin that finishes after its run gave up (the run failed on another plugin's outage) has no flush to come.
    if (pluginEvents.push(event) === 1 && runsDeciding === 0) setImmediate(publishPluginEvents);
  } : undefined;
  const runDecided = (): void => {
    if (--runsDeciding === 0 && pluginEvents.length > 0) setImmediate(publishPluginEvents);
  };
  const timed = <T>(module: string, fn: () => T): T => {
    const started = performance.now();
    try {
      return fn();
    } finally {
      metrics?.moduleDuration.observe((performance.now() - started) / 1000, { module });
    }
  };

  /** Runs one plugin; a plugin fault becomes a NACK outcome (fail closed), an outage is rethrown. */
  const runPlugin = async (pin: { key: string; name: string; version: string; cid: string }, input: unknown, now: number, traceId: string, ctx: Record<string, unknown>): Promise<PluginRunResult | { fault: ReturnType<typeof toErrorData> }> => {
    const started = performance.now();
    try {
      // freshHeap false: a run's receipts do not carry the plugin's heap use, so it is not read after every call.
      // coalesce: under load, the calls of all the requests read in one event-loop turn leave in one pipe write.
      return await plugins.run(pin.key, input, deferEvent ? { now, trace_id: traceId, ctx, deferEvent, freshHeap: false, coalesce: true } : { now, trace_id: traceId, ctx, freshHeap: false, coalesce: true });
    } catch (err) {
      if (isTesseraError(err) && PLUGIN_FAULTS.has(err.code)) return { fault: toErrorData(err) };
      throw err;
    } finally {
      metrics?.moduleDuration.observe((performance.now() - started) / 1000, { module: `${pin.name}@${pin.version}` });
    }
  };

  /**
   * The executor's check of a permit before an effect: the rules of sandbox/permits.ts `verifyPermit` (signed by
   * this device, a permit payload, bound to this capsule's cid, unexpired at `now`) plus the scope covering
   * `effect`, verified with the cached node:crypto key (verifyPermit re-imports the key on every call).
   * Single use is the permit record's (markPermitEffected). `verify`: see {@link signedHere}.
   * @throws TesseraError PERMIT_INVALID saying why.
   */
  const checkPermit = (envelope: DsseEnvelope, cid: string, effect: string, now: number, verify: SignatureVerifier): void => {
    let permit: Permit;
    try {
      const verified = verifyEnvelopeWith(envelope, deviceLookup, verify);
      if (verified.payloadType !== PERMIT_PAYLOAD_TYPE) throw new Error(`the envelope carries a ${verified.payloadType}`);
      permit = JSON.parse(new TextDecoder().decode(verified.payload)) as Permit;
    } catch (err) {
      throw new TesseraError('PERMIT_INVALID', `The permit is not accepted: ${(err as Error).message}`);
    }
    if (permit.input_cid !== cid) throw new TesseraError('PERMIT_INVALID', `The permit is bound to ${permit.input_cid}, not to ${cid}.`);
    if (!(Date.parse(permit.expires_at) > now)) throw new TesseraError('PERMIT_INVALID', `The permit expired at ${permit.expires_at}.`);
    if (!Array.isArray(permit.scope) || !permit.scope.includes(effect)) throw new TesseraError('PERMIT_INVALID', `The permit does not cover ${effect} (scope: ${String(permit.scope)}).`);
  };

  /**
   * Verifies the capsule's whole chain as stored (ids, prev links, capsule binding, kinds, signatures with `verify`)
   * and throws CHAIN_INVALID naming the receipt and field.
   */
  const verifyStored = (cid: string, verify: SignatureVerifier): void =>
    timed('verify', () => {
      const keys = new Map(receipts.publicKeys(cid).map((k) => [k.keyid, k]));
      const result = verifyChain(receipts.receipts(cid), (keyid) => (keys.has(keyid) ? { publicKeyRaw: rawOf(keys.get(keyid)!.publicKeyPem) } : undefined), { capsule: cid, verify });
      if (!result.ok) throw new TesseraError('CHAIN_INVALID', `The receipt chain of ${cid} does not verify: ${result.reason}`, { details: { index: result.index, field: result.field } });
    });

  /**
   * The chain rules over the receipts a run just wrote (the whole chain of a new capsule), as built in memory:
   * ids, prev links, capsule binding, kinds, time order, the signing device. Throws CHAIN_INVALID naming the
   * receipt and field, which rolls the run back.
   */
  const checkWritten = (cid: string, chain: readonly StoredReceipt[]): void =>
    timed('verify', () => {
      const result = checkBuiltChain(chain, { capsule: cid, device: deviceKey.keyid });
      if (!result.ok) throw new TesseraError('CHAIN_INVALID', `The receipt chain of ${cid} does not verify: ${result.reason}`, { details: { index: result.index, field: result.field } });
    });

  const newPermit = (product: Product, cid: string, now: number): Permit => ({
    input_cid: cid,
    scope: product.permit.scope,
    expires_at: new Date(now + product.permit.ttl_seconds * 1000).toISOString(),
    nonce: randomHex(),
  });
  const allowDraft = (subject: string, resultBody: JsonObject, envelope: DsseEnvelope, permitId: string): ReceiptDraft => ({
    kind: 'RESULT',
    subject,
    body: { ...resultBody, decision: 'ALLOW', permit: envelope as unknown as JsonObject, permit_id: permitId },
  });
  /** The receipts of one effect: handed to the outbox (DELIVERY), done (EXECUTION). */
  const effectDrafts = (cid: string, permitId: string, effect: string, deliveries: readonly string[]): ReceiptDraft[] => [
    { kind: 'DELIVERY', subject: 'outbox', body: { permit_id: permitId, recipient: 'webhook-outbox', effect, payload_cid: cid, deliveries: deliveries.length } },
    { kind: 'EXECUTION', subject: `device:${deviceKey.keyid}`, body: { permit_id: permitId, executor: deviceKey.keyid, effect, outcome: 'done', output_cid: cidOf({ deliveries: [...deliveries] }) } },
  ];
  /**
   * One effect, in the caller's transaction, after the permit is recorded: the executor's check (no effect without
   * a valid, unexpired permit bound to this capsule, used once), then the effect (`run`: the webhook outbox rows).
   */
  const runEffect = (envelope: DsseEnvelope, cid: string, permitId: string, effect: string, now: number, signed: SignedHere, run: () => string[]): string[] => {
    checkPermit(envelope, cid, effect, now, signed.verify);
    receipts.markPermitEffected(cid, permitId, now);
    return run();
  };

  /**
   * The consent path's ALLOW, inside the caller's transaction: issues and records the permit (write-before-effect),
   * runs the effects; returns the RESULT and the effects' DELIVERY/EXECUTION receipts to append, in order.
   */
  const allow = (product: Product, cid: string, subject: string, resultBody: JsonObject, now: number, signed: SignedHere): ReceiptDraft[] => {
    const permit = newPermit(product, cid, now);
    const envelope = signed.add(timed('permit', () => issuePermit(deviceKey, permit)));
    const permitId = cidOf(permit);
    receipts.recordPermit({ id: permitId, capsule: cid, nonce: permit.nonce, expires_at: permit.expires_at, envelope }, now);
    const drafts = [allowDraft(subject, resultBody, envelope, permitId)];
    for (const effect of product.effects) {
      const deliveries = runEffect(envelope, cid, permitId, effect, now, signed, () => (webhooks ? webhooks.notify('receipt.delivered', { cid, permit_id: permitId, product: product.cid, effect }) : []));
      drafts.push(...effectDrafts(cid, permitId, effect, deliveries));
    }
    return drafts;
  };

  const signer: AsyncSigner = options.signer ?? { sign: (message) => Promise.resolve(deviceKey.sign(message)), close: () => undefined, threaded: false };
  const signAll = (built: readonly BuiltReceipt[]): Promise<StoredReceipt[]> =>
    Promise.all(built.map(async ({ id, payload, bytes }) => ({ id, payload, envelope: await signEnvelopeWith(RECEIPT_PAYLOAD_TYPE, bytes, deviceKey, signer) })));
  /**
   * Builds and signs a new capsule's chain (INTENT, then RESULT and, on ACK, each effect's DELIVERY/EXECUTION) and
   * the permit, off this thread: the permit first (RESULT carries it), then every receipt at once. The effects'
   * outbox rows are prepared here, so the receipts can name them, and written in the transaction.
   */
  const signRun = async (product: Product, cid: string, subject: string, intent: JsonObject, result: JsonObject, verdict: Verdict, consent: JsonValue, now: number): Promise<SignedRun> => {
    const intentDraft: ReceiptDraft = { kind: 'INTENT', subject, body: intent };
    if (verdict !== 'ACK') {
      const resultDraft: ReceiptDraft = verdict === 'NACK' ? { kind: 'RESULT', subject, body: { ...result, decision: 'DENY' } } : { kind: 'RESULT', subject, body: { ...result, decision: 'REQUIRE', consent } };
      return { chain: await signAll(buildReceipts(cid, null, [intentDraft, resultDraft], now, deviceKey.keyid)), effects: [] };
    }
    const permit = newPermit(product, cid, now);
    const started = performance.now();
    const { envelope, id: permitId } = await issuePermitWith(deviceKey, signer, permit);
    metrics?.moduleDuration.observe((performance.now() - started) / 1000, { module: 'permit' });
    const effects = product.effects.map((effect) => ({ effect, outbox: webhooks ? webhooks.prepare('receipt.delivered', { cid, permit_id: permitId, product: product.cid, effect }) : NO_DELIVERIES }));
    const drafts = [intentDraft, allowDraft(subject, result, envelope, permitId), ...effects.flatMap((e) => effectDrafts(cid, permitId, e.effect, e.outbox.ids))];
    return {
      chain: await signAll(buildReceipts(cid, null, drafts, now, deviceKey.keyid)),
      permit: { record: { id: permitId, capsule: cid, nonce: permit.nonce, expires_at: permit.expires_at, envelope }, envelope },
      effects,
    };
  };

  const enrich = (product: Product, cid: string, verdict: Verdict, state: string, head: string): void => {
    if (webhooks && product.enrich.includes('webhook')) webhooks.notify('receipt.decided', { cid, verdict, state, product: product.cid, card: cardPath(cid), head });
  };

  /** Counts a committed decision (never inside the transaction, which may still roll back). An ACK signed one permit. */
  const count = (verdict: Verdict): void => {
    if (verdict === 'ACK') {
      metrics?.ack.inc();
      metrics?.permitIssued.inc();
    }
    else if (verdict === 'NACK') metrics?.nack.inc();
    else metrics?.ask.inc();
  };

  const replayError = (src: string, nonce: string): TesseraError =>
    new TesseraError('REPLAY_BLOCKED', `A request from ${JSON.stringify(src)} with nonce ${JSON.stringify(nonce)} was already received; send a new hdr.nonce.`, { details: { src, nonce } });
  /** Counts and journals a refused replay: outside any transaction, so the refusal stays on record. */
  const blocked = (src: string, nonce: string, cid: string, traceId: string): never => {
    metrics?.replayBlocked.inc();
    journal.append({ topic: 'receipt.replay_blocked', payload: { src, nonce, capsule: cid }, trace_id: traceId });
    throw replayError(src, nonce);
  };

  // Group commit: the writes of the requests that finish their plugins in the same turn of the event loop
  // share one SQLite transaction, each in its own savepoint (all or nothing per request). A request is
  // answered only after the shared commit; a failing request rolls back its savepoint alone. A batch holds at
  // most GROUP_COMMIT_MAX requests, so that plugin replies are still handled between batches under any load.
  const queue: Array<{ fn: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }> = [];
  const flush = (): void => {
    const batch = queue.splice(0, GROUP_COMMIT_MAX);
    if (queue.length > 0) setImmediate(flush);
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    let deliverPluginEvents: (() => void) | undefined;
    try {
      receipts.transaction(() => {
        deliverPluginEvents = stagePluginEvents();
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: receipts.transaction(item.fn) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      if (deliverPluginEvents) logger.error('a group commit failed: the plugin events journaled in it were rolled back with it', { error });
      for (const item of batch) item.reject(error);
      return;
    }
    deliverPluginEvents?.();
    batch.forEach((item, i) => {
      const o = outcomes[i]!;
      if (o.ok) item.resolve(o.value);
      else item.reject(o.error);
    });
  };
  const commit = <T>(fn: () => T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (queue.push({ fn, resolve: resolve as (v: unknown) => void, reject }) === 1) setImmediate(flush);
    });
  /** {@link commit}, with a replay found inside the transaction journaled after it rolled back. */
  const commitRun = async <T>(fn: () => T, src: string, nonce: string, cid: string, traceId: string): Promise<T> => {
    try {
      return await commit(fn);
    } catch (err) {
      if (isTesseraError(err) && err.code === 'REPLAY_BLOCKED') blocked(src, nonce, cid, traceId);
      throw err;
    }
  };

  const plans = new WeakMap<Product, ProductPlan>();
  const planOf = (product: Product): ProductPlan => {
    let plan = plans.get(product);
    if (!plan) {
      plan = {
        manifests: [
          { role: 'product', name: product.name, version: product.version, cid: product.cid, manifest: product.manifest },
          { role: 'intake', name: product.intake.name, version: product.intake.version, cid: product.intake.cid, manifest: product.intake.manifest },
          ...product.policies.map((p) => ({ role: 'policy' as const, name: p.name, version: p.version, cid: p.cid, manifest: p.manifest })),
        ],
        lock: Object.fromEntries(Object.entries(product.lock.plugins).map(([name, pin]) => [name, pin.cid])),
        needsIntake: product.policies.map((p) => p.input === undefined || JSON.stringify(p.input).includes('"$intake')),
      };
      // Stored once, committed before the first run's transaction: each run then only links them to its capsule.
      receipts.saveManifests(plan.manifests);
      plans.set(product, plan);
    }
    return plan;
  };

  const outcomeOf = (cid: string, repeated: boolean): RunOutcome => {
    const record = receipts.capsule(cid)!;
    const open = receipts.consentOf(cid);
    return { cid, verdict: record.verdict, state: record.state, product: record.capsule.product, repeated, consent: open ? { id: open.id, k: open.k, n: open.approvers.length } : null };
  };

  return {
    async run(request) {
      if (options.ready && !options.ready()) throw new TesseraError('NOT_READY', 'The runtime is stopping; no new runs are accepted.');
      const started = performance.now();
      const product = products.get(request.product);
      const body = request.body;
      const parsed = typeof body === 'string' ? timed('parse', () => parseView(body)) : body;
      const { src, nonce, exp } = parsed.hdr;
      const now = clock();
      const aud = request.tenant.aud ?? product.aud;
      const capsule: Capsule = { v: CAPSULE_VERSION, product: product.cid, act: product.act, tenant: request.tenant.id, aud, src, view: parsed.view };
      const cid = capsuleId(capsule);
      // Time-ordered (journal newTraceId), so the journal's trace index grows at its end, not at a random page.
      const traceId = request.trace_id ?? newTraceId(now);
      const seen = receipts.seen(src, nonce, cid);
      if (seen.nonce) blocked(src, nonce, cid, traceId);
      if (exp !== null && Date.parse(exp) <= now) {
        journal.append({ topic: 'receipt.expired', payload: { src, nonce, exp, now: new Date(now).toISOString(), capsule: cid }, trace_id: traceId });
        throw new TesseraError('REQUEST_EXPIRED', `The request expired at ${exp}; the device's time is ${new Date(now).toISOString()}. Send it again with a later hdr.exp.`, { details: { exp } });
      }
      if (seen.capsule) {
        await commitRun(() => {
          if (!receipts.claimNonce(src, nonce, cid, now)) throw replayError(src, nonce);
          journal.append({ topic: 'receipt.repeated', payload: { capsule: cid, src, nonce }, trace_id: traceId });
        }, src, nonce, cid, traceId);
        return outcomeOf(cid, true);
      }

      const plan = planOf(product);
      runsDeciding++;
      try {
        const pluginCtx = { tenant: request.tenant.id, aud, product: product.name };
        // Policies whose input does not name $intake start at once, alongside the intake.
        const intakeRun = runPlugin(product.intake, parsed.view, now, traceId, pluginCtx);
        const policyRuns = product.policies.map(async (p, i): Promise<PolicyOutcome> => {
          const base = { plugin: p.name, version: p.version, cid: p.cid };
          const ranIntake = plan.needsIntake[i] ? await intakeRun : undefined;
          if (ranIntake && 'fault' in ranIntake) return { ...base, verdict: 'NACK', reason: `not run: the intake ${product.intake.name} failed`, evidence: null };
          const intakeOut = ranIntake ? (ranIntake.output as JsonObject) : null;
          const env = { view: parsed.view, tenant: request.tenant.id, aud, intake: intakeOut, principal: { id: request.tenant.id, tenant: request.tenant.id, audiences: [aud] } };
          const input = p.input === undefined ? { view: parsed.view, tenant: request.tenant.id, aud, intake: intakeOut } : resolveInput(p.input, env);
          const ran = await runPlugin(p, input, now, traceId, pluginCtx);
          if ('fault' in ran) return { ...base, verdict: 'NACK', reason: `the policy failed: ${ran.fault.code}: ${ran.fault.message}`, evidence: { fault: ran.fault.code } };
          const out = ran.output as { verdict: Verdict; reason: string; evidence?: JsonValue };
          return { ...base, verdict: out.verdict, reason: out.reason, evidence: out.evidence ?? null };
        });
        const allPolicies = Promise.all(policyRuns);
        // If the intake fails with an outage, the policies' outcome is dropped, never left unhandled.
        allPolicies.catch(() => undefined);
        const intake = await intakeRun;
        const intakeOutput = 'fault' in intake ? null : (intake.output as { intent: string; slots?: JsonObject; ctx?: JsonObject });
        const policies = await allPolicies;
        const intakeVerdicts: Verdict[] = 'fault' in intake ? ['NACK'] : [];
        const verdict = combineVerdicts([...intakeVerdicts, ...policies.map((p) => p.verdict)]);
        const kofn = verdict === 'ASK' ? product.kofn : null;
        const state = verdict === 'ASK' && kofn ? 'pending' : verdict === 'NACK' ? 'rejected' : 'decided';
        const subject = `tenant:${request.tenant.id}`;
        const consent = kofn ? { id: `cns_${cid.slice(3, 27)}`, k: kofn.k, n: kofn.approvers.length } : null;

        const intentBody: JsonObject = {
          intent: intakeOutput?.intent ?? null,
          slots: intakeOutput?.slots ?? null,
          intake: 'fault' in intake ? { fault: intake.fault.code, message: intake.fault.message } : { plugin: product.intake.name, version: product.intake.version, cid: product.intake.cid, output_cid: intake.output_cid },
          src,
          nonce,
          exp,
          received_at: new Date(now).toISOString(),
          product: { name: product.name, version: product.version, cid: product.cid },
          lock: plan.lock,
        };
        const resultBody: JsonObject = { verdict, policies: policies as unknown as JsonValue[] };
        const run = await signRun(product, cid, subject, intentBody, resultBody, verdict, consent, now);

        // Every write of this request, in one savepoint of the group commit. True: an identical request won the race.
        const write = (): boolean => {
          if (!receipts.claimNonce(src, nonce, cid, now)) throw replayError(src, nonce);
          // Two identical requests raced past the check above: the first one's chain stands (this one's signatures
          // and permit are dropped unrecorded; no effect ran). It is journaled as a repeat, like one that came later.
          if (receipts.has(cid)) {
            journal.append({ topic: 'receipt.repeated', payload: { capsule: cid, src, nonce }, trace_id: traceId });
            return true;
          }
          receipts.createCapsule(cid, capsule, verdict, state, now);
          receipts.recordManifests(cid, plan.manifests);
          if (run.permit) {
            const { record, envelope } = run.permit;
            const signed = signedHere(deviceKey, verifier);
            signed.add(envelope);
            receipts.recordPermit(record, now);
            for (const { effect, outbox } of run.effects) {
              const created = runEffect(envelope, cid, record.id, effect, now, signed, () => (webhooks ? webhooks.enqueue(outbox) : []));
              // The receipts name the deliveries prepared before the transaction; they must be the ones written.
              if (created.length !== outbox.ids.length) throw new TesseraError('INTERNAL', `The outbox took ${created.length} of the ${outbox.ids.length} deliveries the receipts of ${cid} name.`);
            }
          }
          if (kofn && consent) receipts.openConsent({ id: consent.id, capsule: cid, k: kofn.k, approvers: kofn.approvers.map((a) => a.keyid) }, now);
          const chain = timed('receipts', () => receipts.appendSigned(cid, run.chain, now));
          journal.append({ topic: 'receipt.decided', payload: { capsule: cid, verdict, state, product: product.cid, tenant: request.tenant.id }, trace_id: traceId });
          checkWritten(cid, chain);
          enrich(product, cid, verdict, state, chain[chain.length - 1]!.id);
          return false;
        };
        const repeated = await commitRun(write, src, nonce, cid, traceId);
        if (!repeated) count(verdict);
        metrics?.runDuration.observe((performance.now() - started) / 1000);
        // A capsule this request wrote is answered from what it wrote (the rows just committed say the same).
        return repeated ? outcomeOf(cid, true) : { cid, verdict, state, product: product.cid, repeated: false, consent };
      } finally {
        runDecided();
      }
    },

    decide(consentId, action, envelope) {
      const consent = receipts.consent(consentId);
      if (!consent) throw new TesseraError('CONSENT_NOT_FOUND', `No consent request ${consentId}.`);
      if (consent.state !== 'open') throw new TesseraError('CONSENT_CLOSED', `Consent request ${consentId} is already ${consent.state}.`);
      const record = receipts.capsule(consent.capsule)!;
      const product = products.byCid(record.capsule.product);
      if (!product?.kofn) throw new TesseraError('PRODUCT_NOT_FOUND', `The product ${record.capsule.product} that opened ${consentId} is no longer loaded; its approvers cannot be checked.`);
      const approvers = new Map(product.kofn.approvers.filter((a) => consent.approvers.includes(a.keyid)).map((a) => [a.keyid, a]));
      const checked = verifyConsentDecision(envelope, (keyid) => approvers.get(keyid), verifier);
      if (!checked.ok) {
        const unknown = checked.problem.startsWith('KEY_UNKNOWN');
        // The problem may start with the code of the error behind it, which is this error's code already.
        const problem = checked.problem.replace(/^[A-Z_]+: /, '').replace(/\.$/, '');
        throw new TesseraError(unknown ? 'KEY_UNKNOWN' : 'SIGNATURE_INVALID', unknown ? `The decision is not signed by an approver of ${consentId} (${[...approvers.keys()].join(', ')}).` : `The signed decision is not valid: ${problem}.`);
      }
      const { decision, keyid } = checked;
      // Exactly the fields an approver is shown to sign: anything else in a signed decision is refused, not stored.
      const extra = Object.keys(decision).filter((k) => !CONSENT_DECISION_FIELDS.includes(k));
      if (extra.length > 0) throw new TesseraError('VALIDATION_FAILED', `The signed decision has ${extra.map((k) => JSON.stringify(k)).join(', ')}, which a ${CONSENT_VERSION} decision does not; sign exactly ${CONSENT_DECISION_FIELDS.join(', ')}.`);
      if (decision.consent !== consentId || decision.capsule !== consent.capsule || decision.decision !== action) {
        throw new TesseraError('VALIDATION_FAILED', `The signed decision is "${decision.decision}" of ${decision.consent} for ${decision.capsule}; this request is "${action}" of ${consentId} for ${consent.capsule}.`);
      }
      const now = Math.max(clock(), Date.parse(record.updated_at));
      const cid = consent.capsule;
      const subject = `key:${keyid}`;
      const verdict = receipts.transaction((): Verdict => {
        if (!receipts.recordVote(consentId, keyid, action, envelope as DsseEnvelope, now)) throw new TesseraError('CONSENT_CLOSED', `Approver ${keyid} already voted on ${consentId}.`);
        receipts.recordKey(cid, keyid, approvers.get(keyid)!.publicKeyPem, 'approver');
        const drafts: ReceiptDraft[] = [{ kind: 'CONSENT', subject, body: { consent: consentId, decision: action, approver: keyid, envelope: envelope as JsonObject } }];
        const votes = receipts.consent(consentId)!.votes;
        const approvals = votes.filter((v) => v.decision === 'approve').length;
        const rejections = votes.filter((v) => v.decision === 'reject').length;
        const base: JsonObject = { policies: [], via: 'consent', consent: { id: consentId, k: consent.k, n: consent.approvers.length, approvals, rejections } };
        let result: Verdict = 'ASK';
        if (approvals >= consent.k) {
          receipts.closeConsent(consentId, 'approved', now);
          receipts.setCapsuleState(cid, 'ACK', 'decided', now);
          drafts.push(...allow(product, cid, `tenant:${record.capsule.tenant}`, { ...base, verdict: 'ACK' }, now, signedHere(deviceKey, verifier)));
          result = 'ACK';
        } else if (consent.approvers.length - rejections < consent.k) {
          receipts.closeConsent(consentId, 'rejected', now);
          receipts.setCapsuleState(cid, 'NACK', 'rejected', now);
          drafts.push({ kind: 'RESULT', subject: `tenant:${record.capsule.tenant}`, body: { ...base, verdict: 'NACK', decision: 'DENY' } });
          result = 'NACK';
        }
        const head = receipts.appendReceipts(cid, drafts, now).at(-1)!.id;
        journal.append({ topic: 'receipt.consent', payload: { capsule: cid, consent: consentId, approver: keyid, decision: action, verdict: result } });
        verifyStored(cid, verifier);
        if (result !== 'ASK') enrich(product, cid, result, result === 'ACK' ? 'decided' : 'rejected', head);
        return result;
      });
      // ack/nack/ask count runs (POST /v1/run); a promotion only adds the permit it signed.
      if (verdict === 'ACK') metrics?.permitIssued.inc();
      logger.info('consent decision recorded', { consent: consentId, approver: keyid, decision: action, verdict });
      return { consent: receipts.consent(consentId)!, verdict };
    },
  };
}

/** 32 random hex digits (122 random bits) from node's buffered UUID source: no syscall per call, unlike randomBytes. */
function randomHex(): string {
  return randomUUID().replaceAll('-', '');
}

export interface SignedHere {
  /** Records an envelope signed in this request by the device key; returns it. */
  add(envelope: DsseEnvelope): DsseEnvelope;
  /** `verify`, except that a signature recorded here, over the same bytes, by the device key, is not verified again. */
  readonly verify: SignatureVerifier;
}

/**
 * The signatures one request made with the device key, so that the request's own checks (the executor's check
 * of the permit it just issued before each effect) do not verify them a second time: an Ed25519 verification
 * costs more than the signature itself.
 *
 * Why it is sound: an entry is the device key's Ed25519 signature made by this process over exactly the bytes
 * recorded with it (the PAE of the envelope as returned by the signer), and the key's public half is derived from
 * its private half when the key is loaded (keys/index.ts), so verifying it again can only say yes. The shortcut
 * applies only when the signature, the public key and every byte of the message match what was signed; anything
 * else — a receipt read back different from what was written, another key, an approver's signature, an earlier
 * request's receipt — goes to `verify`. Every other rule of the permit check still applies, and the bundle, card
 * and offline verifiers verify every signature.
 */
export function signedHere(deviceKey: SigningKey, verify: SignatureVerifier): SignedHere {
  const made = new Map<string, Uint8Array>();
  const device = Buffer.from(deviceKey.publicKeyRaw);
  return {
    add(envelope) {
      // The signer's own standard base64 (keys/index.ts toBase64): node's decoder gives back the exact bytes signed.
      for (const s of envelope.signatures) if (s.keyid === deviceKey.keyid) made.set(s.sig, pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64')));
      return envelope;
    },
    verify(sig, message, publicKeyRaw) {
      const signedMessage = made.get(toBase64(sig));
      if (signedMessage !== undefined && device.equals(publicKeyRaw) && Buffer.from(signedMessage).equals(message)) return true;
      return verify(sig, message, publicKeyRaw);
    },
  };
}

const rawCache = new Map<string, Uint8Array>();
/** The raw 32-byte Ed25519 key of an SPKI PEM (cached: the same few keys sign every receipt). */
function rawOf(pem: string): Uint8Array {
  let raw = rawCache.get(pem);
  if (!raw) {
    const der = createPublicKey(pem).export({ format: 'der', type: 'spki' });
    raw = new Uint8Array(der.subarray(der.length - 32));
    if (rawCache.size > 256) rawCache.clear();
    rawCache.set(pem, raw);
  }
  return raw;
}
