/**
 * The agent runtime's PostgreSQL adapter set (main/cloud/agent-store.ts, issue 17 §2) on PGlite (in memory) and on a
 * real, throwaway PostgreSQL 15 server (test/helpers/postgres.ts cloudDbs): the shared adapter conformance suite,
 * then what is the cloud's own — scopes kept apart, the row columns, a conflicting append refused whole, concurrent
 * retried appends, text jsonb cannot hold, the file size limit, and a database error surfacing as AGENT_ADAPTER_FAILED.
 * One database per kind for the whole file (a PGlite instance takes seconds to start).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgAgentAdapters } from '../../main/cloud/agent-store.js';
import type { Db } from '../../main/cloud/db.js';
import { describeAdapterConformance, newSessionId, sessionRecord, transcriptEntries } from '../helpers/agent-adapter-conformance.js';
import { cloudDbs } from '../helpers/postgres.js';

describe.each(cloudDbs())('PostgreSQL agent adapters (%s)', (kind, open) => {
  let db: Db;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    await db?.close();
  });

  // The suite's beforeAll runs after this describe's, so `db` is open when `make` is called.
  describeAdapterConformance(`postgres set on ${kind}`, async () => ({ ...createPgAgentAdapters(db, { scope: 'conformance' }), cleanup: async () => undefined }), { refusesConflictingEntries: true });

  it('keeps two scopes apart on one database: records, transcripts and files', async () => {
    const a = createPgAgentAdapters(db, { scope: 'tenant-a' });
    const b = createPgAgentAdapters(db, { scope: 'tenant-b' });
    const id = newSessionId();
    await a.persistence.save(sessionRecord(id, { owner: 'a' }));
    await a.storage.appendTranscript(id, transcriptEntries(1, 3));
    await a.storage.upload(id, 'f.txt', Uint8Array.from([1, 2]));
    expect(await b.persistence.load(id)).toBeNull();
    expect((await b.persistence.fetchAll()).some((r) => r.id === id)).toBe(false);
    expect(await b.storage.readTranscript(id)).toEqual([]);
    expect(await b.storage.download(id, 'f.txt')).toBeNull();
    // The same id in scope b is its own session; deleting it there leaves a's untouched.
    await b.persistence.save(sessionRecord(id, { owner: 'b' }));
    await b.storage.appendTranscript(id, transcriptEntries(1, 1, 'other'));
    await b.storage.delete(id);
    await b.persistence.delete(id);
    expect((await a.persistence.load(id))?.owner).toBe('a');
    expect((await a.storage.readTranscript(id)).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await a.storage.list(id)).map((f) => f.path)).toEqual(['f.txt']);
    expect(() => createPgAgentAdapters(db, { scope: '../x' })).toThrow(expect.objectContaining({ code: 'AGENT_INPUT_INVALID' }));
  });

  it("keeps agent_type, state and updated_at columns equal to the record's, through save and sync", async () => {
    const { persistence } = createPgAgentAdapters(db, { scope: 'columns' });
    const id = newSessionId();
    await persistence.save(sessionRecord(id, { agent_type: 'support', state: 'paused', updated_at: '2026-06-02T08:00:00.000Z' }));
    const row = async () =>
      (await db.query<{ agent_type: string; state: string; updated_at: Date }>("SELECT agent_type, state, updated_at FROM agent_sessions WHERE scope = 'columns' AND id = $1", [id]))[0]!;
    expect(await row()).toMatchObject({ agent_type: 'support', state: 'paused' });
    expect(new Date((await row()).updated_at).toISOString()).toBe('2026-06-02T08:00:00.000Z');
    // Two records of one id in a sync: the last wins, as with two saves.
    await persistence.sync([sessionRecord(id, { state: 'running' }), sessionRecord(id, { state: 'closed', updated_at: '2026-06-03T09:00:00.000Z' })]);
    expect(await row()).toMatchObject({ state: 'closed' });
    expect(new Date((await row()).updated_at).toISOString()).toBe('2026-06-03T09:00:00.000Z');
    expect((await persistence.load(id))?.state).toBe('closed');
  });

  it('refuses a different entry at a stored seq and writes none of that batch', async () => {
    const { storage } = createPgAgentAdapters(db, { scope: 'conflict' });
    const id = newSessionId();
    await storage.appendTranscript(id, transcriptEntries(1, 2));
    const forged = transcriptEntries(2, 4).map((e) => (e.seq === 2 ? { ...e, turn: 'rewritten' } : e));
    await expect(storage.appendTranscript(id, forged)).rejects.toMatchObject({ code: 'AGENT_INPUT_INVALID', options: { details: { seqs: [2] } } });
    expect(await storage.readTranscript(id)).toEqual(transcriptEntries(1, 2));
    // Out-of-order or invalid seqs are refused before the database.
    await expect(storage.appendTranscript(id, [...transcriptEntries(4, 4), ...transcriptEntries(3, 3)])).rejects.toMatchObject({ code: 'AGENT_INPUT_INVALID' });
    await expect(storage.appendTranscript(id, transcriptEntries(0, 0))).rejects.toMatchObject({ code: 'AGENT_INPUT_INVALID' });
  });

  it('stores each seq once when the same batch is appended concurrently (a retry racing the original)', async () => {
    const { storage } = createPgAgentAdapters(db, { scope: 'race' });
    const id = newSessionId();
    const entries = transcriptEntries(1, 50);
    await Promise.all([storage.appendTranscript(id, entries), storage.appendTranscript(id, entries), storage.appendTranscript(id, entries.slice(20))]);
    expect(await storage.readTranscript(id)).toEqual(entries);
  });

  it('stores NUL and unpaired surrogates, which jsonb cannot hold, as U+FFFD and keeps the session', async () => {
    const { persistence, storage } = createPgAgentAdapters(db, { scope: 'unstorable' });
    const id = newSessionId();
    await storage.appendTranscript(id, [{ seq: 1, at: '2026-06-01T10:00:00.000Z', turn: 't', type: 'tool_result', call_id: 'c', ok: true, content: 'bin\u0000ary \ud800 lone 😀 pair' }]);
    expect(await storage.readTranscript(id)).toMatchObject([{ content: 'bin\ufffdary \ufffd lone 😀 pair' }]);
    await persistence.save(sessionRecord(id, { metadata: { 'k\u0000ey': 'v\udc00' } }));
    expect((await persistence.load(id))?.metadata).toEqual({ 'k\ufffdey': 'v\ufffd' });
  });

  it('refuses a file over the size limit', async () => {
    const { storage } = createPgAgentAdapters(db, { scope: 'limits', maxFileBytes: 1024 });
    const id = newSessionId();
    await storage.upload(id, 'ok.bin', new Uint8Array(1024));
    await expect(storage.upload(id, 'big.bin', new Uint8Array(1025))).rejects.toMatchObject({ code: 'AGENT_INPUT_INVALID', options: { details: { size: 1025, limit: 1024 } } });
    expect((await storage.list(id)).map((f) => f.path)).toEqual(['ok.bin']);
  });

  it("surfaces the database's own error as AGENT_ADAPTER_FAILED with the driver's error as cause", async () => {
    // The same database, with every statement pointed at tables that do not exist: PostgreSQL itself fails the query.
    const missing = (text: string) => text.replace(/\bagent_(sessions|transcript|files)\b/g, 'agent_$1_missing');
    const broken: Db = {
      kind: db.kind,
      query: (text, params) => db.query(missing(text), params),
      tx: (fn) => db.tx((sql) => fn({ query: (text, params) => sql.query(missing(text), params) })),
      close: async () => undefined,
    };
    const { persistence, storage } = createPgAgentAdapters(broken, { scope: 'broken' });
    const id = newSessionId();
    const failed = (op: string) => ({ code: 'AGENT_ADAPTER_FAILED', retryable: true, options: { details: { adapter: 'postgres', op } }, message: expect.stringMatching(/agent_\w+_missing/) });
    await expect(persistence.save(sessionRecord(id))).rejects.toMatchObject(failed('save'));
    await expect(persistence.sync([sessionRecord(id)])).rejects.toMatchObject(failed('sync'));
    await expect(persistence.fetchAll()).rejects.toMatchObject(failed('fetchAll'));
    await expect(storage.appendTranscript(id, transcriptEntries(1, 1))).rejects.toMatchObject(failed('appendTranscript'));
    await expect(storage.readTranscript(id)).rejects.toMatchObject(failed('readTranscript'));
    await expect(storage.upload(id, 'a', Uint8Array.from([1]))).rejects.toMatchObject(failed('upload'));
    await expect(storage.delete(id)).rejects.toMatchObject(failed('delete'));
    const err = await persistence.load(id).catch((e: unknown) => e);
    expect((err as Error).cause).toBeInstanceOf(Error);
  });
});
