/**
 * Verify: check an offline bundle in the browser with no network (issue 5 §6). The file is read locally and
 * verified by common/bundle.ts — the same code as `tessera bundle verify` and `POST /v1/verify` — with
 * @noble/ed25519, so the verdict and the place named are the same everywhere and nothing leaves the page.
 */
import { useState } from 'preact/hooks';
import { verifyBundle } from '../../../main/common/bundle.js';
import type { BundleVerdict } from '../../../main/common/bundle.js';
import { qrSvg } from '../../../main/common/qr.js';

interface Result {
  name: string;
  bytes: number;
  ms: number;
  verdict: BundleVerdict;
}

const MARK = { pass: '✓', fail: '✗', skipped: '·' } as const;

export function VerifyArea() {
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);

  const check = async (file: File | undefined) => {
    if (!file) return;
    setBusy(true);
    const bytes = new Uint8Array(await file.arrayBuffer());
    const t0 = performance.now();
    const verdict = verifyBundle(bytes);
    setResult({ name: file.name, bytes: bytes.length, ms: performance.now() - t0, verdict });
    setBusy(false);
  };

  return (
    <section class="verify">
      <div class="toolbar">
        <h2>Verify a bundle</h2>
      </div>
      <p class="hint">Checks an offline bundle (.zip) right here, with no network: hashes, keys, signatures, the receipt chain, manifests and the device-log proofs.</p>
      <label
        class={`verify-drop${dragging ? ' dragging' : ''}`}
        data-testid="verify-drop"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void check(e.dataTransfer?.files[0]);
        }}
      >
        <span>Drop a bundle here, or choose a file</span>
        <input type="file" accept=".zip,application/zip" data-testid="verify-file" onChange={(e) => void check((e.currentTarget as HTMLInputElement).files?.[0])} />
      </label>
      {busy && <p data-testid="verify-busy">Verifying…</p>}
      {result && <VerdictView result={result} />}
    </section>
  );
}

/** The card URL's QR code (common/qr.ts: an SVG of numbers and an escaped label, nothing from the bundle as markup). */
function CardQr({ url }: { url: string }) {
  let svg: string;
  try {
    svg = qrSvg(url, { label: `QR code of ${url}`, pixelsPerModule: 3 });
  } catch {
    return null;
  }
  return <div class="verify-qr" data-testid="verify-qr" dangerouslySetInnerHTML={{ __html: svg }} />;
}

/** What a verified bundle's decision means for the person holding it. */
function meaning(decision: string | null): string {
  if (decision === 'ACK') return 'Signed by the device and intact. The request was allowed (ACK).';
  if (decision === 'NACK') return 'Signed by the device and intact. The request was refused (NACK): this is the record of a refusal.';
  if (decision === 'ASK') return 'Signed by the device and intact. The request was still waiting for approval (ASK) when this bundle was made.';
  return 'Signed by the device and intact.';
}

function VerdictView({ result }: { result: Result }) {
  const v = result.verdict;
  return (
    <div class="verify-result" data-testid="verify-result" data-ok={String(v.ok)}>
      <p class={`verify-verdict ${v.ok ? 'ok' : 'bad'}`} data-testid="verify-verdict">
        {v.ok ? 'Authentic' : 'INVALID'}
      </p>
      {/* "Authentic" is about the bundle, not the request: say what was decided next to it, in words. */}
      {v.ok && <p class="hint" data-testid="verify-meaning">{meaning(v.decision)}</p>}
      <p class="hint">
        {result.name} · {result.bytes} bytes · verified in {result.ms.toFixed(0)} ms, offline
      </p>
      {v.error && (
        <p class="verify-error" data-testid="verify-error" data-code={v.error.code} data-where={v.error.where}>
          <code>{v.error.code}</code> in <code>{v.error.where}</code>: {v.error.message}
        </p>
      )}
      <dl class="verify-facts">
        <dt>Capsule</dt>
        <dd data-testid="verify-capsule">{v.capsule ?? '—'}</dd>
        <dt>Decision</dt>
        <dd data-testid="verify-decision">{v.decision ?? '—'}</dd>
        <dt>Device key</dt>
        <dd>{v.device ?? '—'}</dd>
        <dt>Receipts</dt>
        <dd>{v.ok ? v.receipts : '—'}</dd>
        {v.ok && v.card_url && (
          <>
            <dt>Card</dt>
            <dd data-testid="verify-card">{v.card_url}</dd>
          </>
        )}
      </dl>
      {v.ok && v.card_url && <CardQr url={v.card_url} />}
      <ol class="verify-checks" data-testid="verify-checks">
        {v.checks.map((c) => (
          <li key={c.id} class={`check-${c.status}`} data-check={c.id} data-status={c.status}>
            <span aria-hidden="true">{MARK[c.status]}</span> {c.label}
            {c.status !== 'skipped' && <div class="hint">{c.detail}</div>}
          </li>
        ))}
      </ol>
    </div>
  );
}
