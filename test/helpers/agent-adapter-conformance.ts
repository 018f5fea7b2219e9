/**
 * The conformance suite every agent adapter set must pass (issue 17 §2, seed 003 FR2.1–FR2.2): a
 * {@link SessionPersistenceAdapter} and a {@link StorageBackend}, whatever they store in (files, SQLite, PostgreSQL).
 * It knows only the interfaces of main/runtime/agents/types.ts.
 *
 * Use: `describeAdapterConformance('files', async () => ({ ...createFileAdapters(dir), cleanup }))`. `make` is called
 * once for the suite (`beforeAll`) and `cleanup` once after it; tests share the set and use fresh session ids each,
 * so `fetchAll` may hold other tests' sessions.
 *
 * What it holds every set to, beyond the TSDoc of the interfaces:
 * - a transcript append is idempotent by seq: appending entries whose seq is already stored (a retry after a
 *   failure, possibly overlapping new entries) stores each seq once; a set that says so
 *   ({@link ConformanceOptions.refusesConflictingEntries}) refuses a different entry at a stored seq;
 * - `persistence.delete` removes the record only (the transcript and files are the storage backend's);
 *   `storage.delete(session)` removes that session's files and transcript and nothing of another session;
 * - text round-trips exactly (any script, emoji, NFD not normalized), bytes exactly (all 256 values, empty files);
 * - a session id that is not one safe name segment, and a file path that is absolute or has `..`, `.` or empty
 *   segments, are refused with AgentError AGENT_INPUT_INVALID — before anything is read or written.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionPersistenceAdapter, SessionRecord, StorageBackend, TranscriptEntry } from '../../main/runtime/agents/types.js';

export interface AdapterSetUnderTest {
  persistence: SessionPersistenceAdapter;
  storage: StorageBackend;
  /** Releases what `make` opened (database, folder). */
  cleanup: () => Promise<void>;
}

/** A fresh session id (one safe segment). */
export const newSessionId = () => `ses_${randomBytes(8).toString('hex')}`;

/** A complete, valid record; `patch` overrides fields. */
export function sessionRecord(id: string, patch: Partial<SessionRecord> = {}): SessionRecord {
  const at = '2026-06-01T10:00:00.000Z';
  const usage = { tokens: 0, tool_calls: 0, wall_ms: 0, model_calls: 0 };
  return {
    v: 1,
    id,
    agent_type: 'journey-guide',
    state: 'idle',
    owner: 'traveller:kiosk-1',
    metadata: { journey_id: 'j1', nested: { list: [1, 2.5, true, null, 'x'] } },
    variables: { CITY: 'Lviv' },
    created_at: at,
    updated_at: at,
    last_active_at: at,
    transcript_seq: 0,
    event_seq: 0,
    usage,
    daily: { '2026-06-01': { ...usage } },
    budget_extra: {},
    pause: null,
    degraded: false,
    pending_turn: null,
    ...patch,
  };
}

/** Entries `from`…`to` (inclusive), cycling through every entry type. */
export function transcriptEntries(from: number, to: number, turn = 't1'): TranscriptEntry[] {
  const out: TranscriptEntry[] = [];
  for (let seq = from; seq <= to; seq++) {
    const at = new Date(Date.UTC(2026, 5, 1, 10, 0, 0, seq)).toISOString();
    const call = { id: `call_${seq}`, name: 'city__opening_hours', arguments: { place: `p${seq}`, when: { day: 'mon' } } };
    switch (seq % 5) {
      case 1:
        out.push({ seq, at, turn, type: 'user', text: `message ${seq}`, by: 'traveller:kiosk-1' });
        break;
      case 2:
        out.push({ seq, at, turn, type: 'assistant', text: '', tool_calls: [call], source: 'model', usage: { prompt_tokens: seq, completion_tokens: 3 } });
        break;
      case 3:
        out.push({ seq, at, turn, type: 'tool_call', call, idempotency_key: `s:${call.id}` });
        break;
      case 4:
        out.push({ seq, at, turn, type: 'tool_result', call_id: call.id, ok: seq % 2 === 0, content: `result ${seq}` });
        break;
      default:
        out.push({ seq, at, turn, type: 'turn_end', outcome: 'completed' });
    }
  }
  return out;
}

const seqs = (entries: readonly TranscriptEntry[]) => entries.map((e) => e.seq);
const bytes = (data: Uint8Array | null) => (data === null ? null : Array.from(data));
const INPUT_INVALID = { code: 'AGENT_INPUT_INVALID' };

