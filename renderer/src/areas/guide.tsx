/**
 * The Journey Guide (issue 15 point 4 and 7; seed 000 §4.4 journey setup, §4.5 in-journey runtime, §7.1 degraded
 * routing, §8 "the guide proposes, the traveller decides"): the "Guide" tab beside the conversation and the wallet.
 *
 * - The traveller is the dialogue session shown (as in ./wallet.tsx): their product sessions (`GET /api/sessions?user=`)
 *   and journeys (`GET /api/journeys?user=`). A paid session whose product names a journey and has none yet gets a
 *   large "Start today's journey" (`POST /api/journeys {session}`).
 * - The journey: the next-step card (`GET …/next`: the runtime's sentence, the route, today's hours, "I'm here /
 *   Done" and "Skip" with `expected_version` — JOURNEY_CONFLICT reloads and says another screen changed it — and the
 *   wallet's QR code when the node needs an entitlement), the agent's proposals as cards (Accept / Not now), the
 *   itinerary in order (current highlighted, done and skipped marked, today's opening hours), and the offline map
 *   (./guide-map.tsx). When routing is degraded a plain banner says so; the city package's age is always shown.
 * - The guide agent (issue 17 point 8; ./guide-agent.tsx): when the runtime offers an enabled `journey-guide` agent,
 *   "Ask the guide" below the next step — the traveller's questions go to the journey's agent session, the answer
 *   streams in, its proposals join the suggestion cards (one card style: ./guide-proposal.tsx), and a rule-based
 *   agent (no model, or the model down) says so in plain words.
 * - Refresh: a traveller's credential cannot subscribe to journey events, so the guide reads the journey every 2 s
 *   while the tab is shown and the page visible, and right after every action.
 * - Words: English, Russian, Ukrainian (./guide-model.ts), in the language the wallet picks; the runtime's own texts
 *   (node titles, the sentence, proposals) are asked for in that language (`language`).
 *
 * Styles: styles.css "Journey Guide: the guide tab" — 64 px targets, large type on a portrait kiosk.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TesseraClient } from '../../../main/common/api.js';
import type { JourneyNodeView, JourneyView, NextStep, Proposal, RoutePlan, RoutingStatus } from '../../../main/common/journeys.js';
import type { CityMap } from '../../../main/common/journeys-api.js';
import type { CatalogueProduct, ProductSessionView } from '../../../main/common/products-api.js';
import { GuideAgentPanel, useGuideAgent } from './guide-agent.js';
import type { GuideAgent } from './guide-agent.js';
import { GuideMap } from './guide-map.js';
import { ProposalCard } from './guide-proposal.js';
import type { GuideTexts } from './guide-model.js';
import { degradedWords, guideLanguage, guideProblemWords, hoursWords, isConflict, nodeStatus, packageAgeWords, passForNode, pickJourney, routeWords, startableSessions, staticRouteOf, textsFor } from './guide-model.js';
import { rightsWords, travellerLanguage } from './wallet-model.js';
import { QrImage } from './wallet-pass.js';

/** How often the shown journey is read again (travellers cannot subscribe to journey events). */
export const GUIDE_REFRESH_MS = 2_000;

/** "Show the way to …": a route from where the traveller is to a place of the journey (`GET …/route?to=`). */
interface Way {
  node: string;
  name: string;
  plan: RoutePlan | null;
  /** The map found no way: `plan` is the document's static route (ROUTE_NOT_FOUND `details.static`). */
  fallback: boolean;
  problem: string | null;
}

interface Loaded {
  /** The traveller these answers are for. */
  traveller: string;
  journeys: JourneyView[];
  journey: JourneyView | null;
  next: NextStep | null;
  proposals: Proposal[];
  sessions: ProductSessionView[];
}

