import type { MessageView } from '../message/message';
import { SystemProperty } from '../message/system-properties';
import type { ClientEvents, ClientTimers } from './client-support';
import type { ProcessQueue } from './process-queue';
import type { ResolvedPushConsumerOptions } from './push-consumer-options';
import { QUEUE_LOCK_RETRY_MS } from './push-consumer-options';
import type {
  ConsumeContext,
  ConsumeResult,
  MessageExt,
  MessageListener,
  PushConsumerEvents,
} from './push-listener';
import type { Transport } from './transport';

/** What the consume service needs from its push consumer. */
export interface ConsumeHost {
  readonly options: ResolvedPushConsumerOptions;
  readonly transport: Transport;
  readonly timers: ClientTimers;
  readonly events: ClientEvents<PushConsumerEvents>;
  /** False once the consumer stops: queued calls are not started. */
  running(): boolean;
  listener(): MessageListener;
  /** Orderly: true when `pq` may be consumed now (the consumer holds a fresh lock on it). */
  holdsLock(pq: ProcessQueue): Promise<boolean>;
  /** Messages finished: they leave the cache, and a queue paused by flow control may resume. */
  finish(pq: ProcessQueue, messages: readonly MessageView[]): void;
}

interface Task {
  pq: ProcessQueue;
  run: () => Promise<void>;
}

/** Compact the task queue once this many started tasks sit before its head. */
const TASK_QUEUE_COMPACT_AT = 1024;

/**
 * A FIFO of listener calls waiting for a slot. A started task's slot is cleared at once, so a
 * finished call (and the messages it held) is not kept alive by the queue: only waiting calls are.
 */
class TaskQueue {
  private items: Array<Task | undefined> = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(task: Task): void {
    this.items.push(task);
  }

  shift(): Task | undefined {
    if (this.head >= this.items.length) return undefined;
    const task = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= TASK_QUEUE_COMPACT_AT && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return task;
  }
}

/**
 * Runs a push consumer's listener (RocketMQ `ConsumeMessageConcurrentlyService` and
 * `ConsumeMessageOrderlyService`): at most `consumeConcurrency` calls at once, over every queue.
 *
 * - Concurrent: pulled messages are handed over in batches of `consumeBatchSize` as they come; a
 *   failed message is sent back to the broker (retried there after its backoff, or dead-lettered),
 *   or consumed again here after `localRetryDelayMs` when the send-back fails. Broadcasting drops
 *   failed messages, as RocketMQ does.
 * - Orderly: one message of a queue at a time, in queue order, and only while the consumer holds
 *   a fresh lock on the queue (clustering); a failure is retried in place after the suspend time,
 *   up to `maxReconsumeTimes`, then dead-lettered.
 */
export class ConsumeService {
  private readonly tasks = new TaskQueue();
  private running = 0;

  constructor(
    private readonly host: ConsumeHost,
    private readonly orderly: boolean,
  ) {}

  /** Listener calls queued and not started yet. */
  get queued(): number {
    return this.tasks.size;
  }

  /** Hands freshly cached messages of `pq` to the listener. */
  dispatch(pq: ProcessQueue, fresh: readonly MessageView[]): void {
    if (this.orderly) {
      this.scheduleOrderly(pq);
      return;
    }
    const size = this.host.options.consumeBatchSize;
    for (let i = 0; i < fresh.length; i += size) {
      const batch = fresh.slice(i, i + size);
      this.submit(pq, () => this.consumeConcurrently(pq, batch));
    }
  }

  /** Orderly: consumes the next message of `pq` unless one is being consumed already. */
  scheduleOrderly(pq: ProcessQueue): void {
    if (pq.orderlyBusy || pq.dropped || pq.cachedMessages === 0) return;
    pq.orderlyBusy = true;
    this.submit(pq, () => this.consumeOrderly(pq));
  }

  private submit(pq: ProcessQueue, run: () => Promise<void>): void {
    this.tasks.push({ pq, run });
    this.pump();
  }

  /** Starts queued listener calls up to `consumeConcurrency`; calls of dropped queues are skipped. */
  private pump(): void {
    const { events, options } = this.host;
    while (this.running < options.consumeConcurrency) {
      const task = this.tasks.shift();
      if (!task) return;
      if (task.pq.dropped || !this.host.running()) continue;
      const { pq } = task;
      this.running++;
      pq.inFlight++;
      void task
        .run()
        .catch((error: unknown) => events.emit('consumer.listener.error', { queue: pq.queue, error }))
        .finally(() => {
          this.running--;
          pq.inFlight--;
          pq.wakeIdle();
          this.pump();
        });
    }
  }

  /** The message as the listener sees it: a retried message shows its original topic. */
  private present(pq: ProcessQueue, m: MessageView, reconsumeTimes = m.reconsumeTimes): MessageExt {
    const origin = pq.isRetry ? m.properties[SystemProperty.ORIGIN_TOPIC] : undefined;
    if (origin === undefined && reconsumeTimes === m.reconsumeTimes) return m;
    return { ...m, topic: origin ?? m.topic, reconsumeTimes };
  }

