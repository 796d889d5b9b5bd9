import { Broker, queueForGroup } from '../../src/broker/broker';
import type { BrokerEvent } from '../../src/broker/broker-options';
import { InProcessTransport } from '../../src/client/in-process-transport';
import { TransactionProducer } from '../../src/client/transaction-producer';
import type {
  TransactionChecker,
  TransactionCheckRequest,
  TransactionProducerEvents,
  TransactionProducerOptions,
} from '../../src/client/transaction-producer';
import type { MessageView } from '../../src/message/message';
import type { TransactionResolution } from '../../src/message/protocol';
import { SystemProperty } from '../../src/message/system-properties';
import { FileStore } from '../../src/store/file-store';
import { MemoryFileSystem } from '../../src/store/file-system';
import type { MessageStore } from '../../src/store/message-store';
import { ManualClock } from '../support/manual-clock';
import { settle } from '../support/settle';

const GROUP = 'tx-group';
const TOPIC = 'orders';
const QUEUES = 4;
const TIMEOUT_MS = 6000;
const INTERVAL_MS = 30_000;
const STEP_MS = 500;

interface BrokerHandle {
  broker: Broker;
  store: MessageStore;
  fileSystem: MemoryFileSystem;
}

interface Env {
  clock: ManualClock;
  transport: InProcessTransport;
  brokers: Map<string, BrokerHandle>;
  brokerEvents: BrokerEvent[];
  checks: TransactionCheckRequest[];
  /** The checker's answer; a function of the check. */
  answer: (check: TransactionCheckRequest) => TransactionResolution | Promise<TransactionResolution>;
  producer(options?: Partial<TransactionProducerOptions>): Promise<TransactionProducer>;
  delivered(brokerName?: string): Promise<MessageView[]>;
  advance(ms: number): Promise<void>;
  restartBroker(brokerName: string): Promise<void>;
  close(): Promise<void>;
}

async function env(brokerNames: string[] = ['broker-a']): Promise<Env> {
  const clock = new ManualClock();
  const brokerEvents: BrokerEvent[] = [];
  const producers: TransactionProducer[] = [];
  const open = async (brokerName: string, fileSystem: MemoryFileSystem): Promise<BrokerHandle> => {
    const store = await FileStore.open({ dir: '/store', fileSystem, clock, retentionIntervalMs: 0 });
    const broker = await Broker.start({
      store,
      clock,
      brokerName,
      configDir: '/config',
      fileSystem,
      onEvent: (event) => brokerEvents.push(event),
    });
    broker.createTopic({ topic: TOPIC, queueCount: QUEUES });
    return { broker, store, fileSystem };
  };
  const brokers = new Map<string, BrokerHandle>();
  for (const name of brokerNames) brokers.set(name, await open(name, new MemoryFileSystem()));
  const transport = new InProcessTransport([...brokers.values()].map((h) => h.broker));
  const e: Env = {
    clock,
    transport,
    brokers,
    brokerEvents,
    checks: [],
    answer: () => 'UNKNOWN',
    async producer(options = {}) {
      const checker: TransactionChecker = (check) => {
        e.checks.push(check);
        return e.answer(check);
      };
      const producer = new TransactionProducer({
        group: GROUP,
        transport,
        clock,
        checker,
        clientId: `p-${producers.length + 1}`,
        ...options,
      });
      producers.push(producer);
      await producer.start();
      return producer;
    },
    async delivered(brokerName = 'broker-a') {
      const out: MessageView[] = [];
      for (let queueId = 0; queueId < QUEUES; queueId++) {
        const got = await transport.pull(brokerName, {
          consumerGroup: 'reader',
          topic: TOPIC,
          queueId,
          queueOffset: 0,
          maxCount: 1024,
          suspendTimeoutMs: 0,
        });
        out.push(...got.messages);
      }
      return out;
    },
    async advance(ms) {
      for (let left = ms; left > 0; left -= STEP_MS) {
        clock.advance(Math.min(STEP_MS, left));
        await settle();
      }
    },
    async restartBroker(brokerName) {
      const old = brokers.get(brokerName)!;
      transport.removeBroker(brokerName);
      await old.broker.close();
      await old.store.close();
      const fresh = await open(brokerName, old.fileSystem);
      brokers.set(brokerName, fresh);
      transport.addBroker(fresh.broker);
    },
    async close() {
      for (const p of producers) await p.shutdown();
      for (const h of brokers.values()) {
        await h.broker.close();
        await h.store.close();
      }
    },
  };
  return e;
}

