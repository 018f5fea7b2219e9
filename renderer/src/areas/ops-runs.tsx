import { useEffect, useRef, useState } from 'preact/hooks';
import type { RunDetail, RunRequest, RunSummary, ScenarioSummary, StepSummary, TesseraClient } from '../../../main/common/api.js';
import { isTesseraError } from '../../../main/common/errors.js';
import { DebugControls, ReplayPanel, StepInspector, parseStepNames } from './ops-debug.js';

/** How many runs the list keeps (newest first). */
const KEEP = 50;
/** Run and step events arrive in bursts (a step finishes, the next starts): one refresh per run per window. */
const REFRESH_DEBOUNCE_MS = 150;
/** How often a running run's timeline advances while it is on screen. */
const TICK_MS = 500;

type RunState = RunSummary['state'];
const RUN_STATES: RunState[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];
const PRIORITIES: NonNullable<RunRequest['priority']>[] = ['LOW', 'NORM', 'HIGH'];

/** An error to show: a runtime error carries its code; a problem found locally (bad JSON) has none. */
interface Problem {
  code?: string;
  message: string;
}

function toProblem(err: unknown): Problem {
  return isTesseraError(err) ? { code: err.code, message: err.message } : { message: err instanceof Error ? err.message : String(err) };
}

const isActive = (state: RunState) => state === 'queued' || state === 'running';

/**
 * Runs only move forward (queued → running → a final state). A response that was requested before a newer one
 * arrived must not move a run back, so merges keep whichever of the two is further along.
 */
const progress = (state: RunState) => (state === 'queued' ? 0 : state === 'running' ? 1 : 2);

function summaryOf(run: RunSummary | RunDetail): RunSummary {
  if (!('steps' in run)) return run;
  const { steps: _steps, ...summary } = run;
  return summary;
}

function mergeRuns(prev: RunSummary[], incoming: RunSummary[]): RunSummary[] {
  const byId = new Map(prev.map((r) => [r.run_id, r]));
  for (const run of incoming) {
    const known = byId.get(run.run_id);
    if (!known || progress(run.state) >= progress(known.state)) byId.set(run.run_id, run);
  }
  return [...byId.values()]
    .sort((a, b) => (a.created_at === b.created_at ? b.run_id.localeCompare(a.run_id) : b.created_at.localeCompare(a.created_at)))
    .slice(0, KEEP);
}

const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));

/** 3 → "3 ms", 1002 → "1.0 s", 95_000 → "1 m 35 s", 5_400_000 → "1 h 30 m". */
function formatDuration(value: number): string {
  if (value < 1000) return `${Math.max(0, Math.round(value))} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)} s`;
  const s = Math.floor(value / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} m ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
}

const clockTime = (iso: string | null) => (iso === null ? '—' : iso.slice(11, 23));

/**
 * Ops › Runs: the scenario runs of this runtime with their live state, one run's step timeline, cancel, and a
 * form to start a run. Live: every `scenario.**` event names its run, which is then re-read (debounced per run),
 * so the list and the open run follow the engine without polling; the list is reloaded whenever the live link
 * comes (back) up, so nothing that happened while it was down is missed.
 */
