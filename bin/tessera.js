#!/usr/bin/env node
// The `tessera` command. The CLI is TypeScript built by `npm run build` into out/main/cli.js.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../out/main/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('tessera: the build is missing (out/main/cli.js). Run `npm run setup` (or `npm run build`) first.\n');
  process.exit(1);
}
const { runCli } = await import(cli.href);
const io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};
process.exitCode = await runCli(process.argv.slice(2), io);
