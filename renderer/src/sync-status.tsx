/**
 * The status bar's cloud part (issue 16 §6): online / offline / syncing / not enrolled, the last sync, receipts not
 * yet uploaded and lease balances. Staff and operators only — a traveller kiosk asks nothing and shows nothing of it.
 * Read from `GET /api/sync` on mount, on every `sync.*` event and on a slow poll; a runtime without the sync module
 * (NOT_FOUND) or a credential that may not read it (FORBIDDEN) hides it for good.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { SyncStatus } from '../../main/common/cloud.js';
import type { TesseraClient } from '../../main/common/api.js';
import type { Role } from '../../main/common/roles.js';
import { compactLeases, activeLeases, leaseName, relativeTime, syncDetail, syncStateLook } from './sync-model.js';

/** The slow poll: events carry the news, this catches what they cannot (relative times, a missed event). */
export const SYNC_POLL_MS = 60_000;

const changes = new EventTarget();

/**
 * Asks every status bar on the page to read the sync state again: the Redeem area calls it after a redemption or an
 * undo, which may use or give back a lease's rights (no `sync.*` event says so).
 */
export function syncStateChanged(): void {
  changes.dispatchEvent(new Event('change'));
}

/** Whether a holder of `roles` sees the cloud's state: field staff and operators. */
export function seesSync(roles: readonly Role[]): boolean {
  return roles.includes('staff') || roles.includes('operator');
}

export function SyncStatusBar(props: { client: TesseraClient; roles: readonly Role[] }) {
  const { client } = props;
  const allowed = seesSync(props.roles);
  const [status, setStatus] = useState<SyncStatus | null>(null);
  const [absent, setAbsent] = useState(false);
  const [now, setNow] = useState(Date.now());
  const [running, setRunning] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const inFlight = useRef(false);
  const again = useRef(false);
  const gone = useRef(false);

  const load = useCallback(async () => {
    // One request at a time; a burst of events while one runs asks once more after it.
    if (gone.current) return;
    if (inFlight.current) {
      again.current = true;
      return;
    }
    inFlight.current = true;
    try {
      do {
        again.current = false;
        try {
          if (!(await client.sync.available())) {
            gone.current = true;
            setAbsent(true);
            return;
          }
          const s = await client.sync.status();
          setStatus(s);
          setNow(Date.now());
        } catch (err) {
          const code = (err as { code?: string }).code;
          // No sync module in this runtime, or not for this credential: nothing to show.
          if (code === 'NOT_FOUND' || code === 'FORBIDDEN' || code === 'UNAUTHORIZED') {
            gone.current = true;
            setAbsent(true);
          }
          // NOT_READY (runtime unreachable) keeps the last known state: the runtime pill says the rest.
        }
      } while (again.current);
    } finally {
      inFlight.current = false;
    }
  }, [client]);

  useEffect(() => {
    gone.current = false;
    setAbsent(false);
    setStatus(null);
    if (!allowed) return;
    void load();
    const poll = setInterval(() => void load(), SYNC_POLL_MS);
    const tick = setInterval(() => setNow(Date.now()), 15_000);
    const unsubscribe = client.subscribe(['sync.**'], () => void load());
    const onChange = () => void load();
    changes.addEventListener('change', onChange);
    return () => {
      changes.removeEventListener('change', onChange);
      clearInterval(poll);
      clearInterval(tick);
      unsubscribe();
    };
  }, [client, allowed, load]);

  if (!allowed || absent || status === null) return null;

  const look = syncStateLook(status);
  const leases = compactLeases(status.leases, now);
  const syncNow = async () => {
    setRunning(true);
    setProblem(null);
    try {
      setStatus(await client.sync.now());
    } catch (err) {
      setProblem((err as Error).message);
    } finally {
      setRunning(false);
      setNow(Date.now());
    }
  };
  return (
    <span class="sync-status" data-testid="sync-status" data-state={status.state}>
      <span class={`pill ${look.tone}`} data-testid="sync-state" title={syncDetail(status, now)}>
        {look.words}
      </span>
      {status.cloud ? (
        <span data-testid="sync-last" title={status.last_sync ?? ''}>
          {status.last_sync ? `Synced ${relativeTime(status.last_sync, now)}` : 'Never synced'}
        </span>
      ) : null}
      {status.cloud ? (
        <span data-testid="sync-pending" class={status.pending_uploads > 0 ? 'sync-pending' : ''}>
          {status.pending_uploads > 0 ? `${status.pending_uploads} to upload` : 'All uploaded'}
        </span>
      ) : null}
      {leases ? (
        <span data-testid="sync-leases" title={activeLeases(status.leases, now).map((l) => `${leaseName(l)}: ${l.left} of ${l.rights} left until ${new Date(l.exp).toLocaleString()}`).join('\n')}>
          {leases}
        </span>
      ) : null}
      {status.cloud && status.state !== 'syncing' ? (
        <button type="button" class="sync-now" data-testid="sync-now" disabled={running} onClick={() => void syncNow()}>
          {running ? 'Syncing…' : 'Sync now'}
        </button>
      ) : null}
      {problem ? (
        <span class="error" role="alert" data-testid="sync-problem">
          {problem}
        </span>
      ) : null}
    </span>
  );
}
