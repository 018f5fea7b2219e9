/**
 * Offline bundles (seed 004 §4, issue 5 §6, DESIGN.md "Offline bundle"): one ZIP that proves what a capsule's
 * receipts say with no network and no Tessera — the capsule, its DSSE receipts, the public keys, the manifests
 * and cids of what decided, the device log's inclusion proofs against a signed tree head, a signed index of
 * hashes, a QR image of the card URL and a README explaining how to check it all by hand.
 *
 * One implementation for every verifier: `tessera bundle verify`, `POST /v1/verify` and the renderer's offline
 * page all call {@link verifyBundle}, so they give the same verdict and name the same place.
 *
 * ## Layout (in this order; nothing else is allowed)
 * ```
 * README.txt             how to verify by hand (OpenSSL, b3sum)
 * index.json             canonical JSON: {v, capsule, device, card_url, created_at, files: {name: b3 cid}}
 * index.sig              {payloadType, keyid, sig}: the device's Ed25519 signature over PAE(payloadType, index.json)
 * capsule.json           canonical JSON of the capsule: `b3sum capsule.json` is the capsule cid
 * receipts/001.dsse.json the chain in order, one DSSE envelope each
 * keys/keys.json         [{keyid, file, role}] ; keys/<hex of keyid>.pem: SPKI PEM public keys
 * plugins/001.json       {role, name, version, cid, manifest} of the product and each plugin that decided
 * log/inclusion.json     {tree_head: DSSE, proofs: [one per receipt]} (RFC 6962, common/merkle.ts)
 * log/cosignature.json   (after sync, issue 16) the cloud's DSSE Cosignature of that tree head; its key is in keys/ (role witness)
 * qr.png                 the card URL
 * ```
 * The container is the one ZIP form of common/zip.ts (stored entries, fixed header fields, specified byte for byte
 * there, ours rather than a library's), so a bundle has exactly one byte form: the strict reader checks every
 * field, re-serializes the entries and requires the same bytes, and the entries must be in the order above.
 * Any changed byte is caught — by the ZIP structure, a CRC-32, the canonical layout, a hash in the index, or a
 * signature — and reported with the place. The index is signed, so even README.txt and qr.png cannot be swapped with their hashes.
 *
 * Pure module: shared by the runtime, the CLI and the renderer. No node: imports, no network.
 */
import { canonicalBytes } from './canonical.js';
import { cidOf, cidOfBytes, isCid } from './cid.js';
import { fromBase64, pae, toBase64 } from './dsse.js';
import type { DsseEnvelope, PublicKeyLookup, SignatureVerifier } from './dsse.js';
import { verifyEd25519Noble } from './ed25519-verify.js';
import { TesseraError } from './errors.js';
import type { ErrorCode } from './errors.js';
import { TREE_HEAD_PAYLOAD_TYPE, inclusionProofProblem, treeHeadProblem } from './merkle.js';
import type { InclusionProofJson, TreeHead } from './merkle.js';
import { COSIGNATURE_PAYLOAD_TYPE, COSIGNATURE_VERSION } from './cloud.js';
import type { Cosignature } from './cloud.js';
import { verifyChain } from './receipt.js';
import type { Capsule, ReceiptPayload, Verdict } from './receipt.js';
import { ZipError, checkZipNames, readZipData, readZipDirectory, writeZip } from './zip.js';
import type { ZipDirectoryEntry } from './zip.js';

/** Version tag of {@link BundleIndex}. */
export const BUNDLE_VERSION = 'tessera.bundle/1';
/** payloadType of the index signature (index.sig), signed over index.json's bytes with the DSSE PAE. */
export const BUNDLE_INDEX_PAYLOAD_TYPE = 'application/vnd.tessera.bundle-index+json';
/** Largest bundle accepted, compressed or not: a chain of hundreds of receipts fits in well under 1 MiB. */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;
/** Most receipts (and most manifests) one bundle may hold: their file names are numbered 001 to 999. */
export const MAX_BUNDLE_RECEIPTS = 999;
/** Most entries a bundle may have: the fixed files, receipts, manifests and a generous number of keys. */
export const MAX_BUNDLE_ENTRIES = 4096;
/** MIME type of a bundle. */
export const BUNDLE_MEDIA_TYPE = 'application/zip';

export interface BundleKey {
  keyid: string;
  /** SPKI PEM. */
  pem: string;
  /** `witness`: the cloud key that co-signed the tree head (log/cosignature.json). */
  role: 'device' | 'approver' | 'witness';
}

export interface BundleManifest {
  role: string;
  name: string;
  version: string;
  /** `cidOf(manifest)`. */
  cid: string;
  manifest: Record<string, unknown>;
}

/** log/inclusion.json: a signed tree head and one inclusion proof per receipt, in chain order. */
export interface BundleLog {
  tree_head: DsseEnvelope;
  proofs: InclusionProofJson[];
}

/** Everything {@link buildBundle} needs; the host gathers it from the receipt store and the device log. */
export interface BundleInput {
  capsule: Capsule;
  /** The chain's envelopes in order (INTENT first). */
  receipts: readonly DsseEnvelope[];
  keys: readonly BundleKey[];
  manifests: readonly BundleManifest[];
  log: BundleLog;
  /** The cloud's co-signature of `log.tree_head` (its witness key must be among `keys`, role `witness`). */
  cosignature?: DsseEnvelope;
  cardUrl: string;
  /** PNG of the card URL's QR code (the host encodes it: runtime/receipts/qr-png.ts). */
  qrPng: Uint8Array;
  /** ISO-8601 time the bundle is made. */
  createdAt: string;
  /** The device key: signs the index. */
  signer: { keyid: string; sign(message: Uint8Array): Uint8Array };
}

