import { RocketAdmin } from '../../src/client/admin-client';
import { Producer } from '../../src/client/producer';
import { RemotingClient } from '../../src/remoting/remoting-client';
import { RequestCode } from '../../src/remoting/request-codes';
import { BrokerServer } from '../../src/server/broker-server';
import { NameServer } from '../../src/server/name-server';
import { type Cluster, startCluster } from '../support/client-harness';

/** Two brokers registered with a name server, and an admin that only knows the name server. */
let cluster: Cluster;
let nameServer: NameServer;
let servers: BrokerServer[];
let admin: RocketAdmin;
let producer: Producer;

beforeEach(async () => {
  cluster = await startCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: 'Orders', queueCount: 2 }],
  });
  nameServer = await NameServer.start({ port: 0 });
  const nameServers = [`127.0.0.1:${nameServer.address().port}`];
  servers = [];
  for (const broker of cluster.brokers) {
    servers.push(await BrokerServer.start({ broker, host: '127.0.0.1', port: 0, nameServers }));
  }
  admin = new RocketAdmin({ nameServers });
  producer = new Producer({ group: 'PG', transport: cluster.transport, clock: cluster.clock });
  await producer.start();
});

afterEach(async () => {
  await producer.shutdown();
  await admin.close();
  for (const s of servers) await s.close();
  await nameServer.close();
  await cluster.close();
});

