/**
 * The receipt store (seed 004 §3–§4; DESIGN.md "Formats → Receipt"): capsules, their signed receipt chains,
 * the public keys that signed them, the manifests of the plugins and products that decided, replay nonces,
 * permits (the write-before-effect record) and consent requests. Owns the `receipt_*` tables.
 *
 * ## Interface for other modules (bundle builder, card, verify, device log)
 * - {@link ReceiptStore.capsule}`(cid)` → {@link CapsuleRecord} | undefined
 * - {@link ReceiptStore.receipts}`(capsuleCid)` → `DsseEnvelope[]` in chain order (INTENT first)
 * - {@link ReceiptStore.receiptIds}`(capsuleCid)` → the ids (cids of the payloads), same order
 * - {@link ReceiptStore.publicKeys}`(capsuleCid)` → `[{keyid, publicKeyPem, role}]` of every key that signed
 *   a receipt of the capsule (the device) or an embedded consent decision (approvers)
 * - {@link ReceiptStore.manifests}`(capsuleCid)` → the product manifest and the manifests of the plugins
 *   that decided, each with its cid (`cidOf(manifest)`)
 * - {@link ReceiptStore.onReceipts}`(listener)`: called synchronously with the receipts of every append, inside
 *   the write transaction; a listener may write to the same database (its rows commit or roll back with the
 *   receipts) and must do no other I/O. The device log registers its `appendNew(receiptIds)` here.
 *
 * Writes: {@link ReceiptStore.transaction} wraps one request's writes (better-sqlite3 transactions nest as
 * savepoints); {@link ReceiptStore.appendReceipt} signs the next receipt of a chain with the device key.
 */
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError } from '../../common/errors.js';
import { cidOfBytes } from '../../common/cid.js';
import { RECEIPT_PAYLOAD_TYPE, RECEIPT_VERSION, receiptBytes } from '../../common/receipt.js';
import type { Capsule, JsonObject, ReceiptKind, ReceiptPayload, Verdict } from '../../common/receipt.js';
import type { Disposable } from '../lifecycle/index.js';
import type { SigningKey } from '../keys/index.js';
import { signEnvelope } from '../keys/index.js';
import type { Migration, Store } from '../store/index.js';

/** Where a capsule's decision stands. `pending` waits for consent approvals. */
export type CapsuleState = 'decided' | 'pending' | 'rejected';

export interface CapsuleRecord {
  cid: string;
  capsule: Capsule;
  /** Current verdict: ASK while pending, ACK after k approvals, NACK after a rejection. */
  verdict: Verdict;
  state: CapsuleState;
  /** Id of the last receipt of the chain. */
  head: string;
  /** Number of receipts. */
  length: number;
  created_at: string;
  updated_at: string;
}

export interface SignerKey {
  keyid: string;
  /** SPKI PEM, what `openssl pkeyutl -verify -pubin -inkey` takes. */
  publicKeyPem: string;
  role: 'device' | 'approver';
}

export interface DecidingManifest {
  /** `product` for the product manifest, else the plugin kind. */
  role: 'product' | 'intake' | 'policy' | 'tool' | 'enrich';
  name: string;
  version: string;
  /** `cidOf(manifest)`. */
  cid: string;
  manifest: Record<string, unknown>;
}

export interface StoredReceipt {
  id: string;
  envelope: DsseEnvelope;
  payload: ReceiptPayload;
}

/** A permit as recorded before its effect ran (write-before-effect). */
export interface PermitRecord {
  id: string;
  capsule: string;
  nonce: string;
  expires_at: string;
  envelope: DsseEnvelope;
  state: 'issued' | 'effected';
}

export interface ConsentRecord {
  id: string;
  capsule: string;
  k: number;
  /** Approver keyids (n = length). */
  approvers: string[];
  state: 'open' | 'approved' | 'rejected';
  votes: Array<{ approver: string; decision: 'approve' | 'reject'; at: string }>;
  created_at: string;
  decided_at: string | null;
}

/** Receipts written together (one {@link ReceiptStore.appendReceipts} call), in chain order. */
export type ReceiptListener = (receipts: readonly StoredReceipt[]) => void;

/** A receipt to append: what it says; the store adds the chain fields (`prev`, `capsule`, `device`, time). */
export interface ReceiptDraft {
  kind: ReceiptKind;
  subject: string;
  body: JsonObject;
}

