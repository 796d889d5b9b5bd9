import { Inject, Injectable, Logger } from '@nestjs/common';
import type { InboxMessage } from '@rocketnest/core-broker/outbox';
import { RocketConnection } from '@rocketnest/nest-transport';
import { randomUUID } from 'node:crypto';
import {
  ORDER_TIMEOUTS_TOPIC,
  ORDERS_TOPIC,
  OrderTag,
  PaymentTag,
  type OrderCreatedEvent,
  type OrderNoteEvent,
  type OrderStatusEvent,
  type OrderTimeoutEvent,
  type PaymentResultEvent,
} from '../contracts';
import type { OrderRecord, OrderView, TransitionResult } from './order.repository';
import { OrderStore } from './order.store';
import { ORDER_SERVICE_OPTIONS, type OrderServiceOptions } from './order-service.options';

/** A validated `POST /orders` body. */
export interface PlaceOrderInput {
  amountCents: number;
  card: string;
}

/** The broker message a handler is working on. */
export interface Delivery {
  /** The id the message was first stored under (a retried copy has its own id). */
  msgId: string;
  topic: string;
  tag: string;
  keys: readonly string[];
  properties: Readonly<Record<string, string>>;
}

/**
 * The order service's use cases; HTTP and message handlers are thin layers over it. Every change
 * is one transaction of its {@link OrderStore} (SQLite or PostgreSQL) holding the business rows,
 * the outbox rows of the messages it publishes, and (for a consumed message) its inbox key.
 */
@Injectable()
export class OrderService {
  private readonly logger = new Logger(OrderService.name);

  constructor(
    private readonly store: OrderStore,
    private readonly connection: RocketConnection,
    @Inject(ORDER_SERVICE_OPTIONS) private readonly options: OrderServiceOptions,
  ) {}

  /**
   * Creates an order in status `created` and, in the same transaction, the outbox rows of
   * `orders`/`created` (message group: the order id, so one order's messages stay in order) and of
   * the delayed `orders`/`timeout`. The relay publishes them.
   */
  place(input: PlaceOrderInput): Promise<OrderView> {
    const id = `ord-${randomUUID()}`;
    const createdAtMs = this.connection.clock.now();
    const created: OrderCreatedEvent = {
      orderId: id,
      amountCents: input.amountCents,
      card: input.card,
      createdAtMs,
    };
    const timeout: OrderTimeoutEvent = { orderId: id };
    return this.store.place(
      { id, amountCents: input.amountCents, cardLast4: input.card.slice(-4), createdAtMs },
      [
        {
          topic: ORDERS_TOPIC,
          tag: OrderTag.CREATED,
          keys: [id],
          messageGroup: id,
          body: JSON.stringify(created),
        },
        {
          // no message group: RocketMQ 5 (Apache) refuses one on a delayed message; the timeout
          // is applied idempotently, whatever arrived before it
          topic: ORDER_TIMEOUTS_TOPIC,
          tag: OrderTag.TIMEOUT,
          keys: [id],
          delayMs: this.options.orderTimeoutMs,
          body: JSON.stringify(timeout),
        },
      ],
    );
  }

  recent(limit: number): Promise<OrderRecord[]> {
    return this.store.recent(limit);
  }

  get(orderId: string): Promise<OrderView | undefined> {
    return this.store.view(orderId);
  }

  /** The order service saw its own `orders`/`created`: the timeline gets the broker's message id. */
  createdSeen(event: OrderCreatedEvent, delivery: Delivery): Promise<void> {
    return this.store.recordCreatedMessage(inboxMessage(delivery), event.orderId, delivery.msgId);
  }

  /** `payments`/`succeeded` → `paid`, `payments`/`failed` → `failed`; only from `created`. */
  applyPayment(event: PaymentResultEvent, delivery: Delivery): Promise<TransitionResult> {
    const succeeded = event.status === PaymentTag.SUCCEEDED;
    return this.transition(event.orderId, succeeded ? 'paid' : 'failed', delivery, {
      detail: succeeded ? `payment ${event.paymentId}` : (event.reason ?? 'declined'),
    });
  }

  /** `orders`/`timeout` → `cancelled`, if the order is still unpaid. */
  applyTimeout(event: OrderTimeoutEvent, delivery: Delivery): Promise<TransitionResult> {
    return this.transition(event.orderId, 'cancelled', delivery, {
      detail: `unpaid after ${this.options.orderTimeoutMs} ms`,
    });
  }

  /** `order-notes`/`note` → a `note` entry on the order's timeline; false for an unknown order. */
  async addNote(event: OrderNoteEvent, delivery: Delivery): Promise<boolean> {
    const outcome = await this.store.addNote(inboxMessage(delivery), event.orderId, {
      topic: delivery.topic,
      tag: delivery.tag,
      msgId: delivery.msgId,
      atMs: this.connection.clock.now(),
      text: event.text,
    });
    return outcome ?? true;
  }

  /**
   * Moves the order and, in the same transaction, records the message in the inbox and writes the
   * outbox row announcing the change (`orders`/`paid|failed|cancelled`).
   */
  private async transition(
    orderId: string,
    to: OrderStatusEvent['status'],
    delivery: Delivery,
    cause: { detail: string },
  ): Promise<TransitionResult> {
    const result = await this.store.transition(
      inboxMessage(delivery),
      orderId,
      to,
      {
        topic: delivery.topic,
        tag: delivery.tag,
        msgId: delivery.msgId,
        atMs: this.connection.clock.now(),
        detail: cause.detail,
      },
      () => {
        const event: OrderStatusEvent = { orderId, status: to, causeMsgId: delivery.msgId };
        return {
          topic: ORDERS_TOPIC,
          tag: to,
          keys: [orderId],
          messageGroup: orderId,
          body: JSON.stringify(event),
        };
      },
    );
    if (!result.applied && result.reason === 'duplicate') {
      this.logger.debug?.(`${delivery.topic}/${delivery.tag} ${delivery.msgId}: duplicate, skipped`);
    }
    return result;
  }
}

/** What the inbox deduplicates a delivery by. */
function inboxMessage(delivery: Delivery): InboxMessage {
  return { msgId: delivery.msgId, keys: delivery.keys, properties: delivery.properties };
}
