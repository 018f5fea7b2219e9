/**
 * City data packages (seed 000 "LEM"; issue 15 point 3): a folder holding `package.json` — a DSSE envelope of
 * {@link CITY_PAYLOAD_TYPE} over the canonical bytes of a {@link CityManifest} — beside the files it lists with their
 * cids (`graph.json`, `gtfs/*.txt`). A package verifies when a key of the publisher trust signed the manifest and
 * every listed file hashes to its cid; it is stale once the clock passes `valid_until` (checked by the caller, who
 * owns the clock).
 *
 * Signing (`tessera city sign SRC --key K --out DIR`) reads the source folder's `city.json` (the manifest without
 * `files`), hashes `graph.json` and `gtfs/*.txt`, and writes the signed package. Ed25519 is deterministic and the
 * manifest carries no signing time, so the same source and key give the same bytes.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { canonicalBytes } from '../../common/canonical.js';
import { cidOfBytes, isCid } from '../../common/cid.js';
import { parseEnvelope } from '../../common/dsse.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import type { SigningKey } from '../keys/index.js';
import { signEnvelope } from '../keys/index.js';
import type { TrustView } from '../trust/index.js';
import { verifyTrusted } from '../trust/index.js';

/** DSSE payloadType of a signed city package manifest. */
export const CITY_PAYLOAD_TYPE = 'application/vnd.tessera.city+json';
/** The signed manifest in a package folder. */
export const CITY_MANIFEST_FILE = 'package.json';
/** The unsigned manifest head in a source folder. */
export const CITY_SOURCE_FILE = 'city.json';
/** Files every package holds (GTFS: the required files of a timetable with a calendar). */
export const CITY_REQUIRED_FILES = ['graph.json', 'gtfs/agency.txt', 'gtfs/stops.txt', 'gtfs/routes.txt', 'gtfs/trips.txt', 'gtfs/stop_times.txt', 'gtfs/calendar.txt'] as const;
export const MAX_CITY_MANIFEST_BYTES = 256 * 1024;
export const MAX_CITY_FILE_BYTES = 64 * 1024 * 1024;

export interface CityManifest {
  id: string;
  version: string;
  city: string;
  /** RFC 3339 UTC. */
  created_at: string;
  /** RFC 3339 UTC: after it the package is stale and routing degrades to static routes. */
  valid_until: string;
  /** Relative path → `b3:` cid of the file's bytes. */
  files: Record<string, string>;
}

export interface VerifiedCityPackage {
  dir: string;
  manifest: CityManifest;
  /** cid of the manifest (its canonical bytes). */
  cid: string;
  publisher: { keyid: string; name: string };
  /** Every listed file's bytes, verified against its cid. */
  files: Map<string, Uint8Array>;
}

const ID = /^[a-z][a-z0-9-]{0,63}$/;
const FILE = /^(?:[a-z0-9_-]+\/)?[a-z0-9_.-]+\.(?:json|txt)$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

const invalid = (message: string, details?: unknown) => new TesseraError('CITY_PACKAGE_INVALID', message, details === undefined ? {} : { details });

/**
 * Checks a manifest's fields (`files` optional for a source `city.json`).
 * @throws TesseraError CITY_PACKAGE_INVALID naming `source` and the fields.
 */
