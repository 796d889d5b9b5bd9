import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Producer, type SendResult } from '@rocketnest/core-broker';
import { RocketContext, RocketListener } from '../src';
import { startTestBroker, type TestBroker } from './support/embedded-broker';
import { startRocketMicroservice } from './support/nest-app';
import { waitFor } from './support/wait';

let tb: TestBroker;
let producer: Producer;
const consumer = { consumeFromWhere: 'FIRST_OFFSET' as const, suspendTimeoutMs: 200 };

beforeAll(async () => {
  tb = await startTestBroker(['orders', 'payments']);
  producer = new Producer({ group: 'test-producer', transport: tb.transport });
  await producer.start();
});
afterAll(async () => {
  await producer.shutdown();
  await tb.close();
});

function send(
  topic: string,
  tag: string,
  body: unknown,
  properties?: Record<string, string>,
): Promise<SendResult> {
  return producer.send({ topic, tag, body: JSON.stringify(body), ...(properties ? { properties } : {}) });
}

describe('RocketServer on an embedded broker', () => {
  it('dispatches by tag within one merged subscription and hands handlers the payload and context', async () => {
    const seen: Array<{ handler: string; payload: unknown; tag: string | undefined; msgId: string }> = [];
    @Controller()
    class OrdersController {
      @RocketListener('orders', 'created', { group: 'tags-group' })
      onCreated(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
        seen.push({ handler: 'created', payload, tag: ctx.getTag(), msgId: ctx.getMessageId() });
      }
      @RocketListener('orders', 'paid || refunded', { group: 'tags-group' })
      onPaid(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
        seen.push({ handler: 'paid', payload, tag: ctx.getTag(), msgId: ctx.getMessageId() });
      }
    }
    const { app, server } = await startRocketMicroservice([OrdersController], {
      transport: tb.transport,
      consumer,
    });
    try {
      const sent = await send('orders', 'created', { id: 1 });
      await send('orders', 'shipped', { id: 2 });
      await send('orders', 'refunded', { id: 3 });
      await waitFor(() => seen.length >= 2, 'two messages');
      expect(seen).toEqual(
        expect.arrayContaining([
          { handler: 'created', payload: { id: 1 }, tag: 'created', msgId: sent.msgId },
          expect.objectContaining({ handler: 'paid', payload: { id: 3 }, tag: 'refunded' }),
        ]),
      );
      const { pushConsumers } = server.unwrap<{ pushConsumers: Map<string, unknown> }>();
      expect([...pushConsumers.keys()]).toEqual(['tags-group']);
    } finally {
      await app.close();
    }
    expect(seen).toHaveLength(2);
  });
});
