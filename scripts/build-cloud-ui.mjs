// Builds the cloud operator page (renderer/cloud/, issue 16 §7) into out/cloud-ui/ with esbuild: index.html, and
// ui/app.js + ui/app.css (one ES module, no inline script: it runs under the strict CSP main/cloud/ui.ts sends).
// Run by `npm run build`; the cloud serves the folder at `/` (main/cloud/ui.ts).
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'out', 'cloud-ui');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'ui'), { recursive: true });
await build({
  entryPoints: [join(root, 'renderer', 'cloud', 'main.tsx')],
  outfile: join(out, 'ui', 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(root, 'renderer', 'cloud', 'index.html'), join(out, 'index.html'));
process.stdout.write('built the cloud operator page into out/cloud-ui\n');
