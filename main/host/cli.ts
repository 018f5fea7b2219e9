/**
 * The `tessera` command. Each command declares its flags once; `--help` on any command prints its usage.
 * Exit codes: 0 success, 1 failure, 2 usage error. Failures print `error CODE: message` (docs/errors.md).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { isTesseraError } from '../common/errors.js';
import { createLogger, parseLogLevel } from '../runtime/log/index.js';
import { PRODUCT_NAME, VERSION } from '../runtime/version.js';
import { DEFAULT_HOST, DEFAULT_PORT, TOKEN_FILE, parsePort, resolveDataDir } from './config.js';
import { electronBinary, formatChecks, hasDisplay, runChecks } from './doctor.js';
import { parsePublicOrigin } from '../runtime/links/index.js';
import { APP_ROOT, RENDERER_DIR } from './paths.js';
import { PLUGIN_COMMANDS } from './cli-plugins.js';
import { PRODUCT_COMMANDS } from './cli-products.js';
import { INTENT_COMMANDS } from './cli-intents.js';
import { BUNDLE_COMMANDS } from './cli-bundle.js';
import { SCENARIO_COMMANDS } from './cli-scenarios.js';
import { CONSENT_COMMANDS } from './cli-consent.js';
import { ACCESS_COMMANDS } from './cli-access.js';
import { SESSION_COMMANDS } from './cli-sessions.js';
import { JOURNEY_COMMANDS as JOURNEY_INSTANCE_COMMANDS } from './cli-journeys.js';
import { WALLET_COMMANDS } from './cli-wallet.js';
import { CATALOGUE_COMMANDS } from './cli-catalogue.js';
import { LINK_COMMANDS } from './cli-links.js';
import { REDEEM_COMMANDS } from './cli-redeem.js';
import { JOURNEY_DOC_COMMANDS } from './cli-journey-docs.js';
import { CITY_COMMANDS } from './cli-city.js';
import { CLOUD_COMMANDS } from './cli-cloud.js';
import { serveUntilSignalled } from './until-signal.js';
import { SYNC_COMMANDS } from './cli-sync.js';
import { AGENT_COMMANDS } from './cli-agents.js';
import { SECRET_COMMANDS } from './cli-secrets.js';
import { CLUSTER_COMMANDS } from './cli-cluster.js';
import { clusterOptionsFromEnv } from '../runtime/cluster/model.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: Options;
  /** Help text for each flag, in the order shown. */
  flags: Array<[string, string]>;
  /** How many positional arguments the command takes (default none). */
  positionals?: number;
  run(values: Record<string, string | boolean | undefined>, positionals: string[], io: CliIo): Promise<number>;
}


