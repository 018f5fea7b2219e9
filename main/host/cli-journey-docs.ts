/**
 * `tessera journey validate|sign`: journey documents (seed 000 "TJM"; issue 15 point 1), offline.
 *
 * - `journey validate FILE [--catalogue DIR]…`: checks a journey document (or the payload of a signed one) against
 *   resources/schema/journey.schema.json and the rules the schema cannot state, and prints each problem as
 *   `path: message` (a JSON pointer into the document); exit 1 when there is any. With `--catalogue DIR` (ProductDef
 *   files, signed or not, e.g. resources/catalogue) each node's `needs` is checked against the venues of its product.
 * - `journey sign FILE --key KEY [--out OUT]`: validates, then signs the canonical bytes (DSSE,
 *   application/vnd.tessera.journey+json). Ed25519 is deterministic: the same document and key give the same file
 *   (`npm run build` signs resources/journeys/src this way).
 *
 * The other `tessera journey …` commands (journey instances on a running Tessera) live beside these in the same
 * group; each is a {@link Command} named `journey <verb>`.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cidOf } from '../common/cid.js';
import { fromBase64 } from '../common/dsse.js';
import { TesseraError } from '../common/errors.js';
import { JOURNEY_PAYLOAD_TYPE } from '../common/journeys.js';
import type { JourneyDoc } from '../common/journeys.js';
import { MAX_JOURNEY_DOC_BYTES, MAX_PRODUCTDEF_BYTES, PRODUCTDEF_PAYLOAD_TYPE, signJourneyDoc, validateJourneyDoc, validateProductDef } from '../runtime/catalogue/index.js';
import type { JourneyDocContext } from '../runtime/catalogue/index.js';
import { readPrivateKey } from '../runtime/keys/index.js';
import { writeAtomic } from '../../sandbox/package.js';
import { readJsonFile } from './cli-catalogue.js';
import type { Command } from './cli.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);


/** The payload of a DSSE envelope of `payloadType`, parsed; `value` itself when it is not such an envelope. */
function unwrap(value: unknown, payloadType: string): unknown {
  const env = value as { payloadType?: unknown; payload?: unknown } | null;
  if (env === null || typeof env !== 'object' || env.payloadType !== payloadType || typeof env.payload !== 'string') return value;
  return JSON.parse(new TextDecoder().decode(fromBase64(env.payload)));
}

/** Venues per product id, from the ProductDef files (signed or plain) of `dirs`; a file that is not a def is skipped. */
function catalogueContext(dirs: readonly string[]): JourneyDocContext {
  const venues = new Map<string, Set<string>>();
  for (const dir of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new TesseraError('CONFIG_INVALID', `--catalogue ${dir}: no such folder.`);
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      const file = join(dir, name);
      try {
        if (statSync(file).size > MAX_PRODUCTDEF_BYTES) continue;
        const def = validateProductDef(unwrap(JSON.parse(readFileSync(file, 'utf8')), PRODUCTDEF_PAYLOAD_TYPE), file);
        const held = venues.get(def.id) ?? new Set<string>();
        for (const v of def.profiles.entitlement.venues) held.add(v.id);
        venues.set(def.id, held);
      } catch {
        // Not a ProductDef: the folder may hold other files.
      }
    }
  }
  return { venues: (id) => (venues.has(id) ? [...venues.get(id)!] : undefined) };
}

/** `tessera journey validate FILE [--catalogue DIR]…` */
export const journeyValidate: Command = {
  name: 'journey validate',
  summary: 'Check a journey document and print each problem with its path in the document (exit 1 when there is any).',
  usage: 'tessera journey validate FILE [--catalogue DIR]…',
  positionals: 1,
  options: { catalogue: { type: 'string', multiple: true } },
  flags: [['--catalogue DIR', "ProductDef files (signed or not) to check each node's needs against, e.g. resources/catalogue; repeatable. Without it, needs are not checked."]],
  async run(values, positionals, io) {
    const file = positionals[0];
    const raw = readJsonFile(file, this.usage, MAX_JOURNEY_DOC_BYTES, 'JOURNEY_DOC_INVALID');
    let doc: unknown;
    try {
      doc = unwrap(raw, JOURNEY_PAYLOAD_TYPE);
    } catch {
      throw new TesseraError('JOURNEY_DOC_INVALID', `${file}: the signed payload is not JSON.`);
    }
    const dirs = (values['catalogue'] as unknown as string[] | undefined) ?? [];
    const problems = validateJourneyDoc(doc, dirs.length > 0 ? catalogueContext(dirs.map((d) => resolve(d))) : {});
    if (problems.length > 0) {
      for (const p of problems) io.stdout(`${p.path || '/'}: ${p.message}\n`);
      io.stderr(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} (JOURNEY_DOC_INVALID).\n`);
      return 1;
    }
    const d = doc as JourneyDoc;
    io.stdout(`${file}: ${d.id}@${d.version} is valid: ${d.places.length} places, ${d.nodes.length} nodes, ${d.static_routes.length} static routes${dirs.length > 0 ? '' : ' (needs not checked: no --catalogue)'}.\n`);
    return 0;
  },
};

/** `tessera journey sign FILE --key KEY [--out OUT]` */
export const journeySign: Command = {
  name: 'journey sign',
  summary: 'Validate a journey document and sign it (DSSE over its canonical bytes) with a publisher key.',
  usage: 'tessera journey sign FILE --key KEY [--out OUT]',
  positionals: 1,
  options: { key: { type: 'string' }, out: { type: 'string' } },
  flags: [['--key KEY', 'The private key file (from tessera keygen); the devices must trust its public key.'], ['--out OUT', 'Write the signed document here (default: print it).']],
  async run(values, positionals, io) {
    const keyPath = str(values['key']);
    if (!keyPath) throw new TesseraError('CONFIG_INVALID', `--key KEY is required. Usage: ${this.usage}`);
    const doc = readJsonFile(positionals[0], this.usage, MAX_JOURNEY_DOC_BYTES, 'JOURNEY_DOC_INVALID') as JourneyDoc;
    const key = readPrivateKey(resolve(keyPath));
    const envelope = signJourneyDoc(doc, key, positionals[0]);
    const text = JSON.stringify(envelope, null, 2) + '\n';
    const out = str(values['out']);
    if (out) {
      writeAtomic(resolve(out), text);
      io.stdout(`Signed ${doc.id}@${doc.version}\n  cid:    ${cidOf(doc)}\n  key id: ${key.keyid}\n  file:   ${out}\n`);
    } else io.stdout(text);
    return 0;
  },
};

/** The `journey` group's document commands; `main/host/cli.ts` lists them with the group's other commands. */
export const JOURNEY_DOC_COMMANDS: Command[] = [journeyValidate, journeySign];
