import type { Clock } from '../common/clock';
import type { MessageQueue } from './allocation';
import type { ProcessQueue } from './process-queue';
import { QUEUE_LOCK_MAX_LIVE_MS } from './push-consumer-options';
import type { Transport } from './transport';

export interface QueueLockKeeperOptions {
  group: string;
  clientId: string;
  transport: Transport;
  clock: Clock;
  /** The consumer's queues now. */
  processQueues: () => Iterable<ProcessQueue>;
  /** A queue whose lock was unconfirmed is locked again: its consumption may resume. */
  locked: (pq: ProcessQueue) => void;
  /** A lock or unlock call failed (reported; the next renewal tries again). */
  onError: (error: unknown) => void;
}

/**
 * The broker locks of an orderly clustering push consumer (RocketMQ `RebalanceImpl.lock` /
 * `lockAll` / `unlock`). A queue's lock counts as held only when the broker confirmed it within
 * {@link QUEUE_LOCK_MAX_LIVE_MS} (`ProcessQueue.lockedAtMs`); the broker keeps a lock 60 s, so a
 * client that cannot renew stops consuming well before another member may lock the queue.
 */
export class QueueLockKeeper {
  constructor(private readonly options: QueueLockKeeperOptions) {}

  /** Locks queues of one broker; resolves with those now held (none when the broker fails). */
  async lock(brokerName: string, queues: readonly MessageQueue[]): Promise<MessageQueue[]> {
    const { transport, group, clientId } = this.options;
    try {
      const held = await transport.lockQueues(brokerName, {
        group,
        clientId,
        queues: queues.map((q) => ({ topic: q.topic, queueId: q.queueId })),
      });
      const keys = new Set(held.map((q) => `${q.topic}\u0000${q.queueId}`));
      return queues.filter((q) => keys.has(`${q.topic}\u0000${q.queueId}`));
    } catch (error) {
      this.brokerFailed(brokerName);
      this.options.onError(error);
      return [];
    }
  }

  /** Gives the lock of `pq` back (it is no longer consumed here). */
  async unlock(pq: ProcessQueue): Promise<void> {
    const { transport, group, clientId } = this.options;
    pq.lockedAtMs = 0;
    const { brokerName, topic, queueId } = pq.queue;
    await transport
      .unlockQueues(brokerName, { group, clientId, queues: [{ topic, queueId }] })
      .catch((error: unknown) => this.options.onError(error));
  }

  /**
   * A call to `brokerName` failed: the connection may have been cut and opened again, and the
   * broker may have let another member lock our queues meanwhile. Every lock on that broker is
   * unconfirmed until it is locked again, so no orderly consumption runs on a lock we may not hold.
   */
  brokerFailed(brokerName: string): void {
    for (const pq of this.options.processQueues()) {
      if (pq.queue.brokerName === brokerName) pq.lockedAtMs = 0;
    }
  }

  /** True when the broker confirmed the lock on `pq` within {@link QUEUE_LOCK_MAX_LIVE_MS}. */
  isFresh(pq: ProcessQueue): boolean {
    return pq.lockedAtMs > 0 && this.options.clock.now() - pq.lockedAtMs <= QUEUE_LOCK_MAX_LIVE_MS;
  }

  /** Locks `pq` again; true when this client holds it now. */
  async relock(pq: ProcessQueue): Promise<boolean> {
    const now = this.options.clock.now();
    const held = (await this.lock(pq.queue.brokerName, [pq.queue])).length > 0;
    pq.lockedAtMs = held ? now : 0;
    return held;
  }

  /**
   * Renews every held lock, one call per broker. A queue whose lock is not confirmed stops; its
   * next consumption tries to lock it again and drops it when another member holds it.
   */
  async renew(): Promise<void> {
    const byBroker = new Map<string, ProcessQueue[]>();
    for (const pq of this.options.processQueues()) {
      if (pq.dropped) continue;
      const list = byBroker.get(pq.queue.brokerName) ?? [];
      list.push(pq);
      byBroker.set(pq.queue.brokerName, list);
    }
    await Promise.all(
      [...byBroker].map(async ([brokerName, pqs]) => {
        const now = this.options.clock.now();
        const held = new Set(
          await this.lock(
            brokerName,
            pqs.map((pq) => pq.queue),
          ),
        );
        for (const pq of pqs) {
          if (held.has(pq.queue)) {
            const wasLocked = pq.lockedAtMs > 0;
            pq.lockedAtMs = now;
            if (!wasLocked) this.options.locked(pq);
          } else {
            pq.lockedAtMs = 0;
          }
        }
      }),
    );
  }
}
