/**
 * Ops → Agents (issue 17 point 8; seed 003 FR1, FR5; seed 000 §8): what the operator sees of the device's agents.
 *
 * - The agents (model or rule-based, degraded, enabled) and their sessions: type, owner, state, degraded, usage
 *   against the session's budgets (`GET /api/agents/sessions`, `…/budgets`).
 * - A session: its transcript (the traveller's words, the assistant's answers and where they came from, each tool
 *   call and result with its error), its budgets for the session and the agent type's day with "Resume with more
 *   budget" for a paused session (`POST …/resume {extend}`), its proposals (state, approval, the policies' verdicts,
 *   the receipt card `/v1/r/<capsule>`), and its audit trail (`GET /api/events?topic=agent.**`, this session's).
 * - Live: the operator's subscription to `agent.**` refreshes the list and the session shown (debounced).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AgentBudgetKind, AgentBudgetView, AgentBudgets, AgentProposalView, AgentSessionView, AgentSummaryView, AgentTranscriptEntry } from '../../../main/common/agents-api.js';
import type { TesseraClient, TesseraEvent } from '../../../main/common/api.js';
import { isTesseraError } from '../../../main/common/errors.js';

const message = (err: unknown) => (isTesseraError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err));
const KINDS: AgentBudgetKind[] = ['tokens', 'tool_calls', 'model_calls', 'wall_ms'];
const KIND_LABEL: Record<AgentBudgetKind, string> = { tokens: 'Tokens', tool_calls: 'Tool calls', model_calls: 'Model calls', wall_ms: 'Wall time (ms)' };
/** Agent events come in bursts (a turn is a dozen): one refresh per window. */
const REFRESH_DEBOUNCE_MS = 300;
/** Budgets are read for this many sessions of the list (the newest). */
const BUDGETS_FOR = 25;

/** "1 200 / 40 000", or the use alone when the budget is unlimited. */
export function usageWords(used: number, limit: number | undefined): string {
  const n = (v: number) => Math.round(v).toLocaleString('en-GB');
  return limit === undefined ? `${n(used)} / ∞` : `${n(used)} / ${n(limit)}`;
}

/** What "Resume with more budget" adds by default: as much again of what ran out (at least 1). */
export function defaultExtend(session: AgentSessionView): AgentBudgets {
  const pause = session.pause;
  if (!pause) return {};
  return { [pause.budget]: Math.max(1, Math.ceil(pause.limit)) };
}