/** index.json. */
export interface BundleIndex {
  v: typeof BUNDLE_VERSION;
  capsule: string;
  /** keyid of the device key that signed the index (and the receipts). */
  device: string;
  card_url: string;
  created_at: string;
  /** Every other file except index.sig: name → `b3:` cid of its bytes. */
  files: Record<string, string>;
}

/** The checks of a bundle, in the order they run. */
export const BUNDLE_CHECKS = [
  { id: 'zip', label: 'ZIP structure readable' },
  { id: 'entries', label: 'Entries: expected names only, no duplicates, no unsafe paths' },
  { id: 'files', label: 'Files intact: CRC-32s and the exact container layout' },
  { id: 'index', label: 'Index well-formed and listing every file' },
  { id: 'keys', label: 'Public keys match their key ids' },
  { id: 'index_signature', label: 'Index signed by the device key' },
  { id: 'hashes', label: 'Every file matches its hash in the signed index' },
  { id: 'capsule', label: 'Capsule cid' },
  { id: 'receipts', label: 'Receipt signatures, chain links and capsule binding' },
  { id: 'plugins', label: 'Manifests match their cids' },
  { id: 'log', label: 'Device log: signed tree head and inclusion of every receipt' },
  { id: 'witness', label: 'Cloud co-signature of the tree head' },
] as const;
export type BundleCheckId = (typeof BUNDLE_CHECKS)[number]['id'];

export interface BundleCheck {
  id: BundleCheckId;
  label: string;
  /** `skipped` when an earlier check failed: later checks rely on what earlier ones established. */
  status: 'pass' | 'fail' | 'skipped';
  detail: string;
}

/** What every verifier answers (CLI `--json`, `POST /v1/verify`, the renderer page). */
export interface BundleVerdict {
  ok: boolean;
  verdict: 'OK' | 'INVALID';
  /** The capsule cid once the index could be read, else null. */
  capsule: string | null;
  /** The capsule's decision (the last RESULT receipt's verdict) once the receipts verified, else null. */
  decision: Verdict | null;
  /** keyid of the device that signed, once known. */
  device: string | null;
  receipts: number;
  card_url: string | null;
  checks: BundleCheck[];
  /** The first failure: a BUNDLE_* code, the place (file, or file and field), and what is wrong. */
  error?: { code: ErrorCode; where: string; message: string };
}

export interface VerifyBundleOptions {
  /** Ed25519 verification; default @noble/ed25519 (pure JS). The host passes node:crypto's, which is faster. */
  verify?: SignatureVerifier;
}

// ---------------------------------------------------------------------------------------------------------------
// Building

const encoder = new TextEncoder();
const utf8 = (text: string) => encoder.encode(text);
const json = (value: unknown) => utf8(`${JSON.stringify(value, null, 2)}\n`);

/** `receipts/001.dsse.json` for the first receipt. */
export function receiptFileName(index: number): string {
  return `receipts/${String(index + 1).padStart(3, '0')}.dsse.json`;
}
/** `keys/<64 hex digits>.pem` for a keyid `b3:<64 hex digits>`. */
export function keyFileName(keyid: string): string {
  return `keys/${keyid.slice(3)}.pem`;
}
function pluginFileName(index: number): string {
  return `plugins/${String(index + 1).padStart(3, '0')}.json`;
}

/**
 * The bundle of one capsule: the ZIP bytes (stored entries, fixed header fields, the layout above).
 * @throws TesseraError VALIDATION_FAILED when the input cannot make a valid bundle (no receipts, too many, a
 *   key id that is not a cid, a manifest whose cid is wrong).
 */