const startCommand: Command = {
  name: 'start',
  summary: 'Start the runtime: the Electron window when possible, else headless with the UI over HTTP.',
  usage: 'tessera start [--headless] [--kiosk] [--port N] [--host H] [--public-url URL] [--data DIR] [--developer] [--nats URL --node NAME --attr K:V…]',
  options: {
    headless: { type: 'boolean' },
    kiosk: { type: 'boolean' },
    port: { type: 'string' },
    host: { type: 'string' },
    'public-url': { type: 'string' },
    data: { type: 'string' },
    nats: { type: 'string' },
    node: { type: 'string' },
    attr: { type: 'string', multiple: true },
    developer: { type: 'boolean' },
  },
  flags: [
    ['--headless', 'Never open a window; serve the UI over HTTP (the default when Electron or a display is missing).'],
    ['--kiosk', 'A public kiosk: the UI holds the traveller role only (Journey Guide, Verify) until an operator unlocks it with the PIN (`tessera pin set`); the Electron window opens full-screen in kiosk mode.'],
    ['--port N', `Port of the HTTP/WS API and UI (default ${DEFAULT_PORT}; 0 picks a free port).`],
    ['--host H', `Address to listen on (default ${DEFAULT_HOST}). Anything but loopback exposes the API to the network.`],
    ['--public-url URL', 'Origin phones reach this device at, for receipt links and their QR codes (default: $TESSERA_PUBLIC_URL, else the --host address; with 0.0.0.0 the first LAN address).'],
    ['--data DIR', 'Data folder (default: $TESSERA_DATA, else the platform user-data folder).'],
    ['--nats URL', 'Spread scenario runs over nodes through this NATS JetStream server (default: $TESSERA_NATS_URL; none: every run runs here).'],
    ['--node NAME', 'This node\'s name in the cluster (default: $TESSERA_NODE_NAME, else the host name).'],
    ['--attr K:V', 'A node attribute scenarios may require (has:mic, region:eu); repeatable (default: $TESSERA_NODE_ATTRS, a comma list).'],
    ['--developer', 'Developer mode (also TESSERA_DEVELOPER=1): load unsigned or unverified scenario files, each journaled as a warning; never on a kiosk in service.'],
  ],
  async run(values, _positionals, io) {
    const port = parsePort(values['port'] as string | undefined);
    const publicUrl = values['public-url'] as string | undefined;
    // Checked before anything starts: a bad URL is the operator's typo, not a runtime failure.
    if (publicUrl !== undefined) parsePublicOrigin(publicUrl);
    // Handed on as the environment variable, which the Electron shell's host reads too.
    const env: NodeJS.ProcessEnv = { ...io.env, ...(publicUrl === undefined ? {} : { TESSERA_PUBLIC_URL: publicUrl }), ...(values['developer'] ? { TESSERA_DEVELOPER: '1' } : {}) };
    // The cluster flags travel the same way (issue 18); checked here so a typo stops the start.
    if (values['nats'] !== undefined) env['TESSERA_NATS_URL'] = values['nats'] as string;
    if (values['node'] !== undefined) env['TESSERA_NODE_NAME'] = values['node'] as string;
    const attrs = values['attr'] as unknown as string[] | undefined;
    if (attrs !== undefined && attrs.length > 0) env['TESSERA_NODE_ATTRS'] = attrs.join(',');
    clusterOptionsFromEnv(env);
    io = { ...io, env };
    const host = (values['host'] as string | undefined) ?? DEFAULT_HOST;
    const dataDir = resolve(resolveDataDir(values['data'] as string | undefined, io.env));
    const electron = electronBinary();
    if (!values['headless'] && electron && hasDisplay(io.env)) return runElectron(electron, { port, host, dataDir, kiosk: Boolean(values['kiosk']) }, io);
    if (!values['headless']) {
      io.stderr(`${electron ? 'No display found' : 'The Electron binary is not installed'}; starting headless (see \`tessera doctor\`).\n`);
    }
    return runHeadless({ port, host, dataDir, kiosk: Boolean(values['kiosk']) }, io);
  },
};

async function runHeadless(opts: { port: number; host: string; dataDir: string; kiosk: boolean }, io: CliIo): Promise<number> {
  const logger = createLogger({ level: parseLogLevel(io.env['TESSERA_LOG_LEVEL']) ?? 'info' });
  if (!existsSync(join(RENDERER_DIR, 'index.html'))) {
    io.stderr(`The UI build is missing (${RENDERER_DIR}); serving the API only. Run \`npm run build\`.\n`);
  }
  // Loaded only to serve: the runtime (every module, its schemas compiled at load) costs about a second to import,
  // which every other command would pay for nothing.
  const { startHost } = await import('./headless.js');
  const host = await startHost({
    dataDir: opts.dataDir,
    host: opts.host,
    port: opts.port,
    logger,
    shell: 'headless',
    env: io.env,
    ...(opts.kiosk ? { uiRole: 'traveller' as const } : {}),
    ...(existsSync(join(RENDERER_DIR, 'index.html')) ? { rendererDir: RENDERER_DIR } : {}),
  });
  if (!['127.0.0.1', '::1', 'localhost'].includes(opts.host)) {
    io.stderr(`warning: listening on ${opts.host}: the API is reachable from the network; keep the token secret.\n`);
  }
  if (io.env['TESSERA_DEVELOPER'] === '1') {
    io.stderr('warning: developer mode: unsigned and unverified scenario files are loaded too (each journaled as scenario.load_warning); never on a kiosk in service.\n');
  }
  if (!host.publicOriginReachable) {
    io.stderr(`note: receipt links use ${host.publicOrigin}, which phones cannot open; listen on the LAN (--host 0.0.0.0 or an interface address) or pass --public-url.\n`);
  }
  return serveUntilSignalled(
    io,
    logger,
    () => host.close(),
    [
      `${PRODUCT_NAME} ${VERSION} is running headless.`,
      `  Open:  ${host.uiUrl}${opts.kiosk ? `  (kiosk: traveller role; operators unlock with the PIN${host.credentials.pinSet() ? '' : ' — none is set yet: tessera pin set'})` : ''}`,
      `  API:   ${host.origin}/api  (Authorization: Bearer <token>${host.tokenSource === 'env' ? ' from TESSERA_TOKEN' : ` in ${join(opts.dataDir, TOKEN_FILE)}`})`,
      `  Docs:  ${host.origin}/openapi.json`,
      `  Links: ${host.publicOrigin}/c/<token>  (receipt links for phones: tessera link CAPSULE)`,
      `  Data:  ${opts.dataDir}`,
      'Press Ctrl+C to stop.',
      '',
    ].join('\n'),
  );
}

