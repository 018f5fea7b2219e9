/**
 * Receipts, device → cloud, provably complete (issue 16 §3; common/cloud.ts {@link ReceiptUpload}): the cloud keeps
 * a copy of every device's log — its receipts, in log order, and the perfect subtrees of its RFC 6962 Merkle tree —
 * and accepts an upload only when it extends that copy. Owns `device_logs`, `cloud_receipts`, `cloud_capsules`,
 * `cloud_log_nodes` and `fork_evidence` (migration 2).
 *
 * ## What an upload must prove (else nothing of it is stored)
 * - It starts where the accepted copy ends (`from` = accepted size), else LOG_GAP with `details.accepted_size`. A
 *   retry of the batch the cloud accepted last (its answer was lost) is answered with the current head instead.
 * - Every receipt: a DSSE envelope of a receipt payload signed by the uploading device's key, canonical JSON whose
 *   `device` is that key, id = cid of the payload, and its `prev` the last receipt of its capsule's chain from this
 *   device (stored or earlier in the upload; null only for an INTENT starting a new capsule), `issued_at` never
 *   earlier than its predecessor's. Else RECEIPT_INVALID with `details.index` (position in the upload).
 * - The device's signed tree head is of size `from + n`, and its root is the root the cloud computes from its stored
 *   subtrees plus the new leaves; the consistency proof from the accepted (size, root) verifies. Else LOG_FORKED:
 *   the refused head, its proof and the accepted head go to `fork_evidence`, and an alert is raised — in their own
 *   transaction, after the refused one.
 *
 * ## One transaction per accepted upload
 * Receipts, new subtrees, capsule heads, the `app.cloud.ingestHooks` (entitlements, leases), the co-signature and the
 * `device_logs` row commit together; a crash leaves the copy at the previous head. Two uploads of one device
 * serialize on the device's `device_logs` row (`SELECT … FOR UPDATE`). Stateless checks (signatures, shapes, ids)
 * run before the transaction so that the lock is held only for the reads and writes.
 *
 * Storage is O(1) rows per receipt (a receipt row, about one subtree row) written with one multi-row INSERT per table
 * per upload; heads and proofs read O(log n) subtrees by key. Leaf hashes are not stored: a leaf is
 * SHA-256(0x00 ‖ receipt id), recomputed from the receipt row.
 */
import type { FastifyInstance } from 'fastify';
import { COSIGNATURE_PAYLOAD_TYPE, COSIGNATURE_VERSION, MAX_UPLOAD_RECEIPTS } from '../common/cloud.js';
import type { AcceptedHead, CloudInclusion, Cosignature, ReceiptUpload } from '../common/cloud.js';
import { canonicalBytes, canonicalize } from '../common/canonical.js';
import { cidOfBytes, isCid } from '../common/cid.js';
import { fromBase64, pae, parseEnvelope } from '../common/dsse.js';
import type { DsseEnvelope } from '../common/dsse.js';
import { TesseraError, isTesseraError } from '../common/errors.js';
import {
  TREE_HEAD_PAYLOAD_TYPE,
  hashFromHex,
  hashToHex,
  inclusionProof,
  leafHash,
  nodeHash,
  receiptLeaf,
  treeHead,
  treeHeadProblem,
  verifyConsistency,
} from '../common/merkle.js';
import type { PerfectSubtree, TreeHead } from '../common/merkle.js';
import { CHAIN_START_KINDS, RECEIPT_KINDS, RECEIPT_PAYLOAD_TYPE, RECEIPT_VERSION } from '../common/receipt.js';
import type { ReceiptPayload } from '../common/receipt.js';
import { installFastDigests } from '../runtime/digests.js';
import { readPublicKey, signEnvelope, verifyEd25519 } from '../runtime/keys/index.js';
import type { AcceptedReceipt, CloudContext } from './app.js';
import { tenantOf } from './app.js';
import type { Sql } from './db.js';
import { envelopeSchema } from '../host/schemas.js';
import { tenantKey } from './feed.js';

/** A receipt of an upload that passed the stateless checks. */
interface CheckedReceipt extends AcceptedReceipt {
  leaf: Uint8Array;
}

