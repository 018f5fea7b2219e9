/**
 * Vitest setup file (every project, vitest.config.ts): run again before each test file, also where files share a
 * process, so the helpers' clean-ups (test/helpers/per-file.ts) run after each test and each file. Its `afterAll`
 * is registered before the test file's own, so it runs after them (hooks run in stack order).
 */
import { afterAll, afterEach } from 'vitest';
import { runAfterFile, runAfterTest } from '../helpers/per-file.js';

afterEach(runAfterTest);
afterAll(runAfterFile);
