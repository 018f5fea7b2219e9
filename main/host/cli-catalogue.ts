/**
 * `tessera catalogue …`: the product catalogue (issue 14 point 1).
 *
 * - `catalogue sign FILE --key KEY [--out OUT]`: validates a ProductDef JSON file against
 *   resources/schema/productdef.schema.json and signs its canonical bytes (DSSE,
 *   application/vnd.tessera.productdef+json). Offline; Ed25519 is deterministic, so signing the same def with the
 *   same key writes the same bytes (`npm run build` re-signs the shipped catalogue this way).
 * - `catalogue list [--city C] [--status S]`, `catalogue show REF`, `catalogue add FILE`: against a running
 *   Tessera over its HTTP API (`--url`, `--token` as for `tessera consent`). `add` posts a signed def; the
 *   runtime verifies it against its publisher trust and keeps it in its database.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { TesseraError } from '../common/errors.js';
import { MAX_PRODUCTDEF_BYTES, signProductDef } from '../runtime/catalogue/index.js';
import { readPrivateKey } from '../runtime/keys/index.js';
import { writeAtomic } from '../../sandbox/package.js';
import { reporting } from './cli-report.js';
import type { Command } from './cli.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/**
 * Reads a signed or plain JSON document from a file of at most `limit` bytes (the CLI's catalogue and journey
 * commands). A missing path or file is CONFIG_INVALID; too large or not JSON is `invalid`, the document's own code.
 */
export function readJsonFile(path: string | undefined, usage: string, limit: number, invalid: 'PRODUCTDEF_INVALID' | 'JOURNEY_DOC_INVALID'): unknown {
  if (!path) throw new TesseraError('CONFIG_INVALID', `FILE is required. Usage: ${usage}`);
  const file = resolve(path);
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new TesseraError('CONFIG_INVALID', `${path}: no such file.`);
  }
  if (size > limit) throw new TesseraError(invalid, `${path} is ${size} bytes; the limit is ${limit}.`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TesseraError(invalid, `${path} is not valid JSON: ${(err as Error).message}`);
  }
}

const readJson = (path: string | undefined, usage: string): unknown => readJsonFile(path, usage, MAX_PRODUCTDEF_BYTES, 'PRODUCTDEF_INVALID');

interface ProductJson {
  cid: string;
  ref: string;
  status: string;
  cities: string[];
  profiles: { entitlement: { kind: string; venues: Array<{ id: string }> }; pricing: { price: number; currency: string }; ui: { title: Record<string, string> } };
}

const money = (minor: number, currency: string) => `${(minor / 100).toFixed(2)} ${currency}`;

const catalogueSign: Command = {
  name: 'catalogue sign',
  summary: 'Validate a ProductDef file and sign it (DSSE over its canonical bytes) with a publisher key.',
  usage: 'tessera catalogue sign FILE --key KEY [--out OUT]',
  positionals: 1,
  options: { key: { type: 'string' }, out: { type: 'string' } },
  flags: [['--key KEY', 'The private key file (from tessera keygen); the devices must trust its public key.'], ['--out OUT', 'Write the signed def here (default: print it).']],
  async run(values, positionals, io) {
    const keyPath = str(values['key']);
    if (!keyPath) throw new TesseraError('CONFIG_INVALID', `--key KEY is required. Usage: ${this.usage}`);
    const value = readJson(positionals[0], this.usage);
    const key = readPrivateKey(resolve(keyPath));
    const { envelope, def, cid } = signProductDef(value, key, positionals[0]);
    const text = JSON.stringify(envelope, null, 2) + '\n';
    const out = str(values['out']);
    if (out) {
      writeAtomic(resolve(out), text);
      io.stdout(`Signed ${def.id}@${def.version}\n  cid:    ${cid}\n  key id: ${key.keyid}\n  file:   ${out}\n`);
    } else io.stdout(text);
    return 0;
  },
};

const catalogueList: Command = {
  name: 'catalogue list',
  summary: "List a running Tessera's catalogue: the products on sale (or the versions in a status).",
  usage: 'tessera catalogue list [--city C] [--status active|draft|retired|all] [--json] [--url URL] [--token T] [--data DIR]',
  options: { ...connection, city: { type: 'string' }, status: { type: 'string' }, json: { type: 'boolean' } },
  flags: [['--city C', 'Only products sold in this city (e.g. lviv).'], ['--status S', 'active (default: the highest active version of each), draft, retired or all (every version).'], ['--json', 'Print the products as JSON.'], ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const status = str(values['status']);
      if (status !== undefined && !['active', 'draft', 'retired', 'all'].includes(status)) throw new TesseraError('CONFIG_INVALID', `--status must be active, draft, retired or all, got ${JSON.stringify(status)}.`);
      const query = new URLSearchParams({ ...(str(values['city']) ? { city: str(values['city'])! } : {}), ...(status ? { status } : {}) }).toString();
      const { products } = (await apiClient(values, io)('GET', `/api/catalogue${query ? `?${query}` : ''}`)) as { products: ProductJson[] };
      if (values['json']) io.stdout(JSON.stringify(products, null, 2) + '\n');
      else if (products.length === 0) io.stdout('No products.\n');
      else {
        for (const p of products) {
          io.stdout(`${p.ref.padEnd(32)} ${p.status.padEnd(8)} ${p.profiles.entitlement.kind.padEnd(13)} ${money(p.profiles.pricing.price, p.profiles.pricing.currency).padStart(12)}  ${p.profiles.ui.title['en']}\n`);
        }
      }
      return 0;
    });
  },
};

const catalogueShow: Command = {
  name: 'catalogue show',
  summary: 'Show one product version of a running Tessera: by id, id@range, id@version or cid.',
  usage: 'tessera catalogue show REF [--url URL] [--token T] [--data DIR]',
  positionals: 1,
  options: { ...connection },
  flags: [...connectionFlags],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const ref = positionals[0];
      if (!ref) throw new TesseraError('CONFIG_INVALID', `REF is required. Usage: ${this.usage}`);
      const product = await apiClient(values, io)('GET', `/api/catalogue/${encodeURIComponent(ref)}`);
      io.stdout(JSON.stringify(product, null, 2) + '\n');
      return 0;
    });
  },
};

const catalogueAdd: Command = {
  name: 'catalogue add',
  summary: 'Add a signed ProductDef to a running Tessera (verified against its publisher trust; never replaces a version).',
  usage: 'tessera catalogue add FILE [--url URL] [--token T] [--data DIR]',
  positionals: 1,
  options: { ...connection },
  flags: [...connectionFlags],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const envelope = readJson(positionals[0], this.usage);
      const { added, product } = (await apiClient(values, io)('POST', '/api/catalogue', envelope)) as { added: boolean; product: ProductJson };
      io.stdout(`${added ? 'Added' : 'Already in the catalogue:'} ${product.ref} (${product.status})\n  cid: ${product.cid}\n`);
      return 0;
    });
  },
};

export const CATALOGUE_COMMANDS: Command[] = [catalogueList, catalogueShow, catalogueSign, catalogueAdd];
