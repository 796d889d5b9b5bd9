import { RocketError } from '../common/errors';
import { assert } from '../common/assert';
import { protocolError } from './binary';

/**
 * The remoting frame: one request or response on a connection. Little-endian throughout.
 *
 * | offset | size | field        |                                                            |
 * |--------|------|--------------|------------------------------------------------------------|
 * | 0      | 4    | frameLength  | u32, bytes of the whole frame, this field included         |
 * | 4      | 2    | magicVersion | u16, FRAME_MAGIC_VERSION: high byte 'R' (0x52), low byte 1 |
 * | 6      | 2    | code         | u16, request code (`request-codes.ts`), echoed by response |
 * | 8      | 4    | opaque       | u32, request id chosen by the requester, echoed by reply   |
 * | 12     | 1    | flags        | u8, FrameFlag bits (response, one-way, error, signed)      |
 * | 13     | 4    | headerLength | u32, bytes of the header                                   |
 * | 17     | n    | header       | the operation's fixed fields (`protocol-codec.ts`)         |
 * | 17+n   | rest | body         | frameLength − 17 − n bytes: message batches, or empty      |
 *
 * A frame with the SIGNED flag (a request from a client given credentials) carries an auth section
 * between the fixed part and the header; header and body follow it, and `headerLength` still
 * counts the header only:
 *
 * | offset   | size | field           |                                                         |
 * |----------|------|-----------------|---------------------------------------------------------|
 * | 17       | 1    | accessKeyLength | u8, k, 1..255 (AUTH_KEY_LENGTH_BYTES)                   |
 * | 18       | k    | accessKey       | UTF-8                                                   |
 * | 18+k     | 32   | signature       | HMAC-SHA256 of the request (`request-signature.ts`)     |
 * | 50+k     | n    | header          |                                                         |
 * | 50+k+n   | rest | body            | frameLength − 50 − k − n bytes                          |
 *
 * A frame is valid when its magic matches, no reserved flag bit is set, `17 ≤ frameLength ≤
 * maxFrameBytes` and `headerLength ≤ frameLength − 17` (for a signed frame: `≤ frameLength − 50 −
 * k`, with k ≥ 1). What the code means is not the frame's business: the dispatcher answers an
 * unknown code with an error response. Unsigned frames are encoded and decoded exactly as before
 * the SIGNED flag existed.
 */
export const FRAME_MAGIC_VERSION = 0x5201;
export const FRAME_LENGTH_AT = 0;
export const MAGIC_VERSION_AT = 4;
export const CODE_AT = 6;
export const OPAQUE_AT = 8;
export const FLAGS_AT = 12;
export const HEADER_LENGTH_AT = 13;
/** Size of the fixed part of every frame; the header starts here. */
export const FRAME_HEADER_BYTES = 17;
/**
 * Default largest frame a decoder accepts, in bytes: 16 MiB, RocketMQ's default
 * `com.rocketmq.remoting.frameMaxLength` (room for a 4 MiB batch many times over).
 */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export const FrameFlag = {
  /** The frame answers the request with the same opaque id. */
  RESPONSE: 0b001,
  /** The requester expects no response. */
  ONE_WAY: 0b010,
  /** A response whose payload is an error (`errorResponseCodec`) rather than the operation's result. */
  ERROR: 0b100,
  /** The frame carries an auth section (access key + signature) before its header; see the layout above. */
  SIGNED: 0b1000,
} as const;
/** Bits of `flags` that have a meaning; a frame with any other bit set is rejected. */
export const KNOWN_FLAGS_MASK = FrameFlag.RESPONSE | FrameFlag.ONE_WAY | FrameFlag.ERROR | FrameFlag.SIGNED;
/** Flags `encodeFrameParts` takes: SIGNED frames are encoded by `encodeSignedFrameParts` only. */
const UNSIGNED_FLAGS_MASK = FrameFlag.RESPONSE | FrameFlag.ONE_WAY | FrameFlag.ERROR;
/** Size of the auth section's access key length field. */
export const AUTH_KEY_LENGTH_BYTES = 1;
/** Longest access key a signed frame carries, in UTF-8 bytes. */
export const MAX_ACCESS_KEY_BYTES = 0xff;
/** Size of the auth section's signature: an HMAC-SHA256. */
export const SIGNATURE_BYTES = 32;

