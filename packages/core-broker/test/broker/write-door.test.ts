/**
 * The broker's one write door (broker/queue-writer.ts): every path that stores a record — a plain
 * and a batch send, a delayed send and its delivery when due, a `sendBack` (retry and dead letter),
 * a transaction commit, a popped message's dead letter — meets a full disk with the same error a
 * plain send gets: `BROKER_BUSY`, retriable, the store's reason in the message, its `DISK_FULL` as
 * `cause`. Writes the broker makes on its own report that error as a `write.failed` event and are
 * tried again until the disk has room.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Broker } from '../../src/broker/broker';
import type { BrokerEvent, BrokerOptions } from '../../src/broker/broker-options';
import { QueueWriter, storeBackPressure } from '../../src/broker/queue-writer';
import { LongPoll, queueKey } from '../../src/broker/long-poll';
import { RocketError } from '../../src/common/errors';
import type { MessageInput, MessageView } from '../../src/message/message';
import { SystemProperty } from '../../src/message/system-properties';
import { MemoryFileSystem } from '../../src/store/file-system';
import { FileStore } from '../../src/store/file-store';
import { DEFAULT_DISK_FULL_RATIO } from '../../src/store/store-options';
import type { AppendRequest, MessageStore } from '../../src/store/message-store';
import { ManualClock } from '../support/manual-clock';
import { settle } from '../support/settle';

const TOPIC = 'orders';
const GROUP = 'billing';
const STORE_DIR = '/store';
const TOTAL_BYTES = 10_000_000;

interface Env {
  clock: ManualClock;
  broker: Broker;
  store: FileStore;
  events: BrokerEvent[];
  /** Disk use past the store's `diskFullRatio`, seen at once (a retention run samples it). */
  fillDisk(): void;
  freeDisk(): void;
  send(body: string, extra?: Partial<MessageInput>): Promise<string>;
  /** Every message of a topic's queue 0. */
  read(topic: string): MessageView[];
  close(): Promise<void>;
}

async function env(options: Partial<BrokerOptions> = {}): Promise<Env> {
  const clock = new ManualClock();
  const fileSystem = new MemoryFileSystem();
  fileSystem.totalBytes = TOTAL_BYTES;
  const store = await FileStore.open({ dir: STORE_DIR, fileSystem, clock, retentionIntervalMs: 0 });
  const events: BrokerEvent[] = [];
  const broker = await Broker.start({ store, clock, onEvent: (event) => events.push(event), ...options });
  broker.createTopic({ topic: TOPIC, queueCount: 1 });
  return {
    clock,
    broker,
    store,
    events,
    fillDisk() {
      fileSystem.otherUsedBytes = 0.95 * TOTAL_BYTES;
      store.runRetention();
    },
    freeDisk() {
      fileSystem.otherUsedBytes = 0;
      store.runRetention();
    },
    async send(body, extra = {}) {
      const sent = await broker.send({
        producerGroup: 'p',
        topic: TOPIC,
        messages: [{ topic: TOPIC, body: Buffer.from(body), ...extra }],
        bornTimestampMs: clock.now(),
      });
      return sent.messages[0]!.msgId;
    },
    read(topic) {
      return store.getMessages(topic, 0, 0, { maxCount: 100 }).messages;
    },
    async close() {
      await broker.close();
      await store.close();
    },
  };
}

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );

/** The one error contract of a full disk. */
function expectDiskFullBusy(error: unknown): RocketError {
  expect(error).toBeInstanceOf(RocketError);
  expect(error).toMatchObject({ code: 'BROKER_BUSY', retriable: true, cause: { code: 'DISK_FULL' } });
  const message = (error as RocketError).message;
  expect(message).toContain('broker broker-a is busy: disk full');
  expect(message).toContain(STORE_DIR); // which disk
  expect(message).toContain(`diskFullRatio=${DEFAULT_DISK_FULL_RATIO}`); // which limit
  return error as RocketError;
}

