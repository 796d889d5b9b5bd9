import { type StringMemo, memoUtf8 } from '../common/string-memo';
import { RocketError } from '../common/errors';

/**
 * The primitives every remoting payload is built from. Little-endian throughout, as the commit-log
 * record (`message/record-codec.ts`) is.
 *
 * | primitive | size  | encoding                                                        |
 * |-----------|-------|-----------------------------------------------------------------|
 * | u8        | 1     |                                                                 |
 * | u16       | 2     |                                                                 |
 * | u32       | 4     |                                                                 |
 * | u64       | 8     | low u32 then high u32; a non-negative safe integer (≤ 2^53 − 1) |
 * | str       | 2+n   | u16 byte length + UTF-8                                         |
 * | longStr   | 4+n   | u32 byte length + UTF-8 (filter expressions, error messages)    |
 * | bytes     | 4+n   | u32 byte length + raw bytes (message bodies)                    |
 *
 * Optional fields are announced by a presence bit set written before them; absent fields take no
 * bytes unless a layout says otherwise. The writer rejects a value that does not fit its field
 * with `INVALID_ARGUMENT`; the reader throws `PROTOCOL_ERROR` on any truncated or impossible field
 * and never allocates from an unchecked length (strings and bytes are views of the input).
 */
export const U8_BYTES = 1;
export const U16_BYTES = 2;
export const U32_BYTES = 4;
export const U64_BYTES = 8;
export const MAX_U16 = 0xffff;
export const MAX_U32 = 0xffff_ffff;
const TWO_32 = 0x1_0000_0000;
/** First capacity of a {@link BinaryWriter}, in bytes. */
export const DEFAULT_WRITER_CAPACITY_BYTES = 256;

export function protocolError(message: string): RocketError {
  return new RocketError('PROTOCOL_ERROR', message);
}

function tooLarge(what: string, value: number, max: number): RocketError {
  return new RocketError('INVALID_ARGUMENT', `${what} ${value} does not fit its wire field (max ${max})`);
}

/** A growable little-endian buffer writer. */
export class BinaryWriter {
  private buf: Buffer;
  private at = 0;

  constructor(capacityBytes = DEFAULT_WRITER_CAPACITY_BYTES) {
    this.buf = Buffer.allocUnsafe(capacityBytes);
  }

  get length(): number {
    return this.at;
  }

