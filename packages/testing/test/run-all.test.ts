import {
  ConsumeResult,
  PushConsumer,
  Producer,
  SimpleConsumer,
  type MessageExt,
} from '@rocketnest/core-broker';
import { createTestBroker, type TestBroker } from '../src/index';

// clock.runAll() with the default retry policies (16 retries, RocketMQ's backoff levels: about
// 4 h 45 min of virtual time), for each way a message is retried.
let tb: TestBroker;
const clients: Array<{ shutdown(): Promise<void> }> = [];

beforeEach(async () => {
  tb = await createTestBroker({ topics: ['Jobs', { topic: 'Fifo', queueCount: 1, fifo: true }] });
});
afterEach(async () => {
  for (const c of clients.splice(0).reverse()) await c.shutdown();
  await tb.close();
});

async function send(topic: string, body: string, messageGroup?: string): Promise<void> {
  const p = new Producer({ group: 'P', transport: tb.transport, clock: tb.clock });
  clients.push(p);
  await p.start();
  await p.send({ topic, body, ...(messageGroup ? { messageGroup } : {}) });
}

async function failingPush(
  group: string,
  topic: string,
  options: { orderly?: boolean; retryDelayMs?: number } = {},
) {
  const attempts: number[] = [];
  const c = new PushConsumer({
    group,
    transport: tb.transport,
    clock: tb.clock,
    consumeFromWhere: 'FIRST_OFFSET',
  });
  c.subscribe(topic, '*');
  c.registerMessageListener(
    (messages: MessageExt[], context) => {
      for (const m of messages) attempts.push(m.reconsumeTimes);
      if (options.retryDelayMs !== undefined) context.retryDelayMs = options.retryDelayMs;
      return ConsumeResult.RECONSUME_LATER;
    },
    { orderly: options.orderly === true },
  );
  clients.push(c);
  await c.start();
  return attempts;
}

describe('clock.runAll() with every built-in retry policy', () => {
  test('push, concurrently: the broker backoff levels (10 s … 2 h), 16 retries, then the dead-letter queue', async () => {
    const attempts = await failingPush('Backoff', 'Jobs');
    await send('Jobs', 'poison');
    const started = tb.clock.now();
    await tb.clock.runAll();
    expect(attempts).toEqual(Array.from({ length: 17 }, (_, i) => i));
    expect(tb.deadLetters('Backoff').map((m) => m.body.toString())).toEqual(['poison']);
    // 10s+30s+1m+2m+3m+4m+5m+6m+7m+8m+9m+10m+20m+30m+1h+2h
    expect(tb.clock.now() - started).toBeGreaterThanOrEqual(17_140_000); // 4 h 45 min 40 s
  }, 120_000); // ~20 000 timers: about a second on an idle machine, far more on a loaded CI box

  test('push, concurrently, with a fixed retryDelayMs', async () => {
    const attempts = await failingPush('Fixed', 'Jobs', { retryDelayMs: 5_000 });
    await send('Jobs', 'poison');
    await tb.clock.runAll();
    expect(attempts).toHaveLength(17);
    expect(tb.deadLetters('Fixed')).toHaveLength(1);
  });

  test('push, orderly: local retries after suspendCurrentQueueTimeMillis, then the dead-letter queue', async () => {
    const attempts = await failingPush('Orderly', 'Fifo', { orderly: true });
    await send('Fifo', 'poison', 'g1');
    await tb.clock.runAll();
    expect(attempts).toHaveLength(17);
    expect(tb.deadLetters('Orderly')).toHaveLength(1);
  });

  test("pop: redelivered after each invisible time until the broker's maxReconsumeTimes, then the dead-letter queue", async () => {
    const c = new SimpleConsumer({
      group: 'Pop',
      transport: tb.transport,
      clock: tb.clock,
      awaitDurationMs: 0,
    });
    c.subscribe('Jobs', '*');
    clients.push(c);
    await c.start();
    await send('Jobs', 'poison');
    const attempts: number[] = [];
    // a worker that fails every message: receives, never acks
    let running = true;
    const worker = (async () => {
      while (running) {
        const got = await c.receive(1, 30_000);
        for (const m of got) attempts.push(m.deliveryAttempt);
        if (got.length === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      await tb.clock.runAll();
      expect(attempts.length).toBeGreaterThanOrEqual(17);
      expect(tb.deadLetters('Pop')).toHaveLength(1);
    } finally {
      running = false;
      await worker;
    }
  });

  test('a bound that is reached fails TIMEOUT and says what is still pending', async () => {
    await failingPush('Bounded', 'Jobs');
    await send('Jobs', 'poison');
    const error = await tb.clock.runAll({ maxTime: '1m' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    expect((error as Error).message).toMatch(
      /runAll: still busy after 1m of virtual time: .*1 scheduled message/,
    );
  });
});
