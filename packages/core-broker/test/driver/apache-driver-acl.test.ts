import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isRocketError } from '../../src/common/errors';
import { ApacheDriver } from '../../src/driver/apache/apache-driver';
import { CliProcess } from '../cluster/process-harness';
import { tempDir } from '../support/temp-dir';
import { recorder, waitUntil } from './driver-targets';

/**
 * The Apache driver's request signing against a RocketMQ 5 endpoint that checks it:
 * `rocketnest broker --grpc-port --acl-file`, a real process. Good credentials work; a wrong
 * secret, no credentials, and a topic the account may only read are refused with ACCESS_DENIED.
 */
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
  broker = new CliProcess('broker', [
    'broker',
    '--store-dir',
    path.join(t.dir, 'data'),
    '--port',
    '0',
    '--grpc-port',
    '0',
    '--topics',
    'Orders:2,Audit:1',
    '--acl-file',
    acl,
  ]);
  const [, port] = (await broker.waitFor(/gRPC \(RocketMQ 5 MessagingService\) on [\d.]+:(\d+)/, 60_000))!;
  endpoints = `127.0.0.1:${port}`;
}, 90_000);

afterAll(async () => {
  broker?.kill('SIGTERM');
  await broker?.exited;
  t.cleanup();
});

test('signed with good credentials: send and subscribe work', async () => {
  const driver = new ApacheDriver({ endpoints, credentials: { accessKey: 'app', secretKey: 'app-secret' } });
  try {
    const received = recorder();
    await driver.subscribe({ group: 'OrdersGroup', topic: 'Orders', handler: received.handler });
    const producer = await driver.createProducer({ group: 'P', topics: ['Orders'] });
    const sent = await producer.send({ topic: 'Orders', body: 'signed' });
    await waitUntil(() => received.messages.length >= 1, 'the signed message');
    expect(received.messages.map((m) => m.msgId)).toEqual([sent.msgId]);
    // a topic the account may only read
    await expect(producer.send({ topic: 'Audit', body: 'x' })).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
    });
  } finally {
    await driver.close();
  }
}, 60_000);

test('a wrong secret or no credentials are refused with ACCESS_DENIED at start', async () => {
  for (const credentials of [{ accessKey: 'app', secretKey: 'wrong' }, undefined]) {
    const driver = new ApacheDriver({ endpoints, ...(credentials ? { credentials } : {}) });
    try {
      const failure = await driver
        .createProducer({ group: 'P', topics: ['Orders'] })
        .catch((e: unknown) => e);
      expect(isRocketError(failure, 'ACCESS_DENIED')).toBe(true);
    } finally {
      await driver.close();
    }
  }
}, 60_000);
