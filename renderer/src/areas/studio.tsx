import { useEffect, useRef, useState } from 'preact/hooks';
import type { PluginInfo, PluginLoadFailure, PluginRunResult, TesseraClient } from '../../../main/common/api.js';
import type { ErrorCode } from '../../../main/common/errors.js';
import { isTesseraError } from '../../../main/common/errors.js';

/** What an author should look at first when a run fails with one of these codes. */
const HINTS: Partial<Record<ErrorCode, string>> = {
  PLUGIN_TIMEOUT: 'The plugin ran past its CPU limit or never settled — look for loops or promises that never resolve.',
  PLUGIN_MEMORY_EXCEEDED: 'The plugin went over its memory limit and its isolate was disposed — look for data that grows without bound.',
  PLUGIN_OUTPUT_INVALID: "The plugin returned something its kind does not accept — a policy must return {verdict: 'ACK' | 'NACK' | 'ASK', reason}.",
  PLUGIN_FAILED: 'The plugin threw, or used something the sandbox forbids (Date.now, Math.random, timers, network) — use ctx.now and capabilities instead.',
  CAPABILITY_DENIED: 'A capability call was refused or failed — check that plugin.json requests it, that an http.fetch origin is listed, and that the service answers.',
  PERMIT_INVALID: 'An effect capability (http.fetch, io.say) needs a valid permit for this exact input — Studio runs get one for the capabilities plugin.json declares.',
  VALIDATION_FAILED: "The input or the logical time was refused — check it against the plugin's input_schema and use an ISO-8601 time.",
  SANDBOX_UNAVAILABLE: 'The sandbox host is down or restarting — try again in a moment; `tessera doctor` shows whether isolates can run here.',
  PLUGIN_NOT_FOUND: 'The plugin is no longer loaded, or its folder now holds another version — reload the list, or load the folder again.',
  PLUGIN_TAMPERED: 'A file changed after the plugin was signed — build and sign it again (tessera plugin build DIR, tessera plugin sign DIR --key KEY).',
  PLUGIN_UNSIGNED: 'The folder has no plugin.sig — sign it: tessera plugin sign DIR --key KEY.',
  KEY_UNKNOWN: 'This runtime does not trust the key that signed the plugin — trust it with tessera trust add KEY.pub, then load the folder again.',
  KEY_REVOKED: 'The key that signed the plugin was revoked on this device — sign it with another key.',
  PLUGIN_MANIFEST_INVALID: 'plugin.json is missing or not valid — the message names the field.',
  PAYLOAD_TOO_LARGE: 'The input is over the 256 KiB limit.',
};

/** An error to explain: a runtime error carries its code; a problem found locally (bad JSON) has none. */
interface Problem {
  code?: string;
  message: string;
}

function toProblem(err: unknown): Problem {
  return isTesseraError(err) ? { code: err.code, message: err.message } : { message: err instanceof Error ? err.message : String(err) };
}

const pretty = (value: unknown) => JSON.stringify(value, null, 2);

/** `b3:0123456789abcdef…` → `b3:01234567…` — enough to tell keys apart at a glance; the full id is in the title. */
function shortId(id: string): string {
  const colon = id.indexOf(':');
  return id.length > colon + 13 ? `${id.slice(0, colon + 13)}…` : id;
}

function exampleInput(info: PluginInfo): string {
  return 'example_input' in info.manifest ? pretty(info.manifest.example_input) : '{}';
}

/** Plugin Studio: plugin authors try loaded, signed plugins against the real sandbox with production limits (seed 004). */
export function StudioArea(props: { client: TesseraClient }) {
  const { client } = props;
  const [plugins, setPlugins] = useState<PluginInfo[] | null>(null);
  const [listError, setListError] = useState<Problem | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [failures, setFailures] = useState<PluginLoadFailure[]>([]);

  /** Refresh the list and the failed folders; `select` picks a plugin (one just loaded) instead of keeping the selection. */
  const load = (select?: string) => {
    setListError(null);
    // Failures are an author's view: a transport or role that cannot list them shows the plugins anyway.
    client.pluginFailures().then(setFailures, () => setFailures([]));
    return client.listPlugins().then(
      (list) => {
        setPlugins(list);
        // Keep the selection when it survived the reload, else pick the first plugin.
        setSelected((key) => (select && list.some((p) => p.key === select) ? select : key && list.some((p) => p.key === key) ? key : list[0]?.key ?? null));
      },
      (err: unknown) => setListError(toProblem(err)),
    );
  };
  useEffect(() => {
    void load();
  }, [client]);

  const current = plugins?.find((p) => p.key === selected) ?? null;

  return (
    <section class="studio">
      <div class="toolbar">
        <h2>Plugin Studio</h2>
        <button type="button" onClick={() => void load()}>Reload list</button>
      </div>
      <LoadFolder client={client} onLoaded={(info) => void load(info.key)} onFailed={() => void load()} />
      {failures.length > 0 ? <FailedFolders client={client} failures={failures} onChange={(info) => void load(info?.key)} /> : null}
      {listError ? <ErrorBox problem={listError} /> : null}
      {plugins === null && !listError ? <p class="hint" role="status">Loading plugins…</p> : null}
      {plugins !== null && plugins.length === 0 ? <EmptyState /> : null}
      {plugins !== null && plugins.length > 0 ? (
        <div class="studio-layout">
          <PluginList plugins={plugins} selected={selected} onSelect={setSelected} />
          {current ? <PluginBench key={current.key} client={client} info={current} onReloaded={(info) => void load(info.key)} onFailed={() => void load()} /> : null}
        </div>
      ) : null}
    </section>
  );
}

