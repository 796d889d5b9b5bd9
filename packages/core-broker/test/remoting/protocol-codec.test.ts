import fc from 'fast-check';
import { ERROR_CODES, type ErrorCode, RocketError, isRocketError } from '../../src/common/errors';
import type { MessageView } from '../../src/message/message';
import { BinaryReader, BinaryWriter } from '../../src/remoting/binary';
import { readMessageView, writeMessageView } from '../../src/remoting/message-codec';
import {
  type Codec,
  ackRequestCodec,
  changeInvisibleRequestCodec,
  clientIdRequestCodec,
  clientIdsResponseCodec,
  commitOffsetRequestCodec,
  emptyCodec,
  endTransactionRequestCodec,
  errorResponseCodec,
  groupQueueRequestCodec,
  groupRequestCodec,
  heartbeatRequestCodec,
  jsonCodec,
  offsetResponseCodec,
  optionalOffsetResponseCodec,
  popRequestCodec,
  popResponseCodec,
  pullRequestCodec,
  pullResponseCodec,
  queueRequestCodec,
  receiptHandleResponseCodec,
  searchOffsetRequestCodec,
  sendBackRequestCodec,
  sendBackResponseCodec,
  sendRequestCodec,
  sendResponseCodec,
  topicRouteCodec,
  topicRouteRequestCodec,
  transactionCheckCodec,
} from '../../src/remoting/protocol-codec';
import { CODECS_BY_CODE as OPERATIONS } from '../../src/remoting/operation-codecs';
import { RequestCode } from '../../src/remoting/request-codes';

// ---- generators ------------------------------------------------------------------------------

