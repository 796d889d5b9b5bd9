import { RocketError } from '../common/errors';
import { readU64, writeU64 } from '../message/record-codec';

/**
 * The replication link between a master and its slaves (RocketMQ's HA connection), on its own
 * port (`haPort`). Little-endian, one frame after another:
 *
 * | field  | size | notes                                   |
 * |--------|------|-----------------------------------------|
 * | length | u32  | bytes after this field (type + payload) |
 * | type   | u8   | one of {@link HaFrameType}              |
 * | ...    |      | the payload of that type                |
 *
 * | type       | from   | payload                                                                               |
 * |------------|--------|---------------------------------------------------------------------------------------|
 * | HELLO 1    | slave  | u16 version, u32 segmentSize, u64 maxOffset, u32 tailLength, u32 tailCrc, u8+n storeId |
 * | REPORT 2   | slave  | u64 ackedOffset: the slave holds every byte below it under its flush policy           |
 * | WELCOME 3  | master | u32 segmentSize, u64 minOffset, u64 maxOffset, u8+n storeId, u8+n clientAddress        |
 * | DATA 4     | master | u64 offset, u64 masterMaxOffset, the commit-log bytes from offset                    |
 * | REFUSE 5   | master | u16+n code, u16+n message: the slave may not join (a typed `RocketError`)            |
 *
 * A slave says where its log ends (HELLO); the master checks that its own log holds the same
 * bytes there (the tail digest) and streams from that offset (DATA); the slave reports what it has
 * stored (REPORT) after each write and periodically. The bytes of DATA are verified record by
 * record by the slave's store, so a frame damaged in transit is refused, never stored.
 */
export const HA_PROTOCOL_VERSION = 1;

export const HaFrameType = { HELLO: 1, REPORT: 2, WELCOME: 3, DATA: 4, REFUSE: 5 } as const;
export type HaFrameType = (typeof HaFrameType)[keyof typeof HaFrameType];

/** Most commit-log bytes one DATA frame carries (RocketMQ `haTransferBatchSize` = 32 KiB). */
export const DEFAULT_HA_TRANSFER_BATCH_BYTES = 32 * 1024;
/** Largest frame either side accepts: a DATA frame of the largest batch, and its header. */
export const MAX_HA_FRAME_BYTES = 4 * 1024 * 1024 + 64;

export interface HaHello {
  segmentSize: number;
  maxOffset: number;
  tailLength: number;
  tailCrc: number;
  storeId: string;
}
export interface HaWelcome {
  segmentSize: number;
  minOffset: number;
  maxOffset: number;
  storeId: string;
  /** The master's client (TCP) address, where a slave fetches topic configs and offsets; '' if unknown. */
  clientAddress: string;
}
export type HaFrame =
  | ({ type: 1 } & HaHello)
  | { type: 2; ackedOffset: number }
  | ({ type: 3 } & HaWelcome)
  | { type: 4; offset: number; masterMaxOffset: number; bytes: Buffer }
  | { type: 5; code: string; message: string };

function frame(type: HaFrameType, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32LE(payload.length + 1, 0);
  head.writeUInt8(type, 4);
  return Buffer.concat([head, payload]);
}

function u64(value: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, value, 0);
  return b;
}

function shortStr(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 255)
    throw new RocketError('INVALID_ARGUMENT', 'replication frame string over 255 bytes');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

function str16(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8').subarray(0, 0xffff);
  const head = Buffer.allocUnsafe(2);
  head.writeUInt16LE(bytes.length, 0);
  return Buffer.concat([head, bytes]);
}

export function encodeHello(h: HaHello): Buffer {
  const fixed = Buffer.allocUnsafe(2 + 4 + 8 + 4 + 4);
  fixed.writeUInt16LE(HA_PROTOCOL_VERSION, 0);
  fixed.writeUInt32LE(h.segmentSize, 2);
  writeU64(fixed, h.maxOffset, 6);
  fixed.writeUInt32LE(h.tailLength, 14);
  fixed.writeUInt32LE(h.tailCrc, 18);
  return frame(HaFrameType.HELLO, Buffer.concat([fixed, shortStr(h.storeId)]));
}

export function encodeReport(ackedOffset: number): Buffer {
  return frame(HaFrameType.REPORT, u64(ackedOffset));
}