export function validateCityManifest(value: unknown, source: string, options: { files: boolean } = { files: true }): CityManifest {
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${source}: the manifest must be a JSON object.`);
  const m = value as Record<string, unknown>;
  const known = ['id', 'version', 'city', 'created_at', 'valid_until', ...(options.files ? ['files'] : [])];
  for (const k of Object.keys(m)) if (!known.includes(k)) problems.push(`${k}: is not a known field`);
  if (typeof m['id'] !== 'string' || !ID.test(m['id'])) problems.push('id: must be lowercase letters, digits and dashes (lviv)');
  if (typeof m['city'] !== 'string' || !ID.test(m['city'])) problems.push('city: must be lowercase letters, digits and dashes (lviv)');
  if (typeof m['version'] !== 'string' || semver.valid(m['version']) !== m['version']) problems.push('version: must be a semantic version (1.0.0)');
  for (const f of ['created_at', 'valid_until'] as const) {
    if (typeof m[f] !== 'string' || !RFC3339.test(m[f]) || Number.isNaN(Date.parse(m[f]))) problems.push(`${f}: must be an RFC 3339 time (2026-12-01T00:00:00Z)`);
  }
  if (problems.length === 0 && !(Date.parse(m['valid_until'] as string) > Date.parse(m['created_at'] as string))) problems.push('valid_until: must be after created_at');
  if (options.files) {
    const files = m['files'];
    if (typeof files !== 'object' || files === null || Array.isArray(files)) problems.push('files: must map each file to its cid');
    else {
      for (const [path, cid] of Object.entries(files)) {
        if (!FILE.test(path) || path.includes('..')) problems.push(`files["${path}"]: must be a .json or .txt file in the package folder or one sub-folder`);
        if (!isCid(cid)) problems.push(`files["${path}"]: must be a b3: cid`);
      }
      for (const required of CITY_REQUIRED_FILES) if (!(required in files)) problems.push(`files: ${required} is missing`);
    }
  }
  if (problems.length > 0) throw invalid(`${source}: ${problems.join('; ')}.`, { source, problems });
  return m as unknown as CityManifest;
}

/** The files a source folder contributes: graph.json and every gtfs/*.txt, sorted. */
function sourceFiles(src: string): string[] {
  const files: string[] = [];
  if (existsSync(join(src, 'graph.json'))) files.push('graph.json');
  const gtfs = join(src, 'gtfs');
  if (existsSync(gtfs)) for (const f of readdirSync(gtfs).filter((x) => x.endsWith('.txt')).sort()) files.push(`gtfs/${f}`);
  return files;
}

/**
 * Signs a source folder (`city.json`, `graph.json`, `gtfs/*.txt`): the manifest with every file's cid, as a DSSE
 * envelope by `key`.
 * @throws TesseraError CITY_PACKAGE_INVALID when city.json is missing or wrong, or a required file is missing.
 */
export function signCityPackage(src: string, key: SigningKey): { envelope: DsseEnvelope; manifest: CityManifest; cid: string; files: Map<string, Uint8Array> } {
  const head = join(src, CITY_SOURCE_FILE);
  if (!existsSync(head)) throw invalid(`${src} has no ${CITY_SOURCE_FILE} (id, version, city, created_at, valid_until).`);
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(head, 'utf8'));
  } catch (err) {
    throw invalid(`${head} is not valid JSON: ${(err as Error).message}`);
  }
  validateCityManifest(meta, head, { files: false });
  const files = new Map<string, Uint8Array>();
  const cids: Record<string, string> = {};
  for (const path of sourceFiles(src)) {
    const bytes = readLimited(join(src, path), path);
    files.set(path, bytes);
    cids[path] = cidOfBytes(bytes);
  }
  const { id, version, city, created_at, valid_until } = meta as CityManifest;
  const manifest = validateCityManifest({ id, version, city, created_at, valid_until, files: cids }, src);
  const payload = canonicalBytes(manifest);
  return { envelope: signEnvelope(CITY_PAYLOAD_TYPE, payload, [key]), manifest, cid: cidOfBytes(payload), files };
}

/**
 * Signs `src` into the package folder `out` (created; an existing package folder there is replaced, any other
 * non-empty folder is refused).
 * @throws TesseraError CITY_PACKAGE_INVALID (see {@link signCityPackage}) or CONFIG_INVALID for an unusable `out`.
 */
export function writeCityPackage(src: string, out: string, key: SigningKey): { manifest: CityManifest; cid: string } {
  const signed = signCityPackage(src, key);
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new TesseraError('CONFIG_INVALID', `${out} is a file, not a folder.`);
    if (readdirSync(out).length > 0 && !existsSync(join(out, CITY_MANIFEST_FILE))) throw new TesseraError('CONFIG_INVALID', `${out} is a folder that holds something else than a city package; give an empty or new folder.`);
    for (const entry of readdirSync(out)) rmSync(join(out, entry), { recursive: true, force: true });
  }
  mkdirSync(out, { recursive: true });
  for (const [path, bytes] of signed.files) {
    mkdirSync(join(out, path, '..'), { recursive: true });
    writeFileSync(join(out, path), bytes);
  }
  // The manifest last: a folder is a package only once everything it names is there.
  writeFileSync(join(out, CITY_MANIFEST_FILE), JSON.stringify(signed.envelope, null, 2) + '\n');
  return { manifest: signed.manifest, cid: signed.cid };
}

