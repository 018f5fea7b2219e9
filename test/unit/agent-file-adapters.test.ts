/**
 * The file-based agent adapters (issue 17 point 2): records as JSON, transcripts as `.jsonl`, files per session —
 * on a real temp folder.
 */
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileAdapters, type SessionRecord, type TranscriptEntry } from '../../main/runtime/agents/index.js';
import { tempDir } from '../helpers/tmp.js';

const at = '2025-01-01T00:00:00.000Z';
const user = (seq: number, text: string): TranscriptEntry => ({ seq, at, turn: 't', type: 'user', text, by: 'o' });

describe('file agent adapters', () => {
  it('saves, lists, loads and deletes records, leaving no temp files behind', async () => {
    const dir = tempDir('tessera-agent-files-');
    const { persistence } = createFileAdapters(dir);
    const rec = { v: 1, id: 's1', agent_type: 'guide', state: 'idle' } as SessionRecord;
    await persistence.sync([rec, { ...rec, id: 's2' }]);
    await persistence.save({ ...rec, state: 'closed' });
    expect((await persistence.fetchAll()).map((r) => [r.id, r.state]).sort()).toEqual([['s1', 'closed'], ['s2', 'idle']]);
    expect(readdirSync(dir).sort()).toEqual(['s1.json', 's2.json']);
    await persistence.delete('s2');
    expect(await persistence.load('s2')).toBeNull();
    await expect(persistence.load('../etc/passwd')).rejects.toThrow(/invalid session id/);
  });

  it('reads transcripts after a seq, and loses only the torn last line a crash left', async () => {
    const dir = tempDir('tessera-agent-files-');
    const { storage } = createFileAdapters(dir);
    await storage.appendTranscript('s1', [user(1, 'a'), user(2, 'b')]);
    appendFileSync(join(dir, 's1.jsonl'), '{"seq":3,"at":"2025-01-01T0');
    await storage.appendTranscript('s1', [user(3, 'c')]);
    expect((await storage.readTranscript('s1')).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await storage.readTranscript('s1', { after: 1, limit: 1 })).map((e) => e.seq)).toEqual([2]);
    expect(await storage.readTranscript('nobody')).toEqual([]);
  });

  it("keeps a session's files under its folder and refuses paths that leave it", async () => {
    const dir = tempDir('tessera-agent-files-');
    const { storage } = createFileAdapters(dir);
    await storage.upload('s1', 'notes/plan.txt', new TextEncoder().encode('museum'));
    expect(new TextDecoder().decode((await storage.download('s1', '/notes/plan.txt'))!)).toBe('museum');
    expect((await storage.list('s1')).map((f) => [f.path, f.size])).toEqual([['notes/plan.txt', 6]]);
    await expect(storage.upload('s1', '../../escape.txt', new Uint8Array(1))).rejects.toThrow(/invalid file path/);
    await storage.appendTranscript('s1', [user(1, 'a')]);
    await storage.delete('s1');
    expect(await storage.list('s1')).toEqual([]);
    expect(await storage.readTranscript('s1')).toEqual([]);
  });
});