/** What the transaction found about an upload that does not extend the accepted log. */
interface ForkFinding {
  reason: string;
  accepted: { size: number; root: string | null; head: DsseEnvelope | null };
  computedRoot: string | null;
}

interface LogRow {
  size: number;
  root: string | null;
  head: DsseEnvelope | null;
  cosignature: DsseEnvelope | null;
}

const ZERO = new Uint8Array(32);
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const RECEIPT_FIELDS = new Set(['body', 'capsule', 'device', 'issued_at', 'kind', 'prev', 'subject', 'v']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function invalid(index: number, field: string, problem: string): TesseraError {
  return new TesseraError('RECEIPT_INVALID', `Receipt ${index} of the upload (${field}): ${problem}. Nothing of the upload was stored.`, { details: { index, field } });
}

/** The shape problem of a parsed receipt payload (the rules of common/receipt.ts verifyChain), or null. */
function payloadProblem(p: ReceiptPayload, device: string): [string, string] | null {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return ['payload', 'must be a JSON object'];
  for (const k of Object.keys(p)) if (!RECEIPT_FIELDS.has(k)) return [k, 'is not a receipt field'];
  if (p.v !== RECEIPT_VERSION) return ['v', `must be "${RECEIPT_VERSION}"`];
  if (!(RECEIPT_KINDS as readonly string[]).includes(p.kind)) return ['kind', `must be one of ${RECEIPT_KINDS.join(', ')}`];
  if (!isCid(p.capsule)) return ['capsule', 'must be a b3: cid'];
  if (p.prev !== null && !isCid(p.prev)) return ['prev', 'must be a receipt id or null'];
  if (typeof p.subject !== 'string' || p.subject === '') return ['subject', 'must be a non-empty string'];
  if (p.body === null || typeof p.body !== 'object' || Array.isArray(p.body)) return ['body', 'must be a JSON object'];
  if (typeof p.issued_at !== 'string' || !ISO_UTC.test(p.issued_at) || Number.isNaN(Date.parse(p.issued_at))) return ['issued_at', 'must be an ISO-8601 UTC time'];
  if (p.device !== device) return ['device', `names ${String(p.device)}, not the uploading device ${device}`];
  return null;
}

/**
 * The checks that need no stored state: envelope shape, the device's signature (node:crypto Ed25519 over the DSSE
 * PAE), payload shape, canonical bytes (so the id, the cid of the signed bytes, is `receiptId(payload)`), the device
 * field, unique ids. @throws TesseraError RECEIPT_INVALID naming the first failing receipt.
 */
export function checkReceipts(envelopes: readonly unknown[], device: string, publicKeyRaw: Uint8Array, from: number): CheckedReceipt[] {
  const out: CheckedReceipt[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < envelopes.length; i++) {
    let env: DsseEnvelope;
    try {
      env = parseEnvelope(envelopes[i]);
    } catch (err) {
      throw invalid(i, 'envelope', isTesseraError(err) ? err.message : 'not a DSSE envelope');
    }
    if (env.payloadType !== RECEIPT_PAYLOAD_TYPE) throw invalid(i, 'payloadType', `"${env.payloadType}" is not ${RECEIPT_PAYLOAD_TYPE}`);
    const bytes = fromBase64(env.payload);
    const sig = env.signatures.find((s) => s.keyid === device);
    if (sig === undefined || !verifyEd25519(fromBase64(sig.sig), pae(env.payloadType, bytes), publicKeyRaw)) {
      throw invalid(i, 'signature', `no valid signature by the uploading device ${device}`);
    }
    let text: string;
    let payload: ReceiptPayload;
    try {
      text = utf8.decode(bytes);
      payload = JSON.parse(text) as ReceiptPayload;
    } catch {
      throw invalid(i, 'payload', 'not UTF-8 JSON');
    }
    const problem = payloadProblem(payload, device);
    if (problem !== null) throw invalid(i, problem[0], problem[1]);
    let canonical: boolean;
    try {
      canonical = canonicalize(payload) === text;
    } catch {
      canonical = false;
    }
    if (!canonical) throw invalid(i, 'payload', 'the signed bytes are not canonical JSON (RFC 8785 over NFC), so its id would not be the cid of its payload');
    const id = cidOfBytes(bytes);
    if (seen.has(id)) throw invalid(i, 'id', `${id} appears twice in the upload`);
    seen.add(id);
    out.push({ id, index: from + i, envelope: env, payload, leaf: leafHash(receiptLeaf(id)) });
  }
  return out;
}

/** Verifies the device's signed tree head envelope. @throws TesseraError SIGNATURE_INVALID or VALIDATION_FAILED. */
export function checkHead(envelope: unknown, device: string, publicKeyRaw: Uint8Array, size: number): { head: TreeHead; envelope: DsseEnvelope } {
  let env: DsseEnvelope;
  try {
    env = parseEnvelope(envelope);
  } catch (err) {
    throw new TesseraError('SIGNATURE_INVALID', `The upload's head: ${isTesseraError(err) ? err.message : 'not a DSSE envelope'}.`);
  }
  const bytes = fromBase64(env.payload);
  const sig = env.signatures.find((s) => s.keyid === device);
  if (env.payloadType !== TREE_HEAD_PAYLOAD_TYPE) throw new TesseraError('VALIDATION_FAILED', `The upload's head has payloadType "${env.payloadType}", not ${TREE_HEAD_PAYLOAD_TYPE}.`);
  if (sig === undefined || !verifyEd25519(fromBase64(sig.sig), pae(env.payloadType, bytes), publicKeyRaw)) {
    throw new TesseraError('SIGNATURE_INVALID', `The upload's tree head has no valid signature by the uploading device ${device}.`);
  }
  let head: TreeHead;
  try {
    head = JSON.parse(utf8.decode(bytes)) as TreeHead;
  } catch {
    throw new TesseraError('VALIDATION_FAILED', "The upload's tree head is not JSON.");
  }
  const problem = treeHeadProblem(head);
  if (problem !== null) throw new TesseraError('VALIDATION_FAILED', `The upload's tree head: ${problem}.`);
  if (head.log !== device) throw new TesseraError('VALIDATION_FAILED', `The upload's tree head is of log ${head.log}, not of the uploading device ${device}.`);
  if (head.size !== size) throw new TesseraError('VALIDATION_FAILED', `The upload's tree head has size ${head.size}; from + receipts is ${size}.`);
  return { head, envelope: env };
}

/** The (level, index) keys a computation over a {@link PerfectSubtree} asks for (values do not steer RFC 6962's recursion). */
function subtreesAskedBy(compute: (perfect: PerfectSubtree) => unknown): Array<[number, number]> {
  const keys = new Map<string, [number, number]>();
  compute((level, index) => {
    keys.set(`${level}:${index}`, [level, index]);
    return ZERO;
  });
  return [...keys.values()];
}

/** Reads stored subtrees by key: leaves from the receipt rows, higher levels from cloud_log_nodes. Map key `level:index`. */
async function loadSubtrees(sql: Sql, tenant: string, device: string, keys: ReadonlyArray<[number, number]>): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const leaves = keys.filter(([level]) => level === 0).map(([, index]) => index);
  const nodes = keys.filter(([level]) => level > 0);
  if (leaves.length > 0) {
    const rows = await sql.query<{ idx: number; id: string }>('SELECT idx, id FROM cloud_receipts WHERE tenant = $1 AND device = $2 AND idx = ANY($3::bigint[])', [tenant, device, leaves]);
    for (const r of rows) out.set(`0:${r.idx}`, leafHash(receiptLeaf(r.id)));
  }
  if (nodes.length > 0) {
    // Both columns as `= ANY` so the primary key drives the scan (a join with unnest makes the planner walk every
    // subtree of the device: O(n) per upload); the cross product it returns is trimmed to the keys asked for.
    const rows = await sql.query<{ level: number; idx: number; hash: Uint8Array }>(
      'SELECT level, idx, hash FROM cloud_log_nodes WHERE tenant = $1 AND device = $2 AND level = ANY($3::smallint[]) AND idx = ANY($4::bigint[])',
      [tenant, device, [...new Set(nodes.map(([l]) => l))], [...new Set(nodes.map(([, i]) => i))]],
    );
    const wanted = new Set(nodes.map(([l, i]) => `${l}:${i}`));
    for (const r of rows) if (wanted.has(`${r.level}:${r.idx}`)) out.set(`${r.level}:${r.idx}`, new Uint8Array(r.hash));
  }
  for (const [level, index] of keys) {
    if (!out.has(`${level}:${index}`)) throw new TesseraError('INTERNAL', `The cloud's copy of log ${device} is missing subtree (${level}, ${index}); check the database.`);
  }
  return out;
}