export function RunsPanel(props: { client: TesseraClient }) {
  const { client } = props;
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [listProblem, setListProblem] = useState<Problem | null>(null);
  const [stateFilter, setStateFilter] = useState<RunState | ''>('');
  const [linked, setLinked] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [detailProblem, setDetailProblem] = useState<Problem | null>(null);

  // The subscription outlives renders; it reads the current selection and filter through refs.
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const filterRef = useRef(stateFilter);
  filterRef.current = stateFilter;
  // Per run, the number of the latest status request: only its answer may be shown (answers can overtake).
  const requests = useRef(new Map<string, number>());
  const alive = useRef(true);
  useEffect(() => {
    alive.current = true;
    return () => void (alive.current = false);
  }, []);

  const fetchRun = (runId: string): Promise<void> => {
    const n = (requests.current.get(runId) ?? 0) + 1;
    requests.current.set(runId, n);
    return client.runStatus(runId).then(
      (run) => {
        if (!alive.current || requests.current.get(runId) !== n) return;
        setRuns((prev) => mergeRuns(prev ?? [], [summaryOf(run)]));
        if (selectedRef.current === runId) {
          setDetail(run);
          setDetailProblem(null);
        }
      },
      (err: unknown) => {
        if (!alive.current || requests.current.get(runId) !== n) return;
        if (selectedRef.current === runId) setDetailProblem(toProblem(err));
      },
    );
  };
  const fetchRunRef = useRef(fetchRun);
  fetchRunRef.current = fetchRun;

  const loadList = () => {
    const state = filterRef.current;
    return client.listRuns({ limit: KEEP, ...(state ? { state } : {}) }).then(
      (list) => {
        if (!alive.current || filterRef.current !== state) return;
        setListProblem(null);
        // The list is authoritative up to its newest run; runs learnt live while it was in flight are newer and
        // stay, and mergeRuns keeps a live state that is further along than the list's.
        const newest = list.reduce((max, r) => (r.created_at > max ? r.created_at : max), '');
        setRuns((prev) => mergeRuns((prev ?? []).filter((r) => r.created_at > newest || list.some((l) => l.run_id === r.run_id)), list));
      },
      (err: unknown) => alive.current && setListProblem(toProblem(err)),
    );
  };
  const loadListRef = useRef(loadList);
  loadListRef.current = loadList;

  useEffect(() => {
    setRuns(null);
    void loadList();
  }, [client, stateFilter]);

  useEffect(() => {
    let disposed = false;
    const timers = new Map<string, ReturnType<typeof setTimeout>>();
    const schedule = (runId: string) => {
      if (timers.has(runId)) return;
      timers.set(runId, setTimeout(() => {
        timers.delete(runId);
        if (!disposed) void fetchRunRef.current(runId);
      }, REFRESH_DEBOUNCE_MS));
    };
    const unsubscribe = client.subscribe(['scenario.**'], (event) => {
      const runId = (event.payload as { run_id?: unknown } | null)?.run_id;
      if (typeof runId === 'string') schedule(runId);
    }, (up) => {
      if (disposed) return;
      setLinked(up);
      if (!up) return;
      void loadListRef.current();
      if (selectedRef.current) void fetchRunRef.current(selectedRef.current);
    });
    return () => {
      disposed = true;
      for (const timer of timers.values()) clearTimeout(timer);
      unsubscribe();
    };
  }, [client]);

  const select = (runId: string) => {
    if (runId !== selectedRef.current) setDetail(null);
    setDetailProblem(null);
    selectedRef.current = runId;
    setSelected(runId);
    void fetchRun(runId);
  };

  const shown = runs?.filter((r) => !stateFilter || r.state === stateFilter) ?? null;

  return (
    <section class="ops-runs" aria-labelledby="ops-runs-title">
      <div class="toolbar">
        <h2 id="ops-runs-title">Runs</h2>
        <span class={linked ? 'pill ok' : 'pill warn'} data-testid="runs-status">{linked ? 'Live' : 'Connecting…'}</span>
        <label for="ops-runs-state">State</label>
        <select id="ops-runs-state" value={stateFilter} onChange={(e) => setStateFilter((e.target as HTMLSelectElement).value as RunState | '')}>
          <option value="">all</option>
          {RUN_STATES.map((s) => <option key={s} value={s}>{s}</option>)}
        </select>
        <button type="button" class="secondary" onClick={() => void loadList()}>Reload runs</button>
      </div>
      <div class="ops-runs-layout">
        <StartRunForm client={client} onStarted={select} />
        <div class="ops-card ops-runs-list">
          {listProblem ? <ProblemBox problem={listProblem} testId="runs-error" /> : null}
          <RunsTable runs={shown} selected={selected} onSelect={select} />
        </div>
      </div>
      {selected ? (
        <RunDetailView
          key={selected}
          client={client}
          runId={selected}
          run={detail?.run_id === selected ? detail : null}
          problem={detailProblem}
          onChanged={() => void fetchRun(selected)}
          onOpen={select}
        />
      ) : (
        <p class="hint">Pick a run to see its steps.</p>
      )}
    </section>
  );
}

