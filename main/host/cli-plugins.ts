/**
 * The plugin author's toolkit (issue 3 §6): keys, scaffolding, build, sign, verify, test, and the trust store.
 * Every command prints what it did; failures print `error CODE: message` and exit 1 (usage errors 2).
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { cidOfBytes } from '../common/cid.js';
import { TesseraError, toErrorData } from '../common/errors.js';
import { generateKeyPair, readPrivateKey, readPublicKey, writePrivateKey } from '../runtime/keys/index.js';
import { createLogger } from '../runtime/log/index.js';
import { runPluginTrial } from '../runtime/plugins/index.js';
import { combineTrustStores, openTrustStore } from '../runtime/trust/index.js';
import type { TrustView } from '../runtime/trust/index.js';
import { HTTP_ORIGIN_MAP_ENV, parseHttpOriginMap } from '../../sandbox/capabilities.js';
import { MANIFEST_FILE, PLUGIN_NAME_RULE, SIGNATURE_FILE, pluginNameProblem } from '../../sandbox/manifest.js';
import { UNBUILT_CID, signPlugin, staleBuildProblems, verifyPlugin, writeAtomic } from '../../sandbox/package.js';
import type { CliIo, Command } from './cli.js';
import { resolveDataDir } from './config.js';
import { APP_ROOT, BUILTIN_TRUST_DIR } from './paths.js';

/** This installation's `tessera` command (what a scaffold's test runs unless TESSERA_BIN says otherwise). */
const TESSERA_BIN = join(APP_ROOT, 'bin', 'tessera.js');

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

function requirePositional(positionals: string[], what: string, usage: string): string {
  const value = positionals[0];
  if (!value) throw new TesseraError('CONFIG_INVALID', `${what} is required. Usage: ${usage}`);
  return value;
}

/** The trust a command verifies against: `--trust DIR` when given, else the built-in roots plus `<data>/trust`. */
export function trustFor(values: Record<string, unknown>, io: CliIo): TrustView {
  const explicit = str(values['trust']);
  if (explicit && !existsSync(explicit)) throw new TesseraError('CONFIG_INVALID', `--trust ${explicit}: no such folder.`);
  if (explicit) return openTrustStore(explicit);
  const dataTrust = join(resolveDataDir(str(values['data']), io.env), 'trust');
  const stores = [openTrustStore(BUILTIN_TRUST_DIR, { create: false })];
  if (existsSync(dataTrust)) stores.push(openTrustStore(dataTrust));
  return combineTrustStores(...stores);
}

/** Developer mode: trust the author's own public key for this run only, and say so. */
function withDeveloperKey(trust: TrustView, devKeyPath: string | undefined, io: CliIo): { trust: TrustView; developer?: string } {
  if (!devKeyPath) return { trust };
  const pub = readPublicKey(existsSync(`${devKeyPath}.pub`) && !readFileSync(devKeyPath, 'utf8').includes('PUBLIC KEY') ? `${devKeyPath}.pub` : devKeyPath);
  io.stderr(`developer mode: trusting ${pub.keyid} (${devKeyPath}) for this run only — never use --dev-key in production.\n`);
  const dev: TrustView = {
    list: () => [],
    revocations: () => [],
    lookup: (keyid) => (keyid === pub.keyid ? { state: 'trusted', publicKeyRaw: pub.publicKeyRaw, name: 'developer key' } : { state: 'unknown' }),
  };
  return { trust: combineTrustStores(trust, dev), developer: pub.keyid };
}

const keygen: Command = {
  name: 'keygen',
  summary: 'Create an Ed25519 signing key (private key file mode 0600, public key next to it as KEY.pub).',
  usage: 'tessera keygen --out KEY [--force]',
  options: { out: { type: 'string' }, force: { type: 'boolean' } },
  flags: [['--out KEY', 'Where to write the private key; the public key goes to KEY.pub.'], ['--force', 'Replace an existing key file.']],
  async run(values, _p, io) {
    const out = str(values['out']);
    if (!out) throw new TesseraError('CONFIG_INVALID', `--out KEY is required. Usage: ${this.usage}`);
    const key = generateKeyPair();
    writePrivateKey(resolve(out), key, { overwrite: values['force'] === true });
    io.stdout(`Wrote ${resolve(out)} (private, mode 0600) and ${resolve(out)}.pub\nkey id: ${key.keyid}\n${key.publicKeyPem}`);
    return 0;
  },
};

