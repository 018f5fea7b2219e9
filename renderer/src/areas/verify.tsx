/**
 * Verify: check an offline bundle in the browser with no network (issue 5 §6). The file is read locally and
 * verified by common/bundle.ts — the same code as `tessera bundle verify` and `POST /v1/verify` — with
 * @noble/ed25519, so the verdict and the place named are the same everywhere and nothing leaves the page.
 *
 * A bundle is whole on its own; who signed it is a second question (issue 13 §6). The page compares the signer
 * with this device's key (`client.device()`, read once when the page opens, before any file is taken) or with a
 * key id the user pins, as `tessera bundle verify --device KEYID` does: only a match is "Authentic"; an intact
 * bundle of another device, or one whose signer could not be compared, is not a pass. The pin lives as long as the
 * page (never stored): on a shared kiosk, the next person must not inherit someone else's expected signer.
 */
import { useEffect, useState } from 'preact/hooks';
import type { TesseraClient } from '../../../main/common/api.js';
import { verifyBundle } from '../../../main/common/bundle.js';
import type { BundleVerdict } from '../../../main/common/bundle.js';
import { qrSvg } from '../../../main/common/qr.js';

interface Result {
  name: string;
  bytes: number;
  ms: number;
  verdict: BundleVerdict;
}

/** This device's key id as the page learned it. */
type OwnKey = { state: 'loading' } | { state: 'known'; keyid: string } | { state: 'unknown'; reason: string };

/** Who the signer was compared with, and what came of it. */
type SignerCheck =
  | { kind: 'this-device'; expected: string }
  | { kind: 'pinned'; expected: string }
  | { kind: 'other'; expected: string; against: 'this device' | 'the pinned key' }
  | { kind: 'unchecked'; reason: string };

const KEYID = /^b3:[0-9a-f]{64}$/;
const MARK = { pass: '✓', fail: '✗', skipped: '·' } as const;

/** The signer of an intact bundle against the pinned key if there is one, else against this device's key. */
function checkSigner(v: BundleVerdict, own: OwnKey, pinned: string | null): SignerCheck {
  const expected = pinned ?? (own.state === 'known' ? own.keyid : null);
  if (expected === null) return { kind: 'unchecked', reason: own.state === 'unknown' ? own.reason : "this device's key is still being read" };
  if (v.device === expected) return pinned === null ? { kind: 'this-device', expected } : { kind: 'pinned', expected };
  return { kind: 'other', expected, against: pinned === null ? 'this device' : 'the pinned key' };
}

