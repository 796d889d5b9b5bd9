import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { PaymentTag } from '../contracts';
import type { SqliteDatabase } from '../sqlite-database';

/** Injection token of the payment service's own SQLite connection. */
export const PAYMENT_DATABASE = Symbol('PAYMENT_DATABASE');

export interface PaymentRecord {
  paymentId: string;
  orderId: string;
  /** Id of the transactional message (half message) that announced this payment. */
  transactionId: string;
  status: PaymentTag;
  amountCents: number;
  reason: string | null;
  createdAtMs: number;
}

interface PaymentRow {
  payment_id: string;
  order_id: string;
  transaction_id: string;
  status: PaymentTag;
  amount_cents: number;
  reason: string | null;
  created_at_ms: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS payments (
  payment_id     TEXT PRIMARY KEY,
  order_id       TEXT NOT NULL UNIQUE,
  transaction_id TEXT NOT NULL UNIQUE,
  status         TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
  amount_cents   INTEGER NOT NULL,
  reason         TEXT,
  created_at_ms  INTEGER NOT NULL
);
`;

/**
 * Payments in the payment service's SQLite database: one per order (the `order_id` is unique, so a
 * second charge for an order cannot be recorded). Closes the database at shutdown.
 */
@Injectable()
export class PaymentRepository implements OnApplicationShutdown {
  constructor(@Inject(PAYMENT_DATABASE) readonly db: SqliteDatabase) {
    db.exec(SCHEMA);
  }

  /** Records a payment; false (and nothing written) when the order already has one. */
  record(payment: PaymentRecord): boolean {
    const result = this.db
      .prepare(
        `INSERT INTO payments (payment_id, order_id, transaction_id, status, amount_cents, reason, created_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      )
      .run(
        payment.paymentId,
        payment.orderId,
        payment.transactionId,
        payment.status,
        payment.amountCents,
        payment.reason,
        payment.createdAtMs,
      );
    return result.changes === 1;
  }

  findByOrder(orderId: string): PaymentRecord | undefined {
    const row = this.db.prepare('SELECT * FROM payments WHERE order_id = ?').get(orderId) as
      PaymentRow | undefined;
    return row && toRecord(row);
  }

  findByTransaction(transactionId: string): PaymentRecord | undefined {
    const row = this.db.prepare('SELECT * FROM payments WHERE transaction_id = ?').get(transactionId) as
      PaymentRow | undefined;
    return row && toRecord(row);
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM payments').get() as { n: number }).n;
  }

  onApplicationShutdown(): void {
    if (this.db.open) this.db.close();
  }
}

function toRecord(row: PaymentRow): PaymentRecord {
  return {
    paymentId: row.payment_id,
    orderId: row.order_id,
    transactionId: row.transaction_id,
    status: row.status,
    amountCents: row.amount_cents,
    reason: row.reason,
    createdAtMs: row.created_at_ms,
  };
}
