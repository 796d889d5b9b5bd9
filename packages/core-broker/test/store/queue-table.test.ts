import {
  QUEUE_TABLE_HEADER_BYTES,
  QUEUE_TABLE_MAGIC,
  decodeQueueTable,
  encodeQueueTable,
} from '../../src/store/queue-table';

describe('queue table layout', () => {
  const rows = [
    { topic: 'orders', queueId: 3, minOffset: 5, maxOffset: 2 ** 33 + 1, endCommitLogOffset: 4096 },
    { topic: 'é', queueId: 65_535, minOffset: 0, maxOffset: 1, endCommitLogOffset: 0 },
  ];

  test('golden bytes', () => {
    const buf = encodeQueueTable(rows);
    const hex = buf.toString('hex');
    expect(buf.readUInt32LE(0)).toBe(QUEUE_TABLE_MAGIC);
    expect(hex.slice(16)).toBe(
      '02000000' + // count
        '0600' +
        Buffer.from('orders').toString('hex') + // topic
        '0300' + // queueId
        '0500000000000000' + // minOffset
        '0100000002000000' + // maxOffset 2^33 + 1
        '0010000000000000' + // endCommitLogOffset 4096
        '0200' +
        'c3a9' + // topic 'é'
        'ffff' +
        '0000000000000000' +
        '0100000000000000' +
        '0000000000000000',
    );
    expect(buf.length).toBe(QUEUE_TABLE_HEADER_BYTES + 28 + 6 + 28 + 2);
    expect(decodeQueueTable(buf)).toEqual(rows);
  });

  test('a damaged, truncated or extended table reads as absent', () => {
    const buf = encodeQueueTable(rows);
    const flipped = Buffer.from(buf);
    flipped[20] = flipped[20]! ^ 1;
    expect(decodeQueueTable(flipped)).toBeUndefined();
    expect(decodeQueueTable(buf.subarray(0, buf.length - 1))).toBeUndefined();
    expect(decodeQueueTable(Buffer.concat([buf, Buffer.alloc(1)]))).toBeUndefined();
    expect(decodeQueueTable(undefined)).toBeUndefined();
    expect(decodeQueueTable(encodeQueueTable([]))).toEqual([]);
  });
});
