/**
 * A trial run: one plugin, one input, in a throwaway runtime (issue 13 point 2). What `tessera plugin test` and
 * Plugin Studio's Run (`POST /api/plugins/test`, IPC `testPlugin`) both do, through this one function.
 *
 * The throwaway has its own SQLite database (in memory), journal, bus, device key and plugin registry with its own
 * sandbox host process, all disposed when the run ends: the plugin's `kv` writes, `events.emit` and `io.say`
 * land there and are gone afterwards, so a trial never changes the live store, journal or speaker. Effect
 * capabilities get a permit signed by the throwaway device key and bound to this input, trusted by the throwaway
 * registry alone (a permit from a trial is worth nothing to the live runtime). `http.fetch` does reach the
 * origins the plugin's manifest allowlists (through the operator's origin map, as live runs do): that is the
 * effect under test.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cidOf } from '../../common/cid.js';
import { TesseraError } from '../../common/errors.js';
import type { PluginRunResult } from '../../common/api.js';
import type { HttpOriginMap } from '../../../sandbox/capabilities.js';
import type { ProcessLauncher } from '../../../sandbox/client.js';
import { EFFECT_CAPABILITIES, MANIFEST_FILE, SIGNATURE_FILE } from '../../../sandbox/manifest.js';
import type { RuntimeLimits } from '../../../sandbox/manifest.js';
import type { VerifiedPlugin } from '../../../sandbox/package.js';
import { issuePermit } from '../../../sandbox/permits.js';
import { createBus } from '../bus/index.js';
import { createJournal } from '../journal/index.js';
import { generateKeyPair } from '../keys/index.js';
import type { SigningKey } from '../keys/index.js';
import type { Logger } from '../log/index.js';
import { openStore } from '../store/index.js';
import type { TrustView } from '../trust/index.js';
import { createPluginRegistry } from './index.js';

/** What a trial runs: a plugin folder on this device, or the three files of one sent over the API. */
export type TrialSource =
  | { dir: string; /** The folder must still hold this version (the cid of a loaded plugin Studio shows). */ expectCid?: string }
  | { package: { manifest: Record<string, unknown>; code: string; signature: Record<string, unknown> } };

export interface TrialOptions {
  /** Publisher keys the plugin must be signed by. */
  trust: TrustView;
  logger: Logger;
  /** Logical time given to the plugin, epoch ms or ISO-8601; default the wall clock. */
  now?: number | string;
  /** How the throwaway sandbox host starts (the live runtime's launcher, e.g. Electron's utilityProcess). */
  launcher?: ProcessLauncher;
  limits?: RuntimeLimits;
  /** The operator's loopback redirection of allowlisted origins (sandbox/capabilities.ts `HttpOriginMap`). */
  httpOriginMap?: HttpOriginMap;
}

export interface TrialResult {
  plugin: VerifiedPlugin;
  result: PluginRunResult;
}

/** How long a trial's permit lasts: one run, with room for a slow sandbox start. */
const TRIAL_PERMIT_MS = 5 * 60_000;

/**
 * Verifies `source` against `options.trust`, runs it once on `input` in a throwaway runtime and disposes it.
 * Rejects with the verification error (PLUGIN_*, KEY_*, SIGNATURE_INVALID), VALIDATION_FAILED for an input outside
 * the plugin's input_schema or a bad `now`, PLUGIN_NOT_FOUND when `expectCid` is no longer what the folder holds,
 * or the plugin's own failure (PLUGIN_FAILED, PLUGIN_TIMEOUT…).
 */
export async function runPluginTrial(source: TrialSource, input: unknown, options: TrialOptions): Promise<TrialResult> {
  const now = options.now === undefined ? Date.now() : typeof options.now === 'number' ? options.now : Date.parse(options.now);
  if (!Number.isFinite(now)) throw new TesseraError('VALIDATION_FAILED', `now must be an ISO-8601 time or epoch milliseconds, got ${JSON.stringify(options.now)}`);
  // Owned here, disposed in reverse order of creation whatever fails: scratch folder, store, registry.
  const scratch = 'package' in source ? mkdtempSync(join(tmpdir(), 'tessera-trial-')) : undefined;
  const store = openStore({ path: ':memory:', logger: options.logger });
  let registry: ReturnType<typeof createPluginRegistry> | undefined;
  try {
    const dir = scratch === undefined ? (source as { dir: string }).dir : writePackage(scratch, (source as Extract<TrialSource, { package: unknown }>).package);
    const journal = createJournal({ store });
    const bus = createBus({ journal, logger: options.logger });
    const deviceKey = generateKeyPair();
    registry = createPluginRegistry({
      store,
      bus,
      logger: options.logger,
      trust: options.trust,
      permitTrust: onlyKey(deviceKey),
      ...(options.launcher ? { launcher: options.launcher } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.httpOriginMap ? { httpOriginMap: options.httpOriginMap } : {}),
    });
    const loaded = await registry.load(dir);
    const plugin = registry.find(loaded.key)!;
    const expectCid = 'dir' in source ? source.expectCid : undefined;
    if (expectCid !== undefined && plugin.cid !== expectCid) {
      throw new TesseraError('PLUGIN_NOT_FOUND', `${dir} no longer holds the plugin version that was loaded from it (${expectCid}); it now holds ${plugin.manifest.name}@${plugin.manifest.version} (${plugin.cid}). Load the folder again to try what it holds now.`);
    }
    const effects = plugin.grants.map((g) => g.name).filter((c) => EFFECT_CAPABILITIES.has(c));
    const permit = effects.length > 0 ? issuePermit(deviceKey, { input_cid: cidOf(input ?? null), scope: effects, expires_at: new Date(now + TRIAL_PERMIT_MS).toISOString(), nonce: randomUUID() }) : undefined;
    const result = await registry.run(loaded.key, input, { now, ...(permit ? { permit } : {}) });
    return { plugin, result };
  } finally {
    await registry?.dispose().catch((err: unknown) => options.logger.warn('a trial sandbox did not stop cleanly', { error: err }));
    store.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Writes an uploaded package into `scratch` (made by mkdtemp: private to this user, mode 0700) as a plugin folder,
 * refusing an entry name that would leave it.
 */
function writePackage(scratch: string, pkg: Extract<TrialSource, { package: unknown }>['package']): string {
  const entry = typeof pkg.manifest['entry'] === 'string' ? pkg.manifest['entry'] : '';
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.m?js$/.test(entry)) throw new TesseraError('PLUGIN_MANIFEST_INVALID', 'The uploaded manifest needs an "entry" file name like plugin.js.');
  writeFileSync(join(scratch, MANIFEST_FILE), JSON.stringify(pkg.manifest));
  writeFileSync(join(scratch, entry), pkg.code);
  writeFileSync(join(scratch, SIGNATURE_FILE), JSON.stringify(pkg.signature));
  return scratch;
}

/** A trust view holding exactly one key: the throwaway device key that signs the trial's permit. */
function onlyKey(key: SigningKey): TrustView {
  return {
    list: () => [],
    revocations: () => [],
    lookup: (keyid) => (keyid === key.keyid ? { state: 'trusted', publicKeyRaw: key.publicKeyRaw, name: 'trial device key' } : { state: 'unknown' }),
  };
}
