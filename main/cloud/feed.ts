/**
 * Shared pieces every cloud module uses: the tenant's pull feed (common/cloud.ts {@link SyncChange}) and the
 * tenant's cloud key.
 *
 * The feed's `seq` comes from `tenants.last_seq`, bumped under that row's lock in the caller's transaction: a
 * device that pulled up to n never misses a change that commits later with a smaller seq (with a sequence, a slow
 * transaction could commit seq 7 after a pull already returned 8).
 */
import type { SyncChange } from '../common/cloud.js';
import { TesseraError } from '../common/errors.js';
import { signingKeyFromPem } from '../runtime/keys/index.js';
import type { SigningKey } from '../runtime/keys/index.js';
import type { Sql } from './db.js';

/** A change without its seq: what a module appends. */
export type ChangeBody = SyncChange extends infer C ? (C extends { seq: number } ? Omit<C, 'seq'> : never) : never;

/**
 * Appends changes to the tenant's feed; `device` set: only that device pulls it. Must run inside a transaction
 * ({@link Db.tx}): it holds the tenant row's lock until the caller commits. Returns the seqs given.
 */
export async function appendChanges(sql: Sql, tenant: string, changes: ReadonlyArray<{ device?: string | null; change: ChangeBody }>): Promise<number[]> {
  if (changes.length === 0) return [];
  const rows = await sql.query<{ last_seq: number }>('UPDATE tenants SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq', [tenant, changes.length]);
  if (rows.length === 0) throw new TesseraError('NOT_FOUND', `No tenant ${tenant}.`);
  const first = rows[0]!.last_seq - changes.length + 1;
  const seqs = changes.map((_, i) => first + i);
  const values: unknown[] = [];
  const tuples = changes.map((c, i) => {
    values.push(tenant, seqs[i], c.device ?? null, c.change.type, JSON.stringify(c.change));
    const b = i * 5;
    return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}::jsonb)`;
  });
  await sql.query(`INSERT INTO changes (tenant, seq, device, type, body) VALUES ${tuples.join(', ')}`, values);
  return seqs;
}

const parsed = new Map<string, SigningKey>();

/** The tenant's cloud key (its PEM read each time, parsed once per process). @throws TesseraError NOT_FOUND. */
export async function tenantKey(sql: Sql, tenant: string): Promise<SigningKey> {
  const rows = await sql.query<{ cloud_private_pem: string }>('SELECT cloud_private_pem FROM tenants WHERE id = $1', [tenant]);
  if (rows.length === 0) throw new TesseraError('NOT_FOUND', `No tenant ${tenant}.`);
  const pem = rows[0]!.cloud_private_pem;
  let key = parsed.get(pem);
  if (!key) {
    key = signingKeyFromPem(pem);
    parsed.set(pem, key);
  }
  return key;
}
