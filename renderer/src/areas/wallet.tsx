/**
 * The traveller's wallet in the Journey Guide (issue 14 point 7; seed 000 §4.1 discovery → §4.2 preflight → §4.3
 * purchase): "Passes & tickets" beside the dialogue.
 *
 * - Your passes: the entitlements of this traveller's paid sessions (`GET /api/sessions?user=`), each a large QR
 *   code (./wallet-pass.tsx). The traveller is the dialogue session shown: "New traveller" starts a new one, so the
 *   next person never sees the previous person's passes.
 * - Buy: the catalogue (`GET /api/catalogue`) as cards — title, description, price, what it gives in words, venues,
 *   terms to expand. Choosing one starts a product session (`POST /api/sessions`), whose preflight answer is shown
 *   in words (each reason's message); "Pay … from the kiosk balance" (`POST /api/sessions/:id/pay`, balance from
 *   `GET /api/wallets/main`) issues the pass and shows it. Every refusal is said in words (./wallet-model.ts).
 *
 * Data shapes and their adapters: ./wallet-model.ts. Styles: styles.css "Wallet".
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TesseraClient } from '../../../main/common/api.js';
import type { CatalogueEntry, ProductSessionView, WalletView } from './wallet-model.js';
import { PassCard } from './wallet-pass.js';
import { catalogueFromAnswer, formatMoney, heldPasses, kindWords, pick, problemWords, productTitle, travellerLanguage, venueNames } from './wallet-model.js';

/** The kiosk's own balance: what a traveller pays from here (ISSUE14-PLAN.md, H3's internal provider). */
export const KIOSK_WALLET = 'main';
/** How often the open wallet reads the traveller's passes again. */
const REFRESH_MS = 15_000;

type Purchase =
  | { step: 'checking'; entry: CatalogueEntry }
  | { step: 'checked'; entry: CatalogueEntry; session: ProductSessionView }
  | { step: 'paying'; entry: CatalogueEntry; session: ProductSessionView }
  | { step: 'paid'; entry: CatalogueEntry; session: ProductSessionView };

const balanceIn = (wallet: WalletView | null, currency: string) => wallet?.balances.find((b) => b.currency === currency)?.amount;

