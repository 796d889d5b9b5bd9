import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import type { PaymentTag } from '../contracts';
import { closePostgresPool, inPostgresTransaction } from '../postgres-database';
import { PaymentRepository, type PaymentRecord } from './payment.repository';

/**
 * The payment service's storage, whatever the database: one payment per order. `SqlitePaymentStore`
 * wraps the synchronous `PaymentRepository`; `PostgresPaymentStore` uses a `pg.Pool`.
 */
export abstract class PaymentStore {
  /** Records a payment; false (and nothing written) when the order already has one. */
  abstract record(payment: PaymentRecord): Promise<boolean>;
  abstract findByOrder(orderId: string): Promise<PaymentRecord | undefined>;
  abstract findByTransaction(transactionId: string): Promise<PaymentRecord | undefined>;
  abstract count(): Promise<number>;
}

/** {@link PaymentStore} on the service's SQLite database (synchronous inside; no `await` in a transaction). */
@Injectable()
export class SqlitePaymentStore extends PaymentStore {
  constructor(private readonly payments: PaymentRepository) {
    super();
  }

  async record(payment: PaymentRecord): Promise<boolean> {
    return this.payments.record(payment);
  }

  async findByOrder(orderId: string): Promise<PaymentRecord | undefined> {
    return this.payments.findByOrder(orderId);
  }

  async findByTransaction(transactionId: string): Promise<PaymentRecord | undefined> {
    return this.payments.findByTransaction(transactionId);
  }

  async count(): Promise<number> {
    return this.payments.count();
  }
}

/** The payment table on PostgreSQL (in the service's schema: the pool's search path). */
export const PAYMENT_POSTGRES_SCHEMA = `
CREATE TABLE IF NOT EXISTS payments (
  payment_id     text PRIMARY KEY,
  order_id       text NOT NULL UNIQUE,
  transaction_id text NOT NULL UNIQUE,
  status         text NOT NULL CHECK (status IN ('succeeded', 'failed')),
  amount_cents   bigint NOT NULL,
  reason         text,
  created_at_ms  bigint NOT NULL
);
`;

interface PaymentRow {
  payment_id: string;
  order_id: string;
  transaction_id: string;
  status: PaymentTag;
  amount_cents: string;
  reason: string | null;
  created_at_ms: string;
}

/** {@link PaymentStore} on PostgreSQL. Owns its pool: ends it at shutdown. */
export class PostgresPaymentStore extends PaymentStore implements OnApplicationShutdown {
  private constructor(private readonly pool: Pool) {
    super();
  }

  /** Creates the payment table when absent (idempotent) and returns the store. */
  static async create(pool: Pool): Promise<PostgresPaymentStore> {
    try {
      await pool.query(PAYMENT_POSTGRES_SCHEMA);
    } catch (error) {
      await closePostgresPool(pool);
      throw error;
    }
    return new PostgresPaymentStore(pool);
  }

  record(payment: PaymentRecord): Promise<boolean> {
    return inPostgresTransaction(this.pool, async (client) => {
      const result = await client.query(
        `INSERT INTO payments (payment_id, order_id, transaction_id, status, amount_cents, reason, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
        [
          payment.paymentId,
          payment.orderId,
          payment.transactionId,
          payment.status,
          payment.amountCents,
          payment.reason,
          payment.createdAtMs,
        ],
      );
      return result.rowCount === 1;
    });
  }

  async findByOrder(orderId: string): Promise<PaymentRecord | undefined> {
    const { rows } = await this.pool.query<PaymentRow>('SELECT * FROM payments WHERE order_id = $1', [
      orderId,
    ]);
    return rows[0] && toRecord(rows[0]);
  }

  async findByTransaction(transactionId: string): Promise<PaymentRecord | undefined> {
    const { rows } = await this.pool.query<PaymentRow>('SELECT * FROM payments WHERE transaction_id = $1', [
      transactionId,
    ]);
    return rows[0] && toRecord(rows[0]);
  }

  async count(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM payments');
    return Number(rows[0]!.n);
  }

  async onApplicationShutdown(): Promise<void> {
    await closePostgresPool(this.pool);
  }
}

function toRecord(row: PaymentRow): PaymentRecord {
  return {
    paymentId: row.payment_id,
    orderId: row.order_id,
    transactionId: row.transaction_id,
    status: row.status,
    amountCents: Number(row.amount_cents),
    reason: row.reason,
    createdAtMs: Number(row.created_at_ms),
  };
}
