import { Broker } from '../../src/broker/broker';
import { RocketError } from '../../src/common/errors';
import { InProcessTransport } from '../../src/client/in-process-transport';
import type { ReceivedMessage } from '../../src/client/simple-consumer';
import { DEFAULT_LISTEN_RETRY_DELAY_MS, SimpleConsumer } from '../../src/client/simple-consumer';
import { MemoryStore } from '../../src/store/memory-store';
import { until } from '../support/client-harness';
import { ManualClock } from '../support/manual-clock';
import { settle } from '../support/settle';

// SimpleConsumer.listen: the receive loop that RocketServer's pop listeners run, in core and on
// the consumer's injected clock.

let clock: ManualClock;
let store: MemoryStore;
let broker: Broker;
let transport: InProcessTransport;
let consumer: SimpleConsumer;

beforeEach(async () => {
  clock = new ManualClock();
  store = await MemoryStore.create({ clock, retentionIntervalMs: 0 });
  broker = await Broker.start({ store, clock, brokerName: 'broker-a' });
  broker.createTopic({ topic: 'orders', queueCount: 2 });
  transport = new InProcessTransport([broker]);
  consumer = new SimpleConsumer({
    group: 'listen-g',
    transport,
    clock,
    subscriptions: { orders: '*' },
    awaitDurationMs: 1000,
  });
  await consumer.start();
});

afterEach(async () => {
  jest.restoreAllMocks();
  await consumer.shutdown();
  await broker.close();
  await store.close();
});

async function send(body: string): Promise<void> {
  await broker.send({
    producerGroup: 'p',
    topic: 'orders',
    messages: [{ topic: 'orders', body: Buffer.from(body) }],
    bornTimestampMs: 1,
  });
}

test('hands every message to the handler, which acks it; stop() ends the loop', async () => {
  const seen: string[] = [];
  const listener = consumer.listen(async (m) => {
    seen.push(m.body.toString());
    await consumer.ack(m);
  });
  for (let i = 0; i < 5; i++) await send(`m${i}`);
  await until(() => seen.length === 5, 'five messages handled');
  expect(seen.sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  // the receive parked at the broker is answered within awaitDurationMs of the consumer's clock
  const stopped = listener.stop();
  clock.advance(1000);
  await stopped;
  // acked: nothing comes back, even after the invisible duration
  clock.advance(120_000);
  const again = consumer.receive(32, 10_000);
  await settle(20);
  clock.advance(1000);
  expect(await again).toEqual([]);
});

test('a failed receive is reported and tried again after retryDelayMs on the consumer clock, not before', async () => {
  const failure = new RocketError('BROKER_UNAVAILABLE', 'down for the test');
  const pop = jest.spyOn(transport, 'pop').mockRejectedValueOnce(failure);
  const errors: Array<[unknown, number]> = [];
  const handled: ReceivedMessage[] = [];
  await send('after-failure');
  const listener = consumer.listen(
    async (m) => {
      handled.push(m);
      await consumer.ack(m);
    },
    { onError: (error, delayMs) => errors.push([error, delayMs]) },
  );
  await until(() => errors.length === 1, 'the failure reported');
  expect(errors).toEqual([[failure, DEFAULT_LISTEN_RETRY_DELAY_MS]]);
  await settle(20);
  expect(pop).toHaveBeenCalledTimes(1);
  expect(handled).toEqual([]);
  clock.advance(DEFAULT_LISTEN_RETRY_DELAY_MS - 1);
  await settle(20);
  expect(pop).toHaveBeenCalledTimes(1);
  clock.advance(1);
  await until(() => handled.length === 1, 'the message handled after the pause');
  expect(handled[0]!.body.toString()).toBe('after-failure');
  const stopped = listener.stop();
  clock.advance(1000);
  await stopped;
});

test('a handler that throws leaves the message to come back; shutdown() stops the loop', async () => {
  let calls = 0;
  consumer.listen(
    () => {
      calls++;
      throw new Error('handler failed');
    },
    { invisibleDurationMs: 10_000 },
  );
  await send('comes-back');
  await until(() => calls === 1, 'first delivery');
  clock.advance(1000); // the next receive finds nothing and returns
  await settle(20);
  expect(calls).toBe(1);
  clock.advance(10_000); // invisible time over: delivered again
  await until(() => calls === 2, 'redelivery');
  const shut = consumer.shutdown();
  clock.advance(1000);
  await shut;
  expect(() => consumer.listen(() => undefined)).toThrow(expect.objectContaining({ code: 'CLOSED' }));
});

test('listen rejects bad arguments before it starts', () => {
  expect(() => consumer.listen(() => undefined, { maxCount: 0 })).toThrow(
    expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
  );
  expect(() => consumer.listen(() => undefined, { invisibleDurationMs: 5 })).toThrow(
    expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
  );
  expect(() => consumer.listen(() => undefined, { retryDelayMs: 0 })).toThrow(
    expect.objectContaining({ code: 'INVALID_OPTION' }),
  );
});
