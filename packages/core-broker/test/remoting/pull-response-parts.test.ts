import { pullResponseCodec } from '../../src/remoting/consume-codec';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, encodeFrameParts } from '../../src/remoting/frame-codec';
import { decodeRecord } from '../../src/message/record-codec';
import type { Payload } from '../../src/remoting/codec';
import { testRecord } from '../support/test-record';

/**
 * `pullResponseCodec.encodeParts`: the records form with records sent uncopied where they lie after
 * their u32 length (as the store copies a sparse span's records). The bytes must be exactly those
 * of `encode` (whose golden bytes consume-codec.test.ts pins) in every case, copied or not.
 */
describe('pull responses written as parts (records uncopied)', () => {
  const storeId = '0A0B0C0D0E0F1011';
  const base = { status: 'FOUND' as const, nextOffset: 3, minOffset: 0, maxOffset: 3 };
  const makeRecord = (queueOffset: number, body: string): Buffer =>
    testRecord(body, queueOffset, 4096 + queueOffset * 256);
  const records = [makeRecord(0, 'hi'), makeRecord(1, 'there'), makeRecord(2, 'a longer body')];

  /** Records laid out as the store's framed copy: [u32 length][record]…, views into one buffer. */
  function framed(list: Buffer[], gapAfter = -1): Buffer[] {
    const size = list.reduce((n, r) => n + 4 + r.length, 0) + (gapAfter >= 0 ? 8 : 0);
    const arena = Buffer.alloc(size, 0xee);
    const views: Buffer[] = [];
    let at = 0;
    list.forEach((r, i) => {
      arena.writeUInt32LE(r.length, at);
      r.copy(arena, at + 4);
      views.push(arena.subarray(at + 4, at + 4 + r.length));
      at += 4 + r.length + (i === gapAfter ? 8 : 0);
    });
    return views;
  }

  const wire = (p: Payload): Buffer => Buffer.concat([p.body, ...(p.bodyParts ?? [])]);

  test('framed adjacent records: one uncopied part, the same bytes as encode', () => {
    const views = framed(records);
    const value = { ...base, messages: [], records: { storeId, records: views } };
    const parts = pullResponseCodec.encodeParts!(value);
    const whole = pullResponseCodec.encode(value);
    expect(parts.header.equals(whole.header)).toBe(true);
    expect(wire(parts).equals(whole.body)).toBe(true);
    expect(parts.bodyParts).toHaveLength(1);
    // the part is the store's buffer itself, not a copy
    expect(parts.bodyParts![0]!.buffer).toBe(views[0]!.buffer);
    // and the client reads the same messages from it
    const back = pullResponseCodec.decode({ header: parts.header, body: wire(parts) });
    expect(back.messages).toEqual(records.map((r) => decodeRecord(r, 0, storeId)));
  });

  test('a gap between framed records starts a new part; the bytes are unchanged', () => {
    const views = framed(records, 0);
    const value = { ...base, messages: [], records: { storeId, records: views } };
    const parts = pullResponseCodec.encodeParts!(value);
    expect(parts.bodyParts).toHaveLength(2);
    expect(wire(parts).equals(pullResponseCodec.encode(value).body)).toBe(true);
  });

  test.each([
    ['records that are buffers of their own', () => records.map((r) => Buffer.from(r))],
    [
      'a record whose preceding bytes are not its length',
      () => {
        const views = framed(records);
        const b = Buffer.from(views[1]!.buffer, views[1]!.byteOffset - 4, 4);
        b.writeUInt32LE(views[1]!.length + 1, 0);
        return views;
      },
    ],
    ['records out of order', () => framed(records).reverse()],
  ])('%s: the same bytes as encode', (_, make) => {
    const value = { ...base, messages: [], records: { storeId, records: make() } };
    const parts = pullResponseCodec.encodeParts!(value);
    const whole = pullResponseCodec.encode(value);
    expect(parts.header.equals(whole.header)).toBe(true);
    expect(wire(parts).equals(whole.body)).toBe(true);
  });

  test('the views form and an empty records form are unchanged', () => {
    const views = { ...base, messages: [decodeRecord(records[0]!, 0, storeId)] };
    expect(wire(pullResponseCodec.encodeParts!(views)).equals(pullResponseCodec.encode(views).body)).toBe(
      true,
    );
    const empty = {
      ...base,
      status: 'NO_NEW_MESSAGE' as const,
      messages: [],
      records: { storeId, records: [] },
    };
    const parts = pullResponseCodec.encodeParts!(empty);
    expect(wire(parts).equals(pullResponseCodec.encode(empty).body)).toBe(true);
  });
});

describe('frames with body parts', () => {
  const frame = { code: 11, opaque: 7, flags: 1, header: Buffer.from('head') };

  test('body parts follow the body uncopied and count in the frame length', () => {
    const tail = [Buffer.from('cd'), Buffer.alloc(0), Buffer.from('efg')];
    const parts = encodeFrameParts({ ...frame, body: Buffer.from('ab'), bodyParts: tail });
    expect(parts.slice(-2)).toEqual([tail[0], tail[2]]);
    expect(parts[parts.length - 1]).toBe(tail[2]);
    expect(Buffer.concat(parts).equals(encodeFrame({ ...frame, body: Buffer.from('abcdefg') }))).toBe(true);
  });

  test('a frame too large only with its parts fails with INVALID_ARGUMENT', () => {
    const big = Buffer.alloc(DEFAULT_MAX_FRAME_BYTES);
    expect(() => encodeFrameParts({ ...frame, body: Buffer.alloc(0), bodyParts: [big] })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
