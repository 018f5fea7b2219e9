import { chmodSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { isSecret, redact, reveal, secret } from '../../main/common/expr.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { SECRETS_CHANGED_TOPIC, SECRET_KEY_FILE, createSecretStore } from '../../main/runtime/secrets/index.js';
import type { KeyProtector } from '../../main/runtime/secrets/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const VALUE = 'sk-live-9f8e7d6c5b4a-TOP-SECRET';
const posix = process.platform !== 'win32';

const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function setup(dir = tempDir(), protector?: KeyProtector) {
  const store = openStore({ path: join(dir, 'tessera.db') });
  stores.push(store);
  const journal = createJournal({ store });
  const bus = createBus({ journal, logger: createMemoryLogger() });
  const secrets = createSecretStore({ store, dataDir: dir, bus, ...(protector ? { protector } : {}) });
  return { dir, store, journal, secrets };
}

function caught(f: () => unknown): { code?: string; message: string } {
  try {
    f();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a throw');
}

describe('secrets', () => {
  it('returns a stored value as a Secret that reveals it, also after reopening the store', () => {
    const { dir, secrets } = setup();
    secrets.set('weather.api_key', VALUE);
    const s = secrets.get('weather.api_key');
    expect(isSecret(s)).toBe(true);
    expect(reveal(s)).toBe(VALUE);
    stores.splice(0).forEach((st) => st.close());
    const again = setup(dir).secrets;
    expect(reveal(again.get('weather.api_key'))).toBe(VALUE);
    expect(again.has('weather.api_key')).toBe(true);
    expect(again.list()).toEqual(['weather.api_key']);
  });

  it('accepts a Secret as the value, replaces on set and forgets on delete', () => {
    const { secrets } = setup();
    secrets.set('a.token', secret('one'));
    secrets.set('a.token', 'two');
    expect(reveal(secrets.get('a.token'))).toBe('two');
    expect(secrets.delete('a.token')).toBe(true);
    expect(secrets.delete('a.token')).toBe(false);
    expect(secrets.has('a.token')).toBe(false);
    expect(caught(() => secrets.get('a.token')).code).toBe('NOT_FOUND');
  });

  it('keeps only ciphertext at rest: neither the database file nor the key file contains the value', () => {
    const { dir, store, secrets } = setup();
    secrets.set('weather.api_key', VALUE);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    const raw = readFileSync(join(dir, 'tessera.db'));
    expect(raw.includes(Buffer.from(VALUE))).toBe(false);
    expect(raw.includes(Buffer.from('weather.api_key'))).toBe(true);
    expect(readFileSync(join(dir, SECRET_KEY_FILE), 'utf8')).not.toContain(VALUE);
  });

  it('detects a tampered ciphertext, and one moved to another name, without showing the value', () => {
    const { store, secrets } = setup();
    secrets.set('a.one', VALUE);
    secrets.set('a.two', 'other');
    const { box } = store.db.prepare<[], { box: Buffer }>("SELECT box FROM secrets WHERE name = 'a.one'").get()!;
    const flipped = Buffer.from(box);
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0x01;
    store.db.prepare("UPDATE secrets SET box = ? WHERE name = 'a.one'").run(flipped);
    const err = caught(() => secrets.get('a.one'));
    expect(err.code).toBe('SECRET_UNREADABLE');
    expect(err.message).toMatch(/"a\.one" cannot be decrypted: its ciphertext was altered/);
    expect(err.message).not.toContain(VALUE);
    store.db.prepare("UPDATE secrets SET box = ? WHERE name = 'a.two'").run(box);
    expect(caught(() => secrets.get('a.two')).code).toBe('SECRET_UNREADABLE');
    expect(caught(() => secrets.scope()).code).toBe('SECRET_UNREADABLE');
  });

  it.runIf(posix)('creates the key file with mode 0600 on first use, and not before', () => {
    const { dir, secrets } = setup();
    expect(() => statSync(join(dir, SECRET_KEY_FILE))).toThrow();
    expect(secrets.list()).toEqual([]);
    secrets.set('x', 'y');
    expect(statSync(join(dir, SECRET_KEY_FILE)).mode & 0o777).toBe(0o600);
  });

  it.runIf(posix)('refuses a key file that other users can read, naming the file and the fix', () => {
    const first = setup();
    first.secrets.set('x', 'y');
    stores.splice(0).forEach((s) => s.close());
    chmodSync(join(first.dir, SECRET_KEY_FILE), 0o644);
    const { secrets } = setup(first.dir);
    const err = caught(() => secrets.get('x'));
    expect(err.code).toBe('KEY_FILE_INVALID');
    expect(err.message).toContain(join(first.dir, SECRET_KEY_FILE));
    expect(err.message).toMatch(/accessible by other users \(mode 0644\); run "chmod 600/);
  });

  it('refuses to make a new key when secrets are stored but the key file is gone', () => {
    const first = setup();
    first.secrets.set('x', 'y');
    stores.splice(0).forEach((s) => s.close());
    chmodSync(join(first.dir, SECRET_KEY_FILE), 0o600);
    rmSync(join(first.dir, SECRET_KEY_FILE));
    const err = caught(() => setup(first.dir).secrets.get('x'));
    expect(err.code).toBe('KEY_FILE_INVALID');
    expect(err.message).toMatch(/is missing but 1 secret\(s\) are stored/);
  });

  it('validates names before touching the store', () => {
    const { secrets } = setup();
    for (const bad of ['', 'Weather.key', '1abc', 'a b', '_x', 'a'.repeat(65), 'a/b']) {
      const err = caught(() => secrets.set(bad, 'v'));
      expect(err.code).toBe('VALIDATION_FAILED');
      expect(err.message).toMatch(/is not a secret name/);
    }
    expect(() => secrets.set('a'.repeat(64), 'v')).not.toThrow();
    expect(() => secrets.set('weather.api-key_2', 'v')).not.toThrow();
    expect(caught(() => secrets.set('ok', 42 as unknown as string)).message).toBe('The value of secret "ok" must be a string.');
  });

  it('never reveals a value through redact, JSON, String or inspect', () => {
    const { secrets } = setup();
    secrets.set('weather.api_key', VALUE);
    secrets.set('tg.token', 'tg-123456');
    const scope = secrets.scope();
    expect(Object.keys(scope)).toEqual(['tg.token', 'weather.api_key']);
    expect(redact(scope)).toEqual({ 'tg.token': '***', 'weather.api_key': '***' });
    const s = secrets.get('weather.api_key');
    expect(JSON.stringify({ s, scope })).not.toContain(VALUE);
    expect(String(s)).toBe('***');
    expect(inspect(scope, { depth: 5 })).not.toContain(VALUE);
    expect(reveal(scope)).toEqual({ 'tg.token': 'tg-123456', 'weather.api_key': VALUE });
  });

  it('journals every change as secrets.changed with the name only', () => {
    const { journal, secrets } = setup();
    secrets.set('weather.api_key', VALUE, { trace_id: 'trace-1', by: 'cli' });
    secrets.delete('weather.api_key');
    secrets.delete('weather.api_key');
    const events = journal.query({ topic: SECRETS_CHANGED_TOPIC }).events;
    expect(events.map((e) => e.payload)).toEqual([
      { name: 'weather.api_key', action: 'set', by: 'cli' },
      { name: 'weather.api_key', action: 'delete', by: null },
    ]);
    expect(events[0]!.trace_id).toBe('trace-1');
    expect(JSON.stringify(journal.query({}).events)).not.toContain(VALUE);
  });

  it('keeps a protected key in the key file when a protector is given, and needs it to read', () => {
    const xor = (b: Buffer) => Buffer.from(b.map((x) => x ^ 0x5a));
    const protector: KeyProtector = { encrypt: (b) => Buffer.concat([Buffer.from('P1'), xor(b)]), decrypt: (b) => xor(b.subarray(2)) };
    const first = setup(tempDir(), protector);
    first.secrets.set('x', VALUE);
    const file = JSON.parse(readFileSync(join(first.dir, SECRET_KEY_FILE), 'utf8')) as { protected: boolean; key: string };
    expect(file.protected).toBe(true);
    expect(Buffer.from(file.key, 'base64').subarray(0, 2).toString()).toBe('P1');
    stores.splice(0).forEach((s) => s.close());
    expect(reveal(setup(first.dir, protector).secrets.get('x'))).toBe(VALUE);
    stores.splice(0).forEach((s) => s.close());
    const err = caught(() => setup(first.dir).secrets.get('x'));
    expect(err.code).toBe('KEY_FILE_INVALID');
    expect(err.message).toMatch(/protected by the desktop keychain/);
  });

  it('wraps an existing raw key the first time a protector is given', () => {
    const protector: KeyProtector = { encrypt: (b) => Buffer.from(b).reverse(), decrypt: (b) => Buffer.from(b).reverse() };
    const first = setup();
    first.secrets.set('x', VALUE);
    stores.splice(0).forEach((s) => s.close());
    expect(reveal(setup(first.dir, protector).secrets.get('x'))).toBe(VALUE);
    expect((JSON.parse(readFileSync(join(first.dir, SECRET_KEY_FILE), 'utf8')) as { protected: boolean }).protected).toBe(true);
    if (posix) expect(statSync(join(first.dir, SECRET_KEY_FILE)).mode & 0o777).toBe(0o600);
  });
});