export function buildBundle(input: BundleInput): Uint8Array {
  if (input.receipts.length === 0) throw new TesseraError('VALIDATION_FAILED', 'A bundle needs at least one receipt.');
  if (input.receipts.length > MAX_BUNDLE_RECEIPTS) throw new TesseraError('VALIDATION_FAILED', `A bundle holds at most ${MAX_BUNDLE_RECEIPTS} receipts, not ${input.receipts.length}.`);
  if (input.manifests.length > MAX_BUNDLE_RECEIPTS) throw new TesseraError('VALIDATION_FAILED', `A bundle holds at most ${MAX_BUNDLE_RECEIPTS} manifests, not ${input.manifests.length}.`);
  for (const key of input.keys) if (!isCid(key.keyid)) throw new TesseraError('VALIDATION_FAILED', `Key id ${JSON.stringify(key.keyid)} is not a cid.`);
  for (const m of input.manifests) if (cidOf(m.manifest) !== m.cid) throw new TesseraError('VALIDATION_FAILED', `The manifest of ${m.name}@${m.version} does not have cid ${m.cid}.`);

  const capsuleCid = cidOf(input.capsule);
  const files = new Map<string, Uint8Array>();
  files.set('capsule.json', canonicalBytes(input.capsule));
  input.receipts.forEach((env, i) => files.set(receiptFileName(i), json(env)));
  files.set('keys/keys.json', json(input.keys.map((k) => ({ keyid: k.keyid, file: keyFileName(k.keyid), role: k.role }))));
  // Key files in name order: the canonical layout the verifier rebuilds sorts entries of a folder by name.
  const keyFiles = [...input.keys].sort((a, b) => (a.keyid < b.keyid ? -1 : a.keyid > b.keyid ? 1 : 0));
  for (const key of keyFiles) files.set(keyFileName(key.keyid), utf8(key.pem.endsWith('\n') ? key.pem : `${key.pem}\n`));
  input.manifests.forEach((m, i) => files.set(pluginFileName(i), json({ role: m.role, name: m.name, version: m.version, cid: m.cid, manifest: m.manifest })));
  files.set('log/inclusion.json', json(input.log));
  if (input.cosignature) {
    if (!input.keys.some((k) => k.role === 'witness' && input.cosignature!.signatures.some((s) => s.keyid === k.keyid))) {
      throw new TesseraError('VALIDATION_FAILED', 'A co-signed bundle needs the witness key that signed log/cosignature.json among its keys.');
    }
    files.set('log/cosignature.json', json(input.cosignature));
  }
  files.set('qr.png', input.qrPng);

  const firstReceipt = decodePayload(input.receipts[0]!);
  const witness = input.cosignature ? input.keys.find((k) => k.role === 'witness' && input.cosignature!.signatures.some((sg) => sg.keyid === k.keyid))?.keyid : undefined;
  const readme = utf8(readmeText({ capsule: capsuleCid, device: input.signer.keyid, cardUrl: input.cardUrl, firstReceipt, receipts: input.receipts.length, ...(witness ? { witness } : {}) }));
  const index: BundleIndex = {
    v: BUNDLE_VERSION,
    capsule: capsuleCid,
    device: input.signer.keyid,
    card_url: input.cardUrl,
    created_at: input.createdAt,
    files: Object.fromEntries([['README.txt', cidOfBytes(readme)], ...[...files].map(([name, bytes]) => [name, cidOfBytes(bytes)] as const)]),
  };
  const indexBytes = canonicalBytes(index);
  const signature = { payloadType: BUNDLE_INDEX_PAYLOAD_TYPE, keyid: input.signer.keyid, sig: toBase64(input.signer.sign(pae(BUNDLE_INDEX_PAYLOAD_TYPE, indexBytes))) };

  return writeZip([['README.txt', readme], ['index.json', indexBytes], ['index.sig', json(signature)], ...files]);
}

function decodePayload(env: DsseEnvelope): ReceiptPayload | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(fromBase64(env.payload))) as ReceiptPayload;
  } catch {
    return undefined;
  }
}

