import { Producer } from '../../src/client/producer';
import { PushServer } from '../../src/push/push-server';
import type { TcpCluster } from '../server/tcp-harness';
import { startTcpCluster } from '../server/tcp-harness';
import { RawClient } from './push-harness';

const TOPIC = 'Remote';
let tcp: TcpCluster;
let producer: Producer;
let server: PushServer;

beforeEach(async () => {
  tcp = await startTcpCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: TOPIC, queueCount: 2 }],
  });
  producer = new Producer({ group: 'push-tcp-producer', transport: tcp.transport });
  await producer.start();
  server = new PushServer({ transport: tcp.transport, authorize: () => true, pollTimeoutMs: 500 });
});

afterEach(async () => {
  await server.close();
  await producer.shutdown();
  await tcp.close();
});

test('over TcpTransport (a remote broker): stream, cut, resume from the position, exactly once', async () => {
  const { port } = await server.listen();
  const url = `ws://127.0.0.1:${port}/push`;
  const sent: string[] = [];
  for (let i = 0; i < 300; i++)
    sent.push((await producer.send({ topic: TOPIC, tag: 'a', body: `r${i}` })).msgId);
  const first = await RawClient.connect(url);
  first.send({ type: 'subscribe', id: 'r', topic: TOPIC, tag: 'a', from: 'earliest' });
  await first.until(() => first.of('message', 'r').length >= 120, '120 messages');
  first.ws.terminate();
  const got = first.of('message', 'r');
  const position = got[got.length - 1]!.position as string;
  for (let i = 300; i < 400; i++)
    sent.push((await producer.send({ topic: TOPIC, tag: 'a', body: `r${i}` })).msgId);
  await producer.send({ topic: TOPIC, tag: 'b', body: 'filtered' });
  const second = await RawClient.connect(url);
  second.send({ type: 'subscribe', id: 'r', topic: TOPIC, tag: 'a', from: { position } });
  await second.until(() => got.length + second.of('message', 'r').length >= 400, 'the rest');
  const ids = [...got, ...second.of('message', 'r')].map((m) => m.msgId as string);
  expect(ids.length).toBe(400);
  expect(new Set(ids)).toEqual(new Set(sent));
  await second.close();
});