const str = fc.string({ unit: 'grapheme', maxLength: 12 });
const u8 = fc.integer({ min: 0, max: 0xff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.maxSafeNat();
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const keys = fc.array(str, { maxLength: 3 });
const properties = fc.dictionary(str, str, { maxKeys: 4, noNullPrototype: true });

const messageInput = fc.record(
  {
    topic: str,
    body: bytes,
    tag: str,
    keys,
    properties,
    messageGroup: str,
    deliveryTimeMs: u64,
  },
  { requiredKeys: ['topic', 'body'] },
);

const messageView: fc.Arbitrary<MessageView> = fc.record({
  msgId: str,
  storeSize: u32,
  topic: str,
  queueId: u32,
  queueOffset: u64,
  commitLogOffset: u64,
  body: bytes,
  tag: fc.option(str, { nil: undefined }),
  keys,
  properties,
  messageGroup: fc.option(str, { nil: undefined }),
  deliveryTimeMs: u64,
  bornTimestampMs: u64,
  bornHost: str,
  storeTimestampMs: u64,
  storeHost: str,
  reconsumeTimes: u32,
  flags: u32,
  preparedTransactionOffset: u64,
});

const subscription = fc.record({
  topic: str,
  kind: fc.constantFrom('TAG' as const, 'SQL92' as const),
  expression: str,
});

/** Every codec with a generator of its values. */
const cases: Array<[Codec<never>, fc.Arbitrary<unknown>]> = (
  [
    [
      sendRequestCodec,
      fc.record(
        {
          producerGroup: str,
          topic: str,
          queueId: u32,
          messages: fc.array(messageInput, { maxLength: 4 }),
          bornTimestampMs: u64,
          bornHost: str,
          transactional: fc.boolean(),
        },
        { requiredKeys: ['producerGroup', 'topic', 'messages', 'bornTimestampMs'] },
      ),
    ],
    [
      sendResponseCodec,
      fc.record({
        brokerName: str,
        topic: str,
        messages: fc.array(
          fc.record(
            { msgId: str, queueId: u32, queueOffset: u64, transactionId: str },
            { requiredKeys: ['msgId', 'queueId', 'queueOffset'] },
          ),
          { maxLength: 4 },
        ),
      }),
    ],
    [
      pullRequestCodec,
      fc.record(
        {
          consumerGroup: str,
          topic: str,
          queueId: u32,
          queueOffset: u64,
          maxCount: u32,
          subscription,
          suspendTimeoutMs: u32,
          commitOffset: u64,
        },
        {
          requiredKeys: ['consumerGroup', 'topic', 'queueId', 'queueOffset', 'maxCount', 'suspendTimeoutMs'],
        },
      ),
    ],
    [
      pullResponseCodec,
      fc.record({
        status: fc.constantFrom(
          'FOUND' as const,
          'NO_NEW_MESSAGE' as const,
          'NO_MATCHED_MESSAGE' as const,
          'OFFSET_ILLEGAL' as const,
        ),
        messages: fc.array(messageView, { maxLength: 3 }),
        nextOffset: u64,
        minOffset: u64,
        maxOffset: u64,
      }),
    ],
    [
      heartbeatRequestCodec,
      fc.record({
        clientId: str,
        producerGroups: fc.array(str, { maxLength: 3 }),
        consumers: fc.array(
          fc.record({
            group: str,
            messageModel: fc.constantFrom('CLUSTERING' as const, 'BROADCASTING' as const),
            consumeType: fc.constantFrom('PUSH' as const, 'PULL' as const, 'SIMPLE' as const),
            subscriptions: fc.array(subscription, { maxLength: 3 }),
          }),
          { maxLength: 3 },
        ),
      }),
    ],
    [
      sendBackRequestCodec,
      fc.record(
        { consumerGroup: str, msgId: str, delayMs: u64, maxReconsumeTimes: u32 },
        { requiredKeys: ['consumerGroup', 'msgId'] },
      ),
    ],
    [sendBackResponseCodec, fc.record({ deadLettered: fc.boolean() })],
    [
      endTransactionRequestCodec,
      fc.record({
        producerGroup: str,
        transactionId: str,
        resolution: fc.constantFrom('COMMIT' as const, 'ROLLBACK' as const, 'UNKNOWN' as const),
        fromCheck: fc.boolean(),
      }),
    ],
    [
      transactionCheckCodec,
      fc.record({
        brokerName: str,
        producerGroup: str,
        transactionId: str,
        message: messageView,
        checkTimes: u32,
      }),
    ],
    [
      popRequestCodec,
      fc.record(
        {
          consumerGroup: str,
          topic: str,
          subscription,
          maxCount: u32,
          invisibleTimeMs: u64,
          pollTimeoutMs: u64,
        },
        { requiredKeys: ['consumerGroup', 'topic', 'maxCount', 'invisibleTimeMs', 'pollTimeoutMs'] },
      ),
    ],
    [
      popResponseCodec,
      fc.array(fc.record({ message: messageView, receiptHandle: str, deliveryAttempt: u32 }), {
        maxLength: 3,
      }),
    ],
    [ackRequestCodec, fc.record({ consumerGroup: str, topic: str, receiptHandle: str })],
    [
      changeInvisibleRequestCodec,
      fc.record({ consumerGroup: str, topic: str, receiptHandle: str, invisibleTimeMs: u64 }),
    ],
    [receiptHandleResponseCodec, fc.record({ receiptHandle: str })],
    [topicRouteRequestCodec, fc.record({ topic: str })],
    [
      topicRouteCodec,
      fc.record({
        topic: str,
        brokers: fc.array(
          fc.record({
            brokerName: str,
            readQueueCount: u32,
            writeQueueCount: u32,
            permission: u8,
            fifo: fc.boolean(),
          }),
          { maxLength: 3 },
        ),
      }),
    ],
    [groupQueueRequestCodec, fc.record({ group: str, topic: str, queueId: u32 })],
    [commitOffsetRequestCodec, fc.record({ group: str, topic: str, queueId: u32, offset: u64 })],
    [queueRequestCodec, fc.record({ topic: str, queueId: u32 })],
    [searchOffsetRequestCodec, fc.record({ topic: str, queueId: u32, timestampMs: u64 })],
    [offsetResponseCodec, fc.record({ offset: u64 })],
    [optionalOffsetResponseCodec, fc.record({ offset: u64 }, { requiredKeys: [] })],
    [groupRequestCodec, fc.record({ group: str })],
    [clientIdRequestCodec, fc.record({ clientId: str })],
    [clientIdsResponseCodec, fc.array(str, { maxLength: 5 })],
    [emptyCodec, fc.constant(undefined)],
    [jsonCodec<unknown>('adminJson'), fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown)],
  ] as Array<[Codec<unknown>, fc.Arbitrary<unknown>]>
).map(([codec, arb]) => [codec as Codec<never>, arb]);

const errorArb = fc
  .tuple(
    fc.constantFrom(...(Object.keys(ERROR_CODES) as ErrorCode[])),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.boolean(),
  )
  .map(([code, message, retriable]) => new RocketError(code, message, { retriable }));

function onlyProtocolErrors(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    if (!isRocketError(error, 'PROTOCOL_ERROR')) throw error;
  }
}

