/**
 * Offline bundle routes (issue 5 §6): download a capsule's bundle (`GET /v1/r/{cid}/bundle`) and verify one
 * (`POST /v1/verify`). Verification is common/bundle.ts — the same code as `tessera bundle verify` and the
 * renderer's offline page — so all three give the same verdict and name the same place.
 */
import type { FastifyPluginAsync } from 'fastify';
import { BUNDLE_CHECKS, BUNDLE_MEDIA_TYPE, MAX_BUNDLE_BYTES } from '../../common/bundle.js';
import { base64Problem, fromBase64 } from '../../common/dsse.js';
import { TesseraError } from '../../common/errors.js';
import { cardPath } from '../../common/receipt.js';
import { bundleFileName, capsuleBundle, verifyBundleOnHost } from '../../runtime/receipts/bundle.js';
import { canSee, localOrigin } from './request.js';
import { ANY_ROLE } from './access.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
/** Base64 makes a bundle 4/3 larger; JSON adds a few bytes. */
const BODY_LIMIT = Math.ceil((MAX_BUNDLE_BYTES * 4) / 3) + 1024;

/** The verdict every verifier answers (common/bundle.ts `BundleVerdict`). */
export const bundleVerdictSchema = {
  type: 'object',
  required: ['ok', 'verdict', 'capsule', 'decision', 'device', 'receipts', 'card_url', 'checks'],
  properties: {
    ok: { type: 'boolean' },
    verdict: { type: 'string', enum: ['OK', 'INVALID'] },
    capsule: { type: ['string', 'null'] },
    decision: { type: ['string', 'null'], enum: ['ACK', 'NACK', 'ASK', null] },
    device: { type: ['string', 'null'] },
    receipts: { type: 'integer' },
    card_url: { type: ['string', 'null'] },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'label', 'status', 'detail'],
        properties: { id: { type: 'string', enum: BUNDLE_CHECKS.map((c) => c.id) }, label: { type: 'string' }, status: { type: 'string', enum: ['pass', 'fail', 'skipped'] }, detail: { type: 'string' } },
      },
    },
    error: { type: 'object', required: ['code', 'where', 'message'], properties: { code: { type: 'string' }, where: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

export const verifyRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  app.get<{ Params: { cid: string } }>('/v1/r/:cid/bundle', {
    config: { access: ['staff', 'operator', 'tenant'] },
    schema: {
      summary: "A capsule's offline bundle: ZIP with the capsule, DSSE receipts, public keys, manifests, device-log proofs, signed index, QR and README.",
      tags: ['receipts'],
      security: secured,
      produces: [BUNDLE_MEDIA_TYPE],
      params: { type: 'object', required: ['cid'], properties: { cid: { type: 'string', pattern: '^b3:[0-9a-f]{64}$' } } },
      response: { 200: { type: 'string', format: 'binary', description: 'application/zip' }, 400: errorRef, 401: errorRef, 404: errorRef, 503: errorRef },
    },
  }, async (request, reply) => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
    const { cid } = request.params;
    const record = runtime.receipts.capsule(cid);
    // A tenant token gets its own tenant's bundles only; another's capsule is "not found", as on the card route.
    if (record && !canSee(request, record.capsule)) throw new TesseraError('CAPSULE_NOT_FOUND', `No capsule ${cid} on this device.`);
    const zip = capsuleBundle({ receipts: runtime.receipts, log: runtime.deviceLog, deviceKey: runtime.deviceKey, cosignature: (n) => runtime.sync.cosignature(n) }, cid, localOrigin(request) + cardPath(cid));
    return reply
      .type(BUNDLE_MEDIA_TYPE)
      .header('content-disposition', `attachment; filename="${bundleFileName(cid)}"`)
      .send(Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength));
  });

  await app.register(async (scope) => {
    scope.addContentTypeParser([BUNDLE_MEDIA_TYPE, 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: MAX_BUNDLE_BYTES }, (_request, body, done) => done(null, body));

    scope.post<{ Body: Buffer | { bundle: string } | string }>('/v1/verify', {
      config: { access: [...ANY_ROLE, 'tenant'] },
      bodyLimit: BODY_LIMIT,
      schema: {
        summary: 'Verify an offline bundle: send the ZIP bytes (application/zip) or JSON {"bundle": base64}. Answers the verdict, also when the bundle is invalid.',
        description: 'Same checks, order and verdict as `tessera bundle verify` and the renderer. An invalid bundle is a 200 answer with ok=false and error {code, where, message}; 4xx means the request itself was wrong.',
        tags: ['receipts'],
        security: secured,
        consumes: [BUNDLE_MEDIA_TYPE, 'application/json'],
        body: {
          content: {
            'application/json': { schema: { type: 'object', additionalProperties: false, required: ['bundle'], properties: { bundle: { type: 'string', minLength: 1, maxLength: BODY_LIMIT } } } },
            [BUNDLE_MEDIA_TYPE]: { schema: { description: 'The ZIP bytes.' } },
            'application/octet-stream': { schema: { description: 'The ZIP bytes.' } },
          },
        },
        response: { 200: bundleVerdictSchema, 400: errorRef, 401: errorRef, 413: errorRef, 415: errorRef },
      },
    }, async (request) => {
      const body = request.body;
      let bytes: Uint8Array;
      if (Buffer.isBuffer(body)) {
        bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
      } else if (typeof body !== 'object' || body === null) {
        throw new TesseraError('UNSUPPORTED_MEDIA_TYPE', 'Send the bundle as application/zip (the ZIP bytes) or application/json ({"bundle": "<base64 of the ZIP>"}).');
      } else {
        const problem = base64Problem(body.bundle);
        if (problem !== null) throw new TesseraError('VALIDATION_FAILED', `"bundle" must be the ZIP in base64: ${problem}.`);
        bytes = fromBase64(body.bundle);
      }
      if (bytes.length === 0) throw new TesseraError('VALIDATION_FAILED', 'The body is empty: send the bundle ZIP.');
      return verifyBundleOnHost(bytes);
    });
  });
};