const fromMap = (map: Map<string, Uint8Array>): PerfectSubtree => (level, index) => {
  const hash = map.get(`${level}:${index}`);
  if (hash === undefined) throw new TesseraError('INTERNAL', `Subtree (${level}, ${index}) was not loaded.`);
  return hash;
};

const accepted = (row: LogRow | undefined): AcceptedHead => ({ size: row?.size ?? 0, root: row?.root ?? null, cosignature: row?.cosignature ?? null });

/** The accepted head of a device's log (size 0 and nulls before its first upload). */
export async function acceptedHead(sql: Sql, tenant: string, device: string): Promise<AcceptedHead> {
  const rows = await sql.query<LogRow>('SELECT size, root, head, cosignature FROM device_logs WHERE tenant = $1 AND device = $2', [tenant, device]);
  return accepted(rows[0]);
}

/**
 * Ingests one upload of device `device` of `tenant` (the caller authenticated it): see the module comment for what
 * it checks. Returns the accepted (co-signed) head.
 * @throws TesseraError LOG_GAP, LOG_FORKED, RECEIPT_INVALID, SIGNATURE_INVALID, VALIDATION_FAILED.
 */
export async function ingestUpload(cloud: CloudContext, tenant: string, device: string, upload: ReceiptUpload): Promise<AcceptedHead> {
  const { db } = cloud;
  const n = upload.receipts.length;
  if (n > MAX_UPLOAD_RECEIPTS) throw new TesseraError('VALIDATION_FAILED', `An upload holds at most ${MAX_UPLOAD_RECEIPTS} receipts, not ${n}.`);
  const keyRows = await db.query<{ public_key_pem: string }>('SELECT public_key_pem FROM devices WHERE tenant = $1 AND device = $2', [tenant, device]);
  if (keyRows.length === 0) throw new TesseraError('DEVICE_UNKNOWN', `Device ${device} is not enrolled in tenant ${tenant}.`);
  const publicKeyRaw = readPublicKey(keyRows[0]!.public_key_pem).publicKeyRaw;
  const size = upload.from + n;
  const { head, envelope: headEnvelope } = checkHead(upload.head, device, publicKeyRaw, size);
  const checked = checkReceipts(upload.receipts, device, publicKeyRaw, upload.from);
  const proof = upload.consistency.map((h) => hashFromHex(h));
  if (proof.some((h) => h === undefined)) throw new TesseraError('VALIDATION_FAILED', 'consistency must be a list of 64-digit lowercase hex hashes.');

  const outcome = await db.tx(async (sql): Promise<{ head: AcceptedHead } | { fork: ForkFinding }> => {
    // The device's row, created on its first upload, is the lock that serializes its uploads.
    await sql.query('INSERT INTO device_logs (tenant, device) VALUES ($1, $2) ON CONFLICT DO NOTHING', [tenant, device]);
    const state = (await sql.query<LogRow>('SELECT size, root, head, cosignature FROM device_logs WHERE tenant = $1 AND device = $2 FOR UPDATE', [tenant, device]))[0]!;
    if (upload.from !== state.size) {
      if (await isRetryOfLast(sql, tenant, device, state, upload.from, checked, head)) return { head: accepted(state) };
      throw new TesseraError('LOG_GAP', `The upload starts at leaf ${upload.from}; the cloud holds ${state.size} receipts of this device's log. Upload from ${state.size}.`, { details: { accepted_size: state.size } });
    }
    const fork = (reason: string, computedRoot: string | null) => ({ fork: { reason, accepted: { size: state.size, root: state.root, head: state.head }, computedRoot } });

    // The new root from the stored frontier of the accepted tree plus the new leaves (RFC 6962 appends: each new
    // leaf that completes a perfect subtree combines it with its left sibling, a frontier subtree or a new one).
    const memory = state.size > 0 ? await loadSubtrees(sql, tenant, device, subtreesAskedBy((p) => treeHead(state.size, p))) : new Map<string, Uint8Array>();
    const nodes: Array<{ level: number; idx: number; hash: string }> = [];
    for (const r of checked) {
      let hash = r.leaf;
      memory.set(`0:${r.index}`, hash);
      for (let level = 0, i = r.index; i % 2 === 1; level++, i = (i - 1) / 2) {
        hash = nodeHash(memory.get(`${level}:${i - 1}`)!, hash);
        memory.set(`${level + 1}:${(i - 1) / 2}`, hash);
        nodes.push({ level: level + 1, idx: (i - 1) / 2, hash: hashToHex(hash) });
      }
    }
    const root = hashToHex(treeHead(size, fromMap(memory)));
    if (root !== head.root) return fork(`the device's head of size ${size} has root ${head.root}; the accepted ${state.size} receipts plus the ${n} uploaded give ${root}`, root);
    const fromRoot = state.size === 0 ? ZERO : hashFromHex(state.root)!;
    if (!verifyConsistency(state.size, size, proof as Uint8Array[], fromRoot, hashFromHex(root)!)) {
      return fork(`the consistency proof from the accepted head (size ${state.size}) to the new head (size ${size}) does not verify`, root);
    }
    if (n === 0) return { head: accepted(state) };

    await checkChains(sql, tenant, device, checked);
    await writeUpload(sql, tenant, device, checked, nodes);
    for (const hook of cloud.ingestHooks) await hook(sql, { tenant, device }, checked);

    const key = await tenantKey(sql, tenant);
    const statement: Cosignature = { v: COSIGNATURE_VERSION, log: device, size, root, tenant, witness: key.keyid, witnessed_at: new Date(cloud.clock()).toISOString() };
    const cosignature = signEnvelope(COSIGNATURE_PAYLOAD_TYPE, canonicalBytes(statement), [key]);
    await sql.query('UPDATE device_logs SET size = $3, root = $4, head = $5::jsonb, cosignature = $6::jsonb, accepted_at = now() WHERE tenant = $1 AND device = $2', [
      tenant, device, size, root, JSON.stringify(headEnvelope), JSON.stringify(cosignature),
    ]);
    return { head: { size, root, cosignature } };
  }).catch((err: unknown) => {
    // A receipt id stored already (by another device of the tenant, or a replay the chain rules did not catch).
    if ((err as { code?: unknown }).code === '23505') throw new TesseraError('RECEIPT_INVALID', `A receipt of the upload is stored already: ${(err as Error).message}. Nothing of the upload was stored.`, { details: { index: -1, field: 'id' } });
    throw err;
  });
  if ('head' in outcome) return outcome.head;

  // Refused as a fork: keep the evidence and raise an alert, outside the transaction that stored nothing.
  const { fork } = outcome;
  const evidenceId = await db.tx(async (sql) => {
    const rows = await sql.query<{ id: number }>(
      `INSERT INTO fork_evidence (tenant, device, reason, accepted_size, accepted_root, accepted_head, refused_head, computed_root, consistency, upload_from, receipt_ids)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9::jsonb, $10, $11::jsonb) RETURNING id`,
      [tenant, device, fork.reason, fork.accepted.size, fork.accepted.root, fork.accepted.head === null ? null : JSON.stringify(fork.accepted.head), JSON.stringify(headEnvelope), fork.computedRoot, JSON.stringify(upload.consistency), upload.from, JSON.stringify(checked.map((r) => r.id))],
    );
    const id = rows[0]!.id;
    const evidence = { fork_evidence: id, accepted: { size: fork.accepted.size, root: fork.accepted.root }, refused: { size: head.size, root: head.root, issued_at: head.issued_at }, computed_root: fork.computedRoot };
    await sql.query('INSERT INTO alerts (tenant, device, code, message, evidence) VALUES ($1, $2, $3, $4, $5::jsonb)', [
      tenant, device, 'LOG_FORKED', `Device ${device} sent a tree head that does not extend the log the cloud accepted: ${fork.reason}. Its log was rewritten or forked; nothing was stored.`, JSON.stringify(evidence),
    ]);
    return id;
  });
  cloud.logger.warn('cloud refused a forked device log', { tenant, device, reason: fork.reason, evidence: evidenceId });
  throw new TesseraError('LOG_FORKED', `The tree head is not an append-only extension of the log the cloud accepted (${fork.reason}). Nothing was stored; the evidence is kept (fork evidence ${evidenceId}) and an operator alerted.`, {
    details: { accepted_size: fork.accepted.size, accepted_root: fork.accepted.root, evidence: evidenceId },
  });
}

