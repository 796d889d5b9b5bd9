import { RocketError } from '../common/errors';
import type { MessageInput } from '../message/message';
import type { SendResponse } from '../message/protocol';

/** Most messages one coalesced send carries. (RocketNest only; RocketMQ has no equivalent.) */
export const DEFAULT_MAX_COALESCED_MESSAGES = 512;
/** Most body bytes one coalesced send carries; a bigger message goes alone. */
export const DEFAULT_MAX_COALESCED_BYTES = 1024 * 1024;

/** Sends one batch of messages of one topic (and one message group) as one request. */
export type BatchSender = (topic: string, messages: MessageInput[]) => Promise<SendResponse>;

/** One message's outcome: its place in the batch's response, or the batch's error. */
interface Waiter {
  resolve(response: SendResponse, index: number): void;
  reject(error: unknown): void;
}

interface Batch {
  readonly topic: string;
  readonly messages: MessageInput[];
  readonly waiters: Waiter[];
  bytes: number;
}

/**
 * Gathers the single-message sends of one turn of the event loop (everything issued before the
 * microtask queue drains) into batch sends: one per topic and message group, each bounded by
 * `maxMessages` and `maxBytes` (a full batch leaves at once and a new one starts). Each message
 * keeps its own outcome:
 *
 * - results map back by position: the broker stores a batch in order, in one queue;
 * - order is kept: a group's batches leave in the order their messages were sent, on one
 *   connection, and a FIFO group's messages only share a batch with their own group;
 * - a batch that fails as a whole (after the producer's retries) rejects each of its messages with
 *   the error, except that a failure the broker may have caused with one message (a non-retriable
 *   answer) is retried message by message, so that only the offending message fails. FIFO batches
 *   are not split (that would reorder the group): all their messages get the error.
 */
export class SendCoalescer {
  private readonly open = new Map<string, Batch>();
  private flushQueued = false;

  constructor(
    private readonly sendBatch: BatchSender,
    private readonly maxMessages: number,
    private readonly maxBytes: number,
    /** Whether an error lets the batch be retried message by message (non-FIFO batches only). */
    private readonly splitOn: (error: unknown) => boolean,
    /** Keeps the batch's send in the producer's in-flight set. */
    private readonly track: (done: Promise<unknown>) => void,
  ) {}

  /** Queues `message` (validated, no delivery time) and settles `waiter` with its outcome. */
  add(message: MessageInput, waiter: Waiter): void {
    const size = message.body.byteLength;
    if (size >= this.maxBytes || this.maxMessages <= 1) {
      this.start({ topic: message.topic, messages: [message], waiters: [waiter], bytes: size });
      return;
    }
    const key =
      message.messageGroup === undefined ? message.topic : `${message.topic}\u0000${message.messageGroup}`;
    let batch = this.open.get(key);
    if (batch && batch.bytes + size > this.maxBytes) {
      this.open.delete(key);
      this.start(batch);
      batch = undefined;
    }
    if (!batch) {
      batch = { topic: message.topic, messages: [], waiters: [], bytes: 0 };
      this.open.set(key, batch);
      if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(() => this.flush());
      }
    }
    batch.messages.push(message);
    batch.waiters.push(waiter);
    batch.bytes += size;
    if (batch.messages.length >= this.maxMessages) {
      this.open.delete(key);
      this.start(batch);
    }
  }

  /** Sends every open batch now. */
  flush(): void {
    this.flushQueued = false;
    if (this.open.size === 0) return;
    const batches = [...this.open.values()];
    this.open.clear();
    for (const batch of batches) this.start(batch);
  }

  private start(batch: Batch): void {
    const { topic, messages, waiters } = batch;
    const done = this.sendBatch(topic, messages).then(
      (response) => {
        if (response.messages.length !== waiters.length) {
          const error = new RocketError(
            'PROTOCOL_ERROR',
            `the broker answered a batch of ${waiters.length} messages with ${response.messages.length} results`,
          );
          for (const w of waiters) w.reject(error);
          return;
        }
        for (let i = 0; i < waiters.length; i++) waiters[i]!.resolve(response, i);
      },
      (error: unknown) => {
        if (messages.length > 1 && messages[0]!.messageGroup === undefined && this.splitOn(error)) {
          for (let i = 0; i < messages.length; i++) {
            this.start({ topic, messages: [messages[i]!], waiters: [waiters[i]!], bytes: 0 });
          }
          return;
        }
        for (const w of waiters) w.reject(error);
      },
    );
    this.track(done);
  }
}
