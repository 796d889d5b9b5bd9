import fc from 'fast-check';
import { isRocketError } from '../../src/common/errors';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC_VERSION,
  type Frame,
  FrameDecoder,
  FrameFlag,
  encodeFrame,
  encodeFrameParts,
} from '../../src/remoting/frame-codec';
import { RequestCode, isRequestCode, requestCodeName } from '../../src/remoting/request-codes';

const frameArb = fc.record({
  code: fc.integer({ min: 0, max: 0xffff }),
  opaque: fc.integer({ min: 0, max: 0xffff_ffff }),
  flags: fc.integer({ min: 0, max: 7 }),
  header: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  body: fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)),
});

/** Runs `fn`, expecting either success or a PROTOCOL_ERROR; anything else fails the test. */
function onlyProtocolErrors(fn: () => void): 'ok' | 'error' {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (isRocketError(error, 'PROTOCOL_ERROR')) return 'error';
    throw error;
  }
}

describe('frame layout', () => {
  test('golden bytes: every fixed field at the offset the layout table gives', () => {
    const bytes = encodeFrame({
      code: RequestCode.SEND_MESSAGE,
      opaque: 0x01020304,
      flags: FrameFlag.RESPONSE | FrameFlag.ERROR,
      header: Buffer.from('ab'),
      body: Buffer.from('xyz'),
    });
    expect(bytes.toString('hex')).toBe(
      '16000000' + // frameLength 22, the whole frame
        '0152' + // magic 'R' + version 1, u16 LE of 0x5201
        '0a00' + // code 10
        '04030201' + // opaque
        '05' + // flags RESPONSE | ERROR
        '02000000' + // headerLength
        '6162' + // header
        '78797a', // body
    );
    expect(FRAME_HEADER_BYTES).toBe(17);
    expect(FRAME_MAGIC_VERSION).toBe(0x5201);
  });

  test('encodeFrameParts does not copy header or body', () => {
    const header = Buffer.from('head');
    const body = Buffer.from('body');
    const parts = encodeFrameParts({ code: 1, opaque: 2, flags: 0, header, body });
    expect(parts).toHaveLength(3);
    expect(parts[1]).toBe(header);
    expect(parts[2]).toBe(body);
    expect(
      encodeFrameParts({ code: 1, opaque: 2, flags: 0, header: Buffer.alloc(0), body: Buffer.alloc(0) }),
    ).toHaveLength(1);
  });

  test('encoding rejects out-of-range fields and frames over the limit with INVALID_ARGUMENT', () => {
    const base = { code: 1, opaque: 1, flags: 0, header: Buffer.alloc(0), body: Buffer.alloc(0) };
    for (const bad of [{ code: 0x10000 }, { opaque: -1 }, { flags: 8 }, { code: 1.5 }]) {
      expect(() => encodeFrame({ ...base, ...bad })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    expect(() => encodeFrame({ ...base, body: Buffer.alloc(100) }, 100)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  test('request codes are unique and named', () => {
    const values = Object.values(RequestCode);
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v).toBeLessThanOrEqual(0xffff);
    expect(isRequestCode(RequestCode.PULL_MESSAGE)).toBe(true);
    expect(isRequestCode(9999)).toBe(false);
    expect(requestCodeName(RequestCode.POP_MESSAGE)).toBe('POP_MESSAGE');
    expect(requestCodeName(9999)).toBe('UNKNOWN(9999)');
  });
});

describe('FrameDecoder', () => {
  test('round trip: random frames encode and decode to the same values', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 5 }), (frames) => {
        const decoder = new FrameDecoder();
        const out = decoder.push(Buffer.concat(frames.map((f) => encodeFrame(f))));
        expect(out).toEqual(frames);
        expect(decoder.bufferedBytes).toBe(0);
      }),
    );
  });

  test('the same stream split at every possible boundary yields the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 3 }), (frames) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
        for (let cut = 0; cut <= stream.length; cut++) {
          const decoder = new FrameDecoder();
          const out = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
          expect(out).toEqual(frames);
        }
      }),
      { numRuns: 50 },
    );
  });

  test('byte-at-a-time and random chunkings yield the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 50 }),
        (frames, sizes) => {
          const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
          const decoder = new FrameDecoder();
          const out: Frame[] = [];
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const size = sizes[i % sizes.length]!;
            out.push(...decoder.push(stream.subarray(at, at + size)));
            at += size;
          }
          expect(out).toEqual(frames);
          const single = new FrameDecoder();
          const bytewise: Frame[] = [];
          for (let i = 0; i < stream.length; i++) bytewise.push(...single.push(stream.subarray(i, i + 1)));
          expect(bytewise).toEqual(frames);
        },
      ),
      { numRuns: 50 },
    );
  });

  const fixed = (frameLength: number, magic = FRAME_MAGIC_VERSION, flags = 0, headerLength = 0): Buffer => {
    const b = Buffer.alloc(FRAME_HEADER_BYTES);
    b.writeUInt32LE(frameLength, 0);
    b.writeUInt16LE(magic, 4);
    b[12] = flags;
    b.writeUInt32LE(headerLength, 13);
    return b;
  };

  test.each([
    ['bad magic', fixed(17, 0x1234), /magic/],
    ['length below the fixed part', fixed(16), /shorter/],
    ['oversize length', fixed(DEFAULT_MAX_FRAME_BYTES + 1), /exceeds/],
    ['reserved flag bits', fixed(17, FRAME_MAGIC_VERSION, 0x80), /reserved/],
    ['header length overrunning the frame', fixed(20, FRAME_MAGIC_VERSION, 0, 4), /overruns/],
  ])('%s is a PROTOCOL_ERROR', (_name, bytes, message) => {
    const decoder = new FrameDecoder();
    expect(() => decoder.push(bytes)).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_ERROR', retriable: false }),
    );
    expect(() => new FrameDecoder().push(bytes)).toThrow(message);
    // the stream cannot be resynchronised: the decoder stays failed
    expect(() =>
      decoder.push(
        encodeFrame({ code: 1, opaque: 1, flags: 0, header: Buffer.alloc(0), body: Buffer.alloc(0) }),
      ),
    ).toThrow(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
    expect(decoder.bufferedBytes).toBe(0);
  });

  test('bad magic and oversize are rejected from the first 6 bytes, before the rest arrives', () => {
    expect(() => new FrameDecoder().push(fixed(17, 0xbeef).subarray(0, 6))).toThrow(/magic/);
    expect(() => new FrameDecoder({ maxFrameBytes: 100 }).push(fixed(101).subarray(0, 6))).toThrow(/exceeds/);
  });

  test('a truncated frame stays buffered, never decoded', () => {
    const bytes = encodeFrame({
      code: 1,
      opaque: 1,
      flags: 0,
      header: Buffer.from('h'),
      body: Buffer.from('body'),
    });
    const decoder = new FrameDecoder();
    expect(decoder.push(bytes.subarray(0, bytes.length - 1))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(bytes.length - 1);
  });

  test('maxFrameBytes is validated', () => {
    for (const maxFrameBytes of [0, 16, 1.5, 2 ** 32]) {
      expect(() => new FrameDecoder({ maxFrameBytes })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      );
    }
  });

  test('random and mutated bytes give only frames or PROTOCOL_ERROR, and never allocate beyond maxFrameBytes', () => {
    const maxFrameBytes = 256;
    const allocUnsafe = jest.spyOn(Buffer, 'allocUnsafe');
    const alloc = jest.spyOn(Buffer, 'alloc');
    try {
      const valid = fc
        .array(frameArb, { minLength: 1, maxLength: 3 })
        .map((frames) => Buffer.concat(frames.map((f) => encodeFrame(f))));
      const mutated = fc
        .tuple(
          valid,
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
          fc.nat(),
        )
        .map(([stream, edits, cut]) => {
          const copy = Buffer.from(stream);
          for (const [at, value] of edits) copy[at % copy.length] = value;
          return copy.subarray(0, cut % (copy.length + 1));
        });
      const randomBytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
      fc.assert(
        fc.property(fc.oneof(mutated, randomBytes), fc.integer({ min: 1, max: 64 }), (stream, chunk) => {
          allocUnsafe.mockClear();
          alloc.mockClear();
          const decoder = new FrameDecoder({ maxFrameBytes });
          onlyProtocolErrors(() => {
            for (let at = 0; at < stream.length; at += chunk) {
              for (const frame of decoder.push(stream.subarray(at, at + chunk))) {
                expect(FRAME_HEADER_BYTES + frame.header.length + frame.body.length).toBeLessThanOrEqual(
                  maxFrameBytes,
                );
              }
              expect(decoder.bufferedBytes).toBeLessThanOrEqual(maxFrameBytes + chunk);
            }
          });
          for (const call of [...allocUnsafe.mock.calls, ...alloc.mock.calls]) {
            expect(call[0]).toBeLessThanOrEqual(maxFrameBytes);
          }
        }),
        { numRuns: 500 },
      );
    } finally {
      allocUnsafe.mockRestore();
      alloc.mockRestore();
    }
  });
});
