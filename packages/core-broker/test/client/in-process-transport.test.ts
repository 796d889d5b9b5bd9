import { InProcessTransport } from '../../src/client/in-process-transport';
import { startCluster } from '../support/client-harness';
import { transportConformance } from './transport-conformance';

transportConformance('InProcessTransport (closed broker)', async () => {
  const cluster = await startCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: 'T', queueCount: 2 }],
  });
  cluster.broker('broker-a').createTopic({ topic: 'OnlyA', queueCount: 1 });
  return {
    transport: cluster.transport,
    clock: cluster.clock,
    broker: (name) => cluster.broker(name),
    takeDown: (name) => cluster.broker(name).close(),
    close: () => cluster.close(),
  };
});

transportConformance('InProcessTransport (broker removed)', async () => {
  const cluster = await startCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: 'T', queueCount: 2 }],
  });
  cluster.broker('broker-a').createTopic({ topic: 'OnlyA', queueCount: 1 });
  return {
    transport: cluster.transport,
    clock: cluster.clock,
    broker: (name) => cluster.broker(name),
    takeDown: async (name) => void cluster.transport.removeBroker(name),
    close: () => cluster.close(),
  };
});

describe('InProcessTransport specifics', () => {
  test('a broker added later is registered with the channels already known, and appears in routes', async () => {
    const cluster = await startCluster({
      brokerNames: ['broker-a', 'broker-b'],
      topics: [{ topic: 'T', queueCount: 1 }],
    });
    try {
      const transport = new InProcessTransport(cluster.broker('broker-a'));
      const channel = { consumerIdsChanged: jest.fn() };
      transport.register('c1', channel);
      expect((await transport.topicRoute('T')).brokers).toHaveLength(1);
      transport.addBroker(cluster.broker('broker-b'));
      expect(cluster.broker('broker-b').channel('c1')).toBe(channel);
      expect((await transport.topicRoute('T')).brokers).toHaveLength(2);
      expect(transport.brokerNames()).toEqual(['broker-a', 'broker-b']);
      expect(() => transport.addBroker(cluster.broker('broker-b'))).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      await transport.unregister('c1');
      expect(cluster.broker('broker-b').channel('c1')).toBeUndefined();
    } finally {
      await cluster.close();
    }
  });
});