const POLICY_SOURCE = `/**
 * A policy plugin: decide(input, ctx) returns a verdict. It runs in a Tessera isolate with no clock, network
 * or filesystem: \`Date\` is the logical time in ctx.now, Math.random is unavailable, and the only door to the
 * world is ctx.host.call(capability, params) for the capabilities plugin.json declares.
 */
export function decide(input, ctx) {
  const missing = ['subject', 'action'].filter((field) => input == null || input[field] === undefined);
  if (missing.length > 0) {
    return { verdict: 'NACK', reason: 'missing ' + missing.join(', '), evidence: { missing } };
  }
  return { verdict: 'ACK', reason: input.subject + ' may ' + input.action, evidence: { at: ctx.now } };
}
`;

const TOOL_SOURCE = `/**
 * A tool plugin: invoke(args, host) does something and returns a result. host.call(capability, params) is the
 * only door to the world; effects such as http.fetch also need a permit for this exact input.
 */
export async function invoke(args, host) {
  const count = ((await host.call('kv.get', { key: 'count' })) ?? 0) + 1;
  await host.call('kv.set', { key: 'count', value: count });
  return { greeting: 'hello, ' + (args.name ?? 'world'), count };
}
`;

/**
 * The scaffold's own test. It runs as `node --test DIR/test` from anywhere: the tessera command is the one that
 * made the scaffold (TESSERA_BIN overrides it), the key is DIR.dev-key as `plugin init` prints it (TESSERA_DEV_KEY
 * overrides it), and the input is the manifest's example_input, the one place the example lives.
 */
const SCAFFOLD_TEST = `// Runs this plugin through \`tessera plugin test\` in the real sandbox and checks its answer.
// Usage: node --test <this plugin folder>/test   (after keygen, build and sign as \`tessera plugin init\` printed)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('..', import.meta.url)).replace(/[\\\\/]$/, '');
const bin = process.env.TESSERA_BIN ?? __BIN__;
const devKey = process.env.TESSERA_DEV_KEY ?? dir + '.dev-key';
const manifest = JSON.parse(readFileSync(dir + '/plugin.json', 'utf8'));
const run = (input) => JSON.parse(execFileSync(process.execPath, [bin, 'plugin', 'test', dir, '--input', '-', '--dev-key', devKey, '--now', '2026-01-01T00:00:00Z'], { input: JSON.stringify(input), encoding: 'utf8' }));

test('__TEST_NAME__', () => {
  const result = run(manifest.example_input);
  assert.equal(result.ok, true, JSON.stringify(result.error));
  __ASSERT__
});
`;

/** `text` as one word for a POSIX shell, so that printed commands can be pasted as they are. */
function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** A plugin name made from a folder name: lowercase, other characters as "-", starting with a letter. */
function nameFromFolder(folder: string): string {
  return folder
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 64)
    .replace(/-+$/, '');
}