/** The auth section of a SIGNED frame, as received (bytes, not yet checked against any secret). */
export interface FrameAuth {
  accessKey: Buffer;
  signature: Buffer;
}

export interface Frame {
  code: number;
  opaque: number;
  flags: number;
  header: Buffer;
  body: Buffer;
  /** Present when the SIGNED flag is set. */
  auth?: FrameAuth;
}

/** What {@link encodeFrame} takes: header and body may be any bytes (they are not copied by `encodeFrameParts`). */
export interface FrameInput {
  code: number;
  opaque: number;
  flags: number;
  header: Uint8Array;
  body: Uint8Array;
  /** More body bytes after `body` (unsigned frames only), written uncopied. */
  bodyParts?: readonly Buffer[];
}

function checkField(what: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RocketError('INVALID_ARGUMENT', `frame ${what} ${value} is not an integer in [0, ${max}]`);
  }
}

/**
 * Encodes a frame as its fixed part (17 bytes) followed by header and body, uncopied: a list to
 * hand to `socket.writev`/`cork`+`write`. `maxFrameBytes` is the receiver's limit, checked here so a
 * too-large request fails at the sender with `INVALID_ARGUMENT` instead of closing the connection.
 */
export function encodeFrameParts(frame: FrameInput, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer[] {
  checkField('code', frame.code, 0xffff);
  checkField('opaque', frame.opaque, 0xffff_ffff);
  checkField('flags', frame.flags, UNSIGNED_FLAGS_MASK);
  let bodyLength = frame.body.length;
  if (frame.bodyParts !== undefined) for (const part of frame.bodyParts) bodyLength += part.length;
  const frameLength = FRAME_HEADER_BYTES + frame.header.length + bodyLength;
  if (frameLength > maxFrameBytes) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `frame of ${frameLength} bytes exceeds the maximum of ${maxFrameBytes} bytes`,
    );
  }
  const fixed = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  fixed.writeUInt32LE(frameLength, FRAME_LENGTH_AT);
  fixed.writeUInt16LE(FRAME_MAGIC_VERSION, MAGIC_VERSION_AT);
  fixed.writeUInt16LE(frame.code, CODE_AT);
  fixed.writeUInt32LE(frame.opaque, OPAQUE_AT);
  fixed[FLAGS_AT] = frame.flags;
  fixed.writeUInt32LE(frame.header.length, HEADER_LENGTH_AT);
  const parts: Buffer[] = [fixed];
  const view = (bytes: Uint8Array): Buffer =>
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (frame.header.length > 0) parts.push(view(frame.header));
  if (frame.body.length > 0) parts.push(view(frame.body));
  if (frame.bodyParts !== undefined)
    for (const part of frame.bodyParts) if (part.length > 0) parts.push(part);
  return parts;
}

/**
 * Encodes a SIGNED frame: fixed part and auth section (one buffer), then header and body uncopied.
 * `frame.flags` must not include SIGNED (it is added); `accessKey` is 1..255 bytes, `signature`
 * 32 bytes, computed over the same code, opaque, flags (SIGNED included), header and body
 * (`request-signature.ts`).
 */
