import { Controller, Logger } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { RocketContext, RocketDiscard, RocketListener, RocketTemplate } from '@rocketnest/nest-transport';
import { randomUUID } from 'node:crypto';
import {
  ORDERS_TOPIC,
  OrderTag,
  PAYMENT_SERVICE_GROUP,
  PAYMENT_TX_GROUP,
  PAYMENTS_TOPIC,
  PaymentTag,
  isOrderCreatedEvent,
  type PaymentResultEvent,
} from '../contracts';
import { PaymentGateway } from './payment-gateway';
import { PaymentStore } from './payment.store';

/** Charges new orders and publishes the outcome as a transactional `payments` message. */
@Controller()
export class PaymentListener {
  private readonly logger = new Logger(PaymentListener.name);

  constructor(
    private readonly gateway: PaymentGateway,
    private readonly payments: PaymentStore,
    private readonly rocket: RocketTemplate,
  ) {}

  @RocketListener(ORDERS_TOPIC, OrderTag.CREATED, { group: PAYMENT_SERVICE_GROUP })
  async onOrderCreated(@Payload() order: unknown, @Ctx() ctx: RocketContext): Promise<void> {
    if (!isOrderCreatedEvent(order)) {
      throw new RocketDiscard(`malformed orders/created message ${ctx.getMessageId()}`);
    }
    // Redelivery: the order was charged and its outcome published already.
    if (await this.payments.findByOrder(order.orderId)) return;
    const charge = this.gateway.charge(order.card, order.amountCents);
    if (charge.outcome === 'no-answer') {
      this.logger.warn(`order ${order.orderId}: the payment provider did not answer`);
      return;
    }
    const event: PaymentResultEvent = {
      orderId: order.orderId,
      paymentId: `pay-${randomUUID()}`,
      status: charge.outcome === 'approved' ? PaymentTag.SUCCEEDED : PaymentTag.FAILED,
      amountCents: order.amountCents,
      ...(charge.outcome === 'declined' ? { reason: charge.reason } : {}),
    };
    // The half message is stored, PaymentTransactionsListener records the payment, and the broker
    // delivers the message only if that local transaction committed. No message group: RocketMQ 5
    // (Apache) refuses one on a transactional message, and the order service applies payment
    // outcomes idempotently in any order.
    const sent = await this.rocket.sendInTransaction(`${PAYMENTS_TOPIC}:${event.status}`, event, undefined, {
      producerGroup: PAYMENT_TX_GROUP,
      keys: [order.orderId, event.paymentId],
    });
    this.logger.log(`order ${order.orderId}: payment ${event.status} (${sent.resolution}, ${sent.msgId})`);
  }
}
