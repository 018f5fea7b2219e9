import { defineConfig } from 'vitest/config';

/**
 * One worker on this project's 2-core machines (vitest's default there): most files start servers, runtimes,
 * Chromium or speech engines and wait for them. Unit tests share one process (`isolate: false`): they are pure and
 * fast, and a fresh process per file (about 2–3 s each on a loaded machine) was most of their time.
 */
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    setupFiles: ['test/setup/per-file.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.{ts,tsx}'], isolate: false } },
      { extends: true, test: { name: 'runtime', include: ['test/{integration,sandbox,scenarios,e2e}/**/*.test.{ts,tsx}'] } },
    ],
  },
});
