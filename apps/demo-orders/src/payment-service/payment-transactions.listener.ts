import { Injectable, Logger } from '@nestjs/common';
import {
  RocketConnection,
  RocketTransactionListener,
  RocketTransactionState,
  type RocketLocalTransactionListener,
  type RocketTransactionMessage,
} from '@rocketnest/nest-transport';
import { PAYMENT_TX_GROUP, PAYMENTS_TOPIC, isPaymentResultEvent } from '../contracts';
import { PaymentStore } from './payment.store';

/**
 * The local transaction of a `payments` message: recording the payment. The message is delivered
 * if and only if the payment row exists — the broker commits it when the row was written, and a
 * check-back (the answer was lost, the process died) is answered from the payment table.
 */
@Injectable()
@RocketTransactionListener({ producerGroup: PAYMENT_TX_GROUP, topics: [PAYMENTS_TOPIC] })
export class PaymentTransactionsListener implements RocketLocalTransactionListener {
  private readonly logger = new Logger(PaymentTransactionsListener.name);

  constructor(
    private readonly payments: PaymentStore,
    private readonly connection: RocketConnection,
  ) {}

  async executeLocalTransaction(message: RocketTransactionMessage): Promise<RocketTransactionState> {
    const event = message.payload;
    if (!isPaymentResultEvent(event)) return RocketTransactionState.ROLLBACK;
    const recorded = await this.payments.record({
      paymentId: event.paymentId,
      orderId: event.orderId,
      transactionId: message.transactionId,
      status: event.status,
      amountCents: event.amountCents,
      reason: event.reason ?? null,
      createdAtMs: this.connection.clock.now(),
    });
    if (!recorded) this.logger.warn(`order ${event.orderId} already has a payment; message rolled back`);
    return recorded ? RocketTransactionState.COMMIT : RocketTransactionState.ROLLBACK;
  }

  async checkLocalTransaction(message: RocketTransactionMessage): Promise<RocketTransactionState> {
    const found = (await this.payments.findByTransaction(message.transactionId)) !== undefined;
    this.logger.log(`check-back of ${message.transactionId}: ${found ? 'COMMIT' : 'ROLLBACK'}`);
    return found ? RocketTransactionState.COMMIT : RocketTransactionState.ROLLBACK;
  }
}
