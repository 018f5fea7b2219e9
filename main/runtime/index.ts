/**
 * The runtime: everything that is not a shell. Composed here, shared by the headless host and the Electron
 * main process, and free of Electron (lint-enforced). Later modules (sandbox host, scenarios, pipeline,
 * receipts, io) are added to this composition and to its shutdown order.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProcessLauncher } from '../../sandbox/client.js';
import type { RuntimeInfo } from '../common/api.js';
import { createBus } from './bus/index.js';
import type { Bus } from './bus/index.js';
import { createJournal } from './journal/index.js';
import type { Journal } from './journal/index.js';
import { createDisposableStore } from './lifecycle/index.js';
import type { DisposableStore } from './lifecycle/index.js';
import type { Logger } from './log/index.js';
import { openStore } from './store/index.js';
import type { Store } from './store/index.js';
import { lockDataDir } from './store/lock.js';
import type { DataDirLock } from './store/lock.js';
import { createWorkerSigner, generateKeyPair, readPrivateKey, writePrivateKey } from './keys/index.js';
import type { SigningKey } from './keys/index.js';
import { createMemory } from './memory/index.js';
import { createSecretStore } from './secrets/index.js';
import type { SecretStore } from './secrets/index.js';
import { createCostMeter } from './costs/index.js';
import type { CostMeter } from './costs/index.js';
import type { Memory } from './memory/index.js';
import { createPluginRegistry } from './plugins/index.js';
import type { HttpOriginMap } from '../../sandbox/capabilities.js';
import { createScenarioEngine } from './scenarios/engine.js';
import type { Cluster, ClusterOptions } from './cluster/index.js';
import type { EngineLimits, ScenarioEngine } from './scenarios/engine.js';
import { scenarioExpressions } from './scenarios/expressions.js';
import { createAutomation } from './scenarios/automation.js';
import type { Automation } from './scenarios/automation.js';
import { loadScenarioDir } from './scenarios/dsl.js';
import { admitScenario, builtinScenarioKeys } from './scenarios/signing.js';
import type { ScenarioTrustMode } from './scenarios/signing.js';
import { readGrants } from './scenarios/permissions.js';
import { checkIntentTargets, createIntentRegistry, createIntentRouter, createRecognizer, loadRuleSet, registerRuleSetIntents } from './intents/index.js';
import type { IntentRegistry, IntentRouter, Recognizer, RuleSet } from './intents/index.js';
import { createArtifactRegistry, createExecutionRegistry, createStateSurface, followScenarioRuns } from './contracts/index.js';
import type { ArtifactRegistry, ExecutionRegistry, StateSurface } from './contracts/index.js';
import { pluginToolRunner } from './scenarios/tools.js';
import type { PluginRegistry } from './plugins/index.js';
import { combineTrustStores, openTrustStore } from './trust/index.js';
import type { TrustStore, TrustView } from './trust/index.js';
import { PRODUCT_NAME, VERSION } from './version.js';
import { TesseraError } from '../common/errors.js';
import { createLockManager } from './scenarios/locks.js';
import type { LockManager } from './scenarios/locks.js';
import { DIALOGUE_CONTEXT_SAMPLE, createDefaultVoice, createIoRouter, loadMessageCatalogue } from './io/index.js';
import type { IoMatrix, IoRouter, VoiceSetup, VoiceSettings } from './io/index.js';
import { createTesseraMetrics } from './metrics/index.js';
import type { TesseraMetrics } from './metrics/index.js';
import { createWebhooks } from './webhooks/index.js';
import type { DeliveryOptions, Webhooks } from './webhooks/index.js';
import { createReceiptStore } from './receipts/store.js';
import type { ReceiptStore } from './receipts/store.js';
import { createDeviceLog } from './receipts/device-log.js';
import type { DeviceLog } from './receipts/device-log.js';
import { createPipeline } from './receipts/pipeline.js';
import { installFastDigests } from './digests.js';
import type { Pipeline } from './receipts/pipeline.js';
import { loadProducts } from './products/index.js';
import { createEntitlements } from './entitlements/index.js';
import type { Entitlements } from './entitlements/index.js';
import { entitlementsToolRunner } from './entitlements/tool.js';
import { journeysToolRunner } from './journeys/tool.js';
import type { Products } from './products/index.js';
import { createInternalBalanceProvider, createLedger } from './ledger/index.js';
import type { Ledger, PaymentProvider } from './ledger/index.js';
import { createCatalogue } from './catalogue/index.js';
import { createSessions } from './sessions/index.js';
import type { Sessions } from './sessions/index.js';
import { runPreflight } from './sessions/preflight.js';
import type { Catalogue } from './catalogue/index.js';
import { createLinks } from './links/index.js';
import { createRouting } from './routing/index.js';
import { createJourneys } from './journeys/index.js';
import { bindPlaceList } from './journeys/places.js';
import type { Journeys } from './journeys/index.js';
import type { Routing } from './routing/index.js';
import type { Links } from './links/index.js';
import { createSync } from './sync/index.js';
import type { Sync } from './sync/index.js';
import { createAgentRuntime } from './agents/runtime.js';
import { createOpenAiClient } from './agents/model.js';
import { createMcpTools } from './agents/mcp.js';
import { createDeviceProfileLoader, createOrchestrator, DEFAULT_AGENT_IDLE_MS } from './orchestrator/index.js';
import type { TesseraOrchestrator } from './orchestrator/index.js';
import type { DeviceModel } from './orchestrator/profiles.js';
import { createProposals } from './orchestrator/proposals.js';
import { productApprovalsOf, registerTesseraActions } from './orchestrator/actions.js';

export type RuntimeState = 'running' | 'stopping' | 'stopped';

export interface Runtime {
  readonly info: RuntimeInfo;
  readonly logger: Logger;
  readonly store: Store;
  readonly journal: Journal;
  readonly bus: Bus;
  readonly plugins: PluginRegistry;
  readonly memory: Memory;
  /** Encrypted secrets (AES-256-GCM, key file 0600), never logged. */
  readonly secrets: SecretStore;
  /** Cost counters per step and daily quotas per node and user. */
  readonly costs: CostMeter;
  readonly scenarios: ScenarioEngine;
  /** This node's view of the cluster its runs are spread over (issue 18); undefined without `options.cluster`. */
  readonly cluster: Cluster | undefined;
  /** Schedules and bus triggers that start scenarios. */
  readonly automation: Automation;
  /** Seed 002 contracts: executions with their lifecycle, session/execution state, artifacts. */
  readonly executions: ExecutionRegistry;
  readonly stateSurface: StateSurface;
  readonly artifacts: ArtifactRegistry;
  /** Capsules and their signed receipt chains, keys, manifests, permits and consents (seed 004; issue 5). */
  readonly receipts: ReceiptStore;
  /** The device log: every receipt in one append-only RFC 6962 Merkle tree, with signed tree heads (issue 5 §7). */
  readonly deviceLog: DeviceLog;
  /** Product manifests loaded at start (immutable) and the tenants of API tokens. */
  readonly products: Products;
  /** Signed ProductDefs: what travellers can buy, resolved by `id@range` or cid (issue 14 point 1). */
  readonly catalogue: Catalogue;
  /** Entitlement tokens: issue, redemption ledger, checks, redeem/undo, history, expiry timers, issuing switch (issue 14). */
  readonly entitlements: Entitlements;
  /** The cloud (issue 16): enrollment, the sync loop (upload, pull, leases), its status, the redeem guard. */
  readonly sync: Sync;
  /** Product runtime sessions: preflight, payment, issuing, completion (seed 000 §3–§4, §6.1; issue 14 point 2). */
  readonly sessions: Sessions;
  /** Offline routing on the signed city data package (seed 000 "LEM"; issue 15 point 3). */
  readonly routing: Routing;
  /** Journey instances of product sessions, their next steps and the guide's proposals (seed 000 §4.4–4.5; issue 15). */
  readonly journeys: Journeys;
  /** Capability links to capsules (`/c/<token>`, issue 14 §8): read-only, revocable, only token hashes stored. */
  readonly links: Links;
  /** Tessera's agents (issue 17): sessions with the Journey Guide, Trip Planner, Support and Ops agents, their proposals. */
  readonly agents: TesseraOrchestrator;
  /** `POST /v1/run` and consent decisions: intake → policies → permit → receipts → verify → enrich. */
  readonly pipeline: Pipeline;
  /** The device's double-entry ledger: wallets, top-ups, captures and refunds (issue 14 point 4). */
  readonly ledger: Ledger;
  /** How product sessions pay: the device's internal balance (seed 000 §4.3). */
  readonly payments: PaymentProvider;
  /** Rule-based intent recognition and routing to scenarios or handlers (seed 001 §6, seed 002 §1). */
  readonly intents: { recognizer: Recognizer; registry: IntentRegistry; router: IntentRouter };
  /** Named resource locks (`mic`, `tts`, …), one manager shared by the scenario engine and the I/O router. */
  readonly locks: LockManager;
  /** Voice and text I/O: channels, degradation to `inbox.local`, questions and answers (seed 001 §3). */
  readonly io: IoRouter;
  /** The device's own key: signs permits (and later receipts). */
  readonly deviceKey: SigningKey;
  /** Prometheus registry with the standard Tessera metrics (`GET /metrics`; names in README "Metrics"). */
  readonly metrics: TesseraMetrics;
  /** Webhook subscriptions and the signed-callback outbox: producers call `webhooks.notify(event, record)`. */
  readonly webhooks: Webhooks;
  /** `<data>/trust`: publisher keys the operator trusts (`tessera trust add`). */
  readonly userTrust: TrustStore;
  /** Built-in trust roots first, then the user's trust folder. */
  readonly trust: TrustView;
  readonly state: RuntimeState;
  /** True while the store is open and the runtime is not stopping: what `/readyz` reports. */
  readonly ready: boolean;
  /** Owner for resources the shells attach to the runtime's lifetime; disposed before the store closes. */
  readonly resources: DisposableStore;
  /** Marks the runtime as stopping (before any await), disposes attached resources, closes the store last. */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  dataDir: string;
  shell: RuntimeInfo['shell'];
  logger: Logger;
  clock?: () => number;
  /** Trust roots shipped with the app (resources/trust). */
  builtinTrustDir?: string;
  /** Folders whose sub-folders are plugins to load at start (built-in plugins, then `<data>/plugins`). */
  pluginDirs?: string[];
  /** How the sandbox host process is started (Electron passes utilityProcess). */
  sandboxLauncher?: ProcessLauncher;
  /** Folders of scenario YAML files (built-in resources/scenarios, then `<data>/scenarios`). */
  scenarioDirs?: string[];
  /**
   * Scenario signatures (issue 18; scenarios/signing.ts): `enforce` (default) registers only scenarios signed by a
   * trusted key and within their publisher's grants (`grants.json` in the trust folders); `developer` also loads
   * the others, each journaled as `scenario.load_warning`.
   */
  scenarioTrust?: ScenarioTrustMode;
  /**
   * The folders of the scenarios shipped with the app, the only ones the built-in trust keys (`builtinTrustDir`)
   * vouch for; default: the `scenarios` folder beside `builtinTrustDir` (resources/scenarios beside resources/trust).
   */
  builtinScenarioDirs?: string[];
  /** Intent rule files (built-in resources/intents/*.yaml, then `<data>/intents/*.yaml`). */
  intentRuleFiles?: string[];
  /** Scenario engine concurrency limits. */
  scenarioLimits?: Partial<EngineLimits>;
  /**
   * Spread scenario runs over nodes through NATS JetStream (issue 18; `tessera start --nats URL`). Absent: every
   * run runs here and the NATS client is never loaded.
   */
  cluster?: ClusterOptions;
  /**
   * Builds the speech stack from the loaded intent rules (the STT grammar comes from them); default: the speech
   * module's engines as `tessera doctor` finds them. `false` disables voice (the reason says so).
   */
  voice?: false | ((ruleSets: readonly RuleSet[]) => Promise<VoiceSetup>);
  /** Settings for the default speech stack (STT engine choice, Whisper model folder, TTS voice). */
  voiceConfig?: VoiceSettings;
  /** Default I/O matrix (`ctx.io`) for runs that set none: in [voice, text], out [voice, ui]. */
  io?: Partial<IoMatrix>;
  /** Idle time after which a traveller's dialogue session is reset (0: never; default `TESSERA_IDLE_RESET` or 2 min). */
  idleResetMs?: number;
  /** Between successful sync rounds, ms (default `TESSERA_SYNC_INTERVAL_MS`, else 30 s). */
  syncIntervalMs?: number;
  /** Webhook delivery retries, timeouts and concurrency. */
  webhookDelivery?: Partial<DeliveryOptions>;
  /** Folders of `*.product.json` manifests (built-in resources/products, then `<data>/products`). */
  productDirs?: string[];
  /** Folders of signed ProductDef files (built-in resources/catalogue, then `<data>/catalogue`). */
  catalogueDirs?: string[];
  /** Folders of signed journey documents (built-in resources/journeys, then `<data>/journeys`), held by the catalogue. */
  journeyDirs?: string[];
  /** Parent folders of city data packages (built-in resources/city, then `<data>/city`; `TESSERA_CITY_PACKAGES`). */
  cityDirs?: string[];
  /** Where this device sells (`TESSERA_MARKET`, `TESSERA_CITY`): the market and city of sessions that name none. */
  location?: { market?: string; city?: string };
  /** The origin phones reach this device at, for capability link URLs (`--public-url`); the host may set it later. */
  publicOrigin?: string;
  /** Folders of message catalogues, `<language>.json` (default: the app's resources/messages). */
  messageDirs?: string[];
  /**
   * Allowlisted origins whose http.fetch requests connect to a loopback server instead (`TESSERA_HTTP_ORIGIN_MAP`;
   * sandbox/capabilities.ts `HttpOriginMap`). Journaled at start as `sandbox.http_origin_map`.
   */
  httpOriginMap?: HttpOriginMap;
  /** Agents (issue 17): profile folders, the device model, the idle timeout (default `TESSERA_AGENT_IDLE_MS`, else 15 min), the per-caller message and open rates, the sessions a traveller may hold in use. */
  agents?: { profileDirs?: string[]; deviceModel?: () => DeviceModel | null; idleMs?: number; messagesPerMinute?: number; opensPerMinute?: number; maxSessionsInUse?: number; degradedRetryMs?: number };
}

