import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEveryFile, afterEveryTest } from './per-file.js';

const perTest: string[] = [];
const perFile: string[] = [];
afterEveryTest(() => {
  while (perTest.length > 0) rmSync(perTest.pop()!, { recursive: true, force: true });
});
afterEveryFile(() => {
  while (perFile.length > 0) rmSync(perFile.pop()!, { recursive: true, force: true });
});

/**
 * A fresh temporary folder, removed after the current test — or, with `scope: 'file'` (for `beforeAll`),
 * after the last test of the file.
 */
export function tempDir(prefix = 'tessera-test-', scope: 'test' | 'file' = 'test'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  (scope === 'test' ? perTest : perFile).push(dir);
  return dir;
}
