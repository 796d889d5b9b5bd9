import {
  ConsumeResult,
  Producer,
  PushConsumer,
  SimpleConsumer,
  TransactionProducer,
  type MessageExt,
} from '@rocketnest/core-broker';
import { VirtualClock, createTestBroker, toMs, type TestBroker } from '../src/index';

let tb: TestBroker;
const clients: Array<{ shutdown(): Promise<void> }> = [];

async function producer(): Promise<Producer> {
  const p = new Producer({ group: 'PG', transport: tb.transport, clock: tb.clock });
  clients.push(p);
  await p.start();
  return p;
}

async function consumer(
  group: string,
  topic: string,
  listener: (m: MessageExt) => void | Promise<void>,
  options: { maxReconsumeTimes?: number; expression?: string } = {},
): Promise<PushConsumer> {
  const c = new PushConsumer({
    group,
    transport: tb.transport,
    clock: tb.clock,
    consumeFromWhere: 'FIRST_OFFSET',
    maxReconsumeTimes: options.maxReconsumeTimes,
  });
  c.subscribe(topic, options.expression ?? '*');
  c.registerMessageListener(async (messages) => {
    for (const m of messages) await listener(m);
    return ConsumeResult.CONSUME_SUCCESS;
  });
  clients.push(c);
  await c.start();
  return c;
}

beforeEach(async () => {
  tb = await createTestBroker({ topics: ['Orders', { topic: 'Fifo', queueCount: 2, fifo: true }] });
});

afterEach(async () => {
  for (const c of clients.splice(0).reverse()) await c.shutdown();
  await tb.close();
});

describe('createTestBroker', () => {
  test('published, drain and consumed: what was sent, and what each group finished', async () => {
    const seen: string[] = [];
    await consumer('Billing', 'Orders', (m) => void seen.push(m.body.toString()));
    const p = await producer();
    for (let i = 0; i < 10; i++)
      await p.send({ topic: 'Orders', body: `o${i}`, tag: i % 2 ? 'odd' : 'even' });
    expect(tb.published('Orders').map((m) => m.body.toString())).toEqual(
      Array.from({ length: 10 }, (_, i) => `o${i}`),
    );
    await tb.drain();
    expect(seen.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `o${i}`).sort());
    expect(tb.consumed('Billing', 'Orders')).toHaveLength(10);
    expect(tb.consumed('Nobody')).toEqual([]);
  });

  test('a failing handler is retried when the virtual clock passes the backoff, then dead-lettered; runAll finishes it all', async () => {
    const attempts: number[] = [];
    await consumer(
      'Flaky',
      'Orders',
      (m) => {
        attempts.push(m.reconsumeTimes);
        throw new Error('payment service down');
      },
      { maxReconsumeTimes: 2 },
    );
    const p = await producer();
    await p.send({ topic: 'Orders', body: 'poison' });
    await tb.drain();
    expect(attempts).toEqual([0]);
    // the first retry level is 10 s: not yet at 9 s, delivered at 10 s
    await tb.clock.advance('9s');
    await tb.drain();
    expect(attempts).toEqual([0]);
    await tb.clock.advance('1s');
    await tb.drain();
    expect(attempts).toEqual([0, 1]);
    expect(tb.deadLetters('Flaky')).toEqual([]);
    // the rest (30 s backoff, then the dead-letter queue) without counting seconds
    await tb.clock.runAll();
    expect(attempts).toEqual([0, 1, 2]);
    expect(tb.deadLetters('Flaky').map((m) => m.body.toString())).toEqual(['poison']);
    expect(tb.broker.pendingWork()).toEqual({ scheduledMessages: 0, pendingTransactions: 0, unackedPops: 0 });
  });

  test('a delayed message arrives when its time comes, not before', async () => {
    const seen: string[] = [];
    await consumer('Timer', 'Orders', (m) => void seen.push(m.body.toString()));
    const p = await producer();
    await p.send({ topic: 'Orders', body: 'cancel-if-unpaid', delayMs: toMs('15s') });
    await tb.drain();
    expect(seen).toEqual([]);
    await tb.clock.advance('14s');
    await tb.drain();
    expect(seen).toEqual([]);
    await tb.clock.advance('1s');
    await tb.drain();
    expect(seen).toEqual(['cancel-if-unpaid']);
  });

  test('an unknown transaction is checked back when the clock reaches the check interval', async () => {
    const checks: string[] = [];
    const tx = new TransactionProducer({
      group: 'TxGroup',
      transport: tb.transport,
      clock: tb.clock,
      checker: (check) => {
        checks.push(check.transactionId);
        return 'COMMIT';
      },
    });
    clients.push(tx);
    await tx.start();
    const sent = await tx.sendInTransaction({ topic: 'Orders', body: 'payment' }, () => 'UNKNOWN');
    expect(tb.published('Orders')).toEqual([]);
    await tb.clock.runAll();
    expect(checks).toEqual([sent.transactionId]);
    expect(tb.published('Orders').map((m) => m.body.toString())).toEqual(['payment']);
  });

  test('a popped message not acked comes back after its invisible time', async () => {
    const c = new SimpleConsumer({ group: 'Pop', transport: tb.transport, clock: tb.clock });
    clients.push(c);
    c.subscribe('Orders', '*');
    await c.start();
    const p = await producer();
    await p.send({ topic: 'Orders', body: 'job' });
    const first = await c.receive(1, toMs('30s'));
    expect(first).toHaveLength(1);
    await tb.clock.advance('31s');
    const second = await c.receive(1, toMs('30s'));
    expect(second.map((m) => m.body.toString())).toEqual(['job']);
    expect(second[0]!.deliveryAttempt).toBe(2);
    await c.ack(second[0]!);
    await tb.clock.advance('31s');
    expect(tb.broker.pendingWork().unackedPops).toBe(0);
  });

  test('waitForMessage resolves with a match, and rejects TIMEOUT when none comes', async () => {
    const p = await producer();
    setTimeout(() => void p.send({ topic: 'Orders', body: 'late', keys: ['k-9'] }), 20);
    const m = await tb.waitForMessage('Orders', (x) => x.keys.includes('k-9'), '2s');
    expect(m.body.toString()).toBe('late');
    await expect(tb.waitForMessage('Orders', (x) => x.keys.includes('never'), '50ms')).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringMatching(/no message of topic "Orders" matched within 50ms/),
    });
  });

  test('drain rejects TIMEOUT naming the busy queue when a handler never settles', async () => {
    let release: () => void = () => undefined;
    await consumer('Stuck', 'Orders', () => new Promise<void>((resolve) => (release = resolve)));
    const p = await producer();
    await p.send({ topic: 'Orders', body: 'x' });
    try {
      const error = await tb.drain('100ms').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TIMEOUT' });
      expect((error as Error).message).toMatch(/Stuck on Orders#\d: 1 in progress/);
    } finally {
      release();
    }
    await tb.drain();
  });

  test('drain fires timers due now (zero-delay wake-ups) without moving time', async () => {
    const fired: number[] = [];
    const start = tb.clock.now();
    tb.clock.setTimer(0, () => fired.push(tb.clock.now()));
    tb.clock.setTimer(1, () => fired.push(-1));
    await tb.drain();
    expect(fired).toEqual([start]);
    expect(tb.clock.now()).toBe(start);
  });

  test('FIFO topics keep per-group order through the test broker', async () => {
    const seen: string[] = [];
    await consumer('Fifo', 'Fifo', (m) => void seen.push(`${m.messageGroup}:${m.body.toString()}`));
    const p = await producer();
    for (let i = 0; i < 5; i++) {
      await p.send({ topic: 'Fifo', body: String(i), messageGroup: 'order-1' });
      await p.send({ topic: 'Fifo', body: String(i), messageGroup: 'order-2' });
    }
    await tb.drain();
    for (const group of ['order-1', 'order-2']) {
      expect(seen.filter((s) => s.startsWith(group))).toEqual([0, 1, 2, 3, 4].map((i) => `${group}:${i}`));
    }
  });
});

