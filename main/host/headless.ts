/**
 * The runtime with its HTTP/WS host: what `tessera start --headless` runs, and what the Electron main
 * process runs behind its window. Owns the order of start-up and shutdown.
 */
import type { FastifyInstance } from 'fastify';
import { TesseraError } from '../common/errors.js';
import { createRuntime } from '../runtime/index.js';
import type { Runtime, RuntimeOptions } from '../runtime/index.js';
import { join } from 'node:path';
import { BUILTIN_CATALOGUE_DIR, BUILTIN_INTENT_FILES, BUILTIN_JOURNEYS_DIR, BUILTIN_PLUGINS_DIR, BUILTIN_PRODUCTS_DIR, BUILTIN_SCENARIOS_DIR, BUILTIN_TRUST_DIR } from './paths.js';
import type { Logger } from '../runtime/log/index.js';
import { cityPackageDirs, ensureDataDir, loadOrCreateToken, voiceSettingsFromEnv } from './config.js';
import { createHttpServer } from './http/server.js';
import { createCredentials } from './credentials.js';
import type { Credentials } from './credentials.js';
import type { Role } from '../common/roles.js';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parsePublicOrigin } from '../runtime/links/index.js';
import { clusterOptionsFromEnv } from '../runtime/cluster/model.js';
import type { ClusterOptions } from '../runtime/cluster/model.js';
import { HTTP_ORIGIN_MAP_ENV, parseHttpOriginMap } from '../../sandbox/capabilities.js';

export interface HostOptions {
  dataDir: string;
  host: string;
  port: number;
  logger: Logger;
  shell: 'electron' | 'headless';
  env?: NodeJS.ProcessEnv;
  rendererDir?: string;
  /** Trust roots shipped with the app; default resources/trust. */
  builtinTrustDir?: string;
  /** Folders of plugin folders loaded at start; default the built first-party plugins and `<data>/plugins`. */
  pluginDirs?: string[];
  /** Folders of scenario files; default resources/scenarios and `<data>/scenarios`. */
  scenarioDirs?: string[];
  sandboxLauncher?: RuntimeOptions['sandboxLauncher'];
  /** Folders of signed ProductDef files; default resources/catalogue and `<data>/catalogue`. */
  catalogueDirs?: string[];
  /** Folders of signed journey documents; default resources/journeys and `<data>/journeys`. */
  journeyDirs?: string[];
  /** Parent folders of city data packages; default `TESSERA_CITY_PACKAGES`, else resources/city and `<data>/city`. */
  cityDirs?: string[];
  /**
   * The role whose token the UI's URL carries: `traveller` for a public kiosk (`--kiosk`), which then shows only
   * what travellers may use until an operator unlocks it. Default: the device token (every role).
   */
  uiRole?: Role;
  /**
   * The origin phones on the kiosk's network reach this device at (`--public-url`, e.g. `http://192.168.1.20:7420`
   * or `https://kiosk-7.example`): capability link URLs and their QR codes use it. Default: `$TESSERA_PUBLIC_URL`, else {@link publicOriginFor}.
   */
  publicUrl?: string;
  /** Scenario signatures: `developer` loads unsigned ones with a warning. Default: `TESSERA_DEVELOPER=1` → developer, else enforce. */
  scenarioTrust?: RuntimeOptions['scenarioTrust'];
}

/**
 * The origin capability links carry (README "Capability links"): `publicUrl` when given; else the `--host` address
 * when it is one other machines can reach (a LAN address or name); for a wildcard host (`0.0.0.0`, `::`) the
 * first non-internal IPv4 address of this machine (IPv6 when it has none); else loopback, which only this machine
 * opens — a phone cannot, and the start-up message says so.
 */
export function publicOriginFor(options: { publicUrl?: string; host: string; port: number; interfaces?: ReturnType<typeof networkInterfaces> }): { origin: string; reachable: boolean } {
  if (options.publicUrl) return { origin: parsePublicOrigin(options.publicUrl), reachable: true };
  const literal = (address: string): string => (address.includes(':') ? `[${address}]` : address);
  const host = options.host.toLowerCase();
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
  if (host === '0.0.0.0' || host === '::') {
    const all = Object.values(options.interfaces ?? networkInterfaces()).flat().filter((a): a is NonNullable<typeof a> => a !== undefined && !a.internal);
    const pick = all.find((a) => a.family === 'IPv4') ?? all.find((a) => a.family === 'IPv6' && !a.address.toLowerCase().startsWith('fe80:'));
    if (pick) return { origin: `http://${literal(pick.address)}:${options.port}`, reachable: true };
    return { origin: `http://127.0.0.1:${options.port}`, reachable: false };
  }
  return { origin: `http://${literal(options.host)}:${options.port}`, reachable: !loopback };
}

export interface RunningHost {
  runtime: Runtime;
  server: FastifyInstance;
  /** Origin the server listens on, e.g. `http://127.0.0.1:7420`. */
  origin: string;
  port: number;
  token: string;
  tokenSource: 'env' | 'file' | 'created';
  /** The credentials the server accepts: role tokens, the operator unlock. */
  credentials: Credentials;
  /** The origin capability links carry ({@link publicOriginFor}); `publicOriginReachable` false: loopback only. */
  publicOrigin: string;
  publicOriginReachable: boolean;
  /** The URL to open the UI with, carrying the token of `uiRole` (or the device's) in the fragment (never sent to the server). */
  uiUrl: string;
  close(): Promise<void>;
}

