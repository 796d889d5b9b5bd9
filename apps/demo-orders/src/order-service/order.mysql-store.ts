import type { Clock } from '@rocketnest/core-broker';
import { MysqlInbox, type InboxMessage, type OutboxMessage } from '@rocketnest/core-broker/outbox';
import type { RocketOutbox } from '@rocketnest/nest-transport';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ORDER_SERVICE_GROUP, type OrderStatus } from '../contracts';
import { inMysqlTransaction } from '../mysql-database';
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

/**
 * The order service's tables on MySQL 8 / MariaDB 10.6+ (in the pool's database). `status_key`
 * is the event for a status change and NULL for a note, so the unique key allows one row per
 * status and any number of notes (MySQL has no partial index).
 */
export const ORDER_MYSQL_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS orders (
    seq           BIGINT NOT NULL AUTO_INCREMENT UNIQUE,
    id            VARCHAR(64) PRIMARY KEY,
    status        VARCHAR(16) NOT NULL CHECK (status IN ('created', 'paid', 'failed', 'cancelled')),
    amount_cents  BIGINT NOT NULL CHECK (amount_cents > 0),
    card_last4    VARCHAR(4) NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  `CREATE TABLE IF NOT EXISTS order_timeline (
    seq        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id   VARCHAR(64) NOT NULL,
    event      VARCHAR(16) NOT NULL,
    topic      VARCHAR(255) NOT NULL,
    tag        VARCHAR(255) NOT NULL,
    msg_id     VARCHAR(64),
    at_ms      BIGINT NOT NULL,
    detail     TEXT,
    status_key VARCHAR(16) AS (IF(event = 'note', NULL, event)) STORED,
    UNIQUE KEY order_timeline_status (order_id, status_key),
    CONSTRAINT order_timeline_order FOREIGN KEY (order_id) REFERENCES orders (id)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
];

type Queryable = Pool | PoolConnection;

/**
 * {@link OrderStore} on MySQL/MariaDB: the orders and timeline tables, `MysqlInbox` and
 * `MysqlOutbox` (through `RocketOutbox`), each change in one transaction on one connection of the
 * pool (which `OrderMysqlModule` owns and closes).
 */
export class MysqlOrderStore extends OrderStore {
  private readonly inbox: MysqlInbox;

  private constructor(
    private readonly pool: Pool,
    private readonly outbox: RocketOutbox,
    clock: Clock,
  ) {
    super();
    this.inbox = new MysqlInbox({ consumer: ORDER_SERVICE_GROUP, clock });
  }

  /** Creates the tables when absent (idempotent) and returns the store. */
  static async create(pool: Pool, outbox: RocketOutbox, clock: Clock): Promise<MysqlOrderStore> {
    const store = new MysqlOrderStore(pool, outbox, clock);
    for (const ddl of ORDER_MYSQL_SCHEMA) await pool.query(ddl);
    await store.inbox.migrate(pool);
    return store;
  }

  place(order: NewOrder, messages: readonly OutboxMessage[]): Promise<OrderView> {
    return inMysqlTransaction(this.pool, async (c) => {
      await c.query(
        `INSERT INTO orders (id, status, amount_cents, card_last4, created_at_ms, updated_at_ms)
         VALUES (?, 'created', ?, ?, ?, ?)`,
        [order.id, order.amountCents, order.cardLast4, order.createdAtMs, order.createdAtMs],
      );
      await c.query(
        `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
         VALUES (?, 'created', 'orders', 'created', NULL, ?, NULL)`,
        [order.id, order.createdAtMs],
      );
      for (const message of messages) await this.outbox.add(c, message);
      return (await this.viewOn(c, order.id))!;
    });
  }

  find(orderId: string): Promise<OrderRecord | undefined> {
    return this.findOn(this.pool, orderId);
  }

  view(orderId: string): Promise<OrderView | undefined> {
    return this.viewOn(this.pool, orderId);
  }

  async recent(limit: number): Promise<OrderRecord[]> {
    const [rows] = await this.pool.query<Array<OrderRow & RowDataPacket>>(
      `SELECT ${ORDER_COLUMNS} FROM orders ORDER BY created_at_ms DESC, seq DESC LIMIT ?`,
      [limit],
    );
    return rows.map(orderRecordOf);
  }

  async recordCreatedMessage(message: InboxMessage, orderId: string, msgId: string): Promise<void> {
    await inMysqlTransaction(this.pool, (c) =>
      this.inbox.process(c, message, () =>
        c.query(
          `UPDATE order_timeline SET msg_id = ? WHERE order_id = ? AND event = 'created' AND msg_id IS NULL`,
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
    const outcome = await inMysqlTransaction(this.pool, (c) =>
      this.inbox.process(c, message, async (): Promise<TransitionResult> => {
        const [updated] = await c.query<ResultSetHeader>(
          `UPDATE orders SET status = ?, updated_at_ms = ? WHERE id = ? AND status = 'created'`,
          [to, cause.atMs, orderId],
        );
        if (updated.affectedRows !== 1) {
          const current = await this.findOn(c, orderId);
          return current
            ? { applied: false, reason: 'not-created', status: current.status }
            : { applied: false, reason: 'not-found' };
        }
        await c.query(
          `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
          [orderId, to, cause.topic, cause.tag, cause.msgId, cause.atMs, cause.detail ?? null],
        );
        const order = (await this.findOn(c, orderId))!;
        await this.outbox.add(c, announce(order));
        return { applied: true, order };
      }),
    );
    return outcome.status === 'processed' ? outcome.result : { applied: false, reason: 'duplicate' };
  }

  async addNote(message: InboxMessage, orderId: string, note: NoteEntry): Promise<boolean | undefined> {
    const outcome = await inMysqlTransaction(this.pool, (c) =>
      this.inbox.process(c, message, async () => {
        if (!(await this.findOn(c, orderId))) return false;
        await c.query(
          `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
           VALUES (?, 'note', ?, ?, ?, ?, ?)`,
          [orderId, note.topic, note.tag, note.msgId, note.atMs, note.text],
        );
        return true;
      }),
    );
    return outcome.status === 'processed' ? outcome.result : undefined;
  }

  addForOrders(orderIds: readonly string[], messages: readonly OutboxMessage[]): Promise<string[]> {
    return inMysqlTransaction(this.pool, async (c) => {
      const ids: string[] = [];
      for (const [i, message] of messages.entries()) {
        if (!(await this.findOn(c, orderIds[i]!))) throw noSuchOrder(orderIds[i]!);
        ids.push(await this.outbox.add(c, message));
      }
      return ids;
    });
  }

  private async findOn(db: Queryable, orderId: string): Promise<OrderRecord | undefined> {
    const [rows] = await db.query<Array<OrderRow & RowDataPacket>>(
      `SELECT ${ORDER_COLUMNS} FROM orders WHERE id = ?`,
      [orderId],
    );
    return rows[0] && orderRecordOf(rows[0]);
  }

  private async viewOn(db: Queryable, orderId: string): Promise<OrderView | undefined> {
    const order = await this.findOn(db, orderId);
    if (!order) return undefined;
    const [rows] = await db.query<Array<TimelineRow & RowDataPacket>>(
      'SELECT event, topic, tag, msg_id, at_ms, detail FROM order_timeline WHERE order_id = ? ORDER BY seq',
      [orderId],
    );
    return {
      ...order,
      timeline: rows.map(timelineEntryOf),
    };
  }
}
