/**
 * `tessera sync status|now` and `tessera cloud enroll --cloud URL --code CODE` (issue 16 §2, §6): this device's side
 * of the cloud, through the running runtime's API like the other staff and operator commands (the runtime holds the
 * data folder's lock and the device key). The cloud's own commands (`tessera cloud start`, …) are in cli-cloud.ts.
 */
import type { SyncStatus } from '../common/cloud.js';
import { TesseraError } from '../common/errors.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { CliIo, Command } from './cli.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The status for a person: one line of state, then what waits and the leases. */
export function formatSyncStatus(s: SyncStatus): string {
  if (!s.cloud) return 'Not enrolled with a cloud. Enroll with: tessera cloud enroll --cloud URL --code CODE\n';
  const lines = [
    `${s.state.toUpperCase()}  ${s.cloud.url}  tenant ${s.cloud.tenant}  ${s.cloud.role} ${s.cloud.device}`,
    `  last sync:       ${s.last_sync ?? 'never'}`,
    `  pending uploads: ${s.pending_uploads} receipts (cloud holds ${s.accepted_size})`,
    `  deny list as of: ${s.deny_list_as_of ?? 'never pulled'}`,
  ];
  if (s.next_attempt) lines.push(`  next attempt:    ${s.next_attempt}`);
  if (s.last_error) lines.push(`  last error:      ${s.last_error.code} at ${s.last_error.at}: ${s.last_error.message}`);
  if (s.leases.length === 0) lines.push('  leases:          none');
  for (const l of s.leases) lines.push(`  lease ${l.lease}  serial ${l.serial}  ${l.left}/${l.rights} left  ${l.state}  until ${l.exp}`);
  return `${lines.join('\n')}\n`;
}

const print = (io: CliIo, status: SyncStatus, json: unknown) => io.stdout(json ? `${JSON.stringify(status, null, 2)}\n` : formatSyncStatus(status));

const syncStatus: Command = {
  name: 'sync status',
  summary: 'Show this device\'s sync with the cloud: online or not, last sync, pending uploads, deny-list age, leases.',
  usage: 'tessera sync status [--json] [--url URL] [--token T] [--data DIR]',
  options: { ...connection, json: { type: 'boolean' } },
  flags: [['--json', 'Print the SyncStatus as JSON.'], ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      print(io, (await apiClient(values, io)('GET', '/api/sync')) as unknown as SyncStatus, values['json']);
      return 0;
    });
  },
};

const syncNow: Command = {
  name: 'sync now',
  summary: 'Sync with the cloud now (upload receipts, pull changes, return leases); exit 1 when the round failed.',
  usage: 'tessera sync now [--json] [--url URL] [--token T] [--data DIR]',
  options: { ...connection, json: { type: 'boolean' } },
  flags: [['--json', 'Print the SyncStatus after the round as JSON.'], ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const status = (await apiClient(values, io)('POST', '/api/sync/now')) as unknown as SyncStatus;
      print(io, status, values['json']);
      return status.state === 'online' ? 0 : 1;
    });
  },
};

const cloudEnroll: Command = {
  name: 'cloud enroll',
  summary: 'Enroll this device with a cloud using a one-time code from its operator (the device key signs a challenge).',
  usage: 'tessera cloud enroll --cloud URL --code CODE [--name N] [--json] [--url URL] [--token T] [--data DIR]',
  options: { ...connection, cloud: { type: 'string' }, code: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } },
  flags: [
    ['--cloud URL', 'The cloud\'s address, e.g. http://cloud.example:4700 (default $TESSERA_CLOUD_URL).'],
    ['--code CODE', 'The one-time enrollment code (`tessera cloud code`, POST /v1/enrollment-codes).'],
    ['--name N', 'What the operators see this device as (default: the code\'s name).'],
    ['--json', 'Print the SyncStatus after enrolling as JSON.'],
    ...connectionFlags,
  ],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const cloud = str(values['cloud']) ?? io.env['TESSERA_CLOUD_URL'];
      const code = str(values['code']);
      if (!cloud || !code) throw new TesseraError('CONFIG_INVALID', `--cloud and --code are required. Usage: ${this.usage}`);
      const name = str(values['name']);
      const status = (await apiClient(values, io)('POST', '/api/sync/enroll', { cloud, code, ...(name ? { name } : {}) })) as unknown as SyncStatus;
      if (!values['json']) io.stdout(`Enrolled with ${status.cloud?.url} (tenant ${status.cloud?.tenant}) as ${status.cloud?.role} ${status.cloud?.device}; syncing.\n`);
      else io.stdout(`${JSON.stringify(status, null, 2)}\n`);
      return 0;
    });
  },
};

/** `sync status`, `sync now`, `cloud enroll`. */
export const SYNC_COMMANDS: Command[] = [syncStatus, syncNow, cloudEnroll];
