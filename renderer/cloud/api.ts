/**
 * What the cloud operator page reads (issue 16 §7): the tenant admin routes of main/common/cloud.ts, with the
 * tenant's admin token as a bearer token. The rows are read tolerantly — a field a cloud does not send is shown
 * as unknown rather than breaking the page — and normalised here so the views stay simple.
 *
 * - `GET /v1/devices`   → `{devices: DeviceRow[]}` (ISSUE16-PLAN.md H1)
 * - `GET /v1/leases`    → `{leases: LeaseRow[]}` (H3: the `leases` table's columns)
 * - `GET /v1/conflicts` → `{conflicts: [...]}` (H3: a serial with its DoubleSpendProof, or the proof's fields flat)
 * - `GET /v1/alerts`    → `{alerts: AlertRow[]}` (H2)
 */
import type { DeviceSummary, DoubleSpendProof, SpendEvidence } from '../../main/common/cloud.js';
import { adjudicate } from '../../main/common/cloud.js';
import { TesseraError, fromErrorData } from '../../main/common/errors.js';

/** One device as the page lists it: the route's shape (`GET /v1/devices`), its role read as any text. */
export type DeviceRow = Omit<DeviceSummary, 'role'> & { role: string };

export interface LeaseRow {
  lease: string;
  serial: string;
  device: string;
  rights: number;
  used: number | null;
  nbf: string | null;
  exp: string;
  state: string;
  product_cid: string | null;
}

export interface ConflictEvidence {
  device: string;
  receipt_id: string;
  issued_at: string;
  amount: number;
  honoured: boolean;
}

export interface ConflictRow {
  serial: string;
  product_cid: string | null;
  rights: number;
  used: number;
  honoured: string[];
  over: string[];
  evidence: ConflictEvidence[];
  updated_at: string | null;
  /** Whether the signed adjudication matches what this page recomputes from the evidence (common/cloud.ts adjudicate). */
  recomputed: 'agrees' | 'differs' | 'no_evidence';
}

export interface AlertRow {
  id: string;
  device: string | null;
  code: string;
  message: string;
  created_at: string;
}

export interface CloudAdmin {
  devices(): Promise<DeviceRow[]>;
  leases(): Promise<LeaseRow[]>;
  conflicts(): Promise<ConflictRow[]>;
  alerts(): Promise<AlertRow[]>;
}

type Raw = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : v instanceof Date ? v.toISOString() : typeof v === 'number' ? String(v) : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : null);
const list = (v: unknown): Raw[] => (Array.isArray(v) ? v.filter((x): x is Raw => typeof x === 'object' && x !== null) : []);

export function toDevice(r: Raw): DeviceRow {
  const log = typeof r['log'] === 'object' && r['log'] !== null ? (r['log'] as Raw) : null;
  return {
    device: str(r['device']) ?? '',
    name: str(r['name']) ?? '',
    role: str(r['role']) ?? '',
    venue: str(r['venue']),
    enrolled_at: str(r['enrolled_at']) ?? '',
    last_seen_at: str(r['last_seen_at']),
    revoked_at: str(r['revoked_at']),
    revoked_reason: str(r['revoked_reason']),
    log: log ? { size: num(log['size']) ?? 0, root: str(log['root']) ?? '', accepted_at: str(log['accepted_at']) ?? '' } : null,
    lag_s: num(r['lag_s']),
  };
}

export function toLease(r: Raw): LeaseRow {
  return {
    lease: str(r['lease']) ?? str(r['id']) ?? '',
    serial: str(r['serial']) ?? '',
    device: str(r['device']) ?? '',
    rights: num(r['rights']) ?? 0,
    used: num(r['used']),
    nbf: str(r['nbf']),
    exp: str(r['exp']) ?? '',
    state: str(r['state']) ?? '',
    product_cid: str(r['product_cid']),
  };
}

/** A DSSE envelope's JSON payload, or null (the proof may come signed or as its payload). */
function envelopePayload(v: unknown): Raw | null {
  if (typeof v !== 'object' || v === null) return null;
  const e = v as Raw;
  if (typeof e['payload'] === 'string' && Array.isArray(e['signatures'])) {
    try {
      const bin = atob(e['payload']);
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes)) as Raw;
    } catch {
      return null;
    }
  }
  return e;
}

export function toConflict(r: Raw): ConflictRow {
  const proof = (envelopePayload(r['proof']) ?? {}) as Partial<DoubleSpendProof> & Raw;
  const pick = (key: string) => r[key] ?? proof[key];
  const adjudication = (typeof pick('adjudication') === 'object' && pick('adjudication') !== null ? pick('adjudication') : {}) as { honoured?: unknown; over?: unknown };
  const honoured = Array.isArray(r['honoured']) ? (r['honoured'] as string[]) : Array.isArray(adjudication.honoured) ? (adjudication.honoured as string[]) : [];
  const over = Array.isArray(r['over']) ? (r['over'] as string[]) : Array.isArray(adjudication.over) ? (adjudication.over as string[]) : [];
  const rawEvidence = list(pick('evidence')) as unknown as Array<Partial<SpendEvidence>>;
  const evidence = rawEvidence.map((e) => ({ device: str(e.device) ?? '', receipt_id: str(e.receipt_id) ?? '', issued_at: str(e.issued_at) ?? '', amount: num(e.amount) ?? 0, honoured: honoured.includes(str(e.receipt_id) ?? '') }));
  const rights = num(pick('rights')) ?? 0;
  let recomputed: ConflictRow['recomputed'] = 'no_evidence';
  if (evidence.length > 0) {
    const again = adjudicate(rights, evidence);
    recomputed = again.honoured.join() === honoured.join() && again.over.join() === over.join() ? 'agrees' : 'differs';
  }
  return {
    serial: str(pick('serial')) ?? '',
    product_cid: str(pick('product_cid')),
    rights,
    used: num(pick('used')) ?? evidence.reduce((s, e) => s + e.amount, 0),
    honoured,
    over,
    evidence,
    updated_at: str(r['updated_at']) ?? str(proof['issued_at']),
    recomputed,
  };
}

export function toAlert(r: Raw): AlertRow {
  return { id: str(r['id']) ?? '', device: str(r['device']), code: str(r['code']) ?? '', message: str(r['message']) ?? '', created_at: str(r['created_at']) ?? '' };
}

/** The admin client over `fetch` on the page's origin. Errors reject as TesseraError (NOT_READY: the cloud is unreachable). */
export function createCloudAdmin(token: string, origin = location.origin): CloudAdmin {
  const get = async (path: string, key: string): Promise<Raw[]> => {
    let res: Response;
    try {
      res = await fetch(origin + path, { headers: { authorization: `Bearer ${token}` } });
    } catch {
      throw new TesseraError('NOT_READY', 'The cloud cannot be reached.', { retryable: true });
    }
    const data: unknown = await res.json().catch(() => undefined);
    if (!res.ok) throw fromErrorData((data as { error?: unknown } | undefined)?.error);
    return list((data as Raw | undefined)?.[key]);
  };
  return {
    devices: async () => (await get('/v1/devices', 'devices')).map(toDevice),
    leases: async () => (await get('/v1/leases', 'leases')).map(toLease),
    conflicts: async () => (await get('/v1/conflicts', 'conflicts')).map(toConflict),
    alerts: async () => (await get('/v1/alerts', 'alerts')).map(toAlert),
  };
}
