/**
 * The ArtifactRegistry of seed 002 §4: the runtime's authority for registering, resolving and listing the
 * artifacts intents produce. Clients and handlers never query storage directly; they ask the registry.
 *
 * Contracts:
 * - Owns the `artifacts` and `artifact_parents` tables (store module `artifacts`).
 * - Lifecycle, legal moves only ({@link ARTIFACT_TRANSITIONS}): PENDING → READY | FAILED | DELETED,
 *   READY → ARCHIVED | DELETED, FAILED → DELETED, ARCHIVED → DELETED. DELETED is a soft delete: the record and
 *   its lineage stay resolvable. An illegal move throws with `details.reason: 'ARTIFACT_STATE_INVALID'`.
 * - Every transition, registration included, is journaled as `artifact.<state in lower case>` in the same
 *   transaction as the write, with the artifact's trace id (the one it was registered with, unless the call
 *   names another).
 * - Parents must exist when an artifact is registered and never change afterwards, so lineage is a DAG; the
 *   resolver still tracks visited ids, so a damaged table cannot make it loop.
 */
import { randomUUID } from 'node:crypto';
import type { Bus } from '../bus/index.js';
import { newTraceId } from '../journal/index.js';
import type { Migration, Store } from '../store/index.js';
import { TesseraError } from '../../common/errors.js';
import { isCid } from '../../common/cid.js';
import { checkId, checkInteger, checkIntentType, checkText, contractError, frozenJson, isPlainObject, toContractJson } from './validate.js';

/** Lifecycle state of an artifact (seed 002 §4 `lifecycle_state`). */
export type ArtifactState = 'PENDING' | 'READY' | 'FAILED' | 'ARCHIVED' | 'DELETED';

/** Every artifact state, in lifecycle order. */
export const ARTIFACT_STATES: readonly ArtifactState[] = ['PENDING', 'READY', 'FAILED', 'ARCHIVED', 'DELETED'];

/** The legal moves of the artifact lifecycle: from a state to the states it may become. */
export const ARTIFACT_TRANSITIONS: Readonly<Record<ArtifactState, readonly ArtifactState[]>> = Object.freeze({
  PENDING: ['READY', 'FAILED', 'DELETED'],
  READY: ['ARCHIVED', 'DELETED'],
  FAILED: ['DELETED'],
  ARCHIVED: ['DELETED'],
  DELETED: [],
});

/** What produced an artifact (seed 002 `produced_by`). All fields optional; filterable in {@link ArtifactRegistry.list}. */
export interface ArtifactProducer {
  /** The intent type whose handler produced it. */
  intent?: string;
  /** The execution that produced it. */
  execution_id?: string;
  /** The scenario run that produced it. */
  run_id?: string;
  /** The scenario step that produced it. */
  step?: string;
}

/** One stored copy of an artifact's content. */
export interface Materialization {
  /** Where the bytes are (`file:`, `https:`, …; at most 2048 characters). */
  uri: string;
  /** MIME type, e.g. `application/pdf`. */
  media_type: string;
  /** Size in bytes. */
  bytes: number;
  /** Content id of the bytes: `b3:` + 64 lowercase hex digits (main/common/cid.ts). */
  cid: string;
}

/** An artifact as the registry holds it. Values are deeply frozen. */
export interface Artifact {
  /** Unique id (caller-chosen or `art_<uuid>`). */
  readonly artifact_id: string;
  /** The artifact type (seed 002 `artifact_type`), e.g. `document`, `journey.plan`. */
  readonly kind: string;
  /** The tenant it belongs to, when known. */
  readonly tenant_id: string | null;
  /** Canonical location, when it has one. */
  readonly uri: string | null;
  /** Content id of the canonical content, when known. */
  readonly content_cid: string | null;
  /** What produced it. */
  readonly produced_by: Readonly<ArtifactProducer>;
  /** Ids of the artifacts it was derived from, in the order given at registration. */
  readonly parent_artifacts: readonly string[];
  /** Free-form facts; never interpreted by the registry. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** What the artifact means (seed 002 `semantic_descriptor`); null when not given. */
  readonly semantic_descriptor: Readonly<Record<string, unknown>> | null;
  /** Lifecycle state. */
  readonly state: ArtifactState;
  /** Stored copies, set when it became READY. */
  readonly materializations: readonly Materialization[];
  /** Why it FAILED; null otherwise. */
  readonly failure_reason: string | null;
  /** Trace id it was registered with; its lifecycle events carry it. */
  readonly trace_id: string;
  /** ISO-8601 time of registration. */
  readonly created_at: string;
  /** ISO-8601 time of the last transition. */
  readonly updated_at: string;
}

