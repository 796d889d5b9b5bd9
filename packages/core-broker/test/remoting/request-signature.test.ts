import { createHmac } from 'node:crypto';
import { isRocketError } from '../../src/common/errors';
import {
  FRAME_HEADER_BYTES,
  type Frame,
  FrameDecoder,
  FrameFlag,
  KNOWN_FLAGS_MASK,
  encodeFrameParts,
} from '../../src/remoting/frame-codec';
import { RequestSigner, SignatureVerifier } from '../../src/remoting/request-signature';

const credentials = { accessKey: 'orders-app', secretKey: 's3cret-value' };
// 'orders-apq' shares the secret, so only the MAC's coverage of the access key can tell them apart
const secrets: Record<string, string> = { 'orders-app': 's3cret-value', 'orders-apq': 's3cret-value' };
const verifier = new SignatureVerifier((key) => secrets[key]);

function signed(
  frame = { code: 10, opaque: 7, flags: 0, header: Buffer.from('hdr'), body: Buffer.from('the body') },
  creds = credentials,
): Buffer {
  return Buffer.concat(new RequestSigner(creds).encodeParts(frame));
}

function decodeOne(bytes: Buffer): Frame {
  const frames = new FrameDecoder().push(bytes);
  expect(frames).toHaveLength(1);
  return frames[0]!;
}

