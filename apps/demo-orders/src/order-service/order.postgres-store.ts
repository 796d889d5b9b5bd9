import { type Clock } from '@rocketnest/core-broker';
import { PostgresInbox, type InboxMessage, type OutboxMessage } from '@rocketnest/core-broker/outbox';
import type { RocketOutbox } from '@rocketnest/nest-transport';
import type { Pool, PoolClient } from 'pg';
import { ORDER_SERVICE_GROUP, type OrderStatus } from '../contracts';
import { inPostgresTransaction } from '../postgres-database';
import type { NewOrder, OrderRecord, OrderView, TransitionResult } from './order.repository';
import {
  ORDER_COLUMNS,
  OrderStore,
  noSuchOrder,
  orderRecordOf,
  timelineEntryOf,
  type NoteEntry,
  type OrderRow,
  type TimelineRow,
  type TransitionCause,
} from './order.store';

/** The order service's tables on PostgreSQL (in the service's schema: the pool's search path). */
export const ORDER_POSTGRES_SCHEMA = `
CREATE TABLE IF NOT EXISTS orders (
  seq           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id            text PRIMARY KEY,
  status        text NOT NULL CHECK (status IN ('created', 'paid', 'failed', 'cancelled')),
  amount_cents  bigint NOT NULL CHECK (amount_cents > 0),
  card_last4    text NOT NULL,
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS order_timeline (
  seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id text NOT NULL REFERENCES orders (id),
  event    text NOT NULL,
  topic    text NOT NULL,
  tag      text NOT NULL,
  msg_id   text,
  at_ms    bigint NOT NULL,
  detail   text
);
CREATE UNIQUE INDEX IF NOT EXISTS order_timeline_status ON order_timeline (order_id, event) WHERE event <> 'note';
`;

type Queryable = Pool | PoolClient;

/**
 * {@link OrderStore} on PostgreSQL: the orders and timeline tables, `PostgresInbox` and
 * `PostgresOutbox` (through `RocketOutbox`) in the service's schema, each change in one
 * transaction on one client of the pool (which `OrderPostgresModule` owns and closes).
 */
export class PostgresOrderStore extends OrderStore {
  private readonly inbox: PostgresInbox;

  private constructor(
    private readonly pool: Pool,
    private readonly outbox: RocketOutbox,
    schema: string,
    clock: Clock,
  ) {
    super();
    this.inbox = new PostgresInbox({
      consumer: ORDER_SERVICE_GROUP,
      table: `${schema}.rocketnest_inbox`,
      clock,
    });
  }

  /** Creates the tables when absent (idempotent) and returns the store. */
  static async create(
    pool: Pool,
    outbox: RocketOutbox,
    schema: string,
    clock: Clock,
  ): Promise<PostgresOrderStore> {
    const store = new PostgresOrderStore(pool, outbox, schema, clock);
    await pool.query(ORDER_POSTGRES_SCHEMA);
    await store.inbox.migrate(pool);
    return store;
  }

  place(order: NewOrder, messages: readonly OutboxMessage[]): Promise<OrderView> {
    return inPostgresTransaction(this.pool, async (client) => {
      await client.query(
        `INSERT INTO orders (id, status, amount_cents, card_last4, created_at_ms, updated_at_ms)
         VALUES ($1, 'created', $2, $3, $4, $4)`,
        [order.id, order.amountCents, order.cardLast4, order.createdAtMs],
      );
      await client.query(
        `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
         VALUES ($1, 'created', 'orders', 'created', NULL, $2, NULL)`,
        [order.id, order.createdAtMs],
      );
      for (const message of messages) await this.outbox.add(client, message);
      return (await this.viewOn(client, order.id))!;
    });
  }

  find(orderId: string): Promise<OrderRecord | undefined> {
    return this.findOn(this.pool, orderId);
  }

  view(orderId: string): Promise<OrderView | undefined> {
    return this.viewOn(this.pool, orderId);
  }

  async recent(limit: number): Promise<OrderRecord[]> {
    const { rows } = await this.pool.query<OrderRow>(
      `SELECT ${ORDER_COLUMNS} FROM orders ORDER BY created_at_ms DESC, seq DESC LIMIT $1`,
      [limit],
    );
    return rows.map(orderRecordOf);
  }

  async recordCreatedMessage(message: InboxMessage, orderId: string, msgId: string): Promise<void> {
    await inPostgresTransaction(this.pool, (client) =>
      this.inbox.process(client, message, () =>
        client.query(
          `UPDATE order_timeline SET msg_id = $1 WHERE order_id = $2 AND event = 'created' AND msg_id IS NULL`,
          [msgId, orderId],
        ),
      ),
    );
  }

  async transition(
    message: InboxMessage,
    orderId: string,
    to: Exclude<OrderStatus, 'created'>,
    cause: TransitionCause,
    announce: (order: OrderRecord) => OutboxMessage,
  ): Promise<TransitionResult> {
    const outcome = await inPostgresTransaction(this.pool, (client) =>
      this.inbox.process(client, message, async (): Promise<TransitionResult> => {
        const updated = await client.query(
          `UPDATE orders SET status = $1, updated_at_ms = $2 WHERE id = $3 AND status = 'created'`,
          [to, cause.atMs, orderId],
        );
        if (updated.rowCount !== 1) {
          const current = await this.findOn(client, orderId);
          return current
            ? { applied: false, reason: 'not-created', status: current.status }
            : { applied: false, reason: 'not-found' };
        }
        await client.query(
          `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [orderId, to, cause.topic, cause.tag, cause.msgId, cause.atMs, cause.detail ?? null],
        );
        const order = (await this.findOn(client, orderId))!;
        await this.outbox.add(client, announce(order));
        return { applied: true, order };
      }),
    );
    return outcome.status === 'processed' ? outcome.result : { applied: false, reason: 'duplicate' };
  }

  async addNote(message: InboxMessage, orderId: string, note: NoteEntry): Promise<boolean | undefined> {
    const outcome = await inPostgresTransaction(this.pool, (client) =>
      this.inbox.process(client, message, async () => {
        if (!(await this.findOn(client, orderId))) return false;
        await client.query(
          `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
           VALUES ($1, 'note', $2, $3, $4, $5, $6)`,
          [orderId, note.topic, note.tag, note.msgId, note.atMs, note.text],
        );
        return true;
      }),
    );
    return outcome.status === 'processed' ? outcome.result : undefined;
  }

  addForOrders(orderIds: readonly string[], messages: readonly OutboxMessage[]): Promise<string[]> {
    return inPostgresTransaction(this.pool, async (client) => {
      const ids: string[] = [];
      for (const [i, message] of messages.entries()) {
        if (!(await this.findOn(client, orderIds[i]!))) throw noSuchOrder(orderIds[i]!);
        ids.push(await this.outbox.add(client, message));
      }
      return ids;
    });
  }

  private async findOn(db: Queryable, orderId: string): Promise<OrderRecord | undefined> {
    const { rows } = await db.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1`, [orderId]);
    return rows[0] && orderRecordOf(rows[0]);
  }

  private async viewOn(db: Queryable, orderId: string): Promise<OrderView | undefined> {
    const order = await this.findOn(db, orderId);
    if (!order) return undefined;
    const { rows } = await db.query<TimelineRow>(
      'SELECT event, topic, tag, msg_id, at_ms, detail FROM order_timeline WHERE order_id = $1 ORDER BY seq',
      [orderId],
    );
    return {
      ...order,
      timeline: rows.map(timelineEntryOf),
    };
  }
}
