/**
 * The card of a capsule (seed 004 §2 "Card URL"): what `GET /v1/r/{cid}` shows, as JSON data and as a
 * self-contained HTML page (no script; its one style block is allowed by hash in {@link CARD_CSP}).
 */
import { createHash } from 'node:crypto';
import { qrSvg } from '../../common/qr.js';
import { ghost } from '../log/mask.js';
import type { JsonValue, ReceiptKind, Verdict } from '../../common/receipt.js';
import type { CapsuleState, ReceiptStore } from './store.js';

export interface CardReceipt {
  index: number;
  id: string;
  kind: ReceiptKind;
  prev: string | null;
  subject: string;
  issued_at: string;
  /** keyid of the signer (the device). */
  signer: string;
}

export interface CardData {
  cid: string;
  verdict: Verdict;
  state: CapsuleState;
  decision: string | null;
  product: { cid: string; name: string | null; version: string | null };
  tenant: string;
  aud: string;
  intent: JsonValue;
  /** Each policy's verdict, reason and evidence, from the first RESULT receipt. */
  evidence: JsonValue[];
  consent: { id: string; k: number; n: number; state: string; approvals: number; rejections: number } | null;
  receipts: CardReceipt[];
  keys: Array<{ keyid: string; role: string }>;
  card_url: string;
  bundle_url: string;
  created_at: string;
  updated_at: string;
}

/**
 * The card's data, or undefined for an unknown capsule. URLs are absolute (built by the caller). With `ghost`
 * (the product's `enrich` names it), the intent and the policies' evidence show PII fields (names, e-mails,
 * phones… log/mask.ts) as the cids of their values; the signed receipts, and so the bundle, keep them.
 */
export function cardData(store: ReceiptStore, cid: string, urls: { card_url: string; bundle_url: string }, options: { ghost?: boolean } = {}): CardData | undefined {
  const record = store.capsule(cid);
  if (!record) return undefined;
  const chain = store.chain(cid);
  // What was asked: an INTENT's intent, or the action of an agent's PROPOSAL (issue 17).
  const intent = chain.find((r) => r.payload.kind === 'INTENT' || r.payload.kind === 'PROPOSAL');
  const results = chain.filter((r) => r.payload.kind === 'RESULT');
  const first = results[0]?.payload.body as { policies?: JsonValue[] } | undefined;
  const last = results.at(-1)?.payload.body as { decision?: string } | undefined;
  const product = store.manifests(cid).find((m) => m.role === 'product');
  const consent = store.consentOf(cid);
  const project = <T>(value: T): T => (options.ghost ? ghost(value) : value);
  return {
    cid,
    verdict: record.verdict,
    state: record.state,
    decision: last?.decision ?? null,
    product: { cid: record.capsule.product, name: product?.name ?? null, version: product?.version ?? null },
    tenant: record.capsule.tenant,
    aud: record.capsule.aud,
    intent: project((intent?.payload.body[intent.payload.kind === 'PROPOSAL' ? 'action' : 'intent'] as JsonValue | undefined) ?? null),
    evidence: project(first?.policies ?? []),
    consent: consent
      ? {
          id: consent.id,
          k: consent.k,
          n: consent.approvers.length,
          state: consent.state,
          approvals: consent.votes.filter((v) => v.decision === 'approve').length,
          rejections: consent.votes.filter((v) => v.decision === 'reject').length,
        }
      : null,
    receipts: chain.map((r, index) => ({ index, id: r.id, kind: r.payload.kind, prev: r.payload.prev, subject: r.payload.subject, issued_at: r.payload.issued_at, signer: r.envelope.signatures[0]?.keyid ?? '' })),
    keys: store.publicKeys(cid).map((k) => ({ keyid: k.keyid, role: k.role })),
    ...urls,
    created_at: record.created_at,
    updated_at: record.updated_at,
  };
}

const STYLE = [
  'body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1b1b}',
  'h1{font-size:1.4rem}code{font-size:.85em;word-break:break-all}',
  '.badge{display:inline-block;padding:.2rem .7rem;border-radius:1rem;color:#fff;font-weight:600}',
  '.ACK{background:#1a7f37}.NACK{background:#c62828}.ASK{background:#b26a00}',
  'table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left;vertical-align:top}',
  'pre{background:#f6f6f6;padding:.5rem;overflow:auto;max-height:14rem}.qr{float:right;margin-left:1rem}',
].join('');

/** The card page's Content-Security-Policy: nothing but its own inline style (by hash) and inline images. */
export const CARD_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** A cid shortened for a table cell (`b3:1bcd60f0c536…e696f5`); the full value in its title and in the JSON card. */
const short = (cid: string): string => `<code title="${escapeHtml(cid)}">${escapeHtml(cid.length > 24 ? `${cid.slice(0, 15)}…${cid.slice(-6)}` : cid)}</code>`;

/** The card as an HTML page: decision, evidence, the chain (signer and time of each receipt), bundle link, QR. */
export function renderCardHtml(card: CardData): string {
  const e = escapeHtml;
  const rows = card.receipts
    .map((r) => `<tr><td>${r.index}</td><td>${e(r.kind)}</td><td>${short(r.id)}</td><td>${short(r.signer)}</td><td>${e(r.issued_at)}</td><td>${e(r.subject.length > 40 ? `${r.subject.slice(0, 40)}…` : r.subject)}</td></tr>`)
    .join('');
  const evidence = card.evidence
    .map((p) => {
      const policy = p as { plugin?: string; version?: string; verdict?: string; reason?: string; evidence?: JsonValue };
      return `<tr><td>${e(`${policy.plugin ?? '?'}@${policy.version ?? '?'}`)}</td><td><span class="badge ${e(policy.verdict ?? '')}">${e(policy.verdict ?? '')}</span></td><td>${e(policy.reason ?? '')}</td><td><pre>${e(JSON.stringify(policy.evidence ?? null, null, 2))}</pre></td></tr>`;
    })
    .join('');
  const consent = card.consent
    ? `<p>Consent <code>${e(card.consent.id)}</code>: ${e(card.consent.state)}, ${card.consent.approvals} of ${card.consent.k} approvals needed (${card.consent.n} approvers), ${card.consent.rejections} rejections.</p>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Tessera receipt ${e(card.cid)}</title><style>${STYLE}</style></head><body>
<div class="qr">${qrSvg(card.card_url, { label: `QR code of ${card.card_url}`, pixelsPerModule: 3 })}</div>
<h1>Decision <span class="badge ${e(card.verdict)}">${e(card.verdict)}</span></h1>
<p>Capsule <code>${e(card.cid)}</code><br>State: ${e(card.state)}${card.decision ? ` · ${e(card.decision)}` : ''}<br>
Product ${e(card.product.name ?? '?')}@${e(card.product.version ?? '?')} <code>${e(card.product.cid)}</code><br>
Tenant ${e(card.tenant)} · audience ${e(card.aud)}<br>Intent: <code>${e(JSON.stringify(card.intent))}</code></p>
${consent}
<h2>Evidence</h2><table><thead><tr><th>policy</th><th>verdict</th><th>reason</th><th>evidence</th></tr></thead><tbody>${evidence}</tbody></table>
<h2>Receipt chain</h2><table><thead><tr><th>#</th><th>kind</th><th>id</th><th>signer (keyid)</th><th>issued at</th><th>subject</th></tr></thead><tbody>${rows}</tbody></table>
<p><a href="${e(card.bundle_url)}" download>Download the offline bundle</a> (ZIP: capsule, signed receipts, public keys, manifests) — it verifies with no network.</p>
</body></html>`;
}
