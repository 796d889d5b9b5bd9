import * as grpc from '@grpc/grpc-js';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Producer, SimpleConsumer } from 'rocketmq-client-nodejs';
import { ClientType } from '../../src/rocketmq5/codec';
import { signDateTime } from '../../src/rocketmq5/signature';
import { Code } from '../../src/rocketmq5/status';
import { CliProcess } from '../cluster/process-harness';
import { generateTestCerts } from '../support/test-certs';
import { tempDir } from '../support/temp-dir';
import { RawClient } from './grpc-raw-client';

// ACL and TLS on `rocketnest broker --grpc-port`, as a real process: the official Node client
// with good, wrong and missing credentials; TLS from the same --tls-cert/--tls-key as the TCP port.
jest.setTimeout(60_000);

const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function startBroker(dir: string, extra: string[]): Promise<{ process: CliProcess; port: number }> {
  const process = new CliProcess('broker', [
    'broker',
    '--store-dir',
    path.join(dir, 'data'),
    '--port',
    '0',
    '--grpc-port',
    '0',
    '--topics',
    'Orders:2,Audit:1',
    ...extra,
  ]);
  const [, port] = (await process.waitFor(/gRPC \(RocketMQ 5 MessagingService\) on [\d.]+:(\d+)/))!;
  return { process, port: Number(port) };
}

async function stop(process: CliProcess): Promise<void> {
  process.kill('SIGTERM');
  expect(await process.exited).toBe(0);
  expect(process.output).toMatch(/closed cleanly\n$/);
}

