/**
 * The cloud operator page (issue 16 §7), served by the cloud at `/` (main/cloud/ui.ts): a tenant's devices with
 * their last accepted head and lag, the leases, the double-spend conflicts with their adjudication, and the alerts.
 * It asks for the tenant admin token and keeps it in this tab's session storage only; a token the cloud refuses is
 * forgotten at once. Read-only: changes go through the CLI and the admin routes.
 */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import type { AlertRow, CloudAdmin, ConflictRow, DeviceRow, LeaseRow } from './api.js';
import { createCloudAdmin } from './api.js';

const TOKEN_KEY = 'tessera.cloud.admin-token';
/** The page reads the four lists again this often while open. */
export const REFRESH_MS = 30_000;

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function CloudApp() {
  const [token, setToken] = useState<string | null>(storedToken);
  const [rejected, setRejected] = useState(false);
  const admin = useMemo(() => (token ? createCloudAdmin(token) : null), [token]);
  const signIn = (t: string) => {
    try {
      sessionStorage.setItem(TOKEN_KEY, t);
    } catch {
      // Without storage the token lives in this page only.
    }
    setRejected(false);
    setToken(t);
  };
  const signOut = (refused: boolean) => {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // nothing stored
    }
    setRejected(refused);
    setToken(null);
  };
  const rejectToken = useCallback(() => signOut(true), []);
  return (
    <div class="cloud">
      <header class="cloud-top">
        <span class="brand">Tessera cloud</span>
        <span class="spacer" />
        {token ? (
          <button type="button" class="quiet" data-testid="sign-out" onClick={() => signOut(false)}>
            Forget token
          </button>
        ) : null}
      </header>
      <main class="cloud-main">{admin ? <Fleet admin={admin} onRejected={rejectToken} /> : <TokenForm rejected={rejected} onToken={signIn} />}</main>
    </div>
  );
}

function TokenForm(props: { rejected: boolean; onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="cloud-token"
      data-testid="token-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim() !== '') props.onToken(value.trim());
      }}
    >
      <h1>Fleet overview</h1>
      <label for="admin-token">Tenant admin token</label>
      <input id="admin-token" data-testid="token" type="password" autocomplete="off" spellcheck={false} value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      {props.rejected ? (
        <p class="error" role="alert" data-testid="token-rejected">
          The cloud did not accept that token. Use the admin token printed when the tenant was created (tessera cloud tenant create).
        </p>
      ) : null}
      <button type="submit" disabled={value.trim() === ''}>
        Open
      </button>
      <p class="hint">The token stays in this browser tab only (session storage) and is sent to this cloud alone.</p>
    </form>
  );
}

interface Lists {
  devices: DeviceRow[] | string;
  leases: LeaseRow[] | string;
  conflicts: ConflictRow[] | string;
  alerts: AlertRow[] | string;
  at: number;
}

