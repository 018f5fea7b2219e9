/**
 * Redeem: field staff scan or type a traveller's entitlement code and get a verdict they read from two metres
 * (issue 14 point 6). Every check runs on this device (the runtime's entitlements module), so the screen works with
 * the network cut; only the runtime itself must answer, and when it does not the screen says so.
 *
 * States: scanning (camera + type/paste/hand-scanner box) → sending → verdict (or "runtime unreachable") → back to
 * scanning by "Next scan" or by itself after {@link AUTO_NEXT_MS}. The camera runs only while scanning is shown.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { startScanner } from '../scanner/scanner.js';
import type { CameraProblem, ScanTiming } from '../scanner/scanner.js';
import type { RedeemAnswer, RedeemApi, RedemptionRecord, Venue } from './redeem-api.js';
import { UnreachableScreen, VERDICTS, VerdictScreen, formatWhen } from './redeem-verdict.js';
import type { SyncStatus } from '../../../main/common/cloud.js';
import { leaseName } from '../sync-model.js';
import { syncStateChanged } from '../sync-status.js';

export type { RedeemApi } from './redeem-api.js';
export { redeemApiFor } from './redeem-api.js';

/** After a verdict the screen returns to scanning by itself (a person may also press "Next scan"). */
export const AUTO_NEXT_MS = 12_000;
/** The same code seen again by the camera this soon after its verdict is ignored (the traveller is still holding it up). */
export const SAME_CODE_COOLDOWN_MS = 8_000;

const VENUE_KEY = 'tessera.redeem.venue';
const SCREEN_KEY = 'tessera.redeem.screen';

function stored(key: string): string {
  try {
    return localStorage.getItem(key) ?? '';
  } catch {
    return '';
  }
}
function store(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // A browser without storage keeps the value for this page only.
  }
}

type Phase =
  | { kind: 'scanning' }
  | { kind: 'sending'; code: string }
  | { kind: 'verdict'; code: string; answer: RedeemAnswer; shownAt: number; timing?: ScanTiming }
  | { kind: 'unreachable'; code: string }
  | { kind: 'failed'; code: string; message: string };

interface Failure {
  code?: string;
  message: string;
}

