import { type Transport } from '@rocketnest/core-broker';
import { Broker, InProcessTransport, MemoryStore, type BrokerOptions } from '@rocketnest/core-broker/broker';

/** A broker on a memory store for one test file, with the topics it needs and the reply topic. */
export interface TestBroker {
  broker: Broker;
  transport: Transport;
  close(): Promise<void>;
}

export async function startTestBroker(
  topics: Array<string | { topic: string; queueCount?: number; fifo?: boolean }>,
  options: Omit<BrokerOptions, 'store'> = {},
): Promise<TestBroker> {
  const store = await MemoryStore.create();
  const broker = await Broker.start({ ...options, store });
  for (const topic of ['RocketNestReply', ...topics]) {
    broker.createTopic(typeof topic === 'string' ? { topic, queueCount: 4 } : { queueCount: 4, ...topic });
  }
  return {
    broker,
    transport: new InProcessTransport(broker),
    async close() {
      await broker.close();
      await store.close();
    },
  };
}