const pluginInit: Command = {
  name: 'plugin init',
  summary: 'Create a working example plugin (source, manifest, example input and its own test).',
  usage: 'tessera plugin init DIR --kind policy|tool [--name NAME]',
  positionals: 1,
  options: { kind: { type: 'string' }, name: { type: 'string' } },
  flags: [['--kind policy|tool', 'What the plugin is.'], ['--name NAME', 'Plugin name (default: the folder name).']],
  async run(values, positionals, io) {
    const dir = resolve(requirePositional(positionals, 'DIR', this.usage));
    const kind = str(values['kind']);
    if (kind !== 'policy' && kind !== 'tool') throw new TesseraError('CONFIG_INVALID', '--kind must be policy or tool.');
    const given = str(values['name']);
    const name = given ?? nameFromFolder(basename(dir));
    // Refused here, before any file is written, rather than by `plugin sign` three steps later.
    const problem = pluginNameProblem(name);
    if (problem) {
      throw new TesseraError('CONFIG_INVALID', given !== undefined ? `--name ${problem}.` : `The folder name ${basename(dir)} gives the plugin name "${name}", which cannot be used: ${PLUGIN_NAME_RULE}. Give one with --name NAME (e.g. --name ${basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, '') || 'my'}-${kind}).`);
    }
    if (existsSync(join(dir, MANIFEST_FILE))) throw new TesseraError('CONFIG_INVALID', `${dir} already has a ${MANIFEST_FILE}; not overwriting it.`);
    mkdirSync(join(dir, 'src'), { recursive: true });
    mkdirSync(join(dir, 'test'), { recursive: true });
    const example = kind === 'policy' ? { subject: 'alice', action: 'open-gate' } : { name: 'traveller' };
    const manifest = {
      name,
      version: '0.1.0',
      kind,
      description: kind === 'policy' ? 'Example policy: ACK when subject and action are present.' : 'Example tool: greets and counts calls in its key/value store.',
      entry: 'plugin.js',
      entry_cid: UNBUILT_CID,
      capabilities: kind === 'tool' ? [{ name: 'kv' }] : [],
      limits: { memory_mb: 16, timeout_ms: 50 },
      example_input: example,
    };
    writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    writeFileSync(join(dir, 'src', 'index.js'), kind === 'policy' ? POLICY_SOURCE : TOOL_SOURCE);
    const assertion = kind === 'policy' ? "assert.equal(result.verdict, 'ACK');\n  assert.match(result.reason, /alice may open-gate/);" : "assert.equal(result.output.greeting, 'hello, traveller');";
    const testSource = SCAFFOLD_TEST.replace('__BIN__', JSON.stringify(TESSERA_BIN))
      .replace('__TEST_NAME__', kind === 'policy' ? 'acknowledges a complete request' : 'greets by name')
      .replace('__ASSERT__', assertion);
    writeFileSync(join(dir, 'test', 'plugin.test.mjs'), testSource);
    const devKey = shellQuote(`${dir}.dev-key`);
    const at = shellQuote(dir);
    io.stdout(
      [
        `Created ${kind} plugin "${name}" in ${dir}. Next (the key stays outside the folder you ship):`,
        `  tessera keygen --out ${devKey}`,
        `  tessera plugin build ${at}`,
        `  tessera plugin sign ${at} --key ${devKey}`,
        `  tessera plugin test ${at} --dev-key ${devKey}        (runs example_input from ${MANIFEST_FILE}; --input FILE|- for another)`,
        `  node --test ${shellQuote(join(dir, 'test'))}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};

const pluginBuild: Command = {
  name: 'plugin build',
  summary: 'Bundle the plugin source (src/index.ts or src/index.js) into the single ES module its manifest names.',
  usage: 'tessera plugin build DIR',
  positionals: 1,
  options: {},
  flags: [],
  async run(_values, positionals, io) {
    const dir = resolve(requirePositional(positionals, 'DIR', this.usage));
    const signed = existsSync(join(dir, SIGNATURE_FILE));
    const built = await buildPlugin(dir);
    io.stdout(`Built ${built.file} (${built.bytes} bytes, ${built.cid}). Sign it next: tessera plugin sign ${shellQuote(dir)} --key KEY\n`);
    if (signed && built.previousCid !== built.cid) {
      io.stderr(`warning: ${SIGNATURE_FILE} signs the previous build (${String(built.previousCid)}), not this one: the plugin will not load until you sign again (tessera plugin sign ${shellQuote(dir)} --key KEY).\n`);
    }
    return 0;
  },
};

/** Bundle `src/index.(ts|js)` with esbuild into the manifest's entry and record its cid (unsigned until `sign`). */
export async function buildPlugin(dir: string): Promise<{ file: string; bytes: number; cid: string; previousCid: unknown }> {
  const manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
  const previousCid = manifest['entry_cid'];
  const source = ['src/index.ts', 'src/index.js', 'src/index.mjs'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!source) throw new TesseraError('PLUGIN_MANIFEST_INVALID', `${dir} has no src/index.ts or src/index.js to build.`);
  const entry = typeof manifest['entry'] === 'string' ? manifest['entry'] : 'plugin.js';
  const { build } = await import('esbuild');
  const result = await build({ entryPoints: [source], bundle: true, format: 'esm', platform: 'neutral', target: 'es2022', write: false, legalComments: 'none', logLevel: 'silent' }).catch((err: Error) => {
    throw new TesseraError('PLUGIN_FAILED', `The plugin source does not build: ${err.message}`);
  });
  const code = result.outputFiles[0]!.contents;
  const file = join(dir, entry);
  writeFileSync(file, code);
  manifest['entry'] = entry;
  manifest['entry_cid'] = cidOfBytes(code);
  writeAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  return { file, bytes: code.byteLength, cid: manifest['entry_cid'] as string, previousCid };
}

const pluginSign: Command = {
  name: 'plugin sign',
  summary: "Record the built code's cid in plugin.json and sign the canonical manifest into plugin.sig (DSSE, Ed25519).",
  usage: 'tessera plugin sign DIR --key KEY',
  positionals: 1,
  options: { key: { type: 'string' } },
  flags: [['--key KEY', 'The private key file (from tessera keygen).']],
  async run(values, positionals, io) {
    const dir = resolve(requirePositional(positionals, 'DIR', this.usage));
    const keyPath = str(values['key']);
    if (!keyPath) throw new TesseraError('CONFIG_INVALID', `--key KEY is required. Usage: ${this.usage}`);
    const key = readPrivateKey(resolve(keyPath));
    // Checked before signing: signing records the entry's cid, after which a hand-edited entry looks current.
    const stale = staleBuildProblems(dir);
    const { manifest, cid } = signPlugin(dir, key);
    warnStale(io, dir, stale, 'signed it anyway');
    io.stdout(`Signed ${manifest.name}@${manifest.version}\n  manifest cid: ${cid}\n  code cid:     ${manifest.entry_cid}\n  key id:       ${key.keyid}\n`);
    return 0;
  },
};

const pluginVerify: Command = {
  name: 'plugin verify',
  summary: 'Check a plugin folder: signature, trust, manifest, code cid and capabilities. Exit 0 valid, 1 invalid.',
  usage: 'tessera plugin verify DIR [--trust DIR] [--data DIR] [--json]',
  positionals: 1,
  options: { trust: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } },
  flags: [
    ['--trust DIR', 'Trust folder to verify against (default: the built-in roots plus <data>/trust).'],
    ['--data DIR', 'Data folder whose trust/ is used (default as for start).'],
    ['--json', 'Print the result as JSON.'],
  ],
  async run(values, positionals, io) {
    const dir = requirePositional(positionals, 'DIR', this.usage);
    const trust = trustFor(values, io);
    try {
      const p = verifyPlugin(dir, trust);
      const summary = { valid: true, name: p.manifest.name, version: p.manifest.version, kind: p.manifest.kind, cid: p.cid, entry_cid: p.manifest.entry_cid, publisher: p.publisher, capabilities: p.grants };
      io.stdout(values['json'] ? JSON.stringify(summary, null, 2) + '\n' : `valid: ${p.manifest.name}@${p.manifest.version} (${p.manifest.kind}) ${p.cid}\n  signed by ${p.publisher.keyid} (${p.publisher.name})\n  capabilities: ${p.grants.map((g) => g.name).join(', ') || 'none'}\n`);
      return 0;
    } catch (err) {
      const e = toErrorData(err);
      if (values['json']) io.stdout(JSON.stringify({ valid: false, error: e }, null, 2) + '\n');
      else io.stderr(`invalid: ${e.code}: ${e.message}\n`);
      return 1;
    }
  },
};

const pluginTest: Command = {
  name: 'plugin test',
  summary: 'Run a signed plugin once in the real sandbox with the production limits, in a throwaway runtime; print one JSON object.',
  usage: 'tessera plugin test DIR [--input FILE|-] [--trust DIR] [--dev-key KEY] [--now ISO]',
  positionals: 1,
  options: { input: { type: 'string' }, trust: { type: 'string' }, data: { type: 'string' }, 'dev-key': { type: 'string' }, now: { type: 'string' } },
  flags: [
    ['--input FILE|-', `The input as a JSON file, or - for standard input (default: example_input from ${MANIFEST_FILE}).`],
    ['--trust DIR', 'Trust folder (default: the built-in roots plus <data>/trust).'],
    ['--dev-key KEY', "Developer mode: also trust this key (KEY or KEY.pub) for this run only; says so on stderr."],
    ['--now ISO', "The logical time the plugin sees (default: now)."],
    ['--data DIR', 'Data folder whose trust/ is used.'],
  ],
  async run(values, positionals, io) {
    const dir = resolve(requirePositional(positionals, 'DIR', this.usage));
    const input = readTestInput(str(values['input']), dir);
    const now = str(values['now']);
    if (now !== undefined && !Number.isFinite(Date.parse(now))) throw new TesseraError('CONFIG_INVALID', `--now must be an ISO-8601 time, got "${now}"`);
    const { trust, developer } = withDeveloperKey(trustFor(values, io), str(values['dev-key']), io);
    warnStale(io, dir, staleBuildProblems(dir), 'testing the old build');
    try {
      const httpOriginMap = parseHttpOriginMap(io.env[HTTP_ORIGIN_MAP_ENV]);
      const { plugin, result } = await runPluginTrial({ dir }, input, { trust, logger: createLogger({ level: 'warn' }), ...(now === undefined ? {} : { now }), ...(httpOriginMap.size > 0 ? { httpOriginMap } : {}) });
      const out = result.output as Record<string, unknown>;
      io.stdout(
        JSON.stringify({
          ok: true,
          plugin: { ...result.plugin, publisher: plugin.publisher, trust: developer === plugin.publisher.keyid ? 'developer' : 'trusted' },
          ...(plugin.manifest.kind === 'policy' ? { verdict: out['verdict'], reason: out['reason'], evidence: out['evidence'] ?? null, metrics: out['metrics'] ?? null } : { output: result.output }),
          output_cid: result.output_cid,
          now: result.now,
          duration_ms: Math.round(result.duration_ms * 1000) / 1000,
          cpu_us: result.cpu_us,
          memory_used_bytes: result.heap_used_bytes,
          capability_calls: result.capability_calls,
        }, null, 2) + '\n',
      );
      return 0;
    } catch (err) {
      io.stdout(JSON.stringify({ ok: false, error: toErrorData(err) }, null, 2) + '\n');
      return 1;
    }
  },
};

/** The input of `plugin test`: a file, standard input (`-`), or the manifest's example_input when not given. */
function readTestInput(inputArg: string | undefined, dir: string): unknown {
  if (inputArg === undefined) {
    let manifest: Record<string, unknown>;
    try {
      manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
    } catch {
      throw new TesseraError('CONFIG_INVALID', `--input FILE|- is required when ${join(dir, MANIFEST_FILE)} cannot be read for its example_input.`);
    }
    if (!('example_input' in manifest)) throw new TesseraError('CONFIG_INVALID', `${MANIFEST_FILE} has no example_input: give the input with --input FILE|-.`);
    return manifest['example_input'];
  }
  try {
    return JSON.parse(inputArg === '-' ? readFileSync(0, 'utf8') : readFileSync(inputArg, 'utf8'));
  } catch (err) {
    throw new TesseraError('VALIDATION_FAILED', `The input ${inputArg === '-' ? 'on standard input' : inputArg} is not JSON: ${(err as Error).message}`);
  }
}

/** Says on stderr that the built entry may not be what the sources make now (advisory; the command goes on). */
function warnStale(io: CliIo, dir: string, problems: string[], consequence: string): void {
  for (const problem of problems) io.stderr(`warning: ${problem}; ${consequence}. Rebuild and sign: tessera plugin build ${shellQuote(dir)} && tessera plugin sign ${shellQuote(dir)} --key KEY\n`);
}

const trustAdd: Command = {
  name: 'trust add',
  summary: "Trust a publisher's public key (SPKI PEM file) in <data>/trust.",
  usage: 'tessera trust add FILE [--name NAME] [--data DIR]',
  positionals: 1,
  options: { name: { type: 'string' }, data: { type: 'string' } },
  flags: [['--name NAME', 'A name for the key (default: the start of its key id).'], ['--data DIR', 'Data folder (default as for start).']],
  async run(values, positionals, io) {
    const file = requirePositional(positionals, 'FILE', this.usage);
    if (!existsSync(file) || !statSync(file).isFile()) throw new TesseraError('KEY_FILE_INVALID', `${file} is not a file.`);
    const store = openTrustStore(join(resolveDataDir(str(values['data']), io.env), 'trust'), { create: true });
    const added = store.add(readPublicKey(resolve(file)).publicKeyPem, str(values['name']));
    io.stdout(`trusted: ${added.keyid} as "${added.name}" (${added.file})${added.state === 'revoked' ? ' — but this key is revoked' : ''}\n`);
    return 0;
  },
};

const trustList: Command = {
  name: 'trust list',
  summary: 'List trusted publisher keys (built-in and <data>/trust) with their state.',
  usage: 'tessera trust list [--data DIR] [--json]',
  options: { data: { type: 'string' }, json: { type: 'boolean' } },
  flags: [['--data DIR', 'Data folder (default as for start).'], ['--json', 'Print JSON.']],
  async run(values, _p, io) {
    const view = trustFor(values, io);
    const keys = view.list();
    const revoked = view.revocations();
    if (values['json']) io.stdout(JSON.stringify({ keys, revocations: revoked }, null, 2) + '\n');
    else {
      io.stdout(keys.length === 0 ? 'No trusted keys.\n' : keys.map((k) => `${k.state.padEnd(8)} ${k.keyid}  ${k.name}${k.revoked_reason ? `  (revoked: ${k.revoked_reason})` : ''}`).join('\n') + '\n');
      const orphan = revoked.filter((r) => !keys.some((k) => k.keyid === r.keyid));
      if (orphan.length > 0) io.stdout(orphan.map((r) => `revoked  ${r.keyid}  (not in any trust folder: ${r.reason})`).join('\n') + '\n');
    }
    return 0;
  },
};

const trustRevoke: Command = {
  name: 'trust revoke',
  summary: 'Revoke a key id in <data>/trust: nothing it signed loads any more, even if its signature verifies.',
  usage: 'tessera trust revoke KEYID --reason TEXT [--data DIR]',
  positionals: 1,
  options: { reason: { type: 'string' }, data: { type: 'string' } },
  flags: [['--reason TEXT', 'Why (recorded in revoked.json).'], ['--data DIR', 'Data folder (default as for start).']],
  async run(values, positionals, io) {
    const keyid = requirePositional(positionals, 'KEYID', this.usage);
    const reason = str(values['reason']);
    if (!reason) throw new TesseraError('CONFIG_INVALID', `--reason TEXT is required. Usage: ${this.usage}`);
    openTrustStore(join(resolveDataDir(str(values['data']), io.env), 'trust'), { create: true }).revoke(keyid, reason);
    io.stdout(`revoked: ${keyid} (${reason})\n`);
    return 0;
  },
};

export const PLUGIN_COMMANDS: Command[] = [keygen, pluginInit, pluginBuild, pluginSign, pluginVerify, pluginTest, trustAdd, trustList, trustRevoke];