const bodies = (messages: MessageView[]): string[] => messages.map((m) => m.body.toString()).sort();

function record<K extends keyof TransactionProducerEvents>(
  producer: TransactionProducer,
  event: K,
): Array<TransactionProducerEvents[K]> {
  const out: Array<TransactionProducerEvents[K]> = [];
  producer.on(event, (payload) => out.push(payload));
  return out;
}

describe('sendInTransaction', () => {
  test('commit: the half is invisible while the local transaction runs, then delivered exactly once', async () => {
    const e = await env();
    const producer = await e.producer();
    const sends = record(producer, 'transaction.send');
    let seenDuringLocal: MessageView[] | undefined;
    const result = await producer.sendInTransaction(
      { topic: TOPIC, body: 'order-1', tag: 'created', properties: { region: 'eu' } },
      async (message, sent): Promise<TransactionResolution> => {
        expect(message.body.toString()).toBe('order-1');
        expect(sent.transactionId).toBe(sent.msgId);
        seenDuringLocal = await e.delivered();
        return 'COMMIT';
      },
    );
    expect(seenDuringLocal).toEqual([]);
    expect(result).toMatchObject({ topic: TOPIC, brokerName: 'broker-a', resolution: 'COMMIT' });
    expect(result.endTransactionError).toBeUndefined();
    const delivered = await e.delivered();
    expect(bodies(delivered)).toEqual(['order-1']);
    expect(delivered[0]).toMatchObject({ queueId: result.queueId, tag: 'created' });
    expect(delivered[0]!.properties).toMatchObject({
      region: 'eu',
      [SystemProperty.TRANSACTION_ID]: result.transactionId,
    });
    expect(sends).toEqual([
      {
        topic: TOPIC,
        brokerName: 'broker-a',
        queueId: result.queueId,
        transactionId: result.transactionId,
        resolution: 'COMMIT',
      },
    ]);
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toEqual([]);
    expect(await e.delivered()).toHaveLength(1);
    await e.close();
  });

  test('rollback: nothing is delivered and nothing checked', async () => {
    const e = await env();
    const producer = await e.producer();
    const result = await producer.sendInTransaction({ topic: TOPIC, body: 'x' }, () => 'ROLLBACK');
    expect(result.resolution).toBe('ROLLBACK');
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toEqual([]);
    expect(await e.delivered()).toEqual([]);
    await e.close();
  });

  test('executeLocal throwing counts as UNKNOWN: checked back after 6 s, not before; COMMIT delivers', async () => {
    const e = await env();
    const producer = await e.producer();
    const localErrors = record(producer, 'transaction.local.error');
    const checkEvents = record(producer, 'transaction.check');
    const result = await producer.sendInTransaction({ topic: TOPIC, body: 'x' }, () => {
      throw new Error('database down');
    });
    expect(result.resolution).toBe('UNKNOWN');
    expect(localErrors).toEqual([
      { transactionId: result.transactionId, error: expect.objectContaining({ message: 'database down' }) },
    ]);
    e.answer = () => 'COMMIT';
    await e.advance(TIMEOUT_MS - STEP_MS);
    expect(e.checks).toEqual([]);
    await e.advance(STEP_MS);
    expect(e.checks).toHaveLength(1);
    expect(e.checks[0]).toMatchObject({
      transactionId: result.transactionId,
      checkTimes: 1,
      brokerName: 'broker-a',
      producerGroup: GROUP,
    });
    expect(e.checks[0]!.message).toMatchObject({ topic: TOPIC, queueId: result.queueId });
    expect(e.checks[0]!.message.body.toString()).toBe('x');
    expect(checkEvents).toEqual([
      { brokerName: 'broker-a', transactionId: result.transactionId, checkTimes: 1, resolution: 'COMMIT' },
    ]);
    expect(bodies(await e.delivered())).toEqual(['x']);
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toHaveLength(1);
    expect(await e.delivered()).toHaveLength(1);
    await e.close();
  });

  test('UNKNOWN kept by the checker: checked every 30 s, 15 times, then rolled back, never delivered', async () => {
    const e = await env();
    const producer = await e.producer();
    const start = e.clock.now();
    const at: number[] = [];
    e.answer = () => {
      at.push(e.clock.now() - start);
      return 'UNKNOWN';
    };
    const result = await producer.sendInTransaction(
      { topic: TOPIC, body: 'x' },
      async (): Promise<TransactionResolution> => 'UNKNOWN',
    );
    expect(result.resolution).toBe('UNKNOWN');
    await e.advance(TIMEOUT_MS + 16 * INTERVAL_MS);
    expect(e.checks.map((c) => c.checkTimes)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(at).toEqual(Array.from({ length: 15 }, (_, i) => TIMEOUT_MS + i * INTERVAL_MS));
    expect(e.brokerEvents.filter((ev) => ev.type === 'transaction.discarded')).toEqual([
      expect.objectContaining({ transactionId: result.transactionId, reason: 'checkMax', checkTimes: 15 }),
    ]);
    expect(await e.delivered()).toEqual([]);
    await e.close();
  });

  test('a checker that throws or answers nonsense counts as UNKNOWN; the next check can still commit', async () => {
    const e = await env();
    const producer = await e.producer();
    const checkErrors = record(producer, 'transaction.check.error');
    const localErrors = record(producer, 'transaction.local.error');
    const result = await producer.sendInTransaction(
      { topic: TOPIC, body: 'x' },
      () => 'MAYBE' as TransactionResolution,
    );
    expect(result.resolution).toBe('UNKNOWN');
    expect(localErrors).toHaveLength(1);
    const answers: Array<() => TransactionResolution> = [
      () => {
        throw new Error('checker bug');
      },
      () => 'SOMETIMES' as TransactionResolution,
      () => 'COMMIT',
    ];
    e.answer = () => answers.shift()!();
    await e.advance(TIMEOUT_MS + INTERVAL_MS);
    expect(checkErrors).toHaveLength(2);
    expect(await e.delivered()).toEqual([]);
    await e.advance(INTERVAL_MS);
    expect(bodies(await e.delivered())).toEqual(['x']);
    await e.close();
  });

  test('queues round robin; a message group picks its queue by hash', async () => {
    const e = await env();
    const producer = await e.producer();
    const queues: number[] = [];
    for (let i = 0; i < 8; i++) {
      queues.push(
        (await producer.sendInTransaction({ topic: TOPIC, body: `m${i}` }, () => 'COMMIT')).queueId,
      );
    }
    expect(new Set(queues).size).toBe(QUEUES);
    for (let i = 0; i < QUEUES; i++) expect(queues.filter((q) => q === i)).toHaveLength(2);
    const fifo = await producer.sendInTransaction(
      { topic: TOPIC, body: 'g', messageGroup: 'customer-7' },
      () => 'COMMIT',
    );
    expect(fifo.queueId).toBe(queueForGroup('customer-7', QUEUES));
    expect(await e.delivered()).toHaveLength(9);
    await e.close();
  });

  test('a broker that fails the half send is retried elsewhere; executeLocal runs once', async () => {
    const e = await env(['broker-a', 'broker-b']);
    const producer = await e.producer();
    const b = e.brokers.get('broker-b')!;
    await b.broker.close(); // still on the transport: its calls fail with BROKER_UNAVAILABLE
    let runs = 0;
    for (let i = 0; i < 4; i++) {
      const result = await producer.sendInTransaction({ topic: TOPIC, body: `m${i}` }, () => {
        runs++;
        return 'COMMIT';
      });
      expect(result.brokerName).toBe('broker-a');
    }
    expect(runs).toBe(4);
    expect(await e.delivered('broker-a')).toHaveLength(4);
    await e.close();
  });

  test('when no broker stores the half, it rejects and executeLocal never runs', async () => {
    const e = await env();
    const producer = await e.producer({ retryTimesWhenSendFailed: 1 });
    let runs = 0;
    const local = (): TransactionResolution => {
      runs++;
      return 'COMMIT';
    };
    await expect(producer.sendInTransaction({ topic: 'missing', body: 'x' }, local)).rejects.toMatchObject({
      code: 'TOPIC_NOT_FOUND',
    });
    await e.brokers.get('broker-a')!.broker.close();
    await expect(producer.sendInTransaction({ topic: TOPIC, body: 'x' }, local)).rejects.toMatchObject({
      code: 'SEND_FAILED',
      retriable: true,
      cause: expect.objectContaining({ code: 'BROKER_UNAVAILABLE' }),
    });
    expect(runs).toBe(0);
    await e.close();
  });

  test('an endTransaction that cannot be delivered is reported; the check-back settles it', async () => {
    const e = await env();
    const producer = await e.producer();
    const failures = record(producer, 'transaction.end.failed');
    const handle = e.brokers.get('broker-a')!;
    const result = await producer.sendInTransaction({ topic: TOPIC, body: 'x' }, () => {
      e.transport.removeBroker('broker-a'); // the broker becomes unreachable mid-transaction
      return 'COMMIT';
    });
    expect(result.resolution).toBe('COMMIT');
    expect(result.endTransactionError).toMatchObject({ code: 'BROKER_UNAVAILABLE' });
    expect(failures).toEqual([
      expect.objectContaining({
        transactionId: result.transactionId,
        resolution: 'COMMIT',
        fromCheck: false,
      }),
    ]);
    e.transport.addBroker(handle.broker);
    e.answer = () => 'COMMIT';
    await e.advance(TIMEOUT_MS);
    expect(e.checks).toHaveLength(1);
    expect(bodies(await e.delivered())).toEqual(['x']);
    await e.close();
  });
});

describe('check-backs across restarts', () => {
  test('a broker restart resumes check-backs and never re-delivers a committed transaction', async () => {
    const e = await env();
    const producer = await e.producer();
    const committed = await producer.sendInTransaction({ topic: TOPIC, body: 'committed' }, () => 'COMMIT');
    const open = await producer.sendInTransaction({ topic: TOPIC, body: 'open' }, () => 'UNKNOWN');
    await e.advance(TIMEOUT_MS);
    expect(e.checks.map((c) => [c.transactionId, c.checkTimes])).toEqual([[open.transactionId, 1]]);

    await e.restartBroker('broker-a');
    expect(bodies(await e.delivered())).toEqual(['committed']);
    e.answer = () => 'COMMIT';
    // the producer's next heartbeat tells the new broker about it; the next check reaches it
    await e.advance(INTERVAL_MS);
    expect(e.checks.map((c) => [c.transactionId, c.checkTimes])).toEqual([
      [open.transactionId, 1],
      [open.transactionId, 2],
    ]);
    expect(bodies(await e.delivered())).toEqual(['committed', 'open']);
    await e.restartBroker('broker-a');
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toHaveLength(2);
    expect(bodies(await e.delivered())).toEqual(['committed', 'open']);
    expect(committed.transactionId).not.toBe(open.transactionId);
    await e.close();
  });

  test('another producer of the group answers for one that is gone; `topics` makes it known before it sends', async () => {
    const e = await env();
    const first = await e.producer();
    const sent = await first.sendInTransaction({ topic: TOPIC, body: 'x' }, () => 'UNKNOWN');
    await first.shutdown();
    expect(e.brokers.get('broker-a')!.broker.producerIds(GROUP)).toEqual([]);
    const second = await e.producer({ topics: [TOPIC] });
    expect(e.brokers.get('broker-a')!.broker.producerIds(GROUP)).toEqual([second.clientId]);
    e.answer = () => 'COMMIT';
    await e.advance(TIMEOUT_MS);
    expect(e.checks.map((c) => c.transactionId)).toEqual([sent.transactionId]);
    expect(bodies(await e.delivered())).toEqual(['x']);
    await e.close();
  });

  test('heartbeats keep the producer known to the broker past its expiry', async () => {
    const e = await env();
    const producer = await e.producer({ topics: [TOPIC] });
    await e.advance(5 * 60_000);
    expect(e.brokers.get('broker-a')!.broker.producerIds(GROUP)).toEqual([producer.clientId]);
    await e.close();
  });
});

describe('lifecycle and bad input', () => {
  test('shutdown waits for a transaction in flight, then unregisters; later sends and checks are refused', async () => {
    const e = await env();
    const producer = await e.producer();
    let release: (r: TransactionResolution) => void = () => undefined;
    const pending = producer.sendInTransaction(
      { topic: TOPIC, body: 'x' },
      () => new Promise((resolve) => (release = resolve)),
    );
    await settle();
    let stopped = false;
    const stopping = producer.shutdown().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    release('COMMIT');
    expect((await pending).resolution).toBe('COMMIT');
    await stopping;
    expect(bodies(await e.delivered())).toEqual(['x']);
    expect(e.brokers.get('broker-a')!.broker.producerIds(GROUP)).toEqual([]);
    await expect(
      producer.sendInTransaction({ topic: TOPIC, body: 'y' }, () => 'COMMIT'),
    ).rejects.toMatchObject({ code: 'CLOSED' });
    await producer.shutdown(); // idempotent
    await e.close();
  });

  test('a check-back for a transaction whose check is still running is dropped', async () => {
    const e = await env();
    const producer = await e.producer();
    const dropped = record(producer, 'transaction.check.dropped');
    await producer.sendInTransaction({ topic: TOPIC, body: 'x' }, () => 'UNKNOWN');
    let release: (r: TransactionResolution) => void = () => undefined;
    e.answer = () => new Promise((resolve) => (release = resolve));
    await e.advance(TIMEOUT_MS + INTERVAL_MS);
    expect(e.checks).toHaveLength(1);
    expect(dropped).toEqual([expect.objectContaining({ reason: 'duplicate' })]);
    release('COMMIT');
    await settle();
    expect(bodies(await e.delivered())).toEqual(['x']);
    await e.close();
  });

  test('invalid options, messages and states are typed errors', async () => {
    const e = await env();
    const checker: TransactionChecker = () => 'UNKNOWN';
    expect(() => new TransactionProducer({ group: 'bad group', transport: e.transport, checker })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(
      () =>
        new TransactionProducer({
          group: GROUP,
          transport: e.transport,
        } as unknown as TransactionProducerOptions),
    ).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(
      () =>
        new TransactionProducer({ group: GROUP, transport: e.transport, checker, heartbeatIntervalMs: 0 }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    const idle = new TransactionProducer({ group: GROUP, transport: e.transport, checker, clock: e.clock });
    await expect(idle.sendInTransaction({ topic: TOPIC, body: 'x' }, () => 'COMMIT')).rejects.toMatchObject({
      code: 'CLOSED',
      message: expect.stringContaining('start()'),
    });
    const producer = await e.producer();
    await expect(producer.start()).rejects.toMatchObject({ code: 'CLOSED' });
    const bad = async (message: object, code = 'INVALID_ARGUMENT'): Promise<void> => {
      await expect(producer.sendInTransaction(message as never, () => 'COMMIT')).rejects.toMatchObject({
        code,
      });
    };
    await bad({ topic: TOPIC, body: 'x', deliveryTimeMs: e.clock.now() + 1000 });
    await bad({ topic: TOPIC, body: 'x', delayMs: 1000 });
    await bad({ topic: TOPIC, body: 'x', properties: { __TRANSACTION_ID: 'forged' } });
    await bad({ topic: TOPIC, body: '' });
    await bad({ topic: 'RMQ_SYS_TRANS_HALF_TOPIC', body: 'x' });
    await expect(
      producer.sendInTransaction({ topic: TOPIC, body: 'x' }, undefined as never),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await e.delivered()).toEqual([]);
    await e.close();
  });
});