export function encodeSignedFrameParts(
  frame: FrameInput,
  accessKey: Buffer,
  signature: Buffer,
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
): Buffer[] {
  checkField('code', frame.code, 0xffff);
  checkField('opaque', frame.opaque, 0xffff_ffff);
  checkField('flags', frame.flags, UNSIGNED_FLAGS_MASK);
  checkField('access key length', accessKey.length, MAX_ACCESS_KEY_BYTES);
  // the signature covers `body` only
  assert(frame.bodyParts === undefined, 'a signed frame has its body in one buffer');
  if (accessKey.length === 0 || signature.length !== SIGNATURE_BYTES) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `a signed frame needs a 1..${MAX_ACCESS_KEY_BYTES}-byte access key and a ${SIGNATURE_BYTES}-byte signature`,
    );
  }
  const authBytes = AUTH_KEY_LENGTH_BYTES + accessKey.length + SIGNATURE_BYTES;
  const frameLength = FRAME_HEADER_BYTES + authBytes + frame.header.length + frame.body.length;
  if (frameLength > maxFrameBytes) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `frame of ${frameLength} bytes exceeds the maximum of ${maxFrameBytes} bytes`,
    );
  }
  const fixed = Buffer.allocUnsafe(FRAME_HEADER_BYTES + authBytes);
  fixed.writeUInt32LE(frameLength, FRAME_LENGTH_AT);
  fixed.writeUInt16LE(FRAME_MAGIC_VERSION, MAGIC_VERSION_AT);
  fixed.writeUInt16LE(frame.code, CODE_AT);
  fixed.writeUInt32LE(frame.opaque, OPAQUE_AT);
  fixed[FLAGS_AT] = frame.flags | FrameFlag.SIGNED;
  fixed.writeUInt32LE(frame.header.length, HEADER_LENGTH_AT);
  fixed[FRAME_HEADER_BYTES] = accessKey.length;
  accessKey.copy(fixed, FRAME_HEADER_BYTES + AUTH_KEY_LENGTH_BYTES);
  signature.copy(fixed, FRAME_HEADER_BYTES + AUTH_KEY_LENGTH_BYTES + accessKey.length);
  const parts: Buffer[] = [fixed];
  const view = (bytes: Uint8Array): Buffer =>
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (frame.header.length > 0) parts.push(view(frame.header));
  if (frame.body.length > 0) parts.push(view(frame.body));
  return parts;
}

/** Encodes a frame into one contiguous buffer (copies header and body). */
export function encodeFrame(frame: FrameInput, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  return Buffer.concat(encodeFrameParts(frame, maxFrameBytes));
}

export interface FrameDecoderOptions {
  /** Largest frame accepted, in bytes, the 17-byte fixed part included. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
  /**
   * Largest frame accepted until {@link FrameDecoder.authenticate} is called, except SIGNED frames
   * whose access key `isKnownAccessKey` accepts (their signature is checked once they are complete).
   * Default: no separate limit (`maxFrameBytes` from the start).
   */
  unauthenticatedMaxFrameBytes?: number;
  /** Whether a SIGNED frame's access key names a known account. Default: none is known. */
  isKnownAccessKey?: (accessKey: string) => boolean;
}

