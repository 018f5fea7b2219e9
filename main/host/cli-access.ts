/**
 * `tessera pin` and `tessera token`: who may do what on a device (issue 13 §1.2, main/common/roles.ts). The
 * operator PIN unlocks a kiosk started for travellers; role tokens give a browser one role (a staff tablet, an
 * author's laptop) without handing out the device token.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TesseraError } from '../common/errors.js';
import { ROLES, isRole } from '../common/roles.js';
import type { Command } from './cli.js';
import { DEFAULT_HOST, DEFAULT_PORT, ensureDataDir, loadOrCreateToken, resolveDataDir } from './config.js';
import { createCredentials, PIN_FILE, setOperatorPin } from './credentials.js';

const dataOption = { data: { type: 'string' } } as const;
const dataFlag: [string, string] = ['--data DIR', 'Data folder (default: $TESSERA_DATA, else the platform user-data folder).'];
const dataDirOf = (values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv) => resolve(resolveDataDir(values['data'] as string | undefined, env));

const pinSetCommand: Command = {
  name: 'pin set',
  summary: 'Set the operator PIN that unlocks Ops, Studio and Redeem on a kiosk started for travellers (read from standard input).',
  usage: 'tessera pin set [--data DIR]   (e.g. printf 2580 | tessera pin set)',
  options: { ...dataOption },
  flags: [dataFlag],
  async run(values, _positionals, io) {
    const dataDir = dataDirOf(values, io.env);
    ensureDataDir(dataDir);
    if (process.stdin.isTTY) io.stderr('Type the new operator PIN (4–12 digits) and press Enter: ');
    const pin = readFileSync(0, 'utf8').split(/\r?\n/, 1)[0]!.trim();
    await setOperatorPin(dataDir, pin);
    io.stdout(`Operator PIN set (${join(dataDir, PIN_FILE)}). A running Tessera uses it from the next unlock; no restart needed.\n`);
    return 0;
  },
};

const pinClearCommand: Command = {
  name: 'pin clear',
  summary: 'Remove the operator PIN: operator unlock is then refused until a PIN is set again.',
  usage: 'tessera pin clear [--data DIR]',
  options: { ...dataOption },
  flags: [dataFlag],
  async run(values, _positionals, io) {
    const dataDir = dataDirOf(values, io.env);
    rmSync(join(dataDir, PIN_FILE), { force: true });
    io.stdout('Operator PIN removed.\n');
    return 0;
  },
};

const tokenCommand: Command = {
  name: 'token',
  summary: 'Print the token of one role (or the device token), and the UI link that carries it.',
  usage: `tessera token [--role ${ROLES.join('|')}] [--data DIR] [--port N] [--host H]`,
  options: { role: { type: 'string' }, ...dataOption, port: { type: 'string' }, host: { type: 'string' } },
  flags: [
    ['--role R', `One of ${ROLES.join(', ')}: a token that holds that role only. Without it, the device token (every role).`],
    dataFlag,
    ['--port N', `Port for the printed link (default ${DEFAULT_PORT}).`],
    ['--host H', `Address for the printed link (default ${DEFAULT_HOST}).`],
  ],
  async run(values, _positionals, io) {
    const role = values['role'] as string | undefined;
    if (role !== undefined && !isRole(role)) throw new TesseraError('CONFIG_INVALID', `--role must be one of ${ROLES.join(', ')}, not "${role}".`);
    const dataDir = dataDirOf(values, io.env);
    ensureDataDir(dataDir);
    const { token: device } = loadOrCreateToken(dataDir, io.env);
    const token = role === undefined ? device : createCredentials({ dataDir, deviceToken: device, tenantForToken: () => undefined }).roleToken(role);
    const host = (values['host'] as string | undefined) ?? DEFAULT_HOST;
    const port = (values['port'] as string | undefined) ?? String(DEFAULT_PORT);
    io.stdout(`${token}\n`);
    io.stderr(`UI link: http://${host.includes(':') ? `[${host}]` : host}:${port}/#token=${encodeURIComponent(token)}\n${role === undefined ? 'This is the device token: it holds every role. Give out role tokens instead.\n' : `Holds the ${role} role only. Replacing <data>/api-token replaces every role token.\n`}`);
    return 0;
  },
};

export const ACCESS_COMMANDS: Command[] = [pinSetCommand, pinClearCommand, tokenCommand];
