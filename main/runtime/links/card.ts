/**
 * The card a capability link opens (`GET /c/<token>`): the same {@link CardData} as `/v1/r/<cid>`, laid out for a
 * phone held by a traveller (360–414 CSS px): one column, 17 px type, the outcome in words, the receipts as a list
 * rather than a wide table, long ids wrapped, and the bundle download. No script; its one style block is allowed by
 * hash in {@link LINK_CARD_CSP}, and nothing on the page loads anything (the token must not leak through a fetch).
 */
import { createHash } from 'node:crypto';
import { qrSvg } from '../../common/qr.js';
import type { JsonValue, Verdict } from '../../common/receipt.js';
import type { CardData } from '../receipts/card.js';

const STYLE = [
  '*{box-sizing:border-box}html{-webkit-text-size-adjust:100%;text-size-adjust:100%}',
  'body{font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:1rem;color:#1b1b1b;background:#fff;max-width:40rem;margin:0 auto;overflow-wrap:anywhere}',
  'h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.15rem;margin:1.4rem 0 .4rem}',
  '.verdict{display:block;padding:.8rem 1rem;border-radius:.6rem;color:#fff;font-weight:700;font-size:1.3rem}',
  '.ACK{background:#1a7f37}.NACK{background:#c62828}.ASK{background:#8a5300}',
  'dl{margin:0}dt{font-weight:600;margin-top:.6rem}dd{margin:0}',
  'code{font-size:1rem;word-break:break-all;overflow-wrap:anywhere}',
  'ol{padding-left:1.4rem;margin:.2rem 0}li{margin:.5rem 0}',
  '.small{color:#444}',
  'a.button{display:block;text-align:center;background:#0b57d0;color:#fff;text-decoration:none;font-weight:600;padding:.9rem 1rem;border-radius:.6rem;margin:1.2rem 0 .4rem}',
  '.qr{text-align:center;margin:1rem 0}.qr svg{max-width:100%;height:auto;width:12rem}',
].join('');

/**
 * The link card's Content-Security-Policy: its own inline style (by hash) and inline images, nothing fetched, no
 * forms, no framing. Served with `Referrer-Policy: no-referrer` (the server's default for every answer).
 */
export const LINK_CARD_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The outcome of a capsule in words a traveller reads, for each verdict. */
export const VERDICT_WORDS: Record<Verdict, string> = {
  ACK: 'Approved',
  NACK: 'Refused',
  ASK: 'Waiting for approval',
};

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** What happened, in words: a product session, a redemption, or the intent of a `/v1/run` view. */
export function kindInWords(act: string, intent: JsonValue): string {
  if (act === 'product.session') return 'Purchase';
  if (act === 'entitlement.redeem') return 'Redemption';
  const i = intent as { kind?: unknown; name?: unknown } | null;
  const parts = [i && typeof i.kind === 'string' ? i.kind : null, i && typeof i.name === 'string' ? i.name : null].filter((p): p is string => p !== null);
  return parts.length > 0 ? `${act}: ${parts.join(' ')}` : act;
}

/** The phone card: `card.card_url` and `card.bundle_url` are the link's own URLs (not the bearer-only /v1 ones). */
export function renderLinkCardHtml(card: CardData, options: { act: string }): string {
  const e = escapeHtml;
  const product = card.product.name ? `${card.product.name}${card.product.version ? ` ${card.product.version}` : ''}` : 'Unnamed product';
  const receipts = card.receipts
    .map((r) => `<li><strong>${e(r.kind)}</strong> · ${e(r.issued_at)}<br><code>${e(r.id)}</code></li>`)
    .join('');
  const consent = card.consent ? `<dt>Approvals</dt><dd>${card.consent.approvals} of ${card.consent.k} needed (${e(card.consent.state)})</dd>` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex,nofollow">
<title>Receipt — ${e(VERDICT_WORDS[card.verdict])}</title><style>${STYLE}</style></head><body>
<h1>${e(kindInWords(options.act, card.intent))}</h1>
<p class="verdict ${e(card.verdict)}" role="status">${e(VERDICT_WORDS[card.verdict])}</p>
<dl>
<dt>Product</dt><dd>${e(product)}</dd>
<dt>State</dt><dd>${e(card.state)}${card.decision ? ` (${e(card.decision)})` : ''}</dd>
<dt>Decided</dt><dd>${e(card.created_at)}${card.updated_at !== card.created_at ? `, last change ${e(card.updated_at)}` : ''}</dd>
${consent}
<dt>Capsule</dt><dd><code>${e(card.cid)}</code></dd>
</dl>
<h2>Signed receipts (${card.receipts.length})</h2>
<ol>${receipts}</ol>
<a class="button" href="${e(card.bundle_url)}" download rel="noreferrer">Download the offline bundle</a>
<p class="small">A ZIP with this capsule, its signed receipts and the device's public key. It verifies with no network: <code>tessera bundle verify FILE</code>.</p>
<div class="qr">${qrSvg(card.card_url, { label: 'QR code of this receipt’s link', pixelsPerModule: 4 })}</div>
<p class="small">Anyone with this link can read this receipt. Keep it to yourself; staff can revoke it.</p>
</body></html>`;
}