/** Load a plugin folder of this device into the running runtime: no restart. */
function LoadFolder(props: { client: TesseraClient; onLoaded: (info: PluginInfo) => void; onFailed: () => void }) {
  const [dir, setDir] = useState('');
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<{ loaded: PluginInfo } | { problem: Problem } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const folder = dir.trim();
    if (folder === '') return setOutcome({ problem: { message: 'Give the path of a plugin folder on this device (the folder holding plugin.json).' } });
    setBusy(true);
    setOutcome(null);
    try {
      const loaded = await props.client.loadPlugin({ dir: folder });
      setOutcome({ loaded });
      props.onLoaded(loaded);
    } catch (err) {
      setOutcome({ problem: toProblem(err) });
      props.onFailed();
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="studio-card studio-form" onSubmit={submit} aria-label="Load a plugin folder">
      <label for="studio-load-dir">Load a plugin folder (verified like at start; the same version with new code replaces the loaded one)</label>
      <div class="inline">
        <input id="studio-load-dir" data-testid="studio-load-dir" class="wide" value={dir} placeholder="/path/to/my-plugin" spellcheck={false} onInput={(e) => setDir((e.target as HTMLInputElement).value)} />
        <button type="submit" data-testid="studio-load" disabled={busy}>{busy ? 'Loading…' : 'Load'}</button>
      </div>
      {outcome && 'loaded' in outcome ? (
        <p class="hint" role="status" data-testid="studio-load-status">Loaded {outcome.loaded.name} {outcome.loaded.version} ({shortId(outcome.loaded.cid)}).</p>
      ) : null}
      {outcome && 'problem' in outcome ? <ErrorBox problem={outcome.problem} /> : null}
    </form>
  );
}

/** Plugin folders whose latest load failed, with the reason, and a way to try each again once it is fixed. */
function FailedFolders(props: { client: TesseraClient; failures: PluginLoadFailure[]; onChange: (info?: PluginInfo) => void }) {
  const [busy, setBusy] = useState<string | null>(null);
  const retry = async (dir: string) => {
    setBusy(dir);
    try {
      props.onChange(await props.client.loadPlugin({ dir }));
    } catch {
      // The failure list shows the new reason.
      props.onChange();
    } finally {
      setBusy(null);
    }
  };
  return (
    <section class="studio-card" aria-labelledby="studio-failures-title" data-testid="plugin-failures">
      <h3 id="studio-failures-title">Plugins that did not load</h3>
      <ul class="studio-failures">
        {props.failures.map((f) => (
          <li key={f.dir} class="studio-error" data-testid="plugin-failure" data-code={f.error.code}>
            <p><code>{f.dir}</code></p>
            <p><strong>{f.error.code}</strong> {f.error.message}</p>
            {HINTS[f.error.code as ErrorCode] ? <p class="hint">{HINTS[f.error.code as ErrorCode]}</p> : null}
            <p class="hint">
              {new Date(f.at).toLocaleString()}{' '}
              <button type="button" class="secondary" data-testid="plugin-failure-retry" disabled={busy === f.dir} onClick={() => void retry(f.dir)}>{busy === f.dir ? 'Loading…' : 'Try again'}</button>
            </p>
          </li>
        ))}
      </ul>
    </section>
  );
}

function EmptyState() {
  return (
    <div class="studio-empty" data-testid="plugin-list-empty">
      <p>No plugins are loaded.</p>
      <p class="hint">Create, build and sign one from the command line:</p>
      <ol>
        <li><code>tessera plugin init DIR --kind policy</code> — a plugin folder with a manifest, source and an example input.</li>
        <li><code>tessera plugin build DIR</code> — bundles <code>src/index.ts</code> into the entry and records its content id.</li>
        <li><code>tessera plugin sign DIR --key KEY</code> — signs the manifest (<code>tessera keygen --out KEY</code> makes a key).</li>
        <li><code>tessera trust add KEY.pub</code> — lets this runtime trust your key.</li>
      </ol>
      <p class="hint">Then load the folder above. Plugins in the <code>plugins/</code> folder of the data folder are verified and loaded when the runtime starts.</p>
    </div>
  );
}

