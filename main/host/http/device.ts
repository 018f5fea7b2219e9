/**
 * `GET /api/device`: this device's key id, so that the Verify page can tell a bundle signed here from one that is
 * merely intact (issue 13 §6). Every role may read it — a traveller at the kiosk checks a receipt too — and it
 * reveals no more than every bundle and tree head this device hands out already.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { DeviceInfo } from '../../common/api.js';
import type { Runtime } from '../../runtime/index.js';

const errorRef = { $ref: 'Error#' } as const;

/** The answer of `GET /api/device` and of the Electron bridge's `device` call. */
export function deviceInfo(runtime: Pick<Runtime, 'deviceKey'>): DeviceInfo {
  return { keyid: runtime.deviceKey.keyid };
}

export const deviceRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  app.get('/api/device', {
    config: { access: ['traveller', 'staff', 'author', 'operator'] },
    schema: {
      summary: "This device's key id (b3: cid of its Ed25519 public key): the signer of its receipts and bundles, `log` of GET /v1/log/root.",
      tags: ['system'],
      security: [{ bearer: [] }],
      response: {
        200: { type: 'object', additionalProperties: false, required: ['keyid'], properties: { keyid: { type: 'string', pattern: '^b3:[0-9a-f]{64}$' } } },
        401: errorRef,
      },
    },
  }, async () => deviceInfo(runtime));
};