export function RedeemArea(props: { api: RedeemApi }) {
  const { api } = props;
  const [venue, setVenue] = useState(() => stored(VENUE_KEY));
  const [screen, setScreen] = useState(() => stored(SCREEN_KEY));
  const [venues, setVenues] = useState<Venue[]>([]);
  const [phase, setPhase] = useState<Phase>({ kind: 'scanning' });
  const [undoing, setUndoing] = useState(false);
  const [undoProblem, setUndoProblem] = useState<string | null>(null);
  const [historyVersion, setHistoryVersion] = useState(0);
  const [now, setNow] = useState(Date.now());
  const lastCode = useRef<{ code: string; at: number } | null>(null);
  const [autoNextAt, setAutoNextAt] = useState<number | undefined>(undefined);

  useEffect(() => {
    api.venues().then(setVenues, () => setVenues([]));
  }, [api]);
  // The device's leases (issue 16): read again after every redemption, which uses them. null: no sync on this runtime.
  const [sync, setSync] = useState<SyncStatus | null>(null);
  useEffect(() => {
    let current = true;
    api.syncStatus?.().then(
      (s) => current && setSync(s),
      () => current && setSync(null),
    );
    return () => {
      current = false;
    };
  }, [api, historyVersion]);
  const venueName = useCallback((id: string) => venues.find((v) => v.id === id)?.name ?? id, [venues]);

  const send = useCallback(
    async (code: string, timing?: ScanTiming) => {
      const text = code.trim();
      if (text === '') return;
      setPhase({ kind: 'sending', code: text });
      setUndoProblem(null);
      try {
        const answer = await api.redeem({ code: text, venue: venue.trim(), ...(screen.trim() ? { screen: screen.trim() } : {}) });
        lastCode.current = { code: text, at: Date.now() };
        setPhase({ kind: 'verdict', code: text, answer, shownAt: Date.now(), ...(timing ? { timing } : {}) });
      } catch (err) {
        const failure = err as Failure;
        if (failure.code === 'NOT_READY') setPhase({ kind: 'unreachable', code: text });
        else setPhase({ kind: 'failed', code: text, message: failure.code ? `${failure.message} (${failure.code})` : failure.message });
      } finally {
        setHistoryVersion((v) => v + 1);
        syncStateChanged();
      }
    },
    [api, venue, screen],
  );

  const onScanned = useCallback(
    (code: string, timing: ScanTiming) => {
      const last = lastCode.current;
      if (last && last.code === code && Date.now() - last.at < SAME_CODE_COOLDOWN_MS) return false;
      void send(code, timing);
      return true;
    },
    [send],
  );

  const next = useCallback(() => {
    setAutoNextAt(undefined);
    setUndoProblem(null);
    setPhase({ kind: 'scanning' });
  }, []);

  // A verdict returns to scanning by itself; the clock also drives the undo countdown.
  const showing = phase.kind === 'verdict' || phase.kind === 'failed';
  useEffect(() => {
    if (!showing) return;
    setAutoNextAt(Date.now() + AUTO_NEXT_MS);
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [phase, showing]);
  useEffect(() => {
    if (autoNextAt !== undefined && now >= autoNextAt && !undoing) next();
  }, [now, autoNextAt, undoing, next]);

  const undo = async (redemptionId: string) => {
    setUndoing(true);
    setUndoProblem(null);
    try {
      const answer = await api.undo(redemptionId);
      setPhase((p) => ({ kind: 'verdict', code: p.kind === 'scanning' ? '' : p.code, answer, shownAt: Date.now() }));
    } catch (err) {
      const failure = err as Failure;
      setUndoProblem(failure.code === 'NOT_READY' ? 'The runtime is not answering: the redemption stands.' : failure.message);
    } finally {
      setUndoing(false);
      setHistoryVersion((v) => v + 1);
      syncStateChanged();
    }
  };

  const canScan = venue.trim() !== '';
  return (
    <section class="redeem" data-testid="redeem" data-phase={phase.kind}>
      <div class="redeem-bar">
        <h2>Redeem</h2>
        <label class="redeem-field">
          <span>Venue</span>
          <input
            data-testid="redeem-venue"
            list="redeem-venues"
            value={venue}
            autocomplete="off"
            placeholder="venue id"
            onInput={(e) => {
              const v = (e.target as HTMLInputElement).value;
              setVenue(v);
              store(VENUE_KEY, v.trim());
            }}
          />
          <datalist id="redeem-venues">
            {venues.map((v) => (
              <option key={v.id} value={v.id}>
                {v.name ?? v.id}
              </option>
            ))}
          </datalist>
        </label>
        <label class="redeem-field">
          <span>Screen</span>
          <input
            data-testid="redeem-screen"
            value={screen}
            autocomplete="off"
            placeholder="e.g. gate 1"
            onInput={(e) => {
              const v = (e.target as HTMLInputElement).value;
              setScreen(v);
              store(SCREEN_KEY, v.trim());
            }}
          />
        </label>
      </div>
      <div class="redeem-main">
        {phase.kind === 'verdict' ? (
          <VerdictScreen
            answer={phase.answer}
            venueName={venueName}
            onNext={next}
            now={now}
            undoing={undoing}
            undoProblem={undoProblem}
            denyListAsOf={sync?.deny_list_as_of ?? null}
            {...(phase.timing ? { timing: phase.timing } : {})}
            {...(autoNextAt !== undefined && !undoing ? { autoNextAt } : {})}
            {...(phase.answer.redemption ? { onUndo: () => void undo(phase.answer.redemption!.id) } : {})}
          />
        ) : phase.kind === 'unreachable' ? (
          <UnreachableScreen onRetry={() => void send(phase.code)} onNext={next} />
        ) : phase.kind === 'failed' ? (
          <section class="redeem-verdict tone-caution" data-testid="redeem-failed" role="alert">
            <h3 class="redeem-verdict-words">NOT CHECKED</h3>
            <p class="redeem-verdict-message">{phase.message}</p>
            <div class="redeem-actions">
              <button type="button" class="redeem-next" onClick={next}>
                Next scan
              </button>
            </div>
          </section>
        ) : (
          <ScanPanel sending={phase.kind === 'sending' ? phase.code : null} disabled={!canScan} onScanned={onScanned} onTyped={(code) => void send(code)} />
        )}
      </div>
      {sync?.cloud ? <LeasePanel status={sync} now={now} /> : null}
      <RedeemHistory api={api} version={historyVersion} venueName={venueName} />
    </section>
  );
}

/** Camera preview plus the type/paste box; a USB hand scanner types into the box and presses Enter. */
function ScanPanel(props: { sending: string | null; disabled: boolean; onScanned: (code: string, timing: ScanTiming) => boolean; onTyped: (code: string) => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [typed, setTyped] = useState('');
  const [problem, setProblem] = useState<{ problem: CameraProblem; message: string } | null>(null);
  const [liveAt, setLiveAt] = useState<number | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [decoded, setDecoded] = useState<string | null>(null);
  const onScanned = useRef(props.onScanned);
  onScanned.current = props.onScanned;
  const camera = !props.disabled && props.sending === null;

  useEffect(() => {
    if (!camera || !video.current) return;
    setProblem(null);
    const scanner = startScanner(video.current, {
      onLive: (at) => setLiveAt(at),
      onProblem: (p, message) => setProblem({ problem: p, message }),
      onCode: (text, timing) => {
        setDecoded(text);
        return onScanned.current(text, timing);
      },
    });
    return () => scanner.stop();
  }, [camera, attempt]);

  // Keep the box focused so that a hand scanner's keystrokes land in it.
  useEffect(() => {
    if (props.sending === null && !props.disabled) input.current?.focus();
  }, [props.sending, props.disabled]);

  const submit = (e: Event) => {
    e.preventDefault();
    if (props.disabled || typed.trim() === '') return;
    props.onTyped(typed);
    setTyped('');
  };
  return (
    <div class="redeem-scan" data-testid="redeem-scan">
      <div class="redeem-camera" data-testid="redeem-camera" data-live={liveAt !== null ? 'true' : 'false'} {...(liveAt !== null ? { 'data-first-frame-at': String(liveAt) } : {})}>
        <video ref={video} muted playsInline autoPlay aria-label="Camera preview" />
        {props.disabled ? <p class="redeem-camera-note">Enter this screen's venue above to start scanning.</p> : null}
        {props.sending !== null ? <p class="redeem-camera-note" data-testid="redeem-sending">Checking…</p> : null}
        {problem ? (
          <div class="redeem-camera-note" role="alert" data-testid="redeem-camera-problem" data-problem={problem.problem}>
            <p>{problem.message}</p>
            <button type="button" onClick={() => setAttempt((a) => a + 1)}>
              Try the camera again
            </button>
          </div>
        ) : null}
      </div>
      <form class="redeem-type" onSubmit={submit}>
        <label for="redeem-code">Code (type, paste or hand-scan)</label>
        <div class="redeem-type-row">
          <input
            id="redeem-code"
            ref={input}
            data-testid="redeem-code"
            value={typed}
            autocomplete="off"
            autocapitalize="characters"
            spellcheck={false}
            placeholder="TS1:…"
            disabled={props.disabled}
            onInput={(e) => setTyped((e.target as HTMLInputElement).value)}
          />
          <button type="submit" data-testid="redeem-submit" disabled={props.disabled || typed.trim() === ''}>
            Redeem
          </button>
        </div>
        {decoded ? (
          <p class="hint" data-testid="redeem-decoded">
            {`Camera read: ${decoded.length > 48 ? `${decoded.slice(0, 48)}…` : decoded}`}
          </p>
        ) : null}
      </form>
    </div>
  );
}

/** What this device redeemed, newest first, searchable (serial, title, venue: the runtime decides what matches). */
function RedeemHistory(props: { api: RedeemApi; version: number; venueName: (id: string) => string }) {
  const [query, setQuery] = useState('');
  const [asked, setAsked] = useState('');
  const [rows, setRows] = useState<RedemptionRecord[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    props.api.history(asked).then(
      (r) => {
        if (!current) return;
        setRows([...r].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)));
        setProblem(null);
      },
      (err: Failure) => {
        if (!current) return;
        setProblem(err.code === 'NOT_READY' ? 'The runtime is not answering: history cannot be shown now.' : `History is not available: ${err.message}`);
      },
    );
    return () => {
      current = false;
    };
  }, [props.api, props.version, asked]);
  const visible = useMemo(() => rows ?? [], [rows]);
  return (
    <section class="redeem-history" data-testid="redeem-history" aria-labelledby="redeem-history-title">
      <div class="redeem-history-bar">
        <h3 id="redeem-history-title">History</h3>
        <form
          class="inline"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            setAsked(query);
          }}
        >
          <input data-testid="redeem-history-q" aria-label="Search history" placeholder="serial, product or venue" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
          <button type="submit">Search</button>
        </form>
      </div>
      {problem ? (
        <p class="hint" data-testid="redeem-history-problem">
          {problem}
        </p>
      ) : null}
      <table class="events redeem-history-table">
        <thead>
          <tr>
            <th>Time</th>
            <th>Verdict</th>
            <th>Product</th>
            <th>Venue</th>
            <th>State</th>
          </tr>
        </thead>
        <tbody>
          {visible.length === 0 ? (
            <tr>
              <td colSpan={5} class="empty">
                {rows === null ? '…' : asked ? 'Nothing matches.' : 'No redemptions yet.'}
              </td>
            </tr>
          ) : (
            visible.map((r) => {
              const verdict = r.verdict ?? (r.action === 'undo' ? 'UNDONE' : 'REDEEMED');
              const look = VERDICTS[verdict as keyof typeof VERDICTS];
              return (
                <tr key={r.id} data-testid="redeem-history-row" data-id={r.id}>
                  <td>{formatWhen(r.at)}</td>
                  <td class={look ? `tone-text-${look.tone}` : ''}>{r.action === 'undo' ? 'Undo' : (look?.words ?? verdict)}</td>
                  <td>{r.title ?? r.product_ref ?? r.serial ?? ''}</td>
                  <td>{r.venue ? props.venueName(r.venue) : ''}</td>
                  <td>{r.undone_at ? `Undone ${formatWhen(r.undone_at, false)}` : ''}</td>
                </tr>
              );
            })
          )}
        </tbody>
      </table>
    </section>
  );
}

