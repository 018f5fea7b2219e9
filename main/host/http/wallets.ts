/**
 * Wallet routes (seed 000 §2.1 "Wallet & Accounts"; issue 14 point 4): a wallet's balances for whoever pays from
 * it, its entries and top-ups for the operator. Money moves only through the ledger (main/runtime/ledger).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';

const errorRef = { $ref: 'Error#' } as const;
const secured = [{ bearer: [] as string[] }];
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\w.@-]+$' } } } as const;
const balances = { type: 'array', items: { type: 'object', required: ['currency', 'amount'], properties: { currency: { type: 'string' }, amount: { type: 'integer', description: 'Minor units (cents, kopiykas).' } } } } as const;
const walletSchema = { type: 'object', required: ['wallet_id', 'balances'], properties: { wallet_id: { type: 'string' }, balances } } as const;

const caller = (request: FastifyRequest): string => (request.principal === null ? 'unknown' : request.principal.kind === 'device' ? 'device' : request.principal.roles.join('+'));

export const walletRoutes: FastifyPluginAsync = async (app) => {
  const { runtime } = app.tessera;

  app.get<{ Params: { id: string } }>('/api/wallets/:id', {
    config: { access: ['traveller', 'staff', 'operator'] },
    schema: { summary: 'A wallet\'s balances, per currency, in minor units.', tags: ['wallets'], security: secured, params: idParam, response: { 200: walletSchema, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef } },
  }, async (request) => runtime.ledger.wallet(request.params.id));

  app.post<{ Params: { id: string }; Body: { amount: number; currency: string; idempotency_key: string; memo?: string } }>('/api/wallets/:id/topup', {
    config: { access: ['operator'] },
    schema: {
      summary: 'Add money to a wallet (the operator took cash or a card payment for it); idempotent by key.',
      tags: ['wallets'],
      security: secured,
      params: idParam,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['amount', 'currency', 'idempotency_key'],
        properties: {
          amount: { type: 'integer', minimum: 1, maximum: 10_000_000_000_000, description: 'Minor units.' },
          currency: { type: 'string', pattern: '^[A-Z]{3}$' },
          idempotency_key: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\w.:@/+=-]+$' },
          memo: { type: 'string', maxLength: 500 },
        },
      },
      response: {
        200: { type: 'object', required: ['transaction', 'wallet_id', 'balance', 'currency', 'replayed'], properties: { transaction: { type: 'string' }, wallet_id: { type: 'string' }, balance: { type: 'integer' }, currency: { type: 'string' }, replayed: { type: 'boolean', description: 'The key had already topped up: nothing was added again.' } } },
        400: errorRef, 401: errorRef, 403: errorRef, 409: errorRef,
      },
    },
  }, async (request) => {
    const { amount, currency, idempotency_key, memo } = request.body;
    const tx = runtime.ledger.topUp({ wallet_id: request.params.id, amount, currency, idempotency_key, by: caller(request), ...(memo === undefined ? {} : { memo }) });
    return { transaction: tx.id, wallet_id: request.params.id, balance: tx.balance, currency, replayed: tx.replayed };
  });

  app.get<{ Params: { id: string }; Querystring: { limit?: number; before?: number } }>('/api/wallets/:id/entries', {
    config: { access: ['operator'] },
    schema: {
      summary: 'A wallet\'s ledger entries, newest first; page with `before` = the `next` of the previous page.',
      tags: ['wallets'],
      security: secured,
      params: idParam,
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 500 }, before: { type: 'integer', minimum: 1 } } },
      response: {
        200: {
          type: 'object',
          required: ['entries', 'next'],
          properties: {
            entries: { type: 'array', items: { type: 'object', properties: { seq: { type: 'integer' }, transaction: { type: 'string' }, kind: { type: 'string' }, amount: { type: 'integer' }, currency: { type: 'string' }, memo: { type: ['string', 'null'] }, product_runtime_session_id: { type: ['string', 'null'] }, created_at: { type: 'string' } } } },
            next: { type: ['integer', 'null'] },
          },
        },
        400: errorRef, 401: errorRef, 403: errorRef,
      },
    },
  }, async (request) => runtime.ledger.entries(request.params.id, request.query));
};