export const DEVICE_KEY_FILE = 'device-key';

function loadOrCreateDeviceKey(dataDir: string): SigningKey {
  const file = join(dataDir, DEVICE_KEY_FILE);
  if (existsSync(file)) return readPrivateKey(file);
  const key = generateKeyPair();
  writePrivateKey(file, key);
  return key;
}

/** A trust view holding exactly one key (the device key, for permits it signed itself). */
function singleKeyView(key: SigningKey, name: string): TrustView {
  return {
    list: () => [],
    revocations: () => [],
    lookup: (keyid) => (keyid === key.keyid ? { state: 'trusted', publicKeyRaw: key.publicKeyRaw, name } : { state: 'unknown' }),
  };
}

export const DATABASE_FILE = 'tessera.db';

export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { dataDir, logger } = options;
  // Before anything hashes: cids and Merkle nodes from here on use the fast implementations (same outputs).
  await installFastDigests();
  // Before anything reads the folder: a second runtime on it must not resume the first one's live runs (issue 13).
  // Held until the store has closed; released by the kernel if this process dies.
  const lock = lockDataDir(dataDir);
  let store: Store;
  try {
    store = openStore({ path: join(dataDir, DATABASE_FILE), logger, backgroundCheckpoint: true });
  } catch (err) {
    lock.release();
    throw err;
  }
  const resources = createDisposableStore();
  try {
    return await composeRuntime(options, store, resources, lock);
  } catch (err) {
    // A start that fails part way (a migration on a full disk, a database from a newer release…) stops what it
    // started — the sandbox host, workers, timers — and closes the store, so the process can exit with the error.
    await resources.dispose().catch(() => undefined);
    store.close();
    lock.release();
    throw err;
  }
}

