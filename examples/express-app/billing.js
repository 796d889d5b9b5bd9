'use strict';
const { ConsumeResult, PushConsumer } = require('@rocketnest/core-broker');

/** Stands in for a payment provider: `failNext` makes the next charges throw, as an outage would. */
class Billing {
  constructor() {
    this.charged = [];
    this.failNext = 0;
  }

  charge(order) {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error(`payment provider unavailable (order ${order.id})`);
    }
    this.charged.push(order.id);
  }
}

/**
 * The handler of `orders:created`, in consumer group `billing`. A throw returns RECONSUME_LATER:
 * the broker redelivers with RocketMQ's backoff (10 s, 30 s, 1 min, …).
 */
async function startBillingConsumer({ transport, billing, clock }) {
  const consumer = new PushConsumer({
    group: 'billing',
    transport,
    consumeFromWhere: 'FIRST_OFFSET',
    ...(clock ? { clock } : {}),
  });
  consumer.subscribe('orders', 'created');
  consumer.registerMessageListener(async (messages) => {
    for (const message of messages) billing.charge(JSON.parse(message.body.toString()));
    return ConsumeResult.CONSUME_SUCCESS;
  });
  await consumer.start();
  return consumer;
}

module.exports = { Billing, startBillingConsumer };
