import { ERROR_CODES, type ErrorCode, RocketError } from '../common/errors';
import type { Subscription } from '../message/protocol';
import { BinaryReader, BinaryWriter, U8_BYTES, U16_BYTES, U32_BYTES, protocolError } from './binary';

/**
 * The codec kit every operation's wire format is written with (one file per domain:
 * `produce-codec.ts`, `consume-codec.ts`, `offsets-codec.ts`, `membership-codec.ts`,
 * `pop-codec.ts`, `transaction-codec.ts`, `route-codec.ts`; `operation-codecs.ts` maps each
 * operation to its request code and codecs).
 *
 * A payload is a frame's header and body (`frame-codec.ts`). Primitives are those of `binary.ts`
 * (all little-endian; `str` is u16 length + UTF-8, `longStr` u32 length + UTF-8), messages those of
 * `message-codec.ts`. The header holds an operation's fixed fields; the body holds messages (send
 * batches, pull and pop results, the half message of a check) and is empty otherwise. Every
 * decoder consumes header and body exactly: trailing bytes, unknown enum values and unknown
 * presence bits are a `PROTOCOL_ERROR`. Enums are u8 indexes into their table. Optional fields
 * are announced by a leading u8 of presence bits and written only when present (`[…]` in the
 * layout tables).
 *
 * | codec             | header                                                        | body |
 * |-------------------|---------------------------------------------------------------|------|
 * | empty             | —                                                             | —    |
 * | errorResponse     | u8 retriable (bool), str code, longStr message                | —    |
 * | json (admin only) | UTF-8 JSON of the value                                       | —    |
 */

export interface Payload {
  header: Buffer;
  body: Buffer;
  /**
   * Only on a payload being sent: more body bytes, written after `body` in order and uncopied (the
   * frame's body is `body` then these). A received payload's body is always one buffer.
   */
  bodyParts?: readonly Buffer[];
}

export interface Codec<T> {
  readonly name: string;
  encode(value: T): Payload;
  /**
   * The same bytes as `encode`, possibly as `body` plus `bodyParts` to spare a copy; a sender
   * uses it when present. `encode` stays one buffer (golden tests, signatures, gRPC).
   */
  encodeParts?(value: T): Payload;
  decode(payload: Payload): T;
}

/** The empty header or body. */
export const EMPTY = Buffer.alloc(0);

/** A Subscription's filter kind on the wire (u8 index). */
export const FILTER_KINDS = ['TAG', 'SQL92'] as const;
/** Fewest bytes one encoded Subscription takes: u8 kind, empty str topic, empty longStr expression. */
export const MIN_SUBSCRIPTION_BYTES = U8_BYTES + U16_BYTES + U32_BYTES;

/** An enum value as the u8 index of its table; a value not in it is INVALID_ARGUMENT at the sender. */
export function writeEnum<T extends string>(
  w: BinaryWriter,
  table: readonly T[],
  value: T,
  what: string,
): void {
  const index = table.indexOf(value);
  if (index < 0)
    throw new RocketError('INVALID_ARGUMENT', `${what} "${String(value)}" is not one of ${table.join(', ')}`);
  w.u8(index);
}

/** An enum read as a u8 index; an index beyond the table is a PROTOCOL_ERROR. */
export function readEnum<T extends string>(r: BinaryReader, table: readonly T[], what: string): T {
  const index = r.u8(what);
  const value = table[index];
  if (value === undefined) throw protocolError(`${what} ${index} is not one of 0..${table.length - 1}`);
  return value;
}

/** A u8 of presence bits; a bit outside `known` is a PROTOCOL_ERROR (a newer peer, or garbage). */
export function readPresence(r: BinaryReader, known: number, what: string): number {
  const bits = r.u8(`${what} presence`);
  if ((bits & ~known) !== 0) throw protocolError(`${what}: unknown presence bits 0x${bits.toString(16)}`);
  return bits;
}

