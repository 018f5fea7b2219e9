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
    // The generic agent runtime (seed 003 NFR3.1, NFR3.5; issue 17 point 1): no product-specific code. It imports
    // only from its own folder, Node and the MCP SDK, so that Tessera's agents (main/runtime/orchestrator) stay out.
    files: ['main/runtime/agents/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'Only main/electron may import electron (DESIGN.md "Processes").' }],
        patterns: [
          { group: ['../*', '!./*'], message: 'main/runtime/agents is the generic agent runtime: it imports nothing of Tessera (only its own folder, Node built-ins and @modelcontextprotocol/sdk). Put Tessera-specific code in main/runtime/orchestrator.' },
        ],
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