/** What a set promises beyond the common suite. */
export interface ConformanceOptions {
  /**
   * A *different* entry appended at a stored seq is refused (AGENT_INPUT_INVALID) and nothing of its batch is
   * written; the same entry again (key order aside) changes nothing. The SQLite and PostgreSQL sets promise it;
   * the file-based example keeps the first entry silently.
   */
  refusesConflictingEntries?: boolean;
}

export function describeAdapterConformance(name: string, make: () => Promise<AdapterSetUnderTest>, options: ConformanceOptions = {}): void {
  describe(`agent adapter conformance: ${name}`, () => {
    let set: AdapterSetUnderTest;
    beforeAll(async () => {
      set = await make();
    });
    afterAll(async () => {
      await set?.cleanup();
    });

    it('loads a saved record back equal, and a second save replaces it whole', async () => {
      const { persistence } = set;
      const id = newSessionId();
      const first = sessionRecord(id, { metadata: { a: 1, gone: 'soon' } });
      await persistence.save(first);
      expect(await persistence.load(id)).toEqual(first);
      const second = sessionRecord(id, {
        state: 'paused',
        metadata: { a: 2 },
        transcript_seq: 7,
        pause: { budget: 'tokens', scope: 'session', used: 900, limit: 1000, at: 'model', since: '2026-06-01T10:05:00.000Z' },
        pending_turn: { id: 'turn_2', trace_id: 'tr_2', started_at: '2026-06-01T10:04:00.000Z' },
        updated_at: '2026-06-01T10:05:00.000Z',
      });
      await persistence.save(second);
      expect(await persistence.load(id)).toEqual(second);
    });

    it('answers null for an unknown session and deletes an unknown one without complaint', async () => {
      const id = newSessionId();
      expect(await set.persistence.load(id)).toBeNull();
      await set.persistence.delete(id);
      expect(await set.storage.readTranscript(id)).toEqual([]);
      expect(await set.storage.list(id)).toEqual([]);
      expect(await set.storage.download(id, 'nothing.txt')).toBeNull();
      await set.storage.delete(id, 'nothing.txt');
      await set.storage.delete(id);
    });

    it('fetchAll returns every stored record, closed ones included', async () => {
      const ids = [newSessionId(), newSessionId(), newSessionId()];
      const records = ids.map((id, i) => sessionRecord(id, { state: i === 0 ? 'closed' : 'idle', agent_type: i === 2 ? 'support' : 'journey-guide' }));
      for (const r of records) await set.persistence.save(r);
      const all = await set.persistence.fetchAll();
      expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
      for (const r of records) expect(all.find((x) => x.id === r.id)).toEqual(r);
    });

    it('sync stores many records at once, replacing the ones already stored', async () => {
      const existing = sessionRecord(newSessionId());
      await set.persistence.save(existing);
      await set.persistence.sync([]);
      const updated = { ...existing, state: 'running' as const, event_seq: 42 };
      const fresh = Array.from({ length: 25 }, () => sessionRecord(newSessionId(), { state: 'idle' }));
      await set.persistence.sync([updated, ...fresh]);
      expect(await set.persistence.load(existing.id)).toEqual(updated);
      for (const r of fresh) expect(await set.persistence.load(r.id)).toEqual(r);
    });

    it('persistence.delete removes the record and leaves the transcript to the storage backend', async () => {
      const id = newSessionId();
      await set.persistence.save(sessionRecord(id));
      await set.storage.appendTranscript(id, transcriptEntries(1, 3));
      await set.persistence.delete(id);
      expect(await set.persistence.load(id)).toBeNull();
      expect((await set.persistence.fetchAll()).some((r) => r.id === id)).toBe(false);
      expect(seqs(await set.storage.readTranscript(id))).toEqual([1, 2, 3]);
    });

    it('reads a transcript back in order, after a seq and up to a limit', async () => {
      const id = newSessionId();
      const entries = transcriptEntries(1, 10);
      await set.storage.appendTranscript(id, entries.slice(0, 4));
      await set.storage.appendTranscript(id, []);
      await set.storage.appendTranscript(id, entries.slice(4));
      expect(await set.storage.readTranscript(id)).toEqual(entries);
      expect(await set.storage.readTranscript(id, { after: 6 })).toEqual(entries.slice(6));
      expect(await set.storage.readTranscript(id, { limit: 3 })).toEqual(entries.slice(0, 3));
      expect(await set.storage.readTranscript(id, { after: 2, limit: 5 })).toEqual(entries.slice(2, 7));
      expect(await set.storage.readTranscript(id, { after: 10 })).toEqual([]);
    });

    it('stores each seq once when an append is retried, alone or overlapping new entries', async () => {
      const id = newSessionId();
      const entries = transcriptEntries(1, 6);
      await set.storage.appendTranscript(id, entries.slice(0, 3));
      await set.storage.appendTranscript(id, entries.slice(0, 3));
      await set.storage.appendTranscript(id, entries.slice(1, 5));
      await set.storage.appendTranscript(id, entries.slice(4, 6));
      await set.storage.appendTranscript(id, entries.slice(5, 6));
      expect(await set.storage.readTranscript(id)).toEqual(entries);
    });

    it.runIf(options.refusesConflictingEntries === true)('refuses a different entry at a stored seq, writing nothing of its batch; the same entry again is fine', async () => {
      const id = newSessionId();
      const entries = transcriptEntries(1, 4);
      await set.storage.appendTranscript(id, entries.slice(0, 2));
      const rewritten = { ...entries[1]!, at: '2030-01-01T00:00:00.000Z' } as TranscriptEntry;
      await expect(set.storage.appendTranscript(id, [rewritten, entries[2]!])).rejects.toMatchObject({ ...INPUT_INVALID, message: expect.stringContaining('seq 2') });
      expect(await set.storage.readTranscript(id)).toEqual(entries.slice(0, 2));
      // The same entry with its keys in another order is the same entry: a retry that goes on with new ones.
      const reordered = Object.fromEntries(Object.entries(entries[1]!).reverse()) as unknown as TranscriptEntry;
      await set.storage.appendTranscript(id, [reordered, entries[2]!, entries[3]!]);
      expect(await set.storage.readTranscript(id)).toEqual(entries);
    });

    it('uploads, downloads, lists, overwrites and deletes files, bytes exact', async () => {
      const id = newSessionId();
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      const before = Date.now();
      await set.storage.upload(id, 'b/all-bytes.bin', all);
      await set.storage.upload(id, 'a.txt', new TextEncoder().encode('hello'));
      await set.storage.upload(id, 'empty', new Uint8Array(0));
      // A view into a larger buffer: only the view's bytes are stored.
      const big = Uint8Array.from([9, 9, 1, 2, 3, 9]);
      await set.storage.upload(id, 'b/view.bin', big.subarray(2, 5));
      expect(bytes(await set.storage.download(id, 'b/all-bytes.bin'))).toEqual(bytes(all));
      expect(new TextDecoder().decode((await set.storage.download(id, 'a.txt'))!)).toBe('hello');
      expect(bytes(await set.storage.download(id, 'empty'))).toEqual([]);
      expect(bytes(await set.storage.download(id, 'b/view.bin'))).toEqual([1, 2, 3]);
      const listed = await set.storage.list(id);
      expect(listed.map((f) => [f.path, f.size]).sort()).toEqual([
        ['a.txt', 5],
        ['b/all-bytes.bin', 256],
        ['b/view.bin', 3],
        ['empty', 0],
      ]);
      for (const f of listed) expect(Date.parse(f.updated_at)).toBeGreaterThanOrEqual(before - 60_000);
      await set.storage.upload(id, 'a.txt', new TextEncoder().encode('bye'));
      expect(new TextDecoder().decode((await set.storage.download(id, 'a.txt'))!)).toBe('bye');
      expect((await set.storage.list(id)).find((f) => f.path === 'a.txt')?.size).toBe(3);
      await set.storage.delete(id, 'a.txt');
      expect(await set.storage.download(id, 'a.txt')).toBeNull();
      expect((await set.storage.list(id)).map((f) => f.path).sort()).toEqual(['b/all-bytes.bin', 'b/view.bin', 'empty']);
    });

    it("storage.delete without a path removes the session's files and transcript, and nothing of another session", async () => {
      const [gone, kept] = [newSessionId(), newSessionId()];
      for (const id of [gone, kept]) {
        await set.persistence.save(sessionRecord(id));
        await set.storage.appendTranscript(id, transcriptEntries(1, 4));
        await set.storage.upload(id, 'notes/a.txt', Uint8Array.from([1]));
        await set.storage.upload(id, 'b.bin', Uint8Array.from([2]));
      }
      await set.storage.delete(gone);
      expect(await set.storage.readTranscript(gone)).toEqual([]);
      expect(await set.storage.list(gone)).toEqual([]);
      expect(await set.storage.download(gone, 'notes/a.txt')).toBeNull();
      expect(seqs(await set.storage.readTranscript(kept))).toEqual([1, 2, 3, 4]);
      expect((await set.storage.list(kept)).length).toBe(2);
      // A deleted session starts again from nothing.
      await set.storage.appendTranscript(gone, transcriptEntries(1, 1));
      expect(seqs(await set.storage.readTranscript(gone))).toEqual([1]);
    });

    it('round-trips any text exactly: scripts, emoji, right-to-left, NFD not normalized, unicode file paths', async () => {
      const id = newSessionId();
      const text = 'Привіт, Львів! 東京 😀👩🏽‍🚀 مرحبا e\u0301 (NFD) \u00e9 (NFC) tab\tnew\nline "quotes" \\ back';
      const record = sessionRecord(id, { metadata: { 'ключ 🔑': text, ['e\u0301']: 'nfd key' }, owner: 'traveller:Łódź', variables: { NAME: 'Ἀθῆναι' } });
      await set.persistence.save(record);
      expect(await set.persistence.load(id)).toEqual(record);
      const entries: TranscriptEntry[] = [
        { seq: 1, at: '2026-06-01T10:00:00.000Z', turn: 't', type: 'user', text, by: 'traveller:Łódź' },
        { seq: 2, at: '2026-06-01T10:00:01.000Z', turn: 't', type: 'assistant', text: `${text} ✓`, tool_calls: [], source: 'fallback' },
      ];
      await set.storage.appendTranscript(id, entries);
      await set.storage.appendTranscript(id, entries);
      const back = await set.storage.readTranscript(id);
      expect(back).toEqual(entries);
      expect((back[0] as { text: string }).text.normalize('NFC')).not.toBe((back[0] as { text: string }).text);
      const path = 'звіти/東京 😀.txt';
      await set.storage.upload(id, path, new TextEncoder().encode(text));
      expect(new TextDecoder().decode((await set.storage.download(id, path))!)).toBe(text);
      expect((await set.storage.list(id)).map((f) => f.path)).toEqual([path]);
    });

    it('reads 2000 entries appended in batches back complete and in order', async () => {
      const id = newSessionId();
      const entries = transcriptEntries(1, 2000);
      for (let i = 0; i < entries.length; i += 250) await set.storage.appendTranscript(id, entries.slice(i, i + 250));
      const back = await set.storage.readTranscript(id);
      expect(back.length).toBe(2000);
      expect(back).toEqual(entries);
      expect(seqs(await set.storage.readTranscript(id, { after: 1500, limit: 100 }))).toEqual(Array.from({ length: 100 }, (_, i) => 1501 + i));
    });

    it('refuses session ids that are not one safe name and paths that could leave the session, with AGENT_INPUT_INVALID', async () => {
      const id = newSessionId();
      const data = Uint8Array.from([1]);
      for (const bad of ['', '.', '..', '../x', 'a/b', '/abs', 'a\\b', 'nul\u0000', 'x'.repeat(300)]) {
        await expect(set.persistence.save(sessionRecord(bad)), `save ${bad}`).rejects.toMatchObject(INPUT_INVALID);
        await expect(set.persistence.load(bad), `load ${bad}`).rejects.toMatchObject(INPUT_INVALID);
        await expect(set.storage.appendTranscript(bad, transcriptEntries(1, 1)), `append ${bad}`).rejects.toMatchObject(INPUT_INVALID);
        await expect(set.storage.readTranscript(bad), `read ${bad}`).rejects.toMatchObject(INPUT_INVALID);
        await expect(set.storage.upload(bad, 'a.txt', data), `upload to ${bad}`).rejects.toMatchObject(INPUT_INVALID);
        await expect(set.storage.list(bad), `list ${bad}`).rejects.toMatchObject(INPUT_INVALID);
        await expect(set.storage.delete(bad), `delete ${bad}`).rejects.toMatchObject(INPUT_INVALID);
      }
      for (const bad of ['', '..', '../escape.txt', 'a/../../escape.txt', 'a/./b', 'a//b', 'a/', '/etc/passwd', 'C:\\x', 'C:/x', 'a\\..\\b', 'nul\u0000.txt', 'x'.repeat(2000)]) {
        await expect(set.storage.upload(id, bad, data), `upload ${JSON.stringify(bad)}`).rejects.toMatchObject(INPUT_INVALID);
        await expect(set.storage.download(id, bad), `download ${JSON.stringify(bad)}`).rejects.toMatchObject(INPUT_INVALID);
        await expect(set.storage.delete(id, bad), `delete ${JSON.stringify(bad)}`).rejects.toMatchObject(INPUT_INVALID);
      }
      expect(await set.storage.list(id)).toEqual([]);
      expect(await set.persistence.load(id)).toBeNull();
    });
  });
}
