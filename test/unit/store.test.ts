import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../main/runtime/store/index.js';
import type { Migration } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const v1: Migration = { version: 1, name: 'notes', up: (db) => db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)') };
const v2: Migration = { version: 2, name: 'notes.tag', up: (db) => db.exec('ALTER TABLE notes ADD COLUMN tag TEXT') };

describe('store', () => {
  it('opens in WAL mode and applies each module migration exactly once', () => {
    const path = join(tempDir(), 'db.sqlite');
    const store = openStore({ path });
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.migrate('notes', [v1])).toBe(1);
    store.close();
    const again = openStore({ path });
    expect(again.migrate('notes', [v1, v2])).toBe(2);
    expect(again.migrate('notes', [v1, v2])).toBe(2);
    expect(again.versions()).toEqual({ notes: 2 });
    expect(again.integrityCheck()).toEqual(['ok']);
    again.close();
    expect(again.isOpen).toBe(false);
  });

  it('rolls a failing migration back completely and reports STORE_MIGRATION_FAILED', () => {
    const store = openStore({ path: join(tempDir(), 'db.sqlite') });
    const broken: Migration = {
      version: 2,
      name: 'half done',
      up: (db) => {
        db.exec('CREATE TABLE half (x)');
        db.exec('THIS IS NOT SQL');
      },
    };
    store.migrate('m', [v1]);
    expect(() => store.migrate('m', [v1, broken])).toThrow(expect.objectContaining({ code: 'STORE_MIGRATION_FAILED' }));
    expect(store.versions()).toEqual({ m: 1 });
    expect(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    store.close();
  });

  it('refuses a database written by a newer schema than this build knows', () => {
    const path = join(tempDir(), 'db.sqlite');
    const store = openStore({ path });
    store.migrate('m', [v1, v2]);
    expect(() => store.migrate('m', [v1])).toThrow(expect.objectContaining({ code: 'STORE_TOO_NEW' }));
    store.close();
  });

  it('names the file when it is not a database', () => {
    const path = join(tempDir(), 'garbage.db');
    writeFileSync(path, 'this is not sqlite, just text that is long enough to have a header'.repeat(20));
    expect(() => openStore({ path })).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining(path) }));
  });
});