export function encodeWelcome(w: HaWelcome): Buffer {
  const fixed = Buffer.allocUnsafe(4 + 8 + 8);
  fixed.writeUInt32LE(w.segmentSize, 0);
  writeU64(fixed, w.minOffset, 4);
  writeU64(fixed, w.maxOffset, 12);
  return frame(HaFrameType.WELCOME, Buffer.concat([fixed, shortStr(w.storeId), shortStr(w.clientAddress)]));
}

/** The DATA frame's header; the bytes follow it (written separately, not copied). */
export function encodeDataHeader(offset: number, masterMaxOffset: number, byteCount: number): Buffer {
  const head = Buffer.allocUnsafe(5 + 16);
  head.writeUInt32LE(1 + 16 + byteCount, 0);
  head.writeUInt8(HaFrameType.DATA, 4);
  writeU64(head, offset, 5);
  writeU64(head, masterMaxOffset, 13);
  return head;
}

export function encodeRefuse(code: string, message: string): Buffer {
  return frame(HaFrameType.REFUSE, Buffer.concat([str16(code), str16(message)]));
}

function bad(what: string): RocketError {
  return new RocketError('PROTOCOL_ERROR', `replication frame: ${what}`);
}

/**
 * Splits a byte stream into frames. `push` returns the frames completed so far; bytes of an
 * incomplete frame are kept (at most one frame, {@link MAX_HA_FRAME_BYTES}).
 */
export class HaFrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): HaFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: HaFrame[] = [];
    let at = 0;
    while (this.pending.length - at >= 4) {
      const length = this.pending.readUInt32LE(at);
      if (length < 1 || length > MAX_HA_FRAME_BYTES) throw bad(`impossible length ${length}`);
      if (this.pending.length - at - 4 < length) break;
      out.push(decodeFrame(this.pending.subarray(at + 4, at + 4 + length)));
      at += 4 + length;
    }
    this.pending = this.pending.subarray(at);
    return out;
  }
}

function decodeFrame(buf: Buffer): HaFrame {
  const type = buf.readUInt8(0);
  const p = buf.subarray(1);
  const need = (n: number): void => {
    if (p.length < n) throw bad(`type ${type} payload of ${p.length} bytes is short`);
  };
  const readShort = (at: number): { value: string; end: number } => {
    need(at + 1);
    const n = p.readUInt8(at);
    need(at + 1 + n);
    return { value: p.toString('utf8', at + 1, at + 1 + n), end: at + 1 + n };
  };
  const read16 = (at: number): { value: string; end: number } => {
    need(at + 2);
    const n = p.readUInt16LE(at);
    need(at + 2 + n);
    return { value: p.toString('utf8', at + 2, at + 2 + n), end: at + 2 + n };
  };
  try {
    switch (type) {
      case HaFrameType.HELLO: {
        need(22);
        const version = p.readUInt16LE(0);
        if (version !== HA_PROTOCOL_VERSION) throw bad(`version ${version}, expected ${HA_PROTOCOL_VERSION}`);
        const id = readShort(22);
        return {
          type,
          segmentSize: p.readUInt32LE(2),
          maxOffset: readU64(p, 6),
          tailLength: p.readUInt32LE(14),
          tailCrc: p.readUInt32LE(18),
          storeId: id.value,
        };
      }
      case HaFrameType.REPORT:
        need(8);
        return { type, ackedOffset: readU64(p, 0) };
      case HaFrameType.WELCOME: {
        need(20);
        const id = readShort(20);
        const client = readShort(id.end);
        return {
          type,
          segmentSize: p.readUInt32LE(0),
          minOffset: readU64(p, 4),
          maxOffset: readU64(p, 12),
          storeId: id.value,
          clientAddress: client.value,
        };
      }
      case HaFrameType.DATA:
        need(16);
        return { type, offset: readU64(p, 0), masterMaxOffset: readU64(p, 8), bytes: p.subarray(16) };
      case HaFrameType.REFUSE: {
        const code = read16(0);
        const message = read16(code.end);
        return { type, code: code.value, message: message.value };
      }
      default:
        throw bad(`unknown type ${type}`);
    }
  } catch (error) {
    if (error instanceof RocketError) throw error;
    throw bad((error as Error).message);
  }
}
