import { Producer } from '../../src/client/producer';
import { PushConsumer } from '../../src/client/push-consumer';
import type { MessageExt } from '../../src/client/push-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { isRocketError } from '../../src/common/errors';
import { RemotingClient } from '../../src/remoting/remoting-client';
import { RequestCode } from '../../src/remoting/request-codes';
import { BrokerServer } from '../../src/server/broker-server';
import { NameServer, type NameServerEvent } from '../../src/server/name-server';
import { transportConformance } from '../client/transport-conformance';
import { type Cluster, advance, startCluster, text, until } from '../support/client-harness';
import { ManualClock } from '../support/manual-clock';

/** Two name servers, brokers on memory stores registered with both, and a transport that only knows the name servers. */
interface NamedCluster {
  cluster: Cluster;
  nameServers: NameServer[];
  nameServerAddresses: string[];
  servers: Map<string, BrokerServer>;
  transport: TcpTransport;
  events: NameServerEvent[];
  close(): Promise<void>;
}

async function startNamedCluster(
  options: { brokerNames?: string[]; topics?: Array<{ topic: string; queueCount: number }> } = {},
): Promise<NamedCluster> {
  const cluster = await startCluster({
    brokerNames: options.brokerNames ?? ['broker-a', 'broker-b'],
    topics: options.topics,
  });
  const events: NameServerEvent[] = [];
  const nameServers = [
    await NameServer.start({ port: 0, onEvent: (e) => events.push(e) }),
    await NameServer.start({ port: 0 }),
  ];
  const nameServerAddresses = nameServers.map((n) => `127.0.0.1:${n.address().port}`);
  const servers = new Map<string, BrokerServer>();
  for (const broker of cluster.brokers) {
    const server = await BrokerServer.start({
      broker,
      host: '127.0.0.1',
      port: 0,
      nameServers: nameServerAddresses,
    });
    expect(server.registeredWith).toEqual({ registered: 2, of: 2 });
    servers.set(broker.brokerName, server);
  }
  const transport = new TcpTransport({ nameServers: nameServerAddresses, reconnectBackoffMinMs: 0 });
  return {
    cluster,
    nameServers,
    nameServerAddresses,
    servers,
    transport,
    events,
    close: async () => {
      await transport.close();
      for (const s of servers.values()) await s.close();
      for (const n of nameServers) await n.close();
      await cluster.close();
    },
  };
}

/** Polls a real-time condition (name-server registrations travel over real sockets). */
async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

async function routeBrokers(transport: TcpTransport, topic: string): Promise<string[]> {
  try {
    return (await transport.topicRoute(topic)).brokers.map((b) => b.brokerName).sort();
  } catch (error) {
    if (isRocketError(error, 'TOPIC_NOT_FOUND')) return [];
    throw error;
  }
}

transportConformance('TcpTransport through name servers', async () => {
  const t = await startNamedCluster({ topics: [{ topic: 'T', queueCount: 2 }] });
  t.cluster.broker('broker-a').createTopic({ topic: 'OnlyA', queueCount: 1 });
  // the new topic reaches the name servers by an immediate registration, not the 30 s period
  await eventually(async () => (await routeBrokers(t.transport, 'OnlyA')).length === 1, 'OnlyA registered');
  return {
    transport: t.transport,
    clock: t.cluster.clock,
    broker: (name) => t.cluster.broker(name),
    takeDown: (name) => t.servers.get(name)!.close(),
    close: () => t.close(),
  };
});