/** A retry of the upload the cloud accepted last: it ends at the accepted size with the accepted root and the same receipts. */
async function isRetryOfLast(sql: Sql, tenant: string, device: string, state: LogRow, from: number, checked: readonly CheckedReceipt[], head: TreeHead): Promise<boolean> {
  if (checked.length === 0 || from + checked.length !== state.size || head.root !== state.root) return false;
  const rows = await sql.query<{ id: string }>('SELECT id FROM cloud_receipts WHERE tenant = $1 AND device = $2 AND idx >= $3 AND idx < $4 ORDER BY idx', [tenant, device, from, state.size]);
  return rows.length === checked.length && rows.every((r, i) => r.id === checked[i]!.id);
}

/**
 * Chain links per capsule: each receipt's `prev` is the last receipt of its capsule from this device (stored, or
 * earlier in the upload); null only for an INTENT or a PROPOSAL (an agent's, issue 17) that starts a capsule;
 * `issued_at` never decreases along a chain.
 */
async function checkChains(sql: Sql, tenant: string, device: string, checked: readonly CheckedReceipt[]): Promise<void> {
  const capsules = [...new Set(checked.map((r) => r.payload.capsule))];
  const rows = await sql.query<{ capsule: string; head: string; head_issued_at: string }>(
    'SELECT capsule, head, head_issued_at FROM cloud_capsules WHERE tenant = $1 AND device = $2 AND capsule = ANY($3::text[])',
    [tenant, device, capsules],
  );
  const heads = new Map(rows.map((r) => [r.capsule, { head: r.head, at: r.head_issued_at }]));
  checked.forEach((r, i) => {
    const { capsule, prev, kind, issued_at: at } = r.payload;
    const before = heads.get(capsule);
    if (prev === null) {
      if (!CHAIN_START_KINDS.includes(kind)) throw invalid(i, 'prev', `a ${kind} receipt must name the receipt before it; only an INTENT or a PROPOSAL starts a chain`);
      if (before !== undefined) throw invalid(i, 'prev', `capsule ${capsule} already has receipts up to ${before.head}; a second ${kind} with prev null forks its chain`);
    } else {
      if (before === undefined) throw invalid(i, 'prev', `names ${prev}, but capsule ${capsule} has no receipt from this device before it`);
      if (before.head !== prev) throw invalid(i, 'prev', `names ${prev}, but the last receipt of capsule ${capsule} is ${before.head}`);
      if (Date.parse(at) < Date.parse(before.at)) throw invalid(i, 'issued_at', `${at} is before ${before.at}, the time of the receipt it follows`);
    }
    heads.set(capsule, { head: r.id, at });
  });
}