describe('ACL', () => {
  const t = tempDir();
  let broker: CliProcess;
  let endpoints: string;

  beforeAll(async () => {
    const acl = path.join(t.dir, 'acl.json');
    writeFileSync(
      acl,
      JSON.stringify({
        accounts: [
          {
            accessKey: 'app',
            secretKey: 'app-secret',
            topicPerms: { Orders: 'PUB|SUB', Audit: 'SUB' },
            groupPerms: { OrdersGroup: 'SUB' },
          },
        ],
      }),
    );
    const started = await startBroker(t.dir, ['--acl-file', acl]);
    broker = started.process;
    endpoints = `127.0.0.1:${started.port}`;
  });

  afterAll(async () => {
    await stop(broker);
    t.cleanup();
  });

  test('good credentials: the official producer and consumer work', async () => {
    const sessionCredentials = { accessKey: 'app', accessSecret: 'app-secret' };
    const producer = new Producer({
      endpoints,
      namespace: '',
      topics: ['Orders'],
      sessionCredentials,
      logger,
    });
    await producer.startup();
    try {
      const receipt = await producer.send({ topic: 'Orders', body: Buffer.from('signed') });
      const consumer = new SimpleConsumer({
        endpoints,
        namespace: '',
        consumerGroup: 'OrdersGroup',
        subscriptions: new Map([['Orders', '*']]),
        awaitDuration: 2_000,
        sessionCredentials,
        logger,
      });
      await consumer.startup();
      try {
        let got = await consumer.receive(16, 15_000);
        for (let i = 0; got.length === 0 && i < 5; i++) got = await consumer.receive(16, 15_000);
        expect(got.map((m) => m.messageId)).toEqual([receipt.messageId]);
        await consumer.ack(got[0]!);
      } finally {
        await consumer.shutdown();
      }
      // a topic the account may only read
      await expect(producer.send({ topic: 'Audit', body: Buffer.from('x') })).rejects.toThrow(
        /403|forbidden|denied/i,
      );
    } finally {
      await producer.shutdown();
    }
  });

  test('a wrong secret, an unknown account and missing credentials are refused at start-up (route query refused; codes in the next test)', async () => {
    for (const sessionCredentials of [
      { accessKey: 'app', accessSecret: 'wrong' },
      { accessKey: 'nobody', accessSecret: 'x' },
      undefined,
    ]) {
      const producer = new Producer({
        endpoints,
        namespace: '',
        topics: ['Orders'],
        sessionCredentials,
        logger,
      });
      await expect(producer.startup()).rejects.toThrow(
        /Startup the rocketmq client failed.*Failed to fetch topic routes/,
      );
      await producer.shutdown().catch(() => undefined);
    }
  });

  test('raw calls: signature checked over x-mq-date-time; a forged one and a missing permission are UNAUTHORIZED (as Apache 5.3 answers both)', async () => {
    const client = new RawClient(endpoints);
    try {
      const dateTime = '20261207T120000Z';
      const signed = (secret: string, key = 'app') =>
        client.metadata({
          'x-mq-date-time': dateTime,
          authorization: `MQv2-HMAC-SHA1 Credential=${key}, SignedHeaders=x-mq-date-time, Signature=${signDateTime(secret, dateTime)}`,
        });
      const heartbeat = { clientType: ClientType.PRODUCER };
      expect((await client.unary('Heartbeat', heartbeat, signed('app-secret'))).status.code).toBe(Code.OK);
      expect((await client.unary('Heartbeat', heartbeat, signed('other'))).status.code).toBe(
        Code.UNAUTHORIZED,
      );
      expect((await client.unary('Heartbeat', heartbeat)).status.code).toBe(Code.UNAUTHORIZED);
      const tampered = client.metadata({
        'x-mq-date-time': '20261207T120001Z',
        authorization: `MQv2-HMAC-SHA1 Credential=app, SignedHeaders=x-mq-date-time, Signature=${signDateTime('app-secret', dateTime)}`,
      });
      expect((await client.unary('Heartbeat', heartbeat, tampered)).status.code).toBe(Code.UNAUTHORIZED);
      const garbage = client.metadata({
        'x-mq-date-time': dateTime,
        authorization: 'Basic YXBwOnNlY3JldA==',
      });
      expect((await client.unary('Heartbeat', heartbeat, garbage)).status.code).toBe(Code.UNAUTHORIZED);
      const frames = await client.receive(
        {
          group: { name: 'SomeoneElsesGroup' },
          messageQueue: {
            topic: { name: 'Orders' },
            id: -1,
            permission: 4,
            broker: null,
            acceptMessageTypes: [],
          },
          filterExpression: { type: 1, expression: '*' },
          batchSize: 1,
          invisibleDuration: { seconds: 30 },
          autoRenew: false,
          longPollingTimeout: { seconds: 0 },
        },
        5_000,
        signed('app-secret'),
      );
      expect(frames[0]!.status).toMatchObject({ code: Code.UNAUTHORIZED, message: /no permission/ });
      // a route needs PUB or SUB on the topic: Audit is SUB only, Elsewhere nothing
      const route = (name: string) =>
        client.unary(
          'QueryRoute',
          { topic: { name }, endpoints: { scheme: 1, addresses: [{ host: '127.0.0.1', port: 8081 }] } },
          signed('app-secret'),
        );
      expect((await route('Audit')).status.code).toBe(Code.OK);
      expect((await route('Elsewhere')).status.code).toBe(Code.UNAUTHORIZED);
      const telemetry = await client.telemetry(
        [
          {
            settings: {
              clientType: ClientType.PRODUCER,
              publishing: { topics: [{ name: 'Audit' }], maxBodySize: 0, validateMessageType: false },
            },
          },
        ],
        1,
        signed('app-secret'),
      );
      expect(telemetry.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });
});

describe('TLS', () => {
  test('with --tls-cert/--tls-key the gRPC port speaks TLS (h2) and refuses plaintext', async () => {
    const t = tempDir();
    const { certs, cleanup } = generateTestCerts(['server']);
    const { certFile, keyFile } = certs.server!;
    const { process, port } = await startBroker(t.dir, ['--tls-cert', certFile, '--tls-key', keyFile]);
    const secure = new RawClient(
      `127.0.0.1:${port}`,
      'tls-client@1',
      grpc.credentials.createSsl(readFileSync(certFile)),
      {
        'grpc.ssl_target_name_override': 'localhost',
      },
    );
    const plain = new RawClient(`127.0.0.1:${port}`);
    try {
      expect(process.output).toMatch(/gRPC \(RocketMQ 5 MessagingService\) on [\d.:]+ \(TLS\)/);
      const route = await secure.unary('QueryRoute', {
        topic: { name: 'Orders' },
        endpoints: { scheme: 1, addresses: [{ host: '127.0.0.1', port }] },
      });
      expect(route.status.code).toBe(Code.OK);
      expect(route.messageQueues.length).toBe(2);
      await expect(
        plain.unary('Heartbeat', { clientType: ClientType.PRODUCER }, plain.metadata(), 3_000),
      ).rejects.toMatchObject({
        code: expect.any(Number),
      });
    } finally {
      secure.close();
      plain.close();
      await stop(process);
      cleanup();
      t.cleanup();
    }
  });
});
