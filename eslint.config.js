// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['node:*', 'fs', 'path', 'os', 'child_process', 'crypto', 'http', 'net', 'worker_threads'];

/**
 * Layering (STYLE.md §1), enforced here rather than by convention:
 * - main/common: pure code shared with the renderer and the sandbox — no Node, no Electron, nothing outside it.
 * - main/runtime and main/host: Node only — never `electron`.
 * - renderer: browser only — may reach main/common, nothing else of main/.
 * - only main/electron imports `electron`.
 */
export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', 'test/e2e/artifacts/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-console': 'off',
    },
  },
  {
    files: ['main/common/**'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: [...nodeBuiltins, 'electron'], message: 'main/common is shared with the renderer and the sandbox: keep it pure.' },
          { group: ['../runtime/*', '../host/*', '../electron/*', '../../*'], message: 'main/common imports nothing outside itself.' },
        ],
      }],
    },
  },
  {
    files: ['main/runtime/**', 'main/host/**', 'sandbox/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'Only main/electron may import electron (DESIGN.md "Processes").' }],
        patterns: [{ group: ['**/electron/*'], message: 'The runtime never depends on the Electron shell.' }],
      }],
    },
  },
  {
    files: ['renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: [...nodeBuiltins, 'electron'], message: 'The renderer runs in a browser sandbox.' },
          { group: ['**/main/runtime/**', '**/main/host/**', '**/main/electron/**', '**/sandbox/**'], message: 'The renderer reaches main/ only through main/common and the client interface.' },
        ],
      }],
    },
  },
);