export interface ReceiptStore {
  // ---- reads (bundle, card, verify) ----
  capsule(cid: string): CapsuleRecord | undefined;
  /** True when the capsule exists (cheaper than {@link ReceiptStore.capsule}). */
  has(cid: string): boolean;
  /** Id of the last receipt of the capsule's chain, if any. */
  head(cid: string): string | undefined;
  /** The chain's DSSE envelopes in order; empty for an unknown capsule. */
  receipts(capsuleCid: string): DsseEnvelope[];
  receiptIds(capsuleCid: string): string[];
  /** The envelopes of receipts by id, in the order asked; undefined for an id this store does not hold (sync uploads). */
  envelopesOf(ids: readonly string[]): Array<DsseEnvelope | undefined>;
  /** Decoded receipts in order (id, envelope, payload). */
  chain(capsuleCid: string): StoredReceipt[];
  publicKeys(capsuleCid: string): SignerKey[];
  manifests(capsuleCid: string): DecidingManifest[];
  consent(id: string): ConsentRecord | undefined;
  consents(query?: { state?: ConsentRecord['state']; limit?: number }): ConsentRecord[];
  /** The consent request opened for a capsule, if any. */
  consentOf(capsuleCid: string): ConsentRecord | undefined;
  /**
   * Whether `(src, nonce)` was already claimed, and whether the capsule `cid` exists ({@link has}), in one read: one
   * statement, one read transaction (each costs two lock syscalls on the WAL index; the pipeline asks both before
   * every run).
   */
  seen(src: string, nonce: string, cid: string): { nonce: boolean; capsule: boolean };
  /** The permits issued for a capsule, oldest first. */
  permits(capsuleCid: string): PermitRecord[];
  /** Registers a listener for the receipts of every append (inside the write transaction). */
  onReceipts(listener: ReceiptListener): Disposable;

