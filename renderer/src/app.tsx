import { useEffect, useRef, useState } from 'preact/hooks';
import type { RuntimeInfoView, TesseraClient } from '../../main/common/api.js';
import type { AreaId, SessionView } from '../../main/common/roles.js';
import { canSeeArea } from '../../main/common/roles.js';
import { JourneyArea } from './areas/journey.js';
import { OpsArea } from './areas/ops.js';
import { RedeemArea, redeemApiFor } from './areas/redeem.js';
import { StudioArea } from './areas/studio.js';
import { VerifyArea } from './areas/verify.js';
import { SyncStatusBar } from './sync-status.js';

export const AREAS: ReadonlyArray<{ id: AreaId; label: string }> = [
  { id: 'journey', label: 'Journey Guide' },
  { id: 'redeem', label: 'Redeem' },
  { id: 'studio', label: 'Plugin Studio' },
  { id: 'ops', label: 'Ops' },
  { id: 'verify', label: 'Verify' },
];
export type { AreaId };

function areaFromHash(visible: ReadonlyArray<{ id: AreaId }>): AreaId | undefined {
  const id = location.hash.replace(/^#\/?/, '');
  return visible.find((a) => a.id === id)?.id ?? visible[0]?.id;
}

function useOnline(): boolean {
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const update = () => setOnline(navigator.onLine);
    addEventListener('online', update);
    addEventListener('offline', update);
    return () => {
      removeEventListener('online', update);
      removeEventListener('offline', update);
    };
  }, []);
  return online;
}

/** How a transport turns an operator session token into a client (HTTP); absent where the shell elevates itself (IPC). */
export type ElevatedClientFactory = (token: string, onEnded: () => void) => TesseraClient;

/**
 * The UI as the holder of its credential may use it (main/common/roles.ts): a kiosk started for travellers shows
 * only the Journey Guide and Verify. An operator unlocks the rest with the device's PIN for a short time; the
 * kiosk locks again at "Lock", when the session expires, or when the runtime ends it.
 */
