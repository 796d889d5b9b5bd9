import { AccessControl, type AclConfig } from '../../src/broker/access-control';
import { Producer } from '../../src/client/producer';
import { type MessageExt, PushConsumer } from '../../src/client/push-consumer';
import { TcpTransport, type TcpTransportOptions } from '../../src/client/tcp-transport';
import { type RocketError, isRocketError } from '../../src/common/errors';
import { RequestCode } from '../../src/remoting/request-codes';
import { accessDeniedMessage, accessNeedsOf } from '../../src/server/request-access';
import { text, until } from '../support/client-harness';
import { type TcpCluster, startTcpCluster } from './tcp-harness';

const ACL: AclConfig = {
  accounts: [
    {
      accessKey: 'writer',
      secretKey: 'writer-secret',
      topicPerms: { Orders: 'PUB' },
      groupPerms: { PG: 'PUB' },
    },
    {
      accessKey: 'reader',
      secretKey: 'reader-secret',
      topicPerms: { Orders: 'SUB' },
      groupPerms: { CG: 'SUB' },
    },
    {
      accessKey: 'open',
      secretKey: 'open-secret',
      defaultTopicPerm: 'PUB|SUB',
      defaultGroupPerm: 'PUB|SUB',
      topicPerms: { Secret: 'DENY' },
    },
    { accessKey: 'ops', secretKey: 'ops-secret', admin: true },
  ],
};
const creds = (accessKey: string, secretKey = `${accessKey}-secret`) => ({ accessKey, secretKey });

let t: TcpCluster;
const extra: TcpTransport[] = [];
const clients: Array<{ shutdown(): Promise<void> }> = [];

beforeEach(async () => {
  t = await startTcpCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [
      { topic: 'Orders', queueCount: 2 },
      { topic: 'Secret', queueCount: 1 },
    ],
    server: { acl: AccessControl.parse(ACL, 'test ACL') },
    transport: { credentials: creds('writer') },
  });
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.shutdown();
  for (const x of extra.splice(0)) await x.close();
  await t.close();
});

/** Another client of the same brokers, with its own (or no) credentials. */
function transport(options: Partial<TcpTransportOptions> = {}): TcpTransport {
  const x = new TcpTransport({
    reconnectBackoffMinMs: 0,
    ...options,
    brokers: { 'broker-a': t.address('broker-a'), 'broker-b': t.address('broker-b') },
  });
  extra.push(x);
  return x;
}

function producer(on: TcpTransport, group = 'PG'): Producer {
  const p = new Producer({ group, transport: on, clock: t.cluster.clock });
  clients.push(p);
  return p;
}

async function failure(promise: Promise<unknown>): Promise<RocketError> {
  try {
    await promise;
  } catch (error) {
    if (isRocketError(error)) return error;
    throw error;
  }
  throw new Error('expected the request to fail');
}

const totalStored = (topic: string): number =>
  t.cluster.brokers.reduce(
    (n, b) =>
      n + b.maxOffset({ topic, queueId: 0 }) + (topic === 'Orders' ? b.maxOffset({ topic, queueId: 1 }) : 0),
    0,
  );

const sendRequest = (topic: string) => ({
  producerGroup: 'PG',
  topic,
  queueId: 0,
  messages: [{ topic, body: Buffer.from('x') }],
  bornTimestampMs: 0,
});

