/**
 * One held entitlement as the traveller shows it at a venue (issue 14 point 7): a large black-on-white QR code of its
 * `code` ("TS1:" + base45) in the QR alphanumeric mode, with a 4-module quiet zone (main/common/qr.ts), sized to
 * the screen (styles.css "Wallet"); its title, what is left, its validity in the traveller's language and its
 * state in words. "Receipt" shows a QR of a read-only link to the purchase's receipts (POST /api/links), for a
 * phone to open; when the kiosk cannot make links yet it says so.
 */
import { useMemo, useState } from 'preact/hooks';
import type { TesseraClient } from '../../../main/common/api.js';
import type { EntitlementView, ProductSessionView } from './wallet-model.js';
import { qrSvg } from '../../../main/common/qr.js';
import { formatWhen, linkFromAnswer, problemWords, rightsWords, stateWords, travellerLanguage } from './wallet-model.js';

/** An SVG QR code (numbers and an escaped label only: nothing from the answer becomes markup). */
export function QrImage(props: { text: string; label: string; alphanumeric?: boolean; testid: string; class?: string }) {
  const svg = useMemo(() => {
    try {
      // A TS1: code is all QR alphanumeric characters: qrSvg picks that denser mode by itself.
      return qrSvg(props.text, { label: props.label });
    } catch {
      return null;
    }
  }, [props.text, props.label, props.alphanumeric]);
  if (!svg) return <p class="error">This code is too long to show as a QR code.</p>;
  return <div class={props.class ?? 'wallet-qr'} data-testid={props.testid} dangerouslySetInnerHTML={{ __html: svg }} />;
}

export function PassCard(props: { client: TesseraClient; session: ProductSessionView; entitlement: EntitlementView; title: string }) {
  const { entitlement: e, session } = props;
  const lang = travellerLanguage();
  const [receipt, setReceipt] = useState<{ url: string } | { problem: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const showReceipt = async () => {
    if (receipt) return setReceipt(null);
    setBusy(true);
    try {
      setReceipt({ url: linkFromAnswer(await props.client.products.createLink(session.capsule)).url });
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? '');
      setReceipt({ problem: code === 'NOT_FOUND' || code === 'INTERNAL' ? 'Receipt links are not available on this kiosk yet; staff can print the receipt.' : problemWords(err) });
    } finally {
      setBusy(false);
    }
  };
  const usable = e.state === 'active';
  return (
    <article class={`wallet-pass state-${e.state}`} data-testid="wallet-pass" data-serial={e.serial} aria-label={props.title}>
      <div class="wallet-pass-code">
        {e.code ? <QrImage text={e.code} label={`QR code of your ${props.title}`} alphanumeric testid="wallet-pass-qr" /> : <p class="hint">The code of this pass is not on this screen.</p>}
      </div>
      <div class="wallet-pass-facts">
        <h4>{props.title}</h4>
        <p class={`wallet-state ${usable ? 'ok' : 'off'}`} data-testid="wallet-pass-state">
          <span aria-hidden="true">{usable ? '✓ ' : '✕ '}</span>
          {stateWords(e.state)}
        </p>
        <p class="wallet-rights" data-testid="wallet-pass-rights">{rightsWords(e, lang)}</p>
        <dl class="wallet-validity">
          <dt>Valid from</dt>
          <dd data-testid="wallet-pass-from">{formatWhen(e.valid_from, lang)}</dd>
          <dt>Valid until</dt>
          <dd data-testid="wallet-pass-until">{formatWhen(e.valid_until, lang)}</dd>
        </dl>
        {usable && <p class="hint">Show this code at the entrance.</p>}
        <button type="button" class="secondary" data-testid="wallet-receipt" aria-expanded={receipt !== null} disabled={busy} onClick={() => void showReceipt()}>
          {receipt ? 'Hide receipt' : busy ? 'Making the receipt link…' : 'Receipt'}
        </button>
        {receipt && 'url' in receipt && (
          <div class="wallet-receipt" data-testid="wallet-receipt-link">
            <QrImage text={receipt.url} label="QR code of the receipt link" testid="wallet-receipt-qr" class="wallet-receipt-qr" />
            <p class="hint">Scan with your phone to open the receipt of this purchase.</p>
          </div>
        )}
        {receipt && 'problem' in receipt && (
          <p class="wallet-problem" role="alert" data-testid="wallet-receipt-problem">
            {receipt.problem}
          </p>
        )}
      </div>
    </article>
  );
}
