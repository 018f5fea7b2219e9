import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PluginInfo } from '../../main/common/api.js';
import { checkLock, readLock, resolveLock, writeLock } from '../../sandbox/lock.js';
import { tempDir } from '../helpers/tmp.js';

const cid = (n: number) => `b3:${n.toString(16).padStart(64, '0')}`;
const plugin = (name: string, version: string, n: number): PluginInfo => ({
  key: `${name}@${version}`,
  name,
  version,
  kind: 'policy',
  cid: cid(n),
  entry_cid: cid(n + 1000),
  publisher: { keyid: cid(9999), name: 'pub' },
  trust: 'trusted',
  capabilities: [],
  limits: { memoryMb: 16, timeoutMs: 50, deadlineMs: 5000, maxOutputChars: 1 },
  manifest: {},
});

const loaded = [plugin('policy-existence', '1.0.0', 1), plugin('policy-existence', '1.4.2', 2), plugin('policy-existence', '2.0.0', 3), plugin('policy-quota', '0.3.1', 4)];

describe('plugin pinning by semver range and lock file', () => {
  it('locks the highest loaded version inside each range, with its cids', () => {
    const lock = resolveLock({ 'policy-existence': '^1', 'policy-quota': '~0.3.0' }, loaded);
    expect(lock.plugins).toEqual({
      'policy-existence': { version: '1.4.2', cid: cid(2), entry_cid: cid(1002), publisher: cid(9999) },
      'policy-quota': { version: '0.3.1', cid: cid(4), entry_cid: cid(1004), publisher: cid(9999) },
    });
    expect(checkLock(lock, loaded).map((p) => p.key)).toEqual(['policy-existence@1.4.2', 'policy-quota@0.3.1']);
  });

  it('names every requirement it cannot satisfy', () => {
    expect(() => resolveLock({ 'policy-existence': '^3', 'tool-x': '*', 'policy-quota': 'latest please' }, loaded)).toThrow(
      expect.objectContaining({ code: 'PLUGIN_NOT_FOUND', message: expect.stringMatching(/policy-existence@\^3: only 1\.0\.0, 1\.4\.2, 2\.0\.0 loaded.*policy-quota: "latest please" is not a semver range.*tool-x@\*: not loaded/) }),
    );
  });

  it('refuses a loaded plugin whose cid differs from the lock, and a missing one', () => {
    const lock = resolveLock({ 'policy-existence': '^1' }, loaded);
    const swapped = [plugin('policy-existence', '1.4.2', 77)];
    expect(() => checkLock(lock, swapped)).toThrow(expect.objectContaining({ code: 'PLUGIN_TAMPERED', message: expect.stringContaining(cid(77)) }));
    expect(() => checkLock(lock, [])).toThrow(expect.objectContaining({ code: 'PLUGIN_NOT_FOUND' }));
  });

  it('round-trips through a lock file and rejects a malformed one', () => {
    const file = join(tempDir(), 'plugins.lock.json');
    const lock = resolveLock({ 'policy-quota': '^0.3' }, loaded);
    writeLock(file, lock);
    expect(readLock(file)).toEqual(lock);
    writeFileSync(file, '{"lockfileVersion":1,"requires":{},"plugins":{"x":{"version":"one","cid":"b3:zz"}}}');
    expect(() => readLock(file)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    writeFileSync(file, 'not json');
    expect(() => readLock(file)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});