function readLimited(file: string, name: string): Uint8Array {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw invalid(`${name} is listed in the manifest but missing from the package.`, { file: name });
  }
  if (size > MAX_CITY_FILE_BYTES) throw invalid(`${name} is ${size} bytes; the limit is ${MAX_CITY_FILE_BYTES}.`, { file: name });
  return new Uint8Array(readFileSync(file));
}

/**
 * Verifies the package folder `dir`: the envelope is signed by a key `trust` trusts, its payload is the canonical
 * form of a valid manifest, and every listed file is present with its cid. Staleness is not checked here.
 * @throws TesseraError CITY_PACKAGE_MISSING (no package.json), CITY_PACKAGE_INVALID (manifest, file missing or
 *   altered), SIGNATURE_INVALID, KEY_UNKNOWN or KEY_REVOKED — each message names the package by `label`.
 */
export function verifyCityPackage(dir: string, trust: TrustView, label: string = dir): VerifiedCityPackage {
  const manifestFile = join(dir, CITY_MANIFEST_FILE);
  // Messages name the package by `label` (the runtime passes the folder's name: API answers never show device paths).
  const file = `${label}/${CITY_MANIFEST_FILE}`;
  if (!existsSync(manifestFile)) throw new TesseraError('CITY_PACKAGE_MISSING', `${label} holds no city package (no ${CITY_MANIFEST_FILE}).`);
  if (statSync(manifestFile).size > MAX_CITY_MANIFEST_BYTES) throw invalid(`${file} is over ${MAX_CITY_MANIFEST_BYTES} bytes.`);
  let envelope: DsseEnvelope;
  try {
    envelope = parseEnvelope(JSON.parse(readFileSync(manifestFile, 'utf8')));
  } catch (err) {
    throw prefixed(isTesseraError(err) ? err : invalid(`not valid JSON: ${(err as Error).message}`), file);
  }
  if (envelope.payloadType !== CITY_PAYLOAD_TYPE) throw new TesseraError('SIGNATURE_INVALID', `${file}: the envelope signs a ${envelope.payloadType}, not a city package (${CITY_PAYLOAD_TYPE}).`);
  let trusted;
  try {
    trusted = verifyTrusted(envelope, trust);
  } catch (err) {
    throw prefixed(err, file);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(trusted.payload));
  } catch {
    throw invalid(`${file}: the signed payload is not JSON.`);
  }
  const manifest = validateCityManifest(value, file);
  const canonical = canonicalBytes(manifest);
  if (canonical.length !== trusted.payload.length || !canonical.every((b, i) => b === trusted.payload[i])) {
    throw invalid(`${file}: the signed payload is not the canonical (RFC 8785) form of the manifest; sign it with \`tessera city sign\`.`);
  }
  const files = new Map<string, Uint8Array>();
  for (const [path, cid] of Object.entries(manifest.files)) {
    const bytes = readLimited(join(dir, path), `${label}/${path}`);
    const actual = cidOfBytes(bytes);
    if (actual !== cid) throw invalid(`${label}/${path} does not match the cid its signed manifest records (${cid}; the file hashes to ${actual}): it was altered or replaced.`, { file: path, expected: cid, actual });
    files.set(path, bytes);
  }
  return { dir, manifest, cid: cidOfBytes(canonical), publisher: { keyid: trusted.keyid, name: trusted.name }, files };
}

function prefixed(err: unknown, source: string): unknown {
  if (!isTesseraError(err)) return err;
  return new TesseraError(err.code, `${source}: ${err.message}`, err.details !== undefined ? { details: err.details } : {});
}
