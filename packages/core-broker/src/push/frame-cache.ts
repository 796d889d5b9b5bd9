import { isUtf8 } from 'node:buffer';
import type { MessageView } from '../message/message';

/** Bytes of encoded message parts the cache holds at most. */
export const FRAME_CACHE_MAX_BYTES = 16 * 1024 * 1024;
/** Entries the cache holds at most. */
export const FRAME_CACHE_MAX_ENTRIES = 4096;

/**
 * A `message` frame in two pieces, sent as two fragments of one WebSocket text message: `head`
 * (`{"type":"message","subscription":…,"position":…,`) is the subscription's own; `tail` (the
 * message's fields, to the closing brace) is shared by every subscription that pushes the message.
 */
export interface FrameParts {
  readonly head: Buffer;
  readonly tail: Buffer;
}

/**
 * The part of a `message` frame that depends on the message only (everything but `subscription`
 * and `position`), encoded to UTF-8 once and shared by every subscription that pushes the message:
 * fan-out to N connections encodes a body once, not N times, and the shared bytes go to each
 * socket without a copy. Bounded by bytes and entries; the oldest entries go first. A message too
 * large for a quarter of the cache is encoded and not kept.
 */
export class FrameCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(
    private readonly maxBytes = FRAME_CACHE_MAX_BYTES,
    private readonly maxEntries = FRAME_CACHE_MAX_ENTRIES,
  ) {}

  /** The frame for `subscription` at `position`, as its two fragments. */
  frame(subscription: string, position: string, message: MessageView): FrameParts {
    const head = Buffer.from(
      '{"type":"message","subscription":' +
        JSON.stringify(subscription) +
        ',"position":' +
        JSON.stringify(position) +
        ',',
    );
    return { head, tail: this.tail(message) };
  }

  get size(): number {
    return this.entries.size;
  }

  private tail(message: MessageView): Buffer {
    const cached = this.entries.get(message.msgId);
    if (cached !== undefined) return cached;
    const utf8 = isUtf8(message.body);
    const tail = Buffer.from(
      JSON.stringify({
        msgId: message.msgId,
        topic: message.topic,
        tag: message.tag ?? null,
        keys: message.keys,
        properties: message.properties,
        encoding: utf8 ? 'utf8' : 'base64',
        body: message.body.toString(utf8 ? 'utf8' : 'base64'),
        bornTimestampMs: message.bornTimestampMs,
        storeTimestampMs: message.storeTimestampMs,
      }).slice(1),
    );
    if (tail.length > this.maxBytes / 4) return tail;
    this.entries.set(message.msgId, tail);
    this.bytes += tail.length;
    while (this.bytes > this.maxBytes || this.entries.size > this.maxEntries) {
      const [oldest, bytes] = this.entries.entries().next().value as [string, Buffer];
      this.entries.delete(oldest);
      this.bytes -= bytes.length;
    }
    return tail;
  }
}