/** Input of {@link ArtifactRegistry.register}. */
export interface RegisterArtifactInput {
  /** A caller-chosen id (must be new); default `art_<uuid>`. */
  artifact_id?: string;
  kind: string;
  tenant_id?: string;
  uri?: string;
  content_cid?: string;
  produced_by?: ArtifactProducer;
  /** Existing artifacts this one derives from (at most 256, no duplicates). */
  parent_artifacts?: readonly string[];
  /** JSON object, at most 64 KiB. */
  metadata?: Record<string, unknown>;
  /** JSON object, at most 64 KiB. */
  semantic_descriptor?: Record<string, unknown>;
}

/** Options of every write. */
export interface ArtifactWriteOptions {
  /** Trace id of the journaled event; default the artifact's own (a new one at registration). */
  trace_id?: string;
}

/** An ancestor found by {@link ArtifactRegistry.resolve}: the artifact and how many generations up it is (1 = parent). */
export type LineageEntry = Artifact & { readonly depth: number };

/** The answer of {@link ArtifactRegistry.resolve}. */
export interface ResolvedArtifact {
  artifact: Artifact;
  /** Ancestors breadth-first, each once, nearest first. */
  lineage: LineageEntry[];
  /** Parent ids named in the lineage but not in the registry (only after damage to the store). */
  missing: string[];
  /** True when `max_depth` or the 1000-ancestor cap cut the lineage short. */
  truncated: boolean;
}

/** Filter and page of {@link ArtifactRegistry.list}. */
export interface ArtifactQuery {
  kind?: string;
  /** Without it, DELETED artifacts are left out. */
  state?: ArtifactState;
  tenant_id?: string;
  /** Every given field must match. */
  produced_by?: ArtifactProducer;
  /** 1–1000, default 100. */
  limit?: number;
  /** Cursor: the `next` of the previous page (an artifact id). */
  after?: string;
}

/** One page of {@link ArtifactRegistry.list}, oldest first. */
export interface ArtifactPage {
  artifacts: Artifact[];
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
}

/** Artifact registration, lifecycle, resolution and listing (seed 002 §4). */
export interface ArtifactRegistry {
  /** Record a new artifact in state PENDING. Throws VALIDATION_FAILED naming the bad field or missing parent. */
  register(input: RegisterArtifactInput, options?: ArtifactWriteOptions): Artifact;
  /** PENDING → READY, recording where its content is stored. */
  markReady(artifactId: string, outcome?: { materializations?: readonly Materialization[] }, options?: ArtifactWriteOptions): Artifact;
  /** PENDING → FAILED with a reason (at most 2000 characters). */
  markFailed(artifactId: string, reason: string, options?: ArtifactWriteOptions): Artifact;
  /** READY → ARCHIVED. */
  archive(artifactId: string, options?: ArtifactWriteOptions): Artifact;
  /** Soft delete: any state but DELETED → DELETED. The record stays resolvable. */
  delete(artifactId: string, options?: ArtifactWriteOptions): Artifact;
  /** The artifact, or undefined. */
  get(artifactId: string): Artifact | undefined;
  /** The artifact with its ancestors (default up to 32 generations). Throws when unknown (`details.reason: 'ARTIFACT_NOT_FOUND'`). */
  resolve(artifactId: string, options?: { max_depth?: number }): ResolvedArtifact;
  /** Artifacts matching `query`, oldest first, paged by cursor. */
  list(query?: ArtifactQuery): ArtifactPage;
}

/** Dependencies of {@link createArtifactRegistry}. */
export interface ArtifactRegistryOptions {
  store: Store;
  bus: Bus;
  /** Epoch milliseconds; injected so tests and replays control time. */
  clock?: () => number;
  /** New artifact ids; injected so tests and replays control them. */
  newId?: () => string;
}