export function VerifyArea(props: { client?: TesseraClient }) {
  const { client } = props;
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [own, setOwn] = useState<OwnKey>(client ? { state: 'loading' } : { state: 'unknown', reason: 'this page has no link to the runtime' });
  const [pinned, setPinned] = useState<string | null>(null);

  useEffect(() => {
    if (!client) return;
    let live = true;
    client.device().then(
      (d) => live && setOwn({ state: 'known', keyid: d.keyid }),
      (err: unknown) => live && setOwn({ state: 'unknown', reason: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      live = false;
    };
  }, [client]);

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
      <p class="hint">Checks an offline bundle (.zip) right here, with no network: hashes, keys, signatures, the receipt chain, manifests and the device-log proofs, and whether this device signed it.</p>
      <SignerPanel own={own} pinned={pinned} onPin={setPinned} />
      {/* Files are taken once this device's key is settled, so that no verdict is shown before it can be compared
          and no request is made after a file is chosen. */}
      {own.state === 'loading' ? (
        <p class="hint" data-testid="verify-own-loading">Reading this device's key…</p>
      ) : (
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
      )}
      {busy && <p data-testid="verify-busy">Verifying…</p>}
      {result && <VerdictView result={result} signer={result.verdict.ok ? checkSigner(result.verdict, own, pinned) : null} />}
    </section>
  );
}

/** This device's key, and a key id the user may pin to compare the signer with instead. */
function SignerPanel(props: { own: OwnKey; pinned: string | null; onPin: (keyid: string | null) => void }) {
  const { own, pinned, onPin } = props;
  const [text, setText] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const pin = (e: Event) => {
    e.preventDefault();
    const keyid = text.trim().toLowerCase();
    if (!KEYID.test(keyid)) {
      setProblem('A key id is b3: followed by 64 hex digits, as a bundle shows it under "Device key".');
      return;
    }
    setProblem(null);
    setText('');
    onPin(keyid);
  };
  return (
    <div class="verify-signer">
      <p class="hint">
        This device's key:{' '}
        {own.state === 'known' ? <code data-testid="verify-own-key">{own.keyid}</code> : own.state === 'loading' ? '…' : <span data-testid="verify-own-unknown">unknown ({own.reason})</span>}
      </p>
      {pinned !== null ? (
        <p class="hint" data-testid="verify-pinned">
          Signers are compared with the pinned key <code>{pinned}</code>, not this device's, until you leave this page.{' '}
          <button type="button" data-testid="verify-unpin" onClick={() => onPin(null)}>
            Compare with this device again
          </button>
        </p>
      ) : (
        <form class="inline" onSubmit={pin}>
          <label for="verify-pin-input">Expect another device's key</label>
          <input id="verify-pin-input" class="wide" data-testid="verify-pin-input" autocomplete="off" spellcheck={false} placeholder="b3:…" value={text} onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} />
          <button type="submit" data-testid="verify-pin">Pin</button>
        </form>
      )}
      {problem && (
        <p class="error" role="alert" data-testid="verify-pin-error">
          {problem}
        </p>
      )}
    </div>
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

/** What a verified bundle's decision means for the person holding it, once its signer is the one expected. */
function meaning(decision: string | null, signer: 'this device' | 'the pinned key'): string {
  const head = `Intact and signed by ${signer}.`;
  if (decision === 'ACK') return `${head} The request was allowed (ACK).`;
  if (decision === 'NACK') return `${head} The request was refused (NACK): this is the record of a refusal.`;
  if (decision === 'ASK') return `${head} The request was still waiting for approval (ASK) when this bundle was made.`;
  return head;
}

/** The headline, its colour, and whether it is a pass. */
function headline(v: BundleVerdict, signer: SignerCheck | null): { text: string; pass: boolean } {
  if (!v.ok || signer === null) return { text: 'INVALID', pass: false };
  switch (signer.kind) {
    case 'this-device':
      return { text: 'Authentic — signed by this device', pass: true };
    case 'pinned':
      return { text: 'Authentic — signed by the pinned key', pass: true };
    case 'other':
      return { text: 'Intact, but signed by another device', pass: false };
    case 'unchecked':
      return { text: 'Intact, but the signer was not checked', pass: false };
  }
}

/**
 * `data-ok` is the page's answer (a pass: intact and signed by the expected key); `data-intact` the bundle's own
 * verdict; `data-signer` what the signer was found to be.
 */
function VerdictView({ result, signer }: { result: Result; signer: SignerCheck | null }) {
  const v = result.verdict;
  const head = headline(v, signer);
  // Another signer is reported as `tessera bundle verify --device KEYID` reports it, code and place alike.
  const error =
    v.error ?? (signer?.kind === 'other' ? { code: 'KEY_UNKNOWN', where: 'keys/keys.json', message: `the receipts are signed by device ${String(v.device)}, not by the expected ${signer.expected}` } : undefined);
  return (
    <div class="verify-result" data-testid="verify-result" data-ok={String(head.pass)} data-intact={String(v.ok)} data-signer={signer?.kind ?? ''}>
      <p class={`verify-verdict ${head.pass ? 'ok' : 'bad'}`} data-testid="verify-verdict">
        {head.text}
      </p>
      {/* "Authentic" is about the bundle, not the request: say what was decided next to it, in words. */}
      {head.pass && signer && (signer.kind === 'this-device' || signer.kind === 'pinned') && (
        <p class="hint" data-testid="verify-meaning">
          {meaning(v.decision, signer.kind === 'this-device' ? 'this device' : 'the pinned key')}
        </p>
      )}
      {signer?.kind === 'other' && (
        <p class="hint" data-testid="verify-meaning">
          The bundle is whole, but its receipts are signed by key <code>{v.device}</code>, not by {signer.against} (<code>{signer.expected}</code>). It is no proof
          of what {signer.against === 'this device' ? 'this device' : 'that key\'s device'} decided. If you expected that other device, pin its key above.
        </p>
      )}
      {signer?.kind === 'unchecked' && (
        <p class="hint" data-testid="verify-meaning">
          The bundle is whole, but its signer <code>{v.device}</code> could not be compared with this device's key ({signer.reason}). Pin the key id you expect above to compare it.
        </p>
      )}
      <p class="hint">
        {result.name} · {result.bytes} bytes · verified in {result.ms.toFixed(0)} ms, offline
      </p>
      {error && (
        <p class="verify-error" data-testid="verify-error" data-code={error.code} data-where={error.where}>
          <code>{error.code}</code> in <code>{error.where}</code>: {error.message}
        </p>
      )}
      <dl class="verify-facts">
        <dt>Capsule</dt>
        <dd data-testid="verify-capsule">{v.capsule ?? '—'}</dd>
        <dt>Decision</dt>
        <dd data-testid="verify-decision">{v.decision ?? '—'}</dd>
        <dt>Signed by (device key)</dt>
        <dd data-testid="verify-device">{v.device ?? '—'}</dd>
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