  private async callListener(
    pq: ProcessQueue,
    messages: MessageExt[],
    context: ConsumeContext,
  ): Promise<ConsumeResult> {
    try {
      const result = await this.host.listener()(messages, context);
      return result === 'CONSUME_SUCCESS' ? 'CONSUME_SUCCESS' : 'RECONSUME_LATER';
    } catch (error) {
      this.host.events.emit('consumer.listener.error', { queue: pq.queue, error });
      return 'RECONSUME_LATER';
    }
  }

  private async consumeConcurrently(pq: ProcessQueue, batch: MessageView[]): Promise<void> {
    const { options, events, transport, timers } = this.host;
    const context: ConsumeContext = { consumerGroup: options.group, queue: pq.queue };
    const result = await this.callListener(
      pq,
      batch.map((m) => this.present(pq, m)),
      context,
    );
    if (result === 'CONSUME_SUCCESS') {
      this.host.finish(pq, batch);
      return;
    }
    if (options.messageModel === 'BROADCASTING') {
      for (const m of batch) events.emit('consumer.dropped', { queue: pq.queue, msgId: m.msgId });
      this.host.finish(pq, batch);
      return;
    }
    const retryLocally: MessageView[] = [];
    for (const m of batch) {
      try {
        const { deadLettered } = await transport.sendBack(pq.queue.brokerName, {
          consumerGroup: options.group,
          msgId: m.msgId,
          delayMs: context.retryDelayMs,
          maxReconsumeTimes: context.deadLetter === true ? 0 : options.maxReconsumeTimes,
        });
        if (deadLettered) events.emit('consumer.dead-lettered', { queue: pq.queue, msgId: m.msgId });
        this.host.finish(pq, [m]);
      } catch (error) {
        events.emit('consumer.sendback.failed', { queue: pq.queue, msgId: m.msgId, error });
        retryLocally.push(m);
      }
    }
    if (retryLocally.length === 0 || pq.dropped) return;
    // the messages stay cached (their offsets uncommitted) and are consumed again here later
    const again = retryLocally
      .map((m) => ({ ...m, reconsumeTimes: m.reconsumeTimes + 1 }))
      .filter((bumped) => pq.replace(bumped));
    if (again.length === 0) return;
    const timer = timers.after(options.localRetryDelayMs, () => {
      pq.timers.delete(timer);
      this.submit(pq, () => this.consumeConcurrently(pq, again));
    });
    pq.timers.add(timer);
  }

  private async consumeOrderly(pq: ProcessQueue): Promise<void> {
    const { options, events, transport } = this.host;
    const first = pq.first();
    if (!first) {
      pq.orderlyBusy = false;
      return;
    }
    if (!(await this.host.holdsLock(pq))) {
      // another member holds the queue (a rebalance in progress): try again later
      if (pq.dropped) return;
      this.later(pq, QUEUE_LOCK_RETRY_MS);
      return;
    }
    if (pq.dropped) return;
    const [offset, m] = first;
    const attempts = pq.localAttempts.get(offset) ?? 0;
    const reconsumeTimes = m.reconsumeTimes + attempts;
    const context: ConsumeContext = { consumerGroup: options.group, queue: pq.queue };
    const result = await this.callListener(pq, [this.present(pq, m, reconsumeTimes)], context);
    if (result === 'CONSUME_SUCCESS') {
      this.nextOrderly(pq, offset, m);
      return;
    }
    if (reconsumeTimes >= options.maxReconsumeTimes || context.deadLetter === true) {
      try {
        await transport.sendBack(pq.queue.brokerName, {
          consumerGroup: options.group,
          msgId: m.msgId,
          maxReconsumeTimes: 0,
        });
        events.emit('consumer.dead-lettered', { queue: pq.queue, msgId: m.msgId });
        this.nextOrderly(pq, offset, m);
        return;
      } catch (error) {
        // keep the queue on this message and try the dead-letter send again after the pause
        events.emit('consumer.sendback.failed', { queue: pq.queue, msgId: m.msgId, error });
      }
    } else {
      pq.localAttempts.set(offset, attempts + 1);
    }
    if (pq.dropped) return;
    this.later(pq, context.suspendMs ?? options.suspendCurrentQueueTimeMs);
  }

  /** Orderly: consumes the queue again after `delayMs`. */
  private later(pq: ProcessQueue, delayMs: number): void {
    const timer = this.host.timers.after(delayMs, () => {
      pq.timers.delete(timer);
      pq.orderlyBusy = false;
      this.scheduleOrderly(pq);
    });
    pq.timers.add(timer);
  }

  private nextOrderly(pq: ProcessQueue, offset: number, m: MessageView): void {
    pq.localAttempts.delete(offset);
    this.host.finish(pq, [m]);
    pq.orderlyBusy = false;
    this.scheduleOrderly(pq);
  }
}