/** The upload's rows: one multi-row INSERT per table (JSON record sets: one parameter each, same SQL on both drivers). */
async function writeUpload(sql: Sql, tenant: string, device: string, checked: readonly CheckedReceipt[], nodes: ReadonlyArray<{ level: number; idx: number; hash: string }>): Promise<void> {
  const receipts = checked.map((r) => ({ idx: r.index, id: r.id, envelope: r.envelope, kind: r.payload.kind, capsule: r.payload.capsule, issued_at: r.payload.issued_at }));
  await sql.query(
    `INSERT INTO cloud_receipts (tenant, device, idx, id, envelope, kind, capsule, issued_at)
     SELECT $1, $2, x.idx, x.id, x.envelope, x.kind, x.capsule, x.issued_at
     FROM jsonb_to_recordset($3::jsonb) AS x(idx BIGINT, id TEXT, envelope JSONB, kind TEXT, capsule TEXT, issued_at TIMESTAMPTZ)`,
    [tenant, device, JSON.stringify(receipts)],
  );
  if (nodes.length > 0) {
    await sql.query(
      `INSERT INTO cloud_log_nodes (tenant, device, level, idx, hash)
       SELECT $1, $2, x.level, x.idx, decode(x.hash, 'hex') FROM jsonb_to_recordset($3::jsonb) AS x(level SMALLINT, idx BIGINT, hash TEXT)`,
      [tenant, device, JSON.stringify(nodes)],
    );
  }
  const last = new Map<string, { capsule: string; head: string; head_issued_at: string; length: number }>();
  for (const r of checked) {
    const entry = last.get(r.payload.capsule);
    last.set(r.payload.capsule, { capsule: r.payload.capsule, head: r.id, head_issued_at: r.payload.issued_at, length: (entry?.length ?? 0) + 1 });
  }
  await sql.query(
    `INSERT INTO cloud_capsules (tenant, device, capsule, head, head_issued_at, length)
     SELECT $1, $2, x.capsule, x.head, x.head_issued_at, x.length FROM jsonb_to_recordset($3::jsonb) AS x(capsule TEXT, head TEXT, head_issued_at TEXT, length INTEGER)
     ON CONFLICT (tenant, device, capsule) DO UPDATE SET head = EXCLUDED.head, head_issued_at = EXCLUDED.head_issued_at, length = cloud_capsules.length + EXCLUDED.length`,
    [tenant, device, JSON.stringify([...last.values()])],
  );
}

