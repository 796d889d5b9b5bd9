import { Body, Controller, Post } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { RocketListener, RocketTemplate } from '@rocketnest/nest-transport';
import { BillingService, type Order } from './billing.service';

@Controller('orders')
export class OrdersController {
  constructor(
    private readonly rocket: RocketTemplate,
    private readonly billing: BillingService,
  ) {}

  /** Publishes `orders:created`; the listener below charges it (here or in another instance). */
  @Post()
  async create(@Body() order: Order): Promise<{ msgId: string }> {
    const sent = await this.rocket.send('orders:created', order, { keys: [order.id] });
    return { msgId: sent.msgId };
  }

  /** A throw retries the message with RocketMQ's backoff (10 s, 30 s, 1 min, …). */
  @RocketListener('orders', 'created', { group: 'billing' })
  onCreated(@Payload() order: Order): void {
    this.billing.charge(order);
  }
}