export function GuidePanel(props: { client: TesseraClient; traveller: string | null }) {
  const { client, traveller } = props;
  const lang = guideLanguage(travellerLanguage());
  const t = textsFor(lang);
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [catalogue, setCatalogue] = useState<CatalogueProduct[] | null>(null);
  const [city, setCity] = useState<RoutingStatus | null>(null);
  const [cityMap, setCityMap] = useState<CityMap | null>(null);
  // What went wrong: the traveller's last action (kept until the next action), and the last read (until a read succeeds).
  const [problem, setProblem] = useState<string | null>(null);
  const [readProblem, setReadProblem] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [way, setWay] = useState<Way | null>(null);
  // Sessions whose start the runtime refused for good (no journey document, not active): not offered again.
  const [refused, setRefused] = useState<ReadonlySet<string>>(new Set());
  // Answers for a traveller who has since gone are dropped; only the newest read lands.
  const shown = useRef(traveller);
  shown.current = traveller;
  const reads = useRef(0);
  const inFlight = useRef<Promise<void> | null>(null);

  /** Reads everything the screen shows for `who`, at once; a newer read started meanwhile wins. */
  const read = async (who: string) => {
    const mine = ++reads.current;
    try {
      const [journeys, sessions] = await Promise.all([client.journeys.list({ user: who }), client.products.sessions({ user: who, limit: 50 })]);
      const picked = pickJourney(journeys);
      let journey: JourneyView | null = null;
      let next: NextStep | null = null;
      let proposals: Proposal[] = [];
      if (picked) {
        const id = picked.journey_instance_id;
        [journey, next, proposals] = await Promise.all([
          client.journeys.get(id, lang),
          picked.state === 'started' ? client.journeys.next(id, lang) : Promise.resolve(null),
          client.journeys.proposals(id).catch(() => [] as Proposal[]),
        ]);
      }
      if (mine !== reads.current || shown.current !== who) return;
      setLoaded({ traveller: who, journeys, journey, next, proposals, sessions });
      setReadProblem(null);
    } catch (err) {
      if (mine !== reads.current || shown.current !== who) return;
      setReadProblem(guideProblemWords(err, lang));
    }
  };
  /** A read now, unless one is under way (the poll never stacks reads on a slow runtime). */
  const refresh = () => {
    if (!traveller || inFlight.current) return inFlight.current ?? Promise.resolve();
    inFlight.current = read(traveller).finally(() => {
      inFlight.current = null;
    });
    return inFlight.current;
  };

  useEffect(() => {
    let alive = true;
    client.products.catalogue().then(
      (list) => alive && setCatalogue(list),
      () => alive && setCatalogue(null),
    );
    return () => {
      alive = false;
    };
  }, [client]);

  // A new traveller: nothing of the previous one stays on screen. Then the journey is read every 2 s while the page
  // is visible, and at once when it becomes visible again.
  useEffect(() => {
    setLoaded(null);
    setProblem(null);
    setReadProblem(null);
    setNotice(null);
    setWay(null);
    setRefused(new Set());
    inFlight.current = null;
    if (!traveller) return;
    void refresh();
    const tick = () => {
      if (typeof document === 'undefined' || document.visibilityState === 'visible') void refresh();
    };
    const timer = setInterval(tick, GUIDE_REFRESH_MS);
    document.addEventListener('visibilitychange', tick);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', tick);
    };
  }, [client, traveller]);

  // The city package: its status when no journey carries it, and its map while routing runs on it (read again when
  // the journey's routing mode changes: an operator installed or removed a package).
  const routing = loaded?.journey?.routing ?? city;
  const mode = loaded?.journey?.routing.mode ?? null;
  useEffect(() => {
    let alive = true;
    client.journeys.city().then(
      (status) => {
        if (!alive) return;
        setCity(status);
        if (status.mode !== 'graph') return setCityMap(null);
        client.journeys.cityMap().then(
          (m) => alive && setCityMap(m),
          () => alive && setCityMap(null),
        );
      },
      () => alive && (setCity(null), setCityMap(null)),
    );
    return () => {
      alive = false;
    };
  }, [client, mode]);

  /** One action by the traveller: busy while it runs, a conflict reloads and says so, the journey is read right after. */
  const act = async (label: string, action: () => Promise<unknown>) => {
    setBusy(label);
    setProblem(null);
    setNotice(null);
    setWay(null);
    try {
      await action();
    } catch (err) {
      if (isConflict(err)) setNotice(t.conflict);
      else setProblem(guideProblemWords(err, lang));
    } finally {
      // The read after an action is the newest: a poll in flight may hold the journey as it was before.
      inFlight.current = null;
      if (traveller) await read(traveller);
      setBusy(null);
    }
  };

  /** The way to a node's place, from the current node's (the runtime plans it; the map then draws it). */
  const showWay = async (journeyId: string, node: JourneyNodeView) => {
    setWay({ node: node.id, name: node.place.name, plan: null, fallback: false, problem: null });
    try {
      const plan = await client.journeys.route(journeyId, node.place.id, lang);
      setWay((w) => (w?.node === node.id ? { ...w, plan } : w));
    } catch (err) {
      const plan = staticRouteOf(err);
      setWay((w) => (w?.node === node.id ? { ...w, plan, fallback: plan !== null, problem: plan ? null : guideProblemWords(err, lang) } : w));
    }
  };

  const data = loaded?.traveller === traveller ? loaded : null;
  const journey = data?.journey ?? null;
  const started = journey?.state === 'started' ? journey : null;
  const agent = useGuideAgent(client, started, lang);
  if (!traveller) return <p class="hint">{t.loading}</p>;
  const startable = data ? startableSessions(data.sessions, data.journeys, catalogue).filter((x) => !refused.has(x.product_runtime_session_id)) : [];
  const banner = degradedWords(routing, data?.next?.degraded === true, lang);
  const age = packageAgeWords(routing, lang);

  return (
    <div class="guide" data-testid="guide" data-traveller={traveller} data-lang={lang} data-journey={journey?.journey_instance_id ?? ''} data-version={journey?.version ?? ''}>
      {banner && (
        <p class="guide-banner" role="status" data-testid="guide-degraded">
          {banner}
        </p>
      )}
      {notice && (
        <p class="guide-notice" role="status" data-testid="guide-conflict">
          {notice}
        </p>
      )}
      {(problem ?? readProblem) && (
        <p class="guide-problem" role="alert" data-testid="guide-problem">
          {problem ?? readProblem}
        </p>
      )}
      {!data && !problem && !readProblem && <p class="hint" data-testid="guide-loading">{t.loading}</p>}
      {data && !started && startable.length > 0 && (
        <section class="guide-start" aria-label={t.start}>
          {startable.map((s) => (
            <div key={s.product_runtime_session_id} class="guide-start-card">
              <p class="guide-start-for">{t.startFor(s.product.title ?? s.product.id)}</p>
              <button
                type="button"
                class="guide-start-button"
                data-testid="guide-start"
                data-session={s.product_runtime_session_id}
                disabled={busy !== null}
                onClick={() =>
                  void act('start', () =>
                    client.journeys.start({ session: s.product_runtime_session_id, language: lang }).catch((err: unknown) => {
                      // A refusal that trying again cannot change (no journey document, session not active): stop offering it.
                      if (!(err as { retryable?: unknown }).retryable) setRefused((old) => new Set([...old, s.product_runtime_session_id]));
                      throw err;
                    }),
                  )
                }
              >
                {busy === 'start' ? t.starting : t.start}
              </button>
            </div>
          ))}
        </section>
      )}
      {data && !journey && startable.length === 0 && (
        <p class="guide-empty" data-testid="guide-no-journey">
          {t.noPass}
        </p>
      )}
      {journey && (
        <div class="guide-layout">
          <div class="guide-column">
            {started && way && <WayCard way={way} texts={t} lang={lang} onBack={() => setWay(null)} />}
            {started ? (
              <NextCard journey={started} next={data?.next ?? null} sessions={data?.sessions ?? []} texts={t} lang={lang} busy={busy} act={act} client={client} />
            ) : (
              <p class="guide-finished" data-testid="guide-finished" data-state={journey.state}>
                {journey.state === 'completed' ? t.finished : t.abandoned}
              </p>
            )}
            {started && agent.enabled && <GuideAgentPanel agent={agent} texts={t} />}
            {started && <Suggestions journey={started} proposals={data?.proposals ?? []} agent={agent} texts={t} busy={busy} act={act} client={client} />}
            <Itinerary journey={journey} texts={t} lang={lang} onWay={started ? (node) => void showWay(started.journey_instance_id, node) : null} />
          </div>
          <div class="guide-column guide-map-column">
            <GuideMap map={routing?.mode === 'graph' ? cityMap : null} nodes={journey.nodes} current={journey.current} route={(started && way?.plan) || (data?.next?.route ?? null)} texts={t} caption={age} />
          </div>
        </div>
      )}
      {!journey && age && (
        <p class="guide-age" data-testid="guide-package-age">
          {age}
        </p>
      )}
    </div>
  );
}

