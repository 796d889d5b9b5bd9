import { Injectable } from '@nestjs/common';
import { RocketError } from '@rocketnest/core-broker';
import { type InboxMessage, type OutboxMessage } from '@rocketnest/core-broker/outbox';
import { RocketOutbox } from '@rocketnest/nest-transport';
import type { OrderStatus } from '../contracts';
import { OrderInbox } from './order-database.module';
import {
  OrderRepository,
  type NewOrder,
  type OrderRecord,
  type OrderView,
  type TimelineEntry,
  type TransitionResult,
} from './order.repository';

/** What a state change records: the message behind it, and when. */
export interface TransitionCause {
  topic: string;
  tag: string;
  msgId: string;
  atMs: number;
  detail?: string;
}

/** A note from an outside system, as it goes on the order's timeline. */
export interface NoteEntry {
  topic: string;
  tag: string;
  msgId: string;
  atMs: number;
  text: string;
}

/**
 * The order service's storage, whatever the database: each method is one transaction holding the
 * business rows, the outbox rows of the messages it publishes and (for a consumed message) its
 * inbox key. `SqliteOrderStore` runs synchronous better-sqlite3 transactions (never across an
 * `await`); `PostgresOrderStore` runs `BEGIN … COMMIT` on one client of a `pg.Pool`.
 */
export abstract class OrderStore {
  /** Inserts the order (status `created`, with its `created` timeline entry) and `messages` as outbox rows. */
  abstract place(order: NewOrder, messages: readonly OutboxMessage[]): Promise<OrderView>;
  abstract find(orderId: string): Promise<OrderRecord | undefined>;
  abstract view(orderId: string): Promise<OrderView | undefined>;
  /** The most recent orders, newest first. */
  abstract recent(limit: number): Promise<OrderRecord[]>;
  /** Records the message id of the order's `orders`/`created` (once per message: inbox). */
  abstract recordCreatedMessage(message: InboxMessage, orderId: string, msgId: string): Promise<void>;
  /**
   * Unless `message` was processed before (`duplicate`): moves the order from `created` to `to`,
   * appends the timeline entry and, when it moved, adds the outbox row `announce(order)`.
   */
  abstract transition(
    message: InboxMessage,
    orderId: string,
    to: Exclude<OrderStatus, 'created'>,
    cause: TransitionCause,
    announce: (order: OrderRecord) => OutboxMessage,
  ): Promise<TransitionResult>;
  /** Appends a note unless `message` was processed before; false for an unknown order, undefined for a duplicate. */
  abstract addNote(message: InboxMessage, orderId: string, note: NoteEntry): Promise<boolean | undefined>;
  /**
   * Adds outbox rows about existing orders in one transaction (`orderIds[i]` is the order of
   * `messages[i]`); `INVALID_ARGUMENT` (and nothing written) when one of the orders does not exist.
   */
  abstract addForOrders(orderIds: readonly string[], messages: readonly OutboxMessage[]): Promise<string[]>;
}

/** `INVALID_ARGUMENT`: an outbox row about an order that does not exist. */
export function noSuchOrder(orderId: string): RocketError {
  return new RocketError('INVALID_ARGUMENT', `no order "${orderId}"`);
}

/**
 * {@link OrderStore} on the service's SQLite database: `OrderRepository`, `SqliteInbox` and the
 * `SqliteOutbox`, each change in one synchronous better-sqlite3 transaction. The methods are
 * `async` only for the interface: their bodies never `await`, so no transaction stays open while
 * other work (the outbox relay on its own connection) runs.
 */
@Injectable()
export class SqliteOrderStore extends OrderStore {
  constructor(
    private readonly orders: OrderRepository,
    private readonly inbox: OrderInbox,
    private readonly outbox: RocketOutbox,
  ) {
    super();
  }

  async place(order: NewOrder, messages: readonly OutboxMessage[]): Promise<OrderView> {
    this.orders.transaction(() => {
      this.orders.insert(order);
      for (const message of messages) this.outbox.add(this.orders.db, message);
    });
    return this.orders.view(order.id)!;
  }

  async find(orderId: string): Promise<OrderRecord | undefined> {
    return this.orders.find(orderId);
  }

  async view(orderId: string): Promise<OrderView | undefined> {
    return this.orders.view(orderId);
  }

  async recent(limit: number): Promise<OrderRecord[]> {
    return this.orders.recent(limit);
  }

  async recordCreatedMessage(message: InboxMessage, orderId: string, msgId: string): Promise<void> {
    this.inbox.once(message, () => {
      this.orders.recordCreatedMessage(orderId, msgId);
    });
  }

  async transition(
    message: InboxMessage,
    orderId: string,
    to: Exclude<OrderStatus, 'created'>,
    cause: TransitionCause,
    announce: (order: OrderRecord) => OutboxMessage,
  ): Promise<TransitionResult> {
    const result = this.inbox.once(message, () => {
      const moved = this.orders.transition(orderId, to, cause);
      if (moved.applied) this.outbox.add(this.orders.db, announce(moved.order));
      return moved;
    });
    return result ?? { applied: false, reason: 'duplicate' };
  }

  async addNote(message: InboxMessage, orderId: string, note: NoteEntry): Promise<boolean | undefined> {
    return this.inbox.once(message, () => this.orders.addNote(orderId, note));
  }

  async addForOrders(orderIds: readonly string[], messages: readonly OutboxMessage[]): Promise<string[]> {
    return this.orders.transaction(() =>
      messages.map((message, i) => {
        if (!this.orders.find(orderIds[i]!)) throw noSuchOrder(orderIds[i]!);
        return this.outbox.add(this.orders.db, message);
      }),
    );
  }
}

/** An `orders` row as a server database driver returns it: bigint columns may arrive as strings. */
export interface OrderRow {
  id: string;
  status: OrderStatus;
  amount_cents: number | string;
  card_last4: string;
  created_at_ms: number | string;
  updated_at_ms: number | string;
}

/** An `order_timeline` row as a server database driver returns it. */
export interface TimelineRow {
  event: TimelineEntry['event'];
  topic: string;
  tag: string;
  msg_id: string | null;
  at_ms: number | string;
  detail: string | null;
}

/** The columns of {@link OrderRow}, in a SELECT. */
export const ORDER_COLUMNS = 'id, status, amount_cents, card_last4, created_at_ms, updated_at_ms';

/** An order row of the PostgreSQL or MySQL store as the service sees it. */
export function orderRecordOf(row: OrderRow): OrderRecord {
  return {
    id: row.id,
    status: row.status,
    amountCents: Number(row.amount_cents),
    cardLast4: row.card_last4,
    createdAtMs: Number(row.created_at_ms),
    updatedAtMs: Number(row.updated_at_ms),
  };
}

/** A timeline row of the PostgreSQL or MySQL store as the service sees it. */
export function timelineEntryOf(row: TimelineRow): TimelineEntry {
  return {
    event: row.event,
    topic: row.topic,
    tag: row.tag,
    msgId: row.msg_id,
    atMs: Number(row.at_ms),
    detail: row.detail,
  };
}
