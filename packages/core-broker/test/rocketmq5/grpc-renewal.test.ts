import { Broker } from '../../src/broker/broker';
import { ClientType, FilterType } from '../../src/rocketmq5/codec';
import { Code } from '../../src/rocketmq5/status';
import { type CallContext, Messaging } from '../../src/server/grpc-messaging';
import { RENEW_SLICE_MS } from '../../src/server/grpc-renewal';
import { ClientSessions } from '../../src/server/grpc-sessions';
import { MemoryStore } from '../../src/store/memory-store';
import { ManualClock } from '../support/manual-clock';

// Invisible-time renewal of push deliveries (receive with auto_renew), as the RocketMQ 5 proxy
// renews them for a Java PushConsumer busy with a message: on a manual clock, so minutes pass at once.

const GROUP = 'RenewG';
const TOPIC = 'Renew';
let clock: ManualClock;
let store: MemoryStore;
let broker: Broker;
let sessions: ClientSessions;
let messaging: Messaging;

/** A push consumer as the official clients are: a session with its Telemetry stream open. */
const connect = (clientId: string): (() => void) => {
  sessions.heartbeat(clientId, ClientType.PUSH_CONSUMER, GROUP);
  return sessions.attach(clientId, () => undefined);
};
const context = (clientId: string): CallContext => ({ clientId, deadlineMs: Infinity, peer: '127.0.0.1:1' });
const receive = async (clientId: string, autoRenew: boolean) => {
  const frames = await messaging.receiveMessage(context(clientId), {
    group: { name: GROUP },
    messageQueue: { topic: { name: TOPIC }, id: -1, permission: 4, broker: null, acceptMessageTypes: [] },
    filterExpression: { type: FilterType.TAG, expression: '*' },
    batchSize: 16,
    invisibleDuration: autoRenew ? null : { seconds: 30 },
    autoRenew,
    longPollingTimeout: { seconds: 0 },
  } as never);
  return frames.flatMap((f) => (f.message ? [f.message] : []));
};
const ack = async (receiptHandle: string) =>
  (
    await messaging.ackMessage({
      group: { name: GROUP },
      topic: { name: TOPIC },
      entries: [{ messageId: 'm', receiptHandle }],
    } as never)
  ).status.code;
/** Lets the renewal's timer fire second by second, with its changes settling in between. */
async function pass(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 1_000) {
    clock.advance(1_000);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

beforeEach(async () => {
  clock = new ManualClock();
  store = await MemoryStore.create({ maxBytes: 8 * 1024 * 1024, retentionIntervalMs: 0 });
  broker = await Broker.start({ store, brokerName: 'broker-a', clock });
  broker.createTopic({ topic: TOPIC, queueCount: 1 });
  sessions = new ClientSessions(broker, 4 * 1024 * 1024);
  messaging = new Messaging(broker, sessions, { maxBodyBytes: 4 * 1024 * 1024 });
  await broker.send({
    producerGroup: 'P',
    topic: TOPIC,
    bornTimestampMs: clock.now(),
    messages: [{ topic: TOPIC, body: Buffer.from('slow') }],
  });
});

afterEach(async () => {
  messaging.close();
  await broker.close();
  await store.close();
});

test('a push delivery stays invisible while its consumer is connected, and acks with the handle it was given', async () => {
  connect('push-1');
  const [first] = await receive('push-1', true);
  expect(first?.systemProperties?.deliveryAttempt).toBe(1);
  // well past the 60 s of a push receive: renewed slice after slice, never delivered again
  await pass(3 * RENEW_SLICE_MS);
  connect('push-2');
  expect(await receive('push-2', true)).toEqual([]);
  // the handle the client holds is the first one; the renewals' handles stay behind the scenes
  expect(await ack(first!.systemProperties!.receiptHandle!)).toBe(Code.OK);
  await pass(2 * RENEW_SLICE_MS);
  expect(await receive('push-2', true)).toEqual([]);
});

test('renewal stops when the consumer terminates: the message comes back with the next attempt', async () => {
  connect('push-1');
  const [first] = await receive('push-1', true);
  await pass(RENEW_SLICE_MS);
  messaging.notifyClientTermination(context('push-1'), { group: { name: GROUP } } as never);
  await pass(2 * RENEW_SLICE_MS);
  connect('push-2');
  const [again] = await receive('push-2', true);
  expect(again?.systemProperties?.messageId).toBe(first?.systemProperties?.messageId);
  expect(again?.systemProperties?.deliveryAttempt).toBe(2);
  // the terminated client's handle is stale now
  expect(await ack(first!.systemProperties!.receiptHandle!)).toBe(Code.INVALID_RECEIPT_HANDLE);
  expect(await ack(again!.systemProperties!.receiptHandle!)).toBe(Code.OK);
});

test('renewal stops when the Telemetry stream of the consumer closes (it crashed): the message comes back', async () => {
  const detach = connect('push-1');
  const [first] = await receive('push-1', true);
  await pass(RENEW_SLICE_MS);
  detach();
  await pass(2 * RENEW_SLICE_MS);
  connect('push-2');
  const [again] = await receive('push-2', true);
  expect(again?.systemProperties?.messageId).toBe(first?.systemProperties?.messageId);
  expect(again?.systemProperties?.deliveryAttempt).toBe(2);
});

test('a receive without auto_renew is not renewed: the message comes back after its invisible time', async () => {
  sessions.heartbeat('simple-1', ClientType.SIMPLE_CONSUMER, GROUP);
  const [first] = await receive('simple-1', false);
  await pass(31_000);
  const [again] = await receive('simple-1', false);
  expect(again?.systemProperties?.messageId).toBe(first?.systemProperties?.messageId);
  expect(again?.systemProperties?.deliveryAttempt).toBe(2);
});
