import { crc32 } from 'node:zlib';
import {
  decodeReceiptHandle,
  encodeReceiptHandle,
  MAX_RECEIPT_HANDLE_CHARS,
  RECEIPT_HANDLE_HEADER_BYTES,
} from '../../src/broker/receipt-handle';
import type { ReceiptHandle } from '../../src/broker/receipt-handle';

const handle: ReceiptHandle = {
  topic: 'orders',
  retry: true,
  queueId: 3,
  queueOffset: 2 ** 40 + 5,
  popTimeMs: 1_700_000_000_000,
  invisibleTimeMs: 60_000,
  attempt: 2,
  brokerEpoch: 0xdeadbeef,
  deliveryId: 7,
};

describe('receipt handle layout', () => {
  test('golden bytes', () => {
    const body = Buffer.from(
      [
        '01', // version
        '01', // flags: retry
        '0003', // queueId
        '0000010000000005', // queueOffset 2^40 + 5
        '0000018bcfe56800', // popTimeMs 1_700_000_000_000
        '0000ea60', // invisibleTimeMs 60 000
        '00000002', // attempt
        'deadbeef', // brokerEpoch
        '0000000000000007', // deliveryId
        '06', // topic length
        Buffer.from('orders').toString('hex'),
      ].join(''),
      'hex',
    );
    expect(body.length).toBe(RECEIPT_HANDLE_HEADER_BYTES + 6);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    const expected = Buffer.concat([body, crc]).toString('base64url');
    expect(encodeReceiptHandle(handle)).toBe(expected);
    expect(decodeReceiptHandle(expected)).toEqual(handle);
  });

  test('round trip of the largest values; the longest handle fits the bound', () => {
    const big: ReceiptHandle = {
      ...handle,
      topic: '%RETRY%' + 'g'.repeat(248),
      retry: false,
      queueId: 1023,
      queueOffset: Number.MAX_SAFE_INTEGER,
      deliveryId: Number.MAX_SAFE_INTEGER,
      attempt: 2 ** 32 - 1,
    };
    const text = encodeReceiptHandle(big);
    expect(text.length).toBeLessThanOrEqual(MAX_RECEIPT_HANDLE_CHARS);
    expect(decodeReceiptHandle(text)).toEqual(big);
  });

  test('anything malformed is INVALID_RECEIPT_HANDLE, never another error', () => {
    const good = encodeReceiptHandle(handle);
    const bytes = Buffer.from(good, 'base64url');
    const withByte = (at: number, value: number): string => {
      const copy = Buffer.from(bytes);
      copy[at] = value;
      return copy.toString('base64url');
    };
    const bad: unknown[] = [
      undefined,
      null,
      42,
      {},
      '',
      'not a handle!',
      'x'.repeat(MAX_RECEIPT_HANDLE_CHARS + 1),
      good.slice(0, -2),
      good + 'AA',
      withByte(0, 2), // version
      withByte(1, 0b10), // unknown flag
      withByte(20, bytes[20]! ^ 1), // a field altered: crc mismatch
      withByte(40, 200), // topic length past the end
      Buffer.alloc(10).toString('base64url'),
    ];
    for (const text of bad) {
      expect(() => decodeReceiptHandle(text)).toThrow(
        expect.objectContaining({ code: 'INVALID_RECEIPT_HANDLE' }),
      );
    }
  });

  test('random bytes never crash the decoder', () => {
    let seed = 1;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 500; i++) {
      const buf = Buffer.alloc(next() % 80);
      for (let k = 0; k < buf.length; k++) buf[k] = next() & 0xff;
      try {
        decodeReceiptHandle(buf.toString('base64url'));
      } catch (error) {
        expect(error).toMatchObject({ code: 'INVALID_RECEIPT_HANDLE' });
      }
    }
  });
});
