import { prepareRecord, sealRecord } from '../../src/message/record-codec';

/**
 * A sealed commit-log record of topic `T`, queue 1, with a tag, a key and a property: the fixture
 * of the records-form codec tests (its bytes are pinned by consume-codec.test.ts's golden sample).
 */
export function testRecord(body: string, queueOffset: number, commitLogOffset: number): Buffer {
  const record = prepareRecord({
    topic: 'T',
    queueId: 1,
    body: Buffer.from(body),
    tag: 'a',
    keys: ['k'],
    properties: { p: 'v' },
    messageGroup: undefined,
    deliveryTimeMs: 0,
    bornTimestampMs: 5,
    bornHost: 'h',
    storeHost: 's',
    reconsumeTimes: 0,
    flags: 0,
    preparedTransactionOffset: 0,
  });
  sealRecord(record, queueOffset, commitLogOffset, 6);
  return record;
}
