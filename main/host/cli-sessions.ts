/**
 * `tessera session …`: product runtime sessions of a running Tessera (seed 000 §3–§4; issue 14 point 2), over its
 * HTTP API (cli-api.ts).
 *
 * - `session buy PRODUCT [--user U] [--wallet W] [--market M] [--city C]`: create, preflight and pay in one go;
 *   prints each step and the entitlement codes.
 * - `session create PRODUCT …` (preflight only), `session pay ID`, `session cancel ID [--reason R]`,
 *   `session complete ID`, `session show ID`, `session list [--user U] [--state S]`; `--json` prints the session.
 */
import { TesseraError } from '../common/errors.js';
import { SESSION_STATES } from '../runtime/sessions/machine.js';
import type { ProductSession } from '../runtime/sessions/index.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { CliIo, Command } from './cli.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const money = (p: { amount: number; currency: string }) => `${(p.amount / 100).toFixed(2)} ${p.currency}`;

const createOptions = { ...connection, user: { type: 'string' }, wallet: { type: 'string' }, market: { type: 'string' }, city: { type: 'string' }, json: { type: 'boolean' } } as const;
const createFlags: Array<[string, string]> = [
  ['--user U', 'Who buys (default anonymous).'],
  ['--wallet W', 'Wallet paid from (default main, the device balance).'],
  ['--market M', 'Market code, e.g. UA.'],
  ['--city C', 'City the product is used in, e.g. lviv.'],
  ['--json', 'Print the session as JSON.'],
  ...connectionFlags,
];

/** One session in a few lines a person reads. */
function describe(s: ProductSession, io: CliIo): void {
  io.stdout(`${s.product_runtime_session_id}  ${s.state}  ${s.product.title ?? s.product.id} (${s.product.ref})  ${money(s.price)}\n`);
  if (s.preflight) for (const r of s.preflight.reasons) io.stdout(`  preflight: ${r.code}: ${r.message}\n`);
  if (s.payment) io.stdout(`  paid ${money(s.payment)} (${s.payment.payment_id})${s.payment.refund_id ? `, refunded (${s.payment.refund_id})` : ''}\n`);
  for (const e of s.entitlements) io.stdout(`  entitlement ${String(e.serial)} ${e.kind} ${e.state} until ${e.valid_until}${typeof e['code'] === 'string' ? `\n    ${e['code']}` : ''}\n`);
  if (s.reason) io.stdout(`  ${s.reason.code}: ${s.reason.message}\n`);
  io.stdout(`  receipts: /v1/r/${s.capsule}\n`);
}

function createBody(values: Record<string, string | boolean | undefined>, product: string): Record<string, unknown> {
  const body: Record<string, unknown> = { product };
  for (const [flag, field] of [['user', 'user_id'], ['wallet', 'wallet_id'], ['market', 'market'], ['city', 'city']] as const) {
    const v = str(values[flag]);
    if (v !== undefined) body[field] = v;
  }
  return body;
}

function show(values: Record<string, string | boolean | undefined>, io: CliIo, session: ProductSession): number {
  if (values['json']) io.stdout(`${JSON.stringify(session, null, 2)}\n`);
  else describe(session, io);
  return ['preflight_failed', 'failed'].includes(session.state) ? 1 : 0;
}

const one = (positionals: string[], usage: string): string => {
  if (positionals.length !== 1) throw new TesseraError('CONFIG_INVALID', `Usage: ${usage}`);
  return positionals[0]!;
};

const buyCommand: Command = {
  name: 'session buy',
  summary: 'Buy a product: create a session, run its preflight, pay from the wallet and print the entitlement codes.',
  usage: 'tessera session buy PRODUCT [--user U] [--wallet W] [--market M] [--city C] [--json] [--url URL] [--token T]',
  options: createOptions,
  flags: createFlags,
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const api = apiClient(values, io);
      const product = one(positionals, this.usage);
      const created = (await api('POST', '/api/sessions', { ...createBody(values, product), idempotency_key: `cli-${process.pid}-${Date.now()}` })) as unknown as ProductSession;
      if (created.state !== 'preflight_ok') return show(values, io, created);
      return show(values, io, (await api('POST', `/api/sessions/${created.product_runtime_session_id}/pay`, {})) as unknown as ProductSession);
    });
  },
};