/**
 * The inclusion proof of receipt `id` of `tenant` against the co-signed head of its device's log.
 * @throws TesseraError NOT_FOUND when the tenant holds no such receipt.
 */
export async function inclusionOf(sql: Sql, tenant: string, id: string): Promise<CloudInclusion> {
  const rows = await sql.query<{ device: string; idx: number; size: number; root: string; cosignature: DsseEnvelope }>(
    'SELECT r.device, r.idx, l.size, l.root, l.cosignature FROM cloud_receipts r JOIN device_logs l ON l.tenant = r.tenant AND l.device = r.device WHERE r.tenant = $1 AND r.id = $2',
    [tenant, id],
  );
  const row = rows[0];
  if (!row) throw new TesseraError('NOT_FOUND', `No receipt ${id} was uploaded to this tenant.`);
  const subtrees = await loadSubtrees(sql, tenant, row.device, subtreesAskedBy((p) => inclusionProof(row.idx, row.size, p)));
  const path = inclusionProof(row.idx, row.size, fromMap(subtrees));
  return { receipt: id, log: row.device, index: row.idx, size: row.size, leaf_hash: hashToHex(leafHash(receiptLeaf(id))), path: path.map(hashToHex), root: row.root, cosignature: row.cosignature };
}

// ---------------------------------------------------------------------------------------------------------------
// Routes

