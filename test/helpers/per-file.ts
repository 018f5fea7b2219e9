/**
 * Clean-ups that helpers register once, at import, and that must run after every test or after every test file.
 *
 * A helper cannot call `afterAll`/`afterEach` at import for this: where test files share one process
 * (`isolate: false`, vitest.config.ts), a helper module is imported once, so hooks it registers at import belong to
 * the first file that imported it only, and later files would leave their folders and servers behind.
 * test/setup/per-file.ts (a vitest setup file, run again before every test file) registers the hooks that call these.
 */
type CleanUp = () => void | Promise<void>;

const afterTest: CleanUp[] = [];
const afterFile: CleanUp[] = [];

/** Runs `fn` after every test of every file (from now on). */
export function afterEveryTest(fn: CleanUp): void {
  afterTest.push(fn);
}

/** Runs `fn` after the last test (and `afterAll` hooks) of every test file (from now on). */
export function afterEveryFile(fn: CleanUp): void {
  afterFile.push(fn);
}

/** Called by test/setup/per-file.ts. @internal */
export async function runAfterTest(): Promise<void> {
  for (const fn of afterTest) await fn();
}

/** Called by test/setup/per-file.ts. @internal */
export async function runAfterFile(): Promise<void> {
  for (const fn of afterFile) await fn();
}