function RunsTable(props: { runs: RunSummary[] | null; selected: string | null; onSelect: (runId: string) => void }) {
  const { runs } = props;
  return (
    <table class="ops-table" data-testid="runs-table">
      <thead>
        <tr><th>Run</th><th>Scenario</th><th>State</th><th>Priority</th><th>Created</th><th>Duration</th><th>Notes</th></tr>
      </thead>
      <tbody>
        {runs === null ? (
          <tr><td colSpan={7} class="empty">Loading runs…</td></tr>
        ) : runs.length === 0 ? (
          <tr><td colSpan={7} class="empty">No runs yet. Start one with the form.</td></tr>
        ) : (
          runs.map((r) => {
            const start = ms(r.started_at);
            const end = ms(r.finished_at);
            const isSelected = r.run_id === props.selected;
            return (
              <tr
                key={r.run_id}
                class={isSelected ? 'ops-run-row selected' : 'ops-run-row'}
                data-testid={`run-row-${r.run_id}`}
                data-state={r.state}
                onClick={() => props.onSelect(r.run_id)}
              >
                <td>
                  <button type="button" class="ops-run-link" aria-pressed={isSelected} title={r.run_id} onClick={(e) => { e.stopPropagation(); props.onSelect(r.run_id); }}>
                    <code>{r.run_id}</code>
                  </button>
                </td>
                <td>{r.scenario_id}</td>
                <td><StatePill state={r.state} /></td>
                <td>{r.priority}</td>
                <td title={r.created_at}>{clockTime(r.created_at)}</td>
                <td>{start !== null && end !== null ? formatDuration(end - start) : isActive(r.state) ? '…' : '—'}</td>
                <td>
                  <span class="ops-notes">
                    {r.dry_run ? <span class="pill ops-badge-dry">dry run</span> : null}
                    {r.parent_run_id ? <span class="pill" title={r.parent_run_id}>child run</span> : null}
                    {r.error ? <span class="error" title={r.error.message}>{r.error.code}</span> : null}
                  </span>
                </td>
              </tr>
            );
          })
        )}
      </tbody>
    </table>
  );
}

function StatePill(props: { state: string; label?: string }) {
  return <span class={`pill ops-state ops-state-${props.state}`}>{props.label ?? props.state}</span>;
}

function ProblemBox(props: { problem: Problem; testId: string }) {
  const { code, message } = props.problem;
  return (
    <div class="ops-problem" role="alert" data-testid={props.testId} data-code={code ?? 'LOCAL'}>
      <strong>{code ?? 'Not sent'}</strong> {message}
    </div>
  );
}

