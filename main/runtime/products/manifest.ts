/**
 * Product manifests (seed 004 §1, §8): `NAME.product.json` files validated against
 * resources/schema/product.schema.json, their plugin references (`policy-existence@^1`) resolved against the
 * loaded plugins and pinned by a lock file of cids (sandbox/lock.ts), and their approver keys parsed.
 *
 * A product is identified by the cid of its manifest (RFC 8785 canonical bytes of the parsed file). It is
 * immutable once loaded: there is no API to change one; a changed file is a new product at the next start.
 */
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { PluginInfo } from '../../common/api.js';
import { cidOf } from '../../common/cid.js';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import { checkLock, readLock, resolveLock } from '../../../sandbox/lock.js';
import type { LockCandidate, PluginLock } from '../../../sandbox/lock.js';
import { readPublicKey } from '../keys/index.js';
import productSchema from '../../../resources/schema/product.schema.json' with { type: 'json' };
import { describeSchemaError as describe } from '../schema-errors.js';

/** The manifest as written (validated against the schema). */
export interface ProductManifest {
  name: string;
  version: string;
  description?: string;
  acts: string[];
  pipeline: ProductStep[];
  proof_level: 'sirp' | 'bundle';
  billing?: string;
  routing?: { http?: { base_path?: string } };
  security: { auth: 'bearer'; aud: string; kofn?: null | { k: number; approvers: Array<{ name: string; public_key: string }> } };
  [key: string]: unknown;
}

export interface ProductStep {
  step: number;
  act: string;
  intake: string;
  policies: Array<string | { use: string; input?: unknown }>;
  permit: { use?: string; scope: string[]; ttl_seconds: number };
  effects?: Array<'deliver'>;
  sirp?: string;
  verify?: string;
  enrich?: Array<'card_url' | 'webhook' | 'ghost'>;
}

/** A plugin the product runs, pinned to one loaded version and cid. */
export interface PinnedPlugin {
  name: string;
  version: string;
  /** Registry key (`name@version`) to run it by. */
  key: string;
  /** cid of its signed manifest. */
  cid: string;
  kind: PluginInfo['kind'];
  manifest: Record<string, unknown>;
}

export interface Approver {
  name: string;
  keyid: string;
  publicKeyPem: string;
  publicKeyRaw: Uint8Array;
}

/** A loaded, resolved product: what the pipeline runs. */
export interface Product {
  /** cid of the manifest: the deployed product's identity. */
  cid: string;
  name: string;
  version: string;
  manifest: ProductManifest;
  /** The file it was loaded from. */
  file: string;
  act: string;
  aud: string;
  intake: PinnedPlugin;
  policies: Array<PinnedPlugin & { input: unknown }>;
  permit: { scope: string[]; ttl_seconds: number };
  effects: Array<'deliver'>;
  enrich: Array<'card_url' | 'webhook' | 'ghost'>;
  kofn: { k: number; approvers: Approver[] } | null;
  /** The exact plugin versions and cids this product runs. */
  lock: PluginLock;
  /** Where the lock came from: a lock file next to the manifest, or resolved at load. */
  lock_source: 'file' | 'resolved';
}

/** `api-receipt-gateway.product.json` → `api-receipt-gateway.lock.json`. */
export const PRODUCT_SUFFIX = '.product.json';
export const LOCK_SUFFIX = '.lock.json';

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
const validate: ValidateFunction = ajv.compile(productSchema);

/**
 * Reads and validates a product manifest file.
 * @throws TesseraError PRODUCT_INVALID naming the file and each failing field (`pipeline[0].policies[1].use:
 *   must be a plugin name and a semver range, e.g. policy-existence@^1`).
 */
export function readProductManifest(file: string): ProductManifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, not a manifest file' : `cannot be read (${(err as Error).message})`;
    throw new TesseraError('PRODUCT_INVALID', `${file}: ${why}.`, { details: { file } });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TesseraError('PRODUCT_INVALID', `${basename(file)}: not valid JSON (${(err as Error).message}).`, { details: { file } });
  }
  return validateProductManifest(value, basename(file));
}

/**
 * Validates a parsed manifest against the schema and the rules a schema cannot state (the step's act is one of
 * `acts`; k ≤ n; approver keys are Ed25519 SPKI PEM and distinct).
 * @throws TesseraError PRODUCT_INVALID naming `source` and the fields.
 */
export function validateProductManifest(value: unknown, source: string): ProductManifest {
  if (!validate(value)) {
    const problems = (validate.errors ?? []).filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'if').map((e) => describe(e));
    throw new TesseraError('PRODUCT_INVALID', `${source}: ${[...new Set(problems)].slice(0, 8).join('; ')}.`, { details: { source, problems } });
  }
  const manifest = value as ProductManifest;
  const problems: string[] = [];
  manifest.pipeline.forEach((step, i) => {
    if (!manifest.acts.includes(step.act)) problems.push(`pipeline[${i}].act: "${step.act}" is not one of acts (${manifest.acts.join(', ')})`);
  });
  const kofn = manifest.security.kofn;
  if (kofn) {
    if (kofn.k > kofn.approvers.length) problems.push(`security.kofn.k: ${kofn.k} approvals needed but only ${kofn.approvers.length} approvers listed`);
    const seen = new Set<string>();
    kofn.approvers.forEach((a, i) => {
      try {
        const key = readPublicKey(a.public_key);
        if (seen.has(key.keyid)) problems.push(`security.kofn.approvers[${i}].public_key: the same key as an earlier approver`);
        seen.add(key.keyid);
      } catch (err) {
        problems.push(`security.kofn.approvers[${i}].public_key: ${isTesseraError(err) ? err.message : 'not an Ed25519 public key'}`);
      }
    });
  }
  if (problems.length > 0) throw new TesseraError('PRODUCT_INVALID', `${source}: ${problems.join('; ')}.`, { details: { source, problems } });
  return manifest;
}

