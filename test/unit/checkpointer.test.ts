/**
 * The WAL checkpointer (main/runtime/store/checkpointer.ts): a worker thread with its own connection copies
 * committed pages into the database file while the writing connection only appends to the WAL.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_INTERVAL_MS, FALLBACK_AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES, startCheckpointer } from '../../main/runtime/store/checkpointer.js';
import { openStore } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WAL checkpointer', () => {
  it('copies committed pages into the database file without the writing connection checkpointing, and close removes the WAL', async () => {
    const path = join(tempDir(), 'db.sqlite');
    const store = openStore({ path, backgroundCheckpoint: true });
    // The writing connection keeps only a far-off fallback threshold: 300 pages never reach it.
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(FALLBACK_AUTOCHECKPOINT_PAGES);
    store.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    const insert = store.db.prepare('INSERT INTO t (body) VALUES (?)');
    const before = statSync(path).size;
    store.db.transaction(() => {
      for (let i = 0; i < 1200; i++) insert.run('x'.repeat(1000));
    })();
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(1_000_000);
    // Within a few intervals the worker has copied the pages: the main file grows by the table's ~1.2 MB.
    const deadline = Date.now() + 20 * CHECKPOINT_INTERVAL_MS;
    while (statSync(path).size < before + 1_000_000 && Date.now() < deadline) await sleep(CHECKPOINT_INTERVAL_MS / 2);
    expect(statSync(path).size).toBeGreaterThan(before + 1_000_000);
    // A reader on another connection sees every row (the copy lost nothing).
    const reader = new Database(path, { readonly: true });
    expect(reader.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 1200 });
    reader.close();
    store.close();
    // The worker closed its connection first, so this close was the last: SQLite removed the WAL.
    expect(existsSync(`${path}-wal`)).toBe(false);
    const again = openStore({ path });
    expect(again.integrityCheck()).toEqual(['ok']);
    again.close();
  });

  it('cuts the WAL file back to its limit once the log restarts after a burst', async () => {
    const path = join(tempDir(), 'db.sqlite');
    const store = openStore({ path, backgroundCheckpoint: true });
    expect(store.db.pragma('journal_size_limit', { simple: true })).toBe(WAL_SIZE_LIMIT_BYTES);
    store.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    const insert = store.db.prepare('INSERT INTO t (body) VALUES (?)');
    // One burst of ~24 MB in the WAL, more than the limit.
    store.db.transaction(() => {
      for (let i = 0; i < 6000; i++) insert.run('x'.repeat(4000));
    })();
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(WAL_SIZE_LIMIT_BYTES);
    // The worker checkpoints it all; the next write restarts the log and SQLite truncates the file to the limit.
    const deadline = Date.now() + 50 * CHECKPOINT_INTERVAL_MS;
    while (statSync(`${path}-wal`).size > WAL_SIZE_LIMIT_BYTES && Date.now() < deadline) {
      await sleep(CHECKPOINT_INTERVAL_MS);
      insert.run('y');
    }
    expect(statSync(`${path}-wal`).size).toBeLessThanOrEqual(WAL_SIZE_LIMIT_BYTES);
    store.close();
  });

  it('hands checkpoints back to the writing connection when the worker cannot open the database', async () => {
    const dir = tempDir();
    const store = openStore({ path: join(dir, 'db.sqlite') });
    store.db.pragma('wal_autocheckpoint = 1000');
    const checkpointer = startCheckpointer(store.db, join(dir, 'missing.sqlite'));
    expect(checkpointer).toBeDefined();
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(FALLBACK_AUTOCHECKPOINT_PAGES);
    const deadline = Date.now() + 5000;
    while (store.db.pragma('wal_autocheckpoint', { simple: true }) !== 1000 && Date.now() < deadline) await sleep(20);
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    checkpointer!.stop();
    store.close();
  });

  it('starts its worker (and the receipt signer starts its own) in a process run with --input-type=module', () => {
    // Workers inherit the parent's flags unless told otherwise; this one made the workers' CommonJS code ESM once.
    const store = fileURLToPath(new URL('../../main/runtime/store/index.ts', import.meta.url));
    const keys = fileURLToPath(new URL('../../main/runtime/keys/index.ts', import.meta.url));
    const script = `
      import { openStore } from ${JSON.stringify(store)};
      import { createWorkerSigner, generateKeyPair } from ${JSON.stringify(keys)};
      const s = openStore({ path: ${JSON.stringify(join(tempDir(), 'db.sqlite'))}, backgroundCheckpoint: true });
      const key = generateKeyPair();
      const signer = createWorkerSigner(key);
      const sig = await signer.sign(new Uint8Array([1]));
      await new Promise((r) => setTimeout(r, 300));
      console.log(JSON.stringify({ autocheckpoint: s.db.pragma('wal_autocheckpoint', { simple: true }), signed: sig.length, threaded: signer.threaded }));
      signer.close();
      s.close();`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    // Still the worker's far-off fallback threshold: the worker did not fail back to SQLite's default.
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual({ autocheckpoint: FALLBACK_AUTOCHECKPOINT_PAGES, signed: 64, threaded: true });
    expect(run.stderr).not.toMatch(/moved back to the writing thread/);
  });
});
