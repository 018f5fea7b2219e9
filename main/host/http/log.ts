/**
 * Device log routes (issue 5 §7): the signed tree head, inclusion proofs of receipts and consistency proofs
 * between two sizes of the device's append-only receipt log (RFC 6962 hashing, runtime/receipts/device-log.ts).
 * Proofs verify with the same code the bundle verifier uses (common/merkle.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../../common/errors.js';
import { envelopeSchema } from '../schemas.js';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const hex = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
/**
 * A tree size as written in the query: decimal digits only (no `0x10`, `1e3` or `+5`, which a number coercion would
 * take), a minus sign let through so that a negative size gets the log's own LOG_RANGE_INVALID answer.
 */
const size = { type: 'string', pattern: '^-?(0|[1-9][0-9]{0,15})$' } as const;
const sizeOf = (text: string | undefined): number | undefined => (text === undefined ? undefined : Number(text));

export const logRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;
  const log = () => {
    if (!runtime.ready) throw new TesseraError('NOT_READY', `The runtime is ${runtime.state}.`);
    return runtime.deviceLog;
  };

  app.get<{ Querystring: { size?: string } }>('/v1/log/root', {
    config: { access: ['operator'] },
    schema: {
      summary: "The device log's tree head, signed by the device key (DSSE, application/vnd.tessera.tree-head+json).",
      description: 'Without `size`, the current head. A head once signed for a size is served again unchanged.',
      tags: ['log'],
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { size } },
      response: {
        200: {
          type: 'object',
          required: ['log', 'size', 'root', 'hash', 'issued_at', 'envelope'],
          properties: { log: { type: 'string' }, size: { type: 'integer' }, root: hex, hash: { type: 'string', enum: ['sha256'] }, issued_at: { type: 'string' }, envelope: envelopeSchema },
        },
        400: errorRef,
        401: errorRef,
        503: errorRef,
      },
    },
  }, async (request) => {
    const { head, envelope } = log().signedHead(sizeOf(request.query.size));
    return { log: head.log, size: head.size, root: head.root, hash: head.hash, issued_at: head.issued_at, envelope };
  });

  app.get<{ Querystring: { cid: string; size?: string } }>('/v1/log/inclusion', {
    config: { access: ['operator'] },
    schema: {
      summary: 'The audit path of a receipt (by its id) in the tree of `size` receipts (default: the current size).',
      description: 'Leaf = SHA-256(0x00 || UTF-8 bytes of the receipt id); RFC 6962 §2.1.1 path, nearest sibling first.',
      tags: ['log'],
      security: secured,
      querystring: { type: 'object', additionalProperties: false, required: ['cid'], properties: { cid: { type: 'string', pattern: '^b3:[0-9a-f]{64}$' }, size } },
      response: {
        200: {
          type: 'object',
          required: ['receipt', 'index', 'size', 'leaf_hash', 'path', 'root'],
          properties: { receipt: { type: 'string' }, index: { type: 'integer' }, size: { type: 'integer' }, leaf_hash: hex, path: { type: 'array', items: hex }, root: hex },
        },
        400: errorRef,
        401: errorRef,
        404: errorRef,
        503: errorRef,
      },
    },
  }, async (request) => log().inclusion(request.query.cid, sizeOf(request.query.size)));

  app.get<{ Querystring: { from: string; to?: string } }>('/v1/log/consistency', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Proof that the tree of `to` receipts (default: the current size) extends the tree of `from` receipts (RFC 6962 §2.1.2).',
      tags: ['log'],
      security: secured,
      querystring: { type: 'object', additionalProperties: false, required: ['from'], properties: { from: size, to: size } },
      response: {
        200: {
          type: 'object',
          required: ['from', 'to', 'from_root', 'to_root', 'proof'],
          properties: { from: { type: 'integer' }, to: { type: 'integer' }, from_root: hex, to_root: hex, proof: { type: 'array', items: hex } },
        },
        400: errorRef,
        401: errorRef,
        503: errorRef,
      },
    },
  }, async (request) => {
    const l = log();
    return l.consistency(sizeOf(request.query.from)!, sizeOf(request.query.to) ?? l.size);
  });
};
