/**
 * Issue 15 #12: the broker checks a send's message type against its topic's type, as RocketMQ 5
 * does (`enableTopicMessageTypeCheck`, on by default): a message group on a normal topic, a FIFO
 * topic without a group, a delay or a transaction on a FIFO topic are refused with
 * `INVALID_ARGUMENT` naming the topic type and the fix; with the check off they are taken as before.
 */
import { Broker } from '../../src/broker/broker';
import type { BrokerOptions } from '../../src/broker/broker-options';
import {
  DEFAULT_ENABLE_TOPIC_MESSAGE_TYPE_CHECK,
  resolveBrokerOptions,
} from '../../src/broker/broker-options';
import { messageTypeOf } from '../../src/broker/message-type';
import type { MessageInput } from '../../src/message/message';
import type { SendRequest } from '../../src/message/protocol';
import { MemoryFileSystem } from '../../src/store/file-system';
import { MemoryStore } from '../../src/store/memory-store';
import { ManualClock } from '../support/manual-clock';

const NORMAL = 'orders';
const FIFO = 'order-steps';

async function env(options: Partial<BrokerOptions> = {}) {
  const clock = new ManualClock();
  const store = await MemoryStore.create({ clock, retentionIntervalMs: 0 });
  const broker = await Broker.start({ store, clock, ...options });
  broker.createTopic({ topic: NORMAL, queueCount: 2 });
  broker.createTopic({ topic: FIFO, queueCount: 2, fifo: true });
  const send = (topic: string, extra: Partial<MessageInput> = {}, request: Partial<SendRequest> = {}) =>
    broker.send({
      producerGroup: 'p',
      topic,
      messages: [{ topic, body: Buffer.from('x'), ...extra }],
      bornTimestampMs: clock.now(),
      ...request,
    });
  return {
    clock,
    broker,
    send,
    /** Messages stored in the topic's queues (delayed and half messages wait elsewhere). */
    stored: (topic: string) => [0, 1].reduce((n, queueId) => n + store.maxOffset(topic, queueId), 0),
    async close() {
      await broker.close();
      await store.close();
    },
  };
}

const refused = (topicType: string, messageType: string, fix: RegExp) =>
  expect.objectContaining({
    code: 'INVALID_ARGUMENT',
    retriable: false,
    message: expect.stringMatching(
      new RegExp(`is a ${topicType} topic and does not take ${messageType} messages: ${fix.source}`),
    ),
  });

describe('message type against topic type (issue 15 #12)', () => {
  test('the check is on by default, as RocketMQ 5 proxy enableTopicMessageTypeCheck', () => {
    expect(DEFAULT_ENABLE_TOPIC_MESSAGE_TYPE_CHECK).toBe(true);
    const store = {} as BrokerOptions['store'];
    expect(resolveBrokerOptions({ store }, new MemoryFileSystem()).enableTopicMessageTypeCheck).toBe(true);
  });

  test('a message group on a normal topic is refused, naming the FIFO topic it needs', async () => {
    const e = await env();
    await expect(e.send(NORMAL, { messageGroup: 'order-7' })).rejects.toEqual(
      refused('NORMAL', 'FIFO', /.*messageGroup.*FIFO topic \(create one with fifo: true/),
    );
    expect(e.stored(NORMAL)).toBe(0);
    await e.close();
  });

  test('a FIFO topic refuses a message without a group, a delayed one, and a transactional one', async () => {
    const e = await env();
    await expect(e.send(FIFO)).rejects.toEqual(
      refused('FIFO', 'NORMAL', /every message needs a messageGroup/),
    );
    await expect(
      e.send(FIFO, { messageGroup: 'order-7', deliveryTimeMs: e.clock.now() + 5000 }),
    ).rejects.toEqual(refused('FIFO', 'DELAY', /.*without deliveryTimeMs\/delayMs, or to a normal topic/));
    await expect(e.send(FIFO, { messageGroup: 'order-7' }, { transactional: true })).rejects.toEqual(
      refused('FIFO', 'TRANSACTION', /send transactional messages to a normal topic/),
    );
    expect(e.stored(FIFO)).toBe(0);
    expect(e.broker.pendingWork()).toMatchObject({ scheduledMessages: 0, pendingTransactions: 0 });
    expect(await e.send(FIFO, { messageGroup: 'order-7' })).toMatchObject({ topic: FIFO });
    await e.close();
  });

  test('one mismatched message refuses the whole batch', async () => {
    const e = await env();
    await expect(
      e.send(
        FIFO,
        { messageGroup: 'g' },
        {
          messages: [
            { topic: FIFO, body: Buffer.from('a'), messageGroup: 'g' },
            { topic: FIFO, body: Buffer.from('b') },
          ],
        },
      ),
    ).rejects.toEqual(refused('FIFO', 'NORMAL', /every message needs a messageGroup/));
    expect(e.stored(FIFO)).toBe(0);
    await e.close();
  });

  test('what each topic type takes is still taken', async () => {
    const e = await env();
    await e.send(NORMAL);
    await e.send(NORMAL, { deliveryTimeMs: e.clock.now() + 5000 }); // DELAY
    await e.send(NORMAL, { messageGroup: 'g', deliveryTimeMs: e.clock.now() + 5000 }); // DELAY wins, as RocketMQ
    await e.send(NORMAL, {}, { transactional: true });
    await e.send(NORMAL, { messageGroup: 'g' }, { transactional: true }); // TRANSACTION wins
    await e.send(FIFO, { messageGroup: 'g' });
    expect(e.stored(FIFO)).toBe(1);
    await e.close();
  });

  test('with enableTopicMessageTypeCheck off, every mismatch is taken as before', async () => {
    const e = await env({ enableTopicMessageTypeCheck: false });
    await e.send(NORMAL, { messageGroup: 'order-7' });
    await e.send(FIFO);
    await e.send(FIFO, { messageGroup: 'g', deliveryTimeMs: e.clock.now() + 5000 });
    await e.send(FIFO, { messageGroup: 'g' }, { transactional: true });
    expect(e.stored(NORMAL)).toBe(1);
    expect(e.stored(FIFO)).toBe(1);
    expect(e.broker.pendingWork()).toMatchObject({ scheduledMessages: 1, pendingTransactions: 1 });
    await e.close();
  });

  test('message type precedence follows RocketMQ: transaction, then delay, then group', () => {
    expect(messageTypeOf({ messageGroup: 'g', deliveryTimeMs: 5 }, true)).toBe('TRANSACTION');
    expect(messageTypeOf({ messageGroup: 'g', deliveryTimeMs: 5 }, false)).toBe('DELAY');
    expect(messageTypeOf({ messageGroup: 'g' }, false)).toBe('FIFO');
    expect(messageTypeOf({}, false)).toBe('NORMAL');
    expect(messageTypeOf({ deliveryTimeMs: 0 }, false)).toBe('NORMAL'); // 0: no delivery time (wire default)
  });
});