export function WalletPanel(props: { client: TesseraClient; traveller: string | null }) {
  const { client, traveller } = props;
  const lang = travellerLanguage();
  const [catalogue, setCatalogue] = useState<CatalogueEntry[] | null>(null);
  const [catalogueProblem, setCatalogueProblem] = useState<string | null>(null);
  const [sessions, setSessions] = useState<ProductSessionView[]>([]);
  const [wallet, setWallet] = useState<WalletView | null>(null);
  const [purchase, setPurchase] = useState<Purchase | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement | null>(null);
  // Answers for a traveller who has since gone are dropped.
  const shown = useRef(traveller);
  shown.current = traveller;

  const loadSessions = async (who: string | null) => {
    if (!who) return setSessions([]);
    try {
      const list = await client.products.sessions({ user: who, limit: 50 });
      if (shown.current === who) setSessions(list);
    } catch (err) {
      if (shown.current === who) setProblem(`Your passes cannot be shown: ${problemWords(err)}`);
    }
  };
  const loadWallet = () =>
    client.products.wallet(KIOSK_WALLET).then(
      (w) => (setWallet(w), w),
      () => (setWallet(null), null),
    );

  useEffect(() => {
    let alive = true;
    client.products.catalogue().then(catalogueFromAnswer).then(
      (list) => alive && (setCatalogue(list), setCatalogueProblem(null)),
      (err: unknown) => alive && setCatalogueProblem(problemWords(err)),
    );
    void loadWallet();
    return () => {
      alive = false;
    };
  }, [client]);

  // A new traveller: their own (empty) wallet, nothing half-bought left on screen. While the wallet is open the passes
  // are read again now and then: a redemption at a venue, an expiry or a revocation changes what is left (a
  // traveller's credential may not watch the entitlement events, so the wallet asks).
  useEffect(() => {
    setPurchase(null);
    setProblem(null);
    setSessions([]);
    void loadSessions(traveller);
    const timer = setInterval(() => void loadSessions(traveller), REFRESH_MS);
    return () => clearInterval(timer);
  }, [client, traveller]);

  const choose = async (entry: CatalogueEntry) => {
    if (!traveller) return;
    setProblem(null);
    setPurchase({ step: 'checking', entry });
    void loadWallet();
    try {
      const session = await client.products.createSession({ product: entry.ref, user_id: traveller, wallet_id: KIOSK_WALLET, idempotency_key: `ui-${traveller}-${entry.ref}-${Date.now()}` });
      if (shown.current === traveller) setPurchase({ step: 'checked', entry, session });
    } catch (err) {
      setPurchase(null);
      setProblem(problemWords(err));
    }
    heading.current?.focus();
  };

  const pay = async (entry: CatalogueEntry, session: ProductSessionView) => {
    setProblem(null);
    setPurchase({ step: 'paying', entry, session });
    try {
      const paid = await client.products.pay(session.product_runtime_session_id);
      if (shown.current !== traveller) return;
      setPurchase({ step: 'paid', entry, session: paid });
      setSessions((list) => [paid, ...list.filter((s) => s.product_runtime_session_id !== paid.product_runtime_session_id)]);
      void loadWallet();
      void loadSessions(traveller);
    } catch (err) {
      const w = await loadWallet();
      const balance = balanceIn(w, session.price.currency);
      setPurchase({ step: 'checked', entry, session });
      setProblem(problemWords(err, { ...(balance !== undefined ? { balance: formatMoney(balance, session.price.currency, lang) } : {}), price: formatMoney(session.price.amount, session.price.currency, lang) }));
    }
  };

  const back = () => {
    const p = purchase;
    setPurchase(null);
    setProblem(null);
    // A checked but unpaid session is left to the runtime's expiry; cancelling it says the traveller changed their mind.
    if (p && p.step === 'checked' && p.session.state !== 'active') void client.products.cancel(p.session.product_runtime_session_id, 'traveller went back').catch(() => undefined);
  };

  const titleOf = (s: ProductSessionView, fallback?: string) => s.product.title ?? catalogue?.find((c) => c.cid === s.product.cid || c.ref === s.product.ref)?.def.profiles.ui?.title?.['en'] ?? fallback ?? s.product.id;
  const held = heldPasses(sessions);

  if (!traveller) return <p class="hint">Starting…</p>;

  return (
    <div class="wallet" data-testid="wallet" data-traveller={traveller}>
      {problem && !purchase && <Problem text={problem} />}
      {purchase ? (
        <PurchaseView
          purchase={purchase}
          wallet={wallet}
          lang={lang}
          heading={heading}
          client={client}
          titleOf={titleOf}
          problem={problem}
          onPay={(entry, session) => void pay(entry, session)}
          onBack={back}
        />
      ) : (
        <>
          <section class="wallet-section" aria-labelledby="wallet-held-title">
            <h3 id="wallet-held-title">Your passes and tickets</h3>
            {held.length === 0 ? (
              <p class="hint" data-testid="wallet-none">You hold no passes yet. Choose one below.</p>
            ) : (
              <div class="wallet-passes">
                {held.map(({ session, entitlement }) => (
                  <PassCard key={entitlement.serial} client={client} session={session} entitlement={entitlement} title={entitlement.title ?? titleOf(session)} />
                ))}
              </div>
            )}
          </section>
          <section class="wallet-section" aria-labelledby="wallet-buy-title">
            <h3 id="wallet-buy-title">Buy a pass or ticket</h3>
            {catalogueProblem && (
              <p class="wallet-problem" role="alert" data-testid="wallet-catalogue-problem">
                The passes for sale cannot be shown: {catalogueProblem}
              </p>
            )}
            {catalogue === null && !catalogueProblem && <p class="hint">Loading the passes for sale…</p>}
            {catalogue?.length === 0 && <p class="hint">Nothing is for sale on this kiosk at the moment.</p>}
            <ul class="wallet-catalogue">
              {catalogue?.map((entry) => (
                <ProductCard key={entry.ref} entry={entry} lang={lang} onChoose={() => void choose(entry)} />
              ))}
            </ul>
          </section>
        </>
      )}
    </div>
  );
}

function Problem(props: { text: string }) {
  return (
    <p class="wallet-problem" role="alert" data-testid="wallet-problem">
      {props.text}
    </p>
  );
}