describe('a full disk is BROKER_BUSY on every write path', () => {
  test('a delayed send, a batch, a sendBack (retry and dead letter) and a transaction commit reject exactly like a plain send', async () => {
    const e = await env();
    const failed = await e.send('failed');
    const half = await e.broker.send({
      producerGroup: 'tx',
      topic: TOPIC,
      messages: [{ topic: TOPIC, body: Buffer.from('tx') }],
      bornTimestampMs: e.clock.now(),
      transactional: true,
    });
    e.fillDisk();

    const plain = expectDiskFullBusy(await rejection(e.send('plain')));
    const others = {
      delayed: await rejection(e.send('delayed', { deliveryTimeMs: e.clock.now() + 5000 })),
      batch: await rejection(
        e.broker.send({
          producerGroup: 'p',
          topic: TOPIC,
          messages: [
            { topic: TOPIC, body: Buffer.from('b1') },
            { topic: TOPIC, body: Buffer.from('b2') },
          ],
          bornTimestampMs: 1,
        }),
      ),
      retry: await rejection(
        e.broker.sendBack({ consumerGroup: GROUP, msgId: failed, maxReconsumeTimes: 16 }),
      ),
      deadLetter: await rejection(
        e.broker.sendBack({ consumerGroup: GROUP, msgId: failed, maxReconsumeTimes: 0 }),
      ),
      commit: await rejection(
        e.broker.endTransaction({
          producerGroup: 'tx',
          transactionId: half.messages[0]!.transactionId!,
          resolution: 'COMMIT',
          fromCheck: false,
        }),
      ),
    };
    for (const [path, error] of Object.entries(others)) {
      expect({ path, message: expectDiskFullBusy(error).message }).toEqual({ path, message: plain.message });
    }

    // nothing was half written: once there is room, each goes through
    e.freeDisk();
    await e.send('plain');
    expect(await e.broker.sendBack({ consumerGroup: GROUP, msgId: failed, maxReconsumeTimes: 16 })).toEqual({
      deadLettered: false,
    });
    await e.broker.endTransaction({
      producerGroup: 'tx',
      transactionId: half.messages[0]!.transactionId!,
      resolution: 'COMMIT',
      fromCheck: false,
    });
    expect(e.read(TOPIC).map((m) => m.body.toString())).toEqual(['failed', 'plain', 'tx']);
    await e.close();
  });

  test('a delayed message due while the disk is full is reported and delivered once there is room', async () => {
    const e = await env();
    await e.send('later', { deliveryTimeMs: e.clock.now() + 5000 });
    e.fillDisk();
    const plainError = expectDiskFullBusy(await rejection(e.send('plain')));
    e.clock.advance(5000);
    await settle();
    const failures = e.events.filter((event) => event.type === 'write.failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ source: 'delivery', retryInMs: 1000 });
    const error = expectDiskFullBusy((failures[0] as { error: unknown }).error);
    expect(error.message).toBe(plainError.message);
    expect(e.read(TOPIC)).toEqual([]);
    expect(e.broker.scheduledCount).toBe(1); // still waiting, not lost

    e.freeDisk();
    e.clock.advance(1000);
    await settle();
    expect(e.read(TOPIC).map((m) => m.body.toString())).toEqual(['later']);
    expect(e.broker.scheduledCount).toBe(0);
    await e.close();
  });

  test('a popped message out of attempts while the disk is full: its dead letter fails like a plain send, then is written once there is room', async () => {
    const e = await env({ maxReconsumeTimes: 0 });
    await e.send('poison');
    const [popped] = await e.broker.pop({
      consumerGroup: GROUP,
      topic: TOPIC,
      maxCount: 1,
      invisibleTimeMs: 10_000,
      pollTimeoutMs: 0,
    });
    expect(popped).toBeDefined();
    e.fillDisk();
    const plain = expectDiskFullBusy(await rejection(e.send('plain')));
    e.clock.advance(10_000); // the invisible time lapses: out of attempts, dead-lettered
    await settle();
    const failures = e.events.filter((event) => event.type === 'write.failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ source: 'deadLetter', retryInMs: 1000 });
    expect(expectDiskFullBusy((failures[0] as { error: unknown }).error).message).toBe(plain.message);
    expect(e.read(`%DLQ%${GROUP}`)).toEqual([]);
    expect(e.broker.pendingWork().unackedPops).toBe(1); // still tracked, not lost

    e.freeDisk();
    e.clock.advance(1000);
    await settle();
    expect(e.read(`%DLQ%${GROUP}`).map((m) => m.body.toString())).toEqual(['poison']);
    expect(e.broker.pendingWork().unackedPops).toBe(0);
    await e.close();
  });
});

describe('one dead-letter record', () => {
  test('a dead letter written by sendBack (push/pull path) and by the pop path are the same record', async () => {
    const e = await env({ maxReconsumeTimes: 0 });
    const msgId = await e.send('poison', { tag: 'created', keys: ['order-7'], properties: { region: 'eu' } });
    // push path: the consumer sends the message back; out of attempts, it is dead-lettered
    expect(await e.broker.sendBack({ consumerGroup: 'push-group', msgId })).toEqual({ deadLettered: true });
    // pop path: the invisible time lapses once too often
    await e.broker.pop({
      consumerGroup: 'pop-group',
      topic: TOPIC,
      maxCount: 1,
      invisibleTimeMs: 10_000,
      pollTimeoutMs: 0,
    });
    e.clock.advance(10_000);
    await settle();
    const [pushed] = e.read('%DLQ%push-group');
    const [popped] = e.read('%DLQ%pop-group');
    expect(pushed).toBeDefined();
    expect(popped).toBeDefined();
    const record = (m: MessageView) => ({
      body: m.body.toString(),
      tag: m.tag,
      keys: m.keys,
      properties: m.properties,
      messageGroup: m.messageGroup,
      bornTimestampMs: m.bornTimestampMs,
      bornHost: m.bornHost,
      reconsumeTimes: m.reconsumeTimes,
      flags: m.flags,
      deliveryTimeMs: m.deliveryTimeMs,
      queueId: m.queueId,
    });
    expect(record(popped!)).toEqual(record(pushed!));
    expect(record(pushed!)).toMatchObject({
      body: 'poison',
      tag: 'created',
      keys: ['order-7'],
      reconsumeTimes: 1,
      properties: {
        region: 'eu',
        [SystemProperty.ORIGIN_TOPIC]: TOPIC,
        [SystemProperty.ORIGIN_MSG_ID]: msgId,
      },
    });
    await e.close();
  });
});

describe('QueueWriter', () => {
  const request: AppendRequest = { topic: 't', queueId: 0, body: Buffer.from('x'), bornTimestampMs: 1 };

  test('any DISK_FULL from the store (ratio or out of space) becomes BROKER_BUSY with the reason and the cause; other errors pass unchanged', async () => {
    const clock = new ManualClock();
    const outOfSpace = new RocketError('DISK_FULL', 'no space left on the disk holding /data (ENOSPC)');
    const io = new RocketError('STORE_IO_ERROR', 'fdatasync failed');
    let next: unknown = outOfSpace;
    const store = { appendBatch: () => Promise.reject(next) } as unknown as MessageStore;
    const writer = new QueueWriter({ store, longPoll: new LongPoll(clock, 10), brokerName: 'b1' });
    const busy = await rejection(writer.write([request]));
    expect(busy).toMatchObject({ code: 'BROKER_BUSY', retriable: true, cause: outOfSpace });
    expect((busy as Error).message).toBe(
      'broker b1 is busy: disk full (no space left on the disk holding /data (ENOSPC)); retry later or on another broker',
    );
    next = io;
    expect(await rejection(writer.write([request]))).toBe(io);
    expect(storeBackPressure(io, 'b1')).toBe(io);
  });

  test('wakes waiters of each queue written once, whatever the batch', async () => {
    const clock = new ManualClock();
    const results = [
      { topic: 'a', queueId: 0 },
      { topic: 'a', queueId: 0 },
      { topic: 'b', queueId: 1 },
      { topic: 'a', queueId: 0 },
      { topic: 'b', queueId: 1 },
    ];
    const store = { appendBatch: () => Promise.resolve(results) } as unknown as MessageStore;
    const longPoll = new LongPoll(clock, 10);
    const notified: string[] = [];
    const notify = longPoll.notify.bind(longPoll);
    longPoll.notify = (key: string) => {
      notified.push(key);
      notify(key);
    };
    const writer = new QueueWriter({ store, longPoll, brokerName: 'b1' });
    const woken = longPoll.wait(queueKey('b', 1), 60_000);
    await writer.write([request]);
    await woken; // resolved by the write, not by the timeout (the clock never moved)
    expect(notified.sort()).toEqual([queueKey('a', 0), queueKey('b', 1)]);
  });
});

test('no file of broker/ but queue-writer.ts appends to the store', () => {
  const dir = path.join(__dirname, '../../src/broker');
  const offenders = readdirSync(dir)
    .filter((file) => file.endsWith('.ts') && file !== 'queue-writer.ts')
    .filter((file) => /\.append(Batch)?\(/.test(readFileSync(path.join(dir, file), 'utf8')));
  expect(offenders).toEqual([]);
  // the scan would see a write (it is not vacuous)
  expect(readFileSync(path.join(dir, 'queue-writer.ts'), 'utf8')).toMatch(/\.appendBatch\(/);
});