/**
 * "The guide suggests": the journeys module's proposals still shown and the guide agent's waiting for the traveller,
 * on one card style (./guide-proposal.tsx). Every decision reads the journey again (`act`); an agent's accepted
 * journey change is on screen at once.
 */
function Suggestions(props: {
  journey: JourneyView;
  proposals: Proposal[];
  agent: GuideAgent;
  texts: GuideTexts;
  busy: string | null;
  act: (label: string, action: () => Promise<unknown>) => Promise<void>;
  client: TesseraClient;
}) {
  const { journey, agent, texts: t, busy, act, client } = props;
  const shown = props.proposals.filter((p) => p.state === 'shown');
  if (shown.length === 0 && agent.cards.length === 0) return null;
  const id = journey.journey_instance_id;
  return (
    <section class="guide-proposals" aria-labelledby="guide-proposals-title">
      <h3 id="guide-proposals-title">{t.proposals}</h3>
      {agent.cards.map((p) => (
        <ProposalCard
          key={p.id}
          id={p.id}
          text={p.text}
          kind={p.action}
          source="agent"
          testids={{ card: 'guide-agent-proposal', accept: 'guide-agent-accept', reject: 'guide-agent-reject' }}
          texts={t}
          busy={busy}
          onAccept={() => void act(`accept:${p.id}`, () => agent.decide(p, 'approve'))}
          onReject={() => void act(`reject:${p.id}`, () => agent.decide(p, 'reject'))}
        />
      ))}
      {shown.map((p) => (
        <ProposalCard
          key={p.id}
          id={p.id}
          text={p.text}
          kind={p.kind}
          source="journey"
          testids={{ card: 'guide-proposal', accept: 'guide-accept', reject: 'guide-reject' }}
          texts={t}
          busy={busy}
          onAccept={() => void act(`accept:${p.id}`, () => client.journeys.accept(id, p.id))}
          onReject={() => void act(`reject:${p.id}`, () => client.journeys.reject(id, p.id))}
        />
      ))}
    </section>
  );
}

