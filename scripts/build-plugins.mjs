// Builds and signs the first-party plugins (plugins/<name>/) into out/plugins/<name>/ with the real
// `tessera plugin build` and `tessera plugin sign`, using the development key plugins/dev-key, whose public
// half is the trust root resources/trust/tessera-dev.pem. Run by `npm run build` after electron-vite.
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { runCli } = await import(new URL('../out/main/cli.js', import.meta.url).href);
const key = join(root, 'plugins', 'dev-key');
// git does not keep file modes: the key arrives 0644 on a fresh clone, and Tessera refuses such a key.
chmodSync(key, 0o600);

const quiet = { stdout: () => {}, stderr: (t) => process.stderr.write(t), env: process.env };
const outRoot = join(root, 'out', 'plugins');
rmSync(outRoot, { recursive: true, force: true });
mkdirSync(outRoot, { recursive: true });
let built = 0;
for (const name of readdirSync(join(root, 'plugins')).sort()) {
  const src = join(root, 'plugins', name);
  if (!existsSync(join(src, 'plugin.json'))) continue;
  const out = join(outRoot, name);
  mkdirSync(out);
  cpSync(join(src, 'plugin.json'), join(out, 'plugin.json'));
  cpSync(join(src, 'src'), join(out, 'src'), { recursive: true });
  for (const args of [['plugin', 'build', out], ['plugin', 'sign', out, '--key', key]]) {
    const code = await runCli(args, quiet);
    if (code !== 0) {
      process.stderr.write(`build-plugins: \`tessera ${args.join(' ')}\` failed (${code})\n`);
      process.exit(1);
    }
  }
  rmSync(join(out, 'src'), { recursive: true });
  built++;
}
process.stdout.write(`built and signed ${built} first-party plugins into out/plugins\n`);