describe('real time', () => {
  test("time: 'real' runs on the system clock; advance sleeps", async () => {
    const real = await createTestBroker({ time: 'real', topics: ['T'] });
    try {
      // real time: the clock's own timers fire during advance(), not before
      let fired = false;
      real.clock.setTimer(10, () => (fired = true));
      expect(fired).toBe(false);
      await real.clock.advance('30ms');
      expect(fired).toBe(true);
      await real.clock.runAll();
    } finally {
      await real.close();
    }
  });

  test('bad options are INVALID_OPTION', async () => {
    await expect(createTestBroker({ time: 'fast' as never })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
  });
});

describe('VirtualClock', () => {
  test('fires timers in due order as time passes, with their promise chains run in between', async () => {
    const clock = new VirtualClock(1_000);
    const log: string[] = [];
    clock.setTimer(30, () => log.push('b@30'));
    clock.setTimer(10, () => {
      log.push('a@10');
      void Promise.resolve().then(() => clock.setTimer(5, () => log.push('chained@15')));
    });
    const cancelled = clock.setTimer(20, () => log.push('never'));
    cancelled.cancel();
    await clock.advance(29);
    expect(log).toEqual(['a@10', 'chained@15']);
    expect(clock.now()).toBe(1_029);
    await clock.advance('1s');
    expect(log).toEqual(['a@10', 'chained@15', 'b@30']);
    expect(clock.pendingTimers).toBe(0);
  });

  test('durations: ms or strings such as 1m30s; anything else is INVALID_ARGUMENT', () => {
    expect(toMs(250)).toBe(250);
    expect(toMs('250ms')).toBe(250);
    expect(toMs('1m30s')).toBe(90_000);
    expect(toMs('2h')).toBe(7_200_000);
    for (const bad of ['', '10', '5 s', '1y', -1, 1.5]) {
      expect(() => toMs(bad as never)).toThrow(/duration/);
    }
  });
});