export function AgentsPanel(props: { client: TesseraClient }) {
  const { client } = props;
  const [agents, setAgents] = useState<AgentSummaryView[] | null>(null);
  const [sessions, setSessions] = useState<AgentSessionView[] | null>(null);
  const [budgets, setBudgets] = useState<Record<string, AgentBudgetView>>({});
  const [selected, setSelected] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  const load = async () => {
    try {
      const [a, s] = await Promise.all([client.agents.agents(), client.agents.sessions({ limit: 100 })]);
      setAgents(a);
      setSessions(s);
      setProblem(null);
      const read = await Promise.all(s.slice(0, BUDGETS_FOR).map((x) => client.agents.budgets(x.id).then((b) => [x.id, b] as const, () => null)));
      setBudgets(Object.fromEntries(read.filter((r): r is readonly [string, AgentBudgetView] => r !== null)));
    } catch (err) {
      setProblem(message(err));
    }
  };

  useEffect(() => {
    void load();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unsubscribe = client.subscribe(['agent.**'], () => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void load();
        setTick((t) => t + 1);
      }, REFRESH_DEBOUNCE_MS);
    });
    return () => {
      if (timer) clearTimeout(timer);
      unsubscribe();
    };
  }, [client]);

  const shown = sessions?.find((s) => s.id === selected) ?? null;
  return (
    <section class="ops-runs ops-agents" aria-labelledby="ops-agents-title" data-testid="ops-agents">
      <div class="toolbar">
        <h2 id="ops-agents-title">Agents</h2>
        {agents?.map((a) => (
          <span key={a.type} class={a.degraded ? 'pill warn' : 'pill ok'} data-testid="ops-agent" data-type={a.type} data-degraded={String(a.degraded)} title={a.description}>
            {a.title}: {!a.enabled ? 'off' : !a.model ? 'rules only' : a.degraded ? 'model down — rules' : 'model'}
          </span>
        ))}
        <button type="button" class="secondary" onClick={() => void load()}>
          Reload
        </button>
      </div>
      {problem && (
        <p class="ops-problem" role="alert" data-testid="ops-agents-problem">
          {problem}
        </p>
      )}
      <div class="ops-card table-scroll">
        <table class="ops-table" data-testid="agent-sessions">
          <thead>
            <tr>
              <th>Session</th>
              <th>Type</th>
              <th>Owner</th>
              <th>State</th>
              <th>Model</th>
              <th>Tokens</th>
              <th>Tool calls</th>
              <th>Model calls</th>
            </tr>
          </thead>
          <tbody>
            {sessions === null ? (
              <tr>
                <td colSpan={8} class="empty">
                  Loading sessions…
                </td>
              </tr>
            ) : sessions.length === 0 ? (
              <tr>
                <td colSpan={8} class="empty">
                  No agent sessions yet.
                </td>
              </tr>
            ) : (
              sessions.map((s) => {
                const limit = budgets[s.id]?.session.limit ?? {};
                return (
                  <tr key={s.id} class={s.id === selected ? 'ops-run-row selected' : 'ops-run-row'} data-testid="agent-session-row" data-session={s.id} data-type={s.agent_type} data-state={s.state} data-degraded={String(s.degraded)} onClick={() => setSelected(s.id)}>
                    <td>
                      <button type="button" class="ops-run-link" aria-pressed={s.id === selected} title={s.id} onClick={(e) => {
                          e.stopPropagation();
                          setSelected(s.id);
                        }}>
                        <code>{s.id.slice(0, 8)}…</code>
                      </button>
                    </td>
                    <td>{s.agent_type}</td>
                    <td>{s.owner}</td>
                    <td>
                      <span class={`pill ops-state ops-state-${s.state === 'paused' ? 'cancelled' : s.state === 'running' ? 'running' : s.state === 'closed' ? 'skipped' : 'completed'}`}>{s.state}</span>
                    </td>
                    <td>{s.degraded ? <span class="pill warn">degraded (rules)</span> : 'ok'}</td>
                    <td>{usageWords(s.usage.tokens, limit.tokens)}</td>
                    <td>{usageWords(s.usage.tool_calls, limit.tool_calls)}</td>
                    <td>{usageWords(s.usage.model_calls, limit.model_calls)}</td>
                  </tr>
                );
              })
            )}
          </tbody>
        </table>
      </div>
      {shown ? <SessionDetail key={shown.id} client={client} session={shown} budgets={budgets[shown.id] ?? null} tick={tick} onChanged={() => void load()} /> : <p class="hint">Pick a session to see its transcript, budgets, proposals and audit trail.</p>}
    </section>
  );
}

