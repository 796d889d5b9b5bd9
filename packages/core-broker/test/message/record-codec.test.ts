import { crc32 } from 'node:zlib';
import {
  BLANK_MAGIC,
  CRC_AT,
  MIN_RECORD_BYTES,
  RECORD_MAGIC,
  checkRecord,
  decodeRecord,
  prepareRecord,
  sealRecord,
  writeBlank,
} from '../../src/message/record-codec';
import { formatMessageId, parseMessageId } from '../../src/message/message-id';
import { TransactionFlag } from '../../src/message/message';

const STORE_ID = '0123456789ABCDEF';

function sample() {
  const record = prepareRecord({
    topic: 'T',
    queueId: 3,
    body: Buffer.from('hi'),
    tag: 'a',
    keys: ['k1', 'k2'],
    properties: { p: 'v' },
    messageGroup: 'g',
    deliveryTimeMs: 7,
    bornTimestampMs: 0x0102030405,
    bornHost: 'b',
    storeHost: 's',
    reconsumeTimes: 2,
    flags: TransactionFlag.PREPARED,
    preparedTransactionOffset: 9,
  });
  sealRecord(record, 5, 0x1_0000_0010, 1000);
  return record;
}

describe('commit-log record layout', () => {
  test('golden bytes: every field at the offset the layout table gives', () => {
    const record = sample();
    const le32 = (n: number) => Buffer.from(Uint32Array.of(n).buffer).toString('hex');
    const le64 = (n: number) => le32(n % 2 ** 32) + le32(Math.floor(n / 2 ** 32));
    const expectedTail =
      le32(TransactionFlag.PREPARED) + // flags
      le32(3) + // queueId
      le32(2) + // reconsumeTimes
      le64(5) + // queueOffset
      le64(0x1_0000_0010) + // commitLogOffset
      le64(0x0102030405) + // bornTimestampMs
      le64(1000) + // storeTimestampMs
      le64(7) + // deliveryTimeMs
      le64(9) + // preparedTransactionOffset
      '01' +
      Buffer.from('T').toString('hex') +
      '0100' +
      Buffer.from('a').toString('hex') +
      '0500' +
      Buffer.from('k1 k2').toString('hex') +
      '01' +
      Buffer.from('g').toString('hex') +
      '01' +
      Buffer.from('b').toString('hex') +
      '01' +
      Buffer.from('s').toString('hex') +
      le32(6) +
      '0100' +
      Buffer.from('p').toString('hex') +
      '0100' +
      Buffer.from('v').toString('hex') +
      le32(2) +
      Buffer.from('hi').toString('hex');
    const tail = Buffer.from(expectedTail, 'hex');
    expect(record.length).toBe(12 + tail.length);
    expect(record.readUInt32LE(0)).toBe(record.length);
    expect(record.readUInt32LE(4)).toBe(RECORD_MAGIC);
    expect(record.subarray(12).toString('hex')).toBe(expectedTail);
    expect(record.readUInt32LE(CRC_AT)).toBe(crc32(tail));
    // and the literal bytes, so a change of constant values is caught too
    expect(record.subarray(0, 12).toString('hex')).toBe(`${le32(record.length)}314d4e52${le32(crc32(tail))}`);
  });

  test('decode returns every field, body as a view', () => {
    const record = sample();
    const view = decodeRecord(record, 0, STORE_ID);
    expect(view).toEqual({
      msgId: formatMessageId(STORE_ID, 0x1_0000_0010),
      storeSize: record.length,
      topic: 'T',
      queueId: 3,
      queueOffset: 5,
      commitLogOffset: 0x1_0000_0010,
      body: Buffer.from('hi'),
      tag: 'a',
      keys: ['k1', 'k2'],
      properties: { p: 'v' },
      messageGroup: 'g',
      deliveryTimeMs: 7,
      bornTimestampMs: 0x0102030405,
      bornHost: 'b',
      storeTimestampMs: 1000,
      storeHost: 's',
      reconsumeTimes: 2,
      flags: TransactionFlag.PREPARED,
      preparedTransactionOffset: 9,
    });
    expect(view.body.buffer).toBe(record.buffer);
  });

  test('topics and hosts that change from one record to the next decode as written (per-field memos)', () => {
    const fields = [
      ['T', 'b', 's'],
      ['T', 'b', 's'],
      ['U', 'b', 's2'],
      ['ü', 'b2', 's'],
      ['T', 'b', 's'],
    ] as const;
    for (const [topic, bornHost, storeHost] of [...fields, ...fields]) {
      const record = prepareRecord({
        topic,
        queueId: 0,
        body: Buffer.from('x'),
        tag: undefined,
        keys: [],
        properties: {},
        messageGroup: undefined,
        deliveryTimeMs: 0,
        bornTimestampMs: 1,
        bornHost,
        storeHost,
        reconsumeTimes: 0,
        flags: 0,
        preparedTransactionOffset: 0,
      });
      const view = decodeRecord(record, 0, STORE_ID);
      expect([view.topic, view.bornHost, view.storeHost]).toEqual([topic, bornHost, storeHost]);
    }
  });

  test('absent optional fields decode as absent', () => {
    const record = prepareRecord({
      topic: 'T',
      queueId: 0,
      body: Buffer.from('x'),
      tag: undefined,
      keys: [],
      properties: {},
      messageGroup: undefined,
      deliveryTimeMs: 0,
      bornTimestampMs: 1,
      bornHost: '',
      storeHost: '',
      reconsumeTimes: 0,
      flags: 0,
      preparedTransactionOffset: 0,
    });
    sealRecord(record, 0, 0, 1);
    const view = decodeRecord(record, 0, STORE_ID);
    expect(view.tag).toBeUndefined();
    expect(view.messageGroup).toBeUndefined();
    expect(view.keys).toEqual([]);
    expect(view.properties).toEqual({});
    expect(record.length).toBe(MIN_RECORD_BYTES + 2); // topic "T" and body "x"
  });

  test('checkRecord classifies record, blank, end, torn and corrupt bytes', () => {
    const record = sample();
    expect(checkRecord(record, 0, record.length)).toEqual({ kind: 'record', size: record.length });
    expect(checkRecord(record, 0, record.length, 0x1_0000_0010)).toEqual({
      kind: 'record',
      size: record.length,
    });
    expect(checkRecord(record, 0, record.length, 0)).toEqual({
      kind: 'corrupt',
      reason: 'record does not hold its own offset',
    });
    expect(checkRecord(record, 0, record.length - 1)).toEqual({ kind: 'end' });
    expect(checkRecord(Buffer.alloc(64), 0, 64)).toEqual({ kind: 'end' });
    for (const at of [20, record.length - 1]) {
      const flipped = Buffer.from(record);
      flipped[at]! ^= 0x40;
      expect(checkRecord(flipped, 0, flipped.length)).toEqual({
        kind: 'corrupt',
        reason: 'checksum mismatch',
      });
    }
    const badMagic = Buffer.from(record);
    badMagic.writeUInt32LE(0xdeadbeef, 4);
    expect(checkRecord(badMagic, 0, badMagic.length).kind).toBe('corrupt');
    const blank = Buffer.alloc(100);
    writeBlank(blank, 0, 100);
    expect(blank.readUInt32LE(4)).toBe(BLANK_MAGIC);
    expect(checkRecord(blank, 0, 100)).toEqual({ kind: 'blank', size: 100 });
  });
});

describe('message id', () => {
  test('round-trips store id and offset and rejects malformed ids', () => {
    const id = formatMessageId(STORE_ID, 2 ** 40 + 17);
    expect(id).toBe('0123456789ABCDEF0000010000000011');
    expect(parseMessageId(id.toLowerCase())).toEqual({ storeId: STORE_ID, commitLogOffset: 2 ** 40 + 17 });
    for (const bad of ['', 'xyz', id.slice(1), `${id}0`, 'G'.repeat(32)]) {
      expect(() => parseMessageId(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(() => parseMessageId(`${STORE_ID}FFFFFFFFFFFFFFFF`)).toThrow(/beyond 2\^53/);
  });
});