const errorRef = { $ref: 'Error#' } as const;
const hex = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const cid = { type: 'string', pattern: '^b3:[0-9a-f]{64}$' } as const;
const envelope = envelopeSchema;
const acceptedHeadSchema = {
  type: 'object',
  required: ['size', 'root', 'cosignature'],
  properties: { size: { type: 'integer' }, root: { anyOf: [hex, { type: 'null' }] }, cosignature: { anyOf: [envelope, { type: 'null' }] } },
} as const;
const device = [{ device: [] as string[] }];
const either: Array<Record<string, string[]>> = [{ device: [] }, { bearer: [] }];

/** The receipt routes: `GET /v1/sync/head`, `POST /v1/sync/receipts`, `GET /v1/receipts/:id/inclusion`, `GET /v1/alerts`. */
export async function receiptRoutes(app: FastifyInstance): Promise<void> {
  // Every upload hashes its receipts (BLAKE3 ids, SHA-256 leaves): the fast implementations, as the runtime does.
  await installFastDigests();
  const cloud = app.cloud;
  const deviceOf = (request: { caller: unknown }) => {
    const caller = request.caller as { kind: string; tenant: string; device: string } | null;
    if (caller?.kind !== 'device') throw new TesseraError('FORBIDDEN', 'This route is for devices (signed requests) only.');
    return caller;
  };

  app.get('/v1/sync/head', {
    config: { cloudAccess: ['device'] },
    schema: {
      summary: "The cloud's accepted head of the calling device's log, co-signed (size 0 and nulls before the first upload).",
      tags: ['sync'],
      security: device,
      response: { 200: acceptedHeadSchema, 401: errorRef, 403: errorRef },
    },
  }, async (request) => {
    const caller = deviceOf(request);
    return acceptedHead(cloud.db, caller.tenant, caller.device);
  });

  app.post<{ Body: ReceiptUpload }>('/v1/sync/receipts', {
    config: { cloudAccess: ['device'] },
    schema: {
      summary: "Uploads the device's receipts from the accepted size on, with its signed tree head and a consistency proof; answers the new co-signed head.",
      description: 'Every receipt signature, id, device field and chain link is checked and the new root recomputed from the stored log; LOG_GAP (details.accepted_size), LOG_FORKED (evidence kept, alert raised), RECEIPT_INVALID (details.index). A retry of the last accepted batch is answered with the current head.',
      tags: ['sync'],
      security: device,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['from', 'receipts', 'head', 'consistency'],
        properties: {
          from: { type: 'integer', minimum: 0 },
          receipts: { type: 'array', maxItems: MAX_UPLOAD_RECEIPTS, items: { type: 'object' } },
          head: { type: 'object' },
          consistency: { type: 'array', maxItems: 128, items: { type: 'string' } },
        },
      },
      response: { 200: acceptedHeadSchema, 400: errorRef, 401: errorRef, 403: errorRef, 409: errorRef, 413: errorRef, 422: errorRef, 429: errorRef },
    },
  }, async (request) => {
    const caller = deviceOf(request);
    return ingestUpload(cloud, caller.tenant, caller.device, request.body);
  });

  app.get<{ Params: { id: string } }>('/v1/receipts/:id/inclusion', {
    config: { cloudAccess: ['admin', 'device'] },
    schema: {
      summary: "Proof that a receipt is in its device's log as the cloud accepted it, against the co-signed head.",
      description: 'Leaf = SHA-256(0x00 || UTF-8 bytes of the receipt id); RFC 6962 audit path, nearest sibling first; verify with common/merkle.ts verifyInclusion and the co-signature with the tenant cloud key.',
      tags: ['receipts'],
      security: either,
      params: { type: 'object', required: ['id'], properties: { id: cid } },
      response: {
        200: {
          type: 'object',
          required: ['receipt', 'log', 'index', 'size', 'leaf_hash', 'path', 'root', 'cosignature'],
          properties: { receipt: cid, log: cid, index: { type: 'integer' }, size: { type: 'integer' }, leaf_hash: hex, path: { type: 'array', items: hex }, root: hex, cosignature: envelope },
        },
        400: errorRef,
        401: errorRef,
        403: errorRef,
        404: errorRef,
      },
    },
  }, async (request) => inclusionOf(cloud.db, tenantOf(request), request.params.id));

  app.get<{ Querystring: { limit: number; before?: number } }>('/v1/alerts', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: "The tenant's alerts, newest first (forked logs, double spends).",
      tags: ['alerts'],
      security: [{ bearer: [] as string[] }],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, before: { type: 'integer', minimum: 1, description: 'Only alerts with an id below this (paging).' } },
      },
      response: {
        200: {
          type: 'object',
          required: ['alerts'],
          properties: {
            alerts: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'device', 'code', 'message', 'created_at', 'evidence'],
                properties: { id: { type: 'integer' }, device: { type: ['string', 'null'] }, code: { type: 'string' }, message: { type: 'string' }, created_at: { type: 'string' }, evidence: {} },
              },
            },
          },
        },
        400: errorRef,
        401: errorRef,
        403: errorRef,
      },
    },
  }, async (request) => {
    const rows = await cloud.db.query<{ id: number; device: string | null; code: string; message: string; created_at: Date; evidence: unknown }>(
      'SELECT id, device, code, message, created_at, evidence FROM alerts WHERE tenant = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3',
      [tenantOf(request), request.query.before ?? null, request.query.limit],
    );
    return { alerts: rows.map((r) => ({ ...r, created_at: r.created_at.toISOString() })) };
  });
}
