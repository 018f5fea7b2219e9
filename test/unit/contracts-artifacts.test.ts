/** ArtifactRegistry of seed 002 §4: lifecycle, lineage, listing and journaling, on a real SQLite file. */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createBus } from '../../main/runtime/bus/index.js';
import { ARTIFACT_TRANSITIONS, createArtifactRegistry } from '../../main/runtime/contracts/index.js';
import type { ArtifactState } from '../../main/runtime/contracts/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

const CID = 'b3:' + 'a'.repeat(64);
const pdf = { uri: 'file:///data/a.pdf', media_type: 'application/pdf', bytes: 1234, cid: CID };

function setup(path = join(tempDir(), 'tessera.db')) {
  const store = openStore({ path });
  stores.push(store);
  const journal = createJournal({ store });
  const bus = createBus({ journal, logger: createMemoryLogger() });
  let n = 0;
  return { path, store, journal, bus, artifacts: createArtifactRegistry({ store, bus, newId: () => `art_${++n}` }) };
}

describe('artifact registry', () => {
  it('registers an artifact as PENDING with its producer, parents and metadata, and keeps it across a reopen', () => {
    const first = setup();
    const doc = first.artifacts.register({ kind: 'document', tenant_id: 't1', uri: 'file:///in.pdf', content_cid: CID, produced_by: { intent: 'ingest_file', execution_id: 'exe_1', run_id: 'run-1', step: 'parse' }, metadata: { pages: 3 } });
    expect(doc).toMatchObject({ artifact_id: 'art_1', kind: 'document', tenant_id: 't1', state: 'PENDING', produced_by: { intent: 'ingest_file', execution_id: 'exe_1', run_id: 'run-1', step: 'parse' }, parent_artifacts: [], metadata: { pages: 3 }, materializations: [], failure_reason: null, semantic_descriptor: null });
    first.store.close();
    const second = setup(first.path);
    expect(second.artifacts.get('art_1')).toEqual(doc);
  });

  it('moves through legal states only and journals each move as artifact.<state> with the artifact’s trace id', () => {
    const { artifacts, journal } = setup();
    const a = artifacts.register({ kind: 'report' }, { trace_id: 'trace-art' });
    expect(artifacts.markReady(a.artifact_id, { materializations: [pdf] })).toMatchObject({ state: 'READY', materializations: [pdf] });
    expect(artifacts.archive(a.artifact_id).state).toBe('ARCHIVED');
    expect(artifacts.delete(a.artifact_id).state).toBe('DELETED');
    const b = artifacts.register({ kind: 'report' });
    expect(artifacts.markFailed(b.artifact_id, 'parser crashed')).toMatchObject({ state: 'FAILED', failure_reason: 'parser crashed' });
    const events = journal.query({ topic: 'artifact' }).events;
    expect(events.filter((e) => e.trace_id === 'trace-art').map((e) => e.topic)).toEqual(['artifact.pending', 'artifact.ready', 'artifact.archived', 'artifact.deleted']);
    expect(events.find((e) => e.topic === 'artifact.failed')).toMatchObject({ trace_id: b.trace_id, payload: { artifact_id: b.artifact_id, from: 'PENDING', to: 'FAILED', failure_reason: 'parser crashed' } });
  });

  it('refuses every illegal move with the states involved, and leaves the artifact as it was', () => {
    const { artifacts } = setup();
    const illegal: Array<[ArtifactState, ArtifactState]> = [];
    for (const [from, tos] of Object.entries(ARTIFACT_TRANSITIONS) as Array<[ArtifactState, readonly ArtifactState[]]>) {
      for (const to of ['READY', 'FAILED', 'ARCHIVED', 'DELETED'] as const) if (!tos.includes(to)) illegal.push([from, to]);
    }
    expect(illegal).toContainEqual(['DELETED', 'READY']);
    expect(illegal).toContainEqual(['PENDING', 'ARCHIVED']);
    const reach: Record<ArtifactState, (id: string) => void> = {
      PENDING: () => undefined,
      READY: (id) => artifacts.markReady(id),
      FAILED: (id) => artifacts.markFailed(id, 'no'),
      ARCHIVED: (id) => (artifacts.markReady(id), artifacts.archive(id)),
      DELETED: (id) => artifacts.delete(id),
    };
    const apply: Record<Exclude<ArtifactState, 'PENDING'>, (id: string) => unknown> = {
      READY: (id) => artifacts.markReady(id),
      FAILED: (id) => artifacts.markFailed(id, 'no'),
      ARCHIVED: (id) => artifacts.archive(id),
      DELETED: (id) => artifacts.delete(id),
    };
    for (const [from, to] of illegal) {
      const { artifact_id: id } = artifacts.register({ kind: 'x' });
      reach[from](id);
      expect(() => apply[to as Exclude<ArtifactState, 'PENDING'>](id), `${from} → ${to}`).toThrow(
        expect.objectContaining({ code: 'ARTIFACT_STATE_INVALID', details: expect.objectContaining({ reason: 'ARTIFACT_STATE_INVALID', from, to }), message: expect.stringContaining(`is ${from}; it cannot become ${to}`) }),
      );
      expect(artifacts.get(id)?.state).toBe(from);
    }
  });

  it('validates registration and materializations, naming the bad field', () => {
    const { artifacts } = setup();
    expect(() => artifacts.register({ kind: '' })).toThrow(/kind/);
    expect(() => artifacts.register({ kind: 'x', content_cid: 'sha256:abc' })).toThrow(/content_cid/);
    expect(() => artifacts.register({ kind: 'x', parent_artifacts: ['art_404'] })).toThrow(/parent_artifacts\[0\]: no artifact art_404/);
    expect(() => artifacts.register({ kind: 'x', produced_by: { who: 'me' } as never })).toThrow(/produced_by.who/);
    expect(() => artifacts.register({ kind: 'x', metadata: { blob: 'x'.repeat(70_000) } })).toThrow(expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('metadata') }));
    artifacts.register({ artifact_id: 'mine', kind: 'x' });
    expect(() => artifacts.register({ artifact_id: 'mine', kind: 'x' })).toThrow(/already registered/);
    expect(() => artifacts.register({ kind: 'x', parent_artifacts: ['mine', 'mine'] })).toThrow(/twice/);
    expect(() => artifacts.markReady('mine', { materializations: [{ ...pdf, cid: 'nope' }] })).toThrow(/materializations\[0\]\.cid/);
    expect(() => artifacts.markReady('mine', { materializations: [{ ...pdf, media_type: 'pdf' }] })).toThrow(/materializations\[0\]\.media_type/);
    expect(() => artifacts.markReady('mine', { materializations: [{ ...pdf, bytes: -1 }] })).toThrow(/materializations\[0\]\.bytes/);
    expect(artifacts.get('mine')?.state).toBe('PENDING');
    expect(() => artifacts.markReady('ghost')).toThrow(expect.objectContaining({ code: 'ARTIFACT_NOT_FOUND', details: { reason: 'ARTIFACT_NOT_FOUND', artifact_id: 'ghost' } }));
  });

  it('resolves an artifact with its ancestors breadth-first, each once, nearest first, within max_depth', () => {
    const { artifacts } = setup();
    const source = artifacts.register({ artifact_id: 'source', kind: 'file' });
    const text = artifacts.register({ artifact_id: 'text', kind: 'text', parent_artifacts: ['source'] });
    const tables = artifacts.register({ artifact_id: 'tables', kind: 'table', parent_artifacts: ['source'] });
    artifacts.register({ artifact_id: 'summary', kind: 'summary', parent_artifacts: ['text', 'tables'] });
    const resolved = artifacts.resolve('summary');
    expect(resolved.artifact.parent_artifacts).toEqual(['text', 'tables']);
    expect(resolved.lineage.map((a) => [a.artifact_id, a.depth])).toEqual([['text', 1], ['tables', 1], ['source', 2]]);
    expect(resolved.lineage[2]).toMatchObject({ ...source, depth: 2 });
    expect(resolved).toMatchObject({ missing: [], truncated: false });
    expect(artifacts.resolve('summary', { max_depth: 1 })).toMatchObject({ lineage: [{ artifact_id: text.artifact_id }, { artifact_id: tables.artifact_id }], truncated: true });
    expect(artifacts.resolve('source')).toMatchObject({ lineage: [], truncated: false });
    expect(() => artifacts.resolve('ghost')).toThrow(expect.objectContaining({ code: 'ARTIFACT_NOT_FOUND' }));
  });

  it('terminates and reports missing parents even when the lineage table was damaged into a cycle', () => {
    const { artifacts, store } = setup();
    artifacts.register({ artifact_id: 'a', kind: 'x' });
    artifacts.register({ artifact_id: 'b', kind: 'x', parent_artifacts: ['a'] });
    // Only damage can do this: parents are fixed at registration and must already exist.
    store.db.prepare('INSERT INTO artifact_parents (artifact_id, ord, parent_id) VALUES (?, ?, ?)').run('a', 0, 'b');
    store.db.prepare('INSERT INTO artifact_parents (artifact_id, ord, parent_id) VALUES (?, ?, ?)').run('a', 1, 'lost');
    const resolved = artifacts.resolve('b');
    expect(resolved.lineage.map((e) => e.artifact_id)).toEqual(['a']);
    expect(resolved.missing).toEqual(['lost']);
  });

  it('lists by kind, state, tenant and producer, leaves DELETED out unless asked, and pages by cursor', () => {
    const { artifacts } = setup();
    for (let i = 0; i < 5; i++) artifacts.register({ kind: i % 2 === 0 ? 'even' : 'odd', tenant_id: 't1', produced_by: { execution_id: i < 3 ? 'exe_a' : 'exe_b', step: `s${i}` } });
    artifacts.markReady('art_1');
    artifacts.delete('art_3');
    const ids = (page: { artifacts: Array<{ artifact_id: string }> }) => page.artifacts.map((a) => a.artifact_id);
    expect(ids(artifacts.list())).toEqual(['art_1', 'art_2', 'art_4', 'art_5']);
    expect(ids(artifacts.list({ state: 'DELETED' }))).toEqual(['art_3']);
    expect(ids(artifacts.list({ kind: 'even' }))).toEqual(['art_1', 'art_5']);
    expect(ids(artifacts.list({ state: 'READY' }))).toEqual(['art_1']);
    expect(ids(artifacts.list({ produced_by: { execution_id: 'exe_a' } }))).toEqual(['art_1', 'art_2']);
    expect(ids(artifacts.list({ produced_by: { execution_id: 'exe_b', step: 's4' } }))).toEqual(['art_5']);
    expect(ids(artifacts.list({ tenant_id: 't2' }))).toEqual([]);
    const first = artifacts.list({ limit: 3 });
    expect(first).toMatchObject({ next: 'art_4' });
    expect(artifacts.list({ limit: 3, after: first.next! })).toMatchObject({ artifacts: [{ artifact_id: 'art_5' }], next: null });
    expect(() => artifacts.list({ after: 'nowhere' })).toThrow(/after: no artifact nowhere/);
    expect(() => artifacts.list({ limit: 1001 })).toThrow(/limit/);
    expect(() => artifacts.list({ state: 'GONE' as ArtifactState })).toThrow(/state must be one of/);
  });

  it('lets a subscriber of artifact.pending resolve the artifact it announces', () => {
    const { artifacts, bus } = setup();
    const seen: unknown[] = [];
    bus.subscribe('artifact.pending', (e) => void seen.push(artifacts.get((e.payload as { artifact_id: string }).artifact_id)?.state));
    artifacts.register({ kind: 'x' });
    expect(seen).toEqual(['PENDING']);
  });
});
