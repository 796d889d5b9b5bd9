import type { Cluster } from '../support/client-harness';
import { readQueue, startCluster, text } from '../support/client-harness';
import { Producer } from '../../src/client/producer';
import type { ProducerMessage, SendResult } from '../../src/client/producer';
import type { MessageView } from '../../src/message/message';
import type { TopicInput } from '../../src/message/protocol';

/** An embedded broker (memory store, in-process transport) with one-queue topics, and a started producer. */
export async function startBrokerAndProducer(topics: Array<string | TopicInput>): Promise<{
  cluster: Cluster;
  producer: Producer;
  read(topic: string): Promise<MessageView[]>;
  close(): Promise<void>;
}> {
  const cluster = await startCluster({
    topics: topics.map((t) => ({ queueCount: 1, ...(typeof t === 'string' ? { topic: t } : t) })),
  });
  const producer = new Producer({ group: 'outbox-relay', transport: cluster.transport });
  await producer.start();
  return {
    cluster,
    producer,
    read: (topic) => readQueue(cluster.brokers[0]!, topic, 0),
    close: async () => {
      await producer.shutdown();
      await cluster.close();
    },
  };
}

/** A publisher that fails the first `failures` sends of matching messages, then forwards. */
export function flakyPublisher(
  inner: { send(m: ProducerMessage): Promise<SendResult> },
  fails: (m: ProducerMessage) => boolean,
): { send(m: ProducerMessage): Promise<SendResult>; attempts: number } {
  const publisher = {
    attempts: 0,
    send: async (m: ProducerMessage) => {
      publisher.attempts++;
      if (fails(m)) throw new Error(`injected send failure for ${m.topic}`);
      return inner.send(m);
    },
  };
  return publisher;
}

export { text };

/** Polls `condition` every 5 ms of real time; throws naming `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
