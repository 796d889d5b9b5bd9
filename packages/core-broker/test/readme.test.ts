import { Broker, FileStore, InProcessTransport } from '../src/entries/broker';
import { ConsumeResult, Producer, PushConsumer } from '../src/index';
import type { MessageView } from '../src/index';
import * as path from 'node:path';
import { tempDir } from './support/temp-dir';

// The README's "Embedding a broker" example, as written there (with a temp data dir and a wait).
test('the README example runs and delivers the message', async () => {
  const t = tempDir();
  const data = path.join(t.dir, 'data');
  try {
    const store = await FileStore.open({ dir: data, flushMode: 'sync' });
    const broker = await Broker.start({ store, configDir: path.join(data, 'config') });
    broker.createTopic({ topic: 'orders', queueCount: 8 });
    const transport = new InProcessTransport(broker);

    const producer = new Producer({ group: 'order-service', transport });
    await producer.start();
    const sent = await producer.send({
      topic: 'orders',
      tag: 'created',
      keys: ['order-42'],
      body: '{"id":42}',
    });

    const received: MessageView[] = [];
    let delivered!: () => void;
    const arrived = new Promise<void>((resolve) => (delivered = resolve));
    const consumer = new PushConsumer({
      group: 'payment-service',
      transport,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    consumer.subscribe('orders', 'created || paid');
    consumer.registerMessageListener(async (messages) => {
      received.push(...messages);
      delivered();
      return ConsumeResult.CONSUME_SUCCESS;
    });
    await consumer.start();
    await arrived;
    expect(received.map((m) => [m.msgId, m.body.toString()])).toEqual([[sent.msgId, '{"id":42}']]);

    await consumer.shutdown();
    await producer.shutdown();
    await broker.close();
    await store.close();
  } finally {
    t.cleanup();
  }
});
