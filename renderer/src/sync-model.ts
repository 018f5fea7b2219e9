/**
 * What the status bar and the Redeem screen say about this device's sync with the cloud (issue 16 §6), as pure
 * functions of a {@link SyncStatus}: tested without a browser (test/unit/sync-model.test.ts).
 */
import type { LeaseBalance, SyncStatus } from '../../main/common/cloud.js';

/** "just now", "2 min ago", "3 h ago", "4 days ago" (or "in 2 min" for a time ahead). */
export function relativeTime(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  const ahead = s < 0;
  const a = Math.abs(s);
  const say = (n: number, unit: string) => (ahead ? `in ${n} ${unit}` : `${n} ${unit} ago`);
  if (a < 45) return ahead ? 'in a moment' : 'just now';
  if (a < 90 * 60) return say(Math.max(1, Math.round(a / 60)), 'min');
  if (a < 36 * 3600) return say(Math.round(a / 3600), 'h');
  const days = Math.round(a / 86_400);
  return say(days, days === 1 ? 'day' : 'days');
}

export type SyncTone = 'ok' | 'warn' | 'err' | 'neutral';

/** The state pill: its words and tone. */
export function syncStateLook(status: SyncStatus): { words: string; tone: SyncTone } {
  switch (status.state) {
    case 'online':
      return { words: 'Cloud: online', tone: 'ok' };
    case 'syncing':
      return { words: 'Cloud: syncing…', tone: 'neutral' };
    case 'offline':
      return { words: 'Cloud: offline', tone: 'warn' };
    case 'refused':
      return { words: 'Cloud: refused', tone: 'err' };
    default:
      return { words: 'Cloud: not enrolled', tone: 'neutral' };
  }
}

/** What the state pill's tooltip says: the cloud, the last error, the next attempt. */
export function syncDetail(status: SyncStatus, now: number): string {
  const parts: string[] = [];
  if (status.cloud) parts.push(`${status.cloud.url} (tenant ${status.cloud.tenant}, ${status.cloud.role})`);
  else parts.push('This device is not enrolled with a cloud: an operator enrolls it with a code (tessera cloud enroll).');
  if (status.last_error) parts.push(`Last problem ${relativeTime(status.last_error.at, now)}: ${status.last_error.message} (${status.last_error.code})`);
  if (status.next_attempt) parts.push(`Next attempt ${relativeTime(status.next_attempt, now)}`);
  if (status.deny_list_as_of) parts.push(`Deny list as of ${relativeTime(status.deny_list_as_of, now)}`);
  return parts.join('\n');
}

/** Active, unexpired leases first (soonest expiry first), then the rest. */
export function activeLeases(leases: readonly LeaseBalance[], now: number): LeaseBalance[] {
  return leases.filter((l) => l.state === 'active' && Date.parse(l.exp) > now).sort((a, b) => Date.parse(a.exp) - Date.parse(b.exp));
}

/** A lease's name for staff: the product's title, else the pass serial shortened. */
export function leaseName(l: Pick<LeaseBalance, 'title' | 'serial'>): string {
  return l.title ?? `pass ${l.serial.length > 10 ? `${l.serial.slice(0, 8)}…` : l.serial}`;
}

/**
 * The status bar's compact lease summary: "Museum pass 3/5 · City card 1/2 +2 more", or null without active leases.
 * One entry per pass: the leases of one serial (a lease at issue, then a grant when it ran out) add up.
 */
export function compactLeases(leases: readonly LeaseBalance[], now: number, shown = 2): string | null {
  const perPass = new Map<string, { lease: LeaseBalance; left: number; rights: number }>();
  for (const l of activeLeases(leases, now)) {
    const seen = perPass.get(l.serial);
    if (seen) {
      seen.left += l.left;
      seen.rights += l.rights;
    } else perPass.set(l.serial, { lease: l, left: l.left, rights: l.rights });
  }
  const passes = [...perPass.values()];
  if (passes.length === 0) return null;
  const head = passes.slice(0, shown).map((p) => `${leaseName(p.lease)} ${p.left}/${p.rights}`);
  return `Leases: ${head.join(' · ')}${passes.length > shown ? ` +${passes.length - shown} more` : ''}`;
}
