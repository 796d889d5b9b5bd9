import { Inject, Injectable, Logger } from '@nestjs/common';
import { RocketConnection, RocketTemplate } from '@rocketnest/nest-transport';
import { randomUUID } from 'node:crypto';
import {
  ORDERS_TOPIC,
  OrderTag,
  PaymentTag,
  type OrderCreatedEvent,
  type OrderStatusEvent,
  type OrderTimeoutEvent,
  type PaymentResultEvent,
} from '../contracts';
import { OrderRepository, type OrderRecord, type OrderView, type TransitionResult } from './order.repository';
import { ORDER_SERVICE_OPTIONS, type OrderServiceOptions } from './order-service.options';

/** A validated `POST /orders` body. */
export interface PlaceOrderInput {
  amountCents: number;
  card: string;
}

/** The broker message a handler is working on. */
export interface Delivery {
  msgId: string;
  topic: string;
  tag: string;
}

/** The order service's use cases; HTTP and message handlers are thin layers over it. */
@Injectable()
export class OrderService {
  private readonly logger = new Logger(OrderService.name);

  constructor(
    private readonly orders: OrderRepository,
    private readonly rocket: RocketTemplate,
    private readonly connection: RocketConnection,
    @Inject(ORDER_SERVICE_OPTIONS) private readonly options: OrderServiceOptions,
  ) {}

  /**
   * Creates an order in status `created`, publishes `orders`/`created` (message group: the order
   * id, so one order's messages stay in order) and the delayed `orders`/`timeout`. When the broker
   * refuses the messages the order is removed again and the error is thrown.
   */
  async place(input: PlaceOrderInput): Promise<OrderView> {
    const id = `ord-${randomUUID()}`;
    const createdAtMs = this.connection.clock.now();
    this.orders.insert({ id, amountCents: input.amountCents, cardLast4: input.card.slice(-4), createdAtMs });
    const created: OrderCreatedEvent = {
      orderId: id,
      amountCents: input.amountCents,
      card: input.card,
      createdAtMs,
    };
    const timeout: OrderTimeoutEvent = { orderId: id };
    try {
      await this.rocket.sendOrderly(`${ORDERS_TOPIC}:${OrderTag.CREATED}`, created, id, { keys: [id] });
      await this.rocket.sendDelayed(
        `${ORDERS_TOPIC}:${OrderTag.TIMEOUT}`,
        timeout,
        this.options.orderTimeoutMs,
        {
          keys: [id],
          messageGroup: id,
        },
      );
    } catch (error) {
      this.orders.delete(id);
      throw error;
    }
    return this.orders.view(id)!;
  }

  recent(limit: number): OrderRecord[] {
    return this.orders.recent(limit);
  }

  get(orderId: string): OrderView | undefined {
    return this.orders.view(orderId);
  }

  /** The order service saw its own `orders`/`created`: the timeline gets the broker's message id. */
  createdSeen(event: OrderCreatedEvent, delivery: Delivery): void {
    this.orders.recordCreatedMessage(event.orderId, delivery.msgId);
  }

  /** `payments`/`succeeded` → `paid`, `payments`/`failed` → `failed`; only from `created`. */
  async applyPayment(event: PaymentResultEvent, delivery: Delivery): Promise<TransitionResult> {
    const to = event.status === PaymentTag.SUCCEEDED ? 'paid' : 'failed';
    const result = this.orders.transition(event.orderId, to, {
      ...delivery,
      atMs: this.connection.clock.now(),
      detail:
        event.status === PaymentTag.SUCCEEDED ? `payment ${event.paymentId}` : (event.reason ?? 'declined'),
    });
    await this.announce(result, delivery);
    return result;
  }

  /** `orders`/`timeout` → `cancelled`, if the order is still unpaid. */
  async applyTimeout(event: OrderTimeoutEvent, delivery: Delivery): Promise<TransitionResult> {
    const result = this.orders.transition(event.orderId, 'cancelled', {
      ...delivery,
      atMs: this.connection.clock.now(),
      detail: `unpaid after ${this.options.orderTimeoutMs} ms`,
    });
    await this.announce(result, delivery);
    return result;
  }

  /** Publishes an applied state change as `orders`/`paid|failed|cancelled` for whoever follows orders. */
  private async announce(result: TransitionResult, cause: Delivery): Promise<void> {
    if (!result.applied) {
      this.logger.debug?.(`${cause.topic}/${cause.tag} ${cause.msgId} changed nothing (${result.reason})`);
      return;
    }
    const order = result.order;
    const status = order.status as OrderStatusEvent['status'];
    const event: OrderStatusEvent = { orderId: order.id, status, causeMsgId: cause.msgId };
    await this.rocket.sendOrderly(`${ORDERS_TOPIC}:${status}`, event, order.id, { keys: [order.id] });
  }
}
