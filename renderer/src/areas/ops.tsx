import { useEffect, useRef, useState } from 'preact/hooks';
import type { TesseraClient, TesseraEvent } from '../../../main/common/api.js';
import { isTesseraError } from '../../../main/common/errors.js';
import { compilePattern, patternProblem } from '../../../main/common/topics.js';
import { AgentsPanel } from './ops-agents.js';
import { ClusterPanel } from './ops-cluster.js';
import { RunsPanel } from './ops-runs.js';
import { SalesPanel } from './ops-sales.js';

const KEEP = 500;

type OpsTab = 'overview' | 'agents' | 'cluster';
/** The tab shown, kept while the page lives (switching areas and back shows the same one). */
const kept: { tab: OpsTab } = { tab: 'overview' };

/**
 * Ops: sales (the kiosk's balance, the issuing switch, product sessions), scenario runs (live list, step timeline,
 * cancel, start a run) above the live event stream and its
 * publisher. Both sections show at once, so the stream stays what the Ops link opens onto (test/e2e/ui.test.ts).
 * A second tab, "Agents" (./ops-agents.tsx, issue 17): agent sessions, transcripts, budgets, proposals, audit trail.
 * A third, "Cluster" (./ops-cluster.tsx, issue 18): the nodes scenario runs are spread over and those runs.
 */
export function OpsArea(props: { client: TesseraClient }) {
  const [tab, setTab] = useState<OpsTab>(kept.tab);
  const open = (t: OpsTab) => setTab((kept.tab = t));
  return (
    <div class="ops-page">
      <div class="journey-tabs ops-tabs" role="tablist" aria-label="Ops">
        <button type="button" role="tab" aria-selected={tab === 'overview'} class={tab === 'overview' ? 'tab active' : 'tab'} data-testid="ops-tab-overview" onClick={() => open('overview')}>
          Overview
        </button>
        <button type="button" role="tab" aria-selected={tab === 'agents'} class={tab === 'agents' ? 'tab active' : 'tab'} data-testid="ops-tab-agents" onClick={() => open('agents')}>
          Agents
        </button>
        <button type="button" role="tab" aria-selected={tab === 'cluster'} class={tab === 'cluster' ? 'tab active' : 'tab'} data-testid="ops-tab-cluster" onClick={() => open('cluster')}>
          Cluster
        </button>
      </div>
      {tab === 'agents' ? (
        <AgentsPanel client={props.client} />
      ) : tab === 'cluster' ? (
        <ClusterPanel client={props.client} />
      ) : (
        <>
          <SalesPanel client={props.client} />
          <RunsPanel client={props.client} />
          <EventStream client={props.client} />
        </>
      )}
    </div>
  );
}

/** The live event stream: history first, then live over the client's subscription; with a publisher. */
function EventStream(props: { client: TesseraClient }) {
  const { client } = props;
  const [pattern, setPattern] = useState('**');
  const [draft, setDraft] = useState('**');
  const [events, setEvents] = useState<TesseraEvent[]>([]);
  const [linked, setLinked] = useState(false);
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  useEffect(() => {
    let cancelled = false;
    const seen = new Set<number>();
    const add = (incoming: TesseraEvent[]) =>
      setEvents((prev) => {
        const fresh = incoming.filter((e) => !seen.has(e.id));
        fresh.forEach((e) => seen.add(e.id));
        return [...fresh, ...prev].sort((a, b) => b.id - a.id).slice(0, KEEP);
      });
    setEvents([]);
    setLinked(false);
    const matches = compilePattern(pattern);
    const loadHistory = () =>
      client.queryEvents({ order: 'desc', limit: 100, ...(pattern === '**' ? {} : { topic: pattern }) }).then(
        (page) => !cancelled && add(page.events),
        (err: unknown) => !cancelled && setError(isTesseraError(err) ? `${err.code}: ${err.message}` : String(err)),
      );
    // History is loaded each time the live link comes up, so nothing published while it was down (or before it
    // first connected) is missed; ids de-duplicate the overlap.
    const unsubscribe = client.subscribe([pattern], (e) => {
      if (!pausedRef.current && matches(e.topic)) add([e]);
    }, (up) => {
      if (cancelled) return;
      setLinked(up);
      if (up) void loadHistory();
    });
    return () => {
      cancelled = true;
      unsubscribe();
    };
  }, [client, pattern]);

  const applyFilter = (e: Event) => {
    e.preventDefault();
    const problem = patternProblem(draft.trim());
    if (problem) return setError(problem);
    setError(null);
    setPattern(draft.trim());
  };

  return (
    <section class="ops" aria-labelledby="ops-events-title">
      <div class="toolbar">
        <h2 id="ops-events-title">Event stream</h2>
        <span class={linked ? 'pill ok' : 'pill warn'} data-testid="stream-status">{linked ? 'Live' : 'Connecting…'}</span>
        <form class="inline" onSubmit={applyFilter}>
          <label for="ops-filter">Topics</label>
          <input id="ops-filter" value={draft} onInput={(e) => setDraft((e.target as HTMLInputElement).value)} placeholder="e.g. nlp.intent.*" />
          <button type="submit">Filter</button>
        </form>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused}>{paused ? 'Resume' : 'Pause'}</button>
      </div>
      {error ? <p class="error" role="alert">{error}</p> : null}
      <Publisher client={client} />
      <table class="events" data-testid="event-table">
        <thead>
          <tr><th>#</th><th>Time</th><th>Topic</th><th>Trace</th><th>Payload</th></tr>
        </thead>
        <tbody>
          {events.length === 0 ? (
            <tr><td colSpan={5} class="empty">No events match “{pattern}” yet.</td></tr>
          ) : (
            events.map((e) => (
              <tr key={e.id} data-topic={e.topic}>
                <td>{e.id}</td>
                <td title={e.ts}>{e.ts.slice(11, 23)}</td>
                <td class="topic">{e.topic}</td>
                <td class="trace" title={e.trace_id}>{e.trace_id.slice(0, 8)}</td>
                <td class="payload"><code>{JSON.stringify(e.payload)}</code></td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </section>
  );
}

function Publisher(props: { client: TesseraClient }) {
  const [topic, setTopic] = useState('ops.note');
  const [payload, setPayload] = useState('{"text": "hello"}');
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const publish = async (e: Event) => {
    e.preventDefault();
    let parsed: unknown;
    try {
      parsed = payload.trim() === '' ? null : JSON.parse(payload);
    } catch {
      return setResult({ ok: false, text: 'Payload is not valid JSON.' });
    }
    try {
      const event = await props.client.publishEvent({ topic: topic.trim(), payload: parsed });
      setResult({ ok: true, text: `Published #${event.id}` });
    } catch (err) {
      setResult({ ok: false, text: isTesseraError(err) ? `${err.code}: ${err.message}` : String(err) });
    }
  };
  return (
    <form class="publisher inline" onSubmit={publish} aria-label="Publish an event">
      <label for="pub-topic">Topic</label>
      <input id="pub-topic" value={topic} onInput={(e) => setTopic((e.target as HTMLInputElement).value)} />
      <label for="pub-payload">Payload</label>
      <input id="pub-payload" class="wide" value={payload} onInput={(e) => setPayload((e.target as HTMLInputElement).value)} />
      <button type="submit">Publish</button>
      {result ? <span class={result.ok ? 'ok-text' : 'error'} role="status">{result.text}</span> : null}
    </form>
  );
}
