import type { MessageView } from '../../src/message/message';
import { FrameCache, type FrameParts } from '../../src/push/frame-cache';

const text = (parts: FrameParts): string => Buffer.concat([parts.head, parts.tail]).toString('utf8');

function message(i: number, body: Buffer = Buffer.from(`body ${i}`)): MessageView {
  return {
    msgId: i.toString(16).toUpperCase().padStart(32, '0'),
    topic: 'T',
    queueId: 0,
    queueOffset: i,
    commitLogOffset: i,
    body,
    tag: i % 2 ? 'odd' : undefined,
    keys: ['k'],
    properties: { p: '"quoted"' },
    messageGroup: undefined,
    deliveryTimeMs: 0,
    bornTimestampMs: 1,
    bornHost: 'h',
    storeTimestampMs: 2,
    storeHost: 'h',
    reconsumeTimes: 0,
    flags: 0,
    preparedTransactionOffset: 0,
    storeSize: 100,
  };
}

test('a frame is valid JSON with the subscription, the position and the message fields', () => {
  const cache = new FrameCache();
  const frame = JSON.parse(text(cache.frame('s"1', '1;abc', message(1))));
  expect(frame).toEqual({
    type: 'message',
    subscription: 's"1',
    position: '1;abc',
    msgId: message(1).msgId,
    topic: 'T',
    tag: 'odd',
    keys: ['k'],
    properties: { p: '"quoted"' },
    encoding: 'utf8',
    body: 'body 1',
    bornTimestampMs: 1,
    storeTimestampMs: 2,
  });
  expect(JSON.parse(text(cache.frame('x', 'p', message(2, Buffer.from([0xff]))))).body).toBe('/w==');
});

test('bounded by entries and by bytes; an oversize message is not kept', () => {
  const byEntries = new FrameCache(1024 * 1024, 10);
  for (let i = 0; i < 100; i++) byEntries.frame('s', 'p', message(i));
  expect(byEntries.size).toBe(10);
  const byBytes = new FrameCache(64 * 1024, 1000);
  for (let i = 0; i < 100; i++) byBytes.frame('s', 'p', message(i, Buffer.alloc(4000, 'a')));
  expect(byBytes.size).toBeLessThanOrEqual(16); // over 4 KB of UTF-8 each, 64 KB in all
  expect(byBytes.size).toBeGreaterThan(0);
  const small = new FrameCache(64 * 1024, 1000);
  small.frame('s', 'p', message(1, Buffer.alloc(20_000, 'a')));
  expect(small.size).toBe(0);
});