/** Parses the context text: empty means none; anything else must be a JSON object. Returns a problem or the value. */
function parseCtx(text: string): { ctx?: Record<string, unknown>; problem?: string } {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { problem: `The context is not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problem: 'The context must be a JSON object, like {"duration": "2s"}.' };
  }
  return { ctx: value as Record<string, unknown> };
}

/** Start a run of a registered scenario. The context is checked locally first; the runtime checks it against ctx_schema. */
function StartRunForm(props: { client: TesseraClient; onStarted: (runId: string) => void }) {
  const { client } = props;
  const [scenarios, setScenarios] = useState<ScenarioSummary[] | null>(null);
  const [scenarioId, setScenarioId] = useState('');
  const [ctxText, setCtxText] = useState('{}');
  const [priority, setPriority] = useState<RunRequest['priority'] | ''>('');
  const [dryRun, setDryRun] = useState(false);
  const [breakpointsText, setBreakpointsText] = useState('');
  const [sending, setSending] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [started, setStarted] = useState<string | null>(null);

  const load = () =>
    client.listScenarios().then(
      (list) => {
        setScenarios(list);
        setScenarioId((id) => (list.some((s) => s.id === id) ? id : list[0]?.id ?? ''));
      },
      (err: unknown) => setProblem(toProblem(err)),
    );
  useEffect(() => {
    void load();
  }, [client]);

  const current = scenarios?.find((s) => s.id === scenarioId) ?? null;

  const submit = async (e: Event) => {
    e.preventDefault();
    setStarted(null);
    const { ctx, problem: local } = parseCtx(ctxText);
    if (local) return setProblem({ message: local });
    if (!scenarioId) return setProblem({ message: 'Pick a scenario first.' });
    setProblem(null);
    setSending(true);
    try {
      const breakpoints = parseStepNames(breakpointsText);
      const { run_id } = await client.runScenario({ id: scenarioId, ...(ctx ? { ctx } : {}), ...(priority ? { priority } : {}), ...(dryRun ? { dry_run: true } : {}), ...(breakpoints.length ? { breakpoints } : {}) });
      setStarted(run_id);
      props.onStarted(run_id);
    } catch (err) {
      setProblem(toProblem(err));
    } finally {
      setSending(false);
    }
  };

  return (
    <form class="ops-card ops-start" onSubmit={submit} aria-labelledby="ops-start-title" data-testid="start-run-form">
      <h3 id="ops-start-title">Start a run</h3>
      <label for="start-scenario">Scenario</label>
      <select id="start-scenario" data-testid="start-scenario" value={scenarioId} disabled={!scenarios?.length} onChange={(e) => setScenarioId((e.target as HTMLSelectElement).value)}>
        {scenarios === null ? <option value="">Loading…</option> : null}
        {scenarios?.length === 0 ? <option value="">No scenarios registered</option> : null}
        {scenarios?.map((s) => <option key={s.id} value={s.id}>{s.id}</option>)}
      </select>
      {current ? (
        <p class="hint ops-scenario-hint">
          {current.description ?? 'No description.'} Steps: {current.steps.join(' → ')}.
          {current.ctx_required?.length ? <> Context needs: <code data-testid="scenario-ctx-required">{current.ctx_required.join(', ')}</code>.</> : null}
        </p>
      ) : null}
      <label for="start-ctx">Context (JSON object)</label>
      <textarea id="start-ctx" data-testid="start-ctx" rows={4} spellcheck={false} value={ctxText} onInput={(e) => setCtxText((e.target as HTMLTextAreaElement).value)} />
      <div class="ops-start-row">
        <label for="start-priority">Priority</label>
        <select id="start-priority" data-testid="start-priority" value={priority} onChange={(e) => setPriority((e.target as HTMLSelectElement).value as RunRequest['priority'] | '')}>
          <option value="">{current ? `scenario's (${current.priority})` : "scenario's"}</option>
          {PRIORITIES.map((p) => <option key={p} value={p}>{p}</option>)}
        </select>
        <label class="ops-check">
          <input type="checkbox" data-testid="start-dry-run" checked={dryRun} onChange={(e) => setDryRun((e.target as HTMLInputElement).checked)} />
          Dry run (simulate effects)
        </label>
      </div>
      <label for="start-breakpoints">Breakpoints (step names to pause before)</label>
      <input id="start-breakpoints" data-testid="start-breakpoints" placeholder={current ? current.steps.join(', ') : 'step names'} value={breakpointsText} onInput={(e) => setBreakpointsText((e.target as HTMLInputElement).value)} />
      <button type="submit" data-testid="start-submit" disabled={sending || !scenarioId}>{sending ? 'Starting…' : 'Start run'}</button>
      {problem ? <ProblemBox problem={problem} testId="start-error" /> : null}
      {started ? <p class="ok-text" role="status" data-testid="start-result" data-run-id={started}>Started <code>{started}</code></p> : null}
    </form>
  );
}

/**
 * One run: its facts, cancel, the debugger (active runs) or replay (finished runs), and the step timeline, where
 * a step opens to show its input, output and the bag after it. Keyed by run id, so switching runs starts clean.
 */
