import { Controller, Logger } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { RocketContext, RocketDiscard, RocketListener } from '@rocketnest/nest-transport';
import {
  ORDER_NOTE_TAG,
  ORDER_NOTES_TOPIC,
  ORDER_SERVICE_GROUP,
  ORDER_TIMEOUTS_TOPIC,
  ORDERS_TOPIC,
  OrderTag,
  PAYMENTS_TOPIC,
  PaymentTag,
  isOrderCreatedEvent,
  isOrderNoteEvent,
  isOrderTimeoutEvent,
  isPaymentResultEvent,
} from '../contracts';
import { originalMessageId } from '../message-delivery';
import { OrderService, type Delivery } from './order.service';

function delivery(ctx: RocketContext): Delivery {
  return {
    msgId: originalMessageId(ctx),
    topic: ctx.getTopic(),
    tag: ctx.getTag() ?? '',
    keys: ctx.getKeys(),
    properties: ctx.getProperties(),
  };
}

/** A body no handler can use: acked without retry, logged as discarded. */
function malformed(ctx: RocketContext): RocketDiscard {
  return new RocketDiscard(`malformed ${ctx.getTopic()}/${ctx.getTag()} message ${ctx.getMessageId()}`);
}

/**
 * The order service's message handlers. Each is idempotent twice over: the inbox skips a message
 * it has processed (a redelivery, or a relay's re-send of an outbox row), and the state machine
 * only leaves `created`, so a duplicate or late payment or timeout changes nothing.
 */
@Controller()
export class OrderEventsListener {
  private readonly logger = new Logger(OrderEventsListener.name);

  constructor(private readonly orders: OrderService) {}

  @RocketListener(ORDERS_TOPIC, OrderTag.CREATED, { group: ORDER_SERVICE_GROUP })
  async onCreated(@Payload() event: unknown, @Ctx() ctx: RocketContext): Promise<void> {
    if (!isOrderCreatedEvent(event)) throw malformed(ctx);
    await this.orders.createdSeen(event, delivery(ctx));
  }

  @RocketListener(ORDER_TIMEOUTS_TOPIC, OrderTag.TIMEOUT, { group: ORDER_SERVICE_GROUP })
  async onTimeout(@Payload() event: unknown, @Ctx() ctx: RocketContext): Promise<void> {
    if (!isOrderTimeoutEvent(event)) throw malformed(ctx);
    const result = await this.orders.applyTimeout(event, delivery(ctx));
    if (result.applied) this.logger.log(`order ${event.orderId} cancelled: unpaid at its timeout`);
  }

  @RocketListener(PAYMENTS_TOPIC, PaymentTag.SUCCEEDED, { group: ORDER_SERVICE_GROUP })
  async onPaymentSucceeded(@Payload() event: unknown, @Ctx() ctx: RocketContext): Promise<void> {
    await this.payment(event, ctx);
  }

  @RocketListener(PAYMENTS_TOPIC, PaymentTag.FAILED, { group: ORDER_SERVICE_GROUP })
  async onPaymentFailed(@Payload() event: unknown, @Ctx() ctx: RocketContext): Promise<void> {
    await this.payment(event, ctx);
  }

  @RocketListener(ORDER_NOTES_TOPIC, ORDER_NOTE_TAG, { group: ORDER_SERVICE_GROUP })
  async onNote(@Payload() event: unknown, @Ctx() ctx: RocketContext): Promise<void> {
    if (!isOrderNoteEvent(event)) throw malformed(ctx);
    if (!(await this.orders.addNote(event, delivery(ctx)))) {
      throw new RocketDiscard(`note for unknown order ${event.orderId}`);
    }
  }

  private async payment(event: unknown, ctx: RocketContext): Promise<void> {
    if (!isPaymentResultEvent(event) || event.status !== ctx.getTag()) throw malformed(ctx);
    const result = await this.orders.applyPayment(event, delivery(ctx));
    if (result.applied) this.logger.log(`order ${event.orderId} ${result.order.status}`);
    else if (result.reason === 'not-found')
      throw new RocketDiscard(`payment for unknown order ${event.orderId}`);
  }
}