export function App(props: { client: TesseraClient; transport: 'ipc' | 'http'; elevate?: ElevatedClientFactory }) {
  const base = props.client;
  const [elevated, setElevated] = useState<{ client: TesseraClient; expiresAt: number } | null>(null);
  const client = elevated?.client ?? base;
  const [session, setSession] = useState<SessionView | null>(null);
  const [sessionError, setSessionError] = useState<string | null>(null);
  const [info, setInfo] = useState<RuntimeInfoView | null>(null);
  const [linked, setLinked] = useState(false);
  const [unlocking, setUnlocking] = useState(false);
  // Bumped when the credential's session changes under the same client (IPC elevates the window itself).
  const [generation, setGeneration] = useState(0);
  const online = useOnline();

  useEffect(() => {
    client.session().then(
      (s) => {
        setSession(s);
        setSessionError(null);
      },
      (err: Error) => setSessionError(err.message),
    );
    client.info().then(setInfo, () => setInfo(null));
    // The status bar's link to the runtime: a subscription whose connection state is the answer.
    return client.subscribe(['runtime.**'], () => undefined, setLinked);
  }, [client, generation]);

  const lock = () => {
    const ending = elevated;
    setElevated(null);
    if (ending && props.transport === 'http') void ending.client.lock().catch(() => undefined);
    if (props.transport === 'ipc') void base.lock().catch(() => undefined).then(() => setGeneration((g) => g + 1));
  };
  // The session ends by itself at its expiry: lock a little before, so no request is refused half-way.
  useEffect(() => {
    if (!elevated) return;
    const timer = setTimeout(lock, Math.max(0, elevated.expiresAt - Date.now() - 1000));
    return () => clearTimeout(timer);
  }, [elevated]);

  // A kiosk started for travellers gets the kiosk layout (large type, 48 px targets: styles.css), and keeps it while
  // an operator has it unlocked: it is still the same screen at arm's length.
  useEffect(() => {
    if (session && !elevated && session.kind !== 'unlocked') document.documentElement.classList.toggle('kiosk', session.kind === 'role' && session.roles.length === 1 && session.roles[0] === 'traveller');
  }, [session, elevated]);

  const roles = session?.roles ?? [];
  const visible = AREAS.filter((a) => canSeeArea(a.id, roles));
  const [, setHash] = useState(location.hash);
  useEffect(() => {
    const onHash = () => setHash(location.hash);
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const area = areaFromHash(visible);
  const canUnlock = session !== null && session.kind !== 'device' && session.kind !== 'unlocked' && session.pin_set && (props.elevate !== undefined || props.transport === 'ipc');

  const onUnlocked = (token: string, expiresAt: string) => {
    setUnlocking(false);
    if (props.elevate) setElevated({ client: props.elevate(token, () => setElevated(null)), expiresAt: Date.parse(expiresAt) });
    else setElevated({ client: base, expiresAt: Date.parse(expiresAt) });
    setGeneration((g) => g + 1);
  };

  return (
    <div class="shell">
      <header class="topbar">
        <span class="brand">Tessera</span>
        <nav aria-label="Areas">
          {visible.map((a) => (
            <a key={a.id} href={`#/${a.id}`} class={a.id === area ? 'active' : ''} aria-current={a.id === area ? 'page' : undefined} data-area={a.id}>
              {a.label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        {session?.kind === 'unlocked' || elevated ? (
          <button type="button" class="operator" data-testid="lock" onClick={lock}>
            Lock <Countdown until={elevated?.expiresAt ?? (session?.expires_at ? Date.parse(session.expires_at) : Date.now())} />
          </button>
        ) : canUnlock ? (
          <button type="button" class="operator" data-testid="unlock" onClick={() => setUnlocking(true)}>
            Operator
          </button>
        ) : null}
      </header>
      {unlocking ? <UnlockDialog client={base} onUnlocked={onUnlocked} onCancel={() => setUnlocking(false)} /> : null}
      <main class="area" data-testid={`area-${area ?? 'none'}`}>
        {sessionError ? <p class="error" role="alert">{sessionError}</p> : null}
        {session === null && !sessionError ? <p class="hint">Connecting…</p> : null}
        {area === 'journey' && <JourneyArea client={client} />}
        {area === 'redeem' && <RedeemArea api={redeemApiFor(client)} />}
        {area === 'studio' && <StudioArea client={client} />}
        {area === 'ops' && <OpsArea client={client} />}
        {area === 'verify' && <VerifyArea client={client} />}
        {session !== null && visible.length === 0 ? <p class="hint">This credential holds no role the UI can show.</p> : null}
      </main>
      <footer class="statusbar" role="status">
        <span class={online ? 'pill ok' : 'pill warn'} data-testid="network">{online ? 'Online' : 'Offline'}</span>
        <span class={linked ? 'pill ok' : 'pill warn'} data-testid="runtime-link">{linked ? 'Runtime connected' : 'Runtime disconnected'}</span>
        <span class="pill">{props.transport === 'ipc' ? 'Desktop app' : 'Browser'}</span>
        {session ? <SyncStatusBar client={client} roles={roles} /> : null}
        <span class="spacer" />
        <span data-testid="version">{info ? `${info.name} ${info.version}` : 'runtime unreachable'}</span>
      </footer>
    </div>
  );
}

function Countdown(props: { until: number }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const left = Math.max(0, Math.round((props.until - now) / 1000));
  return <span class="countdown">{`${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`}</span>;
}

/** The PIN pad: digits only, the runtime counts the tries and says when to wait. */
function UnlockDialog(props: { client: TesseraClient; onUnlocked: (token: string, expiresAt: string) => void; onCancel: () => void }) {
  const [pin, setPin] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy || pin === '') return;
    setBusy(true);
    try {
      const session = await props.client.unlock(pin);
      props.onUnlocked(session.token, session.expires_at);
    } catch (err) {
      const error = err as Error & { code?: string; details?: { attempts_left?: number; retry_after_seconds?: number } };
      setProblem(error.code === 'PIN_LOCKED' ? `Too many wrong PINs. Try again in ${error.details?.retry_after_seconds ?? 30} s.` : error.message);
      setPin('');
      input.current?.focus();
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="dialog-backdrop" onKeyDown={(e) => e.key === 'Escape' && props.onCancel()}>
      <form class="dialog unlock" role="dialog" aria-modal="true" aria-labelledby="unlock-title" onSubmit={submit}>
        <h2 id="unlock-title">Operator unlock</h2>
        <label for="pin">Operator PIN</label>
        <input id="pin" ref={input} type="password" inputMode="numeric" autocomplete="off" pattern="[0-9]*" maxLength={12} value={pin} onInput={(e) => setPin((e.target as HTMLInputElement).value.replace(/\D/g, ''))} />
        {problem ? <p class="error" role="alert" data-testid="unlock-error">{problem}</p> : null}
        <div class="actions">
          <button type="submit" disabled={busy || pin.length < 4}>Unlock</button>
          <button type="button" onClick={props.onCancel}>Cancel</button>
        </div>
        <p class="hint">Unlocks Ops, Plugin Studio and Redeem on this kiosk for 15 minutes.</p>
      </form>
    </div>
  );
}