// ---- tests -----------------------------------------------------------------------------------

describe('golden bytes', () => {
  test('SendRequest header and body are laid out as the table in protocol-codec.ts says', () => {
    const { header, body } = sendRequestCodec.encode({
      producerGroup: 'P',
      topic: 'T',
      queueId: 3,
      bornTimestampMs: 0x0102030405,
      bornHost: 'h',
      transactional: false,
      messages: [{ topic: 'T', body: Buffer.from('hi'), tag: 'a', keys: ['k'], properties: { p: 'v' } }],
    });
    expect(header.toString('hex')).toBe(
      '07' + // present: queueId | bornHost | transactional (value bit 8 clear: false)
        '0504030201000000' + // bornTimestampMs, u64 LE
        '03000000' + // queueId
        '0100' +
        '50' + // producerGroup "P"
        '0100' +
        '54' + // topic "T"
        '0100' +
        '68', // bornHost "h"
    );
    expect(body.toString('hex')).toBe(
      '01000000' + // one message
        '07' + // present: tag | keys | properties
        '0100' +
        '54' + // topic "T"
        '0100' +
        '61' + // tag "a"
        '0100' +
        '0100' +
        '6b' + // one key "k"
        '0100' +
        '0100' +
        '70' +
        '0100' +
        '76' + // one property p=v
        '02000000' +
        '6869', // body "hi"
    );
  });

  test('MessageView fixed part is 65 bytes, as its table says', () => {
    const w = new BinaryWriter();
    writeMessageView(w, {
      msgId: '',
      storeSize: 1,
      topic: '',
      queueId: 2,
      queueOffset: 3,
      commitLogOffset: 4,
      body: Buffer.alloc(0),
      tag: undefined,
      keys: [],
      properties: {},
      messageGroup: undefined,
      deliveryTimeMs: 5,
      bornTimestampMs: 6,
      bornHost: '',
      storeTimestampMs: 7,
      storeHost: '',
      reconsumeTimes: 8,
      flags: 9,
      preparedTransactionOffset: 10,
    });
    const b = w.finish();
    expect(b.length).toBe(65 + 2 + 2 + 2 + 2 + 2 + 2 + 4);
    expect([b[0], b.readUInt32LE(1), b.readUInt32LE(5), b.readUInt32LE(9), b.readUInt32LE(13)]).toEqual([
      0, 2, 1, 8, 9,
    ]);
    expect([17, 25, 33, 41, 49, 57].map((at) => b.readUInt32LE(at))).toEqual([3, 4, 6, 7, 5, 10]);
  });
});