describe('request signature', () => {
  test('golden bytes: the auth section sits between the fixed part and the header, the MAC is the documented HMAC', () => {
    const bytes = signed();
    const key = Buffer.from('orders-app');
    // the MAC as docs/security.md describes it, computed here independently
    const prefix = Buffer.alloc(12);
    prefix.writeUInt16LE(10, 0);
    prefix.writeUInt32LE(7, 2);
    prefix[6] = FrameFlag.SIGNED;
    prefix[7] = key.length;
    prefix.writeUInt32LE(3, 8);
    const mac = createHmac('sha256', 's3cret-value')
      .update(Buffer.concat([prefix, key, Buffer.from('hdr'), Buffer.from('the body')]))
      .digest();
    expect(bytes.toString('hex')).toBe(
      Buffer.from([17 + 1 + 10 + 32 + 3 + 8, 0, 0, 0]).toString('hex') + // frameLength 71
        '0152' + // magic/version
        '0a00' + // code 10
        '07000000' + // opaque 7
        '08' + // flags: SIGNED
        '03000000' + // headerLength 3 (the header only)
        '0a' + // accessKeyLength 10
        key.toString('hex') +
        mac.toString('hex') +
        Buffer.from('hdr').toString('hex') +
        Buffer.from('the body').toString('hex'),
    );
    expect(KNOWN_FLAGS_MASK & FrameFlag.SIGNED).toBe(FrameFlag.SIGNED);
  });

  test('round trip: decoded header and body are the originals, the signature verifies, the secret is not exposed', () => {
    const frame = decodeOne(signed());
    expect(frame.header.toString()).toBe('hdr');
    expect(frame.body.toString()).toBe('the body');
    expect(frame.flags).toBe(FrameFlag.SIGNED);
    const auth = verifier.verify(frame);
    expect(auth).toEqual({ accessKey: 'orders-app', verified: true });
    expect(Object.keys(auth!).sort()).toEqual(['accessKey', 'verified']);
  });

  test('one-way requests and empty header/body sign and verify too', () => {
    const frame = decodeOne(
      signed({
        code: 37,
        opaque: 1,
        flags: FrameFlag.ONE_WAY,
        header: Buffer.alloc(0),
        body: Buffer.alloc(0),
      }),
    );
    expect(frame.flags).toBe(FrameFlag.ONE_WAY | FrameFlag.SIGNED);
    expect(verifier.verify(frame)).toEqual({ accessKey: 'orders-app', verified: true });
  });

  test('unsigned frames are encoded exactly as before and carry no auth', () => {
    const bytes = Buffer.concat(
      encodeFrameParts({ code: 10, opaque: 7, flags: 0, header: Buffer.from('hdr'), body: Buffer.from('b') }),
    );
    expect(bytes.length).toBe(FRAME_HEADER_BYTES + 4);
    const frame = decodeOne(bytes);
    expect(frame.auth).toBeUndefined();
    expect(verifier.verify(frame)).toBeUndefined();
    expect(() =>
      encodeFrameParts({
        code: 1,
        opaque: 1,
        flags: FrameFlag.SIGNED,
        header: Buffer.alloc(0),
        body: Buffer.alloc(0),
      }),
    ).toThrow(/flags/);
  });

  const keyAt = FRAME_HEADER_BYTES + 1;
  const macAt = keyAt + 'orders-app'.length;
  const headerAt = macAt + 32;
  const tamperings: Array<[string, (b: Buffer) => void]> = [
    ['code', (b) => b.writeUInt16LE(11, 6)],
    ['opaque', (b) => b.writeUInt32LE(8, 8)],
    ['flags (one-way bit)', (b) => (b[12]! |= FrameFlag.ONE_WAY)],
    ['a header byte', (b) => (b[headerAt]! ^= 1)],
    ['a body byte', (b) => (b[b.length - 1]! ^= 0x80)],
    ['the header/body boundary', (b) => b.writeUInt32LE(4, 13)],
    ['a signature byte', (b) => (b[macAt + 5]! ^= 1)],
    ['the access key (to one with the same secret)', (b) => (b[keyAt + 9]! ^= 1)],
  ];
  test.each(tamperings)('tampered %s: the signature no longer verifies', (_what, tamper) => {
    const bytes = signed();
    tamper(bytes);
    const auth = verifier.verify(decodeOne(bytes));
    expect(auth?.verified).toBe(false);
  });

  test('the same frame signed with a wrong secret, or by an unknown key, does not verify', () => {
    const wrongSecret = verifier.verify(
      decodeOne(signed(undefined, { accessKey: 'orders-app', secretKey: 'guess' })),
    );
    expect(wrongSecret).toEqual({ accessKey: 'orders-app', verified: false });
    const unknown = verifier.verify(decodeOne(signed(undefined, { accessKey: 'nobody', secretKey: 'x' })));
    expect(unknown).toEqual({ accessKey: 'nobody', verified: false });
    // a server with no secrets verifies nothing
    expect(new SignatureVerifier(undefined).verify(decodeOne(signed()))?.verified).toBe(false);
  });

  test('a signed frame too short for its auth section is a PROTOCOL_ERROR', () => {
    const bytes = signed();
    bytes[FRAME_HEADER_BYTES] = 200; // access key longer than the frame
    expect(() => new FrameDecoder().push(bytes)).toThrow(/no room for its auth section/);
    const zeroKey = signed();
    zeroKey[FRAME_HEADER_BYTES] = 0;
    let error: unknown;
    try {
      new FrameDecoder().push(zeroKey);
    } catch (e) {
      error = e;
    }
    expect(isRocketError(error, 'PROTOCOL_ERROR')).toBe(true);
  });

  test('signed frames split across chunks decode like whole ones', () => {
    const bytes = Buffer.concat([signed(), signed()]);
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    for (let i = 0; i < bytes.length; i += 5) frames.push(...decoder.push(bytes.subarray(i, i + 5)));
    expect(frames.map((f) => verifier.verify(f)?.verified)).toEqual([true, true]);
  });

  test('bad credentials are INVALID_OPTION naming the field, without echoing the secret', () => {
    expect(() => new RequestSigner({ accessKey: '', secretKey: 'top-secret' })).toThrow(
      /credentials\.accessKey/,
    );
    expect(() => new RequestSigner({ accessKey: 'k'.repeat(256), secretKey: 'top-secret' })).toThrow(
      /1\.\.255 UTF-8 bytes/,
    );
    try {
      new RequestSigner({ accessKey: 'k', secretKey: '' });
      throw new Error('expected a failure');
    } catch (error) {
      expect(isRocketError(error, 'INVALID_OPTION')).toBe(true);
      expect((error as Error).message).toMatch(/non-empty secret/);
    }
  });
});