/**
 * Turns a byte stream cut into arbitrary chunks back into frames. It checks each frame's fixed
 * part as soon as its 17 bytes are in — before waiting for (or allocating) the rest — and throws
 * `PROTOCOL_ERROR` on bad magic, reserved flags, or an impossible or oversize length. After an error
 * the stream cannot be resynchronised: every later `push` throws the same error, and the connection
 * should be closed. Buffered bytes never exceed `maxFrameBytes` plus the last chunk pushed.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failure: RocketError | undefined;
  /** The limit before `authenticate()`; undefined once authenticated or when there is none. */
  private unauthenticatedMax: number | undefined;
  private readonly isKnownAccessKey: (accessKey: string) => boolean;
  /** frameLength of the frame being assembled, once its fixed part (and auth section) was checked. */
  private partial = 0;

  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < FRAME_HEADER_BYTES || max > 0xffff_ffff) {
      throw new RocketError(
        'INVALID_OPTION',
        `maxFrameBytes must be an integer in [${FRAME_HEADER_BYTES}, 2^32 - 1], got ${max}`,
      );
    }
    this.maxFrameBytes = max;
    const pre = options.unauthenticatedMaxFrameBytes;
    if (pre !== undefined && (!Number.isInteger(pre) || pre < FRAME_HEADER_BYTES || pre > max)) {
      throw new RocketError(
        'INVALID_OPTION',
        `unauthenticatedMaxFrameBytes must be an integer in [${FRAME_HEADER_BYTES}, maxFrameBytes ${max}], got ${pre}`,
      );
    }
    this.unauthenticatedMax = pre;
    this.isKnownAccessKey = options.isKnownAccessKey ?? (() => false);
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Length of the frame being assembled, in bytes, once its fixed part has been checked; 0 between
   * frames. What a server reserves from its budget for partially read frames.
   */
  get partialFrameBytes(): number {
    return this.partial;
  }

  /** Lifts the unauthenticated limit: the connection proved who it is. */
  authenticate(): void {
    this.unauthenticatedMax = undefined;
  }

  /**
   * Hands over the buffered bytes of the frame being assembled (its fixed part already checked,
   * see {@link partialFrameBytes}) and forgets them, so that the caller can read the rest of the
   * frame straight into one buffer of its own and then {@link push} the whole frame, which is
   * checked again and returned without a copy. Returns no bytes between frames.
   */
  takePartialFrame(): Buffer[] {
    if (this.partial === 0) return [];
    const chunks = this.chunks;
    this.chunks = [];
    this.buffered = 0;
    this.partial = 0;
    return chunks;
  }

  /** Drops every buffered byte (the connection closed); later pushes throw `CLOSED`. */
  release(): void {
    this.chunks = [];
    this.buffered = 0;
    this.partial = 0;
    this.failure ??= new RocketError('CLOSED', 'the frame decoder was released');
  }

  /** Feeds the next chunk of the stream; returns the frames it completes, in order. */
  push(chunk: Buffer): Frame[] {
    if (this.failure !== undefined) throw this.failure;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    try {
      for (;;) {
        const frame = this.next();
        if (frame === undefined) break;
        frames.push(frame);
      }
    } catch (error) {
      this.failure = error as RocketError;
      this.chunks = [];
      this.buffered = 0;
      this.partial = 0;
      throw error;
    }
    return frames;
  }

  private next(): Frame | undefined {
    if (this.buffered < FRAME_HEADER_BYTES) {
      // Reject garbage as early as its first bytes allow, not only once 17 bytes are in.
      if (this.buffered >= MAGIC_VERSION_AT + 2) this.checkFixed(this.peek(MAGIC_VERSION_AT + 2), false);
      return undefined;
    }
    const fixed = this.peek(FRAME_HEADER_BYTES);
    const frameLength = this.checkFixed(fixed, true);
    if (this.partial === 0) {
      const limit = this.limitFor(fixed);
      if (limit === undefined) return undefined; // the auth section is not in yet
      if (frameLength > limit) {
        throw protocolError(
          `frame length ${frameLength} exceeds the maximum of ${limit} bytes before the connection has authenticated`,
        );
      }
      this.partial = frameLength;
    }
    if (this.buffered < frameLength) return undefined;
    this.partial = 0;
    const bytes = this.take(frameLength);
    if ((bytes[FLAGS_AT]! & FrameFlag.SIGNED) !== 0) return signedFrame(bytes);
    const headerEnd = FRAME_HEADER_BYTES + bytes.readUInt32LE(HEADER_LENGTH_AT);
    return {
      code: bytes.readUInt16LE(CODE_AT),
      opaque: bytes.readUInt32LE(OPAQUE_AT),
      flags: bytes[FLAGS_AT]!,
      header: bytes.subarray(FRAME_HEADER_BYTES, headerEnd),
      body: bytes.subarray(headerEnd),
    };
  }

  /**
   * The limit that applies to the frame whose fixed part is `fixed`: `maxFrameBytes` once
   * authenticated or for a SIGNED frame naming a known access key, the unauthenticated limit
   * otherwise; undefined while a SIGNED frame's access key is still on its way.
   */
  private limitFor(fixed: Buffer): number | undefined {
    if (this.unauthenticatedMax === undefined) return this.maxFrameBytes;
    if ((fixed[FLAGS_AT]! & FrameFlag.SIGNED) === 0) return this.unauthenticatedMax;
    if (this.buffered < FRAME_HEADER_BYTES + AUTH_KEY_LENGTH_BYTES) return undefined;
    const keyLength = this.peek(FRAME_HEADER_BYTES + AUTH_KEY_LENGTH_BYTES)[FRAME_HEADER_BYTES]!;
    const keyEnd = FRAME_HEADER_BYTES + AUTH_KEY_LENGTH_BYTES + keyLength;
    if (this.buffered < keyEnd) return undefined;
    const accessKey = this.peek(keyEnd).toString('utf8', FRAME_HEADER_BYTES + AUTH_KEY_LENGTH_BYTES, keyEnd);
    return keyLength > 0 && this.isKnownAccessKey(accessKey) ? this.maxFrameBytes : this.unauthenticatedMax;
  }

  /** Validates the fixed part (or its first 6 bytes when `complete` is false); returns frameLength. */
  private checkFixed(fixed: Buffer, complete: boolean): number {
    const frameLength = fixed.readUInt32LE(FRAME_LENGTH_AT);
    const magic = fixed.readUInt16LE(MAGIC_VERSION_AT);
    if (magic !== FRAME_MAGIC_VERSION) {
      throw protocolError(
        `bad frame magic/version 0x${magic.toString(16).padStart(4, '0')}, expected 0x${FRAME_MAGIC_VERSION.toString(16)}`,
      );
    }
    if (frameLength < FRAME_HEADER_BYTES) {
      throw protocolError(
        `frame length ${frameLength} is shorter than the ${FRAME_HEADER_BYTES}-byte fixed part`,
      );
    }
    if (frameLength > this.maxFrameBytes) {
      throw protocolError(`frame length ${frameLength} exceeds the maximum of ${this.maxFrameBytes} bytes`);
    }
    if (!complete) return frameLength;
    const flags = fixed[FLAGS_AT]!;
    if ((flags & ~KNOWN_FLAGS_MASK) !== 0) {
      throw protocolError(`frame flags 0x${flags.toString(16)} set reserved bits`);
    }
    const headerLength = fixed.readUInt32LE(HEADER_LENGTH_AT);
    if (headerLength > frameLength - FRAME_HEADER_BYTES) {
      throw protocolError(`frame header length ${headerLength} overruns the frame of ${frameLength} bytes`);
    }
    return frameLength;
  }

  /** The first `bytes` buffered bytes (a fixed part and auth section at most), without consuming them. */
  private peek(bytes: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= bytes) return first;
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const chunk of this.chunks) {
      at += chunk.copy(out, at, 0, Math.min(chunk.length, bytes - at));
      if (at === bytes) break;
    }
    return out;
  }

  /** Consumes the first `bytes` buffered bytes (checked ≤ maxFrameBytes), copying only when they span chunks. */
  private take(bytes: number): Buffer {
    this.buffered -= bytes;
    const first = this.chunks[0]!;
    if (first.length >= bytes) {
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
      return first.subarray(0, bytes);
    }
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    while (at < bytes) {
      const chunk = this.chunks[0]!;
      const n = Math.min(chunk.length, bytes - at);
      chunk.copy(out, at, 0, n);
      at += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    return out;
  }
}

