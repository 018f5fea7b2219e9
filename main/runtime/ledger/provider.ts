/**
 * Payment providers (seed 000 §4.3: "PSP or internal balance"). A product session pays through this interface
 * only; the shipped provider is the device's internal balance, a PSP (a card terminal, an online acquirer) is
 * another implementation of the same asynchronous methods.
 *
 * Contract every provider keeps:
 * - `capture` and `refund` are idempotent by `idempotency_key`: asked again with the same key (a retry, a restart
 *   after a crash) they answer the first result and move no money again;
 * - `findCapture(key)` says whether a capture with that key happened — what a session asks after a crash between
 *   asking for a payment and recording its answer;
 * - a refund never exceeds what its capture took, across all refunds of that capture.
 */
import { TesseraError } from '../../common/errors.js';
import type { Ledger, LedgerTransaction } from './index.js';

export interface CaptureRequest {
  session_id: string;
  wallet_id: string;
  amount: number;
  currency: string;
  idempotency_key: string;
  /** Who is paid: the product (its revenue account). */
  merchant: string;
}

export interface Payment {
  payment_id: string;
  amount: number;
  currency: string;
  captured_at: string;
}

export interface RefundRequest {
  payment_id: string;
  amount: number;
  currency: string;
  idempotency_key: string;
  reason: string;
}

export interface Refund {
  refund_id: string;
  refunded_at: string;
}

export interface PaymentProvider {
  /** A name for receipts and logs (`internal-balance`). */
  readonly name: string;
  /** @throws INSUFFICIENT_FUNDS (nothing taken), IDEMPOTENCY_CONFLICT */
  capture(request: CaptureRequest): Promise<Payment>;
  findCapture(idempotencyKey: string): Promise<Payment | undefined>;
  /** @throws VALIDATION_FAILED (more than is left to refund, or not a capture of this provider) */
  refund(request: RefundRequest): Promise<Refund>;
}

const asPayment = (tx: LedgerTransaction): Payment => {
  const revenue = tx.postings.find((p) => p.amount > 0)!;
  return { payment_id: tx.id, amount: revenue.amount, currency: revenue.currency, captured_at: tx.created_at };
};

/** The device's internal balance: a capture moves money from `wallet:<id>` to `revenue:<merchant>`, a refund back. */
export function createInternalBalanceProvider(ledger: Ledger): PaymentProvider {
  return {
    name: 'internal-balance',
    async capture(request) {
      if (!Number.isSafeInteger(request.amount) || request.amount <= 0) throw new TesseraError('VALIDATION_FAILED', 'A capture amount must be a positive integer number of minor units.');
      const tx = ledger.post({
        idempotency_key: request.idempotency_key,
        kind: 'capture',
        postings: [
          { account: `wallet:${request.wallet_id}`, amount: -request.amount, currency: request.currency },
          { account: `revenue:${request.merchant}`, amount: request.amount, currency: request.currency },
        ],
        product_runtime_session_id: request.session_id,
        memo: `payment for ${request.merchant}`,
      });
      return asPayment(tx);
    },
    async findCapture(key) {
      const tx = ledger.find(key);
      return tx && tx.kind === 'capture' ? asPayment(tx) : undefined;
    },
    async refund(request) {
      const capture = ledger.transaction(request.payment_id);
      if (!capture || capture.kind !== 'capture') throw new TesseraError('VALIDATION_FAILED', `${request.payment_id} is not a payment captured by the internal balance.`);
      const replay = ledger.find(request.idempotency_key);
      if (replay && replay.kind === 'refund' && replay.ref === capture.id) return { refund_id: replay.id, refunded_at: replay.created_at };
      const wallet = capture.postings.find((p) => p.account.startsWith('wallet:'))!;
      const revenue = capture.postings.find((p) => p.account.startsWith('revenue:'))!;
      const refunded = ledger.referring(capture.id).filter((t) => t.kind === 'refund').reduce((sum, t) => sum + t.postings.find((p) => p.account === wallet.account)!.amount, 0);
      if (request.currency !== revenue.currency) throw new TesseraError('CURRENCY_MISMATCH', `Payment ${capture.id} was in ${revenue.currency}, not ${request.currency}.`);
      if (!Number.isSafeInteger(request.amount) || request.amount <= 0 || refunded + request.amount > revenue.amount) {
        throw new TesseraError('VALIDATION_FAILED', `Payment ${capture.id} took ${revenue.amount} and ${refunded} was refunded already: ${request.amount} more cannot be refunded.`);
      }
      const tx = ledger.post({
        idempotency_key: request.idempotency_key,
        kind: 'refund',
        ref: capture.id,
        postings: [
          { account: revenue.account, amount: -request.amount, currency: revenue.currency },
          { account: wallet.account, amount: request.amount, currency: revenue.currency },
        ],
        ...(capture.product_runtime_session_id ? { product_runtime_session_id: capture.product_runtime_session_id } : {}),
        memo: request.reason.slice(0, 500),
      });
      return { refund_id: tx.id, refunded_at: tx.created_at };
    },
  };
}
