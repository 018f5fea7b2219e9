/**
 * Products and tenants (seed 004 §1, §3 "Auth → tenant, aud"). Loads every `*.product.json` from the product
 * folders (built-in resources/products, then `<data>/products`) after the plugins are loaded, resolves each
 * against them, and keeps them immutable for the life of the process: there is no call that changes one.
 *
 * Tenants: the API token (`<data>/api-token`) is the `default` tenant's. More tenants are configured in
 * `<data>/tenants.json`: `{"tenants": [{"id": "acme", "token_sha256": "<hex SHA-256 of the token>",
 * "aud"?: "gateway"}]}` — only token hashes are stored. A tenant's audience defaults to the product's.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PluginInfo } from '../../common/api.js';
import { TesseraError, toErrorData } from '../../common/errors.js';
import type { Bus } from '../bus/index.js';
import type { Logger } from '../log/index.js';
import { PRODUCT_SUFFIX, readProductManifest, resolveProduct } from './manifest.js';
import type { Product } from './manifest.js';

export type { Approver, PinnedPlugin, Product, ProductManifest, ProductStep } from './manifest.js';
export { checkProductLock, lockFileOf, productRequires, readProductManifest, resolveProduct, validateProductManifest, PRODUCT_SUFFIX, LOCK_SUFFIX } from './manifest.js';
export { parseView, VIEW_LIMITS } from './view.js';
export type { ParsedView, ViewHeader } from './view.js';

/** Who called: resolved from the bearer token. */
export interface Tenant {
  id: string;
  /** Audience override; the product's `security.aud` when absent. */
  aud?: string;
}

export const DEFAULT_TENANT = 'default';
export const TENANTS_FILE = 'tenants.json';
/** The product `POST /v1/run` runs when no `product` is named. */
export const DEFAULT_PRODUCT = 'api-receipt-gateway';

export interface ProductLoadError {
  file: string;
  code: string;
  message: string;
}

export interface Products {
  /** Loaded products, by name. */
  list(): Product[];
  /**
   * The product by name, or the default one (`api-receipt-gateway`, else the only product loaded).
   * @throws TesseraError PRODUCT_NOT_FOUND naming the products that are loaded.
   */
  get(name?: string): Product;
  byCid(cid: string): Product | undefined;
  /** Files that did not load, with why. */
  errors(): ProductLoadError[];
  /** The tenant whose token this is (from tenants.json), if any. */
  tenantForToken(token: string): Tenant | undefined;
  /** What `GET /.well-known/product.json` lists for each product. */
  describe(): Array<Record<string, unknown>>;
}

export interface ProductsOptions {
  dirs: readonly string[];
  plugins: readonly PluginInfo[];
  dataDir: string;
  bus: Bus;
  logger: Logger;
}

/**
 * Loads the products. A file that fails (schema, lock, missing plugin) is journaled as
 * `product.load_failed` and skipped; a later file with the same name replaces an earlier one (data over
 * built-in). A malformed tenants.json loads no tenant (their tokens are refused, which fails safe) and is
 * journaled as `product.tenants_invalid` with the reason.
 */
export function loadProducts(options: ProductsOptions): Products {
  let tenants: TenantEntry[] = [];
  try {
    tenants = readTenants(join(options.dataDir, TENANTS_FILE));
  } catch (err) {
    options.logger.error('tenants.json is not valid; no extra tenant is loaded', { error: err });
    options.bus.publish('product.tenants_invalid', { error: toErrorData(err) });
  }
  const byName = new Map<string, Product>();
  const errors: ProductLoadError[] = [];
  for (const dir of options.dirs) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir).filter((f) => f.endsWith(PRODUCT_SUFFIX)).sort()) {
      const file = join(dir, entry);
      try {
        const product = resolveProduct(readProductManifest(file), file, options.plugins);
        byName.set(product.name, product);
        options.bus.publish('product.loaded', { name: product.name, version: product.version, cid: product.cid, file, lock: product.lock_source });
      } catch (err) {
        const data = toErrorData(err);
        errors.push({ file, code: data.code, message: data.message });
        options.logger.warn('a product was not loaded', { file, error: err });
        options.bus.publish('product.load_failed', { file, error: data });
      }
    }
  }
  const byCid = new Map([...byName.values()].map((p) => [p.cid, p]));
  return {
    list: () => [...byName.values()],
    get(name) {
      const product = name === undefined ? (byName.get(DEFAULT_PRODUCT) ?? (byName.size === 1 ? [...byName.values()][0] : undefined)) : byName.get(name);
      if (!product) {
        const loaded = [...byName.keys()].join(', ') || 'none';
        throw new TesseraError('PRODUCT_NOT_FOUND', `${name === undefined ? 'No default product is loaded' : `No product "${name}" is loaded`} (loaded: ${loaded}).`);
      }
      return product;
    },
    byCid: (cid) => byCid.get(cid),
    errors: () => errors.map((e) => ({ ...e })),
    tenantForToken(token) {
      if (tenants.length === 0) return undefined;
      const digest = createHash('sha256').update(token, 'utf8').digest();
      const found = tenants.find((t) => timingSafeEqual(t.digest, digest));
      return found ? { id: found.id, ...(found.aud ? { aud: found.aud } : {}) } : undefined;
    },
    describe: () =>
      [...byName.values()].map((p) => ({
        name: p.name,
        version: p.version,
        cid: p.cid,
        acts: p.manifest.acts,
        proof_level: p.manifest.proof_level,
        billing: p.manifest.billing ?? null,
        aud: p.aud,
        kofn: p.kofn ? { k: p.kofn.k, n: p.kofn.approvers.length, approvers: p.kofn.approvers.map((a) => ({ name: a.name, keyid: a.keyid })) } : null,
        plugins: Object.fromEntries(Object.entries(p.lock.plugins).map(([name, pin]) => [name, { version: pin.version, cid: pin.cid }])),
        lock: p.lock_source,
        manifest: p.manifest,
      })),
  };
}

interface TenantEntry {
  id: string;
  aud?: string;
  digest: Buffer;
}

function readTenants(file: string): TenantEntry[] {
  if (!existsSync(file)) return [];
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TesseraError('CONFIG_INVALID', `${file} is not valid JSON: ${(err as Error).message}`);
  }
  const list = (value as { tenants?: unknown })?.tenants;
  if (!Array.isArray(list)) throw new TesseraError('CONFIG_INVALID', `${file}: expected {"tenants": [{"id", "token_sha256", "aud"?}]}.`);
  return list.map((t: unknown, i): TenantEntry => {
    const { id, token_sha256: hash, aud } = (t ?? {}) as Record<string, unknown>;
    if (typeof id !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(id) || id === DEFAULT_TENANT) {
      throw new TesseraError('CONFIG_INVALID', `${file}: tenants[${i}].id must be 1-64 lowercase letters, digits, "_" or "-" (and not "${DEFAULT_TENANT}").`);
    }
    if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) throw new TesseraError('CONFIG_INVALID', `${file}: tenants[${i}].token_sha256 must be 64 lowercase hex digits (sha256sum of the token).`);
    if (aud !== undefined && (typeof aud !== 'string' || aud === '')) throw new TesseraError('CONFIG_INVALID', `${file}: tenants[${i}].aud must be a non-empty string.`);
    return { id, digest: Buffer.from(hash, 'hex'), ...(typeof aud === 'string' ? { aud } : {}) };
  });
}
