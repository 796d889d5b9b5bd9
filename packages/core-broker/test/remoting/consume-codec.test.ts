import {
  lockedQueuesCodec,
  pullRequestCodec,
  pullResponseCodec,
  queueLockRequestCodec,
  sendBackRequestCodec,
  sendBackResponseCodec,
} from '../../src/remoting/consume-codec';
import { formatMessageId } from '../../src/message/message-id';
import { decodeRecord } from '../../src/message/record-codec';
import { testRecord } from '../support/test-record';
import { expectGolden } from './golden';

/** The records-form body of the sample below: layout in consume-codec.ts, record in record-codec.ts. */
const RECORDS_BODY_GOLDEN =
  '100030413042304330443045304631303131010000006500000065000000314d4e52155cccdd0000' +
  '00000100000000000000020000000000000000100000000000000500000000000000060000000000' +
  '000000000000000000000000000000000000015401006101006b000168017306000000010070010076020000006869';
import { samples } from './golden-samples';

// Bytes captured from the single protocol codec before it was split by domain: the wire must not change.
describe('consume-codec.ts golden bytes (its layout table)', () => {
  test('pullRequest', () => {
    expectGolden(pullRequestCodec, samples.pullRequest, {
      header:
        '030100000020000000e8030000020000000000000001000000000000000100430100540101005403' + '000000613e31',
      body: '',
    });
  });

  test('pullResponse', () => {
    expectGolden(pullResponseCodec, samples.pullResponse, {
      header: '00030000000000000000000000000000000300000000000000',
      body:
        '01000000010100000064000000070000000800000002000000000000000300000000000000050000' +
        '000000000006000000000000000400000000000000090000000000000001004d0100540100610100' +
        '01006b0100680100730100010070010076020000006869',
    });
  });

  test('sendBackRequest', () => {
    expectGolden(sendBackRequestCodec, samples.sendBackRequest, {
      header: '03e8030000000000000300000001004301004d',
      body: '',
    });
  });

  test('sendBackResponse', () => {
    expectGolden(sendBackResponseCodec, samples.sendBackResponse, {
      header: '01',
      body: '',
    });
  });

  test('queueLockRequest', () => {
    expectGolden(queueLockRequestCodec, samples.queueLockRequest, {
      header: '010043010049010001005401000000',
      body: '',
    });
  });

  test('lockedQueues', () => {
    expectGolden(lockedQueuesCodec, samples.lockedQueues, {
      header: '010001005402000000',
      body: '',
    });
  });
});

describe('pull responses of many messages', () => {
  const view = samples.pullResponse.messages[0]!;
  test('topics and hosts that change from one message to the next decode as sent (per-field memos)', () => {
    const messages = [
      { ...view, topic: 'a', bornHost: 'h1:1', storeHost: 's1:1' },
      { ...view, topic: 'a', bornHost: 'h1:1', storeHost: 's1:1' },
      { ...view, topic: 'b', bornHost: 'h1:2', storeHost: 's1:1' },
      { ...view, topic: 'ä', bornHost: 'h1:1', storeHost: 's2:1' },
      { ...view, topic: 'a', bornHost: 'h1:1', storeHost: 's1:1' },
    ];
    for (let round = 0; round < 2; round++) {
      const decoded = pullResponseCodec.decode(
        pullResponseCodec.encode({ ...samples.pullResponse, messages }),
      );
      expect(decoded.messages.map((m) => [m.topic, m.bornHost, m.storeHost])).toEqual(
        messages.map((m) => [m.topic, m.bornHost, m.storeHost]),
      );
    }
  });

  test('a property named __proto__ is data, not a prototype change', () => {
    const properties = JSON.parse('{"__proto__":"x","k":"v"}') as Record<string, string>;
    const decoded = pullResponseCodec.decode(
      pullResponseCodec.encode({ ...samples.pullResponse, messages: [{ ...view, properties }] }),
    );
    const got = decoded.messages[0]!.properties;
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.keys(got).sort()).toEqual(['__proto__', 'k']);
    expect(Object.getOwnPropertyDescriptor(got, '__proto__')?.value).toBe('x');
  });
});

describe('the records form of pull responses (stored records sent as they are)', () => {
  const storeId = '0A0B0C0D0E0F1011';
  const record = testRecord('hi', 2, 4096);
  const view = decodeRecord(record, 0, storeId);
  const base = { status: 'FOUND' as const, nextOffset: 3, minOffset: 0, maxOffset: 3 };

  test('pullRequest golden bytes with the acceptsRecords bit (0x04 of the presence byte)', () => {
    expectGolden(
      pullRequestCodec,
      { ...samples.pullRequest, acceptsRecords: true },
      {
        header:
          '070100000020000000e8030000020000000000000001000000000000000100430100540101005403' + '000000613e31',
        body: '',
      },
    );
  });

  test('pullResponse golden bytes: status bit 0x80, then str storeId, u32 count, count × bytes(record)', () => {
    const payload = pullResponseCodec.encode({
      ...base,
      messages: [],
      records: { storeId, records: [record] },
    });
    expect(payload.header.toString('hex')).toBe('80030000000000000000000000000000000300000000000000');
    expect(payload.body.toString('hex')).toBe(RECORDS_BODY_GOLDEN);
    // the record travels byte for byte as stored
    expect(payload.body.subarray(2 + storeId.length + 4 + 4).equals(record)).toBe(true);
    const back = pullResponseCodec.decode({
      header: Buffer.from('80030000000000000000000000000000000300000000000000', 'hex'),
      body: Buffer.from(RECORDS_BODY_GOLDEN, 'hex'),
    });
    expect(back).toEqual({ ...base, messages: [view] });
    expect(back.messages[0]!.msgId).toBe(formatMessageId(storeId, 4096));
  });

  test('both forms decode to the same messages (the client sees no difference)', () => {
    const viaViews = pullResponseCodec.decode(pullResponseCodec.encode({ ...base, messages: [view, view] }));
    const viaRecords = pullResponseCodec.decode(
      pullResponseCodec.encode({ ...base, messages: [], records: { storeId, records: [record, record] } }),
    );
    expect(viaRecords).toEqual(viaViews);
  });

  test('a response without records is the views form, byte for byte as before (old clients)', () => {
    const payload = pullResponseCodec.encode(samples.pullResponse);
    expect(payload.header[0]! & 0x80).toBe(0);
    expect(
      pullRequestCodec.decode(pullRequestCodec.encode(samples.pullRequest)).acceptsRecords,
    ).toBeUndefined();
  });

  test('a storeId that is not a store id is a PROTOCOL_ERROR (message ids are built from it)', () => {
    const payload = pullResponseCodec.encode({
      ...base,
      messages: [],
      records: { storeId: 'not-hex', records: [record] },
    });
    expect(() => pullResponseCodec.decode(payload)).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
    );
  });

  test.each([
    ['a bad magic', (r: Buffer) => r.writeUInt32LE(0, 4)],
    ['a size field that is not the length sent', (r: Buffer) => r.writeUInt32LE(r.length + 1, 0)],
    ['field lengths that overrun the record', (r: Buffer) => r.writeUInt16LE(0xffff, 72 + 2)],
  ])('a record with %s is a PROTOCOL_ERROR, never a crash', (_, damage) => {
    const bad = Buffer.from(record);
    damage(bad);
    const payload = pullResponseCodec.encode({ ...base, messages: [], records: { storeId, records: [bad] } });
    expect(() => pullResponseCodec.decode(payload)).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
    );
  });
});