const createCommand: Command = {
  name: 'session create',
  summary: 'Create a product session and run its preflight (no payment).',
  usage: 'tessera session create PRODUCT [--user U] [--wallet W] [--market M] [--city C] [--json] [--url URL] [--token T]',
  options: createOptions,
  flags: createFlags,
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => show(values, io, (await apiClient(values, io)('POST', '/api/sessions', createBody(values, one(positionals, this.usage)))) as unknown as ProductSession));
  },
};

function actionCommand(action: 'pay' | 'cancel' | 'complete', summary: string): Command {
  return {
    name: `session ${action}`,
    summary,
    usage: `tessera session ${action} ID${action === 'pay' ? '' : ' [--reason R]'} [--json] [--url URL] [--token T]`,
    options: { ...connection, reason: { type: 'string' }, json: { type: 'boolean' } },
    positionals: 1,
    flags: [['--reason R', 'Why (recorded in the settlement receipt).'], ['--json', 'Print the session as JSON.'], ...connectionFlags],
    run(values, positionals, io) {
      return reporting(io, async () => {
        const id = one(positionals, this.usage);
        const reason = str(values['reason']);
        return show(values, io, (await apiClient(values, io)('POST', `/api/sessions/${encodeURIComponent(id)}/${action}`, reason === undefined ? {} : { reason })) as unknown as ProductSession);
      });
    },
  };
}

const showCommand: Command = {
  name: 'session show',
  summary: 'Show a product session: state, preflight reasons, payment, entitlements and where its receipts are.',
  usage: 'tessera session show ID [--json] [--url URL] [--token T]',
  options: { ...connection, json: { type: 'boolean' } },
  positionals: 1,
  flags: [['--json', 'Print the session as JSON.'], ...connectionFlags],
  run(values, positionals, io) {
    return reporting(io, async () => {
      show(values, io, (await apiClient(values, io)('GET', `/api/sessions/${encodeURIComponent(one(positionals, this.usage))}`)) as unknown as ProductSession);
      return 0;
    });
  },
};

const listCommand: Command = {
  name: 'session list',
  summary: 'List product sessions, newest first.',
  usage: `tessera session list [--user U] [--state ${SESSION_STATES.join('|')}] [--json] [--url URL] [--token T]`,
  options: { ...connection, user: { type: 'string' }, state: { type: 'string' }, json: { type: 'boolean' } },
  flags: [['--user U', 'Only this user\'s sessions.'], ['--state S', 'Only sessions in this state.'], ['--json', 'Print the sessions as JSON.'], ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const state = str(values['state']);
      if (state !== undefined && !(SESSION_STATES as readonly string[]).includes(state)) throw new TesseraError('CONFIG_INVALID', `--state must be one of ${SESSION_STATES.join(', ')}, got ${JSON.stringify(state)}.`);
      const query = new URLSearchParams();
      if (str(values['user'])) query.set('user', str(values['user'])!);
      if (state) query.set('state', state);
      const { sessions } = (await apiClient(values, io)('GET', `/api/sessions${query.size > 0 ? `?${query}` : ''}`)) as unknown as { sessions: ProductSession[] };
      if (values['json']) io.stdout(`${JSON.stringify(sessions, null, 2)}\n`);
      else if (sessions.length === 0) io.stdout('no product sessions\n');
      else for (const s of sessions) io.stdout(`${s.product_runtime_session_id}  ${s.state.padEnd(16)}  ${s.product.ref}  ${s.user_id}  ${s.created_at}\n`);
      return 0;
    });
  },
};

export const SESSION_COMMANDS: Command[] = [
  buyCommand,
  createCommand,
  actionCommand('pay', 'Pay a session that passed its preflight, and issue its entitlements.'),
  actionCommand('cancel', 'Cancel a session: refunds what was paid and revokes its entitlements (if none was used).'),
  actionCommand('complete', 'Complete an active session now, with its settlement receipt (operator).'),
  showCommand,
  listCommand,
];
