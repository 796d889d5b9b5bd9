import type { Codec } from '../../src/remoting/codec';

/** The bytes a codec must write for `value` (hex), and the value it must read back from them. */
export function expectGolden<T>(codec: Codec<T>, value: T, golden: { header: string; body: string }): void {
  const { header, body } = codec.encode(value);
  expect({ header: header.toString('hex'), body: body.toString('hex') }).toEqual(golden);
  const back = codec.decode({
    header: Buffer.from(golden.header, 'hex'),
    body: Buffer.from(golden.body, 'hex'),
  });
  expect(back).toEqual(value);
}