async function composeRuntime(options: RuntimeOptions, store: Store, resources: DisposableStore, lock: DataDirLock): Promise<Runtime> {
  const { dataDir, logger } = options;
  const journal: Journal = createJournal({ store, ...(options.clock ? { clock: options.clock } : {}) });
  const bus = createBus({ journal, logger: logger.child({ module: 'bus' }) });
  const deviceKey: SigningKey = loadOrCreateDeviceKey(dataDir);
  const userTrust: TrustStore = openTrustStore(join(dataDir, 'trust'), { create: true });
  const trust: TrustView = options.builtinTrustDir && existsSync(options.builtinTrustDir) ? combineTrustStores(openTrustStore(options.builtinTrustDir), userTrust) : userTrust;
  const plugins = createPluginRegistry({
    store,
    bus,
    logger: logger.child({ module: 'plugins' }),
    trust,
    permitTrust: combineTrustStores(singleKeyView(deviceKey, 'this device'), trust),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.sandboxLauncher ? { launcher: options.sandboxLauncher } : {}),
    ...(options.httpOriginMap && options.httpOriginMap.size > 0 ? { httpOriginMap: options.httpOriginMap } : {}),
  });
  // Registered first, so it is disposed after everything the shells attach (LIFO), before the store closes.
  resources.add(plugins);
  const memory = createMemory({ store, bus, ...(options.clock ? { clock: options.clock } : {}) });
  const secrets = createSecretStore({ store, dataDir, bus });
  const costs = createCostMeter({ store, bus, ...(options.clock ? { clock: options.clock } : {}) });
  const locks = createLockManager(options.clock ? { clock: options.clock } : {});
  // I/O: subscribed before any run can start (a run's io.say must find it). Voice is built once the intent rules
  // are loaded (its grammar comes from them); deliveries wait for it. Registered before the engine, so it is
  // disposed after it (LIFO) and a step's last words are still recorded.
  let provideVoice: (setup: Promise<VoiceSetup>) => void = () => undefined;
  const voiceSetup = new Promise<VoiceSetup>((resolve) => (provideVoice = resolve));
  // Set once the journeys module is composed (issue 15): tool-journeys answers "no journey yet" until then.
  const late: { intents?: IntentRouter; ruleSets?: readonly RuleSet[]; entitlements?: Entitlements; journeys?: Journeys; agents?: TesseraOrchestrator } = {};
  // What the device says, per language: the router's own answers and scenarios' io.say / io.ask `message`s.
  const messages = loadMessageCatalogue(options.messageDirs);
  const io = createIoRouter({
    messages,
    store,
    bus,
    logger: logger.child({ module: 'io' }),
    locks,
    voice: voiceSetup,
    intents: () => late.intents,
    ruleSets: () => late.ruleSets ?? [],
    // What no intent understands goes to the traveller's journey guide agent (issue 17 point 8), once agents exist.
    converse: async (text, ctx) => (ctx.session && late.agents ? late.agents.converse(ctx.session, text, { language: ctx.language }) : null),
    runContext: (runId) => scenarios.status(runId).ctx,
    runPriority: (runId) => scenarios.status(runId).priority,
    ...(options.io ? { defaults: options.io } : {}),
    ...(options.idleResetMs !== undefined ? { idleResetMs: options.idleResetMs } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  resources.add(io);
  io.start();
  const scenarios = createScenarioEngine({
    store,
    locks,
    bus,
    journal,
    logger: logger.child({ module: 'scenarios' }),
    memory,
    expressions: scenarioExpressions,
    // `tool-entitlements` and `tool-journeys` are built in (their modules, created below); other tools are sandbox plugins.
    tools: journeysToolRunner(entitlementsToolRunner(pluginToolRunner(plugins, deviceKey), () => late.entitlements), () => late.journeys),
    messages,
    secrets,
    costs,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.scenarioLimits ? { limits: options.scenarioLimits } : {}),
  });
  // Disposed before the plugin registry it calls into; unfinished runs stay resumable.
  resources.add(scenarios);
  const stateSurface = createStateSurface({ store, bus, ...(options.clock ? { clock: options.clock } : {}) });
  const artifacts = createArtifactRegistry({ store, bus, ...(options.clock ? { clock: options.clock } : {}) });
  const receipts = createReceiptStore({ store, deviceKey });
  const deviceLog = createDeviceLog({ store, deviceKey, ...(options.clock ? { clock: options.clock } : {}) });
  // The catalogue verifies its defs against the publisher trust; a bad file is journaled, never fatal.
  const catalogue = createCatalogue({ store, bus, logger: logger.child({ module: 'catalogue' }), trust, dirs: options.catalogueDirs ?? [], journeyDirs: options.journeyDirs ?? [], ...(options.clock ? { clock: options.clock } : {}) });
  // Routing verifies its city package against the same trust; a missing or bad package degrades it (journaled
  // `lem.degraded`), never fails the start.
  const routing = createRouting({ dirs: options.cityDirs ?? [], trust, bus, logger: logger.child({ module: 'routing' }), ...(options.clock ? { clock: options.clock } : {}) });
  // Inside each receipt's write transaction: a receipt and its log leaf commit or roll back together.
  // The store's receipts are new by construction (each follows the chain's head): no lookup before the append.
  const links = createLinks({ store, bus, ...(options.clock ? { clock: options.clock } : {}), ...(options.publicOrigin ? { publicOrigin: options.publicOrigin } : {}) });
  resources.add(receipts.onReceipts((written) => void deviceLog.appendNew(written.map((r) => r.id))));
  const ledger = createLedger({ store, bus, ...(options.clock ? { clock: options.clock } : {}) });
  const payments = createInternalBalanceProvider(ledger);
  // Issuers: the device key plus `<data>/issuers` (a trust folder with its revocations). Disposed (its expiry
  // timers) with the resources, before the store closes.
  const issuers = openTrustStore(join(dataDir, 'issuers'), { create: true });
  // The cloud (issue 16): composed before the entitlements it guards; it applies pulled revocations through them
  // (late-bound). Not enrolled, it does nothing and its guard lets every redemption through unchanged. Disposed
  // after the entitlements (LIFO): its timer stops and a request in flight is aborted.
  // A product's title for staff, by the cid tokens and leases name: cloud-issued passes carry no title of their own.
  const productTitle = (productCid: string): string | undefined => {
    const titles = catalogue.list({ status: 'all' }).find((p) => p.cid === productCid)?.profiles.ui.title;
    return titles ? (titles['en'] ?? Object.values(titles)[0]) : undefined;
  };
  const sync = createSync({
    productTitle,
    store,
    bus,
    logger: logger.child({ module: 'sync' }),
    deviceKey,
    deviceLog,
    receipts,
    issuers,
    entitlements: () => late.entitlements,
    intervalMs: options.syncIntervalMs ?? syncIntervalFromEnv(),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  resources.add(sync);
  const entitlements = createEntitlements({
    store,
    bus,
    receipts,
    deviceKey,
    issuers,
    guard: sync.guard,
    productTitle,
    logger: logger.child({ module: 'entitlements' }),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  resources.add(entitlements);
  // Sessions drive the catalogue, the preflight plugins, the payment provider and the entitlements through their
  // interfaces. Disposed before them (LIFO): it stops listening to entitlement changes first.
  const sessions = createSessions({
    store,
    bus,
    receipts,
    logger: logger.child({ module: 'sessions' }),
    catalogue,
    preflight: (request) => runPreflight({ plugins, ...request }),
    payments,
    entitlements,
    ...(options.location ? { location: options.location } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    journeyOf: (id) => late.journeys?.latestOf(id) ?? null,
  });
  resources.add(sessions);
  late.entitlements = entitlements;
  // Journeys read sessions, entitlements, the catalogue's journey documents and routing through their interfaces,
  // and hear redemptions on the bus. Disposed before sessions (LIFO): it stops listening first.
  const journeys = createJourneys({
    store,
    bus,
    logger: logger.child({ module: 'journeys' }),
    catalogue,
    sessions,
    entitlements,
    routing,
    messages,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  resources.add(journeys);
  late.journeys = journeys;
  const executions = createExecutionRegistry({ store, bus, state_surface: stateSurface, artifacts, ...(options.clock ? { clock: options.clock } : {}) });
  resources.add(followScenarioRuns({ bus, executions }));
  const automation = createAutomation({ store, bus, journal, engine: scenarios, expressions: scenarioExpressions, logger: logger.child({ module: 'automation' }), ...(options.clock ? { clock: options.clock } : {}) });
  resources.add(automation);
  const metrics = createTesseraMetrics();
  // Agents (issue 17): after the modules their tools read (journeys, sessions, entitlements, catalogue, plugins,
  // metrics). The proposal policy reads the same profiles' `meta.proposes`. Disposed before those modules (LIFO):
  // the agent runtime stops taking turns, finishes running ones and syncs every session while they still answer.
  const agentProfiles = createDeviceProfileLoader({ dataDir, ...(options.agents?.profileDirs ? { dirs: options.agents.profileDirs } : {}), ...(options.agents?.deviceModel ? { deviceModel: options.agents.deviceModel } : {}) });
  const proposals = createProposals({
    store,
    receipts,
    device: deviceKey.keyid,
    plugins,
    bus,
    logger: logger.child({ module: 'proposals' }),
    ...(options.clock ? { clock: options.clock } : {}),
    profileOf: (type) => {
      try {
        return agentProfiles.info(type);
      } catch {
        return undefined;
      }
    },
    // A product may ask for more approval of an agent's action (its `agent_approvals`), never less.
    productOf: productApprovalsOf({ catalogue, sessions }),
  });
  registerTesseraActions(proposals, { catalogue, sessions, journeys, entitlements });
  const agents = createOrchestrator({
    store,
    dataDir,
    bus,
    logger: logger.child({ module: 'orchestrator' }),
    secrets,
    proposals,
    profiles: agentProfiles,
    createAgentRuntime,
    model: createOpenAiClient(),
    mcpTools: (inProcessServers) => createMcpTools({ inProcessServers, logger: logger.child({ module: 'mcp' }) }),
    tools: { journeys, catalogue, entitlements, sessions, plugins, deviceKey, metrics },
    activeJourney: (user) => journeys.active(user),
    idleMs: options.agents?.idleMs ?? agentIdleFromEnv() ?? DEFAULT_AGENT_IDLE_MS,
    ...(options.agents?.messagesPerMinute !== undefined ? { messagesPerMinute: options.agents.messagesPerMinute } : {}),
    ...(options.agents?.opensPerMinute !== undefined ? { opensPerMinute: options.agents.opensPerMinute } : {}),
    ...(options.agents?.maxSessionsInUse !== undefined ? { maxSessionsInUse: options.agents.maxSessionsInUse } : {}),
    ...(options.agents?.degradedRetryMs !== undefined ? { degradedRetryMs: options.agents.degradedRetryMs } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  resources.add({ dispose: () => agents.shutdown() });
  late.agents = agents;
  const webhooks = createWebhooks({ store, bus, logger, deviceKey, metrics, ...(options.clock ? { clock: options.clock } : {}), ...(options.webhookDelivery ? { delivery: options.webhookDelivery } : {}) });
  // Disposed before the store closes: stops the worker and aborts callbacks in flight (they stay pending).
  resources.add(webhooks);
  let state: RuntimeState = 'running';
  const info: RuntimeInfo = {
    name: PRODUCT_NAME,
    version: VERSION,
    shell: options.shell,
    data_dir: dataDir,
    started_at: new Date((options.clock ?? Date.now)()).toISOString(),
  };
  bus.publish('runtime.started', { version: VERSION, shell: options.shell, pid: process.pid });
  // Plugins' requests going somewhere other than where their manifests say is worth a line in the journal and the log.
  if (options.httpOriginMap && options.httpOriginMap.size > 0) {
    const entries = [...options.httpOriginMap].map(([from, to]) => ({ from, to }));
    bus.publish('sandbox.http_origin_map', { entries });
    logger.warn('plugins\' http.fetch requests to some allowlisted origins connect to loopback servers instead (TESSERA_HTTP_ORIGIN_MAP)', { entries });
  }
  // Plugins found at start are loaded before scenarios resume (their tool steps need them); a bad one is
  // journaled, never fatal.
  const loads: Array<Promise<unknown>> = [];
  for (const root of options.pluginDirs ?? []) {
    if (!existsSync(root)) continue;
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !existsSync(join(root, entry.name, 'plugin.json'))) continue;
      loads.push(plugins.load(join(root, entry.name)).catch((err: unknown) => logger.warn('a plugin failed to load', { dir: join(root, entry.name), error: err })));
    }
  }
  await Promise.all(loads);
  // Products resolve their plugin ranges against what just loaded; fixed for the life of the process.
  const products = loadProducts({ dirs: options.productDirs ?? [], plugins: plugins.list(), dataDir, bus, logger: logger.child({ module: 'products' }) });
  // Runs sign their permit and receipts on a worker thread (same signatures), not on the thread serving HTTP.
  const signer = createWorkerSigner(deviceKey);
  resources.add({ dispose: () => signer.close() });
  const pipeline = createPipeline({
    products,
    plugins,
    receipts,
    journal,
    bus,
    deviceKey,
    signer,
    logger: logger.child({ module: 'pipeline' }),
    metrics,
    webhooks,
    ready: () => state === 'running',
    ...(options.clock ? { clock: options.clock } : {}),
  });

  // Scenarios: load the folders (a bad, unsigned or over-permissioned file is journaled, never fatal), resume what
  // a crash interrupted, then let schedules and triggers fire.
  // The built-in keys (the public development key) vouch only for the built-in scenarios folder (review 18 item 13a).
  const builtin = options.builtinTrustDir && existsSync(options.builtinTrustDir) ? builtinScenarioKeys(openTrustStore(options.builtinTrustDir), userTrust, options.builtinScenarioDirs ?? [join(dirname(options.builtinTrustDir), 'scenarios')]) : undefined;
  const scenarioTrust = { mode: options.scenarioTrust ?? 'enforce', trust, grants: readGrants([...(options.builtinTrustDir ? [options.builtinTrustDir] : []), userTrust.dir]), ...(builtin ? { builtin } : {}) } as const;
  for (const dir of options.scenarioDirs ?? []) {
    if (!existsSync(dir)) continue;
    const loaded = loadScenarioDir(dir);
    const errors: Array<{ file: string; message: string; code: string }> = loaded.errors.map((e) => ({ ...e, code: 'SCENARIO_INVALID' }));
    for (const s of loaded.scenarios) {
      const admitted = admitScenario(s, s.source ?? dir, scenarioTrust);
      if (!admitted.loaded) errors.push({ file: s.source ?? dir, message: admitted.error.message, code: admitted.error.code });
      else {
        scenarios.register(admitted.scenario);
        if (admitted.warning) {
          logger.warn('a scenario file was loaded unverified (developer mode)', { file: s.source, ...admitted.warning });
          bus.publish('scenario.load_warning', { file: s.source ?? dir, scenario_id: s.id, ...admitted.warning });
        }
      }
    }
    for (const e of errors) {
      logger.warn('a scenario file was not loaded', e);
      bus.publish('scenario.load_failed', e);
    }
  }
  scenarios.resume();
  // Runs spread over nodes (issue 18): attached before schedules and triggers can start runs, so each one's row and
  // outbox row commit together. Registered after the engine, so it is disposed first (LIFO): it stops pulling and
  // leaves its runs unacked before the engine stops them.
  let cluster: Cluster | undefined;
  if (options.cluster) {
    const { createCluster } = await import('./cluster/index.js');
    cluster = createCluster(options.cluster, { store, engine: scenarios, bus, logger: logger.child({ module: 'cluster' }), ...(options.clock ? { clock: options.clock } : {}) });
    resources.add(cluster);
  }
  // Payments and refunds a stop interrupted are finished (or found not to have happened) before new requests.
  await sessions.recover();
  // Stops whose entitlement was redeemed while no journey heard of it (a crash between the two) are completed.
  journeys.recover();
  automation.start();
  webhooks.start();
  sync.start();
  // Approved proposals a crash interrupted run (once), then agent sessions a crash left mid-turn are finished.
  await agents.start();

  const ruleSets: RuleSet[] = [];
  for (const file of options.intentRuleFiles ?? []) {
    if (!existsSync(file)) continue;
    try {
      ruleSets.push(loadRuleSet(file));
    } catch (err) {
      logger.warn('an intent rule file was not loaded', { file, error: err });
      bus.publish('intent.load_failed', { file, error: (err as Error).message });
    }
  }
  // Where the intents route is checked now, not when a traveller says it: journaled, and the test of the shipped
  // rules fails on any (test/unit/intent-targets.test.ts).
  for (const problem of checkIntentTargets(ruleSets, (id) => scenarios.scenario(id), { ...DIALOGUE_CONTEXT_SAMPLE })) {
    logger.warn('an intent routes where it cannot run', { ...problem });
    bus.publish('intent.target_invalid', problem);
  }
  const recognizer = createRecognizer(ruleSets);
  const intentRegistry = createIntentRegistry();
  registerRuleSetIntents(intentRegistry, ruleSets);
  const intents = { recognizer, registry: intentRegistry, router: createIntentRouter({ registry: intentRegistry, recognizer, runScenario: (id, ctx) => scenarios.run(id, ctx), executions }) };
  late.intents = intents.router;
  late.ruleSets = ruleSets;
  provideVoice(options.voice === false ? Promise.resolve({ reason: 'voice is turned off in this runtime\'s configuration' }) : (options.voice ?? ((rules) => createDefaultVoice(rules, { dataDir, logger: logger.child({ module: 'voice' }), ...(options.voiceConfig ? { config: options.voiceConfig } : {}) })))(ruleSets));

  // The intents' `{place}` slot follows the journeys in progress: the recognizer at once, the speech grammar
  // recompiled. Disposed first (LIFO), waiting for a compilation in flight.
  resources.add(bindPlaceList({ source: journeys, ruleSets, refreshGrammar: () => io.refreshGrammar(), logger: logger.child({ module: 'places' }) }));

  let closing: Promise<void> | undefined;
  return {
    info,
    logger,
    store,
    journal,
    bus,
    plugins,
    memory,
    secrets,
    costs,
    scenarios,
    cluster,
    automation,
    intents,
    locks,
    io,
    executions,
    stateSurface,
    artifacts,
    deviceKey,
    metrics,
    webhooks,
    receipts,
    deviceLog,
    links,
    agents,
    products,
    catalogue,
    routing,
    journeys,
    entitlements,
    sync,
    sessions,
    pipeline,
    ledger,
    payments,
    userTrust,
    trust,
    resources,
    get state() {
      return state;
    },
    get ready() {
      return state === 'running' && store.isOpen;
    },
    close() {
      closing ??= (async () => {
        // 1. Refuse new work before the first await: readyz turns 503 at once.
        state = 'stopping';
        // 2. Record the stop while the journal still accepts writes.
        try {
          bus.publish('runtime.stopping', { reason: 'shutdown' });
        } catch (err) {
          logger.warn('could not journal runtime.stopping', { error: err });
        }
        // 3. Dispose what the shells attached (servers, sandbox host, timers), last-in first-out.
        try {
          await resources.dispose();
        } finally {
          // 4. Close SQLite last, after everything that could still write to it.
          try {
            store.close();
          } finally {
            // 5. Only then free the data folder for another runtime.
            lock.release();
            state = 'stopped';
          }
        }
      })();
      return closing;
    },
  };
}

/** `TESSERA_AGENT_IDLE_MS`: agent sessions idle this long are unloaded (0: never); else the default (15 min). */
function agentIdleFromEnv(): number | undefined {
  const text = process.env['TESSERA_AGENT_IDLE_MS'];
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new TesseraError('CONFIG_INVALID', `TESSERA_AGENT_IDLE_MS must be a whole number of milliseconds (0: never unload), not ${JSON.stringify(text)}.`);
  return n;
}

/** `TESSERA_SYNC_INTERVAL_MS`: a positive integer, else the default (30 s). */
function syncIntervalFromEnv(): number | undefined {
  const text = process.env['TESSERA_SYNC_INTERVAL_MS'];
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 100) throw new TesseraError('CONFIG_INVALID', `TESSERA_SYNC_INTERVAL_MS must be an integer of at least 100 (ms), not ${JSON.stringify(text)}.`);
  return n;
}
