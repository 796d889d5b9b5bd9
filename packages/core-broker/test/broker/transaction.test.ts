import { Broker, queueForGroup } from '../../src/broker/broker';
import type { BrokerEvent, BrokerOptions } from '../../src/broker/broker-options';
import {
  OP_TAG_RESOLVED,
  TRANSACTION_HALF_TOPIC,
  TRANSACTION_OP_TOPIC,
} from '../../src/broker/transaction-service';
import type { TransactionProgress } from '../../src/broker/transaction-service';
import { TRANSACTION_FLAG_MASK, TransactionFlag } from '../../src/message/message';
import type { MessageInput, MessageView } from '../../src/message/message';
import type { SentMessage, TransactionCheck, TransactionResolution } from '../../src/message/protocol';
import { SystemProperty } from '../../src/message/system-properties';
import { FileStore } from '../../src/store/file-store';
import { MemoryFileSystem } from '../../src/store/file-system';
import { MemoryStore } from '../../src/store/memory-store';
import type { AppendRequest, MessageStore } from '../../src/store/message-store';
import { RocketError } from '../../src/common/errors';
import { ManualClock } from '../support/manual-clock';
import { settle } from '../support/settle';

const GROUP = 'tx-group';
const TOPIC = 'orders';
const QUEUES = 4;
const TIMEOUT_MS = 6000;
const INTERVAL_MS = 30_000;
const STEP_MS = 500;

const msg = (body: string, extra: Partial<MessageInput> = {}): MessageInput => ({
  topic: TOPIC,
  body: Buffer.from(body),
  ...extra,
});