describe('name servers', () => {
  test('routes come from the name servers, with each broker address; sends spread over both brokers and are all consumed', async () => {
    const t = await startNamedCluster({ topics: [{ topic: 'Orders', queueCount: 2 }] });
    const { clock } = t.cluster;
    const producer = new Producer({ group: 'PG', transport: t.transport, clock });
    const consumer = new PushConsumer({
      group: 'CG',
      transport: t.transport,
      clock,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    const seen: MessageExt[] = [];
    try {
      const route = await t.transport.topicRoute('Orders');
      expect(route.brokers.map((b) => [b.brokerName, b.address])).toEqual([
        ['broker-a', `127.0.0.1:${t.servers.get('broker-a')!.address().port}`],
        ['broker-b', `127.0.0.1:${t.servers.get('broker-b')!.address().port}`],
      ]);
      expect(
        t.events
          .filter((e) => e.type === 'broker.registered')
          .map((e) => e.type === 'broker.registered' && e.brokerName)
          .sort(),
      ).toEqual(['broker-a', 'broker-b']);
      await producer.start();
      consumer.subscribe('Orders', '*');
      consumer.registerMessageListener((messages) => {
        seen.push(...messages);
        return 'CONSUME_SUCCESS';
      });
      await consumer.start();
      const brokers = new Set<string>();
      for (let i = 0; i < 12; i++)
        brokers.add((await producer.send({ topic: 'Orders', body: `m${i}` })).brokerName);
      expect(brokers).toEqual(new Set(['broker-a', 'broker-b']));
      await until(() => new Set(seen.map(text)).size === 12, 'all 12 consumed', 4000);
    } finally {
      await consumer.shutdown();
      await producer.shutdown();
      await t.close();
    }
  });

  test('one name server down changes nothing for clients; all down is a retriable NAME_SERVER_UNAVAILABLE', async () => {
    const t = await startNamedCluster({ topics: [{ topic: 'Orders', queueCount: 2 }] });
    try {
      await t.nameServers[0]!.close();
      for (let i = 0; i < 4; i++) {
        const fresh = new TcpTransport({ nameServers: t.nameServerAddresses, reconnectBackoffMinMs: 0 });
        try {
          expect(await routeBrokers(fresh, 'Orders')).toEqual(['broker-a', 'broker-b']);
        } finally {
          await fresh.close();
        }
      }
      await t.nameServers[1]!.close();
      const error = await t.transport.topicRoute('Orders').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'NAME_SERVER_UNAVAILABLE', retriable: true });
      expect((error as Error).message).toContain(t.nameServerAddresses[0]!);
      expect((error as Error).message).toContain(t.nameServerAddresses[1]!);
    } finally {
      await t.close();
    }
  });

  test('a topic the name servers do not know is TOPIC_NOT_FOUND, not a move to the next name server', async () => {
    const t = await startNamedCluster();
    try {
      await expect(t.transport.topicRoute('Nowhere')).rejects.toMatchObject({
        code: 'TOPIC_NOT_FOUND',
        retriable: false,
      });
    } finally {
      await t.close();
    }
  });

  test('a broker that closes unregisters at once; a deleted topic leaves its route', async () => {
    const t = await startNamedCluster({
      topics: [
        { topic: 'Orders', queueCount: 2 },
        { topic: 'Old', queueCount: 1 },
      ],
    });
    try {
      expect(await routeBrokers(t.transport, 'Old')).toEqual(['broker-a', 'broker-b']);
      t.cluster.broker('broker-b').deleteTopic('Old');
      await eventually(
        async () => (await routeBrokers(t.transport, 'Old')).length === 1,
        'Old left broker-b',
      );
      await t.servers.get('broker-a')!.close();
      expect(await routeBrokers(t.transport, 'Orders')).toEqual(['broker-b']);
      expect(t.events).toContainEqual({ type: 'broker.unregistered', brokerName: 'broker-a' });
      expect(t.nameServers[1]!.routes.clusterInfo().clusters[0]!.brokers.map((b) => b.brokerName)).toEqual([
        'broker-b',
      ]);
    } finally {
      await t.close();
    }
  });

  test('the retry topic a consumer group needs is registered, so retries flow through name servers', async () => {
    const t = await startNamedCluster({ topics: [{ topic: 'Orders', queueCount: 1 }] });
    const { clock } = t.cluster;
    const producer = new Producer({ group: 'PG', transport: t.transport, clock });
    const consumer = new PushConsumer({
      group: 'CG',
      transport: t.transport,
      clock,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    const seen: string[] = [];
    try {
      await producer.start();
      consumer.subscribe('Orders', '*');
      consumer.registerMessageListener((messages) => {
        for (const m of messages) seen.push(`${text(m)}#${m.reconsumeTimes}`);
        return messages.some((m) => m.reconsumeTimes === 0) ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
      });
      await consumer.start();
      await producer.send({ topic: 'Orders', body: 'again' });
      await until(() => seen.includes('again#0'), 'first delivery', 2000);
      await eventually(
        async () => (await routeBrokers(t.transport, '%RETRY%CG')).length > 0,
        'retry topic registered',
      );
      // the first retry level is 10 s; rebalance (20 s) picks up the retry queue's route
      for (let i = 0; i < 30 && !seen.includes('again#1'); i++) {
        await advance(clock, 1000);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(seen).toContain('again#1');
    } finally {
      await consumer.shutdown();
      await producer.shutdown();
      await t.close();
    }
  });

  test('a silent broker expires from the routes after brokerExpiryMs', async () => {
    const clock = new ManualClock();
    const events: NameServerEvent[] = [];
    const nameServer = await NameServer.start({
      port: 0,
      clock,
      idleTimeoutMs: 0,
      brokerExpiryMs: 120_000,
      onEvent: (e) => events.push(e),
    });
    const cluster = await startCluster({
      brokerNames: ['broker-a'],
      topics: [{ topic: 'Orders', queueCount: 1 }],
    });
    const address = `127.0.0.1:${nameServer.address().port}`;
    // the broker registers once and then never again within the test (its period is an hour)
    const server = await BrokerServer.start({
      broker: cluster.broker('broker-a'),
      host: '127.0.0.1',
      port: 0,
      nameServers: [address],
      registerIntervalMs: 3_600_000,
    });
    try {
      expect(nameServer.routes.topicRoute('Orders').brokers).toHaveLength(1);
      clock.advance(120_000);
      expect(nameServer.routes.size).toBe(1);
      clock.advance(5_000);
      expect(nameServer.routes.size).toBe(0);
      expect(events).toContainEqual({ type: 'broker.dropped', brokerName: 'broker-a', reason: 'expired' });
    } finally {
      await server.close();
      await nameServer.close();
      await cluster.close();
    }
  });

  test('a broker starts even when a name server is down, and registers with it at the next period', async () => {
    const cluster = await startCluster({
      brokerNames: ['broker-a'],
      topics: [{ topic: 'Orders', queueCount: 1 }],
    });
    const up = await NameServer.start({ port: 0 });
    const down = await NameServer.start({ port: 0 });
    const downPort = down.address().port;
    await down.close();
    const errors: string[] = [];
    const server = await BrokerServer.start({
      broker: cluster.broker('broker-a'),
      host: '127.0.0.1',
      port: 0,
      nameServers: [`127.0.0.1:${up.address().port}`, `127.0.0.1:${downPort}`],
      registerIntervalMs: 50,
      onRegistrationError: (_error, ns) => errors.push(ns),
    });
    let revived: NameServer | undefined;
    try {
      expect(server.registeredWith).toEqual({ registered: 1, of: 2 });
      expect(errors).toContain(`127.0.0.1:${downPort}`);
      revived = await NameServer.start({ port: downPort });
      await eventually(() => revived!.routes.size === 1, 'registered with the revived name server');
      expect(revived.routes.topicRoute('Orders').brokers[0]!.brokerName).toBe('broker-a');
    } finally {
      await server.close();
      await revived?.close();
      await up.close();
      await cluster.close();
    }
  });

  test('a malformed registration is refused with INVALID_ARGUMENT and registers nothing', async () => {
    const nameServer = await NameServer.start({ port: 0 });
    const client = new RemotingClient();
    try {
      const payload = { header: Buffer.from(JSON.stringify({ brokerName: 'x' })), body: Buffer.alloc(0) };
      const error = await client
        .request(`127.0.0.1:${nameServer.address().port}`, RequestCode.REGISTER_BROKER, payload)
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((error as Error).message).toMatch(/clusterName/);
      expect(nameServer.routes.size).toBe(0);
    } finally {
      await client.close();
      await nameServer.close();
    }
  });
});