describe('RocketAdmin', () => {
  test('cluster info, topic create on every broker or on one, list and route', async () => {
    expect(await admin.brokerNames()).toEqual(['broker-a', 'broker-b']);
    const created = await admin.updateTopic({ topic: 'Payments', queueCount: 3, fifo: true });
    expect(created.map((r) => [r.brokerName, r.result.writeQueueCount, r.result.fifo])).toEqual([
      ['broker-a', 3, true],
      ['broker-b', 3, true],
    ]);
    await admin.updateTopic({ topic: 'OnlyB', queueCount: 1 }, ['broker-b']);
    expect(cluster.broker('broker-a').getTopic('OnlyB')).toBeUndefined();
    const listed = await admin.listTopics();
    expect(listed.find((r) => r.brokerName === 'broker-b')!.result.map((t) => t.topic)).toEqual(
      expect.arrayContaining(['Orders', 'Payments', 'OnlyB']),
    );
    // the new topic reaches the name server by an immediate registration (not the 30 s period)
    const deadline = Date.now() + 5000;
    let route = await admin.topicRoute('OnlyB').catch(() => undefined);
    while (!route && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      route = await admin.topicRoute('OnlyB').catch(() => undefined);
    }
    expect(route?.brokers.map((b) => b.brokerName)).toEqual(['broker-b']);
  });

  test('group progress shows committed offset and lag per queue; offsets reset by time', async () => {
    const t0 = cluster.clock.now();
    for (let i = 0; i < 8; i++) await producer.send({ topic: 'Orders', body: `m${i}` });
    cluster.clock.advance(60_000);
    for (let i = 0; i < 4; i++) await producer.send({ topic: 'Orders', body: `late${i}` });
    cluster.broker('broker-a').commitOffset({ group: 'CG', topic: 'Orders', queueId: 0, offset: 1 });
    const stats = await admin.consumeStats('CG', 'Orders');
    expect(stats).toHaveLength(4);
    const a0 = stats.find((r) => r.brokerName === 'broker-a' && r.queueId === 0)!;
    expect(a0.consumerOffset).toBe(1);
    expect(a0.lag).toBe(a0.brokerOffset - 1);
    const never = stats.filter((r) => r.consumerOffset === undefined);
    expect(never).toHaveLength(3);
    for (const r of never) expect(r.lag).toBe(r.brokerOffset);
    expect(stats.reduce((sum, r) => sum + r.lag, 0)).toBe(12 - 1);
    // without a topic: only the queues the group committed on
    expect((await admin.consumeStats('CG')).map((r) => [r.brokerName, r.queueId])).toEqual([['broker-a', 0]]);
    // reset to the minute mark: every queue points at its first "late" message
    const reset = await admin.resetOffsetByTime('CG', 'Orders', t0 + 30_000);
    expect(reset).toHaveLength(4);
    const after = await admin.consumeStats('CG', 'Orders');
    expect(after.reduce((sum, r) => sum + r.lag, 0)).toBe(4);
  });

  test('message by id from whichever broker has it, by key across brokers; unknown and malformed ids are not found', async () => {
    const sent = [];
    for (let i = 0; i < 6; i++)
      sent.push(await producer.send({ topic: 'Orders', body: `order ${i}`, keys: ['k-7'], tag: 'created' }));
    const one = sent.find((s) => s.brokerName === 'broker-b')!;
    const viewed = await admin.viewMessage(one.msgId);
    expect(viewed).toMatchObject({
      msgId: one.msgId,
      brokerName: 'broker-b',
      topic: 'Orders',
      tag: 'created',
      keys: ['k-7'],
    });
    expect(Buffer.from(viewed!.bodyBase64, 'base64').toString()).toMatch(/^order \d$/);
    const byKey = await admin.queryByKey('Orders', 'k-7');
    expect(byKey.map((m) => m.msgId).sort()).toEqual(sent.map((s) => s.msgId).sort());
    expect(await admin.queryByKey('Orders', 'k-7', 2)).toHaveLength(2);
    expect(await admin.viewMessage('not-a-message-id')).toBeUndefined();
    expect(await admin.viewMessage(one.msgId.replace(/.$/, (c) => (c === '0' ? '1' : '0')))).toBeUndefined();
  });

  test('a dead letter is re-sent to its original topic from the broker that holds it', async () => {
    const sent = await producer.send({ topic: 'Orders', body: 'poison' });
    const broker = cluster.broker(sent.brokerName);
    await broker.sendBack({ consumerGroup: 'CG', msgId: sent.msgId, maxReconsumeTimes: 0 });
    const dlq = broker.pull({
      consumerGroup: 'x',
      topic: '%DLQ%CG',
      queueId: 0,
      queueOffset: 0,
      maxCount: 1,
      suspendTimeoutMs: 0,
    });
    const deadId = (await dlq).messages[0]!.msgId;
    const resent = await admin.resendDeadLetter('CG', deadId);
    expect(resent).toMatchObject({ brokerName: sent.brokerName, topic: 'Orders' });
    const copy = await admin.viewMessage(resent.msgId);
    expect(Buffer.from(copy!.bodyBase64, 'base64').toString()).toBe('poison');
    await expect(admin.resendDeadLetter('CG', sent.msgId)).rejects.toMatchObject({
      code: 'MESSAGE_NOT_FOUND',
    });
  });

  test('admin requests with wrong fields are INVALID_ARGUMENT naming the field; a missing topic names the broker', async () => {
    const client = new RemotingClient();
    const address = `127.0.0.1:${servers[0]!.address().port}`;
    const ask = (code: number, value: unknown) =>
      client
        .request(address, code, { header: Buffer.from(JSON.stringify(value)), body: Buffer.alloc(0) })
        .catch((e: unknown) => e);
    try {
      expect(await ask(RequestCode.ADMIN_UPDATE_TOPIC, { topic: 7 })).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/update topic: field "topic" must be a non-empty string/),
      });
      expect(await ask(RequestCode.ADMIN_UPDATE_TOPIC, { topic: 'T', queueCount: 0 })).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/"queueCount" must be an integer ≥ 1/),
      });
      expect(
        await ask(RequestCode.ADMIN_RESET_OFFSET, { group: 'G', topic: 'Orders', timestampMs: 'yesterday' }),
      ).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/"timestampMs"/),
      });
      expect(await ask(RequestCode.ADMIN_CONSUME_STATS, [])).toMatchObject({ code: 'INVALID_ARGUMENT' });
    } finally {
      await client.close();
    }
    await expect(admin.consumeStats('CG', 'Nope')).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    await expect(admin.updateTopic({ topic: 'X' }, ['broker-z'])).rejects.toMatchObject({
      code: 'BROKER_UNAVAILABLE',
      message: expect.stringMatching(/^broker broker-z: /),
    });
  });
});