/** "The way to …" (a tap on the itinerary): in view as soon as it opens, above the next step. */
function WayCard(props: { way: Way; texts: GuideTexts; lang: ReturnType<typeof guideLanguage>; onBack: () => void }) {
  const { way, texts: t, lang } = props;
  const ref = useRef<HTMLElement | null>(null);
  useEffect(() => ref.current?.scrollIntoView({ block: 'start' }), [way.node]);
  return (
    <section ref={ref} class="guide-way" aria-labelledby="guide-way-title" data-testid="guide-way" data-node={way.node}>
      <h3 id="guide-way-title" class="guide-next-label">
        {t.wayHeading(way.name)}
      </h3>
      {way.fallback && <p class="guide-needs">{t.noWay}</p>}
      {way.plan && (
        <>
          <p class="guide-way-text" data-testid="guide-way-text">
            {way.plan.text}
          </p>
          <p class="guide-route-summary">{routeWords(way.plan, lang)?.summary}</p>
        </>
      )}
      {!way.plan && !way.problem && <p class="hint">{t.working}</p>}
      {way.problem && (
        <p class="guide-problem" role="alert">
          {way.problem}
        </p>
      )}
      <div class="guide-actions">
        <button type="button" class="secondary" data-testid="guide-way-back" onClick={props.onBack}>
          {t.backToNext}
        </button>
      </div>
    </section>
  );
}