describe('round trips', () => {
  test.each(cases.map(([codec, arb]) => [codec.name, codec, arb] as const))('%s', (_name, codec, arb) => {
    fc.assert(
      fc.property(arb, (value) => {
        const payload = codec.encode(value as never);
        expect(codec.decode(payload)).toEqual(value);
        // also from copies, so nothing depends on the writer's spare capacity
        expect(
          codec.decode({ header: Buffer.from(payload.header), body: Buffer.from(payload.body) }),
        ).toEqual(value);
      }),
      { numRuns: 100 },
    );
  });

  test('MessageView alone', () => {
    fc.assert(
      fc.property(messageView, (m) => {
        const w = new BinaryWriter(1);
        writeMessageView(w, m);
        const r = new BinaryReader(w.finish(), 'view');
        expect(readMessageView(r)).toEqual(m);
        r.end();
      }),
    );
  });

  test('error response rebuilds the same typed error', () => {
    fc.assert(
      fc.property(errorArb, (error) => {
        const back = errorResponseCodec.decode(errorResponseCodec.encode(error));
        expect(back).toBeInstanceOf(RocketError);
        expect([back.code, back.message, back.retriable]).toEqual([
          error.code,
          error.message,
          error.retriable,
        ]);
      }),
    );
  });

  test('an error code this side does not know becomes PROTOCOL_ERROR naming it', () => {
    const w = new BinaryWriter().bool(true).str('FROM_THE_FUTURE').longStr('later');
    const back = errorResponseCodec.decode({ header: w.finish(), body: Buffer.alloc(0) });
    expect(back.code).toBe('PROTOCOL_ERROR');
    expect(back.message).toContain('FROM_THE_FUTURE');
    expect(back.retriable).toBe(true);
  });

  test('every Transport operation has a request code and codecs', () => {
    for (const code of [
      RequestCode.SEND_MESSAGE,
      RequestCode.PULL_MESSAGE,
      RequestCode.QUERY_CONSUMER_OFFSET,
      RequestCode.UPDATE_CONSUMER_OFFSET,
      RequestCode.GET_MIN_OFFSET,
      RequestCode.GET_MAX_OFFSET,
      RequestCode.SEARCH_OFFSET_BY_TIMESTAMP,
      RequestCode.HEART_BEAT,
      RequestCode.GET_CONSUMER_LIST_BY_GROUP,
      RequestCode.CONSUMER_SEND_MSG_BACK,
      RequestCode.END_TRANSACTION,
      RequestCode.POP_MESSAGE,
      RequestCode.ACK_MESSAGE,
      RequestCode.CHANGE_MESSAGE_INVISIBLE_TIME,
      RequestCode.GET_ROUTEINFO_BY_TOPIC,
      RequestCode.UNREGISTER_CLIENT,
      RequestCode.CHECK_TRANSACTION_STATE,
      RequestCode.NOTIFY_CONSUMER_IDS_CHANGED,
    ]) {
      expect(OPERATIONS[code]).toBeDefined();
    }
  });
});

describe('encoding bad values', () => {
  test('values that do not fit their field are INVALID_ARGUMENT at the sender', () => {
    const base = { consumerGroup: 'g', topic: 't', receiptHandle: 'r' };
    expect(() => changeInvisibleRequestCodec.encode({ ...base, invisibleTimeMs: -1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => ackRequestCodec.encode({ ...base, topic: 'x'.repeat(0x10000) })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => queueRequestCodec.encode({ topic: 't', queueId: 2 ** 32 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('hostile payloads', () => {
  test.each(cases.map(([codec, arb]) => [codec.name, codec, arb] as const))(
    '%s: truncated, extended and mutated payloads give a value or PROTOCOL_ERROR only',
    (_name, codec, arb) => {
      fc.assert(
        fc.property(
          arb,
          fc.nat(),
          fc.array(fc.tuple(fc.nat(), u8), { minLength: 1, maxLength: 4 }),
          fc.boolean(),
          (value, cut, edits, inBody) => {
            const { header, body } = codec.encode(value as never);
            const target = inBody ? body : header;
            const truncated = target.subarray(0, cut % (target.length + 1));
            const mutated = Buffer.from(target);
            if (mutated.length > 0) for (const [at, v] of edits) mutated[at % mutated.length] = v;
            const extended = Buffer.concat([target, Buffer.from([0])]);
            for (const replacement of [truncated, mutated, extended]) {
              const payload = inBody ? { header, body: replacement } : { header: replacement, body };
              onlyProtocolErrors(() => codec.decode(payload));
            }
            if (truncated.length < target.length || extended.length > target.length) {
              const payload = inBody ? { header, body: extended } : { header: extended, body };
              expect(() => codec.decode(payload)).toThrow(
                expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
              );
            }
          },
        ),
        { numRuns: 100 },
      );
    },
  );

  test('random bytes give a value or PROTOCOL_ERROR only, for every codec', () => {
    const all = [...cases.map(([codec]) => codec), errorResponseCodec as Codec<unknown>];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (header, body) => {
        for (const codec of all)
          onlyProtocolErrors(() => codec.decode({ header: Buffer.from(header), body: Buffer.from(body) }));
      }),
      { numRuns: 300 },
    );
  });

  test('a forged element count cannot make a decoder loop or allocate beyond the payload', () => {
    const header = Buffer.alloc(1 + 3 * 8); // status FOUND, offsets 0
    const body = Buffer.from('ffffffff', 'hex'); // 4 billion messages in 4 bytes
    expect(() => pullResponseCodec.decode({ header, body })).toThrow(/count 4294967295 cannot fit/);
    expect(() =>
      clientIdsResponseCodec.decode({ header: Buffer.from('ffffffff', 'hex'), body: Buffer.alloc(0) }),
    ).toThrow(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
  });
});