function SessionDetail(props: { client: TesseraClient; session: AgentSessionView; budgets: AgentBudgetView | null; tick: number; onChanged: () => void }) {
  const { client, session } = props;
  const id = session.id;
  const [entries, setEntries] = useState<AgentTranscriptEntry[] | null>(null);
  const [proposals, setProposals] = useState<AgentProposalView[]>([]);
  const [audit, setAudit] = useState<TesseraEvent[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const reads = useRef(0);

  useEffect(() => {
    const mine = ++reads.current;
    Promise.all([
      client.agents.transcript(id, { limit: 1000 }),
      client.agents.proposals({ session: id }),
      client.queryEvents({ topic: 'agent.**', order: 'desc', limit: 1000 }),
    ]).then(
      ([t, p, page]) => {
        if (mine !== reads.current) return;
        setEntries(t);
        setProposals(p);
        setAudit(page.events.filter((e) => (e.payload as Record<string, unknown> | null)?.['session'] === id).reverse());
        setProblem(null);
      },
      (err: unknown) => mine === reads.current && setProblem(message(err)),
    );
  }, [client, id, props.tick]);

  return (
    <section class="ops-card ops-detail" data-testid="agent-session-detail" data-session={id} data-state={session.state} aria-labelledby="ops-agent-title">
      <div class="ops-detail-head">
        <h3 id="ops-agent-title">
          {session.agent_type} <code class="ops-run-id">{id}</code>
        </h3>
        <span class="pill">{session.state}</span>
        {session.degraded ? <span class="pill warn">degraded: rule-based answers</span> : null}
      </div>
      <dl class="ops-facts">
        <dt>Owner</dt>
        <dd>{session.owner}</dd>
        <dt>Metadata</dt>
        <dd>
          <code class="ops-json">{JSON.stringify(session.metadata)}</code>
        </dd>
        <dt>Created</dt>
        <dd>{session.created_at}</dd>
        <dt>Last active</dt>
        <dd>{session.last_active_at}</dd>
      </dl>
      {problem && (
        <p class="ops-problem" role="alert">
          {problem}
        </p>
      )}
      <Budgets client={client} session={session} budgets={props.budgets} onChanged={props.onChanged} />
      <h4>Transcript</h4>
      <Transcript entries={entries} />
      <h4>Proposals</h4>
      {proposals.length === 0 ? (
        <p class="hint">No proposals from this session.</p>
      ) : (
        <table class="ops-table" data-testid="agent-proposals">
          <thead>
            <tr>
              <th>Action</th>
              <th>Card</th>
              <th>State</th>
              <th>Approval</th>
              <th>Policies</th>
              <th>Receipts</th>
            </tr>
          </thead>
          <tbody>
            {proposals.map((p) => (
              <tr key={p.id} data-testid="agent-proposal-row" data-proposal={p.id} data-state={p.state} data-action={p.action}>
                <td>
                  <code>{p.action}</code>
                  <div class="hint">{p.reason}</div>
                </td>
                <td>{p.text}</td>
                <td>
                  {p.state}
                  {p.error ? <div class="error">{`${p.error.code}: ${p.error.message}`}</div> : null}
                </td>
                <td>{[p.approval.need, p.approval.decision, p.approval.by].filter(Boolean).join(' · ')}</td>
                <td>
                  {p.policies.map((v) => (
                    <div key={v.plugin} class={v.verdict === 'ACK' ? 'ok-text' : 'error'} title={v.reason}>
                      {v.plugin}: {v.verdict}
                    </div>
                  ))}
                </td>
                <td>
                  <a href={`/v1/r/${encodeURIComponent(p.capsule)}`} target="_blank" rel="noopener" data-testid="agent-proposal-receipts">
                    Receipt card
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h4>Audit trail</h4>
      {audit.length === 0 ? (
        <p class="hint">Nothing journaled for this session yet.</p>
      ) : (
        <table class="events" data-testid="agent-audit">
          <thead>
            <tr>
              <th>#</th>
              <th>Time</th>
              <th>Topic</th>
              <th>Trace</th>
              <th>Payload</th>
            </tr>
          </thead>
          <tbody>
            {audit.map((e) => (
              <tr key={e.id} data-testid="agent-audit-row" data-topic={e.topic}>
                <td>{e.id}</td>
                <td title={e.ts}>{e.ts.slice(11, 23)}</td>
                <td class="topic">{e.topic}</td>
                <td class="trace" title={e.trace_id}>
                  {e.trace_id.slice(0, 8)}
                </td>
                <td class="payload">
                  <code>{JSON.stringify(e.payload)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Transcript(props: { entries: AgentTranscriptEntry[] | null }) {
  const { entries } = props;
  if (entries === null) return <p class="hint">Loading the transcript…</p>;
  if (entries.length === 0) return <p class="hint">Nothing said yet.</p>;
  return (
    <ol class="ops-transcript" data-testid="agent-transcript">
      {entries.map((e) => (
        <li key={e.seq} class={`ops-transcript-entry ${e.type}`} data-testid="agent-transcript-entry" data-type={e.type} data-seq={e.seq} data-error={entryError(e) ? 'true' : undefined}>
          <span class="ops-transcript-who">{whoOf(e)}</span>
          <span class="ops-transcript-text">{textOf(e)}</span>
          {entryError(e) ? <span class="error"> {entryError(e)}</span> : null}
        </li>
      ))}
    </ol>
  );
}

function whoOf(e: AgentTranscriptEntry): string {
  switch (e.type) {
    case 'user':
      return `User (${e.by})`;
    case 'assistant':
      return e.source === 'fallback' ? 'Assistant (rules)' : 'Assistant (model)';
    case 'tool_call':
      return 'Tool call';
    case 'tool_result':
      return e.ok ? 'Tool result' : 'Tool result (failed)';
    case 'turn_end':
      return `Turn ${e.outcome}`;
  }
}

function textOf(e: AgentTranscriptEntry): string {
  switch (e.type) {
    case 'user':
      return e.text;
    case 'assistant':
      return [e.text, ...e.tool_calls.map((c) => `→ ${c.name}`)].filter((s) => s !== '').join('  ');
    case 'tool_call':
      return `${e.call.name}(${JSON.stringify(e.call.arguments)})`;
    case 'tool_result':
      return e.content.length > 600 ? `${e.content.slice(0, 600)}…` : e.content;
    case 'turn_end':
      return '';
  }
}

function entryError(e: AgentTranscriptEntry): string | null {
  if ((e.type === 'tool_result' || e.type === 'turn_end') && e.error) return `${e.error.code}: ${e.error.message}`;
  return null;
}

function Budgets(props: { client: TesseraClient; session: AgentSessionView; budgets: AgentBudgetView | null; onChanged: () => void }) {
  const { client, session, budgets } = props;
  const [extend, setExtend] = useState<Record<string, string>>(() => Object.fromEntries(Object.entries(defaultExtend(session)).map(([k, v]) => [k, String(v)])));
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const pause = session.pause;

  const resume = async (e: Event) => {
    e.preventDefault();
    const body: AgentBudgets = {};
    for (const k of KINDS) {
      const v = Number(extend[k] ?? '');
      if (extend[k] && (!Number.isInteger(v) || v < 1)) return setResult({ ok: false, text: `${KIND_LABEL[k]}: a whole number above zero.` });
      if (extend[k]) body[k] = v;
    }
    setBusy(true);
    setResult(null);
    try {
      const after = await client.agents.resume(session.id, Object.keys(body).length > 0 ? body : undefined);
      setResult({ ok: true, text: `Resumed: the session is ${after.state}.` });
      props.onChanged();
    } catch (err) {
      setResult({ ok: false, text: message(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="ops-agent-budgets" data-testid="agent-budgets">
      <h4>Budgets</h4>
      {pause && (
        <p class="ops-problem" role="status" data-testid="agent-paused">
          Paused since {pause.since}: the {pause.scope} budget of {KIND_LABEL[pause.budget].toLowerCase()} ran out ({usageWords(pause.used, pause.limit)}) before {pause.at}.
        </p>
      )}
      {budgets ? (
        <table class="ops-table">
          <thead>
            <tr>
              <th>Budget</th>
              <th>This session</th>
              <th>{`${session.agent_type} today (${budgets.day.date})`}</th>
            </tr>
          </thead>
          <tbody>
            {KINDS.map((k) => (
              <tr key={k} data-kind={k}>
                <td>{KIND_LABEL[k]}</td>
                <td>{usageWords(budgets.session.used[k], budgets.session.limit[k])}</td>
                <td>{usageWords(budgets.day.used[k], budgets.day.limit[k])}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="hint">Budgets not read yet.</p>
      )}
      {session.state === 'paused' && (
        <form class="inline ops-agent-resume" onSubmit={(e) => void resume(e)} aria-label="Resume with more budget">
          {KINDS.map((k) => (
            <label key={k}>
              {KIND_LABEL[k]} +
              <input type="number" min={1} step={1} inputMode="numeric" data-testid={`agent-extend-${k}`} value={extend[k] ?? ''} onInput={(ev) => setExtend((old) => ({ ...old, [k]: (ev.target as HTMLInputElement).value }))} />
            </label>
          ))}
          <button type="submit" data-testid="agent-resume" disabled={busy}>
            {busy ? 'Resuming…' : 'Resume with more budget'}
          </button>
        </form>
      )}
      {result && (
        <p class={result.ok ? 'ok-text' : 'error'} role="status" data-testid="agent-resume-result">
          {result.text}
        </p>
      )}
    </div>
  );
}