async function runElectron(binary: string, opts: { port: number; host: string; dataDir: string; kiosk: boolean }, io: CliIo): Promise<number> {
  const args = [APP_ROOT, `--port=${opts.port}`, `--host=${opts.host}`, `--data=${opts.dataDir}`, ...(opts.kiosk ? ['--kiosk'] : [])];
  const child = spawn(binary, args, { stdio: 'inherit', env: io.env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolveExit) => {
    child.on('error', (err) => {
      io.stderr(`Could not start Electron (${err.message}); try \`tessera start --headless\`.\n`);
      resolveExit(1);
    });
    child.on('exit', (code, signal) => resolveExit(code ?? (signal ? 1 : 0)));
  });
}

const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Report which core and optional parts this machine has, and how to install the missing ones.',
  usage: 'tessera doctor [--json]',
  options: { json: { type: 'boolean' } },
  flags: [['--json', 'Print the checks as JSON.']],
  async run(values, _positionals, io) {
    const checks = await runChecks(io.env);
    io.stdout(values['json'] ? JSON.stringify({ version: VERSION, checks }, null, 2) + '\n' : `${PRODUCT_NAME} ${VERSION} — doctor\n\n${formatChecks(checks)}\n`);
    return checks.filter((c) => c.core).every((c) => c.ok) ? 0 : 1;
  },
};

const versionCommand: Command = {
  name: 'version',
  summary: 'Print the Tessera version.',
  usage: 'tessera version [--json]',
  options: { json: { type: 'boolean' } },
  flags: [['--json', 'Print name, version and platform as JSON.']],
  async run(values, _positionals, io) {
    const info = { name: 'tessera', version: VERSION, node: process.versions.node, platform: `${process.platform}-${process.arch}` };
    io.stdout(values['json'] ? JSON.stringify(info) + '\n' : `tessera ${VERSION} (node ${info.node}, ${info.platform})\n`);
    return 0;
  },
};

/**
 * `tessera journey <verb>`: a group like `catalogue` — `runCli` dispatches `journey validate FILE` to the command named
 * `journey validate`, and `tessera journey` alone lists the group. Journey-instance commands join this list.
 */
const JOURNEY_COMMANDS: Command[] = [...JOURNEY_DOC_COMMANDS, ...JOURNEY_INSTANCE_COMMANDS];

export const COMMANDS: Command[] = [startCommand, doctorCommand, versionCommand, ...PLUGIN_COMMANDS, ...PRODUCT_COMMANDS, ...INTENT_COMMANDS, ...SCENARIO_COMMANDS, ...CONSENT_COMMANDS, ...BUNDLE_COMMANDS, ...ACCESS_COMMANDS, ...SESSION_COMMANDS, ...WALLET_COMMANDS, ...CATALOGUE_COMMANDS, ...JOURNEY_COMMANDS, ...CITY_COMMANDS, ...LINK_COMMANDS, ...REDEEM_COMMANDS, ...CLOUD_COMMANDS, ...SYNC_COMMANDS, ...AGENT_COMMANDS, ...SECRET_COMMANDS, ...CLUSTER_COMMANDS];

function commandHelp(cmd: Command): string {
  const width = Math.max(...cmd.flags.map(([f]) => f.length), '--help'.length);
  const flags = [...cmd.flags, ['--help', 'Show this help.'] as [string, string]].map(([f, d]) => `  ${f.padEnd(width)}  ${d}`);
  return `${cmd.summary}\n\nUsage: ${cmd.usage}\n\nOptions:\n${flags.join('\n')}\n`;
}