function NextCard(props: {
  journey: JourneyView;
  next: NextStep | null;
  sessions: ProductSessionView[];
  texts: GuideTexts;
  lang: ReturnType<typeof guideLanguage>;
  busy: string | null;
  act: (label: string, action: () => Promise<unknown>) => Promise<void>;
  client: TesseraClient;
}) {
  const { journey, next, texts: t, lang, busy, act, client } = props;
  // The node the buttons act on: the one the next step names (the runtime's), else the journey's current node.
  const nodeId = next?.node?.id ?? journey.current;
  const node: JourneyNodeView | null = journey.nodes.find((n) => n.id === nodeId) ?? next?.node ?? null;
  const pass = passForNode(node, props.sessions);
  const route = routeWords(next?.route, lang);
  const hours = node ? hoursWords(node, lang) : null;
  const id = journey.journey_instance_id;
  const expected = { expected_version: journey.version };
  return (
    <section class="guide-next" aria-labelledby="guide-next-title" data-testid="guide-next" data-node={nodeId ?? ''}>
      <h3 id="guide-next-title" class="guide-next-label">
        {t.next}
        {node ? `: ${node.place.name}` : ''}
      </h3>
      <p class="guide-next-text" data-testid="guide-next-text" aria-live="polite">
        {next?.text ?? t.loading}
      </p>
      {route && (
        <div class="guide-route" data-testid="guide-route" data-source={next?.route?.source ?? ''}>
          <p class="guide-route-summary">{route.summary}</p>
          {route.legs.length > 1 && (
            <ol class="guide-legs">
              {route.legs.map((leg, i) => (
                <li key={i}>{leg}</li>
              ))}
            </ol>
          )}
        </div>
      )}
      {hours && (
        <p class="guide-hours" data-testid="guide-next-hours">
          {hours}
        </p>
      )}
      {node && (
        <div class="guide-actions">
          <button type="button" class="guide-done" data-testid="guide-done" disabled={busy !== null} onClick={() => void act('done', () => client.journeys.complete(id, node.id, expected))}>
            {busy === 'done' ? t.working : t.done}
          </button>
          <button type="button" class="secondary guide-skip" data-testid="guide-skip" disabled={busy !== null} onClick={() => void act('skip', () => client.journeys.skip(id, node.id, expected))}>
            {busy === 'skip' ? t.working : t.skip}
          </button>
        </div>
      )}
      {node?.needs && pass && (
        <div class="guide-pass" data-testid="guide-pass" data-serial={pass.serial}>
          <QrImage text={pass.code} label={pass.title ?? node.place.name} alphanumeric testid="guide-pass-qr" />
          <div class="guide-pass-facts">
            {pass.title && <p class="guide-pass-title">{pass.title}</p>}
            {pass.entitlement && <p class="hint">{rightsWords(pass.entitlement, lang)}</p>}
            <p>{t.showCode}</p>
          </div>
        </div>
      )}
      {node?.needs && !pass && (
        <p class="guide-needs" data-testid="guide-needs-pass">
          {t.needsPass}
        </p>
      )}
    </section>
  );
}

function Itinerary(props: { journey: JourneyView; texts: GuideTexts; lang: ReturnType<typeof guideLanguage>; onWay: ((node: JourneyNodeView) => void) | null }) {
  const { journey, texts: t, lang, onWay } = props;
  return (
    <section class="guide-itinerary" aria-labelledby="guide-itinerary-title">
      <h3 id="guide-itinerary-title" class="guide-title" data-testid="guide-title">
        {journey.doc.title || t.itinerary}
      </h3>
      <ol data-testid="guide-itinerary">
        {journey.nodes.map((n, i) => {
          const status = nodeStatus(n, journey.current);
          const hours = hoursWords(n, lang);
          return (
            <li key={n.id} class={`guide-node ${status}`} data-testid="guide-node" data-node={n.id} data-status={status} aria-current={status === 'current' ? 'step' : undefined}>
              {onWay && status !== 'done' && status !== 'skipped' ? (
                <button type="button" class="guide-node-button" data-testid="guide-node-way" title={t.wayTo(n.place.name)} onClick={() => onWay(n)}>
                  <NodeRow node={n} index={i} status={status} hours={hours} texts={t} />
                </button>
              ) : (
                <NodeRow node={n} index={i} status={status} hours={hours} texts={t} />
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

function NodeRow(props: { node: JourneyNodeView; index: number; status: ReturnType<typeof nodeStatus>; hours: string | null; texts: GuideTexts }) {
  const { node: n, index: i, status, hours, texts: t } = props;
  return (
    <>
      <span class="guide-node-number" aria-hidden="true">
        {status === 'done' ? '✓' : status === 'skipped' ? '–' : i + 1}
      </span>
      <span class="guide-node-body">
        <span class="guide-node-title">
          {n.title}
          {n.title !== n.place.name && <span class="guide-node-place"> · {n.place.name}</span>}
        </span>
        <span class="guide-node-facts">{[t.kind[n.kind], n.duration_min > 0 ? t.stay(n.duration_min) : null, hours].filter(Boolean).join(' · ')}</span>
      </span>
      {t.state[status] && (
        <span class={`guide-node-state ${status}`} data-testid="guide-node-state">
          {t.state[status]}
        </span>
      )}
    </>
  );
}