function readmeText(facts: { capsule: string; device: string; cardUrl: string; firstReceipt: ReceiptPayload | undefined; receipts: number; witness?: string }): string {
  const key = keyFileName(facts.device);
  return `Tessera offline bundle (${BUNDLE_VERSION})
=================================

Capsule:  ${facts.capsule}
Device:   ${facts.device}
Card:     ${facts.cardUrl}
Receipts: ${facts.receipts} (receipts/001.dsse.json is the ${facts.firstReceipt?.kind ?? 'first'} receipt)

This ZIP proves, without any network, what the device decided about the capsule.
Verify it with any of:
  tessera bundle verify THIS.zip          (exit 0 valid, 1 invalid with the reason)
  POST /v1/verify on a Tessera device      (the same verdict)
  the Verify page of the Tessera app       (runs in the browser, offline)

What is in it
-------------
index.json          the b3 (BLAKE3-256) cid of every other file; index.sig is the device's
                    Ed25519 signature over it (DSSE PAE, payloadType ${BUNDLE_INDEX_PAYLOAD_TYPE})
capsule.json        the decided input, canonical JSON (RFC 8785 over NFC)
receipts/NNN.dsse.json  the signed receipts, in chain order; each payload's "prev" is the id of
                    the receipt before it, "capsule" is the capsule cid
keys/               the public keys (SPKI PEM) and keys.json (keyid = b3 cid of the raw key)
plugins/            the manifests of the product and plugins that decided, with their cids
log/inclusion.json  the device log's signed tree head and, per receipt, an RFC 6962 (SHA-256)
                    inclusion proof: leaf = SHA-256(0x00 || receipt id as UTF-8)
qr.png              the card URL

Check it by hand
----------------
1. The capsule cid is the BLAKE3 hash of capsule.json:
     b3sum capsule.json                   -> ${facts.capsule.slice(3)}  capsule.json

2. A receipt's signature (Ed25519 over the DSSE pre-authentication encoding):
     R=receipts/001.dsse.json
     jq -r .payload "$R" | base64 -d > payload.json
     jq -r '.signatures[0].sig' "$R" | base64 -d > sig.bin
     T=$(jq -r .payloadType "$R")
     printf 'DSSEv1 %d %s %d ' "\${#T}" "$T" "$(stat -c %s payload.json)" > pae.bin
     cat payload.json >> pae.bin
     openssl pkeyutl -verify -pubin -inkey ${key} -rawin -in pae.bin -sigfile sig.bin
                                          -> Signature Verified Successfully

3. The receipt id is the BLAKE3 hash of the payload (already canonical JSON):
     b3sum payload.json                   -> the id, without its "b3:" prefix; receipt 2's
                                             payload names it in "prev"

4. Every file's hash: b3sum FILE must print the hex digits index.json records for FILE.
${facts.witness ? `
5. The cloud's co-signature (a witness) of the tree head in log/inclusion.json: the same
   commands as step 2 with R=log/cosignature.json and -inkey ${keyFileName(facts.witness)};
   its payload's "size" and "root" are those of the tree head's payload.
` : ''}
The container
-------------
A standard ZIP (unzip, zipinfo, python3 -m zipfile read it) in exactly one form, so
every byte is significant. Integers are little-endian. Entries come back to back from
offset 0 in the order listed above, then the central directory (one record per entry,
same order), then the end record, which ends the file:
  local header  50 4b 03 04 | need 20 | flags 0x0800 (UTF-8 names) | method 0
                (stored) | time 0x0000 | date 0x0021 (1980-01-01) | crc32 | size | size |
                name length | extra length 0 | name | then the file's bytes as they are
  directory     50 4b 01 02 | made by 0x0314 (Unix, 2.0) | need 20 | flags 0x0800 |
                method 0 | time 0x0000 | date 0x0021 | crc32 | size | size | name length |
                extra 0 | comment 0 | disk 0 | internal attributes 0 | external attributes
                0x81a40000 (u32: mode 0100644) | offset of the local header (u32) | name
  end record    50 4b 05 06 | disk 0 | disk 0 | entries | entries | directory
                size (u32) | directory offset (u32) | comment length 0
Fields are u16 except crc32, sizes and offsets (u32). CRC-32 is the zlib/PNG one. Names
are UTF-8 relative paths: no "..", no leading "/", no backslash, no control characters.
No compression, encryption, data descriptors, extra fields, comments or ZIP64.
`;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the ZIP strictly

/** A verification failure: which check, which code, where. */
class BundleFailure {
  constructor(
    readonly check: BundleCheckId,
    readonly code: ErrorCode,
    readonly where: string,
    readonly message: string,
  ) {}
}

const fail = (check: BundleCheckId, code: ErrorCode, where: string, message: string): never => {
  throw new BundleFailure(check, code, where, message);
};

const FIXED_NAMES = ['README.txt', 'index.json', 'index.sig', 'capsule.json', 'keys/keys.json', 'log/inclusion.json', 'qr.png'];
/** Entries a bundle may have or not: the cloud's co-signature exists once the receipts were synced. */
const OPTIONAL_NAMES = ['log/cosignature.json'];
const RECEIPT_NAME = /^receipts\/(\d{3})\.dsse\.json$/;
const KEY_NAME = /^keys\/[0-9a-f]{64}\.pem$/;
const PLUGIN_NAME = /^plugins\/(\d{3})\.json$/;

/** Where an entry sits in the layout: fixed files, then receipts, keys and plugins in number order. */
function layoutRank(name: string): [number, string] {
  const ranks: Record<string, number> = { 'README.txt': 0, 'index.json': 1, 'index.sig': 2, 'capsule.json': 3, 'keys/keys.json': 5, 'log/inclusion.json': 8, 'log/cosignature.json': 8.5, 'qr.png': 9 };
  if (name in ranks) return [ranks[name]!, ''];
  if (RECEIPT_NAME.test(name)) return [4, name];
  if (KEY_NAME.test(name)) return [6, name];
  return [7, name];
}

/** Names (already safe and unique: common/zip.ts) must be those of the layout, receipts and manifests numbered from 001. */
function checkEntries(names: readonly string[]): void {
  const entriesFail = (where: string, message: string) => fail('entries', 'BUNDLE_ENTRY_INVALID', where, message);
  const seen = new Set(names);
  for (const name of names) {
    if (!FIXED_NAMES.includes(name) && !OPTIONAL_NAMES.includes(name) && !RECEIPT_NAME.test(name) && !KEY_NAME.test(name) && !PLUGIN_NAME.test(name)) {
      entriesFail(name, `entry ${name} is not part of a Tessera bundle`);
    }
  }
  for (const name of FIXED_NAMES) if (!seen.has(name)) entriesFail(name, `the bundle has no ${name}`);
  const receipts = names.filter((n) => RECEIPT_NAME.test(n)).length;
  if (receipts === 0) entriesFail(receiptFileName(0), 'the bundle has no receipts');
  if (receipts > MAX_BUNDLE_RECEIPTS) entriesFail('receipts/', `the bundle has ${receipts} receipts; at most ${MAX_BUNDLE_RECEIPTS} are verified`);
  for (let i = 0; i < receipts; i++) if (!seen.has(receiptFileName(i))) entriesFail(receiptFileName(i), `the receipts are not numbered 001 to ${String(receipts).padStart(3, '0')}: ${receiptFileName(i)} is missing`);
  const plugins = names.filter((n) => PLUGIN_NAME.test(n)).length;
  for (let i = 0; i < plugins; i++) if (!seen.has(pluginFileName(i))) entriesFail(pluginFileName(i), `the manifests are not numbered from 001: ${pluginFileName(i)} is missing`);
}

/** The entries must be in the layout's order (the container bytes themselves are checked by common/zip.ts). */
function checkOrder(names: readonly string[]): void {
  const expected = [...names].sort((a, b) => compareRank(layoutRank(a), layoutRank(b)));
  const at = names.findIndex((name, i) => name !== expected[i]);
  if (at >= 0) fail('files', 'BUNDLE_ZIP_INVALID', names[at]!, `entry ${at + 1} is ${names[at]}, but the bundle layout puts ${expected[at]} there: the container was rebuilt in another order`);
}

function compareRank(a: [number, string], b: [number, string]): number {
  return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
}

/**
 * Runs one stage of the ZIP reader, turning its error into the failure of `check`, at the entry (or `zip`); `hint`
 * is added to a failure of the container's structure.
 */
function zipStage<T>(check: BundleCheckId, stage: () => T, hint = ''): T {
  try {
    return stage();
  } catch (err) {
    if (err instanceof ZipError) return fail(check, err.code, err.entry ?? 'zip', err.phase === 'structure' ? err.message + hint : err.message);
    throw err;
  }
}

/**
 * Said when the first entry carries what ZIP tools write and Tessera never does (compression, extra fields such as
 * timestamps, or no UTF-8 flag): the files were most likely extracted and zipped again, which no bundle survives.
 */
function rezipHint(bytes: Uint8Array): string {
  if (bytes.length < 30 || bytes[0] !== 0x50 || bytes[1] !== 0x4b || bytes[2] !== 0x03 || bytes[3] !== 0x04) return '';
  const u16 = (at: number) => bytes[at]! | (bytes[at + 1]! << 8);
  const toolMade = (u16(6) & 0x0800) === 0 || u16(8) !== 0 || u16(28) !== 0;
  return toolMade ? ' (this looks like a ZIP rebuilt by another tool: a bundle is valid only in the exact form Tessera wrote; verify the original file)' : '';
}

// ---------------------------------------------------------------------------------------------------------------
// Verifying

const decoder = new TextDecoder('utf-8', { fatal: true });

function parseJson(files: ReadonlyMap<string, Uint8Array>, name: string, check: BundleCheckId, code: ErrorCode): unknown {
  try {
    return JSON.parse(decoder.decode(files.get(name)!));
  } catch {
    return fail(check, code, name, `${name} is not UTF-8 JSON`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const SPKI_ED25519_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/** The raw 32-byte key of an Ed25519 SPKI PEM, or undefined. */
export function rawKeyFromPem(pem: string): Uint8Array | undefined {
  const m = /^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PUBLIC KEY-----\r?\n?$/.exec(pem);
  if (!m) return undefined;
  let der: Uint8Array;
  try {
    der = fromBase64(m[1]!.replace(/\r?\n/g, ''));
  } catch {
    return undefined;
  }
  if (der.length !== 44 || SPKI_ED25519_PREFIX.some((b, i) => der[i] !== b)) return undefined;
  return der.slice(12);
}

/**
 * Verifies a bundle offline. Never throws: every problem — including bytes that are not a ZIP at all — is a
 * verdict with `ok: false`, the failing check, and `error: {code, where, message}` naming the file (and field).
 * Checks run in {@link BUNDLE_CHECKS} order and stop at the first failure.
 */
export function verifyBundle(bytes: Uint8Array, options: VerifyBundleOptions = {}): BundleVerdict {
  const verify = options.verify ?? verifyEd25519Noble;
  const checks: BundleCheck[] = BUNDLE_CHECKS.map((c) => ({ id: c.id, label: c.label, status: 'skipped', detail: 'not run: an earlier check failed' }));
  const pass = (id: BundleCheckId, detail: string) => {
    const check = checks.find((c) => c.id === id)!;
    check.status = 'pass';
    check.detail = detail;
  };
  const facts: { capsule: string | null; device: string | null; card_url: string | null; receipts: number; decision: Verdict | null } = { capsule: null, device: null, card_url: null, receipts: 0, decision: null };
  try {
    if (!(bytes instanceof Uint8Array)) fail('zip', 'BUNDLE_ZIP_INVALID', 'zip', 'the bundle must be bytes');
    if (bytes.length > MAX_BUNDLE_BYTES) fail('zip', 'BUNDLE_ZIP_INVALID', 'zip', `${bytes.length} bytes is over the ${MAX_BUNDLE_BYTES}-byte limit of a bundle`);
    const directory: ZipDirectoryEntry[] = zipStage('zip', () => readZipDirectory(bytes, { maxEntries: MAX_BUNDLE_ENTRIES }), rezipHint(bytes));
    pass('zip', `${directory.length} entries, ${bytes.length} bytes, every header in the one stored ZIP form`);
    const names = directory.map((e) => e.name);
    zipStage('entries', () => checkZipNames(directory));
    checkEntries(names);
    pass('entries', names.join(', '));
    // Data is read once names are known to be safe and expected.
    const files = zipStage('files', () => readZipData(bytes, directory));
    checkOrder(names);
    pass('files', 'every CRC-32 matches and the container is byte for byte the one form of its entries, in layout order');
    facts.decision = decisionOf(verifyContents(files, verify, pass, facts));
    return { ok: true, verdict: 'OK', ...facts, checks };
  } catch (err) {
    const failure = err instanceof BundleFailure ? err : new BundleFailure('zip', 'BUNDLE_ZIP_INVALID', 'zip', `unexpected problem reading the bundle: ${(err as Error)?.message ?? String(err)}`);
    const check = checks.find((c) => c.id === failure.check)!;
    check.status = 'fail';
    check.detail = `${failure.where}: ${failure.message}`;
    return { ok: false, verdict: 'INVALID', ...facts, checks, error: { code: failure.code, where: failure.where, message: failure.message } };
  }
}

function decisionOf(payloads: readonly ReceiptPayload[]): Verdict | null {
  const result = [...payloads].reverse().find((p) => p.kind === 'RESULT');
  const verdict = result?.body['verdict'];
  return verdict === 'ACK' || verdict === 'NACK' || verdict === 'ASK' ? verdict : null;
}

function verifyContents(
  files: ReadonlyMap<string, Uint8Array>,
  verify: SignatureVerifier,
  pass: (id: BundleCheckId, detail: string) => void,
  facts: { capsule: string | null; device: string | null; card_url: string | null; receipts: number },
): ReceiptPayload[] {
  // --- index: shape, canonical bytes, the file list (its hashes are checked once its signature is).
  const indexFail = (message: string) => fail('index', 'BUNDLE_INDEX_INVALID', 'index.json', message);
  const index = parseJson(files, 'index.json', 'index', 'BUNDLE_INDEX_INVALID');
  if (!isRecord(index) || index['v'] !== BUNDLE_VERSION) indexFail(`index.json is not a ${BUNDLE_VERSION} index`);
  const idx = index as unknown as BundleIndex;
  if (!isCid(idx.capsule) || !isCid(idx.device) || typeof idx.card_url !== 'string' || typeof idx.created_at !== 'string' || !isRecord(idx.files)) {
    indexFail('index.json needs capsule and device cids, card_url, created_at and files');
  }
  const indexBytes = files.get('index.json')!;
  try {
    if (cidOfBytes(canonicalBytes(index)) !== cidOfBytes(indexBytes)) indexFail('index.json is not canonical JSON (RFC 8785), so its signature would be ambiguous');
  } catch (err) {
    if (err instanceof BundleFailure) throw err;
    indexFail('index.json cannot be canonicalized');
  }
  facts.capsule = idx.capsule;
  facts.device = idx.device;
  facts.card_url = idx.card_url;
  const listed = Object.keys(idx.files);
  const listedSet = new Set(listed);
  for (const name of files.keys()) {
    if (name === 'index.json' || name === 'index.sig') continue;
    if (!listedSet.has(name)) fail('index', 'BUNDLE_INDEX_INVALID', name, `${name} is in the bundle but not in index.json`);
  }
  for (const name of listed) {
    if (name === 'index.json' || name === 'index.sig') fail('index', 'BUNDLE_INDEX_INVALID', name, `index.json lists ${name}, which is not a hashed file of the bundle`);
    // The last receipt or manifest dropped leaves a bundle numbered without a gap: only the index knows it is missing.
    if (!files.has(name)) fail('index', 'BUNDLE_ENTRY_INVALID', name, `the bundle has no ${name}, which index.json lists`);
  }
  pass('index', `${listed.length} files listed`);

  // --- keys: keys.json lists every .pem, each keyid is the cid of the key inside.
  const keysList = parseJson(files, 'keys/keys.json', 'keys', 'BUNDLE_KEY_INVALID');
  if (!Array.isArray(keysList)) fail('keys', 'BUNDLE_KEY_INVALID', 'keys/keys.json', 'keys/keys.json must be an array of {keyid, file, role}');
  const keys = new Map<string, { raw: Uint8Array; role: string }>();
  for (const [i, entry] of (keysList as unknown[]).entries()) {
    if (!isRecord(entry) || !isCid(entry['keyid']) || entry['file'] !== keyFileName(entry['keyid'] as string) || (entry['role'] !== 'device' && entry['role'] !== 'approver' && entry['role'] !== 'witness')) {
      fail('keys', 'BUNDLE_KEY_INVALID', 'keys/keys.json', `keys/keys.json[${i}] must be {keyid: b3 cid, file: keys/<hex>.pem, role: device|approver|witness}`);
    }
    const keyid = (entry as Record<string, string>)['keyid']!;
    const file = keyFileName(keyid);
    if (!files.has(file)) fail('keys', 'BUNDLE_KEY_INVALID', file, `keys/keys.json lists ${file}, which is missing`);
    let pem: string;
    try {
      pem = decoder.decode(files.get(file)!);
    } catch {
      return fail('keys', 'BUNDLE_KEY_INVALID', file, `${file} is not text`);
    }
    const raw = rawKeyFromPem(pem);
    if (raw === undefined) fail('keys', 'BUNDLE_KEY_INVALID', file, `${file} is not an Ed25519 SPKI PEM public key`);
    if (cidOfBytes(raw!) !== keyid) fail('keys', 'BUNDLE_KEY_INVALID', file, `${file} holds key ${cidOfBytes(raw!)}, not ${keyid}`);
    if (keys.has(keyid)) fail('keys', 'BUNDLE_KEY_INVALID', 'keys/keys.json', `keys/keys.json lists ${keyid} twice`);
    keys.set(keyid, { raw: raw!, role: (entry as Record<string, string>)['role']! });
  }
  const keyFiles = new Set([...keys.keys()].map(keyFileName));
  for (const name of files.keys()) if (KEY_NAME.test(name) && !keyFiles.has(name)) fail('keys', 'BUNDLE_KEY_INVALID', name, `${name} is not listed in keys/keys.json`);
  const device = keys.get(idx.device);
  if (device === undefined || device.role !== 'device') fail('keys', 'BUNDLE_KEY_INVALID', 'keys/keys.json', `the device key ${idx.device} named by index.json is not bundled as a device key`);
  pass('keys', [...keys].map(([k, v]) => `${v.role} ${k}`).join(', '));
  const lookup: PublicKeyLookup = (keyid) => {
    const key = keys.get(keyid);
    return key ? { publicKeyRaw: key.raw } : undefined;
  };

  // --- index signature.
  const sigFail = (message: string) => fail('index_signature', 'BUNDLE_INDEX_INVALID', 'index.sig', message);
  const sig = parseJson(files, 'index.sig', 'index_signature', 'BUNDLE_INDEX_INVALID');
  if (!isRecord(sig) || sig['payloadType'] !== BUNDLE_INDEX_PAYLOAD_TYPE || typeof sig['sig'] !== 'string') sigFail(`index.sig must be {payloadType: "${BUNDLE_INDEX_PAYLOAD_TYPE}", keyid, sig}`);
  const s = sig as Record<string, string>;
  if (s['keyid'] !== idx.device) sigFail(`index.sig is by ${String(s['keyid'])}, not the device ${idx.device}`);
  let sigBytes: Uint8Array;
  try {
    sigBytes = fromBase64(s['sig']!);
  } catch {
    return sigFail('index.sig: sig is not base64');
  }
  if (!safeVerify(verify, sigBytes, pae(BUNDLE_INDEX_PAYLOAD_TYPE, indexBytes), device!.raw)) sigFail(`the device's signature over index.json does not verify: index.json or index.sig was altered`);
  pass('index_signature', `Ed25519 by ${idx.device}`);

  // --- hashes: with the index authentic, any other changed file is named by its hash.
  for (const [name, cid] of Object.entries(idx.files)) {
    const actual = cidOfBytes(files.get(name)!);
    if (actual !== cid) fail('hashes', 'BUNDLE_HASH_MISMATCH', name, `${name} has hash ${actual}, but index.json records ${String(cid)}`);
  }
  pass('hashes', `${listed.length} files, each matching its b3 hash`);

  // --- capsule.
  const capsuleBytes = files.get('capsule.json')!;
  const capsuleCid = cidOfBytes(capsuleBytes);
  if (capsuleCid !== idx.capsule) fail('capsule', 'BUNDLE_CAPSULE_MISMATCH', 'capsule.json', `capsule.json has cid ${capsuleCid}, index.json names ${idx.capsule}`);
  const capsule = parseJson(files, 'capsule.json', 'capsule', 'BUNDLE_CAPSULE_MISMATCH');
  try {
    if (cidOf(capsule) !== capsuleCid) fail('capsule', 'BUNDLE_CAPSULE_MISMATCH', 'capsule.json', 'capsule.json is not canonical JSON, so its cid is ambiguous');
  } catch (err) {
    if (err instanceof BundleFailure) throw err;
    fail('capsule', 'BUNDLE_CAPSULE_MISMATCH', 'capsule.json', 'capsule.json cannot be canonicalized');
  }
  pass('capsule', capsuleCid);

  // --- receipts: the shared chain verifier, bound to this capsule.
  const count = [...files.keys()].filter((n) => RECEIPT_NAME.test(n)).length;
  const envelopes: DsseEnvelope[] = [];
  for (let i = 0; i < count; i++) envelopes.push(parseJson(files, receiptFileName(i), 'receipts', 'BUNDLE_CHAIN_INVALID') as DsseEnvelope);
  const chain = verifyChain(envelopes, lookup, { capsule: capsuleCid, verify });
  if (!chain.ok) {
    const where = chain.index >= 0 ? `${receiptFileName(chain.index)} (${chain.field})` : 'receipts/';
    fail('receipts', 'BUNDLE_CHAIN_INVALID', where, chain.reason);
  }
  const verifiedChain = chain as Extract<typeof chain, { ok: true }>;
  facts.receipts = verifiedChain.receipts.length;
  pass('receipts', verifiedChain.receipts.map((r) => r.payload.kind).join(' → '));

  // --- manifests: each matches its cid; every cid the capsule and receipts name is bundled.
  const bundled = new Set<string>();
  for (const name of [...files.keys()].filter((n) => PLUGIN_NAME.test(n))) {
    const m = parseJson(files, name, 'plugins', 'BUNDLE_PLUGIN_MISMATCH');
    if (!isRecord(m) || !isCid(m['cid']) || !isRecord(m['manifest'])) fail('plugins', 'BUNDLE_PLUGIN_MISMATCH', name, `${name} must be {role, name, version, cid, manifest}`);
    let actual: string;
    try {
      actual = cidOf((m as Record<string, unknown>)['manifest']);
    } catch {
      return fail('plugins', 'BUNDLE_PLUGIN_MISMATCH', name, `${name}: the manifest cannot be canonicalized`);
    }
    if (actual !== (m as Record<string, unknown>)['cid']) fail('plugins', 'BUNDLE_PLUGIN_MISMATCH', name, `${name}: the manifest has cid ${actual}, the file records ${String((m as Record<string, unknown>)['cid'])}`);
    bundled.add(actual);
  }
  for (const [cid, who] of referencedManifests(capsule, verifiedChain.receipts.map((r) => r.payload))) {
    if (!bundled.has(cid)) fail('plugins', 'BUNDLE_PLUGIN_MISMATCH', 'plugins/', `${who} names manifest ${cid}, which the bundle does not hold`);
  }
  pass('plugins', `${bundled.size} manifests`);

  // --- device log: the tree head signed by the device, one proof per receipt.
  const logFail = (message: string) => fail('log', 'BUNDLE_LOG_INVALID', 'log/inclusion.json', message);
  const log = parseJson(files, 'log/inclusion.json', 'log', 'BUNDLE_LOG_INVALID');
  if (!isRecord(log) || !isRecord(log['tree_head']) || !Array.isArray(log['proofs'])) logFail('log/inclusion.json must be {tree_head, proofs}');
  const head = verifyTreeHead((log as Record<string, unknown>)['tree_head'] as DsseEnvelope, idx.device, device!.raw, verify);
  if (typeof head === 'string') logFail(`the tree head: ${head}`);
  const proofs = (log as Record<string, unknown[]>)['proofs']!;
  if (proofs.length !== verifiedChain.receipts.length) logFail(`${proofs.length} inclusion proofs for ${verifiedChain.receipts.length} receipts`);
  verifiedChain.receipts.forEach((r, i) => {
    const proof = proofs[i] as Partial<InclusionProofJson> | undefined;
    if (!isRecord(proof) || proof.receipt !== r.id) logFail(`proofs[${i}] is not the proof of receipt ${i + 1} (${r.id})`);
    const problem = inclusionProofProblem(proof, head as TreeHead);
    if (problem !== null) logFail(`proofs[${i}] (receipt ${i + 1}): ${problem}`);
  });
  pass('log', `${proofs.length} receipts in the device log of size ${(head as TreeHead).size}, head signed ${(head as TreeHead).issued_at}`);

  // --- witness: the cloud's co-signature of exactly that head, by a key bundled as the witness (issue 16 §3).
  if (!files.has('log/cosignature.json')) {
    pass('witness', 'not synced yet: no cloud co-signature in this bundle (the device log above still proves the receipts)');
  } else {
    const witnessFail = (message: string) => fail('witness', 'BUNDLE_WITNESS_INVALID', 'log/cosignature.json', message);
    const env = parseJson(files, 'log/cosignature.json', 'witness', 'BUNDLE_WITNESS_INVALID') as DsseEnvelope;
    if (!isRecord(env) || env.payloadType !== COSIGNATURE_PAYLOAD_TYPE || typeof env.payload !== 'string' || !Array.isArray(env.signatures)) witnessFail(`must be a DSSE envelope of type ${COSIGNATURE_PAYLOAD_TYPE}`);
    let payload: Uint8Array;
    try {
      payload = fromBase64(env.payload);
    } catch {
      return witnessFail('the payload is not base64');
    }
    const message = pae(env.payloadType, payload);
    const witness = env.signatures.find((sg) => isRecord(sg) && keys.get(sg.keyid)?.role === 'witness');
    if (!witness) witnessFail('no signature by a key bundled as the witness (keys/keys.json role "witness")');
    let sigOk = false;
    try {
      sigOk = safeVerify(verify, fromBase64(witness!.sig), message, keys.get(witness!.keyid)!.raw);
    } catch {
      sigOk = false;
    }
    if (!sigOk) witnessFail(`the witness ${witness!.keyid}'s signature does not verify: log/cosignature.json was altered`);
    let cosig: Partial<Cosignature>;
    try {
      cosig = JSON.parse(decoder.decode(payload)) as Partial<Cosignature>;
    } catch {
      return witnessFail('the payload is not JSON');
    }
    const h = head as TreeHead;
    if (!isRecord(cosig) || cosig.v !== COSIGNATURE_VERSION) witnessFail(`the payload is not a ${COSIGNATURE_VERSION} statement`);
    if (cosig.witness !== witness!.keyid) witnessFail(`the statement names witness ${String(cosig.witness)}, but ${witness!.keyid} signed it`);
    if (cosig.log !== idx.device || cosig.size !== h.size || cosig.root !== h.root) {
      witnessFail(`it co-signs log ${String(cosig.log)} at size ${String(cosig.size)} with root ${String(cosig.root)}, not this bundle's head (log ${idx.device}, size ${h.size}, root ${h.root})`);
    }
    pass('witness', `tree head of size ${h.size} co-signed by the cloud of tenant ${String(cosig.tenant)} (${witness!.keyid}) at ${String(cosig.witnessed_at)}`);
  }

  return verifiedChain.receipts.map((r) => r.payload);
}

function safeVerify(verify: SignatureVerifier, sig: Uint8Array, message: Uint8Array, key: Uint8Array): boolean {
  try {
    return verify(sig, message, key) === true;
  } catch {
    return false;
  }
}

/**
 * Checks a signed tree head envelope: DSSE type, the device's signature, canonical payload, shape, and that it is
 * the log of `device`. Returns the head or the problem.
 */
export function verifyTreeHead(envelope: DsseEnvelope, device: string, deviceKey: Uint8Array, verify: SignatureVerifier = verifyEd25519Noble): TreeHead | string {
  if (!isRecord(envelope) || envelope.payloadType !== TREE_HEAD_PAYLOAD_TYPE || typeof envelope.payload !== 'string' || !Array.isArray(envelope.signatures)) {
    return `must be a DSSE envelope of type ${TREE_HEAD_PAYLOAD_TYPE}`;
  }
  let payload: Uint8Array;
  try {
    payload = fromBase64(envelope.payload);
  } catch {
    return 'the payload is not base64';
  }
  const message = pae(envelope.payloadType, payload);
  const signed = envelope.signatures.some((s) => {
    if (!isRecord(s) || s.keyid !== device || typeof s.sig !== 'string') return false;
    try {
      return safeVerify(verify, fromBase64(s.sig), message, deviceKey);
    } catch {
      return false;
    }
  });
  if (!signed) return `no valid signature by the device ${device}`;
  let head: unknown;
  try {
    head = JSON.parse(decoder.decode(payload));
    if (cidOf(head) !== cidOfBytes(payload)) return 'the payload is not canonical JSON';
  } catch {
    return 'the payload is not canonical JSON';
  }
  const problem = treeHeadProblem(head);
  if (problem !== null) return problem;
  if ((head as TreeHead).log !== device) return `it is the log of ${(head as TreeHead).log}, not of the device ${device}`;
  return head as TreeHead;
}

/** Manifest cids the capsule (product) and the receipts (INTENT lock, RESULT policies) name, with who names them. */
function referencedManifests(capsule: unknown, payloads: readonly ReceiptPayload[]): Map<string, string> {
  const out = new Map<string, string>();
  if (isRecord(capsule) && isCid(capsule['product'])) out.set(capsule['product'], 'capsule.json (product)');
  payloads.forEach((p, i) => {
    const lock = p.kind === 'INTENT' ? p.body['lock'] : undefined;
    if (isRecord(lock)) for (const [name, cid] of Object.entries(lock)) if (isCid(cid)) out.set(cid, `${receiptFileName(i)} (body.lock.${name})`);
    const policies = p.kind === 'RESULT' ? p.body['policies'] : undefined;
    if (Array.isArray(policies)) policies.forEach((pol, j) => isRecord(pol) && isCid(pol['cid']) && out.set(pol['cid'], `${receiptFileName(i)} (body.policies[${j}].cid)`));
  });
  return out;
}
