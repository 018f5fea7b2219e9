/**
 * `tessera redeem CODE --venue V [--amount N]`, `tessera entitlements list`, `tessera issuing pause|resume`
 * (issue 14): staff and operator commands against a running Tessera over its HTTP API (the runtime holds the
 * data folder's lock, so these never open the database themselves). A refused code prints its verdict and exits 1.
 */
import { TesseraError } from '../common/errors.js';
import type { IssuedEntitlement, IssuingState, RedeemAnswer } from '../common/entitlements.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { Command } from './cli.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

const redeem: Command = {
  name: 'redeem',
  summary: 'Redeem an entitlement code at a venue (prints the verdict; exit 1 when refused).',
  usage: 'tessera redeem CODE --venue V [--amount N] [--check] [--screen S] [--json] [--url URL] [--token T] [--data DIR]',
  positionals: 1,
  options: { ...connection, venue: { type: 'string' }, amount: { type: 'string' }, screen: { type: 'string' }, check: { type: 'boolean' }, json: { type: 'boolean' } },
  flags: [
    ['--venue V', 'The venue id this redemption happens at (required).'],
    ['--amount N', 'Stored-value vouchers: the amount to take, in minor units.'],
    ['--screen S', 'Which staff screen (shown in history).'],
    ['--check', 'Only check: print what redeeming would answer, write nothing.'],
    ['--json', 'Print the whole answer as JSON.'],
    ...connectionFlags,
  ],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const code = positionals[0];
      const venue = str(values['venue']);
      if (!code || !venue) throw new TesseraError('CONFIG_INVALID', `CODE and --venue are required. Usage: ${this.usage}`);
      const amountText = str(values['amount']);
      const amount = amountText === undefined ? undefined : Number(amountText);
      if (amount !== undefined && (!Number.isSafeInteger(amount) || amount <= 0)) throw new TesseraError('CONFIG_INVALID', `--amount must be a positive integer (minor units), got ${JSON.stringify(amountText)}.`);
      const screen = str(values['screen']);
      const api = apiClient(values, io);
      const answer = (await api('POST', values['check'] ? '/api/redeem/check' : '/api/redeem', { code, venue, ...(amount !== undefined ? { amount } : {}), ...(screen ? { screen } : {}) })) as unknown as RedeemAnswer;
      if (values['json']) io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
      else {
        io.stdout(`${answer.verdict.replace(/_/g, ' ')}: ${answer.message}\n`);
        if (answer.redemption) io.stdout(`  redemption ${answer.redemption.id}  receipt ${answer.redemption.receipt_id}  undo until ${answer.redemption.undo_until}\n`);
      }
      return answer.ok ? 0 : 1;
    });
  },
};

const entitlementsList: Command = {
  name: 'entitlements list',
  summary: 'List the entitlements this device issued, with their rights left and state.',
  usage: 'tessera entitlements list [--session ID] [--user ID] [--state active|used|expired|revoked] [--json] [--url URL] [--token T] [--data DIR]',
  options: { ...connection, session: { type: 'string' }, user: { type: 'string' }, state: { type: 'string' }, json: { type: 'boolean' } },
  flags: [['--session ID', 'Only this product session\'s.'], ['--user ID', 'Only this user\'s.'], ['--state S', 'Only in this state.'], ['--json', 'Print them as JSON (with their codes).'], ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const params = new URLSearchParams();
      for (const k of ['session', 'user', 'state']) if (str(values[k])) params.set(k, str(values[k])!);
      const { entitlements } = (await apiClient(values, io)('GET', `/api/entitlements?${params.toString()}`)) as { entitlements: IssuedEntitlement[] };
      if (values['json']) {
        io.stdout(`${JSON.stringify(entitlements, null, 2)}\n`);
        return 0;
      }
      if (entitlements.length === 0) io.stdout('no entitlements\n');
      for (const e of entitlements) {
        const rights = e.rights_left !== undefined ? `${e.rights_left}${e.rights_total !== undefined ? `/${e.rights_total}` : ''}${e.currency ? ` ${e.currency}` : ''} left` : 'per venue';
        io.stdout(`${e.serial}  ${e.state.padEnd(7)}  ${e.kind.padEnd(12)}  ${rights.padEnd(16)}  ${e.product_ref}  until ${e.valid_until}  session ${e.product_runtime_session_id}\n`);
      }
      return 0;
    });
  },
};

function issuingCommand(action: 'pause' | 'resume'): Command {
  return {
    name: `issuing ${action}`,
    summary: action === 'pause' ? 'Pause issuing entitlements (degraded mode); redemption goes on.' : 'Resume issuing entitlements.',
    usage: `tessera issuing ${action}${action === 'pause' ? ' [--reason TEXT]' : ''} [--url URL] [--token T] [--data DIR]`,
    options: { ...connection, ...(action === 'pause' ? { reason: { type: 'string' as const } } : {}) },
    flags: [...(action === 'pause' ? [['--reason TEXT', 'Why (shown to operators and journaled).'] as [string, string]] : []), ...connectionFlags],
    run(values, _positionals, io) {
      return reporting(io, async () => {
        const reason = str(values['reason']);
        const state = (await apiClient(values, io)('POST', '/api/issuing', { paused: action === 'pause', ...(reason ? { reason } : {}) })) as unknown as IssuingState;
        io.stdout(state.paused ? `Issuing paused since ${state.since}${state.reason ? `: ${state.reason}` : ''}. Redemption goes on.\n` : `Issuing is on${state.since ? ` (since ${state.since})` : ''}.\n`);
        return 0;
      });
    },
  };
}

/** `redeem`, `entitlements list`, `issuing pause`, `issuing resume`. */
export const REDEEM_COMMANDS: Command[] = [redeem, entitlementsList, issuingCommand('pause'), issuingCommand('resume')];
