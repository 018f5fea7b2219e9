/**
 * A file-based adapter set (issue 17 point 2; the README's example to copy): `<dir>/<id>.json` per session
 * (written to a temp file and renamed, so a crash leaves the old or the new record), `<dir>/<id>.jsonl` per
 * transcript (appended and fsynced), files under `<dir>/<id>/files/`.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import type { SessionPersistenceAdapter, SessionRecord, StorageBackend, TranscriptEntry } from './types.js';

export function createFileAdapters(dir: string): { persistence: SessionPersistenceAdapter; storage: StorageBackend } {
  /** Session ids and file paths become file names: refuse anything that could leave `dir`. */
  const safeId = (id: string): string => {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id) || id.includes('..')) throw new Error(`invalid session id: ${id}`);
    return id;
  };
  const filesOf = (id: string): string => join(dir, safeId(id), 'files');
  const fileOf = (id: string, path: string): string => {
    const rel = normalize(path).replace(/^[/\\]+/, '');
    if (rel === '' || rel === '.' || rel.split(/[/\\]/).includes('..')) throw new Error(`invalid file path: ${path}`);
    return join(filesOf(id), rel);
  };
  const missing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';
  const readOrNull = async (path: string): Promise<Buffer | null> => readFile(path).catch((err: unknown) => (missing(err) ? null : Promise.reject(err)));
  const atomicWrite = async (path: string, data: string | Uint8Array): Promise<void> => {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, data, { flush: true });
    await rename(tmp, path);
  };

  const persistence: SessionPersistenceAdapter = {
    async fetchAll() {
      const names = await readdir(dir).catch((err: unknown) => (missing(err) ? [] : Promise.reject(err)));
      const records = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => persistence.load(n.slice(0, -5))));
      return records.filter((r): r is SessionRecord => r !== null);
    },
    async load(id) {
      const data = await readOrNull(join(dir, `${safeId(id)}.json`));
      return data === null ? null : (JSON.parse(data.toString('utf8')) as SessionRecord);
    },
    save: async (record) => atomicWrite(join(dir, `${safeId(record.id)}.json`), JSON.stringify(record)),
    async sync(records) {
      for (const r of records) await persistence.save(r);
    },
    delete: async (id) => rm(join(dir, `${safeId(id)}.json`), { force: true }),
  };

  const storage: StorageBackend = {
    async appendTranscript(id, entries) {
      if (entries.length === 0) return;
      await mkdir(dir, { recursive: true });
      const file = await open(join(dir, `${safeId(id)}.jsonl`), 'a+');
      try {
        // A crash mid-append can leave a torn last line: start on a fresh line so only that entry is lost.
        const { size } = await file.stat();
        const last = size > 0 ? (await file.read(Buffer.alloc(1), 0, 1, size - 1)).buffer.toString('utf8') : '\n';
        await file.write((last === '\n' ? '' : '\n') + entries.map((e) => JSON.stringify(e) + '\n').join(''));
        await file.datasync();
      } finally {
        await file.close();
      }
    },
    async readTranscript(id, options = {}) {
      const data = await readOrNull(join(dir, `${safeId(id)}.jsonl`));
      const entries: TranscriptEntry[] = [];
      for (const line of (data?.toString('utf8') ?? '').split('\n')) {
        try {
          if (line.trim() !== '') entries.push(JSON.parse(line) as TranscriptEntry);
        } catch {
          // the torn last line of a crash (see appendTranscript)
        }
      }
      const after = entries.filter((e) => e.seq > (options.after ?? 0));
      return options.limit === undefined ? after : after.slice(0, options.limit);
    },
    upload: async (id, path, data) => atomicWrite(fileOf(id, path), data),
    async download(id, path) {
      const data = await readOrNull(fileOf(id, path));
      return data === null ? null : new Uint8Array(data);
    },
    async list(id) {
      const root = filesOf(id);
      const names = await readdir(root, { recursive: true }).catch((err: unknown) => (missing(err) ? [] : Promise.reject(err)));
      const out: Array<{ path: string; size: number; updated_at: string }> = [];
      for (const name of names) {
        const st = await stat(join(root, name));
        if (st.isFile() && !name.endsWith('.tmp')) out.push({ path: name.split(sep).join('/'), size: st.size, updated_at: st.mtime.toISOString() });
      }
      return out.sort((a, b) => a.path.localeCompare(b.path));
    },
    async delete(id, path) {
      if (path !== undefined) return rm(fileOf(id, path), { force: true });
      await rm(join(dir, safeId(id)), { recursive: true, force: true });
      await rm(join(dir, `${id}.jsonl`), { force: true });
    },
  };
  return { persistence, storage };
}
