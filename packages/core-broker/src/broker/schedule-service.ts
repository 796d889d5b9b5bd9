import type { Clock, Timer } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import { SystemProperty } from '../message/system-properties';
import type { AppendRequest, AppendResult, MessageStore } from '../store/message-store';
import type { ConfigFile } from './config-file';
import { MinHeap } from './min-heap';
import type { QueueWriter, WriteEvent } from './queue-writer';
import { realTopicCopy } from './real-topic';

/** The system topic that holds delayed messages until they are due (RocketMQ's name). */
export const SCHEDULE_TOPIC = 'SCHEDULE_TOPIC_XXXX';
const SCHEDULE_QUEUE_ID = 0;
/** Longest time delivered-progress stays unwritten after a delivery. */
export const PROGRESS_PERSIST_INTERVAL_MS = 1000;
/** Records read per step when loading pending delayed messages on start. */
const LOAD_BATCH = 256;
/** Most due messages copied to their real topics in one write; the rest follow at once. */
export const MAX_DELIVERIES_PER_ROUND = 1024;
/** A delivery that failed (disk full, I/O) is tried again this much later; its entries stay queued. */
export const DELIVERY_RETRY_DELAY_MS = 1000;

/** What the schedule service is built from. */
export interface ScheduleServiceOptions {
  /** The one write door: parking a delayed message and delivering it both go through it. */
  writer: QueueWriter;
  /** Read only: the parked messages. */
  store: MessageStore;
  clock: Clock;
  progressFile: ConfigFile<ScheduleProgress>;
  /** Delayed messages waiting at once past which delayed sends fail (`maxScheduledMessages`). */
  maxPending: number;
  /** Reports deliveries that failed and will be tried again. */
  onEvent(event: WriteEvent): void;
}

interface Due {
  dueMs: number;
  queueOffset: number;
  commitLogOffset: number;
}

/** Persisted progress: every schedule-queue offset below `watermark` was delivered, and those listed. */
export interface ScheduleProgress {
  watermark: number;
  delivered: number[];
}

/**
 * Delayed and scheduled messages at any delivery time (RocketMQ 5's timer, not its 18 fixed
 * levels). A delayed message is stored in {@link SCHEDULE_TOPIC}; a timer set to the earliest due
 * time copies due messages to their real topic and queue. Which schedule entries were delivered is
 * persisted within a second of a delivery and on close, so a restart neither loses nor repeats
 * them; a crash before that write repeats the deliveries it had not recorded (at least once).
 */