export async function startHost(options: HostOptions): Promise<RunningHost> {
  const { dataDir, logger } = options;
  const publicUrl = options.publicUrl ?? ((options.env ?? process.env)['TESSERA_PUBLIC_URL'] || undefined);
  // A bad public URL or origin map stops the start before anything opens.
  if (publicUrl !== undefined) parsePublicOrigin(publicUrl);
  const httpOriginMap = parseHttpOriginMap((options.env ?? process.env)[HTTP_ORIGIN_MAP_ENV]);
  ensureDataDir(dataDir);
  const { token, source } = loadOrCreateToken(dataDir, options.env ?? process.env, logger);
  const runtime = await createRuntime({
    dataDir,
    shell: options.shell,
    logger,
    builtinTrustDir: options.builtinTrustDir ?? BUILTIN_TRUST_DIR,
    pluginDirs: options.pluginDirs ?? [BUILTIN_PLUGINS_DIR, join(dataDir, 'plugins')],
    scenarioDirs: options.scenarioDirs ?? [BUILTIN_SCENARIOS_DIR, join(dataDir, 'scenarios')],
    scenarioTrust: options.scenarioTrust ?? ((options.env ?? process.env)['TESSERA_DEVELOPER'] === '1' ? 'developer' : 'enforce'),
    productDirs: [BUILTIN_PRODUCTS_DIR, join(dataDir, 'products')],
    catalogueDirs: options.catalogueDirs ?? [BUILTIN_CATALOGUE_DIR, join(dataDir, 'catalogue')],
    journeyDirs: options.journeyDirs ?? [BUILTIN_JOURNEYS_DIR, join(dataDir, 'journeys')],
    cityDirs: options.cityDirs ?? cityPackageDirs(options.env ?? process.env, dataDir),
    ...locationFromEnv(options.env ?? process.env),
    ...clusterFromEnv(options.env ?? process.env),
    ...(httpOriginMap.size > 0 ? { httpOriginMap } : {}),
    voiceConfig: voiceSettingsFromEnv(options.env ?? process.env),
    intentRuleFiles: [...BUILTIN_INTENT_FILES, ...['en', 'ru', 'uk'].map((l) => join(dataDir, 'intents', `${l}.yaml`))],
    ...(options.sandboxLauncher ? { sandboxLauncher: options.sandboxLauncher } : {}),
  });
  let server: FastifyInstance;
  let credentials: Credentials;
  try {
    credentials = createCredentials({ dataDir, deviceToken: token, tenantForToken: (t) => runtime.products.tenantForToken(t) });
    // A name given to --host is one the server answers to; IP addresses are checked against the connection itself.
    const named = isIP(options.host) === 0 && options.host !== 'localhost' ? [options.host] : [];
    // The public URL's name is one phones send as Host (an IP literal is checked against the connection).
    if (publicUrl !== undefined) {
      const name = new URL(parsePublicOrigin(publicUrl)).hostname.replace(/^\[|\]$/g, '');
      if (isIP(name) === 0 && name !== 'localhost') named.push(name);
    }
    server = await createHttpServer({ runtime, token, credentials, allowedHosts: named, logger: logger.child({ module: 'http' }), ...(options.rendererDir ? { rendererDir: options.rendererDir } : {}) });
    // Closing the server waits for open requests to finish (fastify onClose), then the store closes.
    runtime.resources.add({ dispose: () => server.close() });
    await server.listen({ host: options.host, port: options.port });
  } catch (err) {
    await runtime.close().catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new TesseraError('PORT_IN_USE', `Port ${options.port} on ${options.host} is in use. Stop the other process or pass --port (0 picks a free one).`);
    }
    if ((err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL' || (err as NodeJS.ErrnoException).code === 'ENOTFOUND') {
      throw new TesseraError('CONFIG_INVALID', `Cannot listen on host "${options.host}": ${(err as Error).message}`);
    }
    throw err;
  }
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const origin = `http://${hostForUrl}:${port}`;
  const link = publicOriginFor({ host: options.host, port, ...(publicUrl !== undefined ? { publicUrl } : {}) });
  runtime.links.setPublicOrigin(link.origin);
  runtime.bus.publish('host.listening', { origin, shell: options.shell });
  return {
    runtime,
    server,
    origin,
    port,
    token,
    tokenSource: source,
    credentials,
    publicOrigin: link.origin,
    publicOriginReachable: link.reachable,
    uiUrl: `${origin}/#token=${encodeURIComponent(options.uiRole ? credentials.roleToken(options.uiRole) : token)}`,
    close: () => runtime.close(),
  };
}

/** The cluster of `--nats/--node/--attr` or TESSERA_NATS_URL & co. (issue 18); none: every run runs here. */
function clusterFromEnv(env: NodeJS.ProcessEnv): { cluster?: ClusterOptions } {
  const cluster = clusterOptionsFromEnv(env);
  return cluster ? { cluster } : {};
}

/** Where this device sells (`TESSERA_MARKET`, `TESSERA_CITY`): the market and city of product sessions that name none. */
function locationFromEnv(env: NodeJS.ProcessEnv): { location?: { market?: string; city?: string } } {
  const market = env['TESSERA_MARKET']?.trim();
  const city = env['TESSERA_CITY']?.trim();
  if (!market && !city) return {};
  return { location: { ...(market ? { market } : {}), ...(city ? { city } : {}) } };
}