/**
 * The leases this device holds (issue 16 §5): how many uses of each pass it may redeem offline, until when. A pass
 * protected by `prevent` is redeemed here only within these; expired and returned leases are listed below the rest.
 */
function LeasePanel(props: { status: SyncStatus; now: number }) {
  const order = (state: string, exp: string) => (state === 'active' && Date.parse(exp) > props.now ? 0 : 1);
  const leases = [...props.status.leases].sort((a, b) => order(a.state, a.exp) - order(b.state, b.exp) || Date.parse(a.exp) - Date.parse(b.exp));
  return (
    <section class="redeem-leases" data-testid="redeem-leases" aria-labelledby="redeem-leases-title">
      <h3 id="redeem-leases-title">Leases on this device</h3>
      {leases.length === 0 ? (
        <p class="hint" data-testid="redeem-leases-empty">
          This device holds no leases: passes that need one are redeemed only while it is online.
        </p>
      ) : (
        <div class="table-scroll">
          <table class="events redeem-leases-table">
            <thead>
              <tr>
                <th>Pass</th>
                <th>Left</th>
                <th>Until</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {leases.map((l) => {
                const expired = l.state === 'active' && Date.parse(l.exp) <= props.now;
                const state = expired ? 'expired' : l.state;
                return (
                  <tr key={l.lease} data-testid="redeem-lease-row" data-lease={l.lease} data-state={state}>
                    <td title={l.serial}>{leaseName(l)}</td>
                    <td class={state === 'active' && l.left === 0 ? 'tone-text-caution' : ''}>{`${l.left} of ${l.rights}`}</td>
                    <td>{formatWhen(l.exp)}</td>
                    <td>{state}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