export const ARTIFACT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'artifacts and lineage',
    up(db) {
      db.exec(`
        CREATE TABLE artifacts (
          seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
          artifact_id           TEXT    NOT NULL UNIQUE,
          kind                  TEXT    NOT NULL,
          tenant_id             TEXT,
          uri                   TEXT,
          content_cid           TEXT,
          produced_intent       TEXT,
          produced_execution_id TEXT,
          produced_run_id       TEXT,
          produced_step         TEXT,
          metadata              TEXT    NOT NULL CHECK (json_valid(metadata)),
          semantic_descriptor   TEXT    CHECK (semantic_descriptor IS NULL OR json_valid(semantic_descriptor)),
          state                 TEXT    NOT NULL CHECK (state IN ('PENDING', 'READY', 'FAILED', 'ARCHIVED', 'DELETED')),
          materializations      TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(materializations)),
          failure_reason        TEXT,
          trace_id              TEXT    NOT NULL,
          created_at            INTEGER NOT NULL,
          updated_at            INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX artifacts_kind ON artifacts (kind, seq);
        CREATE INDEX artifacts_state ON artifacts (state, seq);
        CREATE INDEX artifacts_execution ON artifacts (produced_execution_id, seq) WHERE produced_execution_id IS NOT NULL;
        CREATE INDEX artifacts_run ON artifacts (produced_run_id, seq) WHERE produced_run_id IS NOT NULL;
        CREATE TABLE artifact_parents (
          artifact_id TEXT    NOT NULL REFERENCES artifacts (artifact_id),
          ord         INTEGER NOT NULL,
          parent_id   TEXT    NOT NULL,
          PRIMARY KEY (artifact_id, ord)
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
];

const MAX_PARENTS = 256;
const MAX_LINEAGE = 1000;
const MAX_URI = 2048;
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const PRODUCER_COLUMNS = { intent: 'produced_intent', execution_id: 'produced_execution_id', run_id: 'produced_run_id', step: 'produced_step' } as const;

interface Row {
  seq: number;
  artifact_id: string;
  kind: string;
  tenant_id: string | null;
  uri: string | null;
  content_cid: string | null;
  produced_intent: string | null;
  produced_execution_id: string | null;
  produced_run_id: string | null;
  produced_step: string | null;
  metadata: string;
  semantic_descriptor: string | null;
  state: ArtifactState;
  materializations: string;
  failure_reason: string | null;
  trace_id: string;
  created_at: number;
  updated_at: number;
}

/** Check a `produced_by` object; returns it with only the known, present fields. */
function checkProducer(value: unknown, field: string): ArtifactProducer {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw new TesseraError('VALIDATION_FAILED', `${field} must be an object.`);
  const out: ArtifactProducer = {};
  for (const key of Object.keys(value)) {
    if (!(key in PRODUCER_COLUMNS)) throw new TesseraError('VALIDATION_FAILED', `${field}.${key} is not a field of produced_by (intent, execution_id, run_id, step).`);
  }
  if (value['intent'] !== undefined) out.intent = checkIntentType(value['intent'], `${field}.intent`);
  if (value['execution_id'] !== undefined) out.execution_id = checkId(value['execution_id'], `${field}.execution_id`);
  if (value['run_id'] !== undefined) out.run_id = checkText(value['run_id'], `${field}.run_id`, 200);
  if (value['step'] !== undefined) out.step = checkText(value['step'], `${field}.step`, 200);
  return out;
}

function checkMaterializations(value: unknown): Materialization[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TesseraError('VALIDATION_FAILED', 'materializations must be an array.');
  if (value.length > MAX_PARENTS) throw new TesseraError('VALIDATION_FAILED', `materializations has more than ${MAX_PARENTS} entries.`);
  return value.map((m: unknown, i) => {
    const field = `materializations[${i}]`;
    if (!isPlainObject(m)) throw new TesseraError('VALIDATION_FAILED', `${field} must be an object with uri, media_type, bytes and cid.`);
    const mediaType = checkText(m['media_type'], `${field}.media_type`, 255);
    if (!MEDIA_TYPE.test(mediaType)) throw new TesseraError('VALIDATION_FAILED', `${field}.media_type must be a MIME type such as "application/pdf".`);
    if (!isCid(m['cid'])) throw new TesseraError('VALIDATION_FAILED', `${field}.cid must be a content id: "b3:" and 64 lowercase hex digits.`);
    if (m['bytes'] === undefined) throw new TesseraError('VALIDATION_FAILED', `${field}.bytes is required.`);
    return { uri: checkText(m['uri'], `${field}.uri`, MAX_URI), media_type: mediaType, bytes: checkInteger(m['bytes'], `${field}.bytes`, 0, Number.MAX_SAFE_INTEGER, 0), cid: m['cid'] };
  });
}

/** Create the ArtifactRegistry over the device store; applies its migrations. */
export function createArtifactRegistry(options: ArtifactRegistryOptions): ArtifactRegistry {
  const { store, bus } = options;
  const clock = options.clock ?? Date.now;
  const newId = options.newId ?? (() => `art_${randomUUID()}`);
  store.migrate('artifacts', ARTIFACT_MIGRATIONS);
  const db = store.db;
  const q = {
    get: db.prepare<[string], Row>('SELECT * FROM artifacts WHERE artifact_id = ?'),
    parents: db.prepare<[string], { parent_id: string }>('SELECT parent_id FROM artifact_parents WHERE artifact_id = ? ORDER BY ord'),
    insert: db.prepare(`INSERT INTO artifacts (artifact_id, kind, tenant_id, uri, content_cid, produced_intent, produced_execution_id, produced_run_id, produced_step,
      metadata, semantic_descriptor, state, trace_id, created_at, updated_at)
      VALUES (@artifact_id, @kind, @tenant_id, @uri, @content_cid, @produced_intent, @produced_execution_id, @produced_run_id, @produced_step,
      @metadata, @semantic_descriptor, 'PENDING', @trace_id, @now, @now)`),
    insertParent: db.prepare('INSERT INTO artifact_parents (artifact_id, ord, parent_id) VALUES (?, ?, ?)'),
    update: db.prepare<{ artifact_id: string; from: ArtifactState; to: ArtifactState; materializations: string | null; failure_reason: string | null; now: number }>(
      `UPDATE artifacts SET state = @to, updated_at = @now, materializations = COALESCE(@materializations, materializations),
        failure_reason = COALESCE(@failure_reason, failure_reason) WHERE artifact_id = @artifact_id AND state = @from`,
    ),
    seqOf: db.prepare<[string], { seq: number }>('SELECT seq FROM artifacts WHERE artifact_id = ?'),
  };

  const toArtifact = (row: Row): Artifact => {
    const producedBy: ArtifactProducer = {};
    if (row.produced_intent !== null) producedBy.intent = row.produced_intent;
    if (row.produced_execution_id !== null) producedBy.execution_id = row.produced_execution_id;
    if (row.produced_run_id !== null) producedBy.run_id = row.produced_run_id;
    if (row.produced_step !== null) producedBy.step = row.produced_step;
    return Object.freeze({
      artifact_id: row.artifact_id,
      kind: row.kind,
      tenant_id: row.tenant_id,
      uri: row.uri,
      content_cid: row.content_cid,
      produced_by: Object.freeze(producedBy),
      parent_artifacts: Object.freeze(q.parents.all(row.artifact_id).map((p) => p.parent_id)),
      metadata: frozenJson<Record<string, unknown>>(row.metadata),
      semantic_descriptor: row.semantic_descriptor === null ? null : frozenJson<Record<string, unknown>>(row.semantic_descriptor),
      state: row.state,
      materializations: frozenJson<Materialization[]>(row.materializations),
      failure_reason: row.failure_reason,
      trace_id: row.trace_id,
      created_at: new Date(row.created_at).toISOString(),
      updated_at: new Date(row.updated_at).toISOString(),
    });
  };

  const mustGet = (artifactId: string): Row => {
    const row = q.get.get(checkId(artifactId, 'artifact_id'));
    if (!row) throw contractError('ARTIFACT_NOT_FOUND', `No artifact ${artifactId}.`, { artifact_id: artifactId });
    return row;
  };

  const topicOf = (state: ArtifactState) => `artifact.${state.toLowerCase()}`;

  const transition = db.transaction((artifactId: string, to: ArtifactState, extra: { materializations?: Materialization[]; failure_reason?: string }, opts: ArtifactWriteOptions): Artifact => {
    const row = mustGet(artifactId);
    if (!ARTIFACT_TRANSITIONS[row.state].includes(to)) {
      const allowed = ARTIFACT_TRANSITIONS[row.state];
      throw contractError('ARTIFACT_STATE_INVALID', `Artifact ${artifactId} is ${row.state}; it cannot become ${to} (from ${row.state}: ${allowed.length > 0 ? allowed.join(', ') : 'no further state'}).`, { artifact_id: artifactId, from: row.state, to });
    }
    q.update.run({
      artifact_id: artifactId,
      from: row.state,
      to,
      materializations: extra.materializations === undefined ? null : JSON.stringify(extra.materializations),
      failure_reason: extra.failure_reason ?? null,
      now: clock(),
    });
    const payload: Record<string, unknown> = { artifact_id: artifactId, kind: row.kind, from: row.state, to, ...extra };
    bus.publish(topicOf(to), payload, { trace_id: opts.trace_id ?? row.trace_id });
    return toArtifact(q.get.get(artifactId)!);
  });

  const register = db.transaction((input: RegisterArtifactInput, opts: ArtifactWriteOptions): Artifact => {
    if (!isPlainObject(input)) throw new TesseraError('VALIDATION_FAILED', 'register: the input must be an object.');
    const artifactId = input.artifact_id === undefined ? newId() : checkId(input.artifact_id, 'artifact_id');
    if (q.get.get(artifactId)) throw new TesseraError('VALIDATION_FAILED', `artifact_id ${artifactId} is already registered.`);
    const kind = checkId(input.kind, 'kind');
    const tenantId = input.tenant_id === undefined ? null : checkId(input.tenant_id, 'tenant_id');
    const uri = input.uri === undefined ? null : checkText(input.uri, 'uri', MAX_URI);
    if (input.content_cid !== undefined && !isCid(input.content_cid)) throw new TesseraError('VALIDATION_FAILED', 'content_cid must be a content id: "b3:" and 64 lowercase hex digits.');
    const producedBy = checkProducer(input.produced_by, 'produced_by');
    const parents = input.parent_artifacts ?? [];
    if (!Array.isArray(parents)) throw new TesseraError('VALIDATION_FAILED', 'parent_artifacts must be an array of artifact ids.');
    if (parents.length > MAX_PARENTS) throw new TesseraError('VALIDATION_FAILED', `parent_artifacts has more than ${MAX_PARENTS} entries.`);
    const seen = new Set<string>();
    parents.forEach((parent: unknown, i) => {
      const id = checkId(parent, `parent_artifacts[${i}]`);
      if (seen.has(id)) throw new TesseraError('VALIDATION_FAILED', `parent_artifacts lists ${id} twice.`);
      if (!q.get.get(id)) throw new TesseraError('VALIDATION_FAILED', `parent_artifacts[${i}]: no artifact ${id} is registered.`, { details: { missing: id } });
      seen.add(id);
    });
    const metadata = toContractJson(input.metadata ?? {}, 'metadata', { object: true });
    const descriptor = input.semantic_descriptor === undefined ? null : toContractJson(input.semantic_descriptor, 'semantic_descriptor', { object: true });
    const now = clock();
    const traceId = opts.trace_id ?? newTraceId(now);
    q.insert.run({
      artifact_id: artifactId,
      kind,
      tenant_id: tenantId,
      uri,
      content_cid: input.content_cid ?? null,
      produced_intent: producedBy.intent ?? null,
      produced_execution_id: producedBy.execution_id ?? null,
      produced_run_id: producedBy.run_id ?? null,
      produced_step: producedBy.step ?? null,
      metadata,
      semantic_descriptor: descriptor,
      trace_id: traceId,
      now,
    });
    parents.forEach((parent, i) => q.insertParent.run(artifactId, i, parent));
    // Published after the rows exist, so a subscriber can already resolve the artifact.
    bus.publish(topicOf('PENDING'), { artifact_id: artifactId, kind, produced_by: producedBy, parent_artifacts: parents }, { trace_id: traceId });
    return toArtifact(q.get.get(artifactId)!);
  });

  return {
    register: (input, opts = {}) => register(input, opts),
    markReady: (artifactId, outcome = {}, opts = {}) => transition(artifactId, 'READY', { materializations: checkMaterializations(outcome.materializations) }, opts),
    markFailed: (artifactId, reason, opts = {}) => transition(artifactId, 'FAILED', { failure_reason: checkText(reason, 'reason', 2000) }, opts),
    archive: (artifactId, opts = {}) => transition(artifactId, 'ARCHIVED', {}, opts),
    delete: (artifactId, opts = {}) => transition(artifactId, 'DELETED', {}, opts),
    get(artifactId) {
      const row = q.get.get(checkId(artifactId, 'artifact_id'));
      return row ? toArtifact(row) : undefined;
    },
    resolve(artifactId, opts = {}) {
      const maxDepth = checkInteger(opts.max_depth, 'max_depth', 0, 1000, 32);
      const artifact = toArtifact(mustGet(artifactId));
      const lineage: LineageEntry[] = [];
      const missing: string[] = [];
      const visited = new Set<string>([artifact.artifact_id]);
      let truncated = false;
      // Breadth-first over parents; `visited` makes it terminate whatever the table holds.
      let frontier: readonly string[] = artifact.parent_artifacts;
      for (let depth = 1; frontier.length > 0; depth++) {
        if (depth > maxDepth) {
          truncated = frontier.some((id) => !visited.has(id));
          break;
        }
        const next: string[] = [];
        for (const id of frontier) {
          if (visited.has(id)) continue;
          visited.add(id);
          if (lineage.length >= MAX_LINEAGE) {
            truncated = true;
            break;
          }
          const row = q.get.get(id);
          if (!row) {
            missing.push(id);
            continue;
          }
          const ancestor = toArtifact(row);
          lineage.push(Object.freeze({ ...ancestor, depth }));
          next.push(...ancestor.parent_artifacts);
        }
        if (truncated) break;
        frontier = next;
      }
      return { artifact, lineage, missing, truncated };
    },
    list(query = {}) {
      if (!isPlainObject(query as unknown)) throw new TesseraError('VALIDATION_FAILED', 'list: the query must be an object.');
      const limit = checkInteger(query.limit, 'limit', 1, 1000, 100);
      const where: string[] = [];
      const params: Record<string, unknown> = { limit: limit + 1 };
      if (query.kind !== undefined) {
        where.push('kind = @kind');
        params['kind'] = checkId(query.kind, 'kind');
      }
      if (query.state !== undefined) {
        if (!ARTIFACT_STATES.includes(query.state)) throw new TesseraError('VALIDATION_FAILED', `state must be one of ${ARTIFACT_STATES.join(', ')}.`);
        where.push('state = @state');
        params['state'] = query.state;
      } else {
        where.push("state <> 'DELETED'");
      }
      if (query.tenant_id !== undefined) {
        where.push('tenant_id = @tenant_id');
        params['tenant_id'] = checkId(query.tenant_id, 'tenant_id');
      }
      const producer = checkProducer(query.produced_by, 'produced_by');
      for (const [field, column] of Object.entries(PRODUCER_COLUMNS)) {
        const value = producer[field as keyof ArtifactProducer];
        if (value === undefined) continue;
        where.push(`${column} = @${column}`);
        params[column] = value;
      }
      if (query.after !== undefined) {
        const cursor = q.seqOf.get(checkId(query.after, 'after'));
        if (!cursor) throw new TesseraError('VALIDATION_FAILED', `after: no artifact ${query.after}; pass the "next" of a previous page.`);
        where.push('seq > @after');
        params['after'] = cursor.seq;
      }
      // Columns and operators above are fixed strings; every value is a bound parameter.
      const rows = db.prepare<[Record<string, unknown>], Row>(`SELECT * FROM artifacts WHERE ${where.join(' AND ')} ORDER BY seq LIMIT @limit`).all(params);
      const page = rows.slice(0, limit).map(toArtifact);
      return { artifacts: page, next: rows.length > limit ? page[page.length - 1]!.artifact_id : null };
    },
  };
}
