import { useEffect, useRef, useState } from 'preact/hooks';
import type { ReplayDifference, RunDetail, StepSummary, TesseraClient } from '../../../main/common/api.js';
import { isTesseraError } from '../../../main/common/errors.js';

/** How often a replay in progress is checked until it finishes. */
const REPLAY_POLL_MS = 250;
/** A replay that has not finished by then is left to the runs list (its diff can be read later). */
const REPLAY_WAIT_MS = 60_000;

const describe = (err: unknown) => (isTesseraError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err));

/** Step names typed as a list: commas or whitespace separate them; duplicates dropped. */
export function parseStepNames(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter((s) => s !== ''))];
}

const json = (value: unknown) => (value === undefined ? '—' : JSON.stringify(value, null, 2));

/**
 * The debugger of an active run (seed 001 P1, issue 4 §9): where it is paused, step over (stop before the next
 * step) and continue (to the next breakpoint), and its breakpoints by step name. The run's own events
 * (`scenario.run.paused` / `resumed`) refresh the detail, so the pause shows up live.
 */
export function DebugControls(props: { client: TesseraClient; run: RunDetail; onChanged: () => void }) {
  const { client, run } = props;
  const current = run.breakpoints ?? [];
  const [draft, setDraft] = useState(() => current.join(', '));
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);

  const act = async (action: 'continue' | 'step' | 'set', list?: string[]) => {
    setBusy(true);
    setNote(null);
    try {
      const state = await client.debugRun(run.run_id, action, list);
      if (action === 'set') {
        setDraft(state.breakpoints.join(', '));
        setNote({ ok: true, text: state.breakpoints.length ? `Breakpoints set: ${state.breakpoints.join(', ')}.` : 'Breakpoints cleared.' });
      } else setNote({ ok: true, text: action === 'step' ? 'Stepping: the run stops before its next step.' : 'Continuing to the next breakpoint.' });
    } catch (err) {
      setNote({ ok: false, text: describe(err) });
    } finally {
      setBusy(false);
      props.onChanged();
    }
  };

  const paused = run.paused_at ?? null;
  return (
    <div class="ops-debug" data-testid="run-debug" data-paused-at={paused ?? ''}>
      <h4>Debugger</h4>
      {paused ? (
        <p class="ops-paused" role="status" data-testid="run-paused">Paused before <code>{paused}</code></p>
      ) : (
        <p class="hint">Not paused. Set breakpoints by step name; the run stops before each.</p>
      )}
      <div class="ops-debug-row">
        <button type="button" data-testid="debug-step" disabled={busy || !paused} onClick={() => void act('step')} title="Run the step it is paused before, then stop before the next one.">Step over</button>
        <button type="button" data-testid="debug-continue" disabled={busy || !paused} onClick={() => void act('continue')} title="Run on to the next breakpoint.">Continue</button>
      </div>
      <form
        class="ops-debug-row"
        onSubmit={(e) => {
          e.preventDefault();
          void act('set', parseStepNames(draft));
        }}
      >
        <label for="debug-breakpoints">Breakpoints</label>
        <input id="debug-breakpoints" data-testid="debug-breakpoints" placeholder="step names, comma-separated" value={draft} onInput={(e) => setDraft((e.target as HTMLInputElement).value)} />
        <button type="submit" class="secondary" data-testid="debug-set" disabled={busy}>Set breakpoints</button>
      </form>
      <p class="hint" data-testid="debug-breakpoint-list">Breakpoints: {current.length ? current.join(', ') : 'none'}</p>
      {note ? <p class={note.ok ? 'ok-text' : 'error'} role="status" data-testid="debug-note">{note.text}</p> : null}
    </div>
  );
}

/**
 * Replay of a finished run (seed 001 P1): runs it again with its ctx, effect steps answering with their recorded
 * outputs, waits for the replay to finish, then shows where the two differ (a step's evaluated input, its output,
 * or a step that ran in only one of them).
 */
