import { isUtf8 } from 'node:buffer';
import type { MessageView } from '../message/message';

/** Bytes of frame text the cache holds at most (JS strings: two bytes a character). */
export const FRAME_CACHE_MAX_BYTES = 16 * 1024 * 1024;
/** Entries the cache holds at most. */
export const FRAME_CACHE_MAX_ENTRIES = 4096;

/**
 * The part of a `message` frame that depends on the message only (everything but `subscription`
 * and `position`), built once and shared by every subscription that pushes the message: fan-out
 * to N connections encodes a body once, not N times. Bounded by bytes and entries; the oldest
 * entries go first. A message too large for a quarter of the cache is encoded and not kept.
 */
export class FrameCache {
  private readonly entries = new Map<string, string>();
  private bytes = 0;

  constructor(
    private readonly maxBytes = FRAME_CACHE_MAX_BYTES,
    private readonly maxEntries = FRAME_CACHE_MAX_ENTRIES,
  ) {}

  /** The whole frame text for `subscription` at `position`. */
  frame(subscription: string, position: string, message: MessageView): string {
    return (
      '{"type":"message","subscription":' +
      JSON.stringify(subscription) +
      ',"position":' +
      JSON.stringify(position) +
      ',' +
      this.tail(message)
    );
  }

  get size(): number {
    return this.entries.size;
  }

  private tail(message: MessageView): string {
    const cached = this.entries.get(message.msgId);
    if (cached !== undefined) return cached;
    const utf8 = isUtf8(message.body);
    const tail = JSON.stringify({
      msgId: message.msgId,
      topic: message.topic,
      tag: message.tag ?? null,
      keys: message.keys,
      properties: message.properties,
      encoding: utf8 ? 'utf8' : 'base64',
      body: message.body.toString(utf8 ? 'utf8' : 'base64'),
      bornTimestampMs: message.bornTimestampMs,
      storeTimestampMs: message.storeTimestampMs,
    }).slice(1);
    const size = tail.length * 2;
    if (size > this.maxBytes / 4) return tail;
    this.entries.set(message.msgId, tail);
    this.bytes += size;
    while (this.bytes > this.maxBytes || this.entries.size > this.maxEntries) {
      const [oldest, text] = this.entries.entries().next().value as [string, string];
      this.entries.delete(oldest);
      this.bytes -= text.length * 2;
    }
    return tail;
  }
}
