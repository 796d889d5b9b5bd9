import type { Clock, Timer } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import { SystemProperty } from '../message/system-properties';
import type { AppendRequest, MessageStore } from '../store/message-store';
import type { ConfigFile } from './config-file';
import { MinHeap } from './min-heap';
import { realTopicCopy } from './real-topic';

/** The system topic that holds delayed messages until they are due (RocketMQ's name). */
export const SCHEDULE_TOPIC = 'SCHEDULE_TOPIC_XXXX';
const SCHEDULE_QUEUE_ID = 0;
/** Longest time delivered-progress stays unwritten after a delivery. */
export const PROGRESS_PERSIST_INTERVAL_MS = 1000;
/** Records read per step when loading pending delayed messages on start. */
const LOAD_BATCH = 256;

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

  constructor(
    private readonly store: MessageStore,
    private readonly clock: Clock,
    private readonly progressFile: ConfigFile<ScheduleProgress>,
    private readonly maxPending: number,
    private readonly onDelivered: (topic: string, queueId: number) => void,
  ) {}

  /** Messages waiting for their delivery time. */
  get pending(): number {
    return this.heap.size;
  }

  /** Loads what was stored but not yet delivered and arms the timer. */
  start(): void {
    const progress = this.progressFile.load() ?? { watermark: 0, delivered: [] };
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
   * Rejects with `BROKER_BUSY` when `maxScheduledMessages` are already waiting.
   */
  async schedule(requests: readonly AppendRequest[]): Promise<Array<{ msgId: string; queueOffset: number }>> {
    if (this.heap.size + requests.length > this.maxPending) {
      throw new RocketError(
        'BROKER_BUSY',
        `${this.heap.size} delayed messages are waiting, the limit is maxScheduledMessages=${this.maxPending}; retry later`,
      );
    }
    const stored = await this.store.appendBatch(
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
      this.delivering = this.delivering.then(() => this.deliverDue()).catch(() => this.retryLater());
    });
  }

  /** A failed delivery (store busy, I/O) is tried again a second later; the entries stay queued. */
  private retryLater(): void {
    if (this.closed) return;
    this.timerDueMs = this.clock.now() + 1000;
    this.timer = this.clock.setTimer(1000, () => {
      this.timer = undefined;
      this.timerDueMs = Infinity;
      this.delivering = this.delivering.then(() => this.deliverDue()).catch(() => this.retryLater());
    });
  }

  private async deliverDue(): Promise<void> {
    const now = this.clock.now();
    const due: Due[] = [];
    while (this.heap.size > 0 && this.heap.peek()!.dueMs <= now && due.length < 1024)
      due.push(this.heap.pop()!);
    try {
      const copies: AppendRequest[] = [];
      const sources: Due[] = [];
      for (const d of due) {
        const m = this.store.getByCommitLogOffset(d.commitLogOffset);
        if (m) {
          copies.push(realCopy(m));
          sources.push(d);
        } else {
          this.markDelivered(d.queueOffset); // retention deleted it before it was due
        }
      }
      if (copies.length > 0) {
        await this.store.appendBatch(copies);
        for (const d of sources) this.markDelivered(d.queueOffset);
        this.persistSoon();
        for (const c of copies) this.onDelivered(c.topic, c.queueId);
      }
    } catch (error) {
      for (const d of due) if (!this.delivered.has(d.queueOffset)) this.heap.push(d);
      throw error;
    } finally {
      this.arm();
    }
    if (this.heap.size > 0 && this.heap.peek()!.dueMs <= this.clock.now()) await this.deliverDue();
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

  persist(): void {
    this.progressFile.save({
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
