import { RocketError } from '../../src/common/errors';
import { emptyCodec, errorResponseCodec, jsonCodec, mapCodec } from '../../src/remoting/codec';
import { offsetResponseCodec } from '../../src/remoting/offsets-codec';

describe('codec.ts golden bytes (its layout table)', () => {
  test('errorResponse: u8 retriable, str code, longStr message', () => {
    const payload = errorResponseCodec.encode(new RocketError('BROKER_BUSY', 'full', { retriable: true }));
    expect(payload.header.toString('hex')).toBe(
      '01' + // retriable
        '0b00' +
        Buffer.from('BROKER_BUSY').toString('hex') +
        '04000000' +
        Buffer.from('full').toString('hex'),
    );
    expect(payload.body.length).toBe(0);
  });

  test('empty: no bytes either side', () => {
    const payload = emptyCodec.encode(undefined);
    expect([payload.header.length, payload.body.length]).toEqual([0, 0]);
  });

  test('json: the UTF-8 JSON of the value in the header', () => {
    const payload = jsonCodec<{ a: number }>('x').encode({ a: 1 });
    expect(payload.header.toString('utf8')).toBe('{"a":1}');
    expect(payload.body.length).toBe(0);
  });

  test('mapCodec: the same bytes as the codec it maps, a different value', () => {
    const bare = mapCodec(
      offsetResponseCodec,
      (offset: number) => ({ offset }),
      (r) => r.offset,
    );
    const mapped = bare.encode(7);
    expect(mapped).toEqual(offsetResponseCodec.encode({ offset: 7 }));
    expect(bare.decode(mapped)).toBe(7);
  });
});
