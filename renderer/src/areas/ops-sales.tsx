/**
 * Ops → Sales (issue 14 points 4 and 9): what the operator does for the passes a kiosk sells — top up the kiosk's
 * balance (the internal-balance payment provider's wallet), pause issuing when the issuer is degraded (seed 000
 * §7.2: redemption of what exists goes on), and follow the product sessions, cancelling one with a refund.
 */
import { useEffect, useState } from 'preact/hooks';
import type { TesseraClient } from '../../../main/common/api.js';
import { isTesseraError } from '../../../main/common/errors.js';
import type { ProductSessionView, WalletView } from '../../../main/common/products-api.js';

const message = (err: unknown) => (isTesseraError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err));

/** Minor units as the currency's usual two decimals ("450.00 UAH"). */
export function formatMoney(amount: number, currency: string): string {
  return `${(amount / 100).toFixed(2)} ${currency}`;
}

export function SalesPanel(props: { client: TesseraClient }) {
  const products = props.client.products;
  const [walletId, setWalletId] = useState('main');
  const [wallet, setWallet] = useState<WalletView | null>(null);
  const [amount, setAmount] = useState('');
  const [currency, setCurrency] = useState('UAH');
  const [issuing, setIssuing] = useState<{ paused: boolean; reason?: string | null } | null>(null);
  const [reason, setReason] = useState('');
  const [sessions, setSessions] = useState<ProductSessionView[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);

  const refresh = () => {
    products.wallet(walletId).then(setWallet, (err: unknown) => setProblem(message(err)));
    products.issuing().then(setIssuing, (err: unknown) => setProblem(message(err)));
    products.sessions({ limit: 20 }).then(setSessions, (err: unknown) => setProblem(message(err)));
  };
  useEffect(refresh, [walletId]);

  const topUp = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    const minor = Math.round(Number(amount) * 100);
    if (!Number.isFinite(minor) || minor <= 0) return setProblem('Enter an amount above zero, e.g. 500.00.');
    try {
      const done = await products.topUp(walletId, { amount: minor, currency, idempotency_key: `ops-${Date.now()}-${Math.random().toString(36).slice(2)}` });
      setNote(`Topped up: ${walletId} holds ${formatMoney(done.balance, done.currency)}.`);
      setAmount('');
      refresh();
    } catch (err) {
      setProblem(message(err));
    }
  };

  const toggleIssuing = async () => {
    if (!issuing) return;
    setProblem(null);
    try {
      setIssuing(await products.setIssuing(!issuing.paused, reason.trim() === '' ? undefined : reason.trim()));
    } catch (err) {
      setProblem(message(err));
    }
  };

  const cancel = async (s: ProductSessionView) => {
    setProblem(null);
    try {
      await products.cancel(s.product_runtime_session_id, 'canceled by the operator');
      refresh();
    } catch (err) {
      setProblem(message(err));
    }
  };

  return (
    <section class="ops sales" aria-labelledby="ops-sales-title" data-testid="ops-sales">
      <div class="toolbar">
        <h2 id="ops-sales-title">Sales</h2>
        {issuing ? (
          <span class={issuing.paused ? 'pill warn' : 'pill ok'} data-testid="issuing-state">
            {issuing.paused ? `Issuing paused${issuing.reason ? `: ${issuing.reason}` : ''}` : 'Issuing'}
          </span>
        ) : null}
      </div>
      {problem ? <p class="error" role="alert">{problem}</p> : null}
      {note ? <p class="hint" role="status">{note}</p> : null}
      <form class="inline" onSubmit={topUp}>
        <label for="sales-wallet">Wallet</label>
        <input id="sales-wallet" value={walletId} onInput={(e) => setWalletId((e.target as HTMLInputElement).value.trim() || 'main')} size={10} />
        <span data-testid="wallet-balance">{wallet ? (wallet.balances.length === 0 ? 'empty' : wallet.balances.map((b) => formatMoney(b.amount, b.currency)).join(', ')) : '…'}</span>
        <label for="sales-amount">Top up</label>
        <input id="sales-amount" inputMode="decimal" placeholder="500.00" value={amount} onInput={(e) => setAmount((e.target as HTMLInputElement).value)} size={8} />
        <input aria-label="Currency" value={currency} onInput={(e) => setCurrency((e.target as HTMLInputElement).value.toUpperCase())} size={4} maxLength={3} />
        <button type="submit">Top up</button>
      </form>
      <div class="inline">
        <label for="sales-reason">Reason</label>
        <input id="sales-reason" placeholder="issuer offline" value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
        <button type="button" onClick={toggleIssuing} disabled={!issuing}>{issuing?.paused ? 'Resume issuing' : 'Pause issuing'}</button>
      </div>
      <table class="sessions">
        <thead>
          <tr><th>Session</th><th>Product</th><th>State</th><th>Price</th><th>Traveller</th><th /></tr>
        </thead>
        <tbody>
          {sessions.map((s) => (
            <tr key={s.product_runtime_session_id} data-state={s.state}>
              <td title={s.product_runtime_session_id}>{s.created_at.slice(0, 16).replace('T', ' ')}</td>
              <td>{s.product.title ?? s.product.ref}</td>
              <td>{s.state}{s.reason ? ` (${s.reason.message})` : ''}</td>
              <td>{formatMoney(s.price.amount, s.price.currency)}</td>
              <td>{s.user_id}</td>
              <td>{['created', 'preflight_ok', 'pending_payment', 'active'].includes(s.state) ? <button type="button" onClick={() => void cancel(s)}>Cancel and refund</button> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
