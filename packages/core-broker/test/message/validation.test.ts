import { RocketError } from '../../src/common/errors';
import type { MessageInput } from '../../src/message/message';
import { tagHash, NO_TAG_HASH } from '../../src/message/tag-hash';
import {
  DEFAULT_MAX_BODY_BYTES,
  MAX_PROPERTIES_BYTES,
  isSystemTopic,
  validateGroup,
  validateMessage,
  validateTopic,
  validateUserTopic,
} from '../../src/message/validation';

const ok: MessageInput = { topic: 'orders', body: Buffer.from('x') };

function rejects(message: Partial<MessageInput>, pattern: RegExp): void {
  let caught: unknown;
  try {
    validateMessage({ ...ok, ...message } as MessageInput);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(RocketError);
  expect((caught as RocketError).code).toBe('INVALID_ARGUMENT');
  expect((caught as RocketError).retriable).toBe(false);
  expect((caught as RocketError).message).toMatch(pattern);
}

describe('topic and group names', () => {
  test.each(['orders', 'a', 'A-b_c%d|e', 'x'.repeat(127), `%RETRY%${'g'.repeat(200)}`])(
    'accepts %s',
    (topic) => {
      expect(() => validateTopic(topic)).not.toThrow();
    },
  );
  test.each([
    ['', /non-empty/],
    ['x'.repeat(128), /128 characters; at most 127/],
    ['a b', /character " " at index 1/],
    ['ordérs', /character "é" at index 3/],
    ['a/b', /character "\/"/],
    [`%DLQ%${'g'.repeat(251)}`, /at most 255/],
  ])('rejects %j', (topic, pattern) => {
    expect(() => validateTopic(topic)).toThrow(pattern);
  });
  test('system topics are valid for the store but not for users', () => {
    for (const topic of ['%RETRY%group', '%DLQ%group', 'SCHEDULE_TOPIC_XXXX', 'rmq_sys_anything', 'TBW102']) {
      expect(isSystemTopic(topic)).toBe(true);
      expect(() => validateTopic(topic)).not.toThrow();
      expect(() => validateUserTopic(topic)).toThrow(/reserved/);
    }
    expect(isSystemTopic('orders')).toBe(false);
  });
  test('groups follow the same characters and refuse reserved names', () => {
    expect(() => validateGroup('order-service')).not.toThrow();
    expect(() => validateGroup('DEFAULT_CONSUMER')).toThrow(/reserved/);
    expect(() => validateGroup('CID_RMQ_SYS_X')).toThrow(/reserved/);
    expect(() => validateGroup('a b')).toThrow(/index 1/);
    expect(() => validateGroup('g'.repeat(256))).toThrow(/at most 255/);
  });
});

describe('message validation', () => {
  test('accepts a full message at its limits', () => {
    expect(() =>
      validateMessage({
        topic: 'orders',
        body: Buffer.alloc(DEFAULT_MAX_BODY_BYTES),
        tag: 'created',
        keys: ['order-1', 'customer-9'],
        properties: {
          region: 'eu',
          big: 'v'.repeat(MAX_PROPERTIES_BYTES - 'region'.length - 2 - 'big'.length),
        },
        messageGroup: 'g'.repeat(64),
        deliveryTimeMs: 1_700_000_000_000,
      }),
    ).not.toThrow();
  });
  test('body: empty, oversize, wrong type', () => {
    rejects({ body: Buffer.alloc(0) }, /empty/);
    rejects({ body: Buffer.alloc(DEFAULT_MAX_BODY_BYTES + 1) }, /4194305 bytes; the limit is 4194304/);
    rejects({ body: 'text' as unknown as Buffer }, /Buffer or Uint8Array/);
    expect(() => validateMessage({ ...ok, body: Buffer.alloc(11) }, 10)).toThrow(/limit is 10/);
  });
  test('tag, keys, properties, group, delivery time', () => {
    rejects({ tag: 'a||b' }, /contains '\|'/);
    rejects({ tag: '*' }, /may not be '\*'/);
    rejects({ tag: ' padded' }, /whitespace/);
    rejects({ tag: '' }, /non-empty/);
    rejects({ keys: ['has space'] }, /whitespace/);
    rejects({ keys: ['ok', ''] }, /non-empty/);
    rejects({ keys: 'k' as unknown as string[] }, /array/);
    rejects(
      { properties: { a: 'x'.repeat(MAX_PROPERTIES_BYTES) } },
      /user properties take 16385 bytes; at most 16384/,
    );
    rejects({ properties: { a: 1 as unknown as string } }, /string value/);
    rejects({ properties: { 'bad\u0001key': 'v' } }, /control character/);
    rejects({ messageGroup: 'g'.repeat(65) }, /65 characters; at most 64/);
    rejects({ deliveryTimeMs: -1 }, /deliveryTimeMs/);
    rejects({ deliveryTimeMs: 1.5 }, /deliveryTimeMs/);
  });
});

describe('tag hash', () => {
  test('stable, never the no-tag value, differs for different tags', () => {
    expect(tagHash(undefined)).toBe(NO_TAG_HASH);
    expect(tagHash('')).toBe(NO_TAG_HASH);
    expect(tagHash('created')).toBe(tagHash('created'));
    expect(tagHash('created')).not.toBe(tagHash('paid'));
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const h = tagHash(`tag-${i}`);
      expect(h).not.toBe(NO_TAG_HASH);
      expect(h).toBeLessThan(2 ** 32);
      seen.add(h);
    }
    expect(seen.size).toBeGreaterThan(9_990);
  });
});
