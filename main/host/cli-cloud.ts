/**
 * `tessera cloud …` on the cloud's side (issue 16 §1, §2): start the cloud, and the operator's two first steps
 * against a running one over HTTP — create a tenant (root token), make an enrollment code (tenant admin token).
 *
 * - `tessera cloud start [--database URL] [--port N] [--host H] [--data DIR]`: PGlite in `<data>/pglite` unless
 *   `--database`/`DATABASE_URL` names a PostgreSQL server; data folder default `$TESSERA_CLOUD_DATA`, else
 *   `<tessera data>/cloud`. Stops cleanly on SIGINT/SIGTERM.
 * - `tessera cloud tenant create ID [--name N]`: root token from `--token`, `$TESSERA_CLOUD_TOKEN`, else
 *   `<cloud data>/root-token` (a cloud on this machine).
 * - `tessera cloud code --role R [--venue V] [--name N] [--ttl S]`: the tenant's admin token from `--token` or
 *   `$TESSERA_CLOUD_TOKEN`.
 * The cloud's URL: `--cloud`, `$TESSERA_CLOUD_URL`, else http://127.0.0.1:4700.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEVICE_ROLES } from '../common/cloud.js';
import { isErrorCode, TesseraError } from '../common/errors.js';
import { DEFAULT_CLOUD_PORT, ROOT_TOKEN_FILE, startCloud } from '../cloud/index.js';
import { createLogger, parseLogLevel } from '../runtime/log/index.js';
import { PRODUCT_NAME, VERSION } from '../runtime/version.js';
import type { CliIo, Command, Options } from './cli.js';
import { serveUntilSignalled } from './until-signal.js';
import { parsePort, resolveDataDir } from './config.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The cloud's data folder: `--data`, `$TESSERA_CLOUD_DATA`, else `<tessera data>/cloud`. */
export function cloudDataDir(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(flag || env['TESSERA_CLOUD_DATA'] || join(resolveDataDir(undefined, env), 'cloud'));
}

const DEFAULT_CLOUD_URL = `http://127.0.0.1:${DEFAULT_CLOUD_PORT}`;

const clientOptions: Options = { cloud: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } };
const clientFlags = (token: string): Array<[string, string]> => [
  ['--cloud URL', `The running cloud (default $TESSERA_CLOUD_URL, else ${DEFAULT_CLOUD_URL}).`],
  ['--token T', token],
  ['--json', 'Print the answer as JSON.'],
];

/** A JSON request function bound to the running cloud the options name. */
function cloudClient(values: Record<string, string | boolean | undefined>, io: CliIo, token: string) {
  const url = (str(values['cloud']) ?? io.env['TESSERA_CLOUD_URL'] ?? DEFAULT_CLOUD_URL).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+$/.test(url)) throw new TesseraError('CONFIG_INVALID', `--cloud must be an origin like ${DEFAULT_CLOUD_URL}, got ${JSON.stringify(url)}.`);
  return async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> => {
    let res: Response;
    try {
      res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new TesseraError('CLOUD_UNREACHABLE', `Cannot reach the cloud at ${url}: ${(err as Error).message}. Is it running (tessera cloud start)?`);
    }
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) {
      const e = json['error'] as { code?: unknown; message?: unknown } | undefined;
      throw new TesseraError(isErrorCode(e?.code) ? e.code : 'INTERNAL', typeof e?.message === 'string' ? e.message : `HTTP ${res.status} from ${path}.`);
    }
    return json;
  };
}