export function ReplayPanel(props: { client: TesseraClient; run: RunDetail; onOpen: (runId: string) => void }) {
  const { client, run } = props;
  const [replayId, setReplayId] = useState<string | null>(null);
  const [phase, setPhase] = useState<'idle' | 'running' | 'done' | 'failed'>('idle');
  const [differences, setDifferences] = useState<ReplayDifference[] | null>(null);
  const [replayState, setReplayState] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);

  const replay = async () => {
    setPhase('running');
    setProblem(null);
    setDifferences(null);
    setReplayState(null);
    try {
      const { run_id } = await client.replayRun(run.run_id);
      if (!alive.current) return;
      setReplayId(run_id);
      const end = Date.now() + REPLAY_WAIT_MS;
      let status = await client.runStatus(run_id);
      while ((status.state === 'queued' || status.state === 'running') && Date.now() < end) {
        await new Promise((r) => setTimeout(r, REPLAY_POLL_MS));
        if (!alive.current) return;
        status = await client.runStatus(run_id);
      }
      if (!alive.current) return;
      setReplayState(status.state);
      setDifferences(await client.replayDiff(run_id));
      setPhase('done');
    } catch (err) {
      if (!alive.current) return;
      setProblem(describe(err));
      setPhase('failed');
    }
  };

  return (
    <div class="ops-replay" data-testid="run-replay" data-phase={phase}>
      <div class="ops-debug-row">
        <h4>Replay</h4>
        <button type="button" class="secondary" data-testid="replay-start" disabled={phase === 'running'} onClick={() => void replay()} title="Run it again with the same context; effect steps return their recorded outputs instead of acting.">
          {phase === 'running' ? 'Replaying…' : 'Replay'}
        </button>
        {replayId ? (
          <button type="button" class="ops-run-link" data-testid="replay-open" onClick={() => props.onOpen(replayId)} title="Open the replay run">
            <code>{replayId}</code>
          </button>
        ) : null}
        {replayState ? <span class={`pill ops-state ops-state-${replayState}`} data-testid="replay-state">{replayState}</span> : null}
      </div>
      {problem ? <p class="error" role="alert" data-testid="replay-error">{problem}</p> : null}
      {differences === null ? null : differences.length === 0 ? (
        <p class="ok-text" data-testid="replay-same">The replay matches the original: same inputs and outputs at every step.</p>
      ) : (
        <table class="ops-table ops-diff" data-testid="replay-diff">
          <thead>
            <tr><th>Step</th><th>Differs in</th><th>Original</th><th>Replay</th></tr>
          </thead>
          <tbody>
            {differences.map((d) => (
              <tr key={`${d.step_key}/${d.field}`} data-testid={`diff-row-${d.step_key}`} data-field={d.field}>
                <td><code>{d.step_key}</code></td>
                <td>{d.field === 'presence' ? 'ran in only one' : d.field}</td>
                <td><pre class="ops-json" data-testid="diff-original">{json(d.original)}</pre></td>
                <td><pre class="ops-json" data-testid="diff-replayed">{json(d.replayed)}</pre></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** A step's recorded input and output and the bag right after it (secrets already redacted by the runtime). */
export function StepInspector(props: { step: StepSummary }) {
  const { step } = props;
  return (
    <div class="ops-step-inspect" data-testid={`step-inspect-${step.step_key}`}>
      <div>
        <h5>Input</h5>
        <pre class="ops-json" data-testid="step-input">{json(step.input)}</pre>
      </div>
      <div>
        <h5>Output</h5>
        <pre class="ops-json" data-testid="step-output">{json(step.output)}</pre>
      </div>
      <div>
        <h5>Bag after this step</h5>
        <pre class="ops-json" data-testid="step-bag">{step.bag_after ? json(step.bag_after) : step.step_key.includes('#') ? 'Recorded once the whole foreach step is done.' : 'Not recorded (the step did not complete).'}</pre>
      </div>
    </div>
  );
}
