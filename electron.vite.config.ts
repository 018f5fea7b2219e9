import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';

// One build for three targets. `main` emits two entries: the Electron main process and the plain-Node CLI
// (`bin/tessera.js` loads out/main/cli.js), which share every runtime chunk. Dependencies stay external:
// better-sqlite3 and isolated-vm are native and must be resolved from node_modules at run time.
export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      rollupOptions: {
        input: {
          electron: resolve('main/electron/main.ts'),
          cli: resolve('main/host/cli.ts'),
          // The sandbox host process entry (sandbox/client.ts looks for it next to the runtime).
          'sandbox-host': resolve('sandbox/host-main.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      rollupOptions: {
        input: { preload: resolve('main/electron/preload.ts') },
        // A sandboxed preload cannot be an ES module (Electron security checklist: sandbox on).
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: 'renderer',
    base: './',
    esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
    build: {
      outDir: resolve('out/renderer'),
      emptyOutDir: true,
      rollupOptions: { input: resolve('renderer/index.html') },
    },
  },
});