function PluginList(props: { plugins: PluginInfo[]; selected: string | null; onSelect: (key: string) => void }) {
  return (
    <nav class="studio-list" aria-label="Loaded plugins">
      <ul data-testid="plugin-list">
        {props.plugins.map((p) => (
          <li key={p.key}>
            <button
              type="button"
              class={p.key === props.selected ? 'studio-item selected' : 'studio-item'}
              aria-pressed={p.key === props.selected}
              data-testid={`plugin-item-${p.name}`}
              onClick={() => props.onSelect(p.key)}
            >
              <span class="studio-item-name">{p.name}</span>
              <span class="studio-item-version">{p.version}</span>
              <span class="studio-item-meta">
                <span class="pill">{p.kind}</span>
                <span class={p.trust === 'trusted' ? 'pill ok' : 'pill warn'}>{p.trust}</span>
                <span class="studio-keyid" title={p.publisher.keyid}>{shortId(p.publisher.keyid)}</span>
              </span>
              <span class="studio-item-caps">{p.capabilities.length ? p.capabilities.join(', ') : 'no capabilities'}</span>
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}

/** One plugin's details and its test bench. Keyed by plugin, so switching plugins starts from a clean state. */
function PluginBench(props: { client: TesseraClient; info: PluginInfo; onReloaded: (info: PluginInfo) => void; onFailed: () => void }) {
  const { client, info } = props;
  const [reloading, setReloading] = useState(false);
  const [input, setInput] = useState(() => exampleInput(info));
  const [now, setNow] = useState('');
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<PluginRunResult | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  // Only the latest run may write its outcome: an earlier, slower one must not overwrite it.
  const runId = useRef(0);
  useEffect(() => () => void (runId.current += 1), []);

  const run = async (e: Event) => {
    e.preventDefault();
    const id = ++runId.current;
    setResult(null);
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch (err) {
      return setProblem({ message: `The input is not valid JSON: ${err instanceof Error ? err.message : String(err)}` });
    }
    const at = now.trim();
    if (at !== '' && !Number.isFinite(Date.parse(at))) {
      return setProblem({ message: `“${at}” is not a time; use ISO-8601 like 2025-01-31T09:00:00Z, or leave it empty for the runtime clock.` });
    }
    setProblem(null);
    setRunning(true);
    try {
      const outcome = await client.testPlugin({ plugin: info.key, input: parsed, ...(at === '' ? {} : { now: at }) });
      if (id === runId.current) setResult(outcome);
    } catch (err) {
      if (id === runId.current) setProblem(toProblem(err));
    } finally {
      if (id === runId.current) setRunning(false);
    }
  };

  /** Load the plugin again from its folder (after a rebuild and signature): the list then shows what loaded. */
  const reload = async () => {
    setReloading(true);
    setProblem(null);
    try {
      props.onReloaded(await client.loadPlugin({ plugin: info.key }));
    } catch (err) {
      setProblem(toProblem(err));
      props.onFailed();
    } finally {
      setReloading(false);
    }
  };

  return (
    <div class="studio-bench">
      <section class="studio-card" aria-labelledby="studio-plugin-title">
        <h3 id="studio-plugin-title">{info.name} <span class="studio-item-version">{info.version}</span></h3>
        <button type="button" class="secondary" data-testid="studio-reload" disabled={reloading} onClick={() => void reload()}>{reloading ? 'Reloading…' : 'Reload from its folder'}</button>
        {typeof info.manifest.description === 'string' ? <p class="hint">{info.manifest.description}</p> : null}
        <dl class="studio-facts">
          <dt>Kind</dt><dd>{info.kind}</dd>
          <dt>Trust</dt><dd>{info.trust}</dd>
          <dt>Publisher</dt><dd>{info.publisher.name} <code title={info.publisher.keyid}>{shortId(info.publisher.keyid)}</code></dd>
          <dt>cid</dt><dd><code class="studio-cid">{info.cid}</code></dd>
          <dt>entry_cid</dt><dd><code class="studio-cid">{info.entry_cid}</code></dd>
          <dt>Capabilities</dt><dd>{info.capabilities.length ? info.capabilities.join(', ') : 'none'}</dd>
          <dt>Limits</dt><dd>{info.limits.memoryMb} MB memory · {info.limits.timeoutMs} ms CPU · {info.limits.deadlineMs} ms deadline</dd>
        </dl>
        <details open>
          <summary>Manifest</summary>
          <pre class="studio-json" data-testid="plugin-manifest">{pretty(info.manifest)}</pre>
        </details>
      </section>

      <form class="studio-card studio-form" onSubmit={run} aria-label={`Run ${info.name}`}>
        <label for="studio-input">Input (JSON)</label>
        <textarea
          id="studio-input"
          data-testid="studio-input"
          rows={10}
          spellcheck={false}
          value={input}
          onInput={(e) => setInput((e.target as HTMLTextAreaElement).value)}
        />
        <div class="inline">
          <label for="studio-now">Logical time (now)</label>
          <input
            id="studio-now"
            data-testid="studio-now"
            class="wide"
            value={now}
            placeholder="empty = runtime clock"
            title="An ISO-8601 time such as 2025-01-31T09:00:00Z; the plugin sees it as ctx.now."
            onInput={(e) => setNow((e.target as HTMLInputElement).value)}
          />
          <button type="submit" data-testid="studio-run" disabled={running}>{running ? 'Running…' : 'Run'}</button>
          <button type="button" class="secondary" onClick={() => setInput(exampleInput(info))}>Reset input</button>
        </div>
      </form>

      <div class="studio-outcome" aria-live="polite">
        {problem ? <ErrorBox problem={problem} /> : null}
        {result ? <RunResult result={result} /> : null}
      </div>
    </div>
  );
}

function ErrorBox(props: { problem: Problem }) {
  const { code, message } = props.problem;
  // A plugin whose capability call failed (a refused origin, an unreachable service) fails as PLUGIN_FAILED with the
  // capability's error inside
  // (the sandbox names it CapabilityError): the capability or permit hint helps, not the one about forbidden globals.
  const capabilityFailed = code === 'PLUGIN_FAILED' && /\bCapabilityError\b/.test(message);
  const hint = capabilityFailed ? (/permit/.test(message) ? HINTS.PERMIT_INVALID : HINTS.CAPABILITY_DENIED) : code ? HINTS[code as ErrorCode] : undefined;
  return (
    <div class="studio-error" role="alert" data-testid="studio-error" data-code={code ?? 'LOCAL'}>
      <p><strong>{code ?? 'Not sent'}</strong> {message}</p>
      {hint ? <p class="hint">{hint}</p> : null}
    </div>
  );
}

function isDecision(value: unknown): value is { verdict: 'ACK' | 'NACK' | 'ASK'; reason: string; evidence?: unknown; metrics?: Record<string, number> } {
  return typeof value === 'object' && value !== null && ['ACK', 'NACK', 'ASK'].includes((value as { verdict?: unknown }).verdict as string);
}

function RunResult(props: { result: PluginRunResult }) {
  const r = props.result;
  const decision = r.plugin.kind === 'policy' && isDecision(r.output) ? r.output : null;
  return (
    <section class="studio-card" data-testid="studio-result" aria-label="Result">
      {decision ? (
        <>
          <p class={`studio-verdict verdict-${decision.verdict.toLowerCase()}`} data-testid="studio-verdict" data-verdict={decision.verdict}>{decision.verdict}</p>
          <p class="studio-reason">{decision.reason}</p>
          {decision.evidence !== undefined ? (
            <>
              <h4>Evidence</h4>
              <pre class="studio-json">{pretty(decision.evidence)}</pre>
            </>
          ) : null}
          {decision.metrics && Object.keys(decision.metrics).length ? (
            <>
              <h4>Metrics</h4>
              <dl class="studio-facts">
                {Object.entries(decision.metrics).map(([k, v]) => [<dt key={`${k}-k`}>{k}</dt>, <dd key={`${k}-v`}>{v}</dd>])}
              </dl>
            </>
          ) : null}
        </>
      ) : (
        <>
          <h4>Output</h4>
          <pre class="studio-json">{pretty(r.output)}</pre>
        </>
      )}
      <dl class="studio-facts">
        <dt>Duration</dt><dd>{r.duration_ms.toFixed(1)} ms</dd>
        <dt>CPU</dt><dd>{r.cpu_us} µs</dd>
        <dt>Heap used</dt><dd>{(r.heap_used_bytes / 1024).toFixed(0)} KiB</dd>
        <dt>Logical time</dt><dd>{r.now}</dd>
        <dt>output_cid</dt><dd><code class="studio-cid">{r.output_cid}</code></dd>
        <dt>Trace</dt><dd><code>{r.trace_id}</code></dd>
      </dl>
      <h4>Capability calls</h4>
      {r.capability_calls.length === 0 ? (
        <p class="hint" data-testid="studio-capability-calls">No capability calls.</p>
      ) : (
        <ul class="studio-calls" data-testid="studio-capability-calls">
          {r.capability_calls.map((c, i) => (
            <li key={i}>
              <code>{c.capability}</code> <span class={c.ok ? 'pill ok' : 'pill err'}>{c.ok ? 'ok' : 'denied'}</span> {c.summary}
              {c.error ? <span class="error"> — {c.error}</span> : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