  private ensure(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < this.at + bytes) capacity *= 2;
    const next = Buffer.allocUnsafe(capacity);
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  u8(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) throw tooLarge('u8', value, 0xff);
    this.ensure(U8_BYTES);
    this.buf[this.at++] = value;
    return this;
  }

  u16(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > MAX_U16) throw tooLarge('u16', value, MAX_U16);
    this.ensure(U16_BYTES);
    this.buf.writeUInt16LE(value, this.at);
    this.at += U16_BYTES;
    return this;
  }

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > MAX_U32) throw tooLarge('u32', value, MAX_U32);
    this.ensure(U32_BYTES);
    this.buf.writeUInt32LE(value, this.at);
    this.at += U32_BYTES;
    return this;
  }

  u64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw tooLarge('u64', value, Number.MAX_SAFE_INTEGER);
    }
    this.ensure(U64_BYTES);
    const low = value >>> 0;
    this.buf.writeUInt32LE(low, this.at);
    this.buf.writeUInt32LE((value - low) / TWO_32, this.at + 4);
    this.at += U64_BYTES;
    return this;
  }

  bool(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }

  private text(value: string, prefixBytes: 2 | 4, max: number): this {
    const length = Buffer.byteLength(value, 'utf8');
    if (length > max) throw tooLarge('string of byte length', length, max);
    this.ensure(prefixBytes + length);
    if (prefixBytes === 2) this.buf.writeUInt16LE(length, this.at);
    else this.buf.writeUInt32LE(length, this.at);
    this.at += prefixBytes;
    this.at += this.buf.write(value, this.at, length, 'utf8');
    return this;
  }

  /** u16 byte length + UTF-8. */
  str(value: string): this {
    return this.text(value, U16_BYTES, MAX_U16);
  }

  /**
   * `str`, for a field whose value repeats from one message to the next (topic, hosts): the UTF-8
   * bytes of the value last written through `memo` are copied instead of encoded again.
   */
  memoStr(value: string, memo: StringMemo): this {
    let bytes = memo.bytes;
    if (bytes === undefined || memo.value !== value) {
      bytes = Buffer.from(value, 'utf8');
      if (bytes.length > MAX_U16) throw tooLarge('string of byte length', bytes.length, MAX_U16);
      memo.value = value;
      memo.bytes = bytes;
    }
    this.ensure(U16_BYTES + bytes.length);
    this.buf.writeUInt16LE(bytes.length, this.at);
    this.buf.set(bytes, this.at + U16_BYTES);
    this.at += U16_BYTES + bytes.length;
    return this;
  }

  /** u32 byte length + UTF-8. */
  longStr(value: string): this {
    return this.text(value, U32_BYTES, MAX_U32);
  }

  /** u32 byte length + raw bytes. */
  bytes(value: Uint8Array): this {
    this.u32(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.at);
    this.at += value.length;
    return this;
  }

  /** The bytes written so far, as a view (not a copy) of the writer's buffer. */
  finish(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

/** A bounds-checked little-endian reader over one payload; every overrun is a `PROTOCOL_ERROR`. */
export class BinaryReader {
  private at = 0;

  constructor(
    private readonly buf: Buffer,
    /** Names the payload in error messages. */
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.at;
  }

  private take(bytes: number, field: string): number {
    if (bytes > this.buf.length - this.at) {
      throw protocolError(
        `${this.what}: ${field} needs ${bytes} bytes at offset ${this.at}, only ${this.remaining} left`,
      );
    }
    const start = this.at;
    this.at += bytes;
    return start;
  }

  u8(field = 'u8'): number {
    return this.buf[this.take(U8_BYTES, field)]!;
  }

  u16(field = 'u16'): number {
    return this.buf.readUInt16LE(this.take(U16_BYTES, field));
  }

  u32(field = 'u32'): number {
    return this.buf.readUInt32LE(this.take(U32_BYTES, field));
  }

  u64(field = 'u64'): number {
    const at = this.take(U64_BYTES, field);
    const value = this.buf.readUInt32LE(at + 4) * TWO_32 + this.buf.readUInt32LE(at);
    if (!Number.isSafeInteger(value)) throw protocolError(`${this.what}: ${field} ${value} exceeds 2^53`);
    return value;
  }

  bool(field = 'bool'): boolean {
    const value = this.u8(field);
    if (value > 1) throw protocolError(`${this.what}: ${field} is ${value}, not a boolean`);
    return value === 1;
  }

  str(field = 'string'): string {
    const length = this.u16(field);
    const at = this.take(length, field);
    return this.buf.toString('utf8', at, at + length);
  }

  /**
   * `str`, for a field whose value repeats from one message to the next (topic, hosts): when the
   * bytes equal those last read through `memo`, its string is returned instead of a new one.
   */
  memoStr(memo: StringMemo, field = 'string'): string {
    const length = this.u16(field);
    const at = this.take(length, field);
    return memoUtf8(this.buf, at, length, memo);
  }

  longStr(field = 'string'): string {
    const length = this.u32(field);
    const at = this.take(length, field);
    return this.buf.toString('utf8', at, at + length);
  }

  /** A view (not a copy) of the next length-prefixed bytes. */
  bytes(field = 'bytes'): Buffer {
    const length = this.u32(field);
    const at = this.take(length, field);
    return this.buf.subarray(at, at + length);
  }

  /**
   * Reads an element count and checks it against the bytes left, so a forged count cannot make a
   * decoder loop (or allocate) beyond the payload: every element takes at least `minElementBytes`.
   */
  count(field: string, prefix: 'u16' | 'u32', minElementBytes: number): number {
    const count = prefix === 'u16' ? this.u16(field) : this.u32(field);
    if (count * minElementBytes > this.remaining) {
      throw protocolError(`${this.what}: ${field} count ${count} cannot fit in ${this.remaining} bytes`);
    }
    return count;
  }

  /** Rejects bytes left over after the last field: a payload is exactly its fields. */
  end(): void {
    if (this.at !== this.buf.length) {
      throw protocolError(`${this.what}: ${this.remaining} unexpected trailing bytes`);
    }
  }
}
