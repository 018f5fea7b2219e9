/**
 * `tessera wallet …`: wallets of a running Tessera over its HTTP API (cli-api.ts; issue 14 point 4).
 *
 * - `wallet show ID [--json]`: the wallet's balances and latest entries.
 * - `wallet topup ID AMOUNT CURRENCY [--key K] [--memo M]`: add money (minor units) as the operator; the key makes
 *   a retried command add nothing twice (default: a new key per command).
 */
import { randomUUID } from 'node:crypto';
import { TesseraError } from '../common/errors.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { Command } from './cli.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const money = (amount: number, currency: string) => `${(amount / 100).toFixed(2)} ${currency}`;

const showCommand: Command = {
  name: 'wallet show',
  summary: 'Show a wallet\'s balances and its latest ledger entries.',
  usage: 'tessera wallet show ID [--json] [--url URL] [--token T]',
  options: { ...connection, json: { type: 'boolean' } },
  positionals: 1,
  flags: [['--json', 'Print the wallet and its entries as JSON.'], ...connectionFlags],
  run(values, positionals, io) {
    return reporting(io, async () => {
      if (positionals.length !== 1) throw new TesseraError('CONFIG_INVALID', `Usage: ${this.usage}`);
      const id = encodeURIComponent(positionals[0]!);
      const api = apiClient(values, io);
      const wallet = (await api('GET', `/api/wallets/${id}`)) as { wallet_id: string; balances: Array<{ currency: string; amount: number }> };
      const { entries } = (await api('GET', `/api/wallets/${id}/entries?limit=20`)) as { entries: Array<{ kind: string; amount: number; currency: string; created_at: string; memo: string | null }> };
      if (values['json']) {
        io.stdout(`${JSON.stringify({ ...wallet, entries }, null, 2)}\n`);
        return 0;
      }
      io.stdout(`wallet ${wallet.wallet_id}: ${wallet.balances.map((b) => money(b.amount, b.currency)).join(', ')}\n`);
      for (const e of entries) io.stdout(`  ${e.created_at}  ${e.kind.padEnd(8)}  ${(e.amount > 0 ? '+' : '') + money(e.amount, e.currency)}${e.memo ? `  ${e.memo}` : ''}\n`);
      return 0;
    });
  },
};

const topupCommand: Command = {
  name: 'wallet topup',
  summary: 'Add money to a wallet (amount in minor units: 50000 UAH is 500.00 UAH).',
  usage: 'tessera wallet topup ID AMOUNT CURRENCY [--key K] [--memo M] [--url URL] [--token T]',
  options: { ...connection, key: { type: 'string' }, memo: { type: 'string' } },
  positionals: 3,
  flags: [['--key K', 'Idempotency key: the same key tops up once, however often the command runs (default: a new one).'], ['--memo M', 'Why (kept with the ledger entry).'], ...connectionFlags],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [id, amountText, currency] = positionals;
      if (positionals.length !== 3 || !/^\d{1,13}$/.test(amountText!) || Number(amountText) === 0) throw new TesseraError('CONFIG_INVALID', `Usage: ${this.usage} (AMOUNT is a positive whole number of minor units)`);
      const memo = str(values['memo']);
      const answer = (await apiClient(values, io)('POST', `/api/wallets/${encodeURIComponent(id!)}/topup`, {
        amount: Number(amountText),
        currency: currency!.toUpperCase(),
        idempotency_key: str(values['key']) ?? `cli-${randomUUID()}`,
        ...(memo === undefined ? {} : { memo }),
      })) as { balance: number; currency: string; transaction: string; replayed: boolean };
      io.stdout(`${answer.replayed ? 'already topped up with this key' : 'topped up'}: wallet ${id} holds ${money(answer.balance, answer.currency)} (${answer.transaction})\n`);
      return 0;
    });
  },
};

export const WALLET_COMMANDS: Command[] = [showCommand, topupCommand];