/** `sub`: u8 kind (0 TAG, 1 SQL92), str topic, longStr expression. */
export function writeSubscription(w: BinaryWriter, s: Subscription): void {
  writeEnum(w, FILTER_KINDS, s.kind, 'filter kind');
  w.str(s.topic).longStr(s.expression);
}

export function readSubscription(r: BinaryReader): Subscription {
  const kind = readEnum(r, FILTER_KINDS, 'filter kind');
  return { kind, topic: r.str('subscription topic'), expression: r.longStr('expression') };
}

/** A codec whose value lives in the header alone; the body must be empty. */
export function headerCodec<T>(
  name: string,
  write: (w: BinaryWriter, value: T) => void,
  read: (r: BinaryReader) => T,
): Codec<T> {
  return {
    name,
    encode(value) {
      const w = new BinaryWriter();
      write(w, value);
      return { header: w.finish(), body: EMPTY };
    },
    decode({ header, body }) {
      const r = new BinaryReader(header, `${name} header`);
      const value = read(r);
      r.end();
      new BinaryReader(body, `${name} body`).end();
      return value;
    },
  };
}

/** A codec with fixed fields in the header and messages in the body. */
export function splitCodec<T, H>(
  name: string,
  writeHeader: (w: BinaryWriter, value: T) => void,
  writeBody: (w: BinaryWriter, value: T) => void,
  bodyWriter: (value: T) => BinaryWriter,
  read: (header: BinaryReader, body: BinaryReader) => H & T,
): Codec<T> {
  return {
    name,
    encode(value) {
      const h = new BinaryWriter();
      writeHeader(h, value);
      const b = bodyWriter(value);
      writeBody(b, value);
      return { header: h.finish(), body: b.finish() };
    },
    decode({ header, body }) {
      const h = new BinaryReader(header, `${name} header`);
      const b = new BinaryReader(body, `${name} body`);
      const value = read(h, b);
      h.end();
      b.end();
      return value;
    },
  };
}

/** Responses that carry nothing but their success (commitOffset, heartbeat, ack…). */
export const emptyCodec: Codec<void> = headerCodec(
  'empty',
  () => undefined,
  () => undefined,
);

/**
 * The payload of a response with the ERROR flag: enough to rebuild the same typed error on the
 * client. A code this side does not know (a newer peer) becomes `PROTOCOL_ERROR` naming it.
 */
export const errorResponseCodec: Codec<RocketError> = headerCodec<RocketError>(
  'errorResponse',
  (w, e) => w.bool(e.retriable).str(e.code).longStr(e.message),
  (r) => {
    const retriable = r.bool('retriable');
    const code = r.str('error code');
    const message = r.longStr('error message');
    if (!Object.prototype.hasOwnProperty.call(ERROR_CODES, code)) {
      return new RocketError('PROTOCOL_ERROR', `peer answered with unknown error code ${code}: ${message}`, {
        retriable,
      });
    }
    return new RocketError(code as ErrorCode, message, { retriable });
  },
);

/**
 * JSON in the header, for admin commands only: rare, human-scale, and their shapes still move.
 * Never used on the message path.
 */
export function jsonCodec<T>(name: string): Codec<T> {
  return {
    name,
    encode(value) {
      return { header: Buffer.from(JSON.stringify(value) ?? 'null', 'utf8'), body: EMPTY };
    },
    decode({ header, body }) {
      new BinaryReader(body, `${name} body`).end();
      try {
        return JSON.parse(header.toString('utf8')) as T;
      } catch (error) {
        throw new RocketError('PROTOCOL_ERROR', `${name}: header is not valid JSON`, { cause: error });
      }
    },
  };
}

/** A codec of `T` that travels as `W`: the same bytes, a different value on each side. */
export function mapCodec<W, T>(codec: Codec<W>, toWire: (value: T) => W, fromWire: (wire: W) => T): Codec<T> {
  return {
    name: codec.name,
    encode: (value) => codec.encode(toWire(value)),
    decode: (payload) => fromWire(codec.decode(payload)),
  };
}
