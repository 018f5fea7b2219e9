/**
 * One runtime per data folder (issue 13 point 10): two servers on one folder resumed each other's live runs and
 * repeated their tool effects. The runtime holds an exclusive lock on the folder for its life; a second start
 * fails with DATA_DIR_LOCKED naming the holder, and a holder killed with SIGKILL leaves no lock behind.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { LOCK_OWNER_FILE } from '../../main/runtime/store/lock.js';
import { requireBuild, runTessera, startTessera, cleanEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const open = (dataDir: string) => createRuntime({ dataDir, shell: 'headless', logger: createMemoryLogger(), voice: false, pluginDirs: [] });

describe('the data folder lock', () => {
  beforeAll(() => requireBuild());

  it('refuses a second runtime on a folder in use in this process, and frees the folder when the first closes', async () => {
    const dataDir = tempDir('tessera-lock-');
    const first = await open(dataDir);
    try {
      await expect(open(dataDir)).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED', message: expect.stringContaining(dataDir) });
      // The refused start changed nothing: the first runtime still writes.
      expect(first.bus.publish('test.still_here', {}).id).toBeGreaterThan(0);
      expect(JSON.parse(readFileSync(join(dataDir, LOCK_OWNER_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
    } finally {
      await first.close();
    }
    expect(existsSync(join(dataDir, LOCK_OWNER_FILE))).toBe(false);
    const second = await open(dataDir);
    await second.close();
  });

  it('makes a second `tessera start` on the folder exit 1 with DATA_DIR_LOCKED and the pid of the one running', async () => {
    const dataDir = tempDir('tessera-lock-cli-');
    const env = cleanEnv({ TESSERA_TOKEN: 'lock-test-token-0123456789abcdef' });
    const running = await startTessera(dataDir, [], env);
    try {
      const second = runTessera(['start', '--headless', '--port', '0', '--data', dataDir], env);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain('error DATA_DIR_LOCKED:');
      expect(second.stderr).toContain(`process ${running.child.pid}`);
      // The first server was not disturbed by the refused start.
      const ready = await fetch(`${running.origin}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      running.child.kill('SIGTERM');
      await running.exited;
    }
  }, 90_000);

  it('takes over the folder of a runtime killed with SIGKILL (the lock dies with its process)', async () => {
    const dataDir = tempDir('tessera-lock-kill-');
    const env = cleanEnv({ TESSERA_TOKEN: 'lock-test-token-0123456789abcdef' });
    const victim = await startTessera(dataDir, [], env);
    await expect(open(dataDir)).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED', details: { pid: victim.child.pid } });
    victim.child.kill('SIGKILL');
    await victim.exited;
    // Its owner file is still there (nothing ran at its death), yet the lock is free.
    expect(JSON.parse(readFileSync(join(dataDir, LOCK_OWNER_FILE), 'utf8'))).toMatchObject({ pid: victim.child.pid });
    const heir = await open(dataDir);
    try {
      expect(JSON.parse(readFileSync(join(dataDir, LOCK_OWNER_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
      expect(heir.ready).toBe(true);
    } finally {
      await heir.close();
    }
  }, 90_000);
});