const cloudStart: Command = {
  name: 'cloud start',
  summary: 'Start the Tessera cloud: enrollment, receipt sync, entitlements and leases for a fleet of devices.',
  usage: 'tessera cloud start [--database URL] [--port N] [--host H] [--data DIR]',
  options: { database: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' } },
  flags: [
    ['--database URL', 'PostgreSQL to store in (postgres://user:pass@host/db; default $DATABASE_URL, else the embedded PGlite in <data>/pglite).'],
    ['--port N', `Port to listen on (default ${DEFAULT_CLOUD_PORT}; 0 picks a free port).`],
    ['--host H', 'Address to listen on (default 127.0.0.1). Devices on other machines need a reachable address (behind TLS in production).'],
    ['--data DIR', 'Cloud data folder: root-token and the embedded database (default $TESSERA_CLOUD_DATA, else <tessera data>/cloud).'],
  ],
  async run(values, _positionals, io) {
    const port = parsePort(str(values['port']), DEFAULT_CLOUD_PORT);
    const host = str(values['host']) ?? '127.0.0.1';
    const database = str(values['database']);
    if (database !== undefined && !/^postgres(ql)?:\/\//.test(database)) throw new TesseraError('CONFIG_INVALID', `--database must be a postgres:// URL, got ${JSON.stringify(database.slice(0, 40))}.`);
    const dataDir = cloudDataDir(str(values['data']), io.env);
    const logger = createLogger({ level: parseLogLevel(io.env['TESSERA_LOG_LEVEL']) ?? 'info' });
    const cloud = await startCloud({ dataDir, host, port, logger, env: io.env, ...(database ? { database } : {}) });
    if (!['127.0.0.1', '::1', 'localhost'].includes(host)) io.stderr(`warning: listening on ${host}: put TLS in front of the cloud before devices use it over a network.\n`);
    return serveUntilSignalled(
      io,
      logger,
      () => cloud.close(),
      [
        `${PRODUCT_NAME} cloud ${VERSION} is running.`,
        `  URL:        ${cloud.url}`,
        `  Database:   ${database || io.env['DATABASE_URL'] ? `PostgreSQL ${cloud.database}` : `PGlite (embedded) in ${cloud.database}`}`,
        `  Root token: ${cloud.rootTokenFile}  (creates tenants)`,
        `  Docs:       ${cloud.url}/openapi.json`,
        `  Next:       tessera cloud tenant create ID --cloud ${cloud.url}   (prints the tenant's admin token)`,
        `              tessera cloud code --role redeemer --cloud ${cloud.url} --token ADMIN_TOKEN`,
        'Press Ctrl+C to stop.',
        '',
      ].join('\n'),
    );
  },
};

const tenantCreate: Command = {
  name: 'cloud tenant create',
  summary: "Create a tenant in a running cloud: its cloud key and its admin token (printed once; keep it).",
  usage: 'tessera cloud tenant create ID [--name N] [--cloud URL] [--token ROOT_TOKEN] [--data DIR] [--json]',
  positionals: 1,
  options: { ...clientOptions, name: { type: 'string' }, data: { type: 'string' } },
  flags: [
    ['--name N', 'Display name (default the id).'],
    ...clientFlags('Root token (default $TESSERA_CLOUD_TOKEN, else <data>/root-token of a cloud on this machine).'),
    ['--data DIR', 'Cloud data folder holding root-token (default as for cloud start).'],
  ],
  async run(values, positionals, io) {
    const id = positionals[0];
    if (!id) throw new TesseraError('CONFIG_INVALID', `The tenant ID is required. Usage: ${this.usage}`);
    let token = str(values['token']) ?? io.env['TESSERA_CLOUD_TOKEN'];
    if (!token) {
      const file = join(cloudDataDir(str(values['data']), io.env), ROOT_TOKEN_FILE);
      if (!existsSync(file)) throw new TesseraError('CONFIG_INVALID', `No root token: pass --token, set TESSERA_CLOUD_TOKEN, or point --data at the cloud's folder holding ${ROOT_TOKEN_FILE} (looked at ${file}).`);
      token = readFileSync(file, 'utf8').trim();
    }
    const name = str(values['name']);
    const answer = await cloudClient(values, io, token)('POST', '/v1/tenants', { id, ...(name ? { name } : {}) });
    const key = answer['cloud_key'] as { keyid: string };
    io.stdout(
      values['json']
        ? JSON.stringify(answer, null, 2) + '\n'
        : [
            `Tenant ${String(answer['tenant'])} created.`,
            `  Admin token: ${String(answer['admin_token'])}`,
            '               (shown once: only its digest is kept. Use it as --token / TESSERA_CLOUD_TOKEN.)',
            `  Cloud key:   ${key.keyid}`,
            `Next: tessera cloud code --role redeemer --token ${String(answer['admin_token'])}`,
            '',
          ].join('\n'),
    );
    return 0;
  },
};

const codeCreate: Command = {
  name: 'cloud code',
  summary: 'Make a one-time enrollment code for a device of the tenant (tessera cloud enroll on the device uses it).',
  usage: 'tessera cloud code --role kiosk|redeemer|gateway [--name N] [--venue V] [--ttl SECONDS] [--cloud URL] [--token ADMIN_TOKEN] [--json]',
  options: { ...clientOptions, role: { type: 'string' }, name: { type: 'string' }, venue: { type: 'string' }, ttl: { type: 'string' } },
  flags: [
    ['--role R', `What the device is: ${DEVICE_ROLES.join(', ')}.`],
    ['--name N', 'The device\'s name shown to operators (default: what the device calls itself).'],
    ['--venue V', 'The venue the device works at (leases may be assigned per venue).'],
    ['--ttl SECONDS', 'How long the code stays valid (default 86400, one day).'],
    ...clientFlags("The tenant's admin token (default $TESSERA_CLOUD_TOKEN)."),
  ],
  async run(values, _positionals, io) {
    const role = str(values['role']);
    if (!role || !(DEVICE_ROLES as readonly string[]).includes(role)) throw new TesseraError('CONFIG_INVALID', `--role must be one of ${DEVICE_ROLES.join(', ')}.`);
    const ttl = str(values['ttl']);
    if (ttl !== undefined && !/^\d{1,8}$/.test(ttl)) throw new TesseraError('CONFIG_INVALID', `--ttl must be a number of seconds, got ${JSON.stringify(ttl)}.`);
    const token = str(values['token']) ?? io.env['TESSERA_CLOUD_TOKEN'];
    if (!token) throw new TesseraError('CONFIG_INVALID', "No admin token: pass --token or set TESSERA_CLOUD_TOKEN (tessera cloud tenant create prints it).");
    const name = str(values['name']);
    const venue = str(values['venue']);
    const answer = await cloudClient(values, io, token)('POST', '/v1/enrollment-codes', { role, ...(name ? { name } : {}), ...(venue ? { venue } : {}), ...(ttl ? { ttl_s: Number(ttl) } : {}) });
    io.stdout(
      values['json']
        ? JSON.stringify(answer, null, 2) + '\n'
        : `Enrollment code (${role}${venue ? ` at ${venue}` : ''}, valid until ${String(answer['expires_at'])}, one device):\n  ${String(answer['code'])}\nOn the device: tessera cloud enroll --cloud URL --code ${String(answer['code'])}\n`,
    );
    return 0;
  },
};

export const CLOUD_COMMANDS: Command[] = [cloudStart, tenantCreate, codeCreate];
