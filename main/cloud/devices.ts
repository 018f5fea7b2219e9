/**
 * The tenant's devices (issue 16 §2, §7): the fleet list operators read, and revocation.
 *
 * - `GET /v1/devices` (admin) → `{devices: DeviceSummary[]}`, enrolment order: role, venue, when it was last seen,
 *   and the last head of its log the cloud accepted (from the receipt ingest's `device_logs`) with its lag.
 * - `POST /v1/devices/:device/revoke` (admin) `{reason}` → `{device, revoked_at}`: the device's signed requests are
 *   refused from then on (403 DEVICE_REVOKED, app.ts), and a `device_revoked` change tells the tenant's other devices
 *   to stop trusting what its key signs from now on. Revoking twice answers the first revocation and changes nothing.
 *   A device of another tenant (or none) is 404 NOT_FOUND, exactly as an unknown one.
 */
import type { FastifyInstance } from 'fastify';
import type { DeviceRole, DeviceSummary } from '../common/cloud.js';
import { DEVICE_ROLES } from '../common/cloud.js';
import { TesseraError } from '../common/errors.js';
import { tenantOf } from './app.js';
import { appendChanges } from './feed.js';

const errorRef = { $ref: 'Error#' } as const;
const deviceParams = { type: 'object', required: ['device'], properties: { device: { type: 'string', pattern: '^b3:[0-9a-f]{64}$' } } } as const;
const nullableString = { type: ['string', 'null'] } as const;

const deviceSummarySchema = {
  type: 'object',
  required: ['device', 'name', 'role', 'venue', 'enrolled_at', 'last_seen_at', 'revoked_at', 'revoked_reason', 'log', 'lag_s'],
  properties: {
    device: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: [...DEVICE_ROLES] },
    venue: nullableString,
    enrolled_at: { type: 'string' },
    last_seen_at: nullableString,
    revoked_at: nullableString,
    revoked_reason: nullableString,
    log: { type: ['object', 'null'], required: ['size', 'root', 'accepted_at'], properties: { size: { type: 'integer' }, root: { type: 'string' }, accepted_at: { type: 'string' } } },
    lag_s: { type: ['number', 'null'] },
  },
} as const;

interface DeviceRow {
  device: string;
  name: string;
  role: DeviceRole;
  venue: string | null;
  enrolled_at: Date;
  last_seen_at: Date | null;
  revoked_at: Date | null;
  revoked_reason: string | null;
  log_size: number | null;
  log_root: string | Uint8Array | null;
  log_accepted_at: Date | null;
}

const hex = (v: string | Uint8Array): string => (typeof v === 'string' ? v : Buffer.from(v).toString('hex'));

export async function deviceRoutes(app: FastifyInstance): Promise<void> {
  const { db, clock, logger } = app.cloud;

  app.get('/v1/devices', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: "The tenant's devices: role, venue, last seen, revocation, and the last accepted head of each log with its lag.",
      tags: ['devices'],
      security: [{ bearer: [] }],
      response: { 200: { type: 'object', required: ['devices'], properties: { devices: { type: 'array', items: deviceSummarySchema } } }, '4xx': errorRef },
    },
    handler: async (request): Promise<{ devices: DeviceSummary[] }> => {
      const tenant = tenantOf(request);
      const rows = await db.query<DeviceRow>(
        `SELECT d.device, d.name, d.role, d.venue, d.enrolled_at, d.last_seen_at, d.revoked_at, d.revoked_reason,
                l.size AS log_size, l.root AS log_root, l.accepted_at AS log_accepted_at
           FROM devices d LEFT JOIN device_logs l ON l.tenant = d.tenant AND l.device = d.device
          WHERE d.tenant = $1 ORDER BY d.enrolled_at, d.device`,
        [tenant],
      );
      const now = clock();
      return {
        devices: rows.map((r) => {
          const log = r.log_size !== null && r.log_size > 0 && r.log_root !== null && r.log_accepted_at !== null ? { size: r.log_size, root: hex(r.log_root), accepted_at: r.log_accepted_at.toISOString() } : null;
          return {
            device: r.device,
            name: r.name,
            role: r.role,
            venue: r.venue,
            enrolled_at: r.enrolled_at.toISOString(),
            last_seen_at: r.last_seen_at?.toISOString() ?? null,
            revoked_at: r.revoked_at?.toISOString() ?? null,
            revoked_reason: r.revoked_reason,
            log,
            lag_s: log ? Math.max(0, Math.round((now - r.log_accepted_at!.getTime()) / 1000)) : null,
          };
        }),
      };
    },
  });

  app.post<{ Params: { device: string }; Body: { reason: string } }>('/v1/devices/:device/revoke', {
    config: { cloudAccess: ['admin'] },
    schema: {
      summary: "Revoke a device: its signed requests are refused (DEVICE_REVOKED) and the tenant's devices stop trusting its key.",
      description: 'Revoking again answers the first revocation. 404 NOT_FOUND for a device this tenant does not have.',
      tags: ['devices'],
      security: [{ bearer: [] }],
      params: deviceParams,
      body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } },
      response: { 200: { type: 'object', required: ['device', 'revoked_at', 'reason'], properties: { device: { type: 'string' }, revoked_at: { type: 'string' }, reason: { type: 'string' } } }, '4xx': errorRef },
    },
    handler: async (request) => {
      const tenant = tenantOf(request);
      const { device } = request.params;
      const { reason } = request.body;
      const at = new Date(clock());
      const result = await db.tx(async (sql) => {
        const row = (await sql.query<{ revoked_at: Date | null; revoked_reason: string | null }>('SELECT revoked_at, revoked_reason FROM devices WHERE tenant = $1 AND device = $2 FOR UPDATE', [tenant, device]))[0];
        if (!row) throw new TesseraError('NOT_FOUND', `No device ${device} in this tenant.`);
        if (row.revoked_at) return { device, revoked_at: row.revoked_at.toISOString(), reason: row.revoked_reason ?? '' };
        await sql.query('UPDATE devices SET revoked_at = $3, revoked_reason = $4 WHERE tenant = $1 AND device = $2', [tenant, device, at, reason]);
        await appendChanges(sql, tenant, [{ change: { type: 'device_revoked', device, reason, at: at.toISOString() } }]);
        return { device, revoked_at: at.toISOString(), reason };
      });
      logger.info('cloud device revoked', { tenant, device, reason });
      return result;
    },
  });
}