/** Cuts a complete SIGNED frame (fixed part already checked) into its fields and auth section. */
function signedFrame(bytes: Buffer): Frame {
  const keyLength = bytes.length > FRAME_HEADER_BYTES ? bytes[FRAME_HEADER_BYTES]! : 0;
  const keyAt = FRAME_HEADER_BYTES + AUTH_KEY_LENGTH_BYTES;
  const headerAt = keyAt + keyLength + SIGNATURE_BYTES;
  const headerLength = bytes.readUInt32LE(HEADER_LENGTH_AT);
  if (keyLength === 0 || headerAt + headerLength > bytes.length) {
    throw protocolError(
      `signed frame of ${bytes.length} bytes has no room for its auth section (access key of ${keyLength} bytes) and header of ${headerLength} bytes`,
    );
  }
  return {
    code: bytes.readUInt16LE(CODE_AT),
    opaque: bytes.readUInt32LE(OPAQUE_AT),
    flags: bytes[FLAGS_AT]!,
    header: bytes.subarray(headerAt, headerAt + headerLength),
    body: bytes.subarray(headerAt + headerLength),
    auth: {
      accessKey: bytes.subarray(keyAt, keyAt + keyLength),
      signature: bytes.subarray(keyAt + keyLength, headerAt),
    },
  };
}