function ProductCard(props: { entry: CatalogueEntry; lang: string; onChoose: () => void }) {
  const { def } = props.entry;
  const title = productTitle(def, props.lang);
  const description = pick(def.profiles.ui?.description, props.lang);
  const terms = pick(def.profiles.ui?.terms, props.lang);
  const venues = venueNames(def);
  return (
    <li class="wallet-product" data-testid="wallet-product" data-ref={props.entry.ref}>
      <div class="wallet-product-head">
        <h4>{title}</h4>
        <span class="wallet-price" data-testid="wallet-price">{formatMoney(def.profiles.pricing.price, def.profiles.pricing.currency, props.lang)}</span>
      </div>
      <p class="wallet-kind" data-testid="wallet-kind">{kindWords(def, props.lang)}</p>
      {description && <p class="wallet-description">{description}</p>}
      {venues.length > 0 && (
        <p class="wallet-venues" data-testid="wallet-venues">
          <span class="hint">Accepted at: </span>
          {venues.join(', ')}
        </p>
      )}
      {terms && (
        <details class="wallet-terms">
          <summary>Terms</summary>
          <p>{terms}</p>
        </details>
      )}
      <button type="button" data-testid="wallet-choose" onClick={props.onChoose} aria-label={`Choose ${title}`}>
        Choose
      </button>
    </li>
  );
}

function PurchaseView(props: {
  purchase: Purchase;
  wallet: WalletView | null;
  lang: string;
  heading: { current: HTMLHeadingElement | null };
  client: TesseraClient;
  titleOf: (s: ProductSessionView, fallback?: string) => string;
  problem: string | null;
  onPay: (entry: CatalogueEntry, session: ProductSessionView) => void;
  onBack: () => void;
}) {
  const { purchase, lang } = props;
  const title = productTitle(purchase.entry.def, lang);
  const session = purchase.step === 'checking' ? null : purchase.session;
  const price = session?.price ?? { amount: purchase.entry.def.profiles.pricing.price, currency: purchase.entry.def.profiles.pricing.currency };
  const priceText = formatMoney(price.amount, price.currency, lang);
  const balance = balanceIn(props.wallet, price.currency);
  const ok = session?.preflight?.verdict === 'ACK' || session?.state === 'preflight_ok';
  const failed = session !== null && !ok && purchase.step !== 'paid';
  const reasons = session?.preflight?.reasons ?? [];
  return (
    <section class="wallet-section wallet-purchase" aria-labelledby="wallet-purchase-title" data-testid="wallet-purchase">
      <h3 id="wallet-purchase-title" tabIndex={-1} ref={props.heading}>
        {purchase.step === 'paid' ? `Your ${title}` : title}
      </h3>
      {purchase.step === 'checking' && <p class="hint" data-testid="wallet-checking">Checking that this can be sold to you…</p>}
      {session && purchase.step !== 'paid' && (
        <div class={`wallet-preflight ${failed ? 'bad' : 'good'}`} data-testid="wallet-preflight" data-verdict={ok ? 'ACK' : 'NACK'}>
          <p class="wallet-verdict">
            <span aria-hidden="true">{failed ? '✕ ' : '✓ '}</span>
            {failed ? 'This cannot be bought right now:' : 'All checks passed: this can be sold to you.'}
          </p>
          {reasons.length > 0 && (
            <ul class="wallet-reasons" data-testid="wallet-reasons">
              {reasons.map((r) => (
                <li key={r.code}>{r.message}</li>
              ))}
            </ul>
          )}
          {failed && reasons.length === 0 && <p>{session.reason?.message ?? 'The kiosk could not check this purchase; please ask staff.'}</p>}
        </div>
      )}
      {session && ok && purchase.step !== 'paid' && (
        <div class="wallet-pay">
          <p data-testid="wallet-balance">{balance === undefined ? 'Paid from the kiosk balance.' : `Kiosk balance: ${formatMoney(balance, price.currency, lang)}`}</p>
          <button type="button" class="wallet-pay-button" data-testid="wallet-pay" disabled={purchase.step === 'paying'} onClick={() => props.onPay(purchase.entry, session)}>
            {purchase.step === 'paying' ? 'Paying…' : `Pay ${priceText} from the kiosk balance`}
          </button>
        </div>
      )}
      {props.problem && <Problem text={props.problem} />}
      {purchase.step === 'paid' && (
        <>
          <p class="ok-text" data-testid="wallet-paid">
            Paid {priceText}. Here is your pass — it is also kept under “Your passes and tickets”.
          </p>
          <div class="wallet-passes">
            {purchase.session.entitlements.map((e) => (
              <PassCard key={e.serial} client={props.client} session={purchase.session} entitlement={e} title={e.title ?? props.titleOf(purchase.session, title)} />
            ))}
          </div>
          {purchase.session.entitlements.length === 0 && <p class="hint">Your pass is being issued; it appears under “Your passes and tickets”.</p>}
        </>
      )}
      <div class="wallet-actions">
        <button type="button" class="secondary" data-testid="wallet-back" onClick={props.onBack}>
          {purchase.step === 'paid' ? 'Done' : 'Back to the list'}
        </button>
      </div>
    </section>
  );
}