interface Env {
  clock: ManualClock;
  broker: Broker;
  store: MessageStore;
  fileSystem: MemoryFileSystem;
  events: BrokerEvent[];
  checks: TransactionCheck[];
  /** Sends one transactional message; returns what the broker answered for it. */
  half(body: string, extra?: Partial<MessageInput>): Promise<SentMessage>;
  end(transactionId: string, resolution: TransactionResolution, fromCheck?: boolean): Promise<void>;
  /** Every message of the topic, all queues, from offset 0. */
  delivered(): Promise<MessageView[]>;
  /** A producer of the group comes online; it records checks and answers with `answer` (none: it stays silent). */
  producerOnline(
    clientId?: string,
    answer?: (check: TransactionCheck) => TransactionResolution | undefined,
  ): void;
  /** Moves the clock, in steps, letting the check rounds run. */
  advance(ms: number): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

interface EnvOptions {
  broker?: Partial<BrokerOptions>;
  /** A FileStore on an in-memory file system, restartable; default a MemoryStore. */
  restartable?: boolean;
  /** Wraps the store the broker gets (fault injection). */
  wrapStore?: (store: MessageStore) => MessageStore;
}

async function env(o: EnvOptions = {}): Promise<Env> {
  const clock = new ManualClock();
  const fileSystem = new MemoryFileSystem();
  const openStore = async (): Promise<MessageStore> => {
    const store = o.restartable
      ? await FileStore.open({ dir: '/store', fileSystem, clock, retentionIntervalMs: 0 })
      : await MemoryStore.create({ clock, retentionIntervalMs: 0 });
    return o.wrapStore ? o.wrapStore(store) : store;
  };
  const events: BrokerEvent[] = [];
  const online = new Set<string>();
  const checks: TransactionCheck[] = [];
  const startBroker = (store: MessageStore): Promise<Broker> =>
    Broker.start({
      store,
      clock,
      configDir: '/config',
      fileSystem,
      onEvent: (event) => events.push(event),
      ...o.broker,
    });
  const store = await openStore();
  const broker = await startBroker(store);
  broker.createTopic({ topic: TOPIC, queueCount: QUEUES });
  const e: Env = {
    clock,
    broker,
    store,
    fileSystem,
    events,
    checks,
    async half(body, extra = {}) {
      const response = await e.broker.send({
        producerGroup: GROUP,
        topic: TOPIC,
        messages: [msg(body, extra)],
        bornTimestampMs: clock.now(),
        transactional: true,
      });
      return response.messages[0]!;
    },
    end(transactionId, resolution, fromCheck = false) {
      return e.broker.endTransaction({ producerGroup: GROUP, transactionId, resolution, fromCheck });
    },
    async delivered() {
      const out: MessageView[] = [];
      for (let queueId = 0; queueId < QUEUES; queueId++) {
        const got = await e.broker.pull({
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
    producerOnline(clientId = 'producer-1', answer) {
      online.add(clientId);
      e.broker.heartbeat({ clientId, producerGroups: [GROUP], consumers: [] });
      e.broker.registerChannel(clientId, {
        checkTransaction(check) {
          checks.push(check);
          const resolution = answer?.(check);
          if (resolution) void e.end(check.transactionId, resolution, true);
        },
      });
    },
    async advance(ms) {
      // in steps, so each check round (asynchronous) arms the next timer before time passes it
      for (let left = ms; left > 0; left -= STEP_MS) {
        e.clock.advance(Math.min(STEP_MS, left));
        // online producers keep heartbeating, as clients do, so the broker does not expire them
        for (const clientId of online)
          e.broker.heartbeat({ clientId, producerGroups: [GROUP], consumers: [] });
        await settle();
      }
    },
    async restart() {
      await e.broker.close();
      await e.store.close();
      e.store = await openStore();
      e.broker = await startBroker(e.store);
    },
    async close() {
      await e.broker.close();
      await e.store.close();
    },
  };
  return e;
}

const bodies = (messages: MessageView[]): string[] => messages.map((m) => m.body.toString()).sort();
const ofType = <T extends BrokerEvent['type']>(events: BrokerEvent[], type: T) =>
  events.filter((ev): ev is Extract<BrokerEvent, { type: T }> => ev.type === type);

describe('half messages', () => {
  test('a transactional send is stored as a half message, invisible to consumers', async () => {
    const e = await env();
    const sent = await e.half('a', { tag: 'created', keys: ['order-1'], properties: { region: 'eu' } });
    expect(sent.transactionId).toBe(sent.msgId);
    expect(await e.delivered()).toEqual([]);
    const half = e.store.getById(sent.msgId)!;
    expect(half.topic).toBe(TRANSACTION_HALF_TOPIC);
    expect(half.queueId).toBe(0);
    expect(half.flags & TRANSACTION_FLAG_MASK).toBe(TransactionFlag.PREPARED);
    expect(half.properties).toEqual({
      region: 'eu',
      [SystemProperty.REAL_TOPIC]: TOPIC,
      [SystemProperty.REAL_QUEUE_ID]: String(sent.queueId),
      [SystemProperty.PRODUCER_GROUP]: GROUP,
    });
    // the half topic is the broker's own: no consumer can read it
    await expect(
      e.broker.pull({
        consumerGroup: 'reader',
        topic: TRANSACTION_HALF_TOPIC,
        queueId: 0,
        queueOffset: 0,
        maxCount: 32,
        suspendTimeoutMs: 0,
      }),
    ).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    await e.close();
  });

  test('commit delivers the message exactly once, to its queue, marked with its transaction', async () => {
    const e = await env();
    const sent = await e.half('a', { tag: 'created', keys: ['order-1'], properties: { region: 'eu' } });
    await e.end(sent.transactionId!, 'COMMIT');
    const delivered = await e.delivered();
    expect(bodies(delivered)).toEqual(['a']);
    const m = delivered[0]!;
    expect(m.queueId).toBe(sent.queueId);
    expect(m.tag).toBe('created');
    expect(m.keys).toEqual(['order-1']);
    expect(m.flags & TRANSACTION_FLAG_MASK).toBe(TransactionFlag.COMMIT);
    expect(m.properties).toEqual({
      region: 'eu',
      [SystemProperty.PRODUCER_GROUP]: GROUP,
      [SystemProperty.TRANSACTION_ID]: sent.transactionId,
    });
    expect(e.broker.queryByKey(TOPIC, 'order-1').map((x) => x.msgId)).toEqual([m.msgId]);
    // nothing is ever checked for it, and committing again changes nothing
    await e.end(sent.transactionId!, 'COMMIT');
    e.producerOnline();
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toEqual([]);
    expect(bodies(await e.delivered())).toEqual(['a']);
    expect(ofType(e.events, 'transaction.resolved')).toEqual([
      {
        type: 'transaction.resolved',
        transactionId: sent.transactionId,
        producerGroup: GROUP,
        resolution: 'COMMIT',
        fromCheck: false,
      },
    ]);
    await e.close();
  });

  test('a commit wakes a pull waiting on the queue', async () => {
    const e = await env();
    const sent = await e.half('a');
    let answered = false;
    const pull = e.broker
      .pull({
        consumerGroup: 'reader',
        topic: TOPIC,
        queueId: sent.queueId,
        queueOffset: 0,
        maxCount: 32,
        suspendTimeoutMs: 20_000,
      })
      .finally(() => (answered = true));
    await settle();
    expect(answered).toBe(false);
    await e.end(sent.transactionId!, 'COMMIT');
    const got = await pull;
    expect(got.status).toBe('FOUND');
    expect(bodies(got.messages)).toEqual(['a']);
    await e.close();
  });

  test('rollback delivers nothing, ever', async () => {
    const e = await env();
    const sent = await e.half('a');
    await e.end(sent.transactionId!, 'ROLLBACK');
    e.producerOnline('producer-1', () => 'COMMIT');
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toEqual([]);
    await e.end(sent.transactionId!, 'COMMIT'); // too late: a no-op
    expect(await e.delivered()).toEqual([]);
    await e.close();
  });

  test('resolving twice is a no-op: commit twice, commit then rollback, concurrent commits', async () => {
    const e = await env();
    const a = await e.half('a');
    const b = await e.half('b');
    const c = await e.half('c');
    await e.end(a.transactionId!, 'COMMIT');
    await e.end(a.transactionId!, 'COMMIT');
    await e.end(b.transactionId!, 'COMMIT');
    await e.end(b.transactionId!, 'ROLLBACK');
    await Promise.all([
      e.end(c.transactionId!, 'COMMIT'),
      e.end(c.transactionId!, 'COMMIT'),
      e.end(c.transactionId!, 'ROLLBACK'),
    ]);
    expect(bodies(await e.delivered())).toEqual(['a', 'b', 'c']);
    expect(ofType(e.events, 'transaction.resolved')).toHaveLength(3);
    await e.close();
  });

  test('UNKNOWN ends nothing: the transaction waits for its check-back', async () => {
    const e = await env();
    const sent = await e.half('a');
    await e.end(sent.transactionId!, 'UNKNOWN');
    expect(await e.delivered()).toEqual([]);
    await e.end(sent.transactionId!, 'COMMIT');
    expect(bodies(await e.delivered())).toEqual(['a']);
    await e.close();
  });

  test('a FIFO topic (message type check off): the committed copy goes to the queue of its message group', async () => {
    // RocketMQ 5 refuses transactional messages on a FIFO topic (message-type.test.ts); with the
    // check off, as an older broker, the commit still keeps the group's queue
    const e = await env({ broker: { enableTopicMessageTypeCheck: false } });
    e.broker.createTopic({ topic: TOPIC, queueCount: QUEUES, fifo: true });
    const sent = await e.half('a', { messageGroup: 'customer-7' });
    expect(sent.queueId).toBe(queueForGroup('customer-7', QUEUES));
    await e.end(sent.transactionId!, 'COMMIT');
    const [m] = await e.delivered();
    expect(m).toMatchObject({ queueId: queueForGroup('customer-7', QUEUES), messageGroup: 'customer-7' });
    await e.close();
  });
});

describe('check-back', () => {
  test('first check 6 s after the half was stored, not before; answered COMMIT it is delivered', async () => {
    const e = await env();
    e.producerOnline('producer-1', () => 'COMMIT');
    const sent = await e.half('a', { properties: { region: 'eu' } });
    await e.advance(TIMEOUT_MS - 1);
    expect(e.checks).toEqual([]);
    await e.advance(1);
    expect(e.checks).toHaveLength(1);
    const check = e.checks[0]!;
    expect(check).toMatchObject({
      brokerName: 'broker-a',
      producerGroup: GROUP,
      transactionId: sent.transactionId,
      checkTimes: 1,
    });
    expect(check.message).toMatchObject({
      topic: TOPIC,
      queueId: sent.queueId,
      msgId: sent.msgId,
      properties: { region: 'eu' },
    });
    expect(check.message.body.toString()).toBe('a');
    await settle();
    const delivered = await e.delivered();
    expect(bodies(delivered)).toEqual(['a']);
    expect(ofType(e.events, 'transaction.resolved')).toEqual([
      expect.objectContaining({ transactionId: sent.transactionId, resolution: 'COMMIT', fromCheck: true }),
    ]);
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toHaveLength(1);
    expect(await e.delivered()).toHaveLength(1);
    await e.close();
  });

  test('answered ROLLBACK, nothing is delivered and nothing checked again', async () => {
    const e = await env();
    e.producerOnline('producer-1', () => 'ROLLBACK');
    await e.half('a');
    await e.advance(TIMEOUT_MS);
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toHaveLength(1);
    expect(await e.delivered()).toEqual([]);
    await e.close();
  });

  test('kept UNKNOWN: checked every 30 s, 15 times, then rolled back and reported, never delivered', async () => {
    const e = await env();
    const start = e.clock.now();
    const at: number[] = [];
    e.producerOnline('producer-1', () => {
      at.push(e.clock.now() - start);
      return 'UNKNOWN';
    });
    const sent = await e.half('a');
    // the 16th due time, 6 s + 15 × 30 s after the send, rolls it back instead of checking
    const rollbackAt = TIMEOUT_MS + 15 * INTERVAL_MS;
    for (let i = 0; i < 30; i++) await e.advance(INTERVAL_MS / 2);
    await e.advance(rollbackAt - 1 - (e.clock.now() - start));
    expect(e.checks.map((c) => c.checkTimes)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(at).toEqual(Array.from({ length: 15 }, (_, i) => TIMEOUT_MS + i * INTERVAL_MS));
    expect(ofType(e.events, 'transaction.discarded')).toEqual([]);
    await e.advance(1);
    expect(ofType(e.events, 'transaction.discarded')).toEqual([
      {
        type: 'transaction.discarded',
        transactionId: sent.transactionId,
        producerGroup: GROUP,
        checkTimes: 15,
        reason: 'checkMax',
      },
    ]);
    expect(e.checks).toHaveLength(15);
    await e.end(sent.transactionId!, 'COMMIT'); // the rollback stands
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toHaveLength(15);
    expect(await e.delivered()).toEqual([]);
    const op = e.store.getMessages(TRANSACTION_OP_TOPIC, 0, 0, { maxCount: 100 }).messages.at(-1)!;
    expect(op).toMatchObject({ tag: OP_TAG_RESOLVED, flags: TransactionFlag.ROLLBACK });
    await e.close();
  });

  test('the limits are options: transactionTimeoutMs, transactionCheckIntervalMs, transactionCheckMax', async () => {
    const e = await env({
      broker: { transactionTimeoutMs: 1000, transactionCheckIntervalMs: 2000, transactionCheckMax: 2 },
    });
    e.producerOnline();
    await e.half('a');
    await e.advance(999);
    expect(e.checks).toHaveLength(0);
    await e.advance(1);
    expect(e.checks).toHaveLength(1);
    await e.advance(2000);
    expect(e.checks).toHaveLength(2);
    await e.advance(2000);
    expect(e.checks).toHaveLength(2);
    expect(ofType(e.events, 'transaction.discarded')).toHaveLength(1);
    await e.close();
  });

  test('with no producer of the group online a check still counts, and the transaction is rolled back in the end', async () => {
    const e = await env();
    // a producer of another group is online; it is never asked
    e.broker.heartbeat({ clientId: 'other', producerGroups: ['other-group'], consumers: [] });
    e.broker.registerChannel('other', { checkTransaction: (c) => e.checks.push(c) });
    await e.half('a');
    await e.advance(TIMEOUT_MS + 4 * INTERVAL_MS);
    const checkEvents = ofType(e.events, 'transaction.check');
    expect(checkEvents.map((c) => [c.checkTimes, c.clientId])).toEqual([
      [1, undefined],
      [2, undefined],
      [3, undefined],
      [4, undefined],
      [5, undefined],
    ]);
    // a producer comes online and is asked from the next check on, with the count so far
    const answers: number[] = [];
    e.producerOnline('producer-1', (check) => {
      answers.push(check.checkTimes);
      return undefined;
    });
    await e.advance(11 * INTERVAL_MS);
    expect(answers).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(ofType(e.events, 'transaction.discarded')).toEqual([
      expect.objectContaining({ reason: 'checkMax', checkTimes: 15 }),
    ]);
    expect(e.checks.every((c) => c.producerGroup === GROUP)).toBe(true);
    expect(await e.delivered()).toEqual([]);
    await e.close();
  });

  test('checks go round robin over the online producers of the group', async () => {
    const e = await env();
    const asked: string[] = [];
    for (const id of ['p-1', 'p-2']) {
      e.broker.heartbeat({ clientId: id, producerGroups: [GROUP], consumers: [] });
      e.broker.registerChannel(id, { checkTransaction: () => asked.push(id) });
    }
    await e.half('a');
    await e.advance(TIMEOUT_MS + 3 * INTERVAL_MS);
    expect(asked).toHaveLength(4);
    expect(new Set(asked)).toEqual(new Set(['p-1', 'p-2']));
    expect(asked[0]).not.toBe(asked[1]);
    await e.close();
  });

  test('a producer whose channel throws does not stop the checks; event listeners that throw are ignored', async () => {
    const e = await env({
      broker: {
        onEvent: () => {
          throw new Error('listener bug');
        },
      },
    });
    let calls = 0;
    e.broker.heartbeat({ clientId: 'p-1', producerGroups: [GROUP], consumers: [] });
    e.broker.registerChannel('p-1', {
      checkTransaction: () => {
        calls++;
        throw new Error('channel broken');
      },
    });
    await e.half('a');
    await e.advance(TIMEOUT_MS + INTERVAL_MS);
    expect(calls).toBe(2);
    await e.close();
  });

  test('many transactions: each checked on its own schedule, answers resolve only their own', async () => {
    const e = await env();
    e.producerOnline('producer-1', (check) =>
      check.message.body.toString().startsWith('commit') ? 'COMMIT' : 'ROLLBACK',
    );
    for (let i = 0; i < 10; i++) {
      await e.half(i % 2 === 0 ? `commit-${i}` : `rollback-${i}`);
      await e.advance(100);
    }
    await e.advance(TIMEOUT_MS - 1000); // 6 s after the first send
    expect(e.checks).toHaveLength(1);
    await e.advance(1000);
    expect(e.checks).toHaveLength(10);
    await settle();
    expect(bodies(await e.delivered())).toEqual(['commit-0', 'commit-2', 'commit-4', 'commit-6', 'commit-8']);
    await e.close();
  });
});

describe('bounded state', () => {
  test('resolved transactions do not pile up in the check schedule; pending ones keep theirs', async () => {
    const e = await env();
    e.producerOnline('producer-1', () => 'UNKNOWN');
    const open = await e.half('open');
    for (let i = 0; i < 1200; i++) {
      const sent = await e.half(`m${i}`);
      await e.end(sent.transactionId!, i % 2 === 0 ? 'COMMIT' : 'ROLLBACK');
    }
    const service = (
      e.broker as unknown as { transactions: { heap: { size: number }; pendingCount: number } }
    ).transactions;
    expect(service.pendingCount).toBe(1);
    expect(service.heap.size).toBeLessThanOrEqual(2 + 1024 + 1);
    await e.advance(TIMEOUT_MS + INTERVAL_MS);
    expect(e.checks.map((c) => [c.transactionId, c.checkTimes])).toEqual([
      [open.transactionId, 1],
      [open.transactionId, 2],
    ]);
    expect(await e.delivered()).toHaveLength(600);
    await e.close();
  });
});

describe('store failures', () => {
  /** A store whose appends to `topic` fail while `failing.on` is set. */
  const failingAppends =
    (topic: string, failing: { on: boolean }) =>
    (store: MessageStore): MessageStore =>
      new Proxy(store, {
        get(target, prop) {
          if (prop === 'appendBatch') {
            return (requests: AppendRequest[]) =>
              failing.on && requests.some((r) => r.topic === topic)
                ? Promise.reject(new RocketError('STORE_IO_ERROR', 'injected write failure'))
                : target.appendBatch(requests);
          }
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === 'function'
            ? (value as (...args: unknown[]) => unknown).bind(target)
            : value;
        },
      });

  test('a check round the store refuses is tried again a second later, and counted once', async () => {
    const failing = { on: false };
    const e = await env({ wrapStore: failingAppends(TRANSACTION_OP_TOPIC, failing) });
    e.producerOnline('producer-1', () => 'COMMIT');
    await e.half('a');
    failing.on = true;
    await e.advance(TIMEOUT_MS);
    expect(e.checks).toEqual([]);
    expect(ofType(e.events, 'transaction.error')).toEqual([expect.objectContaining({ operation: 'check' })]);
    // the first retry fails too, the next one goes through
    await e.advance(1000);
    expect(e.checks).toEqual([]);
    failing.on = false;
    await e.advance(1000);
    expect(e.checks.map((c) => c.checkTimes)).toEqual([1]);
    await settle();
    expect(bodies(await e.delivered())).toEqual(['a']);
    await e.close();
  });

  test('a commit the store refuses rejects and leaves the transaction open; a later commit delivers it once', async () => {
    const failing = { on: true };
    const e = await env({ wrapStore: failingAppends(TRANSACTION_OP_TOPIC, failing) });
    const sent = await e.half('a');
    await expect(e.end(sent.transactionId!, 'COMMIT')).rejects.toMatchObject({ code: 'STORE_IO_ERROR' });
    expect(await e.delivered()).toEqual([]);
    failing.on = false;
    await e.end(sent.transactionId!, 'COMMIT');
    await e.end(sent.transactionId!, 'COMMIT');
    expect(bodies(await e.delivered())).toEqual(['a']);
    await e.close();
  });
});

describe('restart', () => {
  test('resolutions survive; unresolved transactions are found again and their checks resume with the count', async () => {
    const e = await env({ restartable: true });
    const start = e.clock.now();
    const committed = await e.half('committed');
    const rolledBack = await e.half('rolled-back');
    const checked = await e.half('checked');
    await e.end(committed.transactionId!, 'COMMIT');
    await e.end(rolledBack.transactionId!, 'ROLLBACK');
    e.producerOnline('producer-1', () => 'UNKNOWN');
    await e.advance(TIMEOUT_MS + INTERVAL_MS); // two checks of `checked`
    expect(e.checks.map((c) => c.checkTimes)).toEqual([1, 2]);
    const fresh = await e.half('fresh');
    const freshAt = e.clock.now();

    await e.restart();
    expect(bodies(await e.delivered())).toEqual(['committed']);
    const answers: Array<[string, number, number]> = [];
    e.producerOnline('producer-1', (check) => {
      answers.push([check.message.body.toString(), check.checkTimes, e.clock.now()]);
      return check.message.body.toString() === 'checked' ? 'COMMIT' : 'UNKNOWN';
    });
    await e.advance(TIMEOUT_MS);
    // `fresh` is due 6 s after it was stored; `checked` 30 s after its second check
    expect(answers).toEqual([['fresh', 1, freshAt + TIMEOUT_MS]]);
    await e.advance(INTERVAL_MS - TIMEOUT_MS);
    expect(answers).toContainEqual(['checked', 3, start + TIMEOUT_MS + 2 * INTERVAL_MS]);
    await settle();
    expect(bodies(await e.delivered())).toEqual(['checked', 'committed']);
    // resolutions from before the restart are no-ops now
    await e.end(committed.transactionId!, 'COMMIT');
    await e.end(rolledBack.transactionId!, 'COMMIT');
    await e.end(checked.transactionId!, 'COMMIT');
    expect(bodies(await e.delivered())).toEqual(['checked', 'committed']);

    // again, after the watermark moved past everything resolved
    await e.end(fresh.transactionId!, 'COMMIT');
    await e.restart();
    e.producerOnline('producer-1', () => 'UNKNOWN');
    expect(bodies(await e.delivered())).toEqual(['checked', 'committed', 'fresh']);
    const checksBefore = ofType(e.events, 'transaction.check').length;
    await e.advance(20 * INTERVAL_MS);
    expect(ofType(e.events, 'transaction.check')).toHaveLength(checksBefore);
    await e.close();
  });

  test('the watermark file is only a shortcut: without it the op records still decide', async () => {
    const e = await env({ restartable: true });
    const a = await e.half('a');
    const b = await e.half('b');
    await e.end(a.transactionId!, 'COMMIT');
    await e.advance(10_000); // the broker saves its progress
    const fileSystem = e.fileSystem;
    const progress = JSON.parse(
      fileSystem.readFile('/config/transaction.json')!.toString(),
    ) as TransactionProgress;
    expect(progress.halfWatermark).toBe(1); // a resolved, b not
    await e.broker.close();
    fileSystem.remove('/config/transaction.json');
    await e.store.close();
    e.store = await FileStore.open({ dir: '/store', fileSystem, clock: e.clock, retentionIntervalMs: 0 });
    e.broker = await Broker.start({ store: e.store, clock: e.clock, configDir: '/config', fileSystem });
    e.producerOnline('producer-1', () => 'COMMIT');
    await e.advance(INTERVAL_MS);
    expect(e.checks.map((c) => c.transactionId)).toEqual([b.transactionId]);
    await settle();
    expect(bodies(await e.delivered())).toEqual(['a', 'b']);
    await e.close();
  });

  test('a transaction checked the maximum number of times before a restart is rolled back after it, unchecked', async () => {
    const e = await env({ restartable: true, broker: { transactionCheckMax: 2 } });
    e.producerOnline('producer-1', () => 'UNKNOWN');
    const sent = await e.half('a');
    await e.advance(TIMEOUT_MS + INTERVAL_MS);
    expect(e.checks).toHaveLength(2);
    await e.restart();
    e.producerOnline('producer-1', () => 'UNKNOWN');
    await e.advance(INTERVAL_MS);
    expect(e.checks).toHaveLength(2);
    expect(ofType(e.events, 'transaction.discarded')).toEqual([
      expect.objectContaining({ transactionId: sent.transactionId, checkTimes: 2, reason: 'checkMax' }),
    ]);
    expect(await e.delivered()).toEqual([]);
    await e.close();
  });

  test('a crash that kept the committed copy but lost its op record does not deliver it twice', async () => {
    const e = await env({ restartable: true });
    const sent = await e.half('a');
    const half = e.store.getById(sent.msgId)!;
    // what a torn commit leaves: the real copy, no op record
    await e.store.append({
      topic: TOPIC,
      queueId: sent.queueId,
      body: half.body,
      properties: { [SystemProperty.TRANSACTION_ID]: sent.msgId },
      bornTimestampMs: half.bornTimestampMs,
      flags: TransactionFlag.COMMIT,
      preparedTransactionOffset: half.commitLogOffset,
    });
    await e.restart();
    e.producerOnline('producer-1', () => 'COMMIT');
    await e.advance(TIMEOUT_MS);
    expect(e.checks).toHaveLength(1);
    await settle();
    expect(bodies(await e.delivered())).toEqual(['a']);
    await e.advance(20 * INTERVAL_MS);
    expect(e.checks).toHaveLength(1);
    await e.close();
  });
});

describe('bad requests', () => {
  test('unknown, malformed and non-transaction ids: MESSAGE_NOT_FOUND; another group: INVALID_ARGUMENT', async () => {
    const e = await env();
    const sent = await e.half('a');
    const plain = await e.broker.send({
      producerGroup: GROUP,
      topic: TOPIC,
      messages: [msg('plain')],
      bornTimestampMs: 1,
    });
    const otherStore = `${'0'.repeat(16)}${'0'.repeat(16)}`;
    for (const id of [
      otherStore,
      'nope',
      plain.messages[0]!.msgId,
      `${sent.msgId.slice(0, 16)}${'F'.repeat(8)}${'0'.repeat(8)}`,
    ]) {
      await expect(e.end(id, 'COMMIT')).rejects.toMatchObject({
        code: 'MESSAGE_NOT_FOUND',
        retriable: false,
      });
    }
    await expect(
      e.broker.endTransaction({
        producerGroup: 'someone-else',
        transactionId: sent.transactionId!,
        resolution: 'COMMIT',
        fromCheck: false,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(GROUP) });
    await expect(
      e.broker.endTransaction({
        producerGroup: 'bad group',
        transactionId: sent.transactionId!,
        resolution: 'COMMIT',
        fromCheck: false,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(e.end(sent.transactionId!, 'MAYBE' as TransactionResolution)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    // none of that resolved it
    await e.end(sent.transactionId!, 'COMMIT');
    expect(bodies(await e.delivered())).toEqual(['a', 'plain']);
    await e.close();
    await expect(e.end(sent.transactionId!, 'COMMIT')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  test('a transactional send carries one message and no delivery time', async () => {
    const e = await env();
    await expect(
      e.broker.send({
        producerGroup: GROUP,
        topic: TOPIC,
        messages: [msg('a'), msg('b')],
        bornTimestampMs: 1,
        transactional: true,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('exactly one') });
    await expect(e.half('a', { deliveryTimeMs: e.clock.now() + 1000 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('delivery time'),
    });
    await expect(e.half('a', { properties: { __REAL_TOPIC: 'x' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(e.store.maxOffset(TRANSACTION_HALF_TOPIC, 0)).toBe(0);
    await e.close();
  });

  test('past maxPendingTransactions unresolved, transactional sends fail with a retriable BROKER_BUSY', async () => {
    const e = await env({ broker: { maxPendingTransactions: 2 } });
    const a = await e.half('a');
    await e.half('b');
    await expect(e.half('c')).rejects.toMatchObject({ code: 'BROKER_BUSY', retriable: true });
    // plain sends are not affected
    await e.broker.send({ producerGroup: GROUP, topic: TOPIC, messages: [msg('plain')], bornTimestampMs: 1 });
    await e.end(a.transactionId!, 'ROLLBACK');
    await e.half('c');
    await e.close();
  });

  test('maxPendingTransactions is validated', async () => {
    const store = await MemoryStore.create({ retentionIntervalMs: 0 });
    await expect(Broker.start({ store, maxPendingTransactions: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await store.close();
  });
});