function Fleet(props: { admin: CloudAdmin; onRejected: () => void }) {
  const { admin, onRejected } = props;
  const [lists, setLists] = useState<Lists | null>(null);
  const [loading, setLoading] = useState(false);
  const load = useCallback(async () => {
    setLoading(true);
    const parts = await Promise.allSettled([admin.devices(), admin.leases(), admin.conflicts(), admin.alerts()]);
    setLoading(false);
    if (parts.some((p) => p.status === 'rejected' && (p.reason as { code?: string }).code === 'UNAUTHORIZED')) {
      onRejected();
      return;
    }
    const value = <T,>(p: PromiseSettledResult<T>): T | string => (p.status === 'fulfilled' ? p.value : describe(p.reason));
    setLists({ devices: value(parts[0]!), leases: value(parts[1]!), conflicts: value(parts[2]!), alerts: value(parts[3]!), at: Date.now() });
  }, [admin, onRejected]);
  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [load]);

  if (!lists) return <p class="hint">Loading…</p>;
  const names = new Map(Array.isArray(lists.devices) ? lists.devices.map((d) => [d.device, d.name] as const) : []);
  const deviceName = (id: string | null) => (id ? (names.get(id) ?? shortId(id)) : '—');
  const now = lists.at;
  return (
    <div class="fleet" data-testid="fleet">
      <div class="fleet-bar">
        <span class="hint" data-testid="updated">{`Updated ${new Date(lists.at).toLocaleTimeString()}`}</span>
        <button type="button" data-testid="refresh" disabled={loading} onClick={() => void load()}>
          {loading ? 'Refreshing…' : 'Refresh'}
        </button>
      </div>
      <Section title="Alerts" id="alerts" rows={lists.alerts} empty="No alerts.">
        {(rows) => (
          <table class="stack">
            <thead>
              <tr>
                <th>When</th>
                <th>Code</th>
                <th>Device</th>
                <th>What happened</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((a) => (
                <tr key={a.id} data-testid="alert-row" data-code={a.code}>
                  <td data-label="When">{when(a.created_at)}</td>
                  <td data-label="Code" class="tone-err">
                    <code>{a.code}</code>
                  </td>
                  <td data-label="Device" title={a.device ?? ''}>
                    {deviceName(a.device)}
                  </td>
                  <td data-label="What happened">{a.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Devices" id="devices" rows={lists.devices} empty="No devices enrolled yet: create an enrollment code (tessera cloud code --role redeemer) and enroll a device with it.">
        {(rows) => (
          <table class="stack">
            <thead>
              <tr>
                <th>Device</th>
                <th>Role</th>
                <th>Last head</th>
                <th>Lag</th>
                <th>Last seen</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.device} data-testid="device-row" data-device={d.device} data-revoked={d.revoked_at ? 'true' : 'false'} class={d.revoked_at ? 'revoked' : ''}>
                  <td data-label="Device" title={d.device}>
                    <span>
                      <strong>{d.name || shortId(d.device)}</strong>
                      {d.venue ? <span class="hint">{` · ${d.venue}`}</span> : null}
                    </span>
                  </td>
                  <td data-label="Role">{d.role}</td>
                  <td data-label="Last head" data-testid="device-head" title={d.log ? `root ${d.log.root}` : ''}>
                    {d.log ? `${d.log.size} receipts, ${when(d.log.accepted_at)}` : 'nothing uploaded'}
                  </td>
                  <td data-label="Lag" data-testid="device-lag" class={d.lag_s !== null && d.lag_s > 3600 ? 'tone-warn' : ''}>
                    {d.lag_s === null ? '—' : duration(d.lag_s)}
                  </td>
                  <td data-label="Last seen">{d.last_seen_at ? ago(d.last_seen_at, now) : 'never'}</td>
                  <td data-label="State" data-testid="device-state" class={d.revoked_at ? 'tone-err' : 'tone-ok'} title={d.revoked_reason ?? ''}>
                    {d.revoked_at ? `revoked ${when(d.revoked_at)}${d.revoked_reason ? `: ${d.revoked_reason}` : ''}` : 'active'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Leases" id="leases" rows={lists.leases} empty="No leases: passes protected by prevent or bound are granted to devices when they ask online, or assigned ahead of time.">
        {(rows) => (
          <table class="stack">
            <thead>
              <tr>
                <th>Pass</th>
                <th>Device</th>
                <th>Used</th>
                <th>Until</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((l) => (
                <tr key={l.lease} data-testid="lease-row" data-lease={l.lease} data-state={l.state}>
                  <td data-label="Pass" title={l.product_cid ?? ''}>
                    <code>{shortId(l.serial, 12)}</code>
                  </td>
                  <td data-label="Device" title={l.device}>
                    {deviceName(l.device)}
                  </td>
                  <td data-label="Used">{l.used === null ? `${l.rights} rights` : `${l.used} of ${l.rights}`}</td>
                  <td data-label="Until">{when(l.exp)}</td>
                  <td data-label="State" class={l.state === 'active' ? 'tone-ok' : ''}>
                    {l.state}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Conflicts" id="conflicts" rows={lists.conflicts} empty="No double spends found.">
        {(rows) => (
          <ul class="conflicts">
            {rows.map((c) => (
              <li key={c.serial} class="conflict" data-testid="conflict" data-serial={c.serial}>
                <div class="conflict-head">
                  <code>{shortId(c.serial, 16)}</code>
                  <span class="tone-err" data-testid="conflict-used">{`used ${c.used} of ${c.rights}`}</span>
                  <span data-testid="conflict-split">{`${c.honoured.length} honoured · ${c.over.length} over`}</span>
                  {c.updated_at ? <span class="hint">{when(c.updated_at)}</span> : null}
                </div>
                {c.evidence.length > 0 ? (
                  <details>
                    <summary>{`Adjudication (earliest first)${c.recomputed === 'differs' ? ' — does NOT match the evidence' : c.recomputed === 'agrees' ? ' — checked against the evidence' : ''}`}</summary>
                    <ol class="evidence">
                      {[...c.evidence]
                        .sort((a, b) => (a.issued_at < b.issued_at ? -1 : a.issued_at > b.issued_at ? 1 : a.receipt_id < b.receipt_id ? -1 : 1))
                        .map((e) => (
                          <li key={e.receipt_id} data-testid="evidence" data-honoured={e.honoured ? 'true' : 'false'}>
                            <span class={e.honoured ? 'tone-ok' : 'tone-err'}>{e.honoured ? 'honoured' : 'over'}</span>
                            {` ${when(e.issued_at)} · ${deviceName(e.device)} · ${e.amount} · `}
                            <code title={e.receipt_id}>{shortId(e.receipt_id)}</code>
                          </li>
                        ))}
                    </ol>
                  </details>
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </Section>
    </div>
  );
}

function Section<T>(props: { title: string; id: string; rows: T[] | string; empty: string; children: (rows: T[]) => ComponentChildren }) {
  const { rows } = props;
  return (
    <section class="fleet-section" data-testid={`section-${props.id}`} aria-labelledby={`${props.id}-title`}>
      <h2 id={`${props.id}-title`}>
        {props.title}
        {Array.isArray(rows) ? <span class="count">{` ${rows.length}`}</span> : null}
      </h2>
      {typeof rows === 'string' ? (
        <p class="error" role="alert" data-testid={`${props.id}-problem`}>
          {rows}
        </p>
      ) : rows.length === 0 ? (
        <p class="hint">{props.empty}</p>
      ) : (
        props.children(rows)
      )}
    </section>
  );
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code === 'NOT_FOUND') return 'This cloud does not offer this list.';
  return e.code ? `${e.message ?? 'Failed'} (${e.code})` : String(e.message ?? err);
}

export function shortId(id: string, keep = 10): string {
  const body = id.startsWith('b3:') ? id.slice(3) : id;
  return body.length > keep ? `${id.startsWith('b3:') ? 'b3:' : ''}${body.slice(0, keep)}…` : id;
}

const dateTime = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
export function when(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso || '—' : dateTime.format(t);
}

export function duration(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} days`;
}

function ago(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : `${duration(Math.max(0, (now - t) / 1000))} ago`;
}