function RunDetailView(props: { client: TesseraClient; runId: string; run: RunDetail | null; problem: Problem | null; onChanged: () => void; onOpen: (runId: string) => void }) {
  const { run } = props;
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  const toggle = (key: string) =>
    setOpen((prev) => {
      const next = new Set(prev);
      if (!next.delete(key)) next.add(key);
      return next;
    });
  const [now, setNow] = useState(() => Date.now());
  const [cancelling, setCancelling] = useState(false);
  const [cancelNote, setCancelNote] = useState<{ ok: boolean; text: string } | null>(null);
  const active = run !== null && isActive(run.state);

  // While the run is active, its last bar grows with the wall clock.
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(timer);
  }, [active]);

  const cancel = async () => {
    setCancelling(true);
    setCancelNote(null);
    try {
      const { cancelled } = await props.client.cancelRun(props.runId);
      setCancelNote(cancelled ? { ok: true, text: 'Cancel requested.' } : { ok: false, text: 'The run had already finished.' });
    } catch (err) {
      const p = toProblem(err);
      setCancelNote({ ok: false, text: p.code ? `${p.code}: ${p.message}` : p.message });
    } finally {
      setCancelling(false);
      props.onChanged();
    }
  };

  if (run === null) {
    return (
      <section class="ops-card ops-detail" data-testid="run-detail" aria-busy={props.problem ? undefined : true}>
        {props.problem ? <ProblemBox problem={props.problem} testId="run-detail-error" /> : <p class="hint">Loading <code>{props.runId}</code>…</p>}
      </section>
    );
  }

  const start = ms(run.started_at) ?? ms(run.created_at)!;
  const end = Math.max(ms(run.finished_at) ?? now, ...run.steps.map((s) => ms(s.finished_at) ?? (active ? now : start)));
  const span = Math.max(1, end - start);

  return (
    <section class="ops-card ops-detail" data-testid="run-detail" data-run-id={run.run_id} data-state={run.state} aria-labelledby="ops-detail-title">
      <div class="ops-detail-head">
        <h3 id="ops-detail-title">{run.scenario_id} <code class="ops-run-id">{run.run_id}</code></h3>
        <StatePill state={run.state} />
        {run.dry_run ? <span class="pill ops-badge-dry" title="Effect steps are simulated, not performed.">dry run</span> : null}
        <span class="spacer" />
        {active ? (
          <button type="button" class="danger" data-testid="run-cancel" disabled={cancelling} onClick={() => void cancel()}>
            {cancelling ? 'Cancelling…' : 'Cancel run'}
          </button>
        ) : null}
      </div>
      {cancelNote ? <p class={cancelNote.ok ? 'ok-text' : 'error'} role="status">{cancelNote.text}</p> : null}
      {props.problem ? <ProblemBox problem={props.problem} testId="run-detail-error" /> : null}
      {run.error ? <ProblemBox problem={run.error} testId="run-error" /> : null}
      <dl class="ops-facts">
        <dt>Priority</dt><dd>{run.priority}</dd>
        <dt>Created</dt><dd title={run.created_at}>{clockTime(run.created_at)}</dd>
        <dt>Started</dt><dd title={run.started_at ?? ''}>{clockTime(run.started_at)}</dd>
        <dt>Finished</dt><dd title={run.finished_at ?? ''}>{clockTime(run.finished_at)}</dd>
        <dt>Duration</dt><dd data-testid="run-duration">{run.started_at ? `${formatDuration(end - start)}${active ? ' so far' : ''}` : '—'}</dd>
        <dt>Trace</dt><dd><code>{run.trace_id}</code></dd>
        {run.parent_run_id ? [<dt key="pk">Parent run</dt>, <dd key="pv"><code>{run.parent_run_id}</code></dd>] : null}
        {run.replay_of ? [<dt key="rk">Replay of</dt>, <dd key="rv"><button type="button" class="ops-run-link" data-testid="run-replay-of" onClick={() => props.onOpen(run.replay_of!)}><code>{run.replay_of}</code></button></dd>] : null}
        <dt>Context</dt><dd><code class="ops-json">{JSON.stringify(run.ctx)}</code></dd>
      </dl>
      {active ? <DebugControls client={props.client} run={run} onChanged={props.onChanged} /> : <ReplayPanel client={props.client} run={run} onOpen={props.onOpen} />}
      <h4>Steps</h4>
      {run.steps.length === 0 ? (
        <p class="hint">{active ? 'No step has started yet.' : 'This run has no steps.'}</p>
      ) : (
        <table class="ops-table ops-steps" data-testid="step-timeline">
          <thead>
            <tr><th>Step</th><th>State</th><th>Attempts</th><th>Duration</th><th class="ops-bar-col">Timeline ({formatDuration(span)})</th></tr>
          </thead>
          <tbody>
            {run.steps.map((s) => [
              <StepRow key={s.step_key} step={s} runActive={active} runStart={start} runEnd={end} span={span} now={now} open={open.has(s.step_key)} onToggle={() => toggle(s.step_key)} />,
              open.has(s.step_key) ? (
                <tr key={`${s.step_key}/inspect`} class="ops-step-detail">
                  <td colSpan={5}><StepInspector step={s} /></td>
                </tr>
              ) : null,
            ])}
          </tbody>
        </table>
      )}
    </section>
  );
}