/** The commands of a group such as `plugin` or `consent` (`plugin sign`, `plugin verify`…). */
function groupOf(name: string): Command[] {
  return COMMANDS.filter((c) => c.name.startsWith(`${name} `));
}

function groupHelp(name: string): string {
  return `Commands:\n${groupOf(name).map((c) => `  ${c.usage}\n      ${c.summary}`).join('\n')}\n\nRun \`tessera ${name} <command> --help\` for the options of a command.\n`;
}

/**
 * What is wrong with the arguments, in Tessera's words: node:util's parseArgs messages name its own API (positional
 * arguments, "--" escapes) rather than the command line the user typed.
 */
function usageProblem(err: Error & { code?: string }, args: readonly string[]): string {
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /'(-[^']*)'/.exec(err.message)?.[1] ?? args.find((a) => a.startsWith('-')) ?? '';
    return `unknown option "${option}"`;
  }
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const extra = /'([^']*)'/.exec(err.message)?.[1] ?? '';
    return `unexpected argument "${extra}"; this command takes no arguments`;
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const option = /'(--?[\w-]+)/.exec(err.message)?.[1] ?? 'an option';
    return /argument missing/.test(err.message) ? `${option} needs a value` : `${option} takes no value`;
  }
  return err.message;
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `${PRODUCT_NAME} ${VERSION} — offline-first runtime for kiosks, laptops and edge devices.`,
    '',
    'Usage: tessera <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help'.padEnd(width)}  Show help for a command: tessera help <command>`,
    '',
    'Environment: TESSERA_DATA (data folder), TESSERA_TOKEN (API token), TESSERA_LOG_LEVEL (debug|info|warn|error).',
    'Run `tessera <command> --help` for the options of a command.',
    '',
  ].join('\n');
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    io.stdout(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') return versionCommand.run({}, [], io);
  if (name === 'help') {
    if (rest[0] === undefined) {
      io.stdout(mainHelp());
      return 0;
    }
    const target = COMMANDS.find((c) => c.name === rest.join(' ')) ?? COMMANDS.find((c) => c.name === rest[0]);
    if (target) io.stdout(commandHelp(target));
    else if (groupOf(rest[0]).length > 0) io.stdout(groupHelp(rest[0]));
    else io.stderr(`error CONFIG_INVALID: unknown command "${rest.join(' ')}".\n\n${mainHelp()}`);
    return target || groupOf(rest[0]).length > 0 ? 0 : 2;
  }
  // Longest name first: `cloud tenant create` before `cloud tenant`, before `cloud`.
  const threeWord = COMMANDS.find((c) => c.name === `${name} ${rest[0] ?? ''} ${rest[1] ?? ''}`);
  const twoWord = threeWord ? undefined : COMMANDS.find((c) => c.name === `${name} ${rest[0] ?? ''}`);
  const cmd = threeWord ?? twoWord ?? COMMANDS.find((c) => c.name === name);
  const args = threeWord ? rest.slice(2) : twoWord ? rest.slice(1) : rest;
  if (!cmd) {
    if (groupOf(name).length > 0) {
      const asked = rest[0] === undefined || rest[0] === '--help' || rest[0] === '-h';
      (asked ? io.stdout : io.stderr)(`${asked ? '' : `error CONFIG_INVALID: unknown command "${name} ${rest[0]}".\n\n`}${groupHelp(name)}`);
      return asked ? 0 : 2;
    }
    io.stderr(`error CONFIG_INVALID: unknown command "${name}".\n\n${mainHelp()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(commandHelp(cmd));
    return 0;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options: cmd.options, allowPositionals: (cmd.positionals ?? 0) > 0, strict: true });
    if (parsed.positionals.length > (cmd.positionals ?? 0)) throw new Error(`unexpected argument "${parsed.positionals[cmd.positionals ?? 0]}"`);
  } catch (err) {
    io.stderr(`error CONFIG_INVALID: ${usageProblem(err as Error & { code?: string }, args)}\n\nUsage: ${cmd.usage}\n`);
    return 2;
  }
  try {
    return await cmd.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals, io);
  } catch (err) {
    if (isTesseraError(err)) {
      io.stderr(`error ${err.code}: ${err.message}\n`);
      return err.code === 'CONFIG_INVALID' ? 2 : 1;
    }
    io.stderr(`error INTERNAL: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