/** `name@range` → [name, range]. */
export function splitRef(ref: string): [string, string] {
  const at = ref.indexOf('@');
  return [ref.slice(0, at), ref.slice(at + 1)];
}

/**
 * The plugin ranges a manifest requires, by plugin name (its intake and policies).
 * @throws TesseraError PRODUCT_INVALID when one plugin is referenced with two different ranges.
 */
export function productRequires(manifest: ProductManifest, file: string): Record<string, string> {
  const step = manifest.pipeline[0]!;
  const refs = [step.intake, ...step.policies.map((p) => (typeof p === 'string' ? p : p.use))];
  const requires: Record<string, string> = {};
  for (const ref of refs) {
    const [name, range] = splitRef(ref);
    if (requires[name] !== undefined && requires[name] !== range) {
      throw new TesseraError('PRODUCT_INVALID', `${basename(file)}: ${name} is referenced with two ranges (${requires[name]}, ${range}).`);
    }
    requires[name] = range;
  }
  return requires;
}

/** The lock file of a product manifest: `NAME.lock.json` beside `NAME.product.json`. */
export function lockFileOf(file: string): string {
  return file.endsWith(PRODUCT_SUFFIX) ? file.slice(0, -PRODUCT_SUFFIX.length) + LOCK_SUFFIX : `${file}${LOCK_SUFFIX}`;
}

/**
 * Checks a product's lock: it pins every range the manifest requires, with the same range, and each pinned cid is
 * among `available`.
 * @throws TesseraError PRODUCT_INVALID (the lock does not match the manifest), PLUGIN_NOT_FOUND or PLUGIN_TAMPERED.
 */
export function checkProductLock(lock: PluginLock, requires: Record<string, string>, file: string, available: readonly LockCandidate[]): void {
  for (const [name, range] of Object.entries(requires)) {
    if (lock.requires[name] !== range || lock.plugins[name] === undefined) {
      throw new TesseraError('PRODUCT_INVALID', `${basename(lockFileOf(file))} does not pin ${name}@${range} as ${basename(file)} requires; regenerate the lock (tessera product lock ${basename(file)}).`);
    }
  }
  checkLock(lock, available);
}

/**
 * Resolves a validated manifest against the loaded plugins. When `NAME.lock.json` exists beside the manifest it
 * is enforced (every locked cid must be loaded, and the lock must cover the manifest's ranges); otherwise the
 * highest loaded version in each range is pinned for this process.
 *
 * @throws TesseraError PRODUCT_INVALID (a plugin of the wrong kind, a lock that does not match the manifest),
 *   PLUGIN_NOT_FOUND (no loaded version satisfies a range) or PLUGIN_TAMPERED (a loaded cid differs from the lock).
 */
export function resolveProduct(manifest: ProductManifest, file: string, available: readonly PluginInfo[]): Product {
  const step = manifest.pipeline[0]!;
  const requires = productRequires(manifest, file);
  const lockFile = lockFileOf(file);
  let lock: PluginLock;
  let lockSource: Product['lock_source'];
  if (existsSync(lockFile)) {
    lock = readLock(lockFile);
    checkProductLock(lock, requires, file, available);
    lockSource = 'file';
  } else {
    lock = resolveLock(requires, available);
    lockSource = 'resolved';
  }
  const pin = (name: string, kind: PluginInfo['kind']): PinnedPlugin => {
    const locked = lock.plugins[name]!;
    const info = available.find((p) => p.name === name && p.version === locked.version && p.cid === locked.cid)!;
    if (info.kind !== kind) throw new TesseraError('PRODUCT_INVALID', `${basename(file)}: ${name} is a ${info.kind} plugin, used as ${kind === 'intake' ? 'the intake' : 'a policy'}.`);
    return { name, version: info.version, key: info.key, cid: info.cid, kind, manifest: info.manifest };
  };
  const kofn = manifest.security.kofn
    ? {
        k: manifest.security.kofn.k,
        approvers: manifest.security.kofn.approvers.map((a) => {
          const key = readPublicKey(a.public_key);
          return { name: a.name, keyid: key.keyid, publicKeyPem: key.publicKeyPem, publicKeyRaw: key.publicKeyRaw };
        }),
      }
    : null;
  return {
    cid: cidOf(manifest),
    name: manifest.name,
    version: manifest.version,
    manifest,
    file,
    act: step.act,
    aud: manifest.security.aud,
    intake: pin(splitRef(step.intake)[0], 'intake'),
    policies: step.policies.map((p) => {
      const ref = typeof p === 'string' ? p : p.use;
      return { ...pin(splitRef(ref)[0], 'policy'), input: typeof p === 'string' ? undefined : p.input };
    }),
    permit: { scope: [...step.permit.scope], ttl_seconds: step.permit.ttl_seconds },
    effects: [...(step.effects ?? [])],
    enrich: [...(step.enrich ?? [])],
    kofn,
    lock,
    lock_source: lockSource,
  };
}
