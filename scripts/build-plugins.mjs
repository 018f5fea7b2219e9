// Builds and signs the first-party plugins (plugins/<name>/) into out/plugins/<name>/ with the real
// `tessera plugin build` and `tessera plugin sign`, using the development key plugins/dev-key, whose public
// half is the trust root resources/trust/tessera-dev.pem. Run by `npm run build` after electron-vite.
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
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

// The shipped catalogue: resources/catalogue/src/<id>.json signed into resources/catalogue/<id>@<version>.json with
// the real `tessera catalogue sign`. Ed25519 signatures are deterministic, so an unchanged def re-signs to the same
// bytes (the signed files are committed: a fresh clone has a valid catalogue even before a build).
const catalogueSrc = join(root, 'resources', 'catalogue', 'src');
let signed = 0;
for (const name of readdirSync(catalogueSrc).filter((f) => f.endsWith('.json')).sort()) {
  const def = JSON.parse(readFileSync(join(catalogueSrc, name), 'utf8'));
  const out = join(root, 'resources', 'catalogue', `${def.id}@${def.version}.json`);
  const code = await runCli(['catalogue', 'sign', join(catalogueSrc, name), '--key', key, '--out', out], quiet);
  if (code !== 0) {
    process.stderr.write(`build-plugins: \`tessera catalogue sign ${name}\` failed (${code})\n`);
    process.exit(1);
  }
  signed++;
}
process.stdout.write(`signed ${signed} product definitions into resources/catalogue\n`);

// The shipped journey documents: resources/journeys/src/<id>.json signed into resources/journeys/<id>@<version>.json
// with the real `tessera journey sign` (validated first: a broken document fails the build with each problem's path).
// Deterministic like the catalogue above, and committed for the same reason.
const journeySrc = join(root, 'resources', 'journeys', 'src');
let journeys = 0;
for (const name of readdirSync(journeySrc).filter((f) => f.endsWith('.json')).sort()) {
  const doc = JSON.parse(readFileSync(join(journeySrc, name), 'utf8'));
  const out = join(root, 'resources', 'journeys', `${doc.id}@${doc.version}.json`);
  const code = await runCli(['journey', 'sign', join(journeySrc, name), '--key', key, '--out', out], quiet);
  if (code !== 0) {
    process.stderr.write(`build-plugins: \`tessera journey sign ${name}\` failed (${code})\n`);
    process.exit(1);
  }
  journeys++;
}
process.stdout.write(`signed ${journeys} journey document${journeys === 1 ? '' : 's'} into resources/journeys\n`);
// The shipped city data package (offline routing, issue 15): resources/city/src/<id>/ (made by
// scripts/make-city.mjs) signed into resources/city/<id>/ with the real `tessera city sign`. The manifest carries no
// signing time and Ed25519 is deterministic, so an unchanged source re-signs to the same bytes (committed).
const citySrc = join(root, 'resources', 'city', 'src');
let cities = 0;
for (const name of existsSync(citySrc) ? readdirSync(citySrc).sort() : []) {
  if (!existsSync(join(citySrc, name, 'city.json'))) continue;
  const code = await runCli(['city', 'sign', join(citySrc, name), '--key', key, '--out', join(root, 'resources', 'city', name)], quiet);
  if (code !== 0) {
    process.stderr.write(`build-plugins: \`tessera city sign ${name}\` failed (${code})\n`);
    process.exit(1);
  }
  cities++;
}
process.stdout.write(`signed ${cities} city data package(s) into resources/city\n`);

// The shipped scenarios: resources/scenarios/<name>.yaml signed into resources/scenarios/<name>.sig (beside it) with
// the real `tessera scenario sign`, over the canonical form (includes inlined). Deterministic like the catalogue, and
// committed: a runtime refuses an unsigned scenario outside developer mode (issue 18).
const scenarioSrc = join(root, 'resources', 'scenarios');
let scenarios = 0;
for (const name of readdirSync(scenarioSrc).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  const code = await runCli(['scenario', 'sign', join(scenarioSrc, name), '--key', key], quiet);
  if (code !== 0) {
    process.stderr.write(`build-plugins: \`tessera scenario sign ${name}\` failed (${code})\n`);
    process.exit(1);
  }
  scenarios++;
}
process.stdout.write(`signed ${scenarios} scenario(s) in resources/scenarios\n`);