/**
 * A step as the timeline shows it. A run that is cancelled records the step it interrupted as `cancelled`; a step
 * still `started` in a finished run (an older record, or a runtime that stopped under it) shows as interrupted.
 */
function StepRow(props: { step: StepSummary; runActive: boolean; runStart: number; runEnd: number; span: number; now: number; open: boolean; onToggle: () => void }) {
  const { step: s, runActive, runStart, runEnd, span, now } = props;
  const unfinished = s.state === 'started';
  const shownState = unfinished ? (runActive ? 'running' : 'interrupted') : s.state;
  const first = ms(s.first_started_at) ?? runStart;
  const last = ms(s.started_at) ?? first;
  // An unfinished step lasts until now while its run is active, else until the run ended (and interrupted it).
  const finished = ms(s.finished_at) ?? (runActive ? now : runEnd);
  const retries = Math.max(0, s.attempt - 1);
  const duration = s.duration_ms ?? (unfinished ? finished - last : null);
  // The bar spans the run: x and width in thousandths of it (an SVG viewBox, so no inline styles under the CSP).
  const x = (t: number) => Math.min(1000, Math.max(0, ((t - runStart) / span) * 1000));
  const retryWidth = x(last) - x(first);
  const attemptWidth = Math.max(3, x(finished) - x(last));
  return (
    <tr data-testid={`step-row-${s.step_key}`} data-state={s.state} class="ops-step">
      <td>
        <button type="button" class="ops-step-name ops-run-link" data-testid="step-toggle" aria-expanded={props.open} title="Show its input, output and the bag after it" onClick={props.onToggle}>{s.name}</button>
        {s.step_key !== s.name ? <code class="ops-step-key">{s.step_key}</code> : null}
        <span class="ops-badges">
          {s.effect ? <span class="pill ops-badge-effect" title="Performs an effect outside the runtime.">effect</span> : null}
          {s.simulated ? <span class="pill ops-badge-dry" title="Dry run: the effect was simulated, not performed.">simulated</span> : null}
        </span>
      </td>
      <td><StatePill state={shownState} /></td>
      <td data-testid="step-attempts">
        {s.attempt === 0 ? '—' : `${s.attempt}`}
        {retries > 0 ? <span class="ops-retries"> ({retries} {retries === 1 ? 'retry' : 'retries'})</span> : null}
      </td>
      <td data-testid="step-duration" title={retries > 0 ? `Last attempt; ${formatDuration(finished - first)} since the first attempt began.` : undefined}>
        {duration === null ? '—' : `${formatDuration(duration)}${unfinished ? (runActive ? '…' : ' (interrupted)') : s.state === 'cancelled' ? ' (cancelled)' : ''}`}
      </td>
      <td class="ops-bar-col">
        <svg class="ops-bar" viewBox="0 0 1000 10" preserveAspectRatio="none" role="img" aria-label={`${s.name}: from +${formatDuration(first - runStart)}, ${duration === null ? 'no duration' : formatDuration(duration)}`}>
          <rect class="ops-bar-track" x="0" y="0" width="1000" height="10" />
          {retryWidth > 0 ? <rect class="ops-bar-retry" x={x(first)} y="2" width={retryWidth} height="6" /> : null}
          <rect class={`ops-bar-fill ops-fill-${shownState}`} x={Math.min(x(last), 1000 - attemptWidth)} y="0" width={attemptWidth} height="10" />
        </svg>
        {s.error ? <p class="ops-step-error error"><strong>{s.error.code}</strong> {s.error.message}</p> : null}
      </td>
    </tr>
  );
}