  // ---- writes (the pipeline) ----
  /** Runs `fn` in one SQLite transaction (a savepoint when nested); all or nothing. */
  transaction<T>(fn: () => T): T;
  /** Records `(src, nonce)`; false when it was already seen (a replay). */
  claimNonce(src: string, nonce: string, capsuleCid: string, at: number): boolean;
  /** Inserts a new capsule row with state and verdict; its chain is written with {@link appendReceipt}. */
  createCapsule(cid: string, capsule: Capsule, verdict: Verdict, state: CapsuleState, at: number): void;
  setCapsuleState(cid: string, verdict: Verdict, state: CapsuleState, at: number): void;
  /** Signs and stores the next receipt of the capsule's chain (`prev` = the current head), then notifies listeners. */
  appendReceipt(capsuleCid: string, kind: ReceiptKind, subject: string, body: JsonObject, at: number): StoredReceipt;
  /**
   * Signs and stores the next receipts of the capsule's chain, in order, each one's `prev` the one before (the
   * first's the current head); moves the head once; then notifies listeners once with all of them.
   */
  appendReceipts(capsuleCid: string, drafts: readonly ReceiptDraft[], at: number): StoredReceipt[];
  /**
   * Stores receipts built and signed ahead ({@link buildReceipts}, then signed by the device key) as the next ones
   * of the capsule's chain; moves the head once and notifies listeners. The first one's `prev` must be the
   * current head.
   * @throws TesseraError CHAIN_INVALID when it is not (the chain moved since the receipts were built).
   */
  appendSigned(capsuleCid: string, receipts: readonly StoredReceipt[], at: number): StoredReceipt[];
  /** Records a key that signed something in the capsule's chain (approvers; the device key is recorded with the capsule). */
  recordKey(capsuleCid: string, keyid: string, publicKeyPem: string, role: SignerKey['role']): void;
  /** Records the manifests that decided the capsule (idempotent). */
  recordManifests(capsuleCid: string, manifests: readonly DecidingManifest[]): void;
  /**
   * Stores manifests ahead of the capsules they will decide (idempotent). Called outside a transaction, the rows
   * are committed when it returns, and {@link recordManifests} then only links them to each capsule: a product's
   * manifests are stored once, not once per run.
   */
  saveManifests(manifests: readonly DecidingManifest[]): void;
  recordPermit(permit: Omit<PermitRecord, 'state'>, at: number): void;
  /** Marks the permit used by its effect; refuses one that is not recorded or already used. */
  markPermitEffected(capsuleCid: string, id: string, at: number): void;
  openConsent(consent: { id: string; capsule: string; k: number; approvers: string[] }, at: number): void;
  /** Records one approver's vote; false when that approver already voted. */
  recordVote(consentId: string, approver: string, decision: 'approve' | 'reject', envelope: DsseEnvelope, at: number): boolean;
  closeConsent(consentId: string, state: 'approved' | 'rejected', at: number): void;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'capsules, chains, keys, manifests, replay, permits, consents',
    up(db) {
      // Layout for the hot path (one capsule and 2–7 receipts per request, cids are random): large immutable
      // rows (capsule bodies, envelopes, permits) go to rowid tables, appended at the end of their B-tree; the
      // random-keyed tables hold small rows. JSON columns are written by JSON.stringify only (no json_valid).
      db.exec(`
        CREATE TABLE receipt_capsules (
          cid TEXT PRIMARY KEY, body INTEGER NOT NULL, tenant TEXT NOT NULL,
          verdict TEXT NOT NULL CHECK (verdict IN ('ACK', 'NACK', 'ASK')),
          state TEXT NOT NULL CHECK (state IN ('decided', 'pending', 'rejected')),
          head TEXT, length INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
          keys TEXT NOT NULL DEFAULT '[]', manifests TEXT NOT NULL DEFAULT '[]'
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE receipt_capsule_bodies (row INTEGER PRIMARY KEY, capsule TEXT NOT NULL) STRICT;
        CREATE TABLE receipt_chain (
          row INTEGER PRIMARY KEY, capsule TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, envelope TEXT NOT NULL
        ) STRICT;
        CREATE UNIQUE INDEX receipt_chain_capsule ON receipt_chain (capsule, seq);
        CREATE UNIQUE INDEX receipt_chain_id ON receipt_chain (id);
        CREATE TABLE receipt_keys (keyid TEXT PRIMARY KEY, pem TEXT NOT NULL, role TEXT NOT NULL) STRICT, WITHOUT ROWID;
        CREATE TABLE receipt_manifests (cid TEXT PRIMARY KEY, role TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, manifest TEXT NOT NULL) STRICT, WITHOUT ROWID;
        CREATE TABLE receipt_nonces (src TEXT NOT NULL, nonce TEXT NOT NULL, capsule TEXT NOT NULL, seen_at INTEGER NOT NULL, PRIMARY KEY (src, nonce)) STRICT, WITHOUT ROWID;
        CREATE TABLE receipt_permits (
          row INTEGER PRIMARY KEY, capsule TEXT NOT NULL, id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at TEXT NOT NULL, envelope TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('issued', 'effected')), created_at INTEGER NOT NULL, effected_at INTEGER
        ) STRICT;
        CREATE UNIQUE INDEX receipt_permits_capsule ON receipt_permits (capsule, id);
        CREATE TABLE receipt_consents (
          id TEXT PRIMARY KEY, capsule TEXT NOT NULL, k INTEGER NOT NULL, approvers TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('open', 'approved', 'rejected')), created_at INTEGER NOT NULL, decided_at INTEGER
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX receipt_consents_state ON receipt_consents (state, created_at);
        CREATE INDEX receipt_consents_capsule ON receipt_consents (capsule);
        CREATE TABLE receipt_votes (
          consent TEXT NOT NULL, approver TEXT NOT NULL, decision TEXT NOT NULL, envelope TEXT NOT NULL, at INTEGER NOT NULL,
          PRIMARY KEY (consent, approver)
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    name: 'receipt ids are indexed once, by the device log',
    // Every receipt id is also a device log leaf (log_leaves.receipt_id, UNIQUE): a second random-keyed index
    // of the same ids cost one more page write per receipt. A receipt is found by id through the log.
    up(db) {
      db.exec('DROP INDEX receipt_chain_id');
    },
  },
  {
    version: 3,
    name: 'chains and permits keyed by the capsule body row',
    // The capsule's body row number grows with every capsule, its cid is random: keyed by the row, a run's
    // receipts and permit go at the end of their indexes instead of on a random page of each (two fewer pages
    // written to the WAL per run).
    up(db) {
      db.exec(`
        ALTER TABLE receipt_chain ADD COLUMN body INTEGER;
        UPDATE receipt_chain SET body = (SELECT c.body FROM receipt_capsules c WHERE c.cid = receipt_chain.capsule);
        CREATE UNIQUE INDEX receipt_chain_body ON receipt_chain (body, seq);
        DROP INDEX receipt_chain_capsule;
        ALTER TABLE receipt_permits ADD COLUMN body INTEGER;
        UPDATE receipt_permits SET body = (SELECT c.body FROM receipt_capsules c WHERE c.cid = receipt_permits.capsule);
        CREATE UNIQUE INDEX receipt_permits_body ON receipt_permits (body, id);
        DROP INDEX receipt_permits_capsule;
      `);
    },
  },
];

interface CapsuleRow {
  cid: string;
  capsule: string;
  verdict: Verdict;
  state: CapsuleState;
  head: string | null;
  length: number;
  created_at: number;
  updated_at: number;
}

interface ConsentRow {
  id: string;
  capsule: string;
  k: number;
  approvers: string;
  state: ConsentRecord['state'];
  created_at: number;
  decided_at: number | null;
}

export interface ReceiptStoreOptions {
  store: Store;
  /** Signs every receipt; its keyid is the receipts' `device`. */
  deviceKey: SigningKey;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A receipt built, not signed yet: its payload, the canonical bytes to sign, and its id (the cid of those bytes). */
export interface BuiltReceipt {
  id: string;
  payload: ReceiptPayload;
  bytes: Uint8Array;
}

/**
 * The payloads of the next receipts of a chain whose head is `prev`, each one's `prev` the one before, issued at
 * `at` by `device`: what {@link ReceiptStore.appendReceipts} signs and stores, and what a caller that signs on
 * another thread builds first (then {@link ReceiptStore.appendSigned}).
 */
export function buildReceipts(capsuleCid: string, prev: string | null, drafts: readonly ReceiptDraft[], at: number, device: string): BuiltReceipt[] {
  const issuedAt = iso(at);
  return drafts.map(({ kind, subject, body }) => {
    const payload: ReceiptPayload = { v: RECEIPT_VERSION, kind, capsule: capsuleCid, prev, subject, body, issued_at: issuedAt, device };
    const bytes = receiptBytes(payload);
    const id = cidOfBytes(bytes);
    prev = id;
    return { id, payload, bytes };
  });
}

/** Opens (migrates) the receipt tables and returns the store. */
export function createReceiptStore(options: ReceiptStoreOptions): ReceiptStore {
  const { store, deviceKey } = options;
  store.migrate('receipts', MIGRATIONS);
  const db = store.db;
  const listeners = new Set<ReceiptListener>();

  const getCapsule = db.prepare<[string], CapsuleRow>(
    'SELECT c.cid, b.capsule, c.verdict, c.state, c.head, c.length, c.created_at, c.updated_at FROM receipt_capsules c JOIN receipt_capsule_bodies b ON b.row = c.body WHERE c.cid = ?',
  );
  const insertBody = db.prepare('INSERT INTO receipt_capsule_bodies (capsule) VALUES (?)');
  // The device key is every capsule's first signer; approvers are appended as they vote.
  const insertCapsule = db.prepare('INSERT INTO receipt_capsules (cid, body, tenant, verdict, state, head, length, created_at, updated_at, keys) VALUES (?, ?, ?, ?, ?, NULL, 0, ?, ?, ?)');
  const hasCapsule = db.prepare<[string], { head: string | null }>('SELECT head FROM receipt_capsules WHERE cid = ?');
  const updateState = db.prepare('UPDATE receipt_capsules SET verdict = ?, state = ?, updated_at = ? WHERE cid = ?');
  const headOf = db.prepare<[string], { head: string | null; length: number; body: number }>('SELECT head, length, body FROM receipt_capsules WHERE cid = ?');
  const advance = db.prepare('UPDATE receipt_capsules SET head = ?, length = ?, updated_at = ? WHERE cid = ?');
  const insertReceipt = db.prepare('INSERT INTO receipt_chain (capsule, body, seq, id, kind, envelope) VALUES (?, ?, ?, ?, ?, ?)');
  const chainOf = db.prepare<[string], { id: string; envelope: string }>(
    'SELECT r.id, r.envelope FROM receipt_capsules c JOIN receipt_chain r ON r.body = c.body WHERE c.cid = ? ORDER BY r.seq',
  );
  const envelopeById = db.prepare<[string], { envelope: string }>('SELECT envelope FROM receipt_chain WHERE id = ?');
  const insertKey = db.prepare('INSERT INTO receipt_keys (keyid, pem, role) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const linkKey = db.prepare(
    "UPDATE receipt_capsules SET keys = json_insert(keys, '$[#]', @keyid) WHERE cid = @cid AND NOT EXISTS (SELECT 1 FROM json_each(keys) WHERE value = @keyid)",
  );
  const keysOf = db.prepare<[string], { keyid: string; pem: string; role: SignerKey['role'] }>(
    'SELECT k.keyid, k.pem, k.role FROM receipt_capsules c, json_each(c.keys) j JOIN receipt_keys k ON k.keyid = j.value WHERE c.cid = ? ORDER BY k.role DESC, k.keyid',
  );
  const insertManifest = db.prepare('INSERT INTO receipt_manifests (cid, role, name, version, manifest) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING');
  const setManifests = db.prepare('UPDATE receipt_capsules SET manifests = ? WHERE cid = ?');
  const manifestsOf = db.prepare<[string], { cid: string; role: DecidingManifest['role']; name: string; version: string; manifest: string }>(
    'SELECT m.cid, m.role, m.name, m.version, m.manifest FROM receipt_capsules c, json_each(c.manifests) j JOIN receipt_manifests m ON m.cid = j.value WHERE c.cid = ? ORDER BY j.key',
  );
  // Manifests are few and immutable: serialized once per process (the insert is a no-op after the first).
  const manifestJson = new Map<string, string>();
  /** Manifest cids whose rows are committed (saveManifests outside a transaction): recordManifests skips them. */
  const savedManifests = new Set<string>();
  const insertManifests = (manifests: readonly DecidingManifest[]): void => {
    for (const m of manifests) {
      if (savedManifests.has(m.cid)) continue;
      let json = manifestJson.get(m.cid);
      if (json === undefined) {
        json = JSON.stringify(m.manifest);
        if (manifestJson.size < 256) manifestJson.set(m.cid, json);
      }
      insertManifest.run(m.cid, m.role, m.name, m.version, json);
    }
  };
  // One transaction wrapper for every call: better-sqlite3's db.transaction(fn) builds four wrapper functions and
  // defines their properties each time, and the pipeline opens a savepoint per request.
  const inTransaction = db.transaction((fn: () => unknown) => fn());
  /** The device key's keyid list, every new capsule's `keys`. */
  const deviceKeys = JSON.stringify([deviceKey.keyid]);
  const insertNonce = db.prepare('INSERT INTO receipt_nonces (src, nonce, capsule, seen_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING');
  const bodyOf = '(SELECT body FROM receipt_capsules WHERE cid = @capsule)';
  const insertPermit = db.prepare(
    `INSERT INTO receipt_permits (id, capsule, body, nonce, expires_at, envelope, state, created_at) VALUES (@id, @capsule, ${bodyOf}, @nonce, @expires_at, @envelope, 'issued', @at)`,
  );
  const effectPermit = db.prepare(`UPDATE receipt_permits SET state = 'effected', effected_at = @at WHERE body = ${bodyOf} AND id = @id AND state = 'issued'`);
  const permitsOf = db.prepare<[string], { id: string; capsule: string; nonce: string; expires_at: string; envelope: string; state: PermitRecord['state'] }>(
    'SELECT id, capsule, nonce, expires_at, envelope, state FROM receipt_permits WHERE body = (SELECT body FROM receipt_capsules WHERE cid = ?) ORDER BY created_at, id',
  );
  const insertConsent = db.prepare("INSERT INTO receipt_consents (id, capsule, k, approvers, state, created_at) VALUES (?, ?, ?, ?, 'open', ?)");
  const getConsent = db.prepare<[string], ConsentRow>('SELECT id, capsule, k, approvers, state, created_at, decided_at FROM receipt_consents WHERE id = ?');
  const listConsents = db.prepare<[string | null, string | null, number], ConsentRow>(
    'SELECT id, capsule, k, approvers, state, created_at, decided_at FROM receipt_consents WHERE (? IS NULL OR state = ?) ORDER BY created_at DESC, id LIMIT ?',
  );
  const consentByCapsule = db.prepare<[string], ConsentRow>('SELECT id, capsule, k, approvers, state, created_at, decided_at FROM receipt_consents WHERE capsule = ? ORDER BY created_at DESC LIMIT 1');
  const seenStmt = db.prepare<[string, string, string], { nonce: number; capsule: number }>(
    'SELECT EXISTS (SELECT 1 FROM receipt_nonces WHERE src = ? AND nonce = ?) AS nonce, EXISTS (SELECT 1 FROM receipt_capsules WHERE cid = ?) AS capsule',
  );
  const closeConsentStmt = db.prepare("UPDATE receipt_consents SET state = ?, decided_at = ? WHERE id = ? AND state = 'open'");
  const insertVote = db.prepare('INSERT INTO receipt_votes (consent, approver, decision, envelope, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING');
  const votesOf = db.prepare<[string], { approver: string; decision: 'approve' | 'reject'; at: number }>('SELECT approver, decision, at FROM receipt_votes WHERE consent = ? ORDER BY at, approver');

  const toConsent = (row: ConsentRow): ConsentRecord => ({
    id: row.id,
    capsule: row.capsule,
    k: row.k,
    approvers: JSON.parse(row.approvers) as string[],
    state: row.state,
    votes: votesOf.all(row.id).map((v) => ({ approver: v.approver, decision: v.decision, at: iso(v.at) })),
    created_at: iso(row.created_at),
    decided_at: row.decided_at === null ? null : iso(row.decided_at),
  });

  const decode = (row: { id: string; envelope: string }): StoredReceipt => {
    const envelope = JSON.parse(row.envelope) as DsseEnvelope;
    const payload = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as ReceiptPayload;
    return { id: row.id, envelope, payload };
  };

  // The device key signs every capsule's receipts: recorded once here (rows of receipt_keys are never removed).
  insertKey.run(deviceKey.keyid, deviceKey.publicKeyPem, 'device');

  const headOrThrow = (capsuleCid: string) => {
    const head = headOf.get(capsuleCid);
    if (!head) throw new TesseraError('NOT_FOUND', `No capsule ${capsuleCid} to append a receipt to.`);
    return head;
  };
  /** Stores `receipts` after `head` (their prev links already made), moves the head once, notifies listeners. */
  const storeAfter = (capsuleCid: string, head: { length: number; body: number }, receipts: readonly StoredReceipt[], at: number): StoredReceipt[] => {
    let seq = head.length;
    for (const r of receipts) insertReceipt.run(capsuleCid, head.body, seq++, r.id, r.payload.kind, JSON.stringify(r.envelope));
    if (receipts.length > 0) advance.run(receipts[receipts.length - 1]!.id, seq, at, capsuleCid);
    for (const listener of listeners) listener(receipts);
    return [...receipts];
  };
  const appendReceipts = (capsuleCid: string, drafts: readonly ReceiptDraft[], at: number): StoredReceipt[] => {
    const head = headOrThrow(capsuleCid);
    const built = buildReceipts(capsuleCid, head.head, drafts, at, deviceKey.keyid);
    return storeAfter(capsuleCid, head, built.map(({ id, payload, bytes }) => ({ id, payload, envelope: signEnvelope(RECEIPT_PAYLOAD_TYPE, bytes, [deviceKey]) })), at);
  };
  const appendSigned = (capsuleCid: string, receipts: readonly StoredReceipt[], at: number): StoredReceipt[] => {
    const head = headOrThrow(capsuleCid);
    const first = receipts[0];
    if (first && first.payload.prev !== head.head) {
      throw new TesseraError('CHAIN_INVALID', `The receipts built for ${capsuleCid} follow ${String(first.payload.prev)}, but its chain now ends at ${String(head.head)}.`);
    }
    return storeAfter(capsuleCid, head, receipts, at);
  };

  return {
    capsule(cid) {
      const row = getCapsule.get(cid);
      if (!row || row.head === null) return undefined;
      return {
        cid: row.cid,
        capsule: JSON.parse(row.capsule) as Capsule,
        verdict: row.verdict,
        state: row.state,
        head: row.head,
        length: row.length,
        created_at: iso(row.created_at),
        updated_at: iso(row.updated_at),
      };
    },
    has: (cid) => hasCapsule.get(cid) !== undefined,
    head: (cid) => hasCapsule.get(cid)?.head ?? undefined,
    receipts: (capsuleCid) => chainOf.all(capsuleCid).map((r) => JSON.parse(r.envelope) as DsseEnvelope),
    receiptIds: (capsuleCid) => chainOf.all(capsuleCid).map((r) => r.id),
    envelopesOf: (ids) => ids.map((id) => {
      const row = envelopeById.get(id);
      return row ? (JSON.parse(row.envelope) as DsseEnvelope) : undefined;
    }),
    chain: (capsuleCid) => chainOf.all(capsuleCid).map(decode),
    publicKeys: (capsuleCid) => keysOf.all(capsuleCid).map((k) => ({ keyid: k.keyid, publicKeyPem: k.pem, role: k.role })),
    manifests: (capsuleCid) =>
      manifestsOf.all(capsuleCid).map((m) => ({ role: m.role, name: m.name, version: m.version, cid: m.cid, manifest: JSON.parse(m.manifest) as Record<string, unknown> })),
    consent(id) {
      const row = getConsent.get(id);
      return row ? toConsent(row) : undefined;
    },
    consents(query = {}) {
      return listConsents.all(query.state ?? null, query.state ?? null, Math.min(Math.max(query.limit ?? 100, 1), 1000)).map(toConsent);
    },
    consentOf(capsuleCid) {
      const row = consentByCapsule.get(capsuleCid);
      return row ? toConsent(row) : undefined;
    },
    seen(src, nonce, cid) {
      const row = seenStmt.get(src, nonce, cid)!;
      return { nonce: row.nonce === 1, capsule: row.capsule === 1 };
    },
    permits: (capsuleCid) =>
      permitsOf.all(capsuleCid).map((p) => ({ id: p.id, capsule: p.capsule, nonce: p.nonce, expires_at: p.expires_at, envelope: JSON.parse(p.envelope) as DsseEnvelope, state: p.state })),
    onReceipts(listener) {
      listeners.add(listener);
      return { dispose: () => void listeners.delete(listener) };
    },

    transaction: <T>(fn: () => T): T => inTransaction(fn) as T,
    claimNonce: (src, nonce, capsuleCid, at) => insertNonce.run(src, nonce, capsuleCid, at).changes === 1,
    createCapsule(cid, capsule, verdict, state, at) {
      const body = insertBody.run(JSON.stringify(capsule)).lastInsertRowid;
      insertCapsule.run(cid, body, capsule.tenant, verdict, state, at, at, deviceKeys);
    },
    setCapsuleState(cid, verdict, state, at) {
      updateState.run(verdict, state, at, cid);
    },
    appendReceipt(capsuleCid, kind, subject, body, at) {
      return appendReceipts(capsuleCid, [{ kind, subject, body }], at)[0]!;
    },
    appendReceipts: (capsuleCid, drafts, at) => appendReceipts(capsuleCid, drafts, at),
    appendSigned: (capsuleCid, receipts, at) => appendSigned(capsuleCid, receipts, at),
    recordKey(capsuleCid, keyid, publicKeyPem, role) {
      insertKey.run(keyid, publicKeyPem, role);
      linkKey.run({ cid: capsuleCid, keyid });
    },
    recordManifests(capsuleCid, manifests) {
      insertManifests(manifests);
      setManifests.run(JSON.stringify(manifests.map((m) => m.cid)), capsuleCid);
    },
    saveManifests(manifests) {
      const nested = db.inTransaction;
      inTransaction(() => insertManifests(manifests));
      // Inside a caller's transaction the rows may still roll back: only a commit of our own makes them saved.
      if (!nested) for (const m of manifests) savedManifests.add(m.cid);
    },
    recordPermit(permit, at) {
      insertPermit.run({ id: permit.id, capsule: permit.capsule, nonce: permit.nonce, expires_at: permit.expires_at, envelope: JSON.stringify(permit.envelope), at });
    },
    markPermitEffected(capsuleCid, id, at) {
      if (effectPermit.run({ at, capsule: capsuleCid, id }).changes !== 1) throw new TesseraError('PERMIT_INVALID', `Permit ${id} is not recorded as issued and unused; the effect must not run.`);
    },
    openConsent(consent, at) {
      insertConsent.run(consent.id, consent.capsule, consent.k, JSON.stringify(consent.approvers), at);
    },
    recordVote: (consentId, approver, decision, envelope, at) => insertVote.run(consentId, approver, decision, JSON.stringify(envelope), at).changes === 1,
    closeConsent(consentId, state, at) {
      closeConsentStmt.run(state, at, consentId);
    },
  };
}
