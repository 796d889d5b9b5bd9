import fc from 'fast-check';
import { isRocketError } from '../../src/common/errors';
import { type Frame, FrameDecoder, encodeFrame } from '../../src/remoting/frame-codec';
import { FrameReader, READ_SCRATCH_BYTES, READ_WINDOW_BYTES } from '../../src/remoting/frame-reader';

/**
 * Plays `stream` into a FrameReader as a socket with `onread` would: each read fills at most
 * `sizes[i]` bytes (and never more than the buffer the reader offered) of the buffer it gave.
 */
function readAll(
  stream: Buffer,
  sizes: number[],
  maxFrameBytes?: number,
): { frames: Frame[]; buffers: Set<ArrayBufferLike> } {
  const frames: Frame[] = [];
  const buffers = new Set<ArrayBufferLike>();
  const reader = new FrameReader(new FrameDecoder({ maxFrameBytes }), (f) => frames.push(...f));
  let at = 0;
  let i = 0;
  while (at < stream.length) {
    const target = reader.nextBuffer();
    expect(target.length).toBeGreaterThan(0);
    buffers.add(target.buffer);
    const n = Math.min(target.length, stream.length - at, sizes[i++ % sizes.length]!);
    stream.copy(target, 0, at, at + n);
    at += n;
    reader.read(n);
  }
  return { frames, buffers };
}

const frame = (body: number, opaque: number): Buffer =>
  encodeFrame({
    code: 11,
    opaque,
    flags: 1,
    header: Buffer.from([opaque & 0xff]),
    body: Buffer.alloc(body, opaque & 0xff),
  });

describe('FrameReader', () => {
  test('small and large frames, any read sizes: the frames that were sent, in order, with their bytes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 * READ_WINDOW_BYTES }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: READ_SCRATCH_BYTES }), { minLength: 1, maxLength: 8 }),
        (bodies, sizes) => {
          const sent = bodies.map((b, i) => frame(b, i + 1));
          const { frames } = readAll(Buffer.concat(sent), sizes);
          expect(frames.map((f) => f.opaque)).toEqual(bodies.map((_, i) => i + 1));
          frames.forEach((f, i) => {
            expect(f.body.length).toBe(bodies[i]);
            expect(f.body.every((byte) => byte === ((i + 1) & 0xff))).toBe(true);
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  test('a large frame is read into one buffer of its own size, the frame is a view of it (no copy at the end)', () => {
    const big = frame(5 * READ_WINDOW_BYTES, 7);
    const { frames } = readAll(Buffer.concat([frame(10, 6), big]), [READ_SCRATCH_BYTES]);
    expect(frames).toHaveLength(2);
    const body = frames[1]!.body;
    expect(body.buffer.byteLength).toBe(big.length);
    expect(body.byteOffset + body.length).toBe(big.length);
  });

  test('frames read into scratch are never overwritten by later reads', () => {
    const sent = Array.from({ length: 200 }, (_, i) => frame(i % 50, i + 1));
    const { frames } = readAll(Buffer.concat(sent), [97, 1000, 3]);
    expect(frames).toHaveLength(200);
    frames.forEach((f, i) => expect(f.body.every((byte) => byte === ((i + 1) & 0xff))).toBe(true));
  });

  test('a malformed stream throws PROTOCOL_ERROR, and a frame over the limit is refused before its buffer is allocated', () => {
    const reader = new FrameReader(new FrameDecoder(), () => undefined);
    const target = reader.nextBuffer();
    Buffer.alloc(17, 0x55).copy(target);
    expect(() => reader.read(17)).toThrow(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
    let error: unknown;
    try {
      readAll(frame(100_000, 1), [READ_WINDOW_BYTES], 50_000);
    } catch (e) {
      error = e;
    }
    expect(isRocketError(error, 'PROTOCOL_ERROR')).toBe(true);
  });
});