describe('ACL over TCP', () => {
  test('a producer with PUB sends; one with SUB only gets ACCESS_DENIED at once, not retried on the other broker', async () => {
    const writer = producer(t.transport);
    await writer.start();
    const sent = await writer.send({ topic: 'Orders', body: 'allowed' });
    expect(sent.msgId).toBeDefined();
    expect(totalStored('Orders')).toBe(1);

    const reader = producer(transport({ credentials: creds('reader') }));
    const failed: Array<{ attempts: number }> = [];
    reader.on('producer.send.failed', (e) => failed.push(e));
    await reader.start();
    const error = await failure(reader.send({ topic: 'Orders', body: 'refused' }));
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.retriable).toBe(false);
    expect(error.message).toMatch(/SEND_MESSAGE \(needs PUB on topic "Orders"\): access denied/);
    // two brokers serve Orders, so a retriable failure would have been tried on the other one
    expect(failed.map((f) => f.attempts)).toEqual([1]);
    expect(totalStored('Orders')).toBe(1);

    // the broker keeps serving the valid client after the denial
    await writer.send({ topic: 'Orders', body: 'allowed again' });
    expect(totalStored('Orders')).toBe(2);
  });

  test('unsigned, unknown key, wrong secret and missing permission all get the same ACCESS_DENIED message', async () => {
    const attempts = {
      unsigned: transport(),
      unknownKey: transport({ credentials: creds('nobody') }),
      wrongSecret: transport({ credentials: creds('writer', 'guessed') }),
      noPermission: transport({ credentials: creds('reader') }),
    };
    const errors: Record<string, RocketError> = {};
    for (const [name, x] of Object.entries(attempts)) {
      errors[name] = await failure(x.send('broker-a', sendRequest('Orders')));
    }
    const messages = new Set(Object.values(errors).map((e) => e.message));
    expect(messages.size).toBe(1);
    for (const e of Object.values(errors)) {
      expect(e.code).toBe('ACCESS_DENIED');
      expect(e.retriable).toBe(false);
    }
    const [message] = messages;
    expect(message).toMatch(/^SEND_MESSAGE \(needs PUB on topic "Orders"\): access denied/);
    expect(message).not.toMatch(/writer-secret|guessed|nobody|unknown|signature|unsigned/i);
    expect(totalStored('Orders')).toBe(0);
    // and nothing changed for a valid client
    expect((await t.transport.send('broker-a', sendRequest('Orders'))).messages).toHaveLength(1);
  });

  test('a consumer with SUB on the topic and its group consumes; a group it lacks is refused', async () => {
    const writer = producer(t.transport);
    await writer.start();
    for (let i = 0; i < 4; i++) await writer.send({ topic: 'Orders', body: `m${i}` });

    const readerTransport = transport({ credentials: creds('reader') });
    const seen: MessageExt[] = [];
    const consumer = new PushConsumer({
      group: 'CG',
      transport: readerTransport,
      clock: t.cluster.clock,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    clients.push(consumer);
    consumer.subscribe('Orders', '*');
    consumer.registerMessageListener((messages) => {
      seen.push(...messages);
      return 'CONSUME_SUCCESS';
    });
    await consumer.start();
    await until(() => new Set(seen.map(text)).size === 4, 'all 4 consumed', 2000);
    expect([...new Set(seen.map(text))].sort()).toEqual(['m0', 'm1', 'm2', 'm3']);

    const pull = (consumerGroup: string, topic = 'Orders') =>
      readerTransport.pull('broker-a', {
        consumerGroup,
        topic,
        queueId: 0,
        queueOffset: 0,
        maxCount: 1,
        suspendTimeoutMs: 0,
      });
    const otherGroup = await failure(pull('OtherGroup'));
    expect(otherGroup.code).toBe('ACCESS_DENIED');
    expect(otherGroup.message).toMatch(
      /PULL_MESSAGE \(needs SUB on topic "Orders", SUB on group "OtherGroup"\)/,
    );
    expect((await failure(pull('CG', 'Secret'))).code).toBe('ACCESS_DENIED');
    // a SUB-only account may not be a producer group member either
    const heartbeat = await failure(
      readerTransport.heartbeat('broker-a', { clientId: 'r@1', producerGroups: ['PG'], consumers: [] }),
    );
    expect(heartbeat.message).toMatch(/HEART_BEAT \(needs PUB on group "PG"\): access denied/);
  });

  test('a DENY entry wins over a PUB|SUB default', async () => {
    const open = transport({ credentials: creds('open') });
    expect((await open.send('broker-a', sendRequest('Orders'))).messages).toHaveLength(1);
    const denied = await failure(open.send('broker-a', sendRequest('Secret')));
    expect(denied.code).toBe('ACCESS_DENIED');
    const pulled = await failure(
      open.pull('broker-a', {
        consumerGroup: 'CG',
        topic: 'Secret',
        queueId: 0,
        queueOffset: 0,
        maxCount: 1,
        suspendTimeoutMs: 0,
      }),
    );
    expect(pulled.code).toBe('ACCESS_DENIED');
    expect(t.cluster.broker('broker-a').maxOffset({ topic: 'Secret', queueId: 0 })).toBe(0);
    // the admin account is not bound by it
    const ops = transport({ credentials: creds('ops') });
    expect((await ops.send('broker-a', sendRequest('Secret'))).messages).toHaveLength(1);
  });

  test('route and consumer-list lookups need any valid account', async () => {
    const route = await transport({ credentials: creds('reader') }).topicRoute('Orders');
    expect(route.brokers.map((b) => b.brokerName).sort()).toEqual(['broker-a', 'broker-b']);
    expect(
      await transport({ credentials: creds('reader') }).consumerIds('broker-a', { group: 'AnyGroup' }),
    ).toEqual([]);
    const unsigned = await failure(transport().consumerIds('broker-a', { group: 'AnyGroup' }));
    expect(unsigned.code).toBe('ACCESS_DENIED');
    expect(unsigned.message).toMatch(/GET_CONSUMER_LIST_BY_GROUP \(needs a valid account\): access denied/);
  });
});

describe('ACL white list and signed clients without ACL', () => {
  test('a white-listed address skips the ACL, unsigned', async () => {
    const w = await startTcpCluster({
      topics: [{ topic: 'Orders', queueCount: 1 }],
      server: {
        acl: AccessControl.parse({ globalWhiteRemoteAddresses: ['127.0.0.*'], accounts: [] }, 'white'),
      },
    });
    try {
      expect((await w.transport.send('broker-a', sendRequest('Orders'))).messages).toHaveLength(1);
    } finally {
      await w.close();
    }
  });

  test('a signed client is served by a broker that runs without an ACL', async () => {
    const plain = await startTcpCluster({
      topics: [{ topic: 'Orders', queueCount: 1 }],
      transport: { credentials: creds('anyone') },
    });
    try {
      expect((await plain.transport.send('broker-a', sendRequest('Orders'))).messages).toHaveLength(1);
      expect(await plain.transport.maxOffset('broker-a', { topic: 'Orders', queueId: 0 })).toBe(1);
    } finally {
      await plain.close();
    }
  });
});

describe('request → permission mapping', () => {
  const C = RequestCode;
  const t2 = { kind: 'topic' as const };
  const g = { kind: 'group' as const };
  const rows: Array<[string, number, unknown, unknown[]]> = [
    ['SEND_MESSAGE', C.SEND_MESSAGE, { topic: 'T' }, [{ ...t2, name: 'T', perm: 'PUB' }]],
    ['END_TRANSACTION', C.END_TRANSACTION, { producerGroup: 'PG' }, [{ ...g, name: 'PG', perm: 'PUB' }]],
    ...(
      [
        ['PULL_MESSAGE', C.PULL_MESSAGE],
        ['POP_MESSAGE', C.POP_MESSAGE],
        ['ACK_MESSAGE', C.ACK_MESSAGE],
        ['CHANGE_MESSAGE_INVISIBLE_TIME', C.CHANGE_MESSAGE_INVISIBLE_TIME],
      ] as const
    ).map(
      ([name, code]) =>
        [
          name,
          code,
          { topic: 'T', consumerGroup: 'CG' },
          [
            { ...t2, name: 'T', perm: 'SUB' },
            { ...g, name: 'CG', perm: 'SUB' },
          ],
        ] as [string, number, unknown, unknown[]],
    ),
    ...(
      [
        ['QUERY_CONSUMER_OFFSET', C.QUERY_CONSUMER_OFFSET],
        ['UPDATE_CONSUMER_OFFSET', C.UPDATE_CONSUMER_OFFSET],
      ] as const
    ).map(
      ([name, code]) =>
        [
          name,
          code,
          { topic: 'T', group: 'CG' },
          [
            { ...t2, name: 'T', perm: 'SUB' },
            { ...g, name: 'CG', perm: 'SUB' },
          ],
        ] as [string, number, unknown, unknown[]],
    ),
    ...(
      [
        ['SEARCH_OFFSET_BY_TIMESTAMP', C.SEARCH_OFFSET_BY_TIMESTAMP],
        ['GET_MAX_OFFSET', C.GET_MAX_OFFSET],
        ['GET_MIN_OFFSET', C.GET_MIN_OFFSET],
      ] as const
    ).map(
      ([name, code]) =>
        [name, code, { topic: 'T' }, [{ ...t2, name: 'T', perm: 'SUB' }]] as [
          string,
          number,
          unknown,
          unknown[],
        ],
    ),
    [
      'HEART_BEAT',
      C.HEART_BEAT,
      {
        clientId: 'c',
        producerGroups: ['PG'],
        consumers: [{ group: 'CG', subscriptions: [{ topic: 'T' }, { topic: '%RETRY%CG' }] }],
      },
      [
        { ...g, name: 'PG', perm: 'PUB' },
        { ...g, name: 'CG', perm: 'SUB' },
        { ...t2, name: 'T', perm: 'SUB' },
        { ...t2, name: '%RETRY%CG', perm: 'SUB' },
      ],
    ],
    [
      'CONSUMER_SEND_MSG_BACK',
      C.CONSUMER_SEND_MSG_BACK,
      { consumerGroup: 'CG' },
      [{ ...g, name: 'CG', perm: 'SUB' }],
    ],
    ['GET_ROUTEINFO_BY_TOPIC', C.GET_ROUTEINFO_BY_TOPIC, { topic: 'T' }, [{ kind: 'account' }]],
    ['GET_CONSUMER_LIST_BY_GROUP', C.GET_CONSUMER_LIST_BY_GROUP, { group: 'G' }, [{ kind: 'account' }]],
    ['UNREGISTER_CLIENT', C.UNREGISTER_CLIENT, { clientId: 'c' }, [{ kind: 'account' }]],
    ...Object.entries(C)
      .filter(([, code]) => code >= 1000)
      .map(([name, code]) => [name, code, {}, [{ kind: 'admin' }]] as [string, number, unknown, unknown[]]),
    ['a broker → client code sent to a broker', C.CHECK_TRANSACTION_STATE, {}, [{ kind: 'admin' }]],
  ];
  test.each(rows)('%s', (_name, code, request, needs) => {
    expect(accessNeedsOf(code, request)).toEqual(needs);
  });

  test('every admin code is refused to a non-admin and allowed to an admin, with a message naming it', () => {
    const acl = AccessControl.parse(ACL, 'test ACL');
    const admin = Object.entries(C).filter(([, code]) => code >= 1000);
    expect(admin.map(([name]) => name)).toContain('ADMIN_RESEND_DLQ');
    for (const [name, code] of admin) {
      const needs = accessNeedsOf(code, {});
      const as = (accessKey: string) =>
        acl.authorize({ remoteIp: '127.0.0.1', auth: { accessKey, verified: true }, needs }).allowed;
      expect([name, as('open'), as('ops')]).toEqual([name, false, true]);
      expect(accessDeniedMessage(code, needs)).toMatch(
        new RegExp(`^${name} \\(needs an admin account\\): access denied`),
      );
    }
  });
});