export class ScheduleService {
  private readonly heap = new MinHeap<Due>(
    (a, b) => a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.queueOffset < b.queueOffset),
  );
  private watermark = 0;
  private readonly delivered = new Set<number>();
  private timer: Timer | undefined;
  private persistTimer: Timer | undefined;
  private timerDueMs = Infinity;
  private delivering: Promise<void> = Promise.resolve();
  private closed = false;
  private started = false;

  private readonly store: MessageStore;
  private readonly clock: Clock;

  constructor(private readonly options: ScheduleServiceOptions) {
    this.store = options.store;
    this.clock = options.clock;
  }

  /** Messages waiting for their delivery time. */
  get pending(): number {
    return this.heap.size;
  }

  /** Loads what was stored but not yet delivered and arms the timer. */
  start(): void {
    this.started = true;
    const progress = this.options.progressFile.load() ?? { watermark: 0, delivered: [] };
    this.watermark = Math.max(progress.watermark, this.store.minOffset(SCHEDULE_TOPIC, SCHEDULE_QUEUE_ID));
    for (const offset of progress.delivered) if (offset >= this.watermark) this.delivered.add(offset);
    let offset = this.watermark;
    const max = this.store.maxOffset(SCHEDULE_TOPIC, SCHEDULE_QUEUE_ID);
    while (offset < max) {
      const got = this.store.getMessages(SCHEDULE_TOPIC, SCHEDULE_QUEUE_ID, offset, { maxCount: LOAD_BATCH });
      for (const m of got.messages) {
        if (!this.delivered.has(m.queueOffset)) this.heap.push(this.entry(m));
      }
      if (got.nextOffset <= offset) break;
      offset = got.nextOffset;
    }
    this.arm();
  }

  private entry(m: { deliveryTimeMs: number; queueOffset: number; commitLogOffset: number }): Due {
    return { dueMs: m.deliveryTimeMs, queueOffset: m.queueOffset, commitLogOffset: m.commitLogOffset };
  }

  /**
   * Stores messages to be delivered to `request.topic`/`queueId` at their `deliveryTimeMs`.
   * Rejects with `BROKER_BUSY` when `maxScheduledMessages` are already waiting, and as the write
   * door does when the store refuses the write (a full disk is `BROKER_BUSY` too).
   */
  async schedule(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const { maxPending } = this.options;
    if (this.heap.size + requests.length > maxPending) {
      throw new RocketError(
        'BROKER_BUSY',
        `${this.heap.size} delayed messages are waiting, the limit is maxScheduledMessages=${maxPending}; retry later`,
      );
    }
    const stored = await this.options.writer.write(
      requests.map((r) => ({
        ...r,
        topic: SCHEDULE_TOPIC,
        queueId: SCHEDULE_QUEUE_ID,
        properties: {
          ...r.properties,
          [SystemProperty.REAL_TOPIC]: r.topic,
          [SystemProperty.REAL_QUEUE_ID]: String(r.queueId),
        },
      })),
    );
    stored.forEach((s, i) =>
      this.heap.push({
        dueMs: requests[i]!.deliveryTimeMs!,
        queueOffset: s.queueOffset,
        commitLogOffset: s.commitLogOffset,
      }),
    );
    this.arm();
    return stored;
  }

  private arm(): void {
    if (this.closed) return;
    const next = this.heap.peek();
    if (!next || next.dueMs >= this.timerDueMs) return;
    this.timer?.cancel();
    this.timerDueMs = next.dueMs;
    this.timer = this.clock.setTimer(Math.max(0, next.dueMs - this.clock.now()), () => {
      this.timer = undefined;
      this.timerDueMs = Infinity;
      this.delivering = this.delivering.then(() => this.deliverDue()).catch((e) => this.retryLater(e));
    });
  }

  /** A failed delivery is tried again {@link DELIVERY_RETRY_DELAY_MS} later; the entries stay queued. */
  private retryLater(error: unknown): void {
    if (this.closed) return;
    this.options.onEvent({
      type: 'write.failed',
      source: 'delivery',
      error,
      retryInMs: DELIVERY_RETRY_DELAY_MS,
    });
    this.timer?.cancel(); // an earlier-due timer armed meanwhile is replaced by this one
    this.timerDueMs = this.clock.now() + DELIVERY_RETRY_DELAY_MS;
    this.timer = this.clock.setTimer(DELIVERY_RETRY_DELAY_MS, () => {
      this.timer = undefined;
      this.timerDueMs = Infinity;
      this.delivering = this.delivering.then(() => this.deliverDue()).catch((e) => this.retryLater(e));
    });
  }

  private async deliverDue(): Promise<void> {
    const now = this.clock.now();
    const due: Due[] = [];
    while (this.heap.size > 0 && this.heap.peek()!.dueMs <= now && due.length < MAX_DELIVERIES_PER_ROUND)
      due.push(this.heap.pop()!);
    try {
      const copies: AppendRequest[] = [];
      const sources: Due[] = [];
      for (const d of due) {
        if (this.done(d.queueOffset)) continue; // recalled
        const m = this.store.getByCommitLogOffset(d.commitLogOffset);
        if (m) {
          copies.push(realCopy(m));
          sources.push(d);
        } else {
          this.markDelivered(d.queueOffset); // retention deleted it before it was due
        }
      }
      if (copies.length > 0) {
        await this.options.writer.write(copies); // wakes each real queue once
        for (const d of sources) this.markDelivered(d.queueOffset);
        this.persistSoon();
      }
    } catch (error) {
      for (const d of due) if (!this.delivered.has(d.queueOffset)) this.heap.push(d);
      throw error;
    } finally {
      this.arm();
    }
    if (this.heap.size > 0 && this.heap.peek()!.dueMs <= this.clock.now()) await this.deliverDue();
  }

  /**
   * Recalls a delayed message before it is due (RocketMQ 5.3 `RecallMessage`): the entry at
   * `queueOffset` of the schedule queue, if it is the message `msgId` bound for `topic` and not yet
   * due, is marked delivered without being copied anywhere. Recalling it again before its time is
   * accepted too (as Apache's recall, which only checks the handle and the time). Once due, or for
   * any other message, `MESSAGE_NOT_FOUND`.
   */
  recall(queueOffset: number, msgId: string, topic: string): void {
    const m = this.store.getMessages(SCHEDULE_TOPIC, SCHEDULE_QUEUE_ID, queueOffset, { maxCount: 1 })
      .messages[0];
    if (
      !m ||
      m.queueOffset !== queueOffset ||
      m.msgId !== msgId ||
      m.properties[SystemProperty.REAL_TOPIC] !== topic ||
      m.deliveryTimeMs <= this.clock.now()
    ) {
      throw new RocketError(
        'MESSAGE_NOT_FOUND',
        `no delayed message ${msgId} of topic "${topic}" is waiting: it was delivered already, or is unknown`,
      );
    }
    if (this.done(queueOffset)) return; // recalled before
    // its heap entry stays until due and is then skipped (done): the heap has no removal
    this.markDelivered(queueOffset);
    this.persistSoon();
  }

  private done(queueOffset: number): boolean {
    return queueOffset < this.watermark || this.delivered.has(queueOffset);
  }

  private markDelivered(queueOffset: number): void {
    this.delivered.add(queueOffset);
    while (this.delivered.delete(this.watermark)) this.watermark++;
  }

  /**
   * Progress is written at most once per {@link PROGRESS_PERSIST_INTERVAL_MS}, not per delivery:
   * the delivered set can hold many offsets, and a burst of due messages must not rewrite it each
   * time. A crash repeats at most that interval's deliveries (at least once); close writes it.
   */
  private persistSoon(): void {
    if (this.persistTimer || this.closed) return;
    this.persistTimer = this.clock.setTimer(PROGRESS_PERSIST_INTERVAL_MS, () => {
      this.persistTimer = undefined;
      this.persist();
    });
  }

  /** Which schedule entries were delivered, as persisted (a slave copies its master's: `replicaSync`). */
  progress(): ScheduleProgress {
    return { watermark: this.watermark, delivered: [...this.delivered].sort((a, b) => a - b) };
  }

  /**
   * A slave takes its master's delivered-progress (RocketMQ's `SlaveSynchronize.syncDelayOffset`)
   * and writes it, so that once promoted it delivers only what the master had not. Only before
   * {@link start}: a running schedule owns its progress. True when it changed anything.
   */
  adoptProgress(progress: ScheduleProgress): boolean {
    if (this.started) {
      throw new RocketError('INVALID_ARGUMENT', 'a running delay schedule does not take another progress');
    }
    const delivered = progress.delivered.filter((o) => o >= progress.watermark);
    if (
      progress.watermark === this.watermark &&
      delivered.length === this.delivered.size &&
      delivered.every((o) => this.delivered.has(o))
    ) {
      return false;
    }
    this.watermark = progress.watermark;
    this.delivered.clear();
    for (const o of delivered) this.delivered.add(o);
    this.persist();
    return true;
  }

  persist(): void {
    this.options.progressFile.save({
      watermark: this.watermark,
      delivered: [...this.delivered].sort((a, b) => a - b),
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.persistTimer?.cancel();
    await this.delivering.catch(() => undefined);
    this.persist();
  }
}

/** The message a due schedule entry turns into: back on its real topic and queue. */
function realCopy(m: MessageView): AppendRequest {
  return {
    ...realTopicCopy(m),
    deliveryTimeMs: m.deliveryTimeMs,
    reconsumeTimes: m.reconsumeTimes,
    flags: m.flags,
  };
}
